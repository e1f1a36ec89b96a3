//! The user agent: as a server it matches messages to transactions (RFC 3261
//! §17.2.3) and dialogs (§12.2.2), answers what needs no application
//! decision (OPTIONS, CANCEL, BYE, errors), and reports calls to the
//! application; as a client it places the calls the application asks for
//! (the operator leg of a B2BUA, see "Outgoing calls" below).
//!
//! Sans-IO: the shell feeds datagrams or framed messages with `now` and the
//! peer they came from, then drains [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`] and sleeps until [`Endpoint::poll_timeout`].
//!
//! # What the endpoint answers by itself
//! | request | answer |
//! | --- | --- |
//! | unparseable but answerable | 400 with `Warning: 399` naming the problem |
//! | SIP version other than 2.0 | 505 |
//! | Request-URI scheme not sip/sips/tel | 416 |
//! | `Max-Forwards: 0` | 483 |
//! | `Require` with an extension we lack | 420 with `Unsupported` |
//! | OPTIONS | 200 with Allow, Accept, Supported |
//! | OPTIONS (out of dialog) while an INVITE would get 503 | 503 with Retry-After, Allow, Accept, Supported |
//! | INVITE over `max_calls`, while overloaded, or while draining | 503 with Retry-After |
//! | INVITE with a body that is not SDP | 415 with Accept |
//! | the same request again by another path (§8.2.2.2) | 482 |
//! | CANCEL for a pending INVITE | 200, then 487 to the INVITE |
//! | CANCEL after the final response | 200 (the call goes on) |
//! | BYE in a dialog | 200 (on an early dialog, then 487 to the INVITE) |
//! | re-INVITE while another INVITE of the dialog is pending | 491 |
//! | INFO in a dialog | 200 (the body goes to the application) |
//! | any request with an unknown To tag, CANCEL with no INVITE | 481 |
//! | a method we do not implement | 501 with Allow |
//! | REGISTER, with [`Config::registrar`] off | 501 with Allow |
//! | REGISTER the application left unanswered for 64·T1 | 503 with Retry-After |
//!
//! And to the responses to an INVITE we sent ([`Endpoint::invite`]):
//!
//! | response | what the endpoint does |
//! | --- | --- |
//! | 100 | nothing to report; a CANCEL that waited for a provisional response goes |
//! | 101-199 | [`Event::Progress`] (first of each code), and that CANCEL |
//! | the first 2xx | ACK (§13.2.2.4), [`Event::Answered`] |
//! | the same 2xx again (same To tag) | the same ACK again, until Timer M |
//! | a 2xx of another dialog (fork), or after a hangup | ACK, then BYE |
//! | 300-699 | ACK in the transaction (§17.1.1.3), [`EndReason::Failed`] |
//! | none in 64·T1 (Timer B) | [`EndReason::Failed`]`(408)` |
//! | a response to our CANCEL | matched by branch *and* CSeq method, never taken for the INVITE's |
//!
//! # REGISTER
//! With [`Config::registrar`] on, a REGISTER (with or without a To tag: it
//! never belongs to a dialog) passes the checks every request gets (416,
//! 483, 420, 482 above), then gets a non-INVITE server transaction and goes
//! to the application as [`Event::Register`]. The application decides (the
//! [`crate::registrar::RegisterHandler`] builds the response, possibly after
//! an asynchronous account lookup) and answers with
//! [`Endpoint::respond_register`]; the transaction absorbs retransmissions
//! meanwhile and repeats the final response afterwards (§17.2.2). Allow then
//! lists REGISTER ([`ALLOW_WITH_REGISTER`]).
//!
//! # Requests of the application
//! [`Endpoint::send_options`] sends an OPTIONS (a keep-alive to a registered
//! contact, RFC 3261 §11) through a non-INVITE client transaction: its final
//! response is reported as [`Event::RequestAnswered`], Timer F as
//! [`Event::RequestTimedOut`]. These are not counted by
//! [`Endpoint::pending_requests`] (a shutdown does not wait for them).
//!
//! When a call ends, an INVITE or re-INVITE of it still waiting for the
//! application gets 487 (§15.1.2). An ACK is matched to its INVITE by dialog
//! and CSeq number; the first one for a 2xx (initial or re-INVITE) is
//! reported as [`Event::Acked`]. A hangup between our 2xx and its ACK ends the
//! call for the application at once, but the BYE waits for the ACK or Timer L
//! (§15). A re-INVITE is a target refresh once accepted (§12.2.2).
//!
//! In-dialog requests go to the address the INVITE came from (symmetric
//! signalling, as behind NAT) rather than to a DNS resolution of the Contact
//! (RFC 3263 is not implemented); the Request-URI and Route set follow §12.2.1.
//!
//! # Outgoing calls
//! [`Endpoint::invite`] sends an INVITE ([`OutgoingCall`]: the registered
//! contact's [`Peer`] and Contact URI, the To URI, our user and display
//! name, the SDP offer) with a fresh Call-ID, From tag and branch, CSeq 1,
//! `Contact: <sip:hotline@our-address>` (`;transport=tcp` over TCP), Allow,
//! User-Agent and Max-Forwards 70, and no Supported (no extension is asked
//! for: no 100rel, no session timers). It runs in an INVITE client
//! transaction (Timers A and B over UDP, B alone over TCP). Every request of
//! the call, ACKs included, goes to that peer, whatever the Contact or
//! Route set says (the phone registered from there, behind NAT or not).
//!
//! - Responses are matched by the top Via's branch and the CSeq method
//!   (§17.1.3): a CANCEL shares its INVITE's branch.
//! - The first 2xx creates the dialog (§12.1.2, [`Dialog::from_2xx`]): the
//!   remote target is its Contact, the route set its Record-Route reversed.
//!   The endpoint ACKs it itself (§13.2.2.4: a new transaction, CSeq 1 ACK,
//!   through the route set), ACKs each retransmission of it with the same
//!   ACK until Timer M, and reports [`Event::Answered`]. A 2xx with another
//!   To tag (a fork) gets its own ACK, then BYE.
//! - A 300-699 is ACKed by the transaction with the INVITE's branch
//!   (§17.1.1.3) and ends the call with [`EndReason::Failed`]; so do Timer B
//!   (408) and [`Endpoint::transport_error`] (503).
//! - [`Endpoint::hangup`] before the final response reports
//!   [`EndReason::LocalHangup`] at once and cancels (§9.1): the CANCEL (same
//!   Request-URI, Via, From, To, Call-ID and CSeq number as the INVITE) goes
//!   at once if a provisional response came, else when the first one comes;
//!   if none comes, Timer B ends the INVITE. The 487 is ACKed by the
//!   transaction; a 2xx that raced the CANCEL gets ACK and BYE; with no
//!   final response 64·T1 after the CANCEL the INVITE is given up on.
//! - Once answered the call is like an incoming one: [`Endpoint::hangup`]
//!   sends BYE (CSeq 2, then on), and the peer's requests in the dialog (To
//!   tag = our From tag) are answered as in the table above: BYE → 200 and
//!   [`EndReason::RemoteBye`]; re-INVITE → [`Event::ReInvite`], answered
//!   with [`Endpoint::accept_reinvite`] or [`Endpoint::reject_reinvite`];
//!   INFO → 200 and [`Event::Info`]; OPTIONS → 200.
//! - Outgoing calls do not count in [`Endpoint::active_calls`] (nor against
//!   [`Config::max_calls`]); [`Endpoint::outgoing_calls`] counts them.
//!
//! Not implemented on this side: early dialogs (a request in the dialog of a
//! 1xx before the 2xx gets 481), reliable provisional responses (100rel,
//! PRACK), an INVITE without an offer (the ACK carries no answer),
//! authentication challenges without [`OutgoingCall::auth`] (401/407 end the call like any failure; with it one challenge is answered), and
//! redirection (3xx ends the call). A call that keeps ringing has no
//! timeout of its own: the application hangs up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::dialog::Dialog;
use crate::message::{HeaderName, Message, Method, ParseError, is_token_char};
use crate::response::{response, udp_response_destination};
use crate::transaction::{
    self, InviteClient, InviteServer, NonInviteClient, NonInviteServer, invite_client,
    invite_server, non_invite_client,
};
use crate::uri::{Scheme, Uri};

/// Methods we implement, for Allow.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// Methods we implement when the application handles REGISTER
/// ([`Config::registrar`]), for Allow.
pub const ALLOW_WITH_REGISTER: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER";
/// Bodies we accept, for Accept.
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, application/dtmf";
/// Extensions we support, for Supported (none beyond the base protocol).
pub const SUPPORTED: &str = "";

/// Transport of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, retransmission timers run.
    Udp,
    /// TCP: reliable, one connection per peer.
    Tcp,
}

impl Transport {
    /// The token used in Via.
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
        }
    }
}

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: Transport,
    /// The remote address.
    pub remote: SocketAddr,
    /// Our address as the peer sees it (used in Via and Contact).
    pub local: SocketAddr,
    /// The shell's id of the TCP connection (None for UDP).
    pub connection: Option<u64>,
}

/// Bytes to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// Where: for TCP, the shell uses `peer.connection` (or connects to `peer.remote`).
    pub peer: Peer,
    /// The message.
    pub payload: Bytes,
}

/// A call known to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// A REGISTER waiting for the application's answer
/// ([`Endpoint::respond_register`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegisterId(pub u64);

/// A request the application had the endpoint send ([`Endpoint::send_options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// The caller sent CANCEL before the answer.
    Cancelled,
    /// We answered and no ACK came in 64·T1; we sent BYE.
    NoAck,
    /// The application hung up (we sent BYE).
    LocalHangup,
    /// The application rejected the call with this status.
    Rejected(u16),
    /// Our outgoing INVITE ([`Endpoint::invite`]) failed: the 300-699 status
    /// it got, 408 when no response came within 64·T1 (Timer B), 503 on a
    /// transport error ([`Endpoint::transport_error`]).
    Failed(u16),
}

