//! Dialogs (RFC 3261 §12) on either side of an INVITE, and the in-dialog
//! requests we send (BYE, §15.1.1; the ACK of a 2xx, §13.2.2.4).
//!
//! | | UAS ([`Dialog::from_invite`], §12.1.1) | UAC ([`Dialog::from_2xx`], §12.1.2) |
//! | --- | --- | --- |
//! | `local_tag` | our To tag | our From tag |
//! | `local_uri` | the INVITE's To | the INVITE's From, tag removed |
//! | `remote_from` | the INVITE's From | the 2xx's To (tag included) |
//! | `remote_target` | the INVITE's Contact | the 2xx's Contact |
//! | `route_set` | the INVITE's Record-Route, in order | the 2xx's Record-Route, reversed |
//! | `local_seq` | a random start | the INVITE's CSeq |
//! | `remote_seq` | the INVITE's CSeq | 0 (none yet) |
//!
//! Either way [`Dialog::request`] writes `From: local_uri;tag=local_tag`,
//! `To: remote_from` and the route set in stored order.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::NameAddr;
use crate::message::{HeaderName, Message, trim_lws};
use crate::response::put_fmt;

/// The state of a dialog: created by an INVITE we answer (§12.1.1) or by the
/// 2xx to an INVITE we sent (§12.1.2).
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: Bytes,
    /// Our tag (To tag of our responses as UAS, From tag of our INVITE as UAC).
    pub local_tag: String,
    /// The peer's tag (From tag of the INVITE as UAS, To tag of the 2xx as
    /// UAC); may be empty for RFC 2543 peers.
    pub remote_tag: Bytes,
    /// Our URI without a tag: the INVITE's To as the caller wrote it (UAS),
    /// or our INVITE's From (UAC).
    pub local_uri: Bytes,
    /// The peer's name-addr as the To of our requests, tag included: the
    /// INVITE's From (UAS) or the 2xx's To (UAC).
    pub remote_from: Bytes,
    /// Where in-dialog requests go: the Contact URI of the INVITE (UAS) or
    /// of the 2xx (UAC).
    pub remote_target: Bytes,
    /// Our route set, in the order Route headers are written: the INVITE's
    /// Record-Route in order (§12.1.1), or the 2xx's reversed (§12.1.2).
    pub route_set: Vec<Bytes>,
    /// Our CSeq for requests we send (the last one used).
    pub local_seq: u32,
    /// The highest CSeq seen from the peer (0: none yet).
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

    /// The dialog state the 2xx `response` to our `invite` establishes on the
    /// UAC side (§12.1.2): our From (tag removed) and tag, the 2xx's To with
    /// its tag, its Contact as the remote target (the INVITE's Request-URI if
    /// it has none) and its Record-Route reversed; `local_seq` is the
    /// INVITE's CSeq, so the next request uses the one after it. `None` when
    /// a header we need does not parse.
    pub fn from_2xx(invite: &Message, response: &Message) -> Option<Self> {
        let from = invite.from_header().ok()?;
        let to = response.to_header().ok()?;
        let cseq = invite.cseq().ok()?;
        let remote_target = response
            .contacts()
            .next()
            .and_then(Result::ok)
            .map(|c| Bytes::copy_from_slice(c.uri.raw))
            .unwrap_or_else(|| Bytes::copy_from_slice(invite.request_uri()));
        let mut route_set: Vec<Bytes> = response
            .values(HeaderName::RecordRoute)
            .map(Bytes::copy_from_slice)
            .collect();
        route_set.reverse();
        Some(Self {
            call_id: Bytes::copy_from_slice(invite.call_id().ok()?),
            local_tag: String::from_utf8_lossy(from.tag()?).into_owned(),
            remote_tag: Bytes::copy_from_slice(to.tag().unwrap_or_default()),
            local_uri: without_tag(&from),
            remote_from: Bytes::copy_from_slice(to.raw),
            remote_target,
            route_set,
            local_seq: cseq.seq,
            remote_seq: 0,
        })
    }

    /// Builds an in-dialog request (BYE, INFO, ...) from us to the peer,
    /// with the next CSeq. `via` is the complete Via value (with a fresh
    /// branch).
    pub fn request(
        &mut self,
        method: &str,
        via: &str,
        user_agent: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Bytes {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.build(method, self.local_seq, via, user_agent, extra, body)
    }

    /// Builds the ACK for a 2xx to our INVITE numbered `invite_seq` (RFC 3261
    /// §13.2.2.4): the CSeq number of the INVITE with method ACK, routed like
    /// any request of the dialog; `via` carries a branch of its own (the ACK
    /// of a 2xx is a transaction of its own, §17.1.1.3). No body (the
    /// endpoint sends offers in its INVITEs).
    pub fn ack(&self, invite_seq: u32, via: &str, user_agent: &str) -> Bytes {
        self.build("ACK", invite_seq, via, user_agent, &[], None)
    }

    fn build(
        &self,
        method: &str,
        seq: u32,
        via: &str,
        user_agent: &str,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Bytes {
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
        put_fmt(&mut out, format_args!("\r\nCSeq: {seq} {method}\r\n"));
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

    /// The Route headers of a request: the route set in stored order; with a
    /// strict router the remote target goes last (§12.2.1.1).
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

/// A name-addr as written, without its `tag` parameter (the other header
/// parameters are kept).
fn without_tag(n: &NameAddr<'_>) -> Bytes {
    let params = n.params.raw();
    let head = &n.raw[..n.raw.len() - params.len()];
    let mut out = BytesMut::with_capacity(n.raw.len());
    out.put_slice(trim_lws(head));
    for (name, value) in n.params.iter() {
        if name.eq_ignore_ascii_case(b"tag") {
            continue;
        }
        out.put_u8(b';');
        out.put_slice(name);
        if let Some(v) = value {
            out.put_u8(b'=');
            out.put_slice(v);
        }
    }
    out.freeze()
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
    fn uac_dialog_from_a_2xx() {
        let inv = Message::parse_datagram(Bytes::from_static(
            b"INVITE sip:op1@192.0.2.7:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK1\r\nFrom: \"QU 4821\" <sip:hotline@203.0.113.5:5060>;x=1;tag=ours\r\nTo: <sip:op1@hotline.local>\r\nCall-ID: c3@hotline\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let ok = Message::parse_datagram(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK1\r\nFrom: \"QU 4821\" <sip:hotline@203.0.113.5:5060>;x=1;tag=ours\r\nTo: <sip:op1@hotline.local>;tag=theirs\r\nCall-ID: c3@hotline\r\nCSeq: 1 INVITE\r\nContact: <sip:op1@192.0.2.7:5070>\r\nRecord-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let mut d = Dialog::from_2xx(&inv, &ok).unwrap();
        assert_eq!(d.local_tag, "ours");
        assert_eq!(&d.remote_tag[..], b"theirs");
        assert_eq!(
            &d.local_uri[..],
            &b"\"QU 4821\" <sip:hotline@203.0.113.5:5060>;x=1"[..]
        );
        assert_eq!(d.remote_seq, 0);
        let ack =
            Message::parse_datagram(d.ack(1, "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKa", "h"))
                .unwrap();
        ack.validate_request().unwrap();
        assert_eq!(ack.request_uri(), b"sip:op1@192.0.2.7:5070");
        assert_eq!(ack.cseq().unwrap().seq, 1);
        assert_eq!(ack.to_header().unwrap().tag(), Some(&b"theirs"[..]));
        assert_eq!(ack.from_header().unwrap().tag(), Some(&b"ours"[..]));
        let routes: Vec<_> = ack.values(HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec![&b"<sip:p1.example;lr>"[..], &b"<sip:p2.example;lr>"[..]]
        );
        let bye = Message::parse_datagram(d.request(
            "BYE",
            "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKb",
            "h",
            &[],
            None,
        ))
        .unwrap();
        assert_eq!(bye.cseq().unwrap().seq, 2);
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
