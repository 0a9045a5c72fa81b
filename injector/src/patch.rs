//! The mutation: what keyhole adds to a pod, as a minimal RFC 6902 JSON Patch.
//!
//! The patch only appends to lists it does not own (`/-`), creates a list
//! only when the pod has none, and inserts the agent's init container by
//! index, so everything the pod already had stays where it was.

use std::collections::BTreeMap;
use std::fmt;

use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use keyhole_agent::config::{AgentConfig, CONFIG_ENV, Choice};
use serde::Serialize;
use serde_json::Value;

use crate::agent_config;
use crate::agent_patch::{self, is_within};
use crate::agent_paths::{CACHE_DIR, CONFIG_DIR, EXTRA_SECRET_DIR, HOME, SA_TOKEN_DIR, TLS_DIR};
use crate::annotations;
use crate::annotations::keys::{
    CONFIGMAP, COPY_VOLUME_MOUNTS, INIT_JSON_PATCH, INJECT, JSON_PATCH, SECRET_VOLUME_PATH,
    SERVICE_ACCOUNT_TOKEN_VOLUME, STATUS, STATUS_INJECTED,
};
use crate::annotations::read::Annotations;
use crate::annotations::spec::{AgentSpec, VaultSpec};
use crate::denial::Denial;
use crate::limits::{MAX_CONTAINERS, MAX_PATCH_BYTES};
use crate::pod::{Container, ObjectMeta, Pod, PodSpec};
use crate::policy;
use crate::settings::Settings;
use crate::templates;

/// Name of the long-running agent container (sidecar or native sidecar).
pub const AGENT_CONTAINER: &str = "vault-agent";
/// Name of the classic init container that renders once and exits.
pub const AGENT_INIT_CONTAINER: &str = "vault-agent-init";
/// Name of the shared in-memory secrets volume.
pub const SECRETS_VOLUME: &str = "vault-secrets";
/// Name of the long-running agent's container port that serves metrics,
/// which a PodMonitor selects.
pub const METRICS_PORT_NAME: &str = "keyhole-metrics";

/// Namespaces that are never injected.
const SYSTEM_NAMESPACES: [&str; 2] = ["kube-system", "kube-public"];

const SA_TOKEN_VOLUME: &str = "vault-agent-sa-token";
const SA_TOKEN_FILE: &str = "token";
const SA_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
const HOME_INIT_VOLUME: &str = "home-init";
const HOME_SIDECAR_VOLUME: &str = "home-sidecar";
const HOME_SIZE_LIMIT: &str = "1Mi";
/// The persistent cache's volume, named as vault-k8s names it.
const CACHE_VOLUME: &str = "vault-agent-cache";
/// Room for the state and the copy that replaces it: a token and the
/// pod's leases take a few KiB each.
const CACHE_SIZE_LIMIT: &str = "8Mi";
const CONFIG_VOLUME: &str = "vault-config";
const TLS_VOLUME: &str = "vault-tls-secrets";
const EXTRA_SECRET_VOLUME: &str = "extra-secrets";
/// The agent's program in its image.
const AGENT_PROGRAM: &str = "keyhole-agent";

/// What to do with an admitted pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Leave the pod unchanged.
    Skip(SkipReason),
    /// Apply `patch` to the pod.
    Patch {
        /// Operations relative to the pod's root.
        patch: json_patch::Patch,
        /// Non-fatal findings for the user, e.g. an unknown annotation.
        warnings: Vec<String>,
    },
}

/// Why a pod is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `vault.hashicorp.com/agent-inject` (or `openbao.org/agent-inject`) is absent or false.
    NotRequested,
    /// `vault.hashicorp.com/agent-inject-status` (or `openbao.org/…`) says the agent is already there.
    AlreadyInjected,
    /// The namespace is `kube-system`/`kube-public` or denied by the settings.
    NamespaceDenied(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRequested => f.write_str("injection not requested"),
            Self::AlreadyInjected => f.write_str("agent already injected"),
            Self::NamespaceDenied(ns) => write!(f, "injection disabled in namespace {ns}"),
        }
    }
}

/// [`mutate`] for a typed pod.
pub fn mutate_pod(
    pod: &k8s_openapi::api::core::v1::Pod,
    namespace: &str,
    settings: &Settings,
) -> Result<Outcome, Denial> {
    let metadata = ObjectMeta::from_k8s(&pod.metadata);
    if let Some(reason) = skip_reason(&metadata, namespace, settings)? {
        return Ok(Outcome::Skip(reason));
    }
    let pod = Pod::from_k8s(pod).map_err(|e| {
        let denial = Denial::new(INJECT, format!("cannot read the pod: {e}"));
        as_written(pod.metadata.annotations.as_ref(), denial)
    })?;
    patch_ops(&pod, build(&pod, namespace, settings))
}

