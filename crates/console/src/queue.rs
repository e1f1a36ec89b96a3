//! [`QueueView`]: what the console needs of the operator queue, and the shapes it answers with.
//!
//! The queue itself (waiting callers, operators, strategy) is another crate's; the binary hands
//! the console an `Arc<dyn QueueView>` over it (see [`crate::AppState::with_queue`]). Without
//! one, `GET /api/queue` lists the operator accounts as offline with nobody waiting, and
//! `PUT /api/operators/{name}/status` answers 503 `operator queue not running`.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use hotline_store::Timestamp;
use serde::{Deserialize, Serialize};

/// An operator's availability, as set by `PUT /api/operators/{name}/status` and shown by
/// `GET /api/queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OperatorStatus {
    /// Offered queued calls (when registered and not on a call).
    Available,
    /// Logged in, not offered calls.
    Paused,
    /// Not taking calls.
    Offline,
}

impl OperatorStatus {
    /// The JSON text.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperatorStatus::Available => "available",
            OperatorStatus::Paused => "paused",
            OperatorStatus::Offline => "offline",
        }
    }
}

impl fmt::Display for OperatorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperatorStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "available" => Ok(OperatorStatus::Available),
            "paused" => Ok(OperatorStatus::Paused),
            "offline" => Ok(OperatorStatus::Offline),
            _ => Err(()),
        }
    }
}

/// A caller waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingCall {
    /// The call's id (as in `/api/calls/{id}`).
    pub call_id: String,
    /// `es`, `qu`, or `None` before a choice.
    pub language: Option<String>,
    /// When the caller entered the queue.
    pub since: Timestamp,
}

/// An operator as the queue sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorView {
    /// The user name.
    pub name: String,
    /// The availability set (by the operator, a supervisor, or the queue).
    pub status: OperatorStatus,
    /// Whether a softphone is registered for them.
    pub registered: bool,
    /// The call they are on, if any.
    pub current_call: Option<String>,
    /// What they are doing: `available`, `paused`, `offline`, `ringing`, `busy` or
    /// `wrap-up` (`None`: the queue did not say; then `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the queue paused them (e.g. `missed 2 calls in a row (last: no-answer)`), until
    /// they set a status themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
}

/// The queue at one instant: the body of `GET /api/queue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// Longest waiting first.
    pub waiting: Vec<WaitingCall>,
    /// By name.
    pub operators: Vec<OperatorView>,
}

/// Why the queue could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue has stopped (shutdown) or is not running: 503.
    #[error("operator queue not running")]
    NotRunning,
    /// The queue knows no operator of that name: 404.
    #[error("no such operator")]
    UnknownOperator,
}

/// The console's view of the operator queue. Implemented by the binary over the queue's
/// handle; both methods should answer quickly (the queue is an actor; ask it, do not wait
/// for calls to move).
#[async_trait]
pub trait QueueView: Send + Sync + 'static {
    /// Who is waiting and who is there to answer.
    async fn snapshot(&self) -> Result<QueueSnapshot, QueueError>;

    /// Sets an operator's availability. `name` is an enabled user with the operator role
    /// (the console checks that first).
    async fn set_status(&self, name: &str, status: OperatorStatus) -> Result<(), QueueError>;
}
