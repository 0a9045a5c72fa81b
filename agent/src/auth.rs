//! Logging in to Vault with the `auto_auth` method, retrying with backoff,
//! and writing the token to the file sinks.
//!
//! Credential files are re-read on every login: the kubelet rotates projected
//! service-account tokens. A file the config asks to delete after reading
//! (`remove_jwt_after_reading`, `remove_secret_id_file_after_reading`) is
//! remembered once read, so later logins still work until the file comes
//! back with a fresh credential, as in Vault Agent.
//!
//! The `cert` method logs in with a TLS client certificate. When its config
//! names certificate files, it logs in through a client of its own built
//! from them, kept for later logins unless `reload` asks to read the files
//! again each time (as Vault Agent does).
//!
//! Failures are logged with their reason, never with the JWT, secret id,
//! private key or token.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use backon::Retryable;
use serde_json::Map;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::backoff;
use crate::config::{self, Choice, MethodKind};
use crate::sink::{self, FileSink};
use crate::vault::{self, Auth, Client, Token, WrapInfo};

/// Errors logging in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A credential file could not be read.
    #[error("auto_auth method {method:?}: cannot read {key} {}: {source}", path.display())]
    ReadCredential {
        /// The method type, e.g. `kubernetes`.
        method: &'static str,
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A credential file holds nothing but whitespace.
    #[error("auto_auth method {method:?}: {key} {} is empty", path.display())]
    EmptyCredential {
        /// The method type.
        method: &'static str,
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate file of the `cert` method could not be used.
    #[error("auto_auth method \"cert\": cannot use {key} {}: {reason}", path.display())]
    CertFile {
        /// The config key naming the file, e.g. `client_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// A response-wrapped secret id could not be used.
    #[error("auto_auth method \"approle\": the wrapped secret id in {path}: {reason}")]
    Unwrap {
        /// The secret id file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// Vault refused the login or could not be reached.
    #[error("auto_auth method {method:?}: {source}")]
    Vault {
        /// The method type.
        method: &'static str,
        /// What went wrong.
        source: vault::Error,
    },
    /// The token could not be written to a file sink.
    #[error("auto_auth sink: {0}")]
    Sink(#[from] sink::Error),
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether trying the login again may succeed. A credential file may
    /// appear or change, and an unreachable or failing Vault may come back;
    /// Vault refusing the login (a bad role, audience or credential) stays
    /// refused until someone changes Vault or the pod.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Vault { source, .. } => source.is_retryable(),
            Self::ReadCredential { .. }
            | Self::EmptyCredential { .. }
            | Self::CertFile { .. }
            | Self::Unwrap { .. }
            | Self::Sink(_) => true,
        }
    }

    /// A short label for metrics: `credential`, `sink`, or the Vault error's
    /// kind such as `permission_denied`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ReadCredential { .. }
            | Self::EmptyCredential { .. }
            | Self::CertFile { .. }
            | Self::Unwrap { .. } => "credential",
            Self::Vault { source, .. } => source.kind(),
            Self::Sink(_) => "sink",
        }
    }
}

/// Logs in with one `auto_auth` method and keeps what later logins need.
///
/// Its `Debug` leaves out the remembered credential.
pub struct Authenticator {
    method: config::Method,
    sinks: Vec<FileSink>,
    /// The last credential read from a file that is deleted after reading.
    remembered: Mutex<Option<Zeroizing<String>>>,
    /// The `cert` method's own client, once built from its files.
    cert_client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("method", &self.method)
            .field("sinks", &self.sinks)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The mount path of the auth method, e.g. `auth/kubernetes`.
    pub fn mount_path(&self) -> &str {
        &self.method.mount_path
    }

    /// An authenticator for the `auto_auth` stanza.
    pub fn new(auto_auth: &config::AutoAuth) -> Self {
        Self {
            method: auto_auth.method.clone(),
            sinks: auto_auth.sinks.iter().cloned().map(FileSink::new).collect(),
            remembered: Mutex::new(None),
            cert_client: Mutex::new(None),
        }
    }

