//! The CallStore contract: every case runs against SQLite (a temp file) and PostgreSQL (a fresh
//! schema in the `test` database; the test fails, naming the URL, if PostgreSQL is not there).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use hotline_store::{
    AuditFilter, Backend, CallFilter, CallStore, CallUpdate, Caller, DailyStat, Disposition,
    Envelope, NewApiToken, NewAuditEntry, NewCall, NewCallEvent, NewCallNote, NewRecording,
    NewSession, NewUser, RecordingFilter, RecordingKind, RecordingStatus, RecordingUpdate, Role,
    StoreError, Timestamp, TokenHash, UserUpdate, Write, Zone, new_id,
};

const T0: i64 = 1_793_536_496_000; // 2026-11-01T12:34:56Z

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset_ms)
}

fn new_call(id: &str, sip_call_id: &str, started: Timestamp) -> NewCall {
    NewCall {
        id: id.to_owned(),
        sip_call_id: sip_call_id.to_owned(),
        reference: None,
        started_at: started,
        trunk_source: Some("192.0.2.10:5060".into()),
        called_number: Some("1818".into()),
        caller: Caller::Pseudonym("ab".repeat(32)),
        node: None,
    }
}

fn new_recording(id: &str, call_id: &str, created: Timestamp, kind: RecordingKind) -> NewRecording {
    NewRecording {
        id: id.to_owned(),
        call_id: call_id.to_owned(),
        kind,
        path: format!("recordings/{id}.wav"),
        created_at: created,
        duration_ms: 12_340,
        bytes: 197_484,
        sha256: "0f".repeat(32),
        status: RecordingStatus::New,
        tags: vec![],
        notes: String::new(),
    }
}

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        name: name.to_owned(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        sip_ha1_md5: Some("a".repeat(32)),
        sip_ha1_sha256: Some("b".repeat(64)),
        languages: vec!["es".into(), "qu".into()],
        created_at: at(0),
    }
}

fn env(op: Write) -> Envelope {
    Envelope {
        op_id: new_id(),
        op,
    }
}

mod cases {
    use super::*;

    pub(crate) async fn migrations_are_idempotent(s: Arc<dyn CallStore>, backend: Backend) {
        assert_eq!(s.backend(), backend);
        s.migrate().await.expect("second migrate is a no-op");
        s.ping().await.expect("ping");
    }

