//! A cap on the MCP sessions open at once over HTTP. Each session is a task and a channel kept
//! until the client closes it or it idles out (rmcp's keep-alive, 5 minutes); without a cap a
//! token holder could open them faster than they expire.

use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        local::{LocalSessionManager, LocalSessionManagerError},
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
    },
};

/// Sessions open at once over HTTP unless the operator says otherwise (`mcp --max-sessions`).
pub const DEFAULT_MAX_SESSIONS: u16 = 32;

/// rmcp's in-memory session manager, refusing a new session while `max` are open.
#[derive(Debug)]
pub struct CappedSessions {
    inner: LocalSessionManager,
    max: usize,
    /// Held from the count to the insertion, so two initializes cannot both take the last place.
    creating: tokio::sync::Mutex<()>,
}

impl CappedSessions {
    /// At most `max` sessions at once (at least one).
    pub fn new(max: usize) -> Self {
        Self { inner: LocalSessionManager::default(), max: max.max(1), creating: Default::default() }
    }

    /// Sessions open now.
    pub async fn open(&self) -> usize {
        self.inner.sessions.read().await.len()
    }
}

/// Why a session was not opened or served.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The cap was reached.
    #[error(
        "{0} MCP sessions are open, the most this server keeps (mcp --max-sessions): close one (HTTP DELETE with its \
         Mcp-Session-Id) or wait until an idle one expires"
    )]
    Full(usize),
    /// rmcp's own error.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

impl SessionManager for CappedSessions {
    type Error = SessionError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let _creating = self.creating.lock().await;
        let open = self.open().await;
        if open >= self.max {
            tracing::warn!(open, "an MCP session was refused: the cap is reached");
            return Err(SessionError::Full(open));
        }
        Ok(self.inner.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(self.inner.restore_session(id).await?)
    }
}
