//! The INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as updated by
//! RFC 6026 §7.1 and §8.5-§8.7, plus the 2xx retransmission of RFC 3261 §13.3.1.4.
//!
//! ```text
//!              respond(1xx)  request_retransmitted: resend the last 1xx
//!                 +-----+
//!                 |     v
//!              Proceeding ---- respond(2xx) ----> Accepted  (Timer L; 2xx resent until ack_2xx)
//!                 |                                  |   L fired: NoAck if no ack_2xx
//!  respond(300-699)                                  v
//!                 v      ack           I fired    Terminated
//!              Completed ----> Confirmed -----> Terminated
//!    (Timers G, H)  |  H fired: Timeout
//!                   +-----------------------> Terminated
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::{Timer, TimerTable};
use super::{Class, Config, backoff};

/// The states of an [`InviteServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the TU's final response; provisional responses go out as
    /// they come, and the last one answers INVITE retransmissions.
    Proceeding,
    /// A 300-699 response was sent and is retransmitted (Timer G, unreliable
    /// transports) until the ACK, or until Timer H gives up.
    Completed,
    /// The ACK for the 300-699 response arrived; ACK retransmissions are absorbed
    /// until Timer I.
    Confirmed,
    /// RFC 6026 §7.1: a 2xx was sent; it is retransmitted until `ack_2xx`, and
    /// INVITE retransmissions are absorbed until Timer L.
    Accepted,
    /// Finished; the endpoint can forget the transaction.
    Terminated,
}

/// What an [`InviteServer`] tells the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Timer H fired: the 300-699 response was never ACKed (RFC 3261 §17.2.1).
    Timeout,
    /// Timer L fired and the 2xx was never ACKed: the dialog is confirmed but
    /// the session should end, so the endpoint sends BYE (RFC 3261 §13.3.1.4).
    NoAck,
    /// The endpoint reported a transport error (RFC 3261 §17.2.4).
    TransportError,
    /// The transaction reached [`State::Terminated`]; always the last event.
    Terminated,
}

/// An INVITE server transaction. The endpoint creates it when an INVITE
/// arrives, passes the TU's responses to [`respond`](Self::respond) and the
/// matching retransmissions and ACKs to the other methods.
#[derive(Debug)]
pub struct InviteServer {
    config: Config,
    reliable: bool,
    state: State,
    timers: TimerTable,
    /// The last response sent: a provisional in Proceeding, the final after.
    last: Option<Bytes>,
    /// The current interval of Timer G or of the 2xx retransmission.
    interval: Duration,
    /// Whether `ack_2xx` was called in Accepted.
    acked: bool,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
}

impl InviteServer {
    /// A transaction for an INVITE that just arrived, in Proceeding. It sends
    /// nothing by itself: the endpoint responds 100 Trying (RFC 3261 §17.2.1).
    pub fn new(_now: Instant, config: &Config, reliable: bool) -> Self {
        Self {
            config: *config,
            reliable,
            state: State::Proceeding,
            timers: TimerTable::default(),
            last: None,
            interval: config.t1,
            acked: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sends the TU's response `response` with status `code`, and returns
    /// whether it was sent.
    ///
    /// In Proceeding, a 1xx is sent and kept for INVITE retransmissions; a
    /// 300-699 moves to Completed (Timers G and H); a 2xx moves to Accepted
    /// (Timer L) and is retransmitted until [`ack_2xx`](Self::ack_2xx). In
    /// Accepted a further 2xx is sent and replaces the one retransmitted (RFC
    /// 6026 §8.7). Everything else is ignored.
    pub fn respond(&mut self, now: Instant, code: u16, response: Bytes) -> bool {
        let Some(class) = Class::of(code) else {
            return false;
        };
        match (self.state, class) {
            (State::Proceeding, Class::Provisional) => {}
            (State::Proceeding, Class::Success) => {
                self.state = State::Accepted;
                self.interval = self.config.t1;
                self.timers.set(Timer::Retransmit2xx, now + self.interval);
                self.timers.set(Timer::L, now + self.config.timeout());
            }
            (State::Proceeding, Class::Failure) => {
                self.state = State::Completed;
                self.interval = self.config.t1;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.interval);
                }
                self.timers.set(Timer::H, now + self.config.timeout());
            }
            (State::Accepted, Class::Success) => {}
            _ => return false,
        }
        self.transmits.push_back(response.clone());
        self.last = Some(response);
        true
    }

    /// The INVITE arrived again. In Proceeding the last provisional response
    /// (if any) and in Completed the final response is sent again; in Accepted
    /// and Confirmed the retransmission is absorbed.
    pub fn request_retransmitted(&mut self, _now: Instant) {
        if !matches!(self.state, State::Proceeding | State::Completed) {
            return;
        }
        if let Some(last) = &self.last {
            self.transmits.push_back(last.clone());
        }
    }

    /// The ACK for the 300-699 response arrived. In Completed, moves to
    /// Confirmed and absorbs ACK retransmissions for T4 (Timer I; at once on
    /// reliable transports). Ignored in other states.
    pub fn ack(&mut self, now: Instant) {
        if self.state != State::Completed {
            return;
        }
        self.timers.stop(Timer::G);
        self.timers.stop(Timer::H);
        self.last = None;
        if self.reliable {
            self.terminate();
            return;
        }
        self.state = State::Confirmed;
        self.timers.set(Timer::I, now + self.config.t4);
    }

