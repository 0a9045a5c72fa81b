//! Memory per admission review stays proportional to the review: the largest
//! review the limits admit is answered with a peak of heap allocations that is
//! a small multiple of the body, and a review past a list limit is denied
//! before that list is built.
//!
//! Peak heap is counted by a global allocator in this test binary alone;
//! the tests run one at a time so their peaks do not mix.

// A global allocator is an unsafe trait; this one only counts and defers to
// the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyhole_injector::limits::{
    MAX_CONTAINERS, MAX_SECRET_VOLUMES, MAX_TEMPLATE_BYTES, MAX_VOLUMES,
};
use keyhole_injector::metrics::WebhookMetrics;
use keyhole_injector::settings::Settings;
use keyhole_injector::webhook::{self, AppState, MAX_BODY_BYTES};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tower::ServiceExt;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the
// counters are only read by the tests.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which is the system's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time, so each peak is its own.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Answers `body` and returns the review and the peak heap above what was
/// allocated before, the body itself included.
async fn answer(body: Vec<u8>) -> (Value, usize) {
    let mut registry = Registry::default();
    let settings = Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        ..Settings::default()
    };
    // As `webhook::serve` runs it: the server, not axum, bounds the body.
    let state = AppState::new(settings, WebhookMetrics::register(&mut registry));
    let app = webhook::bounded(webhook::app(state), Duration::from_secs(10));
    let request = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let response = app.oneshot(request).await.expect("router answers");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    (serde_json::from_slice(&bytes).expect("JSON"), peak)
}

/// A review of `pod` in namespace `apps`.
fn review(pod: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps",
            "operation": "CREATE",
            "userInfo": {},
            "object": pod,
        },
    })
}

/// Pads the first container's env so the review takes `MAX_BODY_BYTES`.
fn pad_to_body_limit(mut review: Value) -> Vec<u8> {
    let env = "/request/object/spec/containers/0/env";
    *review.pointer_mut(env).expect("env") = json!([{"name": "PAD", "value": ""}]);
    let unpadded = serde_json::to_vec(&review).expect("JSON").len();
    // Many small entries: what costs a typed pod most per byte.
    let entry = json!({"name": "E"});
    let entry_len = serde_json::to_vec(&entry).expect("JSON").len() + 1;
    let room = MAX_BODY_BYTES - unpadded - 64;
    let mut list = vec![entry; room / entry_len];
    list.push(json!({"name": "PAD", "value": ""}));
    *review.pointer_mut(env).expect("env") = Value::Array(list);
    let len = serde_json::to_vec(&review).expect("JSON").len();
    let fill = MAX_BODY_BYTES - len;
    let last = review
        .pointer_mut(env)
        .and_then(|e| e.as_array_mut())
        .and_then(|e| e.last_mut())
        .expect("pad entry");
    last["value"] = "x".repeat(fill).into();
    let body = serde_json::to_vec(&review).expect("JSON");
    assert_eq!(body.len(), MAX_BODY_BYTES);
    body
}

/// The largest pod the limits admit: the most containers, each mounting the
/// most secret volumes, templates of many small actions (the costliest to
/// parse) up to the annotation limit, and its spec padded to the body limit.
fn largest_admitted_review() -> Vec<u8> {
    let mut annotations = serde_json::Map::new();
    annotations.insert("vault.hashicorp.com/agent-inject".into(), "true".into());
    annotations.insert("vault.hashicorp.com/role".into(), "app".into());
    let template = "{{ 1 }}".repeat((MAX_TEMPLATE_BYTES - 1024) / 7);
    for i in 0..3 {
        annotations.insert(
            format!("vault.hashicorp.com/agent-inject-template-t{i}"),
            template.clone().into(),
        );
    }
    for i in 0..MAX_SECRET_VOLUMES - 1 {
        annotations.insert(
            format!("vault.hashicorp.com/agent-inject-secret-s{i}"),
            format!("secret/data/s{i}").into(),
        );
        annotations.insert(
            format!("vault.hashicorp.com/secret-volume-path-s{i}"),
            format!("/secrets/{i}").into(),
        );
    }
    let containers: Vec<Value> = (0..MAX_CONTAINERS)
        .map(|i| json!({"name": format!("c{i}"), "image": "app", "env": []}))
        .collect();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big", "annotations": annotations},
        "spec": {"containers": containers},
    });
    pad_to_body_limit(review(pod))
}

#[tokio::test]
async fn the_largest_admitted_review_peaks_at_a_few_times_its_size() {
    let _serial = SERIAL.lock().await;
    let body = largest_admitted_review();
    let (review, peak) = answer(body).await;
    let response = &review["response"];
    assert_eq!(response["allowed"], true, "{:#}", response["status"]);
    assert!(response["patch"].is_string());
    println!("peak heap {peak} bytes for a {MAX_BODY_BYTES}-byte review");
    assert!(
        peak < 4 * MAX_BODY_BYTES,
        "peak heap {peak} bytes for a {MAX_BODY_BYTES}-byte review"
    );
}

#[tokio::test]
async fn a_review_over_a_limit_is_denied_before_it_costs_memory() {
    let _serial = SERIAL.lock().await;
    // Many `{"name":"v"}` volumes: 3 KiB each as a typed Volume.
    let volumes: Vec<Value> = (0..MAX_BODY_BYTES / 14)
        .map(|_| json!({"name": "v"}))
        .collect();
    let containers = json!([{"name": "app"}]);
    let pod = json!({
        "metadata": {"name": "big", "annotations": {
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "app",
            "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
        }},
        "spec": {"containers": containers, "volumes": volumes},
    });
    let mut review = review(pod);
    // Keep the body within the limit.
    while serde_json::to_vec(&review).expect("JSON").len() > MAX_BODY_BYTES {
        let volumes = review
            .pointer_mut("/request/object/spec/volumes")
            .and_then(Value::as_array_mut)
            .expect("volumes");
        volumes.truncate(volumes.len() * 9 / 10);
    }
    let body = serde_json::to_vec(&review).expect("JSON");
    let size = body.len();
    let (review, peak) = answer(body).await;
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.starts_with(&format!(
            "vault.hashicorp.com/agent-inject: cannot read the pod: spec.volumes: more than \
             {MAX_VOLUMES}, the limit for a pod that gets the agent"
        )),
        "{message}"
    );
    println!("peak heap {peak} bytes for a {size}-byte review");
    assert!(
        peak < size / 8,
        "peak heap {peak} bytes for a {size}-byte review"
    );
}
