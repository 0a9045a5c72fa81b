//! Command line and process wiring of the `keyhole-agent` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tracing::error;

use crate::config::AgentConfig;

/// Renders Vault/OpenBao secrets into files from a Vault Agent configuration.
#[derive(Debug, Parser)]
#[command(name = "keyhole-agent", version)]
pub struct Cli {
    /// Vault Agent configuration file (HCL or JSON). Without it the JSON
    /// configuration is read from env KEYHOLE_AGENT_CONFIG.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Log level: trace, debug, info, warn or error.
    #[arg(long, env = "KEYHOLE_LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,

    /// Log format.
    #[arg(long, env = "KEYHOLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 once every template has rendered at least once (for the
    /// native sidecar's startup probe), 1 before.
    Probe,
}

impl Cli {
    /// Runs the agent and returns the process exit code.
    pub fn run(self) -> ExitCode {
        let Self {
            config,
            log_level,
            log_format,
            command,
        } = self;
        if let Err(err) = init_logging(&log_level, log_format) {
            eprintln!("keyhole-agent: {err:#}");
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
            Some(Command::Probe) => Ok(probe(&config)),
            None => runtime().and_then(|rt| rt.block_on(crate::runner::run(config))),
        };
        result.unwrap_or_else(|err| {
            error!("{err:#}");
            ExitCode::FAILURE
        })
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: the agent waits on the network almost all the time, and a
    // single-threaded runtime keeps its memory small.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("invalid log level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn probe(config: &AgentConfig) -> ExitCode {
    match &config.keyhole.ready_file {
        Some(path) if path.exists() => ExitCode::SUCCESS,
        Some(_) => ExitCode::FAILURE,
        None => {
            error!("probe needs keyhole {{ ready_file }} in the configuration");
            ExitCode::from(2)
        }
    }
}
