//! When to stop recording a message: the caller has gone quiet, or it is long enough.
//!
//! [`SilenceDetector`] measures the RMS level of each 20 ms frame (160 samples at
//! 8 kHz) in dBFS, where 0 dBFS is a square wave at full scale (so a full-scale
//! sine is about -3 dBFS). A frame below the threshold is silent; the message has
//! ended when the last `duration_ms` of frames were all silent.
//!
//! Leading silence — before the first frame at or above the threshold — is
//! ignored by default: a caller who takes a breath before speaking is not cut
//! off. [`SilenceDetector::with_leading_silence`] gives it its own, usually longer,
//! allowance instead (a caller who never says anything). Either way a
//! [`MaxLength`] bounds the whole recording.
//!
//! Samples may come in slices of any length; a partial frame waits for the next
//! slice. No allocation, no floating point per sample.

/// Samples per measured frame: 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// Milliseconds per measured frame.
pub const FRAME_MS: u32 = 20;

/// Detects the silence at the end of a message. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    /// Mean square (of i16 samples) below which a frame is silent.
    threshold_ms: f64,
    /// Silent frames that end a message after speech.
    frames_needed: u32,
    /// Silent frames that end it before any speech; `None`: never.
    leading_needed: Option<u32>,
    /// The frame being measured.
    sum_sq: u64,
    count: usize,
    /// Silent frames in a row.
    silent: u32,
    speech: bool,
    ended: bool,
}

impl SilenceDetector {
    /// End after `duration_ms` (rounded up to 20 ms, at least 20) of frames below
    /// `threshold_dbfs` (for example -40.0) once speech was heard.
    pub fn new(threshold_dbfs: f32, duration_ms: u32) -> Self {
        let rms = 10f64.powf(f64::from(threshold_dbfs) / 20.0) * 32768.0;
        Self {
            threshold_ms: rms * rms,
            frames_needed: frames_for(duration_ms),
            leading_needed: None,
            sum_sq: 0,
            count: 0,
            silent: 0,
            speech: false,
            ended: false,
        }
    }

    /// Also end after `leading_ms` (rounded up to 20 ms) of silence from the start
    /// when nobody has spoken yet. Without this, leading silence never ends a message.
    pub fn with_leading_silence(mut self, leading_ms: u32) -> Self {
        self.leading_needed = Some(frames_for(leading_ms));
        self
    }

    /// Take samples; returns whether the message has ended, that is whether the
    /// last `duration_ms` measured were silent (after speech), or the leading
    /// allowance ran out. It stays `true` while the silence goes on and turns
    /// `false` again at the next loud frame.
    pub fn push(&mut self, samples: &[i16]) -> bool {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.count).min(rest.len());
            let (now, later) = rest.split_at(take);
            rest = later;
            self.sum_sq += now
                .iter()
                .map(|&s| {
                    let s = i64::from(s);
                    (s * s) as u64
                })
                .sum::<u64>();
            self.count += take;
            if self.count == FRAME {
                self.end_frame();
            }
        }
        self.ended
    }

    fn end_frame(&mut self) {
        let mean_sq = self.sum_sq as f64 / FRAME as f64;
        self.sum_sq = 0;
        self.count = 0;
        if mean_sq < self.threshold_ms {
            self.silent = self.silent.saturating_add(1);
        } else {
            self.silent = 0;
            self.speech = true;
        }
        let needed = if self.speech {
            Some(self.frames_needed)
        } else {
            self.leading_needed
        };
        self.ended = needed.is_some_and(|n| self.silent >= n);
    }

    /// Whether the message has ended (what the last [`push`](Self::push) returned).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether a frame at or above the threshold was heard.
    pub fn speech_heard(&self) -> bool {
        self.speech
    }

    /// How long the current run of silent frames is, in milliseconds.
    pub fn silent_ms(&self) -> u32 {
        self.silent.saturating_mul(FRAME_MS)
    }

    /// Start over (a new message), keeping the settings.
    pub fn reset(&mut self) {
        self.sum_sq = 0;
        self.count = 0;
        self.silent = 0;
        self.speech = false;
        self.ended = false;
    }
}

fn frames_for(ms: u32) -> u32 {
    ms.div_ceil(FRAME_MS).max(1)
}

