//! The recorder: 8 kHz 16-bit PCM WAV files (via `hound`) that survive a crash.
//!
//! This is the one module of the crate that touches the file system. It never
//! reads a clock and never fsyncs on the packet path.
//!
//! # Life of a recording
//! 1. [`Recorder::create`] makes `<dir>/<id>.wav.part` (and any missing
//!    directories), writes the WAV header and fsyncs the file and its directory,
//!    so that the `.part` exists after a power cut. It blocks for an fsync or
//!    two: call it where blocking is allowed (`spawn_blocking`).
//! 2. [`write_frame`](Recorder::write_frame) (mono: a message) or
//!    [`write_stereo`](Recorder::write_stereo) (two channels: a conversation,
//!    caller left, operator right) and [`write_silence`](Recorder::write_silence)
//!    append samples to a 16 KiB buffer; no system call for most frames, no
//!    allocation.
//! 3. About once a second the shell calls [`maybe_refresh`](Recorder::maybe_refresh)
//!    (or [`refresh_header`](Recorder::refresh_header)): the buffer is written out
//!    and the RIFF and data sizes in the header are brought up to date (hound's
//!    `flush`), so a killed process leaves a playable file up to the last refresh.
//!    The shell then calls `sync_data()` on the [`sync_handle`](Recorder::sync_handle)
//!    from a background task, so that the refresh also survives a power cut.
//! 4. [`finish`](Recorder::finish) finalises the header, fsyncs the file, renames
//!    `.wav.part` to `.wav`, fsyncs the directory and hashes the file (SHA-256).
//!    It blocks like `create`.
//!
//! # When things go wrong
//! - An I/O error (a full disk, a quota, a failing device) is returned as
//!   [`RecorderError::Io`], never a panic, and the `.part` is kept. After a
//!   failed write the recorder takes no more audio (every write returns
//!   [`RecorderError::Stopped`]); [`finish`](Recorder::finish) then salvages what
//!   reached the disk, as [`repair`] does.
//! - A `Recorder` dropped without `finish` (a panicking call task) leaves its
//!   `.part` with an up-to-date header.
//! - A process killed (or a machine that lost power) leaves a `.part` whose header
//!   is at least as recent as the last refresh. At start-up [`scan_and_repair`]
//!   finds every `*.wav.part`, sets the sizes from the file length (dropping a
//!   trailing partial sample), and renames it to `.wav`. A `.part` whose header
//!   cannot be read is renamed `.wav.broken`, never deleted.
//! - Nothing is ever overwritten: a `.wav` of the same name is an error, and the
//!   rename is a hard link then an unlink (a plain no-clobber check and rename on
//!   file systems without hard links).
//!
//! A WAV file holds at most 4 GiB of samples: 74 hours of a message, 37 of a
//! conversation. Beyond that writes return [`RecorderError::TooLong`]; the
//! shell's [`MaxLength`](crate::silence::MaxLength) stops recordings long before.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavSpec, WavWriter};
use sha2::{Digest, Sha256};

/// The sample rate of every recording (G.711's).
pub const SAMPLE_RATE: u32 = 8000;
/// The suffix of a recording being written.
pub const PART_SUFFIX: &str = ".wav.part";
/// The suffix of a finished recording.
pub const WAV_SUFFIX: &str = ".wav";
/// The suffix a `.part` that cannot be repaired is renamed to.
pub const BROKEN_SUFFIX: &str = ".wav.broken";
/// The default of [`Recorder::set_refresh_interval`]: one second of audio.
pub const DEFAULT_REFRESH_INTERVAL: u32 = SAMPLE_RATE;

/// Bytes buffered between system calls: 1 s of a message, 0.5 s of a conversation.
const BUFFER_BYTES: usize = 16 * 1024;
/// Samples handed to hound per call; its sample buffer is sized for this once.
const CHUNK: usize = 1920;
/// A block of silence to write from.
static ZEROS: [i16; CHUNK] = [0; CHUNK];
/// How much of a `.part` is read to find its data chunk.
const HEADER_PROBE: usize = 4096;

/// Where a recording ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The `.wav` file.
    pub path: PathBuf,
    /// Its duration, in milliseconds (rounded down).
    pub duration_ms: u64,
    /// Its size in bytes, header included.
    pub bytes: u64,
    /// The SHA-256 of the whole file, lowercase hex.
    pub sha256_hex: String,
}

