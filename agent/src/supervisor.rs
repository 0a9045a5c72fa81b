//! Supervisor mode (`exec` with `env_template`): run the configured command
//! as a child whose environment holds the rendered secrets, as Vault Agent
//! does.
//!
//! The env templates render through the same [`Renderer`](crate::render)
//! and secret cache as file templates. Once every one of them has a value,
//! the child starts with the agent's own environment plus one variable per
//! env template (a rendered value replaces an inherited variable of the
//! same name). When a later render changes a value, the child is stopped
//! with `restart_stop_signal` and started again with the new values
//! (`restart_on_secret_changes = "always"`), or left running
//! (`"never"`). A child that stops by itself ends the agent with its exit
//! status (255 when a signal killed it, as `bao agent` exits then); SIGTERM
//! or SIGINT to the agent stops the child with `restart_stop_signal` and the
//! agent exits 0. As in `bao agent`, no other signal reaches the child:
//! SIGHUP, which would end the agent and orphan the child, is only logged.
//!
//! A child that does not stop within [`STOP_TIMEOUT`] of its stop signal is
//! killed. A command written as one line of several words runs through
//! `sh -c` in a process group of its own, and its signals go to the group,
//! so that what the shell started stops with it.
//!
//! The rendered values are secrets: they appear in no log line and no error.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::config::{Exec, Restart};

/// How long a child may take to stop after its stop signal before it is
/// killed: consul-template's kill timeout, which Vault Agent uses.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The exit code of the agent when a signal killed the child: Go reports
/// such a child's status as -1, and `bao agent` exits with it.
const KILLED_BY_SIGNAL: u8 = 255;

/// Errors of this module. None holds a rendered value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command could not be started.
    #[error("exec: starting {program}: {source}")]
    Start {
        /// The program that was to run.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// Installing the SIGHUP handler failed.
    #[error("exec: handling SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The child process and the environment it was last given.
pub struct Supervisor {
    exec: Exec,
    child: Option<Running>,
    /// The rendered variables the child last saw (or would have, under
    /// `"never"`), as sorted `NAME=value` entries, to notice a change.
    environment: Option<Vec<Zeroizing<Vec<u8>>>>,
    hangup: tokio::signal::unix::Signal,
}

/// Shows the command and the child, never the environment's values.
impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("exec", &self.exec)
            .field("child", &self.child)
            .finish_non_exhaustive()
    }
}

/// A started child.
#[derive(Debug)]
struct Running {
    child: Child,
    pid: Pid,
    /// Whether it leads a process group of its own (a command run through
    /// `sh -c`), which then gets the signals.
    group: bool,
}

impl Supervisor {
    /// A supervisor for `exec`; the child starts at the first [`Supervisor::update`].
    pub fn new(exec: Exec) -> Result<Self> {
        Ok(Self {
            exec,
            child: None,
            environment: None,
            hangup: signal(SignalKind::hangup()).map_err(Error::Signal)?,
        })
    }

    /// Takes the env templates' values after a render: starts the child the
    /// first time, and restarts it when a value changed and the config says
    /// so. `None` (some env template has not rendered yet) waits.
    pub async fn update(&mut self, rendered: Option<Vec<(&str, &[u8])>>) -> Result<()> {
        let Some(rendered) = rendered else {
            return Ok(());
        };
        let environment = entries(&rendered);
        if self.environment.as_ref() == Some(&environment) {
            return Ok(());
        }
        self.environment = Some(environment);
        if self.child.is_some() {
            match self.exec.restart_on_secret_changes {
                Restart::Never => {
                    info!(
                        "exec: a secret changed; the command keeps running, as restart_on_secret_changes is \"never\""
                    );
                    return Ok(());
                }
                Restart::Always => {
                    info!("exec: a secret changed; restarting the command");
                    self.stop().await;
                }
            }
        }
        self.start(&rendered)
    }

    /// Waits until the child exits by itself and returns the exit code the
    /// agent exits with; never completes while there is no child.
    pub async fn exited(&mut self) -> ExitCode {
        loop {
            let Some(running) = &mut self.child else {
                return std::future::pending().await;
            };
            tokio::select! {
                status = running.child.wait() => {
                    self.child = None;
                    return exit_code(status);
                }
                Some(()) = self.hangup.recv() => {
                    info!("SIGHUP: ignored; bao agent does not pass it to the command either");
                }
            }
        }
    }

    /// Stops the child, if one runs: sends `restart_stop_signal`, waits up
    /// to [`STOP_TIMEOUT`], then kills it.
    pub async fn stop(&mut self) {
        let Some(mut running) = self.child.take() else {
            return;
        };
        let signal = self.exec.restart_stop_signal;
        info!(
            pid = running.pid.as_raw(),
            signal = signal.as_str(),
            "exec: stopping the command"
        );
        running.signal(signal);
        match tokio::time::timeout(STOP_TIMEOUT, running.child.wait()).await {
            Ok(Ok(status)) => info!(%status, "exec: the command stopped"),
            Ok(Err(err)) => warn!("exec: waiting for the command failed: {err}"),
            Err(_) => {
                warn!(timeout = ?STOP_TIMEOUT, "exec: the command did not stop; killing it");
                running.signal(Signal::SIGKILL);
                let _ = running.child.wait().await;
            }
        }
    }

    fn start(&mut self, rendered: &[(&str, &[u8])]) -> Result<()> {
        let (argv, group) = self.exec.argv();
        let Some((program, args)) = argv.split_first() else {
            return Ok(());
        };
        let mut command = Command::new(program);
        command.args(args).kill_on_drop(true);
        for (name, value) in rendered {
            command.env(name, OsStr::from_bytes(value));
        }
        if group {
            command.process_group(0);
        }
        let child = command.spawn().map_err(|source| Error::Start {
            program: program.clone(),
            source,
        })?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| Error::Start {
                program: program.clone(),
                source: std::io::Error::other("the started process has no id"),
            })?;
        info!(pid = pid.as_raw(), %program, "exec: started the command");
        self.child = Some(Running { child, pid, group });
        Ok(())
    }
}

