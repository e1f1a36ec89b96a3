//! In-band DTMF detection (ITU-T Q.23 frequencies, Q.24 timing) on 8 kHz PCM, for
//! callers whose offer has no telephone-event.
//!
//! # How
//! Samples are cut into blocks of [`BLOCK`] samples (13.25 ms). Over each block,
//! Goertzel filters measure the level of each of the eight DTMF frequencies (three
//! filters per frequency, 1 % apart, so that a tone off by up to ±1.5 % still shows
//! nearly all its power) and of the second harmonic of the four high-group ones. A
//! block *hits* a key when
//! - both the strongest low-group and high-group tones reach [`MIN_LEVEL_DBFS`];
//! - the twist (high group minus low group) is within ±[`MAX_TWIST_DB`];
//! - each of the two stands [`RELATIVE_PEAK_DB`] above the others of its group;
//! - the high tone's second harmonic is [`HARMONIC_DB`] below it (voiced speech
//!   is harmonic, a DTMF generator is not);
//! - a least-squares fit of the two sinusoids explains [`TONE_FRACTION`] of the
//!   block's energy. The fit, unlike the usual "tone power over total power"
//!   ratio, is exact for any pair of frequencies and phases over a short block
//!   (the two tones are not orthogonal over 106 samples, which makes that ratio
//!   swing by ±10 % for `*`), so the threshold can be high enough to reject vowels
//!   whose harmonics happen to fall on a DTMF pair.
//!
//! A key is reported once two consecutive blocks hit it (≈ 27 ms of tone; any tone
//! of 40 ms or more contains two whole blocks wherever the block boundaries fall)
//! and released after three blocks that do not (a 40 ms pause always gives three; a
//! dropout of 10 ms or less gives at most two, so it does not split a key, Q.24).
//! A tone of 20 ms or less covers at most 76 % of each of two blocks, below
//! [`TONE_FRACTION`], so it is never reported.
//!
//! # Not implemented
//! Rejection of tones 3.5 % off frequency (Q.24 non-operate): over 13 ms a tone
//! 3.5 % off still shows most of its power. Speech and music are rejected by the
//! checks above instead.
//!
//! [`tone_power`] measures one frequency over a whole slice (for checking
//! recordings, and in tests).
//!
//! # Cost
//! Per sample, 28 multiply-adds on a fixed array, which the compiler vectorises,
//! plus one for the energy; per block, a few dozen operations, and the fit only
//! when every other check passed. No allocation.

use crate::Digit;

/// The sample rate the detector expects.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples per analysis block (13.25 ms).
pub const BLOCK: usize = 106;
/// The quietest tone (per frequency, peak amplitude relative to full scale) that counts.
pub const MIN_LEVEL_DBFS: f32 = -36.0;
/// The largest level difference between the two tones, either way.
pub const MAX_TWIST_DB: f32 = 8.0;
/// How far each tone must stand above the other frequencies of its group.
pub const RELATIVE_PEAK_DB: f32 = 8.0;
/// How far the high tone's second harmonic must be below the tone.
pub const HARMONIC_DB: f32 = 20.0;
/// The share of the block's energy the two fitted tones must explain.
pub const TONE_FRACTION: f32 = 0.92;

/// Consecutive hitting blocks before a key is reported.
const HITS_TO_BEGIN: u8 = 2;
/// Consecutive non-hitting blocks before a key is released.
const MISSES_TO_END: u8 = 3;
/// Digits held for [`DtmfDetector::poll_digit`]: more than one chunk of 2.5 s can
/// hold at the fastest rate Q.24 allows (40 ms on, 40 ms off).
const QUEUE: usize = 32;

const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[Digit; 4]; 4] = [
    [Digit::One, Digit::Two, Digit::Three, Digit::A],
    [Digit::Four, Digit::Five, Digit::Six, Digit::B],
    [Digit::Seven, Digit::Eight, Digit::Nine, Digit::C],
    [Digit::Star, Digit::Zero, Digit::Pound, Digit::D],
];

/// The relative spacing of the three filters that measure one tone.
const SPREAD: f32 = 0.01;
/// Filters: 0..8 the eight tones (low group, then high group), 8..16 the same
/// [`SPREAD`] lower, 16..24 [`SPREAD`] higher, 24..28 second harmonics of the
/// high group.
const FILTERS: usize = 28;

