//! The mutation of single pods: layout, volumes, config, patch shape and denials.

mod common;

use common::{
    agent_config, assert_valid, container, denial, inject, mk_pod, mk_pod_from, mutate, outcome,
    settings,
};
use keyhole_injector::patch::{Outcome, SkipReason};
use keyhole_injector::settings::Settings;
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect()
}

fn classic() -> Settings {
    Settings {
        native_sidecar: false,
        ..settings()
    }
}

#[test]
fn injects_one_native_sidecar_by_default() {
    let (_, pod) = mutate(&mk_pod(&inject(&[])), &settings());
    assert_valid(&pod);

    assert_eq!(names(&pod["spec"]["initContainers"]), ["vault-agent"]);
    assert_eq!(names(&pod["spec"]["containers"]), ["app"]);
    let agent = container(&pod, "vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(
        agent["image"],
        keyhole_injector::settings::DEFAULT_AGENT_IMAGE
    );
    assert_eq!(agent["command"], json!(["keyhole-agent"]));
    assert_eq!(
        agent["startupProbe"]["exec"]["command"],
        json!(["keyhole-agent", "probe"])
    );
    assert_eq!(
        agent["livenessProbe"],
        json!({
            "exec": {"command": ["keyhole-agent", "probe", "--live"]},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        })
    );
    let config = agent_config(agent);
    assert_eq!(config["exit_after_auth"], false);
    assert_eq!(
        config["keyhole"]["heartbeat_file"],
        "/home/vault/.heartbeat"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
        "injected"
    );
}

#[test]
fn agent_gets_small_resources_and_a_locked_down_security_context() {
    let (_, pod) = mutate(&mk_pod(&inject(&[])), &settings());
    let agent = container(&pod, "vault-agent");
    assert_eq!(
        agent["resources"],
        json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}})
    );
    assert_eq!(
        agent["securityContext"],
        json!({
            "runAsUser": 100,
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        })
    );
}

#[test]
fn adds_memory_volume_projected_token_and_agent_home() {
    let (_, pod) = mutate(&mk_pod(&inject(&[])), &settings());
    assert_eq!(
        pod["spec"]["volumes"],
        json!([
            {"name": "home-sidecar", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "vault-agent-sa-token", "projected": {"sources": [{"serviceAccountToken": {
                "expirationSeconds": 3600, "path": "token"}}]}},
            {"name": "vault-secrets", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "vault-agent-cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
        ])
    );
    assert_eq!(
        container(&pod, "app")["volumeMounts"],
        json!([{"name": "vault-secrets", "mountPath": "/vault/secrets"}])
    );
    assert_eq!(
        container(&pod, "vault-agent")["volumeMounts"],
        json!([
            {"name": "vault-agent-sa-token", "mountPath": "/var/run/secrets/vault.hashicorp.com/serviceaccount", "readOnly": true},
            {"name": "home-sidecar", "mountPath": "/home/vault"},
            {"name": "vault-secrets", "mountPath": "/vault/secrets"},
            {"name": "vault-agent-cache", "mountPath": "/vault/agent-cache"},
        ])
    );
}

#[test]
fn token_audience_flag_sets_the_projected_tokens_audience() {
    let settings = Settings {
        token_audience: Some("vault".to_owned()),
        ..settings()
    };
    let (_, pod) = mutate(&mk_pod(&inject(&[])), &settings);
    assert_valid(&pod);
    assert_eq!(
        pod["spec"]["volumes"][1],
        json!({"name": "vault-agent-sa-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "vault", "expirationSeconds": 3600, "path": "token"}}]}})
    );
}

#[test]
fn agent_config_matches_vault_k8s_shape() {
    let (_, pod) = mutate(&mk_pod(&inject(&[])), &settings());
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(
        config,
        json!({
            "auto_auth": {
                "method": [{
                    "type": "kubernetes",
                    "mount_path": "auth/kubernetes",
                    "min_backoff": "1s",
                    "max_backoff": "300s",
                    "exit_on_err": false,
                    "config": {
                        "role": "app",
                        "token_path": "/var/run/secrets/vault.hashicorp.com/serviceaccount/token",
                    },
                }],
                "sink": [{"type": "file", "config": {"path": "/home/vault/.vault-token", "mode": 416}}],
            },
            "exit_after_auth": false,
            "pid_file": "/home/vault/.pid",
            "vault": {
                "address": "https://vault.vault.svc:8200",
                "tls_skip_verify": false,
                "retry": {"num_retries": 12},
            },
            "template": [{
                "destination": "/vault/secrets/db",
                "contents": "{{ with secret \"secret/data/db\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}",
                "perms": "0644",
                "error_on_missing_key": false,
                "left_delimiter": "{{",
                "right_delimiter": "}}",
                "create_dest_dirs": true,
            }],
            "template_config": {"exit_on_retry_failure": true, "static_secret_render_interval": "300s"},
            "keyhole": {
                "ready_file": "/home/vault/.ready",
                "heartbeat_file": "/home/vault/.heartbeat",
                "revoke_on_shutdown": false,
            },
            "cache": {"persist": {
                "type": "kubernetes",
                "path": "/vault/agent-cache",
                "keep_after_import": true,
                "exit_on_err": false,
                "service_account_token_file": "/var/run/secrets/vault.hashicorp.com/serviceaccount/token",
            }},
        })
    );
}

#[test]
fn per_secret_annotations_shape_the_template_stanza() {
    let pod = mk_pod(&inject(&[
        (
            "vault.hashicorp.com/agent-inject-secret-Cert",
            "pki/issue/web",
        ),
        (
            "vault.hashicorp.com/agent-inject-template-Cert",
            "[[ with secret \"pki/issue/web\" \"common_name=a\" ]][[ .Data.certificate ]][[ end ]]",
        ),
        ("vault.hashicorp.com/agent-template-left-delim-Cert", "[["),
        ("vault.hashicorp.com/agent-template-right-delim-Cert", "]]"),
        ("vault.hashicorp.com/agent-inject-file-Cert", "tls.crt"),
        ("vault.hashicorp.com/agent-inject-perms-Cert", "0640"),
        (
            "vault.hashicorp.com/agent-inject-command-Cert",
            "nginx -s reload",
        ),
        ("vault.hashicorp.com/error-on-missing-key-Cert", "true"),
        ("vault.hashicorp.com/agent-inject-default-template", "json"),
        ("vault.hashicorp.com/agent-inject-token", "true"),
    ]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(
        config["template"],
        json!([
            {
                "destination": "/vault/secrets/tls.crt",
                "contents": "[[ with secret \"pki/issue/web\" \"common_name=a\" ]][[ .Data.certificate ]][[ end ]]",
                "perms": "0640",
                "error_on_missing_key": true,
                "left_delimiter": "[[",
                "right_delimiter": "]]",
                "create_dest_dirs": true,
                "exec": {"command": ["/bin/sh", "-c", "nginx -s reload"], "timeout": "30s"},
            },
            {
                "destination": "/vault/secrets/db",
                "contents": "{{ with secret \"secret/data/db\" }}{{ .Data | toJSON }}\n{{ end }}",
                "perms": "0644",
                "error_on_missing_key": false,
                "left_delimiter": "{{",
                "right_delimiter": "}}",
                "create_dest_dirs": true,
            },
        ])
    );
    assert_eq!(
        config["auto_auth"]["sink"][1],
        json!({"type": "file", "config": {"path": "/vault/secrets/token", "mode": 416}})
    );
}

#[test]
fn commands_run_as_vault_agent_runs_vault_k8s_command_strings() {
    let cases = [
        (
            "curl -s -X POST http://localhost:8080/actuator/refresh\n",
            json!([
                "/bin/sh",
                "-c",
                "curl -s -X POST http://localhost:8080/actuator/refresh\n"
            ]),
        ),
        (
            "sh -c 'kill -HUP $(pidof nginx)' && echo \"reloaded\" > /tmp/done",
            json!([
                "/bin/sh",
                "-c",
                "sh -c 'kill -HUP $(pidof nginx)' && echo \"reloaded\" > /tmp/done"
            ]),
        ),
        ("/app/reload", json!(["/app/reload"])),
        ("sh,-c,kill -HUP 1", json!(["sh", "-c", "kill -HUP 1"])),
    ];
    for (command, argv) in cases {
        let pod = mk_pod(&inject(&[(
            "vault.hashicorp.com/agent-inject-command-db",
            command,
        )]));
        let (_, pod) = mutate(&pod, &settings());
        let config = agent_config(container(&pod, "vault-agent"));
        assert_eq!(
            config["template"][0]["exec"],
            json!({"command": argv, "timeout": "30s"}),
            "{command:?}"
        );
    }
}

#[test]
fn one_word_command_with_a_trailing_newline_is_injected_with_a_warning() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-command-db",
        "/app/reload\n",
    )]));
    let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(
        warnings,
        [
            "vault.hashicorp.com/agent-inject-command-db: runs the program \"/app/reload\\n\", \
             spaces included, as Vault Agent does, and it will not be found; remove the spaces \
             around it"
        ]
    );
}

