//! The INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as updated by
//! RFC 6026 §7.2 and §8.4.
//!
//! ```text
//!            1xx                    1xx
//!   Calling -----> Proceeding ----+
//!   (A, B)  |       |    ^--------+       2xx (to the TU)
//!           |       +------------------------------------+
//!           | 2xx                                        v
//!           +------------------------------------->  Accepted (Timer M) --> Terminated
//!           | 300-699 (send ACK)      300-699 (send ACK)
//!           +----------------> Completed <---- Proceeding
//!           | B fired: Timeout    (Timer D; resend ACK on retransmissions) --> Terminated
//!           +--> Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerTable};
use super::{Class, Config, backoff};

/// RFC 3261 Table 4: the least value of Timer D on unreliable transports.
const TIMER_D_MIN: Duration = Duration::from_secs(32);

/// The states of an [`InviteClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The INVITE was sent and, on unreliable transports, is retransmitted
    /// (Timer A) until a response arrives or Timer B gives up.
    Calling,
    /// A provisional response arrived; waiting for the final one.
    Proceeding,
    /// A 300-699 response arrived and was ACKed; its retransmissions are ACKed
    /// again until Timer D.
    Completed,
    /// RFC 6026 §7.2: a 2xx arrived; 2xx retransmissions and 2xx from other
    /// forks go to the TU until Timer M.
    Accepted,
    /// Finished; the endpoint can forget the transaction.
    Terminated,
}

/// What an [`InviteClient`] tells the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Timer B fired: no response to the INVITE (RFC 3261 §17.1.1.2); the TU
    /// treats it as 408 Request Timeout (§8.1.3.1).
    Timeout,
    /// The endpoint reported a transport error (RFC 3261 §17.1.4).
    TransportError,
    /// The transaction reached [`State::Terminated`]; always the last event.
    Terminated,
}

/// An INVITE client transaction. It sends the INVITE it is created with, and
/// the endpoint feeds it the status codes of the matching responses.
#[derive(Debug)]
pub struct InviteClient {
    config: Config,
    reliable: bool,
    state: State,
    timers: TimerTable,
    request: Bytes,
    /// The ACK for the 300-699 response, resent on its retransmissions.
    ack: Option<Bytes>,
    /// The current interval of Timer A.
    interval: Duration,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
}

impl InviteClient {
    /// Sends `request` at once, in Calling: Timer A (unreliable transports) and
    /// Timer B are armed.
    pub fn new(now: Instant, config: &Config, reliable: bool, request: Bytes) -> Self {
        let mut timers = TimerTable::default();
        if !reliable {
            timers.set(Timer::A, now + config.t1);
        }
        timers.set(Timer::B, now + config.timeout());
        Self {
            config: *config,
            reliable,
            state: State::Calling,
            timers,
            request: request.clone(),
            ack: None,
            interval: config.t1,
            transmits: VecDeque::from([request]),
            events: VecDeque::new(),
        }
    }

