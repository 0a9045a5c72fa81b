//! Vault HTTP client: login, logical read/write/list with the full response
//! envelope, lease renewal and revocation, and the token's own endpoints.
//!
//! One [`Client`] serves the whole agent. It is cheap to clone, and every
//! clone shares one connection pool and one current token, so templates can
//! be fetched in parallel while a login or renewal swaps the token.
//!
//! The client talks to Vault's HTTP API through its own HTTP client (see
//! `http.rs`) rather than through vaultrs. Templates read arbitrary paths
//! and lease rotation needs the response envelope (`lease_id`,
//! `lease_duration`, `renewable`), which vaultrs's helpers drop; it has no
//! lease endpoints; and its request path copies response bodies (login
//! responses hold the new token) into buffers and error values that are
//! never wiped, logs every Vault error at `error` level, and panics on a
//! token that is not a valid header value. The few endpoints the agent needs
//! are each one request, so one request function here gives one place for
//! the token header, the namespace, wiping response bodies and classifying
//! errors.

mod error;
mod forward;
mod http;
mod kv;
mod restarts;
mod secret;
mod tls;
mod token;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use zeroize::Zeroizing;

use crate::config::{self, Reuse};

pub use error::{Error, Result};
pub use forward::{Failure, Forwarder};
pub use kv::{KvPaths, Operation};
pub use restarts::RestartWatch;
pub use secret::{Secret, SecretAuth, SecretData};
pub use token::{Auth, Token, TokenInfo};

/// Where the agent talks to when `vault.address` is not set, as Vault Agent.
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";

/// How long connecting to Vault (TCP and TLS) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a whole request may take by default; Vault's own clients use 60 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A Vault client. Clones share the connection pool and the current token.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    token: Arc<RwLock<Option<Token>>>,
    namespace: Option<HeaderValue>,
    /// Asks Vault to response-wrap the answers for this long.
    wrap_ttl: Option<Duration>,
}

#[derive(Clone)]
struct Shared {
    http: http::Http,
    /// Vault's address as configured, for messages.
    address: String,
    /// The address with `/v1` appended; requests go below it.
    base: Url,
    /// The `vault` stanza and timeouts this client was built from, for
    /// [`Client::with_login_tls`].
    vault: config::Vault,
    /// The TLS settings the pool was built with, for connections of the
    /// agent's own ([`Client::watch_restarts`]) and pools of other reuse.
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    request_timeout: Duration,
    /// Whether the pool keeps connections for later requests.
    reuse: Reuse,
}

impl Shared {
    /// The path of the configured address, before the `/v1` the base adds
    /// and a proxied request's path starts with.
    fn address_path(&self) -> &str {
        let path = self.base.path();
        path.strip_suffix("/v1").unwrap_or(path)
    }

    /// A connector for connections of the agent's own to Vault, outside the
    /// pool of [`Shared::http`]: the same TLS settings and connect timeout,
    /// HTTP/1.1 only, and the TCP settings `tune` gives.
    fn http1_connector(
        &self,
        tune: impl FnOnce(&mut HttpConnector),
    ) -> HttpsConnector<HttpConnector> {
        HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http::tcp_connector(self.connect_timeout, tune))
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.shared.address)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`Client`] beyond the `vault` stanza.
#[derive(Debug)]
pub struct ClientBuilder<'a> {
    vault: &'a config::Vault,
    connect_timeout: Duration,
    request_timeout: Duration,
    reuse: Reuse,
}

impl ClientBuilder<'_> {
    /// How long connecting (TCP and TLS) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole request, including reading the response, may take.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether connections are kept for later requests; they are unless
    /// told otherwise.
    pub fn reuse(mut self, reuse: Reuse) -> Self {
        self.reuse = reuse;
        self
    }

    /// Builds the client: parses the address and loads the TLS files.
    pub fn build(self) -> Result<Client> {
        let Self {
            vault,
            connect_timeout,
            request_timeout,
            reuse,
        } = self;
        let address = vault.address.as_deref().unwrap_or(DEFAULT_ADDRESS);
        let invalid = || Error::Address {
            address: address.to_owned(),
        };
        let mut base = Url::parse(address).map_err(|_| invalid())?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(invalid());
        }
        base.set_query(None);
        base.set_fragment(None);
        base.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .push("v1");

        let tls = tls::client_config(vault, base.scheme() == "https")?;
        let http = http::Http::new(&tls, connect_timeout, reuse);
        let namespace = vault
            .namespace
            .as_deref()
            .map(namespace_header)
            .transpose()?;
        Ok(Client {
            shared: Arc::new(Shared {
                http,
                address: address.trim_end_matches('/').to_owned(),
                base,
                vault: vault.clone(),
                tls,
                connect_timeout,
                request_timeout,
                reuse,
            }),
            token: Arc::default(),
            namespace,
            wrap_ttl: None,
        })
    }
}

