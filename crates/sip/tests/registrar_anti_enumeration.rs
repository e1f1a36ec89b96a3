//! No enumeration: a known and an unknown user get the same challenge, and
//! the same 401 after a wrong answer; only the private log line differs.

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use hotline_sip::digest::{Challenge, DigestSecrets, NonceCount, ha1};
use hotline_sip::endpoint::{Peer, Transport};
use hotline_sip::message::{HeaderName, Message, Method};
use hotline_sip::registrar::{RegisterConfig, RegisterHandler, RegisterInput, RegisterOutcome};

const DOMAIN: &str = "hotline.example";

fn source() -> Peer {
    Peer {
        transport: Transport::Udp,
        remote: "192.0.2.66:5060".parse().unwrap(),
        local: "203.0.113.5:5060".parse().unwrap(),
        connection: None,
    }
}

fn register(user: &str, cseq: u32, auth: &str) -> Message {
    let text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bKe{cseq}\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=x\r\n\
         To: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: enum@192.0.2.66\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@192.0.2.66>\r\n{auth}\
         Content-Length: 0\r\n\r\n"
    );
    Message::parse_datagram(Bytes::from(text)).unwrap()
}

/// The response with every nonce replaced, and the user name replaced, so
/// that two responses can be compared byte for byte.
fn shape(out: &RegisterOutcome, user: &str) -> String {
    let m = Message::parse_datagram(out.response.clone()).unwrap();
    let mut text = String::from_utf8(out.response.to_vec()).unwrap();
    for (n, v) in m.headers() {
        if HeaderName::classify(n) == HeaderName::WwwAuthenticate {
            let ch = Challenge::parse(v).unwrap();
            text = text.replace(&ch.nonce, "NONCE");
        }
    }
    text.replace(user, "USER")
}

struct Attacker {
    handler: RegisterHandler,
    ana: DigestSecrets,
    now: Instant,
}

impl Attacker {
    fn send(&mut self, m: &Message) -> RegisterOutcome {
        // The shell finds Ana and nobody else.
        let name = self.handler.account_name(m);
        let account = (name.as_deref() == Some("ana")).then_some(&self.ana);
        self.now += Duration::from_secs(1);
        self.handler.handle(
            self.now,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            RegisterInput {
                request: m,
                source: source(),
                client: None,
                trusted_path: false,
                account,
                to_tag: "t",
            },
        )
    }

    /// Challenge, then a wrong password; both responses.
    fn guess(&mut self, user: &str) -> (RegisterOutcome, RegisterOutcome) {
        let first = self.send(&register(user, 1, ""));
        let m = Message::parse_datagram(first.response.clone()).unwrap();
        let ch = Challenge::parse(m.header(HeaderName::WwwAuthenticate).unwrap()).unwrap();
        let c = ch.answer(
            user,
            &ha1(ch.algorithm, user, DOMAIN, "123456"),
            &Method::Register,
            &format!("sip:{DOMAIN}"),
            "c",
            NonceCount::new(1),
        );
        let second = self.send(&register(user, 2, &format!("Authorization: {c}\r\n")));
        (first, second)
    }
}

#[test]
fn known_and_unknown_users_get_byte_identical_answers() {
    let mut a = Attacker {
        handler: RegisterHandler::new(RegisterConfig::new(DOMAIN, [5; 32])),
        ana: DigestSecrets::from_password("ana", DOMAIN, "correct horse"),
        now: Instant::now(),
    };
    let (known_challenge, known_failure) = a.guess("ana");
    let (unknown_challenge, unknown_failure) = a.guess("zoe");
    assert_eq!(known_challenge.status(), 401);
    assert_eq!(known_failure.status(), 401);
    assert_eq!(
        shape(&known_challenge, "ana"),
        shape(&unknown_challenge, "zoe")
    );
    assert_eq!(shape(&known_failure, "ana"), shape(&unknown_failure, "zoe"));
    // Only our log tells them apart.
    assert!(
        known_failure
            .auth_log
            .unwrap()
            .ends_with("reason=bad-password")
    );
    assert!(
        unknown_failure
            .auth_log
            .unwrap()
            .ends_with("reason=unknown-user")
    );
}

#[test]
fn unknown_users_are_locked_out_like_known_ones() {
    let config = RegisterConfig::new(DOMAIN, [5; 32]);
    let mut a = Attacker {
        handler: RegisterHandler::new(config),
        ana: DigestSecrets::from_password("ana", DOMAIN, "correct horse"),
        now: Instant::now(),
    };
    // Two failures for each of two names from one source, then a fifth:
    // the source is locked, whichever name comes next.
    for user in ["ana", "zoe", "ana", "zoe"] {
        assert_eq!(a.guess(user).1.status(), 401);
    }
    let (_, fifth) = a.guess("zoe");
    assert_eq!(fifth.status(), 403);
    for user in ["ana", "zoe", "nobody"] {
        let out = a.send(&register(user, 9, ""));
        assert_eq!(out.status(), 403);
        assert!(out.auth_log.unwrap().ends_with("reason=locked"));
    }
}
