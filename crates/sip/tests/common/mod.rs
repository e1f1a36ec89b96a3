//! Both ends of a call in one test: a small UAC written here, the crate's
//! [`Endpoint`] as the UAS, a lossy [`Pipe`] between them, and a fake clock.
//!
//! Time is virtual (the str0m and quinn-proto way): `epoch` is read once,
//! and [`Harness::step`] jumps to the earliest deadline of either side,
//! fires it and delivers every packet that results, in order and at once
//! (the pipe has no latency, only loss). Nothing sleeps.
//!
//! The UAC builds real SIP requests as text and retransmits them with the
//! crate's own [`InviteClient`] and [`NonInviteClient`]. Its core ACKs every
//! 2xx it sees (RFC 3261 §13.2.2.4) and answers BYE with 200. The test plays
//! the UAS application: endpoint events queue up in [`Harness::events`], and
//! the test answers them with the endpoint's commands at `h.now` (or hands a
//! closure to [`Harness::drive`]).

// Not every test binary that includes this module uses every helper.
#![allow(dead_code)]

mod pipe;
mod uac;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::endpoint::{
    self, CallHandle, EndReason, Endpoint, Event, IncomingCall, Peer, Transport,
};
use hotline_sip::message::Message;
use hotline_sip::transaction;

pub(crate) use pipe::{Dir, Packet, Pipe};
pub(crate) use uac::{Uac, UacConfig};

/// Where the endpoint listens.
pub(crate) const UAS_ADDR: &str = "203.0.113.5:5060";
/// Where the UAC listens and sends from (unless a test moves it behind a NAT).
pub(crate) const UAC_ADDR: &str = "192.0.2.10:5062";
/// The number the caller dials.
pub(crate) const DIALLED: &str = "0800123";
/// The caller's number.
pub(crate) const CALLER: &str = "+51987654321";

/// The caller's offer: PCMU, PCMA and telephone-event.
pub(crate) const OFFER: &str = "v=0\r\n\
o=caller 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

/// Our answer (what the application would hand to `answer`).
pub(crate) const ANSWER: &str = "v=0\r\n\
o=hotline 1 1 IN IP4 203.0.113.5\r\n\
s=hotline\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n";

/// A re-INVITE offer that puts the call on hold (RFC 3264 §8.4).
pub(crate) const HOLD: &str = "v=0\r\n\
o=caller 2890844526 2890844527 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendonly\r\n";

/// The RFC 3261 default timers, which every harness uses.
pub(crate) fn timers() -> transaction::Config {
    transaction::Config::default()
}

/// T1, 500 ms.
pub(crate) fn t1() -> Duration {
    timers().t1
}

/// T2, 4 s.
pub(crate) fn t2() -> Duration {
    timers().t2
}

/// T4, 5 s.
pub(crate) fn t4() -> Duration {
    timers().t4
}

/// `n`·T1.
pub(crate) fn t1s(n: u32) -> Duration {
    t1() * n
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test addresses are literals")
}

/// The UAC, the endpoint, the pipe and the clock.
#[derive(Debug)]
pub(crate) struct Harness {
    /// The start of virtual time.
    pub(crate) epoch: Instant,
    /// Virtual now.
    pub(crate) now: Instant,
    /// The endpoint under test.
    pub(crate) uas: Endpoint,
    /// The caller.
    pub(crate) uac: Uac,
    /// The link between them.
    pub(crate) pipe: Pipe,
    /// Endpoint events the test has not taken yet.
    pub(crate) events: VecDeque<Event>,
    /// Every endpoint event, with when it happened.
    pub(crate) event_log: Vec<(Instant, Event)>,
    /// When a packet last reached the endpoint.
    pub(crate) last_uas_input: Option<Instant>,
    uas_addr: SocketAddr,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new(UacConfig::default(), endpoint::Config::default())
    }
}

impl Harness {
    /// A UAC configured by `uac` in front of an endpoint configured by `uas`.
    pub(crate) fn new(uac: UacConfig, uas: endpoint::Config) -> Self {
        let epoch = Instant::now();
        Self {
            epoch,
            now: epoch,
            uas: Endpoint::new(uas),
            uac: Uac::new(uac),
            pipe: Pipe::default(),
            events: VecDeque::new(),
            event_log: Vec::new(),
            last_uas_input: None,
            uas_addr: addr(UAS_ADDR),
        }
    }

    /// A UDP harness with default settings.
    pub(crate) fn udp() -> Self {
        Self::default()
    }

    /// A TCP harness with default settings.
    pub(crate) fn tcp() -> Self {
        Self::new(UacConfig::tcp(), endpoint::Config::default())
    }

    /// Virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The UAC as the endpoint sees it.
    pub(crate) fn uac_peer(&self) -> Peer {
        let tcp = self.uac.config.transport == Transport::Tcp;
        Peer {
            transport: self.uac.config.transport,
            remote: self.uac.config.source,
            local: self.uas_addr,
            connection: tcp.then_some(1),
        }
    }

    /// Moves both sides' output into the pipe and delivers it, until nothing
    /// more happens at this instant.
    pub(crate) fn flush(&mut self) {
        for _ in 0..100_000 {
            while let Some(t) = self.uas.poll_transmit() {
                self.pipe.send(
                    self.now,
                    Dir::ToUac,
                    t.peer.remote,
                    t.peer.connection,
                    t.payload,
                );
            }
            while let Some(e) = self.uas.poll_event() {
                self.event_log.push((self.now, e.clone()));
                self.events.push_back(e);
            }
            while let Some(bytes) = self.uac.poll_transmit() {
                self.pipe
                    .send(self.now, Dir::ToUas, self.uas_addr, None, bytes);
            }
            let Some(packet) = self.pipe.next_delivery() else {
                return;
            };
            match packet.dir {
                Dir::ToUas => {
                    self.last_uas_input = Some(self.now);
                    let peer = self.uac_peer();
                    self.uas.handle_datagram(self.now, peer, packet.bytes);
                }
                Dir::ToUac => self.uac.receive(self.now, packet.bytes),
            }
        }
        panic!("the two ends never stop talking");
    }

