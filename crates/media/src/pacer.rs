//! Sending frames on an absolute schedule, and measuring how late we were.
//!
//! Frame `n` of a stream is due at `start + n · ptime`, never at "the last send plus
//! ptime": a timer that fires late does not push every later frame back, so the
//! stream does not drift. A tick that comes more than one ptime late sends only
//! the frame due now; the frames it missed are skipped, not sent in a burst (a
//! burst overflows the far end's jitter buffer and is heard as a click anyway).
//! Skipped frames still take their time on the RTP clock: the shell advances the
//! timestamp by `skipped` frames with
//! [`RtpSender::advance_silence`](crate::rtp::RtpSender::advance_silence), so the
//! receiver hears a gap of silence and the next packet carries the marker bit.
//! The [`Player`](crate::player::Player) is not advanced for skipped frames: the
//! prompt resumes where it was, no word is lost.
//!
//! [`LatenessHistogram`] records how late each tick was, for `/metrics`.

use std::time::{Duration, Instant};

/// The absolute schedule of one outgoing stream.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    /// The packet time in nanoseconds, at least 1.
    ptime_ns: u64,
    /// The index of the next frame due.
    next: u64,
}

/// What [`Pacer::handle_timeout`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    /// A frame is due: send one (the player's next, or nothing if it is idle).
    pub send: bool,
    /// Frames that were due before this one and are skipped: advance the RTP
    /// timestamp by this many frames (160 samples each for 20 ms of G.711).
    pub skipped: u32,
    /// How long after the deadline the shell waited for ([`Pacer::poll_timeout`])
    /// this tick came; zero when early or on time.
    pub lateness: Duration,
}

impl Pacer {
    /// A schedule whose frame 0 is due at `start`, one frame every `ptime`
    /// (a zero `ptime` is taken as one nanosecond).
    pub fn new(start: Instant, ptime: Duration) -> Self {
        // A ptime beyond u64 nanoseconds (584 years) is not a packet time; saturate.
        let ptime_ns = u64::try_from(ptime.as_nanos()).unwrap_or(u64::MAX).max(1);
        Self {
            start,
            ptime_ns,
            next: 0,
        }
    }

    /// When the next frame is due: `start + n · ptime`.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline(self.next)
    }

    /// Call at or after [`poll_timeout`](Self::poll_timeout). Early calls send nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Tick {
        let deadline = self.poll_timeout();
        let Some(lateness) = now.checked_duration_since(deadline) else {
            return Tick::default();
        };
        // The frame due now: the last one whose deadline is not after `now`.
        let late_frames =
            u64::try_from(lateness.as_nanos() / u128::from(self.ptime_ns)).unwrap_or(u64::MAX);
        // More than four billion frames (two years of 20 ms) skipped in one tick
        // is a suspended machine; the count saturates, the schedule does not.
        let skipped = u32::try_from(late_frames).unwrap_or(u32::MAX);
        self.next = self.next.saturating_add(late_frames).saturating_add(1);
        Tick {
            send: true,
            skipped,
            lateness,
        }
    }

    /// The index of the next frame due; frames sent plus frames skipped.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The packet time.
    pub fn ptime(&self) -> Duration {
        Duration::from_nanos(self.ptime_ns)
    }

    fn deadline(&self, n: u64) -> Instant {
        let offset = u128::from(n) * u128::from(self.ptime_ns);
        let secs = u64::try_from(offset / 1_000_000_000).unwrap_or(u64::MAX);
        // The remainder is below 10⁹ and fits.
        let nanos = (offset % 1_000_000_000) as u32;
        self.start
            .checked_add(Duration::new(secs, nanos))
            .unwrap_or(self.start)
    }
}

/// Sub-buckets per power of two: each bucket spans at most a quarter of its lower bound.
const SUB_BUCKETS: usize = 4;
/// Octaves above the first linear buckets: the last bucket starts at 2²⁶ µs (67 s).
const OCTAVES: usize = 25;
/// Buckets 0..4 hold 0, 1, 2 and 3 µs; then four per octave up to 2²⁷ µs, and every
/// longer value in the last bucket.
const BUCKETS: usize = SUB_BUCKETS + OCTAVES * SUB_BUCKETS;

