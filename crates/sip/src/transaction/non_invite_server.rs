//! The non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).
//!
//! ```text
//!            respond(1xx)              respond(1xx)
//!   Trying -------------> Proceeding -----+
//!     |                     |    ^--------+
//!     | respond(200-699)    | respond(200-699)
//!     v                     v
//!   Completed (Timer J; at once on reliable transports) ---> Terminated
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::timer::{Timer, TimerTable};
use super::{Class, Config};

/// The states of a [`NonInviteServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The request arrived; no response yet, retransmissions are absorbed.
    Trying,
    /// A provisional response was sent; it answers request retransmissions.
    Proceeding,
    /// The final response was sent; it answers request retransmissions until
    /// Timer J.
    Completed,
    /// Finished; the endpoint can forget the transaction.
    Terminated,
}

/// What a [`NonInviteServer`] tells the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The endpoint reported a transport error (RFC 3261 §17.2.4).
    TransportError,
    /// The transaction reached [`State::Terminated`]; always the last event.
    Terminated,
}

/// A non-INVITE server transaction. The endpoint creates it when a request
/// other than INVITE or ACK arrives.
#[derive(Debug)]
pub struct NonInviteServer {
    config: Config,
    reliable: bool,
    state: State,
    timers: TimerTable,
    /// The last response sent, which answers request retransmissions.
    last: Option<Bytes>,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
}

impl NonInviteServer {
    /// A transaction for a request that just arrived, in Trying.
    pub fn new(_now: Instant, config: &Config, reliable: bool) -> Self {
        Self {
            config: *config,
            reliable,
            state: State::Trying,
            timers: TimerTable::default(),
            last: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sends the TU's response `response` with status `code`, and returns
    /// whether it was sent. A 1xx moves to Proceeding, a final response to
    /// Completed (Timer J = 64·T1; on reliable transports the transaction ends at
    /// once). Responses after the final one are discarded.
    pub fn respond(&mut self, now: Instant, code: u16, response: Bytes) -> bool {
        let Some(class) = Class::of(code) else {
            return false;
        };
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        self.transmits.push_back(response.clone());
        if class == Class::Provisional {
            self.state = State::Proceeding;
            self.last = Some(response);
            return true;
        }
        if self.reliable {
            self.terminate();
            return true;
        }
        self.state = State::Completed;
        self.last = Some(response);
        self.timers.set(Timer::J, now + self.config.timeout());
        true
    }

    /// The request arrived again: absorbed in Trying, answered with the last
    /// response in Proceeding and Completed.
    pub fn request_retransmitted(&mut self, _now: Instant) {
        if !matches!(self.state, State::Proceeding | State::Completed) {
            return;
        }
        if let Some(last) = &self.last {
            self.transmits.push_back(last.clone());
        }
    }

    /// The transport failed to send a message of this transaction (RFC 3261
    /// §17.2.4): the transaction ends with [`Event::TransportError`].
    pub fn transport_error(&mut self) {
        if self.state == State::Terminated {
            return;
        }
        self.events.push_back(Event::TransportError);
        self.terminate();
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.take_expired(Timer::J, now) {
            self.terminate();
        }
    }

    /// The next message to send to the peer.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next event for the endpoint.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.timers.stop_all();
        self.last = None;
        self.events.push_back(Event::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRYING: Bytes = Bytes::from_static(b"100");
    const OK: Bytes = Bytes::from_static(b"200");

    fn drain(tx: &mut NonInviteServer) -> Vec<Bytes> {
        std::iter::from_fn(|| tx.poll_transmit()).collect()
    }

    #[test]
    fn retransmitted_request_per_state() {
        let now = Instant::now();
        let mut tx = NonInviteServer::new(now, &Config::default(), false);
        tx.request_retransmitted(now);
        assert!(drain(&mut tx).is_empty(), "Trying absorbs");
        assert!(tx.respond(now, 100, TRYING));
        tx.request_retransmitted(now);
        assert_eq!(drain(&mut tx), [TRYING, TRYING]);
        assert!(tx.respond(now, 200, OK));
        assert!(
            !tx.respond(now, 500, TRYING),
            "final responses after the first are discarded"
        );
        tx.request_retransmitted(now);
        assert_eq!(drain(&mut tx), [OK, OK]);
        assert_eq!(tx.state(), State::Completed);
    }

    #[test]
    fn timer_j() {
        let now = Instant::now();
        let config = Config::default();
        let mut tx = NonInviteServer::new(now, &config, false);
        tx.respond(now, 200, OK);
        assert_eq!(tx.poll_timeout(), Some(now + config.timeout()));
        tx.handle_timeout(now + config.timeout() - config.t1);
        assert_eq!(tx.state(), State::Completed);
        tx.handle_timeout(now + config.timeout());
        assert!(tx.is_terminated());

        let mut tx = NonInviteServer::new(now, &config, true);
        tx.respond(now, 200, OK);
        assert!(tx.is_terminated(), "Timer J is zero on reliable transports");
        assert_eq!(drain(&mut tx), [OK]);
    }
}
