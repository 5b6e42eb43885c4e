//! The form in which a transaction held for `signAction` is kept with its action in the output
//! store ([`OutputStore::keep_signable`](wallet_traits::OutputStore::keep_signable)), so that
//! `signAction` finishes it after the wallet restarts.
//!
//! Format 1, in this order:
//!
//! - one byte, the format (1): another format is refused, not guessed at;
//! - the unsigned transaction in Extended Format (BRC-30: each input with the output it spends),
//!   its length first (4 bytes, little-endian);
//! - the BEEF of the transactions its inputs spend (the draft's ancestors), its length first;
//! - the rest of the draft as JSON: its reference, options, the wallet's own inputs, the outputs
//!   it tracks and its net amount.
//!
//! Bytes that do not decode are [`ErrorKind::Corrupted`], saying to abort the action.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use wallet_bsv::{Beef, Transaction, TxId};
use wallet_traits::{Derivation, Error, ErrorKind, Outpoint, OutputRecord, Result};

use super::{
    create::{Draft, Options, OwnInput, Tracked},
    Signable,
};

/// The format this wallet writes and reads.
const FORMAT: u8 = 1;

/// The draft besides its transactions.
#[derive(Serialize, Deserialize)]
struct Rest {
    reference: String,
    options: StoredOptions,
    own: Vec<StoredOwn>,
    tracked: Vec<StoredTracked>,
    net: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredOptions {
    sign_and_process: bool,
    accept_delayed_broadcast: bool,
    no_send: bool,
    return_txid_only: bool,
    randomize_outputs: bool,
    /// Display hex.
    known_txids: Vec<String>,
    /// `<txid>.<vout>`.
    no_send_change: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredOwn {
    index: u32,
    /// `<txid>.<vout>`.
    outpoint: String,
    created_by: String,
    satoshis: u64,
    /// Hex.
    locking_script: String,
    basket: Option<String>,
    tags: Vec<String>,
    custom_instructions: Option<String>,
    description: String,
    spendable: bool,
    change: bool,
    derivation: Option<Derivation>,
    spent_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredTracked {
    vout: u32,
    basket: String,
    tags: Vec<String>,
    custom_instructions: Option<String>,
    description: String,
    derivation: Option<Derivation>,
}

/// `signable` in format [`FORMAT`].
pub(super) fn encode(signable: &Signable) -> Result<Vec<u8>> {
    let Signable { tx, draft } = signable;
    let o = &draft.options;
    let rest = Rest {
        reference: draft.reference.clone(),
        options: StoredOptions {
            sign_and_process: o.sign_and_process,
            accept_delayed_broadcast: o.accept_delayed_broadcast,
            no_send: o.no_send,
            return_txid_only: o.return_txid_only,
            randomize_outputs: o.randomize_outputs,
            known_txids: o.known_txids.iter().map(TxId::to_hex).collect(),
            no_send_change: o.no_send_change.iter().map(Outpoint::to_string).collect(),
        },
        own: draft
            .own
            .iter()
            .map(|own| {
                let out = &own.output;
                StoredOwn {
                    index: own.index,
                    outpoint: out.outpoint.to_string(),
                    created_by: out.created_by.clone(),
                    satoshis: out.satoshis,
                    locking_script: hex::encode(&out.locking_script),
                    basket: out.basket.clone(),
                    tags: out.tags.clone(),
                    custom_instructions: out.custom_instructions.clone(),
                    description: out.description.clone(),
                    spendable: out.spendable,
                    change: out.change,
                    derivation: out.derivation.clone(),
                    spent_by: out.spent_by.clone(),
                }
            })
            .collect(),
        tracked: draft
            .tracked
            .iter()
            .map(|t| StoredTracked {
                vout: t.vout,
                basket: t.basket.clone(),
                tags: t.tags.clone(),
                custom_instructions: t.custom_instructions.clone(),
                description: t.description.clone(),
                derivation: t.derivation.clone(),
            })
            .collect(),
        net: draft.net,
    };
    let mut out = vec![FORMAT];
    put(&mut out, &tx.to_ef()?)?;
    put(&mut out, &draft.ancestors.to_bytes()?)?;
    serde_json::to_writer(&mut out, &rest)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("a draft does not encode: {e}")))?;
    Ok(out)
}

/// Appends `bytes` after their length.
fn put(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    let n = u32::try_from(bytes.len())
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "a transaction held for signAction exceeds 4 GiB"))?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The transaction of the action `reference` kept as `bytes`.
pub(super) fn decode(reference: &str, bytes: &[u8]) -> Result<Signable> {
    decode_format_1(reference, bytes).map_err(|why| {
        Error::new(
            ErrorKind::Corrupted,
            format!(
                "the transaction kept for signAction cannot be read ({why}): abort the action (abortAction with \
                 this reference), which releases its inputs, and create it again"
            ),
        )
        .with_context("reference", reference)
    })
}

