//! Running an injected agent container of a mutated pod the way the kubelet would.
//!
//! Every volume the container mounts becomes a directory under a pod directory, and each
//! mount path in the agent's `KEYHOLE_AGENT_CONFIG` is remapped to its directory. The
//! projected service-account token the kubelet would write is a minted one.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::process::{Child, Command};

/// The container named `name` among the pod's init containers and containers.
pub fn pod_container<'a>(pod: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    let spec = &pod["spec"];
    spec["initContainers"]
        .as_array()
        .into_iter()
        .chain(spec["containers"].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .with_context(|| format!("the pod has no container named {name}"))
}

/// The value of env `KEYHOLE_AGENT_CONFIG` of an agent container.
pub fn agent_config(container: &Value) -> anyhow::Result<String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "KEYHOLE_AGENT_CONFIG")
        .and_then(|e| e["value"].as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "container {} has no KEYHOLE_AGENT_CONFIG",
                container["name"]
            )
        })
}

/// A running agent container of a mutated pod.
#[derive(Debug)]
pub struct PodAgent {
    bin: PathBuf,
    child: Child,
    config: String,
    mounts: Vec<(String, PathBuf)>,
}

impl PodAgent {
    /// Starts container `name` of `pod` with the `keyhole-agent` binary `bin`, its volumes
    /// under `pod_dir`, and `sa_token` as the projected service-account token.
    pub async fn start(
        bin: &Path,
        pod: &Value,
        name: &str,
        pod_dir: &Path,
        sa_token: &str,
    ) -> anyhow::Result<Self> {
        let container = pod_container(pod, name)?;
        let mut config = agent_config(container)?;
        let mut mounts = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let volume = mount["name"].as_str().context("volumeMount without name")?;
            let path = mount["mountPath"]
                .as_str()
                .context("volumeMount without mountPath")?;
            let dir = pod_dir.join(volume);
            std::fs::create_dir_all(&dir)?;
            config = config.replace(path, &dir.display().to_string());
            mounts.push((volume.to_owned(), dir));
        }
        let parsed: Value = serde_json::from_str(&config)?;
        if let Some(token_path) = parsed["auto_auth"]["method"][0]["config"]["token_path"]
            .as_str()
            .or_else(|| parsed["auto_auth"]["method"]["config"]["token_path"].as_str())
        {
            std::fs::write(token_path, sa_token)
                .with_context(|| format!("writing the projected token to {token_path}"))?;
        }
        let child = Command::new(bin)
            .env("KEYHOLE_AGENT_CONFIG", &config)
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self {
            bin: bin.to_owned(),
            child,
            config,
            mounts,
        })
    }

    /// The agent's config with every mount path remapped.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// The directory standing in for volume `name`.
    pub fn volume_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.mounts
            .iter()
            .find(|(volume, _)| volume == name)
            .map(|(_, dir)| dir.clone())
            .with_context(|| format!("the agent does not mount volume {name}"))
    }

    /// Runs `keyhole-agent probe` (what the native sidecar's startup probe runs) until it
    /// passes, failing after `timeout` or when the agent exits first.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let probe = Command::new(&self.bin)
                .arg("probe")
                .env("KEYHOLE_AGENT_CONFIG", &self.config)
                .env("VAULT_LOG_LEVEL", "error")
                .status()
                .await?;
            if probe.success() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent exited ({status}) before it was ready");
            }
            if Instant::now() > deadline {
                bail!("the agent was not ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the agent to exit by itself (an init container), at most `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("the agent did not exit within {timeout:?}"))?
            .context("waiting for the agent")
    }

    /// Sends SIGTERM, as the kubelet does, and returns the exit status.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("the agent already exited")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .context("the agent did not exit within 5s of SIGTERM")?
            .context("waiting for the agent")
    }
}
