//! Audio of the tests: 16-bit PCM WAV files read by hand (no WAV crate among the
//! package's dependencies), the repository's prompts, and finding one signal in another.

use std::path::Path;

use super::workspace_root;

/// A 16-bit PCM WAV file, parsed by hand (no WAV crate among this package's dependencies).
#[derive(Debug)]
pub(crate) struct Wav {
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    pub(crate) bits: u16,
    pub(crate) samples: Vec<i16>,
}

impl Wav {
    pub(crate) fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0
            / f64::from(self.sample_rate)
            / f64::from(self.channels.max(1))
    }
}

/// Reads a WAV file and checks that its header agrees with its length: the RIFF size is the
/// file's length less 8, the data chunk runs to the end of the file.
pub(crate) fn read_wav(path: &Path) -> Result<Wav, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{}: not a RIFF/WAVE file", path.display()));
    }
    let riff = u32_at(4) as usize;
    if riff + 8 != bytes.len() {
        return Err(format!(
            "{}: RIFF size {riff} but the file has {} bytes (expected {})",
            path.display(),
            bytes.len(),
            bytes.len() - 8
        ));
    }
    let mut fmt = None;
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let size = u32_at(i + 4) as usize;
        let body = i + 8;
        if id == b"fmt " {
            if size < 16 || body + size > bytes.len() {
                return Err(format!("{}: short fmt chunk", path.display()));
            }
            let tag = u16_at(body);
            if tag != 1 && tag != 0xFFFE {
                return Err(format!("{}: format tag {tag:#x}, not PCM", path.display()));
            }
            fmt = Some((u16_at(body + 2), u32_at(body + 4), u16_at(body + 14)));
        } else if id == b"data" {
            let (channels, sample_rate, bits) =
                fmt.ok_or_else(|| format!("{}: data before fmt", path.display()))?;
            if bits != 16 {
                return Err(format!("{}: {bits}-bit samples", path.display()));
            }
            if body + size != bytes.len() {
                return Err(format!(
                    "{}: data chunk of {size} bytes at {body}, file of {} bytes",
                    path.display(),
                    bytes.len()
                ));
            }
            if !size.is_multiple_of(2) {
                return Err(format!("{}: odd data size {size}", path.display()));
            }
            let samples = bytes[body..body + size]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return Ok(Wav {
                sample_rate,
                channels,
                bits,
                samples,
            });
        }
        i = body + size + (size & 1);
    }
    Err(format!("{}: no data chunk", path.display()))
}

/// A prompt file of the repository.
pub(crate) fn prompt(lang: &str, id: &str) -> Wav {
    let path = workspace_root()
        .join("prompts")
        .join(lang)
        .join(format!("{id}.wav"));
    let wav = read_wav(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (wav.sample_rate, wav.channels, wav.bits),
        (8000, 1, 16),
        "{} is not 8 kHz mono 16-bit",
        path.display()
    );
    wav
}

/// Where `probe` best matches in `signal` (normalised cross-correlation), and how well (1.0:
/// the same shape).
pub(crate) fn best_match(signal: &[i16], probe: &[i16]) -> Option<(usize, f64)> {
    if signal.len() < probe.len() || probe.is_empty() {
        return None;
    }
    let p: Vec<f64> = probe.iter().map(|&v| f64::from(v)).collect();
    let p_energy: f64 = p.iter().map(|v| v * v).sum();
    let s: Vec<f64> = signal.iter().map(|&v| f64::from(v)).collect();
    let mut window_energy: f64 = s[..p.len()].iter().map(|v| v * v).sum();
    let mut best: Option<(usize, f64)> = None;
    for lag in 0..=s.len() - p.len() {
        if lag > 0 {
            let out = s[lag - 1];
            let inn = s[lag + p.len() - 1];
            window_energy += inn * inn - out * out;
        }
        if window_energy <= 1.0 {
            continue;
        }
        let dot: f64 = s[lag..lag + p.len()]
            .iter()
            .zip(&p)
            .map(|(a, b)| a * b)
            .sum();
        let score = dot / (p_energy * window_energy.max(0.0)).sqrt();
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((lag, score));
        }
    }
    best
}
