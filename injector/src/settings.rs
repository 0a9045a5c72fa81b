//! Server-wide defaults for injection, shared by `serve` and `mutate`.
//!
//! Every setting is a flag with an environment fallback named by one rule,
//! `KEYHOLE_` and the flag's long name in upper case with `_` for `-`
//! (`--agent-cpu-request`, `KEYHOLE_AGENT_CPU_REQUEST`); renamed flags keep
//! their old names as aliases, and [`crate::env`] binds vault-k8s's
//! `AGENT_INJECT_*` names. Pod annotations override most settings per pod.

use clap::ArgAction;
use keyhole_agent::config::{AuthType, Choice, LogFormat, LogLevel, Parts};

use crate::annotations::spec::DefaultTemplate;
use crate::annotations::values;
use crate::policy::{self, Mode, PathPolicy, Policy};

/// Injection defaults; flattened into both the `serve` and `mutate` commands.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Settings {
    /// Vault address the agent talks to, unless a pod sets `vault.hashicorp.com/service`.
    #[arg(long, env = "KEYHOLE_VAULT_ADDR")]
    pub vault_addr: Option<String>,

    /// Container image of keyhole-agent.
    #[arg(long, env = "KEYHOLE_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    pub agent_image: String,

    /// Mount path of the auth method, unless a pod sets `vault.hashicorp.com/auth-path`.
    #[arg(long, env = "KEYHOLE_AUTH_PATH", default_value = "auth/kubernetes")]
    pub auth_path: String,

    /// Type of the auth method, unless a pod sets `vault.hashicorp.com/auth-type`.
    #[arg(long, env = "KEYHOLE_AUTH_TYPE", default_value = "kubernetes", value_parser = choice::<AuthType>)]
    pub auth_type: AuthType,

    /// Run the agent as a native sidecar (init container with `restartPolicy: Always`)
    /// instead of an init container plus a sidecar; `keyhole.dev/native-sidecar` overrides it.
    #[arg(long, env = "KEYHOLE_NATIVE_SIDECAR", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = go_bool)]
    pub native_sidecar: bool,

    /// Agent CPU request.
    #[arg(long = "agent-cpu-request", visible_alias = "cpu-request", env = "KEYHOLE_AGENT_CPU_REQUEST", value_parser = values::quantity, default_value = "10m")]
    pub cpu_request: String,

    /// Agent memory request.
    #[arg(long = "agent-mem-request", visible_alias = "mem-request", env = "KEYHOLE_AGENT_MEM_REQUEST", value_parser = values::quantity, default_value = "16Mi")]
    pub mem_request: String,

    /// Agent ephemeral-storage request; none by default.
    #[arg(long = "agent-ephemeral-request", visible_alias = "ephemeral-request", env = "KEYHOLE_AGENT_EPHEMERAL_REQUEST", value_parser = values::quantity)]
    pub ephemeral_request: Option<String>,

    /// Agent CPU limit.
    #[arg(long = "agent-cpu-limit", visible_alias = "cpu-limit", env = "KEYHOLE_AGENT_CPU_LIMIT", value_parser = values::quantity, default_value = "100m")]
    pub cpu_limit: String,

    /// Agent memory limit.
    #[arg(long = "agent-mem-limit", visible_alias = "mem-limit", env = "KEYHOLE_AGENT_MEM_LIMIT", value_parser = values::quantity, default_value = "32Mi")]
    pub mem_limit: String,

    /// Agent ephemeral-storage limit; none by default.
    #[arg(long = "agent-ephemeral-limit", visible_alias = "ephemeral-limit", env = "KEYHOLE_AGENT_EPHEMERAL_LIMIT", value_parser = values::quantity)]
    pub ephemeral_limit: Option<String>,

    /// Audience of the projected service-account token the agent logs in with.
    /// Unset, the token carries the API server's own audiences, like the pod's
    /// token that vault-k8s logs in with, so existing Vault roles accept it.
    #[arg(long, env = "KEYHOLE_TOKEN_AUDIENCE", value_parser = audience)]
    pub token_audience: Option<String>,

    /// Agent log level (trace, debug, info, warn, error).
    #[arg(long = "agent-log-level", env = "KEYHOLE_AGENT_LOG_LEVEL", default_value = "info", value_parser = choice::<LogLevel>)]
    pub log_level: LogLevel,

    /// Agent log format (standard or json).
    #[arg(long = "agent-log-format", env = "KEYHOLE_AGENT_LOG_FORMAT", default_value = "standard", value_parser = choice::<LogFormat>)]
    pub log_format: LogFormat,

    /// Size limit of the in-memory secrets volume.
    #[arg(
        long,
        env = "KEYHOLE_SECRETS_VOLUME_SIZE_LIMIT",
        default_value = "64Mi",
        value_parser = values::quantity
    )]
    pub secrets_volume_size_limit: String,

    /// Inject only into these namespaces (comma-separated); all when empty.
    #[arg(long, env = "KEYHOLE_ALLOWED_NAMESPACES", value_delimiter = ',')]
    pub allowed_namespaces: Vec<String>,

    /// Never inject into these namespaces (comma-separated), in addition to
    /// `kube-system` and `kube-public`.
    #[arg(long, env = "KEYHOLE_DENIED_NAMESPACES", value_delimiter = ',')]
    pub denied_namespaces: Vec<String>,

    /// Set the agent's security context (non-root, read-only root filesystem, no capabilities).
    #[arg(long, env = "KEYHOLE_SET_SECURITY_CONTEXT", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = go_bool)]
    pub set_security_context: bool,

    /// User id the agent runs as.
    #[arg(long, env = "KEYHOLE_RUN_AS_USER", default_value_t = 100)]
    pub run_as_user: i64,

    /// Group id the agent runs as.
    #[arg(long, env = "KEYHOLE_RUN_AS_GROUP", default_value_t = 1000)]
    pub run_as_group: i64,

    /// Run the agent as the user and group of the first app container.
    #[arg(long, env = "KEYHOLE_RUN_AS_SAME_USER", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = go_bool)]
    pub run_as_same_user: bool,

    /// Revoke the token and leases when the agent shuts down.
    #[arg(long, env = "KEYHOLE_REVOKE_ON_SHUTDOWN", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = go_bool)]
    pub revoke_on_shutdown: bool,

    /// Default template for secrets without one: `map` or `json`.
    #[arg(long, env = "KEYHOLE_DEFAULT_TEMPLATE", default_value = "map", value_parser = choice::<DefaultTemplate>)]
    pub default_template: DefaultTemplate,

    /// Bound the long-running agent's login retries to `vault.retry.num_retries`,
    /// then exit so the kubelet restarts it; unbounded when false. A failing
    /// template never stops the agent: it keeps the last good file and retries.
    #[arg(long = "template-config-exit-on-retry-failure", visible_alias = "exit-on-retry-failure", env = "KEYHOLE_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = go_bool)]
    pub exit_on_retry_failure: bool,

    /// How often secrets without a lease are re-read (e.g. `5m`); the agent's default when unset.
    #[arg(
        long = "template-static-secret-render-interval",
        visible_alias = "static-secret-render-interval",
        env = "KEYHOLE_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL",
        value_parser = values::duration
    )]
    pub static_secret_render_interval: Option<String>,

    /// Parts of the agent that keep no idle connection to Vault, comma-separated
    /// (`auto-auth`, `caching`, `templating`), for pods without
    /// `vault.hashicorp.com/agent-disable-idle-connections`.
    #[arg(long, env = "KEYHOLE_DISABLE_IDLE_CONNECTIONS", default_value = "", value_parser = values::agent_parts)]
    pub disable_idle_connections: Parts,

    /// Parts of the agent that ask Vault to close each connection, comma-separated,
    /// for pods without `vault.hashicorp.com/agent-disable-keep-alives`.
    #[arg(long, env = "KEYHOLE_DISABLE_KEEP_ALIVES", default_value = "", value_parser = values::agent_parts)]
    pub disable_keep_alives: Parts,

    /// What to do with what vault-k8s admits but weakens a pod's security
    /// (`tls-skip-verify`, a `service` address other than `--vault-addr`,
    /// `agent-configmap`): `permissive` admits it with an admission warning,
    /// `strict` denies it. The flags below, when given, win in either mode.
    #[arg(
        long = "policy",
        env = "KEYHOLE_POLICY",
        value_enum,
        default_value_t = Mode::Permissive
    )]
    pub policy_mode: Mode,

    /// Vault addresses pods may choose with `vault.hashicorp.com/service`, besides
    /// `--vault-addr` (comma-separated); `*` allows any address. Empty, `--policy` decides.
    #[arg(long, env = "KEYHOLE_ALLOWED_VAULT_ADDRS", value_delimiter = ',', value_parser = allowed_vault_addr)]
    pub allowed_vault_addrs: Vec<String>,

    /// Whether `vault.hashicorp.com/tls-skip-verify: "true"` is honoured (with a
    /// warning) or denied, in either `--policy`; unset, `--policy` decides.
    #[arg(
        long,
        env = "KEYHOLE_ALLOW_TLS_SKIP_VERIFY",
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = go_bool
    )]
    pub allow_tls_skip_verify: Option<bool>,

    /// YAML file of Vault path prefixes each namespace may read
    /// (`namespaces: {<namespace>: [<prefix>, ...]}`, `"*"` for the others);
    /// read once at start.
    #[arg(
        long = "path-policy-file",
        env = "KEYHOLE_PATH_POLICY_FILE",
        value_name = "FILE",
        value_parser = PathPolicy::from_file
    )]
    pub path_policy: Option<PathPolicy>,

    /// First delay between failed logins (e.g. `1s`); the agent's default when unset.
    #[arg(long, env = "KEYHOLE_AUTH_MIN_BACKOFF", value_parser = values::duration)]
    pub auth_min_backoff: Option<String>,

    /// Cap on the delay between failed logins (e.g. `5m`); the agent's default when unset.
    #[arg(long, env = "KEYHOLE_AUTH_MAX_BACKOFF", value_parser = values::duration)]
    pub auth_max_backoff: Option<String>,

    /// Port of the pod IP where the long-running agent serves its metrics
    /// (`/agent/v1/metrics`), in a container port named `keyhole-metrics`;
    /// none when unset. `keyhole.dev/agent-metrics-port` overrides it, and
    /// `"false"` there opts a pod out.
    #[arg(long, env = "KEYHOLE_AGENT_METRICS_PORT", value_parser = values::port)]
    pub agent_metrics_port: Option<u16>,
}

