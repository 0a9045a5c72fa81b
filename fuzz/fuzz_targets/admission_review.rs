//! Arbitrary bytes as the body of `POST /mutate`, answered by the real webhook router on a
//! thread with the 2 MiB stack of a tokio worker.
//!
//! Properties: the router never panics and never answers 5xx; every answer is an
//! AdmissionReview whose response carries the request's uid whenever the body had one;
//! a patch is base64 of a JSON Patch array that applies to the reviewed pod.

#![no_main]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use keyhole_fuzz::{on_worker_stack, report_stack_overflows};
use keyhole_injector::metrics::WebhookMetrics;
use keyhole_injector::settings::Settings;
use keyhole_injector::webhook::{self, AppState};
use libfuzzer_sys::fuzz_target;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt;

struct Harness {
    runtime: Runtime,
    router: Router,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut registry = Registry::default();
    let settings = Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        ..Settings::default()
    };
    let state = AppState::new(settings, WebhookMetrics::register(&mut registry));
    Harness {
        runtime,
        router: webhook::app(state),
    }
});

fuzz_target!(init: report_stack_overflows(), |body: &[u8]| {
    let harness = &*HARNESS;
    let request = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request");
    // The runtime runs on the thread that blocks on it, as a worker runs a review.
    let (status, answer) = on_worker_stack(|| {
        harness.runtime.block_on(async {
            let response = harness
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("response body");
            (status, bytes)
        })
    });
    assert!(!status.is_server_error(), "server error {status}");
    assert_eq!(status, StatusCode::OK);

    let review: Value = serde_json::from_slice(&answer).expect("the answer is JSON");
    let sent: Option<Value> = serde_json::from_slice(body).ok();
    // The answer repeats the request's apiVersion and kind, which the API server sets to these.
    if sent
        .as_ref()
        .is_some_and(|v| v["apiVersion"] == "admission.k8s.io/v1" && v["kind"] == "AdmissionReview")
    {
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
    }
    let response = &review["response"];
    assert!(response["allowed"].is_boolean(), "no allowed in {review}");

    let sent_uid = sent
        .as_ref()
        .and_then(|v| v.pointer("/request/uid"))
        .and_then(Value::as_str);
    if let Some(uid) = sent_uid {
        assert_eq!(response["uid"], uid, "uid not echoed in {review}");
    }

    let Some(patch) = response.get("patch") else {
        return;
    };
    assert_eq!(response["allowed"], true, "a denial carries a patch");
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = patch.as_str().expect("the patch is a base64 string");
    let decoded = STANDARD.decode(encoded).expect("the patch is base64");
    let ops: Value = serde_json::from_slice(&decoded).expect("the patch is JSON");
    assert!(ops.is_array(), "the patch is not an array: {ops}");
    let ops: json_patch::Patch = serde_json::from_value(ops).expect("the patch is a JSON Patch");

    // The API server applies the patch to the pod as it decoded it, so apply it to
    // the object after a round trip through the Pod type.
    // serde_json does not check that the strings the webhook skips (say, in `userInfo`)
    // are UTF-8, so a body that is not strictly JSON can be patched too: read it as the
    // same body with U+FFFD for its invalid bytes.
    let object = sent
        .or_else(|| serde_json::from_str(&String::from_utf8_lossy(body)).ok())
        .and_then(|mut v| v.pointer_mut("/request/object").map(Value::take))
        .expect("a patch answers a request with an object");
    // The webhook reads the object through kube's DynamicObject, which drops its type
    // fields, so a body with a foreign apiVersion can still be patched.
    let Ok(pod) = serde_json::from_value::<Pod>(object) else {
        return;
    };
    let mut doc = serde_json::to_value(&pod).expect("pod to JSON");
    json_patch::patch(&mut doc, &ops).expect("the patch applies to the pod");
});
