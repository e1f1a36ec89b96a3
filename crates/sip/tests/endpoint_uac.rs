//! The UAC side of the endpoint: the hotline calls an operator's softphone
//! ([`Endpoint::invite`]). The test plays the phone by hand: it reads what
//! the endpoint sends, and answers with responses and requests built here,
//! on a fake clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::endpoint::{
    self, CallHandle, EndReason, Endpoint, Event, OutgoingCall, Peer, Transport,
};
use hotline_sip::message::{HeaderName, Message, Method};
use hotline_sip::response::response;
use hotline_sip::transaction;

/// Where the endpoint listens.
const HOTLINE: &str = "203.0.113.5:5060";
/// Where the operator's phone registered from.
const PHONE: &str = "192.0.2.7:5070";
/// The phone's registered Contact: the Request-URI of our INVITE.
const CONTACT: &str = "sip:op1@192.0.2.7:5070";
/// The phone's Contact in its 2xx: the dialog's remote target.
const DIALOG_CONTACT: &str = "sip:op1@192.0.2.7:5070;line=x1";
/// The phone's To tag.
const OP_TAG: &str = "op1tag";

const OFFER: &str = "v=0\r\n\
o=hotline 1 1 IN IP4 203.0.113.5\r\n\
s=hotline\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

const ANSWER: &str = "v=0\r\n\
o=op1 7 7 IN IP4 192.0.2.7\r\n\
s=-\r\n\
c=IN IP4 192.0.2.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

/// The phone's re-INVITE offer putting the call on hold.
const HOLD: &str = "v=0\r\n\
o=op1 7 8 IN IP4 192.0.2.7\r\n\
s=-\r\n\
c=IN IP4 192.0.2.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendonly\r\n";

const HELD: &str = "v=0\r\n\
o=hotline 1 2 IN IP4 203.0.113.5\r\n\
s=hotline\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=recvonly\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn t1() -> Duration {
    transaction::Config::default().t1
}

fn t1s(n: u32) -> Duration {
    t1() * n
}

/// The endpoint, a clock, and what the endpoint sent and reported.
struct Phone {
    epoch: Instant,
    now: Instant,
    ep: Endpoint,
    transport: Transport,
    /// Everything the endpoint sent, with when, in order.
    sent: Vec<(Duration, Message)>,
    /// How many of `sent` the test has looked at.
    seen: usize,
    events: VecDeque<Event>,
    /// Every event, for "exactly once" checks.
    log: Vec<Event>,
    /// The phone's CSeq for requests it sends in the dialog.
    cseq: u32,
}

impl Phone {
    fn new(transport: Transport) -> Self {
        Self::with_config(transport, endpoint::Config::default())
    }

    fn with_config(transport: Transport, config: endpoint::Config) -> Self {
        let epoch = Instant::now();
        Self {
            epoch,
            now: epoch,
            ep: Endpoint::new(config),
            transport,
            sent: Vec::new(),
            seen: 0,
            events: VecDeque::new(),
            log: Vec::new(),
            cseq: 100,
        }
    }

    fn udp() -> Self {
        Self::new(Transport::Udp)
    }

    fn peer(&self) -> Peer {
        Peer {
            transport: self.transport,
            remote: addr(PHONE),
            local: addr(HOTLINE),
            connection: (self.transport == Transport::Tcp).then_some(9),
        }
    }

    fn outgoing(&self) -> OutgoingCall {
        OutgoingCall {
            peer: self.peer(),
            request_uri: CONTACT.into(),
            to: "sip:op1@hotline.local".into(),
            from_user: "hotline".into(),
            from_display: "QU 4821".into(),
            sdp: Bytes::from_static(OFFER.as_bytes()),
            extra_headers: vec![("X-Queue".into(), "general".into())],
            auth: None,
            neutral: false,
        }
    }

    /// Places the call; returns it and the INVITE as sent.
    fn call(&mut self) -> (CallHandle, Message) {
        let out = self.outgoing();
        let call = self.ep.invite(self.now, out);
        self.pump();
        let invite = self.next_sent();
        assert_eq!(invite.method(), Some(&Method::Invite));
        (call, invite)
    }

