//! Safe callbacks (issue 12): a caller waiting for an operator asks to be called back.
//!
//! - `book` (in a task of the call, when the flow says `Callback`): seals the caller's
//!   number, writes the callback through the store writer and waits until it is safe;
//!   the call then tells the flow (`Input::CallbackBooked` / `CallbackFailed`), and
//!   cancels a booking that lands after the flow gave up waiting (`DropCallback`).
//! - `run` (one task per node, started by the SIP task): polls the store, expires what is
//!   over, claims what is due and places it (`place`): operator first (the queue gives
//!   one of the caller's language; the safety script plays to them), then the caller
//!   through the carrier's gateway with the neutral caller ID; bridged on answer, hung up
//!   without a word when nobody (or a voicemail) could answer in the ring timeout.
//! - `plan`: the schedule as a pure state machine; `seal`: the numbers' encryption.
//!
//! Privacy: the number is in clear only in the booking call's task and in the placing
//! task, never in a log line, an event, the console or the store.

mod place;
pub(crate) mod plan;
pub(crate) mod seal;

pub use plan::Window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hotline_store::{CallStore, CallbackState, NewCallback, Timestamp, WriterHandle};
use tokio::sync::{mpsc, watch};

use crate::config::{CallbackConfig, Config};
use plan::{After, Attempt, Due, Rules};
use seal::Sealer;

/// How often the scheduler looks at the store.
const POLL: Duration = Duration::from_millis(500);
/// Attempts one node places at once.
const MAX_PLACING: usize = 4;
/// A claim older than this (its node died while placing) goes back to pending.
const STALE_CLAIM: Duration = Duration::from_secs(3600);

/// What booking and placing callbacks need, loaded once at start.
#[derive(Debug)]
pub(crate) struct Callbacks {
    pub(crate) config: CallbackConfig,
    pub(crate) rules: Rules,
    sealer: Sealer,
    /// The gateway's digest password (from its file or variable).
    password: Option<String>,
}

/// Why a callback could not be booked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BookError {
    #[error("no window {0:?} in [callback.windows]")]
    UnknownWindow(String),
    #[error("the store refused the callback")]
    Refused,
    #[error("the store writer stopped before it confirmed the callback")]
    NotConfirmed,
}

impl Callbacks {
    /// `[callback]` of the config, its key and password read; `None` when callbacks are off.
    pub(crate) fn load(config: &Config) -> anyhow::Result<Option<Arc<Callbacks>>> {
        let Some(cb) = &config.callback else {
            return Ok(None);
        };
        let sealer = Sealer::from_file(&cb.key_file).context("callback.key_file")?;
        let password = cb.password().map_err(anyhow::Error::msg)?;
        Ok(Some(Arc::new(Callbacks {
            rules: Rules {
                max_attempts: cb.max_attempts,
                retry_interval: Duration::from_secs(cb.retry_interval_secs),
                expiry: Duration::from_secs(cb.expiry_secs),
                zone: config.time_zone.0.clone(),
            },
            config: cb.clone(),
            sealer,
            password,
        })))
    }

    /// Whether a caller who presented `number` can be called back.
    pub(crate) fn can_call_back(number: Option<&str>) -> bool {
        number.is_some_and(|n| {
            let digits = n.trim_start_matches('+');
            digits.len() >= 3 && digits.bytes().all(|b| b.is_ascii_digit())
        })
    }

