//! The four RFC 3261 §17 transaction machines, a client and a server in each
//! test, joined by a lossy pipe and stepped on a fake clock.
//!
//! The test plays the endpoints and both TUs: packets are short strings
//! (`INVITE`, `SIP/2.0 486`, `ACK`, `ACK 2xx`), the server TU answers from a
//! script of (delay after the request arrived, status code), and the client
//! TU ACKs every 2xx end to end unless told not to.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::transaction::{
    Config, InviteClient, InviteServer, NonInviteClient, NonInviteServer, invite_client,
    invite_server, non_invite_client, non_invite_server,
};
use proptest::prelude::*;

const UDP: bool = false;
const TCP: bool = true;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// What the harness needs of every machine.
trait Machine {
    type Event: Copy + Debug + PartialEq;
    const TERMINATED: Self::Event;

    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self) -> Option<Bytes>;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_terminated(&self) -> bool;
    fn transport_error(&mut self);
    /// Whether the machine may wait forever for the peer or the TU (it arms no
    /// timer in its current state).
    fn waits_without_timer(&self) -> bool;
}

/// The client end: the endpoint glue that feeds it response codes.
trait Client: Machine {
    const INVITE: bool;
    const METHOD: &'static str;

    fn start(now: Instant, config: &Config, reliable: bool) -> Self;
    /// A response with `code` arrived; whether the TU sees it.
    fn on_response(&mut self, now: Instant, code: u16) -> bool;
}

/// The server end: the endpoint glue that feeds it retransmissions and ACKs.
trait Server: Machine {
    fn start(now: Instant, config: &Config, reliable: bool) -> Self;
    fn tu_respond(&mut self, now: Instant, code: u16) -> bool;
    fn on_request(&mut self, now: Instant);
    fn on_ack(&mut self, _now: Instant) {}
    fn on_ack_2xx(&mut self, _now: Instant) {}
}

