//! The `POST /mutate` admission webhook and the HTTPS server it runs on.
//!
//! Every review the handler reads gets an AdmissionReview back: a body that is
//! not a review is an invalid review, a pod with wrong annotations is a denial,
//! and neither is ever an HTTP error, so the API server always shows the user a
//! message. Only what cannot be a review at all is refused by the server with an
//! HTTP status: a body over [`MAX_BODY_BYTES`] (413) or one that does not arrive
//! in time (408).

use std::collections::BTreeMap;
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
use kube::core::TypeMeta;
use kube::core::admission::{AdmissionResponse, Operation};
use rustls::ServerConfig;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use crate::annotations::keys::INJECT;
use crate::denial::Denial;
use crate::metrics::{Outcome, WebhookMetrics};
use crate::patch;
use crate::pod::{Pod, PodHead};
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
    let app = bounded(app, timeouts.body);
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

/// `app` behind the body bounds [`serve`] applies: a body is read whole,
/// within `timeout` and up to [`MAX_BODY_BYTES`], before `app` sees it.
pub fn bounded(app: Router, timeout: Duration) -> Router {
    app.layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(timeout, read_body))
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

async fn mutate(State(state): State<AppState>, body: Bytes) -> Json<ReviewJson> {
    let started = Instant::now();
    let (outcome, response, patch) = review(&body, &state.settings);
    state.metrics.observe(outcome, started.elapsed());
    debug!(uid = %response.uid, allowed = response.allowed, ?outcome, "answered admission review");
    Json(review_json(response, patch))
}

/// The parts of an AdmissionReview the webhook reads. The object stays raw
/// JSON, borrowed from the body, until it is read as a [`Pod`] view, so no
/// generic JSON tree of a whole review is ever built.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a> {
    api_version: String,
    kind: String,
    #[serde(borrow)]
    request: Option<ReviewRequest<'a>>,
}

/// The request of a [`Review`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewRequest<'a> {
    uid: String,
    operation: Operation,
    namespace: Option<String>,
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

/// Just the uid of a review that cannot be read otherwise.
#[derive(Deserialize)]
struct UidOnly {
    request: Option<UidRequest>,
}

#[derive(Deserialize)]
struct UidRequest {
    uid: Option<String>,
}

/// An answer to a review: what it counts as, the response, and the JSON
/// Patch when the pod gets one.
type Answer = (Outcome, AdmissionResponse, Option<Vec<u8>>);

/// Answers one AdmissionReview body.
fn review(body: &[u8], settings: &Settings) -> Answer {
    let (types, request) = match parse_request(body) {
        Ok(parsed) => parsed,
        Err((uid, reason)) => return invalid(uid, reason),
    };
    let allowed = allow(types, &request.uid);
    let (Operation::Create, Some(object)) = (&request.operation, request.object) else {
        return (Outcome::Allowed, allowed, None);
    };
    let namespace = request.namespace.as_deref().unwrap_or_default();
    // The metadata alone says whether the pod gets the agent; only then is
    // the rest read, with the limits on its lists.
    let head: PodHead = match serde_json::from_str(object.get()) {
        Ok(head) => head,
        Err(err) => return invalid(request.uid, format!("the object is not a valid Pod: {err}")),
    };
    match patch::skip_reason(&head.metadata, namespace, settings) {
        Ok(Some(reason)) => {
            debug!(namespace, pod = ?head.name(), %reason, "not injecting");
            return (Outcome::Allowed, allowed, None);
        }
        Ok(None) => {}
        Err(denial) => return deny(namespace, head.name(), allowed, denial),
    }
    let spec = match head.read_spec() {
        Ok(spec) => spec,
        Err(err) => {
            let denial = patch::as_written(
                head.metadata.annotations.as_ref(),
                Denial::new(INJECT, format!("cannot read the pod: {err}")),
            );
            return deny(namespace, head.name(), allowed, denial);
        }
    };
    let pod = Pod {
        metadata: head.metadata,
        spec,
    };
    match patch::mutate_json(&pod, namespace, settings) {
        Ok((patch, warnings)) => {
            let mut response = allowed;
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            (Outcome::Patched, response, Some(patch))
        }
        Err(denial) => deny(namespace, pod.name(), allowed, denial),
    }
}

/// Turns `allowed` into a denial of pod `name`.
fn deny(namespace: &str, name: &str, allowed: AdmissionResponse, denial: Denial) -> Answer {
    info!(namespace, pod = ?name, %denial, "denied pod");
    (Outcome::Denied, allowed.deny(denial), None)
}

