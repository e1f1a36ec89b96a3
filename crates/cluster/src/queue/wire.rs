//! What travels through the database: a node's queue inputs (`queue_log.input`) and the
//! leader's events for a node's calls (`queue_outbox.event`), as JSON.

use std::time::{Duration, Instant};

use hotline_queue::{
    CallId, CallQueueEvent, Event, Language, NoOperatorReason, OfferFailure, OperatorName,
    OperatorQueue, Status,
};
use serde::{Deserialize, Serialize};

/// One [`QueueHandle`](hotline_queue::QueueHandle) call of a node, as the leader applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Input {
    /// `run`: the enqueuing node's run (`cluster_nodes.started_at`): when that run is over
    /// (the node died or restarted), the call is gone.
    Enqueue {
        call: String,
        language: Option<String>,
        run: i64,
    },
    Cancel {
        call: String,
    },
    Status {
        operator: String,
        status: String,
    },
    Languages {
        operator: String,
        languages: Vec<String>,
    },
    Answered {
        call: String,
        operator: String,
    },
    Failed {
        call: String,
        operator: String,
        reason: String,
    },
    Ended {
        operator: String,
    },
}

impl Input {
    /// Applies it to the leader's queue (an enqueue also needs the node: see the leader).
    pub(crate) fn apply(&self, queue: &mut OperatorQueue, now: Instant) {
        let op = |s: &str| OperatorName::from(s);
        let call = |s: &str| CallId::from(s);
        match self {
            Input::Enqueue {
                call: c, language, ..
            } => {
                queue.enqueue(now, call(c), language.as_deref().map(Language::from));
            }
            Input::Cancel { call: c } => queue.cancel(now, call(c)),
            Input::Status { operator, status } => {
                let status = match status.as_str() {
                    "available" => Status::Available,
                    "paused" => Status::Paused,
                    _ => Status::Offline,
                };
                queue.operator_status(now, op(operator), status);
            }
            Input::Languages {
                operator,
                languages,
            } => queue.operator_languages(
                now,
                op(operator),
                languages
                    .iter()
                    .map(|l| Language::from(l.as_str()))
                    .collect(),
            ),
            Input::Answered { call: c, operator } => {
                queue.offer_answered(now, call(c), op(operator));
            }
            Input::Failed {
                call: c,
                operator,
                reason,
            } => {
                // `OfferFailure::as_str` names; anything else is a timeout ("no-answer").
                let reason = match reason.as_str() {
                    "declined" => OfferFailure::Declined,
                    "busy" => OfferFailure::Busy,
                    "unreachable" => OfferFailure::Unreachable,
                    _ => OfferFailure::Timeout,
                };
                queue.offer_failed(now, call(c), op(operator), reason);
            }
            Input::Ended { operator } => queue.call_ended(now, op(operator)),
        }
    }
}

/// A [`CallQueueEvent`] in `queue_outbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Output {
    Offer { operator: String },
    CancelOffer { operator: String },
    Position { position: u32 },
    NoOperator { reason: String },
    Connected { operator: String, waited_ms: u64 },
}

impl Output {
    /// The call an [`Event`] is for, and what its node is told; `None` for events about no
    /// call (a pause, shown by the snapshot).
    pub(crate) fn of(event: &Event) -> Option<(CallId, Output)> {
        let (call, e) = CallQueueEvent::from_event(event)?;
        let out = match e {
            CallQueueEvent::Offer { operator } => Output::Offer {
                operator: operator.into_string(),
            },
            CallQueueEvent::CancelOffer { operator } => Output::CancelOffer {
                operator: operator.into_string(),
            },
            CallQueueEvent::Position { position } => Output::Position { position },
            CallQueueEvent::NoOperator { reason } => Output::NoOperator {
                reason: reason.as_str().to_owned(),
            },
            CallQueueEvent::Connected { operator, waited } => Output::Connected {
                operator: operator.into_string(),
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            },
            _ => return None,
        };
        Some((call, out))
    }

    /// What the call task is told.
    pub(crate) fn to_event(&self) -> CallQueueEvent {
        let op = |s: &str| OperatorName::from(s);
        match self {
            Output::Offer { operator } => CallQueueEvent::Offer {
                operator: op(operator),
            },
            Output::CancelOffer { operator } => CallQueueEvent::CancelOffer {
                operator: op(operator),
            },
            Output::Position { position } => CallQueueEvent::Position {
                position: *position,
            },
            Output::NoOperator { reason } => CallQueueEvent::NoOperator {
                reason: if reason == NoOperatorReason::MaxWait.as_str() {
                    NoOperatorReason::MaxWait
                } else {
                    NoOperatorReason::NobodyLoggedIn
                },
            },
            Output::Connected {
                operator,
                waited_ms,
            } => CallQueueEvent::Connected {
                operator: op(operator),
                waited: Duration::from_millis(*waited_ms),
            },
        }
    }

    /// Whether the call is out of the queue's hands after it (no more events but a
    /// late CancelOffer).
    pub(crate) fn is_last(&self) -> bool {
        matches!(self, Output::NoOperator { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_outputs_round_trip_as_json() {
        let inputs = [
            Input::Enqueue {
                call: "c1".into(),
                language: Some("qu".into()),
                run: 42,
            },
            Input::Failed {
                call: "c1".into(),
                operator: "ana".into(),
                reason: "busy".into(),
            },
        ];
        for i in inputs {
            let text = serde_json::to_string(&i).unwrap();
            assert_eq!(serde_json::from_str::<Input>(&text).unwrap(), i);
        }
        let e = Event::Connected {
            call: "c1".into(),
            operator: "ana".into(),
            waited: Duration::from_millis(1500),
        };
        let (call, out) = Output::of(&e).unwrap();
        assert_eq!(call.as_str(), "c1");
        let back: Output = serde_json::from_str(&serde_json::to_string(&out).unwrap()).unwrap();
        assert_eq!(
            back.to_event(),
            CallQueueEvent::Connected {
                operator: "ana".into(),
                waited: Duration::from_millis(1500)
            }
        );
        let no = Output::of(&Event::NoOperator {
            call: "c2".into(),
            reason: NoOperatorReason::MaxWait,
        })
        .unwrap()
        .1;
        assert!(no.is_last());
        assert_eq!(
            no.to_event(),
            CallQueueEvent::NoOperator {
                reason: NoOperatorReason::MaxWait
            }
        );
    }
}
