//! Running `bao agent` (the reference) and `keyhole-agent` on the same config.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::tools::{Tool, require};

/// How long one init-mode agent run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What an agent run left behind.
#[derive(Debug)]
pub struct AgentRun {
    /// The process's exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Every file under the output directory after the run, keyed by its path relative to
    /// that directory (files the test put there beforehand included).
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl AgentRun {
    /// The file at `relative` (to the output directory) as UTF-8, or an error listing the
    /// files that do exist and the agent's stderr.
    pub fn file(&self, relative: impl AsRef<Path>) -> anyhow::Result<String> {
        let relative = relative.as_ref();
        let bytes = self.files.get(relative).with_context(|| {
            format!(
                "agent wrote no {} (files: {:?}; exit {}; stderr:\n{})",
                relative.display(),
                self.files.keys().collect::<Vec<_>>(),
                self.status,
                self.stderr
            )
        })?;
        String::from_utf8(bytes.clone())
            .with_context(|| format!("{} is not UTF-8", relative.display()))
    }
}

/// Runs `bao agent -config=<file>` with `config` (an [`AgentConfig`](crate::AgentConfig),
/// or literal HCL, or JSON when it starts with `{`) and the extra environment `env` until
/// it exits, and collects the files under `dir`.
/// The config should set `exit_after_auth = true` (init mode); the run is killed after a
/// minute otherwise.
pub async fn run_bao_agent(
    config: impl Display,
    dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<AgentRun> {
    let (command, _config_dir, _) = bao_command(config)?;
    run(command, dir, env).await
}

/// `bao agent -config=<file>` with `config` written to a temporary directory that also
/// serves as `$HOME`; returns the command, the directory (keep it) and the file.
fn bao_command(config: impl Display) -> anyhow::Result<(Command, tempfile::TempDir, PathBuf)> {
    let bao = require(Tool::Bao)?;
    let config_dir = tempfile::Builder::new()
        .prefix("keyhole-bao-agent-")
        .tempdir()?;
    let config_path = write_config(config, config_dir.path())?;
    let mut command = Command::new(bao);
    command
        .arg("agent")
        .arg(format!("-config={}", config_path.display()));
    // A token helper file in $HOME must not leak into the run.
    command.env("HOME", config_dir.path());
    Ok((command, config_dir, config_path))
}

/// Runs `keyhole-agent --config <file>` with `config` (as for [`run_bao_agent`]) and the
/// extra environment `env`, exactly as [`run_bao_agent`] runs `bao agent`, and collects the
/// files under `dir`.
pub async fn run_keyhole_agent(
    config: impl Display,
    dir: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<AgentRun> {
    let (command, _config_dir, _) = keyhole_command(config, &SpawnOptions::default())?;
    run(command, dir, env).await
}

/// How [`spawn_keyhole_agent_with`] starts the agent, beyond its config and environment.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// Start the agent with SIGXFSZ ignored, so that once
    /// [`RunningAgent::limit_file_size`] lowers its limit, its writes fail with "File too
    /// large" as they would on a full volume, instead of the signal killing it.
    pub ignore_sigxfsz: bool,
}

/// `keyhole-agent --config <file>` with `config` written to a temporary directory that
/// also serves as `$HOME`; returns the command, the directory (keep it) and the file.
fn keyhole_command(
    config: impl Display,
    options: &SpawnOptions,
) -> anyhow::Result<(Command, tempfile::TempDir, PathBuf)> {
    let config_dir = tempfile::Builder::new()
        .prefix("keyhole-agent-")
        .tempdir()?;
    let config_path = write_config(config, config_dir.path())?;
    let bin = keyhole_agent_bin()?;
    let mut command = if options.ignore_sigxfsz {
        // The shell execs the agent in its place; an ignored signal stays ignored.
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg("trap '' XFSZ; exec \"$0\" \"$@\"")
            .arg(bin);
        shell
    } else {
        Command::new(bin)
    };
    command.arg("--config").arg(&config_path);
    command.env("HOME", config_dir.path());
    Ok((command, config_dir, config_path))
}

/// Removes inherited settings that would override the config's server.
pub fn isolate(command: &mut Command) {
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "BAO_ADDR",
        "BAO_TOKEN",
        "KEYHOLE_AGENT_CONFIG",
    ] {
        command.env_remove(var);
    }
}

/// The `keyhole-agent` binary cargo built into the same target directory as the running
/// test (`<target>/<profile>/keyhole-agent`), or `$KEYHOLE_AGENT_BIN` when set.
pub fn keyhole_agent_bin() -> anyhow::Result<PathBuf> {
    workspace_bin("keyhole-agent", "KEYHOLE_AGENT_BIN")
}

/// The workspace binary `name` cargo built into the same target directory as the running
/// test (`<target>/<profile>/<name>`), or the path in env `override_var` when set.
///
/// `CARGO_BIN_EXE_*` only covers binaries of the test's own package, so the path is found
/// from the test executable (`<target>/<profile>/deps/<test>-<hash>`). `cargo test` does
/// not build another package's binaries: `scripts/test` runs `cargo build --workspace
/// --bins` first; by hand, run `cargo build -p <package>` before the tests.
pub fn workspace_bin(name: &str, override_var: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .filter(|dir| dir.ends_with("deps"))
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in a cargo deps directory", exe.display()))?;
    let bin = profile_dir.join(name);
    if !bin.is_file() {
        bail!(
            "{} does not exist; build it with `cargo build --workspace --bins` before running \
             the tests (scripts/test does)",
            bin.display()
        );
    }
    Ok(bin)
}

fn write_config(config: impl Display, dir: &Path) -> anyhow::Result<PathBuf> {
    let config = config.to_string();
    let name = if config.trim_start().starts_with('{') {
        "agent.json"
    } else {
        "agent.hcl"
    };
    let path = dir.join(name);
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

async fn run(mut command: Command, dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<AgentRun> {
    std::fs::create_dir_all(dir)?;
    isolate(&mut command);
    command.envs(env.iter().copied());
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let shown = format!("{command:?}");
    let child = command
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let output = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| {
            format!("{shown} still running after {RUN_TIMEOUT:?}; is exit_after_auth set?")
        })?
        .with_context(|| format!("waiting for {shown}"))?;
    Ok(AgentRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        files: collect_files(dir)?,
    })
}

fn collect_files(dir: &Path) -> anyhow::Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                files.insert(path.strip_prefix(dir)?.to_path_buf(), bytes);
            }
        }
    }
    Ok(files)
}

