//! A softphone registers through [`RegisterHandler`]: 401, then 200 with its
//! bindings; refresh, un-register, 423, 403, 404, 400; lockout after five
//! wrong passwords; stale and replayed nonces. The test plays the shell: it
//! looks accounts up in a map and owns the clocks.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hotline_sip::digest::{Algorithm, Challenge, DigestSecrets, NonceCount};
use hotline_sip::endpoint::{Peer, Transport};
use hotline_sip::message::{HeaderName, Message, Method};
use hotline_sip::registrar::{
    Decision, Event, RegisterConfig, RegisterError, RegisterHandler, RegisterInput, RegisterOutcome,
};

const DOMAIN: &str = "hotline.example";

/// The shell: accounts, clocks and the handler.
struct Shell {
    handler: RegisterHandler,
    accounts: HashMap<String, DigestSecrets>,
    now: Instant,
    wall: SystemTime,
}

impl Shell {
    fn new() -> Self {
        Self::with_config(RegisterConfig::new(DOMAIN, [9; 32]))
    }

    fn with_config(config: RegisterConfig) -> Self {
        let mut accounts = HashMap::new();
        accounts.insert(
            "ana".to_owned(),
            DigestSecrets::from_password("ana", DOMAIN, "correct horse"),
        );
        accounts.insert(
            "beto".to_owned(),
            DigestSecrets::from_password("beto", DOMAIN, "battery staple"),
        );
        Self {
            handler: RegisterHandler::new(config),
            accounts,
            now: Instant::now(),
            wall: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.wall += d;
        self.handler.handle_timeout(self.now);
    }

    fn send(&mut self, phone: &Phone, request: &Message) -> RegisterOutcome {
        let name = self.handler.account_name(request);
        let account = name.and_then(|n| self.accounts.get(&n));
        self.handler.handle(
            self.now,
            self.wall,
            RegisterInput {
                request,
                source: phone.source,
                client: None,
                trusted_path: false,
                account,
                to_tag: "srvtag",
            },
        )
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.handler.poll_event()).collect()
    }
}

/// A softphone behind NAT.
struct Phone {
    user: String,
    password: String,
    source: Peer,
    cseq: u32,
    nc: u32,
    challenge: Option<Challenge>,
    prefer_md5: bool,
}

impl Phone {
    fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
            source: Peer {
                transport: Transport::Udp,
                remote: "198.51.100.7:40000".parse().unwrap(),
                local: "203.0.113.5:5060".parse().unwrap(),
                connection: None,
            },
            cseq: 0,
            nc: 0,
            challenge: None,
            prefer_md5: false,
        }
    }

    /// A REGISTER with `headers` (Contact, Expires...) and, after a 401,
    /// Authorization.
    fn register(&mut self, headers: &str) -> Message {
        self.cseq += 1;
        let auth = self.challenge.clone().map(|ch| {
            self.nc += 1;
            let ha1 = hotline_sip::digest::ha1(ch.algorithm, &self.user, DOMAIN, &self.password);
            let c = ch.answer(
                &self.user,
                &ha1,
                &Method::Register,
                &format!("sip:{DOMAIN}"),
                "0a4f113b",
                NonceCount::new(self.nc),
            );
            format!("Authorization: {c}\r\n")
        });
        let text = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK{cseq}x;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{DOMAIN}>;tag=ph1\r\n\
             To: <sip:{user}@{DOMAIN}>\r\n\
             Call-ID: reg-{user}@192.168.1.20\r\n\
             CSeq: {cseq} REGISTER\r\n{headers}{auth}\
             Content-Length: 0\r\n\r\n",
            cseq = self.cseq,
            user = self.user,
            auth = auth.unwrap_or_default(),
        );
        let m = Message::parse_datagram(Bytes::from(text)).unwrap();
        m.validate_request().unwrap();
        m
    }

    /// Reads the challenges of a 401 and keeps the one the phone prefers.
    fn take_challenge(&mut self, out: &RegisterOutcome) {
        let resp = parsed(out);
        let challenges: Vec<Challenge> = headers(&resp, HeaderName::WwwAuthenticate)
            .iter()
            .map(|v| Challenge::parse(v.as_bytes()).unwrap())
            .collect();
        let want = if self.prefer_md5 {
            Algorithm::Md5
        } else {
            Algorithm::Sha256
        };
        let pick = challenges
            .iter()
            .find(|c| c.algorithm == want)
            .unwrap_or(&challenges[0]);
        self.challenge = Some(pick.clone());
        self.nc = 0;
    }
}

