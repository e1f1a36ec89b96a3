//! The queue as a tokio task: [`spawn`] starts it, a [`QueueHandle`] talks to it.
//!
//! The task owns the [`OperatorQueue`], reads the clock (`tokio::time`, so tests can pause
//! it), sleeps until [`OperatorQueue::poll_timeout`], and after every message or timeout
//! drains the events: each goes to the [`events`](QueueHandle::events) broadcast, and a
//! call's to the task that enqueued it ([`CallEvents`]). Channels only (`tokio::sync`);
//! no sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    CallId, Event, Language, NoOperatorReason, OfferFailure, OperatorName, OperatorQueue,
    QueueConfig, QueueError, Snapshot, Status,
};

/// Requests waiting for the task before senders wait.
const REQUESTS: usize = 1024;
/// Events kept for a slow [`events`](QueueHandle::events) receiver before it lags.
const EVENTS: usize = 1024;

/// What the queue tells one waiting call: [`Event`]s about that call, without its id.
pub type CallEvents = mpsc::UnboundedReceiver<CallQueueEvent>;

/// An [`Event`] for the call that receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallQueueEvent {
    /// [`Event::Offer`]: ring this operator.
    Offer { operator: OperatorName },
    /// [`Event::CancelOffer`]: stop the leg to this operator (CANCEL or BYE).
    CancelOffer { operator: OperatorName },
    /// [`Event::Position`]: the caller's place, 1 = next.
    Position { position: u32 },
    /// [`Event::NoOperator`]: out of the queue; offer the message path. Last event.
    NoOperator { reason: NoOperatorReason },
    /// [`Event::Connected`]: bridge the caller to this operator.
    Connected {
        operator: OperatorName,
        waited: Duration,
    },
}

impl CallQueueEvent {
    /// The call an event is for, and what that call is told.
    pub fn from_event(event: &Event) -> Option<(CallId, CallQueueEvent)> {
        let (call, e) = match event {
            Event::Offer { call, operator } => (
                call,
                Self::Offer {
                    operator: operator.clone(),
                },
            ),
            Event::CancelOffer { call, operator } => (
                call,
                Self::CancelOffer {
                    operator: operator.clone(),
                },
            ),
            Event::Position { call, position } => (
                call,
                Self::Position {
                    position: *position,
                },
            ),
            Event::NoOperator { call, reason } => (call, Self::NoOperator { reason: *reason }),
            Event::Connected {
                call,
                operator,
                waited,
            } => (
                call,
                Self::Connected {
                    operator: operator.clone(),
                    waited: *waited,
                },
            ),
            Event::OperatorPaused { .. } => return None,
        };
        Some((call.clone(), e))
    }
}

/// Starts the queue task on the current tokio runtime. It runs until every clone of the
/// handle is dropped.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn(config: QueueConfig) -> QueueHandle {
    let (tx, rx) = mpsc::channel(REQUESTS);
    let (events, _) = broadcast::channel(EVENTS);
    let actor = Actor {
        queue: OperatorQueue::new(config),
        rx,
        calls: HashMap::new(),
        events: events.clone(),
    };
    tokio::spawn(actor.run());
    QueueHandle { tx, events }
}

/// The way to the queue task; cheap to clone. Every method mirrors an [`OperatorQueue`]
/// input, taking `now` from the task's clock, and returns once the task has the request
/// (it is applied in order, before any later request from the same handle).
#[derive(Debug, Clone)]
pub struct QueueHandle {
    tx: mpsc::Sender<Request>,
    events: broadcast::Sender<Event>,
}

impl QueueHandle {
    /// Puts `call` in the queue ([`OperatorQueue::enqueue`]); returns its events. Dropping
    /// the receiver cancels the call. If the call is already queued the receiver is closed
    /// at once (the first one keeps the events).
    pub async fn enqueue(
        &self,
        call: CallId,
        language: Option<Language>,
    ) -> Result<CallEvents, QueueError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.send(Request::Enqueue { call, language, tx }).await?;
        Ok(rx)
    }

    /// [`OperatorQueue::cancel`].
    pub async fn cancel(&self, call: CallId) -> Result<(), QueueError> {
        self.send(Request::Cancel { call }).await
    }

    /// [`OperatorQueue::operator_status`].
    pub async fn operator_status(
        &self,
        operator: OperatorName,
        status: Status,
    ) -> Result<(), QueueError> {
        self.send(Request::Status { operator, status }).await
    }

    /// [`OperatorQueue::registration`].
    pub async fn registration(
        &self,
        operator: OperatorName,
        registered: bool,
    ) -> Result<(), QueueError> {
        self.send(Request::Registration {
            operator,
            registered,
        })
        .await
    }

    /// [`OperatorQueue::operator_languages`].
    pub async fn operator_languages(
        &self,
        operator: OperatorName,
        languages: Vec<Language>,
    ) -> Result<(), QueueError> {
        self.send(Request::Languages {
            operator,
            languages,
        })
        .await
    }

    /// [`OperatorQueue::offer_answered`].
    pub async fn offer_answered(
        &self,
        call: CallId,
        operator: OperatorName,
    ) -> Result<(), QueueError> {
        self.send(Request::Answered { call, operator }).await
    }

    /// [`OperatorQueue::offer_failed`].
    pub async fn offer_failed(
        &self,
        call: CallId,
        operator: OperatorName,
        reason: OfferFailure,
    ) -> Result<(), QueueError> {
        self.send(Request::Failed {
            call,
            operator,
            reason,
        })
        .await
    }

    /// [`OperatorQueue::call_ended`].
    pub async fn call_ended(&self, operator: OperatorName) -> Result<(), QueueError> {
        self.send(Request::Ended { operator }).await
    }

    /// [`OperatorQueue::snapshot`], now.
    pub async fn snapshot(&self) -> Result<Snapshot, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Snapshot { tx }).await?;
        rx.await.map_err(|_| QueueError::NotRunning)
    }

    /// Every event from now on (logging, metrics, the operators' view). A receiver that
    /// falls more than 1024 events behind gets `Lagged`.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn send(&self, request: Request) -> Result<(), QueueError> {
        self.tx
            .send(request)
            .await
            .map_err(|_| QueueError::NotRunning)
    }
}

