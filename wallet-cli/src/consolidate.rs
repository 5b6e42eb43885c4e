//! `mpc-wallet consolidate`: the smallest confirmed change outputs merged into fresh change
//! (`Actions::consolidate`), once.

use std::path::Path;

use anyhow::Result;

/// The inputs one consolidation merges unless `--max-inputs` says otherwise.
pub(crate) const DEFAULT_MAX_INPUTS: u16 = 100;

/// `mpc-wallet consolidate [--dry-run] [--max-inputs N]`: starts the wallet with its books and
/// merges, or with `--dry-run` says what it would merge.
pub(crate) async fn run(file: Option<&Path>, max_inputs: usize, dry_run: bool) -> Result<()> {
    let actions = crate::books::start(file).await?;
    let params = actions.current_change_params();
    if !dry_run {
        eprintln!("  consolidate: merging the smallest confirmed change outputs, signing with the cosigners...");
    }
    let Some(c) = actions.consolidate(max_inputs, dry_run).await? else {
        println!(
            "nothing worth merging: the change is within {} outputs with none under {} sats, or the outputs are \
             unconfirmed, reserved or too small to pay for their own inputs",
            params.target_count, params.min_sats
        );
        return Ok(());
    };
    let verb = if dry_run { "would merge (--dry-run, nothing signed)" } else { "merged" };
    println!(
        "{verb}: {} inputs, {} sats, fee {} sats, into {} output(s) of {} sats",
        c.inputs,
        c.satoshis_in,
        c.fee,
        c.outputs,
        c.satoshis_in - c.fee
    );
    if let Some(txid) = c.txid {
        println!("txid: {txid}");
    }
    Ok(())
}