/// Lateness of ticks, in log-scale buckets of microseconds (about 25 % wide).
///
/// Recording is a few integer operations and one array increment, no allocation.
/// Histograms of many calls merge by adding counts.
#[derive(Clone, PartialEq, Eq)]
pub struct LatenessHistogram {
    counts: [u64; BUCKETS],
    count: u64,
    sum_us: u64,
    max_us: u64,
}

impl LatenessHistogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            count: 0,
            sum_us: 0,
            max_us: 0,
        }
    }

    /// Count one lateness, at microsecond resolution.
    #[inline]
    pub fn record(&mut self, lateness: Duration) {
        let us = u64::try_from(lateness.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// Add the counts of `other` (another call, another thread).
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The smallest bucket bound at or below which a fraction `q` (0.0 to 1.0) of
    /// the values lie, capped at the largest value seen; zero when empty. Within
    /// 25 % of the true quantile.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(upper_bound(i).min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    /// The largest value recorded (exact, to the microsecond).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the values recorded (for a Prometheus `_sum`).
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us)
    }

    /// The non-empty buckets as (largest value in the bucket, count), ascending: the
    /// shell turns these into cumulative Prometheus `_bucket` lines.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| (Duration::from_micros(upper_bound(i)), n))
    }
}

impl Default for LatenessHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatenessHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatenessHistogram")
            .field("count", &self.count)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

/// The bucket of a value in µs: values below 4 have their own; above, the octave
/// (position of the leading one) and the two bits after it choose.
#[inline]
fn bucket(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // ≥ 2
    let sub = ((us >> (octave - 2)) & 3) as usize;
    (SUB_BUCKETS + (octave - 2) * SUB_BUCKETS + sub).min(BUCKETS - 1)
}

