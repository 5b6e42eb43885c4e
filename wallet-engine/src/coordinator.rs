//! The agent's side of a protocol run: its own party plus one session per participating
//! cosigner, with every envelope relayed through here (docs/ARCHITECTURE.md, "The path of a request").

use std::time::Duration;

use futures::{
    stream::{self, BoxStream, SelectAll},
    Sink, SinkExt, StreamExt,
};
use wallet_traits::{
    Envelope, EnvelopeSink, Error, ErrorKind, ExecutionId, PartyIndex, SessionChannel, SessionEvent, SessionOutcome,
};

use crate::protocol::{PartyInbox, RunningParty};

/// One cosigner taking part in a run.
pub(crate) struct Remote {
    /// Keygen index.
    pub(crate) index: PartyIndex,
    /// Endpoint, for messages.
    pub(crate) endpoint: String,
    pub(crate) channel: SessionChannel,
}

enum Event {
    Local(Option<Envelope>),
    Remote(usize, Option<SessionEvent>),
}

/// A run that failed, and which cosigners (positions in `remotes`) it failed on: the one that
/// reported the failure, misbehaved or went away, or, after a timeout, every one still awaited.
/// Empty when the agent's own party failed.
#[derive(Debug)]
pub(crate) struct RunFailure {
    pub(crate) error: Error,
    pub(crate) culprits: Vec<usize>,
}

impl RunFailure {
    fn on(k: usize, error: Error) -> Self {
        Self { error, culprits: vec![k] }
    }

    fn local(error: Error) -> Self {
        Self { error, culprits: Vec::new() }
    }
}

/// Where the agent sends each envelope: its own party or the cosigner at that protocol index.
///
/// A send waits while the recipient's queue is full. That never happens in an honest run: every
/// queue holds more than all that passes through it in a run (wallet_traits::SESSION_CAPACITY),
/// so this loop, which relays cosigner-to-cosigner messages and its own party's broadcasts one
/// at a time, never stops reading while a party waits for it to read (no cycle of waiting sends).
/// A recipient that stops taking its messages ends the run after `idle`, like one that stops
/// sending them.
struct Routes {
    local_pos: u16,
    local_in: PartyInbox,
    /// Protocol index and sink of each cosigner, in the order of `remotes`.
    remote: Vec<(u16, EnvelopeSink)>,
}

impl Routes {
    /// Delivers `env`; false if its recipient did not take it within `idle`. Delivery is best
    /// effort: a closed inbox means that party already finished or failed, and its own event
    /// says which. Payloads are sealed pairwise: this relay can route them but not read or forge
    /// them.
    async fn route(&mut self, env: Envelope, idle: Duration) -> bool {
        async fn send(sink: &mut (impl Sink<Envelope> + Unpin), env: Envelope, idle: Duration) -> bool {
            tokio::time::timeout(idle, sink.send(env)).await.is_ok()
        }
        if env.to == self.local_pos {
            send(&mut self.local_in, env, idle).await
        } else if let Some((_, sink)) = self.remote.iter_mut().find(|(p, _)| *p == env.to) {
            send(sink, env, idle).await
        } else {
            true
        }
    }
}

/// The failure of a run that made no progress for `idle`: every cosigner still awaited is a
/// culprit.
fn stalled(
    outcomes: &[Option<SessionOutcome>],
    names: &[(PartyIndex, String)],
    idle: Duration,
    what: &str,
) -> RunFailure {
    let waiting: Vec<usize> = (0..outcomes.len()).filter(|&k| outcomes[k].is_none()).collect();
    let names: Vec<String> = waiting.iter().map(|&k| format!("cosigner {}", names[k].0)).collect();
    let error = Error::new(
        ErrorKind::Timeout,
        format!("{what} for {}s; still waiting on: {}; retry with a new run", idle.as_secs(), names.join(", ")),
    );
    RunFailure { error, culprits: waiting }
}

