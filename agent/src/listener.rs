//! The agent's listeners (`listener "tcp"` and `listener "unix"`) and what
//! they serve, as `bao agent` serves them:
//!
//! - `/agent/v1/metrics`: `GET` gives the agent's metrics ([`crate::metrics`]).
//! - `/agent/v1/quit`: with `agent_api { enable_quit = true }`, `POST` stops
//!   the agent, which cleans up and exits 0; otherwise 404.
//! - `/agent/v1/cache-clear`: `POST` or `PUT` forgets what the API proxy's
//!   lease cache kept ([`crate::proxy::cache`]); 200 without a cache.
//! - every other path: the API proxy ([`crate::proxy`]).
//!
//! A `role = "metrics_only"` listener serves only `/agent/v1/metrics`. The
//! keyhole-only `keyhole { metrics_listen }` listener is one of those that
//! also answers at `/metrics`.
//!
//! Every container in the pod can connect, so the HTTP server bounds what a
//! client can make it hold: the header count, header bytes and the time to
//! send them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{
    ClientCerts, ListenAddress, Listener, ListenerRole, ListenerTls, SocketOwner, TlsVersion,
};
use crate::metrics::Metrics;
use crate::proxy::cache::ClearRequest;
use crate::proxy::{self, Proxy};

/// How long a client may take to send a request's headers (`bao agent`'s
/// `ReadHeaderTimeout`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most headers a request may have; more get 431.
const MAX_HEADERS: usize = 100;

/// The most header bytes an HTTP/2 request may have (Go's
/// `DefaultMaxHeaderBytes`, which bounds `bao agent`'s listeners).
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// How long in-flight requests may take to finish once the agent stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Errors starting a listener.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("listener on {address}: {source}")]
    Bind {
        /// The address as configured.
        address: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The socket's mode or owner could not be set.
    #[error("listener on {}: setting the socket's {what}: {source}", path.display())]
    Socket {
        /// The socket file.
        path: PathBuf,
        /// What was being set: `mode`, `user` or `group`.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("listener on {address}: loading tls_cert_file {} and tls_key_file {}: {reason}", cert.display(), key.display())]
    Tls {
        /// The address as configured.
        address: String,
        /// `tls_cert_file`.
        cert: PathBuf,
        /// `tls_key_file`.
        key: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// The CAs that client certificates must chain to could not be loaded.
    #[error("listener on {address}: loading tls_client_ca_file {}: {reason}", path.display())]
    ClientCa {
        /// The address as configured.
        address: String,
        /// `tls_client_ca_file`, or `(the system's CAs)`.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the routes share.
#[derive(Clone)]
pub struct Api {
    /// Forwards the app's requests to Vault.
    pub proxy: Proxy,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
    /// Set to `true` to stop the agent.
    pub stop: watch::Sender<bool>,
}

/// The routes of one `listener` stanza.
pub fn router(listener: &Listener, api: &Api) -> Router {
    let metrics = Router::new()
        .route("/agent/v1/metrics", any(metrics))
        .with_state(Arc::clone(&api.metrics));
    if listener.role == ListenerRole::MetricsOnly {
        return metrics.fallback(not_found);
    }
    let mut proxy = Router::new()
        .fallback(proxy::forward)
        .with_state(api.proxy.clone());
    if listener.require_request_header {
        proxy = proxy.layer(middleware::from_fn(require_request_header));
    }
    let quit = if listener.enable_quit {
        any(quit).with_state(api.stop.clone())
    } else {
        any(|| async { StatusCode::NOT_FOUND })
    };
    Router::new()
        .route("/agent/v1/quit", quit)
        .route(
            "/agent/v1/cache-clear",
            any(cache_clear).with_state(api.proxy.clone()),
        )
        .merge(metrics)
        .merge(proxy)
}

/// The routes of the `keyhole { metrics_listen }` listener: metrics at
/// `/metrics` and at `bao agent`'s `/agent/v1/metrics`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", any(self::metrics))
        .route("/agent/v1/metrics", any(self::metrics))
        .fallback(not_found)
        .with_state(metrics)
}

async fn metrics(State(metrics): State<Arc<Metrics>>, method: Method) -> Response {
    if method != Method::GET {
        return empty_errors(StatusCode::METHOD_NOT_ALLOWED);
    }
    crate::metrics::scrape(&metrics)
}

async fn quit(State(stop): State<watch::Sender<bool>>, method: Method) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    info!("quit requested through /agent/v1/quit");
    stop.send_replace(true);
    StatusCode::OK
}

/// `/agent/v1/cache-clear`, answered as `bao agent` answers it: 200 when
/// done, with nothing to do (no cache), or for a method other than `POST`
/// and `PUT`.
async fn cache_clear(State(proxy): State<Proxy>, method: Method, body: Bytes) -> Response {
    let Some(cache) = proxy.cache() else {
        return StatusCode::OK.into_response();
    };
    if method != Method::POST && method != Method::PUT {
        return StatusCode::OK.into_response();
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return proxy::errors(
            StatusCode::BAD_REQUEST,
            "failed to parse JSON input: empty JSON provided".to_owned(),
        );
    }
    let request: ClearRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return proxy::errors(
                StatusCode::BAD_REQUEST,
                format!("failed to parse JSON input: {err}"),
            );
        }
    };
    match cache.clear(&request) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => proxy::errors(err.status(), err.to_string()),
    }
}