macro_rules! machine {
    ($ty:ty, $module:ident, |$tx:ident| $waits:expr) => {
        impl Machine for $ty {
            type Event = $module::Event;
            const TERMINATED: Self::Event = $module::Event::Terminated;

            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Bytes> {
                <$ty>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<Self::Event> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn is_terminated(&self) -> bool {
                <$ty>::is_terminated(self)
            }
            fn transport_error(&mut self) {
                <$ty>::transport_error(self)
            }
            fn waits_without_timer(&self) -> bool {
                let $tx = self;
                $waits
            }
        }
    };
}

machine!(InviteClient, invite_client, |tx| tx.state()
    == invite_client::State::Proceeding);
machine!(NonInviteClient, non_invite_client, |_tx| false);
machine!(InviteServer, invite_server, |tx| tx.state()
    == invite_server::State::Proceeding);
machine!(NonInviteServer, non_invite_server, |tx| matches!(
    tx.state(),
    non_invite_server::State::Trying | non_invite_server::State::Proceeding
));

impl Client for InviteClient {
    const INVITE: bool = true;
    const METHOD: &'static str = "INVITE";

    fn start(now: Instant, config: &Config, reliable: bool) -> Self {
        Self::new(now, config, reliable, Bytes::from_static(b"INVITE"))
    }

    fn on_response(&mut self, now: Instant, code: u16) -> bool {
        let ack = (code >= 300).then(|| Bytes::from_static(b"ACK"));
        self.handle_response(now, code, ack)
    }
}

impl Client for NonInviteClient {
    const INVITE: bool = false;
    const METHOD: &'static str = "OPTIONS";

    fn start(now: Instant, config: &Config, reliable: bool) -> Self {
        Self::new(now, config, reliable, Bytes::from_static(b"OPTIONS"))
    }

    fn on_response(&mut self, now: Instant, code: u16) -> bool {
        self.handle_response(now, code)
    }
}

impl Server for InviteServer {
    fn start(now: Instant, config: &Config, reliable: bool) -> Self {
        Self::new(now, config, reliable)
    }

    fn tu_respond(&mut self, now: Instant, code: u16) -> bool {
        self.respond(now, code, response(code))
    }

    fn on_request(&mut self, now: Instant) {
        self.request_retransmitted(now)
    }

    fn on_ack(&mut self, now: Instant) {
        self.ack(now)
    }

    fn on_ack_2xx(&mut self, now: Instant) {
        self.ack_2xx(now)
    }
}

impl Server for NonInviteServer {
    fn start(now: Instant, config: &Config, reliable: bool) -> Self {
        Self::new(now, config, reliable)
    }

    fn tu_respond(&mut self, now: Instant, code: u16) -> bool {
        self.respond(now, code, response(code))
    }

    fn on_request(&mut self, now: Instant) {
        self.request_retransmitted(now)
    }
}

fn response(code: u16) -> Bytes {
    Bytes::from(format!("SIP/2.0 {code}"))
}

fn status(packet: &str) -> Option<u16> {
    packet.strip_prefix("SIP/2.0 ")?.parse().ok()
}

/// One direction of the pipe: drops the packets its predicate picks, given
/// their index in this direction (from 0) and their text.
struct Link {
    count: usize,
    drop: DropFn,
}

/// Picks the packets to drop from their index and text.
type DropFn = Box<dyn FnMut(usize, &str) -> bool>;

impl Link {
    fn lossless() -> Self {
        Self::drop_if(|_, _| false)
    }

    fn drop_all() -> Self {
        Self::drop_if(|_, _| true)
    }

    /// Drops the packets with these indices.
    fn drop_nth(nth: &[usize]) -> Self {
        let nth = nth.to_vec();
        Self::drop_if(move |index, _| nth.contains(&index))
    }

    /// Drops the first `n` packets whose text is `text`.
    fn drop_first(text: &'static str, n: usize) -> Self {
        let mut seen = 0;
        Self::drop_if(move |_, packet| {
            let hit = packet == text && seen < n;
            seen += usize::from(packet == text);
            hit
        })
    }

    /// Drops packet `i` when `pattern[i]`; everything after the pattern passes.
    fn pattern(pattern: Vec<bool>) -> Self {
        Self::drop_if(move |index, _| pattern.get(index).copied().unwrap_or(false))
    }

    fn drop_if(drop: impl FnMut(usize, &str) -> bool + 'static) -> Self {
        Self {
            count: 0,
            drop: Box::new(drop),
        }
    }

    /// Whether the next packet gets through.
    fn pass(&mut self, packet: &str) -> bool {
        let index = self.count;
        self.count += 1;
        !(self.drop)(index, packet)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToServer,
    ToClient,
}

#[derive(Debug, Clone)]
struct Packet {
    at: Duration,
    dir: Dir,
    text: String,
    delivered: bool,
}

struct Pair<C: Client, S: Server> {
    config: Config,
    reliable: bool,
    epoch: Instant,
    now: Instant,
    client: C,
    /// Created when the first request gets through.
    server: Option<S>,
    to_server: Link,
    to_client: Link,
    /// The server TU's responses: (delay after the request arrived, code).
    script: VecDeque<(Duration, u16)>,
    arrived: Option<Instant>,
    /// Whether the client TU ACKs every 2xx it sees.
    ack_2xx: bool,
    log: Vec<Packet>,
    client_events: Vec<(Duration, C::Event)>,
    server_events: Vec<(Duration, S::Event)>,
    /// The responses the client transaction passed to its TU.
    to_tu: Vec<(Duration, u16)>,
    steps: usize,
}

type InvitePair = Pair<InviteClient, InviteServer>;
type NonInvitePair = Pair<NonInviteClient, NonInviteServer>;

impl<C: Client, S: Server> Pair<C, S> {
    fn new(reliable: bool) -> Self {
        Self::with_config(Config::default(), reliable)
    }

    fn with_config(config: Config, reliable: bool) -> Self {
        let epoch = Instant::now();
        Self {
            config,
            reliable,
            epoch,
            now: epoch,
            client: C::start(epoch, &config, reliable),
            server: None,
            to_server: Link::lossless(),
            to_client: Link::lossless(),
            script: VecDeque::new(),
            arrived: None,
            ack_2xx: true,
            log: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_tu: Vec::new(),
            steps: 0,
        }
    }

    /// The server TU's answers, as (milliseconds after the request arrived, code).
    fn script(mut self, responses: &[(u64, u16)]) -> Self {
        self.script = responses
            .iter()
            .map(|&(delay, code)| (ms(delay), code))
            .collect();
        self
    }

    fn link_to_server(mut self, link: Link) -> Self {
        self.to_server = link;
        self
    }

    fn link_to_client(mut self, link: Link) -> Self {
        self.to_client = link;
        self
    }

    /// The client TU never ACKs a 2xx.
    fn without_ack_2xx(mut self) -> Self {
        self.ack_2xx = false;
        self
    }

    /// Steps until nothing is armed.
    fn drive(&mut self) {
        while self.step(None) {}
    }

    /// Steps through every deadline up to `at` after the epoch, inclusive.
    fn drive_until(&mut self, at: Duration) {
        while self.step(Some(self.epoch + at)) {}
    }

    /// Delivers what is in flight, then advances the clock to the earliest
    /// deadline of either side or of the server TU's script (if not after
    /// `limit`), fires it, and delivers again. Returns whether it advanced.
    fn step(&mut self, limit: Option<Instant>) -> bool {
        self.flush();
        let deadlines = [
            self.client.poll_timeout(),
            self.server.as_ref().and_then(S::poll_timeout),
            self.next_response(),
        ];
        let Some(next) = deadlines.into_iter().flatten().min() else {
            return false;
        };
        if limit.is_some_and(|limit| next > limit) {
            return false;
        }
        self.steps += 1;
        assert!(self.steps < 10_000, "livelock at {:?}", self.elapsed());
        assert!(next >= self.now, "a deadline in the past");
        self.now = next;

        self.client.handle_timeout(next);
        assert!(
            self.client.poll_timeout().is_none_or(|at| at > next),
            "client timer not rearmed"
        );
        if let Some(server) = &mut self.server {
            server.handle_timeout(next);
            assert!(
                server.poll_timeout().is_none_or(|at| at > next),
                "server timer not rearmed"
            );
        }
        while let Some(&(delay, code)) = self.script.front()
            && let Some(arrived) = self.arrived
            && arrived + delay <= next
        {
            self.script.pop_front();
            if let Some(server) = &mut self.server {
                server.tu_respond(next, code);
            }
        }
        self.flush();
        true
    }

    fn next_response(&self) -> Option<Instant> {
        Some(self.arrived? + self.script.front()?.0)
    }

    /// Carries every queued packet, one at a time, client first, until both
    /// sides are quiet; then collects the events.
    fn flush(&mut self) {
        loop {
            if let Some(packet) = self.client.poll_transmit() {
                self.carry(Dir::ToServer, packet);
                continue;
            }
            if let Some(packet) = self.server.as_mut().and_then(S::poll_transmit) {
                self.carry(Dir::ToClient, packet);
                continue;
            }
            break;
        }
        let at = self.elapsed();
        while let Some(event) = self.client.poll_event() {
            self.client_events.push((at, event));
        }
        if let Some(server) = &mut self.server {
            while let Some(event) = server.poll_event() {
                self.server_events.push((at, event));
            }
        }
    }

    fn carry(&mut self, dir: Dir, packet: Bytes) {
        let text = String::from_utf8(packet.to_vec()).expect("test packets are text");
        let link = match dir {
            Dir::ToServer => &mut self.to_server,
            Dir::ToClient => &mut self.to_client,
        };
        let delivered = link.pass(&text);
        self.log.push(Packet {
            at: self.elapsed(),
            dir,
            text: text.clone(),
            delivered,
        });
        if !delivered {
            return;
        }
        let now = self.now;
        match dir {
            Dir::ToServer => match (text.as_str(), &mut self.server) {
                ("ACK 2xx", Some(server)) => server.on_ack_2xx(now),
                ("ACK", Some(server)) => server.on_ack(now),
                (method, Some(server)) if method == C::METHOD => server.on_request(now),
                (method, None) if method == C::METHOD => {
                    self.server = Some(S::start(now, &self.config, self.reliable));
                    self.arrived = Some(now);
                }
                (other, _) => panic!("unexpected packet to the server: {other}"),
            },
            Dir::ToClient => {
                let code = status(&text).expect("a response");
                if self.client.on_response(now, code) {
                    self.to_tu.push((self.elapsed(), code));
                    if C::INVITE && (200..300).contains(&code) && self.ack_2xx {
                        self.carry(Dir::ToServer, Bytes::from_static(b"ACK 2xx"));
                    }
                }
            }
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    fn server(&self) -> &S {
        self.server
            .as_ref()
            .expect("the request reached the server")
    }

    /// When `text` was sent in direction `dir`, lost or not.
    fn sent(&self, dir: Dir, text: &str) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|p| p.dir == dir && p.text == text)
            .map(|p| p.at)
            .collect()
    }

    fn client_done(&self) -> Option<Duration> {
        done(&self.client_events, C::TERMINATED)
    }

    fn server_done(&self) -> Option<Duration> {
        done(&self.server_events, S::TERMINATED)
    }
}

fn done<E: PartialEq>(events: &[(Duration, E)], terminated: E) -> Option<Duration> {
    events
        .iter()
        .find(|(_, event)| *event == terminated)
        .map(|(at, _)| *at)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn times(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(ms).collect()
}

fn at<E>(list: &[(u64, E)]) -> Vec<(Duration, E)>
where
    E: Copy,
{
    list.iter().map(|&(t, e)| (ms(t), e)).collect()
}

// ---------------------------------------------------------------------------
// INVITE
// ---------------------------------------------------------------------------

#[test]
fn invite_is_retransmitted_with_doubling_until_timer_b() {
    use invite_client::Event::{Terminated, Timeout};
    let mut pair = InvitePair::new(UDP).link_to_server(Link::drop_all());
    pair.drive();
    assert_eq!(
        pair.sent(Dir::ToServer, "INVITE"),
        times(&[0, 500, 1500, 3500, 7500, 15500, 31500])
    );
    assert_eq!(
        pair.client_events,
        at(&[(32_000, Timeout), (32_000, Terminated)])
    );
    assert!(pair.server.is_none());
}

#[test]
fn invite_timers_follow_t1() {
    let config = Config {
        t1: ms(1000),
        ..Config::default()
    };
    let mut pair = InvitePair::with_config(config, UDP).link_to_server(Link::drop_all());
    pair.drive();
    assert_eq!(
        pair.sent(Dir::ToServer, "INVITE"),
        times(&[0, 1000, 3000, 7000, 15000, 31000, 63000])
    );
    assert_eq!(pair.client_done(), Some(ms(64_000)));
}

#[test]
fn invite_retransmission_stops_at_the_first_response_after_loss() {
    let mut pair = InvitePair::new(UDP)
        .link_to_server(Link::drop_nth(&[0, 1, 2]))
        .script(&[(0, 180), (2000, 486)]);
    pair.drive();
    assert_eq!(
        pair.sent(Dir::ToServer, "INVITE"),
        times(&[0, 500, 1500, 3500])
    );
    assert_eq!(pair.to_tu, at(&[(3500, 180), (5500, 486)]));
    assert_eq!(pair.sent(Dir::ToServer, "ACK"), times(&[5500]));
    assert_eq!(
        pair.server_events,
        at(&[(10_500, invite_server::Event::Terminated)])
    );
    assert_eq!(pair.client_done(), Some(ms(5500 + 32_000)), "Timer D");
}

#[test]
fn provisional_response_stops_timer_b() {
    // RFC 3261 §17.1.1.2: Timer B only matters in Calling; after a 1xx the
    // client waits for the final response as long as the server takes.
    let mut pair = InvitePair::new(UDP).script(&[(0, 180), (40_000, 486)]);
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0]));
    assert_eq!(pair.to_tu, at(&[(0, 180), (40_000, 486)]));
    assert_eq!(
        pair.client_events,
        at(&[(72_000, invite_client::Event::Terminated)])
    );
}

