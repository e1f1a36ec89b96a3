//! One task per call: SDP, ringing, answer, then the call's life: the media
//! session (RTP, prompts, DTMF, recording) and the flow (menus) driven by one
//! loop, until either side hangs up.
//!
//! The loop owns the RTP and RTCP sockets, the sans-IO [`Session`] and
//! [`Flow`], and after every input drains both: session transmits go out,
//! session events become flow inputs, flow commands become session or SIP
//! commands. Blocking file work (creating, finishing and syncing recordings)
//! runs on the blocking pool, never in this loop.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hotline_ivr::{Command as FlowCommand, Flow, Input};
use hotline_media::dtmf::{Digit, parse_info};
use hotline_media::g711::Law;
use hotline_media::player::PlayId;
use hotline_media::recorder::Recorder;
use hotline_media::session::{
    Channel, MediaEvent, RecordEnd, RecordSpec, Session, SessionConfig, SessionStats,
};
use hotline_sip::endpoint::{CallHandle, EndReason, IncomingCall};
use hotline_sip::sdp::{self, Codec, Direction, LocalMedia, Negotiated};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::prompts::{Assets, to_media_lang};
use crate::recordings;
use crate::registrations::Registrations;
use crate::rtp_ports::RtpPorts;
use crate::sip_task::{Command, end_reason};
use crate::storage::Storage;
use hotline_media::bridge::{ConversationMixer, Side};
use hotline_queue::{CallEvents, CallQueueEvent, OfferFailure, OperatorName, QueueHandle};
use hotline_sip::endpoint::OutgoingCall;
use hotline_store::{
    CallUpdate, Disposition as StoreDisposition, NewCall, NewRecording, RecordingKind,
    RecordingStatus, Timestamp,
};

/// What the SIP task tells a call, about the caller's leg or the operator leg the call
/// placed (the channel carries the leg's handle with each event).
#[derive(Debug)]
pub(crate) enum CallEvent {
    Acked(Option<Bytes>),
    ReInvite(Option<Bytes>),
    Info(Bytes, Bytes),
    Ended(EndReason),
    /// A provisional response to our INVITE (operator leg).
    Progress(u16),
    /// The 2xx to our INVITE, with its SDP (the endpoint sent the ACK).
    Answered(Option<Bytes>),
}

pub(crate) struct CallCtx {
    pub(crate) handle: CallHandle,
    pub(crate) config: Arc<Config>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) rtp: Arc<RtpPorts>,
    pub(crate) media_ip: std::net::IpAddr,
    pub(crate) assets: Arc<Assets>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) storage: Storage,
    pub(crate) queue: QueueHandle,
    pub(crate) registrations: Registrations,
}

impl CallCtx {
    async fn send(&self, cmd: Command) {
        let _ = self.commands.send(cmd).await;
    }
}

