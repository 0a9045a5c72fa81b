//! Pod annotations (`vault.hashicorp.com/*`, `keyhole.dev/*`) parsed into a typed [`AgentSpec`].
//!
//! Meanings and defaults follow the Vault Agent Injector (hashicorp/vault-k8s).
//! Parsing is strict: a value that is not exactly what an annotation takes is a
//! [`Denial`] naming the annotation, so a typo never quietly turns a feature off.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::agent_paths;
use crate::limits::{MAX_ANNOTATION_BYTES, MAX_SECRET_VOLUMES, MAX_SECRETS, MAX_TEMPLATE_BYTES};
use crate::pod::Pod;
use crate::settings::Settings;

/// Prefix of the vault-k8s annotations.
pub const VAULT_PREFIX: &str = "vault.hashicorp.com/";
/// Prefix of the keyhole-only annotations.
pub const KEYHOLE_PREFIX: &str = "keyhole.dev/";

/// `vault.hashicorp.com/agent-inject`: inject the agent into this pod.
pub const INJECT: &str = "vault.hashicorp.com/agent-inject";
/// `vault.hashicorp.com/agent-inject-status`: `injected` once done; `update` re-injects.
pub const STATUS: &str = "vault.hashicorp.com/agent-inject-status";
/// The value of [`STATUS`] after injection.
pub const STATUS_INJECTED: &str = "injected";

/// Where secrets are mounted unless `secret-volume-path` says otherwise.
pub const DEFAULT_SECRET_VOLUME_PATH: &str = "/vault/secrets";

/// The tokens Go's `strconv.ParseBool` accepts, which vault-k8s uses for booleans.
const TRUE_TOKENS: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_TOKENS: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];

/// Log levels the agent takes (`VAULT_LOG_LEVEL`).
pub(crate) const LOG_LEVELS: [&str; 7] =
    ["trace", "debug", "info", "warn", "warning", "error", "err"];
/// Log formats the agent takes (`VAULT_LOG_FORMAT`).
pub(crate) const LOG_FORMATS: [&str; 2] = ["standard", "json"];

/// Auth methods keyhole-agent implements.
pub(crate) const AUTH_TYPES: [&str; 4] = ["kubernetes", "jwt", "approle", "token_file"];

/// vault-k8s annotations keyhole accepts but does not act on, with the reason.
const IGNORED: &[(&str, &str)] = &[
    ("agent-cache-enable", "keyhole-agent has no cache listener"),
    (
        "agent-cache-use-auto-auth-token",
        "keyhole-agent has no cache listener",
    ),
    (
        "agent-cache-listener-port",
        "keyhole-agent has no cache listener",
    ),
    (
        "agent-cache-exit-on-err",
        "keyhole-agent has no cache listener",
    ),
    ("agent-enable-quit", "keyhole-agent has no API listener"),
    (
        "agent-metrics-listener-port",
        "keyhole-agent has no API listener",
    ),
    (
        "agent-revoke-grace",
        "keyhole-agent revokes before it exits",
    ),
    ("agent-copy-volume-mounts", "not supported by keyhole"),
    ("agent-json-patch", "not supported by keyhole"),
    ("agent-init-json-patch", "not supported by keyhole"),
    ("agent-disable-idle-connections", "not supported by keyhole"),
    ("agent-disable-keep-alives", "not supported by keyhole"),
    (
        "template-max-connections-per-host",
        "not supported by keyhole",
    ),
    ("proxy-address", "not supported by keyhole"),
    ("go-max-procs", "keyhole-agent is not a Go program"),
    (
        "agent-request-namespace",
        "keyhole uses the namespace of the admission request",
    ),
    ("agent-sidecar-type", "keyhole-agent is always an agent"),
];

/// Why a pod is refused: the annotation at fault and what is wrong with it.
///
/// Its message shows the annotation with control characters escaped: keys
/// are written by pod authors, and a newline in one must not forge a line in
/// the injector's log or in a CI report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", annotation.escape_debug())]
pub struct Denial {
    /// The full annotation key, e.g. `vault.hashicorp.com/agent-pre-populate`.
    pub annotation: String,
    /// What is wrong, e.g. `"maybe" is not a boolean (true or false)`.
    pub reason: String,
}

