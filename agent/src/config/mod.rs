//! Vault Agent configuration (HCL or JSON) as typed [`AgentConfig`].
//!
//! keyhole reads the same files as `bao agent` / `vault agent`. The supported
//! subset is listed in the README; anything outside it is an error that names
//! the stanza and key, never silently ignored. keyhole-only settings live in
//! one top-level `keyhole { ... }` stanza, which Vault Agent ignores.
//!
//! Both syntaxes are first turned into one generic JSON tree (submodule
//! `hcl` does it for HCL), then `parse` reads that tree stanza by stanza into
//! the typed structs below, through `stanza`'s key-by-key reader. `emit` goes
//! the other way, to the Vault Agent JSON the injector passes on.

mod choices;
mod emit;
mod env;
mod hcl;
mod listen;
mod merge;
mod parse;
mod stanza;
mod supervisor;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use choices::{AuthType, Choice, LogFormat, LogLevel};
pub use env::{VAULT_ADDR_ENV, env_names};
pub use listen::{
    ApiProxy, Cache, ClientCerts, DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE, DEFAULT_TCP_ADDRESS, Listen,
    ListenAddress, Listener, ListenerRole, ListenerTls, Persist, SocketOwner, TlsVersion,
};
pub use supervisor::{DEFAULT_RESTART_STOP_SIGNAL, EnvTemplate, Exec, Restart, Supervisor};

/// Environment variable holding the JSON config when `--config` is not given.
pub const CONFIG_ENV: &str = "KEYHOLE_AGENT_CONFIG";

// Vault Agent's defaults (consul-template's, for templates), which the
// parser fills in and the injector builds configs with.