/// Detects DTMF keys in a stream of 8 kHz samples fed in chunks of any size.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    /// Angular frequency of each filter, radians per sample.
    omega: [f32; FILTERS],
    /// `2 cos(omega)`.
    coef: [f32; FILTERS],
    /// Goertzel state: s[n-1] and s[n-2].
    s1: [f32; FILTERS],
    s2: [f32; FILTERS],
    /// Sum of squares of the block so far.
    energy: f32,
    filled: usize,
    /// The key the last blocks hit, and how many in a row.
    candidate: Option<Digit>,
    hits: u8,
    /// The key being held down, and how many blocks in a row have not hit it.
    active: Option<Digit>,
    misses: u8,
    queue: [Digit; QUEUE],
    queue_start: usize,
    queue_len: usize,
}

impl DtmfDetector {
    /// A detector that has heard nothing.
    pub fn new() -> Self {
        let tones = || LOW.iter().chain(&HIGH).copied();
        let freqs = tones()
            .chain(tones().map(|f| f * (1.0 - SPREAD)))
            .chain(tones().map(|f| f * (1.0 + SPREAD)))
            .chain(HIGH.iter().map(|f| 2.0 * f));
        let mut omega = [0.0; FILTERS];
        for (w, f) in omega.iter_mut().zip(freqs) {
            *w = std::f32::consts::TAU * f / SAMPLE_RATE as f32;
        }
        Self {
            omega,
            coef: omega.map(|w| 2.0 * w.cos()),
            s1: [0.0; FILTERS],
            s2: [0.0; FILTERS],
            energy: 0.0,
            filled: 0,
            candidate: None,
            hits: 0,
            active: None,
            misses: 0,
            queue: [Digit::Zero; QUEUE],
            queue_start: 0,
            queue_len: 0,
        }
    }

