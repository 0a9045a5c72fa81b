//! Pods written by a hostile author: each test is one attack, and asserts
//! that the injector refuses it by name or that it is harmless.

mod common;

use common::{
    agent_config, annotations_json, container, denial, inject, mk_pod, mk_pod_from, mutate,
    openbao_pod, settings,
};
use k8s_openapi::api::core::v1::Pod;
use keyhole_agent::template::Template;
use keyhole_injector::limits::{
    MAX_ANNOTATION_BYTES, MAX_CONTAINERS, MAX_PATCH_BYTES, MAX_SECRET_VOLUMES, MAX_SECRETS,
    MAX_TEMPLATE_BYTES,
};
use keyhole_injector::patch::{Outcome, SkipReason, mutate_pod};
use keyhole_injector::policy::PathPolicy;
use keyhole_injector::settings::Settings;
use serde_json::{Value, json};

const INJECT: (&str, &str) = ("vault.hashicorp.com/agent-inject", "true");
const ROLE: (&str, &str) = ("vault.hashicorp.com/role", "app");
/// How a pod with over [`MAX_ANNOTATION_BYTES`] of annotations is denied.
const TOO_MUCH_ANNOTATION: &str = "vault.hashicorp.com/agent-inject: cannot read the pod: \
     metadata.annotations: over the limit of 262144 bytes";
/// An annotation that is not ours, to fill a pod up to a limit.
const PADDING: &str = "example.com/padding";
const DB: (&str, &str) = (
    "vault.hashicorp.com/agent-inject-secret-db",
    "secret/data/db",
);

/// Settings whose path policy lets namespace `apps` read only team A's secrets.
fn team_a_only() -> Settings {
    Settings {
        path_policy: Some(
            PathPolicy::from_yaml("namespaces:\n  apps: [secret/data/team-a/]\n").expect("policy"),
        ),
        ..settings()
    }
}

fn denial_with(pod: &Pod, settings: &Settings) -> String {
    match mutate_pod(pod, "apps", settings) {
        Err(denial) => denial.to_string(),
        Ok(outcome) => panic!("expected a denial, got {outcome:?}"),
    }
}

fn warnings_with(pod: &Pod, settings: &Settings) -> Vec<String> {
    match mutate_pod(pod, "apps", settings).expect("admitted") {
        Outcome::Patch { warnings, .. } => warnings,
        Outcome::Skip(reason) => panic!("skipped: {reason}"),
    }
}

/// The Vault paths the agent's first template reads, as the agent parses it.
fn agent_reads(pod: &Value) -> Vec<Option<String>> {
    let config = agent_config(container(pod, "vault-agent"));
    let template = &config["template"][0];
    let parsed = Template::parse(
        "t",
        template["contents"].as_str().expect("contents"),
        template["left_delimiter"].as_str().expect("left"),
        template["right_delimiter"].as_str().expect("right"),
    )
    .expect("the agent parses the generated template");
    parsed.vault_calls().into_iter().map(|c| c.path).collect()
}

#[test]
fn a_path_that_closes_the_default_template_is_refused() {
    let path = r#"secret/data/team-a/db" }}{{ end }}{{ with secret "secret/data/team-b/db" }}STOLEN={{ .Data.data }}{{ end }}{{ with secret "secret/data/team-a/db"#;
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        ("vault.hashicorp.com/agent-inject-secret-db", path),
    ]);
    for settings in [settings(), team_a_only()] {
        assert_eq!(
            denial_with(&pod, &settings),
            format!(
                "vault.hashicorp.com/agent-inject-secret-db: Vault path {path:?} contains '\"', \
                 which the default template cannot hold; Vault Agent would fail to parse it"
            )
        );
    }
}

#[test]
fn delimiters_cannot_turn_a_default_template_path_into_template_code() {
    let path = "secret/data/team-a/db<< with secret .Data.data.password >>STOLEN<< end >>";
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        ("vault.hashicorp.com/agent-inject-secret-db", path),
        ("vault.hashicorp.com/agent-template-left-delim-db", "<<"),
        ("vault.hashicorp.com/agent-template-right-delim-db", ">>"),
    ]);
    assert_eq!(
        warnings_with(&pod, &team_a_only()),
        [
            "vault.hashicorp.com/agent-template-left-delim-db: ignored: secret \"db\" uses the \
             default template, which keyhole writes with \"{{\"",
            "vault.hashicorp.com/agent-template-right-delim-db: ignored: secret \"db\" uses the \
             default template, which keyhole writes with \"}}\"",
        ]
    );
    let (_, mutated) = mutate(&pod, &team_a_only());
    assert_eq!(agent_reads(&mutated), [Some(path.to_owned())]);
}