/// Go's `http.NotFound`, which `bao agent` answers unknown paths of a
/// metrics-only listener with.
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// Vault's error answer without a message, `{"errors":[]}`.
fn empty_errors(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"errors\":[]}\n",
    )
        .into_response()
}

/// `require_request_header`: a request without exactly one
/// `X-Vault-Request: true` gets 412, a browser tricked into sending a
/// request cannot set it.
async fn require_request_header(request: Request, next: Next) -> Response {
    let mut values = request.headers().get_all("x-vault-request").iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value == "true" => next.run(request).await,
        _ => proxy::errors(
            StatusCode::PRECONDITION_FAILED,
            "missing \"X-Vault-Request\" header".to_owned(),
        ),
    }
}

/// A bound listener, ready to serve.
pub struct Bound {
    socket: Socket,
    /// The address as configured, for messages.
    address: String,
}

enum Socket {
    Tcp(std::net::TcpListener),
    Tls(std::net::TcpListener, RustlsConfig),
    Unix(std::os::unix::net::UnixListener),
    UnixTls(std::os::unix::net::UnixListener, RustlsConfig),
}

impl Bound {
    /// The TCP address it listens on (with the port the system chose for
    /// port 0); `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.socket {
            Socket::Tcp(listener) | Socket::Tls(listener, _) => listener.local_addr().ok(),
            Socket::Unix(_) | Socket::UnixTls(..) => None,
        }
    }

    /// Serves `app` until `shutdown` completes, then lets requests in flight
    /// finish for up to [`DRAIN`].
    pub async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let service = app.into_make_service();
        match self.socket {
            // TCP_NODELAY, as Go's servers set it: a streamed answer goes out
            // as its head and then its body, and Nagle's algorithm would hold
            // the body back until the app acknowledged the head.
            Socket::Tcp(listener) => {
                let server = axum_server::from_tcp(listener)?.acceptor(NoDelayAcceptor);
                bounded(server, shutdown).serve(service).await
            }
            Socket::Tls(listener, config) => {
                let server = axum_server::from_tcp(listener)?
                    .acceptor(RustlsAcceptor::new(config).acceptor(NoDelayAcceptor));
                bounded(server, shutdown).serve(service).await
            }
            Socket::Unix(listener) => {
                let server = axum_server::from_unix(listener)?;
                bounded(server, shutdown).serve(service).await
            }
            Socket::UnixTls(listener, config) => {
                let server = axum_server::from_unix_rustls(listener, config)?;
                bounded(server, shutdown).serve(service).await
            }
        }
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// `server` with the bounds on what a client can make it hold, and a
/// graceful shutdown once `shutdown` completes.
fn bounded<A, Acc>(
    mut server: axum_server::Server<A, Acc>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> axum_server::Server<A, Acc>
where
    A: axum_server::Address + Send + Sync + 'static,
{
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_TIMEOUT)
        .max_headers(MAX_HEADERS);
    server
        .http_builder()
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES);
    let handle = Handle::new();
    let drain = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        drain.graceful_shutdown(Some(DRAIN));
    });
    server.handle(handle)
}

