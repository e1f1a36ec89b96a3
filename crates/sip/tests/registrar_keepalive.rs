//! Keep-alives for contacts behind NAT: OPTIONS to UDP contacts, CRLF on TCP
//! connections, on a fake clock; unreachable contacts and closed connections.

use std::time::{Duration, Instant};

use hotline_sip::endpoint::{Peer, Transport};
use hotline_sip::registrar::{
    ContactBinding, Contacts, Event, KeepAliveKind, Registrar, RegistrarConfig, Registration,
};

fn peer(transport: Transport, remote: &str, connection: Option<u64>) -> Peer {
    Peer {
        transport,
        remote: remote.parse().unwrap(),
        local: "203.0.113.5:5060".parse().unwrap(),
        connection,
    }
}

fn reg(aor: &str, uri: &str, source: Peer, expires: u32) -> Registration {
    Registration {
        aor: aor.into(),
        contacts: Contacts::List(vec![ContactBinding::new(uri)]),
        expires: Some(expires),
        call_id: format!("{aor}-{uri}"),
        cseq: 1,
        source,
        path: Vec::new(),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn udp_contacts_get_options_every_30_s_and_tcp_ones_crlf_every_90_s() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let nat = peer(Transport::Udp, "198.51.100.7:40000", None);
    let tcp = peer(Transport::Tcp, "198.51.100.8:51000", Some(9));
    r.register(t0, reg("sip:ana@h", "sip:ana@192.168.1.20:5060", nat, 600))
        .unwrap();
    r.register(
        t0,
        reg(
            "sip:beto@h",
            "sip:beto@192.168.1.30;transport=tcp",
            tcp,
            600,
        ),
    )
    .unwrap();

    assert!(r.poll_keepalive(t0 + secs(29)).is_none());
    assert_eq!(r.poll_timeout(), Some(t0 + secs(30)));
    let k = r.poll_keepalive(t0 + secs(30)).unwrap();
    assert_eq!(
        (k.aor.as_str(), k.kind),
        ("sip:ana@h", KeepAliveKind::Options)
    );
    // Sent to where the REGISTER came from (received/rport), not to the
    // private address in the Contact.
    assert_eq!(
        k.binding.source.remote,
        "198.51.100.7:40000".parse().unwrap()
    );
    assert_eq!(k.binding.contact, "sip:ana@192.168.1.20:5060");
    assert!(r.poll_keepalive(t0 + secs(30)).is_none());

    // Walk the clock to 180 s, collecting every keep-alive.
    let mut sent = Vec::new();
    let mut now = t0 + secs(30);
    while let Some(next) = r.poll_timeout().filter(|&t| t <= t0 + secs(180)) {
        now = next;
        r.handle_timeout(now);
        while let Some(k) = r.poll_keepalive(now) {
            sent.push(((now - t0).as_secs(), k.kind));
        }
    }
    assert_eq!(now, t0 + secs(180));
    assert_eq!(
        sent,
        [
            (60, KeepAliveKind::Options),
            (90, KeepAliveKind::Options),
            (90, KeepAliveKind::Crlf),
            (120, KeepAliveKind::Options),
            (150, KeepAliveKind::Options),
            (180, KeepAliveKind::Options),
            (180, KeepAliveKind::Crlf),
        ]
    );
}

#[test]
fn a_refresh_restarts_the_schedule_and_expired_bindings_are_not_pinged() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let nat = peer(Transport::Udp, "198.51.100.7:40000", None);
    r.register(t0, reg("sip:ana@h", "sip:ana@a", nat, 60))
        .unwrap();
    let mut refresh = reg("sip:ana@h", "sip:ana@a", nat, 60);
    refresh.cseq = 2;
    r.register(t0 + secs(20), refresh).unwrap();
    assert!(r.poll_keepalive(t0 + secs(30)).is_none());
    assert!(r.poll_keepalive(t0 + secs(50)).is_some());
    // Expires at 80 s; its next keep-alive would be at 80 s too: none.
    assert!(r.poll_keepalive(t0 + secs(80)).is_none());
}

#[test]
fn unreachable_contacts_and_closed_connections_are_dropped() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let nat = peer(Transport::Udp, "198.51.100.7:40000", None);
    let tcp = peer(Transport::Tcp, "198.51.100.8:51000", Some(9));
    r.register(t0, reg("sip:ana@h", "sip:ana@a", nat, 600))
        .unwrap();
    r.register(t0, reg("sip:beto@h", "sip:beto@b", tcp, 600))
        .unwrap();
    while r.poll_event().is_some() {}

    // The OPTIONS to Ana timed out.
    let k = r.poll_keepalive(t0 + secs(30)).unwrap();
    assert!(r.remove(k.binding.id));
    assert!(!r.remove(k.binding.id));
    assert_eq!(
        r.poll_event(),
        Some(Event::Unregistered {
            aor: "sip:ana@h".into()
        })
    );
    // Beto's TCP connection closed; another connection id changes nothing.
    assert_eq!(r.connection_closed(8), 0);
    assert_eq!(r.connection_closed(9), 1);
    assert_eq!(
        r.poll_event(),
        Some(Event::Unregistered {
            aor: "sip:beto@h".into()
        })
    );
    assert!(r.registered(t0).is_empty());
}

#[test]
fn keepalives_can_be_turned_off() {
    let t0 = Instant::now();
    let config = RegistrarConfig {
        udp_keepalive: None,
        tcp_keepalive: None,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(config);
    let nat = peer(Transport::Udp, "198.51.100.7:40000", None);
    r.register(t0, reg("sip:ana@h", "sip:ana@a", nat, 600))
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(t0 + secs(600)));
    assert!(r.poll_keepalive(t0 + secs(599)).is_none());
}
