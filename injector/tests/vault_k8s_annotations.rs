//! The vault-k8s annotations beyond secrets and login: JSON patches of the
//! agent containers, copied volume mounts, the revoke grace, the proxy, the
//! connection settings, and the path values of secrets. Each test asserts the
//! mutated pod, the agent config, or the denial users see.

mod common;

use common::{agent_config, assert_valid, container, denial, inject, mk_pod, mutate, settings};
use keyhole_injector::patch::{Outcome, mutate_pod};
use serde_json::{Value, json};

/// The usual pod for one secret, with one more annotation of any lifetime.
fn pod_with(key: &str, value: &str) -> k8s_openapi::api::core::v1::Pod {
    let mut annotations = inject(&[]);
    annotations.push((key, value));
    mk_pod(&annotations)
}

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

/// The JSON patch of the SPIFFE example: a volume mount and a security context.
const SPIFFE_PATCH: &str = r#"[
  {"op": "add", "path": "/volumeMounts/-",
   "value": {"name": "spiffe-certs", "mountPath": "/run/spiffe/certs"}},
  {"op": "add", "path": "/securityContext", "value": {"runAsUser": 0, "runAsGroup": 0}}
]"#;

/// A pod with an app container mounting `certs` at `/run/certs`, a
/// service-account token and a volume the agent must not get.
fn pod_with_mounts(annotations: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Pod {
    common::mk_pod_from(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps",
                     "annotations": common::annotations_json(annotations)},
        "spec": {
            "initContainers": [{"name": "fetch", "image": "busybox",
                "volumeMounts": [{"name": "spiffe-certs", "mountPath": "/run/spiffe/certs"}]}],
            "containers": [{"name": "app", "image": "nginx:1.27", "volumeMounts": [
                {"name": "certs", "mountPath": "/run/certs", "readOnly": true, "subPath": "tls"},
                {"name": "token", "mountPath": "/var/run/secrets/my.io/ServiceAccount"},
            ]}],
            "volumes": [
                {"name": "certs", "emptyDir": {}},
                {"name": "token", "emptyDir": {}},
                {"name": "spiffe-certs", "emptyDir": {}},
            ],
        },
    }))
}

fn mount_paths(container: &Value) -> Vec<&str> {
    container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["mountPath"].as_str().expect("path"))
        .collect()
}

