//! [`AgentConfig`] back to Vault Agent JSON, which the injector passes to the
//! agent in `KEYHOLE_AGENT_CONFIG`.
//!
//! The output is accepted by `bao agent` as well as by keyhole, and parses
//! back to the same [`AgentConfig`]. Every value is written out, defaults
//! included, so the JSON says exactly what the agent will do.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{
    AgentConfig, AutoAuth, Keyhole, Method, MethodKind, Sink, Template, TemplateSource, Vault,
};

impl AgentConfig {
    /// This configuration as Vault Agent JSON.
    pub fn to_vault_agent_json(&self) -> Value {
        let AgentConfig {
            vault,
            auto_auth,
            templates,
            template_config,
            exit_after_auth,
            pid_file,
            keyhole,
        } = self;
        let mut out = Map::new();
        out.insert("vault".into(), vault_json(vault));
        if let Some(auto_auth) = auto_auth {
            out.insert("auto_auth".into(), auto_auth_json(auto_auth));
        }
        if !templates.is_empty() {
            out.insert(
                "template".into(),
                templates.iter().map(template_json).collect(),
            );
        }
        out.insert(
            "template_config".into(),
            json!({
                "exit_on_retry_failure": template_config.exit_on_retry_failure,
                "static_secret_render_interval":
                    duration(template_config.static_secret_render_interval),
            }),
        );
        out.insert("exit_after_auth".into(), Value::Bool(*exit_after_auth));
        if let Some(pid_file) = pid_file {
            out.insert("pid_file".into(), path(pid_file));
        }
        if *keyhole != Keyhole::default() {
            out.insert("keyhole".into(), keyhole_json(keyhole));
        }
        Value::Object(out)
    }
}

fn vault_json(vault: &Vault) -> Value {
    let mut out = Map::new();
    let strings = [
        ("address", vault.address.as_deref()),
        ("tls_server_name", vault.tls_server_name.as_deref()),
        ("namespace", vault.namespace.as_deref()),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            out.insert(key.into(), value.into());
        }
    }
    let paths = [
        ("ca_cert", &vault.ca_cert),
        ("ca_path", &vault.ca_path),
        ("client_cert", &vault.client_cert),
        ("client_key", &vault.client_key),
    ];
    for (key, value) in paths {
        if let Some(value) = value {
            out.insert(key.into(), path(value));
        }
    }
    out.insert("tls_skip_verify".into(), vault.tls_skip_verify.into());
    // Vault Agent reads 0 as "the default"; -1 is how it spells "no retries".
    let num_retries = match vault.num_retries {
        0 => -1,
        n => i64::from(n),
    };
    out.insert("retry".into(), json!({ "num_retries": num_retries }));
    Value::Object(out)
}

/// Written in the list forms Vault Agent's HCL 1 JSON decoder reads whatever
/// else `auto_auth` holds: a lone `"method": {..}` object is taken apart by
/// its object flattening, and an empty `"sink": []` is refused.
fn auto_auth_json(auto_auth: &AutoAuth) -> Value {
    let mut out = json!({ "method": [method_json(&auto_auth.method)] });
    if !auto_auth.sinks.is_empty() {
        out["sink"] = auto_auth.sinks.iter().map(sink_json).collect();
    }
    out
}

fn method_json(method: &Method) -> Value {
    let (kind, config) = match &method.kind {
        MethodKind::Kubernetes { role, token_path } => (
            "kubernetes",
            json!({ "role": role, "token_path": path(token_path) }),
        ),
        MethodKind::Jwt {
            role,
            path: jwt_path,
            remove_jwt_after_reading,
        } => (
            "jwt",
            json!({
                "role": role,
                "path": path(jwt_path),
                "remove_jwt_after_reading": remove_jwt_after_reading,
            }),
        ),
        MethodKind::AppRole {
            role_id_file_path,
            secret_id_file_path,
            remove_secret_id_file_after_reading,
        } => {
            let mut config = json!({
                "role_id_file_path": path(role_id_file_path),
                "remove_secret_id_file_after_reading": remove_secret_id_file_after_reading,
            });
            if let Some(secret_id) = secret_id_file_path {
                config["secret_id_file_path"] = path(secret_id);
            }
            ("approle", config)
        }
        MethodKind::TokenFile { token_file_path } => (
            "token_file",
            json!({ "token_file_path": path(token_file_path) }),
        ),
    };
    let mut out = json!({
        "type": kind,
        "mount_path": method.mount_path,
        "min_backoff": duration(method.min_backoff),
        "max_backoff": duration(method.max_backoff),
        "exit_on_err": method.exit_on_err,
        "config": config,
    });
    if let Some(namespace) = &method.namespace {
        out["namespace"] = namespace.as_str().into();
    }
    out
}

fn sink_json(sink: &Sink) -> Value {
    // Vault Agent's file sink only takes the mode as an integer.
    json!({
        "type": "file",
        "config": { "path": path(&sink.path), "mode": sink.mode },
    })
}

fn template_json(template: &Template) -> Value {
    let mut out = json!({
        "destination": path(&template.destination),
        "perms": format!("{:04o}", template.perms),
        "error_on_missing_key": template.error_on_missing_key,
        "left_delimiter": template.left_delimiter,
        "right_delimiter": template.right_delimiter,
        "create_dest_dirs": template.create_dest_dirs,
    });
    match &template.source {
        TemplateSource::Contents(contents) => out["contents"] = contents.as_str().into(),
        TemplateSource::File(source) => out["source"] = path(source),
    }
    if let Some(argv) = &template.command {
        out["exec"] = json!({
            "command": argv,
            "timeout": duration(template.command_timeout),
        });
    }
    out
}

fn keyhole_json(keyhole: &Keyhole) -> Value {
    let mut out = json!({ "revoke_on_shutdown": keyhole.revoke_on_shutdown });
    if let Some(addr) = keyhole.metrics_listen {
        out["metrics_listen"] = addr.to_string().into();
    }
    if let Some(ready_file) = &keyhole.ready_file {
        out["ready_file"] = path(ready_file);
    }
    if !keyhole.reload.is_empty() {
        out["reload"] = keyhole
            .reload
            .iter()
            .map(|reload| {
                json!({
                    "destination": path(&reload.destination),
                    "signal": reload.signal.name(),
                    "process": reload.process,
                })
            })
            .collect();
    }
    out
}

/// A Go duration string that Vault parses back exactly: whole seconds as
/// `90s`, finer values in `ms` or `ns`.
fn duration(d: Duration) -> Value {
    let text = if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    };
    Value::String(text)
}

fn path(p: &Path) -> Value {
    Value::String(p.to_string_lossy().into_owned())
}
