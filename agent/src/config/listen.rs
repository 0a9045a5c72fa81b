//! The `listener`, `api_proxy` and `cache` stanzas: where the agent serves
//! the pod's other containers, and what it does with their Vault requests.
//!
//! What is accepted, refused and defaulted follows `bao agent` (OpenBao
//! 2.7): its listener keys come from Vault's shared listener config, most of
//! which the agent's own HTTP server never reads, so those are accepted with
//! a warning; TLS settings keyhole cannot honour are refused by name.

use std::path::PathBuf;

use serde_json::Value;

use super::Result;
use super::stanza::{Stanza, invalid};

/// The address of a TCP listener without `address`, as in `bao agent`.
pub const DEFAULT_TCP_ADDRESS: &str = "127.0.0.1:8200";

/// The `listener`, `api_proxy` and `cache` stanzas.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listen {
    /// Where the agent listens, in the order given.
    pub listeners: Vec<Listener>,
    /// `api_proxy`, or the legacy `cache { use_auto_auth_token }` that
    /// `bao agent` reads as one.
    pub api_proxy: Option<ApiProxy>,
    /// The `cache` stanza, if given: the API proxy keeps leases and tokens
    /// ([`crate::proxy::cache`]).
    pub cache: Option<Cache>,
}

/// The `cache { }` stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cache {
    /// `persist "kubernetes" { }`: where the agent keeps its token and
    /// leases for the next agent process of the pod.
    pub persist: Option<Persist>,
}

/// `cache { persist "kubernetes" { ... } }`, the only persist type Vault
/// Agent has.
#[derive(Debug, Clone, PartialEq)]
pub struct Persist {
    /// The directory of the persisted state.
    pub path: PathBuf,
    /// Whether a state found at start stays, and is kept current, or is
    /// removed once read.
    pub keep_after_import: bool,
    /// Whether a state that cannot be read stops the agent instead of
    /// being set aside with a warning.
    pub exit_on_err: bool,
    /// The Kubernetes service account token that binds the state to the
    /// pod's identity; `None` is Kubernetes's default path.
    pub service_account_token_file: Option<PathBuf>,
}

/// Where Kubernetes mounts the pod's service account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// One `listener "tcp"` or `listener "unix"` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// The socket to listen on.
    pub address: ListenAddress,
    /// Certificate and key to serve HTTPS with; `None` with `tls_disable`.
    pub tls: Option<ListenerTls>,
    /// `role`: everything, or only `/agent/v1/metrics`.
    pub role: ListenerRole,
    /// `agent_api { enable_quit }`: serve `POST /agent/v1/quit`.
    pub enable_quit: bool,
    /// `require_request_header`: proxied requests must carry
    /// `X-Vault-Request: true`, a guard against server-side request forgery.
    pub require_request_header: bool,
}

/// Where a listener listens.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenAddress {
    /// `listener "tcp" { address = "host:port" }`.
    Tcp(String),
    /// `listener "unix" { address = "/path" }`.
    Unix {
        /// The socket file.
        path: PathBuf,
        /// `socket_mode`, `socket_user` and `socket_group`, which `bao
        /// agent` applies only when all three are given.
        owner: Option<SocketOwner>,
    },
}

/// File mode and owner of a Unix socket.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketOwner {
    /// `socket_mode`, octal.
    pub mode: u32,
    /// `socket_user`: a user name or numeric id.
    pub user: String,
    /// `socket_group`: a group name or numeric id.
    pub group: String,
}

/// A listener's TLS settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTls {
    /// `tls_cert_file`: PEM certificate chain, the server's certificate
    /// first.
    pub cert_file: PathBuf,
    /// `tls_key_file`: PEM private key of the certificate.
    pub key_file: PathBuf,
    /// `tls_min_version`: the oldest TLS version served.
    pub min_version: TlsVersion,
    /// `tls_max_version`: the newest TLS version served.
    pub max_version: TlsVersion,
    /// Whether clients must present a certificate.
    pub client_certs: ClientCerts,
}

/// Whether a TLS listener requires client certificates.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCerts {
    /// None is asked for.
    NotRequired,
    /// `tls_require_and_verify_client_cert`: clients must present one,
    /// issued by a CA in `tls_client_ca_file`, or by one the system trusts
    /// when it is not given, as in `bao agent`.
    Required {
        /// `tls_client_ca_file`.
        ca_file: Option<PathBuf>,
    },
}

