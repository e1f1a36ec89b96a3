//! The pseudonym secret on disk: made once, 0600, shared by racing starters, never replaced.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use hotline_store::privacy::{CallerIdPolicy, CallerPrivacy, SECRET_FILE, SecretError};
use hotline_store::{Caller, load_or_create_secret, pseudonym};

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_secret_is_made_once_with_mode_0600_and_pseudonyms_stay_stable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data"); // does not exist yet
    let s1 = load_or_create_secret(&data).unwrap();
    let path = data.join(SECRET_FILE);
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    let p1 = pseudonym(&s1, "+51 987 654 321").unwrap();

    // A restart reads the same secret: the same caller gets the same pseudonym.
    let s2 = load_or_create_secret(&data).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "file unchanged");
    assert_eq!(pseudonym(&s2, "987654321").unwrap(), p1);
    // The secret's Debug does not show it.
    assert!(!format!("{s2:?}").contains(&text.trim()[..8]));
    // No stray temp files.
    let names: Vec<String> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [SECRET_FILE]);

    // Another deployment (another secret) gives another pseudonym.
    let other = tempfile::tempdir().unwrap();
    let s3 = load_or_create_secret(other.path()).unwrap();
    assert_ne!(pseudonym(&s3, "987654321").unwrap(), p1);
}

#[test]
fn racing_starters_end_with_one_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secrets: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| load_or_create_secret(dir.path()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(secrets.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(load_or_create_secret(dir.path()).unwrap(), secrets[0]);
}

#[test]
fn a_readable_secret_is_tightened_and_a_malformed_one_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = load_or_create_secret(dir.path()).unwrap();
    let path = dir.path().join(SECRET_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(load_or_create_secret(dir.path()).unwrap(), s);
    assert_eq!(mode(&path), 0o600);

    fs::write(&path, "not a secret\n").unwrap();
    assert!(matches!(
        load_or_create_secret(dir.path()),
        Err(SecretError::Malformed { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "not a secret\n");
}

#[test]
fn only_the_pseudonym_policy_needs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let full = CallerPrivacy::load(CallerIdPolicy::Full, dir.path()).unwrap();
    assert_eq!(
        full.caller(Some("0051 987 654 321")),
        Caller::Number("987654321".into())
    );
    let none = CallerPrivacy::load(CallerIdPolicy::None, dir.path()).unwrap();
    assert_eq!(none.caller(Some("987654321")), Caller::Absent);
    assert!(!dir.path().join(SECRET_FILE).exists());
    let pseudo = CallerPrivacy::load(CallerIdPolicy::Pseudonym, dir.path()).unwrap();
    assert!(dir.path().join(SECRET_FILE).exists());
    let a = pseudo.caller(Some("987 654 321"));
    let b = CallerPrivacy::load(CallerIdPolicy::Pseudonym, dir.path())
        .unwrap()
        .caller(Some("+51987654321"));
    assert_eq!(a, b);
    assert!(matches!(a, Caller::Pseudonym(_)));
    assert_eq!(
        serde_json::from_str::<CallerIdPolicy>("\"pseudonym\"").unwrap(),
        CallerIdPolicy::Pseudonym
    );
    assert_eq!(CallerIdPolicy::default(), CallerIdPolicy::Pseudonym);
}
