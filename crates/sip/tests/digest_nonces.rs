//! Nonces that expire, cannot be replayed and cannot be forged; the uri must
//! name the request; unknown users are verified like known ones.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotline_sip::digest::{
    Algorithm, Authenticator, Challenge, Credentials, DigestConfig, DigestError, DigestSecrets,
    Failure, NonceCount, NonceStatus, Verdict,
};
use hotline_sip::message::Method;

const REALM: &str = "hotline.example";
const URI: &str = "sip:hotline.example";

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn auth() -> Authenticator {
    Authenticator::new(DigestConfig::new(REALM, [42; 32]))
}

fn alice() -> DigestSecrets {
    DigestSecrets::from_password("alice", REALM, "correct horse")
}

/// Alice's answer to a challenge, with her real HA1.
fn answer(ch: &Challenge, nc: u32) -> Credentials {
    let s = alice();
    ch.answer(
        "alice",
        s.ha1(ch.algorithm).unwrap(),
        &Method::Register,
        URI,
        "cn0nce",
        NonceCount::new(nc),
    )
}

fn verify(a: &mut Authenticator, at: SystemTime, c: &Credentials) -> Verdict {
    a.verify(at, c, &Method::Register, URI.as_bytes(), Some(&alice()))
}

#[test]
fn fresh_nonce_then_expired_is_stale() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    assert_eq!(ch.nonce.len(), 43);
    assert_eq!(
        a.nonce_status(t0() + secs(300), &ch.nonce),
        NonceStatus::Fresh
    );
    assert_eq!(
        a.nonce_status(t0() + secs(301), &ch.nonce),
        NonceStatus::Expired
    );
    let c = answer(&ch, 1);
    assert_eq!(verify(&mut a, t0() + secs(301), &c), Verdict::Stale);
    // The next 401 says stale=true.
    let [again, _] = two(a.challenges(t0() + secs(301), true));
    assert!(again.to_string().ends_with(", stale=true"));
    assert_eq!(
        verify(&mut a, t0() + secs(302), &answer(&again, 1)),
        Verdict::Authenticated
    );
}

#[test]
fn expired_nonce_with_a_wrong_password_is_a_failure_not_stale() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    let c = ch.answer(
        "alice",
        &DigestSecrets::from_password("alice", REALM, "guess")
            .sha256
            .unwrap(),
        &Method::Register,
        URI,
        "c",
        NonceCount::new(1),
    );
    assert_eq!(
        verify(&mut a, t0() + secs(3600), &c),
        Verdict::Failed(Failure::BadPassword)
    );
}

#[test]
fn replayed_nc_is_refused_and_a_higher_one_accepted() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    let first = answer(&ch, 1);
    assert_eq!(verify(&mut a, t0(), &first), Verdict::Authenticated);
    // The captured REGISTER sent again, byte for byte.
    assert_eq!(
        verify(&mut a, t0() + secs(5), &first),
        Verdict::Failed(Failure::Replay)
    );
    // The phone's next refresh with the same nonce counts up.
    assert_eq!(
        verify(&mut a, t0() + secs(60), &answer(&ch, 2)),
        Verdict::Authenticated
    );
    assert_eq!(
        verify(&mut a, t0() + secs(61), &answer(&ch, 2)),
        Verdict::Failed(Failure::Replay)
    );
    assert_eq!(
        verify(&mut a, t0() + secs(61), &first),
        Verdict::Failed(Failure::Replay)
    );
    assert_eq!(
        verify(&mut a, t0() + secs(62), &answer(&ch, 7)),
        Verdict::Authenticated
    );
    assert_eq!(a.tracked_nonces(), 1);
}

#[test]
fn a_failed_attempt_does_not_burn_the_nonce() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    let mut bad = answer(&ch, 1);
    bad.response = "0".repeat(64);
    assert_eq!(
        verify(&mut a, t0(), &bad),
        Verdict::Failed(Failure::BadPassword)
    );
    assert_eq!(a.tracked_nonces(), 0);
    assert_eq!(
        verify(&mut a, t0(), &answer(&ch, 1)),
        Verdict::Authenticated
    );
}