#[test]
fn command_split_at_commas_is_injected_with_a_warning() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-command-db",
        "echo a, b",
    )]));
    let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(
        warnings,
        [
            "vault.hashicorp.com/agent-inject-command-db: runs as the arguments [\"echo a\", \" b\"]: \
             Vault Agent splits a command at commas, and so does keyhole"
        ]
    );
    let (_, pod) = mutate(&pod, &settings());
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(
        config["template"][0]["exec"]["command"],
        json!(["echo a", " b"])
    );
}

#[test]
fn secret_names_are_lower_cased_unless_preserved() {
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        ("vault.hashicorp.com/role", "app"),
        (
            "vault.hashicorp.com/agent-inject-secret-DB",
            "secret/data/db",
        ),
        (
            "vault.hashicorp.com/agent-inject-secret-Api",
            "secret/data/api",
        ),
        ("vault.hashicorp.com/preserve-secret-case-Api", "true"),
    ]);
    let (_, pod) = mutate(&pod, &settings());
    let config = agent_config(container(&pod, "vault-agent"));
    let destinations: Vec<&str> = config["template"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| t["destination"].as_str().expect("destination"))
        .collect();
    assert_eq!(destinations, ["/vault/secrets/Api", "/vault/secrets/db"]);
}

#[test]
fn vault_connection_and_auth_annotations_reach_the_config() {
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/service", "https://vault.example:8200"),
        ("vault.hashicorp.com/namespace", "team-a"),
        ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
        ("vault.hashicorp.com/tls-secret", "vault-tls"),
        ("vault.hashicorp.com/tls-server-name", "vault.example"),
        ("vault.hashicorp.com/tls-skip-verify", "false"),
        ("vault.hashicorp.com/client-max-retries", "3"),
        ("vault.hashicorp.com/client-timeout", "30s"),
        ("vault.hashicorp.com/auth-path", "auth/k8s-prod"),
        (
            "vault.hashicorp.com/auth-config-token-path",
            "/custom/token",
        ),
        ("vault.hashicorp.com/auth-min-backoff", "2s"),
        ("vault.hashicorp.com/auth-max-backoff", "1m"),
        (
            "vault.hashicorp.com/template-static-secret-render-interval",
            "10m",
        ),
        (
            "vault.hashicorp.com/template-config-exit-on-retry-failure",
            "false",
        ),
        ("vault.hashicorp.com/agent-revoke-on-shutdown", "true"),
        ("vault.hashicorp.com/log-level", "debug"),
        ("vault.hashicorp.com/log-format", "json"),
    ]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    let agent = container(&pod, "vault-agent");
    let config = agent_config(agent);
    assert_eq!(
        config["vault"],
        json!({
            "address": "https://vault.example:8200",
            "namespace": "team-a",
            "ca_cert": "/vault/tls/ca.crt",
            "tls_server_name": "vault.example",
            "tls_skip_verify": false,
            "retry": {"num_retries": 3},
        })
    );
    assert_eq!(
        config["auto_auth"]["method"],
        json!([{
            "type": "kubernetes",
            "mount_path": "auth/k8s-prod",
            "min_backoff": "2s",
            "max_backoff": "60s",
            "exit_on_err": false,
            "config": {"role": "app", "token_path": "/custom/token"},
        }])
    );
    assert_eq!(
        config["template_config"],
        json!({"exit_on_retry_failure": false, "static_secret_render_interval": "600s"})
    );
    assert_eq!(config["keyhole"]["revoke_on_shutdown"], true);
    let env: Vec<&Value> = agent["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter(|e| e["name"] != "KEYHOLE_AGENT_CONFIG")
        .collect();
    assert_eq!(
        env,
        [
            &json!({"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
            &json!({"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}),
            &json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}),
            &json!({"name": "VAULT_LOG_LEVEL", "value": "debug"}),
            &json!({"name": "VAULT_LOG_FORMAT", "value": "json"}),
            &json!({"name": "VAULT_CLIENT_TIMEOUT", "value": "30s"}),
        ]
    );
    assert!(agent["volumeMounts"].as_array().expect("mounts").contains(
        &json!({"name": "vault-tls-secrets", "mountPath": "/vault/tls", "readOnly": true})
    ));
}

#[test]
fn classic_mode_adds_init_container_last_and_sidecar() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[]))},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "migrate:1"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }));
    let (_, pod) = mutate(&pod, &classic());
    assert_valid(&pod);
    assert_eq!(
        names(&pod["spec"]["initContainers"]),
        ["migrate", "vault-agent-init"]
    );
    assert_eq!(names(&pod["spec"]["containers"]), ["app", "vault-agent"]);
    let init = container(&pod, "vault-agent-init");
    assert_eq!(agent_config(init)["exit_after_auth"], true);
    assert_eq!(init["restartPolicy"], Value::Null);
    assert_eq!(init["startupProbe"], Value::Null);
    assert_eq!(init["livenessProbe"], Value::Null);
    assert_eq!(agent_config(init)["keyhole"]["heartbeat_file"], Value::Null);
    assert_eq!(container(&pod, "vault-agent")["livenessProbe"], Value::Null);
    assert_eq!(
        agent_config(container(&pod, "vault-agent"))["exit_after_auth"],
        false
    );
    assert_eq!(
        container(&pod, "migrate")["volumeMounts"],
        json!([{"name": "vault-secrets", "mountPath": "/vault/secrets"}])
    );
    assert_eq!(
        names(&pod["spec"]["volumes"]),
        [
            "home-init",
            "home-sidecar",
            "vault-agent-sa-token",
            "vault-secrets",
            "vault-agent-cache"
        ]
    );
}

