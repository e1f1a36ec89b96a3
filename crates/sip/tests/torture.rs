//! RFC 4475 (SIP torture test messages) and RFC 5118 (SIP torture tests for
//! IPv6): one test per archived message, read at test time from
//! `../shared/sip-corpus` (relative to the workspace root).
//!
//! Each test asserts what the RFC asks of the message, driving the real
//! [`Endpoint`] (the datagram goes in through `handle_datagram`, the responses
//! come out of `poll_transmit` and are parsed again) and reading the parsed
//! fields where the RFC says how they must read. When the RFC allows several
//! behaviours, the comment says which one we chose.
//!
//! What the endpoint answers by itself (400, 505, 416, 420, 415, 481, 501,
//! 200 to OPTIONS, 100 Trying to INVITE) is asserted here; what the application
//! decides after `Event::IncomingCall` (answer, 488 for an unusable offer, ...)
//! is not the endpoint's, and the tests stop at the event.
//!

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use hotline_sip::endpoint::{Config, Endpoint, Event, IncomingCall, Peer, Transport};
use hotline_sip::header::{NameAddr, Via};
use hotline_sip::message::{Framed, HeaderName, Message, Method, ParseError, StreamFramer};
use hotline_sip::uri::{Host, Scheme, Uri, unescape};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// `shared/sip-corpus`, beside the workspace.
fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/sip-corpus"
    ))
}

/// The bytes of `rfc4475/<name>.dat` or `rfc5118/<name>`.
fn corpus(path: &str) -> Vec<u8> {
    let full = corpus_dir().join(path);
    std::fs::read(&full).unwrap_or_else(|e| {
        panic!(
            "cannot read the SIP torture corpus file {} ({e}); the tests expect the shared corpus \
             at <workspace>/../shared/sip-corpus (see shared/sip-corpus/README.md)",
            full.display()
        )
    })
}

fn rfc4475(name: &str) -> Vec<u8> {
    corpus(&format!("rfc4475/{name}.dat"))
}

fn rfc5118(name: &str) -> Vec<u8> {
    corpus(&format!("rfc5118/{name}"))
}

fn parse(bytes: &[u8]) -> Message {
    Message::parse_datagram(Bytes::copy_from_slice(bytes)).expect("the message parses")
}

fn parse_err(bytes: &[u8]) -> ParseError {
    Message::parse_datagram(Bytes::copy_from_slice(bytes)).expect_err("the message must not parse")
}

/// Where the torture messages come from (a documentation address) and where
/// we listen.
const REMOTE: &str = "192.0.2.99:5062";
const LOCAL: &str = "198.51.100.1:5060";

fn peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        remote: REMOTE.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        connection: None,
    }
}

/// What the endpoint did with one datagram.
struct Outcome {
    /// Every response it sent, parsed, with where it went.
    responses: Vec<(SocketAddr, Message)>,
    events: Vec<Event>,
}

impl Outcome {
    /// The status codes sent, in order.
    fn statuses(&self) -> Vec<u16> {
        self.responses
            .iter()
            .map(|(_, m)| m.status().expect("a response"))
            .collect()
    }

    /// The only response; fails unless exactly one was sent with `code`.
    fn only(&self, code: u16) -> &Message {
        assert_eq!(self.statuses(), vec![code], "expected exactly one {code}");
        &self.responses[0].1
    }

    /// Nothing sent.
    fn dropped(&self) {
        assert!(
            self.responses.is_empty(),
            "expected no response, got {:?}",
            self.statuses()
        );
    }

    /// The application was told of a call.
    fn incoming_call(&self) -> &IncomingCall {
        let calls: Vec<&IncomingCall> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::IncomingCall(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 1, "expected one IncomingCall event");
        calls[0]
    }

    fn no_call(&self) {
        assert!(
            !self
                .events
                .iter()
                .any(|e| matches!(e, Event::IncomingCall(_))),
            "no call may be reported"
        );
    }

    /// The Warning header of the only response (our 400s name the problem).
    fn warning(&self) -> String {
        let m = &self.responses[0].1;
        String::from_utf8_lossy(m.header_by_name("Warning").expect("a Warning header")).into_owned()
    }
}

/// Feeds one datagram to a fresh endpoint and collects what comes out. Every
/// response must parse, and must echo the request's Call-ID, CSeq and top Via
/// (RFC 3261 §8.2.6.2) as far as the request had them.
fn drive(bytes: &[u8]) -> Outcome {
    let mut ep = Endpoint::new(Config::default());
    ep.handle_datagram(Instant::now(), peer(), Bytes::copy_from_slice(bytes));
    let request = Message::parse_head_lenient(Bytes::copy_from_slice(bytes)).ok();
    let mut responses = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        let m = Message::parse_datagram(t.payload.clone()).unwrap_or_else(|e| {
            panic!(
                "a response we sent does not parse ({e}):\n{}",
                String::from_utf8_lossy(&t.payload)
            )
        });
        assert!(
            m.status().is_some(),
            "the endpoint sent a request where a response was expected"
        );
        if let Some(req) = &request {
            assert_eq!(
                m.header(HeaderName::CallId),
                req.header(HeaderName::CallId),
                "Call-ID echoed"
            );
            assert_eq!(
                m.header(HeaderName::CSeq),
                req.header(HeaderName::CSeq),
                "CSeq echoed"
            );
            assert_eq!(
                m.count(HeaderName::Via),
                req.count(HeaderName::Via),
                "every Via line echoed"
            );
            if let (Ok(a), Ok(b)) = (m.top_via(), req.top_via()) {
                assert_eq!(a.branch(), b.branch(), "top Via branch echoed");
                assert_eq!(a.host, b.host, "top Via sent-by echoed");
            }
        }
        responses.push((t.peer.remote, m));
    }
    let mut events = Vec::new();
    while let Some(e) = ep.poll_event() {
        events.push(e);
    }
    Outcome { responses, events }
}

fn host_name(h: &[u8]) -> Host<'_> {
    Host::Name(h)
}

fn v6(s: &str) -> Host<'static> {
    Host::V6(s.parse().unwrap())
}

fn v4(s: &str) -> Host<'static> {
    Host::V4(s.parse().unwrap())
}

// ---------------------------------------------------------------------------
// The corpus itself
// ---------------------------------------------------------------------------

const RFC4475_FILES: [&str; 50] = [
    "badaspec",
    "badbranch",
    "baddate",
    "baddn",
    "badinv01",
    "badvers",
    "bcast",
    "bext01",
    "bigcode",
    "clerr",
    "cparam01",
    "cparam02",
    "dblreq",
    "esc01",
    "esc02",
    "escnull",
    "escruri",
    "insuf",
    "intmeth",
    "inv2543",
    "invut",
    "longreq",
    "ltgtruri",
    "lwsdisp",
    "lwsruri",
    "lwsstart",
    "mcl01",
    "mismatch01",
    "mismatch02",
    "mpart01",
    "multi01",
    "ncl",
    "noreason",
    "novelsc",
    "quotbal",
    "regaut01",
    "regbadct",
    "regescrt",
    "scalar02",
    "scalarlg",
    "sdp01",
    "semiuri",
    "test",
    "transports",
    "trws",
    "unkscm",
    "unksm2",
    "unreason",
    "wsinv",
    "zeromf",
];