    /// Drains the endpoint's output.
    fn pump(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            assert_eq!(t.peer.remote, addr(PHONE), "everything goes to the phone");
            assert_eq!(t.peer.transport, self.transport);
            if self.transport == Transport::Tcp {
                assert_eq!(t.peer.connection, Some(9), "on the phone's connection");
            }
            let m = Message::parse_datagram(t.payload).expect("we send what parses");
            self.sent.push((self.now - self.epoch, m));
        }
        while let Some(e) = self.ep.poll_event() {
            self.log.push(e.clone());
            self.events.push_back(e);
        }
    }

    /// The phone sends `bytes` to the endpoint.
    fn deliver(&mut self, bytes: Bytes) {
        let peer = self.peer();
        match self.transport {
            Transport::Udp => self.ep.handle_datagram(self.now, peer, bytes),
            Transport::Tcp => {
                let m = Message::parse_datagram(bytes).unwrap();
                self.ep.handle_message(self.now, peer, m);
            }
        }
        self.pump();
    }

    /// Runs the endpoint's timers up to `now + d`.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(at) = self.ep.poll_timeout().filter(|&at| at <= until) {
            self.now = self.now.max(at);
            self.ep.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    /// The next message sent that the test has not looked at.
    fn next_sent(&mut self) -> Message {
        let m = self
            .sent
            .get(self.seen)
            .unwrap_or_else(|| panic!("nothing more sent after {} messages", self.seen))
            .1
            .clone();
        self.seen += 1;
        m
    }

    /// Messages sent that the test has not looked at yet (and now has).
    fn new_sent(&mut self) -> Vec<Message> {
        let out = self.sent[self.seen..]
            .iter()
            .map(|(_, m)| m.clone())
            .collect();
        self.seen = self.sent.len();
        out
    }

    fn event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The phone answers `invite` with `code` (its To tag `tag`); 2xx carry
    /// Contact, Record-Route and [`ANSWER`].
    fn respond(&mut self, invite: &Message, code: u16, tag: &str) {
        let bytes = build_response(invite, code, tag);
        self.deliver(bytes);
    }

    /// The phone answers 200 to the endpoint's non-INVITE request `req`.
    fn ok(&mut self, req: &Message) {
        let bytes = response(req, 200).to_tag(OP_TAG).build();
        self.deliver(bytes);
    }

    /// A call through to 200 OK and our ACK.
    fn answered(&mut self) -> (CallHandle, Message, Message) {
        let (call, invite) = self.call();
        self.respond(&invite, 180, OP_TAG);
        self.respond(&invite, 200, OP_TAG);
        let events = self.take_events();
        assert!(
            matches!(events.last(), Some(Event::Answered { call: c, .. }) if *c == call),
            "{events:?}"
        );
        let ack = self.next_sent();
        assert_eq!(ack.method(), Some(&Method::Ack));
        (call, invite, ack)
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// A request from the phone in the dialog of our `invite`.
    fn in_dialog(&mut self, invite: &Message, method: &str, body: Option<(&str, &str)>) -> Message {
        self.cseq += 1;
        let seq = self.cseq;
        self.in_dialog_seq(invite, method, seq, body)
    }

    fn in_dialog_seq(
        &mut self,
        invite: &Message,
        method: &str,
        seq: u32,
        body: Option<(&str, &str)>,
    ) -> Message {
        let from = hdr(invite, HeaderName::From);
        let call_id = hdr(invite, HeaderName::CallId);
        let t = if self.transport == Transport::Tcp {
            "TCP"
        } else {
            "UDP"
        };
        let (ctype, body) = match body {
            Some((ctype, body)) => (format!("Content-Type: {ctype}\r\n"), body),
            None => (String::new(), ""),
        };
        let text = format!(
            "{method} sip:hotline@{HOTLINE} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {PHONE};branch=z9hG4bKop{method}{seq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:op1@hotline.local>;tag={OP_TAG}\r\n\
             To: {from}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} {method}\r\n\
             Contact: <{DIALOG_CONTACT}>\r\n\
             {ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let bytes = Bytes::from(text);
        let m = Message::parse_datagram(bytes.clone()).unwrap();
        m.validate_request().unwrap();
        self.deliver(bytes);
        m
    }

    fn count_ended(&self, call: CallHandle) -> usize {
        self.log
            .iter()
            .filter(|e| matches!(e, Event::Ended { call: c, .. } if *c == call))
            .count()
    }
}

fn build_response(invite: &Message, code: u16, tag: &str) -> Bytes {
    let mut b = response(invite, code).to_tag(tag);
    if (101..=299).contains(&code) {
        b = b
            .header("Contact", format!("<{DIALOG_CONTACT}>"))
            .header("Record-Route", "<sip:p1.example;lr>")
            .header("Record-Route", "<sip:p2.example;lr>, <sip:p3.example;lr>");
    }
    if (200..=299).contains(&code) {
        b = b.body("application/sdp", Bytes::from_static(ANSWER.as_bytes()));
    }
    b.build()
}

fn hdr(m: &Message, name: HeaderName) -> String {
    String::from_utf8_lossy(m.header(name).expect("header present")).into_owned()
}

fn branch(m: &Message) -> String {
    String::from_utf8_lossy(m.top_via().unwrap().branch().unwrap()).into_owned()
}

fn to_tag(m: &Message) -> Option<String> {
    let to = m.to_header().unwrap();
    to.tag().map(|t| String::from_utf8_lossy(t).into_owned())
}

fn from_tag(m: &Message) -> String {
    String::from_utf8_lossy(m.from_header().unwrap().tag().unwrap()).into_owned()
}

fn routes(m: &Message) -> Vec<String> {
    m.values(HeaderName::Route)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn cseq(m: &Message) -> (u32, String) {
    let c = m.cseq().unwrap();
    (c.seq, c.method.to_string())
}

/// The route set of the dialog: the 2xx's Record-Route reversed.
const ROUTES: [&str; 3] = [
    "<sip:p3.example;lr>",
    "<sip:p2.example;lr>",
    "<sip:p1.example;lr>",
];

#[test]
fn the_invite_is_well_formed() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    invite.validate_request().unwrap();
    assert_eq!(invite.request_uri(), CONTACT.as_bytes());
    let from = invite.from_header().unwrap();
    assert_eq!(from.display, Some(&b"\"QU 4821\""[..]));
    assert_eq!(from.uri.raw, format!("sip:hotline@{HOTLINE}").as_bytes());
    assert_eq!(from_tag(&invite).len(), 16);
    assert_eq!(hdr(&invite, HeaderName::To), "<sip:op1@hotline.local>");
    assert_eq!(to_tag(&invite), None);
    assert_eq!(cseq(&invite), (1, "INVITE".into()));
    assert!(branch(&invite).starts_with("z9hG4bK"));
    let via = invite.top_via().unwrap();
    assert_eq!(via.transport, b"UDP");
    assert_eq!(via.rport(), Some(None));
    assert_eq!(
        hdr(&invite, HeaderName::Contact),
        format!("<sip:hotline@{HOTLINE}>")
    );
    assert_eq!(invite.max_forwards().unwrap(), Some(70));
    assert_eq!(hdr(&invite, HeaderName::Allow), endpoint::ALLOW);
    assert_eq!(hdr(&invite, HeaderName::UserAgent), "hotline");
    assert_eq!(invite.count(HeaderName::Supported), 0);
    assert_eq!(invite.header_by_name("X-Queue"), Some(&b"general"[..]));
    assert_eq!(invite.content_type(), Some(&b"application/sdp"[..]));
    assert_eq!(invite.body(), OFFER.as_bytes());
    assert!(p.events.is_empty(), "nothing to report yet");
    assert_eq!(p.ep.outgoing_calls(), 1);
    assert_eq!(
        p.ep.active_calls(),
        0,
        "operator legs are not incoming calls"
    );

    // A second call: fresh Call-ID, tag and branch.
    let other = p.ep.invite(p.now, p.outgoing());
    assert_ne!(other, call);
    p.pump();
    let second = p.next_sent();
    assert_ne!(
        hdr(&second, HeaderName::CallId),
        hdr(&invite, HeaderName::CallId)
    );
    assert_ne!(from_tag(&second), from_tag(&invite));
    assert_ne!(branch(&second), branch(&invite));
}

#[test]
fn display_names_user_parts_and_headers_are_escaped_or_dropped() {
    let mut p = Phone::udp();
    let mut out = p.outgoing();
    out.from_display = "Ana \"la jefa\" \\ QU\r\n 7".into();
    out.from_user = "cola general".into();
    out.extra_headers = vec![
        ("Via".into(), "SIP/2.0/UDP evil.example".into()),
        ("bad name".into(), "x".into()),
        ("Subject".into(), "línea\r\nInjected: yes".into()),
    ];
    p.ep.invite(p.now, out);
    p.pump();
    let invite = p.next_sent();
    invite.validate_request().unwrap();
    let from = invite.from_header().unwrap();
    assert_eq!(
        from.display,
        Some(&br#""Ana \"la jefa\" \\ QU   7""#[..]),
        "quotes and backslashes escaped, CR LF blanked"
    );
    assert_eq!(
        from.uri.raw,
        format!("sip:cola%20general@{HOTLINE}").as_bytes()
    );
    assert_eq!(invite.count(HeaderName::Via), 1);
    assert_eq!(invite.header_by_name("Injected"), None);
    assert_eq!(
        invite.header(HeaderName::Subject),
        Some("línea  Injected: yes".as_bytes())
    );
}

#[test]
fn ringing_then_answer_is_acked_through_the_route_set() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();

    p.respond(&invite, 100, OP_TAG);
    assert!(p.events.is_empty(), "100 Trying is not reported");
    p.respond(&invite, 180, OP_TAG);
    assert!(matches!(
        p.event(),
        Some(Event::Progress { call: c, status: 180, sdp: None }) if c == call
    ));
    p.respond(&invite, 180, OP_TAG);
    assert!(p.events.is_empty(), "the first 180 only");
    let early = response(&invite, 183)
        .to_tag(OP_TAG)
        .body("application/sdp", Bytes::from_static(ANSWER.as_bytes()))
        .build();
    p.deliver(early);
    match p.event() {
        Some(Event::Progress {
            call: c,
            status: 183,
            sdp: Some(sdp),
        }) if c == call => assert_eq!(sdp, ANSWER.as_bytes()),
        other => panic!("expected Progress 183, got {other:?}"),
    }
    assert!(p.new_sent().is_empty(), "nothing to send for provisionals");

    p.respond(&invite, 200, OP_TAG);
    match p.event() {
        Some(Event::Answered {
            call: c,
            sdp: Some(sdp),
        }) if c == call => assert_eq!(sdp, ANSWER.as_bytes()),
        other => panic!("expected Answered, got {other:?}"),
    }
    let ack = p.next_sent();
    ack.validate_request().unwrap();
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.request_uri(),
        DIALOG_CONTACT.as_bytes(),
        "the 2xx's Contact"
    );
    assert_eq!(to_tag(&ack).as_deref(), Some(OP_TAG));
    assert_eq!(from_tag(&ack), from_tag(&invite));
    assert_eq!(
        hdr(&ack, HeaderName::CallId),
        hdr(&invite, HeaderName::CallId)
    );
    assert_eq!(cseq(&ack), (1, "ACK".into()));
    assert_eq!(routes(&ack), ROUTES, "Record-Route reversed");
    assert_ne!(branch(&ack), branch(&invite), "a transaction of its own");
    assert!(ack.body().is_empty());
    assert_eq!(p.ep.outgoing_calls(), 1);
    assert_eq!(p.ep.active_calls(), 0);

    // Retransmissions of the 2xx get the same ACK again, and no event.
    for _ in 0..2 {
        p.advance(t1());
        p.respond(&invite, 200, OP_TAG);
        let again = p.new_sent();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].as_bytes(), ack.as_bytes());
    }
    assert!(p.events.is_empty());

    // After Timer M the INVITE transaction is gone; the call goes on.
    p.advance(t1s(64));
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.outgoing_calls(), 1);
    assert!(p.events.is_empty());
}

