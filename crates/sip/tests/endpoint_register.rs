//! REGISTER through the endpoint (with `Config::registrar` on): the endpoint
//! makes the server transaction and reports [`Event::Register`]; the test
//! plays the application with the crate's [`RegisterHandler`] and answers
//! with `respond_register`. Also the keep-alive OPTIONS of `send_options`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{Dir, Harness, UAC_ADDR, UacConfig, header, t1s, t4, to_tag};
use hotline_sip::digest::{Challenge, DigestSecrets, NonceCount, ha1};
use hotline_sip::endpoint::{
    self, ALLOW, ALLOW_WITH_REGISTER, Event, Peer, RegisterId, RequestId, Transport,
};
use hotline_sip::message::{HeaderName, Message, Method};
use hotline_sip::registrar::{RegisterConfig, RegisterHandler, RegisterInput};

/// The AOR's user: the UAC's requests go to `sip:0800123@hotline.example`.
const USER: &str = "0800123";
const DOMAIN: &str = "hotline.example";
const PASSWORD: &str = "correct horse battery";
const CONTACT: &str = "<sip:op@192.0.2.10:5062>";

fn config() -> endpoint::Config {
    endpoint::Config {
        registrar: true,
        ..endpoint::Config::default()
    }
}

fn udp() -> Harness {
    Harness::new(UacConfig::default(), config())
}

fn tcp() -> Harness {
    Harness::new(UacConfig::tcp(), config())
}

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The application: a handler for our domain and one account.
struct App {
    handler: RegisterHandler,
    account: DigestSecrets,
}

impl App {
    fn new() -> Self {
        Self {
            handler: RegisterHandler::new(RegisterConfig::new(DOMAIN, [7; 32])),
            account: DigestSecrets::from_password(USER, DOMAIN, PASSWORD),
        }
    }

    /// Decides on a REGISTER event the way the shell does and answers it.
    fn answer(&mut self, h: &mut Harness, event: Event) -> u16 {
        let Event::Register {
            id,
            request,
            peer,
            to_tag,
        } = event
        else {
            panic!("expected Register, got {event:?}");
        };
        let known = self.handler.account_name(&request).as_deref() == Some(USER);
        let out = self.handler.handle(
            h.now,
            wall(),
            RegisterInput {
                request: &request,
                source: peer,
                client: None,
                trusted_path: false,
                account: known.then_some(&self.account),
                to_tag: &to_tag,
            },
        );
        let status = out.status();
        assert!(h.uas.respond_register(h.now, id, out.response));
        h.flush();
        status
    }
}

/// The next event, which must be a REGISTER; its parts.
fn register_event(h: &mut Harness) -> (RegisterId, Message, Peer, String, Event) {
    match h.event() {
        Some(Event::Register {
            id,
            request,
            peer,
            to_tag,
        }) => {
            let event = Event::Register {
                id,
                request: request.clone(),
                peer,
                to_tag: to_tag.clone(),
            };
            (id, request, peer, to_tag, event)
        }
        other => panic!("expected Register, got {other:?}"),
    }
}

/// The Authorization value answering `challenge` for the UAC's Request-URI.
fn authorization(challenge: &Challenge, nc: u32) -> String {
    let uri = common::Uac::initial_uri();
    let key = ha1(challenge.algorithm, USER, DOMAIN, PASSWORD);
    challenge
        .answer(
            USER,
            &key,
            &Method::Register,
            &uri,
            "c0ffee",
            NonceCount::new(nc),
        )
        .to_string()
}

fn challenges(resp: &Message) -> Vec<Challenge> {
    resp.headers()
        .filter(|(n, _)| HeaderName::classify(n) == HeaderName::WwwAuthenticate)
        .map(|(_, v)| Challenge::parse(v).expect("our challenge parses"))
        .collect()
}