impl Denial {
    /// A denial naming `annotation`.
    pub fn new(annotation: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            annotation: annotation.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result of this module.
pub type Result<T, E = Denial> = std::result::Result<T, E>;

/// Everything the annotations (and the server defaults) ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// Secrets to render, ordered by their name in the annotations.
    pub secrets: Vec<Secret>,
    /// Also write the agent's Vault token to `<secret-volume-path>/token`.
    pub inject_token: bool,
    /// Mount path of the shared secrets volume.
    pub secret_volume_path: String,
    /// App containers that get the secrets volume; `None` means all.
    pub containers: Option<Vec<String>>,
    /// Run the agent as a native sidecar (init container with `restartPolicy: Always`).
    pub native_sidecar: bool,
    /// Populate secrets before the app starts.
    pub pre_populate: bool,
    /// Only populate secrets before the app starts; no long-running agent.
    pub pre_populate_only: bool,
    /// Put the agent's init container first; `None` when not annotated.
    pub init_first: Option<bool>,
    /// Agent image.
    pub image: String,
    /// ConfigMap holding the user's own agent config (`config.hcl`, `config-init.hcl`).
    pub configmap: Option<String>,
    /// Kubernetes Secret mounted at `/vault/custom` in the agent.
    pub extra_secret: Option<String>,
    /// How to reach Vault.
    pub vault: VaultSpec,
    /// How the agent logs in.
    pub auth: AuthSpec,
    /// Agent resource requests, by resource name (`cpu`, `memory`, `ephemeral-storage`).
    pub requests: BTreeMap<&'static str, String>,
    /// Agent resource limits, by resource name.
    pub limits: BTreeMap<&'static str, String>,
    /// The agent's user and group, or `None` to leave the security context alone.
    pub security: Option<RunAs>,
    /// `shareProcessNamespace` to set on the pod, when asked for.
    pub share_process_namespace: Option<bool>,
    /// Revoke the token and leases when the agent stops.
    pub revoke_on_shutdown: bool,
    /// `template_config.exit_on_retry_failure`.
    pub exit_on_retry_failure: bool,
    /// `template_config.static_secret_render_interval`.
    pub static_secret_render_interval: Option<String>,
    /// Agent log level (`VAULT_LOG_LEVEL`).
    pub log_level: String,
    /// Agent log format (`VAULT_LOG_FORMAT`).
    pub log_format: String,
    /// A pod volume with the service-account token to log in with, instead of
    /// a projected token volume added by keyhole.
    pub service_account_token_volume: Option<String>,
    /// Audience of the projected service-account token.
    pub token_audience: String,
    /// Size limit of the in-memory secrets volumes.
    pub secrets_volume_size_limit: String,
    /// Findings that do not stop injection, e.g. an unknown annotation.
    pub warnings: Vec<String>,
}

/// One secret to render into a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// The name as written in the annotation keys (`agent-inject-secret-<raw_name>`).
    pub raw_name: String,
    /// The file name: `raw_name` lower-cased unless `preserve-secret-case`.
    pub name: String,
    /// Vault path read by the default template.
    pub path: String,
    /// Where the template text comes from.
    pub template: TemplateText,
    /// Directory the secret is written to (a mount of a secrets volume).
    pub mount_path: String,
    /// File name under `mount_path`, instead of `name`.
    pub file: Option<String>,
    /// File mode, e.g. `0640`.
    pub perms: Option<String>,
    /// Command run after the file changed.
    pub command: Option<String>,
    /// Fail rendering when a map key is missing.
    pub error_on_missing_key: bool,
    /// Left action delimiter.
    pub left_delimiter: String,
    /// Right action delimiter.
    pub right_delimiter: String,
    /// Signal sent to a process after the file changed: `(signal, process)`.
    pub reload: Option<(String, String)>,
}

impl Secret {
    /// Path of the rendered file inside the agent and app containers.
    pub fn destination(&self) -> String {
        let file = self.file.as_deref().unwrap_or(&self.name);
        format!("{}/{}", self.mount_path.trim_end_matches('/'), file)
    }
}

/// Where a secret's template comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateText {
    /// vault-k8s's default `map` template for the secret's path.
    DefaultMap,
    /// vault-k8s's default `json` template for the secret's path.
    DefaultJson,
    /// Inline template text from `agent-inject-template-<name>`.
    Inline(String),
    /// A template file inside the agent container (`agent-inject-template-file-<name>`).
    File(String),
}

/// How to reach Vault.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VaultSpec {
    /// Vault's address.
    pub address: String,
    /// Vault Enterprise namespace.
    pub namespace: Option<String>,
    /// CA certificate file inside the agent.
    pub ca_cert: Option<String>,
    /// CA directory inside the agent (vault-k8s's `ca-key`).
    pub ca_path: Option<String>,
    /// Client certificate file inside the agent.
    pub client_cert: Option<String>,
    /// Client key file inside the agent.
    pub client_key: Option<String>,
    /// Kubernetes Secret mounted at `/vault/tls` in the agent.
    pub tls_secret: Option<String>,
    /// Name to verify Vault's certificate against.
    pub tls_server_name: Option<String>,
    /// Skip verification of Vault's certificate.
    pub tls_skip_verify: bool,
    /// Retries of failing requests.
    pub max_retries: Option<u32>,
    /// Request timeout (`VAULT_CLIENT_TIMEOUT`).
    pub client_timeout: Option<String>,
}

/// How the agent logs in.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSpec {
    /// Auth method type, e.g. `kubernetes`.
    pub kind: String,
    /// Mount path, e.g. `auth/kubernetes`.
    pub path: String,
    /// Vault role.
    pub role: Option<String>,
    /// Extra method config from `auth-config-<param>` (dashes become underscores).
    pub config: BTreeMap<String, String>,
    /// First delay between failed logins.
    pub min_backoff: Option<String>,
    /// Cap on the delay between failed logins.
    pub max_backoff: Option<String>,
    /// Exit when login fails instead of retrying.
    pub exit_on_err: bool,
}

/// The agent's user and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub user: i64,
    /// Group id.
    pub group: i64,
}

/// The pod's annotations, with the lookups the parser needs.
struct Annotations<'a> {
    map: &'a BTreeMap<String, String>,
}

impl<'a> Annotations<'a> {
    /// The value of `vault.hashicorp.com/<name>`.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.map.get(&vault_key(name)).map(String::as_str)
    }

    /// The value of `vault.hashicorp.com/<name>`, treating an empty value as
    /// absent, as vault-k8s does for values it defaults to "".
    fn non_empty(&self, name: &str) -> Option<&'a str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool> {
        self.get(name)
            .map(|v| parse_bool(&vault_key(name), v))
            .unwrap_or(Ok(default))
    }

    fn duration(&self, name: &str) -> Result<Option<String>> {
        self.non_empty(name)
            .map(|v| check_duration(&vault_key(name), v))
            .transpose()
    }

    fn quantity(&self, name: &str, default: Option<&str>) -> Result<Option<String>> {
        match self.get(name) {
            Some("") => Ok(None),
            Some(v) => check_quantity(&vault_key(name), v).map(Some),
            None => default
                .map(|v| check_quantity(&vault_key(name), v))
                .transpose(),
        }
    }

    fn id(&self, name: &str, default: i64) -> Result<i64> {
        match self.get(name) {
            Some(v) => v.parse::<i64>().ok().filter(|id| *id >= 0).ok_or_else(|| {
                Denial::new(vault_key(name), format!("{v:?} is not a user or group id"))
            }),
            None => Ok(default),
        }
    }
}

