//! What a render does to the world: replace the file, then, when its bytes
//! changed, run the template's command and send its reload signal.

use std::path::Path;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{Entry, Error, Result};
use crate::config;
use crate::reload;
use crate::write::{self, Outcome};

/// Writes `contents` to `entry`'s destination; when the file changed, runs
/// its command and sends its reload signal.
pub(super) async fn write(entry: &Entry, contents: &[u8]) -> Result<Outcome> {
    let config = &entry.config;
    let outcome = write::replace(
        &config.destination,
        contents,
        config.perms,
        config.create_dest_dirs,
    )
    .map_err(|source| Error::Write {
        destination: config.destination.clone(),
        source,
    })?;
    match outcome {
        Outcome::Written => {
            info!(destination = %config.destination.display(), "rendered");
            if let Some(command) = &config.command {
                run_command(command, config.command_timeout, &config.destination).await;
            }
            if let Some(reload) = &entry.reload {
                send_reload(reload);
            }
        }
        Outcome::Unchanged => {
            debug!(destination = %config.destination.display(), "unchanged");
        }
    }
    Ok(outcome)
}

fn send_reload(reload: &config::Reload) {
    match reload::signal_processes(reload.signal, &reload.process) {
        Ok(0) => warn!(process = %reload.process, "no process to signal after the file changed"),
        Ok(count) => {
            info!(process = %reload.process, signal = reload.signal.as_str(), count, "signalled")
        }
        Err(err) => warn!("reload signal failed: {err}"),
    }
}

/// Runs a template's command after its file changed. Its failure is logged
/// and does not fail the render: the file is already in place.
async fn run_command(argv: &[String], timeout: Duration, destination: &Path) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let destination = destination.display();
    let child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            warn!(%destination, command = %program, error = %err, "template command could not start");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            info!(%destination, command = %program, "template command succeeded");
        }
        Ok(Ok(status)) => {
            warn!(%destination, command = %program, %status, "template command failed");
        }
        Ok(Err(err)) => {
            warn!(%destination, command = %program, error = %err, "template command failed");
        }
        Err(_) => {
            warn!(%destination, command = %program, ?timeout, "template command timed out; killed");
        }
    }
}
