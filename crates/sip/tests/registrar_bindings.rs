//! RFC 3261 §10.3 on a fake clock: add, refresh, remove one and all, several
//! contacts, expiry, 423, CSeq ordering, lookup order, events.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline_sip::endpoint::{Peer, Transport};
use hotline_sip::message::Message;
use hotline_sip::registrar::{
    ContactBinding, Contacts, Event, QValue, RegisterError, Registrar, RegistrarConfig,
    Registration,
};

const AOR: &str = "sip:ana@hotline.example";

fn peer(remote: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        remote: remote.parse().unwrap(),
        local: "203.0.113.5:5060".parse::<SocketAddr>().unwrap(),
        connection: None,
    }
}

fn reg(
    contacts: Vec<ContactBinding>,
    expires: Option<u32>,
    call_id: &str,
    cseq: u32,
) -> Registration {
    Registration {
        aor: AOR.into(),
        contacts: Contacts::List(contacts),
        expires,
        call_id: call_id.into(),
        cseq,
        source: peer("198.51.100.7:40000"),
        path: Vec::new(),
    }
}

fn contact(uri: &str) -> ContactBinding {
    ContactBinding::new(uri)
}

fn with_expires(uri: &str, expires: u32) -> ContactBinding {
    ContactBinding {
        expires: Some(expires),
        ..ContactBinding::new(uri)
    }
}

fn events(r: &mut Registrar) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn registered() -> Event {
    Event::Registered { aor: AOR.into() }
}

fn unregistered() -> Event {
    Event::Unregistered { aor: AOR.into() }
}

#[test]
fn add_refresh_and_remove_one_contact() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let b = r
        .register(
            t0,
            reg(vec![contact("sip:ana@10.0.0.5:5060")], Some(600), "c1", 1),
        )
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, "sip:ana@10.0.0.5:5060");
    assert_eq!(b[0].expires_in(t0), 600);
    assert_eq!(b[0].source.remote, "198.51.100.7:40000".parse().unwrap());
    assert_eq!(events(&mut r), vec![registered()]);

    // Refresh: same binding, new expiry, no new event.
    let t1 = t0 + Duration::from_secs(300);
    let b2 = r
        .register(
            t1,
            reg(vec![contact("sip:ana@10.0.0.5:5060")], Some(600), "c1", 2),
        )
        .unwrap();
    assert_eq!(b2.len(), 1);
    assert_eq!(b2[0].id, b[0].id);
    assert_eq!(b2[0].expires_in(t1), 600);
    assert!(events(&mut r).is_empty());

    // Un-register with Expires: 0.
    let b3 = r
        .register(
            t1,
            reg(vec![contact("sip:ana@10.0.0.5:5060")], Some(0), "c1", 3),
        )
        .unwrap();
    assert!(b3.is_empty());
    assert_eq!(events(&mut r), vec![unregistered()]);
    assert!(r.lookup(t1, AOR).is_empty());
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn several_contacts_per_user_and_wildcard_removal() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(
        t0,
        reg(vec![contact("sip:ana@10.0.0.5")], Some(600), "desk", 1),
    )
    .unwrap();
    let t1 = t0 + Duration::from_secs(1);
    let b = r
        .register(
            t1,
            reg(
                vec![
                    contact("sip:ana@10.0.0.9;transport=tcp"),
                    contact("sip:ana@10.0.0.10"),
                ],
                Some(600),
                "mobile",
                1,
            ),
        )
        .unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(events(&mut r), vec![registered()]);
    // Query: no Contact.
    assert_eq!(r.register(t1, reg(vec![], None, "q", 1)).unwrap().len(), 3);
    // Remove one of three by its per-contact expires.
    let b = r
        .register(
            t1,
            reg(
                vec![with_expires("sip:ana@10.0.0.10", 0)],
                Some(600),
                "mobile",
                2,
            ),
        )
        .unwrap();
    assert_eq!(b.len(), 2);
    // `*` with Expires: 0 removes the rest.
    let all = Registration {
        contacts: Contacts::Wildcard,
        ..reg(vec![], Some(0), "mobile", 3)
    };
    assert!(r.register(t1, all).unwrap().is_empty());
    assert_eq!(events(&mut r), vec![unregistered()]);
    // `*` with another Expires is refused.
    let bad = Registration {
        contacts: Contacts::Wildcard,
        ..reg(vec![], Some(60), "mobile", 4)
    };
    assert_eq!(r.register(t1, bad).unwrap_err(), RegisterError::Wildcard);
}

