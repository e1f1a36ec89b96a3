//! The four RFC 3261 §17 transaction machines, sans-IO, with RFC 6026's
//! Accepted states.
//!
//! | machine | RFC | states | timers |
//! | --- | --- | --- | --- |
//! | [`InviteClient`] | 3261 §17.1.1, 6026 §8.4 | Calling, Proceeding, Completed, Accepted | A, B, D, M |
//! | [`NonInviteClient`] | 3261 §17.1.2 | Trying, Proceeding, Completed | E, F, K |
//! | [`InviteServer`] | 3261 §17.2.1, §13.3.1.4, 6026 §8.7 | Proceeding, Completed, Confirmed, Accepted | G, H, I, L, 2xx |
//! | [`NonInviteServer`] | 3261 §17.2.2 | Trying, Proceeding, Completed | J |
//!
//! # Division of labour
//! The machines do not parse SIP. The endpoint parses each message, matches it
//! to its transaction (RFC 3261 §17.1.3, §17.2.3) and calls the machine with
//! what matters: a status code, "the request came again", "the ACK came". The
//! machine decides what to send and when, from the RFC's timers. Messages are
//! opaque [`Bytes`](bytes::Bytes) that the machine stores and hands back for
//! retransmission; the endpoint builds them (including the ACK for a 300-699
//! response, RFC 3261 §17.1.1.3). CANCEL is a separate non-INVITE transaction
//! the endpoint creates (§9).
//!
//! # Driving a machine
//! Every machine has the same outputs, in the shape of the rest of the crate:
//! ```
//! use std::time::Instant;
//!
//! use bytes::Bytes;
//! use hotline_sip::transaction::{non_invite_client, Config, NonInviteClient};
//!
//! let now = Instant::now(); // the shell's clock, never the machine's
//! let mut tx = NonInviteClient::new(now, &Config::default(), false, Bytes::from("OPTIONS ..."));
//! while let Some(datagram) = tx.poll_transmit() { /* send it */ }
//! // ... later, when the response arrives or the deadline passes:
//! assert!(tx.handle_response(now, 200));
//! while let Some(event) = tx.poll_event() {
//!     if event == non_invite_client::Event::Terminated { /* forget the transaction */ }
//! }
//! let wake_at = tx.poll_timeout(); // Timer K on UDP
//! # assert!(wake_at.is_some());
//! ```
//! After each input the shell drains `poll_transmit` and `poll_event`, then
//! sleeps until `poll_timeout` and calls `handle_timeout(now)`. `Terminated` is
//! always the last event; after it the machine only answers `None`.
//!
//! # Design decisions
//! - One machine, one file, one `State` and one `Event` enum each: the four
//!   machines share timer names, not states.
//! - On reliable transports no retransmission timer (A, E, G) is armed, and the
//!   zero-length Timers D, I, J and K (RFC 3261 Table 4) end the transaction at
//!   once instead of through a zero timer.
//! - The 2xx to an INVITE is retransmitted by [`InviteServer`] (RFC 3261
//!   §13.3.1.4 puts this in the UAS core). It lives next to RFC 6026's Timer L,
//!   which bounds it, so the endpoint has one deadline per INVITE; the
//!   endpoint still has to send BYE on [`invite_server::Event::NoAck`].
//! - After the ACK for a 2xx the INVITE server transaction stays Accepted until
//!   Timer L, absorbing INVITE retransmissions (RFC 6026 §8.7); it ends early
//!   only on a transport error.
//! - Timer D is `max(32 s, 64·T1)` on unreliable transports: RFC 3261 Table 4
//!   asks for "> 32 s", and the server retransmits its final response for 64·T1.
//! - A 2xx that reaches an INVITE client transaction in Completed (another fork
//!   answered, §13.2.2.4) is passed to the TU, which must ACK and BYE it.
//! - Calls that do not fit the state (a 1xx after a final response, an ACK in
//!   Proceeding) are ignored; `respond` returns whether it sent the response.

pub mod invite_client;
pub mod invite_server;
pub mod non_invite_client;
pub mod non_invite_server;
pub mod timer;

use std::time::Duration;

pub use invite_client::InviteClient;
pub use invite_server::InviteServer;
pub use non_invite_client::NonInviteClient;
pub use non_invite_server::NonInviteServer;
pub use timer::{Timer, TimerTable};

/// The RFC 3261 §17.1.1.1 timer values. T1, T2 and T4 should be non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate: the first retransmission interval and 1/64 of the
    /// transaction timeout (Timers B, F, H, J, L, M). Default 500 ms.
    pub t1: Duration,
    /// The cap on retransmission intervals of non-INVITE requests and of
    /// INVITE responses (Timers E, G and the 2xx). Default 4 s.
    pub t2: Duration,
    /// The longest a message stays in the network (Timers I and K). Default 5 s.
    pub t4: Duration,
}

impl Config {
    /// 64·T1, the transaction timeout (Timers B, F, H, J, L, M).
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The class of a response status code (RFC 3261 §7.2), as the machines see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// 100-199.
    Provisional,
    /// 200-299.
    Success,
    /// 300-699: a redirection or failure; the final response a client ACKs in
    /// its transaction.
    Failure,
}

impl Class {
    /// The class of `code`, or `None` outside 100-699.
    fn of(code: u16) -> Option<Self> {
        match code {
            100..=199 => Some(Self::Provisional),
            200..=299 => Some(Self::Success),
            300..=699 => Some(Self::Failure),
            _ => None,
        }
    }
}

/// The next retransmission interval: doubled, and capped at `cap` if given.
fn backoff(interval: Duration, cap: Option<Duration>) -> Duration {
    let doubled = interval.saturating_mul(2);
    cap.map_or(doubled, |cap| doubled.min(cap))
}
