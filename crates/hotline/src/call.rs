//! One task per call: SDP negotiation, ringing, answer, the call's life, and
//! its end. Media (prompts, recording) joins here with the media issue.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hotline_sip::endpoint::{CallHandle, EndReason, IncomingCall};
use hotline_sip::sdp::{self, Codec, Direction, LocalMedia};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::rtp_ports::RtpPorts;
use crate::sip_task::{Command, end_reason};

/// What the SIP task tells a call.
#[derive(Debug)]
pub(crate) enum CallEvent {
    Acked(Option<Bytes>),
    ReInvite(Option<Bytes>),
    Info(Bytes, Bytes),
    Ended(EndReason),
}

pub(crate) struct CallCtx {
    pub(crate) handle: CallHandle,
    pub(crate) config: Arc<Config>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) rtp: Arc<RtpPorts>,
    pub(crate) media_ip: std::net::IpAddr,
}

impl CallCtx {
    async fn send(&self, cmd: Command) {
        let _ = self.commands.send(cmd).await;
    }
}

/// Runs a call from INVITE to its end.
pub(crate) async fn run(ctx: CallCtx, inc: IncomingCall, mut events: mpsc::Receiver<CallEvent>) {
    let call = ctx.handle;
    let span = tracing::info_span!("call", id = call.0);
    let _enter = span.enter();
    // The caller's number (inc.from_user) is never logged.
    if !ctx.config.sip.trunk_allows(inc.peer.remote.ip()) {
        tracing::warn!(remote = %inc.peer.remote, "INVITE from outside sip.trunk_sources refused");
        ctx.send(Command::Reject(call, 403, None)).await;
        return;
    }
    let Some(lease) = ctx.rtp.lease() else {
        tracing::warn!("no free RTP port in rtp.port_range");
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
    let (mut negotiated, body) = match &inc.sdp {
        Some(offer) => match sdp::answer(offer, &local) {
            Ok((n, body)) => (Some(n), body),
            Err(e) => {
                tracing::info!(error = %e, "offer refused");
                let warning = format!("305 hotline \"{}\"", e.to_string().replace('"', "'"));
                ctx.send(Command::Reject(call, e.status_code(), Some(warning))).await;
                return;
            }
        },
        None => (None, sdp::offer(&local)),
    };
    tracing::info!(sip_call_id = %inc.sip_call_id, remote = %inc.peer.remote, "incoming call");

    let delay = Duration::from_millis(ctx.config.sip.answer_delay_ms);
    if !delay.is_zero() {
        ctx.send(Command::Ringing(call)).await;
        let ring = tokio::time::sleep(delay);
        tokio::pin!(ring);
        loop {
            tokio::select! {
                _ = &mut ring => break,
                ev = events.recv() => match ev {
                    Some(CallEvent::Ended(r)) => {
                        tracing::info!(reason = end_reason(r), "call ended before answer");
                        return;
                    }
                    None => return,
                    Some(_) => {}
                }
            }
        }
    }
    // Until the media layer lands, incoming RTP is counted and discarded.
    let rtp = match lease.socket.try_clone().and_then(tokio::net::UdpSocket::from_std) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot use the RTP socket");
            ctx.send(Command::Reject(call, 500, None)).await;
            return;
        }
    };
    let mut rtp_buf = [0u8; 2048];
    let mut rtp_in = 0u64;
    ctx.send(Command::Answer(call, Bytes::from(body))).await;
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(ctx.config.calls.max_duration_secs);
    let mut hung_up = false;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break,
                Some(CallEvent::Ended(r)) => {
                    tracing::info!(reason = end_reason(r), secs = started.elapsed().as_secs(), rtp_in, "call ended");
                    break;
                }
                Some(CallEvent::Acked(sdp)) => {
                    if negotiated.is_none() {
                        match sdp.as_deref().map(|a| sdp::accept_answer(a, &local)) {
                            Some(Ok(n)) => negotiated = Some(n),
                            _ => {
                                tracing::info!("no usable SDP answer in the ACK; hanging up");
                                ctx.send(Command::Hangup(call)).await;
                                hung_up = true;
                            }
                        }
                    }
                    tracing::debug!(codec = ?negotiated.as_ref().map(|n| n.codec), "call confirmed");
                }
                Some(CallEvent::ReInvite(offer)) => {
                    local.session_version += 1;
                    match offer {
                        Some(offer) => match sdp::answer(&offer, &local) {
                            Ok((n, body)) => {
                                tracing::info!(direction = ?n.direction, "re-INVITE");
                                negotiated = Some(n);
                                ctx.send(Command::AcceptReinvite(call, Bytes::from(body))).await;
                            }
                            Err(e) => ctx.send(Command::RejectReinvite(call, e.status_code())).await,
                        },
                        None => {
                            negotiated = None;
                            ctx.send(Command::AcceptReinvite(call, Bytes::from(sdp::offer(&local)))).await;
                        }
                    }
                }
                Some(CallEvent::Info(content_type, body)) => {
                    // DTMF relay (application/dtmf-relay, RFC 6086 INFO); the flow uses it with the media issue.
                    tracing::debug!(content_type = %String::from_utf8_lossy(&content_type), bytes = body.len(), "INFO");
                }
            },
            r = rtp.recv_from(&mut rtp_buf) => {
                if let Ok((_, from)) = r {
                    rtp_in += 1;
                    if rtp_in == 1 {
                        tracing::debug!(%from, "first RTP packet");
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline), if !hung_up => {
                tracing::info!(max_secs = ctx.config.calls.max_duration_secs, "call reached calls.max_duration_secs; hanging up");
                ctx.send(Command::Hangup(call)).await;
                hung_up = true;
            }
        }
    }
    drop(lease);
}