#[test]
fn register_goes_to_the_application_which_challenges_then_accepts() {
    let mut h = udp();
    let mut app = App::new();
    h.uac.out_of_dialog(
        h.now,
        "REGISTER",
        &[("Contact", CONTACT), ("Expires", "600")],
    );
    h.flush();
    assert!(
        h.sent_by_uas(|_| true).is_empty(),
        "nothing is answered before the application decides"
    );
    let (_, request, peer, tag, event) = register_event(&mut h);
    assert_eq!(request.method(), Some(&Method::Register));
    assert_eq!(peer, h.uac_peer());
    assert!(!tag.is_empty());
    assert_eq!(app.answer(&mut h, event), 401);

    assert_eq!(h.uac.request("REGISTER").final_code(), Some(401));
    let resp = h.uac.responses(401, "REGISTER")[0].clone();
    assert_eq!(to_tag(&resp).as_deref(), Some(tag.as_str()));
    let ch = challenges(&resp);
    assert_eq!(ch.len(), 2, "SHA-256 and MD5");

    // Credentials for the MD5 challenge (what most softphones answer).
    let auth = authorization(&ch[1], 1);
    h.uac.out_of_dialog(
        h.now,
        "REGISTER",
        &[
            ("Contact", CONTACT),
            ("Expires", "600"),
            ("Authorization", &auth),
        ],
    );
    h.flush();
    let (_, _, _, _, event) = register_event(&mut h);
    assert_eq!(app.answer(&mut h, event), 200);
    let ok = h.uac.responses(200, "REGISTER")[0];
    let contact = header(ok, "Contact").expect("the binding");
    assert!(
        contact.starts_with("<sip:op@192.0.2.10:5062>;expires="),
        "{contact}"
    );
    assert!(h.events.is_empty());

    // The transactions end (Timer J) once their responses were sent.
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn a_register_with_a_to_tag_is_not_taken_for_a_dialog_request() {
    let mut h = udp();
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {UAC_ADDR};branch=z9hG4bKregtag1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{USER}@{DOMAIN}>;tag=f1\r\n\
         To: <sip:{USER}@{DOMAIN}>;tag=left-over\r\n\
         Call-ID: reg-tag@192.0.2.10\r\n\
         CSeq: 7 REGISTER\r\n\
         Contact: {CONTACT}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    h.uac.send_raw(text);
    h.flush();
    let (_, _, _, tag, event) = register_event(&mut h);
    assert_eq!(tag, "left-over", "the request's own To tag");
    let mut app = App::new();
    assert_eq!(app.answer(&mut h, event), 401, "not 481");
    let resp = h.sent_by_uas(|p| p.is_response(401, "REGISTER"))[0]
        .msg()
        .unwrap();
    assert_eq!(to_tag(&resp).as_deref(), Some("left-over"));
}

#[test]
fn retransmissions_wait_for_the_application_and_then_get_its_answer() {
    let mut h = udp();
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    let (id, _, _, _, event) = register_event(&mut h);
    // The application is slow: the UAC retransmits (Timer E), nothing comes back.
    h.advance(Duration::from_secs(2));
    let copies = h.sent_by_uac(|p| p.is_request("REGISTER")).len();
    assert!(copies >= 3, "Timer E retransmissions: {copies}");
    assert!(h.sent_by_uas(|_| true).is_empty());
    assert!(h.events.is_empty(), "one event per transaction");

    let mut app = App::new();
    assert_eq!(app.answer(&mut h, event), 401);
    assert_eq!(h.sent_by_uas(|p| p.is_response(401, "REGISTER")).len(), 1);
    // A late copy of the request gets the same response again, without an event.
    let first = h.sent_by_uac(|p| p.is_request("REGISTER"))[0].bytes.clone();
    h.uac.send_raw(first);
    h.flush();
    let sent = h.sent_by_uas(|p| p.is_response(401, "REGISTER"));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].bytes, sent[1].bytes);
    assert!(h.events.is_empty());
    // Answered once only.
    assert!(
        !h.uas
            .respond_register(h.now, id, Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
    );
}