    /// Logs in as [`Authenticator::login_with_retries`] does, then writes the
    /// token to every sink. A sink that cannot be written is an error, but
    /// the client keeps the new token.
    pub async fn authenticate(&self, client: &Client, max_retries: Option<u32>) -> Result<Auth> {
        let auth = self.login_with_retries(client, max_retries).await?;
        self.write_sinks(client, &auth.token).await?;
        Ok(auth)
    }

    /// Logs in, retrying failures with the [`backoff`] policy between the
    /// method's `min_backoff` and `max_backoff`. Then makes the
    /// new token the client's; the sinks are left to the caller.
    ///
    /// `max_retries` bounds the attempts after the first (init mode with
    /// `exit_on_retry_failure` passes `vault.num_retries`); with a bound, a
    /// refusal that no retry can change ends the attempts at once, since the
    /// kubelet restarting the container is the better retry. `None` retries
    /// every failure until it succeeds, as Vault Agent does. With the
    /// method's `exit_on_err` the first failure is final.
    pub async fn login_with_retries(
        &self,
        client: &Client,
        max_retries: Option<u32>,
    ) -> Result<Auth> {
        let auth = self.retrying(max_retries, || self.login(client)).await?;
        info!(
            method = method_name(&self.method.kind),
            lease_duration = ?auth.lease_duration,
            renewable = auth.renewable,
            "logged in to Vault"
        );
        // The accessor can look up, renew and revoke the token: useful when
        // debugging, not something every log reader should hold.
        debug!(accessor = %auth.accessor, "Vault token accessor");
        client.set_token(auth.token.clone());
        Ok(auth)
    }

    /// Logs in with the response wrapped for `ttl` (the method's
    /// `wrap_ttl`), retrying as [`Authenticator::login_with_retries`] does.
    /// The client's token is left as it is: the agent never sees the new
    /// one.
    pub async fn login_wrapped_with_retries(
        &self,
        client: &Client,
        ttl: Duration,
        max_retries: Option<u32>,
    ) -> Result<WrapInfo> {
        let info = self
            .retrying(max_retries, || self.login_wrapped(client, ttl))
            .await?;
        info!(
            method = method_name(&self.method.kind),
            wrap_ttl = ?Duration::from_secs(info.ttl),
            "logged in to Vault with the response wrapped; the agent keeps no token"
        );
        debug!(accessor = %info.accessor, "wrapping token accessor");
        Ok(info)
    }

    /// Writes the `wrap_info` of a wrapped login to every file sink (the
    /// config allows exactly one), encrypted where the sink says so.
    pub fn write_wrapped_sinks(&self, info: &WrapInfo) -> Result<()> {
        for sink in &self.sinks {
            sink.write_wrapped(info)?;
        }
        Ok(())
    }

    /// Runs `attempt` until it succeeds, retrying failures with the
    /// [`backoff`] policy between the method's `min_backoff` and
    /// `max_backoff`, as [`Authenticator::login_with_retries`] describes.
    async fn retrying<T, F: Future<Output = Result<T>>>(
        &self,
        max_retries: Option<u32>,
        attempt: impl FnMut() -> F,
    ) -> Result<T> {
        let retries = if self.method.exit_on_err {
            Some(0)
        } else {
            max_retries
        };
        let backoff =
            backoff::Policy::new(self.method.min_backoff, self.method.max_backoff).retries(retries);
        attempt
            .retry(backoff)
            .when(|err: &Error| retries.is_none() || err.is_retryable())
            .notify(|err: &Error, delay: Duration| {
                warn!(
                    kind = err.kind(),
                    retry_in = ?delay,
                    "login failed, retrying: {err}"
                );
            })
            .await
    }

