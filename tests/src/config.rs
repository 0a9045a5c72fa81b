//! Vault Agent config files for tests, built from typed parts instead of text.
//!
//! [`AgentConfig`] writes the HCL that `bao agent` and `keyhole-agent` both read. Every
//! setting is a method, so a test changes a config by calling one, never by editing
//! text; settings a test leaves alone are left out of the file, so the agents' defaults
//! apply. Every string is quoted with [`hcl`], so any path or template is safe.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hcl::{hcl, hcl_list, hcl_path};

/// A Vault Agent config: the `vault` stanza, `auto_auth`, templates, `template_config`,
/// top-level settings and the keyhole-only `keyhole` stanza. Its [`Display`](fmt::Display)
/// is the HCL file.
///
/// ```
/// # use keyhole_tests::{AgentConfig, AutoAuth, Sink, Template};
/// let config = AgentConfig::new("http://127.0.0.1:8200")
///     .exit_after_auth(true)
///     .auto_auth(AutoAuth::jwt("app", "/run/jwt").sink(Sink::file("/run/token").mode(0o600)))
///     .template(Template::new("/out/db", "{{ with secret \"secret/data/db\" }}{{ end }}"))
///     .to_string();
/// assert!(config.contains("exit_after_auth = true\n"));
/// ```
#[derive(Clone, Debug)]
pub struct AgentConfig {
    address: String,
    ca_cert: Option<(PathBuf, String)>,
    client_cert: Option<(PathBuf, PathBuf)>,
    num_retries: Option<u32>,
    exit_after_auth: Option<bool>,
    pid_file: Option<PathBuf>,
    auto_auth: Option<AutoAuth>,
    templates: Vec<Template>,
    static_secret_render_interval: Option<Duration>,
    exit_on_retry_failure: Option<bool>,
    metrics_listen: Option<SocketAddr>,
    ready_file: Option<PathBuf>,
    heartbeat_file: Option<PathBuf>,
    revoke_on_shutdown: Option<bool>,
    revoke_grace: Option<Duration>,
    persist: Option<Persist>,
    env_templates: Vec<EnvTemplate>,
    exec: Option<Exec>,
    disable_idle_connections: Vec<String>,
    disable_keep_alives: Vec<String>,
    proxy_listener: Option<u16>,
    use_auto_auth_token: bool,
    cache: bool,
}

/// `cache { persist "kubernetes" { ... } }`.
#[derive(Clone, Debug)]
struct Persist {
    path: PathBuf,
    service_account_token_file: PathBuf,
    keep_after_import: bool,
}

