//! HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760):
//! credentials and challenges parsed and printed, responses verified against
//! a stored HA1, nonces that expire and cannot be replayed.
//!
//! Sans-IO: every call that needs the time takes the wall clock as a
//! [`SystemTime`] (nonces carry a timestamp that any node sharing the secret
//! can check); nothing here reads a clock.
//!
//! # Decisions
//! - Algorithms: `SHA-256` and `MD5` ([`Algorithm`]). A 401 carries one
//!   challenge per offered algorithm ([`DigestConfig::algorithms`]; by
//!   default both, SHA-256 first: RFC 8760 §2.4, RFC 7616 §3.7); all share
//!   one nonce. Some clients (baresip 1.0, sipp) refuse a 401 that offers
//!   SHA-256 at all, so a deployment can offer MD5 alone. Credentials that
//!   name an algorithm not offered are an authentication failure
//!   ([`Failure::AlgorithmNotOffered`]), as a wrong password is. `SHA-512-256` and every `-sess` variant are not
//!   offered, and credentials that name them are refused as malformed
//!   ([`DigestError::UnsupportedAlgorithm`], answered 400): a client answers a
//!   challenge we sent (RFC 7616 §3.4), and no softphone we target needs them.
//! - qop: `auth` only. Credentials with `qop=auth-int` are refused
//!   ([`DigestError::UnsupportedQop`]); credentials without qop (the RFC 2069
//!   form RFC 3261 §22.4 still allows) parse, but [`Authenticator::verify`]
//!   refuses them ([`DigestError::QopRequired`]): without `nc` there is no
//!   replay protection.
//! - Nonces are stateless but verifiable: `base64url(timestamp ‖ salt ‖
//!   HMAC-SHA256(secret, timestamp ‖ salt ‖ realm)[..16])`, 43 characters. The
//!   timestamp is Unix seconds; the salt (a counter mixed with the configured
//!   seed) keeps two nonces issued in the same second apart, so two phones
//!   never share a nonce and its `nc` sequence. A nonce is fresh for
//!   [`DigestConfig::nonce_lifetime`] (5 minutes); one dated more than
//!   [`DigestConfig::max_clock_skew`] in the future (another node's clock) is
//!   invalid. An expired nonce, or one that is not ours (another secret), with
//!   an otherwise correct response gets `stale=true` (RFC 7616 §3.3): the
//!   client retries without asking its user for the password again.
//! - Replay: the highest `nc` accepted for each nonce is kept in a bounded
//!   map, filled only by successful verifications (so a client without the
//!   password cannot fill it). An `nc` not greater than the last one is a
//!   replay: [`Failure::Replay`], counted as an authentication failure and
//!   answered 401 with `stale=true`. When the map is full its oldest entry is
//!   dropped and a watermark raised: a nonce issued at or before the watermark
//!   that is not in the map is treated as stale, so an evicted nonce can never
//!   be replayed. Replay state is per process: nodes behind a load balancer
//!   share the secret (a nonce from one node verifies on another) but not the
//!   `nc` map.
//! - `opaque` is a constant derived from the secret and the realm; clients
//!   return it, and its value is not checked (the nonce carries the state).
//! - The `uri` directive must name the Request-URI (RFC 7616 §3.4.6): byte
//!   for byte, or equivalent under the parts of RFC 3261 §19.1.4 that
//!   softphones vary (case of scheme, host and parameters; escaping of the
//!   user). A mismatch is [`DigestError::UriMismatch`] (400).
//! - Anti-enumeration: a challenge does not depend on the user at all, and
//!   [`Authenticator::verify`] for an unknown user computes the same hashes
//!   against a dummy HA1 derived from the secret before it fails, so the
//!   answer and its timing are the same for a known user with a wrong
//!   password. Responses are compared in constant time.
//! - `userhash` and `username*` (RFC 7616 §3.4.4, §3.4.5) are not offered
//!   and not supported: such a username is simply not found.
//! - Quoted strings: `\x` stands for `x` (RFC 3261 §25.1 `quoted-pair`); the
//!   CR and LF of a folded line inside quotes are dropped. Directive names are
//!   case-insensitive; an empty list element is skipped; a directive we know
//!   given twice is an error; unknown directives are ignored (RFC 7616 §3.4).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::message::{HeaderName, Message, Method, is_token_char};
use crate::uri::{Host, Scheme, Uri};