#[test]
fn classic_init_first_puts_the_init_container_first() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[
            ("vault.hashicorp.com/agent-init-first", "true"),
        ]))},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "migrate:1"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }));
    let (_, pod) = mutate(&pod, &classic());
    assert_eq!(
        names(&pod["spec"]["initContainers"]),
        ["vault-agent-init", "migrate"]
    );
}

#[test]
fn native_sidecar_goes_first_unless_init_first_is_false() {
    let spec = json!({
        "initContainers": [{"name": "migrate", "image": "migrate:1"}],
        "containers": [{"name": "app", "image": "nginx:1.27"}],
    });
    let pod = |extra| {
        mk_pod_from(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "annotations": common::annotations_json(&inject(extra))},
            "spec": spec,
        }))
    };
    let (_, first) = mutate(&pod(&[]), &settings());
    assert_eq!(
        names(&first["spec"]["initContainers"]),
        ["vault-agent", "migrate"]
    );
    assert_eq!(
        container(&first, "migrate")["volumeMounts"],
        json!([{"name": "vault-secrets", "mountPath": "/vault/secrets"}])
    );
    let (_, last) = mutate(
        &pod(&[("vault.hashicorp.com/agent-init-first", "false")]),
        &settings(),
    );
    assert_eq!(
        names(&last["spec"]["initContainers"]),
        ["migrate", "vault-agent"]
    );
}

#[test]
fn native_sidecar_annotation_overrides_the_server_default() {
    let (_, pod) = mutate(
        &mk_pod(&inject(&[("keyhole.dev/native-sidecar", "false")])),
        &settings(),
    );
    assert_eq!(names(&pod["spec"]["initContainers"]), ["vault-agent-init"]);
    assert_eq!(names(&pod["spec"]["containers"]), ["app", "vault-agent"]);

    let (_, pod) = mutate(
        &mk_pod(&inject(&[("keyhole.dev/native-sidecar", "true")])),
        &classic(),
    );
    assert_eq!(names(&pod["spec"]["initContainers"]), ["vault-agent"]);
    assert_eq!(names(&pod["spec"]["containers"]), ["app"]);
}

#[test]
fn pre_populate_only_gives_the_init_container_alone() {
    for settings in [settings(), classic()] {
        let pod = mk_pod(&inject(&[(
            "vault.hashicorp.com/agent-pre-populate-only",
            "true",
        )]));
        let (_, pod) = mutate(&pod, &settings);
        assert_valid(&pod);
        assert_eq!(names(&pod["spec"]["initContainers"]), ["vault-agent-init"]);
        assert_eq!(names(&pod["spec"]["containers"]), ["app"]);
        assert_eq!(
            names(&pod["spec"]["volumes"]),
            [
                "home-init",
                "vault-agent-sa-token",
                "vault-secrets",
                "vault-agent-cache"
            ]
        );
    }
}