impl AgentConfig {
    /// A config talking to Vault at `address` (`vault { address }`), with nothing else set.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            ca_cert: None,
            client_cert: None,
            num_retries: None,
            exit_after_auth: None,
            pid_file: None,
            auto_auth: None,
            templates: Vec::new(),
            static_secret_render_interval: None,
            exit_on_retry_failure: None,
            metrics_listen: None,
            ready_file: None,
            heartbeat_file: None,
            revoke_on_shutdown: None,
            revoke_grace: None,
            persist: None,
            env_templates: Vec::new(),
            exec: None,
            disable_idle_connections: Vec::new(),
            disable_keep_alives: Vec::new(),
            proxy_listener: None,
            use_auto_auth_token: false,
            cache: false,
        }
    }

    /// Adds an `env_template "NAME" { contents }` stanza: the environment variable
    /// `name` of the `exec` child holds what `contents` renders.
    pub fn env_template(self, name: &str, contents: &str) -> Self {
        self.env_template_from(EnvTemplate::new(name, contents))
    }

    /// Adds an `env_template` stanza with the settings `template` has.
    pub fn env_template_from(mut self, template: EnvTemplate) -> Self {
        self.env_templates.push(template);
        self
    }

    /// The `exec` stanza: the child process of supervisor mode.
    pub fn exec(mut self, exec: Exec) -> Self {
        self.exec = Some(exec);
        self
    }

    /// `vault { ca_cert, tls_server_name }`: trust the CA in `ca_cert` for a server
    /// certificate issued to `server_name`.
    pub fn ca_cert(mut self, ca_cert: impl AsRef<Path>, server_name: &str) -> Self {
        self.ca_cert = Some((ca_cert.as_ref().to_owned(), server_name.to_owned()));
        self
    }

    /// `vault { client_cert, client_key }`: the client certificate every connection to
    /// Vault presents.
    pub fn client_cert(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.client_cert = Some((cert.as_ref().to_owned(), key.as_ref().to_owned()));
        self
    }

    /// `vault { retry { num_retries } }`: how often a failed request is retried.
    pub fn num_retries(mut self, retries: u32) -> Self {
        self.num_retries = Some(retries);
        self
    }

    /// `exit_after_auth`: `true` is init mode, rendering once and exiting.
    pub fn exit_after_auth(mut self, exit: bool) -> Self {
        self.exit_after_auth = Some(exit);
        self
    }

    /// `pid_file`: where the agent writes its process id.
    pub fn pid_file(mut self, path: impl AsRef<Path>) -> Self {
        self.pid_file = Some(path.as_ref().to_owned());
        self
    }

    /// The `auto_auth` stanza: how the agent logs in and where it puts the token.
    pub fn auto_auth(mut self, auto_auth: AutoAuth) -> Self {
        self.auto_auth = Some(auto_auth);
        self
    }

    /// Adds a `template` stanza after those already added.
    pub fn template(mut self, template: Template) -> Self {
        self.templates.push(template);
        self
    }

    /// Adds `template` stanzas, in order, after those already added.
    pub fn templates(mut self, templates: impl IntoIterator<Item = Template>) -> Self {
        self.templates.extend(templates);
        self
    }

    /// `template_config { static_secret_render_interval }`: how often secrets without a
    /// lease are read again (to the millisecond).
    pub fn static_secret_render_interval(mut self, interval: Duration) -> Self {
        self.static_secret_render_interval = Some(interval);
        self
    }

    /// `template_config { exit_on_retry_failure }`.
    pub fn exit_on_retry_failure(mut self, exit: bool) -> Self {
        self.exit_on_retry_failure = Some(exit);
        self
    }

    /// `keyhole { metrics_listen }`: serve Prometheus metrics at `addr`.
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// `keyhole { ready_file }`: the marker file created once every template rendered.
    pub fn ready_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ready_file = Some(path.as_ref().to_owned());
        self
    }

    /// `keyhole { heartbeat_file }`: the file the running agent touches for its liveness
    /// probe.
    pub fn heartbeat_file(mut self, path: impl AsRef<Path>) -> Self {
        self.heartbeat_file = Some(path.as_ref().to_owned());
        self
    }

    /// `keyhole { revoke_on_shutdown }`: revoke the token and leases on SIGTERM.
    pub fn revoke_on_shutdown(mut self, revoke: bool) -> Self {
        self.revoke_on_shutdown = Some(revoke);
        self
    }

    /// `keyhole { revoke_grace }`: the wait between SIGTERM and revoking.
    pub fn revoke_grace(mut self, grace: Duration) -> Self {
        self.revoke_grace = Some(grace);
        self
    }

    /// `disable_idle_connections`: parts of the agent, as Vault Agent names them.
    pub fn disable_idle_connections(mut self, parts: &[&str]) -> Self {
        self.disable_idle_connections = parts.iter().map(|part| (*part).to_owned()).collect();
        self
    }

    /// `disable_keep_alives`: parts of the agent, as Vault Agent names them.
    pub fn disable_keep_alives(mut self, parts: &[&str]) -> Self {
        self.disable_keep_alives = parts.iter().map(|part| (*part).to_owned()).collect();
        self
    }

    /// `listener "tcp" { address = "127.0.0.1:<port>", tls_disable = true }`: the API
    /// proxy, over plain HTTP.
    pub fn proxy_listener(mut self, port: u16) -> Self {
        self.proxy_listener = Some(port);
        self
    }

    /// `api_proxy { use_auto_auth_token = true }`: requests without a token get the
    /// agent's.
    pub fn use_auto_auth_token(mut self) -> Self {
        self.use_auto_auth_token = true;
        self
    }

    /// `cache { }`: the API proxy's lease cache.
    pub fn cache(mut self) -> Self {
        self.cache = true;
        self
    }

    /// `cache { persist "kubernetes" { path, service_account_token_file,
    /// keep_after_import } }`: hand the token and leases to the next agent.
    pub fn persist(
        mut self,
        path: impl AsRef<Path>,
        service_account_token_file: impl AsRef<Path>,
        keep_after_import: bool,
    ) -> Self {
        self.persist = Some(Persist {
            path: path.as_ref().to_owned(),
            service_account_token_file: service_account_token_file.as_ref().to_owned(),
            keep_after_import,
        });
        self
    }
}

