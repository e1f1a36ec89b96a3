//! Parsing credentials and challenges: quoted strings, case, white space,
//! missing and duplicate directives, what is refused.

use bytes::Bytes;
use hotline_sip::digest::{Algorithm, Challenge, Credentials, DigestError, Qop};
use hotline_sip::message::{HeaderName, Message};

const MD5_RESPONSE: &str = "6629fae49393a05397450978507c4ef1";

fn creds(extra: &str) -> String {
    format!(
        "Digest username=\"alice\", realm=\"hotline.example\", nonce=\"n1\", \
         uri=\"sip:hotline.example\", response=\"{MD5_RESPONSE}\"{extra}"
    )
}

#[test]
fn minimal_credentials_default_to_md5_without_qop() {
    let c = Credentials::parse(creds("").as_bytes()).unwrap();
    assert_eq!(c.algorithm, Algorithm::Md5);
    assert_eq!(c.qop, None);
    assert_eq!(c.nc, None);
    assert_eq!(c.uri, "sip:hotline.example");
}

#[test]
fn quoted_string_escapes() {
    let raw = "Digest username=\"al\\\"i\\\\ce\", realm=\"hot\\line.example\", nonce=\"n\", \
               uri=\"sip:x\", response=\"6629FAE49393A05397450978507C4EF1\"";
    let c = Credentials::parse(raw.as_bytes()).unwrap();
    assert_eq!(c.username, "al\"i\\ce");
    assert_eq!(c.realm, "hotline.example");
    // The response is kept in lower case.
    assert_eq!(c.response, MD5_RESPONSE);
    // Printing escapes again.
    assert!(c.to_string().contains(r#"username="al\"i\\ce""#));
    assert_eq!(Credentials::parse(c.to_string().as_bytes()).unwrap(), c);
    // A comma inside quotes is not a separator.
    let raw = creds(", cnonce=\"a,b\", nc=00000001, qop=auth");
    assert_eq!(
        Credentials::parse(raw.as_bytes())
            .unwrap()
            .cnonce
            .as_deref(),
        Some("a,b")
    );
}

#[test]
fn names_and_tokens_are_case_insensitive() {
    let raw = format!(
        "digest USERNAME=\"alice\", Realm=\"hotline.example\", NONCE=\"n1\", Uri=\"sip:hotline.example\", \
         Response=\"{}\", ALGORITHM=sha-256, QOP=AUTH, NC=0000000a, CNonce=\"c\"",
        "ab".repeat(32)
    );
    let c = Credentials::parse(raw.as_bytes()).unwrap();
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc.unwrap().value(), 10);
    assert_eq!(c.nc.unwrap().as_str(), "0000000a");
}

#[test]
fn lws_folding_and_empty_elements() {
    let raw = format!(
        "Digest\r\n\tusername = \"alice\" ,\r\n  realm=\r\n \"hotline.example\",,, nonce=\"n1\"\t,\
         uri=\"sip:hotline.example\" , response=\"{MD5_RESPONSE}\" ,"
    );
    let c = Credentials::parse(raw.as_bytes()).unwrap();
    assert_eq!(c.username, "alice");
    assert_eq!(c.realm, "hotline.example");
    // A folded line inside quotes keeps its white space, not its line break.
    let raw = creds(", cnonce=\"a\r\n b\", nc=00000001, qop=auth");
    assert_eq!(
        Credentials::parse(raw.as_bytes())
            .unwrap()
            .cnonce
            .as_deref(),
        Some("a b")
    );
}

#[test]
fn quoted_qop_and_algorithm_are_tolerated() {
    let raw = creds(", qop=\"auth\", algorithm=\"MD5\", nc=00000001, cnonce=\"c\"");
    let c = Credentials::parse(raw.as_bytes()).unwrap();
    assert_eq!((c.qop, c.algorithm), (Some(Qop::Auth), Algorithm::Md5));
}

#[test]
fn missing_directives_are_errors() {
    for (name, drop) in [
        ("username", "username=\"alice\", "),
        ("realm", "realm=\"hotline.example\", "),
        ("nonce", "nonce=\"n1\", "),
        ("uri", "uri=\"sip:hotline.example\", "),
    ] {
        let raw = creds("").replace(drop, "");
        assert_eq!(
            Credentials::parse(raw.as_bytes()).unwrap_err(),
            DigestError::Missing(name)
        );
    }
    let raw = creds("").replace(&format!(", response=\"{MD5_RESPONSE}\""), "");
    assert_eq!(
        Credentials::parse(raw.as_bytes()).unwrap_err(),
        DigestError::Missing("response")
    );
    // qop requires nc and cnonce.
    assert_eq!(
        Credentials::parse(creds(", qop=auth, cnonce=\"c\"").as_bytes()).unwrap_err(),
        DigestError::Missing("nc")
    );
    assert_eq!(
        Credentials::parse(creds(", qop=auth, nc=00000001").as_bytes()).unwrap_err(),
        DigestError::Missing("cnonce")
    );
}

#[test]
fn duplicate_directives_are_errors() {
    assert_eq!(
        Credentials::parse(creds(", username=\"mallory\"").as_bytes()).unwrap_err(),
        DigestError::Duplicate("username")
    );
    assert_eq!(
        Credentials::parse(creds(", NONCE=\"n2\"").as_bytes()).unwrap_err(),
        DigestError::Duplicate("nonce")
    );
    // Unknown directives are ignored, even twice.
    assert!(Credentials::parse(creds(", x-foo=1, x-foo=2").as_bytes()).is_ok());
}

#[test]
fn refused_algorithms_qops_and_syntax() {
    for alg in [
        "MD5-sess",
        "SHA-256-sess",
        "SHA-512-256",
        "SHA-512-256-sess",
        "SHA1",
    ] {
        let raw = creds(&format!(", algorithm={alg}"));
        assert_eq!(
            Credentials::parse(raw.as_bytes()).unwrap_err(),
            DigestError::UnsupportedAlgorithm(alg.to_owned())
        );
    }
    let raw = creds(", qop=auth-int, nc=00000001, cnonce=\"c\"");
    assert_eq!(
        Credentials::parse(raw.as_bytes()).unwrap_err(),
        DigestError::UnsupportedQop
    );
    for nc in ["1", "000000001", "0000000g", "00000000"] {
        let raw = creds(&format!(", qop=auth, nc={nc}, cnonce=\"c\""));
        assert_eq!(
            Credentials::parse(raw.as_bytes()).unwrap_err(),
            DigestError::Syntax("nc"),
            "{nc}"
        );
    }
    // A SHA-256 response must have 64 hex digits.
    assert_eq!(
        Credentials::parse(creds(", algorithm=SHA-256").as_bytes()).unwrap_err(),
        DigestError::Syntax("response")
    );
    assert_eq!(
        Credentials::parse(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l").unwrap_err(),
        DigestError::NotDigest
    );
    assert_eq!(
        Credentials::parse(b"Digestive username=\"a\"").unwrap_err(),
        DigestError::NotDigest
    );
    for bad in [
        "Digest username=\"unterminated",
        "Digest username",
        "Digest =\"x\"",
        "Digest username=\"a\" realm=\"b\"",
        "Digest username=",
        "Digest username=\"a\\",
    ] {
        assert!(
            matches!(
                Credentials::parse(bad.as_bytes()),
                Err(DigestError::Syntax(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn credentials_for_our_realm_are_found_among_several() {
    let raw = format!(
        "REGISTER sip:hotline.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
         From: <sip:alice@hotline.example>;tag=1\r\n\
         To: <sip:alice@hotline.example>\r\n\
         Call-ID: c\r\nCSeq: 2 REGISTER\r\n\
         Authorization: {}\r\n\
         authorization: {}\r\n\
         Content-Length: 0\r\n\r\n",
        creds("").replace("hotline.example\"", "other.example\""),
        creds("")
    );
    let m = Message::parse_datagram(Bytes::from(raw)).unwrap();
    let c = Credentials::find(&m, HeaderName::Authorization, "hotline.example")
        .unwrap()
        .unwrap();
    assert_eq!(c.realm, "hotline.example");
    assert!(Credentials::find(&m, HeaderName::Authorization, "nowhere").is_none());
    assert!(Credentials::find(&m, HeaderName::ProxyAuthorization, "hotline.example").is_none());

    let raw = "REGISTER sip:h SIP/2.0\r\nProxy-Authorization: Digest username=\r\nContent-Length: 0\r\n\r\n";
    let m = Message::parse_datagram(Bytes::from(raw)).unwrap();
    assert!(matches!(
        Credentials::find(&m, HeaderName::ProxyAuthorization, "h"),
        Some(Err(DigestError::Syntax(_)))
    ));
}

#[test]
fn challenges_parse() {
    let ch = Challenge::parse(
        b"Digest realm=\"atlanta.example.com\", qop=\"auth,auth-int\", \
          nonce=\"84a4cc6f3082121f32b42a2187831a9e\", opaque=\"\", stale=TRUE, algorithm=MD5",
    )
    .unwrap();
    assert_eq!(ch.realm, "atlanta.example.com");
    assert_eq!(ch.qop, Some(Qop::Auth));
    assert!(ch.stale);
    assert_eq!(ch.opaque.as_deref(), Some(""));
    let ch = Challenge::parse(b"Digest realm=\"r\", nonce=\"n\"").unwrap();
    assert_eq!(
        (ch.algorithm, ch.qop, ch.stale),
        (Algorithm::Md5, None, false)
    );
    assert_eq!(
        Challenge::parse(b"Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").unwrap_err(),
        DigestError::UnsupportedQop
    );
    assert_eq!(
        Challenge::parse(b"Digest nonce=\"n\"").unwrap_err(),
        DigestError::Missing("realm")
    );
}
