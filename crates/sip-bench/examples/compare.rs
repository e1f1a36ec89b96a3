//! Runs each parser N times on the same INVITE and OPTIONS and prints one line
//! per message with ns/message and the ratio to hotline-sip.
//!
//! `cargo run --release -p hotline-sip-bench --example compare [N]` (default 20000).
//! Best of 5 rounds; for careful numbers use `cargo bench --bench parse`.
//!
//! `compare --only PARSER N` (PARSER: hotline, rsip or rsipstack) just parses
//! the INVITE N times, for an instruction count that a loaded machine cannot
//! disturb: run it under `valgrind --tool=callgrind` for two values of N and
//! divide the difference in instructions by the difference in N.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use hotline_sip_bench::comparators::{rsip_impl, rsipstack_impl};
use hotline_sip_bench::{Fields, fixtures};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, parser, n] = &args[..]
        && flag == "--only"
    {
        let n: u32 = n.parse().unwrap_or(1000);
        let raw = fixtures::invite();
        for _ in 0..n {
            let ok = match parser.as_str() {
                "hotline" => Fields::hotline(black_box(raw.clone())).is_ok(),
                "rsip" => rsip_impl::fields(black_box(&raw[..])).is_ok(),
                "rsipstack" => rsipstack_impl::fields(black_box(&raw[..])).is_ok(),
                other => panic!("unknown parser {other}"),
            };
            black_box(ok);
        }
        return;
    }
    let n: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    println!("ns/message, best of 5 rounds of {n}; ratio = parser / hotline");
    for (name, raw) in [
        ("INVITE", fixtures::invite()),
        ("OPTIONS", fixtures::options()),
    ] {
        // The benchmark is only fair if all three read the same values.
        let ours = Fields::hotline(raw.clone()).ok();
        assert_eq!(rsip_impl::fields(&raw).ok(), ours, "rsip read other values");
        assert_eq!(
            rsipstack_impl::fields(&raw).ok(),
            ours,
            "rsipstack read other values"
        );

        let hotline = best_ns(n, || Fields::hotline(black_box(raw.clone())).is_ok());
        let copy = best_ns(n, || {
            Fields::hotline(Bytes::copy_from_slice(black_box(&raw[..]))).is_ok()
        });
        let rsip = best_ns(n, || rsip_impl::fields(black_box(&raw[..])).is_ok());
        let rsipstack = best_ns(n, || rsipstack_impl::fields(black_box(&raw[..])).is_ok());
        println!(
            "{name} {} B | hotline {hotline:.0} | hotline+copy {copy:.0} ({:.2}x) | rsip {rsip:.0} ({:.1}x) | rsipstack {rsipstack:.0} ({:.1}x)",
            raw.len(),
            copy / hotline,
            rsip / hotline,
            rsipstack / hotline,
        );
    }
}

/// The best mean time per call, in ns, over 5 rounds of `n` calls.
fn best_ns(n: u32, mut f: impl FnMut() -> bool) -> f64 {
    for _ in 0..n / 10 {
        black_box(f());
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}
