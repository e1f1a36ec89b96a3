//! The flow's commands carried out (prompts and recordings on the media shard,
//! the queue, hang-up, the outcome in the store), and the shard's notes fed
//! back to the flow.

use std::time::Instant;

use hotline_ivr::{Command as FlowCommand, Input};
use hotline_store::{Answer, CallUpdate, Timestamp};

use super::ActiveCall;
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
            FlowCommand::Callback { window } => self.book_callback(&window).await,
            FlowCommand::Event { kind, detail } => {
                tracing::debug!(kind = kind.as_str(), %detail, "flow");
                self.event(kind.as_str(), &detail);
            }
        }
    }

    /// The caller confirmed a callback: booked once the store writer has it safe.
    async fn book_callback(&mut self, window: &str) {
        let (Some(callbacks), Some(number)) =
            (self.ctx.callbacks.clone(), self.callback_number.take())
        else {
            tracing::warn!(%window, "callback confirmed on a call that cannot be called back");
            self.event("callback-failed", "this call cannot be called back");
            return;
        };
        let pseudonym = match self.ctx.storage.privacy.caller(Some(&number)) {
            hotline_store::Caller::Pseudonym(p) => Some(p),
            _ => None,
        };
        let language = self.flow.language().map(|l| l.as_str());
        match callbacks
            .book(
                &self.ctx.storage.writer,
                &self.row,
                &number,
                pseudonym,
                language,
                window,
            )
            .await
        {
            Ok(id) => tracing::info!(callback = %id, %window, "callback booked"),
            Err(e) => {
                tracing::error!(error = %e, %window, "callback not booked");
                self.event("callback-failed", &e.to_string());
            }
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
