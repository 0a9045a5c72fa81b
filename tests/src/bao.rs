//! A real OpenBao server on a loopback port, with admin calls made as root: a dev server
//! that keeps everything in memory, or a persistent one with its data on disk.

use std::fs::OpenOptions;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::tls::BaoTls;
use crate::tools::{Tool, require};
use crate::{free_port_pair, install_crypto_provider, log_tail};

/// How long a server may take to answer `sys/health` after it is spawned, or to become
/// the active node after it is unsealed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server keeps its data.
#[derive(Debug)]
enum Storage {
    /// `bao server -dev`: in memory, gone when the process is.
    Dev,
    /// Integrated (raft) storage in the server's directory; `unseal_key` is known once
    /// the server is initialised.
    Persistent { unseal_key: Option<String> },
}

/// Choices made when the server starts.
#[derive(Clone, Debug, Default)]
pub struct BaoOptions {
    /// Enable a `file` audit device writing to [`Bao::audit_log_path`], so tests and
    /// benchmarks can count the requests a client made. OpenBao only accepts audit devices
    /// from its config file, so this is a start-time option.
    pub audit_log: bool,
    /// Add a TLS listener and one that requires client certificates, with a new CA
    /// (see [`Bao::tls`]). The API address stays plain HTTP.
    pub tls: bool,
}

