//! What comes out of the queue ([`Event`]) and the reasons it carries.

use std::fmt;
use std::time::Duration;

use crate::{CallId, OperatorName};

/// Something the shell must act on, from [`OperatorQueue::poll_event`].
///
/// [`OperatorQueue::poll_event`]: crate::OperatorQueue::poll_event
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Ring `operator` for `call`: the call task places the operator leg, then reports
    /// [`offer_answered`] or [`offer_failed`]. One offer per call and per operator at a time.
    ///
    /// [`offer_answered`]: crate::OperatorQueue::offer_answered
    /// [`offer_failed`]: crate::OperatorQueue::offer_failed
    Offer {
        call: CallId,
        operator: OperatorName,
    },
    /// Stop the operator leg of `call` to `operator`: CANCEL it if it still rings, BYE it if
    /// it was answered too late (the offer had timed out or the call was taken). The queue
    /// has already forgotten this offer; a report about it is ignored.
    CancelOffer {
        call: CallId,
        operator: OperatorName,
    },
    /// The caller's place in the queue, 1-based (1 = next): when they join, when it
    /// changes, and every [`QueueConfig::position_every`].
    ///
    /// [`QueueConfig::position_every`]: crate::QueueConfig::position_every
    Position { call: CallId, position: u32 },
    /// The queue gave up on `call`; the call is out of the queue and the flow offers the
    /// message path.
    NoOperator {
        call: CallId,
        reason: NoOperatorReason,
    },
    /// The operator answered: the call task bridges caller and operator. The call is out of
    /// the queue; the operator is busy until [`call_ended`].
    ///
    /// [`call_ended`]: crate::OperatorQueue::call_ended
    Connected {
        call: CallId,
        operator: OperatorName,
        /// From joining the queue to the answer.
        waited: Duration,
    },
    /// The queue paused `operator` (they keep a call they are on). The console shows the
    /// reason until they set their status again.
    OperatorPaused {
        operator: OperatorName,
        reason: PauseReason,
    },
}

impl Event {
    /// The call this event is for, if any.
    pub fn call(&self) -> Option<&CallId> {
        match self {
            Self::Offer { call, .. }
            | Self::CancelOffer { call, .. }
            | Self::Position { call, .. }
            | Self::NoOperator { call, .. }
            | Self::Connected { call, .. } => Some(call),
            Self::OperatorPaused { .. } => None,
        }
    }
}

/// Why the queue gave up on a call ([`Event::NoOperator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoOperatorReason {
    /// No operator is logged in (status available or paused, softphone registered): at
    /// night, or when the last one left.
    NobodyLoggedIn,
    /// The caller waited [`QueueConfig::max_wait`](crate::QueueConfig::max_wait).
    MaxWait,
}

impl NoOperatorReason {
    /// Short name for logs and the call's event log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NobodyLoggedIn => "nobody-logged-in",
            Self::MaxWait => "max-wait",
        }
    }
}

impl fmt::Display for NoOperatorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an offer was not answered, as the call task reports it (or the queue's own ring
/// timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfferFailure {
    /// The operator rejected it (603 Decline). Not a miss: the operator is there. The call
    /// is not offered to them again.
    Declined,
    /// The softphone answered busy (486/600). Counts as a miss.
    Busy,
    /// Nobody answered within the ring timeout (the queue's or the transaction's). Counts as
    /// a miss.
    Timeout,
    /// The softphone could not be reached (no binding, 404/408/480/5xx, transport error).
    /// Counts as a miss.
    Unreachable,
}

impl OfferFailure {
    /// Short name for logs and the console.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::Busy => "busy",
            Self::Timeout => "no-answer",
            Self::Unreachable => "unreachable",
        }
    }

    /// Whether it counts towards [`QueueConfig::missed_offers_before_pause`](crate::QueueConfig::missed_offers_before_pause).
    pub const fn is_miss(self) -> bool {
        !matches!(self, Self::Declined)
    }
}

impl fmt::Display for OfferFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the queue paused an operator ([`Event::OperatorPaused`], and the snapshot until the
/// operator sets a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PauseReason {
    /// `count` offers in a row were missed; `last` is how the last one failed.
    MissedOffers { count: u32, last: OfferFailure },
}

impl fmt::Display for PauseReason {
    /// What the operator reads: `missed 2 calls in a row (last: no-answer)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissedOffers { count, last } => {
                write!(f, "missed {count} calls in a row (last: {last})")
            }
        }
    }
}