/// Why credentials or a challenge were refused before any hash was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// The header value does not follow the grammar (what is named).
    #[error("malformed digest {0}")]
    Syntax(&'static str),
    /// A required directive is missing.
    #[error("digest {0} missing")]
    Missing(&'static str),
    /// A directive is given twice.
    #[error("digest {0} given twice")]
    Duplicate(&'static str),
    /// An algorithm other than MD5 and SHA-256.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A qop other than `auth`.
    #[error("unsupported qop")]
    UnsupportedQop,
    /// Credentials without qop (RFC 2069 form): no replay protection.
    #[error("qop=auth required")]
    QopRequired,
    /// The credentials are for another realm.
    #[error("credentials for another realm")]
    RealmMismatch,
    /// The `uri` directive does not name the Request-URI.
    #[error("digest uri does not match the Request-URI")]
    UriMismatch,
}

/// A digest algorithm (RFC 7616 §3.3, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `MD5` (RFC 2617; the default when no algorithm is named).
    Md5,
}

impl Algorithm {
    /// What a challenge offers, in order of preference (RFC 8760 §2.4).
    pub const PREFERENCE: [Self; 2] = [Self::Sha256, Self::Md5];

    /// The token used in challenges and credentials.
    pub fn token(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Md5 => "MD5",
        }
    }

    /// Reads an algorithm token, case-insensitively (RFC 7616 §3.3).
    pub fn from_token(token: &str) -> Result<Self, DigestError> {
        if token.eq_ignore_ascii_case("SHA-256") {
            Ok(Self::Sha256)
        } else if token.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else {
            Err(DigestError::UnsupportedAlgorithm(token.to_owned()))
        }
    }

    /// Length of a hash in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Md5 => 32,
        }
    }

    /// `H(parts joined by ':')` in lower-case hex.
    pub fn hash_hex(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Self::Sha256 => run::<Sha256>(parts),
            Self::Md5 => run::<Md5>(parts),
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Sha256 => 0,
            Self::Md5 => 1,
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)` in hex (RFC 7616 §3.4.2), what
/// the store keeps instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// `KD(HA1, nonce:nc:cnonce:qop:H(method:uri))` (RFC 7616 §3.4.1), or
/// `H(HA1:nonce:H(method:uri))` without qop (RFC 2069, RFC 3261 §22.4).
pub fn response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(NonceCount, &str)>,
    method: &Method,
    uri: &str,
) -> String {
    let ha2 = algorithm.hash_hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some((nc, cnonce)) => algorithm.hash_hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_str().as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => algorithm.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// The HA1s stored for an account, in hex (the `sip_ha1_*` columns).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DigestSecrets {
    /// `MD5(name:realm:password)`.
    pub md5: Option<String>,
    /// `SHA-256(name:realm:password)`.
    pub sha256: Option<String>,
}

impl DigestSecrets {
    /// Both HA1s from a password (for tools and tests; the server never sees it).
    pub fn from_password(username: &str, realm: &str, password: &str) -> Self {
        Self {
            md5: Some(ha1(Algorithm::Md5, username, realm, password)),
            sha256: Some(ha1(Algorithm::Sha256, username, realm, password)),
        }
    }

    /// The HA1 for an algorithm, when stored and of the right length.
    pub fn ha1(&self, algorithm: Algorithm) -> Option<&str> {
        let h = match algorithm {
            Algorithm::Sha256 => self.sha256.as_deref(),
            Algorithm::Md5 => self.md5.as_deref(),
        }?;
        (h.len() == algorithm.hex_len() && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
    }
}

impl fmt::Debug for DigestSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestSecrets")
            .field("md5", &self.md5.as_ref().map(|_| "<set>"))
            .field("sha256", &self.sha256.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Quality of protection (RFC 7616 §3.3); only `auth` is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Qop {
    /// Authentication only.
    Auth,
}

/// `nc`: eight hex digits (RFC 7616 §3.4), kept as written because the
/// response hashes the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceCount {
    value: u32,
    text: [u8; 8],
}

impl NonceCount {
    /// The count written in lower-case hex.
    pub fn new(value: u32) -> Self {
        let mut text = [0; 8];
        for (i, t) in text.iter_mut().enumerate() {
            *t = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
        }
        Self { value, text }
    }

    /// Reads exactly eight hex digits (either case); zero is not a count.
    pub fn parse(s: &str) -> Option<Self> {
        let text: [u8; 8] = s.as_bytes().try_into().ok()?;
        let value = u32::from_str_radix(s, 16).ok().filter(|&v| v > 0)?;
        text.iter()
            .all(u8::is_ascii_hexdigit)
            .then_some(Self { value, text })
    }

    /// The count.
    pub fn value(self) -> u32 {
        self.value
    }

    /// The count as written.
    pub fn as_str(&self) -> &str {
        // Invariant: `text` holds ASCII hex digits only (new and parse check).
        std::str::from_utf8(&self.text).expect("hex digits are ASCII")
    }
}

/// Digest credentials from `Authorization` or `Proxy-Authorization`
/// (RFC 7616 §3.4, RFC 3261 §25.1 `digest-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name, unescaped.
    pub username: String,
    /// The realm, unescaped.
    pub realm: String,
    /// The nonce of the challenge answered.
    pub nonce: String,
    /// The `uri` directive (the Request-URI the client hashed).
    pub uri: String,
    /// The response, lower-case hex of the algorithm's length.
    pub response: String,
    /// The algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// `qop`, if given.
    pub qop: Option<Qop>,
    /// `nc` (required with qop).
    pub nc: Option<NonceCount>,
    /// `cnonce` (required with qop).
    pub cnonce: Option<String>,
    /// `opaque`, returned from the challenge.
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses a header value: `Digest` then comma-separated directives.
    pub fn parse(value: &[u8]) -> Result<Self, DigestError> {
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = None;
        let mut qop = None;
        let mut nc = None;
        let mut cnonce = None;
        let mut opaque = None;
        for (name, v) in auth_params(value)? {
            let slot = match name.as_str() {
                "username" => (&mut username, "username"),
                "realm" => (&mut realm, "realm"),
                "nonce" => (&mut nonce, "nonce"),
                "uri" => (&mut uri, "uri"),
                "response" => (&mut response, "response"),
                "algorithm" => (&mut algorithm, "algorithm"),
                "qop" => (&mut qop, "qop"),
                "nc" => (&mut nc, "nc"),
                "cnonce" => (&mut cnonce, "cnonce"),
                "opaque" => (&mut opaque, "opaque"),
                _ => continue,
            };
            set_once(slot, v)?;
        }
        let algorithm = match algorithm {
            Some(a) => Algorithm::from_token(&a)?,
            None => Algorithm::Md5,
        };
        let qop = match qop {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(_) => return Err(DigestError::UnsupportedQop),
        };
        let nc = match nc {
            Some(n) => Some(NonceCount::parse(&n).ok_or(DigestError::Syntax("nc"))?),
            None if qop.is_some() => return Err(DigestError::Missing("nc")),
            None => None,
        };
        if qop.is_some() && cnonce.is_none() {
            return Err(DigestError::Missing("cnonce"));
        }
        let mut response = response.ok_or(DigestError::Missing("response"))?;
        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(DigestError::Syntax("response"));
        }
        response.make_ascii_lowercase();
        Ok(Self {
            username: username.ok_or(DigestError::Missing("username"))?,
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            uri: uri.ok_or(DigestError::Missing("uri"))?,
            response,
            algorithm,
            qop,
            nc,
            cnonce,
            opaque,
        })
    }

    /// The credentials for `realm` among the request's `header` lines
    /// (`Authorization` or `Proxy-Authorization`): `None` when there are none
    /// for that realm; an error when none is for that realm and one could not
    /// be parsed.
    pub fn find(
        request: &Message,
        header: HeaderName,
        realm: &str,
    ) -> Option<Result<Self, DigestError>> {
        let mut error = None;
        for (name, value) in request.headers() {
            if HeaderName::classify(name) != header {
                continue;
            }
            match Self::parse(value) {
                Ok(c) if c.realm == realm => return Some(Ok(c)),
                Ok(_) => {}
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        error.map(Err)
    }
}

impl fmt::Display for Credentials {
    /// The header value (after `Authorization: `).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
            Quoted(&self.username),
            Quoted(&self.realm),
            Quoted(&self.nonce),
            Quoted(&self.uri),
            self.response,
            self.algorithm.token()
        )?;
        if self.qop.is_some() {
            f.write_str(", qop=auth")?;
        }
        if let Some(nc) = &self.nc {
            write!(f, ", nc={}", nc.as_str())?;
        }
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", Quoted(c))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", Quoted(o))?;
        }
        Ok(())
    }
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` challenge (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The realm.
    pub realm: String,
    /// The nonce.
    pub nonce: String,
    /// `opaque`, to be returned unchanged.
    pub opaque: Option<String>,
    /// The algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// `auth` among the qop options.
    pub qop: Option<Qop>,
    /// The previous request had a good response but a stale nonce.
    pub stale: bool,
}

impl Challenge {
    /// Parses a challenge (for clients and tests). Unknown directives are
    /// ignored; a qop list without `auth` is [`DigestError::UnsupportedQop`].
    pub fn parse(value: &[u8]) -> Result<Self, DigestError> {
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = None;
        let mut qop = None;
        let mut stale = None;
        for (name, v) in auth_params(value)? {
            let slot = match name.as_str() {
                "realm" => (&mut realm, "realm"),
                "nonce" => (&mut nonce, "nonce"),
                "opaque" => (&mut opaque, "opaque"),
                "algorithm" => (&mut algorithm, "algorithm"),
                "qop" => (&mut qop, "qop"),
                "stale" => (&mut stale, "stale"),
                _ => continue,
            };
            set_once(slot, v)?;
        }
        let qop = match qop {
            None => None,
            Some(list)
                if list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth")) =>
            {
                Some(Qop::Auth)
            }
            Some(_) => return Err(DigestError::UnsupportedQop),
        };
        Ok(Self {
            realm: realm.ok_or(DigestError::Missing("realm"))?,
            nonce: nonce.ok_or(DigestError::Missing("nonce"))?,
            opaque,
            algorithm: match algorithm {
                Some(a) => Algorithm::from_token(&a)?,
                None => Algorithm::Md5,
            },
            qop,
            stale: stale.is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The credentials a client sends in answer (qop=auth when offered).
    pub fn answer(
        &self,
        username: &str,
        ha1: &str,
        method: &Method,
        uri: &str,
        cnonce: &str,
        nc: NonceCount,
    ) -> Credentials {
        let qop = self.qop.map(|_| (nc, cnonce));
        Credentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response: response(self.algorithm, ha1, &self.nonce, qop, method, uri),
            algorithm: self.algorithm,
            qop: self.qop,
            nc: qop.map(|(nc, _)| nc),
            cnonce: qop.map(|(_, c)| c.to_owned()),
            opaque: self.opaque.clone(),
        }
    }
}

impl fmt::Display for Challenge {
    /// The header value (after `WWW-Authenticate: `).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", Quoted(&self.realm))?;
        if self.qop.is_some() {
            f.write_str(", qop=\"auth\"")?;
        }
        write!(
            f,
            ", algorithm={}, nonce={}",
            self.algorithm.token(),
            Quoted(&self.nonce)
        )?;
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", Quoted(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// Authenticator settings.
#[derive(Clone)]
pub struct DigestConfig {
    /// The realm (our SIP domain: the stored HA1s are computed over it).
    pub realm: String,
    /// The key of the nonce MAC; shared by every node that verifies nonces.
    pub secret: [u8; 32],
    /// How long a nonce is fresh.
    pub nonce_lifetime: Duration,
    /// How far in the future a nonce's timestamp may be (clock differences
    /// between nodes).
    pub max_clock_skew: Duration,
    /// Nonces whose `nc` is tracked at most (the replay map's bound).
    pub max_tracked_nonces: usize,
    /// Mixed into nonce salts (the shell passes OS randomness).
    pub seed: u64,
    /// The algorithms a 401 offers, one challenge each, in this order
    /// (duplicates count once). Credentials with any other algorithm fail
    /// ([`Failure::AlgorithmNotOffered`]). Empty means the default, both
    /// ([`Algorithm::PREFERENCE`]); `vec![Algorithm::Md5]` is for clients that
    /// refuse a SHA-256 challenge.
    pub algorithms: Vec<Algorithm>,
}

impl DigestConfig {
    /// Settings with the defaults: 5-minute nonces, 30 s of skew, 65 536
    /// tracked nonces, SHA-256 and MD5 offered.
    pub fn new(realm: impl Into<String>, secret: [u8; 32]) -> Self {
        Self {
            realm: realm.into(),
            secret,
            nonce_lifetime: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(30),
            max_tracked_nonces: 65_536,
            seed: 0,
            algorithms: Algorithm::PREFERENCE.to_vec(),
        }
    }

    /// The algorithms offered, in order, without duplicates (the default
    /// when [`algorithms`](Self::algorithms) is empty).
    pub fn offered(&self) -> Vec<Algorithm> {
        let mut out: Vec<Algorithm> = Vec::with_capacity(2);
        for &a in &self.algorithms {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if out.is_empty() {
            out.extend(Algorithm::PREFERENCE);
        }
        out
    }
}

impl fmt::Debug for DigestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestConfig")
            .field("realm", &self.realm)
            .field("secret", &"<secret>")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("max_tracked_nonces", &self.max_tracked_nonces)
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

/// What a nonce is worth now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours and within its lifetime.
    Fresh,
    /// Ours but too old.
    Expired,
    /// Not ours: malformed, another secret or realm, or from the future.
    Invalid,
}

/// The result of [`Authenticator::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right, the nonce fresh and the `nc` new.
    Authenticated,
    /// The response is right but the nonce is expired or not ours: challenge
    /// again with `stale=true`.
    Stale,
    /// An authentication failure: count it and log it.
    Failed(Failure),
    /// The credentials do not fit the request (answer 400; not counted).
    Invalid(DigestError),
}

