//! The operator queue in the process: the queue actor ([`hotline_queue::spawn`]) fed
//! with who is registered and what operators set in the console, and the console's
//! [`QueueView`] over it.
//!
//! - Registrations: the SIP task's [`Registrations`] view says when an operator's
//!   softphone appears or goes; [`spawn_registration_sync`] tells the queue, with the
//!   languages the operator speaks (from their account), in order.
//! - Status: `PUT /api/operators/{name}/status` reaches [`QueueAdapter::set_status`],
//!   which refreshes the operator's languages from the store and sets the status.
//! - `GET /api/queue`: [`QueueAdapter::snapshot`] maps the queue's snapshot (store call
//!   ids, languages, wall-clock `since`) and lists every enabled operator account the
//!   queue has not heard of yet as offline.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use hotline_console::{
    OperatorStatus, OperatorView, QueueError as ConsoleQueueError, QueueSnapshot, QueueView,
    WaitingCall,
};
use hotline_queue::{Language, OperatorName, QueueHandle, Status};
use hotline_store::{CallStore, Role, Timestamp};

use crate::registrations::Registrations;

/// The console's view of the queue.
pub(crate) struct QueueAdapter {
    pub(crate) queue: QueueHandle,
    pub(crate) store: Arc<dyn CallStore>,
}

/// The languages an operator speaks, from their account (none known: any caller).
async fn languages(store: &dyn CallStore, name: &str) -> Option<Vec<Language>> {
    match store.get_user(name).await {
        Ok(Some(user)) if user.role == Role::Operator && !user.disabled => Some(
            user.languages
                .iter()
                .map(|l| Language::from(l.as_str()))
                .collect(),
        ),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "operator languages not read; the queue keeps what it knew");
            None
        }
    }
}

#[async_trait]
impl QueueView for QueueAdapter {
    async fn snapshot(&self) -> Result<QueueSnapshot, ConsoleQueueError> {
        let snap = self
            .queue
            .snapshot()
            .await
            .map_err(|_| ConsoleQueueError::NotRunning)?;
        let now = Timestamp::now();
        let waiting = snap
            .waiting
            .iter()
            .map(|w| WaitingCall {
                call_id: w.call.to_string(),
                language: w.language.as_ref().map(ToString::to_string),
                since: now.add_millis(-i64::try_from(w.waited.as_millis()).unwrap_or(i64::MAX)),
            })
            .collect();
        let mut operators: Vec<OperatorView> = snap
            .operators
            .iter()
            .map(|o| OperatorView {
                name: o.name.to_string(),
                status: match o.status {
                    Status::Available => OperatorStatus::Available,
                    Status::Paused => OperatorStatus::Paused,
                    _ => OperatorStatus::Offline,
                },
                registered: o.registered,
                current_call: o.current_call.as_ref().map(ToString::to_string),
                state: Some(o.state.as_str().to_owned()),
                paused_reason: o.paused_reason.map(|r| r.to_string()),
            })
            .collect();
        // Accounts the queue has not heard of yet (never registered, never set a status).
        let known: BTreeSet<String> = operators.iter().map(|o| o.name.clone()).collect();
        if let Ok(users) = self.store.list_users().await {
            operators.extend(
                users
                    .into_iter()
                    .filter(|u| u.role == Role::Operator && !u.disabled)
                    .filter(|u| !known.contains(&u.name))
                    .map(|u| OperatorView {
                        name: u.name,
                        status: OperatorStatus::Offline,
                        registered: false,
                        current_call: None,
                        state: None,
                        paused_reason: None,
                    }),
            );
        }
        operators.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(QueueSnapshot { waiting, operators })
    }

    async fn set_status(
        &self,
        name: &str,
        status: OperatorStatus,
    ) -> Result<(), ConsoleQueueError> {
        let operator = OperatorName::from(name);
        if let Some(langs) = languages(self.store.as_ref(), name).await {
            self.queue
                .operator_languages(operator.clone(), langs)
                .await
                .map_err(|_| ConsoleQueueError::NotRunning)?;
        }
        let status = match status {
            OperatorStatus::Available => Status::Available,
            OperatorStatus::Paused => Status::Paused,
            _ => Status::Offline,
        };
        tracing::info!(operator = %name, status = status.as_str(), "operator status set");
        self.queue
            .operator_status(operator, status)
            .await
            .map_err(|_| ConsoleQueueError::NotRunning)
    }
}

/// Tells the queue whenever an operator's softphone registers or goes (expiry,
/// un-register, failed keep-alive), with the operator's languages first. Runs until the
/// queue stops.
pub(crate) fn spawn_registration_sync(
    registrations: Registrations,
    queue: QueueHandle,
    store: Arc<dyn CallStore>,
) {
    let mut changes = registrations.subscribe();
    tokio::spawn(async move {
        let mut known: BTreeSet<String> = BTreeSet::new();
        loop {
            let now: BTreeSet<String> = registrations.operators().into_iter().collect();
            for name in now.difference(&known) {
                if let Some(langs) = languages(store.as_ref(), name).await
                    && queue
                        .operator_languages(OperatorName::from(name.as_str()), langs)
                        .await
                        .is_err()
                {
                    return;
                }
                if queue
                    .registration(OperatorName::from(name.as_str()), true)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            for name in known.difference(&now) {
                if queue
                    .registration(OperatorName::from(name.as_str()), false)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            known = now;
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}
