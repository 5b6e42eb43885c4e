//! The opcodes that work on data: constants, stack shuffles, splice, bitwise logic and
//! arithmetic (big numbers, as Spend computes them), and Chronicle's restored opcodes.

use num_bigint::BigInt;

use super::{
    machine::Machine,
    num,
    op::{self, *},
    Fail, MEMORY_LIMIT, MUL_LIMB_COST,
};

/// The largest push Spend allows (`maxScriptElementSize`); the memory bound is reached first.
const MAX_ELEMENT_SIZE: u64 = 1024 * 1024 * 1024;
/// The largest value JavaScript's BigInt holds (2^30 bits in V8): Spend's `OP_LSHIFT` throws
/// past it even when the bits shifted out would leave zeros.
const JS_BIGINT_MAX_BITS: u64 = 1 << 30;

impl Machine<'_> {
    /// Runs an opcode that is neither a push nor flow control.
    pub(super) fn execute_data_op(&mut self, op: u8) -> Result<(), Fail> {
        match op {
            OP_1NEGATE => self.push(vec![0x81]),
            OP_1..=OP_16 => self.push(vec![op - OP_1 + 1]),
            OP_NOP | OP_NOP1 | OP_CHECKLOCKTIMEVERIFY | OP_CHECKSEQUENCEVERIFY | OP_NOP9 | OP_NOP10 => Ok(()),
            OP_VER => self.push(self.env.version.to_le_bytes().to_vec()),
            OP_TOALTSTACK..=OP_TUCK => self.shuffle(op),
            OP_CAT..=OP_SIZE => self.splice(op),
            OP_INVERT | OP_AND | OP_OR | OP_XOR | OP_EQUAL | OP_EQUALVERIFY | OP_LSHIFT | OP_RSHIFT => self.bitwise(op),
            OP_1ADD..=OP_0NOTEQUAL => self.unary(op),
            OP_ADD..=OP_MOD | OP_BOOLAND..=OP_MAX => self.binary(op),
            OP_WITHIN => {
                self.need(3, op)?;
                let max = self.pop_number()?;
                let min = self.pop_number()?;
                let x = self.pop_number()?;
                self.push_bool(x >= min && x < max)
            }
            OP_RIPEMD160..=OP_HASH256 => self.hash(op),
            OP_CHECKSIG | OP_CHECKSIGVERIFY => self.check_sig(op),
            OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => self.check_multisig(op),
            OP_SUBSTR..=OP_RIGHT => self.substring(op),
            OP_LSHIFTNUM | OP_RSHIFTNUM => self.shift_number(op),
            _ => Err(Fail::new(format!("{} is not a valid opcode", op::name(op)))),
        }
    }

    fn shuffle(&mut self, op: u8) -> Result<(), Fail> {
        let needs = match op {
            OP_TOALTSTACK | OP_IFDUP | OP_DROP | OP_DUP => 1,
            OP_FROMALTSTACK | OP_DEPTH => 0,
            OP_3DUP | OP_ROT => 3,
            OP_2OVER | OP_2SWAP => 4,
            OP_2ROT => 6,
            _ => 2,
        };
        self.need(needs, op)?;
        let len = self.stack.items.len();
        let items = &mut self.stack.items;
        match op {
            OP_TOALTSTACK => {
                let item = self.pop()?;
                self.push_alt(item)?;
            }
            OP_FROMALTSTACK => {
                let item = self.pop_alt()?;
                self.push(item)?;
            }
            OP_2DROP => {
                self.pop()?;
                self.pop()?;
            }
            OP_2DUP => (0..2).try_for_each(|_| self.push_copy(1))?,
            OP_3DUP => (0..3).try_for_each(|_| self.push_copy(2))?,
            OP_2OVER => (0..2).try_for_each(|_| self.push_copy(3))?,
            OP_2ROT => items[len - 6..].rotate_left(2),
            OP_2SWAP => items[len - 4..].rotate_left(2),
            OP_IFDUP if num::cast_to_bool(&items[len - 1]) => self.push_copy(0)?,
            OP_IFDUP => {}
            OP_DEPTH => self.push(num::encode_usize(len))?,
            OP_DROP => drop(self.pop()?),
            OP_DUP => self.push_copy(0)?,
            OP_NIP => {
                let item = items.remove(len - 2);
                self.stack.bytes -= item.len();
            }
            OP_OVER => self.push_copy(1)?,
            OP_PICK | OP_ROLL => self.pick(op)?,
            OP_ROT => items[len - 3..].rotate_left(1),
            OP_SWAP => items.swap(len - 1, len - 2),
            _ => {
                // OP_TUCK: a copy of the top goes under the second item.
                let copy_len = items[len - 1].len();
                self.reserve(copy_len, false)?;
                let copy = self.stack.items[len - 1].clone();
                self.stack.items.insert(len - 2, copy);
                self.stack.bytes += copy_len;
            }
        }
        Ok(())
    }

    fn pick(&mut self, op: u8) -> Result<(), Fail> {
        let n = self.pop_number()?;
        let len = self.stack.items.len();
        let depth = usize::try_from(&n)
            .ok()
            .filter(|d| *d < len)
            .ok_or_else(|| Fail::new(format!("{} needs 0 <= n < {len} (the items below it), got {n}", op::name(op))))?;
        if op == OP_PICK {
            return self.push_copy(depth);
        }
        // Removing it moves the `depth` items above it (their headers).
        self.budget.charge((depth * std::mem::size_of::<Vec<u8>>()) as u64)?;
        let item = self.stack.items.remove(len - 1 - depth);
        self.stack.items.push(item);
        Ok(())
    }

    fn splice(&mut self, op: u8) -> Result<(), Fail> {
        self.need(if op == OP_BIN2NUM || op == OP_SIZE { 1 } else { 2 }, op)?;
        match op {
            OP_CAT => {
                let b = self.pop()?;
                let mut a = self.pop()?;
                if self.stack.bytes + a.len() + b.len() > MEMORY_LIMIT {
                    return Err(Fail::new(format!("OP_CAT: the stack would exceed {MEMORY_LIMIT} bytes")));
                }
                a.extend_from_slice(&b);
                self.push(a)
            }
            OP_SPLIT => {
                let at = self.pop()?;
                let mut data = self.pop()?;
                let at = self.number(&at)?;
                let at = usize::try_from(&at).ok().filter(|n| *n <= data.len()).ok_or_else(|| {
                    Fail::new(format!("OP_SPLIT at {at} is outside the {} bytes of the item", data.len()))
                })?;
                let tail = data.split_off(at);
                self.push(data)?;
                self.push(tail)
            }
            OP_NUM2BIN => self.num2bin(),
            OP_BIN2NUM => {
                let item = self.pop()?;
                self.push(num::minimally_encode(item))
            }
            _ => self.push(num::encode_usize(self.top(0)?.len())),
        }
    }

    fn num2bin(&mut self) -> Result<(), Fail> {
        let size = self.pop_number()?;
        let size = u64::try_from(&size).ok().filter(|s| *s <= MAX_ELEMENT_SIZE).ok_or_else(|| {
            Fail::new(format!("OP_NUM2BIN: the size {size} is negative or larger than {MAX_ELEMENT_SIZE} bytes"))
        })? as usize;
        let mut value = num::minimally_encode(self.pop()?);
        if value.len() > size {
            return Err(Fail::new(format!("OP_NUM2BIN: {} bytes do not hold the number's {}", size, value.len())));
        }
        if self.stack.bytes + size > MEMORY_LIMIT {
            return Err(Fail::new(format!("OP_NUM2BIN: the stack would exceed {MEMORY_LIMIT} bytes")));
        }
        if value.len() < size {
            let sign = value.last_mut().map_or(0, |b| std::mem::replace(b, *b & 0x7f) & 0x80);
            value.resize(size, 0);
            value[size - 1] |= sign;
        }
        self.push(value)
    }

    fn bitwise(&mut self, op: u8) -> Result<(), Fail> {
        self.need(if op == OP_INVERT { 1 } else { 2 }, op)?;
        match op {
            OP_INVERT => {
                let mut item = self.pop()?;
                item.iter_mut().for_each(|b| *b = !*b);
                self.push(item)
            }
            OP_LSHIFT | OP_RSHIFT => self.shift_bytes(op),
            _ => {
                let b = self.pop()?;
                let mut a = self.pop()?;
                if op == OP_EQUAL || op == OP_EQUALVERIFY {
                    let equal = a == b;
                    self.push_bool(equal)?;
                    if op == OP_EQUALVERIFY {
                        if !equal {
                            return Err(Fail::new("OP_EQUALVERIFY failed: the top two items differ"));
                        }
                        self.pop()?;
                    }
                    return Ok(());
                }
                if a.len() != b.len() {
                    return Err(Fail::new(format!("{} needs two items of the same size", op::name(op))));
                }
                for (x, y) in a.iter_mut().zip(&b) {
                    *x = match op {
                        OP_AND => *x & y,
                        OP_OR => *x | y,
                        _ => *x ^ y,
                    };
                }
                self.push(a)
            }
        }
    }

    /// OP_LSHIFT and OP_RSHIFT: the item as a big-endian bit string, shifted within its length.
    fn shift_bytes(&mut self, op: u8) -> Result<(), Fail> {
        let n = self.pop_number()?;
        let item = self.pop()?;
        let n = match u64::try_from(&n) {
            Ok(n) => n,
            Err(_) if n.sign() == num_bigint::Sign::Minus => {
                return Err(Fail::new(format!("{} needs a shift that is not negative", op::name(op))));
            }
            Err(_) => u64::MAX,
        };
        let bits = item
            .iter()
            .position(|b| *b != 0)
            .map_or(0, |i| (item.len() - i) as u64 * 8 - u64::from(item[i].leading_zeros()));
        if op == OP_LSHIFT && bits > 0 && n.saturating_add(bits) > JS_BIGINT_MAX_BITS {
            return Err(Fail::new("OP_LSHIFT: the shifted value exceeds 2^30 bits"));
        }
        let shift = n.min(item.len() as u64 * 8) as usize;
        let (bytes, bits) = (shift / 8, (shift % 8) as u32);
        let at = |i: usize| item.get(i).copied().unwrap_or(0);
        let shifted: Vec<u8> = (0..item.len())
            .map(|i| match op {
                OP_LSHIFT => {
                    let j = i + bytes;
                    let carry = if bits == 0 { 0 } else { at(j + 1) >> (8 - bits) };
                    (at(j) << bits) | carry
                }
                _ => {
                    let high = i.checked_sub(bytes).map_or(0, at);
                    let carry = if bits == 0 { 0 } else { i.checked_sub(bytes + 1).map_or(0, at) << (8 - bits) };
                    (high >> bits) | carry
                }
            })
            .collect();
        self.push(shifted)
    }

    fn unary(&mut self, op: u8) -> Result<(), Fail> {
        self.need(1, op)?;
        let n = self.pop_number()?;
        let result = match op {
            OP_1ADD => n + 1,
            OP_1SUB => n - 1,
            OP_2MUL => n * 2,
            OP_2DIV => n / 2,
            OP_NEGATE => -n,
            OP_ABS => n.magnitude().clone().into(),
            OP_NOT => BigInt::from(u8::from(n.sign() == num_bigint::Sign::NoSign)),
            _ => BigInt::from(u8::from(n.sign() != num_bigint::Sign::NoSign)),
        };
        self.push_number(&result)
    }

    fn binary(&mut self, op: u8) -> Result<(), Fail> {
        self.need(2, op)?;
        let b = self.pop()?;
        let a = self.pop()?;
        let (b, a) = (self.number(&b)?, self.number(&a)?);
        let (la, lb) = (num::byte_length(&a), num::byte_length(&b));
        // Spend's memory pre-check, on the length it predicts for the result.
        let predicted = match op {
            OP_MUL => la + lb,
            OP_ADD | OP_SUB => la.max(lb) + 1,
            _ => la.max(lb),
        };
        if self.stack.bytes + predicted > MEMORY_LIMIT {
            return Err(Fail::new(format!("{}: the stack would exceed {MEMORY_LIMIT} bytes", op::name(op))));
        }
        let limbs = |n: usize| n.div_ceil(8).max(1) as u64;
        let cost = match op {
            OP_MUL | OP_DIV | OP_MOD => limbs(la) * limbs(lb) * MUL_LIMB_COST,
            _ => (la + lb) as u64,
        };
        self.budget.charge(cost)?;
        let zero = BigInt::ZERO;
        let truth = |v: bool| BigInt::from(u8::from(v));
        let result = match op {
            OP_ADD => a + b,
            OP_SUB => a - b,
            OP_MUL => a * b,
            OP_DIV | OP_MOD if b == zero => {
                return Err(Fail::new(format!("{} cannot divide by zero", op::name(op))));
            }
            OP_DIV => a / b,
            OP_MOD => a % b,
            OP_BOOLAND => truth(a != zero && b != zero),
            OP_BOOLOR => truth(a != zero || b != zero),
            OP_NUMEQUAL | OP_NUMEQUALVERIFY => truth(a == b),
            OP_NUMNOTEQUAL => truth(a != b),
            OP_LESSTHAN => truth(a < b),
            OP_GREATERTHAN => truth(a > b),
            OP_LESSTHANOREQUAL => truth(a <= b),
            OP_GREATERTHANOREQUAL => truth(a >= b),
            OP_MIN => a.min(b),
            _ => a.max(b),
        };
        self.push_number(&result)?;
        if op == OP_NUMEQUALVERIFY {
            if !num::cast_to_bool(self.top(0)?) {
                return Err(Fail::new("OP_NUMEQUALVERIFY failed: the numbers differ"));
            }
            self.pop()?;
        }
        Ok(())
    }

    /// OP_SUBSTR, OP_LEFT and OP_RIGHT (Chronicle).
    fn substring(&mut self, op: u8) -> Result<(), Fail> {
        self.need(if op == OP_SUBSTR { 3 } else { 2 }, op)?;
        let len = self.pop_number()?;
        let offset = if op == OP_SUBSTR { Some(self.pop_number()?) } else { None };
        let item = self.pop()?;
        let size = item.len();
        let range = |v: &BigInt| usize::try_from(v).ok();
        let slice = match (op, offset) {
            (OP_SUBSTR, Some(offset)) => range(&offset)
                .filter(|o| *o < size)
                .and_then(|o| range(&len).filter(|l| *l <= size - o).map(|l| o..o + l)),
            (OP_LEFT, _) => range(&len).filter(|l| *l <= size).map(|l| 0..l),
            _ => range(&len).filter(|l| *l <= size).map(|l| size - l..size),
        };
        let slice = slice
            .ok_or_else(|| Fail::new(format!("{}: the range is outside the {size} bytes of the item", op::name(op))))?;
        self.push(item[slice].to_vec())
    }

    /// OP_LSHIFTNUM and OP_RSHIFTNUM (Chronicle): a number times or divided by 2^n (toward zero).
    fn shift_number(&mut self, op: u8) -> Result<(), Fail> {
        self.need(2, op)?;
        let bits = self.pop_number()?;
        if bits.sign() == num_bigint::Sign::Minus {
            return Err(Fail::new(format!("{} needs a shift that is not negative", op::name(op))));
        }
        let value = self.pop_number()?;
        let bits = u64::try_from(&bits).unwrap_or(u64::MAX);
        let result = if op == OP_RSHIFTNUM {
            let magnitude = if bits >= value.bits() { Default::default() } else { value.magnitude() >> bits };
            BigInt::from_biguint(value.sign(), magnitude)
        } else if value.bits() == 0 {
            value
        } else {
            let room = (MEMORY_LIMIT - self.stack.bytes) as u64;
            if bits.saturating_add(value.bits()).div_ceil(8) > room {
                return Err(Fail::new(format!("OP_LSHIFTNUM: the result would exceed {MEMORY_LIMIT} bytes")));
            }
            self.budget.charge(bits / 8)?;
            value << bits
        };
        self.push_number(&result)
    }
}