#[test]
fn bindings_expire_on_the_fake_clock() {
    let t0 = Instant::now();
    let config = RegistrarConfig {
        udp_keepalive: None,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(config);
    r.register(
        t0,
        reg(
            vec![
                with_expires("sip:ana@a", 60),
                with_expires("sip:ana@b", 120),
            ],
            None,
            "c",
            1,
        ),
    )
    .unwrap();
    events(&mut r);
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    // Still there one tick before; lookup hides an expired binding at once.
    r.handle_timeout(t0 + Duration::from_secs(59));
    assert_eq!(r.lookup(t0 + Duration::from_secs(59), AOR).len(), 2);
    assert_eq!(r.lookup(t0 + Duration::from_secs(60), AOR).len(), 1);
    r.handle_timeout(t0 + Duration::from_secs(60));
    assert!(events(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    r.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(events(&mut r), vec![unregistered()]);
    assert_eq!(r.poll_timeout(), None);
    assert!(r.registered(t0 + Duration::from_secs(120)).is_empty());
}

#[test]
fn default_min_and_max_expires() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    // No expires anywhere: the default (3600).
    let b = r
        .register(t0, reg(vec![contact("sip:ana@a")], None, "c", 1))
        .unwrap();
    assert_eq!(b[0].expires_in(t0), 3600);
    // Too long: shortened to the maximum.
    let b = r
        .register(t0, reg(vec![contact("sip:ana@a")], Some(86_400), "c", 2))
        .unwrap();
    assert_eq!(b[0].expires_in(t0), 3600);
    // Too short: 423, and nothing changes (all or nothing).
    let err = r
        .register(
            t0,
            reg(
                vec![contact("sip:ana@new"), with_expires("sip:ana@a", 30)],
                Some(600),
                "c",
                3,
            ),
        )
        .unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 60 });
    assert_eq!(err.status(), 423);
    let b = r.lookup(t0, AOR);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].expires_in(t0), 3600);
    // The per-contact expires wins over the header, both ways.
    let b = r
        .register(
            t0,
            reg(vec![with_expires("sip:ana@a", 90)], Some(30), "c", 4),
        )
        .unwrap();
    assert_eq!(b[0].expires_in(t0), 90);
}

#[test]
fn cseq_ordering_per_call_id() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(t0, reg(vec![contact("sip:ana@a")], Some(600), "c", 5))
        .unwrap();
    // Same Call-ID, same or lower CSeq: refused (500), for updates and removals.
    for cseq in [5, 4] {
        let err = r
            .register(t0, reg(vec![contact("sip:ana@a")], Some(600), "c", cseq))
            .unwrap_err();
        assert_eq!(err, RegisterError::OutOfOrder);
        assert_eq!(err.status(), 500);
        let err = r
            .register(t0, reg(vec![contact("sip:ana@a")], Some(0), "c", cseq))
            .unwrap_err();
        assert_eq!(err, RegisterError::OutOfOrder);
        let wildcard = Registration {
            contacts: Contacts::Wildcard,
            ..reg(vec![], Some(0), "c", cseq)
        };
        assert_eq!(
            r.register(t0, wildcard).unwrap_err(),
            RegisterError::OutOfOrder
        );
    }
    assert_eq!(r.lookup(t0, AOR).len(), 1);
    // Another Call-ID (the phone rebooted) updates whatever its CSeq.
    let b = r
        .register(
            t0,
            reg(vec![contact("sip:ana@a")], Some(900), "rebooted", 1),
        )
        .unwrap();
    assert_eq!(
        (b.len(), b[0].call_id.as_str(), b[0].cseq),
        (1, "rebooted", 1)
    );
    // The same contact twice in one request is not out of order with itself.
    let b = r
        .register(
            t0,
            reg(
                vec![contact("sip:ana@a"), with_expires("sip:ana@a", 120)],
                Some(600),
                "rebooted",
                2,
            ),
        )
        .unwrap();
    assert_eq!(b[0].expires_in(t0), 120);
}

