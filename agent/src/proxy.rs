//! The API proxy: the pod's other containers send their Vault requests to
//! the agent's listener, and get Vault's answer back unchanged.
//!
//! As in `bao agent`, the request goes to the same path below Vault's
//! address, with the app's headers and body; Vault's status, headers and body
//! come back as they are, streamed both ways (read whole when a `cache`
//! stanza gives the proxy a lease cache, see [`cache`]). With `api_proxy {
//! use_auto_auth_token }` a request gets the agent's own token: when it has
//! none (`true`) or always (`"force"`). The agent's token must not leak to
//! the app through a token lookup or renewal made with it, so `id`,
//! `accessor` and `client_token` are removed from those answers, as `bao
//! agent` does.
//!
//! Every container in the pod can reach the listener, so what a request may
//! cost is bounded: its body by [`MAX_BODY_BYTES`], its headers by the HTTP
//! server (see [`crate::listener`]).

use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{debug, warn};
use zeroize::Zeroizing;

use crate::config::ApiProxy;
use crate::metrics::{CacheResult, Metrics, ProxyOutcome};
use crate::vault::{self, Failure, Forwarder};

pub mod cache;

pub use cache::LeaseCache;

/// The largest request body forwarded, and the largest token answer read
/// to remove the agent's token from it: OpenBao's own default
/// `max_request_size`, so nothing Vault would accept is refused.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The token header.
const TOKEN_HEADER: &str = "x-vault-token";

/// Headers that describe one connection, not the request or response, and
/// so are not passed on (RFC 9110, section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The app's headers the proxy sets itself.
const SET_BY_PROXY: &[&str] = &[
    "host",
    "content-length",
    // The app gets the body as Vault sent it, never re-encoded, so the
    // request must not ask for a compressed one the agent cannot decode.
    "accept-encoding",
    TOKEN_HEADER,
    "user-agent",
];

/// Token endpoints whose answer describes the token they were called with.
const TOKEN_ENDPOINTS: &[&str] = &[
    "auth/token/lookup-self",
    "auth/token/renew-self",
    "auth/token/lookup",
    "auth/token/renew",
];

/// Forwards the app's requests to Vault. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    client: vault::Client,
    forwarder: Arc<Forwarder>,
    api_proxy: ApiProxy,
    cache: Option<LeaseCache>,
    metrics: Arc<Metrics>,
}

impl Proxy {
    /// A proxy sending through `client`, whose token is the agent's own,
    /// with `api_proxy`'s token rule (none given: the app's token only),
    /// and a lease cache if `cached` (a `cache` stanza is given).
    pub fn new(
        client: vault::Client,
        api_proxy: Option<ApiProxy>,
        cached: bool,
        metrics: Arc<Metrics>,
    ) -> vault::Result<Self> {
        let api_proxy = api_proxy.unwrap_or(ApiProxy::AppToken);
        let cache =
            cached.then(|| LeaseCache::new(client.clone(), api_proxy.uses_auto_auth_token()));
        Ok(Self {
            forwarder: Arc::new(Forwarder::new(&client)?),
            client,
            api_proxy,
            cache,
            metrics,
        })
    }

    /// The lease cache, if the proxy has one.
    pub fn cache(&self) -> Option<&LeaseCache> {
        self.cache.as_ref()
    }

    /// The token a request goes to Vault with.
    fn token(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let app = headers.get(TOKEN_HEADER).filter(|value| !value.is_empty());
        match (self.api_proxy, app) {
            (ApiProxy::ForceAutoAuth, _) | (ApiProxy::AutoAuthIfMissing, None) => {
                self.agent_token()
            }
            (_, app) => app.cloned(),
        }
    }

