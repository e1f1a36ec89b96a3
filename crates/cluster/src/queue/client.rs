//! A node's side of the cluster's queue: serves the [`Requests`] of its
//! [`QueueHandle`](hotline_queue::QueueHandle).
//!
//! Inputs go to `queue_log` in the order the node's call tasks made them (a failed write is
//! retried, in order, while the database is away; an enqueue that cannot be written is
//! answered at once with "nobody logged in", so the caller is offered the message path and
//! never waits on a queue that cannot hear them). Events for the node's calls are read from
//! `queue_outbox` after the last one seen, on the leader's `NOTIFY` and every half second.
//! A call whose task dropped its receiver is cancelled, as with the local actor.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hotline_queue::{
    CallId, CallQueueEvent, Event, NoOperatorReason, OperatorQueue, QueueConfig, Request, Requests,
    Snapshot,
};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::leader::load;
use super::wire::{Input, Output};
use super::{INBOX_CHANNEL, node_channel};
use crate::{Cluster, ClusterError};

/// How often the node looks for events without a NOTIFY, and retries held inputs.
const POLL: Duration = Duration::from_millis(500);
/// The advisory lock that orders `queue_log` inserts (see [`Client::write`]).
const LOG_LOCK: i64 = 0x686f_746c_696e_6502;
/// Inputs held while the database is away, at most (older ones are dropped, logged).
const HOLD: usize = 10_000;

#[derive(Debug)]
struct Client {
    cluster: Cluster,
    config: QueueConfig,
    calls: HashMap<CallId, mpsc::UnboundedSender<CallQueueEvent>>,
    /// Inputs not written yet, in order.
    held: VecDeque<Input>,
    /// The last outbox row read (`None`: not known yet).
    cursor: Option<i64>,
}

pub(super) async fn run(cluster: Cluster, config: QueueConfig, mut requests: Requests) {
    let mut client = Client {
        cluster,
        config,
        calls: HashMap::new(),
        held: VecDeque::new(),
        cursor: None,
    };
    let mut listener: Option<PgListener> = None;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if listener.is_none() {
            listener = client.listen().await.ok();
        }
        tokio::select! {
            r = requests.recv() => match r {
                Some(r) => client.request(r).await,
                None => return,
            },
            n = recv(&mut listener) => {
                if n.is_err() {
                    listener = None;
                }
                client.read_events(&requests).await;
            }
            _ = poll.tick() => {
                client.drop_abandoned();
                client.flush().await;
                client.read_events(&requests).await;
            }
        }
    }
}