/// A setting with a value the injector cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct Error {
    /// The flag, without dashes, e.g. `agent-cpu-request`.
    pub flag: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl Settings {
    /// Checks the values that their types leave open (enumerations are
    /// checked as flags are read), so a bad flag stops the injector at
    /// startup instead of denying every pod.
    pub fn validate(&self) -> Result<(), Error> {
        let quantities = [
            ("agent-cpu-request", Some(&self.cpu_request)),
            ("agent-mem-request", Some(&self.mem_request)),
            ("agent-ephemeral-request", self.ephemeral_request.as_ref()),
            ("agent-cpu-limit", Some(&self.cpu_limit)),
            ("agent-mem-limit", Some(&self.mem_limit)),
            ("agent-ephemeral-limit", self.ephemeral_limit.as_ref()),
            (
                "secrets-volume-size-limit",
                Some(&self.secrets_volume_size_limit),
            ),
        ];
        for (flag, value) in quantities {
            if let Some(value) = value {
                values::quantity(value).map_err(|message| Error { flag, message })?;
            }
        }
        let durations = [
            (
                "template-static-secret-render-interval",
                &self.static_secret_render_interval,
            ),
            ("auth-min-backoff", &self.auth_min_backoff),
            ("auth-max-backoff", &self.auth_max_backoff),
        ];
        for (flag, value) in durations {
            if let Some(value) = value {
                values::duration(value).map_err(|message| Error { flag, message })?;
            }
        }
        for address in &self.allowed_vault_addrs {
            allowed_vault_addr(address).map_err(|message| Error {
                flag: "allowed-vault-addrs",
                message,
            })?;
        }
        // Checked here, or every pod without `service` would be denied for it.
        if let Some(address) = &self.vault_addr
            && policy::normalize_address(address).is_none()
        {
            return Err(Error {
                flag: "vault-addr",
                message: format!(
                    "{address:?} is not an http or https URL such as https://vault.example:8200"
                ),
            });
        }
        Ok(())
    }

    /// The operator's limits on what pods may ask for.
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            mode: self.policy_mode,
            vault_addr: self.vault_addr.as_deref(),
            allowed_vault_addrs: &self.allowed_vault_addrs,
            allow_tls_skip_verify: self.allow_tls_skip_verify,
            path_policy: self.path_policy.as_ref(),
        }
    }
}