#[test]
fn contacts_match_by_uri_equivalence_or_instance() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(
        t0,
        reg(
            vec![contact("sip:ana@Phone.Example;Transport=UDP")],
            Some(600),
            "c",
            1,
        ),
    )
    .unwrap();
    let b = r
        .register(
            t0,
            reg(
                vec![contact("sip:ana@phone.example;transport=udp")],
                Some(600),
                "c",
                2,
            ),
        )
        .unwrap();
    assert_eq!(b.len(), 1, "same URI up to case");

    // A phone that moved network keeps its +sip.instance: its binding is
    // replaced, not duplicated.
    let moved = |uri: &str| ContactBinding {
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into()),
        ..contact(uri)
    };
    let b = r
        .register(t0, reg(vec![moved("sip:ana@10.1.1.1")], Some(600), "i", 1))
        .unwrap();
    assert_eq!(b.len(), 2);
    let b = r
        .register(t0, reg(vec![moved("sip:ana@10.2.2.2")], Some(600), "i", 2))
        .unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().any(|x| x.contact == "sip:ana@10.2.2.2"));
    assert!(!b.iter().any(|x| x.contact == "sip:ana@10.1.1.1"));
}

#[test]
fn lookup_orders_by_q_then_most_recent() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let q = |uri: &str, q: u16| ContactBinding {
        q: QValue::from_thousandths(q),
        ..contact(uri)
    };
    r.register(t0, reg(vec![q("sip:ana@low", 100)], Some(600), "a", 1))
        .unwrap();
    r.register(
        t0 + Duration::from_secs(1),
        reg(vec![contact("sip:ana@old")], Some(600), "b", 1),
    )
    .unwrap();
    r.register(
        t0 + Duration::from_secs(2),
        reg(vec![contact("sip:ana@new")], Some(600), "c", 1),
    )
    .unwrap();
    r.register(
        t0 + Duration::from_secs(3),
        reg(vec![q("sip:ana@mid", 500)], Some(600), "d", 1),
    )
    .unwrap();
    let order: Vec<String> = r
        .lookup(t0 + Duration::from_secs(3), AOR)
        .into_iter()
        .map(|b| b.contact)
        .collect();
    assert_eq!(
        order,
        ["sip:ana@new", "sip:ana@old", "sip:ana@mid", "sip:ana@low"]
    );
}

