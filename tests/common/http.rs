//! A tiny HTTP/1.1 client over `std::net::TcpStream`, enough for the console's JSON API:
//! one request per connection (`Connection: close`), any headers, a body, `Content-Length`
//! or chunked answers. No dependency beyond std.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::json::{self, Json};

/// How long one request may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Header names lower-cased, in order.
    pub(crate) headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
    /// `METHOD path`, for messages.
    pub(crate) request: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics (saying what was asked and answered) if it is not.
    #[track_caller]
    pub(crate) fn json(&self) -> Json {
        json::parse(&self.text()).unwrap_or_else(|e| {
            panic!(
                "{}: the answer ({}) is not JSON: {e}\n{}",
                self.request,
                self.status,
                self.describe()
            )
        })
    }

    /// Status line, headers and (the start of) the body, for failure messages.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("HTTP {}\n", self.status);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        let text = self.text();
        if self.body.len() > 2000 || text.contains('\u{fffd}') {
            s.push_str(&format!("\n[{} bytes of body]", self.body.len()));
        } else {
            s.push('\n');
            s.push_str(&text);
        }
        s
    }
}

/// Sends one request to `base` (`http://127.0.0.1:PORT`) and reads the whole answer.
pub(crate) fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let deadline = Instant::now() + TIMEOUT;
    let mut conn = TcpStream::connect(&addr)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    conn.write_all(&out)?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{method} {path}: no complete answer within {TIMEOUT:?}"),
            ));
        }
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    parse_response(&raw, method == "HEAD").map(|(status, headers, body)| Response {
        status,
        headers,
        body,
        request: format!("{method} {path}"),
    })
}

pub(crate) type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

pub(crate) fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<Parsed> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of header in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let rest = &raw[end + 4..];
    if head_only || status == 204 || status == 304 {
        return Ok((status, headers, Vec::new()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        if rest.len() < len {
            return Err(bad(&format!(
                "Content-Length {len} but only {} bytes came",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, headers, body))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    let mut s = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A call of the server's API with a bearer token; panics (with the server's story)
/// unless the status is 2xx. An empty body is `Json::Null`.
#[track_caller]
pub(crate) fn api(
    server: &super::Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Json {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = request(
        &server.http,
        method,
        path,
        &headers,
        body.map(str::as_bytes),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", server.report()));
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {}\n{}",
        r.describe(),
        server.report()
    );
    if r.text().trim().is_empty() {
        Json::Null
    } else {
        r.json()
    }
}
