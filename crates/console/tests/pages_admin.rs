//! The admin pages (`/admin/users`): only admins, CSRF on every form, adding users (the
//! generated password signs in, the SIP HA1s are the shared ones), refusals (400 naming the
//! field, 409 for a taken name, 404 for an unknown user), role and languages, disabling (the
//! user's sessions end), password reset, API tokens (created, used as Bearer, revoked), the
//! admin's own account, and the audit lines. On SQLite and PostgreSQL.

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{Answer, Browser, Harness, TestClock, password};
use hotline_console::ConsoleSettings;
use hotline_console::accounts::sip_ha1s;
use hotline_store::{AuditFilter, Role};

/// The SIP realm the tests configure (not the default, to see it is the one used).
const REALM: &str = "voz.example.pe";

fn settings() -> ConsoleSettings {
    ConsoleSettings {
        secure_cookies: false,
        sip_domain: REALM.to_owned(),
        ..ConsoleSettings::default()
    }
}

/// The app (one state shared by every browser of the test) and a browser signed in as `who`.
async fn signed_in(h: &Harness, who: &str) -> Browser {
    h.set_passwords().await;
    let mut b = Browser::new(h.console(settings(), TestClock::new()));
    b.sign_in_as(who).await;
    b
}

/// Another browser on the same app, signed in as `who` (with its test password).
async fn another(b: &Browser, who: &str) -> Browser {
    let mut other = Browser::new(b.app.clone());
    other.sign_in_as(who).await;
    other
}

/// The secret shown once on a page (`<code class="secret" …>`).
fn secret_of(a: &Answer) -> String {
    let text = a.text();
    let start = text
        .find("id=\"secret\">")
        .unwrap_or_else(|| panic!("no secret on the page: {text}"))
        + "id=\"secret\">".len();
    let len = text[start..].find("</code>").unwrap();
    text[start..start + len].to_owned()
}

