//! Argument checks as the wallet toolbox applies them: a refusal is BRC-100's
//! `WERR_INVALID_PARAMETER` (code 6) naming the parameter and what it must be.

use wallet_traits::{Error, ErrorKind, Result};

/// The refusal of `parameter`, which must be `must_be`.
pub(crate) fn bad(parameter: &str, must_be: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("The {parameter} parameter must be {must_be}"))
        .with_context("parameter", parameter)
}

/// A description: 5 to 2000 bytes.
pub(crate) fn description(s: &str, parameter: &str) -> Result<String> {
    if !(5..=2000).contains(&s.len()) {
        return Err(bad(parameter, "from 5 to 2000 bytes long"));
    }
    Ok(s.to_string())
}

/// A basket, tag or label: trimmed, lower case, 1 to 300 bytes.
pub(crate) fn name(s: &str, parameter: &str) -> Result<String> {
    let s = s.trim().to_lowercase();
    if s.is_empty() || s.len() > 300 {
        return Err(bad(parameter, "from 1 to 300 bytes long"));
    }
    Ok(s)
}

/// Every name of `list` through [`name`], without repeats (first one kept).
pub(crate) fn names(list: Option<&[String]>, parameter: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in list.unwrap_or_default() {
        let s = name(s, parameter)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// A basket a caller may put outputs in: not the wallet's change basket, which only the wallet
/// fills (a caller's output there would be spent as change).
pub(crate) fn user_basket(s: &str, parameter: &str) -> Result<String> {
    let basket = name(s, parameter)?;
    if basket == super::CHANGE_BASKET {
        return Err(bad(parameter, "a basket other than `default`, which holds the wallet's own change"));
    }
    Ok(basket)
}

/// A page size: 1 to 10000, default 10.
pub(crate) fn limit(limit: Option<u32>) -> Result<u32> {
    match limit.unwrap_or(10) {
        n @ 1..=10_000 => Ok(n),
        _ => Err(bad("limit", "from 1 to 10000")),
    }
}

/// Hex of an even number of digits, as bytes.
pub(crate) fn hex_bytes(s: &str, parameter: &str) -> Result<Vec<u8>> {
    hex::decode(s).map_err(|_| bad(parameter, "hexadecimal with an even number of digits"))
}

/// An amount of at most [`MAX_SATOSHIS`](wallet_bsv::amount::MAX_SATOSHIS).
pub(crate) fn satoshis(n: u64, parameter: &str) -> Result<u64> {
    if n > wallet_bsv::amount::MAX_SATOSHIS {
        return Err(bad(parameter, "at most 2100000000000000 satoshis"));
    }
    Ok(n)
}
