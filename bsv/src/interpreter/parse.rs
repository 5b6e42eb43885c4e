//! Scripts read chunk by chunk as @bsv/sdk's `Script` parses them, without copying: a push that
//! runs past the end is kept (marked truncated) and fails only when execution reaches it, and an
//! `OP_RETURN` outside a conditional takes every byte after it as its data.

use std::{borrow::Cow, collections::HashSet};

use crate::script::op::{OP_ENDIF, OP_IF, OP_NOTIF, OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4, OP_RETURN};

/// `OP_VERIF` and `OP_VERNOTIF` open a conditional like `OP_IF` (Chronicle).
pub(super) const OP_VERIF: u8 = 0x65;
pub(super) const OP_VERNOTIF: u8 = 0x66;

/// One chunk of a script: where it sits and what it pushes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chunk<'a> {
    pub(super) op: u8,
    /// The pushed bytes (for a truncated push, those that exist), or an `OP_RETURN`'s tail.
    /// `None` for `OP_0` and every other opcode.
    pub(super) data: Option<&'a [u8]>,
    /// A push whose length (or length prefix) runs past the end of the script.
    pub(super) truncated: bool,
    /// Byte offsets of the chunk in its script.
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Chunk<'_> {
    /// The chunk's bytes as @bsv/sdk serializes a parsed chunk: its own bytes, except that a
    /// truncated PUSHDATA is written with the length of the data it has.
    pub(super) fn serialized<'s>(&self, script: &'s [u8]) -> Cow<'s, [u8]> {
        let raw = &script[self.start..self.end];
        let Some(data) = self.data.filter(|_| self.truncated && self.op >= OP_PUSHDATA1) else {
            return Cow::Borrowed(raw);
        };
        let mut out = vec![self.op];
        let n = data.len();
        match self.op {
            OP_PUSHDATA1 => out.push(n as u8),
            OP_PUSHDATA2 => out.extend_from_slice(&(n as u16).to_le_bytes()),
            _ => out.extend_from_slice(&(n as u32).to_le_bytes()),
        }
        out.extend_from_slice(data);
        Cow::Owned(out)
    }
}

/// The chunks of a script from some position on. Cloning it saves the position (and the
/// conditional depth that decides where an `OP_RETURN` tail starts), as `OP_CODESEPARATOR` needs.
#[derive(Debug, Clone)]
pub(super) struct Chunks<'a> {
    script: &'a [u8],
    pos: usize,
    /// Conditionals opened minus closed so far, as the SDK's parser counts them (it may go
    /// negative: a stray `OP_ENDIF` lets a later `OP_RETURN` be an ordinary opcode).
    depth: i64,
}

impl<'a> Chunks<'a> {
    pub(super) fn new(script: &'a [u8]) -> Self {
        Self { script, pos: 0, depth: 0 }
    }

    /// `n` bytes from `at`, or as many as exist; and whether all `n` did.
    fn slice(&self, at: usize, n: usize) -> (&'a [u8], bool) {
        let end = at.saturating_add(n).min(self.script.len());
        (&self.script[at.min(end)..end], end - at.min(end) == n)
    }

    /// A little-endian length of `width` bytes at `at`; `None` when the script ends first.
    fn length(&self, at: usize, width: usize) -> Option<usize> {
        let (bytes, whole) = self.slice(at, width);
        whole.then(|| bytes.iter().rev().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        let start = self.pos;
        let op = *self.script.get(start)?;
        let after_op = start + 1;
        if op == OP_RETURN && self.depth == 0 {
            self.pos = self.script.len();
            let data = Some(&self.script[after_op..]);
            return Some(Chunk { op, data, truncated: false, start, end: self.pos });
        }
        match op {
            OP_IF | OP_NOTIF | OP_VERIF | OP_VERNOTIF => self.depth += 1,
            OP_ENDIF => self.depth -= 1,
            _ => {}
        }
        let (width, len) = match op {
            1..=0x4b => (0, Some(usize::from(op))),
            OP_PUSHDATA1 => (1, self.length(after_op, 1)),
            OP_PUSHDATA2 => (2, self.length(after_op, 2)),
            OP_PUSHDATA4 => (4, self.length(after_op, 4)),
            _ => {
                self.pos = after_op;
                return Some(Chunk { op, data: None, truncated: false, start, end: after_op });
            }
        };
        let data_at = (after_op + width).min(self.script.len());
        let (data, whole) = match len {
            Some(n) => self.slice(data_at, n),
            None => (&self.script[data_at..data_at], false),
        };
        self.pos = data_at + data.len();
        Some(Chunk { op, data: Some(data), truncated: !whole, start, end: self.pos })
    }
}

/// Whether every chunk is a push or a small-number opcode (`OP_0` to `OP_16`, `OP_1NEGATE`,
/// and `OP_RESERVED`, which is in that range): what `isPushOnly` accepts. Returns the offset of
/// the first opcode that is not, if any.
pub(super) fn first_non_push(script: &[u8]) -> Option<(usize, u8)> {
    Chunks::new(script).find(|c| c.op > 0x60).map(|c| (c.start, c.op))
}

/// The opcode `Script.writeBin` pushes `len` bytes with: what `findAndDelete` looks for.
fn write_bin_op(len: usize) -> u8 {
    match len {
        0 => 0,
        1..=0x4b => len as u8,
        0x4c..=0xff => OP_PUSHDATA1,
        0x100..=0xffff => OP_PUSHDATA2,
        _ => OP_PUSHDATA4,
    }
}

/// The signatures `findAndDelete` removes from a script code: a chunk goes when it is one of
/// them pushed as `Script.writeBin` pushes it (the same opcode and data; for a truncated
/// PUSHDATA, which the SDK writes back with its actual length, the same holds).
#[derive(Debug, Default)]
pub(super) struct Deleted<'d> {
    data: HashSet<&'d [u8]>,
    shortest: usize,
    longest: usize,
}