#[test]
fn contacts_per_aor_are_bounded() {
    let t0 = Instant::now();
    let config = RegistrarConfig {
        max_contacts: 2,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(config);
    let many: Vec<ContactBinding> = ["a", "b", "c"]
        .iter()
        .map(|h| contact(&format!("sip:ana@{h}")))
        .collect();
    assert_eq!(
        r.register(t0, reg(many, Some(600), "c", 1)).unwrap_err(),
        RegisterError::TooManyContacts { max: 2 }
    );
    r.register(t0, reg(vec![contact("sip:ana@a")], Some(600), "c", 2))
        .unwrap();
    r.register(
        t0 + Duration::from_secs(1),
        reg(vec![contact("sip:ana@b")], Some(600), "c", 3),
    )
    .unwrap();
    // A third one pushes out the least recently refreshed.
    let b = r
        .register(
            t0 + Duration::from_secs(2),
            reg(vec![contact("sip:ana@c")], Some(600), "c", 4),
        )
        .unwrap();
    let mut uris: Vec<&str> = b.iter().map(|b| b.contact.as_str()).collect();
    uris.sort();
    assert_eq!(uris, ["sip:ana@b", "sip:ana@c"]);
}

#[test]
fn contact_values_and_q_parse_and_print() {
    let c = ContactBinding::parse(
        b"\"Ana\" <sip:ana@10.0.0.5:5060;transport=udp>;expires=120;q=0.7;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
    )
    .unwrap();
    assert_eq!(c.uri, "sip:ana@10.0.0.5:5060;transport=udp");
    assert_eq!(c.expires, Some(120));
    assert_eq!(c.q.unwrap().thousandths(), 700);
    assert_eq!(c.instance.as_deref(), Some("<urn:uuid:1>"));
    assert_eq!(c.reg_id, Some(1));
    for bad in [
        &b"<sip:ana@a>;expires=soon"[..],
        b"<sip:ana@a>;q=1.5",
        b"<sip:ana@a>;q",
        b"<tel:+5112345>",
        b"<sip:ana@a",
        b"<sip:ana@a>;+sip.instance=bare",
    ] {
        assert_eq!(
            ContactBinding::parse(bad).unwrap_err(),
            RegisterError::Malformed("Contact"),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    for (text, n, shown) in [
        ("0", 0, "0"),
        ("0.5", 500, "0.5"),
        ("0.125", 125, "0.125"),
        ("1.000", 1000, "1"),
        ("0.05", 50, "0.05"),
    ] {
        let q = QValue::parse(text.as_bytes()).unwrap();
        assert_eq!((q.thousandths(), q.to_string().as_str()), (n, shown));
    }
    for bad in ["1.001", "2", "0.1234", ".5", ""] {
        assert!(QValue::parse(bad.as_bytes()).is_none(), "{bad}");
    }
}

#[test]
fn registration_from_a_message() {
    let msg = |contact: &str, expires: &str| {
        Message::parse_datagram(Bytes::from(format!(
            "REGISTER sip:hotline.example SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\r\n\
             From: <sip:ana@hotline.example>;tag=1\r\n\
             To: <sip:ana@hotline.example>\r\n\
             Call-ID: abc@10.0.0.5\r\nCSeq: 7 REGISTER\r\n{contact}{expires}\
             Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    };
    let source = peer("198.51.100.7:40000");
    let r = Registration::from_message(
        &msg(
            "Contact: <sip:ana@a>;expires=60, <sip:ana@b>\r\nm: <sip:ana@c>\r\n",
            "Expires: 300\r\n",
        ),
        AOR.into(),
        source,
    )
    .unwrap();
    assert_eq!(
        (r.call_id.as_str(), r.cseq, r.expires),
        ("abc@10.0.0.5", 7, Some(300))
    );
    let Contacts::List(cs) = &r.contacts else {
        panic!("a list");
    };
    assert_eq!(cs.len(), 3);
    assert_eq!(cs[0].expires, Some(60));
    let wildcard =
        Registration::from_message(&msg("Contact: *\r\n", "Expires: 0\r\n"), AOR.into(), source)
            .unwrap();
    assert_eq!(wildcard.contacts, Contacts::Wildcard);
    for (contact, expires) in [
        ("Contact: *\r\n", "Expires: 60\r\n"),
        ("Contact: *\r\n", ""),
        ("Contact: *, <sip:ana@a>\r\n", "Expires: 0\r\n"),
    ] {
        assert_eq!(
            Registration::from_message(&msg(contact, expires), AOR.into(), source).unwrap_err(),
            RegisterError::Wildcard
        );
    }
    assert_eq!(
        Registration::from_message(
            &msg("Contact: <sip:ana@a>\r\n", "Expires: never\r\n"),
            AOR.into(),
            source
        )
        .unwrap_err(),
        RegisterError::Malformed("Expires")
    );
    let none = Registration::from_message(&msg("", ""), AOR.into(), source).unwrap();
    assert_eq!(none.contacts, Contacts::List(vec![]));
}

/// RFC 3327: a binding registered through a proxy keeps the Path (first hop first) as the
/// route set of requests to it, and the proxy keeps the flow open: no keep-alive from us.
#[test]
fn a_binding_through_a_proxy_keeps_its_path_and_gets_no_keepalive() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig {
        udp_keepalive: Some(Duration::from_secs(30)),
        ..RegistrarConfig::default()
    });
    let via_proxy = Registration {
        path: vec!["<sip:10.0.0.2;lr;received=sip:203.0.113.9:5062>".into()],
        ..reg(
            vec![contact("sip:ana@192.168.1.20:5062")],
            Some(600),
            "p1",
            1,
        )
    };
    let b = r.register(t0, via_proxy).unwrap();
    assert_eq!(
        b[0].path,
        vec!["<sip:10.0.0.2;lr;received=sip:203.0.113.9:5062>"]
    );
    assert!(r.poll_keepalive(t0 + Duration::from_secs(3600)).is_none());
    // Without a Path, the same registrar probes the contact.
    let direct = reg(
        vec![contact("sip:beto@192.168.1.21:5062")],
        Some(600),
        "p2",
        1,
    );
    let mut r2 = Registrar::new(RegistrarConfig {
        udp_keepalive: Some(Duration::from_secs(30)),
        ..RegistrarConfig::default()
    });
    assert!(r2.register(t0, direct).unwrap()[0].path.is_empty());
    assert!(r2.poll_keepalive(t0 + Duration::from_secs(31)).is_some());
}
