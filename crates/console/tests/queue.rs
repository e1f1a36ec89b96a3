//! `GET /api/queue` and `PUT /api/operators/{name}/status`, without a queue (operator accounts
//! offline; 503 on PUT) and with one.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::Method;
use common::{Harness, at};
use hotline_console::{
    OperatorStatus, OperatorView, QueueError, QueueSnapshot, QueueView, WaitingCall,
};
use serde_json::json;

async fn without_a_queue_operators_are_offline(h: Harness) {
    for who in ["ana", "sup", "admin"] {
        let a = h.get("/api/queue", Some(who)).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.json(),
            json!({
                "waiting": [],
                "operators": [
                    {"name": "ana", "status": "offline", "registered": false, "current_call": null},
                    {"name": "beto", "status": "offline", "registered": false, "current_call": null}
                ]
            })
        );
    }
}

async fn without_a_queue_status_changes_are_503(h: Harness) {
    let body = json!({"status": "available"});
    for (who, name) in [("ana", "ana"), ("sup", "beto"), ("admin", "ana")] {
        let a = h
            .send_json(
                Method::PUT,
                &format!("/api/operators/{name}/status"),
                Some(who),
                &body,
            )
            .await;
        assert_eq!(a.error(503), "operator queue not running", "{who}");
    }
}

async fn status_change_checks(h: Harness) {
    let ok = json!({"status": "paused"});
    // An operator sets only their own.
    let a = h
        .send_json(Method::PUT, "/api/operators/beto/status", Some("ana"), &ok)
        .await;
    assert_eq!(
        a.error(403),
        "forbidden: operators set only their own status"
    );
    // Not an operator account, or a disabled one, or nobody.
    for name in ["sup", "dora", "nobody"] {
        let a = h
            .send_json(
                Method::PUT,
                &format!("/api/operators/{name}/status"),
                Some("admin"),
                &ok,
            )
            .await;
        assert_eq!(a.error(404), "no such operator", "{name}");
    }
    for body in [
        json!({"status": "busy"}),
        json!({"status": "available", "extra": 1}),
        json!({}),
        json!("available"),
    ] {
        h.send_json(Method::PUT, "/api/operators/ana/status", Some("ana"), &body)
            .await
            .error(400);
    }
}

/// A queue that answers from fixed data and records what is set.
#[derive(Default)]
struct FakeQueue {
    set: Mutex<Vec<(String, OperatorStatus)>>,
    stopped: bool,
}

#[async_trait]
impl QueueView for FakeQueue {
    async fn snapshot(&self) -> Result<QueueSnapshot, QueueError> {
        if self.stopped {
            return Err(QueueError::NotRunning);
        }
        Ok(QueueSnapshot {
            waiting: vec![WaitingCall {
                call_id: "01JC0000000000000000000001".into(),
                language: Some("qu".into()),
                since: at(1_000),
            }],
            operators: vec![OperatorView {
                name: "ana".into(),
                status: OperatorStatus::Available,
                registered: true,
                current_call: Some("01JC0000000000000000000002".into()),
                state: Some("busy".into()),
                paused_reason: None,
            }],
        })
    }

    async fn set_status(&self, name: &str, status: OperatorStatus) -> Result<(), QueueError> {
        if self.stopped {
            return Err(QueueError::NotRunning);
        }
        if name == "beto" {
            return Err(QueueError::UnknownOperator);
        }
        self.set.lock().unwrap().push((name.to_owned(), status));
        Ok(())
    }
}

async fn with_a_queue(h: Harness) {
    let queue = Arc::new(FakeQueue::default());
    let app = || hotline_console::router(h.state().with_queue(queue.clone()));

    let req = h
        .request(Method::GET, "/api/queue", Some("ana"))
        .body(axum::body::Body::empty())
        .unwrap();
    let a = Harness::send_to(app(), req).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({
            "waiting": [{"call_id": "01JC0000000000000000000001", "language": "qu",
                         "since": "2026-11-01T12:34:57.000Z"}],
            "operators": [{"name": "ana", "status": "available", "registered": true,
                           "current_call": "01JC0000000000000000000002", "state": "busy"}]
        })
    );

    let put = |who: &'static str, name: &'static str, status: &'static str| {
        let req = h
            .request(
                Method::PUT,
                &format!("/api/operators/{name}/status"),
                Some(who),
            )
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({ "status": status }).to_string(),
            ))
            .unwrap();
        Harness::send_to(app(), req)
    };
    let a = put("ana", "ana", "paused").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({"name": "ana", "status": "paused"}));
    let a = put("sup", "ana", "offline").await;
    assert_eq!(a.status, 200);
    // The queue does not know beto.
    assert_eq!(
        put("admin", "beto", "available").await.error(404),
        "no such operator"
    );
    assert_eq!(
        *queue.set.lock().unwrap(),
        [
            ("ana".to_owned(), OperatorStatus::Paused),
            ("ana".to_owned(), OperatorStatus::Offline)
        ]
    );

    // A stopped queue: 503.
    let stopped = Arc::new(FakeQueue {
        stopped: true,
        ..FakeQueue::default()
    });
    let req = h
        .request(Method::GET, "/api/queue", Some("ana"))
        .body(axum::body::Body::empty())
        .unwrap();
    let a = Harness::send_to(hotline_console::router(h.state().with_queue(stopped)), req).await;
    assert_eq!(a.error(503), "operator queue not running");
}

both!(
    without_a_queue_operators_are_offline,
    without_a_queue_status_changes_are_503,
    status_change_checks,
    with_a_queue,
);