#[test]
fn wrong_uri_is_refused() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    let c = answer(&ch, 1);
    assert_eq!(
        a.verify(
            t0(),
            &c,
            &Method::Register,
            b"sip:other.example",
            Some(&alice())
        ),
        Verdict::Invalid(DigestError::UriMismatch)
    );
    // Equivalent spellings of the same URI are accepted (RFC 3261 §19.1.4).
    assert_eq!(
        a.verify(
            t0(),
            &c,
            &Method::Register,
            b"SIP:HOTLINE.example",
            Some(&alice())
        ),
        Verdict::Authenticated
    );
    // The method is part of the hash.
    assert_eq!(
        a.verify(
            t0(),
            &answer(&ch, 2),
            &Method::Invite,
            URI.as_bytes(),
            Some(&alice())
        ),
        Verdict::Failed(Failure::BadPassword)
    );
}

#[test]
fn forged_foreign_and_future_nonces_are_not_fresh() {
    let mut a = auth();
    let [ch, _] = two(a.challenges(t0(), false));
    // Flip one character of the MAC.
    let mut forged = ch.nonce.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for n in [forged.as_str(), "", "not base64!", "AAAA"] {
        assert_eq!(a.nonce_status(t0(), n), NonceStatus::Invalid, "{n}");
    }
    // Another secret, another realm.
    let mut other = Authenticator::new(DigestConfig::new(REALM, [43; 32]));
    let [foreign, _] = two(other.challenges(t0(), false));
    assert_eq!(a.nonce_status(t0(), &foreign.nonce), NonceStatus::Invalid);
    let mut other_realm = Authenticator::new(DigestConfig::new("x.example", [42; 32]));
    let [foreign, _] = two(other_realm.challenges(t0(), false));
    assert_eq!(a.nonce_status(t0(), &foreign.nonce), NonceStatus::Invalid);
    // A right response to a nonce that is not ours: stale, so the phone
    // retries with ours without asking its user.
    let mut other = Authenticator::new(DigestConfig::new(REALM, [43; 32]));
    let [foreign, _] = two(other.challenges(t0(), false));
    assert_eq!(verify(&mut a, t0(), &answer(&foreign, 1)), Verdict::Stale);
    // Issued by a node whose clock runs ahead: 30 s of skew are fine, not more.
    let [ahead, _] = two(a.challenges(t0() + secs(30), false));
    assert_eq!(a.nonce_status(t0(), &ahead.nonce), NonceStatus::Fresh);
    let [ahead, _] = two(a.challenges(t0() + secs(31), false));
    assert_eq!(a.nonce_status(t0(), &ahead.nonce), NonceStatus::Invalid);
}

#[test]
fn nonces_are_unique_within_a_second() {
    let mut a = auth();
    let nonces: HashSet<String> = (0..1000).map(|_| a.nonce(t0())).collect();
    assert_eq!(nonces.len(), 1000);
}

#[test]
fn two_phones_with_nonces_of_the_same_second_do_not_collide() {
    let mut a = auth();
    let [one, _] = two(a.challenges(t0(), false));
    let [two, _] = two(a.challenges(t0(), false));
    assert_eq!(
        verify(&mut a, t0(), &answer(&one, 1)),
        Verdict::Authenticated
    );
    assert_eq!(
        verify(&mut a, t0(), &answer(&two, 1)),
        Verdict::Authenticated
    );
}

#[test]
fn replay_map_is_bounded_and_eviction_cannot_be_used_to_replay() {
    let mut config = DigestConfig::new(REALM, [42; 32]);
    config.max_tracked_nonces = 4;
    let mut a = Authenticator::new(config);
    let mut used = Vec::new();
    for i in 0..10u64 {
        let at = t0() + secs(i);
        let [ch, _] = two(a.challenges(at, false));
        let c = answer(&ch, 1);
        assert_eq!(verify(&mut a, at, &c), Verdict::Authenticated);
        used.push(c);
    }
    assert_eq!(a.tracked_nonces(), 4);
    // The evicted nonces are still within their lifetime, but replaying them
    // gets a stale challenge, never a registration.
    let now = t0() + secs(10);
    for c in &used[..6] {
        assert_eq!(verify(&mut a, now, c), Verdict::Stale);
    }
    for c in &used[6..] {
        assert_eq!(verify(&mut a, now, c), Verdict::Failed(Failure::Replay));
    }
    // Expired entries are purged as new ones come in.
    let later = t0() + secs(1000);
    let [ch, _] = two(a.challenges(later, false));
    assert_eq!(
        verify(&mut a, later, &answer(&ch, 1)),
        Verdict::Authenticated
    );
    assert_eq!(a.tracked_nonces(), 1);
}