/// Binds the socket of `listener`, and loads its certificate.
pub async fn bind(listener: &Listener) -> Result<Bound> {
    let address = match &listener.address {
        ListenAddress::Tcp(address) => address.clone(),
        ListenAddress::Unix { path, .. } => path.display().to_string(),
    };
    let tls = match &listener.tls {
        None => None,
        Some(tls) => Some(RustlsConfig::from_config(Arc::new(server_config(
            &address, tls,
        )?))),
    };
    let bind_error = |source| Error::Bind {
        address: address.clone(),
        source,
    };
    let socket = match &listener.address {
        ListenAddress::Tcp(address) => {
            let tcp = tokio::net::TcpListener::bind(address.as_str())
                .await
                .and_then(tokio::net::TcpListener::into_std)
                .map_err(bind_error)?;
            match tls {
                None => Socket::Tcp(tcp),
                Some(config) => Socket::Tls(tcp, config),
            }
        }
        ListenAddress::Unix { path, owner } => {
            // A socket file left by an earlier run would make binding fail.
            match std::fs::remove_file(path) {
                Ok(()) => debug!(path = %address, "removed an old socket file"),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(bind_error(err)),
            }
            let unix = std::os::unix::net::UnixListener::bind(path).map_err(bind_error)?;
            if let Some(owner) = owner {
                set_owner(path, owner)?;
            }
            match tls {
                None => Socket::Unix(unix),
                Some(config) => Socket::UnixTls(unix, config),
            }
        }
    };
    Ok(Bound { socket, address })
}

/// The TLS server settings of a listener at `address`: its certificate, the
/// TLS versions it serves, and the client certificates it requires.
fn server_config(address: &str, tls: &ListenerTls) -> Result<rustls::ServerConfig> {
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(version, _)| (tls.min_version..=tls.max_version).contains(version))
    .map(|(_, protocol)| protocol)
    .collect();
    let builder = rustls::ServerConfig::builder_with_protocol_versions(&versions);
    let builder = match &tls.client_certs {
        ClientCerts::NotRequired => builder.with_no_client_auth(),
        ClientCerts::Required { ca_file } => {
            let ca_error = |reason: String| Error::ClientCa {
                address: address.to_owned(),
                path: ca_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("(the system's CAs)")),
                reason,
            };
            let roots = client_roots(ca_file.as_deref()).map_err(ca_error)?;
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|err| ca_error(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let cert_error = |reason: String| Error::Tls {
        address: address.to_owned(),
        cert: tls.cert_file.clone(),
        key: tls.key_file.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| cert_error(err.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|err| cert_error(err.to_string()))?;
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|err| cert_error(err.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The CAs client certificates must chain to: those in `ca_file`, or the
/// system's.
fn client_roots(ca_file: Option<&Path>) -> std::result::Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(file) => {
            for cert in CertificateDer::pem_file_iter(file).map_err(|err| err.to_string())? {
                roots
                    .add(cert.map_err(|err| err.to_string())?)
                    .map_err(|err| err.to_string())?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err("no CA certificate found".to_owned());
    }
    Ok(roots)
}

/// Applies `socket_mode`, `socket_user` and `socket_group`.
fn set_owner(path: &Path, owner: &SocketOwner) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |what, source| Error::Socket {
        path: path.to_owned(),
        what,
        source,
    };
    let uid = user_id(&owner.user).map_err(|e| failed("user", e))?;
    let gid = group_id(&owner.group).map_err(|e| failed("group", e))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| failed("owner", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(owner.mode))
        .map_err(|e| failed("mode", e))
}

fn user_id(user: &str) -> io::Result<u32> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(found)) => Ok(found.uid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user {user:?}"),
        )),
        Err(errno) => Err(errno.into()),
    }
}

fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no group {group:?}"),
        )),
        Err(errno) => Err(errno.into()),
    }
}

/// Binds every listener, then serves each on its own task until `stop`
/// turns `true`. A listener that cannot be bound stops the agent before it
/// does anything else, naming the address.
pub async fn start(
    listeners: &[Listener],
    metrics_listen: Option<SocketAddr>,
    api: &Api,
) -> Result<Vec<JoinHandle<()>>> {
    let mut bound = Vec::new();
    for listener in listeners {
        bound.push((bind(listener).await?, router(listener, api)));
    }
    if let Some(addr) = metrics_listen {
        let listener = Listener {
            address: ListenAddress::Tcp(addr.to_string()),
            tls: None,
            role: ListenerRole::MetricsOnly,
            enable_quit: false,
            require_request_header: false,
        };
        let app = metrics_router(Arc::clone(&api.metrics));
        bound.push((bind(&listener).await?, app));
    }
    let tasks = bound
        .into_iter()
        .map(|(bound, app)| {
            let mut stop = api.stop.subscribe();
            let shutdown = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            info!(address = bound.address(), "listening");
            tokio::spawn(async move {
                let address = bound.address().to_owned();
                if let Err(err) = bound.serve(app, shutdown).await {
                    warn!("listener on {address} stopped: {err}");
                }
            })
        })
        .collect();
    Ok(tasks)
}

