//! The operator side of a call: the queue's offers, the operator leg (its own
//! RTP port on the caller's media shard), the bridge and its conversation recording.

use std::time::Instant;

use bytes::Bytes;
use hotline_ivr::Input;
use hotline_queue::{CallQueueEvent, OfferFailure, OperatorName};
use hotline_sip::endpoint::{CallHandle, EndReason, OutgoingCall};
use hotline_sip::sdp::{self, Codec, Direction, LocalMedia};
use hotline_store::CallUpdate;

use super::{ActiveCall, ActiveRecording, session_config};
use crate::signal::{CallEvent, Command};

/// The call to an operator's softphone, from the offer to its end.
pub(super) struct OperatorLeg {
    name: OperatorName,
    handle: CallHandle,
    /// The RTP ports, held until the leg ends (the shard holds the sockets).
    _lease: crate::rtp_ports::RtpLease,
    local: LocalMedia,
    /// The shard has the leg's session (the operator answered).
    has_session: bool,
    pub(super) answered_at: Option<Instant>,
    /// The queue confirmed the answer (`Connected`).
    connected: bool,
    hung_up: bool,
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
    fn call_id(&self) -> hotline_queue::CallId {
        hotline_queue::CallId::from(self.row.as_str())
    }

    /// Takes the call out of the queue, if it is in.
    pub(super) async fn leave_queue(&mut self) {
        if self.queue_rx.take().is_some() {
            let _ = self.ctx.queue.cancel(self.call_id()).await;
        }
    }

    pub(super) async fn queue_event(&mut self, ev: Option<CallQueueEvent>) {
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
                    self.place_leg(operator).await;
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
                    self.place_deferred().await;
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
    async fn place_leg(&mut self, operator: OperatorName) {
        let target = crate::shared_bindings::leg_target(
            &self.ctx.registrations,
            self.ctx.cluster.as_ref(),
            operator.as_str(),
        )
        .await;
        let Some(target) = target else {
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
        let watched = lease
            .take_sockets()
            .ok_or_else(|| std::io::Error::other("sockets already taken"))
            .and_then(|(rtp, rtcp)| self.media.add_leg(rtp, rtcp));
        if watched.is_err() {
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
        let media_ip =
            self.ctx
                .config
                .rtp
                .public_address
                .unwrap_or(if target.peer.local.port() == 0 {
                    // Another node's binding: our address toward the proxy is the caller's.
                    self.ctx.media_ip
                } else {
                    target.peer.local.ip()
                });
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
            peer: target.peer,
            request_uri: target.request_uri.clone(),
            to: format!("sip:{}@{}", operator, self.ctx.config.sip.domain),
            from_user: "hotline".to_owned(),
            from_display: shown.clone(),
            sdp: Bytes::from(sdp::offer(&local)),
            extra_headers: target
                .route
                .iter()
                .map(|r| ("Route".to_owned(), r.clone()))
                .collect(),
            auth: None,
            neutral: false,
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
        self.leg = Some(OperatorLeg {
            name: operator,
            handle,
            _lease: lease,
            local,
            has_session: false,
            answered_at: None,
            connected: false,
            hung_up: false,
        });
    }

    /// An event of the operator leg (or of a leg already let go: ignored).
    pub(super) async fn leg_event(&mut self, handle: CallHandle, ev: CallEvent) {
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
                self.media
                    .leg_session(session_config(&n, self.call.0), n.direction.receives());
                leg.has_session = true;
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
                            if leg.has_session {
                                self.media
                                    .leg_remote(Some(n.remote), n.direction.receives());
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
                self.media.drop_leg();
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
                        self.place_deferred().await;
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
                    }
                    Some(_) => {
                        // Answered, then gone before the queue confirmed: `Connected` (if
                        // it comes) finds no leg and frees the operator.
                        tracing::info!(operator = %leg.name, "operator hung up before the bridge");
                        self.place_deferred().await;
                    }
                }
            }
        }
    }

    /// Ends the operator leg from our side (CANCEL while it rings, BYE once answered),
    /// closes the conversation recording and tells the queue the operator is free.
    pub(super) async fn end_leg(&mut self, now: Instant) {
        self.bridged = false;
        if let Some(mut leg) = self.leg.take() {
            // The operator's CANCEL or BYE first, then the recording's fsync and hash.
            leg.hung_up = true;
            self.ctx.send(Command::Hangup(leg.handle)).await;
            // The shard closes the conversation recording (its end note follows).
            self.media.drop_leg();
            if let (Some(at), true) = (leg.answered_at, leg.connected) {
                let talk = now.saturating_duration_since(at).as_millis();
                self.event("conversation-ended", &talk.to_string());
                let _ = self.ctx.queue.call_ended(leg.name.clone()).await;
                self.connected_rx = None;
            }
        }
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
    async fn place_deferred(&mut self) {
        if self.leg.is_none()
            && self.queue_rx.is_some()
            && let Some(op) = self.deferred_offer.take()
        {
            self.place_leg(op).await;
        }
    }

    /// The flow played the notice: caller and operator hear each other from now on, and
    /// the conversation is recorded.
    pub(super) async fn bridge(&mut self) {
        if !self.leg.as_ref().is_some_and(|l| l.has_session) {
            return;
        }
        let recorder = if self.ctx.config.queue.record_conversations {
            let (id, rec) = self.create_recorder(2).await;
            if rec.is_some() {
                tracing::info!(recording = %id, "recording the conversation");
                self.conversation = Some(ActiveRecording { id });
            } else {
                tracing::error!("cannot create the conversation recording; the call goes on");
            }
            rec
        } else {
            None
        };
        // The leg may have gone while the file was made.
        let Some(leg) = self.leg.as_ref() else {
            if let Some(rec) = recorder {
                // Answered by its end note at once.
                self.media.bridge(Some(rec));
            }
            return;
        };
        self.media.bridge(recorder);
        self.bridged = true;
        tracing::info!(operator = %leg.name, "caller and operator connected");
        let name = leg.name.to_string();
        self.event("bridged", &name);
    }
}
