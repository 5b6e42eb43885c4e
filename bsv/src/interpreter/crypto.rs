//! The hashing and signature opcodes. Signatures sign the FORKID digest (BIP143) of the script
//! code: the running script from its last executed OP_CODESEPARATOR, without the signatures'
//! own pushes (`findAndDelete`).

use k256::ecdsa::VerifyingKey;
use ripemd::Ripemd160;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{
    machine::Machine,
    op::{self, *},
    parse::{self, Deleted},
    sig::{self, TxSignature},
    Fail, HASH_BYTE_COST, KEY_PARSE_COST, SIG_CHECK_COST,
};
use crate::hash::{hash160, hash256};

/// The most keys OP_CHECKMULTISIG accepts after Genesis (Spend's `maxMultisigKeyCount`); the
/// stack's item bound is reached first.
const MAX_MULTISIG_KEYS: u64 = (1 << 31) - 1;
/// The cost of adding one signature to the set `findAndDelete` removes, besides hashing it.
const DELETED_ENTRY_COST: u64 = 64;

/// A digest OP_CHECKSIG computed: where the script code starts, the signature deleted from it,
/// and the hash type. A script that checks the same signature many times builds and hashes its
/// script code once.
pub(super) type DigestKey = (usize, Vec<u8>, u8);

