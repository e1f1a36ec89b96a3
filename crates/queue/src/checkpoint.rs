//! [`Checkpoint`]: the whole queue as plain data, so that another process can carry on from
//! it (the cluster's queue leader persists one with every step; a new leader restores it).
//!
//! Times are milliseconds relative to the moment the checkpoint was taken (negative: in the
//! past), so a checkpoint means the same in any process whatever its clock; the shell says
//! where that moment lies on its own clock when it restores.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::operator::{Activity, Operator};
use crate::queue::{Ring, Waiting};
use crate::{
    CallId, Language, OfferFailure, OperatorName, OperatorQueue, PauseReason, QueueConfig, Status,
};

/// The queue's state at one moment: who waits (in order) and every operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Waiting callers, longest waiting first.
    pub calls: Vec<CallPoint>,
    /// Every operator the queue knows.
    pub operators: Vec<OperatorPoint>,
}

/// One waiting caller in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPoint {
    pub call: String,
    pub language: Option<String>,
    /// When they joined (ms, relative).
    pub since_ms: i64,
    /// The operator being rung and the ring deadline (ms, relative).
    pub offer: Option<(String, i64)>,
    pub declined_by: Vec<String>,
    pub told: Option<u32>,
    pub next_position_ms: i64,
}

/// One operator in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorPoint {
    pub name: String,
    /// `available`, `paused` or `offline`.
    pub status: String,
    pub registered: bool,
    pub languages: Vec<String>,
    /// `idle`, `ringing`, `busy` or `wrap-up`.
    pub activity: String,
    /// The call ringing them or that they are on.
    pub call: Option<String>,
    /// The end of their wrap-up (ms, relative).
    pub wrap_up_until_ms: Option<i64>,
    pub idle_since_ms: Option<i64>,
    pub missed: u32,
    /// Why the queue paused them: missed offers in a row and how the last failed.
    pub paused: Option<(u32, String)>,
}

fn rel(t: Instant, now: Instant) -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if t >= now { ms(t - now) } else { -ms(now - t) }
}

fn abs(ms: i64, now: Instant) -> Instant {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        now + d
    } else {
        // An instant before the process's clock began: the earliest it can tell.
        now.checked_sub(d).unwrap_or(now)
    }
}

fn status_of(s: &str) -> Status {
    match s {
        "available" => Status::Available,
        "paused" => Status::Paused,
        _ => Status::Offline,
    }
}

fn failure_of(s: &str) -> OfferFailure {
    match s {
        "declined" => OfferFailure::Declined,
        "busy" => OfferFailure::Busy,
        "unreachable" => OfferFailure::Unreachable,
        _ => OfferFailure::Timeout,
    }
}

impl OperatorQueue {
    /// The whole state at `now` (a moment on this queue's clock, normally the last input's).
    pub fn checkpoint(&self, now: Instant) -> Checkpoint {
        let calls = self
            .calls
            .iter()
            .map(|c| CallPoint {
                call: c.id.to_string(),
                language: c.language.as_ref().map(ToString::to_string),
                since_ms: rel(c.since, now),
                offer: c
                    .offer
                    .as_ref()
                    .map(|r| (r.operator.to_string(), rel(r.deadline, now))),
                declined_by: c.declined_by.iter().map(ToString::to_string).collect(),
                told: c.told,
                next_position_ms: rel(c.next_position, now),
            })
            .collect();
        let operators = self
            .operators
            .iter()
            .map(|(name, o)| {
                let (activity, call, until) = match &o.activity {
                    Activity::Idle => ("idle", None, None),
                    Activity::Ringing(c) => ("ringing", Some(c.to_string()), None),
                    Activity::Busy(c) => ("busy", Some(c.to_string()), None),
                    Activity::WrapUp { until } => ("wrap-up", None, Some(rel(*until, now))),
                };
                OperatorPoint {
                    name: name.to_string(),
                    status: o.status.as_str().to_owned(),
                    registered: o.registered,
                    languages: o.languages.iter().map(ToString::to_string).collect(),
                    activity: activity.to_owned(),
                    call,
                    wrap_up_until_ms: until,
                    idle_since_ms: o.idle_since.map(|t| rel(t, now)),
                    missed: o.missed,
                    paused: o
                        .paused_reason
                        .map(|PauseReason::MissedOffers { count, last }| {
                            (count, last.as_str().to_owned())
                        }),
                }
            })
            .collect();
        Checkpoint { calls, operators }
    }

