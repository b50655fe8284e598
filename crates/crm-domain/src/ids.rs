use uuid::Uuid;

/// A new time-ordered identifier (UUID v7), so ids sort by creation time.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The tenant every query is scoped to. Only the authentication layer creates one
/// from a verified credential (`from_authenticated`), so repository calls cannot be
/// written without a workspace that was actually authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkspaceId(Uuid);

impl WorkspaceId {
    /// Wraps a workspace id that was taken from a verified token, API key or a freshly
    /// created workspace. Never build one from request input.
    pub fn from_authenticated(id: Uuid) -> Self {
        WorkspaceId(id)
    }
    pub fn uuid(&self) -> Uuid {
        self.0
    }
    pub fn as_string(&self) -> String {
        self.0.to_string()
    }
}

impl std::fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
