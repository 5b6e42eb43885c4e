//! The wire encoding shared by transactions, BEEF and merkle paths: little-endian integers and
//! Bitcoin's variable-length integers (VarInt, "CompactSize"); and the text rules of @bsv/sdk
//! that signed bytes depend on: its base64, `TextDecoder` UTF-8 and `localeCompare` order.
//!
//! [`Reader`] never trusts a length or count it reads: every length is checked against the bytes
//! that are left before anything is allocated, so a few hostile bytes cannot ask for gigabytes.

use std::cmp::Ordering;

use base64::Engine;
use wallet_traits::{Error, ErrorKind, Result};

/// Reads one encoded value from a byte slice, refusing truncated or non-canonical input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; `what` ("transaction", "BEEF", ...) names the value in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, pos: 0, what }
    }

    /// An [`ErrorKind::InvalidInput`] naming the value and the byte offset.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::InvalidInput, format!("malformed {}: {message} (at byte {})", self.what, self.pos))
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Refuses bytes after the value.
    pub fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("{} unexpected bytes after the end", self.remaining())))
        }
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!("needs {n} more bytes, {} are left", self.remaining())));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u16.
    pub fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A VarInt in its shortest form; a longer encoding of a small number is refused, since the
    /// value would not serialize back to the bytes it came from (and its hash would change).
    pub fn varint(&mut self) -> Result<u64> {
        let (n, min) = match self.u8()? {
            0xfd => (u64::from(self.u16_le()?), 0xfd),
            0xfe => (u64::from(self.u32_le()?), 0x1_0000),
            0xff => (self.u64_le()?, 0x1_0000_0000),
            b => return Ok(u64::from(b)),
        };
        if n < min {
            return Err(self.error(format!("the VarInt {n} is not in its shortest form")));
        }
        Ok(n)
    }

    /// A VarInt length followed by that many bytes.
    pub fn var_bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.error("a length does not fit in memory"))?;
        self.bytes(n)
    }

    /// A VarInt count of items that each take at least `min_item_bytes` bytes: refused when the
    /// bytes left cannot hold that many, so a count never allocates beyond the input's size.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.varint()?;
        let most = self.remaining() / min_item_bytes.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= most => Ok(n),
            _ => Err(self.error(format!("a count of {n} items cannot fit in the {} bytes left", self.remaining()))),
        }
    }
}

/// Appends `n` as a VarInt in its shortest form.
pub fn write_varint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a VarInt length and `bytes`.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// How many bytes the VarInt of `n` takes.
pub fn varint_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Standard base64 with padding, as the SDK's `Utils.toBase64`.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SDK's `Utils.toArray(text, 'base64')`: surrounding and inner whitespace ignored, the URL
/// alphabet accepted too, padding optional but only at the end, trailing bits dropped. `None`
/// where the SDK throws.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text.chars().filter(|c| !matches!(c, '\r' | '\n' | '\t' | '\u{c}' | '\u{b}' | ' ')).collect();
    let (body, pad) = match cleaned.find('=') {
        Some(at) => cleaned.split_at(at),
        None => (cleaned.as_str(), ""),
    };
    if !matches!(pad, "" | "=" | "==") {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Bytes as JavaScript's `TextDecoder` decodes them as UTF-8: each invalid or truncated sequence
/// becomes U+FFFD (the WHATWG decoder replaces the same maximal subparts as
/// [`String::from_utf8_lossy`]) and one leading byte-order mark is dropped. @bsv/sdk's
/// `Utils.toUTF8` is that decoder, and key ids made from random bytes (nonces) go through it.
pub fn js_utf8(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    s.strip_prefix('\u{feff}').unwrap_or(&s).to_string()
}

/// JavaScript's `a.localeCompare(b)` (ICU's root collation) for the names the SDK sorts (a
/// certificate's fields, the signed headers of BRC-104):
/// ASCII by the collation's primary order (spaces, punctuation, symbols, digits, letters; case
/// ignored), then lower case before upper case from the first difference. Other characters come
/// after ASCII by code point.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    const ORDER: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
    let primary = |c: char| -> u32 {
        let lower = c.to_ascii_lowercase();
        match ORDER.find(lower) {
            Some(i) if c.is_ascii() => i as u32,
            _ => 1000 + c as u32,
        }
    };
    let weights = |s: &str| s.chars().map(primary).collect::<Vec<_>>();
    weights(a)
        .cmp(&weights(b))
        .then_with(|| a.chars().map(|c| c.is_ascii_uppercase()).cmp(b.chars().map(|c| c.is_ascii_uppercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width_boundary() {
        for n in [0, 0xfc, 0xfd, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n));
            let mut r = Reader::new(&out, "test");
            assert_eq!(r.varint().unwrap(), n);
            r.finish().unwrap();
        }
    }

    #[test]
    fn non_canonical_varints_and_impossible_counts_are_refused() {
        for bytes in [&[0xfd, 0xfc, 0x00][..], &[0xfe, 0xff, 0xff, 0, 0], &[0xff, 1, 0, 0, 0, 0, 0, 0, 0]] {
            let e = Reader::new(bytes, "test").varint().unwrap_err();
            assert!(e.message().contains("shortest form"), "{e}");
        }
        // A count of 2^32 items in a 5-byte input.
        let e = Reader::new(&[0xfe, 0, 0, 0, 1], "test").count(1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("cannot fit"), "{e}");
        let e = Reader::new(&[0x05, 1, 2], "test").var_bytes().unwrap_err();
        assert!(e.message().contains("needs 5 more bytes"), "{e}");
    }

    #[test]
    fn field_names_sort_as_javascript_locale_compare() {
        // The order node 20's `localeCompare` gives these (checked when this was written).
        let mut names = vec!["aB", "Ab", "ab", "AB", "a_b", "a-b", "a1", "aa", "A", "a"];
        names.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(names, ["a", "A", "a_b", "a-b", "a1", "aa", "ab", "aB", "Ab", "AB"]);
    }

    #[test]
    fn base64_reads_as_the_sdk() {
        assert_eq!(base64_decode("AAEC").unwrap(), [0, 1, 2]);
        assert_eq!(base64_decode(" AA\nEC ").unwrap(), [0, 1, 2]);
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert!(base64_decode("YQ==YQ==").is_none());
        assert!(base64_decode("Y===").is_none());
        assert!(base64_decode("a!b").is_none());
        assert_eq!(base64_decode("").unwrap(), b"");
    }
}
