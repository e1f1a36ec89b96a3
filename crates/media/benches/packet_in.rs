//! The per-packet "packet in" path of a recording, and its parts.
//!
//! `packet_in/no_file`: RTP parse, reorder buffer push (and the frames it
//! releases), G.711 decode of 160 bytes. `packet_in/with_file`: the same plus
//! `write_frame` into a [`Recorder`] in a temporary directory, with a header
//! refresh every 50 packets (once a second of audio), as the call task does.
//! The difference is the cost of the file. The stream is reordered (two packets
//! of every eight swap places) so the reorder buffer holds packets back.
//!
//! `parts/*`: each step alone. Every figure is per packet (20 ms of audio).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotline_media::g711::{Law, decode_into};
use hotline_media::recorder::Recorder;
use hotline_media::reorder::{Frame, ReorderBuffer, ReorderConfig};
use hotline_media::rtp::{self, RtpSender};

/// Packets in one recording of the `with_file` bench: 10 minutes of audio, 9.6 MB.
const PACKETS_PER_FILE: u64 = 30_000;
/// Arrival order within each block of eight: 2↔3 and 6↔7 swapped.
const ORDER: [u16; 8] = [0, 1, 3, 2, 4, 5, 7, 6];

/// A datagram whose sequence number and timestamp are rewritten per packet.
struct Stream {
    datagram: Vec<u8>,
    n: u64,
}

impl Stream {
    fn new() -> Self {
        let payload: Vec<u8> = (0..160u32).map(|i| (i * 37 % 256) as u8).collect();
        let mut datagram = vec![0u8; 1500];
        let len = RtpSender::new(0x1234_5678, 0, 0)
            .packet_into(Law::Mu.payload_type(), false, &payload, &mut datagram)
            .expect("packet fits");
        datagram.truncate(len);
        Self { datagram, n: 0 }
    }

    /// The next datagram to arrive.
    fn next(&mut self) -> &[u8] {
        let seq = ((self.n / 8) as u16)
            .wrapping_mul(8)
            .wrapping_add(ORDER[(self.n % 8) as usize]);
        let ts = u32::from(seq).wrapping_mul(160);
        self.datagram[2..4].copy_from_slice(&seq.to_be_bytes());
        self.datagram[4..8].copy_from_slice(&ts.to_be_bytes());
        self.n += 1;
        &self.datagram
    }
}

/// Everything before the file: parse, reorder, decode; `sink` gets each 20 ms of PCM.
struct PacketIn {
    stream: Stream,
    reorder: ReorderBuffer,
    pcm: [i16; 160],
}

impl PacketIn {
    fn new() -> Self {
        Self {
            stream: Stream::new(),
            reorder: ReorderBuffer::new(ReorderConfig::default()),
            pcm: [0; 160],
        }
    }

    fn packet(&mut self, mut sink: impl FnMut(&[i16])) {
        let datagram = self.stream.next();
        let packet = rtp::parse(datagram).expect("valid RTP");
        let Some(law) = Law::from_payload_type(packet.payload_type) else {
            return;
        };
        let pcm = &mut self.pcm;
        self.reorder
            .push(&packet, |frame| match frame {
                Frame::Audio { payload, .. } => {
                    let n = decode_into(law, payload, pcm);
                    sink(&pcm[..n]);
                }
                Frame::Silence { samples, .. } => {
                    // Not in this stream; kept so the path is the real one.
                    let n = (samples as usize).min(pcm.len());
                    pcm[..n].fill(0);
                    sink(&pcm[..n]);
                }
            })
            .expect("payload fits");
    }
}

fn packet_in(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet_in");
    g.throughput(Throughput::Elements(1));

    g.bench_function("no_file", |b| {
        let mut p = PacketIn::new();
        b.iter(|| {
            p.packet(|pcm| {
                black_box(pcm);
            });
        });
    });

    let dir = tempfile::tempdir().expect("temporary directory");
    g.bench_function("with_file", |b| {
        let mut p = PacketIn::new();
        let mut files = 0u64;
        b.iter_custom(|iters| {
            // Creating, finishing and deleting files (fsyncs) is not per packet:
            // only the packets are timed.
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(PACKETS_PER_FILE);
                files += 1;
                let mut rec =
                    Recorder::create(dir.path(), &format!("bench-{files}"), 1).expect("recorder");
                let start = Instant::now();
                for _ in 0..n {
                    p.packet(|pcm| rec.write_frame(pcm).expect("write"));
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

fn parts(c: &mut Criterion) {
    let mut g = c.benchmark_group("parts");
    g.throughput(Throughput::Elements(1));

    g.bench_function("rtp_parse", |b| {
        let mut s = Stream::new();
        let datagram = s.next().to_vec();
        b.iter(|| black_box(rtp::parse(black_box(&datagram)).expect("valid RTP")));
    });

    g.bench_function("reorder_push", |b| {
        let mut s = Stream::new();
        let mut reorder = ReorderBuffer::new(ReorderConfig::default());
        b.iter(|| {
            let packet = rtp::parse(s.next()).expect("valid RTP");
            reorder
                .push(&packet, |frame| {
                    black_box(frame);
                })
                .expect("payload fits")
        });
    });

    g.bench_function("g711_decode_160", |b| {
        let payload: Vec<u8> = (0..160u32).map(|i| (i * 37 % 256) as u8).collect();
        let mut pcm = [0i16; 160];
        b.iter(|| decode_into(Law::Mu, black_box(&payload), black_box(&mut pcm)));
    });

    let dir = tempfile::tempdir().expect("temporary directory");
    g.bench_function("write_frame_160", |b| {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16_000) as i16).collect();
        let mut files = 0u64;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(PACKETS_PER_FILE);
                files += 1;
                let mut rec =
                    Recorder::create(dir.path(), &format!("frames-{files}"), 1).expect("recorder");
                let start = Instant::now();
                for _ in 0..n {
                    rec.write_frame(black_box(&pcm)).expect("write");
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

    let mut runs = 0;
    g.bench_function("refresh_header", |b| {
        let pcm = [1000i16; 160];
        runs += 1;
        let mut rec =
            Recorder::create(dir.path(), &format!("refresh-{runs}"), 1).expect("recorder");
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // 50 packets (one second), untimed, then the refresh, timed.
                for _ in 0..50 {
                    if rec.frames() > 8000 * 600 {
                        break;
                    }
                    rec.write_frame(&pcm).expect("write");
                }
                let start = Instant::now();
                rec.refresh_header().expect("refresh");
                total += start.elapsed();
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, packet_in, parts);
criterion_main!(benches);
