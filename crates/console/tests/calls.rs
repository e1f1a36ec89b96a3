//! `GET /api/calls` and `GET /api/calls/{id}`: the contract's fields, newest first, filters,
//! events, marks and keypad answers, and what operators do not see.

#[macro_use]
mod common;

use common::{Harness, SAFETY_ANSWERS, keys};
use serde_json::Value;

const CALL_KEYS: &[&str] = &[
    "answered_at",
    "answers",
    "disposition",
    "ended_at",
    "id",
    "language",
    "marks",
    "operator",
    "path",
    "queue_wait_ms",
    "recordings",
    "reference",
    "sip_call_id",
    "started_at",
];

fn calls(v: &Value) -> &Vec<Value> {
    assert_eq!(keys(v), ["calls"]);
    v["calls"].as_array().unwrap()
}

async fn lists_newest_first_with_the_contract_fields(h: Harness) {
    let a = h.get("/api/calls", Some("sup")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let v = a.json();
    let list = calls(&v);
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            &h.seed.call_abandoned,
            &h.seed.call_operator,
            &h.seed.call_message
        ]
    );
    for c in list {
        assert_eq!(keys(c), CALL_KEYS, "{c}");
    }
    for c in list {
        // Nothing marked, no keypad answers: empty lists, not absent.
        assert_eq!(c["marks"], serde_json::json!([]), "{c}");
        assert_eq!(c["answers"], serde_json::json!([]), "{c}");
    }
    let abandoned = &list[0];
    assert_eq!(abandoned["language"], Value::Null);
    assert_eq!(abandoned["disposition"], "abandoned");
    assert_eq!(abandoned["recordings"], serde_json::json!([]));
    assert_eq!(abandoned["operator"], Value::Null);
    let operator = &list[1];
    assert_eq!(operator["language"], "qu");
    assert_eq!(operator["disposition"], "operator");
    assert_eq!(operator["operator"], "ana");
    assert_eq!(operator["queue_wait_ms"], 12_000);
    assert_eq!(
        operator["recordings"],
        serde_json::json!([h.seed.rec_conversation, h.seed.rec_missing])
    );
    let message = &list[2];
    assert_eq!(message["language"], "es");
    assert_eq!(message["disposition"], "message");
    assert_eq!(
        message["path"],
        serde_json::json!(["language", "main", "message"])
    );
    assert_eq!(message["started_at"], "2026-11-01T12:34:56.000Z");
    assert_eq!(message["answered_at"], "2026-11-01T12:34:56.100Z");
    assert_eq!(message["ended_at"], "2026-11-01T12:35:41.000Z");
    assert_eq!(message["sip_call_id"], "a84b4c76e66710@pc33.example.com");
    let reference = message["reference"].as_str().unwrap();
    assert_eq!(reference.len(), 6);
    assert!(reference.bytes().all(|c| c.is_ascii_digit()));
    // The caller, the trunk and the number dialled are not shown (nor in the keys, above).
    let text = String::from_utf8_lossy(&a.body);
    for hidden in ["abababab", "192.0.2.10", "caller", "trunk", "called_number"] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
}

async fn filters_and_limit(h: Harness) {
    let v = h.get("/api/calls?limit=1", Some("admin")).await.json();
    assert_eq!(calls(&v).len(), 1);
    assert_eq!(calls(&v)[0]["id"], h.seed.call_abandoned.as_str());

    let v = h
        .get(
            "/api/calls?sip_call_id=3848276298220188511%40atlanta.example.com",
            Some("admin"),
        )
        .await
        .json();
    assert_eq!(calls(&v).len(), 1);
    assert_eq!(calls(&v)[0]["id"], h.seed.call_operator.as_str());
    let reference = calls(&v)[0]["reference"].as_str().unwrap().to_owned();

    let v = h
        .get(&format!("/api/calls?reference={reference}"), Some("admin"))
        .await
        .json();
    assert_eq!(calls(&v).len(), 1);
    assert_eq!(calls(&v)[0]["id"], h.seed.call_operator.as_str());

    let v = h
        .get(
            "/api/calls?sip_call_id=nobody%40nowhere&limit=5",
            Some("admin"),
        )
        .await
        .json();
    assert!(calls(&v).is_empty());

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "reference=12a",
        "sip_call_id=",
        "refrence=123456",
    ] {
        let a = h.get(&format!("/api/calls?{bad}"), Some("admin")).await;
        let msg = a.error(400);
        assert!(!msg.is_empty(), "{bad}");
    }
}