/// An OpenBao server owned by one test.
///
/// It listens on `127.0.0.1:<free port>`, keeps its log in a temporary directory (see
/// [`Bao::log`]), and is killed and reaped on drop. Either a dev server ([`Bao::start`]),
/// which keeps everything in memory and has a random root token, or a persistent one
/// ([`Bao::start_persistent`]). Both have KV v2 mounted at `secret/`.
pub struct Bao {
    bin: PathBuf,
    options: BaoOptions,
    storage: Storage,
    dir: TempDir,
    port: u16,
    addr: String,
    tls: Option<BaoTls>,
    root_token: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Bao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bao")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Bao {
    /// Starts a dev server with default options and waits until it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(BaoOptions::default()).await
    }

    /// Starts a dev server with `options` and waits until it is ready.
    pub async fn start_with(options: BaoOptions) -> anyhow::Result<Self> {
        let mut bao = Self::new(options, Storage::Dev)?;
        bao.spawn().await?;
        Ok(bao)
    }

    /// Starts a server that keeps its data on disk (integrated raft storage, a plain-HTTP
    /// listener), initialises it with a single unseal key, unseals it and mounts KV v2 at
    /// `secret/` as a dev server has. It survives [`Bao::stop`] and [`Bao::restart`] with
    /// its mounts, tokens and leases; the root token is the one initialisation returned.
    pub async fn start_persistent(options: BaoOptions) -> anyhow::Result<Self> {
        let mut bao = Self::new(options, Storage::Persistent { unseal_key: None })?;
        bao.spawn().await?;
        bao.enable_secrets("secret", "kv", json!({ "version": "2" }))
            .await?;
        Ok(bao)
    }

    fn new(options: BaoOptions, storage: Storage) -> anyhow::Result<Self> {
        install_crypto_provider();
        let bin = require(Tool::Bao)?;
        let dir = tempfile::Builder::new().prefix("keyhole-bao-").tempdir()?;
        let port = free_port_pair()?;
        let tls = options
            .tls
            .then(|| BaoTls::generate(dir.path()))
            .transpose()?;
        let state = RandomState::new();
        let root_token = format!("root-{:016x}{:016x}", state.hash_one(1), state.hash_one(2));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            bin,
            options,
            storage,
            dir,
            port,
            addr: format!("http://127.0.0.1:{port}"),
            tls,
            root_token,
            child: None,
            http,
        })
    }

    /// The server's address, e.g. `http://127.0.0.1:38211` (what `VAULT_ADDR` takes).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The TLS listeners and the files a client needs for them; fails if the server was
    /// started without [`BaoOptions::tls`]. They stay the same across restarts.
    pub fn tls(&self) -> anyhow::Result<&BaoTls> {
        self.tls
            .as_ref()
            .context("this Bao was started without BaoOptions { tls: true, .. }")
    }

    /// The loopback port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token: random per dev server, the one initialisation returned for a
    /// persistent one.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The server's combined stdout and stderr so far, for failure messages.
    pub fn log(&self) -> String {
        log_tail(&self.log_path(), 64 * 1024)
    }

    /// Where the `file` audit device writes when [`BaoOptions::audit_log`] is set.
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// Every entry of the audit log so far (both `request` and `response` entries).
    ///
    /// Fails if the server was started without [`BaoOptions::audit_log`].
    pub fn audit_entries(&self) -> anyhow::Result<Vec<Value>> {
        if !self.options.audit_log {
            bail!("this Bao was started without BaoOptions {{ audit_log: true, .. }}");
        }
        let path = self.audit_log_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        text.lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("audit line {line:?}")))
            .collect()
    }

    /// How many requests the audit log recorded for paths starting with `path_prefix`
    /// (`""` counts every request, including the harness's own admin calls).
    pub fn audit_request_count(&self, path_prefix: &str) -> anyhow::Result<usize> {
        Ok(self
            .audit_entries()?
            .iter()
            .filter(|entry| entry["type"] == "request")
            .filter(|entry| {
                entry["request"]["path"]
                    .as_str()
                    .is_some_and(|path| path.starts_with(path_prefix))
            })
            .count())
    }

    /// Kills the server with SIGKILL, as a crash or an evicted pod would: Vault vanishes
    /// until [`Bao::restart`] or [`Bao::restart_empty`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the dev server (if running) and starts a fresh, empty one on the same port
    /// with the same root token: every mount, policy, token and lease is gone.
    pub async fn restart_empty(&mut self) -> anyhow::Result<()> {
        if let Storage::Persistent { .. } = self.storage {
            bail!("a persistent server restarts with its data: use Bao::restart");
        }
        self.stop();
        self.spawn().await
    }

    /// Stops the persistent server (if running), starts it again on the same port and
    /// storage, and unseals it: everything it held is back, tokens and leases included.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Storage::Dev = self.storage {
            bail!("a dev server keeps nothing: use Bao::restart_empty");
        }
        self.stop();
        self.spawn().await
    }

    /// Calls the HTTP API at `/v1/<path>` and returns the status and the JSON body
    /// (`Value::Null` when the body is empty). Does not fail on error statuses.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "{method} {url}: no answer from OpenBao; server log:\n{}",
                self.log()
            )
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: body"))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {url} returned {status} with a non-JSON body"))?
        };
        Ok((status, value))
    }

    /// Writes `body` to `path` as root and returns the response body (`Null` on 204).
    pub async fn write(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.admin(Method::POST, path, Some(&body)).await
    }

    /// Reads `path` as root and returns the whole response envelope.
    pub async fn read(&self, path: &str) -> anyhow::Result<Value> {
        self.admin(Method::GET, path, None).await
    }

    /// Lists the keys under `path` as root.
    pub async fn list(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let body = self.admin(Method::from_bytes(b"LIST")?, path, None).await?;
        serde_json::from_value(body["data"]["keys"].clone())
            .with_context(|| format!("LIST {path}: no data.keys in {body}"))
    }

    /// Deletes `path` as root.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.admin(Method::DELETE, path, None).await.map(drop)
    }

    /// Mounts a secrets engine of type `kind` at `path`; `options` is the mount's
    /// `options` map (e.g. `json!({"version": "2"})`, or `Value::Null` for none).
    pub async fn enable_secrets(
        &self,
        path: &str,
        kind: &str,
        options: Value,
    ) -> anyhow::Result<()> {
        let mut body = json!({ "type": kind });
        if !options.is_null() {
            body["options"] = options;
        }
        self.write(&format!("sys/mounts/{path}"), body)
            .await
            .map(drop)
    }

    /// Enables an auth method of type `kind` at `auth/<path>`.
    pub async fn enable_auth(&self, path: &str, kind: &str) -> anyhow::Result<()> {
        self.write(&format!("sys/auth/{path}"), json!({ "type": kind }))
            .await
            .map(drop)
    }

    /// Creates or replaces the ACL policy `name`.
    pub async fn put_policy(&self, name: &str, hcl: &str) -> anyhow::Result<()> {
        self.write(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        )
        .await
        .map(drop)
    }

    /// The app secret most agent tests render: `data` at KV v2 `secret/app/db`, and the
    /// `app` policy that reads `secret/data/app/*`.
    pub async fn put_app_secret(&self, data: Value) -> anyhow::Result<()> {
        self.put_policy(
            "app",
            r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
        )
        .await?;
        self.kv2_put("secret", "app/db", data).await.map(drop)
    }

    /// Writes a new version of a KV v2 secret (`<mount>/data/<path>`); returns its metadata
    /// (`version`, `created_time`, ...).
    pub async fn kv2_put(&self, mount: &str, path: &str, data: Value) -> anyhow::Result<Value> {
        let body = self
            .write(&format!("{mount}/data/{path}"), json!({ "data": data }))
            .await?;
        Ok(body["data"].clone())
    }

    /// Writes a KV v1 secret at `<mount>/<path>`.
    pub async fn kv1_put(&self, mount: &str, path: &str, data: Value) -> anyhow::Result<()> {
        self.write(&format!("{mount}/{path}"), data).await.map(drop)
    }

    /// Creates a token with `policies` and `ttl` (e.g. `"1h"`) and returns it.
    pub async fn create_token(&self, policies: &[&str], ttl: &str) -> anyhow::Result<String> {
        let body = self
            .write(
                "auth/token/create",
                json!({ "policies": policies, "ttl": ttl }),
            )
            .await?;
        client_token(&body, "auth/token/create")
    }

    /// Logs in at `auth/<mount>/login` with `body` (no token sent) and returns the `auth`
    /// block (`client_token`, `policies`, `lease_duration`, ...).
    pub async fn login(&self, mount: &str, body: Value) -> anyhow::Result<Value> {
        let path = format!("auth/{mount}/login");
        let (status, reply) = self.call(Method::POST, &path, None, Some(&body)).await?;
        if !status.is_success() {
            bail!("POST /v1/{path} returned {status}: {}", errors(&reply));
        }
        Ok(reply["auth"].clone())
    }

    /// Revokes `token` and all its children.
    pub async fn revoke_token(&self, token: &str) -> anyhow::Result<()> {
        self.write("auth/token/revoke", json!({ "token": token }))
            .await
            .map(drop)
    }

    /// Revokes the lease `lease_id` (the secret it backs stops working).
    pub async fn revoke_lease(&self, lease_id: &str) -> anyhow::Result<()> {
        self.write("sys/leases/revoke", json!({ "lease_id": lease_id }))
            .await
            .map(drop)
    }

    /// Looks up the lease `lease_id` (`ttl`, `expire_time`, `renewable`, ...).
    pub async fn lookup_lease(&self, lease_id: &str) -> anyhow::Result<Value> {
        let body = self
            .write("sys/leases/lookup", json!({ "lease_id": lease_id }))
            .await?;
        Ok(body["data"].clone())
    }

    /// Writes `body` to `path` as root with the response wrapped for `ttl` (e.g. `"5m"`),
    /// and returns the wrapping token.
    pub async fn write_wrapped(
        &self,
        path: &str,
        body: Value,
        ttl: &str,
    ) -> anyhow::Result<String> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let response = self
            .http
            .post(&url)
            .header("X-Vault-Token", &self.root_token)
            .header("X-Vault-Wrap-TTL", ttl)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}: no answer from OpenBao"))?;
        let status = response.status();
        let reply: Value = response
            .json()
            .await
            .with_context(|| format!("POST {url}: body"))?;
        if !status.is_success() {
            bail!("POST /v1/{path} returned {status}: {}", errors(&reply));
        }
        reply["wrap_info"]["token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST /v1/{path} returned no wrapping token: {reply}"))
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, reply) = self
            .call(method.clone(), path, Some(&self.root_token), body)
            .await?;
        if !status.is_success() {
            bail!("{method} /v1/{path} returned {status}: {}", errors(&reply));
        }
        Ok(reply)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("bao.log")
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = Command::new(&self.bin);
        command
            .arg("server")
            // The CLI keeps a token in ~/.vault-token; keep that per server.
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        match self.storage {
            Storage::Dev => {
                command
                    .arg("-dev")
                    .arg(format!("-dev-root-token-id={}", self.root_token))
                    .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
                if self.options.audit_log || self.tls.is_some() {
                    command.arg(format!("-config={}", self.write_config("")?.display()));
                }
            }
            Storage::Persistent { .. } => {
                let server = self.persistent_config()?;
                command.arg(format!("-config={}", self.write_config(&server)?.display()));
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        if let Storage::Persistent { .. } = self.storage {
            self.wait_for(|_| true).await?;
            self.init_and_unseal().await?;
        }
        self.wait_for(|status| status == StatusCode::OK).await
    }

    /// The server's config file: `server` plus the audit device and the TLS listeners
    /// when asked for.
    fn write_config(&self, server: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("server.hcl");
        let mut config = server.to_owned();
        if self.options.audit_log {
            config.push_str(&format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                self.audit_log_path().display().to_string()
            ));
        }
        if let Some(tls) = &self.tls {
            config.push_str(&tls.listeners());
        }
        std::fs::write(&path, config)?;
        Ok(path)
    }

    /// Single-node raft storage in the server's directory and a plain-HTTP listener.
    /// OpenBao has no `file` storage; raft is what it offers for data on disk.
    fn persistent_config(&self) -> anyhow::Result<String> {
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let (api, cluster) = (self.port, self.port + 1);
        Ok(format!(
            "storage \"raft\" {{\n  path = {:?}\n  node_id = \"keyhole-test\"\n  \
             # Short raft timeouts: one node elects itself in well under a second.\n  \
             performance_multiplier = 1\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
             cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
             api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
            data.display().to_string()
        ))
    }

    /// Initialises a new persistent server (one key share) and unseals it.
    async fn init_and_unseal(&mut self) -> anyhow::Result<()> {
        let unseal_key = match &self.storage {
            Storage::Persistent {
                unseal_key: Some(key),
            } => key.clone(),
            _ => {
                let body = json!({ "secret_shares": 1, "secret_threshold": 1 });
                let (status, reply) = self
                    .call(Method::PUT, "sys/init", None, Some(&body))
                    .await?;
                if !status.is_success() {
                    bail!("PUT /v1/sys/init returned {status}: {}", errors(&reply));
                }
                let key = reply["keys_base64"][0]
                    .as_str()
                    .context("sys/init returned no keys_base64")?
                    .to_owned();
                self.root_token = reply["root_token"]
                    .as_str()
                    .context("sys/init returned no root_token")?
                    .to_owned();
                self.storage = Storage::Persistent {
                    unseal_key: Some(key.clone()),
                };
                key
            }
        };
        let body = json!({ "key": unseal_key });
        let (status, reply) = self
            .call(Method::PUT, "sys/unseal", None, Some(&body))
            .await?;
        if !status.is_success() || reply["sealed"] != json!(false) {
            bail!("PUT /v1/sys/unseal returned {status}: {reply}");
        }
        Ok(())
    }

    /// Polls `sys/health` until its status passes `ready` (any answer at all shows the
    /// listener is up; 200 means unsealed and active).
    async fn wait_for(&mut self, ready: impl Fn(StatusCode) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/v1/sys/health", self.addr);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "bao server exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            if let Ok(response) = self.http.get(&url).send().await
                && ready(response.status())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "bao server not ready after {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Vault's `errors` array (or the whole body) for an error message.
pub(crate) fn errors(reply: &Value) -> String {
    match reply.get("errors") {
        Some(errors) => errors.to_string(),
        None => reply.to_string(),
    }
}

fn client_token(body: &Value, path: &str) -> anyhow::Result<String> {
    body["auth"]["client_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{path}: no auth.client_token in the reply"))
}
