//! The flow's commands carried out (prompts and recordings on the media shard,
//! the queue, hang-up, the outcome in the store), and the shard's notes fed
//! back to the flow; a callback's booking, run beside the call, and its result.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hotline_ivr::{Command as FlowCommand, Input};
use hotline_store::{Answer, CallStore, CallUpdate, CallbackState, Timestamp, WriterHandle};
use tokio::sync::oneshot::{self, error::RecvError};
use tracing::Instrument as _;

use super::ActiveCall;
use crate::callback::BookError;
use crate::media::MediaNote;
use crate::prompts::to_media_lang;

impl ActiveCall<'_> {
    pub(super) async fn flow_command(&mut self, cmd: FlowCommand) {
        let now = Instant::now();
        match cmd {
            FlowCommand::Play { prompts, .. } => {
                let mut list = Vec::with_capacity(prompts.len());
                for p in &prompts {
                    let lang = to_media_lang(p.lang);
                    match self.ctx.assets.prompts.get(lang, &p.id) {
                        Some(found) => {
                            if found.fallback {
                                tracing::warn!(prompt = %p.id, lang = lang.as_str(), "prompt missing; playing the other language");
                            }
                            list.push(found.prompt.clone());
                        }
                        None => {
                            tracing::warn!(prompt = %p.id, "prompt missing in every language; skipped")
                        }
                    }
                }
                if list.is_empty() || !self.has_session {
                    self.play_last = None;
                    self.flow.handle(now, Input::PromptFinished);
                } else {
                    self.play_last = Some(self.media.play(list));
                }
            }
            FlowCommand::StopPlayback => {
                self.play_last = None;
                self.media.stop_playback();
            }
            FlowCommand::Record {
                max_ms,
                silence_ms,
                finish_key,
            } => self.start_recording(max_ms, silence_ms, finish_key).await,
            FlowCommand::StopRecording => {
                // The shard answers with the recording's end note.
                if self.recording.is_some() {
                    self.media.stop_recording();
                }
            }
            FlowCommand::Enqueue { lang } => {
                let language = Some(hotline_queue::Language::from(lang.as_str()));
                match self
                    .ctx
                    .queue
                    .enqueue(hotline_queue::CallId::from(self.row.as_str()), language)
                    .await
                {
                    Ok(rx) => {
                        tracing::info!(lang = lang.as_str(), "waiting for an operator");
                        self.queue_rx = Some(rx);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "operator queue not running; offering a message");
                        self.flow.handle(now, Input::OperatorUnavailable);
                    }
                }
            }
            FlowCommand::LeaveQueue => {
                self.leave_queue().await;
                // An operator's phone ringing for this call stops ringing.
                if self.leg.as_ref().is_some_and(|l| l.answered_at.is_none()) {
                    self.end_leg(now).await;
                }
            }
            FlowCommand::Bridge => self.bridge().await,
            FlowCommand::HangUp => self.hang_up().await,
            FlowCommand::Outcome {
                disposition,
                language,
                path,
                reference,
                marks,
            } => {
                let marks: Vec<String> = marks.iter().map(|m| m.as_str().to_owned()).collect();
                tracing::info!(
                    disposition = disposition.as_str(),
                    language = language.map(|l| l.as_str()),
                    path = %path.join(">"),
                    marks = %marks.join(","),
                    %reference,
                    "call outcome"
                );
                self.outcome_written = true;
                self.ctx.storage.writer.update_call(
                    &self.row,
                    CallUpdate {
                        ended_at: Some(Timestamp::now()),
                        language: language.map(|l| l.as_str().to_owned()),
                        path: Some(path),
                        disposition: disposition.as_str().parse().ok(),
                        marks: Some(marks),
                        ..CallUpdate::default()
                    },
                );
            }
            FlowCommand::Answer { question, answer } => {
                // Stored at once: the operator who takes the call sees them.
                self.answers.push(Answer { question, answer });
                self.ctx.storage.writer.update_call(
                    &self.row,
                    CallUpdate {
                        answers: Some(self.answers.clone()),
                        ..CallUpdate::default()
                    },
                );
            }
            FlowCommand::Callback { window } => self.book_callback(&window),
            FlowCommand::DropCallback => self.drop_callback(),
            FlowCommand::Event { kind, detail } => {
                tracing::debug!(kind = kind.as_str(), %detail, "flow");
                self.event(kind.as_str(), &detail);
            }
        }
    }

    /// The caller confirmed a callback: booked in a task of its own (the call goes on:
    /// the quick exit works while the writer works), whose result `booking_done` hands to
    /// the flow.
    fn book_callback(&mut self, window: &str) {
        let (Some((callbacks, store)), Some(number)) =
            (self.ctx.callbacks.clone(), self.callback_number.take())
        else {
            tracing::warn!(%window, "callback confirmed on a call that cannot be called back");
            self.flow.handle(Instant::now(), Input::CallbackFailed);
            return;
        };
        let pseudonym = match self.ctx.storage.privacy.caller(Some(&number)) {
            hotline_store::Caller::Pseudonym(p) => Some(p),
            _ => None,
        };
        let language = self.flow.language().map(|l| l.as_str().to_owned());
        let writer = self.ctx.storage.writer.clone();
        let call_id = self.row.clone();
        let window = window.to_owned();
        let dropped = Arc::new(AtomicBool::new(false));
        let (tx, rx) = oneshot::channel();
        let flag = dropped.clone();
        tokio::spawn(
            async move {
                let r = callbacks
                    .book(
                        &writer,
                        &call_id,
                        &number,
                        pseudonym,
                        language.as_deref(),
                        &window,
                    )
                    .await;
                drop(number);
                // The call no longer listens: it ended (the booking stands: the caller
                // confirmed it), or the flow dropped it (cancelled at once).
                if let Err(Ok(id)) = tx.send(r)
                    && flag.load(Ordering::SeqCst)
                {
                    cancel_late(&*store, &writer, &call_id, &id).await;
                }
            }
            .in_current_span(),
        );
        self.booking = Some(Booking { rx, dropped });
    }

    /// The booking's result, for the flow.
    pub(super) fn booking_done(&mut self, r: Result<Result<String, BookError>, RecvError>) {
        self.booking = None;
        let input = match r {
            Ok(Ok(id)) => {
                tracing::info!(callback = %id, "callback booked");
                Input::CallbackBooked
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "callback not booked");
                Input::CallbackFailed
            }
            Err(_) => {
                tracing::error!("the callback's booking task ended without a result");
                Input::CallbackFailed
            }
        };
        self.flow.handle(Instant::now(), input);
    }

    /// The flow gave up waiting for the booking and told the caller it failed: a booking
    /// that lands from now on is cancelled at once.
    fn drop_callback(&mut self) {
        let Some(mut b) = self.booking.take() else {
            return;
        };
        // Flag first, then close: a result sent before the close is read here, one sent
        // after finds the channel closed and the task cancels it itself.
        b.dropped.store(true, Ordering::SeqCst);
        b.rx.close();
        match b.rx.try_recv() {
            Ok(Ok(id)) => {
                if let Some((_, store)) = self.ctx.callbacks.clone() {
                    let writer = self.ctx.storage.writer.clone();
                    let call_id = self.row.clone();
                    tokio::spawn(
                        async move { cancel_late(&*store, &writer, &call_id, &id).await }
                            .in_current_span(),
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "callback not booked (after the flow gave up)")
            }
            Err(_) => tracing::warn!("callback booking too slow; it is cancelled if it lands"),
        }
    }

    /// A note from the media shard.
    pub(super) async fn media_note(&mut self, note: MediaNote) {
        match note {
            MediaNote::Digit(d) => self.digit(d),
            MediaNote::PlayFinished(tag) => {
                if self.play_last == Some(tag) {
                    self.play_last = None;
                    self.flow.handle(Instant::now(), Input::PromptFinished);
                }
            }
            MediaNote::RecordingEnded {
                reason,
                closed,
                speech,
            } => {
                self.message_ended(reason, closed, speech).await;
            }
            MediaNote::ConversationEnded { closed } => self.conversation_ended(closed).await,
        }
    }
}