#[test]
fn the_json_patch_applies_to_the_native_sidecar() {
    let pod = pod_with_mounts(&inject(&[(
        "vault.hashicorp.com/agent-json-patch",
        SPIFFE_PATCH,
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let agent = container(&patched, "vault-agent");
    assert_eq!(
        agent["securityContext"],
        json!({"runAsUser": 0, "runAsGroup": 0})
    );
    assert_eq!(mount_paths(agent).last(), Some(&"/run/spiffe/certs"));
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-json-patch: applied to container \"vault-agent\"; keyhole \
          checked that it keeps the agent's image, command, config and volume mounts"
        ]
    );
}

#[test]
fn classic_containers_each_take_their_own_patch() {
    let pod = pod_with_mounts(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        ("vault.hashicorp.com/agent-init-json-patch", SPIFFE_PATCH),
        (
            "vault.hashicorp.com/agent-json-patch",
            r#"[{"op": "add", "path": "/env/-", "value": {"name": "HTTPS_PROXY", "value": "http://proxy:3128"}}]"#,
        ),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let init = container(&patched, "vault-agent-init");
    assert_eq!(mount_paths(init).last(), Some(&"/run/spiffe/certs"));
    assert_eq!(
        init["env"].as_array().expect("env").last().expect("var")["name"],
        "VAULT_LOG_FORMAT"
    );
    let sidecar = container(&patched, "vault-agent");
    assert!(
        sidecar
            .get("securityContext")
            .is_none_or(|sc| sc["runAsUser"] != 0)
    );
    assert_eq!(
        sidecar["env"].as_array().expect("env").last(),
        Some(&json!({"name": "HTTPS_PROXY", "value": "http://proxy:3128"}))
    );
}

#[test]
fn the_init_patch_of_a_native_sidecar_is_ignored_with_a_warning() {
    let pod = pod_with_mounts(&inject(&[(
        "vault.hashicorp.com/agent-init-json-patch",
        SPIFFE_PATCH,
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert!(!mount_paths(container(&patched, "vault-agent")).contains(&"/run/spiffe/certs"));
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-init-json-patch: ignored: the native sidecar replaces the \
          init container and takes vault.hashicorp.com/agent-json-patch; set \
          keyhole.dev/native-sidecar: \"false\" for vault-k8s's init container"
        ]
    );
}

#[test]
fn the_same_patch_for_both_containers_is_applied_once_to_a_native_sidecar() {
    let pod = pod_with_mounts(&inject(&[
        ("vault.hashicorp.com/agent-init-json-patch", SPIFFE_PATCH),
        ("vault.hashicorp.com/agent-json-patch", SPIFFE_PATCH),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let mounts = mount_paths(container(&patched, "vault-agent"));
    assert_eq!(
        mounts.iter().filter(|p| **p == "/run/spiffe/certs").count(),
        1
    );
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-json-patch: applied to container \"vault-agent\"; keyhole \
          checked that it keeps the agent's image, command, config and volume mounts"
        ]
    );
}

#[test]
fn an_empty_json_patch_is_no_patch() {
    let pod = mk_pod(&inject(&[("vault.hashicorp.com/agent-json-patch", "")]));
    assert!(warnings(&pod).is_empty());
}

#[test]
fn json_patches_that_fail_or_are_malformed_are_denied() {
    let key = "vault.hashicorp.com/agent-json-patch";
    let cases = [
        (
            r#"[{"op": "add", "path": "/volumeMounts"#,
            "not an RFC 6902 JSON patch: expected JSON at line 1 column 37",
        ),
        (
            r#"{"op": "add", "path": "/x", "value": "s3cr3t"}"#,
            "not an RFC 6902 JSON patch: expected a list of operations, each with \"op\", \
             \"path\" and what the op needs at line 1 column 0",
        ),
        (
            r#"[{"op": "remove", "path": "/lifecycle"}]"#,
            "operation 0 (remove) failed at \"/lifecycle\": path is invalid",
        ),
        (
            r#"[{"op": "test", "path": "/name", "value": "vault"}]"#,
            "operation 0 (test) failed at \"/name\": value did not match",
        ),
        (
            r#"[{"op": "add", "path": "/ports", "value": "s3cr3t"}]"#,
            "the patched agent container is not a valid container at ports",
        ),
    ];
    for (patch, reason) in cases {
        let message = denial(&mk_pod(&inject(&[(key, patch)])));
        assert_eq!(message, format!("{key}: {reason}"));
        assert!(!message.contains("s3cr3t"));
    }
}

#[test]
fn json_patches_cannot_undo_what_admission_checked() {
    let key = "vault.hashicorp.com/agent-json-patch";
    let cases = [
        (
            r#"[{"op": "replace", "path": "/name", "value": "app"}]"#,
            "the patch changes the agent container's name, which keyhole sets: keyhole finds \
             its agent by it",
        ),
        (
            r#"[{"op": "replace", "path": "/image", "value": "evil:1"}]"#,
            "the patch changes the agent container's image, which keyhole sets: set \
             vault.hashicorp.com/agent-image instead",
        ),
        (
            r#"[{"op": "replace", "path": "/command", "value": ["sh"]}]"#,
            "the patch changes the agent container's command, which keyhole sets: it starts \
             keyhole-agent",
        ),
        (
            r#"[{"op": "remove", "path": "/restartPolicy"}]"#,
            "the patch changes the agent container's restartPolicy, which keyhole sets: it \
             makes the agent a native sidecar or not",
        ),
        (
            r#"[{"op": "add", "path": "/env/-", "value": {"name": "VAULT_ADDR", "value": "http://10.0.0.1"}}]"#,
            "the patch sets KEYHOLE_AGENT_CONFIG or VAULT_ADDR, which carry the agent config \
             and Vault address that admission checked",
        ),
        (
            // KEYHOLE_AGENT_CONFIG, after NAMESPACE, HOST_IP and POD_IP.
            r#"[{"op": "replace", "path": "/env/3/value", "value": "{}"}]"#,
            "the patch sets KEYHOLE_AGENT_CONFIG or VAULT_ADDR, which carry the agent config \
             and Vault address that admission checked",
        ),
        (
            r#"[{"op": "add", "path": "/envFrom", "value": [{"configMapRef": {"name": "x"}}]}]"#,
            "the patch adds envFrom, which could set VAULT_ADDR past the checks of admission; \
             set single variables under env instead",
        ),
        (
            r#"[{"op": "replace", "path": "/volumeMounts/2/mountPath", "value": "/tmp"}]"#,
            "the patch removes or changes the agent's mount of volume \"vault-secrets\" at \
             \"/vault/secrets\"",
        ),
        (
            r#"[{"op": "add", "path": "/volumeMounts/-", "value": {"name": "disk", "mountPath": "/vault/secrets/db"}}]"#,
            "the patch mounts volume \"disk\" at /vault/secrets/db, in /vault/secrets, where \
             the agent has its own volume",
        ),
        (
            r#"[{"op": "add", "path": "/volumeMounts/-", "value": {"name": "disk", "mountPath": "/home/vault"}}]"#,
            "the patch mounts volume \"disk\" at /home/vault, in /home/vault, where the agent \
             has its own volume",
        ),
    ];
    for (patch, reason) in cases {
        assert_eq!(
            denial(&mk_pod(&inject(&[(key, patch)]))),
            format!("{key}: {reason}"),
            "{patch}"
        );
    }
}

#[test]
fn json_patches_are_bounded() {
    let key = "vault.hashicorp.com/agent-json-patch";
    let op = r#"{"op": "add", "path": "/env/-", "value": {"name": "A", "value": "b"}}"#;
    let many = format!("[{}]", vec![op; 101].join(","));
    assert_eq!(
        denial(&pod_with(key, &many)),
        format!("{key}: 101 operations, over the limit of 100")
    );
    let big = format!("[{}]", " ".repeat(64 * 1024));
    assert_eq!(
        denial(&pod_with(key, &big)),
        format!("{key}: 65538 bytes of JSON patch, over the limit of 65536")
    );
    // Each copy puts the list into itself, doubling it.
    let doubling = format!(
        "[{}]",
        vec![r#"{"op": "copy", "from": "/env", "path": "/env/-"}"#; 30].join(",")
    );
    let message = denial(&pod_with(key, &doubling));
    assert!(
        message.ends_with("copies more than the 65536 bytes a patch may copy"),
        "{message}"
    );
}

#[test]
fn copy_volume_mounts_gives_the_agents_the_app_containers_mounts() {
    let pod = pod_with_mounts(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        ("vault.hashicorp.com/agent-copy-volume-mounts", "app"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    for name in ["vault-agent-init", "vault-agent"] {
        let mounts = container(&patched, name)["volumeMounts"]
            .as_array()
            .expect("mounts");
        let copied: Vec<&Value> = mounts.iter().filter(|m| m["name"] == "certs").collect();
        assert_eq!(
            copied,
            [
                &json!({"name": "certs", "mountPath": "/run/certs", "readOnly": true, "subPath": "tls"})
            ],
            "{name}"
        );
        assert!(
            mounts.iter().all(|m| m["name"] != "token"),
            "service-account token mounts are not copied"
        );
    }
}

#[test]
fn copy_volume_mounts_takes_an_init_container_and_refuses_unknown_names() {
    let pod = pod_with_mounts(&inject(&[(
        "vault.hashicorp.com/agent-copy-volume-mounts",
        "fetch",
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        mount_paths(container(&patched, "vault-agent"))
            .iter()
            .rev()
            .nth(1),
        Some(&"/run/spiffe/certs"),
        "copied after the agent's own, before the persistent cache's"
    );
    let pod = pod_with_mounts(&inject(&[(
        "vault.hashicorp.com/agent-copy-volume-mounts",
        "ap",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-copy-volume-mounts: no container or init container named \
         \"ap\" in the pod"
    );
}

#[test]
fn copied_mounts_may_not_cover_the_agents_own_directories() {
    let pod = common::mk_pod_from(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps", "annotations": common::annotations_json(
            &inject(&[
                ("vault.hashicorp.com/agent-inject-containers", "app"),
                ("vault.hashicorp.com/agent-copy-volume-mounts", "other"),
            ]))},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.27"},
                {"name": "other", "image": "nginx:1.27",
                 "volumeMounts": [{"name": "disk", "mountPath": "/vault/secrets"}]},
            ],
            "volumes": [{"name": "disk", "emptyDir": {}}],
        },
    }));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/agent-copy-volume-mounts: container \"other\" mounts volume \
         \"disk\" at /vault/secrets, in /vault/secrets, where the agent has its own volume"
    );
}

fn env_var<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|var| var["name"] == name)
        .map(|var| &var["value"])
}

#[test]
fn proxy_address_sets_https_proxy_on_every_agent_container() {
    let pod = mk_pod(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        (
            "vault.hashicorp.com/proxy-address",
            "http://proxy.corp:3128",
        ),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    for name in ["vault-agent-init", "vault-agent"] {
        assert_eq!(
            env_var(container(&patched, name), "HTTPS_PROXY"),
            Some(&json!("http://proxy.corp:3128")),
            "{name}"
        );
    }
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/proxy-address",
        "ftp://user:s3cr3t@proxy",
    )]));
    assert_eq!(
        denial(&pod),
        "vault.hashicorp.com/proxy-address: not an http or https proxy URL such as \
         http://proxy.example:3128"
    );
}

#[test]
fn a_proxy_without_a_scheme_is_http_as_in_go() {
    let pod = mk_pod(&inject(&[(
        "vault.hashicorp.com/proxy-address",
        "proxy.corp:3128",
    )]));
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        env_var(container(&patched, "vault-agent"), "HTTPS_PROXY"),
        Some(&json!("proxy.corp:3128"))
    );
}

/// The `keyhole` stanza of the long-running agent's config.
fn keyhole_stanza(pod: &k8s_openapi::api::core::v1::Pod) -> Value {
    let (_, patched) = mutate(pod, &settings());
    agent_config(container(&patched, "vault-agent"))["keyhole"].clone()
}

#[test]
fn the_classic_sidecar_waits_the_revoke_grace_before_revoking() {
    let classic = [
        ("keyhole.dev/native-sidecar", "false"),
        ("vault.hashicorp.com/agent-revoke-on-shutdown", "true"),
    ];
    let stanza = keyhole_stanza(&mk_pod(&inject(&classic)));
    assert_eq!(stanza["revoke_grace"], "5s", "vault-k8s's default");
    let mut annotations = inject(&classic);
    annotations.push(("vault.hashicorp.com/agent-revoke-grace", "12"));
    let pod = mk_pod(&annotations);
    assert_eq!(keyhole_stanza(&pod)["revoke_grace"], "12s");
    assert!(warnings(&pod).is_empty());
}

#[test]
fn the_native_sidecar_revokes_at_once() {
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/agent-revoke-on-shutdown", "true"),
        ("vault.hashicorp.com/agent-revoke-grace", "10"),
    ]));
    assert_eq!(keyhole_stanza(&pod).get("revoke_grace"), None);
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/agent-revoke-grace: ignored: the native sidecar gets SIGTERM \
          only once the app containers have stopped, so it revokes at once"
        ]
    );
    let pod = mk_pod(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        ("vault.hashicorp.com/agent-revoke-grace", "10"),
    ]));
    assert_eq!(
        warnings(&pod),
        ["vault.hashicorp.com/agent-revoke-grace: ignored: \
          vault.hashicorp.com/agent-revoke-on-shutdown is off, so the agent revokes nothing"]
    );
}

