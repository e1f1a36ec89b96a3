//! `GET /recordings/{id}/export.zip`: a recording's case export, for the police.
//!
//! A zip of stored (uncompressed) entries: WAV barely compresses, and any unzip opens it.
//! - `recording-<id>.wav`: the file as stored;
//! - `call.json`: the call's metadata as the API shows it (never the caller, the trunk's
//!   address or the number dialled), with its marks (`quick-exit`, `silent`) and the caller's
//!   keypad answers, and how many earlier calls came from the same caller (and how many of
//!   those were silent or quick exits);
//! - `events.json`: the call's events, in order;
//! - `notes.json`: the recording's review (status, tags, notes, its stored SHA-256) and the
//!   call's case notes, with who exported it and when;
//! - `SHA256SUMS`: `<sha256 hex>  <name>` for each other file, so that `sha256sum -c SHA256SUMS`
//!   checks them after unzipping.
//!
//! The audit line (`recording.export`) is written before the file is opened; if it cannot be,
//! nothing is exported (503). The WAV's SHA-256 is computed while it is copied into the zip: if
//! it is not the stored one (the file was damaged or altered), nothing is sent: a 500 page, an
//! error in the log and an audit line `recording.integrity_failed`. The zip is built in memory
//! on a blocking thread (recordings are at most about 60 MB; the zip is the file's size plus a
//! few kilobytes).

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Write};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::{
    Answer, CallDetail, CallEvent, CallNote, Caller, Disposition, NewAuditEntry, Recording,
    RecordingKind, RecordingStatus, Timestamp, Zone, new_id,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::super::safety::Earlier;
use super::super::{PageError, PageUser, audit_view, failure};
use super::{missing_call, recording};
use crate::AppState;
use crate::api::audio::resolve;
use crate::auth::Identity;

/// Bytes read from the file at a time.
const READ_BUFFER: usize = 64 * 1024;

/// The call as `call.json` has it.
#[derive(Debug, Serialize)]
struct CallDoc<'a> {
    id: &'a str,
    reference: &'a str,
    sip_call_id: &'a str,
    started_at: Timestamp,
    answered_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
    language: Option<&'a str>,
    disposition: Option<Disposition>,
    /// The menu nodes visited, in order.
    path: &'a [String],
    queue_wait_ms: Option<i64>,
    operator: Option<&'a str>,
    /// The call's recordings, oldest first.
    recordings: &'a [String],
    /// `quick-exit` (the caller pressed the quick-exit key and heard the decoy), `silent` (no
    /// key and no speech the whole call).
    marks: &'a [String],
    /// The caller's keypad answers, in order.
    answers: &'a [Answer],
    /// Calls from the same caller before this one (counted by pseudonym); `null` when no
    /// number was presented.
    previous_calls_from_caller: Option<u64>,
    /// Of those, the silent ones; `null` when no number was presented.
    previous_silent_calls_from_caller: Option<u64>,
    /// Of those, the ones that ended with a quick exit; `null` when no number was presented.
    previous_quick_exit_calls_from_caller: Option<u64>,
}

#[derive(Debug, Serialize)]
struct EventsDoc<'a> {
    call_id: &'a str,
    reference: &'a str,
    events: &'a [CallEvent],
}

#[derive(Debug, Serialize)]
struct RecordingDoc<'a> {
    id: &'a str,
    call_id: &'a str,
    kind: RecordingKind,
    created_at: Timestamp,
    duration_ms: i64,
    bytes: i64,
    sha256: &'a str,
    status: RecordingStatus,
    tags: &'a [String],
    notes: &'a str,
    language: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct NotesDoc<'a> {
    recording: RecordingDoc<'a>,
    case_notes: &'a [CallNote],
    exported_at: Timestamp,
    exported_by: &'a str,
}

/// Why a zip could not be made.
#[derive(Debug)]
pub(super) enum ExportError {
    /// The file could not be read (or the zip written).
    Io(io::Error),
    /// The file's SHA-256 is not the stored one.
    Mismatch {
        /// The file's SHA-256 (hex).
        found: String,
    },
}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> ExportError {
        ExportError::Io(e)
    }
}

