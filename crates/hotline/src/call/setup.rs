//! From INVITE to the answer: the trunk check, the call's row, the RTP port,
//! the SDP answer, the media shard, ringing, and the 200 OK.

use std::time::Duration;

use bytes::Bytes;
use hotline_sip::endpoint::{CallHandle, IncomingCall};
use hotline_sip::sdp::{self, Codec, Direction, LocalMedia, Negotiated};
use hotline_store::{CallUpdate, Disposition as StoreDisposition, NewCall, Timestamp};
use tokio::sync::mpsc;

use super::CallCtx;
use crate::media::MediaHandle;
use crate::rtp_ports::RtpLease;
use crate::signal::{CallEvent, Command, end_reason};

/// An answered call, ready for its loop.
pub(super) struct Answered {
    pub(super) row: String,
    pub(super) reference: String,
    pub(super) negotiated: Option<Negotiated>,
    pub(super) local: LocalMedia,
    pub(super) media: MediaHandle,
    /// Holds the RTP ports until the call is over.
    pub(super) lease: RtpLease,
}

/// Answers the call, or refuses it (and says why in the store and the log).
/// `None`: refused, or ended before the answer.
pub(super) async fn answer(
    ctx: &CallCtx,
    inc: &IncomingCall,
    events: &mut mpsc::Receiver<(CallHandle, CallEvent)>,
) -> Option<Answered> {
    let call = ctx.handle;
    // Refused before anything is stored: a scanner flooding us from outside the
    // trunk must not fill the database nor use up reference numbers.
    if !ctx.config.sip.trunk_allows(inc.peer.remote.ip()) {
        tracing::warn!(remote = %inc.peer.remote, "INVITE from outside sip.trunk_sources refused");
        ctx.send(Command::Reject(call, 403, None)).await;
        return None;
    }
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
        node: ctx.config.cluster.node().map(str::to_owned),
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
        return None;
    };
    let local = LocalMedia {
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
                return None;
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
                        return None;
                    }
                    None => return None,
                    Some(_) => {}
                }
            }
        }
    }
    let placed = lease
        .take_sockets()
        .ok_or_else(|| std::io::Error::other("sockets already taken"))
        .and_then(|(rtp, rtcp)| ctx.media.place(call.0, rtp, rtcp));
    let media = match placed {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "cannot use the RTP socket");
            refuse("RTP socket unusable");
            ctx.send(Command::Reject(call, 500, None)).await;
            return None;
        }
    };
    ctx.send(Command::Answer(call, Bytes::from(body))).await;
    Some(Answered {
        row,
        reference,
        negotiated,
        local,
        media,
        lease,
    })
}
