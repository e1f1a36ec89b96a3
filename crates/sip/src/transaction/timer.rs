//! The transaction timers of RFC 3261 §17 (Table 4) and RFC 6026 §8, and a
//! table of their deadlines.
//!
//! A machine arms a timer by storing its deadline in a [`TimerTable`]; the
//! shell learns the earliest one from `poll_timeout()` and calls
//! `handle_timeout(now)` when it passes. Nothing here reads a clock.

use std::time::Instant;

/// A transaction timer, named as in RFC 3261 Table 4 and RFC 6026 §8.
///
/// Timer C (RFC 3261 §16.6 step 11) is a proxy timer and has no place here:
/// this crate is a user agent, not a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// RFC 3261 §17.1.1.2: INVITE client, Calling state, unreliable transport only:
    /// retransmit the INVITE; starts at T1 and doubles on every firing, without cap.
    A,
    /// RFC 3261 §17.1.1.2: INVITE client, Calling state: give up after 64·T1
    /// without any response (the transaction times out).
    B,
    /// RFC 3261 §17.1.1.2: INVITE client, Completed state: absorb retransmissions
    /// of the 300-699 final response (re-sending the ACK) for at least 32 s on
    /// unreliable transports, zero on reliable ones.
    D,
    /// RFC 3261 §17.1.2.2: non-INVITE client, Trying and Proceeding states,
    /// unreliable transport only: retransmit the request; starts at T1 and doubles
    /// up to T2 while Trying, and is reset to T2 in Proceeding.
    E,
    /// RFC 3261 §17.1.2.2: non-INVITE client, Trying and Proceeding states: give
    /// up after 64·T1 without a final response.
    F,
    /// RFC 3261 §17.2.1: INVITE server, Completed state, unreliable transport only:
    /// retransmit the 300-699 final response until the ACK; starts at T1 and
    /// doubles up to T2.
    G,
    /// RFC 3261 §17.2.1: INVITE server, Completed state: give up waiting for the
    /// ACK of the 300-699 final response after 64·T1.
    H,
    /// RFC 3261 §17.2.1: INVITE server, Confirmed state: absorb ACK
    /// retransmissions for T4 on unreliable transports, zero on reliable ones.
    I,
    /// RFC 3261 §17.2.2: non-INVITE server, Completed state: absorb request
    /// retransmissions (answering them with the final response) for 64·T1 on
    /// unreliable transports, zero on reliable ones.
    J,
    /// RFC 3261 §17.1.2.2: non-INVITE client, Completed state: absorb final
    /// response retransmissions for T4 on unreliable transports, zero on reliable ones.
    K,
    /// RFC 6026 §8.7: INVITE server, Accepted state: absorb INVITE retransmissions
    /// (and, here, wait for the ACK of the 2xx) for 64·T1.
    L,
    /// RFC 6026 §8.4: INVITE client, Accepted state: pass 2xx retransmissions and
    /// 2xx responses from other forks to the TU for 64·T1.
    M,
    /// RFC 3261 §13.3.1.4 (unnamed there): retransmit the 2xx to an INVITE until its
    /// ACK arrives; starts at T1 and doubles up to T2, on every transport, because
    /// the 2xx is retransmitted end to end by the UAS core. Kept in the INVITE
    /// server transaction next to Timer L, which bounds it.
    Retransmit2xx,
}

impl Timer {
    /// Every timer, in declaration order; `Timer::ALL[t as usize] == t`.
    pub const ALL: [Self; 13] = [
        Self::A,
        Self::B,
        Self::D,
        Self::E,
        Self::F,
        Self::G,
        Self::H,
        Self::I,
        Self::J,
        Self::K,
        Self::L,
        Self::M,
        Self::Retransmit2xx,
    ];

    /// Whether this timer retransmits a message rather than ends a state.
    pub fn is_retransmission(self) -> bool {
        matches!(self, Self::A | Self::E | Self::G | Self::Retransmit2xx)
    }
}

/// The deadline of each [`Timer`], `None` when it is not armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerTable {
    data: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` to fire at `at`, replacing any earlier deadline.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.data = [None; Timer::ALL.len()];
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// The earliest deadline of all armed timers.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed and due at `now`.
    pub fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// Disarms `timer` if it is due at `now`, and says whether it was.
    pub fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        let expired = self.is_expired(timer, now);
        if expired {
            self.stop(timer);
        }
        expired
    }

    /// The timers due at `now`, earliest first; on a tie, timers that end a
    /// state come before retransmission timers, so a transaction that times out
    /// does not send one last useless copy.
    ///
    /// The iterator works on a snapshot and leaves the table unchanged: a
    /// machine calls [`take_expired`](Self::take_expired) for each, which skips
    /// the timers that an earlier one stopped, and a timer re-armed while
    /// handling this batch waits for the next call.
    pub fn expired(&self, now: Instant) -> impl Iterator<Item = Timer> + use<> {
        let mut due = self.data.map(|at| at.filter(|&at| at <= now));
        std::iter::from_fn(move || {
            let (index, _) = due
                .iter()
                .enumerate()
                .filter_map(|(index, at)| Some((index, (*at)?)))
                .min_by_key(|&(index, at)| (at, Timer::ALL[index].is_retransmission()))?;
            due[index] = None;
            Some(Timer::ALL[index])
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn all_is_indexed_by_discriminant() {
        for (index, timer) in Timer::ALL.iter().enumerate() {
            assert_eq!(*timer as usize, index);
        }
    }

    #[test]
    fn next_timeout_is_the_earliest() {
        let epoch = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::B, epoch + Duration::from_secs(32));
        table.set(Timer::A, epoch + Duration::from_millis(500));
        assert_eq!(
            table.next_timeout(),
            Some(epoch + Duration::from_millis(500))
        );
        table.stop(Timer::A);
        assert_eq!(table.next_timeout(), Some(epoch + Duration::from_secs(32)));
        table.stop_all();
        assert_eq!(table.next_timeout(), None);
    }

    #[test]
    fn expired_is_ordered_and_a_snapshot() {
        let epoch = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::G, epoch + Duration::from_secs(2));
        table.set(Timer::H, epoch + Duration::from_secs(2));
        table.set(Timer::I, epoch + Duration::from_secs(1));
        table.set(Timer::L, epoch + Duration::from_secs(3));
        let due: Vec<_> = table.expired(epoch + Duration::from_secs(2)).collect();
        assert_eq!(due, [Timer::I, Timer::H, Timer::G]);
        assert!(table.take_expired(Timer::I, epoch + Duration::from_secs(2)));
        assert!(!table.take_expired(Timer::I, epoch + Duration::from_secs(2)));
        assert!(!table.take_expired(Timer::L, epoch + Duration::from_secs(2)));
        assert_eq!(table.get(Timer::L), Some(epoch + Duration::from_secs(3)));
    }
}