#[test]
fn busy_and_decline_are_acked_in_the_transaction_and_fail_the_call() {
    for code in [486, 603] {
        let mut p = Phone::udp();
        let (call, invite) = p.call();
        p.respond(&invite, 180, OP_TAG);
        p.take_events();
        p.respond(&invite, code, OP_TAG);
        let events = p.take_events();
        assert!(
            matches!(
                events[..],
                [Event::Ended { call: c, reason: EndReason::Failed(s) }] if c == call && s == code
            ),
            "{events:?}"
        );
        let ack = p.next_sent();
        ack.validate_request().unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(branch(&ack), branch(&invite), "same branch (§17.1.1.3)");
        assert_eq!(ack.request_uri(), invite.request_uri());
        assert_eq!(to_tag(&ack).as_deref(), Some(OP_TAG));
        assert_eq!(cseq(&ack), (1, "ACK".into()));
        assert_eq!(hdr(&ack, HeaderName::From), hdr(&invite, HeaderName::From));

        // The retransmitted final response is ACKed again, not reported.
        p.respond(&invite, code, OP_TAG);
        let again = p.new_sent();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].as_bytes(), ack.as_bytes());
        assert_eq!(p.count_ended(call), 1);
        assert_eq!(p.ep.outgoing_calls(), 0);

        // Timer D, then nothing is left.
        p.advance(Duration::from_secs(32));
        assert_eq!(p.ep.transactions(), 0);
        assert_eq!(p.ep.poll_timeout(), None);
    }
}

