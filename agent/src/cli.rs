//! Command line and process wiring of the `keyhole-agent` binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing::error;

use crate::config::{AgentConfig, Choice, LogFormat, LogLevel};
use crate::heartbeat;
use crate::logging::Logger;

/// Renders Vault/OpenBao secrets into files from a Vault Agent configuration.
///
/// Takes Vault Agent's own command line as well: `-config=FILE` (Go's
/// single-dash flags, for every long flag) and a leading `agent` word, so
/// `vault agent -config=FILE` runs with only the program swapped.
#[derive(Debug, Parser)]
#[command(name = "keyhole-agent", version)]
pub struct Cli {
    /// Vault Agent configuration file (HCL or JSON), or a directory of
    /// `.hcl` and `.json` files. Repeat it to merge several, as Vault Agent
    /// does. Without it the JSON configuration is read from env
    /// KEYHOLE_AGENT_CONFIG.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Vec<PathBuf>,

    /// Log in, render every template once and exit 0, as `exit_after_auth`
    /// in the configuration; `=false` overrides the configuration's `true`.
    #[arg(
        long,
        global = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = go_bool
    )]
    exit_after_auth: Option<bool>,

    /// Log level: trace, debug, info, warn (warning) or error (err). Read
    /// from VAULT_LOG_LEVEL, as Vault Agent does; either wins over the
    /// configuration's `log_level`. Default: info.
    #[arg(long, env = "VAULT_LOG_LEVEL", value_parser = log_level, global = true)]
    log_level: Option<LogLevel>,

    /// Log format. Read from VAULT_LOG_FORMAT, as Vault Agent does; either
    /// wins over the configuration's `log_format`. Default: standard.
    #[arg(long, env = "VAULT_LOG_FORMAT", value_enum, global = true)]
    log_format: Option<LogFormat>,

    /// Timeout of each request to Vault, e.g. 60s. Read from
    /// VAULT_CLIENT_TIMEOUT, as Vault Agent does.
    #[arg(long, env = "VAULT_CLIENT_TIMEOUT", value_parser = duration, global = true)]
    client_timeout: Option<Duration>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 once every template has rendered at least once (for the
    /// native sidecar's startup probe), 1 before.
    Probe {
        /// Instead, exit 0 while the running agent's heartbeat is fresh, 1
        /// once it is stale or missing (for the native sidecar's liveness
        /// probe). A Vault outage keeps it fresh; a wedged agent does not.
        #[arg(
            long,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            default_value = "false",
            value_name = "BOOL",
            value_parser = go_bool,
            action = clap::ArgAction::Set
        )]
        live: bool,
    },
}

impl Cli {
    /// Parses a command line in keyhole's form (`--config FILE`) or Vault
    /// Agent's (`agent -config=FILE`); see [`go_style`].
    pub fn try_parse_go_style<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut command = Cli::command();
        let args = go_style(&command, args.into_iter().map(Into::into).collect());
        let mut matches = command.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
    }

    /// Parses the process's command line as [`Cli::try_parse_go_style`]
    /// does; on an error prints it and exits, as clap does.
    pub fn parse_go_style() -> Self {
        Cli::try_parse_go_style(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Runs the agent and returns the process exit code.
    pub fn run(self) -> ExitCode {
        let Self {
            config,
            exit_after_auth,
            log_level,
            log_format,
            client_timeout,
            command,
        } = self;
        let logger = match Logger::init(
            log_level.unwrap_or(LogLevel::Info),
            log_format.unwrap_or(LogFormat::Standard),
        ) {
            Ok(logger) => logger,
            Err(err) => {
                eprintln!("keyhole-agent: {}", describe(&err));
                return ExitCode::from(2);
            }
        };
        let config = match AgentConfig::load(&config) {
            Ok(mut config) => {
                // As in Vault Agent, the flag, when given, wins over the file.
                if let Some(exit_after_auth) = exit_after_auth {
                    config.exit_after_auth = exit_after_auth;
                }
                config
            }
            Err(err) => {
                error!("{err}");
                return ExitCode::from(2);
            }
        };
        let result = match command {
            Some(Command::Probe { live }) => Ok(probe(&config, live)),
            None => {
                let log = &config.log;
                if let Err(err) = logger.apply(
                    log_level.or(log.level).unwrap_or(LogLevel::Info),
                    log_format.or(log.format).unwrap_or(LogFormat::Standard),
                    log.file.as_ref(),
                ) {
                    error!("{}", describe(&err));
                    return ExitCode::from(2);
                }
                runtime().and_then(|rt| rt.block_on(crate::runner::run(config, client_timeout)))
            }
        };
        result.unwrap_or_else(|err| {
            error!("{}", describe(&err));
            ExitCode::FAILURE
        })
    }
}

/// Rewrites Vault Agent's command line into keyhole's.
///
/// Go's flag package, which Vault's CLI uses, takes every flag with one dash
/// or two (`-config=FILE`, `-config FILE`, `--config FILE`); clap would read
/// `-config` as `-c onfig`. So a single-dash argument naming a long flag
/// (before a `--`) gets a second dash. Pod specs written for the Vault image
/// pass `agent -config=FILE` to its entrypoint, so a leading `agent` word,
/// Vault's subcommand, is dropped.
pub fn go_style(command: &clap::Command, mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|arg| arg == "agent") {
        args.remove(1);
    }
    let longs: Vec<&str> = command
        .get_arguments()
        .chain(
            command
                .get_subcommands()
                .flat_map(|sub| sub.get_arguments()),
        )
        .filter_map(|arg| arg.get_long())
        .chain(["help", "version"])
        .collect();
    let mut rewritten = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    rewritten.extend(args.next());
    for arg in args.by_ref() {
        if arg == "--" {
            rewritten.push(arg);
            break;
        }
        let long = arg
            .to_str()
            .and_then(|text| text.strip_prefix('-'))
            .filter(|flag| !flag.starts_with('-'))
            .filter(|flag| longs.contains(&flag.split_once('=').map_or(*flag, |(name, _)| name)));
        match long {
            Some(flag) => rewritten.push(format!("--{flag}").into()),
            None => rewritten.push(arg),
        }
    }
    rewritten.extend(args);
    rewritten
}

