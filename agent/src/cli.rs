//! Command line and process wiring of the `keyhole-agent` binary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing::error;

use crate::config::{AgentConfig, Choice, LogFormat, LogLevel};
use crate::heartbeat;

/// Renders Vault/OpenBao secrets into files from a Vault Agent configuration.
#[derive(Debug, Parser)]
#[command(name = "keyhole-agent", version)]
pub struct Cli {
    /// Vault Agent configuration file (HCL or JSON). Without it the JSON
    /// configuration is read from env KEYHOLE_AGENT_CONFIG.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Log level: trace, debug, info, warn (warning) or error (err). Read
    /// from VAULT_LOG_LEVEL, as Vault Agent does.
    #[arg(long, env = "VAULT_LOG_LEVEL", default_value = "info", value_parser = log_level, global = true)]
    log_level: LogLevel,

    /// Log format. Read from VAULT_LOG_FORMAT, as Vault Agent does.
    #[arg(long, env = "VAULT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Standard, global = true)]
    log_format: LogFormat,

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
        #[arg(long)]
        live: bool,
    },
}

impl Cli {
    /// Runs the agent and returns the process exit code.
    pub fn run(self) -> ExitCode {
        let Self {
            config,
            log_level,
            log_format,
            client_timeout,
            command,
        } = self;
        if let Err(err) = init_logging(log_level, log_format) {
            eprintln!("keyhole-agent: {}", describe(&err));
            return ExitCode::from(2);
        }
        let config = match AgentConfig::load(config.as_deref()) {
            Ok(config) => config,
            Err(err) => {
                error!("{err}");
                return ExitCode::from(2);
            }
        };
        let result = match command {
            Some(Command::Probe { live }) => Ok(probe(&config, live)),
            None => {
                runtime().and_then(|rt| rt.block_on(crate::runner::run(config, client_timeout)))
            }
        };
        result.unwrap_or_else(|err| {
            error!("{}", describe(&err));
            ExitCode::FAILURE
        })
    }
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

fn init_logging(level: LogLevel, format: LogFormat) -> anyhow::Result<()> {
    let level = level.name();
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("invalid log level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Standard => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
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