#[test]
fn unanswered_invite_is_retransmitted_then_fails_with_408() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.advance(t1s(64) - Duration::from_millis(1));
    assert!(p.log.is_empty(), "still calling");
    p.advance(Duration::from_millis(1));
    assert_eq!(p.now - p.epoch, t1s(64));
    let invites: Vec<&(Duration, Message)> = p
        .sent
        .iter()
        .filter(|(_, m)| m.method() == Some(&Method::Invite))
        .collect();
    let times: Vec<Duration> = invites.iter().map(|(t, _)| *t).collect();
    // Timer A: T1, doubling, until Timer B at 64·T1.
    let expected: Vec<Duration> = [0, 1, 3, 7, 15, 31, 63].iter().map(|&n| t1s(n)).collect();
    assert_eq!(times, expected);
    assert!(
        invites
            .iter()
            .all(|(_, m)| m.as_bytes() == invite.as_bytes())
    );
    let ended: Vec<&Event> = p.log.iter().collect();
    assert_eq!(ended.len(), 1);
    assert!(matches!(
        ended[0],
        Event::Ended { call: c, reason: EndReason::Failed(408) } if *c == call
    ));
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.outgoing_calls(), 0);
}

/// Checks a CANCEL against the INVITE it cancels (RFC 3261 §9.1).
fn assert_cancels(cancel: &Message, invite: &Message) {
    cancel.validate_request().unwrap();
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(cancel.request_uri(), invite.request_uri());
    assert_eq!(branch(cancel), branch(invite), "the INVITE's branch");
    assert_eq!(cancel.count(HeaderName::Via), 1);
    assert_eq!(hdr(cancel, HeaderName::Via), hdr(invite, HeaderName::Via));
    assert_eq!(hdr(cancel, HeaderName::From), hdr(invite, HeaderName::From));
    assert_eq!(hdr(cancel, HeaderName::To), hdr(invite, HeaderName::To));
    assert_eq!(
        hdr(cancel, HeaderName::CallId),
        hdr(invite, HeaderName::CallId)
    );
    assert_eq!(cseq(cancel), (1, "CANCEL".into()));
    assert_eq!(cancel.max_forwards().unwrap(), Some(70));
    assert!(cancel.body().is_empty());
}