fn vault_key(name: &str) -> String {
    format!("{VAULT_PREFIX}{name}")
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
pub fn parse_bool(annotation: &str, value: &str) -> Result<bool> {
    if TRUE_TOKENS.contains(&value) {
        Ok(true)
    } else if FALSE_TOKENS.contains(&value) {
        Ok(false)
    } else {
        Err(Denial::new(
            annotation,
            format!("{value:?} is not a boolean (true or false)"),
        ))
    }
}

/// Accepts a Go duration (`time.ParseDuration`), e.g. `1m30s`, `250ms`, `0`.
fn check_duration(annotation: &str, value: &str) -> Result<String> {
    if is_duration(value) {
        Ok(value.to_owned())
    } else {
        Err(Denial::new(
            annotation,
            format!("{value:?} is not a duration such as 30s or 5m"),
        ))
    }
}

/// Whether keyhole-agent reads `s` as a duration: a Go duration such as
/// `30s` or `1h30m`, or plain seconds, as Vault Agent reads it.
pub(crate) fn is_duration(s: &str) -> bool {
    keyhole_agent::config::parse_duration(s).is_some()
}

/// Accepts a non-negative Kubernetes resource quantity, e.g. `100m`, `64Mi`, `1e3`.
pub fn check_quantity(annotation: &str, value: &str) -> Result<String> {
    if is_quantity(value) {
        Ok(value.to_owned())
    } else {
        Err(Denial::new(
            annotation,
            format!("{value:?} is not a quantity such as 100m or 64Mi"),
        ))
    }
}

pub(crate) fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = s.split_at(number_len);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    // Decimal exponent: e or E, an optional sign, then digits.
    let Some(exponent) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit())
}

/// Directories a secrets volume may not be mounted at, in or over: the
/// agent's own mounts, whose files (the Vault token among them) would land in
/// the volume that app containers read or be hidden by it, and the kernel's
/// file systems.
const NO_OVERLAP_DIRS: [&str; 8] = [
    agent_paths::HOME,
    agent_paths::SA_TOKEN_DIR,
    agent_paths::CONFIG_DIR,
    agent_paths::TLS_DIR,
    agent_paths::EXTRA_SECRET_DIR,
    "/proc",
    "/sys",
    "/dev",
];

/// Directories a secrets volume may not be mounted at or over, which would
/// hide the system's files or the app's own service-account token. A
/// directory inside them (`/etc/secrets`, `/usr/src/app/config`) is fine.
const NO_COVER_DIRS: [&str; 7] = [
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/run/secrets/kubernetes.io/serviceaccount",
];

/// Accepts an absolute, clean path (no `.`, `..` or empty segments; one
/// trailing `/` allowed) clear of [`NO_OVERLAP_DIRS`] and [`NO_COVER_DIRS`].
fn check_mount_path(annotation: &str, value: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Denial::new(annotation, "empty path"));
    }
    let Some(relative) = value.strip_prefix('/') else {
        return Err(Denial::new(
            annotation,
            format!("{value:?} is not an absolute path"),
        ));
    };
    // "/vault/secrets/" and "/vault/secrets" are one directory, so one volume.
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    if relative.is_empty() {
        return Err(Denial::new(annotation, "cannot mount secrets at /"));
    }
    if relative
        .split('/')
        .any(|part| matches!(part, "" | "." | ".."))
    {
        return Err(Denial::new(
            annotation,
            format!("{value:?} must not have empty, \".\" or \"..\" segments"),
        ));
    }
    let path = format!("/{relative}");
    // Whether `dir` is `other` or inside it.
    let within = |dir: &str, other: &str| {
        dir == other
            || dir
                .strip_prefix(other)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if let Some(dir) = NO_OVERLAP_DIRS
        .iter()
        .find(|d| within(&path, d) || within(d, &path))
    {
        return Err(Denial::new(
            annotation,
            format!("{value:?} overlaps {dir}, which secrets may not be mounted at, in or over"),
        ));
    }
    if let Some(dir) = NO_COVER_DIRS.iter().find(|d| within(d, &path)) {
        return Err(Denial::new(
            annotation,
            format!(
                "{value:?} would hide {dir}; mount secrets in a directory of their own, \
                 such as {dir}/secrets"
            ),
        ));
    }
    Ok(path)
}

/// A path for the default template: vault-k8s pastes it between quotes,
/// where a `"` or `\` breaks the template its agent parses. keyhole quotes
/// it properly, but refuses it all the same, at admission rather than at
/// pod start.
fn check_default_template_path(annotation: &str, path: &str) -> Result<()> {
    match path.chars().find(|c| matches!(c, '"' | '\\')) {
        Some(c) => Err(Denial::new(
            annotation,
            format!(
                "Vault path {path:?} contains {c:?}, which the default template cannot hold; \
                 Vault Agent would fail to parse it"
            ),
        )),
        None => Ok(()),
    }
}

/// Accepts a plain file name.
fn check_file_name(annotation: &str, value: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Denial::new(annotation, "empty file name"));
    }
    if value.contains('/') || value == ".." || value == "." {
        return Err(Denial::new(
            annotation,
            format!("{value:?} must be a plain file name, without \"/\" or \"..\""),
        ));
    }
    Ok(value.to_owned())
}