/// An invalid review's answer, keeping the request's uid when it had one.
fn invalid(uid: String, reason: String) -> Answer {
    warn!(uid, %reason, "rejecting malformed admission review");
    let mut response = AdmissionResponse::invalid(reason);
    response.uid = uid;
    (Outcome::Invalid, response, None)
}

/// The answer that lets a request through unchanged, as kube-core builds it
/// from a typed request.
fn allow(types: TypeMeta, uid: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("");
    response.types = types;
    response.uid = uid.to_owned();
    response.allowed = true;
    response.result = Default::default();
    response
}

/// Reads a review's request; on failure returns the uid if the body had one,
/// so the API server can still match the answer to its request.
fn parse_request(body: &[u8]) -> Result<(TypeMeta, ReviewRequest<'_>), (String, String)> {
    let review: Review<'_> = serde_json::from_slice(body).map_err(|err| {
        let uid = serde_json::from_slice::<UidOnly>(body)
            .ok()
            .and_then(|u| u.request?.uid)
            .unwrap_or_default();
        if err.is_data() {
            (uid, format!("not an AdmissionReview: {err}"))
        } else {
            (uid, format!("the body is not JSON: {err}"))
        }
    })?;
    let types = TypeMeta {
        api_version: review.api_version,
        kind: review.kind,
    };
    let request = review.request.ok_or_else(|| {
        (
            String::new(),
            String::from("the AdmissionReview has no request"),
        )
    })?;
    Ok((types, request))
}

/// The review as the API server expects it, with `patch`, a JSON Patch's
/// text, as its patch.
///
/// kube-core keeps the patch as bytes and serialises them as a JSON array of
/// numbers; the API server's `patch` field is `[]byte`, which JSON carries as
/// base64, as every other webhook sends it. So the patch is added here, next
/// to the rest of the response as a JSON value.
fn review_json(response: AdmissionResponse, patch: Option<Vec<u8>>) -> ReviewJson {
    let value = serde_json::to_value(response.into_review()).unwrap_or_else(|err| {
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "", "allowed": false, "status": {"message": err.to_string()}},
        })
    });
    ReviewJson {
        value,
        patch: patch.map(|bytes| base64_string(&bytes)),
    }
}

/// `bytes` in base64 as a JSON string. Base64 has nothing to escape, so the
/// text is written as it is rather than scanned again as a string value.
fn base64_string(bytes: &[u8]) -> Box<RawValue> {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
    text.push('"');
    STANDARD.encode_string(bytes, &mut text);
    text.push('"');
    RawValue::from_string(text).unwrap_or_else(|_| unreachable!("base64 in quotes is JSON"))
}

/// An AdmissionReview answer: the review as a JSON value and the patch in
/// base64, which is written among the response's fields.
struct ReviewJson {
    value: Value,
    patch: Option<Box<RawValue>>,
}

/// A field of an answer: a value of the review, the patch, or the response
/// with the patch in it.
#[derive(Serialize)]
#[serde(untagged)]
enum Field<'a> {
    Value(&'a Value),
    Raw(&'a RawValue),
    Text(&'static str),
    Object(BTreeMap<&'a str, Field<'a>>),
}

impl Serialize for ReviewJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (Some(patch), Value::Object(review)) = (&self.patch, &self.value) else {
            return self.value.serialize(serializer);
        };
        let mut answer = fields(review);
        if let Some(Value::Object(response)) = review.get("response") {
            let mut response = fields(response);
            response.insert("patch", Field::Raw(patch));
            response.insert("patchType", Field::Text("JSONPatch"));
            answer.insert("response", Field::Object(response));
        }
        answer.serialize(serializer)
    }
}

/// The fields of `object` in key order, the order serde_json writes them in.
fn fields(object: &Map<String, Value>) -> BTreeMap<&str, Field<'_>> {
    object
        .iter()
        .map(|(key, value)| (key.as_str(), Field::Value(value)))
        .collect()
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
        let (types, request) = parse_request(body).expect("request parses");
        let patch = br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#;

        let answer = review_json(allow(types, &request.uid), Some(patch.to_vec()));

        let text = serde_json::to_string(&answer).expect("answer serialises");
        let review: Value = serde_json::from_str(&text).expect("answer is JSON");

        assert_eq!(
            review["response"]["patch"],
            "W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscyIsInZhbHVlIjp7ImEiOiJiIn19XQ=="
        );
        assert_eq!(review["response"]["patchType"], "JSONPatch");
        assert_eq!(review["response"]["uid"], "u-1");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    }
}