/// Runs a call from INVITE to its end. The caller attaches the `call` span
/// (`Instrument`), so every line of the call carries its id whichever thread runs it.
pub(crate) async fn run(
    ctx: CallCtx,
    inc: IncomingCall,
    mut events: mpsc::Receiver<(CallHandle, CallEvent)>,
) {
    let call = ctx.handle;
    // Refused before anything is stored: a scanner flooding us from outside the
    // trunk must not fill the database nor use up reference numbers.
    if !ctx.config.sip.trunk_allows(inc.peer.remote.ip()) {
        tracing::warn!(remote = %inc.peer.remote, "INVITE from outside sip.trunk_sources refused");
        ctx.send(Command::Reject(call, 403, None)).await;
        return;
    }
    let _task = ctx.metrics.call_task();
    // The caller's number (inc.from_user) is never logged; the store keeps what
    // privacy.caller_id says (a pseudonym by default).
    let row = hotline_store::new_id();
    let writer = &ctx.storage.writer;
    let reference = writer.insert_call(NewCall {
        id: row.clone(),
        sip_call_id: inc.sip_call_id.clone(),
        reference: None,
        started_at: Timestamp::now(),
        trunk_source: Some(inc.peer.remote.to_string()),
        called_number: inc.to_user.clone(),
        caller: ctx.storage.privacy.caller(inc.from_user.as_deref()),
    });
    let refuse = |why: &str| {
        writer.add_call_event(&row, Timestamp::now(), "rejected", why);
        writer.update_call(
            &row,
            CallUpdate {
                ended_at: Some(Timestamp::now()),
                disposition: Some(StoreDisposition::Rejected),
                ..CallUpdate::default()
            },
        );
    };
    let Some(mut lease) = ctx.rtp.lease() else {
        tracing::warn!("no free RTP port in rtp.port_range");
        refuse("no free RTP port");
        ctx.send(Command::Reject(call, 503, None)).await;
        return;
    };
    let mut local = LocalMedia {
        address: ctx.media_ip,
        port: lease.port,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let (negotiated, body) = match &inc.sdp {
        Some(offer) => match sdp::answer(offer, &local) {
            Ok((n, body)) => (Some(n), body),
            Err(e) => {
                tracing::info!(error = %e, "offer refused");
                refuse(&format!("SDP offer refused: {e}"));
                let warning = format!("305 hotline \"{}\"", e.to_string().replace('"', "'"));
                ctx.send(Command::Reject(call, e.status_code(), Some(warning)))
                    .await;
                return;
            }
        },
        None => (None, sdp::offer(&local)),
    };
    tracing::info!(sip_call_id = %inc.sip_call_id, remote = %inc.peer.remote, "incoming call");
    ctx.metrics.calls_total.inc();

    let delay = Duration::from_millis(ctx.config.sip.answer_delay_ms);
    if !delay.is_zero() {
        ctx.send(Command::Ringing(call)).await;
        let ring = tokio::time::sleep(delay);
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                ev = events.recv() => match ev.map(|(_, e)| e) {
                    Some(CallEvent::Ended(r)) => {
                        tracing::info!(reason = end_reason(r), "call ended before answer");
                        writer.update_call(&row, CallUpdate {
                            ended_at: Some(Timestamp::now()),
                            disposition: Some(StoreDisposition::Abandoned),
                            ..CallUpdate::default()
                        });
                        return;
                    }
                    None => return,
                    Some(_) => {}
                }
            }
        }
    }
    let sockets = lease
        .take_sockets()
        .ok_or_else(|| std::io::Error::other("sockets already taken"))
        .and_then(|(rtp, rtcp)| Ok((UdpSocket::from_std(rtp)?, UdpSocket::from_std(rtcp)?)));
    let (rtp, rtcp) = match sockets {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot use the RTP socket");
            ctx.send(Command::Reject(call, 500, None)).await;
            return;
        }
    };
    ctx.send(Command::Answer(call, Bytes::from(body))).await;

    let mut c = ActiveCall {
        ctx: &ctx,
        call,
        session: None,
        reference: reference.clone(),
        queue_rx: None,
        connected_rx: None,
        queue_backlog: std::collections::VecDeque::new(),
        deferred_offer: None,
        leg: None,
        bridged: false,
        conversation: None,
        operator: None,
        flow: Flow::new(ctx.assets.flow.clone(), Instant::now(), reference),
        row,
        outcome_written: false,
        negotiated,
        play_last: None,
        recording: None,
        acked: false,
        hangup_sent: false,
        merged: SessionStats::default(),
        rtp,
        rtcp,
    };
    if let Some(n) = c.negotiated.clone() {
        c.start_session(&n);
    }
    let started = tokio::time::Instant::now();
    let hard_cap = started + Duration::from_secs(ctx.config.calls.max_duration_secs);
    let mut rtp_buf = [0u8; 2048];
    let mut rtcp_buf = [0u8; 2048];
    let mut leg_buf = [0u8; 2048];
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // One timer for the session and the flow, reset only when the deadline moves:
    // a call wakes 50 times a second and must not build new timers each time.
    let tick = tokio::time::sleep_until(c.wake_at());
    tokio::pin!(tick);
    let cap = tokio::time::sleep_until(hard_cap);
    tokio::pin!(cap);
    loop {
        let wake = c.wake_at();
        if tick.deadline() != wake {
            tick.as_mut().reset(wake);
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some((h, ev)) if h != call => c.leg_event(h, ev).await,
                None => {
                    // The SIP task is gone (shutdown): end the call as if hung up, so the
                    // recording and the outcome are still written.
                    c.ended().await;
                    break;
                }
                Some((_, CallEvent::Ended(r))) => {
                    tracing::info!(reason = end_reason(r), secs = started.elapsed().as_secs(), "call ended");
                    c.ended().await;
                    break;
                }
                Some((_, CallEvent::Acked(sdp))) => c.acked(sdp, &mut local).await,
                Some((_, CallEvent::ReInvite(offer))) => c.reinvite(offer, &mut local).await,
                Some((_, CallEvent::Progress(_) | CallEvent::Answered(_))) => {}
                Some((_, CallEvent::Info(content_type, body))) => {
                    match parse_info(&String::from_utf8_lossy(&content_type), &body) {
                        Ok(info) => c.digit(info.digit),
                        Err(e) => tracing::debug!(error = %e, "INFO without a usable digit"),
                    }
                }
            },
            r = c.rtp.recv_from(&mut rtp_buf) => {
                if let (Ok((n, from)), Some(s)) = (r, c.session.as_mut()) {
                    s.handle_rtp(Instant::now(), from, &rtp_buf[..n]);
                    if c.bridged {
                        c.relay(Side::Caller);
                    }
                }
            }
            r = leg_recv(c.leg.as_ref(), &mut leg_buf) => {
                if let (Ok((n, from)), Some(s)) = (r, c.leg.as_mut().and_then(|l| l.session.as_mut())) {
                    s.handle_rtp(Instant::now(), from, &leg_buf[..n]);
                    if c.bridged {
                        c.relay(Side::Operator);
                    }
                }
            }
            ev = queue_recv(&mut c.queue_backlog, &mut c.queue_rx) => c.queue_event(ev).await,
            // Incoming RTCP is accepted and ignored.
            _ = c.rtcp.recv_from(&mut rtcp_buf) => {}
            _ = &mut tick => {
                let now = Instant::now();
                if let Some(s) = c.session.as_mut() {
                    s.handle_timeout(now);
                }
                if let Some(s) = c.leg.as_mut().and_then(|l| l.session.as_mut()) {
                    s.handle_timeout(now);
                }
                c.mix(now);
                c.flow.handle_timeout(now);
            }
            _ = housekeeping.tick() => c.housekeeping(),
            _ = &mut cap, if !c.hangup_sent && !c.bridged => {
                tracing::info!(max_secs = ctx.config.calls.max_duration_secs, "call reached calls.max_duration_secs; hanging up");
                c.hang_up().await;
            }
        }
        c.drain().await;
    }
    if let Some(s) = c.session.as_mut() {
        let stats = s.stats();
        ctx.metrics
            .merge_session(s.take_lateness(), &stats, &mut c.merged);
        tracing::debug!(?stats, "media");
    }
    if !c.outcome_written {
        // The flow gave no outcome (the SIP side ended first): the call still ends in the store.
        ctx.storage.writer.update_call(
            &c.row,
            CallUpdate {
                ended_at: Some(Timestamp::now()),
                disposition: Some(StoreDisposition::Abandoned),
                ..CallUpdate::default()
            },
        );
    }
    drop(lease);
}

struct ActiveRecording {
    id: String,
    sync: Arc<std::fs::File>,
    syncing: Arc<std::sync::atomic::AtomicBool>,
}

/// The call to an operator's softphone, from the offer to its end.
struct OperatorLeg {
    name: OperatorName,
    handle: CallHandle,
    /// The RTP ports, held until the leg ends.
    _lease: crate::rtp_ports::RtpLease,
    rtp: UdpSocket,
    /// RTCP from the operator is not read (kept open so the port stays ours).
    _rtcp: UdpSocket,
    local: LocalMedia,
    session: Option<Session>,
    answered_at: Option<Instant>,
    /// The queue confirmed the answer (`Connected`).
    connected: bool,
    hung_up: bool,
}

