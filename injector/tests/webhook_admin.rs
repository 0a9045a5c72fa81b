//! The admin port: liveness, readiness that waits for TLS, and metrics.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyhole_injector::admin::{self, AdminState};
use keyhole_injector::metrics::{TlsMetrics, WebhookMetrics};
use keyhole_injector::settings::Settings;
use keyhole_injector::tls::CertStore;
use keyhole_injector::tls::auto::Bundle;
use keyhole_injector::webhook::{self, AppState};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8(bytes.to_vec()).expect("UTF-8"))
}

#[tokio::test]
async fn readyz_turns_ready_once_a_certificate_is_loaded() {
    keyhole_agent::crypto::install_provider();
    let store = CertStore::new();
    let app = admin::app(AdminState::new(store.loaded(), Registry::default()));

    assert_eq!(
        get(&app, "/livez").await,
        (StatusCode::OK, "ok\n".to_owned())
    );
    assert_eq!(
        get(&app, "/readyz").await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "TLS certificate not loaded yet\n".to_owned()
        )
    );

    let bundle =
        Bundle::generate(&["injector.test".to_owned()], OffsetDateTime::now_utc()).expect("bundle");
    store.set(
        keyhole_injector::tls::certified_key(
            bundle.cert.as_bytes(),
            "tls.crt",
            bundle.key.as_bytes(),
            "tls.key",
        )
        .expect("certified key"),
    );

    assert_eq!(
        get(&app, "/readyz").await,
        (StatusCode::OK, "ok\n".to_owned())
    );
}

#[tokio::test]
async fn metrics_count_reviews_by_outcome_and_tls_reloads() {
    let mut registry = Registry::with_prefix("keyhole_injector");
    let webhook_metrics = WebhookMetrics::register(&mut registry);
    let tls_metrics = TlsMetrics::register(&mut registry);
    let webhook = webhook::app(AppState::new(Settings::default(), webhook_metrics));
    let request = Request::post("/mutate")
        .body(Body::from("not json"))
        .expect("request");
    webhook.oneshot(request).await.expect("router answers");
    tls_metrics.reloaded(false);
    let app = admin::app(AdminState::new(CertStore::new().loaded(), registry));

    let (status, text) = get(&app, "/metrics").await;

    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("keyhole_injector_webhook_reviews_total{outcome=\"invalid\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keyhole_injector_webhook_review_duration_seconds_count 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keyhole_injector_tls_reloads_total{result=\"failure\"} 1\n"),
        "{text}"
    );
}