#[test]
fn a_revoke_grace_that_is_not_whole_seconds_is_denied() {
    for (value, reason) in [
        ("5s", "\"5s\" is not a number of seconds such as 5"),
        ("-1", "\"-1\" is not a number of seconds such as 5"),
        ("+5", "\"+5\" is not a number of seconds such as 5"),
        ("86401", "86401 seconds, over the limit of 86400"),
    ] {
        assert_eq!(
            denial(&pod_with("vault.hashicorp.com/agent-revoke-grace", value)),
            format!("vault.hashicorp.com/agent-revoke-grace: {reason}")
        );
    }
}

#[test]
fn an_empty_auth_parameter_leaves_the_default_with_a_warning() {
    let pod = pod_with("vault.hashicorp.com/auth-config-token-path", "");
    let (_, patched) = mutate(&pod, &settings());
    assert_eq!(
        agent_config(container(&patched, "vault-agent"))["auto_auth"]["method"][0]["config"]["token_path"],
        "/var/run/secrets/vault.hashicorp.com/serviceaccount/token"
    );
    assert_eq!(
        warnings(&pod),
        [
            "vault.hashicorp.com/auth-config-token-path: empty, so the kubernetes auth method's \
          default applies"
        ]
    );
}

/// The persistent cache every agent that renders a template keeps.
fn persist() -> Value {
    json!({
        "type": "kubernetes",
        "path": "/vault/agent-cache",
        "keep_after_import": true,
        "exit_on_err": false,
        "service_account_token_file": "/var/run/secrets/vault.hashicorp.com/serviceaccount/token",
    })
}

