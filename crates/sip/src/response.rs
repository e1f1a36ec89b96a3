//! Building responses to a request (RFC 3261 §8.2.6) and the Via rewriting of
//! §18.2.1 and RFC 3581.
//!
//! Via, From, To, Call-ID and CSeq are copied byte for byte from the request,
//! header names and folding included; the top Via gets `received` and the
//! `rport` value, and To gets our tag when it has none.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::Via;
use crate::message::{HeaderName, Message};

/// The default reason phrase for a status code (RFC 3261 §21).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Trying",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A response under construction.
#[derive(Debug)]
pub struct ResponseBuilder<'m> {
    req: &'m Message,
    code: u16,
    reason: &'m str,
    to_tag: Option<&'m str>,
    source: Option<SocketAddr>,
    extra: BytesMut,
    body: Option<(&'m str, Bytes)>,
}

/// Starts a response to `req` with the default reason phrase.
pub fn response(req: &Message, code: u16) -> ResponseBuilder<'_> {
    ResponseBuilder {
        req,
        code,
        reason: reason_phrase(code),
        to_tag: None,
        source: None,
        extra: BytesMut::new(),
        body: None,
    }
}

impl<'m> ResponseBuilder<'m> {
    /// Overrides the reason phrase.
    pub fn reason(mut self, reason: &'m str) -> Self {
        self.reason = reason;
        self
    }

    /// Adds our tag to To unless the request's To already has one.
    pub fn to_tag(mut self, tag: &'m str) -> Self {
        self.to_tag = Some(tag);
        self
    }

    /// Records where the request came from: the top Via gets `received`
    /// (§18.2.1) and `rport` is filled in (RFC 3581 §4).
    pub fn source(mut self, source: SocketAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds a header line. The value must not contain CR or LF.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        debug_assert!(!value.contains(&b'\n') && !value.contains(&b'\r'));
        self.extra.put_slice(name.as_bytes());
        self.extra.put_slice(b": ");
        self.extra.put_slice(value);
        self.extra.put_slice(b"\r\n");
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &'m str, body: Bytes) -> Self {
        self.body = Some((content_type, body));
        self
    }