#[test]
fn a_default_template_outside_the_path_policy_is_denied_like_an_inline_one() {
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/team-b/db",
        ),
    ]);
    assert_eq!(
        denial_with(&pod, &team_a_only()),
        "vault.hashicorp.com/agent-inject-secret-db: Vault path \"secret/data/team-b/db\" is \
         outside the paths allowed in namespace \"apps\" (secret/data/team-a/); the injector's \
         --path-policy-file sets them"
    );
}

/// Runs `f` on a thread with the 2 MiB stack of the chart's tokio workers.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic or stack overflow")
}

#[test]
fn deeply_nested_templates_are_denied_without_overflowing_the_stack() {
    for depth in [2_800, 20_000] {
        let template = format!("{{{{{}1{}}}}}", "(".repeat(depth), ")".repeat(depth));
        let message = on_worker_stack(move || {
            let pod = mk_pod(&[
                INJECT,
                ROLE,
                (
                    "vault.hashicorp.com/agent-inject-secret-db",
                    "secret/data/db",
                ),
                ("vault.hashicorp.com/agent-inject-template-db", &template),
            ]);
            denial(&pod)
        });
        assert_eq!(
            message,
            "vault.hashicorp.com/agent-inject-template-db: db:1:103: nested more than 100 levels \
             deep (parentheses, if, with, range, define and block count)"
        );
    }
}

#[test]
fn too_many_secrets_are_denied_with_the_limit_and_the_count() {
    let secrets = |count: usize| {
        let keys: Vec<String> = (0..count)
            .map(|i| format!("vault.hashicorp.com/agent-inject-secret-s{i}"))
            .collect();
        let mut annotations = vec![INJECT, ROLE];
        annotations.extend(keys.iter().map(|k| (k.as_str(), "secret/data/db")));
        denial(&mk_pod(&annotations))
    };
    assert_eq!(
        secrets(MAX_SECRETS + 1),
        format!(
            "vault.hashicorp.com/agent-inject-secret-*: {} secrets, over the limit of \
             {MAX_SECRETS} per pod",
            MAX_SECRETS + 1
        )
    );
    // 20,000 secrets of one path once took the duplicate check 26 s; their
    // annotations alone are over the limit now.
    assert_eq!(secrets(20_000), TOO_MUCH_ANNOTATION);
}

#[test]
fn too_many_secret_volumes_are_denied() {
    let count = MAX_SECRET_VOLUMES + 1;
    let mut owned = Vec::new();
    for i in 0..count {
        owned.push((
            format!("vault.hashicorp.com/agent-inject-secret-s{i}"),
            "secret/data/db".to_owned(),
        ));
        owned.push((
            format!("vault.hashicorp.com/secret-volume-path-s{i}"),
            format!("/secrets/{i}"),
        ));
    }
    let mut annotations = vec![INJECT, ROLE];
    annotations.extend(owned.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(
        denial(&mk_pod(&annotations)),
        format!(
            "vault.hashicorp.com/secret-volume-path-*: {} distinct secret volume paths, over the \
             limit of {MAX_SECRET_VOLUMES} per pod",
            count + 1
        )
    );
}

#[test]
fn oversized_annotations_and_templates_are_denied() {
    let big = "x".repeat(MAX_ANNOTATION_BYTES);
    let pod = mk_pod(&[INJECT, ROLE, DB, ("example.com/padding", big.as_str())]);
    assert_eq!(denial(&pod), TOO_MUCH_ANNOTATION);

    let template = "x".repeat(MAX_TEMPLATE_BYTES + 1);
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        DB,
        (
            "vault.hashicorp.com/agent-inject-template-db",
            template.as_str(),
        ),
    ]);
    assert_eq!(
        denial(&pod),
        format!(
            "vault.hashicorp.com/agent-inject-template-db: {} bytes of template, over the limit \
             of {MAX_TEMPLATE_BYTES}",
            MAX_TEMPLATE_BYTES + 1
        )
    );
}

#[test]
fn too_many_containers_are_denied() {
    let mk = |containers: usize, init: usize| {
        let list = |prefix: &str, n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"name": format!("{prefix}{i}"), "image": "x"}))
                .collect()
        };
        mk_pod_from(json!({
            "metadata": {"name": "app", "annotations": annotations_json(&inject(&[]))},
            "spec": {"containers": list("c", containers), "initContainers": list("i", init)},
        }))
    };
    assert_eq!(
        denial(&mk(MAX_CONTAINERS + 1, 0)),
        format!(
            "vault.hashicorp.com/agent-inject: cannot read the pod: spec.containers: more than \
             {MAX_CONTAINERS}, the limit for a pod that gets the agent"
        )
    );
    assert_eq!(
        denial(&mk(60, 60)),
        format!(
            "vault.hashicorp.com/agent-inject: the pod has 120 containers and init containers, \
             over the limit of {MAX_CONTAINERS} for a pod that gets the agent"
        )
    );
    // A pod that does not ask for the agent is no business of the limits.
    let mut plain = mk(MAX_CONTAINERS + 1, 0);
    plain.metadata.annotations = None;
    assert_eq!(
        mutate_pod(&plain, "apps", &settings()),
        Ok(Outcome::Skip(SkipReason::NotRequested))
    );
}

