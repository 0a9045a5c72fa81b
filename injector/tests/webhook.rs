//! `POST /mutate` answered in-process with captured AdmissionReview bodies.

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyhole_injector::metrics::WebhookMetrics;
use keyhole_injector::policy::{Mode, PathPolicy};
use keyhole_injector::settings::Settings;
use keyhole_injector::webhook::{self, AppState};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reviews")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The injector's own Vault address, which the fixtures' pods ask for.
const VAULT_ADDR: &str = "https://vault.vault.svc:8200";

async fn post(body: Vec<u8>) -> Value {
    post_with(
        body,
        Settings {
            vault_addr: Some(VAULT_ADDR.to_owned()),
            ..Settings::default()
        },
    )
    .await
}

async fn post_with(body: Vec<u8>, settings: Settings) -> Value {
    let mut registry = Registry::default();
    let state = AppState::new(settings, WebhookMetrics::register(&mut registry));
    let request = Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = webhook::app(state)
        .oneshot(request)
        .await
        .expect("router answers");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("response body");
    serde_json::from_slice(&bytes).expect("response is JSON")
}

fn response(review: &Value) -> &Value {
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    &review["response"]
}

#[tokio::test]
async fn annotated_pod_gets_a_base64_json_patch_that_adds_the_agent() {
    let body = fixture("annotated-pod.json");
    let review = post(body.clone()).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e01");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = response["patch"]
        .as_str()
        .expect("patch is a base64 string, as the API server expects");
    let ops: Value =
        serde_json::from_slice(&STANDARD.decode(encoded).expect("base64")).expect("patch is JSON");
    let patch: json_patch::Patch = serde_json::from_value(ops).expect("patch is a JSON Patch");

    let request: Value = serde_json::from_slice(&body).expect("fixture is JSON");
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("patch applies to the pod");
    let agents: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .filter_map(|container| container["name"].as_str())
        .filter(|name| name.starts_with("vault-agent"))
        .collect();
    assert!(!agents.is_empty(), "no agent container in {pod:#}");
    assert_eq!(
        pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
    assert_eq!(pod["spec"]["containers"][0]["name"], "app");
}

#[tokio::test]
async fn already_injected_pod_is_allowed_without_patch() {
    let review = post(fixture("already-injected.json")).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e02");
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response:#}");
    assert!(response.get("patchType").is_none(), "{response:#}");
}

#[tokio::test]
async fn pod_without_annotations_is_allowed_without_patch() {
    let review = post(fixture("not-annotated.json")).await;
    let response = response(&review);
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response:#}");
}

#[tokio::test]
async fn bad_annotation_is_denied_with_the_annotation_named() {
    let review = post(fixture("bad-annotation.json")).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e03");
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"]
        .as_str()
        .expect("status message");
    assert!(
        message.starts_with("vault.hashicorp.com/agent-pre-populate: "),
        "{message}"
    );
    assert!(message.contains("maybe"), "{message}");
    assert!(response.get("patch").is_none());
}

/// The injector's settings with another `--vault-addr` than the fixtures' pods ask for.
fn prod_vault(policy_mode: Mode) -> Settings {
    Settings {
        vault_addr: Some("https://vault.prod.svc:8200".to_owned()),
        policy_mode,
        ..Settings::default()
    }
}

#[tokio::test]
async fn pod_asking_for_another_vault_address_is_admitted_with_a_warning() {
    let review = post_with(fixture("annotated-pod.json"), prod_vault(Mode::Permissive)).await;
    let response = response(&review);
    assert_eq!(response["allowed"], true);
    assert!(response["patch"].is_string(), "{response:#}");
    assert_eq!(
        response["warnings"],
        json!([
            "vault.hashicorp.com/service: Vault address \"https://vault.vault.svc:8200\" is \
             not the injector's --vault-addr (https://vault.prod.svc:8200), and the agent sends \
             its login credentials there; the operator can limit addresses with \
             --allowed-vault-addrs or --policy=strict"
        ])
    );
}

#[tokio::test]
async fn pod_asking_for_a_vault_address_the_operator_did_not_allow_is_denied() {
    let review = post_with(fixture("annotated-pod.json"), prod_vault(Mode::Strict)).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e01");
    assert_eq!(response["allowed"], false);
    assert!(response.get("patch").is_none(), "{response:#}");
    assert!(response.get("warnings").is_none(), "{response:#}");
    assert_eq!(
        response["status"]["message"],
        "vault.hashicorp.com/service: Vault address \"https://vault.vault.svc:8200\" is not \
         allowed: use the injector's --vault-addr (https://vault.prod.svc:8200) or ask the \
         operator to add it to --allowed-vault-addrs"
    );
}

/// The annotated pod's review, with `tls-skip-verify: "true"` added.
fn skipping_tls_verification() -> Vec<u8> {
    let mut review: Value =
        serde_json::from_slice(&fixture("annotated-pod.json")).expect("fixture is JSON");
    review["request"]["object"]["metadata"]["annotations"]["vault.hashicorp.com/tls-skip-verify"] =
        json!("true");
    serde_json::to_vec(&review).expect("JSON")
}

#[tokio::test]
async fn tls_skip_verify_is_admitted_with_a_warning_unless_strict() {
    let permissive = Settings {
        vault_addr: Some(VAULT_ADDR.to_owned()),
        ..Settings::default()
    };
    let admitted = post_with(skipping_tls_verification(), permissive.clone()).await;
    assert_eq!(response(&admitted)["allowed"], true);
    assert_eq!(
        response(&admitted)["warnings"],
        json!([
            "vault.hashicorp.com/tls-skip-verify: Vault's certificate is not verified, so \
             whoever can intercept the connection can pose as Vault, take the pod's login \
             token and serve it false secrets; give the agent Vault's CA with \
             vault.hashicorp.com/ca-cert or tls-secret instead"
        ])
    );

    let strict = Settings {
        policy_mode: Mode::Strict,
        ..permissive
    };
    let denied = post_with(skipping_tls_verification(), strict).await;
    assert_eq!(response(&denied)["allowed"], false);
    assert_eq!(
        response(&denied)["status"]["message"],
        "vault.hashicorp.com/tls-skip-verify: skipping verification of Vault's certificate is \
         not allowed by this injector; give the agent Vault's CA with \
         vault.hashicorp.com/ca-cert or tls-secret, or have the operator set \
         --allow-tls-skip-verify"
    );
}

#[tokio::test]
async fn pod_reading_outside_its_namespaces_path_policy_is_denied() {
    let settings = Settings {
        vault_addr: Some(VAULT_ADDR.to_owned()),
        path_policy: Some(
            PathPolicy::from_yaml("namespaces:\n  \"*\": [secret/data/shared/]\n")
                .expect("valid policy"),
        ),
        ..Settings::default()
    };
    let review = post_with(fixture("annotated-pod.json"), settings).await;
    let response = response(&review);
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "vault.hashicorp.com/agent-inject-secret-db: Vault path \"database/creds/app\" is \
         outside the paths allowed in namespace \"shop\" (secret/data/shared/); the injector's \
         --path-policy-file sets them"
    );
}

