//! Amounts in satoshis: the most there can be, and sums that can never wrap.
//!
//! Amounts read from hostile bytes (a transaction, a BEEF, a caller's outputs) are each at most
//! a `u64`, so a plain `sum()` of a few thousand of them wraps in a release build and a huge
//! payment looks small. Every total the wallet or a cosigner acts on goes through [`total`].

use wallet_traits::{Error, ErrorKind, Result};

/// The most satoshis there can ever be: 21 million coins of 10^8 satoshis.
pub const MAX_SATOSHIS: u64 = 2_100_000_000_000_000;

/// The sum of `amounts`, refused when it passes [`MAX_SATOSHIS`] (checked at every step, so it
/// cannot wrap on the way).
pub fn total<I: IntoIterator<Item = u64>>(amounts: I) -> Result<u64> {
    amounts.into_iter().try_fold(0u64, |sum, a| sum.checked_add(a).filter(|t| *t <= MAX_SATOSHIS)).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "amounts that add up to more than 21 million coins (2100000000000000 satoshis)",
        )
    })
}

/// What the inputs of `tx` spend (their source outputs; `None` when one is missing).
pub fn spent(tx: &crate::Transaction) -> Option<Result<u64>> {
    let sources: Option<Vec<u64>> = tx.inputs.iter().map(|i| i.source_output.as_ref().map(|o| o.satoshis)).collect();
    sources.map(total)
}

/// What the outputs of `tx` pay.
pub fn paid(tx: &crate::Transaction) -> Result<u64> {
    total(tx.outputs.iter().map(|o| o.satoshis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_past_u64_are_refused_not_wrapped() {
        // 8,785 outputs of the most a caller may name sum past 2^64: a wrapping sum sees ~1000.
        let n = (u64::MAX / MAX_SATOSHIS) as usize + 1;
        assert_eq!(total(std::iter::repeat_n(MAX_SATOSHIS, n)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(total([u64::MAX, 1001]).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(total([MAX_SATOSHIS, 1]).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(total([MAX_SATOSHIS - 1, 1]).unwrap(), MAX_SATOSHIS);
        assert_eq!(total([]).unwrap(), 0);
    }
}
