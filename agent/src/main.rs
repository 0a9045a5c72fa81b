//! The `keyhole-agent` binary: see [`keyhole_agent::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    keyhole_agent::crypto::install_provider();
    keyhole_agent::cli::Cli::parse_go_style().run()
}
