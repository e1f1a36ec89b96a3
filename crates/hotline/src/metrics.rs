//! Process-wide counters and the RTP departure lateness histogram, rendered as
//! Prometheus text for `GET /metrics`.
//!
//! Hand-rendered rather than through metrics-exporter-prometheus: the lateness
//! histogram is already gathered per call by the media session (no global
//! atomics per packet) and merged here once a second; what remains is a few
//! counters and one text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hotline_media::pacer::LatenessHistogram;
use hotline_media::session::SessionStats;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything /metrics shows.
#[derive(Debug)]
pub(crate) struct Metrics {
    writer: Option<hotline_store::WriterHandle>,
    pub(crate) calls_total: Counter,
    pub(crate) recordings_total: Counter,
    pub(crate) rtp_send_errors: Counter,
    pub(crate) rtp_packets_sent: Counter,
    pub(crate) rtp_packets_received: Counter,
    pub(crate) rtp_foreign_dropped: Counter,
    pub(crate) rtp_frames_skipped: Counter,
    /// Milliseconds of caller audio message recordings had to fill with silence.
    pub(crate) recording_gap_ms: Counter,
    /// INVITEs refused with 503 because the media plane was overloaded.
    pub(crate) overload_refused: Counter,
    /// Media shard ticks given up on a panic (a bug; the shard goes on).
    pub(crate) media_panics: Counter,
    /// Cluster: dead nodes' runs whose unfinished recordings this node adopted.
    pub(crate) cluster_adoptions: Counter,
    /// Cluster: recordings of dead nodes this node adopted (entered in the store).
    pub(crate) cluster_adopted_recordings: Counter,
    /// Cluster: failures of the recordings lock, adoption claims and repairs.
    pub(crate) cluster_storage_errors: Counter,
    pub(crate) active_calls: AtomicU64,
    /// Call tasks still running (shutdown waits for them to write their outcome).
    call_tasks: Arc<AtomicU64>,
    lateness: Mutex<LatenessHistogram>,
}

/// Counts a running call task until dropped.
#[derive(Debug)]
pub(crate) struct CallTaskGuard(Arc<AtomicU64>);

impl Drop for CallTaskGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Metrics {
    pub(crate) fn new(writer: hotline_store::WriterHandle) -> Metrics {
        Metrics {
            writer: Some(writer),
            ..Metrics::without_store()
        }
    }

    fn without_store() -> Metrics {
        Metrics {
            writer: None,
            calls_total: Counter::default(),
            recordings_total: Counter::default(),
            rtp_send_errors: Counter::default(),
            rtp_packets_sent: Counter::default(),
            rtp_packets_received: Counter::default(),
            rtp_foreign_dropped: Counter::default(),
            rtp_frames_skipped: Counter::default(),
            recording_gap_ms: Counter::default(),
            overload_refused: Counter::default(),
            media_panics: Counter::default(),
            cluster_adoptions: Counter::default(),
            cluster_adopted_recordings: Counter::default(),
            cluster_storage_errors: Counter::default(),
            active_calls: AtomicU64::new(0),
            call_tasks: Arc::default(),
            lateness: Mutex::new(LatenessHistogram::new()),
        }
    }

    /// Marks a call task as running until the guard drops.
    pub(crate) fn call_task(&self) -> CallTaskGuard {
        self.call_tasks.fetch_add(1, Ordering::AcqRel);
        CallTaskGuard(self.call_tasks.clone())
    }

    /// Call tasks still running.
    pub(crate) fn call_tasks(&self) -> u64 {
        self.call_tasks.load(Ordering::Acquire)
    }

