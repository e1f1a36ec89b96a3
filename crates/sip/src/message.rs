//! SIP messages: zero-copy, lazy parsing (RFC 3261 §7) and framing (§18.3).
//!
//! A [`Message`] keeps the bytes it was parsed from. Parsing finds the start
//! line, the boundaries of every header and the body once; headers are typed
//! only when asked for (see [`crate::header`]).
//!
//! # Decisions
//! - Line ends: CRLF, and a bare LF is accepted wherever CRLF is (RFC 5118's
//!   archived messages use bare LF; being liberal here costs nothing). A bare
//!   CR is not a line end.
//! - Folding (RFC 3261 §7.3.1): a line starting with SP or HTAB continues the
//!   previous header. The value keeps its raw bytes; typed parsers treat CR and
//!   LF as white space.
//! - Leading CRLFs before the start line are skipped (§7.5).
//! - A datagram whose header section runs to the end of the buffer without the
//!   empty line (the last header line ending in CRLF or LF) is taken as having
//!   an empty body: the datagram bounds the message, so nothing is ambiguous
//!   (RFC 4475's `baddn.dat` and RFC 5118's §4.10 pair are archived that way).
//! - The start line is strict: single SP separators, `SIP/2.0` only (a request
//!   with another well-formed version, `SIP/` 1*DIGIT `.` 1*DIGIT, is reported
//!   as [`ParseError::Version`] so the caller can answer 505; any other version
//!   text is a [`ParseError::StartLine`]).
//! - [`Message::parse_head_lenient`], used only to answer a message that failed
//!   to parse, also reads a request line with extra white space (RFC 4475
//!   §3.1.2.8-10) or a bad version, and skips header lines that are not
//!   `token ":" value` (with their continuations), so that the 400 or 505 can
//!   be sent.
//! - Content-Length is authoritative. Datagram: a value larger than the bytes
//!   left is an error, extra bytes after the body are discarded (§18.3), a
//!   missing header means the body runs to the end of the datagram. Stream: see
//!   [`StreamFramer`]; the header is required.
//! - Header names are case-insensitive; compact forms (§7.3.3 and the IANA
//!   registry) map to the same [`HeaderName`].

use std::fmt;

use bytes::{Bytes, BytesMut};

/// A byte range into the message buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            end: end as u32,
        }
    }

    fn get(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// Why a message could not be parsed. Each variant becomes the text of a
/// `Warning: 399` header in the 400 response where one can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but white space.
    #[error("empty message")]
    Empty,
    /// The start line is not `Method SP URI SP SIP/2.0` nor `SIP/2.0 SP code SP reason`.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// A request with a SIP version other than 2.0 (answer 505).
    #[error("unsupported SIP version")]
    Version,
    /// A header line without a colon or with a bad name.
    #[error("malformed header line")]
    HeaderLine,
    /// No empty line ends the header section.
    #[error("header section not terminated")]
    Unterminated,
    /// Content-Length is not a non-negative decimal number.
    #[error("malformed Content-Length")]
    ContentLength,
    /// Content-Length says more than the datagram holds.
    #[error("Content-Length larger than the message")]
    ContentLengthTooLarge,
    /// Content-Length is missing on a stream transport (RFC 3261 §18.3).
    #[error("Content-Length required on a stream transport")]
    ContentLengthMissing,
    /// The message exceeds the configured size limit.
    #[error("message too large")]
    TooLarge,
    /// A mandatory header is missing or unusable (named).
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// Two headers contradict each other (e.g. CSeq method and request method).
    #[error("{0}")]
    Inconsistent(&'static str),
}

/// A SIP method (RFC 3261 §7.1 and extensions).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// RFC 3261.
    Invite,
    /// RFC 3261.
    Ack,
    /// RFC 3261.
    Bye,
    /// RFC 3261.
    Cancel,
    /// RFC 3261.
    Options,
    /// RFC 3261.
    Register,
    /// RFC 6086.
    Info,
    /// RFC 3262.
    Prack,
    /// RFC 3311.
    Update,
    /// RFC 6665.
    Subscribe,
    /// RFC 6665.
    Notify,
    /// RFC 3515.
    Refer,
    /// RFC 3428.
    Message,
    /// RFC 3903.
    Publish,
    /// Any other token; methods are case-sensitive (§7.1).
    Extension(Bytes),
}

