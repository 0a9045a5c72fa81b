//! Builders and checks shared by the injector's integration tests.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use keyhole_injector::patch::{Outcome, mutate_pod};
use keyhole_injector::settings::Settings;
use serde_json::{Value, json};

/// Kubernetes versions every mutated pod is validated against.
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

/// A pod with one `app` container and the given annotations.
pub fn mk_pod(annotations: &[(&str, &str)]) -> Pod {
    mk_pod_from(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps", "annotations": annotations_json(annotations)},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }))
}

/// A pod from JSON.
pub fn mk_pod_from(value: Value) -> Pod {
    serde_json::from_value(value).expect("valid pod")
}

/// Annotations as a JSON object.
pub fn annotations_json(annotations: &[(&str, &str)]) -> Value {
    annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The usual annotations for one KV secret.
pub fn inject(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut annotations = vec![
        ("vault.hashicorp.com/agent-inject", "true"),
        ("vault.hashicorp.com/role", "app"),
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/db",
        ),
    ];
    annotations.extend_from_slice(extra);
    annotations
}

/// Server settings as tests use them. They allow the second Vault address and
/// `tls-skip-verify` that the annotation tests ask for; `policy` tests the denials.
pub fn settings() -> Settings {
    Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        allowed_vault_addrs: vec!["https://vault.example:8200".to_owned()],
        allow_tls_skip_verify: Some(true),
        ..Settings::default()
    }
}

/// Mutates `pod` in namespace `apps`, expecting a patch; returns the patch as JSON and the patched pod.
pub fn mutate(pod: &Pod, settings: &Settings) -> (Value, Value) {
    match mutate_pod(pod, "apps", settings).expect("no denial") {
        Outcome::Patch { patch, .. } => {
            let mut doc = serde_json::to_value(pod).expect("pod to JSON");
            json_patch::patch(&mut doc, &patch).expect("patch applies");
            (serde_json::to_value(&patch).expect("patch to JSON"), doc)
        }
        Outcome::Skip(reason) => panic!("pod skipped: {reason}"),
    }
}

/// The denial message for `pod`.
pub fn denial(pod: &Pod) -> String {
    match mutate_pod(pod, "apps", &settings()) {
        Err(denial) => denial.to_string(),
        Ok(outcome) => panic!("expected a denial, got {outcome:?}"),
    }
}

/// The container named `name` among containers and init containers.
pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    let spec = &pod["spec"];
    spec["initContainers"]
        .as_array()
        .into_iter()
        .chain(spec["containers"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The agent config a container receives in `KEYHOLE_AGENT_CONFIG`.
pub fn agent_config(container: &Value) -> Value {
    let env = container["env"].as_array().expect("env");
    let value = env
        .iter()
        .find(|e| e["name"] == "KEYHOLE_AGENT_CONFIG")
        .expect("KEYHOLE_AGENT_CONFIG")["value"]
        .as_str()
        .expect("string");
    serde_json::from_str(value).expect("config is JSON")
}

/// Validates `pod` with `kubernetes-validate --strict` for every version in
/// [`KUBERNETES_VERSIONS`]; a missing tool fails the test.
pub fn assert_valid(pod: &Value) {
    assert_valid_file(&pod.to_string(), ".json");
}

/// Validates every document of a YAML stream like [`assert_valid`].
pub fn assert_valid_yaml(yaml: &str) {
    assert_valid_file(yaml, ".yaml");
}

fn assert_valid_file(text: &str, suffix: &str) {
    let mut file = tempfile::Builder::new()
        .suffix(suffix)
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write objects");
    let path: PathBuf = file.path().to_owned();
    for version in KUBERNETES_VERSIONS {
        let output = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", version])
            .arg(&path)
            .output()
            .expect("kubernetes-validate must be installed (pip install kubernetes-validate)");
        assert!(
            output.status.success(),
            "kubernetes-validate {version} rejected:\n{}{}\n{text}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
