//! keyhole-injector binary.

use std::process::ExitCode;

use keyhole_injector::Cli;

fn main() -> ExitCode {
    let (cli, warnings) = Cli::parse_with_env();
    keyhole_agent::crypto::install_provider();
    match keyhole_injector::run(cli, warnings) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", keyhole_agent::cli::describe(&err));
            ExitCode::FAILURE
        }
    }
}