/// `vault.retry.num_retries` when not set (consul-template's default).
pub const DEFAULT_NUM_RETRIES: u32 = 12;
/// `auto_auth.method.min_backoff` when not set.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// `auto_auth.method.max_backoff` when not set.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// `template_config.static_secret_render_interval` when not set.
pub const DEFAULT_STATIC_SECRET_RENDER_INTERVAL: Duration = Duration::from_secs(300);
/// `template.perms` when not set.
pub const DEFAULT_PERMS: u32 = 0o644;
/// `template.exec.timeout` when not set.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// `sink "file" { config { mode } }` when not set.
pub const DEFAULT_SINK_MODE: u32 = 0o640;
/// `token_path` of the kubernetes method when not set.
pub const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Errors from reading or validating an agent configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read config file: {0}")]
    Read(#[source] std::io::Error),
    /// The text is not valid HCL.
    #[error("invalid HCL: {0}")]
    Hcl(String),
    /// The text is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Neither `--config` nor `KEYHOLE_AGENT_CONFIG` was given.
    #[error("no configuration: pass --config FILE or set {CONFIG_ENV}")]
    Missing,
    /// A stanza or key is wrong; `at` is the stanza path, e.g. `template[2].perms`.
    #[error("{}", Located { at, message })]
    Invalid {
        /// Where in the config, e.g. `auto_auth.method "kubernetes".config`.
        at: String,
        /// What is wrong there.
        message: String,
    },
    /// An error in a config file, prefixed with the file's path.
    #[error("{}: {source}", path.display())]
    File {
        /// The config file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<Error>,
    },
    /// An error in the merged config of several files.
    #[error("{}: {source}", paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(" + "))]
    Files {
        /// The config files (or directories), in the order given.
        paths: Vec<PathBuf>,
        /// What is wrong in their merge.
        source: Box<Error>,
    },
    /// An error in the config given through `KEYHOLE_AGENT_CONFIG`.
    #[error("{CONFIG_ENV}: {0}")]
    Env(Box<Error>),
    /// A `VAULT_*` variable that overrides the config has a value it cannot take.
    #[error("{name}: {message}")]
    EnvValue {
        /// The variable.
        name: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

/// Result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats `at: message`, or just `message` at the top level.
struct Located<'a> {
    at: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl AgentConfig {
    /// Reads a config file: `.json` files are JSON, others are HCL unless
    /// they start with `{` (Vault Agent's HCL parser takes those as JSON too).
    /// A directory stands for its `.hcl` and `.json` files, as in [`AgentConfig::from_paths`].
    pub fn from_file(path: &Path) -> Result<AgentConfig> {
        AgentConfig::from_paths(&[path.to_path_buf()])
    }

    /// Reads several config files, merged as `bao agent -config=A -config=B`
    /// merges them: a stanza of a later file replaces the earlier one,
    /// `template` and `listener` blocks add up. A directory stands for its
    /// `.hcl` and `.json` files (editors' backup files left out), in name
    /// order, as Vault Agent reads a directory given to `-config`.
    pub fn from_paths(paths: &[PathBuf]) -> Result<AgentConfig> {
        let mut tree = merge::empty();
        for path in paths {
            tree = merge::merge(tree, read_path(path)?).map_err(|e| in_file(path, e))?;
        }
        parse::agent_config(tree).map_err(|source| match paths {
            [path] => in_file(path, source),
            _ => Error::Files {
                paths: paths.to_vec(),
                source: Box::new(source),
            },
        })
    }

    /// Parses Vault Agent JSON, the form the injector passes in `KEYHOLE_AGENT_CONFIG`.
    pub fn from_json(text: &str) -> Result<AgentConfig> {
        let tree = serde_json::from_str(text).map_err(Error::Json)?;
        parse::agent_config(tree)
    }

    /// Parses Vault Agent HCL.
    pub fn from_hcl(text: &str) -> Result<AgentConfig> {
        parse::agent_config(hcl::to_json(text)?)
    }

    /// Loads the config the way `keyhole-agent` does: from `paths`
    /// (`--config`, merged) or else from `KEYHOLE_AGENT_CONFIG`, then applies
    /// the `VAULT_*` variables that override the `vault` stanza (`VAULT_ADDR`, ...).
    pub fn load(paths: &[PathBuf]) -> Result<AgentConfig> {
        load_with(paths, &|name| std::env::var(name).ok())
    }

    /// Applies the `VAULT_*` variables `lookup` finds, which override the
    /// `vault` stanza and the `disable_*` lists as in Vault Agent; an empty
    /// value is ignored.
    pub fn with_env(mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig> {
        env::apply(&mut self.vault, lookup)?;
        env::apply_connections(&mut self.connections, lookup)?;
        Ok(self)
    }
}

/// Parses a duration as Vault Agent does: digits alone are seconds,
/// otherwise a Go duration such as `1h30m` (with `d` for days).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    stanza::parse_duration(text)
}

/// A boolean as Go's `strconv.ParseBool` reads it (`1 t T TRUE true True`,
/// `0 f F FALSE false False`), the forms Vault and vault-k8s take everywhere.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The shell that runs a one-entry command of several words.
pub const SHELL: &str = "/bin/sh";

/// The argv Vault Agent runs for `command = "<line>"`.
///
/// Vault Agent's config decoder reads a string where a list is expected as
/// its comma-separated parts, so `"a, b"` is the list `["a", " b"]`; the
/// list then runs as [`command_list`] says. `None` when there is no program.
pub fn command_line(line: &str) -> Option<Vec<String>> {
    command_list(line.split(',').map(str::to_owned).collect())
}

/// The argv consul-template runs for a command list: a single entry of more
/// than one word runs through `/bin/sh -c`, so it may use any shell syntax;
/// any other list is the argv itself. `None` when the program is blank.
pub fn command_list(list: Vec<String>) -> Option<Vec<String>> {
    match list.as_slice() {
        [line] if line.split_whitespace().nth(1).is_some() => {
            Some(vec![SHELL.to_owned(), "-c".to_owned(), line.clone()])
        }
        [program, ..] if !program.trim().is_empty() => Some(list),
        _ => None,
    }
}

/// [`AgentConfig::load`] with the environment passed in, so it can be tested.
fn load_with(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig> {
    let config = match (paths, env(CONFIG_ENV)) {
        ([], Some(json)) => AgentConfig::from_json(&json).map_err(|e| Error::Env(Box::new(e)))?,
        ([], None) => return Err(Error::Missing),
        (paths, _) => AgentConfig::from_paths(paths)?,
    };
    config.with_env(env)
}

/// An error in the file (or directory) at `path`.
fn in_file(path: &Path, source: Error) -> Error {
    Error::File {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

/// The tree of one file, or the merged trees of a directory's config files.
fn read_path(path: &Path) -> Result<serde_json::Value> {
    if !path.is_dir() {
        return read_file(path).map_err(|e| in_file(path, e));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| in_file(path, Error::Read(e)))? {
        let file = entry.map_err(|e| in_file(path, Error::Read(e)))?.path();
        let name = file
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let is_config = name.ends_with(".hcl") || name.ends_with(".json");
        let is_backup = name.ends_with('~') || name.starts_with('#') || name.starts_with(".#");
        if is_config && !is_backup && !file.is_dir() {
            files.push(file);
        }
    }
    // Vault Agent takes a directory's files in the order the file system
    // lists them; name order is that order on most file systems, and stable.
    files.sort();
    let mut tree = merge::empty();
    for file in files {
        let next = read_file(&file).map_err(|e| in_file(&file, e))?;
        tree = merge::merge(tree, next).map_err(|e| in_file(&file, e))?;
    }
    Ok(tree)
}

/// The generic tree of one file: `.json` files are JSON, others are HCL
/// unless they start with `{` (Vault Agent's HCL parser takes those as JSON too).
fn read_file(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(Error::Read)?;
    let is_json =
        path.extension().is_some_and(|ext| ext == "json") || text.trim_start().starts_with('{');
    if is_json {
        serde_json::from_str(&text).map_err(Error::Json)
    } else {
        hcl::to_json(&text)
    }
}

/// A parsed and validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// How to reach Vault.
    pub vault: Vault,
    /// How to log in and where to write the token.
    pub auto_auth: Option<AutoAuth>,
    /// Files to render.
    pub templates: Vec<Template>,
    /// Supervisor mode: a child process that gets secrets in its
    /// environment (`env_template` and `exec`).
    pub supervisor: Option<Supervisor>,
    /// Settings shared by all templates.
    pub template_config: TemplateConfig,
    /// Render every template once, then exit.
    pub exit_after_auth: bool,
    /// Where to write the agent's process id.
    pub pid_file: Option<PathBuf>,
    /// keyhole-only settings.
    pub keyhole: Keyhole,
    /// Listeners for the pod's other containers and what they serve.
    pub listen: Listen,
    /// The top-level `log_*` keys.
    pub log: Logging,
    /// The top-level `disable_idle_connections` and `disable_keep_alives`.
    pub connections: Connections,
    /// Where `telemetry` sends the agent's metrics, besides serving them.
    pub telemetry: Telemetry,
}

/// The `telemetry` keys that send the agent's metrics to a StatsD server,
/// every [`crate::telemetry::INTERVAL`]. The metrics are keyhole-agent's own,
/// as `/agent/v1/metrics` serves them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// `statsd_address`: a StatsD server, as `host:port` over UDP.
    pub statsd: Option<String>,
    /// `dogstatsd_addr`: a DogStatsD server (the Datadog agent), as
    /// `host:port` over UDP; labels are sent as tags.
    pub dogstatsd: Option<String>,
    /// `dogstatsd_tags`: tags added to every metric sent to DogStatsD.
    pub dogstatsd_tags: Vec<String>,
    /// `enable_hostname_label`: every pushed metric gets a `host` label with
    /// the machine's host name.
    pub hostname_label: bool,
}

/// Which parts of the agent keep no connection to Vault between requests:
/// the top-level `disable_idle_connections` and `disable_keep_alives`, for
/// load balancers and firewalls that drop idle connections without closing
/// them. `VAULT_AGENT_DISABLE_IDLE_CONNECTIONS` and
/// `VAULT_AGENT_DISABLE_KEEP_ALIVES` (comma-separated) replace the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Connections {
    /// `disable_idle_connections`: each request opens a connection.
    pub no_idle: Parts,
    /// `disable_keep_alives`: each request opens a connection and asks Vault
    /// to close it afterwards.
    pub no_keep_alive: Parts,
}

impl Connections {
    /// How logins, token renewals and lookups use connections.
    pub fn auto_auth(&self) -> Reuse {
        self.reuse(|parts| parts.auto_auth)
    }

    /// How the templates' requests use connections.
    pub fn templating(&self) -> Reuse {
        self.reuse(|parts| parts.templating)
    }

    /// How the API proxy's requests use connections.
    pub fn api_proxy(&self) -> Reuse {
        self.reuse(|parts| parts.api_proxy)
    }

    fn reuse(&self, part: impl Fn(&Parts) -> bool) -> Reuse {
        if part(&self.no_keep_alive) {
            Reuse::Close
        } else if part(&self.no_idle) {
            Reuse::NoIdle
        } else {
            Reuse::Keep
        }
    }
}

/// Parts of the agent, as `disable_idle_connections` and
/// `disable_keep_alives` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    /// `auto-auth`.
    pub auto_auth: bool,
    /// `templating`.
    pub templating: bool,
    /// `caching` or `proxying`: the API proxy.
    pub api_proxy: bool,
}

impl Parts {
    /// The parts `names` lists, in Vault Agent's names; an empty name is
    /// skipped, as Vault Agent skips it. Fails with the first unknown name.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut parts = Parts::default();
        for name in names {
            match name {
                "auto-auth" => parts.auto_auth = true,
                "templating" => parts.templating = true,
                "caching" | "proxying" => parts.api_proxy = true,
                "" => {}
                unknown => return Err(unknown),
            }
        }
        Ok(parts)
    }

    /// The parts, in Vault Agent's names.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.auto_auth, "auto-auth"),
            (self.templating, "templating"),
            (self.api_proxy, "proxying"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Whether a Vault client keeps its connections for later requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// Idle connections wait for the next request.
    #[default]
    Keep,
    /// No connection is kept idle: each request opens one.
    NoIdle,
    /// As [`Reuse::NoIdle`], and each request asks Vault to close the
    /// connection once it has answered (`Connection: close`).
    Close,
}

/// Where and how the agent logs: the top-level `log_level`, `log_format`,
/// `log_file` and `log_rotate_*` keys. A flag or `VAULT_LOG_LEVEL` /
/// `VAULT_LOG_FORMAT` wins over the file, as in Vault Agent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logging {
    /// `log_level`.
    pub level: Option<LogLevel>,
    /// `log_format`.
    pub format: Option<LogFormat>,
    /// `log_file`: a file that gets every log line too, besides stderr.
    pub file: Option<LogFile>,
}

