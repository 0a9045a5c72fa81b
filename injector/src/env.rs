//! Environment variables of the injector's flags besides the `KEYHOLE_*`
//! name each flag has: vault-k8s's `AGENT_INJECT_*` names, so that the env
//! block of a vault-helm injector deployment carries over.
//!
//! clap binds one variable to a flag, so the name is chosen when the command
//! is built, from which variables are set: keyhole's own name when it is set,
//! else vault-k8s's. Variables whose meaning differs, or that keyhole has no
//! setting for, are never applied; each set one gets a warning instead.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// vault-k8s variables that mean what a keyhole variable means, with it.
pub const VAULT_K8S: &[(&str, &str)] = &[
    ("AGENT_INJECT_LISTEN", "KEYHOLE_LISTEN"),
    ("AGENT_INJECT_LOG_LEVEL", "KEYHOLE_LOG_LEVEL"),
    ("AGENT_INJECT_LOG_FORMAT", "KEYHOLE_LOG_FORMAT"),
    (
        "AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE",
        "KEYHOLE_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE",
    ),
    (
        "AGENT_INJECT_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL",
        "KEYHOLE_TEMPLATE_STATIC_SECRET_RENDER_INTERVAL",
    ),
    // vault-k8s's `-tls-auto` is the name of the webhook configuration, and
    // giving it turns automatic TLS on; see `TLS_AUTO_ON`.
    ("AGENT_INJECT_TLS_AUTO", "KEYHOLE_TLS_AUTO_WEBHOOK_CONFIG"),
    ("AGENT_INJECT_TLS_AUTO_HOSTS", "KEYHOLE_TLS_AUTO_HOSTS"),
    ("AGENT_INJECT_TLS_CERT_FILE", "KEYHOLE_TLS_CERT"),
    ("AGENT_INJECT_TLS_KEY_FILE", "KEYHOLE_TLS_KEY"),
    ("AGENT_INJECT_VAULT_ADDR", "KEYHOLE_VAULT_ADDR"),
    ("AGENT_INJECT_VAULT_AUTH_TYPE", "KEYHOLE_AUTH_TYPE"),
    ("AGENT_INJECT_VAULT_AUTH_PATH", "KEYHOLE_AUTH_PATH"),
    (
        "AGENT_INJECT_REVOKE_ON_SHUTDOWN",
        "KEYHOLE_REVOKE_ON_SHUTDOWN",
    ),
    ("AGENT_INJECT_RUN_AS_USER", "KEYHOLE_RUN_AS_USER"),
    ("AGENT_INJECT_RUN_AS_GROUP", "KEYHOLE_RUN_AS_GROUP"),
    ("AGENT_INJECT_RUN_AS_SAME_USER", "KEYHOLE_RUN_AS_SAME_USER"),
    (
        "AGENT_INJECT_SET_SECURITY_CONTEXT",
        "KEYHOLE_SET_SECURITY_CONTEXT",
    ),
    ("AGENT_INJECT_DEFAULT_TEMPLATE", "KEYHOLE_DEFAULT_TEMPLATE"),
    ("AGENT_INJECT_CPU_REQUEST", "KEYHOLE_AGENT_CPU_REQUEST"),
    ("AGENT_INJECT_MEM_REQUEST", "KEYHOLE_AGENT_MEM_REQUEST"),
    (
        "AGENT_INJECT_EPHEMERAL_REQUEST",
        "KEYHOLE_AGENT_EPHEMERAL_REQUEST",
    ),
    ("AGENT_INJECT_CPU_LIMIT", "KEYHOLE_AGENT_CPU_LIMIT"),
    ("AGENT_INJECT_MEM_LIMIT", "KEYHOLE_AGENT_MEM_LIMIT"),
    (
        "AGENT_INJECT_EPHEMERAL_LIMIT",
        "KEYHOLE_AGENT_EPHEMERAL_LIMIT",
    ),
    (
        "AGENT_INJECT_DISABLE_IDLE_CONNECTIONS",
        "KEYHOLE_DISABLE_IDLE_CONNECTIONS",
    ),
    (
        "AGENT_INJECT_DISABLE_KEEP_ALIVES",
        "KEYHOLE_DISABLE_KEEP_ALIVES",
    ),
    ("AGENT_INJECT_AUTH_MIN_BACKOFF", "KEYHOLE_AUTH_MIN_BACKOFF"),
    ("AGENT_INJECT_AUTH_MAX_BACKOFF", "KEYHOLE_AUTH_MAX_BACKOFF"),
    // vault-helm sets the injector's namespace from the downward API.
    ("NAMESPACE", "KEYHOLE_NAMESPACE"),
];