#[test]
fn hangup_while_ringing_cancels_and_the_487_is_acked() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.respond(&invite, 180, OP_TAG);
    p.take_events();

    p.ep.hangup(p.now, call);
    p.pump();
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::LocalHangup }] if c == call
    ));
    assert_eq!(p.ep.outgoing_calls(), 0);
    let cancel = p.next_sent();
    assert_cancels(&cancel, &invite);
    assert_eq!(p.ep.pending_requests(), 2, "the CANCEL and the INVITE");

    // Over UDP the CANCEL is retransmitted until its 200.
    p.advance(t1());
    let again = p.new_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].as_bytes(), cancel.as_bytes());
    p.ok(&cancel);
    assert!(p.new_sent().is_empty());

    p.respond(&invite, 487, OP_TAG);
    let ack = p.next_sent();
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(branch(&ack), branch(&invite));
    assert_eq!(cseq(&ack), (1, "ACK".into()));
    assert_eq!(to_tag(&ack).as_deref(), Some(OP_TAG));
    assert_eq!(p.ep.pending_requests(), 0);

    p.advance(Duration::from_secs(40));
    assert_eq!(p.count_ended(call), 1, "Ended exactly once");
    assert_eq!(p.log.len(), 2, "Progress and Ended: {:?}", p.log);
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.poll_timeout(), None);
}

#[test]
fn hangup_before_any_provisional_waits_for_one_to_cancel() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.ep.hangup(p.now, call);
    p.pump();
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::LocalHangup }] if c == call
    ));
    assert!(p.new_sent().is_empty(), "no CANCEL before a provisional");
    assert_eq!(p.ep.pending_requests(), 1);

    // The INVITE is still retransmitted meanwhile.
    p.advance(t1s(2));
    let sent = p.new_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method(), Some(&Method::Invite));

    p.respond(&invite, 100, OP_TAG);
    let cancel = p.next_sent();
    assert_cancels(&cancel, &invite);
    assert!(p.events.is_empty(), "no Progress for a call hung up");
    p.respond(&invite, 180, OP_TAG);
    assert!(p.new_sent().is_empty(), "one CANCEL");
    p.ok(&cancel);
    p.respond(&invite, 487, OP_TAG);
    assert_eq!(p.next_sent().method(), Some(&Method::Ack));
    p.advance(Duration::from_secs(40));
    assert_eq!(p.count_ended(call), 1);
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.pending_requests(), 0);
}

#[test]
fn hangup_before_any_response_ends_with_timer_b() {
    let mut p = Phone::udp();
    let (call, _invite) = p.call();
    p.advance(t1s(4));
    p.ep.hangup(p.now, call);
    p.pump();
    p.advance(t1s(64));
    assert_eq!(p.count_ended(call), 1);
    assert_eq!(p.log.len(), 1, "{:?}", p.log);
    assert!(
        p.new_sent()
            .iter()
            .all(|m| m.method() == Some(&Method::Invite)),
        "never a CANCEL"
    );
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.pending_requests(), 0);
}

#[test]
fn no_final_response_after_the_cancel_gives_up_after_64_t1() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.respond(&invite, 180, OP_TAG);
    p.ep.hangup(p.now, call);
    p.pump();
    let cancel = p.next_sent();
    p.ok(&cancel);
    assert_eq!(p.ep.pending_requests(), 1, "the INVITE waits for its 487");
    p.advance(t1s(64));
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.pending_requests(), 0);
    assert_eq!(p.count_ended(call), 1);
    assert_eq!(p.ep.poll_timeout(), None);
}