/// Runs the agent's party (protocol index `local_pos`) with `remotes`; `positions[k]` is the
/// protocol index of `remotes[k]`. Returns the agent's output and every cosigner's outcome.
pub(crate) async fn coordinate<O: Send + 'static>(
    eid: ExecutionId,
    local_pos: u16,
    local: RunningParty<O>,
    remotes: Vec<Remote>,
    positions: Vec<u16>,
    idle: Duration,
) -> std::result::Result<(O, Vec<SessionOutcome>), RunFailure> {
    let RunningParty { inbound: local_in, outbound: local_out, result } = local;
    let mut result = Some(result);
    let mut events: SelectAll<BoxStream<'static, Event>> = SelectAll::new();
    events.push(local_out.map(|e| Event::Local(Some(e))).chain(stream::once(async { Event::Local(None) })).boxed());
    let mut routes = Routes { local_pos, local_in, remote: Vec::with_capacity(remotes.len()) };
    let mut names = Vec::with_capacity(remotes.len());
    for (k, r) in remotes.into_iter().enumerate() {
        routes.remote.push((positions[k], r.channel.outgoing));
        names.push((r.index, r.endpoint));
        events.push(
            r.channel
                .incoming
                .map(move |e| Event::Remote(k, Some(e)))
                .chain(stream::once(async move { Event::Remote(k, None) }))
                .boxed(),
        );
    }
    let named = |k: usize, e: Error| e.with_context("cosigner", names[k].0).with_context("endpoint", &names[k].1);
    let mut outcomes: Vec<Option<SessionOutcome>> = vec![None; routes.remote.len()];
    let mut output = None;
    let not_taken = "a party did not take its messages";

    while output.is_none() || outcomes.iter().any(Option::is_none) {
        let next = tokio::time::timeout(idle, events.next())
            .await
            .map_err(|_| stalled(&outcomes, &names, idle, "no protocol message"))?;
        match next {
            None => return Err(RunFailure::local(Error::new(ErrorKind::Internal, "every session stream ended early"))),
            Some(Event::Local(Some(env))) => {
                if !routes.route(env, idle).await {
                    return Err(stalled(&outcomes, &names, idle, not_taken));
                }
            }
            Some(Event::Local(None)) => {
                let handle = result.take().expect("the local party ends once");
                let out = handle.await.map_err(|e| {
                    RunFailure::local(Error::new(ErrorKind::Internal, format!("local party task: {e}")))
                })?;
                // The agent's party fails when a peer's message is bad; the blame names the
                // culprit by protocol index.
                output = Some(out.map_err(|e| {
                    let culprits = e.blamed().iter().filter_map(|b| positions.iter().position(|p| p == b)).collect();
                    RunFailure { error: e.with_context("party", 0), culprits }
                })?);
            }
            Some(Event::Remote(k, Some(SessionEvent::Message(env)))) => {
                // The recipient authenticates the sender by its seal; this catches plain misrouting early.
                if env.from != positions[k] || env.execution_id != eid || env.to == positions[k] {
                    return Err(RunFailure::on(
                        k,
                        named(
                            k,
                            Error::new(
                                ErrorKind::ProtocolAbort,
                                "a cosigner sent a message with a wrong sender, run or recipient",
                            )
                            .with_blamed([names[k].0]),
                        ),
                    ));
                }
                if !routes.route(env, idle).await {
                    return Err(stalled(&outcomes, &names, idle, not_taken));
                }
            }
            Some(Event::Remote(k, Some(SessionEvent::Done(o)))) => outcomes[k] = Some(o),
            Some(Event::Remote(k, Some(SessionEvent::Failed(w)))) => {
                let e: Error = w.into();
                let kind = e.kind();
                let error =
                    Error::new(kind, format!("cosigner {} failed: {}", names[k].0, e)).with_blamed(e.blamed().to_vec());
                return Err(RunFailure::on(k, named(k, error)));
            }
            Some(Event::Remote(k, None)) => {
                if outcomes[k].is_none() {
                    let error = Error::new(
                        ErrorKind::CosignerUnavailable,
                        format!(
                            "cosigner {} closed the session before finishing; check that it is running and retry",
                            names[k].0
                        ),
                    );
                    return Err(RunFailure::on(k, named(k, error)));
                }
            }
        }
    }
    let outcomes = outcomes.into_iter().map(|o| o.expect("loop ends when all are done")).collect();
    Ok((output.expect("loop ends with the local output"), outcomes))
}