/// Accepts an octal file mode of permission bits only: the setuid, setgid
/// and sticky bits have no business on a secret file.
fn check_perms(annotation: &str, value: &str) -> Result<String> {
    let mode = (!value.is_empty() && value.len() <= 5)
        .then(|| u32::from_str_radix(value, 8).ok())
        .flatten();
    match mode {
        Some(mode) if mode <= 0o777 => Ok(value.to_owned()),
        Some(_) => Err(Denial::new(
            annotation,
            format!(
                "{value:?} sets the setuid, setgid or sticky bit; use permission bits only, such as 0640"
            ),
        )),
        None => Err(Denial::new(
            annotation,
            format!("{value:?} is not an octal file mode such as 0640"),
        )),
    }
}

fn check_command(annotation: &str, value: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Denial::new(annotation, "empty command"));
    }
    if let Some(c) = keyhole_agent::config::shell_char(value) {
        return Err(Denial::new(
            annotation,
            format!(
                "{value:?} needs a shell (it contains {c:?}) and keyhole-agent runs commands \
                 without one; use a plain command or keyhole.dev/reload-signal-<name>"
            ),
        ));
    }
    Ok(value.to_owned())
}

fn check_reload(annotation: &str, value: &str) -> Result<(String, String)> {
    let words: Vec<&str> = value.split_whitespace().collect();
    match words.as_slice() {
        [signal, process] => match keyhole_agent::reload::parse_signal(signal) {
            Ok(parsed) => Ok((parsed.as_str().to_owned(), (*process).to_owned())),
            Err(err) => Err(Denial::new(annotation, err.to_string())),
        },
        _ => Err(Denial::new(
            annotation,
            format!("{value:?} is not a signal and a process name, such as \"SIGHUP nginx\""),
        )),
    }
}

/// The kinds of per-secret annotations, by key prefix (after `vault.hashicorp.com/`).
/// `agent-inject-template-file-` comes before `agent-inject-template-` so the
/// longer prefix wins.
pub const SECRET_PREFIXES: [&str; 3] = [
    "agent-inject-secret-",
    "agent-inject-template-file-",
    "agent-inject-template-",
];

/// Per-secret settings: prefixes whose suffix names a secret declared by one of [`SECRET_PREFIXES`].
pub const PER_SECRET_PREFIXES: [&str; 8] = [
    "agent-inject-file-",
    "agent-inject-perms-",
    "agent-inject-command-",
    "error-on-missing-key-",
    "agent-template-left-delim-",
    "agent-template-right-delim-",
    "secret-volume-path-",
    "preserve-secret-case-",
];

/// Annotations without a per-secret or per-parameter suffix that keyhole acts on.
pub const KNOWN: &[&str] = &[
    "agent-inject",
    "agent-inject-status",
    "agent-inject-token",
    "agent-inject-default-template",
    "agent-inject-containers",
    "preserve-secret-case",
    "secret-volume-path",
    "agent-pre-populate",
    "agent-pre-populate-only",
    "agent-init-first",
    "agent-image",
    "agent-configmap",
    "agent-extra-secret",
    "role",
    "auth-path",
    "auth-type",
    "namespace",
    "service",
    "ca-cert",
    "ca-key",
    "client-cert",
    "client-key",
    "tls-secret",
    "tls-server-name",
    "tls-skip-verify",
    "client-max-retries",
    "client-timeout",
    "auth-min-backoff",
    "auth-max-backoff",
    "agent-auto-auth-exit-on-err",
    "agent-limits-cpu",
    "agent-limits-mem",
    "agent-limits-ephemeral",
    "agent-requests-cpu",
    "agent-requests-mem",
    "agent-requests-ephemeral",
    "agent-set-security-context",
    "agent-run-as-user",
    "agent-run-as-group",
    "agent-run-as-same-user",
    "agent-share-process-namespace",
    "agent-revoke-on-shutdown",
    "template-static-secret-render-interval",
    "template-config-exit-on-retry-failure",
    "log-level",
    "log-format",
    "agent-service-account-token-volume-name",
];