/// The listener, API proxy and cache stanzas of the long-running agent's
/// config, and whether the classic init container got a listener or an API
/// proxy. Both keep the persistent cache.
fn listen_stanzas(annotations: &[(&'static str, &'static str)]) -> (Value, bool) {
    let pod = mk_pod(&inject(annotations));
    let (_, patched) = mutate(&pod, &settings());
    assert_valid(&patched);
    let config = agent_config(container(&patched, "vault-agent"));
    let stanzas = json!({
        "listener": config.get("listener"),
        "api_proxy": config.get("api_proxy"),
        "cache": config.get("cache"),
    });
    let mut classic = annotations.to_vec();
    classic.push(("keyhole.dev/native-sidecar", "false"));
    let (_, patched) = mutate(&mk_pod(&inject(&classic)), &settings());
    let init = agent_config(container(&patched, "vault-agent-init"));
    assert_eq!(init["cache"]["persist"], config["cache"]["persist"]);
    let init_listens = ["listener", "api_proxy"]
        .iter()
        .any(|key| init.get(key).is_some());
    (stanzas, init_listens)
}

#[test]
fn agent_cache_enable_proxies_the_apps_requests_on_localhost_as_vault_k8s_does() {
    let (stanzas, init_listens) =
        listen_stanzas(&[("vault.hashicorp.com/agent-cache-enable", "true")]);
    assert_eq!(
        stanzas,
        json!({
            "listener": [{
                "type": "tcp",
                "address": "127.0.0.1:8200",
                "tls_disable": true,
                "agent_api": {"enable_quit": false},
                "require_request_header": false,
            }],
            "api_proxy": {"use_auto_auth_token": true},
            "cache": {"persist": persist()},
        })
    );
    assert!(
        !init_listens,
        "the init container exits before the app starts"
    );

    let (stanzas, _) = listen_stanzas(&[
        ("vault.hashicorp.com/agent-cache-enable", "true"),
        (
            "vault.hashicorp.com/agent-cache-use-auto-auth-token",
            "force",
        ),
        ("vault.hashicorp.com/agent-cache-listener-port", "8100"),
    ]);
    assert_eq!(stanzas["listener"][0]["address"], "127.0.0.1:8100");
    assert_eq!(
        stanzas["api_proxy"],
        json!({"use_auto_auth_token": "force"})
    );
}

