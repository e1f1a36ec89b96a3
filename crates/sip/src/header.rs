//! Typed views of the headers we use, parsed on demand from a [`Message`].
//!
//! Every parser here treats linear white space (SP, HTAB and the CR/LF of a
//! folded line) as RFC 3261 §25.1 `LWS`/`SWS` around separators, so folded and
//! oddly spaced headers (RFC 4475 §3.1.1.1) read like tidy ones.
//!
//! # Reading liberally, validating strictly
//! The accessors ([`Message::top_via`], [`Message::from_header`],
//! [`Message::to_header`]) read what they can: a Via with empty parameters
//! (`;;`, RFC 4475 §3.1.2.1), a display name with non-token characters and no
//! quotes (§3.1.2.15), an unterminated quote (§3.1.2.6) or spaces inside `<>`
//! (§3.1.2.14) still yield the header, so that a 400 can be addressed and
//! built. [`Message::validate_request`] is the strict gate: a request that
//! passes it has every header it checks in the RFC 3261 grammar, and the
//! accessors then return exactly what the strict parsers would.

use crate::message::{HeaderName, Message, Method, ParseError, parse_decimal, trim_lws};
use crate::uri::{Host, Uri, parse_hostport};

/// A cursor over a header value.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, i: 0 }
    }

    fn skip_lws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_lws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.i..]
    }

    fn at_end(&mut self) -> bool {
        self.skip_lws();
        self.i >= self.s.len()
    }

    /// A run of bytes for which `f` holds.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.i < self.s.len() && f(self.s[self.i]) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    fn token(&mut self) -> Option<&'a [u8]> {
        self.skip_lws();
        let t = self.take_while(crate::message::is_token_char);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string, returned with its quotes.
    fn quoted(&mut self) -> Option<&'a [u8]> {
        self.skip_lws();
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(&self.s[start..self.i]);
                }
                _ => self.i += 1,
            }
        }
        None
    }
}

/// Header parameters (`;name=value` pairs), kept raw and read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// Every parameter as (name, value); a missing value is `None`. Values keep
    /// their quotes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let mut c = Cursor::new(self.raw);
        std::iter::from_fn(move || {
            if !c.eat(b';') {
                return None;
            }
            // Empty parameters (`;;`) are skipped: only a lenient Via has them.
            while c.eat(b';') {}
            let name = c.token()?;
            if c.eat(b'=') {
                c.skip_lws();
                let value = if c.peek() == Some(b'"') {
                    c.quoted()?
                } else if c.peek() == Some(b'[') {
                    c.take_while(|b| b != b';' && b != b',' && !b.is_ascii_whitespace())
                } else {
                    c.take_while(|b| {
                        crate::message::is_token_char(b) || b == b':' || b == b'[' || b == b']'
                    })
                };
                Some((name, Some(value)))
            } else {
                Some((name, None))
            }
        })
    }

    /// The value of a parameter: `None` if absent, `Some(None)` if present
    /// without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The raw parameter text, starting at the first `;`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// Checks that `raw` is a well-formed parameter list (`*( SEMI param )`).
fn valid_params(raw: &[u8]) -> bool {
    let mut c = Cursor::new(raw);
    loop {
        if c.at_end() {
            return true;
        }
        if !c.eat(b';') || c.token().is_none() {
            return false;
        }
        if c.eat(b'=') {
            c.skip_lws();
            let ok = match c.peek() {
                Some(b'"') => c.quoted().is_some(),
                Some(b'[') => !c
                    .take_while(|b| b != b';' && !b.is_ascii_whitespace())
                    .is_empty(),
                _ => !c
                    .take_while(|b| {
                        crate::message::is_token_char(b) || b == b':' || b == b'[' || b == b']'
                    })
                    .is_empty(),
            };
            if !ok {
                return false;
            }
        }
    }
}

