//! The parser: a pod's annotations and the server's [`Settings`] to an [`AgentSpec`].

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, BTreeSet};

use keyhole_agent::config::{
    ApiProxy, AuthType, Choice, Connections, LogFormat, LogLevel, Telemetry,
};

use super::keys::{
    AGENT_METRICS_PORT, AUTH_CONFIG, AUTH_MAX_BACKOFF, AUTH_MIN_BACKOFF, AUTH_PATH, AUTH_TYPE,
    AUTO_AUTH_EXIT_ON_ERR, CA_CERT, CA_KEY, CACHE_ENABLE, CACHE_EXIT_ON_ERR, CACHE_LISTENER_PORT,
    CACHE_USE_AUTO_AUTH_TOKEN, CLIENT_CERT, CLIENT_KEY, CLIENT_MAX_RETRIES, CLIENT_TIMEOUT,
    COMMAND, CONFIGMAP, CONTAINERS, COPY_VOLUME_MOUNTS, DEFAULT_TEMPLATE, DISABLE_IDLE_CONNECTIONS,
    DISABLE_KEEP_ALIVES, ENABLE_QUIT, ERROR_ON_MISSING_KEY, EXIT_ON_RETRY_FAILURE, EXTRA_SECRET,
    FILE, FREE_TEXT_FAMILIES, Family, IGNORED, IMAGE, INIT_FIRST, INIT_JSON_PATCH, INJECT_TOKEN,
    JSON_PATCH, KNOWN, Key, LEFT_DELIM, LIMITS_CPU, LIMITS_EPHEMERAL, LIMITS_MEM, LOG_FORMAT,
    LOG_LEVEL, NAMESPACE, NATIVE_SIDECAR, PER_SECRET_FAMILIES, PERMS, PRE_POPULATE,
    PRE_POPULATE_ONLY, PRESERVE_SECRET_CASE, PRESERVE_SECRET_CASE_OF, PROXY_ADDRESS, Prefix,
    RELOAD_SIGNAL, REQUESTS_CPU, REQUESTS_EPHEMERAL, REQUESTS_MEM, REVOKE_GRACE,
    REVOKE_ON_SHUTDOWN, RIGHT_DELIM, ROLE, RUN_AS_GROUP, RUN_AS_SAME_USER, RUN_AS_USER, SECRET,
    SECRET_FAMILIES, SECRET_VOLUME_PATH, SECRET_VOLUME_PATH_OF, SERVICE,
    SERVICE_ACCOUNT_TOKEN_VOLUME, SET_SECURITY_CONTEXT, SHARE_PROCESS_NAMESPACE,
    STATIC_SECRET_RENDER_INTERVAL, STATUS, STATUS_INJECTED, TELEMETRY, TEMPLATE, TEMPLATE_FILE,
    TLS_SECRET, TLS_SERVER_NAME, TLS_SKIP_VERIFY,
};
use super::read::{Annotations, Entry};
use super::spec::{
    AgentSpec, ApiListener, AuthSpec, DEFAULT_SECRET_VOLUME_PATH, DefaultTemplate, RunAs, Secret,
    TemplateText, VaultSpec, token_file,
};
use super::values;
use crate::denial::{Denial, Result};
use crate::limits::{
    MAX_ANNOTATION_BYTES, MAX_JSON_PATCH_BYTES, MAX_JSON_PATCH_OPS, MAX_SECRET_VOLUMES,
    MAX_SECRETS, MAX_TEMPLATE_BYTES,
};
use crate::pod::Pod;
use crate::settings::Settings;

