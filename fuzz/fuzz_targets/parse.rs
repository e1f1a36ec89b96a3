//! `Message::parse_datagram` and `parse_head_lenient`, every typed accessor,
//! the response and dialog builders, and `StreamFramer` fed in random chunk
//! splits. The body is `hotline_sip_bench::harness::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hotline_sip_bench::harness::parse(data));