#[test]
fn unknown_user_is_verified_against_a_dummy_and_fails() {
    let mut a = auth();
    let [sha, md5] = two(a.challenges(t0(), false));
    for ch in [sha, md5] {
        let mallory = DigestSecrets::from_password("mallory", REALM, "x");
        let c = ch.answer(
            "mallory",
            mallory.ha1(ch.algorithm).unwrap(),
            &Method::Register,
            URI,
            "c",
            NonceCount::new(1),
        );
        assert_eq!(
            a.verify(t0(), &c, &Method::Register, URI.as_bytes(), None),
            Verdict::Failed(Failure::UnknownUser)
        );
        // An account without the HA1 of that algorithm is no better.
        let partial = DigestSecrets {
            md5: None,
            sha256: None,
        };
        assert_eq!(
            a.verify(t0(), &c, &Method::Register, URI.as_bytes(), Some(&partial)),
            Verdict::Failed(Failure::UnknownUser)
        );
    }
}

#[test]
fn credentials_must_carry_qop_and_our_realm() {
    let mut a = auth();
    let [_, md5] = two(a.challenges(t0(), false));
    let mut old_style = md5.clone();
    old_style.qop = None;
    let c = old_style.answer(
        "alice",
        alice().ha1(Algorithm::Md5).unwrap(),
        &Method::Register,
        URI,
        "c",
        NonceCount::new(1),
    );
    assert_eq!(
        verify(&mut a, t0(), &c),
        Verdict::Invalid(DigestError::QopRequired)
    );
    let mut c = answer(&md5, 1);
    c.realm = "elsewhere".into();
    assert_eq!(
        verify(&mut a, t0(), &c),
        Verdict::Invalid(DigestError::RealmMismatch)
    );
}

#[test]
fn secrets_are_not_printed() {
    let s = format!("{:?} {:?}", alice(), DigestConfig::new(REALM, [42; 32]));
    assert!(!s.contains(&alice().md5.unwrap()));
    assert!(!s.contains("42, 42"));
}

/// The two challenges of the default configuration (SHA-256, MD5).
fn two(challenges: Vec<Challenge>) -> [Challenge; 2] {
    challenges.try_into().expect("SHA-256 and MD5 offered")
}

#[test]
fn offered_algorithms_follow_the_config() {
    let mut config = DigestConfig::new(REALM, [42; 32]);
    assert_eq!(config.offered(), [Algorithm::Sha256, Algorithm::Md5]);
    config.algorithms = vec![Algorithm::Md5, Algorithm::Md5];
    assert_eq!(config.offered(), [Algorithm::Md5], "duplicates count once");
    config.algorithms.clear();
    assert_eq!(
        config.offered(),
        Algorithm::PREFERENCE,
        "empty: the default"
    );

    config.algorithms = vec![Algorithm::Md5];
    let mut a = Authenticator::new(config);
    assert!(a.offers(Algorithm::Md5) && !a.offers(Algorithm::Sha256));
    let challenges = a.challenges(t0(), false);
    assert_eq!(challenges.len(), 1);
    let md5 = &challenges[0];
    assert_eq!(md5.algorithm, Algorithm::Md5);
    assert!(md5.to_string().contains("algorithm=MD5"));
    assert_eq!(
        verify(&mut a, t0(), &answer(md5, 1)),
        Verdict::Authenticated
    );
    let sha = Challenge {
        algorithm: Algorithm::Sha256,
        ..md5.clone()
    };
    assert_eq!(
        verify(&mut a, t0(), &answer(&sha, 2)),
        Verdict::Failed(Failure::AlgorithmNotOffered)
    );
}
