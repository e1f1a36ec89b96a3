//! SIP, SIPS (RFC 3261 §19.1) and tel (RFC 3966) URIs, borrowed from the message.
//!
//! Parsing keeps escapes as written; [`unescape`] decodes `%XX` where a
//! comparison needs it (§19.1.4). IPv6 references follow RFC 5118: inside
//! `[...]` everything is the address (`[2001:db8::10:5070]` has no port, §4.3),
//! and the three-colon form that RFC 3261's ABNF derives before an embedded
//! IPv4 address (`[2001:db8:::192.0.2.1]`) is tolerated as the two-colon one
//! (§4.10: "an implementation must tolerate both of the above constructs").

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URI could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("URI has no scheme")]
    NoScheme,
    /// The host part is empty or malformed.
    #[error("malformed host in URI")]
    Host,
    /// The port is not a number in 0..=65535.
    #[error("malformed port in URI")]
    Port,
    /// A character that may not appear in a URI.
    #[error("invalid character in URI")]
    Char,
}

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absolute URI (kept raw; we do not route to it).
    Other,
}

/// The host of a SIP URI or Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name, as written.
    Name(&'a [u8]),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Self::Name(_) => None,
            Self::V4(a) => Some(IpAddr::V4(a)),
            Self::V6(a) => Some(IpAddr::V6(a)),
        }
    }
}

/// A parsed URI, borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The whole URI as written.
    pub raw: &'a [u8],
    /// The scheme.
    pub scheme: Scheme,
    /// User part (sip/sips), or the number (tel), escapes kept.
    pub user: Option<&'a [u8]>,
    /// Host (sip/sips only).
    pub host: Option<Host<'a>>,
    /// Port (sip/sips only).
    pub port: Option<u16>,
    /// The parameters, raw, without the leading `;`.
    pub params: &'a [u8],
    /// The headers, raw, without the leading `?`.
    pub headers: &'a [u8],
}

impl<'a> Uri<'a> {
    /// Parses a URI.
    pub fn parse(raw: &'a [u8]) -> Result<Self, UriError> {
        if raw
            .iter()
            .any(|&c| c <= b' ' || c == 0x7f || c == b'<' || c == b'>' || c == b'"')
        {
            return Err(UriError::Char);
        }
        let colon = memchr::memchr(b':', raw).ok_or(UriError::NoScheme)?;
        let scheme_tok = &raw[..colon];
        if scheme_tok.is_empty()
            || !scheme_tok[0].is_ascii_alphabetic()
            || !scheme_tok
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        {
            return Err(UriError::NoScheme);
        }
        let rest = &raw[colon + 1..];
        let scheme = if scheme_tok.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_tok.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_tok.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let mut uri = Uri {
            raw,
            scheme,
            user: None,
            host: None,
            port: None,
            params: &[],
            headers: &[],
        };
        match scheme {
            Scheme::Other => Ok(uri),
            Scheme::Tel => {
                let (number, params) = split_at_byte(rest, b';');
                if number.is_empty() {
                    return Err(UriError::Char);
                }
                uri.user = Some(number);
                uri.params = params.unwrap_or(&[]);
                Ok(uri)
            }
            Scheme::Sip | Scheme::Sips => {
                let (hostpart, user) = match memchr::memchr(b'@', rest) {
                    Some(at) => (&rest[at + 1..], Some(&rest[..at])),
                    None => (rest, None),
                };
                if let Some(u) = user {
                    // user [":" password]; the user may be empty only if a password follows.
                    let user_only = split_at_byte(u, b':').0;
                    if user_only.is_empty() {
                        return Err(UriError::Char);
                    }
                    uri.user = Some(user_only);
                }
                let (hostport, headers) = split_at_byte(hostpart, b'?');
                let (hostport, params) = split_at_byte(hostport, b';');
                let (host, port) = parse_hostport(hostport)?;
                uri.host = Some(host);
                uri.port = port;
                uri.params = params.unwrap_or(&[]);
                uri.headers = headers.unwrap_or(&[]);
                Ok(uri)
            }
        }
    }

    /// The value of a URI parameter (`None` if absent; `Some(b"")` if it has no value).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        self.params.split(|&c| c == b';').find_map(|p| {
            let (n, v) = split_at_byte(p, b'=');
            n.eq_ignore_ascii_case(name.as_bytes())
                .then(|| v.unwrap_or(&[]))
        })
    }

    /// The user part with `%XX` escapes decoded.
    pub fn user_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(unescape)
    }
}

