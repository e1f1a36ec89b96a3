//! One attempt of a callback, operator first: the queue gives an operator of the caller's
//! language, their softphone rings with `CALLBACK <LANG> <reference>` (never the number),
//! and once they answer (and the queue confirms) they hear the safety script. Only then is
//! the caller rung through the carrier's gateway: `sip:<number>@<gateway>`, From the
//! neutral caller ID, a digest challenge answered, at most `ring_timeout_secs` of ringing
//! (shorter than a voicemail's pick-up: nobody's voicemail ever takes a message), then the
//! two legs are bridged on one media shard. Either side's BYE ends both.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hotline_queue::{CallEvents, CallId, CallQueueEvent, Language, OfferFailure, OperatorName};
use hotline_sip::endpoint::{CallHandle, ClientAuth, EndReason, OutgoingCall, Peer, Transport};
use hotline_sip::sdp::{self, Codec, Direction, LocalMedia, Negotiated};
use hotline_store::{CallbackState, ClaimedCallback, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::Env;
use super::plan::Attempt;
use crate::config::GatewayTransport;
use crate::media::{MediaHandle, MediaNote};
use crate::rtp_ports::RtpLease;
use crate::signal::{CallEvent, Command};

/// How an attempt went, for the scheduler.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) id: String,
    pub(super) call_id: String,
    pub(super) attempts_before: u32,
    pub(super) expires_at: i64,
    pub(super) how: Attempt,
}

/// A leg we placed: its handle, RTP ports and offer.
struct Leg {
    handle: CallHandle,
    lease: RtpLease,
    local: LocalMedia,
    answered: Option<Negotiated>,
}

/// Where the attempt is.
enum Stage {
    /// In the queue, or ringing an operator.
    Operator,
    /// The operator hears the safety script (play tag).
    Script(u64),
    /// The caller's phone rings (until the deadline).
    Ringing(tokio::time::Instant),
    /// Caller and operator talk.
    Talking,
}

/// Places one attempt of `claimed`; the number is opened here and dropped with the task.
pub(super) async fn attempt(
    env: &Env,
    claimed: ClaimedCallback,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let cb = claimed.callback;
    let mut outcome = Outcome {
        id: cb.id.clone(),
        call_id: cb.call_id.clone(),
        attempts_before: u32::try_from(cb.attempts).unwrap_or(u32::MAX),
        expires_at: cb.expires_at.unix_millis(),
        how: Attempt::NotPlaced,
    };
    let number = match env.callbacks.sealer.open(&cb.id, &claimed.number_sealed) {
        Ok(n) => n,
        Err(e) => {
            // Another key than the one it was sealed with: it can never be placed.
            tracing::error!(callback = %cb.id, error = %e, "cannot open the callback's number");
            outcome.how = Attempt::NotReached;
            outcome.attempts_before = env.callbacks.rules.max_attempts;
            return outcome;
        }
    };
    let mut a = Placing {
        env,
        id: cb.id.clone(),
        call_id: cb.call_id.clone(),
        queue_id: CallId::from(format!("callback-{}", cb.id).as_str()),
        lang: cb.language.clone().unwrap_or_else(|| "es".into()),
        shown: format!(
            "CALLBACK {} {}",
            cb.language.as_deref().unwrap_or("--").to_uppercase(),
            cb.reference
        ),
        attempt_no: outcome.attempts_before + 1,
        expires_at: outcome.expires_at,
        number,
        queued: None,
        operator: None,
        connected: false,
        op_leg: None,
        caller_leg: None,
        media: None,
        stage: Stage::Operator,
    };
    let (tx, mut rx) = mpsc::channel(64);
    outcome.how = a.run(tx, &mut rx, &mut stopped).await;
    a.clean_up().await;
    outcome
}

struct Placing<'a> {
    env: &'a Env,
    id: String,
    call_id: String,
    queue_id: CallId,
    lang: String,
    /// What the operator's phone shows.
    shown: String,
    attempt_no: u32,
    expires_at: i64,
    /// The caller's number: in memory only, never logged.
    number: String,
    queued: Option<CallEvents>,
    operator: Option<OperatorName>,
    /// The queue confirmed the operator (`Connected`): `call_ended` frees them.
    connected: bool,
    op_leg: Option<Leg>,
    caller_leg: Option<Leg>,
    /// The operator's session (and the caller's as its second leg), once answered.
    media: Option<MediaHandle>,
    stage: Stage,
}