impl fmt::Display for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Writer::default();
        out.block("vault", |out| {
            out.attr("address", hcl(&self.address));
            if let Some((ca_cert, server_name)) = &self.ca_cert {
                out.attr("ca_cert", hcl_path(ca_cert));
                out.attr("tls_server_name", hcl(server_name));
            }
            if let Some((cert, key)) = &self.client_cert {
                out.attr("client_cert", hcl_path(cert));
                out.attr("client_key", hcl_path(key));
            }
            if let Some(retries) = self.num_retries {
                out.block("retry", |out| out.attr("num_retries", retries));
            }
        });
        out.opt_attr("exit_after_auth", self.exit_after_auth);
        out.opt_attr("pid_file", self.pid_file.as_deref().map(hcl_path));
        for (key, parts) in [
            ("disable_idle_connections", &self.disable_idle_connections),
            ("disable_keep_alives", &self.disable_keep_alives),
        ] {
            if !parts.is_empty() {
                out.attr(key, hcl_list(parts));
            }
        }
        if let Some(auto_auth) = &self.auto_auth {
            auto_auth.write(&mut out);
        }
        if self.static_secret_render_interval.is_some() || self.exit_on_retry_failure.is_some() {
            out.block("template_config", |out| {
                out.opt_attr(
                    "static_secret_render_interval",
                    self.static_secret_render_interval.map(duration),
                );
                out.opt_attr("exit_on_retry_failure", self.exit_on_retry_failure);
            });
        }
        if self.metrics_listen.is_some()
            || self.ready_file.is_some()
            || self.heartbeat_file.is_some()
            || self.revoke_on_shutdown.is_some()
            || self.revoke_grace.is_some()
        {
            out.block("keyhole", |out| {
                out.opt_attr(
                    "metrics_listen",
                    self.metrics_listen.map(|a| hcl(a.to_string())),
                );
                out.opt_attr("ready_file", self.ready_file.as_deref().map(hcl_path));
                out.opt_attr(
                    "heartbeat_file",
                    self.heartbeat_file.as_deref().map(hcl_path),
                );
                out.opt_attr("revoke_on_shutdown", self.revoke_on_shutdown);
                out.opt_attr("revoke_grace", self.revoke_grace.map(duration));
            });
        }
        if let Some(port) = self.proxy_listener {
            out.block("listener \"tcp\"", |out| {
                out.attr("address", hcl(format!("127.0.0.1:{port}")));
                out.attr("tls_disable", true);
            });
        }
        if self.use_auto_auth_token {
            out.block("api_proxy", |out| out.attr("use_auto_auth_token", true));
        }
        if self.cache || self.persist.is_some() {
            out.block("cache", |out| {
                if let Some(persist) = &self.persist {
                    out.block("persist \"kubernetes\"", |out| {
                        out.attr("path", hcl_path(&persist.path));
                        out.attr(
                            "service_account_token_file",
                            hcl_path(&persist.service_account_token_file),
                        );
                        out.attr("keep_after_import", persist.keep_after_import);
                    });
                }
            });
        }
        for template in &self.templates {
            template.write(&mut out);
        }
        for template in &self.env_templates {
            template.write(&mut out);
        }
        if let Some(exec) = &self.exec {
            exec.write(&mut out);
        }
        f.write_str(&out.text)
    }
}

