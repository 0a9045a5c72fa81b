//! Config differential: each small config below is started under the real `bao agent`
//! and read by keyhole-agent's parser, and both must decide as the table says.
//!
//! `bao agent` has no validate-only mode, so a config counts as accepted once bao prints
//! that the agent started (its Vault address, from the config or `VAULT_ADDR`, is a closed
//! port, so it can do nothing more),
//! and as refused when it exits first. keyhole may refuse a config bao accepts only when
//! the config asks for a feature keyhole does not have yet, and then says so.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyhole_agent::config::AgentConfig as KeyholeConfig;
use keyhole_tests::{AgentConfig, AutoAuth, Sink, Tool, require};

/// How long `bao agent` may take to start or to refuse.
const BAO_DEADLINE: Duration = Duration::from_secs(20);

/// How many `bao agent`s start at once: enough to keep two cores busy, few
/// enough that none waits for the CPU until its deadline.
const BAO_AT_ONCE: usize = 16;

/// What an agent does with a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// It starts.
    Accept,
    /// It refuses the config.
    Refuse,
    /// keyhole only: it refuses the config, naming a Vault Agent setting it does not
    /// support yet.
    Unsupported,
}

use Outcome::{Accept, Refuse, Unsupported};

/// One row: what to add to a valid config (or, with `whole`, the whole config), and
/// what `bao agent` and keyhole-agent each do with it.
struct Case {
    name: &'static str,
    whole: bool,
    text: &'static str,
    bao: Outcome,
    keyhole: Outcome,
}

const fn add(name: &'static str, text: &'static str, bao: Outcome, keyhole: Outcome) -> Case {
    Case {
        name,
        whole: false,
        text,
        bao,
        keyhole,
    }
}

const fn whole(name: &'static str, text: &'static str, bao: Outcome, keyhole: Outcome) -> Case {
    Case {
        name,
        whole: true,
        text,
        bao,
        keyhole,
    }
}

/// Written without a sink, so that a case may add one in any form; `TOKEN` is replaced
/// by a token file's path.
const QUOTED_KEYS: &str = r#"
"auto_auth" = {
  "method" = {
    "type"   = "token_file"
    "config" = { "token_file_path" = "TOKEN" }
  }
  "sink" = {
    "type"   = "file"
    "config" = { "path" = "SINK" }
  }
}
"exit_after_auth" = false
"#;

