//! `GET /api/recordings/{id}/audio`: a recording's WAV file, for supervisors and admins, with
//! single byte ranges (see `crate::range`).
//!
//! Every request for an existing recording is written to the audit log (user, recording, time,
//! client address, the range asked for) before anything of the file is read or sent; if that
//! write fails, the answer is 503 and no audio leaves. The file is streamed, never read whole.
//! The ETag is the recording's SHA-256, so `If-Range` works; answers are never cached.

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::{NewAuditEntry, Timestamp, new_id};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::recordings::NO_SUCH_RECORDING;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::extract::{ApiPath, ClientAddr, plausible_id};
use crate::range::Selection;
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/api/recordings/{id}/audio", audio)]
}

/// Bytes read from disk per body chunk.
const CHUNK: usize = 64 * 1024;

async fn audio(
    State(state): State<AppState>,
    who: Identity,
    ApiPath(id): ApiPath<String>,
    ClientAddr(source): ClientAddr,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    who.require(Identity::REVIEWERS)?;
    if !plausible_id(&id) {
        return Err(NO_SUCH_RECORDING);
    }
    let store = state.store();
    let recording = store.get_recording(&id).await?.ok_or(NO_SUCH_RECORDING)?;
    let etag = format!("\"{}\"", recording.sha256);
    let range = requested_range(&headers, &etag);

    // The audit line first: no audio without it.
    let audit = NewAuditEntry {
        id: new_id(),
        at: Timestamp::now(),
        user: Some(who.user.clone()),
        action: "recording.audio".to_owned(),
        recording_id: Some(id.clone()),
        source: Some(source),
        detail: describe(&method, range),
    };
    store
        .append_audit(&audit)
        .await
        .map_err(ApiError::AuditUnavailable)?;
    tracing::info!(user = %who.user, recording = %id, "recording audio requested");

    let path = resolve(state.data_dir(), &recording.path)?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| file_error(e, &path))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| file_error(e, &path))?
        .len();
    let (status, start, count) = match Selection::of(range, len) {
        Selection::Full => (StatusCode::OK, 0, len),
        Selection::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Selection::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { len }),
    };
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| file_error(e, &path))?;
    }
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), CHUNK));

    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{id}.wav\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + count - 1;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// The `Range` value to honour: none when `If-Range` names another version (RFC 9110 §13.1.5;
/// only our strong ETag can match, a date never does).
fn requested_range<'h>(headers: &'h HeaderMap, etag: &str) -> Option<&'h str> {
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    match headers.get(header::IF_RANGE) {
        Some(v) if v.as_bytes() != etag.as_bytes() => None,
        _ => Some(range),
    }
}

/// The audit detail: the method when not GET, and the range asked for.
fn describe(method: &Method, range: Option<&str>) -> String {
    let what = match range {
        None => "full".to_owned(),
        Some(r) => r
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(64)
            .collect(),
    };
    if method == Method::GET {
        what
    } else {
        format!("{method} {what}")
    }
}

/// The file of a stored path: relative paths are under the data dir and may not climb out of it.
/// (Also the case export's, in `pages::recordings`.)
pub(crate) fn resolve(data_dir: &Path, stored: &str) -> Result<PathBuf, ApiError> {
    let path = Path::new(stored);
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    if stored.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ApiError::Internal(format!(
            "recording path {stored:?} is not under the data dir"
        )));
    }
    Ok(data_dir.join(path))
}

fn file_error(e: std::io::Error, path: &Path) -> ApiError {
    if e.kind() == std::io::ErrorKind::NotFound {
        tracing::error!(path = %path.display(), "a recording's file is missing");
        ApiError::NotFound("recording audio not found")
    } else {
        tracing::error!(path = %path.display(), error = %e, "a recording's file cannot be read");
        ApiError::Storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let dir = Path::new("/data");
        assert_eq!(
            resolve(dir, "recordings/2026/11/01/x.wav").unwrap(),
            Path::new("/data/recordings/2026/11/01/x.wav")
        );
        assert_eq!(
            resolve(dir, "/mnt/rec/x.wav").unwrap(),
            Path::new("/mnt/rec/x.wav")
        );
        assert!(resolve(dir, "../etc/passwd").is_err());
        assert!(resolve(dir, "recordings/../../x").is_err());
        assert!(resolve(dir, "").is_err());
    }

    #[test]
    fn if_range() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert_eq!(requested_range(&h, "\"ab\""), Some("bytes=0-1"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"ab\""));
        assert_eq!(requested_range(&h, "\"ab\""), Some("bytes=0-1"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"cd\""));
        assert_eq!(requested_range(&h, "\"ab\""), None);
    }

    #[test]
    fn audit_details() {
        assert_eq!(describe(&Method::GET, None), "full");
        assert_eq!(describe(&Method::HEAD, Some("bytes=0-9")), "HEAD bytes=0-9");
        assert_eq!(describe(&Method::GET, Some("bytes=\n0-9")), "bytes=0-9");
    }
}
