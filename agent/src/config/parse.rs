//! The generic tree to [`AgentConfig`], one function per stanza.
//!
//! Defaults are Vault Agent's (and consul-template's, for templates). Every
//! stanza ends with [`Stanza::finish`] or [`Stanza::finish_lenient`], naming
//! the Vault Agent settings that keyhole knows but does not implement yet, so
//! they fail with a clear message instead of being ignored.
//!
//! Which keys are accepted follows OpenBao's `bao agent`: where it refuses a
//! key it does not know (in `template` and its `exec`, which consul-template
//! decodes strictly), so does keyhole; where it ignores one (everywhere
//! else), keyhole accepts it too and logs a warning naming it.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::warn;

use super::choices::{AuthType, Choice, LogFormat, LogLevel};
use super::listen::{self, ApiProxy};
use super::stanza::{Stanza, invalid, kind, string};
use super::supervisor;
use super::{
    AgentConfig, AutoAuth, Connections, DEFAULT_COMMAND_TIMEOUT, DEFAULT_K8S_TOKEN_PATH,
    DEFAULT_LOG_ROTATE_DURATION, DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF, DEFAULT_NUM_RETRIES,
    DEFAULT_PERMS, DEFAULT_SINK_MODE, DEFAULT_STATIC_SECRET_RENDER_INTERVAL, Keyhole, LogFile,
    Logging, Method, MethodKind, Parts, Reload, Result, Sink, SinkEncryption, Telemetry, Template,
    TemplateConfig, Vault, Wait, command_line, command_list,
};

/// `telemetry` keys that keyhole-agent does not honour: metrics pushed to
/// services other than StatsD and DogStatsD, renamed or filtered.
const UNSUPPORTED_TELEMETRY: &[&str] = &[
    "statsite_address",
    "circonus_api_token",
    "circonus_api_app",
    "circonus_api_url",
    "circonus_submission_interval",
    "circonus_submission_url",
    "circonus_check_id",
    "circonus_check_force_metric_activation",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_tags",
    "circonus_check_display_name",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "stackdriver_project_id",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_debug_logs",
    "metrics_prefix",
    "filter_default",
    "prefix_filter",
];

/// `telemetry` keys that change nothing in keyhole-agent, with the reason;
/// the first two are durations, checked before they are ignored.
const IGNORED_TELEMETRY: &[(&str, &str)] = &[
    (
        "prometheus_retention_time",
        "keyhole-agent always serves its current metrics at /agent/v1/metrics",
    ),
    (
        "usage_gauge_period",
        "bao agent ignores it too: it is a setting of the Vault server",
    ),
    (
        "disable_hostname",
        "keyhole-agent's metric names carry no host name",
    ),
    (
        "maximum_gauge_cardinality",
        "bao agent ignores it too: it is a setting of the Vault server",
    ),
    (
        "lease_metrics_epsilon",
        "bao agent ignores it too: it is a setting of the Vault server",
    ),
    (
        "num_lease_metrics_buckets",
        "bao agent ignores it too: it is a setting of the Vault server",
    ),
    (
        "add_lease_metrics_namespace_labels",
        "bao agent ignores it too: it is a setting of the Vault server",
    ),
];

/// Top-level keys `bao agent` accepts and ignores, with the reason.
const IGNORED_TOP: &[(&str, &str)] = &[
    (
        "sink",
        "bao agent reads sinks only inside auto_auth, and so does keyhole-agent",
    ),
    (
        "disable_mlock",
        "bao agent never locks its memory, and neither does keyhole-agent",
    ),
];

/// `template_config` keys `bao agent` (OpenBao 2.7) accepts and ignores.
const IGNORED_TEMPLATE_CONFIG: &[(&str, &str)] = &[
    (
        "error_on_missing_key",
        "bao agent ignores it here; it is a setting of each template",
    ),
    (
        "lease_renewal_threshold",
        "bao agent ignores it (only HashiCorp's Vault Agent reads it)",
    ),
    (
        "max_connections_per_host",
        "bao agent ignores it (only HashiCorp's Vault Agent reads it)",
    ),
];