/// Parses the annotations of `pod`, filling in `settings` where they are silent.
pub fn parse(pod: &Pod, settings: &Settings) -> Result<AgentSpec> {
    let empty = BTreeMap::new();
    let map = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    check_bounds(map)?;
    let a = Annotations { map };
    let mut warnings = Vec::new();

    let secrets = secrets(&a, settings, &mut warnings)?;
    warn_about_unknown(map, &secrets, &mut warnings);

    let containers = match a.get("agent-inject-containers") {
        Some(list) => Some(containers(pod, list)?),
        None => None,
    };

    let native_sidecar = match map.get(&format!("{KEYHOLE_PREFIX}native-sidecar")) {
        Some(v) => parse_bool(&format!("{KEYHOLE_PREFIX}native-sidecar"), v)?,
        None => settings.native_sidecar,
    };

    let secret_volume_path = match a.get("secret-volume-path") {
        Some(v) => check_mount_path(&vault_key("secret-volume-path"), v)?,
        None => DEFAULT_SECRET_VOLUME_PATH.to_owned(),
    };

    let auth = auth(&a, settings, &mut warnings)?;
    let vault = vault_spec(&a, settings)?;
    if vault.address.is_empty() {
        return Err(Denial::new(
            vault_key("service"),
            "no Vault address: set this annotation or the injector's --vault-addr",
        ));
    }

    let security = security(&a, pod, settings)?;
    let share_process_namespace = share_process_namespace(&a, pod, &secrets, &mut warnings)?;

    let image = a
        .non_empty("agent-image")
        .unwrap_or(&settings.agent_image)
        .to_owned();

    let (requests, limits) = resources(&a, settings)?;

    let default_log_level = settings.log_level.as_str();
    let log_level = a.non_empty("log-level").unwrap_or(default_log_level);
    if !LOG_LEVELS.contains(&log_level) {
        return Err(Denial::new(
            vault_key("log-level"),
            format!("{log_level:?} is not a log level (trace, debug, info, warn or error)"),
        ));
    }
    let log_format = a.non_empty("log-format").unwrap_or(&settings.log_format);
    if !LOG_FORMATS.contains(&log_format) {
        return Err(Denial::new(
            vault_key("log-format"),
            format!("{log_format:?} is not a log format (standard or json)"),
        ));
    }

    let static_secret_render_interval =
        match a.duration("template-static-secret-render-interval")? {
            Some(d) => Some(d),
            None => settings.static_secret_render_interval.clone(),
        };

    Ok(AgentSpec {
        inject_token: a.bool("agent-inject-token", false)?,
        secret_volume_path,
        containers,
        native_sidecar,
        pre_populate: a.bool("agent-pre-populate", true)?,
        pre_populate_only: a.bool("agent-pre-populate-only", false)?,
        init_first: a
            .get("agent-init-first")
            .map(|v| parse_bool(&vault_key("agent-init-first"), v))
            .transpose()?,
        image,
        configmap: a.non_empty("agent-configmap").map(str::to_owned),
        extra_secret: a.non_empty("agent-extra-secret").map(str::to_owned),
        vault,
        auth,
        requests,
        limits,
        security,
        share_process_namespace,
        revoke_on_shutdown: a.bool("agent-revoke-on-shutdown", settings.revoke_on_shutdown)?,
        exit_on_retry_failure: a.bool(
            "template-config-exit-on-retry-failure",
            settings.exit_on_retry_failure,
        )?,
        static_secret_render_interval,
        log_level: log_level.to_owned(),
        log_format: log_format.to_owned(),
        service_account_token_volume: a
            .non_empty("agent-service-account-token-volume-name")
            .map(str::to_owned),
        token_audience: settings.token_audience.clone(),
        secrets_volume_size_limit: settings.secrets_volume_size_limit.clone(),
        secrets,
        warnings,
    })
}

/// Annotations whose values are free text: templates and shell commands.
/// Every other value ends up in a header, a Vault path, a file name or a flag.
const FREE_TEXT_PREFIXES: [&str; 2] = ["agent-inject-template-", "agent-inject-command-"];

/// Checks what the rest of parsing relies on: names that Kubernetes accepts
/// under our prefixes (so a secret's name is a plain file name), and no
/// control characters in the values keyhole uses, templates and commands
/// aside. Their total size, bounded when the pod was read ([`crate::pod`]),
/// must leave room for the status annotation the patch sets.
fn check_bounds(map: &BTreeMap<String, String>) -> Result<()> {
    // The patch sets agent-inject-status, and the patched pod must still be
    // one the API server stores.
    let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    let patched = bytes - map.get(STATUS).map_or(0, |v| STATUS.len() + v.len())
        + STATUS.len()
        + STATUS_INJECTED.len();
    if patched > MAX_ANNOTATION_BYTES {
        return Err(Denial::new(
            "metadata.annotations",
            format!(
                "{patched} bytes of annotations once {STATUS} is set, over the limit of \
                 {MAX_ANNOTATION_BYTES}"
            ),
        ));
    }
    for (key, value) in map {
        let Some(name) = key
            .strip_prefix(VAULT_PREFIX)
            .or_else(|| key.strip_prefix(KEYHOLE_PREFIX))
        else {
            continue;
        };
        if !is_qualified_name(name) {
            return Err(Denial::new(
                key,
                "not a valid annotation name: after the prefix Kubernetes takes at most 63 \
                 letters, digits, '-', '_' and '.', beginning and ending with a letter or digit",
            ));
        }
        let free_text = FREE_TEXT_PREFIXES.iter().any(|p| name.starts_with(p))
            && !name.starts_with("agent-inject-template-file-");
        // Annotations keyhole ignores (JSON patches, unknown keys) may hold
        // anything: only what keyhole uses is held to this.
        let used = key.starts_with(KEYHOLE_PREFIX)
            || KNOWN.contains(&name)
            || name.starts_with("auth-config-")
            || SECRET_PREFIXES
                .iter()
                .chain(&PER_SECRET_PREFIXES)
                .any(|p| name.starts_with(p));
        if used
            && !free_text
            && let Some(c) = value.chars().find(|c| c.is_control())
        {
            return Err(Denial::new(
                key,
                format!("{value:?} contains the control character {c:?}"),
            ));
        }
    }
    Ok(())
}

/// Whether `name` is the name part of a Kubernetes qualified name.
fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    name.len() <= 63
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Agent resource requests and limits by resource name; an empty annotation
/// removes the server's default.
type ResourceList = BTreeMap<&'static str, String>;

fn resources(a: &Annotations<'_>, settings: &Settings) -> Result<(ResourceList, ResourceList)> {
    let defaults = [
        (
            "cpu",
            "cpu",
            Some(&settings.cpu_request),
            Some(&settings.cpu_limit),
        ),
        (
            "mem",
            "memory",
            Some(&settings.mem_request),
            Some(&settings.mem_limit),
        ),
        (
            "ephemeral",
            "ephemeral-storage",
            settings.ephemeral_request.as_ref(),
            settings.ephemeral_limit.as_ref(),
        ),
    ];
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for (short, resource, request, limit) in defaults {
        let request = a.quantity(
            &format!("agent-requests-{short}"),
            request.map(String::as_str),
        )?;
        requests.extend(request.map(|q| (resource, q)));
        let limit = a.quantity(&format!("agent-limits-{short}"), limit.map(String::as_str))?;
        limits.extend(limit.map(|q| (resource, q)));
    }
    Ok((requests, limits))
}

