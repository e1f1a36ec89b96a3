//! One media shard: a thread that serves many calls on one absolute 20 ms
//! schedule.
//!
//! Each tick, in this order:
//! 1. the call tasks' commands (new calls, prompts, recordings, bridges);
//! 2. the readable sockets (one epoll call), each drained by one `recvmmsg`
//!    into its session; bridged legs relay what came in to each other and to
//!    the conversation mixer;
//! 3. every session whose deadline has come: the due frame, RTCP; the mixer's
//!    due frames; what the sessions have to send, one `send_to` each; their
//!    events become notes for the call tasks;
//! 4. recording samples gathered for 100 ms go to the writer;
//! 5. the load figures of the tick for the admission [`Monitor`].
//!
//! A call that only records costs its receive; a call that plays costs its
//! send too. Sleeping is a plain `thread::sleep` to the next grid instant: one
//! wake-up per tick for every call of the shard.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use hotline_media::bridge::{ConversationMixer, Side};
use hotline_media::player::PlayId;
use hotline_media::prompt::Prompt;
use hotline_media::recorder::Recorder;
use hotline_media::session::{
    Channel, MediaEvent, RecordEnd, RecordSpec, Session, SessionConfig, SessionStats,
};
use hotline_media::sink::RecordSink;
use slab::Slab;
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::ShardState;
use super::handle::{Closed, MediaNote};
use super::overload::{Limits, Monitor, Transition};
use super::udp::{Poller, Receiver};
use super::writer::{WriterMsg, WriterPort};
use crate::metrics::Metrics;

/// The schedule.
pub(crate) const TICK: Duration = Duration::from_millis(20);
/// Samples gathered before they go to the writer (100 ms).
const BATCH_FRAMES: usize = 800;
/// Datagrams read from one socket in one tick, at most (a flood cannot stall the shard).
const DRAIN_LIMIT: usize = 32;
/// A socket with more than this many datagrams waiting in a tick has a backlog.
const BACKLOG: usize = 2;
/// How long a stopping shard waits for its calls to be removed.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How often the sessions' counters go to the process metrics.
const MERGE_EVERY: Duration = Duration::from_secs(1);

/// A command for one call (by its key).
#[derive(Debug)]
pub(crate) struct ShardCommand {
    pub(crate) key: u64,
    pub(crate) cmd: Cmd,
}

/// What a call task asks of its shard (see [`MediaHandle`](super::MediaHandle)).
#[derive(Debug)]
pub(crate) enum Cmd {
    Add {
        rtp: UdpSocket,
        rtcp: UdpSocket,
        notes: tokio_mpsc::UnboundedSender<MediaNote>,
    },
    Session {
        config: Box<SessionConfig>,
        sending: bool,
    },
    Remote {
        relearn: Option<SocketAddr>,
        sending: bool,
    },
    Play {
        prompts: Vec<Arc<Prompt>>,
        tag: u64,
    },
    StopPlayback,
    Record {
        recorder: Box<Recorder>,
        spec: RecordSpec,
    },
    StopRecording,
    AddLeg {
        rtp: UdpSocket,
        rtcp: UdpSocket,
    },
    LegSession {
        config: Box<SessionConfig>,
        sending: bool,
    },
    LegRemote {
        relearn: Option<SocketAddr>,
        sending: bool,
    },
    Bridge {
        recorder: Option<Box<Recorder>>,
    },
    DropLeg,
    Remove,
}

/// One leg's sockets and session.
struct Leg {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    session: Option<Session>,
    merged: SessionStats,
}

/// The conversation recording of a bridge.
struct Conversation {
    key: u64,
    mixer: ConversationMixer,
    sink: RecordSink,
    next_tick: Instant,
}