    /// Adds a call's histogram and the growth of its counters since `last`.
    pub(crate) fn merge_session(
        &self,
        h: LatenessHistogram,
        now: &SessionStats,
        last: &mut SessionStats,
    ) {
        self.rtp_packets_sent
            .add(now.packets_sent - last.packets_sent);
        self.rtp_packets_received
            .add(now.packets_received - last.packets_received);
        self.rtp_foreign_dropped
            .add(now.foreign_dropped - last.foreign_dropped);
        self.rtp_frames_skipped
            .add(now.frames_skipped - last.frames_skipped);
        *last = *now;
        if h.count() > 0 {
            // A poisoned lock only means another merge panicked; the data is still counts.
            let mut g = self.lateness.lock().unwrap_or_else(|e| e.into_inner());
            g.merge(&h);
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters = [
            (
                "hotline_calls_total",
                "Calls answered or refused by the call logic.",
                &self.calls_total,
            ),
            (
                "hotline_recordings_total",
                "Recordings finished and saved.",
                &self.recordings_total,
            ),
            (
                "hotline_rtp_packets_sent_total",
                "RTP packets sent.",
                &self.rtp_packets_sent,
            ),
            (
                "hotline_rtp_packets_received_total",
                "RTP packets received from callers.",
                &self.rtp_packets_received,
            ),
            (
                "hotline_rtp_foreign_dropped_total",
                "RTP packets from an address other than the learned source (dropped).",
                &self.rtp_foreign_dropped,
            ),
            (
                "hotline_rtp_frames_skipped_total",
                "20 ms frames skipped because a send tick came late.",
                &self.rtp_frames_skipped,
            ),
            (
                "hotline_recording_gap_ms_total",
                "Milliseconds of caller audio that message recordings filled with silence (lost or missing packets).",
                &self.recording_gap_ms,
            ),
            (
                "hotline_overload_refused_total",
                "INVITEs answered 503 because the media plane was overloaded.",
                &self.overload_refused,
            ),
            (
                "hotline_media_panics_total",
                "Media shard ticks given up because of a panic (a bug: report it).",
                &self.media_panics,
            ),
            (
                "hotline_cluster_adoptions_total",
                "Dead cluster nodes' runs whose unfinished recordings this node adopted.",
                &self.cluster_adoptions,
            ),
            (
                "hotline_cluster_adopted_recordings_total",
                "Recordings of dead cluster nodes this node repaired and entered in the store.",
                &self.cluster_adopted_recordings,
            ),
            (
                "hotline_cluster_storage_errors_total",
                "Cluster storage failures: recordings lock, adoption claim, repair (see the log).",
                &self.cluster_storage_errors,
            ),
            (
                "hotline_rtp_send_errors_total",
                "RTP packets the socket refused (buffer full).",
                &self.rtp_send_errors,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP hotline_active_calls Calls in progress.\n# TYPE hotline_active_calls gauge\nhotline_active_calls {}",
            self.active_calls.load(Ordering::Relaxed)
        );
        if let Some(w) = &self.writer {
            let b = w.backlog();
            let _ = writeln!(
                out,
                "# HELP hotline_store_backlog Writes not yet in the database (queued + spooled).\n# TYPE hotline_store_backlog gauge\nhotline_store_backlog {}",
                b.pending()
            );
            let _ = writeln!(
                out,
                "hotline_store_spooled {}\nhotline_store_rejected_total {}\nhotline_store_committed_total {}\nhotline_store_database_up {}",
                b.spooled,
                b.rejected,
                b.committed,
                u8::from(b.database_ok)
            );
        }
        let h = self
            .lateness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let name = "hotline_rtp_departure_lateness_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} How late each RTP packet left against its 20 ms schedule.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (upper, n) in h.buckets() {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                upper.as_secs_f64()
            );
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
        let _ = writeln!(
            out,
            "{name}_sum {}\n{name}_count {}",
            h.sum().as_secs_f64(),
            h.count()
        );
        for (q, label) in [(0.5, "0.5"), (0.99, "0.99")] {
            let _ = writeln!(
                out,
                "hotline_rtp_departure_lateness_quantile_seconds{{quantile=\"{label}\"}} {}",
                h.quantile(q).as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "hotline_rtp_departure_lateness_max_seconds {}",
            h.max().as_secs_f64()
        );
        out
    }
}

/// One figure of a shard, for `/metrics`.
type ShardFigure = fn(&crate::media::ShardState) -> f64;

/// The media plane's figures: shards, their load and admission, the recording writer.
pub(crate) fn render_media(out: &mut String, plane: &crate::media::MediaPlane) {
    let shards: Vec<_> = plane.shard_states().collect();
    let refusing = shards.iter().any(|s| s.refusing.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP hotline_overload_active 1 while new calls are refused because the media plane is overloaded.\n# TYPE hotline_overload_active gauge\nhotline_overload_active {}",
        u8::from(refusing)
    );
    let _ = writeln!(
        out,
        "# HELP hotline_media_shards Media shards (threads serving calls).\n# TYPE hotline_media_shards gauge\nhotline_media_shards {}",
        shards.len()
    );
    let per_shard: [(&str, &str, &str, ShardFigure); 8] = [
        ("hotline_media_calls", "gauge", "Calls on the shard.", |s| {
            s.calls.load(Ordering::Relaxed) as f64
        }),
        (
            "hotline_media_refusing",
            "gauge",
            "1 while the shard refuses new calls.",
            |s| f64::from(u8::from(s.refusing.load(Ordering::Relaxed))),
        ),
        (
            "hotline_media_busy_ratio",
            "gauge",
            "Share of the last window's ticks the shard spent working.",
            |s| s.busy_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "hotline_media_late_ratio",
            "gauge",
            "Share of the last window's ticks that woke late (over 8 ms).",
            |s| s.late_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "hotline_media_backlog_ratio",
            "gauge",
            "Share of the shard's calls with RTP piling up in the last window.",
            |s| s.backlog_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "hotline_media_cpu_ratio",
            "gauge",
            "The process's CPU share of its cores in the last window (first shard only).",
            |s| s.cpu_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
        (
            "hotline_media_late_ticks_total",
            "counter",
            "Ticks that woke more than 8 ms late.",
            |s| s.late_ticks.load(Ordering::Relaxed) as f64,
        ),
        (
            "hotline_overload_episodes_total",
            "counter",
            "Times the shard started refusing new calls.",
            |s| s.episodes.load(Ordering::Relaxed) as f64,
        ),
    ];
    for (name, kind, help, get) in per_shard {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, s) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", get(s));
        }
    }
    let w = plane.writer_stats();
    let writer = [
        (
            "hotline_recording_writer_queue_full_total",
            "counter",
            "Times a shard found the recording writer's queue full and held samples back.",
            w.queue_full.load(Ordering::Relaxed),
        ),
        (
            "hotline_recording_writer_backlog",
            "gauge",
            "Recording writes held back in the shards (queue full).",
            w.backlog.load(Ordering::Relaxed),
        ),
        (
            "hotline_recording_writer_open",
            "gauge",
            "Recordings open in the writer.",
            w.open.load(Ordering::Relaxed),
        ),
        (
            "hotline_recording_write_errors_total",
            "counter",
            "Recording writes that failed (each stops its recording).",
            w.write_errors.load(Ordering::Relaxed),
        ),
        (
            "hotline_recording_syncs_total",
            "counter",
            "syncfs calls of the recordings' file system.",
            w.syncs.load(Ordering::Relaxed),
        ),
        (
            "hotline_recording_sync_max_seconds",
            "gauge",
            "The longest syncfs.",
            0,
        ),
    ];
    for (name, kind, help, v) in writer {
        let value = if name == "hotline_recording_sync_max_seconds" {
            w.sync_max_us.load(Ordering::Relaxed) as f64 / 1e6
        } else {
            v as f64
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::without_store();
        m.calls_total.add(3);
        let mut h = LatenessHistogram::new();
        h.record(Duration::from_micros(10));
        h.record(Duration::from_micros(900));
        let mut last = SessionStats::default();
        let now = SessionStats {
            packets_sent: 50,
            ..SessionStats::default()
        };
        m.merge_session(h, &now, &mut last);
        m.merge_session(LatenessHistogram::new(), &now, &mut last);
        let text = m.render();
        assert!(text.contains("hotline_calls_total 3\n"));
        assert!(
            text.contains("hotline_rtp_packets_sent_total 50\n"),
            "{text}"
        );
        assert!(text.contains("hotline_rtp_departure_lateness_seconds_count 2\n"));
        assert!(text.contains("hotline_rtp_departure_lateness_seconds_bucket{le=\"+Inf\"} 2\n"));
    }
}