/// Reads a whole configuration.
pub(super) fn agent_config(tree: Value) -> Result<AgentConfig> {
    let mut top = Stanza::new(String::new(), tree)?;
    let vault = vault(top.single("vault")?)?;
    let auto_auth = top.single("auto_auth")?.map(self::auto_auth).transpose()?;
    let templates = top
        .repeated("template")?
        .into_iter()
        .map(template)
        .collect::<Result<Vec<_>>>()?;
    let supervised = supervisor::Context {
        has_api_proxy: top.has("api_proxy"),
        has_templates: !templates.is_empty(),
    };
    let supervisor = supervisor::supervisor(&mut top, &supervised)?;
    let auto_auth_wraps = auto_auth
        .as_ref()
        .is_some_and(|auto_auth| auto_auth.method.wrap_ttl.is_some());
    let renders = !templates.is_empty() || supervisor.is_some();
    let context = listen::Context {
        has_auto_auth: auto_auth.is_some(),
        auto_auth_wraps,
        has_templates: renders,
    };
    let listen = listen::listen(&mut top, &context)?;
    if auto_auth_wraps && renders {
        warn!(
            "auto_auth.method.wrap_ttl: the template and env_template stanzas will not render, because the agent holds only the response-wrapped token, which reads no secret (bao agent accepts this config and fails every render)"
        );
    }
    match &auto_auth {
        // bao agent also runs without auto_auth, for the API proxy alone.
        None if !renders && (listen.cache.is_some() || !listen.listeners.is_empty()) => {}
        None => return Err(invalid("", "missing required stanza \"auto_auth\"")),
        Some(auto_auth)
            if auto_auth.sinks.is_empty()
                && !renders
                && !listen.api_proxy.is_some_and(ApiProxy::uses_auto_auth_token) =>
        {
            return Err(invalid(
                "auto_auth",
                "needs at least one sink, at least one template or api_proxy.use_auto_auth_token",
            ));
        }
        Some(_) => {}
    }
    let template_config = template_config(top.single("template_config")?)?;
    let exit_after_auth = top.bool("exit_after_auth", false)?;
    if exit_after_auth && supervisor.is_some() {
        warn!(
            "exec: with exit_after_auth the agent exits once the env_template stanzas have rendered, without running the command, as bao agent does"
        );
    }
    let pid_file = top.path_buf("pid_file")?;
    let keyhole = keyhole(top.single("keyhole")?, &templates)?;
    let log = logging(&mut top)?;
    let telemetry = top
        .single("telemetry")?
        .map(self::telemetry)
        .transpose()?
        .unwrap_or_default();
    let connections = Connections {
        no_idle: parts(&mut top, "disable_idle_connections")?,
        no_keep_alive: parts(&mut top, "disable_keep_alives")?,
    };
    top.finish_lenient(&[], IGNORED_TOP)?;
    Ok(AgentConfig {
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
    })
}

/// `disable_idle_connections` or `disable_keep_alives`: a list of the
/// agent's parts.
fn parts(top: &mut Stanza, key: &str) -> Result<Parts> {
    let at = top.at(key);
    let Some(names) = top.strings(key)? else {
        return Ok(Parts::default());
    };
    Parts::from_names(names.iter().map(String::as_str)).map_err(|unknown| {
        invalid(
            &at,
            format!(
                "unknown value {unknown:?}: the parts are \"auto-auth\", \"caching\", \"proxying\" and \"templating\""
            ),
        )
    })
}

