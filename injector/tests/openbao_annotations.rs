//! `openbao.org/*`: the vault-k8s annotations as OpenBao's injector spells
//! them. Every test of `inject_pod.rs` also runs with this spelling (see
//! `common::outcome`); these are the cases where the two spellings meet.

mod common;

use common::{agent_config, assert_valid, container, denial, inject, mk_pod, mutate, settings};
use keyhole_injector::limits::MAX_SECRETS;
use keyhole_injector::patch::{Outcome, SkipReason, mutate_pod};
use serde_json::{Value, json};

/// The pod's annotations after the patch.
fn annotations(pod: &Value) -> &serde_json::Map<String, Value> {
    pod["metadata"]["annotations"]
        .as_object()
        .expect("annotations")
}

#[test]
fn a_pod_written_for_openbao_gets_the_agent_and_an_openbao_status() {
    let pod = mk_pod(&[
        ("openbao.org/agent-inject", "true"),
        ("openbao.org/role", "web"),
        ("openbao.org/agent-inject-secret-db", "secret/data/db"),
        ("openbao.org/agent-inject-file-db", "db.env"),
        ("openbao.org/agent-pre-populate-only", "true"),
    ]);
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        annotations(&pod)["openbao.org/agent-inject-status"],
        "injected"
    );
    assert!(!annotations(&pod).contains_key("vault.hashicorp.com/agent-inject-status"));
    let config = agent_config(container(&pod, "vault-agent-init"));
    assert_eq!(config["exit_after_auth"], true);
    assert_eq!(config["auto_auth"]["method"][0]["config"]["role"], "web");
    assert_eq!(
        config["template"][0]["destination"],
        "/vault/secrets/db.env"
    );
}

#[test]
fn both_prefixes_read_as_one_set_of_annotations() {
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        ("openbao.org/role", "web"),
        ("openbao.org/agent-inject-secret-db", "secret/data/db"),
        ("vault.hashicorp.com/agent-inject-perms-db", "0400"),
        ("openbao.org/agent-inject-token", "true"),
    ]);
    let (_, pod) = mutate(&pod, &settings());
    // The status goes under the prefix the pod asked for injection with.
    assert_eq!(
        annotations(&pod)["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
    assert!(!annotations(&pod).contains_key("openbao.org/agent-inject-status"));
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(config["auto_auth"]["method"][0]["config"]["role"], "web");
    assert_eq!(config["template"][0]["perms"], "0400");
    assert_eq!(
        config["auto_auth"]["sink"][1],
        json!({"type": "file", "config": {"path": "/vault/secrets/token", "mode": 416}})
    );
}

#[test]
fn the_same_value_under_both_prefixes_is_one_setting() {
    let both = mk_pod(&inject(&[
        ("openbao.org/agent-inject", "true"),
        ("openbao.org/role", "app"),
        ("openbao.org/agent-inject-secret-db", "secret/data/db"),
    ]));
    let Ok(Outcome::Patch { patch, warnings }) = mutate_pod(&both, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(warnings, Vec::<String>::new());
    let Ok(Outcome::Patch { patch: one, .. }) =
        mutate_pod(&mk_pod(&inject(&[])), "apps", &settings())
    else {
        panic!("expected a patch");
    };
    assert_eq!(patch, one);
}

#[test]
fn different_values_under_both_prefixes_are_denied_naming_both() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("openbao.org/role", "other")],
            "vault.hashicorp.com/role: openbao.org/role gives another value",
        ),
        (
            &[("openbao.org/agent-inject-secret-db", "secret/data/other")],
            "vault.hashicorp.com/agent-inject-secret-db: openbao.org/agent-inject-secret-db \
             gives another value",
        ),
        (
            &[("openbao.org/agent-inject", "false")],
            "vault.hashicorp.com/agent-inject: openbao.org/agent-inject gives another value",
        ),
        (
            &[
                ("vault.hashicorp.com/agent-inject-status", "update"),
                ("openbao.org/agent-inject-status", "injected"),
            ],
            "vault.hashicorp.com/agent-inject-status: openbao.org/agent-inject-status gives \
             another value",
        ),
        (
            // An annotation keyhole ignores is still one setting.
            &[
                ("vault.hashicorp.com/agent-cache-enable", "true"),
                ("openbao.org/agent-cache-enable", "false"),
            ],
            "vault.hashicorp.com/agent-cache-enable: openbao.org/agent-cache-enable gives \
             another value",
        ),
    ];
    for (extra, expected) in cases {
        let message = match mutate_pod(&mk_pod(&inject(extra)), "apps", &settings()) {
            Err(denial) => denial.to_string(),
            Ok(outcome) => panic!("{extra:?}: expected a denial, got {outcome:?}"),
        };
        assert_eq!(
            message,
            format!(
                "{expected}; keyhole reads both as one setting, so write it once or give both \
                 the same value"
            )
        );
    }
}

