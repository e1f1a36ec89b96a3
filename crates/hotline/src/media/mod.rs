//! The media plane: a few media shards, each one thread that serves many calls
//! on one 20 ms schedule, a recording writer, and admission control.
//!
//! ```text
//! call task ──MediaHandle (commands)──► shard thread: every 20 ms
//!     ▲                                   ├ commands (play, record, bridge, ...)
//!     └──────── notes (digits, prompt     ├ epoll: readable sockets → recvmmsg → Session::handle_rtp
//!               ends, recordings ended) ──┤ every due Session::handle_timeout → send_to
//!                                         ├ relay (bridged legs), conversation mixer
//!                                         └ RecordSink samples ──► writer thread ──► .wav.part
//! ```
//!
//! - A shard owns its calls' RTP and RTCP sockets and their sans-IO
//!   [`Session`](hotline_media::session::Session)s; the call logic (flow, queue,
//!   store) stays in the call's task and talks to the shard by messages, never
//!   per packet. No per-call task, timer or channel hop is on the packet path:
//!   one wake-up per tick serves every call of the shard.
//! - Sessions start on the shard's tick grid, so a frame is due exactly at a tick:
//!   the departure lateness is the shard's wake-up lateness.
//! - Calls go to the shard with the fewest calls. A call and its operator leg are
//!   on the same shard: the bridge relays within one loop.
//! - [`overload`]: every shard judges its own load each second (and the first one,
//!   the process's CPU share); while any refuses, new INVITEs get 503.
//!
//! Files: [`shard`] (the loop), [`udp`] (epoll and `recvmmsg`), [`writer`]
//! (recording files), [`overload`] (the admission decision), [`handle`] (what a
//! call task holds).

pub(crate) mod handle;
pub(crate) mod overload;
pub(crate) mod shard;
pub(crate) mod udp;
pub(crate) mod writer;

use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

pub(crate) use handle::{Closed, MediaHandle, MediaNote};

use crate::metrics::Metrics;
use overload::Limits;
use shard::{Shard, ShardCommand};
use writer::RecordingWriter;

/// The `[media]` settings the plane runs with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaneSettings {
    /// Media shards (threads); at least 1.
    pub(crate) shards: usize,
    pub(crate) limits: Limits,
    /// Messages the recording writer's queue holds.
    pub(crate) writer_queue: usize,
}

/// What a shard shares with the rest of the process.
#[derive(Debug, Default)]
pub(crate) struct ShardState {
    /// Calls on the shard.
    pub(crate) calls: AtomicUsize,
    /// The shard refuses new calls (see [`overload`]).
    pub(crate) refusing: AtomicBool,
    /// The last window's figures, in thousandths (busy, late, backlog, cpu).
    pub(crate) busy_milli: AtomicU64,
    pub(crate) late_milli: AtomicU64,
    pub(crate) backlog_milli: AtomicU64,
    pub(crate) cpu_milli: AtomicU64,
    /// Ticks so far, and those that woke later than [`overload::LATE_TICK`].
    pub(crate) ticks: AtomicU64,
    pub(crate) late_ticks: AtomicU64,
    /// Times this shard started refusing.
    pub(crate) episodes: AtomicU64,
}

struct Link {
    tx: mpsc::Sender<ShardCommand>,
    state: Arc<ShardState>,
}

/// The media shards and the recording writer. See the [module docs](self).
pub(crate) struct MediaPlane {
    links: Vec<Link>,
    writer: std::sync::Mutex<Option<RecordingWriter>>,
    writer_stats: Arc<writer::WriterStats>,
    stop: Arc<AtomicBool>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MediaPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPlane")
            .field("shards", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl MediaPlane {
    /// Starts the writer (syncing the file system of `data_dir`) and the shards.
    pub(crate) fn start(
        settings: PlaneSettings,
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Arc<Self>> {
        let writer = RecordingWriter::start(data_dir, settings.writer_queue)?;
        let writer_stats = writer.stats.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut links = Vec::new();
        let mut threads = Vec::new();
        for index in 0..settings.shards.max(1) {
            let (tx, rx) = mpsc::channel();
            let state = Arc::new(ShardState::default());
            // Built on its own thread: the recvmmsg buffers stay there.
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let (port, shard_state, metrics, stop) =
                (writer.port(), state.clone(), metrics.clone(), stop.clone());
            let limits = settings.limits;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("media-{index}"))
                    .spawn(move || {
                        // The first shard also watches the process's CPU share.
                        let cpu = (index == 0).then_some(cores);
                        match Shard::new(index, rx, port, shard_state, metrics, limits, cpu, stop) {
                            Ok(shard) => {
                                let _ = ready_tx.send(Ok(()));
                                shard.run();
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                            }
                        }
                    })?,
            );
            ready_rx
                .recv()
                .map_err(|_| std::io::Error::other("media shard thread died"))??;
            links.push(Link { tx, state });
        }
        tracing::info!(shards = links.len(), cores, "media plane started");
        Ok(Arc::new(Self {
            links,
            writer: std::sync::Mutex::new(Some(writer)),
            writer_stats,
            stop,
            threads: std::sync::Mutex::new(threads),
        }))
    }

    /// Puts a call's RTP and RTCP sockets on the shard with the fewest calls. `key`
    /// names the call in the shard's log lines (`call=`): the SIP call's id.
    pub(crate) fn place(
        &self,
        key: u64,
        rtp: UdpSocket,
        rtcp: UdpSocket,
    ) -> std::io::Result<MediaHandle> {
        let link = self
            .links
            .iter()
            .min_by_key(|l| l.state.calls.load(Ordering::Relaxed))
            .ok_or_else(|| std::io::Error::other("no media shard"))?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        link.state.calls.fetch_add(1, Ordering::Relaxed);
        Ok(MediaHandle::open(key, link.tx.clone(), rtp, rtcp))
    }

    /// Why new calls are refused now, if they are.
    pub(crate) fn refusing(&self) -> bool {
        self.links
            .iter()
            .any(|l| l.state.refusing.load(Ordering::Relaxed))
    }

    /// The shards' shared figures, for `/metrics`.
    pub(crate) fn shard_states(&self) -> impl Iterator<Item = &ShardState> {
        self.links.iter().map(|l| &*l.state)
    }

    /// The recording writer's counters.
    pub(crate) fn writer_stats(&self) -> &writer::WriterStats {
        &self.writer_stats
    }

    /// Stops the shards (their calls are over) and then the writer.
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        if let Some(w) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.shutdown();
        }
    }
}
