//! Voice prompts: WAV files loaded once, resampled to 8 kHz and pre-encoded as
//! 20 ms G.711 frames, and the library that finds them by language and id.
//!
//! All the work happens at load time: [`Prompt::from_wav`] reads any PCM or float
//! WAV (any rate, any channel count), mixes it down to mono, resamples it to
//! 8 kHz with rubato's FFT resampler (a windowed-sinc anti-aliasing filter applied
//! in the frequency domain), cuts it into 160-sample frames and encodes each frame
//! in both laws. A call then only copies 160 bytes per packet (see
//! [`Player`](crate::player::Player)).
//!
//! Reading files is the shell's job: it opens `<prompts_dir>/<lang>/<id>.wav` and
//! hands the bytes (or a buffered reader) to [`Prompt::from_wav`], then
//! [`PromptLibrary::insert`]s the result.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::Arc;

use hound::{SampleFormat, WavReader};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::MediaError;
use crate::g711::{self, Law};

/// The sample rate of G.711 and of every prompt after loading.
pub const SAMPLE_RATE: u32 = 8000;
/// The samples (and G.711 bytes) in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// The length of one frame in milliseconds.
pub const FRAME_MS: u32 = 20;

/// The lowest and highest input sample rates [`Prompt::from_wav`] accepts. Outside
/// this range the header is more likely garbage than audio, and the resampler's
/// buffers grow with the rate.
const RATES: std::ops::RangeInclusive<u32> = 4000..=384_000;
/// Frames the resampler takes per call; it processes them in sub-chunks of about 256.
const RESAMPLE_CHUNK: usize = 1024;
/// At most this many samples are reserved from the WAV header's claim; a longer
/// file still loads, the vector just grows.
const RESERVE_LIMIT: usize = 1 << 22;

/// One G.711 frame: 20 ms, one byte per sample.
pub type Frame = [u8; FRAME_SAMPLES];

/// A prompt ready to play: 8 kHz mono PCM and the same audio as PCMU and PCMA frames.
///
/// Shared between calls behind an `Arc`; never changed after loading.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The 8 kHz samples, unpadded.
    pcm: Vec<i16>,
    /// µ-law frames; the last one padded with silence.
    pcmu: Vec<Frame>,
    /// A-law frames; the last one padded with silence.
    pcma: Vec<Frame>,
}

impl Prompt {
    /// Load a WAV file: 8-, 16-, 24- or 32-bit integer or 32-bit float samples, any
    /// rate from 4 kHz to 384 kHz, any number of channels (averaged to mono).
    ///
    /// Pass a buffered reader or a byte slice: hound reads in small pieces.
    /// A truncated or malformed file, or one with no samples, is an error.
    pub fn from_wav(reader: impl Read) -> Result<Self, MediaError> {
        let wav = WavReader::new(reader).map_err(wav_error)?;
        let spec = wav.spec();
        if !RATES.contains(&spec.sample_rate) {
            return Err(MediaError::Wav("sample rate outside 4 kHz to 384 kHz"));
        }
        if spec.channels == 0 {
            return Err(MediaError::Wav("no channels"));
        }
        let channels = usize::from(spec.channels);
        let interleaved = read_samples(wav)?;
        if interleaved.len() < channels {
            return Err(MediaError::Wav("no samples"));
        }
        let mono = downmix(&interleaved, channels);
        let mono = if spec.sample_rate == SAMPLE_RATE {
            mono
        } else {
            resample(&mono, spec.sample_rate)?
        };
        Ok(Self::from_pcm(mono.iter().map(|&x| to_i16(x)).collect()))
    }

    /// A prompt from 8 kHz mono samples (synthesised tones, tests).
    pub fn from_pcm(pcm: Vec<i16>) -> Self {
        let frames = pcm.len().div_ceil(FRAME_SAMPLES);
        let mut pcmu = vec![[Law::Mu.silence(); FRAME_SAMPLES]; frames];
        let mut pcma = vec![[Law::A.silence(); FRAME_SAMPLES]; frames];
        for ((chunk, mu), a) in pcm.chunks(FRAME_SAMPLES).zip(&mut pcmu).zip(&mut pcma) {
            g711::encode_into(Law::Mu, chunk, mu);
            g711::encode_into(Law::A, chunk, a);
        }
        Self { pcm, pcmu, pcma }
    }