/// What the application learns.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new INVITE; answer with [`Endpoint::answer`] or [`Endpoint::reject`].
    IncomingCall(IncomingCall),
    /// The ACK for our 2xx arrived; `sdp` is the answer when the INVITE had no offer.
    Acked {
        /// The call.
        call: CallHandle,
        /// SDP body of the ACK, if any.
        sdp: Option<Bytes>,
    },
    /// A re-INVITE; answer with [`Endpoint::accept_reinvite`] or [`Endpoint::reject_reinvite`].
    ReInvite {
        /// The call.
        call: CallHandle,
        /// The new offer, if any.
        sdp: Option<Bytes>,
    },
    /// INFO in a dialog (already answered 200), e.g. DTMF relay.
    Info {
        /// The call.
        call: CallHandle,
        /// Content-Type of the body.
        content_type: Bytes,
        /// The body.
        body: Bytes,
    },
    /// A provisional response (101-199) to our INVITE ([`Endpoint::invite`]);
    /// the first of each status code only.
    Progress {
        /// The call.
        call: CallHandle,
        /// The status code (180 Ringing, 183 Session Progress, ...).
        status: u16,
        /// Its SDP body (early media), if any.
        sdp: Option<Bytes>,
    },
    /// The first 2xx to our INVITE ([`Endpoint::invite`]): the call is
    /// established, and the endpoint has sent the ACK.
    Answered {
        /// The call.
        call: CallHandle,
        /// The answer (SDP body of the 2xx), if any.
        sdp: Option<Bytes>,
    },
    /// The call is over; the handle is no longer valid.
    Ended {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
    /// A REGISTER (only with [`Config::registrar`]); answer with
    /// [`Endpoint::respond_register`] within 64·T1, else the endpoint
    /// answers 503.
    Register {
        /// Its transaction.
        id: RegisterId,
        /// The request (validated: [`Message::validate_request`] passed).
        request: Message,
        /// Where it came from (the binding's source: NAT address and port,
        /// TCP connection).
        peer: Peer,
        /// The To tag the response must carry (the request's own, if it has one).
        to_tag: String,
    },
    /// The final response to a request of [`Endpoint::send_options`] arrived.
    RequestAnswered {
        /// The request.
        id: RequestId,
        /// Its status code (200-699).
        status: u16,
    },
    /// A request of [`Endpoint::send_options`] got no final response within
    /// 64·T1 (Timer F): the peer is unreachable.
    RequestTimedOut {
        /// The request.
        id: RequestId,
    },
    /// A message was refused or dropped (for a rate-limited log and metrics).
    Refused {
        /// Where it came from.
        peer: Peer,
        /// The status we answered, or None if dropped.
        status: Option<u16>,
        /// Why.
        reason: String,
    },
}

/// A new call. `from_user` is the caller's number: it must never be logged.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// Handle for later commands.
    pub call: CallHandle,
    /// Where the INVITE came from.
    pub peer: Peer,
    /// The SIP Call-ID.
    pub sip_call_id: String,
    /// The caller's user part (number), unescaped. Private.
    pub from_user: Option<String>,
    /// The called user part (the dialled number), unescaped.
    pub to_user: Option<String>,
    /// The SDP offer, or None for an offerless INVITE.
    pub sdp: Option<Bytes>,
}

/// An outgoing INVITE the application asks for ([`Endpoint::invite`]), e.g.
/// to an operator's registered softphone.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// Where to send it: the registered contact's source address, transport
    /// and TCP connection. Every request and ACK of the call goes there.
    pub peer: Peer,
    /// The Request-URI: the registered Contact URI, a plain URI (e.g.
    /// `sip:op1@192.0.2.7:5070`). Anything else is replaced by
    /// `sip:<peer address>`.
    pub request_uri: String,
    /// The To URI, a plain URI (e.g. `sip:op1@hotline.local`); anything
    /// else is replaced by the Request-URI.
    pub to: String,
    /// Our user part in From (escaped as needed; empty: `hotline`).
    pub from_user: String,
    /// The display name in From, shown on the phone (e.g. `QU 4821`);
    /// written as a quoted string, `"` and `\` escaped and control
    /// characters replaced by spaces. Empty: none.
    pub from_display: String,
    /// Our SDP offer (empty: an INVITE without a body; the ACK never carries
    /// one, so the answer to an offer in the 2xx cannot be given).
    pub sdp: Bytes,
    /// More header lines (name, value). Names that are not tokens, and the
    /// headers the endpoint writes itself (Via, From, To, Call-ID, CSeq,
    /// Contact, Max-Forwards, Content-Type, Content-Length), are dropped;
    /// CR and LF in values become spaces.
    pub extra_headers: Vec<(String, String)>,
    /// Credentials for one digest challenge (RFC 3261 §22.2, RFC 7616): a 401 or 407 to
    /// the INVITE is answered once with a new INVITE (same Call-ID and From tag, CSeq + 1,
    /// a new branch) carrying `Authorization` / `Proxy-Authorization`; a second challenge
    /// ends the call. `None`: a challenge ends the call like any failure.
    pub auth: Option<ClientAuth>,
    /// A call that leaves through a carrier to someone who must not learn who calls (a
    /// safe callback): the Contact's user is `from_user` rather than `hotline` and the
    /// Call-ID has no host part. (`User-Agent` is still the endpoint's: configure a
    /// neutral one.)
    pub neutral: bool,
}

/// Digest credentials an outgoing call answers a challenge with.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Transaction timers.
    pub timers: transaction::Config,
    /// Server / User-Agent header value.
    pub user_agent: String,
    /// Calls over this get 503.
    pub max_calls: usize,
    /// Retry-After on 503, seconds.
    pub retry_after_secs: u32,
    /// Seed for tags and branches (the shell passes OS randomness).
    pub seed: u64,
    /// Whether the application handles REGISTER ([`Event::Register`]); off,
    /// REGISTER gets 501 like any method we do not implement.
    pub registrar: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timers: transaction::Config::default(),
            user_agent: "hotline".into(),
            max_calls: 500,
            retry_after_secs: 30,
            seed: 0x9e37_79b9_7f4a_7c15,
            registrar: false,
        }
    }
}

/// RFC 3261 §17.2.3 server transaction key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TxKey {
    /// Magic-cookie branch: branch, sent-by, method (ACK counts as INVITE).
    Rfc3261 {
        branch: Bytes,
        sent_by: Bytes,
        method: Method,
    },
    /// RFC 2543 peers: Call-ID, CSeq number, From tag, top Via, method.
    Rfc2543 {
        call_id: Bytes,
        cseq: u32,
        from_tag: Bytes,
        via: Bytes,
        method: Method,
    },
}

/// RFC 3261 §8.2.2.2: a request outside a dialog, by From tag, Call-ID and
/// CSeq; a second one with another transaction key is a merged request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    call_id: Bytes,
    from_tag: Bytes,
    cseq: u32,
    method: Method,
}

enum ServerMachine {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

struct ServerTx {
    machine: ServerMachine,
    peer: Peer,
    request: Message,
    /// The call this INVITE created or belongs to.
    call: Option<CallHandle>,
    /// The To tag our responses carry.
    tag: String,
    /// Set for requests outside a dialog, to detect merged requests.
    merge_key: Option<MergeKey>,
    /// A REGISTER waiting for the application: when the endpoint gives up
    /// and answers 503 itself.
    app_deadline: Option<Instant>,
}

struct ClientTx {
    machine: NonInviteClient,
    peer: Peer,
    branch: Bytes,
    /// Its method: a response must name it in CSeq (a CANCEL shares the
    /// branch of its INVITE).
    method: Method,
    /// The application's id of the request (None: our own BYE or CANCEL).
    notify: Option<RequestId>,
}

/// How far a hangup before the final response got (RFC 3261 §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// Not hung up (or no longer needed: a final response came).
    No,
    /// Hung up before any provisional response: the CANCEL waits for one.
    Wanted,
    /// The CANCEL was sent.
    Sent,
}

/// An INVITE we sent ([`Endpoint::invite`]) and its client transaction.
struct OutgoingTx {
    machine: InviteClient,
    peer: Peer,
    branch: Bytes,
    /// The call it was sent for. The application still holds it while
    /// `Endpoint::outgoing` maps it to this transaction.
    call: CallHandle,
    /// The INVITE as sent: CANCEL and the ACK of a 300-699 copy it, and a
    /// 2xx's dialog starts from it.
    invite: Message,
    /// Provisional codes already reported as [`Event::Progress`].
    reported: Vec<u16>,
    /// The ACK sent for each 2xx, by To tag, resent to its retransmissions.
    acks: Vec<(Bytes, Bytes)>,
    cancel: Cancel,
    /// After a CANCEL: when the INVITE is given up on if no final response
    /// came (64·T1, §9.1).
    give_up: Option<Instant>,
    /// What a digest challenge is answered with, until it has been once.
    retry: Option<Box<AuthRetry>>,
}

/// What an outgoing INVITE needs to be sent again with credentials.
#[derive(Debug)]
struct AuthRetry {
    call: OutgoingCall,
    call_id: String,
    tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE received, no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK.
    Answered,
    /// ACK received.
    Confirmed,
    /// The application hung up between our 2xx and its ACK: the call has
    /// ended for the application, and the BYE waits for the ACK or Timer L
    /// (RFC 3261 §15: no BYE on a confirmed dialog before the ACK).
    HungUp,
}

struct Call {
    state: CallState,
    dialog: Dialog,
    peer: Peer,
    /// The initial INVITE's server transaction (None for an outgoing call).
    invite_tx: Option<TxKey>,
    /// We sent the INVITE ([`Endpoint::invite`]); the call is in the map once
    /// answered, always [`CallState::Confirmed`].
    outgoing: bool,
    /// A re-INVITE waiting for the application.
    reinvite_tx: Option<TxKey>,
}

/// Which machine a deadline belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Owner {
    Server(u64),
    Client(u64),
    Invite(u64),
}