async fn recv(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(l) => l.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

impl Client {
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut l = PgListener::connect_with(&self.cluster.listen_pool()).await?;
        l.listen(&node_channel(self.cluster.node_id())).await?;
        Ok(l)
    }

    async fn request(&mut self, request: Request) {
        let input = match request {
            Request::Enqueue { call, language, tx } => {
                if self.calls.contains_key(&call) {
                    return;
                }
                // The cursor is known before the enqueue is logged: the call's first event
                // is after it.
                let (Some(run), true) = (self.cluster.run_started_at(), self.ensure_cursor().await)
                else {
                    let _ = tx.send(nobody());
                    return;
                };
                let input = Input::Enqueue {
                    call: call.to_string(),
                    language: language.map(|l| l.into_string()),
                    run,
                };
                // Not held: a caller is never left waiting on a queue that cannot hear them.
                if let Err(e) = self.write(&input).await {
                    tracing::warn!(error = %e, "cluster queue unreachable; caller offered the message path");
                    let _ = tx.send(nobody());
                    return;
                }
                self.calls.insert(call, tx);
                return;
            }
            Request::Cancel { call } => Input::Cancel {
                call: call.into_string(),
            },
            Request::Status { operator, status } => Input::Status {
                operator: operator.into_string(),
                status: status.as_str().to_owned(),
            },
            // The leader derives registration from the shared bindings (`sip_bindings`).
            Request::Registration { .. } => return,
            Request::Languages {
                operator,
                languages,
            } => Input::Languages {
                operator: operator.into_string(),
                languages: languages.into_iter().map(|l| l.into_string()).collect(),
            },
            Request::Answered { call, operator } => Input::Answered {
                call: call.into_string(),
                operator: operator.into_string(),
            },
            Request::Failed {
                call,
                operator,
                reason,
            } => Input::Failed {
                call: call.into_string(),
                operator: operator.into_string(),
                reason: reason.as_str().to_owned(),
            },
            Request::Ended { operator } => Input::Ended {
                operator: operator.into_string(),
            },
            Request::Snapshot { tx } => {
                match self.snapshot().await {
                    Ok(s) => {
                        let _ = tx.send(s);
                    }
                    Err(e) => tracing::warn!(error = %e, "queue snapshot unavailable"),
                }
                return;
            }
            other => {
                tracing::error!(request = ?other, "queue request the cluster does not know");
                return;
            }
        };
        self.held.push_back(input);
        self.flush().await;
    }

    /// Writes the held inputs, in order, until one fails.
    async fn flush(&mut self) {
        while let Some(input) = self.held.front() {
            match self.write(input).await {
                Ok(()) => {
                    self.held.pop_front();
                }
                Err(e) => {
                    tracing::debug!(error = %e, held = self.held.len(), "queue inputs held");
                    while self.held.len() > HOLD {
                        let lost = self.held.pop_front();
                        tracing::error!(input = ?lost, "queue input dropped: database away too long");
                    }
                    return;
                }
            }
        }
    }

    /// Logs one input. Inserts from all nodes are serialised by a transaction-level advisory
    /// lock taken before the row's `seq` is drawn, so `seq` order is commit order: the
    /// leader, reading `seq > applied`, can never pass over a row that commits late.
    async fn write(&self, input: &Input) -> Result<(), ClusterError> {
        let mut tx = self.cluster.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO queue_log (node_id, input) VALUES ($1, $2)")
            .bind(self.cluster.node_id())
            .bind(serde_json::to_value(input)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(INBOX_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the cursor at this run's start, once: events from before it are for calls this
    /// run does not have. Whether it is set.
    async fn ensure_cursor(&mut self) -> bool {
        if self.cursor.is_none() {
            let max: Result<Option<i64>, _> =
                sqlx::query_scalar("SELECT max(seq) FROM queue_outbox WHERE node_id = $1")
                    .bind(self.cluster.node_id())
                    .fetch_one(self.cluster.pool())
                    .await;
            if let Ok(max) = max {
                self.cursor = Some(max.unwrap_or(0));
            }
        }
        self.cursor.is_some()
    }

    /// Hands the node's new events to its calls.
    async fn read_events(&mut self, requests: &Requests) {
        if !self.ensure_cursor().await {
            return;
        }
        let pool = self.cluster.pool();
        let node = self.cluster.node_id();
        let Some(cursor) = self.cursor else { return };
        let rows: Result<Vec<(i64, String, serde_json::Value)>, _> = sqlx::query_as(
            "SELECT seq, call_id, event FROM queue_outbox \
             WHERE node_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(node)
        .bind(cursor)
        .fetch_all(pool)
        .await;
        let Ok(rows) = rows else { return };
        for (seq, call, event) in rows {
            self.cursor = Some(seq);
            let Ok(out) = serde_json::from_value::<Output>(event) else {
                tracing::error!(seq, "queue event not understood; skipped");
                continue;
            };
            let call = CallId::from(call);
            let e = out.to_event();
            if let Some(tx) = self.calls.get(&call) {
                let _ = tx.send(e.clone());
            }
            if out.is_last() {
                self.calls.remove(&call);
            }
            if let Some(event) = to_event(&call, e) {
                requests.publish(event);
            }
        }
    }

    /// Calls whose task dropped its receiver have left: cancel them.
    fn drop_abandoned(&mut self) {
        let gone: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, tx)| tx.is_closed())
            .map(|(c, _)| c.clone())
            .collect();
        for call in gone {
            self.calls.remove(&call);
            self.held.push_back(Input::Cancel {
                call: call.into_string(),
            });
        }
    }

    /// The queue as the leader last committed it, at now.
    async fn snapshot(&self) -> Result<Snapshot, ClusterError> {
        let now = Instant::now();
        Ok(match load(self.cluster.pool()).await? {
            Some((state, _, age)) => {
                let then = now.checked_sub(age).unwrap_or(now);
                OperatorQueue::restore(self.config.clone(), &state.queue, then).snapshot(now)
            }
            None => OperatorQueue::new(self.config.clone()).snapshot(now),
        })
    }
}

fn nobody() -> CallQueueEvent {
    CallQueueEvent::NoOperator {
        reason: NoOperatorReason::NobodyLoggedIn,
    }
}

/// The [`Event`] a call's event stands for, for the handle's `events()` receivers.
fn to_event(call: &CallId, e: CallQueueEvent) -> Option<Event> {
    let call = call.clone();
    Some(match e {
        CallQueueEvent::Offer { operator } => Event::Offer { call, operator },
        CallQueueEvent::CancelOffer { operator } => Event::CancelOffer { call, operator },
        CallQueueEvent::Position { position } => Event::Position { call, position },
        CallQueueEvent::NoOperator { reason } => Event::NoOperator { call, reason },
        CallQueueEvent::Connected { operator, waited } => Event::Connected {
            call,
            operator,
            waited,
        },
        _ => return None,
    })
}
