//! `GET/POST /signin`, `POST /signout`.
//!
//! - The password is checked with argon2 against the user's stored hash. Every failure (unknown
//!   user, wrong password, disabled account, malformed stored hash) answers the same page
//!   ("wrong user name or password", 401) after the same work: argon2 always runs, against a
//!   dummy hash of the same parameters when there is no usable one. The log says which.
//! - After 5 failures in 10 minutes for one user name or from one source IP, sign-ins for that
//!   name or from that IP are refused for 10 minutes (429, a page that says so) without
//!   checking the password, even a right one. In memory: a restart forgets it.
//! - The sign-in form is protected from cross-site submission (login CSRF) by a token in a
//!   short-lived cookie of its own (`hotline_signin`, path `/signin`) that the form echoes.
//! - A successful sign-in ends the browser's previous session, if any, creates a new one
//!   (fresh token: no fixation), sets `hotline_session` and goes to `next` (a local path) or
//!   the role's start page. The audit log gets `console.signin` / `console.signout` lines.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::{NewAuditEntry, new_id};
use serde::Deserialize;

use super::{Lang, Layout, home_of, local_path, see_other};
use crate::extract::ClientAddr;
use crate::session::{self, SESSION_COOKIE, SignedIn, cookie, same_secret, set_cookie};
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/signin", form),
        Route::post("/signin", submit),
        Route::post("/signout", signout),
    ]
}

/// The sign-in form's own anti-forgery cookie.
const FORM_COOKIE: &str = "hotline_signin";
/// How long a sign-in form stays valid (s).
const FORM_MAX_AGE: u64 = 3600;

/// Failures that lock a user name or a source IP…
const MAX_FAILURES: usize = 5;
/// …within this window (ms)…
const WINDOW_MS: i64 = 10 * 60 * 1000;
/// …for this long (ms).
const LOCKOUT_MS: i64 = 10 * 60 * 1000;
/// Above this many tracked names and addresses, the stale ones are dropped.
const MAX_TRACKED: usize = 10_000;
/// Longest user name looked up (longer ones are unknown, after the same work).
const MAX_NAME: usize = 64;

#[derive(Debug, Default)]
struct Failures {
    /// Failure times (ms) within the window.
    recent: VecDeque<i64>,
    /// Refused until then (ms).
    locked_until: i64,
}

/// Failed sign-ins by user name and by source IP, in memory.
#[derive(Debug, Default)]
pub(crate) struct SigninLimiter {
    keys: Mutex<HashMap<String, Failures>>,
    /// Password checks running now.
    verifying: std::sync::atomic::AtomicUsize,
}

impl SigninLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any of `keys` is locked at `now` (ms).
    fn locked(&self, keys: &[String], now: i64) -> bool {
        let map = self.lock();
        keys.iter()
            .any(|k| map.get(k).is_some_and(|f| f.locked_until > now))
    }

    /// An attempt starts: refused (false) if a key is locked; else counted at once as a
    /// failure of every key (so parallel attempts cannot all pass the check before the first
    /// password hash is done), and taken back by [`SigninLimiter::succeeded`].
    fn begin(&self, keys: &[String], now: i64) -> bool {
        if self.locked(keys, now) {
            return false;
        }
        self.failed(keys, now);
        true
    }

    /// Counts a failure for each of `keys`; the fifth within the window locks the key.
    fn failed(&self, keys: &[String], now: i64) {
        let mut map = self.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, f| {
                f.locked_until > now || f.recent.back().is_some_and(|&t| t > now - WINDOW_MS)
            });
        }
        for key in keys {
            let f = map.entry(key.clone()).or_default();
            f.recent.push_back(now);
            while f.recent.front().is_some_and(|&t| t <= now - WINDOW_MS) {
                f.recent.pop_front();
            }
            if f.recent.len() >= MAX_FAILURES {
                f.recent.clear();
                f.locked_until = now + LOCKOUT_MS;
                tracing::warn!(key = %key, "sign-in locked for 10 minutes after 5 failures");
            }
        }
    }

    /// Forgets the failures of `key` (the user name, after a right password).
    fn succeeded(&self, keys: &[String]) {
        let mut map = self.lock();
        // The user's record goes; the address keeps its other attempts but not this one.
        if let Some(user) = keys.first() {
            map.remove(user);
        }
        for key in keys.iter().skip(1) {
            if let Some(f) = map.get_mut(key) {
                f.recent.pop_back();
            }
        }
    }

    /// A password check may start: at most [`MAX_VERIFYING`] run at once (each argon2 check
    /// takes about 19 MiB and a core for a while), so a flood of sign-ins cannot starve the
    /// calls that share the process. The permit ends with the returned guard.
    fn verifying(&self) -> Option<VerifyPermit<'_>> {
        let n = self
            .verifying
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if n >= MAX_VERIFYING {
            self.verifying
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return None;
        }
        Some(VerifyPermit(&self.verifying))
    }
}

/// Password checks running at once, at most.
const MAX_VERIFYING: usize = 4;