    /// Writes `token` to every file sink with the sink's mode, wrapped
    /// through `client` or encrypted where the sink says so.
    pub async fn write_sinks(&self, client: &Client, token: &Token) -> Result<()> {
        for sink in &self.sinks {
            sink.write(client, token).await?;
        }
        Ok(())
    }

    /// Logs in once: reads the credential files and sends them to Vault.
    /// The client's own token is left as it is.
    pub async fn login(&self, client: &Client) -> Result<Auth> {
        match self.login_request(client).await? {
            LoginRequest::Write {
                client,
                path,
                credentials,
            } => client.login(&path, credentials).await,
            LoginRequest::LookupSelf { client, token } => {
                client.lookup_self().await.map(|info| Auth {
                    token,
                    accessor: info.accessor,
                    lease_duration: info.ttl,
                    renewable: info.renewable,
                    policies: info.policies,
                })
            }
        }
        .map_err(|source| self.vault_error(source))
    }

    /// Logs in once as [`Authenticator::login`] does, with the response
    /// wrapped for `ttl`. For `token_file`, whose login is the token's
    /// `lookup-self`, that answer is wrapped: its `data.id` is the token.
    /// `bao agent` asks for the same, but its lookup goes out unwrapped, so
    /// it retries for ever ("authentication returned nil wrap info").
    async fn login_wrapped(&self, client: &Client, ttl: Duration) -> Result<WrapInfo> {
        match self.login_request(client).await? {
            LoginRequest::Write {
                client,
                path,
                credentials,
            } => client.login_wrapped(&path, credentials, ttl).await,
            LoginRequest::LookupSelf { client, .. } => client.lookup_self_wrapped(ttl).await,
        }
        .map_err(|source| self.vault_error(source))
    }

    fn vault_error(&self, source: vault::Error) -> Error {
        Error::Vault {
            method: method_name(&self.method.kind),
            source,
        }
    }

    /// Reads the credential files into the request a login sends.
    async fn login_request(&self, client: &Client) -> Result<LoginRequest> {
        let name = method_name(&self.method.kind);
        let client = match &self.method.namespace {
            Some(namespace) => client
                .with_namespace(Some(namespace))
                .map_err(|source| self.vault_error(source))?,
            None => client.clone(),
        };
        let login_path = format!("{}/login", self.method.mount_path.trim_matches('/'));
        let mut credentials = Map::new();
        match &self.method.kind {
            MethodKind::Kubernetes { role, token_path } => {
                let jwt = read_credential(name, "token_path", token_path).await?;
                credentials.insert("role".to_owned(), role.as_str().into());
                credentials.insert("jwt".to_owned(), jwt.as_str().into());
            }
            MethodKind::Jwt {
                role,
                path,
                remove_jwt_after_reading,
            } => {
                let jwt = self
                    .read_removable(name, "path", path, *remove_jwt_after_reading, None)
                    .await?;
                credentials.insert("role".to_owned(), role.as_str().into());
                credentials.insert("jwt".to_owned(), jwt.as_str().into());
            }
            MethodKind::AppRole {
                role_id_file_path,
                secret_id_file_path,
                remove_secret_id_file_after_reading,
                secret_id_response_wrapping_path,
            } => {
                let role_id = read_credential(name, "role_id_file_path", role_id_file_path).await?;
                credentials.insert("role_id".to_owned(), role_id.as_str().into());
                if let Some(path) = secret_id_file_path {
                    let unwrap = secret_id_response_wrapping_path
                        .as_deref()
                        .map(|creation_path| (&client, creation_path));
                    let secret_id = self
                        .read_removable(
                            name,
                            "secret_id_file_path",
                            path,
                            *remove_secret_id_file_after_reading,
                            unwrap,
                        )
                        .await?;
                    credentials.insert("secret_id".to_owned(), secret_id.as_str().into());
                }
            }
            MethodKind::Cert { name, .. } => {
                if let Some(name) = name {
                    credentials.insert("name".to_owned(), name.as_str().into());
                }
                return Ok(LoginRequest::Write {
                    client: self.cert_client(&client)?,
                    path: login_path,
                    credentials,
                });
            }
            MethodKind::TokenFile { token_file_path } => {
                let token = read_credential(name, "token_file_path", token_file_path).await?;
                let token = Token::new(token.as_str().to_owned());
                return Ok(LoginRequest::LookupSelf {
                    client: client.with_token(token.clone()),
                    token,
                });
            }
        }
        Ok(LoginRequest::Write {
            client,
            path: login_path,
            credentials,
        })
    }