/// `log_file` and how it rotates.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    /// The file; `bao.log` in the directory when the path ends in `/`.
    pub path: PathBuf,
    /// `log_rotate_bytes`: rotate once the file holds this many bytes; 0
    /// never rotates by size.
    pub rotate_bytes: u64,
    /// `log_rotate_duration`: rotate once the file is this old (24 hours
    /// unless set).
    pub rotate_duration: Duration,
    /// `log_rotate_max_files`: rotated files to keep; 0 keeps every one,
    /// a negative number none.
    pub rotate_max_files: i64,
}

/// How long a log file is written before it rotates when
/// `log_rotate_duration` is not set: Vault Agent's default.
pub const DEFAULT_LOG_ROTATE_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The `vault { ... }` stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vault {
    /// Vault's address; `VAULT_ADDR` overrides it (see [`AgentConfig::with_env`]
    /// for the other fields' variables).
    pub address: Option<String>,
    /// PEM file with CA certificates to trust.
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM CA certificates to trust.
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM private key for `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Skip verification of Vault's certificate (a warning is logged).
    pub tls_skip_verify: bool,
    /// Name to verify Vault's certificate against, instead of the address's host.
    pub tls_server_name: Option<String>,
    /// Vault Enterprise namespace for every request.
    pub namespace: Option<String>,
    /// `retry { num_retries }`: attempts after the first for a failing request.
    pub num_retries: u32,
}

/// The `auto_auth { ... }` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoAuth {
    /// The login method.
    pub method: Method,
    /// File sinks that receive the current token.
    pub sinks: Vec<Sink>,
}

/// `auto_auth { method "<type>" { ... } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// Type-specific settings.
    pub kind: MethodKind,
    /// Mount path of the auth method, e.g. `auth/kubernetes`.
    pub mount_path: String,
    /// Namespace to log in to.
    pub namespace: Option<String>,
    /// First delay between failed logins.
    pub min_backoff: Duration,
    /// Cap on the delay between failed logins.
    pub max_backoff: Duration,
    /// Exit instead of retrying when login fails.
    pub exit_on_err: bool,
    /// `wrap_ttl`: log in response-wrapped for this long. The single sink
    /// then holds the `wrap_info` JSON, and the agent holds no token: it
    /// neither renews nor logs in again, and templates and the API proxy
    /// get no token from it.
    pub wrap_ttl: Option<Duration>,
}

/// The login methods keyhole supports.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodKind {
    /// `kubernetes`: the pod's service-account JWT.
    Kubernetes {
        /// Vault role.
        role: String,
        /// JWT file, re-read on every login.
        token_path: PathBuf,
    },
    /// `jwt`: any JWT file, validated by Vault.
    Jwt {
        /// Vault role.
        role: String,
        /// JWT file, re-read on every login.
        path: PathBuf,
        /// Delete the JWT file after reading it.
        remove_jwt_after_reading: bool,
    },
    /// `approle`: role id and secret id files.
    AppRole {
        /// File holding the role id.
        role_id_file_path: PathBuf,
        /// File holding the secret id.
        secret_id_file_path: Option<PathBuf>,
        /// Delete the secret id file after reading it.
        remove_secret_id_file_after_reading: bool,
        /// When set, the secret id file holds a response-wrapping token for
        /// the secret id, created by a request to this path.
        secret_id_response_wrapping_path: Option<String>,
    },
    /// `token_file`: a token already issued, for local development.
    TokenFile {
        /// File holding the token.
        token_file_path: PathBuf,
    },
    /// `cert`: the TLS client certificate the login connection presents.
    ///
    /// With none of the files set, the login goes through the agent's own
    /// connection, which presents the `vault` stanza's `client_cert`. With
    /// `ca_cert` or the `client_cert` and `client_key` pair set, the login
    /// uses a connection of its own whose files replace the stanza's.
    Cert {
        /// The certificate role to log in as; without it Vault tries every
        /// role the certificate matches.
        name: Option<String>,
        /// CA file that Vault's certificate must chain to on the login
        /// connection, replacing `vault.ca_cert` and `vault.ca_path`.
        ca_cert: Option<PathBuf>,
        /// Client certificate (PEM) presented at login; used only together
        /// with `client_key`, as in Vault Agent.
        client_cert: Option<PathBuf>,
        /// Private key (PEM) of `client_cert`.
        client_key: Option<PathBuf>,
        /// Read the files again on every login instead of once, for
        /// certificates that are rotated on disk.
        reload: bool,
    },
}