#[test]
fn reliable_invite_is_sent_once_until_timer_b() {
    use invite_client::Event::{Terminated, Timeout};
    let mut pair = InvitePair::new(TCP);
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0]));
    assert_eq!(
        pair.client_events,
        at(&[(32_000, Timeout), (32_000, Terminated)])
    );
    assert_eq!(pair.server().state(), invite_server::State::Proceeding);
    assert_eq!(pair.server().poll_timeout(), None, "the TU owes the answer");
}

#[test]
fn reliable_rejection_ends_both_sides_at_once() {
    let mut pair = InvitePair::new(TCP).script(&[(0, 486)]);
    pair.drive();
    let packets: Vec<_> = pair.log.iter().map(|p| (p.at, p.text.as_str())).collect();
    assert_eq!(
        packets,
        [(ms(0), "INVITE"), (ms(0), "SIP/2.0 486"), (ms(0), "ACK")]
    );
    assert_eq!(pair.client_done(), Some(ms(0)));
    assert_eq!(pair.server_done(), Some(ms(0)));
}

#[test]
fn unacked_2xx_is_retransmitted_capped_at_t2_then_no_ack() {
    use invite_server::Event::{NoAck, Terminated};
    // The 2xx is retransmitted end to end (RFC 3261 §13.3.1.4): on TCP too.
    for reliable in [UDP, TCP] {
        let mut pair = InvitePair::new(reliable)
            .script(&[(0, 200)])
            .without_ack_2xx();
        pair.drive();
        let schedule = [
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
        ];
        assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 200"), times(&schedule));
        assert_eq!(
            pair.server_events,
            at(&[(32_000, NoAck), (32_000, Terminated)])
        );
        let to_tu: Vec<_> = schedule.iter().map(|&t| (t, 200)).collect();
        assert_eq!(pair.to_tu, at(&to_tu), "every 2xx reaches the client TU");
        assert_eq!(pair.client_done(), Some(ms(32_000)), "Timer M");
    }
}