    /// Serialises the response.
    pub fn build(self) -> Bytes {
        let req = self.req;
        let body_len = self.body.as_ref().map_or(0, |(_, b)| b.len());
        let mut out = BytesMut::with_capacity(
            req.as_bytes().len().min(1024) + self.extra.len() + body_len + 128,
        );
        let _ = write!(
            Writer(&mut out),
            "SIP/2.0 {} {}\r\n",
            self.code,
            self.reason
        );
        // Via: every line, byte for byte; the top value rewritten per §18.2.1 / RFC 3581.
        let mut first = true;
        for line in req.raw_lines(HeaderName::Via) {
            if first {
                first = false;
                if let Some(src) = self.source {
                    push_top_via(&mut out, line, src);
                    continue;
                }
            }
            out.put_slice(line);
            out.put_slice(b"\r\n");
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            for line in req.raw_lines(name) {
                out.put_slice(line);
                if name == HeaderName::To
                    && self.code > 100
                    && let Some(tag) = self.to_tag
                    && !req.to_header().is_ok_and(|t| t.tag().is_some())
                {
                    out.put_slice(b";tag=");
                    out.put_slice(tag.as_bytes());
                }
                out.put_slice(b"\r\n");
            }
        }
        if self.code == 100 {
            // RFC 3261 §8.2.6.1: copy Timestamp into 100 Trying.
            if let Some(ts) = req.header_by_name("Timestamp") {
                out.put_slice(b"Timestamp: ");
                out.put_slice(ts);
                out.put_slice(b"\r\n");
            }
        }
        out.put_slice(&self.extra);
        match self.body {
            Some((ctype, body)) => {
                let _ = write!(
                    Writer(&mut out),
                    "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                out.put_slice(&body);
            }
            None => out.put_slice(b"Content-Length: 0\r\n\r\n"),
        }
        out.freeze()
    }
}

/// Writes the first Via line with its first value rewritten: `rport` gets the
/// source port, `received` the source address when it differs from sent-by or
/// rport was asked for.
fn push_top_via(out: &mut BytesMut, line: &[u8], src: SocketAddr) {
    let colon = memchr::memchr(b':', line).unwrap_or(0);
    let values = &line[colon + 1..];
    let Some(first) = crate::message::split_commas(values).next() else {
        out.put_slice(line);
        out.put_slice(b"\r\n");
        return;
    };
    let Ok(via) = Via::parse(first) else {
        out.put_slice(line);
        out.put_slice(b"\r\n");
        return;
    };
    // Offsets of `first` inside `line` (both borrow the same buffer).
    let first_start = first.as_ptr() as usize - line.as_ptr() as usize;
    let first_end = first_start + first.len();
    let rport_flag = via.rport() == Some(None);
    let need_received = rport_flag || via.host.ip() != Some(src.ip());
    let mut rewritten = BytesMut::with_capacity(first.len() + 48);
    if rport_flag {
        // Find the bare `rport` parameter and give it the port.
        let params = via.params.raw();
        let pstart = params.as_ptr() as usize - first.as_ptr() as usize;
        let mut done = false;
        let mut i = pstart;
        while let Some(off) = find_ci(&first[i..], b"rport") {
            let at = i + off;
            let end = at + 5;
            let before_ok =
                first[..at].iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b';');
            let after = first[end..].iter().find(|b| !b.is_ascii_whitespace());
            let after_ok = matches!(after, None | Some(b';'));
            if before_ok && after_ok {
                rewritten.put_slice(&first[..end]);
                let _ = write!(Writer(&mut rewritten), "={}", src.port());
                rewritten.put_slice(&first[end..]);
                done = true;
                break;
            }
            i = end;
        }
        if !done {
            rewritten.put_slice(first);
        }
    } else {
        rewritten.put_slice(first);
    }
    if need_received && via.received().is_none() {
        let _ = match src.ip() {
            IpAddr::V4(a) => write!(Writer(&mut rewritten), ";received={a}"),
            IpAddr::V6(a) => write!(Writer(&mut rewritten), ";received={a}"),
        };
    }
    out.put_slice(&line[..first_start]);
    out.put_slice(&rewritten);
    out.put_slice(&line[first_end..]);
    out.put_slice(b"\r\n");
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Where a response goes over UDP (RFC 3261 §18.2.2 with RFC 3581 §4): the
/// source address, to the source port if `rport` was asked for, else to the
/// sent-by port (default 5060).
pub fn udp_response_destination(req: &Message, source: SocketAddr) -> SocketAddr {
    match req.top_via() {
        Ok(via) if via.rport().is_some() => source,
        Ok(via) => SocketAddr::new(source.ip(), via.port.unwrap_or(5060)),
        Err(_) => source,
    }
}

/// `fmt::Write` over `BytesMut`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends formatted text to a buffer (used by request builders).
pub(crate) fn put_fmt(out: &mut BytesMut, args: std::fmt::Arguments<'_>) {
    let _ = Writer(out).write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &'static [u8]) -> Message {
        Message::parse_datagram(Bytes::from_static(raw)).unwrap()
    }

    #[test]
    fn copies_headers_and_adds_tag_received_rport() {
        let m = req(b"INVITE sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP host.example;rport;branch=z9hG4bK1 , SIP/2.0/UDP b;branch=z9hG4bK0\r\nVia: SIP/2.0/UDP c;branch=z9hG4bKc\r\nf: <sip:a@b>;tag=1\r\nt:  <sip:x@y>\r\ni: c1\r\nCSeq: 7 INVITE\r\nl: 0\r\n\r\n");
        let r = response(&m, 180)
            .to_tag("abc")
            .source("192.0.2.9:5099".parse().unwrap())
            .build();
        let text = std::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"));
        assert!(text.contains("v: SIP/2.0/UDP host.example;rport=5099;branch=z9hG4bK1;received=192.0.2.9 , SIP/2.0/UDP b;branch=z9hG4bK0\r\n"), "{text}");
        assert!(text.contains("\r\nVia: SIP/2.0/UDP c;branch=z9hG4bKc\r\n"));
        assert!(text.contains("t:  <sip:x@y>;tag=abc\r\n"));
        // From, To, Call-ID, CSeq in that order, whatever order the request had.
        assert!(
            text.contains(
                "f: <sip:a@b>;tag=1\r\nt:  <sip:x@y>;tag=abc\r\ni: c1\r\nCSeq: 7 INVITE\r\n"
            ),
            "{text}"
        );
        let parsed = Message::parse_datagram(r).unwrap();
        assert_eq!(parsed.status(), Some(180));
        assert_eq!(parsed.top_via().unwrap().rport(), Some(Some(5099)));
    }

    #[test]
    fn no_received_when_sent_by_matches() {
        let m = req(b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\n\r\n");
        let r = response(&m, 200)
            .source("192.0.2.9:5060".parse().unwrap())
            .build();
        assert!(
            std::str::from_utf8(&r)
                .unwrap()
                .contains("Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\n")
        );
        assert_eq!(
            udp_response_destination(&m, "192.0.2.9:4000".parse().unwrap()),
            "192.0.2.9:5060".parse().unwrap()
        );
    }
}
