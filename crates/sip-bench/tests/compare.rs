//! Tricky messages, most modelled on RFC 4475 (SIP torture tests) and RFC 5118
//! (IPv6), plus the cases where DEPENDENCIES.md found rsip or rsipstack wrong.
//!
//! Our parser must get every case right; that is asserted. rsip and rsipstack
//! are run on the same bytes and held to the same expectation, but only
//! reported (run with `--nocapture` to see the table).

use hotline_sip_bench::comparators::{rsip_impl, rsipstack_impl};
use hotline_sip_bench::{Extract, Start};

/// What a right parser does with a message. Only the fields that are `Some`
/// are checked.
#[derive(Debug, Default)]
struct Accept {
    method: Option<&'static str>,
    request_uri: Option<&'static str>,
    status: Option<(u16, &'static str)>,
    via_host: Option<&'static str>,
    via_port: Option<Option<u16>>,
    via_branch: Option<&'static str>,
    from_user: Option<&'static str>,
    from_tag: Option<&'static str>,
    to_user: Option<&'static str>,
    to_tag: Option<Option<&'static str>>,
    call_id: Option<&'static str>,
    cseq: Option<(u32, &'static str)>,
    body: Option<Vec<u8>>,
}

#[derive(Debug)]
enum Expect {
    Accept(Box<Accept>),
    /// A right parser refuses the message (the endpoint answers 400 or 505).
    Reject,
}

struct Case {
    name: &'static str,
    raw: Vec<u8>,
    expect: Expect,
}

/// `head` (header lines, each ending in CRLF, `{CL}` standing for the body's
/// length), the empty line, then `body`.
fn msg(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = head.replace("{CL}", &body.len().to_string()).into_bytes();
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The usual dialog-forming headers, for cases about something else.
const BASIC: &str = "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n";

const SDP: &[u8] = b"v=0\r\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n\
s=-\r\n\
c=IN IP4 192.0.2.4\r\n\
t=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\n\
m=video 3227 RTP/AVP 31\r\n\
a=rtpmap:31 LPC\r\n";

fn basic_accept() -> Accept {
    Accept {
        via_host: Some("pc33.atlanta.example.com"),
        via_branch: Some("z9hG4bK776asdhds"),
        from_user: Some("alice"),
        from_tag: Some("1928301774"),
        to_user: Some("bob"),
        to_tag: Some(None),
        call_id: Some("a84b4c76e66710@pc33.atlanta.example.com"),
        ..Accept::default()
    }
}

fn accept(a: Accept) -> Expect {
    Expect::Accept(Box::new(a))
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let mut binary = vec![
        0u8, 1, 2, 0xff, 0xfe, b'\r', b'\n', b'\r', b'\n', 0x80, b'%', 0x00,
    ];
    binary.extend((0..=255u8).rev());
    let long_value = "x".repeat(3000);
    let many_vias: String = (0..30)
        .map(|i| format!("Via: SIP/2.0/UDP proxy{i}.example.com;branch=z9hG4bK{i}hop\r\n"))
        .collect();
    vec![
        Case {
            name: "wsinv: folding, LWS and odd case everywhere (RFC 4475 3.1.1.1)",
            raw: msg(
                "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : {CL}\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
Content-Type: application/sdp\r\n\
Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33\r\n",
                SDP,
            ),
            expect: accept(Accept {
                method: Some("INVITE"),
                via_host: Some("192.0.2.2"),
                via_branch: Some("390skdjuw"),
                from_user: Some("jdrosen"),
                from_tag: Some("98asjd8"),
                to_user: Some("vivekg"),
                to_tag: Some(Some("1918181833n")),
                call_id: Some("wsinv.ndaksdj@192.0.2.1"),
                cseq: Some((9, "INVITE")),
                body: Some(SDP.to_vec()),
                ..Accept::default()
            }),
        },
        Case {
            name: "folded From and Via (RFC 3261 7.3.1)",
            raw: msg(
                "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com\r\n ;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice\r\n <sip:alice@atlanta.example.com>\r\n\t;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                cseq: Some((314159, "INVITE")),
                body: Some(Vec::new()),
                ..basic_accept()
            }),
        },
        Case {
            name: "white space before the colon",
            raw: msg(
                "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via \t: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards : 70\r\n\
To  : Bob <sip:bob@biloxi.example.com>\r\n\
From\t: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID   : a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq : 2 OPTIONS\r\n\
Content-Length : 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                method: Some("OPTIONS"),
                cseq: Some((2, "OPTIONS")),
                ..basic_accept()
            }),
        },
        Case {
            name: "extension method with every token character (RFC 4475 3.1.1.2 intmeth)",
            raw: msg(
                "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n\
To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\n\
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.\r\n\
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n\
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n\
Max-Forwards: 255\r\n\
extensionHeader-!.%*+_`'~:\u{feff}大停電\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                method: Some("!interesting-Method0123456789_*+`.%indeed'~"),
                via_host: Some("host1.example.com"),
                via_branch: Some("z9hG4bK-.!%66*_+`'~"),
                from_user: Some("mundane"),
                from_tag: Some("_token~1'+`*%!-."),
                call_id: Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"),
                cseq: Some((139122385, "!interesting-Method0123456789_*+`.%indeed'~")),
                ..Accept::default()
            }),
        },
        Case {
            name: "plain extension method (RFC 3261 7.1)",
            raw: msg(
                &format!(
                    "NEWMETHOD sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 8 NEWMETHOD\r\nContent-Length: 0\r\n"
                ),
                b"",
            ),
            expect: accept(Accept {
                method: Some("NEWMETHOD"),
                cseq: Some((8, "NEWMETHOD")),
                ..basic_accept()
            }),
        },
        Case {
            name: "compact header names (RFC 3261 7.3.3)",
            raw: msg(
                "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
t: Bob <sip:bob@biloxi.example.com>\r\n\
f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
i: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:alice@pc33.atlanta.example.com>\r\n\
k: timer\r\n\
c: application/sdp\r\n\
l: {CL}\r\n",
                SDP,
            ),
            expect: accept(Accept {
                method: Some("INVITE"),
                cseq: Some((1, "INVITE")),
                body: Some(SDP.to_vec()),
                ..basic_accept()
            }),
        },
        Case {
            name: "Content-Length honoured: bytes after the body are dropped (RFC 4475 3.1.1.8 dblreq)",
            raw: {
                let mut raw = msg(
                    &format!(
                        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n"
                    ),
                    b"v=0\r\n",
                );
                raw.extend_from_slice(b"o=garbage after the declared length\r\n");
                raw
            },
            expect: accept(Accept {
                body: Some(b"v=0\r\n".to_vec()),
                ..basic_accept()
            }),
        },
        Case {
            name: "IPv6 sent-by in Via with port, rport, received (RFC 5118 4.5)",
            raw: msg(
                "REGISTER sip:[2001:db8::10] SIP/2.0\r\n\
To: sip:user@example.com\r\n\
From: sip:user@example.com;tag=81x2\r\n\
Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;received=[2001:db8::9:255];rport\r\n\
Call-ID: SSG9559905523997077@hlau_4100\r\n\
Max-Forwards: 70\r\n\
CSeq: 2 REGISTER\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                method: Some("REGISTER"),
                request_uri: Some("sip:[2001:db8::10]"),
                via_host: Some("2001:db8::9:1"),
                via_port: Some(Some(5070)),
                via_branch: Some("z9hG4bKas3-111"),
                from_tag: Some("81x2"),
                cseq: Some((2, "REGISTER")),
                ..Accept::default()
            }),
        },
        Case {
            name: "tel: URI in From (RFC 3966)",
            raw: msg(
                "INVITE sip:+18005550199@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.45:5060;branch=z9hG4bK-tel1\r\n\
Max-Forwards: 70\r\n\
From: \"Caller\" <tel:+1-201-555-0123;phone-context=example.com>;tag=t3l\r\n\
To: <sip:+18005550199@192.0.2.10>\r\n\
Call-ID: tel-from@203.0.113.45\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                from_user: Some("+1-201-555-0123"),
                from_tag: Some("t3l"),
                to_user: Some("+18005550199"),
                ..Accept::default()
            }),
        },
        Case {
            name: "reason phrase kept (RFC 3261 21: the phrase is free text)",
            raw: msg(
                &format!(
                    "SIP/2.0 200 Muy Bien\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Length: 0\r\n"
                ),
                b"",
            ),
            expect: accept(Accept {
                status: Some((200, "Muy Bien")),
                ..basic_accept()
            }),
        },
        Case {
            name: "carrier reason phrase on a standard code kept",
            raw: msg(
                &format!(
                    "SIP/2.0 403 Caller Origination Number is Invalid\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Length: 0\r\n"
                ),
                b"",
            ),
            expect: accept(Accept {
                status: Some((403, "Caller Origination Number is Invalid")),
                ..basic_accept()
            }),
        },
        Case {
            name: "unknown status code keeps its phrase",
            raw: msg(
                &format!("SIP/2.0 499 Odd Thing\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Length: 0\r\n"),
                b"",
            ),
            expect: accept(Accept {
                status: Some((499, "Odd Thing")),
                ..basic_accept()
            }),
        },
        Case {
            name: "binary body intact (NUL, 0xFF, CRLFCRLF inside)",
            raw: msg(
                &format!(
                    "MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 3 MESSAGE\r\nContent-Type: application/octet-stream\r\nContent-Length: {{CL}}\r\n"
                ),
                &binary,
            ),
            expect: accept(Accept {
                method: Some("MESSAGE"),
                body: Some(binary.clone()),
                ..basic_accept()
            }),
        },
        Case {
            name: "comma-separated Via: the top value's branch",
            raw: msg(
                "BYE sip:bob@192.0.2.4 SIP/2.0\r\n\
Via: SIP/2.0/UDP first.example.com:5060;branch=z9hG4bKfirst, SIP/2.0/TCP second.example.com;branch=z9hG4bKsecond\r\n\
Via: SIP/2.0/UDP third.example.com;branch=z9hG4bKthird\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 231 BYE\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                via_host: Some("first.example.com"),
                via_port: Some(Some(5060)),
                via_branch: Some("z9hG4bKfirst"),
                to_tag: Some(Some("a6c85cf")),
                cseq: Some((231, "BYE")),
                ..Accept::default()
            }),
        },
        Case {
            name: "%3A escape kept in the Request-URI, decoded in To (RFC 4475 3.1.1.3 esc01)",
            raw: msg(
                "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n\
To: sip:%75se%72@example.com\r\n\
From: <sip:I%20have%20spaces@example.net>;tag=938\r\n\
Max-Forwards: 87\r\n\
i: esc01.239409asdfakjkn23onasd0-3234\r\n\
CSeq: 234234 INVITE\r\n\
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\r\n\
C: application/sdp\r\n\
Contact:\r\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\n\
Content-Length: {CL}\r\n",
                SDP,
            ),
            expect: accept(Accept {
                request_uri: Some("sip:sips%3Auser%40example.com@example.net"),
                to_user: Some("user"),
                from_user: Some("I have spaces"),
                from_tag: Some("938"),
                call_id: Some("esc01.239409asdfakjkn23onasd0-3234"),
                ..Accept::default()
            }),
        },
        Case {
            name: "escaped NUL in a user part (RFC 4475 3.1.1.4 escnull)",
            raw: msg(
                "REGISTER sip:example.com SIP/2.0\r\n\
To: sip:null-%00-null@example.com\r\n\
From: sip:null-%00-null@example.com;tag=839923423\r\n\
Max-Forwards: 70\r\n\
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\r\n\
CSeq: 14398234 REGISTER\r\n\
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n\
Contact: <sip:%00@host5.example.com>\r\n\
Contact: <sip:%00%00@host5.example.com>\r\n\
L:0\r\n",
                b"",
            ),
            expect: accept(Accept {
                from_user: Some("null-\0-null"),
                from_tag: Some("839923423"),
                cseq: Some((14398234, "REGISTER")),
                ..Accept::default()
            }),
        },
        Case {
            name: "Content-Length larger than the datagram (RFC 4475 3.1.2.2 clerr)",
            raw: msg(
                &format!(
                    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 9999\r\n"
                ),
                SDP,
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "negative Content-Length (RFC 4475 3.1.2.3 ncl)",
            raw: msg(
                &format!(
                    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: -999\r\n"
                ),
                SDP,
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "missing Content-Length on UDP: the body runs to the end (RFC 3261 18.3)",
            raw: msg(
                &format!(
                    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
                ),
                SDP,
            ),
            expect: accept(Accept {
                body: Some(SDP.to_vec()),
                ..basic_accept()
            }),
        },
        Case {
            name: "headers after a 0xFF byte are kept",
            raw: msg(
                "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
Subject: SUBJECT\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 4 INVITE\r\n\
Content-Length: 0\r\n",
                b"",
            )
            // Latin-1 and bytes that are never UTF-8.
            .replace_bytes(b"SUBJECT", b"caf\xe9 \xff\xfe latin-1"),
            expect: accept(Accept {
                cseq: Some((4, "INVITE")),
                ..basic_accept()
            }),
        },
        Case {
            name: "leading CRLFs before the start line (RFC 3261 7.5)",
            raw: {
                let mut raw = b"\r\n\r\n".to_vec();
                raw.extend(msg(
                    &format!("OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 5 OPTIONS\r\nContent-Length: 0\r\n"),
                    b"",
                ));
                raw
            },
            expect: accept(Accept {
                method: Some("OPTIONS"),
                cseq: Some((5, "OPTIONS")),
                ..basic_accept()
            }),
        },
        Case {
            name: "header names in any case (RFC 3261 7.3.1)",
            raw: msg(
                "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
vIA: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
max-forwards: 70\r\n\
TO: Bob <sip:bob@biloxi.example.com>\r\n\
fRoM: Alice <sip:alice@atlanta.example.com>;TAG=1928301774\r\n\
CALL-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
cseq: 6 OPTIONS\r\n\
content-LENGTH: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                cseq: Some((6, "OPTIONS")),
                ..basic_accept()
            }),
        },
        Case {
            name: "escaped quotes in a display name (RFC 4475 3.1.1.1 From)",
            raw: msg(
                                    "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: \"J Rosenberg \\\\\\\"<sip:evil@example.com>\\\"\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 7 OPTIONS\r\nContent-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                cseq: Some((7, "OPTIONS")),
                ..basic_accept()
            }),
        },
        Case {
            name: "Via parameters in another order, rport without value (RFC 3581)",
            raw: msg(
                "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4:5062;rport;received=192.0.2.200;branch=z9hG4bKnashds8;ttl=16\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
From: <sip:alice@atlanta.example.com>;tag=abc\r\n\
Call-ID: params@192.0.2.4\r\n\
CSeq: 8 OPTIONS\r\nContent-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                via_host: Some("192.0.2.4"),
                via_port: Some(Some(5062)),
                via_branch: Some("z9hG4bKnashds8"),
                ..Accept::default()
            }),
        },
        Case {
            name: "long message: 30 Via lines and a 3000-byte header (RFC 4475 3.1.1.7 longreq)",
            raw: msg(
                &format!(
                    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n{many_vias}X-Long: {long_value}\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 9 INVITE\r\nContent-Length: 0\r\n"
                ),
                b"",
            ),
            expect: accept(Accept {
                via_host: Some("proxy0.example.com"),
                via_branch: Some("z9hG4bK0hop"),
                cseq: Some((9, "INVITE")),
                ..Accept::default()
            }),
        },
        Case {
            name: "bare LF line ends (RFC 5118 archives, liberal receiver)",
            raw: msg(
                &format!("OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 10 OPTIONS\r\nContent-Length: 0\r\n"),
                b"",
            )
            .replace_bytes(b"\r\n", b"\n"),
            expect: accept(Accept {
                cseq: Some((10, "OPTIONS")),
                ..basic_accept()
            }),
        },
        Case {
            name: "unsupported SIP version (RFC 4475 3.1.2.16 badvers)",
            raw: msg(
                &format!("OPTIONS sip:bob@biloxi.example.com SIP/7.0\r\n{BASIC}CSeq: 11 OPTIONS\r\nContent-Length: 0\r\n"),
                b"",
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "unterminated quoted display name (RFC 4475 3.1.2.6 quotbal)",
            raw: msg(
                                    "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
To: \"Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 12 OPTIONS\r\nContent-Length: 0\r\n",
                b"",
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "no LWS between display name and < (RFC 4475 3.1.1.6 lwsdisp)",
            raw: msg(
                "OPTIONS sip:user@example.com SIP/2.0\r\n\
To: sip:user@example.com\r\n\
From: caller<sip:caller@example.com>;tag=323\r\n\
Max-Forwards: 70\r\n\
Call-ID: lwsdisp.1234abcd@funky.example.com\r\n\
CSeq: 60 OPTIONS\r\n\
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\r\n\
l: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                from_user: Some("caller"),
                from_tag: Some("323"),
                cseq: Some((60, "OPTIONS")),
                ..Accept::default()
            }),
        },
        Case {
            name: "semicolon in the Request-URI user part (RFC 4475 3.1.1.9 semiuri)",
            raw: msg(
                "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\r\n\
To: sip:j_user@example.com\r\n\
From: sip:caller@example.org;tag=33242\r\n\
Max-Forwards: 3\r\n\
Call-ID: semiuri.0ha0isndaksdj\r\n\
CSeq: 8 OPTIONS\r\n\
Accept: application/sdp, application/pkcs7-mime,\r\n        multipart/mixed, multipart/signed,\r\n        message/sip, message/sipfrag\r\n\
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n\
l: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                request_uri: Some("sip:user;par=u%40example.net@example.com"),
                from_tag: Some("33242"),
                to_user: Some("j_user"),
                ..Accept::default()
            }),
        },
        Case {
            name: "unknown transports in Via (RFC 4475 3.1.1.10 transports)",
            raw: msg(
                "OPTIONS sip:user@example.com SIP/2.0\r\n\
To: sip:user@example.com\r\n\
From: <sip:caller@example.com>;tag=323\r\n\
Max-Forwards: 70\r\n\
Call-ID: transports.kijh4akdnaqjkwendsasfdj\r\n\
Accept: application/sdp\r\n\
CSeq: 60 OPTIONS\r\n\
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\r\n\
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\r\n\
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\r\n\
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n\
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\r\n\
l: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                via_host: Some("t1.example.com"),
                via_branch: Some("z9hG4bKkdjuw"),
                ..Accept::default()
            }),
        },
        Case {
            name: "UTF-8 reason phrase (RFC 4475 3.1.1.12 unreason)",
            raw: msg(
                "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\r\n\
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n\
Call-ID: unreason.1234ksdfak3j2erwedfsASdf\r\n\
CSeq: 35 INVITE\r\n\
From: sip:user@example.com;tag=11141343\r\n\
To: sip:user@example.edu;tag=2229\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                status: Some((200, "= 2**3 * 5**2 но сто девяносто девять - простое")),
                from_tag: Some("11141343"),
                to_tag: Some(Some("2229")),
                ..Accept::default()
            }),
        },
        Case {
            name: "empty reason phrase (RFC 4475 3.1.1.13 noreason)",
            raw: msg(
                "SIP/2.0 100 \r\n\
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n\
Call-ID: noreason.asndj203insdf99223ndf\r\n\
CSeq: 35 INVITE\r\n\
From: <sip:user@example.com>;tag=39ansfi3\r\n\
To: <sip:user@example.edu>;tag=902jndnke3\r\n\
Content-Length: 0\r\n",
                b"",
            ),
            expect: accept(Accept {
                status: Some((100, "")),
                ..Accept::default()
            }),
        },
        Case {
            name: "overlarge CSeq and Max-Forwards (RFC 4475 3.1.2.4 scalar02)",
            raw: msg(
                "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\r\n\
To: <sip:user@example.com>\r\n\
From: <sip:other@example.net>;tag=3jfhdsfjkn\r\n\
Max-Forwards: 300\r\n\
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n\
CSeq: 36893488147419103232 REGISTER\r\n\
l: 0\r\n",
                b"",
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "several SP between Request-Line elements (RFC 4475 3.1.2.9 lwsstart)",
            raw: msg(
                &format!("INVITE  sip:bob@biloxi.example.com  SIP/2.0\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Length: 0\r\n"),
                b"",
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "start line and CSeq method mismatch (RFC 4475 3.1.2.17 mismatch01)",
            raw: msg(
                &format!("OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n{BASIC}CSeq: 8 INVITE\r\nContent-Length: 0\r\n"),
                b"",
            ),
            expect: Expect::Reject,
        },
        Case {
            name: "overlarge response code (RFC 4475 3.1.2.19 bigcode)",
            raw: msg(
                &format!("SIP/2.0 4294967301 better\r\n{BASIC}CSeq: 1 INVITE\r\nContent-Length: 0\r\n"),
                b"",
            ),
            expect: Expect::Reject,
        },
    ]
}

