//! [`StoreWriter`]: one tokio task that owns the store's write side, so writes never block a call.
//!
//! - The call path holds a [`WriterHandle`] and only ever does a `try_send` (plus, when the
//!   channel is full, a push onto an in-memory overflow list under a short lock). It never waits
//!   for the database or the disk.
//! - The task takes what is queued (up to `max_batch` ops, waiting at most `max_delay` for
//!   company) and applies it in one transaction: group commit, one fsync for many rows.
//! - If the database fails (unreachable, timed out, refusing work), the batch and everything after
//!   it go to the spool, `<data_dir>/spool/store.jsonl`, fsynced per batch. Every
//!   `retry_interval` the task replays the spool in order, in batches; once it is empty (then
//!   truncated) writes go straight to the database again. A full channel also sends everything to
//!   the spool, in order, rather than dropping anything.
//! - Replays are exactly-once: each op has an op id that the store records in the same
//!   transaction (`applied_ops`), so a batch whose commit was acknowledged too late, or a spool
//!   replayed again after a crash, changes nothing twice.
//! - An op the database refuses for good (a constraint, an update of a call that does not
//!   exist) is isolated from its batch, kept in `spool/rejected.jsonl` and counted; the rest go on.
//! - [`WriterHandle::backlog`] gives queued, spooled and rejected counts for /healthz and /metrics.
//!
//! Durability boundary: an op is safe once committed or spooled. Ops still queued in memory
//! (normally for a few milliseconds) are lost if the process is killed; [`StoreWriter::shutdown`]
//! commits or spools them on an orderly exit.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use crate::error::StoreError;
use crate::id::new_id;
use crate::model::{
    CallUpdate, NewAuditEntry, NewCall, NewCallEvent, NewRecording, RecordingUpdate,
};
use crate::ops::{BatchError, Envelope, OpSink, Write};
use crate::spool::Spool;
use crate::sql::random_reference;
use crate::time::Timestamp;

/// Name of the spool directory in the data dir.
pub const SPOOL_DIR: &str = "spool";

/// How the writer batches, spools and retries.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Where the spool lives (`<data_dir>/spool`).
    pub spool_dir: PathBuf,
    /// Most ops in one transaction.
    pub max_batch: usize,
    /// How long the first op of a batch waits for others (0: take what is there).
    pub max_delay: Duration,
    /// Ops the channel holds before the overflow (and then the spool) takes them.
    pub channel_capacity: usize,
    /// Time between replay attempts while the database is away.
    pub retry_interval: Duration,
    /// Longest a transaction may take before the database counts as away.
    pub db_timeout: Duration,
    /// Reference numbers kept reserved for [`WriterHandle::insert_call`].
    pub reference_pool: usize,
    /// Op ids and unused reservations older than this are pruned (hourly).
    pub prune_after: Duration,
}

