//! The recorder against real process death and a real write error.
//!
//! The child is this test binary run again (`current_exe()`) with
//! `--exact crash_child` and [`CHILD_ENV`] set; without the variable that test
//! does nothing. The child records a 1 kHz tone frame by frame and reports on
//! stdout, after each call returns, `wrote N` and `refreshed N` (frames of 20 ms).
//!
//! - `killed_mid_recording_*`: the parent `SIGKILL`s the child at a frame that
//!   is not a refresh, reads what the child printed up to its death, and checks
//!   that the `.part` opens with hound as it is (the header refresh worked), and
//!   that `repair` makes a `.wav` holding at least every refreshed frame, at most
//!   the written ones, every sample the tone's. With a refresh every 50 frames
//!   (1 s) the 16 KiB buffer never reaches the disk between refreshes; with one
//!   every 150 frames it does, and `repair` recovers more than the header says.
//! - `write_error_is_reported_and_salvaged`: the child runs under `ulimit -f`
//!   (SIGXFSZ ignored), so a write past 32 KiB fails with EFBIG as a full disk
//!   would with ENOSPC: the error is returned, later writes are refused, and
//!   `finish` keeps what reached the disk.

#![cfg(unix)]

use std::f32::consts::TAU;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use hotline_media::recorder::{Recorder, RecorderError, repair};
use sha2::{Digest, Sha256};

/// `<mode>:<refresh every N frames>:<directory>` for the child.
const CHILD_ENV: &str = "HOTLINE_RECORDER_CRASH_CHILD";
const FRAME: usize = 160;
/// The child gives up here (it should be killed long before).
const CHILD_MAX_FRAMES: u64 = 100_000;

/// Sample `n` of the tone; the same in both processes.
fn tone(n: usize) -> i16 {
    ((TAU * (n % 8) as f32 / 8.0).sin() * 12_000.0) as i16
}

fn frame(index: u64) -> [i16; FRAME] {
    let start = index as usize * FRAME;
    std::array::from_fn(|i| tone(start + i))
}

#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // not the child
    };
    let mut fields = spec.splitn(3, ':');
    let (Some(mode), Some(every), Some(dir)) = (fields.next(), fields.next(), fields.next()) else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let every: u64 = every.parse().expect("refresh interval");
    let dir = Path::new(dir);
    match mode {
        "kill" => child_until_killed(dir, every),
        "full" => child_until_full(dir, every),
        other => panic!("unknown mode {other}"),
    }
}