/// A `keyhole-agent` running as a sidecar (no `exit_after_auth`), started by
/// [`spawn_keyhole_agent`]. Killed on drop.
#[derive(Debug)]
pub struct RunningAgent {
    child: tokio::process::Child,
    config_path: PathBuf,
    _config_dir: tempfile::TempDir,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `keyhole-agent --config <file>` with `config` (as for [`run_bao_agent`]) and the
/// extra environment `env`, collecting what it logs.
pub async fn spawn_keyhole_agent(
    config: impl Display,
    env: &[(&str, &str)],
) -> anyhow::Result<RunningAgent> {
    spawn_keyhole_agent_with(config, env, &SpawnOptions::default()).await
}

/// Like [`spawn_keyhole_agent`], started as `options` say.
pub async fn spawn_keyhole_agent_with(
    config: impl Display,
    env: &[(&str, &str)],
    options: &SpawnOptions,
) -> anyhow::Result<RunningAgent> {
    let (command, config_dir, config_path) = keyhole_command(config, options)?;
    spawn(command, config_dir, config_path, env)
}

/// Starts `bao agent -config=<file>` with `config` (as for [`run_bao_agent`]) as a
/// sidecar, collecting what it logs, to compare with keyhole-agent doing the same.
pub async fn spawn_bao_agent(config: impl Display) -> anyhow::Result<RunningAgent> {
    let (command, config_dir, config_path) = bao_command(config)?;
    spawn(command, config_dir, config_path, &[])
}

fn spawn(
    mut command: Command,
    config_dir: tempfile::TempDir,
    config_path: PathBuf,
    env: &[(&str, &str)],
) -> anyhow::Result<RunningAgent> {
    use tokio::io::AsyncBufReadExt;
    isolate(&mut command);
    let mut child = command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the agent")?;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let pipe = child.stderr.take().context("agent stderr")?;
    let sink = std::sync::Arc::clone(&stderr);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut log) = sink.lock() {
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    Ok(RunningAgent {
        child,
        config_path,
        _config_dir: config_dir,
        stderr,
    })
}

impl RunningAgent {
    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the agent has logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Runs `keyhole-agent probe` with the agent's config: what a startup
    /// probe sees.
    pub async fn probe(&self) -> anyhow::Result<bool> {
        self.run_probe(&[]).await
    }