/// Decides whether `pod` (created in `namespace`) gets the agent and builds
/// the patch. A denial names its annotation as the pod spells it.
pub fn mutate(pod: &Pod, namespace: &str, settings: &Settings) -> Result<Outcome, Denial> {
    match skip_reason(&pod.metadata, namespace, settings) {
        Ok(Some(reason)) => Ok(Outcome::Skip(reason)),
        Ok(None) => patch_ops(pod, build(pod, namespace, settings)),
        Err(denial) => Err(as_written(pod.metadata.annotations.as_ref(), denial)),
    }
}

/// [`finish`] with the patch as operations.
fn patch_ops(pod: &Pod, built: Result<Built, Denial>) -> Result<Outcome, Denial> {
    let (patch, warnings) = finish(pod, built, |ops| {
        let bytes = json_size(&ops);
        let patch = serde_json::to_value(&ops)
            .and_then(serde_json::from_value)
            .map_err(|err| Denial::new(INJECT, format!("cannot write the patch: {err}")))?;
        Ok((patch, bytes))
    })?;
    Ok(Outcome::Patch { patch, warnings })
}

/// [`mutate`] for a pod that [`skip_reason`] has let through: the patch as
/// the JSON text the webhook sends, written once, its size checked on that
/// text, and the warnings.
pub fn mutate_json(
    pod: &Pod,
    namespace: &str,
    settings: &Settings,
) -> Result<(Vec<u8>, Vec<String>), Denial> {
    finish(pod, build(pod, namespace, settings), |ops| {
        let json = serde_json::to_vec(&ops)
            .map_err(|err| Denial::new(INJECT, format!("cannot write the patch: {err}")))?;
        let bytes = json.len();
        Ok((json, bytes))
    })
}

/// What [`build`] makes of a pod: the patch's operations and the warnings.
type Built = (Vec<Op>, Vec<String>);

/// The result of [`build`] with its patch as `encode` writes it, denied
/// when that takes more than [`MAX_PATCH_BYTES`]. Denials and warnings name
/// keys as the pod wrote them.
fn finish<P>(
    pod: &Pod,
    built: Result<Built, Denial>,
    encode: impl FnOnce(Vec<Op>) -> Result<(P, usize), Denial>,
) -> Result<(P, Vec<String>), Denial> {
    let written = pod.metadata.annotations.as_ref();
    let (patch, mut warnings) = built.map_err(|denial| as_written(written, denial))?;
    let (patch, bytes) = encode(patch).map_err(|denial| as_written(written, denial))?;
    if bytes > MAX_PATCH_BYTES {
        let denial = Denial::new(
            INJECT,
            format!("the patch would take {bytes} bytes, over the limit of {MAX_PATCH_BYTES}"),
        );
        return Err(as_written(written, denial));
    }
    // Warnings name keys by their constants; the pod reads them as it wrote them.
    if let Some(written) = written
        .filter(|_| !warnings.is_empty())
        .map(Annotations::new)
    {
        for warning in &mut warnings {
            *warning = written.spell_keys_in(warning);
        }
    }
    Ok((patch, warnings))
}

/// `denial` naming its annotation as a pod with `annotations` spells it.
pub fn as_written(annotations: Option<&BTreeMap<String, String>>, denial: Denial) -> Denial {
    match annotations {
        Some(map) => Annotations::new(map).as_written(denial),
        None => denial,
    }
}

/// The outcome for `pod`, which [`skip_reason`] has let through, before
/// [`finish`] sizes the patch and spells the warnings' keys as the pod wrote
/// them.
fn build(pod: &Pod, namespace: &str, settings: &Settings) -> Result<Built, Denial> {
    // The API server never sends a pod without containers, but `mutate` reads
    // whatever the file holds.
    let pod_spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Denial::new(INJECT, "the pod has no spec to add the agent to"))?;
    let containers =
        pod_spec.containers.len() + pod_spec.init_containers.as_ref().map_or(0, Vec::len);
    if containers > MAX_CONTAINERS {
        return Err(Denial::new(
            INJECT,
            format!(
                "the pod has {containers} containers and init containers, over the limit of \
                 {MAX_CONTAINERS} for a pod that gets the agent"
            ),
        ));
    }
    let spec = annotations::parse(pod, settings)?;
    let mut warnings = spec.warnings.clone();
    let policy = policy::check(&spec, namespace, &settings.policy(), &mut warnings)?;
    // Only each template's Vault calls outlive its parse (see `templates`).
    for secret in &spec.secrets {
        policy.check_template(&templates::parse(secret)?)?;
    }
    let patch = Builder::new(pod, pod_spec, &spec, &mut warnings)?.build(&mut warnings)?;
    Ok((patch, warnings))
}

