//! The bodies of the `fuzz/` targets, kept here so that `cargo test` replays
//! the seeds and every crash the fuzzer found on stable, without cargo-fuzz.
//!
//! Both must never panic on any input; a panic (or a failed assertion below)
//! is a finding. Besides "no panic", they check properties that hold for every
//! input:
//! - [`parse()`]: a datagram's message is a prefix of the datagram; the stream
//!   framer yields the same messages and errors however the bytes are split;
//!   the 200 and the dialog's BYE built for a request that passed
//!   `validate_request` parse again.
//! - [`endpoint()`]: everything the endpoint sends parses with our parser.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::dialog::Dialog;
use hotline_sip::endpoint::{self, Endpoint, Event, Peer, Transport};
use hotline_sip::message::{Framed, HeaderName, Message, ParseError, StreamFramer};
use hotline_sip::response::response;
use hotline_sip::sdp;
use hotline_sip::uri::Uri;

/// Every header name the crate classifies, for the accessors that take one.
const HEADER_NAMES: [HeaderName; 31] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::Contact,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::ContentEncoding,
    HeaderName::Expires,
    HeaderName::Route,
    HeaderName::RecordRoute,
    HeaderName::Authorization,
    HeaderName::ProxyAuthorization,
    HeaderName::WwwAuthenticate,
    HeaderName::ProxyAuthenticate,
    HeaderName::Allow,
    HeaderName::Supported,
    HeaderName::Require,
    HeaderName::ProxyRequire,
    HeaderName::Accept,
    HeaderName::Subject,
    HeaderName::Event,
    HeaderName::UserAgent,
    HeaderName::Server,
    HeaderName::RetryAfter,
    HeaderName::Warning,
    HeaderName::Unsupported,
    HeaderName::Reason,
    HeaderName::Other,
];

/// The framer's size cap in [`parse`]: small, so that `TooLarge` is reached.
const FRAMER_MAX: usize = 2048;

/// The `parse` target: `Message::parse_datagram` and `parse_head_lenient`,
/// every typed accessor on what they return, the response and dialog builders,
/// SDP answering of the body, and `StreamFramer` fed in one piece and in
/// pseudo-random chunks (derived from the input, so a crash reproduces).
pub fn parse(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(msg) = Message::parse_datagram(bytes.clone()) {
        assert!(
            data.starts_with(msg.as_bytes()),
            "message is not a prefix of its datagram"
        );
        exercise(&msg, true);
    }
    // Only ever used to address a 400 or 505: no property beyond "no panic".
    if let Ok(msg) = Message::parse_head_lenient(bytes) {
        exercise(&msg, false);
    }
    let whole = frame(data, &mut std::iter::repeat(data.len().max(1)), true);
    let chunked = frame(data, &mut chunk_sizes(data), false);
    assert_eq!(
        whole, chunked,
        "stream framing depends on how the bytes were split"
    );
}

/// What the framer yielded, for comparing two splits of one stream. Keep-alive
/// pings are left out: CRLFCRLF CRLFCRLF in one read is one ping, in two reads
/// two, and either answer is fine.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Message(Vec<u8>),
    Error(ParseError),
}

fn frame(data: &[u8], sizes: &mut dyn Iterator<Item = usize>, check: bool) -> Vec<Frame> {
    let mut framer = StreamFramer::new(FRAMER_MAX);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        framer.extend(chunk);
        loop {
            match framer.next() {
                Ok(None) => break,
                Ok(Some(Framed::Ping)) => {}
                Ok(Some(Framed::Message(m))) => {
                    if check {
                        exercise(&m, true);
                    }
                    out.push(Frame::Message(m.as_bytes().to_vec()));
                }
                Err(e) => {
                    // The connection would be closed here.
                    out.push(Frame::Error(e));
                    return out;
                }
            }
        }
    }
    out
}

/// Chunk sizes from an xorshift generator seeded with a hash of the input.
fn chunk_sizes(data: &[u8]) -> impl Iterator<Item = usize> {
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let cap = (data.len() / 3).max(1) as u64;
    std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Some((state % cap) as usize + 1)
    })
}

