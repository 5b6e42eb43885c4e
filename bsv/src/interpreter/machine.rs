//! The machine that runs an unlocking script, then a locking script, over one stack: its state,
//! the stacks with their bounds, the conditional stack, and the dispatch of each chunk.

use std::collections::HashMap;

use num_bigint::BigInt;

use super::{
    num,
    op::{self, name},
    parse::{self, Chunk, Chunks},
    Budget, Env, Fail, Which, MAX_STACK_ITEMS, MEMORY_LIMIT,
};

/// What a step leaves: go on, or stop this script (`OP_RETURN`).
pub(super) enum Flow {
    Next,
    End,
}

/// A stack of byte strings and the bytes it holds (what the memory bound counts, as Spend's
/// `stackMem` does: item bytes, not per-item overhead, which [`MAX_STACK_ITEMS`] bounds).
#[derive(Debug, Default)]
pub(super) struct Stack {
    pub(super) items: Vec<Vec<u8>>,
    pub(super) bytes: usize,
}

impl Stack {
    fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

/// The conditional stack: one entry per open OP_IF, with a count of the false ones so that
/// "is this branch executing" costs nothing however deep the nesting.
#[derive(Debug, Default)]
struct Conds {
    values: Vec<bool>,
    falses: usize,
}

impl Conds {
    fn push(&mut self, v: bool) {
        self.falses += usize::from(!v);
        self.values.push(v);
    }

    fn pop(&mut self) -> Option<bool> {
        let v = self.values.pop()?;
        self.falses -= usize::from(!v);
        Some(v)
    }

    fn flip(&mut self) -> Option<()> {
        let v = self.values.last_mut()?;
        *v = !*v;
        if *v {
            self.falses -= 1;
        } else {
            self.falses += 1;
        }
        Some(())
    }
}

/// One spend being evaluated.
#[derive(Debug)]
pub(super) struct Machine<'a> {
    pub(super) env: &'a Env<'a>,
    pub(super) budget: &'a mut Budget,
    pub(super) stack: Stack,
    pub(super) alt: Stack,
    conds: Conds,
    /// An `OP_RETURN` ran inside a conditional: nothing more executes, and the script ends when
    /// the conditionals close.
    returning: bool,
    /// Where the script code for signatures starts: the chunk after the last executed
    /// `OP_CODESEPARATOR` of the running script.
    pub(super) code_start: Chunks<'a>,
    /// The digests OP_CHECKSIG computed in the running script.
    pub(super) digests: HashMap<super::crypto::DigestKey, [u8; 32]>,
    /// The result of the last signature opcode, to explain a script that ends false.
    pub(super) last_sig_ok: Option<bool>,
    /// Chronicle's relaxed rules (transaction version > 1): no minimal-push, minimal-number,
    /// low-S, null-dummy, push-only or clean-stack rule.
    pub(super) relaxed: bool,
}

/// Runs `unlocking` then `locking` as `Spend.validate` does without verify flags.
pub(super) fn run(env: &Env<'_>, budget: &mut Budget, unlocking: &[u8], locking: &[u8]) -> Result<(), Fail> {
    let relaxed = env.version > 1;
    if !relaxed {
        if let Some((at, op)) = parse::first_non_push(unlocking) {
            return Err(Fail::new(format!(
                "the unlocking script may only push data (transaction version 1 or lower), but has {}",
                name(op)
            ))
            .at(Which::Unlocking, at));
        }
    }
    let mut m = Machine {
        env,
        budget,
        stack: Stack::default(),
        alt: Stack::default(),
        conds: Conds::default(),
        returning: false,
        code_start: Chunks::new(&[]),
        digests: HashMap::new(),
        last_sig_ok: None,
        relaxed,
    };
    m.run_script(Which::Unlocking, unlocking)?;
    m.run_script(Which::Locking, locking)?;
    m.require_true()?;
    if !relaxed && m.stack.items.len() != 1 {
        return Err(Fail::new(format!(
            "the clean stack rule (transaction version 1 or lower) wants one item after the scripts, found {}",
            m.stack.items.len()
        )));
    }
    Ok(())
}