#[test]
fn pre_populate_false_gives_the_sidecar_alone() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-pre-populate",
        "false",
    )]));
    let (_, classic_pod) = mutate(&pod, &classic());
    assert_valid(&classic_pod);
    assert_eq!(classic_pod["spec"]["initContainers"], Value::Null);
    assert_eq!(
        names(&classic_pod["spec"]["containers"]),
        ["app", "vault-agent"]
    );

    let (_, native_pod) = mutate(&pod, &settings());
    let agent = container(&native_pod, "vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(agent["startupProbe"], Value::Null);
    assert_eq!(
        agent["livenessProbe"]["exec"]["command"],
        json!(["keyhole-agent", "probe", "--live"])
    );
}

#[test]
fn per_secret_volume_paths_get_their_own_volumes() {
    let extra = [
        (
            "vault.hashicorp.com/agent-inject-secret-tls",
            "pki/issue/web",
        ),
        ("vault.hashicorp.com/secret-volume-path-tls", "/etc/tls"),
        (
            "vault.hashicorp.com/agent-inject-secret-env",
            "secret/data/env",
        ),
        ("vault.hashicorp.com/secret-volume-path-env", "/etc/tls"),
        (
            "vault.hashicorp.com/agent-inject-secret-conf",
            "secret/data/conf",
        ),
        ("vault.hashicorp.com/secret-volume-path-conf", "/etc/app"),
    ];
    for settings in [settings(), classic()] {
        let (_, pod) = mutate(&mk_pod(&inject(&extra)), &settings);
        assert_valid(&pod);
        assert_eq!(
            container(&pod, "app")["volumeMounts"],
            json!([
                {"name": "vault-secrets", "mountPath": "/vault/secrets"},
                {"name": "vault-secrets-custom-0", "mountPath": "/etc/app"},
                {"name": "vault-secrets-custom-1", "mountPath": "/etc/tls"},
            ])
        );
        let config = agent_config(container(&pod, "vault-agent"));
        let destinations: Vec<&str> = config["template"]
            .as_array()
            .expect("templates")
            .iter()
            .map(|t| t["destination"].as_str().expect("destination"))
            .collect();
        assert_eq!(
            destinations,
            [
                "/etc/app/conf",
                "/vault/secrets/db",
                "/etc/tls/env",
                "/etc/tls/tls"
            ]
        );
    }
}

#[test]
fn agent_inject_containers_selects_app_containers() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[
            ("vault.hashicorp.com/agent-inject-containers", "web"),
        ]))},
        "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"},
            {"name": "metrics", "image": "exporter:1"},
        ]},
    }));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert!(container(&pod, "web")["volumeMounts"].is_array());
    assert_eq!(container(&pod, "metrics")["volumeMounts"], Value::Null);
}

#[test]
fn reload_signal_shares_the_process_namespace() {
    let pod = mk_pod(&inject(&[("keyhole.dev/reload-signal-db", "SIGHUP nginx")]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(pod["spec"]["shareProcessNamespace"], true);
    assert_eq!(
        agent_config(container(&pod, "vault-agent"))["keyhole"]["reload"],
        json!([{"destination": "/vault/secrets/db", "signal": "SIGHUP", "process": "nginx"}])
    );
}

#[test]
fn agent_configmap_mounts_the_users_config() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-configmap",
        "agent-config",
    )]));
    // The address of a user's config cannot be checked, so it is only
    // admitted where the operator set no --allowed-vault-addrs.
    let settings = Settings {
        allowed_vault_addrs: Vec::new(),
        ..classic()
    };
    let (_, pod) = mutate(&pod, &settings);
    assert_valid(&pod);
    let init = container(&pod, "vault-agent-init");
    assert_eq!(
        init["args"],
        json!(["--config", "/vault/configs/config-init.hcl"])
    );
    assert_eq!(
        container(&pod, "vault-agent")["args"],
        json!(["--config", "/vault/configs/config.hcl"])
    );
    assert!(
        !init["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "KEYHOLE_AGENT_CONFIG")
    );
    assert!(
        pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .contains(&json!({"name": "vault-config", "configMap": {"name": "agent-config"}}))
    );
}

#[test]
fn agent_configmap_gets_vault_settings_in_env_as_vault_k8s_sets_them() {
    let settings = Settings {
        allowed_vault_addrs: Vec::new(),
        ..classic()
    };
    let env_of = |pod: &Value, name: &str| -> Vec<Value> {
        container(pod, name)["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("VAULT_")))
            .cloned()
            .collect()
    };

    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/agent-configmap", "agent-config"),
        ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
        ("vault.hashicorp.com/ca-key", "/vault/tls"),
        ("vault.hashicorp.com/client-cert", "/vault/tls/client.crt"),
        ("vault.hashicorp.com/client-key", "/vault/tls/client.key"),
        ("vault.hashicorp.com/tls-server-name", "vault.example"),
        ("vault.hashicorp.com/client-max-retries", "4"),
        ("vault.hashicorp.com/namespace", "team-a"),
    ]));
    let (_, pod) = mutate(&pod, &settings);
    assert_valid(&pod);
    let expected: Vec<Value> = [
        ("VAULT_LOG_LEVEL", "info"),
        ("VAULT_LOG_FORMAT", "standard"),
        ("VAULT_ADDR", "https://vault.vault.svc:8200"),
        ("VAULT_CACERT", "/vault/tls/ca.crt"),
        ("VAULT_CAPATH", "/vault/tls"),
        ("VAULT_CLIENT_CERT", "/vault/tls/client.crt"),
        ("VAULT_CLIENT_KEY", "/vault/tls/client.key"),
        ("VAULT_SKIP_VERIFY", "false"),
        ("VAULT_TLS_SERVER_NAME", "vault.example"),
        ("VAULT_MAX_RETRIES", "4"),
    ]
    .iter()
    .map(|(name, value)| json!({"name": name, "value": value}))
    .collect();
    assert_eq!(env_of(&pod, "vault-agent-init"), expected);
    assert_eq!(env_of(&pod, "vault-agent"), expected);

    // Without annotations: verification on.
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-configmap",
        "agent-config",
    )]));
    let (_, pod) = mutate(&pod, &settings);
    assert_eq!(
        env_of(&pod, "vault-agent"),
        [
            json!({"name": "VAULT_LOG_LEVEL", "value": "info"}),
            json!({"name": "VAULT_LOG_FORMAT", "value": "standard"}),
            json!({"name": "VAULT_ADDR", "value": "https://vault.vault.svc:8200"}),
            json!({"name": "VAULT_SKIP_VERIFY", "value": "false"}),
        ]
    );
}