/// Collects the secrets and their per-secret settings.
fn secrets(
    a: &Annotations<'_>,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<Vec<Secret>> {
    // Secrets are declared by a non-empty secret, template-file or template
    // annotation, as in vault-k8s; the raw name is what follows the prefix.
    let mut raw_names = BTreeSet::new();
    for (key, value) in a.map {
        let Some(name) = key.strip_prefix(VAULT_PREFIX) else {
            continue;
        };
        if let Some(raw) = SECRET_PREFIXES.iter().find_map(|p| name.strip_prefix(p))
            && !raw.is_empty()
            && !value.trim().is_empty()
        {
            raw_names.insert(raw.to_owned());
        }
    }
    if raw_names.len() > MAX_SECRETS {
        return Err(Denial::new(
            vault_key("agent-inject-secret-*"),
            format!(
                "{} secrets, over the limit of {MAX_SECRETS} per pod",
                raw_names.len()
            ),
        ));
    }

    let default_template = match a.get("agent-inject-default-template") {
        Some(v) => v,
        None => settings.default_template.as_str(),
    };
    let default_template = match default_template.to_lowercase().as_str() {
        "map" => TemplateText::DefaultMap,
        "json" => TemplateText::DefaultJson,
        _ => {
            return Err(Denial::new(
                vault_key("agent-inject-default-template"),
                format!("{default_template:?} is not a default template (map or json)"),
            ));
        }
    };
    let secret_volume_path = match a.get("secret-volume-path") {
        Some(v) => check_mount_path(&vault_key("secret-volume-path"), v)?,
        None => DEFAULT_SECRET_VOLUME_PATH.to_owned(),
    };
    let preserve_case = a.bool("preserve-secret-case", false)?;

    let secrets = raw_names
        .into_iter()
        .map(|raw| {
            let per = |prefix: &str| a.get(&format!("{prefix}{raw}"));
            let key = |prefix: &str| vault_key(&format!("{prefix}{raw}"));
            let preserve = match per("preserve-secret-case-") {
                Some(v) => parse_bool(&key("preserve-secret-case-"), v)?,
                None => preserve_case,
            };
            let name = if preserve {
                raw.clone()
            } else {
                raw.to_lowercase()
            };
            let path = per("agent-inject-secret-")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let template = match (
                per("agent-inject-template-"),
                per("agent-inject-template-file-"),
            ) {
                (Some(text), _) if text.len() > MAX_TEMPLATE_BYTES => {
                    return Err(Denial::new(
                        key("agent-inject-template-"),
                        format!(
                            "{} bytes of template, over the limit of {MAX_TEMPLATE_BYTES}",
                            text.len()
                        ),
                    ));
                }
                (Some(text), _) if !text.trim().is_empty() => TemplateText::Inline(text.to_owned()),
                (_, Some(file)) if !file.trim().is_empty() => TemplateText::File(file.to_owned()),
                _ if path.is_empty() => {
                    return Err(Denial::new(key("agent-inject-secret-"), "empty Vault path"));
                }
                _ => {
                    check_default_template_path(&key("agent-inject-secret-"), &path)?;
                    default_template.clone()
                }
            };
            let mount_path = match per("secret-volume-path-") {
                Some(v) => check_mount_path(&key("secret-volume-path-"), v)?,
                None => secret_volume_path.clone(),
            };
            let file = per("agent-inject-file-")
                .map(|v| check_file_name(&key("agent-inject-file-"), v))
                .transpose()?;
            let perms = per("agent-inject-perms-")
                .map(|v| check_perms(&key("agent-inject-perms-"), v))
                .transpose()?;
            let command = per("agent-inject-command-")
                .map(|v| check_command(&key("agent-inject-command-"), v))
                .transpose()?;
            let error_on_missing_key = per("error-on-missing-key-")
                .map(|v| parse_bool(&key("error-on-missing-key-"), v))
                .transpose()?
                .unwrap_or(false);
            let is_default = matches!(
                template,
                TemplateText::DefaultMap | TemplateText::DefaultJson
            );
            let mut delimiter = |prefix: &str, default: &str| match per(prefix) {
                Some("") => Err(Denial::new(key(prefix), "empty delimiter")),
                // keyhole writes the default template with the default
                // delimiters; vault-k8s would print its source text instead.
                Some(_) if is_default => {
                    warnings.push(format!(
                        "{}: ignored: secret {raw:?} uses the default template, which keyhole \
                         writes with {default:?}",
                        key(prefix)
                    ));
                    Ok(default.to_owned())
                }
                Some(v) => Ok(v.to_owned()),
                None => Ok(default.to_owned()),
            };
            let reload_key = format!("{KEYHOLE_PREFIX}reload-signal-{raw}");
            let reload = a
                .map
                .get(&reload_key)
                .map(|v| check_reload(&reload_key, v))
                .transpose()?;
            Ok(Secret {
                left_delimiter: delimiter("agent-template-left-delim-", "{{")?,
                right_delimiter: delimiter("agent-template-right-delim-", "}}")?,
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
    let volumes: BTreeSet<&str> = std::iter::once(secret_volume_path.as_str())
        .chain(secrets.iter().map(|s| s.mount_path.as_str()))
        .collect();
    if volumes.len() > MAX_SECRET_VOLUMES {
        return Err(Denial::new(
            vault_key("secret-volume-path-*"),
            format!(
                "{} distinct secret volume paths, over the limit of {MAX_SECRET_VOLUMES} per pod",
                volumes.len()
            ),
        ));
    }
    let token_sink = a
        .bool("agent-inject-token", false)?
        .then(|| token_file(&secret_volume_path));
    check_unique_destinations(&secrets, token_sink)?;
    Ok(secrets)
}

/// Where `agent-inject-token` writes the Vault token.
pub fn token_file(secret_volume_path: &str) -> String {
    format!("{secret_volume_path}/token")
}

/// Two secrets writing one file would overwrite each other on every render,
/// and a secret written over the token sink would swap the Vault token and
/// a secret back and forth.
fn check_unique_destinations(secrets: &[Secret], token_sink: Option<String>) -> Result<()> {
    let mut written: BTreeMap<String, &str> = BTreeMap::new();
    for secret in secrets {
        let destination = secret.destination();
        let key = || vault_key(&format!("agent-inject-secret-{}", secret.raw_name));
        if token_sink.as_ref() == Some(&destination) {
            return Err(Denial::new(
                key(),
                format!(
                    "writes {destination}, where {} writes the Vault token",
                    vault_key("agent-inject-token")
                ),
            ));
        }
        match written.entry(destination) {
            Entry::Occupied(first) => {
                return Err(Denial::new(
                    key(),
                    format!(
                        "writes {}, as secret {:?} does already",
                        first.key(),
                        first.get()
                    ),
                ));
            }
            Entry::Vacant(entry) => {
                entry.insert(&secret.raw_name);
            }
        }
    }
    Ok(())
}

/// Adds a warning for every annotation under our prefixes that keyhole does not act on.
fn warn_about_unknown(
    map: &BTreeMap<String, String>,
    secrets: &[Secret],
    warnings: &mut Vec<String>,
) {
    let is_secret = |raw: &str| secrets.iter().any(|s| s.raw_name == raw);
    for key in map.keys() {
        if let Some(name) = key.strip_prefix(VAULT_PREFIX) {
            if KNOWN.contains(&name) {
                continue;
            }
            if let Some((_, why)) = IGNORED.iter().find(|(n, _)| *n == name) {
                warnings.push(format!("{key}: ignored: {why}"));
                continue;
            }
            if name.starts_with("agent-telemetry-") {
                warnings.push(format!(
                    "{key}: ignored: keyhole-agent has no telemetry stanza"
                ));
                continue;
            }
            if name
                .strip_prefix("auth-config-")
                .is_some_and(|p| !p.is_empty())
                || SECRET_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                continue;
            }
            if let Some(raw) = PER_SECRET_PREFIXES
                .iter()
                .find_map(|p| name.strip_prefix(p))
            {
                if !is_secret(raw) {
                    warnings.push(format!(
                        "{key}: ignored: no secret {raw:?} (vault.hashicorp.com/agent-inject-secret-{raw})"
                    ));
                }
                continue;
            }
            warnings.push(format!("{key}: unknown annotation, ignored"));
        } else if let Some(name) = key.strip_prefix(KEYHOLE_PREFIX) {
            if name == "native-sidecar" {
                continue;
            }
            if let Some(raw) = name.strip_prefix("reload-signal-") {
                if !is_secret(raw) {
                    warnings.push(format!(
                        "{key}: ignored: no secret {raw:?} (vault.hashicorp.com/agent-inject-secret-{raw})"
                    ));
                }
                continue;
            }
            warnings.push(format!("{key}: unknown annotation, ignored"));
        }
    }
}

/// `agent-inject-containers`: comma-separated names of app containers.
fn containers(pod: &Pod, list: &str) -> Result<Vec<String>> {
    let names: Vec<String> = list
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
        return Err(Denial::new(
            vault_key("agent-inject-containers"),
            format!("no container named {missing:?} in the pod"),
        ));
    }
    Ok(names)
}

fn auth(a: &Annotations<'_>, settings: &Settings, warnings: &mut Vec<String>) -> Result<AuthSpec> {
    let kind = a.non_empty("auth-type").unwrap_or(&settings.auth_type);
    if !AUTH_TYPES.contains(&kind) {
        return Err(Denial::new(
            vault_key("auth-type"),
            format!(
                "keyhole-agent does not support auth type {kind:?} (supported: {})",
                AUTH_TYPES.join(", ")
            ),
        ));
    }
    let path = a.non_empty("auth-path").unwrap_or(&settings.auth_path);
    let mut config = BTreeMap::new();
    for (key, value) in a.map {
        if let Some(param) = key
            .strip_prefix(VAULT_PREFIX)
            .and_then(|n| n.strip_prefix("auth-config-"))
            .filter(|p| !p.is_empty())
        {
            config.insert(param.replace('-', "_"), value.clone());
        }
    }
    let mut role = a.non_empty("role").map(str::to_owned);
    let needs_role = kind == "kubernetes" || kind == "jwt";
    if !needs_role && role.take().is_some() {
        warnings.push(format!(
            "{}: ignored: the {kind} auth method takes no role",
            vault_key("role")
        ));
    }
    if needs_role && role.is_none() && !config.contains_key("role") {
        return Err(Denial::new(
            vault_key("role"),
            format!("the {kind} auth method needs a Vault role"),
        ));
    }
    let required_param = match kind {
        "approle" => Some("role_id_file_path"),
        "token_file" => Some("token_file_path"),
        _ => None,
    };
    if let Some(param) = required_param.filter(|p| !config.contains_key(*p)) {
        return Err(Denial::new(
            vault_key(&format!("auth-config-{}", param.replace('_', "-"))),
            format!("the {kind} auth method needs this annotation"),
        ));
    }
    let min_backoff = match a.duration("auth-min-backoff")? {
        Some(d) => Some(d),
        None => settings
            .auth_min_backoff
            .as_deref()
            .map(|d| check_duration("--auth-min-backoff", d))
            .transpose()?,
    };
    let max_backoff = match a.duration("auth-max-backoff")? {
        Some(d) => Some(d),
        None => settings
            .auth_max_backoff
            .as_deref()
            .map(|d| check_duration("--auth-max-backoff", d))
            .transpose()?,
    };
    Ok(AuthSpec {
        kind: kind.to_owned(),
        path: path.to_owned(),
        role,
        config,
        min_backoff,
        max_backoff,
        exit_on_err: a.bool("agent-auto-auth-exit-on-err", false)?,
    })
}

fn vault_spec(a: &Annotations<'_>, settings: &Settings) -> Result<VaultSpec> {
    let owned = |name: &str| a.non_empty(name).map(str::to_owned);
    let max_retries = a
        .non_empty("client-max-retries")
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                Denial::new(
                    vault_key("client-max-retries"),
                    format!("{v:?} is not a number of retries"),
                )
            })
        })
        .transpose()?;
    // VAULT_CLIENT_TIMEOUT takes a duration or a number of seconds.
    let client_timeout = a
        .non_empty("client-timeout")
        .map(|v| {
            if v.bytes().all(|b| b.is_ascii_digit()) {
                Ok(v.to_owned())
            } else {
                check_duration(&vault_key("client-timeout"), v)
            }
        })
        .transpose()?;
    Ok(VaultSpec {
        address: a
            .non_empty("service")
            .map(str::to_owned)
            .or_else(|| settings.vault_addr.clone())
            .unwrap_or_default(),
        namespace: owned("namespace"),
        ca_cert: owned("ca-cert"),
        ca_path: owned("ca-key"),
        client_cert: owned("client-cert"),
        client_key: owned("client-key"),
        tls_secret: owned("tls-secret"),
        tls_server_name: owned("tls-server-name"),
        tls_skip_verify: a.bool("tls-skip-verify", false)?,
        max_retries,
        client_timeout,
    })
}

