//! The bridge: what one relayed packet and one recorded packet pair cost.
//!
//! `relay/same_law` and `relay/transcoded`: a datagram received on one leg
//! (`handle_rtp`: source check, parse, into the relay queue), taken out
//! (`poll_relay`), sent on the other leg (`send_relayed`: renumbering, payload
//! copied or transcoded PCMU→PCMA, header written) and drained
//! (`poll_transmit`): everything the call task does per packet but the two
//! system calls. The clock is fake: 20 ms per packet.
//!
//! `mixer/push_pair`: one caller and one operator packet decoded onto the
//! conversation's timeline. `mixer/push_tick_pair`: the same plus the tick that
//! writes a 20 ms stereo frame into a [`Recorder`] in a temporary directory,
//! with a header refresh once a second of audio, as the call task does.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_media::bridge::{ConversationMixer, Side};
use hotline_media::g711::Law;
use hotline_media::recorder::Recorder;
use hotline_media::rtp::RtpSender;
use hotline_media::session::{RelayKind, RelayPacket, Session, SessionConfig};

const PTIME: Duration = Duration::from_millis(20);
/// Packet pairs in one recording of the `push_tick_pair` bench: 10 minutes.
const PAIRS_PER_FILE: u64 = 30_000;

fn leg(law: Law, remote: &str, ssrc: u32) -> SessionConfig {
    SessionConfig {
        law,
        payload_type: law.payload_type(),
        dtmf_payload_type: Some(101),
        remote: remote.parse().expect("address"),
        ssrc,
        sequence: 1,
        timestamp: 1,
        cname: "bench".into(),
    }
}

fn payload() -> Vec<u8> {
    (0..160u32).map(|i| (i * 37 % 256) as u8).collect()
}

/// A caller leg receiving PCMU, an operator leg sending `law`, both bridged.
struct Relay {
    caller: Session,
    operator: Session,
    from: SocketAddr,
    datagram: Vec<u8>,
    now: Instant,
    n: u32,
}

impl Relay {
    fn new(operator_law: Law) -> Self {
        let now = Instant::now();
        let mut caller = Session::new(
            now,
            SystemTime::now(),
            leg(Law::Mu, "192.0.2.10:7000", 0x1111),
        );
        let mut operator = Session::new(
            now,
            SystemTime::now(),
            leg(operator_law, "198.51.100.20:9000", 0x2222),
        );
        caller.set_bridged(true);
        operator.set_bridged(true);
        let mut datagram = vec![0u8; 1500];
        let len = RtpSender::new(0xCA11, 0, 0)
            .packet_into(0, false, &payload(), &mut datagram)
            .expect("packet fits");
        datagram.truncate(len);
        Self {
            caller,
            operator,
            from: "192.0.2.10:7000".parse().expect("address"),
            datagram,
            now,
            n: 0,
        }
    }

    fn packet(&mut self) {
        self.n = self.n.wrapping_add(1);
        self.now += PTIME;
        self.datagram[2..4].copy_from_slice(&(self.n as u16).to_be_bytes());
        self.datagram[4..8].copy_from_slice(&self.n.wrapping_mul(160).to_be_bytes());
        self.caller
            .handle_rtp(self.now, self.from, black_box(&self.datagram));
        while let Some(p) = self.caller.poll_relay() {
            self.operator.send_relayed(self.now, &p);
        }
        while let Some(t) = self.operator.poll_transmit() {
            black_box(t);
        }
    }
}

fn relay(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    for (name, law) in [("same_law", Law::Mu), ("transcoded", Law::A)] {
        g.bench_function(name, |b| {
            let mut r = Relay::new(law);
            b.iter(|| r.packet());
        });
    }
    g.finish();
}

/// One packet from each side, renumbered per pair.
struct Pair {
    caller: RelayPacket,
    operator: RelayPacket,
    now: Instant,
    n: u32,
}

impl Pair {
    fn new(now: Instant) -> Self {
        let audio = |law, ssrc| {
            RelayPacket::new(RelayKind::Audio(law), false, 0, 0, ssrc, &payload()).expect("fits")
        };
        Self {
            caller: audio(Law::Mu, 1),
            operator: audio(Law::A, 2),
            now,
            n: 0,
        }
    }

    fn push(&mut self, mixer: &mut ConversationMixer) {
        self.n = self.n.wrapping_add(1);
        self.now += PTIME;
        for p in [&mut self.caller, &mut self.operator] {
            p.sequence = self.n as u16;
            p.timestamp = self.n.wrapping_mul(160);
        }
        mixer.push(self.now, Side::Caller, black_box(&self.caller));
        mixer.push(self.now, Side::Operator, black_box(&self.operator));
    }
}

fn mixer(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixer");
    g.throughput(Throughput::Elements(1));

    g.bench_function("push_pair", |b| {
        let t0 = Instant::now();
        let mut mixer = ConversationMixer::new(t0);
        let pair = Pair::new(t0);
        // Nothing is written, so the same place over and over: it stays in the ring.
        b.iter(|| {
            mixer.push(t0, Side::Caller, black_box(&pair.caller));
            mixer.push(t0, Side::Operator, black_box(&pair.operator));
        });
    });

    let dir = tempfile::tempdir().expect("temporary directory");
    g.bench_function("push_tick_pair", |b| {
        let mut files = 0u64;
        b.iter_custom(|iters| {
            // Creating and deleting files (fsyncs) is not per packet: only the
            // packets are timed.
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(PAIRS_PER_FILE);
                files += 1;
                let mut rec =
                    Recorder::create(dir.path(), &format!("conv-{files}"), 2).expect("recorder");
                let t0 = Instant::now();
                let mut mixer = ConversationMixer::new(t0);
                let mut pair = Pair::new(t0);
                let start = Instant::now();
                for _ in 0..n {
                    pair.push(&mut mixer);
                    mixer.tick(pair.now, &mut rec).expect("write");
                    rec.maybe_refresh().expect("refresh");
                }
                total += start.elapsed();
                let part = rec.part_path().to_path_buf();
                drop(rec);
                std::fs::remove_file(part).expect("remove");
                left -= n;
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, relay, mixer);
criterion_main!(benches);