/// The `auto_auth` stanza: one login `method` and its token `sink`s.
#[derive(Clone, Debug)]
pub struct AutoAuth {
    kind: &'static str,
    mount_path: Option<String>,
    backoff: Option<(Duration, Duration)>,
    wrap_ttl: Option<Duration>,
    /// The method's `config` map, values already written as HCL.
    config: Vec<(&'static str, String)>,
    sinks: Vec<Sink>,
}

impl AutoAuth {
    fn method(kind: &'static str, config: Vec<(&'static str, String)>) -> Self {
        Self {
            kind,
            mount_path: None,
            backoff: None,
            wrap_ttl: None,
            config,
            sinks: Vec::new(),
        }
    }

    /// `method "jwt"` logging in as `role` with the JWT in the file at `path`.
    pub fn jwt(role: &str, path: impl AsRef<Path>) -> Self {
        Self::method(
            "jwt",
            vec![("role", hcl(role)), ("path", hcl_path(path.as_ref()))],
        )
    }

    /// `method "kubernetes"` logging in as `role` with the service-account token at
    /// `token_path`.
    pub fn kubernetes(role: &str, token_path: impl AsRef<Path>) -> Self {
        Self::method(
            "kubernetes",
            vec![
                ("role", hcl(role)),
                ("token_path", hcl_path(token_path.as_ref())),
            ],
        )
    }

    /// `method "approle"` with the role id and secret id read from these files.
    pub fn approle(role_id_file: impl AsRef<Path>, secret_id_file: impl AsRef<Path>) -> Self {
        Self::method(
            "approle",
            vec![
                ("role_id_file_path", hcl_path(role_id_file.as_ref())),
                ("secret_id_file_path", hcl_path(secret_id_file.as_ref())),
            ],
        )
    }

    /// `method "token_file"` using the token in the file at `path`.
    pub fn token_file(path: impl AsRef<Path>) -> Self {
        Self::method(
            "token_file",
            vec![("token_file_path", hcl_path(path.as_ref()))],
        )
    }

    /// `method "cert"` with nothing in its config: the login presents the client
    /// certificate of the `vault` stanza.
    pub fn cert() -> Self {
        Self::method("cert", Vec::new())
    }

    /// `config { name }` of a `cert` method: the certificate role to log in as.
    pub fn cert_name(self, name: &str) -> Self {
        self.config_entry("name", hcl(name))
    }

    /// `config { client_cert, client_key }` of a `cert` method: the login presents this
    /// certificate instead of the `vault` stanza's.
    pub fn cert_files(self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.config_entry("client_cert", hcl_path(cert.as_ref()))
            .config_entry("client_key", hcl_path(key.as_ref()))
    }

    /// `config { reload }` of a `cert` method: read its files again on every login.
    pub fn cert_reload(self, reload: bool) -> Self {
        self.config_entry("reload", reload.to_string())
    }

    /// The method's `mount_path`, e.g. `auth/kubernetes`.
    pub fn mount_path(mut self, path: &str) -> Self {
        self.mount_path = Some(path.to_owned());
        self
    }