#[test]
fn agent_enable_quit_serves_quit_on_the_localhost_listener() {
    let (stanzas, init_listens) =
        listen_stanzas(&[("vault.hashicorp.com/agent-enable-quit", "true")]);
    assert_eq!(
        stanzas,
        json!({
            "listener": [{
                "type": "tcp",
                "address": "127.0.0.1:8200",
                "tls_disable": true,
                "agent_api": {"enable_quit": true},
                "require_request_header": false,
            }],
            "api_proxy": null,
            "cache": {"persist": persist()},
        })
    );
    assert!(!init_listens);

    let (stanzas, _) = listen_stanzas(&[
        ("vault.hashicorp.com/agent-enable-quit", "true"),
        ("vault.hashicorp.com/agent-cache-enable", "true"),
    ]);
    assert_eq!(stanzas["listener"][0]["agent_api"]["enable_quit"], true);
    assert_eq!(stanzas["api_proxy"], json!({"use_auto_auth_token": true}));
}

#[test]
fn agent_cache_exit_on_err_makes_an_unusable_persistent_cache_fatal() {
    let (stanzas, _) = listen_stanzas(&[("vault.hashicorp.com/agent-cache-exit-on-err", "true")]);
    let mut expected = persist();
    expected["exit_on_err"] = true.into();
    assert_eq!(stanzas["cache"], json!({ "persist": expected }));
    assert!(
        warnings(&mk_pod(&inject(&[(
            "vault.hashicorp.com/agent-cache-exit-on-err",
            "true"
        )])))
        .is_empty()
    );
}