/// The UAS endpoint.
pub struct Endpoint {
    config: Config,
    rng: u64,
    accepting: bool,
    overloaded: bool,
    next_id: u64,
    server_keys: HashMap<TxKey, u64>,
    merged: HashMap<MergeKey, u64>,
    servers: HashMap<u64, (TxKey, ServerTx)>,
    clients: HashMap<u64, ClientTx>,
    /// Branch → non-INVITE client transaction.
    client_branches: HashMap<Bytes, u64>,
    /// Our INVITE client transactions ([`Endpoint::invite`]).
    invites: HashMap<u64, OutgoingTx>,
    /// Branch → INVITE client transaction.
    invite_branches: HashMap<Bytes, u64>,
    /// Outgoing calls not answered yet → their INVITE client transaction.
    outgoing: HashMap<CallHandle, u64>,
    calls: HashMap<CallHandle, Call>,
    /// (Call-ID, our tag) → call.
    dialogs: HashMap<(Bytes, String), CallHandle>,
    /// The armed deadline of each machine; the heap entries that disagree are stale.
    deadlines: HashMap<Owner, Instant>,
    /// Transactions seen terminated by `arm`, to forget in `drain_finished`.
    finished: Vec<Owner>,
    timers: BinaryHeap<Reverse<(Instant, Owner)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.calls.len())
            .field("server_transactions", &self.servers.len())
            .field("client_transactions", &self.clients.len())
            .field("invite_client_transactions", &self.invites.len())
            .field("outgoing_unanswered", &self.outgoing.len())
            .finish()
    }
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(config: Config) -> Self {
        Self {
            rng: config.seed | 1,
            config,
            accepting: true,
            overloaded: false,
            next_id: 1,
            server_keys: HashMap::new(),
            merged: HashMap::new(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            client_branches: HashMap::new(),
            invites: HashMap::new(),
            invite_branches: HashMap::new(),
            outgoing: HashMap::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            deadlines: HashMap::new(),
            finished: Vec::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Stops (false) or resumes (true) taking new calls: while stopped,
    /// INVITEs get 503 and calls in progress carry on.
    pub fn set_accepting(&mut self, accepting: bool) {
        self.accepting = accepting;
    }

    /// Refuses (true) or takes again (false) new calls because the media plane is
    /// overloaded: while refusing, INVITEs get 503 with Retry-After (and an
    /// [`Event::Refused`] whose reason is "overloaded"); calls in progress carry on.
    pub fn set_overloaded(&mut self, overloaded: bool) {
        self.overloaded = overloaded;
    }

    /// Whether new calls are refused for overload.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// Why a new call would be refused now (503 with Retry-After), if it would:
    /// "shutting down" ([`Endpoint::set_accepting`] false), "overloaded"
    /// ([`Endpoint::set_overloaded`]) or "over max_calls" ([`Config::max_calls`]).
    /// An out-of-dialog OPTIONS gets the same 503 meanwhile.
    pub fn refusal(&self) -> Option<&'static str> {
        if !self.accepting {
            Some("shutting down")
        } else if self.overloaded {
            Some("overloaded")
        } else if self.active_calls() >= self.config.max_calls {
            Some("over max_calls")
        } else {
            None
        }
    }

    /// Incoming calls in progress (from INVITE to end), what
    /// [`Config::max_calls`] bounds. Outgoing calls do not count.
    pub fn active_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| !c.outgoing && c.state != CallState::HungUp)
            .count()
    }

    /// Outgoing calls ([`Endpoint::invite`]) the application holds: ringing
    /// or answered, until [`Event::Ended`].
    pub fn outgoing_calls(&self) -> usize {
        self.outgoing.len() + self.calls.values().filter(|c| c.outgoing).count()
    }

    /// Open transactions, for metrics.
    pub fn transactions(&self) -> usize {
        self.servers.len() + self.clients.len() + self.invites.len()
    }

    /// Requests we sent (BYE, CANCEL) still waiting for their final
    /// response, BYEs still waiting to be sent (a hangup before the ACK,
    /// §15), and outgoing INVITEs hung up before their final response (the
    /// CANCEL waits for a provisional response, or the INVITE for its 487,
    /// to which a racing 2xx would need ACK and BYE): a shell that drains
    /// before exiting waits for these. The application's own requests
    /// ([`send_options`](Self::send_options)) do not count.
    pub fn pending_requests(&self) -> usize {
        let waiting = self.clients.values().filter(|c| {
            c.notify.is_none()
                && matches!(
                    c.machine.state(),
                    non_invite_client::State::Trying | non_invite_client::State::Proceeding
                )
        });
        let deferred = self.calls.values().filter(|c| c.state == CallState::HungUp);
        let cancelled = self.invites.values().filter(|tx| {
            tx.cancel != Cancel::No
                && matches!(
                    tx.machine.state(),
                    invite_client::State::Calling | invite_client::State::Proceeding
                )
        });
        waiting.count() + deferred.count() + cancelled.count()
    }

    /// A datagram arrived (UDP).
    pub fn handle_datagram(&mut self, now: Instant, peer: Peer, datagram: Bytes) {
        if datagram
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            // Keep-alive (RFC 5626 §4.4.1 sends CRLF over UDP too); nothing to answer.
            return;
        }
        match Message::parse_datagram(datagram.clone()) {
            Ok(msg) => self.handle_message(now, peer, msg),
            Err(err) => self.handle_unparseable(now, peer, datagram, err),
        }
    }

    /// A complete message arrived (from a stream framer, or a parsed datagram).
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: Message) {
        if msg.is_request() {
            self.handle_request(now, peer, msg);
        } else {
            self.handle_response(now, msg);
        }
        self.drain_finished(now);
    }

    /// A message that did not parse: answer 400/505 if enough of it is
    /// readable to build a response, else drop it.
    fn handle_unparseable(&mut self, _now: Instant, peer: Peer, datagram: Bytes, err: ParseError) {
        let status = if err == ParseError::Version { 505 } else { 400 };
        let sent = Message::parse_head_lenient(datagram)
            .ok()
            .filter(|m| m.method().is_some_and(|m| *m != Method::Ack))
            .filter(Self::answerable)
            .map(|m| {
                let warning = warning(&err);
                let resp = response(&m, status)
                    .source(peer.remote)
                    .to_tag(&self.random_tag())
                    .header("Warning", &warning)
                    .header("Server", &self.config.user_agent)
                    .build();
                self.send_response(peer, &m, resp);
            })
            .is_some();
        self.events.push_back(Event::Refused {
            peer,
            status: sent.then_some(status),
            reason: err.to_string(),
        });
    }

    /// Whether a response can be routed: the top Via is readable. The
    /// response copies whatever From, To, Call-ID and CSeq lines the request
    /// has, byte for byte, malformed or repeated ones included (RFC 4475
    /// §3.3.1, §3.3.8 ask for 400 even then).
    fn answerable(m: &Message) -> bool {
        m.top_via().is_ok()
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        if let Err(err) = msg.validate_request() {
            if method != Method::Ack && Self::answerable(&msg) {
                let warning = warning(&err);
                let tag = self.random_tag();
                let resp = response(&msg, 400)
                    .source(peer.remote)
                    .to_tag(&tag)
                    .header("Warning", &warning)
                    .header("Server", &self.config.user_agent)
                    .build();
                self.send_response(peer, &msg, resp);
                self.refused(peer, Some(400), err.to_string());
            } else {
                self.refused(peer, None, err.to_string());
            }
            return;
        }
        let Some(key) = Self::tx_key(&msg, &method) else {
            self.refused(peer, None, "no transaction key".into());
            return;
        };

        // Retransmissions and ACKs of existing server transactions.
        if let Some(&id) = self.server_keys.get(&key) {
            let (_, tx) = self
                .servers
                .get_mut(&id)
                .expect("server_keys and servers agree");
            match (&mut tx.machine, &method) {
                (ServerMachine::Invite(m), Method::Ack) => {
                    if m.state() == invite_server::State::Accepted {
                        // An RFC 2543-style ACK for our 2xx reusing the INVITE's branch.
                        if let Some(call) = tx.call {
                            self.ack_2xx(now, call, id, &msg);
                        }
                        return;
                    }
                    m.ack(now);
                }
                (ServerMachine::Invite(m), _) => m.request_retransmitted(now),
                (ServerMachine::NonInvite(m), _) => m.request_retransmitted(now),
            }
            self.flush_server(now, id);
            return;
        }

        match method {
            Method::Ack => self.handle_ack(now, &msg),
            Method::Cancel => self.handle_cancel(now, peer, key, msg),
            _ => self.handle_new_request(now, peer, key, method, msg),
        }
    }

    fn handle_new_request(
        &mut self,
        now: Instant,
        peer: Peer,
        key: TxKey,
        method: Method,
        msg: Message,
    ) {
        let reliable = peer.transport == Transport::Tcp;
        let machine = if method == Method::Invite {
            ServerMachine::Invite(InviteServer::new(now, &self.config.timers, reliable))
        } else {
            ServerMachine::NonInvite(NonInviteServer::new(now, &self.config.timers, reliable))
        };
        let to_tag = msg
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(<[u8]>::to_vec));
        let id = self.next_id();
        let tag = match &to_tag {
            Some(t) => String::from_utf8_lossy(t).into_owned(),
            None => self.random_tag(),
        };
        let merge_key = to_tag.is_none().then(|| MergeKey {
            call_id: Bytes::copy_from_slice(msg.call_id().unwrap_or_default()),
            from_tag: Bytes::copy_from_slice(
                msg.from_header()
                    .ok()
                    .and_then(|f| f.tag())
                    .unwrap_or_default(),
            ),
            cseq: msg.cseq().map(|c| c.seq).unwrap_or_default(),
            method: method.clone(),
        });
        let merged = merge_key
            .as_ref()
            .is_some_and(|k| self.merged.contains_key(k));
        let merge_key = merge_key.filter(|_| !merged);
        if let Some(k) = &merge_key {
            self.merged.insert(k.clone(), id);
        }
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            (
                key.clone(),
                ServerTx {
                    machine,
                    peer,
                    request: msg,
                    call: None,
                    tag,
                    merge_key,
                    app_deadline: None,
                },
            ),
        );
        if merged {
            // §8.2.2.2: the same request by another path (a fork that came back).
            return self.respond_simple(now, id, 482, &[]);
        }
        let msg = &self.servers[&id].1.request;

        // Checks common to every method (§8.2.1-§8.2.2).
        let uri_ok = Uri::parse(msg.request_uri()).is_ok_and(|u| u.scheme != Scheme::Other);
        if !uri_ok {
            return self.respond_simple(now, id, 416, &[]);
        }
        if msg.max_forwards().ok().flatten() == Some(0) && method != Method::Options {
            return self.respond_simple(now, id, 483, &[]);
        }
        let unsupported: Vec<String> = msg
            .values(HeaderName::Require)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            return self.respond_simple(now, id, 420, &[("Unsupported", &list)]);
        }
        if method == Method::Register && self.config.registrar {
            // Never part of a dialog, whatever its To tag says.
            return self.handle_register(now, id);
        }

        if let Some(to_tag) = to_tag {
            // In-dialog request (§12.2.2).
            let call_id = Bytes::copy_from_slice(msg.call_id().unwrap_or_default());
            let tag = String::from_utf8_lossy(&to_tag).into_owned();
            let Some(&call) = self.dialogs.get(&(call_id, tag)) else {
                return self.respond_simple(now, id, 481, &[]);
            };
            return self.handle_in_dialog(now, id, call, method);
        }

        match method {
            Method::Invite => self.handle_invite(now, id),
            Method::Options => {
                // §11.2: Supported is listed even when empty (no extensions), and the code
                // is the one an INVITE would get now: 503 while new calls are refused, so
                // that a load balancer probing with OPTIONS (Kamailio's dispatcher) takes
                // this node out until it answers 200 again.
                let retry = self.config.retry_after_secs.to_string();
                let mut extra = vec![
                    ("Allow", self.allow()),
                    ("Accept", ACCEPT),
                    ("Supported", SUPPORTED),
                ];
                let code = if self.refusal().is_some() {
                    extra.push(("Retry-After", &retry));
                    503
                } else {
                    200
                };
                self.respond_simple(now, id, code, &extra)
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack => {
                self.respond_simple(now, id, 481, &[])
            }
            _ => self.respond_simple(now, id, 501, &[("Allow", self.allow())]),
        }
    }

    /// The Allow value: [`ALLOW`], with REGISTER when the application handles it.
    fn allow(&self) -> &'static str {
        if self.config.registrar {
            ALLOW_WITH_REGISTER
        } else {
            ALLOW
        }
    }

    /// Hands a REGISTER to the application; the endpoint answers 503 itself
    /// if the application has not answered in 64·T1.
    fn handle_register(&mut self, now: Instant, id: u64) {
        let deadline = now + self.config.timers.timeout();
        let Some((_, tx)) = self.servers.get_mut(&id) else {
            return;
        };
        tx.app_deadline = Some(deadline);
        let event = Event::Register {
            id: RegisterId(id),
            request: tx.request.clone(),
            peer: tx.peer,
            to_tag: tx.tag.clone(),
        };
        self.arm(Owner::Server(id));
        self.events.push_back(event);
    }

    fn handle_invite(&mut self, now: Instant, id: u64) {
        let local_seq = self.rng_u32() & 0x7fff;
        let (_, tx) = &self.servers[&id];
        let msg = &tx.request;
        let body = msg.body();
        if !body.is_empty() {
            let is_sdp = msg
                .content_type()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"application/sdp"));
            if !is_sdp {
                return self.respond_simple(now, id, 415, &[("Accept", "application/sdp")]);
            }
            if msg.header(HeaderName::ContentEncoding).is_some() {
                return self.respond_simple(now, id, 415, &[("Accept-Encoding", "identity")]);
            }
        }
        if !accepts_sdp(msg) {
            // §21.4.7, RFC 4475 §3.3.15: our 2xx would carry SDP the caller cannot take.
            let warning = "399 hotline \"Accept does not include application/sdp\"";
            return self.respond_simple(
                now,
                id,
                406,
                &[("Accept", "application/sdp"), ("Warning", warning)],
            );
        }
        if let Some(reason) = self.refusal() {
            let retry = self.config.retry_after_secs.to_string();
            let peer = tx.peer;
            self.respond_simple(now, id, 503, &[("Retry-After", &retry)]);
            self.refused(peer, Some(503), reason.into());
            return;
        }
        let tag = tx.tag.clone();
        let Some(dialog) = Dialog::from_invite(msg, tag.clone(), local_seq) else {
            return self.respond_simple(
                now,
                id,
                400,
                &[("Warning", "399 hotline \"unusable From, To or Contact\"")],
            );
        };
        let peer = tx.peer;
        let from_user = msg
            .from_header()
            .ok()
            .and_then(|f| f.uri.user_unescaped())
            .map(|u| String::from_utf8_lossy(&u).into_owned());
        let to_user = msg
            .to_header()
            .ok()
            .and_then(|t| t.uri.user_unescaped())
            .or_else(|| {
                Uri::parse(msg.request_uri())
                    .ok()
                    .and_then(|u| u.user_unescaped())
            })
            .map(|u| String::from_utf8_lossy(&u).into_owned());
        let sdp = (!body.is_empty()).then(|| msg.body_bytes());
        let sip_call_id = String::from_utf8_lossy(&dialog.call_id).into_owned();
        let key = self.servers[&id].0.clone();
        // 100 Trying at once (§17.2.1): the application may take longer than 200 ms.
        self.respond_simple(now, id, 100, &[]);
        let call = CallHandle(self.next_id());
        self.dialogs.insert((dialog.call_id.clone(), tag), call);
        self.calls.insert(
            call,
            Call {
                state: CallState::Early,
                dialog,
                peer,
                invite_tx: Some(key),
                outgoing: false,
                reinvite_tx: None,
            },
        );
        if let Some((_, tx)) = self.servers.get_mut(&id) {
            tx.call = Some(call);
        }
        self.events.push_back(Event::IncomingCall(IncomingCall {
            call,
            peer,
            sip_call_id,
            from_user,
            to_user,
            sdp,
        }));
    }

    fn handle_in_dialog(&mut self, now: Instant, id: u64, call: CallHandle, method: Method) {
        let seq = self.servers[&id]
            .1
            .request
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(0);
        let Some(c) = self.calls.get_mut(&call) else {
            return self.respond_simple(now, id, 481, &[]);
        };
        if seq < c.dialog.remote_seq {
            // §12.2.2: a lower CSeq is out of order.
            return self.respond_simple(now, id, 500, &[("Retry-After", "1")]);
        }
        c.dialog.remote_seq = seq;
        let state = c.state;
        match method {
            Method::Bye => {
                self.respond_simple(now, id, 200, &[]);
                // On an early dialog (§15) the INVITE gets 487 as the call ends.
                self.stop_2xx(now, call);
                if state == CallState::HungUp {
                    self.forget_call(now, call);
                } else {
                    self.end_call(now, call, EndReason::RemoteBye);
                }
            }
            Method::Info => {
                let req = &self.servers[&id].1.request;
                let content_type = Bytes::copy_from_slice(req.content_type().unwrap_or_default());
                let body = req.body_bytes();
                self.respond_simple(now, id, 200, &[]);
                if state != CallState::HungUp {
                    self.events.push_back(Event::Info {
                        call,
                        content_type,
                        body,
                    });
                }
            }
            Method::Options => {
                let allow = self.allow();
                self.respond_simple(now, id, 200, &[("Allow", allow), ("Accept", ACCEPT)])
            }
            Method::Invite => {
                let pending = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.reinvite_tx.is_some());
                if state != CallState::Confirmed || pending {
                    // §14.2: an INVITE while another is in progress.
                    return self.respond_simple(now, id, 491, &[]);
                }
                let req = &self.servers[&id].1.request;
                let sdp = (!req.body().is_empty()).then(|| req.body_bytes());
                let key = self.servers[&id].0.clone();
                self.respond_simple(now, id, 100, &[]);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.reinvite_tx = Some(key);
                }
                if let Some((_, tx)) = self.servers.get_mut(&id) {
                    tx.call = Some(call);
                }
                self.events.push_back(Event::ReInvite { call, sdp });
            }
            _ => self.respond_simple(now, id, 501, &[("Allow", self.allow())]),
        }
    }

    /// An ACK for a 2xx: a transaction of its own, matched to the dialog and,
    /// by its CSeq number, to the INVITE it acknowledges (§13.3.1.4, §17.1.1.3).
    fn handle_ack(&mut self, now: Instant, msg: &Message) {
        let Some(tag) = msg
            .to_header()
            .ok()
            .and_then(|t| t.tag().map(<[u8]>::to_vec))
        else {
            return;
        };
        let call_id = Bytes::copy_from_slice(msg.call_id().unwrap_or_default());
        let tag = String::from_utf8_lossy(&tag).into_owned();
        let Some(&call) = self.dialogs.get(&(call_id, tag)) else {
            return;
        };
        let Ok(cseq) = msg.cseq() else { return };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let invite = c
            .invite_tx
            .iter()
            .chain(&c.reinvite_tx)
            .filter_map(|key| self.server_keys.get(key).copied())
            .find(|id| {
                self.servers[id]
                    .1
                    .request
                    .cseq()
                    .is_ok_and(|s| s.seq == cseq.seq)
            });
        if let Some(id) = invite {
            self.ack_2xx(now, call, id, msg);
        }
    }

    /// The ACK for the 2xx of INVITE server transaction `id` of `call` arrived.
    fn ack_2xx(&mut self, now: Instant, call: CallHandle, id: u64, msg: &Message) {
        let Some((
            key,
            ServerTx {
                machine: ServerMachine::Invite(m),
                ..
            },
        )) = self.servers.get_mut(&id)
        else {
            return;
        };
        if m.state() != invite_server::State::Accepted {
            return;
        }
        m.ack_2xx(now);
        let key = key.clone();
        self.flush_server(now, id);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let first = if c.invite_tx.as_ref() == Some(&key) {
            match c.state {
                CallState::Answered => {
                    c.state = CallState::Confirmed;
                    true
                }
                CallState::HungUp => {
                    // The BYE the application asked for can go now (§15).
                    self.send_bye(now, call);
                    self.forget_call(now, call);
                    false
                }
                // A retransmitted ACK.
                CallState::Early | CallState::Confirmed => false,
            }
        } else if c.reinvite_tx.as_ref() == Some(&key) {
            c.reinvite_tx = None;
            true
        } else {
            false
        };
        if first {
            let sdp = (!msg.body().is_empty()).then(|| msg.body_bytes());
            self.events.push_back(Event::Acked { call, sdp });
        }
    }

    /// Stops the 2xx retransmissions of the call's INVITE server transactions
    /// without an ACK (the call is ending).
    fn stop_2xx(&mut self, now: Instant, call: CallHandle) {
        for id in self.invite_ids(call) {
            if let Some((
                _,
                ServerTx {
                    machine: ServerMachine::Invite(m),
                    ..
                },
            )) = self.servers.get_mut(&id)
            {
                m.ack_2xx(now);
            }
            self.flush_server(now, id);
        }
    }

    /// The server transactions of the call's INVITE and pending re-INVITE.
    fn invite_ids(&self, call: CallHandle) -> Vec<u64> {
        let Some(c) = self.calls.get(&call) else {
            return Vec::new();
        };
        c.invite_tx
            .iter()
            .chain(&c.reinvite_tx)
            .filter_map(|key| self.server_keys.get(key).copied())
            .collect()
    }

    fn handle_cancel(&mut self, now: Instant, peer: Peer, key: TxKey, msg: Message) {
        // §9.2: the CANCEL matches the INVITE with the same key but method INVITE.
        let invite_key = match &key {
            TxKey::Rfc3261 {
                branch, sent_by, ..
            } => TxKey::Rfc3261 {
                branch: branch.clone(),
                sent_by: sent_by.clone(),
                method: Method::Invite,
            },
            TxKey::Rfc2543 {
                call_id,
                cseq,
                from_tag,
                via,
                ..
            } => TxKey::Rfc2543 {
                call_id: call_id.clone(),
                cseq: *cseq,
                from_tag: from_tag.clone(),
                via: via.clone(),
                method: Method::Invite,
            },
        };
        let target = self.server_keys.get(&invite_key).copied();
        let tag = target
            .and_then(|t| self.servers.get(&t))
            .map(|(_, tx)| tx.tag.clone())
            .unwrap_or_else(|| self.random_tag());
        let id = self.next_id();
        let reliable = peer.transport == Transport::Tcp;
        self.server_keys.insert(key.clone(), id);
        self.servers.insert(
            id,
            (
                key,
                ServerTx {
                    machine: ServerMachine::NonInvite(NonInviteServer::new(
                        now,
                        &self.config.timers,
                        reliable,
                    )),
                    peer,
                    request: msg,
                    call: None,
                    tag,
                    merge_key: None,
                    app_deadline: None,
                },
            ),
        );
        let Some(target) = target else {
            return self.respond_simple(now, id, 481, &[]);
        };
        self.respond_simple(now, id, 200, &[]);
        let pending = matches!(
            self.servers.get(&target),
            Some((_, ServerTx { machine: ServerMachine::Invite(m), .. })) if m.state() == invite_server::State::Proceeding
        );
        if !pending {
            // Already answered: the CANCEL has no effect (§9.2).
            return;
        }
        let call = self.servers[&target].1.call;
        self.respond_simple(now, target, 487, &[]);
        let Some(call) = call else { return };
        if self
            .calls
            .get(&call)
            .is_some_and(|c| c.state == CallState::Early)
        {
            self.end_call(now, call, EndReason::Cancelled);
        } else if let Some(c) = self.calls.get_mut(&call) {
            // A cancelled re-INVITE: the call goes on.
            c.reinvite_tx = None;
        }
    }

    /// A response: matched to its client transaction by the top Via's
    /// branch and the CSeq method (§17.1.3; a CANCEL shares its INVITE's
    /// branch).
    fn handle_response(&mut self, now: Instant, msg: Message) {
        let Some(code) = msg.status() else { return };
        let Ok(via) = msg.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        let Ok(cseq) = msg.cseq() else { return };
        if cseq.method == Method::Invite {
            if let Some(&id) = self.invite_branches.get(branch) {
                self.invite_response(now, id, code, &msg);
            }
            return;
        }
        let Some(&id) = self.client_branches.get(branch) else {
            return;
        };
        if let Some(tx) = self.clients.get_mut(&id) {
            if tx.method != cseq.method {
                return;
            }
            let deliver = tx.machine.handle_response(now, code);
            if let (true, 200.., Some(request)) = (deliver, code, tx.notify) {
                self.events.push_back(Event::RequestAnswered {
                    id: request,
                    status: code,
                });
            }
        }
        self.flush_client(now, id);
    }

    /// Fires the deadlines due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Deadlines live in a heap with lazy deletion: `deadlines` says which
        // entry of each machine is current, and stale ones are skipped.
        loop {
            self.prune_timers();
            let Some(Reverse((at, _))) = self.timers.peek() else {
                break;
            };
            if *at > now {
                break;
            }
            let Some(Reverse((_, owner))) = self.timers.pop() else {
                break;
            };
            self.deadlines.remove(&owner);
            match owner {
                Owner::Server(id) => {
                    if let Some((_, tx)) = self.servers.get_mut(&id) {
                        match &mut tx.machine {
                            ServerMachine::Invite(m) => m.handle_timeout(now),
                            ServerMachine::NonInvite(m) => m.handle_timeout(now),
                        }
                        if tx.app_deadline.is_some_and(|at| at <= now) {
                            // The application never answered the REGISTER.
                            tx.app_deadline = None;
                            let peer = tx.peer;
                            let retry = self.config.retry_after_secs.to_string();
                            self.respond_simple(now, id, 503, &[("Retry-After", &retry)]);
                            self.refused(peer, Some(503), "REGISTER not answered in time".into());
                        } else {
                            self.flush_server(now, id);
                        }
                    }
                }
                Owner::Client(id) => {
                    if let Some(tx) = self.clients.get_mut(&id) {
                        tx.machine.handle_timeout(now);
                        self.flush_client(now, id);
                    }
                }
                Owner::Invite(id) => {
                    if let Some(tx) = self.invites.get_mut(&id) {
                        if tx.give_up.is_some_and(|at| at <= now) {
                            // §9.1: no final response 64·T1 after the CANCEL;
                            // the INVITE is considered cancelled.
                            self.forget_outgoing_tx(id);
                        } else {
                            tx.machine.handle_timeout(now);
                            self.flush_outgoing(now, id);
                        }
                    }
                }
            }
        }
        self.drain_finished(now);
    }

    /// The next datagram or stream write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Sends 180 Ringing.
    pub fn ringing(&mut self, now: Instant, call: CallHandle) {
        self.provisional(now, call, 180);
    }

    /// Sends a provisional response (180, 183) on the initial INVITE.
    pub fn provisional(&mut self, now: Instant, call: CallHandle, code: u16) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Early || !(101..=199).contains(&code) {
            return;
        }
        if let Some(&id) = c.invite_tx.as_ref().and_then(|k| self.server_keys.get(k)) {
            self.respond_simple(now, id, code, &[]);
        }
        self.drain_finished(now);
    }

    /// Answers the call with 200 OK and `sdp` (an answer, or an offer if the
    /// INVITE had none). The 2xx is retransmitted until the ACK.
    pub fn answer(&mut self, now: Instant, call: CallHandle, sdp: Bytes) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state != CallState::Early {
            return;
        }
        c.state = CallState::Answered;
        let contact = format!(
            "<sip:hotline@{}>",
            fmt_hostport(c.peer.local, c.peer.transport)
        );
        let allow = self.allow();
        self.final_to_invite(
            now,
            call,
            200,
            &[("Contact", &contact), ("Allow", allow)],
            Some(sdp),
        );
        self.drain_finished(now);
    }

    /// Rejects a call that was not answered yet with a 300-699 status (e.g.
    /// 488, 503, 403); other codes are ignored.
    pub fn reject(&mut self, now: Instant, call: CallHandle, code: u16, extra: &[(&str, &str)]) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if c.state != CallState::Early || !(300..=699).contains(&code) {
            return;
        }
        self.final_to_invite(now, call, code, extra, None);
        self.end_call(now, call, EndReason::Rejected(code));
        self.drain_finished(now);
    }

    /// Hangs up: BYE for an answered call, 480 for one not yet answered.
    ///
    /// Between our 2xx and its ACK the call ends for the application at once,
    /// but the BYE waits for the ACK, or for Timer L if none comes (RFC 3261
    /// §15); the 2xx is retransmitted meanwhile.
    ///
    /// An outgoing call ([`invite`](Self::invite)) not answered yet is
    /// cancelled (RFC 3261 §9.1): at once if a provisional response came,
    /// else as soon as one comes (or Timer B ends the INVITE); the
    /// application gets [`EndReason::LocalHangup`] at once. A 2xx that races
    /// the CANCEL gets ACK and BYE. An answered outgoing call gets a BYE.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) {
        if let Some(id) = self.outgoing.remove(&call) {
            let proceeding = self
                .invites
                .get(&id)
                .map(|tx| tx.machine.state() == invite_client::State::Proceeding);
            match proceeding {
                Some(true) => self.send_cancel(now, id),
                Some(false) => {
                    if let Some(tx) = self.invites.get_mut(&id) {
                        tx.cancel = Cancel::Wanted;
                    }
                }
                None => {}
            }
            self.events.push_back(Event::Ended {
                call,
                reason: EndReason::LocalHangup,
            });
            self.drain_finished(now);
            return;
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.state {
            CallState::Early => {
                self.final_to_invite(now, call, 480, &[], None);
                self.end_call(now, call, EndReason::LocalHangup);
            }
            CallState::Answered => {
                c.state = CallState::HungUp;
                self.events.push_back(Event::Ended {
                    call,
                    reason: EndReason::LocalHangup,
                });
            }
            CallState::Confirmed => {
                self.stop_2xx(now, call);
                self.send_bye(now, call);
                self.end_call(now, call, EndReason::LocalHangup);
            }
            CallState::HungUp => {}
        }
        self.drain_finished(now);
    }

    /// Answers a pending re-INVITE with 200 and `sdp`.
    pub fn accept_reinvite(&mut self, now: Instant, call: CallHandle, sdp: Bytes) {
        self.finish_reinvite(now, call, 200, Some(sdp));
    }

    /// Rejects a pending re-INVITE with a 300-699 status (e.g. 488); the call
    /// goes on unchanged.
    pub fn reject_reinvite(&mut self, now: Instant, call: CallHandle, code: u16) {
        if (300..=699).contains(&code) {
            self.finish_reinvite(now, call, code, None);
        }
    }

    /// Answers a REGISTER of [`Event::Register`] with `response`, a whole
    /// response to it (as [`crate::registrar::RegisterHandler`] builds it:
    /// Via, To tag and the rest already right). The status line gives the
    /// code; a final response ends the wait, and the transaction repeats it
    /// to retransmissions. Returns false, sending nothing, when the REGISTER
    /// is no longer waiting (answered, or given up on after 64·T1) or
    /// `response` is not a response.
    pub fn respond_register(&mut self, now: Instant, id: RegisterId, response: Bytes) -> bool {
        let Some(code) = status_code(&response) else {
            return false;
        };
        let Some((_, tx)) = self.servers.get_mut(&id.0) else {
            return false;
        };
        if tx.app_deadline.is_none() {
            return false;
        }
        let ServerMachine::NonInvite(m) = &mut tx.machine else {
            return false;
        };
        if !m.respond(now, code, response) {
            return false;
        }
        if code >= 200 {
            tx.app_deadline = None;
        }
        self.flush_server(now, id.0);
        self.drain_finished(now);
        true
    }

    /// Sends an OPTIONS to `target` (a registered contact: the Request-URI
    /// and To) at `peer` (where its REGISTER came from), through a
    /// non-INVITE client transaction, retransmitted over UDP. Its final
    /// response comes back as [`Event::RequestAnswered`], silence as
    /// [`Event::RequestTimedOut`] after 64·T1. A `target` that is not a
    /// plain URI is replaced by `sip:<peer address>`.
    pub fn send_options(&mut self, now: Instant, peer: Peer, target: &str) -> RequestId {
        let plain = !target.is_empty()
            && target
                .bytes()
                .all(|b| b > b' ' && b < 0x7f && b != b'<' && b != b'>' && b != b'"');
        let target = if plain {
            target.to_owned()
        } else {
            format!("sip:{}", peer.remote)
        };
        let branch = self.random_branch();
        let tag = self.random_tag();
        let call_id = format!("{:016x}@hotline", self.rng_u64());
        let request = format!(
            "OPTIONS {target} SIP/2.0\r\n\
             Via: SIP/2.0/{} {};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:hotline@{}>;tag={tag}\r\n\
             To: <{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Accept: application/sdp\r\n\
             User-Agent: {}\r\n\
             Content-Length: 0\r\n\r\n",
            peer.transport.via_token(),
            peer.local,
            fmt_hostport(peer.local, peer.transport),
            self.config.user_agent,
        );
        let id = self.start_client(
            now,
            peer,
            Bytes::from(branch),
            Method::Options,
            Bytes::from(request),
            true,
        );
        RequestId(id)
    }

    /// Places an outgoing call (the operator leg of a B2BUA): sends an INVITE
    /// with `call.sdp` as the offer through an INVITE client transaction
    /// (retransmitted on Timer A over UDP; Timer B gives up after 64·T1) and
    /// returns the call's handle.
    ///
    /// Then, as events: [`Event::Progress`] for the first provisional
    /// response of each code (101-199), [`Event::Answered`] for the first 2xx
    /// (the endpoint ACKs it and every retransmission of it), or
    /// [`Event::Ended`] with [`EndReason::Failed`] (300-699, ACKed by the
    /// transaction; 408 on Timer B; 503 on a transport error). Once
    /// answered, the call behaves like an incoming one: [`hangup`](Self::hangup)
    /// sends BYE, and the peer's BYE, re-INVITE, INFO and OPTIONS are handled
    /// as for incoming calls. See the module documentation, "Outgoing calls".
    pub fn invite(&mut self, now: Instant, call: OutgoingCall) -> CallHandle {
        let tag = self.random_tag();
        let call_id = if call.neutral {
            format!("{:016x}{:016x}", self.rng_u64(), self.rng_u64())
        } else {
            format!("{:016x}@hotline", self.rng_u64())
        };
        let handle = CallHandle(self.next_id());
        self.send_invite(now, handle, call, call_id, tag, 1, None);
        handle
    }

    /// Sends the INVITE of outgoing call `handle` (CSeq `seq`, with `authorization` as
    /// a header line if given) in a new client transaction.
    #[allow(clippy::too_many_arguments)]
    fn send_invite(
        &mut self,
        now: Instant,
        handle: CallHandle,
        call: OutgoingCall,
        call_id: String,
        tag: String,
        seq: u32,
        authorization: Option<(&str, String)>,
    ) {
        let peer = call.peer;
        let target = plain_uri(&call.request_uri).unwrap_or_else(|| format!("sip:{}", peer.remote));
        let to = plain_uri(&call.to).unwrap_or_else(|| target.clone());
        let branch = self.random_branch();
        let user = if call.from_user.is_empty() {
            "hotline".to_owned()
        } else {
            escape_user(&call.from_user)
        };
        let contact_user = if call.neutral {
            user.as_str()
        } else {
            "hotline"
        };
        let display = if call.from_display.is_empty() {
            String::new()
        } else {
            format!("{} ", quoted_string(&call.from_display))
        };
        let mut text = format!(
            "INVITE {target} SIP/2.0\r\n\
             Via: {via}\r\n\
             Max-Forwards: 70\r\n\
             From: {display}<sip:{user}@{local}>;tag={tag}\r\n\
             To: <{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} INVITE\r\n\
             Contact: <sip:{contact_user}@{contact}>\r\n\
             Allow: {allow}\r\n\
             User-Agent: {ua}\r\n",
            via = via_value(peer, &branch),
            local = peer.local,
            contact = fmt_hostport(peer.local, peer.transport),
            allow = self.allow(),
            ua = self.config.user_agent,
        );
        if let Some((name, value)) = &authorization {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &call.extra_headers {
            if extra_header_allowed(name) {
                let value = value.replace(['\r', '\n'], " ");
                text.push_str(&format!("{name}: {}\r\n", value.trim()));
            }
        }
        if !call.sdp.is_empty() {
            text.push_str("Content-Type: application/sdp\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n", call.sdp.len()));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&call.sdp);
        let bytes = Bytes::from(bytes);
        let id = self.next_id();
        let Ok(invite) = Message::parse_datagram(bytes.clone()) else {
            // Cannot happen with the escaping above; the call fails rather
            // than sending what we could not read ourselves.
            self.outgoing.remove(&handle);
            self.events.push_back(Event::Ended {
                call: handle,
                reason: EndReason::Failed(500),
            });
            return;
        };
        // One answer to a challenge: the retried INVITE keeps no credentials.
        let retry = (authorization.is_none() && call.auth.is_some())
            .then(|| Box::new(AuthRetry { call, call_id, tag }));
        let reliable = peer.transport == Transport::Tcp;
        let machine = InviteClient::new(now, &self.config.timers, reliable, bytes);
        let branch = Bytes::from(branch);
        self.invite_branches.insert(branch.clone(), id);
        self.invites.insert(
            id,
            OutgoingTx {
                machine,
                peer,
                branch,
                call: handle,
                invite,
                reported: Vec::new(),
                acks: Vec::new(),
                cancel: Cancel::No,
                give_up: None,
                retry,
            },
        );
        self.outgoing.insert(handle, id);
        self.flush_outgoing(now, id);
        self.drain_finished(now);
    }

    /// A 401/407 to INVITE `id` whose call has credentials not used yet: the INVITE
    /// again with the answer (RFC 3261 §22.2). Returns false if it cannot be answered.
    fn answer_challenge(&mut self, now: Instant, id: u64, code: u16, msg: &Message) -> bool {
        let live = self.outgoing_live(id);
        let Some(tx) = self.invites.get_mut(&id) else {
            return false;
        };
        if !live || tx.cancel != Cancel::No {
            return false;
        }
        let (challenge_header, answer_header) = if code == 401 {
            ("www-authenticate", "Authorization")
        } else {
            ("proxy-authenticate", "Proxy-Authorization")
        };
        // The first challenge we can answer (MD5 or SHA-256, qop auth or none).
        let Some(challenge) = msg
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case(challenge_header.as_bytes()))
            .find_map(|(_, v)| crate::digest::Challenge::parse(v).ok())
        else {
            return false;
        };
        let Some(retry) = tx.retry.take() else {
            return false;
        };
        let Some(auth) = retry.call.auth.clone() else {
            return false;
        };
        let handle = tx.call;
        let seq = tx.invite.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        let uri = String::from_utf8_lossy(tx.invite.request_uri()).into_owned();
        let ha1 = crate::digest::ha1(
            challenge.algorithm,
            &auth.username,
            &challenge.realm,
            &auth.password,
        );
        let cnonce = format!("{:016x}", self.rng_u64());
        let credentials = challenge.answer(
            &auth.username,
            &ha1,
            &Method::Invite,
            &uri,
            &cnonce,
            crate::digest::NonceCount::new(1),
        );
        // The ACK of the challenge goes first (§17.1.1.3), then the new INVITE.
        self.flush_outgoing(now, id);
        self.outgoing.remove(&handle);
        self.send_invite(
            now,
            handle,
            retry.call,
            retry.call_id,
            retry.tag,
            seq,
            Some((answer_header, credentials.to_string())),
        );
        true
    }

    /// The transport could not reach `peer` (its TCP connection failed or
    /// closed, or an ICMP error came back for UDP): every client transaction
    /// to it ends (RFC 3261 §17.1.4). An outgoing call not answered yet ends
    /// with [`EndReason::Failed`]`(503)`; an OPTIONS of
    /// [`send_options`](Self::send_options) is reported as
    /// [`Event::RequestTimedOut`]. Transactions match by transport, remote
    /// address and connection id.
    pub fn transport_error(&mut self, now: Instant, peer: Peer) {
        let same = |p: &Peer| {
            p.transport == peer.transport
                && p.remote == peer.remote
                && p.connection == peer.connection
        };
        let mut invites: Vec<u64> = self
            .invites
            .iter()
            .filter(|(_, tx)| same(&tx.peer))
            .map(|(&id, _)| id)
            .collect();
        invites.sort_unstable();
        for id in invites {
            if let Some(tx) = self.invites.get_mut(&id) {
                tx.machine.transport_error();
            }
            self.flush_outgoing(now, id);
        }
        let mut clients: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, tx)| same(&tx.peer))
            .map(|(&id, _)| id)
            .collect();
        clients.sort_unstable();
        for id in clients {
            if let Some(tx) = self.clients.get_mut(&id) {
                tx.machine.transport_error();
            }
            self.flush_client(now, id);
        }
        self.drain_finished(now);
    }

    /// A response to our INVITE `id` (matched by branch, CSeq method INVITE).
    fn invite_response(&mut self, now: Instant, id: u64, code: u16, msg: &Message) {
        let ua = self.config.user_agent.clone();
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        // §17.1.1.3: the ACK of a 300-699 is part of the INVITE transaction.
        let ack = (300..=699).contains(&code).then(|| {
            let to = msg
                .header(HeaderName::To)
                .or_else(|| tx.invite.header(HeaderName::To))
                .unwrap_or_default();
            copy_invite(&tx.invite, "ACK", to, &ua)
        });
        if tx.machine.handle_response(now, code, ack) {
            match code {
                100..=199 => self.outgoing_provisional(now, id, code, msg),
                200..=299 => self.outgoing_2xx(now, id, msg),
                401 | 407 if self.answer_challenge(now, id, code, msg) => {}
                _ => self.outgoing_failed(id, code),
            }
        }
        self.flush_outgoing(now, id);
    }

    /// Whether the application still holds the call of INVITE `id`, not
    /// answered yet.
    fn outgoing_live(&self, id: u64) -> bool {
        self.invites
            .get(&id)
            .is_some_and(|tx| self.outgoing.get(&tx.call) == Some(&id))
    }

    fn outgoing_provisional(&mut self, now: Instant, id: u64, code: u16, msg: &Message) {
        let live = self.outgoing_live(id);
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        if live && code != 100 && !tx.reported.contains(&code) {
            tx.reported.push(code);
            self.events.push_back(Event::Progress {
                call: tx.call,
                status: code,
                sdp: sdp_body(msg),
            });
        }
        if tx.cancel == Cancel::Wanted {
            // §9.1: the CANCEL waited for this provisional response.
            self.send_cancel(now, id);
        }
    }

    /// A 2xx to our INVITE (§13.2.2.4): ACKed every time, with the same ACK
    /// for the same To tag. The first one answers the call if the
    /// application still holds it; any other dialog (another fork, or a 2xx
    /// that raced our CANCEL) gets ACK and BYE.
    fn outgoing_2xx(&mut self, now: Instant, id: u64, msg: &Message) {
        let live = self.outgoing_live(id);
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        let tag = msg
            .to_header()
            .ok()
            .and_then(|t| t.tag())
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        let peer = tx.peer;
        if let Some((_, ack)) = tx.acks.iter().find(|(t, _)| *t == tag) {
            let payload = ack.clone();
            self.transmits.push_back(Transmit { peer, payload });
            return;
        }
        let Some(mut dialog) = Dialog::from_2xx(&tx.invite, msg) else {
            self.refused(peer, None, "unusable 2xx to our INVITE".into());
            return;
        };
        let call = tx.call;
        let invite_seq = dialog.local_seq;
        tx.cancel = Cancel::No;
        tx.give_up = None;
        let ua = self.config.user_agent.clone();
        let branch = self.random_branch();
        let ack = dialog.ack(invite_seq, &via_value(peer, &branch), &ua);
        if let Some(tx) = self.invites.get_mut(&id) {
            tx.acks.push((tag, ack.clone()));
        }
        self.transmits.push_back(Transmit { peer, payload: ack });
        if live {
            self.outgoing.remove(&call);
            self.dialogs
                .insert((dialog.call_id.clone(), dialog.local_tag.clone()), call);
            self.calls.insert(
                call,
                Call {
                    state: CallState::Confirmed,
                    dialog,
                    peer,
                    invite_tx: None,
                    outgoing: true,
                    reinvite_tx: None,
                },
            );
            self.events.push_back(Event::Answered {
                call,
                sdp: sdp_body(msg),
            });
        } else {
            let branch = self.random_branch();
            let bye = dialog.request("BYE", &via_value(peer, &branch), &ua, &[], None);
            self.start_client(now, peer, Bytes::from(branch), Method::Bye, bye, false);
        }
    }

    /// A 300-699 to our INVITE (the transaction has ACKed it).
    fn outgoing_failed(&mut self, id: u64, code: u16) {
        let live = self.outgoing_live(id);
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        tx.cancel = Cancel::No;
        tx.give_up = None;
        let call = tx.call;
        if live {
            self.outgoing.remove(&call);
            self.events.push_back(Event::Ended {
                call,
                reason: EndReason::Failed(code),
            });
        }
    }

    /// Sends the CANCEL of INVITE `id` (§9.1): a non-INVITE transaction of
    /// its own with the INVITE's branch, and a deadline of 64·T1 for the
    /// INVITE's final response.
    fn send_cancel(&mut self, now: Instant, id: u64) {
        let ua = self.config.user_agent.clone();
        let timeout = self.config.timers.timeout();
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        if tx.cancel == Cancel::Sent {
            return;
        }
        let to = tx.invite.header(HeaderName::To).unwrap_or_default();
        let cancel = copy_invite(&tx.invite, "CANCEL", to, &ua);
        tx.cancel = Cancel::Sent;
        tx.give_up = Some(now + timeout);
        let (peer, branch) = (tx.peer, tx.branch.clone());
        self.start_client(now, peer, branch, Method::Cancel, cancel, false);
        self.arm(Owner::Invite(id));
    }

    /// Moves an INVITE client machine's output to the endpoint's queues; a
    /// timeout or transport error fails the call if the application still
    /// holds it.
    fn flush_outgoing(&mut self, _now: Instant, id: u64) {
        let live = self.outgoing_live(id);
        let Some(tx) = self.invites.get_mut(&id) else {
            return;
        };
        let peer = tx.peer;
        while let Some(payload) = tx.machine.poll_transmit() {
            self.transmits.push_back(Transmit { peer, payload });
        }
        let mut failed = None;
        while let Some(e) = tx.machine.poll_event() {
            match e {
                invite_client::Event::Timeout => failed = Some(408),
                invite_client::Event::TransportError => failed = Some(503),
                invite_client::Event::Terminated => {}
            }
        }
        let call = tx.call;
        if let (Some(code), true) = (failed, live) {
            self.outgoing.remove(&call);
            self.events.push_back(Event::Ended {
                call,
                reason: EndReason::Failed(code),
            });
        }
        self.arm(Owner::Invite(id));
    }

    /// Forgets INVITE client transaction `id` (terminated, or given up on
    /// after its CANCEL).
    fn forget_outgoing_tx(&mut self, id: u64) {
        if let Some(tx) = self.invites.remove(&id) {
            self.invite_branches.remove(&tx.branch);
            if self.outgoing.get(&tx.call) == Some(&id) {
                // Not reached: a transaction ends with the call already
                // answered, failed or hung up. Never leave a handle behind.
                self.outgoing.remove(&tx.call);
                self.events.push_back(Event::Ended {
                    call: tx.call,
                    reason: EndReason::Failed(408),
                });
            }
        }
        self.deadlines.remove(&Owner::Invite(id));
    }

    fn finish_reinvite(&mut self, now: Instant, call: CallHandle, code: u16, sdp: Option<Bytes>) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(key) = c.reinvite_tx.clone() else {
            return;
        };
        let Some(&id) = self.server_keys.get(&key) else {
            return;
        };
        let (_, tx) = &self.servers[&id];
        let ServerMachine::Invite(m) = &tx.machine else {
            return;
        };
        if m.state() != invite_server::State::Proceeding {
            // Already answered; the ACK or Timer L clears `reinvite_tx`.
            return;
        }
        // §12.2.2: a re-INVITE is a target refresh; the Contact counts once accepted.
        let target = tx
            .request
            .contacts()
            .next()
            .and_then(Result::ok)
            .map(|contact| Bytes::copy_from_slice(contact.uri.raw));
        let allow = self.allow();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let extra: Vec<(&str, String)> = if code < 300 {
            if let Some(target) = target {
                c.dialog.remote_target = target;
            }
            let contact = format!(
                "<sip:hotline@{}>",
                fmt_hostport(c.peer.local, c.peer.transport)
            );
            vec![("Contact", contact), ("Allow", allow.to_owned())]
        } else {
            c.reinvite_tx = None;
            vec![]
        };
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.respond_full(now, id, code, &extra, sdp);
        self.drain_finished(now);
    }

    fn final_to_invite(
        &mut self,
        now: Instant,
        call: CallHandle,
        code: u16,
        extra: &[(&str, &str)],
        sdp: Option<Bytes>,
    ) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if let Some(&id) = c.invite_tx.as_ref().and_then(|k| self.server_keys.get(k)) {
            self.respond_full(now, id, code, extra, sdp);
        }
    }

    fn send_bye(&mut self, now: Instant, call: CallHandle) {
        let branch = self.random_branch();
        let ua = self.config.user_agent.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let via = via_value(c.peer, &branch);
        let bye = c.dialog.request("BYE", &via, &ua, &[], None);
        let peer = c.peer;
        self.start_client(now, peer, Bytes::from(branch), Method::Bye, bye, false);
    }

    /// Starts a non-INVITE client transaction for `request` (whose top Via
    /// has `branch`); `notify`: the application hears of its outcome. Returns
    /// its id.
    fn start_client(
        &mut self,
        now: Instant,
        peer: Peer,
        branch: Bytes,
        method: Method,
        request: Bytes,
        notify: bool,
    ) -> u64 {
        let reliable = peer.transport == Transport::Tcp;
        let machine = NonInviteClient::new(now, &self.config.timers, reliable, request);
        let id = self.next_id();
        self.client_branches.insert(branch.clone(), id);
        self.clients.insert(
            id,
            ClientTx {
                machine,
                peer,
                branch,
                method,
                notify: notify.then_some(RequestId(id)),
            },
        );
        self.flush_client(now, id);
        id
    }

    /// Ends the call and tells the application why.
    fn end_call(&mut self, now: Instant, call: CallHandle, reason: EndReason) {
        if self.forget_call(now, call) {
            self.events.push_back(Event::Ended { call, reason });
        }
    }

    /// Forgets the call and its dialog; an INVITE or re-INVITE of the call
    /// still waiting for the application gets 487 (§15.1.2). Returns whether
    /// the call existed.
    fn forget_call(&mut self, now: Instant, call: CallHandle) -> bool {
        for id in self.invite_ids(call) {
            let proceeding = matches!(
                &self.servers[&id].1.machine,
                ServerMachine::Invite(m) if m.state() == invite_server::State::Proceeding
            );
            if proceeding {
                self.respond_simple(now, id, 487, &[]);
            }
        }
        let Some(c) = self.calls.remove(&call) else {
            return false;
        };
        self.dialogs
            .remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
        true
    }

    fn respond_simple(&mut self, now: Instant, id: u64, code: u16, extra: &[(&str, &str)]) {
        self.respond_full(now, id, code, extra, None);
    }

    fn respond_full(
        &mut self,
        now: Instant,
        id: u64,
        code: u16,
        extra: &[(&str, &str)],
        sdp: Option<Bytes>,
    ) {
        let Some((_, tx)) = self.servers.get_mut(&id) else {
            return;
        };
        let mut b = response(&tx.request, code)
            .source(tx.peer.remote)
            .to_tag(&tx.tag);
        if matches!(tx.machine, ServerMachine::Invite(_)) && (101..=299).contains(&code) {
            // §12.1.1: a response that creates a dialog carries the request's
            // Record-Route, in order, so the caller learns the route set.
            for route in tx.request.values(HeaderName::RecordRoute) {
                // Folding inside a value becomes plain white space.
                let route: Vec<u8> = route
                    .iter()
                    .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                    .collect();
                b = b.header("Record-Route", route);
            }
        }
        b = b.header("Server", &self.config.user_agent);
        for (name, value) in extra {
            b = b.header(name, value);
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let bytes = b.build();
        match &mut tx.machine {
            ServerMachine::Invite(m) => {
                m.respond(now, code, bytes);
            }
            ServerMachine::NonInvite(m) => {
                m.respond(now, code, bytes);
            }
        }
        self.flush_server(now, id);
    }

    /// Sends a response outside any transaction (to unparseable requests).
    fn send_response(&mut self, peer: Peer, req: &Message, payload: Bytes) {
        let peer = response_peer(peer, req);
        self.transmits.push_back(Transmit { peer, payload });
    }

    /// Moves a server machine's output to the endpoint's queues.
    fn flush_server(&mut self, now: Instant, id: u64) {
        let Some((key, tx)) = self.servers.get_mut(&id) else {
            return;
        };
        let peer = response_peer(tx.peer, &tx.request);
        let call = tx.call;
        let mut no_ack = false;
        match &mut tx.machine {
            ServerMachine::Invite(m) => {
                while let Some(payload) = m.poll_transmit() {
                    self.transmits.push_back(Transmit { peer, payload });
                }
                while let Some(e) = m.poll_event() {
                    if e == invite_server::Event::NoAck {
                        no_ack = true;
                    }
                }
            }
            ServerMachine::NonInvite(m) => {
                while let Some(payload) = m.poll_transmit() {
                    self.transmits.push_back(Transmit { peer, payload });
                }
                while m.poll_event().is_some() {}
            }
        }
        let key = no_ack.then(|| key.clone());
        self.arm(Owner::Server(id));
        if let (Some(key), Some(call)) = (key, call) {
            self.no_ack(now, call, &key);
        }
    }

    /// §13.3.1.4: Timer L fired without the ACK of the 2xx to INVITE `key`: the
    /// dialog is confirmed but the session ends, with a BYE.
    fn no_ack(&mut self, now: Instant, call: CallHandle, key: &TxKey) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let reinvite = c.reinvite_tx.as_ref() == Some(key);
        if reinvite {
            c.reinvite_tx = None;
        }
        match c.state {
            CallState::Answered => {
                self.send_bye(now, call);
                self.end_call(now, call, EndReason::NoAck);
            }
            CallState::HungUp => {
                self.send_bye(now, call);
                self.forget_call(now, call);
            }
            CallState::Confirmed if reinvite => {
                self.send_bye(now, call);
                self.end_call(now, call, EndReason::NoAck);
            }
            CallState::Early | CallState::Confirmed => {}
        }
    }

    fn flush_client(&mut self, _now: Instant, id: u64) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        while let Some(payload) = tx.machine.poll_transmit() {
            self.transmits.push_back(Transmit {
                peer: tx.peer,
                payload,
            });
        }
        while let Some(e) = tx.machine.poll_event() {
            let failed = matches!(
                e,
                non_invite_client::Event::Timeout | non_invite_client::Event::TransportError
            );
            if let (true, Some(request)) = (failed, tx.notify) {
                self.events
                    .push_back(Event::RequestTimedOut { id: request });
            }
        }
        self.arm(Owner::Client(id));
    }

    /// Records the machine's next deadline; the heap gets an entry only when
    /// it changes.
    fn arm(&mut self, owner: Owner) {
        let (at, done) = match &owner {
            Owner::Server(id) => self.servers.get(id).map_or((None, false), |(_, tx)| {
                let (at, done) = match &tx.machine {
                    ServerMachine::Invite(m) => (m.poll_timeout(), m.is_terminated()),
                    ServerMachine::NonInvite(m) => (m.poll_timeout(), m.is_terminated()),
                };
                let at = match (at, tx.app_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (at, done)
            }),
            Owner::Client(id) => self.clients.get(id).map_or((None, false), |tx| {
                (tx.machine.poll_timeout(), tx.machine.is_terminated())
            }),
            Owner::Invite(id) => self.invites.get(id).map_or((None, false), |tx| {
                let at = match (tx.machine.poll_timeout(), tx.give_up) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (at, tx.machine.is_terminated())
            }),
        };
        if done {
            // Forgotten by drain_finished, without scanning every transaction.
            self.finished.push(owner.clone());
        }
        match at {
            Some(at) => {
                if self.deadlines.insert(owner.clone(), at) != Some(at) {
                    self.timers.push(Reverse((at, owner)));
                }
            }
            None => {
                self.deadlines.remove(&owner);
            }
        }
        self.prune_timers();
    }

    /// Drops stale entries from the top of the heap, so that its top is the
    /// next real deadline.
    fn prune_timers(&mut self) {
        while let Some(Reverse((at, owner))) = self.timers.peek() {
            if self.deadlines.get(owner) == Some(at) {
                break;
            }
            self.timers.pop();
        }
    }

    /// Forgets the transactions that terminated since the last call (collected
    /// by `arm`, so the cost does not grow with the number of live transactions).
    fn drain_finished(&mut self, _now: Instant) {
        for owner in std::mem::take(&mut self.finished) {
            match owner {
                Owner::Server(id) => {
                    let terminated =
                        self.servers
                            .get(&id)
                            .is_some_and(|(_, tx)| match &tx.machine {
                                ServerMachine::Invite(m) => m.is_terminated(),
                                ServerMachine::NonInvite(m) => m.is_terminated(),
                            });
                    if !terminated {
                        continue;
                    }
                    if let Some((key, tx)) = self.servers.remove(&id) {
                        self.server_keys.remove(&key);
                        if let Some(k) = tx.merge_key {
                            self.merged.remove(&k);
                        }
                    }
                    self.deadlines.remove(&Owner::Server(id));
                }
                Owner::Client(id) => {
                    if !self
                        .clients
                        .get(&id)
                        .is_some_and(|tx| tx.machine.is_terminated())
                    {
                        continue;
                    }
                    if let Some(tx) = self.clients.remove(&id) {
                        self.client_branches.remove(&tx.branch);
                    }
                    self.deadlines.remove(&Owner::Client(id));
                }
                Owner::Invite(id) => {
                    if self
                        .invites
                        .get(&id)
                        .is_some_and(|tx| tx.machine.is_terminated())
                    {
                        self.forget_outgoing_tx(id);
                    }
                }
            }
        }
        self.prune_timers();
    }

    fn tx_key(msg: &Message, method: &Method) -> Option<TxKey> {
        let via = msg.top_via().ok()?;
        let method = if *method == Method::Ack {
            Method::Invite
        } else {
            method.clone()
        };
        if via.is_rfc3261_branch() {
            let sent_by = match via.port {
                Some(p) => format!("{}:{p}", String::from_utf8_lossy(host_bytes(&via).as_ref())),
                None => String::from_utf8_lossy(host_bytes(&via).as_ref()).into_owned(),
            };
            Some(TxKey::Rfc3261 {
                branch: Bytes::copy_from_slice(via.branch()?),
                sent_by: Bytes::from(sent_by),
                method,
            })
        } else {
            Some(TxKey::Rfc2543 {
                call_id: Bytes::copy_from_slice(msg.call_id().ok()?),
                cseq: msg.cseq().ok()?.seq,
                from_tag: Bytes::copy_from_slice(msg.from_header().ok()?.tag().unwrap_or_default()),
                via: Bytes::copy_from_slice(via.raw),
                method,
            })
        }
    }

    fn refused(&mut self, peer: Peer, status: Option<u16>, reason: String) {
        self.events.push_back(Event::Refused {
            peer,
            status,
            reason,
        });
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// SplitMix64.
    fn rng_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn rng_u32(&mut self) -> u32 {
        (self.rng_u64() >> 32) as u32
    }

    fn random_tag(&mut self) -> String {
        format!("{:016x}", self.rng_u64())
    }

    fn random_branch(&mut self) -> String {
        format!("z9hG4bK{:016x}", self.rng_u64())
    }
}

fn host_bytes<'a>(via: &crate::header::Via<'a>) -> std::borrow::Cow<'a, [u8]> {
    match via.host {
        crate::uri::Host::Name(n) => std::borrow::Cow::Owned(n.to_ascii_lowercase()),
        crate::uri::Host::V4(a) => std::borrow::Cow::Owned(a.to_string().into_bytes()),
        crate::uri::Host::V6(a) => std::borrow::Cow::Owned(format!("[{a}]").into_bytes()),
    }
}

