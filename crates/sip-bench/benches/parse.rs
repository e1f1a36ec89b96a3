//! Parse + typed top Via, From, To, Call-ID and CSeq with hotline-sip, rsip
//! and rsipstack on the same bytes, and an `Endpoint` OPTIONS → 200 round trip.
//!
//! `cargo bench -p hotline-sip-bench --bench parse` (add `-- --quick` for a
//! short run). Each benchmark is one message, so the time is ns/message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hotline_sip::endpoint::{self, Endpoint};
use hotline_sip_bench::comparators::{rsip_impl, rsipstack_impl};
use hotline_sip_bench::{Fields, fixtures, harness};

fn parse(c: &mut Criterion) {
    for (name, raw) in [
        ("invite", fixtures::invite()),
        ("options", fixtures::options()),
    ] {
        let mut group = c.benchmark_group(format!("parse_{name}"));
        group.throughput(Throughput::Elements(1));
        // Zero-copy: the shell hands the parser a `Bytes` it already owns.
        group.bench_function("hotline", |b| {
            b.iter(|| Fields::hotline(black_box(raw.clone())))
        });
        // Starting from a borrowed `&[u8]`, as the comparators do: one copy more.
        group.bench_function("hotline_copy", |b| {
            b.iter(|| Fields::hotline(Bytes::copy_from_slice(black_box(&raw[..]))))
        });
        group.bench_function("rsip", |b| {
            b.iter(|| rsip_impl::fields(black_box(&raw[..])))
        });
        group.bench_function("rsipstack", |b| {
            b.iter(|| rsipstack_impl::fields(black_box(&raw[..])))
        });
        group.finish();
    }
}

fn endpoint_round_trip(c: &mut Criterion) {
    let [peer, ..] = harness::peers();
    let mut group = c.benchmark_group("endpoint_options");
    group.throughput(Throughput::Elements(1));

    // A fresh endpoint for each OPTIONS: parse, validate, new transaction, build the 200.
    let raw = fixtures::options();
    group.bench_function("fresh", |b| {
        let now = Instant::now();
        b.iter_batched_ref(
            || Endpoint::new(endpoint::Config::default()),
            |ep| {
                ep.handle_datagram(now, peer, raw.clone());
                ep.poll_transmit()
            },
            BatchSize::SmallInput,
        );
    });

    // One long-lived endpoint at 100 OPTIONS/s of fake time: 4096 distinct
    // transactions, 10 ms apart, so about 3200 (64·T1 = 32 s of them) are
    // alive and expire through `handle_timeout` as in a real server.
    let messages: Vec<Bytes> = (0..4096).map(fixtures::options_numbered).collect();
    group.bench_function("steady_100_per_s", |b| {
        let mut ep = Endpoint::new(endpoint::Config::default());
        let mut now = Instant::now();
        let mut i = 0;
        b.iter(|| {
            now += Duration::from_millis(10);
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
            ep.handle_datagram(now, peer, messages[i % messages.len()].clone());
            i += 1;
            ep.poll_transmit()
        });
    });
    group.finish();
}

criterion_group!(benches, parse, endpoint_round_trip);
criterion_main!(benches);