    /// A response with status `code` matched this transaction; returns whether
    /// the TU should see it.
    ///
    /// - 1xx: Calling or Proceeding → Proceeding (retransmission stops); to the TU.
    /// - 2xx: → Accepted (Timer M); to the TU every time, retransmissions and
    ///   other forks included, because the TU ACKs each 2xx itself (RFC 3261
    ///   §13.2.2.4). A 2xx in Completed (another fork answered) also goes to
    ///   the TU, which must ACK and BYE it.
    /// - 300-699: → Completed: `ack`, which the endpoint builds (RFC 3261
    ///   §17.1.1.3), is sent, and Timer D armed (on reliable transports the
    ///   transaction ends at once); to the TU the first time only. A
    ///   retransmission in Completed sends the ACK again and is absorbed.
    pub fn handle_response(&mut self, now: Instant, code: u16, ack: Option<Bytes>) -> bool {
        let Some(class) = Class::of(code) else {
            return false;
        };
        match (self.state, class) {
            (State::Calling | State::Proceeding, Class::Provisional) => {
                self.state = State::Proceeding;
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                true
            }
            (State::Calling | State::Proceeding, Class::Success) => {
                self.state = State::Accepted;
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                self.timers.set(Timer::M, now + self.config.timeout());
                true
            }
            (State::Calling | State::Proceeding, Class::Failure) => {
                self.timers.stop(Timer::A);
                self.timers.stop(Timer::B);
                if let Some(ack) = &ack {
                    self.transmits.push_back(ack.clone());
                }
                if self.reliable {
                    self.terminate();
                    return true;
                }
                self.state = State::Completed;
                self.ack = ack;
                let wait = self.config.timeout().max(TIMER_D_MIN);
                self.timers.set(Timer::D, now + wait);
                true
            }
            (State::Completed, Class::Failure) => {
                if self.ack.is_none() {
                    self.ack = ack;
                }
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
                false
            }
            (State::Completed | State::Accepted, Class::Success) => true,
            _ => false,
        }
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
                Timer::A => {
                    self.transmits.push_back(self.request.clone());
                    self.interval = backoff(self.interval, None);
                    self.timers.set(Timer::A, now + self.interval);
                }
                Timer::B => {
                    self.events.push_back(Event::Timeout);
                    self.terminate();
                }
                Timer::D | Timer::M => self.terminate(),
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
        self.ack = None;
        self.events.push_back(Event::Terminated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: Bytes = Bytes::from_static(b"INVITE");
    const ACK: Bytes = Bytes::from_static(b"ACK");

    fn drain(tx: &mut InviteClient) -> Vec<Bytes> {
        std::iter::from_fn(|| tx.poll_transmit()).collect()
    }

    #[test]
    fn provisional_stops_timers_a_and_b() {
        let now = Instant::now();
        let mut tx = InviteClient::new(now, &Config::default(), false, INVITE);
        assert_eq!(drain(&mut tx), [INVITE]);
        assert!(tx.handle_response(now, 180, None));
        assert_eq!(tx.state(), State::Proceeding);
        assert_eq!(
            tx.poll_timeout(),
            None,
            "no transaction timeout in Proceeding"
        );
        assert!(tx.handle_response(now, 183, None));
    }

    #[test]
    fn failure_is_acked_and_absorbed() {
        let now = Instant::now();
        let mut tx = InviteClient::new(now, &Config::default(), false, INVITE);
        drain(&mut tx);
        assert!(tx.handle_response(now, 486, Some(ACK)));
        assert_eq!(tx.state(), State::Completed);
        assert_eq!(tx.poll_timeout(), Some(now + TIMER_D_MIN));
        assert!(!tx.handle_response(now, 486, Some(ACK)));
        assert!(!tx.handle_response(now, 180, None));
        assert_eq!(drain(&mut tx), [ACK, ACK]);
        assert!(
            tx.handle_response(now, 200, None),
            "a fork's 2xx goes to the TU"
        );
        assert_eq!(tx.state(), State::Completed);
    }

    #[test]
    fn timer_d_follows_t1() {
        let now = Instant::now();
        let config = Config {
            t1: Duration::from_secs(1),
            ..Config::default()
        };
        let mut tx = InviteClient::new(now, &config, false, INVITE);
        tx.handle_response(now, 404, Some(ACK));
        assert_eq!(tx.poll_timeout(), Some(now + Duration::from_secs(64)));
    }

    #[test]
    fn reliable_failure_ends_at_once() {
        let now = Instant::now();
        let mut tx = InviteClient::new(now, &Config::default(), true, INVITE);
        assert_eq!(tx.timers.get(Timer::A), None);
        assert!(tx.handle_response(now, 603, Some(ACK)));
        assert!(tx.is_terminated());
        assert_eq!(drain(&mut tx), [INVITE, ACK]);
        assert!(!tx.handle_response(now, 603, Some(ACK)));
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn accepted_passes_2xx_until_timer_m() {
        let now = Instant::now();
        let config = Config::default();
        let mut tx = InviteClient::new(now, &config, false, INVITE);
        assert!(tx.handle_response(now, 200, None));
        assert!(tx.handle_response(now, 200, None));
        assert!(!tx.handle_response(now, 180, None));
        assert!(!tx.handle_response(now, 500, Some(ACK)));
        assert_eq!(drain(&mut tx), [INVITE]);
        assert_eq!(tx.poll_timeout(), Some(now + config.timeout()));
        tx.handle_timeout(now + config.timeout());
        assert!(tx.is_terminated());
        assert!(!tx.handle_response(now, 200, None));
    }
}
