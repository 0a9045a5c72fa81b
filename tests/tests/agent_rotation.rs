//! keyhole-agent as a sidecar against a real OpenBao (and PostgreSQL): files
//! follow rotated secrets, leases are renewed, Vault outages leave the last
//! good content, and the agent recovers by itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use keyhole_agent::heartbeat;
use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, BaoOptions, HOUR, Postgres, Sink, Template,
    configure_database_engine, configure_jwt_auth, configure_pki, mint_sa_token,
    spawn_keyhole_agent,
};
use nix::sys::signal::Signal;
use serde_json::json;

/// A test's OpenBao, set up for jwt login by role `app` with policy `app`.
struct Setup {
    bao: Bao,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(options: BaoOptions) -> anyhow::Result<Self> {
        let bao = Bao::start_with(options).await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("jwt"),
            mint_sa_token("team", "app", "vault", HOUR),
        )?;
        let setup = Self { bao, dir };
        setup.seed("first").await?;
        Ok(setup)
    }

    /// Policy, jwt auth and the KV secret `secret/app/db` with `password`.
    async fn seed(&self, password: &str) -> anyhow::Result<()> {
        self.bao
            .put_policy(
                "app",
                r#"path "secret/data/app/*" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
path "pki/issue/app" { capabilities = ["update"] }"#,
            )
            .await?;
        configure_jwt_auth(&self.bao, "jwt", "app", &["app"], "vault").await?;
        self.put_password(password).await
    }

    async fn put_password(&self, password: &str) -> anyhow::Result<()> {
        self.bao
            .kv2_put("secret", "app/db", json!({ "password": password }))
            .await
            .map(drop)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A sidecar config: jwt login, a token sink, a readiness marker, a 1s
    /// static interval, and `templates` as (file name, contents).
    fn config(&self, templates: &[(&str, &str)]) -> AgentConfig {
        AgentConfig::new(self.bao.addr())
            .auto_auth(
                AutoAuth::jwt("app", self.path("jwt"))
                    .backoff(Duration::from_secs(1), Duration::from_secs(2))
                    .remove_jwt_after_reading(false)
                    .sink(Sink::file(self.path("token"))),
            )
            .static_secret_render_interval(Duration::from_secs(1))
            .ready_file(self.path("ready"))
            .templates(
                templates
                    .iter()
                    .map(|(name, contents)| Template::new(self.path(name), *contents)),
            )
    }
}

const PASSWORD: &str = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}";

/// Renders `database/creds/app` as `username password lease_id`.
const DB_CREDS: &str = "{{ with secret \"database/creds/app\" }}{{ .Data.username }} {{ .Data.password }} {{ .LeaseID }}{{ end }}";

/// A render of [`DB_CREDS`].
struct Creds {
    user: String,
    password: String,
    lease_id: String,
}

impl Creds {
    fn parse(text: &str) -> Self {
        let [user, password, lease_id] = text.split(' ').collect::<Vec<_>>()[..] else {
            panic!("unexpected render of database credentials");
        };
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            lease_id: lease_id.to_owned(),
        }
    }
}

impl Setup {
    /// A PostgreSQL behind the `database` engine, role `app` with these TTLs.
    async fn database(&self, default_ttl: &str, max_ttl: &str) -> anyhow::Result<Postgres> {
        let pg = Postgres::start().await?;
        configure_database_engine(&self.bao, &pg, "app", default_ttl, max_ttl).await?;
        Ok(pg)
    }
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".keyhole-tmp-"))
        .collect()
}

#[tokio::test]
async fn kv2_update_reaches_the_file_within_the_interval() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("db", PASSWORD)]), &[]).await?;
    let file = setup.path("db");
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "first")
        .await?;
    setup.put_password("second").await?;
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "second")
        .await?;
    let status = agent.stop().await?;
    assert!(status.success(), "SIGTERM ends the agent cleanly: {status}");
    assert!(temp_files(setup.dir.path()).is_empty());
    Ok(())
}

