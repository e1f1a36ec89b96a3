//! The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).
//!
//! ```text
//!           1xx                    1xx
//!   Trying -----> Proceeding ----+
//!   (E, F)  |      (E every T2, F) <-+
//!           | 200-699       | 200-699
//!           v               v
//!         Completed (Timer K; at once on reliable transports) --> Terminated
//!   F fired in Trying or Proceeding: Timeout --> Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerTable};
use super::{Class, Config, backoff};

/// The states of a [`NonInviteClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The request was sent and, on unreliable transports, is retransmitted
    /// (Timer E, doubling up to T2).
    Trying,
    /// A provisional response arrived; the request is still retransmitted, every
    /// T2.
    Proceeding,
    /// The final response arrived; its retransmissions are absorbed until Timer K.
    Completed,
    /// Finished; the endpoint can forget the transaction.
    Terminated,
}

/// What a [`NonInviteClient`] tells the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Timer F fired: no final response (RFC 3261 §17.1.2.2); the TU treats it
    /// as 408 Request Timeout (§8.1.3.1).
    Timeout,
    /// The endpoint reported a transport error (RFC 3261 §17.1.4).
    TransportError,
    /// The transaction reached [`State::Terminated`]; always the last event.
    Terminated,
}

/// A non-INVITE client transaction. It sends the request it is created with,
/// and the endpoint feeds it the status codes of the matching responses.
#[derive(Debug)]
pub struct NonInviteClient {
    config: Config,
    reliable: bool,
    state: State,
    timers: TimerTable,
    request: Bytes,
    /// The current interval of Timer E.
    interval: Duration,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
}

impl NonInviteClient {
    /// Sends `request` at once, in Trying: Timer E (unreliable transports) and
    /// Timer F are armed.
    pub fn new(now: Instant, config: &Config, reliable: bool, request: Bytes) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::E, now + config.t1);
        }
        timers.set(Timer::F, now + config.timeout());
        Self {
            config: *config,
            reliable,
            state: State::Trying,
            timers,
            request: request.clone(),
            interval: config.t1,
            transmits: VecDeque::from([request]),
            events: VecDeque::new(),
        }
    }

    /// A response with status `code` matched this transaction; returns whether
    /// the TU should see it. A 1xx moves to (or stays in) Proceeding; the first
    /// final response moves to Completed (Timer K = T4; on reliable transports
    /// the transaction ends at once). Responses after the final one are absorbed.
    pub fn handle_response(&mut self, now: Instant, code: u16) -> bool {
        let Some(class) = Class::of(code) else {
            return false;
        };
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        if class == Class::Provisional {
            self.state = State::Proceeding;
            return true;
        }
        if self.reliable {
            self.terminate();
            return true;
        }
        self.state = State::Completed;
        self.timers.stop(Timer::E);
        self.timers.stop(Timer::F);
        self.timers.set(Timer::K, now + self.config.t4);
        true
    }

    /// The transport failed to send a message of this transaction (RFC 3261
    /// §17.1.4): the transaction ends with [`Event::TransportError`].
    pub fn transport_error(&mut self) {
        if self.state == State::Terminated {
            return;
        }
        self.events.push_back(Event::TransportError);
        self.terminate();
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expired(now) {
            if !self.timers.take_expired(timer, now) {
                continue;
            }
            match timer {
                Timer::E => {
                    self.transmits.push_back(self.request.clone());
                    self.interval = match self.state {
                        State::Proceeding => self.config.t2,
                        _ => backoff(self.interval, Some(self.config.t2)),
                    };
                    self.timers.set(Timer::E, now + self.interval);
                }
                Timer::F => {
                    self.events.push_back(Event::Timeout);
                    self.terminate();
                }
                Timer::K => self.terminate(),
                _ => {}
            }
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
        self.events.push_back(Event::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: Bytes = Bytes::from_static(b"OPTIONS");

    #[test]
    fn final_responses_reach_the_tu_once() {
        let now = Instant::now();
        let config = Config::default();
        let mut tx = NonInviteClient::new(now, &config, false, OPTIONS);
        assert!(tx.handle_response(now, 100));
        assert!(tx.handle_response(now, 100));
        assert!(tx.handle_response(now, 404));
        assert!(!tx.handle_response(now, 404));
        assert!(!tx.handle_response(now, 100));
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(tx.poll_timeout(), Some(now + config.t4));
    }

    #[test]
    fn reliable_has_no_timer_e_and_no_timer_k() {
        let now = Instant::now();
        let config = Config::default();
        let mut tx = NonInviteClient::new(now, &config, true, OPTIONS);
        assert_eq!(tx.timers.get(Timer::E), None);
        assert_eq!(tx.poll_timeout(), Some(now + config.timeout()));
        assert!(tx.handle_response(now, 200));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn out_of_range_codes_are_ignored() {
        let now = Instant::now();
        let mut tx = NonInviteClient::new(now, &Config::default(), false, OPTIONS);
        assert!(!tx.handle_response(now, 42));
        assert!(!tx.handle_response(now, 700));
        assert_eq!(tx.state(), State::Trying);
    }
}
