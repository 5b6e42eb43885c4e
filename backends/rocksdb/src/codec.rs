//! The byte layout of keys and values (documented in `docs.md`, section Notes).
//!
//! Keys sort the way the store scans them: RocksDB orders keys bytewise, so integers are
//! big-endian and variable-length names carry a length prefix (wallet `a` is `01 61`, a range
//! that no key of wallet `ab`, `02 61 62`, falls into).

use std::fmt;

use wallet_traits::{
    Approval, AuditRecord, Error, ErrorKind, ExecutionId, KeyId, LedgerEntry, Result, ShareMeta, ShareState,
    StoredShare, WalletId,
};

use crate::ROCKSDB_SCHEME;

/// The first byte of every value this release writes; a reader refuses any other.
pub(crate) const VALUE_ENCODING: u8 = 1;

/// The layout version kept under [`META_LAYOUT`]: column families, keys and value encodings.
/// Layout 2 added derivation-cache recency ([`CF_DERIVATION_USES`], the `used` field of
/// [`encode_derivation`]); layout 3 the policy state (the `policy_*` column families, from
/// [`CF_POLICY_LEDGER`] on). Older directories are upgraded when they open.
pub(crate) const LAYOUT_VERSION: u8 = 3;

/// The layout before derivation-cache recency: derivation values were [`encode_blob`]s.
pub(crate) const LAYOUT_WITHOUT_RECENCY: u8 = 1;

/// The layout before policy state: the same records, without the policy column families (which
/// open empty).
pub(crate) const LAYOUT_WITHOUT_POLICY: u8 = 2;

/// Column family of share records.
pub(crate) const CF_SHARES: &str = "shares";
/// Column family of derivation-cache entries.
pub(crate) const CF_DERIVATIONS: &str = "derivations";
/// Column family of prime pairs.
pub(crate) const CF_PRIMES: &str = "primes";
/// Column family of the store's own bookkeeping.
pub(crate) const CF_META: &str = "meta";
/// Column family indexing derivation-cache entries by last use: [`derivation_use_key`] to the
/// entry's lookup, so eviction walks one key's entries oldest use first without reading values.
pub(crate) const CF_DERIVATION_USES: &str = "derivation_uses";
/// Column family of the policy ledger: [`policy_ledger_key`] to [`encode_ledger_entry`].
pub(crate) const CF_POLICY_LEDGER: &str = "policy_ledger";
/// Column family indexing ledger entries by when they were charged: [`policy_window_key`] to
/// [`encode_charged`], so a window is one range scan over the entries inside it.
pub(crate) const CF_POLICY_WINDOW: &str = "policy_window";
/// Column family of approvals, spent or not: id to [`encode_approval`]. Spent ones stay, so an
/// id is never accepted twice.
pub(crate) const CF_POLICY_APPROVALS: &str = "policy_approvals";
/// Column family indexing the approvals not yet spent: [`policy_open_approval_key`] to nothing,
/// so a decision reads its wallet's approvals without a pass over every approval ever kept.
pub(crate) const CF_POLICY_OPEN_APPROVALS: &str = "policy_open_approvals";
/// Column family of the audit log: `seq: u64 BE` to [`encode_audit`]. Its last record is the
/// head.
pub(crate) const CF_POLICY_AUDIT: &str = "policy_audit";
/// Column family indexing the audit log by wallet: [`policy_audit_wallet_key`] to nothing.
pub(crate) const CF_POLICY_AUDIT_WALLETS: &str = "policy_audit_wallets";
/// Column family of seen ids: [`policy_seen_key`] to [`encode_expiry`].
pub(crate) const CF_POLICY_SEEN: &str = "policy_seen";
/// Column family indexing seen ids by expiry: [`policy_seen_expiry_key`] to nothing, so
/// forgetting expired ids reads only those.
pub(crate) const CF_POLICY_SEEN_EXPIRY: &str = "policy_seen_expiry";
/// Every column family the store opens, besides RocksDB's `default` (unused).
pub(crate) const COLUMN_FAMILIES: [&str; 13] = [
    CF_SHARES,
    CF_DERIVATIONS,
    CF_PRIMES,
    CF_META,
    CF_DERIVATION_USES,
    CF_POLICY_LEDGER,
    CF_POLICY_WINDOW,
    CF_POLICY_APPROVALS,
    CF_POLICY_OPEN_APPROVALS,
    CF_POLICY_AUDIT,
    CF_POLICY_AUDIT_WALLETS,
    CF_POLICY_SEEN,
    CF_POLICY_SEEN_EXPIRY,
];