/// One call on the shard.
struct Slot {
    key: u64,
    notes: tokio_mpsc::UnboundedSender<MediaNote>,
    caller: Leg,
    operator: Option<Leg>,
    /// The last prompt of the current play list, and its tag.
    play: Option<(PlayId, u64)>,
    /// The writer key of the message recording in the caller's session.
    message: Option<u64>,
    conversation: Option<Conversation>,
    bridged: bool,
}

/// Token layout: slot index × 4 + socket.
const CALLER_RTP: u64 = 0;
const CALLER_RTCP: u64 = 1;
const LEG_RTP: u64 = 2;
const LEG_RTCP: u64 = 3;

/// See the [module docs](self).
pub(crate) struct Shard {
    index: usize,
    commands: mpsc::Receiver<ShardCommand>,
    poller: Poller,
    receiver: Receiver,
    slots: Slab<Slot>,
    by_key: HashMap<u64, usize>,
    writer: WriterPort,
    next_rec: u64,
    state: Arc<ShardState>,
    metrics: Arc<Metrics>,
    monitor: Monitor,
    /// For the first shard: the process's cores, and the last CPU reading.
    cpu: Option<(usize, Instant, Duration)>,
    stop: Arc<AtomicBool>,
    /// When the shard first saw the stop.
    stopping: Option<Instant>,
    ready: Vec<u64>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("index", &self.index)
            .field("calls", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        commands: mpsc::Receiver<ShardCommand>,
        writer: WriterPort,
        state: Arc<ShardState>,
        metrics: Arc<Metrics>,
        limits: Limits,
        cores: Option<usize>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let now = Instant::now();
        Ok(Self {
            index,
            commands,
            poller: Poller::new(1024)?,
            receiver: Receiver::new(),
            slots: Slab::with_capacity(256),
            by_key: HashMap::new(),
            writer,
            next_rec: (index as u64) << 48,
            state,
            metrics,
            monitor: Monitor::new(now, limits),
            cpu: cores.map(|c| (c, now, process_cpu())),
            stop,
            stopping: None,
            ready: Vec::with_capacity(1024),
        })
    }