impl WriterConfig {
    /// Defaults, with the spool in `<data_dir>/spool`.
    pub fn new(data_dir: &Path) -> WriterConfig {
        WriterConfig {
            spool_dir: data_dir.join(SPOOL_DIR),
            max_batch: 512,
            max_delay: Duration::from_millis(5),
            channel_capacity: 8192,
            retry_interval: Duration::from_secs(1),
            db_timeout: Duration::from_secs(10),
            reference_pool: 64,
            prune_after: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Counts for /healthz and /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Backlog {
    /// Ops in memory, not yet committed or spooled.
    pub queued: u64,
    /// Ops in the spool waiting for the database.
    pub spooled: u64,
    /// Ops the database refused for good since start (kept in `spool/rejected.jsonl`).
    pub rejected: u64,
    /// Ops committed since start (replays included).
    pub committed: u64,
    /// Transactions committed since start.
    pub batches: u64,
    /// Whether the last attempt to write to the database worked.
    pub database_ok: bool,
}

impl Backlog {
    /// Ops not yet in the database (queued + spooled).
    pub fn pending(&self) -> u64 {
        self.queued + self.spooled
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    /// Ops after the spool that the disk would not take (kept in memory).
    stashed: AtomicU64,
    spooled: AtomicU64,
    rejected: AtomicU64,
    committed: AtomicU64,
    batches: AtomicU64,
    database_ok: AtomicBool,
    unreserved_references: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    counters: Counters,
    /// Ops that found the channel full, in order; the writer spools them.
    overflow: Mutex<VecDeque<Envelope>>,
    /// Reserved reference numbers and when they were reserved.
    references: Mutex<VecDeque<(String, Instant)>>,
    /// A reservation older than this is not handed out: it may have been pruned (and the number
    /// taken by someone else) by then.
    reference_max_age: Duration,
    spool: Arc<Mutex<Spool>>,
    wake: Notify,
    shutdown: Notify,
    stopping: AtomicBool,
    reference_low_water: usize,
    /// Ops whose submitter waits to hear they are safe ([`WriterHandle::submit_durable`]):
    /// told `true` once committed or spooled, `false` if the database refused the op for good.
    waiters: Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<bool>>>,
}

impl Shared {
    /// Tells the waiters of these ops (if any) where they stand.
    fn settle<'a>(&self, op_ids: impl IntoIterator<Item = &'a str>, safe: bool) {
        let mut waiters = lock(&self.waiters);
        if waiters.is_empty() {
            return;
        }
        for id in op_ids {
            if let Some(tx) = waiters.remove(id) {
                let _ = tx.send(safe);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The call path's side of the writer: cheap to clone, never waits.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Queues one write. Never blocks on the database or the disk (except after
    /// [`StoreWriter::shutdown`], when it appends to the spool itself).
    pub fn submit(&self, op: Write) {
        self.submit_envelope(Envelope {
            op_id: new_id(),
            op,
        });
    }

    /// Submits `op` like [`submit`](Self::submit) and says when it is safe: the receiver gets
    /// `true` once the op is committed or spooled (fsynced), `false` if the database refused it
    /// for good (kept in `rejected.jsonl`); it is dropped if the writer stopped without either.
    /// For writes a caller is told about (a callback is booked only once it is safe).
    pub fn submit_durable(&self, op: Write) -> tokio::sync::oneshot::Receiver<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let op_id = new_id();
        lock(&self.shared.waiters).insert(op_id.clone(), tx);
        self.submit_envelope(Envelope { op_id, op });
        rx
    }

    /// Inserts a callback; see [`submit_durable`](Self::submit_durable).
    pub fn insert_callback(
        &self,
        callback: crate::callback::NewCallback,
    ) -> tokio::sync::oneshot::Receiver<bool> {
        self.submit_durable(Write::InsertCallback(callback))
    }

    fn submit_envelope(&self, env: Envelope) {
        let queued = &self.shared.counters.queued;
        // Counted before the writer can see it, so the count never dips below zero.
        queued.fetch_add(1, Ordering::Relaxed);
        let mut overflow = lock(&self.shared.overflow);
        if !overflow.is_empty() {
            // Keep order: once something waits in the overflow, everything after it does too.
            overflow.push_back(env);
            return;
        }
        match self.tx.try_send(env) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(env)) => {
                overflow.push_back(env);
                drop(overflow);
                self.shared.wake.notify_one();
            }
            Err(mpsc::error::TrySendError::Closed(env)) => {
                drop(overflow);
                queued.fetch_sub(1, Ordering::Relaxed);
                self.spool_directly(env);
            }
        }
    }

    fn spool_directly(&self, env: Envelope) {
        let mut spool = lock(&self.shared.spool);
        match spool.append(std::slice::from_ref(&env)) {
            Ok(()) => {
                self.shared
                    .counters
                    .spooled
                    .store(spool.pending(), Ordering::Relaxed);
                self.shared.settle([env.op_id.as_str()], true);
                tracing::warn!(
                    op = env.op.name(),
                    "store writer stopped; op spooled for the next start"
                );
            }
            Err(e) => {
                tracing::error!(op = env.op.name(), error = %e, "store writer stopped and the spool failed; op lost");
            }
        }
    }

    /// Queues a new call and returns its reference number at once: `call.reference` if set,
    /// else one from the pool the writer keeps reserved in the database. Only if the pool is
    /// empty (the database away for longer than `reference_pool` calls) is a number made up;
    /// should it turn out taken when written, the call gets another and a `reference_reassigned`
    /// event records the one given out.
    pub fn insert_call(&self, mut call: NewCall) -> String {
        let reference = match call.reference.clone() {
            Some(r) => r,
            None => self.take_reference(),
        };
        call.reference = Some(reference.clone());
        self.submit(Write::InsertCall(call));
        reference
    }

    fn take_reference(&self) -> String {
        let (r, left) = {
            let mut pool = lock(&self.shared.references);
            let fresh_after = Instant::now().checked_sub(self.shared.reference_max_age);
            let mut taken = None;
            while let Some((r, at)) = pool.pop_front() {
                if fresh_after.is_none_or(|t| at >= t) {
                    taken = Some(r);
                    break;
                }
            }
            (taken, pool.len())
        };
        if left < self.shared.reference_low_water {
            self.shared.wake.notify_one();
        }
        r.unwrap_or_else(|| {
            self.shared
                .counters
                .unreserved_references
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!("reference pool empty; giving out an unreserved number");
            random_reference()
        })
    }

    pub fn update_call(&self, id: &str, update: CallUpdate) {
        self.submit(Write::UpdateCall {
            id: id.to_owned(),
            update,
        });
    }

    /// Queues a call event (its id is made here).
    pub fn add_call_event(&self, call_id: &str, at: Timestamp, kind: &str, detail: &str) {
        self.submit(Write::AddCallEvent(NewCallEvent {
            id: new_id(),
            call_id: call_id.to_owned(),
            at,
            kind: kind.to_owned(),
            detail: detail.to_owned(),
        }));
    }

    pub fn insert_recording(&self, recording: NewRecording) {
        self.submit(Write::InsertRecording(recording));
    }

    pub fn update_recording(&self, id: &str, update: RecordingUpdate) {
        self.submit(Write::UpdateRecording {
            id: id.to_owned(),
            update,
        });
    }

    pub fn append_audit(&self, entry: NewAuditEntry) {
        self.submit(Write::AppendAudit(entry));
    }

    /// Queues the close of the calls a stopped run of `node` left open (see
    /// [`Write::CloseInterrupted`]). Queued after the repaired recordings and their events, it
    /// is applied after them, so their times count as the calls' last traces.
    pub fn close_interrupted(&self, node: Option<&str>, before: Timestamp, detail: &str) {
        self.submit(Write::CloseInterrupted {
            node: node.map(str::to_owned),
            before,
            detail: detail.to_owned(),
        });
    }

    /// Queued, spooled, rejected and committed counts.
    pub fn backlog(&self) -> Backlog {
        let c = &self.shared.counters;
        Backlog {
            queued: c.queued.load(Ordering::Relaxed) + c.stashed.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            database_ok: c.database_ok.load(Ordering::Relaxed),
        }
    }

    /// Reference numbers given out without a reservation since start.
    pub fn unreserved_references(&self) -> u64 {
        self.shared
            .counters
            .unreserved_references
            .load(Ordering::Relaxed)
    }

    /// Waits until nothing is queued or spooled (tests, shutdown checks), up to `limit`.
    /// Returns whether the backlog emptied.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.backlog().pending() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The writer task and a handle to it.
#[derive(Debug)]
pub struct StoreWriter {
    handle: WriterHandle,
    task: JoinHandle<()>,
}

impl StoreWriter {
    /// Opens the spool (replaying what an earlier run left, as soon as the database answers) and
    /// starts the task on the current tokio runtime.
    pub fn start(sink: Arc<dyn OpSink>, config: WriterConfig) -> Result<StoreWriter, StoreError> {
        let spool = Spool::open(&config.spool_dir).map_err(|e| {
            StoreError::Invalid(format!("spool {}: {e}", config.spool_dir.display()))
        })?;
        let spooled = spool.pending();
        if spooled > 0 {
            tracing::info!(
                spooled,
                "store spool holds ops from an earlier run; replaying"
            );
        }
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            overflow: Mutex::new(VecDeque::new()),
            references: Mutex::new(VecDeque::new()),
            spool: Arc::new(Mutex::new(spool)),
            wake: Notify::new(),
            shutdown: Notify::new(),
            stopping: AtomicBool::new(false),
            reference_low_water: config.reference_pool / 2,
            reference_max_age: config.prune_after / 2,
            waiters: Mutex::new(std::collections::HashMap::new()),
        });
        shared.counters.spooled.store(spooled, Ordering::Relaxed);
        shared.counters.database_ok.store(true, Ordering::Relaxed);
        let task = Task {
            rx,
            shared: shared.clone(),
            sink,
            stash: VecDeque::new(),
            next_retry: Instant::now(),
            next_prune: Instant::now(),
            config,
        };
        let task = tokio::spawn(task.run());
        Ok(StoreWriter {
            handle: WriterHandle { tx, shared },
            task,
        })
    }

    /// A handle for the call path, the console, anything that writes.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    pub fn backlog(&self) -> Backlog {
        self.handle.backlog()
    }

    /// Stops the task after committing or spooling everything queued; returns the final counts.
    /// Writes submitted afterwards are appended to the spool directly.
    pub async fn shutdown(self) -> Backlog {
        self.handle.shared.stopping.store(true, Ordering::SeqCst);
        self.handle.shared.shutdown.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "store writer task failed");
        }
        self.handle.backlog()
    }
}

