//! hotline-queue: the operator queue. Callers wait for an operator; operators are offered
//! calls one at a time, the one idle longest first, a caller's own language first.
//!
//! The rules are a pure state machine, [`OperatorQueue`] (the sans-IO shape of DESIGN.md):
//! inputs carry `now`, [`Event`]s come out of [`OperatorQueue::poll_event`], and the shell
//! calls [`OperatorQueue::handle_timeout`] at [`OperatorQueue::poll_timeout`]. It never
//! reads a clock. [`spawn`] runs one in a tokio task reached through a [`QueueHandle`]
//! (channels only); the console's `QueueView` is an adapter over that handle.
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use hotline_queue::{Event, OperatorQueue, QueueConfig, Status};
//! let now = Instant::now(); // the shell's clock
//! let mut queue = OperatorQueue::new(QueueConfig::default());
//! queue.registration(now, "ana".into(), true);
//! queue.operator_status(now, "ana".into(), Status::Available);
//! queue.enqueue(now, "call-1".into(), Some("qu".into()));
//! assert_eq!(queue.poll_event(), Some(Event::Offer { call: "call-1".into(), operator: "ana".into() }));
//! assert_eq!(queue.poll_event(), Some(Event::Position { call: "call-1".into(), position: 1 }));
//! assert_eq!(queue.poll_timeout(), Some(now + QueueConfig::RING_TIMEOUT));
//! ```
//!
//! # Layout
//! - `queue`: [`OperatorQueue`], its inputs, outputs and timers.
//! - `strategy`: who is offered which call (longest idle, language first, fallback).
//! - `operator`: [`Status`] (set) and [`OperatorState`] (derived), one operator's record.
//! - `event`: [`Event`] and its reasons ([`NoOperatorReason`], [`OfferFailure`],
//!   [`PauseReason`]).
//! - `snapshot`: [`Snapshot`] for the console.
//! - `config`: [`QueueConfig`]; `id`: [`CallId`], [`OperatorName`], [`Language`].
//! - `checkpoint`: [`Checkpoint`], the state as plain data ([`OperatorQueue::checkpoint`],
//!   [`OperatorQueue::restore`]) for a queue that another process carries on.
//! - `actor`: [`spawn`], [`QueueHandle`], [`CallQueueEvent`]; [`channel`] for a handle
//!   whose [`Requests`] another task serves (the cluster's queue).
//! - `error`: [`QueueError`].
//!
//! Decisions and what is not implemented: see the crate README.

mod actor;
mod checkpoint;
mod config;
mod error;
mod event;
mod id;
mod operator;
mod queue;
mod snapshot;
mod strategy;

pub use actor::{CallEvents, CallQueueEvent, QueueHandle, Request, Requests, channel, spawn};
pub use checkpoint::{CallPoint, Checkpoint, OperatorPoint};
pub use config::QueueConfig;
pub use error::QueueError;
pub use event::{Event, NoOperatorReason, OfferFailure, PauseReason};
pub use id::{CallId, Language, OperatorName};
pub use operator::{OperatorState, Status};
pub use queue::OperatorQueue;
pub use snapshot::{OperatorSnapshot, QueuedCall, Snapshot};