    /// The loop, until the plane stops (after the calls are over).
    pub(crate) fn run(mut self) {
        let mut due = Instant::now() + TICK;
        let mut next_merge = due + MERGE_EVERY;
        loop {
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            let woke = Instant::now();
            let lateness = woke.saturating_duration_since(due);
            // The grid instant of this tick: sessions start on it.
            let grid = due;
            due += TICK;
            while due <= woke {
                due += TICK;
            }
            // A bug in one call's media must not end every call of the shard: the
            // tick is given up, logged and counted, and the loop goes on.
            let tick = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if !self.commands(grid) {
                    return None;
                }
                let backlog = self.receive(woke);
                self.timeouts(woke);
                let held = self.writer.flush();
                self.monitor.writer_backlog(held);
                Some(backlog)
            }));
            let backlog = match tick {
                Ok(Some(backlog)) => backlog,
                Ok(None) => break,
                Err(_) => {
                    self.metrics.media_panics.inc();
                    tracing::error!(shard = self.index, "media shard tick panicked; going on");
                    0
                }
            };
            if woke >= next_merge {
                next_merge = woke + MERGE_EVERY;
                self.merge_stats();
            }
            let busy = woke.elapsed();
            self.account(woke, lateness, busy, backlog);
        }
        // Every call has gone: the last counters, and every held-back write to the
        // writer (blocking is fine now: no call is left to serve).
        self.merge_stats();
        self.writer.finish();
    }

    /// Applies the queued commands; false once the plane stops and no call is left
    /// (or [`STOP_WAIT`] after the stop: the calls still here are removed, their
    /// recordings closed for the writer).
    fn commands(&mut self, grid: Instant) -> bool {
        while let Ok(c) = self.commands.try_recv() {
            self.command(grid, c);
        }
        if !self.stop.load(Ordering::Acquire) {
            return true;
        }
        let since = *self.stopping.get_or_insert(grid);
        if self.slots.is_empty() {
            return false;
        }
        if grid.saturating_duration_since(since) < STOP_WAIT {
            return true;
        }
        tracing::warn!(
            shard = self.index,
            calls = self.slots.len(),
            "media shard stopping with calls left"
        );
        let left: Vec<usize> = self.slots.iter().map(|(i, _)| i).collect();
        for index in left {
            self.remove(grid, index);
        }
        false
    }

    fn command(&mut self, grid: Instant, c: ShardCommand) {
        let ShardCommand { key, cmd } = c;
        if let Cmd::Add { rtp, rtcp, notes } = cmd {
            let entry = self.slots.vacant_entry();
            let index = entry.key() as u64;
            let ok = self.poller.add(&rtp, index * 4 + CALLER_RTP).is_ok()
                && self.poller.add(&rtcp, index * 4 + CALLER_RTCP).is_ok();
            if !ok {
                tracing::error!(
                    shard = self.index,
                    "RTP socket not watched; the call gets no media"
                );
            }
            entry.insert(Slot {
                key,
                notes,
                caller: Leg {
                    rtp,
                    rtcp,
                    session: None,
                    merged: SessionStats::default(),
                },
                operator: None,
                play: None,
                message: None,
                conversation: None,
                bridged: false,
            });
            self.by_key.insert(key, index as usize);
            return;
        }
        let Some(&index) = self.by_key.get(&key) else {
            return;
        };
        if let Cmd::Remove = cmd {
            self.remove(grid, index);
            return;
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let writer = &mut self.writer;
        match cmd {
            Cmd::Add { .. } | Cmd::Remove => {}
            Cmd::Session { config, sending } => {
                let mut s = Session::new(grid, SystemTime::now(), *config);
                s.set_sending(sending);
                slot.caller.session = Some(s);
            }
            Cmd::Remote { relearn, sending } => {
                if let Some(s) = slot.caller.session.as_mut() {
                    if let Some(remote) = relearn {
                        s.relearn(remote);
                    }
                    s.set_sending(sending);
                }
            }
            Cmd::Play { prompts, tag } => {
                let mut last = None;
                if let Some(s) = slot.caller.session.as_mut() {
                    for p in prompts {
                        last = Some(s.enqueue(p));
                    }
                }
                match last {
                    Some(id) => slot.play = Some((id, tag)),
                    None => {
                        let _ = slot.notes.send(MediaNote::PlayFinished(tag));
                    }
                }
            }
            Cmd::StopPlayback => {
                slot.play = None;
                if let Some(s) = slot.caller.session.as_mut() {
                    s.stop_playback();
                }
            }
            Cmd::Record { recorder, spec } => {
                // One recording at a time: one still open is closed (and noted) first.
                end_message(slot, writer, grid, RecordEnd::Stopped, &self.metrics);
                let (rec_key, sink) = open(writer, &mut self.next_rec, recorder, 1);
                match slot.caller.session.as_mut() {
                    Some(s) => {
                        s.start_recording(grid, sink, spec);
                        slot.message = Some(rec_key);
                    }
                    None => {
                        let closed = close(writer, rec_key, sink);
                        let _ = slot.notes.send(MediaNote::RecordingEnded {
                            reason: RecordEnd::Stopped,
                            closed,
                            speech: None,
                        });
                    }
                }
            }
            Cmd::StopRecording => {
                end_message(slot, writer, grid, RecordEnd::Stopped, &self.metrics)
            }
            Cmd::AddLeg { rtp, rtcp } => {
                let i = index as u64;
                if self.poller.add(&rtp, i * 4 + LEG_RTP).is_err()
                    || self.poller.add(&rtcp, i * 4 + LEG_RTCP).is_err()
                {
                    tracing::error!(shard = self.index, "operator RTP socket not watched");
                }
                if let Some(old) = slot.operator.replace(Leg {
                    rtp,
                    rtcp,
                    session: None,
                    merged: SessionStats::default(),
                }) {
                    self.poller.remove(&old.rtp);
                    self.poller.remove(&old.rtcp);
                }
            }
            Cmd::LegSession { config, sending } => {
                if let Some(leg) = slot.operator.as_mut() {
                    let mut s = Session::new(grid, SystemTime::now(), *config);
                    s.set_sending(sending);
                    leg.session = Some(s);
                }
            }
            Cmd::LegRemote { relearn, sending } => {
                if let Some(s) = slot.operator.as_mut().and_then(|l| l.session.as_mut()) {
                    if let Some(remote) = relearn {
                        s.relearn(remote);
                    }
                    s.set_sending(sending);
                }
            }
            Cmd::Bridge { recorder } => {
                let Some(op) = slot.operator.as_mut().and_then(|l| l.session.as_mut()) else {
                    if let Some(recorder) = recorder {
                        // No leg to bridge: the recording ends as it starts.
                        let (rec_key, sink) = open(writer, &mut self.next_rec, recorder, 2);
                        let closed = close(writer, rec_key, sink);
                        let _ = slot.notes.send(MediaNote::ConversationEnded { closed });
                    }
                    return;
                };
                op.set_bridged(true);
                if let Some(s) = slot.caller.session.as_mut() {
                    s.stop_playback();
                    s.set_bridged(true);
                }
                slot.play = None;
                slot.bridged = true;
                if let Some(mut old) = slot.conversation.take() {
                    // Bridged again: the conversation recording so far is closed first.
                    let _ = old.mixer.finish(grid, &mut old.sink);
                    let closed = close(writer, old.key, old.sink);
                    let _ = slot.notes.send(MediaNote::ConversationEnded { closed });
                }
                if let Some(recorder) = recorder {
                    let (rec_key, sink) = open(writer, &mut self.next_rec, recorder, 2);
                    slot.conversation = Some(Conversation {
                        key: rec_key,
                        mixer: ConversationMixer::new(grid),
                        sink,
                        next_tick: grid + TICK,
                    });
                }
            }
            Cmd::DropLeg => {
                drop_leg(slot, writer, &mut self.poller, grid, &self.metrics);
            }
        }
    }

    /// Removes a call: its recordings closed (with their notes), its sockets let go.
    fn remove(&mut self, now: Instant, index: usize) {
        let Some(mut slot) = self.slots.try_remove(index) else {
            return;
        };
        self.by_key.remove(&slot.key);
        end_message(
            &mut slot,
            &mut self.writer,
            now,
            RecordEnd::Stopped,
            &self.metrics,
        );
        drop_leg(
            &mut slot,
            &mut self.writer,
            &mut self.poller,
            now,
            &self.metrics,
        );
        if let Some(s) = slot.caller.session.as_mut() {
            merge(&self.metrics, s, &mut slot.caller.merged);
            tracing::debug!(call = slot.key, stats = ?s.stats(), "media");
        }
        self.poller.remove(&slot.caller.rtp);
        self.poller.remove(&slot.caller.rtcp);
        self.state.calls.fetch_sub(1, Ordering::Relaxed);
    }

    /// Reads every readable socket; returns how many had a backlog.
    fn receive(&mut self, now: Instant) -> u32 {
        self.ready.clear();
        let ready = &mut self.ready;
        if let Err(e) = self.poller.ready(|t| ready.push(t)) {
            tracing::error!(error = %e, "epoll failed");
            return 0;
        }
        let mut backlog = 0;
        for &token in &self.ready {
            let Some(slot) = self.slots.get_mut((token / 4) as usize) else {
                continue;
            };
            let n = match token % 4 {
                CALLER_RTP => {
                    let n = match slot.caller.session.as_mut() {
                        Some(s) => accepted(s, |s| {
                            self.receiver
                                .drain(&slot.caller.rtp, DRAIN_LIMIT, |from, b| {
                                    s.handle_rtp(now, from, b)
                                })
                        }),
                        // No session yet (an offerless INVITE before its ACK): dropped.
                        None => self
                            .receiver
                            .drain(&slot.caller.rtp, DRAIN_LIMIT, |_, _| {}),
                    };
                    if slot.bridged {
                        relay(slot, now, Side::Caller);
                    }
                    n
                }
                LEG_RTP => {
                    let Some(leg) = slot.operator.as_mut() else {
                        continue;
                    };
                    let n = match leg.session.as_mut() {
                        Some(s) => accepted(s, |s| {
                            self.receiver
                                .drain(&leg.rtp, DRAIN_LIMIT, |from, b| s.handle_rtp(now, from, b))
                        }),
                        None => self.receiver.drain(&leg.rtp, DRAIN_LIMIT, |_, _| {}),
                    };
                    if slot.bridged {
                        relay(slot, now, Side::Operator);
                    }
                    n
                }
                // Incoming RTCP is read and ignored.
                CALLER_RTCP => {
                    self.receiver
                        .drain(&slot.caller.rtcp, DRAIN_LIMIT, |_, _| {});
                    0
                }
                _ => {
                    if let Some(leg) = slot.operator.as_ref() {
                        self.receiver.drain(&leg.rtcp, DRAIN_LIMIT, |_, _| {});
                    }
                    0
                }
            };
            if n > BACKLOG {
                backlog += 1;
            }
        }
        backlog
    }

    /// Deadlines, sends, events and recording batches of every call.
    fn timeouts(&mut self, now: Instant) {
        for (_, slot) in self.slots.iter_mut() {
            if let Some(s) = slot.caller.session.as_mut()
                && now >= s.poll_timeout()
            {
                s.handle_timeout(now);
            }
            if let Some(s) = slot.operator.as_mut().and_then(|l| l.session.as_mut())
                && now >= s.poll_timeout()
            {
                s.handle_timeout(now);
            }
            if let Some(conv) = slot.conversation.as_mut()
                && now >= conv.next_tick
            {
                conv.next_tick += TICK;
                if conv.next_tick <= now {
                    conv.next_tick = now + TICK;
                }
                // A failed writer stops the conversation's recording; the bridge goes on.
                let _ = conv.mixer.tick(now, &mut conv.sink);
                if conv.sink.pending_frames() >= BATCH_FRAMES {
                    let samples = conv.sink.take();
                    self.writer.send(WriterMsg::Pcm {
                        key: conv.key,
                        samples,
                    });
                }
            }
            transmit(&mut slot.caller, &self.metrics);
            if let Some(leg) = slot.operator.as_mut() {
                transmit(leg, &self.metrics);
            }
            events(slot, &mut self.writer, now, &self.metrics);
            if let (Some(key), Some(sink)) = (
                slot.message,
                slot.caller.session.as_mut().and_then(Session::recorder_mut),
            ) && sink.pending_frames() >= BATCH_FRAMES
            {
                let samples = sink.take();
                self.writer.send(WriterMsg::Pcm { key, samples });
            }
        }
    }

    fn merge_stats(&mut self) {
        for (_, slot) in self.slots.iter_mut() {
            if let Some(s) = slot.caller.session.as_mut() {
                merge(&self.metrics, s, &mut slot.caller.merged);
            }
            if let Some(leg) = slot.operator.as_mut()
                && let Some(s) = leg.session.as_mut()
            {
                merge(&self.metrics, s, &mut leg.merged);
            }
        }
    }

    /// The tick's load figures, and the admission decision once a window is over.
    fn account(&mut self, now: Instant, lateness: Duration, busy: Duration, backlog: u32) {
        self.state.ticks.fetch_add(1, Ordering::Relaxed);
        if lateness > super::overload::LATE_TICK {
            self.state.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        self.monitor
            .tick(lateness, busy, backlog, self.slots.len() as u32);
        if let Some((cores, at, cpu)) = self.cpu.as_mut()
            && now.saturating_duration_since(*at) >= super::overload::WINDOW
        {
            let used = process_cpu();
            let wall = now.saturating_duration_since(*at).as_secs_f64() * *cores as f64;
            self.monitor
                .cpu(used.saturating_sub(*cpu).as_secs_f64() / wall.max(1e-9));
            *at = now;
            *cpu = used;
        }
        let Some(t) = self.monitor.poll(now) else {
            return;
        };
        let w = self.monitor.last();
        let milli = |v: f64| (v * 1000.0).round() as u64;
        self.state
            .busy_milli
            .store(milli(w.busy_share), Ordering::Relaxed);
        self.state
            .late_milli
            .store(milli(w.late_share), Ordering::Relaxed);
        self.state
            .backlog_milli
            .store(milli(w.backlog_share), Ordering::Relaxed);
        self.state
            .cpu_milli
            .store(milli(w.cpu_share), Ordering::Relaxed);
        match t {
            Transition::Refusing { reason, value } => {
                self.state.refusing.store(true, Ordering::Relaxed);
                self.state.episodes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    shard = self.index,
                    reason = reason.as_str(),
                    value = format!("{:.0} %", value * 100.0),
                    calls = self.slots.len(),
                    "media overloaded: new calls get 503 until it calms down"
                );
            }
            Transition::Admitting => {
                self.state.refusing.store(false, Ordering::Relaxed);
                tracing::info!(
                    shard = self.index,
                    calls = self.slots.len(),
                    "media load back to normal: taking new calls"
                );
            }
        }
    }
}