/// One running password check (see [`SigninLimiter::verifying`]).
struct VerifyPermit<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for VerifyPermit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "signin.html")]
struct SigninPage {
    layout: Layout,
    /// The form's anti-forgery token.
    token: String,
    /// Where to go after.
    next: String,
    /// The name typed (kept after a failure).
    user: String,
    /// The i18n key of the message to show.
    message: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The page with a fresh form token (and its cookie).
fn page(
    state: &AppState,
    status: StatusCode,
    lang: Lang,
    next: &str,
    user: &str,
    message: Option<&'static str>,
) -> Response {
    let token = session::random_token();
    let cookie = set_cookie(
        state.console(),
        FORM_COOKIE,
        &token,
        "/signin",
        Some(FORM_MAX_AGE),
    );
    let page = SigninPage {
        layout: Layout {
            lang,
            title: "signin.title",
            user: None,
            here: if next.is_empty() {
                "/signin".to_owned()
            } else {
                format!("/signin?next={}", super::urlencode(next))
            },
            zone: String::new(),
        },
        token,
        next: next.to_owned(),
        user: user.to_owned(),
        message,
    };
    let mut res = (status, page).into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

/// `GET /signin[?next=/path]`: the form; a signed-in user goes on at once.
async fn form(
    State(state): State<AppState>,
    signed_in: Option<Extension<SignedIn>>,
    headers: HeaderMap,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = query
        .as_ref()
        .ok()
        .and_then(|Query(q)| q.next.as_deref())
        .and_then(local_path)
        .unwrap_or("");
    if let Some(Extension(s)) = signed_in {
        return see_other(if next.is_empty() {
            home_of(s.role)
        } else {
            next
        });
    }
    page(&state, StatusCode::OK, Lang::of(&headers), next, "", None)
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// The client's IP (without the port), for the limiter.
fn ip_of(addr: &str) -> &str {
    match addr.rfind(':') {
        // `ip:port` or `[v6]:port`
        Some(i) if addr[i + 1..].bytes().all(|c| c.is_ascii_digit()) => {
            addr[..i].trim_start_matches('[').trim_end_matches(']')
        }
        _ => addr,
    }
}

/// `POST /signin`: user name and password.
async fn submit(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<SigninForm>, FormRejection>,
) -> Response {
    let lang = Lang::of(&headers);
    let Ok(Form(form)) = form else {
        return super::failure(StatusCode::BAD_REQUEST, "error.400");
    };
    let next = local_path(&form.next).unwrap_or("");
    let name = form.user.trim();

    // The form must come from our own sign-in page.
    let form_ok =
        cookie(&headers, FORM_COOKIE).is_some_and(|c| !c.is_empty() && same_secret(c, &form.csrf));
    if !form_ok {
        tracing::info!("sign-in refused: form token missing or wrong");
        return page(
            &state,
            StatusCode::FORBIDDEN,
            lang,
            next,
            name,
            Some("signin.expired"),
        );
    }

    let now = state.now().unix_millis();
    let keys = [
        format!(
            "user:{}",
            name.chars()
                .take(MAX_NAME)
                .collect::<String>()
                .to_lowercase()
        ),
        format!("ip:{}", ip_of(&source)),
    ];
    let limiter = state.signin_limiter();
    let Some(_permit) = limiter.verifying() else {
        tracing::warn!(source = %source, "sign-in refused: too many password checks at once");
        return page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            lang,
            next,
            name,
            Some("signin.busy"),
        );
    };
    if !limiter.begin(&keys, now) {
        tracing::warn!(user = %name, source = %source, "sign-in refused: locked after repeated failures");
        return page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            lang,
            next,
            name,
            Some("signin.locked"),
        );
    }

    let user = if name.is_empty() || name.len() > MAX_NAME {
        None
    } else {
        match state.store().get_user(name).await {
            Ok(u) => u,
            Err(e) => return super::failure_from_store(e),
        }
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = form.password;
    let verified = tokio::task::spawn_blocking(move || verify(&password, stored.as_deref()))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(u) if verified && !u.disabled => u,
        other => {
            let why = match other {
                None => "unknown user",
                Some(u) if u.disabled => "user disabled",
                Some(_) => "wrong password",
            };
            tracing::info!(user = %name, source = %source, why, "sign-in failed");
            return page(
                &state,
                StatusCode::UNAUTHORIZED,
                lang,
                next,
                name,
                Some("signin.wrong"),
            );
        }
    };
    limiter.succeeded(&keys);

    session::purge(&state).await;
    if let Some(old) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = session::end(&state, old).await
    {
        tracing::warn!(error = %e, "the previous session could not be ended");
    }
    let (token, _csrf) = match session::create(&state, &user.name, Some(source.clone())).await {
        Ok(t) => t,
        Err(e) => return super::failure_from_store(e),
    };
    audit(&state, &user.name, "console.signin", &source).await;
    tracing::info!(user = %user.name, role = %user.role, source = %source, "signed in");

    let mut res = see_other(if next.is_empty() {
        home_of(user.role)
    } else {
        next
    });
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(state.console(), SESSION_COOKIE, &token, "/", None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(state.console(), FORM_COOKIE, "", "/signin", Some(0)),
    );
    res
}

/// `POST /signout`: ends the session (the session layer checked its CSRF token).
async fn signout(
    State(state): State<AppState>,
    signed_in: Option<Extension<SignedIn>>,
    ClientAddr(source): ClientAddr,
) -> Response {
    if let Some(Extension(s)) = signed_in {
        if let Err(e) = state.store().delete_session(&s.id_hash).await {
            return super::failure_from_store(e);
        }
        audit(&state, &s.user, "console.signout", &source).await;
        tracing::info!(user = %s.user, "signed out");
    }
    let mut res = see_other("/signin");
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state.console(), SESSION_COOKIE, "", "/", Some(0)),
    );
    res
}

