//! What the annotations (and the server defaults) ask for, as typed
//! [`AgentSpec`]: the input of the patch and of the agent config.

use std::collections::BTreeMap;

use keyhole_agent::config::{
    ApiProxy, AuthType, Choice, Connections, LogFormat, LogLevel, Telemetry,
};

/// Where secrets are mounted unless `secret-volume-path` says otherwise.
pub const DEFAULT_SECRET_VOLUME_PATH: &str = "/vault/secrets";

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
    /// Seconds between SIGTERM and revoking.
    pub revoke_grace: u64,
    /// The long-running agent's localhost listener, from `agent-cache-enable`
    /// and `agent-enable-quit`.
    pub api_listener: Option<ApiListener>,
    /// The port of the long-running agent's metrics listener on the pod IP
    /// (`keyhole.dev/agent-metrics-port`); `None` for no such listener.
    pub metrics_port: Option<u16>,
    /// `cache.persist.exit_on_err`: a persistent cache that cannot be used
    /// stops the agent instead of costing it a login.
    pub cache_exit_on_err: bool,
    /// `template_config.exit_on_retry_failure`.
    pub exit_on_retry_failure: bool,
    /// `template_config.static_secret_render_interval`.
    pub static_secret_render_interval: Option<String>,
    /// Agent log level (`VAULT_LOG_LEVEL`).
    pub log_level: LogLevel,
    /// Agent log format (`VAULT_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// `disable_idle_connections` and `disable_keep_alives`.
    pub connections: Connections,
    /// Where the agents send their metrics (`agent-telemetry-*`).
    pub telemetry: Telemetry,
    /// A pod volume with the service-account token to log in with, instead of
    /// a projected token volume added by keyhole.
    pub service_account_token_volume: Option<String>,
    /// Audience of the projected service-account token; the API server's
    /// own audiences when `None`.
    pub token_audience: Option<String>,
    /// Size limit of the in-memory secrets volumes.
    pub secrets_volume_size_limit: String,
    /// App container whose volume mounts the agent containers get too.
    pub copy_volume_mounts: Option<String>,
    /// JSON patch of the long-running agent container (`agent-json-patch`).
    pub json_patch: Option<json_patch::Patch>,
    /// JSON patch of the classic init container (`agent-init-json-patch`).
    pub init_json_patch: Option<json_patch::Patch>,
    /// Findings that do not stop injection, e.g. an unknown annotation.
    pub warnings: Vec<String>,
}

/// One secret to render into a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// The annotation its template comes from, as the pod wrote it: the
    /// inline template, the template file or, for a default template, the
    /// Vault path.
    pub annotation: String,
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

/// The template of secrets that name only a Vault path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTemplate {
    /// vault-k8s's `map` template: one `key: value` line per field.
    Map,
    /// vault-k8s's `json` template: the data as one JSON line.
    Json,
}

impl Choice for DefaultTemplate {
    const NAMES: &'static [(&'static str, Self)] = &[("map", Self::Map), ("json", Self::Json)];

    fn name(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Json => "json",
        }
    }
}

impl DefaultTemplate {
    /// The template text of a secret that uses this default.
    pub fn text(self) -> TemplateText {
        match self {
            Self::Map => TemplateText::DefaultMap,
            Self::Json => TemplateText::DefaultJson,
        }
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
    /// HTTPS proxy to Vault (`HTTPS_PROXY`).
    pub proxy_address: Option<String>,
}

/// How the agent logs in.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSpec {
    /// Auth method type, e.g. `kubernetes`.
    pub kind: AuthType,
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

/// Where `agent-inject-token` writes the Vault token.
pub fn token_file(secret_volume_path: &str) -> String {
    format!("{secret_volume_path}/token")
}

/// The listener vault-k8s gives the long-running agent on `127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiListener {
    /// `agent-cache-listener-port`.
    pub port: u16,
    /// The API proxy, with `agent-cache-enable`: whether requests get the
    /// agent's token (`agent-cache-use-auto-auth-token`).
    pub proxy: Option<ApiProxy>,
    /// `agent-enable-quit`.
    pub enable_quit: bool,
}
