//! Every agent config the injector generates is one keyhole-agent accepts,
//! and reads back as the typed config the injector built.

mod common;

use common::{agent_config, inject, mk_pod, mutate, settings};
use std::path::PathBuf;

use keyhole_agent::config::AgentConfig;
use keyhole_agent::reload::Signal;
use keyhole_injector::agent_config::{self, for_init};
use keyhole_injector::agent_paths::SA_TOKEN_DIR;
use keyhole_injector::annotations;
use keyhole_injector::pod::Pod;
use keyhole_injector::settings::Settings;
use serde_json::Value;

/// Annotation sets covering every stanza and option the injector writes.
fn cases() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        inject(&[]),
        inject(&[
            ("vault.hashicorp.com/agent-inject-default-template", "json"),
            ("vault.hashicorp.com/agent-inject-token", "true"),
            (
                "vault.hashicorp.com/agent-inject-secret-Cert",
                "pki/issue/web",
            ),
            (
                "vault.hashicorp.com/agent-inject-template-Cert",
                "[[ with secret \"pki/issue/web\" ]][[ .Data.certificate ]][[ end ]]",
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
            ("vault.hashicorp.com/secret-volume-path-Cert", "/etc/tls"),
            ("keyhole.dev/reload-signal-db", "SIGHUP nginx"),
        ]),
        inject(&[
            ("vault.hashicorp.com/service", "https://vault.example:8200"),
            ("vault.hashicorp.com/namespace", "team-a"),
            ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
            ("vault.hashicorp.com/ca-key", "/vault/tls"),
            ("vault.hashicorp.com/client-cert", "/vault/tls/client.crt"),
            ("vault.hashicorp.com/client-key", "/vault/tls/client.key"),
            ("vault.hashicorp.com/tls-secret", "vault-tls"),
            ("vault.hashicorp.com/tls-server-name", "vault.example"),
            ("vault.hashicorp.com/tls-skip-verify", "true"),
            ("vault.hashicorp.com/client-max-retries", "3"),
            ("vault.hashicorp.com/client-timeout", "30s"),
            ("vault.hashicorp.com/auth-path", "auth/k8s-prod"),
            ("vault.hashicorp.com/auth-min-backoff", "2s"),
            ("vault.hashicorp.com/auth-max-backoff", "1m"),
            ("vault.hashicorp.com/agent-auto-auth-exit-on-err", "true"),
            (
                "vault.hashicorp.com/template-static-secret-render-interval",
                "10m",
            ),
            (
                "vault.hashicorp.com/template-config-exit-on-retry-failure",
                "false",
            ),
            ("vault.hashicorp.com/agent-revoke-on-shutdown", "true"),
        ]),
        inject(&[
            ("vault.hashicorp.com/auth-type", "jwt"),
            ("vault.hashicorp.com/auth-path", "auth/jwt"),
        ]),
        inject(&[
            ("vault.hashicorp.com/auth-type", "approle"),
            (
                "vault.hashicorp.com/auth-config-role-id-file-path",
                "/vault/custom/role-id",
            ),
            (
                "vault.hashicorp.com/auth-config-secret-id-file-path",
                "/vault/custom/secret-id",
            ),
            (
                "vault.hashicorp.com/auth-config-secret-id-response-wrapping-path",
                "auth/approle/role/app/secret-id",
            ),
            ("vault.hashicorp.com/agent-extra-secret", "approle"),
        ]),
        inject(&[
            ("vault.hashicorp.com/auth-type", "token_file"),
            (
                "vault.hashicorp.com/auth-config-token-file-path",
                "/vault/custom/token",
            ),
        ]),
        inject(&[
            ("vault.hashicorp.com/auth-type", "cert"),
            ("vault.hashicorp.com/auth-path", "auth/cert"),
            ("vault.hashicorp.com/auth-config-name", "web"),
            (
                "vault.hashicorp.com/auth-config-ca-cert",
                "/vault/tls/ca.crt",
            ),
            (
                "vault.hashicorp.com/auth-config-client-cert",
                "/vault/tls/login.crt",
            ),
            (
                "vault.hashicorp.com/auth-config-client-key",
                "/vault/tls/login.key",
            ),
            ("vault.hashicorp.com/auth-config-reload", "true"),
        ]),
        inject(&[(
            "vault.hashicorp.com/agent-inject-template-file-x",
            "/vault/custom/x.tpl",
        )]),
        inject(&[
            ("keyhole.dev/agent-metrics-port", "9102"),
            ("vault.hashicorp.com/agent-cache-enable", "true"),
            ("vault.hashicorp.com/agent-cache-exit-on-err", "true"),
        ]),
        // The token and the API proxy, but no template: no persistent cache.
        vec![
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "app"),
            ("vault.hashicorp.com/agent-inject-token", "true"),
            ("vault.hashicorp.com/agent-cache-enable", "true"),
        ],
    ]
}

