//! Faults keyhole-agent survives as a sidecar, against a real OpenBao: Vault killed and
//! back (persistent, or an empty dev server), a slow, hung, resetting or unreachable
//! network, Vault down at start, a rotated service-account token, SIGKILL in the middle of
//! rotation, and files that cannot be written. Through all of them every file keeps its
//! last good content, byte for byte.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, BaoOptions, Fault, FaultProxy, HOUR, RunningAgent, SaClaims, Sink,
    SpawnOptions, Template, configure_jwt_auth, free_port, metric_value, mint_sa_token,
    run_keyhole_agent, scrape_metrics, spawn_keyhole_agent, spawn_keyhole_agent_with,
};
use reqwest::Method;
use serde_json::json;

/// The agent's login backoff in these tests (`min_backoff`, `max_backoff`).
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

const PASSWORD: &str = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}";
const ENV_FILE: &str = "{{ with secret \"secret/data/app/db\" }}export DB_PASSWORD=\"{{ .Data.data.password }}\"\n{{ end }}{{ with secret \"secret/data/app/api\" }}export API_KEY=\"{{ .Data.data.key }}\"\n{{ end }}";
const API_KEY: &str = "{{ with secret \"secret/data/app/api\" }}{{ .Data.data.key }}{{ end }}";

/// Three files from two secrets: what every outage test watches.
const TEMPLATES: [(&str, &str); 3] = [("db", PASSWORD), ("env", ENV_FILE), ("api", API_KEY)];

/// Policy `app`, jwt login by role `app`, and the secrets `app/db` (`password`) and
/// `app/api` (`key`).
async fn seed(bao: &Bao, password: &str) -> anyhow::Result<()> {
    bao.put_policy(
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    )
    .await?;
    configure_jwt_auth(bao, "jwt", "app", &["app"], "vault").await?;
    bao.kv2_put("secret", "app/api", json!({ "key": "api-key-1" }))
        .await?;
    put_password(bao, password).await
}

async fn put_password(bao: &Bao, password: &str) -> anyhow::Result<()> {
    bao.kv2_put("secret", "app/db", json!({ "password": password }))
        .await
        .map(drop)
}

/// A directory with a service-account token at `jwt`.
fn workdir() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("jwt"),
        mint_sa_token("team", "app", "vault", HOUR),
    )?;
    Ok(dir)
}

/// An init-mode config talking to `vault`: jwt login as `role` from `<dir>/jwt` with
/// `backoff` (min, max), `num_retries = 3`, and one template at `<out>/db`.
fn init_config(
    vault: &str,
    role: &str,
    backoff: (Duration, Duration),
    dir: &Path,
    out: &Path,
) -> AgentConfig {
    AgentConfig::new(vault)
        .num_retries(3)
        .exit_after_auth(true)
        .auto_auth(AutoAuth::jwt(role, dir.join("jwt")).backoff(backoff.0, backoff.1))
        .template(Template::new(out.join("db"), PASSWORD))
}

/// A sidecar config talking to `vault`: jwt login from `<dir>/jwt` with
/// [`MIN_BACKOFF`]..[`MAX_BACKOFF`], a token sink at `<dir>/token`, a 1s static interval,
/// `templates` as (file name in `dir`, contents), and a metrics listener when asked for.
fn sidecar_config(
    vault: &str,
    dir: &Path,
    templates: &[(&str, &str)],
    metrics: Option<SocketAddr>,
) -> AgentConfig {
    let config = AgentConfig::new(vault)
        .auto_auth(
            AutoAuth::jwt("app", dir.join("jwt"))
                .backoff(MIN_BACKOFF, MAX_BACKOFF)
                .remove_jwt_after_reading(false)
                .sink(Sink::file(dir.join("token"))),
        )
        .static_secret_render_interval(Duration::from_secs(1))
        .templates(
            templates
                .iter()
                .map(|(name, contents)| Template::new(dir.join(name), *contents)),
        );
    match metrics {
        Some(addr) => config.metrics_listen(addr),
        None => config,
    }
}

fn metrics_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// Every file's bytes, to compare against later.
fn snapshot(dir: &Path, names: &[&str]) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path)?;
            Ok((path, bytes))
        })
        .collect()
}