/// What a run of [`Task::apply_all`] did.
struct Applied {
    /// `ops[..done]` are committed or rejected.
    done: usize,
    /// Set if the database failed (transiently) at `ops[done]`.
    error: Option<StoreError>,
}

struct Task {
    rx: mpsc::Receiver<Envelope>,
    shared: Arc<Shared>,
    sink: Arc<dyn OpSink>,
    /// Ops that belong after the spool but could not be appended to it (disk full): kept in
    /// memory, in order, until the spool or the database takes them.
    stash: VecDeque<Envelope>,
    next_retry: Instant,
    next_prune: Instant,
    config: WriterConfig,
}

impl Task {
    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn spooling(&self) -> bool {
        !self.stash.is_empty() || !lock(&self.shared.spool).is_empty()
    }

    async fn run(mut self) {
        self.refill_references().await;
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                self.finish().await;
                return;
            }
            if !lock(&self.shared.overflow).is_empty() {
                // The channel filled up: the database is slower than the calls. Everything
                // queued goes to the spool, in order; the replay catches up.
                let ops = self.take_queued();
                let n = ops.len();
                tracing::warn!(ops = n, "store writer channel full; spooling");
                self.spool_ops(ops).await;
                self.release(n);
                continue;
            }
            if self.spooling() {
                self.spool_mode().await;
            } else {
                self.direct_mode().await;
            }
        }
    }

    /// Everything in the channel and the overflow, in submission order.
    fn take_queued(&mut self) -> Vec<Envelope> {
        let mut overflow = lock(&self.shared.overflow);
        let mut ops = Vec::new();
        while let Ok(env) = self.rx.try_recv() {
            ops.push(env);
        }
        ops.extend(overflow.drain(..));
        ops
    }

    /// `n` ops taken off the queue are now committed, rejected, spooled or stashed.
    fn release(&self, n: usize) {
        self.counters()
            .queued
            .fetch_sub(n as u64, Ordering::Relaxed);
    }

    async fn direct_mode(&mut self) {
        let first = tokio::select! {
            biased;
            () = self.shared.shutdown.notified() => return,
            () = self.shared.wake.notified() => {
                self.refill_references().await;
                return;
            }
            env = self.rx.recv() => env,
            () = sleep_until(self.next_prune) => {
                self.housekeeping().await;
                return;
            }
        };
        let Some(first) = first else {
            // Every handle is gone: nothing more can come.
            self.shared.stopping.store(true, Ordering::SeqCst);
            return;
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + self.config.max_delay;
        loop {
            while batch.len() < self.config.max_batch {
                match self.rx.try_recv() {
                    Ok(env) => batch.push(env),
                    Err(_) => break,
                }
            }
            if batch.len() >= self.config.max_batch || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                env = self.rx.recv() => match env {
                    Some(env) => batch.push(env),
                    None => break,
                },
                () = sleep_until(deadline) => break,
            }
        }
        let n = batch.len();
        let applied = self.apply_all(&batch).await;
        if let Some(error) = applied.error {
            self.database_failed(&error);
            self.spool_ops(batch.split_off(applied.done)).await;
        }
        self.release(n);
        if lock(&self.shared.references).len() < self.shared.reference_low_water {
            self.refill_references().await;
        }
    }

    async fn spool_mode(&mut self) {
        if Instant::now() >= self.next_retry {
            self.replay().await;
            if !self.spooling() {
                tracing::info!("store spool replayed; writing to the database again");
                self.refill_references().await;
                return;
            }
        }
        tokio::select! {
            biased;
            () = self.shared.shutdown.notified() => {}
            () = self.shared.wake.notified() => {}
            env = self.rx.recv() => {
                if let Some(env) = env {
                    let mut ops = vec![env];
                    ops.extend(self.take_queued());
                    let n = ops.len();
                    self.spool_ops(ops).await;
                    self.release(n);
                } else {
                    self.shared.stopping.store(true, Ordering::SeqCst);
                }
            }
            () = sleep_until(self.next_retry) => {}
        }
    }

    /// Replays the spool (then the stash) while the database takes it.
    async fn replay(&mut self) {
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) {
                return;
            }
            // Keep the channel from filling while the replay runs.
            let incoming = self.take_queued();
            if !incoming.is_empty() {
                let n = incoming.len();
                self.spool_ops(incoming).await;
                self.release(n);
            }
            let spool = self.shared.spool.clone();
            let max = self.config.max_batch;
            let chunk = match tokio::task::spawn_blocking(move || lock(&spool).read(max)).await {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the store spool");
                    self.next_retry = Instant::now() + self.config.retry_interval;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "store spool reader failed");
                    self.next_retry = Instant::now() + self.config.retry_interval;
                    return;
                }
            };
            if !chunk.unreadable.is_empty() {
                let count = chunk.unreadable.len() as u64;
                let spool = self.shared.spool.clone();
                let raw = chunk.unreadable;
                let kept = tokio::task::spawn_blocking(move || lock(&spool).reject_raw(&raw)).await;
                if !matches!(kept, Ok(Ok(()))) {
                    tracing::error!("cannot write rejected.jsonl");
                    self.next_retry = Instant::now() + self.config.retry_interval;
                    return;
                }
                tracing::error!(
                    lines = count,
                    "unreadable lines in the store spool moved to rejected.jsonl"
                );
                self.counters().rejected.fetch_add(count, Ordering::Relaxed);
                if self
                    .advance_spool(chunk.unreadable_end, count)
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            if chunk.ops.is_empty() {
                break;
            }
            let applied = self.apply_all(&chunk.ops).await;
            if applied.done > 0
                && self
                    .advance_spool(chunk.ends[applied.done - 1], applied.done as u64)
                    .await
                    .is_err()
            {
                return;
            }
            if let Some(error) = applied.error {
                self.database_failed(&error);
                return;
            }
        }
        // The spool is empty: the stash (ops the spool could not take) goes next.
        if !self.stash.is_empty() {
            let ops: Vec<Envelope> = self.stash.drain(..).collect();
            let applied = self.apply_all(&ops).await;
            if let Some(error) = applied.error {
                self.stash.extend(ops.into_iter().skip(applied.done));
                self.database_failed(&error);
            }
            self.update_stashed();
        }
    }

    async fn advance_spool(&mut self, end: u64, ops: u64) -> Result<(), ()> {
        let spool = self.shared.spool.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut s = lock(&spool);
            s.advance(end, ops).map(|()| s.pending())
        })
        .await;
        match result {
            Ok(Ok(pending)) => {
                self.counters().spooled.store(pending, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot truncate the store spool");
                self.next_retry = Instant::now() + self.config.retry_interval;
                Err(())
            }
            Err(e) => {
                tracing::error!(error = %e, "spool task failed");
                Err(())
            }
        }
    }

    /// Applies `ops` in order, isolating ops the database refuses for good (kept in the
    /// rejected file). Stops at the first transient failure.
    async fn apply_all(&mut self, ops: &[Envelope]) -> Applied {
        let mut start = 0;
        let mut end = ops.len();
        while start < ops.len() {
            let now = Timestamp::now();
            let result = match timeout(
                self.config.db_timeout,
                self.sink.apply_batch(&ops[start..end], now),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(BatchError::whole(StoreError::Timeout(
                    self.config.db_timeout,
                ))),
            };
            match result {
                Ok(()) => {
                    let n = (end - start) as u64;
                    self.shared
                        .settle(ops[start..end].iter().map(|e| e.op_id.as_str()), true);
                    self.counters().committed.fetch_add(n, Ordering::Relaxed);
                    self.counters().batches.fetch_add(1, Ordering::Relaxed);
                    self.database_ok();
                    start = end;
                    end = ops.len();
                }
                Err(BatchError {
                    index: Some(i),
                    error,
                }) if !error.is_transient() => {
                    if i == 0 {
                        self.reject(&ops[start], &error).await;
                        start += 1;
                        end = ops.len();
                    } else {
                        // Commit the good prefix on its own; the bad op then leads a batch.
                        end = start + i;
                    }
                }
                Err(BatchError { error, .. }) => {
                    return Applied {
                        done: start,
                        error: Some(error),
                    };
                }
            }
        }
        Applied {
            done: ops.len(),
            error: None,
        }
    }

    async fn reject(&mut self, env: &Envelope, error: &StoreError) {
        tracing::error!(op = env.op.name(), op_id = %env.op_id, error = %error, "database refused an op; kept in spool/rejected.jsonl");
        let spool = self.shared.spool.clone();
        let env_id = env.op_id.clone();
        let env = env.clone();
        let message = error.to_string();
        let written =
            tokio::task::spawn_blocking(move || lock(&spool).reject(&[(&env, message)])).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!(op_id = %env_id, "could not write the refused op to rejected.jsonl");
        }
        self.counters().rejected.fetch_add(1, Ordering::Relaxed);
        self.shared.settle([env_id.as_str()], false);
    }

    fn database_failed(&mut self, error: &StoreError) {
        if self.counters().database_ok.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, "database unavailable; spooling writes");
        }
        self.next_retry = Instant::now() + self.config.retry_interval;
    }

    fn database_ok(&self) {
        if !self.counters().database_ok.swap(true, Ordering::Relaxed) {
            tracing::info!("database available again");
        }
    }

    /// Appends ops to the spool (or, if the disk refuses, keeps them in memory after it).
    async fn spool_ops(&mut self, ops: Vec<Envelope>) {
        if ops.is_empty() {
            return;
        }
        if !self.stash.is_empty() {
            self.stash.extend(ops);
            let pending: Vec<Envelope> = self.stash.drain(..).collect();
            if let Err(back) = self.append_spool(pending).await {
                self.stash.extend(back);
            }
        } else if let Err(back) = self.append_spool(ops).await {
            self.stash.extend(back);
        }
        self.update_stashed();
    }

    fn update_stashed(&self) {
        self.counters()
            .stashed
            .store(self.stash.len() as u64, Ordering::Relaxed);
    }

    async fn append_spool(&mut self, ops: Vec<Envelope>) -> Result<(), Vec<Envelope>> {
        let spool = self.shared.spool.clone();
        let ids: Vec<String> = if lock(&self.shared.waiters).is_empty() {
            Vec::new()
        } else {
            ops.iter().map(|e| e.op_id.clone()).collect()
        };
        let result = tokio::task::spawn_blocking(move || {
            let mut s = lock(&spool);
            match s.append(&ops) {
                Ok(()) => Ok(s.pending()),
                Err(e) => Err((e, ops)),
            }
        })
        .await;
        match result {
            Ok(Ok(pending)) => {
                self.counters().spooled.store(pending, Ordering::Relaxed);
                self.shared.settle(ids.iter().map(String::as_str), true);
                Ok(())
            }
            Ok(Err((e, ops))) => {
                tracing::error!(error = %e, ops = ops.len(), "cannot write the store spool; keeping ops in memory");
                Err(ops)
            }
            Err(e) => {
                tracing::error!(error = %e, "spool task failed");
                Err(Vec::new())
            }
        }
    }

    async fn refill_references(&mut self) {
        let have = lock(&self.shared.references).len();
        let want = self.config.reference_pool.saturating_sub(have);
        if want == 0 || (have > 0 && have >= self.shared.reference_low_water) {
            return;
        }
        match timeout(
            self.config.db_timeout,
            self.sink.reserve_references(want, Timestamp::now()),
        )
        .await
        {
            Ok(Ok(refs)) => {
                let now = Instant::now();
                lock(&self.shared.references).extend(refs.into_iter().map(|r| (r, now)));
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "could not reserve reference numbers"),
            Err(_) => tracing::debug!("reserving reference numbers timed out"),
        }
    }

    async fn housekeeping(&mut self) {
        self.next_prune = Instant::now() + Duration::from_secs(3600);
        // Reservations near their expiry are dropped here (they stay in the database until
        // pruned) and replaced with new ones.
        if let Some(fresh_after) = Instant::now().checked_sub(self.shared.reference_max_age) {
            lock(&self.shared.references).retain(|(_, at)| *at >= fresh_after);
        }
        self.refill_references().await;
        let ms = i64::try_from(self.config.prune_after.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp::from_unix_millis(Timestamp::now().unix_millis().saturating_sub(ms));
        match timeout(self.config.db_timeout, self.sink.prune(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(rows = n, "pruned op ids and reservations"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "prune failed"),
            Err(_) => tracing::debug!("prune timed out"),
        }
    }

    /// Orderly stop: commit (or spool) everything queued, close the channel, spool stragglers.
    async fn finish(&mut self) {
        let mut ops = self.take_queued();
        let n = ops.len();
        if !ops.is_empty() {
            if self.spooling() {
                self.spool_ops(ops).await;
            } else {
                let applied = self.apply_all(&ops).await;
                if let Some(error) = applied.error {
                    self.database_failed(&error);
                    self.spool_ops(ops.split_off(applied.done)).await;
                }
            }
        }
        self.release(n);
        self.rx.close();
        let stragglers = self.take_queued();
        let n = stragglers.len();
        self.spool_ops(stragglers).await;
        self.release(n);
        if !self.stash.is_empty() {
            // Last chance for ops the disk would not take.
            let ops: Vec<Envelope> = self.stash.drain(..).collect();
            if let Err(back) = self.append_spool(ops).await {
                tracing::error!(
                    ops = back.len(),
                    "store writer stopping with ops neither committed nor spooled; lost"
                );
            }
            self.update_stashed();
        }
    }
}