/// The Via value of a request we send to `peer`.
fn via_value(peer: Peer, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {};branch={branch};rport",
        peer.transport.via_token(),
        peer.local
    )
}

/// `s` if it is a plain SIP, SIPS or tel URI (no name-addr, no white space).
fn plain_uri(s: &str) -> Option<String> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b < 0x7f && b != b'<' && b != b'>' && b != b'"');
    (plain && Uri::parse(s.as_bytes()).is_ok_and(|u| u.scheme != Scheme::Other))
        .then(|| s.to_owned())
}

/// A user part with every character outside `unreserved` and
/// `user-unreserved` (RFC 3261 §25.1) escaped as `%XX`.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` as a quoted string (RFC 3261 §25.1): `"` and `\\` escaped, control
/// characters (CR and LF included) replaced by spaces.
fn quoted_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether an application header may go into our INVITE: a token name, not
/// one the endpoint writes itself.
fn extra_header_allowed(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(is_token_char)
        && !matches!(
            HeaderName::classify(name.as_bytes()),
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::Contact
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Allow
                | HeaderName::UserAgent
        )
}

/// A request that copies our INVITE's Request-URI, Via, From, Call-ID, CSeq
/// number and Route, with `to` as To: the CANCEL (§9.1, with the INVITE's
/// To) and the ACK of a 300-699 response (§17.1.1.3, with the response's To).
fn copy_invite(invite: &Message, method: &str, to: &[u8], user_agent: &str) -> Bytes {
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
    let mut out = Vec::with_capacity(invite.as_bytes().len().min(1024));
    let mut put = |parts: &[&[u8]]| parts.iter().for_each(|p| out.extend_from_slice(p));
    put(&[
        method.as_bytes(),
        b" ",
        invite.request_uri(),
        b" SIP/2.0\r\n",
    ]);
    let via = invite.header(HeaderName::Via).unwrap_or_default();
    put(&[b"Via: ", via, b"\r\nMax-Forwards: 70\r\n"]);
    let from = invite.header(HeaderName::From).unwrap_or_default();
    put(&[b"From: ", from, b"\r\nTo: ", to, b"\r\n"]);
    let call_id = invite.call_id().unwrap_or_default();
    put(&[b"Call-ID: ", call_id, b"\r\n"]);
    put(&[format!("CSeq: {seq} {method}\r\n").as_bytes()]);
    for route in invite.values(HeaderName::Route) {
        put(&[b"Route: ", route, b"\r\n"]);
    }
    put(&[b"User-Agent: ", user_agent.as_bytes(), b"\r\n"]);
    put(&[b"Content-Length: 0\r\n\r\n"]);
    Bytes::from(out)
}