#[test]
fn native_agent_with_users_config_gets_no_probes() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-configmap",
        "agent-config",
    )]));
    let settings = Settings {
        allowed_vault_addrs: Vec::new(),
        ..settings()
    };
    let (_, pod) = mutate(&pod, &settings);
    let agent = container(&pod, "vault-agent");
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(agent["startupProbe"], Value::Null);
    assert_eq!(agent["livenessProbe"], Value::Null);
}

#[test]
fn agent_configmap_needs_no_role_or_auth_parameters() {
    // The ConfigMap's own config logs in, so vault-k8s needs no `role` (nor
    // approle's file annotations) next to `agent-configmap`.
    let settings = Settings {
        allowed_vault_addrs: Vec::new(),
        ..classic()
    };
    for auth_type in ["kubernetes", "approle"] {
        let pod = mk_pod(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/agent-configmap", "agent-config"),
            ("vault.hashicorp.com/auth-type", auth_type),
            (
                "vault.hashicorp.com/agent-inject-secret-db",
                "secret/data/db",
            ),
        ]);
        let (_, pod) = mutate(&pod, &settings);
        assert_eq!(
            container(&pod, "vault-agent")["args"],
            json!(["--config", "/vault/configs/config.hcl"]),
            "{auth_type}"
        );
    }
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/db",
        ),
    ]);
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/role: the kubernetes auth method needs a Vault role"
    );
}

#[test]
fn run_as_same_user_copies_the_first_containers_uid() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[
            ("vault.hashicorp.com/agent-run-as-same-user", "true"),
            ("vault.hashicorp.com/agent-run-as-group", "2000"),
        ]))},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "securityContext": {"runAsUser": 1234}}]},
    }));
    let (_, pod) = mutate(&pod, &settings());
    let security = &container(&pod, "vault-agent")["securityContext"];
    assert_eq!(security["runAsUser"], 1234);
    assert_eq!(security["runAsGroup"], 2000);
}

#[test]
fn resource_annotations_override_and_empty_removes() {
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/agent-limits-cpu", ""),
        ("vault.hashicorp.com/agent-limits-mem", "64Mi"),
        ("vault.hashicorp.com/agent-requests-ephemeral", "1Mi"),
        ("vault.hashicorp.com/agent-limits-ephemeral", "8Mi"),
    ]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        container(&pod, "vault-agent")["resources"],
        json!({
            "requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "1Mi"},
            "limits": {"memory": "64Mi", "ephemeral-storage": "8Mi"},
        })
    );
}

#[test]
fn patch_appends_to_existing_lists_and_escapes_annotation_keys() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[]))},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "migrate:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }));
    let (patch, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    let ops: Vec<(&str, &str)> = patch
        .as_array()
        .expect("ops")
        .iter()
        .map(|op| {
            (
                op["op"].as_str().expect("op"),
                op["path"].as_str().expect("path"),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("add", "/spec/volumes/-"),
            ("add", "/spec/volumes/-"),
            ("add", "/spec/volumes/-"),
            ("add", "/spec/volumes/-"),
            ("add", "/spec/containers/0/volumeMounts"),
            ("add", "/spec/initContainers/0/volumeMounts/-"),
            ("add", "/spec/initContainers/0"),
            (
                "add",
                "/metadata/annotations/vault.hashicorp.com~1agent-inject-status"
            ),
        ]
    );
    assert_eq!(names(&pod["spec"]["volumes"])[0], "data");
}

#[test]
fn an_injected_pod_is_left_alone() {
    let settings = settings();
    let (_, injected) = mutate(&mk_pod(&inject(&[])), &settings);
    let injected = mk_pod_from(injected);
    assert_eq!(
        outcome(&injected, "apps", &settings),
        Ok(Outcome::Skip(SkipReason::AlreadyInjected))
    );
}

#[test]
fn update_status_injects_again() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-status",
        "update",
    )]));
    let (patch, pod) = mutate(&pod, &settings());
    assert_eq!(
        patch.as_array().expect("ops").last(),
        Some(
            &json!({"op": "replace", "path": "/metadata/annotations/vault.hashicorp.com~1agent-inject-status", "value": "injected"})
        )
    );
    assert_eq!(names(&pod["spec"]["initContainers"]), ["vault-agent"]);
}

#[test]
fn update_status_on_an_injected_pod_is_denied() {
    let settings = settings();
    let (_, mut injected) = mutate(&mk_pod(&inject(&[])), &settings);
    injected["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"] =
        "update".into();
    assert_eq!(
        outcome(&mk_pod_from(injected), "apps", &settings).map_err(|d| d.to_string()),
        Err("vault.hashicorp.com/agent-inject-status: the pod already has a container named \"vault-agent\"".to_owned())
    );
}

#[test]
fn skips_pods_that_do_not_ask_and_system_namespaces() {
    let settings = Settings {
        allowed_namespaces: vec!["apps".to_owned(), "web".to_owned()],
        denied_namespaces: vec!["web".to_owned()],
        ..settings()
    };
    let not_asked = mk_pod(&[("vault.hashicorp.com/agent-inject", "false")]);
    assert_eq!(
        outcome(&not_asked, "apps", &settings),
        Ok(Outcome::Skip(SkipReason::NotRequested))
    );
    assert_eq!(
        outcome(&mk_pod(&[]), "apps", &settings),
        Ok(Outcome::Skip(SkipReason::NotRequested))
    );
    let asked = mk_pod(&inject(&[]));
    for namespace in ["kube-system", "kube-public", "web", "other"] {
        assert_eq!(
            outcome(&asked, namespace, &settings),
            Ok(Outcome::Skip(SkipReason::NamespaceDenied(
                namespace.to_owned()
            )))
        );
    }
}