impl MethodKind {
    /// The method's type, whose name the config writes.
    pub fn auth_type(&self) -> AuthType {
        match self {
            Self::Kubernetes { .. } => AuthType::Kubernetes,
            Self::Jwt { .. } => AuthType::Jwt,
            Self::AppRole { .. } => AuthType::AppRole,
            Self::TokenFile { .. } => AuthType::TokenFile,
            Self::Cert { .. } => AuthType::Cert,
        }
    }
}

/// `sink "file" { config { path, mode } }`, with what the file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    /// Where the token is written.
    pub path: PathBuf,
    /// File mode of the token file.
    pub mode: u32,
    /// `wrap_ttl`: write the token response-wrapped for this long.
    pub wrap_ttl: Option<Duration>,
    /// `dh_type`/`dh_path`: write it encrypted for the key in a file.
    pub encryption: Option<SinkEncryption>,
}

/// `dh_type = "curve25519"` with `dh_path`, `derive_key` and `aad` or
/// `aad_env_var`: the sink holds Vault's encrypted envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkEncryption {
    /// The file with the reader's X25519 public key, as Vault's
    /// `{"curve25519_public_key": "<base64>"}`.
    pub dh_path: PathBuf,
    /// Put the shared secret through HKDF-SHA256 instead of using it as
    /// the AES key.
    pub derive_key: bool,
    /// Additional authenticated data: `aad`, or the value of `aad_env_var`
    /// when the config was read.
    pub aad: String,
}

