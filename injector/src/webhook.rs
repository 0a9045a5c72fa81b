//! The `POST /mutate` admission webhook.
//!
//! Every request gets an AdmissionReview back: a body that cannot be read is an
//! invalid review, a pod with wrong annotations is a denial, and neither is ever
//! an HTTP error, so the API server always shows the user a message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use rustls::ServerConfig;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::metrics::{Outcome, WebhookMetrics};
use crate::patch;
use crate::settings::Settings;

/// Largest request body read. The API server caps objects near 3 MiB; an
/// AdmissionReview wraps one object plus request metadata.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How long a client may take to send its request body. The API server gives up
/// on a webhook after at most 30 seconds.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the webhook handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    settings: Arc<Settings>,
    metrics: WebhookMetrics,
}

impl AppState {
    /// State for a webhook that mutates with `settings` and counts into `metrics`.
    pub fn new(settings: Settings, metrics: WebhookMetrics) -> Self {
        Self {
            settings: Arc::new(settings),
            metrics,
        }
    }
}

/// The webhook's routes: `POST /mutate`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .with_state(state)
}

/// Serves `app` over HTTPS on `listener` until `handle` shuts the server down;
/// a graceful shutdown lets in-flight reviews finish.
pub async fn serve(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    handle: Handle<SocketAddr>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))?
        .handle(handle)
        .serve(app.into_make_service())
        .await
}

async fn mutate(State(state): State<AppState>, body: Body) -> Json<Value> {
    let started = Instant::now();
    let (outcome, response) = match read_body(body).await {
        Ok(bytes) => review(&bytes, &state.settings),
        Err(reason) => {
            warn!(%reason, "rejecting admission review");
            (Outcome::Invalid, AdmissionResponse::invalid(reason))
        }
    };
    state.metrics.observe(outcome, started.elapsed());
    debug!(uid = %response.uid, allowed = response.allowed, ?outcome, "answered admission review");
    Json(review_json(response))
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, String> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => Err(format!(
            "cannot read the request body (at most {MAX_BODY_BYTES} bytes): {err}"
        )),
        Err(_) => Err(format!(
            "request body not received within {} seconds",
            BODY_TIMEOUT.as_secs()
        )),
    }
}

/// Answers one AdmissionReview body.
fn review(body: &[u8], settings: &Settings) -> (Outcome, AdmissionResponse) {
    let request = match parse_request(body) {
        Ok(request) => request,
        Err((uid, reason)) => {
            warn!(uid, %reason, "rejecting malformed admission review");
            let mut response = AdmissionResponse::invalid(reason);
            response.uid = uid;
            return (Outcome::Invalid, response);
        }
    };
    let allowed = AdmissionResponse::from(&request);
    let (Operation::Create, Some(object)) = (&request.operation, request.object.as_ref()) else {
        return (Outcome::Allowed, allowed);
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let pod: Pod = match serde_json::to_value(object).and_then(serde_json::from_value) {
        Ok(pod) => pod,
        Err(err) => {
            let reason = format!("the object is not a valid Pod: {err}");
            warn!(uid = request.uid, %reason, "rejecting malformed admission review");
            let mut response = AdmissionResponse::invalid(reason);
            response.uid = request.uid.clone();
            return (Outcome::Invalid, response);
        }
    };
    let name = pod_name(&pod);
    match patch::mutate_pod(&pod, namespace, settings) {
        Ok(patch::Outcome::Skip(reason)) => {
            debug!(namespace, pod = name, %reason, "not injecting");
            (Outcome::Allowed, allowed)
        }
        Ok(patch::Outcome::Patch { patch, warnings }) => match allowed.with_patch(patch) {
            Ok(mut response) => {
                if !warnings.is_empty() {
                    response.warnings = Some(warnings);
                }
                (Outcome::Patched, response)
            }
            Err(err) => {
                warn!(uid = request.uid, %err, "cannot serialise the patch");
                let mut response = AdmissionResponse::invalid(err);
                response.uid = request.uid.clone();
                (Outcome::Invalid, response)
            }
        },
        Err(denial) => {
            info!(namespace, pod = name, %denial, "denied pod");
            (Outcome::Denied, allowed.deny(denial))
        }
    }
}

/// Reads a review's request; on failure returns the uid if the body had one,
/// so the API server can still match the answer to its request.
fn parse_request(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, (String, String)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| (String::new(), format!("the body is not JSON: {err}")))?;
    let uid = value
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(value)
        .map_err(|err| (uid.clone(), format!("not an AdmissionReview: {err}")))?;
    review
        .try_into()
        .map_err(|_| (uid, String::from("the AdmissionReview has no request")))
}

fn pod_name(pod: &Pod) -> &str {
    let meta = &pod.metadata;
    meta.name
        .as_deref()
        .or(meta.generate_name.as_deref())
        .unwrap_or_default()
}

/// The review as the API server expects it.
///
/// kube-core keeps the patch as bytes and serialises them as a JSON array of
/// numbers; the API server's `patch` field is `[]byte`, which JSON carries as
/// base64, as every other webhook sends it.
fn review_json(response: AdmissionResponse) -> Value {
    let patch = response
        .patch
        .as_deref()
        .map(|bytes| STANDARD.encode(bytes));
    let mut value = serde_json::to_value(response.into_review()).unwrap_or_else(|err| {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "", "allowed": false, "status": {"message": err.to_string()}},
        })
    });
    if let (Some(patch), Some(field)) = (patch, value.pointer_mut("/response/patch")) {
        *field = Value::String(patch);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_is_sent_as_base64_with_json_patch_type() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
            "userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{}}}}"#;
        let request = parse_request(body).expect("request parses");
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}
        ]))
        .expect("patch");
        let response = AdmissionResponse::from(&request)
            .with_patch(patch)
            .expect("patch serialises");

        let review = review_json(response);

        assert_eq!(
            review["response"]["patch"],
            "W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscyIsInZhbHVlIjp7ImEiOiJiIn19XQ=="
        );
        assert_eq!(review["response"]["patchType"], "JSONPatch");
        assert_eq!(review["response"]["uid"], "u-1");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    }
}