    /// Books a callback of call `call_id` to `number` (never logged) for `window` (`asap` or
    /// a configured window), and waits until the store writer has it safe (committed or
    /// spooled) or refused it. Returns the callback's id.
    pub(crate) async fn book(
        &self,
        writer: &WriterHandle,
        call_id: &str,
        number: &str,
        pseudonym: Option<String>,
        language: Option<&str>,
        window: &str,
    ) -> Result<String, BookError> {
        let now = Timestamp::now().unix_millis();
        let booking = if window == "asap" {
            self.rules.book(now, None)
        } else {
            let w = self
                .config
                .windows
                .get(window)
                .ok_or_else(|| BookError::UnknownWindow(window.to_owned()))?;
            self.rules.book(now, Some(&w.0))
        };
        let id = hotline_store::new_id();
        let safe = writer.insert_callback(NewCallback {
            id: id.clone(),
            call_id: call_id.to_owned(),
            pseudonym,
            language: language.map(str::to_owned),
            window: window.to_owned(),
            number_sealed: self.sealer.seal(&id, number),
            created_at: Timestamp::from_unix_millis(now),
            next_at: Timestamp::from_unix_millis(booking.next_at),
            expires_at: Timestamp::from_unix_millis(booking.expires_at),
        });
        // No time limit here: the flow waits `booking_timeout_ms` and then drops the
        // booking (`Command::DropCallback`), and the call cancels one that lands later.
        match safe.await {
            Ok(true) => Ok(id),
            Ok(false) => Err(BookError::Refused),
            Err(_) => Err(BookError::NotConfirmed),
        }
    }
}

/// `hotline check`: the callback part (key, password, windows the flow names, the safety
/// prompt). Returns error lines.
pub(crate) fn check(config: &Config, assets: &crate::prompts::Assets) -> Vec<String> {
    let mut errors = Vec::new();
    let windows = assets.flow.callback_windows();
    let Some(cb) = &config.callback else {
        return errors;
    };
    if let Err(e) = Callbacks::load(config) {
        errors.push(format!("{e:#}"));
    }
    for w in windows {
        if w != "asap" && !cb.windows.contains_key(w) {
            errors.push(format!(
                "{}: the callback node offers window {w:?}, which callback.windows does not define",
                config.ivr.flow.display()
            ));
        }
    }
    for lang in hotline_media::prompt::Lang::ALL {
        if assets.prompts.get(lang, &cb.safety_prompt).is_none() {
            errors.push(format!(
                "callback.safety_prompt: no prompt {:?} in {}",
                cb.safety_prompt,
                config.ivr.prompts_dir.join(lang.as_str()).display()
            ));
        }
    }
    errors
}

/// What the scheduler and its attempts need of the node.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) callbacks: Arc<Callbacks>,
    pub(crate) store: Arc<dyn CallStore>,
    pub(crate) writer: WriterHandle,
    pub(crate) config: Arc<Config>,
    pub(crate) commands: mpsc::Sender<crate::signal::Command>,
    pub(crate) queue: hotline_queue::QueueHandle,
    pub(crate) registrations: crate::registrations::Registrations,
    pub(crate) cluster: Option<hotline_cluster::Cluster>,
    pub(crate) rtp: Arc<crate::rtp_ports::RtpPorts>,
    pub(crate) media: Arc<crate::media::MediaPlane>,
    pub(crate) assets: Arc<crate::prompts::Assets>,
}

impl Env {
    /// An event in the original call's history (never the number).
    fn event(&self, call_id: &str, kind: &str, detail: &str) {
        self.writer
            .add_call_event(call_id, Timestamp::now(), kind, detail);
    }
}

