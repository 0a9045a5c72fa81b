//! The agent config the injected agent receives in `KEYHOLE_AGENT_CONFIG`.
//!
//! Built from an [`AgentSpec`] as the agent's own typed
//! [`AgentConfig`], the way vault-k8s builds its agent config, and written
//! out by the agent's emitter, so the same JSON also runs under `bao agent`;
//! keyhole-only settings go in the top-level `keyhole` stanza.
//!
//! Turning the annotations' text into typed values is where a value the agent
//! would refuse is caught: the pod is denied naming the annotation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use keyhole_agent::config::{
    self, AgentConfig, AuthType, AutoAuth, Choice, DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF,
    DEFAULT_NUM_RETRIES, DEFAULT_PERMS, DEFAULT_SINK_MODE, DEFAULT_STATIC_SECRET_RENDER_INTERVAL,
    Keyhole, Logging, Method, MethodKind, Reload, Sink, Template, TemplateConfig, TemplateSource,
    Vault,
};

use crate::agent_paths::{CACHE_DIR, HEARTBEAT_FILE, PID_FILE, READY_FILE, TOKEN_SINK};
use crate::annotations::keys::{
    self, AUTH_CONFIG, AUTH_MAX_BACKOFF, AUTH_MIN_BACKOFF, COMMAND, Key, PERMS, RELOAD_SIGNAL,
    STATIC_SECRET_RENDER_INTERVAL,
};
use crate::annotations::spec::{AgentSpec, AuthSpec, Secret, TemplateText, token_file};
use crate::annotations::values;
use crate::denial::Denial;

/// Result of this module.
pub type Result<T, E = Denial> = std::result::Result<T, E>;

/// The config of the long-running agent (native or classic sidecar), or a
/// denial naming the annotation whose value the agent could not take.
/// [`for_init`] turns it into the classic init container's.
pub fn agent_config(spec: &AgentSpec, token_path: &str) -> Result<AgentConfig> {
    let templates = spec
        .secrets
        .iter()
        .map(template)
        .collect::<Result<Vec<_>>>()?;
    let reload = spec
        .secrets
        .iter()
        .filter_map(|secret| reload(secret).transpose())
        .collect::<Result<Vec<_>>>()?;
    let static_secret_render_interval = duration(
        STATIC_SECRET_RENDER_INTERVAL,
        spec.static_secret_render_interval.as_deref(),
        DEFAULT_STATIC_SECRET_RENDER_INTERVAL,
    )?;
    Ok(AgentConfig {
        vault: vault(spec),
        auto_auth: Some(auto_auth(spec, token_path)?),
        templates,
        supervisor: None,
        template_config: TemplateConfig {
            exit_on_retry_failure: spec.exit_on_retry_failure,
            static_secret_render_interval,
        },
        exit_after_auth: false,
        pid_file: Some(PID_FILE.into()),
        keyhole: Keyhole {
            revoke_on_shutdown: spec.revoke_on_shutdown,
            revoke_grace: Duration::from_secs(spec.revoke_grace),
            metrics_listen: None,
            ready_file: Some(READY_FILE.into()),
            heartbeat_file: Some(HEARTBEAT_FILE.into()),
            reload,
        },
        listen: listen(spec, token_path),
        log: Logging::default(),
        connections: spec.connections,
        telemetry: spec.telemetry.clone(),
    })
}

