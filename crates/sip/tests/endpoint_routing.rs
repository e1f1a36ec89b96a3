//! Where responses go over UDP (RFC 3261 §18.2.2, RFC 3581 §4) and what the
//! top Via says about the source (§18.2.1): `rport` sends back to the source
//! port, without it to the sent-by port; `received` is added when the source
//! address is not the sent-by.

mod common;

use std::net::SocketAddr;

use common::{Harness, OFFER, UacConfig};
use hotline_sip::endpoint;

/// A caller behind a NAT: it writes its private address in Via, and we see
/// the NAT's public address and port.
const PUBLIC: &str = "198.51.100.7:40000";

fn behind_nat(rport: bool, sent_by: &str) -> Harness {
    let uac = UacConfig {
        source: PUBLIC.parse().unwrap(),
        sent_by: sent_by.to_owned(),
        rport,
        ..UacConfig::default()
    };
    Harness::new(uac, endpoint::Config::default())
}

/// Destinations of everything the endpoint sent.
fn destinations(h: &Harness) -> Vec<SocketAddr> {
    h.sent_by_uas(|_| true).iter().map(|p| p.to).collect()
}

fn top_via(h: &Harness) -> String {
    let resp = h.sent_by_uas(|p| p.status().is_some())[0].msg().unwrap();
    String::from_utf8_lossy(
        resp.values(hotline_sip::message::HeaderName::Via)
            .next()
            .unwrap(),
    )
    .into_owned()
}

#[test]
fn rport_sends_to_the_source_port_and_fills_it_in() {
    let mut h = behind_nat(true, "10.0.0.5:5062");
    let call = h.call();
    h.ringing(call);
    h.answer(call);
    let public: SocketAddr = PUBLIC.parse().unwrap();
    assert!(
        destinations(&h).iter().all(|&d| d == public),
        "{:?}",
        destinations(&h)
    );
    let via = top_via(&h);
    assert!(via.contains(";rport=40000"), "{via}");
    assert!(via.contains(";received=198.51.100.7"), "{via}");

    // Our BYE goes where the INVITE came from, too (symmetric signalling).
    h.hangup(call);
    assert_eq!(h.sent_by_uas(|p| p.is_request("BYE"))[0].to, public);
}

#[test]
fn without_rport_responses_go_to_the_sent_by_port() {
    let mut h = behind_nat(false, "10.0.0.5:5062");
    h.call();
    let expected: SocketAddr = "198.51.100.7:5062".parse().unwrap();
    assert_eq!(destinations(&h), [expected], "source address, Via port");
    let via = top_via(&h);
    assert!(via.contains(";received=198.51.100.7"), "{via}");
    assert!(!via.contains("rport"), "{via}");
}

#[test]
fn without_rport_and_port_the_default_5060_is_used() {
    let mut h = behind_nat(false, "10.0.0.5");
    h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
    h.flush();
    assert_eq!(
        destinations(&h),
        ["198.51.100.7:5060".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn no_received_when_the_source_is_the_sent_by() {
    let mut h = Harness::new(
        UacConfig {
            rport: false,
            ..UacConfig::default()
        },
        endpoint::Config::default(),
    );
    h.uac.invite(h.now, Some(OFFER));
    h.flush();
    let via = top_via(&h);
    assert!(!via.contains("received"), "{via}");
    assert_eq!(
        destinations(&h),
        [common::UAC_ADDR.parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn sent_by_a_host_name_gets_received() {
    let mut h = Harness::new(
        UacConfig {
            sent_by: "caller.example:5062".into(),
            rport: false,
            ..UacConfig::default()
        },
        endpoint::Config::default(),
    );
    h.uac.out_of_dialog(h.now, "OPTIONS", &[]);
    h.flush();
    let via = top_via(&h);
    assert!(via.contains(";received=192.0.2.10"), "{via}");
    assert_eq!(
        destinations(&h),
        [common::UAC_ADDR.parse::<SocketAddr>().unwrap()]
    );
}