impl ListenerTls {
    /// Serves with `cert_file` and `key_file`, Vault's defaults otherwise:
    /// TLS 1.2 and 1.3, no client certificate.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            cert_file,
            key_file,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            client_certs: ClientCerts::NotRequired,
        }
    }
}

/// A TLS version a listener serves. keyhole's TLS library speaks 1.2 and
/// 1.3 only; TLS 1.0 and 1.1 are broken and no current client needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2, `tls12`.
    Tls12,
    /// TLS 1.3, `tls13`.
    Tls13,
}

impl TlsVersion {
    /// The name Vault's config gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls12 => "tls12",
            Self::Tls13 => "tls13",
        }
    }
}

/// `listener.role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerRole {
    /// The API proxy and the agent's API.
    Default,
    /// `metrics_only`: only `GET /agent/v1/metrics`.
    MetricsOnly,
}

/// `api_proxy { use_auto_auth_token }`: whether proxied requests get the
/// agent's own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiProxy {
    /// `false`: requests go to Vault with the app's token, or none.
    AppToken,
    /// `true`: a request without `X-Vault-Token` gets the agent's token.
    AutoAuthIfMissing,
    /// `"force"`: every request gets the agent's token, replacing the app's.
    ForceAutoAuth,
}

impl ApiProxy {
    /// Whether some requests get the agent's token.
    pub fn uses_auto_auth_token(self) -> bool {
        self != Self::AppToken
    }
}

/// Listener settings `bao agent` reads that keyhole does not implement:
/// each changes what a client can connect with, so it is refused rather
/// than served differently.
const UNSUPPORTED_LISTENER: &[&str] = &[
    "tls_cipher_suites",
    "tls_key_exchange_preferences",
    "tls_auto_reload",
    "tls_auto_reload_interval",
    "tls_acme_cache_path",
    "tls_acme_ca_directory",
    "tls_acme_test_ca_directory",
    "tls_acme_ca_root",
    "tls_acme_eab_key_id",
    "tls_acme_eab_mac_key",
    "tls_acme_key_type",
    "tls_acme_email",
    "tls_acme_domains",
    "tls_acme_disable_http_challenge",
    "tls_acme_disable_alpn_challenge",
];

/// Why `bao agent` ignores the listener keys Vault's server reads.
const SERVER_ONLY: &str = "only OpenBao's server reads it; bao agent ignores it";

/// Listener keys of Vault's shared listener config that `bao agent`'s own
/// HTTP server never reads.
const IGNORED_LISTENER: &[(&str, &str)] = &[
    ("cluster_address", SERVER_ONLY),
    ("purpose", SERVER_ONLY),
    ("max_request_size", SERVER_ONLY),
    ("max_request_duration", SERVER_ONLY),
    ("max_request_json_memory", SERVER_ONLY),
    ("max_request_json_strings", SERVER_ONLY),
    ("http_read_timeout", SERVER_ONLY),
    ("http_read_header_timeout", SERVER_ONLY),
    ("http_write_timeout", SERVER_ONLY),
    ("http_idle_timeout", SERVER_ONLY),
    ("proxy_protocol_behavior", SERVER_ONLY),
    ("proxy_protocol_authorized_addrs", SERVER_ONLY),
    ("x_forwarded_for_authorized_addrs", SERVER_ONLY),
    ("x_forwarded_for_hop_skips", SERVER_ONLY),
    ("x_forwarded_for_reject_not_present", SERVER_ONLY),
    ("x_forwarded_for_reject_not_authorized", SERVER_ONLY),
    ("cors_enabled", SERVER_ONLY),
    ("cors_allowed_origins", SERVER_ONLY),
    ("cors_allowed_headers", SERVER_ONLY),
    ("custom_response_headers", SERVER_ONLY),
    ("telemetry", SERVER_ONLY),
    ("profiling", SERVER_ONLY),
    ("inflight_requests_logging", SERVER_ONLY),
    ("proxy_api", "it configures bao proxy, not bao agent"),
    (
        "tls_disable_client_certs",
        "keyhole asks clients for a certificate only with tls_require_and_verify_client_cert",
    ),
];

/// Why `bao agent` ignores these `api_proxy` keys.
const ENTERPRISE_ONLY: &str = "a Vault Enterprise setting that bao agent ignores";