/// The length of `value` as JSON, counted without keeping the text.
fn json_size(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail, and a patch is plain JSON.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Why a pod with `metadata`, created in `namespace`, is left alone, or
/// `None` when it gets the agent. Needs nothing but the metadata, so a review
/// can be answered before the rest of the pod is read.
pub fn skip_reason(
    metadata: &ObjectMeta,
    namespace: &str,
    settings: &Settings,
) -> Result<Option<SkipReason>, Denial> {
    // Lists are written by hand (`--denied-namespaces 'a, b'`): compare them
    // trimmed, and ignore empty entries.
    let listed = |list: &[String]| list.iter().any(|n| n.trim() == namespace);
    let allow_list_set = settings
        .allowed_namespaces
        .iter()
        .any(|n| !n.trim().is_empty());
    let denied = SYSTEM_NAMESPACES.contains(&namespace)
        || listed(&settings.denied_namespaces)
        || (allow_list_set && !listed(&settings.allowed_namespaces));
    if denied {
        return Ok(Some(SkipReason::NamespaceDenied(namespace.to_owned())));
    }
    let Some(a) = metadata.annotations.as_ref().map(Annotations::new) else {
        return Ok(Some(SkipReason::NotRequested));
    };
    // The prefixes must agree before either decides; the rest of the
    // annotations are only checked for pods that get the agent.
    a.agree(INJECT)?;
    if !a.bool(INJECT, false)? {
        return Ok(Some(SkipReason::NotRequested));
    }
    // Only "injected" stops a mutation; any other status (vault-k8s uses
    // "update") asks for a fresh one.
    a.agree(STATUS)?;
    if a.get(STATUS).map(|e| e.value) == Some(STATUS_INJECTED) {
        return Ok(Some(SkipReason::AlreadyInjected));
    }
    Ok(None)
}

/// Which agent containers the pod gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One init container with `restartPolicy: Always`; `probe` holds the app
    /// back until every template has rendered.
    Native { probe: bool },
    /// vault-k8s's layout: an init container and/or a sidecar container.
    Classic { init: bool, sidecar: bool },
}

/// What one agent container does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Classic init container: renders once and exits.
    Init,
    /// Classic sidecar container: keeps secrets current.
    Sidecar,
    /// Native sidecar: an init container that runs for the pod's lifetime;
    /// `probe` holds the app back until every template has rendered.
    Native { probe: bool },
}

impl Role {
    fn container_name(self) -> &'static str {
        match self {
            Role::Init => AGENT_INIT_CONTAINER,
            Role::Sidecar | Role::Native { .. } => AGENT_CONTAINER,
        }
    }

    fn home_volume(self) -> &'static str {
        match self {
            Role::Init => HOME_INIT_VOLUME,
            Role::Sidecar | Role::Native { .. } => HOME_SIDECAR_VOLUME,
        }
    }
}

/// One operation of the patch, serialised as RFC 6902 writes it. No `Debug`:
/// the agent's environment may carry what `auth-config-*` annotations hold.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Op {
    Add { path: PointerBuf, value: Item },
    Replace { path: PointerBuf, value: Item },
}