#[tokio::test]
async fn readiness_flips_only_after_every_template_rendered() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let later = "{{ with secret \"secret/data/app/later\" }}{{ .Data.data.v }}{{ end }}";
    let mut agent =
        spawn_keyhole_agent(&setup.config(&[("db", PASSWORD), ("later", later)]), &[]).await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| t == "first")
        .await?;
    assert!(
        !agent.probe().await?,
        "not ready while secret/app/later does not exist"
    );
    setup
        .bao
        .kv2_put("secret", "app/later", json!({ "v": "here" }))
        .await?;
    agent
        .wait_for_file(&setup.path("later"), Duration::from_secs(15), |t| {
            t == "here"
        })
        .await?;
    agent
        .wait_for_file(&setup.path("ready"), Duration::from_secs(5), |_| true)
        .await?;
    assert!(agent.probe().await?, "ready once every template rendered");
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn liveness_probe_passes_through_a_vault_outage_and_fails_for_a_wedged_agent()
-> anyhow::Result<()> {
    let mut setup = Setup::new(BaoOptions::default()).await?;
    let heartbeat = setup.path("heartbeat");
    let config = setup.config(&[("db", PASSWORD)]).heartbeat_file(&heartbeat);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| t == "first")
        .await?;
    assert!(agent.probe_live().await?, "live while rendering");

    // Vault goes away: every refresh (each second) fails and is retried with backoff,
    // and the heartbeat keeps beating.
    setup.bao.stop();
    let touched = || std::fs::metadata(&heartbeat).and_then(|m| m.modified());
    let before = touched()?;
    tokio::time::sleep(heartbeat::INTERVAL * 2 + Duration::from_secs(1)).await;
    assert!(
        touched()? > before,
        "the heartbeat goes on during the outage"
    );
    assert!(agent.probe_live().await?, "live during the outage");
    assert_eq!(agent.exit_status()?, None, "the agent keeps running");

    // Frozen, the agent beats no more: once its heartbeat is older than the limit (set
    // back here rather than waited for), the probe fails, and the kubelet would restart it.
    agent.signal(Signal::SIGSTOP)?;
    let stale = SystemTime::now() - heartbeat::STALE_AFTER - Duration::from_secs(1);
    std::fs::File::options()
        .append(true)
        .open(&heartbeat)?
        .set_modified(stale)?;
    assert!(
        !agent.probe_live().await?,
        "a stale heartbeat fails the probe"
    );

    // Thawed, it beats again within an interval.
    agent.signal(Signal::SIGCONT)?;
    let deadline = Instant::now() + heartbeat::INTERVAL + Duration::from_secs(2);
    while !agent.probe_live().await? {
        assert!(
            Instant::now() < deadline,
            "no new heartbeat:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn vault_outage_keeps_files_and_agent_recovers_after_empty_restart() -> anyhow::Result<()> {
    let mut setup = Setup::new(BaoOptions::default()).await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("db", PASSWORD)]), &[]).await?;
    let file = setup.path("db");
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "first")
        .await?;

    setup.bao.stop();
    // Several refresh intervals pass with Vault gone.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            std::fs::read_to_string(&file)?,
            "first",
            "the last good content stays"
        );
    }
    assert!(temp_files(setup.dir.path()).is_empty());

    // A dev server comes back empty: the agent's token is gone with it.
    setup.bao.restart_empty().await?;
    setup.seed("after-restart").await?;
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "after-restart")
        .await?;
    assert!(
        agent.log().contains("logging in again"),
        "it noticed the lost token:\n{}",
        agent.log()
    );
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn revoked_token_leads_to_a_new_login() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("db", PASSWORD)]), &[]).await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| t == "first")
        .await?;
    let first_token = std::fs::read_to_string(setup.path("token"))?;
    setup.bao.revoke_token(&first_token).await?;
    setup.put_password("second").await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| {
            t == "second"
        })
        .await?;
    let new_token = agent
        .wait_for_file(&setup.path("token"), Duration::from_secs(5), |t| {
            t != first_token
        })
        .await?;
    let (status, _) = setup
        .bao
        .call(
            reqwest::Method::GET,
            "auth/token/lookup-self",
            Some(&new_token),
            None,
        )
        .await?;
    assert!(status.is_success(), "the sink follows the new token");
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn failing_logins_back_off_instead_of_storming() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    // The role refuses this token's audience: every login fails.
    std::fs::write(
        setup.path("jwt"),
        mint_sa_token("team", "app", "not-vault", HOUR),
    )?;
    let agent = spawn_keyhole_agent(&setup.config(&[("db", PASSWORD)]), &[]).await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let logins = setup.bao.audit_request_count("auth/jwt/login")?;
    // Backoff from 1s, capped at 2s: about four attempts in six seconds.
    assert!(
        (2..=6).contains(&logins),
        "{logins} login attempts in 6s:\n{}",
        agent.log()
    );
    assert!(!setup.path("db").exists());
    let status = agent.stop().await?;
    assert!(status.success());
    Ok(())
}

