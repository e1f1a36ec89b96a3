//! Cluster mode: this node's softphone bindings published for the other nodes, and the
//! target of an operator leg, whether the binding is ours or another node's.
//!
//! A softphone registers through Kamailio, which adds a Path (RFC 3327, with the address the
//! REGISTER came from): a leg goes to the first Path hop with the Path as its Route set, so
//! the proxy reaches the phone on the flow it registered on, from any node. A binding
//! without Path (a phone registered straight to this node) is only reachable from here.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_cluster::{Cluster, Published, SharedBinding};
use hotline_sip::endpoint::{Peer, Transport};
use hotline_sip::header::NameAddr;
use hotline_sip::registrar::Binding;
use hotline_sip::uri::Scheme;

use crate::registrations::Registrations;

/// How often the bindings are published without a change (a failed write retried, and
/// expiries refreshed).
const REPUBLISH: Duration = Duration::from_secs(5);

/// Where an operator leg goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegTarget {
    /// The first hop: the phone (no Path) or the proxy (Path). A local address with port 0
    /// is filled in by the SIP task.
    pub(crate) peer: Peer,
    /// The contact.
    pub(crate) request_uri: String,
    /// Route header values (the Path), first hop first.
    pub(crate) route: Vec<String>,
}

impl LegTarget {
    /// A binding this node holds.
    pub(crate) fn of_local(b: &Binding) -> Option<LegTarget> {
        if b.path.is_empty() {
            return Some(LegTarget {
                peer: b.source,
                request_uri: b.contact.clone(),
                route: Vec::new(),
            });
        }
        let mut peer = first_hop(&b.path)?;
        if peer.transport == b.source.transport && peer.remote == b.source.remote {
            // The proxy we got the REGISTER from: same flow.
            peer = b.source;
        }
        Some(LegTarget {
            peer,
            request_uri: b.contact.clone(),
            route: b.path.clone(),
        })
    }

    /// A binding another node published: reachable through its Path only.
    pub(crate) fn of_shared(b: &SharedBinding) -> Option<LegTarget> {
        Some(LegTarget {
            peer: first_hop(&b.path)?,
            request_uri: b.contact.clone(),
            route: b.path.clone(),
        })
    }
}

/// The address of the first Path URI (`<sip:10.0.0.2:5060;lr>`; no port: 5060;
/// `transport=tcp`: TCP). Only IP literals: the proxy in front is configured by address.
fn first_hop(path: &[String]) -> Option<Peer> {
    let first = path.first()?;
    let n = NameAddr::parse(first.as_bytes(), "Path").ok()?;
    if n.uri.scheme != Scheme::Sip {
        return None;
    }
    let ip = n.uri.host?.ip()?;
    let port = n.uri.port.unwrap_or(5060);
    let transport = match n.uri.param("transport") {
        Some(t) if t.eq_ignore_ascii_case(b"tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    Some(Peer {
        transport,
        remote: std::net::SocketAddr::new(ip, port),
        local: std::net::SocketAddr::new(
            match ip {
                std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            },
            0,
        ),
        connection: None,
    })
}

/// Where to ring `operator`: their best binding on this node, else (cluster mode) the best
/// one another node published.
pub(crate) async fn leg_target(
    registrations: &Registrations,
    cluster: Option<&Cluster>,
    operator: &str,
) -> Option<LegTarget> {
    if let Some(t) = registrations
        .contacts(operator)
        .iter()
        .find_map(LegTarget::of_local)
    {
        return Some(t);
    }
    let cluster = cluster?;
    match cluster.bindings_of(operator).await {
        Ok(bindings) => bindings.iter().find_map(LegTarget::of_shared),
        Err(e) => {
            tracing::warn!(error = %e, "shared bindings unavailable");
            None
        }
    }
}

/// Publishes this node's bindings whenever they change (and every few seconds), for as
/// long as the runtime runs.
pub(crate) fn spawn_publisher(cluster: Cluster, registrations: Registrations) {
    let mut changes = registrations.subscribe();
    tokio::spawn(async move {
        let mut published = Published::default();
        loop {
            let now = Instant::now();
            let current: Vec<SharedBinding> = registrations
                .snapshot()
                .into_iter()
                .flat_map(|(operator, bindings)| {
                    bindings.into_iter().map(move |b| SharedBinding {
                        operator: operator.clone(),
                        contact: b.contact.clone(),
                        path: b.path.clone(),
                        q: b.q.map(|q| f32::from(q.thousandths()) / 1000.0),
                        expires_in: b.expires_at.saturating_duration_since(now),
                    })
                })
                .collect();
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Err(e) = cluster
                .publish_bindings(&mut published, &current, unix)
                .await
            {
                tracing::warn!(error = %e, "bindings not published; retried");
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                () = tokio::time::sleep(REPUBLISH) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_path_hop_is_the_leg_peer() {
        let p = first_hop(&["<sip:127.0.0.1:5070;lr;received=sip:10.1.2.3:5062>".into()]).unwrap();
        assert_eq!(p.remote, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(p.local.port(), 0);
        let t = first_hop(&["<sip:10.0.0.2;transport=tcp;lr>".into()]).unwrap();
        assert_eq!(t.remote, "10.0.0.2:5060".parse().unwrap());
        assert_eq!(t.transport, Transport::Tcp);
        assert!(first_hop(&["<sip:proxy.example;lr>".into()]).is_none());
        assert!(first_hop(&[]).is_none());
    }
}
