//! Who may do what: 401 without or with bad credentials (disabled users included), 403 by
//! role, the session extension point, and the unauthenticated /healthz and /metrics.

#[macro_use]
mod common;

use axum::Extension;
use axum::body::Body;
use axum::http::{Method, header};
use common::{Answer, Harness};
use hotline_console::Identity;
use hotline_store::Role;
use serde_json::json;

/// A request for every /api route, with its parameters filled in.
fn api_requests(h: &Harness) -> Vec<(Method, String)> {
    hotline_console::routes()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/"))
        .map(|(m, p)| {
            let p = p
                .replace("{id}", &h.seed.rec_message)
                .replace("{name}", "ana");
            (m, p)
        })
        .collect()
}

async fn send(h: &Harness, method: Method, uri: &str, auth: Option<&str>) -> Answer {
    let mut b = axum::http::Request::builder()
        .method(method.clone())
        .uri(uri);
    if let Some(auth) = auth {
        b = b.header(header::AUTHORIZATION, auth);
    }
    let body = if method == Method::GET {
        Body::empty()
    } else {
        b = b.header(header::CONTENT_TYPE, "application/json");
        Body::from(r#"{"status":"reviewed"}"#)
    };
    Harness::send_to(h.app(), b.body(body).unwrap()).await
}

async fn every_api_route_needs_credentials(h: Harness) {
    let disabled = format!("Bearer {}", h.token("dora"));
    let disabled_admin = format!("Bearer {}", h.token("old_admin"));
    let basic = "Basic YWRtaW46YWRtaW4=".to_owned();
    let unknown = "Bearer hl_notatokenweknowofatallxxxxxxxxxxxxxxxxxxx".to_owned();
    let raw = h.token("admin").to_owned();
    for (method, uri) in api_requests(&h) {
        for auth in [
            None,
            Some(&unknown),
            Some(&basic),
            Some(&disabled),
            Some(&disabled_admin),
            Some(&raw),
        ] {
            let a = send(&h, method.clone(), &uri, auth.map(String::as_str)).await;
            assert_eq!(
                a.error(401),
                "authentication required",
                "{method} {uri} with {auth:?}"
            );
            assert_eq!(
                a.header("www-authenticate"),
                Some("Bearer realm=\"hotline\"")
            );
        }
    }
    // Nothing was audited for refused requests.
    let audit = h
        .store
        .list_audit(&hotline_store::AuditFilter::default())
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");
}

async fn operators_get_403_on_recordings_audio_and_audit(h: Harness) {
    let rec = &h.seed.rec_message;
    for uri in [
        "/api/recordings".to_owned(),
        format!("/api/recordings/{rec}/audio"),
        "/api/audit".to_owned(),
    ] {
        let a = h.get(&uri, Some("ana")).await;
        assert_eq!(
            a.error(403),
            "forbidden: supervisors and admins only",
            "{uri}"
        );
    }
    // A refusal by role comes before any complaint about the query or the body.
    for uri in ["/api/recordings?status=nonsense", "/api/audit?limit=0"] {
        h.get(uri, Some("ana")).await.error(403);
    }
    let a = h
        .send_json(
            Method::PATCH,
            &format!("/api/recordings/{rec}"),
            Some("ana"),
            &json!({"status": "nonsense"}),
        )
        .await;
    a.error(403);
    let a = h
        .send_json(
            Method::PUT,
            "/api/operators/beto/status",
            Some("ana"),
            &json!({"status": "nonsense"}),
        )
        .await;
    assert_eq!(
        a.error(403),
        "forbidden: operators set only their own status"
    );
    // The operator views are open to them.
    for uri in ["/api/calls", "/api/queue", "/api/openapi.json"] {
        let a = h.get(uri, Some("ana")).await;
        assert_eq!(a.status, 200, "{uri}");
    }
    let a = h
        .get(&format!("/api/calls/{}", h.seed.call_message), Some("ana"))
        .await;
    assert_eq!(a.status, 200);
    // No audio was served, and nothing audited.
    let audit = h
        .store
        .list_audit(&hotline_store::AuditFilter::default())
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");
}

async fn supervisors_and_admins_see_recordings(h: Harness) {
    for who in ["sup", "admin"] {
        for uri in [
            "/api/recordings".to_owned(),
            format!("/api/recordings/{}/audio", h.seed.rec_message),
            "/api/audit".to_owned(),
            "/api/calls".to_owned(),
            "/api/queue".to_owned(),
        ] {
            let a = h.get(&uri, Some(who)).await;
            assert_eq!(a.status, 200, "{who} {uri}");
        }
    }
}

async fn a_session_identity_is_taken_without_a_token(h: Harness) {
    // What the session layer of issue 6 will do: put an Identity in the request's extensions.
    let app = h.app().layer(Extension(Identity::from_session(
        "sup".into(),
        Role::Supervisor,
    )));
    let req = axum::http::Request::get("/api/recordings")
        .body(Body::empty())
        .unwrap();
    let a = Harness::send_to(app, req).await;
    assert_eq!(a.status, 200);
    let app = h.app().layer(Extension(Identity::from_session(
        "ana".into(),
        Role::Operator,
    )));
    let req = axum::http::Request::get("/api/recordings")
        .body(Body::empty())
        .unwrap();
    Harness::send_to(app, req).await.error(403);
}

async fn health_and_metrics_need_no_credentials(h: Harness) {
    let a = h.get("/healthz", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["status"], "ok");
    h.set_healthy(false);
    let a = h.get("/healthz", None).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["status"], "unavailable");
    let a = h.get("/metrics", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/plain; version=0.0.4"));
    assert_eq!(&a.body[..], b"hotline_calls_total 1\n");
}

both!(
    every_api_route_needs_credentials,
    operators_get_403_on_recordings_audio_and_audit,
    supervisors_and_admins_see_recordings,
    a_session_identity_is_taken_without_a_token,
    health_and_metrics_need_no_credentials,
);