    /// The ACK for the 2xx arrived (the endpoint matched it through the dialog,
    /// RFC 3261 §13.3.2.2). Stops the 2xx retransmission; the transaction stays
    /// Accepted until Timer L to absorb INVITE retransmissions (RFC 6026 §8.7)
    /// and then ends without [`Event::NoAck`]. Ignored in other states.
    pub fn ack_2xx(&mut self, _now: Instant) {
        if self.state != State::Accepted {
            return;
        }
        self.acked = true;
        self.timers.stop(Timer::Retransmit2xx);
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
        for timer in self.timers.expired(now) {
            if !self.timers.take_expired(timer, now) {
                continue;
            }
            match timer {
                Timer::G => {
                    self.retransmit_final();
                    self.interval = backoff(self.interval, Some(self.config.t2));
                    self.timers.set(Timer::G, now + self.interval);
                }
                Timer::Retransmit2xx => {
                    self.retransmit_final();
                    self.interval = backoff(self.interval, Some(self.config.t2));
                    self.timers.set(Timer::Retransmit2xx, now + self.interval);
                }
                Timer::H => {
                    self.events.push_back(Event::Timeout);
                    self.terminate();
                }
                Timer::L => {
                    if !self.acked {
                        self.events.push_back(Event::NoAck);
                    }
                    self.terminate();
                }
                Timer::I => self.terminate(),
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

    fn retransmit_final(&mut self) {
        if let Some(last) = &self.last {
            self.transmits.push_back(last.clone());
        }
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

    const OK: Bytes = Bytes::from_static(b"200");
    const RINGING: Bytes = Bytes::from_static(b"180");
    const BUSY: Bytes = Bytes::from_static(b"486");

    fn drain(tx: &mut InviteServer) -> Vec<Bytes> {
        std::iter::from_fn(|| tx.poll_transmit()).collect()
    }

    #[test]
    fn retransmitted_invite_per_state() {
        let now = Instant::now();
        let config = Config::default();

        let mut tx = InviteServer::new(now, &config, false);
        tx.request_retransmitted(now);
        assert!(drain(&mut tx).is_empty(), "nothing to resend before a 1xx");
        assert!(tx.respond(now, 180, RINGING));
        tx.request_retransmitted(now);
        assert_eq!(drain(&mut tx), [RINGING, RINGING]);

        assert!(tx.respond(now, 486, BUSY));
        tx.request_retransmitted(now);
        assert_eq!(drain(&mut tx), [BUSY, BUSY]);
        assert_eq!(tx.state(), State::Completed);

        tx.ack(now);
        assert_eq!(tx.state(), State::Confirmed);
        tx.request_retransmitted(now);
        tx.ack(now);
        assert!(drain(&mut tx).is_empty(), "Confirmed absorbs");

        let mut tx = InviteServer::new(now, &config, false);
        assert!(tx.respond(now, 200, OK));
        tx.request_retransmitted(now);
        assert_eq!(drain(&mut tx), [OK], "Accepted absorbs");
    }

    #[test]
    fn responses_out_of_state_are_refused() {
        let now = Instant::now();
        let mut tx = InviteServer::new(now, &Config::default(), false);
        assert!(!tx.respond(now, 99, RINGING));
        assert!(!tx.respond(now, 700, BUSY));
        assert!(tx.respond(now, 200, OK));
        assert!(!tx.respond(now, 180, RINGING));
        assert!(!tx.respond(now, 486, BUSY));
        assert!(
            tx.respond(now, 200, OK),
            "RFC 6026 §8.7: 2xx pass in Accepted"
        );
        assert_eq!(drain(&mut tx), [OK, OK]);

        let mut tx = InviteServer::new(now, &Config::default(), false);
        assert!(tx.respond(now, 404, BUSY));
        assert!(!tx.respond(now, 200, OK));
        assert!(!tx.respond(now, 486, BUSY));
    }

    #[test]
    fn reliable_ack_terminates_at_once() {
        let now = Instant::now();
        let mut tx = InviteServer::new(now, &Config::default(), true);
        tx.respond(now, 486, BUSY);
        assert_eq!(tx.timers.get(Timer::G), None);
        assert!(tx.timers.get(Timer::H).is_some());
        tx.ack(now);
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
        assert_eq!(tx.poll_event(), None);
    }

    #[test]
    fn acked_2xx_stays_accepted_until_timer_l() {
        let now = Instant::now();
        let config = Config::default();
        let mut tx = InviteServer::new(now, &config, true);
        tx.respond(now, 200, OK);
        assert_eq!(
            tx.poll_timeout(),
            Some(now + config.t1),
            "2xx resent on TCP too"
        );
        tx.ack_2xx(now);
        assert_eq!(tx.state(), State::Accepted);
        assert_eq!(tx.poll_timeout(), Some(now + config.timeout()));
        tx.handle_timeout(now + config.timeout());
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn transport_error_ends_once() {
        let now = Instant::now();
        let mut tx = InviteServer::new(now, &Config::default(), false);
        tx.transport_error();
        tx.transport_error();
        assert_eq!(tx.poll_event(), Some(Event::TransportError));
        assert_eq!(tx.poll_event(), Some(Event::Terminated));
        assert_eq!(tx.poll_event(), None);
    }
}