    /// The frames in one law, in playing order.
    pub fn frames(&self, law: Law) -> &[Frame] {
        match law {
            Law::Mu => &self.pcmu,
            Law::A => &self.pcma,
        }
    }

    /// The number of 20 ms frames (the last one may be partly silence).
    pub fn frame_count(&self) -> usize {
        self.pcmu.len()
    }

    /// The 8 kHz mono samples, without the padding of the last frame.
    pub fn pcm(&self) -> &[i16] {
        &self.pcm
    }

    /// The length of the audio in milliseconds, rounded down.
    pub fn duration_ms(&self) -> u64 {
        // usize → u64 is lossless on every target Rust supports.
        self.pcm.len() as u64 * 1000 / u64::from(SAMPLE_RATE)
    }
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("duration_ms", &self.duration_ms())
            .field("frames", &self.frame_count())
            .finish_non_exhaustive()
    }
}

/// Read every sample as a float in −1.0..1.0, interleaved.
fn read_samples<R: Read>(mut wav: WavReader<R>) -> Result<Vec<f32>, MediaError> {
    let spec = wav.spec();
    let mut out = Vec::with_capacity((wav.len() as usize).min(RESERVE_LIMIT));
    match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in wav.samples::<i32>() {
                out.push(s.map_err(wav_error)? as f32 * scale);
            }
        }
        (SampleFormat::Float, 32) => {
            for s in wav.samples::<f32>() {
                let s = s.map_err(wav_error)?;
                // NaN or infinities in a float file would poison the resampler.
                out.push(if s.is_finite() { s } else { 0.0 });
            }
        }
        _ => return Err(MediaError::Wav("unsupported sample format")),
    }
    Ok(out)
}

/// Average the channels of interleaved samples; a trailing partial frame is dropped.
fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

/// Resample mono audio to 8 kHz, startup delay trimmed, length `ceil(n · 8000 / rate)`.
fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, MediaError> {
    const FAILED: MediaError = MediaError::Wav("cannot resample this sample rate");
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|_| FAILED)?;
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        SAMPLE_RATE as usize,
        RESAMPLE_CHUNK,
        1,
        FixedSync::Input,
    )
    .map_err(|_| FAILED)?;
    let out = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|_| FAILED)?;
    Ok(out.take_data())
}

/// A float sample in −1.0..1.0 as a 16-bit sample; louder input saturates.
fn to_i16(x: f32) -> i16 {
    // The clamp makes the cast exact; 16-bit input round-trips unchanged.
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn wav_error(e: hound::Error) -> MediaError {
    MediaError::Wav(match e {
        hound::Error::IoError(_) => "truncated or unreadable",
        hound::Error::FormatError(what) => what,
        hound::Error::TooWide => "samples wider than 32 bits",
        hound::Error::UnfinishedSample => "unfinished sample",
        hound::Error::Unsupported => "unsupported WAV encoding",
        hound::Error::InvalidSampleFormat => "unsupported sample format",
    })
}

/// The languages the hotline speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// Spanish.
    Es,
    /// Southern Quechua.
    Qu,
}

impl Lang {
    /// Every language, in the order the welcome prompt speaks them.
    pub const ALL: [Self; 2] = [Self::Es, Self::Qu];

    /// The code used in file paths and configuration: `"es"` or `"qu"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::Qu => "qu",
        }
    }

    /// The language a missing prompt falls back to.
    pub const fn other(self) -> Self {
        match self {
            Self::Es => Self::Qu,
            Self::Qu => Self::Es,
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Es => 0,
            Self::Qu => 1,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = MediaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "es" => Ok(Self::Es),
            "qu" => Ok(Self::Qu),
            _ => Err(MediaError::UnknownLanguage),
        }
    }
}