/// Sends what a leg's session has to send, one `send_to` a packet. Non-blocking:
/// a full socket buffer drops the packet (counted) rather than delay the others.
fn transmit(leg: &mut Leg, metrics: &Metrics) {
    let Leg {
        rtp, rtcp, session, ..
    } = leg;
    let Some(s) = session.as_mut() else {
        return;
    };
    while let Some((ch, dest, bytes)) = s.poll_transmit() {
        let sock = match ch {
            Channel::Rtp => &*rtp,
            Channel::Rtcp => &*rtcp,
        };
        if sock.send_to(&bytes, dest).is_err() {
            metrics.rtp_send_errors.inc();
        }
    }
}

/// Turns the sessions' events into notes for the call task.
fn events(slot: &mut Slot, writer: &mut WriterPort, now: Instant, metrics: &Metrics) {
    while let Some(ev) = slot.caller.session.as_mut().and_then(Session::poll_event) {
        match ev {
            MediaEvent::Digit(d) => {
                let _ = slot.notes.send(MediaNote::Digit(d));
            }
            MediaEvent::PromptFinished(id) => {
                if let Some((_, tag)) = slot.play.take_if(|(last, _)| *last == id) {
                    let _ = slot.notes.send(MediaNote::PlayFinished(tag));
                }
            }
            MediaEvent::RecordingEnded(reason) => end_message(slot, writer, now, reason, metrics),
            MediaEvent::SourceLearned(from) => {
                tracing::debug!(call = slot.key, %from, "RTP source learned");
            }
        }
    }
    // The operator's keys are not IVR input; nothing else of the leg's matters here.
    while let Some(ev) = slot
        .operator
        .as_mut()
        .and_then(|l| l.session.as_mut())
        .and_then(Session::poll_event)
    {
        if let MediaEvent::SourceLearned(from) = ev {
            tracing::debug!(call = slot.key, %from, "operator RTP source learned");
        }
    }
}

