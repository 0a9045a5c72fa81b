//! The Vault Agent JSON config the injected agent receives in `KEYHOLE_AGENT_CONFIG`.
//!
//! Built from an [`AgentSpec`] the way vault-k8s builds its agent config, so
//! the same JSON also runs under `bao agent`; keyhole-only settings go in the
//! top-level `keyhole` stanza.

use keyhole_agent::config::{AuthType, Choice};
use serde_json::{Map, Value, json};

use crate::agent_paths::{PID_FILE, READY_FILE, TOKEN_SINK};
use crate::annotations::spec::{AgentSpec, Secret, TemplateText, token_file};

/// The config for one agent container; `init` renders once and exits.
pub fn agent_config(spec: &AgentSpec, token_path: &str, init: bool) -> Value {
    let mut config = Map::new();
    config.insert("auto_auth".into(), auto_auth(spec, token_path));
    config.insert("exit_after_auth".into(), init.into());
    config.insert("pid_file".into(), PID_FILE.into());
    config.insert("vault".into(), vault(spec));
    if !spec.secrets.is_empty() {
        config.insert(
            "template".into(),
            spec.secrets.iter().map(template).collect(),
        );
    }
    let mut template_config = Map::new();
    template_config.insert(
        "exit_on_retry_failure".into(),
        spec.exit_on_retry_failure.into(),
    );
    if let Some(interval) = &spec.static_secret_render_interval {
        template_config.insert(
            "static_secret_render_interval".into(),
            interval.clone().into(),
        );
    }
    config.insert("template_config".into(), template_config.into());
    config.insert("keyhole".into(), keyhole(spec, init));
    Value::Object(config)
}

fn auto_auth(spec: &AgentSpec, token_path: &str) -> Value {
    let auth = &spec.auth;
    let mut method_config = Map::new();
    // The token path goes in first so `auth-config-*` annotations can override it.
    match auth.kind {
        AuthType::Kubernetes => {
            method_config.insert("token_path".into(), token_path.into());
        }
        AuthType::Jwt => {
            method_config.insert("path".into(), token_path.into());
            // The projected token is read-only and re-read on every login.
            method_config.insert("remove_jwt_after_reading".into(), false.into());
        }
        AuthType::AppRole | AuthType::TokenFile => {}
    }
    for (key, value) in &auth.config {
        method_config.insert(key.clone(), value.clone().into());
    }
    if let Some(role) = &auth.role {
        method_config.insert("role".into(), role.clone().into());
    }
    let mut method = Map::new();
    method.insert("type".into(), auth.kind.name().into());
    method.insert("mount_path".into(), auth.path.clone().into());
    if let Some(backoff) = &auth.min_backoff {
        method.insert("min_backoff".into(), backoff.clone().into());
    }
    if let Some(backoff) = &auth.max_backoff {
        method.insert("max_backoff".into(), backoff.clone().into());
    }
    if auth.exit_on_err {
        method.insert("exit_on_err".into(), true.into());
    }
    method.insert("config".into(), method_config.into());

    let mut sinks = vec![json!({"type": "file", "config": {"path": TOKEN_SINK}})];
    if spec.inject_token {
        let path = token_file(&spec.secret_volume_path);
        sinks.push(json!({"type": "file", "config": {"path": path}}));
    }
    json!({"method": method, "sink": sinks})
}

fn vault(spec: &AgentSpec) -> Value {
    let v = &spec.vault;
    let mut out = Map::new();
    out.insert("address".into(), v.address.clone().into());
    let optional = [
        ("ca_cert", &v.ca_cert),
        ("ca_path", &v.ca_path),
        ("client_cert", &v.client_cert),
        ("client_key", &v.client_key),
        ("tls_server_name", &v.tls_server_name),
        ("namespace", &v.namespace),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            out.insert(key.into(), value.clone().into());
        }
    }
    if v.tls_skip_verify {
        out.insert("tls_skip_verify".into(), true.into());
    }
    if let Some(retries) = v.max_retries {
        out.insert("retry".into(), json!({"num_retries": retries}));
    }
    Value::Object(out)
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

fn template(secret: &Secret) -> Value {
    let mut out = Map::new();
    out.insert("destination".into(), secret.destination().into());
    match (&secret.template, template_contents(secret)) {
        (TemplateText::File(source), _) => {
            out.insert("source".into(), source.clone().into());
        }
        (_, contents) => {
            out.insert("contents".into(), contents.unwrap_or_default().into());
        }
    }
    out.insert(
        "left_delimiter".into(),
        secret.left_delimiter.clone().into(),
    );
    out.insert(
        "right_delimiter".into(),
        secret.right_delimiter.clone().into(),
    );
    if let Some(command) = &secret.command {
        out.insert("command".into(), command.clone().into());
    }
    if let Some(perms) = &secret.perms {
        out.insert("perms".into(), perms.clone().into());
    }
    if secret.error_on_missing_key {
        out.insert("error_on_missing_key".into(), true.into());
    }
    Value::Object(out)
}

fn keyhole(spec: &AgentSpec, init: bool) -> Value {
    let reload: Vec<Value> = spec
        .secrets
        .iter()
        .filter_map(|s| {
            let (signal, process) = s.reload.as_ref()?;
            Some(json!({"destination": s.destination(), "signal": signal, "process": process}))
        })
        .collect();
    let mut out = Map::new();
    out.insert("ready_file".into(), READY_FILE.into());
    // The init container's token and leases must outlive it: the app uses
    // the secrets it rendered.
    out.insert(
        "revoke_on_shutdown".into(),
        (spec.revoke_on_shutdown && !init).into(),
    );
    if !reload.is_empty() {
        out.insert("reload".into(), reload.into());
    }
    Value::Object(out)
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
