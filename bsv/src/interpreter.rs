//! A script interpreter: checks that an input's unlocking script, followed by the locking script
//! of the output it spends, succeeds, as @bsv/sdk 2.1.0's `Spend.validate()` does without verify
//! flags (its post-Genesis rules, with Chronicle's opcodes). A wallet runs it on every input of a
//! transaction it is given before counting the outputs as received.
//!
//! What it follows from Spend:
//! - Every post-Genesis opcode: pushes, flow control, stack, splice (OP_CAT, OP_SPLIT,
//!   OP_NUM2BIN, OP_BIN2NUM, OP_SIZE), bitwise logic and shifts, arithmetic on numbers of any
//!   length (up to [`MAX_NUMBER_SIZE`]), hashes, OP_CODESEPARATOR, OP_CHECKSIG(VERIFY) and
//!   OP_CHECKMULTISIG(VERIFY); Chronicle's OP_VER, OP_VERIF, OP_VERNOTIF, OP_SUBSTR, OP_LEFT,
//!   OP_RIGHT, OP_LSHIFTNUM, OP_RSHIFTNUM, OP_2MUL and OP_2DIV; OP_NOP1, CLTV, CSV, OP_NOP9 and
//!   OP_NOP10 as no-ops; OP_RESERVED, OP_RESERVED1/2 and 0xba..=0xff fail when executed.
//! - Transactions of version 1 or lower get the malleability rules: push-only unlocking scripts,
//!   minimal pushes and numbers, low S, an empty CHECKMULTISIG dummy, and a clean stack (one item
//!   left). Higher versions (the version read as unsigned, as the SDK reads it) get Chronicle's
//!   relaxed rules, where none of these apply.
//! - Signatures are always strict DER with a defined hash type, public keys 33 or 65 bytes on
//!   the curve; a high S verifies where low S is not required.
//! - Its quirks too: OP_LSHIFT fails when the shifted value would pass 2^30 bits (JavaScript's
//!   BigInt limit), and a push cut short by the end of the script fails only when reached.
//!
//! Where it differs: a non-empty signature whose hash type does not select the FORKID digest
//! (SIGHASH_FORKID clear, or SIGHASH_CHRONICLE set) is an error here, where Spend computes the
//! original (pre-fork) digest; and the bounds below, which Spend does not all have. Both refuse
//! what Spend might accept, never the reverse.
//!
//! Bounds, so that bytes from anyone cost little: each script is at most [`MAX_SCRIPT_SIZE`]
//! bytes; each stack holds at most [`MEMORY_LIMIT`] bytes (Spend's own limit) and both together
//! at most [`MAX_STACK_ITEMS`] items; number operands are at most [`MAX_NUMBER_SIZE`] bytes; and
//! all the work of one call, every input of a transaction together, is charged against
//! [`WORK_BUDGET`] before it is done. Scripts have no loops, and every step is charged, so a call
//! takes about half a second at most and about 250 MB at most (two full stacks, and for the
//! largest script its script code and the preimage that hashes it), whatever the scripts.

mod crypto;
mod machine;
mod num;
mod op;
mod ops;
mod parse;
mod sig;

use std::fmt;

use wallet_traits::{Error, ErrorKind, Result};

use crate::{sighash::Sighasher, Script, Transaction};

/// The most bytes an unlocking or locking script may have: 64 MiB. BSV has no consensus limit
/// after Genesis; this leaves room for large inscriptions while bounding the parse.
pub const MAX_SCRIPT_SIZE: usize = 64 * 1024 * 1024;

/// The most bytes the items of the stack may hold, and separately those of the alt stack:
/// Spend's default `memoryLimit`. Checked before any item is built, so OP_CAT, OP_NUM2BIN,
/// OP_LSHIFTNUM and copies never allocate past it.
pub const MEMORY_LIMIT: usize = 32_000_000;

/// The most items the stack and the alt stack may hold together. Spend counts only item bytes;
/// this bounds what empty items cost (a script of one-byte pushes or OP_3DUPs).
pub const MAX_STACK_ITEMS: usize = 1_000_000;

/// The longest number operand, in bytes: BSV's consensus limit after Genesis (750,000). Numbers
/// are read only up to this length, and OP_MUL, OP_DIV and OP_MOD are charged by the product of
/// their operands' sizes.
pub const MAX_NUMBER_SIZE: usize = 750_000;

/// The work one call may do, in units of roughly a nanosecond (about half a second in an
/// optimized build): each chunk costs 16 units, each byte an opcode copies or produces one, each
/// byte hashed (by the hash opcodes, and the script code each signature signs) four, each public
/// key parsed 15,000, each ECDSA verification 200,000, and each pair of 64-bit limbs multiplied
/// or divided two. `verify_spends` shares one budget among all inputs of the transaction, so a
/// transaction may check about 2,300 signatures (P2PKH inputs) and no more.
pub const WORK_BUDGET: u64 = 500_000_000;