/// Relays what one leg received to the other, and to the conversation recording.
fn relay(slot: &mut Slot, now: Instant, from: Side) {
    let Slot {
        caller,
        operator,
        conversation,
        ..
    } = slot;
    let (Some(c), Some(o)) = (
        caller.session.as_mut(),
        operator.as_mut().and_then(|l| l.session.as_mut()),
    ) else {
        return;
    };
    let (src, dst) = match from {
        Side::Caller => (c, o),
        Side::Operator => (o, c),
    };
    while let Some(p) = src.poll_relay() {
        if let Some(conv) = conversation.as_mut() {
            conv.mixer.push(now, from, &p);
        }
        dst.send_relayed(now, &p);
    }
}

/// Ends the message recording, if one runs (`Stopped`: now; otherwise it ended
/// itself), and tells the call task.
fn end_message(
    slot: &mut Slot,
    writer: &mut WriterPort,
    now: Instant,
    reason: RecordEnd,
    metrics: &Metrics,
) {
    let Some(key) = slot.message else {
        return;
    };
    let Some(s) = slot.caller.session.as_mut() else {
        return;
    };
    let speech = s.recording_speech();
    let sink = match reason {
        RecordEnd::Stopped => s.stop_recording(now),
        _ => s.take_recorder(now),
    };
    let Some(sink) = sink else {
        return;
    };
    slot.message = None;
    let closed = close(writer, key, sink);
    metrics.recording_gap_ms.add(closed.silence_ms);
    let _ = slot.notes.send(MediaNote::RecordingEnded {
        reason,
        closed,
        speech,
    });
}