/// `telemetry`: checked as `bao agent` checks it. keyhole-agent's metrics
/// are served for Prometheus whatever it says, and sent to the StatsD and
/// DogStatsD servers it names; a key that would send them to another
/// service, or rename or filter them, is refused.
fn telemetry(mut s: Stanza) -> Result<Telemetry> {
    s.refuse_unsupported(UNSUPPORTED_TELEMETRY)?;
    // Checked as bao agent checks them, though they change nothing here.
    for (key, reason) in &IGNORED_TELEMETRY[..2] {
        if s.has(key) {
            let at = s.at(key);
            s.duration(key, Duration::ZERO)?;
            warn!("{at} is ignored: {reason}");
        }
    }
    let telemetry = Telemetry {
        statsd: address(&mut s, "statsd_address")?,
        dogstatsd: address(&mut s, "dogstatsd_addr")?,
        dogstatsd_tags: s.strings("dogstatsd_tags")?.unwrap_or_default(),
        hostname_label: s.bool("enable_hostname_label", false)?,
    };
    s.finish_lenient(UNSUPPORTED_TELEMETRY, IGNORED_TELEMETRY)?;
    Ok(telemetry)
}

/// A StatsD server's address. bao agent takes any text, and a number as its
/// digits, and finds out when it sends: so does keyhole-agent.
fn address(s: &mut Stanza, key: &str) -> Result<Option<String>> {
    let at = s.at(key);
    match s.take(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(value) => Ok(Some(string(value, &at)?).filter(|a| !a.is_empty())),
    }
}