/// Meta key of the layout version, one byte.
pub(crate) const META_LAYOUT: &[u8] = b"layout";
/// Meta key of the next prime-pair sequence number, u64 big-endian.
pub(crate) const META_PRIME_SEQ: &[u8] = b"prime_seq";
/// Meta key of the next derivation-cache use number, u64 big-endian.
pub(crate) const META_DERIVATION_SEQ: &[u8] = b"derivation_seq";

/// `len(wallet): u8 ‖ wallet`: every key of the wallet starts with it.
pub(crate) fn wallet_prefix(wallet: &WalletId) -> Vec<u8> {
    let id = wallet.as_str().as_bytes();
    let len = u8::try_from(id.len()).expect("a WalletId is at most 64 bytes");
    let mut out = Vec::with_capacity(1 + id.len() + 4);
    out.push(len);
    out.extend_from_slice(id);
    out
}

/// `wallet_prefix ‖ index: u32 BE`: the key of a share record.
pub(crate) fn share_key(key: &KeyId) -> Vec<u8> {
    let mut out = wallet_prefix(&key.wallet);
    out.extend_from_slice(&key.index.to_be_bytes());
    out
}

/// `share_key ‖ lookup`: the key of a derivation-cache entry.
pub(crate) fn derivation_key(key: &KeyId, lookup: &[u8]) -> Vec<u8> {
    let mut out = share_key(key);
    out.extend_from_slice(lookup);
    out
}

/// The share key and the lookup of a derivation key, split where the share key ends.
pub(crate) fn split_derivation_key(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let share_key_len = 1 + usize::from(*raw.first()?) + 4;
    (raw.len() >= share_key_len).then(|| raw.split_at(share_key_len))
}

/// `share_key ‖ used: u64 BE`: the index entry of a derivation-cache entry last used at `used`,
/// so one key's entries sort oldest use first.
pub(crate) fn derivation_use_key(share_key: &[u8], used: u64) -> Vec<u8> {
    let mut out = share_key.to_vec();
    out.extend_from_slice(&used.to_be_bytes());
    out
}

/// `len(pool): u32 BE ‖ pool`: every pair of the pool starts with it.
pub(crate) fn pool_prefix(pool: &str) -> Result<Vec<u8>> {
    let len = u32::try_from(pool.len()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "a prime pool name must be shorter than 4 GiB")
            .with_context("backend", ROCKSDB_SCHEME)
    })?;
    let mut out = Vec::with_capacity(4 + pool.len() + 8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(pool.as_bytes());
    Ok(out)
}

/// `pool_prefix ‖ seq: u64 BE`: pairs of one pool sort oldest first.
pub(crate) fn prime_key(prefix: &[u8], seq: u64) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// The smallest key above every key that starts with `prefix`, if there is one.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// `len(name): u32 BE ‖ name`: the prefix of every policy key of one wallet (or seen-id kind).
/// Policy names are plain strings, not [`WalletId`]s, hence the wider length.
pub(crate) fn policy_prefix(what: &'static str, name: &str) -> Result<Vec<u8>> {
    let len = u32::try_from(name.len()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, format!("a policy {what} name must be shorter than 4 GiB"))
            .with_context("backend", ROCKSDB_SCHEME)
    })?;
    let mut out = Vec::with_capacity(4 + name.len() + 40);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    Ok(out)
}

/// `wallet prefix ‖ tx: [u8; 32]`: a ledger entry.
pub(crate) fn policy_ledger_key(wallet_prefix: &[u8], tx: &[u8; 32]) -> Vec<u8> {
    [wallet_prefix, tx].concat()
}

/// `wallet prefix ‖ at_ms: u64 BE ‖ tx: [u8; 32]`: a ledger entry's place in the window index,
/// so one wallet's entries sort by when they were charged.
pub(crate) fn policy_window_key(wallet_prefix: &[u8], at_ms: u64, tx: &[u8; 32]) -> Vec<u8> {
    [wallet_prefix, &at_ms.to_be_bytes(), tx].concat()
}