impl Method {
    /// Parses a method token (case-sensitive, RFC 3261 §7.1).
    pub fn from_token(token: &[u8]) -> Option<Self> {
        if token.is_empty() || !token.iter().all(|&b| is_token_char(b)) {
            return None;
        }
        Some(match token {
            b"INVITE" => Self::Invite,
            b"ACK" => Self::Ack,
            b"BYE" => Self::Bye,
            b"CANCEL" => Self::Cancel,
            b"OPTIONS" => Self::Options,
            b"REGISTER" => Self::Register,
            b"INFO" => Self::Info,
            b"PRACK" => Self::Prack,
            b"UPDATE" => Self::Update,
            b"SUBSCRIBE" => Self::Subscribe,
            b"NOTIFY" => Self::Notify,
            b"REFER" => Self::Refer,
            b"MESSAGE" => Self::Message,
            b"PUBLISH" => Self::Publish,
            other => Self::Extension(Bytes::copy_from_slice(other)),
        })
    }

    /// The method's token.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Invite => b"INVITE",
            Self::Ack => b"ACK",
            Self::Bye => b"BYE",
            Self::Cancel => b"CANCEL",
            Self::Options => b"OPTIONS",
            Self::Register => b"REGISTER",
            Self::Info => b"INFO",
            Self::Prack => b"PRACK",
            Self::Update => b"UPDATE",
            Self::Subscribe => b"SUBSCRIBE",
            Self::Notify => b"NOTIFY",
            Self::Refer => b"REFER",
            Self::Message => b"MESSAGE",
            Self::Publish => b"PUBLISH",
            Self::Extension(b) => b,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Header names we recognise; everything else is [`HeaderName::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    /// `Via`, compact `v`.
    Via,
    /// `From`, compact `f`.
    From,
    /// `To`, compact `t`.
    To,
    /// `Call-ID`, compact `i`.
    CallId,
    /// `CSeq`.
    CSeq,
    /// `Contact`, compact `m`.
    Contact,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Content-Length`, compact `l`.
    ContentLength,
    /// `Content-Type`, compact `c`.
    ContentType,
    /// `Content-Encoding`, compact `e`.
    ContentEncoding,
    /// `Expires`.
    Expires,
    /// `Route`.
    Route,
    /// `Record-Route`.
    RecordRoute,
    /// `Authorization`.
    Authorization,
    /// `Proxy-Authorization`.
    ProxyAuthorization,
    /// `WWW-Authenticate`.
    WwwAuthenticate,
    /// `Proxy-Authenticate`.
    ProxyAuthenticate,
    /// `Allow`.
    Allow,
    /// `Supported`, compact `k`.
    Supported,
    /// `Require`.
    Require,
    /// `Proxy-Require`.
    ProxyRequire,
    /// `Accept`.
    Accept,
    /// `Subject`, compact `s`.
    Subject,
    /// `Event`, compact `o`.
    Event,
    /// `User-Agent`.
    UserAgent,
    /// `Server`.
    Server,
    /// `Retry-After`.
    RetryAfter,
    /// `Warning`.
    Warning,
    /// `Unsupported`.
    Unsupported,
    /// `Reason`.
    Reason,
    /// `Path` (RFC 3327).
    Path,
    /// Any other header.
    Other,
}

impl HeaderName {
    /// Classifies a header name, case-insensitively, compact forms included.
    pub fn classify(name: &[u8]) -> Self {
        macro_rules! is {
            ($lit:literal) => {
                name.eq_ignore_ascii_case($lit)
            };
        }
        match name.len() {
            1 => match name[0].to_ascii_lowercase() {
                b'v' => Self::Via,
                b'f' => Self::From,
                b't' => Self::To,
                b'i' => Self::CallId,
                b'm' => Self::Contact,
                b'l' => Self::ContentLength,
                b'c' => Self::ContentType,
                b'e' => Self::ContentEncoding,
                b'k' => Self::Supported,
                b's' => Self::Subject,
                b'o' => Self::Event,
                _ => Self::Other,
            },
            2 if is!(b"to") => Self::To,
            3 if is!(b"via") => Self::Via,
            4 if is!(b"from") => Self::From,
            4 if is!(b"cseq") => Self::CSeq,
            4 if is!(b"path") => Self::Path,
            5 if is!(b"route") => Self::Route,
            5 if is!(b"allow") => Self::Allow,
            5 if is!(b"event") => Self::Event,
            6 if is!(b"accept") => Self::Accept,
            6 if is!(b"server") => Self::Server,
            6 if is!(b"reason") => Self::Reason,
            7 if is!(b"call-id") => Self::CallId,
            7 if is!(b"contact") => Self::Contact,
            7 if is!(b"expires") => Self::Expires,
            7 if is!(b"require") => Self::Require,
            7 if is!(b"subject") => Self::Subject,
            7 if is!(b"warning") => Self::Warning,
            9 if is!(b"supported") => Self::Supported,
            10 if is!(b"user-agent") => Self::UserAgent,
            11 if is!(b"retry-after") => Self::RetryAfter,
            11 if is!(b"unsupported") => Self::Unsupported,
            12 if is!(b"max-forwards") => Self::MaxForwards,
            12 if is!(b"record-route") => Self::RecordRoute,
            12 if is!(b"content-type") => Self::ContentType,
            13 if is!(b"authorization") => Self::Authorization,
            13 if is!(b"proxy-require") => Self::ProxyRequire,
            14 if is!(b"content-length") => Self::ContentLength,
            16 if is!(b"www-authenticate") => Self::WwwAuthenticate,
            16 if is!(b"content-encoding") => Self::ContentEncoding,
            18 if is!(b"proxy-authenticate") => Self::ProxyAuthenticate,
            19 if is!(b"proxy-authorization") => Self::ProxyAuthorization,
            _ => Self::Other,
        }
    }