    pub(crate) async fn insert_call_gives_unique_six_digit_references(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let mut seen = HashSet::new();
        for i in 0..60 {
            let r = s
                .insert_call(&new_call(&format!("call-{i}"), &format!("sip-{i}"), at(i)))
                .await
                .unwrap();
            assert_eq!(r.len(), 6, "{r}");
            assert!(
                r.bytes().all(|b| b.is_ascii_digit()) && !r.starts_with('0'),
                "{r}"
            );
            assert!(seen.insert(r), "duplicate reference");
        }
        // Same id again: the stored reference, no second row.
        let first = s.get_call("call-0").await.unwrap().unwrap().call.reference;
        assert_eq!(
            s.insert_call(&new_call("call-0", "other", at(999)))
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            s.list_calls(&CallFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
            60
        );
        // A reference given by the caller is kept.
        let mut c = new_call("given", "sip-given", at(100));
        c.reference = Some("424242".into());
        assert_eq!(s.insert_call(&c).await.unwrap(), "424242");
        // One already taken is replaced, and the call's events say which number was given out.
        let mut c = new_call("clash", "sip-clash", at(101));
        c.reference = Some("424242".into());
        let r = s.insert_call(&c).await.unwrap();
        assert_ne!(r, "424242");
        let d = s.get_call("clash").await.unwrap().unwrap();
        assert_eq!(d.call.reference, r);
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.events[0].kind, "reference_reassigned");
        assert!(d.events[0].detail.contains("424242"));
        assert!(matches!(
            s.insert_call(&new_call("", "x", at(0))).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub(crate) async fn calls_round_trip_and_update_only_given_fields(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let mut c = new_call("c1", "a84b4c76e66710@pc33.example", at(0));
        c.caller = Caller::Number("987654321".into());
        let reference = s.insert_call(&c).await.unwrap();
        let got = s.get_call("c1").await.unwrap().unwrap().call;
        assert_eq!(got.id, "c1");
        assert_eq!(got.sip_call_id, "a84b4c76e66710@pc33.example");
        assert_eq!(got.reference, reference);
        assert_eq!(got.started_at, at(0));
        assert_eq!(got.trunk_source.as_deref(), Some("192.0.2.10:5060"));
        assert_eq!(got.called_number.as_deref(), Some("1818"));
        assert_eq!(got.caller, Caller::Number("987654321".into()));
        assert_eq!(
            (got.answered_at, got.ended_at, got.language.clone()),
            (None, None, None)
        );
        assert_eq!(
            (got.disposition, got.queue_wait_ms, got.operator.clone()),
            (None, None, None)
        );
        assert!(got.path.is_empty() && got.recordings.is_empty());

        s.update_call(
            "c1",
            &CallUpdate {
                answered_at: Some(at(120)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.update_call(
            "c1",
            &CallUpdate {
                language: Some("qu".into()),
                path: Some(vec!["language".into(), "main".into(), "operator".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.update_call(
            "c1",
            &CallUpdate {
                ended_at: Some(at(95_000)),
                disposition: Some(Disposition::Operator),
                queue_wait_ms: Some(31_500),
                operator: Some("ana".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let got = s.get_call("c1").await.unwrap().unwrap().call;
        assert_eq!(got.answered_at, Some(at(120)));
        assert_eq!(got.ended_at, Some(at(95_000)));
        assert_eq!(got.language.as_deref(), Some("qu"));
        assert_eq!(got.path, ["language", "main", "operator"]);
        assert_eq!(got.disposition, Some(Disposition::Operator));
        assert_eq!(got.queue_wait_ms, Some(31_500));
        assert_eq!(got.operator.as_deref(), Some("ana"));

        // The other caller kinds.
        let mut c = new_call("c2", "s2", at(1));
        c.caller = Caller::Absent;
        s.insert_call(&c).await.unwrap();
        assert_eq!(
            s.get_call("c2").await.unwrap().unwrap().call.caller,
            Caller::Absent
        );
        let p = "ab".repeat(32);
        s.insert_call(&new_call("c3", "s3", at(2))).await.unwrap();
        assert_eq!(
            s.get_call("c3").await.unwrap().unwrap().call.caller,
            Caller::Pseudonym(p)
        );

        assert!(s.get_call("nope").await.unwrap().is_none());
        assert!(matches!(
            s.update_call(
                "nope",
                &CallUpdate {
                    language: Some("es".into()),
                    ..Default::default()
                }
            )
            .await,
            Err(StoreError::NotFound(_))
        ));
    }

    pub(crate) async fn call_events_keep_their_order_and_are_idempotent(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        s.insert_call(&new_call("c", "s", at(0))).await.unwrap();
        let kinds = ["answered", "digit", "digit", "enqueued", "bridged"];
        let mut ids = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let id = new_id();
            ids.push(id.clone());
            // Two events at the same millisecond keep their insertion order.
            let when = if i == 2 { at(10) } else { at(i as i64 * 10) };
            s.add_call_event(&NewCallEvent {
                id,
                call_id: "c".into(),
                at: when,
                kind: (*kind).into(),
                detail: format!("detail {i}"),
            })
            .await
            .unwrap();
        }
        // The same event again changes nothing.
        s.add_call_event(&NewCallEvent {
            id: ids[0].clone(),
            call_id: "c".into(),
            at: at(0),
            kind: "answered".into(),
            detail: "detail 0".into(),
        })
        .await
        .unwrap();
        let d = s.get_call("c").await.unwrap().unwrap();
        let got: Vec<(&str, &str)> = d
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("answered", "detail 0"),
                ("digit", "detail 1"),
                ("digit", "detail 2"),
                ("enqueued", "detail 3"),
                ("bridged", "detail 4")
            ]
        );
        assert_eq!(d.events[1].at, at(10));
        assert!(matches!(
            s.add_call_event(&NewCallEvent {
                id: new_id(),
                call_id: "missing".into(),
                at: at(0),
                kind: "x".into(),
                detail: String::new()
            })
            .await,
            Err(StoreError::NotFound(_))
        ));
    }

    pub(crate) async fn list_calls_newest_first_with_filters(s: Arc<dyn CallStore>, _: Backend) {
        let mut refs = Vec::new();
        for i in 0..5 {
            refs.push(
                s.insert_call(&new_call(
                    &format!("c{i}"),
                    &format!("sip-{i}"),
                    at(i * 1000),
                ))
                .await
                .unwrap(),
            );
        }
        s.insert_recording(&new_recording(
            "r-b",
            "c3",
            at(3500),
            RecordingKind::Conversation,
        ))
        .await
        .unwrap();
        s.insert_recording(&new_recording(
            "r-a",
            "c3",
            at(3100),
            RecordingKind::Message,
        ))
        .await
        .unwrap();
        let all = s.list_calls(&CallFilter::default()).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c4", "c3", "c2", "c1", "c0"]);
        assert_eq!(all[1].recordings, ["r-a", "r-b"]);
        assert!(all[0].recordings.is_empty());

        let two = s
            .list_calls(&CallFilter {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(two.len(), 2);
        let by_sip = s
            .list_calls(&CallFilter {
                sip_call_id: Some("sip-2".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_sip.len(), 1);
        assert_eq!(by_sip[0].id, "c2");
        let by_ref = s
            .list_calls(&CallFilter {
                reference: Some(refs[1].clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            by_ref.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c1"]
        );
        let page = s
            .list_calls(&CallFilter {
                started_before: Some(at(2000)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c1", "c0"]
        );
        let none = s
            .list_calls(&CallFilter {
                sip_call_id: Some("nope".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
        // get_call carries recording ids too.
        assert_eq!(
            s.get_call("c3").await.unwrap().unwrap().call.recordings,
            ["r-a", "r-b"]
        );
    }

    pub(crate) async fn recordings_round_trip_filter_and_review(s: Arc<dyn CallStore>, _: Backend) {
        s.insert_call(&new_call("es-call", "s1", at(0)))
            .await
            .unwrap();
        s.update_call(
            "es-call",
            &CallUpdate {
                language: Some("es".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.insert_call(&new_call("qu-call", "s2", at(10)))
            .await
            .unwrap();
        s.update_call(
            "qu-call",
            &CallUpdate {
                language: Some("qu".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut m1 = new_recording("m1", "es-call", at(1000), RecordingKind::Message);
        m1.tags = vec!["urgent".into()];
        m1.notes = "first".into();
        s.insert_recording(&m1).await.unwrap();
        s.insert_recording(&new_recording(
            "v1",
            "es-call",
            at(2000),
            RecordingKind::Conversation,
        ))
        .await
        .unwrap();
        s.insert_recording(&new_recording(
            "m2",
            "qu-call",
            at(3000),
            RecordingKind::Message,
        ))
        .await
        .unwrap();
        // Idempotent.
        s.insert_recording(&m1).await.unwrap();

        let r = s.get_recording("m1").await.unwrap().unwrap();
        assert_eq!(r.call_id, "es-call");
        assert_eq!(r.kind, RecordingKind::Message);
        assert_eq!(r.path, "recordings/m1.wav");
        assert_eq!(r.created_at, at(1000));
        assert_eq!((r.duration_ms, r.bytes), (12_340, 197_484));
        assert_eq!(r.sha256, "0f".repeat(32));
        assert_eq!(r.status, RecordingStatus::New);
        assert_eq!(r.tags, ["urgent"]);
        assert_eq!(r.notes, "first");
        assert_eq!(r.language.as_deref(), Some("es"));
        assert!(s.get_recording("nope").await.unwrap().is_none());

        let ids =
            |v: Vec<hotline_store::Recording>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s
                .list_recordings(&RecordingFilter::default())
                .await
                .unwrap()),
            ["m2", "v1", "m1"]
        );
        let f = |f: RecordingFilter| {
            let s = s.clone();
            async move { ids(s.list_recordings(&f).await.unwrap()) }
        };
        assert_eq!(
            f(RecordingFilter {
                limit: 1,
                ..Default::default()
            })
            .await,
            ["m2"]
        );
        assert_eq!(
            f(RecordingFilter {
                kind: Some(RecordingKind::Message),
                ..Default::default()
            })
            .await,
            ["m2", "m1"]
        );
        assert_eq!(
            f(RecordingFilter {
                language: Some("es".into()),
                ..Default::default()
            })
            .await,
            ["v1", "m1"]
        );
        assert_eq!(
            f(RecordingFilter {
                call_id: Some("qu-call".into()),
                ..Default::default()
            })
            .await,
            ["m2"]
        );
        assert_eq!(
            f(RecordingFilter {
                since: Some(at(1000)),
                until: Some(at(3000)),
                ..Default::default()
            })
            .await,
            ["v1", "m1"]
        );

        let r = s
            .update_recording(
                "m1",
                &RecordingUpdate {
                    status: Some(RecordingStatus::Referred),
                    tags: Some(vec!["urgent".into(), "lima".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(r.status, RecordingStatus::Referred);
        assert_eq!(r.tags, ["urgent", "lima"]);
        assert_eq!(r.notes, "first");
        let r = s
            .update_recording(
                "m1",
                &RecordingUpdate {
                    notes: Some("called back".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.notes.as_str()),
            (RecordingStatus::Referred, "called back")
        );
        assert_eq!(
            f(RecordingFilter {
                status: Some(RecordingStatus::Referred),
                ..Default::default()
            })
            .await,
            ["m1"]
        );
        assert_eq!(
            f(RecordingFilter {
                status: Some(RecordingStatus::New),
                ..Default::default()
            })
            .await,
            ["m2", "v1"]
        );

        assert!(matches!(
            s.update_recording(
                "nope",
                &RecordingUpdate {
                    notes: Some("x".into()),
                    ..Default::default()
                }
            )
            .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.insert_recording(&new_recording(
                "orphan",
                "no-call",
                at(0),
                RecordingKind::Message
            ))
            .await,
            Err(StoreError::NotFound(_))
        ));
    }

    pub(crate) async fn users(s: Arc<dyn CallStore>, _: Backend) {
        s.create_user(&new_user("ana", Role::Operator))
            .await
            .unwrap();
        s.create_user(&new_user("beto", Role::Admin)).await.unwrap();
        assert!(matches!(
            s.create_user(&new_user("ana", Role::Admin)).await,
            Err(StoreError::Conflict(_))
        ));
        let ana = s.get_user("ana").await.unwrap().unwrap();
        assert_eq!(ana.role, Role::Operator);
        assert_eq!(
            ana.password_hash,
            new_user("ana", Role::Operator).password_hash
        );
        assert_eq!(ana.sip_ha1_md5.as_deref(), Some("a".repeat(32).as_str()));
        assert_eq!(ana.sip_ha1_sha256.as_deref(), Some("b".repeat(64).as_str()));
        assert_eq!(ana.languages, ["es", "qu"]);
        assert!(!ana.disabled);
        assert_eq!(ana.created_at, at(0));
        assert!(s.get_user("nobody").await.unwrap().is_none());
        let names: Vec<String> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["ana", "beto"]);

        let ana = s
            .update_user(
                "ana",
                &UserUpdate {
                    role: Some(Role::Supervisor),
                    languages: Some(vec!["qu".into()]),
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((ana.role, ana.disabled), (Role::Supervisor, true));
        assert_eq!(ana.languages, ["qu"]);
        assert_eq!(ana.sip_ha1_md5.as_deref(), Some("a".repeat(32).as_str()));
        let ana = s
            .update_user(
                "ana",
                &UserUpdate {
                    password_hash: Some("$argon2id$new".into()),
                    sip_ha1_md5: Some("c".repeat(32)),
                    sip_ha1_sha256: Some("d".repeat(64)),
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(ana.password_hash, "$argon2id$new");
        assert_eq!(ana.sip_ha1_sha256.as_deref(), Some("d".repeat(64).as_str()));
        assert!(!ana.disabled);
        assert!(matches!(
            s.update_user("nobody", &UserUpdate::default()).await,
            Err(StoreError::NotFound(_))
        ));
        let mut bad = new_user(" ", Role::Operator);
        bad.name = " ".into();
        assert!(matches!(
            s.create_user(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub(crate) async fn api_tokens_are_stored_hashed(s: Arc<dyn CallStore>, _: Backend) {
        let (token, hash) = TokenHash::generate();
        let t = NewApiToken {
            hash: hash.clone(),
            user: "ana".into(),
            label: "backup".into(),
            created_at: at(5),
        };
        assert!(matches!(
            s.create_api_token(&t).await,
            Err(StoreError::NotFound(_))
        ));
        s.create_user(&new_user("ana", Role::Supervisor))
            .await
            .unwrap();
        s.create_api_token(&t).await.unwrap();
        assert!(matches!(
            s.create_api_token(&t).await,
            Err(StoreError::Conflict(_))
        ));
        let found = s
            .find_api_token(&TokenHash::of(&token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.user, "ana");
        assert_eq!(found.label, "backup");
        assert_eq!(found.created_at, at(5));
        assert_eq!(found.hash, hash);
        assert_ne!(found.hash.as_str(), token);
        assert!(
            s.find_api_token(&TokenHash::of("wrong"))
                .await
                .unwrap()
                .is_none()
        );
        let (_, second) = TokenHash::generate();
        s.create_api_token(&NewApiToken {
            hash: second,
            user: "ana".into(),
            label: "cli".into(),
            created_at: at(6),
        })
        .await
        .unwrap();
        let labels: Vec<String> = s
            .list_api_tokens("ana")
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.label)
            .collect();
        assert_eq!(labels, ["backup", "cli"]);
        assert!(s.delete_api_token(&hash).await.unwrap());
        assert!(!s.delete_api_token(&hash).await.unwrap());
        assert!(s.find_api_token(&hash).await.unwrap().is_none());
        assert_eq!(s.list_api_tokens("ana").await.unwrap().len(), 1);
    }

    pub(crate) async fn audit_log_appends_and_lists_newest_first(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let entry = |i: i64, user: Option<&str>, rec: Option<&str>| NewAuditEntry {
            id: new_id(),
            at: at(i * 1000),
            user: user.map(str::to_owned),
            action: format!("action-{i}"),
            recording_id: rec.map(str::to_owned),
            source: Some("203.0.113.7:51515".into()),
            detail: format!("detail {i}"),
        };
        let first = entry(0, Some("ana"), Some("r1"));
        s.append_audit(&first).await.unwrap();
        s.append_audit(&first).await.unwrap(); // idempotent on its id
        s.append_audit(&entry(1, Some("beto"), Some("r1")))
            .await
            .unwrap();
        s.append_audit(&entry(2, Some("ana"), None)).await.unwrap();
        s.append_audit(&entry(3, None, Some("r2"))).await.unwrap();
        let all = s.list_audit(&AuditFilter::default()).await.unwrap();
        let actions: Vec<&str> = all.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["action-3", "action-2", "action-1", "action-0"]);
        let last = &all[3];
        assert_eq!(last.id, first.id);
        assert_eq!(last.at, at(0));
        assert_eq!(last.user.as_deref(), Some("ana"));
        assert_eq!(last.recording_id.as_deref(), Some("r1"));
        assert_eq!(last.source.as_deref(), Some("203.0.113.7:51515"));
        assert_eq!(last.detail, "detail 0");
        assert_eq!(all[0].user, None);
        let by_user = s
            .list_audit(&AuditFilter {
                user: Some("ana".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_user.len(), 2);
        let by_rec = s
            .list_audit(&AuditFilter {
                recording_id: Some("r1".into()),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            by_rec.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
            ["action-1"]
        );
    }

    fn new_session(id_hash: &str, user: &str, created: Timestamp) -> NewSession {
        NewSession {
            id_hash: id_hash.to_owned(),
            user: user.to_owned(),
            csrf: format!("csrf-{id_hash}"),
            created_at: created,
            last_seen: created,
            expires_at: created.add_millis(12 * 3600 * 1000),
            source: Some("203.0.113.7:51515".into()),
        }
    }

    pub(crate) async fn sessions_round_trip_touch_and_delete(s: Arc<dyn CallStore>, _: Backend) {
        s.create_user(&new_user("ana", Role::Operator))
            .await
            .unwrap();
        s.create_user(&new_user("beto", Role::Supervisor))
            .await
            .unwrap();
        let a1 = new_session(&"a1".repeat(32), "ana", at(0));
        s.create_session(&a1).await.unwrap();
        let got = s.get_session(&a1.id_hash).await.unwrap().unwrap();
        assert_eq!(got.id_hash, a1.id_hash);
        assert_eq!(got.user, "ana");
        assert_eq!(got.csrf, a1.csrf);
        assert_eq!(got.created_at, at(0));
        assert_eq!(got.last_seen, at(0));
        assert_eq!(got.expires_at, at(12 * 3600 * 1000));
        assert_eq!(got.source.as_deref(), Some("203.0.113.7:51515"));
        let debug = format!("{got:?} {a1:?}");
        assert!(!debug.contains("csrf-"), "{debug}");
        assert!(s.get_session(&"00".repeat(32)).await.unwrap().is_none());

        // The same id again is a conflict; a session needs an existing user.
        assert!(matches!(
            s.create_session(&a1).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.create_session(&new_session(&"0c".repeat(32), "nobody", at(0)))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.create_session(&new_session("", "ana", at(0))).await,
            Err(StoreError::Invalid(_))
        ));

        // Touch moves last_seen forward only.
        s.touch_session(&a1.id_hash, at(60_000)).await.unwrap();
        assert_eq!(
            s.get_session(&a1.id_hash).await.unwrap().unwrap().last_seen,
            at(60_000)
        );
        s.touch_session(&a1.id_hash, at(30_000)).await.unwrap();
        assert_eq!(
            s.get_session(&a1.id_hash).await.unwrap().unwrap().last_seen,
            at(60_000)
        );
        assert!(matches!(
            s.touch_session(&"00".repeat(32), at(1)).await,
            Err(StoreError::NotFound(_))
        ));

        // Sign-out of one session; then of every session of a user.
        let mut source_less = new_session(&"a2".repeat(32), "ana", at(1));
        source_less.source = None;
        s.create_session(&source_less).await.unwrap();
        assert_eq!(
            s.get_session(&source_less.id_hash)
                .await
                .unwrap()
                .unwrap()
                .source,
            None
        );
        s.create_session(&new_session(&"a3".repeat(32), "ana", at(2)))
            .await
            .unwrap();
        let b1 = new_session(&"b1".repeat(32), "beto", at(3));
        s.create_session(&b1).await.unwrap();
        assert!(s.delete_session(&a1.id_hash).await.unwrap());
        assert!(!s.delete_session(&a1.id_hash).await.unwrap());
        assert!(s.get_session(&a1.id_hash).await.unwrap().is_none());
        assert_eq!(s.delete_user_sessions("ana").await.unwrap(), 2);
        assert_eq!(s.delete_user_sessions("ana").await.unwrap(), 0);
        assert!(s.get_session(&"a3".repeat(32)).await.unwrap().is_none());
        assert!(s.get_session(&b1.id_hash).await.unwrap().is_some());
    }

    pub(crate) async fn purge_sessions_removes_idle_and_expired(s: Arc<dyn CallStore>, _: Backend) {
        s.create_user(&new_user("ana", Role::Operator))
            .await
            .unwrap();
        let hour = 3600 * 1000;
        // Active and within its 12 h.
        let live = new_session(&"01".repeat(32), "ana", at(0));
        // Idle: last seen before the idle limit.
        let idle = new_session(&"02".repeat(32), "ana", at(0));
        // Busy but past its absolute end (exactly at it counts as ended).
        let mut ended = new_session(&"03".repeat(32), "ana", at(-12 * hour));
        ended.expires_at = at(2 * hour);
        for x in [&live, &idle, &ended] {
            s.create_session(x).await.unwrap();
        }
        s.touch_session(&live.id_hash, at(2 * hour - 1000))
            .await
            .unwrap();
        s.touch_session(&ended.id_hash, at(2 * hour - 1000))
            .await
            .unwrap();
        // Now is 2 h after T0; idle limit 30 min.
        let now = at(2 * hour);
        let purged = s
            .purge_sessions(now.add_millis(-hour / 2), now)
            .await
            .unwrap();
        assert_eq!(purged, 2);
        assert!(s.get_session(&live.id_hash).await.unwrap().is_some());
        assert!(s.get_session(&idle.id_hash).await.unwrap().is_none());
        assert!(s.get_session(&ended.id_hash).await.unwrap().is_none());
        assert_eq!(
            s.purge_sessions(now.add_millis(-hour / 2), now)
                .await
                .unwrap(),
            0
        );
    }

    pub(crate) async fn call_notes_oldest_first_idempotent_and_need_a_call(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        s.insert_call(&new_call("n1", "sip-n1", at(0)))
            .await
            .unwrap();
        s.insert_call(&new_call("n2", "sip-n2", at(1)))
            .await
            .unwrap();
        let note = |id: &str, call: &str, t: i64, text: &str| NewCallNote {
            id: id.to_owned(),
            call_id: call.to_owned(),
            author: "ana".into(),
            at: at(t),
            text: text.to_owned(),
        };
        // Written out of order; two at the same instant keep their insertion order.
        s.add_call_note(&note("x3", "n1", 3000, "tercera"))
            .await
            .unwrap();
        s.add_call_note(&note("x1", "n1", 1000, "primera: habla de Cusco"))
            .await
            .unwrap();
        s.add_call_note(&note("x2", "n1", 3000, "segunda"))
            .await
            .unwrap();
        s.add_call_note(&note("y1", "n2", 500, "otra llamada"))
            .await
            .unwrap();
        // A replay of the same id changes nothing, even with other content.
        s.add_call_note(&note("x1", "n1", 9000, "changed"))
            .await
            .unwrap();
        let notes = s.list_call_notes("n1").await.unwrap();
        let ids: Vec<&str> = notes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["x1", "x3", "x2"]);
        assert_eq!(notes[0].call_id, "n1");
        assert_eq!(notes[0].author, "ana");
        assert_eq!(notes[0].at, at(1000));
        assert_eq!(notes[0].text, "primera: habla de Cusco");
        assert_eq!(s.list_call_notes("n2").await.unwrap().len(), 1);
        assert!(s.list_call_notes("nope").await.unwrap().is_empty());
        assert!(matches!(
            s.add_call_note(&note("z1", "nope", 0, "?")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.add_call_note(&note("", "n1", 0, "?")).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub(crate) async fn list_calls_since_and_ended(s: Arc<dyn CallStore>, _: Backend) {
        for i in 0..4 {
            s.insert_call(&new_call(
                &format!("d{i}"),
                &format!("sip-d{i}"),
                at(i * 1000),
            ))
            .await
            .unwrap();
        }
        for id in ["d0", "d2"] {
            s.update_call(
                id,
                &CallUpdate {
                    ended_at: Some(at(5000)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        let ids =
            |calls: Vec<hotline_store::Call>| calls.into_iter().map(|c| c.id).collect::<Vec<_>>();
        let since = s
            .list_calls(&CallFilter {
                started_since: Some(at(1000)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(since), ["d3", "d2", "d1"]);
        let ended = s
            .list_calls(&CallFilter {
                ended: Some(true),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(ended), ["d2", "d0"]);
        let live = s
            .list_calls(&CallFilter {
                ended: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(live), ["d3", "d1"]);
        let window = s
            .list_calls(&CallFilter {
                started_since: Some(at(1000)),
                started_before: Some(at(3000)),
                ended: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(window), ["d1"]);
    }

    pub(crate) async fn count_calls_by_caller_counts_earlier_calls_of_the_same_caller(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let p1 = Caller::Pseudonym("11".repeat(32));
        let p2 = Caller::Pseudonym("22".repeat(32));
        let calls = [
            ("e0", p1.clone(), 0),
            ("e1", p1.clone(), 1000),
            ("e2", p2.clone(), 1500),
            ("e3", p1.clone(), 2000),
            ("e4", Caller::Absent, 2500),
            ("e5", Caller::Absent, 2600),
            // Same text, other kind: not the same caller.
            ("e6", Caller::Number("11".repeat(32)), 2700),
        ];
        for (id, caller, t) in calls {
            s.insert_call(&NewCall {
                caller,
                ..new_call(id, &format!("sip-{id}"), at(t))
            })
            .await
            .unwrap();
        }
        assert_eq!(s.count_calls_by_caller(&p1, at(2000)).await.unwrap(), 2);
        assert_eq!(s.count_calls_by_caller(&p1, at(2001)).await.unwrap(), 3);
        assert_eq!(s.count_calls_by_caller(&p1, at(0)).await.unwrap(), 0);
        assert_eq!(s.count_calls_by_caller(&p2, at(9000)).await.unwrap(), 1);
        assert_eq!(
            s.count_calls_by_caller(&Caller::Number("11".repeat(32)), at(9000))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.count_calls_by_caller(&Caller::Absent, at(9000))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.count_calls_by_caller(&Caller::Pseudonym("33".repeat(32)), at(9000))
                .await
                .unwrap(),
            0
        );
    }

    pub(crate) async fn marks_and_answers_round_trip_and_silent_calls_are_counted(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let p1 = Caller::Pseudonym("44".repeat(32));
        for (id, t) in [("m0", 0), ("m1", 1000), ("m2", 2000), ("m3", 3000)] {
            s.insert_call(&NewCall {
                caller: p1.clone(),
                node: None,
                ..new_call(id, &format!("sip-{id}"), at(t))
            })
            .await
            .unwrap();
        }
        let answers = vec![
            hotline_store::Answer {
                question: "En peligro ahora".into(),
                answer: "sí".into(),
            },
            hotline_store::Answer {
                question: "Región".into(),
                answer: "Madre de Dios".into(),
            },
        ];
        let mark = |id: &'static str, marks: &[&str]| {
            let s = Arc::clone(&s);
            let marks: Vec<String> = marks.iter().map(|m| (*m).to_owned()).collect();
            async move {
                s.update_call(
                    id,
                    &CallUpdate {
                        marks: Some(marks),
                        ..CallUpdate::default()
                    },
                )
                .await
                .unwrap()
            }
        };
        mark("m0", &["silent"]).await;
        mark("m1", &["quick-exit"]).await;
        mark("m2", &["quick-exit", "silent"]).await;
        s.update_call(
            "m3",
            &CallUpdate {
                answers: Some(answers.clone()),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
        let m2 = s.get_call("m2").await.unwrap().unwrap().call;
        assert_eq!(m2.marks, ["quick-exit", "silent"]);
        assert!(m2.answers.is_empty());
        let m3 = s.get_call("m3").await.unwrap().unwrap().call;
        assert_eq!(m3.answers, answers);
        assert!(m3.marks.is_empty());
        // An update without marks leaves them.
        s.update_call(
            "m2",
            &CallUpdate {
                language: Some("qu".into()),
                ..CallUpdate::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(s.get_call("m2").await.unwrap().unwrap().call.marks.len(), 2);
        let silent = |before| s.count_marked_calls_by_caller(&p1, "silent", at(before));
        assert_eq!(silent(3000).await.unwrap(), 2);
        assert_eq!(silent(1500).await.unwrap(), 1);
        assert_eq!(
            s.count_marked_calls_by_caller(&p1, "quick-exit", at(9000))
                .await
                .unwrap(),
            2
        );
        // A word inside another is not the mark.
        assert_eq!(
            s.count_marked_calls_by_caller(&p1, "exit", at(9000))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.count_marked_calls_by_caller(&Caller::Absent, "silent", at(9000))
                .await
                .unwrap(),
            0
        );
    }

    pub(crate) async fn daily_stats_by_local_day_language_and_disposition(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        // T0 is 2026-11-01T12:34:56Z.
        let hour = 3600 * 1000;
        type Row<'a> = (
            &'a str,
            i64,
            Option<&'a str>,
            Option<Disposition>,
            Option<i64>,
        );
        let calls: [Row; 9] = [
            // 2026-10-31T22:34:56Z, before `since`: not counted.
            (
                "s0",
                -14 * hour,
                Some("es"),
                Some(Disposition::Operator),
                Some(5),
            ),
            // 2026-10-31T23:34:56Z, exactly `since`: counted, on the 31st.
            (
                "s1",
                -13 * hour,
                Some("es"),
                Some(Disposition::Operator),
                Some(1000),
            ),
            // 2026-11-01.
            ("s2", 0, Some("es"), Some(Disposition::Operator), Some(2000)),
            (
                "s3",
                hour,
                Some("es"),
                Some(Disposition::Operator),
                Some(6000),
            ),
            (
                "s4",
                2 * hour,
                Some("es"),
                Some(Disposition::Operator),
                None,
            ),
            ("s5", 3 * hour, Some("qu"), Some(Disposition::Message), None),
            ("s6", 4 * hour, None, Some(Disposition::Abandoned), None),
            ("s7", 5 * hour, Some("es"), None, None),
            // 2026-11-02T00:34:56Z.
            (
                "s8",
                12 * hour,
                Some("qu"),
                Some(Disposition::Operator),
                Some(30_000),
            ),
        ];
        for (id, t, language, disposition, queue_wait_ms) in calls {
            s.insert_call(&new_call(id, &format!("sip-{id}"), at(t)))
                .await
                .unwrap();
            s.update_call(
                id,
                &CallUpdate {
                    language: language.map(str::to_owned),
                    disposition,
                    queue_wait_ms,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        }
        let stat = |day: &str,
                    language: Option<&str>,
                    disposition: Option<Disposition>,
                    calls: u64,
                    waits: (u64, i64, i64)| DailyStat {
            day: day.to_owned(),
            language: language.map(str::to_owned),
            disposition,
            calls,
            queue_wait_count: waits.0,
            queue_wait_ms_sum: waits.1,
            queue_wait_ms_max: waits.2,
        };
        let got = s.daily_stats(at(-13 * hour), &Zone::utc()).await.unwrap();
        assert_eq!(
            got,
            [
                stat(
                    "2026-10-31",
                    Some("es"),
                    Some(Disposition::Operator),
                    1,
                    (1, 1000, 1000)
                ),
                stat(
                    "2026-11-01",
                    None,
                    Some(Disposition::Abandoned),
                    1,
                    (0, 0, 0)
                ),
                stat("2026-11-01", Some("es"), None, 1, (0, 0, 0)),
                stat(
                    "2026-11-01",
                    Some("es"),
                    Some(Disposition::Operator),
                    3,
                    (2, 8000, 6000)
                ),
                stat(
                    "2026-11-01",
                    Some("qu"),
                    Some(Disposition::Message),
                    1,
                    (0, 0, 0)
                ),
                stat(
                    "2026-11-02",
                    Some("qu"),
                    Some(Disposition::Operator),
                    1,
                    (1, 30_000, 30_000)
                ),
            ]
        );
        assert!(
            s.daily_stats(at(13 * hour), &Zone::utc())
                .await
                .unwrap()
                .is_empty()
        );
        // On Lima's clock (UTC−5) s8, 19:34 on Nov 1 there, is Nov 1's: the day no longer
        // turns over at 19:00.
        let lima = s.daily_stats(at(-13 * hour), &Zone::lima()).await.unwrap();
        let day_of = |language: Option<&str>, disposition| {
            lima.iter()
                .filter(|r| r.language.as_deref() == language && r.disposition == disposition)
                .map(|r| (r.day.as_str(), r.calls))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            day_of(Some("qu"), Some(Disposition::Operator)),
            [("2026-11-01", 1)]
        );
        assert_eq!(
            day_of(Some("es"), Some(Disposition::Operator)),
            [("2026-10-31", 1), ("2026-11-01", 3)]
        );
        assert_eq!(lima.iter().map(|r| r.calls).sum::<u64>(), 8);
    }

    pub(crate) async fn audit_search_by_action_text_and_time(s: Arc<dyn CallStore>, _: Backend) {
        let entry = |i: i64, user: Option<&str>, action: &str, rec: Option<&str>, detail: &str| {
            NewAuditEntry {
                id: new_id(),
                at: at(i * 1000),
                user: user.map(str::to_owned),
                action: action.to_owned(),
                recording_id: rec.map(str::to_owned),
                source: Some(format!("203.0.113.{i}:51515")),
                detail: detail.to_owned(),
            }
        };
        for e in [
            entry(0, Some("Ana"), "login", None, "signed in"),
            entry(
                1,
                Some("beto"),
                "recording.audio",
                Some("REC-01"),
                "listened",
            ),
            entry(
                2,
                Some("ana"),
                "recording.update",
                Some("rec-02"),
                "status: referred, 50% done",
            ),
            entry(3, None, "login", None, "failed for user MARIA"),
            entry(4, Some("admin"), "user.add", None, "added ana_b"),
        ] {
            s.append_audit(&e).await.unwrap();
        }
        let details = |f: AuditFilter| {
            let s = s.clone();
            async move {
                s.list_audit(&f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.detail)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(details(AuditFilter::default()).await.len(), 5);
        assert_eq!(
            details(AuditFilter {
                action: Some("login".into()),
                ..Default::default()
            })
            .await,
            ["failed for user MARIA", "signed in"]
        );
        // Text: case-insensitive substring over user, action, recording id, source, detail.
        let text = |t: &str| AuditFilter {
            text: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(
            details(text("ANA")).await,
            ["added ana_b", "status: referred, 50% done", "signed in"]
        );
        assert_eq!(
            details(text("rec-0")).await,
            ["status: referred, 50% done", "listened"]
        );
        assert_eq!(details(text("Recording.")).await.len(), 2);
        assert_eq!(details(text("113.3:")).await, ["failed for user MARIA"]);
        assert_eq!(details(text("maria")).await, ["failed for user MARIA"]);
        // Wildcards match themselves.
        assert_eq!(details(text("50%")).await, ["status: referred, 50% done"]);
        assert_eq!(details(text("a_b")).await, ["added ana_b"]);
        assert!(details(text("%%%")).await.is_empty());
        assert!(details(text("nothing like this")).await.is_empty());
        // Time window: since inclusive, until exclusive.
        assert_eq!(
            details(AuditFilter {
                since: Some(at(1000)),
                until: Some(at(3000)),
                ..Default::default()
            })
            .await,
            ["status: referred, 50% done", "listened"]
        );
        // Combined with the older filters.
        assert_eq!(
            details(AuditFilter {
                user: Some("ana".into()),
                text: Some("referred".into()),
                since: Some(at(0)),
                ..Default::default()
            })
            .await,
            ["status: referred, 50% done"]
        );
    }

    pub(crate) async fn close_interrupted_closes_only_the_stopped_run_s_open_calls(
        s: Arc<dyn CallStore>,
        _: Backend,
    ) {
        let sec = 1000;
        let insert = |id: &'static str, started: i64, node: Option<&str>| NewCall {
            node: node.map(str::to_owned),
            ..new_call(id, &format!("sip-{id}"), at(started))
        };
        let event = |call: &str, t: i64, kind: &str| {
            env(Write::AddCallEvent(NewCallEvent {
                id: new_id(),
                call_id: call.into(),
                at: at(t),
                kind: kind.into(),
                detail: String::new(),
            }))
        };
        let mut ops = vec![
            // Open, last trace 5 s in (a repaired message).
            env(Write::InsertCall(insert("open", 0, None))),
            event("open", sec, "node"),
            event("open", 5 * sec, "recording-repaired"),
            // Open, nothing but its start.
            env(Write::InsertCall(insert("bare", sec, None))),
            // Open, with an outcome already: kept.
            env(Write::InsertCall(insert("told", 2 * sec, None))),
            // Another node's open call, an ended one, and one of the new run.
            env(Write::InsertCall(insert("other", 0, Some("n1")))),
            env(Write::InsertCall(insert("ended", 0, None))),
            env(Write::InsertCall(insert("new", 60 * sec, None))),
        ];
        ops.push(env(Write::UpdateCall {
            id: "told".into(),
            update: CallUpdate {
                disposition: Some(Disposition::Message),
                ..Default::default()
            },
        }));
        ops.push(env(Write::UpdateCall {
            id: "ended".into(),
            update: CallUpdate {
                ended_at: Some(at(3 * sec)),
                disposition: Some(Disposition::Abandoned),
                ..Default::default()
            },
        }));
        s.apply_batch(&ops, at(0)).await.unwrap();
        let close = |node: Option<&str>| {
            env(Write::CloseInterrupted {
                node: node.map(str::to_owned),
                before: at(30 * sec),
                detail: "stopped".into(),
            })
        };
        s.apply_batch(&[close(None)], at(30 * sec)).await.unwrap();
        let end = |id: &'static str| {
            let s = s.clone();
            async move {
                let d = s.get_call(id).await.unwrap().unwrap();
                let interrupted: Vec<_> = d
                    .events
                    .iter()
                    .filter(|e| e.kind == "interrupted")
                    .map(|e| (e.at, e.detail.clone()))
                    .collect();
                (d.call.ended_at, d.call.disposition, interrupted)
            }
        };
        let stopped = |t: i64| vec![(at(t), "stopped".to_owned())];
        assert_eq!(
            end("open").await,
            (
                Some(at(5 * sec)),
                Some(Disposition::Interrupted),
                stopped(5 * sec)
            )
        );
        assert_eq!(
            end("bare").await,
            (Some(at(sec)), Some(Disposition::Interrupted), stopped(sec))
        );
        assert_eq!(
            end("told").await,
            (
                Some(at(2 * sec)),
                Some(Disposition::Message),
                stopped(2 * sec)
            )
        );
        assert_eq!(end("other").await, (None, None, vec![]));
        assert_eq!(
            end("ended").await,
            (Some(at(3 * sec)), Some(Disposition::Abandoned), vec![])
        );
        assert_eq!(end("new").await, (None, None, vec![]));
        // Again (a replayed spool, a second start): nothing more, no second event.
        s.apply_batch(&[close(None)], at(31 * sec)).await.unwrap();
        assert_eq!(end("open").await.2, stopped(5 * sec));
        // The other node's, closed by its own restart or an adoption.
        s.apply_batch(&[close(Some("n1"))], at(32 * sec))
            .await
            .unwrap();
        assert_eq!(
            end("other").await,
            (Some(at(0)), Some(Disposition::Interrupted), stopped(0))
        );
        assert_eq!(end("new").await, (None, None, vec![]));
        // The interrupted calls are not "in progress" for the board: they have an end.
        let open = s
            .list_calls(&CallFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.ended_at.is_none())
            .map(|c| c.id)
            .collect::<Vec<_>>();
        assert_eq!(open, ["new"]);
    }

    pub(crate) async fn apply_batch_is_atomic_and_exactly_once(s: Arc<dyn CallStore>, _: Backend) {
        let ops = vec![
            env(Write::InsertCall(NewCall {
                reference: Some("555001".into()),
                ..new_call("b1", "sb1", at(0))
            })),
            env(Write::AddCallEvent(NewCallEvent {
                id: new_id(),
                call_id: "b1".into(),
                at: at(1),
                kind: "answered".into(),
                detail: String::new(),
            })),
            env(Write::UpdateCall {
                id: "b1".into(),
                update: CallUpdate {
                    path: Some(vec!["language".into()]),
                    ..Default::default()
                },
            }),
            env(Write::InsertRecording(new_recording(
                "br1",
                "b1",
                at(2),
                RecordingKind::Message,
            ))),
            env(Write::UpdateRecording {
                id: "br1".into(),
                update: RecordingUpdate {
                    tags: Some(vec!["t".into()]),
                    ..Default::default()
                },
            }),
            env(Write::AppendAudit(NewAuditEntry {
                id: new_id(),
                at: at(3),
                user: None,
                action: "system".into(),
                recording_id: None,
                source: None,
                detail: String::new(),
            })),
        ];
        s.apply_batch(&ops, at(10)).await.unwrap();
        // A later change, then the first batch replayed (as after a lost acknowledgement):
        // nothing is applied twice, and the later change is not undone.
        s.update_call(
            "b1",
            &CallUpdate {
                path: Some(vec!["language".into(), "main".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.apply_batch(&ops, at(20)).await.unwrap();
        let d = s.get_call("b1").await.unwrap().unwrap();
        assert_eq!(d.call.reference, "555001");
        assert_eq!(d.call.path, ["language", "main"]);
        assert_eq!(d.events.len(), 1);
        assert_eq!(d.call.recordings, ["br1"]);
        assert_eq!(s.get_recording("br1").await.unwrap().unwrap().tags, ["t"]);
        assert_eq!(
            s.list_audit(&AuditFilter::default()).await.unwrap().len(),
            1
        );

        // A batch with a bad op fails as a whole, naming the op.
        let bad = vec![
            env(Write::InsertCall(new_call("b2", "sb2", at(30)))),
            env(Write::UpdateCall {
                id: "missing".into(),
                update: CallUpdate {
                    language: Some("es".into()),
                    ..Default::default()
                },
            }),
        ];
        let err = s.apply_batch(&bad, at(40)).await.unwrap_err();
        assert_eq!(err.index, Some(1));
        assert!(!err.error.is_transient());
        assert!(s.get_call("b2").await.unwrap().is_none(), "rolled back");
        // The good op alone goes through (its op id was not recorded by the failed batch).
        s.apply_batch(&bad[..1], at(50)).await.unwrap();
        assert!(s.get_call("b2").await.unwrap().is_some());
    }

    pub(crate) async fn reference_reservations(s: Arc<dyn CallStore>, _: Backend) {
        s.insert_call(&NewCall {
            reference: Some("700000".into()),
            ..new_call("x", "sx", at(0))
        })
        .await
        .unwrap();
        let refs = s.reserve_references(40, at(0)).await.unwrap();
        assert_eq!(refs.len(), 40);
        let distinct: HashSet<&String> = refs.iter().collect();
        assert_eq!(distinct.len(), 40);
        assert!(refs.iter().all(|r| r.len() == 6 && r != "700000"));
        // Reserved numbers are not handed out again, nor picked for new calls.
        let more = s.reserve_references(40, at(1)).await.unwrap();
        assert!(more.iter().all(|r| !distinct.contains(r)));
        // A call takes a reserved number.
        let r = s
            .insert_call(&NewCall {
                reference: Some(refs[0].clone()),
                ..new_call("y", "sy", at(2))
            })
            .await
            .unwrap();
        assert_eq!(r, refs[0]);
        assert!(
            s.get_call("y").await.unwrap().unwrap().events.is_empty(),
            "no reassignment"
        );
        // Prune drops old reservations and op ids (39 + 40 reservations left, all at 0 or 1 ms).
        let ops = vec![env(Write::AppendAudit(NewAuditEntry {
            id: new_id(),
            at: at(0),
            user: None,
            action: "a".into(),
            recording_id: None,
            source: None,
            detail: String::new(),
        }))];
        s.apply_batch(&ops, at(0)).await.unwrap();
        assert_eq!(s.prune(at(1)).await.unwrap(), 39 + 1);
        assert_eq!(s.prune(at(100)).await.unwrap(), 40);
        assert!(s.reserve_references(0, at(0)).await.unwrap().is_empty());
    }

    pub(crate) async fn limits_are_clamped(s: Arc<dyn CallStore>, _: Backend) {
        for i in 0..60 {
            s.insert_call(&new_call(&format!("l{i:02}"), "s", at(i)))
                .await
                .unwrap();
        }
        let default = s.list_calls(&CallFilter::default()).await.unwrap();
        assert_eq!(default.len(), hotline_store::DEFAULT_LIMIT as usize);
        let huge = s
            .list_calls(&CallFilter {
                limit: u32::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(huge.len(), 60);
    }
}

/// Runs each case on both backends: `sqlite::<case>` and `postgres::<case>`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::common::sqlite_store(dir.path()).await;
                    crate::cases::$case(store.clone(), hotline_store::Backend::Sqlite).await;
                    hotline_store::CallStore::close(&*store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let schema = crate::common::PgSchema::create().await;
                    let store = schema.store().await;
                    crate::cases::$case(store.clone(), hotline_store::Backend::Postgres).await;
                    hotline_store::CallStore::close(&*store).await;
                }
            )*
        }
    };
}

contract!(
    migrations_are_idempotent,
    insert_call_gives_unique_six_digit_references,
    calls_round_trip_and_update_only_given_fields,
    call_events_keep_their_order_and_are_idempotent,
    list_calls_newest_first_with_filters,
    recordings_round_trip_filter_and_review,
    users,
    api_tokens_are_stored_hashed,
    audit_log_appends_and_lists_newest_first,
    sessions_round_trip_touch_and_delete,
    purge_sessions_removes_idle_and_expired,
    call_notes_oldest_first_idempotent_and_need_a_call,
    list_calls_since_and_ended,
    count_calls_by_caller_counts_earlier_calls_of_the_same_caller,
    marks_and_answers_round_trip_and_silent_calls_are_counted,
    daily_stats_by_local_day_language_and_disposition,
    audit_search_by_action_text_and_time,
    apply_batch_is_atomic_and_exactly_once,
    close_interrupted_closes_only_the_stopped_run_s_open_calls,
    reference_reservations,
    limits_are_clamped,
);

#[tokio::test]
async fn connect_picks_the_backend_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?synchronous=full",
        dir.path().join("sub/h.db").display()
    );
    let s = hotline_store::connect(&url).await.unwrap();
    assert_eq!(s.backend(), Backend::Sqlite);
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
    assert!(dir.path().join("sub/h.db").exists());
    s.close().await;

    let s = hotline_store::connect(&common::pg_url()).await.unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    s.ping()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", common::pg_url()));
    s.close().await;

    assert!(matches!(
        hotline_store::connect("mysql://x@y/z").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        hotline_store::connect("sqlite:///tmp/x.db?synchronous=sometimes").await,
        Err(StoreError::Invalid(_))
    ));
    // Lazy: an unreachable PostgreSQL is an error on use, not on connect.
    let s = hotline_store::connect_with(
        "postgres://postgres@127.0.0.1:1/test",
        &hotline_store::ConnectOptions {
            postgres: hotline_store::PgSettings {
                acquire_timeout: std::time::Duration::from_secs(2),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err = s.ping().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}