/// Parses the annotations of `pod`, filling in `settings` where they are silent.
pub fn parse(pod: &Pod, settings: &Settings) -> Result<AgentSpec> {
    let empty = BTreeMap::new();
    let map = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let a = Annotations::new(map);
    check_bounds(map, &a)?;
    a.all_agree()?;
    let mut warnings = Vec::new();

    let Secrets {
        list: secrets,
        volume_path: secret_volume_path,
        inject_token,
    } = secrets(&a, settings, &mut warnings)?;
    warn_about_unknown(&a, &secrets, &mut warnings);

    let containers = a
        .get(CONTAINERS)
        .map(|list| containers(pod, list))
        .transpose()?;
    let copy_volume_mounts = a
        .non_empty(COPY_VOLUME_MOUNTS)
        .map(|entry| copy_volume_mounts(pod, entry))
        .transpose()?;
    let native_sidecar = a.bool(NATIVE_SIDECAR, settings.native_sidecar)?;
    let pre_populate_only = a.bool(PRE_POPULATE_ONLY, false)?;
    let revoke_on_shutdown = a.bool(REVOKE_ON_SHUTDOWN, settings.revoke_on_shutdown)?;
    let revoke_grace = revoke_grace(
        &a,
        revoke_on_shutdown,
        native_sidecar && !pre_populate_only,
        &mut warnings,
    )?;

    // With `agent-configmap` the ConfigMap's own config logs in, so the login
    // annotations are not required, as in vault-k8s.
    let own_config = a.non_empty(CONFIGMAP).is_some();
    let auth = auth(&a, settings, own_config, &mut warnings)?;
    let vault = vault_spec(&a, settings)?;
    if vault.address.is_empty() {
        return Err(Denial::new(
            SERVICE,
            "no Vault address: set this annotation or the injector's --vault-addr",
        ));
    }

    let security = security(&a, pod, settings)?;
    let share_process_namespace = share_process_namespace(&a, pod, &secrets, &mut warnings)?;

    let image = match a.non_empty(IMAGE) {
        // vault-k8s runs Vault Agent from the Vault image; keyhole's agent
        // is in its own image, so a Vault image would start no agent.
        Some(e) if values::is_vault_image(e.value) => {
            warnings.push(format!(
                "{}: {:?} is a Vault or OpenBao image; keyhole runs its agent from {:?} instead",
                e.key, e.value, settings.agent_image
            ));
            settings.agent_image.clone()
        }
        Some(e) => e.value.to_owned(),
        None => settings.agent_image.clone(),
    };

    let (requests, limits) = resources(&a, settings)?;

    let log_level = match a.non_empty(LOG_LEVEL) {
        Some(entry) => entry.check(|v| {
            LogLevel::from_name(v).ok_or_else(|| {
                format!("{v:?} is not a log level (trace, debug, info, warn or error)")
            })
        })?,
        None => settings.log_level,
    };
    let log_format = match a.non_empty(LOG_FORMAT) {
        Some(entry) => entry.check(|v| {
            LogFormat::from_name(v)
                .ok_or_else(|| format!("{v:?} is not a log format (standard or json)"))
        })?,
        None => settings.log_format,
    };

    let connections = Connections {
        no_idle: match a.non_empty(DISABLE_IDLE_CONNECTIONS) {
            Some(entry) => entry.check(values::agent_parts)?,
            None => settings.disable_idle_connections,
        },
        no_keep_alive: match a.non_empty(DISABLE_KEEP_ALIVES) {
            Some(entry) => entry.check(values::agent_parts)?,
            None => settings.disable_keep_alives,
        },
    };

    let telemetry = telemetry(&a, &mut warnings);
    let api_listener = api_listener(&a, pre_populate_only)?;
    let metrics_port = metrics_port(
        &a,
        pod,
        settings,
        MetricsContext {
            pre_populate_only,
            own_config,
            api_listener,
        },
        &mut warnings,
    )?;

    let static_secret_render_interval = match a.duration(STATIC_SECRET_RENDER_INTERVAL)? {
        Some(d) => Some(d),
        None => settings.static_secret_render_interval.clone(),
    };

    Ok(AgentSpec {
        inject_token,
        secret_volume_path,
        containers,
        native_sidecar,
        pre_populate: a.bool(PRE_POPULATE, true)?,
        pre_populate_only,
        init_first: a.opt_bool(INIT_FIRST)?,
        image,
        configmap: non_empty_owned(&a, CONFIGMAP),
        extra_secret: non_empty_owned(&a, EXTRA_SECRET),
        vault,
        auth,
        requests,
        limits,
        security,
        share_process_namespace,
        revoke_on_shutdown,
        revoke_grace,
        api_listener,
        metrics_port,
        cache_exit_on_err: a.bool(CACHE_EXIT_ON_ERR, false)?,
        exit_on_retry_failure: a.bool(EXIT_ON_RETRY_FAILURE, settings.exit_on_retry_failure)?,
        static_secret_render_interval,
        log_level,
        log_format,
        connections,
        telemetry,
        service_account_token_volume: non_empty_owned(&a, SERVICE_ACCOUNT_TOKEN_VOLUME),
        token_audience: settings.token_audience.clone(),
        secrets_volume_size_limit: settings.secrets_volume_size_limit.clone(),
        secrets,
        copy_volume_mounts,
        json_patch: json_patch(&a, JSON_PATCH)?,
        init_json_patch: json_patch(&a, INIT_JSON_PATCH)?,
        warnings,
    })
}

/// `agent-json-patch` or `agent-init-json-patch`: an RFC 6902 JSON patch,
/// none when empty as in vault-k8s. A malformed one is refused with where it
/// went wrong, not with its text, which may hold a value the pod author
/// meant for the agent only.
fn json_patch(a: &Annotations<'_>, key: Key) -> Result<Option<json_patch::Patch>> {
    let Some(entry) = a.non_empty(key) else {
        return Ok(None);
    };
    if entry.value.len() > MAX_JSON_PATCH_BYTES {
        return Err(entry.deny(format!(
            "{} bytes of JSON patch, over the limit of {MAX_JSON_PATCH_BYTES}",
            entry.value.len()
        )));
    }
    let patch: json_patch::Patch = serde_json::from_str(entry.value).map_err(|err| {
        let what = match err.classify() {
            serde_json::error::Category::Data => {
                "a list of operations, each with \"op\", \"path\" and what the op needs"
            }
            _ => "JSON",
        };
        entry.deny(format!(
            "not an RFC 6902 JSON patch: expected {what} at line {} column {}",
            err.line(),
            err.column()
        ))
    })?;
    if patch.0.len() > MAX_JSON_PATCH_OPS {
        return Err(entry.deny(format!(
            "{} operations, over the limit of {MAX_JSON_PATCH_OPS}",
            patch.0.len()
        )));
    }
    Ok(Some(patch))
}