/// `wallet prefix ‖ id: [u8; 32]`: an open approval, so one wallet's sort by id.
pub(crate) fn policy_open_approval_key(wallet_prefix: &[u8], id: &[u8; 32]) -> Vec<u8> {
    [wallet_prefix, id].concat()
}

/// `wallet prefix ‖ seq: u64 BE`: an audit record of the wallet, oldest first.
pub(crate) fn policy_audit_wallet_key(wallet_prefix: &[u8], seq: u64) -> Vec<u8> {
    [wallet_prefix, &seq.to_be_bytes()].concat()
}

/// `kind prefix ‖ id`: a seen id. The id is last, so its length needs no prefix.
pub(crate) fn policy_seen_key(kind_prefix: &[u8], id: &[u8]) -> Vec<u8> {
    [kind_prefix, id].concat()
}

/// `expires_ms: u64 BE ‖ seen key`: a seen id in the expiry index, soonest expiry first.
pub(crate) fn policy_seen_expiry_key(expires_ms: u64, seen_key: &[u8]) -> Vec<u8> {
    [&expires_ms.to_be_bytes()[..], seen_key].concat()
}

/// The `u64 BE` at the end of an index key (the seq of [`policy_audit_wallet_key`]), if the
/// key is `prefix_len + 8` bytes long.
pub(crate) fn trailing_u64(raw: &[u8], prefix_len: usize) -> Option<u64> {
    let tail: [u8; 8] = raw.get(prefix_len..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// A ledger entry: `encoding: u8 (1) ‖ charged: u64 ‖ at_ms: u64 ‖ state`. The wallet and the
/// transaction are the key.
pub(crate) fn encode_ledger_entry(entry: &LedgerEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + entry.state.len());
    out.push(VALUE_ENCODING);
    out.extend_from_slice(&entry.charged.to_be_bytes());
    out.extend_from_slice(&entry.at_ms.to_be_bytes());
    out.extend_from_slice(&entry.state);
    out
}

/// Reads [`encode_ledger_entry`]'s layout back, for transaction `tx`.
pub(crate) fn decode_ledger_entry(key: &dyn fmt::Display, tx: &[u8; 32], value: &[u8]) -> Result<LedgerEntry> {
    let mut r = Reader { rest: value, what: "policy ledger", key };
    r.encoding()?;
    let charged = r.u64("charged")?;
    let at_ms = r.u64("at_ms")?;
    Ok(LedgerEntry { tx: *tx, charged, at_ms, state: r.rest.to_vec() })
}

/// A window index value, and a seen id's: `encoding: u8 (1) ‖ n: u64` (`charged`, or when the
/// id expires).
pub(crate) fn encode_u64(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(VALUE_ENCODING);
    out.extend_from_slice(&n.to_be_bytes());
    out
}

/// Reads [`encode_u64`]'s layout back.
pub(crate) fn decode_u64(what: &'static str, field: &'static str, key: &dyn fmt::Display, value: &[u8]) -> Result<u64> {
    let mut r = Reader { rest: value, what, key };
    r.encoding()?;
    let n = r.u64(field)?;
    r.end()?;
    Ok(n)
}

/// An approval: `encoding: u8 (1) ‖ spent: u8 (0 or 1) ‖ expires_ms: u64 ‖ len(wallet): u32 ‖
/// wallet ‖ body`. The id is the key.
pub(crate) fn encode_approval(approval: &Approval, spent: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(18 + approval.wallet.len() + approval.body.len());
    out.push(VALUE_ENCODING);
    out.push(u8::from(spent));
    out.extend_from_slice(&approval.expires_ms.to_be_bytes());
    put_name(&mut out, &approval.wallet)?;
    out.extend_from_slice(&approval.body);
    Ok(out)
}

/// Reads [`encode_approval`]'s layout back: the approval with id `id`, and whether it is spent.
pub(crate) fn decode_approval(key: &dyn fmt::Display, id: &[u8; 32], value: &[u8]) -> Result<(Approval, bool)> {
    let mut r = Reader { rest: value, what: "policy approval", key };
    r.encoding()?;
    let spent = match r.array::<1>("spent")? {
        [0] => false,
        [1] => true,
        _ => return Err(r.corrupted("spent")),
    };
    let expires_ms = r.u64("expires_ms")?;
    let wallet = r.text("wallet")?;
    Ok((Approval { id: *id, wallet, expires_ms, body: r.rest.to_vec() }, spent))
}

/// An audit record: `encoding: u8 (1) ‖ at_ms: u64 ‖ hash: [u8; 32] ‖ len(wallet): u32 ‖ wallet
/// ‖ body`. The seq is the key.
pub(crate) fn encode_audit(record: &AuditRecord) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(45 + record.wallet.len() + record.body.len());
    out.push(VALUE_ENCODING);
    out.extend_from_slice(&record.at_ms.to_be_bytes());
    out.extend_from_slice(&record.hash);
    put_name(&mut out, &record.wallet)?;
    out.extend_from_slice(&record.body);
    Ok(out)
}

