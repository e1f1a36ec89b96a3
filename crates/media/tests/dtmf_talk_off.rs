//! Talk-off: the in-band detector must not hear keys in speech (ITU-T Q.24).
//!
//! Two sources, both made at test time (no audio is checked in):
//! - synthetic speech: harmonics of a moving 100-250 Hz fundamental shaped by three
//!   moving formants, with fricative noise bursts and pauses, including sustained
//!   vowels whose fundamentals put harmonics on DTMF frequency pairs;
//! - espeak-ng sentences in Spanish, Quechua and English at several pitches, when
//!   `/usr/bin/espeak-ng` exists (skipped otherwise).

use std::f32::consts::TAU;
use std::path::Path;
use std::process::Command;

use hotline_media::g711::{Law, decode_into, encode_into};
use hotline_media::goertzel::DtmfDetector;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next()
    }
}

/// Magnitude of a second-order resonance (a formant) at `f`.
fn resonance(f: f32, formant: f32, bandwidth: f32) -> f32 {
    let f2 = formant * formant;
    f2 / ((f2 - f * f).powi(2) + (f * bandwidth).powi(2)).sqrt()
}

/// One voiced segment: `f0` glides from `f0.0` to `f0.1` with a 5 Hz vibrato,
/// formants glide from `from` to `to`; a raised-cosine envelope at `dbfs` RMS.
fn vowel(
    out: &mut Vec<f32>,
    ms: usize,
    f0: (f32, f32),
    from: [f32; 3],
    to: [f32; 3],
    dbfs: f32,
    rng: &mut Rng,
) {
    let n = ms * 8;
    let bandwidths = [
        rng.range(50.0, 120.0),
        rng.range(70.0, 150.0),
        rng.range(100.0, 200.0),
    ];
    let mut phase = [0.0f32; 40];
    for p in &mut phase {
        *p = rng.range(0.0, TAU);
    }
    let mut seg = Vec::with_capacity(n);
    let mut amps = [0.0f32; 40];
    let mut f0_now = f0.0;
    for i in 0..n {
        let t = i as f32 / n as f32;
        if i % 40 == 0 {
            f0_now =
                (f0.0 + (f0.1 - f0.0) * t) * (1.0 + 0.02 * (TAU * 5.0 * i as f32 / 8000.0).sin());
            let formants: Vec<f32> = (0..3).map(|k| from[k] + (to[k] - from[k]) * t).collect();
            for (h, a) in amps.iter_mut().enumerate() {
                let f = f0_now * (h + 1) as f32;
                *a = if f < 3800.0 {
                    // Glottal source falling 12 dB per octave, lip radiation +6.
                    let source = 1.0 / (h + 1) as f32;
                    formants
                        .iter()
                        .zip(&bandwidths)
                        .map(|(&fm, &b)| resonance(f, fm, b))
                        .product::<f32>()
                        * source
                } else {
                    0.0
                };
            }
        }
        let mut v = 0.0;
        for (h, p) in phase.iter_mut().enumerate() {
            *p += TAU * f0_now * (h + 1) as f32 / 8000.0;
            if *p > TAU {
                *p -= TAU;
            }
            v += amps[h] * p.sin();
        }
        seg.push(v);
    }
    place(out, &mut seg, dbfs);
}

/// A fricative: white noise through a resonance at 2-4 kHz.
fn fricative(out: &mut Vec<f32>, ms: usize, dbfs: f32, rng: &mut Rng) {
    let centre = rng.range(2000.0, 3800.0);
    let r = 0.9f32;
    let c = 2.0 * r * (TAU * centre / 8000.0).cos();
    let (mut y1, mut y2) = (0.0f32, 0.0f32);
    let mut seg: Vec<f32> = (0..ms * 8)
        .map(|_| {
            let y = rng.range(-1.0, 1.0) + c * y1 - r * r * y2;
            (y2, y1) = (y1, y);
            y
        })
        .collect();
    place(out, &mut seg, dbfs);
}

/// Scale a segment to an RMS level, fade it in and out over 15 ms, append it.
fn place(out: &mut Vec<f32>, seg: &mut [f32], dbfs: f32) {
    let rms = (seg.iter().map(|v| v * v).sum::<f32>() / seg.len().max(1) as f32)
        .sqrt()
        .max(1e-9);
    let gain = 10f32.powf(dbfs / 20.0) / rms;
    let fade = 120.min(seg.len() / 2);
    let len = seg.len();
    for (i, v) in seg.iter_mut().enumerate() {
        let edge = i.min(len - 1 - i);
        let env = if edge < fade {
            0.5 - 0.5 * (std::f32::consts::PI * edge as f32 / fade as f32).cos()
        } else {
            1.0
        };
        *v *= gain * env;
    }
    out.extend_from_slice(seg);
}

fn random_formants(rng: &mut Rng) -> [f32; 3] {
    [
        rng.range(300.0, 900.0),
        rng.range(900.0, 2400.0),
        rng.range(2400.0, 3400.0),
    ]
}

/// Random speech-like audio: vowels, fricatives and pauses.
fn babble(seed: u64, seconds: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    while out.len() < seconds * 8000 {
        let kind = rng.next();
        let ms = rng.range(40.0, 400.0) as usize;
        if kind < 0.6 {
            let f0 = (rng.range(100.0, 250.0), rng.range(100.0, 250.0));
            let (from, to) = (random_formants(&mut rng), random_formants(&mut rng));
            let level = rng.range(-30.0, -12.0);
            vowel(&mut out, ms, f0, from, to, level, &mut rng);
        } else if kind < 0.8 {
            let level = rng.range(-40.0, -22.0);
            fricative(&mut out, ms, level, &mut rng);
        } else {
            out.extend(std::iter::repeat_n(0.0, ms * 8));
        }
    }
    out
}

