//! Brute force: 5 failures in 10 minutes from one source or for one user lock
//! it for 10 minutes; the fail2ban line.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hotline_sip::registrar::{Check, Lockout, LockoutConfig, auth_failure_line};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[test]
fn five_failures_from_one_source_lock_it_for_ten_minutes() {
    let t0 = Instant::now();
    let mut l = Lockout::new(LockoutConfig::default());
    let attacker = ip("192.0.2.66");
    // Five different names, so only the source count reaches five.
    for (i, user) in ["a", "b", "c", "d"].iter().enumerate() {
        assert_eq!(
            l.failure(t0 + mins(i as u64), attacker, user),
            Check::Allowed
        );
    }
    let locked_at = t0 + mins(4);
    let until = locked_at + mins(10);
    assert_eq!(l.failure(locked_at, attacker, "e"), Check::Locked { until });
    assert_eq!(l.check(locked_at, attacker, None), Check::Locked { until });
    assert_eq!(
        l.check(locked_at, attacker, Some("ana")),
        Check::Locked { until }
    );
    // Others are not affected: another source, and the names it tried.
    assert_eq!(
        l.check(locked_at, ip("192.0.2.67"), Some("a")),
        Check::Allowed
    );
    // Locked for ten minutes, then allowed again with a clean slate.
    assert_eq!(
        l.check(until - Duration::from_secs(1), attacker, None),
        Check::Locked { until }
    );
    assert_eq!(l.check(until, attacker, None), Check::Allowed);
    assert_eq!(l.failure(until, attacker, "f"), Check::Allowed);
}

#[test]
fn five_failures_for_one_user_lock_the_user_from_everywhere() {
    let t0 = Instant::now();
    let mut l = Lockout::new(LockoutConfig::default());
    for i in 0..4u8 {
        let src = IpAddr::from([198, 51, 100, i]);
        assert_eq!(l.failure(t0, src, "ana"), Check::Allowed);
    }
    let until = t0 + mins(10);
    assert_eq!(
        l.failure(t0, ip("198.51.100.4"), "ana"),
        Check::Locked { until }
    );
    // Ana is locked even from a source that never failed.
    assert_eq!(
        l.check(t0, ip("203.0.113.9"), Some("ana")),
        Check::Locked { until }
    );
    assert_eq!(l.check(t0, ip("203.0.113.9"), Some("beto")), Check::Allowed);
    assert_eq!(
        l.check(t0 + mins(10), ip("203.0.113.9"), Some("ana")),
        Check::Allowed
    );
}

#[test]
fn the_window_slides() {
    let t0 = Instant::now();
    let mut l = Lockout::new(LockoutConfig::default());
    let src = ip("192.0.2.1");
    // One failure every three minutes: never five within ten minutes.
    for i in 0..20 {
        assert_eq!(
            l.failure(t0 + mins(3 * i), src, "ana"),
            Check::Allowed,
            "{i}"
        );
    }
    // The last one was at 57 min; at 65 min it is the only one in the window,
    // so the fourth of a burst locks.
    let t = t0 + mins(65);
    for _ in 0..3 {
        assert_eq!(l.failure(t, src, "ana"), Check::Allowed);
    }
    assert!(matches!(l.failure(t, src, "ana"), Check::Locked { .. }));
}

#[test]
fn success_forgives_the_users_own_failures_only() {
    let t0 = Instant::now();
    let mut l = Lockout::new(LockoutConfig::default());
    let phone = ip("10.9.8.7");
    let attacker = ip("192.0.2.66");
    for _ in 0..2 {
        l.failure(t0, attacker, "ana");
    }
    for _ in 0..2 {
        l.failure(t0, phone, "ana");
    }
    // Ana's phone gets the password right: her typos are forgotten, the
    // attacker's two failures still count.
    l.success(t0, phone, "ana");
    assert_eq!(l.failure(t0, phone, "ana"), Check::Allowed);
    assert_eq!(l.failure(t0, phone, "ana"), Check::Allowed);
    assert!(matches!(
        l.failure(t0, attacker, "ana"),
        Check::Locked { .. }
    ));
    // A success lifts no lock.
    l.success(t0, phone, "ana");
    assert!(matches!(
        l.check(t0, phone, Some("ana")),
        Check::Locked { .. }
    ));
}