    /// Feed samples; returns the oldest key detected and not yet returned, if any.
    ///
    /// A chunk of 20 ms can complete at most one key. When feeding longer chunks,
    /// call [`poll_digit`](Self::poll_digit) until `None` to collect the rest.
    pub fn push(&mut self, samples: &[i16]) -> Option<Digit> {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = rest.len().min(BLOCK - self.filled);
            let (now, later) = rest.split_at(take);
            self.filter(now);
            rest = later;
            if self.filled == BLOCK {
                self.finish_block();
            }
        }
        self.poll_digit()
    }

    /// The oldest key detected and not yet returned.
    pub fn poll_digit(&mut self) -> Option<Digit> {
        if self.queue_len == 0 {
            return None;
        }
        let d = self.queue[self.queue_start];
        self.queue_start = (self.queue_start + 1) % QUEUE;
        self.queue_len -= 1;
        Some(d)
    }

    /// The Goertzel recurrence over part of a block.
    fn filter(&mut self, samples: &[i16]) {
        let (coef, mut s1, mut s2) = (self.coef, self.s1, self.s2);
        let mut energy = self.energy;
        for &s in samples {
            let x = f32::from(s) * (1.0 / 32768.0);
            energy += x * x;
            for i in 0..FILTERS {
                let s0 = x + coef[i] * s1[i] - s2[i];
                s2[i] = s1[i];
                s1[i] = s0;
            }
        }
        (self.s1, self.s2, self.energy) = (s1, s2, energy);
        self.filled += samples.len();
    }

    fn finish_block(&mut self) {
        let hit = self.classify();
        (self.s1, self.s2, self.energy, self.filled) = ([0.0; FILTERS], [0.0; FILTERS], 0.0, 0);

        if hit == self.candidate {
            self.hits = self.hits.saturating_add(1);
        } else {
            (self.candidate, self.hits) = (hit, 1);
        }
        if hit.is_some() && hit == self.active {
            self.misses = 0;
            return;
        }
        if let Some(key) = hit
            && self.hits >= HITS_TO_BEGIN
        {
            // A new key, after a pause or straight after another key.
            (self.active, self.misses) = (Some(key), 0);
            self.enqueue(key);
            return;
        }
        if self.active.is_some() {
            self.misses += 1;
            if self.misses >= MISSES_TO_END {
                (self.active, self.misses) = (None, 0);
            }
        }
    }

    fn enqueue(&mut self, d: Digit) {
        if self.queue_len == QUEUE {
            // Nobody polled for seconds: drop the oldest.
            self.queue_start = (self.queue_start + 1) % QUEUE;
            self.queue_len -= 1;
        }
        self.queue[(self.queue_start + self.queue_len) % QUEUE] = d;
        self.queue_len += 1;
    }

    /// Squared amplitude of a sinusoid at filter `i`'s frequency: 4 |X|² / N².
    fn level(&self, i: usize) -> f32 {
        let (s1, s2) = (self.s1[i], self.s2[i]);
        (s1 * s1 + s2 * s2 - self.coef[i] * s1 * s2) * (4.0 / (BLOCK * BLOCK) as f32)
    }

    /// The key the finished block hits, if any.
    fn classify(&self) -> Option<Digit> {
        // Each tone's level, from the best of its three filters, and which that was.
        let mut tone = [0.0f32; 8];
        let mut filter = [0usize; 8];
        for t in 0..8 {
            for f in [t, 8 + t, 16 + t] {
                let l = self.level(f);
                if l > tone[t] {
                    (tone[t], filter[t]) = (l, f);
                }
            }
        }
        let (row, low) = strongest(&tone[0..4]);
        let (col, high) = strongest(&tone[4..8]);
        let min = db_to_power(MIN_LEVEL_DBFS);
        if low < min || high < min {
            return None;
        }
        let twist = db_to_power(MAX_TWIST_DB);
        if high > low * twist || low > high * twist {
            return None;
        }
        let peak = db_to_power(RELATIVE_PEAK_DB);
        let stands_out = |group: &[f32], best: usize, value: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &l)| i == best || l * peak <= value)
        };
        if !stands_out(&tone[0..4], row, low) || !stands_out(&tone[4..8], col, high) {
            return None;
        }
        if self.level(24 + col) * db_to_power(HARMONIC_DB) > high {
            return None;
        }
        if self.two_tone_fit(filter[row], filter[4 + col]) < TONE_FRACTION * self.energy {
            return None;
        }
        Some(KEYS[row][col])
    }

    /// The energy of the least-squares fit of two sinusoids, at filters `a` and `b`'s
    /// frequencies, to the block: `pᵀ G⁻¹ p`, where `p` holds the block's projections on
    /// `cos ωn` and `sin ωn` (read from the Goertzel state) and `G` is the Gram matrix of
    /// those four functions over the block.
    fn two_tone_fit(&self, a: usize, b: usize) -> f32 {
        let n = BLOCK as f64;
        let project = |i: usize| {
            let w = f64::from(self.omega[i]);
            let (s1, s2) = (f64::from(self.s1[i]), f64::from(self.s2[i]));
            // Σ x[k] e^{-jωk} = e^{-jω(N-1)} (s[N-1] - e^{-jω} s[N-2]).
            let (yr, yi) = (s1 - w.cos() * s2, w.sin() * s2);
            let (c, s) = ((w * (n - 1.0)).cos(), (w * (n - 1.0)).sin());
            let (xr, xi) = (c * yr + s * yi, c * yi - s * yr);
            (xr, -xi) // Σ x cos ωk, Σ x sin ωk
        };
        let ((c1, s1), (c2, s2)) = (project(a), project(b));
        let p = [c1, s1, c2, s2];
        let g = gram(f64::from(self.omega[a]), f64::from(self.omega[b]));
        let Some(x) = solve(g, p) else {
            return 0.0;
        };
        p.iter().zip(&x).map(|(p, x)| p * x).sum::<f64>() as f32
    }
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

/// `(Σ cos αn, Σ sin αn)` for n in 0..BLOCK (the Dirichlet kernel).
fn dirichlet(alpha: f64) -> (f64, f64) {
    let n = BLOCK as f64;
    let half = (alpha / 2.0).sin();
    if half.abs() < 1e-12 {
        return (n, 0.0);
    }
    let k = (n * alpha / 2.0).sin() / half;
    let mid = (n - 1.0) * alpha / 2.0;
    (k * mid.cos(), k * mid.sin())
}

/// Gram matrix of `cos ω₁n, sin ω₁n, cos ω₂n, sin ω₂n` over one block.
fn gram(w1: f64, w2: f64) -> [[f64; 4]; 4] {
    let n = BLOCK as f64;
    let (c2a, s2a) = dirichlet(2.0 * w1);
    let (c2b, s2b) = dirichlet(2.0 * w2);
    let (cd, sd) = dirichlet(w1 - w2);
    let (cs, ss) = dirichlet(w1 + w2);
    let (g00, g11, g01) = ((n + c2a) / 2.0, (n - c2a) / 2.0, s2a / 2.0);
    let (g22, g33, g23) = ((n + c2b) / 2.0, (n - c2b) / 2.0, s2b / 2.0);
    let (g02, g13) = ((cd + cs) / 2.0, (cd - cs) / 2.0);
    let (g03, g12) = ((ss - sd) / 2.0, (ss + sd) / 2.0);
    [
        [g00, g01, g02, g03],
        [g01, g11, g12, g13],
        [g02, g12, g22, g23],
        [g03, g13, g23, g33],
    ]
}

