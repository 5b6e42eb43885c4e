//! The agent's side of a protocol run: its own party plus one session per participating
//! cosigner, with every envelope relayed through here (docs/ARCHITECTURE.md, "The path of a request").

use std::time::Duration;

use futures::{
    stream::{self, BoxStream, SelectAll},
    Sink, SinkExt, StreamExt,
};
use wallet_traits::{
    Envelope, EnvelopeSink, Error, ErrorKind, ExecutionId, PartyIndex, Result, SessionChannel, SessionEvent,
    SessionOutcome,
};

use crate::mpc::{PartyInbox, RunningParty};

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
    let mut events: SelectAll<BoxStream<'static, Event>> = SelectAll::new();
    events.push(local_out.map(|e| Event::Local(Some(e))).chain(stream::once(async { Event::Local(None) })).boxed());
    let mut relay = Relay {
        eid,
        idle,
        routes: Routes { local_pos, local_in, remote: Vec::with_capacity(remotes.len()) },
        names: Vec::with_capacity(remotes.len()),
        positions,
        outcomes: vec![None; remotes.len()],
        result: Some(result),
        output: None,
    };
    for (k, r) in remotes.into_iter().enumerate() {
        relay.routes.remote.push((relay.positions[k], r.channel.outgoing));
        relay.names.push((r.index, r.endpoint));
        let end = stream::once(async move { Event::Remote(k, None) });
        events.push(r.channel.incoming.map(move |e| Event::Remote(k, Some(e))).chain(end).boxed());
    }
    while relay.output.is_none() || relay.outcomes.iter().any(Option::is_none) {
        let next = tokio::time::timeout(idle, events.next()).await.map_err(|_| relay.stalled("no protocol message"))?;
        match next {
            None => return Err(RunFailure::local(Error::new(ErrorKind::Internal, "every session stream ended early"))),
            Some(Event::Local(Some(env))) => relay.route(env).await?,
            Some(Event::Local(None)) => relay.local_done().await?,
            Some(Event::Remote(k, Some(event))) => relay.remote_event(k, event).await?,
            Some(Event::Remote(k, None)) => relay.remote_closed(k)?,
        }
    }
    let outcomes = relay.outcomes.into_iter().map(|o| o.expect("loop ends when all are done")).collect();
    Ok((relay.output.expect("loop ends with the local output"), outcomes))
}

/// The state of one run as [`coordinate`] relays it.
struct Relay<O> {
    eid: ExecutionId,
    idle: Duration,
    routes: Routes,
    /// Keygen index and endpoint of each cosigner, in the order of `remotes`.
    names: Vec<(PartyIndex, String)>,
    /// Protocol index of each cosigner, in the order of `remotes`.
    positions: Vec<u16>,
    outcomes: Vec<Option<SessionOutcome>>,
    /// The agent's party, until its stream of envelopes ends.
    result: Option<tokio::task::JoinHandle<Result<O>>>,
    output: Option<O>,
}

type Step = std::result::Result<(), RunFailure>;

impl<O> Relay<O> {
    fn stalled(&self, what: &str) -> RunFailure {
        stalled(&self.outcomes, &self.names, self.idle, what)
    }

    /// `error` on the cosigner at position `k`, named in its context.
    fn on(&self, k: usize, error: Error) -> RunFailure {
        let (index, endpoint) = &self.names[k];
        RunFailure::on(k, error.with_context("cosigner", *index).with_context("endpoint", endpoint))
    }

    async fn route(&mut self, env: Envelope) -> Step {
        if self.routes.route(env, self.idle).await {
            Ok(())
        } else {
            Err(self.stalled("a party did not take its messages"))
        }
    }

    /// The agent's party sent its last envelope: its result.
    async fn local_done(&mut self) -> Step {
        let handle = self.result.take().expect("the local party ends once");
        let out = handle
            .await
            .map_err(|e| RunFailure::local(Error::new(ErrorKind::Internal, format!("local party task: {e}"))))?;
        // The agent's party fails when a peer's message is bad; the blame names the culprit by
        // protocol index.
        self.output = Some(out.map_err(|e| {
            let culprits = e.blamed().iter().filter_map(|b| self.positions.iter().position(|p| p == b)).collect();
            RunFailure { error: e.with_context("party", 0), culprits }
        })?);
        Ok(())
    }

    async fn remote_event(&mut self, k: usize, event: SessionEvent) -> Step {
        match event {
            SessionEvent::Message(env) => {
                // The recipient authenticates the sender by its seal; this catches plain
                // misrouting early.
                let p = self.positions[k];
                if env.from != p || env.execution_id != self.eid || env.to == p {
                    let error = Error::new(
                        ErrorKind::ProtocolAbort,
                        "a cosigner sent a message with a wrong sender, run or recipient",
                    )
                    .with_blamed([self.names[k].0]);
                    return Err(self.on(k, error));
                }
                self.route(env).await
            }
            SessionEvent::Done(o) => {
                self.outcomes[k] = Some(o);
                Ok(())
            }
            SessionEvent::Failed(w) => {
                let e: Error = w.into();
                let error = Error::new(e.kind(), format!("cosigner {} failed: {}", self.names[k].0, e))
                    .with_blamed(e.blamed().to_vec());
                Err(self.on(k, error))
            }
        }
    }

    /// The session with the cosigner at `k` ended: fine once it reported its outcome.
    fn remote_closed(&self, k: usize) -> Step {
        if self.outcomes[k].is_some() {
            return Ok(());
        }
        let error = Error::new(
            ErrorKind::CosignerUnavailable,
            format!(
                "cosigner {} closed the session before finishing; check that it is running and retry",
                self.names[k].0
            ),
        );
        Err(self.on(k, error))
    }
}