/// A value the patch writes. keyhole's own containers and volumes are
/// k8s-openapi's types, serialised as they are: a JSON tree built first, with
/// its maps and key strings, cost 8 % of a review's instructions.
#[derive(Serialize)]
#[serde(untagged)]
enum Item {
    Container(Box<k8s::Container>),
    /// An agent container as the pod author's JSON patch left it.
    Patched(Value),
    Volume(Box<k8s::Volume>),
    Mount(k8s::VolumeMount),
    List(Vec<Item>),
    Bool(bool),
    Text(&'static str),
    Annotations(BTreeMap<String, &'static str>),
}

/// Collects the patch operations for one pod.
struct Builder<'a> {
    pod: &'a Pod,
    spec: &'a PodSpec,
    agent: &'a AgentSpec,
    layout: Layout,
    /// Secrets volumes and where they are mounted: `(volume, mount path)`.
    secret_mounts: Vec<(String, String)>,
    /// The login token volume.
    token_volume: String,
    /// The long-running agent's config; `None` with `agent-configmap`.
    config: Option<AgentConfig>,
    /// Volume mounts copied from the app container `agent-copy-volume-mounts` names.
    copied_mounts: Vec<k8s::VolumeMount>,
    /// The volumes the pod gets.
    volumes: Vec<k8s::Volume>,
    ops: Vec<Op>,
}

impl<'a> Builder<'a> {
    fn new(
        pod: &'a Pod,
        spec: &'a PodSpec,
        agent: &'a AgentSpec,
        warnings: &mut Vec<String>,
    ) -> Result<Self, Denial> {
        let layout = if agent.pre_populate_only {
            Layout::Classic {
                init: true,
                sidecar: false,
            }
        } else if agent.native_sidecar {
            Layout::Native {
                probe: agent.pre_populate && agent.configmap.is_none(),
            }
        } else {
            Layout::Classic {
                init: agent.pre_populate,
                sidecar: true,
            }
        };
        if matches!(layout, Layout::Native { .. }) && agent.configmap.is_some() {
            warnings.push(format!(
                "{CONFIGMAP}: the app may start before its secrets are rendered, since keyhole \
                 cannot tell when a user-supplied config is done"
            ));
        }

        // One volume for the common path, one more per other path, as vault-k8s does.
        let mut secret_mounts = vec![(SECRETS_VOLUME.to_owned(), agent.secret_volume_path.clone())];
        for secret in &agent.secrets {
            if !secret_mounts
                .iter()
                .any(|(_, path)| *path == secret.mount_path)
            {
                let name = format!("{SECRETS_VOLUME}-custom-{}", secret_mounts.len() - 1);
                secret_mounts.push((name, secret.mount_path.clone()));
            }
        }

        let (token_volume, token_path) = match &agent.service_account_token_volume {
            Some(name) => (
                name.clone(),
                format!("{SA_TOKEN_DIR}/{}", user_token_file(spec, name)?),
            ),
            None => (
                SA_TOKEN_VOLUME.to_owned(),
                format!("{SA_TOKEN_DIR}/{SA_TOKEN_FILE}"),
            ),
        };

        let config = match agent.configmap {
            Some(_) => None,
            None => Some(agent_config::agent_config(agent, &token_path)?),
        };

        let mut builder = Self {
            pod,
            spec,
            agent,
            layout,
            secret_mounts,
            token_volume,
            config,
            copied_mounts: Vec::new(),
            volumes: Vec::new(),
            ops: Vec::new(),
        };
        builder.copied_mounts = builder.copied_mounts()?;
        builder.volumes = builder.volumes();
        builder.check_name_clashes()?;
        Ok(builder)
    }