/// Calls every accessor of a parsed message. With `strict` (the message came
/// from `parse_datagram` or the framer, as the endpoint's messages do), a
/// request that passes `validate_request` must yield a 200 and a dialog BYE
/// that parse again.
fn exercise(msg: &Message, strict: bool) {
    let _ = (
        msg.start_line(),
        msg.method(),
        msg.is_request(),
        msg.status(),
    );
    let _ = (
        msg.request_uri(),
        msg.reason(),
        msg.body(),
        msg.body_bytes(),
        msg.content_length(),
    );
    for name in HEADER_NAMES {
        let _ = (msg.header(name), msg.count(name));
        let _ = msg.raw_lines(name).count();
        let _ = msg.values(name).count();
    }
    for name in ["via", "X-Unknown", "P-Asserted-Identity", "l", ""] {
        let _ = msg.header_by_name(name);
    }
    for (name, _) in msg.headers() {
        let _ = msg.header_by_name(&String::from_utf8_lossy(name));
    }
    if let Ok(via) = msg.top_via() {
        let _ = (
            via.branch(),
            via.is_rfc3261_branch(),
            via.rport(),
            via.received(),
        );
        let _ = (via.is_reliable(), via.host.ip(), via.params.iter().count());
    }
    let _ = msg.vias().count();
    for name_addr in [msg.from_header(), msg.to_header()].into_iter().flatten() {
        let _ = (name_addr.tag(), name_addr.params.iter().count());
        exercise_uri(&name_addr.uri);
    }
    let _ = (msg.call_id(), msg.cseq(), msg.max_forwards(), msg.expires());
    let _ = (
        msg.contacts().count(),
        msg.record_routes().count(),
        msg.content_type(),
    );
    if let Ok(uri) = Uri::parse(msg.request_uri()) {
        exercise_uri(&uri);
    }
    let _ = sdp::answer(msg.body(), &local_media());
    if !msg.is_request() {
        let _ = msg.validate_request();
        return;
    }
    let source: SocketAddr = ([192, 0, 2, 7], 5062).into();
    let built = response(msg, 200).to_tag("fuzz1").source(source).build();
    let valid = strict && msg.validate_request().is_ok();
    if valid {
        let reparsed = Message::parse_datagram(built);
        assert!(
            reparsed.is_ok(),
            "our 200 to a valid request does not parse: {reparsed:?}"
        );
    }
    if let Some(mut dialog) = Dialog::from_invite(msg, "fuzz2".into(), 1) {
        let bye = dialog.request(
            "BYE",
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz",
            "fuzz",
            &[],
            None,
        );
        if valid {
            let reparsed = Message::parse_datagram(bye);
            assert!(
                reparsed.is_ok(),
                "our BYE in a valid INVITE's dialog does not parse: {reparsed:?}"
            );
        }
    }
}

fn exercise_uri(uri: &Uri<'_>) {
    let _ = (
        uri.param("transport"),
        uri.param("user"),
        uri.user_unescaped(),
    );
    let _ = uri.host.map(|h| h.ip());
}

fn local_media() -> sdp::LocalMedia {
    sdp::LocalMedia {
        address: [192, 0, 2, 1].into(),
        port: 40000,
        codecs: vec![sdp::Codec::Pcmu, sdp::Codec::Pcma],
        session_id: 1,
        session_version: 1,
        direction: sdp::Direction::SendRecv,
    }
}

/// One step of the `endpoint` target. The input is a sequence of these, each
/// an opcode byte and its operands (see [`Op::decode`]); [`Op::encode`] writes
/// them back, for seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A datagram from UDP peer 0 (IPv4) or 1 (IPv6).
    Datagram {
        /// Which peer.
        peer: u8,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Bytes on the TCP connection, through a `StreamFramer`.
    Stream(Vec<u8>),
    /// Advance the fake clock by this many 20 ms steps, then `handle_timeout`.
    Advance(u8),
    /// Advance the fake clock to the endpoint's next deadline.
    NextDeadline,
    /// An application decision on one of the calls reported so far.
    App {
        /// What (see [`App`]).
        action: App,
        /// Which call, modulo the number of calls seen.
        call: u8,
    },
}

/// What the application does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// `answer` with an SDP answer.
    Answer,
    /// `reject` with 486.
    Reject,
    /// `ringing`.
    Ringing,
    /// `provisional(183)`.
    Progress,
    /// `hangup`.
    Hangup,
    /// `accept_reinvite`.
    AcceptReinvite,
    /// `reject_reinvite` with 488.
    RejectReinvite,
    /// `set_accepting(false)` then `(true)` around nothing: a drain toggle.
    ToggleAccepting,
}