/// Polls every file for `period` and fails the moment one differs from its snapshot by a
/// single byte, or is gone.
async fn files_hold(expected: &[(PathBuf, Vec<u8>)], period: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + period;
    while Instant::now() < end {
        for (path, bytes) in expected {
            let now = std::fs::read(path)
                .map_err(|err| anyhow::anyhow!("{} is gone: {err}", path.display()))?;
            anyhow::ensure!(
                now == *bytes,
                "{} changed from {:?} to {:?}",
                path.display(),
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&now)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits until all of [`TEMPLATES`] show `password` (and the unchanged API key): one
/// render pass has written every file.
async fn wait_rendered(
    agent: &mut RunningAgent,
    dir: &Path,
    password: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let env = format!("export DB_PASSWORD=\"{password}\"\nexport API_KEY=\"api-key-1\"\n");
    agent
        .wait_for_file(&dir.join("db"), timeout, |t| t == password)
        .await?;
    agent
        .wait_for_file(&dir.join("env"), timeout, |t| t == env)
        .await?;
    agent
        .wait_for_file(&dir.join("api"), timeout, |t| t == "api-key-1")
        .await
        .map(drop)
}

/// Seeds an empty server with the password `after-restart` and returns how long the agent
/// took from then to render it (at most 20 s).
async fn reseed_and_wait(
    bao: &Bao,
    agent: &mut RunningAgent,
    dir: &Path,
) -> anyhow::Result<Duration> {
    let seeded = Instant::now();
    seed(bao, "after-restart").await?;
    wait_rendered(agent, dir, "after-restart", Duration::from_secs(20)).await?;
    Ok(seeded.elapsed())
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".keyhole-tmp-"))
        .collect()
}

/// How many login requests the audit log recorded with the service-account token `jwt`
/// (the audit device stores the HMAC of the `jwt` field; OpenBao computes it for us).
async fn logins_with(bao: &Bao, jwt: &str) -> anyhow::Result<usize> {
    let hashed = bao
        .write("sys/audit-hash/file", json!({ "input": jwt }))
        .await?;
    let hash = hashed["data"]["hash"]
        .as_str()
        .or_else(|| hashed["hash"].as_str())
        .ok_or_else(|| anyhow::anyhow!("sys/audit-hash returned no hash: {hashed}"))?
        .to_owned();
    Ok(bao
        .audit_entries()?
        .iter()
        .filter(|entry| entry["type"] == "request")
        .filter(|entry| entry["request"]["path"] == "auth/jwt/login")
        .filter(|entry| entry["request"]["data"]["jwt"] == hash.as_str())
        .count())
}

/// Whether `token` is a token Vault knows.
async fn token_is_valid(bao: &Bao, token: &str) -> anyhow::Result<bool> {
    let (status, _) = bao
        .call(Method::GET, "auth/token/lookup-self", Some(token), None)
        .await?;
    Ok(status.is_success())
}

/// Polls the agent's metrics until `series` reaches `at_least`.
async fn wait_for_metric(
    addr: SocketAddr,
    series: &str,
    at_least: f64,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + timeout;
    loop {
        let scrape = scrape_metrics(addr).await?;
        let value = metric_value(&scrape, series).unwrap_or(0.0);
        if value >= at_least {
            return Ok(value);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{series} is {value} after {timeout:?}, expected at least {at_least}:\n{scrape}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn persistent_vault_killed_and_restarted_keeps_the_token_and_every_file() -> anyhow::Result<()>
{
    let mut bao = Bao::start_persistent(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    let config = sidecar_config(bao.addr(), dir.path(), &TEMPLATES, None);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
    let before = snapshot(dir.path(), &["db", "env", "api"])?;
    let token = std::fs::read_to_string(dir.path().join("token"))?;
    assert_eq!(bao.audit_request_count("auth/jwt/login")?, 1);

    // SIGKILL: Vault is gone for several refresh intervals.
    bao.stop();
    files_hold(&before, Duration::from_secs(4)).await?;
    assert!(temp_files(dir.path()).is_empty());

    // Back with its storage, unsealed: the agent's token is still good.
    bao.restart().await?;
    put_password(&bao, "second").await?;
    wait_rendered(&mut agent, dir.path(), "second", Duration::from_secs(20)).await?;
    assert_eq!(
        bao.audit_request_count("auth/jwt/login")?,
        1,
        "the agent carried on without logging in again:\n{}",
        agent.log()
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("token"))?, token);
    assert!(token_is_valid(&bao, &token).await?);
    // The restart watch reads sys/health again on its own backoff, which may
    // come after the cache's retries have rendered.
    agent
        .wait_for_log(
            "Vault is back, as the same cluster",
            Duration::from_secs(30),
        )
        .await?;
    let log = agent.log();
    assert!(!log.contains("new cluster"), "{log}");
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn empty_dev_server_after_restart_leads_to_a_new_login_and_re_render() -> anyhow::Result<()> {
    let mut bao = Bao::start_with(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    let config = sidecar_config(bao.addr(), dir.path(), &TEMPLATES, None);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
    let before = snapshot(dir.path(), &["db", "env", "api"])?;
    let old_token = std::fs::read_to_string(dir.path().join("token"))?;

    bao.stop();
    files_hold(&before, Duration::from_secs(3)).await?;
    // Back, but empty: no token, no auth method, no secrets. The agent cannot log in
    // yet, and nothing it could fetch may reach the files.
    bao.restart_empty().await?;
    files_hold(&before, Duration::from_secs(3)).await?;
    assert!(temp_files(dir.path()).is_empty());

    let recovery = reseed_and_wait(&bao, &mut agent, dir.path()).await?;
    // The login retries at most MAX_BACKOFF apart; a render follows the login at once.
    assert!(
        recovery < Duration::from_secs(10),
        "recovered {recovery:?} after the server was seeded:\n{}",
        agent.log()
    );
    let new_token = agent
        .wait_for_file(&dir.path().join("token"), Duration::from_secs(5), |t| {
            t != old_token
        })
        .await?;
    assert!(token_is_valid(&bao, &new_token).await?);
    assert!(bao.audit_request_count("auth/jwt/login")? >= 1);
    assert!(agent.log().contains("logging in again"), "{}", agent.log());
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn vault_back_empty_is_noticed_before_anything_the_agent_holds_is_due() -> anyhow::Result<()>
{
    let mut bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    // No lease, and a static secret and token that are not due again for an hour: only
    // the watch on Vault's connection can tell the agent that Vault is a new one.
    let config = sidecar_config(bao.addr(), dir.path(), &TEMPLATES, None)
        .static_secret_render_interval(HOUR);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
    let old_token = std::fs::read_to_string(dir.path().join("token"))?;

    bao.restart_empty().await?;
    let recovery = reseed_and_wait(&bao, &mut agent, dir.path()).await?;
    // The watch's retries, the relogin spread and the login backoff, in seconds.
    assert!(
        recovery < Duration::from_secs(15),
        "recovered {recovery:?} after the server was seeded:\n{}",
        agent.log()
    );
    let log = agent.log();
    assert!(log.contains("Vault answers as a new cluster"), "{log}");
    assert!(log.contains("Vault no longer knows the token"), "{log}");
    let new_token = std::fs::read_to_string(dir.path().join("token"))?;
    assert_ne!(new_token, old_token);
    assert!(token_is_valid(&bao, &new_token).await?);
    agent.stop().await?;
    Ok(())
}

/// The TCP connections process `pid` holds open to `port` on this host right now.
fn connections_to(pid: u32, port: u16) -> anyhow::Result<usize> {
    let sockets: std::collections::BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))?;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let remote_port = remote
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            // 01: ESTABLISHED.
            if remote_port == Some(port) && *state == "01" && sockets.contains(*inode) {
                count += 1;
            }
        }
    }
    Ok(count)
}

#[tokio::test]
async fn disable_idle_connections_and_keep_alives_leave_no_connection_open_between_requests()
-> anyhow::Result<()> {
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let parts = ["auto-auth", "templating"];
    let mut agents = Vec::new();
    for (name, config) in [
        (
            "default",
            Box::new(|c: AgentConfig| c) as Box<dyn Fn(AgentConfig) -> AgentConfig>,
        ),
        (
            "disable_idle_connections",
            Box::new(move |c: AgentConfig| c.disable_idle_connections(&parts)),
        ),
        (
            "disable_keep_alives",
            Box::new(move |c: AgentConfig| c.disable_keep_alives(&parts)),
        ),
    ] {
        let dir = workdir()?;
        // The secrets are read every second, so requests keep coming.
        let mut agent = spawn_keyhole_agent(
            &config(sidecar_config(bao.addr(), dir.path(), &TEMPLATES, None)),
            &[],
        )
        .await?;
        wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
        agents.push((name, agent, dir));
    }

    // Ten looks over three seconds: how often each agent held no connection to Vault.
    let mut idle_looks = [0; 3];
    for _ in 0..10 {
        for (looks, (_, agent, _)) in idle_looks.iter_mut().zip(&agents) {
            let pid = agent.pid().context("the agent runs")?;
            if connections_to(pid, bao.port())? == 0 {
                *looks += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let [default, no_idle, no_keep_alive] = idle_looks;
    // The default agent keeps its pooled connection, and its watch on Vault's restarts.
    assert_eq!(default, 0, "{}", agents[0].1.log());
    // The others open a connection for each request, every second, and keep none.
    assert!(no_idle >= 8, "{no_idle} of 10:\n{}", agents[1].1.log());
    assert!(
        no_keep_alive >= 8,
        "{no_keep_alive} of 10:\n{}",
        agents[2].1.log()
    );

    // And they go on working: a change reaches every file.
    put_password(&bao, "second").await?;
    for (name, mut agent, dir) in agents {
        wait_rendered(&mut agent, dir.path(), "second", Duration::from_secs(15))
            .await
            .with_context(|| format!("{name}:\n{}", agent.log()))?;
        agent.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn slow_and_hung_vault_hits_the_client_timeout_and_the_agent_recovers() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let proxy = FaultProxy::start(bao.port()).await?;
    let dir = workdir()?;
    let metrics = metrics_addr()?;
    let config = sidecar_config(&proxy.url(), dir.path(), &TEMPLATES, Some(metrics));
    let db = dir.path().join("db");

    // Hung from the start: the login itself times out and is tried again.
    proxy.set(Fault::Stall);
    let mut agent = spawn_keyhole_agent(&config, &[("VAULT_CLIENT_TIMEOUT", "1s")]).await?;
    agent
        .wait_for_log("timed out (PUT auth/jwt/login)", Duration::from_secs(10))
        .await?;
    assert!(!db.exists());
    proxy.set(Fault::Pass);
    agent
        .wait_for_file(&db, Duration::from_secs(15), |t| t == "first")
        .await?;

    // Slow, but within the timeout: rotation goes on.
    proxy.set(Fault::Delay(Duration::from_millis(300)));
    put_password(&bao, "second").await?;
    wait_rendered(&mut agent, dir.path(), "second", Duration::from_secs(15)).await?;

    // Slower than the timeout, then hung: every request times out and is retried, and
    // the files keep their bytes.
    let before = snapshot(dir.path(), &["db", "env", "api"])?;
    let timeouts = "keyhole_agent_vault_errors_total{kind=\"timeout\"}";
    let earlier = metric_value(&scrape_metrics(metrics).await?, timeouts).unwrap_or(0.0);
    proxy.set(Fault::Delay(Duration::from_secs(3)));
    put_password(&bao, "third").await?;
    files_hold(&before, Duration::from_secs(3)).await?;
    proxy.set(Fault::Stall);
    files_hold(&before, Duration::from_secs(3)).await?;
    wait_for_metric(metrics, timeouts, earlier + 2.0, Duration::from_secs(10)).await?;
    assert!(
        agent.log().contains("timed out (GET secret/data/app/db)"),
        "{}",
        agent.log()
    );

    proxy.set(Fault::Pass);
    agent
        .wait_for_file(&db, Duration::from_secs(20), |t| t == "third")
        .await?;

    // Hung again: a request waiting on Vault does not hold up shutdown.
    let waiting = metric_value(&scrape_metrics(metrics).await?, timeouts).unwrap_or(0.0);
    proxy.set(Fault::Stall);
    wait_for_metric(metrics, timeouts, waiting + 1.0, Duration::from_secs(10)).await?;
    let stopping = Instant::now();
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        stopping.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn reset_and_refused_connections_keep_the_files_and_the_agent_recovers() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let proxy = FaultProxy::start(bao.port()).await?;
    let dir = workdir()?;
    let metrics = metrics_addr()?;
    let config = sidecar_config(&proxy.url(), dir.path(), &TEMPLATES, Some(metrics));
    let db = dir.path().join("db");
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
    let before = snapshot(dir.path(), &["db", "env", "api"])?;

    // Connections die mid-request, then nothing listens at all.
    proxy.set(Fault::Reset);
    put_password(&bao, "second").await?;
    files_hold(&before, Duration::from_secs(3)).await?;
    proxy.set(Fault::Refuse);
    files_hold(&before, Duration::from_secs(3)).await?;
    let scrape = scrape_metrics(metrics).await?;
    let request_errors = metric_value(
        &scrape,
        "keyhole_agent_vault_errors_total{kind=\"request\"}",
    )
    .unwrap_or(0.0);
    let connect_errors = metric_value(
        &scrape,
        "keyhole_agent_vault_errors_total{kind=\"connect\"}",
    )
    .unwrap_or(0.0);
    assert!(
        request_errors >= 1.0 && connect_errors >= 1.0,
        "resets and refusals are counted:\n{scrape}"
    );
    assert!(temp_files(dir.path()).is_empty());

    proxy.set(Fault::Pass);
    agent
        .wait_for_file(&db, Duration::from_secs(20), |t| t == "second")
        .await?;
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn sidecar_waits_for_vault_down_at_start_with_capped_backoff() -> anyhow::Result<()> {
    // Nothing behind the proxy yet: every login attempt is read and dropped.
    let proxy = FaultProxy::start_without_upstream().await?;
    let dir = workdir()?;
    let config = sidecar_config(&proxy.url(), dir.path(), &[("db", PASSWORD)], None);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    let window = Duration::from_secs(8);
    let started = Instant::now();
    while started.elapsed() < window {
        assert!(
            agent.exit_status()?.is_none(),
            "the agent gave up:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = proxy.requests("PUT /v1/auth/jwt/login");
    // The first attempt goes out at once; each later one waits between MIN_BACKOFF and
    // MAX_BACKOFF. Slack on both ends for a busy machine.
    let most = 1 + (window.as_secs_f64() / MIN_BACKOFF.as_secs_f64()) as usize;
    let least = (window.as_secs_f64() / MAX_BACKOFF.as_secs_f64()) as usize - 1;
    assert!(
        (least..=most).contains(&attempts.len()),
        "{} login attempts in {window:?}, expected {least}..={most}:\n{}",
        attempts.len(),
        agent.log()
    );
    for pair in attempts.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= MIN_BACKOFF.mul_f64(0.8) && gap <= MAX_BACKOFF + Duration::from_secs(3),
            "attempts {gap:?} apart, outside the {MIN_BACKOFF:?}..{MAX_BACKOFF:?} backoff"
        );
    }
    assert!(!dir.path().join("db").exists());

    // Vault comes up: the next attempt gets through and the file is rendered.
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    proxy.set_upstream(bao.port());
    agent
        .wait_for_file(&dir.path().join("db"), Duration::from_secs(15), |t| {
            t == "first"
        })
        .await?;
    assert!(
        agent.log().contains("login failed, retrying"),
        "{}",
        agent.log()
    );
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn init_mode_gives_up_after_num_retries_login_attempts() -> anyhow::Result<()> {
    let proxy = FaultProxy::start_without_upstream().await?;
    let dir = workdir()?;
    let out = dir.path().join("out");
    let config = init_config(
        &proxy.url(),
        "app",
        (Duration::from_millis(100), Duration::from_millis(200)),
        dir.path(),
        &out,
    );
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("PUT auth/jwt/login"),
        "the error names the request:\n{}",
        run.stderr
    );
    assert_eq!(
        proxy.requests("PUT /v1/auth/jwt/login").len(),
        4,
        "one attempt and num_retries = 3 retries:\n{}",
        run.stderr
    );
    assert!(run.files.is_empty(), "{:?}", run.files.keys());
    Ok(())
}

#[tokio::test]
async fn init_mode_stops_at_the_first_login_vault_refuses() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let proxy = FaultProxy::start(bao.port()).await?;
    let dir = workdir()?;
    let out = dir.path().join("out");
    // Retries would take minutes; a role that does not exist never starts working.
    let config = init_config(
        &proxy.url(),
        "no-such-role",
        (Duration::from_secs(60), Duration::from_secs(60)),
        dir.path(),
        &out,
    );
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("PUT auth/jwt/login") && run.stderr.contains("(HTTP 400)"),
        "the error names the request and Vault's answer:\n{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("PUT auth/jwt/login").count(),
        1,
        "the cause is printed once:\n{}",
        run.stderr
    );
    assert_eq!(
        proxy.requests("PUT /v1/auth/jwt/login").len(),
        1,
        "a refused login is not retried in init mode:\n{}",
        run.stderr
    );
    assert!(run.files.is_empty(), "{:?}", run.files.keys());
    Ok(())
}

#[tokio::test]
async fn rotated_service_account_token_is_used_at_the_next_login() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    seed(&bao, "first").await?;
    let dir = tempfile::tempdir()?;
    let jwt_path = dir.path().join("jwt");
    let mut claims = SaClaims::new("team", "app", "vault", HOUR);
    let old_jwt = claims.mint();
    std::fs::write(&jwt_path, &old_jwt)?;
    let config = sidecar_config(bao.addr(), dir.path(), &[("db", PASSWORD)], None);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    let db = dir.path().join("db");
    agent
        .wait_for_file(&db, Duration::from_secs(15), |t| t == "first")
        .await?;
    assert_eq!(logins_with(&bao, &old_jwt).await?, 1);

    // The kubelet projects a new token (new pod binding, jti and expiry), swapping the
    // file atomically.
    claims.pod = "app-1".to_owned();
    claims.ttl = 2 * HOUR;
    let new_jwt = claims.mint();
    let staged = dir.path().join("jwt.new");
    std::fs::write(&staged, &new_jwt)?;
    std::fs::rename(&staged, &jwt_path)?;
    // Then the agent's Vault token stops working.
    let old_token = std::fs::read_to_string(dir.path().join("token"))?;
    bao.revoke_token(&old_token).await?;
    put_password(&bao, "second").await?;

    agent
        .wait_for_file(&db, Duration::from_secs(15), |t| t == "second")
        .await?;
    assert_eq!(
        logins_with(&bao, &new_jwt).await?,
        1,
        "the new login sent the new token:\n{}",
        agent.log()
    );
    assert_eq!(
        logins_with(&bao, &old_jwt).await?,
        1,
        "the old token was not sent again"
    );
    let new_token = std::fs::read_to_string(dir.path().join("token"))?;
    assert_ne!(new_token, old_token);
    assert!(token_is_valid(&bao, &new_token).await?);
    agent.stop().await?;
    Ok(())
}

/// A render of one file in the SIGKILL test: its name, a version and a payload that
/// depends on both, on one line. Long enough that a torn write would show.
fn rotation_line(name: &str, version: u64) -> String {
    let unit = format!("{name}{version:08}|");
    let payload: String = unit.repeat(8 * 1024 / unit.len());
    format!("{name} {version:08} {payload}\n")
}

/// Checks a read of file `name` against the renders written so far: it must be exactly
/// one of them.
fn check_render(name: &str, bytes: &[u8], latest: u64) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut fields = text.splitn(3, ' ');
    let (Some(file), Some(version)) = (fields.next(), fields.next()) else {
        return Err(format!("{} bytes, not a render", bytes.len()));
    };
    let version: u64 = version
        .parse()
        .map_err(|_| format!("{} bytes, no version", bytes.len()))?;
    if file != name || version > latest || text != rotation_line(name, version) {
        return Err(format!(
            "{} bytes claiming {file} version {version}, not a render of it",
            bytes.len()
        ));
    }
    Ok(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_never_leaves_a_partial_or_empty_file() -> anyhow::Result<()> {
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    const KILLS: usize = 200;
    let started = Instant::now();
    let bao = Arc::new(Bao::start().await?);
    seed(&bao, "unused").await?;
    let latest: Arc<BTreeMap<&str, AtomicU64>> =
        Arc::new(NAMES.iter().map(|n| (*n, AtomicU64::new(0))).collect());
    for name in NAMES {
        bao.kv2_put(
            "secret",
            &format!("app/{name}"),
            json!({ "line": rotation_line(name, 0) }),
        )
        .await?;
    }
    let dir = workdir()?;
    let templates: Vec<(String, String)> = NAMES
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                format!("{{{{ with secret \"secret/data/app/{name}\" }}}}{{{{ .Data.data.line }}}}{{{{ end }}}}"),
            )
        })
        .collect();
    let templates: Vec<(&str, &str)> = templates
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let config = sidecar_config(bao.addr(), dir.path(), &templates, None)
        .static_secret_render_interval(Duration::from_millis(100));
    let done = Arc::new(AtomicBool::new(false));

    // The secrets rotate as fast as Vault takes writes.
    let writer = {
        let (bao, latest, done) = (Arc::clone(&bao), Arc::clone(&latest), Arc::clone(&done));
        tokio::spawn(async move {
            let mut version = 0;
            while !done.load(Ordering::Relaxed) {
                version += 1;
                for name in NAMES {
                    // Published before the write, so a reader never sees a version it
                    // does not know about yet.
                    latest[name].store(version, Ordering::SeqCst);
                    bao.kv2_put(
                        "secret",
                        &format!("app/{name}"),
                        json!({ "line": rotation_line(name, version) }),
                    )
                    .await?;
                }
            }
            anyhow::Ok(version)
        })
    };

    // A reader polls every file and checks each read is a whole render.
    let violations = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (dir, latest, done, violations) = (
            dir.path().to_owned(),
            Arc::clone(&latest),
            Arc::clone(&done),
            Arc::clone(&violations),
        );
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut seen: BTreeMap<&str, std::collections::BTreeSet<u64>> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                for name in NAMES {
                    let limit = latest[name].load(Ordering::SeqCst);
                    match std::fs::read(dir.join(name)) {
                        Ok(bytes) => {
                            reads += 1;
                            match check_render(name, &bytes, limit) {
                                Ok(version) => {
                                    seen.entry(name).or_default().insert(version);
                                }
                                Err(why) => violations
                                    .lock()
                                    .expect("violations")
                                    .push(format!("{name}: {why}")),
                            }
                        }
                        Err(_) if !seen.contains_key(name) => {}
                        Err(err) => violations
                            .lock()
                            .expect("violations")
                            .push(format!("{name}: gone after it existed: {err}")),
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (reads, seen)
        })
    };

    let mut rng = RandomState::new();
    for kill in 0..KILLS {
        let agent = spawn_keyhole_agent(&config, &[("VAULT_LOG_LEVEL", "error")]).await?;
        // Anywhere from before the login to several renders in.
        let delay = rng.hash_one(kill) % 300;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        agent.kill().await?;
        if kill % 50 == 0 {
            rng = RandomState::new();
        }
    }

    // One last agent cleans up what the killed ones left and renders versions newer than
    // any of them could have seen.
    let floor: BTreeMap<&str, u64> = NAMES
        .iter()
        .map(|name| (*name, latest[name].load(Ordering::SeqCst)))
        .collect();
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    for name in NAMES {
        agent
            .wait_for_file(&dir.path().join(name), Duration::from_secs(15), |t| {
                check_render(name, t.as_bytes(), u64::MAX).is_ok_and(|v| v > floor[name])
            })
            .await?;
    }
    done.store(true, Ordering::Relaxed);
    let versions = writer.await??;
    let (reads, seen) = reader.join().expect("the reader thread");
    agent.stop().await?;

    let violations = violations.lock().expect("violations");
    assert!(
        violations.is_empty(),
        "{} bad reads out of {reads}, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    let rendered: usize = seen.values().map(|v| v.len()).sum();
    assert!(
        rendered >= 4 * NAMES.len(),
        "the killed agents rendered only {rendered} versions (of {versions} written)"
    );
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    eprintln!(
        "{KILLS} kills in {:?}: {reads} reads, {rendered} versions seen of {versions} written",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn write_failures_keep_the_old_file_are_named_counted_and_retried() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    let metrics = metrics_addr()?;
    let config = sidecar_config(bao.addr(), dir.path(), &TEMPLATES, Some(metrics));
    let options = SpawnOptions {
        ignore_sigxfsz: true,
    };
    let mut agent = spawn_keyhole_agent_with(&config, &[], &options).await?;
    let db = dir.path().join("db");
    wait_rendered(&mut agent, dir.path(), "first", Duration::from_secs(15)).await?;
    let errors = format!(
        "keyhole_agent_render_errors_total{{destination=\"{}\",kind=\"write\"}}",
        db.display()
    );
    let renders = format!(
        "keyhole_agent_renders_total{{destination=\"{}\"}}",
        db.display()
    );

    // The volume refuses writes, as a full one would: the old file stays as it was.
    let before = snapshot(dir.path(), &["db"])?;
    agent.limit_file_size(Some(0)).await?;
    put_password(&bao, "second").await?;
    let named = format!("template {}: ", db.display());
    agent.wait_for_log(&named, Duration::from_secs(10)).await?;
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains(&named) && l.contains("File too large")),
        "the error names the file and the reason:\n{}",
        agent.log()
    );
    wait_for_metric(metrics, &errors, 1.0, Duration::from_secs(5)).await?;
    files_hold(&before, Duration::from_secs(2)).await?;
    assert!(temp_files(dir.path()).is_empty());
    let rendered = metric_value(&scrape_metrics(metrics).await?, &renders).unwrap_or(0.0);

    // Room again: nothing changed in Vault, but the failed file is written on the next
    // cycle.
    agent.limit_file_size(None).await?;
    agent
        .wait_for_file(&db, Duration::from_secs(10), |t| t == "second")
        .await?;
    wait_for_metric(metrics, &renders, rendered + 1.0, Duration::from_secs(5)).await?;

    // The rename fails: a non-empty directory took the file's place.
    let failed = metric_value(&scrape_metrics(metrics).await?, &errors).unwrap_or(0.0);
    std::fs::remove_file(&db)?;
    std::fs::create_dir(&db)?;
    std::fs::write(db.join("blocker"), "x")?;
    put_password(&bao, "third").await?;
    wait_for_metric(metrics, &errors, failed + 1.0, Duration::from_secs(10)).await?;
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains(&format!("template {}:", db.display()))
                && l.contains("rename temporary file over destination")),
        "{}",
        agent.log()
    );
    std::fs::remove_dir_all(&db)?;
    agent
        .wait_for_file(&db, Duration::from_secs(10), |t| t == "third")
        .await?;
    assert!(temp_files(dir.path()).is_empty());
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn token_sink_that_cannot_be_written_is_retried_while_rendering_goes_on() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    let config = sidecar_config(bao.addr(), dir.path(), &[("db", PASSWORD)], None);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    let db = dir.path().join("db");
    agent
        .wait_for_file(&db, Duration::from_secs(15), |t| t == "first")
        .await?;

    // The sink cannot be replaced (a non-empty directory took its place) when the
    // agent must log in again.
    let sink = dir.path().join("token");
    let old_token = std::fs::read_to_string(&sink)?;
    std::fs::remove_file(&sink)?;
    std::fs::create_dir(&sink)?;
    std::fs::write(sink.join("blocker"), "x")?;
    bao.revoke_token(&old_token).await?;
    put_password(&bao, "second").await?;
    agent
        .wait_for_log("writing the token failed", Duration::from_secs(15))
        .await?;
    assert!(
        agent
            .log()
            .lines()
            .any(|l| l.contains("writing the token failed")
                && l.contains(&format!("{}: rename", sink.display()))),
        "the error names the sink:\n{}",
        agent.log()
    );
    // The new token works for rendering all the same.
    agent
        .wait_for_file(&db, Duration::from_secs(15), |t| t == "second")
        .await?;
    assert!(agent.exit_status()?.is_none(), "{}", agent.log());

    std::fs::remove_dir_all(&sink)?;
    let new_token = agent
        .wait_for_file(&sink, Duration::from_secs(20), |t| !t.is_empty())
        .await?;
    assert_ne!(new_token, old_token);
    assert!(token_is_valid(&bao, &new_token).await?);
    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn init_mode_fails_when_the_token_sink_cannot_be_written() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    seed(&bao, "first").await?;
    let dir = workdir()?;
    let sink = dir.path().join("token");
    std::fs::create_dir(&sink)?;
    std::fs::write(sink.join("blocker"), "x")?;
    let config =
        sidecar_config(bao.addr(), dir.path(), &[("db", PASSWORD)], None).exit_after_auth(true);
    let run = run_keyhole_agent(&config, dir.path(), &[]).await?;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("writing the token")
            && run.stderr.contains(&format!("{}: rename", sink.display())),
        "the error names the sink:\n{}",
        run.stderr
    );
    Ok(())
}