/// The longest a recording may be, counted in samples at 8 kHz.
///
/// ```
/// # use hotline_media::silence::MaxLength;
/// let mut max = MaxLength::from_ms(50); // 400 samples
/// assert_eq!(max.admit(160), 160);
/// assert_eq!(max.admit(160), 160);
/// assert_eq!(max.admit(160), 80); // write only these, then stop
/// assert!(max.reached());
/// assert_eq!(max.admit(160), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxLength {
    max: u64,
    recorded: u64,
}

impl MaxLength {
    /// At most `ms` milliseconds.
    pub fn from_ms(ms: u64) -> Self {
        Self::from_samples(ms.saturating_mul(8))
    }

    /// At most `samples` samples (per channel).
    pub fn from_samples(samples: u64) -> Self {
        Self {
            max: samples,
            recorded: 0,
        }
    }

    /// Of `samples` about to be written, how many still fit; counts them as
    /// recorded. Write that many, and stop when [`reached`](Self::reached).
    pub fn admit(&mut self, samples: usize) -> usize {
        let left = self.max - self.recorded;
        let n = (samples as u64).min(left);
        self.recorded += n;
        // n <= samples, a usize.
        n as usize
    }

    /// Whether the recording is as long as it may be.
    pub fn reached(&self) -> bool {
        self.recorded >= self.max
    }

    /// Samples recorded so far.
    pub fn recorded_samples(&self) -> u64 {
        self.recorded
    }

    /// Milliseconds recorded so far (rounded down).
    pub fn recorded_ms(&self) -> u64 {
        self.recorded / 8
    }
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;

    use super::*;

