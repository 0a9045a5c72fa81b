//! The `keyhole-agent` binary: see [`keyhole_agent::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keyhole_agent::crypto::install_provider();
    keyhole_agent::cli::Cli::parse().run()
}