impl From<zip::result::ZipError> for ExportError {
    fn from(e: zip::result::ZipError) -> ExportError {
        match e {
            zip::result::ZipError::Io(e) => ExportError::Io(e),
            other => ExportError::Io(io::Error::other(other)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The zip: `wav` as `wav_name` (refused unless its SHA-256 is `expected_sha256`), then each
/// document, then `SHA256SUMS` over all of them. `size_hint`: the WAV's size.
pub(super) fn build_zip(
    wav: impl Read,
    wav_name: &str,
    expected_sha256: &str,
    documents: &[(&str, Vec<u8>)],
    modified: zip::DateTime,
    size_hint: u64,
) -> Result<Vec<u8>, ExportError> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(modified)
        .unix_permissions(0o644)
        .large_file(size_hint >= u64::from(u32::MAX));
    let capacity = usize::try_from(size_hint).unwrap_or(0) + 64 * 1024;
    let mut zip = ZipWriter::new(Cursor::new(Vec::with_capacity(capacity)));
    zip.start_file(wav_name, options)?;
    let mut reader = Hashing {
        inner: wav,
        hash: Sha256::new(),
    };
    io::copy(&mut reader, &mut zip)?;
    let found = hex(&reader.hash.finalize());
    if !found.eq_ignore_ascii_case(expected_sha256) {
        return Err(ExportError::Mismatch { found });
    }
    let mut sums = format!("{found}  {wav_name}\n");
    let options = options.large_file(false);
    for (name, bytes) in documents {
        zip.start_file(*name, options)?;
        zip.write_all(bytes)?;
        sums.push_str(&format!("{}  {name}\n", hex(&Sha256::digest(bytes))));
    }
    zip.start_file("SHA256SUMS", options)?;
    zip.write_all(sums.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

/// The entries' modification time: `at` in the hotline's time zone (zip times have none).
fn zip_time(zone: &Zone, at: Timestamp) -> zip::DateTime {
    let (y, mo, d, h, mi, sec) = zone.civil(at);
    let u8_of = |v: i8| u8::try_from(v).unwrap_or(0);
    u16::try_from(y)
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(
                y,
                u8_of(mo),
                u8_of(d),
                u8_of(h),
                u8_of(mi),
                u8_of(sec),
            )
            .ok()
        })
        .unwrap_or_default()
}

/// `call.json`, `events.json`, `notes.json`.
fn documents(
    rec: &Recording,
    detail: &CallDetail,
    notes: &[CallNote],
    previous: Option<u64>,
    earlier: Option<Earlier>,
    now: Timestamp,
    who: &str,
) -> Result<Vec<(&'static str, Vec<u8>)>, serde_json::Error> {
    let call = &detail.call;
    let call_doc = CallDoc {
        id: &call.id,
        reference: &call.reference,
        sip_call_id: &call.sip_call_id,
        started_at: call.started_at,
        answered_at: call.answered_at,
        ended_at: call.ended_at,
        language: call.language.as_deref(),
        disposition: call.disposition,
        path: &call.path,
        queue_wait_ms: call.queue_wait_ms,
        operator: call.operator.as_deref(),
        recordings: &call.recordings,
        marks: &call.marks,
        answers: &call.answers,
        previous_calls_from_caller: previous,
        previous_silent_calls_from_caller: earlier.map(|e| e.silent),
        previous_quick_exit_calls_from_caller: earlier.map(|e| e.quick_exit),
    };
    let events = EventsDoc {
        call_id: &call.id,
        reference: &call.reference,
        events: &detail.events,
    };
    let notes_doc = NotesDoc {
        recording: RecordingDoc {
            id: &rec.id,
            call_id: &rec.call_id,
            kind: rec.kind,
            created_at: rec.created_at,
            duration_ms: rec.duration_ms,
            bytes: rec.bytes,
            sha256: &rec.sha256,
            status: rec.status,
            tags: &rec.tags,
            notes: &rec.notes,
            language: rec.language.as_deref(),
        },
        case_notes: notes,
        exported_at: now,
        exported_by: who,
    };
    Ok(vec![
        ("call.json", pretty(&call_doc)?),
        ("events.json", pretty(&events)?),
        ("notes.json", pretty(&notes_doc)?),
    ])
}

/// Pretty JSON with a final line break.
fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = serde_json::to_vec_pretty(v)?;
    out.push(b'\n');
    Ok(out)
}

/// The export's file name: `caso-<reference>-<id>.zip` (only letters, digits and `-`).
fn file_name(reference: &str, id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    };
    format!("caso-{}-{}.zip", clean(reference), clean(id))
}

pub(super) async fn export(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Identity::REVIEWERS)?;
    let rec = recording(&state, &id).await?;
    let store = state.store();
    let Some(detail) = store.get_call(&rec.call_id).await? else {
        return Ok(missing_call(&rec));
    };
    let previous = match &detail.call.caller {
        Caller::Absent => None,
        caller => Some(
            store
                .count_calls_by_caller(caller, detail.call.started_at)
                .await?,
        ),
    };
    let earlier = Earlier::of(store, &detail.call).await?;
    let notes = store.list_call_notes(&rec.call_id).await?;
    let reference = detail.call.reference.clone();
    // Audited before the file is even opened.
    audit_view(
        &state,
        &user,
        Some(&rec.id),
        "recording.export",
        &format!("zip, case {reference}"),
    )
    .await?;

