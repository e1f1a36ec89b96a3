//! Writes the seed inputs of the `fuzz/` targets to `fuzz/seeds/<target>/`.
//!
//! `cargo run -p hotline-sip-bench --example fuzz_seeds`
//!
//! The `endpoint` seeds are whole calls; the endpoint is driven while they are
//! built, so that ACK, BYE and re-INVITE carry the To tag it chose.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use hotline_sip::message::Message;
use hotline_sip::response::response;
use hotline_sip_bench::fixtures;
use hotline_sip_bench::harness::{App, Driver, Op, encode};

const CALL_ID: &str = "5f2b7c3e1a9d4e8f@203.0.113.45";

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    write_all(&root.join("parse"), &parse_seeds())?;
    write_all(&root.join("endpoint"), &endpoint_seeds())?;
    Ok(())
}

fn write_all(dir: &Path, seeds: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes)?;
    }
    println!("{} seeds in {}", seeds.len(), dir.display());
    Ok(())
}

/// A request in the dialog of the fixture INVITE.
fn in_dialog(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let (ctype, body) = body.map_or((String::new(), ""), |(t, b)| {
        (format!("Content-Type: {t}\r\n"), b)
    });
    format!(
        "{method} sip:+18005550199@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: \"ACME CALLER\" <sip:+14155550123@203.0.113.45>;tag=as6c1f2b9e\r\n\
To: <sip:+18005550199@192.0.2.10>{to_tag}\r\n\
Call-ID: {CALL_ID}\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:+14155550123@203.0.113.45>\r\n\
{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        },
    )
    .into_bytes()
}

