//! keyhole-injector binary.

use std::process::ExitCode;

use clap::Parser;
use keyhole_injector::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Fails only if a provider is already installed, which nothing did before main.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match keyhole_injector::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", keyhole_agent::cli::describe(&err));
            ExitCode::FAILURE
        }
    }
}