/// The largest value a bucket holds (the last one: the largest of its octave).
fn upper_bound(i: usize) -> u64 {
    if i < SUB_BUCKETS {
        return i as u64;
    }
    let octave = (i - SUB_BUCKETS) / SUB_BUCKETS + 2;
    let sub = ((i - SUB_BUCKETS) % SUB_BUCKETS) as u64;
    ((4 + sub + 1) << (octave - 2)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn on_time_ticks_follow_the_absolute_schedule() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, PTIME);
        for n in 0..100u64 {
            let due = p.poll_timeout();
            assert_eq!(due, t0 + ms(20 * n));
            // Each tick comes 3 ms late; the schedule does not drift with it.
            let tick = p.handle_timeout(due + ms(3));
            assert_eq!(
                tick,
                Tick {
                    send: true,
                    skipped: 0,
                    lateness: ms(3)
                }
            );
        }
        assert_eq!(p.poll_timeout(), t0 + ms(2000));
        assert_eq!(p.next_index(), 100);
    }

    #[test]
    fn early_ticks_send_nothing() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0 + ms(5), PTIME);
        assert_eq!(p.handle_timeout(t0), Tick::default());
        assert!(p.handle_timeout(t0 + ms(5)).send);
        assert_eq!(p.handle_timeout(t0 + ms(24)), Tick::default());
        assert_eq!(p.poll_timeout(), t0 + ms(25));
    }

    #[test]
    fn one_late_tick_sends_one_frame_not_a_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, PTIME);
        p.handle_timeout(t0);
        // Frame 1 is due at 20 ms; the timer fires at 35 ms: one frame, no skip.
        let tick = p.handle_timeout(t0 + ms(35));
        assert_eq!((tick.send, tick.skipped, tick.lateness), (true, 0, ms(15)));
        // The next deadline stays on the grid: 40 ms, not 55 ms.
        assert_eq!(p.poll_timeout(), t0 + ms(40));
        // And calling again right away does not send the frame early.
        assert!(!p.handle_timeout(t0 + ms(35)).send);
        assert!(p.handle_timeout(t0 + ms(40)).send);
    }

    #[test]
    fn a_long_stall_skips_the_missed_frames() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, PTIME);
        p.handle_timeout(t0); // frame 0
        // Frame 1 was due at 20 ms; nothing ran until 130 ms. Frames 1..=5 are
        // missed (5 is due at 100 ms, 6 at 120 ms is the one due now).
        let tick = p.handle_timeout(t0 + ms(130));
        assert_eq!(
            tick,
            Tick {
                send: true,
                skipped: 5,
                lateness: ms(110)
            }
        );
        assert_eq!(p.next_index(), 7);
        assert_eq!(p.poll_timeout(), t0 + ms(140));
        // Sent + skipped frames cover the elapsed time exactly: 7 frames = 140 ms.
        let tick = p.handle_timeout(t0 + ms(140));
        assert_eq!((tick.send, tick.skipped), (true, 0));
    }

    #[test]
    fn exactly_one_ptime_late_skips_one() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, PTIME);
        let tick = p.handle_timeout(t0 + ms(20));
        assert_eq!((tick.send, tick.skipped), (true, 1));
        assert_eq!(p.poll_timeout(), t0 + ms(40));
    }

    #[test]
    fn odd_ptimes_do_not_drift() {
        let t0 = Instant::now();
        let ptime = Duration::from_nanos(333_333);
        let mut p = Pacer::new(t0, ptime);
        for _ in 0..3_000_000 {
            let due = p.poll_timeout();
            p.handle_timeout(due);
        }
        assert_eq!(
            p.poll_timeout(),
            t0 + Duration::from_nanos(333_333 * 3_000_000)
        );
    }

    #[test]
    fn buckets_cover_values_without_gaps() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b == last || b == last + 1, "{us}");
            assert!(us <= upper_bound(b), "{us} above bucket {b}");
            if b > 0 {
                assert!(us > upper_bound(b - 1));
            }
            last = b;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert!(upper_bound(BUCKETS - 1) >= 1 << 26);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = LatenessHistogram::new();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        assert_eq!(h.max(), Duration::ZERO);
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max(), Duration::from_micros(1000));
        assert_eq!(h.sum(), Duration::from_micros(500_500));
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = h.quantile(q).as_micros() as f64;
            assert!(got >= exact && got <= exact * 1.25, "p{q}: {got} µs");
        }
        assert_eq!(h.quantile(1.0), h.max());
        assert_eq!(h.quantile(0.0), Duration::from_micros(1));

        // One 2-second stall shows in the max and the top quantile only.
        h.record(Duration::from_secs(2));
        assert_eq!(h.max(), Duration::from_secs(2));
        assert_eq!(h.quantile(1.0), Duration::from_secs(2));
        assert!(h.quantile(0.99) < Duration::from_millis(2));
    }

    #[test]
    fn histograms_merge() {
        let mut a = LatenessHistogram::new();
        let mut b = LatenessHistogram::new();
        let mut both = LatenessHistogram::new();
        for us in 0..500u64 {
            a.record(Duration::from_micros(us * 7));
            both.record(Duration::from_micros(us * 7));
            b.record(Duration::from_micros(us * 13 + 100_000));
            both.record(Duration::from_micros(us * 13 + 100_000));
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(a.count(), 1000);
        assert_eq!(a.buckets().map(|(_, n)| n).sum::<u64>(), 1000);
        // The lower half is below 3.5 ms, the upper above 100 ms.
        assert!(a.quantile(0.5) <= Duration::from_micros(3500 * 5 / 4));
        assert!(a.quantile(0.51) >= Duration::from_millis(100));
    }

    #[test]
    fn pacer_and_histogram_together() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, PTIME);
        let mut h = LatenessHistogram::new();
        let mut skipped = 0;
        let mut sent = 0;
        for n in 0..500u64 {
            // Every 100th wake-up is 70 ms late; the rest 1 ms.
            let late = if n % 100 == 99 { ms(70) } else { ms(1) };
            let now = p.poll_timeout() + late;
            let tick = p.handle_timeout(now);
            h.record(tick.lateness);
            skipped += tick.skipped;
            sent += u32::from(tick.send);
        }
        assert_eq!((sent, skipped), (500, 5 * 3));
        assert_eq!(u64::from(sent + skipped), p.next_index());
        assert_eq!(h.max(), ms(70));
        // Within one bucket (25 %) of the true 1 ms.
        assert!(h.quantile(0.9) >= ms(1) && h.quantile(0.9) <= ms(1) * 5 / 4);
    }
}
