//! The two-leg bridge: a caller leg and an operator leg, each a `Session` with its
//! own law, payload types and numbering, relaying to each other, and the
//! conversation recorded in stereo.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hotline_media::bridge::{ConversationMixer, Side};
use hotline_media::dtmf::TelephoneEvent;
use hotline_media::g711::Law;
use hotline_media::goertzel::tone_power;
use hotline_media::prompt::Prompt;
use hotline_media::recorder::Recorder;
use hotline_media::rtp::{self, RtpSender};
use hotline_media::session::{Channel, MediaEvent, RelayKind, Session, SessionConfig};

const CALLER: &str = "192.0.2.10:7000";
const OPERATOR: &str = "198.51.100.20:9000";
/// The caller's phone's SSRC and the operator's softphone's.
const CALLER_SSRC: u32 = 0xCA11_0001;
const OPERATOR_SSRC: u32 = 0x0BE2_0001;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A leg: `law` with `pt`, telephone-event `dtmf`, and our numbering.
fn leg(
    law: Law,
    pt: u8,
    dtmf: Option<u8>,
    remote: &str,
    ssrc: u32,
    seq: u16,
    ts: u32,
) -> SessionConfig {
    SessionConfig {
        law,
        payload_type: pt,
        dtmf_payload_type: dtmf,
        remote: addr(remote),
        ssrc,
        sequence: seq,
        timestamp: ts,
        cname: "hotline".into(),
    }
}

/// A datagram from a phone: exactly these header fields.
fn datagram(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 600];
    let n = RtpSender::new(ssrc, 0, 0)
        .relay_into(pt, marker, seq, ts, 0, payload, &mut buf)
        .unwrap();
    buf[..n].to_vec()
}

/// A packet as it left a session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    dest: SocketAddr,
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn sent(s: &mut Session) -> Vec<Sent> {
    std::iter::from_fn(|| s.poll_transmit())
        .filter(|(ch, _, _)| *ch == Channel::Rtp)
        .map(|(_, dest, t)| {
            let p = rtp::parse(&t).unwrap();
            Sent {
                dest,
                pt: p.payload_type,
                marker: p.marker,
                seq: p.sequence,
                ts: p.timestamp,
                ssrc: p.ssrc,
                payload: p.payload.to_vec(),
            }
        })
        .collect()
}

/// The caller (PCMU, PT 0, events 101) and operator (PCMA, PT 8, events 96) legs,
/// both bridged.
struct Bridge {
    caller: Session,
    operator: Session,
}

impl Bridge {
    fn new(t0: Instant, caller_leg: SessionConfig, operator_leg: SessionConfig) -> Self {
        let mut b = Self {
            caller: Session::new(t0, SystemTime::now(), caller_leg),
            operator: Session::new(t0, SystemTime::now(), operator_leg),
        };
        b.caller.set_bridged(true);
        b.operator.set_bridged(true);
        b
    }

    fn mixed(t0: Instant) -> Self {
        Self::new(
            t0,
            leg(Law::Mu, 0, Some(101), CALLER, 0x1111, 100, 1000),
            leg(Law::A, 8, Some(96), OPERATOR, 0x2222, 60_000, 4_000_000_000),
        )
    }

    /// The caller's phone sends a datagram; what the operator leg sends.
    fn caller_sends(&mut self, now: Instant, datagram: &[u8]) -> Vec<Sent> {
        self.caller.handle_rtp(now, addr(CALLER), datagram);
        while let Some(p) = self.caller.poll_relay() {
            self.operator.send_relayed(now, &p);
        }
        sent(&mut self.operator)
    }