async fn audit_actions(h: &Harness, action: &str) -> Vec<hotline_store::AuditEntry> {
    h.store
        .list_audit(&AuditFilter {
            action: Some(action.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

/// `form` plus the CSRF field.
fn with_csrf<'a>(csrf: &'a str, form: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = form.to_vec();
    v.push(("csrf", csrf));
    v
}

/// Every form of the admin pages, with valid fields (for the guard and CSRF tests).
const FORMS: &[(&str, &[(&str, &str)])] = &[
    (
        "/admin/users",
        &[
            ("name", "zoe"),
            ("role", "admin"),
            ("lang_es", "on"),
            ("password", "zoe-password-1"),
        ],
    ),
    ("/admin/users/ana", &[("role", "admin"), ("lang_es", "on")]),
    ("/admin/users/ana/disable", &[]),
    ("/admin/users/dora/enable", &[]),
    ("/admin/users/ana/password", &[]),
    ("/admin/users/ana/tokens", &[("label", "x")]),
    (
        "/admin/users/ana/tokens/revoke",
        &[(
            "token",
            "0000000000000000000000000000000000000000000000000000000000000000",
        )],
    ),
];

/// Nothing of what [`FORMS`] would do happened.
async fn nothing_changed(h: &Harness) {
    assert!(h.store.get_user("zoe").await.unwrap().is_none());
    let ana = h.store.get_user("ana").await.unwrap().unwrap();
    assert_eq!(ana.role, Role::Operator);
    assert!(!ana.disabled);
    assert_eq!(ana.sip_ha1_md5, None, "password not reset");
    assert_eq!(h.store.list_api_tokens("ana").await.unwrap().len(), 1);
    assert!(h.store.get_user("dora").await.unwrap().unwrap().disabled);
    let audit = h.store.list_audit(&AuditFilter::default()).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|e| !e.action.starts_with("user.") && !e.action.starts_with("token.")),
        "{audit:?}"
    );
}

async fn only_admins_open_the_admin_pages(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    // Anonymous: to sign-in.
    let mut anon = Browser::new(b.app.clone());
    for uri in ["/admin/users", "/admin/users/ana"] {
        let a = anon.get(uri).await;
        assert_eq!(a.status, 303, "{uri}");
        assert!(a.location().unwrap().starts_with("/signin?next="), "{uri}");
    }
    for (uri, fields) in FORMS {
        let a = anon.post_form(uri, fields).await;
        assert_eq!(a.status, 303, "{uri}");
        assert_eq!(a.location(), Some("/signin"), "{uri}");
    }
    // Operators and supervisors: 403, even with their session's CSRF token.
    for who in ["ana", "sup"] {
        let mut other = another(&b, who).await;
        let csrf = other.csrf().await;
        for uri in ["/admin/users", "/admin/users/ana", "/admin/users/nobody"] {
            let a = other.get(uri).await;
            assert_eq!(a.status, 403, "{who} {uri}");
            assert!(a.text().contains("No tiene permiso"), "{}", a.text());
        }
        for (uri, fields) in FORMS {
            let a = other.post_form(uri, &with_csrf(&csrf, fields)).await;
            assert_eq!(a.status, 403, "{who} {uri}");
        }
    }
    // A bearer token, even an admin's, is no page user.
    let req = Request::builder()
        .uri("/admin/users")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", h.token("admin")),
        )
        .body(Body::empty())
        .unwrap();
    let a = Harness::send_to(b.app.clone(), req).await;
    assert_eq!(a.status, 303, "{}", a.text());
    nothing_changed(&h).await;

    // Admins see the list, with every user and the form.
    let a = b.get("/admin/users").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    for name in ["admin", "sup", "ana", "beto", "dora", "old_admin"] {
        assert!(
            text.contains(&format!("href=\"/admin/users/{name}\"")),
            "{name}: {text}"
        );
    }
    assert!(text.contains("Agregar usuario"), "{text}");
    assert!(text.contains("Desactivado"), "dora is disabled: {text}");
    assert!(text.contains("2026-10-31 07:34"), "created: {text}");
    assert!(text.contains("name=\"csrf\""), "{text}");
    let a = b.get("/admin/users/ana").await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("ana"));
}

async fn every_form_needs_the_csrf_token(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    for (uri, fields) in FORMS {
        for bad in [None, Some("wrong")] {
            let mut f = fields.to_vec();
            if let Some(bad) = bad {
                f.push(("csrf", bad));
            }
            let a = b.post_form(uri, &f).await;
            assert_eq!(a.status, 403, "{uri} {bad:?}");
            assert!(a.text().contains("CSRF"), "{}", a.text());
        }
    }
    nothing_changed(&h).await;
    // With it, the forms work (the add form, as an example).
    let a = b.post_form(FORMS[0].0, &with_csrf(&csrf, FORMS[0].1)).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert!(h.store.get_user("zoe").await.unwrap().is_some());
}

