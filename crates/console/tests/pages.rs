//! The console pages' foundation: sign-in, sessions (idle and absolute limits on a test clock),
//! refusal after repeated failures, CSRF on pages and on /api by cookie, role guards, the home
//! redirect, the language switch and the shared script.

#[macro_use]
mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, header};
use common::{Browser, Harness, TestClock, password};
use hotline_console::ConsoleSettings;
use hotline_store::{AuditFilter, UserUpdate};
use serde_json::json;

const MIN: i64 = 60_000;

fn settings(secure: bool) -> ConsoleSettings {
    ConsoleSettings {
        secure_cookies: secure,
        ..ConsoleSettings::default()
    }
}

async fn browser(h: &Harness) -> (Browser, std::sync::Arc<TestClock>) {
    h.set_passwords().await;
    let clock = TestClock::new();
    (
        Browser::new(h.console(settings(false), clock.clone())),
        clock,
    )
}

fn session_cookie(a: &common::Answer) -> String {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("hotline_session="))
        .expect("a session cookie")
}

async fn sign_in_sets_a_strict_http_only_cookie(h: Harness) {
    let (mut b, _) = browser(&h).await;
    let a = b.sign_in("sup", &password("sup"), None).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/recordings"));
    let c = session_cookie(&a);
    let token = c
        .strip_prefix("hotline_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    assert_eq!(token.len(), 43, "256 bits in base64url: {c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(attr), "{c}");
    }
    assert!(!c.contains("Secure"), "not configured: {c}");
    // Only the hash is stored: the token itself is no session key.
    assert!(h.store.get_session(token).await.unwrap().is_none());
    let hash = hex_sha256(token);
    let s = h.store.get_session(&hash).await.unwrap().expect("stored");
    assert_eq!(s.user, "sup");
    assert_eq!(s.created_at, common::at(0));
    assert_eq!(s.expires_at, common::at(12 * 60 * MIN));
    // The pages know who this is; so does the API.
    let me = b.get("/me").await;
    assert_eq!(me.status, 200);
    assert!(me.text().contains("sup"), "{}", me.text());
    let api = b.get("/api/recordings").await;
    assert_eq!(api.status, 200, "{}", api.text());
    // Signed in and audited.
    let audit = h.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "console.signin" && e.user.as_deref() == Some("sup")),
        "{audit:?}"
    );

    // Secure when configured.
    let mut b = Browser::new(h.console(settings(true), TestClock::new()));
    let a = b.sign_in("sup", &password("sup"), None).await;
    assert_eq!(a.status, 303);
    assert!(session_cookie(&a).contains("; Secure"));
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn every_failure_gets_the_same_answer(h: Harness) {
    let (mut b, _) = browser(&h).await;
    let mut answers = Vec::new();
    for (user, pw) in [
        ("ana", "not-her-password"),
        ("nobody", "whatever-password"),
        ("dora", password("dora").as_str()), // disabled, right password
        ("", "x"),
    ] {
        let a = b.sign_in(user, pw, None).await;
        assert_eq!(a.status, 401, "{user}: {}", a.text());
        assert!(!b.cookies.contains_key("hotline_session"), "{user}");
        let text = a.text();
        assert!(text.contains("Usuario o contraseña incorrectos."), "{text}");
        // The same page but for the name typed back and the form token.
        let token = common::hidden_field(&text, "csrf").unwrap();
        answers.push(text.replace(&token, "T").replace(
            &format!("name=\"user\" value=\"{user}\""),
            "name=\"user\" U",
        ));
    }
    for a in &answers[1..] {
        assert_eq!(a, &answers[0]);
    }
}

async fn five_failures_lock_the_name_then_the_address(h: Harness) {
    let (mut b, clock) = browser(&h).await;
    b.from = Some("192.0.2.1:40000".parse().unwrap());
    for _ in 0..5 {
        let a = b.sign_in("ana", "wrong-password", None).await;
        assert_eq!(a.status, 401);
    }
    // From another address, even the right password is refused for ana.
    b.from = Some("192.0.2.2:40000".parse().unwrap());
    let a = b.sign_in("ana", &password("ana"), None).await;
    assert_eq!(a.status, 429, "{}", a.text());
    assert!(a.text().contains("Espere 10 minutos"), "{}", a.text());
    assert!(!b.cookies.contains_key("hotline_session"));
    // ...but not for beto from there.
    b.sign_in_as("beto").await;
    b.cookies.remove("hotline_session");
    // The first address is locked for everyone.
    b.from = Some("192.0.2.1:40001".parse().unwrap());
    let a = b.sign_in("sup", &password("sup"), None).await;
    assert_eq!(a.status, 429);
    // Ten minutes later, both are open again.
    clock.advance(10 * MIN);
    b.sign_in_as("ana").await;

    // Five names from one address lock the address.
    let mut b = Browser::new(b.app.clone());
    b.from = Some("198.51.100.7:1".parse::<SocketAddr>().unwrap());
    for user in ["admin", "sup", "beto", "nobody", "ana"] {
        assert_eq!(b.sign_in(user, "wrong-password", None).await.status, 401);
    }
    assert_eq!(
        b.sign_in("admin", &password("admin"), None).await.status,
        429
    );
}