    /// The client the `cert` method logs in through: `client` itself when
    /// the method names no certificate files, else one built from them,
    /// anew on every login with `reload`. A file that cannot be used is
    /// an error that a later login may not have, once the file is there.
    fn cert_client(&self, client: &Client) -> Result<Client> {
        let MethodKind::Cert {
            ca_cert,
            client_cert,
            client_key,
            reload,
            ..
        } = &self.method.kind
        else {
            return Ok(client.clone());
        };
        let identity = client_cert.as_deref().zip(client_key.as_deref());
        if ca_cert.is_none() && identity.is_none() {
            return Ok(client.clone());
        }
        let mut cached = self
            .cert_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cert_client) = cached.as_ref().filter(|_| !reload) {
            return Ok(cert_client.clone());
        }
        let cert_client = client
            .with_login_tls(ca_cert.as_deref(), identity)
            .map_err(|err| match err {
                vault::Error::TlsFile { key, path, reason } => {
                    Error::CertFile { key, path, reason }
                }
                source => Error::Vault {
                    method: "cert",
                    source,
                },
            })?;
        *cached = Some(cert_client.clone());
        Ok(cert_client)
    }

    /// Reads a credential file that may be deleted after reading. Once it is
    /// gone, the credential last read from it is used. With `unwrap`, the
    /// file holds a response-wrapping token, and the credential is what
    /// [`unwrap_secret_id`] gets for it through the client.
    async fn read_removable(
        &self,
        method: &'static str,
        key: &'static str,
        path: &Path,
        remove: bool,
        unwrap: Option<(&Client, &str)>,
    ) -> Result<Zeroizing<String>> {
        let read = match read_credential(method, key, path).await {
            Ok(text) => match unwrap {
                Some((client, creation_path)) => {
                    unwrap_secret_id(client, &text, creation_path, path).await
                }
                None => Ok(text),
            },
            Err(err) => Err(err),
        };
        match read {
            Ok(credential) if remove => {
                if let Err(err) = tokio::fs::remove_file(path).await {
                    warn!(
                        "cannot remove {key} {} after reading it: {err}",
                        path.display()
                    );
                }
                *self.remembered() = Some(credential.clone());
                Ok(credential)
            }
            Err(Error::ReadCredential { source, .. })
                if remove && source.kind() == io::ErrorKind::NotFound =>
            {
                let remembered = self.remembered().clone();
                remembered.ok_or(Error::ReadCredential {
                    method,
                    key,
                    path: path.to_owned(),
                    source,
                })
            }
            other => other,
        }
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Option<Zeroizing<String>>> {
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a login sends once the credentials are read.
enum LoginRequest {
    /// The credentials, to the method's login path.
    Write {
        client: Client,
        path: String,
        credentials: Map<String, serde_json::Value>,
    },
    /// `token_file`: a `lookup-self` with the file's token, which `client`
    /// carries, checks it.
    LookupSelf { client: Client, token: Token },
}

/// The secret id that the response-wrapping token `wrapping_token`, read
/// from `path`, holds. As in Vault Agent, the token must have been created
/// by a request to `creation_path`: one created elsewhere could hand the
/// agent a secret id of someone else's choosing. Unwrapping uses the token
/// up, so it works once.
async fn unwrap_secret_id(
    client: &Client,
    wrapping_token: &str,
    creation_path: &str,
    path: &Path,
) -> Result<Zeroizing<String>> {
    let vault_error = |source| Error::Vault {
        method: "approle",
        source,
    };
    let unwrap_error = |reason: String| Error::Unwrap {
        path: path.to_owned(),
        reason,
    };
    let client = client.with_token(Token::new(wrapping_token.to_owned()));
    let lookup = client
        .read("sys/wrapping/lookup")
        .await
        .map_err(vault_error)?;
    let created_at = lookup.data.get("creation_path").and_then(|p| p.as_str());
    if created_at != Some(creation_path) {
        return Err(unwrap_error(format!(
            "the token was created at {}, not at secret_id_response_wrapping_path {creation_path:?}",
            created_at.map_or_else(|| "an unknown path".to_owned(), |p| format!("{p:?}"))
        )));
    }
    let unwrapped = client
        .write("sys/wrapping/unwrap", &Map::new())
        .await
        .map_err(vault_error)?;
    match unwrapped.data.get("secret_id").and_then(|id| id.as_str()) {
        Some(secret_id) if !secret_id.is_empty() => Ok(Zeroizing::new(secret_id.to_owned())),
        _ => Err(unwrap_error(
            "the unwrapped response has no secret_id".to_owned(),
        )),
    }
}

/// Reads a credential file, without the surrounding whitespace an editor
/// or `echo` leaves.
async fn read_credential(
    method: &'static str,
    key: &'static str,
    path: &Path,
) -> Result<Zeroizing<String>> {
    let contents = Zeroizing::new(tokio::fs::read_to_string(path).await.map_err(|source| {
        Error::ReadCredential {
            method,
            key,
            path: path.to_owned(),
            source,
        }
    })?);
    let credential = contents.trim();
    if credential.is_empty() {
        return Err(Error::EmptyCredential {
            method,
            key,
            path: path.to_owned(),
        });
    }
    Ok(Zeroizing::new(credential.to_owned()))
}

fn method_name(kind: &MethodKind) -> &'static str {
    kind.auth_type().name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(kind: MethodKind) -> config::Method {
        config::Method {
            kind,
            mount_path: "auth/jwt".to_owned(),
            namespace: None,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            exit_on_err: false,
            wrap_ttl: None,
        }
    }

    fn authenticator(kind: MethodKind) -> Authenticator {
        Authenticator::new(&config::AutoAuth {
            method: method(kind),
            sinks: Vec::new(),
        })
    }

    #[tokio::test]
    async fn removed_jwt_is_remembered_for_the_next_login() {
        let dir = tempfile::tempdir().expect("should succeed");
        let path = dir.path().join("jwt");
        std::fs::write(&path, "header.payload.sig\n").expect("should succeed");
        let auth = authenticator(MethodKind::Jwt {
            role: "app".to_owned(),
            path: path.clone(),
            remove_jwt_after_reading: true,
        });

        let first = auth
            .read_removable("jwt", "path", &path, true, None)
            .await
            .expect("should succeed");
        assert_eq!(first.as_str(), "header.payload.sig");
        assert!(!path.exists(), "the JWT file is removed after reading");
        let second = auth
            .read_removable("jwt", "path", &path, true, None)
            .await
            .expect("should succeed");
        assert_eq!(second.as_str(), "header.payload.sig");
        assert!(
            !format!("{auth:?}").contains("payload"),
            "Debug must not show the remembered JWT"
        );

        std::fs::write(&path, "fresh.payload.sig").expect("should succeed");
        let third = auth
            .read_removable("jwt", "path", &path, true, None)
            .await
            .expect("should succeed");
        assert_eq!(third.as_str(), "fresh.payload.sig");
    }

    #[tokio::test]
    async fn missing_file_that_is_not_removed_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("should succeed");
        let path = dir.path().join("token");
        let auth = authenticator(MethodKind::Kubernetes {
            role: "app".to_owned(),
            token_path: path.clone(),
        });
        let client = Client::new(&config::Vault {
            address: Some("http://127.0.0.1:1".to_owned()),
            ..config::Vault::default()
        })
        .expect("should succeed");
        let err = auth.login(&client).await.expect_err("should fail");
        assert_eq!(err.kind(), "credential");
        assert_eq!(
            err.to_string(),
            format!(
                "auto_auth method \"kubernetes\": cannot read token_path {}: \
                 No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn empty_credential_file_is_an_error() {
        let dir = tempfile::tempdir().expect("should succeed");
        let path = dir.path().join("role-id");
        std::fs::write(&path, " \n").expect("should succeed");
        let err = read_credential("approle", "role_id_file_path", &path)
            .await
            .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            format!(
                "auto_auth method \"approle\": role_id_file_path {} is empty",
                path.display()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn authenticate_gives_up_after_max_retries() {
        let dir = tempfile::tempdir().expect("should succeed");
        let auth = authenticator(MethodKind::Kubernetes {
            role: "app".to_owned(),
            token_path: dir.path().join("missing"),
        });
        let client = Client::new(&config::Vault {
            address: Some("http://127.0.0.1:1".to_owned()),
            ..config::Vault::default()
        })
        .expect("should succeed");
        let started = tokio::time::Instant::now();
        let err = auth
            .authenticate(&client, Some(2))
            .await
            .expect_err("should fail");
        assert_eq!(err.kind(), "credential");
        // Two retries: one wait of min_backoff, then one of at most 2 * min.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited <= Duration::from_millis(30),
            "waited {waited:?}"
        );
        assert!(client.token().is_none());
    }

    fn cert(dir: &Path, reload: bool) -> Authenticator {
        authenticator(MethodKind::Cert {
            name: None,
            ca_cert: None,
            client_cert: Some(dir.join("client.pem")),
            client_key: Some(dir.join("client-key.pem")),
            reload,
        })
    }

    fn write_client_cert(dir: &Path) {
        let cert = rcgen::generate_simple_self_signed(vec!["agent.test".to_owned()])
            .expect("should succeed");
        std::fs::write(dir.join("client.pem"), cert.cert.pem()).expect("should succeed");
        std::fs::write(dir.join("client-key.pem"), cert.signing_key.serialize_pem())
            .expect("should succeed");
    }

    fn https_client() -> Client {
        Client::new(&config::Vault {
            address: Some("https://127.0.0.1:1".to_owned()),
            tls_skip_verify: true,
            ..config::Vault::default()
        })
        .expect("should succeed")
    }

    #[test]
    fn cert_files_that_cannot_be_used_are_a_retryable_error_naming_them() {
        let dir = tempfile::tempdir().expect("should succeed");
        let auth = cert(dir.path(), false);
        let err = auth.cert_client(&https_client()).expect_err("should fail");
        assert_eq!(err.kind(), "credential");
        assert!(err.is_retryable(), "the files may appear later");
        let message = err.to_string();
        let expected = format!(
            "auto_auth method \"cert\": cannot use client_cert {}: ",
            dir.path().join("client.pem").display()
        );
        assert!(message.starts_with(&expected), "{message}");
    }

    #[test]
    fn cert_client_is_built_once_unless_reload_is_set() {
        let dir = tempfile::tempdir().expect("should succeed");
        write_client_cert(dir.path());
        let client = https_client();
        let kept = cert(dir.path(), false);
        let reloading = cert(dir.path(), true);
        kept.cert_client(&client).expect("should succeed");
        reloading.cert_client(&client).expect("should succeed");

        std::fs::write(dir.path().join("client-key.pem"), "not a key\n").expect("should succeed");
        kept.cert_client(&client)
            .expect("the client built from the first files is kept");
        let err = reloading
            .cert_client(&client)
            .expect_err("reload reads the files again");
        assert!(err.to_string().contains("cannot use client_key"), "{err}");
    }
}
