//! The persistent cache, `cache { persist "kubernetes" { path = DIR } }`:
//! the agent's token and the leased secrets its templates use, kept in a
//! file so that the next agent process of the pod takes them over instead
//! of logging in and leasing anew. That next process is the classic sidecar
//! after the init container, or an agent container the kubelet restarted
//! after a crash or an OOM kill.
//!
//! As in Vault Agent: a state found at start is read, then removed unless
//! `keep_after_import` is set; an agent that found none, or keeps it, writes
//! its own from then on. A state that cannot be used is set aside with a
//! warning, or stops the agent with `exit_on_err`. The token is checked
//! with Vault (`lookup-self`) before it is used, and the leases are only
//! taken over with it, since they end with the token that obtained them.
//!
//! Vault Agent writes an encrypted BoltDB file that holds its own key; a key
//! stored beside the data protects nothing the file's mode does not. keyhole
//! writes JSON with mode 0600, and what protects it is the memory volume
//! only the agent's containers mount. The file is keyhole's own: a keyhole
//! agent and a Vault Agent do not read each other's.
//!
//! A state names what it belongs to: Vault's address and namespace, the
//! auth method, and the service account that the pod's token file names
//! (`service_account_token_file`, which Vault Agent reads for the same
//! check). A state written for anything else is set aside.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::config::{self, DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE, Persist};
use crate::redact::ShownPath;
use crate::template::Request;
use crate::vault::{Secret, Token};
use crate::write;

/// The state's file in the `persist` directory.
pub const FILE_NAME: &str = "keyhole-agent-state.json";

/// The file's format; a state of another version is set aside.
const VERSION: u32 = 1;

/// The largest state read back, so that a damaged file cannot make the
/// agent allocate without bound. A pod's templates use at most a few
/// hundred leases of a few KiB each.
const MAX_STATE_BYTES: u64 = 16 * 1024 * 1024;

/// The file mode: readable by the agent's user alone.
const MODE: u32 = 0o600;

/// What one agent hands to the next.
#[derive(Serialize, Deserialize)]
pub struct State {
    version: u32,
    owner: String,
    /// The agent's token.
    pub token: StoredToken,
    /// The leased secrets its templates used.
    pub leases: Vec<StoredLease>,
}

/// The agent's token, as the next agent takes it over.
#[derive(Serialize, Deserialize)]
pub struct StoredToken {
    /// The token.
    pub token: Zeroizing<String>,
    /// The TTL its login granted, in seconds, which renewals ask for.
    pub ttl: u64,
}

/// A leased secret a template used.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredLease {
    /// The template's request.
    pub request: Request,
    /// How the request is shown in logs.
    pub shown: ShownPath,
    /// Vault's response.
    pub secret: Secret,
    /// When the lease ends, in Unix seconds.
    pub expires_at: u64,
}

/// Where the state lives, whose it is, and whether the agent writes it.
#[derive(Debug)]
pub struct Store {
    file: PathBuf,
    owner: String,
    keep_after_import: bool,
    exit_on_err: bool,
    /// Cleared when a state was imported and removed: from then on the
    /// agent writes none, as Vault Agent does.
    writing: bool,
}

