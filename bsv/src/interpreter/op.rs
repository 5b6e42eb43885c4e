//! The opcodes the interpreter runs, by value, and their names for error messages.

pub(super) use super::parse::{OP_VERIF, OP_VERNOTIF};
pub(super) use crate::script::op::{
    OP_0, OP_1, OP_16, OP_1NEGATE, OP_ENDIF, OP_IF, OP_NOTIF, OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4, OP_RETURN,
};

pub(super) const OP_NOP: u8 = 0x61;
pub(super) const OP_VER: u8 = 0x62;
pub(super) const OP_ELSE: u8 = 0x67;
pub(super) const OP_VERIFY: u8 = 0x69;
pub(super) const OP_TOALTSTACK: u8 = 0x6b;
pub(super) const OP_FROMALTSTACK: u8 = 0x6c;
pub(super) const OP_2DROP: u8 = 0x6d;
pub(super) const OP_2DUP: u8 = 0x6e;
pub(super) const OP_3DUP: u8 = 0x6f;
pub(super) const OP_2OVER: u8 = 0x70;
pub(super) const OP_2ROT: u8 = 0x71;
pub(super) const OP_2SWAP: u8 = 0x72;
pub(super) const OP_IFDUP: u8 = 0x73;
pub(super) const OP_DEPTH: u8 = 0x74;
pub(super) const OP_DROP: u8 = 0x75;
pub(super) const OP_DUP: u8 = 0x76;
pub(super) const OP_NIP: u8 = 0x77;
pub(super) const OP_OVER: u8 = 0x78;
pub(super) const OP_PICK: u8 = 0x79;
pub(super) const OP_ROLL: u8 = 0x7a;
pub(super) const OP_ROT: u8 = 0x7b;
pub(super) const OP_SWAP: u8 = 0x7c;
pub(super) const OP_TUCK: u8 = 0x7d;
pub(super) const OP_CAT: u8 = 0x7e;
pub(super) const OP_SPLIT: u8 = 0x7f;
pub(super) const OP_NUM2BIN: u8 = 0x80;
pub(super) const OP_BIN2NUM: u8 = 0x81;
pub(super) const OP_SIZE: u8 = 0x82;
pub(super) const OP_INVERT: u8 = 0x83;
pub(super) const OP_AND: u8 = 0x84;
pub(super) const OP_OR: u8 = 0x85;
pub(super) const OP_XOR: u8 = 0x86;
pub(super) const OP_EQUAL: u8 = 0x87;
pub(super) const OP_EQUALVERIFY: u8 = 0x88;
pub(super) const OP_1ADD: u8 = 0x8b;
pub(super) const OP_1SUB: u8 = 0x8c;
pub(super) const OP_2MUL: u8 = 0x8d;
pub(super) const OP_2DIV: u8 = 0x8e;
pub(super) const OP_NEGATE: u8 = 0x8f;
pub(super) const OP_ABS: u8 = 0x90;
pub(super) const OP_NOT: u8 = 0x91;
pub(super) const OP_0NOTEQUAL: u8 = 0x92;
pub(super) const OP_ADD: u8 = 0x93;
pub(super) const OP_SUB: u8 = 0x94;
pub(super) const OP_MUL: u8 = 0x95;
pub(super) const OP_DIV: u8 = 0x96;
pub(super) const OP_MOD: u8 = 0x97;
pub(super) const OP_LSHIFT: u8 = 0x98;
pub(super) const OP_RSHIFT: u8 = 0x99;
pub(super) const OP_BOOLAND: u8 = 0x9a;
pub(super) const OP_BOOLOR: u8 = 0x9b;
pub(super) const OP_NUMEQUAL: u8 = 0x9c;
pub(super) const OP_NUMEQUALVERIFY: u8 = 0x9d;
pub(super) const OP_NUMNOTEQUAL: u8 = 0x9e;
pub(super) const OP_LESSTHAN: u8 = 0x9f;
pub(super) const OP_GREATERTHAN: u8 = 0xa0;
pub(super) const OP_LESSTHANOREQUAL: u8 = 0xa1;
pub(super) const OP_GREATERTHANOREQUAL: u8 = 0xa2;
pub(super) const OP_MIN: u8 = 0xa3;
pub(super) const OP_MAX: u8 = 0xa4;
pub(super) const OP_WITHIN: u8 = 0xa5;
pub(super) const OP_RIPEMD160: u8 = 0xa6;
pub(super) const OP_SHA1: u8 = 0xa7;
pub(super) const OP_SHA256: u8 = 0xa8;
pub(super) const OP_HASH160: u8 = 0xa9;
pub(super) const OP_HASH256: u8 = 0xaa;
pub(super) const OP_CODESEPARATOR: u8 = 0xab;
pub(super) const OP_CHECKSIG: u8 = 0xac;
pub(super) const OP_CHECKSIGVERIFY: u8 = 0xad;
pub(super) const OP_CHECKMULTISIG: u8 = 0xae;
pub(super) const OP_CHECKMULTISIGVERIFY: u8 = 0xaf;
pub(super) const OP_NOP1: u8 = 0xb0;
/// OP_NOP2; a no-op after Genesis.
pub(super) const OP_CHECKLOCKTIMEVERIFY: u8 = 0xb1;
/// OP_NOP3; a no-op after Genesis.
pub(super) const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;
pub(super) const OP_SUBSTR: u8 = 0xb3;
pub(super) const OP_LEFT: u8 = 0xb4;
pub(super) const OP_RIGHT: u8 = 0xb5;
pub(super) const OP_LSHIFTNUM: u8 = 0xb6;
pub(super) const OP_RSHIFTNUM: u8 = 0xb7;
pub(super) const OP_NOP9: u8 = 0xb8;
pub(super) const OP_NOP10: u8 = 0xb9;

