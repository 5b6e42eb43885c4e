//! JSON as JavaScript sees it: `JSON.stringify(JSON.parse(text))`, byte for byte.
//!
//! BRC-103 signs JSON text that the other side re-creates with `JSON.stringify` from what
//! `JSON.parse` (or Express's body parser) made of the bytes it received: the requested
//! certificates of a `certificateRequest`, the certificates of a `certificateResponse`, and a JSON
//! request body the auth middleware re-serializes before checking our signature. So the text we
//! sign or check must be JavaScript's: object keys that are array indices first in ascending order,
//! then the others in the order first seen (a repeated key keeps its place and takes the last
//! value), numbers as `Number.prototype.toString` writes doubles, strings with JavaScript's
//! escapes (lone surrogates kept as `\udxxx`). serde_json's `Value` sorts keys and keeps numbers
//! as written, so it cannot stand in.

use std::collections::HashMap;

use wallet_traits::{Error, ErrorKind, Result};

/// Deeper nesting than this is refused: the parser recurses, and a server's bytes are hostile.
const MAX_DEPTH: usize = 256;

/// A parsed JSON value with JavaScript's semantics. Strings are UTF-16 code units, as in
/// JavaScript, so a lone surrogate from a `\ud800` escape survives the round trip.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    String(Vec<u16>),
    Array(Vec<JsValue>),
    /// Members in JavaScript's property order (see [`JsValue::stringify`]).
    Object(Vec<(Vec<u16>, JsValue)>),
}

/// `JSON.stringify(JSON.parse(text))`; a leading byte-order mark is dropped first, as Express's
/// body parser does before it parses.
pub(crate) fn restringify(text: &str) -> Result<String> {
    Ok(JsValue::parse(text.strip_prefix('\u{feff}').unwrap_or(text))?.stringify())
}

fn malformed(what: &str, at: usize) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("not JSON: {what} at byte {at}"))
}