fn decode_format_1(reference: &str, bytes: &[u8]) -> std::result::Result<Signable, String> {
    let (format, mut rest) = bytes.split_first().ok_or("it is empty")?;
    if *format != FORMAT {
        return Err(format!("it is in format {format}, this wallet reads format {FORMAT}"));
    }
    let tx = Transaction::from_bytes(take(&mut rest)?).map_err(|e| format!("its transaction: {e}"))?;
    let ancestors = Beef::from_bytes(take(&mut rest)?).map_err(|e| format!("its ancestors' BEEF: {e}"))?;
    let r: Rest = serde_json::from_slice(rest).map_err(|e| format!("its draft: {e}"))?;
    if r.reference != reference {
        return Err(format!("it is the draft of another action, {}", r.reference));
    }
    let o = r.options;
    let options = Options {
        sign_and_process: o.sign_and_process,
        accept_delayed_broadcast: o.accept_delayed_broadcast,
        no_send: o.no_send,
        return_txid_only: o.return_txid_only,
        randomize_outputs: o.randomize_outputs,
        known_txids: o
            .known_txids
            .iter()
            .map(|t| TxId::from_hex(t))
            .collect::<Result<HashSet<_>>>()
            .map_err(|e| format!("its known txids: {e}"))?,
        no_send_change: o
            .no_send_change
            .iter()
            .map(|p| Outpoint::parse(p))
            .collect::<Result<_>>()
            .map_err(|e| format!("its noSend change: {e}"))?,
    };
    let own = r
        .own
        .into_iter()
        .map(|own| {
            Ok(OwnInput {
                index: own.index,
                output: OutputRecord {
                    outpoint: Outpoint::parse(&own.outpoint).map_err(|e| format!("an input's outpoint: {e}"))?,
                    created_by: own.created_by,
                    satoshis: own.satoshis,
                    locking_script: hex::decode(&own.locking_script)
                        .map_err(|e| format!("an input's locking script: {e}"))?,
                    basket: own.basket,
                    tags: own.tags,
                    custom_instructions: own.custom_instructions,
                    description: own.description,
                    spendable: own.spendable,
                    change: own.change,
                    derivation: own.derivation,
                    spent_by: own.spent_by,
                },
            })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    // What `finish` indexes by must be in the transaction, or it would panic rather than refuse.
    if own.iter().any(|o| o.index as usize >= tx.inputs.len())
        || r.tracked.iter().any(|t| t.vout as usize >= tx.outputs.len())
    {
        return Err("it names inputs or outputs its transaction does not have".into());
    }
    let tracked = r
        .tracked
        .into_iter()
        .map(|t| Tracked {
            vout: t.vout,
            basket: t.basket,
            tags: t.tags,
            custom_instructions: t.custom_instructions,
            description: t.description,
            derivation: t.derivation,
        })
        .collect();
    let draft = Draft { reference: r.reference, options, own, tracked, net: r.net, ancestors };
    Ok(Signable { tx, draft })
}

/// The next length-prefixed part of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> std::result::Result<&'a [u8], String> {
    let short = || "it is cut short".to_string();
    let (n, after) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let n = u32::from_le_bytes(*n) as usize;
    let part = after.get(..n).ok_or_else(short)?;
    *rest = &after[n..];
    Ok(part)
}

#[cfg(test)]
mod tests {
    use wallet_bsv::{BeefVersion, Script, TxInput, TxOutput};

    use super::*;

    fn sample() -> Signable {
        let spent = TxOutput { satoshis: 5000, locking_script: Script::p2pkh_lock(&[7; 20]) };
        let tx = Transaction {
            version: 1,
            inputs: vec![
                TxInput {
                    source_txid: TxId([1; 32]),
                    source_vout: 0,
                    unlocking_script: Script::default(),
                    sequence: u32::MAX,
                    source_output: Some(spent.clone()),
                },
                TxInput {
                    source_txid: TxId([2; 32]),
                    source_vout: 3,
                    unlocking_script: Script::new(vec![0x51]),
                    sequence: 7,
                    source_output: Some(spent),
                },
            ],
            outputs: vec![
                TxOutput { satoshis: 1000, locking_script: Script::new(vec![0x6a]) },
                TxOutput { satoshis: 3800, locking_script: Script::p2pkh_lock(&[9; 20]) },
            ],
            lock_time: 0,
        };
        let derivation = Derivation {
            prefix: "cHJlZml4".into(),
            suffix: "c3VmZml4".into(),
            sender: format!("02{}", "ab".repeat(32)),
        };
        let draft = Draft {
            reference: "cmVmZXJlbmNl".into(),
            options: Options {
                sign_and_process: false,
                accept_delayed_broadcast: true,
                no_send: true,
                return_txid_only: false,
                randomize_outputs: true,
                known_txids: [TxId([3; 32]), TxId([4; 32])].into_iter().collect(),
                no_send_change: vec![Outpoint::new([5; 32], 1)],
            },
            own: vec![OwnInput {
                index: 0,
                output: OutputRecord {
                    outpoint: Outpoint::new([1; 32], 0),
                    created_by: "earlier".into(),
                    satoshis: 5000,
                    locking_script: Script::p2pkh_lock(&[7; 20]).as_bytes().to_vec(),
                    basket: Some("default".into()),
                    tags: vec!["t".into()],
                    custom_instructions: None,
                    description: "change".into(),
                    spendable: false,
                    change: true,
                    derivation: Some(derivation.clone()),
                    spent_by: Some("cmVmZXJlbmNl".into()),
                },
            }],
            tracked: vec![Tracked {
                vout: 1,
                basket: "default".into(),
                tags: vec![],
                custom_instructions: Some("{}".into()),
                description: "change".into(),
                derivation: Some(derivation),
            }],
            net: -1200,
            ancestors: Beef { version: BeefVersion::V2, bumps: vec![], txs: vec![] },
        };
        Signable { tx, draft }
    }

    #[test]
    fn a_kept_draft_decodes_as_it_was() {
        let signable = sample();
        let bytes = encode(&signable).unwrap();
        assert_eq!(bytes[0], FORMAT);
        let back = decode(&signable.draft.reference, &bytes).unwrap();
        assert_eq!(back.tx, signable.tx);
        assert_eq!(back.draft, signable.draft);
    }

    #[test]
    fn what_does_not_decode_is_corrupted_and_says_to_abort() {
        let signable = sample();
        let bytes = encode(&signable).unwrap();
        let reference = signable.draft.reference.as_str();
        let mut other_format = bytes.clone();
        other_format[0] = 2;
        let mut bad_json = bytes.clone();
        bad_json.truncate(bytes.len() - 1);
        let cut = &bytes[..bytes.len() / 2];
        for (bytes, why) in [
            (&b""[..], "empty"),
            (&other_format[..], "format 2"),
            (&bad_json[..], "its draft"),
            (cut, ""),
            (&bytes[..], "another action"),
        ] {
            let asked = if why == "another action" { "someone-else" } else { reference };
            let e = decode(asked, bytes).expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
            assert!(e.message().contains(why) && e.message().contains("abortAction"), "{e}");
            assert_eq!(e.context_value("reference"), Some(asked));
        }
    }
}