const RFC5118_FILES: [&str; 12] = [
    "ipv4-mapped-ipv6",
    "ipv6-bad",
    "ipv6-bug-abnf-3-colons",
    "ipv6-correct-abnf-2-colons",
    "ipv6-good",
    "ipv6-in-sdp",
    "mult-ip-in-header",
    "mult-ip-in-sdp",
    "port-ambiguous",
    "port-unambiguous",
    "via-received-param-no-delim",
    "via-received-param-with-delim",
];

fn listing(dir: &str) -> Vec<String> {
    let path = corpus_dir().join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| {
            panic!(
                "the SIP torture corpus is missing: cannot list {} ({e}); expected \
                 <workspace>/../shared/sip-corpus/{dir}",
                path.display()
            )
        })
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every archived message has a test below, and nothing is missing.
#[test]
fn corpus_is_complete_and_every_file_has_a_test() {
    let want: Vec<String> = RFC4475_FILES.iter().map(|n| format!("{n}.dat")).collect();
    assert_eq!(
        listing("rfc4475"),
        want,
        "rfc4475/ holds the 50 archived messages"
    );
    let want: Vec<String> = RFC5118_FILES.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        listing("rfc5118"),
        want,
        "rfc5118/ holds the 12 archived messages"
    );
}

/// No archived message makes the endpoint send anything that does not parse,
/// and no message panics it (what `drive` checks, over the whole corpus).
#[test]
fn no_message_breaks_the_endpoint() {
    for name in RFC4475_FILES {
        drive(&rfc4475(name));
    }
    for name in RFC5118_FILES {
        drive(&rfc5118(name));
    }
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.1.1: valid messages
// ---------------------------------------------------------------------------

/// §3.1.1.1 A short tortuous INVITE: folding, LWS around every separator,
/// compact and oddly cased names, escaped quotes, an empty Subject, leading
/// zeros, unknown headers. It parses and reads right; its To carries a tag, so
/// for our UAS it is a mid-dialog request for a dialog we do not have: 481.
#[test]
fn wsinv() {
    let raw = rfc4475("wsinv");
    let m = parse(&raw);
    m.validate_request().expect("wsinv is valid");
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(
        m.request_uri(),
        b"sip:vivekg@chair-dnrc.example.com;unknownparam"
    );

    let vias: Vec<Via<'_>> = m.vias().map(|v| v.expect("every Via parses")).collect();
    assert_eq!(
        vias.len(),
        3,
        "one Via line plus a folded `v:` line with two values"
    );
    assert_eq!(vias[0].transport, b"UDP");
    assert_eq!(vias[0].host, v4("192.0.2.2"));
    assert_eq!(vias[0].branch(), Some(&b"390skdjuw"[..]));
    assert!(
        !vias[0].is_rfc3261_branch(),
        "390skdjuw has no magic cookie"
    );
    assert_eq!(vias[1].transport, b"TCP");
    assert_eq!(vias[1].host, host_name(b"spindle.example.com"));
    assert_eq!(vias[1].branch(), Some(&b"z9hG4bK9ikj8"[..]));
    assert_eq!(vias[2].host, v4("192.168.255.111"));
    assert_eq!(
        vias[2].branch(),
        Some(&b"z9hG4bK30239"[..]),
        "the value after a folded `branch=`"
    );

    let to = m.to_header().unwrap();
    assert_eq!(to.uri.user, Some(&b"vivekg"[..]));
    assert_eq!(to.tag(), Some(&b"1918181833n"[..]));
    let from = m.from_header().unwrap();
    assert_eq!(
        from.display,
        Some(&br#""J Rosenberg \\\"""#[..]),
        "escaped backslash and quote"
    );
    assert_eq!(from.uri.user, Some(&b"jdrosen"[..]));
    assert_eq!(from.tag(), Some(&b"98asjd8"[..]));
    assert_eq!(m.max_forwards().unwrap(), Some(68), "0068");
    let cseq = m.cseq().unwrap();
    assert_eq!(
        (cseq.seq, cseq.method),
        (9, Method::Invite),
        "0009 folded before INVITE"
    );
    assert_eq!(m.call_id().unwrap(), b"wsinv.ndaksdj@192.0.2.1");
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body().len(), 150);
    assert_eq!(m.content_type(), Some(&b"application/sdp"[..]));
    assert_eq!(
        m.header(HeaderName::Subject),
        Some(&b""[..]),
        "`s :` is an empty Subject"
    );
    let nf = m.header_by_name("NewFangledHeader").unwrap();
    assert!(nf.starts_with(b"newfangled value") && nf.ends_with(b"continued newfangled value"));
    assert_eq!(
        m.header_by_name("UnknownHeaderWithUnusualValue"),
        Some(&b";;,,;;,;"[..])
    );

    let contacts: Vec<NameAddr<'_>> = m.contacts().map(|c| c.unwrap()).collect();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].display, Some(&br#""Quoted string \"\"""#[..]));
    assert_eq!(
        contacts[0].params.get("newparam"),
        Some(Some(&b"newvalue"[..]))
    );
    assert_eq!(contacts[0].params.get("secondparam"), Some(None));
    assert_eq!(contacts[0].params.get("q"), Some(Some(&b"0.33"[..])));

    let out = drive(&raw);
    let r = out.only(481);
    assert_eq!(
        r.to_header().unwrap().tag(),
        Some(&b"1918181833n"[..]),
        "the request's To tag kept"
    );
    out.no_call();
}

/// §3.1.1.2 Wide range of valid characters: an extension method made of every
/// token character, an odd but valid Request-URI, quoted-string escapes of
/// control characters, UTF-8 in a parameter and a header value. Unknown method
/// at a UAS: 501 with Allow.
#[test]
fn intmeth() {
    let raw = rfc4475("intmeth");
    let m = parse(&raw);
    m.validate_request().expect("intmeth is valid");
    let method = b"!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(
        m.method(),
        Some(&Method::Extension(Bytes::from_static(method)))
    );
    assert_eq!(m.cseq().unwrap().method.as_bytes(), method);
    assert_eq!(m.cseq().unwrap().seq, 139122385);
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!(
        uri.user,
        Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
    );
    assert_eq!(uri.host, Some(host_name(b"example.com")));
    assert_eq!(
        m.call_id().unwrap(),
        &b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"[..]
    );
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    let to = m.to_header().unwrap();
    assert_eq!(
        to.display,
        Some(&b"\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\""[..])
    );
    let from = m.from_header().unwrap();
    assert_eq!(from.display, Some(&b"token1~` token2'+_ token3*%!.-"[..]));
    assert_eq!(from.tag(), Some(&b"_token~1'+`*%!-."[..]));
    let fp = from.params.get("fromParam''~+*_!.-%").unwrap().unwrap();
    assert_eq!(
        fp,
        "\"работающий\"".as_bytes(),
        "UTF-8 in a quoted parameter value"
    );
    assert_eq!(
        m.header_by_name("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電".as_bytes())
    );

    let out = drive(&raw);
    let r = out.only(501);
    assert!(
        r.header(HeaderName::Allow).is_some(),
        "501 lists what we allow"
    );
}