const IGNORED_API_PROXY: &[(&str, &str)] = &[
    ("enforce_consistency", ENTERPRISE_ONLY),
    ("when_inconsistent", ENTERPRISE_ONLY),
];

/// What the top level holds besides these stanzas, for the checks that
/// span stanzas.
pub(super) struct Context {
    /// Whether an `auto_auth` stanza was given.
    pub has_auto_auth: bool,
    /// Whether its method logs in response-wrapped (`wrap_ttl`), which
    /// leaves the agent without a token to lend.
    pub auto_auth_wraps: bool,
    /// Whether the config renders templates (`template` or `env_template`).
    pub has_templates: bool,
}

/// Reads the `listener`, `api_proxy` and `cache` stanzas from the top level
/// and checks them against each other and `context`, as `bao agent` does.
pub(super) fn listen(top: &mut Stanza, context: &Context) -> Result<Listen> {
    let listeners = top
        .repeated("listener")?
        .into_iter()
        .map(listener)
        .collect::<Result<Vec<_>>>()?;
    let api_proxy = top
        .single("api_proxy")?
        .map(|s| auto_auth_token_block(s, IGNORED_API_PROXY))
        .transpose()?;
    let cache = top.single("cache")?.map(cache).transpose()?;
    let cache_proxy = cache.as_ref().and_then(|(_, proxy)| *proxy);
    let token_key = if api_proxy.is_some() {
        "api_proxy.use_auto_auth_token"
    } else {
        "cache.use_auto_auth_token"
    };

    let api_proxy = match (api_proxy, cache_proxy) {
        (Some(Some(_)), Some(_)) => {
            return Err(invalid(
                "cache.use_auto_auth_token",
                "use_auto_auth_token is given in both api_proxy and cache; remove it from cache",
            ));
        }
        // An api_proxy without the key takes only "force" from cache, and
        // force without use_auto_auth_token strips the app's token and
        // sends none: a mode no one configures on purpose.
        (Some(None), Some(ApiProxy::ForceAutoAuth)) => {
            return Err(invalid(
                "cache.use_auto_auth_token",
                "keyhole does not support \"force\" in cache together with an api_proxy that does not set use_auto_auth_token: set it in api_proxy",
            ));
        }
        (Some(proxy), _) => Some(proxy.unwrap_or(ApiProxy::AppToken)),
        // bao agent reads cache { use_auto_auth_token } as an api_proxy.
        (None, Some(proxy)) if proxy.uses_auto_auth_token() => Some(proxy),
        (None, _) => None,
    };
    let listen = Listen {
        listeners,
        api_proxy,
        cache: cache.map(|(cache, _)| cache),
    };
    check(&listen, context, token_key)?;
    Ok(listen)
}

/// The checks `bao agent` makes once the whole config is read.
/// `token_key` names where `use_auto_auth_token` was set.
fn check(listen: &Listen, context: &Context, token_key: &str) -> Result<()> {
    if let Some(cache) = &listen.cache {
        if listen.listeners.is_empty() && !context.has_templates {
            return Err(invalid(
                "cache",
                "enabling the cache requires at least one template or one listener",
            ));
        }
        if cache.persist.is_some() && !context.has_auto_auth {
            // keyhole persists the agent's token and the templates' leases,
            // not the API proxy's cache, so without a token of its own the
            // agent has nothing to keep. bao agent accepts this.
            tracing::warn!("cache.persist keeps nothing without an auto_auth stanza");
        }
    }
    if let Some(proxy) = listen.api_proxy {
        if listen.listeners.is_empty() {
            return Err(invalid(
                "api_proxy",
                "configuring the api_proxy requires at least one listener",
            ));
        }
        if proxy.uses_auto_auth_token() && !context.has_auto_auth {
            return Err(invalid(
                token_key,
                "is true but there is no auto_auth stanza",
            ));
        }
        if proxy.uses_auto_auth_token() && context.auto_auth_wraps {
            return Err(invalid(
                token_key,
                "is true but auto_auth.method sets wrap_ttl: the agent then holds only a wrapped token, which it cannot lend",
            ));
        }
    }
    Ok(())
}

/// The `cache` stanza and the `use_auto_auth_token` it may hold.
fn cache(mut s: Stanza) -> Result<(Cache, Option<ApiProxy>)> {
    let persist = s.single("persist")?.map(persist).transpose()?;
    let proxy = auto_auth_token_block(s, &[])?;
    Ok((Cache { persist }, proxy))
}

