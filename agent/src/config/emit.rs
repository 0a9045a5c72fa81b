//! [`AgentConfig`] back to Vault Agent JSON: what the injector passes to the
//! agent in `KEYHOLE_AGENT_CONFIG`.
//!
//! The output is accepted by `bao agent` as well as by keyhole, and parses
//! back to the same [`AgentConfig`]. Every value is written out, defaults
//! included, so the JSON says exactly what the agent will do. The types
//! serialise straight into the text, without an intermediate JSON tree,
//! since the injector does this for every pod it admits.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use super::choices::Choice;
use super::{
    AgentConfig, ApiProxy, AutoAuth, Cache, ClientCerts, Connections, Keyhole, ListenAddress,
    Listener, ListenerRole, Method, MethodKind, Parts, Persist, Reload, Sink, Supervisor,
    Telemetry, Template, TemplateConfig, TemplateSource, TlsVersion, Vault,
};
use super::{EnvTemplate, Exec};

impl AgentConfig {
    /// This configuration as Vault Agent JSON, on one line: the injector puts
    /// it in every injected pod, which etcd stores and every watcher reads,
    /// and `jq` indents it for a reader.
    pub fn to_vault_agent_json(&self) -> String {
        // Every key is a string and no value fails to serialise, so writing
        // into a `String` cannot fail.
        serde_json::to_string(self).expect("an agent config always serialises")
    }
}

/// Serialises as Vault Agent JSON; see [`AgentConfig::to_vault_agent_json`].
impl Serialize for AgentConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let AgentConfig {
            vault,
            auto_auth,
            templates,
            supervisor,
            template_config,
            exit_after_auth,
            pid_file,
            keyhole,
            listen,
            log,
            connections,
            telemetry,
        } = self;
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("vault", vault)?;
        if let Some(auto_auth) = auto_auth {
            out.serialize_entry("auto_auth", auto_auth)?;
        }
        if !templates.is_empty() {
            out.serialize_entry("template", templates)?;
        }
        if let Some(Supervisor {
            env_templates,
            exec,
        }) = supervisor
        {
            out.serialize_entry("env_template", &EnvTemplates(env_templates))?;
            out.serialize_entry("exec", exec)?;
        }
        out.serialize_entry("template_config", template_config)?;
        out.serialize_entry("exit_after_auth", exit_after_auth)?;
        if let Some(pid_file) = pid_file {
            out.serialize_entry("pid_file", &PathText(pid_file))?;
        }
        if *keyhole != Keyhole::default() {
            out.serialize_entry("keyhole", keyhole)?;
        }
        if !listen.listeners.is_empty() {
            out.serialize_entry("listener", &listen.listeners)?;
        }
        if let Some(api_proxy) = listen.api_proxy {
            out.serialize_entry("api_proxy", &api_proxy)?;
        }
        if let Some(cache) = &listen.cache {
            out.serialize_entry("cache", cache)?;
        }
        if let Some(level) = log.level {
            out.serialize_entry("log_level", level.name())?;
        }
        if let Some(format) = log.format {
            out.serialize_entry("log_format", format.name())?;
        }
        if let Some(file) = &log.file {
            out.serialize_entry("log_file", &PathText(&file.path))?;
            out.serialize_entry("log_rotate_bytes", &file.rotate_bytes)?;
            out.serialize_entry("log_rotate_duration", &GoDuration(file.rotate_duration))?;
            out.serialize_entry("log_rotate_max_files", &file.rotate_max_files)?;
        }
        let Connections {
            no_idle,
            no_keep_alive,
        } = connections;
        for (key, parts) in [
            ("disable_idle_connections", no_idle),
            ("disable_keep_alives", no_keep_alive),
        ] {
            if *parts != Parts::default() {
                out.serialize_entry(key, &parts.names())?;
            }
        }
        if *telemetry != Telemetry::default() {
            out.serialize_entry("telemetry", telemetry)?;
        }
        out.end()
    }
}

impl Serialize for Vault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        let strings = [
            ("address", &self.address),
            ("tls_server_name", &self.tls_server_name),
            ("namespace", &self.namespace),
        ];
        for (key, value) in strings {
            if let Some(value) = value {
                out.serialize_entry(key, value)?;
            }
        }
        let paths = [
            ("ca_cert", &self.ca_cert),
            ("ca_path", &self.ca_path),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ];
        for (key, value) in paths {
            if let Some(value) = value {
                out.serialize_entry(key, &PathText(value))?;
            }
        }
        out.serialize_entry("tls_skip_verify", &self.tls_skip_verify)?;
        // Vault Agent reads 0 as "the default"; -1 is how it spells "no retries".
        let num_retries = match self.num_retries {
            0 => -1,
            n => i64::from(n),
        };
        out.serialize_entry("retry", &Retry { num_retries })?;
        out.end()
    }
}