impl Store {
    /// The store of `persist`, for the agent that logs in with `method` to
    /// `vault`. Fails when the service account token cannot be read, as in
    /// Vault Agent.
    pub fn open(
        persist: &Persist,
        vault: &config::Vault,
        method: &config::Method,
    ) -> anyhow::Result<Self> {
        let sa_file = persist
            .service_account_token_file
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE));
        let jwt = Zeroizing::new(std::fs::read_to_string(sa_file).with_context(|| {
            format!(
                "cache.persist: reading the service account token {}",
                sa_file.display()
            )
        })?);
        let subject = subject(&jwt).with_context(|| {
            format!(
                "cache.persist: the service account token {} is not a JWT with a subject",
                sa_file.display()
            )
        })?;
        Ok(Self {
            file: persist.path.join(FILE_NAME),
            owner: owner(vault, method, &subject),
            keep_after_import: persist.keep_after_import,
            exit_on_err: persist.exit_on_err,
            writing: true,
        })
    }

    /// The state file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Reads the state an earlier agent left; `None` when there is none or
    /// it cannot be used, which is an error with `exit_on_err`. The file is
    /// removed once read unless `keep_after_import` is set.
    pub fn load(&mut self) -> anyhow::Result<Option<State>> {
        let state = match self.read() {
            Ok(None) => return Ok(None),
            Ok(Some(state)) => Some(state),
            Err(err) if self.exit_on_err => {
                return Err(err.context(format!(
                    "cache.persist: {}: exit_on_err is set",
                    self.file.display()
                )));
            }
            Err(err) => {
                warn!(
                    file = %self.file.display(),
                    "setting the persistent cache aside: {err:#}"
                );
                self.remove();
                return Ok(None);
            }
        };
        if !self.keep_after_import {
            self.remove();
            self.writing = false;
        }
        Ok(state)
    }

    fn read(&self) -> anyhow::Result<Option<State>> {
        let file = match std::fs::File::open(&self.file) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context("reading it"),
        };
        let mut text = Zeroizing::new(Vec::new());
        file.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut text)
            .context("reading it")?;
        if text.len() as u64 > MAX_STATE_BYTES {
            bail!("it is larger than {MAX_STATE_BYTES} bytes");
        }
        // serde_json's messages can quote a value, which may be a secret:
        // only the place is shown.
        let state: State = serde_json::from_slice(&text).map_err(|err| {
            anyhow::anyhow!(
                "it is not a keyhole state (line {}, column {})",
                err.line(),
                err.column()
            )
        })?;
        if state.version != VERSION {
            bail!("it has version {}, not {VERSION}", state.version);
        }
        if state.owner != self.owner {
            bail!("it belongs to another Vault, auth method or service account");
        }
        Ok(Some(state))
    }

    /// Writes `token`, whose login granted `ttl`, and `leases` for the next
    /// agent, unless this agent imported a state and removed it.
    pub fn save(
        &self,
        token: &Token,
        ttl: Duration,
        leases: Vec<StoredLease>,
    ) -> anyhow::Result<()> {
        if !self.writing {
            return Ok(());
        }
        let state = State {
            version: VERSION,
            owner: self.owner.clone(),
            token: StoredToken {
                token: Zeroizing::new(token.expose_secret().to_owned()),
                ttl: ttl.as_secs(),
            },
            leases,
        };
        let text = Zeroizing::new(serde_json::to_vec(&state).context("encoding the state")?);
        write::replace(&self.file, &text, MODE, true)
            .with_context(|| format!("writing {}", self.file.display()))?;
        Ok(())
    }

    /// Removes the state, e.g. once its token is revoked.
    pub fn remove(&self) {
        match std::fs::remove_file(&self.file) {
            Ok(()) => info!(file = %self.file.display(), "removed the persistent cache"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => warn!(
                file = %self.file.display(),
                "removing the persistent cache failed: {err}"
            ),
        }
    }
}

/// Unix seconds `after` from now.
pub fn expires_at(after: Duration) -> u64 {
    (SystemTime::now() + after)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// What is left until `expires_at` (Unix seconds); zero once it passed.
pub fn remaining(expires_at: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(expires_at.saturating_sub(now))
}

/// The `sub` claim of a JWT, read without checking its signature: Vault
/// checks the token at login; here it only names the service account.
fn subject(jwt: &str) -> Option<String> {
    let payload = jwt.trim().split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        sub: String,
    }
    serde_json::from_slice::<Claims>(&claims)
        .ok()
        .map(|c| c.sub)
}