impl<'d> Deleted<'d> {
    pub(super) fn insert(&mut self, data: &'d [u8]) {
        let n = data.len();
        (self.shortest, self.longest) =
            if self.data.is_empty() { (n, n) } else { (self.shortest.min(n), self.longest.max(n)) };
        self.data.insert(data);
    }

    /// Whether `chunk` is deleted (most chunks are ruled out by opcode and length, unhashed).
    fn contains(&self, chunk: &Chunk<'_>) -> bool {
        let data = chunk.data.unwrap_or_default();
        chunk.op <= OP_PUSHDATA4
            && chunk.op == write_bin_op(data.len())
            && (self.shortest..=self.longest).contains(&data.len())
            && self.data.contains(data)
    }
}

/// The script code a signature signs: the chunks from `from` on (after the last executed
/// `OP_CODESEPARATOR`), each as the SDK serializes it, without the `deleted` signatures.
pub(super) fn script_code(from: &Chunks<'_>, deleted: &Deleted<'_>) -> Vec<u8> {
    let script = from.script;
    let mut out = Vec::with_capacity(script.len() - from.pos);
    for chunk in from.clone() {
        if !deleted.contains(&chunk) {
            out.extend_from_slice(&chunk.serialized(script));
        }
    }
    out
}

/// Where `from` stands in its script: with the script, what a script code depends on.
pub(super) fn position(from: &Chunks<'_>) -> usize {
    from.pos
}

/// Bytes from `from` to the end: what [`script_code`] reads.
pub(super) fn remaining(from: &Chunks<'_>) -> usize {
    from.script.len() - from.pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hex: &str) -> Vec<(u8, Option<Vec<u8>>, bool)> {
        let bytes = hex::decode(hex).unwrap();
        Chunks::new(&bytes).map(|c| (c.op, c.data.map(<[u8]>::to_vec), c.truncated)).collect()
    }

    #[test]
    fn truncated_pushes_are_kept_and_marked() {
        assert_eq!(parse("02417a"), vec![(2, Some(vec![0x41, 0x7a]), false)]);
        assert_eq!(parse("0341"), vec![(3, Some(vec![0x41]), true)]);
        assert_eq!(parse("4c"), vec![(0x4c, Some(vec![]), true)]);
        assert_eq!(parse("4d01"), vec![(0x4d, Some(vec![]), true)]);
        assert_eq!(parse("4e0200000041"), vec![(0x4e, Some(vec![0x41]), true)]);
        assert_eq!(parse("4c0000"), vec![(0x4c, Some(vec![]), false), (0, None, false)]);
    }

    #[test]
    fn op_return_takes_the_rest_only_outside_conditionals() {
        assert_eq!(parse("6a4c"), vec![(0x6a, Some(vec![0x4c]), false)]);
        assert_eq!(parse("636a6851").len(), 4);
        // A stray ENDIF makes the depth negative, so OP_RETURN is an ordinary opcode.
        assert_eq!(parse("686a51").len(), 3);
        assert_eq!(parse("656a68").len(), 3, "OP_VERIF opens a conditional");
    }

    #[test]
    fn script_code_deletes_whole_matching_pushes_and_reserializes_truncated_ones() {
        let script = hex::decode("0102ab0102004c").unwrap();
        let all = Chunks::new(&script);
        let deleted = |data: &'static [u8]| {
            let mut d = Deleted::default();
            d.insert(data);
            d
        };
        assert_eq!(hex::encode(script_code(&all, &deleted(&[2]))), "ab004c00");
        assert_eq!(hex::encode(script_code(&all, &deleted(&[]))), "0102ab01024c00");
        assert_eq!(hex::encode(script_code(&all, &Deleted::default())), "0102ab0102004c00");
        // Only the push Script.writeBin would write matches: not OP_2, not a PUSHDATA1 of one byte.
        let other = hex::decode("52 4c0102 0102".replace(' ', "")).unwrap();
        assert_eq!(hex::encode(script_code(&Chunks::new(&other), &deleted(&[2]))), "524c0102");
        assert_eq!(first_non_push(&script), Some((2, 0xab)));
        assert_eq!(first_non_push(&hex::decode("0051604f50").unwrap()), None);
    }
}