#[test]
fn ok_retransmission_stops_at_the_ack_and_accepted_lasts_until_timer_l() {
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 200)])
        .link_to_server(Link::drop_first("ACK 2xx", 1));
    pair.drive_until(ms(20_000));
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 200"), times(&[0, 500]));
    assert_eq!(pair.sent(Dir::ToServer, "ACK 2xx"), times(&[0, 500]));
    assert_eq!(pair.server().state(), invite_server::State::Accepted);
    pair.drive();
    assert_eq!(
        pair.server_events,
        at(&[(32_000, invite_server::Event::Terminated)])
    );
    assert_eq!(pair.client_done(), Some(ms(32_000)));
}

#[test]
fn lost_ack_for_487_is_recovered_by_timer_g() {
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 180), (1000, 487)])
        .link_to_server(Link::drop_first("ACK", 1));
    pair.drive_until(ms(3000));
    assert_eq!(
        pair.sent(Dir::ToClient, "SIP/2.0 487"),
        times(&[1000, 1500])
    );
    assert_eq!(pair.sent(Dir::ToServer, "ACK"), times(&[1000, 1500]));
    assert_eq!(pair.server().state(), invite_server::State::Confirmed);
    pair.drive();
    assert_eq!(
        pair.to_tu,
        at(&[(0, 180), (1000, 487)]),
        "the 487 reaches the TU once"
    );
    assert_eq!(
        pair.server_events,
        at(&[(6500, invite_server::Event::Terminated)]),
        "Timer I"
    );
    assert_eq!(pair.client_done(), Some(ms(33_000)), "Timer D");
}