const APPS: [App; 8] = [
    App::Answer,
    App::Reject,
    App::Ringing,
    App::Progress,
    App::Hangup,
    App::AcceptReinvite,
    App::RejectReinvite,
    App::ToggleAccepting,
];

impl Op {
    /// Reads the next step from `data`, advancing it. Lengths are 2 bytes big
    /// endian, cut to what is left.
    pub fn decode(data: &mut &[u8]) -> Option<Self> {
        let (&op, rest) = data.split_first()?;
        *data = rest;
        Some(match op % 6 {
            0 | 1 => Op::Datagram {
                peer: op % 2,
                bytes: take_len_prefixed(data),
            },
            2 => Op::Stream(take_len_prefixed(data)),
            3 => Op::Advance(take_byte(data)),
            4 => Op::NextDeadline,
            _ => {
                let action = APPS[usize::from(take_byte(data)) % APPS.len()];
                Op::App {
                    action,
                    call: take_byte(data),
                }
            }
        })
    }

    /// Writes the step as [`Op::decode`] reads it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Datagram { peer, bytes } => {
                out.push(peer % 2);
                put_len_prefixed(out, bytes);
            }
            Op::Stream(bytes) => {
                out.push(2);
                put_len_prefixed(out, bytes);
            }
            Op::Advance(n) => out.extend_from_slice(&[3, *n]),
            Op::NextDeadline => out.push(4),
            Op::App { action, call } => {
                let a = APPS.iter().position(|x| x == action).unwrap_or(0) as u8;
                out.extend_from_slice(&[5, a, *call]);
            }
        }
    }
}

fn take_byte(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((&b, rest)) => {
            *data = rest;
            b
        }
        None => 0,
    }
}

fn take_len_prefixed(data: &mut &[u8]) -> Vec<u8> {
    let len = usize::from(u16::from_be_bytes([take_byte(data), take_byte(data)]));
    let (bytes, rest) = data.split_at(len.min(data.len()));
    *data = rest;
    bytes.to_vec()
}

fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Encodes a sequence of steps.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        op.encode(&mut out);
    }
    out
}

/// The peers of the `endpoint` target: UDP over IPv4, UDP over IPv6, TCP.
pub fn peers() -> [Peer; 3] {
    let v4_local: SocketAddr = ([192, 0, 2, 1], 5060).into();
    let v6_local: SocketAddr = "[2001:db8::1]:5060".parse().unwrap_or(v4_local);
    [
        Peer {
            transport: Transport::Udp,
            remote: ([203, 0, 113, 45], 5060).into(),
            local: v4_local,
            connection: None,
        },
        Peer {
            transport: Transport::Udp,
            remote: "[2001:db8::45]:5070".parse().unwrap_or(v4_local),
            local: v6_local,
            connection: None,
        },
        Peer {
            transport: Transport::Tcp,
            remote: ([203, 0, 113, 46], 40312).into(),
            local: v4_local,
            connection: Some(7),
        },
    ]
}

/// The endpoint as the fuzz target drives it, with a fake clock; also used to
/// build seeds (which need the To tag the endpoint picks).
#[derive(Debug)]
pub struct Driver {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The fake clock.
    pub now: Instant,
    /// Every call the endpoint reported, in order.
    pub calls: Vec<endpoint::CallHandle>,
    /// Every datagram or stream write the endpoint produced, in order.
    pub sent: Vec<Bytes>,
    framer: StreamFramer,
    keep_sent: bool,
}

impl Driver {
    /// A fresh endpoint with the default configuration. `keep_sent` keeps
    /// every transmit in [`Driver::sent`] (seed building); the fuzz target
    /// only checks them.
    pub fn new(keep_sent: bool) -> Self {
        Self {
            endpoint: Endpoint::new(endpoint::Config::default()),
            now: Instant::now(),
            calls: Vec::new(),
            sent: Vec::new(),
            framer: StreamFramer::new(64 * 1024),
            keep_sent,
        }
    }

