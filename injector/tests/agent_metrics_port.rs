//! `keyhole.dev/agent-metrics-port` and `--agent-metrics-port`: the
//! long-running agent's metrics listener on the pod IP and its container
//! port, in both layouts, with the denials and warnings users see.

mod common;

use common::{agent_config, assert_valid, container, denial, inject, mk_pod, mk_pod_from, mutate};
use k8s_openapi::api::core::v1::Pod;
use keyhole_injector::patch::{Outcome, mutate_pod};
use keyhole_injector::settings::Settings;
use serde_json::{Value, json};

const KEY: &str = "keyhole.dev/agent-metrics-port";

fn settings() -> Settings {
    common::settings()
}

fn with_default(port: u16) -> Settings {
    Settings {
        agent_metrics_port: Some(port),
        ..settings()
    }
}

/// The metrics listener the agent config gets for `port`.
fn metrics_listener(port: u16) -> Value {
    json!({
        "type": "tcp",
        "address": format!("0.0.0.0:{port}"),
        "tls_disable": true,
        "role": "metrics_only",
        "agent_api": {"enable_quit": false},
        "require_request_header": false,
    })
}

fn metrics_container_port(port: u16) -> Value {
    json!([{"name": "keyhole-metrics", "containerPort": port, "protocol": "TCP"}])
}

fn warnings(pod: &Pod, settings: &Settings) -> Vec<String> {
    match mutate_pod(pod, "apps", settings).expect("admitted") {
        Outcome::Patch { warnings, .. } => warnings,
        Outcome::Skip(reason) => panic!("skipped: {reason}"),
    }
}

/// A pod whose `app` container declares TCP port 9102 and UDP port 9103.
fn pod_with_ports(annotations: &[(&'static str, &'static str)]) -> Pod {
    let mut pod = serde_json::to_value(mk_pod(&inject(annotations))).expect("pod to JSON");
    pod["spec"]["containers"][0]["ports"] = json!([
        {"name": "http", "containerPort": 9102},
        {"name": "statsd", "containerPort": 9103, "protocol": "UDP"},
    ]);
    mk_pod_from(pod)
}