/// What can go wrong while recording or repairing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A file-system operation failed; the `.part` (if there is one) is kept.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"write"`, `"fsync"`, `"rename"`, …).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The error of the operating system.
        #[source]
        source: io::Error,
    },
    /// An earlier write failed; this recorder takes no more audio.
    /// [`Recorder::finish`] salvages what reached the disk.
    #[error("recording {} stopped after a write error", path.display())]
    Stopped {
        /// The `.part` file.
        path: PathBuf,
    },
    /// The 4 GiB limit of a WAV file would be passed; nothing was written.
    #[error("recording {} reached the 4 GiB limit of WAV", path.display())]
    TooLong {
        /// The `.part` file.
        path: PathBuf,
    },
    /// A mono write to a stereo recording or the other way round; nothing was written.
    #[error("recording {} has {channels} channel(s)", path.display())]
    Channels {
        /// The `.part` file.
        path: PathBuf,
        /// The channels of the recording.
        channels: u16,
    },
    /// Only 1 (message) or 2 (conversation) channels are recorded.
    #[error("unsupported channel count {0}")]
    UnsupportedChannels(u16),
    /// An id that is not a plain file name (empty, `.`, `..`, or containing `/`, `\` or NUL).
    #[error("invalid recording id {0:?}")]
    InvalidId(String),
    /// [`repair`] was given a path that does not end in `.wav.part`.
    #[error("{} is not a .wav.part file", .0.display())]
    NotAPart(PathBuf),
    /// A `.part` whose header cannot be read: it was renamed, not deleted.
    #[error("{} cannot be repaired ({reason}); kept as {}", part.display(), kept.display())]
    Broken {
        /// The `.part` it was.
        part: PathBuf,
        /// Where its bytes are now (`<id>.wav.broken`).
        kept: PathBuf,
        /// Why it could not be repaired.
        reason: &'static str,
    },
}

impl RecorderError {
    /// Whether this is the disk (or a quota, or the file-size limit) being full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. } if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
        ))
    }

    /// The file or directory the error is about, if there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::Stopped { path }
            | Self::TooLong { path }
            | Self::Channels { path, .. }
            | Self::NotAPart(path) => Some(path),
            Self::Broken { kept, .. } => Some(kept),
            Self::UnsupportedChannels(_) | Self::InvalidId(_) => None,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RecorderError {
    let path = path.to_path_buf();
    move |source| RecorderError::Io { op, path, source }
}

/// hound's errors are I/O errors, or misuse we rule out before calling it.
fn from_hound(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other),
    }
}

