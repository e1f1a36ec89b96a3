//! The recording writer: the one thread that owns every open recording file,
//! and the syncer thread that puts them on disk once a second.
//!
//! ```text
//! media shard ── WriterPort ─► [queue] ─► writer thread: Recorder::write_interleaved,
//!   (RecordSink::take every 100 ms)                      header refresh each second of audio
//!                                          syncer thread: one syncfs a second while recordings are open
//! ```
//!
//! - A shard never waits for the writer: [`WriterPort::send`] tries the queue and,
//!   when it is full, keeps the message (in order) in the shard's own backlog,
//!   retried every tick. Nothing is dropped; the time the queue was full and the
//!   messages held back are in `/metrics` (`hotline_recording_writer_queue_full_total`,
//!   `hotline_recording_writer_backlog`).
//! - Crash safety is as before: each recording's header is refreshed (hound's
//!   flush, no fsync) after every [`REFRESH_FRAMES`] of audio, so a killed
//!   process leaves a playable `.part` missing at most the last second (the
//!   refresh interval plus one 100 ms batch); the syncer's `syncfs` of the
//!   recordings' file system makes the same true after a power cut. One
//!   `syncfs` writes every dirty recording at once, instead of one `fdatasync`
//!   per recording per second (at ≈ 9 ms each here, a thousand recordings
//!   would need nine seconds of fsyncs every second).
//! - A write error (a full disk) raises the recording's failure flag: its
//!   [`RecordSink`](hotline_media::sink::RecordSink) refuses more audio and the
//!   session ends the recording (`WriteError`); what reached the disk is kept.
//! - Finishing (finalise, fsync, rename, hash) is not done here: [`WriterMsg::Close`]
//!   hands the [`Recorder`] back, every sample written, to the call task, which
//!   finishes it on the blocking pool.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotline_media::recorder::Recorder;
use tokio::sync::oneshot;

/// A header refresh after this much audio (0.9 s): with a 100 ms batch, a killed
/// process loses at most the last second.
pub(crate) const REFRESH_FRAMES: u32 = 7200;
/// How often the syncer writes the recordings to disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What the shards tell the writer about one recording (by its key).
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// A new recording: from now on its samples come as `Pcm`.
    Open {
        key: u64,
        recorder: Box<Recorder>,
        failed: Arc<AtomicBool>,
    },
    /// Samples, interleaved when stereo.
    Pcm { key: u64, samples: Vec<i16> },
    /// The recording ended: everything before this is written; the recorder goes
    /// back on `reply` to be finished.
    Close {
        key: u64,
        reply: oneshot::Sender<Recorder>,
    },
}

/// The writer's counters, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct WriterStats {
    /// Times a shard found the queue full and held a message back.
    pub(crate) queue_full: AtomicU64,
    /// Messages held back in the shards' backlogs now.
    pub(crate) backlog: AtomicU64,
    /// Recordings open.
    pub(crate) open: AtomicU64,
    /// Writes that failed (each stops its recording).
    pub(crate) write_errors: AtomicU64,
    /// syncfs calls, and the longest one in microseconds.
    pub(crate) syncs: AtomicU64,
    pub(crate) sync_max_us: AtomicU64,
}

