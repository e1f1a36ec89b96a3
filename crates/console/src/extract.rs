//! Extractors that answer their rejections as [`ApiError`]s (axum's own answer in plain text),
//! the client's address for the audit log, and the checks shared by several resources.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hotline_store::MAX_LIMIT;
use serde::de::DeserializeOwned;

use crate::BODY_LIMIT;
use crate::error::ApiError;

/// Longest rejection text passed back to the client.
const MAX_DETAIL: usize = 200;

fn detail(text: String) -> String {
    match text.char_indices().nth(MAX_DETAIL) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// A query string deserialised into `T` (declare `T` with `deny_unknown_fields`: a misspelt
/// filter must not silently widen a listing); 400 when it does not fit.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|r| ApiError::BadRequest(detail(r.body_text())))
    }
}

/// Path parameters; 400 when they do not decode.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|r| ApiError::BadRequest(detail(r.body_text())))
    }
}

/// A JSON body (`Content-Type: application/json` required: 415 otherwise, which also keeps
/// cross-site HTML forms out); 413 over [`BODY_LIMIT`], 400 when it does not fit `T`.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT })
            }
            Err(r) => Err(ApiError::BadRequest(detail(r.body_text()))),
        }
    }
}

/// The client's address (`ip:port`) for the audit log: the TCP peer when the server was started
/// with `into_make_service_with_connect_info::<SocketAddr>()`, else `unknown`. Behind a reverse
/// proxy listed in `ConsoleSettings::trusted_proxies`, the right-most address of
/// `X-Forwarded-For` that is not a trusted proxy (as `ip:0`); other forwarding headers, and
/// that one from anyone else, are not believed.
#[derive(Debug, Clone)]
pub(crate) struct ClientAddr(pub(crate) String);

impl FromRequestParts<crate::AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::AppState,
    ) -> Result<Self, std::convert::Infallible> {
        // ConnectInfo also answers from axum's MockConnectInfo (tests).
        let peer = match ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await {
            Ok(ConnectInfo(addr)) => addr,
            Err(_) => return Ok(ClientAddr("unknown".to_owned())),
        };
        let trusted = &state.console().trusted_proxies;
        if !trusted.contains(&peer.ip()) {
            return Ok(ClientAddr(peer.to_string()));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let client = forwarded
            .iter()
            .rev()
            .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
            .find(|ip| !trusted.contains(ip));
        Ok(ClientAddr(match client {
            Some(ip) => SocketAddr::new(ip, 0).to_string(),
            None => peer.to_string(),
        }))
    }
}

/// A list's `limit`: absent means the store's default; 1 to [`MAX_LIMIT`] otherwise.
pub(crate) fn limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(0),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// Whether `s` can be a row id (ours are ULIDs or hex): anything else is a 404 without asking
/// the database.
pub(crate) fn plausible_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// A language filter: a primary language subtag (`es`, `qu`), 2 to 8 lowercase letters.
pub(crate) fn language(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(l) if !(2..=8).contains(&l.len()) || !l.bytes().all(|c| c.is_ascii_lowercase()) => {
            Err(ApiError::BadRequest(
                "language must be a language code such as es or qu".to_owned(),
            ))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 0);
        assert_eq!(limit(Some(1)).unwrap(), 1);
        assert_eq!(limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }

    #[test]
    fn ids_and_languages() {
        assert!(plausible_id("01JC0000000000000000000000"));
        assert!(plausible_id(&"ab".repeat(16)));
        assert!(!plausible_id(""));
        assert!(!plausible_id("../etc/passwd"));
        assert!(!plausible_id(&"a".repeat(65)));
        assert!(language(Some("qu".into())).is_ok());
        assert!(language(Some("QU".into())).is_err());
        assert!(language(Some("q".into())).is_err());
    }

    #[test]
    fn details_are_cut() {
        assert_eq!(detail("short".into()), "short");
        assert_eq!(detail("é".repeat(300)).chars().count(), MAX_DETAIL + 1);
    }
}