const CASES: &[Case] = &[
    // HCL 1 as bao agent reads it.
    whole("quoted keys and key = { }", QUOTED_KEYS, Accept, Accept),
    whole(
        "labelled block inside key = { }",
        r#"
        auto_auth = {
          method "token_file" {
            config = { token_file_path = "TOKEN" }
          }
          sink = { type = "file", config = { path = "SINK", mode = 0600 } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "block on one line",
        r#"
        auto_auth {
          method "token_file" { config { token_file_path = "TOKEN" } }
          sink "file" { config { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "legacy sinks wrapper",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sinks {
            sink { type = "file", config = { path = "SINK" } }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "labelled sink inside sinks wrapper",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sinks {
            sink "file" { config = { path = "SINK" } }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "unclosed brace",
        "auto_auth {\n method \"token_file\" {\n config = { token_file_path = \"TOKEN\" }\n}\n",
        Refuse,
        Refuse,
    ),
    add(
        "repeated key, the later wins",
        "pid_file = \"PID\"\npid_file = \"PID\"",
        Accept,
        Accept,
    ),
    add(
        "bare name as value",
        "exit_after_auth = VAR",
        Refuse,
        Refuse,
    ),
    add(
        "interpolation kept as text",
        "template {\n destination = \"OUT\"\n contents = \"${HOME}\"\n}",
        Accept,
        Accept,
    ),
    add(
        "heredoc",
        "template {\n destination = \"OUT\"\n contents = <<-EOT\n  x\n  EOT\n}",
        Accept,
        Accept,
    ),
    add(
        "octal integer",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n perms = 0600\n}",
        Accept,
        Accept,
    ),
    add(
        "invalid octal integer",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n perms = 0999\n}",
        Refuse,
        Refuse,
    ),
    // Top-level keys.
    add(
        "exit_after_auth as a string",
        "exit_after_auth = \"true\"",
        Refuse,
        Refuse,
    ),
    add(
        "unknown top-level stanza",
        "vaultt { address = \"x\" }",
        Accept,
        Accept,
    ),
    add(
        "top-level sink",
        "sink \"file\" { config = { path = \"SINK\" } }",
        Accept,
        Accept,
    ),
    add("disable_mlock", "disable_mlock = true", Accept, Accept),
    add("log_level", "log_level = \"debug\"", Accept, Accept),
    add(
        "log_level warning",
        "log_level = \"Warning\"",
        Accept,
        Accept,
    ),
    add("log_level unknown", "log_level = \"loud\"", Refuse, Refuse),
    add("log_format", "log_format = \"json\"", Accept, Accept),
    add("log_format unknown", "log_format = \"xml\"", Refuse, Refuse),
    add("log_file", "log_file = \"LOG\"", Accept, Accept),
    add(
        "log_file rotated",
        "log_file = \"LOG\"\nlog_rotate_bytes = 1048576\nlog_rotate_duration = \"1h\"\nlog_rotate_max_files = 3",
        Accept,
        Accept,
    ),
    add(
        "log_file with a glob character",
        "log_file = \"DIR/agent*.log\"",
        Refuse,
        Refuse,
    ),
    add(
        "log_rotate_duration not a duration",
        "log_file = \"LOG\"\nlog_rotate_duration = \"daily\"",
        Refuse,
        Refuse,
    ),
    add(
        "telemetry",
        "telemetry {\n disable_hostname = true\n prometheus_retention_time = \"24h\"\n usage_gauge_period = \"5m\"\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry bad retention",
        "telemetry {\n prometheus_retention_time = \"a day\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "telemetry dogstatsd",
        "telemetry {\n dogstatsd_addr = \"127.0.0.1:8125\"\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry dogstatsd with tags",
        "telemetry {\n dogstatsd_addr = \"localhost:8125\"\n dogstatsd_tags = [\"env:test\", \"team\"]\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry dogstatsd without a port",
        "telemetry {\n dogstatsd_addr = \"127.0.0.1\"\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry dogstatsd tags alone",
        "telemetry {\n dogstatsd_tags = [\"env:test\"]\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry dogstatsd tags as a string",
        "telemetry {\n dogstatsd_addr = \"127.0.0.1:8125\"\n dogstatsd_tags = \"env:test\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "telemetry statsd",
        "telemetry {\n statsd_address = \"127.0.0.1:8125\"\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry statsd without a port",
        "telemetry {\n statsd_address = \"127.0.0.1\"\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry statsd and dogstatsd",
        "telemetry {\n statsd_address = \"127.0.0.1:8125\"\n dogstatsd_addr = \"127.0.0.1:8126\"\n enable_hostname_label = true\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry statsd address not a string",
        "telemetry {\n statsd_address = 8125\n}",
        Accept,
        Accept,
    ),
    add(
        "telemetry statsd unresolvable host",
        "telemetry {\n statsd_address = \"no-such-host.invalid:8125\"\n}",
        Accept,
        Accept,
    ),
    add(
        "disable_idle_connections",
        "disable_idle_connections = [\"auto-auth\"]",
        Accept,
        Accept,
    ),
    add(
        "disable_keep_alives every part",
        "disable_keep_alives = [\"auto-auth\", \"caching\", \"proxying\", \"templating\", \"\"]",
        Accept,
        Accept,
    ),
    add(
        "disable_keep_alives unknown part",
        "disable_keep_alives = [\"x\"]",
        Refuse,
        Refuse,
    ),
    add(
        "disable_idle_connections a string",
        "disable_idle_connections = \"auto-auth\"",
        Refuse,
        Refuse,
    ),
    add(
        "disable_idle_connections upper case",
        "disable_idle_connections = [\"Auto-Auth\"]",
        Refuse,
        Refuse,
    ),
    add(
        "cache without listener or template",
        "cache {}",
        Refuse,
        Refuse,
    ),
    // vault
    whole(
        "vault unknown key",
        r#"
        vault { foo = 1 }
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    add(
        "vault twice",
        "vault {\n address = \"http://127.0.0.1:1\"\n}\nvault {\n address = \"http://127.0.0.1:1\"\n}",
        Refuse,
        Refuse,
    ),
    whole(
        "vault.retry unknown key",
        r#"
        vault {
          retry { attempts = 3 }
        }
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    // template
    add(
        "template unknown key",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n foo = 1\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template wait",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n min = \"1s\"\n max = \"2s\"\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "template wait min only",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n min = \"1s\"\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "template wait as a string",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait = \"1s:2s\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template wait min above max",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n min = \"3s\"\n max = \"2s\"\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "template wait min as a number",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n min = 5\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "template wait not a duration",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n min = \"soon\"\n }\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template wait unknown key",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n minimum = \"1s\"\n }\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template wait enabled",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n wait {\n bool = true\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "template backup",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n backup = true\n}",
        Accept,
        Accept,
    ),
    add(
        "template backup not a boolean",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n backup = \"often\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template error_fatal",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n error_fatal = false\n}",
        Accept,
        Accept,
    ),
    add(
        "template error_fatal not a boolean",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n error_fatal = \"no\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template user and group",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n user = \"root\"\n group = \"root\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template user and group as numbers in strings",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n user = \"1000\"\n group = \"1000\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template user as a number",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n user = 1000\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template uid and gid",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n uid = 1000\n gid = 1000\n}",
        Accept,
        Accept,
    ),
    add(
        "template uid as a string",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n uid = \"1000\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template function_denylist",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n function_denylist = [\"env\", \"file\"]\n}",
        Accept,
        Accept,
    ),
    add(
        "template function_blacklist",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n function_blacklist = [\"env\"]\n}",
        Accept,
        Accept,
    ),
    add(
        "template function_denylist as one name",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n function_denylist = \"env\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template function_denylist not a list",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n function_denylist = 1\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template sandbox_path",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n sandbox_path = \"DIR\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template sandbox_path not a string",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n sandbox_path = 1\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template exec twice, the later wins",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n exec { command = [\"a\"] }\n exec { command = [\"b\"] }\n}",
        Accept,
        Accept,
    ),
    add(
        "template exec unknown key",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n exec {\n command = [\"a\"]\n wait = true\n }\n}",
        Refuse,
        Refuse,
    ),
    add(
        "template command string with shell syntax",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n command = \"kill -HUP $(pidof app) && echo 'done' > /tmp/x\\n\"\n}",
        Accept,
        Accept,
    ),
    add(
        "template exec command string with commas",
        "template {\n destination = \"OUT\"\n contents = \"x\"\n exec { command = \"sh,-c,kill -HUP 1\" }\n}",
        Accept,
        Accept,
    ),
    // template_config
    add(
        "template_config error_on_missing_key",
        "template_config {\n error_on_missing_key = true\n}",
        Accept,
        Accept,
    ),
    add(
        "template_config max_connections_per_host",
        "template_config {\n max_connections_per_host = 20\n}",
        Accept,
        Accept,
    ),
    add(
        "template_config lease_renewal_threshold",
        "template_config {\n lease_renewal_threshold = 0.7\n}",
        Accept,
        Accept,
    ),
    add(
        "template_config bad duration",
        "template_config {\n static_secret_render_interval = \"soon\"\n}",
        Refuse,
        Refuse,
    ),
    // auto_auth
    whole(
        "method wrap_ttl",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "method wrap_ttl with two sinks",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" { config = { path = "SINK" } }
          sink "file" { config = { path = "OUT" } }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "method wrap_ttl without a sink",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
        }
        template {
          contents    = "x"
          destination = "OUT"
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "method and sink wrap_ttl",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" {
            wrap_ttl = "5m"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "method wrap_ttl with a template",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" { config = { path = "SINK" } }
        }
        template {
          contents    = "x"
          destination = "OUT"
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "method wrap_ttl with api_proxy use_auto_auth_token",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" { config = { path = "SINK" } }
        }
        listener "tcp" {
          address     = "127.0.0.1:0"
          tls_disable = true
        }
        api_proxy { use_auto_auth_token = true }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "method wrap_ttl with cache use_auto_auth_token",
        r#"
        auto_auth {
          method "token_file" {
            wrap_ttl = "5m"
            config = { token_file_path = "TOKEN" }
          }
          sink "file" { config = { path = "SINK" } }
        }
        listener "tcp" {
          address     = "127.0.0.1:0"
          tls_disable = true
        }
        cache { use_auto_auth_token = true }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink wrap_ttl",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            wrap_ttl = "10m"
            config = { path = "SINK" }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "sink wrap_ttl in seconds",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            wrap_ttl = 300
            config = { path = "SINK" }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "sink wrap_ttl not a duration",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            wrap_ttl = "soon"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink encrypted for a dh_path",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            dh_type = "curve25519"
            dh_path = "DH"
            derive_key = true
            aad = "pod"
            config = { path = "SINK" }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "sink aad_env_var",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            wrap_ttl = "5m"
            aad_env_var = "HOME"
            dh_type = "curve25519"
            dh_path = "DH"
            config = { path = "SINK" }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "sink dh_type other than curve25519",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            dh_type = "p256"
            dh_path = "DH"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink dh_type without dh_path",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            dh_type = "curve25519"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink dh_path without dh_type",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            dh_path = "DH"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink aad without dh_type",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            aad = "pod"
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "sink derive_key without dh_type",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" {
            derive_key = true
            config = { path = "SINK" }
          }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "method and sink unknown keys",
        r#"
        auto_auth {
          method "token_file" {
            foo = 1
            config = { token_file_path = "TOKEN", bar = 2 }
          }
          sink "file" {
            baz = 3
            config = { path = "SINK", qux = 4 }
          }
        }
        "#,
        Accept,
        Accept,
    ),
    // listener, api_proxy, cache
    add(
        "tcp listener with the quit endpoint",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n agent_api {\n enable_quit = true\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "tcp listener with TLS and no certificate",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n}",
        Accept,
        Unsupported,
    ),
    add(
        "unix listener",
        "listener \"unix\" {\n address = \"OUT\"\n tls_disable = \"true\"\n}",
        Accept,
        Accept,
    ),
    add(
        "metrics-only listener next to a default one",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\nlistener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n role = \"metrics_only\"\n}",
        Accept,
        Accept,
    ),
    add(
        "listener of an unknown type",
        "listener \"udp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}",
        Refuse,
        Refuse,
    ),
    add(
        "listener of an unknown role",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n role = \"admin\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "listener tls_disable not a boolean",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = \"maybe\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "listener keys only the server reads",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n max_request_size = 1024\n cors_enabled = true\n}",
        Accept,
        Accept,
    ),
    add(
        "listener TLS settings without TLS",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n tls_min_version = \"tls13\"\n tls_require_and_verify_client_cert = true\n}",
        Accept,
        Accept,
    ),
    add(
        "api_proxy forcing the auto-auth token",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = \"force\"\n enforce_consistency = \"always\"\n when_inconsistent = \"retry\"\n}",
        Accept,
        Accept,
    ),
    add(
        "api_proxy without a listener",
        "api_proxy {\n use_auto_auth_token = true\n}",
        Refuse,
        Refuse,
    ),
    add(
        "api_proxy use_auto_auth_token neither boolean nor force",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = \"always\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "cache with a listener",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\ncache {}",
        Accept,
        Accept,
    ),
    add(
        "persistent cache of type kubernetes",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\ncache {\n persist \"kubernetes\" {\n path = \"DIR\"\n keep_after_import = true\n exit_on_err = true\n service_account_token_file = \"TOKEN\"\n }\n}",
        Accept,
        Accept,
    ),
    add(
        "use_auto_auth_token in both api_proxy and cache",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}\napi_proxy {\n use_auto_auth_token = true\n}\ncache {\n use_auto_auth_token = true\n}",
        Refuse,
        Refuse,
    ),
    whole(
        "listener alone, without auto_auth",
        "listener \"tcp\" {\n address = \"127.0.0.1:0\"\n tls_disable = true\n}",
        Accept,
        Accept,
    ),
    whole(
        "auto_auth without a sink, for the api_proxy",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
        }
        listener "tcp" {
          address     = "127.0.0.1:0"
          tls_disable = true
        }
        cache {
          use_auto_auth_token = true
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "auto_auth without a sink and a listener without api_proxy",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
        }
        listener "tcp" {
          address     = "127.0.0.1:0"
          tls_disable = true
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "api_proxy auto-auth token without auto_auth",
        r#"
        listener "tcp" {
          address     = "127.0.0.1:0"
          tls_disable = true
        }
        api_proxy {
          use_auto_auth_token = true
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "cert method with every setting",
        r#"
        auto_auth {
          method "cert" {
            mount_path = "auth/certs"
            config = {
              name        = "web"
              ca_cert     = "OUT/ca.pem"
              client_cert = "OUT/client.pem"
              client_key  = "OUT/client-key.pem"
              reload      = true
            }
          }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "cert method without config",
        r#"
        auto_auth {
          method "cert" {}
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "cert method client_cert without client_key",
        r#"
        auto_auth {
          method "cert" { config = { client_cert = "OUT/client.pem" } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Accept,
        Accept,
    ),
    whole(
        "cert method reload as a string",
        r#"
        auto_auth {
          method "cert" { config = { reload = "true" } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "cert method name as a number",
        r#"
        auto_auth {
          method "cert" { config = { name = 7 } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Refuse,
        Refuse,
    ),
    whole(
        "two methods",
        r#"
        auto_auth {
          method "token_file" { config = { token_file_path = "TOKEN" } }
          method "token_file" { config = { token_file_path = "TOKEN" } }
          sink "file" { config = { path = "SINK" } }
        }
        "#,
        Refuse,
        Refuse,
    ),
    // Supervisor mode: env_template and exec.
    add(
        "env_template with exec",
        "env_template \"DB_PASSWORD\" {\n contents = \"{{ with secret \\\"secret/data/db\\\" }}{{ .Data.data.password }}{{ end }}\"\n error_on_missing_key = true\n}\nexec {\n command = [\"/bin/true\", \"arg\"]\n restart_on_secret_changes = \"never\"\n restart_stop_signal = \"sigint\"\n}",
        Accept,
        Accept,
    ),
    add(
        "env_template without exec",
        "env_template \"A\" {\n contents = \"x\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec without env_template",
        "exec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template with template",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"/bin/true\"]\n}\ntemplate {\n destination = \"OUT\"\n contents = \"x\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template twice with one name",
        "env_template \"A\" {\n contents = \"x\"\n}\nenv_template \"A\" {\n contents = \"y\"\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template with destination",
        "env_template \"A\" {\n contents = \"x\"\n destination = \"OUT\"\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template with neither contents nor source",
        "env_template \"A\" {\n error_on_missing_key = true\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template error_fatal and function_denylist",
        "env_template \"A\" {\n contents = \"x\"\n error_fatal = false\n function_denylist = [\"env\"]\n function_blacklist = \"file\"\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Accept,
        Accept,
    ),
    add(
        "env_template function_denylist not a list",
        "env_template \"A\" {\n contents = \"x\"\n function_denylist = 3\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "env_template unknown key",
        "env_template \"A\" {\n contents = \"x\"\n contnts = \"y\"\n}\nexec {\n command = [\"/bin/true\"]\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec without command",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n restart_on_secret_changes = \"always\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec command as a string",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = \"/bin/true\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec restart_on_secret_changes unknown",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"/bin/true\"]\n restart_on_secret_changes = \"sometimes\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec restart_stop_signal without SIG",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"/bin/true\"]\n restart_stop_signal = \"TERM\"\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec unknown key",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"/bin/true\"]\n child_logs = true\n}",
        Refuse,
        Refuse,
    ),
    add(
        "exec twice",
        "env_template \"A\" {\n contents = \"x\"\n}\nexec {\n command = [\"/bin/true\"]\n}\nexec {\n command = [\"/bin/false\"]\n}",
        Refuse,
        Refuse,
    ),
    whole(
        "env_template and exec as keyhole writes them in JSON",
        r#"{
          "auto_auth": {
            "method": [{"type": "token_file", "config": {"token_file_path": "TOKEN"}}],
            "sink": [{"type": "file", "config": {"path": "SINK"}}]
          },
          "env_template": [
            {"B": {"contents": "b", "error_on_missing_key": false, "left_delimiter": "{{", "right_delimiter": "}}"}},
            {"A": {"contents": "a", "error_on_missing_key": true, "left_delimiter": "{{", "right_delimiter": "}}"}}
          ],
          "exec": {"command": ["/bin/true"], "restart_on_secret_changes": "always", "restart_stop_signal": "SIGTERM"}
        }"#,
        Accept,
        Accept,
    ),
];

/// The config file of `case`, with its placeholders pointing into `dir`.
fn config_text(case: &Case, dir: &Path) -> String {
    let text = placed(case.text, dir);
    if case.whole {
        text
    } else {
        let base = AgentConfig::new("http://127.0.0.1:1")
            .auto_auth(AutoAuth::token_file(dir.join("token")).sink(Sink::file(dir.join("sink"))));
        format!("{base}\n{text}\n")
    }
}

/// `text` with each placeholder replaced by its path in `dir`, in one pass, so that a
/// path (whose random name may hold `DH` or `LOG`) is never taken for a placeholder.
fn placed(text: &str, dir: &Path) -> String {
    const PLACEHOLDERS: [(&str, &str); 7] = [
        ("DIR", ""),
        ("TOKEN", "token"),
        ("SINK", "sink"),
        ("DH", "dh.json"),
        ("PID", "pid"),
        ("OUT", "out"),
        ("LOG", "agent.log"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        match PLACEHOLDERS
            .iter()
            .find(|(placeholder, _)| rest.starts_with(placeholder))
        {
            Some((placeholder, name)) => {
                let path = if name.is_empty() {
                    dir.to_path_buf()
                } else {
                    dir.join(name)
                };
                out.push_str(&path.display().to_string());
                rest = &rest[placeholder.len()..];
            }
            None => {
                let next = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
    }
    out
}

/// Starts `bao agent` on `file` and reports whether it started, with its output.
fn bao_outcome(bao: &Path, file: &Path, dir: &Path) -> anyhow::Result<(Outcome, String)> {
    let log = dir.join("bao.log");
    let mut child = Command::new(bao)
        .arg("agent")
        .arg(format!("-config={}", file.display()))
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VAULT_ADDR", "http://127.0.0.1:1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(dir.join("bao.err"))?)
        .spawn()?;
    let started = Instant::now();
    loop {
        let output =
            std::fs::read_to_string(&log)? + &std::fs::read_to_string(dir.join("bao.err"))?;
        if output.contains("Agent started!") {
            child.kill()?;
            child.wait()?;
            return Ok((Accept, output));
        }
        if let Some(status) = child.try_wait()? {
            let output =
                std::fs::read_to_string(&log)? + &std::fs::read_to_string(dir.join("bao.err"))?;
            // It may have started, and then stopped, since the output was read.
            let started = status.success() || output.contains("Agent started!");
            let outcome = if started { Accept } else { Refuse };
            return Ok((outcome, format!("{output}\n(exit: {status})")));
        }
        if started.elapsed() > BAO_DEADLINE {
            child.kill()?;
            child.wait()?;
            anyhow::bail!(
                "bao agent neither started nor exited within {BAO_DEADLINE:?}:\n{output}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What keyhole-agent's parser does with `file`, and its error.
fn keyhole_outcome(file: &Path) -> (Outcome, String) {
    match KeyholeConfig::from_file(file) {
        Ok(_) => (Accept, String::new()),
        Err(err) => {
            let message = err.to_string();
            let outcome = if message.contains("keyhole does not support") {
                Unsupported
            } else {
                Refuse
            };
            (outcome, message)
        }
    }
}

#[test]
fn placeholders_are_replaced_once_whatever_the_directory_is_called() {
    let dir = Path::new("/tmp/.tmpLOGDH");
    assert_eq!(
        placed("path = \"DH\"\nlog_file = \"LOG\"\nx = \"DIR/a\"", dir),
        "path = \"/tmp/.tmpLOGDH/dh.json\"\nlog_file = \"/tmp/.tmpLOGDH/agent.log\"\nx = \"/tmp/.tmpLOGDH/a\""
    );
}

#[test]
fn bao_agent_and_keyhole_agent_accept_and_refuse_the_same_configs() {
    for case in CASES {
        assert!(
            case.keyhole == case.bao || case.keyhole == Unsupported,
            "{}: keyhole may differ from bao agent only by refusing what it does not support yet",
            case.name
        );
    }
    let bao = require(Tool::Bao).expect("bao is installed");
    let failures: Vec<String> = CASES
        .chunks(BAO_AT_ONCE)
        .flat_map(|cases| {
            std::thread::scope(|scope| {
                let runs: Vec<_> = cases
                    .iter()
                    .map(|case| {
                        let bao = &bao;
                        scope.spawn(move || check(case, bao))
                    })
                    .collect();
                runs.into_iter()
                    .filter_map(|run| match run.join() {
                        Ok(Ok(())) => None,
                        Ok(Err(failure)) => Some(failure),
                        Err(_) => Some("a case panicked".to_owned()),
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs one case; the error says how it went wrong.
fn check(case: &Case, bao: &Path) -> Result<(), String> {
    let fail = |what: String| format!("{}: {what}", case.name);
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    std::fs::write(dir.path().join("token"), "s.unused").map_err(|e| fail(e.to_string()))?;
    let file = dir.path().join("agent.hcl");
    let text = config_text(case, dir.path());
    std::fs::write(&file, &text).map_err(|e| fail(e.to_string()))?;
    let run_bao = || bao_outcome(bao, &file, dir.path()).map_err(|e| fail(format!("{e:#}")));
    let (mut bao_did, mut bao_output) = run_bao()?;
    if bao_did != case.bao {
        // Dozens of bao agents starting at once on a loaded machine have
        // made one exit early; a real difference shows again.
        let (again, output) = run_bao()?;
        bao_output = format!("{bao_output}\n--- and when run again:\n{output}");
        bao_did = again;
    }
    let (keyhole_did, keyhole_error) = keyhole_outcome(&file);
    if bao_did != case.bao {
        return Err(fail(format!(
            "bao agent: expected {:?}, got {bao_did:?}\nconfig:\n{text}\noutput:\n{bao_output}",
            case.bao
        )));
    }
    if keyhole_did != case.keyhole {
        return Err(fail(format!(
            "keyhole-agent: expected {:?}, got {keyhole_did:?} {keyhole_error}\nconfig:\n{text}",
            case.keyhole
        )));
    }
    Ok(())
}