    /// The operator's phone sends a datagram; what the caller leg sends.
    fn operator_sends(&mut self, now: Instant, datagram: &[u8]) -> Vec<Sent> {
        self.operator.handle_rtp(now, addr(OPERATOR), datagram);
        while let Some(p) = self.operator.poll_relay() {
            self.caller.send_relayed(now, &p);
        }
        sent(&mut self.caller)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `len` samples of a sine at `freq`, amplitude `amp` of full scale, from sample `n0`.
fn sine(freq: f32, amp: f32, n0: usize, len: usize) -> Vec<i16> {
    (n0..n0 + len)
        .map(|n| (amp * 32767.0 * (std::f32::consts::TAU * freq * n as f32 / 8000.0).sin()) as i16)
        .collect()
}

fn encode(law: Law, pcm: &[i16]) -> Vec<u8> {
    pcm.iter().map(|&s| law.encode(s)).collect()
}

/// Half the quantisation step of `law` around a decoded value, plus the low bits it drops.
fn requantisation_bound(law: Law, y: i16) -> i32 {
    let code = law.encode(y);
    match law {
        Law::Mu => (4 << ((!code >> 4) & 7)) + 3,
        Law::A => (8 << (((code ^ 0x55) >> 4) & 7).saturating_sub(1)) + 7,
    }
}

#[test]
fn same_law_relay_copies_payload_bytes_exactly() {
    let t0 = Instant::now();
    let mut b = Bridge::new(
        t0,
        leg(Law::A, 8, Some(101), CALLER, 0x1111, 1, 1),
        leg(Law::A, 8, Some(101), OPERATOR, 0x2222, 500, 80_000),
    );
    // Every code, in two packets of 128 and one of 240 (30 ms).
    let codes: Vec<u8> = (0..=255).collect();
    let mut out = vec![];
    for (i, payload) in [&codes[..128], &codes[128..], &[0x2A; 240][..]]
        .into_iter()
        .enumerate()
    {
        let dg = datagram(
            8,
            false,
            7 + i as u16,
            123 + 160 * i as u32,
            CALLER_SSRC,
            payload,
        );
        out.extend(b.caller_sends(t0 + ms(20 * i as u64), &dg));
    }
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].payload, &codes[..128]);
    assert_eq!(out[1].payload, &codes[128..]);
    assert_eq!(out[2].payload, &[0x2A; 240]);
    for p in &out {
        assert_eq!((p.dest, p.pt, p.ssrc), (addr(OPERATOR), 8, 0x2222));
    }
    // The operator leg's own numbering, the source's spacing.
    let numbers: Vec<_> = out.iter().map(|p| (p.seq, p.ts, p.marker)).collect();
    assert_eq!(
        numbers,
        [
            (500, 80_000, true),
            (501, 80_160, false),
            (502, 80_320, false)
        ]
    );
    let stats = b.operator.stats();
    assert_eq!((stats.packets_sent, stats.octets_sent), (3, 496));
}

#[test]
fn pcmu_to_pcma_and_back_decodes_to_the_same_pcm() {
    let t0 = Instant::now();
    let mut b = Bridge::mixed(t0);
    let tone = sine(1000.0, 0.7, 0, 1600);
    let ramp: Vec<i16> = (0..1600).map(|i| (i * 41 - 32_800) as i16).collect();
    for (i, pcm) in tone.chunks(160).chain(ramp.chunks(160)).enumerate() {
        let at = t0 + ms(20 * i as u64);
        let (seq, ts) = (i as u16, 160 * i as u32);
        // Caller (µ-law) to operator (A-law).
        let mu = encode(Law::Mu, pcm);
        let out = b.caller_sends(at, &datagram(0, false, seq, ts, CALLER_SSRC, &mu));
        assert_eq!((out.len(), out[0].pt), (1, 8));
        for (&c, &a) in mu.iter().zip(&out[0].payload) {
            let (x, y) = (Law::Mu.decode(c), Law::A.decode(a));
            let bound = requantisation_bound(Law::A, y).max(i32::from(x.abs()) - 32_256);
            assert!(
                (i32::from(x) - i32::from(y)).abs() <= bound,
                "µ {x} → A {y}"
            );
        }
        // Operator (A-law) to caller (µ-law).
        let alaw = encode(Law::A, pcm);
        let out = b.operator_sends(at, &datagram(8, false, seq, ts, OPERATOR_SSRC, &alaw));
        assert_eq!((out.len(), out[0].pt), (1, 0));
        for (&c, &m) in alaw.iter().zip(&out[0].payload) {
            let (x, y) = (Law::A.decode(c), Law::Mu.decode(m));
            let bound = requantisation_bound(Law::Mu, y).max(i32::from(x.abs()) - 32_124);
            assert!(
                (i32::from(x) - i32::from(y)).abs() <= bound,
                "A {x} → µ {y}"
            );
        }
    }
}