const CONTACT: &str = "Contact: <sip:ana@192.168.1.20:5060>\r\nExpires: 600\r\n";

fn parsed(out: &RegisterOutcome) -> Message {
    Message::parse_datagram(out.response.clone()).unwrap()
}

fn headers(m: &Message, name: HeaderName) -> Vec<String> {
    m.headers()
        .filter(|(n, _)| HeaderName::classify(n) == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Registers Ana: 401, then 200.
fn register_ana(shell: &mut Shell, phone: &mut Phone) -> RegisterOutcome {
    let first = phone.register(CONTACT);
    let out = shell.send(phone, &first);
    assert_eq!(out.status(), 401);
    phone.take_challenge(&out);
    let second = phone.register(CONTACT);
    shell.send(phone, &second)
}

#[test]
fn challenge_then_registered_with_contact_expires_and_date() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    let first = phone.register(CONTACT);
    let out = shell.send(&phone, &first);
    assert_eq!(out.decision, Decision::Challenge { stale: false });
    assert_eq!(out.auth_log, None);
    let resp = parsed(&out);
    assert_eq!(resp.status(), Some(401));
    let www = headers(&resp, HeaderName::WwwAuthenticate);
    assert_eq!(www.len(), 2);
    assert!(www[0].contains("algorithm=SHA-256"), "{www:?}");
    assert!(www[1].contains("algorithm=MD5"), "{www:?}");
    assert!(
        www.iter()
            .all(|w| w.contains("qop=\"auth\"") && w.contains("realm=\"hotline.example\""))
    );
    // Addressed back through the NAT (received/rport), with our To tag.
    let via = resp.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(40000)));
    assert_eq!(via.received(), Some(&b"198.51.100.7"[..]));
    assert_eq!(resp.to_header().unwrap().tag(), Some(&b"srvtag"[..]));

    phone.take_challenge(&out);
    let second = phone.register(CONTACT);
    let out = shell.send(&phone, &second);
    assert_eq!(out.status(), 200, "{:?}", out.decision);
    let resp = parsed(&out);
    assert_eq!(
        headers(&resp, HeaderName::Contact),
        ["<sip:ana@192.168.1.20:5060>;expires=600"]
    );
    assert_eq!(
        resp.header_by_name("Date"),
        Some(&b"Tue, 14 Nov 2023 22:13:20 GMT"[..])
    );
    assert_eq!(
        shell.events(),
        [Event::Registered {
            aor: "sip:ana@hotline.example".into()
        }]
    );
    // The binding keeps the NAT's address for requests to Ana.
    let b = shell
        .handler
        .registrar()
        .lookup(shell.now, "sip:ana@hotline.example");
    assert_eq!(b[0].source.remote, "198.51.100.7:40000".parse().unwrap());
}

#[test]
fn an_md5_only_phone_registers_too() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    phone.prefer_md5 = true;
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
}

fn md5_only_shell() -> Shell {
    let mut config = RegisterConfig::new(DOMAIN, [9; 32]);
    config.digest.algorithms = vec![Algorithm::Md5];
    Shell::with_config(config)
}

#[test]
fn md5_only_config_offers_one_md5_challenge_and_accepts_md5() {
    let mut shell = md5_only_shell();
    let mut phone = Phone::new("ana", "correct horse");
    let first = phone.register(CONTACT);
    let out = shell.send(&phone, &first);
    assert_eq!(out.decision, Decision::Challenge { stale: false });
    let www = headers(&parsed(&out), HeaderName::WwwAuthenticate);
    assert_eq!(www.len(), 1, "{www:?}");
    assert!(www[0].contains("algorithm=MD5"), "{www:?}");
    assert!(!www[0].contains("SHA-256"), "{www:?}");
    phone.take_challenge(&out);
    assert_eq!(phone.challenge.as_ref().unwrap().algorithm, Algorithm::Md5);
    let second = phone.register(CONTACT);
    let out = shell.send(&phone, &second);
    assert_eq!(out.status(), 200, "{:?}", out.decision);
    assert_eq!(out.auth_log, None);
}