/// A digest of what a state belongs to. The method's `Debug` text holds its
/// role and file paths, never a credential; init container and sidecar run
/// the same binary, so it reads the same for both, and a text that changes
/// with an upgrade costs one login.
fn owner(vault: &config::Vault, method: &config::Method, subject: &str) -> String {
    let text = format!(
        "{:?}\n{:?}\n{}\n{:?}\n{:?}\n{subject}",
        vault.address, vault.namespace, method.mount_path, method.namespace, method.kind
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    data_encoding::HEXLOWER.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A JWT whose payload names `sub`; header and signature are not read.
    fn jwt(sub: &str) -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"{sub}","aud":["vault"]}}"#));
        format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln\n")
    }

    struct Fixture {
        dir: tempfile::TempDir,
        vault: config::Vault,
        method: config::Method,
    }

    impl Fixture {
        fn new() -> Self {
            let config = config::AgentConfig::from_hcl(
                r#"
                vault { address = "http://127.0.0.1:8200" }
                auto_auth {
                  method "kubernetes" {
                    config { role = "app" }
                  }
                }
                template {
                  destination = "/tmp/out"
                  contents    = "x"
                }
                "#,
            )
            .expect("config parses");
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("sa"), jwt("system:serviceaccount:ns:app"))
                .expect("write the SA token");
            Self {
                dir,
                vault: config.vault,
                method: config.auto_auth.expect("auto_auth").method,
            }
        }

        fn persist(&self, keep_after_import: bool, exit_on_err: bool) -> Persist {
            Persist {
                path: self.dir.path().join("cache"),
                keep_after_import,
                exit_on_err,
                service_account_token_file: Some(self.dir.path().join("sa")),
            }
        }

        fn store(&self, keep_after_import: bool, exit_on_err: bool) -> Store {
            Store::open(
                &self.persist(keep_after_import, exit_on_err),
                &self.vault,
                &self.method,
            )
            .expect("store opens")
        }
    }

    fn lease() -> StoredLease {
        let secret: Secret = serde_json::from_str(
            r#"{"lease_id":"database/creds/app/abc","lease_duration":3600,"renewable":true,
                "data":{"username":"v-app","password":"pw"}}"#,
        )
        .expect("secret parses");
        StoredLease {
            request: Request::Read {
                path: "database/creds/app".to_owned(),
            },
            shown: ShownPath::literal(&Request::Read {
                path: "database/creds/app".to_owned(),
            }),
            secret,
            expires_at: expires_at(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn a_saved_state_reads_back_with_mode_0600_and_is_removed_once_imported() {
        let fixture = Fixture::new();
        let writer = fixture.store(false, false);
        writer
            .save(
                &Token::new("s.token".to_owned()),
                Duration::from_secs(600),
                vec![lease()],
            )
            .expect("saved");
        let mode = std::fs::metadata(writer.file())
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut reader = fixture.store(false, false);
        let state = reader.load().expect("loads").expect("a state");
        assert_eq!(state.token.token.as_str(), "s.token");
        assert_eq!(state.token.ttl, 600);
        assert_eq!(state.leases.len(), 1);
        assert_eq!(state.leases[0].secret.data["password"], "pw");
        assert!(
            !reader.file().exists(),
            "imported without keep_after_import: removed"
        );

        // Having removed it, this agent writes no state of its own.
        reader
            .save(
                &Token::new("s.token".to_owned()),
                Duration::from_secs(600),
                vec![],
            )
            .expect("save is a no-op");
        assert!(!reader.file().exists());
    }

    #[test]
    fn keep_after_import_keeps_the_state_and_writes_it_on() {
        let fixture = Fixture::new();
        fixture
            .store(true, false)
            .save(
                &Token::new("s.one".to_owned()),
                Duration::from_secs(60),
                vec![],
            )
            .expect("saved");
        let mut reader = fixture.store(true, false);
        assert!(reader.load().expect("loads").is_some());
        assert!(reader.file().exists());
        reader
            .save(
                &Token::new("s.two".to_owned()),
                Duration::from_secs(60),
                vec![],
            )
            .expect("saved");
        let state = fixture
            .store(true, false)
            .load()
            .expect("loads")
            .expect("a state");
        assert_eq!(state.token.token.as_str(), "s.two");
    }

    #[test]
    fn a_state_of_another_service_account_is_set_aside_or_fatal_with_exit_on_err() {
        let fixture = Fixture::new();
        fixture
            .store(true, false)
            .save(
                &Token::new("s.token".to_owned()),
                Duration::from_secs(60),
                vec![],
            )
            .expect("saved");
        std::fs::write(
            fixture.dir.path().join("sa"),
            jwt("system:serviceaccount:ns:other"),
        )
        .expect("write the SA token");

        let mut fatal = fixture.store(true, true);
        let err = fatal.load().err().expect("exit_on_err makes it an error");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cache.persist: {}: exit_on_err is set: it belongs to another Vault, auth method or service account",
                fatal.file().display()
            )
        );

        let mut lenient = fixture.store(true, false);
        assert!(lenient.load().expect("set aside").is_none());
        assert!(!lenient.file().exists(), "a state set aside is removed");
    }

    #[test]
    fn a_damaged_state_is_set_aside_without_showing_its_text() {
        let fixture = Fixture::new();
        let store = fixture.store(true, true);
        std::fs::create_dir_all(fixture.dir.path().join("cache")).expect("dir");
        std::fs::write(
            store.file(),
            r#"{"version":1,"owner":"x","token":"s.secret""#,
        )
        .expect("write");
        let err = fixture.store(true, true).load().err().expect("an error");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cache.persist: {}: exit_on_err is set: it is not a keyhole state (line 1, column 43)",
                store.file().display()
            )
        );
    }

    #[test]
    fn an_unreadable_service_account_token_names_the_file() {
        let fixture = Fixture::new();
        let mut persist = fixture.persist(false, false);
        persist.service_account_token_file = Some(fixture.dir.path().join("missing"));
        let err = Store::open(&persist, &fixture.vault, &fixture.method).expect_err("fails");
        assert_eq!(
            err.to_string(),
            format!(
                "cache.persist: reading the service account token {}",
                fixture.dir.path().join("missing").display()
            )
        );
    }
}
