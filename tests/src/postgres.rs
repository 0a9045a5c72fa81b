//! A throwaway PostgreSQL cluster on a loopback port, for the `database` secrets engine.

use std::fs::OpenOptions;
use std::hash::BuildHasher;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::tools::{Tool, require, run_checked};
use crate::{free_port, log_tail};

/// How long a fresh cluster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL server with its own data directory, stopped and removed on drop.
///
/// It listens on `127.0.0.1:<free port>` with password (SCRAM) authentication and one
/// superuser, [`Postgres::superuser`], whose password is [`Postgres::password`]. PostgreSQL
/// refuses to run as root, so under root the cluster belongs to the `postgres` system user
/// (created by Debian's `postgresql` package) and both `initdb` and the server run as it.
pub struct Postgres {
    dir: TempDir,
    port: u16,
    password: String,
    child: Option<Child>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The user the server runs as when the tests run as root.
struct RunAs {
    uid: u32,
    gid: u32,
}

impl Postgres {
    /// Creates a cluster with `initdb`, starts the server and waits until it accepts the
    /// superuser.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = require(Tool::Postgres)?;
        let run_as = run_as()?;
        let dir = tempfile::Builder::new().prefix("keyhole-pg-").tempdir()?;
        let password = format!("pw-{:016x}", std::hash::RandomState::new().hash_one(0u8));
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password)?;
        if let Some(user) = &run_as {
            for path in [dir.path(), &pwfile] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .with_context(|| format!("chown {} to postgres", path.display()))?;
            }
        }
        let data = dir.path().join("data");
        let mut initdb = command(&bin.join("initdb"), run_as.as_ref(), dir.path());
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run_checked(&mut initdb)?;
        std::fs::remove_file(&pwfile)?;

        let port = free_port()?;
        let log_path = dir.path().join("postgres.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        if let Some(user) = &run_as {
            std::os::unix::fs::chown(&log_path, Some(user.uid), Some(user.gid))?;
        }
        let mut server = command(&bin.join("postgres"), run_as.as_ref(), dir.path());
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = server.spawn().context("starting postgres")?;
        let mut pg = Self {
            dir,
            port,
            password,
            child: Some(child),
        };
        pg.wait_ready().await?;
        Ok(pg)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection URL in the form OpenBao's `database` engine takes, with its
    /// `{{username}}` and `{{password}}` placeholders.
    pub fn connection_url_template(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The server log so far, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.dir.path().join("postgres.log"), 64 * 1024)
    }

    /// Connects as `user` to database `postgres`; the connection runs on a spawned task.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let config = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=postgres \
             connect_timeout=10",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Whether `user` can log in with `password` and run a query.
    ///
    /// `Ok(false)` means PostgreSQL refused the credentials (wrong password, expired
    /// `VALID UNTIL`, or the role no longer exists); any other failure is an error.
    pub async fn can_login(&self, user: &str, password: &str) -> anyhow::Result<bool> {
        let result = match self.connect(user, password).await {
            Ok(client) => client.simple_query("SELECT 1").await.map(drop),
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => Ok(true),
            Err(err)
                if matches!(
                    err.code(),
                    Some(&SqlState::INVALID_PASSWORD)
                        | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(err).with_context(|| {
                format!(
                    "connecting to postgres as {user}; server log:\n{}",
                    self.log()
                )
            }),
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "postgres exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            if self.connect(SUPERUSER, &self.password).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres not ready after {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGINT is PostgreSQL's fast shutdown: backends exit and shared memory is released,
        // which a plain SIGKILL of the postmaster would leave behind.
        let signalled = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while signalled && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

const SUPERUSER: &str = "keyhole";

/// A command that runs as `run_as` when set, in `cwd` (which that user can enter).
fn command(program: &Path, run_as: Option<&RunAs>, cwd: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    command.current_dir(cwd).env("LC_ALL", "C").env("LANG", "C");
    if let Some(user) = run_as {
        // Dropping from root also clears supplementary groups (std calls setgroups).
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// `Some(postgres user)` when running as root, since initdb refuses root.
fn run_as() -> anyhow::Result<Option<RunAs>> {
    let euid = std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid();
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let user = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            ["postgres", _, uid, gid, ..] => Some(RunAs {
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
            }),
            _ => None,
        }
    });
    match user {
        Some(user) => Ok(Some(user)),
        None => bail!(
            "running as root, and PostgreSQL must not: no `postgres` system user to run it as; \
             install it with `{}`",
            Tool::Postgres.install_hint()
        ),
    }
}