    /// Headers whose value is a comma-separated list (RFC 3261 §7.3.1), so that
    /// [`Message::values`] splits them.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::Route
                | Self::RecordRoute
                | Self::Path
                | Self::Allow
                | Self::Supported
                | Self::Require
                | Self::ProxyRequire
                | Self::Accept
                | Self::Unsupported
                | Self::ContentEncoding
        )
    }
}

/// One header line (possibly folded over several physical lines).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHeader {
    pub(crate) name: HeaderName,
    pub(crate) name_span: Span,
    /// The whole line from the name to the end of the value, for byte-exact copies.
    pub(crate) line_span: Span,
    pub(crate) value_span: Span,
}

/// Start line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version`.
    Request {
        /// The method.
        method: Method,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code, 100..=699.
        code: u16,
    },
}

/// A parsed SIP message that owns its bytes.
#[derive(Clone)]
pub struct Message {
    buf: Bytes,
    start: StartLine,
    /// Request-URI (requests) or reason phrase (responses).
    start_arg: Span,
    headers: Vec<RawHeader>,
    body: Span,
    content_length: Option<usize>,
    /// Content-Length was malformed or given twice with different values.
    content_length_error: bool,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never dump the whole message: it carries caller numbers.
        f.debug_struct("Message")
            .field("start", &self.start)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl Message {
    /// Parses one message from a datagram (RFC 3261 §18.3: Content-Length,
    /// when present, is authoritative; bytes beyond it are discarded).
    pub fn parse_datagram(buf: Bytes) -> Result<Self, ParseError> {
        let (mut msg, body_start) = Self::parse_head(buf, false)?;
        if msg.content_length_error {
            return Err(ParseError::ContentLength);
        }
        let available = msg.buf.len() - body_start;
        let len = match msg.content_length {
            Some(n) if n > available => return Err(ParseError::ContentLengthTooLarge),
            Some(n) => n,
            None => available,
        };
        msg.body = Span::new(body_start, body_start + len);
        Ok(msg)
    }

    /// Parses the start line and headers and takes the rest as the body,
    /// whatever Content-Length says: used only to build a 400 (or 505) for a
    /// message that [`parse_datagram`](Self::parse_datagram) refused. A request
    /// line that is not strictly `Method SP Request-URI SP SIP/2.0` is read
    /// loosely here: the method is the first word, the version the last and the
    /// Request-URI what lies between (white space included); a header line
    /// without a colon or with a name that is not a token is skipped, so that
    /// the headers a response copies can be reached.
    pub fn parse_head_lenient(buf: Bytes) -> Result<Self, ParseError> {
        let (mut msg, body_start) = Self::parse_head(buf, true)?;
        msg.body = Span::new(body_start, msg.buf.len());
        Ok(msg)
    }

    /// Parses a complete message whose framing is already known (from
    /// [`StreamFramer`]): the body is everything after the header section.
    fn parse_framed(buf: Bytes) -> Result<Self, ParseError> {
        let (mut msg, body_start) = Self::parse_head(buf, false)?;
        if msg.content_length_error {
            return Err(ParseError::ContentLength);
        }
        msg.body = Span::new(body_start, msg.buf.len());
        Ok(msg)
    }

    /// Parses the start line and the header section; returns the message (body
    /// not yet set) and where the body starts. `loose` reads a malformed
    /// request line and header lines as
    /// [`parse_head_lenient`](Self::parse_head_lenient) says.
    fn parse_head(buf: Bytes, loose: bool) -> Result<(Self, usize), ParseError> {
        let b: &[u8] = &buf;
        let mut pos = 0;
        while pos < b.len() && (b[pos] == b'\r' || b[pos] == b'\n') {
            pos += 1;
        }
        if pos == b.len() {
            return Err(ParseError::Empty);
        }
        let (line_end, next) = find_line_end(b, pos).ok_or(ParseError::Unterminated)?;
        let (start, start_arg) = match parse_start_line(b, pos, line_end) {
            Ok(s) => s,
            Err(e) if loose => parse_request_line_loose(b, pos, line_end).ok_or(e)?,
            Err(e) => return Err(e),
        };
        pos = next;

        let mut headers: Vec<RawHeader> = Vec::with_capacity(16);
        let mut content_length = None;
        // Loose mode: the last header line was malformed and skipped, and so
        // are its continuation lines.
        let mut skipping = false;
        loop {
            if pos == b.len() {
                // The buffer ends right after a complete header line: the
                // datagram (or frame) bounds the message; the body is empty.
                break;
            }
            let (line_end, next) = find_line_end(b, pos).ok_or(ParseError::Unterminated)?;
            if line_end == pos {
                // Empty line: end of headers.
                pos = next;
                break;
            }
            if b[pos] == b' ' || b[pos] == b'\t' {
                // Folded continuation of the previous header (§7.3.1).
                let Some(last) = headers.last_mut().filter(|_| !skipping) else {
                    if loose {
                        pos = next;
                        continue;
                    }
                    return Err(ParseError::HeaderLine);
                };
                let value_end = trim_end(b, last.value_span.start as usize, line_end);
                if value_end > last.value_span.start as usize {
                    if last.value_span.end == last.value_span.start {
                        // Empty value so far: the value starts on this line.
                        let vstart = skip_ws(b, pos, line_end);
                        last.value_span = Span::new(vstart, value_end);
                    } else {
                        last.value_span.end = value_end as u32;
                    }
                }
                last.line_span.end = line_end as u32;
                pos = next;
                continue;
            }
            // `name HCOLON value`, the name a token.
            let split = memchr::memchr(b':', &b[pos..line_end])
                .map(|c| (c + pos, trim_end(b, pos, c + pos)))
                .filter(|&(_, end)| end > pos && b[pos..end].iter().all(|&c| is_token_char(c)));
            let Some((colon, name_end)) = split else {
                if loose {
                    skipping = true;
                    pos = next;
                    continue;
                }
                return Err(ParseError::HeaderLine);
            };
            skipping = false;
            let name = &b[pos..name_end];
            let hname = HeaderName::classify(name);
            let vstart = skip_ws(b, colon + 1, line_end);
            let vend = trim_end(b, vstart, line_end);
            headers.push(RawHeader {
                name: hname,
                name_span: Span::new(pos, name_end),
                line_span: Span::new(pos, line_end),
                value_span: Span::new(vstart, vend),
            });
            pos = next;
        }
        let mut content_length_error = false;
        for h in &headers {
            if h.name == HeaderName::ContentLength {
                let v = trim_lws(h.value_span.get(b));
                match parse_decimal(v) {
                    Some(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                    _ => content_length_error = true,
                }
            }
        }
        let msg = Self {
            buf,
            start,
            start_arg,
            headers,
            body: Span::default(),
            content_length,
            content_length_error,
        };
        Ok((msg, pos))
    }

    /// The bytes the message was parsed from (for datagrams: up to the body's end).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.body.end as usize]
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// The method of a request, or `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI, raw (requests only; empty for responses).
    pub fn request_uri(&self) -> &[u8] {
        if self.is_request() {
            self.start_arg.get(&self.buf)
        } else {
            &[]
        }
    }

    /// The reason phrase of a response, byte for byte (empty for requests).
    pub fn reason(&self) -> &[u8] {
        if self.is_request() {
            &[]
        } else {
            self.start_arg.get(&self.buf)
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.body.get(&self.buf)
    }

    /// The body as a cheap `Bytes` slice.
    pub fn body_bytes(&self) -> Bytes {
        self.buf
            .slice(self.body.start as usize..self.body.end as usize)
    }

    /// The declared Content-Length, if the header is present.
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    /// The raw value of the first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value_span.get(&self.buf))
    }

    /// The raw value of the first header with this name, for names we do not
    /// classify (case-insensitive).
    pub fn header_by_name(&self, name: &str) -> Option<&[u8]> {
        let class = HeaderName::classify(name.as_bytes());
        self.headers
            .iter()
            .find(|h| {
                h.name == class
                    && (class != HeaderName::Other
                        || h.name_span
                            .get(&self.buf)
                            .eq_ignore_ascii_case(name.as_bytes()))
            })
            .map(|h| h.value_span.get(&self.buf))
    }

    /// How many header lines have this name.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// Every header line as (name as written, raw value).
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|h| (h.name_span.get(&self.buf), h.value_span.get(&self.buf)))
    }