/// One recording being written. See the [module docs](self).
pub struct Recorder {
    writer: WavWriter<BufWriter<File>>,
    /// A second handle on the file, for fsync.
    file: File,
    dir: PathBuf,
    part: PathBuf,
    wav: PathBuf,
    channels: u16,
    /// Sample frames (one sample per channel) written so far.
    frames: u32,
    /// The largest `frames` the file can hold.
    max_frames: u32,
    /// `frames` at the last header refresh.
    refreshed: u32,
    refresh_interval: u32,
    stopped: bool,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("part", &self.part)
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .field("refreshed", &self.refreshed)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start `<dir>/<id>.wav.part`, 8 kHz 16-bit PCM with `channels` channels (1 for a
    /// message, 2 for a conversation), creating `dir` and its missing parents.
    ///
    /// Fails if `<id>.wav.part` or `<id>.wav` exists already. The header is on disk
    /// and fsynced, with the file's directory entry, when this returns.
    pub fn create(dir: &Path, id: &str, channels: u16) -> Result<Self, RecorderError> {
        if !matches!(channels, 1 | 2) {
            return Err(RecorderError::UnsupportedChannels(channels));
        }
        if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\\', '\0']) {
            return Err(RecorderError::InvalidId(id.to_owned()));
        }
        create_dir_all_synced(dir).map_err(io_err("create directory", dir))?;
        let wav = dir.join(format!("{id}{WAV_SUFFIX}"));
        let part = dir.join(format!("{id}{PART_SUFFIX}"));
        if fs::symlink_metadata(&wav).is_ok() {
            return Err(RecorderError::Io {
                op: "create",
                path: wav,
                source: io::ErrorKind::AlreadyExists.into(),
            });
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(io_err("create", &part))?;
        match Self::start(file, dir, &part, channels) {
            Ok((writer, file)) => {
                let block = u32::from(channels) * 2;
                // The RIFF size (data + 36) is a u32 too.
                let max_frames = (u32::MAX - 36) / block;
                Ok(Self {
                    writer,
                    file,
                    dir: dir.to_path_buf(),
                    part,
                    wav,
                    channels,
                    frames: 0,
                    max_frames,
                    refreshed: 0,
                    refresh_interval: DEFAULT_REFRESH_INTERVAL,
                    stopped: false,
                })
            }
            Err(e) => {
                // No audio in it yet: do not leave an empty `.part` to be found broken.
                let _ = fs::remove_file(&part);
                Err(e)
            }
        }
    }

    fn start(
        file: File,
        dir: &Path,
        part: &Path,
        channels: u16,
    ) -> Result<(WavWriter<BufWriter<File>>, File), RecorderError> {
        let sync = file.try_clone().map_err(io_err("clone handle", part))?;
        let spec = WavSpec {
            channels,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut writer = WavWriter::new(BufWriter::with_capacity(BUFFER_BYTES, file), spec)
            .map_err(|e| io_err("write header", part)(from_hound(e)))?;
        // Size hound's sample buffer once; every write is at most this long.
        let _ = writer.get_i16_writer(CHUNK as u32);
        writer
            .flush()
            .map_err(|e| io_err("write header", part)(from_hound(e)))?;
        sync.sync_all().map_err(io_err("fsync", part))?;
        sync_dir(dir).map_err(io_err("fsync directory", dir))?;
        Ok((writer, sync))
    }

    /// Append mono samples (a message). Buffered: no system call for most frames.
    pub fn write_frame(&mut self, samples: &[i16]) -> Result<(), RecorderError> {
        self.check(1, samples.len())?;
        self.write_samples(samples, samples.len())
    }

    /// Append a stereo frame (a conversation): `left` is the caller, `right` the
    /// operator. If one is shorter, it is padded with silence to the other's length.
    pub fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), RecorderError> {
        let frames = left.len().max(right.len());
        self.check(2, frames)?;
        let mut start = 0;
        while start < frames {
            let end = (start + CHUNK / 2).min(frames);
            let mut w = self.writer.get_i16_writer(((end - start) * 2) as u32);
            for i in start..end {
                w.write_sample(left.get(i).copied().unwrap_or(0));
                w.write_sample(right.get(i).copied().unwrap_or(0));
            }
            if let Err(e) = w.flush() {
                return Err(self.fail("write", e));
            }
            start = end;
        }
        self.frames += frames as u32;
        Ok(())
    }

    /// Append interleaved samples (left, right, left, ... for two channels), as a
    /// [`RecordSink`](crate::sink::RecordSink) gathers them. A trailing partial
    /// sample frame is an error, nothing written.
    pub fn write_interleaved(&mut self, samples: &[i16]) -> Result<(), RecorderError> {
        let channels = usize::from(self.channels);
        if !samples.len().is_multiple_of(channels) {
            return Err(RecorderError::Channels {
                path: self.part.clone(),
                channels: self.channels,
            });
        }
        let frames = samples.len() / channels;
        self.check(self.channels, frames)?;
        self.write_samples(samples, frames)
    }

    /// Writes checked samples (interleaved) that make `frames` sample frames.
    fn write_samples(&mut self, samples: &[i16], frames: usize) -> Result<(), RecorderError> {
        for chunk in samples.chunks(CHUNK) {
            let mut w = self.writer.get_i16_writer(chunk.len() as u32);
            for &s in chunk {
                w.write_sample(s);
            }
            if let Err(e) = w.flush() {
                return Err(self.fail("write", e));
            }
        }
        self.frames += frames as u32;
        Ok(())
    }

    /// Append `frames` samples of silence on every channel (a gap the reorder
    /// buffer filled, or suppressed silence).
    pub fn write_silence(&mut self, frames: u32) -> Result<(), RecorderError> {
        let channels = self.channels;
        self.check(channels, frames as usize)?;
        let mut left = frames as usize * usize::from(channels);
        while left > 0 {
            let n = left.min(CHUNK);
            let mut w = self.writer.get_i16_writer(n as u32);
            for &s in &ZEROS[..n] {
                w.write_sample(s);
            }
            if let Err(e) = w.flush() {
                return Err(self.fail("write", e));
            }
            left -= n;
        }
        self.frames += frames;
        Ok(())
    }

    /// Write out the buffer and bring the header sizes up to date (hound's `flush`),
    /// so the file on disk is a valid WAV of everything written so far: the buffered
    /// audio, two 4-byte header writes and four seeks (about 1.5 µs); no fsync (see
    /// [`sync_handle`](Self::sync_handle)).
    pub fn refresh_header(&mut self) -> Result<(), RecorderError> {
        if self.stopped {
            return Err(self.stopped_error());
        }
        if let Err(e) = self.writer.flush() {
            return Err(self.fail("refresh header", e));
        }
        self.refreshed = self.frames;
        Ok(())
    }

    /// [`refresh_header`](Self::refresh_header) if at least the refresh interval
    /// (one second of audio by default) was written since the last refresh. Returns
    /// whether it refreshed: the moment to have the sync handle `sync_data()`.
    pub fn maybe_refresh(&mut self) -> Result<bool, RecorderError> {
        if self.frames - self.refreshed < self.refresh_interval {
            return Ok(false);
        }
        self.refresh_header().map(|()| true)
    }

    /// Refresh after this many sample frames (at least 1); 8000 is one second.
    pub fn set_refresh_interval(&mut self, frames: u32) {
        self.refresh_interval = frames.max(1);
    }

    /// A second handle on the `.part`, for a background task to call `sync_data()`
    /// on after each refresh (fdatasync takes milliseconds: never on the packet path).
    pub fn sync_handle(&self) -> Result<File, RecorderError> {
        self.file
            .try_clone()
            .map_err(io_err("clone handle", &self.part))
    }

    /// The `.part` being written.
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// Where [`finish`](Self::finish) will put the recording.
    pub fn final_path(&self) -> &Path {
        &self.wav
    }

    /// 1 or 2.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample frames written (one sample per channel); 8000 is one second.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Sample frames the header on disk accounts for (as of the last refresh).
    pub fn refreshed_frames(&self) -> u32 {
        self.refreshed
    }

    /// The duration written so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.frames) * 1000 / u64::from(SAMPLE_RATE)
    }

