//! Admission control, as a pure state machine: a shard reports each tick (how
//! late it woke, how long its work took, how many sockets had a backlog) and,
//! for the process, the CPU share it used; every [`WINDOW`] (1 s) the monitor decides
//! whether new calls may come in. Time is passed in: tests need no clock.
//!
//! A shard that falls behind first shows it in these signals, long before a call
//! loses audio: ticks that wake late (the core is busy with something else),
//! work that fills the tick (the shard itself is the bottleneck), sockets with
//! packets piling up (we read less often than they arrive), or the whole
//! process near its core budget. Any one over its limit for a window refuses
//! new calls (503 with Retry-After); calls already answered keep their media.
//! New calls come in again once every signal has stayed below 80 % of its limit
//! for [`CALM`] (hysteresis, so the gate does not flap at the edge).

use std::time::{Duration, Instant};

/// How often the monitor decides, over what it saw since. A second: long enough that a
/// stall of a few ticks (a burst of call set-ups, the kernel's writeback) is not taken
/// for overload (a socket buffers seconds of RTP; nothing is lost), short enough that
/// a level of new calls the core cannot carry is refused within a second.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// How long every signal must stay calm before new calls come in again.
pub(crate) const CALM: Duration = Duration::from_secs(2);
/// The share of the limits a signal must fall under to count as calm.
const CALM_SHARE: f64 = 0.8;
/// A tick later than this counts as late.
pub(crate) const LATE_TICK: Duration = Duration::from_millis(8);
/// The backlog share is over at least this many calls: one caller on a bursty uplink
/// is not a shard falling behind.
const MIN_POPULATION: u64 = 100;

/// The limits (`[media]` in hotline.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Share of its cores the process may use (0..=1).
    pub(crate) max_cpu_share: f64,
    /// Share of a tick's 20 ms a shard's work may fill.
    pub(crate) max_busy_share: f64,
    /// Share of a window's ticks that may be late (over [`LATE_TICK`]).
    pub(crate) max_late_share: f64,
    /// Share of a shard's calls whose socket may hold a backlog in one tick.
    pub(crate) max_backlog_share: f64,
}

/// Why new calls are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Cpu,
    Busy,
    Late,
    Backlog,
    /// The recording writer is behind: samples are held back in the shard.
    Writer,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Cpu => "cpu",
            Reason::Busy => "busy",
            Reason::Late => "late ticks",
            Reason::Backlog => "receive backlog",
            Reason::Writer => "recording writer behind",
        }
    }
}

/// A change of the admission decision, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Transition {
    /// New calls are refused from now on.
    Refusing { reason: Reason, value: f64 },
    /// New calls come in again.
    Admitting,
}

/// One window's figures (kept for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Window {
    pub(crate) busy_share: f64,
    pub(crate) late_share: f64,
    pub(crate) backlog_share: f64,
    pub(crate) cpu_share: f64,
    /// Recording writes held back in the shard at the window's end.
    pub(crate) writer_backlog: u64,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Monitor {
    limits: Limits,
    start: Instant,
    ticks: u32,
    late: u32,
    busy: Duration,
    backlog: u64,
    calls: u64,
    cpu_share: f64,
    writer_backlog: u64,
    refusing: Option<Reason>,
    calm_since: Option<Instant>,
    last: Window,
}

impl Monitor {
    pub(crate) fn new(now: Instant, limits: Limits) -> Self {
        Self {
            limits,
            start: now,
            ticks: 0,
            late: 0,
            busy: Duration::ZERO,
            backlog: 0,
            calls: 0,
            cpu_share: 0.0,
            writer_backlog: 0,
            refusing: None,
            calm_since: None,
            last: Window::default(),
        }
    }

    /// One tick: how late it started, how long its work took, how many sockets
    /// had more than two packets waiting, out of how many calls.
    pub(crate) fn tick(&mut self, lateness: Duration, busy: Duration, backlog: u32, calls: u32) {
        self.ticks += 1;
        if lateness > LATE_TICK {
            self.late += 1;
        }
        self.busy += busy;
        self.backlog += u64::from(backlog);
        self.calls += u64::from(calls);
    }

    /// The process's CPU share over the last window (0..=1 of its cores).
    pub(crate) fn cpu(&mut self, share: f64) {
        self.cpu_share = share;
    }

