//! `GET /healthz` and `GET /metrics`: unauthenticated, answered from what the binary provides
//! ([`HealthProbe`], [`MetricsSource`]).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::{AppState, Route};

/// One component's health, as the binary sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// Component name (`sip`, `storage`, ...).
    pub name: &'static str,
    /// Whether it is usable.
    pub ok: bool,
}

/// Reports the health of the components the console cannot see itself.
pub trait HealthProbe: Send + Sync + 'static {
    /// The current checks; /healthz is 200 only if all are ok.
    fn checks(&self) -> Vec<Check>;
}

/// Renders the Prometheus text for `GET /metrics`.
pub trait MetricsSource: Send + Sync + 'static {
    /// Prometheus text exposition format 0.0.4.
    fn render(&self) -> String;
}

pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::get("/healthz", healthz),
        Route::get("/metrics", metrics),
    ]
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    checks: Vec<Check>,
}

async fn healthz(State(state): State<AppState>) -> Response {
    let checks = state.health.checks();
    let ok = checks.iter().all(|c| c.ok);
    let body = Health {
        status: if ok { "ok" } else { "unavailable" },
        checks,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