#[test]
fn prompt_then_bridge_then_new_source_continue_the_numbering() {
    let t0 = Instant::now();
    let mut op = Session::new(
        t0,
        SystemTime::now(),
        leg(Law::A, 8, Some(96), OPERATOR, 0x2222, 100, 1000),
    );
    // "Connecting you": 60 ms of prompt at 0, 20 and 40 ms.
    op.enqueue(Arc::new(Prompt::from_pcm(sine(440.0, 0.3, 0, 480))));
    for n in 0..3 {
        op.handle_timeout(t0 + ms(20 * n));
    }
    let prompt = sent(&mut op);
    let numbers: Vec<_> = prompt.iter().map(|p| (p.seq, p.ts)).collect();
    assert_eq!(numbers, [(100, 1000), (101, 1160), (102, 1320)]);
    // The caller answers at 50 ms; the operator leg relays the caller's audio.
    op.set_bridged(true);
    assert_eq!(op.poll_timeout(), t0 + Duration::from_secs(5));
    let relay = |seq: u16, ts: u32, ssrc: u32, marker: bool| {
        hotline_media::session::RelayPacket::new(
            RelayKind::Audio(Law::Mu),
            marker,
            seq,
            ts,
            ssrc,
            &[0xFF; 160],
        )
        .unwrap()
    };
    let mut out = vec![];
    for i in 0..5u16 {
        let at = t0 + ms(50 + 20 * u64::from(i));
        op.send_relayed(
            at,
            &relay(40_000 + i, 3_000_000 + 160 * u32::from(i), 7, false),
        );
        // Ticks while bridged send nothing and move nothing.
        op.handle_timeout(at);
        out.extend(sent(&mut op));
    }
    assert_eq!(out.len(), 5);
    // Next sequence number, a timestamp right after the last frame sent (which
    // covered 40-60 ms, ahead of the session's clock at 50 ms), marked.
    assert_eq!(
        (out[0].seq, out[0].ts, out[0].marker),
        (103, 1320 + 160, true)
    );
    for (k, p) in out.iter().enumerate().skip(1) {
        assert_eq!(
            (p.seq, p.ts, p.marker, p.ssrc),
            (103 + k as u16, 1480 + 160 * k as u32, false, 0x2222)
        );
    }
    // The caller's phone restarts its stream (new SSRC, new numbers) at once.
    let at = t0 + ms(150);
    op.send_relayed(at, &relay(9, 55, 8, false));
    op.send_relayed(at + ms(20), &relay(10, 215, 8, false));
    let out = sent(&mut op);
    assert_eq!((out[0].seq, out[0].marker), (108, true));
    assert_eq!(out[0].ts, 1480 + 4 * 160 + 160);
    assert_eq!(
        (out[1].seq, out[1].ts, out[1].marker),
        (109, out[0].ts + 160, false)
    );
    // A wrapped sequence number and timestamp continue through the wrap.
    op.send_relayed(at + ms(40), &relay(u16::MAX, u32::MAX - 100, 9, false));
    op.send_relayed(at + ms(60), &relay(0, 59, 9, false));
    let out = sent(&mut op);
    assert_eq!((out[0].seq, out[1].seq), (110, 111));
    assert_eq!(out[1].ts.wrapping_sub(out[0].ts), 160);
}

#[test]
fn loss_and_reordering_pass_through_as_gaps_of_the_same_size() {
    let t0 = Instant::now();
    let mut b = Bridge::mixed(t0);
    // 12 and 13 lost, 16 and 17 swapped.
    let mut out = vec![];
    for (i, seq) in [10u16, 11, 14, 15, 17, 16, 18].into_iter().enumerate() {
        let ts = 50_000 + 160 * u32::from(seq - 10);
        let dg = datagram(0, false, seq, ts, CALLER_SSRC, &[0xEE; 160]);
        out.extend(b.caller_sends(t0 + ms(20 * i as u64), &dg));
    }
    let base = (out[0].seq, out[0].ts);
    let offsets: Vec<_> = out
        .iter()
        .map(|p| (p.seq.wrapping_sub(base.0), p.ts.wrapping_sub(base.1)))
        .collect();
    assert_eq!(
        offsets,
        [
            (0, 0),
            (1, 160),
            (4, 640),
            (5, 800),
            (7, 1120),
            (6, 960),
            (8, 1280)
        ]
    );
    // A straggler from before the first packet relayed would reuse a number
    // already sent: dropped.
    let dg = datagram(0, false, 9, 49_840, CALLER_SSRC, &[0xEE; 160]);
    assert!(b.caller_sends(t0 + ms(200), &dg).is_empty());
    assert_eq!(b.operator.stats().relay_dropped, 1);
}