/// `vault.retry`.
#[derive(Serialize)]
struct Retry {
    num_retries: i64,
}

/// Written in the list forms Vault Agent's HCL 1 JSON decoder reads whatever
/// else `auto_auth` holds: a lone `"method": {..}` object is taken apart by
/// its object flattening, and an empty `"sink": []` is refused.
impl Serialize for AutoAuth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("method", std::slice::from_ref(&self.method))?;
        if !self.sinks.is_empty() {
            out.serialize_entry("sink", &self.sinks)?;
        }
        out.end()
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("type", self.kind.auth_type().name())?;
        out.serialize_entry("mount_path", &self.mount_path)?;
        if let Some(namespace) = &self.namespace {
            out.serialize_entry("namespace", namespace)?;
        }
        out.serialize_entry("min_backoff", &GoDuration(self.min_backoff))?;
        out.serialize_entry("max_backoff", &GoDuration(self.max_backoff))?;
        out.serialize_entry("exit_on_err", &self.exit_on_err)?;
        if let Some(ttl) = self.wrap_ttl {
            out.serialize_entry("wrap_ttl", &GoDuration(ttl))?;
        }
        out.serialize_entry("config", &self.kind)?;
        out.end()
    }
}

/// The method's `config` block.
impl Serialize for MethodKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        match self {
            MethodKind::Kubernetes { role, token_path } => {
                out.serialize_entry("role", role)?;
                out.serialize_entry("token_path", &PathText(token_path))?;
            }
            MethodKind::Jwt {
                role,
                path,
                remove_jwt_after_reading,
            } => {
                out.serialize_entry("role", role)?;
                out.serialize_entry("path", &PathText(path))?;
                out.serialize_entry("remove_jwt_after_reading", remove_jwt_after_reading)?;
            }
            MethodKind::AppRole {
                role_id_file_path,
                secret_id_file_path,
                remove_secret_id_file_after_reading,
                secret_id_response_wrapping_path,
            } => {
                out.serialize_entry("role_id_file_path", &PathText(role_id_file_path))?;
                if let Some(secret_id) = secret_id_file_path {
                    out.serialize_entry("secret_id_file_path", &PathText(secret_id))?;
                }
                out.serialize_entry(
                    "remove_secret_id_file_after_reading",
                    remove_secret_id_file_after_reading,
                )?;
                if let Some(path) = secret_id_response_wrapping_path {
                    out.serialize_entry("secret_id_response_wrapping_path", path)?;
                }
            }
            MethodKind::TokenFile { token_file_path } => {
                out.serialize_entry("token_file_path", &PathText(token_file_path))?;
            }
            MethodKind::Cert {
                name,
                ca_cert,
                client_cert,
                client_key,
                reload,
            } => {
                if let Some(name) = name {
                    out.serialize_entry("name", name)?;
                }
                for (key, path) in [
                    ("ca_cert", ca_cert),
                    ("client_cert", client_cert),
                    ("client_key", client_key),
                ] {
                    if let Some(path) = path {
                        out.serialize_entry(key, &PathText(path))?;
                    }
                }
                out.serialize_entry("reload", reload)?;
            }
        }
        out.end()
    }
}

