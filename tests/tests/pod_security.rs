//! The `restricted` Pod Security Standard on mutated pods.
//!
//! A namespace labelled `pod-security.kubernetes.io/enforce: restricted` refuses any pod
//! that breaks one of the standard's rules. keyhole adds containers and volumes to pods,
//! so a pod that met the standard before injection must still meet it after, in both
//! layouts and whatever the security-context annotations say, unless an annotation asks
//! for what the standard forbids (root, or no security context at all).
//!
//! [`violations`] checks every rule of the standard as the Kubernetes documentation
//! lists it (Pod Security Standards, `restricted` at `latest`, which includes `baseline`).

use keyhole_injector::offline::mutate_documents;
use keyhole_injector::settings::Settings;
use serde_json::{Value, json};

/// The rules of `restricted` that `pod` breaks, each as "rule: where".
fn violations(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    let pod_sc = &spec["securityContext"];
    let mut found = Vec::new();
    let mut add = |rule: &str, at: &str| found.push(format!("{rule}: {at}"));

    // baseline: host namespaces.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[field] == true {
            add("host namespaces", field);
        }
    }
    // baseline: HostProcess, pod level.
    if pod_sc["windowsOptions"]["hostProcess"] == true {
        add("HostProcess", "pod");
    }
    // baseline: sysctls outside the safe set.
    const SAFE_SYSCTLS: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    for sysctl in items(&pod_sc["sysctls"]) {
        let name = sysctl["name"].as_str().unwrap_or_default();
        if !SAFE_SYSCTLS.contains(&name) {
            add("sysctls", name);
        }
    }
    // restricted: volume types (which also rules out baseline's hostPath).
    const VOLUME_TYPES: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for volume in items(&spec["volumes"]) {
        let name = volume["name"].as_str().unwrap_or_default();
        let kinds = volume.as_object().into_iter().flatten().map(|(k, _)| k);
        for kind in kinds.filter(|k| *k != "name") {
            if !VOLUME_TYPES.contains(&kind.as_str()) {
                add("volume types", &format!("volume {name:?} is {kind}"));
            }
        }
    }
    // baseline and restricted: seccomp, pod level.
    let pod_seccomp = pod_sc["seccompProfile"]["type"].as_str();
    if pod_seccomp == Some("Unconfined") {
        add("seccomp", "pod");
    }
    // baseline: AppArmor and SELinux, pod level.
    check_apparmor_selinux(pod_sc, "pod", &mut add);

    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|list| items(&spec[list]));
    for container in containers {
        let at = format!("container {}", container["name"]);
        let at = at.as_str();
        let sc = &container["securityContext"];
        if sc["windowsOptions"]["hostProcess"] == true {
            add("HostProcess", at);
        }
        if sc["privileged"] == true {
            add("privileged containers", at);
        }
        for port in items(&container["ports"]) {
            if port["hostPort"].as_u64().is_some_and(|p| p != 0) {
                add("host ports", at);
            }
        }
        check_apparmor_selinux(sc, at, &mut add);
        if sc["procMount"].as_str().is_some_and(|m| m != "Default") {
            add("/proc mount type", at);
        }
        // restricted: privilege escalation must be explicitly off.
        if sc["allowPrivilegeEscalation"] != false {
            add("privilege escalation", at);
        }
        // restricted: non-root, at pod level or on every container, and never
        // overridden to false.
        let non_root = match sc["runAsNonRoot"].as_bool() {
            Some(set) => set,
            None => pod_sc["runAsNonRoot"] == true,
        };
        if !non_root {
            add("running as non-root", at);
        }
        // restricted: no UID 0, at either level.
        if sc["runAsUser"] == 0 || (sc["runAsUser"].is_null() && pod_sc["runAsUser"] == 0) {
            add("running as non-root user", at);
        }
        // restricted: RuntimeDefault or Localhost seccomp, at pod level or here.
        match sc["seccompProfile"]["type"].as_str().or(pod_seccomp) {
            Some("RuntimeDefault" | "Localhost") => {}
            _ => add("seccomp", at),
        }
        // restricted: drop ALL; add at most NET_BIND_SERVICE.
        let caps = &sc["capabilities"];
        if !items(&caps["drop"]).any(|c| c == "ALL") {
            add("capabilities (drop ALL)", at);
        }
        if items(&caps["add"]).any(|c| c != "NET_BIND_SERVICE") {
            add("capabilities (add)", at);
        }
    }
    found
}

fn check_apparmor_selinux(sc: &Value, at: &str, add: &mut impl FnMut(&str, &str)) {
    if let Some(kind) = sc["appArmorProfile"]["type"].as_str()
        && !["RuntimeDefault", "Localhost"].contains(&kind)
    {
        add("AppArmor", at);
    }
    let selinux = &sc["seLinuxOptions"];
    if let Some(kind) = selinux["type"].as_str()
        && ![
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ]
        .contains(&kind)
    {
        add("SELinux", at);
    }
    if !selinux["user"].is_null() || !selinux["role"].is_null() {
        add("SELinux", at);
    }
}