/// Drops the operator leg: unbridged, its sockets let go, the conversation closed.
fn drop_leg(
    slot: &mut Slot,
    writer: &mut WriterPort,
    poller: &mut Poller,
    now: Instant,
    metrics: &Metrics,
) {
    slot.bridged = false;
    if let Some(s) = slot.caller.session.as_mut() {
        s.set_bridged(false);
    }
    if let Some(mut conv) = slot.conversation.take() {
        // A failed writer: what reached the disk is kept.
        let _ = conv.mixer.finish(now, &mut conv.sink);
        let closed = close(writer, conv.key, conv.sink);
        let _ = slot.notes.send(MediaNote::ConversationEnded { closed });
    }
    if let Some(mut leg) = slot.operator.take() {
        if let Some(s) = leg.session.as_mut() {
            merge(metrics, s, &mut leg.merged);
        }
        poller.remove(&leg.rtp);
        poller.remove(&leg.rtcp);
    }
}

/// Runs `drain` on a session; returns how many of the datagrams it took the session
/// accepted as RTP from its source (foreign and malformed ones are not a backlog of ours).
fn accepted(s: &mut Session, drain: impl FnOnce(&mut Session) -> usize) -> usize {
    let before = s.stats().packets_received;
    drain(s);
    (s.stats().packets_received - before) as usize
}

/// Opens a recording of `channels` in the writer: its key, and the sink that feeds it.
fn open(
    writer: &mut WriterPort,
    next_rec: &mut u64,
    recorder: Box<Recorder>,
    channels: u16,
) -> (u64, RecordSink) {
    *next_rec += 1;
    let sink = RecordSink::new(channels, BATCH_FRAMES);
    writer.send(WriterMsg::Open {
        key: *next_rec,
        recorder,
        failed: sink.failure_flag(),
    });
    (*next_rec, sink)
}

/// Sends a sink's last samples and closes its recording in the writer.
fn close(writer: &mut WriterPort, key: u64, mut sink: RecordSink) -> Closed {
    let samples = sink.take();
    if !samples.is_empty() {
        writer.send(WriterMsg::Pcm { key, samples });
    }
    let (reply, recorder) = oneshot::channel();
    writer.send(WriterMsg::Close { key, reply });
    Closed {
        recorder,
        silence_ms: sink.silence_ms(),
    }
}

fn merge(metrics: &Metrics, s: &mut Session, last: &mut SessionStats) {
    let stats = s.stats();
    metrics.merge_session(s.take_lateness(), &stats, last);
}

/// The process's CPU time so far (user + system).
fn process_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}