#[test]
fn unanswered_ack_for_486_times_out_with_timer_h() {
    use invite_server::Event::{Terminated, Timeout};
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 486)])
        .link_to_server(Link::drop_if(|_, packet| packet == "ACK"));
    pair.drive();
    let schedule = [
        0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
    ];
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 486"), times(&schedule));
    assert_eq!(
        pair.sent(Dir::ToServer, "ACK"),
        times(&schedule),
        "each copy is ACKed"
    );
    assert_eq!(pair.to_tu, at(&[(0, 486)]));
    assert_eq!(
        pair.server_events,
        at(&[(32_000, Timeout), (32_000, Terminated)])
    );
}

#[test]
fn rejection_retransmitted_after_completed_is_reacked_not_redelivered() {
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 404)])
        .link_to_server(Link::drop_first("ACK", 1));
    pair.drive();
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 404"), times(&[0, 500]));
    assert_eq!(pair.sent(Dir::ToServer, "ACK"), times(&[0, 500]));
    assert_eq!(pair.to_tu, at(&[(0, 404)]));
    assert_eq!(pair.server_done(), Some(ms(5500)));
    assert_eq!(pair.client_done(), Some(ms(32_000)));
}

#[test]
fn retransmitted_invite_in_proceeding_is_absorbed_before_a_provisional() {
    let mut pair = InvitePair::new(UDP).script(&[(2000, 486)]);
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0, 500, 1500]));
    let to_client: Vec<_> = pair
        .log
        .iter()
        .filter(|p| p.dir == Dir::ToClient)
        .map(|p| p.at)
        .collect();
    assert_eq!(to_client, times(&[2000]));
}

#[test]
fn retransmitted_invite_in_proceeding_gets_the_last_provisional() {
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 180), (5000, 486)])
        .link_to_client(Link::drop_nth(&[0]));
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0, 500]));
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 180"), times(&[0, 500]));
    assert_eq!(pair.to_tu, at(&[(500, 180), (5000, 486)]));
}

#[test]
fn retransmitted_invite_in_completed_gets_the_final() {
    // At 500 ms Timer A resends the INVITE and Timer G the 486: the server
    // answers the INVITE with the stored 486 too, and the client ACKs both.
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 486)])
        .link_to_client(Link::drop_nth(&[0]));
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0, 500]));
    assert_eq!(
        pair.sent(Dir::ToClient, "SIP/2.0 486"),
        times(&[0, 500, 500])
    );
    assert_eq!(pair.sent(Dir::ToServer, "ACK"), times(&[500, 500]));
    assert_eq!(pair.to_tu, at(&[(500, 486)]));
    assert_eq!(pair.server_done(), Some(ms(5500)));
}

