//! keyhole-injector binary.

use std::process::ExitCode;

use clap::Parser;
use keyhole_injector::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    keyhole_agent::crypto::install_provider();
    match keyhole_injector::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", keyhole_agent::cli::describe(&err));
            ExitCode::FAILURE
        }
    }
}