#[test]
fn a_pod_asking_under_only_one_prefix_is_not_denied_for_the_other() {
    // `agent-inject: false` under one prefix and nothing under the other
    // leaves the pod alone, whatever else it carries.
    let pod = mk_pod(&[
        ("openbao.org/agent-inject", "false"),
        ("openbao.org/role", "a"),
        ("vault.hashicorp.com/role", "b"),
    ]);
    assert_eq!(
        mutate_pod(&pod, "apps", &settings()),
        Ok(Outcome::Skip(SkipReason::NotRequested))
    );
}

#[test]
fn a_pod_injected_under_either_prefix_is_not_injected_again() {
    for status in [
        "vault.hashicorp.com/agent-inject-status",
        "openbao.org/agent-inject-status",
    ] {
        for inject_key in [
            "vault.hashicorp.com/agent-inject",
            "openbao.org/agent-inject",
        ] {
            let pod = mk_pod(&[(inject_key, "true"), (status, "injected")]);
            assert_eq!(
                mutate_pod(&pod, "apps", &settings()),
                Ok(Outcome::Skip(SkipReason::AlreadyInjected)),
                "{inject_key} with {status}"
            );
        }
    }
}

#[test]
fn a_status_is_replaced_where_the_pod_wrote_it() {
    let pod = mk_pod(&inject(&[("openbao.org/agent-inject-status", "update")]));
    let (patch, pod) = mutate(&pod, &settings());
    assert_eq!(
        patch.as_array().expect("ops").last(),
        Some(&json!({
            "op": "replace",
            "path": "/metadata/annotations/openbao.org~1agent-inject-status",
            "value": "injected",
        }))
    );
    assert!(!annotations(&pod).contains_key("vault.hashicorp.com/agent-inject-status"));
}

#[test]
fn denials_name_the_key_the_pod_wrote() {
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        ("vault.hashicorp.com/role", "app"),
        ("openbao.org/agent-inject-secret-db", "secret/data/db"),
        ("openbao.org/agent-pre-populate", "yes"),
    ]);
    assert_eq!(
        denial(&pod),
        "openbao.org/agent-pre-populate: \"yes\" is not a boolean (true or false)"
    );
    // A missing role is named as the pod asked for injection.
    let pod = mk_pod(&[
        ("openbao.org/agent-inject", "true"),
        ("openbao.org/agent-inject-secret-db", "secret/data/db"),
    ]);
    assert_eq!(
        denial(&pod),
        "openbao.org/role: the kubernetes auth method needs a Vault role"
    );
}

#[test]
fn the_secret_limit_counts_both_prefixes() {
    let keys: Vec<(String, String)> = (0..=MAX_SECRETS)
        .map(|i| {
            let prefix = if i % 2 == 0 {
                "vault.hashicorp.com/"
            } else {
                "openbao.org/"
            };
            (
                format!("{prefix}agent-inject-secret-s{i}"),
                format!("secret/data/s{i}"),
            )
        })
        .collect();
    let mut pairs: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("vault.hashicorp.com/agent-inject", "true"));
    pairs.push(("vault.hashicorp.com/role", "app"));
    assert_eq!(
        denial(&mk_pod(&pairs)),
        format!(
            "vault.hashicorp.com/agent-inject-secret-*: {} secrets, over the limit of \
             {MAX_SECRETS} per pod",
            MAX_SECRETS + 1
        )
    );
}