/// The agent containers of a mutated pod, init containers first.
fn agent_containers(pod: &Value) -> Vec<&Value> {
    let spec = &pod["spec"];
    spec["initContainers"]
        .as_array()
        .into_iter()
        .chain(spec["containers"].as_array())
        .flatten()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("vault-agent"))
        })
        .collect()
}

fn agent_configs(pod: &Value) -> Vec<Value> {
    agent_containers(pod)
        .into_iter()
        .map(agent_config)
        .collect()
}

#[test]
fn every_generated_config_parses_as_an_agent_config() {
    let classic = Settings {
        native_sidecar: false,
        ..settings()
    };
    for annotations in cases() {
        for settings in [settings(), classic.clone()] {
            let (_, pod) = mutate(&mk_pod(&annotations), &settings);
            let configs = agent_configs(&pod);
            assert!(!configs.is_empty());
            for config in configs {
                if let Err(e) = AgentConfig::from_json(&config.to_string()) {
                    panic!("{e}\n{config:#}");
                }
            }
        }
    }
}

#[test]
fn the_agent_reads_back_the_config_the_injector_built() {
    let classic = Settings {
        native_sidecar: false,
        ..settings()
    };
    let token_path = format!("{SA_TOKEN_DIR}/token");
    for annotations in cases() {
        for settings in [settings(), classic.clone()] {
            let pod = mk_pod(&annotations);
            let spec = annotations::parse(&Pod::from_k8s(&pod).expect("pod"), &settings)
                .expect("annotations parse");
            let built = agent_config::agent_config(&spec, &token_path).expect("config builds");
            let (_, patched) = mutate(&pod, &settings);
            let agents = agent_containers(&patched);
            assert!(!agents.is_empty());
            for container in agents {
                let expected = match container["name"].as_str() {
                    Some("vault-agent-init") => for_init(built.clone()),
                    _ => built.clone(),
                };
                let read = AgentConfig::from_json(&agent_config(container).to_string())
                    .expect("the agent reads the config");
                assert_eq!(read, expected, "{}", container["name"]);
            }
        }
    }
}

#[test]
fn the_agent_reads_what_the_annotations_ask_for() {
    let (_, pod) = mutate(&mk_pod(&cases()[1]), &settings());
    let json = agent_configs(&pod).remove(0);
    let config = AgentConfig::from_json(&json.to_string()).expect("parses");

    assert_eq!(
        config.keyhole.ready_file,
        Some(PathBuf::from("/home/vault/.ready"))
    );
    assert_eq!(config.keyhole.reload.len(), 1);
    assert_eq!(
        config.keyhole.reload[0].destination,
        PathBuf::from("/vault/secrets/db")
    );
    assert_eq!(config.keyhole.reload[0].signal, Signal::SIGHUP);
    assert_eq!(config.keyhole.reload[0].process, "nginx");

    let cert = &config.templates[0];
    assert_eq!(cert.destination, PathBuf::from("/etc/tls/tls.crt"));
    assert_eq!(cert.perms, 0o640);
    assert_eq!(
        cert.command,
        Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "nginx -s reload".to_owned(),
        ])
    );
    assert!(cert.error_on_missing_key);
    assert_eq!(
        (cert.left_delimiter.as_str(), cert.right_delimiter.as_str()),
        ("[[", "]]")
    );

    let sinks: Vec<PathBuf> = config
        .auto_auth
        .expect("auto_auth")
        .sinks
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(
        sinks,
        [
            PathBuf::from("/home/vault/.vault-token"),
            PathBuf::from("/vault/secrets/token")
        ]
    );
    assert!(!config.exit_after_auth);
}
