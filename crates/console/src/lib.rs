//! hotline-console: the HTTP side of the hotline (axum): health, metrics and the JSON API of
//! CONTRACT.md. The console pages come with their own issue.
//!
//! # Layout
//! - [`router`] builds every route from one table ([`routes`] lists it; the OpenAPI document
//!   at `GET /api/openapi.json` is checked against it by the tests).
//! - [`AppState`]: what the handlers share: the [`CallStore`], the data dir recordings are
//!   relative to, the binary's [`HealthProbe`] and [`MetricsSource`], and optionally a
//!   [`QueueView`].
//! - `health`: `/healthz`, `/metrics` (unauthenticated).
//! - [`auth`]: the [`Identity`] extractor (bearer tokens now, sessions later) and the roles.
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
use axum::response::Response;
use axum::routing::MethodRouter;
use hotline_store::CallStore;

mod api;
pub mod auth;
pub mod error;
mod extract;
mod health;
mod openapi;
pub mod queue;
mod range;

pub use auth::{AuthMethod, Identity};
pub use error::ApiError;
pub use health::{Check, HealthProbe, MetricsSource};
pub use queue::{OperatorStatus, OperatorView, QueueError, QueueSnapshot, QueueView, WaitingCall};

/// Largest request body accepted, in bytes (413 above).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The console's shared state. Build it with [`AppState::new`]; add the operator queue with
/// [`AppState::with_queue`] once it runs.
#[derive(Clone)]
pub struct AppState {
    health: Arc<dyn HealthProbe>,
    metrics: Arc<dyn MetricsSource>,
    store: Arc<dyn CallStore>,
    data_dir: Arc<Path>,
    queue: Option<Arc<dyn QueueView>>,
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
        }
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
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.data_dir)
            .field("queue", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

/// The console's routes, over `state`.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the audit log gets
/// the client's address (it says `unknown` otherwise).
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in all_routes() {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(private_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Every route [`router`] serves, as (method, path) with axum's `{param}` syntax, which is also
/// OpenAPI's. A `GET` route answers `HEAD` too.
pub fn routes() -> Vec<(Method, &'static str)> {
    all_routes()
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
}

fn all_routes() -> Vec<Route> {
    let mut routes = health::routes();
    routes.extend(api::routes());
    routes.extend(openapi::routes());
    routes
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Answers hold call data and recordings: no cache keeps them, no browser sniffs them.
async fn private_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