#[test]
fn md5_only_config_refuses_a_sha256_response_as_a_failure() {
    let mut shell = md5_only_shell();
    let mut phone = Phone::new("ana", "correct horse");
    let first = phone.register(CONTACT);
    let out = shell.send(&phone, &first);
    phone.take_challenge(&out);
    // The right password, hashed with the algorithm we did not offer.
    let mut forged = phone.challenge.clone().unwrap();
    forged.algorithm = Algorithm::Sha256;
    phone.challenge = Some(forged);
    let second = phone.register(CONTACT);
    let out = shell.send(&phone, &second);
    assert_eq!(out.decision, Decision::Challenge { stale: false });
    assert_eq!(
        out.auth_log.as_deref(),
        Some("hotline auth failure source=198.51.100.7 user=\"ana\" reason=algorithm-not-offered")
    );
    let www = headers(&parsed(&out), HeaderName::WwwAuthenticate);
    assert_eq!(www.len(), 1);
    assert!(www[0].contains("algorithm=MD5"));
    assert!(shell.events().is_empty(), "nothing registered");
    assert!(
        shell
            .handler
            .registrar()
            .lookup(shell.now, "sip:ana@hotline.example")
            .is_empty()
    );

    // The default configuration takes the same SHA-256 credentials.
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
    assert_eq!(
        phone.challenge.as_ref().unwrap().algorithm,
        Algorithm::Sha256
    );
}

#[test]
fn refresh_with_the_same_nonce_then_replay_is_refused() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
    shell.advance(Duration::from_secs(60));
    let refresh = phone.register(CONTACT);
    assert_eq!(shell.send(&phone, &refresh).status(), 200);
    // An attacker sends the captured refresh again.
    let out = shell.send(&phone, &refresh);
    assert_eq!(out.decision, Decision::Challenge { stale: true });
    assert_eq!(
        out.auth_log.as_deref(),
        Some("hotline auth failure source=198.51.100.7 user=\"ana\" reason=replay")
    );
}

#[test]
fn expired_nonce_gets_stale_and_the_phone_recovers() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
    shell.advance(Duration::from_secs(400));
    let late = phone.register(CONTACT);
    let out = shell.send(&phone, &late);
    assert_eq!(out.decision, Decision::Challenge { stale: true });
    assert_eq!(out.auth_log, None, "a stale nonce is not a failure");
    assert!(headers(&parsed(&out), HeaderName::WwwAuthenticate)[0].ends_with("stale=true"));
    phone.take_challenge(&out);
    let again = phone.register(CONTACT);
    assert_eq!(shell.send(&phone, &again).status(), 200);
}

#[test]
fn unregister_one_and_all() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
    let second = phone.register("Contact: <sip:ana@192.168.1.21:5060>\r\nExpires: 600\r\n");
    let out = shell.send(&phone, &second);
    assert_eq!(headers(&parsed(&out), HeaderName::Contact).len(), 2);
    let remove = phone.register("Contact: <sip:ana@192.168.1.21:5060>\r\nExpires: 0\r\n");
    let out = shell.send(&phone, &remove);
    assert_eq!(headers(&parsed(&out), HeaderName::Contact).len(), 1);
    let all = phone.register("Contact: *\r\nExpires: 0\r\n");
    let out = shell.send(&phone, &all);
    assert_eq!(out.status(), 200);
    assert!(headers(&parsed(&out), HeaderName::Contact).is_empty());
    assert_eq!(
        shell.events(),
        [
            Event::Registered {
                aor: "sip:ana@hotline.example".into()
            },
            Event::Unregistered {
                aor: "sip:ana@hotline.example".into()
            },
        ]
    );
}

#[test]
fn interval_too_brief_bad_contact_and_wildcard() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut phone).status(), 200);
    let short = phone.register("Contact: <sip:ana@192.168.1.20:5060>\r\nExpires: 30\r\n");
    let out = shell.send(&phone, &short);
    assert_eq!(
        out.decision,
        Decision::Refused(RegisterError::IntervalTooBrief { min_expires: 60 })
    );
    let resp = parsed(&out);
    assert_eq!(resp.status(), Some(423));
    assert_eq!(resp.header_by_name("Min-Expires"), Some(&b"60"[..]));

    let wild = phone.register("Contact: *\r\nExpires: 60\r\n");
    let out = shell.send(&phone, &wild);
    assert_eq!(out.status(), 400);
    assert!(parsed(&out).header_by_name("Warning").is_some());

    let tel = phone.register("Contact: <tel:+5112345678>\r\n");
    assert_eq!(
        shell.send(&phone, &tel).decision,
        Decision::Refused(RegisterError::Malformed("Contact"))
    );
}