#[test]
fn a_2xx_racing_the_cancel_is_acked_and_hung_up() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.respond(&invite, 180, OP_TAG);
    p.ep.hangup(p.now, call);
    p.pump();
    let cancel = p.next_sent();
    assert_eq!(cancel.method(), Some(&Method::Cancel));

    // The phone answered before it saw the CANCEL.
    p.respond(&invite, 200, OP_TAG);
    let sent = p.new_sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (ack, bye) = (&sent[0], &sent[1]);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.request_uri(), DIALOG_CONTACT.as_bytes());
    assert_eq!(cseq(ack), (1, "ACK".into()));
    bye.validate_request().unwrap();
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.request_uri(), DIALOG_CONTACT.as_bytes());
    assert_eq!(to_tag(bye).as_deref(), Some(OP_TAG));
    assert_eq!(from_tag(bye), from_tag(&invite));
    assert_eq!(cseq(bye), (2, "BYE".into()));
    assert_eq!(routes(bye), ROUTES);
    assert!(
        p.log.iter().all(|e| !matches!(e, Event::Answered { .. })),
        "the application hung up: no Answered"
    );
    // The CANCEL's 200 (too late), the BYE's 200; a 2xx again gets the ACK only.
    p.ok(&cancel);
    p.ok(bye);
    p.respond(&invite, 200, OP_TAG);
    let again = p.new_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].as_bytes(), ack.as_bytes());
    assert_eq!(p.ep.pending_requests(), 0);
    p.advance(t1s(64) + Duration::from_secs(5));
    assert_eq!(p.count_ended(call), 1);
    assert_eq!(p.ep.transactions(), 0);
}

#[test]
fn a_second_fork_answering_gets_ack_and_bye() {
    let mut p = Phone::udp();
    let (call, invite, ack) = p.answered();
    p.respond(&invite, 200, "fork2");
    let sent = p.new_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method(), Some(&Method::Ack));
    assert_eq!(to_tag(&sent[0]).as_deref(), Some("fork2"));
    assert_ne!(sent[0].as_bytes(), ack.as_bytes());
    assert_eq!(sent[1].method(), Some(&Method::Bye));
    assert_eq!(to_tag(&sent[1]).as_deref(), Some("fork2"));
    assert!(p.events.is_empty(), "the call is the first fork's");
    assert_eq!(p.ep.outgoing_calls(), 1);
    p.ok(&sent[1]);

    // The first fork's dialog is untouched: our BYE goes to it.
    p.ep.hangup(p.now, call);
    p.pump();
    let bye = p.next_sent();
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(to_tag(&bye).as_deref(), Some(OP_TAG));
}

#[test]
fn bye_from_the_operator_ends_the_call() {
    let mut p = Phone::udp();
    let (call, invite, _) = p.answered();
    let bye = p.in_dialog(&invite, "BYE", None);
    let sent = p.new_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(200));
    assert_eq!(cseq(&sent[0]), cseq(&bye));
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::RemoteBye }] if c == call
    ));
    assert_eq!(p.ep.outgoing_calls(), 0);
    // The call is gone: another BYE gets 481.
    p.in_dialog(&invite, "BYE", None);
    assert_eq!(p.next_sent().status(), Some(481));
    assert_eq!(p.count_ended(call), 1);
}

#[test]
fn hold_reinvite_from_the_operator_is_reported_and_accepted() {
    let mut p = Phone::udp();
    let (call, invite, _) = p.answered();
    let reinvite = p.in_dialog(&invite, "INVITE", Some(("application/sdp", HOLD)));
    assert_eq!(p.next_sent().status(), Some(100));
    match p.event() {
        Some(Event::ReInvite {
            call: c,
            sdp: Some(sdp),
        }) if c == call => assert_eq!(sdp, HOLD.as_bytes()),
        other => panic!("expected ReInvite, got {other:?}"),
    }
    p.ep.accept_reinvite(p.now, call, Bytes::from_static(HELD.as_bytes()));
    p.pump();
    let ok = p.next_sent();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(cseq(&ok), cseq(&reinvite));
    assert_eq!(ok.body(), HELD.as_bytes());
    assert_eq!(to_tag(&ok), Some(from_tag(&invite)), "our tag");
    assert!(ok.contacts().next().is_some());
    // The phone's ACK closes it.
    let seq = reinvite.cseq().unwrap().seq;
    p.in_dialog_seq(&invite, "ACK", seq, None);
    assert!(matches!(
        p.take_events()[..],
        [Event::Acked { call: c, sdp: None }] if c == call
    ));
    p.advance(t1s(64));
    assert!(
        p.new_sent().is_empty(),
        "no 2xx retransmission after the ACK"
    );

    // A rejected re-INVITE leaves the call as it was.
    p.in_dialog(&invite, "INVITE", Some(("application/sdp", HOLD)));
    assert!(matches!(p.event(), Some(Event::ReInvite { .. })));
    p.ep.reject_reinvite(p.now, call, 488);
    p.pump();
    let sent = p.new_sent();
    assert_eq!(sent.last().and_then(|m| m.status()), Some(488));
    assert_eq!(p.ep.outgoing_calls(), 1);
}

#[test]
fn info_and_options_in_the_dialog() {
    let mut p = Phone::udp();
    let (call, invite, _) = p.answered();
    p.in_dialog(
        &invite,
        "INFO",
        Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")),
    );
    assert_eq!(p.next_sent().status(), Some(200));
    match p.event() {
        Some(Event::Info {
            call: c,
            content_type,
            body,
        }) if c == call => {
            assert_eq!(content_type, "application/dtmf-relay");
            assert_eq!(body, "Signal=5\r\nDuration=160\r\n");
        }
        other => panic!("expected Info, got {other:?}"),
    }
    p.in_dialog(&invite, "OPTIONS", None);
    assert_eq!(p.next_sent().status(), Some(200));
    assert!(p.events.is_empty());
}

