//! Console sessions: the `hotline_session` cookie, its checks on every request, and CSRF.
//!
//! A small layer of our own over the store's session rows, not tower-sessions: we need exactly
//! one opaque token per sign-in, stored hashed, with an idle and an absolute limit read from an
//! injectable [`Clock`], the user's role re-read on each request, and a CSRF token per session
//! checked before any handler runs. tower-sessions would add a session data map, its own expiry
//! model and a store adapter to write, for none of that.
//!
//! # What the middleware does, on every request
//! 1. A request with an `Authorization` header is left to the bearer-token path of
//!    [`Identity`]: the cookie is not looked at (and such a request needs no CSRF token: a
//!    cross-site page cannot set that header).
//! 2. Otherwise the `hotline_session` cookie, if any, is resolved: the SHA-256 (hex) of its
//!    token is looked up; a session past its absolute end ([`ConsoleSettings::max_age`]) or idle
//!    for longer than [`ConsoleSettings::idle_timeout`], or whose user is gone or disabled, is
//!    deleted and the cookie cleared. A live one is touched (at most once a minute, to spare
//!    writes) and the request gets an [`Identity`] (so `/api` works with the cookie, e.g. the
//!    audio player) and a `SignedIn` (for the pages) in its extensions.
//! 3. A state-changing request (anything but GET, HEAD, OPTIONS) authenticated by the cookie
//!    must carry the session's CSRF token, in the `X-CSRF-Token` header or a `csrf` field of an
//!    `application/x-www-form-urlencoded` body; else 403 before any handler runs.
//!
//! Times come from the state's [`Clock`] (tests set it); nothing here sleeps.

use std::fmt;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hotline_store::{Role, StoreError, Timestamp};
use sha2::{Digest, Sha256};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::{AppState, BODY_LIMIT};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hotline_session";

/// Header that carries the CSRF token on script requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// Sessions are touched at most this often (ms): the idle limit is exact to within this.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Where the time comes from. [`SystemClock`] in production; tests set their own.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// How console sessions behave. [`ConsoleSettings::default`]: secure cookies, 15 min idle,
/// 12 h at most, SIP realm `hotline.local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Mark cookies `Secure` (sent over HTTPS only; browsers also accept them from
    /// `http://localhost`). Turn off only for plain HTTP on a trusted network.
    pub secure_cookies: bool,
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub max_age: Duration,
    /// The SIP realm (`sip.domain`) of the digest HA1s the admin pages store with a password.
    pub sip_domain: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`http.trusted_proxies`): a request
    /// from one of them is attributed to the right-most address of that header that is not a
    /// trusted proxy (for the audit log and the sign-in refusals). Empty: none.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The hotline's time zone (`time_zone`): the days of the board and its charts, the
    /// recordings' date filters and every time a page or an export writes.
    pub time_zone: hotline_store::Zone,
}

impl Default for ConsoleSettings {
    fn default() -> ConsoleSettings {
        ConsoleSettings {
            secure_cookies: true,
            idle_timeout: Duration::from_secs(15 * 60),
            max_age: Duration::from_secs(12 * 3600),
            sip_domain: "hotline.local".to_owned(),
            trusted_proxies: Vec::new(),
            time_zone: hotline_store::Zone::lima(),
        }
    }
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The signed-in user of a request authenticated by the session cookie, put in the request's
/// extensions by [`middleware`]. Pages take it through `pages::PageUser`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SignedIn {
    /// SHA-256 (hex) of the cookie's token: the session's key in the store.
    pub(crate) id_hash: String,
    pub(crate) user: String,
    pub(crate) role: Role,
    /// The session's CSRF token (forms echo it).
    pub(crate) csrf: String,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A new random secret: 256 bits, base64url without padding (43 characters).
pub(crate) fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64url(&bytes)
}