    /// The method's `min_backoff` and `max_backoff` between failed logins (to the
    /// millisecond).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Some((min, max));
        self
    }

    /// The method's `wrap_ttl`: the login's answer is response-wrapped for `ttl`, and the
    /// one sink holds its `wrap_info`.
    pub fn wrap_ttl(mut self, ttl: Duration) -> Self {
        self.wrap_ttl = Some(ttl);
        self
    }

    /// `config { remove_jwt_after_reading }` of a `jwt` method.
    pub fn remove_jwt_after_reading(self, remove: bool) -> Self {
        self.config_entry("remove_jwt_after_reading", remove.to_string())
    }

    /// `config { remove_secret_id_file_after_reading }` of an `approle` method.
    pub fn remove_secret_id_file_after_reading(self, remove: bool) -> Self {
        self.config_entry("remove_secret_id_file_after_reading", remove.to_string())
    }

    /// `config { secret_id_response_wrapping_path }` of an `approle` method: the secret
    /// id file holds a wrapping token created by a request to `path`.
    pub fn secret_id_response_wrapping_path(self, path: &str) -> Self {
        self.config_entry("secret_id_response_wrapping_path", hcl(path))
    }

    /// Adds a token sink.
    pub fn sink(mut self, sink: Sink) -> Self {
        self.sinks.push(sink);
        self
    }

    fn config_entry(mut self, key: &'static str, value: String) -> Self {
        match self.config.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.config.push((key, value)),
        }
        self
    }

    fn write(&self, out: &mut Writer) {
        out.block("auto_auth", |out| {
            out.block(&format!("method {}", hcl(self.kind)), |out| {
                out.opt_attr("mount_path", self.mount_path.as_deref().map(hcl));
                if let Some((min, max)) = self.backoff {
                    out.attr("min_backoff", duration(min));
                    out.attr("max_backoff", duration(max));
                }
                out.opt_attr("wrap_ttl", self.wrap_ttl.map(duration));
                out.block("config =", |out| {
                    for (key, value) in &self.config {
                        out.attr(key, value);
                    }
                });
            });
            for sink in &self.sinks {
                out.block("sink \"file\"", |out| {
                    out.opt_attr("wrap_ttl", sink.wrap_ttl.map(duration));
                    if let Some((dh_path, derive_key, aad)) = &sink.encryption {
                        out.attr("dh_type", hcl("curve25519"));
                        out.attr("dh_path", hcl_path(dh_path));
                        out.attr("derive_key", derive_key.to_string());
                        out.attr("aad", hcl(aad));
                    }
                    out.block("config =", |out| {
                        out.attr("path", hcl_path(&sink.path));
                        out.opt_attr("mode", sink.mode.map(|mode| format!("0{mode:o}")));
                    });
                });
            }
        });
    }
}

/// A `sink "file"` of `auto_auth`: where the agent writes its Vault token.
#[derive(Clone, Debug)]
pub struct Sink {
    path: PathBuf,
    mode: Option<u32>,
    wrap_ttl: Option<Duration>,
    encryption: Option<(PathBuf, bool, String)>,
}

impl Sink {
    /// A file sink writing the token to `path`.
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            mode: None,
            wrap_ttl: None,
            encryption: None,
        }
    }

    /// `wrap_ttl`: the sink holds the token response-wrapped for `ttl`.
    pub fn wrap_ttl(mut self, ttl: Duration) -> Self {
        self.wrap_ttl = Some(ttl);
        self
    }

    /// `dh_type = "curve25519"` with `dh_path`, `derive_key` and `aad`: the
    /// sink holds the token encrypted for the key in `dh_path`.
    pub fn encrypted(mut self, dh_path: impl AsRef<Path>, derive_key: bool, aad: &str) -> Self {
        self.encryption = Some((dh_path.as_ref().to_owned(), derive_key, aad.to_owned()));
        self
    }

    /// The token file's `mode`, e.g. `0o600` (written as the octal `0600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
}

/// An `env_template "NAME"` stanza of supervisor mode.
#[derive(Clone, Debug)]
pub struct EnvTemplate {
    name: String,
    contents: String,
    function_denylist: Vec<String>,
    error_fatal: Option<bool>,
}

impl EnvTemplate {
    /// The environment variable `name` of the `exec` child holds what `contents`
    /// renders.
    pub fn new(name: &str, contents: &str) -> Self {
        Self {
            name: name.to_owned(),
            contents: contents.to_owned(),
            function_denylist: Vec::new(),
            error_fatal: None,
        }
    }

    /// `function_denylist`: functions whose calls fail the render.
    pub fn function_denylist(mut self, names: &[&str]) -> Self {
        self.function_denylist = names.iter().map(|name| (*name).to_owned()).collect();
        self
    }

    /// `error_fatal`: whether the template's failure fails an init-mode run.
    pub fn error_fatal(mut self, fatal: bool) -> Self {
        self.error_fatal = Some(fatal);
        self
    }

    fn write(&self, out: &mut Writer) {
        out.block(&format!("env_template {}", hcl(&self.name)), |out| {
            out.attr("contents", hcl(&self.contents));
            if !self.function_denylist.is_empty() {
                out.attr("function_denylist", hcl_list(&self.function_denylist));
            }
            out.opt_attr("error_fatal", self.error_fatal);
        });
    }
}