/// The agent's user and group, following vault-k8s: the settings' default
/// unless annotated; annotating a user or group turns the security context on
/// when the settings turned it off.
fn security(a: &Annotations<'_>, pod: &Pod, settings: &Settings) -> Result<Option<RunAs>> {
    let run_as_annotated = [
        "agent-run-as-user",
        "agent-run-as-group",
        "agent-run-as-same-user",
    ]
    .iter()
    .any(|n| a.get(n).is_some());
    let set = match a.get("agent-set-security-context") {
        Some(v) => parse_bool(&vault_key("agent-set-security-context"), v)?,
        None => settings.set_security_context || run_as_annotated,
    };
    let mut user = a.id("agent-run-as-user", settings.run_as_user)?;
    let group = a.id("agent-run-as-group", settings.run_as_group)?;
    if a.bool("agent-run-as-same-user", settings.run_as_same_user)? {
        let key = vault_key("agent-run-as-same-user");
        let first = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .ok_or_else(|| Denial::new(&key, "the pod has no containers"))?;
        let uid = first
            .security_context
            .as_ref()
            .and_then(|sc| sc.run_as_user)
            .ok_or_else(|| {
                Denial::new(
                    &key,
                    format!(
                        "container {:?} sets no securityContext.runAsUser",
                        first.name
                    ),
                )
            })?;
        if uid == 0 {
            return Err(Denial::new(
                &key,
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
    let requested = a
        .get("agent-share-process-namespace")
        .map(|v| parse_bool(&vault_key("agent-share-process-namespace"), v))
        .transpose()?;
    if requested == Some(true) && pod_value == Some(false) {
        return Err(Denial::new(
            vault_key("agent-share-process-namespace"),
            "the pod sets shareProcessNamespace: false, refusing to enable it",
        ));
    }
    if let Some(secret) = secrets.iter().find(|s| s.reload.is_some()) {
        let key = format!("{KEYHOLE_PREFIX}reload-signal-{}", secret.raw_name);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_go_parse_bool_tokens() {
        for t in TRUE_TOKENS {
            assert_eq!(parse_bool("k", t), Ok(true));
        }
        for f in FALSE_TOKENS {
            assert_eq!(parse_bool("k", f), Ok(false));
        }
        for bad in ["yes", "no", "on", "tRUE", "", " true", "2"] {
            assert_eq!(
                parse_bool("k", bad).map_err(|d| d.to_string()),
                Err(format!("k: {bad:?} is not a boolean (true or false)"))
            );
        }
    }

    #[test]
    fn accepts_durations_the_agent_reads() {
        for good in [
            "0", "5", "30s", "1m30s", "250ms", "1.5h", "10us", "3µs", ".5s", "1h0m0s", "1d",
        ] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["", "5 m", "-5s", "s", "1.2.3s", "5mm", "."] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn accepts_kubernetes_quantities_only() {
        for good in [
            "100m", "64Mi", "1", "0.5", "1e3", "2E-2", "1Gi", "+1k", "1.5G",
        ] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "lots", "64MB", "-1", "1..5", "Mi", "1e", "1 Mi", "64mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn file_names_may_not_leave_the_volume() {
        assert_eq!(check_file_name("k", "app.env"), Ok("app.env".to_owned()));
        assert_eq!(
            check_file_name("k", "../etc/passwd").map_err(|d| d.reason),
            Err("\"../etc/passwd\" must be a plain file name, without \"/\" or \"..\"".to_owned())
        );
        assert_eq!(
            check_file_name("k", "").map_err(|d| d.reason),
            Err("empty file name".to_owned())
        );
    }
}