    /// Whether an earlier write failed (see [`RecorderError::Stopped`]).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Finalise the header, fsync, rename `.wav.part` to `.wav`, fsync the
    /// directory and hash the file. Blocks (two fsyncs and a read of the file).
    ///
    /// On an error the file is kept (as `.part` unless the rename was done).
    /// After an earlier write error this salvages what reached the disk, as
    /// [`repair`] does.
    pub fn finish(self) -> Result<Finished, RecorderError> {
        let Self {
            writer,
            file,
            dir,
            part,
            wav,
            frames,
            stopped,
            ..
        } = self;
        if stopped {
            drop(writer);
            drop(file);
            return repair(&part);
        }
        writer
            .finalize()
            .map_err(|e| io_err("finalize header", &part)(from_hound(e)))?;
        file.sync_all().map_err(io_err("fsync", &part))?;
        drop(file);
        publish(&part, &wav).map_err(io_err("rename", &part))?;
        sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
        let (bytes, sha256_hex) = hash_file(&wav).map_err(io_err("hash", &wav))?;
        Ok(Finished {
            path: wav,
            duration_ms: u64::from(frames) * 1000 / u64::from(SAMPLE_RATE),
            bytes,
            sha256_hex,
        })
    }

    /// Refuse a write of `frames` sample frames to a recording of the wrong shape,
    /// a stopped one, or one that would pass 4 GiB.
    fn check(&self, channels: u16, frames: usize) -> Result<(), RecorderError> {
        if self.stopped {
            return Err(self.stopped_error());
        }
        if channels != self.channels {
            return Err(RecorderError::Channels {
                path: self.part.clone(),
                channels: self.channels,
            });
        }
        if frames > (self.max_frames - self.frames) as usize {
            return Err(RecorderError::TooLong {
                path: self.part.clone(),
            });
        }
        Ok(())
    }

    fn stopped_error(&self) -> RecorderError {
        RecorderError::Stopped {
            path: self.part.clone(),
        }
    }

    fn fail(&mut self, op: &'static str, e: hound::Error) -> RecorderError {
        self.stopped = true;
        RecorderError::Io {
            op,
            path: self.part.clone(),
            source: from_hound(e),
        }
    }
}

/// Finish a `.wav.part` left by a crash: set the RIFF and data sizes from the file
/// length (cutting a trailing partial sample frame), fsync, rename to `.wav`,
/// fsync the directory, hash.
///
/// A `.part` too short to hold a header, or whose header is not 16-bit PCM WAV, is
/// renamed `<id>.wav.broken` (never deleted) and reported as
/// [`RecorderError::Broken`]. A header-only `.part` becomes an empty `.wav`.
pub fn repair(part: &Path) -> Result<Finished, RecorderError> {
    let name = part.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(stem) = name.strip_suffix(PART_SUFFIX) else {
        return Err(RecorderError::NotAPart(part.to_path_buf()));
    };
    let dir = part.parent().unwrap_or(Path::new(""));
    let wav = dir.join(format!("{stem}{WAV_SUFFIX}"));

    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(part)
        .map_err(io_err("open", part))?;
    let len = file.metadata().map_err(io_err("stat", part))?.len();
    let mut head = Vec::with_capacity(HEADER_PROBE);
    (&mut file)
        .take(HEADER_PROBE as u64)
        .read_to_end(&mut head)
        .map_err(io_err("read", part))?;
    let header = match parse_header(&head) {
        Ok(h) => h,
        Err(reason) => {
            drop(file);
            return Err(set_aside(part, dir, stem, reason));
        }
    };

    let block = u64::from(header.block_align);
    let max_data = u64::from((u32::MAX - 36) / header.block_align * header.block_align);
    let data = len - header.data_offset;
    let data = if data > max_data {
        // Never cut audio: bytes past what a WAV can hold stay after the chunk.
        max_data
    } else {
        let whole = data / block * block;
        if whole != data {
            file.set_len(header.data_offset + whole)
                .map_err(io_err("truncate", part))?;
        }
        whole
    };
    let riff = header.data_offset - 8 + data;
    let riff = u32::try_from(riff).unwrap_or(u32::MAX);
    let write_sizes = |file: &mut File| -> io::Result<()> {
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&riff.to_le_bytes())?;
        file.seek(SeekFrom::Start(header.data_offset - 4))?;
        file.write_all(&(data as u32).to_le_bytes())?;
        file.sync_all()
    };
    write_sizes(&mut file).map_err(io_err("write header", part))?;
    drop(file);
    publish(part, &wav).map_err(io_err("rename", part))?;
    sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    let (bytes, sha256_hex) = hash_file(&wav).map_err(io_err("hash", &wav))?;
    let frames = data / block;
    Ok(Finished {
        path: wav,
        duration_ms: frames * 1000 / u64::from(header.sample_rate),
        bytes,
        sha256_hex,
    })
}

