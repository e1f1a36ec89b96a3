//! One operator as the queue keeps them: the status they set ([`Status`]), what they are
//! doing ([`OperatorState`], derived), and their place in the idle order.

use std::fmt;
use std::time::Instant;

use crate::{CallId, Language, OfferFailure, PauseReason};

/// The availability an operator sets (console, softphone). Busy, ringing and wrap-up are
/// not set but derived: see [`OperatorState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Status {
    /// Offered calls when registered and free.
    Available,
    /// Logged in, not offered calls. Callers still wait for them.
    Paused,
    /// Not taking calls. The state of an operator the queue has just heard of.
    #[default]
    Offline,
}

impl Status {
    /// As the console writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Paused => "paused",
            Self::Offline => "offline",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator is doing, for the console: the [`Status`] they set, unless a call
/// occupies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorState {
    /// Set available and free; offered calls if registered.
    Available,
    /// Set paused (by themselves or by the queue, see the snapshot's `paused_reason`).
    Paused,
    /// Set offline.
    Offline,
    /// An offer rings their softphone.
    Ringing,
    /// On a call.
    Busy,
    /// After a call, before the next offer.
    WrapUp,
}

impl OperatorState {
    /// As the console writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Paused => "paused",
            Self::Offline => "offline",
            Self::Ringing => "ringing",
            Self::Busy => "busy",
            Self::WrapUp => "wrap-up",
        }
    }
}

impl fmt::Display for OperatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What occupies an operator, whatever their status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Activity {
    Idle,
    Ringing(CallId),
    Busy(CallId),
    WrapUp { until: Instant },
}

#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub(crate) status: Status,
    pub(crate) registered: bool,
    pub(crate) languages: Vec<Language>,
    pub(crate) activity: Activity,
    /// Free since (the end of wrap-up, becoming available, or a failed offer): the oldest
    /// is offered first. `None` until they first become ready.
    pub(crate) idle_since: Option<Instant>,
    /// Missed offers in a row.
    pub(crate) missed: u32,
    /// Set when the queue paused them; cleared when they set a status.
    pub(crate) paused_reason: Option<PauseReason>,
}

impl Operator {
    pub(crate) fn new() -> Self {
        Self {
            status: Status::Offline,
            registered: false,
            languages: Vec::new(),
            activity: Activity::Idle,
            idle_since: None,
            missed: 0,
            paused_reason: None,
        }
    }

    /// Set available with a registered softphone (whatever occupies them).
    pub(crate) fn on_duty(&self) -> bool {
        self.status == Status::Available && self.registered
    }

    /// Counts for "somebody is logged in": registered and not offline.
    pub(crate) fn logged_in(&self) -> bool {
        self.status != Status::Offline && self.registered
    }

    /// Can be offered a call now.
    pub(crate) fn offerable(&self) -> bool {
        self.on_duty() && self.activity == Activity::Idle
    }

    pub(crate) fn speaks(&self, lang: &Language) -> bool {
        self.languages.contains(lang)
    }

    /// Records a missed offer; returns the pause reason if this one pauses them.
    pub(crate) fn miss(&mut self, how: OfferFailure, threshold: u32) -> Option<PauseReason> {
        self.missed += 1;
        if threshold == 0 || self.missed < threshold || self.status != Status::Available {
            return None;
        }
        let reason = PauseReason::MissedOffers {
            count: self.missed,
            last: how,
        };
        self.status = Status::Paused;
        self.paused_reason = Some(reason);
        self.missed = 0;
        Some(reason)
    }

    pub(crate) fn state(&self) -> OperatorState {
        match self.activity {
            Activity::Ringing(_) => OperatorState::Ringing,
            Activity::Busy(_) => OperatorState::Busy,
            Activity::WrapUp { .. } => OperatorState::WrapUp,
            Activity::Idle => match self.status {
                Status::Available => OperatorState::Available,
                Status::Paused => OperatorState::Paused,
                Status::Offline => OperatorState::Offline,
            },
        }
    }
}
