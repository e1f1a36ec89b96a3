//! The HTML console: server-rendered pages (askama templates compiled in, no front-end build),
//! Spanish by default, English available.
//!
//! # Layout
//! - `mod.rs` (this file): the page route table ([`routes`]), the [`PageUser`] guard,
//!   [`PageError`], [`audit_view`], and the small routes every page uses: `/` (home by role),
//!   `/lang/{es|en}` (language switch), `/static/console.<hash>.js` (the shared script).
//! - [`layout`]: the [`Layout`] every template holds (language, user, navigation, CSRF field),
//!   the console's areas and who may open them ([`layout::AREAS`]), the error pages.
//! - [`i18n`]: `t(lang, key)` and its table.
//! - `signin`: `GET/POST /signin`, `POST /signout`, refusal after repeated failures.
//! - `me`: `/me`, the example page to copy.
//! - `operator` (`/operator`, SSE), `board` (`/board`), `recordings` (`/recordings`,
//!   `/recordings/{id}`, export, `/audit`), `admin` (`/admin/users`, tokens): one module per
//!   area, each filled by its own change.
//! - Templates: `templates/` in the crate (`base.html` is the layout; each page extends it).
//! - Script: `static/console.js`, served by [`layout::script_path`] with a year of cache (its
//!   name changes with its content). Pages have no inline script (the Content-Security-Policy
//!   forbids it): put what a page needs there.
//!
//! # Adding a page (copy `me.rs`)
//! 1. **Route**: in the area's module, list it in `routes()`:
//!    `Route::get("/recordings/{id}", show)` (and `Route::post(...)` for its form). The area's
//!    prefix is already in [`layout::AREAS`]; a new area adds a line there (prefix, nav label,
//!    roles), which also puts it in the navigation of those roles.
//! 2. **Guard**: take a [`PageUser`] argument (anonymous visitors are sent to
//!    `/signin?next=…`) and call `user.require(roles)?` first, with the roles of the page
//!    (`Identity::REVIEWERS`, `Identity::ANYONE`, `&[Role::Admin]`): a 403 page otherwise. The
//!    area guard runs before any handler too, but a page states its own roles.
//! 3. **Template**: `templates/<area>_<page>.html` starting with `{% extends "base.html" %}` and
//!    filling `{% block content %}`; its struct derives `Template` and `WebTemplate` and has a
//!    `layout: Layout` field, made with `user.layout("area.title_key")`. Text goes through
//!    `{{ layout.t("area.key") }}`; askama escapes every value.
//! 4. **Forms**: every POST form carries `{{ layout.csrf_input()|safe }}` (the session's CSRF
//!    token; without it the session layer answers 403 before the handler). Scripts send the
//!    token as `X-CSRF-Token` (`hotline.fetch(...)` in `console.js` does it). After a POST,
//!    answer with [`see_other`] (post/redirect/get).
//! 5. **i18n**: add the page's keys to its module's own `I18N` table (see `i18n`), Spanish and English (a test checks
//!    that every `t("…")` used is there).
//! 6. **Audit**: before showing a recording, its audio player or its metadata, call
//!    [`audit_view`]; if it fails the page is not shown (503).
//! 7. **Errors**: return `Result<_, PageError>`; `?` on a store error gives a 500/503 page,
//!    `PageError::NotFound` a 404 page, all in the user's language with the navigation.
//! 8. **Tests**: `tests/pages.rs` shows how to sign in with `oneshot` and carry the cookie and
//!    the CSRF token.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::{NewAuditEntry, Role, StoreError, new_id};
use serde::Deserialize;

use crate::extract::ClientAddr;
use crate::session::{SignedIn, set_cookie};
use crate::{AppState, Route};

mod admin;
mod board;
mod callbacks;
mod charts;
pub(crate) mod i18n;
pub(crate) mod layout;
mod me;
mod operator;
mod recordings;
mod safety;
mod signin;
mod sse;

pub(crate) use i18n::Lang;
pub(crate) use layout::{
    Here, Layout, LayoutUser, area_guard, failure, failure_from_store, finish,
};
pub(crate) use signin::SigninLimiter;

