//! `keyhole-injector mutate`: the webhook's mutation applied to YAML files.

mod common;

use common::{assert_valid, assert_valid_yaml, mk_pod_from, settings};
use k8s_openapi::api::core::v1::Pod;
use keyhole_injector::offline::{Error, Position, Problem, check_documents, mutate_documents};
use keyhole_injector::patch::{Outcome, mutate_pod};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Problems as `mutate` prints them after their position.
fn messages(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("output is YAML")
}

/// The pod template of a workload document.
fn template(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("Pod") => doc,
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => &doc["spec"]["template"],
    }
}

fn init_container_names(doc: &Value) -> Vec<&str> {
    let spec = &template(doc)["spec"];
    spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

fn container_names(doc: &Value) -> Vec<&str> {
    template(doc)["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

#[test]
fn mutates_the_pod_template_of_every_workload_kind() {
    let input = fixture("workloads.yaml");
    let out = mutate_documents(&input, &settings()).expect("mutates");
    assert_valid_yaml(&out.yaml);

    let docs = documents(&out.yaml);
    let kinds: Vec<&str> = docs
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "Job",
            "CronJob",
            "Pod"
        ]
    );
    for doc in &docs[1..5] {
        assert_eq!(
            template(doc)["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
            "injected",
            "{}",
            doc["kind"]
        );
    }
    assert_eq!(init_container_names(&docs[1]), ["vault-agent"]);
    assert_eq!(template(&docs[1])["spec"]["shareProcessNamespace"], true);
    assert_eq!(init_container_names(&docs[4]), ["vault-agent-init"]);
    assert_eq!(container_names(&docs[4]), ["legacy", "vault-agent"]);
    assert_eq!(init_container_names(&docs[5]), ["vault-agent"]);
    assert_eq!(init_container_names(&docs[6]), ["vault-agent-init"]);
    assert_eq!(container_names(&docs[6]), ["report"]);
    assert_eq!(
        messages(&out.warnings),
        [
            "Deployment/shop/web: keyhole.dev/reload-signal-db: turns on shareProcessNamespace for the \
          whole pod; containers that run as the agent's user can read its Vault token through \
          /proc"
        ]
    );
}

#[test]
fn documents_without_injection_pass_through_byte_for_byte() {
    let input = fixture("workloads.yaml");
    let out = mutate_documents(&input, &settings()).expect("mutates");
    let config_map = input.split("\n---\n").next().expect("first document");
    assert!(out.yaml.starts_with(config_map), "{}", out.yaml);
    let debug_pod = input.rsplit("\n---\n").next().expect("last document");
    assert!(out.yaml.ends_with(debug_pod), "{}", out.yaml);
}

#[test]
fn mutating_twice_changes_nothing() {
    let once = mutate_documents(&fixture("workloads.yaml"), &settings()).expect("mutates");
    let twice = mutate_documents(&once.yaml, &settings()).expect("mutates again");
    assert_eq!(twice.yaml, once.yaml);
}

#[test]
fn names_the_object_and_annotation_of_a_denial() {
    let err = mutate_documents(&fixture("bad-annotation.yaml"), &settings()).expect_err("denied");
    assert_eq!(
        err.to_string(),
        "Deployment/default/web: vault.hashicorp.com/agent-pre-populate: \"yes\" is not a boolean (true or false)"
    );
    let err = check_documents(&fixture("bad-annotation.yaml"), &settings()).expect_err("denied");
    assert_eq!(
        err.to_string(),
        "Deployment/default/web: vault.hashicorp.com/agent-pre-populate: \"yes\" is not a boolean (true or false)"
    );
}

#[test]
fn names_the_line_of_broken_yaml() {
    let err =
        mutate_documents("kind: ConfigMap\n---\nkind: [Pod\n", &settings()).expect_err("bad YAML");
    let Error::Rejected(problems) = err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].is_unreadable());
    assert_eq!(problems[0].position, Position { line: 3, column: 7 });
    assert_eq!(problems[0].to_string(), "unclosed bracket '['");
}

