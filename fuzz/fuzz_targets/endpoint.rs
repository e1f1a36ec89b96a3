//! A sans-IO `Endpoint` fed datagrams, stream bytes and application decisions
//! on a fake clock, with every output drained and the clock run out at the
//! end. The body is `hotline_sip_bench::harness::endpoint`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hotline_sip_bench::harness::endpoint(data));