    /// Refuses a pod that already has a container or volume of ours, which
    /// an `update` status on an injected pod would otherwise duplicate.
    fn check_name_clashes(&self) -> Result<(), Denial> {
        let containers = self
            .spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten());
        for container in containers {
            if [AGENT_CONTAINER, AGENT_INIT_CONTAINER].contains(&container.name.as_str()) {
                return Err(Denial::new(
                    STATUS,
                    format!("the pod already has a container named {:?}", container.name),
                ));
            }
        }
        for container in self.mounted_containers() {
            let clash = container.volume_mounts.iter().flatten().find(|m| {
                self.secret_mounts.iter().any(|(_, path)| {
                    path.trim_end_matches('/') == m.mount_path.trim_end_matches('/')
                })
            });
            if let Some(mount) = clash {
                return Err(Denial::new(
                    SECRET_VOLUME_PATH,
                    format!(
                        "container {:?} already mounts volume {:?} at {}",
                        container.name, mount.name, mount.mount_path
                    ),
                ));
            }
        }
        let ours: Vec<&str> = self.volumes.iter().map(|v| v.name.as_str()).collect();
        for volume in self.spec.volumes.iter().flatten() {
            if ours.contains(&volume.name.as_str()) {
                return Err(Denial::new(
                    STATUS,
                    format!("the pod already has a volume named {:?}", volume.name),
                ));
            }
        }
        // Only the agent may mount its home, token and config volumes, and
        // only the containers agent-inject-containers selects may mount the
        // secrets; naming one of these volumes would get around both.
        for container in self
            .spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten())
        {
            let taken = container
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| ours.contains(&m.name.as_str()));
            if let Some(mount) = taken {
                return Err(Denial::new(
                    INJECT,
                    format!(
                        "container {:?} mounts volume {:?}, which keyhole adds for its agent",
                        container.name, mount.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether app container `c` gets the secrets volumes (`agent-inject-containers`).
    fn is_selected(&self, c: &Container) -> bool {
        let selected = self.agent.containers.as_ref();
        selected.is_none_or(|names| names.contains(&c.name))
    }

    /// The app containers that get the secrets volumes, and every app init container.
    fn mounted_containers(&self) -> impl Iterator<Item = &'a Container> {
        self.spec
            .containers
            .iter()
            .filter(|c| self.is_selected(c))
            .chain(self.spec.init_containers.iter().flatten())
    }

    fn build(mut self, warnings: &mut Vec<String>) -> Result<Vec<Op>, Denial> {
        let volumes = std::mem::take(&mut self.volumes);
        let has_volumes = self.spec.volumes.is_some();
        let volumes = volumes.into_iter().map(|v| Item::Volume(Box::new(v)));
        self.append(&["spec", "volumes"], has_volumes, volumes.collect());

        let mounts = self.secret_volume_mounts();
        for (i, container) in self.spec.containers.iter().enumerate() {
            if self.is_selected(container) {
                self.append_mounts("containers", i, container, mounts.clone());
            }
        }
        // Mount into app init containers before inserting ours, while their
        // indices are still the pod's own.
        for (i, container) in self.spec.init_containers.iter().flatten().enumerate() {
            self.append_mounts("initContainers", i, container, mounts.clone());
        }

        match self.layout {
            Layout::Native { probe } => {
                // The same patch for both, as manifests written for vault-k8s
                // often have, is already applied.
                if self.agent.init_json_patch.is_some()
                    && self.agent.init_json_patch != self.agent.json_patch
                {
                    warnings.push(format!(
                        "{INIT_JSON_PATCH}: ignored: the native sidecar replaces the init \
                         container and takes {JSON_PATCH}; set keyhole.dev/native-sidecar: \
                         \"false\" for vault-k8s's init container"
                    ));
                }
                let agent = self.agent_container(Role::Native { probe }, warnings)?;
                // First by default, so app init containers can read secrets;
                // `agent-init-first: false` puts it after them.
                self.insert_init_container(self.agent.init_first != Some(false), agent);
            }
            Layout::Classic { init, sidecar } => {
                if init {
                    let agent = self.agent_container(Role::Init, warnings)?;
                    self.insert_init_container(self.agent.init_first == Some(true), agent);
                }
                if sidecar {
                    let agent = self.agent_container(Role::Sidecar, warnings)?;
                    self.add(pointer(&["spec", "containers", "-"]), agent);
                }
            }
        }

        if let Some(share) = self.agent.share_process_namespace
            && self.spec.share_process_namespace != Some(share)
        {
            self.add(
                pointer(&["spec", "shareProcessNamespace"]),
                Item::Bool(share),
            );
        }

        match self.pod.metadata.annotations.as_ref() {
            Some(map) => {
                for key in Annotations::new(map).keys_to_set(STATUS) {
                    let path = pointer(&["metadata", "annotations", &key]);
                    let value = Item::Text(STATUS_INJECTED);
                    if map.contains_key(&key) {
                        self.ops.push(Op::Replace { path, value });
                    } else {
                        self.add(path, value);
                    }
                }
            }
            None => self.add(
                pointer(&["metadata", "annotations"]),
                Item::Annotations(BTreeMap::from([(STATUS.to_string(), STATUS_INJECTED)])),
            ),
        }
        Ok(self.ops)
    }

    fn add(&mut self, path: PointerBuf, value: Item) {
        self.ops.push(Op::Add { path, value });
    }

    /// Appends `items` to the list at `path`, creating the list when the pod has none.
    fn append(&mut self, path: &[&str], exists: bool, items: Vec<Item>) {
        if exists {
            for item in items {
                let mut p = pointer(path);
                p.push_back("-");
                self.add(p, item);
            }
        } else {
            self.add(pointer(path), Item::List(items));
        }
    }

    fn append_mounts(
        &mut self,
        list: &str,
        index: usize,
        container: &Container,
        mounts: Vec<k8s::VolumeMount>,
    ) {
        let index = index.to_string();
        let path = ["spec", list, index.as_str(), "volumeMounts"];
        let mounts = mounts.into_iter().map(Item::Mount).collect();
        self.append(&path, container.volume_mounts.is_some(), mounts);
    }

    fn insert_init_container(&mut self, first: bool, container: Item) {
        match (&self.spec.init_containers, first) {
            (None, _) => self.add(
                pointer(&["spec", "initContainers"]),
                Item::List(vec![container]),
            ),
            (Some(_), true) => self.add(pointer(&["spec", "initContainers", "0"]), container),
            (Some(_), false) => self.add(pointer(&["spec", "initContainers", "-"]), container),
        }
    }

    fn volumes(&self) -> Vec<k8s::Volume> {
        let agent = self.agent;
        let mut volumes = Vec::new();
        let homes = match self.layout {
            Layout::Native { .. } => vec![HOME_SIDECAR_VOLUME],
            Layout::Classic { init, sidecar } => {
                [(init, HOME_INIT_VOLUME), (sidecar, HOME_SIDECAR_VOLUME)]
                    .into_iter()
                    .filter_map(|(wanted, name)| wanted.then_some(name))
                    .collect()
            }
        };
        for home in homes {
            volumes.push(memory_volume(home, HOME_SIZE_LIMIT));
        }
        if agent.service_account_token_volume.is_none() {
            // Without an audience the kubelet asks for the API server's own,
            // which the Vault roles written for vault-k8s accept.
            let token = k8s::ServiceAccountTokenProjection {
                audience: agent.token_audience.clone(),
                expiration_seconds: Some(SA_TOKEN_EXPIRATION_SECONDS),
                path: SA_TOKEN_FILE.to_owned(),
                ..Default::default()
            };
            volumes.push(k8s::Volume {
                name: SA_TOKEN_VOLUME.to_owned(),
                projected: Some(k8s::ProjectedVolumeSource {
                    sources: Some(vec![k8s::VolumeProjection {
                        service_account_token: Some(token),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        for (name, _) in &self.secret_mounts {
            volumes.push(memory_volume(name, &agent.secrets_volume_size_limit));
        }
        if let Some(name) = &agent.configmap {
            volumes.push(k8s::Volume {
                name: CONFIG_VOLUME.to_owned(),
                config_map: Some(k8s::ConfigMapVolumeSource {
                    name: name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let secrets = [
            (TLS_VOLUME, &agent.vault.tls_secret),
            (EXTRA_SECRET_VOLUME, &agent.extra_secret),
        ];
        for (volume, secret) in secrets {
            if let Some(name) = secret {
                volumes.push(k8s::Volume {
                    name: volume.to_owned(),
                    secret: Some(k8s::SecretVolumeSource {
                        secret_name: Some(name.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
        }
        // Last, so that the places of the others stay as vault-k8s has them
        // for JSON patches written against it.
        volumes.push(memory_volume(CACHE_VOLUME, CACHE_SIZE_LIMIT));
        volumes
    }

    fn secret_volume_mounts(&self) -> Vec<k8s::VolumeMount> {
        self.secret_mounts
            .iter()
            .map(|(name, path)| mount(name, path, false))
            .collect()
    }

    /// Where the agent containers mount keyhole's own volumes.
    fn agent_dirs(&self) -> Vec<&str> {
        let mut dirs = vec![
            SA_TOKEN_DIR,
            HOME,
            CACHE_DIR,
            CONFIG_DIR,
            TLS_DIR,
            EXTRA_SECRET_DIR,
        ];
        dirs.extend(self.secret_mounts.iter().map(|(_, path)| path.as_str()));
        dirs
    }

    /// `agent-copy-volume-mounts`: the named container's volume mounts, but
    /// for service-account tokens, as vault-k8s copies them. A mount in one
    /// of the agent's own directories would put the agent's files on
    /// another volume, and is refused.
    fn copied_mounts(&self) -> Result<Vec<k8s::VolumeMount>, Denial> {
        let Some(name) = &self.agent.copy_volume_mounts else {
            return Ok(Vec::new());
        };
        let source = self
            .spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten())
            .find(|c| &c.name == name);
        let dirs = self.agent_dirs();
        let mut copied = Vec::new();
        for mount in source
            .and_then(|c| c.volume_mounts.as_ref())
            .into_iter()
            .flatten()
        {
            if mount.mount_path.to_lowercase().contains("serviceaccount") {
                continue;
            }
            if let Some(dir) = dirs.iter().find(|dir| is_within(&mount.mount_path, dir)) {
                return Err(Denial::new(
                    COPY_VOLUME_MOUNTS,
                    format!(
                        "container {name:?} mounts volume {:?} at {}, in {dir}, where the agent \
                         has its own volume",
                        mount.name, mount.mount_path
                    ),
                ));
            }
            copied.push(k8s::VolumeMount {
                name: mount.name.clone(),
                mount_path: mount.mount_path.clone(),
                read_only: mount.read_only,
                recursive_read_only: mount.recursive_read_only.clone(),
                sub_path: mount.sub_path.clone(),
                sub_path_expr: mount.sub_path_expr.clone(),
                mount_propagation: mount.mount_propagation.clone(),
                ..Default::default()
            });
        }
        Ok(copied)
    }

    /// The agent container for `role`, with the pod author's JSON patch
    /// applied (see [`agent_patch`]).
    fn agent_container(&self, role: Role, warnings: &mut Vec<String>) -> Result<Item, Denial> {
        let container = self.unpatched_agent_container(role);
        // As in vault-k8s; the native sidecar is the long-running agent.
        let (key, patch) = match role {
            Role::Init => (INIT_JSON_PATCH, &self.agent.init_json_patch),
            Role::Sidecar | Role::Native { .. } => (JSON_PATCH, &self.agent.json_patch),
        };
        let Some(patch) = patch else {
            return Ok(Item::Container(Box::new(container)));
        };
        let container = serde_json::to_value(container)
            .map_err(|err| Denial::new(key, format!("cannot write the agent container: {err}")))?;
        let patched = agent_patch::apply(&container, patch, key, &self.agent_dirs())?;
        warnings.push(format!(
            "{key}: applied to container {:?}; keyhole checked that it keeps the agent's image, \
             command, config and volume mounts",
            role.container_name()
        ));
        Ok(Item::Patched(patched))
    }

    /// The agent container for `role`, as keyhole builds it.
    fn unpatched_agent_container(&self, role: Role) -> k8s::Container {
        let agent = self.agent;
        let init = role == Role::Init;
        let mut mounts = vec![
            mount(&self.token_volume, SA_TOKEN_DIR, true),
            mount(role.home_volume(), HOME, false),
        ];
        mounts.extend(self.secret_volume_mounts());
        mounts.extend(self.copied_mounts.iter().cloned());
        let read_only = [
            (agent.configmap.is_some(), CONFIG_VOLUME, CONFIG_DIR),
            (agent.vault.tls_secret.is_some(), TLS_VOLUME, TLS_DIR),
            (
                agent.extra_secret.is_some(),
                EXTRA_SECRET_VOLUME,
                EXTRA_SECRET_DIR,
            ),
        ];
        for (wanted, volume, dir) in read_only {
            if wanted {
                mounts.push(mount(volume, dir, true));
            }
        }
        // Last, as its volume is.
        mounts.push(mount(CACHE_VOLUME, CACHE_DIR, false));

        let mut env = POD_FIELD_ENV
            .iter()
            .map(|(name, field)| k8s::EnvVar {
                name: (*name).to_owned(),
                value_from: Some(k8s::EnvVarSource {
                    field_ref: Some(k8s::ObjectFieldSelector {
                        field_path: (*field).to_owned(),
                        api_version: None,
                    }),
                    ..Default::default()
                }),
                value: None,
            })
            .collect::<Vec<_>>();
        let mut args = None;
        match &self.config {
            None => {
                let file = if init {
                    "config-init.hcl"
                } else {
                    "config.hcl"
                };
                args = Some(vec!["--config".to_owned(), format!("{CONFIG_DIR}/{file}")]);
            }
            Some(config) => {
                let json = if init {
                    agent_config::for_init(config.clone()).to_vault_agent_json()
                } else {
                    config.to_vault_agent_json()
                };
                env.push(env_var(CONFIG_ENV, json));
            }
        }
        env.push(env_var("VAULT_LOG_LEVEL", agent.log_level.name()));
        env.push(env_var("VAULT_LOG_FORMAT", agent.log_format.name()));
        if let Some(timeout) = &agent.vault.client_timeout {
            env.push(env_var("VAULT_CLIENT_TIMEOUT", timeout.as_str()));
        }
        env.extend(proxy_env(agent));
        if self.config.is_none() {
            env.extend(configmap_vault_env(&agent.vault).map(|(name, value)| env_var(name, value)));
        }

        let mut container = k8s::Container {
            name: role.container_name().to_owned(),
            image: Some(agent.image.clone()),
            command: Some(vec![AGENT_PROGRAM.to_owned()]),
            args,
            env: Some(env),
            resources: Some(resources(&agent.requests, &agent.limits)),
            volume_mounts: Some(mounts),
            ..Default::default()
        };
        // The classic init container lives for seconds and serves nothing.
        if let Some(port) = agent.metrics_port.filter(|_| !init) {
            container.ports = Some(vec![k8s::ContainerPort {
                name: Some(METRICS_PORT_NAME.to_owned()),
                container_port: i32::from(port),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]);
        }
        if let Some(run_as) = agent.security {
            container.security_context = Some(k8s::SecurityContext {
                run_as_user: Some(run_as.user),
                run_as_group: Some(run_as.group),
                // Only the user decides: group 0 with another user is
                // OpenShift's usual identity, and the restricted Pod
                // Security Standard allows it.
                run_as_non_root: Some(run_as.user != 0),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(k8s::Capabilities {
                    drop: Some(vec!["ALL".to_owned()]),
                    add: None,
                }),
                seccomp_profile: Some(k8s::SeccompProfile {
                    type_: "RuntimeDefault".to_owned(),
                    localhost_profile: None,
                }),
                ..Default::default()
            });
        }
        if let Role::Native { probe } = role {
            container.restart_policy = Some("Always".to_owned());
            if probe {
                // Kubernetes starts the app containers once this probe
                // passes, that is once every template has rendered.
                container.startup_probe = Some(exec_probe(&["probe"], 1, 1, 300));
            }
            // The probe reads the heartbeat file of the config keyhole
            // writes; a user's config from agent-configmap names none.
            if self.config.is_some() {
                // Restarts an agent whose heartbeat stopped (see
                // keyhole_agent::heartbeat): a wedged one, never one that
                // is waiting out a Vault outage.
                container.liveness_probe = Some(exec_probe(&["probe", "--live"], 10, 5, 3));
            }
        }
        container
    }
}

/// An in-memory `emptyDir` volume.
fn memory_volume(name: &str, size_limit: &str) -> k8s::Volume {
    k8s::Volume {
        name: name.to_owned(),
        empty_dir: Some(k8s::EmptyDirVolumeSource {
            medium: Some("Memory".to_owned()),
            size_limit: Some(Quantity(size_limit.to_owned())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A mount of volume `name` at `path`.
fn mount(name: &str, path: &str, read_only: bool) -> k8s::VolumeMount {
    k8s::VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The environment variable `name` set to `value`.
fn env_var(name: &str, value: impl Into<String>) -> k8s::EnvVar {
    k8s::EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// A probe that runs `keyhole-agent` with `args`.
fn exec_probe(args: &[&str], period: i32, timeout: i32, failures: i32) -> k8s::Probe {
    let command = std::iter::once(AGENT_PROGRAM).chain(args.iter().copied());
    k8s::Probe {
        exec: Some(k8s::ExecAction {
            command: Some(command.map(str::to_owned).collect()),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// `proxy-address` as vault-k8s passes it: `HTTPS_PROXY`, which
/// keyhole-agent's HTTP client reads as Go's does (with `NO_PROXY`), for
/// https Vault addresses only.
fn proxy_env(agent: &AgentSpec) -> Option<k8s::EnvVar> {
    let proxy = agent.vault.proxy_address.as_ref()?;
    Some(env_var("HTTPS_PROXY", proxy.as_str()))
}

/// The pod's own fields the agent gets as vault-k8s gives them, for
/// templates that read them with `env`.
const POD_FIELD_ENV: [(&str, &str); 3] = [
    ("NAMESPACE", "metadata.namespace"),
    ("HOST_IP", "status.hostIP"),
    ("POD_IP", "status.podIP"),
];

/// The `VAULT_*` variables vault-k8s sets on an agent whose config comes
/// from `agent-configmap`: that config may have no `vault` stanza, and the
/// agent then connects as the annotations say. `VAULT_SKIP_VERIFY` is always
/// set, the others only when annotated (the address also from
/// `--vault-addr`). vault-k8s sets `VAULT_MAX_RETRIES` on every agent; the
/// config keyhole writes carries it as `retry { num_retries }` instead.
fn configmap_vault_env(vault: &VaultSpec) -> impl Iterator<Item = (&'static str, String)> {
    let address = Some(vault.address.clone()).filter(|a| !a.is_empty());
    [
        ("VAULT_ADDR", address),
        ("VAULT_CACERT", vault.ca_cert.clone()),
        ("VAULT_CAPATH", vault.ca_path.clone()),
        ("VAULT_CLIENT_CERT", vault.client_cert.clone()),
        ("VAULT_CLIENT_KEY", vault.client_key.clone()),
        ("VAULT_SKIP_VERIFY", Some(vault.tls_skip_verify.to_string())),
        ("VAULT_TLS_SERVER_NAME", vault.tls_server_name.clone()),
        (
            "VAULT_MAX_RETRIES",
            vault.max_retries.map(|n| n.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name, value)))
}

fn resources(
    requests: &BTreeMap<&str, String>,
    limits: &BTreeMap<&str, String>,
) -> k8s::ResourceRequirements {
    let quantities = |map: &BTreeMap<&str, String>| {
        (!map.is_empty()).then(|| {
            map.iter()
                .map(|(name, amount)| ((*name).to_owned(), Quantity(amount.clone())))
                .collect()
        })
    };
    k8s::ResourceRequirements {
        limits: quantities(limits),
        requests: quantities(requests),
        claims: None,
    }
}

/// A JSON pointer from unescaped tokens (`/` and `~` in keys are escaped).
fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

/// The token file name inside the pod volume named by
/// `agent-service-account-token-volume-name`.
fn user_token_file(spec: &PodSpec, name: &str) -> Result<String, Denial> {
    let key = SERVICE_ACCOUNT_TOKEN_VOLUME;
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == name)
        .ok_or_else(|| Denial::new(key, format!("no volume named {name:?} in the pod")))?;
    volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .find_map(|s| s.service_account_token.as_ref())
        .map(|t| t.path.clone())
        .ok_or_else(|| {
            Denial::new(
                key,
                format!("volume {name:?} has no serviceAccountToken projection"),
            )
        })
}
