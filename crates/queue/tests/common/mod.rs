//! The queue and its shell in one test, on a fake clock.
//!
//! `epoch` is read once; [`Harness::advance`] moves `now`, calling `handle_timeout` at
//! every deadline the queue asked for on the way, and [`Harness::wait`] jumps to the next
//! one. Each step returns the events the queue emitted; [`Event::Position`] events are
//! set aside in [`Harness::positions`] (with the time they came) so that expectations
//! read as what the operators' phones do.

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hotline_queue::{
    CallId, Event, Language, NoOperatorReason, OfferFailure, OperatorName, OperatorQueue,
    OperatorSnapshot, QueueConfig, Status,
};

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The timings of every test: round numbers, distinct from one another.
pub(crate) fn config() -> QueueConfig {
    QueueConfig {
        ring_timeout: secs(20),
        language_wait: secs(30),
        wrap_up: secs(10),
        max_wait: secs(300),
        position_every: secs(45),
        missed_offers_before_pause: 2,
    }
}

pub(crate) fn call(id: &str) -> CallId {
    CallId::new(id)
}

pub(crate) fn op(name: &str) -> OperatorName {
    OperatorName::new(name)
}

pub(crate) fn offer(c: &str, o: &str) -> Event {
    Event::Offer {
        call: call(c),
        operator: op(o),
    }
}

pub(crate) fn cancel_offer(c: &str, o: &str) -> Event {
    Event::CancelOffer {
        call: call(c),
        operator: op(o),
    }
}

pub(crate) fn connected(c: &str, o: &str, waited: Duration) -> Event {
    Event::Connected {
        call: call(c),
        operator: op(o),
        waited,
    }
}

pub(crate) fn no_operator(c: &str, reason: NoOperatorReason) -> Event {
    Event::NoOperator {
        call: call(c),
        reason,
    }
}

/// One queue, driven by the test.
pub(crate) struct Harness {
    pub(crate) q: OperatorQueue,
    pub(crate) epoch: Instant,
    pub(crate) now: Instant,
    /// Every position told: (time since epoch, call, position).
    pub(crate) positions: Vec<(Duration, CallId, u32)>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(config())
    }

    pub(crate) fn with(config: QueueConfig) -> Self {
        let epoch = Instant::now();
        Self {
            q: OperatorQueue::new(config),
            epoch,
            now: epoch,
            positions: Vec::new(),
        }
    }

    /// Time since the epoch.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// An operator who logs in: registered, speaking `langs`, available.
    pub(crate) fn login(&mut self, name: &str, langs: &[&str]) -> Vec<Event> {
        let langs = langs.iter().map(|l| Language::new(*l)).collect();
        self.q.operator_languages(self.now, op(name), langs);
        self.q.registration(self.now, op(name), true);
        self.q
            .operator_status(self.now, op(name), Status::Available);
        self.drain()
    }

    pub(crate) fn status(&mut self, name: &str, status: Status) -> Vec<Event> {
        self.q.operator_status(self.now, op(name), status);
        self.drain()
    }

    pub(crate) fn register(&mut self, name: &str, registered: bool) -> Vec<Event> {
        self.q.registration(self.now, op(name), registered);
        self.drain()
    }

    pub(crate) fn enqueue(&mut self, c: &str, lang: Option<&str>) -> Vec<Event> {
        self.q.enqueue(self.now, call(c), lang.map(Language::new));
        self.drain()
    }

    pub(crate) fn cancel(&mut self, c: &str) -> Vec<Event> {
        self.q.cancel(self.now, call(c));
        self.drain()
    }

    pub(crate) fn answer(&mut self, c: &str, o: &str) -> Vec<Event> {
        self.q.offer_answered(self.now, call(c), op(o));
        self.drain()
    }

    pub(crate) fn fail(&mut self, c: &str, o: &str, reason: OfferFailure) -> Vec<Event> {
        self.q.offer_failed(self.now, call(c), op(o), reason);
        self.drain()
    }

    pub(crate) fn end(&mut self, o: &str) -> Vec<Event> {
        self.q.call_ended(self.now, op(o));
        self.drain()
    }

    /// Moves the clock by `d`, firing every deadline on the way (at its exact time).
    pub(crate) fn advance(&mut self, d: Duration) -> Vec<Event> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.q.poll_timeout().filter(|&t| t <= until) {
            assert!(t >= self.now, "a deadline in the past: {:?}", self.now - t);
            self.now = t;
            self.q.handle_timeout(t);
            out.extend(self.drain());
        }
        self.now = until;
        out
    }

    /// Jumps to the next deadline and fires it.
    pub(crate) fn wait(&mut self) -> Vec<Event> {
        let t = self.q.poll_timeout().expect("a deadline");
        self.advance(t - self.now)
    }

    /// The events so far, positions set aside.
    pub(crate) fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = self.q.poll_event() {
            match e {
                Event::Position { call, position } => {
                    self.positions.push((self.now - self.epoch, call, position))
                }
                e => out.push(e),
            }
        }
        out
    }

    pub(crate) fn operator(&self, name: &str) -> OperatorSnapshot {
        self.q
            .snapshot(self.now)
            .operators
            .into_iter()
            .find(|o| o.name.as_str() == name)
            .expect("a known operator")
    }

    /// The ids of the calls in the queue, in order.
    pub(crate) fn waiting(&self) -> Vec<String> {
        self.q
            .snapshot(self.now)
            .waiting
            .into_iter()
            .map(|c| c.call.into_string())
            .collect()
    }
}