/// Repair every `*.wav.part` under `root` (recursively; symbolic links are not
/// followed), for start-up. A missing `root` is an empty list; an unreadable
/// directory is an `Err` entry and the walk goes on. Results are in path order.
///
/// With recordings on storage shared by several nodes, a node must not repair the
/// `.part` another node is still writing: use [`scan_and_repair_with`] and a filter
/// (ids that carry the node's name, or one root per node).
pub fn scan_and_repair(root: &Path) -> Vec<Result<Finished, RecorderError>> {
    scan_and_repair_with(root, |_| true)
}

/// [`scan_and_repair`] for the `.part` files `filter` accepts.
pub fn scan_and_repair_with(
    root: &Path,
    mut filter: impl FnMut(&Path) -> bool,
) -> Vec<Result<Finished, RecorderError>> {
    let mut parts = Vec::new();
    let mut results = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir == root => continue,
            Err(e) => {
                results.push(Err(io_err("scan", &dir)(e)));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    results.push(Err(io_err("scan", &dir)(e)));
                    continue;
                }
            };
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(path),
                Ok(t) if t.is_file() => {
                    let is_part = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(PART_SUFFIX));
                    if is_part && filter(&path) {
                        parts.push(path);
                    }
                }
                Ok(_) => {}
                Err(e) => results.push(Err(io_err("scan", &path)(e))),
            }
        }
    }
    parts.sort();
    results.extend(parts.iter().map(|p| repair(p)));
    results
}

/// What [`repair`] needs from a header.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// The offset of the first sample.
    data_offset: u64,
    block_align: u32,
    sample_rate: u32,
}

