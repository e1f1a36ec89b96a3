//! `GET /api/recordings`, `PATCH /api/recordings/{id}` (validation, audit line, body limit) and
//! `GET /api/audit`.

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::{Method, header};
use common::{Harness, keys};
use hotline_store::{AuditFilter, RecordingStatus};
use serde_json::{Value, json};

const RECORDING_KEYS: &[&str] = &[
    "call_id",
    "created_at",
    "duration_ms",
    "id",
    "kind",
    "language",
    "notes",
    "sha256",
    "status",
    "tags",
];

fn ids(v: &Value) -> Vec<String> {
    assert_eq!(keys(v), ["recordings"]);
    v["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn lists_newest_first_with_filters(h: Harness) {
    let s = &h.seed;
    let a = h.get("/api/recordings", Some("sup")).await;
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(
        ids(&v),
        [&*s.rec_missing, &*s.rec_conversation, &*s.rec_message]
    );
    for r in v["recordings"].as_array().unwrap() {
        assert_eq!(keys(r), RECORDING_KEYS, "{r}");
    }
    let message = &v["recordings"][2];
    assert_eq!(message["call_id"], s.call_message.as_str());
    assert_eq!(message["kind"], "message");
    assert_eq!(message["status"], "new");
    assert_eq!(message["language"], "es");
    assert_eq!(message["created_at"], "2026-11-01T12:35:41.000Z");
    assert_eq!(message["duration_ms"], 12_340);
    assert_eq!(message["tags"], json!([]));
    assert_eq!(message["notes"], "");
    // The file's path stays inside.
    assert!(!String::from_utf8_lossy(&a.body).contains(".wav"));

    let by_call = format!("call_id={}", s.call_message);
    let cases: &[(&str, Vec<&String>)] = &[
        ("limit=1", vec![&s.rec_missing]),
        ("status=reviewed", vec![&s.rec_conversation]),
        ("kind=message", vec![&s.rec_message]),
        ("kind=conversation&status=new", vec![&s.rec_missing]),
        ("language=qu", vec![&s.rec_missing, &s.rec_conversation]),
        ("language=es", vec![&s.rec_message]),
        (
            "since=2026-11-01T12:39:56Z",
            vec![&s.rec_missing, &s.rec_conversation],
        ),
        ("until=2026-11-01T12:39:56Z", vec![&s.rec_message]),
        (&by_call, vec![&s.rec_message]),
    ];
    for (query, expected) in cases {
        let v = h
            .get(&format!("/api/recordings?{query}"), Some("admin"))
            .await
            .json();
        assert_eq!(&ids(&v).iter().collect::<Vec<_>>(), expected, "{query}");
    }
    for bad in [
        "status=done",
        "kind=voicemail",
        "language=Quechua",
        "since=yesterday",
        "limit=0",
        "path=x",
    ] {
        h.get(&format!("/api/recordings?{bad}"), Some("admin"))
            .await
            .error(400);
    }
}

async fn patch_updates_and_audits(h: Harness) {
    let id = &h.seed.rec_message;
    let uri = format!("/api/recordings/{id}");
    let a = h
        .send_json(
            Method::PATCH,
            &uri,
            Some("sup"),
            &json!({"status": "referred", "tags": ["trata laboral", " Cusco ", "trata laboral"],
                    "notes": "Derivado a la fiscalía.\nLlamar el lunes."}),
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let v = a.json();
    assert_eq!(keys(&v), RECORDING_KEYS);
    assert_eq!(v["status"], "referred");
    assert_eq!(v["tags"], json!(["trata laboral", "Cusco"]));
    assert_eq!(v["notes"], "Derivado a la fiscalía.\nLlamar el lunes.");
    let stored = h.store.get_recording(id).await.unwrap().unwrap();
    assert_eq!(stored.status, RecordingStatus::Referred);

    // Only notes: the rest stays.
    let v = h
        .send_json(Method::PATCH, &uri, Some("admin"), &json!({"notes": ""}))
        .await
        .json();
    assert_eq!(v["status"], "referred");
    assert_eq!(v["tags"], json!(["trata laboral", "Cusco"]));
    assert_eq!(v["notes"], "");

    let audit = h
        .store
        .list_audit(&AuditFilter {
            recording_id: Some(id.clone()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].user.as_deref(), Some("admin"));
    assert_eq!(audit[1].user.as_deref(), Some("sup"));
    assert!(audit.iter().all(|e| e.action == "recording.update"));
    assert_eq!(audit[0].source.as_deref(), Some("unknown"));
    assert_eq!(
        audit[1].detail,
        "status new -> referred; tags [trata laboral, Cusco]; notes (40 characters)"
    );
    // The notes' text is not copied into the audit log.
    assert!(!audit[1].detail.contains("fiscal"));
}

async fn patch_validation(h: Harness) {
    let uri = format!("/api/recordings/{}", h.seed.rec_message);
    for body in [
        json!({}),
        json!({"status": "done"}),
        json!({"status": null, "tags": null, "notes": null}),
        json!({"tags": "a,b"}),
        json!({"tags": [""]}),
        json!({"tags": ["x".repeat(41)]}),
        json!({"tags": vec!["t"; 21]}),
        json!({"notes": "a\u{7}b"}),
        json!({"notes": "n".repeat(10_001)}),
        json!({"path": "/etc/passwd"}),
        json!(["status", "new"]),
    ] {
        let a = h.send_json(Method::PATCH, &uri, Some("sup"), &body).await;
        a.error(400);
    }
    // Not JSON.
    let req = h
        .request(Method::PATCH, &uri, Some("sup"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("status=new"))
        .unwrap();
    Harness::send_to(h.app(), req).await.error(400);
    // Not declared JSON: 415 (and no cross-site form can send it).
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut b = h.request(Method::PATCH, &uri, Some("sup"));
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let req = b.body(Body::from(r#"{"status":"new"}"#)).unwrap();
        assert_eq!(
            Harness::send_to(h.app(), req).await.error(415),
            "expected a body of type application/json"
        );
    }
    // No such recording.
    let a = h
        .send_json(
            Method::PATCH,
            "/api/recordings/01JC00000000000000000000ZZ",
            Some("sup"),
            &json!({"status": "closed"}),
        )
        .await;
    assert_eq!(a.error(404), "no such recording");
    // Nothing changed, nothing audited.
    let r = h
        .store
        .get_recording(&h.seed.rec_message)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RecordingStatus::New);
    assert!(
        h.store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn bodies_over_64_kib_are_413(h: Harness) {
    let uri = format!("/api/recordings/{}", h.seed.rec_message);
    let big = json!({"notes": "x".repeat(70 * 1024)});
    let a = h.send_json(Method::PATCH, &uri, Some("sup"), &big).await;
    assert_eq!(
        a.error(413),
        format!("request body too large (limit {} bytes)", 64 * 1024)
    );
    // Without Content-Length (streamed).
    let stream = tokio_util::io::ReaderStream::with_capacity(
        std::io::Cursor::new(vec![b' '; 160 * 1024]),
        8 * 1024,
    );
    let req = h
        .request(Method::PUT, "/api/operators/ana/status", Some("ana"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    Harness::send_to(h.app(), req).await.error(413);
}

async fn audit_lists_newest_first(h: Harness) {
    let rec = &h.seed.rec_message;
    h.get(&format!("/api/recordings/{rec}/audio"), Some("sup"))
        .await;
    h.send_json(
        Method::PATCH,
        &format!("/api/recordings/{rec}"),
        Some("admin"),
        &json!({"status": "reviewed"}),
    )
    .await;
    h.get(
        &format!("/api/recordings/{}/audio", h.seed.rec_conversation),
        Some("admin"),
    )
    .await;

    let v = h.get("/api/audit", Some("sup")).await.json();
    assert_eq!(keys(&v), ["audit"]);
    let lines = v["audit"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["user"].as_str().unwrap(), l["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin", "recording.audio"),
            ("admin", "recording.update"),
            ("sup", "recording.audio")
        ]
    );
    assert_eq!(
        keys(&lines[0]),
        [
            "action",
            "at",
            "detail",
            "id",
            "recording_id",
            "source",
            "user"
        ]
    );
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));

    let v = h.get("/api/audit?user=sup", Some("admin")).await.json();
    assert_eq!(v["audit"].as_array().unwrap().len(), 1);
    let v = h
        .get(
            &format!("/api/audit?recording_id={rec}&limit=1"),
            Some("admin"),
        )
        .await
        .json();
    assert_eq!(v["audit"].as_array().unwrap().len(), 1);
    assert_eq!(v["audit"][0]["action"], "recording.update");
    for bad in ["limit=0", "recording_id=../x", "user=", "action=x"] {
        h.get(&format!("/api/audit?{bad}"), Some("admin"))
            .await
            .error(400);
    }
}

both!(
    lists_newest_first_with_filters,
    patch_updates_and_audits,
    patch_validation,
    bodies_over_64_kib_are_413,
    audit_lists_newest_first,
);
