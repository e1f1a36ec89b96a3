//! Who is asking: the [`Identity`] extractor, and what each [`Role`] may do.
//!
//! Two ways in, one result:
//! - `Authorization: Bearer TOKEN` (scripts): the SHA-256 of the token is looked up in the
//!   store's API tokens, then its user; an unknown token, a missing user and a disabled user
//!   all answer 401 with the same message (the log says which).
//! - The console's session cookie: the session layer ([`crate::session`]) in front of the
//!   router resolves it and inserts an [`Identity`] with [`AuthMethod::Session`] into the
//!   request's extensions (see [`Identity::from_session`]), after checking the CSRF token of a
//!   state-changing request. The extractor takes an identity found there before it looks at
//!   the `Authorization` header. Only server-side code can insert extensions, so a client
//!   cannot forge one; a request with an `Authorization` header is never resolved by cookie.
//!
//! Handlers take an `Identity` argument and call [`Identity::require`] with the roles that
//! may proceed.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use hotline_store::{Role, TokenHash};

use crate::AppState;
use crate::error::ApiError;

/// Longest bearer token accepted (ours are 46 characters).
const MAX_TOKEN_LEN: usize = 256;

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `Authorization: Bearer TOKEN`.
    Token,
    /// A console session cookie (the session layer must also guard state-changing requests
    /// against cross-site forgery).
    Session,
}

/// An authenticated, enabled user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// What the user may do.
    pub role: Role,
    /// How the request authenticated.
    pub via: AuthMethod,
}

impl Identity {
    /// The identity a session layer inserts into a request's extensions once it has checked
    /// the cookie and that the user exists and is enabled.
    pub fn from_session(user: String, role: Role) -> Identity {
        Identity {
            user,
            role,
            via: AuthMethod::Session,
        }
    }

    /// Supervisors and admins: recordings, their audio, their review, the audit log.
    pub const REVIEWERS: &'static [Role] = &[Role::Supervisor, Role::Admin];

    /// Every role: the operator views.
    pub const ANYONE: &'static [Role] = &[Role::Operator, Role::Supervisor, Role::Admin];

    /// `Ok` if this identity's role is one of `roles`, else 403.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        tracing::info!(user = %self.user, role = %self.role, "request refused: role not allowed");
        Err(ApiError::Forbidden(if roles == Self::REVIEWERS {
            "forbidden: supervisors and admins only"
        } else {
            "forbidden for this role"
        }))
    }

    /// Whether this identity may see recordings (ids, audio, review).
    pub fn sees_recordings(&self) -> bool {
        Self::REVIEWERS.contains(&self.role)
    }

    /// Resolves a bearer token to an enabled user.
    async fn from_token(state: &AppState, token: &str) -> Result<Identity, ApiError> {
        let store = state.store();
        let hash = TokenHash::of(token);
        let Some(found) = store.find_api_token(&hash).await? else {
            tracing::info!("request refused: unknown API token");
            return Err(ApiError::Unauthenticated);
        };
        let Some(user) = store.get_user(&found.user).await? else {
            tracing::warn!(user = %found.user, "request refused: API token of a missing user");
            return Err(ApiError::Unauthenticated);
        };
        if user.disabled {
            tracing::info!(user = %user.name, "request refused: user disabled");
            return Err(ApiError::Unauthenticated);
        }
        Ok(Identity {
            user: user.name,
            role: user.role,
            via: AuthMethod::Token,
        })
    }
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(identity) = parts.extensions.get::<Identity>() {
            return Ok(identity.clone());
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthenticated)?;
        Identity::from_token(state, token).await
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (scheme case-insensitive, RFC 9110
/// §11.1), if it has the RFC 6750 §2.1 `b64token` shape and a sane length.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start();
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c));
    ok.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_token("Bearer hl_abc"), Some("hl_abc"));
        assert_eq!(bearer_token("bearer   hl_abc"), Some("hl_abc"));
        assert_eq!(bearer_token("Bearer abc=="), Some("abc=="));
        assert_eq!(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearer a\"b"), None);
        assert_eq!(bearer_token(&format!("Bearer {}", "a".repeat(300))), None);
    }

    #[test]
    fn roles() {
        let op = Identity::from_session("ana".into(), Role::Operator);
        assert!(op.require(Identity::ANYONE).is_ok());
        assert!(matches!(
            op.require(Identity::REVIEWERS),
            Err(ApiError::Forbidden(_))
        ));
        assert!(!op.sees_recordings());
        let sup = Identity::from_session("eva".into(), Role::Supervisor);
        assert!(sup.require(Identity::REVIEWERS).is_ok());
        assert!(sup.sees_recordings());
    }
}