async fn an_added_user_signs_in_with_the_generated_password(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    b.from = Some("192.0.2.9:50000".parse().unwrap());
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            "/admin/users",
            &with_csrf(
                &csrf,
                &[
                    ("name", "carla.q"),
                    ("role", "operator"),
                    ("lang_es", "on"),
                    ("lang_qu", "on"),
                    ("password", ""),
                ],
            ),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let pw = secret_of(&a);
    assert_eq!(pw.len(), 20, "{pw}");
    let text = a.text();
    assert!(text.contains("no se volverá a mostrar"), "{text}");
    assert!(text.contains(REALM), "the softphone's domain: {text}");

    // Stored: the argon2 hash and the HA1s over name:realm:password, never the password.
    let u = h.store.get_user("carla.q").await.unwrap().expect("created");
    assert_eq!(u.role, Role::Operator);
    assert_eq!(u.languages, ["es", "qu"]);
    assert!(!u.disabled);
    assert!(
        u.password_hash.starts_with("$argon2id$"),
        "{}",
        u.password_hash
    );
    assert!(!u.password_hash.contains(&pw));
    let (md5, sha256) = sip_ha1s("carla.q", REALM, &pw);
    assert_eq!(u.sip_ha1_md5.as_deref(), Some(md5.as_str()));
    assert_eq!(u.sip_ha1_sha256.as_deref(), Some(sha256.as_str()));

    // Shown once: the user's page and the list do not show it.
    for uri in ["/admin/users", "/admin/users/carla.q"] {
        let a = b.get(uri).await;
        assert_eq!(a.status, 200);
        assert!(!a.text().contains(&pw), "{uri}");
    }

    // She signs in with it.
    let mut carla = Browser::new(b.app.clone());
    let a = carla.sign_in("carla.q", &pw, None).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/operator"));

    // Audited, without the password.
    let lines = audit_actions(&h, "user.add").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line.user.as_deref(), Some("admin"));
    assert_eq!(line.source.as_deref(), Some("192.0.2.9:50000"));
    assert!(line.detail.contains("user=carla.q"), "{}", line.detail);
    assert!(line.detail.contains("role=operator"), "{}", line.detail);
    assert!(!line.detail.contains(&pw));

    // A typed password: no secret page, to the user's page; it signs in too.
    let a = b
        .post_form(
            "/admin/users",
            &with_csrf(
                &csrf,
                &[
                    ("name", "dario"),
                    ("role", "supervisor"),
                    ("lang_es", "on"),
                    ("password", "dario-password-2026"),
                ],
            ),
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/admin/users/dario"));
    let u = h.store.get_user("dario").await.unwrap().unwrap();
    assert_eq!(u.role, Role::Supervisor);
    assert_eq!(u.languages, ["es"]);
    let (md5, _) = sip_ha1s("dario", REALM, "dario-password-2026");
    assert_eq!(u.sip_ha1_md5, Some(md5));
    let mut dario = Browser::new(b.app.clone());
    let a = dario.sign_in("dario", "dario-password-2026", None).await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(audit_actions(&h, "user.add").await.len(), 2);
}