impl Running {
    /// Sends `signal` to the child, or to its process group.
    fn signal(&self, signal: Signal) {
        let sent = if self.group {
            killpg(self.pid, signal)
        } else {
            kill(self.pid, signal)
        };
        if let Err(err) = sent {
            warn!(
                signal = signal.as_str(),
                "exec: signalling the command failed: {err}"
            );
        }
    }
}

/// The rendered variables as sorted `NAME=value` entries.
fn entries(rendered: &[(&str, &[u8])]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut entries: Vec<Zeroizing<Vec<u8>>> = rendered
        .iter()
        .map(|(name, value)| {
            let mut entry = Zeroizing::new(Vec::with_capacity(name.len() + 1 + value.len()));
            entry.extend_from_slice(name.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value);
            entry
        })
        .collect();
    entries.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
    entries
}

/// The agent's exit code for how the child ended.
fn exit_code(status: std::io::Result<ExitStatus>) -> ExitCode {
    match status {
        Ok(status) => {
            let code = status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .unwrap_or(KILLED_BY_SIGNAL);
            if code == 0 {
                info!("exec: the command exited with status 0");
            } else {
                warn!(%status, "exec: the command exited; the agent exits with its status");
            }
            ExitCode::from(code)
        }
        Err(err) => {
            warn!("exec: waiting for the command failed: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(command: &[&str], restart: Restart) -> Exec {
        Exec {
            command: command.iter().map(|arg| (*arg).to_owned()).collect(),
            restart_on_secret_changes: restart,
            restart_stop_signal: Signal::SIGTERM,
        }
    }

    fn pid(supervisor: &Supervisor) -> Option<i32> {
        supervisor
            .child
            .as_ref()
            .map(|running| running.pid.as_raw())
    }

    #[tokio::test]
    async fn debug_shows_no_rendered_value() -> anyhow::Result<()> {
        let mut supervisor = Supervisor::new(exec(&["sleep", "30"], Restart::Always))?;
        supervisor
            .update(Some(vec![("A", b"s3cret-value")]))
            .await?;
        let shown = format!("{supervisor:?}");
        supervisor.stop().await;
        assert!(shown.contains("sleep"), "{shown}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        Ok(())
    }

    #[test]
    fn sorts_entries_as_name_equals_value_bytes() {
        let sorted = entries(&[("A", b"y"), ("B", b"z"), ("A1", b"x")]);
        let sorted: Vec<&[u8]> = sorted.iter().map(|entry| entry.as_slice()).collect();
        // As Vault Agent sorts them: "A1=x" before "A=y", since '1' < '='.
        assert_eq!(sorted, [&b"A1=x"[..], b"A=y", b"B=z"]);
    }

    #[tokio::test]
    async fn waits_for_every_value_then_restarts_only_on_a_change() -> anyhow::Result<()> {
        let mut supervisor = Supervisor::new(exec(&["sleep", "30"], Restart::Always))?;
        supervisor.update(None).await?;
        assert_eq!(
            pid(&supervisor),
            None,
            "no child before every value rendered"
        );

        supervisor.update(Some(vec![("A", b"1")])).await?;
        let first = pid(&supervisor).expect("started");
        supervisor.update(Some(vec![("A", b"1")])).await?;
        assert_eq!(pid(&supervisor), Some(first), "same values: same child");

        supervisor.update(Some(vec![("A", b"2")])).await?;
        let second = pid(&supervisor).expect("restarted");
        assert_ne!(second, first, "a changed value restarts the child");
        assert_eq!(
            kill(Pid::from_raw(first), None),
            Err(nix::errno::Errno::ESRCH),
            "the first child is gone"
        );
        supervisor.stop().await;
        assert_eq!(pid(&supervisor), None);
        Ok(())
    }

    #[tokio::test]
    async fn never_keeps_the_first_child() -> anyhow::Result<()> {
        let mut supervisor = Supervisor::new(exec(&["sleep", "30"], Restart::Never))?;
        supervisor.update(Some(vec![("A", b"1")])).await?;
        let first = pid(&supervisor);
        supervisor.update(Some(vec![("A", b"2")])).await?;
        assert_eq!(pid(&supervisor), first);
        supervisor.stop().await;
        Ok(())
    }

    #[tokio::test]
    async fn exits_with_the_childs_status_or_255_when_a_signal_killed_it() -> anyhow::Result<()> {
        for (script, code) in [("exit 7", 7), ("exit 0", 0), ("kill -KILL $$", 255)] {
            let mut supervisor =
                Supervisor::new(exec(&["/bin/sh", "-c", script], Restart::Always))?;
            supervisor.update(Some(vec![("A", b"1")])).await?;
            assert_eq!(supervisor.exited().await, ExitCode::from(code), "{script}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_one_line_command_runs_through_the_shell_in_its_own_group() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("out");
        let line = format!("printf %s \"$A\" > {}", out.display());
        let mut supervisor = Supervisor::new(exec(&[&line], Restart::Always))?;
        supervisor.update(Some(vec![("A", b"value")])).await?;
        assert!(
            supervisor
                .child
                .as_ref()
                .is_some_and(|running| running.group)
        );
        assert_eq!(supervisor.exited().await, ExitCode::SUCCESS);
        assert_eq!(std::fs::read_to_string(&out)?, "value");
        Ok(())
    }
}
