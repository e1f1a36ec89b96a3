//! hotline-sip: the SIP protocol core of the hotline, sans-IO.
//!
//! Nothing here touches a socket, a task or a clock: callers pass bytes and `now`
//! in, and take datagrams to send, events and the next deadline out.
//!
//! # Layout
//! - [`message`]: zero-copy, lazy SIP message parsing and framing (RFC 3261 §7, §18.3).
//! - [`header`]: typed views of the headers we use (Via, name-addr, CSeq, ...).
//! - [`uri`]: SIP, SIPS and tel URIs.
//! - [`response`]: building responses and in-dialog requests from a request.
//! - [`transaction`]: the four RFC 3261 §17 transaction machines and their timers.
//! - [`sdp`]: SDP offer/answer (RFC 3264) for G.711 and telephone-event.
//! - [`endpoint`]: the user agent that ties transactions and dialogs together: the
//!   server for incoming calls, the client for the calls it places.
//! - [`digest`]: digest authentication (RFC 7616, RFC 8760): challenges, credentials, nonces.
//! - [`registrar`]: REGISTER (RFC 3261 §10.3): bindings, lockout, keep-alives.

pub mod dialog;
pub mod digest;
pub mod endpoint;
pub mod header;
pub mod message;
pub mod registrar;
pub mod response;
pub mod sdp;
pub mod transaction;
pub mod uri;