#[test]
fn warnings_name_the_object() {
    let yaml = fixture("pod.yaml").replace(
        "vault.hashicorp.com/role: app",
        "vault.hashicorp.com/role: app\n    vault.hashicorp.com/agent-inject-secert-x: a/b",
    );
    let warnings = check_documents(&yaml, &settings()).expect("checks");
    assert_eq!(
        messages(&warnings),
        ["Pod/apps/app: vault.hashicorp.com/agent-inject-secert-x: unknown annotation, ignored"]
    );
}

#[test]
fn webhook_and_offline_mutation_give_the_same_pod() {
    let input = fixture("pod.yaml");
    let pod: Pod = serde_saphyr::from_str(&input).expect("pod fixture");

    let Outcome::Patch { patch, .. } = mutate_pod(&pod, "apps", &settings()).expect("no denial")
    else {
        panic!("expected a patch");
    };
    let mut webhook = serde_json::to_value(&pod).expect("pod to JSON");
    json_patch::patch(&mut webhook, &patch).expect("patch applies");

    let out = mutate_documents(&input, &settings()).expect("mutates");
    let offline: Value = serde_saphyr::from_str(&out.yaml).expect("output is YAML");

    // Compare as typed pods, so both sides are normalised the same way.
    let webhook = serde_json::to_value(mk_pod_from(webhook)).expect("pod to JSON");
    let offline = serde_json::to_value(mk_pod_from(offline)).expect("pod to JSON");
    assert_eq!(offline, webhook);
    assert_valid(&offline);
}

#[test]
fn an_unquoted_boolean_annotation_names_the_object() {
    let yaml = fixture("pod.yaml").replace(
        "vault.hashicorp.com/agent-inject: \"true\"",
        "vault.hashicorp.com/agent-inject: true",
    );
    let err = mutate_documents(&yaml, &settings()).expect_err("not a string");
    assert_eq!(
        err.to_string(),
        "Pod/apps/app: metadata.annotations.vault.hashicorp.com/agent-inject: invalid type: boolean `true`, expected a string"
    );
}

#[test]
fn a_template_typo_fails_before_merge() {
    let yaml = fixture("pod.yaml").replace("{{ end }}", "{{ end }");
    let err = check_documents(&yaml, &settings()).expect_err("typo");
    assert_eq!(
        err.to_string(),
        "Pod/apps/app: vault.hashicorp.com/agent-inject-template-db: db:1:79: unrecognized character in action: '}'"
    );
}

#[test]
fn manifests_written_for_openbao_get_the_same_mutation() {
    let vault = fixture("workloads.yaml");
    let openbao = vault.replace("vault.hashicorp.com/", "openbao.org/");
    let out = mutate_documents(&openbao, &settings()).expect("mutates");
    assert_valid_yaml(&out.yaml);
    for doc in &documents(&out.yaml)[1..7] {
        assert_eq!(
            template(doc)["metadata"]["annotations"]["openbao.org/agent-inject-status"],
            "injected",
            "{}",
            doc["kind"]
        );
    }
    // Byte for byte what the vault.hashicorp.com/ manifests give, but for
    // the keys: the agent's own paths keep their names.
    let expected = mutate_documents(&vault, &settings()).expect("mutates");
    assert_eq!(
        out.yaml.replace("openbao.org/", "vault.hashicorp.com/"),
        expected.yaml
    );
    assert_eq!(
        mutate_documents(&out.yaml, &settings())
            .expect("mutates again")
            .yaml,
        out.yaml
    );

    let bad = fixture("bad-annotation.yaml").replace("vault.hashicorp.com/", "openbao.org/");
    assert_eq!(
        check_documents(&bad, &settings())
            .expect_err("denied")
            .to_string(),
        "Deployment/default/web: openbao.org/agent-pre-populate: \"yes\" is not a boolean (true or false)"
    );
}
