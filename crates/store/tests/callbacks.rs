//! The callbacks part of the store contract, on SQLite and PostgreSQL: insert through the
//! writer's op, claims that two nodes cannot both win, retries, and every end deleting the
//! sealed number (checked with SQL on the table itself).

mod common;

use std::sync::Arc;

use hotline_store::{
    CallStore, CallbackState, CallbackStore, Caller, Envelope, NewCall, NewCallback, Timestamp,
    Write, new_id,
};

const T0: i64 = 1_793_536_496_000; // 2026-11-01T12:34:56Z

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset_ms)
}

async fn call(s: &dyn CallStore) -> (String, String) {
    let id = new_id();
    let reference = s
        .insert_call(&NewCall {
            id: id.clone(),
            sip_call_id: format!("{id}@test"),
            reference: None,
            started_at: at(0),
            trunk_source: None,
            called_number: Some("1818".into()),
            caller: Caller::Pseudonym("cd".repeat(32)),
            node: None,
        })
        .await
        .unwrap();
    (id, reference)
}

fn callback(call_id: &str, next: i64) -> NewCallback {
    NewCallback {
        id: new_id(),
        call_id: call_id.to_owned(),
        pseudonym: Some("cd".repeat(32)),
        language: Some("qu".into()),
        window: "asap".into(),
        number_sealed: vec![7; 40],
        created_at: at(0),
        next_at: at(next),
        expires_at: at(3_600_000),
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

    pub(crate) async fn insert_through_the_writer_op_list_and_get(s: Arc<dyn CallStore>) {
        let (call_id, reference) = call(&*s).await;
        let a = callback(&call_id, 5_000);
        let b = callback(&call_id, 1_000);
        s.apply_batch(&[env(Write::InsertCallback(a.clone()))], at(0))
            .await
            .unwrap();
        // Idempotent on the id (a spool replay).
        s.apply_batch(&[env(Write::InsertCallback(a.clone()))], at(0))
            .await
            .unwrap();
        s.insert_callback(&b).await.unwrap();
        let open = s.open_callbacks(10).await.unwrap();
        assert_eq!(
            open.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            [b.id.as_str(), a.id.as_str()],
            "soonest first"
        );
        let got = s.get_callback(&a.id).await.unwrap().unwrap();
        assert_eq!(got.reference, reference);
        assert_eq!(got.state, CallbackState::Pending);
        assert_eq!(got.language.as_deref(), Some("qu"));
        assert_eq!(got.window, "asap");
        assert_eq!(got.attempts, 0);
        assert!(got.has_number);
        assert_eq!(got.next_at, at(5_000));
        // A callback of an unknown call is refused.
        let err = s.insert_callback(&callback("nope", 0)).await.unwrap_err();
        assert!(
            matches!(err, hotline_store::StoreError::NotFound(_)),
            "{err}"
        );
    }

    pub(crate) async fn one_claim_wins_and_retry_and_end_delete_the_number(s: Arc<dyn CallStore>) {
        let (call_id, _) = call(&*s).await;
        let b = callback(&call_id, 0);
        s.insert_callback(&b).await.unwrap();
        let (one, two) = tokio::join!(
            s.claim_callback(&b.id, "a", at(10)),
            s.claim_callback(&b.id, "b", at(10))
        );
        let (one, two) = (one.unwrap(), two.unwrap());
        assert!(one.is_some() != two.is_some(), "exactly one node claims");
        let claimed = one.or(two).unwrap();
        assert_eq!(claimed.number_sealed, vec![7; 40]);
        assert_eq!(claimed.callback.state, CallbackState::Placing);
        assert!(
            s.claim_callback(&b.id, "a", at(11))
                .await
                .unwrap()
                .is_none()
        );

        assert!(s.retry_callback(&b.id, 1, at(60_000)).await.unwrap());
        let got = s.get_callback(&b.id).await.unwrap().unwrap();
        assert_eq!(
            (got.state, got.attempts, got.next_at),
            (CallbackState::Pending, 1, at(60_000))
        );
        assert!(
            !s.retry_callback(&b.id, 2, at(70_000)).await.unwrap(),
            "not placing"
        );

        // A claim whose node died goes back to pending.
        s.claim_callback(&b.id, "a", at(100))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.release_stale_callbacks(at(50)).await.unwrap(), 0);
        assert_eq!(s.release_stale_callbacks(at(200)).await.unwrap(), 1);
        s.claim_callback(&b.id, "b", at(300))
            .await
            .unwrap()
            .unwrap();

        assert!(
            s.end_callback(&b.id, CallbackState::GivenUp, Some(3), at(400), None)
                .await
                .unwrap()
        );
        let got = s.get_callback(&b.id).await.unwrap().unwrap();
        assert_eq!(got.state, CallbackState::GivenUp);
        assert_eq!(got.attempts, 3);
        assert_eq!(got.ended_at, Some(at(400)));
        assert!(!got.has_number);
        assert!(s.open_callbacks(10).await.unwrap().is_empty());
        // Ended once: a second end (a late cancel) changes nothing.
        assert!(
            !s.end_callback(&b.id, CallbackState::Cancelled, None, at(500), Some("sam"))
                .await
                .unwrap()
        );
        assert!(
            s.claim_callback(&b.id, "a", at(600))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.end_callback(&b.id, CallbackState::Pending, None, at(500), None)
                .await
                .is_err()
        );
    }

    pub(crate) async fn every_end_deletes_the_number(s: Arc<dyn CallStore>) {
        let (call_id, _) = call(&*s).await;
        for (state, by) in [
            (CallbackState::Done, None),
            (CallbackState::GivenUp, None),
            (CallbackState::Expired, None),
            (CallbackState::Cancelled, Some("sam")),
        ] {
            let b = callback(&call_id, 0);
            s.insert_callback(&b).await.unwrap();
            assert!(s.end_callback(&b.id, state, None, at(1), by).await.unwrap());
            let got = s.get_callback(&b.id).await.unwrap().unwrap();
            assert_eq!(got.state, state);
            assert_eq!(got.cancelled_by.as_deref(), by);
            assert!(!got.has_number, "{state}");
        }
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = crate::common::sqlite_store(dir.path()).await;
                    crate::cases::$case(store.clone()).await;
                    // The table itself: no ended row holds a number.
                    let left: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM callbacks WHERE state NOT IN ('pending', 'placing') \
                         AND number_sealed IS NOT NULL",
                    )
                    .fetch_one(&sqlx::SqlitePool::connect(&format!("sqlite://{}", store.path().display())).await.unwrap())
                    .await
                    .unwrap();
                    assert_eq!(left, 0);
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
                    crate::cases::$case(store.clone()).await;
                    hotline_store::CallStore::close(&*store).await;
                }
            )*
        }
    };
}

contract!(
    insert_through_the_writer_op_list_and_get,
    one_claim_wins_and_retry_and_end_delete_the_number,
    every_end_deletes_the_number,
);

/// The writer tells the booking path when a callback is safe: committed (or spooled) → true,
/// refused for good (no such call) → false.
#[tokio::test]
async fn the_writer_says_when_a_callback_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::sqlite_store(dir.path()).await;
    let writer = hotline_store::StoreWriter::start(
        store.clone(),
        hotline_store::WriterConfig::new(&dir.path().join("spool")),
    )
    .unwrap();
    let h = writer.handle();
    let call_id = new_id();
    h.insert_call(NewCall {
        id: call_id.clone(),
        sip_call_id: "x@test".into(),
        reference: None,
        started_at: at(0),
        trunk_source: None,
        called_number: None,
        caller: Caller::Absent,
        node: None,
    });
    let good = callback(&call_id, 0);
    assert!(h.insert_callback(good.clone()).await.unwrap());
    assert!(store.get_callback(&good.id).await.unwrap().is_some());
    assert!(
        !h.insert_callback(callback("no-such-call", 0))
            .await
            .unwrap()
    );
    writer.shutdown().await;
}
