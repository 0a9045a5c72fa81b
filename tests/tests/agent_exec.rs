//! Supervisor mode (`env_template` + `exec`) under `bao agent` and keyhole-agent, on
//! the same config against the same real OpenBao: what the child sees in its
//! environment, when it is restarted, which signal stops it and the exit status the
//! agent ends with.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, EnvTemplate, Exec, Tool, isolate, keyhole_agent_bin, require,
    run_keyhole_agent,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::process::{Child, Command};

/// The agents compared.
#[derive(Clone, Copy, Debug)]
enum Agent {
    Bao,
    Keyhole,
}

const AGENTS: [Agent; 2] = [Agent::Bao, Agent::Keyhole];

/// How long a child may take to start or restart: `bao agent` waits two seconds
/// after a render before it starts the command.
const CHILD_WAIT: Duration = Duration::from_secs(20);

const PASSWORD_TEMPLATE: &str =
    r#"{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}"#;

/// A variable the agents inherit and pass on to the child.
const INHERITED: (&str, &str) = ("KEYHOLE_TEST_INHERITED", "from the agent's environment");

/// A started agent with its own directory for its config, `$HOME` and logs.
struct Running {
    agent: Agent,
    child: Child,
    dir: PathBuf,
}

impl Running {
    async fn start(agent: Agent, config: &AgentConfig, dir: &Path) -> anyhow::Result<Self> {
        let dir = dir.join(format!("{agent:?}"));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("agent.hcl");
        std::fs::write(&file, config.to_string())?;
        let mut command = match agent {
            Agent::Bao => {
                let mut command = Command::new(require(Tool::Bao)?);
                command
                    .arg("agent")
                    .arg(format!("-config={}", file.display()));
                command
            }
            Agent::Keyhole => {
                let mut command = Command::new(keyhole_agent_bin()?);
                command.arg("--config").arg(&file);
                command
            }
        };
        isolate(&mut command);
        let child = command
            .env("HOME", &dir)
            .env(INHERITED.0, INHERITED.1)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout"))?)
            .stderr(std::fs::File::create(dir.join("stderr"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {agent:?}"))?;
        Ok(Self { agent, child, dir })
    }

    /// What the agent printed, for failure messages.
    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!(
            "{:?} agent output:\n{}{}",
            self.agent,
            read("stdout"),
            read("stderr")
        )
    }

    /// Waits (at most a minute) for the agent to exit by itself.
    async fn exited(&mut self) -> anyhow::Result<ExitStatus> {
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!("the agent did not exit; {}", self.output()),
        }
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.child.id().context("the agent already exited")?;
        kill(Pid::from_raw(i32::try_from(pid)?), signal)?;
        Ok(())
    }

    /// Polls `path` until it holds `expected`, for at most [`CHILD_WAIT`].
    async fn wait_for(&mut self, path: &Path, expected: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + CHILD_WAIT;
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text == expected {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the agent exited ({status}) with {text:?} in the file; {}",
                    self.output()
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "expected {expected:?}, the file holds {text:?}; {}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// OpenBao with a KV v2 secret at `secret/app/db` and a token that may read it.
async fn bao_with_secret(password: &str) -> anyhow::Result<(Bao, String)> {
    let bao = Bao::start().await?;
    bao.put_app_secret(json!({ "username": "orders", "password": password }))
        .await?;
    let token = bao.create_token(&["app"], "1h").await?;
    Ok((bao, token))
}

/// A config logging in with `token` (written under `dir`) and re-reading KV secrets
/// every second.
fn base_config(bao: &Bao, dir: &Path, token: &str) -> anyhow::Result<AgentConfig> {
    let token_file = dir.join("token");
    std::fs::write(&token_file, token)?;
    Ok(AgentConfig::new(bao.addr())
        .auto_auth(AutoAuth::token_file(token_file))
        .static_secret_render_interval(Duration::from_secs(1)))
}

/// A child that appends `start <DB_PASSWORD>` to the file named by its argument, then
/// waits; on SIGINT or SIGTERM it appends which one stopped it and exits 0.
fn long_running_child(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("child.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
trap 'echo "stopped by INT" >> "$1"; exit 0' INT
trap 'echo "stopped by TERM" >> "$1"; exit 0' TERM
echo "start $DB_PASSWORD" >> "$1"
while :; do sleep 0.1; done
"#,
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(script)
}

/// The entries of a NUL-separated environment block whose names are in `names`, sorted.
fn entries(environ: &[u8], names: &[&str]) -> Vec<String> {
    let mut kept: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .filter(|entry| {
            let name = entry.split('=').next().unwrap_or_default();
            names.contains(&name)
        })
        .collect();
    kept.sort();
    kept
}

#[tokio::test]
async fn child_environment_holds_the_rendered_values_as_under_bao_agent() -> anyhow::Result<()> {
    let password = "p@ss=w0rd with spaces\nand a second line ü";
    let (bao, token) = bao_with_secret(password).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("env");
    let config = base_config(&bao, dir.path(), &token)?
        .env_template("DB_PASSWORD", PASSWORD_TEMPLATE)
        .env_template(
            "DB_USER",
            r#"{{ with secret "secret/data/app/db" }}{{ .Data.data.username }}{{ end }}"#,
        )
        .env_template("HOME", "replaced by an env_template")
        .env_template("A1", "1")
        .env_template("A", "plain")
        .exec(Exec::new(&[
            "/bin/sh",
            "-c",
            r#"cat /proc/$$/environ > "$0"; exit 3"#,
            &out.display().to_string(),
        ]));
    let names = ["DB_PASSWORD", "DB_USER", "HOME", "A1", "A", INHERITED.0];
    let mut seen = Vec::new();
    for agent in AGENTS {
        let _ = std::fs::remove_file(&out);
        let mut running = Running::start(agent, &config, dir.path()).await?;
        let status = running.exited().await?;
        assert_eq!(status.code(), Some(3), "{}", running.output());
        let environ = std::fs::read(&out).with_context(|| running.output())?;
        seen.push(entries(&environ, &names));
        if let Agent::Keyhole = agent {
            assert!(
                !running.output().contains("p@ss=w0rd"),
                "a rendered value appears in the log: {}",
                running.output()
            );
        }
    }
    let expected = vec![
        "A1=1".to_owned(),
        "A=plain".to_owned(),
        format!("DB_PASSWORD={password}"),
        "DB_USER=orders".to_owned(),
        "HOME=replaced by an env_template".to_owned(),
        format!("{}={}", INHERITED.0, INHERITED.1),
    ];
    assert_eq!(seen[0], expected, "bao agent");
    assert_eq!(seen[1], expected, "keyhole-agent");
    Ok(())
}

#[tokio::test]
async fn a_denied_function_fails_an_env_template_unless_it_is_not_fatal() -> anyhow::Result<()> {
    let (bao, token) = bao_with_secret("s3cret").await?;
    let dir = tempfile::tempdir()?;
    for fatal in [true, false] {
        let config = base_config(&bao, dir.path(), &token)?
            .exit_after_auth(true)
            .env_template("DB_PASSWORD", PASSWORD_TEMPLATE)
            .env_template_from(
                EnvTemplate::new("WHO", r#"{{ env "HOME" }}"#)
                    .function_denylist(&["env"])
                    .error_fatal(fatal),
            )
            .exec(Exec::new(&["/bin/true"]));
        let run = run_keyhole_agent(&config, dir.path(), &[]).await?;
        let (code, said) = if fatal {
            (1, "error calling env: function is disabled")
        } else {
            (0, "(error_fatal = false: the agent goes on without it)")
        };
        assert_eq!(run.status.code(), Some(code), "{}", run.stderr);
        assert!(
            run.stderr.contains("WHO"),
            "names the variable:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(said), "{said}:\n{}", run.stderr);
    }
    Ok(())
}

#[tokio::test]
async fn agent_exits_255_when_a_signal_kills_the_child() -> anyhow::Result<()> {
    let (bao, token) = bao_with_secret("s3cret").await?;
    let dir = tempfile::tempdir()?;
    let config = base_config(&bao, dir.path(), &token)?
        .env_template("DB_PASSWORD", PASSWORD_TEMPLATE)
        .exec(Exec::new(&["/bin/sh", "-c", "kill -KILL $$"]));
    for agent in AGENTS {
        let mut running = Running::start(agent, &config, dir.path()).await?;
        let status = running.exited().await?;
        assert_eq!(status.code(), Some(255), "{}", running.output());
    }
    Ok(())
}

#[tokio::test]
async fn secret_change_restarts_the_child_and_sigterm_stops_it_with_the_stop_signal()
-> anyhow::Result<()> {
    let (bao, token) = bao_with_secret("first").await?;
    let dir = tempfile::tempdir()?;
    let script = long_running_child(dir.path())?;
    for agent in AGENTS {
        bao.kv2_put("secret", "app/db", json!({ "password": "first" }))
            .await?;
        let log = dir.path().join(format!("{agent:?}.log"));
        let config = base_config(&bao, dir.path(), &token)?
            .env_template("DB_PASSWORD", PASSWORD_TEMPLATE)
            .exec(
                Exec::new(&[&script.display().to_string(), &log.display().to_string()])
                    .restart_stop_signal("SIGINT"),
            );
        let mut running = Running::start(agent, &config, dir.path()).await?;
        running.wait_for(&log, "start first\n").await?;

        bao.kv2_put("secret", "app/db", json!({ "password": "second" }))
            .await?;
        running
            .wait_for(&log, "start first\nstopped by INT\nstart second\n")
            .await?;

        running.signal(Signal::SIGTERM)?;
        let status = running.exited().await?;
        assert_eq!(status.code(), Some(0), "{}", running.output());
        assert_eq!(
            std::fs::read_to_string(&log)?,
            "start first\nstopped by INT\nstart second\nstopped by INT\n",
            "{agent:?}: SIGTERM to the agent stops the child with restart_stop_signal"
        );
    }
    Ok(())
}

#[tokio::test]
async fn never_keeps_the_child_running_when_a_secret_changes() -> anyhow::Result<()> {
    let (bao, token) = bao_with_secret("first").await?;
    let dir = tempfile::tempdir()?;
    let script = long_running_child(dir.path())?;
    for agent in AGENTS {
        bao.kv2_put("secret", "app/db", json!({ "password": "first" }))
            .await?;
        let log = dir.path().join(format!("{agent:?}.log"));
        let config = base_config(&bao, dir.path(), &token)?
            .env_template("DB_PASSWORD", PASSWORD_TEMPLATE)
            .exec(
                Exec::new(&[&script.display().to_string(), &log.display().to_string()])
                    .restart_on_secret_changes("never"),
            );
        let mut running = Running::start(agent, &config, dir.path()).await?;
        running.wait_for(&log, "start first\n").await?;

        bao.kv2_put("secret", "app/db", json!({ "password": "second" }))
            .await?;
        // Re-read every second; bao agent would restart two seconds after that.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            std::fs::read_to_string(&log)?,
            "start first\n",
            "{}",
            running.output()
        );

        running.signal(Signal::SIGTERM)?;
        let status = running.exited().await?;
        assert_eq!(status.code(), Some(0), "{}", running.output());
        assert_eq!(
            std::fs::read_to_string(&log)?,
            "start first\nstopped by TERM\n"
        );
    }
    Ok(())
}