/// The scheduler: until `shutdown`, expires what is over and places what is due.
pub(crate) async fn run(env: Env, mut shutdown: watch::Receiver<bool>) {
    let node = if env.config.cluster.enabled() {
        env.config.cluster.node_id.clone()
    } else {
        "local".to_owned()
    };
    // Attempts in progress, each with the sender that stops it (cancelled meanwhile).
    let mut placing: HashMap<String, watch::Sender<bool>> = HashMap::new();
    let mut attempts = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_release = tokio::time::Instant::now();
    tracing::info!("callbacks on");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = attempts.join_next() => {
                if let Ok((id, result)) = done {
                    placing.remove(&id);
                    finish(&env, result).await;
                }
                continue;
            }
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
        let now = Timestamp::now();
        if last_release.elapsed() >= Duration::from_secs(60) {
            last_release = tokio::time::Instant::now();
            let before = now.unix_millis() - i64::try_from(STALE_CLAIM.as_millis()).unwrap_or(0);
            if let Err(e) = env
                .store
                .release_stale_callbacks(Timestamp::from_unix_millis(before))
                .await
            {
                tracing::debug!(error = %e, "releasing stale callback claims");
            }
        }
        let open = match env.store.open_callbacks(200).await {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(error = %e, "listing callbacks");
                continue;
            }
        };
        // An attempt whose callback ended meanwhile (a supervisor cancelled it) stops.
        for (id, stop) in &placing {
            if !open.iter().any(|c| &c.id == id) {
                let _ = stop.send(true);
            }
        }
        for cb in open {
            if cb.state != CallbackState::Pending || placing.contains_key(&cb.id) {
                continue;
            }
            let tries = u32::try_from(cb.attempts).unwrap_or(u32::MAX);
            match env.callbacks.rules.due(
                now.unix_millis(),
                cb.next_at.unix_millis(),
                cb.expires_at.unix_millis(),
                tries,
            ) {
                Due::Wait(_) => {}
                Due::Expire => {
                    let state = if tries >= env.callbacks.rules.max_attempts {
                        CallbackState::GivenUp
                    } else {
                        CallbackState::Expired
                    };
                    end(&env, &cb.id, &cb.call_id, state, None).await;
                }
                Due::Place if placing.len() < MAX_PLACING => {
                    match env.store.claim_callback(&cb.id, &node, now).await {
                        Ok(Some(claimed)) => {
                            let (stop, stopped) = watch::channel(false);
                            placing.insert(cb.id.clone(), stop);
                            let env = env.clone();
                            attempts.spawn(async move {
                                let id = claimed.callback.id.clone();
                                let result = place::attempt(&env, claimed, stopped).await;
                                (id, result)
                            });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::debug!(error = %e, "claiming a callback"),
                    }
                }
                Due::Place => {}
            }
        }
    }
    attempts.shutdown().await;
}

/// Records how an attempt went and what follows.
async fn finish(env: &Env, r: place::Outcome) {
    let now = Timestamp::now();
    let rules = &env.callbacks.rules;
    let after = rules.after(now.unix_millis(), r.attempts_before, r.expires_at, r.how);
    let (id, call) = (&r.id, &r.call_id);
    match after {
        After::Done { attempts } => {
            end(env, id, call, CallbackState::Done, Some(attempts)).await;
        }
        After::GiveUp { attempts } => {
            end(env, id, call, CallbackState::GivenUp, Some(attempts)).await;
        }
        After::Expire { attempts } => {
            end(env, id, call, CallbackState::Expired, Some(attempts)).await;
        }
        After::Retry { attempts, next_at } => {
            match env
                .store
                .retry_callback(
                    id,
                    i64::from(attempts),
                    Timestamp::from_unix_millis(next_at),
                )
                .await
            {
                Ok(true) => tracing::info!(callback = %id, attempts, "callback to be tried again"),
                Ok(false) => tracing::info!(callback = %id, "callback ended while placing"),
                Err(e) => {
                    tracing::warn!(callback = %id, error = %e, "cannot record the callback's retry")
                }
            }
        }
    }
    if matches!(r.how, Attempt::NotPlaced) {
        tracing::debug!(callback = %id, "attempt not placed");
    }
}

/// Ends a callback (its number deleted) and tells the original call's history.
async fn end(env: &Env, id: &str, call_id: &str, state: CallbackState, attempts: Option<u32>) {
    let now = Timestamp::now();
    match env
        .store
        .end_callback(id, state, attempts.map(i64::from), now, None)
        .await
    {
        Ok(true) => {
            tracing::info!(callback = %id, state = state.as_str(), "callback ended; number deleted");
            env.event(
                call_id,
                &format!("callback-{state}"),
                &format!("callback {id}"),
            );
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(callback = %id, error = %e, "cannot end the callback (retried next poll)")
        }
    }
}