    fn agent_token(&self) -> Option<HeaderValue> {
        let token = self.client.token()?;
        let mut value = HeaderValue::from_str(token.expose_secret()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// The handler: forwards `request` and answers with Vault's response.
pub async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    debug!(
        method = %parts.method,
        path = loggable(&path),
        "proxying a request to Vault"
    );
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let token = proxy.token(&parts.headers);
    let user_agent = user_agent(parts.headers.get(header::USER_AGENT));
    let headers = forwarded_headers(&parts.headers);
    if let Some(cache) = &proxy.cache {
        let sent = Sent {
            method: &parts.method,
            path_and_query,
            headers: &headers,
            token: token.as_ref(),
        };
        let outgoing = with_agent_headers(headers.clone(), user_agent, token.clone());
        return through_cache(&proxy, cache, sent, outgoing, body).await;
    }
    let outgoing = with_agent_headers(headers, user_agent, token);
    let body = if HttpBody::is_end_stream(&body) {
        Body::empty()
    } else {
        Body::new(Limited::new(body, MAX_BODY_BYTES))
    };
    let response = match proxy
        .forwarder
        .send(parts.method, path_and_query, outgoing, body)
        .await
    {
        Ok(response) => response,
        Err(Failure::TooLarge) => return too_large(),
        Err(Failure::Transport(reason)) => return failed(&proxy, &reason),
    };
    let (vault, body) = response.into_parts();
    let status = vault.status;
    let headers = answered(&proxy, &path, status, &vault.headers);
    if status == StatusCode::OK
        && proxy.api_proxy.uses_auto_auth_token()
        && is_token_endpoint(&path)
    {
        return token_answer(&proxy, status, headers, body).await;
    }
    let mut answer = Response::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    answer
}

/// The app's `headers` with the user agent and the token the request goes
/// to Vault with.
fn with_agent_headers(
    mut headers: HeaderMap,
    user_agent: HeaderValue,
    token: Option<HeaderValue>,
) -> HeaderMap {
    headers.insert(header::USER_AGENT, user_agent);
    if let Some(token) = token {
        headers.insert(TOKEN_HEADER, token);
    }
    headers
}

/// Counts Vault's answer, and gives the headers that go back to the app:
/// Vault's, marked as not served from the cache.
fn answered(proxy: &Proxy, path: &str, status: StatusCode, vault: &HeaderMap) -> HeaderMap {
    proxy.metrics.proxied(if status.as_u16() >= 400 {
        ProxyOutcome::VaultError
    } else {
        ProxyOutcome::Success
    });
    let mut headers = response_headers(vault);
    if is_success(status, path) {
        // bao agent's API proxy marks every answer it did not serve from
        // its cache.
        headers.insert("x-cache", HeaderValue::from_static("MISS"));
    }
    headers
}

/// What of a request went to Vault, besides its body.
struct Sent<'a> {
    method: &'a Method,
    path_and_query: &'a str,
    headers: &'a HeaderMap,
    token: Option<&'a HeaderValue>,
}

/// Answers a request through the lease cache: the kept answer if there is
/// one, otherwise Vault's, which the cache then takes note of. Both bodies
/// are read whole, since the cache needs them.
async fn through_cache(
    proxy: &Proxy,
    cache: &LeaseCache,
    sent: Sent<'_>,
    outgoing: HeaderMap,
    body: Body,
) -> Response {
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => return too_large(),
        Err(err) => return failed(proxy, &format!("reading the request: {err}")),
    };
    let token = sent.token.and_then(|token| token.to_str().ok());
    let request = cache::Request::new(sent.method, sent.path_and_query, sent.headers, token, &body);
    let _turn = cache.turn(&request).await;
    if let Some(hit) = cache.hit(&request) {
        proxy.metrics.proxied(ProxyOutcome::Success);
        proxy.metrics.cache_lookup(CacheResult::Hit);
        debug!(path = loggable(request.path), "answered from the cache");
        return hit;
    }
    let sent_body = if body.is_empty() {
        Body::empty()
    } else {
        Body::from(body.clone())
    };
    let response = match proxy
        .forwarder
        .send(
            sent.method.clone(),
            sent.path_and_query,
            outgoing,
            sent_body,
        )
        .await
    {
        Ok(response) => response,
        Err(Failure::TooLarge) => return too_large(),
        Err(Failure::Transport(reason)) => return failed(proxy, &reason),
    };
    let (vault, vault_body) = response.into_parts();
    let status = vault.status;
    let headers = answered(proxy, request.path, status, &vault.headers);
    let mut answer = cache::Answer {
        status,
        headers,
        body: Zeroizing::new(Vec::new()),
    };
    if let Err(reason) = read_whole(vault_body, &mut answer.body).await {
        return failed(proxy, &reason);
    }
    proxy.metrics.cache_lookup(CacheResult::Miss);
    cache.observe(&request, &answer);
    if status == StatusCode::OK
        && proxy.api_proxy.uses_auto_auth_token()
        && is_token_endpoint(request.path)
    {
        answer.body = without_agent_token(proxy, &mut answer.headers, answer.body);
    }
    let mut response = Response::new(Body::from(answer.body.to_vec()));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

/// Reads Vault's answer `body` into `whole`, up to [`MAX_BODY_BYTES`].
async fn read_whole(mut body: Body, whole: &mut Vec<u8>) -> Result<(), String> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| format!("the connection failed: {err}"))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if whole.len() + chunk.len() > MAX_BODY_BYTES {
            return Err("Vault's answer is too large".to_owned());
        }
        whole.extend_from_slice(&chunk);
    }
    Ok(())
}