/// Prepares what the first requests would otherwise wait for (see `signin::warm_up`).
pub(crate) fn warm_up() {
    signin::warm_up();
}

/// Every page route.
pub(crate) fn routes() -> Vec<Route> {
    let mut routes = vec![
        Route::get("/", home),
        Route::get("/lang/{lang}", set_lang),
        Route::get("/static/{file}", static_file),
    ];
    routes.extend(signin::routes());
    routes.extend(me::routes());
    routes.extend(operator::routes());
    routes.extend(callbacks::routes());
    routes.extend(board::routes());
    routes.extend(recordings::routes());
    routes.extend(admin::routes());
    routes
}

/// The signed-in user of a page request: the guard of every page.
///
/// Extracting it sends anonymous visitors to `/signin?next=<this page>` (303). Requests with a
/// bearer token are not page users: pages are for the browser's session only.
#[derive(Debug, Clone)]
pub(crate) struct PageUser {
    /// The user name.
    pub(crate) name: String,
    pub(crate) role: Role,
    /// The language of the pages (the `lang` cookie).
    pub(crate) lang: Lang,
    /// The session's CSRF token, for the forms (the layout puts it in `csrf_input()`).
    pub(crate) csrf: String,
    /// This request's path and query.
    pub(crate) here: String,
    /// The client's address, for audit lines.
    #[allow(dead_code, reason = "read by audit_view, for the recordings pages")]
    pub(crate) source: String,
    /// The hotline's time zone: the days and times the pages show.
    pub(crate) zone: hotline_store::Zone,
}

impl PageUser {
    /// `Ok` if the user's role is one of `roles`, else a 403 page.
    pub(crate) fn require(&self, roles: &[Role]) -> Result<(), PageError> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        tracing::info!(user = %self.name, role = %self.role, page = %self.here, "page refused: role not allowed");
        Err(PageError::Forbidden)
    }

    /// The layout of a page titled by the i18n key `title`.
    pub(crate) fn layout(&self, title: &'static str) -> Layout {
        Layout {
            lang: self.lang,
            title,
            user: Some(LayoutUser {
                name: self.name.clone(),
                role: self.role,
                csrf: self.csrf.clone(),
            }),
            here: self.here.clone(),
            zone: self.zone.name().to_owned(),
        }
    }
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let here = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(s) = parts.extensions.get::<SignedIn>().cloned() else {
            return Err(redirect_to_signin(&parts.method, &here));
        };
        let Ok(ClientAddr(source)) = ClientAddr::from_request_parts(parts, state).await;
        Ok(PageUser {
            name: s.user,
            role: s.role,
            lang: Lang::of(&parts.headers),
            csrf: s.csrf,
            here,
            source,
            zone: state.zone().clone(),
        })
    }
}

/// 303 to the sign-in page, coming back to `here` after it (for GET requests only: a form's
/// target cannot be opened again by GET).
pub(crate) fn redirect_to_signin(method: &Method, here: &str) -> Response {
    if *method == Method::GET && here != "/" {
        see_other(&format!("/signin?next={}", urlencode(here)))
    } else {
        see_other("/signin")
    }
}

/// Why a page cannot be shown; answered as an error page in the user's language.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum PageError {
    /// 400.
    #[allow(dead_code, reason = "for the pages that take parameters")]
    BadRequest,
    /// 403: the role does not allow it.
    Forbidden,
    /// 404.
    NotFound,
    /// 503: the audit line could not be written, so the recording is not shown.
    #[allow(dead_code, reason = "made by audit_view, for the recordings pages")]
    AuditUnavailable(StoreError),
    /// 500 or 503 by the error's kind (404 for `StoreError::NotFound`).
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        PageError::Store(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::BadRequest => failure(StatusCode::BAD_REQUEST, "error.400"),
            PageError::Forbidden => failure(StatusCode::FORBIDDEN, "error.403"),
            PageError::NotFound | PageError::Store(StoreError::NotFound(_)) => {
                failure(StatusCode::NOT_FOUND, "error.404")
            }
            PageError::AuditUnavailable(e) => {
                tracing::error!(error = ?e, "audit write failed: the recording is not shown");
                failure(StatusCode::SERVICE_UNAVAILABLE, "error.audit")
            }
            PageError::Store(e) => failure_from_store(e),
        }
    }
}