async fn one_call_with_its_events(h: Harness) {
    let a = h
        .get(&format!("/api/calls/{}", h.seed.call_message), Some("sup"))
        .await;
    assert_eq!(a.status, 200);
    let v = a.json();
    let mut expected: Vec<&str> = CALL_KEYS.to_vec();
    expected.push("events");
    expected.sort_unstable();
    assert_eq!(keys(&v), expected);
    assert_eq!(v["id"], h.seed.call_message.as_str());
    assert_eq!(v["recordings"], serde_json::json!([h.seed.rec_message]));
    let events = v["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["answered", "digit", "recording"]);
    assert_eq!(keys(&events[1]), ["at", "detail", "kind"]);
    assert_eq!(events[1]["detail"], "1");
    assert_eq!(events[1]["at"], "2026-11-01T12:34:57.000Z");

    let a = h
        .get("/api/calls/01JC00000000000000000000ZZ", Some("sup"))
        .await;
    assert_eq!(a.error(404), "no such call");
    let a = h.get("/api/calls/..%2Fetc", Some("sup")).await;
    assert_eq!(a.error(404), "no such call");
}

async fn operators_see_calls_without_recording_ids(h: Harness) {
    let v = h.get("/api/calls", Some("ana")).await.json();
    for c in calls(&v) {
        let mut expected: Vec<&str> = CALL_KEYS.to_vec();
        expected.retain(|k| *k != "recordings");
        assert_eq!(keys(c), expected);
    }
    let a = h
        .get(&format!("/api/calls/{}", h.seed.call_operator), Some("ana"))
        .await;
    let v = a.json();
    assert!(v.get("recordings").is_none(), "{v}");
    assert!(!String::from_utf8_lossy(&a.body).contains(&h.seed.rec_conversation));
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
}

async fn marks_and_keypad_answers_for_every_role(h: Harness) {
    let safety = h.seed_safety().await;
    h.mark_call(&safety.call, &["quick-exit", "silent"]).await;
    let expected_answers: Vec<Value> = SAFETY_ANSWERS
        .iter()
        .map(|(q, a)| serde_json::json!({"question": q, "answer": a}))
        .collect();
    // Operators see them too: they are about the call, not the caller's number.
    for who in ["sup", "ana"] {
        let v = h
            .get(&format!("/api/calls/{}", safety.call), Some(who))
            .await
            .json();
        assert_eq!(
            v["marks"],
            serde_json::json!(["quick-exit", "silent"]),
            "{who}: {v}"
        );
        assert_eq!(
            v["answers"],
            Value::Array(expected_answers.clone()),
            "{who}"
        );
        assert_eq!(keys(&v["answers"][0]), ["answer", "question"]);
        let v = h.get("/api/calls", Some(who)).await.json();
        let list = calls(&v);
        let by_id = |id: &str| list.iter().find(|c| c["id"] == id).unwrap().clone();
        assert_eq!(
            by_id(&safety.call)["answers"],
            Value::Array(expected_answers.clone())
        );
        assert_eq!(
            by_id(&safety.quick_exit)["marks"],
            serde_json::json!(["quick-exit"])
        );
        for silent in &safety.silent {
            let c = by_id(silent);
            assert_eq!(c["marks"], serde_json::json!(["silent"]), "{who}");
            assert_eq!(c["answers"], serde_json::json!([]));
        }
    }
}

both!(
    lists_newest_first_with_the_contract_fields,
    marks_and_keypad_answers_for_every_role,
    filters_and_limit,
    one_call_with_its_events,
    operators_see_calls_without_recording_ids,
);