impl<'a> Machine<'a> {
    fn run_script(&mut self, which: Which, script: &'a [u8]) -> Result<(), Fail> {
        self.conds = Conds::default();
        self.returning = false;
        self.alt.clear();
        self.code_start = Chunks::new(script);
        self.digests.clear();
        let mut chunks = Chunks::new(script);
        while let Some(chunk) = chunks.next() {
            match self.step(&chunk, &chunks).map_err(|f| f.at(which, chunk.start))? {
                Flow::Next => {}
                Flow::End => break,
            }
        }
        if !self.conds.values.is_empty() {
            return Err(Fail::new("every OP_IF or OP_NOTIF must be closed by OP_ENDIF before the end of the script")
                .at(which, script.len()));
        }
        self.alt.clear();
        Ok(())
    }

    /// The top item is true: what every spend must end with.
    fn require_true(&self) -> Result<(), Fail> {
        match self.stack.items.last() {
            None => Err(Fail::new("the scripts leave an empty stack; the top item must be true")),
            Some(top) if !num::cast_to_bool(top) => Err(Fail::new(match self.last_sig_ok {
                Some(false) => "the signature does not verify: the scripts end with false on the stack",
                _ => "the scripts end with false on the stack",
            })),
            Some(_) => Ok(()),
        }
    }

    fn step(&mut self, chunk: &Chunk<'a>, after: &Chunks<'a>) -> Result<Flow, Fail> {
        self.budget.charge(super::STEP_COST)?;
        if chunk.truncated {
            return Err(Fail::new("malformed push: its length runs past the end of the script"));
        }
        let executing = !self.returning && self.conds.falses == 0;
        let flow = if executing && chunk.op <= op::OP_PUSHDATA4 {
            if !self.relaxed && !minimal_push(chunk) {
                return Err(Fail::new("a push is not minimally encoded (transaction version 1 or lower)"));
            }
            self.push(chunk.data.unwrap_or_default().to_vec())?;
            Flow::Next
        } else if executing || (op::OP_IF..=op::OP_ENDIF).contains(&chunk.op) {
            self.execute(chunk.op, executing, after)?
        } else {
            Flow::Next
        };
        if self.returning && self.conds.values.is_empty() {
            return Ok(Flow::End);
        }
        Ok(flow)
    }

    /// Runs one opcode (not a push). Outside an executing branch only the conditionals get here.
    fn execute(&mut self, op: u8, executing: bool, after: &Chunks<'a>) -> Result<Flow, Fail> {
        match op {
            op::OP_IF | op::OP_NOTIF | op::OP_VERIF | op::OP_VERNOTIF => self.open_conditional(op, executing)?,
            op::OP_ELSE => self.conds.flip().ok_or_else(|| Fail::new("OP_ELSE without a preceding OP_IF"))?,
            op::OP_ENDIF => {
                self.conds.pop().ok_or_else(|| Fail::new("OP_ENDIF without a preceding OP_IF"))?;
            }
            op::OP_RETURN if self.conds.values.is_empty() => return Ok(Flow::End),
            op::OP_RETURN => self.returning = true,
            op::OP_VERIFY => {
                self.need(1, op)?;
                if !num::cast_to_bool(self.top(0)?) {
                    return Err(Fail::new("OP_VERIFY failed: the top stack item is false"));
                }
                self.pop()?;
            }
            op::OP_CODESEPARATOR => self.code_start = after.clone(),
            _ => self.execute_data_op(op)?,
        }
        Ok(Flow::Next)
    }

    fn open_conditional(&mut self, op: u8, executing: bool) -> Result<(), Fail> {
        let mut value = false;
        if executing {
            self.need(1, op)?;
            let item = self.pop()?;
            value = match op {
                op::OP_IF | op::OP_NOTIF => num::cast_to_bool(&item),
                _ => item == self.env.version.to_le_bytes(),
            };
            if op == op::OP_NOTIF || op == op::OP_VERNOTIF {
                value = !value;
            }
        }
        self.conds.push(value);
        Ok(())
    }

    /// Fails unless the stack holds at least `n` items for `op`.
    pub(super) fn need(&self, n: usize, op: u8) -> Result<(), Fail> {
        if self.stack.items.len() < n {
            return Err(Fail::new(format!(
                "{} requires at least {n} items on the stack, it has {}",
                name(op),
                self.stack.items.len()
            )));
        }
        Ok(())
    }