/// §3.1.1.3 Valid use of the % escaping mechanism: escapes in the user parts
/// and URI parameters are decoded when compared, and only once ("value%41" is
/// not "valueA"). An INVITE with SDP: the endpoint sends 100 and reports the call.
#[test]
fn esc01() {
    let raw = rfc4475("esc01");
    let m = parse(&raw);
    m.validate_request().expect("esc01 is valid");
    let ruri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!(&*ruri.user_unescaped().unwrap(), b"sips:user@example.com");
    assert_eq!(ruri.host, Some(host_name(b"example.net")));
    assert_eq!(
        &*m.to_header().unwrap().uri.user_unescaped().unwrap(),
        b"user"
    );
    assert_eq!(
        &*m.from_header().unwrap().uri.user_unescaped().unwrap(),
        b"I have spaces"
    );
    let contact = m.contacts().next().unwrap().unwrap();
    assert_eq!(&*contact.uri.user_unescaped().unwrap(), b"caller");
    assert_eq!(contact.uri.params, b"%6C%72;n%61me=v%61lue%25%34%31");
    assert_eq!(&*unescape(b"%6C%72"), b"lr");
    assert_eq!(
        &*unescape(b"v%61lue%25%34%31"),
        b"value%41",
        "unescaped once, not recursively"
    );
    assert_eq!(m.call_id().unwrap(), b"esc01.239409asdfakjkn23onasd0-3234");
    assert_eq!(
        m.content_type(),
        Some(&b"application/sdp"[..]),
        "compact `C:`"
    );

    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    let call = out.incoming_call();
    assert_eq!(call.to_user.as_deref(), Some("user"));
    assert_eq!(call.from_user.as_deref(), Some("I have spaces"));
    assert_eq!(call.sdp.as_ref().map(|b| b.len()), Some(150));
}

/// §3.1.1.4 Escaped nulls in URIs: unescaping must not shorten the user part
/// at the NUL, and the two Contacts differ. A REGISTER: we are not a registrar,
/// so 501.
#[test]
fn escnull() {
    let raw = rfc4475("escnull");
    let m = parse(&raw);
    m.validate_request().expect("escnull is valid");
    assert_eq!(m.method(), Some(&Method::Register));
    assert_eq!(
        &*m.to_header().unwrap().uri.user_unescaped().unwrap(),
        b"null-\0-null"
    );
    assert_eq!(
        &*m.from_header().unwrap().uri.user_unescaped().unwrap(),
        b"null-\0-null"
    );
    let users: Vec<Vec<u8>> = m
        .contacts()
        .map(|c| c.unwrap().uri.user_unescaped().unwrap().into_owned())
        .collect();
    assert_eq!(
        users,
        vec![b"\0".to_vec(), b"\0\0".to_vec()],
        "two different contacts"
    );
    assert_eq!(m.content_length(), Some(0), "`L:0`");

    drive(&raw).only(501);
}

/// §3.1.1.5 Use of % when it is not an escape: the method `RE%47IST%45R` is
/// not REGISTER, `"%Z%45"` is a display name as written, `C%6Fntact` is an
/// unknown header (two Contacts, not three). An unknown method: 501.
#[test]
fn esc02() {
    let raw = rfc4475("esc02");
    let m = parse(&raw);
    m.validate_request().expect("esc02 is valid");
    assert_eq!(
        m.method(),
        Some(&Method::Extension(Bytes::from_static(b"RE%47IST%45R")))
    );
    assert_ne!(m.method(), Some(&Method::Register));
    assert_eq!(m.to_header().unwrap().display, Some(&b"\"%Z%45\""[..]));
    assert_eq!(m.from_header().unwrap().display, Some(&b"\"%Z%45\""[..]));
    assert_eq!(m.contacts().count(), 2);
    assert_eq!(
        m.header_by_name("C%6Fntact"),
        Some(&b"<sip:alias2@host2.example.com>"[..])
    );
    assert_eq!(
        m.top_via().unwrap().branch(),
        Some(&b"z9hG4bK209%fzsnel234"[..])
    );

    drive(&raw).only(501);
}

/// §3.1.1.6 No LWS between display name and `<`: accepted (a grammar bug in
/// RFC 3261). OPTIONS: 200.
#[test]
fn lwsdisp() {
    let raw = rfc4475("lwsdisp");
    let m = parse(&raw);
    m.validate_request().expect("lwsdisp is accepted");
    let from = m.from_header().unwrap();
    assert_eq!(from.display, Some(&b"caller"[..]));
    assert_eq!(from.uri.user, Some(&b"caller"[..]));
    assert_eq!(from.tag(), Some(&b"323"[..]));

    let out = drive(&raw);
    let r = out.only(200);
    assert!(r.header(HeaderName::Allow).is_some());
    assert!(
        r.to_header().unwrap().tag().is_some(),
        "the 200 adds our To tag"
    );
}

/// §3.1.1.7 Long values in header fields: long display name, parameters, tag
/// and Call-ID, 34 Via values written with every spelling of the name, a long
/// unknown header. An INVITE: 100 and the call.
#[test]
fn longreq() {
    let raw = rfc4475("longreq");
    let m = parse(&raw);
    m.validate_request().expect("longreq is valid");
    let to = m.to_header().unwrap();
    assert!(
        to.display
            .unwrap()
            .starts_with(b"\"I have a user name of extremeextreme")
    );
    assert_eq!(to.uri.port, Some(6000));
    assert!(to.uri.params.starts_with(b"unknownparam1=verylonglong"));
    let from = m.from_header().unwrap();
    assert!(
        from.uri
            .user
            .unwrap()
            .starts_with(b"amazinglylongcallername")
    );
    let tag = from.tag().unwrap();
    assert!(
        tag.len() > 150 && tag.iter().all(u8::is_ascii_digit),
        "the very long From tag"
    );
    assert!(m.call_id().unwrap().starts_with(b"longreq.onereallyreally"));
    let vias: Vec<Via<'_>> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(
        vias.len(),
        34,
        "Via, v, V, ViA, VIa, VIA, via, viA, vIa, vIA, `V :`, `Via  :` ..."
    );
    assert_eq!(vias[0].host, host_name(b"sip33.example.com"));
    assert_eq!(vias[33].host, host_name(b"host.example.com"));
    assert_eq!(vias[33].received(), Some(&b"192.0.2.5"[..]));
    assert!(vias[33].branch().unwrap().starts_with(b"verylonglong"));
    let unknown = m
        .headers()
        .find(|(n, _)| n.starts_with(b"Unknown-LongLongLong"))
        .expect("the long unknown header");
    assert!(unknown.1.starts_with(b"unknown-longlong"));
    assert_eq!(m.body().len(), 150);

    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    out.incoming_call();
}