/// Behind a trusted reverse proxy the client is the `X-Forwarded-For` address: one client's
/// failures lock that client, not everyone behind the proxy; from anyone else the header is
/// not believed.
async fn a_trusted_proxy_names_the_client(h: Harness) {
    h.set_passwords().await;
    let settings = ConsoleSettings {
        secure_cookies: false,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..ConsoleSettings::default()
    };
    let app = h.console(settings, TestClock::new());
    let mut b = Browser::new(app.clone());
    b.from = Some("127.0.0.1:50000".parse().unwrap());
    b.forwarded_for = Some("203.0.113.9, 127.0.0.1".into());
    for user in ["admin", "sup", "beto", "nobody", "ana"] {
        assert_eq!(b.sign_in(user, "wrong-password", None).await.status, 401);
    }
    assert_eq!(b.sign_in("sup", &password("sup"), None).await.status, 429);
    // Another client through the same proxy is not locked out.
    let mut other = Browser::new(app.clone());
    other.from = Some("127.0.0.1:50001".parse().unwrap());
    other.forwarded_for = Some("203.0.113.10".into());
    other.sign_in_as("sup").await;
    let audit = h
        .store
        .list_audit(&AuditFilter {
            action: Some("console.signin".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e
            .source
            .as_deref()
            .is_some_and(|s| s.contains("203.0.113.10"))),
        "{audit:?}"
    );
    // From an untrusted peer the header is ignored: the peer's own address counts.
    let mut direct = Browser::new(app);
    direct.from = Some("198.51.100.1:40000".parse().unwrap());
    direct.forwarded_for = Some("203.0.113.9".into());
    direct.sign_in_as("ana").await;
}

/// A browser already signed in that gets the sign-in form (it came from another site, so the
/// SameSite=Strict cookie was held back) signs in again; the old session ends.
async fn signing_in_over_a_live_session_replaces_it(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("ana").await;
    let old = b.cookies["hotline_session"].clone();
    // The form, fetched without the cookie (a cross-site navigation), ...
    b.cookies.remove("hotline_session");
    let page = b.get("/signin").await;
    assert_eq!(page.status, 200);
    let token = common::hidden_field(&page.text(), "csrf").expect("the form's token");
    // ... then posted with it (same-site now): no session CSRF token is asked for.
    b.cookies.insert("hotline_session".into(), old.clone());
    let pw = password("ana");
    let a = b
        .post_form(
            "/signin",
            &[("user", "ana"), ("password", pw.as_str()), ("csrf", &token)],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_ne!(b.cookies["hotline_session"], old);
    assert!(
        h.store
            .get_session(&hex_sha256(&old))
            .await
            .unwrap()
            .is_none(),
        "the old session ended"
    );
    assert_eq!(b.get("/me").await.status, 200);
}

async fn sign_out_ends_the_session(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("ana").await;
    let old = b.cookies["hotline_session"].clone();
    let csrf = b.csrf().await;
    let a = b.post_form("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), Some("/signin"));
    assert!(!b.cookies.contains_key("hotline_session"), "cookie cleared");
    assert!(
        h.store
            .get_session(&hex_sha256(&old))
            .await
            .unwrap()
            .is_none()
    );
    // The old cookie, replayed, is nobody.
    b.cookies.insert("hotline_session".into(), old);
    let a = b.get("/me").await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), Some("/signin?next=%2Fme"));
    assert_eq!(
        b.get("/api/calls").await.error(401),
        "authentication required"
    );
}

async fn idle_sessions_end_after_15_minutes(h: Harness) {
    let (mut b, clock) = browser(&h).await;
    b.sign_in_as("ana").await;
    // Activity keeps it alive...
    for _ in 0..4 {
        clock.advance(14 * MIN);
        assert_eq!(b.get("/me").await.status, 200);
    }
    // ...idleness ends it.
    clock.advance(15 * MIN + 1000);
    let a = b.get("/me").await;
    assert_eq!(a.status, 303);
    assert!(a.location().unwrap().starts_with("/signin"));
    assert!(!b.cookies.contains_key("hotline_session"), "cookie cleared");

    // Signing in again with the dead cookie still in the browser gives a live session.
    b.sign_in_as("ana").await;
    let dead = b.cookies["hotline_session"].clone();
    clock.advance(20 * MIN);
    let form = b.get("/signin").await;
    let token = common::hidden_field(&form.text(), "csrf").unwrap();
    b.cookies.insert("hotline_session".into(), dead);
    let a = b
        .post_form(
            "/signin",
            &[
                ("user", "ana"),
                ("password", &password("ana")),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(a.status, 303);
    let set: Vec<_> = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| v.to_str().unwrap().starts_with("hotline_session="))
        .collect();
    assert_eq!(set.len(), 1, "only the new session's cookie: {set:?}");
    assert_eq!(b.get("/me").await.status, 200);
}

async fn sessions_end_after_12_hours_however_active(h: Harness) {
    let (mut b, clock) = browser(&h).await;
    b.sign_in_as("sup").await;
    for _ in 0..(12 * 6 - 1) {
        clock.advance(10 * MIN);
        assert_eq!(b.get("/me").await.status, 200);
    }
    clock.advance(10 * MIN);
    assert_eq!(b.get("/me").await.status, 303);
    assert_eq!(
        b.get("/api/recordings").await.error(401),
        "authentication required"
    );
}

async fn a_disabled_user_is_signed_out(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("beto").await;
    assert_eq!(b.get("/me").await.status, 200);
    h.store
        .update_user(
            "beto",
            &UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(b.get("/me").await.status, 303);
}

async fn form_posts_need_the_csrf_token(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("ana").await;
    let csrf = b.csrf().await;
    for fields in [
        vec![],
        vec![("csrf", "wrong")],
        vec![("other", csrf.as_str())],
    ] {
        let a = b.post_form("/signout", &fields).await;
        assert_eq!(a.status, 403, "{fields:?}");
        assert!(
            a.header("content-type").unwrap().starts_with("text/html"),
            "an error page"
        );
        assert!(a.text().contains("CSRF"), "{}", a.text());
    }
    assert_eq!(b.get("/me").await.status, 200, "still signed in");
    // The header works for forms too.
    let req = b
        .request(Method::POST, "/signout")
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    assert_eq!(b.send(req).await.status, 303);
}

async fn api_writes_by_cookie_need_the_csrf_header(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("sup").await;
    let csrf = b.csrf().await;
    let uri = format!("/api/recordings/{}", h.seed.rec_message);
    let patch = |b: &Browser, token: Option<&str>| {
        let mut r = b
            .request(Method::PATCH, &uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        r.body(Body::from(json!({"status": "reviewed"}).to_string()))
            .unwrap()
    };
    let a = b.send(patch(&b, None)).await;
    assert!(a.error(403).contains("CSRF"));
    let a = b.send(patch(&b, Some("wrong"))).await;
    assert!(a.error(403).contains("CSRF"));
    let a = b.send(patch(&b, Some(&csrf))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["status"], "reviewed");
    // A bearer token needs none (and the cookie is not looked at).
    let a = h
        .send_json(Method::PATCH, &uri, Some("sup"), &json!({"status": "new"}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // The audio player streams with the cookie, audited as the session's user.
    let a = b
        .get(&format!("/api/recordings/{}/audio", h.seed.rec_message))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), h.seed.message_wav.len());
    let audit = h
        .store
        .list_audit(&AuditFilter {
            recording_id: Some(h.seed.rec_message.clone()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "recording.audio" && e.user.as_deref() == Some("sup")),
        "{audit:?}"
    );
}

async fn pages_are_guarded_by_role(h: Harness) {
    let (mut b, _) = browser(&h).await;
    // Anonymous: to sign-in, coming back after.
    for (uri, next) in [
        ("/recordings", "%2Frecordings"),
        ("/me", "%2Fme"),
        ("/admin/users?x=1", "%2Fadmin%2Fusers%3Fx%3D1"),
    ] {
        let a = b.get(uri).await;
        assert_eq!(a.status, 303, "{uri}");
        assert_eq!(a.location(), Some(format!("/signin?next={next}").as_str()));
    }
    assert_eq!(b.get("/").await.location(), Some("/signin"));
    // An operator on a supervisors' page: a 403 page, in the navigation only what she may open.
    b.sign_in_as("ana").await;
    for uri in [
        "/recordings",
        "/recordings/x",
        "/audit",
        "/board",
        "/admin/users",
    ] {
        let a = b.get(uri).await;
        assert_eq!(a.status, 403, "{uri}");
        let text = a.text();
        assert!(text.contains("No tiene permiso"), "{text}");
        assert!(text.contains("href=\"/operator\""), "{text}");
        assert!(!text.contains("href=\"/recordings\""), "{text}");
    }
    // A supervisor passes the guard of the supervisors' pages, not the admins'.
    let mut b = Browser::new(b.app.clone());
    b.sign_in_as("sup").await;
    let a = b.get("/recordings").await;
    assert!(a.status != 403 && a.status != 303, "{}", a.status);
    assert_eq!(b.get("/admin/users").await.status, 403);
    // Anyone's own desk (no status of their own for a supervisor).
    assert_eq!(b.get("/operator").await.status, 200);
}

async fn home_redirects_by_role(h: Harness) {
    let (b, _) = browser(&h).await;
    for (user, home) in [
        ("ana", "/operator"),
        ("sup", "/recordings"),
        ("admin", "/admin/users"),
    ] {
        let mut b = Browser::new(b.app.clone());
        let a = b.sign_in(user, &password(user), None).await;
        assert_eq!(a.location(), Some(home), "{user}");
        let a = b.get("/").await;
        assert_eq!(a.status, 303);
        assert_eq!(a.location(), Some(home), "{user}");
        // Signed in, the sign-in page sends them on.
        assert_eq!(b.get("/signin").await.location(), Some(home));
    }
}

async fn sign_in_goes_back_to_local_pages_only(h: Harness) {
    let (b, _) = browser(&h).await;
    for (next, to) in [
        ("/me", "/me"),
        ("//evil.example/", "/operator"),
        ("https://evil.example/", "/operator"),
        ("/\\evil.example", "/operator"),
    ] {
        let mut b = Browser::new(b.app.clone());
        let a = b.sign_in("ana", &password("ana"), Some(next)).await;
        assert_eq!(a.status, 303);
        assert_eq!(a.location(), Some(to), "{next}");
    }
}

async fn the_sign_in_form_needs_its_own_token(h: Harness) {
    let (mut b, _) = browser(&h).await;
    // A form posted from elsewhere: no form cookie, or a token that is not its own.
    let a = b
        .post_form(
            "/signin",
            &[
                ("user", "ana"),
                ("password", &password("ana")),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.text());
    assert!(!b.cookies.contains_key("hotline_session"));
    // The refusal came with a fresh form; it works.
    let token = common::hidden_field(&a.text(), "csrf").unwrap();
    let a = b
        .post_form(
            "/signin",
            &[
                ("user", "ana"),
                ("password", &password("ana")),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
}

async fn language_switch_and_pages_in_english(h: Harness) {
    let (mut b, _) = browser(&h).await;
    let a = b.get("/signin").await;
    assert!(a.text().contains("<html lang=\"es\""));
    assert!(a.text().contains("Contraseña"));
    let a = b.get("/lang/en?back=%2Fsignin").await;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), Some("/signin"));
    assert_eq!(b.cookies.get("lang").map(String::as_str), Some("en"));
    let a = b.get("/signin").await;
    assert!(a.text().contains("<html lang=\"en\""));
    assert!(a.text().contains("Password"));
    // Only back to this site.
    for back in ["%2F%2Fevil.example", "https%3A%2F%2Fevil.example", ""] {
        let a = b.get(&format!("/lang/es?back={back}")).await;
        assert_eq!(a.location(), Some("/"), "{back}");
    }
    assert_eq!(b.get("/lang/fr").await.status, 404);
}

async fn pages_are_private_and_the_script_is_cached(h: Harness) {
    let (mut b, _) = browser(&h).await;
    b.sign_in_as("ana").await;
    let a = b.get("/me").await;
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let text = a.text();
    let src = text
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(src.starts_with("/static/console."), "{src}");
    let js = b.get(&src).await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("cache-control")
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(js.text().contains("X-CSRF-Token"));
    assert_eq!(b.get("/static/console.old.js").await.status, 404);
    // Unknown pages are pages; unknown /api routes stay JSON.
    let a = b.get("/nothing-here").await;
    assert_eq!(a.status, 404);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(b.get("/api/nothing").await.error(404), "no such route");
}

both!(
    sign_in_sets_a_strict_http_only_cookie,
    every_failure_gets_the_same_answer,
    five_failures_lock_the_name_then_the_address,
    a_trusted_proxy_names_the_client,
    signing_in_over_a_live_session_replaces_it,
    sign_out_ends_the_session,
    idle_sessions_end_after_15_minutes,
    sessions_end_after_12_hours_however_active,
    a_disabled_user_is_signed_out,
    form_posts_need_the_csrf_token,
    api_writes_by_cookie_need_the_csrf_header,
    pages_are_guarded_by_role,
    home_redirects_by_role,
    sign_in_goes_back_to_local_pages_only,
    the_sign_in_form_needs_its_own_token,
    language_switch_and_pages_in_english,
    pages_are_private_and_the_script_is_cached,
);