/// A `log_level` or `log_format` as Vault reads it: trimmed, in any case;
/// empty means not set.
fn log_choice<T: Choice>(top: &mut Stanza, key: &str, what: &str) -> Result<Option<T>> {
    let Some(text) = top
        .string(key)?
        .map(|text| text.trim().to_ascii_lowercase())
        .filter(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    T::from_name(&text)
        .map(Some)
        .ok_or_else(|| invalid(key, format!("{text:?} is not a {what}: {}", T::spellings())))
}

/// The top-level `log_*` keys, read as Vault Agent reads them.
fn logging(top: &mut Stanza) -> Result<Logging> {
    let level = log_choice::<LogLevel>(top, "log_level", "log level")?;
    let format = log_choice::<LogFormat>(top, "log_format", "log format")?;
    let rotate_bytes = top.integer("log_rotate_bytes")?.unwrap_or(0).max(0) as u64;
    let rotate_duration = top.duration("log_rotate_duration", Duration::ZERO)?;
    let rotate_max_files = top.integer("log_rotate_max_files")?.unwrap_or(0);
    let file = match top.string("log_file")?.filter(|path| !path.is_empty()) {
        None => None,
        // The rotated files are found by a pattern on the name.
        Some(path) if path.contains(['*', '?', '[']) => {
            return Err(invalid(
                "log_file",
                format!("{path:?} has a glob character (*, ? or [)"),
            ));
        }
        Some(path) => {
            let path = if path.ends_with('/') {
                PathBuf::from(path).join("bao.log")
            } else {
                PathBuf::from(path)
            };
            Some(LogFile {
                path,
                rotate_bytes,
                rotate_duration: if rotate_duration.is_zero() {
                    DEFAULT_LOG_ROTATE_DURATION
                } else {
                    rotate_duration
                },
                rotate_max_files,
            })
        }
    };
    Ok(Logging {
        level,
        format,
        file,
    })
}

fn vault(stanza: Option<Stanza>) -> Result<Vault> {
    let Some(mut s) = stanza else {
        return Ok(Vault {
            num_retries: DEFAULT_NUM_RETRIES,
            ..Vault::default()
        });
    };
    let vault = Vault {
        address: s.string("address")?,
        ca_cert: s.path_buf("ca_cert")?,
        ca_path: s.path_buf("ca_path")?,
        client_cert: s.path_buf("client_cert")?,
        client_key: s.path_buf("client_key")?,
        tls_skip_verify: s.bool_or_string("tls_skip_verify", false)?,
        tls_server_name: s.string("tls_server_name")?,
        namespace: s.string("namespace")?,
        num_retries: retry(s.single("retry")?)?,
    };
    s.finish_lenient(&[], &[])?;
    Ok(vault)
}

/// `vault.retry`: as in Vault Agent, 0 or absent means the default and -1
/// means no retries.
fn retry(stanza: Option<Stanza>) -> Result<u32> {
    let Some(mut s) = stanza else {
        return Ok(DEFAULT_NUM_RETRIES);
    };
    let at = s.at("num_retries");
    let num_retries = match s.integer("num_retries")? {
        None | Some(0) => DEFAULT_NUM_RETRIES,
        Some(-1) => 0,
        Some(n) => u32::try_from(n).map_err(|_| {
            invalid(
                &at,
                format!("{n} is not a number of retries (or -1 for none)"),
            )
        })?,
    };
    s.finish_lenient(&[], &[])?;
    Ok(num_retries)
}

fn auto_auth(mut s: Stanza) -> Result<AutoAuth> {
    let mut methods = s.repeated("method")?;
    let method = match methods.len() {
        0 => return Err(s.missing("method")),
        1 => method(methods.remove(0))?,
        n => return Err(s.error(format!("takes exactly one \"method\", found {n}"))),
    };
    let sink_blocks = s.repeated("sink")?;
    let wrapped = s.repeated("sinks")?;
    let sinks = if sink_blocks.is_empty() {
        let mut sinks = Vec::new();
        for wrapper in wrapped {
            for entry in wrapper.into_blocks()? {
                sinks.push(wrapped_sink(entry)?);
            }
        }
        sinks
    } else {
        if !wrapped.is_empty() {
            warn!(
                "auto_auth.sinks is ignored: given together with \"sink\" blocks, bao agent reads only those"
            );
        }
        sink_blocks
            .into_iter()
            .map(sink)
            .collect::<Result<Vec<_>>>()?
    };
    if method.wrap_ttl.is_some() {
        match sinks.as_slice() {
            [sink] if sink.wrap_ttl.is_some() => {
                return Err(s.error(
                    "wrap_ttl is set on both the method and the sink; Vault Agent wraps the token once, so set it on one of them",
                ));
            }
            [_] => {}
            sinks => {
                return Err(s.error(format!(
                    "the method's wrap_ttl needs exactly one sink to write the wrapped token to, found {}",
                    sinks.len()
                )));
            }
        }
    }
    s.finish_lenient(&["enable_reauth_on_new_credentials"], &[])?;
    Ok(AutoAuth { method, sinks })
}

/// A sink inside the older `sinks { <any name> { type = "file" ... } }`
/// wrapper, which `bao agent` still reads: there a block's label is not its
/// type, so `type` must be given as a key.
fn wrapped_sink(s: Stanza) -> Result<Sink> {
    if !s.has("type") {
        return Err(s.error(
            "missing required key \"type\" (inside \"sinks\", a block label is not read as the sink type)",
        ));
    }
    sink(s)
}

/// Splits a block given as `name "<type>" { ... }` (in JSON `{"<type>": {...}}`)
/// or as `name { type = "<type>" ... }` into its type and body.
pub(super) fn typed_block(
    mut s: Stanza,
    body_path: impl Fn(&str) -> String,
) -> Result<(String, Stanza)> {
    if s.has("type") {
        let kind = s.required_string("type")?;
        let path = body_path(&kind);
        return Ok((kind, s.renamed(path)));
    }
    match s.take_only_key() {
        Some((kind, value)) if kind != "config" && is_block(&value) => {
            let value = match value {
                Value::Array(mut items) => items.remove(0),
                value => value,
            };
            let body = Stanza::new(body_path(&kind), value)?;
            Ok((kind, body))
        }
        _ => Err(s.missing("type")),
    }
}

/// An object, or a list of exactly one object.
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(_) => true,
        Value::Array(items) => matches!(items.as_slice(), [Value::Object(_)]),
        _ => false,
    }
}