/// The recording of the bridged conversation: caller left, operator right.
struct Conversation {
    mixer: ConversationMixer,
    /// When the mixer writes next (every 20 ms: bridged sessions have no pacer tick).
    next_tick: Instant,
    /// A write failed: nothing more is written, what is on disk is kept.
    write_failed: bool,
    recorder: Option<Recorder>,
    sync: ActiveRecording,
}

struct ActiveCall<'a> {
    ctx: &'a CallCtx,
    call: CallHandle,
    /// The number read to the caller (shown on the operator's phone).
    reference: String,
    /// The queue's news for this call while it waits.
    queue_rx: Option<CallEvents>,
    /// The same channel once an operator took the call (see `queue_event`).
    connected_rx: Option<CallEvents>,
    /// Queue events read ahead (see `queue_withdrew`), handled before the channel's.
    queue_backlog: std::collections::VecDeque<CallQueueEvent>,
    /// An offer that came while the previous leg was still up.
    deferred_offer: Option<OperatorName>,
    /// The operator leg, ringing or answered.
    leg: Option<OperatorLeg>,
    /// Caller and operator hear each other.
    bridged: bool,
    conversation: Option<Conversation>,
    /// The operator who answered.
    operator: Option<OperatorName>,
    /// The call's row in the store.
    row: String,
    outcome_written: bool,
    session: Option<Session>,
    flow: Flow,
    negotiated: Option<Negotiated>,
    /// The last prompt of the flow's current play list.
    play_last: Option<PlayId>,
    recording: Option<ActiveRecording>,
    acked: bool,
    hangup_sent: bool,
    /// Session counters already added to the process-wide metrics.
    merged: SessionStats,
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl ActiveCall<'_> {
    fn start_session(&mut self, n: &Negotiated) {
        let cfg = session_config(n, self.call.0);
        let mut s = Session::new(Instant::now(), SystemTime::now(), cfg);
        s.set_sending(n.direction.receives());
        self.session = Some(s);
    }

    fn wake_at(&self) -> tokio::time::Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let s = self.session.as_ref().map_or(far, Session::poll_timeout);
        let f = self.flow.poll_timeout().unwrap_or(far);
        let l = self
            .leg
            .as_ref()
            .and_then(|l| l.session.as_ref())
            .map_or(far, Session::poll_timeout);
        let m = self.conversation.as_ref().map_or(far, |c| c.next_tick);
        tokio::time::Instant::from_std(s.min(f).min(l).min(m))
    }

    async fn acked(&mut self, sdp: Option<Bytes>, local: &mut LocalMedia) {
        if self.negotiated.is_none() {
            // Offerless INVITE: the answer is in the ACK.
            match sdp.as_deref().map(|a| sdp::accept_answer(a, local)) {
                Some(Ok(n)) => {
                    match self.session.as_mut() {
                        // The answer to our offer in a re-INVITE: same call, same
                        // session (a recording in progress goes on).
                        Some(s) => {
                            s.relearn(n.remote);
                            s.set_sending(n.direction.receives());
                        }
                        None => self.start_session(&n),
                    }
                    self.negotiated = Some(n);
                }
                _ => {
                    tracing::info!("no usable SDP answer in the ACK; hanging up");
                    self.hang_up().await;
                    return;
                }
            }
        }
        if !self.acked {
            self.acked = true;
            self.ctx.storage.writer.update_call(
                &self.row,
                CallUpdate {
                    answered_at: Some(Timestamp::now()),
                    ..CallUpdate::default()
                },
            );
            self.flow.handle(Instant::now(), Input::Answered);
        }
    }

    async fn reinvite(&mut self, offer: Option<Bytes>, local: &mut LocalMedia) {
        local.session_version += 1;
        let Some(offer) = offer else {
            // Offerless re-INVITE: offer again; the answer comes in the ACK.
            self.negotiated = None;
            self.ctx
                .send(Command::AcceptReinvite(
                    self.call,
                    Bytes::from(sdp::offer(local)),
                ))
                .await;
            return;
        };
        match sdp::answer(&offer, local) {
            Ok((n, body)) => {
                tracing::info!(direction = ?n.direction, "re-INVITE");
                if let Some(s) = self.session.as_mut() {
                    if self
                        .negotiated
                        .as_ref()
                        .is_none_or(|old| old.remote != n.remote)
                    {
                        s.relearn(n.remote);
                    }
                    s.set_sending(n.direction.receives());
                }
                self.negotiated = Some(n);
                self.ctx
                    .send(Command::AcceptReinvite(self.call, Bytes::from(body)))
                    .await;
            }
            Err(e) => {
                self.ctx
                    .send(Command::RejectReinvite(self.call, e.status_code()))
                    .await
            }
        }
    }

    fn digit(&mut self, d: Digit) {
        self.flow.handle(Instant::now(), Input::Digit(d.as_char()));
    }

    async fn hang_up(&mut self) {
        if !self.hangup_sent {
            self.hangup_sent = true;
            self.ctx.send(Command::Hangup(self.call)).await;
        }
    }

    /// The caller hung up (or we did and the SIP side confirmed): close the recording first.
    async fn ended(&mut self) {
        let now = Instant::now();
        self.leave_queue().await;
        self.end_leg(now).await;
        if let Some(rec) = self.session.as_mut().and_then(|s| s.stop_recording(now)) {
            let duration = self.finish_recording(rec).await;
            self.flow.handle(
                now,
                Input::RecordingFinished {
                    reason: hotline_ivr::RecordEnd::HangUp,
                    duration_ms: duration,
                },
            );
        }
        self.flow.handle(now, Input::HungUp);
        self.drain_flow().await;
    }

    fn housekeeping(&mut self) {
        // fdatasync of the recordings in progress, off the packet path.
        let conversation = self.conversation.as_mut().map(|c| {
            if let Some(rec) = c.recorder.as_mut()
                && let Err(e) = rec.maybe_refresh()
            {
                tracing::warn!(error = %e, "conversation recording header not refreshed");
            }
            &c.sync
        });
        for r in self.recording.iter().chain(conversation) {
            if r.syncing.swap(true, std::sync::atomic::Ordering::AcqRel) {
                continue;
            }
            // One fdatasync in flight per recording: a slow disk must not pile them up.
            let f = r.sync.clone();
            let busy = r.syncing.clone();
            tokio::task::spawn_blocking(move || {
                let _ = f.sync_data();
                busy.store(false, std::sync::atomic::Ordering::Release);
            });
        }
        if let Some(s) = self.session.as_mut() {
            let stats = s.stats();
            self.ctx
                .metrics
                .merge_session(s.take_lateness(), &stats, &mut self.merged);
        }
    }

    /// Drains the session and the flow until neither has anything left.
    async fn drain(&mut self) {
        loop {
            self.drain_transmits();
            let mut progressed = false;
            while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
                progressed = true;
                self.media_event(ev).await;
            }
            // The operator's keys are not IVR input; nothing else of the leg's matters here.
            while let Some(ev) = self
                .leg
                .as_mut()
                .and_then(|l| l.session.as_mut())
                .and_then(Session::poll_event)
            {
                if let MediaEvent::SourceLearned(from) = ev {
                    tracing::debug!(%from, "operator RTP source learned");
                }
            }
            progressed |= self.drain_flow().await;
            if !progressed {
                break;
            }
        }
    }

    fn drain_transmits(&mut self) {
        if let Some(leg) = self.leg.as_mut()
            && let Some(s) = leg.session.as_mut()
        {
            while let Some((ch, dest, bytes)) = s.poll_transmit() {
                // RTCP to the operator leaves from the RTP socket's neighbour only in
                // theory; softphones ignore a missing SR, so only RTP goes out.
                if ch == Channel::Rtp && leg.rtp.try_send_to(&bytes, dest).is_err() {
                    self.ctx.metrics.rtp_send_errors.inc();
                }
            }
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while let Some((ch, dest, bytes)) = s.poll_transmit() {
            let sock = match ch {
                Channel::Rtp => &self.rtp,
                Channel::Rtcp => &self.rtcp,
            };
            // Non-blocking: a full socket buffer drops the packet rather than delay the schedule.
            if sock.try_send_to(&bytes, dest).is_err() {
                self.ctx.metrics.rtp_send_errors.inc();
            }
        }
    }

    async fn media_event(&mut self, ev: MediaEvent) {
        let now = Instant::now();
        match ev {
            MediaEvent::Digit(d) => self.digit(d),
            MediaEvent::PromptFinished(id) => {
                if self.play_last == Some(id) {
                    self.play_last = None;
                    self.flow.handle(now, Input::PromptFinished);
                }
            }
            MediaEvent::RecordingEnded(reason) => {
                if let Some(rec) = self.session.as_mut().and_then(|s| s.take_recorder(now)) {
                    let duration = self.finish_recording(rec).await;
                    let reason = match reason {
                        RecordEnd::FinishKey => hotline_ivr::RecordEnd::FinishKey,
                        RecordEnd::Silence => hotline_ivr::RecordEnd::Silence,
                        RecordEnd::MaxLength => hotline_ivr::RecordEnd::MaxLength,
                        RecordEnd::Stopped => hotline_ivr::RecordEnd::Stopped,
                        RecordEnd::WriteError => {
                            tracing::error!(
                                "recording write failed; what reached the disk is kept"
                            );
                            hotline_ivr::RecordEnd::Stopped
                        }
                    };
                    self.flow.handle(
                        now,
                        Input::RecordingFinished {
                            reason,
                            duration_ms: duration,
                        },
                    );
                }
            }
            MediaEvent::SourceLearned(from) => tracing::debug!(%from, "RTP source learned"),
        }
    }

    /// Finalises, fsyncs, renames and hashes a message recording; returns its duration.
    async fn finish_recording(&mut self, rec: Recorder) -> u64 {
        let id = self.recording.take().map(|r| r.id).unwrap_or_default();
        self.store_recording(rec, id, RecordingKind::Message).await
    }

    /// Finalises, fsyncs, renames and hashes a recording and enters it in the store;
    /// returns its duration.
    async fn store_recording(&mut self, rec: Recorder, id: String, kind: RecordingKind) -> u64 {
        match tokio::task::spawn_blocking(move || rec.finish()).await {
            Ok(Ok(done)) => {
                self.ctx.metrics.recordings_total.inc();
                tracing::info!(recording = %id, duration_ms = done.duration_ms, bytes = done.bytes, sha256 = %done.sha256_hex, path = %done.path.display(), "recording saved");
                let data_dir = &self.ctx.config.storage.data_dir;
                let path = done.path.strip_prefix(data_dir).unwrap_or(&done.path);
                self.ctx.storage.writer.insert_recording(NewRecording {
                    id: id.clone(),
                    call_id: self.row.clone(),
                    kind,
                    path: path.to_string_lossy().into_owned(),
                    created_at: Timestamp::now(),
                    duration_ms: i64::try_from(done.duration_ms).unwrap_or(i64::MAX),
                    bytes: i64::try_from(done.bytes).unwrap_or(i64::MAX),
                    sha256: done.sha256_hex.clone(),
                    status: RecordingStatus::New,
                    tags: Vec::new(),
                    notes: String::new(),
                });
                let wav = done.path.clone();
                tokio::task::spawn_blocking(move || recordings::remove_sidecar(&wav));
                done.duration_ms
            }
            Ok(Err(e)) => {
                tracing::error!(recording = %id, error = %e, "recording could not be finished; the .part is kept for repair");
                0
            }
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "recording task failed");
                0
            }
        }
    }

    async fn drain_flow(&mut self) -> bool {
        let mut any = false;
        while let Some(cmd) = self.flow.poll_command() {
            any = true;
            self.flow_command(cmd).await;
        }
        any
    }

    async fn flow_command(&mut self, cmd: FlowCommand) {
        let now = Instant::now();
        match cmd {
            FlowCommand::Play { prompts, .. } => {
                let mut last = None;
                if let Some(s) = self.session.as_mut() {
                    for p in &prompts {
                        let lang = to_media_lang(p.lang);
                        match self.ctx.assets.prompts.get(lang, &p.id) {
                            Some(found) => {
                                if found.fallback {
                                    tracing::warn!(prompt = %p.id, lang = lang.as_str(), "prompt missing; playing the other language");
                                }
                                last = Some(s.enqueue(found.prompt.clone()));
                            }
                            None => {
                                tracing::warn!(prompt = %p.id, "prompt missing in every language; skipped")
                            }
                        }
                    }
                }
                match last {
                    Some(id) => self.play_last = Some(id),
                    None => self.flow.handle(now, Input::PromptFinished),
                }
            }
            FlowCommand::StopPlayback => {
                self.play_last = None;
                if let Some(s) = self.session.as_mut() {
                    s.stop_playback();
                }
            }
            FlowCommand::Record {
                max_ms,
                silence_ms,
                finish_key,
            } => self.start_recording(max_ms, silence_ms, finish_key).await,
            FlowCommand::StopRecording => {
                if let Some(rec) = self.session.as_mut().and_then(|s| s.stop_recording(now)) {
                    let duration = self.finish_recording(rec).await;
                    self.flow.handle(
                        now,
                        Input::RecordingFinished {
                            reason: hotline_ivr::RecordEnd::Stopped,
                            duration_ms: duration,
                        },
                    );
                }
            }
            FlowCommand::Enqueue { lang } => {
                let language = Some(hotline_queue::Language::from(lang.as_str()));
                match self
                    .ctx
                    .queue
                    .enqueue(hotline_queue::CallId::from(self.row.as_str()), language)
                    .await
                {
                    Ok(rx) => {
                        tracing::info!(lang = lang.as_str(), "waiting for an operator");
                        self.queue_rx = Some(rx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "operator queue not running; offering a message");
                        self.flow.handle(now, Input::OperatorUnavailable);
                    }
                }
            }
            FlowCommand::LeaveQueue => {
                self.leave_queue().await;
                // An operator's phone ringing for this call stops ringing.
                if self.leg.as_ref().is_some_and(|l| l.answered_at.is_none()) {
                    self.end_leg(now).await;
                }
            }
            FlowCommand::Bridge => self.bridge(now).await,
            FlowCommand::HangUp => self.hang_up().await,
            FlowCommand::Outcome {
                disposition,
                language,
                path,
                reference,
            } => {
                tracing::info!(
                    disposition = disposition.as_str(),
                    language = language.map(|l| l.as_str()),
                    path = %path.join(">"),
                    %reference,
                    "call outcome"
                );
                self.outcome_written = true;
                self.ctx.storage.writer.update_call(
                    &self.row,
                    CallUpdate {
                        ended_at: Some(Timestamp::now()),
                        language: language.map(|l| l.as_str().to_owned()),
                        path: Some(path),
                        disposition: disposition.as_str().parse().ok(),
                        ..CallUpdate::default()
                    },
                );
            }
            FlowCommand::Event { kind, detail } => {
                tracing::debug!(kind = kind.as_str(), %detail, "flow");
                self.ctx.storage.writer.add_call_event(
                    &self.row,
                    Timestamp::now(),
                    kind.as_str(),
                    &detail,
                );
            }
        }
    }

    /// A new recording of this call with `channels` channels, in today's directory, made on
    /// the blocking pool: its id, and the recorder (or why not).
    async fn create_recorder(
        &self,
        channels: u16,
    ) -> (
        String,
        Result<Result<Recorder, hotline_media::recorder::RecorderError>, tokio::task::JoinError>,
    ) {
        let dir = recordings::day_dir(&self.ctx.config.storage.data_dir, SystemTime::now());
        let id = recordings::new_id();
        let id2 = id.clone();
        let row = self.row.clone();
        let created = tokio::task::spawn_blocking(move || {
            // The sidecar first: a crash after this leaves a recording the next start
            // can enter in the store with its call.
            // (The day directory may not exist yet: create it and write again.)
            if let Err(e) = recordings::write_sidecar(&dir, &id2, &row)
                && let Err(e2) = std::fs::create_dir_all(&dir)
                    .and_then(|()| recordings::write_sidecar(&dir, &id2, &row))
            {
                tracing::warn!(error = %e, retry = %e2, "recording sidecar not written");
            }
            Recorder::create(&dir, &id2, channels)
        })
        .await;
        (id, created)
    }

    async fn start_recording(
        &mut self,
        max_ms: u64,
        silence_ms: Option<u64>,
        finish_key: Option<char>,
    ) {
        let (id, created) = self.create_recorder(1).await;
        let rec = match created {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot create the recording");
                self.flow.handle(
                    Instant::now(),
                    Input::RecordingFinished {
                        reason: hotline_ivr::RecordEnd::Stopped,
                        duration_ms: 0,
                    },
                );
                return;
            }
            Err(_) => return,
        };
        let sync = match rec.sync_handle() {
            Ok(f) => Arc::new(f),
            Err(e) => {
                tracing::warn!(error = %e, "no sync handle; relying on the final fsync");
                match std::fs::File::open(rec.part_path()) {
                    Ok(f) => Arc::new(f),
                    Err(_) => return,
                }
            }
        };
        let spec = RecordSpec {
            max: Duration::from_millis(max_ms),
            silence: silence_ms.map(Duration::from_millis),
            silence_dbfs: self.ctx.config.ivr.silence_threshold_dbfs as f32,
            finish_key: finish_key.and_then(Digit::from_char),
        };
        tracing::info!(recording = %id, "recording a message");
        self.recording = Some(ActiveRecording {
            id,
            sync,
            syncing: Arc::default(),
        });
        if let Some(s) = self.session.as_mut() {
            s.start_recording(Instant::now(), rec, spec);
        }
    }
}