fn parse_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let invite = fixtures::invite().to_vec();
    let ok = response(
        &Message::parse_datagram(fixtures::invite()).expect("fixture parses"),
        200,
    )
    .to_tag("8f3a1c")
    .header("Contact", "<sip:hotline@192.0.2.10>")
    .body(
        "application/sdp",
        Bytes::from_static(fixtures::INVITE_SDP.as_bytes()),
    )
    .build()
    .to_vec();
    let mut stream = fixtures::options().to_vec();
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(&fixtures::options_numbered(2));
    let mut binary = in_dialog("MESSAGE", "z9hG4bKbin", 3, "", None);
    binary.truncate(binary.len() - "Content-Length: 0\r\n\r\n".len());
    binary.extend_from_slice(
        b"Content-Type: application/octet-stream\r\nContent-Length: 8\r\n\r\n\x00\xff\r\n\r\n\x80%",
    );
    vec![
        ("invite.sip", invite),
        ("options.sip", fixtures::options().to_vec()),
        ("response-200.sip", ok),
        ("ack.sip", in_dialog("ACK", "z9hG4bKack1", 102, "8f3a1c", None)),
        ("bye.sip", in_dialog("BYE", "z9hG4bKbye1", 103, "8f3a1c", None)),
        ("cancel.sip", in_dialog("CANCEL", "z9hG4bK-3f9a2c71e4", 102, "", None)),
        (
            "info-dtmf.sip",
            in_dialog("INFO", "z9hG4bKinfo", 104, "8f3a1c", Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"))),
        ),
        (
            "register-ipv6.sip",
            b"REGISTER sip:[2001:db8::10] SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: sip:user@example.com;tag=81x2\r\n\
Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;received=[2001:db8::9:255];rport\r\n\
Call-ID: SSG9559905523997077@hlau_4100\r\nMax-Forwards: 70\r\nContact: \"Caller\" <sip:caller@[2001:db8::9:1]:5070>;expires=3600\r\n\
CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        ),
        (
            "compact-folded.sip",
            b"OPTIONS sip:user@example.com SIP/2.0\r\nv:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK30239\r\n\
f   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\nt: sip:user@example.com\r\ni: wsinv.ndaksdj@192.0.2.1\r\ncseq: 0009\r\n  OPTIONS\r\nm: <sip:jdrosen@example.com>;expires=60\r\nl: 0\r\n\r\n"
                .to_vec(),
        ),
        (
            "tel-escapes.sip",
            b"INVITE sip:sips%3Auser%40example.com@example.net;user=phone SIP/2.0\r\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw;received=192.0.2.9\r\n\
From: <tel:+1-201-555-0123;phone-context=example.com>;tag=938\r\nTo: sip:%75se%72@example.com\r\nCall-ID: esc01.239409asdfakjkn23onasd0-3234\r\n\
CSeq: 234234 INVITE\r\nMax-Forwards: 87\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com>\r\nRequire: 100rel\r\nl: 0\r\n\r\n"
                .to_vec(),
        ),
        ("stream-two-with-ping.sip", stream),
        ("binary-body.sip", binary),
        (
            "lf-only.sip",
            String::from_utf8_lossy(&fixtures::options()).replace("\r\n", "\n").into_bytes(),
        ),
    ]
}

/// The To tag of the last response the endpoint sent.
fn last_tag(driver: &Driver) -> String {
    driver
        .sent
        .iter()
        .rev()
        .filter_map(|b| Message::parse_datagram(b.clone()).ok())
        .find(|m| !m.is_request())
        .and_then(|m| {
            m.to_header()
                .ok()
                .and_then(|t| t.tag())
                .map(|t| String::from_utf8_lossy(t).into_owned())
        })
        .unwrap_or_default()
}

/// Runs `build` with a driver that performs each step as it is added, and
/// returns the encoded steps.
fn scripted(build: impl FnOnce(&mut Script)) -> Vec<u8> {
    let mut script = Script {
        driver: Driver::new(true),
        ops: Vec::new(),
    };
    build(&mut script);
    encode(&script.ops)
}

struct Script {
    driver: Driver,
    ops: Vec<Op>,
}

impl Script {
    fn op(&mut self, op: Op) {
        self.driver.step(&op);
        self.ops.push(op);
    }

    fn udp(&mut self, bytes: Vec<u8>) {
        self.op(Op::Datagram { peer: 0, bytes });
    }

    fn app(&mut self, action: App) {
        self.op(Op::App { action, call: 0 });
    }
}

fn endpoint_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let invite = || fixtures::invite().to_vec();
    let answered_call = |s: &mut Script| {
        s.udp(invite());
        s.app(App::Ringing);
        s.app(App::Answer);
        let tag = last_tag(&s.driver);
        s.udp(in_dialog("ACK", "z9hG4bKack1", 102, &tag, None));
        tag
    };
    vec![
        (
            "options.bin",
            scripted(|s| s.udp(fixtures::options().to_vec())),
        ),
        (
            "options-ipv6-and-bad.bin",
            scripted(|s| {
                s.op(Op::Datagram {
                    peer: 1,
                    bytes: b"OPTIONS sip:[2001:db8::1] SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::45]:5070;branch=z9hG4bK6a;rport\r\n\
From: <sip:ka@[2001:db8::45]>;tag=6\r\nTo: <sip:[2001:db8::1]>\r\nCall-ID: v6@ka\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                        .to_vec(),
                });
                // No Call-ID: answered 400.
                s.udp(b"OPTIONS sip:192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.45;branch=z9hG4bK7\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCSeq: 1 OPTIONS\r\n\r\n".to_vec());
                s.op(Op::NextDeadline);
            }),
        ),
        (
            "call-answer-ack-bye.bin",
            scripted(|s| {
                let tag = answered_call(s);
                s.udp(in_dialog("BYE", "z9hG4bKbye1", 103, &tag, None));
                s.op(Op::NextDeadline);
                s.op(Op::Advance(255));
            }),
        ),
        (
            "call-cancel.bin",
            scripted(|s| {
                s.udp(invite());
                s.app(App::Ringing);
                s.udp(in_dialog("CANCEL", "z9hG4bK-3f9a2c71e4", 102, "", None));
                let tag = last_tag(&s.driver);
                s.udp(in_dialog("ACK", "z9hG4bK-3f9a2c71e4", 102, &tag, None));
                s.op(Op::NextDeadline);
            }),
        ),
        (
            "call-reject.bin",
            scripted(|s| {
                s.udp(invite());
                s.app(App::Reject);
                let tag = last_tag(&s.driver);
                s.udp(in_dialog("ACK", "z9hG4bK-3f9a2c71e4", 102, &tag, None));
                s.op(Op::NextDeadline);
            }),
        ),
        (
            "call-no-ack-bye-answered.bin",
            scripted(|s| {
                s.udp(invite());
                s.app(App::Answer);
                for _ in 0..12 {
                    s.op(Op::NextDeadline);
                }
                // Answer our BYE, if one went out.
                let bye = s
                    .driver
                    .sent
                    .iter()
                    .filter_map(|b| Message::parse_datagram(b.clone()).ok())
                    .find(|m| m.is_request());
                if let Some(bye) = bye {
                    s.udp(response(&bye, 200).build().to_vec());
                }
                s.op(Op::NextDeadline);
            }),
        ),
        (
            "call-reinvite-info.bin",
            scripted(|s| {
                let tag = answered_call(s);
                s.udp(in_dialog(
                    "INFO",
                    "z9hG4bKinfo",
                    103,
                    &tag,
                    Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")),
                ));
                s.udp(in_dialog(
                    "INVITE",
                    "z9hG4bKre1",
                    104,
                    &tag,
                    Some(("application/sdp", fixtures::INVITE_SDP)),
                ));
                s.app(App::AcceptReinvite);
                s.udp(in_dialog("ACK", "z9hG4bKack2", 104, &tag, None));
                s.app(App::Hangup);
                s.op(Op::NextDeadline);
            }),
        ),
        (
            "call-tcp.bin",
            scripted(|s| {
                let tcp = |b: Vec<u8>| {
                    String::from_utf8_lossy(&b)
                        .replace(
                            "SIP/2.0/UDP 203.0.113.45:5060",
                            "SIP/2.0/TCP 203.0.113.46:40312",
                        )
                        .into_bytes()
                };
                s.op(Op::Stream(tcp(invite())));
                s.app(App::Answer);
                let tag = last_tag(&s.driver);
                // ACK and BYE in one read, split in the middle of the BYE.
                let mut both = tcp(in_dialog("ACK", "z9hG4bKack1", 102, &tag, None));
                let bye = tcp(in_dialog("BYE", "z9hG4bKbye1", 103, &tag, None));
                both.extend_from_slice(&bye[..40]);
                s.op(Op::Stream(both));
                s.op(Op::Stream(bye[40..].to_vec()));
                s.op(Op::NextDeadline);
            }),
        ),
    ]
}