trait ReplaceBytes {
    fn replace_bytes(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceBytes for Vec<u8> {
    fn replace_bytes(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut i = 0;
        while i < self.len() {
            if self[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self[i]);
                i += 1;
            }
        }
        out
    }
}

/// Checks one parser's result against the expectation; `Err` says what is wrong.
fn check(expect: &Expect, got: Result<Extract, String>) -> Result<(), String> {
    let a = match (expect, got) {
        (Expect::Reject, Err(_)) => return Ok(()),
        (Expect::Reject, Ok(_)) => return Err("accepted a message it must refuse".into()),
        (Expect::Accept(_), Err(e)) => return Err(format!("refused: {}", one_line(&e))),
        (Expect::Accept(a), Ok(got)) => (a, got),
    };
    let (want, got) = a;
    let mut wrong = Vec::new();
    macro_rules! field {
        ($name:literal, $want:expr, $got:expr) => {
            if let Some(w) = $want
                && $got != w
            {
                wrong.push(format!("{}: want {:?}, got {:?}", $name, w, $got));
            }
        };
    }
    match &got.start {
        Start::Request { method, uri } => {
            field!("method", want.method, method.as_str());
            field!("Request-URI", want.request_uri, uri.as_str());
            if want.status.is_some() {
                wrong.push("a request where a response was expected".into());
            }
        }
        Start::Response { code, reason } => {
            field!("status", want.status, (*code, reason.as_str()));
            if want.method.is_some() {
                wrong.push("a response where a request was expected".into());
            }
        }
    }
    field!("Via host", want.via_host, got.via_host.as_str());
    field!("Via port", want.via_port, got.via_port);
    field!(
        "Via branch",
        want.via_branch,
        got.via_branch.as_deref().unwrap_or("")
    );
    field!(
        "From user",
        want.from_user,
        got.from_user.as_deref().unwrap_or("")
    );
    field!(
        "From tag",
        want.from_tag,
        got.from_tag.as_deref().unwrap_or("")
    );
    field!(
        "To user",
        want.to_user,
        got.to_user.as_deref().unwrap_or("")
    );
    field!("To tag", want.to_tag, got.to_tag.as_deref());
    field!("Call-ID", want.call_id, got.call_id.as_str());
    field!("CSeq", want.cseq, (got.cseq, got.cseq_method.as_str()));
    if let Some(body) = &want.body
        && &got.body != body
    {
        wrong.push(format!(
            "body: want {} bytes, got {} bytes",
            body.len(),
            got.body.len()
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

/// The first line of an error, cut short (rsip's errors quote the whole message).
fn one_line(e: &str) -> String {
    let line = e.lines().next().unwrap_or("");
    match line.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Runs the comparators without letting one of their panics end the test.
fn guarded(f: fn(&[u8]) -> Result<Extract, String>, raw: &[u8]) -> Result<Extract, String> {
    std::panic::catch_unwind(|| f(raw)).unwrap_or_else(|_| Err("panicked".into()))
}

#[test]
fn hotline_gets_every_case_right_and_comparators_are_reported() {
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut ours_wrong = Vec::new();
    let mut tally = [0usize; 2];
    println!("{:<4} {:<8} {:<10} case", "ours", "rsip", "rsipstack");
    for case in &cases {
        let ours = check(&case.expect, Extract::hotline(&case.raw));
        let theirs = [
            check(&case.expect, guarded(rsip_impl::extract, &case.raw)),
            check(&case.expect, guarded(rsipstack_impl::extract, &case.raw)),
        ];
        let mark = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "WRONG" };
        println!(
            "{:<4} {:<8} {:<10} {}",
            mark(&ours),
            mark(&theirs[0]),
            mark(&theirs[1]),
            case.name
        );
        for (i, (name, r)) in ["rsip", "rsipstack"].iter().zip(&theirs).enumerate() {
            match r {
                Ok(()) => tally[i] += 1,
                Err(e) => println!("       {name}: {e}"),
            }
        }
        if let Err(e) = ours {
            println!("       hotline: {e}");
            ours_wrong.push(format!("{}: {e}", case.name));
        }
    }
    println!(
        "right: hotline {}/{n}, rsip {}/{n}, rsipstack {}/{n}",
        cases.len() - ours_wrong.len(),
        tally[0],
        tally[1],
        n = cases.len()
    );
    assert!(
        ours_wrong.is_empty(),
        "hotline-sip got these wrong:\n{}",
        ours_wrong.join("\n")
    );
}
