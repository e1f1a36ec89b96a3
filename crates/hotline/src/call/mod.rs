//! One task per call: the call logic from INVITE to its end. Its media (RTP,
//! prompts, DTMF, recording, the bridge) runs on a media shard
//! ([`crate::media`]); this task holds the flow (menus), the store, the queue
//! and the operator leg, and talks to the shard by messages, never per packet.
//!
//! The loop waits on five things: the SIP task's events for the call and its
//! operator leg, the shard's notes (keys, prompt ends, recordings ended), the
//! queue's news, a callback's booking, and the flow's deadline. After each it drains the flow's
//! commands.
//!
//! Files: [`setup`] (from INVITE to the answer), [`flow_io`] (flow commands into
//! media and SIP), [`recording`] (recordings from creation to the store),
//! [`operator`] (the queue, the operator leg, the bridge).

mod flow_io;
mod operator;
mod recording;
mod setup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_ivr::{Flow, Input};
use hotline_media::dtmf::{Digit, parse_info};
use hotline_media::g711::Law;
use hotline_media::session::SessionConfig;
use hotline_queue::{CallEvents, CallQueueEvent, OperatorName, QueueHandle};
use hotline_sip::endpoint::{CallHandle, IncomingCall};
use hotline_sip::sdp::{self, Codec, LocalMedia, Negotiated};
use hotline_store::{CallUpdate, Disposition as StoreDisposition, Timestamp};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::media::{MediaHandle, MediaPlane};
use crate::metrics::Metrics;
use crate::prompts::Assets;
use crate::registrations::Registrations;
use crate::rtp_ports::RtpPorts;
use crate::signal::{CallEvent, Command, end_reason};
use crate::storage::Storage;
use operator::OperatorLeg;

/// What every call task gets.
pub(crate) struct CallCtx {
    pub(crate) handle: CallHandle,
    pub(crate) config: Arc<Config>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) rtp: Arc<RtpPorts>,
    pub(crate) media_ip: std::net::IpAddr,
    pub(crate) media: Arc<MediaPlane>,
    pub(crate) assets: Arc<Assets>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) storage: Storage,
    pub(crate) queue: QueueHandle,
    pub(crate) registrations: Registrations,
    /// Cluster mode: bindings other nodes hold.
    pub(crate) cluster: Option<hotline_cluster::Cluster>,
    /// `[callback]` on: booking, and the store to cancel a booking that came too late.
    pub(crate) callbacks: Option<(
        Arc<crate::callback::Callbacks>,
        Arc<dyn hotline_store::CallStore>,
    )>,
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
    let _task = ctx.metrics.call_task();
    let Some(answered) = setup::answer(&ctx, &inc, &mut events).await else {
        return;
    };
    let setup::Answered {
        row,
        reference,
        negotiated,
        mut local,
        media,
        lease,
    } = answered;
    let call = ctx.handle;
    let mut c = ActiveCall {
        ctx: &ctx,
        call,
        media,
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
        has_session: false,
        play_last: None,
        recording: None,
        hanging_up: false,
        acked: false,
        hangup_sent: false,
        answers: Vec::new(),
        callback_number: None,
        booking: None,
    };
    // The number is kept (in memory only, never logged) for a callback the caller may ask
    // for, when callbacks are on and a usable number was presented.
    if ctx.callbacks.is_some()
        && crate::callback::Callbacks::can_call_back(inc.from_user.as_deref())
    {
        c.callback_number = inc.from_user.clone();
    }
    c.flow.set_callback_offer(c.callback_number.is_some());
    if let Some(n) = c.negotiated.clone() {
        c.start_session(&n);
    }
    let started = tokio::time::Instant::now();
    let hard_cap = started + Duration::from_secs(ctx.config.calls.max_duration_secs);
    // One timer for the flow, reset only when its deadline moves.
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
            Some(note) = c.media.notes.recv() => c.media_note(note).await,
            ev = queue_recv(&mut c.queue_backlog, &mut c.queue_rx) => c.queue_event(ev).await,
            r = flow_io::booking_result(&mut c.booking) => c.booking_done(r),
            _ = &mut tick => c.flow.handle_timeout(Instant::now()),
            _ = &mut cap, if !c.hangup_sent && !c.bridged => {
                tracing::info!(max_secs = ctx.config.calls.max_duration_secs, "call reached calls.max_duration_secs; hanging up");
                c.hang_up().await;
            }
        }
        c.drain_flow().await;
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
    // The shard is told to let the sockets go (its next tick), and the ports go back to
    // the pool; one still bound when a later call tries it is skipped (`RtpPorts::lease`).
    drop(c);
    drop(lease);
}