#[test]
fn unknown_annotations_are_warnings() {
    let pod = mk_pod(&inject(&[
        (
            "vault.hashicorp.com/agent-inject-secrte-db2",
            "secret/data/x",
        ),
        ("vault.hashicorp.com/go-max-procs", "2"),
        ("vault.hashicorp.com/agent-inject-file-other", "x.txt"),
        ("keyhole.dev/native-sidecars", "true"),
    ]));
    let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(
        warnings,
        [
            "keyhole.dev/native-sidecars: unknown annotation, ignored",
            "vault.hashicorp.com/agent-inject-file-other: ignored: no secret \"other\" (vault.hashicorp.com/agent-inject-secret-other)",
            "vault.hashicorp.com/agent-inject-secrte-db2: unknown annotation, ignored",
            "vault.hashicorp.com/go-max-procs: ignored: keyhole-agent is not a Go program",
        ]
    );
}

#[test]
fn wrong_annotations_are_denied_with_the_annotation_and_reason() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("vault.hashicorp.com/agent-pre-populate", "yes")],
            "vault.hashicorp.com/agent-pre-populate: \"yes\" is not a boolean (true or false)",
        ),
        (
            &[("keyhole.dev/native-sidecar", "on")],
            "keyhole.dev/native-sidecar: \"on\" is not a boolean (true or false)",
        ),
        (
            &[("vault.hashicorp.com/auth-min-backoff", "5 seconds")],
            "vault.hashicorp.com/auth-min-backoff: \"5 seconds\" is not a duration such as 30s or 5m",
        ),
        (
            &[(
                "vault.hashicorp.com/template-static-secret-render-interval",
                "5 minutes",
            )],
            "vault.hashicorp.com/template-static-secret-render-interval: \"5 minutes\" is not a duration such as 30s or 5m",
        ),
        (
            &[("vault.hashicorp.com/agent-limits-mem", "64MB")],
            "vault.hashicorp.com/agent-limits-mem: \"64MB\" is not a quantity such as 100m or 64Mi",
        ),
        (
            &[("vault.hashicorp.com/secret-volume-path", "")],
            "vault.hashicorp.com/secret-volume-path: empty path: no volume can be mounted \
             there, and vault-k8s's pod would be refused by Kubernetes too",
        ),
        (
            &[("vault.hashicorp.com/secret-volume-path-db", "etc/db")],
            "vault.hashicorp.com/secret-volume-path-db: \"etc/db\" is not an absolute path",
        ),
        (
            &[(
                "vault.hashicorp.com/agent-inject-file-db",
                "../../etc/passwd",
            )],
            "vault.hashicorp.com/agent-inject-file-db: \"../../etc/passwd\" has a \"..\" \
             segment; the file must stay in the secrets volume",
        ),
        (
            &[("vault.hashicorp.com/agent-inject-perms-db", "rw-r--r--")],
            "vault.hashicorp.com/agent-inject-perms-db: \"rw-r--r--\" is not an octal file mode such as 0640",
        ),
        (
            &[("vault.hashicorp.com/agent-inject-containers", "app,sidecar")],
            "vault.hashicorp.com/agent-inject-containers: no container named \"sidecar\" in the pod",
        ),
        (
            &[("vault.hashicorp.com/agent-inject-default-template", "yaml")],
            "vault.hashicorp.com/agent-inject-default-template: \"yaml\" is not a default template (map or json)",
        ),
        (
            &[("vault.hashicorp.com/agent-inject-command-db", " \n")],
            "vault.hashicorp.com/agent-inject-command-db: \" \\n\" names no program to run",
        ),
        (
            &[("keyhole.dev/reload-signal-db", "SIGFOO nginx")],
            "keyhole.dev/reload-signal-db: unknown signal \"SIGFOO\": expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGWINCH (the SIG prefix is optional)",
        ),
        (
            &[("keyhole.dev/reload-signal-db", "SIGHUP")],
            "keyhole.dev/reload-signal-db: \"SIGHUP\" is not a signal and a process name, such as \"SIGHUP nginx\"",
        ),
        (
            &[("vault.hashicorp.com/auth-type", "aws")],
            "vault.hashicorp.com/auth-type: keyhole-agent does not support auth type \"aws\" (supported: kubernetes, jwt, approle, token_file, cert)",
        ),
        (
            &[("vault.hashicorp.com/agent-run-as-user", "nobody")],
            "vault.hashicorp.com/agent-run-as-user: \"nobody\" is not a user or group id",
        ),
        (
            &[("vault.hashicorp.com/log-level", "verbose")],
            "vault.hashicorp.com/log-level: \"verbose\" is not a log level (trace, debug, info, warn or error)",
        ),
        (
            &[(
                "vault.hashicorp.com/agent-service-account-token-volume-name",
                "sa",
            )],
            "vault.hashicorp.com/agent-service-account-token-volume-name: no volume named \"sa\" in the pod",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(denial(&mk_pod(&inject(extra))), *expected);
    }
}

#[test]
fn a_secret_without_path_or_template_is_denied() {
    let pod = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        ("vault.hashicorp.com/role", "app"),
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/db",
        ),
        (
            "vault.hashicorp.com/agent-inject-template-file-x",
            "/vault/custom/x.tpl",
        ),
        ("vault.hashicorp.com/agent-inject-secret-y", " "),
        ("vault.hashicorp.com/agent-inject-template-y", ""),
    ]);
    // Empty values declare nothing, as in vault-k8s; a template file needs no path.
    let (_, pod) = mutate(&pod, &settings());
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(config["template"][1]["source"], "/vault/custom/x.tpl");
    assert_eq!(config["template"].as_array().map(Vec::len), Some(2));
}