#[test]
fn a_patch_over_the_limit_is_denied() {
    // Quotes double at each of the two levels of JSON the template goes
    // through, and classic mode writes the config twice.
    let template = "\"".repeat(MAX_TEMPLATE_BYTES);
    let keys: Vec<String> = (0..3)
        .map(|i| format!("vault.hashicorp.com/agent-inject-template-t{i}"))
        .collect();
    let mut annotations = vec![INJECT, ROLE];
    annotations.extend(keys.iter().map(|k| (k.as_str(), template.as_str())));
    let pod = mk_pod(&annotations);
    let settings = Settings {
        native_sidecar: false,
        ..settings()
    };
    let message = denial_with(&pod, &settings);
    assert!(
        message.starts_with("vault.hashicorp.com/agent-inject: the patch would take ")
            && message.ends_with(&format!("bytes, over the limit of {MAX_PATCH_BYTES}")),
        "{message}"
    );
}

#[test]
fn an_agent_configmap_is_denied_where_vault_addresses_are_restricted() {
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        ("vault.hashicorp.com/agent-configmap", "mine"),
    ]);
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-configmap: the agent config in ConfigMap \"mine\" is not \
         visible at admission, so its Vault address cannot be checked against the injector's \
         --allowed-vault-addrs; use the annotations instead"
    );
    let unrestricted = Settings {
        allowed_vault_addrs: Vec::new(),
        ..settings()
    };
    let warnings = warnings_with(&pod, &unrestricted);
    assert!(
        warnings.contains(
            &"vault.hashicorp.com/agent-configmap: the injector does not check the Vault address, \
              TLS settings or paths in ConfigMap \"mine\""
                .to_owned()
        ),
        "{warnings:?}"
    );
}

#[test]
fn app_containers_cannot_mount_the_agents_volumes() {
    for (volume, extra) in [
        ("home-sidecar", None),
        ("vault-agent-sa-token", None),
        (
            "vault-secrets",
            Some(("vault.hashicorp.com/agent-inject-containers", "app")),
        ),
    ] {
        let mut annotations = inject(&[]);
        annotations.extend(extra);
        let pod = mk_pod_from(json!({
            "metadata": {"name": "app", "annotations": annotations_json(&annotations)},
            "spec": {"containers": [
                {"name": "app", "image": "x"},
                {"name": "thief", "image": "x", "volumeMounts": [{"name": volume, "mountPath": "/steal"}]},
            ]},
        }));
        assert_eq!(
            denial(&pod),
            format!(
                "vault.hashicorp.com/agent-inject: container \"thief\" mounts volume {volume:?}, \
                 which keyhole adds for its agent"
            )
        );
    }
}

#[test]
fn secret_volume_paths_that_escape_or_hide_are_refused() {
    let cases = [
        (
            "/home/vault/.",
            "must not have empty, \".\" or \"..\" segments",
        ),
        (
            "//home//vault",
            "must not have empty, \".\" or \"..\" segments",
        ),
        (
            "/home/vault",
            "overlaps /home/vault, which secrets may not be mounted at, in or over",
        ),
        (
            "/home",
            "overlaps /home/vault, which secrets may not be mounted at, in or over",
        ),
        (
            "/proc",
            "overlaps /proc, which secrets may not be mounted at, in or over",
        ),
        (
            "/etc",
            "would hide /etc; mount secrets in a directory of their own, such as /etc/secrets",
        ),
        ("/vault/secrets\n", "contains the control character '\\n'"),
    ];
    for (path, reason) in cases {
        let pod = mk_pod(&inject(&[("vault.hashicorp.com/secret-volume-path", path)]));
        assert_eq!(
            denial(&pod),
            format!("vault.hashicorp.com/secret-volume-path: {path:?} {reason}"),
        );
    }
    // A directory inside a system directory is how many apps read config.
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/secret-volume-path",
        "/etc/secrets",
    )]));
    let (_, mutated) = mutate(&pod, &settings());
    assert_eq!(
        container(&mutated, "app")["volumeMounts"],
        json!([{"name": "vault-secrets", "mountPath": "/etc/secrets"}])
    );
}