/// A `template` stanza: what to render and where.
#[derive(Clone, Debug)]
pub struct Template {
    destination: PathBuf,
    source: Source,
    perms: Option<u32>,
    command: Option<Vec<String>>,
    error_on_missing_key: Option<bool>,
    delimiters: Option<(String, String)>,
    create_dest_dirs: Option<bool>,
    owner: (Option<String>, Option<String>),
    sandbox_path: Option<PathBuf>,
    function_denylist: Vec<String>,
    wait: Option<(Duration, Duration)>,
    error_fatal: Option<bool>,
}

/// Where a template's text comes from.
#[derive(Clone, Debug)]
enum Source {
    /// `contents`.
    Inline(String),
    /// `source`: a template file.
    File(PathBuf),
}

impl Template {
    fn with_source(destination: impl AsRef<Path>, source: Source) -> Self {
        Self {
            destination: destination.as_ref().to_owned(),
            source,
            perms: None,
            command: None,
            error_on_missing_key: None,
            delimiters: None,
            create_dest_dirs: None,
            owner: (None, None),
            sandbox_path: None,
            function_denylist: Vec::new(),
            wait: None,
            error_fatal: None,
        }
    }

    /// Renders the template text `contents` into `destination`.
    pub fn new(destination: impl AsRef<Path>, contents: impl Into<String>) -> Self {
        Self::with_source(destination, Source::Inline(contents.into()))
    }

    /// Renders the template file at `source` into `destination`.
    pub fn from_file(destination: impl AsRef<Path>, source: impl AsRef<Path>) -> Self {
        Self::with_source(destination, Source::File(source.as_ref().to_owned()))
    }

    /// The destination's `perms`, e.g. `0o640` (written as the string `"0640"`).
    pub fn perms(mut self, perms: u32) -> Self {
        self.perms = Some(perms);
        self
    }

    /// `exec { command }`: the command (argv) run after the destination changed.
    pub fn command<S: AsRef<str>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.command = Some(argv.into_iter().map(|a| a.as_ref().to_owned()).collect());
        self
    }

    /// `error_on_missing_key`: fail the render when a map key is missing.
    pub fn error_on_missing_key(mut self, error: bool) -> Self {
        self.error_on_missing_key = Some(error);
        self
    }

    /// `left_delimiter` and `right_delimiter` of actions, instead of `{{` and `}}`.
    pub fn delimiters(mut self, left: &str, right: &str) -> Self {
        self.delimiters = Some((left.to_owned(), right.to_owned()));
        self
    }

    /// `create_dest_dirs`: create the destination's missing parent directories.
    pub fn create_dest_dirs(mut self, create: bool) -> Self {
        self.create_dest_dirs = Some(create);
        self
    }

    /// `user` and `group` of the destination, each a name or a numeric id.
    pub fn owner(mut self, user: &str, group: &str) -> Self {
        self.owner = (Some(user.to_owned()), Some(group.to_owned()));
        self
    }

    /// `sandbox_path`: the directory `file` calls must read inside.
    pub fn sandbox_path(mut self, dir: impl AsRef<Path>) -> Self {
        self.sandbox_path = Some(dir.as_ref().to_owned());
        self
    }

    /// `function_denylist`: functions whose calls fail the render.
    pub fn function_denylist(mut self, names: &[&str]) -> Self {
        self.function_denylist = names.iter().map(|name| (*name).to_owned()).collect();
        self
    }

    /// `wait { min max }`: a change is written once the secrets stayed
    /// unchanged for `min`, at the latest `max` after it.
    pub fn wait(mut self, min: Duration, max: Duration) -> Self {
        self.wait = Some((min, max));
        self
    }

    /// `error_fatal`: whether the template's failure fails an init-mode run.
    pub fn error_fatal(mut self, fatal: bool) -> Self {
        self.error_fatal = Some(fatal);
        self
    }

    fn write(&self, out: &mut Writer) {
        out.block("template", |out| {
            out.attr("destination", hcl_path(&self.destination));
            match &self.source {
                Source::Inline(contents) => out.attr("contents", hcl(contents)),
                Source::File(path) => out.attr("source", hcl_path(path)),
            }
            out.opt_attr("perms", self.perms.map(|perms| hcl(format!("{perms:04o}"))));
            out.opt_attr("error_on_missing_key", self.error_on_missing_key);
            if let Some((left, right)) = &self.delimiters {
                out.attr("left_delimiter", hcl(left));
                out.attr("right_delimiter", hcl(right));
            }
            out.opt_attr("create_dest_dirs", self.create_dest_dirs);
            out.opt_attr("user", self.owner.0.as_ref().map(hcl));
            out.opt_attr("group", self.owner.1.as_ref().map(hcl));
            out.opt_attr("sandbox_path", self.sandbox_path.as_deref().map(hcl_path));
            out.opt_attr("error_fatal", self.error_fatal);
            if let Some((min, max)) = self.wait {
                out.block("wait", |out| {
                    out.attr("min", hcl(format!("{}ms", min.as_millis())));
                    out.attr("max", hcl(format!("{}ms", max.as_millis())));
                });
            }
            if !self.function_denylist.is_empty() {
                out.attr("function_denylist", hcl_list(&self.function_denylist));
            }
            if let Some(argv) = &self.command {
                out.block("exec", |out| {
                    out.attr("command", hcl_list(argv));
                });
            }
        });
    }
}