fn method(s: Stanza) -> Result<Method> {
    let (kind, mut s) = typed_block(s, |kind| format!("auto_auth.method {kind:?}"))?;
    let Some(auth_type) = AuthType::from_name(&kind) else {
        return Err(invalid(
            "auto_auth.method",
            format!(
                "keyhole does not support auth method {kind:?} (supported: {})",
                AuthType::spellings()
            ),
        ));
    };
    let mount_path = match s.string("mount_path")? {
        Some(path) => path.trim_end_matches('/').to_owned(),
        None => format!("auth/{kind}"),
    };
    let namespace = s.string("namespace")?;
    let min_backoff = nonzero(
        s.duration("min_backoff", DEFAULT_MIN_BACKOFF)?,
        DEFAULT_MIN_BACKOFF,
    );
    let max_backoff = nonzero(
        s.duration("max_backoff", DEFAULT_MAX_BACKOFF)?,
        DEFAULT_MAX_BACKOFF,
    );
    let exit_on_err = s.bool("exit_on_err", false)?;
    let config = match s.single("config")? {
        Some(config) => config,
        None => Stanza::new(s.at("config"), Value::Object(Map::new()))?,
    };
    let kind = method_kind(auth_type, config)?;
    let wrap_ttl = Some(s.duration("wrap_ttl", Duration::ZERO)?).filter(|ttl| !ttl.is_zero());
    s.finish_lenient(&[], &[])?;
    Ok(Method {
        kind,
        mount_path,
        namespace,
        min_backoff,
        max_backoff,
        exit_on_err,
        wrap_ttl,
    })
}

/// The method's `config { ... }`, by type.
fn method_kind(auth_type: AuthType, mut c: Stanza) -> Result<MethodKind> {
    let method = match auth_type {
        AuthType::Kubernetes => MethodKind::Kubernetes {
            role: c.required_string("role")?,
            token_path: c
                .path_buf("token_path")?
                .unwrap_or_else(|| PathBuf::from(DEFAULT_K8S_TOKEN_PATH)),
        },
        AuthType::Jwt => MethodKind::Jwt {
            role: c.required_string("role")?,
            path: c.required_path("path")?,
            remove_jwt_after_reading: c.bool_or_string("remove_jwt_after_reading", true)?,
        },
        AuthType::AppRole => MethodKind::AppRole {
            role_id_file_path: c.required_path("role_id_file_path")?,
            secret_id_file_path: c.path_buf("secret_id_file_path")?,
            remove_secret_id_file_after_reading: c
                .bool_or_string("remove_secret_id_file_after_reading", true)?,
            secret_id_response_wrapping_path: c
                .string("secret_id_response_wrapping_path")?
                .filter(|path| !path.is_empty()),
        },
        AuthType::TokenFile => MethodKind::TokenFile {
            token_file_path: c.required_path("token_file_path")?,
        },
        AuthType::Cert => cert(&mut c)?,
    };
    c.finish_lenient(&["remove_jwt_follows_symlinks"], &[])?;
    Ok(method)
}

/// The `cert` method's config. As in `bao agent`, an empty string is an
/// unset setting, and a client certificate without its key (or a key
/// without its certificate) is ignored.
fn cert(c: &mut Stanza) -> Result<MethodKind> {
    let mut non_empty = |key: &str| -> Result<Option<String>> {
        Ok(c.string(key)?.filter(|value| !value.is_empty()))
    };
    let name = non_empty("name")?;
    let ca_cert = non_empty("ca_cert")?.map(PathBuf::from);
    let client_cert = non_empty("client_cert")?.map(PathBuf::from);
    let client_key = non_empty("client_key")?.map(PathBuf::from);
    match (&client_cert, &client_key) {
        (Some(_), None) => warn!(
            "{} is ignored: bao agent uses it only together with client_key",
            c.at("client_cert")
        ),
        (None, Some(_)) => warn!(
            "{} is ignored: bao agent uses it only together with client_cert",
            c.at("client_key")
        ),
        _ => {}
    }
    Ok(MethodKind::Cert {
        name,
        ca_cert,
        client_cert,
        client_key,
        reload: c.bool("reload", false)?,
    })
}