/// Solve `g x = p` for a symmetric positive definite `g` (Gaussian elimination).
fn solve(mut g: [[f64; 4]; 4], mut p: [f64; 4]) -> Option<[f64; 4]> {
    for i in 0..4 {
        let pivot = g[i][i];
        if pivot.abs() < 1e-9 {
            return None;
        }
        let (done, rest) = g.split_at_mut(i + 1);
        let pivot_row = &done[i];
        for (k, row) in rest.iter_mut().enumerate() {
            let f = row[i] / pivot;
            for (value, above) in row[i..].iter_mut().zip(&pivot_row[i..]) {
                *value -= f * above;
            }
            p[i + 1 + k] -= f * p[i];
        }
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        let tail: f64 = (i + 1..4).map(|c| g[i][c] * x[c]).sum();
        x[i] = (p[i] - tail) / g[i][i];
    }
    Some(x)
}

/// The squared amplitude, relative to full scale, of the sinusoid at `freq_hz`
/// in `samples` (8 kHz), measured with one Goertzel filter over the whole slice:
/// `4 |X(f)|² / N²`. A full-scale sine at `freq_hz` gives about 1.0 (0 dB), a
/// sine of amplitude 0.1 about 0.01 (−20 dB); other frequencies leak in by the
/// filter's sidelobes, which fall as the slice gets longer. Zero for no samples.
///
/// For checking recordings and tests (a bridge's channels, a tone's presence);
/// the DTMF detector has its own filters.
pub fn tone_power(samples: &[i16], freq_hz: f32) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = f64::from(std::f32::consts::TAU * freq_hz / SAMPLE_RATE as f32);
    let coef = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coef * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len() as f64;
    ((s1 * s1 + s2 * s2 - coef * s1 * s2) * 4.0 / (n * n)) as f32
}

fn strongest(levels: &[f32]) -> (usize, f32) {
    levels.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, l)| if l > best.1 { (i, l) } else { best },
    )
}