impl Placing<'_> {
    async fn run(
        &mut self,
        tx: mpsc::Sender<(CallHandle, CallEvent)>,
        rx: &mut mpsc::Receiver<(CallHandle, CallEvent)>,
        stopped: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Attempt {
        let language = Some(Language::from(self.lang.as_str()));
        match self
            .env
            .queue
            .enqueue(self.queue_id.clone(), language)
            .await
        {
            Ok(events) => self.queued = Some(events),
            Err(e) => {
                tracing::warn!(error = %e, "operator queue not running; callback not placed");
                return Attempt::NotPlaced;
            }
        }
        tracing::info!(callback = %self.id, attempt = self.attempt_no, "callback: waiting for an operator");
        let cap = tokio::time::sleep(Duration::from_secs(self.env.config.calls.max_duration_secs));
        tokio::pin!(cap);
        loop {
            let ring_deadline = match self.stage {
                Stage::Ringing(at) => at,
                _ => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                ev = queue_recv(&mut self.queued) => {
                    if let Some(done) = self.queue_event(ev, &tx).await {
                        return done;
                    }
                }
                ev = rx.recv() => {
                    let Some((h, ev)) = ev else { return Attempt::NotPlaced };
                    if let Some(done) = self.leg_event(h, ev, &tx).await {
                        return done;
                    }
                }
                note = media_recv(&mut self.media) => {
                    if let Some(done) = self.media_note(note, &tx).await {
                        return done;
                    }
                }
                _ = tokio::time::sleep_until(ring_deadline) => {
                    tracing::info!(callback = %self.id, "callback: no answer in the ring timeout; hanging up");
                    self.env.event(&self.call_id, "callback-no-answer", &format!(
                        "attempt {}: no answer in {} s", self.attempt_no, self.env.callbacks.config.ring_timeout_secs));
                    return Attempt::NotReached;
                }
                // Cancelled before the caller answered: both legs go (a conversation in
                // progress is never cut).
                r = stopped.changed(), if !matches!(self.stage, Stage::Talking) => {
                    // Err: the scheduler is gone (shutdown): stop too.
                    if r.is_err() || *stopped.borrow() {
                        tracing::info!(callback = %self.id, "callback: ended meanwhile (cancelled); stopping the attempt");
                        return Attempt::NotPlaced;
                    }
                }
                _ = &mut cap => {
                    tracing::info!(callback = %self.id, "callback reached calls.max_duration_secs");
                    return if matches!(self.stage, Stage::Talking) { Attempt::Answered } else { Attempt::NotPlaced };
                }
            }
        }
    }

    async fn queue_event(
        &mut self,
        ev: Option<CallQueueEvent>,
        tx: &mpsc::Sender<(CallHandle, CallEvent)>,
    ) -> Option<Attempt> {
        let queue = &self.env.queue;
        match ev {
            None => {
                self.queued = None;
                if !self.connected {
                    return Some(Attempt::NotPlaced);
                }
            }
            Some(CallQueueEvent::Offer { operator }) => {
                if self.op_leg.is_some() {
                    let _ = queue
                        .offer_failed(self.queue_id.clone(), operator, OfferFailure::Busy)
                        .await;
                } else {
                    self.ring_operator(operator, tx).await;
                }
            }
            Some(CallQueueEvent::CancelOffer { operator }) => {
                if self.operator.as_ref() == Some(&operator) && !self.connected {
                    self.hang_up_operator().await;
                }
            }
            Some(CallQueueEvent::NoOperator { reason }) => {
                tracing::info!(callback = %self.id, reason = reason.as_str(), "callback: no operator");
                self.queued = None;
                return Some(Attempt::NotPlaced);
            }
            Some(CallQueueEvent::Connected { operator, .. }) => {
                let answered = self.op_leg.as_ref().is_some_and(|l| l.answered.is_some());
                if self.operator.as_ref() != Some(&operator) || !answered {
                    let _ = queue.call_ended(operator).await;
                    return None;
                }
                self.connected = true;
                // Kept, unread, until the end: dropping it would free the operator.
                return self.start_script().await;
            }
            Some(_) => {}
        }
        None
    }

    /// Rings `operator`'s softphone for the callback.
    async fn ring_operator(
        &mut self,
        operator: OperatorName,
        tx: &mpsc::Sender<(CallHandle, CallEvent)>,
    ) {
        let env = self.env;
        let queue_id = self.queue_id.clone();
        let failed = |op: OperatorName| async move {
            let _ = env
                .queue
                .offer_failed(queue_id, op, OfferFailure::Unreachable)
                .await;
        };
        let target = crate::shared_bindings::leg_target(
            &env.registrations,
            env.cluster.as_ref(),
            operator.as_str(),
        )
        .await;
        let (Some(target), Some(lease)) = (target, env.rtp.lease()) else {
            tracing::info!(operator = %operator, "callback: operator unreachable or no RTP port");
            failed(operator).await;
            return;
        };
        let media_ip = env
            .config
            .rtp
            .public_address
            .unwrap_or(if target.peer.local.port() == 0 {
                env.rtp.bind_ip()
            } else {
                target.peer.local.ip()
            });
        let local = local_media(media_ip, lease.port, vec![Codec::Pcmu, Codec::Pcma]);
        let call = OutgoingCall {
            peer: target.peer,
            request_uri: target.request_uri.clone(),
            to: format!("sip:{}@{}", operator, env.config.sip.domain),
            from_user: "hotline".to_owned(),
            from_display: self.shown.clone(),
            sdp: Bytes::from(sdp::offer(&local)),
            extra_headers: target
                .route
                .iter()
                .map(|r| ("Route".to_owned(), r.clone()))
                .collect(),
            auth: None,
            neutral: false,
        };
        let Some(handle) = originate(env, call, tx).await else {
            failed(operator).await;
            return;
        };
        tracing::info!(callback = %self.id, operator = %operator, shown = %self.shown, "callback: ringing operator");
        self.operator = Some(operator);
        self.op_leg = Some(Leg {
            handle,
            lease,
            local,
            answered: None,
        });
    }

    /// The operator is ours: the safety script plays to them.
    async fn start_script(&mut self) -> Option<Attempt> {
        let lang = if self.lang == "qu" {
            hotline_media::prompt::Lang::Qu
        } else {
            hotline_media::prompt::Lang::Es
        };
        let prompt = self
            .env
            .assets
            .prompts
            .get(lang, &self.env.callbacks.config.safety_prompt);
        let media = self.media.as_mut()?;
        match prompt {
            Some(p) => {
                let tag = media.play(vec![p.prompt]);
                self.stage = Stage::Script(tag);
                tracing::info!(callback = %self.id, "callback: safety script to the operator");
                None
            }
            None => {
                tracing::warn!(prompt = %self.env.callbacks.config.safety_prompt, "safety script missing; ringing the caller at once");
                self.stage = Stage::Script(0);
                None
            }
        }
    }

    async fn media_note(
        &mut self,
        note: Option<MediaNote>,
        tx: &mpsc::Sender<(CallHandle, CallEvent)>,
    ) -> Option<Attempt> {
        match (note?, &self.stage) {
            (MediaNote::PlayFinished(tag), Stage::Script(t)) if tag == *t => {
                self.ring_caller(tx).await
            }
            _ => None,
        }
    }

    /// After the script: the caller, through the gateway.
    async fn ring_caller(&mut self, tx: &mpsc::Sender<(CallHandle, CallEvent)>) -> Option<Attempt> {
        let env = self.env;
        let now = Timestamp::now().unix_millis();
        if !env.callbacks.rules.may_ring(now, self.expires_at) {
            tracing::info!(callback = %self.id, "callback: expired while waiting for an operator");
            return Some(Attempt::NotPlaced);
        }
        // A supervisor may have cancelled it meanwhile.
        match env.store.get_callback(&self.id).await {
            Ok(Some(cb)) if cb.state == CallbackState::Placing => {}
            _ => {
                tracing::info!(callback = %self.id, "callback: cancelled before the caller was rung");
                return Some(Attempt::NotPlaced);
            }
        }
        let cfg = &env.callbacks.config;
        let codecs = match self
            .op_leg
            .as_ref()
            .and_then(|l| l.answered.as_ref())
            .map(|n| n.codec)
        {
            Some(Codec::Pcma) => vec![Codec::Pcma, Codec::Pcmu],
            _ => vec![Codec::Pcmu, Codec::Pcma],
        };
        let mut lease = env.rtp.lease()?;
        let media = self.media.as_ref()?;
        let (rtp, rtcp) = lease.take_sockets()?;
        media.add_leg(rtp, rtcp).ok()?;
        let media_ip = env
            .config
            .rtp
            .public_address
            .unwrap_or_else(|| local_ip_toward(cfg.gateway).unwrap_or(env.rtp.bind_ip()));
        let local = local_media(media_ip, lease.port, codecs);
        let gateway = fmt_addr(cfg.gateway);
        let call = OutgoingCall {
            peer: Peer {
                transport: match cfg.transport {
                    GatewayTransport::Udp => Transport::Udp,
                    GatewayTransport::Tcp => Transport::Tcp,
                },
                remote: cfg.gateway,
                // The SIP task fills in our address toward the gateway.
                local: SocketAddr::new(media_ip, 0),
                connection: None,
            },
            request_uri: format!("sip:{}@{gateway}", self.number),
            to: format!("sip:{}@{gateway}", self.number),
            from_user: cfg.caller_id.clone(),
            from_display: cfg.display_name.clone(),
            sdp: Bytes::from(sdp::offer(&local)),
            extra_headers: Vec::new(),
            auth: env.callbacks.password.as_ref().map(|p| ClientAuth {
                username: cfg.username.clone(),
                password: p.clone(),
            }),
            neutral: true,
        };
        let handle = originate(env, call, tx).await?;
        let operator = self.operator.as_ref().map_or("", |o| o.as_str()).to_owned();
        tracing::info!(callback = %self.id, attempt = self.attempt_no, "callback: ringing the caller");
        env.event(
            &self.call_id,
            "callback-attempt",
            &format!(
                "attempt {} of {}, operator {operator}",
                self.attempt_no, env.callbacks.rules.max_attempts
            ),
        );
        self.caller_leg = Some(Leg {
            handle,
            lease,
            local,
            answered: None,
        });
        self.stage = Stage::Ringing(
            tokio::time::Instant::now() + Duration::from_secs(cfg.ring_timeout_secs),
        );
        None
    }

    async fn leg_event(
        &mut self,
        h: CallHandle,
        ev: CallEvent,
        _tx: &mpsc::Sender<(CallHandle, CallEvent)>,
    ) -> Option<Attempt> {
        let is_op = self.op_leg.as_ref().is_some_and(|l| l.handle == h);
        let is_caller = self.caller_leg.as_ref().is_some_and(|l| l.handle == h);
        match ev {
            CallEvent::Answered(answer) if is_op => {
                let leg = self.op_leg.as_mut()?;
                let n = answer
                    .as_deref()
                    .and_then(|a| sdp::accept_answer(a, &leg.local).ok());
                let Some(n) = n else {
                    tracing::warn!("operator's answer has no usable SDP");
                    self.hang_up_operator().await;
                    let op = self.operator.take()?;
                    let _ = self
                        .env
                        .queue
                        .offer_failed(self.queue_id.clone(), op, OfferFailure::Unreachable)
                        .await;
                    return None;
                };
                let (rtp, rtcp) = leg.lease.take_sockets()?;
                let media = match self.env.media.place(h.0, rtp, rtcp) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "callback: cannot use the RTP socket");
                        return Some(Attempt::NotPlaced);
                    }
                };
                media.start_session(crate::call::session_config(&n, h.0), n.direction.receives());
                leg.answered = Some(n);
                self.media = Some(media);
                let op = self.operator.clone()?;
                tracing::info!(callback = %self.id, operator = %op, "callback: operator answered");
                let _ = self
                    .env
                    .queue
                    .offer_answered(self.queue_id.clone(), op)
                    .await;
                None
            }
            CallEvent::Answered(answer) if is_caller => {
                let leg = self.caller_leg.as_mut()?;
                let n = answer
                    .as_deref()
                    .and_then(|a| sdp::accept_answer(a, &leg.local).ok());
                let Some(n) = n else {
                    tracing::warn!(callback = %self.id, "the caller's answer has no usable SDP");
                    self.env.event(
                        &self.call_id,
                        "callback-no-answer",
                        &format!("attempt {}: unusable answer", self.attempt_no),
                    );
                    return Some(Attempt::NotReached);
                };
                let media = self.media.as_ref()?;
                media.leg_session(crate::call::session_config(&n, h.0), n.direction.receives());
                media.bridge(None);
                leg.answered = Some(n);
                self.stage = Stage::Talking;
                tracing::info!(callback = %self.id, "callback: caller answered; bridged");
                self.env.event(
                    &self.call_id,
                    "callback-answered",
                    &format!("attempt {}", self.attempt_no),
                );
                None
            }
            CallEvent::Ended(reason) if is_caller => {
                self.caller_leg = None;
                if matches!(self.stage, Stage::Talking) {
                    tracing::info!(callback = %self.id, "callback: the caller hung up");
                    return Some(Attempt::Answered);
                }
                let why = match reason {
                    EndReason::Failed(486 | 600) => "busy".to_owned(),
                    EndReason::Failed(s) => format!("failed {s}"),
                    _ => "ended".to_owned(),
                };
                tracing::info!(callback = %self.id, %why, "callback: caller not reached");
                self.env.event(
                    &self.call_id,
                    "callback-no-answer",
                    &format!("attempt {}: {why}", self.attempt_no),
                );
                Some(Attempt::NotReached)
            }
            CallEvent::Ended(reason) if is_op => {
                self.op_leg = None;
                match self.stage {
                    Stage::Talking => {
                        tracing::info!(callback = %self.id, "callback: the operator hung up");
                        Some(Attempt::Answered)
                    }
                    Stage::Ringing(_) => {
                        self.env.event(
                            &self.call_id,
                            "callback-no-answer",
                            &format!("attempt {}: the operator hung up", self.attempt_no),
                        );
                        Some(Attempt::NotReached)
                    }
                    Stage::Script(_) => Some(Attempt::NotPlaced),
                    Stage::Operator => {
                        // Declined, busy, unreachable: the queue offers another operator.
                        let failure = match reason {
                            EndReason::Failed(603) => OfferFailure::Declined,
                            EndReason::Failed(486 | 600) => OfferFailure::Busy,
                            EndReason::Failed(408) => OfferFailure::Timeout,
                            _ => OfferFailure::Unreachable,
                        };
                        if let Some(op) = self.operator.take() {
                            let _ = self
                                .env
                                .queue
                                .offer_failed(self.queue_id.clone(), op, failure)
                                .await;
                        }
                        None
                    }
                }
            }
            CallEvent::ReInvite(offer) => {
                let leg = if is_op {
                    self.op_leg.as_mut()
                } else if is_caller {
                    self.caller_leg.as_mut()
                } else {
                    None
                }?;
                leg.local.session_version += 1;
                let reply = match offer {
                    None => Command::AcceptReinvite(h, Bytes::from(sdp::offer(&leg.local))),
                    Some(offer) => match sdp::answer(&offer, &leg.local) {
                        Ok((n, body)) => {
                            if let Some(m) = self.media.as_ref() {
                                if is_op {
                                    m.remote(Some(n.remote), n.direction.receives());
                                } else {
                                    m.leg_remote(Some(n.remote), n.direction.receives());
                                }
                            }
                            Command::AcceptReinvite(h, Bytes::from(body))
                        }
                        Err(e) => Command::RejectReinvite(h, e.status_code()),
                    },
                };
                let _ = self.env.commands.send(reply).await;
                None
            }
            _ => None,
        }
    }

    async fn hang_up_operator(&mut self) {
        if let Some(leg) = self.op_leg.take() {
            let _ = self.env.commands.send(Command::Hangup(leg.handle)).await;
        }
        if self.media.is_some() && self.caller_leg.is_none() {
            self.media = None;
        }
    }

    /// Both legs down, the operator freed, the queue left.
    async fn clean_up(&mut self) {
        if let Some(leg) = self.caller_leg.take() {
            let _ = self.env.commands.send(Command::Hangup(leg.handle)).await;
        }
        if let Some(leg) = self.op_leg.take() {
            let _ = self.env.commands.send(Command::Hangup(leg.handle)).await;
        }
        if let Some(m) = self.media.take() {
            m.drop_leg();
        }
        if self.connected {
            if let Some(op) = self.operator.take() {
                let _ = self.env.queue.call_ended(op).await;
            }
        } else if self.queued.take().is_some() {
            let _ = self.env.queue.cancel(self.queue_id.clone()).await;
        }
        self.queued = None;
        // The number goes with the task; overwrite our copy first.
        self.number = String::new();
    }
}