/// A [`QueueHandle`] method, on its way to the task that serves the queue: the local
/// actor of [`spawn`], or another server of [`channel`]'s [`Requests`].
#[derive(Debug)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Request {
    Enqueue {
        call: CallId,
        language: Option<Language>,
        tx: mpsc::UnboundedSender<CallQueueEvent>,
    },
    Cancel {
        call: CallId,
    },
    Status {
        operator: OperatorName,
        status: Status,
    },
    Registration {
        operator: OperatorName,
        registered: bool,
    },
    Languages {
        operator: OperatorName,
        languages: Vec<Language>,
    },
    Answered {
        call: CallId,
        operator: OperatorName,
    },
    Failed {
        call: CallId,
        operator: OperatorName,
        reason: OfferFailure,
    },
    Ended {
        operator: OperatorName,
    },
    Snapshot {
        tx: oneshot::Sender<Snapshot>,
    },
}

/// A [`QueueHandle`] whose requests a task of the caller's serves instead of the local
/// actor: the cluster's queue, where one leader for the whole hotline runs the
/// [`OperatorQueue`] and every node's handle reaches it through the database.
pub fn channel() -> (QueueHandle, Requests) {
    let (tx, rx) = mpsc::channel(REQUESTS);
    let (events, _) = broadcast::channel(EVENTS);
    (
        QueueHandle {
            tx,
            events: events.clone(),
        },
        Requests { rx, events },
    )
}

/// The serving end of [`channel`].
#[derive(Debug)]
pub struct Requests {
    rx: mpsc::Receiver<Request>,
    events: broadcast::Sender<Event>,
}

impl Requests {
    /// The next request; `None` once every handle is dropped.
    pub async fn recv(&mut self) -> Option<Request> {
        self.rx.recv().await
    }

    /// Hands `event` to the handles' [`events`](QueueHandle::events) receivers.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}

/// The task's state.
#[derive(Debug)]
struct Actor {
    queue: OperatorQueue,
    rx: mpsc::Receiver<Request>,
    /// The event channel of each call the queue knows.
    calls: HashMap<CallId, mpsc::UnboundedSender<CallQueueEvent>>,
    events: broadcast::Sender<Event>,
}

impl Actor {
    async fn run(mut self) {
        loop {
            let wake = self.queue.poll_timeout();
            let request = tokio::select! {
                request = self.rx.recv() => match request {
                    Some(r) => Some(r),
                    None => break,
                },
                () = sleep_until(wake) => None,
            };
            let now = tokio::time::Instant::now().into_std();
            // Due timers first, so that a request (a snapshot) sees them fired.
            if wake.is_some_and(|t| t <= now) {
                self.queue.handle_timeout(now);
            }
            self.drop_abandoned(now);
            if let Some(r) = request {
                self.apply(now, r);
            }
            self.drain();
        }
    }

    fn apply(&mut self, now: Instant, request: Request) {
        let q = &mut self.queue;
        match request {
            Request::Enqueue { call, language, tx } => {
                if !self.calls.contains_key(&call) {
                    self.calls.insert(call.clone(), tx);
                    q.enqueue(now, call, language);
                }
            }
            Request::Cancel { call } => q.cancel(now, call),
            Request::Status { operator, status } => q.operator_status(now, operator, status),
            Request::Registration {
                operator,
                registered,
            } => q.registration(now, operator, registered),
            Request::Languages {
                operator,
                languages,
            } => q.operator_languages(now, operator, languages),
            Request::Answered { call, operator } => q.offer_answered(now, call, operator),
            Request::Failed {
                call,
                operator,
                reason,
            } => q.offer_failed(now, call, operator, reason),
            Request::Ended { operator } => q.call_ended(now, operator),
            Request::Snapshot { tx } => {
                // The asker may have gone; nothing to do then.
                let _ = tx.send(q.snapshot(now));
            }
        }
    }

    /// Calls whose task dropped its receiver have left: cancel them.
    fn drop_abandoned(&mut self, now: Instant) {
        let gone: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, tx)| tx.is_closed())
            .map(|(id, _)| id.clone())
            .collect();
        for call in gone {
            self.calls.remove(&call);
            self.queue.cancel(now, call);
        }
    }

    /// Hands every pending event out; forgets the channels of calls the queue let go.
    fn drain(&mut self) {
        while let Some(event) = self.queue.poll_event() {
            if let Some((call, e)) = CallQueueEvent::from_event(&event)
                && let Some(tx) = self.calls.get(&call)
            {
                // A closed receiver is cancelled by `drop_abandoned`.
                let _ = tx.send(e);
            }
            // No subscriber is not an error.
            let _ = self.events.send(event);
        }
        let queue = &self.queue;
        self.calls.retain(|call, _| queue.contains_call(call));
    }
}

/// Sleeps until `wake`, or forever.
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