/// Waits for the listeners started by [`start`] to finish their requests,
/// for at most [`DRAIN`] and a little more.
pub async fn drained(tasks: Vec<JoinHandle<()>>) {
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(DRAIN + Duration::from_secs(1), all)
        .await
        .is_err()
    {
        warn!("listeners did not finish their requests within {DRAIN:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiProxy, Vault};
    use crate::vault;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn api() -> (Api, watch::Receiver<bool>) {
        let client = vault::Client::new(&Vault {
            address: Some("http://127.0.0.1:1".to_owned()),
            ..Vault::default()
        })
        .expect("client");
        let metrics = Arc::new(Metrics::new());
        let (stop, stopped) = watch::channel(false);
        let api = Api {
            proxy: Proxy::new(
                client,
                Some(ApiProxy::AutoAuthIfMissing),
                false,
                Arc::clone(&metrics),
            )
            .expect("proxy"),
            metrics,
            stop,
        };
        (api, stopped)
    }

    fn listener(role: ListenerRole, enable_quit: bool) -> Listener {
        Listener {
            address: ListenAddress::Tcp("127.0.0.1:0".to_owned()),
            tls: None,
            role,
            enable_quit,
            require_request_header: false,
        }
    }

    /// Status and body of `method path` sent to `app`.
    async fn call(app: &Router, method: Method, path: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn quit_stops_the_agent_on_post_only_when_enabled() {
        let (api, stopped) = api();
        let enabled = router(&listener(ListenerRole::Default, true), &api);
        let disabled = router(&listener(ListenerRole::Default, false), &api);

        assert_eq!(
            call(&disabled, Method::POST, "/agent/v1/quit").await,
            (StatusCode::NOT_FOUND, String::new())
        );
        assert_eq!(
            call(&enabled, Method::GET, "/agent/v1/quit").await,
            (StatusCode::METHOD_NOT_ALLOWED, String::new())
        );
        assert!(!*stopped.borrow(), "only POST quits");
        assert_eq!(
            call(&enabled, Method::POST, "/agent/v1/quit").await,
            (StatusCode::OK, String::new())
        );
        assert!(*stopped.borrow());
    }

    #[tokio::test]
    async fn answers_the_agent_api_as_bao_agent_does() {
        let (api, _stopped) = api();
        let app = router(&listener(ListenerRole::Default, false), &api);
        let (status, body) = call(&app, Method::GET, "/agent/v1/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(
            call(&app, Method::PUT, "/agent/v1/metrics").await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "{\"errors\":[]}\n".to_owned()
            )
        );
        assert_eq!(
            call(&app, Method::POST, "/agent/v1/cache-clear").await,
            (StatusCode::OK, String::new())
        );
    }

    #[tokio::test]
    async fn metrics_only_listener_serves_nothing_else() {
        let (api, _stopped) = api();
        let app = router(&listener(ListenerRole::MetricsOnly, true), &api);
        assert_eq!(
            call(&app, Method::GET, "/agent/v1/metrics").await.0,
            StatusCode::OK
        );
        for path in ["/agent/v1/quit", "/v1/secret/data/app", "/metrics"] {
            assert_eq!(
                call(&app, Method::POST, path).await,
                (StatusCode::NOT_FOUND, "404 page not found\n".to_owned()),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn keyhole_metrics_listener_answers_at_both_paths() {
        let app = metrics_router(Arc::new(Metrics::new()));
        for path in ["/metrics", "/agent/v1/metrics"] {
            let (status, body) = call(&app, Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                body.contains("keyhole_agent_since_last_render_seconds"),
                "{body}"
            );
        }
        assert_eq!(
            call(&app, Method::GET, "/v1/sys/health").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn required_request_header_guards_only_the_proxy() {
        let (api, _stopped) = api();
        let app = router(
            &Listener {
                require_request_header: true,
                ..listener(ListenerRole::Default, false)
            },
            &api,
        );
        assert_eq!(
            call(&app, Method::GET, "/v1/secret/data/app").await,
            (
                StatusCode::PRECONDITION_FAILED,
                "{\"errors\":[\"missing \\\"X-Vault-Request\\\" header\"]}\n".to_owned()
            )
        );
        assert_eq!(
            call(&app, Method::GET, "/agent/v1/metrics").await.0,
            StatusCode::OK
        );
    }

    /// A certificate for `localhost` and its key, written to `dir`.
    fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_file, certified.cert.pem()).expect("write");
        std::fs::write(&key_file, certified.signing_key.serialize_pem()).expect("write");
        (cert_file, key_file)
    }

    /// Starts a metrics-only TLS listener with `tls` and gives its port.
    async fn serve_tls(tls: ListenerTls) -> (u16, watch::Sender<bool>) {
        let listener = Listener {
            tls: Some(tls),
            ..listener(ListenerRole::MetricsOnly, false)
        };
        let bound = bind(&listener).await.expect("bind");
        let port = bound.local_addr().expect("TCP").port();
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(
            bound.serve(metrics_router(Arc::new(Metrics::new())), async move {
                let _ = stopped.wait_for(|s| *s).await;
            }),
        );
        (port, stop)
    }

    #[tokio::test]
    async fn requires_client_certificates_and_tls_versions_as_configured() {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        crate::crypto::install_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write");
            path
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let leaf = |name: &str| {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(vec![name.to_owned()])
                .expect("params")
                .signed_by(&key, &ca)
                .expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf("localhost");
        let (client_cert, client_key) = leaf("app");
        let ca_file = write("ca.pem", ca.pem());
        let mut tls = ListenerTls::new(
            write("server.pem", server_cert),
            write("server-key.pem", server_key),
        );
        tls.client_certs = ClientCerts::Required {
            ca_file: Some(ca_file.clone()),
        };
        tls.max_version = TlsVersion::Tls12;
        let (port, _stop) = serve_tls(tls).await;

        let ca = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA");
        let identity = reqwest::Identity::from_pem(format!("{client_cert}{client_key}").as_bytes())
            .expect("identity");
        let get = |client: reqwest::Client| async move {
            client
                .get(format!("https://localhost:{port}/agent/v1/metrics"))
                .send()
                .await
                .map(|response| response.status())
        };
        let client = || reqwest::Client::builder().add_root_certificate(ca.clone());
        assert!(
            get(client().build().expect("client")).await.is_err(),
            "a client without a certificate is refused"
        );
        let with_identity = client().identity(identity.clone()).build().expect("client");
        assert_eq!(get(with_identity).await.expect("answer"), StatusCode::OK);
        let only_tls13 = client()
            .identity(identity)
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .build()
            .expect("client");
        assert!(
            get(only_tls13).await.is_err(),
            "tls_max_version tls12 refuses a TLS 1.3 client"
        );
    }

    #[tokio::test]
    async fn a_client_ca_file_without_certificates_is_named() {
        crate::crypto::install_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert_file, key_file) = self_signed(dir.path());
        let ca_file = dir.path().join("empty.pem");
        std::fs::write(&ca_file, "").expect("write");
        let mut tls = ListenerTls::new(cert_file, key_file);
        tls.client_certs = ClientCerts::Required {
            ca_file: Some(ca_file.clone()),
        };
        let listener = Listener {
            tls: Some(tls),
            ..listener(ListenerRole::MetricsOnly, false)
        };
        let err = bind(&listener).await.err().expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "listener on 127.0.0.1:0: loading tls_client_ca_file {}: no CA certificate found",
                ca_file.display()
            )
        );
    }

    #[tokio::test]
    async fn serves_https_with_the_configured_certificate() {
        crate::crypto::install_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert_file, key_file) = self_signed(dir.path());
        let listener = Listener {
            tls: Some(crate::config::ListenerTls::new(cert_file.clone(), key_file)),
            ..listener(ListenerRole::MetricsOnly, false)
        };
        let bound = bind(&listener).await.expect("bind");
        let port = bound.local_addr().expect("TCP").port();
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(bound.serve(
            metrics_router(Arc::new(Metrics::new())),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));

        let client = vault::Client::new(&Vault {
            address: Some(format!("https://localhost:{port}")),
            ca_cert: Some(cert_file),
            ..Vault::default()
        })
        .expect("client");
        let response = vault::Forwarder::new(&client)
            .expect("forwarder")
            .send(
                Method::GET,
                "/agent/v1/metrics",
                axum::http::HeaderMap::new(),
                axum::body::Body::empty(),
            )
            .await
            .expect("HTTPS answer");
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert!(body.ends_with(b"# EOF\n"));

        stop.send_replace(true);
        server.await.expect("join").expect("clean shutdown");
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let listener = Listener {
            address: ListenAddress::Tcp(address.clone()),
            ..listener(ListenerRole::Default, false)
        };
        let err = bind(&listener).await.err().expect("address in use");
        assert!(
            err.to_string()
                .starts_with(&format!("listener on {address}: ")),
            "{err}"
        );
    }
}