    let path = match resolve(state.data_dir(), &rec.path) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(recording = %rec.id, error = %e, "export: the recording's path is not usable");
            return Ok(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"));
        }
    };
    let now = state.now();
    let docs = match documents(&rec, &detail, &notes, previous, earlier, now, &user.name) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(recording = %rec.id, error = %e, "export: a document failed");
            return Ok(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"));
        }
    };
    let wav_name = format!("recording-{}.wav", rec.id);
    let expected = rec.sha256.clone();
    let modified = zip_time(&user.zone, now);
    let file_path = path.clone();
    let built = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ExportError> {
        let file = File::open(&file_path)?;
        let len = file.metadata()?.len();
        let reader = BufReader::with_capacity(READ_BUFFER, file);
        build_zip(reader, &wav_name, &expected, &docs, modified, len)
    })
    .await;

    let zip = match built {
        Ok(Ok(zip)) => zip,
        Ok(Err(ExportError::Mismatch { found })) => {
            tracing::error!(
                recording = %rec.id,
                path = %path.display(),
                stored = %rec.sha256,
                found = %found,
                "export refused: the recording's file does not match its stored SHA-256 (damaged or altered)"
            );
            let line = NewAuditEntry {
                id: new_id(),
                at: state.now(),
                user: Some(user.name.clone()),
                action: "recording.integrity_failed".to_owned(),
                recording_id: Some(rec.id.clone()),
                source: Some(user.source.clone()),
                detail: format!("export refused: file sha256 {found}, stored {}", rec.sha256),
            };
            if let Err(e) = store.append_audit(&line).await {
                tracing::error!(error = %e, "the integrity failure could not be audited");
            }
            return Ok(failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "export.tampered",
            ));
        }
        Ok(Err(ExportError::Io(e))) if e.kind() == io::ErrorKind::NotFound => {
            tracing::error!(recording = %rec.id, path = %path.display(), "export: the recording's file is missing");
            return Ok(failure(StatusCode::NOT_FOUND, "export.missing"));
        }
        Ok(Err(ExportError::Io(e))) => {
            tracing::error!(recording = %rec.id, path = %path.display(), error = %e, "export: the recording's file cannot be read");
            return Ok(failure(StatusCode::SERVICE_UNAVAILABLE, "export.storage"));
        }
        Err(e) => {
            tracing::error!(recording = %rec.id, error = %e, "export: the zip task failed");
            return Ok(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"));
        }
    };
    tracing::info!(user = %user.name, recording = %rec.id, bytes = zip.len(), "case exported");
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name(&reference, &rec.id)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        zip,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("call.json", b"{}\n".to_vec()),
            ("notes.json", b"[]\n".to_vec()),
        ]
    }

    #[test]
    fn zips_and_sums() {
        let wav = b"RIFF....WAVE".to_vec();
        let sha = hex(&Sha256::digest(&wav));
        let zip = build_zip(
            &wav[..],
            "recording-x.wav",
            &sha,
            &docs(),
            zip::DateTime::default(),
            12,
        )
        .unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let mut read = |name: &str| {
            let mut f = archive.by_name(name).unwrap();
            assert_eq!(f.compression(), CompressionMethod::Stored);
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            v
        };
        assert_eq!(read("recording-x.wav"), wav);
        let sums = String::from_utf8(read("SHA256SUMS")).unwrap();
        assert_eq!(
            sums,
            format!(
                "{sha}  recording-x.wav\n{}  call.json\n{}  notes.json\n",
                hex(&Sha256::digest(b"{}\n")),
                hex(&Sha256::digest(b"[]\n"))
            )
        );
    }

    #[test]
    fn a_file_that_is_not_the_stored_one_is_refused() {
        let sha = hex(&Sha256::digest(b"the original"));
        let r = build_zip(
            &b"an altered file"[..],
            "w.wav",
            &sha,
            &docs(),
            zip::DateTime::default(),
            0,
        );
        match r {
            Err(ExportError::Mismatch { found }) => {
                assert_eq!(found, hex(&Sha256::digest(b"an altered file")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_and_times() {
        assert_eq!(file_name("123456", "01ABC"), "caso-123456-01ABC.zip");
        assert_eq!(file_name("12\"3", "a/b"), "caso-123-ab.zip");
        let t = Timestamp::parse_rfc3339("2026-11-01T12:34:56Z").unwrap();
        let d = zip_time(&Zone::lima(), t);
        assert_eq!(
            (d.year(), d.month(), d.day(), d.hour(), d.minute()),
            (2026, 11, 1, 7, 34)
        );
    }
}