#[tokio::test]
async fn database_lease_is_renewed_then_rotated_before_max_ttl() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let pg = setup.database("10s", "30s").await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("pg", DB_CREDS)]), &[]).await?;
    let file = setup.path("pg");
    let first = agent
        .wait_for_file(&file, Duration::from_secs(10), |t| !t.is_empty())
        .await?;
    let old = Creds::parse(&first);
    assert!(pg.can_login(&old.user, &old.password).await?);

    // Past the first 10s TTL: the lease was renewed, so it still lives.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let lease = setup.bao.lookup_lease(&old.lease_id).await?;
    assert!(
        lease["ttl"].as_u64().is_some_and(|ttl| ttl > 0),
        "the lease was renewed: {lease}\n{}",
        agent.log()
    );
    assert_eq!(std::fs::read_to_string(&file)?, first);

    // Near the 30s max TTL the agent fetches new credentials, before the old
    // ones expire.
    let second = agent
        .wait_for_file(&file, Duration::from_secs(25), |t| t != first)
        .await?;
    let new = Creds::parse(&second);
    assert_ne!(new.user, old.user);
    assert!(pg.can_login(&new.user, &new.password).await?);
    assert!(
        pg.can_login(&old.user, &old.password).await?,
        "the old credentials still worked when the new ones were written"
    );
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn revoked_lease_leads_to_a_refetch() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let pg = setup.database("6s", "1h").await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("pg", DB_CREDS)]), &[]).await?;
    let file = setup.path("pg");
    let first = agent
        .wait_for_file(&file, Duration::from_secs(10), |t| !t.is_empty())
        .await?;
    setup
        .bao
        .revoke_lease(&Creds::parse(&first).lease_id)
        .await?;
    // The renewal at about 4s fails on the revoked lease and new credentials
    // are fetched.
    let second = agent
        .wait_for_file(&file, Duration::from_secs(15), |t| t != first)
        .await?;
    let new = Creds::parse(&second);
    assert!(pg.can_login(&new.user, &new.password).await?);
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn pki_certificate_is_reissued_before_it_expires() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    configure_pki(&setup.bao, "pki", "app", "72h").await?;
    let cert = "{{ with secret \"pki/issue/app\" \"common_name=app.example.com\" \"ttl=8s\" }}{{ .Data.serial_number }}{{ end }}";
    let mut agent = spawn_keyhole_agent(&setup.config(&[("serial", cert)]), &[]).await?;
    let file = setup.path("serial");
    let first = agent
        .wait_for_file(&file, Duration::from_secs(10), |t| !t.is_empty())
        .await?;
    let issued = setup.bao.read(&format!("pki/cert/{first}")).await?;
    assert!(issued["data"]["certificate"].is_string());
    // Re-issued at about 85% of the 8s validity.
    let second = agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t != first)
        .await?;
    assert_ne!(second, first);
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn revoke_on_shutdown_revokes_the_token_and_leases() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let pg = setup.database("1h", "24h").await?;
    let config = setup.config(&[("pg", DB_CREDS)]).revoke_on_shutdown(true);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    let text = agent
        .wait_for_file(&setup.path("pg"), Duration::from_secs(10), |t| {
            !t.is_empty()
        })
        .await?;
    let creds = Creds::parse(&text);
    assert!(pg.can_login(&creds.user, &creds.password).await?);
    let token = std::fs::read_to_string(setup.path("token"))?;

    let (status, log) = agent.stop_with_log().await?;
    assert!(status.success(), "{status}; log:\n{log}");
    let (lookup, _) = setup
        .bao
        .call(
            reqwest::Method::GET,
            "auth/token/lookup-self",
            Some(&token),
            None,
        )
        .await?;
    assert_eq!(lookup.as_u16(), 403, "the token is revoked; log:\n{log}");
    assert!(
        !pg.can_login(&creds.user, &creds.password).await?,
        "the database credentials are revoked; log:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn revoke_grace_keeps_the_token_valid_while_the_app_stops() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let grace = Duration::from_secs(2);
    let config = setup
        .config(&[("db", PASSWORD)])
        .revoke_on_shutdown(true)
        .revoke_grace(grace);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| t == "first")
        .await?;
    let token = std::fs::read_to_string(setup.path("token"))?;
    let lookup = || async {
        let (status, _) = setup
            .bao
            .call(
                reqwest::Method::GET,
                "auth/token/lookup-self",
                Some(&token),
                None,
            )
            .await?;
        anyhow::Ok(status.as_u16())
    };

    let started = tokio::time::Instant::now();
    let (status, during) = tokio::join!(agent.stop(), async {
        tokio::time::sleep(grace / 2).await;
        lookup().await
    });
    assert!(status?.success());
    assert!(
        started.elapsed() >= grace,
        "stopped after {:?}",
        started.elapsed()
    );
    assert_eq!(during?, 200, "the token works during the grace");
    assert_eq!(lookup().await?, 403, "the token is revoked after it");
    Ok(())
}