/// `agent-copy-volume-mounts`: the name of an app container or init
/// container, which must exist.
fn copy_volume_mounts(pod: &Pod, entry: Entry<'_>) -> Result<String> {
    let name = entry.value.trim();
    let exists = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .any(|c| c.name == name);
    if !exists {
        return Err(entry.deny(format!(
            "no container or init container named {name:?} in the pod"
        )));
    }
    Ok(name.to_owned())
}

/// vault-k8s's default `agent-revoke-grace`, in seconds.
const DEFAULT_REVOKE_GRACE: u64 = 5;

/// `agent-revoke-grace`: the seconds between SIGTERM and revoking, so that
/// an app that stops at the same time can still use its credentials. Only
/// the classic sidecar waits: a native sidecar gets SIGTERM once the app
/// containers have stopped.
fn revoke_grace(
    a: &Annotations<'_>,
    revoke_on_shutdown: bool,
    native: bool,
    warnings: &mut Vec<String>,
) -> Result<u64> {
    let waits = revoke_on_shutdown && !native;
    let Some(entry) = a.get(REVOKE_GRACE) else {
        return Ok(if waits { DEFAULT_REVOKE_GRACE } else { 0 });
    };
    let seconds = entry.check(values::grace_seconds)?;
    if !revoke_on_shutdown {
        warnings.push(format!(
            "{}: ignored: {REVOKE_ON_SHUTDOWN} is off, so the agent revokes nothing",
            entry.key
        ));
    } else if native {
        warnings.push(format!(
            "{}: ignored: the native sidecar gets SIGTERM only once the app containers have \
             stopped, so it revokes at once",
            entry.key
        ));
    }
    Ok(if waits { seconds } else { 0 })
}

/// vault-k8s's default `agent-cache-listener-port`.
const DEFAULT_LISTENER_PORT: u16 = 8200;

/// The long-running agent's listener on `127.0.0.1`, as vault-k8s writes it:
/// with `agent-cache-enable` it proxies the app's Vault requests, and with
/// `agent-enable-quit` it serves `POST /agent/v1/quit`. A pod with no
/// long-running agent (`agent-pre-populate-only`) gets none.
fn api_listener(a: &Annotations<'_>, pre_populate_only: bool) -> Result<Option<ApiListener>> {
    let cache = a.bool(CACHE_ENABLE, false)?;
    let enable_quit = a.bool(ENABLE_QUIT, false)?;
    let proxy = match a.non_empty(CACHE_USE_AUTO_AUTH_TOKEN) {
        Some(entry) => entry.check(values::use_auto_auth_token)?,
        None => ApiProxy::AutoAuthIfMissing,
    };
    let port = match a.non_empty(CACHE_LISTENER_PORT) {
        Some(entry) => entry.check(values::port)?,
        None => DEFAULT_LISTENER_PORT,
    };
    if pre_populate_only || !(cache || enable_quit) {
        return Ok(None);
    }
    Ok(Some(ApiListener {
        port,
        proxy: cache.then_some(proxy),
        enable_quit,
    }))
}

/// What decides whether the agent serves metrics, besides the port.
struct MetricsContext {
    /// No long-running agent, so nothing to serve metrics.
    pre_populate_only: bool,
    /// `agent-configmap`: the user's config, which keyhole does not change.
    own_config: bool,
    /// The agent's localhost listener, whose port the metrics port must not take.
    api_listener: Option<ApiListener>,
}

/// `keyhole.dev/agent-metrics-port`, else the injector's
/// `--agent-metrics-port`: the port of the pod IP where the long-running
/// agent serves its metrics. A port taken by a container of the pod or by
/// the agent's localhost listener denies the pod when annotated; as the
/// injector's default it only warns, so turning on a server-wide default
/// never stops pods that were admitted before. Nor does the default apply to
/// a pod on the node's network, where other pods' ports are unknown.
fn metrics_port(
    a: &Annotations<'_>,
    pod: &Pod,
    settings: &Settings,
    context: MetricsContext,
    warnings: &mut Vec<String>,
) -> Result<Option<u16>> {
    let annotated = a.non_empty(AGENT_METRICS_PORT);
    let port = match annotated {
        Some(entry) => entry.check(values::metrics_port)?,
        None => settings.agent_metrics_port,
    };
    let Some(port) = port else {
        return Ok(None);
    };
    let unserved = if context.pre_populate_only {
        Some(format!(
            "{PRE_POPULATE_ONLY} leaves no long-running agent to serve metrics"
        ))
    } else if context.own_config {
        Some(format!(
            "the agent runs the config of {CONFIGMAP}, which needs a listener of its own"
        ))
    } else {
        None
    };
    if let Some(why) = unserved {
        if let Some(entry) = annotated {
            warnings.push(format!("{}: ignored: {why}", entry.key));
        }
        return Ok(None);
    }
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    if host_network && annotated.is_none() {
        warnings.push(format!(
            "{AGENT_METRICS_PORT}: the pod uses the node's network, where the injector's \
             default port {port} may be taken, so the agent serves no metrics; set this \
             annotation to a port free on the node to serve them"
        ));
        return Ok(None);
    }
    let Some(taker) = port_taker(pod, port, context.api_listener) else {
        return Ok(Some(port));
    };
    match annotated {
        Some(entry) => Err(entry.deny(format!("port {port} is already taken by {taker}"))),
        None => {
            warnings.push(format!(
                "{AGENT_METRICS_PORT}: the injector's default port {port} is already taken by \
                 {taker}, so the agent serves no metrics; set this annotation to a free port, or \
                 to \"false\""
            ));
            Ok(None)
        }
    }
}

