//! The `POST /mutate` admission webhook and the HTTPS server it runs on.
//!
//! Every review the handler reads gets an AdmissionReview back: a body that is
//! not a review is an invalid review, a pod with wrong annotations is a denial,
//! and neither is ever an HTTP error, so the API server always shows the user a
//! message. Only what cannot be a review at all is refused by the server with an
//! HTTP status: a body over [`MAX_BODY_BYTES`] (413) or one that does not arrive
//! in time (408).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::LengthLimitError;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use rustls::ServerConfig;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::metrics::{Outcome, WebhookMetrics};
use crate::patch;
use crate::settings::Settings;

/// Largest request body read: the API server's own limit on a request (3 MiB).
/// An AdmissionReview wraps an object that passed that limit, so a larger body
/// cannot be a review the API server sent.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a client may take over each step of a request, so a slow or silent
/// client cannot hold a connection (and its memory) open. The API server gives
/// up on a webhook after at most 30 seconds, 10 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The TLS handshake, from the moment the connection is accepted.
    pub handshake: Duration,
    /// The request line and headers of each request; on a kept-alive connection
    /// this is also how long it may sit idle between requests.
    pub headers: Duration,
    /// The request body, from the end of the headers.
    pub body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            headers: Duration::from_secs(10),
            body: Duration::from_secs(10),
        }
    }
}

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
///
/// The server bounds every step a client controls by `timeouts` and reads at
/// most [`MAX_BODY_BYTES`] of a body before `app` sees the request; `app`'s
/// handlers get the whole body at once. Connections that fail the handshake
/// (plain HTTP, port scanners, health probes speaking TCP) are dropped and
/// logged at debug level only, since any client can cause them.
pub async fn serve(
    listener: std::net::TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    handle: Handle<SocketAddr>,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config))
        .handshake_timeout(timeouts.handshake);
    let app = app
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(timeouts.body, read_body));
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle)
        // Also bounds HTTP/2 connections, where the header timeout does not apply.
        .first_request_timeout(timeouts.headers)
        .accept_error_handler(|peer, error| {
            debug!(?peer, %error, "dropped a connection before its first request");
        });
    server
        .http_builder()
        .http1()
        .header_read_timeout(timeouts.headers);
    server.serve(app.into_make_service()).await
}

/// Reads the whole body within `timeout` and at most [`MAX_BODY_BYTES`], then
/// hands the request on.
async fn read_body(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(err)) => {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<LengthLimitError>());
            if too_large {
                warn!(
                    limit = MAX_BODY_BYTES,
                    "refusing a request body over the limit"
                );
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {MAX_BODY_BYTES} bytes"),
                )
                    .into_response()
            } else {
                warn!(%err, "cannot read a request body");
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {err}"),
                )
                    .into_response()
            }
        }
        Err(_) => {
            warn!(?timeout, "request body not received in time");
            (
                StatusCode::REQUEST_TIMEOUT,
                format!("request body not received within {timeout:?}"),
            )
                .into_response()
        }
    }
}

async fn mutate(State(state): State<AppState>, body: Bytes) -> Json<Value> {
    let started = Instant::now();
    let (outcome, response) = review(&body, &state.settings);
    state.metrics.observe(outcome, started.elapsed());
    debug!(uid = %response.uid, allowed = response.allowed, ?outcome, "answered admission review");
    Json(review_json(response))
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