/// Why authentication failed. The client cannot tell these apart (all get
/// the same 401 but [`Failure::Replay`], whose nonce it already used); the log
/// can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No such account (verified against a dummy HA1).
    UnknownUser,
    /// Wrong response: the password is wrong.
    BadPassword,
    /// A correct response with an `nc` already used for this nonce.
    Replay,
    /// Credentials with an algorithm the configuration does not offer
    /// ([`DigestConfig::algorithms`]); the response is not checked.
    AlgorithmNotOffered,
}

impl Failure {
    /// The `reason=` of the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown-user",
            Self::BadPassword => "bad-password",
            Self::Replay => "replay",
            Self::AlgorithmNotOffered => "algorithm-not-offered",
        }
    }
}

/// Issues challenges and verifies credentials for one realm (sans-IO).
pub struct Authenticator {
    config: DigestConfig,
    /// [`DigestConfig::offered`], computed once.
    offered: Vec<Algorithm>,
    opaque: String,
    /// Dummy HA1 per algorithm ([`Algorithm::index`]), for unknown users.
    dummy: [String; 2],
    counter: u64,
    /// (timestamp, salt) of each nonce used successfully → highest `nc` accepted.
    used: BTreeMap<(u64, u64), u32>,
    /// Nonces issued at or before this second and absent from `used` were evicted.
    watermark: Option<u64>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("realm", &self.config.realm)
            .field("tracked_nonces", &self.used.len())
            .field("watermark", &self.watermark)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator for `config.realm`.
    pub fn new(config: DigestConfig) -> Self {
        let opaque = base64url(&mac(&config.secret, &[b"opaque", config.realm.as_bytes()])[..12]);
        let dummy = Algorithm::PREFERENCE.map(|a| {
            let m = mac(&config.secret, &[b"dummy-ha1", a.token().as_bytes()]);
            hex(&m)[..a.hex_len()].to_owned()
        });
        Self {
            offered: config.offered(),
            config,
            opaque,
            dummy,
            counter: 0,
            used: BTreeMap::new(),
            watermark: None,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// The settings.
    pub fn config(&self) -> &DigestConfig {
        &self.config
    }

    /// Nonces whose `nc` is tracked now.
    pub fn tracked_nonces(&self) -> usize {
        self.used.len()
    }

    /// A fresh nonce.
    pub fn nonce(&mut self, wall: SystemTime) -> String {
        self.counter += 1;
        let salt = splitmix64(self.config.seed ^ self.counter);
        let ts = unix_secs(wall);
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&ts.to_be_bytes());
        raw[8..16].copy_from_slice(&salt.to_be_bytes());
        raw[16..].copy_from_slice(&self.nonce_mac(ts, salt)[..16]);
        base64url(&raw)
    }

    /// The challenges of a 401, one per offered algorithm in the configured
    /// order (by default SHA-256 then MD5, RFC 8760 §2.4), with one fresh
    /// nonce. They do not depend on who asks.
    pub fn challenges(&mut self, wall: SystemTime, stale: bool) -> Vec<Challenge> {
        let nonce = self.nonce(wall);
        self.offered
            .iter()
            .map(|&algorithm| Challenge {
                realm: self.config.realm.clone(),
                nonce: nonce.clone(),
                opaque: Some(self.opaque.clone()),
                algorithm,
                qop: Some(Qop::Auth),
                stale,
            })
            .collect()
    }

    /// Whether challenges offer `algorithm`.
    pub fn offers(&self, algorithm: Algorithm) -> bool {
        self.offered.contains(&algorithm)
    }

    /// Whether a nonce is ours and fresh.
    pub fn nonce_status(&self, wall: SystemTime, nonce: &str) -> NonceStatus {
        match self.check_nonce(wall, nonce) {
            Ok(_) => NonceStatus::Fresh,
            Err(s) => s,
        }
    }

    /// Verifies credentials for a request. `secrets` are the account's HA1s
    /// (looked up by `creds.username`), `None` when there is no such account:
    /// the same hashes are computed either way. Credentials with an algorithm
    /// the challenges do not offer fail ([`Failure::AlgorithmNotOffered`])
    /// before any hash.
    pub fn verify(
        &mut self,
        wall: SystemTime,
        creds: &Credentials,
        method: &Method,
        request_uri: &[u8],
        secrets: Option<&DigestSecrets>,
    ) -> Verdict {
        if creds.realm != self.config.realm {
            return Verdict::Invalid(DigestError::RealmMismatch);
        }
        let (Some(Qop::Auth), Some(nc), Some(cnonce)) = (creds.qop, creds.nc, &creds.cnonce) else {
            return Verdict::Invalid(DigestError::QopRequired);
        };
        if !uri_equivalent(creds.uri.as_bytes(), request_uri) {
            return Verdict::Invalid(DigestError::UriMismatch);
        }
        if !self.offers(creds.algorithm) {
            // Not a question of who asks: no hash is needed to hide users.
            return Verdict::Failed(Failure::AlgorithmNotOffered);
        }
        let nonce = self.check_nonce(wall, &creds.nonce);
        let stored = secrets.and_then(|s| s.ha1(creds.algorithm));
        let ha1 = match stored {
            Some(h) => h.to_ascii_lowercase(),
            None => self.dummy[creds.algorithm.index()].clone(),
        };
        let expected = response(
            creds.algorithm,
            &ha1,
            &creds.nonce,
            Some((nc, cnonce)),
            method,
            &creds.uri,
        );
        let matches = ct_eq(expected.as_bytes(), creds.response.as_bytes());
        match (stored.is_some(), matches) {
            (false, _) => return Verdict::Failed(Failure::UnknownUser),
            (true, false) => return Verdict::Failed(Failure::BadPassword),
            (true, true) => {}
        }
        let Ok(key) = nonce else {
            return Verdict::Stale;
        };
        match self.used.get(&key) {
            Some(&last) if nc.value() <= last => return Verdict::Failed(Failure::Replay),
            Some(_) => {}
            None if self.watermark.is_some_and(|w| key.0 <= w) => return Verdict::Stale,
            None => {}
        }
        self.used.insert(key, nc.value());
        self.purge(wall);
        Verdict::Authenticated
    }

    /// Drops expired nonces from the replay map, then the oldest ones while it
    /// is over its bound (raising the watermark).
    fn purge(&mut self, wall: SystemTime) {
        let now = unix_secs(wall);
        let lifetime = self.config.nonce_lifetime.as_secs();
        while let Some((&(ts, salt), _)) = self.used.first_key_value() {
            let expired = now.saturating_sub(ts) > lifetime;
            if !expired && self.used.len() <= self.config.max_tracked_nonces {
                break;
            }
            self.used.remove(&(ts, salt));
            if !expired {
                self.watermark = Some(self.watermark.map_or(ts, |w| w.max(ts)));
            }
        }
    }

    fn check_nonce(&self, wall: SystemTime, nonce: &str) -> Result<(u64, u64), NonceStatus> {
        let raw = base64url_decode(nonce.as_bytes())
            .filter(|r| r.len() == 32)
            .ok_or(NonceStatus::Invalid)?;
        let ts = u64::from_be_bytes(raw[..8].try_into().map_err(|_| NonceStatus::Invalid)?);
        let salt = u64::from_be_bytes(raw[8..16].try_into().map_err(|_| NonceStatus::Invalid)?);
        if self
            .nonce_hmac(ts, salt)
            .verify_truncated_left(&raw[16..])
            .is_err()
        {
            return Err(NonceStatus::Invalid);
        }
        let now = unix_secs(wall);
        if ts > now.saturating_add(self.config.max_clock_skew.as_secs()) {
            return Err(NonceStatus::Invalid);
        }
        if now.saturating_sub(ts) > self.config.nonce_lifetime.as_secs() {
            return Err(NonceStatus::Expired);
        }
        Ok((ts, salt))
    }

    fn nonce_hmac(&self, ts: u64, salt: u64) -> Hmac<Sha256> {
        let mut m = hmac_sha256(&self.config.secret);
        for part in [
            &b"hotline-nonce"[..],
            &ts.to_be_bytes(),
            &salt.to_be_bytes(),
            self.config.realm.as_bytes(),
        ] {
            m.update(part);
        }
        m
    }

    fn nonce_mac(&self, ts: u64, salt: u64) -> [u8; 32] {
        self.nonce_hmac(ts, salt).finalize().into_bytes().into()
    }
}

/// Whether the digest `uri` names the Request-URI: the same bytes, or the
/// same SIP/SIPS/tel URI up to the case of scheme, host and parameters and
/// the escaping of the user part (the parts of RFC 3261 §19.1.4 softphones
/// vary).
pub(crate) fn uri_equivalent(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (Uri::parse(a), Uri::parse(b)) else {
        return false;
    };
    let host_eq = match (x.host, y.host) {
        (Some(Host::Name(p)), Some(Host::Name(q))) => p.eq_ignore_ascii_case(q),
        (p, q) => p == q,
    };
    x.scheme == y.scheme
        && x.scheme != Scheme::Other
        && x.user_unescaped() == y.user_unescaped()
        && host_eq
        && x.port == y.port
        && x.params.eq_ignore_ascii_case(y.params)
        && x.headers == y.headers
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Reads `Digest` and its directives: (lower-cased name, unescaped value).
fn auth_params(value: &[u8]) -> Result<Vec<(String, String)>, DigestError> {
    let s = value;
    let mut i = skip_lws(s, 0);
    let scheme_end = i + s[i..].iter().take_while(|&&b| is_token_char(b)).count();
    if !s[i..scheme_end].eq_ignore_ascii_case(b"Digest") {
        return Err(DigestError::NotDigest);
    }
    i = scheme_end;
    if i < s.len() && !matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        return Err(DigestError::NotDigest);
    }
    let mut out = Vec::new();
    loop {
        i = skip_lws(s, i);
        // Empty list elements (`a=1,,b=2`) are allowed (RFC 7230 §7).
        while i < s.len() && s[i] == b',' {
            i = skip_lws(s, i + 1);
        }
        if i >= s.len() {
            break;
        }
        let name_end = i + s[i..].iter().take_while(|&&b| is_token_char(b)).count();
        if name_end == i {
            return Err(DigestError::Syntax("directive name"));
        }
        let name = String::from_utf8_lossy(&s[i..name_end]).to_ascii_lowercase();
        i = skip_lws(s, name_end);
        if s.get(i) != Some(&b'=') {
            return Err(DigestError::Syntax("directive without value"));
        }
        i = skip_lws(s, i + 1);
        let raw = if s.get(i) == Some(&b'"') {
            let (v, next) = unquote(s, i)?;
            i = next;
            v
        } else {
            let end = i + s[i..]
                .iter()
                .take_while(|&&b| !matches!(b, b',' | b' ' | b'\t' | b'\r' | b'\n' | b'"'))
                .count();
            if end == i {
                return Err(DigestError::Syntax("directive value"));
            }
            let v = s[i..end].to_vec();
            i = end;
            v
        };
        let value = String::from_utf8(raw).map_err(|_| DigestError::Syntax("not UTF-8"))?;
        out.push((name, value));
        i = skip_lws(s, i);
        match s.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return Err(DigestError::Syntax("missing comma")),
        }
    }
    Ok(out)
}