    /// Runs `keyhole-agent probe --live` with the agent's config: what a liveness
    /// probe sees.
    pub async fn probe_live(&self) -> anyhow::Result<bool> {
        self.run_probe(&["--live"]).await
    }

    async fn run_probe(&self, args: &[&str]) -> anyhow::Result<bool> {
        let status = Command::new(keyhole_agent_bin()?)
            .arg("--config")
            .arg(&self.config_path)
            .arg("probe")
            .args(args)
            .env("VAULT_LOG_LEVEL", "error")
            .status()
            .await?;
        Ok(status.success())
    }

    /// Sends `signal` to the agent, e.g. SIGSTOP to freeze it as a wedged agent is.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = self.child.id().context("the agent already exited")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid)?), signal)?;
        Ok(())
    }

    /// Polls `path` until `done` accepts its contents, for at most `timeout`,
    /// and returns them.
    pub async fn wait_for_file(
        &mut self,
        path: &Path,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(text) = std::fs::read_to_string(path)
                && done(&text)
            {
                return Ok(text);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent exited ({status}):\n{}", self.log());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} did not reach the expected contents within {timeout:?}; agent log:\n{}",
                    path.display(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the agent's log until it contains `needle`, for at most `timeout`.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.log().contains(needle) {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the agent exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the agent did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The exit status if the agent has exited, `None` while it runs.
    pub fn exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Sets the agent's soft file-size limit (RLIMIT_FSIZE) with `prlimit`: `Some(0)` makes
    /// every write of file contents fail, `None` lifts the limit. Spawn the agent with
    /// [`SpawnOptions::ignore_sigxfsz`] first, or the signal kills it.
    pub async fn limit_file_size(&self, bytes: Option<u64>) -> anyhow::Result<()> {
        let pid = self.child.id().context("the agent already exited")?;
        let soft = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
        let output = Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--fsize={soft}:"))
            .output()
            .await
            .context("running prlimit (util-linux)")?;
        if !output.status.success() {
            bail!(
                "prlimit --pid={pid} --fsize={soft}: failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Kills the agent with SIGKILL (no chance to clean up) and reaps it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the agent")
    }

    /// [`RunningAgent::stop`], also returning everything the agent logged.
    pub async fn stop_with_log(self) -> anyhow::Result<(ExitStatus, String)> {
        let stderr = std::sync::Arc::clone(&self.stderr);
        let status = self.stop().await?;
        let log = stderr.lock().map(|s| s.clone()).unwrap_or_default();
        Ok((status, log))
    }

    /// Sends SIGTERM and waits (at most 10 s) for the exit status.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("the agent already exited")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid)?),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .with_context(|| format!("the agent ignored SIGTERM; log:\n{}", self.log()))?
            .context("waiting for the agent")
    }
}

/// Scrapes the agent's metrics listener (`keyhole { metrics_listen }`) at `addr`.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    crate::install_crypto_provider();
    let url = format!("http://{addr}/metrics");
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {url} returned {status}: {text}");
    }
    Ok(text)
}

/// The value of the sample `series` (its name and labels exactly as exposed, e.g.
/// `keyhole_agent_logins_total{outcome="success"}`) in a metrics scrape; `None` when the
/// scrape has no such sample.
pub fn metric_value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}
