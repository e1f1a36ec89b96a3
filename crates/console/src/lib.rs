//! hotline-console: the HTTP side of the hotline (axum): health, metrics, the JSON API of
//! CONTRACT.md and the server-rendered console pages.
//!
//! # Layout
//! - [`router`] builds every route from two tables: the JSON side ([`routes`] lists it; the
//!   OpenAPI document at `GET /api/openapi.json` is checked against it by the tests) and the
//!   pages ([`page_routes`]).
//! - [`AppState`]: what the handlers share: the [`CallStore`], the data dir recordings are
//!   relative to, the binary's [`HealthProbe`] and [`MetricsSource`], optionally a
//!   [`QueueView`], the [`ConsoleSettings`] of sessions and the [`Clock`] they read.
//! - [`accounts`]: password hashes, SIP digest HA1s and API tokens (shared with the CLI).
//! - `health`: `/healthz`, `/metrics` (unauthenticated).
//! - [`auth`]: the [`Identity`] extractor (bearer token or session cookie) and the roles.
//! - [`session`]: the session cookie, its idle and absolute limits, CSRF; a middleware in
//!   front of every route.
//! - `pages/`: the HTML console (sign-in, layout, i18n, guards, one module per area); see the
//!   module's documentation for how to add a page.
//! - `api/`: one file per resource (`calls`, `recordings`, `audio`, `queue`, `operators`,
//!   `audit`), each with its query/body types, its JSON shapes and its handlers.
//! - `range`: the `Range` header of `GET /api/recordings/{id}/audio`.
//! - [`error`]: [`ApiError`], answered as `{"error": "..."}`; `extract`: extractors that
//!   answer their rejections that way.
//! - `openapi`: the hand-written OpenAPI 3.1 document.
//!
//! Roles, audit and what is not implemented: see the crate README.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use hotline_store::CallStore;

pub mod accounts;
mod api;
pub mod auth;
pub mod error;
mod extract;
mod health;
mod openapi;
mod pages;
pub mod queue;
mod range;
pub mod session;

pub use auth::{AuthMethod, Identity};
pub use error::ApiError;
pub use health::{Check, HealthProbe, MetricsSource};
pub use queue::{OperatorStatus, OperatorView, QueueError, QueueSnapshot, QueueView, WaitingCall};
pub use session::{Clock, ConsoleSettings, SystemClock};

/// Largest request body accepted, in bytes (413 above).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The console's shared state. Build it with [`AppState::new`]; add the operator queue with
/// [`AppState::with_queue`] once it runs, the session settings with
/// [`AppState::with_console_settings`] (defaults otherwise), and a test clock with
/// [`AppState::with_clock`].
#[derive(Clone)]
pub struct AppState {
    health: Arc<dyn HealthProbe>,
    metrics: Arc<dyn MetricsSource>,
    store: Arc<dyn CallStore>,
    data_dir: Arc<Path>,
    queue: Option<Arc<dyn QueueView>>,
    console: ConsoleSettings,
    clock: Arc<dyn Clock>,
    /// Failed sign-ins, in memory (see `pages::signin`).
    signin_limiter: Arc<pages::SigninLimiter>,
}

impl AppState {
    /// The state of a console over `store`. `data_dir` is the directory a recording's stored
    /// path is relative to (`storage.data_dir`; absolute paths are used as they are).
    pub fn new(
        health: Arc<dyn HealthProbe>,
        metrics: Arc<dyn MetricsSource>,
        store: Arc<dyn CallStore>,
        data_dir: impl Into<PathBuf>,
    ) -> AppState {
        AppState {
            health,
            metrics,
            store,
            data_dir: Arc::from(data_dir.into()),
            queue: None,
            console: ConsoleSettings::default(),
            clock: Arc::new(SystemClock),
            signin_limiter: Arc::default(),
        }
    }

    /// Sessions of the console pages: cookie flags, idle and absolute limits.
    #[must_use]
    pub fn with_console_settings(mut self, settings: ConsoleSettings) -> AppState {
        self.console = settings;
        self
    }

    /// The clock sessions, sign-in refusals and page audit lines read (tests set the time with
    /// it; [`SystemClock`] otherwise).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AppState {
        self.clock = clock;
        self
    }

    /// Serves `GET /api/queue` and `PUT /api/operators/{name}/status` from `queue`.
    #[must_use]
    pub fn with_queue(mut self, queue: Arc<dyn QueueView>) -> AppState {
        self.queue = Some(queue);
        self
    }

    pub(crate) fn store(&self) -> &dyn CallStore {
        &*self.store
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn queue(&self) -> Option<&dyn QueueView> {
        self.queue.as_deref()
    }

    pub(crate) fn console(&self) -> &ConsoleSettings {
        &self.console
    }

    /// The hotline's time zone (see [`ConsoleSettings::time_zone`]).
    pub(crate) fn zone(&self) -> &hotline_store::Zone {
        &self.console.time_zone
    }

    /// Now, by the state's clock.
    pub(crate) fn now(&self) -> hotline_store::Timestamp {
        self.clock.now()
    }

    pub(crate) fn signin_limiter(&self) -> &pages::SigninLimiter {
        &self.signin_limiter
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.data_dir)
            .field("queue", &self.queue.is_some())
            .field("console", &self.console)
            .finish_non_exhaustive()
    }
}

/// The console's routes, over `state`.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the audit log gets
/// the client's address (it says `unknown` otherwise).
pub fn router(state: AppState) -> Router {
    pages::warm_up();
    let mut router = Router::new();
    for route in all_routes().into_iter().chain(pages::routes()) {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::middleware,
        ))
        .layer(axum::middleware::map_response(private_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Every route of the JSON side [`router`] serves (`/api`, `/healthz`, `/metrics`), as
/// (method, path) with axum's `{param}` syntax, which is also OpenAPI's. A `GET` route answers
/// `HEAD` too.
pub fn routes() -> Vec<(Method, &'static str)> {
    all_routes()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

/// Every route of the HTML console [`router`] serves, as [`routes`] does for the JSON side.
pub fn page_routes() -> Vec<(Method, &'static str)> {
    pages::routes()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

/// One route: the table [`router`] and [`routes`] are both made from.
pub(crate) struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<AppState>,
}

impl Route {
    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Route {
        Route {
            method: Method::GET,
            path,
            handler: axum::routing::get(h),
        }
    }

    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Route {
        Route {
            method: Method::PUT,
            path,
            handler: axum::routing::put(h),
        }
    }

    pub(crate) fn patch<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Route {
        Route {
            method: Method::PATCH,
            path,
            handler: axum::routing::patch(h),
        }
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, h: H) -> Route {
        Route {
            method: Method::POST,
            path,
            handler: axum::routing::post(h),
        }
    }
}

fn all_routes() -> Vec<Route> {
    let mut routes = health::routes();
    routes.extend(api::routes());
    routes.extend(openapi::routes());
    routes
}

/// 404: JSON under `/api`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if session::is_json_path(uri.path()) {
        ApiError::NotFound("no such route").into_response()
    } else {
        pages::failure(axum::http::StatusCode::NOT_FOUND, "error.404")
    }
}

/// 405: JSON under `/api`, a page elsewhere.
async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if session::is_json_path(uri.path()) {
        ApiError::MethodNotAllowed.into_response()
    } else {
        pages::failure(axum::http::StatusCode::METHOD_NOT_ALLOWED, "error.405")
    }
}

/// What a page may load: its own scripts (no inline script), inline styles, media from here.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Answers hold call data and recordings: no cache keeps them (unless the route said so, as
/// the static script does), no browser sniffs them, frames them or sends their address on.
async fn private_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
