//! What the SIP task and the call tasks say to each other: [`Command`] (a call
//! task asks the endpoint to ring, answer, hang up, place an operator leg) and
//! [`CallEvent`] (the endpoint's news of a call or of the leg it placed).
//!
//! Both sides import this room and not each other: the SIP task spawns call
//! tasks ([`crate::call::run`]), and a call task only sends commands.

use bytes::Bytes;
use hotline_sip::endpoint::{CallHandle, EndReason, OutgoingCall};

/// What call tasks ask of the SIP task.
#[derive(Debug)]
pub(crate) enum Command {
    Ringing(CallHandle),
    Answer(CallHandle, Bytes),
    Reject(CallHandle, u16, Option<String>),
    Hangup(CallHandle),
    AcceptReinvite(CallHandle, Bytes),
    RejectReinvite(CallHandle, u16),
    /// Place an outgoing call (the operator leg) for the call `parent`: its events go to
    /// the parent's task, tagged with the handle sent back on `placed`.
    Invite {
        parent: CallHandle,
        call: Box<OutgoingCall>,
        placed: tokio::sync::oneshot::Sender<CallHandle>,
    },
    /// Place an outgoing call of no incoming call (a callback's legs): its events go to
    /// `events`, tagged with the handle sent back on `placed`.
    Originate {
        call: Box<OutgoingCall>,
        events: tokio::sync::mpsc::Sender<(CallHandle, CallEvent)>,
        placed: tokio::sync::oneshot::Sender<CallHandle>,
    },
}

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

/// Why a call ended, in words for the log.
pub(crate) fn end_reason(r: EndReason) -> &'static str {
    match r {
        EndReason::RemoteBye => "caller hung up",
        EndReason::Cancelled => "caller cancelled",
        EndReason::NoAck => "no ACK",
        EndReason::LocalHangup => "we hung up",
        EndReason::Rejected(_) => "rejected",
        EndReason::Failed(_) => "failed",
    }
}