/// Reads the quoted string at `s[i] == '"'`: (unescaped content, index after
/// the closing quote).
fn unquote(s: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), DigestError> {
    let mut out = Vec::new();
    i += 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' => {
                let &c = s.get(i + 1).ok_or(DigestError::Syntax("quoted string"))?;
                if matches!(c, b'\r' | b'\n') {
                    return Err(DigestError::Syntax("quoted string"));
                }
                out.push(c);
                i += 2;
            }
            // The line break of a folded line; the white space after it stays.
            b'\r' | b'\n' => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(DigestError::Syntax("unterminated quoted string"))
}

fn skip_lws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

fn set_once(
    (slot, name): (&mut Option<String>, &'static str),
    value: String,
) -> Result<(), DigestError> {
    if slot.is_some() {
        return Err(DigestError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// A value printed as a quoted string, `"` and `\` escaped.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                // No line breaks in a header value.
                '\r' | '\n' => f.write_str(" ")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // Invariant: HMAC accepts keys of any length.
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = hmac_sha256(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn unix_secs(wall: SystemTime) -> u64 {
    wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for k in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * k)) & 0x3f) as usize]));
        }
    }
    out
}

fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|&x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        for k in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * k)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..40 {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let e = base64url(&v);
            assert!(!e.contains('='));
            assert_eq!(base64url_decode(e.as_bytes()).unwrap(), v);
        }
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert!(base64url_decode(b"abcde").is_none());
        assert!(base64url_decode(b"ab=c").is_none());
    }

    #[test]
    fn nonce_count_text() {
        assert_eq!(NonceCount::new(1).as_str(), "00000001");
        assert_eq!(NonceCount::new(0xabc).as_str(), "00000abc");
        assert_eq!(NonceCount::parse("0000000A").unwrap().value(), 10);
        assert!(NonceCount::parse("00000000").is_none());
        assert!(NonceCount::parse("1").is_none());
        assert!(NonceCount::parse("+0000001").is_none());
    }
}