/// The cost of reading and dispatching one chunk.
const STEP_COST: u64 = 16;
/// The cost of hashing one byte (RIPEMD-160, the slowest, takes about 3.5 ns a byte).
const HASH_BYTE_COST: u64 = 4;
/// The cost of parsing a public key (a compressed one needs a square root: about 14 µs).
const KEY_PARSE_COST: u64 = 15_000;
/// The cost of one ECDSA verification (k256 takes 150 to 300 µs on the machines we measured).
const SIG_CHECK_COST: u64 = 200_000;
/// The cost of one limb product in OP_MUL, OP_DIV, OP_MOD.
const MUL_LIMB_COST: u64 = 2;

/// Runs input `index` of `tx`: its unlocking script, then the locking script of the output it
/// spends (`source_script`, worth `source_satoshis`), with the FORKID sighash for
/// OP_CHECKSIG(VERIFY) and OP_CHECKMULTISIG(VERIFY). Ok(()) when the script succeeds (top of
/// stack true, clean stack as Spend requires).
pub fn verify_input(tx: &Transaction, index: usize, source_script: &Script, source_satoshis: u64) -> Result<()> {
    let sighasher = Sighasher::new(tx);
    let mut budget = Budget { left: WORK_BUDGET };
    verify(&sighasher, tx, index, source_script, source_satoshis, &mut budget)
}

/// [`verify_input`] for every input of `tx`, which must carry its source outputs (Extended
/// Format / BEEF-resolved: `TxInput::source_output`); an input without one is an error. The
/// transaction is hashed once for all inputs, and all inputs share one [`WORK_BUDGET`].
pub fn verify_spends(tx: &Transaction) -> Result<()> {
    let sighasher = Sighasher::new(tx);
    let mut budget = Budget { left: WORK_BUDGET };
    for (index, input) in tx.inputs.iter().enumerate() {
        let source = input.source_output.as_ref().ok_or_else(|| input_error(index, NO_SOURCE))?;
        verify(&sighasher, tx, index, &source.locking_script, source.satoshis, &mut budget)?;
    }
    Ok(())
}

const NO_SOURCE: &str = "has no source output (the locking script and amount it spends); verifying needs \
                         Extended Format or BEEF-resolved inputs";

fn verify(
    sighasher: &Sighasher<'_>,
    tx: &Transaction,
    index: usize,
    locking: &Script,
    satoshis: u64,
    budget: &mut Budget,
) -> Result<()> {
    let input = tx
        .inputs
        .get(index)
        .ok_or_else(|| input_error(index, format!("does not exist; the transaction has {}", tx.inputs.len())))?;
    for (which, script) in [(Which::Unlocking, &input.unlocking_script), (Which::Locking, locking)] {
        if script.len() > MAX_SCRIPT_SIZE {
            let why = format!("its {which} of {} bytes is larger than the {MAX_SCRIPT_SIZE} allowed", script.len());
            return Err(input_error(index, why));
        }
    }
    let env = Env { sighasher, index, satoshis, version: tx.version };
    machine::run(&env, budget, input.unlocking_script.as_bytes(), locking.as_bytes())
        .map_err(|fail| input_error(index, fail.to_string()))
}

fn input_error(index: usize, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("input {index}: {why}")).with_context("input", index)
}

/// What a spend's signature checks read besides the scripts.
#[derive(Debug)]
struct Env<'a> {
    sighasher: &'a Sighasher<'a>,
    index: usize,
    satoshis: u64,
    version: u32,
}

/// The work left to a call (see [`WORK_BUDGET`]).
#[derive(Debug)]
struct Budget {
    left: u64,
}

impl Budget {
    fn charge(&mut self, units: u64) -> std::result::Result<(), Fail> {
        self.left = self.left.checked_sub(units).ok_or_else(|| {
            Fail::new(format!("the scripts need more work than the bound allows ({WORK_BUDGET} units per call)"))
        })?;
        Ok(())
    }
}

/// Which script a failure is in.
#[derive(Debug, Clone, Copy)]
enum Which {
    Unlocking,
    Locking,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Unlocking => "unlocking script",
            Which::Locking => "locking script",
        })
    }
}

/// Why a spend fails, and where.
#[derive(Debug)]
struct Fail {
    message: String,
    at: Option<(Which, usize)>,
}

impl Fail {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), at: None }
    }

    /// Places the failure at byte `offset` of `which`, unless it is placed already.
    fn at(mut self, which: Which, offset: usize) -> Self {
        self.at.get_or_insert((which, offset));
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match self.at {
            Some((which, offset)) => write!(f, " ({which}, byte {offset})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