#[test]
fn retransmitted_invite_in_accepted_is_absorbed() {
    let mut pair = InvitePair::new(UDP)
        .script(&[(0, 200)])
        .link_to_client(Link::drop_nth(&[0]));
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "INVITE"), times(&[0, 500]));
    assert_eq!(
        pair.sent(Dir::ToClient, "SIP/2.0 200"),
        times(&[0, 500]),
        "one copy at 500 ms"
    );
    assert_eq!(
        pair.server_events,
        at(&[(32_000, invite_server::Event::Terminated)])
    );
}

// ---------------------------------------------------------------------------
// Non-INVITE
// ---------------------------------------------------------------------------

#[test]
fn non_invite_timer_e_doubles_up_to_t2_then_timer_f() {
    use non_invite_client::Event::{Terminated, Timeout};
    let mut pair = NonInvitePair::new(UDP).link_to_server(Link::drop_all());
    pair.drive();
    assert_eq!(
        pair.sent(Dir::ToServer, "OPTIONS"),
        times(&[
            0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ])
    );
    assert_eq!(
        pair.client_events,
        at(&[(32_000, Timeout), (32_000, Terminated)])
    );
}

#[test]
fn non_invite_proceeding_retransmits_every_t2_then_timers_k_and_j() {
    let mut pair = NonInvitePair::new(UDP).script(&[(0, 100), (10_000, 200)]);
    pair.drive();
    assert_eq!(
        pair.sent(Dir::ToServer, "OPTIONS"),
        times(&[0, 500, 4500, 8500])
    );
    assert_eq!(
        pair.sent(Dir::ToClient, "SIP/2.0 100"),
        times(&[0, 500, 4500, 8500])
    );
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 200"), times(&[10_000]));
    assert_eq!(
        pair.to_tu,
        at(&[
            (0, 100),
            (500, 100),
            (4500, 100),
            (8500, 100),
            (10_000, 200)
        ])
    );
    assert_eq!(pair.client_done(), Some(ms(15_000)), "Timer K = T4");
    assert_eq!(pair.server_done(), Some(ms(42_000)), "Timer J = 64·T1");
}

#[test]
fn non_invite_lost_final_is_resent_from_completed() {
    let mut pair = NonInvitePair::new(UDP)
        .script(&[(0, 200)])
        .link_to_client(Link::drop_nth(&[0]));
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "OPTIONS"), times(&[0, 500]));
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 200"), times(&[0, 500]));
    assert_eq!(pair.to_tu, at(&[(500, 200)]));
    assert_eq!(pair.client_done(), Some(ms(5500)));
    assert_eq!(pair.server_done(), Some(ms(32_000)));
}

#[test]
fn non_invite_retransmitted_request_in_trying_is_absorbed() {
    let mut pair = NonInvitePair::new(UDP).script(&[(2000, 404)]);
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "OPTIONS"), times(&[0, 500, 1500]));
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 404"), times(&[2000]));
}

#[test]
fn non_invite_duplicate_final_reaches_the_tu_once() {
    // At 500 ms the TU answers and Timer E resends the request, which the
    // server answers from Completed: two 200s, one for the TU.
    let mut pair = NonInvitePair::new(UDP).script(&[(500, 200)]);
    pair.drive();
    assert_eq!(pair.sent(Dir::ToClient, "SIP/2.0 200"), times(&[500, 500]));
    assert_eq!(pair.to_tu, at(&[(500, 200)]));
}

