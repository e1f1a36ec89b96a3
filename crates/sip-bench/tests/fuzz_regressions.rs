//! Replays the fuzz seeds and every input the fuzzer found a crash with,
//! through the same harness as `fuzz/fuzz_targets/*`, on stable and without
//! cargo-fuzz. A crash input goes in as a test of its own, named after what
//! it broke, with the bytes written out. A crash not fixed yet is `#[ignore]`d
//! with the reason, so that `cargo test -- --ignored` lists the open ones;
//! whoever fixes it removes the `#[ignore]`.

use std::fs;
use std::path::PathBuf;

use hotline_sip_bench::harness;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            // The directory was just listed; its files are readable.
            let path = entry.expect("directory entry").path();
            let bytes = fs::read(&path).expect("seed file");
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn parse_seeds_replay() {
    let seeds = seeds("parse");
    assert!(!seeds.is_empty());
    for (name, bytes) in seeds {
        eprintln!("{name}");
        harness::parse(&bytes);
    }
}

#[test]
fn endpoint_seeds_replay() {
    let seeds = seeds("endpoint");
    assert!(!seeds.is_empty());
    for (name, bytes) in seeds {
        eprintln!("{name}");
        harness::endpoint(&bytes);
    }
}

/// Found by the `parse` target: a request that passes `validate_request`
/// although its Record-Route is not a URI. `Dialog::from_invite` takes that
/// Record-Route (no `;lr` is recognised, so it counts as a strict router) as
/// the Request-URI of the BYE it builds, and the BYE does not parse
/// (`StartLine("Request-URI")`). The fuzzer's input (125 bytes after
/// `cargo fuzz tmin`) reached it through `parse_head_lenient`; this is the
/// same defect on a well-formed INVITE.
#[test]
fn parse_found_bye_from_unparseable_record_route() {
    let invite = String::from_utf8_lossy(&hotline_sip_bench::fixtures::invite())
        .replace(
            "Record-Route: <sip:203.0.113.45;lr>",
            "Record-Route: \x14;\x00",
        )
        .into_bytes();
    harness::parse(&invite);
}

/// Found by the `endpoint` target: an INVITE whose Record-Route holds a URI
/// with a control character in its scheme is accepted and answered; hanging
/// up (or the missing-ACK timeout) sends a BYE whose Request-URI is that
/// Record-Route (`BYE si\x11:203.0.113.45;lr SIP/2.0`), which no parser
/// accepts. Minimized by hand from the fuzzer's 825-byte input.
#[test]
fn endpoint_found_bye_to_unparseable_record_route() {
    let invite = String::from_utf8_lossy(&hotline_sip_bench::fixtures::invite())
        .replace(
            "Record-Route: <sip:203.0.113.45;lr>",
            "Record-Route: <si\x11:203.0.113.45;lr>",
        )
        .into_bytes();
    harness::endpoint(&harness::encode(&[
        harness::Op::Datagram {
            peer: 0,
            bytes: invite,
        },
        harness::Op::App {
            action: harness::App::Answer,
            call: 0,
        },
        harness::Op::App {
            action: harness::App::Hangup,
            call: 0,
        },
    ]));
}