#[test]
fn missing_role_and_address_are_denied() {
    let no_role = mk_pod(&[
        ("vault.hashicorp.com/agent-inject", "true"),
        (
            "vault.hashicorp.com/agent-inject-secret-db",
            "secret/data/db",
        ),
    ]);
    assert_eq!(
        denial(&no_role),
        "vault.hashicorp.com/role: the kubernetes auth method needs a Vault role"
    );
    let no_address = Settings {
        vault_addr: None,
        ..settings()
    };
    assert_eq!(
        outcome(&mk_pod(&inject(&[])), "apps", &no_address).map_err(|d| d.to_string()),
        Err("vault.hashicorp.com/service: no Vault address: set this annotation or the injector's --vault-addr".to_owned())
    );
}

#[test]
fn share_process_namespace_conflicts_are_denied() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[
            ("keyhole.dev/reload-signal-db", "SIGHUP nginx"),
        ]))},
        "spec": {"shareProcessNamespace": false, "containers": [{"name": "app", "image": "nginx:1.27"}]},
    }));
    assert_eq!(
        denial(&pod),
        "keyhole.dev/reload-signal-db: signalling a process needs shareProcessNamespace: true, which the pod turns off"
    );
}

#[test]
fn auth_methods_without_their_file_are_denied() {
    assert_eq!(
        denial(&mk_pod(&inject(&[(
            "vault.hashicorp.com/auth-type",
            "approle"
        )]))),
        "vault.hashicorp.com/auth-config-role-id-file-path: the approle auth method needs this annotation"
    );
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/auth-type", "approle"),
        (
            "vault.hashicorp.com/auth-config-role-id-file-path",
            "/vault/custom/role-id",
        ),
        ("vault.hashicorp.com/agent-extra-secret", "approle"),
    ]));
    let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(
        warnings,
        ["vault.hashicorp.com/role: ignored: the approle auth method takes no role"]
    );
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        agent_config(container(&pod, "vault-agent"))["auto_auth"]["method"][0]["config"],
        json!({
            "role_id_file_path": "/vault/custom/role-id",
            "remove_secret_id_file_after_reading": true,
        })
    );
}

#[test]
fn cert_auth_logs_in_with_the_tls_secrets_certificate() {
    // As vault-k8s writes it: the client-cert/client-key annotations set the
    // vault stanza, whose certificate the cert login presents.
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/auth-type", "cert"),
        ("vault.hashicorp.com/auth-path", "auth/cert"),
        ("vault.hashicorp.com/tls-secret", "vault-client"),
        ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
        ("vault.hashicorp.com/client-cert", "/vault/tls/tls.crt"),
        ("vault.hashicorp.com/client-key", "/vault/tls/tls.key"),
    ]));
    let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings()) else {
        panic!("expected a patch");
    };
    assert_eq!(
        warnings,
        [
            "vault.hashicorp.com/role: ignored: the cert auth method takes no role \
             (to log in as one certificate role, set vault.hashicorp.com/auth-config-name)"
        ]
    );
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    let config = agent_config(container(&pod, "vault-agent"));
    assert_eq!(
        config["auto_auth"]["method"][0],
        json!({
            "type": "cert",
            "mount_path": "auth/cert",
            "min_backoff": "1s",
            "max_backoff": "300s",
            "exit_on_err": false,
            "config": {"reload": false},
        })
    );
    assert_eq!(config["vault"]["client_cert"], "/vault/tls/tls.crt");
    assert_eq!(config["vault"]["client_key"], "/vault/tls/tls.key");
    assert_eq!(config["vault"]["ca_cert"], "/vault/tls/ca.crt");
}

#[test]
fn cert_auth_takes_its_own_files_and_no_other_parameter() {
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/auth-type", "cert"),
        ("vault.hashicorp.com/auth-config-name", "web"),
        (
            "vault.hashicorp.com/auth-config-client-cert",
            "/certs/tls.crt",
        ),
        (
            "vault.hashicorp.com/auth-config-client-key",
            "/certs/tls.key",
        ),
        ("vault.hashicorp.com/auth-config-reload", "true"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        agent_config(container(&patched, "vault-agent"))["auto_auth"]["method"][0]["config"],
        json!({
            "name": "web",
            "client_cert": "/certs/tls.crt",
            "client_key": "/certs/tls.key",
            "reload": true,
        })
    );
    assert_eq!(
        denial(&mk_pod(&inject(&[
            ("vault.hashicorp.com/auth-type", "cert"),
            ("vault.hashicorp.com/auth-config-reload", "sometimes"),
        ]))),
        "vault.hashicorp.com/auth-config-reload: \"sometimes\" is not a boolean (true or false)"
    );
    assert_eq!(
        denial(&mk_pod(&inject(&[
            ("vault.hashicorp.com/auth-type", "cert"),
            ("vault.hashicorp.com/auth-config-token-path", "/t"),
        ]))),
        "vault.hashicorp.com/auth-config-token-path: the cert auth method of keyhole-agent takes no parameter \"token_path\""
    );
}

#[test]
fn two_secrets_writing_one_file_are_denied() {
    let pod = mk_pod(&inject(&[
        (
            "vault.hashicorp.com/agent-inject-secret-other",
            "secret/data/other",
        ),
        ("vault.hashicorp.com/agent-inject-file-other", "db"),
    ]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-secret-other: writes /vault/secrets/db, as secret \"db\" does already"
    );
}

#[test]
fn a_users_token_volume_replaces_the_projected_one() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[
            ("vault.hashicorp.com/agent-service-account-token-volume-name", "vault-token"),
        ]))},
        "spec": {
            "containers": [{"name": "app", "image": "nginx:1.27"}],
            "volumes": [{"name": "vault-token", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "https://vault.example", "path": "jwt"}}
            ]}}],
        },
    }));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        names(&pod["spec"]["volumes"]),
        [
            "vault-token",
            "home-sidecar",
            "vault-secrets",
            "vault-agent-cache"
        ]
    );
    let agent = container(&pod, "vault-agent");
    assert_eq!(agent["volumeMounts"][0]["name"], "vault-token");
    assert_eq!(
        agent_config(agent)["auto_auth"]["method"][0]["config"]["token_path"],
        "/var/run/secrets/vault.hashicorp.com/serviceaccount/jwt"
    );
}