fn namespace_header(namespace: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(namespace).map_err(|_| Error::Setup {
        reason: format!("namespace {namespace:?} is not a valid HTTP header value"),
    })
}

/// Whether a request carries the client's token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Authenticated {
    Yes,
    /// Login requests: a stale token must not get in their way.
    No,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<token::AuthBlock>,
}

#[derive(Deserialize)]
struct WrapEnvelope {
    wrap_info: Option<WrapInfo>,
}

/// What Vault answers a response-wrapped request with instead of the
/// response: Vault's `wrap_info`, in its field order. The wrapping token is
/// wiped when dropped; `Debug` never shows it.
#[derive(Deserialize, Serialize)]
pub struct WrapInfo {
    /// The single-use token that unwraps the response.
    pub token: Zeroizing<String>,
    /// The wrapping token's accessor.
    pub accessor: String,
    /// Seconds the wrapping token lives.
    pub ttl: u64,
    /// When Vault wrapped the response, as Vault wrote it.
    pub creation_time: String,
    /// The path whose response was wrapped.
    pub creation_path: String,
    /// The accessor of a wrapped token, for wrapped logins.
    #[serde(default)]
    pub wrapped_accessor: String,
}

impl std::fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapInfo")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .field("creation_path", &self.creation_path)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

impl Client {
    /// Starts building a client for the `vault` stanza.
    pub fn builder(vault: &config::Vault) -> ClientBuilder<'_> {
        ClientBuilder {
            vault,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            reuse: Reuse::Keep,
        }
    }

    /// A client for the `vault` stanza with the default timeouts.
    pub fn new(vault: &config::Vault) -> Result<Self> {
        Self::builder(vault).build()
    }

    /// Vault's address, for messages.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// A client that sends requests to another namespace, sharing this one's
    /// connections and token; `None` means the root namespace.
    pub fn with_namespace(&self, namespace: Option<&str>) -> Result<Self> {
        Ok(Self {
            shared: Arc::clone(&self.shared),
            token: Arc::clone(&self.token),
            namespace: namespace.map(namespace_header).transpose()?,
            wrap_ttl: self.wrap_ttl,
        })
    }

    /// A client that shares this one's connections and namespace but sends
    /// `token`, without touching the token this client and its clones send.
    pub fn with_token(&self, token: Token) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            token: Arc::new(RwLock::new(Some(token))),
            namespace: self.namespace.clone(),
            wrap_ttl: self.wrap_ttl,
        }
    }

    /// A client for the same Vault, namespace and timeouts with its own
    /// connections and no token, whose TLS trusts `ca_cert` instead of the
    /// `vault` stanza's CAs and presents `identity` (a client certificate
    /// and its key) instead of the stanza's, each when given. The `cert`
    /// auth method logs in through it: the certificate is what logs in.
    pub fn with_login_tls(
        &self,
        ca_cert: Option<&Path>,
        identity: Option<(&Path, &Path)>,
    ) -> Result<Self> {
        let shared = &self.shared;
        let mut vault = shared.vault.clone();
        if let Some(ca_cert) = ca_cert {
            vault.ca_cert = Some(ca_cert.to_owned());
            vault.ca_path = None;
        }
        if let Some((cert, key)) = identity {
            vault.client_cert = Some(cert.to_owned());
            vault.client_key = Some(key.to_owned());
        }
        let client = Client::builder(&vault)
            .connect_timeout(shared.connect_timeout)
            .request_timeout(shared.request_timeout)
            .reuse(shared.reuse)
            .build()?;
        Ok(Self {
            namespace: self.namespace.clone(),
            ..client
        })
    }

    /// A client that shares this one's token and namespace but uses its
    /// connections as `reuse` says, in a pool of its own when that differs
    /// from this one's.
    pub fn with_reuse(&self, reuse: Reuse) -> Result<Self> {
        let shared = &self.shared;
        if reuse == shared.reuse {
            return Ok(self.clone());
        }
        let http = http::Http::new(&shared.tls, shared.connect_timeout, reuse);
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                reuse,
                ..Shared::clone(shared)
            }),
            token: Arc::clone(&self.token),
            namespace: self.namespace.clone(),
            wrap_ttl: self.wrap_ttl,
        })
    }

    /// Makes `token` the one every clone of this client sends from now on.
    pub fn set_token(&self, token: Token) {
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(token);
    }

    /// The current token, for token sinks.
    pub fn token(&self) -> Option<Token> {
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads a logical path, e.g. `secret/data/app?version=1`, with the full
    /// response envelope.
    pub async fn read(&self, path: &str) -> Result<Secret> {
        self.call(Method::GET, path, None, Authenticated::Yes).await
    }

    /// Writes `data` to a logical path and returns Vault's response, which
    /// for paths like `pki/issue/<role>` is the secret itself. A response
    /// without a body gives an empty [`Secret`].
    pub async fn write(&self, path: &str, data: &Map<String, Value>) -> Result<Secret> {
        let body =
            serde_json::to_vec(data).map_err(|err| Error::decode(&err, &Method::PUT, path))?;
        self.call(Method::PUT, path, Some(body), Authenticated::Yes)
            .await
    }

    /// Response-wraps `data` for `ttl` with `sys/wrapping/wrap`. The values
    /// of `data` are wiped once sent.
    pub async fn wrap(&self, data: Map<String, Value>, ttl: Duration) -> Result<WrapInfo> {
        let path = "sys/wrapping/wrap";
        let body = wiped_body(data, path)?;
        self.wrapped_call(Method::PUT, path, Some(body), Authenticated::Yes, ttl)
            .await
    }

    /// Sends a request whose response Vault wraps for `ttl`, and returns
    /// the `wrap_info` it answers with.
    async fn wrapped_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authenticated: Authenticated,
        ttl: Duration,
    ) -> Result<WrapInfo> {
        let wrapping = Self {
            wrap_ttl: Some(ttl),
            ..self.clone()
        };
        let envelope: WrapEnvelope = wrapping
            .call(method.clone(), path, body, authenticated)
            .await?;
        envelope.wrap_info.ok_or_else(|| Error::Decode {
            method,
            path: path.to_owned(),
            reason: "the response has no wrap_info".to_owned(),
        })
    }

    /// Lists the keys below a path. Vault answers a path without any keys
    /// with 404, so that gives an empty list.
    pub async fn list(&self, path: &str) -> Result<Vec<String>> {
        let method = list_method();
        match self
            .call::<DataEnvelope<Keys>>(method, path, None, Authenticated::Yes)
            .await
        {
            Ok(envelope) => Ok(envelope.data.map(|d| d.keys).unwrap_or_default()),
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }

    /// Renews a lease; `increment` asks for a new duration (Vault may give
    /// less). Returns the envelope with the new `lease_duration`.
    pub async fn renew_lease(&self, lease_id: &str, increment: Option<Duration>) -> Result<Secret> {
        let mut body = Map::new();
        body.insert("lease_id".to_owned(), lease_id.into());
        if let Some(increment) = increment {
            body.insert("increment".to_owned(), increment.as_secs().into());
        }
        self.write("sys/leases/renew", &body).await
    }

    /// Revokes a lease at once.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        let mut body = Map::new();
        body.insert("lease_id".to_owned(), lease_id.into());
        self.write("sys/leases/revoke", &body).await.map(drop)
    }

    /// Logs in at `path` (e.g. `auth/kubernetes/login`) with `credentials`,
    /// without sending the current token. The credentials are wiped once
    /// serialised, and the returned token is not installed: the caller
    /// decides with [`Client::set_token`].
    pub async fn login(&self, path: &str, credentials: Map<String, Value>) -> Result<Auth> {
        let body = wiped_body(credentials, path)?;
        self.auth_call(Method::PUT, path, Some(body), Authenticated::No)
            .await
    }

    /// Logs in as [`Client::login`] does, with the response wrapped for
    /// `ttl`: Vault answers with the wrapping token, which unwraps to the
    /// login's answer, and the new token is never seen here.
    pub async fn login_wrapped(
        &self,
        path: &str,
        credentials: Map<String, Value>,
        ttl: Duration,
    ) -> Result<WrapInfo> {
        let body = wiped_body(credentials, path)?;
        self.wrapped_call(Method::PUT, path, Some(body), Authenticated::No, ttl)
            .await
    }

    /// Looks up the current token as [`Client::lookup_self`] does, with the
    /// response wrapped for `ttl`.
    pub async fn lookup_self_wrapped(&self, ttl: Duration) -> Result<WrapInfo> {
        self.wrapped_call(
            Method::GET,
            "auth/token/lookup-self",
            None,
            Authenticated::Yes,
            ttl,
        )
        .await
    }

    /// Looks up the current token: its TTL, renewability and policies.
    pub async fn lookup_self(&self) -> Result<TokenInfo> {
        let path = "auth/token/lookup-self";
        let envelope: DataEnvelope<TokenInfo> = self
            .call(Method::GET, path, None, Authenticated::Yes)
            .await?;
        envelope.data.ok_or_else(|| Error::Decode {
            method: Method::GET,
            path: path.to_owned(),
            reason: "the response has no data".to_owned(),
        })
    }

    /// Renews the current token; `increment` asks for a new TTL.
    pub async fn renew_self(&self, increment: Option<Duration>) -> Result<Auth> {
        let mut body = Map::new();
        if let Some(increment) = increment {
            body.insert("increment".to_owned(), increment.as_secs().into());
        }
        let body = serde_json::to_vec(&body)
            .map_err(|err| Error::decode(&err, &Method::PUT, "auth/token/renew-self"))?;
        self.auth_call(
            Method::PUT,
            "auth/token/renew-self",
            Some(body),
            Authenticated::Yes,
        )
        .await
    }

    /// Revokes the current token (and its child tokens and leases).
    pub async fn revoke_self(&self) -> Result<()> {
        self.send(
            Method::PUT,
            "auth/token/revoke-self",
            None,
            Authenticated::Yes,
        )
        .await
        .map(drop)
    }

    async fn auth_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authenticated: Authenticated,
    ) -> Result<Auth> {
        let envelope: AuthEnvelope = self.call(method.clone(), path, body, authenticated).await?;
        envelope.auth.map(Auth::from).ok_or_else(|| Error::Decode {
            method,
            path: path.to_owned(),
            reason: "the response has no auth block".to_owned(),
        })
    }

    /// Sends a request and decodes the JSON answer; an empty answer (204)
    /// decodes as JSON `{}`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authenticated: Authenticated,
    ) -> Result<T> {
        let response = self.send(method.clone(), path, body, authenticated).await?;
        let json: &[u8] = if response.is_empty() {
            b"{}"
        } else {
            &response
        };
        serde_json::from_slice(json).map_err(|err| Error::decode(&err, &method, path))
    }

    /// Sends one request and returns the body of a successful answer, wiped
    /// when the caller drops it. An error status becomes [`Error::Status`]
    /// with Vault's messages.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        authenticated: Authenticated,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let uri = self.uri(path, &method)?;
        let mut headers = self.fixed_headers();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if authenticated == Authenticated::Yes
            && let Some(token) = self.token_header()?
        {
            headers.insert("x-vault-token", token);
        }
        if let Some(ttl) = self.wrap_ttl {
            headers.insert("x-vault-wrap-ttl", HeaderValue::from(ttl.as_secs()));
        }
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let payload = http::Payload::Bytes(body.map(Bytes::from).unwrap_or_default());

        let exchange = async {
            let response = self
                .shared
                .http
                .send(method.clone(), uri, headers, payload)
                .await;
            let response = response.map_err(|err| (err.is_connect(), err.into()))?;
            let status = response.status();
            let body = wiped_collect(response.into_body())
                .await
                .map_err(|err| (false, err))?;
            Ok::<_, (bool, BoxError)>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.shared.request_timeout, exchange).await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err((connect, err))) => {
                return Err(Error::from_transport(
                    &*err,
                    connect,
                    &self.shared.address,
                    &method,
                    path,
                ));
            }
            Err(_) => return Err(Error::timeout(&self.shared.address, &method, path)),
        };
        if status.is_success() {
            return Ok(body);
        }
        // Only Vault's `errors` are kept: the rest of an error body (a KV v2
        // 404 carries the secret's metadata) stays out of the message.
        let errors = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.errors)
            .unwrap_or_default();
        Err(Error::Status {
            method,
            path: path.to_owned(),
            status,
            errors,
            withheld: false,
        })
    }

    /// The headers every request to Vault carries, the API proxy's too
    /// unless the app sent its own.
    fn fixed_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Vault requires this on requests it might forward, and it costs nothing.
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        if self.shared.reuse == Reuse::Close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(namespace) = &self.namespace {
            headers.insert("x-vault-namespace", namespace.clone());
        }
        headers
    }

    fn token_header(&self) -> Result<Option<HeaderValue>> {
        let token = self.token.read().unwrap_or_else(PoisonError::into_inner);
        let Some(token) = token.as_ref() else {
            return Ok(None);
        };
        let mut value =
            HeaderValue::from_str(token.expose_secret()).map_err(|_| Error::InvalidToken)?;
        // Keeps the token out of HTTP/2 header compression tables and Debug.
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// The URI for a Vault path; a `?query` in the path is passed through.
    fn uri(&self, path: &str, method: &Method) -> Result<Uri> {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.shared.base.clone();
        // The base was checked to be an http(s) URL, which has segments.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url.set_query(query.filter(|q| !q.is_empty()));
        // `url` and `http` parse hosts a little differently, so this can
        // fail where building the client did not.
        Uri::try_from(url.as_str()).map_err(|err| Error::Request {
            address: self.shared.address.clone(),
            method: method.clone(),
            path: path.to_owned(),
            reason: format!("not a valid request URI: {err}"),
        })
    }
}