/// Writes the audit line of a page that shows a recording or its metadata: who, when (the
/// state's clock), from where, `action` (e.g. `recording.view`, `recording.export`), the
/// recording (or `None` for a list or export of several) and `detail`. Call it **before**
/// rendering: when it fails the page answers 503 and shows nothing of the recording.
#[allow(dead_code, reason = "for the recordings pages, which come next")]
pub(crate) async fn audit_view(
    state: &AppState,
    who: &PageUser,
    recording_id: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<(), PageError> {
    let entry = NewAuditEntry {
        id: new_id(),
        at: state.now(),
        user: Some(who.name.clone()),
        action: action.to_owned(),
        recording_id: recording_id.map(str::to_owned),
        source: Some(who.source.clone()),
        detail: detail.to_owned(),
    };
    state
        .store()
        .append_audit(&entry)
        .await
        .map_err(PageError::AuditUnavailable)?;
    tracing::info!(user = %who.name, recording = ?recording_id, action, "audited page view");
    Ok(())
}

/// 303 See Other to `location` (after a POST, or a redirect by role).
pub(crate) fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `s` if it is a path of this site (`/…`, not `//host` or `/\host`, printable ASCII), for
/// `next` and `back` parameters: never a redirect elsewhere.
pub(crate) fn local_path(s: &str) -> Option<&str> {
    let ok = s.starts_with('/')
        && !s.starts_with("//")
        && !s.contains('\\')
        && s.len() <= 2048
        && s.bytes().all(|c| c.is_ascii_graphic());
    ok.then_some(s)
}

/// Percent-encoding of everything but RFC 3986's unreserved characters (for a query value).
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where each role starts.
pub(crate) fn home_of(role: Role) -> &'static str {
    match role {
        Role::Operator => "/operator",
        Role::Supervisor => "/recordings",
        Role::Admin => "/admin/users",
    }
}

/// `GET /`: to the role's start page.
async fn home(user: PageUser) -> Response {
    see_other(home_of(user.role))
}

#[derive(Debug, Deserialize)]
struct BackQuery {
    back: Option<String>,
}

/// `GET /lang/{es|en}?back=/path`: sets the `lang` cookie (a year) and goes back (to a path of
/// this site only; `/` otherwise).
async fn set_lang(
    State(state): State<AppState>,
    Path(code): Path<String>,
    query: Result<Query<BackQuery>, QueryRejection>,
) -> Response {
    let Some(lang) = Lang::from_code(&code) else {
        return failure(StatusCode::NOT_FOUND, "error.404");
    };
    let back = query
        .as_ref()
        .ok()
        .and_then(|Query(q)| q.back.as_deref())
        .and_then(local_path)
        .unwrap_or("/");
    let mut res = see_other(back);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            state.console(),
            i18n::LANG_COOKIE,
            lang.code(),
            "/",
            Some(365 * 24 * 3600),
        ),
    );
    res
}

/// `GET /static/console.<hash>.js`: the shared script, cached for a year (its name changes with
/// its content).
async fn static_file(Path(file): Path<String>) -> Response {
    let path = layout::script_path();
    if path.strip_prefix("/static/") != Some(file.as_str()) {
        return failure(StatusCode::NOT_FOUND, "error.404");
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        layout::SCRIPT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths() {
        assert_eq!(local_path("/recordings?x=1"), Some("/recordings?x=1"));
        assert_eq!(local_path("/"), Some("/"));
        assert_eq!(local_path("//evil.example"), None);
        assert_eq!(local_path("/\\evil.example"), None);
        assert_eq!(local_path("https://evil.example/"), None);
        assert_eq!(local_path("relative"), None);
        assert_eq!(local_path("/a b"), None);
        assert_eq!(local_path("/a\r\nSet-Cookie:x"), None);
        assert_eq!(local_path(""), None);
    }

    #[test]
    fn encoding() {
        assert_eq!(urlencode("/a?b=c&d"), "%2Fa%3Fb%3Dc%26d");
        assert_eq!(urlencode("ñ"), "%C3%B1");
    }
}
