//! Pods with structured annotations through the annotation parser and the patch builder.
//!
//! Annotation keys are drawn mostly from the real `vault.hashicorp.com/` and `keyhole.dev/`
//! names, with arbitrary secret names and values. Properties: no panic; the patch of an
//! accepted pod applies cleanly to it and keeps container and volume names unique; the
//! patched pod is left alone by a second admission (`agent-inject-status: injected`).

#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use k8s_openapi::api::core::v1::Pod;
use keyhole_injector::annotations::{
    INJECT, KNOWN, PER_SECRET_PREFIXES, SECRET_PREFIXES, STATUS, STATUS_INJECTED,
};
use keyhole_injector::patch::{Outcome, SkipReason, mutate_pod};
use keyhole_injector::settings::Settings;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// vault-k8s annotations keyhole does not act on (answered with a warning), beside the
/// ones it does ([`KNOWN`]).
const UNKNOWN: &[&str] = &[
    "agent-cache-enable",
    "agent-json-patch",
    "agent-sidecar-type",
];

/// Parameter prefixes, beside the per-secret ones the injector lists.
const PARAMETER_PREFIXES: &[&str] = &["auth-config-", "agent-telemetry-"];

/// The `i`th name of `lists` taken as one list, wrapping around.
fn pick(lists: &[&[&'static str]], i: u8) -> &'static str {
    let all: Vec<_> = lists.iter().flat_map(|list| list.iter()).collect();
    all[usize::from(i) % all.len()]
}

/// Values that mean something to some annotation.
const VALUES: &[&str] = &[
    "true",
    "false",
    "1",
    "F",
    "injected",
    "update",
    "",
    "secret/data/db",
    "kv/app?version=2",
    r#"{{ with secret "secret/data/db" }}{{ .Data.data.user }}{{ end }}"#,
    r#"[[ with secret "kv/app" ]][[ .Data.password ]][[ end ]]"#,
    "{{ if",
    "[[",
    "]]",
    "app",
    "app,sidecar",
    "sidecar, app",
    "64Mi",
    "250m",
    "1e3",
    "30s",
    "1m30s",
    "1000",
    "-1",
    "0400",
    "/vault/custom",
    "/etc/secrets/db.env",
    "relative/path",
    "kubernetes",
    "approle",
    "jwt",
    "token_file",
    "auth/kubernetes",
    "https://vault.vault.svc:8200",
    "debug",
    "json",
    "SIGHUP",
    "map",
    "touch /tmp/done",
    "vault-agent",
    "vault-secrets",
];

const NAMES: &[&str] = &["db", "app", "DB", "db.env", "a-b", "vault-agent", "x"];
const CONTAINER_NAMES: &[&str] = &["app", "sidecar", "vault-agent", "vault-agent-init", "init"];
const VOLUME_NAMES: &[&str] = &[
    "data",
    "vault-secrets",
    "home-init",
    "vault-config",
    "vault-agent-sa-token",
];

#[derive(Arbitrary, Debug)]
enum Pick {
    Known(u8),
    Other(String),
}

impl Pick {
    fn get(&self, list: &[&str]) -> String {
        match self {
            Pick::Known(i) => list[usize::from(*i) % list.len()].to_owned(),
            Pick::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Key {
    Vault(u8),
    VaultSuffixed(u8, Pick),
    NativeSidecar,
    ReloadSignal(Pick),
    Other(String),
}

impl Key {
    fn get(&self) -> String {
        match self {
            Key::Vault(i) => format!("vault.hashicorp.com/{}", pick(&[KNOWN, UNKNOWN], *i)),
            Key::VaultSuffixed(i, name) => format!(
                "vault.hashicorp.com/{}{}",
                pick(
                    &[&SECRET_PREFIXES, &PER_SECRET_PREFIXES, PARAMETER_PREFIXES],
                    *i
                ),
                name.get(NAMES)
            ),
            Key::NativeSidecar => "keyhole.dev/native-sidecar".to_owned(),
            Key::ReloadSignal(name) => format!("keyhole.dev/reload-signal-{}", name.get(NAMES)),
            Key::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Container {
    name: Pick,
    run_as_user: Option<i64>,
    mounts: Vec<Pick>,
}

impl Container {
    fn json(&self) -> Value {
        let mut c = json!({"name": self.name.get(CONTAINER_NAMES), "image": "nginx:1.27"});
        if let Some(uid) = self.run_as_user {
            c["securityContext"] = json!({"runAsUser": uid});
        }
        if !self.mounts.is_empty() {
            c["volumeMounts"] = self
                .mounts
                .iter()
                .map(|m| json!({"name": m.get(VOLUME_NAMES), "mountPath": format!("/mnt/{}", m.get(VOLUME_NAMES))}))
                .collect();
        }
        c
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Most interesting pods ask for injection.
    inject: bool,
    native_sidecar: bool,
    system_namespace: bool,
    annotations: Vec<(Key, Pick)>,
    containers: Vec<Container>,
    init_containers: Vec<Container>,
    volumes: Vec<Pick>,
    share_process_namespace: Option<bool>,
}

impl Input {
    fn pod(&self) -> Option<Pod> {
        let mut annotations = Map::new();
        if self.inject {
            annotations.insert(INJECT.to_owned(), "true".into());
            annotations.insert("vault.hashicorp.com/role".to_owned(), "app".into());
        }
        for (key, value) in &self.annotations {
            annotations.insert(key.get(), value.get(VALUES).into());
        }
        let mut spec = json!({
            "containers": self.containers.iter().map(Container::json).collect::<Vec<_>>(),
        });
        if !self.init_containers.is_empty() {
            spec["initContainers"] = self.init_containers.iter().map(Container::json).collect();
        }
        if !self.volumes.is_empty() {
            spec["volumes"] = self
                .volumes
                .iter()
                .map(|v| json!({"name": v.get(VOLUME_NAMES), "emptyDir": {}}))
                .collect();
        }
        if let Some(share) = self.share_process_namespace {
            spec["shareProcessNamespace"] = share.into();
        }
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "annotations": annotations},
            "spec": spec,
        }))
        .ok()
    }
}

/// Whether every name in the pod's lists at `lists` is different.
fn unique_names(pod: &Value, lists: &[&str]) -> bool {
    let mut seen = BTreeSet::new();
    lists
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .all(|item| seen.insert(item["name"].to_string()))
}

fuzz_target!(|input: Input| {
    let Some(pod) = input.pod() else {
        return;
    };
    let namespace = if input.system_namespace {
        "kube-system"
    } else {
        "apps"
    };
    let settings = Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        native_sidecar: input.native_sidecar,
        ..Settings::default()
    };
    let patch = match mutate_pod(&pod, namespace, &settings) {
        Ok(Outcome::Patch { patch, .. }) => patch,
        Ok(Outcome::Skip(_)) => return,
        Err(denial) => {
            assert!(!denial.to_string().is_empty());
            return;
        }
    };
    let original = serde_json::to_value(&pod).expect("pod to JSON");
    let mut doc = original.clone();
    if let Err(err) = json_patch::patch(&mut doc, &patch) {
        panic!(
            "patch does not apply: {err}\npod: {original:#}\npatch: {:#}",
            serde_json::to_value(&patch).expect("patch to JSON")
        );
    }
    for lists in [&["initContainers", "containers"][..], &["volumes"][..]] {
        assert!(
            !unique_names(&original, lists) || unique_names(&doc, lists),
            "duplicate names in {lists:?} after the patch: {doc:#}"
        );
    }
    assert_eq!(doc["metadata"]["annotations"][STATUS], STATUS_INJECTED);
    let patched: Pod = serde_json::from_value(doc).expect("the patched pod is a Pod");
    assert_eq!(
        mutate_pod(&patched, namespace, &settings),
        Ok(Outcome::Skip(SkipReason::AlreadyInjected)),
        "a second admission changes the pod"
    );
});
