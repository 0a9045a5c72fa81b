//! The plain-HTTP admin port: `/livez`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// What the admin endpoints report on.
#[derive(Clone, Debug)]
pub struct AdminState {
    ready: watch::Receiver<bool>,
    registry: Arc<Registry>,
}

impl AdminState {
    /// Ready once `ready` turns `true`; `/metrics` encodes `registry`.
    pub fn new(ready: watch::Receiver<bool>, registry: Registry) -> Self {
        Self {
            ready,
            registry: Arc::new(registry),
        }
    }
}

/// The admin routes.
pub fn app(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if *state.ready.borrow() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "TLS certificate not loaded yet\n",
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut body = String::new();
    match encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}