#[tokio::test]
async fn failed_write_is_retried_on_the_next_cycle() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let mut agent = spawn_keyhole_agent(&setup.config(&[("db", PASSWORD)]), &[]).await?;
    let file = setup.path("db");
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "first")
        .await?;
    // A non-empty directory where the file was: the rename over it fails,
    // even for root.
    std::fs::remove_file(&file)?;
    std::fs::create_dir(&file)?;
    std::fs::write(file.join("blocker"), "x")?;
    setup.put_password("second").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !agent
        .log()
        .contains("rename temporary file over destination")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no write failure logged:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(agent.log().contains(&file.display().to_string()));
    std::fs::remove_dir_all(&file)?;
    // Nothing changes in Vault any more: the template is rendered again
    // because its last write failed.
    agent
        .wait_for_file(&file, Duration::from_secs(10), |t| t == "second")
        .await?;
    assert!(temp_files(setup.dir.path()).is_empty());
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn token_that_never_expires_is_used_without_logging_in_again() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    // The dev server's root token has no TTL: nothing to renew, no reason to log in again.
    let token_file = setup.path("root-token");
    std::fs::write(&token_file, setup.bao.root_token())?;
    let config = AgentConfig::new(setup.bao.addr())
        .auto_auth(AutoAuth::token_file(&token_file))
        .static_secret_render_interval(Duration::from_secs(1))
        .template(Template::new(setup.path("db"), PASSWORD));
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| t == "first")
        .await?;
    setup.put_password("second").await?;
    agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(10), |t| {
            t == "second"
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lookups = setup.bao.audit_request_count("auth/token/lookup-self")?;
    assert_eq!(
        lookups,
        1,
        "one token_file login, then none:\n{}",
        agent.log()
    );
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_template_wait_holds_a_change_back_for_its_min() -> anyhow::Result<()> {
    let setup = Setup::new(BaoOptions::default()).await?;
    let min = Duration::from_secs(4);
    let config = setup
        .config(&[("plain", PASSWORD)])
        .template(Template::new(setup.path("waited"), PASSWORD).wait(min, 3 * min));
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    for name in ["plain", "waited"] {
        agent
            .wait_for_file(&setup.path(name), Duration::from_secs(10), |t| t == "first")
            .await?;
    }

    setup.put_password("second").await?;
    agent
        .wait_for_file(&setup.path("plain"), Duration::from_secs(10), |t| {
            t == "second"
        })
        .await?;
    // Both templates saw the change in the same refresh.
    let seen = Instant::now();
    assert_eq!(std::fs::read_to_string(setup.path("waited"))?, "first");
    agent
        .wait_for_file(&setup.path("waited"), Duration::from_secs(30), |t| {
            t == "second"
        })
        .await?;
    // Less the second the plain file's poll may have been late by.
    assert!(
        seen.elapsed() >= min - Duration::from_secs(1),
        "written {:?} after the change; log:\n{}",
        seen.elapsed(),
        agent.log()
    );
    Ok(())
}