/// The `exec { command, restart_on_secret_changes, restart_stop_signal }` stanza.
#[derive(Clone, Debug)]
pub struct Exec {
    command: Vec<String>,
    restart_on_secret_changes: Option<String>,
    restart_stop_signal: Option<String>,
}

impl Exec {
    /// Runs `command` (a list, as Vault Agent takes it); the agents' defaults for the rest.
    pub fn new(command: &[&str]) -> Self {
        Self {
            command: command.iter().map(|arg| (*arg).to_owned()).collect(),
            restart_on_secret_changes: None,
            restart_stop_signal: None,
        }
    }

    /// `restart_on_secret_changes`: `"always"` or `"never"`.
    pub fn restart_on_secret_changes(mut self, when: &str) -> Self {
        self.restart_on_secret_changes = Some(when.to_owned());
        self
    }

    /// `restart_stop_signal`, e.g. `"SIGINT"`.
    pub fn restart_stop_signal(mut self, signal: &str) -> Self {
        self.restart_stop_signal = Some(signal.to_owned());
        self
    }

    fn write(&self, out: &mut Writer) {
        out.block("exec", |out| {
            out.attr("command", hcl_list(&self.command));
            out.opt_attr(
                "restart_on_secret_changes",
                self.restart_on_secret_changes.as_ref().map(hcl),
            );
            out.opt_attr(
                "restart_stop_signal",
                self.restart_stop_signal.as_ref().map(hcl),
            );
        });
    }
}

/// A duration as Vault Agent reads one: `"2s"`, or `"100ms"` when not whole seconds.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        hcl(format!("{}s", d.as_secs()))
    } else {
        hcl(format!("{}ms", d.as_millis()))
    }
}

/// HCL text under construction, indented two spaces per open block.
#[derive(Default)]
struct Writer {
    text: String,
    depth: usize,
}

impl Writer {
    /// `key = value`, with `value` already written as HCL.
    fn attr(&mut self, key: &str, value: impl fmt::Display) {
        self.line(&format!("{key} = {value}"));
    }

    /// [`Writer::attr`] when `value` is set.
    fn opt_attr(&mut self, key: &str, value: Option<impl fmt::Display>) {
        if let Some(value) = value {
            self.attr(key, value);
        }
    }

    /// `header {`, the body `body` writes, `}`.
    fn block(&mut self, header: &str, body: impl FnOnce(&mut Self)) {
        self.line(&format!("{header} {{"));
        self.depth += 1;
        body(self);
        self.depth -= 1;
        self.line("}");
    }

    fn line(&mut self, line: &str) {
        for _ in 0..self.depth {
            self.text.push_str("  ");
        }
        self.text.push_str(line);
        self.text.push('\n');
    }
}