/// What already listens on TCP `port` in the pod: a container that declares
/// it, or the agent's localhost listener.
fn port_taker(pod: &Pod, port: u16, api_listener: Option<ApiListener>) -> Option<String> {
    if api_listener.is_some_and(|api| api.port == port) {
        return Some(format!("the agent's listener ({CACHE_LISTENER_PORT})"));
    }
    pod.spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| {
            c.ports.iter().flatten().any(|p| {
                p.container_port == i32::from(port)
                    && p.protocol.as_deref().is_none_or(|proto| proto == "TCP")
            })
        })
        .map(|c| format!("container {:?}", c.name))
}

/// The value of `key`, unless absent or blank.
fn non_empty_owned(a: &Annotations<'_>, key: Key) -> Option<String> {
    a.non_empty(key).map(|e| e.value.to_owned())
}

/// Checks what the rest of parsing relies on: names that Kubernetes accepts
/// under our prefixes (so a secret's name is a plain file name), and no
/// control characters in the values keyhole uses, templates and commands
/// aside. Their total size, bounded when the pod was read ([`crate::pod`]),
/// must leave room for the status annotation the patch sets.
fn check_bounds(map: &BTreeMap<String, String>, a: &Annotations<'_>) -> Result<()> {
    // The patch sets agent-inject-status, and the patched pod must still be
    // one the API server stores. One limit counts every prefix.
    let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    let replaced: usize = a
        .written(STATUS)
        .map(|(_, e)| e.key.len() + e.value.len())
        .sum();
    let status = a.keys_to_set(STATUS);
    let set: usize = status.iter().map(|k| k.len() + STATUS_INJECTED.len()).sum();
    let patched = bytes - replaced + set;
    if patched > MAX_ANNOTATION_BYTES {
        return Err(Denial::new(
            "metadata.annotations",
            format!(
                "{patched} bytes of annotations once {} is set, over the limit of \
                 {MAX_ANNOTATION_BYTES}",
                status.join(" and ")
            ),
        ));
    }
    for (prefix, name, entry) in a.ours() {
        if !values::is_qualified_name(name) {
            return Err(entry.deny(
                "not a valid annotation name: after the prefix Kubernetes takes at most 63 \
                 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit",
            ));
        }
        let in_family = |family: &Family| family.suffix(prefix, name).is_some();
        // JSON patches are JSON, where line breaks are whitespace.
        let free_text = (FREE_TEXT_FAMILIES.iter().any(in_family) && !in_family(&TEMPLATE_FILE))
            || [JSON_PATCH, INIT_JSON_PATCH]
                .iter()
                .any(|key| key.is(prefix, name));
        // Annotations keyhole ignores may hold anything: only what keyhole
        // uses is held to this.
        let used = prefix == Prefix::Keyhole
            || KNOWN.iter().any(|k| k.is(prefix, name))
            || in_family(&AUTH_CONFIG)
            || SECRET_FAMILIES
                .iter()
                .chain(&PER_SECRET_FAMILIES)
                .any(in_family);
        if used && !free_text {
            entry.check(values::no_control_chars)?;
        }
    }
    Ok(())
}

/// Agent resource requests and limits by resource name; an empty annotation
/// removes the server's default.
type ResourceList = BTreeMap<&'static str, String>;

fn resources(a: &Annotations<'_>, settings: &Settings) -> Result<(ResourceList, ResourceList)> {
    let defaults = [
        (
            "cpu",
            REQUESTS_CPU,
            Some(&settings.cpu_request),
            LIMITS_CPU,
            Some(&settings.cpu_limit),
        ),
        (
            "memory",
            REQUESTS_MEM,
            Some(&settings.mem_request),
            LIMITS_MEM,
            Some(&settings.mem_limit),
        ),
        (
            "ephemeral-storage",
            REQUESTS_EPHEMERAL,
            settings.ephemeral_request.as_ref(),
            LIMITS_EPHEMERAL,
            settings.ephemeral_limit.as_ref(),
        ),
    ];
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for (resource, request_key, request, limit_key, limit) in defaults {
        let request = a.quantity(request_key, request.map(String::as_str))?;
        requests.extend(request.map(|q| (resource, q)));
        let limit = a.quantity(limit_key, limit.map(String::as_str))?;
        limits.extend(limit.map(|q| (resource, q)));
    }
    Ok((requests, limits))
}