/// Names from OP_NOP (0x61) to OP_NOP10 (0xb9), in order.
const NAMES: [&str; 0xb9 - 0x61 + 1] = [
    "OP_NOP",
    "OP_VER",
    "OP_IF",
    "OP_NOTIF",
    "OP_VERIF",
    "OP_VERNOTIF",
    "OP_ELSE",
    "OP_ENDIF",
    "OP_VERIFY",
    "OP_RETURN",
    "OP_TOALTSTACK",
    "OP_FROMALTSTACK",
    "OP_2DROP",
    "OP_2DUP",
    "OP_3DUP",
    "OP_2OVER",
    "OP_2ROT",
    "OP_2SWAP",
    "OP_IFDUP",
    "OP_DEPTH",
    "OP_DROP",
    "OP_DUP",
    "OP_NIP",
    "OP_OVER",
    "OP_PICK",
    "OP_ROLL",
    "OP_ROT",
    "OP_SWAP",
    "OP_TUCK",
    "OP_CAT",
    "OP_SPLIT",
    "OP_NUM2BIN",
    "OP_BIN2NUM",
    "OP_SIZE",
    "OP_INVERT",
    "OP_AND",
    "OP_OR",
    "OP_XOR",
    "OP_EQUAL",
    "OP_EQUALVERIFY",
    "OP_RESERVED1",
    "OP_RESERVED2",
    "OP_1ADD",
    "OP_1SUB",
    "OP_2MUL",
    "OP_2DIV",
    "OP_NEGATE",
    "OP_ABS",
    "OP_NOT",
    "OP_0NOTEQUAL",
    "OP_ADD",
    "OP_SUB",
    "OP_MUL",
    "OP_DIV",
    "OP_MOD",
    "OP_LSHIFT",
    "OP_RSHIFT",
    "OP_BOOLAND",
    "OP_BOOLOR",
    "OP_NUMEQUAL",
    "OP_NUMEQUALVERIFY",
    "OP_NUMNOTEQUAL",
    "OP_LESSTHAN",
    "OP_GREATERTHAN",
    "OP_LESSTHANOREQUAL",
    "OP_GREATERTHANOREQUAL",
    "OP_MIN",
    "OP_MAX",
    "OP_WITHIN",
    "OP_RIPEMD160",
    "OP_SHA1",
    "OP_SHA256",
    "OP_HASH160",
    "OP_HASH256",
    "OP_CODESEPARATOR",
    "OP_CHECKSIG",
    "OP_CHECKSIGVERIFY",
    "OP_CHECKMULTISIG",
    "OP_CHECKMULTISIGVERIFY",
    "OP_NOP1",
    "OP_CHECKLOCKTIMEVERIFY",
    "OP_CHECKSEQUENCEVERIFY",
    "OP_SUBSTR",
    "OP_LEFT",
    "OP_RIGHT",
    "OP_LSHIFTNUM",
    "OP_RSHIFTNUM",
    "OP_NOP9",
    "OP_NOP10",
];

/// The opcode's name, or its value for those without one here.
pub(super) fn name(op: u8) -> String {
    match op {
        OP_0 => "OP_0".into(),
        1..=0x4e => format!("a push ({op:#04x})"),
        OP_1NEGATE => "OP_1NEGATE".into(),
        0x50 => "OP_RESERVED".into(),
        OP_1..=OP_16 => format!("OP_{}", op - OP_1 + 1),
        OP_NOP..=OP_NOP10 => NAMES[usize::from(op - OP_NOP)].into(),
        _ => format!("opcode {op:#04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_line_up_with_values() {
        assert_eq!(name(OP_VERIF), "OP_VERIF");
        assert_eq!(name(OP_EQUALVERIFY), "OP_EQUALVERIFY");
        assert_eq!(name(OP_WITHIN), "OP_WITHIN");
        assert_eq!(name(OP_CHECKMULTISIGVERIFY), "OP_CHECKMULTISIGVERIFY");
        assert_eq!(name(OP_RSHIFTNUM), "OP_RSHIFTNUM");
        assert_eq!(name(OP_NOP10), "OP_NOP10");
        assert_eq!(name(0x5a), "OP_10");
        assert_eq!(name(0xba), "opcode 0xba");
    }
}