fn sink(s: Stanza) -> Result<Sink> {
    let path = s.path().to_owned();
    let (kind, mut s) = typed_block(s, |_| path.clone())?;
    if kind != "file" {
        return Err(s.error(format!(
            "keyhole does not support sink type {kind:?} (only \"file\")"
        )));
    }
    let mut config = s.single("config")?.ok_or_else(|| s.missing("config"))?;
    let path = config.required_path("path")?;
    let mode = config.integer_file_mode("mode", DEFAULT_SINK_MODE)?;
    config.finish_lenient(&[], &[])?;
    let wrap_ttl = Some(s.duration("wrap_ttl", Duration::ZERO)?).filter(|ttl| !ttl.is_zero());
    let encryption = sink_encryption(&mut s)?;
    s.finish_lenient(&[], &[])?;
    Ok(Sink {
        path,
        mode,
        wrap_ttl,
        encryption,
    })
}

/// A sink's `dh_type`, `dh_path`, `derive_key` and `aad` or `aad_env_var`,
/// checked as `bao agent` checks them.
fn sink_encryption(s: &mut Stanza) -> Result<Option<SinkEncryption>> {
    let dh_type_at = s.at("dh_type");
    let dh_type = s.string("dh_type")?.unwrap_or_default();
    if !matches!(dh_type.as_str(), "" | "curve25519") {
        return Err(invalid(
            &dh_type_at,
            format!("{dh_type:?} is not a dh_type; the one Vault Agent takes is \"curve25519\""),
        ));
    }
    let dh_path = s.path_buf("dh_path")?.filter(|p| !p.as_os_str().is_empty());
    let derive_key = s.bool("derive_key", false)?;
    let mut aad = s.string("aad")?.unwrap_or_default();
    // Read when the config is, as Vault Agent does.
    if let Some(name) = s.string("aad_env_var")?.filter(|name| !name.is_empty()) {
        aad = std::env::var(&name).unwrap_or_default();
    }
    match (dh_type.is_empty(), dh_path) {
        (true, None) if !aad.is_empty() => Err(s.error(
            "aad (or aad_env_var) needs dh_type and dh_path: it is only used to encrypt the token",
        )),
        (true, None) if derive_key => Err(
            s.error("derive_key needs dh_type and dh_path: it is only used to encrypt the token")
        ),
        (true, None) => Ok(None),
        (false, Some(dh_path)) => Ok(Some(SinkEncryption {
            dh_path,
            derive_key,
            aad,
        })),
        _ => Err(s.error("dh_type and dh_path must be given together")),
    }
}

fn template(mut s: Stanza) -> Result<Template> {
    let destination = s.required_path("destination")?;
    let source = s.template_source()?;
    let perms = s.file_mode("perms", DEFAULT_PERMS)?;
    let command_at = s.at("command");
    let command = s
        .take("command")
        .map(|v| command(v, &command_at))
        .transpose()?;
    let command_timeout = s.duration("command_timeout", DEFAULT_COMMAND_TIMEOUT)?;
    let (command, command_timeout) = match s.last("exec")? {
        None => (command, command_timeout),
        Some(_) if command.is_some() => {
            return Err(s.error("takes only one of \"command\" and \"exec\""));
        }
        Some(exec) => {
            let (argv, timeout) = self::exec(exec, command_timeout)?;
            (Some(argv), timeout)
        }
    };
    let error_on_missing_key = s.bool("error_on_missing_key", false)?;
    let (left_delimiter, right_delimiter) = s.delimiters()?;
    let template = Template {
        destination,
        source,
        perms,
        command,
        command_timeout,
        error_on_missing_key,
        left_delimiter,
        right_delimiter,
        create_dest_dirs: s.bool("create_dest_dirs", true)?,
        backup: s.bool("backup", false)?,
        user: owner(&mut s, "user", "uid")?,
        group: owner(&mut s, "group", "gid")?,
        sandbox_path: s.path_buf("sandbox_path")?,
        function_denylist: s.function_denylist()?,
        wait: wait(&mut s)?,
        error_fatal: s.bool("error_fatal", true)?,
    };
    s.finish(&[])?;
    Ok(template)
}