/// `persist "kubernetes" { }`, or `persist { type = "kubernetes" }`.
fn persist(s: Stanza) -> Result<Persist> {
    let path = s.path().to_owned();
    let (kind, mut s) = super::parse::typed_block(s, |kind| format!("{path} {kind:?}"))?;
    if !kind.eq_ignore_ascii_case("kubernetes") {
        return Err(s.error(format!(
            "persistent cache type {kind:?} is not supported (expected \"kubernetes\")"
        )));
    }
    let persist = Persist {
        path: s.required_path("path")?,
        keep_after_import: s.bool_or_string("keep_after_import", false)?,
        exit_on_err: s.bool_or_string("exit_on_err", false)?,
        service_account_token_file: s.path_buf("service_account_token_file")?,
    };
    s.finish_lenient(&[], &[])?;
    Ok(persist)
}

/// The `use_auto_auth_token` of an `api_proxy` or `cache` block, if given.
fn auto_auth_token_block(mut s: Stanza, ignored: &[(&str, &str)]) -> Result<Option<ApiProxy>> {
    let at = s.at("use_auto_auth_token");
    let proxy = s
        .take("use_auto_auth_token")
        .map(|value| use_auto_auth_token(value, &at))
        .transpose()?;
    s.finish_lenient(&[], ignored)?;
    Ok(proxy)
}

/// `true`/`false` as Go's `strconv.ParseBool` spells them, or `"force"` in
/// any case.
fn use_auto_auth_token(value: Value, at: &str) -> Result<ApiProxy> {
    let from_bool = |b| {
        if b {
            ApiProxy::AutoAuthIfMissing
        } else {
            ApiProxy::AppToken
        }
    };
    match &value {
        Value::Bool(b) => Ok(from_bool(*b)),
        Value::String(text) => match super::parse_bool(text) {
            Some(b) => Ok(from_bool(b)),
            None if text.eq_ignore_ascii_case("force") => Ok(ApiProxy::ForceAutoAuth),
            None => Err(invalid(
                at,
                format!("can be true, false or \"force\"; {text:?} is none of them"),
            )),
        },
        _ => Err(invalid(at, "can be true, false or \"force\"")),
    }
}

fn listener(s: Stanza) -> Result<Listener> {
    let path = s.path().to_owned();
    let (kind, mut s) = super::parse::typed_block(s, |kind| format!("{path} {kind:?}"))?;
    let role_at = s.at("role");
    let role = match s.string("role")?.as_deref() {
        None | Some("default") => ListenerRole::Default,
        Some("metrics_only") => ListenerRole::MetricsOnly,
        Some(other) => {
            return Err(invalid(
                &role_at,
                format!(
                    "unsupported listener role {other:?} (expected \"default\" or \"metrics_only\")"
                ),
            ));
        }
    };
    let address_at = s.at("address");
    let address = match kind.to_ascii_lowercase().as_str() {
        "tcp" => {
            let address = s
                .string("address")?
                .unwrap_or_else(|| DEFAULT_TCP_ADDRESS.to_owned());
            check_tcp_address(&address, &address_at)?;
            ListenAddress::Tcp(address)
        }
        "unix" => ListenAddress::Unix {
            path: s.required_path("address")?,
            owner: socket_owner(&mut s)?,
        },
        other => {
            return Err(s.error(format!(
                "unsupported listener type {other:?} (expected \"tcp\" or \"unix\")"
            )));
        }
    };
    let tls_disable = s.bool_or_string("tls_disable", false)?;
    let cert_file = s.path_buf("tls_cert_file")?;
    let key_file = s.path_buf("tls_key_file")?;
    let tls = match (tls_disable, cert_file, key_file) {
        // bao agent reads no other TLS setting of a listener without TLS.
        (true, _, _) => {
            for key in TLS_SETTINGS {
                s.take(key);
            }
            None
        }
        (false, Some(cert_file), Some(key_file)) => {
            Some(listener_tls(&mut s, ListenerTls::new(cert_file, key_file))?)
        }
        (false, _, _) => {
            return Err(s.error(
                "keyhole does not support TLS without tls_cert_file and tls_key_file: give both, or set tls_disable = true",
            ));
        }
    };
    let enable_quit = match s.single("agent_api")? {
        Some(mut api) => {
            let enable_quit = api.bool("enable_quit", false)?;
            api.finish_lenient(&[], &[])?;
            enable_quit
        }
        None => false,
    };
    let require_request_header = s.bool_or_string("require_request_header", false)?;
    s.finish_lenient(UNSUPPORTED_LISTENER, IGNORED_LISTENER)?;
    Ok(Listener {
        address,
        tls,
        role,
        enable_quit,
        require_request_header,
    })
}