#[test]
fn ipv6_sources_count_per_64() {
    let t0 = Instant::now();
    let mut l = Lockout::new(LockoutConfig::default());
    for i in 1..=5u16 {
        let src = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]);
        l.failure(t0, src, &format!("user{i}"));
    }
    assert!(matches!(
        l.check(t0, ip("2001:db8:0:1::ffff"), None),
        Check::Locked { .. }
    ));
    assert_eq!(l.check(t0, ip("2001:db8:0:2::1"), None), Check::Allowed);
    // An IPv4-mapped address is the IPv4 source.
    for _ in 0..5 {
        l.failure(t0, ip("::ffff:192.0.2.9"), "x");
    }
    assert!(matches!(
        l.check(t0, ip("192.0.2.9"), None),
        Check::Locked { .. }
    ));
}

#[test]
fn old_entries_are_forgotten_and_memory_is_bounded() {
    let t0 = Instant::now();
    let config = LockoutConfig {
        max_tracked: 100,
        ..LockoutConfig::default()
    };
    let mut l = Lockout::new(config);
    for i in 0..1000u32 {
        l.failure(t0, IpAddr::from(i.to_be_bytes()), &format!("u{i}"));
    }
    let (sources, users) = l.tracked();
    assert!(sources <= 100 && users <= 100, "{sources} {users}");
    assert_eq!(l.poll_timeout(), Some(t0 + mins(10)));
    l.handle_timeout(t0 + mins(10));
    assert_eq!(l.tracked(), (0, 0));
    assert_eq!(l.poll_timeout(), None);
}

/// What fail2ban's `failregex = hotline auth failure source=<HOST>
/// user="[^"]*" reason=[a-z-]+` needs: the source right after the fixed
/// text, a user without quotes, a reason of letters and dashes.
fn fail2ban_source(line: &str) -> Option<(String, String, String)> {
    let rest = line.split_once("hotline auth failure source=")?.1;
    let (host, rest) = rest.split_once(" user=\"")?;
    let (user, rest) = rest.split_once("\" reason=")?;
    if user.contains('"')
        || rest.is_empty()
        || !rest.chars().all(|c| c.is_ascii_lowercase() || c == '-')
    {
        return None;
    }
    host.parse::<IpAddr>().ok()?;
    Some((host.to_owned(), user.to_owned(), rest.to_owned()))
}

#[test]
fn fail2ban_line() {
    let line = auth_failure_line(ip("192.0.2.66"), "ana", "bad-password");
    assert_eq!(
        line,
        "hotline auth failure source=192.0.2.66 user=\"ana\" reason=bad-password"
    );
    // A user name cannot break out of its quotes or forge a source.
    let evil = "x\" source=10.0.0.1 user=\"y\nhotline auth failure source=10.0.0.2";
    let line = auth_failure_line(ip("2001:db8::66"), evil, "unknown-user");
    assert!(!line.contains('\n'));
    assert_eq!(
        fail2ban_source(&line).map(|(h, _, r)| (h, r)),
        Some(("2001:db8::66".to_owned(), "unknown-user".to_owned()))
    );
    let long = "a".repeat(500);
    assert_eq!(
        fail2ban_source(&auth_failure_line(ip("192.0.2.1"), &long, "replay"))
            .unwrap()
            .1
            .len(),
        64
    );
    assert_eq!(
        auth_failure_line(ip("::ffff:192.0.2.1"), "ana", "locked"),
        "hotline auth failure source=192.0.2.1 user=\"ana\" reason=locked"
    );
}
