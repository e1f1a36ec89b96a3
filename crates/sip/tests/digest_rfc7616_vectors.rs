//! RFC 7616 §3.9.1 vectors ("Mufasa" / "Circle of Life"), as written for
//! HTTP and adapted to a SIP REGISTER, and the RFC 8760 algorithms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotline_sip::digest::{
    Algorithm, Authenticator, Challenge, Credentials, DigestConfig, DigestSecrets, NonceCount, Qop,
    Verdict, ha1, response,
};
use hotline_sip::message::Method;

const REALM: &str = "http-auth@example.org";
const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

fn get() -> Method {
    Method::from_token(b"GET").unwrap()
}

#[test]
fn rfc7616_md5_and_sha256_responses() {
    let nc = NonceCount::parse("00000001").unwrap();
    let md5 = ha1(Algorithm::Md5, "Mufasa", REALM, "Circle of Life");
    let sha = ha1(Algorithm::Sha256, "Mufasa", REALM, "Circle of Life");
    assert_eq!(
        response(
            Algorithm::Md5,
            &md5,
            NONCE,
            Some((nc, CNONCE)),
            &get(),
            "/dir/index.html"
        ),
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_eq!(
        response(
            Algorithm::Sha256,
            &sha,
            NONCE,
            Some((nc, CNONCE)),
            &get(),
            "/dir/index.html"
        ),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn rfc7616_authorization_header_parses_and_prints() {
    let raw = format!(
        "Digest username=\"Mufasa\",\r\n realm=\"{REALM}\",\r\n uri=\"/dir/index.html\",\r\n \
         algorithm=SHA-256,\r\n nonce=\"{NONCE}\",\r\n nc=00000001,\r\n cnonce=\"{CNONCE}\",\r\n \
         qop=auth,\r\n response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n \
         opaque=\"{OPAQUE}\""
    );
    let c = Credentials::parse(raw.as_bytes()).unwrap();
    assert_eq!(c.username, "Mufasa");
    assert_eq!(c.realm, REALM);
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc.unwrap().value(), 1);
    assert_eq!(c.opaque.as_deref(), Some(OPAQUE));
    // Printing and parsing again gives the same credentials.
    assert_eq!(Credentials::parse(c.to_string().as_bytes()).unwrap(), c);
}

#[test]
fn rfc7616_vectors_adapted_to_a_sip_register() {
    // Same user, realm, password, nonce and cnonce; method REGISTER and a
    // SIP Request-URI (values computed independently with Python's hashlib).
    let nc = NonceCount::new(1);
    let register = Method::Register;
    let md5 = ha1(Algorithm::Md5, "Mufasa", REALM, "Circle of Life");
    let sha = ha1(Algorithm::Sha256, "Mufasa", REALM, "Circle of Life");
    assert_eq!(
        response(
            Algorithm::Md5,
            &md5,
            NONCE,
            Some((nc, CNONCE)),
            &register,
            "sip:example.org"
        ),
        "4d0bd2cf2b438b4c66115656036bd58e"
    );
    assert_eq!(
        response(
            Algorithm::Sha256,
            &sha,
            NONCE,
            Some((nc, CNONCE)),
            &register,
            "sip:example.org"
        ),
        "d57413410d78b292532cea78ea9f61d570d2a1f061edfb96af7836c329503c9d"
    );
}

#[test]
fn rfc2069_form_without_qop() {
    // RFC 2617 §3.5 (the MD5 example of RFC 2069 compatibility is not
    // published; this checks the formula H(HA1:nonce:H(A2))).
    let h = ha1(Algorithm::Md5, "Mufasa", REALM, "Circle of Life");
    let ha2 = Algorithm::Md5.hash_hex(&[b"GET", b"/dir/index.html"]);
    let expected = Algorithm::Md5.hash_hex(&[h.as_bytes(), NONCE.as_bytes(), ha2.as_bytes()]);
    assert_eq!(
        response(Algorithm::Md5, &h, NONCE, None, &get(), "/dir/index.html"),
        expected
    );
}

#[test]
fn rfc8760_challenges_sha256_first_and_both_verify() {
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut auth = Authenticator::new(DigestConfig::new("biloxi.example.com", [7; 32]));
    let [first, second] = two(auth.challenges(wall, false));
    assert_eq!(first.algorithm, Algorithm::Sha256);
    assert_eq!(second.algorithm, Algorithm::Md5);
    assert_eq!(first.nonce, second.nonce);
    assert!(first.to_string().starts_with(
        "Digest realm=\"biloxi.example.com\", qop=\"auth\", algorithm=SHA-256, nonce=\""
    ));
    let secrets = DigestSecrets::from_password("bob", "biloxi.example.com", "zanzibar");
    for (i, ch) in [first, second].into_iter().enumerate() {
        // A client reads the challenge from the header and answers it.
        let parsed = Challenge::parse(ch.to_string().as_bytes()).unwrap();
        assert_eq!(parsed, ch);
        let key = secrets.ha1(ch.algorithm).unwrap();
        let uri = "sip:biloxi.example.com";
        let creds = parsed.answer(
            "bob",
            key,
            &Method::Register,
            uri,
            "0a4f113b",
            NonceCount::new(i as u32 + 1),
        );
        let creds = Credentials::parse(creds.to_string().as_bytes()).unwrap();
        let at = wall + Duration::from_secs(1);
        assert_eq!(
            auth.verify(
                at,
                &creds,
                &Method::Register,
                uri.as_bytes(),
                Some(&secrets)
            ),
            Verdict::Authenticated,
            "{:?}",
            ch.algorithm
        );
    }
}

#[test]
fn stored_ha1_in_upper_case_still_verifies() {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut auth = Authenticator::new(DigestConfig::new("d", [1; 32]));
    let s = DigestSecrets::from_password("a", "d", "pw");
    let upper = DigestSecrets {
        md5: s.md5.as_ref().map(|h| h.to_ascii_uppercase()),
        sha256: None,
    };
    let [_, md5] = two(auth.challenges(wall, false));
    let c = md5.answer(
        "a",
        s.md5.as_deref().unwrap(),
        &Method::Register,
        "sip:d",
        "c",
        NonceCount::new(1),
    );
    assert_eq!(
        auth.verify(wall, &c, &Method::Register, b"sip:d", Some(&upper)),
        Verdict::Authenticated
    );
}

/// The two challenges of the default configuration (SHA-256, MD5).
fn two(challenges: Vec<Challenge>) -> [Challenge; 2] {
    challenges.try_into().expect("SHA-256 and MD5 offered")
}