/// One `template { ... }` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// File to write.
    pub destination: PathBuf,
    /// Where the template text comes from.
    pub source: TemplateSource,
    /// File mode of the destination.
    pub perms: u32,
    /// Command to run after the destination changed, from `command` or
    /// `exec { command }`, as the argv Vault Agent runs (see
    /// [`command_line`] and [`command_list`]).
    pub command: Option<Vec<String>>,
    /// How long `command` may run: `exec { timeout }`, else `command_timeout`.
    pub command_timeout: Duration,
    /// Fail the render when a map key is missing.
    pub error_on_missing_key: bool,
    /// Left action delimiter, `{{` by default.
    pub left_delimiter: String,
    /// Right action delimiter, `}}` by default.
    pub right_delimiter: String,
    /// Create missing parent directories of `destination`.
    pub create_dest_dirs: bool,
    /// Keep the previous file as `<destination>.bak` when the contents
    /// change.
    pub backup: bool,
    /// Owner of the destination: a user name or a numeric id, from `user`
    /// or else `uid`; `None` leaves the agent's own.
    pub user: Option<String>,
    /// Group of the destination: a group name or a numeric id, from `group`
    /// or else `gid`; `None` leaves the agent's own.
    pub group: Option<String>,
    /// The directory the template's `file` calls must read inside.
    pub sandbox_path: Option<PathBuf>,
    /// Functions the template may not call (`function_denylist` and its
    /// older name `function_blacklist`): a call fails the render.
    pub function_denylist: Vec<String>,
    /// `wait`: how long a change of its secrets waits for more before the
    /// file is written; `None` writes at once.
    pub wait: Option<Wait>,
    /// `error_fatal`: whether its failure fails an init-mode run. A
    /// long-running agent keeps the last good file and retries either way.
    pub error_fatal: bool,
}