    /// The raw lines (name, colon, value, folding included) of every header with
    /// this name, for byte-exact copies into a response.
    pub fn raw_lines(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| h.line_span.get(&self.buf))
    }

    /// Every value of a list header (one per comma-separated element across all
    /// lines with that name, commas inside quotes or `<>` respected).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .flat_map(|h| split_commas(h.value_span.get(&self.buf)))
    }
}

/// Splits a header value on commas that are outside quoted strings and `<...>`.
pub fn split_commas(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        loop {
            let s = rest?;
            let mut in_quote = false;
            let mut in_angle = false;
            let mut i = 0;
            let mut cut = None;
            while i < s.len() {
                match s[i] {
                    b'\\' if in_quote => i += 1,
                    b'"' => in_quote = !in_quote,
                    b'<' if !in_quote => in_angle = true,
                    b'>' if !in_quote => in_angle = false,
                    b',' if !in_quote && !in_angle => {
                        cut = Some(i);
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            let (item, next) = match cut {
                Some(c) => (&s[..c], Some(&s[c + 1..])),
                None => (s, None),
            };
            rest = next;
            let item = trim_lws(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

/// Parses the start line in `b[start..end]`.
fn parse_start_line(b: &[u8], start: usize, end: usize) -> Result<(StartLine, Span), ParseError> {
    let line = &b[start..end];
    if line.starts_with(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("status line"))?;
        if &line[..sp1] != b"SIP/2.0" {
            return Err(ParseError::StartLine("version in status line"));
        }
        let rest = &line[sp1 + 1..];
        if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
            return Err(ParseError::StartLine("status code"));
        }
        if rest.len() > 3 && rest[3] != b' ' {
            return Err(ParseError::StartLine("status code"));
        }
        let code = u16::from(rest[0] - b'0') * 100
            + u16::from(rest[1] - b'0') * 10
            + u16::from(rest[2] - b'0');
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine("status code out of range"));
        }
        let reason_start = (start + sp1 + 1 + 4).min(end);
        return Ok((StartLine::Response { code }, Span::new(reason_start, end)));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine("request line"))?;
    let method_tok = &line[..sp1];
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest).ok_or(ParseError::StartLine("request line"))?;
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if uri.is_empty() || version.contains(&b' ') || version.contains(&b'\t') {
        return Err(ParseError::StartLine("white space in Request-URI"));
    }
    if !uri.iter().all(|&c| c > b' ' && c != 0x7f) {
        return Err(ParseError::StartLine("Request-URI"));
    }
    let method = Method::from_token(method_tok).ok_or(ParseError::StartLine("method"))?;
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        if is_sip_version(version) {
            return Err(ParseError::Version);
        }
        return Err(ParseError::StartLine("version"));
    }
    let ustart = start + sp1 + 1;
    Ok((
        StartLine::Request { method },
        Span::new(ustart, ustart + uri.len()),
    ))
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` (RFC 3261 §25.1; "SIP" is
/// case-insensitive, §7.1).
fn is_sip_version(v: &[u8]) -> bool {
    let Some(rest) = v.get(4..).filter(|_| v[..4].eq_ignore_ascii_case(b"SIP/")) else {
        return false;
    };
    let Some(dot) = memchr::memchr(b'.', rest) else {
        return false;
    };
    let (major, minor) = (&rest[..dot], &rest[dot + 1..]);
    !major.is_empty() && !minor.is_empty() && major.iter().chain(minor).all(u8::is_ascii_digit)
}

/// A request line read loosely, for answering it: `Method 1*LWS anything
/// 1*LWS version`, white space trimmed at both ends. The method must still be
/// a token and the URI must not be empty; the version is not checked (the
/// strict parse already said what is wrong with it).
fn parse_request_line_loose(b: &[u8], start: usize, end: usize) -> Option<(StartLine, Span)> {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let line = &b[start..end];
    let first = line.iter().position(is_ws)?;
    let method = Method::from_token(&line[..first])?;
    let last = line.iter().rposition(|c| !is_ws(c))?;
    let version_start = line[..=last].iter().rposition(is_ws)? + 1;
    let uri_start = first + line[first..].iter().position(|c| !is_ws(c))?;
    let uri_end = version_start - line[..version_start].iter().rev().position(|c| !is_ws(c))?;
    if uri_end <= uri_start || version_start <= first {
        return None;
    }
    Some((
        StartLine::Request { method },
        Span::new(start + uri_start, start + uri_end),
    ))
}

/// Finds the end of the line starting at `from`: returns (index of the line's
/// end, excluding CR/LF; index of the next line).
fn find_line_end(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let lf = memchr::memchr(b'\n', &b[from..])? + from;
    let end = if lf > from && b[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some((end, lf + 1))
}

fn skip_ws(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn trim_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    end
}

/// Trims linear white space (SP, HTAB, CR, LF) from both ends.
pub fn trim_lws(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
            v = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = v {
        if matches!(last, b' ' | b'\t' | b'\r' | b'\n') {
            v = rest;
        } else {
            break;
        }
    }
    v
}

/// Parses a non-negative decimal that fits in `usize` (no sign, no spaces).
pub fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
    )
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

/// What a stream transport yielded.
#[derive(Debug)]
pub enum Framed {
    /// A complete message.
    Message(Message),
    /// A CRLF CRLF keep-alive ping (RFC 5626 §3.5.1); answer with CRLF.
    Ping,
}

/// Splits a TCP byte stream into messages (RFC 3261 §18.3). Feed it with
/// [`StreamFramer::extend`], then call [`StreamFramer::next`] until `None`.
/// An `Err` means the stream cannot be resynchronised: close the connection.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    max_message: usize,
    /// How far the search for the end of the header section got, so that
    /// bytes arriving a few at a time are not rescanned (quadratic otherwise).
    scanned: usize,
}