/// §3.1.1.8 Extra trailing octets in a UDP datagram: the REGISTER's
/// Content-Length is 0, so the INVITE after it is noise (RFC 3261 §18.3). The
/// REGISTER alone is handled: 501, and no call.
#[test]
fn dblreq() {
    let raw = rfc4475("dblreq");
    let m = parse(&raw);
    m.validate_request().expect("dblreq is valid");
    assert_eq!(m.method(), Some(&Method::Register));
    assert_eq!(m.content_length(), Some(0));
    assert!(m.body().is_empty());
    assert!(
        !m.as_bytes().windows(6).any(|w| w == b"INVITE"),
        "the INVITE is not part of it"
    );

    let out = drive(&raw);
    let r = out.only(501);
    assert_eq!(r.cseq().unwrap().method, Method::Register);
    out.no_call();
}

/// §3.1.1.9 Semicolon-separated parameters in the URI user part: the user is
/// `user;par=u@example.net` (escaped @), the host example.com.
#[test]
fn semiuri() {
    let raw = rfc4475("semiuri");
    let m = parse(&raw);
    m.validate_request().expect("semiuri is valid");
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!(uri.user, Some(&b"user;par=u%40example.net"[..]));
    assert_eq!(&*uri.user_unescaped().unwrap(), b"user;par=u@example.net");
    assert_eq!(uri.host, Some(host_name(b"example.com")));
    assert!(
        uri.params.is_empty(),
        "the parameter belongs to the user part"
    );
    assert_eq!(
        m.values(HeaderName::Accept).count(),
        6,
        "a folded Accept with six types"
    );

    drive(&raw).only(200);
}