/// Whether Vault's Go client counts `status` as success: what `bao agent`
/// marks as not served from its cache.
fn is_success(status: StatusCode, path: &str) -> bool {
    (200..400).contains(&status.as_u16())
        || (status == StatusCode::TOO_MANY_REQUESTS && path == "/v1/sys/health")
}

/// The app's headers that go on to Vault.
fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !is_hop_by_hop(name) && !SET_BY_PROXY.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Vault's headers that go back to the app.
fn response_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        if !is_hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// The agent's user agent, followed by the app's, as `bao agent` does.
fn user_agent(app: Option<&HeaderValue>) -> HeaderValue {
    let agent = concat!("keyhole-agent/", env!("CARGO_PKG_VERSION"), " API proxy");
    let text = match app.and_then(|value| value.to_str().ok()) {
        Some(app) if !app.is_empty() => format!("{agent}; {app}"),
        _ => agent.to_owned(),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(agent))
}

/// The part of a request path that may be logged: up to its third segment
/// (`/v1/auth/token`). Deeper segments can be values: the app chooses the
/// path, and `auth/token/lookup/<token>` takes a token in it.
fn loggable(path: &str) -> &str {
    match path.match_indices('/').nth(3) {
        Some((end, _)) => &path[..end],
        None => path,
    }
}

/// 413, as Vault answers a body over its `max_request_size`.
fn too_large() -> Response {
    errors(
        StatusCode::PAYLOAD_TOO_LARGE,
        "http: request body too large".to_owned(),
    )
}

/// 500 for a request Vault did not answer, worded as `bao agent` words it.
fn failed(proxy: &Proxy, reason: &str) -> Response {
    proxy.metrics.proxied(ProxyOutcome::Error);
    warn!("a proxied request got no answer from Vault: {reason}");
    errors(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("failed to get the response: {reason}"),
    )
}

/// An error answer in Vault's format, `{"errors":["..."]}`.
pub fn errors(status: StatusCode, message: String) -> Response {
    #[derive(Serialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let mut body = serde_json::to_vec(&Errors {
        errors: vec![message],
    })
    .unwrap_or_default();
    // Go's encoder, which Vault's answers come from, ends with a newline.
    body.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Whether `path` is a token endpoint, in the root or any namespace.
fn is_token_endpoint(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    TOKEN_ENDPOINTS.iter().any(|endpoint| {
        rest == *endpoint
            || rest
                .strip_suffix(endpoint)
                .is_some_and(|namespace| namespace.ends_with('/'))
    })
}

/// Vault's answer to a token lookup or renewal, with the agent's token and
/// its accessor removed when the answer describes that token.
async fn token_answer(
    proxy: &Proxy,
    status: StatusCode,
    mut headers: HeaderMap,
    vault_body: Body,
) -> Response {
    let mut body = Zeroizing::new(Vec::new());
    if let Err(reason) = read_whole(vault_body, &mut body).await {
        return failed(proxy, &reason);
    }
    let body = without_agent_token(proxy, &mut headers, body);
    let mut answer = Response::new(Body::from(body.to_vec()));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    answer
}

/// A token answer's `body` without the agent's token and its accessor, if
/// it describes that token, with `headers`' length to match.
fn without_agent_token(
    proxy: &Proxy,
    headers: &mut HeaderMap,
    body: Zeroizing<Vec<u8>>,
) -> Zeroizing<Vec<u8>> {
    let agent_token = proxy.client.token();
    match agent_token.and_then(|token| strip_token(&body, token.expose_secret())) {
        Some(stripped) => {
            debug!("removed the agent's token from a token answer");
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(stripped.len()));
            stripped
        }
        None => body,
    }
}

/// Vault's secret envelope, with the fields in the order Vault's Go client
/// writes them, so the answer reads as `bao agent`'s.
#[derive(Deserialize, Serialize)]
struct Envelope {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    lease_id: String,
    #[serde(default)]
    lease_duration: i64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<AuthBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrap_info: Option<Value>,
}

/// The `auth` block, in the Go client's field order.
#[derive(Deserialize, Serialize)]
struct AuthBlock {
    #[serde(default)]
    client_token: String,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    token_policies: Option<Vec<String>>,
    #[serde(default)]
    identity_policies: Option<Vec<String>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    orphan: bool,
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    lease_duration: i64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    mfa_requirement: Option<Value>,
}