    /// A queue in the state of `checkpoint`, taken at `then` on this process's clock (the
    /// shell works it out: now minus the checkpoint's age). No events are pending; timers
    /// already due fire at the next input or [`handle_timeout`](Self::handle_timeout).
    pub fn restore(config: QueueConfig, checkpoint: &Checkpoint, then: Instant) -> Self {
        let mut queue = OperatorQueue::new(config);
        queue.calls = checkpoint
            .calls
            .iter()
            .map(|c| Waiting {
                id: CallId::from(c.call.as_str()),
                language: c.language.as_deref().map(Language::from),
                since: abs(c.since_ms, then),
                offer: c.offer.as_ref().map(|(op, deadline)| Ring {
                    operator: OperatorName::from(op.as_str()),
                    deadline: abs(*deadline, then),
                }),
                declined_by: c
                    .declined_by
                    .iter()
                    .map(|o| OperatorName::from(o.as_str()))
                    .collect(),
                told: c.told,
                next_position: abs(c.next_position_ms, then),
            })
            .collect();
        queue.operators = checkpoint
            .operators
            .iter()
            .map(|o| {
                let call = || CallId::from(o.call.as_deref().unwrap_or_default());
                let activity = match o.activity.as_str() {
                    "ringing" => Activity::Ringing(call()),
                    "busy" => Activity::Busy(call()),
                    "wrap-up" => Activity::WrapUp {
                        until: abs(o.wrap_up_until_ms.unwrap_or(0), then),
                    },
                    _ => Activity::Idle,
                };
                let operator = Operator {
                    status: status_of(&o.status),
                    registered: o.registered,
                    languages: o
                        .languages
                        .iter()
                        .map(|l| Language::from(l.as_str()))
                        .collect(),
                    activity,
                    idle_since: o.idle_since_ms.map(|t| abs(t, then)),
                    missed: o.missed,
                    paused_reason: o.paused.as_ref().map(|(count, last)| {
                        PauseReason::MissedOffers {
                            count: *count,
                            last: failure_of(last),
                        }
                    }),
                };
                (OperatorName::from(o.name.as_str()), operator)
            })
            .collect::<BTreeMap<_, _>>();
        queue.events = VecDeque::new();
        queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn drain(q: &mut OperatorQueue) -> Vec<Event> {
        std::iter::from_fn(|| q.poll_event()).collect()
    }

    /// A queue restored from its checkpoint behaves like the original from then on: same
    /// events for the same inputs and timeouts, on another clock origin.
    #[test]
    fn restored_queue_carries_on_like_the_original() {
        let config = QueueConfig::default();
        let t0 = Instant::now();
        let mut a = OperatorQueue::new(config.clone());
        a.registration(t0, "ana".into(), true);
        a.operator_status(t0, "ana".into(), Status::Available);
        a.operator_languages(t0, "ana".into(), vec!["qu".into()]);
        a.registration(t0, "beto".into(), true);
        a.operator_status(t0, "beto".into(), Status::Available);
        a.enqueue(t0, "c1".into(), Some("qu".into()));
        a.enqueue(t0 + Duration::from_secs(1), "c2".into(), None);
        a.enqueue(t0 + Duration::from_secs(2), "c3".into(), None);
        a.offer_answered(t0 + Duration::from_secs(3), "c1".into(), "ana".into());
        drain(&mut a);
        let at = t0 + Duration::from_secs(4);
        let cp = a.checkpoint(at);
        let json = serde_json::to_string(&cp).unwrap();
        let cp: Checkpoint = serde_json::from_str(&json).unwrap();

        // The other process's clock: an hour later.
        let shift = Duration::from_secs(3600);
        let mut b = OperatorQueue::restore(config, &cp, at + shift);
        assert_eq!(b.checkpoint(at + shift), a.checkpoint(at));
        assert_eq!(b.poll_timeout(), a.poll_timeout().map(|t| t + shift));
        for (dt, f) in [(5, "fail"), (6, "end"), (40, "tick"), (70, "tick")] {
            let (ta, tb) = (
                t0 + Duration::from_secs(dt),
                t0 + Duration::from_secs(dt) + shift,
            );
            match f {
                "fail" => {
                    a.offer_failed(ta, "c2".into(), "beto".into(), OfferFailure::Busy);
                    b.offer_failed(tb, "c2".into(), "beto".into(), OfferFailure::Busy);
                }
                "end" => {
                    a.call_ended(ta, "ana".into());
                    b.call_ended(tb, "ana".into());
                }
                _ => {
                    a.handle_timeout(ta);
                    b.handle_timeout(tb);
                }
            }
            assert_eq!(drain(&mut b), drain(&mut a), "after {f} at {dt} s");
        }
        assert!(!a.snapshot(t0).waiting.is_empty() || !a.snapshot(t0).operators.is_empty());
    }
}