/// Reads [`encode_audit`]'s layout back, for the record at `seq`.
pub(crate) fn decode_audit(seq: u64, value: &[u8]) -> Result<AuditRecord> {
    let key = format!("seq {seq}");
    let mut r = Reader { rest: value, what: "policy audit", key: &key };
    r.encoding()?;
    let at_ms = r.u64("at_ms")?;
    let hash = r.array("hash")?;
    let wallet = r.text("wallet")?;
    Ok(AuditRecord { seq, wallet, at_ms, body: r.rest.to_vec(), hash })
}

/// `len(name): u32 ‖ name`, for a wallet inside a policy value.
fn put_name(out: &mut Vec<u8>, name: &str) -> Result<()> {
    let len = u32::try_from(name.len()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "a policy wallet name must be shorter than 4 GiB")
            .with_context("backend", ROCKSDB_SCHEME)
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

/// A share record:
///
/// ```text
/// encoding: u8 (1) ‖ version: u64 ‖ format_version: u16 ‖ party_index: u16 ‖ threshold: u16 ‖
/// parties: u16 ‖ len(state): u8 ‖ state (ShareState::as_str) ‖ execution_id: [u8; 32] ‖
/// len(public_key): u32 ‖ public_key ‖ len(sealed): u32 ‖ sealed
/// ```
///
/// Integers are big-endian. The key is not repeated: it is the RocksDB key.
pub(crate) fn encode_share(record: &StoredShare, version: u64) -> Result<Vec<u8>> {
    let meta = &record.meta;
    let state = meta.state.as_str().as_bytes();
    let mut out = Vec::with_capacity(64 + state.len() + meta.public_key.len() + record.sealed.len());
    out.push(VALUE_ENCODING);
    out.extend_from_slice(&version.to_be_bytes());
    for n in [record.format_version, meta.party_index, meta.threshold, meta.parties] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    // The names are a few ASCII letters.
    out.push(u8::try_from(state.len()).expect("a share state name is short"));
    out.extend_from_slice(state);
    out.extend_from_slice(meta.execution_id.as_bytes());
    put_bytes(&mut out, &meta.public_key, "public_key", &record.key)?;
    put_bytes(&mut out, &record.sealed, "sealed", &record.key)?;
    Ok(out)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], field: &'static str, key: &KeyId) -> Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "a share record field must be shorter than 4 GiB")
            .with_context("backend", ROCKSDB_SCHEME)
            .with_context("key", key)
            .with_context("field", field)
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Reads [`encode_share`]'s layout back; anything else is a `Corrupted` error naming the field.
pub(crate) fn decode_share(key: &KeyId, value: &[u8]) -> Result<StoredShare> {
    let mut r = Reader { rest: value, what: "share", key };
    r.encoding()?;
    let version = u64::from_be_bytes(r.array("version")?);
    let format_version = r.u16("format_version")?;
    let party_index = r.u16("party_index")?;
    let threshold = r.u16("threshold")?;
    let parties = r.u16("parties")?;
    let state_len = r.array::<1>("state")?[0];
    let state = std::str::from_utf8(r.take(usize::from(state_len), "state")?).map_err(|_| r.corrupted("state"))?;
    let state = ShareState::parse(state).map_err(|_| r.corrupted("state"))?;
    let execution_id = ExecutionId::from_bytes(r.array("execution_id")?);
    let public_key = r.bytes("public_key")?.to_vec();
    let sealed = r.bytes("sealed")?.to_vec();
    if !r.rest.is_empty() {
        return Err(r.corrupted("end"));
    }
    Ok(StoredShare {
        key: key.clone(),
        meta: ShareMeta { public_key, threshold, parties, party_index, state, execution_id },
        version,
        format_version,
        sealed,
    })
}

/// The stored version of a share record, without decoding the rest.
pub(crate) fn share_version(key: &KeyId, value: &[u8]) -> Result<u64> {
    let mut r = Reader { rest: value, what: "share", key };
    r.encoding()?;
    Ok(u64::from_be_bytes(r.array("version")?))
}

/// A derivation-cache entry: `encoding: u8 (1) ‖ used: u64 ‖ sealed`, `used` the number of its
/// last use (the key of its [`derivation_use_key`] index entry).
pub(crate) fn encode_derivation(used: u64, sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + sealed.len());
    out.push(VALUE_ENCODING);
    out.extend_from_slice(&used.to_be_bytes());
    out.extend_from_slice(sealed);
    out
}