/// How often the conversation mixer writes its due frames.
const MIX_EVERY: Duration = Duration::from_millis(20);

/// Receives on the operator leg's RTP socket; never ready without a leg.
async fn leg_recv(
    leg: Option<&OperatorLeg>,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::net::SocketAddr)> {
    match leg {
        Some(l) => l.rtp.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The queue's next news for this call; never ready outside the queue. `None`: the
/// queue let the call go (or stopped).
async fn queue_recv(
    backlog: &mut std::collections::VecDeque<CallQueueEvent>,
    rx: &mut Option<CallEvents>,
) -> Option<CallQueueEvent> {
    if let Some(ev) = backlog.pop_front() {
        return Some(ev);
    }
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Why an operator leg failed, for the queue.
fn offer_failure(status: u16) -> OfferFailure {
    match status {
        603 => OfferFailure::Declined,
        486 | 600 => OfferFailure::Busy,
        408 => OfferFailure::Timeout,
        _ => OfferFailure::Unreachable,
    }
}

// The operator side: the queue's offers, the operator leg, the bridge.
impl ActiveCall<'_> {
    fn event(&self, kind: &str, detail: &str) {
        self.ctx
            .storage
            .writer
            .add_call_event(&self.row, Timestamp::now(), kind, detail);
    }

    fn call_id(&self) -> hotline_queue::CallId {
        hotline_queue::CallId::from(self.row.as_str())
    }

    /// Takes the call out of the queue, if it is in.
    async fn leave_queue(&mut self) {
        if self.queue_rx.take().is_some() {
            let _ = self.ctx.queue.cancel(self.call_id()).await;
        }
    }

    async fn queue_event(&mut self, ev: Option<CallQueueEvent>) {
        let now = Instant::now();
        match ev {
            None => {
                // The queue stopped (shutdown) without a word for this call.
                if self.queue_rx.take().is_some() && self.operator.is_none() {
                    self.flow.handle(now, Input::OperatorUnavailable);
                }
            }
            Some(CallQueueEvent::Offer { operator }) => {
                if self.leg.is_some() {
                    // A leg still winds down (a race with the ring timeout): ring this
                    // one once it is gone.
                    self.deferred_offer = Some(operator);
                } else {
                    self.place_leg(now, operator).await;
                }
            }
            Some(CallQueueEvent::CancelOffer { operator }) => {
                if self.deferred_offer.as_ref() == Some(&operator) {
                    self.deferred_offer = None;
                }
                // Ringing, or answered but refused by the queue (the answer crossed the
                // ring timeout): the leg goes. A connected leg is never withdrawn.
                if self
                    .leg
                    .as_ref()
                    .is_some_and(|l| l.name == operator && !l.connected)
                {
                    tracing::info!(operator = %operator, "offer withdrawn (no answer in time)");
                    self.event("operator-no-answer", operator.as_str());
                    self.end_leg(now).await;
                    self.place_deferred(now).await;
                }
            }
            Some(CallQueueEvent::Position { position }) => {
                self.flow.handle(now, Input::QueueUpdate { position });
            }
            Some(CallQueueEvent::NoOperator { reason }) => {
                tracing::info!(reason = reason.as_str(), "no operator for the call");
                self.queue_rx = None;
                self.deferred_offer = None;
                self.event("no-operator", reason.as_str());
                if self.leg.as_ref().is_some_and(|l| !l.connected) {
                    self.end_leg(now).await;
                }
                self.flow.handle(now, Input::OperatorUnavailable);
            }
            Some(CallQueueEvent::Connected { operator, waited }) => {
                let waited_ms = i64::try_from(waited.as_millis()).unwrap_or(i64::MAX);
                tracing::info!(operator = %operator, waited_ms, "operator connected");
                // Kept, unread, until the conversation ends: dropping it would tell the
                // queue the call left and free the operator.
                self.connected_rx = self.queue_rx.take();
                self.deferred_offer = None;
                match self.leg.as_mut() {
                    Some(leg) if leg.name == operator && leg.answered_at.is_some() => {
                        leg.connected = true;
                        self.operator = Some(operator.clone());
                        self.event("operator-answered", operator.as_str());
                        // Now the caller hears the notice, then the bridge.
                        self.flow.handle(now, Input::OperatorAnswered);
                    }
                    _ => {
                        // The queue connected a leg we no longer have: free the operator.
                        tracing::warn!(operator = %operator, "connected to a leg already gone");
                        let _ = self.ctx.queue.call_ended(operator.clone()).await;
                        self.connected_rx = None;
                        self.flow.handle(now, Input::OperatorUnavailable);
                    }
                }
                self.ctx.storage.writer.update_call(
                    &self.row,
                    CallUpdate {
                        queue_wait_ms: Some(waited_ms),
                        operator: Some(operator.to_string()),
                        ..CallUpdate::default()
                    },
                );
            }
            Some(_) => {}
        }
    }

    /// Rings `operator`'s softphone (its best binding) with an offer for this call.
    async fn place_leg(&mut self, now: Instant, operator: OperatorName) {
        let Some(binding) = self
            .ctx
            .registrations
            .contacts(operator.as_str())
            .into_iter()
            .next()
        else {
            tracing::info!(operator = %operator, "offered operator has no registered softphone");
            let _ = self
                .ctx
                .queue
                .offer_failed(self.call_id(), operator, OfferFailure::Unreachable)
                .await;
            return;
        };
        let Some(mut lease) = self.ctx.rtp.lease() else {
            tracing::warn!("no free RTP port for the operator leg");
            let _ = self
                .ctx
                .queue
                .offer_failed(self.call_id(), operator, OfferFailure::Unreachable)
                .await;
            return;
        };
        let sockets = lease
            .take_sockets()
            .ok_or_else(|| std::io::Error::other("sockets already taken"))
            .and_then(|(rtp, rtcp)| Ok((UdpSocket::from_std(rtp)?, UdpSocket::from_std(rtcp)?)));
        let Ok((rtp, rtcp)) = sockets else {
            let _ = self
                .ctx
                .queue
                .offer_failed(self.call_id(), operator, OfferFailure::Unreachable)
                .await;
            return;
        };
        // The caller's codec first: no transcoding when the softphone has it too.
        let codecs = match self.negotiated.as_ref().map(|n| n.codec) {
            Some(Codec::Pcma) => vec![Codec::Pcma, Codec::Pcmu],
            _ => vec![Codec::Pcmu, Codec::Pcma],
        };
        let media_ip = self
            .ctx
            .config
            .rtp
            .public_address
            .unwrap_or(binding.source.local.ip());
        let local = LocalMedia {
            address: media_ip,
            port: lease.port,
            codecs,
            session_id: u64::from(rand::random::<u32>()),
            session_version: 1,
            direction: Direction::SendRecv,
        };
        // The operator sees the language and the reference, never the caller's number.
        let lang = self
            .flow
            .language()
            .map_or("--", |l| l.as_str())
            .to_uppercase();
        let shown = format!("{lang} {}", self.reference);
        let outgoing = OutgoingCall {
            peer: binding.source,
            request_uri: binding.contact.clone(),
            to: format!("sip:{}@{}", operator, self.ctx.config.sip.domain),
            from_user: "hotline".to_owned(),
            from_display: shown.clone(),
            sdp: Bytes::from(sdp::offer(&local)),
            extra_headers: Vec::new(),
        };
        let (placed_tx, placed_rx) = tokio::sync::oneshot::channel();
        self.ctx
            .send(Command::Invite {
                parent: self.call,
                call: Box::new(outgoing),
                placed: placed_tx,
            })
            .await;
        let Ok(handle) = placed_rx.await else {
            tracing::warn!(operator = %operator, "SIP task gone; operator leg not placed");
            return;
        };
        tracing::info!(operator = %operator, %shown, "ringing operator");
        self.event("operator-offered", operator.as_str());
        let _ = now;
        self.leg = Some(OperatorLeg {
            name: operator,
            handle,
            _lease: lease,
            rtp,
            _rtcp: rtcp,
            local,
            session: None,
            answered_at: None,
            connected: false,
            hung_up: false,
        });
    }

    /// An event of the operator leg (or of a leg already let go: ignored).
    async fn leg_event(&mut self, handle: CallHandle, ev: CallEvent) {
        let now = Instant::now();
        let Some(leg) = self.leg.as_mut().filter(|l| l.handle == handle) else {
            return;
        };
        match ev {
            CallEvent::Progress(status) => {
                tracing::debug!(status, "operator leg progress");
            }
            CallEvent::Answered(answer) => {
                let negotiated = answer
                    .as_deref()
                    .and_then(|a| sdp::accept_answer(a, &leg.local).ok());
                let Some(n) = negotiated else {
                    tracing::warn!(operator = %leg.name, "operator's answer has no usable SDP; hanging up that leg");
                    let name = leg.name.clone();
                    self.end_leg(now).await;
                    let _ = self
                        .ctx
                        .queue
                        .offer_failed(self.call_id(), name, OfferFailure::Unreachable)
                        .await;
                    return;
                };
                if self.queue_rx.is_none() {
                    // The caller left the queue meanwhile (a key, the cap): too late.
                    self.end_leg(now).await;
                    return;
                }
                leg.answered_at = Some(now);
                let mut session =
                    Session::new(now, SystemTime::now(), session_config(&n, self.call.0));
                session.set_sending(n.direction.receives());
                leg.session = Some(session);
                let name = leg.name.clone();
                tracing::info!(operator = %name, codec = ?n.codec, "operator answered");
                // The flow hears of it on `Connected`; a refusal comes as `CancelOffer`.
                let _ = self.ctx.queue.offer_answered(self.call_id(), name).await;
            }
            CallEvent::ReInvite(offer) => {
                // Hold and resume from the operator's phone.
                leg.local.session_version += 1;
                let handle = leg.handle;
                let reply = match offer {
                    None => Command::AcceptReinvite(handle, Bytes::from(sdp::offer(&leg.local))),
                    Some(offer) => match sdp::answer(&offer, &leg.local) {
                        Ok((n, body)) => {
                            tracing::info!(direction = ?n.direction, "operator re-INVITE");
                            if let Some(s) = leg.session.as_mut() {
                                s.relearn(n.remote);
                                s.set_sending(n.direction.receives());
                            }
                            Command::AcceptReinvite(handle, Bytes::from(body))
                        }
                        Err(e) => Command::RejectReinvite(handle, e.status_code()),
                    },
                };
                self.ctx.send(reply).await;
            }
            CallEvent::Info(..) | CallEvent::Acked(_) => {}
            CallEvent::Ended(reason) => {
                let leg = self.leg.take();
                let Some(leg) = leg else { return };
                if leg.hung_up {
                    return;
                }
                let failure = match reason {
                    EndReason::Failed(status) => offer_failure(status),
                    _ => OfferFailure::Unreachable,
                };
                match leg.answered_at {
                    None => {
                        if let EndReason::Failed(status) = reason {
                            tracing::info!(operator = %leg.name, status, "operator leg failed");
                            self.event("operator-failed", &format!("{} {status}", leg.name));
                        }
                        // A withdrawal already on its way means the queue moved on: a
                        // report now would count against the next offer.
                        if !self.queue_withdrew(&leg.name) {
                            let _ = self
                                .ctx
                                .queue
                                .offer_failed(self.call_id(), leg.name.clone(), failure)
                                .await;
                        }
                        self.place_deferred(now).await;
                    }
                    Some(at) if leg.connected => {
                        // The operator hung up: the conversation is over for both. The
                        // caller's BYE first, then the recording's fsync and hash.
                        let talk = now.saturating_duration_since(at).as_millis();
                        tracing::info!(operator = %leg.name, talk_ms = talk as u64, "operator hung up");
                        self.event("operator-hung-up", &talk.to_string());
                        self.bridged = false;
                        self.hang_up().await;
                        let _ = self.ctx.queue.call_ended(leg.name.clone()).await;
                        self.connected_rx = None;
                        self.finish_conversation(now).await;
                    }
                    Some(_) => {
                        // Answered, then gone before the queue confirmed: `Connected` (if
                        // it comes) finds no leg and frees the operator.
                        tracing::info!(operator = %leg.name, "operator hung up before the bridge");
                        self.place_deferred(now).await;
                    }
                }
            }
        }
    }

    /// Ends the operator leg from our side (CANCEL while it rings, BYE once answered),
    /// closes the conversation recording and tells the queue the operator is free.
    async fn end_leg(&mut self, now: Instant) {
        self.bridged = false;
        if let Some(mut leg) = self.leg.take() {
            // The operator's CANCEL or BYE first, then the recording's fsync and hash.
            leg.hung_up = true;
            self.ctx.send(Command::Hangup(leg.handle)).await;
            if let (Some(at), true) = (leg.answered_at, leg.connected) {
                let talk = now.saturating_duration_since(at).as_millis();
                self.event("conversation-ended", &talk.to_string());
                let _ = self.ctx.queue.call_ended(leg.name.clone()).await;
                self.connected_rx = None;
            }
        }
        self.finish_conversation(now).await;
    }

    /// Whether the queue has already withdrawn its offer to `operator` (a `CancelOffer`
    /// waiting in the channel); what was read is kept for the loop, in order.
    fn queue_withdrew(&mut self, operator: &OperatorName) -> bool {
        if let Some(rx) = self.queue_rx.as_mut() {
            while let Ok(ev) = rx.try_recv() {
                self.queue_backlog.push_back(ev);
            }
        }
        self.queue_backlog
            .iter()
            .any(|e| matches!(e, CallQueueEvent::CancelOffer { operator: o } if o == operator))
    }

    /// Rings the operator of an offer that came while another leg wound down.
    async fn place_deferred(&mut self, now: Instant) {
        if self.leg.is_none()
            && self.queue_rx.is_some()
            && let Some(op) = self.deferred_offer.take()
        {
            self.place_leg(now, op).await;
        }
    }

    /// The flow played the notice: caller and operator hear each other from now on, and
    /// the conversation is recorded.
    async fn bridge(&mut self, now: Instant) {
        let Some(leg) = self.leg.as_mut() else { return };
        let Some(op) = leg.session.as_mut() else {
            return;
        };
        op.set_bridged(true);
        if let Some(s) = self.session.as_mut() {
            s.stop_playback();
            s.set_bridged(true);
        }
        self.bridged = true;
        tracing::info!(operator = %leg.name, "caller and operator connected");
        let name = leg.name.to_string();
        self.event("bridged", &name);
        if self.ctx.config.queue.record_conversations {
            self.start_conversation(now).await;
        }
    }

    async fn start_conversation(&mut self, now: Instant) {
        let (id, created) = self.create_recorder(2).await;
        let rec = match created {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot create the conversation recording; the call goes on");
                return;
            }
            Err(_) => return,
        };
        let Ok(sync) = rec
            .sync_handle()
            .or_else(|_| std::fs::File::open(rec.part_path()))
        else {
            return;
        };
        tracing::info!(recording = %id, "recording the conversation");
        self.conversation = Some(Conversation {
            mixer: ConversationMixer::new(now),
            next_tick: now + MIX_EVERY,
            write_failed: false,
            recorder: Some(rec),
            sync: ActiveRecording {
                id,
                sync: Arc::new(sync),
                syncing: Arc::default(),
            },
        });
    }

    /// Closes the conversation recording, if one runs, and enters it in the store.
    async fn finish_conversation(&mut self, now: Instant) {
        let Some(mut conv) = self.conversation.take() else {
            return;
        };
        let Some(mut rec) = conv.recorder.take() else {
            return;
        };
        if conv.write_failed {
            // Nothing more to write.
        } else if let Err(e) = conv.mixer.finish(now, &mut rec) {
            tracing::error!(error = %e, "conversation recording: last frames not written");
        }
        self.store_recording(rec, conv.sync.id, RecordingKind::Conversation)
            .await;
    }

    /// Relays what one leg received to the other, and to the conversation recording.
    fn relay(&mut self, from: Side) {
        let now = Instant::now();
        let Some(leg) = self.leg.as_mut() else { return };
        let (Some(caller), Some(op)) = (self.session.as_mut(), leg.session.as_mut()) else {
            return;
        };
        let (src, dst) = match from {
            Side::Caller => (caller, op),
            Side::Operator => (op, caller),
        };
        while let Some(p) = src.poll_relay() {
            if let Some(conv) = self.conversation.as_mut() {
                conv.mixer.push(now, from, &p);
            }
            dst.send_relayed(now, &p);
        }
    }

    /// Writes the conversation frames that are due.
    fn mix(&mut self, now: Instant) {
        let Some(conv) = self.conversation.as_mut() else {
            return;
        };
        if now < conv.next_tick {
            return;
        }
        conv.next_tick = now + MIX_EVERY;
        let Some(rec) = conv.recorder.as_mut() else {
            return;
        };
        if conv.write_failed {
            return;
        }
        if let Err(e) = conv.mixer.tick(now, rec) {
            // Writing stops; the end of the call still finishes and enters what is on disk.
            tracing::error!(error = %e, "conversation recording write failed; what reached the disk is kept");
            conv.write_failed = true;
        }
    }
}

fn session_config(n: &Negotiated, call: u64) -> SessionConfig {
    let law = match n.codec {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    };
    SessionConfig {
        law,
        payload_type: n.payload_type,
        dtmf_payload_type: n.dtmf_payload_type,
        remote: n.remote,
        ssrc: rand::random(),
        sequence: rand::random(),
        timestamp: rand::random(),
        cname: format!("hotline-{call}"),
    }
}