/// A template's `wait`: a block `{ min, max, bool }` or the string
/// `"min[:max]"`, read as consul-template reads them. Its durations are Go's,
/// without Vault's bare seconds: a bare number is nanoseconds, and a string
/// needs a unit. `max` defaults to four times `min`; `bool` (consul-template's
/// name for "enabled") defaults to whether `min` is set and not zero.
fn wait(s: &mut Stanza) -> Result<Option<Wait>> {
    let at = s.at("wait");
    let value = match s.take("wait") {
        None => return Ok(None),
        Some(Value::Array(mut blocks)) => match blocks.pop() {
            Some(block) => block,
            None => return Ok(None),
        },
        Some(value) => value,
    };
    if let Value::String(text) = value {
        return wait_text(&text).map(Some).map_err(|why| invalid(&at, why));
    }
    let mut block = Stanza::new(at, value)?;
    let min = go_duration(&mut block, "min")?;
    let max = go_duration(&mut block, "max")?;
    let enabled = block.bool("bool", min.is_some_and(|min| !min.is_zero()))?;
    block.finish(&[])?;
    let min = min.unwrap_or_default();
    Ok(enabled.then(|| Wait {
        min,
        max: max.unwrap_or(min.saturating_mul(4)),
    }))
}

/// `wait = "min[:max]"`, with consul-template's checks.
fn wait_text(text: &str) -> std::result::Result<Wait, String> {
    let parse = |part: &str| {
        crate::duration::parse_go(part.trim(), false)
            .ok_or_else(|| format!("{part:?} is not a duration such as \"5s\""))
    };
    let (min, max) = match text.trim().split(':').collect::<Vec<_>>()[..] {
        [""] => return Err("is empty; write \"min\" or \"min:max\"".to_owned()),
        [min] => (parse(min)?, parse(min)?.saturating_mul(4)),
        [min, max] => (parse(min)?, parse(max)?),
        _ => return Err(format!("{text:?} is not \"min\" or \"min:max\"")),
    };
    if min < 0 || max < 0 {
        return Err(format!("{text:?}: a wait cannot be negative"));
    }
    if max < min {
        return Err(format!("{text:?}: min must be less than max"));
    }
    let nanos = |n: i64| Duration::from_nanos(n.unsigned_abs());
    Ok(Wait {
        min: nanos(min),
        max: nanos(max),
    })
}

/// A `wait` duration as Go's `time.Duration` decodes: a string with units,
/// or a number of nanoseconds. A negative one waits no time.
fn go_duration(s: &mut Stanza, key: &str) -> Result<Option<Duration>> {
    let at = s.at(key);
    let nanos = match s.take(key) {
        None => return Ok(None),
        Some(Value::String(text)) => crate::duration::parse_go(&text, false)
            .ok_or_else(|| invalid(&at, format!("{text:?} is not a duration such as \"5s\"")))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(&at, format!("{n} is not a whole number of nanoseconds")))?,
        Some(other) => {
            return Err(invalid(
                &at,
                format!("expected a duration, found {}", kind(&other)),
            ));
        }
    };
    Ok(Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(0),
    )))
}

/// A template's `user` (or `group`), else its older numeric `uid` (or
/// `gid`), as consul-template combines them; empty means not set.
fn owner(s: &mut Stanza, name: &str, id: &str) -> Result<Option<String>> {
    let named = s.string(name)?;
    let numeric = s.integer(id)?.map(|id| id.to_string());
    Ok(named.or(numeric))
}