async fn bad_input_is_refused_naming_the_field(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let long = "a".repeat(65);
    for (fields, status, field, says) in [
        (
            vec![
                ("name", "ana maria"),
                ("role", "operator"),
                ("lang_es", "on"),
            ],
            400,
            "Usuario",
            "use solo letras",
        ),
        (
            vec![("name", "ñandu"), ("role", "operator"), ("lang_es", "on")],
            400,
            "Usuario",
            "use solo letras",
        ),
        (
            vec![("name", ""), ("role", "operator"), ("lang_es", "on")],
            400,
            "Usuario",
            "use solo letras",
        ),
        (
            vec![
                ("name", long.as_str()),
                ("role", "operator"),
                ("lang_es", "on"),
            ],
            400,
            "Usuario",
            "use solo letras",
        ),
        (
            vec![("name", "eva"), ("role", "root"), ("lang_es", "on")],
            400,
            "Rol",
            "elija operador",
        ),
        (
            vec![("name", "eva"), ("role", "operator")],
            400,
            "Idiomas de atención",
            "al menos un idioma",
        ),
        (
            vec![
                ("name", "eva"),
                ("role", "operator"),
                ("lang_es", "on"),
                ("password", "short"),
            ],
            400,
            "Contraseña",
            "demasiado corta",
        ),
        (
            vec![("name", "ana"), ("role", "operator"), ("lang_es", "on")],
            409,
            "Usuario",
            "ya existe",
        ),
    ] {
        let a = b
            .post_form("/admin/users", &with_csrf(&csrf, &fields))
            .await;
        assert_eq!(a.status, status, "{fields:?}: {}", a.text());
        let text = a.text();
        assert!(
            text.contains(&format!("<strong>{field}</strong>")),
            "{fields:?}: {text}"
        );
        assert!(text.contains(says), "{fields:?}: {text}");
        // The form again, with what was typed (never a password).
        assert!(text.contains("action=\"/admin/users\""), "{text}");
        assert!(!text.contains("value=\"short\""), "{text}");
    }
    assert!(h.store.get_user("eva").await.unwrap().is_none());
    assert_eq!(h.store.list_users().await.unwrap().len(), 6);
    assert!(audit_actions(&h, "user.add").await.is_empty());

    // The same in English.
    b.cookies.insert("lang".into(), "en".into());
    let a = b
        .post_form(
            "/admin/users",
            &with_csrf(
                &csrf,
                &[("name", "a b"), ("role", "operator"), ("lang_es", "on")],
            ),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.text()
            .contains("<strong>User name</strong>: use only letters"),
        "{}",
        a.text()
    );
    b.cookies.remove("lang");

    // Unknown users: 404 pages.
    assert_eq!(b.get("/admin/users/nobody").await.status, 404);
    for (uri, fields) in [
        (
            "/admin/users/nobody",
            vec![("role", "operator"), ("lang_es", "on")],
        ),
        ("/admin/users/nobody/disable", vec![]),
        ("/admin/users/nobody/enable", vec![]),
        ("/admin/users/nobody/password", vec![]),
        ("/admin/users/nobody/tokens", vec![("label", "x")]),
    ] {
        let a = b.post_form(uri, &with_csrf(&csrf, &fields)).await;
        assert_eq!(a.status, 404, "{uri}");
        assert!(a.text().contains("Página no encontrada"), "{}", a.text());
    }
    // Bad role or languages on the user's page, and a token without a label.
    let a = b
        .post_form(
            "/admin/users/ana",
            &with_csrf(&csrf, &[("role", "boss"), ("lang_es", "on")]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("<strong>Rol</strong>"), "{}", a.text());
    let a = b
        .post_form(
            "/admin/users/ana",
            &with_csrf(&csrf, &[("role", "operator")]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("al menos un idioma"), "{}", a.text());
    let a = b
        .post_form(
            "/admin/users/ana/tokens",
            &with_csrf(&csrf, &[("label", " ")]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("<strong>Uso</strong>"), "{}", a.text());
    nothing_changed(&h).await;
}

async fn role_and_languages_change(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            "/admin/users/ana",
            &with_csrf(&csrf, &[("role", "supervisor"), ("lang_qu", "on")]),
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/admin/users/ana?done=saved"));
    let ana = h.store.get_user("ana").await.unwrap().unwrap();
    assert_eq!(ana.role, Role::Supervisor);
    assert_eq!(ana.languages, ["qu"]);
    let a = b.get("/admin/users/ana?done=saved").await;
    assert!(a.text().contains("Cambios guardados."), "{}", a.text());

    let role = audit_actions(&h, "user.role").await;
    assert_eq!(role.len(), 1, "{role:?}");
    assert_eq!(role[0].detail, "user=ana role=operator -> supervisor");
    let langs = audit_actions(&h, "user.languages").await;
    assert_eq!(langs.len(), 1);
    assert_eq!(langs[0].detail, "user=ana languages=es,qu -> qu");

    // The same again: nothing changes, nothing more is audited.
    let a = b
        .post_form(
            "/admin/users/ana",
            &with_csrf(&csrf, &[("role", "supervisor"), ("lang_qu", "on")]),
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(audit_actions(&h, "user.role").await.len(), 1);
    assert_eq!(audit_actions(&h, "user.languages").await.len(), 1);

    // A new role applies to an open session at once.
    let mut beto = another(&b, "beto").await;
    b.post_form(
        "/admin/users/beto",
        &with_csrf(&csrf, &[("role", "admin"), ("lang_es", "on")]),
    )
    .await;
    assert_eq!(beto.get("/admin/users").await.status, 200);
}

async fn disabling_ends_the_sessions(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let mut ana = another(&b, "ana").await;
    assert_eq!(ana.get("/me").await.status, 200);

    let a = b
        .post_form("/admin/users/ana/disable", &with_csrf(&csrf, &[]))
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/admin/users/ana?done=disabled"));
    assert!(h.store.get_user("ana").await.unwrap().unwrap().disabled);
    // Her session row is gone, and her browser is signed out.
    assert_eq!(h.store.delete_user_sessions("ana").await.unwrap(), 0);
    assert_eq!(ana.get("/me").await.status, 303);
    let a = ana.sign_in("ana", &password("ana"), None).await;
    assert_eq!(a.status, 401);
    // Her API token no longer works either.
    let a = h.get("/api/calls", Some("ana")).await;
    assert_eq!(a.status, 401, "{}", a.text());

    let page = b.get("/admin/users/ana").await;
    assert!(page.text().contains("Reactivar"), "{}", page.text());
    let a = b
        .post_form("/admin/users/ana/enable", &with_csrf(&csrf, &[]))
        .await;
    assert_eq!(a.status, 303);
    assert!(!h.store.get_user("ana").await.unwrap().unwrap().disabled);
    let a = ana.sign_in("ana", &password("ana"), None).await;
    assert_eq!(a.status, 303);

    assert_eq!(
        audit_actions(&h, "user.disable").await[0].detail,
        "user=ana"
    );
    assert_eq!(audit_actions(&h, "user.enable").await[0].detail, "user=ana");
}

async fn an_admin_cannot_disable_or_demote_themself(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let page = b.get("/admin/users/admin").await;
    assert!(
        page.text().contains("Es su propia cuenta"),
        "{}",
        page.text()
    );
    assert!(
        !page.text().contains("/admin/users/admin/disable"),
        "no disable button"
    );

    let a = b
        .post_form("/admin/users/admin/disable", &with_csrf(&csrf, &[]))
        .await;
    assert_eq!(a.status, 409, "{}", a.text());
    assert!(
        a.text().contains("no puede desactivar su propia cuenta"),
        "{}",
        a.text()
    );
    for role in ["supervisor", "operator"] {
        let a = b
            .post_form(
                "/admin/users/admin",
                &with_csrf(&csrf, &[("role", role), ("lang_es", "on")]),
            )
            .await;
        assert_eq!(a.status, 409, "{}", a.text());
        assert!(
            a.text().contains("no puede quitarse a sí mismo el rol"),
            "{}",
            a.text()
        );
    }
    let me = h.store.get_user("admin").await.unwrap().unwrap();
    assert_eq!(me.role, Role::Admin);
    assert!(!me.disabled);
    assert_eq!(b.get("/admin/users").await.status, 200, "still signed in");
    // Languages of one's own account can change.
    let a = b
        .post_form(
            "/admin/users/admin",
            &with_csrf(&csrf, &[("role", "admin"), ("lang_qu", "on")]),
        )
        .await;
    assert_eq!(a.status, 303);
    // Another admin can be demoted.
    let a = b
        .post_form(
            "/admin/users/old_admin",
            &with_csrf(&csrf, &[("role", "operator"), ("lang_es", "on")]),
        )
        .await;
    assert_eq!(a.status, 303);
    assert!(audit_actions(&h, "user.disable").await.is_empty());
}

async fn a_password_reset_replaces_the_password(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let mut beto = another(&b, "beto").await;

    let a = b
        .post_form("/admin/users/beto/password", &with_csrf(&csrf, &[]))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let pw = secret_of(&a);
    assert_eq!(pw.len(), 20);
    let u = h.store.get_user("beto").await.unwrap().unwrap();
    let (md5, sha256) = sip_ha1s("beto", REALM, &pw);
    assert_eq!(u.sip_ha1_md5, Some(md5));
    assert_eq!(u.sip_ha1_sha256, Some(sha256));
    assert!(!u.password_hash.contains(&pw));

    // His session ended; the old password is refused, the new one works.
    assert_eq!(beto.get("/me").await.status, 303);
    let a = beto.sign_in("beto", &password("beto"), None).await;
    assert_eq!(a.status, 401);
    let a = beto.sign_in("beto", &pw, None).await;
    assert_eq!(a.status, 303, "{}", a.text());
    // The admin's own session goes on.
    assert_eq!(b.get("/admin/users").await.status, 200);

    let lines = audit_actions(&h, "user.password_reset").await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].detail, "user=beto");
    assert!(!lines[0].detail.contains(&pw));
}

async fn api_tokens_are_created_shown_once_and_revoked(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    let a = b
        .post_form(
            "/admin/users/sup/tokens",
            &with_csrf(&csrf, &[("label", "backup script")]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let token = secret_of(&a);
    assert!(token.starts_with("hl_"), "{token}");

    let bearer = |token: &str| {
        Request::builder()
            .method(Method::GET)
            .uri("/api/calls")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let a = Harness::send_to(b.app.clone(), bearer(&token)).await;
    assert_eq!(a.status, 200, "{}", a.text());

    // Listed by label and fingerprint, never the token.
    let page = b.get("/admin/users/sup").await;
    let text = page.text();
    assert!(text.contains("backup script"), "{text}");
    assert!(!text.contains(&token));
    let hash = hotline_store::TokenHash::of(&token);
    assert!(text.contains(&hash.as_str()[..12]), "{text}");

    // Another user's token cannot be revoked through this page; junk is a bad request.
    let a = b
        .post_form(
            "/admin/users/ana/tokens/revoke",
            &with_csrf(&csrf, &[("token", hash.as_str())]),
        )
        .await;
    assert_eq!(a.status, 404);
    let a = b
        .post_form(
            "/admin/users/sup/tokens/revoke",
            &with_csrf(&csrf, &[("token", "not-a-hash")]),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        Harness::send_to(b.app.clone(), bearer(&token)).await.status,
        200
    );

    let a = b
        .post_form(
            "/admin/users/sup/tokens/revoke",
            &with_csrf(&csrf, &[("token", hash.as_str())]),
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.text());
    assert_eq!(a.location(), Some("/admin/users/sup?done=revoked"));
    let a = Harness::send_to(b.app.clone(), bearer(&token)).await;
    assert_eq!(a.status, 401, "{}", a.text());
    // The seeded token of sup still works.
    assert_eq!(h.get("/api/calls", Some("sup")).await.status, 200);

    let created = audit_actions(&h, "token.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].detail,
        format!(
            "user=sup token={} label=backup script",
            &hash.as_str()[..12]
        )
    );
    assert!(!created[0].detail.contains(&token));
    let revoked = audit_actions(&h, "token.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].detail,
        format!("user=sup token={}", &hash.as_str()[..12])
    );
}

async fn nothing_changes_when_the_audit_cannot_be_written(h: Harness) {
    let mut b = signed_in(&h, "admin").await;
    let csrf = b.csrf().await;
    h.fail_audit_writes().await;
    for (uri, fields) in FORMS {
        if uri.ends_with("/revoke") {
            continue; // an unknown token: 404 before any audit
        }
        let a = b.post_form(uri, &with_csrf(&csrf, fields)).await;
        assert_eq!(a.status, 503, "{uri}: {}", a.text());
        assert!(
            a.text().contains("el cambio no se hizo"),
            "{uri}: {}",
            a.text()
        );
    }
    nothing_changed(&h).await;
}

both!(
    only_admins_open_the_admin_pages,
    every_form_needs_the_csrf_token,
    an_added_user_signs_in_with_the_generated_password,
    bad_input_is_refused_naming_the_field,
    role_and_languages_change,
    disabling_ends_the_sessions,
    an_admin_cannot_disable_or_demote_themself,
    a_password_reset_replaces_the_password,
    api_tokens_are_created_shown_once_and_revoked,
    nothing_changes_when_the_audit_cannot_be_written,
);