#[test]
fn rfc4733_events_pass_with_the_other_legs_payload_type() {
    let t0 = Instant::now();
    let mut b = Bridge::mixed(t0);
    let audio = datagram(0, false, 1, 8000, CALLER_SSRC, &[0xFF; 160]);
    let first = b.caller_sends(t0, &audio);
    // Key 5: start (marked), two updates, the end packet and its three
    // retransmissions (RFC 4733 §2.5.1.4), all with the event's timestamp.
    let mut payloads = vec![];
    let mut out = vec![];
    for k in 0..6u16 {
        let ev = TelephoneEvent {
            event: 5,
            end: k >= 3,
            volume: 10,
            duration: 160 * (k.min(3) + 1),
        }
        .to_bytes();
        payloads.push(ev.to_vec());
        let dg = datagram(101, k == 0, 2 + k, 8160, CALLER_SSRC, &ev);
        out.extend(b.caller_sends(t0 + ms(20 + 20 * u64::from(k)), &dg));
    }
    assert_eq!(out.len(), 6);
    for (k, p) in out.iter().enumerate() {
        assert_eq!(p.pt, 96);
        assert_eq!(p.payload, payloads[k]);
        assert_eq!(p.seq, first[0].seq + 1 + k as u16);
        assert_eq!(p.ts, first[0].ts + 160);
        assert_eq!(p.marker, k == 0);
        assert_eq!(p.ssrc, 0x2222);
    }
    // Not IVR input while bridged.
    let events: Vec<_> = std::iter::from_fn(|| b.caller.poll_event()).collect();
    assert!(
        !events.iter().any(|e| matches!(e, MediaEvent::Digit(_))),
        "{events:?}"
    );
    // An operator leg with no telephone-event drops and counts them.
    let mut b = Bridge::new(
        t0,
        leg(Law::Mu, 0, Some(101), CALLER, 0x1111, 100, 1000),
        leg(Law::A, 8, None, OPERATOR, 0x2222, 1, 1),
    );
    for k in 0..4u16 {
        let ev = TelephoneEvent {
            event: 11,
            end: k >= 1,
            volume: 10,
            duration: 400,
        };
        let dg = datagram(101, false, k, 0, CALLER_SSRC, &ev.to_bytes());
        assert!(b.caller_sends(t0, &dg).is_empty());
    }
    assert_eq!(b.operator.stats().events_dropped, 4);
    assert_eq!(b.operator.stats().packets_sent, 0);
}