/// Reads [`encode_derivation`]'s layout back: `(used, sealed)`.
pub(crate) fn decode_derivation(key: &dyn fmt::Display, value: &[u8]) -> Result<(u64, Vec<u8>)> {
    let mut r = Reader { rest: value, what: "derivation-cache", key };
    r.encoding()?;
    let used = u64::from_be_bytes(r.array("used")?);
    Ok((used, r.rest.to_vec()))
}

/// A prime pair, or a derivation-cache entry of layout 1: `encoding: u8 (1) ‖ sealed`.
pub(crate) fn encode_blob(sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + sealed.len());
    out.push(VALUE_ENCODING);
    out.extend_from_slice(sealed);
    out
}

/// Reads [`encode_blob`]'s layout back.
pub(crate) fn decode_blob(what: &'static str, key: &dyn fmt::Display, value: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader { rest: value, what, key };
    r.encoding()?;
    Ok(r.rest.to_vec())
}

/// Reads fields off the front of a value; failures are `Corrupted` errors that name the field,
/// never the bytes.
struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
    key: &'a dyn fmt::Display,
}

impl<'a> Reader<'a> {
    fn corrupted(&self, field: &'static str) -> Error {
        corrupted(self.what, self.key, field)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(self.corrupted(field));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        Ok(self.take(N, field)?.try_into().expect("take returned N bytes"))
    }

    fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `len: u32 ‖ UTF-8` field.
    fn text(&mut self, field: &'static str) -> Result<String> {
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupted(field))
    }

    fn end(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupted("end"))
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8]> {
        let len = u32::from_be_bytes(self.array(field)?);
        let len = usize::try_from(len).map_err(|_| self.corrupted(field))?;
        self.take(len, field)
    }

    fn encoding(&mut self) -> Result<()> {
        match self.array::<1>("encoding")? {
            [VALUE_ENCODING] => Ok(()),
            [other] => Err(self.corrupted("encoding").with_context("encoding", other)),
        }
    }
}