/// The secrets, and the settings that apply to all of them.
struct Secrets {
    /// The secrets, ordered by name.
    list: Vec<Secret>,
    /// `secret-volume-path`: where secrets are mounted unless one says otherwise.
    volume_path: String,
    /// `agent-inject-token`: the Vault token is written next to the secrets.
    inject_token: bool,
}

/// Collects the secrets and their per-secret settings.
fn secrets(
    a: &Annotations<'_>,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<Secrets> {
    // Secrets are declared by a non-empty secret, template-file or template
    // annotation, as in vault-k8s; the raw name is what follows the stem.
    let mut raw_names = BTreeSet::new();
    for (prefix, name, entry) in a.ours() {
        if let Some(raw) = SECRET_FAMILIES
            .iter()
            .find_map(|family| family.suffix(prefix, name))
            && !raw.is_empty()
            && !entry.value.trim().is_empty()
        {
            raw_names.insert(raw.to_owned());
        }
    }
    if raw_names.len() > MAX_SECRETS {
        return Err(Denial::new(
            SECRET,
            format!(
                "{} secrets, over the limit of {MAX_SECRETS} per pod",
                raw_names.len()
            ),
        ));
    }

    let default_template = match a.get(DEFAULT_TEMPLATE) {
        Some(entry) => entry.check(|v| {
            DefaultTemplate::from_name(&v.to_lowercase())
                .ok_or_else(|| format!("{v:?} is not a default template (map or json)"))
        })?,
        None => settings.default_template,
    };
    let volume_path = match a.get(SECRET_VOLUME_PATH) {
        Some(entry) => entry.check(values::mount_path)?,
        None => DEFAULT_SECRET_VOLUME_PATH.to_owned(),
    };
    let preserve_case = a.bool(PRESERVE_SECRET_CASE, false)?;

    let secrets = raw_names
        .into_iter()
        .map(|raw| {
            let per = |family: Family| a.member(family, &raw);
            let flag = |family| per(family).map(|e| e.check(values::boolean)).transpose();
            let preserve = flag(PRESERVE_SECRET_CASE_OF)?.unwrap_or(preserve_case);
            let name = if preserve {
                raw.clone()
            } else {
                raw.to_lowercase()
            };
            let path_entry = per(SECRET);
            let path = path_entry.map_or("", |e| e.value).trim().to_owned();
            let (template, annotation) = match (per(TEMPLATE), per(TEMPLATE_FILE), path_entry) {
                (Some(text), _, _) if text.value.len() > MAX_TEMPLATE_BYTES => {
                    return Err(text.deny(format!(
                        "{} bytes of template, over the limit of {MAX_TEMPLATE_BYTES}",
                        text.value.len()
                    )));
                }
                (Some(text), _, _) if !text.value.trim().is_empty() => {
                    (TemplateText::Inline(text.value.to_owned()), text.key)
                }
                (_, Some(file), _) if !file.value.trim().is_empty() => {
                    (TemplateText::File(file.value.to_owned()), file.key)
                }
                (_, _, Some(entry)) if !path.is_empty() => {
                    entry.check(|_| values::default_template_path(&path))?;
                    (default_template.text(), entry.key)
                }
                _ => return Err(Denial::new(SECRET.key(&raw), "empty Vault path")),
            };
            let mount_path = match per(SECRET_VOLUME_PATH_OF) {
                Some(entry) => entry.check(values::mount_path)?,
                None => volume_path.clone(),
            };
            let file = file_path(per(FILE), &name, &mount_path, warnings)?;
            let perms = per(PERMS).map(|e| e.check(values::perms)).transpose()?;
            let command = per(COMMAND).map(|e| e.check(values::command)).transpose()?;
            if let Some(entry) = per(COMMAND)
                && let Some(note) = values::command_note(entry.value)
            {
                warnings.push(format!("{}: {note}", entry.key));
            }
            let error_on_missing_key = flag(ERROR_ON_MISSING_KEY)?.unwrap_or(false);
            let is_default = matches!(
                template,
                TemplateText::DefaultMap | TemplateText::DefaultJson
            );
            let mut delimiter = |family: Family, default: &str| match per(family) {
                Some(entry) if entry.value.is_empty() => Err(entry.deny("empty delimiter")),
                // keyhole writes the default template with the default
                // delimiters; vault-k8s would print its source text instead.
                Some(entry) if is_default => {
                    warnings.push(format!(
                        "{}: ignored: secret {raw:?} uses the default template, which keyhole \
                         writes with {default:?}",
                        entry.key
                    ));
                    Ok(default.to_owned())
                }
                Some(entry) => Ok(entry.value.to_owned()),
                None => Ok(default.to_owned()),
            };
            let reload = per(RELOAD_SIGNAL)
                .map(|e| e.check(values::reload))
                .transpose()?;
            Ok(Secret {
                annotation: annotation.to_owned(),
                left_delimiter: delimiter(LEFT_DELIM, "{{")?,
                right_delimiter: delimiter(RIGHT_DELIM, "}}")?,
                raw_name: raw,
                name,
                path,
                template,
                mount_path,
                file,
                perms,
                command,
                error_on_missing_key,
                reload,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let volumes: BTreeSet<&str> = std::iter::once(volume_path.as_str())
        .chain(secrets.iter().map(|s| s.mount_path.as_str()))
        .collect();
    if volumes.len() > MAX_SECRET_VOLUMES {
        return Err(Denial::new(
            SECRET_VOLUME_PATH_OF,
            format!(
                "{} distinct secret volume paths, over the limit of {MAX_SECRET_VOLUMES} per pod",
                volumes.len()
            ),
        ));
    }
    let inject_token = a.bool(INJECT_TOKEN, false)?;
    check_unique_destinations(&secrets, inject_token.then(|| token_file(&volume_path)))?;
    Ok(Secrets {
        list: secrets,
        volume_path,
        inject_token,
    })
}

/// Two secrets writing one file would overwrite each other on every render,
/// and a secret written over the token sink would swap the Vault token and
/// a secret back and forth.
fn check_unique_destinations(secrets: &[Secret], token_sink: Option<String>) -> Result<()> {
    let mut written: BTreeMap<String, &str> = BTreeMap::new();
    for secret in secrets {
        let destination = secret.destination();
        let key = || &secret.annotation;
        if token_sink.as_ref() == Some(&destination) {
            return Err(Denial::new(
                key(),
                format!("writes {destination}, where {INJECT_TOKEN} writes the Vault token"),
            ));
        }
        match written.entry(destination) {
            MapEntry::Occupied(first) => {
                return Err(Denial::new(
                    key(),
                    format!(
                        "writes {}, as secret {:?} does already",
                        first.key(),
                        first.get()
                    ),
                ));
            }
            MapEntry::Vacant(entry) => {
                entry.insert(&secret.raw_name);
            }
        }
    }
    Ok(())
}

/// `agent-inject-file-<name>`: the secret's file path under its volume.
/// Empty keeps the default name and a leading `/` stays under the volume,
/// as in vault-k8s; both are worth a warning, since neither is what the
/// value seems to say.
fn file_path(
    entry: Option<Entry<'_>>,
    name: &str,
    mount_path: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<String>> {
    let Some(entry) = entry else {
        return Ok(None);
    };
    if entry.value.trim().is_empty() {
        warnings.push(format!(
            "{}: empty, so the secret is written to {mount_path}/{name}, its default name, \
             as vault-k8s does",
            entry.key
        ));
        return Ok(None);
    }
    let (path, absolute) = entry.check(values::file_path)?;
    if absolute {
        warnings.push(format!(
            "{}: {:?} is written to {mount_path}/{path}, inside the secrets volume, as vault-k8s \
             does",
            entry.key, entry.value
        ));
    }
    Ok(Some(path))
}

/// `agent-telemetry-<param>`, vault-k8s's `telemetry` stanza (dashes in the
/// parameter read as underscores): the StatsD settings keyhole-agent sends
/// its metrics with. Any other parameter is ignored with a warning. A value
/// of the wrong type drops them all, with a warning, as vault-k8s drops the
/// whole stanza when it cannot decode it.
fn telemetry(a: &Annotations<'_>, warnings: &mut Vec<String>) -> Telemetry {
    let mut telemetry = Telemetry::default();
    for (param, entry) in a.members(TELEMETRY) {
        let key = entry.key;
        let read = match param.replace('-', "_").as_str() {
            "statsd_address" => values::telemetry_address(entry.value)
                .map(|address| telemetry.statsd = Some(address)),
            "dogstatsd_addr" => values::telemetry_address(entry.value)
                .map(|address| telemetry.dogstatsd = Some(address)),
            "dogstatsd_tags" => {
                values::dogstatsd_tags(entry.value).map(|tags| telemetry.dogstatsd_tags = tags)
            }
            "enable_hostname_label" => {
                values::boolean(entry.value).map(|label| telemetry.hostname_label = label)
            }
            _ => {
                warnings.push(format!(
                    "{key}: ignored: keyhole-agent sends its metrics only to StatsD and \
                     DogStatsD (agent-telemetry-statsd-address, -dogstatsd-addr, \
                     -dogstatsd-tags, -enable-hostname-label) and serves them for Prometheus \
                     at /agent/v1/metrics"
                ));
                Ok(())
            }
        };
        if let Err(reason) = read {
            warnings.push(format!(
                "{key}: {reason}; so the agents send their metrics nowhere, as vault-k8s \
                 drops the whole telemetry stanza"
            ));
            return Telemetry::default();
        }
    }
    telemetry
}

/// Adds a warning for every annotation under our prefixes that keyhole does not act on.
fn warn_about_unknown(a: &Annotations<'_>, secrets: &[Secret], warnings: &mut Vec<String>) {
    let is_secret = |raw: &str| secrets.iter().any(|s| s.raw_name == raw);
    for (prefix, name, Entry { key, value }) in a.ours() {
        let in_family = |family: &Family| family.suffix(prefix, name).is_some();
        if KNOWN.iter().any(|k| k.is(prefix, name)) {
            continue;
        }
        if let Some((_, why)) = IGNORED.iter().find(|(k, _)| k.is(prefix, name)) {
            warnings.push(format!("{key}: ignored: {why}"));
            continue;
        }
        if in_family(&TELEMETRY) {
            // Read, or warned about, by `telemetry`.
            continue;
        }
        if let Some((family, raw)) = SECRET_FAMILIES
            .iter()
            .find_map(|family| Some((family, family.suffix(prefix, name)?)))
        {
            if value.trim().is_empty() {
                warn_about_empty(key, *family, raw, secrets, warnings);
            }
            continue;
        }
        if AUTH_CONFIG
            .suffix(prefix, name)
            .is_some_and(|p| !p.is_empty())
        {
            continue;
        }
        if let Some(raw) = PER_SECRET_FAMILIES
            .iter()
            .find_map(|family| family.suffix(prefix, name))
        {
            if !is_secret(raw) {
                warnings.push(format!(
                    "{key}: ignored: no secret {raw:?} ({})",
                    a.spell(&SECRET.key(raw))
                ));
            }
            continue;
        }
        warnings.push(format!("{key}: unknown annotation, ignored"));
    }
}

/// An empty secret, template or template-file annotation declares nothing,
/// as in vault-k8s; say what that means for the secret, so that none goes
/// missing without a word.
fn warn_about_empty(
    key: &str,
    family: Family,
    raw: &str,
    secrets: &[Secret],
    warnings: &mut Vec<String>,
) {
    match secrets.iter().find(|s| s.raw_name == raw) {
        None => warnings.push(format!(
            "{key}: empty, so it declares no secret and no file {raw:?} is written"
        )),
        Some(secret)
            if family != SECRET
                && matches!(
                    secret.template,
                    TemplateText::DefaultMap | TemplateText::DefaultJson
                ) =>
        {
            warnings.push(format!(
                "{key}: empty, so secret {raw:?} is written with the default template of {:?}",
                secret.path
            ));
        }
        Some(_) => {}
    }
}

/// `agent-inject-containers`: comma-separated names of app containers.
fn containers(pod: &Pod, list: Entry<'_>) -> Result<Vec<String>> {
    let names: Vec<String> = list
        .value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let existing: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| c.name.as_str())
        .collect();
    if let Some(missing) = names.iter().find(|n| !existing.contains(&n.as_str())) {
        return Err(list.deny(format!("no container named {missing:?} in the pod")));
    }
    Ok(names)
}

fn auth(
    a: &Annotations<'_>,
    settings: &Settings,
    own_config: bool,
    warnings: &mut Vec<String>,
) -> Result<AuthSpec> {
    let kind = match a.non_empty(AUTH_TYPE) {
        Some(entry) => entry.check(|v| {
            AuthType::from_name(v).ok_or_else(|| {
                format!(
                    "keyhole-agent does not support auth type {v:?} (supported: {})",
                    AuthType::spellings()
                )
            })
        })?,
        None => settings.auth_type,
    };
    let path = a
        .non_empty(AUTH_PATH)
        .map_or(settings.auth_path.as_str(), |e| e.value);
    let mut config = BTreeMap::new();
    for (param, entry) in a
        .members(AUTH_CONFIG)
        .filter(|(param, _)| !param.is_empty())
    {
        // Vault Agent reads an empty parameter as unset, such as a token
        // path of "" as the default path.
        if entry.value.trim().is_empty() {
            warnings.push(format!(
                "{}: empty, so the {kind} auth method's default applies",
                entry.key
            ));
            continue;
        }
        config.insert(param.replace('-', "_"), entry.value.to_owned());
    }
    let mut role = a.non_empty(ROLE);
    let needs_role = matches!(kind, AuthType::Kubernetes | AuthType::Jwt);
    if !needs_role && let Some(ignored) = role.take() {
        let hint = if kind == AuthType::Cert {
            format!(
                " (to log in as one certificate role, set {})",
                a.spell(&AUTH_CONFIG.key("name"))
            )
        } else {
            String::new()
        };
        warnings.push(format!(
            "{}: ignored: the {kind} auth method takes no role{hint}",
            ignored.key
        ));
    }
    if needs_role && role.is_none() && !config.contains_key("role") && !own_config {
        return Err(Denial::new(
            ROLE,
            format!("the {kind} auth method needs a Vault role"),
        ));
    }
    let required_param = match kind {
        AuthType::AppRole => Some("role_id_file_path"),
        AuthType::TokenFile => Some("token_file_path"),
        AuthType::Kubernetes | AuthType::Jwt | AuthType::Cert => None,
    };
    if let Some(param) = required_param.filter(|p| !own_config && !config.contains_key(*p)) {
        return Err(Denial::new(
            AUTH_CONFIG.key(&param.replace('_', "-")),
            format!("the {kind} auth method needs this annotation"),
        ));
    }
    let backoff = |key: Key, flag: &str, default: &Option<String>| match a.duration(key)? {
        Some(d) => Ok(Some(d)),
        None => default
            .as_deref()
            .map(|d| values::duration(d).map_err(|reason| Denial::new(flag, reason)))
            .transpose(),
    };
    Ok(AuthSpec {
        min_backoff: backoff(
            AUTH_MIN_BACKOFF,
            "--auth-min-backoff",
            &settings.auth_min_backoff,
        )?,
        max_backoff: backoff(
            AUTH_MAX_BACKOFF,
            "--auth-max-backoff",
            &settings.auth_max_backoff,
        )?,
        kind,
        path: path.to_owned(),
        role: role.map(|e| e.value.to_owned()),
        config,
        exit_on_err: a.bool(AUTO_AUTH_EXIT_ON_ERR, false)?,
    })
}

fn vault_spec(a: &Annotations<'_>, settings: &Settings) -> Result<VaultSpec> {
    let owned = |key| non_empty_owned(a, key);
    let max_retries = a
        .non_empty(CLIENT_MAX_RETRIES)
        .map(|e| e.check(values::retries))
        .transpose()?;
    let client_timeout = a
        .non_empty(CLIENT_TIMEOUT)
        .map(|e| e.check(values::client_timeout))
        .transpose()?;
    Ok(VaultSpec {
        address: owned(SERVICE)
            .or_else(|| settings.vault_addr.clone())
            .unwrap_or_default(),
        namespace: owned(NAMESPACE),
        ca_cert: owned(CA_CERT),
        ca_path: owned(CA_KEY),
        client_cert: owned(CLIENT_CERT),
        client_key: owned(CLIENT_KEY),
        tls_secret: owned(TLS_SECRET),
        tls_server_name: owned(TLS_SERVER_NAME),
        tls_skip_verify: a.bool(TLS_SKIP_VERIFY, false)?,
        max_retries,
        client_timeout,
        proxy_address: a
            .non_empty(PROXY_ADDRESS)
            .map(|e| e.check(values::proxy_address))
            .transpose()?,
    })
}

/// The agent's user and group, following vault-k8s: the settings' default
/// unless annotated; annotating a user or group turns the security context on
/// when the settings turned it off.
fn security(a: &Annotations<'_>, pod: &Pod, settings: &Settings) -> Result<Option<RunAs>> {
    let run_as_annotated = [RUN_AS_USER, RUN_AS_GROUP, RUN_AS_SAME_USER]
        .into_iter()
        .any(|key| a.get(key).is_some());
    let set = a
        .opt_bool(SET_SECURITY_CONTEXT)?
        .unwrap_or(settings.set_security_context || run_as_annotated);
    let mut user = a.id(RUN_AS_USER, settings.run_as_user)?;
    let group = a.id(RUN_AS_GROUP, settings.run_as_group)?;
    if a.bool(RUN_AS_SAME_USER, settings.run_as_same_user)? {
        let first = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .ok_or_else(|| Denial::new(RUN_AS_SAME_USER, "the pod has no containers"))?;
        let uid = first
            .security_context
            .as_ref()
            .and_then(|sc| sc.run_as_user)
            .ok_or_else(|| {
                Denial::new(
                    RUN_AS_SAME_USER,
                    format!(
                        "container {:?} sets no securityContext.runAsUser",
                        first.name
                    ),
                )
            })?;
        if uid == 0 {
            return Err(Denial::new(
                RUN_AS_SAME_USER,
                format!(
                    "container {:?} runs as root, the agent must not",
                    first.name
                ),
            ));
        }
        user = uid;
    }
    Ok(set.then_some(RunAs { user, group }))
}

/// `agent-share-process-namespace`, and the process namespace that reload
/// signals need.
fn share_process_namespace(
    a: &Annotations<'_>,
    pod: &Pod,
    secrets: &[Secret],
    warnings: &mut Vec<String>,
) -> Result<Option<bool>> {
    let pod_value = pod.spec.as_ref().and_then(|s| s.share_process_namespace);
    let requested = a.opt_bool(SHARE_PROCESS_NAMESPACE)?;
    if requested == Some(true) && pod_value == Some(false) {
        return Err(Denial::new(
            SHARE_PROCESS_NAMESPACE,
            "the pod sets shareProcessNamespace: false, refusing to enable it",
        ));
    }
    if let Some(secret) = secrets.iter().find(|s| s.reload.is_some()) {
        let key = RELOAD_SIGNAL.key(&secret.raw_name);
        if pod_value == Some(false) || requested == Some(false) {
            return Err(Denial::new(
                key,
                "signalling a process needs shareProcessNamespace: true, which the pod turns off",
            ));
        }
        if pod_value != Some(true) {
            warnings.push(format!(
                "{key}: turns on shareProcessNamespace for the whole pod; containers that run \
                 as the agent's user can read its Vault token through /proc"
            ));
        }
        return Ok(Some(true));
    }
    Ok(requested)
}