#[tokio::test]
async fn pod_in_kube_system_is_not_injected() {
    let review = post(fixture("kube-system.json")).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e04");
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response:#}");
}

#[tokio::test]
async fn malformed_review_is_invalid_and_keeps_its_uid() {
    let review = post(fixture("unknown-operation.json")).await;
    let response = response(&review);
    assert_eq!(response["uid"], "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e06");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["reason"], "InvalidRequest");
    let message = response["status"]["message"]
        .as_str()
        .expect("status message");
    assert!(message.starts_with("not an AdmissionReview: "), "{message}");
    assert!(message.contains("EXPLODE"), "{message}");
}

#[tokio::test]
async fn truncated_body_is_invalid_not_an_http_error() {
    let review = post(fixture("truncated.json")).await;
    let response = response(&review);
    assert_eq!(response["uid"], "");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["reason"], "InvalidRequest");
    let message = response["status"]["message"]
        .as_str()
        .expect("status message");
    assert!(message.starts_with("the body is not JSON: "), "{message}");
}

#[tokio::test]
async fn review_without_request_is_invalid() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    let review = post(body.to_vec()).await;
    let response = response(&review);
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        "the AdmissionReview has no request"
    );
}

/// A captured review with its pod's annotations written for OpenBao's injector.
fn openbao_fixture(name: &str) -> Vec<u8> {
    String::from_utf8(fixture(name))
        .expect("fixture is UTF-8")
        .replace("vault.hashicorp.com/", "openbao.org/")
        .into_bytes()
}

#[tokio::test]
async fn openbao_annotations_are_answered_like_vault_ones() {
    let body = openbao_fixture("annotated-pod.json");
    let review = post(body.clone()).await;
    let encoded = response(&review)["patch"].as_str().expect("a patch");
    let patch: json_patch::Patch =
        serde_json::from_slice(&STANDARD.decode(encoded).expect("base64")).expect("JSON Patch");
    let request: Value = serde_json::from_slice(&body).expect("fixture is JSON");
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("patch applies to the pod");
    assert_eq!(
        pod["metadata"]["annotations"]["openbao.org/agent-inject-status"],
        "injected"
    );
    assert_eq!(pod["spec"]["initContainers"][0]["name"], "vault-agent");

    let review = post(openbao_fixture("already-injected.json")).await;
    assert_eq!(response(&review)["allowed"], true);
    assert!(response(&review).get("patch").is_none(), "{review:#}");

    let review = post(openbao_fixture("bad-annotation.json")).await;
    let message = response(&review)["status"]["message"]
        .as_str()
        .expect("status message");
    assert!(
        message.starts_with("openbao.org/agent-pre-populate: "),
        "{message}"
    );
}