impl StreamFramer {
    /// A framer that rejects messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(4096),
            max_message,
            scanned: 0,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, a keep-alive, `Ok(None)` when more bytes are
    /// needed, or an error that ends the connection.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Framed>, ParseError> {
        // Keep-alives and stray CRLFs between messages.
        let mut lead = 0;
        while lead < self.buf.len() && (self.buf[lead] == b'\r' || self.buf[lead] == b'\n') {
            lead += 1;
        }
        if lead > 0 {
            let ping = self.buf[..lead].windows(4).any(|w| w == b"\r\n\r\n");
            if lead == self.buf.len() && !ping {
                // Only line ends so far: keep the last three bytes (a ping may be
                // completed by the next read) and drop the rest, so a peer sending
                // endless bare LFs costs neither memory nor rescans.
                if lead > 3 {
                    let _ = self.buf.split_to(lead - 3);
                }
                self.scanned = 0;
                return Ok(None);
            }
            let _ = self.buf.split_to(lead);
            self.scanned = 0;
            if ping {
                return Ok(Some(Framed::Ping));
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let from = self.scanned.saturating_sub(3);
        let Some(head_end) = find_head_end(&self.buf, from) else {
            if self.buf.len() > self.max_message {
                return Err(ParseError::TooLarge);
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        self.scanned = head_end;
        let cl = content_length_in_head(&self.buf[..head_end])?;
        let total = head_end + cl;
        if total > self.max_message {
            return Err(ParseError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame = self.buf.split_to(total).freeze();
        self.scanned = 0;
        Message::parse_framed(frame).map(|m| Some(Framed::Message(m)))
    }
}

/// The index just past the empty line that ends a header section.
fn find_head_end(b: &[u8], mut from: usize) -> Option<usize> {
    while let Some(i) = memchr::memchr(b'\n', &b[from..]) {
        let lf = from + i;
        let rest = &b[lf + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(lf + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(lf + 3);
        }
        from = lf + 1;
    }
    None
}

/// Finds Content-Length (or `l`) in a header section, as the framer must
/// before the message can be parsed. Required on streams.
fn content_length_in_head(head: &[u8]) -> Result<usize, ParseError> {
    let mut found = None;
    let mut lines = head.split(|&c| c == b'\n').skip(1);
    let mut current: Option<Vec<u8>> = None;
    let mut flush = |cur: Option<Vec<u8>>| -> Result<(), ParseError> {
        if let Some(v) = cur {
            let n = parse_decimal(trim_lws(&v)).ok_or(ParseError::ContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(ParseError::ContentLength);
            }
            found = Some(n);
        }
        Ok(())
    };
    for line in lines.by_ref() {
        if line.first().is_some_and(|&c| c == b' ' || c == b'\t') {
            if let Some(cur) = current.as_mut() {
                cur.extend_from_slice(line);
            }
            continue;
        }
        flush(current.take())?;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if HeaderName::classify(trim_lws(&line[..colon])) == HeaderName::ContentLength {
            current = Some(line[colon + 1..].to_vec());
        }
    }
    flush(current.take())?;
    found.ok_or(ParseError::ContentLengthMissing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_request() {
        let m = Message::parse_datagram(Bytes::from_static(INVITE)).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri(), b"sip:bob@biloxi.example.com");
        assert_eq!(
            m.header(HeaderName::CallId).unwrap(),
            b"a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(m.count(HeaderName::Via), 1);
    }

    #[test]
    fn extra_bytes_after_content_length_are_discarded() {
        let mut v = INVITE.to_vec();
        v.extend_from_slice(b"garbage");
        let m = Message::parse_datagram(Bytes::from(v)).unwrap();
        assert_eq!(m.body(), b"v=0\n");
    }

    #[test]
    fn content_length_too_large_or_negative() {
        let s = String::from_utf8(INVITE.to_vec()).unwrap();
        let big = s.replace("Content-Length: 4", "Content-Length: 9999");
        assert_eq!(
            Message::parse_datagram(Bytes::from(big)).unwrap_err(),
            ParseError::ContentLengthTooLarge
        );
        let neg = s.replace("Content-Length: 4", "Content-Length: -4");
        assert_eq!(
            Message::parse_datagram(Bytes::from(neg)).unwrap_err(),
            ParseError::ContentLength
        );
    }

    #[test]
    fn missing_content_length_on_datagram_takes_the_rest() {
        let s = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("Content-Length: 4\r\n", "");
        let m = Message::parse_datagram(Bytes::from(s)).unwrap();
        assert_eq!(m.body(), b"v=0\n");
    }

    #[test]
    fn folding_and_compact_names() {
        let raw = b"OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1,\r\n SIP/2.0/TCP b;branch=z9hG4bK2\r\ni: abc\r\nl: 0\r\n\r\n";
        let m = Message::parse_datagram(Bytes::from_static(raw)).unwrap();
        let vias: Vec<_> = m.values(HeaderName::Via).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[1], b"SIP/2.0/TCP b;branch=z9hG4bK2");
        assert_eq!(m.header(HeaderName::CallId).unwrap(), b"abc");
    }

    #[test]
    fn bare_lf_is_accepted() {
        let raw = b"OPTIONS sip:x@y SIP/2.0\nCall-ID: a\nContent-Length: 0\n\n";
        let m = Message::parse_datagram(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.header(HeaderName::CallId).unwrap(), b"a");
    }

    #[test]
    fn version_505_and_bad_start_lines() {
        let raw = b"OPTIONS sip:x@y SIP/7.0\r\n\r\n";
        assert_eq!(
            Message::parse_datagram(Bytes::from_static(raw)).unwrap_err(),
            ParseError::Version
        );
        let raw = b"OPTIONS  sip:x@y SIP/2.0\r\n\r\n";
        assert!(Message::parse_datagram(Bytes::from_static(raw)).is_err());
        let raw = b"OPTIONS sip:x@y  SIP/2.0\r\n\r\n";
        assert!(Message::parse_datagram(Bytes::from_static(raw)).is_err());
    }

    #[test]
    fn version_505_only_for_a_well_formed_version() {
        let raw = b"OPTIONS sip:x@y SIP/////2.0\r\n\r\n";
        assert_eq!(
            Message::parse_datagram(Bytes::from_static(raw)).unwrap_err(),
            ParseError::StartLine("version")
        );
        let raw = b"OPTIONS sip:x@y SIP/12.34\r\n\r\n";
        assert_eq!(
            Message::parse_datagram(Bytes::from_static(raw)).unwrap_err(),
            ParseError::Version
        );
    }

    #[test]
    fn lenient_head_reads_a_loose_request_line() {
        let raw = b"INVITE  sip:x@y; lr  SIP/2.0  \r\nCall-ID: a\r\n\r\n";
        assert!(Message::parse_datagram(Bytes::from_static(raw)).is_err());
        let m = Message::parse_head_lenient(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri(), b"sip:x@y; lr");
        assert!(
            Message::parse_head_lenient(Bytes::from_static(b"INVITE sip:x@y\r\n\r\n")).is_err()
        );
        assert!(
            Message::parse_head_lenient(Bytes::from_static(b"SIP/2.0 99999 x\r\n\r\n")).is_err()
        );
        let raw = b"INVITE sip:x@y SIP/2.0\r\n\xe5\xe4: x\r\n y\r\nCall-ID: a\r\nv=0\r\n";
        assert_eq!(
            Message::parse_datagram(Bytes::from_static(raw)).unwrap_err(),
            ParseError::HeaderLine
        );
        let m = Message::parse_head_lenient(Bytes::from_static(raw)).unwrap();
        let names: Vec<&[u8]> = m.headers().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![&b"Call-ID"[..]],
            "bad lines and their continuation skipped"
        );
    }

    #[test]
    fn datagram_may_end_after_the_last_header_line() {
        let raw = b"OPTIONS sip:x@y SIP/2.0\r\nCall-ID: a\r\nl: 0\r\n";
        let m = Message::parse_datagram(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.header(HeaderName::CallId).unwrap(), b"a");
        assert!(m.body().is_empty());
        let raw = b"OPTIONS sip:x@y SIP/2.0\r\nCall-ID: a\r\nl: 0";
        assert_eq!(
            Message::parse_datagram(Bytes::from_static(raw)).unwrap_err(),
            ParseError::Unterminated
        );
    }

    #[test]
    fn response_keeps_reason_phrase() {
        let raw = b"SIP/2.0 200 Muy Bien \xc3\xb1\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse_datagram(Bytes::from_static(raw)).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason(), "Muy Bien ñ".as_bytes());
    }

    #[test]
    fn stream_framing_splits_and_joins() {
        let mut f = StreamFramer::new(65535);
        let one = b"OPTIONS sip:x@y SIP/2.0\r\nl: 3\r\n\r\nabc";
        let mut two = one.to_vec();
        two.extend_from_slice(one);
        // Byte by byte.
        let mut got = 0;
        for &b in two.iter() {
            f.extend(&[b]);
            while let Some(Framed::Message(m)) = f.next().unwrap() {
                assert_eq!(m.body(), b"abc");
                got += 1;
            }
        }
        assert_eq!(got, 2);
        // All at once, with a keep-alive between.
        let mut all = one.to_vec();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(one);
        f.extend(&all);
        assert!(matches!(f.next().unwrap(), Some(Framed::Message(_))));
        assert!(matches!(f.next().unwrap(), Some(Framed::Ping)));
        assert!(matches!(f.next().unwrap(), Some(Framed::Message(_))));
        assert!(f.next().unwrap().is_none());
    }

    #[test]
    fn stream_requires_content_length() {
        let mut f = StreamFramer::new(65535);
        f.extend(b"OPTIONS sip:x@y SIP/2.0\r\nCall-ID: a\r\n\r\n");
        assert_eq!(f.next().unwrap_err(), ParseError::ContentLengthMissing);
    }

    #[test]
    fn stream_bytes_one_at_a_time_are_not_rescanned() {
        // 60 KB of header fed two bytes at a time: linear, so this finishes at once.
        let mut f = StreamFramer::new(65_535);
        let mut msg = b"OPTIONS sip:x@y SIP/2.0\r\n".to_vec();
        while msg.len() < 60_000 {
            msg.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        msg.extend_from_slice(b"l: 0\r\n\r\n");
        let mut got = 0;
        for chunk in msg.chunks(2) {
            f.extend(chunk);
            while let Some(Framed::Message(_)) = f.next().unwrap() {
                got += 1;
            }
        }
        assert_eq!(got, 1);
    }

    #[test]
    fn endless_line_ends_are_dropped() {
        let mut f = StreamFramer::new(1000);
        for _ in 0..10_000 {
            f.extend(b"\n");
            assert!(f.next().unwrap().is_none());
        }
        assert!(f.buffered() <= 3);
    }

    #[test]
    fn stream_size_cap() {
        let mut f = StreamFramer::new(100);
        f.extend(&[b'A'; 200]);
        assert_eq!(f.next().unwrap_err(), ParseError::TooLarge);
    }
}