/// A callback being booked for this call.
pub(super) struct Booking {
    rx: oneshot::Receiver<Result<String, BookError>>,
    /// The flow dropped it (`DropCallback`): the task cancels what lands after.
    dropped: Arc<AtomicBool>,
}

/// The result of the booking in flight; never ready without one.
pub(super) async fn booking_result(
    booking: &mut Option<Booking>,
) -> Result<Result<String, BookError>, RecvError> {
    match booking {
        Some(b) => (&mut b.rx).await,
        None => std::future::pending().await,
    }
}

/// A booking written after the caller was told it failed: ended at once (its number
/// deleted), never placed, and said in the call's history.
async fn cancel_late(store: &dyn CallStore, writer: &WriterHandle, call_id: &str, id: &str) {
    let now = Timestamp::now();
    match store
        .end_callback(id, CallbackState::Cancelled, None, now, None)
        .await
    {
        Ok(_) => {
            tracing::info!(callback = %id, "callback booked too late; cancelled, number deleted");
            writer.add_call_event(
                call_id,
                now,
                "callback-cancelled",
                &format!("callback {id}: booked after the caller was told it failed"),
            );
        }
        Err(e) => {
            tracing::error!(callback = %id, error = %e, "cannot cancel a callback booked too late")
        }
    }
}
