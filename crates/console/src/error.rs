//! [`ApiError`]: every way an API request can fail, and the `{"error": "..."}` answer for each.
//!
//! The answer names what the client can act on; the details (database errors, paths, I/O
//! errors) go to the log only.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::StoreError;
use serde::Serialize;

use crate::queue::QueueError;

/// Why an API request failed. Each variant maps to one status code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: a query parameter, path segment or body the API does not accept.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or credentials that are unknown, revoked or of a disabled user.
    #[error("authentication required")]
    Unauthenticated,
    /// 403: authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no such route or resource.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405: the route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is over the limit.
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 415: a body that is not `application/json`.
    #[error("expected a body of type application/json")]
    UnsupportedMediaType,
    /// 416: a byte range outside the file (`Content-Range: bytes */LEN`).
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// The file's length.
        len: u64,
    },
    /// 503: the operator queue is not running in this process.
    #[error("operator queue not running")]
    QueueNotRunning,
    /// 503: the audit log could not be written, so the audio is not served.
    #[error("audit log unavailable: the recording is not served")]
    AuditUnavailable(#[source] StoreError),
    /// 503: a recording's file could not be read (storage unmounted, permissions).
    #[error("recording storage unavailable")]
    Storage(#[source] std::io::Error),
    /// A store error, answered by its kind (404, 409, 400, 503 or 500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500: a bug or an inconsistency; details in the log.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::QueueNotRunning | ApiError::AuditUnavailable(_) | ApiError::Storage(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(e) => match e {
                StoreError::NotFound(_) => StatusCode::NOT_FOUND,
                StoreError::Conflict(_) => StatusCode::CONFLICT,
                StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
                e if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees. Store errors are summarised: their text may name tables,
    /// constraints or ids of other rows.
    fn public_message(&self) -> String {
        match self {
            ApiError::Store(e) => match e {
                StoreError::NotFound(_) => "not found".to_owned(),
                StoreError::Conflict(_) => "conflicts with a stored value".to_owned(),
                StoreError::Invalid(_) => "invalid value".to_owned(),
                e if e.is_transient() => "database unavailable".to_owned(),
                _ => "internal error".to_owned(),
            },
            other => other.to_string(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> ApiError {
        match e {
            QueueError::NotRunning => ApiError::QueueNotRunning,
            QueueError::UnknownOperator => ApiError::NotFound("no such operator"),
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The details stay here: the client gets the summary only.
            tracing::error!(error = ?self, status = status.as_u16(), "API request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "API request refused");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.public_message(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            // RFC 6750 §3: a 401 names the scheme the client should use.
            ApiError::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hotline\""),
                );
            }
            // RFC 9110 §14.4: a 416 tells the current length.
            ApiError::RangeNotSatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_details_are_hidden() {
        let e = ApiError::Store(StoreError::Migrate(
            sqlx::migrate::MigrateError::VersionMissing(1),
        ));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let res = e.into_response();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"error":"internal error"}"#);
    }

    #[tokio::test]
    async fn unauthenticated_names_the_scheme() {
        let res = ApiError::Unauthenticated.into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"hotline\""
        );
    }

    #[test]
    fn store_errors_by_kind() {
        assert_eq!(
            ApiError::from(StoreError::NotFound("recording x".into())).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from(StoreError::Conflict("users_pkey".into())).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from(StoreError::Timeout(std::time::Duration::from_secs(1))).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
