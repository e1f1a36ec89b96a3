//! hotline-console: the HTTP side of the hotline (axum).
//!
//! For now: `GET /healthz`, answered from a [`HealthProbe`] the binary
//! provides. The API and the pages come with their issues.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

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

/// The console's shared state.
#[derive(Clone)]
pub struct AppState {
    /// Health of SIP, storage, database.
    pub health: Arc<dyn HealthProbe>,
    /// Counters and histograms.
    pub metrics: Arc<dyn MetricsSource>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The console's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
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
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    struct Fixed(bool);
    impl HealthProbe for Fixed {
        fn checks(&self) -> Vec<Check> {
            vec![Check {
                name: "sip",
                ok: self.0,
            }]
        }
    }
    impl MetricsSource for Fixed {
        fn render(&self) -> String {
            "hotline_calls_total 1\n".into()
        }
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let app = router(AppState {
            health: Arc::new(Fixed(true)),
            metrics: Arc::new(Fixed(true)),
        });
        let res = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&body[..], b"hotline_calls_total 1\n");
    }

    #[tokio::test]
    async fn healthz_reflects_probe() {
        for (ok, code) in [(true, 200), (false, 503)] {
            let app = router(AppState {
                health: Arc::new(Fixed(ok)),
                metrics: Arc::new(Fixed(ok)),
            });
            let res = app
                .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), code);
        }
    }
}