/// The answer without `token`'s id, accessor and client token, if it
/// describes `token`; `None` leaves the answer as Vault sent it.
fn strip_token(body: &[u8], token: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut envelope: Envelope = serde_json::from_slice(body).ok()?;
    let data_token = envelope
        .data
        .as_ref()
        .and_then(|data| data.get("id"))
        .and_then(Value::as_str);
    if data_token == Some(token) {
        if let Some(data) = envelope.data.as_mut() {
            for key in ["id", "accessor"] {
                if let Some(value) = data.remove(key) {
                    wipe(value);
                }
            }
        }
    } else if let Some(auth) = envelope.auth.as_mut().filter(|a| a.client_token == token) {
        zeroize::Zeroize::zeroize(&mut auth.client_token);
        zeroize::Zeroize::zeroize(&mut auth.accessor);
    } else {
        return None;
    }
    envelope.data = envelope.data.map(sorted_map);
    let text = Zeroizing::new(serde_json::to_string(&envelope).ok()?);
    Some(Zeroizing::new(go_escaped(&text).into_bytes()))
}

/// `map` with its keys, and those of every object in it, in byte order, as
/// Go writes maps, whichever order `serde_json` keeps.
fn sorted_map(map: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    entries
        .into_iter()
        .map(|(key, value)| (key, sorted(value)))
        .collect()
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(sorted_map(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Wipes a string value taken out of an answer.
fn wipe(value: Value) {
    if let Value::String(mut text) = value {
        zeroize::Zeroize::zeroize(&mut text);
    }
}

/// JSON text as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029
/// escaped. They only ever appear inside strings, so replacing them
/// everywhere is exact.
fn go_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_no_path_segment_that_can_hold_a_value() {
        assert_eq!(loggable("/v1/auth/token/lookup/s.secret"), "/v1/auth/token");
        assert_eq!(loggable("/v1/secret/data/app"), "/v1/secret/data");
        assert_eq!(loggable("/v1/sys/health"), "/v1/sys/health");
        assert_eq!(loggable("/"), "/");
    }

    #[test]
    fn recognises_token_endpoints_in_any_namespace() {
        assert!(is_token_endpoint("/v1/auth/token/lookup-self"));
        assert!(is_token_endpoint("/v1/team-a/auth/token/renew-self"));
        assert!(is_token_endpoint("/v1/auth/token/lookup/"));
        assert!(!is_token_endpoint("/v1/auth/token/lookup-accessor"));
        assert!(!is_token_endpoint("/v1/secret/data/auth/token/lookupx"));
        assert!(!is_token_endpoint("/auth/token/lookup-self"));
    }

    #[test]
    fn strips_the_agent_token_from_a_lookup_as_go_writes_it() {
        let body = br#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"id":"s.agent","accessor":"acc","policies":["a<b"],"ttl":60},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"token"}"#;
        let stripped = strip_token(body, "s.agent").expect("the lookup describes the token");
        assert_eq!(
            String::from_utf8_lossy(&stripped),
            r#"{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":{"policies":["a\u003cb"],"ttl":60},"warnings":null}"#
        );
        assert!(strip_token(body, "s.other").is_none());
    }

    #[test]
    fn strips_the_agent_token_from_a_renewal() {
        let body = br#"{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":null,"warnings":null,"auth":{"client_token":"s.agent","accessor":"acc","policies":["default"],"token_policies":["default"],"metadata":null,"lease_duration":60,"renewable":true,"entity_id":"","token_type":"service","orphan":true,"mfa_requirement":null,"num_uses":0}}"#;
        let stripped = strip_token(body, "s.agent").expect("the renewal describes the token");
        let text = String::from_utf8_lossy(&stripped);
        assert_eq!(
            text,
            r#"{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":null,"auth":{"client_token":"","accessor":"","policies":["default"],"token_policies":["default"],"identity_policies":null,"metadata":null,"orphan":true,"entity_id":"","lease_duration":60,"renewable":true,"mfa_requirement":null}}"#
        );
    }

    #[test]
    fn drops_connection_headers_and_keeps_the_rest() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close"));
        headers.insert("x-vault-token", HeaderValue::from_static("s.app"));
        headers.insert("x-vault-namespace", HeaderValue::from_static("team-a"));
        headers.insert("accept-encoding", HeaderValue::from_static("gzip"));
        let forwarded = forwarded_headers(&headers);
        assert_eq!(forwarded.len(), 1);
        assert_eq!(forwarded["x-vault-namespace"], "team-a");
    }

    #[test]
    fn agent_user_agent_comes_first() {
        let app = HeaderValue::from_static("curl/8.0");
        assert_eq!(
            user_agent(Some(&app)),
            concat!(
                "keyhole-agent/",
                env!("CARGO_PKG_VERSION"),
                " API proxy; curl/8.0"
            )
        );
    }
}