/// The agent's listeners: the localhost listener of `agent-cache-enable`
/// and `agent-enable-quit`, as vault-k8s writes it (plain HTTP on
/// `127.0.0.1`, reachable only from the pod; `bao agent` needs a `cache`
/// stanza for it), and the metrics listener of
/// `keyhole.dev/agent-metrics-port` on every address of the pod, so that
/// Prometheus can scrape it, serving nothing but the metrics.
///
/// An agent that renders templates keeps a persistent cache, so that the
/// classic sidecar takes over the init container's token and leases, and a
/// restarted container its predecessor's: one login and one set of leases
/// per pod. The state is kept after import (vault-k8s removes it) for the
/// next restart. `bao agent` takes a `cache` stanza only beside a template
/// or a listener, and the init container has no listener, so an agent that
/// only writes the token logs in on each start, as in vault-k8s.
fn listen(spec: &AgentSpec, token_path: &str) -> config::Listen {
    let mut listen = config::Listen::default();
    if !spec.secrets.is_empty() {
        listen.cache = Some(config::Cache {
            persist: Some(config::Persist {
                path: CACHE_DIR.into(),
                keep_after_import: true,
                exit_on_err: spec.cache_exit_on_err,
                service_account_token_file: Some(token_path.into()),
            }),
        });
    }
    if let Some(api) = spec.api_listener {
        listen.listeners.push(config::Listener {
            address: config::ListenAddress::Tcp(format!("127.0.0.1:{}", api.port)),
            tls: None,
            role: config::ListenerRole::Default,
            enable_quit: api.enable_quit,
            require_request_header: false,
        });
        listen.api_proxy = api.proxy;
        listen.cache.get_or_insert_with(config::Cache::default);
    }
    if let Some(port) = spec.metrics_port {
        listen.listeners.push(config::Listener {
            address: config::ListenAddress::Tcp(format!("0.0.0.0:{port}")),
            tls: None,
            role: config::ListenerRole::MetricsOnly,
            enable_quit: false,
            require_request_header: false,
        });
    }
    listen
}

/// The classic init container's config from the long-running agent's: it
/// renders once and exits.
pub fn for_init(mut config: AgentConfig) -> AgentConfig {
    config.exit_after_auth = true;
    // The init container's token and leases must outlive it: the app uses
    // the secrets it rendered.
    config.keyhole.revoke_on_shutdown = false;
    // It has no liveness probe to read a heartbeat, and no app talks to it:
    // the app starts once it has exited.
    config.keyhole.heartbeat_file = None;
    // It keeps only the persistent cache, for the sidecar: without a
    // listener, a cache stanza with nothing to persist would be refused.
    config.listen = config::Listen {
        cache: config.listen.cache.take().filter(|c| c.persist.is_some()),
        ..config::Listen::default()
    };
    config
}

fn vault(spec: &AgentSpec) -> Vault {
    let v = &spec.vault;
    let path = |p: &Option<String>| p.as_ref().map(PathBuf::from);
    Vault {
        address: Some(v.address.clone()),
        ca_cert: path(&v.ca_cert),
        ca_path: path(&v.ca_path),
        client_cert: path(&v.client_cert),
        client_key: path(&v.client_key),
        tls_skip_verify: v.tls_skip_verify,
        tls_server_name: v.tls_server_name.clone(),
        namespace: v.namespace.clone(),
        // As in Vault Agent, 0 retries means the default.
        num_retries: v
            .max_retries
            .filter(|n| *n != 0)
            .unwrap_or(DEFAULT_NUM_RETRIES),
    }
}

fn auto_auth(spec: &AgentSpec, token_path: &str) -> Result<AutoAuth> {
    let auth = &spec.auth;
    let sink = |path: &str| Sink {
        path: path.into(),
        mode: DEFAULT_SINK_MODE,
        wrap_ttl: None,
        encryption: None,
    };
    let mut sinks = vec![sink(TOKEN_SINK)];
    if spec.inject_token {
        sinks.push(sink(&token_file(&spec.secret_volume_path)));
    }
    let method = Method {
        kind: method_kind(auth, token_path)?,
        // The agent reads `auth/k8s/` and `auth/k8s` as one mount.
        mount_path: auth.path.trim_end_matches('/').to_owned(),
        namespace: None,
        min_backoff: duration(
            AUTH_MIN_BACKOFF,
            auth.min_backoff.as_deref(),
            DEFAULT_MIN_BACKOFF,
        )?,
        max_backoff: duration(
            AUTH_MAX_BACKOFF,
            auth.max_backoff.as_deref(),
            DEFAULT_MAX_BACKOFF,
        )?,
        exit_on_err: auth.exit_on_err,
        wrap_ttl: None,
    };
    Ok(AutoAuth { method, sinks })
}

