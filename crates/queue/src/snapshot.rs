//! [`Snapshot`]: the queue at one instant, for the console (`GET /api/queue`).
//!
//! Shaped after the console's `QueueSnapshot`: `status` maps one to one to its
//! `OperatorStatus`, `current_call` to its `current_call`, and a wall-clock `since` is
//! `Timestamp::now()` minus [`QueuedCall::waited`].

use std::time::{Duration, Instant};

use crate::{CallId, Language, OperatorName, OperatorState, PauseReason, Status};

/// Who is waiting and who is there to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Longest waiting first (the queue order; `position` is the index + 1).
    pub waiting: Vec<QueuedCall>,
    /// By name.
    pub operators: Vec<OperatorSnapshot>,
}

/// A caller in the queue (waiting, or being offered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCall {
    pub call: CallId,
    /// `None` if the caller never chose one: any operator.
    pub language: Option<Language>,
    /// When they joined the queue.
    pub since: Instant,
    /// How long they have waited, at the snapshot.
    pub waited: Duration,
    /// The operator being rung for them, if any.
    pub offered_to: Option<OperatorName>,
}

/// An operator as the queue sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSnapshot {
    pub name: OperatorName,
    /// The availability they set (or the queue set: see `paused_reason`).
    pub status: Status,
    /// What they are doing: `status`, or ringing, busy, wrap-up.
    pub state: OperatorState,
    /// Whether their softphone is registered.
    pub registered: bool,
    /// The call they are on (state busy).
    pub current_call: Option<CallId>,
    /// The call ringing them (state ringing).
    pub offered_call: Option<CallId>,
    /// Why the queue paused them, until they set a status themselves.
    pub paused_reason: Option<PauseReason>,
    /// The languages they speak.
    pub languages: Vec<Language>,
    /// Free since (the next offer goes to the earliest), when they are free.
    pub idle_since: Option<Instant>,
    /// When their wrap-up ends (state wrap-up).
    pub wrap_up_until: Option<Instant>,
}