fn parse_header(b: &[u8]) -> Result<Header, &'static str> {
    const TOO_SHORT: &str = "too short to hold a WAV header";
    let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |i: usize| {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    if b.len() < 12 {
        return Err(TOO_SHORT);
    }
    if &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("no RIFF/WAVE signature");
    }
    let mut pos = 12;
    let mut format = None;
    loop {
        let (Some(id), Some(size)) = (b.get(pos..pos + 4), u32_at(pos + 4)) else {
            return Err(TOO_SHORT);
        };
        let body = pos + 8;
        match id {
            b"fmt " => {
                let (Some(tag), Some(channels), Some(rate), Some(align), Some(bits)) = (
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 12),
                    u16_at(body + 14),
                ) else {
                    return Err(TOO_SHORT);
                };
                let pcm = tag == 1 || tag == 0xFFFE;
                if size < 16 || !pcm || bits != 16 || !(1..=2).contains(&channels) {
                    return Err("fmt chunk is not 16-bit PCM, mono or stereo");
                }
                if rate == 0 || align != channels * 2 {
                    return Err("fmt chunk is inconsistent");
                }
                format = Some((u32::from(align), rate));
            }
            b"data" => {
                let Some((block_align, sample_rate)) = format else {
                    return Err("data chunk before fmt chunk");
                };
                return Ok(Header {
                    data_offset: body as u64,
                    block_align,
                    sample_rate,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body + size as usize + (size as usize & 1);
        if pos >= HEADER_PROBE {
            return Err("no data chunk near the start");
        }
    }
}

/// Rename a `.part` that cannot be repaired to `<stem>.wav.broken` (or
/// `.wav.broken.N` if that exists) and report it.
fn set_aside(part: &Path, dir: &Path, stem: &str, reason: &'static str) -> RecorderError {
    for n in 0..1000 {
        let kept = if n == 0 {
            dir.join(format!("{stem}{BROKEN_SUFFIX}"))
        } else {
            dir.join(format!("{stem}{BROKEN_SUFFIX}.{n}"))
        };
        match publish(part, &kept) {
            Ok(()) => {
                if let Err(e) = sync_dir(dir) {
                    return io_err("fsync directory", dir)(e);
                }
                return RecorderError::Broken {
                    part: part.to_path_buf(),
                    kept,
                    reason,
                };
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return io_err("rename", part)(e),
        }
    }
    io_err("rename", part)(io::ErrorKind::AlreadyExists.into())
}

/// Rename `from` to `to` without ever replacing an existing `to`: a hard link then
/// an unlink. A crash between the two leaves both names on one file, which the next
/// call completes. On file systems without hard links: a check, then a rename.
fn publish(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if same_file(from, to)? {
                fs::remove_file(from)
            } else {
                Err(e)
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
            ) =>
        {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (fs::symlink_metadata(a)?, fs::symlink_metadata(b)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}

/// fsync a directory, so that the entries made or renamed in it survive a power cut.
fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// `create_dir_all`, fsyncing the parent of every directory it makes.
fn create_dir_all_synced(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new(""));
    create_dir_all_synced(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        // Made by someone else meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The length and SHA-256 (lowercase hex) of a file.
fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let mut hex = String::with_capacity(64);
    for b in hasher.finalize() {
        use fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    Ok((bytes, hex))
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;

    use super::*;

    #[test]
    fn interleaved_stereo_lands_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "inter", 2).unwrap();
        rec.write_interleaved(&[1, -1, 2, -2]).unwrap();
        assert!(
            rec.write_interleaved(&[3]).is_err(),
            "half a frame is refused"
        );
        let done = rec.finish().unwrap();
        let bytes = std::fs::read(&done.path).unwrap();
        let samples: Vec<i16> = bytes[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(samples, vec![1, -1, 2, -2]);
    }

    /// 20 ms of a 1 kHz tone, continuing from sample `n0`.
    fn tone(n0: usize, len: usize) -> Vec<i16> {
        (n0..n0 + len)
            .map(|n| ((TAU * 1000.0 * n as f32 / 8000.0).sin() * 12_000.0) as i16)
            .collect()
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let samples = r.samples::<i16>().map(Result::unwrap).collect();
        (spec, samples)
    }

    fn sha_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A finished mono recording of `frames` 20 ms frames, as bytes.
    fn recorded(frames: usize) -> (Vec<u8>, Vec<i16>) {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "src", 1).unwrap();
        let samples = tone(0, frames * 160);
        for f in samples.chunks(160) {
            rec.write_frame(f).unwrap();
        }
        let done = rec.finish().unwrap();
        (fs::read(done.path).unwrap(), samples)
    }

    #[test]
    fn finish_gives_duration_size_and_sha256() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("recordings/2025/01/31");
        let mut rec = Recorder::create(&dir, "call-1", 1).unwrap();
        assert!(dir.join("call-1.wav.part").is_file());
        let samples = tone(0, 8000 * 3 + 80);
        for f in samples.chunks(160) {
            rec.write_frame(f).unwrap();
            rec.maybe_refresh().unwrap();
        }
        assert_eq!(rec.frames(), 24_080);
        assert_eq!(rec.refreshed_frames(), 24_000);
        let done = rec.finish().unwrap();
        assert_eq!(done.path, dir.join("call-1.wav"));
        assert!(!dir.join("call-1.wav.part").exists());
        assert_eq!(done.duration_ms, 3010);
        let bytes = fs::read(&done.path).unwrap();
        assert_eq!(done.bytes, bytes.len() as u64);
        assert_eq!(done.bytes, 44 + 2 * 24_080);
        assert_eq!(done.sha256_hex, sha_hex(&bytes));
        let (spec, back) = read_wav(&done.path);
        assert_eq!(
            spec,
            WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: SampleFormat::Int
            }
        );
        assert_eq!(back, samples);
    }

    #[test]
    fn stereo_interleaves_caller_left_operator_right_and_pads() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "conv", 2).unwrap();
        let left = tone(0, 160);
        let right: Vec<i16> = (0..160).map(|i| -i).collect();
        rec.write_stereo(&left, &right).unwrap();
        rec.write_stereo(&[7; 100], &[8; 160]).unwrap();
        rec.write_silence(40).unwrap();
        assert!(matches!(
            rec.write_frame(&[0; 160]),
            Err(RecorderError::Channels { channels: 2, .. })
        ));
        let done = rec.finish().unwrap();
        assert_eq!(done.duration_ms, 45);
        let (spec, back) = read_wav(&done.path);
        assert_eq!(spec.channels, 2);
        assert_eq!(back.len(), 2 * 360);
        for i in 0..160 {
            assert_eq!(back[2 * i], left[i]);
            assert_eq!(back[2 * i + 1], right[i]);
        }
        for i in 0..160 {
            assert_eq!(back[320 + 2 * i], if i < 100 { 7 } else { 0 });
            assert_eq!(back[320 + 2 * i + 1], 8);
        }
        assert!(back[640..].iter().all(|&s| s == 0));
    }

    #[test]
    fn long_frames_and_silence_are_chunked() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "long", 1).unwrap();
        let samples = tone(0, 5 * CHUNK + 7);
        rec.write_frame(&samples).unwrap();
        rec.write_silence(3 * CHUNK as u32 + 1).unwrap();
        assert!(matches!(
            rec.write_stereo(&[1], &[1]),
            Err(RecorderError::Channels { channels: 1, .. })
        ));
        let done = rec.finish().unwrap();
        let (_, back) = read_wav(&done.path);
        assert_eq!(back.len(), 8 * CHUNK + 8);
        assert_eq!(&back[..samples.len()], &samples[..]);
        assert!(back[samples.len()..].iter().all(|&s| s == 0));
    }

    #[test]
    fn refreshed_part_is_a_valid_wav_while_recording() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "live", 1).unwrap();
        let samples = tone(0, 160 * 60);
        for f in samples[..160 * 50].chunks(160) {
            rec.write_frame(f).unwrap();
        }
        assert!(rec.maybe_refresh().unwrap());
        assert!(!rec.maybe_refresh().unwrap());
        rec.sync_handle().unwrap().sync_data().unwrap();
        for f in samples[160 * 50..].chunks(160) {
            rec.write_frame(f).unwrap();
        }
        let (_, back) = read_wav(rec.part_path());
        assert_eq!(back, &samples[..8000]);
        let done = rec.finish().unwrap();
        assert_eq!(read_wav(&done.path).1, samples);
    }

    #[test]
    fn dropped_recorder_leaves_a_valid_part() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "dropped", 1).unwrap();
        let samples = tone(0, 1000);
        rec.write_frame(&samples).unwrap();
        let part = rec.part_path().to_path_buf();
        drop(rec);
        assert_eq!(read_wav(&part).1, samples);
        let done = repair(&part).unwrap();
        assert_eq!(done.duration_ms, 125);
        assert_eq!(read_wav(&done.path).1, samples);
    }

    #[test]
    fn repair_cuts_a_truncated_file_at_the_last_whole_sample() {
        let (bytes, samples) = recorded(10);
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("cut.wav.part");
        // Cut in the middle of sample 1000, with the header still saying 0 bytes of
        // data (as after a crash before the first refresh).
        let mut cut = bytes[..44 + 2 * 1000 + 1].to_vec();
        cut[4..8].copy_from_slice(&36u32.to_le_bytes());
        cut[40..44].copy_from_slice(&0u32.to_le_bytes());
        fs::write(&part, &cut).unwrap();
        let done = repair(&part).unwrap();
        assert_eq!(done.path, dir.path().join("cut.wav"));
        assert!(!part.exists());
        assert_eq!(done.duration_ms, 125);
        assert_eq!(done.bytes, 44 + 2000);
        let on_disk = fs::read(&done.path).unwrap();
        assert_eq!(done.sha256_hex, sha_hex(&on_disk));
        assert_eq!(read_wav(&done.path).1, &samples[..1000]);
    }

    #[test]
    fn repair_of_header_only_is_an_empty_wav() {
        let (bytes, _) = recorded(1);
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("empty.wav.part");
        fs::write(&part, &bytes[..44]).unwrap();
        let done = repair(&part).unwrap();
        assert_eq!(done.duration_ms, 0);
        assert_eq!(done.bytes, 44);
        assert!(read_wav(&done.path).1.is_empty());
    }

    #[test]
    fn repair_sets_aside_short_and_garbage_parts() {
        let (bytes, _) = recorded(1);
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, Vec<u8>); 4] = [
            ("zero", Vec::new()),
            ("short", bytes[..30].to_vec()),
            (
                "garbage",
                (0..5000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect(),
            ),
            (
                "text",
                b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0 not a format at all".to_vec(),
            ),
        ];
        for (id, content) in cases {
            let part = dir.path().join(format!("{id}.wav.part"));
            fs::write(&part, &content).unwrap();
            match repair(&part) {
                Err(RecorderError::Broken { part: p, kept, .. }) => {
                    assert_eq!(p, part);
                    assert_eq!(kept, dir.path().join(format!("{id}.wav.broken")));
                    assert_eq!(fs::read(&kept).unwrap(), content, "{id}: bytes kept");
                    assert!(!part.exists());
                }
                other => panic!("{id}: {other:?}"),
            }
        }
        // A second broken `.part` of the same id does not replace the first.
        let part = dir.path().join("zero.wav.part");
        fs::write(&part, b"x").unwrap();
        let Err(RecorderError::Broken { kept, .. }) = repair(&part) else {
            panic!("not broken");
        };
        assert_eq!(kept, dir.path().join("zero.wav.broken.1"));
        assert!(repair(&dir.path().join("x.wav")).is_err());
    }

    #[test]
    fn nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), "same", 1).unwrap();
        rec.write_frame(&tone(0, 160)).unwrap();
        // A second recorder with the same id cannot start.
        assert!(Recorder::create(dir.path(), "same", 1).is_err());
        let done = rec.finish().unwrap();
        assert!(Recorder::create(dir.path(), "same", 1).is_err());
        // A stray `.part` of a finished id is not renamed over the `.wav`.
        let part = dir.path().join("same.wav.part");
        fs::write(&part, fs::read(&done.path).unwrap()).unwrap();
        let err = repair(&part).unwrap_err();
        assert!(
            matches!(err, RecorderError::Io { op: "rename", .. }),
            "{err}"
        );
        assert!(part.exists());
        // Both names on one file (a crash between link and unlink) completes.
        fs::remove_file(&part).unwrap();
        fs::hard_link(&done.path, &part).unwrap();
        let again = repair(&part).unwrap();
        assert_eq!(again.sha256_hex, done.sha256_hex);
        assert!(!part.exists());
    }

    #[test]
    fn bad_ids_and_channels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["", ".", "..", "a/b", "../x", "a\0b"] {
            assert!(
                matches!(
                    Recorder::create(dir.path(), id, 1),
                    Err(RecorderError::InvalidId(_))
                ),
                "{id:?}"
            );
        }
        for channels in [0, 3] {
            assert!(matches!(
                Recorder::create(dir.path(), "x", channels),
                Err(RecorderError::UnsupportedChannels(_))
            ));
        }
    }

    #[test]
    fn unwritable_directory_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let ro = root.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        // The superuser ignores permission bits: then use /proc, where nobody
        // can create anything.
        let probe = ro.join("probe");
        let superuser = fs::write(&probe, b"").is_ok();
        let _ = fs::remove_file(&probe);
        let ro = if superuser {
            PathBuf::from("/proc/self")
        } else {
            ro
        };
        let err = Recorder::create(&ro.join("2025/01/31"), "a", 1).unwrap_err();
        assert!(
            matches!(
                err,
                RecorderError::Io {
                    op: "create directory",
                    ..
                }
            ),
            "{err}"
        );
        let err = Recorder::create(&ro, "a", 1).unwrap_err();
        assert!(
            matches!(err, RecorderError::Io { op: "create", .. }),
            "{err}"
        );
        assert!(!ro.join("a.wav.part").exists());
        // A directory under a file fails for anyone.
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = Recorder::create(&file.join("sub"), "a", 1).unwrap_err();
        assert!(matches!(err, RecorderError::Io { .. }), "{err}");
        assert!(err.path().is_some());
    }

    #[test]
    fn scan_finds_parts_in_the_tree() {
        let (bytes, samples) = recorded(5);
        let root = tempfile::tempdir().unwrap();
        let recordings = root.path().join("recordings");
        assert!(scan_and_repair(&recordings).is_empty());
        let a = recordings.join("2025/01/30");
        let b = recordings.join("2025/01/31");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("one.wav.part"), &bytes[..44 + 333]).unwrap();
        fs::write(b.join("two.wav.part"), &bytes).unwrap();
        fs::write(b.join("bad.wav.part"), b"RIFF").unwrap();
        fs::write(b.join("done.wav"), &bytes).unwrap();
        fs::write(b.join("other.part"), b"").unwrap();
        let results = scan_and_repair(&recordings);
        assert_eq!(results.len(), 3);
        let one = results[0].as_ref().unwrap();
        assert_eq!(one.path, a.join("one.wav"));
        assert_eq!(read_wav(&one.path).1, &samples[..166]);
        assert!(matches!(&results[1], Err(RecorderError::Broken { .. })));
        let two = results[2].as_ref().unwrap();
        assert_eq!(two.duration_ms, 100);
        assert_eq!(two.sha256_hex, sha_hex(&bytes));
        assert!(b.join("bad.wav.broken").exists());
        assert!(b.join("other.part").exists());
        assert!(scan_and_repair(&recordings).is_empty());
    }

    #[test]
    fn scan_filter_leaves_other_nodes_parts() {
        let (bytes, _) = recorded(1);
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("n1-a.wav.part"), &bytes).unwrap();
        fs::write(root.path().join("n2-a.wav.part"), &bytes).unwrap();
        let results = scan_and_repair_with(root.path(), |p| {
            p.file_name().unwrap().to_str().unwrap().starts_with("n1-")
        });
        assert_eq!(results.len(), 1);
        assert!(root.path().join("n1-a.wav").exists());
        assert!(root.path().join("n2-a.wav.part").exists());
    }
}