/// The login method from `auth-type`, `role` and the `auth-config-*`
/// parameters, which may override the token path keyhole mounts.
fn method_kind(auth: &AuthSpec, token_path: &str) -> Result<MethodKind> {
    let mut params = Params::new(auth.kind.name(), &auth.config);
    let kind = match auth.kind {
        AuthType::Kubernetes => MethodKind::Kubernetes {
            role: params.role(auth.role.as_deref())?,
            token_path: params
                .path("token_path")
                .unwrap_or_else(|| token_path.into()),
        },
        AuthType::Jwt => MethodKind::Jwt {
            role: params.role(auth.role.as_deref())?,
            path: params.path("path").unwrap_or_else(|| token_path.into()),
            // The projected token is read-only and re-read on every login.
            remove_jwt_after_reading: params.bool("remove_jwt_after_reading", false)?,
        },
        AuthType::AppRole => MethodKind::AppRole {
            role_id_file_path: params.required_path("role_id_file_path")?,
            secret_id_file_path: params.path("secret_id_file_path"),
            remove_secret_id_file_after_reading: params
                .bool("remove_secret_id_file_after_reading", true)?,
            secret_id_response_wrapping_path: params
                .text("secret_id_response_wrapping_path")
                .filter(|path| !path.is_empty()),
        },
        AuthType::TokenFile => MethodKind::TokenFile {
            token_file_path: params.required_path("token_file_path")?,
        },
        // The `client-cert`/`client-key` annotations reach the agent through
        // the `vault` stanza, whose certificate the login presents; these
        // parameters give the login certificate files of its own.
        AuthType::Cert => MethodKind::Cert {
            name: params.text("name"),
            ca_cert: params.path("ca_cert"),
            client_cert: params.path("client_cert"),
            client_key: params.path("client_key"),
            reload: params.bool("reload", false)?,
        },
    };
    params.finish()?;
    Ok(kind)
}

/// The `auth-config-*` parameters, taken one by one so that any left over,
/// which the method does not read, deny the pod.
struct Params<'a> {
    kind: &'a str,
    left: BTreeMap<&'a str, &'a str>,
}

impl<'a> Params<'a> {
    fn new(kind: &'a str, config: &'a BTreeMap<String, String>) -> Self {
        let left = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Self { kind, left }
    }

    /// The annotation that sets `param` (dashes for underscores).
    fn annotation(param: &str) -> String {
        AUTH_CONFIG.key(&param.replace('_', "-"))
    }

    fn text(&mut self, param: &str) -> Option<String> {
        self.left.remove(param).map(str::to_owned)
    }

    fn path(&mut self, param: &str) -> Option<PathBuf> {
        self.left.remove(param).map(PathBuf::from)
    }

    fn required_path(&mut self, param: &str) -> Result<PathBuf> {
        self.path(param).ok_or_else(|| {
            Denial::new(
                Self::annotation(param),
                format!("the {} auth method needs this annotation", self.kind),
            )
        })
    }

    fn bool(&mut self, param: &str, default: bool) -> Result<bool> {
        match self.left.remove(param) {
            Some(value) => values::boolean(value)
                .map_err(|reason| Denial::new(Self::annotation(param), reason)),
            None => Ok(default),
        }
    }

    /// The Vault role: the `role` annotation, else `auth-config-role`.
    fn role(&mut self, annotated: Option<&str>) -> Result<String> {
        let param = self.left.remove("role");
        annotated.or(param).map(str::to_owned).ok_or_else(|| {
            Denial::new(
                keys::ROLE,
                format!("the {} auth method needs a Vault role", self.kind),
            )
        })
    }

    fn finish(self) -> Result<()> {
        match self.left.keys().next() {
            Some(param) => Err(Denial::new(
                Self::annotation(param),
                format!(
                    "the {} auth method of keyhole-agent takes no parameter {param:?}",
                    self.kind
                ),
            )),
            None => Ok(()),
        }
    }
}

