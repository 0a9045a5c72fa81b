//! Vault Agent configuration (HCL or JSON) as typed [`AgentConfig`].
//!
//! keyhole reads the same files as `bao agent` / `vault agent`. The supported
//! subset is listed in the README; anything outside it is an error that names
//! the stanza and key, never silently ignored. keyhole-only settings live in
//! one top-level `keyhole { ... }` stanza.

use std::path::PathBuf;
use std::time::Duration;

/// A parsed and validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// How to reach Vault.
    pub vault: Vault,
    /// How to log in and where to write the token.
    pub auto_auth: Option<AutoAuth>,
    /// Files to render.
    pub templates: Vec<Template>,
    /// Settings shared by all templates.
    pub template_config: TemplateConfig,
    /// Render every template once, then exit.
    pub exit_after_auth: bool,
    /// Where to write the agent's process id.
    pub pid_file: Option<PathBuf>,
    /// keyhole-only settings.
    pub keyhole: Keyhole,
}

/// The `vault { ... }` stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vault {
    /// Vault's address; `VAULT_ADDR` overrides it.
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
    },
    /// `token_file`: a token already issued, for local development.
    TokenFile {
        /// File holding the token.
        token_file_path: PathBuf,
    },
}

/// `sink "file" { config { path, mode } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    /// Where the token is written.
    pub path: PathBuf,
    /// File mode of the token file.
    pub mode: u32,
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
    /// Command to run after the destination changed, as argv.
    pub command: Option<Vec<String>>,
    /// How long `command` may run.
    pub command_timeout: Duration,
    /// Fail the render when a map key is missing.
    pub error_on_missing_key: bool,
    /// Left action delimiter, `{{` by default.
    pub left_delimiter: String,
    /// Right action delimiter, `}}` by default.
    pub right_delimiter: String,
    /// Create missing parent directories of `destination`.
    pub create_dest_dirs: bool,
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
    /// Address of the Prometheus metrics listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Marker file created once every template has rendered.
    pub ready_file: Option<PathBuf>,
}