fn base64url(bytes: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    let (mut acc, mut bits) = (0u32, 0);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(B64[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B64[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Whether `s` has the shape of one of our tokens (so junk never reaches the store).
fn token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The stored key of a session token: SHA-256, lowercase hex.
pub(crate) fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Equality that takes the same time wherever the first difference is.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` when configured. `max_age`
/// `None`: a browser-session cookie; `Some(0)`: delete it.
pub(crate) fn set_cookie(
    settings: &ConsoleSettings,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
) -> HeaderValue {
    let mut v = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        v.push_str(&format!("; Max-Age={age}"));
    }
    if settings.secure_cookies {
        v.push_str("; Secure");
    }
    HeaderValue::from_str(&v).expect("cookie values are token-shaped")
}

/// Why a session cookie did not give a signed-in user.
enum Resolved {
    /// A cookie for a session that ended or never existed: anonymous, clear the cookie.
    Ended,
    /// A live session.
    Live(SignedIn),
}

async fn resolve(state: &AppState, token: &str) -> Result<Resolved, StoreError> {
    if !token_shaped(token) {
        return Ok(Resolved::Ended);
    }
    let store = state.store();
    let id_hash = hash_token(token);
    let Some(session) = store.get_session(&id_hash).await? else {
        return Ok(Resolved::Ended);
    };
    let now = state.now();
    let settings = state.console();
    let idle = now.unix_millis() - session.last_seen.unix_millis();
    let why = if now >= session.expires_at {
        Some("its 12 h limit passed")
    } else if idle > millis(settings.idle_timeout) {
        Some("idle too long")
    } else {
        None
    };
    if let Some(why) = why {
        tracing::info!(user = %session.user, why, "console session ended");
        store.delete_session(&id_hash).await?;
        return Ok(Resolved::Ended);
    }
    let user = match store.get_user(&session.user).await? {
        Some(u) if !u.disabled => u,
        _ => {
            tracing::info!(user = %session.user, "console session ended: user disabled or gone");
            store.delete_session(&id_hash).await?;
            return Ok(Resolved::Ended);
        }
    };
    if idle >= TOUCH_EVERY_MS {
        match store.touch_session(&id_hash, now).await {
            Ok(()) => {}
            // Signed out by a concurrent request: this one is no longer signed in.
            Err(StoreError::NotFound(_)) => return Ok(Resolved::Ended),
            Err(e) => return Err(e),
        }
    }
    Ok(Resolved::Live(SignedIn {
        id_hash,
        user: user.name,
        role: user.role,
        csrf: session.csrf,
    }))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request's path belongs to the JSON side (its refusals are JSON).
pub(crate) fn is_json_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/healthz" || path == "/metrics"
}

/// The session layer; see the module documentation. Also where page failures get their page
/// (`pages::finish`), in the request's language and with its user's navigation.
pub(crate) async fn middleware(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let here = crate::pages::Here::of(&req);
    let (response, signed_in) = authenticate(&state, req, next).await;
    crate::pages::finish(response, &here, signed_in.as_ref())
}

async fn authenticate(state: &AppState, req: Request, next: Next) -> (Response, Option<SignedIn>) {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return (run(next, req, None).await, None);
    }
    let Some(token) = cookie(req.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return (run(next, req, None).await, None);
    };
    let json = is_json_path(req.uri().path());
    let signed_in = match resolve(state, &token).await {
        Ok(Resolved::Ended) => {
            let mut res = run(next, req, None).await;
            // Clear the dead cookie, unless the answer sets a new one (a sign-in).
            let prefix = format!("{SESSION_COOKIE}=");
            let sets_one = res
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
            if !sets_one {
                res.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(state.console(), SESSION_COOKIE, "", "/", Some(0)),
                );
            }
            return (res, None);
        }
        Ok(Resolved::Live(s)) => s,
        Err(e) => {
            let res = if json {
                ApiError::from(e).into_response()
            } else {
                crate::pages::failure_from_store(e)
            };
            return (res, None);
        }
    };

    let mut req = req;
    // `POST /signin` carries the sign-in form's own token instead (a signed-in browser that
    // arrived from another site sees the form: SameSite=Strict kept the cookie back then).
    let signin = req.method() == axum::http::Method::POST && req.uri().path() == "/signin";
    if !is_safe(req.method()) && !signin {
        let (ok, rebuilt) = csrf_ok(req, &signed_in.csrf).await;
        req = match rebuilt {
            Ok(r) => r,
            Err(too_large) => return (too_large, Some(signed_in)),
        };
        if !ok {
            tracing::info!(user = %signed_in.user, "request refused: CSRF token missing or wrong");
            let res = if json {
                ApiError::Forbidden("forbidden: CSRF token missing or wrong (X-CSRF-Token)")
                    .into_response()
            } else {
                crate::pages::failure(axum::http::StatusCode::FORBIDDEN, "error.csrf")
            };
            return (res, Some(signed_in));
        }
    }
    req.extensions_mut().insert(Identity::from_session(
        signed_in.user.clone(),
        signed_in.role,
    ));
    req.extensions_mut().insert(signed_in.clone());
    (run(next, req, Some(&signed_in)).await, Some(signed_in))
}

/// The rest of the stack, unless the page's area refuses `who` (`pages::area_guard`).
async fn run(next: Next, req: Request, who: Option<&SignedIn>) -> Response {
    match crate::pages::area_guard(&req, who) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// Whether the request carries `expected` as its CSRF token; gives the request back (its body
/// read and put back when it is a form), or the answer to send when the body is too large.
async fn csrf_ok(req: Request, expected: &str) -> (bool, Result<Request, Response>) {
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        let ok = v.to_str().is_ok_and(|v| same_secret(v, expected));
        return (ok, Ok(req));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return (false, Ok(req));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return (
                false,
                Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT }.into_response()),
            );
        }
    };
    let ok = form_field(&bytes, CSRF_FIELD).is_some_and(|v| same_secret(&v, expected));
    (ok, Ok(Request::from_parts(parts, Body::from(bytes))))
}

/// The first value of `name` in a urlencoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|&b| b == b'&')
        .filter_map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            Some((kv.next()?, kv.next().unwrap_or_default()))
        })
        .find(|(k, _)| form_decode(k).as_deref() == Some(name))
        .and_then(|(_, v)| form_decode(v))
}

/// `application/x-www-form-urlencoded` decoding of one name or value (`+` is a space).
fn form_decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A fresh session for `user`, stored; returns the cookie's token and the CSRF token.
pub(crate) async fn create(
    state: &AppState,
    user: &str,
    source: Option<String>,
) -> Result<(String, String), StoreError> {
    let token = random_token();
    let csrf = random_token();
    let now = state.now();
    state
        .store()
        .create_session(&hotline_store::NewSession {
            id_hash: hash_token(&token),
            user: user.to_owned(),
            csrf: csrf.clone(),
            created_at: now,
            last_seen: now,
            expires_at: now.add_millis(millis(state.console().max_age)),
            source,
        })
        .await?;
    Ok((token, csrf))
}

/// Deletes the session of `token` (if any), e.g. the one a browser had before a new sign-in.
pub(crate) async fn end(state: &AppState, token: &str) -> Result<(), StoreError> {
    if token_shaped(token) {
        state.store().delete_session(&hash_token(token)).await?;
    }
    Ok(())
}

/// Deletes the sessions that ended (idle or past their limit): called on each sign-in, which
/// is often enough to keep the table small.
pub(crate) async fn purge(state: &AppState) {
    let now = state.now();
    let idle_before = now.add_millis(-millis(state.console().idle_timeout));
    match state.store().purge_sessions(idle_before, now).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(sessions = n, "ended console sessions purged"),
        Err(e) => tracing::warn!(error = %e, "purging ended console sessions failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = random_token();
        assert!(token_shaped(&t), "{t}");
        assert_ne!(t, random_token());
        assert_eq!(base64url(b"\xff\xff"), "__8");
        assert_eq!(hash_token("abc").len(), 64);
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; lang=en"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("hotline_session=xyz"),
        );
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "hotline_session"), Some("xyz"));
        assert_eq!(cookie(&h, "nope"), None);
        let s = ConsoleSettings::default();
        assert_eq!(
            set_cookie(&s, "n", "v", "/", None),
            "n=v; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let s = ConsoleSettings {
            secure_cookies: false,
            ..s
        };
        assert_eq!(
            set_cookie(&s, "n", "", "/", Some(0)),
            "n=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn secrets_and_forms() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert_eq!(
            form_field(b"user=a&csrf=x%2By&csrf=z", "csrf").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_field(b"user=a", "csrf"), None);
    }
}
