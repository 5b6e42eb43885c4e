//! The transactions `createAction` left for `signAction`, held in memory within bounds: a
//! caller that never signs (or a hostile one sending large BEEFs) cannot grow the wallet past
//! [`MAX_HELD`] transactions and [`MAX_HELD_BYTES`] bytes. Beyond them `createAction` is refused
//! before anything is reserved; [`Actions::fail_abandoned`](super::Actions::fail_abandoned)
//! drops what was held for longer than [`ABANDONED_AFTER`](super::ABANDONED_AFTER).
//!
//! Each one is also kept with its action in the output store (in the form of
//! [`super::signable`]), so a `signAction` after the wallet restarted finds it there. The bounds
//! are on what this process holds: a transaction read back from the store is signed at once,
//! never held, and failing its action (abort, or `fail_abandoned`) drops it from the store.
//! One `signAction` per reference runs at a time in a process ([`Held::begin_signing`]).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use wallet_traits::{Error, ErrorKind, Result};

use super::Signable;

/// The most transactions waiting for `signAction` at once.
pub const MAX_HELD: usize = 64;
/// The most bytes (each transaction with its ancestors' BEEF) waiting for `signAction` at once.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Held(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    items: HashMap<String, (Signable, usize)>,
    bytes: usize,
    /// The references a `signAction` of this process is finishing.
    signing: HashSet<String>,
}

impl Inner {
    fn room_for(&self, bytes: usize) -> Result<()> {
        if self.items.len() >= MAX_HELD || self.bytes.saturating_add(bytes) > MAX_HELD_BYTES {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} transactions ({} bytes) already wait for signAction, the most this wallet holds is {MAX_HELD} \
                     ({MAX_HELD_BYTES} bytes): finish them with signAction or abortAction first",
                    self.items.len(),
                    self.bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `bytes` more would fit now; a refusal says what to do.
    pub(crate) fn room_for(&self, bytes: usize) -> Result<()> {
        self.lock().room_for(bytes)
    }

    /// Holds `signable` (`bytes` long) under `reference`, if it fits.
    pub(crate) fn hold(&self, reference: String, signable: Signable, bytes: usize) -> Result<()> {
        let mut inner = self.lock();
        inner.room_for(bytes)?;
        inner.bytes += bytes;
        if let Some((_, old)) = inner.items.insert(reference, (signable, bytes)) {
            inner.bytes -= old;
        }
        Ok(())
    }

    /// Takes what `reference` holds, if anything.
    pub(crate) fn take(&self, reference: &str) -> Option<Signable> {
        let mut inner = self.lock();
        let (signable, bytes) = inner.items.remove(reference)?;
        inner.bytes -= bytes;
        Some(signable)
    }

    /// Marks `reference` as being signed until the returned guard drops; `None` while another
    /// `signAction` of this process signs it (which would otherwise read the transaction kept in
    /// the store and sign it a second time).
    pub(crate) fn begin_signing(&self, reference: &str) -> Option<Signing<'_>> {
        if !self.lock().signing.insert(reference.to_string()) {
            return None;
        }
        Some(Signing { held: self, reference: reference.to_string() })
    }
}

/// A `signAction` under way for one reference; see [`Held::begin_signing`].
pub(crate) struct Signing<'a> {
    held: &'a Held,
    reference: String,
}

impl Drop for Signing<'_> {
    fn drop(&mut self) {
        self.held.lock().signing.remove(&self.reference);
    }
}