impl JsValue {
    /// `JSON.parse`: the strict grammar (no comments, no trailing commas, only the four
    /// whitespace characters), nesting at most [`MAX_DEPTH`] deep.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(malformed("unexpected text after the value", p.i));
        }
        Ok(v)
    }

    /// An object's member (the last one of that name, as JavaScript keeps it).
    pub(crate) fn get(&self, key: &str) -> Option<&JsValue> {
        let key: Vec<u16> = key.encode_utf16().collect();
        match self {
            JsValue::Object(members) => members.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `JSON.stringify`.
    pub(crate) fn stringify(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            JsValue::Null => out.push_str("null"),
            JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsValue::Number(n) => out.push_str(&js_number(*n)),
            JsValue::String(s) => write_string(s, out),
            JsValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            JsValue::Object(members) => {
                // Array-index keys come first, ascending; the rest keep their order.
                let mut order: Vec<usize> = (0..members.len()).collect();
                order.sort_by_key(|&i| (array_index(&members[i].0).unwrap_or(u64::MAX), i));
                out.push('{');
                for (n, &i) in order.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_string(&members[i].0, out);
                    out.push(':');
                    members[i].1.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// The key as an array index (`"0"`, `"17"`, never `"01"`; below 2^32 - 1), which JavaScript
/// orders before every other key.
fn array_index(key: &[u16]) -> Option<u64> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == u16::from(b'0')) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in key {
        let d = c.checked_sub(u16::from(b'0')).filter(|d| *d <= 9)?;
        n = n * 10 + u64::from(d);
    }
    (n < u64::from(u32::MAX)).then_some(n)
}

/// A string as `JSON.stringify` quotes it.
fn write_string(s: &[u16], out: &mut String) {
    out.push('"');
    for item in char::decode_utf16(s.iter().copied()) {
        match item {
            Ok('"') => out.push_str("\\\""),
            Ok('\\') => out.push_str("\\\\"),
            Ok('\u{8}') => out.push_str("\\b"),
            Ok('\u{c}') => out.push_str("\\f"),
            Ok('\n') => out.push_str("\\n"),
            Ok('\r') => out.push_str("\\r"),
            Ok('\t') => out.push_str("\\t"),
            Ok(c) if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            Ok(c) => out.push(c),
            Err(lone) => out.push_str(&format!("\\u{:04x}", lone.unpaired_surrogate())),
        }
    }
    out.push('"');
}

/// `Number.prototype.toString()` of a double (ECMA-262 Number::toString with radix 10): the
/// shortest digits that round-trip, in plain notation from 1e-7 up to below 1e21, else as
/// `d.ddde±x`. `JSON.stringify` writes non-finite numbers as `null`.
pub(crate) fn js_number(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    if x == 0.0 {
        return "0".into(); // -0 too
    }
    // Rust's `{:e}` is the shortest round-trip representation, as JavaScript's: "1.2345e-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let (k, n) = (digits.len() as i32, exp + 1);
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n > 0 { '+' } else { '-' };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        format!("{first}{fraction}e{sign}{}", (n - 1).abs())
    };
    if x < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.i..].starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsValue> {
        if depth > MAX_DEPTH {
            return Err(malformed("nesting too deep", self.i));
        }
        match self.s.get(self.i).copied() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(JsValue::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat(b"true") => Ok(JsValue::Bool(true)),
            _ if self.eat(b"false") => Ok(JsValue::Bool(false)),
            _ if self.eat(b"null") => Ok(JsValue::Null),
            Some(_) => Err(malformed("unexpected character", self.i)),
            None => Err(malformed("unexpected end", self.i)),
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsValue> {
        self.i += 1;
        let mut members: Vec<(Vec<u16>, JsValue)> = Vec::new();
        // Where each key sits, so a repeated key replaces its value in place in constant time
        // (a hostile object of many repeated keys stays linear).
        let mut index: HashMap<Vec<u16>, usize> = HashMap::new();
        self.ws();
        if self.eat(b"}") {
            return Ok(JsValue::Object(members));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(malformed("expected a key", self.i));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(b":") {
                return Err(malformed("expected ':'", self.i));
            }
            self.ws();
            let value = self.value(depth + 1)?;
            match index.get(&key) {
                Some(&at) => members[at].1 = value,
                None => {
                    index.insert(key.clone(), members.len());
                    members.push((key, value));
                }
            }
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"}") {
                return Ok(JsValue::Object(members));
            }
            return Err(malformed("expected ',' or '}'", self.i));
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsValue> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(b"]") {
            return Ok(JsValue::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(b"]") {
                return Ok(JsValue::Array(items));
            }
            return Err(malformed("expected ',' or ']'", self.i));
        }
    }

    fn string(&mut self) -> Result<Vec<u16>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The input is a &str, and the run stops only at ASCII bytes: it is whole UTF-8.
            let run = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| malformed("not UTF-8", start))?;
            out.extend(run.encode_utf16());
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = self.s.get(self.i + 1).copied();
                    self.i += 2;
                    let unit = match escape {
                        Some(b'"') => 0x22,
                        Some(b'\\') => 0x5c,
                        Some(b'/') => 0x2f,
                        Some(b'b') => 0x08,
                        Some(b'f') => 0x0c,
                        Some(b'n') => 0x0a,
                        Some(b'r') => 0x0d,
                        Some(b't') => 0x09,
                        Some(b'u') => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| malformed("short \\u", self.i))?;
                            let hex = std::str::from_utf8(hex).map_err(|_| malformed("bad \\u", self.i))?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return Err(malformed("bad \\u", self.i));
                            }
                            self.i += 4;
                            u16::from_str_radix(hex, 16).map_err(|_| malformed("bad \\u", self.i))?
                        }
                        _ => return Err(malformed("bad escape", self.i - 1)),
                    };
                    out.push(unit);
                }
                Some(_) => return Err(malformed("control character in a string", self.i)),
                None => return Err(malformed("unterminated string", self.i)),
            }
        }
    }

    fn number(&mut self) -> Result<JsValue> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.s.get(p.i), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - from
        };
        self.eat(b"-");
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(malformed("bad number", self.i)),
        }
        if self.eat(b".") && digits(self) == 0 {
            return Err(malformed("bad fraction", self.i));
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(malformed("bad exponent", self.i));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| malformed("bad number", start))?;
        // Correctly rounded, as JavaScript's; past the double range it is infinite, as there.
        let n: f64 = text.parse().map_err(|_| malformed("bad number", start))?;
        Ok(JsValue::Number(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_javascript_on_the_sdk_fixtures() {
        let fixtures: serde_json::Value = serde_json::from_str(crate::tests::FIXTURES).unwrap();
        for case in fixtures["json"].as_array().unwrap() {
            let (input, output) = (case["input"].as_str().unwrap(), case["output"].as_str().unwrap());
            assert_eq!(restringify(input).unwrap(), output, "JSON.stringify(JSON.parse({input:?}))");
        }
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        for (x, s) in [
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (123.456, "123.456"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "null"),
            (-0.0, "0"),
        ] {
            assert_eq!(js_number(x), s, "{x}");
        }
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "'a'",
            "\"a\tb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "[1] 2",
            "nul",
            "{a:1}",
            "NaN",
        ] {
            assert!(restringify(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(restringify(&deep).is_err(), "nesting is bounded");
    }

    #[test]
    fn lookup_takes_the_last_of_a_repeated_key() {
        let v = JsValue::parse(r#"{"a":1,"b":{"c":[true]},"a":2}"#).unwrap();
        assert_eq!(v.get("a"), Some(&JsValue::Number(2.0)));
        assert_eq!(v.get("b").unwrap().stringify(), r#"{"c":[true]}"#);
        assert_eq!(v.get("z"), None);
    }
}