#[test]
fn an_annotation_key_with_a_newline_cannot_forge_a_log_line() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-secret-x\nINFO forged",
        "secret/data/x",
    )]));
    let message = denial(&pod);
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.starts_with(
            "vault.hashicorp.com/agent-inject-secret-x\\nINFO forged: not a valid annotation name"
        ),
        "{message}"
    );
}

#[test]
fn a_secret_written_over_the_token_sink_is_denied() {
    let pod = mk_pod(&[
        INJECT,
        ROLE,
        ("vault.hashicorp.com/agent-inject-token", "true"),
        (
            "vault.hashicorp.com/agent-inject-secret-token",
            "secret/data/db",
        ),
    ]);
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-secret-token: writes /vault/secrets/token, where \
         vault.hashicorp.com/agent-inject-token writes the Vault token"
    );
}

#[test]
fn a_secret_name_cannot_leave_the_volume() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-secret-../../../../etc/cron.d/x",
        "secret/data/db",
    )]));
    assert!(
        denial(&pod).starts_with(
            "vault.hashicorp.com/agent-inject-secret-../../../../etc/cron.d/x: not a valid \
             annotation name"
        ),
        "{}",
        denial(&pod)
    );
}

#[test]
fn namespace_lists_are_trimmed() {
    let settings = Settings {
        denied_namespaces: vec!["team-x".to_owned(), " team-b".to_owned()],
        ..settings()
    };
    let pod = mk_pod(&inject(&[]));
    assert_eq!(
        mutate_pod(&pod, "team-b", &settings),
        Ok(Outcome::Skip(SkipReason::NamespaceDenied(
            "team-b".to_owned()
        )))
    );
}

#[test]
fn a_reload_signal_warns_that_the_process_namespace_is_pod_wide() {
    let pod = mk_pod(&inject(&[("keyhole.dev/reload-signal-db", "SIGHUP app")]));
    assert_eq!(
        warnings_with(&pod, &settings()),
        [
            "keyhole.dev/reload-signal-db: turns on shareProcessNamespace for the whole pod; \
          containers that run as the agent's user can read its Vault token through /proc"
        ]
    );
}

#[test]
fn setuid_perms_and_control_characters_are_refused() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-perms-db",
        "4777",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-perms-db: \"4777\" sets the setuid, setgid or sticky \
         bit; use permission bits only, such as 0640"
    );
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/namespace",
        "team\r\nX-Injected: 1",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/namespace: \"team\\r\\nX-Injected: 1\" contains the control \
         character '\\r'"
    );
}

#[test]
fn annotations_keyhole_ignores_may_hold_newlines() {
    let pod = mk_pod(&inject(&[("vault.hashicorp.com/go-max-procs", "2\n")]));
    assert_eq!(
        warnings_with(&pod, &settings()),
        ["vault.hashicorp.com/go-max-procs: ignored: keyhole-agent is not a Go program"]
    );
}

#[test]
fn a_pod_at_the_annotation_limit_leaves_room_for_the_status() {
    at_the_annotation_limit(Pod::clone, "vault.hashicorp.com/agent-inject-status");
    // A pod written for OpenBao gets the shorter openbao.org/ status key,
    // and its padding is as much longer.
    at_the_annotation_limit(openbao_pod, "openbao.org/agent-inject-status");
}

/// A pod `spelled` one way, `status` bytes short of the limit, is denied;
/// one with room for `status` fits exactly.
fn at_the_annotation_limit(spelled: fn(&Pod) -> Pod, status: &str) {
    let pod_with = |padding: &str| {
        let mut annotations = vec![INJECT, ROLE, DB];
        annotations.push((PADDING, padding));
        spelled(&mk_pod(&annotations))
    };
    let empty = pod_with("");
    let used: usize = empty
        .metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let padding = "x".repeat(MAX_ANNOTATION_BYTES - used);
    assert_eq!(
        denial_with(&pod_with(&padding), &settings()),
        format!(
            "metadata.annotations: {} bytes of annotations once {status} is set, over the \
             limit of {MAX_ANNOTATION_BYTES}",
            MAX_ANNOTATION_BYTES + status.len() + "injected".len()
        )
    );
    // With room for it, the patched pod's annotations fit.
    let shorter = &padding[status.len() + "injected".len()..];
    let Ok(Outcome::Patch { patch, .. }) = mutate_pod(&pod_with(shorter), "apps", &settings())
    else {
        panic!("denied or skipped");
    };
    let mut mutated = serde_json::to_value(pod_with(shorter)).expect("pod to JSON");
    json_patch::patch(&mut mutated, &patch).expect("patch applies");
    let annotations = mutated["metadata"]["annotations"]
        .as_object()
        .expect("annotations");
    assert_eq!(annotations[status], "injected");
    let bytes: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().expect("string").len())
        .sum();
    assert_eq!(bytes, MAX_ANNOTATION_BYTES);
}