fn to_pcm(x: &[f32]) -> Vec<i16> {
    x.iter()
        .map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Keys the detector hears, also after a G.711 round trip.
fn keys_heard(pcm: &[i16]) -> String {
    let mut heard = String::new();
    for law in [None, Some(Law::Mu), Some(Law::A)] {
        let mut samples = pcm.to_vec();
        if let Some(law) = law {
            let mut coded = vec![0u8; pcm.len()];
            encode_into(law, pcm, &mut coded);
            decode_into(law, &coded, &mut samples);
        }
        let mut det = DtmfDetector::new();
        for frame in samples.chunks(160) {
            if let Some(d) = det.push(frame) {
                heard.push(d.as_char());
            }
        }
    }
    heard
}

#[test]
fn no_keys_in_synthetic_speech() {
    for seed in 1..=6 {
        let pcm = to_pcm(&babble(seed, 20));
        assert_eq!(keys_heard(&pcm), "", "seed {seed}");
    }
}

/// Sustained vowels whose harmonics land on a low and a high DTMF frequency at
/// once, with the first two formants sitting on them: the worst case for talk-off.
#[test]
fn no_keys_in_vowels_tuned_to_dtmf_pairs() {
    const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let mut rng = Rng::new(99);
    let mut out = Vec::new();
    let mut tuned = 0;
    for low in LOW {
        for high in HIGH {
            // Every fundamental in 100-250 Hz with harmonics within 1.5 % of both.
            for k in 1..=9 {
                let f0 = low / k as f32;
                if !(100.0..=250.0).contains(&f0) {
                    continue;
                }
                let m = (high / f0).round();
                if ((m * f0 - high) / high).abs() > 0.015 {
                    continue;
                }
                tuned += 1;
                let formants = [low, high, rng.range(2400.0, 3200.0)];
                vowel(&mut out, 500, (f0, f0), formants, formants, -15.0, &mut rng);
                out.extend(std::iter::repeat_n(0.0, 800));
            }
        }
    }
    assert!(tuned >= 8, "only {tuned} tuned vowels");

    assert_eq!(keys_heard(&to_pcm(&out)), "");
}

/// Speech from espeak-ng, resampled from 22 050 Hz to 8 kHz.
#[test]
fn no_keys_in_espeak_speech() {
    let espeak = Path::new("/usr/bin/espeak-ng");
    if !espeak.exists() {
        eprintln!("espeak-ng not installed: skipped");
        return;
    }
    let sentences = [
        (
            "es-419",
            "Gracias por llamar a la línea contra la trata de personas. Si está en peligro, marque uno.",
        ),
        (
            "es-419+f3",
            "Para hablar con una operadora, marque cero. Su llamada es confidencial y gratuita.",
        ),
        (
            "qu",
            "Allillanchu. Kay rimanakuyqa pakasqam. Huk yupayta ñitiy.",
        ),
        (
            "en-us",
            "Thank you for calling. Please hold while we connect you to the next available operator.",
        ),
        (
            "en-us+f2",
            "Nine, eight, seven, six, five, four, three, two, one, zero. Star, pound, hash.",
        ),
    ];
    for (voice, text) in sentences {
        for pitch in ["20", "50", "80"] {
            let output = Command::new(espeak)
                .args(["-v", voice, "-p", pitch, "-s", "150", "--stdout", text])
                .output()
                .expect("espeak-ng runs");
            assert!(output.status.success(), "espeak-ng failed for {voice}");
            let (rate, samples) = read_wav(&output.stdout);
            let pcm = to_pcm(&resample_to_8k(&samples, rate));
            assert!(pcm.len() > 8000, "{voice}: too little audio");
            assert_eq!(keys_heard(&pcm), "", "{voice} pitch {pitch}");
        }
    }
}

/// 16-bit mono PCM from a WAV stream (the data size may be a placeholder).
fn read_wav(bytes: &[u8]) -> (u32, Vec<f32>) {
    assert_eq!(&bytes[0..4], b"RIFF");
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let mut at = 12;
    while &bytes[at..at + 4] != b"data" {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + size;
    }
    let samples = bytes[at + 8..]
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    (rate, samples)
}

/// Windowed-sinc resampling with a 3.6 kHz cutoff.
fn resample_to_8k(x: &[f32], rate: u32) -> Vec<f32> {
    let ratio = rate as f32 / 8000.0;
    let cutoff = 3600.0 / rate as f32; // cycles per input sample
    let half = 32i64;
    let n_out = (x.len() as f32 / ratio) as usize;
    (0..n_out)
        .map(|n| {
            let centre = n as f32 * ratio;
            let c = centre.floor() as i64;
            let mut acc = 0.0;
            for i in (c - half)..=(c + half) {
                if i < 0 || i as usize >= x.len() {
                    continue;
                }
                let d = i as f32 - centre;
                let sinc = if d.abs() < 1e-6 {
                    2.0 * cutoff
                } else {
                    (TAU / 2.0 * 2.0 * cutoff * d).sin() / (TAU / 2.0 * d)
                };
                let window = 0.5 + 0.5 * (std::f32::consts::PI * d / (half as f32 + 1.0)).cos();
                acc += x[i as usize] * sinc * window;
            }
            acc
        })
        .collect()
}
