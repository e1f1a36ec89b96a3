//! `GET /api/openapi.json` matches the router both ways, and the error answers have one shape.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, header};
use common::Harness;
use serde_json::Value;

async fn document_is_served_to_any_role(h: Harness) {
    h.get("/api/openapi.json", None).await.error(401);
    for who in ["ana", "sup", "admin"] {
        let a = h.get("/api/openapi.json", Some(who)).await;
        assert_eq!(a.status, 200);
        let doc = a.json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"].as_object().unwrap().len() >= 10);
    }
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    ops
}

/// Every documented operation is served (the router answers it with something other than
/// "no such route" or 405), and every route the router is built from is documented.
async fn document_and_router_agree(h: Harness) {
    let doc = h.get("/api/openapi.json", Some("admin")).await.json();
    let documented = operations(&doc);
    let table: BTreeSet<(String, String)> = hotline_console::routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_owned()))
        .collect();
    assert_eq!(documented, table);

    for (method, path) in &documented {
        let uri = path
            .replace("{id}", &h.seed.rec_message)
            .replace("{name}", "ana");
        let method: Method = method.parse().unwrap();
        let mut b = h.request(method.clone(), &uri, Some("admin"));
        let body = if method == Method::GET {
            Body::empty()
        } else {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::from(r#"{"status":"closed"}"#)
        };
        let a = Harness::send_to(h.app(), b.body(body).unwrap()).await;
        assert_ne!(a.status, 405, "{method} {uri}");
        if a.status == 404 {
            assert_ne!(a.error(404), "no such route", "{method} {uri}");
        }
    }
}

async fn error_answers_have_one_shape(h: Harness) {
    let a = h.get("/api/nothing", Some("admin")).await;
    assert_eq!(a.error(404), "no such route");
    // `/` is the console's home page now; the JSON side's unknown routes stay JSON.
    let a = h.get("/api", None).await;
    assert_eq!(a.error(404), "no such route");

    let req = h
        .request(Method::DELETE, "/api/calls", Some("admin"))
        .body(Body::empty())
        .unwrap();
    let a = Harness::send_to(h.app(), req).await;
    assert_eq!(a.error(405), "method not allowed");
    let allow = a.header("allow").unwrap_or_default().to_owned();
    assert!(allow.contains("GET"), "Allow: {allow:?}");

    let a = h.get("/api/calls", None).await;
    assert_eq!(a.error(401), "authentication required");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
}

both!(
    document_is_served_to_any_role,
    document_and_router_agree,
    error_answers_have_one_shape,
);