/// Reads `--token-audience`: an empty audience would be a token no one accepts.
fn audience(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("empty audience; leave the flag out for the API server's audiences".to_owned());
    }
    Ok(value.to_owned())
}

/// Reads one address of `--allowed-vault-addrs`.
fn allowed_vault_addr(address: &str) -> Result<String, String> {
    if address == policy::ANY_ADDRESS || policy::normalize_address(address).is_some() {
        return Ok(address.to_owned());
    }
    Err(format!(
        "{address:?} is not an http or https URL such as https://vault.example:8200, \
         nor * for any address"
    ))
}

/// Reads a boolean flag as Go's `strconv.ParseBool` does, as vault-k8s reads
/// its flags and annotations.
pub fn go_bool(value: &str) -> Result<bool, String> {
    values::boolean(value)
}

/// Reads a flag that takes one of the names of `T`.
fn choice<T: Choice>(value: &str) -> Result<T, String> {
    T::from_name(value).ok_or_else(|| format!("{value:?} is not one of {}", T::spellings()))
}

/// The agent image matching this injector's version.
pub const DEFAULT_AGENT_IMAGE: &str = concat!(
    "ghcr.io/keyhole-dev/keyhole-agent:",
    env!("CARGO_PKG_VERSION")
);

impl Default for Settings {
    fn default() -> Self {
        Self {
            vault_addr: None,
            agent_image: DEFAULT_AGENT_IMAGE.to_owned(),
            auth_path: "auth/kubernetes".to_owned(),
            auth_type: AuthType::Kubernetes,
            native_sidecar: true,
            cpu_request: "10m".to_owned(),
            mem_request: "16Mi".to_owned(),
            ephemeral_request: None,
            cpu_limit: "100m".to_owned(),
            mem_limit: "32Mi".to_owned(),
            ephemeral_limit: None,
            token_audience: None,
            log_level: LogLevel::Info,
            log_format: LogFormat::Standard,
            secrets_volume_size_limit: "64Mi".to_owned(),
            allowed_namespaces: Vec::new(),
            denied_namespaces: Vec::new(),
            set_security_context: true,
            run_as_user: 100,
            run_as_group: 1000,
            run_as_same_user: false,
            revoke_on_shutdown: false,
            default_template: DefaultTemplate::Map,
            exit_on_retry_failure: true,
            static_secret_render_interval: None,
            disable_idle_connections: Parts::default(),
            disable_keep_alives: Parts::default(),
            policy_mode: Mode::Permissive,
            allowed_vault_addrs: Vec::new(),
            allow_tls_skip_verify: None,
            path_policy: None,
            auth_min_backoff: None,
            auth_max_backoff: None,
            agent_metrics_port: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn flag_defaults_equal_default_impl() {
        let cli = Cli::try_parse_from(["keyhole-injector"]).expect("parses");
        assert_eq!(cli.settings, Settings::default());
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_bad_flag() {
        let settings = Settings {
            mem_limit: "32MB".to_owned(),
            ..Settings::default()
        };
        assert_eq!(
            settings.validate().map_err(|e| e.to_string()),
            Err("--agent-mem-limit: \"32MB\" is not a quantity such as 100m or 64Mi".to_owned())
        );
    }

    #[test]
    fn the_vault_address_must_be_a_url() {
        let settings = Settings {
            vault_addr: Some("vault:8200".to_owned()),
            ..Settings::default()
        };
        assert_eq!(
            settings.validate().map_err(|e| e.to_string()),
            Err(
                "--vault-addr: \"vault:8200\" is not an http or https URL such as \
                 https://vault.example:8200"
                    .to_owned()
            )
        );
        let settings = Settings {
            vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
            ..Settings::default()
        };
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn enumerations_are_checked_as_flags_are_read() {
        let err = Cli::try_parse_from(["keyhole-injector", "--auth-type=aws"])
            .err()
            .expect("an unknown auth type is an error");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains(
                "'--auth-type <AUTH_TYPE>': \"aws\" is not one of kubernetes, jwt, approle, \
                 token_file"
            ),
            "{err}"
        );
        let cli = Cli::try_parse_from([
            "keyhole-injector",
            "--auth-type=token_file",
            "--agent-log-level=warning",
            "--agent-log-format=json",
            "--default-template=json",
        ])
        .expect("parses");
        assert_eq!(cli.settings.auth_type, AuthType::TokenFile);
        assert_eq!(cli.settings.log_level, LogLevel::Warn);
        assert_eq!(cli.settings.log_format, LogFormat::Json);
        assert_eq!(cli.settings.default_template, DefaultTemplate::Json);
        for bad in [
            "--agent-log-level=INFO",
            "--agent-log-format=text",
            "--default-template=JSON",
        ] {
            assert!(
                Cli::try_parse_from(["keyhole-injector", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn native_sidecar_flag_takes_a_value() {
        let cli =
            Cli::try_parse_from(["keyhole-injector", "--native-sidecar=false"]).expect("parses");
        assert!(!cli.settings.native_sidecar);
    }

    #[test]
    fn boolean_flags_take_gos_forms() {
        for (value, expected) in [
            ("1", true),
            ("t", true),
            ("T", true),
            ("TRUE", true),
            ("true", true),
            ("True", true),
            ("0", false),
            ("f", false),
            ("F", false),
            ("FALSE", false),
            ("false", false),
            ("False", false),
        ] {
            let cli = Cli::try_parse_from([
                "keyhole-injector".to_owned(),
                format!("--native-sidecar={value}"),
                format!("--set-security-context={value}"),
                format!("--run-as-same-user={value}"),
                format!("--revoke-on-shutdown={value}"),
                format!("--template-config-exit-on-retry-failure={value}"),
                format!("--allow-tls-skip-verify={value}"),
            ])
            .unwrap_or_else(|err| panic!("{value}: {err}"));
            let s = cli.settings;
            assert_eq!(
                [
                    s.native_sidecar,
                    s.set_security_context,
                    s.run_as_same_user,
                    s.revoke_on_shutdown,
                    s.exit_on_retry_failure,
                ],
                [expected; 5],
                "{value}"
            );
            assert_eq!(s.allow_tls_skip_verify, Some(expected), "{value}");
        }
        let bare = Cli::try_parse_from(["keyhole-injector", "--revoke-on-shutdown"])
            .expect("a bare boolean flag is true");
        assert!(bare.settings.revoke_on_shutdown);
        let err = Cli::try_parse_from(["keyhole-injector", "--native-sidecar=yes"])
            .err()
            .expect("yes is not a Go boolean");
        assert!(
            err.to_string()
                .contains("\"yes\" is not a boolean (true or false)"),
            "{err}"
        );
    }

    #[test]
    fn old_flag_names_set_the_same_settings() {
        let renamed = [
            ("agent-cpu-request", "cpu-request", "7m"),
            ("agent-mem-request", "mem-request", "9Mi"),
            ("agent-ephemeral-request", "ephemeral-request", "1Mi"),
            ("agent-cpu-limit", "cpu-limit", "70m"),
            ("agent-mem-limit", "mem-limit", "90Mi"),
            ("agent-ephemeral-limit", "ephemeral-limit", "2Mi"),
            (
                "template-config-exit-on-retry-failure",
                "exit-on-retry-failure",
                "false",
            ),
            (
                "template-static-secret-render-interval",
                "static-secret-render-interval",
                "2m",
            ),
        ];
        let parse = |names: &[String]| {
            let args = std::iter::once("keyhole-injector".to_owned()).chain(names.iter().cloned());
            Cli::try_parse_from(args).expect("parses").settings
        };
        let new = parse(&renamed.map(|(new, _, value)| format!("--{new}={value}")));
        let old = parse(&renamed.map(|(_, old, value)| format!("--{old}={value}")));
        assert_eq!(new, old);
        assert_eq!(new.cpu_request, "7m");
        assert_eq!(new.ephemeral_limit.as_deref(), Some("2Mi"));
        assert!(!new.exit_on_retry_failure);
        assert_eq!(new.static_secret_render_interval.as_deref(), Some("2m"));
    }

    #[test]
    fn quantities_and_durations_are_checked_as_flags_are_read() {
        for (arg, message) in [
            (
                "--agent-mem-limit=32MB",
                "'--agent-mem-limit <MEM_LIMIT>': \"32MB\" is not a quantity",
            ),
            (
                "--auth-min-backoff=soon",
                "'--auth-min-backoff <AUTH_MIN_BACKOFF>': \"soon\"",
            ),
            (
                "--allowed-vault-addrs=vault:8200",
                "'--allowed-vault-addrs <ALLOWED_VAULT_ADDRS>': \"vault:8200\" is not an http",
            ),
        ] {
            let err = Cli::try_parse_from(["keyhole-injector", arg])
                .err()
                .unwrap_or_else(|| panic!("{arg} is refused"));
            assert!(err.to_string().contains(message), "{arg}: {err}");
        }
    }

    #[test]
    fn policy_flags_parse_and_a_bad_policy_file_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("paths.yaml");
        std::fs::write(&file, "namespaces:\n  team-a: [secret/team-a/]\n").expect("write");
        let file = file.to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from([
            "keyhole-injector",
            "--allowed-vault-addrs=https://a.example,https://b.example:8200",
            "--allow-tls-skip-verify",
            "--path-policy-file",
            file,
        ])
        .expect("parses");
        assert_eq!(
            cli.settings.allowed_vault_addrs,
            ["https://a.example", "https://b.example:8200"]
        );
        assert_eq!(cli.settings.allow_tls_skip_verify, Some(true));
        let policy = cli.settings.path_policy.expect("policy loaded");
        assert_eq!(
            policy.prefixes("team-a"),
            Some(&["secret/team-a/".to_owned()][..])
        );
        let off = Cli::try_parse_from(["keyhole-injector", "--allow-tls-skip-verify=false"])
            .expect("parses");
        assert_eq!(off.settings.allow_tls_skip_verify, Some(false));

        std::fs::write(dir.path().join("bad.yaml"), "namespaces: [secret/]\n").expect("write");
        let bad = dir.path().join("bad.yaml");
        let err = Cli::try_parse_from([
            "keyhole-injector",
            "--path-policy-file",
            bad.to_str().expect("utf-8 path"),
        ])
        .err()
        .expect("a bad policy file is an error");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains(&format!("{}: ", bad.display())),
            "{err}"
        );
    }

    #[test]
    fn policy_mode_is_permissive_unless_strict_is_asked_for() {
        let cli = Cli::try_parse_from(["keyhole-injector"]).expect("parses");
        assert_eq!(cli.settings.policy_mode, Mode::Permissive);
        assert_eq!(cli.settings.allow_tls_skip_verify, None);
        let strict = Cli::try_parse_from(["keyhole-injector", "--policy=strict"]).expect("parses");
        assert_eq!(strict.settings.policy_mode, Mode::Strict);
        let err = Cli::try_parse_from(["keyhole-injector", "--policy=lenient"])
            .err()
            .expect("an unknown mode is an error");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(
            err.to_string()
                .contains("[possible values: permissive, strict]"),
            "{err}"
        );
    }

    #[test]
    fn token_audience_is_unset_by_default_and_never_empty() {
        let cli =
            Cli::try_parse_from(["keyhole-injector", "--token-audience=vault"]).expect("parses");
        assert_eq!(cli.settings.token_audience.as_deref(), Some("vault"));
        let err = Cli::try_parse_from(["keyhole-injector", "--token-audience= "])
            .err()
            .expect("an empty audience is an error");
        assert!(
            err.to_string()
                .contains("empty audience; leave the flag out for the API server's audiences"),
            "{err}"
        );
    }

    #[test]
    fn allowed_vault_addrs_must_be_urls_or_star() {
        let settings = Settings {
            allowed_vault_addrs: vec!["*".to_owned(), "vault:8200".to_owned()],
            ..Settings::default()
        };
        assert_eq!(
            settings.validate().map_err(|e| e.to_string()),
            Err(
                "--allowed-vault-addrs: \"vault:8200\" is not an http or https URL such as \
                 https://vault.example:8200, nor * for any address"
                    .to_owned()
            )
        );
    }
}