/// The User-Agent of the agent's own requests.
const USER_AGENT_VALUE: &str = concat!("keyhole-agent/", env!("CARGO_PKG_VERSION"));

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most of a buffer sized from an answer's `Content-Length` before its
/// bytes arrive: a larger answer's buffer grows as they do.
const MAX_PRESIZE: u64 = 1 << 20;

/// Reads a whole answer into one buffer, wiped when dropped. The buffer is
/// sized from the answer's length when Vault sent one, and a buffer that
/// grows wipes what it leaves behind, so no copy of a secret stays in freed
/// memory.
async fn wiped_collect(mut body: Incoming) -> std::result::Result<Zeroizing<Vec<u8>>, BoxError> {
    let hint = body.size_hint();
    let presize = hint.exact().unwrap_or(hint.lower()).min(MAX_PRESIZE);
    let mut out = Zeroizing::new(Vec::with_capacity(usize::try_from(presize).unwrap_or(0)));
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if out.capacity() - out.len() < data.len() {
            let mut grown = Zeroizing::new(Vec::with_capacity(
                (out.len() + data.len()).max(out.capacity() * 2),
            ));
            grown.extend_from_slice(&out);
            out = grown;
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// The JSON body of `data`, whose values (credentials, a token) are
/// wiped once serialised.
fn wiped_body(mut data: Map<String, Value>, path: &str) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(&data);
    data.values_mut().for_each(secret::wipe);
    body.map_err(|err| Error::decode(&err, &Method::PUT, path))
}

/// Vault's `LIST` verb.
fn list_method() -> Method {
    Method::from_bytes(b"LIST").expect("LIST is a valid HTTP method token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(address: &str) -> Client {
        Client::new(&config::Vault {
            address: Some(address.to_owned()),
            ..config::Vault::default()
        })
        .expect("should succeed")
    }

    fn uri(client: &Client, path: &str) -> String {
        client
            .uri(path, &Method::GET)
            .expect("a valid URI")
            .to_string()
    }

    #[test]
    fn url_passes_the_query_through() {
        let client = client("http://127.0.0.1:8200");
        assert_eq!(
            uri(&client, "secret/data/app?version=1"),
            "http://127.0.0.1:8200/v1/secret/data/app?version=1"
        );
    }

    #[test]
    fn url_keeps_a_path_prefix_of_the_address() {
        let client = client("https://vault.example.com/prefix/");
        assert_eq!(
            uri(&client, "/auth/token/lookup-self"),
            "https://vault.example.com/prefix/v1/auth/token/lookup-self"
        );
    }

    #[test]
    fn url_escapes_characters_that_would_change_its_meaning() {
        let client = client("http://127.0.0.1:8200");
        assert_eq!(
            uri(&client, "secret/data/a b#c"),
            "http://127.0.0.1:8200/v1/secret/data/a%20b%23c"
        );
    }

    #[test]
    fn address_must_be_http_or_https() {
        let err = Client::new(&config::Vault {
            address: Some("unix:///run/vault.sock".to_owned()),
            ..config::Vault::default()
        })
        .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "vault address \"unix:///run/vault.sock\" is not a valid http or https URL"
        );
    }

    #[test]
    fn clones_share_the_token() {
        let client = client("http://127.0.0.1:8200");
        let clone = client.clone();
        client.set_token(Token::new("s.one".to_owned()));
        assert_eq!(
            clone.token().expect("should succeed").expose_secret(),
            "s.one"
        );
        assert_eq!(
            format!("{client:?}"),
            "Client { address: \"http://127.0.0.1:8200\", namespace: None, .. }"
        );
    }

    #[test]
    fn token_with_a_newline_is_rejected_before_sending() {
        let client = client("http://127.0.0.1:8200");
        client.set_token(Token::new("s.one\nX-Evil: 1".to_owned()));
        assert!(matches!(client.token_header(), Err(Error::InvalidToken)));
    }

    #[test]
    fn client_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Client>();
    }
}