/// vault-k8s variables keyhole does not apply, and why.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "AGENT_INJECT_VAULT_IMAGE",
        "it names a Vault image to run as the agent; keyhole injects keyhole-agent, \
         whose image is --agent-image",
    ),
    (
        "AGENT_INJECT_VAULT_CACERT_BYTES",
        "keyhole has no server-wide Vault CA; pods name theirs with vault.hashicorp.com/ca-cert",
    ),
    (
        "AGENT_INJECT_VAULT_NAMESPACE",
        "keyhole has no server-wide Vault namespace; pods set vault.hashicorp.com/namespace",
    ),
    (
        "AGENT_INJECT_PROXY_ADDR",
        "keyhole has no server-wide proxy; pods set vault.hashicorp.com/proxy-address",
    ),
    (
        "AGENT_INJECT_TLS_CA_CERT_FILE",
        "keyhole does not write a CA file's bundle into the webhook configuration; \
         use --tls-auto or the chart's certificate settings",
    ),
    (
        "AGENT_INJECT_TLS_MIN_VERSION",
        "keyhole's webhook always serves TLS 1.2 and 1.3",
    ),
    (
        "AGENT_INJECT_TLS_CIPHER_SUITES",
        "keyhole's webhook serves rustls's default cipher suites",
    ),
    (
        "AGENT_INJECT_TELEMETRY_PATH",
        "keyhole serves metrics at /metrics on --admin-listen",
    ),
    (
        "AGENT_INJECT_USE_LEADER_ELECTOR",
        "keyhole's replicas share one CA Secret without electing a leader",
    ),
    (
        "AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST",
        "keyhole-agent has no such setting",
    ),
    (
        "AGENT_INJECT_TEMPLATE_LEASE_RENEWAL_THRESHOLD",
        "keyhole-agent has no such setting",
    ),
];

/// The vault-k8s variable that also turns `--tls-auto` on.
const TLS_AUTO_ON: &str = "AGENT_INJECT_TLS_AUTO";

/// Binds the vault-k8s variables `lookup` finds set to the flags of `command`'s
/// subcommands; returns the command and a warning for each variable it does
/// not apply.
pub fn bind(
    mut command: Command,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> (Command, Vec<String>) {
    let mut warnings = Vec::new();
    for &(vault_k8s, keyhole) in VAULT_K8S {
        if lookup(vault_k8s).is_none() {
            continue;
        }
        if lookup(keyhole).is_some() {
            warnings.push(format!(
                "{vault_k8s} is ignored: {keyhole} is also set, and keyhole's name wins"
            ));
            continue;
        }
        command = for_each_arg(command, keyhole, |arg| arg.env(vault_k8s));
        // `KEYHOLE_TLS_AUTO` decides for itself, and certificate files win
        // over automatic TLS, as in vault-k8s.
        let deciders = [
            "KEYHOLE_TLS_AUTO",
            "KEYHOLE_TLS_CERT",
            "AGENT_INJECT_TLS_CERT_FILE",
        ];
        if vault_k8s == TLS_AUTO_ON && deciders.iter().all(|name| lookup(name).is_none()) {
            command = for_each_arg(command, "KEYHOLE_TLS_AUTO", |arg| arg.default_value("true"));
            // A default does not count as given, so the certificate files
            // would still be required without `--tls-auto` on the command line.
            command = for_each_arg(command, "KEYHOLE_TLS_CERT", |arg| {
                arg.required_unless_present(clap::builder::Resettable::<clap::Id>::Reset)
            });
        }
    }
    for &(name, why) in IGNORED {
        if lookup(name).is_some() {
            warnings.push(format!("{name} is ignored: {why}"));
        }
    }
    (command, warnings)
}

/// Applies `change` to every subcommand's argument read from variable `env`.
fn for_each_arg(
    mut command: Command,
    env: &str,
    change: impl Fn(clap::Arg) -> clap::Arg + Copy,
) -> Command {
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, |mut sub| {
            let ids: Vec<_> = sub
                .get_arguments()
                .filter(|arg| arg.get_env() == Some(OsStr::new(env)))
                .map(|arg| arg.get_id().clone())
                .collect();
            for id in ids {
                sub = sub.mut_arg(id, change);
            }
            sub
        });
    }
    command
}