impl Serialize for Sink {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `sink.config`; Vault Agent's file sink only takes the mode as an integer.
        #[derive(Serialize)]
        struct Config<'a> {
            path: PathText<'a>,
            mode: u32,
        }
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("type", "file")?;
        if let Some(ttl) = self.wrap_ttl {
            out.serialize_entry("wrap_ttl", &GoDuration(ttl))?;
        }
        if let Some(encryption) = &self.encryption {
            out.serialize_entry("dh_type", "curve25519")?;
            out.serialize_entry("dh_path", &PathText(&encryption.dh_path))?;
            out.serialize_entry("derive_key", &encryption.derive_key)?;
            if !encryption.aad.is_empty() {
                out.serialize_entry("aad", &encryption.aad)?;
            }
        }
        let config = Config {
            path: PathText(&self.path),
            mode: self.mode,
        };
        out.serialize_entry("config", &config)?;
        out.end()
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `template.exec`.
        #[derive(Serialize)]
        struct Exec<'a> {
            command: &'a [String],
            timeout: GoDuration,
        }
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("destination", &PathText(&self.destination))?;
        match &self.source {
            TemplateSource::Contents(contents) => out.serialize_entry("contents", contents)?,
            TemplateSource::File(source) => out.serialize_entry("source", &PathText(source))?,
        }
        out.serialize_entry("perms", &OctalMode(self.perms))?;
        out.serialize_entry("error_on_missing_key", &self.error_on_missing_key)?;
        out.serialize_entry("left_delimiter", &self.left_delimiter)?;
        out.serialize_entry("right_delimiter", &self.right_delimiter)?;
        out.serialize_entry("create_dest_dirs", &self.create_dest_dirs)?;
        if self.backup {
            out.serialize_entry("backup", &true)?;
        }
        if let Some(user) = &self.user {
            out.serialize_entry("user", user)?;
        }
        if let Some(group) = &self.group {
            out.serialize_entry("group", group)?;
        }
        if let Some(sandbox) = &self.sandbox_path {
            out.serialize_entry("sandbox_path", &PathText(sandbox))?;
        }
        if !self.function_denylist.is_empty() {
            out.serialize_entry("function_denylist", &self.function_denylist)?;
        }
        if let Some(wait) = &self.wait {
            /// `template.wait`; `bool` ("enabled") only where a zero `min`
            /// would otherwise turn it off.
            #[derive(Serialize)]
            struct Wait {
                #[serde(skip_serializing_if = "Option::is_none")]
                bool: Option<bool>,
                min: GoDuration,
                max: GoDuration,
            }
            let wait = Wait {
                bool: wait.min.is_zero().then_some(true),
                min: GoDuration(wait.min),
                max: GoDuration(wait.max),
            };
            out.serialize_entry("wait", &wait)?;
        }
        if !self.error_fatal {
            out.serialize_entry("error_fatal", &false)?;
        }
        if let Some(argv) = &self.command {
            let exec = Exec {
                command: argv,
                timeout: GoDuration(self.command_timeout),
            };
            out.serialize_entry("exec", &exec)?;
        }
        out.end()
    }
}

/// `env_template`: a list of one-key objects, `[{"NAME": {..}}, ..]`, which
/// Vault Agent's JSON decoder reads as labelled blocks in this order.
struct EnvTemplates<'a>(&'a [EnvTemplate]);

impl Serialize for EnvTemplates<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_seq(Some(self.0.len()))?;
        for template in self.0 {
            out.serialize_element(&std::collections::BTreeMap::from([(
                template.name.as_str(),
                template,
            )]))?;
        }
        out.end()
    }
}

impl Serialize for EnvTemplate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        match &self.source {
            TemplateSource::Contents(contents) => out.serialize_entry("contents", contents)?,
            TemplateSource::File(source) => out.serialize_entry("source", &PathText(source))?,
        }
        out.serialize_entry("error_on_missing_key", &self.error_on_missing_key)?;
        out.serialize_entry("left_delimiter", &self.left_delimiter)?;
        out.serialize_entry("right_delimiter", &self.right_delimiter)?;
        if !self.function_denylist.is_empty() {
            out.serialize_entry("function_denylist", &self.function_denylist)?;
        }
        if !self.error_fatal {
            out.serialize_entry("error_fatal", &false)?;
        }
        out.end()
    }
}

impl Serialize for Exec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(3))?;
        out.serialize_entry("command", &self.command)?;
        out.serialize_entry(
            "restart_on_secret_changes",
            self.restart_on_secret_changes.name(),
        )?;
        out.serialize_entry("restart_stop_signal", self.restart_stop_signal.as_str())?;
        out.end()
    }
}

impl Serialize for TemplateConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(2))?;
        out.serialize_entry("exit_on_retry_failure", &self.exit_on_retry_failure)?;
        out.serialize_entry(
            "static_secret_render_interval",
            &GoDuration(self.static_secret_render_interval),
        )?;
        out.end()
    }
}

impl Serialize for Keyhole {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("revoke_on_shutdown", &self.revoke_on_shutdown)?;
        if !self.revoke_grace.is_zero() {
            out.serialize_entry("revoke_grace", &GoDuration(self.revoke_grace))?;
        }
        if let Some(addr) = &self.metrics_listen {
            out.serialize_entry("metrics_listen", &Text(addr))?;
        }
        if let Some(ready_file) = &self.ready_file {
            out.serialize_entry("ready_file", &PathText(ready_file))?;
        }
        if let Some(heartbeat_file) = &self.heartbeat_file {
            out.serialize_entry("heartbeat_file", &PathText(heartbeat_file))?;
        }
        if !self.reload.is_empty() {
            out.serialize_entry("reload", &self.reload)?;
        }
        out.end()
    }
}