#[test]
fn a_register_the_application_never_answers_gets_503_after_64_t1() {
    let mut h = udp();
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    let start = h.now;
    let (id, _, _, _, _) = register_event(&mut h);
    h.advance(t1s(64) - Duration::from_millis(1));
    assert!(h.sent_by_uas(|_| true).is_empty());
    h.advance(Duration::from_millis(2));
    let sent = h.sent_by_uas(|p| p.is_response(503, "REGISTER"));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].at - start, t1s(64));
    let resp = sent[0].msg().unwrap();
    assert!(header(&resp, "Retry-After").is_some());
    match h.event() {
        Some(Event::Refused { status, .. }) => assert_eq!(status, Some(503)),
        other => panic!("expected Refused, got {other:?}"),
    }
    // Too late now.
    let late = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(!h.uas.respond_register(h.now, id, late));
    h.run_until_idle(t1s(64) + t4());
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn respond_register_takes_only_responses_to_waiting_registers() {
    let mut h = udp();
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    let (id, _, _, _, event) = register_event(&mut h);
    for junk in [
        &b""[..],
        b"REGISTER sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 99 Odd\r\n\r\n",
        b"SIP/2.0 7000 Odd\r\n\r\n",
        b"SIP/2.0 800 Odd\r\n\r\n",
    ] {
        assert!(!h.uas.respond_register(h.now, id, Bytes::from_static(junk)));
    }
    assert!(!h.uas.respond_register(
        h.now,
        RegisterId(id.0 + 1000),
        Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n")
    ));
    // An INVITE's transaction is not a REGISTER's.
    h.uac.invite(h.now, Some(common::OFFER));
    h.flush();
    let call = h.incoming().call;
    assert!(!h.uas.respond_register(
        h.now,
        RegisterId(call.0 - 1),
        Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n")
    ));
    assert!(
        h.sent_by_uas(|p| p.cseq_method().as_deref() == Some("REGISTER"))
            .is_empty()
    );
    let mut app = App::new();
    assert_eq!(app.answer(&mut h, event), 401);
}

#[test]
fn the_common_checks_still_come_first() {
    // Max-Forwards: 0 gets 483 and never reaches the application.
    let mut h = udp();
    h.uac.max_forwards = 0;
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    assert_eq!(h.uac.request("REGISTER").final_code(), Some(483));
    assert!(h.events.is_empty());

    // Require with an extension we lack: 420.
    let mut h = udp();
    h.uac.out_of_dialog(
        h.now,
        "REGISTER",
        &[("Contact", CONTACT), ("Require", "outbound")],
    );
    h.flush();
    assert_eq!(h.uac.request("REGISTER").final_code(), Some(420));
    assert!(h.events.is_empty());
}

#[test]
fn allow_lists_register_only_when_the_application_handles_it() {
    let mut h = udp();
    h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
    h.flush();
    let ok = h.uac.responses(200, "OPTIONS")[0];
    assert_eq!(header(ok, "Allow").as_deref(), Some(ALLOW_WITH_REGISTER));

    // Without the registrar, REGISTER is a method we do not implement.
    let mut h = Harness::udp();
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    assert_eq!(h.uac.request("REGISTER").final_code(), Some(501));
    let resp = h.uac.responses(501, "REGISTER")[0];
    assert_eq!(header(resp, "Allow").as_deref(), Some(ALLOW));
    assert!(h.events.is_empty());
}