/// A stored value that does not decode.
pub(crate) fn corrupted(what: &str, key: &dyn fmt::Display, field: &'static str) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("a stored {what} record does not decode; restore the RocksDB directory from a backup"),
    )
    .with_context("backend", ROCKSDB_SCHEME)
    .with_context("key", key)
    .with_context("field", field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StoredShare {
        StoredShare {
            key: KeyId::new(WalletId::new("w").unwrap(), 7),
            meta: ShareMeta {
                public_key: vec![2; 33],
                threshold: 2,
                parties: 3,
                party_index: 1,
                state: ShareState::Frozen,
                execution_id: ExecutionId::from_bytes([5; 32]),
            },
            version: 4,
            format_version: 1,
            sealed: (0..=255).collect(),
        }
    }

    #[test]
    fn share_round_trips_with_the_given_version() {
        let r = record();
        let bytes = encode_share(&r, 9).unwrap();
        assert_eq!(bytes[0], VALUE_ENCODING);
        assert_eq!(decode_share(&r.key, &bytes).unwrap(), StoredShare { version: 9, ..r.clone() });
        assert_eq!(share_version(&r.key, &bytes).unwrap(), 9);
    }

    #[test]
    fn damaged_shares_are_corrupted_and_name_the_field() {
        let r = record();
        let bytes = encode_share(&r, 1).unwrap();
        let cases: [(Vec<u8>, &str); 5] = [
            (Vec::new(), "encoding"),
            (bytes[..bytes.len() - 1].to_vec(), "sealed"),
            ([bytes.as_slice(), &[0]].concat(), "end"),
            ([&[2u8][..], &bytes[1..]].concat(), "encoding"),
            // The state length byte sits after encoding, version and four u16s.
            ([&bytes[..18], b"bogus", &bytes[24..]].concat(), "state"),
        ];
        for (damaged, field) in cases {
            let e = decode_share(&r.key, &damaged).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted, "{field}: {e}");
            assert_eq!(e.context_value("field"), Some(field), "{e}");
            assert_eq!(e.context_value("backend"), Some("rocksdb"));
        }
    }

    /// The key index at the end of a share key that starts with `prefix`.
    fn index_of_share_key(prefix: &[u8], raw: &[u8]) -> Option<u32> {
        let index = raw.strip_prefix(prefix)?;
        Some(u32::from_be_bytes(index.try_into().ok()?))
    }

    #[test]
    fn share_keys_sort_by_index_within_their_wallet_only() {
        let a = WalletId::new("a").unwrap();
        let ab = WalletId::new("ab").unwrap();
        let prefix = wallet_prefix(&a);
        let end = prefix_end(&prefix).unwrap();
        let mut keys: Vec<Vec<u8>> =
            [5, 0, u32::MAX, 256, 3].into_iter().map(|i| share_key(&KeyId::new(a.clone(), i))).collect();
        keys.sort();
        let indexes: Vec<u32> = keys.iter().map(|k| index_of_share_key(&prefix, k).unwrap()).collect();
        assert_eq!(indexes, [0, 3, 5, 256, u32::MAX]);
        assert!(keys.iter().all(|k| k.as_slice() >= prefix.as_slice() && k.as_slice() < end.as_slice()));
        let neighbour = share_key(&KeyId::new(ab, 0));
        assert!(!(neighbour.as_slice() >= prefix.as_slice() && neighbour.as_slice() < end.as_slice()));
        assert_eq!(index_of_share_key(&prefix, &derivation_key(&KeyId::new(a, 1), b"lookup")), None);
    }

    #[test]
    fn prime_keys_sort_by_sequence_within_their_pool() {
        let p = pool_prefix("p").unwrap();
        assert!(prime_key(&p, 255) < prime_key(&p, 256));
        let end = prefix_end(&p).unwrap();
        assert!(prime_key(&p, u64::MAX) < end);
        assert!(prime_key(&pool_prefix("pp").unwrap(), 0) > end);
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }

    #[test]
    fn derivations_round_trip_and_their_keys_split() {
        let key = KeyId::new(WalletId::new("wallet").unwrap(), 3);
        let value = encode_derivation(u64::MAX - 1, b"sealed");
        assert_eq!(decode_derivation(&key, &value).unwrap(), (u64::MAX - 1, b"sealed".to_vec()));
        for bad in [&b""[..], &b"\x01\x00\x00"[..], &b"\x02\x00\x00\x00\x00\x00\x00\x00\x00"[..]] {
            assert_eq!(decode_derivation(&key, bad).unwrap_err().kind(), ErrorKind::Corrupted);
        }
        let raw = derivation_key(&key, b"lookup");
        assert_eq!(split_derivation_key(&raw), Some((share_key(&key).as_slice(), &b"lookup"[..])));
        assert_eq!(split_derivation_key(&raw[..5]), None);
        let share = share_key(&key);
        assert!(derivation_use_key(&share, 255) < derivation_use_key(&share, 256));
        assert!(derivation_use_key(&share, u64::MAX) < prefix_end(&share).unwrap());
    }

    #[test]
    fn policy_records_round_trip() {
        let entry = LedgerEntry { tx: [3; 32], charged: u64::MAX, at_ms: 1_234, state: b"state".to_vec() };
        assert_eq!(decode_ledger_entry(&"w", &[3; 32], &encode_ledger_entry(&entry)).unwrap(), entry);
        let approval = Approval { id: [4; 32], wallet: "wället".into(), expires_ms: 99, body: b"signed".to_vec() };
        for spent in [false, true] {
            let bytes = encode_approval(&approval, spent).unwrap();
            assert_eq!(decode_approval(&"w", &[4; 32], &bytes).unwrap(), (approval.clone(), spent));
        }
        let record = AuditRecord { seq: 7, wallet: "w".into(), at_ms: 5, body: b"decision".to_vec(), hash: [9; 32] };
        assert_eq!(decode_audit(7, &encode_audit(&record).unwrap()).unwrap(), record);
        assert_eq!(decode_u64("policy window", "charged", &"w", &encode_u64(42)).unwrap(), 42);
    }

    #[test]
    fn damaged_policy_records_are_corrupted_and_name_the_field() {
        let approval =
            encode_approval(&Approval { id: [4; 32], wallet: "w".into(), expires_ms: 9, body: vec![] }, false).unwrap();
        let mut bad_utf8 = approval.clone();
        *bad_utf8.last_mut().unwrap() = 0xFF;
        let cases: [(Result<()>, &str); 7] = [
            (decode_ledger_entry(&"w", &[0; 32], b"\x01\x00").map(drop), "charged"),
            (decode_ledger_entry(&"w", &[0; 32], b"\x02").map(drop), "encoding"),
            (decode_approval(&"w", &[0; 32], &[&[1, 2][..], &approval[2..]].concat()).map(drop), "spent"),
            (decode_approval(&"w", &[0; 32], &bad_utf8).map(drop), "wallet"),
            (decode_audit(1, &[1; 20]).map(drop), "hash"),
            (decode_u64("policy window", "charged", &"w", &[&encode_u64(1)[..], &[0]].concat()).map(drop), "end"),
            (decode_u64("policy seen-id", "expires_ms", &"w", b"").map(drop), "encoding"),
        ];
        for (result, field) in cases {
            let e = result.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted, "{field}: {e}");
            assert_eq!(e.context_value("field"), Some(field), "{e}");
            assert!(e.message().contains("restore the RocksDB directory from a backup"), "{e}");
        }
    }

    #[test]
    fn policy_keys_sort_by_time_within_their_wallet_only() {
        let (a, ab) = (policy_prefix("wallet", "a").unwrap(), policy_prefix("wallet", "ab").unwrap());
        assert_eq!(a, [0, 0, 0, 1, b'a']);
        let end = prefix_end(&a).unwrap();
        let tx = [0xFF; 32];
        assert!(policy_window_key(&a, 255, &tx) < policy_window_key(&a, 256, &[0; 32]));
        assert!(policy_window_key(&a, u64::MAX, &tx) < end);
        assert!(policy_window_key(&ab, 0, &[0; 32]) > end, "another wallet's entries are outside the range");
        assert!(policy_audit_wallet_key(&a, 9) < policy_audit_wallet_key(&a, 10));
        assert_eq!(trailing_u64(&policy_audit_wallet_key(&a, 300), a.len()), Some(300));
        assert_eq!(trailing_u64(&policy_open_approval_key(&a, &tx), a.len()), None);
        let seen = policy_seen_key(&policy_prefix("kind", "jti").unwrap(), b"id");
        assert!(policy_seen_expiry_key(10, &seen) < policy_seen_expiry_key(11, b""));
        assert_eq!(&policy_seen_expiry_key(10, &seen)[8..], seen.as_slice());
    }

    #[test]
    fn blobs_round_trip_and_refuse_other_encodings() {
        let key = "w/0";
        assert_eq!(decode_blob("prime-pool", &key, &encode_blob(b"pair")).unwrap(), b"pair");
        assert_eq!(decode_blob("prime-pool", &key, &encode_blob(b"")).unwrap(), b"");
        for bad in [&b""[..], &b"\x02pair"[..]] {
            let e = decode_blob("prime-pool", &key, bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted);
            assert!(!e.to_string().contains("pair"), "{e}");
        }
    }
}