    /// A deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
        }

        /// Uniform in [-1, 1).
        fn signed(&mut self) -> f32 {
            self.next() * 2.0 - 1.0
        }
    }

    /// A speech-like syllable: a 100-250 Hz voiced fundamental with harmonics,
    /// a raised-cosine envelope, some breath noise; peak about -12 dBFS.
    fn syllable(rng: &mut Rng, ms: u32) -> Vec<i16> {
        let n = (ms * 8) as usize;
        let f0 = 100.0 + 150.0 * rng.next();
        let amp = 4000.0 + 4000.0 * rng.next();
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let env = 0.5 - 0.5 * (TAU * i as f32 / n as f32).cos();
                let voiced: f32 = (1..=8)
                    .map(|h| (TAU * f0 * h as f32 * t).sin() / h as f32)
                    .sum();
                let s = amp * env * (voiced + 0.2 * rng.signed());
                s.clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    /// Line noise of about `dbfs` RMS.
    fn noise(rng: &mut Rng, ms: u32, dbfs: f32) -> Vec<i16> {
        // Uniform noise in [-a, a) has RMS a / sqrt(3).
        let a = 10f32.powf(dbfs / 20.0) * 32768.0 * 3f32.sqrt();
        (0..ms * 8).map(|_| (a * rng.signed()) as i16).collect()
    }

    /// Push `samples` in slices of `step`; the milliseconds (from the start of
    /// `samples`) at which the detector first said the message had ended.
    fn ended_at(d: &mut SilenceDetector, samples: &[i16], step: usize) -> Option<u32> {
        let mut pos = 0;
        for chunk in samples.chunks(step) {
            pos += chunk.len();
            if d.push(chunk) {
                return Some((pos / 8) as u32);
            }
        }
        None
    }

    /// Three words of syllables with 80-200 ms gaps, pauses of 600 ms between
    /// words; the length of the speech part.
    fn speech(rng: &mut Rng, out: &mut Vec<i16>) {
        for word in 0..3 {
            for _ in 0..4 {
                let len = 120 + (rng.next() * 180.0) as u32;
                out.extend(syllable(rng, len));
                let gap = 80 + (rng.next() * 120.0) as u32;
                out.extend(noise(rng, gap, -60.0));
            }
            if word < 2 {
                out.extend(noise(rng, 600, -60.0));
            }
        }
    }

    #[test]
    fn ends_after_the_silence_that_follows_speech() {
        for (seed, step) in [(1, 160), (2, 37), (3, 1000), (4, 1)] {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
            let mut audio = noise(&mut rng, 500, -65.0);
            speech(&mut rng, &mut audio);
            // Align the end of speech to a frame so the expectation is exact.
            let aligned = audio.len().div_ceil(FRAME) * FRAME;
            audio.resize(aligned, 0);
            let speech_end_ms = (audio.len() / 8) as u32;
            audio.extend(noise(&mut rng, 3000, -55.0));
            let mut d = SilenceDetector::new(-40.0, 1500);
            let at = ended_at(&mut d, &audio, step).expect("never ended");
            // Ends once 1500 ms of silent frames followed the last loud one; the
            // tail of the last syllable is quiet too, so at most 1500 ms after.
            assert!(
                at <= speech_end_ms + 1500,
                "seed {seed}: {at} > {speech_end_ms}+1500"
            );
            assert!(
                at > speech_end_ms + 1000,
                "seed {seed}: {at} ended during speech"
            );
            assert!(d.speech_heard());
            assert!(d.silent_ms() >= 1500);
        }
    }

    #[test]
    fn pauses_between_words_do_not_end_it() {
        let mut rng = Rng(42);
        let mut audio = Vec::new();
        speech(&mut rng, &mut audio);
        let mut d = SilenceDetector::new(-40.0, 1000);
        assert_eq!(ended_at(&mut d, &audio, 160), None);
    }

    #[test]
    fn leading_silence_is_ignored_unless_allowed() {
        let mut rng = Rng(7);
        let quiet = noise(&mut rng, 10_000, -60.0);
        let mut d = SilenceDetector::new(-40.0, 1000);
        assert_eq!(ended_at(&mut d, &quiet, 160), None);
        assert!(!d.speech_heard());
        assert_eq!(d.silent_ms(), 10_000);

        let mut d = SilenceDetector::new(-40.0, 1000).with_leading_silence(5000);
        assert_eq!(ended_at(&mut d, &quiet, 160), Some(5000));

        // Speech before the allowance runs out: the normal rule applies after it.
        let mut audio = noise(&mut rng, 3000, -60.0);
        audio.extend(syllable(&mut rng, 200));
        audio.resize(audio.len().div_ceil(FRAME) * FRAME, 0);
        let end = (audio.len() / 8) as u32;
        audio.extend(noise(&mut rng, 4000, -60.0));
        let mut d = SilenceDetector::new(-40.0, 1000).with_leading_silence(5000);
        let at = ended_at(&mut d, &audio, 160).unwrap();
        assert!(at <= end + 1000 && at > end + 800, "{at} vs {end}");
    }

    #[test]
    fn threshold_is_in_dbfs_of_frame_rms() {
        // A 1 kHz sine of amplitude A has RMS A/√2.
        let sine = |amp: f32| -> Vec<i16> {
            (0..FRAME * 10)
                .map(|n| (amp * (TAU * 1000.0 * n as f32 / 8000.0).sin()) as i16)
                .collect()
        };
        // -40 dBFS RMS: amplitude 327.68 × √2 ≈ 463.4.
        let mut d = SilenceDetector::new(-40.0, 200);
        assert!(!d.push(&sine(440.0)), "leading silence is ignored");
        assert_eq!(d.silent_ms(), 200, "just below is silence");
        assert!(!d.speech_heard());
        let mut d = SilenceDetector::new(-40.0, 200);
        assert!(!d.push(&sine(490.0)), "just above is not");
        assert!(d.speech_heard());
        // 200 ms of silence after it ends the message; a loud frame reopens it.
        assert!(!d.push(&[0; FRAME * 9]));
        assert!(d.push(&[0; FRAME]));
        assert!(d.push(&[0; FRAME * 3]));
        assert!(!d.push(&sine(8000.0)));
        assert!(!d.ended());
        d.reset();
        assert!(!d.speech_heard());
        assert!(!d.push(&[0; FRAME * 20]));
    }

    #[test]
    fn durations_round_up_to_frames() {
        let mut d = SilenceDetector::new(-40.0, 30); // two frames
        d.push(&[10_000; FRAME]);
        assert!(!d.push(&[0; FRAME]));
        assert!(d.push(&[0; FRAME]));
        let mut d = SilenceDetector::new(-40.0, 0); // one frame
        d.push(&[10_000; FRAME]);
        assert!(!d.push(&[0; FRAME - 1]));
        assert!(d.push(&[0; 1]));
    }

    #[test]
    fn max_length_admits_up_to_the_limit() {
        let mut m = MaxLength::from_ms(120_000);
        let mut written = 0;
        while !m.reached() {
            written += m.admit(160);
        }
        assert_eq!(written, 960_000);
        assert_eq!(m.recorded_ms(), 120_000);
        assert_eq!(m.admit(1), 0);
        let mut m = MaxLength::from_samples(100);
        assert_eq!(m.admit(60), 60);
        assert_eq!(m.admit(60), 40);
        assert_eq!(m.recorded_samples(), 100);
        assert!(MaxLength::from_ms(0).reached());
    }
}