/// A sign-in or sign-out line in the audit log; best effort (the log says when it fails).
async fn audit(state: &AppState, user: &str, action: &str, source: &str) {
    let entry = NewAuditEntry {
        id: new_id(),
        at: state.now(),
        user: Some(user.to_owned()),
        action: action.to_owned(),
        recording_id: None,
        source: Some(source.to_owned()),
        detail: String::new(),
    };
    if let Err(e) = state.store().append_audit(&entry).await {
        tracing::warn!(error = %e, user, action, "audit line not written");
    }
}

/// Whether `password` matches the stored argon2 hash. Without a usable hash, argon2 runs anyway
/// against a dummy one, so every failure costs the same.
fn verify(password: &str, stored: Option<&str>) -> bool {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    let argon = Argon2::default();
    match stored.and_then(|s| PasswordHash::new(s).ok()) {
        Some(hash) => argon.verify_password(password.as_bytes(), &hash).is_ok(),
        None => {
            let _ = argon.verify_password(password.as_bytes(), dummy_hash());
            false
        }
    }
}

/// Makes the dummy hash now, off the request path (else the first unknown user's sign-in
/// would take one hash longer than the others).
pub(crate) fn warm_up() {
    std::thread::spawn(|| {
        dummy_hash();
    });
}

/// A hash of a random password with the parameters `hotline user add` uses.
fn dummy_hash() -> &'static argon2::PasswordHash {
    use argon2::PasswordHasher;
    static DUMMY: OnceLock<argon2::PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        argon2::Argon2::default()
            .hash_password(session::random_token().as_bytes())
            .expect("argon2 with default parameters")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter() {
        let l = SigninLimiter::default();
        let k = ["user:ana".to_owned(), "ip:192.0.2.1".to_owned()];
        for i in 0..4 {
            l.failed(&k, i * 1000);
            assert!(!l.locked(&k, i * 1000));
        }
        l.failed(&k, 5000);
        assert!(l.locked(&k, 5000));
        assert!(l.locked(&["ip:192.0.2.1".to_owned()], 5000));
        assert!(l.locked(&k, 5000 + LOCKOUT_MS - 1));
        assert!(!l.locked(&k, 5000 + LOCKOUT_MS));
        // Failures older than the window do not count.
        let k2 = ["user:beto".to_owned()];
        for i in 0..4 {
            l.failed(&k2, i);
        }
        l.failed(&k2, WINDOW_MS + 10);
        assert!(!l.locked(&k2, WINDOW_MS + 10));
        l.succeeded(&k2);
        assert!(l.lock().get("user:beto").is_none());
    }

    #[test]
    fn attempts_count_before_the_check_ends_and_success_takes_one_back() {
        let l = SigninLimiter::default();
        let k = ["user:ana".to_owned(), "ip:192.0.2.7".to_owned()];
        // Five attempts begun at once (none finished): the sixth is refused.
        for _ in 0..5 {
            assert!(l.begin(&k, 0));
        }
        assert!(!l.begin(&k, 0));
        // A success takes its own attempt back from the address.
        let l = SigninLimiter::default();
        for _ in 0..10 {
            assert!(l.begin(&k, 0));
            l.succeeded(&k);
        }
        assert!(!l.locked(&k, 0));
        // At most MAX_VERIFYING password checks at once.
        let permits: Vec<_> = (0..MAX_VERIFYING).map(|_| l.verifying().unwrap()).collect();
        assert!(l.verifying().is_none());
        drop(permits);
        assert!(l.verifying().is_some());
    }

    #[test]
    fn ips() {
        assert_eq!(ip_of("192.0.2.1:5060"), "192.0.2.1");
        assert_eq!(ip_of("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(ip_of("unknown"), "unknown");
    }

    #[test]
    fn passwords() {
        use argon2::PasswordHasher;
        let params = argon2::Params::new(8, 1, 1, None).unwrap();
        let hash = argon2::Argon2::from(params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(verify("correct horse", Some(&hash)));
        assert!(!verify("wrong", Some(&hash)));
        assert!(!verify("x", Some("not a hash")));
        assert!(!verify("x", None));
    }
}