    /// Recording writes the shard holds back now (the writer's queue was full).
    pub(crate) fn writer_backlog(&mut self, held: usize) {
        self.writer_backlog = held as u64;
    }

    /// Whether new calls are refused, and why.
    #[cfg(test)]
    pub(crate) fn refusing(&self) -> Option<Reason> {
        self.refusing
    }

    /// The last window's figures.
    pub(crate) fn last(&self) -> Window {
        self.last
    }

    /// Decides once the window is over; returns a change of decision.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Transition> {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < WINDOW {
            return None;
        }
        let w = Window {
            busy_share: self.busy.as_secs_f64() / elapsed.as_secs_f64(),
            late_share: if self.ticks == 0 {
                0.0
            } else {
                f64::from(self.late) / f64::from(self.ticks)
            },
            backlog_share: self.backlog as f64
                / self
                    .calls
                    .max(MIN_POPULATION * u64::from(self.ticks.max(1))) as f64,
            cpu_share: self.cpu_share,
            writer_backlog: self.writer_backlog,
        };
        self.last = w;
        // A shard that served no call has nobody to protect: its late ticks and the
        // process's CPU are the machine's other work (a test run, a backup), and refusing
        // the first caller for them would protect nothing. The writer's backlog still counts.
        let idle = self.calls == 0;
        self.start = now;
        self.ticks = 0;
        self.late = 0;
        self.busy = Duration::ZERO;
        self.backlog = 0;
        self.calls = 0;
        let l = self.limits;
        let signals = [
            (Reason::Cpu, w.cpu_share, l.max_cpu_share),
            (Reason::Busy, w.busy_share, l.max_busy_share),
            (Reason::Late, w.late_share, l.max_late_share),
            (Reason::Backlog, w.backlog_share, l.max_backlog_share),
            // Any write held back: the writer is a queue of 8192 behind. New calls
            // would only add to what waits in memory (nothing is dropped).
            (Reason::Writer, w.writer_backlog as f64, 0.0),
        ];
        let counts = |r: &Reason| !idle || matches!(r, Reason::Backlog | Reason::Writer);
        let over = signals.iter().find(|(r, v, limit)| counts(r) && v > limit);
        let calm = signals
            .iter()
            .all(|(r, v, limit)| !counts(r) || *v <= limit * CALM_SHARE);
        match (self.refusing, over) {
            (None, Some(&(reason, value, _))) => {
                self.refusing = Some(reason);
                self.calm_since = None;
                Some(Transition::Refusing { reason, value })
            }
            (None, None) => None,
            (Some(_), _) if !calm => {
                self.calm_since = None;
                None
            }
            (Some(_), _) => {
                // Calm since the start of this window.
                let since = *self.calm_since.get_or_insert(now - elapsed);
                if now.saturating_duration_since(since) >= CALM {
                    self.refusing = None;
                    self.calm_since = None;
                    Some(Transition::Admitting)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_cpu_share: 0.85,
        max_busy_share: 0.7,
        max_late_share: 0.1,
        max_backlog_share: 0.05,
    };
    const TICK: Duration = Duration::from_millis(20);

    /// Runs a window of ticks with the given figures; returns the decision change.
    fn window(
        m: &mut Monitor,
        now: &mut Instant,
        late: u32,
        busy: Duration,
        backlog: u32,
    ) -> Option<Transition> {
        let ticks = WINDOW.as_millis().div_ceil(TICK.as_millis()) as u32;
        let mut out = None;
        for i in 0..ticks {
            let lateness = if i < late {
                LATE_TICK * 2
            } else {
                Duration::from_millis(1)
            };
            m.tick(lateness, busy, backlog, 100);
            *now += TICK;
            out = out.or(m.poll(*now));
        }
        out
    }

    /// Late ticks and CPU with no call on the shard: nobody to protect, nobody refused.
    #[test]
    fn an_idle_shard_never_refuses_for_the_machines_other_work() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        let ticks = WINDOW.as_millis().div_ceil(TICK.as_millis()) as u32;
        for _ in 0..3 {
            m.cpu(0.99);
            for _ in 0..ticks {
                m.tick(LATE_TICK * 2, Duration::from_millis(19), 0, 0);
                now += TICK;
                assert_eq!(m.poll(now), None);
            }
        }
        assert_eq!(m.refusing(), None);
        // The same with calls on it refuses.
        m.cpu(0.99);
        assert!(window(&mut m, &mut now, ticks, Duration::from_millis(19), 0).is_some());
    }

    #[test]
    fn light_load_admits() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        for _ in 0..10 {
            m.cpu(0.3);
            assert_eq!(
                window(&mut m, &mut now, 0, Duration::from_millis(4), 0),
                None
            );
        }
        assert_eq!(m.refusing(), None);
        assert!((m.last().busy_share - 0.2).abs() < 0.01, "{:?}", m.last());
    }

    #[test]
    fn each_signal_alone_refuses() {
        for (cpu, late, busy_ms, backlog, reason) in [
            (0.9, 0, 2, 0, Reason::Cpu),
            (0.3, 0, 16, 0, Reason::Busy),
            (0.3, 10, 2, 0, Reason::Late),
            (0.3, 0, 2, 10, Reason::Backlog),
        ] {
            let mut now = Instant::now();
            let mut m = Monitor::new(now, LIMITS);
            m.cpu(cpu);
            let t = window(
                &mut m,
                &mut now,
                late,
                Duration::from_millis(busy_ms),
                backlog,
            );
            assert!(
                matches!(t, Some(Transition::Refusing { reason: r, .. }) if r == reason),
                "{reason:?}: {t:?}"
            );
            assert_eq!(m.refusing(), Some(reason));
        }
    }

    #[test]
    fn a_held_back_recording_write_refuses_until_the_writer_catches_up() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        m.writer_backlog(3);
        let t = window(&mut m, &mut now, 0, Duration::ZERO, 0);
        assert!(
            matches!(
                t,
                Some(Transition::Refusing {
                    reason: Reason::Writer,
                    ..
                })
            ),
            "{t:?}"
        );
        m.writer_backlog(0);
        let mut changed = None;
        for _ in 0..3 {
            changed = changed.or(window(&mut m, &mut now, 0, Duration::ZERO, 0));
        }
        assert_eq!(changed, Some(Transition::Admitting));
    }

    #[test]
    fn one_bursty_caller_on_a_quiet_shard_is_not_a_backlog() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        // 2 calls, one of them with a backlog at every tick.
        let ticks = WINDOW.as_millis().div_ceil(TICK.as_millis()) as u32;
        let mut out = None;
        for _ in 0..ticks {
            m.tick(Duration::ZERO, Duration::ZERO, 1, 2);
            now += TICK;
            out = out.or(m.poll(now));
        }
        assert_eq!(out, None);
        assert_eq!(m.refusing(), None);
    }

    #[test]
    fn admits_again_only_after_two_calm_seconds() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        m.cpu(0.95);
        assert!(window(&mut m, &mut now, 0, Duration::ZERO, 0).is_some());
        // Just under the limit is not calm: still refusing.
        m.cpu(0.80);
        for _ in 0..20 {
            assert_eq!(window(&mut m, &mut now, 0, Duration::ZERO, 0), None);
        }
        assert_eq!(m.refusing(), Some(Reason::Cpu));
        // Calm (under 80 % of the limit): admitting after CALM, not before.
        m.cpu(0.5);
        let start = now;
        let mut changed = None;
        while changed.is_none() {
            changed = window(&mut m, &mut now, 0, Duration::ZERO, 0);
        }
        assert_eq!(changed, Some(Transition::Admitting));
        assert!(now.duration_since(start) >= CALM);
        assert!(now.duration_since(start) < CALM + 2 * WINDOW);
    }

    #[test]
    fn a_spike_while_calming_starts_the_calm_time_again() {
        let mut now = Instant::now();
        let mut m = Monitor::new(now, LIMITS);
        m.cpu(0.95);
        window(&mut m, &mut now, 0, Duration::ZERO, 0);
        m.cpu(0.2);
        window(&mut m, &mut now, 0, Duration::ZERO, 0);
        m.cpu(0.9);
        window(&mut m, &mut now, 0, Duration::ZERO, 0);
        m.cpu(0.2);
        // One calm second after the spike is not the two CALM asks for.
        assert_eq!(window(&mut m, &mut now, 0, Duration::ZERO, 0), None);
        assert_eq!(m.refusing(), Some(Reason::Cpu));
        let mut changed = None;
        for _ in 0..3 {
            changed = changed.or(window(&mut m, &mut now, 0, Duration::ZERO, 0));
        }
        assert_eq!(changed, Some(Transition::Admitting));
    }
}