    /// The earliest deadline of either side.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.uas.poll_timeout(), self.uac.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Delivers what is pending, then advances to the earliest deadline of
    /// either side, fires it and delivers what results. Returns false when
    /// neither side has a deadline.
    pub(crate) fn step(&mut self) -> bool {
        self.flush();
        let Some(at) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(at);
        if self.uas.poll_timeout().is_some_and(|t| t <= self.now) {
            self.uas.handle_timeout(self.now);
        }
        if self.uac.poll_timeout().is_some_and(|t| t <= self.now) {
            self.uac.handle_timeout(self.now);
        }
        self.flush();
        true
    }

    /// Runs every deadline up to `now + d`, then sets the clock there. Events
    /// queue up in [`events`](Self::events) for the test.
    pub(crate) fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.flush();
        while self.next_deadline().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = until;
        self.flush();
    }

    /// Like [`advance`](Self::advance), but hands every endpoint event to
    /// `app` as it happens, which plays the application.
    pub(crate) fn drive(&mut self, d: Duration, mut app: impl FnMut(&mut Self, Event)) {
        let until = self.now + d;
        loop {
            self.flush();
            while let Some(e) = self.events.pop_front() {
                app(self, e);
                self.flush();
            }
            match self.next_deadline() {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = until;
        self.flush();
    }

    /// Runs until neither side has a deadline left (at most `limit` of
    /// virtual time); returns how long that took.
    pub(crate) fn run_until_idle(&mut self, limit: Duration) -> Duration {
        let start = self.now;
        while self.next_deadline().is_some_and(|t| t <= start + limit) {
            self.step();
        }
        self.now - start
    }

    /// The next endpoint event, if any.
    pub(crate) fn event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes every pending endpoint event.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// The next event, which must be an incoming call.
    pub(crate) fn incoming(&mut self) -> IncomingCall {
        match self.event() {
            Some(Event::IncomingCall(call)) => call,
            other => panic!("expected IncomingCall, got {other:?}"),
        }
    }

    /// The next event, which must end `call`; returns the reason.
    pub(crate) fn ended(&mut self, call: CallHandle) -> EndReason {
        match self.event() {
            Some(Event::Ended { call: c, reason }) if c == call => reason,
            other => panic!("expected Ended for {call:?}, got {other:?}"),
        }
    }

    /// How many events of the log `pick` selects.
    pub(crate) fn count_events(&self, pick: impl Fn(&Event) -> bool) -> usize {
        self.event_log.iter().filter(|(_, e)| pick(e)).count()
    }

    /// The UAC sends its INVITE with [`OFFER`]; returns the endpoint's call
    /// (after 100 Trying reached the UAC).
    pub(crate) fn call(&mut self) -> CallHandle {
        self.uac.invite(self.now, Some(OFFER));
        self.flush();
        self.incoming().call
    }

    /// A call through to the ACK: INVITE, 180, 200 with [`ANSWER`], ACK.
    pub(crate) fn confirmed_call(&mut self) -> CallHandle {
        let call = self.call();
        self.ringing(call);
        self.answer(call);
        match self.event() {
            Some(Event::Acked { call: c, .. }) if c == call => call,
            other => panic!("expected Acked, got {other:?}"),
        }
    }

    /// The application sends 180 Ringing.
    pub(crate) fn ringing(&mut self, call: CallHandle) {
        self.uas.ringing(self.now, call);
        self.flush();
    }

    /// The application answers with [`ANSWER`].
    pub(crate) fn answer(&mut self, call: CallHandle) {
        self.uas
            .answer(self.now, call, Bytes::from_static(ANSWER.as_bytes()));
        self.flush();
    }

    /// The application hangs up.
    pub(crate) fn hangup(&mut self, call: CallHandle) {
        self.uas.hangup(self.now, call);
        self.flush();
    }

    /// The packets the endpoint sent that `pick` selects, dropped ones included.
    pub(crate) fn sent_by_uas(&self, pick: impl Fn(&Packet) -> bool) -> Vec<&Packet> {
        self.pipe.sent(Dir::ToUac).filter(|p| pick(p)).collect()
    }

    /// The packets the UAC sent that `pick` selects, dropped ones included.
    pub(crate) fn sent_by_uac(&self, pick: impl Fn(&Packet) -> bool) -> Vec<&Packet> {
        self.pipe.sent(Dir::ToUas).filter(|p| pick(p)).collect()
    }

    /// When each selected packet was sent, relative to `since`.
    pub(crate) fn send_times(packets: &[&Packet], since: Instant) -> Vec<Duration> {
        packets.iter().map(|p| p.at - since).collect()
    }
}

/// The header value of `name` in `msg`, as text.
pub(crate) fn header(msg: &Message, name: &str) -> Option<String> {
    msg.header_by_name(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The To tag of `msg`.
pub(crate) fn to_tag(msg: &Message) -> Option<String> {
    let to = msg.to_header().ok()?;
    Some(String::from_utf8_lossy(to.tag()?).into_owned())
}

/// The From tag of `msg`.
pub(crate) fn from_tag(msg: &Message) -> Option<String> {
    let from = msg.from_header().ok()?;
    Some(String::from_utf8_lossy(from.tag()?).into_owned())
}