/// `template { exec { command, timeout } }`.
fn exec(mut s: Stanza, default_timeout: Duration) -> Result<(Vec<String>, Duration)> {
    let at = s.at("command");
    let argv = command(s.take("command").ok_or_else(|| s.missing("command"))?, &at)?;
    let timeout = s.duration("timeout", default_timeout)?;
    s.finish(&[
        "enabled",
        "env",
        "kill_signal",
        "kill_timeout",
        "reload_signal",
        "splay",
    ])?;
    Ok((argv, timeout))
}

/// A template command as the argv Vault Agent runs: a string or a list of
/// strings, resolved by [`command_line`] or [`command_list`].
fn command(value: Value, at: &str) -> Result<Vec<String>> {
    let argv = match value {
        Value::String(line) => command_line(&line),
        Value::Array(items) => command_list(
            items
                .into_iter()
                .map(|item| string(item, at))
                .collect::<Result<Vec<_>>>()?,
        ),
        other => {
            return Err(invalid(
                at,
                format!(
                    "expected a string or a list of strings, found {}",
                    kind(&other)
                ),
            ));
        }
    };
    argv.ok_or_else(|| invalid(at, "is empty"))
}

fn template_config(stanza: Option<Stanza>) -> Result<TemplateConfig> {
    let Some(mut s) = stanza else {
        return Ok(TemplateConfig {
            exit_on_retry_failure: false,
            static_secret_render_interval: DEFAULT_STATIC_SECRET_RENDER_INTERVAL,
        });
    };
    let config = TemplateConfig {
        exit_on_retry_failure: s.bool("exit_on_retry_failure", false)?,
        static_secret_render_interval: nonzero(
            s.duration(
                "static_secret_render_interval",
                DEFAULT_STATIC_SECRET_RENDER_INTERVAL,
            )?,
            DEFAULT_STATIC_SECRET_RENDER_INTERVAL,
        ),
    };
    s.finish_lenient(&[], IGNORED_TEMPLATE_CONFIG)?;
    Ok(config)
}

fn keyhole(stanza: Option<Stanza>, templates: &[Template]) -> Result<Keyhole> {
    let Some(mut s) = stanza else {
        return Ok(Keyhole::default());
    };
    let metrics_at = s.at("metrics_listen");
    let metrics_listen = s
        .string("metrics_listen")?
        .map(|addr| {
            addr.parse().map_err(|_| {
                invalid(
                    &metrics_at,
                    format!("{addr:?} is not an IP address and port such as \"0.0.0.0:9102\""),
                )
            })
        })
        .transpose()?;
    let keyhole = Keyhole {
        revoke_on_shutdown: s.bool("revoke_on_shutdown", false)?,
        revoke_grace: s.duration("revoke_grace", Duration::ZERO)?,
        metrics_listen,
        ready_file: s.path_buf("ready_file")?,
        heartbeat_file: s.path_buf("heartbeat_file")?,
        reload: s
            .repeated("reload")?
            .into_iter()
            .map(|r| reload(r, templates))
            .collect::<Result<Vec<_>>>()?,
    };
    s.finish(&[])?;
    Ok(keyhole)
}

fn reload(mut s: Stanza, templates: &[Template]) -> Result<Reload> {
    let destination = s.required_path("destination")?;
    if !templates.iter().any(|t| t.destination == destination) {
        return Err(invalid(
            &s.at("destination"),
            format!("{destination:?} is not the destination of any template"),
        ));
    }
    let signal_at = s.at("signal");
    let name = s.required_string("signal")?;
    let signal =
        crate::reload::parse_signal(&name).map_err(|err| invalid(&signal_at, err.to_string()))?;
    let reload = Reload {
        destination,
        signal,
        process: s.required_string("process")?,
    };
    s.finish(&[])?;
    Ok(reload)
}

/// Vault Agent treats a zero duration as "use the default".
fn nonzero(duration: Duration, default: Duration) -> Duration {
    if duration.is_zero() {
        default
    } else {
        duration
    }
}