impl Serialize for Reload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(3))?;
        out.serialize_entry("destination", &PathText(&self.destination))?;
        out.serialize_entry("signal", self.signal.as_str())?;
        out.serialize_entry("process", &self.process)?;
        out.end()
    }
}

/// Written with `type` as a key, the list form vault-k8s writes.
impl Serialize for Cache {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        if let Some(persist) = &self.persist {
            out.serialize_entry("persist", persist)?;
        }
        out.end()
    }
}

impl Serialize for Persist {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("type", "kubernetes")?;
        out.serialize_entry("path", &PathText(&self.path))?;
        out.serialize_entry("keep_after_import", &self.keep_after_import)?;
        out.serialize_entry("exit_on_err", &self.exit_on_err)?;
        if let Some(file) = &self.service_account_token_file {
            out.serialize_entry("service_account_token_file", &PathText(file))?;
        }
        out.end()
    }
}

impl Serialize for Listener {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `listener.agent_api`.
        #[derive(Serialize)]
        struct AgentApi {
            enable_quit: bool,
        }
        let mut out = serializer.serialize_map(None)?;
        match &self.address {
            ListenAddress::Tcp(address) => {
                out.serialize_entry("type", "tcp")?;
                out.serialize_entry("address", address)?;
            }
            ListenAddress::Unix { path, owner } => {
                out.serialize_entry("type", "unix")?;
                out.serialize_entry("address", &PathText(path))?;
                if let Some(owner) = owner {
                    out.serialize_entry("socket_mode", &OctalMode(owner.mode))?;
                    out.serialize_entry("socket_user", &owner.user)?;
                    out.serialize_entry("socket_group", &owner.group)?;
                }
            }
        }
        match &self.tls {
            None => out.serialize_entry("tls_disable", &true)?,
            Some(tls) => {
                out.serialize_entry("tls_cert_file", &PathText(&tls.cert_file))?;
                out.serialize_entry("tls_key_file", &PathText(&tls.key_file))?;
                if tls.min_version != TlsVersion::Tls12 {
                    out.serialize_entry("tls_min_version", tls.min_version.as_str())?;
                }
                if tls.max_version != TlsVersion::Tls13 {
                    out.serialize_entry("tls_max_version", tls.max_version.as_str())?;
                }
                if let ClientCerts::Required { ca_file } = &tls.client_certs {
                    out.serialize_entry("tls_require_and_verify_client_cert", &true)?;
                    if let Some(ca_file) = ca_file {
                        out.serialize_entry("tls_client_ca_file", &PathText(ca_file))?;
                    }
                }
            }
        }
        if self.role == ListenerRole::MetricsOnly {
            out.serialize_entry("role", "metrics_only")?;
        }
        let agent_api = AgentApi {
            enable_quit: self.enable_quit,
        };
        out.serialize_entry("agent_api", &agent_api)?;
        out.serialize_entry("require_request_header", &self.require_request_header)?;
        out.end()
    }
}

impl Serialize for ApiProxy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(1))?;
        match self {
            ApiProxy::AppToken => out.serialize_entry("use_auto_auth_token", &false)?,
            ApiProxy::AutoAuthIfMissing => out.serialize_entry("use_auto_auth_token", &true)?,
            ApiProxy::ForceAutoAuth => out.serialize_entry("use_auto_auth_token", "force")?,
        }
        out.end()
    }
}

/// A path as a JSON string; a path that is not UTF-8 is written lossily
/// rather than failing the whole config.
struct PathText<'a>(&'a Path);

impl Serialize for PathText<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string_lossy())
    }
}

/// A value as the JSON string of its `Display` text.
struct Text<'a, T>(&'a T);

impl<T: fmt::Display> Serialize for Text<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// A file mode as the octal string Vault Agent's `perms` takes, e.g. `"0640"`.
struct OctalMode(u32);

impl Serialize for OctalMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:04o}", self.0))
    }
}

/// A Go duration string that Vault parses back exactly: whole seconds as
/// `90s`, finer values in `ms` or `ns`.
struct GoDuration(Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}ns", d.as_nanos())
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for Telemetry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        if let Some(address) = &self.statsd {
            out.serialize_entry("statsd_address", address)?;
        }
        if let Some(address) = &self.dogstatsd {
            out.serialize_entry("dogstatsd_addr", address)?;
        }
        if !self.dogstatsd_tags.is_empty() {
            out.serialize_entry("dogstatsd_tags", &self.dogstatsd_tags)?;
        }
        if self.hostname_label {
            out.serialize_entry("enable_hostname_label", &true)?;
        }
        out.end()
    }
}
