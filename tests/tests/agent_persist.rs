//! The persistent cache against a real OpenBao and PostgreSQL: one login
//! and one database lease per pod, however often its agent restarts, and in
//! the classic layout where a sidecar follows the init container. OpenBao's
//! audit log counts the logins and the credential reads.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, BaoOptions, HOUR, Postgres, Template, configure_database_engine,
    configure_jwt_auth, mint_sa_token, run_keyhole_agent, spawn_keyhole_agent,
};

/// How often the sidecar is killed and started again.
const RESTARTS: usize = 20;

/// Renders `database/creds/app` as `username password`.
const DB_CREDS: &str =
    "{{ with secret \"database/creds/app\" }}{{ .Data.username }} {{ .Data.password }}{{ end }}";

/// The state file keyhole-agent writes in the persist directory.
const STATE_FILE: &str = "keyhole-agent-state.json";

/// An OpenBao with an audit log, jwt login by role `app`, and a database
/// role `app` on a PostgreSQL.
struct Setup {
    bao: Bao,
    _pg: Postgres,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> anyhow::Result<Self> {
        let bao = Bao::start_with(BaoOptions {
            audit_log: true,
            ..BaoOptions::default()
        })
        .await?;
        bao.put_policy(
            "app",
            r#"path "database/creds/app" { capabilities = ["read"] }"#,
        )
        .await?;
        configure_jwt_auth(&bao, "jwt", "app", &["app"], "vault").await?;
        let pg = Postgres::start().await?;
        configure_database_engine(&bao, &pg, "app", "1h", "2h").await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("jwt"),
            mint_sa_token("team", "app", "vault", HOUR),
        )?;
        Ok(Self { bao, _pg: pg, dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A sidecar that renders the database credentials and keeps its state
    /// in `cache/`, with the pod's token file as its service account token.
    fn config(&self, keep_after_import: bool) -> AgentConfig {
        AgentConfig::new(self.bao.addr())
            .auto_auth(AutoAuth::jwt("app", self.path("jwt")).remove_jwt_after_reading(false))
            .ready_file(self.path("ready"))
            .template(Template::new(self.path("db"), DB_CREDS))
            .persist(self.path("cache"), self.path("jwt"), keep_after_import)
    }

    fn logins(&self) -> anyhow::Result<usize> {
        self.bao.audit_request_count("auth/jwt/login")
    }

    fn credential_reads(&self) -> anyhow::Result<usize> {
        self.bao.audit_request_count("database/creds/app")
    }
}

#[tokio::test]
async fn an_agent_killed_and_restarted_twenty_times_logs_in_and_leases_once() -> anyhow::Result<()>
{
    let setup = Setup::new().await?;
    let config = setup.config(true);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    let first = agent
        .wait_for_file(&setup.path("db"), Duration::from_secs(20), |t| {
            !t.is_empty()
        })
        .await?;
    agent
        .wait_for_file(&setup.path("ready"), Duration::from_secs(5), |_| true)
        .await?;
    let state = setup.path("cache").join(STATE_FILE);
    let mode = std::fs::metadata(&state)?.permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the state is the agent's alone");

    for round in 1..=RESTARTS {
        // SIGKILL, as an OOM kill or a crash: nothing is cleaned up.
        agent.kill().await?;
        std::fs::remove_file(setup.path("ready"))?;
        agent = spawn_keyhole_agent(&config, &[]).await?;
        agent
            .wait_for_file(&setup.path("ready"), Duration::from_secs(20), |_| true)
            .await?;
        let log = agent.log();
        assert!(
            log.contains("using the token of an earlier agent of this pod"),
            "restart {round}:\n{log}"
        );
        assert!(
            !log.contains("logged in to Vault"),
            "restart {round}:\n{log}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(setup.path("db"))?,
        first,
        "the same credentials"
    );
    assert_eq!(setup.logins()?, 1, "{}", agent.log());
    assert_eq!(setup.credential_reads()?, 1, "{}", agent.log());
    agent.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_sidecar_takes_over_the_init_containers_token_and_lease() -> anyhow::Result<()> {
    let setup = Setup::new().await?;
    // As vault-k8s writes it for both containers: the state is removed once
    // the sidecar has read it.
    let init = run_keyhole_agent(
        setup.config(false).exit_after_auth(true),
        setup.dir.path(),
        &[],
    )
    .await?;
    assert!(init.status.success(), "{}", init.stderr);
    let rendered = init.file("db")?;
    let state = setup.path("cache").join(STATE_FILE);
    assert!(state.exists(), "the init container leaves its state");
    std::fs::remove_file(setup.path("ready"))?;

    let mut sidecar = spawn_keyhole_agent(&setup.config(false), &[]).await?;
    sidecar
        .wait_for_file(&setup.path("ready"), Duration::from_secs(20), |_| true)
        .await?;
    assert_eq!(std::fs::read_to_string(setup.path("db"))?, rendered);
    assert_eq!(setup.logins()?, 1, "{}", sidecar.log());
    assert_eq!(setup.credential_reads()?, 1, "{}", sidecar.log());
    let log = sidecar.log();
    assert!(
        log.lines()
            .any(|l| l.contains("took over the leases of an earlier agent")
                && l.contains("leases=1")),
        "{log}"
    );
    assert!(
        !state.exists(),
        "without keep_after_import the state is removed once read"
    );
    sidecar.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_revoked_token_is_not_taken_over() -> anyhow::Result<()> {
    let setup = Setup::new().await?;
    let config = setup.config(true);
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    agent
        .wait_for_file(&setup.path("ready"), Duration::from_secs(20), |_| true)
        .await?;
    agent.kill().await?;
    let token = std::fs::read_to_string(setup.path("cache").join(STATE_FILE))?;
    let token: serde_json::Value = serde_json::from_str(&token)?;
    let token = token["token"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    setup.bao.revoke_token(&token).await?;

    std::fs::remove_file(setup.path("ready"))?;
    let mut agent = spawn_keyhole_agent(&config, &[]).await?;
    agent
        .wait_for_file(&setup.path("ready"), Duration::from_secs(20), |_| true)
        .await?;
    assert!(
        agent
            .log()
            .contains("the token of an earlier agent cannot be used, logging in"),
        "{}",
        agent.log()
    );
    assert_eq!(setup.logins()?, 2);
    // Its lease died with the token: the credentials are read anew.
    assert_eq!(setup.credential_reads()?, 2);
    agent.stop().await?;
    Ok(())
}