#[test]
fn reliable_non_invite_has_no_retransmission_and_no_waiting() {
    let mut pair = NonInvitePair::new(TCP).script(&[(0, 200)]);
    pair.drive();
    let packets: Vec<_> = pair.log.iter().map(|p| (p.at, p.text.as_str())).collect();
    assert_eq!(packets, [(ms(0), "OPTIONS"), (ms(0), "SIP/2.0 200")]);
    assert_eq!(pair.client_done(), Some(ms(0)));
    assert_eq!(pair.server_done(), Some(ms(0)));

    let mut pair = NonInvitePair::new(TCP).link_to_server(Link::drop_all());
    pair.drive();
    assert_eq!(pair.sent(Dir::ToServer, "OPTIONS"), times(&[0]));
    assert_eq!(pair.client_done(), Some(ms(32_000)));
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Scenario {
    reliable: bool,
    provisional: Option<(u64, u16)>,
    answer: (u64, u16),
    ack_2xx: bool,
    drop_to_server: Vec<bool>,
    drop_to_client: Vec<bool>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let answer = prop_oneof![200..300u16, 300..700u16];
    (
        any::<bool>(),
        proptest::option::of((0..5_000u64, 100..200u16)),
        (0..20_000u64, answer),
        any::<bool>(),
        proptest::collection::vec(any::<bool>(), 0..10),
        proptest::collection::vec(any::<bool>(), 0..10),
    )
        .prop_map(
            |(reliable, provisional, answer, ack_2xx, drop_to_server, drop_to_client)| Scenario {
                reliable,
                provisional,
                answer,
                ack_2xx,
                drop_to_server,
                drop_to_client,
            },
        )
}

/// Runs `scenario` to the end and checks what holds for both kinds of pair.
fn run<C: Client, S: Server>(scenario: &Scenario) -> Pair<C, S> {
    let mut script: Vec<_> = scenario.provisional.into_iter().collect();
    script.push(scenario.answer);
    script.sort_by_key(|&(delay, _)| delay);
    let mut pair = Pair::<C, S>::new(scenario.reliable).script(&script);
    pair.ack_2xx = scenario.ack_2xx;
    if !scenario.reliable {
        pair.to_server = Link::pattern(scenario.drop_to_server.clone());
        pair.to_client = Link::pattern(scenario.drop_to_client.clone());
    }
    pair.drive();

    let timeout = pair.config.timeout();
    let t4 = pair.config.t4;
    // Every machine ends, Terminated last and once.
    assert!(
        pair.client.is_terminated(),
        "client stuck: {:?}",
        pair.client_events
    );
    assert_eq!(pair.client_events.last().map(|e| e.1), Some(C::TERMINATED));
    assert_eq!(
        pair.client_events
            .iter()
            .filter(|e| e.1 == C::TERMINATED)
            .count(),
        1
    );
    if let Some(server) = &pair.server {
        assert!(
            server.is_terminated(),
            "server stuck: {:?}",
            pair.server_events
        );
        assert_eq!(pair.server_events.last().map(|e| e.1), Some(S::TERMINATED));
        assert_eq!(
            pair.server_events
                .iter()
                .filter(|e| e.1 == S::TERMINATED)
                .count(),
            1
        );
    }
    // ... within 64·T1 of what it last waited for.
    let first_final_seen = pair
        .to_tu
        .iter()
        .find(|(_, code)| *code >= 200)
        .map(|(at, _)| *at);
    let client_done = pair.client_done().expect("terminated");
    assert!(client_done <= first_final_seen.unwrap_or_default() + timeout);
    if let Some(final_sent) = pair.first_final_sent() {
        assert!(pair.server_done().expect("terminated") <= final_sent + timeout + t4);
    }
    // The TU sees one non-2xx final response at most.
    assert!(pair.to_tu.iter().filter(|(_, code)| *code >= 300).count() <= 1);
    pair
}

impl<C: Client, S: Server> Pair<C, S> {
    fn first_final_sent(&self) -> Option<Duration> {
        let is_final = |p: &&Packet| status(&p.text).is_some_and(|code| code >= 200);
        self.log
            .iter()
            .filter(|p| p.dir == Dir::ToClient)
            .find(is_final)
            .map(|p| p.at)
    }

    /// Whether `text` reached the server before `deadline`.
    fn delivered_before(&self, text: &str, deadline: Duration) -> bool {
        self.log
            .iter()
            .any(|p| p.dir == Dir::ToServer && p.delivered && p.text == text && p.at < deadline)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Respond(u16),
    Request,
    Ack,
    Ack2xx,
    Response(u16),
    TransportError,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..40_000u64).prop_map(Op::Advance),
        3 => (0..800u16).prop_map(Op::Respond),
        2 => Just(Op::Request),
        2 => Just(Op::Ack),
        2 => Just(Op::Ack2xx),
        3 => (0..800u16).prop_map(Op::Response),
        1 => Just(Op::TransportError),
    ]
}