/// Makes an error about a bad value name where the value came from: the
/// variable instead of the flag when the flag was not written, and a renamed
/// flag's old name when that is the one written.
pub fn name_the_source(mut err: clap::Error, command: &Command, args: &[OsString]) -> clap::Error {
    let Some(ContextValue::String(invalid)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    // clap shows the flag as `--name <VALUE>` or `--name[=<VALUE>]`.
    let Some(long) = invalid
        .strip_prefix("--")
        .and_then(|rest| rest.split([' ', '[', '=']).next())
    else {
        return err;
    };
    let arg = std::iter::once(command)
        .chain(command.get_subcommands())
        .flat_map(Command::get_arguments)
        .find(|arg| arg.get_long() == Some(long));
    let Some(arg) = arg else {
        return err;
    };
    let written = written_name(arg, args);
    let source = match (written, arg.get_env()) {
        // An old name of a renamed flag: show it as written.
        (Some(name), _) if name != long => invalid.replacen(long, name, 1),
        (Some(_), _) | (None, None) => return err,
        (None, Some(env)) => env.to_string_lossy().into_owned(),
    };
    err.insert(ContextKind::InvalidArg, ContextValue::String(source));
    err
}

/// The name, long or alias, under which `arg` was last written in `args`.
fn written_name<'a>(arg: &'a clap::Arg, args: &[OsString]) -> Option<&'a str> {
    let names: Vec<&str> = arg
        .get_long()
        .into_iter()
        .chain(arg.get_all_aliases().into_iter().flatten())
        .collect();
    args.iter()
        .filter_map(|arg| arg.to_str())
        .rev()
        .find_map(|arg| {
            let flag = arg.strip_prefix("--")?;
            names
                .iter()
                .copied()
                .find(|name| flag == *name || flag.starts_with(&format!("{name}=")))
        })
}

/// Where the settings of a parsed subcommand came from, by argument id: the
/// flag as written (`--listen`) or the variable (`AGENT_INJECT_LISTEN`), so
/// that errors found after parsing name what the user wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources(BTreeMap<String, String>);

impl Sources {
    /// The sources of the arguments of the subcommand `matches` holds.
    pub fn of(command: &Command, matches: &ArgMatches, args: &[OsString]) -> Sources {
        let Some((name, matches)) = matches.subcommand() else {
            return Sources::default();
        };
        let Some(sub) = command.find_subcommand(name) else {
            return Sources::default();
        };
        let mut sources = BTreeMap::new();
        for arg in sub.get_arguments() {
            let id = arg.get_id().as_str();
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => written_name(arg, args).map(|n| format!("--{n}")),
                Some(ValueSource::EnvVariable) => {
                    arg.get_env().map(|env| env.to_string_lossy().into_owned())
                }
                _ => None,
            };
            if let Some(source) = source {
                sources.insert(id.to_owned(), source);
            }
        }
        Sources(sources)
    }

    /// What set argument `id`, if anything did.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// What set argument `id`; `--{flag}` when nothing did (its default).
    pub fn name(&self, id: &str, flag: &str) -> String {
        self.get(id)
            .map_or_else(|| format!("--{flag}"), str::to_owned)
    }
}