/// Parses `host [":" port]`, host being a name, IPv4 or `[IPv6]` (RFC 5118).
pub fn parse_hostport(hp: &[u8]) -> Result<(Host<'_>, Option<u16>), UriError> {
    let (host, port_part) = if hp.first() == Some(&b'[') {
        let close = memchr::memchr(b']', hp).ok_or(UriError::Host)?;
        let inner = std::str::from_utf8(&hp[1..close]).map_err(|_| UriError::Host)?;
        let addr = parse_ipv6_reference(inner)?;
        let after = &hp[close + 1..];
        let port = match after {
            [] => None,
            [b':', p @ ..] => Some(p),
            _ => return Err(UriError::Host),
        };
        (Host::V6(addr), port)
    } else {
        let (h, p) = split_at_byte(hp, b':');
        (parse_host(h)?, p)
    };
    let port = match port_part {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok((host, port))
}

/// The text inside `[...]`: an RFC 4291 address, or the RFC 3261 ABNF's
/// `hexpart ":" IPv4address` with `hexpart` ending in `::` (three colons before
/// the embedded IPv4 address, RFC 5118 §4.10), read as the two-colon form.
/// The tolerance is only that one `:::` immediately before a trailing IPv4
/// address; the rewritten text goes through the same RFC 4291 parser.
fn parse_ipv6_reference(inner: &str) -> Result<Ipv6Addr, UriError> {
    if let Ok(a) = inner.parse() {
        return Ok(a);
    }
    let i = inner.find(":::").ok_or(UriError::Host)?;
    let tail = &inner[i + 3..];
    if tail.parse::<Ipv4Addr>().is_err() {
        return Err(UriError::Host);
    }
    format!("{}::{tail}", &inner[..i])
        .parse()
        .map_err(|_| UriError::Host)
}

/// Parses a host name or IPv4 address (no brackets).
pub fn parse_host(h: &[u8]) -> Result<Host<'_>, UriError> {
    if h.is_empty() {
        return Err(UriError::Host);
    }
    if h.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        let s = std::str::from_utf8(h).map_err(|_| UriError::Host)?;
        return s.parse().map(Host::V4).map_err(|_| UriError::Host);
    }
    // hostname = *( domainlabel "." ) toplabel [ "." ]
    let ok = h.split(|&c| c == b'.').enumerate().all(|(i, label)| {
        if label.is_empty() {
            // Only a trailing dot is allowed.
            return i > 0 && std::ptr::eq(label.as_ptr(), h[h.len()..].as_ptr());
        }
        label
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
    });
    if ok {
        Ok(Host::Name(h))
    } else {
        Err(UriError::Host)
    }
}

fn parse_port(p: &[u8]) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return Err(UriError::Port);
    }
    let n = p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| UriError::Port)
}

/// Splits at the first `sep`: (before, after) where after excludes `sep`.
fn split_at_byte(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(sep, s) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&b'%') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse(b"sip:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=x")
            .unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.host, Some(Host::Name(b"atlanta.example.com")));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("transport"), Some(&b"tcp"[..]));
        assert_eq!(u.param("lr"), Some(&b""[..]));
        assert_eq!(u.headers, b"subject=x");
    }

    #[test]
    fn ipv6_and_tel() {
        let u = Uri::parse(b"sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, Some(Host::V6("2001:db8::10".parse().unwrap())));
        assert_eq!(u.port, Some(5070));
        // RFC 5118 §4.10: the three-colon form RFC 3261's ABNF derives must be
        // tolerated, as the same address; `:::` anywhere else is still an error.
        let u = Uri::parse(b"sip:[2001:db8:::192.0.2.1]").unwrap();
        assert_eq!(
            u.host,
            Some(Host::V6("2001:db8::192.0.2.1".parse().unwrap()))
        );
        assert!(Uri::parse(b"sip:[2001:db8:::10]").is_err());
        assert!(Uri::parse(b"sip:[2001:db8::1:::192.0.2.1]").is_err());
        assert!(Uri::parse(b"sip:[2001:db8::::192.0.2.1]").is_err());
        assert!(Uri::parse(b"sip:2001:db8::10").is_err());
        let t = Uri::parse(b"tel:+51-1-555-0123;phone-context=example.pe").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user, Some(&b"+51-1-555-0123"[..]));
    }

    #[test]
    fn escapes() {
        let u = Uri::parse(b"sip:sip%3Auser%40example.com@example.net").unwrap();
        assert_eq!(&*u.user_unescaped().unwrap(), b"sip:user@example.com");
        assert_eq!(&*unescape(b"100%"), b"100%");
        assert_eq!(&*unescape(b"%4"), b"%4");
    }

    #[test]
    fn bad_hosts() {
        assert!(Uri::parse(b"sip:user@").is_err());
        assert!(Uri::parse(b"sip:user@exa mple.com").is_err());
        assert!(Uri::parse(b"sip:user@256.1.1.1").is_err());
        assert!(Uri::parse(b"sip:user@host:99999").is_err());
        assert!(Uri::parse(b"sip:user@host.example.").is_ok());
    }
}