/// The writer and syncer threads.
#[derive(Debug)]
pub(crate) struct RecordingWriter {
    tx: SyncSender<WriterMsg>,
    pub(crate) stats: Arc<WriterStats>,
    stop: Arc<AtomicBool>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl RecordingWriter {
    /// Starts the threads; `queue` messages fit in the writer's queue, and the
    /// syncer syncs the file system that holds `data_dir`.
    pub(crate) fn start(data_dir: &Path, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(queue.max(16));
        let stats = Arc::new(WriterStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let dirty = Arc::new(AtomicBool::new(false));
        let dir = File::open(data_dir)?;
        let writer = {
            let (stats, dirty) = (stats.clone(), dirty.clone());
            std::thread::Builder::new()
                .name("rec-writer".into())
                .spawn(move || write_loop(rx, &stats, &dirty))?
        };
        let syncer = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rec-sync".into())
                .spawn(move || sync_loop(&dir, &stats, &dirty, &stop))?
        };
        Ok(Self {
            tx,
            stats,
            stop,
            threads: std::sync::Mutex::new(vec![writer, syncer]),
        })
    }

    /// A shard's way in.
    pub(crate) fn port(&self) -> WriterPort {
        WriterPort {
            tx: self.tx.clone(),
            backlog: VecDeque::new(),
            stats: self.stats.clone(),
        }
    }

    /// Stops the syncer, and the writer once every port is gone; waits for both.
    pub(crate) fn shutdown(self) {
        self.stop.store(true, Ordering::Release);
        drop(self.tx);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A shard's sender to the writer: never blocks, never drops (see the module docs).
#[derive(Debug)]
pub(crate) struct WriterPort {
    tx: SyncSender<WriterMsg>,
    backlog: VecDeque<WriterMsg>,
    stats: Arc<WriterStats>,
}

impl WriterPort {
    /// Queues `msg` after everything sent before it.
    pub(crate) fn send(&mut self, msg: WriterMsg) {
        if !self.backlog.is_empty() {
            self.hold(msg);
            return;
        }
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                self.hold(msg);
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("recording writer gone; samples not written");
            }
        }
    }

    /// Retries what was held back, in order; returns how many still wait.
    pub(crate) fn flush(&mut self) -> usize {
        while let Some(msg) = self.backlog.pop_front() {
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.stats.backlog.fetch_sub(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(msg)) => {
                    self.backlog.push_front(msg);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.stats.backlog.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        self.backlog.len()
    }

    /// At the shard's end: every held-back message, waiting for room as long as it takes.
    pub(crate) fn finish(&mut self) {
        while let Some(msg) = self.backlog.pop_front() {
            self.stats.backlog.fetch_sub(1, Ordering::Relaxed);
            if self.tx.send(msg).is_err() {
                tracing::error!("recording writer gone; samples not written");
            }
        }
    }

    fn hold(&mut self, msg: WriterMsg) {
        self.backlog.push_back(msg);
        self.stats.backlog.fetch_add(1, Ordering::Relaxed);
    }
}

struct Open {
    recorder: Box<Recorder>,
    failed: Arc<AtomicBool>,
}

fn write_loop(rx: Receiver<WriterMsg>, stats: &WriterStats, dirty: &AtomicBool) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    loop {
        let msg = match rx.recv_timeout(SYNC_EVERY) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            WriterMsg::Open {
                key,
                mut recorder,
                failed,
            } => {
                recorder.set_refresh_interval(REFRESH_FRAMES);
                open.insert(key, Open { recorder, failed });
                stats.open.store(open.len() as u64, Ordering::Relaxed);
            }
            WriterMsg::Pcm { key, samples } => {
                let Some(o) = open.get_mut(&key) else {
                    continue;
                };
                if o.recorder.is_stopped() {
                    continue;
                }
                let written = o
                    .recorder
                    .write_interleaved(&samples)
                    .and_then(|()| o.recorder.maybe_refresh());
                match written {
                    Ok(true) => dirty.store(true, Ordering::Release),
                    Ok(false) => {}
                    Err(e) => {
                        o.failed.store(true, Ordering::Release);
                        stats.write_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "recording write failed; what reached the disk is kept");
                    }
                }
            }
            WriterMsg::Close { key, reply } => {
                if let Some(o) = open.remove(&key) {
                    stats.open.store(open.len() as u64, Ordering::Relaxed);
                    // The call task went away: the .part stays for the repair at start-up.
                    let _ = reply.send(*o.recorder);
                }
            }
        }
    }
    // Every shard is gone (the process ends): bring the headers up to date.
    for o in open.values_mut() {
        let _ = o.recorder.refresh_header();
    }
}

