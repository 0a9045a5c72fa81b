//! The vault-k8s annotations beyond secrets and login: JSON patches of the
//! agent containers, copied volume mounts, the revoke grace, the proxy, the
//! connection settings, and the path values of secrets. Each test asserts the
//! mutated pod, the agent config, or the denial users see.

mod common;

use common::{agent_config, assert_valid, container, denial, inject, mk_pod, mutate, settings};
use keyhole_injector::patch::{Outcome, mutate_pod};
use serde_json::{Value, json};

fn warnings(pod: &k8s_openapi::api::core::v1::Pod) -> Vec<String> {
    match mutate_pod(pod, "apps", &settings()).expect("admitted") {
        Outcome::Patch { warnings, .. } => warnings,
        Outcome::Skip(reason) => panic!("skipped: {reason}"),
    }
}

/// The destinations of the long-running agent's templates.
fn destinations(pod: &Value) -> Vec<String> {
    agent_config(container(pod, "vault-agent"))["template"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| t["destination"].as_str().expect("destination").to_owned())
        .collect()
}

#[test]
fn a_file_path_may_have_sub_directories() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-file-db",
        "config/./app.properties",
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        destinations(&patched),
        ["/vault/secrets/config/app.properties"]
    );
    assert!(warnings(&pod).is_empty(), "{:?}", warnings(&pod));
}

#[test]
fn an_absolute_file_path_stays_in_the_volume_with_a_warning() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-file-db",
        "/etc/app/db.conf",
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(destinations(&patched), ["/vault/secrets/etc/app/db.conf"]);
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-inject-file-db: \"/etc/app/db.conf\" is written to \
          /vault/secrets/etc/app/db.conf, inside the secrets volume, as vault-k8s does"
        ]
    );
}

#[test]
fn a_file_path_leaving_the_volume_is_refused() {
    for value in ["../db", "config/../../db", "a/.."] {
        let pod = mk_pod(&inject(&[(
            "vault.hashicorp.com/agent-inject-file-db",
            value,
        )]));
        assert_eq!(
            denial(&pod),
            format!(
                "vault.hashicorp.com/agent-inject-file-db: {value:?} has a \"..\" segment; the \
                 file must stay in the secrets volume"
            )
        );
    }
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-file-db",
        "/",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-file-db: \"/\" names no file"
    );
}

#[test]
fn an_empty_file_name_keeps_the_default_name_with_a_warning() {
    let pod = mk_pod(&inject(&[("vault.hashicorp.com/agent-inject-file-db", "")]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(destinations(&patched), ["/vault/secrets/db"]);
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-inject-file-db: empty, so the secret is written to \
          /vault/secrets/db, its default name, as vault-k8s does"
        ]
    );
}

#[test]
fn empty_secret_and_template_annotations_say_what_they_leave_out() {
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        ("vault.hashicorp.com/role", "app"),
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/db",
        ),
        ("vault.hashicorp.com/agent-inject-template-db", ""),
        ("vault.hashicorp.com/agent-inject-secret-gone", " "),
        ("vault.hashicorp.com/agent-inject-secret-own", ""),
        (
            "vault.hashicorp.com/agent-inject-template-own",
            "{{ with secret \"secret/data/own\" }}{{ .Data.data.x }}{{ end }}",
        ),
    ]);
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        destinations(&patched),
        ["/vault/secrets/db", "/vault/secrets/own"]
    );
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-inject-secret-gone: empty, so it declares no secret and \
             no file \"gone\" is written",
            "vault.hashicorp.com/agent-inject-template-db: empty, so secret \"db\" is written \
             with the default template of \"secret/data/db\"",
        ]
    );
}

#[test]
fn an_empty_secret_volume_path_is_refused() {
    for key in [
        "vault.hashicorp.com/secret-volume-path",
        "vault.hashicorp.com/secret-volume-path-db",
    ] {
        let pod = mk_pod(&inject(&[(key, "")]));
        assert_eq!(
            denial(&pod),
            format!(
                "{key}: empty path: no volume can be mounted there, and vault-k8s's pod would \
                 be refused by Kubernetes too"
            )
        );
    }
}
