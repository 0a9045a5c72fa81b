//! The `keyhole-agent` binary: see [`keyhole_agent::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One rustls crypto provider for every TLS client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    keyhole_agent::cli::Cli::parse().run()
}
