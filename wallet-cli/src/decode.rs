//! `mpc-wallet decode`: a transaction, BEEF or merkle path given as hex, checked and shown as
//! JSON, with the forms this wallet writes it in (what the interop tests read back with @bsv/sdk).

use anyhow::bail;
use serde_json::{json, Value};
use wallet_bsv::{AtomicBeef, Beef, BeefTx, BeefVersion, MerklePath, Transaction, TxId};

/// What the hex holds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Told from the first bytes: a BEEF or Atomic BEEF by its prefix, else a transaction, else a
    /// merkle path.
    Auto,
    /// A raw transaction or one in Extended Format.
    Tx,
    /// A BEEF (V1, V2) or an Atomic BEEF.
    Beef,
    /// A merkle path (BUMP).
    Bump,
}

/// Decodes `input` (hex, or `-` for standard input) and prints the JSON.
pub(crate) fn run(kind: Kind, input: &str) -> anyhow::Result<()> {
    let bytes = crate::hex_input(input)?;
    println!("{}", serde_json::to_string_pretty(&decode(kind, &bytes)?)?);
    Ok(())
}

fn decode(kind: Kind, bytes: &[u8]) -> anyhow::Result<Value> {
    let beef_prefix = matches!(bytes.get(..4), Some([0x01 | 0x02, 0x00, 0xbe, 0xef] | [1, 1, 1, 1]));
    Ok(match kind {
        Kind::Tx => tx_json(&Transaction::from_bytes(bytes)?),
        Kind::Bump => bump_json(&MerklePath::from_bytes(bytes)?),
        Kind::Beef => beef_json(bytes)?,
        Kind::Auto if beef_prefix => beef_json(bytes)?,
        Kind::Auto => match Transaction::from_bytes(bytes) {
            Ok(tx) => tx_json(&tx),
            Err(tx_error) => match MerklePath::from_bytes(bytes) {
                Ok(path) => bump_json(&path),
                Err(_) => bail!("neither a BEEF, a transaction nor a merkle path: {tx_error}"),
            },
        },
    })
}

fn tx_json(tx: &Transaction) -> Value {
    let inputs: Vec<Value> = tx
        .inputs
        .iter()
        .map(|i| {
            json!({
                "sourceTxid": i.source_txid.to_hex(),
                "sourceVout": i.source_vout,
                "unlockingScript": i.unlocking_script.to_hex(),
                "sequence": i.sequence,
                "sourceSatoshis": i.source_output.as_ref().map(|o| o.satoshis),
                "sourceLockingScript": i.source_output.as_ref().map(|o| o.locking_script.to_hex()),
            })
        })
        .collect();
    let outputs: Vec<Value> = tx
        .outputs
        .iter()
        .map(|o| json!({ "satoshis": o.satoshis, "lockingScript": o.locking_script.to_hex() }))
        .collect();
    json!({
        "kind": "transaction",
        "txid": tx.txid().to_hex(),
        "version": tx.version,
        "lockTime": tx.lock_time,
        "size": tx.size(),
        "inputs": inputs,
        "outputs": outputs,
        "hex": tx.to_hex(),
        "ef": tx.to_ef().ok().map(hex::encode),
    })
}

fn root_hex(root: [u8; 32]) -> String {
    TxId(root).to_hex()
}

fn bump_json(path: &MerklePath) -> Value {
    // Every level-0 transaction computes the path's root (checked when it was read).
    let root = root_hex(path.root());
    let roots: Vec<Value> = path.levels()[0]
        .iter()
        .filter_map(|l| l.hash)
        .map(|t| json!({ "txid": TxId(t).to_hex(), "root": root }))
        .collect();
    json!({
        "kind": "merklePath",
        "blockHeight": path.block_height(),
        "levels": path.levels().len(),
        "roots": roots,
        "hex": hex::encode(path.to_bytes()),
    })
}

fn beef_json(bytes: &[u8]) -> anyhow::Result<Value> {
    let (beef, subject) = if bytes.starts_with(&[1, 1, 1, 1]) {
        let atomic = AtomicBeef::from_bytes(bytes)?;
        (atomic.beef, Some(atomic.subject))
    } else {
        (Beef::from_bytes(bytes)?, None)
    };
    let written = match subject {
        Some(subject) => AtomicBeef { subject, beef: beef.clone() }.to_bytes()?,
        None => beef.to_bytes()?,
    };
    // What this wallet writes: parents first, whatever order the input had.
    let mut sorted = beef.clone();
    let sorted_ok = sorted.sort_parents_first().is_ok();
    let as_version =
        |version| Beef { version, ..sorted.clone() }.to_bytes().ok().filter(|_| sorted_ok).map(hex::encode);
    let last = sorted.txs.last().filter(|t| sorted_ok && t.tx().is_some()).map(BeefTx::txid);
    let atomic = last.and_then(|subject| AtomicBeef { subject, beef: sorted.clone() }.to_bytes().ok());
    let structure = match beef.verify_structure(true) {
        Ok(roots) => {
            let roots: serde_json::Map<String, Value> =
                roots.into_iter().map(|(h, r)| (h.to_string(), Value::String(root_hex(r)))).collect();
            json!({ "valid": true, "roots": roots })
        }
        Err(e) => json!({ "valid": false, "error": e.message() }),
    };
    let txs: Vec<Value> = beef
        .txs
        .iter()
        .map(|t| {
            let bump = match t {
                BeefTx::Full { bump, .. } => *bump,
                BeefTx::TxidOnly(_) => None,
            };
            json!({ "txid": t.txid().to_hex(), "bumpIndex": bump, "txidOnly": t.tx().is_none() })
        })
        .collect();
    Ok(json!({
        "kind": "beef",
        "version": if beef.version == BeefVersion::V1 { 1 } else { 2 },
        "subject": subject.map(|s| s.to_hex()),
        "bumps": beef.bumps.iter().map(bump_json).collect::<Vec<_>>(),
        "txs": txs,
        "structure": structure,
        "hex": hex::encode(written),
        "v1": as_version(BeefVersion::V1),
        "v2": as_version(BeefVersion::V2),
        "atomic": atomic.map(hex::encode),
    }))
}