impl Machine<'_> {
    pub(super) fn hash(&mut self, op: u8) -> Result<(), Fail> {
        self.need(1, op)?;
        let item = self.pop()?;
        self.budget.charge(item.len() as u64 * HASH_BYTE_COST)?;
        let digest = match op {
            OP_RIPEMD160 => Ripemd160::digest(&item).to_vec(),
            OP_SHA1 => Sha1::digest(&item).to_vec(),
            OP_SHA256 => Sha256::digest(&item).to_vec(),
            OP_HASH160 => hash160(&item).to_vec(),
            _ => hash256(&item).to_vec(),
        };
        self.push(digest)
    }

    pub(super) fn check_sig(&mut self, op: u8) -> Result<(), Fail> {
        self.need(2, op)?;
        let key = self.pop()?;
        let signature = self.pop()?;
        let parsed = sig::check_signature(&signature, self.relaxed)?;
        let key = self.public_key(&key)?;
        let ok = match parsed {
            None => false,
            Some(parsed) => {
                require_forkid(&parsed)?;
                let cache_key = (parse::position(&self.code_start), signature.clone(), parsed.scope);
                let digest = match self.digests.get(&cache_key) {
                    Some(digest) => *digest,
                    None => {
                        self.charge_script_code()?;
                        let code = self.script_code([signature.as_slice()]);
                        let digest = self.digest(parsed.scope, &code)?;
                        self.digests.insert(cache_key, digest);
                        digest
                    }
                };
                self.check_ecdsa(&parsed, &key, &digest)?
            }
        };
        self.finish_sig_op(op, ok)
    }

    /// OP_CHECKMULTISIG: `dummy <m sigs> m <n keys> n`, each signature matched against the keys
    /// in order, as Spend does.
    pub(super) fn check_multisig(&mut self, op: u8) -> Result<(), Fail> {
        self.need(1, op)?;
        let keys = self.count(0, MAX_MULTISIG_KEYS, "key count")?;
        self.need(keys + 2, op)?;
        let sigs = self.count(keys + 1, keys as u64, "signature count (at most the key count)")?;
        self.need(keys + sigs + 3, op)?;
        let (first_key, first_sig) = (1, keys + 2);
        let len = self.stack.items.len();
        let code = if sigs == 0 {
            Vec::new()
        } else {
            let range = len - first_sig - sigs..len - first_sig;
            let bytes: usize = self.stack.items[range.clone()].iter().map(Vec::len).sum();
            self.budget.charge(bytes as u64 * HASH_BYTE_COST + sigs as u64 * DELETED_ENTRY_COST)?;
            self.charge_script_code()?;
            self.script_code(self.stack.items[range].iter().map(Vec::as_slice))
        };
        let mut digests: Vec<(u8, [u8; 32])> = Vec::new();
        let (mut isig, mut ikey, mut sigs_left, mut keys_left) = (first_sig, first_key, sigs, keys);
        let mut ok = true;
        while ok && sigs_left > 0 {
            // Checked where they lie (an operand may be large), copied once known to be small.
            let signature = {
                let s = self.top(isig)?;
                sig::check_signature(s, self.relaxed)?;
                s.clone()
            };
            let parsed = sig::check_signature(&signature, self.relaxed)?;
            self.budget.charge(KEY_PARSE_COST)?;
            let key = sig::check_public_key(self.top(ikey)?)?;
            if let Some(parsed) = parsed {
                require_forkid(&parsed)?;
                let digest = match digests.iter().find(|(scope, _)| *scope == parsed.scope) {
                    Some((_, digest)) => *digest,
                    None => {
                        let digest = self.digest(parsed.scope, &code)?;
                        digests.push((parsed.scope, digest));
                        digest
                    }
                };
                if self.check_ecdsa(&parsed, &key, &digest)? {
                    isig += 1;
                    sigs_left -= 1;
                }
            }
            ikey += 1;
            keys_left -= 1;
            ok = sigs_left <= keys_left;
        }
        for _ in 0..keys + sigs + 2 {
            self.pop()?;
        }
        let dummy = self.pop()?;
        if !self.relaxed && !dummy.is_empty() {
            return Err(Fail::new(format!(
                "{}: the extra (dummy) item must be empty (transaction version 1 or lower)",
                op::name(op)
            )));
        }
        self.finish_sig_op(op, ok)
    }

    /// The number `depth` below the top, as a count from 0 to `max`.
    fn count(&self, depth: usize, max: u64, what: &str) -> Result<usize, Fail> {
        let n = self.number(self.top(depth)?)?;
        u64::try_from(&n)
            .ok()
            .filter(|n| *n <= max)
            .map(|n| n as usize)
            .ok_or_else(|| Fail::new(format!("OP_CHECKMULTISIG: the {what} {n} is out of range 0..={max}")))
    }

    fn public_key(&mut self, bytes: &[u8]) -> Result<VerifyingKey, Fail> {
        self.budget.charge(KEY_PARSE_COST)?;
        sig::check_public_key(bytes)
    }

    /// Charges reading the script code (walking the chunks costs about what hashing does).
    fn charge_script_code(&mut self) -> Result<(), Fail> {
        self.budget.charge(parse::remaining(&self.code_start) as u64 * HASH_BYTE_COST)
    }

    /// The script code from the last OP_CODESEPARATOR, without the pushes of `signatures`.
    fn script_code<'s>(&self, signatures: impl IntoIterator<Item = &'s [u8]>) -> Vec<u8> {
        let mut deleted = Deleted::default();
        signatures.into_iter().for_each(|s| deleted.insert(s));
        parse::script_code(&self.code_start, &deleted)
    }

    /// The FORKID digest input `index` signs with hash type `scope` over `code`.
    fn digest(&mut self, scope: u8, code: &[u8]) -> Result<[u8; 32], Fail> {
        self.budget.charge(code.len() as u64 * HASH_BYTE_COST)?;
        let env = self.env;
        env.sighasher.digest(env.index, code, env.satoshis, u32::from(scope)).map_err(|e| Fail::new(e.message()))
    }

    fn check_ecdsa(&mut self, parsed: &TxSignature<'_>, key: &VerifyingKey, digest: &[u8; 32]) -> Result<bool, Fail> {
        self.budget.charge(SIG_CHECK_COST)?;
        Ok(parsed.verify(key, digest))
    }

    fn finish_sig_op(&mut self, op: u8, ok: bool) -> Result<(), Fail> {
        self.last_sig_ok = Some(ok);
        self.push_bool(ok)?;
        if op == OP_CHECKSIGVERIFY || op == OP_CHECKMULTISIGVERIFY {
            if !ok {
                return Err(Fail::new(format!("{} failed: the signature does not verify", op::name(op))));
            }
            self.pop()?;
        }
        Ok(())
    }
}

/// Refuses a signature whose hash type selects another digest than FORKID's.
fn require_forkid(parsed: &TxSignature<'_>) -> Result<(), Fail> {
    if parsed.is_forkid() {
        return Ok(());
    }
    Err(Fail::new(format!(
        "the signature's hash type {:#04x} does not select the FORKID digest (SIGHASH_FORKID set, \
         SIGHASH_CHRONICLE clear), the only one this wallet verifies",
        parsed.scope
    )))
}
