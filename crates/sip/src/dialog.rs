//! Dialogs (RFC 3261 §12) as the UAS sees them, and the in-dialog requests we
//! send (BYE, §15.1.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::NameAddr;
use crate::message::{HeaderName, Message, trim_lws};
use crate::response::put_fmt;

/// The state of a dialog created by an INVITE we answer (§12.1.1).
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: Bytes,
    /// Our tag (To tag of our responses).
    pub local_tag: String,
    /// The caller's tag (From tag of the INVITE); may be empty for RFC 2543 peers.
    pub remote_tag: Bytes,
    /// The To of the INVITE without a tag: our URI, as the caller wrote it.
    pub local_uri: Bytes,
    /// The From of the INVITE, as written (tag included).
    pub remote_from: Bytes,
    /// The Contact URI of the INVITE: where in-dialog requests go (§12.1.1).
    pub remote_target: Bytes,
    /// Record-Route values of the INVITE, in order: our route set (§12.1.1).
    pub route_set: Vec<Bytes>,
    /// Our CSeq for requests we send.
    pub local_seq: u32,
    /// The highest CSeq seen from the caller.
    pub remote_seq: u32,
}

impl Dialog {
    /// The dialog state a 2xx (or 1xx with tag) to `invite` establishes.
    pub fn from_invite(invite: &Message, local_tag: String, local_seq: u32) -> Option<Self> {
        let from = invite.from_header().ok()?;
        let to = invite.to_header().ok()?;
        let cseq = invite.cseq().ok()?;
        let remote_target = invite
            .contacts()
            .next()
            .and_then(Result::ok)
            .map(|c| Bytes::copy_from_slice(c.uri.raw))
            .unwrap_or_else(|| Bytes::copy_from_slice(from.uri.raw));
        let route_set = invite
            .values(HeaderName::RecordRoute)
            .map(Bytes::copy_from_slice)
            .collect();
        Some(Self {
            call_id: Bytes::copy_from_slice(invite.call_id().ok()?),
            local_tag,
            remote_tag: Bytes::copy_from_slice(from.tag().unwrap_or_default()),
            local_uri: Bytes::copy_from_slice(to.raw),
            remote_from: Bytes::copy_from_slice(from.raw),
            remote_target,
            route_set,
            local_seq,
            remote_seq: cseq.seq,
        })
    }