#[test]
fn register_over_tcp_is_answered_on_its_connection_without_retransmission() {
    let mut h = tcp();
    h.uac
        .out_of_dialog(h.now, "REGISTER", &[("Contact", CONTACT)]);
    h.flush();
    let (_, _, peer, _, event) = register_event(&mut h);
    assert_eq!(peer.transport, Transport::Tcp);
    assert_eq!(peer.connection, Some(1));
    h.advance(t1s(8));
    assert_eq!(h.sent_by_uac(|p| p.is_request("REGISTER")).len(), 1);
    let mut app = App::new();
    assert_eq!(app.answer(&mut h, event), 401);
    let sent = h.sent_by_uas(|_| true);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].connection, Some(1));
    // Over TCP the transaction ends with its response (Timer J is 0).
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn send_options_reports_the_final_response() {
    let mut h = udp();
    let peer = h.uac_peer();
    let id = h
        .uas
        .send_options(h.now, peer, "sip:op@192.168.1.20:5062;ob");
    assert_eq!(
        h.uas.pending_requests(),
        0,
        "a keep-alive holds up no shutdown"
    );
    h.flush();
    let got = h.uac.requests_received("OPTIONS");
    assert_eq!(got.len(), 1);
    let options = got[0];
    assert_eq!(options.request_uri(), b"sip:op@192.168.1.20:5062;ob");
    let via = options.top_via().unwrap();
    assert!(via.is_rfc3261_branch());
    assert_eq!(via.rport(), Some(None), "rport asked for (NAT)");
    assert_eq!(options.cseq().unwrap().method, Method::Options);
    options.validate_request().expect("a valid request");
    match h.event() {
        Some(Event::RequestAnswered { id: got, status }) => {
            assert_eq!((got, status), (id, 200));
        }
        other => panic!("expected RequestAnswered, got {other:?}"),
    }
    h.run_until_idle(t1s(64) + t4());
    assert!(h.events.is_empty(), "reported once");
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn send_options_to_a_silent_peer_times_out_after_64_t1() {
    let mut h = udp();
    h.uac.auto_answer = false;
    let peer = h.uac_peer();
    let start = h.now;
    let id = h.uas.send_options(h.now, peer, "sip:op@192.0.2.10:5062");
    h.advance(t1s(64) - Duration::from_millis(1));
    assert!(h.events.is_empty());
    let copies = h.sent_by_uas(|p| p.is_request("OPTIONS")).len();
    assert!(copies > 5, "retransmitted over UDP (Timer E): {copies}");
    h.advance(Duration::from_millis(1));
    let timed_out: Vec<(RequestId, Duration)> = h
        .event_log
        .iter()
        .filter_map(|(at, e)| match e {
            Event::RequestTimedOut { id } => Some((*id, *at - start)),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, vec![(id, t1s(64))]);
    assert_eq!(h.uas.transactions(), 0);
}

#[test]
fn a_lost_options_is_retransmitted_and_still_answered() {
    let mut h = udp();
    h.pipe.drop_first(Dir::ToUac, 2, "OPTIONS");
    let peer = h.uac_peer();
    let id = h.uas.send_options(h.now, peer, "sip:op@192.0.2.10:5062");
    h.advance(t1s(4));
    assert_eq!(
        h.count_events(|e| matches!(e, Event::RequestAnswered { id: i, status: 200 } if *i == id)),
        1
    );
}

#[test]
fn send_options_over_tcp_is_sent_once_on_the_connection() {
    let mut h = tcp();
    h.uac.auto_answer = false;
    let peer = h.uac_peer();
    let id = h
        .uas
        .send_options(h.now, peer, "sip:op@192.0.2.10:5062;transport=tcp");
    h.advance(t1s(64) + Duration::from_millis(1));
    let sent = h.sent_by_uas(|p| p.is_request("OPTIONS"));
    assert_eq!(sent.len(), 1, "no retransmission over TCP");
    assert_eq!(sent[0].connection, Some(1));
    let msg = sent[0].msg().unwrap();
    assert!(msg.top_via().unwrap().is_reliable());
    assert_eq!(
        h.count_events(|e| matches!(e, Event::RequestTimedOut { id: i } if *i == id)),
        1
    );
}

#[test]
fn send_options_replaces_a_target_that_is_not_a_plain_uri() {
    let mut h = udp();
    let peer = h.uac_peer();
    h.uas.send_options(h.now, peer, "sip:x@y>\r\nEvil: header");
    h.flush();
    let got = h.uac.requests_received("OPTIONS");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_uri(), format!("sip:{UAC_ADDR}").as_bytes());
    assert!(got[0].header_by_name("Evil").is_none());
}