    /// The item `depth` below the top (0 is the top).
    pub(super) fn top(&self, depth: usize) -> Result<&Vec<u8>, Fail> {
        let len = self.stack.items.len();
        len.checked_sub(depth + 1)
            .map(|i| &self.stack.items[i])
            .ok_or_else(|| Fail::new(format!("stack underflow: no item {depth} below the top of {len}")))
    }

    /// Fails unless `n` more bytes fit on the stack, or `alt` stack, and one more item; charges
    /// the copy of `n` bytes.
    pub(super) fn reserve(&mut self, n: usize, alt: bool) -> Result<(), Fail> {
        let (stack, what) = if alt { (&self.alt, "alt stack") } else { (&self.stack, "stack") };
        if stack.bytes + n > MEMORY_LIMIT {
            return Err(Fail::new(format!("{what} memory usage would exceed {MEMORY_LIMIT} bytes")));
        }
        if self.stack.items.len() + self.alt.items.len() >= MAX_STACK_ITEMS {
            return Err(Fail::new(format!("the stacks would hold more than {MAX_STACK_ITEMS} items")));
        }
        self.budget.charge(n as u64)
    }

    pub(super) fn push(&mut self, item: Vec<u8>) -> Result<(), Fail> {
        self.reserve(item.len(), false)?;
        self.stack.bytes += item.len();
        self.stack.items.push(item);
        Ok(())
    }

    pub(super) fn push_alt(&mut self, item: Vec<u8>) -> Result<(), Fail> {
        self.reserve(item.len(), true)?;
        self.alt.bytes += item.len();
        self.alt.items.push(item);
        Ok(())
    }

    pub(super) fn pop(&mut self) -> Result<Vec<u8>, Fail> {
        let item = self.stack.items.pop().ok_or_else(|| Fail::new("attempted to pop from an empty stack"))?;
        self.stack.bytes -= item.len();
        Ok(item)
    }

    pub(super) fn pop_alt(&mut self) -> Result<Vec<u8>, Fail> {
        let item = self.alt.items.pop().ok_or_else(|| Fail::new("OP_FROMALTSTACK: the alt stack is empty"))?;
        self.alt.bytes -= item.len();
        Ok(item)
    }

    /// Pushes a copy of the item `depth` below the top.
    pub(super) fn push_copy(&mut self, depth: usize) -> Result<(), Fail> {
        let len = self.top(depth)?.len();
        self.reserve(len, false)?;
        let copy = self.top(depth)?.clone();
        self.stack.bytes += len;
        self.stack.items.push(copy);
        Ok(())
    }

    /// Reads a number operand (minimally encoded unless relaxed).
    pub(super) fn number(&self, bytes: &[u8]) -> Result<BigInt, Fail> {
        num::decode(bytes, !self.relaxed)
    }

    pub(super) fn pop_number(&mut self) -> Result<BigInt, Fail> {
        let item = self.pop()?;
        self.number(&item)
    }

    pub(super) fn push_number(&mut self, n: &BigInt) -> Result<(), Fail> {
        self.push(num::encode(n))
    }

    pub(super) fn push_bool(&mut self, b: bool) -> Result<(), Fail> {
        self.push(if b { vec![1] } else { Vec::new() })
    }
}

/// Whether a push chunk uses the shortest encoding of its data (Spend's MINIMALDATA default
/// for version 1). `OP_0` parses without data and is minimal.
fn minimal_push(chunk: &Chunk<'_>) -> bool {
    let Some(data) = chunk.data else { return true };
    let op = chunk.op;
    match data {
        [] => op == op::OP_0,
        [n @ 1..=16] => op == op::OP_1 + n - 1,
        [0x81] => op == op::OP_1NEGATE,
        _ if data.len() <= 0x4b => usize::from(op) == data.len(),
        _ if data.len() <= 0xff => op == op::OP_PUSHDATA1,
        _ if data.len() <= 0xffff => op == op::OP_PUSHDATA2,
        _ => true,
    }
}