#[test]
fn the_listener_settings_alone_or_without_a_sidecar_add_no_listener() {
    for annotations in [
        vec![("vault.hashicorp.com/agent-cache-listener-port", "8100")],
        vec![
            ("vault.hashicorp.com/agent-cache-enable", "false"),
            ("vault.hashicorp.com/agent-enable-quit", "false"),
        ],
    ] {
        let (stanzas, _) = listen_stanzas(&annotations);
        assert_eq!(
            stanzas,
            json!({"listener": null, "api_proxy": null, "cache": {"persist": persist()}}),
            "{annotations:?}"
        );
    }
    let pod = mk_pod(&inject(&[
        ("vault.hashicorp.com/agent-cache-enable", "true"),
        ("vault.hashicorp.com/agent-pre-populate-only", "true"),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    let init = agent_config(container(&patched, "vault-agent-init"));
    assert_eq!(
        init.get("listener"),
        None,
        "no long-running agent to listen"
    );
}

#[test]
fn bad_listener_values_are_denied_naming_the_annotation() {
    for (key, value, reason) in [
        (
            "vault.hashicorp.com/agent-cache-use-auto-auth-token",
            "always",
            "\"always\" is not true, false or force",
        ),
        (
            "vault.hashicorp.com/agent-cache-listener-port",
            "0",
            "\"0\" is not a port (1 to 65535)",
        ),
        (
            "vault.hashicorp.com/agent-cache-listener-port",
            "http",
            "\"http\" is not a port (1 to 65535)",
        ),
        (
            "vault.hashicorp.com/agent-enable-quit",
            "yes",
            "\"yes\" is not a boolean (true or false)",
        ),
    ] {
        assert_eq!(denial(&pod_with(key, value)), format!("{key}: {reason}"));
    }
}

#[test]
fn disable_idle_connections_and_keep_alives_reach_both_agents_configs() {
    let pod = mk_pod(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        (
            "vault.hashicorp.com/agent-disable-idle-connections",
            "auto-auth,caching,templating",
        ),
        (
            "vault.hashicorp.com/agent-disable-keep-alives",
            "templating",
        ),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    for name in ["vault-agent-init", "vault-agent"] {
        let config = agent_config(container(&patched, name));
        assert_eq!(
            config["disable_idle_connections"],
            json!(["auto-auth", "templating", "proxying"]),
            "{name}"
        );
        assert_eq!(
            config["disable_keep_alives"],
            json!(["templating"]),
            "{name}"
        );
    }
    assert!(warnings(&pod).is_empty());

    // Without the annotations the injector's flags decide, and by default nothing is written.
    let plain = mk_pod(&inject(&[]));
    let (_, patched) = mutate(&plain, &settings());
    let config = agent_config(container(&patched, "vault-agent"));
    assert_eq!(config.get("disable_idle_connections"), None);
    let mut flags = settings();
    flags.disable_keep_alives =
        keyhole_injector::annotations::values::agent_parts("auto-auth").expect("a part");
    let (_, patched) = mutate(&plain, &flags);
    let config = agent_config(container(&patched, "vault-agent"));
    assert_eq!(config["disable_keep_alives"], json!(["auto-auth"]));
}

#[test]
fn an_unknown_part_of_the_agent_is_denied_naming_it() {
    for (key, value, unknown) in [
        (
            "vault.hashicorp.com/agent-disable-idle-connections",
            "auto-auth,cache",
            "\"cache\"",
        ),
        (
            "vault.hashicorp.com/agent-disable-keep-alives",
            "auto-auth, templating",
            "\" templating\"",
        ),
    ] {
        assert_eq!(
            denial(&pod_with(key, value)),
            format!(
                "{key}: {unknown} is not a part of the agent (auto-auth, caching, proxying, templating)"
            )
        );
    }
}

#[test]
fn telemetry_statsd_annotations_reach_both_agents_configs_and_others_are_warned_about() {
    let pod = mk_pod(&inject(&[
        ("keyhole.dev/native-sidecar", "false"),
        (
            "vault.hashicorp.com/agent-telemetry-dogstatsd_addr",
            "127.0.0.1:8125",
        ),
        (
            "vault.hashicorp.com/agent-telemetry-dogstatsd-tags",
            r#"["env:prod", "team:shop"]"#,
        ),
        (
            "vault.hashicorp.com/agent-telemetry-enable_hostname_label",
            "true",
        ),
        (
            "vault.hashicorp.com/agent-telemetry-prometheus_retention_time",
            "24h",
        ),
    ]));
    let (_, patched) = mutate(&pod, &settings());
    for name in ["vault-agent-init", "vault-agent"] {
        let config = agent_config(container(&patched, name));
        assert_eq!(
            config["telemetry"],
            json!({
                "dogstatsd_addr": "127.0.0.1:8125",
                "dogstatsd_tags": ["env:prod", "team:shop"],
                "enable_hostname_label": true,
            }),
            "{name}"
        );
    }
    let warned = warnings(&pod);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with(
            "vault.hashicorp.com/agent-telemetry-prometheus_retention_time: ignored: \
             keyhole-agent sends its metrics only to StatsD and DogStatsD"
        ),
        "{warned:?}"
    );

    let plain = mk_pod(&inject(&[]));
    let (_, patched) = mutate(&plain, &settings());
    assert_eq!(
        agent_config(container(&patched, "vault-agent")).get("telemetry"),
        None
    );
}

#[test]
fn a_telemetry_value_of_the_wrong_type_drops_the_stanza_with_a_warning_as_vault_k8s_does() {
    let many: &'static str = serde_json::to_string(&vec!["t"; 33]).expect("JSON").leak();
    for (key, value, reason) in [
        (
            "vault.hashicorp.com/agent-telemetry-dogstatsd-tags",
            "env:prod",
            "\"env:prod\" is not a JSON list of tags such as [\"env:prod\"]",
        ),
        (
            "vault.hashicorp.com/agent-telemetry-dogstatsd-tags",
            many,
            "33 tags, over the limit of 32",
        ),
        (
            "vault.hashicorp.com/agent-telemetry-statsd-address",
            "8125",
            "\"8125\" is not a StatsD address such as 127.0.0.1:8125",
        ),
        (
            "vault.hashicorp.com/agent-telemetry-enable-hostname-label",
            "yes",
            "\"yes\" is not a boolean (true or false)",
        ),
    ] {
        let pod = mk_pod(&inject(&[
            (
                "vault.hashicorp.com/agent-telemetry-dogstatsd-addr",
                "127.0.0.1:8125",
            ),
            (key, value),
        ]));
        let (_, patched) = mutate(&pod, &settings());
        let config = agent_config(container(&patched, "vault-agent"));
        assert_eq!(config.get("telemetry"), None, "{key}");
        assert_eq!(
            warnings(&pod),
            [format!(
                "{key}: {reason}; so the agents send their metrics nowhere, as vault-k8s drops \
                 the whole telemetry stanza"
            )]
        );
    }
}