/// A recording this call started and whose end note has not come yet.
struct ActiveRecording {
    id: String,
}

struct ActiveCall<'a> {
    ctx: &'a CallCtx,
    call: CallHandle,
    media: MediaHandle,
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
    /// The conversation recording, until its end note.
    conversation: Option<ActiveRecording>,
    /// The operator who answered.
    operator: Option<OperatorName>,
    /// The call's row in the store.
    row: String,
    outcome_written: bool,
    flow: Flow,
    negotiated: Option<Negotiated>,
    /// The shard has the caller's session.
    has_session: bool,
    /// The tag of the flow's current play list.
    play_last: Option<u64>,
    /// The message recording, until its end note.
    recording: Option<ActiveRecording>,
    /// The caller hung up: a recording that ends now ends by the hang-up.
    hanging_up: bool,
    acked: bool,
    hangup_sent: bool,
    /// The caller's keypad answers so far (stored whole on each new one).
    answers: Vec<hotline_store::Answer>,
    /// The caller's number while a callback may be booked (never logged nor stored in clear).
    callback_number: Option<String>,
    /// A callback being booked: the flow waits for its result.
    booking: Option<flow_io::Booking>,
}

impl ActiveCall<'_> {
    fn start_session(&mut self, n: &Negotiated) {
        self.media
            .start_session(session_config(n, self.call.0), n.direction.receives());
        self.has_session = true;
    }

    fn wake_at(&self) -> tokio::time::Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::time::Instant::from_std(self.flow.poll_timeout().unwrap_or(far))
    }

    async fn acked(&mut self, sdp: Option<Bytes>, local: &mut LocalMedia) {
        if self.negotiated.is_none() {
            // Offerless INVITE: the answer is in the ACK.
            match sdp.as_deref().map(|a| sdp::accept_answer(a, local)) {
                Some(Ok(n)) => {
                    if self.has_session {
                        // The answer to our offer in a re-INVITE: same call, same
                        // session (a recording in progress goes on).
                        self.media.remote(Some(n.remote), n.direction.receives());
                    } else {
                        self.start_session(&n);
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
                if self.has_session {
                    let moved = self
                        .negotiated
                        .as_ref()
                        .is_none_or(|old| old.remote != n.remote);
                    self.media
                        .remote(moved.then_some(n.remote), n.direction.receives());
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

    /// The caller hung up (or we did and the SIP side confirmed): the operator leg
    /// goes, the recordings close and are entered, then the flow hears of it.
    async fn ended(&mut self) {
        let now = Instant::now();
        self.hanging_up = true;
        self.leave_queue().await;
        self.end_leg(now).await;
        if self.recording.is_some() {
            self.media.stop_recording();
        }
        self.wait_recordings().await;
        self.flow.handle(Instant::now(), Input::HungUp);
        self.drain_flow().await;
    }

    async fn drain_flow(&mut self) -> bool {
        let mut any = false;
        while let Some(cmd) = self.flow.poll_command() {
            any = true;
            self.flow_command(cmd).await;
        }
        any
    }

    fn event(&self, kind: &str, detail: &str) {
        self.ctx
            .storage
            .writer
            .add_call_event(&self.row, Timestamp::now(), kind, detail);
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

pub(crate) fn session_config(n: &Negotiated, call: u64) -> SessionConfig {
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