#[test]
fn hold_drops_and_the_stream_resumes_without_a_gap() {
    let t0 = Instant::now();
    let mut b = Bridge::mixed(t0);
    let send = |b: &mut Bridge, i: u16| {
        let dg = datagram(0, false, i, 160 * u32::from(i), CALLER_SSRC, &[0x80; 160]);
        b.caller_sends(t0 + ms(20 * u64::from(i)), &dg)
    };
    let before: Vec<_> = (0..3).flat_map(|i| send(&mut b, i)).collect();
    // The operator puts the caller on hold (sendonly): nothing goes to them.
    b.operator.set_sending(false);
    for i in 3..53 {
        assert!(send(&mut b, i).is_empty());
    }
    assert_eq!(b.operator.stats().relay_dropped, 50);
    b.operator.set_sending(true);
    let after = send(&mut b, 53);
    let last = before.last().unwrap();
    assert_eq!(after[0].seq, last.seq + 1);
    assert!(after[0].marker);
    // A second later on the clock, not right after the last packet sent.
    assert!(after[0].ts.wrapping_sub(last.ts) >= 50 * 160, "{after:?}");
    assert_eq!(send(&mut b, 54)[0].seq, last.seq + 2);
    // No address to send to (an SDP with 0.0.0.0) drops too.
    b.operator.relearn(addr("0.0.0.0:9000"));
    assert!(send(&mut b, 55).is_empty());
    assert_eq!(b.operator.stats().relay_dropped, 51);
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn conversation_recording_has_each_side_on_its_channel_and_lasts_the_bridge() {
    let t0 = Instant::now();
    let mut b = Bridge::mixed(t0);
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Recorder::create(dir.path(), "conversation", 2).unwrap();
    let mut mixer = ConversationMixer::new(t0);
    // 10 s of 20 ms packets each way: 1 kHz from the caller, 400 Hz from the
    // operator, each delayed by up to 40 ms, 2 % lost.
    let mut rng = Rng(0x5EED_0FB4_1D6E);
    let mut arrivals = vec![];
    let mut lost = 0;
    for (side, freq, law, pt, ssrc) in [
        (Side::Caller, 1000.0, Law::Mu, 0, CALLER_SSRC),
        (Side::Operator, 400.0, Law::A, 8, OPERATOR_SSRC),
    ] {
        for i in 0..500u16 {
            if rng.next() < 0.02 {
                lost += 1;
                continue;
            }
            let pcm = sine(freq, 0.5, 160 * usize::from(i), 160);
            let dg = datagram(
                pt,
                i == 0,
                30_000 + i,
                160 * u32::from(i),
                ssrc,
                &encode(law, &pcm),
            );
            let at = 20_000 * u64::from(i) + (rng.next() * 40_000.0) as u64;
            arrivals.push((at, side, dg));
        }
    }
    assert!((10..=30).contains(&lost), "{lost}");
    arrivals.sort_by_key(|(at, _, _)| *at);
    let end = t0 + Duration::from_secs(10);
    let mut next_tick = t0;
    let mut relayed = [0, 0];
    for (at, side, dg) in arrivals {
        let at = t0 + Duration::from_micros(at);
        if at >= end {
            break;
        }
        while next_tick <= at {
            mixer.tick(next_tick, &mut rec).unwrap();
            next_tick += ms(20);
        }
        let (from, to, source) = match side {
            Side::Caller => (&mut b.caller, &mut b.operator, CALLER),
            Side::Operator => (&mut b.operator, &mut b.caller, OPERATOR),
        };
        from.handle_rtp(at, addr(source), &dg);
        while let Some(p) = from.poll_relay() {
            mixer.push(at, side, &p);
            to.send_relayed(at, &p);
        }
        relayed[side as usize] += sent(to).len();
    }
    mixer.finish(end, &mut rec).unwrap();
    let stats = mixer.stats();
    assert_eq!(stats.late + stats.overrun, 0, "{stats:?}");
    assert_eq!(stats.anchors, 2);
    assert_eq!(stats.packets as usize, relayed[0] + relayed[1]);
    let done = rec.finish().unwrap();
    assert_eq!(done.duration_ms, 10_000);

    let mut r = hound::WavReader::open(&done.path).unwrap();
    assert_eq!(r.spec().channels, 2);
    let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    assert!(left.len().abs_diff(80_000) <= 160, "{}", left.len());
    // Each second on its own, so that a swap or a silent stretch shows.
    for (second, (l, r)) in left.chunks(8000).zip(right.chunks(8000)).enumerate() {
        let (l1k, l400) = (tone_power(l, 1000.0), tone_power(l, 400.0));
        let (r1k, r400) = (tone_power(r, 1000.0), tone_power(r, 400.0));
        // A sine of half full scale has power 0.25; the first second starts
        // up to 40 ms late and a few packets are lost.
        assert!(l1k > 0.15 && r400 > 0.15, "second {second}: {l1k} {r400}");
        assert!(l400 < l1k / 1000.0, "second {second}: left 400 Hz {l400}");
        assert!(r1k < r400 / 1000.0, "second {second}: right 1 kHz {r1k}");
    }
}