/// Every loaded prompt, by language and prompt id (the file name without `.wav`).
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    /// Indexed by [`Lang::index`].
    by_lang: [HashMap<String, Arc<Prompt>>; 2],
}

/// A prompt found by [`PromptLibrary::get`].
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The prompt to play.
    pub prompt: Arc<Prompt>,
    /// The language it is in.
    pub lang: Lang,
    /// It is missing in the language asked for and is the other language's: the
    /// caller should log a warning.
    pub fallback: bool,
}

impl PromptLibrary {
    /// An empty library.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a prompt; returns the one it replaced.
    pub fn insert(
        &mut self,
        lang: Lang,
        id: impl Into<String>,
        prompt: Arc<Prompt>,
    ) -> Option<Arc<Prompt>> {
        self.by_lang[lang.index()].insert(id.into(), prompt)
    }

    /// The prompt `id` in `lang`, or else in the other language.
    pub fn get(&self, lang: Lang, id: &str) -> Option<Lookup> {
        if let Some(prompt) = self.by_lang[lang.index()].get(id) {
            return Some(Lookup {
                prompt: Arc::clone(prompt),
                lang,
                fallback: false,
            });
        }
        let other = lang.other();
        self.by_lang[other.index()].get(id).map(|prompt| Lookup {
            prompt: Arc::clone(prompt),
            lang: other,
            fallback: true,
        })
    }

    /// Every `(lang, id)` pair with no prompt of its own (fallbacks not counted),
    /// languages in the order given, ids in the order given: what `hotline check` reports.
    pub fn missing<S: AsRef<str>>(&self, langs: &[Lang], ids: &[S]) -> Vec<(Lang, String)> {
        langs
            .iter()
            .flat_map(|&lang| ids.iter().map(move |id| (lang, id.as_ref())))
            .filter(|(lang, id)| !self.by_lang[lang.index()].contains_key(*id))
            .map(|(lang, id)| (lang, id.to_owned()))
            .collect()
    }

    /// The ids loaded for `lang`, in no particular order.
    pub fn ids(&self, lang: Lang) -> impl Iterator<Item = &str> {
        self.by_lang[lang.index()].keys().map(String::as_str)
    }

    /// The number of prompts over all languages.
    pub fn len(&self) -> usize {
        self.by_lang.iter().map(HashMap::len).sum()
    }

    /// No prompt is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;
    use std::io::Cursor;
    use std::path::PathBuf;

    use hound::{WavSpec, WavWriter};

    use super::*;

