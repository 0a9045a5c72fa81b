//! What a render does to the world: replace the file, then, when its bytes
//! changed, run the template's command and send its reload signal.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use tracing::{debug, info, warn};

use super::{Error, Result};
use crate::config;
use crate::reload;
use crate::write::{self, Outcome};

/// Writes `contents` to the template's destination; when the file changed,
/// runs its command and sends `reload`.
pub(super) async fn write(
    config: &config::Template,
    reload: Option<&config::Reload>,
    contents: &[u8],
) -> Result<Outcome> {
    let failed = |source| Error::Write {
        destination: config.destination.clone(),
        source,
    };
    // Looked up at every render, as consul-template does: a user created
    // after the agent started is found.
    let owner = write::Owner::lookup(config.user.as_deref(), config.group.as_deref()).map_err(
        |message| {
            failed(write::Error::Owner {
                path: config.destination.clone(),
                message,
            })
        },
    )?;
    let destination = write::Destination {
        mode: config.perms,
        owner,
        create_dirs: config.create_dest_dirs,
        backup: config.backup,
    };
    let outcome = destination
        .replace(&config.destination, contents)
        .map_err(failed)?;
    match outcome {
        Outcome::Written => {
            info!(destination = %config.destination.display(), "rendered");
            if let Some(command) = &config.command {
                run_command(command, config.command_timeout, &config.destination).await;
            }
            if let Some(reload) = reload {
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

/// Runs a template's command after its file changed, and logs how it ended
/// and how long it took. Its failure does not fail the render: the file is
/// already in place.
///
/// The command's output is discarded, never logged: it may print the secret
/// it was run for. It runs in a process group of its own, so that a timeout
/// also kills what a shell command started.
async fn run_command(argv: &[String], timeout: Duration, destination: &Path) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let destination = destination.display();
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            warn!(%destination, command = %program, error = %err, "template command could not start");
            return;
        }
    };
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let elapsed = started.elapsed();
    match waited {
        Ok(Ok(status)) if status.success() => {
            info!(%destination, command = %program, %status, ?elapsed, "template command succeeded");
        }
        Ok(Ok(status)) => {
            warn!(%destination, command = %program, %status, ?elapsed, "template command failed");
        }
        Ok(Err(err)) => {
            warn!(%destination, command = %program, error = %err, ?elapsed, "template command failed");
        }
        Err(_) => {
            kill_group(&mut child).await;
            warn!(%destination, command = %program, ?timeout, "template command timed out; killed");
        }
    }
}

/// Kills a timed-out command and everything in its process group, and
/// reaps it.
async fn kill_group(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        // The group may already be gone; the kill below covers the leader.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill().await;
}