#[test]
fn our_hangup_after_the_answer_sends_bye_to_the_contact_with_the_route() {
    let mut p = Phone::udp();
    let (call, invite, _) = p.answered();
    p.ep.hangup(p.now, call);
    p.pump();
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::LocalHangup }] if c == call
    ));
    let bye = p.next_sent();
    bye.validate_request().unwrap();
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.request_uri(), DIALOG_CONTACT.as_bytes());
    assert_eq!(routes(&bye), ROUTES);
    assert_eq!(cseq(&bye), (2, "BYE".into()));
    assert_eq!(to_tag(&bye).as_deref(), Some(OP_TAG));
    assert_eq!(from_tag(&bye), from_tag(&invite));
    assert_eq!(
        hdr(&bye, HeaderName::CallId),
        hdr(&invite, HeaderName::CallId)
    );
    assert_eq!(p.ep.pending_requests(), 1);
    p.ok(&bye);
    assert_eq!(p.ep.pending_requests(), 0);
    assert_eq!(p.ep.outgoing_calls(), 0);
    p.advance(t1s(64) + Duration::from_secs(5));
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.count_ended(call), 1);
}

#[test]
fn over_tcp_nothing_is_retransmitted() {
    let mut p = Phone::new(Transport::Tcp);
    let (call, invite) = p.call();
    let via = invite.top_via().unwrap();
    assert_eq!(via.transport, b"TCP");
    assert!(via.is_reliable());
    assert_eq!(
        hdr(&invite, HeaderName::Contact),
        format!("<sip:hotline@{HOTLINE};transport=tcp>")
    );
    p.advance(t1s(20));
    assert!(p.new_sent().is_empty(), "no Timer A over TCP");
    p.respond(&invite, 180, OP_TAG);
    p.respond(&invite, 200, OP_TAG);
    assert!(matches!(
        p.take_events()[..],
        [Event::Progress { status: 180, .. }, Event::Answered { call: c, .. }] if c == call
    ));
    let ack = p.next_sent();
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.top_via().unwrap().transport, b"TCP");
    p.ep.hangup(p.now, call);
    p.pump();
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::LocalHangup }] if c == call
    ));
    let bye = p.next_sent();
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.top_via().unwrap().transport, b"TCP");
    p.advance(t1s(30));
    assert!(p.new_sent().is_empty(), "no Timer E over TCP");
    p.ok(&bye);
    assert_eq!(p.ep.pending_requests(), 0);
    p.advance(t1s(64));
    assert_eq!(p.ep.transactions(), 0);

    // A failure over TCP: ACKed once, the transaction ends at once.
    let (call, invite) = p.call();
    p.respond(&invite, 486, OP_TAG);
    assert_eq!(p.next_sent().method(), Some(&Method::Ack));
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::Failed(486) }] if c == call
    ));
    assert_eq!(p.ep.transactions(), 0);

    // No response at all over TCP: Timer B still ends it, without retransmission.
    let (call, _) = p.call();
    p.advance(t1s(64));
    assert!(p.new_sent().is_empty());
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::Failed(408) }] if c == call
    ));
}

#[test]
fn a_transport_error_fails_the_call_with_503() {
    let mut p = Phone::new(Transport::Tcp);
    let (call, _) = p.call();
    let mut other = p.peer();
    other.connection = Some(10);
    p.ep.transport_error(p.now, other);
    p.pump();
    assert!(p.events.is_empty(), "another connection");
    p.ep.transport_error(p.now, p.peer());
    p.pump();
    assert!(matches!(
        p.take_events()[..],
        [Event::Ended { call: c, reason: EndReason::Failed(503) }] if c == call
    ));
    assert_eq!(p.ep.transactions(), 0);
    assert_eq!(p.ep.outgoing_calls(), 0);
}

#[test]
fn a_response_to_the_cancel_is_not_taken_for_the_invites() {
    let mut p = Phone::udp();
    let (call, invite) = p.call();
    p.respond(&invite, 180, OP_TAG);
    p.ep.hangup(p.now, call);
    p.pump();
    let cancel = p.next_sent();
    // A 481 to the CANCEL has the INVITE's branch; it must not end the INVITE.
    let no = response(&cancel, 481).to_tag(OP_TAG).build();
    p.deliver(no);
    assert!(p.new_sent().is_empty(), "no ACK for a response to CANCEL");
    assert_eq!(p.ep.pending_requests(), 1, "the INVITE still waits");
    p.respond(&invite, 487, OP_TAG);
    assert_eq!(p.next_sent().method(), Some(&Method::Ack));
    assert_eq!(p.ep.pending_requests(), 0);
}