/// Asks the SIP task to place `call`; its events come on `tx`.
async fn originate(
    env: &Env,
    call: OutgoingCall,
    tx: &mpsc::Sender<(CallHandle, CallEvent)>,
) -> Option<CallHandle> {
    let (placed_tx, placed_rx) = oneshot::channel();
    env.commands
        .send(Command::Originate {
            call: Box::new(call),
            events: tx.clone(),
            placed: placed_tx,
        })
        .await
        .ok()?;
    placed_rx.await.ok()
}

fn local_media(address: std::net::IpAddr, port: u16, codecs: Vec<Codec>) -> LocalMedia {
    LocalMedia {
        address,
        port,
        codecs,
        session_id: u64::from(rand::random::<u32>()),
        session_version: 1,
        direction: Direction::SendRecv,
    }
}

/// Our address toward `to` (the route the kernel would take; nothing is sent).
fn local_ip_toward(to: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(to).ok()?;
    Some(s.local_addr().ok()?.ip())
}

fn fmt_addr(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

async fn queue_recv(rx: &mut Option<CallEvents>) -> Option<CallQueueEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn media_recv(m: &mut Option<MediaHandle>) -> Option<MediaNote> {
    match m {
        Some(m) => m.notes.recv().await,
        None => std::future::pending().await,
    }
}