    /// A WAV in memory: `seconds` of a sine of `freq` Hz at amplitude `amp` in every channel.
    fn sine_wav(spec: WavSpec, seconds: f32, freq: f32, amp: f32) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut w = WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
        let n = (seconds * spec.sample_rate as f32) as usize;
        for i in 0..n {
            let x = amp * (TAU * freq * i as f32 / spec.sample_rate as f32).sin();
            for _ in 0..spec.channels {
                match spec.sample_format {
                    SampleFormat::Float => w.write_sample(x).unwrap(),
                    SampleFormat::Int => {
                        let full = (1i64 << (spec.bits_per_sample - 1)) as f32 - 1.0;
                        w.write_sample((x * full) as i32).unwrap();
                    }
                }
            }
        }
        w.finalize().unwrap();
        bytes
    }

    /// The frequency of a tone from its zero crossings, over the middle of the signal
    /// (away from the resampler's edges).
    fn frequency(pcm: &[i16]) -> f32 {
        let mid = &pcm[pcm.len() / 4..pcm.len() * 3 / 4];
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f32 / 2.0 / (mid.len() as f32 / SAMPLE_RATE as f32)
    }

    fn peak(pcm: &[i16]) -> i16 {
        let mid = &pcm[pcm.len() / 4..pcm.len() * 3 / 4];
        mid.iter().map(|s| s.saturating_abs()).max().unwrap()
    }

    #[test]
    fn stereo_16k_loads_at_8k_mono() {
        let spec = WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let p = Prompt::from_wav(&sine_wav(spec, 1.0, 1000.0, 0.5)[..]).unwrap();
        assert!(
            p.pcm().len().abs_diff(8000) <= FRAME_SAMPLES,
            "{}",
            p.pcm().len()
        );
        assert!(p.frame_count().abs_diff(50) <= 1, "{}", p.frame_count());
        assert!((p.duration_ms() as i64 - 1000).abs() <= 20);
        let f = frequency(p.pcm());
        assert!((f - 1000.0).abs() < 5.0, "{f} Hz");
        // Both channels carry the same sine: the mix keeps its level (0.5 ≈ 16384).
        let peak = peak(p.pcm());
        assert!((15_500..=17_000).contains(&peak), "{peak}");
    }

    #[test]
    fn float_44k1_loads_at_8k() {
        let spec = WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let p = Prompt::from_wav(&sine_wav(spec, 0.5, 1000.0, 0.25)[..]).unwrap();
        assert!(p.frame_count().abs_diff(25) <= 1, "{}", p.frame_count());
        let f = frequency(p.pcm());
        assert!((f - 1000.0).abs() < 5.0, "{f} Hz");
    }

    #[test]
    fn tones_above_4k_are_filtered_out() {
        // 6 kHz cannot exist at 8 kHz: a proper resampler removes it instead of
        // folding it down to 2 kHz.
        let spec = WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 24,
            sample_format: SampleFormat::Int,
        };
        let p = Prompt::from_wav(&sine_wav(spec, 0.5, 6000.0, 0.5)[..]).unwrap();
        assert!(peak(p.pcm()) < 200, "{}", peak(p.pcm()));
    }

    #[test]
    fn eight_bit_and_8k_16_bit_load_exactly() {
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut bytes = Vec::new();
        let mut w = WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
        let samples: Vec<i16> = (0..500)
            .map(|i| (i * 131 % 65_536 - 32_768) as i16)
            .collect();
        for &s in &samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let p = Prompt::from_wav(&bytes[..]).unwrap();
        assert_eq!(p.pcm(), &samples[..]);

        let spec = WavSpec {
            bits_per_sample: 8,
            ..spec
        };
        let p = Prompt::from_wav(&sine_wav(spec, 0.2, 1000.0, 0.5)[..]).unwrap();
        assert_eq!(p.pcm().len(), 1600);
    }

    #[test]
    fn frames_are_padded_with_silence_and_encoded_in_both_laws() {
        let pcm: Vec<i16> = (0..170).map(|i| i * 100).collect();
        let p = Prompt::from_pcm(pcm.clone());
        assert_eq!(p.frame_count(), 2);
        assert_eq!(p.duration_ms(), 21);
        for law in [Law::Mu, Law::A] {
            let frames = p.frames(law);
            assert_eq!(frames.len(), 2);
            let flat: Vec<u8> = frames.iter().flatten().copied().collect();
            for (i, &s) in pcm.iter().enumerate() {
                assert_eq!(flat[i], law.encode(s));
            }
            assert!(flat[170..].iter().all(|&c| c == law.silence()));
        }
    }

    #[test]
    fn garbage_and_truncated_wavs_are_errors() {
        assert!(Prompt::from_wav(&[][..]).is_err());
        assert!(Prompt::from_wav(&b"RIFF\x10\0\0\0WAVEjunkjunkjunk"[..]).is_err());
        assert!(Prompt::from_wav(&[0x55u8; 4096][..]).is_err());
        let spec = WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let good = sine_wav(spec, 0.1, 1000.0, 0.5);
        for cut in [1, 12, 20, 40, 44, good.len() / 2, good.len() - 1] {
            let r = Prompt::from_wav(&good[..cut]);
            assert!(r.is_err(), "cut at {cut} loaded");
        }
        // A header with no samples.
        let empty = sine_wav(spec, 0.0, 1000.0, 0.5);
        assert_eq!(
            Prompt::from_wav(&empty[..]),
            Err(MediaError::Wav("no samples"))
        );
        // An absurd sample rate is refused before any buffer is sized from it.
        let mut odd = good.clone();
        odd[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
        assert!(Prompt::from_wav(&odd[..]).is_err());
        // Every byte flipped in turn: an error or a prompt, never a panic.
        for i in 0..64 {
            let mut bad = good.clone();
            bad[i] ^= 0xFF;
            let _ = Prompt::from_wav(&bad[..]);
        }
    }

    fn prompts_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../prompts")
    }

    #[test]
    fn rendered_prompts_load() {
        let dir = prompts_dir().join("es");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wav") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let p =
                Prompt::from_wav(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(p.frame_count() > 0, "{}", path.display());
            loaded += 1;
        }
        assert!(loaded >= 20, "only {loaded} prompts in {}", dir.display());

        let beep = std::fs::read(dir.join("beep.wav")).unwrap();
        let beep = Prompt::from_wav(&beep[..]).unwrap();
        assert!(beep.duration_ms().abs_diff(400) <= 20, "{:?}", beep);
        let f = frequency(beep.pcm());
        assert!((f - 1000.0).abs() < 10.0, "beep at {f} Hz");
    }

    #[test]
    fn languages_parse_and_print() {
        for lang in Lang::ALL {
            assert_eq!(lang.as_str().parse::<Lang>(), Ok(lang));
            assert_eq!(lang.to_string(), lang.as_str());
            assert_eq!(lang.other().other(), lang);
        }
        assert_eq!("en".parse::<Lang>(), Err(MediaError::UnknownLanguage));
        assert_eq!("ES".parse::<Lang>(), Err(MediaError::UnknownLanguage));
    }

    #[test]
    fn library_falls_back_to_the_other_language() {
        let welcome = Arc::new(Prompt::from_pcm(vec![1; 160]));
        let menu_es = Arc::new(Prompt::from_pcm(vec![2; 160]));
        let menu_qu = Arc::new(Prompt::from_pcm(vec![3; 160]));
        let mut lib = PromptLibrary::new();
        assert!(lib.is_empty());
        lib.insert(Lang::Es, "welcome", Arc::clone(&welcome));
        lib.insert(Lang::Es, "main-menu", Arc::clone(&menu_es));
        lib.insert(Lang::Qu, "main-menu", Arc::clone(&menu_qu));
        assert_eq!(lib.len(), 3);

        let l = lib.get(Lang::Qu, "main-menu").unwrap();
        assert!(Arc::ptr_eq(&l.prompt, &menu_qu));
        assert_eq!((l.lang, l.fallback), (Lang::Qu, false));

        let l = lib.get(Lang::Qu, "welcome").unwrap();
        assert!(Arc::ptr_eq(&l.prompt, &welcome));
        assert_eq!((l.lang, l.fallback), (Lang::Es, true));

        assert!(lib.get(Lang::Es, "goodbye").is_none());

        assert_eq!(
            lib.missing(&Lang::ALL, &["welcome", "main-menu", "goodbye"]),
            [
                (Lang::Es, "goodbye".to_owned()),
                (Lang::Qu, "welcome".to_owned()),
                (Lang::Qu, "goodbye".to_owned()),
            ]
        );
        let mut ids: Vec<_> = lib.ids(Lang::Es).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["main-menu", "welcome"]);
    }

    #[test]
    fn real_library_has_every_prompt_in_both_languages() {
        let mut lib = PromptLibrary::new();
        let mut ids = Vec::new();
        for lang in Lang::ALL {
            let dir = prompts_dir().join(lang.as_str());
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if path.extension().is_none_or(|e| e != "wav") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                lib.insert(lang, id, Arc::new(Prompt::from_wav(&bytes[..]).unwrap()));
                ids.push(id.to_owned());
            }
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(lib.missing(&Lang::ALL, &ids), []);
    }
}