/// Applies random inputs to one machine at random (and late) times, then
/// fires its timers to the end. Whatever the inputs, the earliest deadline is
/// never more than 64·T1 after the last input, and a machine left running
/// waits for the peer or the TU, not for a timer.
fn fuzz<M: Machine>(
    create: impl FnOnce(Instant) -> M,
    ops: &[Op],
    mut apply: impl FnMut(&mut M, Instant, &Op),
) {
    let timeout = Config::default().timeout();
    let epoch = Instant::now();
    let mut machine = create(epoch);
    let mut now = epoch;
    let mut last_input = epoch;
    let mut events = Vec::new();
    let mut check = |machine: &mut M, now: Instant, last_input: Instant| {
        assert!(
            machine.poll_timeout().is_none_or(|at| at > now),
            "a timer due now"
        );
        assert!(
            machine
                .poll_timeout()
                .is_none_or(|at| at <= last_input + timeout)
        );
        while machine.poll_transmit().is_some() {}
        events.extend(std::iter::from_fn(|| machine.poll_event()));
    };
    for op in ops {
        match op {
            Op::Advance(delay) => {
                now += ms(*delay);
                machine.handle_timeout(now);
            }
            Op::TransportError => machine.transport_error(),
            op => {
                apply(&mut machine, now, op);
                last_input = now;
            }
        }
        check(&mut machine, now, last_input);
    }
    let mut fired = 0;
    while let Some(deadline) = machine.poll_timeout() {
        fired += 1;
        assert!(fired < 100, "timers never stop");
        now = deadline;
        machine.handle_timeout(now);
        check(&mut machine, now, last_input);
    }
    assert_eq!(
        machine.is_terminated(),
        events.last() == Some(&M::TERMINATED)
    );
    assert!(events.iter().filter(|e| **e == M::TERMINATED).count() <= 1);
    if machine.is_terminated() {
        assert_eq!(machine.poll_transmit(), None);
        assert_eq!(machine.poll_event(), None);
    } else {
        assert!(machine.waits_without_timer(), "idle without a timer");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn invite_pairs_terminate_under_any_loss(scenario in scenario()) {
        let pair = run::<InviteClient, InviteServer>(&scenario);
        let timeout = pair.config.timeout();
        let client_timed_out = pair.client_events.iter().any(|e| e.1 == invite_client::Event::Timeout);
        prop_assert_eq!(client_timed_out, pair.to_tu.is_empty());
        if let Some(final_sent) = pair.first_final_sent() {
            let deadline = final_sent + timeout;
            let server_events: Vec<_> = pair.server_events.iter().map(|e| e.1).collect();
            if (200..300).contains(&scenario.answer.1) {
                let acked = pair.delivered_before("ACK 2xx", deadline);
                prop_assert_eq!(!acked, server_events.contains(&invite_server::Event::NoAck));
            } else {
                let acked = pair.delivered_before("ACK", deadline);
                prop_assert_eq!(!acked, server_events.contains(&invite_server::Event::Timeout));
            }
        }
    }

    #[test]
    fn non_invite_pairs_terminate_under_any_loss(scenario in scenario()) {
        let pair = run::<NonInviteClient, NonInviteServer>(&scenario);
        let client_timed_out =
            pair.client_events.iter().any(|e| e.1 == non_invite_client::Event::Timeout);
        let final_seen = pair.to_tu.iter().any(|(_, code)| *code >= 200);
        prop_assert_eq!(client_timed_out, !final_seen);
    }

    #[test]
    fn machines_survive_any_input(reliable in any::<bool>(), ops in proptest::collection::vec(op(), 0..40)) {
        let config = Config::default();
        fuzz(|now| InviteServer::new(now, &config, reliable), &ops, |tx, now, op| match op {
            Op::Respond(code) => {
                tx.tu_respond(now, *code);
            }
            Op::Request => tx.on_request(now),
            Op::Ack => tx.on_ack(now),
            Op::Ack2xx => tx.on_ack_2xx(now),
            _ => {}
        });
        fuzz(|now| NonInviteServer::new(now, &config, reliable), &ops, |tx, now, op| match op {
            Op::Respond(code) => {
                tx.tu_respond(now, *code);
            }
            Op::Request => tx.on_request(now),
            _ => {}
        });
        fuzz(|now| <InviteClient as Client>::start(now, &config, reliable), &ops, |tx, now, op| {
            if let Op::Response(code) = op {
                tx.on_response(now, *code);
            }
        });
        fuzz(|now| <NonInviteClient as Client>::start(now, &config, reliable), &ops, |tx, now, op| {
            if let Op::Response(code) = op {
                tx.on_response(now, *code);
            }
        });
    }
}