#[test]
fn five_wrong_passwords_lock_for_ten_minutes() {
    let mut shell = Shell::new();
    let mut thief = Phone::new("ana", "guess");
    let first = thief.register(CONTACT);
    let out = shell.send(&thief, &first);
    thief.take_challenge(&out);
    for i in 1..=5 {
        let attempt = thief.register(CONTACT);
        let out = shell.send(&thief, &attempt);
        assert_eq!(
            out.auth_log.as_deref(),
            Some("hotline auth failure source=198.51.100.7 user=\"ana\" reason=bad-password")
        );
        if i < 5 {
            assert_eq!(out.decision, Decision::Challenge { stale: false });
        } else {
            assert_eq!(out.status(), 403);
        }
    }
    // Even the right password is refused now, from there or for Ana anywhere.
    let mut ana = Phone::new("ana", "correct horse");
    ana.source.remote = "203.0.113.77:5060".parse().unwrap();
    let attempt = ana.register(CONTACT);
    let out = shell.send(&ana, &attempt);
    assert!(matches!(out.decision, Decision::Locked { .. }));
    assert_eq!(
        out.auth_log.as_deref(),
        Some("hotline auth failure source=203.0.113.77 user=\"ana\" reason=locked")
    );
    // Ten minutes later she registers.
    shell.advance(Duration::from_secs(600));
    let mut ana = Phone::new("ana", "correct horse");
    assert_eq!(register_ana(&mut shell, &mut ana).status(), 200);
}

#[test]
fn registering_someone_elses_aor_is_forbidden() {
    let mut shell = Shell::new();
    // Beto authenticates correctly but asks for Ana's AOR.
    let mut beto = Phone::new("beto", "battery staple");
    let m = beto.register(CONTACT).as_bytes().to_vec();
    let text = String::from_utf8(m)
        .unwrap()
        .replace("To: <sip:beto@", "To: <sip:ana@");
    let out = shell.send(&beto, &Message::parse_datagram(Bytes::from(text)).unwrap());
    beto.take_challenge(&out);
    let m = beto.register(CONTACT).as_bytes().to_vec();
    let text = String::from_utf8(m)
        .unwrap()
        .replace("To: <sip:beto@", "To: <sip:ana@");
    let out = shell.send(&beto, &Message::parse_datagram(Bytes::from(text)).unwrap());
    assert_eq!(out.decision, Decision::Forbidden);
    assert!(
        shell
            .handler
            .registrar()
            .lookup(shell.now, "sip:ana@hotline.example")
            .is_empty()
    );
}

#[test]
fn other_domain_is_not_found() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    let m = phone.register(CONTACT).as_bytes().to_vec();
    let text = String::from_utf8(m).unwrap().replace(
        "To: <sip:ana@hotline.example>",
        "To: <sip:ana@elsewhere.example>",
    );
    let out = shell.send(&phone, &Message::parse_datagram(Bytes::from(text)).unwrap());
    assert_eq!(
        (out.decision.clone(), out.status()),
        (Decision::NotFound, 404)
    );
    // The domain compares case-insensitively.
    let m = phone.register(CONTACT).as_bytes().to_vec();
    let text = String::from_utf8(m).unwrap().replace(
        "To: <sip:ana@hotline.example>",
        "To: <sip:ana@HOTLINE.Example>",
    );
    let out = shell.send(&phone, &Message::parse_datagram(Bytes::from(text)).unwrap());
    assert_eq!(out.status(), 401);
}

#[test]
fn credentials_that_do_not_fit_get_400() {
    let mut shell = Shell::new();
    let mut phone = Phone::new("ana", "correct horse");
    let first = phone.register(CONTACT);
    let out = shell.send(&phone, &first);
    phone.take_challenge(&out);
    // Answered for another Request-URI.
    let m = phone.register(CONTACT).as_bytes().to_vec();
    let text = String::from_utf8(m).unwrap().replacen(
        "REGISTER sip:hotline.example SIP/2.0",
        "REGISTER sip:other.example SIP/2.0",
        1,
    );
    let out = shell.send(&phone, &Message::parse_datagram(Bytes::from(text)).unwrap());
    assert_eq!(out.status(), 400);
    let warning = parsed(&out)
        .header_by_name("Warning")
        .map(<[u8]>::to_vec)
        .unwrap();
    assert!(String::from_utf8(warning).unwrap().contains("Request-URI"));
    assert_eq!(out.auth_log, None);
    // Malformed credentials (and no others).
    let mut phone = Phone::new("ana", "correct horse");
    let m = phone.register(
        "Authorization: Digest username=\"ana\", realm=\"hotline.example\", nonce=\"x\r\n",
    );
    assert_eq!(shell.send(&phone, &m).status(), 400);
}
