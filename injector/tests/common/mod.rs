//! Builders and checks shared by the injector's integration tests.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::Pod;
use keyhole_injector::annotations::keys::{OPENBAO_PREFIX, VAULT_PREFIX};
use keyhole_injector::denial::Denial;
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

/// The answer to `pod` in `namespace`, checked against the same pod with
/// every `vault.hashicorp.com/` annotation written under `openbao.org/`: that
/// pod must get the same answer, naming keys as it wrote them in the patch,
/// the warnings and the denied annotation. Returns the answer to `pod`.
pub fn outcome(pod: &Pod, namespace: &str, settings: &Settings) -> Result<Outcome, Denial> {
    let answer = mutate_pod(pod, namespace, settings);
    let expected = match answer.clone() {
        Ok(Outcome::Patch { patch, warnings }) => Ok(Outcome::Patch {
            patch: to_openbao_patch(patch),
            warnings: warnings
                .iter()
                .map(|w| w.replace(VAULT_PREFIX, OPENBAO_PREFIX))
                .collect(),
        }),
        Ok(skip) => Ok(skip),
        Err(denial) => Err(Denial {
            annotation: to_openbao(&denial.annotation),
            ..denial
        }),
    };
    assert_eq!(
        mutate_pod(&openbao_pod(pod), namespace, settings),
        expected,
        "the pod written with openbao.org/ annotations got another answer"
    );
    answer
}

/// `text` with a leading `vault.hashicorp.com/` written `openbao.org/`.
pub fn to_openbao(text: &str) -> String {
    match text.strip_prefix(VAULT_PREFIX) {
        Some(rest) => format!("{OPENBAO_PREFIX}{rest}"),
        None => text.to_owned(),
    }
}

/// `pod` with its `vault.hashicorp.com/` annotations under `openbao.org/`.
pub fn openbao_pod(pod: &Pod) -> Pod {
    let mut pod = pod.clone();
    if let Some(map) = pod.metadata.annotations.take() {
        pod.metadata.annotations =
            Some(map.into_iter().map(|(k, v)| (to_openbao(&k), v)).collect());
    }
    pod
}

/// `patch` with the annotation keys it sets under `openbao.org/`.
fn to_openbao_patch(patch: json_patch::Patch) -> json_patch::Patch {
    const ANNOTATIONS: &str = "/metadata/annotations/";
    let mut ops = serde_json::to_value(patch).expect("patch to JSON");
    for op in ops.as_array_mut().expect("list of operations") {
        let path = op["path"].as_str().expect("path").to_owned();
        if let Some(key) = path.strip_prefix(ANNOTATIONS) {
            let key = key.replace("~1", "/").replace("~0", "~");
            let key = to_openbao(&key).replace('~', "~0").replace('/', "~1");
            op["path"] = format!("{ANNOTATIONS}{key}").into();
        }
    }
    serde_json::from_value(ops).expect("patch from JSON")
}

/// Mutates `pod` in namespace `apps`, expecting a patch; returns the patch as JSON and the patched pod.
pub fn mutate(pod: &Pod, settings: &Settings) -> (Value, Value) {
    match outcome(pod, "apps", settings).expect("no denial") {
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
    match outcome(pod, "apps", &settings()) {
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