/// A Via header value (RFC 3261 §20.42).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The value as written.
    pub raw: &'a [u8],
    /// Transport, as written (`UDP`, `TCP`, `TLS`, ...).
    pub transport: &'a [u8],
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...).
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via value: `SIP / 2.0 / transport LWS sent-by *(SEMI param)`.
    pub fn parse(raw: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(raw, false)
    }

    /// [`Via::parse`], tolerating malformed parameters (such as the empty ones
    /// of RFC 4475 §3.1.2.1; [`Via::branch`] and the other accessors read what
    /// they can) and a protocol version other than 2.0 (§3.1.2.16), so that
    /// such a request can still be answered 400 or 505 at its sent-by. [`Message::top_via`] reads
    /// this way; [`Message::validate_request`] checks every Via with
    /// [`Via::parse`].
    pub fn parse_lenient(raw: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(raw, true)
    }

    fn parse_with(raw: &'a [u8], lenient: bool) -> Result<Self, ParseError> {
        let err = ParseError::Header("Via");
        let mut c = Cursor::new(raw);
        let name = c.token().ok_or(err.clone())?;
        if !name.eq_ignore_ascii_case(b"SIP") || !c.eat(b'/') {
            return Err(err);
        }
        let version = c.token().ok_or(err.clone())?;
        if (version != b"2.0" && !lenient) || !c.eat(b'/') {
            return Err(err);
        }
        let transport = c.token().ok_or(err.clone())?;
        let (host, port) = sent_by(&mut c).ok_or(err.clone())?;
        let params = c.rest();
        let params_readable = if lenient {
            // Only the sent-by matters for answering: the parameters must start
            // with `;`, and whatever cannot be read in them is ignored.
            let p = trim_lws(params);
            p.is_empty() || p[0] == b';'
        } else {
            valid_params(params)
        };
        if !params_readable {
            return Err(err);
        }
        Ok(Self {
            raw,
            transport,
            host,
            port,
            params: Params { raw: params },
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a [u8]> {
        self.params.get("branch").flatten()
    }

    /// Whether the branch carries the RFC 3261 magic cookie `z9hG4bK` followed
    /// by an identifier. A bare `z9hG4bK` claims RFC 3261 but identifies
    /// nothing (RFC 4475 §3.2.1): such a request is matched the RFC 2543 way.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > 7 && b.starts_with(b"z9hG4bK"))
    }

    /// The `rport` parameter (RFC 3581): `None` absent, `Some(None)` present
    /// without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| parse_decimal(p).and_then(|n| u16::try_from(n).ok())))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a [u8]> {
        self.params.get("received").flatten()
    }

    /// Whether the transport is reliable (anything but UDP).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case(b"UDP")
    }
}

/// A `name-addr` or `addr-spec` with parameters: From, To, Contact, Route
/// (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The value as written.
    pub raw: &'a [u8],
    /// Display name: a quoted string (quotes kept) or tokens.
    pub display: Option<&'a [u8]>,
    /// The URI.
    pub uri: Uri<'a>,
    /// Header parameters after the URI (`tag`, `expires`, `q`, ...).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses a name-addr or addr-spec. `what` names the header in errors.
    pub fn parse(raw: &'a [u8], what: &'static str) -> Result<Self, ParseError> {
        let err = ParseError::Header(what);
        let mut c = Cursor::new(raw);
        c.skip_lws();
        let mut display = None;
        let uri_raw;
        if c.peek() == Some(b'"') {
            display = Some(c.quoted().ok_or(err.clone())?);
            if !c.eat(b'<') {
                return Err(err);
            }
            uri_raw = take_angle(&mut c).ok_or(err.clone())?;
        } else if let Some(lt) = memchr::memchr(b'<', c.rest()) {
            // *(token LWS) "<" ; the display name must be tokens and LWS only.
            let before = trim_lws(&c.rest()[..lt]);
            if !before.iter().all(|&b| {
                crate::message::is_token_char(b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n')
            }) {
                return Err(err);
            }
            if !before.is_empty() {
                display = Some(before);
            }
            c.i += lt + 1;
            uri_raw = take_angle(&mut c).ok_or(err.clone())?;
        } else {
            // addr-spec: the URI ends at the first ';' (its params belong to the header)
            // or at LWS. A URI with a comma, question mark or semicolon must be
            // in name-addr form (§20.10), so `?` here is an error (RFC 4475 §3.1.2.13).
            let rest = c.rest();
            let end = rest
                .iter()
                .position(|&b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b','))
                .unwrap_or(rest.len());
            uri_raw = &rest[..end];
            if uri_raw.contains(&b'?') {
                return Err(err);
            }
            c.i += end;
        }
        let uri = Uri::parse(uri_raw).map_err(|_| err.clone())?;
        let params = c.rest();
        if !valid_params(params) {
            return Err(err);
        }
        Ok(Self {
            raw,
            display,
            uri,
            params: Params { raw: params },
        })
    }

    /// Reads a name-addr that [`NameAddr::parse`] refused, as far as it can:
    /// the URI is the first `<...>` (white space inside trimmed), whatever
    /// precedes it is the display name (unquoted non-token characters and an
    /// unterminated quote allowed, RFC 4475 §3.1.2.6 and §3.1.2.15), and what
    /// follows it is read as parameters without checking them. Without `<` it is
    /// the strict addr-spec reading. Only for answering a malformed request.
    pub fn parse_lenient(raw: &'a [u8], what: &'static str) -> Result<Self, ParseError> {
        if let Ok(n) = Self::parse(raw, what) {
            return Ok(n);
        }
        let err = ParseError::Header(what);
        let v = trim_lws(raw);
        let Some(lt) = memchr::memchr(b'<', v) else {
            return Err(err);
        };
        let gt = memchr::memchr(b'>', &v[lt..]).ok_or(err.clone())? + lt;
        let uri = Uri::parse(trim_lws(&v[lt + 1..gt])).map_err(|_| err.clone())?;
        let before = trim_lws(&v[..lt]);
        Ok(Self {
            raw,
            display: (!before.is_empty()).then_some(before),
            uri,
            params: Params { raw: &v[gt + 1..] },
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.params.get("tag").flatten()
    }
}

/// `callid = word [ "@" word ]` (RFC 3261 §25.1), read a little more
/// liberally than the grammar: each word is one or more printable ASCII
/// characters other than `@` (some stacks put `=` or `#` in Call-IDs). Bytes
/// over 0x7E, an empty word or a second `@` are errors (PROTOS c07-sip
/// Call-ID groups).
fn valid_call_id(v: &[u8]) -> bool {
    let word =
        |w: &[u8]| !w.is_empty() && w.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b'@');
    match memchr::memchr(b'@', v) {
        Some(at) => word(&v[..at]) && word(&v[at + 1..]),
        None => word(v),
    }
}