/// The body of a response if it is SDP (a body without Content-Type counts).
fn sdp_body(msg: &Message) -> Option<Bytes> {
    let sdp = msg
        .content_type()
        .is_none_or(|t| t.eq_ignore_ascii_case(b"application/sdp"));
    (sdp && !msg.body().is_empty()).then(|| msg.body_bytes())
}

/// Where a response goes: the same connection for TCP, §18.2.2 / RFC 3581 for UDP.
fn response_peer(peer: Peer, req: &Message) -> Peer {
    match peer.transport {
        Transport::Tcp => peer,
        Transport::Udp => Peer {
            remote: udp_response_destination(req, peer.remote),
            ..peer
        },
    }
}

fn fmt_hostport(addr: SocketAddr, transport: Transport) -> String {
    let t = match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
    };
    format!("{addr}{t}")
}

/// Whether the request's Accept (RFC 3261 §20.1) allows an SDP body in our
/// response: no Accept means application/sdp (§13.2.1); an empty one allows
/// nothing.
fn accepts_sdp(msg: &Message) -> bool {
    if msg.count(HeaderName::Accept) == 0 {
        return true;
    }
    msg.values(HeaderName::Accept).any(|range| {
        let media = range.split(|&c| c == b';').next().unwrap_or_default();
        let media = crate::message::trim_lws(media);
        [&b"application/sdp"[..], b"application/*", b"*/*"]
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m))
    })
}

/// The status code of a response's status line (`SIP/2.0 NNN ...`), 100-699.
fn status_code(response: &[u8]) -> Option<u16> {
    let rest = response.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=699).contains(&code).then_some(code)
}

fn warning(err: &ParseError) -> String {
    let text = err.to_string().replace(['"', '\\'], "'");
    format!("399 hotline \"{text}\"")
}