impl Template {
    /// A template rendering `source` to `destination` with Vault Agent's
    /// defaults for everything else.
    pub fn new(destination: PathBuf, source: TemplateSource) -> Self {
        Self {
            destination,
            source,
            perms: DEFAULT_PERMS,
            command: None,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            error_on_missing_key: false,
            left_delimiter: "{{".to_owned(),
            right_delimiter: "}}".to_owned(),
            create_dest_dirs: true,
            backup: false,
            user: None,
            group: None,
            sandbox_path: None,
            function_denylist: Vec::new(),
            wait: None,
            error_fatal: true,
        }
    }
}

/// A template's `wait { min max }`: consul-template's quiescence. Once the
/// template has rendered, a change of its secrets is written when no other
/// change came for `min`, and at the latest `max` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// How long the secrets must stay unchanged.
    pub min: Duration,
    /// The longest a change waits.
    pub max: Duration,
}

/// Template text, inline or from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateSource {
    /// `contents = "..."`.
    Contents(String),
    /// `source = "path"`.
    File(PathBuf),
}

/// The `template_config { ... }` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateConfig {
    /// Give up after bounded retries instead of retrying forever.
    pub exit_on_retry_failure: bool,
    /// How often secrets without a lease (KV v2) are re-read.
    pub static_secret_render_interval: Duration,
}

/// The keyhole-only `keyhole { ... }` stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Keyhole {
    /// Revoke leases and the token before exiting on SIGTERM.
    pub revoke_on_shutdown: bool,
    /// How long to wait after SIGTERM before revoking, so that an app
    /// stopping at the same time can still use its credentials.
    pub revoke_grace: Duration,
    /// Address of the Prometheus metrics listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Marker file created once every template has rendered.
    pub ready_file: Option<PathBuf>,
    /// File the running agent touches every few seconds, for
    /// `keyhole-agent probe --live` (see [`crate::heartbeat`]).
    pub heartbeat_file: Option<PathBuf>,
    /// Signals sent to processes when a template's destination changes.
    pub reload: Vec<Reload>,
}

/// `keyhole { reload { destination, signal, process } }`: after the template
/// writing `destination` changed the file, send `signal` to `process`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reload {
    /// Destination of the template that triggers the signal.
    pub destination: PathBuf,
    /// Signal to send.
    pub signal: crate::reload::Signal,
    /// Name of the process to signal, as in `/proc/<pid>/comm`.
    pub process: String,
}
