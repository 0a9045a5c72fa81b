//! Pods with structured annotations through the annotation parser and the patch builder,
//! on a thread with the 2 MiB stack of a tokio worker.
//!
//! Annotation keys are drawn mostly from the real `vault.hashicorp.com/` and `keyhole.dev/`
//! names, with arbitrary secret names and values. A bulk part adds up to 4,000 secrets
//! (distinct, identical or case-clashing names and paths), up to 255 distinct
//! `secret-volume-path-<name>` values, one long or deeply nested inline template for all
//! of them, and up to 400 containers and 255 init containers.
//!
//! Properties: no panic and no stack overflow; the patch of an accepted pod applies
//! cleanly to it, keeps container and volume names unique and takes at most
//! [`MAX_PATCH_BYTES`]; the patched pod's annotations stay within [`MAX_ANNOTATION_BYTES`]
//! and a second admission leaves it alone (`agent-inject-status: injected`). A pod that gets the agent is never admitted over one
//! of the limits of `keyhole_injector::limits`; over the annotation limit it is denied
//! naming it, and when the same pod with a small bulk part is admitted, its denial names
//! a limit it passed (the word "limit" and the number).

#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use k8s_openapi::api::core::v1::Pod;
use keyhole_fuzz::{Nesting, on_worker_stack, report_stack_overflows};
use keyhole_injector::annotations::keys::{
    AUTH_CONFIG, INJECT, KNOWN, PER_SECRET_FAMILIES, Prefix, SECRET_FAMILIES, STATUS,
    STATUS_INJECTED, TELEMETRY, VAULT_PREFIX,
};
use keyhole_injector::annotations::spec::DEFAULT_SECRET_VOLUME_PATH;
use keyhole_injector::limits::{
    MAX_ANNOTATION_BYTES, MAX_CONTAINERS, MAX_PATCH_BYTES, MAX_SECRET_VOLUMES, MAX_SECRETS,
    MAX_TEMPLATE_BYTES, MAX_VOLUMES,
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

/// The `i`th of `keys`, wrapping around.
fn pick(keys: impl Iterator<Item = String>, i: u8) -> String {
    let all: Vec<String> = keys.collect();
    all[usize::from(i) % all.len()].clone()
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
    "8200",
    "9102",
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
    /// A known key under `openbao.org/`, which reads as `vault.hashicorp.com/`.
    OpenBao(u8),
    VaultSuffixed(u8, Pick),
    NativeSidecar,
    ReloadSignal(Pick),
    Other(String),
}

impl Key {
    fn get(&self) -> String {
        match self {
            Key::Vault(i) => {
                let unknown = UNKNOWN.iter().map(|name| format!("{VAULT_PREFIX}{name}"));
                pick(KNOWN.iter().map(ToString::to_string).chain(unknown), *i)
            }
            Key::OpenBao(i) => pick(
                KNOWN
                    .iter()
                    .map(|key| key.spelled(Prefix::OpenBao).to_string()),
                *i,
            ),
            Key::VaultSuffixed(i, name) => {
                let name = name.get(NAMES);
                let families = SECRET_FAMILIES
                    .iter()
                    .chain(&PER_SECRET_FAMILIES)
                    .chain(&[AUTH_CONFIG, TELEMETRY]);
                pick(families.map(|family| family.key(&name)), *i)
            }
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
    /// Declared TCP ports, which `keyhole.dev/agent-metrics-port` must not take.
    ports: Vec<u16>,
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
        if !self.ports.is_empty() {
            c["ports"] = self
                .ports
                .iter()
                .map(|port| json!({"containerPort": port}))
                .collect();
        }
        c
    }
}

/// How the bulk part names its secrets, or their Vault paths.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// `bulk0`, `bulk1`, …
    Distinct,
    /// `bulk` every time: one secret, written over and over.
    Same,
    /// `Bulk0`, `Bulk1`, …: distinct, lowercased unless the pod preserves case.
    Upper,
    /// `bulk0`, `BULK0`, `bulk1`, `BULK1`, …: pairs that lowercase to one file name.
    CaseClash,
}

impl Naming {
    fn name(self, i: usize) -> String {
        match self {
            Naming::Distinct => format!("bulk{i}"),
            Naming::Same => "bulk".to_owned(),
            Naming::Upper => format!("Bulk{i}"),
            Naming::CaseClash if i.is_multiple_of(2) => format!("bulk{}", i / 2),
            Naming::CaseClash => format!("BULK{}", i / 2),
        }
    }
}

/// An inline template: a body repeated and nested (see [`Nesting`]).
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
struct NestedTemplate {
    construct: u8,
    depth: u16,
    repeat: u8,
    body: String,
}

impl NestedTemplate {
    fn text(&self) -> String {
        Nesting::new(self.construct, self.depth, self.repeat).wrap(&self.body, "", "")
    }
}

/// A count from a byte: up to 127 as it is (around the limits of 16, 100 and 128), then
/// in steps of `step`, so that most inputs stay cheap and a few reach thousands.
fn count(byte: u8, step: usize) -> usize {
    match byte {
        0..128 => usize::from(byte),
        _ => 128 + usize::from(byte - 128) * step,
    }
}

/// Many secrets, secret volumes and containers, and a big template, for the limits.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
struct Bulk {
    /// Secrets to add (up to 4,065), until the annotations pass [`MAX_ANNOTATION_BYTES`].
    secrets: u8,
    names: Naming,
    paths: Naming,
    /// Distinct `secret-volume-path-<name>` values the secrets take in turn (0: none).
    volume_paths: u8,
    /// The inline template of every added secret (default templates when absent).
    template: Option<NestedTemplate>,
    /// App containers to add (up to 509).
    containers: u8,
    init_containers: u8,
    /// `emptyDir` volumes to add (up to 1,271).
    volumes: u8,
}

impl Bulk {
    fn secrets(&self) -> usize {
        count(self.secrets, 31)
    }

    fn containers(&self) -> usize {
        count(self.containers, 3)
    }

    fn volumes(&self) -> usize {
        count(self.volumes, 9)
    }

    /// The same bulk, small: two secrets, two volume paths, a container of each kind, a
    /// volume, and the template only if it is within [`MAX_TEMPLATE_BYTES`].
    fn small(&self) -> Self {
        Self {
            secrets: self.secrets.min(2),
            volume_paths: self.volume_paths.min(2),
            template: self
                .template
                .clone()
                .filter(|t| t.text().len() <= MAX_TEMPLATE_BYTES),
            containers: self.containers.min(1),
            init_containers: self.init_containers.min(1),
            volumes: self.volumes.min(1),
            ..self.clone()
        }
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
    /// Last, so that inputs written before it existed read as pods without it.
    bulk: Bulk,
}

/// A generated pod and what the limits make of it.
struct Generated {
    pod: Pod,
    /// The limits the pod passes (`over the limit of <n>`), as far as the generator knows:
    /// it may pass others too.
    over: Vec<usize>,
}

/// Bytes of annotations, counted as the injector and the API server count them.
fn annotation_bytes(annotations: &Map<String, Value>) -> usize {
    annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum()
}

/// Secrets the annotations declare, counted as the injector counts them.
fn declared_secrets(annotations: &Map<String, Value>) -> usize {
    let declared: BTreeSet<&str> = annotations
        .iter()
        .filter(|(_, v)| v.as_str().is_some_and(|v| !v.trim().is_empty()))
        .filter_map(|(k, _)| {
            let (prefix, name) = Prefix::split(k)?;
            SECRET_FAMILIES
                .iter()
                .find_map(|family| family.suffix(prefix, name))
                .filter(|raw| !raw.is_empty())
        })
        .collect();
    declared.len()
}

impl Input {
    fn pod(&self, bulk: &Bulk) -> Option<Generated> {
        let mut annotations = Map::new();
        if self.inject {
            annotations.insert(INJECT.to_string(), "true".into());
            annotations.insert("vault.hashicorp.com/role".to_owned(), "app".into());
        }
        for (key, value) in &self.annotations {
            annotations.insert(key.get(), value.get(VALUES).into());
        }
        let mut over = Vec::new();

        // Secrets until the annotations pass their limit; past it, more only cost time.
        let template = bulk.template.as_ref().map(NestedTemplate::text);
        let mut volume_paths = BTreeMap::new();
        let mut bytes = annotation_bytes(&annotations);
        for i in 0..bulk.secrets() {
            if bytes > MAX_ANNOTATION_BYTES {
                break;
            }
            let name = bulk.names.name(i);
            let mut add = |key: String, value: String| {
                bytes += key.len() + value.len();
                if let Some(old) = annotations.get(&key) {
                    bytes -= key.len() + old.as_str().map_or(0, str::len);
                }
                annotations.insert(key, value.into());
            };
            add(
                format!("{VAULT_PREFIX}agent-inject-secret-{name}"),
                format!("secret/data/{}", bulk.paths.name(i)),
            );
            if let Some(text) = &template {
                add(
                    format!("{VAULT_PREFIX}agent-inject-template-{name}"),
                    text.clone(),
                );
            }
            if bulk.volume_paths > 0 {
                let path = format!("/vault/v{}", i % usize::from(bulk.volume_paths));
                add(
                    format!("{VAULT_PREFIX}secret-volume-path-{name}"),
                    path.clone(),
                );
                volume_paths.insert(name, path);
            }
        }
        debug_assert_eq!(bytes, annotation_bytes(&annotations));
        if annotation_bytes(&annotations) > MAX_ANNOTATION_BYTES {
            over.push(MAX_ANNOTATION_BYTES);
        }
        if declared_secrets(&annotations) > MAX_SECRETS {
            over.push(MAX_SECRETS);
        }
        if bulk.secrets() > 0
            && template
                .as_ref()
                .is_some_and(|t| t.len() > MAX_TEMPLATE_BYTES)
        {
            over.push(MAX_TEMPLATE_BYTES);
        }
        if !volume_paths.is_empty() {
            // Every pod has the volume at `secret-volume-path`, used or not.
            let global = match annotations
                .get(&format!("{VAULT_PREFIX}secret-volume-path"))
                .and_then(Value::as_str)
            {
                Some(path) => path.strip_suffix('/').unwrap_or(path),
                None => DEFAULT_SECRET_VOLUME_PATH,
            };
            let distinct: BTreeSet<&str> = volume_paths
                .values()
                .map(String::as_str)
                .chain([global])
                .collect();
            if distinct.len() > MAX_SECRET_VOLUMES {
                over.push(MAX_SECRET_VOLUMES);
            }
        }

        let mut containers: Vec<Value> = self.containers.iter().map(Container::json).collect();
        containers.extend(
            (0..bulk.containers()).map(|i| json!({"name": format!("extra{i}"), "image": "x"})),
        );
        let mut init_containers: Vec<Value> =
            self.init_containers.iter().map(Container::json).collect();
        init_containers.extend(
            (0..bulk.init_containers)
                .map(|i| json!({"name": format!("extra-init{i}"), "image": "x"})),
        );
        if containers.len() + init_containers.len() > MAX_CONTAINERS {
            over.push(MAX_CONTAINERS);
        }
        let mut spec = json!({"containers": containers});
        if !init_containers.is_empty() {
            spec["initContainers"] = init_containers.into();
        }
        let mut volumes: Vec<Value> = self
            .volumes
            .iter()
            .map(|v| json!({"name": v.get(VOLUME_NAMES), "emptyDir": {}}))
            .collect();
        volumes.extend(
            (0..bulk.volumes()).map(|i| json!({"name": format!("extra-vol{i}"), "emptyDir": {}})),
        );
        if volumes.len() > MAX_VOLUMES {
            over.push(MAX_VOLUMES);
        }
        if !volumes.is_empty() {
            spec["volumes"] = volumes.into();
        }
        if let Some(share) = self.share_process_namespace {
            spec["shareProcessNamespace"] = share.into();
        }
        let pod = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "annotations": annotations},
            "spec": spec,
        }))
        .ok()?;
        Some(Generated { pod, over })
    }

    /// Whether the arbitrary part of the pod may touch the names or paths of the bulk part
    /// (its secrets, volume paths, the volumes they get, its containers), so that a pod
    /// with a small bulk part is not just the same pod with fewer of them.
    fn touches_bulk(&self) -> bool {
        let arbitrary = format!(
            "{:?}",
            (
                &self.annotations,
                &self.containers,
                &self.init_containers,
                &self.volumes
            )
        )
        .to_lowercase();
        ["bulk", "/vault/v", "custom", "extra"]
            .iter()
            .any(|marker| arbitrary.contains(marker))
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

/// Whether a denial names `limit`: says "limit" and has the number in it.
fn names_limit(message: &str, limit: usize) -> bool {
    let limit = limit.to_string();
    message.contains("limit")
        && message
            .split(|c: char| !c.is_ascii_digit())
            .any(|number| number == limit)
}

fuzz_target!(init: report_stack_overflows(), |input: Input| {
    let Some(Generated { pod, over }) = input.pod(&input.bulk) else {
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
    on_worker_stack(|| {
        let patch = match mutate_pod(&pod, namespace, &settings) {
            Ok(Outcome::Patch { patch, .. }) => patch,
            // A pod that does not get the agent is left alone, whatever its size.
            Ok(Outcome::Skip(_)) => return,
            Err(denial) => {
                let message = denial.to_string();
                assert!(!message.is_empty());
                // Denied for a limit? Then the pod with a small bulk part must not be
                // denied for anything else.
                let small = input.bulk.small();
                if small == input.bulk || input.touches_bulk() {
                    return;
                }
                let Some(control) = input.pod(&small) else {
                    return;
                };
                if !matches!(
                    mutate_pod(&control.pod, namespace, &settings),
                    Ok(Outcome::Patch { .. })
                ) {
                    return;
                }
                // The generator counts the secret volumes of the arbitrary part only in
                // part, and cannot tell the patch's size beforehand.
                let expected = match over.as_slice() {
                    [] => &[MAX_SECRET_VOLUMES, MAX_PATCH_BYTES][..],
                    over => over,
                };
                assert!(
                    expected.iter().any(|&limit| names_limit(&message, limit)),
                    "denied for another reason than the limits {expected:?}, though admitted \
                     with {small:?}: {message}"
                );
                return;
            }
        };
        assert!(over.is_empty(), "admitted over the limits {over:?}");
        let patch_bytes = serde_json::to_vec(&patch).expect("patch to JSON").len();
        assert!(
            patch_bytes <= MAX_PATCH_BYTES,
            "a patch of {patch_bytes} bytes is admitted"
        );
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
        // The status is set under the pod's own spelling of the prefix.
        let statuses: Vec<&Value> = [Prefix::Vault, Prefix::OpenBao]
            .into_iter()
            .filter_map(|p| doc["metadata"]["annotations"].get(STATUS.spelled(p).to_string()))
            .collect();
        assert!(
            !statuses.is_empty() && statuses.iter().all(|v| *v == STATUS_INJECTED),
            "status after the patch: {statuses:?}"
        );
        // The API server refuses larger annotations after the webhooks ran.
        let patched_bytes = doc["metadata"]["annotations"]
            .as_object()
            .map_or(0, annotation_bytes);
        assert!(
            patched_bytes <= MAX_ANNOTATION_BYTES,
            "the patched pod has {patched_bytes} bytes of annotations"
        );
        let patched: Pod = serde_json::from_value(doc).expect("the patched pod is a Pod");
        assert_eq!(
            mutate_pod(&patched, namespace, &settings),
            Ok(Outcome::Skip(SkipReason::AlreadyInjected)),
            "a second admission changes the pod"
        );
    });
});