fn child_until_killed(dir: &Path, every: u64) {
    let mut rec = Recorder::create(dir, "crash", 1).expect("create");
    for i in 0..CHILD_MAX_FRAMES {
        rec.write_frame(&frame(i)).expect("write");
        println!("wrote {}", i + 1);
        if (i + 1).is_multiple_of(every) {
            rec.refresh_header().expect("refresh");
            println!("refreshed {}", i + 1);
        }
        // A little slower than the disk, so the kill lands while writing.
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    println!("not killed");
}

fn child_until_full(dir: &Path, every: u64) {
    let mut rec = Recorder::create(dir, "full", 1).expect("create");
    let mut error = None;
    for i in 0..CHILD_MAX_FRAMES {
        if let Err(e) = rec.write_frame(&frame(i)) {
            error = Some(e);
            break;
        }
        println!("wrote {}", i + 1);
        if (i + 1).is_multiple_of(every) {
            if let Err(e) = rec.refresh_header() {
                error = Some(e);
                break;
            }
            println!("refreshed {}", i + 1);
        }
    }
    let error = error.expect("no write error under ulimit -f");
    println!("error disk_full={} {error}", error.is_disk_full());
    assert!(rec.is_stopped());
    match rec.write_frame(&frame(0)) {
        Err(RecorderError::Stopped { .. }) => println!("stopped"),
        other => println!("not stopped: {other:?}"),
    }
    match rec.finish() {
        Ok(done) => println!("finished {}", done.path.display()),
        Err(e) => println!("finish failed: {e}"),
    }
}

fn spawn_child(mut command: Command, mode: &str, every: u64, dir: &Path) -> Child {
    command
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{every}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child")
}

/// The child's counters, from its lines.
#[derive(Debug, Default)]
struct Progress {
    wrote: u64,
    refreshed: u64,
    lines: Vec<String>,
}

impl Progress {
    fn take(&mut self, line: String) {
        if let Some(n) = line.strip_prefix("wrote ") {
            self.wrote = n.parse().expect("count");
        } else if let Some(n) = line.strip_prefix("refreshed ") {
            self.refreshed = n.parse().expect("count");
        } else {
            self.lines.push(line);
        }
    }
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("opens with hound");
    assert_eq!(r.spec().channels, 1);
    assert_eq!(r.spec().sample_rate, 8000);
    assert_eq!(r.spec().bits_per_sample, 16);
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

fn assert_tone(samples: &[i16], what: &str) {
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(s, tone(i), "{what}: sample {i}");
    }
}

/// Record in a child that refreshes every `every` frames; kill it once it has
/// written `kill_at` frames or more; check the `.part` and its repair. Returns
/// the child's progress and the samples repaired.
fn kill_and_repair(every: u64, kill_at: u64) -> (Progress, usize) {
    assert!(!kill_at.is_multiple_of(every), "kill between refreshes");
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = spawn_child(Command::new(exe), "kill", every, dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut progress = Progress::default();
    for line in lines.by_ref() {
        progress.take(line.unwrap());
        if progress.wrote >= kill_at {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    // Everything printed before it died is still in the pipe.
    for line in lines {
        progress.take(line.unwrap());
    }
    assert_eq!(status.signal(), Some(9), "{status:?} {progress:?}");
    assert!(progress.wrote >= kill_at, "{progress:?}");
    assert!(
        progress.refreshed >= kill_at / every * every,
        "{progress:?}"
    );
    // A frame may have been written but not yet reported when the kill came.
    let max_samples = (progress.wrote as usize + 1) * FRAME;
    let min_samples = progress.refreshed as usize * FRAME;

    let part = dir.path().join("crash.wav.part");
    let as_is = read_wav(&part);
    assert!(
        as_is.len() >= min_samples,
        "{} < {min_samples}",
        as_is.len()
    );
    assert!(
        as_is.len() <= max_samples,
        "{} > {max_samples}",
        as_is.len()
    );
    assert_eq!(
        as_is.len() % (every as usize * FRAME),
        0,
        "header at a refresh"
    );
    assert_tone(&as_is, ".part as is");

    let done = repair(&part).expect("repair");
    assert_eq!(done.path, dir.path().join("crash.wav"));
    assert!(!part.exists());
    let samples = read_wav(&done.path);
    assert!(
        samples.len() >= min_samples,
        "{} < {min_samples}",
        samples.len()
    );
    assert!(
        samples.len() <= max_samples,
        "{} > {max_samples}",
        samples.len()
    );
    assert_tone(&samples, "repaired .wav");
    assert_eq!(done.duration_ms, samples.len() as u64 / 8);
    let bytes = std::fs::read(&done.path).unwrap();
    assert_eq!(done.bytes, bytes.len() as u64);
    assert_eq!(done.bytes, 44 + 2 * samples.len() as u64);
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(done.sha256_hex, sha);
    eprintln!(
        "refresh every {every}: killed after {} frames written, {} refreshed; \
         header had {} samples, repaired {}",
        progress.wrote,
        progress.refreshed,
        as_is.len(),
        samples.len()
    );
    (progress, samples.len())
}

#[test]
fn killed_mid_recording_refreshing_every_second() {
    kill_and_repair(50, 223);
}

#[test]
fn killed_mid_recording_with_audio_past_the_header() {
    // Refreshes at 150 and 300; the buffer spills about every 51 frames after.
    let (progress, repaired) = kill_and_repair(150, 420);
    assert!(
        repaired >= 400 * FRAME,
        "repair kept {repaired} samples of {progress:?}"
    );
}

#[test]
fn write_error_is_reported_and_salvaged() {
    const LIMIT_BLOCKS: u64 = 64; // dash counts 512-byte blocks: 32 KiB
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {LIMIT_BLOCKS} || exit 99; exec \"$0\" \"$@\""
        ))
        .arg(exe);
    let mut child = spawn_child(sh, "full", 50, dir.path());
    let mut progress = Progress::default();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        progress.take(line.unwrap());
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?} {progress:?}");
    let said = |prefix: &str| progress.lines.iter().find(|l| l.starts_with(prefix));
    let error = said("error ").unwrap_or_else(|| panic!("no error: {progress:?}"));
    assert!(error.starts_with("error disk_full=true"), "{error}");
    assert!(said("stopped").is_some(), "{progress:?}");
    let finished = said("finished ").unwrap_or_else(|| panic!("not salvaged: {progress:?}"));
    let wav = dir.path().join("full.wav");
    assert_eq!(finished, &format!("finished {}", wav.display()));
    assert!(!dir.path().join("full.wav.part").exists());

    let samples = read_wav(&wav);
    assert_tone(&samples, "salvaged .wav");
    let limit = LIMIT_BLOCKS as usize * 512;
    assert!(44 + 2 * samples.len() <= limit);
    // What was refreshed before the error is there; the file is as full as it got.
    assert!(
        samples.len() >= progress.refreshed as usize * FRAME,
        "{progress:?}"
    );
    assert!(
        samples.len() <= progress.wrote as usize * FRAME,
        "{progress:?}"
    );
    assert!(
        44 + 2 * samples.len() > limit - 2 * FRAME,
        "{}",
        samples.len()
    );
}