#[test]
fn operator_legs_do_not_count_against_max_calls() {
    let config = endpoint::Config {
        max_calls: 1,
        ..endpoint::Config::default()
    };
    let mut p = Phone::with_config(Transport::Udp, config);
    p.answered();
    assert_eq!(p.ep.active_calls(), 0);
    // A caller's INVITE still gets through.
    let caller = Peer {
        transport: Transport::Udp,
        remote: addr("198.51.100.20:5060"),
        local: addr(HOTLINE),
        connection: None,
    };
    let text = format!(
        "INVITE sip:0800@{HOTLINE} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bKcaller1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+51987654321@trunk>;tag=c1\r\n\
         To: <sip:0800@hotline>\r\n\
         Call-ID: caller-1@trunk\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+51987654321@198.51.100.20:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    p.ep.handle_datagram(p.now, caller, Bytes::from(text));
    let mut incoming = false;
    while let Some(e) = p.ep.poll_event() {
        incoming |= matches!(e, Event::IncomingCall(_));
    }
    assert!(incoming, "not refused with 503");
    assert_eq!(p.ep.active_calls(), 1);
    assert_eq!(p.ep.outgoing_calls(), 1);
}

/// A carrier's 401 (and a proxy's 407) is answered once with a new INVITE: same Call-ID and
/// From tag, CSeq 2, a new branch, and credentials that verify; a second challenge ends the
/// call. A neutral call names the hotline nowhere in From, Contact or Call-ID.
#[test]
fn a_digest_challenge_is_answered_once_with_credentials_that_verify() {
    use hotline_sip::digest::{self, Algorithm, Credentials};
    use hotline_sip::endpoint::ClientAuth;
    for (code, challenge_name, answer_name) in [
        (401, "WWW-Authenticate", HeaderName::Authorization),
        (407, "Proxy-Authenticate", HeaderName::ProxyAuthorization),
    ] {
        let mut p = Phone::udp();
        let mut out = p.outgoing();
        out.from_user = "5550100".into();
        out.from_display = "Servicios".into();
        out.neutral = true;
        out.auth = Some(ClientAuth {
            username: "trunk1".into(),
            password: "s3cret".into(),
        });
        let call = p.ep.invite(p.now, out);
        p.pump();
        let first = p.next_sent();
        for h in [HeaderName::From, HeaderName::Contact, HeaderName::CallId] {
            assert!(
                !hdr(&first, h).to_lowercase().contains("hotline"),
                "{h:?}: {}",
                hdr(&first, h)
            );
        }
        assert!(hdr(&first, HeaderName::From).starts_with("\"Servicios\" <sip:5550100@"));
        let challenge = response(&first, code)
            .to_tag("c1")
            .header(
                challenge_name,
                "Digest realm=\"carrier.example\", qop=\"auth\", algorithm=SHA-256, nonce=\"n0nce\", opaque=\"op\"",
            )
            .build();
        p.deliver(challenge);
        let sent = p.new_sent();
        assert_eq!(
            sent.len(),
            2,
            "the ACK of the 401 and the new INVITE: {sent:?} {:?}",
            p.take_events()
        );
        assert_eq!(sent[0].method(), Some(&Method::Ack), "the ACK first");
        let second = &sent[1];
        assert_eq!(second.method(), Some(&Method::Invite));
        assert_eq!(cseq(second), (2, "INVITE".into()));
        assert_eq!(
            hdr(second, HeaderName::CallId),
            hdr(&first, HeaderName::CallId)
        );
        assert_eq!(from_tag(second), from_tag(&first));
        assert_ne!(branch(second), branch(&first));
        let creds = Credentials::parse(second.header(answer_name).unwrap()).unwrap();
        assert_eq!(creds.username, "trunk1");
        assert_eq!(creds.realm, "carrier.example");
        assert_eq!(creds.opaque.as_deref(), Some("op"));
        assert_eq!(creds.algorithm, Algorithm::Sha256);
        let ha1 = digest::ha1(Algorithm::Sha256, "trunk1", "carrier.example", "s3cret");
        let expected = digest::response(
            Algorithm::Sha256,
            &ha1,
            "n0nce",
            Some((creds.nc.unwrap(), creds.cnonce.as_deref().unwrap())),
            &Method::Invite,
            &creds.uri,
        );
        assert_eq!(creds.response, expected);
        assert!(p.take_events().is_empty(), "the call goes on");
        assert_eq!(p.ep.outgoing_calls(), 1);

        // Challenged again: the call fails with that code.
        let again = response(second, code)
            .to_tag("c2")
            .header(
                challenge_name,
                "Digest realm=\"carrier.example\", nonce=\"n1\"",
            )
            .build();
        p.deliver(again);
        let events = p.take_events();
        assert!(
            matches!(events[..], [Event::Ended { call: c, reason: EndReason::Failed(s) }] if c == call && s == code),
            "{events:?}"
        );
    }
}