#[test]
fn the_annotation_gives_the_native_sidecar_a_metrics_listener_and_port() {
    let pod = mk_pod(&inject(&[(KEY, "9102")]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let agent = container(&patched, "vault-agent");
    assert_eq!(
        agent_config(agent)["listener"],
        json!([metrics_listener(9102)])
    );
    assert_eq!(agent["ports"], metrics_container_port(9102));
    // Only the persistent cache: the metrics listener serves no API.
    assert_eq!(
        agent_config(agent)["cache"],
        json!({"persist": {
            "type": "kubernetes",
            "path": "/vault/agent-cache",
            "keep_after_import": true,
            "exit_on_err": false,
            "service_account_token_file": "/var/run/secrets/vault.hashicorp.com/serviceaccount/token",
        }})
    );
    assert!(warnings(&pod, &settings()).is_empty());
}

#[test]
fn in_the_classic_layout_only_the_sidecar_serves_metrics() {
    let pod = mk_pod(&inject(&[
        (KEY, "9102"),
        ("keyhole.dev/native-sidecar", "false"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let sidecar = container(&patched, "vault-agent");
    assert_eq!(
        agent_config(sidecar)["listener"],
        json!([metrics_listener(9102)])
    );
    assert_eq!(sidecar["ports"], metrics_container_port(9102));
    let init = container(&patched, "vault-agent-init");
    assert_eq!(agent_config(init).get("listener"), None);
    assert_eq!(init.get("ports"), None);
}

#[test]
fn the_server_default_applies_and_the_annotation_overrides_or_opts_out() {
    let (_, patched) = mutate(&mk_pod(&inject(&[])), &with_default(9102));
    let agent = container(&patched, "vault-agent");
    assert_eq!(
        agent_config(agent)["listener"],
        json!([metrics_listener(9102)])
    );
    assert_eq!(agent["ports"], metrics_container_port(9102));

    let (_, patched) = mutate(&mk_pod(&inject(&[(KEY, "9200")])), &with_default(9102));
    let agent = container(&patched, "vault-agent");
    assert_eq!(
        agent_config(agent)["listener"],
        json!([metrics_listener(9200)])
    );
    assert_eq!(agent["ports"], metrics_container_port(9200));

    for off in ["false", "0"] {
        let pod = mk_pod(&inject(&[(KEY, off)]));
        let (_, patched) = mutate(&pod, &with_default(9102));
        let agent = container(&patched, "vault-agent");
        assert_eq!(agent_config(agent).get("listener"), None, "{off}");
        assert_eq!(agent.get("ports"), None, "{off}");
    }

    let (_, patched) = mutate(&mk_pod(&inject(&[])), &settings());
    assert_eq!(container(&patched, "vault-agent").get("ports"), None);
}

#[test]
fn the_metrics_listener_comes_after_the_localhost_listener() {
    let pod = mk_pod(&inject(&[
        (KEY, "9102"),
        ("vault.hashicorp.com/agent-cache-enable", "true"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let config = agent_config(container(&patched, "vault-agent"));
    let addresses: Vec<&str> = config["listener"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["address"].as_str().expect("address"))
        .collect();
    assert_eq!(addresses, ["127.0.0.1:8200", "0.0.0.0:9102"]);
    assert_eq!(config["listener"][1], metrics_listener(9102));
}

#[test]
fn bad_ports_are_denied_naming_the_annotation() {
    for value in ["65536", "-1", "true", "http", "9102 "] {
        assert_eq!(
            denial(&mk_pod(&inject(&[(KEY, value)]))),
            format!("{KEY}: {value:?} is not a port (1 to 65535), nor false for none")
        );
    }
}

#[test]
fn a_port_the_pod_already_uses_is_denied() {
    assert_eq!(
        denial(&pod_with_ports(&[(KEY, "9102")])),
        format!("{KEY}: port 9102 is already taken by container \"app\"")
    );
    // UDP 9103 leaves TCP 9103 free.
    let (_, patched) = mutate(&pod_with_ports(&[(KEY, "9103")]), &settings());
    assert_eq!(
        container(&patched, "vault-agent")["ports"],
        metrics_container_port(9103)
    );

    for extra in [
        ("vault.hashicorp.com/agent-cache-enable", "true"),
        ("vault.hashicorp.com/agent-enable-quit", "true"),
    ] {
        assert_eq!(
            denial(&mk_pod(&inject(&[(KEY, "8200"), extra]))),
            format!(
                "{KEY}: port 8200 is already taken by the agent's listener \
                 (vault.hashicorp.com/agent-cache-listener-port)"
            )
        );
    }
}

#[test]
fn a_server_default_the_pod_already_uses_is_skipped_with_a_warning() {
    let pod = pod_with_ports(&[]);
    let (_, patched) = mutate(&pod, &with_default(9102));
    let agent = container(&patched, "vault-agent");
    assert_eq!(agent_config(agent).get("listener"), None);
    assert_eq!(agent.get("ports"), None);
    assert_eq!(
        warnings(&pod, &with_default(9102)),
        [format!(
            "{KEY}: the injector's default port 9102 is already taken by container \"app\", so \
             the agent serves no metrics; set this annotation to a free port, or to \"false\""
        )]
    );
}

#[test]
fn no_long_running_agent_or_a_users_config_gets_no_metrics_port() {
    let pod = mk_pod(&inject(&[
        (KEY, "9102"),
        ("vault.hashicorp.com/agent-pre-populate-only", "true"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    let init = container(&patched, "vault-agent-init");
    assert_eq!(agent_config(init).get("listener"), None);
    assert_eq!(init.get("ports"), None);
    assert_eq!(
        warnings(&pod, &settings()),
        [format!(
            "{KEY}: ignored: vault.hashicorp.com/agent-pre-populate-only leaves no long-running \
             agent to serve metrics"
        )]
    );
    // The server default does not warn about every Job that renders once.
    let job = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-pre-populate-only",
        "true",
    )]));
    assert!(warnings(&job, &with_default(9102)).is_empty());

    // A ConfigMap's config is admitted only where pods cannot choose another Vault.
    let own_config = Settings {
        allowed_vault_addrs: Vec::new(),
        ..settings()
    };
    let pod = mk_pod(&inject(&[
        (KEY, "9102"),
        ("vault.hashicorp.com/agent-configmap", "agent-config"),
    ]));
    let (_, patched) = mutate(&pod, &own_config);
    assert_eq!(container(&patched, "vault-agent").get("ports"), None);
    let warned = warnings(&pod, &own_config);
    assert!(
        warned.contains(&format!(
            "{KEY}: ignored: the agent runs the config of vault.hashicorp.com/agent-configmap, \
             which needs a listener of its own"
        )),
        "{warned:?}"
    );
}

#[test]
fn the_server_default_skips_pods_on_the_nodes_network() {
    let mut pod = serde_json::to_value(mk_pod(&inject(&[]))).expect("pod to JSON");
    pod["spec"]["hostNetwork"] = true.into();
    let pod = mk_pod_from(pod);
    let (_, patched) = mutate(&pod, &with_default(9102));
    assert_eq!(container(&patched, "vault-agent").get("ports"), None);
    assert_eq!(
        warnings(&pod, &with_default(9102)),
        [format!(
            "{KEY}: the pod uses the node's network, where the injector's default port 9102 \
             may be taken, so the agent serves no metrics; set this annotation to a port free \
             on the node to serve them"
        )]
    );

    let mut annotated = serde_json::to_value(mk_pod(&inject(&[(KEY, "9200")]))).expect("JSON");
    annotated["spec"]["hostNetwork"] = true.into();
    let (_, patched) = mutate(&mk_pod_from(annotated), &with_default(9102));
    assert_eq!(
        container(&patched, "vault-agent")["ports"],
        metrics_container_port(9200)
    );
}