/// `sent-by = host [ COLON port ]`, LWS allowed around the colon.
fn sent_by<'a>(c: &mut Cursor<'a>) -> Option<(Host<'a>, Option<u16>)> {
    c.skip_lws();
    let rest = c.rest();
    let host_len = if rest.first() == Some(&b'[') {
        memchr::memchr(b']', rest)? + 1
    } else {
        rest.iter()
            .position(|&b| matches!(b, b';' | b':' | b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(rest.len())
    };
    let (host, _) = parse_hostport(&rest[..host_len]).ok()?;
    c.i += host_len;
    let port = if c.eat(b':') {
        c.skip_lws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        Some(parse_decimal(digits).and_then(|p| u16::try_from(p).ok())?)
    } else {
        None
    };
    Some((host, port))
}

/// Reads up to the closing `>`; returns the URI inside.
fn take_angle<'a>(c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    let rest = c.rest();
    let gt = memchr::memchr(b'>', rest)?;
    c.i += gt + 1;
    Some(&rest[..gt])
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (less than 2**31, §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(raw: &[u8]) -> Result<Self, ParseError> {
        let err = ParseError::Header("CSeq");
        let mut c = Cursor::new(raw);
        c.skip_lws();
        let digits = c.take_while(|b| b.is_ascii_digit());
        let seq = parse_decimal(digits)
            .filter(|&n| n < (1 << 31))
            .ok_or(err.clone())?;
        let method_tok = c.token().ok_or(err.clone())?;
        if !c.at_end() {
            return Err(err);
        }
        let method = Method::from_token(method_tok).ok_or(err)?;
        Ok(Self {
            seq: seq as u32,
            method,
        })
    }
}

impl Message {
    /// The top Via value, typed (read liberally with [`Via::parse_lenient`];
    /// strict after [`validate_request`](Self::validate_request) passed).
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let raw = self
            .values(HeaderName::Via)
            .next()
            .ok_or(ParseError::Header("Via"))?;
        Via::parse_lenient(raw)
    }

    /// Every Via value, typed, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> {
        self.values(HeaderName::Via).map(Via::parse)
    }

    /// From (read liberally, see the module doc; strict after
    /// [`validate_request`](Self::validate_request) passed).
    pub fn from_header(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single_name_addr(HeaderName::From, "From")
    }

    /// To (read liberally, see the module doc; strict after
    /// [`validate_request`](Self::validate_request) passed).
    pub fn to_header(&self) -> Result<NameAddr<'_>, ParseError> {
        self.single_name_addr(HeaderName::To, "To")
    }

    /// Call-ID (`word [@ word]`, kept raw, white space trimmed).
    pub fn call_id(&self) -> Result<&[u8], ParseError> {
        let v = trim_lws(
            self.header(HeaderName::CallId)
                .ok_or(ParseError::Header("Call-ID"))?,
        );
        if v.is_empty()
            || v.iter().any(|&b| b <= b' ' || b == 0x7f)
            || self.count(HeaderName::CallId) > 1
        {
            return Err(ParseError::Header("Call-ID"));
        }
        Ok(v)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        if self.count(HeaderName::CSeq) > 1 {
            return Err(ParseError::Header("CSeq"));
        }
        CSeq::parse(
            self.header(HeaderName::CSeq)
                .ok_or(ParseError::Header("CSeq"))?,
        )
    }

    /// Max-Forwards (`None` when absent).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.header(HeaderName::MaxForwards) {
            None => Ok(None),
            Some(v) => parse_decimal(trim_lws(v))
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or(ParseError::Header("Max-Forwards")),
        }
    }

    /// Expires, in seconds (`None` when absent).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.header(HeaderName::Expires) {
            None => Ok(None),
            Some(v) => parse_decimal(trim_lws(v))
                .map(|n| Some(n.min(u32::MAX as usize) as u32))
                .ok_or(ParseError::Header("Expires")),
        }
    }

    /// Every Contact value, typed (a `*` value is reported as an error of the
    /// element; REGISTER handles it separately).
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.values(HeaderName::Contact)
            .map(|v| NameAddr::parse(v, "Contact"))
    }

    /// Every Record-Route value, typed, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.values(HeaderName::RecordRoute)
            .map(|v| NameAddr::parse(v, "Record-Route"))
    }

    /// The media type of the body (`type/subtype`, lower-cased compare is the
    /// caller's job), without parameters.
    pub fn content_type(&self) -> Option<&[u8]> {
        let v = self.header(HeaderName::ContentType)?;
        let end = memchr::memchr(b';', v).unwrap_or(v.len());
        Some(trim_lws(&v[..end]))
    }

    /// Checks what every request we process must carry (RFC 3261 §8.1.1):
    /// To, From, Call-ID, CSeq (with the request's method) and a top Via, all
    /// well formed, plus every Via, Contact (but in an ACK), Max-Forwards and
    /// Expires that is present. Returns the error to put in the 400's Warning.
    pub fn validate_request(&self) -> Result<(), ParseError> {
        let method = self
            .method()
            .ok_or(ParseError::StartLine("not a request"))?;
        crate::uri::Uri::parse(self.request_uri())
            .map_err(|_| ParseError::StartLine("Request-URI"))?;
        if self.count(HeaderName::From) != 1 {
            return Err(ParseError::Header("From"));
        }
        if self.count(HeaderName::To) != 1 {
            return Err(ParseError::Header("To"));
        }
        for (name, what) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
            let v = self.header(name).ok_or(ParseError::Header(what))?;
            NameAddr::parse(trim_lws(v), what)?;
        }
        if !valid_call_id(self.call_id()?) {
            return Err(ParseError::Header("Call-ID"));
        }
        let cseq = self.cseq()?;
        if &cseq.method != method {
            return Err(ParseError::Inconsistent(
                "CSeq method does not match the request method",
            ));
        }
        // A Record-Route we cannot parse would become the Request-URI or a Route
        // of our BYE (found by fuzzing): refuse the request instead.
        for rr in self.record_routes() {
            rr?;
        }
        for via in self.vias() {
            via?;
        }
        self.top_via()?;
        if *method != Method::Ack {
            for v in self.values(HeaderName::Contact) {
                if v == b"*" && *method == Method::Register {
                    continue;
                }
                NameAddr::parse(v, "Contact")?;
            }
        }
        self.max_forwards()?;
        self.expires()?;
        if self.body().is_empty() {
            return Ok(());
        }
        if self.header(HeaderName::ContentType).is_none() {
            return Err(ParseError::Header("Content-Type"));
        }
        Ok(())
    }

    fn single_name_addr(
        &self,
        name: HeaderName,
        what: &'static str,
    ) -> Result<NameAddr<'_>, ParseError> {
        let v = self.header(name).ok_or(ParseError::Header(what))?;
        NameAddr::parse_lenient(trim_lws(v), what)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse(b"SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some(&b"390skdjuw"[..]));
        let v = Via::parse(
            b"SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .unwrap();
        assert_eq!(v.host, Host::Name(b"spindle.example.com"));
        assert_eq!(v.branch(), Some(&b"z9hG4bK9ikj8"[..]));
    }

    #[test]
    fn via_ipv6_rport_received() {
        let v = Via::parse(
            b"SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;received=[2001:db8::9:255];rport",
        )
        .unwrap();
        assert_eq!(v.host, Host::V6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.received(), Some(&b"[2001:db8::9:255]"[..]));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse(b"SIP/2.0/UDP host;branch=\"unterminated").is_err());
        assert!(Via::parse(b"SIP/3.0/UDP host").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            b"\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
            "From",
        )
        .unwrap();
        assert_eq!(n.tag(), Some(&b"98asjd8"[..]));
        assert_eq!(n.uri.user, Some(&b"jdrosen"[..]));
        let n = NameAddr::parse(
            b"sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "To",
        )
        .unwrap();
        assert_eq!(n.tag(), Some(&b"1918181833n"[..]));
        let n = NameAddr::parse(b"Bob Smith <tel:+51-1-555-0100>;tag=x", "From").unwrap();
        assert_eq!(n.display, Some(&b"Bob Smith"[..]));
        assert!(NameAddr::parse(b"<sip:a@b", "To").is_err());
        assert!(NameAddr::parse(b"\"unbalanced <sip:a@b>", "To").is_err());
    }

    #[test]
    fn lenient_readings_for_answering() {
        let raw = b"SIP/2.0/UDP 192.0.2.15;;branch=z9hG4bK1;";
        assert!(Via::parse(raw).is_err());
        let v = Via::parse_lenient(raw).unwrap();
        assert_eq!(v.branch(), Some(&b"z9hG4bK1"[..]));
        assert!(Via::parse_lenient(b"SIP/7.0/UDP h;branch=z9hG4bK1").is_ok());
        let v = Via::parse_lenient(b"SIP/2.0/UDP h:5070;=token").unwrap();
        assert_eq!((v.port, v.branch()), (Some(5070), None));
        assert!(Via::parse(b"SIP/2.0/UDP h:5070;=token").is_err());
        assert!(Via::parse_lenient(b"SIP/2.0/UDP h garbage").is_err());

        let n = NameAddr::parse_lenient(b"\"Mr. J. User <sip:j.user@example.com>", "To").unwrap();
        assert_eq!(n.uri.user, Some(&b"j.user"[..]));
        let n = NameAddr::parse_lenient(b"Bell, Alexander <sip:a@b>;tag=43", "From").unwrap();
        assert_eq!(
            (n.display, n.tag()),
            (Some(&b"Bell, Alexander"[..]), Some(&b"43"[..]))
        );
        assert!(NameAddr::parse(b"Bell, Alexander <sip:a@b>;tag=43", "From").is_err());
        assert!(NameAddr::parse_lenient(b"< sip:a@b >", "To").is_ok());
        assert!(NameAddr::parse_lenient(b"garbage", "To").is_err());
    }

    #[test]
    fn addr_spec_with_headers_needs_angle_brackets() {
        assert!(NameAddr::parse(b"sip:user@example.com?Route=%3Csip:x%3E", "Contact").is_err());
        assert!(NameAddr::parse(b"<sip:user@example.com?Route=%3Csip:x%3E>", "Contact").is_ok());
    }

    #[test]
    fn call_id_words() {
        assert!(valid_call_id(b"a84b4c76e66710@pc33.atlanta.example.com"));
        assert!(valid_call_id(
            b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        ));
        assert!(valid_call_id(b"base64=="));
        assert!(!valid_call_id(b"@host"));
        assert!(!valid_call_id(b"a@@host"));
        assert!(!valid_call_id(b"a@"));
        assert!(!valid_call_id("caf\u{e9}@host".as_bytes()));
    }

    #[test]
    fn bare_magic_cookie_is_not_an_rfc3261_branch() {
        assert!(
            !Via::parse(b"SIP/2.0/UDP h;branch=z9hG4bK")
                .unwrap()
                .is_rfc3261_branch()
        );
        assert!(
            Via::parse(b"SIP/2.0/UDP h;branch=z9hG4bKx")
                .unwrap()
                .is_rfc3261_branch()
        );
    }

    #[test]
    fn cseq_forms() {
        let c = CSeq::parse(b"0009\r\n  INVITE").unwrap();
        assert_eq!(c.seq, 9);
        assert_eq!(c.method, Method::Invite);
        assert!(CSeq::parse(b"36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse(b"1 INVITE extra").is_err());
        assert!(CSeq::parse(b"INVITE").is_err());
    }

    #[test]
    fn message_accessors() {
        let raw = b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bK1;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: sip:x@y\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse_datagram(Bytes::from_static(raw)).unwrap();
        m.validate_request().unwrap();
        assert_eq!(m.top_via().unwrap().port, Some(5060));
        assert_eq!(m.from_header().unwrap().tag(), Some(&b"1"[..]));
        assert_eq!(m.to_header().unwrap().tag(), None);
        assert_eq!(m.call_id().unwrap(), b"c1");
        assert_eq!(m.max_forwards().unwrap(), Some(70));
    }
}