/// Reads a boolean flag value as Go's `strconv.ParseBool` does.
fn go_bool(text: &str) -> Result<bool, String> {
    crate::config::parse_bool(text)
        .ok_or_else(|| format!("{text:?} is not a boolean (true or false)"))
}

fn log_level(text: &str) -> Result<LogLevel, String> {
    LogLevel::from_name(&text.to_ascii_lowercase())
        .ok_or_else(|| "expected trace, debug, info, warn or error".to_owned())
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text).ok_or_else(|| "expected a duration such as 60s".to_owned())
}

/// Formats an error with its causes, `outer: inner: innermost`.
///
/// keyhole's error types already print their source in their own message, so
/// that a log line of just `{err}` is complete; anyhow's `{:#}` would then
/// print each such cause twice. A cause whose text the line already holds is
/// left out.
pub fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: the agent waits on the network almost all the time, and a
    // single-threaded runtime keeps its memory small.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn probe(config: &AgentConfig, live: bool) -> ExitCode {
    let keyhole = &config.keyhole;
    let (key, passes) = if live {
        let now = SystemTime::now();
        let file = keyhole.heartbeat_file.as_deref();
        (
            "heartbeat_file",
            file.map(|path| heartbeat::is_fresh(path, now)),
        )
    } else {
        (
            "ready_file",
            keyhole.ready_file.as_deref().map(Path::exists),
        )
    };
    match passes {
        Some(true) => ExitCode::SUCCESS,
        Some(false) => ExitCode::FAILURE,
        None => {
            error!("probe needs keyhole {{ {key} }} in the configuration");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Read {
        path: &'static str,
        source: std::io::Error,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_go_style(args).unwrap_or_else(|err| panic!("{args:?}: {err}"))
    }

    #[test]
    fn takes_vault_agents_single_dash_flags() {
        let vault_style = parse(&[
            "keyhole-agent",
            "agent",
            "-config=/etc/a.hcl",
            "-config",
            "/etc/b.hcl",
            "--config=/etc/c.hcl",
            "-log-level=debug",
            "-log-format",
            "json",
            "-exit-after-auth",
        ]);
        assert_eq!(
            vault_style.config,
            [
                PathBuf::from("/etc/a.hcl"),
                "/etc/b.hcl".into(),
                "/etc/c.hcl".into()
            ]
        );
        assert_eq!(vault_style.log_level, Some(LogLevel::Debug));
        assert_eq!(vault_style.log_format, Some(LogFormat::Json));
        assert_eq!(vault_style.exit_after_auth, Some(true));

        let keyhole_style = parse(&["keyhole-agent", "-c", "/etc/a.hcl", "probe", "-live"]);
        assert_eq!(keyhole_style.config, [PathBuf::from("/etc/a.hcl")]);
        assert_eq!(keyhole_style.exit_after_auth, None);
        assert!(matches!(
            keyhole_style.command,
            Some(Command::Probe { live: true })
        ));
    }

    #[test]
    fn boolean_flags_take_gos_forms() {
        for (arg, expected) in [
            ("-exit-after-auth=false", false),
            ("-exit-after-auth=F", false),
            ("--exit-after-auth=0", false),
            ("-exit-after-auth=True", true),
            ("-exit-after-auth=1", true),
        ] {
            assert_eq!(
                parse(&["keyhole-agent", arg]).exit_after_auth,
                Some(expected),
                "{arg}"
            );
        }
        let err = Cli::try_parse_go_style(["keyhole-agent", "-exit-after-auth=yes"])
            .expect_err("yes is not a Go boolean");
        assert!(
            err.to_string()
                .contains("--exit-after-auth[=<BOOL>]': \"yes\" is not a boolean"),
            "{err}"
        );
    }

    #[test]
    fn arguments_after_a_double_dash_stay_as_written() {
        let args = go_style(
            &Cli::command(),
            ["keyhole-agent", "-config=a", "--", "-config=b"]
                .map(OsString::from)
                .to_vec(),
        );
        assert_eq!(args, ["keyhole-agent", "--config=a", "--", "-config=b"]);
    }

    #[test]
    fn describe_prints_each_cause_once() {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Read {
            path: "/vault/token",
            source: inner,
        })
        .context("logging in to Vault");
        assert_eq!(
            describe(&err),
            "logging in to Vault: reading /vault/token: no such file"
        );
    }
}