/// The TLS settings besides the certificate and key.
const TLS_SETTINGS: [&str; 5] = [
    "tls_min_version",
    "tls_max_version",
    "tls_require_and_verify_client_cert",
    "tls_client_ca_file",
    "tls_disable_client_certs",
];

/// `tls` with the versions and client certificates the listener asks for.
fn listener_tls(s: &mut Stanza, mut tls: ListenerTls) -> Result<ListenerTls> {
    let min_at = s.at("tls_min_version");
    if let Some(min) = s.string("tls_min_version")? {
        tls.min_version = match tls_version(&min, &min_at)? {
            Some(version) => version,
            None => {
                tracing::warn!(
                    "{min_at}: keyhole serves TLS 1.2 and 1.3 only, so {min:?} serves from TLS 1.2"
                );
                TlsVersion::Tls12
            }
        };
    }
    let max_at = s.at("tls_max_version");
    if let Some(max) = s.string("tls_max_version")? {
        tls.max_version = tls_version(&max, &max_at)?.ok_or_else(|| {
            invalid(
                &max_at,
                format!("keyhole serves TLS 1.2 and 1.3 only, so it cannot serve up to {max:?}"),
            )
        })?;
    }
    if tls.min_version > tls.max_version {
        return Err(invalid(
            &min_at,
            format!(
                "{:?} is above tls_max_version {:?}: no client could connect",
                tls.min_version.as_str(),
                tls.max_version.as_str()
            ),
        ));
    }
    let require_at = s.at("tls_require_and_verify_client_cert");
    let require = s.bool_or_string("tls_require_and_verify_client_cert", false)?;
    let ca_file = s.path_buf("tls_client_ca_file")?;
    if require && s.bool_or_string("tls_disable_client_certs", false)? {
        return Err(invalid(
            &require_at,
            "tls_disable_client_certs and tls_require_and_verify_client_cert are mutually exclusive",
        ));
    }
    // bao agent reads the CA file only when client certificates are required.
    if require {
        tls.client_certs = ClientCerts::Required { ca_file };
    }
    Ok(tls)
}

/// The TLS version Vault's config names `text`; `None` for TLS 1.0 and
/// 1.1, which keyhole does not serve.
fn tls_version(text: &str, at: &str) -> Result<Option<TlsVersion>> {
    match text {
        "tls10" | "tls11" => Ok(None),
        "tls12" => Ok(Some(TlsVersion::Tls12)),
        "tls13" => Ok(Some(TlsVersion::Tls13)),
        other => Err(invalid(
            at,
            format!("{other:?} is not supported: expected one of tls10, tls11, tls12, tls13"),
        )),
    }
}

/// A `host:port` address; go-sockaddr templates are not evaluated.
fn check_tcp_address(address: &str, at: &str) -> Result<()> {
    if address.contains("{{") {
        return Err(invalid(
            at,
            "keyhole does not support go-sockaddr templates in listener addresses",
        ));
    }
    let port = address
        .rsplit_once(':')
        .map(|(_, port)| port.parse::<u16>());
    match port {
        Some(Ok(_)) => Ok(()),
        _ => Err(invalid(
            at,
            format!("{address:?} is not a host and port such as \"127.0.0.1:8200\""),
        )),
    }
}

/// `socket_mode`, `socket_user` and `socket_group`, applied only when all
/// three are given, as in `bao agent`.
fn socket_owner(s: &mut Stanza) -> Result<Option<SocketOwner>> {
    let mode_at = s.at("socket_mode");
    let mode = s.string("socket_mode")?;
    let user = s.string("socket_user")?;
    let group = s.string("socket_group")?;
    let (Some(mode), Some(user), Some(group)) = (mode, user, group) else {
        return Ok(None);
    };
    let mode = u32::from_str_radix(&mode, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .ok_or_else(|| invalid(&mode_at, format!("{mode:?} is not an octal file mode")))?;
    Ok(Some(SocketOwner { mode, user, group }))
}
