//! Recordings from creation to the store: the file is made on the blocking pool
//! (sidecar first), its samples go through the media shard to the recording
//! writer, and the end note's recorder is finished (finalise, fsync, rename,
//! hash) on the blocking pool and entered in the store, with the milliseconds
//! of caller audio the recording had to fill.

use std::time::{Duration, Instant, SystemTime};

use hotline_ivr::Input;
use hotline_media::dtmf::Digit;
use hotline_media::recorder::{Recorder, RecorderError};
use hotline_media::session::{RecordEnd, RecordSpec};
use hotline_store::{NewRecording, RecordingKind, RecordingStatus, Timestamp};

use super::{ActiveCall, ActiveRecording};
use crate::media::{Closed, MediaNote};
use crate::recordings;

/// How long the end of a call waits for its recordings' end notes.
const CLOSE_WAIT: Duration = Duration::from_secs(30);
/// Filled audio below this is not worth a call event (the last packet's way in).
const GAP_EVENT_MS: u64 = 60;

impl ActiveCall<'_> {
    /// A new recording of this call with `channels` channels, in today's directory, made on
    /// the blocking pool: its id, and the recorder (or why not).
    pub(super) async fn create_recorder(&self, channels: u16) -> (String, Option<Recorder>) {
        let dir = crate::layout::Layout::of(&self.ctx.config).day_dir(SystemTime::now());
        let id = recordings::new_id();
        let id2 = id.clone();
        let row = self.row.clone();
        let created = tokio::task::spawn_blocking(move || -> Result<Recorder, RecorderError> {
            // The sidecar first: a crash after this leaves a recording the next start
            // can enter in the store with its call.
            // (The day directory may not exist yet: create it and write again.)
            if let Err(e) = recordings::write_sidecar(&dir, &id2, &row)
                && let Err(e2) = std::fs::create_dir_all(&dir)
                    .and_then(|()| recordings::write_sidecar(&dir, &id2, &row))
            {
                tracing::warn!(error = %e, retry = %e2, "recording sidecar not written");
            }
            Recorder::create(&dir, &id2, channels)
        })
        .await;
        match created {
            Ok(Ok(r)) => (id, Some(r)),
            Ok(Err(e)) => {
                tracing::error!(error = %e, channels, "cannot create the recording");
                (id, None)
            }
            Err(e) => {
                tracing::error!(error = %e, "recording creation task failed");
                (id, None)
            }
        }
    }

    pub(super) async fn start_recording(
        &mut self,
        max_ms: u64,
        silence_ms: Option<u64>,
        finish_key: Option<char>,
    ) {
        let (id, rec) = self.create_recorder(1).await;
        let Some(rec) = rec else {
            self.flow.handle(
                Instant::now(),
                Input::RecordingFinished {
                    reason: hotline_ivr::RecordEnd::Stopped,
                    duration_ms: 0,
                },
            );
            return;
        };
        let spec = RecordSpec {
            max: Duration::from_millis(max_ms),
            silence: silence_ms.map(Duration::from_millis),
            silence_dbfs: self.ctx.config.ivr.silence_threshold_dbfs as f32,
            finish_key: finish_key.and_then(Digit::from_char),
        };
        tracing::info!(recording = %id, "recording a message");
        self.recording = Some(ActiveRecording { id });
        self.media.record(rec, spec);
    }

    /// The message recording's end note: finish it, enter it, tell the flow.
    pub(super) async fn message_ended(
        &mut self,
        reason: RecordEnd,
        closed: Closed,
        speech: Option<bool>,
    ) {
        let Some(rec) = self.recording.take() else {
            return;
        };
        let silence_ms = closed.silence_ms;
        let duration = self
            .store_recording(closed, rec.id.clone(), RecordingKind::Message)
            .await;
        if silence_ms >= GAP_EVENT_MS {
            // A cut message is never silent: the caller's audio that did not arrive.
            tracing::warn!(recording = %rec.id, silence_ms, duration_ms = duration, "message recording filled missing caller audio");
            self.event(
                "recording-gap",
                &format!("{silence_ms} ms of {duration} ms filled with silence"),
            );
        }
        let reason = match reason {
            RecordEnd::Stopped if self.hanging_up => hotline_ivr::RecordEnd::HangUp,
            RecordEnd::FinishKey => hotline_ivr::RecordEnd::FinishKey,
            RecordEnd::Silence => hotline_ivr::RecordEnd::Silence,
            RecordEnd::MaxLength => hotline_ivr::RecordEnd::MaxLength,
            RecordEnd::Stopped => hotline_ivr::RecordEnd::Stopped,
            RecordEnd::WriteError => {
                tracing::error!("recording write failed; what reached the disk is kept");
                hotline_ivr::RecordEnd::Stopped
            }
        };
        // Not measured (no silence detection): never call a message silent.
        if speech.unwrap_or(duration > 0) {
            self.flow.handle(Instant::now(), Input::Speech);
        }
        self.flow.handle(
            Instant::now(),
            Input::RecordingFinished {
                reason,
                duration_ms: duration,
            },
        );
    }

    /// The conversation recording's end note: finish it and enter it.
    pub(super) async fn conversation_ended(&mut self, closed: Closed) {
        if let Some(rec) = self.conversation.take() {
            self.store_recording(closed, rec.id, RecordingKind::Conversation)
                .await;
        }
    }

    /// At the end of the call: the notes of the recordings still open, handled
    /// as they come (bounded: a shard gone at exit leaves the `.part` for repair).
    pub(super) async fn wait_recordings(&mut self) {
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        while self.recording.is_some() || self.conversation.is_some() {
            match tokio::time::timeout_at(deadline, self.media.notes.recv()).await {
                Ok(Some(
                    note @ (MediaNote::RecordingEnded { .. } | MediaNote::ConversationEnded { .. }),
                )) => {
                    self.media_note(note).await;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    tracing::error!(
                        "media shard did not close the recordings; the .part files are kept for repair"
                    );
                    break;
                }
            }
        }
    }

    /// Finalises, fsyncs, renames and hashes a recording once the writer hands it
    /// over, and enters it in the store; returns its duration.
    async fn store_recording(&mut self, closed: Closed, id: String, kind: RecordingKind) -> u64 {
        let Ok(rec) = closed.recorder.await else {
            tracing::error!(recording = %id, "recording writer gone; the .part is kept for repair");
            return 0;
        };
        match tokio::task::spawn_blocking(move || rec.finish()).await {
            Ok(Ok(done)) => {
                self.ctx.metrics.recordings_total.inc();
                tracing::info!(recording = %id, duration_ms = done.duration_ms, bytes = done.bytes, sha256 = %done.sha256_hex, path = %done.path.display(), "recording saved");
                let data_dir = &self.ctx.config.storage.data_dir;
                let path = done.path.strip_prefix(data_dir).unwrap_or(&done.path);
                self.ctx.storage.writer.insert_recording(NewRecording {
                    id: id.clone(),
                    call_id: self.row.clone(),
                    kind,
                    path: path.to_string_lossy().into_owned(),
                    created_at: Timestamp::now(),
                    duration_ms: i64::try_from(done.duration_ms).unwrap_or(i64::MAX),
                    bytes: i64::try_from(done.bytes).unwrap_or(i64::MAX),
                    sha256: done.sha256_hex.clone(),
                    status: RecordingStatus::New,
                    tags: Vec::new(),
                    notes: String::new(),
                });
                let wav = done.path.clone();
                tokio::task::spawn_blocking(move || recordings::remove_sidecar(&wav));
                done.duration_ms
            }
            Ok(Err(e)) => {
                tracing::error!(recording = %id, error = %e, "recording could not be finished; the .part is kept for repair");
                0
            }
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "recording task failed");
                0
            }
        }
    }
}