/// §3.1.1.10 Varied and unknown transport types in Via: accepted; the response
/// goes back over UDP per the top Via, every Via echoed.
#[test]
fn transports() {
    let raw = rfc4475("transports");
    let m = parse(&raw);
    m.validate_request().expect("transports is valid");
    let t: Vec<Vec<u8>> = m.vias().map(|v| v.unwrap().transport.to_vec()).collect();
    assert_eq!(
        t,
        [&b"UDP"[..], b"SCTP", b"TLS", b"UNKNOWN", b"TCP"].map(<[u8]>::to_vec)
    );
    assert_eq!(
        m.call_id().unwrap(),
        b"transports.kijh4akdnaqjkwendsasfdj",
        "leading spaces trimmed"
    );

    let out = drive(&raw);
    let r = out.only(200);
    assert_eq!(r.count(HeaderName::Via), 5);
    // Top Via sent-by is a name without port: source address, port 5060 (§18.2.2).
    assert_eq!(
        out.responses[0].0,
        "192.0.2.99:5060".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(r.top_via().unwrap().received(), Some(&b"192.0.2.99"[..]));
}

/// §3.1.1.11 Multipart MIME message: the body is exactly Content-Length octets,
/// binary part and NULs included. MESSAGE is not implemented here: 501.
#[test]
fn mpart01() {
    let raw = rfc4475("mpart01");
    let m = parse(&raw);
    m.validate_request().expect("mpart01 is valid");
    assert_eq!(m.method(), Some(&Method::Message));
    assert_eq!(m.content_type(), Some(&b"multipart/mixed"[..]));
    assert_eq!(m.content_length(), Some(553));
    assert_eq!(m.body().len(), 553);
    assert!(m.body().starts_with(b"--7a9cbec02ceef655\r\n"));
    assert!(m.body().contains(&0), "the binary part has NULs");
    assert_eq!(m.top_via().unwrap().rport(), Some(None));

    drive(&raw).only(501);
}

/// §3.1.1.12 Unusual reason phrase (UTF-8): the response parses and keeps the
/// phrase byte for byte. A response with no client transaction is dropped.
#[test]
fn unreason() {
    let raw = rfc4475("unreason");
    let m = parse(&raw);
    assert_eq!(m.status(), Some(200));
    let reason = std::str::from_utf8(m.reason()).expect("UTF-8 reason phrase");
    assert!(
        reason.starts_with("= 2**3 * 5**2 но сто девяносто девять"),
        "{reason}"
    );
    assert!(reason.ends_with("простое"));
    assert_eq!(m.body().len(), 154);

    let out = drive(&raw);
    out.dropped();
    assert!(out.events.is_empty());
}

/// §3.1.1.13 Empty reason phrase (`SIP/2.0 100 `): accepted; dropped as a
/// stray response.
#[test]
fn noreason() {
    let raw = rfc4475("noreason");
    let m = parse(&raw);
    assert_eq!(m.status(), Some(100));
    assert_eq!(m.reason(), b"");
    drive(&raw).dropped();
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.1.2: invalid messages
// ---------------------------------------------------------------------------

/// §3.1.2.1 Extraneous header field separators (`;;,;,,` in Via, `;;;;` in
/// Contact): 400. The top Via is read liberally so the 400 can be routed.
#[test]
fn badinv01() {
    let raw = rfc4475("badinv01");
    let m = parse(&raw);
    assert_eq!(m.validate_request(), Err(ParseError::Header("Via")));
    assert!(
        Via::parse(m.values(HeaderName::Via).next().unwrap()).is_err(),
        "strictly invalid"
    );
    assert_eq!(
        m.top_via().unwrap().host,
        v4("192.0.2.15"),
        "readable enough to answer"
    );
    let contact = m.header(HeaderName::Contact).unwrap();
    assert!(NameAddr::parse(contact, "Contact").is_err());

    let out = drive(&raw);
    out.only(400);
    assert!(out.warning().contains("Via"), "{}", out.warning());
    out.no_call();
}

/// §3.1.2.2 Content-Length larger than the message: over UDP, 400. Over a
/// stream the framer can only wait for more bytes.
#[test]
fn clerr() {
    let raw = rfc4475("clerr");
    assert_eq!(parse_err(&raw), ParseError::ContentLengthTooLarge);
    let out = drive(&raw);
    out.only(400);
    out.no_call();

    let mut f = StreamFramer::new(65535);
    f.extend(&raw);
    assert!(f.next().unwrap().is_none(), "on TCP: wait for the rest");
    assert_eq!(f.buffered(), raw.len());
}

/// §3.1.2.3 Negative Content-Length: an error response over UDP (400); over
/// TCP the framing error is fatal (the connection is closed).
#[test]
fn ncl() {
    let raw = rfc4475("ncl");
    assert_eq!(parse_err(&raw), ParseError::ContentLength);
    drive(&raw).only(400);

    let mut f = StreamFramer::new(65535);
    f.extend(&raw);
    assert_eq!(
        f.next().unwrap_err(),
        ParseError::ContentLength,
        "on TCP: close"
    );
}

/// §3.1.2.4 Request scalar fields with overlarge values: 400 because of the
/// CSeq (> 2**32-1). Max-Forwards 300 and the huge Expires are errors too.
#[test]
fn scalar02() {
    let raw = rfc4475("scalar02");
    let m = parse(&raw);
    assert_eq!(m.validate_request(), Err(ParseError::Header("CSeq")));
    assert!(m.cseq().is_err());
    assert!(m.max_forwards().is_err(), "300 > 255");
    assert!(m.expires().is_err(), "100 digits");
    let out = drive(&raw);
    out.only(400);
    assert!(out.warning().contains("CSeq"));
}

/// §3.1.2.5 Response scalar fields with overlarge values: the response is
/// simply discarded.
#[test]
fn scalarlg() {
    let raw = rfc4475("scalarlg");
    let m = parse(&raw);
    assert_eq!(m.status(), Some(503));
    assert!(m.cseq().is_err(), "CSeq > 2**32-1");
    drive(&raw).dropped();
}

/// §3.1.2.6 Unterminated quoted string in the To display name: 400 (the
/// preferred answer; the To is read liberally only to build it).
#[test]
fn quotbal() {
    let raw = rfc4475("quotbal");
    let m = parse(&raw);
    assert_eq!(m.validate_request(), Err(ParseError::Header("To")));
    let to = m.to_header().expect("read liberally to answer");
    assert_eq!(to.uri.user, Some(&b"j.user"[..]));
    let out = drive(&raw);
    out.only(400);
    assert!(out.warning().contains("To"));
    out.no_call();
}

/// §3.1.2.7 `<>` enclosing the Request-URI: 400 (we do not strip the brackets).
#[test]
fn ltgtruri() {
    let raw = rfc4475("ltgtruri");
    let m = parse(&raw);
    assert_eq!(m.request_uri(), b"<sip:user@example.com>");
    assert_eq!(
        m.validate_request(),
        Err(ParseError::StartLine("Request-URI"))
    );
    drive(&raw).only(400);
}

/// §3.1.2.8 Embedded LWS in the Request-URI: 400 (the liberal reading is not
/// attempted). The head is read loosely only to build the 400.
#[test]
fn lwsruri() {
    let raw = rfc4475("lwsruri");
    assert!(matches!(parse_err(&raw), ParseError::StartLine(_)));
    let loose = Message::parse_head_lenient(Bytes::from(raw.clone())).unwrap();
    assert_eq!(loose.request_uri(), b"sip:user@example.com; lr");
    let out = drive(&raw);
    out.only(400);
    out.no_call();
}

/// §3.1.2.9 Multiple SP separating Request-Line elements: the RFC allows
/// rejecting or ignoring the extra SP; we reject with 400.
#[test]
fn lwsstart() {
    let raw = rfc4475("lwsstart");
    assert!(matches!(parse_err(&raw), ParseError::StartLine(_)));
    let loose = Message::parse_head_lenient(Bytes::from(raw.clone())).unwrap();
    assert_eq!(loose.method(), Some(&Method::Invite));
    assert_eq!(loose.request_uri(), b"sip:user@example.com");
    let out = drive(&raw);
    out.only(400);
    out.no_call();
}

/// §3.1.2.10 SP characters at the end of the Request-Line: the RFC allows
/// rejecting or ignoring; we reject with 400.
#[test]
fn trws() {
    let raw = rfc4475("trws");
    assert!(matches!(parse_err(&raw), ParseError::StartLine(_)));
    drive(&raw).only(400);
}

/// §3.1.2.11 Escaped headers in the Request-URI: the RFC allows 400 or
/// ignoring them; we ignore them (a UAS never turns URI headers into headers),
/// so the INVITE is processed: 100 and the call.
#[test]
fn escruri() {
    let raw = rfc4475("escruri");
    let m = parse(&raw);
    m.validate_request().expect("accepted liberally");
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!(uri.host, Some(host_name(b"example.com")));
    assert_eq!(uri.headers, b"Route=%3Csip:example.com%3E");
    assert_eq!(m.count(HeaderName::Route), 0, "no Route header appears");
    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    out.incoming_call();
}

/// §3.1.2.12 Invalid time zone in Date: the RFC allows rejecting or ignoring
/// the Date; we never use Date, so the INVITE is processed: 100 and the call.
#[test]
fn baddate() {
    let raw = rfc4475("baddate");
    let m = parse(&raw);
    m.validate_request().expect("Date is not checked");
    assert_eq!(
        m.header_by_name("Date"),
        Some(&b"Fri, 01 Jan 2010 16:00:00 EST"[..])
    );
    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    out.incoming_call();
}

/// §3.1.2.13 A Contact URI with an escaped header not enclosed in `<>`: the
/// RFC finds 400 reasonable (a liberal element may infer the brackets); we
/// answer 400.
#[test]
fn regbadct() {
    let raw = rfc4475("regbadct");
    let m = parse(&raw);
    assert_eq!(m.validate_request(), Err(ParseError::Header("Contact")));
    let contact = m.header(HeaderName::Contact).unwrap();
    assert!(
        NameAddr::parse(contact, "Contact").is_err(),
        "`?` needs name-addr form (§20.10)"
    );
    let out = drive(&raw);
    out.only(400);
    assert!(out.warning().contains("Contact"));
}

/// §3.1.2.14 Spaces within addr-spec (`< sip:... >`): 400 (liberal reading of
/// the To only to build it).
#[test]
fn badaspec() {
    let raw = rfc4475("badaspec");
    let m = parse(&raw);
    assert_eq!(m.validate_request(), Err(ParseError::Header("To")));
    assert_eq!(
        m.to_header().unwrap().uri.host,
        Some(host_name(b"example.org"))
    );
    let out = drive(&raw);
    out.only(400);
    assert!(out.warning().contains("To"));
}

/// §3.1.2.15 Non-token characters in unquoted display names: 400. (The
/// archived file has no empty line after the headers; a datagram bounds the
/// message, so it is read with an empty body.)
#[test]
fn baddn() {
    let raw = rfc4475("baddn");
    assert!(
        raw.ends_with(b"l: 0\r\n"),
        "archived without the final CRLF"
    );
    let m = parse(&raw);
    assert!(m.body().is_empty());
    assert_eq!(m.validate_request(), Err(ParseError::Header("From")));
    assert_eq!(
        m.from_header().unwrap().display,
        Some(&b"Bell, Alexander"[..])
    );
    let out = drive(&raw);
    out.only(400);
}

/// §3.1.2.16 Unknown protocol version (SIP/7.0): 505.
#[test]
fn badvers() {
    let raw = rfc4475("badvers");
    assert_eq!(parse_err(&raw), ParseError::Version);
    let out = drive(&raw);
    out.only(505);
}

/// §3.1.2.17 Start line and CSeq method mismatch: 400.
#[test]
fn mismatch01() {
    let raw = rfc4475("mismatch01");
    let m = parse(&raw);
    assert!(matches!(
        m.validate_request(),
        Err(ParseError::Inconsistent(_))
    ));
    drive(&raw).only(400);
}

/// §3.1.2.18 Unknown method with a CSeq method mismatch: the RFC prefers 501
/// and accepts 400; we check the CSeq before the method and answer 400.
#[test]
fn mismatch02() {
    let raw = rfc4475("mismatch02");
    let m = parse(&raw);
    assert_eq!(
        m.method(),
        Some(&Method::Extension(Bytes::from_static(b"NEWMETHOD")))
    );
    assert!(matches!(
        m.validate_request(),
        Err(ParseError::Inconsistent(_))
    ));
    drive(&raw).only(400);
}

/// §3.1.2.19 Overlarge response code (4294967301): dropped.
#[test]
fn bigcode() {
    let raw = rfc4475("bigcode");
    assert!(matches!(parse_err(&raw), ParseError::StartLine(_)));
    let out = drive(&raw);
    out.dropped();
    out.no_call();
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.2: transaction layer
// ---------------------------------------------------------------------------

/// §3.2.1 Missing transaction identifier (`branch=z9hG4bK` alone): the RFC
/// allows 400 or falling back to RFC 2543 matching; we fall back (the branch
/// is not taken as an RFC 3261 identifier) and answer the OPTIONS: 200.
#[test]
fn badbranch() {
    let raw = rfc4475("badbranch");
    let m = parse(&raw);
    m.validate_request().expect("syntactically valid");
    assert_eq!(m.top_via().unwrap().branch(), Some(&b"z9hG4bK"[..]));
    assert!(
        !m.top_via().unwrap().is_rfc3261_branch(),
        "a cookie without an identifier"
    );
    drive(&raw).only(200);
}

/// §3.2.1, continued: with the RFC 2543 fallback, a second request from the
/// same sent-by with the same bare branch but another Call-ID is a new
/// transaction, not a retransmission of the first (it gets its own 200).
#[test]
fn badbranch_requests_are_not_merged() {
    let first = rfc4475("badbranch");
    let text = String::from_utf8(first.clone()).unwrap();
    let second = text
        .replace(
            "badbranch.sadonfo23i420jv0as0derf3j3n",
            "badbranch.second-call",
        )
        .replace("tag=33242", "tag=44353");
    let mut ep = Endpoint::new(Config::default());
    let now = Instant::now();
    ep.handle_datagram(now, peer(), Bytes::from(first));
    ep.handle_datagram(now, peer(), Bytes::from(second));
    let mut call_ids = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        let m = Message::parse_datagram(t.payload).unwrap();
        assert_eq!(m.status(), Some(200));
        call_ids.push(m.call_id().unwrap().to_vec());
    }
    assert_eq!(
        call_ids,
        vec![
            b"badbranch.sadonfo23i420jv0as0derf3j3n".to_vec(),
            b"badbranch.second-call".to_vec()
        ]
    );
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.3: application layer
// ---------------------------------------------------------------------------

/// §3.3.1 Missing required header fields (no Call-ID, From, To): the parser
/// must not break, and "ideally" the answer is 400. The top Via is enough to
/// route it; the response copies what the request has.
#[test]
fn insuf() {
    let raw = rfc4475("insuf");
    let m = parse(&raw);
    assert!(m.header(HeaderName::From).is_none());
    assert!(m.header(HeaderName::To).is_none());
    assert!(m.header(HeaderName::CallId).is_none());
    assert!(m.validate_request().is_err());
    let out = drive(&raw);
    let r = out.only(400);
    assert!(r.header(HeaderName::From).is_none() && r.header(HeaderName::CallId).is_none());
    out.no_call();
}

/// §3.3.2 Request-URI with an unknown scheme: parses; 416.
#[test]
fn unkscm() {
    let raw = rfc4475("unkscm");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    assert_eq!(Uri::parse(m.request_uri()).unwrap().scheme, Scheme::Other);
    drive(&raw).only(416);
}

/// §3.3.3 Request-URI with a known but atypical scheme (`soap.beep`): parses;
/// we never accept it as a target, so it is treated as unknown: 416.
#[test]
fn novelsc() {
    let raw = rfc4475("novelsc");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    assert_eq!(Uri::parse(m.request_uri()).unwrap().scheme, Scheme::Other);
    drive(&raw).only(416);
}

/// §3.3.4 Unknown URI schemes in To, From and Contact: syntactically valid and
/// parsed. The RFC says a registrar answers 400 (an AOR must be SIP/SIPS); we
/// are not a registrar, so the REGISTER gets 501 (not 416: the Request-URI is
/// a sip URI).
#[test]
fn unksm2() {
    let raw = rfc4475("unksm2");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    let to = m.to_header().unwrap();
    assert_eq!(
        (to.uri.scheme, to.uri.raw),
        (Scheme::Other, &b"isbn:2983792873"[..])
    );
    let from = m.from_header().unwrap();
    assert_eq!(
        (from.uri.scheme, from.uri.raw),
        (Scheme::Other, &b"http://www.example.com"[..])
    );
    let contact = m.contacts().next().unwrap().unwrap();
    assert_eq!(
        (contact.uri.scheme, contact.uri.raw),
        (Scheme::Other, &b"name:John_Smith"[..])
    );
    drive(&raw).only(501);
}

/// §3.3.5 Proxy-Require and Require: 420 with Unsupported listing the Require
/// values (we answer as a UAS, so Proxy-Require is not ours to judge).
#[test]
fn bext01() {
    let raw = rfc4475("bext01");
    let out = drive(&raw);
    let r = out.only(420);
    let unsupported =
        String::from_utf8_lossy(r.header(HeaderName::Unsupported).expect("Unsupported"));
    assert!(
        unsupported.contains("nothingSupportsThis")
            && unsupported.contains("nothingSupportsThisEither")
    );
    assert!(
        !unsupported.contains("noProxiesSupportThis"),
        "{unsupported}"
    );
}

/// §3.3.6 Unknown Content-Type in an INVITE: an endpoint answers 415 (with
/// Accept saying what it takes).
#[test]
fn invut() {
    let raw = rfc4475("invut");
    let m = parse(&raw);
    m.validate_request().expect("syntactically valid");
    assert_eq!(m.content_type(), Some(&b"application/unknownformat"[..]));
    let out = drive(&raw);
    let r = out.only(415);
    assert_eq!(r.header(HeaderName::Accept), Some(&b"application/sdp"[..]));
    out.no_call();
}

/// §3.3.7 Unknown Authorization scheme: well formed. "Endpoints choosing not
/// to act as registrars will simply reject the request" (the RFC suggests
/// 405); REGISTER is not implemented at all here, so 501.
#[test]
fn regaut01() {
    let raw = rfc4475("regaut01");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    assert_eq!(
        m.header(HeaderName::Authorization),
        Some(&b"NoOneKnowsThisScheme opaque-data=here"[..])
    );
    assert_eq!(m.content_length(), Some(0), "`Content-Length:0`");
    drive(&raw).only(501);
}

/// §3.3.8 Multiple values in single-value fields (two Call-IDs, Tos, Froms,
/// Max-Forwards, CSeqs): must not break; 400.
#[test]
fn multi01() {
    let raw = rfc4475("multi01");
    let m = parse(&raw);
    assert_eq!(m.count(HeaderName::CallId), 2);
    assert_eq!(m.count(HeaderName::CSeq), 2);
    assert!(m.validate_request().is_err());
    let out = drive(&raw);
    let r = out.only(400);
    assert_eq!(r.count(HeaderName::CSeq), 2, "both CSeq lines copied");
    out.no_call();
}

/// §3.3.9 Multiple conflicting Content-Length values: an error over UDP (400);
/// fatal over TCP.
#[test]
fn mcl01() {
    let raw = rfc4475("mcl01");
    assert_eq!(parse_err(&raw), ParseError::ContentLength);
    drive(&raw).only(400);
    let mut f = StreamFramer::new(65535);
    f.extend(&raw);
    assert_eq!(f.next().unwrap_err(), ParseError::ContentLength);
}

/// §3.3.10 200 OK with a broadcast address in the second Via: well formed;
/// an endpoint discards it.
#[test]
fn bcast() {
    let raw = rfc4475("bcast");
    let m = parse(&raw);
    let vias: Vec<Via<'_>> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias[1].host, v4("255.255.255.255"));
    drive(&raw).dropped();
}

/// §3.3.11 Max-Forwards of zero: "an endpoint should process the request as if
/// the Max-Forwards field value were still positive". The OPTIONS gets 200.
/// (The endpoint answers 483 to an INVITE with Max-Forwards 0, see
/// docs/sip-conformance.md.)
#[test]
fn zeromf() {
    let raw = rfc4475("zeromf");
    let m = parse(&raw);
    assert_eq!(m.max_forwards().unwrap(), Some(0));
    drive(&raw).only(200);
}

/// §3.3.12 REGISTER with a contact parameter: `unknownparam` is a header
/// (contact) parameter, not a URI parameter. 501 (no registrar).
#[test]
fn cparam01() {
    let raw = rfc4475("cparam01");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c.uri.params.is_empty(), "not a URI parameter");
    assert_eq!(c.params.get("unknownparam"), Some(None));
    assert_eq!(c.uri.user, Some(&b"+19725552222"[..]));
    drive(&raw).only(501);
}

/// §3.3.13 REGISTER with a URL parameter: inside `<>`, `unknownparam` is a
/// URI parameter. 501 (no registrar).
#[test]
fn cparam02() {
    let raw = rfc4475("cparam02");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(c.uri.param("unknownparam"), Some(&b""[..]));
    assert_eq!(c.params.get("unknownparam"), None);
    drive(&raw).only(501);
}

/// §3.3.14 REGISTER with a URL-escaped header in the Contact URI (in `<>`):
/// valid, the header stays in the URI. 501 (no registrar).
#[test]
fn regescrt() {
    let raw = rfc4475("regescrt");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(c.uri.headers, b"Route=%3Csip:sip.example.com%3E");
    drive(&raw).only(501);
}

/// §3.3.15 Unacceptable Accept offering (`Accept: text/nobodyKnowsThis` on an
/// INVITE with SDP): well formed, but our 2xx would carry SDP the caller says
/// it cannot take. The RFC allows 406 (with a Warning) or 400; the endpoint
/// answers 406 with Accept and a Warning, and reports no call.
#[test]
fn sdp01() {
    let raw = rfc4475("sdp01");
    let m = parse(&raw);
    m.validate_request().expect("well formed");
    assert_eq!(
        m.header(HeaderName::Accept),
        Some(&b"text/nobodyKnowsThis"[..])
    );
    let out = drive(&raw);
    let r = out.only(406);
    assert_eq!(r.header(HeaderName::Accept), Some(&b"application/sdp"[..]));
    assert!(r.header_by_name("Warning").is_some());
    out.no_call();
}

// ---------------------------------------------------------------------------
// RFC 4475 §3.4: backward compatibility
// ---------------------------------------------------------------------------

/// §3.4.1 INVITE with RFC 2543 syntax: no branch, no From tag, no
/// Content-Length (the body is the rest of the datagram), no Max-Forwards.
/// Accepted: 100 and the call.
#[test]
fn inv2543() {
    let raw = rfc4475("inv2543");
    let m = parse(&raw);
    m.validate_request().expect("RFC 2543 syntax is accepted");
    assert_eq!(m.top_via().unwrap().branch(), None);
    assert_eq!(m.from_header().unwrap().tag(), None);
    assert_eq!(m.content_length(), None);
    assert_eq!(m.max_forwards().unwrap(), None);
    assert!(m.body().starts_with(b"v=0") && m.body().ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    let call = out.incoming_call();
    assert_eq!(call.sdp.as_deref(), Some(m.body()));
}

/// `test.dat` is in the RFC's archive but not described in its text: an
/// INVITE whose Request-Line has no version and with a header line without a
/// colon (and no Via). It does not parse and cannot be answered: dropped.
#[test]
fn test_dat_extra_archive_file() {
    let raw = rfc4475("test");
    assert!(matches!(parse_err(&raw), ParseError::StartLine(_)));
    assert!(Message::parse_head_lenient(Bytes::from(raw.clone())).is_err());
    let out = drive(&raw);
    out.dropped();
    out.no_call();
}

// ---------------------------------------------------------------------------
// RFC 5118: IPv6 (archived with bare LF line ends, which we accept)
// ---------------------------------------------------------------------------

/// §4.1 A valid IPv6 reference in the Request-URI. REGISTER: 501.
#[test]
fn ipv6_good() {
    let raw = rfc5118("ipv6-good");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!((uri.host, uri.port), (Some(v6("2001:db8::10")), None));
    assert_eq!(m.top_via().unwrap().host, v6("2001:db8::9:1"));
    assert_eq!(
        m.contacts().next().unwrap().unwrap().uri.host,
        Some(v6("2001:db8::1"))
    );
    drive(&raw).only(501);
}

/// §4.2 An IPv6 address without brackets in the Request-URI: 400.
#[test]
fn ipv6_bad() {
    let raw = rfc5118("ipv6-bad");
    let m = parse(&raw);
    assert_eq!(
        m.validate_request(),
        Err(ParseError::StartLine("Request-URI"))
    );
    drive(&raw).only(400);
}

/// §4.3 `[2001:db8::10:5070]`: everything inside the brackets is the address;
/// there is no port.
#[test]
fn port_ambiguous() {
    let raw = rfc5118("port-ambiguous");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!((uri.host, uri.port), (Some(v6("2001:db8::10:5070")), None));
    drive(&raw).only(501);
}

/// §4.4 `[2001:db8::10]:5070`: address and port.
#[test]
fn port_unambiguous() {
    let raw = rfc5118("port-unambiguous");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let uri = Uri::parse(m.request_uri()).unwrap();
    assert_eq!((uri.host, uri.port), (Some(v6("2001:db8::10")), Some(5070)));
    drive(&raw).only(501);
}

/// §4.5 `received=[2001:db8::9:255]` with delimiters: valid. A BYE for a
/// dialog we do not have: 481; our Via rewriting keeps their `received`.
#[test]
fn via_received_param_with_delim() {
    let raw = rfc5118("via-received-param-with-delim");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let via = m.top_via().unwrap();
    assert_eq!(via.host, v6("2001:db8::9:1"));
    assert_eq!(via.received(), Some(&b"[2001:db8::9:255]"[..]));
    assert_eq!(via.branch(), Some(&b"z9hG4bKas3-111"[..]));
    drive(&raw).only(481);
}

/// §4.5 `received=2001:db8::9:255` without delimiters: valid too. OPTIONS: 200.
#[test]
fn via_received_param_no_delim() {
    let raw = rfc5118("via-received-param-no-delim");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let via = m.top_via().unwrap();
    assert_eq!(via.received(), Some(&b"2001:db8::9:255"[..]));
    assert_eq!(
        via.branch(),
        Some(&b"z9hG4bKas3"[..]),
        "the parameter after an unbracketed address"
    );
    drive(&raw).only(200);
}

/// Replaces the archived Content-Length with the body's real length.
fn with_true_content_length(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap();
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.starts_with("Content-Length:") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    format!("{}\n\n{body}", head.join("\n")).into_bytes()
}

/// §4.6 IPv6 in SDP. The archived message says Content-Length 268 for a body
/// of 242 octets (wrong in the archive, as the corpus README notes): as
/// archived it is a framing error over UDP, 400. With the length corrected it
/// is an INVITE with IPv6 in Via, Contact and SDP: 100 and the call.
#[test]
fn ipv6_in_sdp() {
    let raw = rfc5118("ipv6-in-sdp");
    assert_eq!(parse_err(&raw), ParseError::ContentLengthTooLarge);
    drive(&raw).only(400);

    let fixed = with_true_content_length(&raw);
    let m = parse(&fixed);
    m.validate_request().expect("valid once framed right");
    assert_eq!(
        Uri::parse(m.request_uri()).unwrap().host,
        Some(v6("2001:db8::10"))
    );
    assert_eq!(m.top_via().unwrap().host, v6("2001:db8::20"));
    let body = std::str::from_utf8(m.body()).unwrap();
    assert!(body.contains("c=IN IP6 2001:db8::20"));
    let out = drive(&fixed);
    assert_eq!(out.statuses(), vec![100]);
    out.incoming_call();
}

/// §4.7 Multiple IP addresses (IPv6 and IPv4) in Via: valid. A BYE outside a
/// dialog: 481.
#[test]
fn mult_ip_in_header() {
    let raw = rfc5118("mult-ip-in-header");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let vias: Vec<Via<'_>> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host, vias[0].port),
        (v6("2001:db8::9:1"), Some(6050))
    );
    assert_eq!(vias[1].host, v4("192.0.2.1"));
    assert_eq!(vias[2].host, v6("2001:db8::9:255"));
    assert_eq!(vias[2].received(), Some(&b"192.0.2.200"[..]));
    drive(&raw).only(481);
}

/// §4.8 Multiple IP addresses in SDP. The archived Content-Length (181) is one
/// more than the body (180): as archived, 400; corrected, an INVITE whose SDP
/// has an IPv4 and an IPv6 media line: 100 and the call.
#[test]
fn mult_ip_in_sdp() {
    let raw = rfc5118("mult-ip-in-sdp");
    assert_eq!(parse_err(&raw), ParseError::ContentLengthTooLarge);
    drive(&raw).only(400);

    let fixed = with_true_content_length(&raw);
    let m = parse(&fixed);
    m.validate_request().expect("valid once framed right");
    let body = std::str::from_utf8(m.body()).unwrap();
    assert!(body.contains("c=IN IP4 192.0.2.1") && body.contains("c=IN IP6 2001:db8::1"));
    let out = drive(&fixed);
    assert_eq!(out.statuses(), vec![100]);
    out.incoming_call();
}

/// §4.9 IPv4-mapped IPv6 addresses in Via, Contact and SDP: valid (its
/// Content-Length is right). 100 and the call.
#[test]
fn ipv4_mapped_ipv6() {
    let raw = rfc5118("ipv4-mapped-ipv6");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let vias: Vec<Via<'_>> = m.vias().map(|v| v.unwrap()).collect();
    assert_eq!(
        (vias[0].host, vias[0].port),
        (v6("::ffff:192.0.2.10"), Some(19823))
    );
    assert_eq!((vias[1].host, vias[1].port), (v6("::ffff:192.0.2.2"), None));
    assert_eq!(
        m.contacts().next().unwrap().unwrap().uri.host,
        Some(v6("::ffff:192.0.2.2"))
    );
    assert_eq!(m.body().len(), 236);
    let out = drive(&raw);
    assert_eq!(out.statuses(), vec![100]);
    // sent-by is an IP literal other than the source: `received` added.
    assert!(out.responses[0].1.top_via().unwrap().received().is_some());
    out.incoming_call();
}

/// §4.10 The RFC 3261 ABNF bug: `[2001:db8:::192.0.2.1]` (three colons). RFC
/// 5118: "an implementation must tolerate both of the above constructs"; we
/// read it as `2001:db8::192.0.2.1`. (Archived without the empty line after
/// the headers.) OPTIONS: 200.
#[test]
fn ipv6_bug_abnf_3_colons() {
    let raw = rfc5118("ipv6-bug-abnf-3-colons");
    let m = parse(&raw);
    m.validate_request().expect("tolerated");
    let want = Some(v6("2001:db8::192.0.2.1"));
    assert_eq!(Uri::parse(m.request_uri()).unwrap().host, want);
    assert_eq!(m.to_header().unwrap().uri.host, want);
    drive(&raw).only(200);
}

/// §4.10 The correct two-colon form: the same address. OPTIONS: 200.
#[test]
fn ipv6_correct_abnf_2_colons() {
    let raw = rfc5118("ipv6-correct-abnf-2-colons");
    let m = parse(&raw);
    m.validate_request().expect("valid");
    let want = Some(v6("2001:db8::192.0.2.1"));
    assert_eq!(Uri::parse(m.request_uri()).unwrap().host, want);
    assert_eq!(m.to_header().unwrap().uri.host, want);
    drive(&raw).only(200);
}

/// The framer and the datagram parser agree on the valid RFC 4475 requests
/// when they arrive over a stream (Content-Length present).
#[test]
fn valid_messages_frame_the_same_over_a_stream() {
    for name in [
        "wsinv",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "semiuri",
        "transports",
        "mpart01",
    ] {
        let raw = rfc4475(name);
        let dgram = parse(&raw);
        let mut f = StreamFramer::new(65535);
        f.extend(&raw);
        match f.next() {
            Ok(Some(Framed::Message(m))) => assert_eq!(m.body(), dgram.body(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}