fn items(list: &Value) -> impl Iterator<Item = &Value> {
    list.as_array().into_iter().flatten()
}

/// An app pod that meets `restricted`, as a platform team's template would write it,
/// with keyhole's annotations plus `extra`.
fn restricted_pod(extra: &[(&str, &str)]) -> Value {
    let mut annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "orders",
        "vault.hashicorp.com/agent-inject-secret-db": "secret/data/orders/db",
    });
    for (key, value) in extra {
        annotations[format!("vault.hashicorp.com/{key}")] = json!(value);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orders", "namespace": "demo", "annotations": annotations},
        "spec": {
            "serviceAccountName": "orders",
            "securityContext": {
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "app",
                "image": "registry.example.com/orders:1.4.2",
                "securityContext": {
                    "runAsUser": 2000,
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    })
}

/// The pod `keyhole-injector mutate` prints for `pod`.
fn mutate(pod: &Value, native_sidecar: bool) -> Value {
    let settings = Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        native_sidecar,
        ..Settings::default()
    };
    let input = serde_json::to_string(pod).expect("a pod serialises");
    let mutated = mutate_documents(&input, &settings).expect("keyhole mutates the pod");
    let pod: Value = serde_saphyr::from_str(&mutated.yaml).expect("mutate prints YAML");
    let agents = items(&pod["spec"]["initContainers"])
        .chain(items(&pod["spec"]["containers"]))
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("vault-agent"))
        })
        .count();
    assert!(agents > 0, "the agent was injected: {pod:#}");
    pod
}

/// Every annotation that changes the agent's security context or the pod's, with the
/// values a restricted namespace's pods would use.
const ANNOTATION_CASES: &[&[(&str, &str)]] = &[
    &[],
    &[("agent-set-security-context", "true")],
    &[("agent-run-as-user", "2000")],
    &[("agent-run-as-group", "3000")],
    // OpenShift runs containers with an arbitrary UID and group 0.
    &[
        ("agent-run-as-user", "1000650000"),
        ("agent-run-as-group", "0"),
    ],
    &[("agent-run-as-same-user", "true")],
    &[("agent-share-process-namespace", "true")],
    &[("agent-inject-token", "true")],
    &[("agent-pre-populate-only", "true")],
];

#[test]
fn the_checker_finds_each_rule_a_pod_breaks() {
    assert_eq!(violations(&restricted_pod(&[])), Vec::<String>::new());
    let bad = json!({
        "spec": {
            "hostNetwork": true,
            "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [{
                "name": "app",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "privileged": true,
                    "runAsUser": 0,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "seccompProfile": {"type": "Unconfined"},
                },
            }],
        },
    });
    assert_eq!(
        violations(&bad),
        [
            "host namespaces: hostNetwork",
            "sysctls: kernel.msgmax",
            "volume types: volume \"host\" is hostPath",
            "privileged containers: container \"app\"",
            "host ports: container \"app\"",
            "privilege escalation: container \"app\"",
            "running as non-root: container \"app\"",
            "running as non-root user: container \"app\"",
            "seccomp: container \"app\"",
            "capabilities (drop ALL): container \"app\"",
            "capabilities (add): container \"app\"",
        ]
    );
}

#[test]
fn restricted_pods_stay_restricted_after_injection_in_both_layouts() {
    for native_sidecar in [true, false] {
        for extra in ANNOTATION_CASES {
            let mutated = mutate(&restricted_pod(extra), native_sidecar);
            assert_eq!(
                violations(&mutated),
                Vec::<String>::new(),
                "native sidecar {native_sidecar}, annotations {extra:?}"
            );
        }
    }
}

/// The two annotations that ask for what `restricted` forbids get exactly that, as
/// docs/security.md says: the namespace's admission then refuses the pod.
#[test]
fn annotations_that_ask_for_root_or_no_security_context_break_only_those_rules() {
    for native_sidecar in [true, false] {
        let agent = if native_sidecar {
            "vault-agent"
        } else {
            "vault-agent-init"
        };
        let root = mutate(
            &restricted_pod(&[("agent-run-as-user", "0")]),
            native_sidecar,
        );
        let broken = violations(&root);
        assert!(
            broken.contains(&format!("running as non-root user: container \"{agent}\"")),
            "{broken:?}"
        );
        assert!(
            broken.iter().all(|v| v.starts_with("running as non-root")),
            "{broken:?}"
        );

        let off = mutate(
            &restricted_pod(&[("agent-set-security-context", "false")]),
            native_sidecar,
        );
        let broken = violations(&off);
        assert!(
            broken.contains(&format!("privilege escalation: container \"{agent}\"")),
            "{broken:?}"
        );
        assert!(
            broken.iter().all(|v| v.starts_with("privilege escalation")
                || v.starts_with("capabilities (drop ALL)")),
            "{broken:?}"
        );
    }
}