#[test]
fn security_context_can_be_turned_off() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-set-security-context",
        "false",
    )]));
    let (_, pod) = mutate(&pod, &settings());
    assert_eq!(
        container(&pod, "vault-agent")["securityContext"],
        Value::Null
    );
}

#[test]
fn a_container_already_mounting_the_secrets_path_is_denied() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": common::annotations_json(&inject(&[]))},
        "spec": {
            "containers": [{"name": "app", "image": "nginx:1.27",
                "volumeMounts": [{"name": "old", "mountPath": "/vault/secrets/"}]}],
            "volumes": [{"name": "old", "emptyDir": {}}],
        },
    }));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/secret-volume-path: container \"app\" already mounts volume \"old\" at /vault/secrets/"
    );
}

#[test]
fn annotations_the_agent_would_refuse_are_denied() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/auth-config-colour",
        "blue",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/auth-config-colour: the kubernetes auth method of keyhole-agent takes no parameter \"colour\""
    );
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/auth-type", "jwt"),
        (
            "vault.hashicorp.com/auth-config-remove-jwt-after-reading",
            "maybe",
        ),
    ]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/auth-config-remove-jwt-after-reading: \"maybe\" is not a boolean (true or false)"
    );
}

#[test]
fn agent_image_and_process_namespace_annotations_apply() {
    let pod = mk_pod(&inject(&[
        (
            "vault.hashicorp.com/agent-image",
            "registry.example/keyhole-agent:1.2.3",
        ),
        ("vault.hashicorp.com/agent-share-process-namespace", "true"),
    ]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        container(&pod, "vault-agent")["image"],
        "registry.example/keyhole-agent:1.2.3"
    );
    assert_eq!(pod["spec"]["shareProcessNamespace"], true);
}

#[test]
fn vault_and_openbao_agent_images_become_keyhole_image_with_a_warning() {
    let vault_images = [
        "hashicorp/vault:1.15.2",
        "vault",
        "vault:1.13.1",
        "docker.io/library/vault:1.12",
        "hashicorp/vault-enterprise:1.16.1-ent",
        "openbao/openbao:2.0.0",
        "quay.io/openbao/openbao:2.1",
        "ghcr.io/openbao/openbao@sha256:0123456789abcdef",
        "registry.corp:5000/mirror/hashicorp/vault:1.17.0@sha256:feed",
    ];
    let settings = settings();
    for image in vault_images {
        let pod = mk_pod(&inject(&[("vault.hashicorp.com/agent-image", image)]));
        let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings) else {
            panic!("{image}: not injected");
        };
        assert!(
            warnings.contains(&format!(
                "vault.hashicorp.com/agent-image: {image:?} is a Vault or OpenBao image; keyhole \
                 runs its agent from {:?} instead",
                settings.agent_image
            )),
            "{image}: {warnings:?}"
        );
        let (_, pod) = mutate(&pod, &settings);
        assert_eq!(
            container(&pod, "vault-agent")["image"],
            settings.agent_image.as_str(),
            "{image}"
        );
    }
    for image in [
        "registry.example/keyhole-agent:1.2.3",
        "vaultwarden/server:1.30",
        "registry.example/vault-tools:1",
    ] {
        let pod = mk_pod(&inject(&[("vault.hashicorp.com/agent-image", image)]));
        let Ok(Outcome::Patch { warnings, .. }) = outcome(&pod, "apps", &settings) else {
            panic!("{image}: not injected");
        };
        assert!(
            !warnings.iter().any(|w| w.contains("agent-image")),
            "{image}: {warnings:?}"
        );
        let (_, pod) = mutate(&pod, &settings);
        assert_eq!(container(&pod, "vault-agent")["image"], image);
    }
}

#[test]
fn one_directory_written_two_ways_is_one_volume() {
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/secret-volume-path", "/etc/secrets/"),
        (
            "vault.hashicorp.com/agent-inject-secret-api",
            "secret/data/api",
        ),
        ("vault.hashicorp.com/secret-volume-path-api", "/etc/secrets"),
    ]));
    let (_, pod) = mutate(&pod, &settings());
    assert_valid(&pod);
    assert_eq!(
        container(&pod, "app")["volumeMounts"],
        json!([{"name": "vault-secrets", "mountPath": "/etc/secrets"}])
    );
}

#[test]
fn only_the_long_running_agent_revokes_on_shutdown() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-revoke-on-shutdown",
        "true",
    )]));
    let (_, pod) = mutate(&pod, &classic());
    let revokes =
        |name| agent_config(container(&pod, name))["keyhole"]["revoke_on_shutdown"].clone();
    assert_eq!(revokes("vault-agent-init"), false);
    assert_eq!(revokes("vault-agent"), true);
}

#[test]
fn template_syntax_errors_are_denied_with_line_and_column() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/agent-inject-template-db",
        "{{ with secret \"secret/data/db\" }}\nuser={{ .Data.data.user }\n{{ end }}",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-template-db: db:2:25: unrecognized character in action: '}'"
    );
    let pod = mk_pod(&inject(&[
        (
            "vault.hashicorp.com/agent-inject-template-db",
            "[[ with secret \"secret/data/db\" ]][[ .Data ]]",
        ),
        ("vault.hashicorp.com/agent-template-left-delim-db", "[["),
        ("vault.hashicorp.com/agent-template-right-delim-db", "]]"),
    ]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject-template-db: db:1:4: unexpected EOF in with"
    );
}

#[test]
fn pod_without_a_spec_is_denied() {
    let pod = mk_pod_from(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "annotations": {"vault.hashicorp.com/agent-inject": "true"}},
    }));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-inject: the pod has no spec to add the agent to"
    );
}