/// A power ratio from decibels (levels here are squared amplitudes).
fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_power_measures_one_frequency() {
        let sine = |f: f32, a: f32| -> Vec<i16> {
            (0..8000)
                .map(|n| {
                    (a * 32767.0 * (std::f32::consts::TAU * f * n as f32 / 8000.0).sin()) as i16
                })
                .collect()
        };
        let full = sine(1000.0, 1.0);
        assert!((tone_power(&full, 1000.0) - 1.0).abs() < 0.01);
        assert!(tone_power(&full, 400.0) < 1e-6);
        let quiet = sine(400.0, 0.1);
        assert!((tone_power(&quiet, 400.0) - 0.01).abs() < 0.001);
        assert!(tone_power(&quiet, 1000.0) < 1e-8);
        assert_eq!(tone_power(&[], 1000.0), 0.0);
    }

    /// Row and column frequency of a key.
    fn freqs(d: Digit) -> (f32, f32) {
        for (r, row) in KEYS.iter().enumerate() {
            if let Some(c) = row.iter().position(|k| *k == d) {
                return (LOW[r], HIGH[c]);
            }
        }
        unreachable!("every key is in KEYS")
    }

    /// A small deterministic generator (xorshift64*), for noise and phases.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
        }
        fn gaussian(&mut self) -> f32 {
            let u = self.next().max(1e-7);
            let v = self.next();
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        }
    }

    /// Tone pairs for `keys`: `on` ms each, `off` ms of silence between and around,
    /// low tone at `low_dbfs`, high tone `twist_db` louder, then noise at `snr_db`
    /// below the tone power (if any).
    struct Signal {
        on_ms: usize,
        off_ms: usize,
        low_dbfs: f32,
        twist_db: f32,
        snr_db: Option<f32>,
        /// Relative frequency error of both tones.
        deviation: f32,
        offset: usize,
        seed: u64,
    }

    impl Default for Signal {
        fn default() -> Self {
            Self {
                on_ms: 100,
                off_ms: 40,
                low_dbfs: -10.0,
                twist_db: 0.0,
                snr_db: None,
                deviation: 0.0,
                offset: 0,
                seed: 1,
            }
        }
    }

    impl Signal {
        fn render(&self, keys: &[Digit]) -> Vec<i16> {
            let mut rng = Rng(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let a_low = 10f32.powf(self.low_dbfs / 20.0);
            let a_high = a_low * 10f32.powf(self.twist_db / 20.0);
            let mut x = vec![0.0f32; self.offset + self.off_ms * 8];
            for &k in keys {
                let (fl, fh) = freqs(k);
                let (fl, fh) = (fl * (1.0 + self.deviation), fh * (1.0 + self.deviation));
                let (pl, ph) = (rng.next() * 6.3, rng.next() * 6.3);
                for n in 0..self.on_ms * 8 {
                    let t = n as f32 / SAMPLE_RATE as f32;
                    x.push(
                        a_low * (std::f32::consts::TAU * fl * t + pl).sin()
                            + a_high * (std::f32::consts::TAU * fh * t + ph).sin(),
                    );
                }
                x.extend(std::iter::repeat_n(0.0, self.off_ms * 8));
            }
            if let Some(snr) = self.snr_db {
                let tone_power = (a_low * a_low + a_high * a_high) / 2.0;
                let sigma = (tone_power / 10f32.powf(snr / 10.0)).sqrt();
                for v in &mut x {
                    *v += sigma * rng.gaussian();
                }
            }
            x.iter()
                .map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
                .collect()
        }
    }

    fn detect(samples: &[i16], chunk: usize) -> String {
        let mut det = DtmfDetector::new();
        let mut out = String::new();
        for c in samples.chunks(chunk) {
            let mut next = det.push(c);
            while let Some(d) = next {
                out.push(d.as_char());
                next = det.poll_digit();
            }
        }
        out
    }

    const ALL: &str = "0123456789*#ABCD";

    #[test]
    fn every_key_at_40_and_100_ms_with_40_ms_pauses() {
        for on_ms in [40, 100] {
            for offset in [0, 17, 53, 105] {
                let s = Signal {
                    on_ms,
                    offset,
                    ..Signal::default()
                }
                .render(&Digit::ALL);
                assert_eq!(detect(&s, 160), ALL, "{on_ms} ms, offset {offset}");
            }
        }
    }

    #[test]
    fn chunk_size_does_not_matter() {
        let s = Signal {
            on_ms: 40,
            offset: 31,
            ..Signal::default()
        }
        .render(&Digit::ALL);
        for chunk in [1, 7, 80, 106, 160, 1000, s.len()] {
            assert_eq!(detect(&s, chunk), ALL, "chunk {chunk}");
        }
        // One push of everything returns the first key and queues the rest.
        let mut det = DtmfDetector::new();
        let keys = Signal::default().render(&[Digit::One, Digit::Two, Digit::Three]);
        assert_eq!(det.push(&keys), Some(Digit::One));
        assert_eq!(det.poll_digit(), Some(Digit::Two));
        assert_eq!(det.poll_digit(), Some(Digit::Three));
        assert_eq!(det.poll_digit(), None);
    }

    #[test]
    fn equal_keys_in_a_row_are_separate_presses() {
        let keys = [
            Digit::Five,
            Digit::Five,
            Digit::Five,
            Digit::Zero,
            Digit::Zero,
        ];
        for offset in [0, 50] {
            let s = Signal {
                on_ms: 40,
                offset,
                ..Signal::default()
            }
            .render(&keys);
            assert_eq!(detect(&s, 160), "55500");
        }
    }

    #[test]
    fn twist_of_six_db_either_way() {
        for twist_db in [-6.0, 6.0] {
            for on_ms in [40, 100] {
                let s = Signal {
                    on_ms,
                    twist_db,
                    low_dbfs: -12.0,
                    offset: 40,
                    ..Signal::default()
                }
                .render(&Digit::ALL);
                assert_eq!(detect(&s, 160), ALL, "twist {twist_db} dB, {on_ms} ms");
            }
        }
    }

    #[test]
    fn white_noise_at_20_db_snr() {
        for seed in 1..=5 {
            for on_ms in [40, 100] {
                let s = Signal {
                    on_ms,
                    snr_db: Some(20.0),
                    offset: 9 * seed as usize,
                    seed,
                    ..Signal::default()
                }
                .render(&Digit::ALL);
                assert_eq!(detect(&s, 160), ALL, "seed {seed}, {on_ms} ms");
            }
        }
    }

    #[test]
    fn quiet_and_loud_tones() {
        for low_dbfs in [-30.0, -3.0] {
            let s = Signal {
                on_ms: 40,
                low_dbfs,
                ..Signal::default()
            }
            .render(&Digit::ALL);
            assert_eq!(detect(&s, 160), ALL, "{low_dbfs} dBFS");
        }
        let s = Signal {
            low_dbfs: -45.0,
            ..Signal::default()
        }
        .render(&Digit::ALL);
        assert_eq!(detect(&s, 160), "", "below the minimum level");
    }

    #[test]
    fn through_g711() {
        use crate::g711::{Law, decode_into, encode_into};
        let s = Signal {
            on_ms: 40,
            low_dbfs: -20.0,
            twist_db: 2.0,
            ..Signal::default()
        }
        .render(&Digit::ALL);
        for law in [Law::Mu, Law::A] {
            let mut coded = vec![0u8; s.len()];
            encode_into(law, &s, &mut coded);
            let mut pcm = vec![0i16; s.len()];
            decode_into(law, &coded, &mut pcm);
            assert_eq!(detect(&pcm, 160), ALL, "{law:?}");
        }
    }

    #[test]
    fn tones_of_20_ms_or_less_are_rejected() {
        for offset in 0..BLOCK {
            let s = Signal {
                on_ms: 20,
                off_ms: 60,
                offset,
                ..Signal::default()
            }
            .render(&Digit::ALL);
            assert_eq!(detect(&s, 160), "", "offset {offset}");
        }
    }

    #[test]
    fn a_10_ms_dropout_does_not_split_a_key() {
        for offset in (0..BLOCK).step_by(5) {
            let mut s = Signal {
                on_ms: 200,
                offset,
                ..Signal::default()
            }
            .render(&[Digit::Seven]);
            let start = offset + 40 * 8 + 80 * 8;
            s[start..start + 80].fill(0);
            assert_eq!(detect(&s, 160), "7", "offset {offset}");
        }
    }

    #[test]
    fn single_tones_and_silence_are_not_keys() {
        let mut det = DtmfDetector::new();
        assert_eq!(det.push(&[0; 8000]), None);
        let tone: Vec<i16> = (0..8000)
            .map(|n| (10000.0 * (std::f32::consts::TAU * 697.0 * n as f32 / 8000.0).sin()) as i16)
            .collect();
        assert_eq!(detect(&tone, 160), "");
        // A dial tone (350 + 440 Hz) is not a key either.
        let dial: Vec<i16> = (0..8000)
            .map(|n| {
                let t = n as f32 / 8000.0;
                (8000.0
                    * ((std::f32::consts::TAU * 350.0 * t).sin()
                        + (std::f32::consts::TAU * 440.0 * t).sin())) as i16
            })
            .collect();
        assert_eq!(detect(&dial, 160), "");
    }

    #[test]
    fn tones_off_frequency_by_one_and_a_half_percent() {
        for deviation in [-0.015, 0.015] {
            let s = Signal {
                on_ms: 40,
                deviation,
                ..Signal::default()
            }
            .render(&Digit::ALL);
            assert_eq!(detect(&s, 160), ALL, "{deviation}");
        }
    }

    #[test]
    fn the_fit_explains_a_pure_pair_at_any_phase() {
        let mut rng = Rng(7);
        for &low in &LOW {
            for &high in &HIGH {
                let (pl, ph) = (rng.next() * 6.3, rng.next() * 6.3);
                let x: Vec<i16> = (0..BLOCK)
                    .map(|n| {
                        let t = n as f32 / SAMPLE_RATE as f32;
                        let v = (std::f32::consts::TAU * low * t + pl).sin()
                            + 0.5 * (std::f32::consts::TAU * high * t + ph).sin();
                        (v * 12000.0) as i16
                    })
                    .collect();
                let mut det = DtmfDetector::new();
                det.filter(&x);
                let row = LOW.iter().position(|f| *f == low).unwrap_or_default();
                let col = HIGH.iter().position(|f| *f == high).unwrap_or_default();
                let fraction = det.two_tone_fit(row, 4 + col) / det.energy;
                assert!(
                    (0.999..1.001).contains(&fraction),
                    "{low}+{high}: {fraction}"
                );
            }
        }
    }

    #[test]
    fn a_third_tone_is_not_a_key() {
        let mut s = Signal::default().render(&[Digit::Five]);
        for (n, v) in s.iter_mut().enumerate() {
            let t = n as f32 / SAMPLE_RATE as f32;
            *v = v.saturating_add((5000.0 * (std::f32::consts::TAU * 1900.0 * t).sin()) as i16);
        }
        assert_eq!(detect(&s, 160), "");
    }
}