    /// Builds an in-dialog request (BYE, INFO, ...) from us to the caller.
    /// `via` is the complete Via value (with a fresh branch).
    pub fn request(
        &mut self,
        method: &str,
        via: &str,
        user_agent: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Bytes {
        self.local_seq = self.local_seq.wrapping_add(1);
        let mut out = BytesMut::with_capacity(512);
        let target = self.request_target();
        out.put_slice(method.as_bytes());
        out.put_u8(b' ');
        out.put_slice(&target);
        out.put_slice(b" SIP/2.0\r\n");
        put_fmt(
            &mut out,
            format_args!("Via: {via}\r\nMax-Forwards: 70\r\nFrom: "),
        );
        out.put_slice(&self.local_uri);
        put_fmt(&mut out, format_args!(";tag={}\r\nTo: ", self.local_tag));
        out.put_slice(&self.remote_from);
        out.put_slice(b"\r\nCall-ID: ");
        out.put_slice(&self.call_id);
        put_fmt(
            &mut out,
            format_args!("\r\nCSeq: {} {method}\r\n", self.local_seq),
        );
        for route in self.routes() {
            out.put_slice(b"Route: ");
            out.put_slice(&route);
            out.put_slice(b"\r\n");
        }
        for (name, value) in extra {
            put_fmt(&mut out, format_args!("{name}: {value}\r\n"));
        }
        put_fmt(&mut out, format_args!("User-Agent: {user_agent}\r\n"));
        match body {
            Some((ctype, b)) => {
                put_fmt(
                    &mut out,
                    format_args!(
                        "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                        b.len()
                    ),
                );
                out.put_slice(b);
            }
            None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
        }
        out.freeze()
    }

    /// The Request-URI: the remote target, or with a strict-routing first
    /// route (§12.2.1.1), that route's URI.
    fn request_target(&self) -> Bytes {
        match self.route_set.first() {
            Some(first) if !is_loose(first) => strip_angle(first),
            _ => self.remote_target.clone(),
        }
    }

    /// The Route headers of a request from the UAS side: the Record-Route set
    /// in order (§12.1.1: as received, for the UAS); with a strict router the
    /// remote target goes last (§12.2.1.1).
    fn routes(&self) -> Vec<Bytes> {
        let mut routes = self.route_set.clone();
        if let Some(first) = routes.first()
            && !is_loose(first)
        {
            routes.remove(0);
            let mut t = BytesMut::new();
            t.put_u8(b'<');
            t.put_slice(&self.remote_target);
            t.put_u8(b'>');
            routes.push(t.freeze());
        }
        routes
    }
}

/// Whether a route's URI carries the `lr` parameter (§19.1.1); parameters of
/// the header value after `>`, or text in the user part, do not count.
fn is_loose(route: &[u8]) -> bool {
    NameAddr::parse(trim_lws(route), "Route").is_ok_and(|r| r.uri.param("lr").is_some())
}

fn strip_angle(route: &Bytes) -> Bytes {
    match (memchr::memchr(b'<', route), memchr::memchr(b'>', route)) {
        (Some(a), Some(b)) if a < b => route.slice(a + 1..b),
        _ => route.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bye_from_the_uas_side() {
        let inv = Message::parse_datagram(Bytes::from_static(
            b"INVITE sip:0800@hotline SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: \"C\" <sip:caller@trunk>;tag=abc\r\nTo: <sip:0800@hotline>\r\nCall-ID: c1@x\r\nCSeq: 10 INVITE\r\nContact: <sip:caller@192.0.2.1:5062>\r\nRecord-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let mut d = Dialog::from_invite(&inv, "tag1".into(), 1).unwrap();
        let bye = d.request(
            "BYE",
            "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKb;rport",
            "hotline",
            &[],
            None,
        );
        let m = Message::parse_datagram(bye).unwrap();
        m.validate_request().unwrap();
        assert_eq!(m.request_uri(), b"sip:caller@192.0.2.1:5062");
        assert_eq!(m.from_header().unwrap().tag(), Some(&b"tag1"[..]));
        assert_eq!(m.to_header().unwrap().tag(), Some(&b"abc"[..]));
        assert_eq!(m.cseq().unwrap().seq, 2);
        let routes: Vec<_> = m.values(HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec![&b"<sip:p1.example;lr>"[..], &b"<sip:p2.example;lr>"[..]]
        );
    }

    #[test]
    fn strict_first_route_becomes_the_request_uri() {
        let inv = Message::parse_datagram(Bytes::from_static(
            b"INVITE sip:0800@hotline SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:caller@trunk>;tag=abc\r\nTo: <sip:0800@hotline>\r\nCall-ID: c2@x\r\nCSeq: 10 INVITE\r\nContact: <sip:caller@192.0.2.1:5062>\r\nRecord-Route: <sip:strict.example>, <sip:p2.example;lr>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let mut d = Dialog::from_invite(&inv, "tag1".into(), 1).unwrap();
        let bye = d.request(
            "BYE",
            "SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKb",
            "hotline",
            &[],
            None,
        );
        let m = Message::parse_datagram(bye).unwrap();
        assert_eq!(m.request_uri(), b"sip:strict.example");
        let routes: Vec<_> = m.values(HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec![
                &b"<sip:p2.example;lr>"[..],
                &b"<sip:caller@192.0.2.1:5062>"[..]
            ]
        );
    }

    #[test]
    fn lr_counts_only_as_a_uri_parameter() {
        assert!(is_loose(b"<sip:p1.example;lr>"));
        assert!(is_loose(b"<sip:p1.example;transport=udp;LR=on>"));
        assert!(!is_loose(b"<sip:p1.example>;lr"));
        assert!(!is_loose(b"<sip:p1.example;lrx>"));
        assert!(!is_loose(b"<sip:;lr@p1.example>"));
    }
}