fn sync_loop(dir: &File, stats: &WriterStats, dirty: &AtomicBool, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(SYNC_EVERY);
        if !dirty.swap(false, Ordering::AcqRel) {
            continue;
        }
        let t = Instant::now();
        if let Err(e) = nix::unistd::syncfs(dir) {
            tracing::warn!(error = %e, "syncfs of the recordings failed");
        }
        let us = t.elapsed().as_micros() as u64;
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats.sync_max_us.fetch_max(us, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav_samples(path: &Path) -> Vec<i16> {
        let bytes = std::fs::read(path).unwrap();
        bytes[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn writes_in_order_and_hands_the_recorder_back() {
        let dir = tempfile::tempdir().unwrap();
        let w = RecordingWriter::start(dir.path(), 16).unwrap();
        let mut port = w.port();
        let key = 1;
        let rec = Recorder::create(dir.path(), "w1", 1).unwrap();
        port.send(WriterMsg::Open {
            key,
            recorder: Box::new(rec),
            failed: Arc::default(),
        });
        for i in 0..100 {
            port.send(WriterMsg::Pcm {
                key,
                samples: vec![i; 80],
            });
        }
        let (tx, rx) = oneshot::channel();
        port.send(WriterMsg::Close { key, reply: tx });
        while port.flush() > 0 {
            std::thread::yield_now();
        }
        let rec = rx.blocking_recv().unwrap();
        assert_eq!(rec.frames(), 8000);
        let done = rec.finish().unwrap();
        let samples = wav_samples(&done.path);
        assert_eq!(samples.len(), 8000);
        assert!(
            samples
                .chunks(80)
                .enumerate()
                .all(|(i, c)| c.iter().all(|&s| s == i as i16))
        );
        drop(port);
        w.shutdown();
    }

    #[test]
    fn a_full_queue_holds_messages_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::sync_channel(2);
        let stats = Arc::new(WriterStats::default());
        let mut port = WriterPort {
            tx,
            backlog: VecDeque::new(),
            stats: stats.clone(),
        };
        for i in 0..5 {
            port.send(WriterMsg::Pcm {
                key: 1,
                samples: vec![i],
            });
        }
        assert_eq!(stats.queue_full.load(Ordering::Relaxed), 1);
        assert_eq!(stats.backlog.load(Ordering::Relaxed), 3);
        let mut seen = Vec::new();
        loop {
            while let Ok(WriterMsg::Pcm { samples, .. }) = rx.try_recv() {
                seen.push(samples[0]);
            }
            if port.flush() == 0 {
                while let Ok(WriterMsg::Pcm { samples, .. }) = rx.try_recv() {
                    seen.push(samples[0]);
                }
                break;
            }
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        assert_eq!(stats.backlog.load(Ordering::Relaxed), 0);
        drop(dir);
    }

    #[test]
    fn finish_hands_over_every_held_back_message_in_order() {
        let (tx, rx) = mpsc::sync_channel(2);
        let stats = Arc::new(WriterStats::default());
        let mut port = WriterPort {
            tx,
            backlog: VecDeque::new(),
            stats: stats.clone(),
        };
        for i in 0..6 {
            port.send(WriterMsg::Pcm {
                key: 1,
                samples: vec![i],
            });
        }
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Ok(WriterMsg::Pcm { samples, .. }) = rx.recv() {
                seen.push(samples[0]);
            }
            seen
        });
        port.finish();
        drop(port);
        assert_eq!(reader.join().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(stats.backlog.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_write_error_raises_the_failure_flag() {
        let dir = tempfile::tempdir().unwrap();
        let w = RecordingWriter::start(dir.path(), 16).unwrap();
        let mut port = w.port();
        let key = 1;
        let failed = Arc::new(AtomicBool::new(false));
        let rec = Recorder::create(dir.path(), "w2", 2).unwrap();
        port.send(WriterMsg::Open {
            key,
            recorder: Box::new(rec),
            failed: failed.clone(),
        });
        // Half a stereo frame: the recorder refuses it.
        port.send(WriterMsg::Pcm {
            key,
            samples: vec![1, 2, 3],
        });
        let (tx, rx) = oneshot::channel();
        port.send(WriterMsg::Close { key, reply: tx });
        let _rec = rx.blocking_recv().unwrap();
        assert!(failed.load(Ordering::Acquire));
        assert_eq!(w.stats.write_errors.load(Ordering::Relaxed), 1);
        drop(port);
        w.shutdown();
    }
}
