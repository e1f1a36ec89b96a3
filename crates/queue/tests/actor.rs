//! The queue task behind a `QueueHandle`, on tokio's paused clock: a call's events reach
//! the call, the ring timeout runs on `tokio::time`, a dropped receiver cancels the call.

use std::time::Duration;

use hotline_queue::{
    CallQueueEvent, Event, NoOperatorReason, OperatorState, PauseReason, QueueConfig, QueueHandle,
    Status, spawn,
};
use tokio::time::{Instant, advance};

const RING: Duration = QueueConfig::RING_TIMEOUT;

async fn logged_in(q: &QueueHandle, name: &str, langs: &[&str]) {
    let langs = langs.iter().map(|l| (*l).into()).collect();
    q.operator_languages(name.into(), langs).await.unwrap();
    q.registration(name.into(), true).await.unwrap();
    q.operator_status(name.into(), Status::Available)
        .await
        .unwrap();
}

fn offer(operator: &str) -> Option<CallQueueEvent> {
    Some(CallQueueEvent::Offer {
        operator: operator.into(),
    })
}

#[tokio::test(start_paused = true)]
async fn a_call_through_the_actor() {
    let q = spawn(QueueConfig::default());
    let mut all = q.events();
    logged_in(&q, "ana", &["es", "qu"]).await;
    let start = Instant::now();
    let mut c1 = q.enqueue("c1".into(), Some("qu".into())).await.unwrap();
    assert_eq!(c1.recv().await, offer("ana"));
    assert_eq!(
        c1.recv().await,
        Some(CallQueueEvent::Position { position: 1 })
    );
    // Nobody answers: the clock runs to the ring timeout, and ana is offered again.
    assert_eq!(
        c1.recv().await,
        Some(CallQueueEvent::CancelOffer {
            operator: "ana".into()
        })
    );
    assert_eq!(start.elapsed(), RING);
    assert_eq!(c1.recv().await, offer("ana"));
    advance(Duration::from_secs(3)).await;
    q.offer_answered("c1".into(), "ana".into()).await.unwrap();
    assert_eq!(
        c1.recv().await,
        Some(CallQueueEvent::Connected {
            operator: "ana".into(),
            waited: RING + Duration::from_secs(3),
        })
    );
    let snap = q.snapshot().await.unwrap();
    assert!(snap.waiting.is_empty());
    assert_eq!(snap.operators[0].state, OperatorState::Busy);
    assert_eq!(snap.operators[0].current_call, Some("c1".into()));

    q.call_ended("ana".into()).await.unwrap();
    let snap = q.snapshot().await.unwrap();
    assert_eq!(snap.operators[0].state, OperatorState::WrapUp);
    advance(QueueConfig::WRAP_UP).await;
    let snap = q.snapshot().await.unwrap();
    assert_eq!(snap.operators[0].state, OperatorState::Available);
    // The call is over: its channel closes.
    assert_eq!(c1.recv().await, None);

    // Everything went to the broadcast too.
    let mut seen = Vec::new();
    while let Ok(e) = all.try_recv() {
        seen.push(e);
    }
    assert!(matches!(seen[0], Event::Offer { .. }), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, Event::Connected { .. })));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_receiver_cancels_the_call() {
    let q = spawn(QueueConfig::default());
    logged_in(&q, "ana", &["es"]).await;
    let mut all = q.events();
    let mut c1 = q.enqueue("c1".into(), None).await.unwrap();
    assert_eq!(c1.recv().await, offer("ana"));
    drop(c1);
    let snap = q.snapshot().await.unwrap();
    assert!(snap.waiting.is_empty());
    assert_eq!(snap.operators[0].state, OperatorState::Available);
    let mut seen = Vec::new();
    while let Ok(e) = all.try_recv() {
        seen.push(e);
    }
    assert_eq!(
        seen.last(),
        Some(&Event::CancelOffer {
            call: "c1".into(),
            operator: "ana".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn nobody_logged_in_and_auto_pause() {
    let q = spawn(QueueConfig::default());
    let mut c0 = q.enqueue("c0".into(), None).await.unwrap();
    assert_eq!(
        c0.recv().await,
        Some(CallQueueEvent::NoOperator {
            reason: NoOperatorReason::NobodyLoggedIn
        })
    );
    assert_eq!(c0.recv().await, None);

    logged_in(&q, "ana", &["es"]).await;
    let mut all = q.events();
    let mut c1 = q.enqueue("c1".into(), None).await.unwrap();
    let start = Instant::now();
    // Two unanswered offers: ana is paused, the caller waits until the maximum wait.
    loop {
        let e = c1.recv().await.expect("events until NoOperator");
        if let CallQueueEvent::NoOperator { reason } = e {
            assert_eq!(reason, NoOperatorReason::MaxWait);
            break;
        }
    }
    assert_eq!(start.elapsed(), QueueConfig::MAX_WAIT);
    let paused = std::iter::from_fn(|| all.try_recv().ok())
        .find(|e| matches!(e, Event::OperatorPaused { .. }));
    assert_eq!(
        paused,
        Some(Event::OperatorPaused {
            operator: "ana".into(),
            reason: PauseReason::MissedOffers {
                count: 2,
                last: hotline_queue::OfferFailure::Timeout
            }
        })
    );
    let snap = q.snapshot().await.unwrap();
    assert_eq!(snap.operators[0].status, Status::Paused);
    assert!(snap.operators[0].paused_reason.is_some());
}

#[tokio::test(start_paused = true)]
async fn the_task_stops_with_the_last_handle() {
    let q = spawn(QueueConfig::default());
    logged_in(&q, "ana", &["es"]).await;
    q.operator_status("ana".into(), Status::Paused)
        .await
        .unwrap();
    let mut c1 = q.enqueue("c1".into(), None).await.unwrap();
    assert_eq!(
        c1.recv().await,
        Some(CallQueueEvent::Position { position: 1 })
    );
    drop(q);
    assert_eq!(c1.recv().await, None);
}