    /// Performs one step and drains every output.
    pub fn step(&mut self, op: &Op) {
        let [udp4, udp6, tcp] = peers();
        match op {
            Op::Datagram { peer, bytes } => {
                let peer = if *peer == 0 { udp4 } else { udp6 };
                self.endpoint
                    .handle_datagram(self.now, peer, Bytes::copy_from_slice(bytes));
            }
            Op::Stream(bytes) => {
                self.framer.extend(bytes);
                loop {
                    match self.framer.next() {
                        Ok(Some(Framed::Message(m))) => {
                            self.endpoint.handle_message(self.now, tcp, m)
                        }
                        Ok(Some(Framed::Ping)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            // The shell closes the connection; a new one starts clean.
                            self.framer = StreamFramer::new(64 * 1024);
                            break;
                        }
                    }
                }
            }
            Op::Advance(steps) => {
                self.now += Duration::from_millis(20 * u64::from(*steps));
                self.endpoint.handle_timeout(self.now);
            }
            Op::NextDeadline => {
                if let Some(at) = self.endpoint.poll_timeout() {
                    self.now = self.now.max(at);
                    self.endpoint.handle_timeout(self.now);
                }
            }
            Op::App { action, call } => {
                if !self.calls.is_empty() {
                    let call = self.calls[usize::from(*call) % self.calls.len()];
                    self.app(*action, call);
                }
            }
        }
        self.drain();
    }

    fn app(&mut self, action: App, call: endpoint::CallHandle) {
        let (ep, now) = (&mut self.endpoint, self.now);
        match action {
            App::Answer => ep.answer(now, call, answer_sdp()),
            App::Reject => ep.reject(now, call, 486, &[]),
            App::Ringing => ep.ringing(now, call),
            App::Progress => ep.provisional(now, call, 183),
            App::Hangup => ep.hangup(now, call),
            App::AcceptReinvite => ep.accept_reinvite(now, call, answer_sdp()),
            App::RejectReinvite => ep.reject_reinvite(now, call, 488),
            App::ToggleAccepting => {
                ep.set_accepting(false);
                ep.set_accepting(true);
            }
        }
    }

    /// Drains transmits (each must parse) and events (calls are remembered).
    pub fn drain(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            let parsed = Message::parse_datagram(t.payload.clone());
            assert!(
                parsed.is_ok(),
                "the endpoint sent a message our parser rejects ({parsed:?}): {:?}",
                String::from_utf8_lossy(&t.payload)
            );
            if self.keep_sent {
                self.sent.push(t.payload);
            }
        }
        while let Some(event) = self.endpoint.poll_event() {
            if let Event::IncomingCall(c) = event {
                self.calls.push(c.call);
            }
        }
    }

    /// Runs the clock out: every deadline in turn, at most `limit` of them.
    /// Returns whether no deadline is left.
    pub fn run_out(&mut self, limit: usize) -> bool {
        for _ in 0..limit {
            if self.endpoint.poll_timeout().is_none() {
                return true;
            }
            self.step(&Op::NextDeadline);
        }
        self.endpoint.poll_timeout().is_none()
    }
}

/// An SDP answer for the application to send.
fn answer_sdp() -> Bytes {
    Bytes::from_static(
        b"v=0\r\no=hotline 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    )
}

/// The `endpoint` target: decodes steps from `data`, performs them, then runs
/// the clock out. Never panics on any input unless the endpoint does (or sends
/// something our parser rejects).
pub fn endpoint(data: &[u8]) {
    let mut driver = Driver::new(false);
    let mut rest = data;
    while let Some(op) = Op::decode(&mut rest) {
        driver.step(&op);
    }
    // Every machine ends within 64·T1 plus a few retransmissions.
    driver.run_out(10_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        let ops = vec![
            Op::Datagram {
                peer: 1,
                bytes: b"OPTIONS".to_vec(),
            },
            Op::Stream(b"x".to_vec()),
            Op::Advance(9),
            Op::NextDeadline,
            Op::App {
                action: App::Hangup,
                call: 3,
            },
        ];
        let bytes = encode(&ops);
        let mut rest = &bytes[..];
        let mut back = Vec::new();
        while let Some(op) = Op::decode(&mut rest) {
            back.push(op);
        }
        assert_eq!(back, ops);
    }

    #[test]
    fn targets_take_the_fixtures() {
        parse(&crate::fixtures::invite());
        parse(&crate::fixtures::options());
        endpoint(&encode(&[Op::Datagram {
            peer: 0,
            bytes: crate::fixtures::options().to_vec(),
        }]));
    }

    #[test]
    fn targets_take_nothing_and_noise() {
        parse(b"");
        endpoint(b"");
        parse(b"\r\n\r\n\r\n");
        endpoint(&[0xff; 64]);
    }
}