/// A duration annotation (`key`) as the agent reads
/// it; absent or zero means `default`, as in Vault Agent.
fn duration(key: Key, text: Option<&str>, default: Duration) -> Result<Duration> {
    let Some(text) = text else {
        return Ok(default);
    };
    let parsed = config::parse_duration(text)
        .ok_or_else(|| Denial::new(key, format!("{text:?} is not a duration such as 30s or 5m")))?;
    Ok(if parsed.is_zero() { default } else { parsed })
}

/// vault-k8s's default `map` template: one `key: value` line per field.
fn default_map_template(path: &str) -> String {
    let path = go_string(path);
    format!(
        "{{{{ with secret {path} }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}"
    )
}

/// vault-k8s's default `json` template: the data as one JSON line.
fn default_json_template(path: &str) -> String {
    let path = go_string(path);
    format!("{{{{ with secret {path} }}}}{{{{ .Data | toJSON }}}}\n{{{{ end }}}}")
}

/// `s` as a Go string literal, so that whatever a pod author writes as a
/// Vault path stays one string constant and cannot change the template
/// around it. For paths without `"` or `\\` this is vault-k8s's own text.
fn go_string(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('"');
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The template text a secret renders, `None` when it comes from a file.
pub fn template_contents(secret: &Secret) -> Option<String> {
    match &secret.template {
        TemplateText::DefaultMap => Some(default_map_template(&secret.path)),
        TemplateText::DefaultJson => Some(default_json_template(&secret.path)),
        TemplateText::Inline(text) => Some(text.clone()),
        TemplateText::File(_) => None,
    }
}

fn template(secret: &Secret) -> Result<Template> {
    let source = match (&secret.template, template_contents(secret)) {
        (TemplateText::File(source), _) => TemplateSource::File(source.into()),
        (_, contents) => TemplateSource::Contents(contents.unwrap_or_default()),
    };
    let perms = match &secret.perms {
        Some(text) => u32::from_str_radix(text, 8)
            .ok()
            .filter(|mode| *mode <= 0o777)
            .ok_or_else(|| {
                Denial::new(
                    PERMS.key(&secret.raw_name),
                    format!("{text:?} is not an octal file mode such as 0640"),
                )
            })?,
        None => DEFAULT_PERMS,
    };
    let command = match &secret.command {
        Some(line) => Some(config::command_line(line).ok_or_else(|| {
            Denial::new(
                COMMAND.key(&secret.raw_name),
                format!("{line:?} names no program to run"),
            )
        })?),
        None => None,
    };
    Ok(Template {
        perms,
        command,
        error_on_missing_key: secret.error_on_missing_key,
        left_delimiter: secret.left_delimiter.clone(),
        right_delimiter: secret.right_delimiter.clone(),
        ..Template::new(secret.destination().into(), source)
    })
}

/// The reload signal of `secret`, from `keyhole.dev/reload-signal-<name>`.
fn reload(secret: &Secret) -> Result<Option<Reload>> {
    let Some((signal, process)) = &secret.reload else {
        return Ok(None);
    };
    let signal = keyhole_agent::reload::parse_signal(signal)
        .map_err(|e| Denial::new(RELOAD_SIGNAL.key(&secret.raw_name), e))?;
    Ok(Some(Reload {
        destination: secret.destination().into(),
        signal,
        process: process.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_templates_match_vault_k8s() {
        assert_eq!(
            default_map_template("secret/data/app"),
            "{{ with secret \"secret/data/app\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}"
        );
        assert_eq!(
            default_json_template("secret/data/app"),
            "{{ with secret \"secret/data/app\" }}{{ .Data | toJSON }}\n{{ end }}"
        );
    }

    #[test]
    fn default_templates_keep_any_path_one_string_constant() {
        let path = "kv/a\" }}{{ with secret \"kv/b\" }}{{ end }}{{ with secret \"kv/a\\x\ty";
        for template in [default_map_template(path), default_json_template(path)] {
            let parsed =
                keyhole_agent::template::Template::parse("t", &template, "", "").expect("parses");
            let paths: Vec<_> = parsed.vault_calls().into_iter().map(|c| c.path).collect();
            assert_eq!(paths, vec![Some(path.to_owned())], "{template}");
        }
    }
}
