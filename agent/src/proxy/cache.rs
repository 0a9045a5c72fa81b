//! The API proxy's lease cache, the `cache { }` stanza, with `bao agent`'s
//! meaning:
//!
//! - An answer that carries a renewable lease obtained with a token the
//!   cache manages, or a renewable token (a login, `auth/token/create`), is
//!   kept. The same request again (method, path, query, headers, body and
//!   token alike) gets the kept answer, marked `X-Cache: HIT` with its
//!   `Age`, instead of a new lease or token from Vault. Everything else (KV
//!   reads, writes, errors) passes through.
//! - The cache renews what it keeps, with the token that obtained it, on the
//!   schedule the templates' leases follow ([`crate::lease`]). It forgets an
//!   answer when a renewal fails or its max TTL is near, so that the next
//!   request gets a new lease.
//! - Tokens form a tree. The agent's own token (with `api_proxy {
//!   use_auto_auth_token }`) and tokens created as orphans (logins) through
//!   the proxy are roots; a lease belongs to the token that obtained it, a
//!   child token to its parent. Forgetting a token forgets what is below it.
//! - A revocation through the proxy (`auth/token/revoke`, `revoke-self`,
//!   `revoke-accessor`, `revoke-orphan`, `sys/leases/revoke`,
//!   `revoke-prefix`, `revoke-force`) forgets what it revoked, and
//!   `/agent/v1/cache-clear` forgets by `request_path`, `lease`, `token`,
//!   `token_accessor` or `all`.
//!
//! Any container of the pod can fill the cache, so it keeps at most
//! [`MAX_ENTRIES`] answers and [`MAX_BYTES`] of their bodies; beyond that
//! answers pass through as if not cacheable. Tokens are indexed by their
//! SHA-256, so the index holds none in clear; the kept answers, which hold
//! tokens and credentials, are wiped when forgotten.
//!
//! The entries live in memory only: `cache { persist }` keeps the agent's
//! own token and the templates' leases ([`crate::persist`]), not what went
//! through the proxy.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::lease::{self, Lifetime, SecretAction, TokenAction};
use crate::vault::{self, Token};

/// The most answers the cache keeps.
pub const MAX_ENTRIES: usize = 10_000;

/// The most bytes of answer bodies the cache keeps.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The namespace of a request without `X-Vault-Namespace`, as `bao agent`
/// names it in `cache-clear`.
const ROOT_NAMESPACE: &str = "root/";

/// A SHA-256 digest: of a request, which identifies its kept answer, or of
/// a token.
type Digest = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Digest {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        // The length first, so that no two different splits of the same
        // bytes give the same digest.
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut digest = [0; 32];
    digest.copy_from_slice(context.finish().as_ref());
    digest
}

/// A proxied request, as the cache sees it.
pub struct Request<'a> {
    /// The request's path, e.g. `/v1/database/creds/app`.
    pub path: &'a str,
    /// `X-Vault-Namespace`, if sent.
    pub namespace: Option<&'a str>,
    /// The token the request went to Vault with.
    pub token: Option<&'a str>,
    /// The body sent.
    pub body: &'a [u8],
    digest: Digest,
}

impl<'a> Request<'a> {
    /// The request that goes to Vault as `method path_and_query` with
    /// `headers` (those passed on, without the token), `token` and `body`.
    pub fn new(
        method: &Method,
        path_and_query: &'a str,
        headers: &'a HeaderMap,
        token: Option<&'a str>,
        body: &'a [u8],
    ) -> Self {
        let mut names: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        names.sort();
        let mut parts: Vec<&[u8]> = vec![method.as_str().as_bytes(), path_and_query.as_bytes()];
        for (name, value) in &names {
            parts.push(name.as_bytes());
            parts.push(value);
        }
        parts.push(token.unwrap_or_default().as_bytes());
        parts.push(body);
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        Self {
            path,
            namespace: headers
                .get("x-vault-namespace")
                .and_then(|value| value.to_str().ok()),
            token,
            body,
            digest: sha256(&parts),
        }
    }
}

/// Vault's answer to a request, whole.
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers, as they go back to the app.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Zeroizing<Vec<u8>>,
}

/// A kept answer and what it is indexed by.
struct Entry {
    answer: Answer,
    /// When Vault answered.
    stored: SystemTime,
    namespace: String,
    request_path: String,
    /// The lease it carries.
    lease: Option<String>,
    /// The token it belongs to: the one that obtained the lease, or the
    /// parent of the token it created.
    owner: Option<Digest>,
    /// The token it created.
    token: Option<Digest>,
    renewal: Option<AbortHandle>,
}

/// A token the cache manages.
#[derive(Default)]
struct TokenNode {
    accessor: String,
    /// The entry that created it; none for the agent's own token.
    entry: Option<Digest>,
    /// The entries that belong to it.
    owned: HashSet<Digest>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Entry>,
    tokens: HashMap<Digest, TokenNode>,
    bytes: usize,
    /// The agent's own token, when a `cache-clear` of `all` or of that
    /// token unregistered it: `bao agent` registers its token only when it
    /// gets one, so the cache manages it again from the next login.
    unregistered_agent_token: Option<Digest>,
    /// Whether the bounds were reached since the cache was last below them,
    /// so that the warning is logged once.
    full: bool,
}

/// What a forgotten entry or token takes with it, worked through without
/// recursion however deep the tree.
enum Forget {
    Entry(Digest),
    Token(Digest),
}

impl State {
    fn forget(&mut self, first: Forget) {
        let mut work = vec![first];
        while let Some(next) = work.pop() {
            match next {
                Forget::Entry(id) => {
                    let Some(mut entry) = self.entries.remove(&id) else {
                        continue;
                    };
                    if let Some(renewal) = entry.renewal.take() {
                        renewal.abort();
                    }
                    self.bytes = self.bytes.saturating_sub(entry.answer.body.len());
                    if let Some(owner) = entry.owner.and_then(|o| self.tokens.get_mut(&o)) {
                        owner.owned.remove(&id);
                    }
                    work.extend(entry.token.map(Forget::Token));
                }
                Forget::Token(token) => {
                    let Some(node) = self.tokens.remove(&token) else {
                        continue;
                    };
                    work.extend(node.owned.into_iter().map(Forget::Entry));
                    work.extend(node.entry.map(Forget::Entry));
                }
            }
        }
        if self.entries.len() < MAX_ENTRIES && self.bytes < MAX_BYTES {
            self.full = false;
        }
    }

    /// `revoke-orphan`: the token and its leases go, its child tokens stay
    /// as roots.
    fn orphan(&mut self, token: Digest) {
        let Some(node) = self.tokens.remove(&token) else {
            return;
        };
        for id in node.owned {
            match self.entries.get_mut(&id) {
                Some(entry) if entry.token.is_some() => entry.owner = None,
                Some(_) => self.forget(Forget::Entry(id)),
                None => {}
            }
        }
        if let Some(entry) = node.entry {
            self.forget(Forget::Entry(entry));
        }
    }

    fn clear(&mut self) {
        for entry in self.entries.values_mut() {
            if let Some(renewal) = entry.renewal.take() {
                renewal.abort();
            }
        }
        *self = Self::default();
    }
}

impl Shared {
    /// The digest of the agent's own token, if it has one.
    fn agent_token(&self) -> Option<Digest> {
        self.client
            .token()
            .map(|token| sha256(&[token.expose_secret().as_bytes()]))
    }

    /// Notes that a `cache-clear` took the agent's own token out of the
    /// cache, as `bao agent` does, and says what that means.
    fn unregister_agent_token(&self, state: &mut State) {
        if !self.auto_auth {
            return;
        }
        let agent = self.agent_token();
        if agent.is_some() && state.unregistered_agent_token != agent {
            state.unregistered_agent_token = agent;
            info!(
                "the cache no longer keeps what the agent's own token obtains through the proxy until the agent logs in again, as in bao agent"
            );
        }
    }
}

struct Shared {
    /// Renews what the cache keeps, each with the token that obtained it.
    client: vault::Client,
    /// Whether the agent's own token is managed (`use_auto_auth_token`).
    auto_auth: bool,
    state: Mutex<State>,
    /// One lock per request being answered, so that the same request sent
    /// twice at once reaches Vault once.
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

/// The lease cache. Cheap to clone.
#[derive(Clone)]
pub struct LeaseCache {
    shared: Arc<Shared>,
}

/// The right to answer one request, held from the cache lookup to the
/// storing of Vault's answer.
pub struct Turn {
    shared: Arc<Shared>,
    digest: Digest,
    lock: Option<OwnedMutexGuard<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.shared.in_flight);
        self.lock = None;
        // Only the map holds the lock now when no other request waits.
        if in_flight
            .get(&self.digest)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            in_flight.remove(&self.digest);
        }
    }
}

impl LeaseCache {
    /// A cache renewing through `client`, whose own token is managed when
    /// `auto_auth` (the proxy may send it).
    pub fn new(client: vault::Client, auto_auth: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                auto_auth,
                state: Mutex::default(),
                in_flight: Mutex::default(),
            }),
        }
    }

    /// Waits until no other copy of `request` is being answered.
    pub async fn turn(&self, request: &Request<'_>) -> Turn {
        let mutex = {
            let mut in_flight = lock(&self.shared.in_flight);
            Arc::clone(in_flight.entry(request.digest).or_default())
        };
        Turn {
            shared: Arc::clone(&self.shared),
            digest: request.digest,
            lock: Some(mutex.lock_owned().await),
        }
    }

    /// The kept answer to `request`, as the app gets it, if there is one.
    pub fn hit(&self, request: &Request<'_>) -> Option<Response> {
        let state = self.state();
        let entry = state.entries.get(&request.digest)?;
        let mut headers = entry.answer.headers.clone();
        let age = SystemTime::now()
            .duration_since(entry.stored)
            .unwrap_or_default()
            .as_secs_f64()
            .round();
        headers.insert(header::AGE, HeaderValue::from(age as u64));
        if let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
            headers.insert(header::DATE, date);
        }
        headers.insert("x-cache", HeaderValue::from_static("HIT"));
        let mut response = Response::new(Body::from(entry.answer.body.to_vec()));
        *response.status_mut() = entry.answer.status;
        *response.headers_mut() = headers;
        Some(response)
    }

    /// Takes note of Vault's `answer` to `request`: keeps it if it is
    /// cacheable, or forgets what it revoked.
    pub fn observe(&self, request: &Request<'_>, answer: &Answer) {
        let json = answer
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value == "application/json");
        if answer.status.as_u16() >= 300 || !json {
            return;
        }
        if answer.status == StatusCode::NO_CONTENT {
            self.revoked(request);
            return;
        }
        let Ok(secret) = serde_json::from_slice::<Envelope>(&answer.body) else {
            return;
        };
        let token = request.token.map(|token| sha256(&[token.as_bytes()]));
        let mut state = self.state();
        if let Some(token) = token {
            self.register_agent_token(&mut state, token);
        }
        let (owner, created, ttl) = match (&secret.lease_id, &secret.auth) {
            (lease, _) if !lease.is_empty() => {
                if !secret.renewable {
                    return;
                }
                let Some(owner) = token.filter(|t| state.tokens.contains_key(t)) else {
                    debug!(
                        "a lease obtained with a token the cache does not manage passes through"
                    );
                    return;
                };
                (Some(owner), None, secret.lease_duration)
            }
            (_, Some(auth)) if auth.renewable && !auth.client_token.is_empty() => {
                let owner = if auth.orphan {
                    None
                } else {
                    let Some(parent) = token.filter(|t| state.tokens.contains_key(t)) else {
                        debug!("a token whose parent the cache does not manage passes through");
                        return;
                    };
                    Some(parent)
                };
                let created = sha256(&[auth.client_token.as_bytes()]);
                if state.tokens.contains_key(&created) {
                    return;
                }
                (owner, Some((created, auth)), auth.lease_duration)
            }
            _ => return,
        };
        if state.entries.len() >= MAX_ENTRIES || state.bytes + answer.body.len() > MAX_BYTES {
            if !state.full {
                warn!(
                    "the API proxy's cache holds {} answers, {} bytes: new leases pass through uncached until some are forgotten",
                    state.entries.len(),
                    state.bytes
                );
                state.full = true;
            }
            return;
        }
        let renewal = match created {
            Some((_, auth)) => Renewal::Token {
                token: Token::new(auth.client_token.to_string()),
            },
            None => Renewal::Lease {
                lease_id: secret.lease_id.clone(),
                token: Token::new(request.token.unwrap_or_default().to_owned()),
            },
        };
        let id = request.digest;
        state.forget(Forget::Entry(id));
        if let Some((created, auth)) = created {
            state.tokens.insert(
                created,
                TokenNode {
                    accessor: auth.accessor.clone(),
                    entry: Some(id),
                    owned: HashSet::new(),
                },
            );
        }
        if let Some(owner) = owner.and_then(|o| state.tokens.get_mut(&o)) {
            owner.owned.insert(id);
        }
        let task = tokio::spawn(renew(
            Arc::downgrade(&self.shared),
            self.shared.client.clone(),
            id,
            renewal,
            Duration::from_secs(ttl),
        ));
        state.bytes += answer.body.len();
        state.entries.insert(
            id,
            Entry {
                answer: Answer {
                    status: answer.status,
                    headers: answer.headers.clone(),
                    body: answer.body.clone(),
                },
                // Vault's Date, as bao agent counts the Age from it.
                stored: answer
                    .headers
                    .get(header::DATE)
                    .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?).ok())
                    .unwrap_or_else(SystemTime::now),
                namespace: request.namespace.unwrap_or(ROOT_NAMESPACE).to_owned(),
                request_path: request.path.to_owned(),
                lease: (!secret.lease_id.is_empty()).then(|| secret.lease_id.clone()),
                owner,
                token: created.map(|(created, _)| created),
                renewal: Some(task.abort_handle()),
            },
        );
        debug!("kept Vault's answer in the cache");
    }

    /// The agent's own token, registered as a root the first time it
    /// obtains something, when the proxy may send it.
    fn register_agent_token(&self, state: &mut State, digest: Digest) {
        if self.shared.auto_auth
            && !state.tokens.contains_key(&digest)
            && state.unregistered_agent_token != Some(digest)
            && self.shared.agent_token() == Some(digest)
        {
            state.tokens.insert(digest, TokenNode::default());
        }
    }

    /// Forgets what a successful revocation through the proxy revoked.
    fn revoked(&self, request: &Request<'_>) {
        let Some(endpoint) = revocation(request.path) else {
            return;
        };
        let field = |name: &str| {
            serde_json::from_slice::<Value>(request.body)
                .ok()
                .and_then(|body| body.get(name)?.as_str().map(str::to_owned))
                .map(Zeroizing::new)
        };
        let mut state = self.state();
        match endpoint {
            Revocation::Token => {
                if let Some(token) = field("token") {
                    state.forget(Forget::Token(sha256(&[token.as_bytes()])));
                }
            }
            Revocation::TokenSelf => {
                if let Some(token) = request.token {
                    state.forget(Forget::Token(sha256(&[token.as_bytes()])));
                }
            }
            Revocation::Accessor => {
                if let Some(accessor) = field("accessor") {
                    forget_accessor(&mut state, &accessor);
                }
            }
            Revocation::Orphan => {
                if let Some(token) = field("token") {
                    state.orphan(sha256(&[token.as_bytes()]));
                }
            }
            Revocation::Lease => {
                if let Some(lease) = field("lease_id") {
                    forget_lease(&mut state, &lease);
                }
            }
            Revocation::Prefix(prefix) => {
                let ids: Vec<Digest> = state
                    .entries
                    .iter()
                    .filter(|(_, e)| e.lease.as_ref().is_some_and(|l| l.starts_with(prefix)))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    state.forget(Forget::Entry(id));
                }
            }
        }
        debug!("a revocation through the proxy cleared what the cache kept of it");
    }

    /// `/agent/v1/cache-clear`: forgets what `request` names.
    pub fn clear(&self, request: &ClearRequest) -> Result<(), ClearError> {
        let mut state = self.state();
        let value = request.value.as_str();
        match request.kind.as_str() {
            "" => return Err(ClearError::Input("no type provided")),
            "request_path" => {
                if value.is_empty() {
                    return Err(ClearError::Clear("request path not provided"));
                }
                let namespace = match request.namespace.as_str() {
                    "" => ROOT_NAMESPACE,
                    namespace => namespace,
                };
                let ids: Vec<Digest> = state
                    .entries
                    .iter()
                    .filter(|(_, e)| e.namespace == namespace && e.request_path.starts_with(value))
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    state.forget(Forget::Entry(id));
                }
            }
            "token" => {
                if value.is_empty() {
                    return Err(ClearError::Clear("token not provided"));
                }
                let token = sha256(&[value.as_bytes()]);
                state.forget(Forget::Token(token));
                if self.shared.agent_token() == Some(token) {
                    self.shared.unregister_agent_token(&mut state);
                }
            }
            "token_accessor" => {
                if value.is_empty() {
                    return Err(ClearError::Clear("token accessor not provided"));
                }
                forget_accessor(&mut state, value);
            }
            "lease" => {
                if value.is_empty() {
                    return Err(ClearError::Clear("lease not provided"));
                }
                forget_lease(&mut state, value);
            }
            "all" => {
                state.clear();
                self.shared.unregister_agent_token(&mut state);
            }
            _ => return Err(ClearError::InvalidType),
        }
        debug!(kind = request.kind, "cleared the API proxy's cache");
        Ok(())
    }

    /// Forgets the entry `id`, once its renewal has ended.
    fn forget(shared: &Shared, id: Digest) {
        lock(&shared.state).forget(Forget::Entry(id));
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// How many answers the cache keeps.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().entries.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget_accessor(state: &mut State, accessor: &str) {
    let token = state
        .tokens
        .iter()
        .find(|(_, node)| !node.accessor.is_empty() && node.accessor == accessor)
        .map(|(token, _)| *token);
    if let Some(token) = token {
        state.forget(Forget::Token(token));
    }
}

fn forget_lease(state: &mut State, lease: &str) {
    let id = state
        .entries
        .iter()
        .find(|(_, entry)| entry.lease.as_deref() == Some(lease))
        .map(|(id, _)| *id);
    if let Some(id) = id {
        state.forget(Forget::Entry(id));
    }
}

/// The body of a `cache-clear` request. Its value can be a token, so it
/// has no `Debug` and is wiped when dropped.
#[derive(Default, Deserialize)]
pub struct ClearRequest {
    /// What to clear by.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The path prefix, token, accessor or lease.
    #[serde(default)]
    pub value: Zeroizing<String>,
    /// The namespace of a `request_path`.
    #[serde(default)]
    pub namespace: String,
}

/// Why a `cache-clear` request failed, worded as `bao agent` words it.
#[derive(Debug, thiserror::Error)]
pub enum ClearError {
    /// The request names nothing to clear by.
    #[error("failed to parse clear input: {0}")]
    Input(&'static str),
    /// The type is not one of the five.
    #[error("failed to clear cache: invalid type provided")]
    InvalidType,
    /// The type needs a value.
    #[error("failed to clear cache: {0}")]
    Clear(&'static str),
}

impl ClearError {
    /// The status `bao agent` answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Input(_) | Self::InvalidType => StatusCode::BAD_REQUEST,
            Self::Clear(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A revocation endpoint, below the optional namespace in the path.
#[derive(Debug, PartialEq, Eq)]
enum Revocation<'a> {
    Token,
    TokenSelf,
    Accessor,
    Orphan,
    Lease,
    /// `revoke-prefix` or `revoke-force`, with the lease prefix.
    Prefix(&'a str),
}

/// The revocation `path` asks for, if it is one.
fn revocation(path: &str) -> Option<Revocation<'_>> {
    const EXACT: [(&str, Revocation<'static>); 5] = [
        ("auth/token/revoke", Revocation::Token),
        ("auth/token/revoke-self", Revocation::TokenSelf),
        ("auth/token/revoke-accessor", Revocation::Accessor),
        ("auth/token/revoke-orphan", Revocation::Orphan),
        ("sys/leases/revoke", Revocation::Lease),
    ];
    let rest = path.strip_prefix("/v1/")?.trim_end_matches('/');
    // The endpoint starts the path or follows a namespace.
    let below_namespace = |at: usize| at == 0 || rest.as_bytes()[at - 1] == b'/';
    for (endpoint, kind) in EXACT {
        if let Some(namespace) = rest.strip_suffix(endpoint)
            && below_namespace(namespace.len())
        {
            return Some(kind);
        }
    }
    for endpoint in ["sys/leases/revoke-prefix/", "sys/leases/revoke-force/"] {
        if let Some(at) = rest.find(endpoint)
            && below_namespace(at)
        {
            return Some(Revocation::Prefix(&rest[at + endpoint.len()..]));
        }
    }
    None
}

/// The parts of Vault's answer that decide whether it is kept.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    lease_id: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    #[serde(default)]
    client_token: Zeroizing<String>,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    orphan: bool,
}

/// What a kept answer's renewal renews.
enum Renewal {
    /// A lease, with the token that obtained it.
    Lease { lease_id: String, token: Token },
    /// A token, with itself.
    Token { token: Token },
}

/// Renews a kept answer's lease or token until a renewal fails or its max
/// TTL is near, then forgets the answer.
async fn renew(
    shared: Weak<Shared>,
    client: vault::Client,
    id: Digest,
    renewal: Renewal,
    ttl: Duration,
) {
    let result = match renewal {
        Renewal::Lease { lease_id, token } => {
            renew_lease(client.with_token(token), &lease_id, ttl).await
        }
        Renewal::Token { token } => renew_token(client.with_token(token), ttl).await,
    };
    if let Err(err) = result {
        debug!(
            "a renewal of what the API proxy's cache kept failed, so it is forgotten: {}",
            err.kind()
        );
    }
    if let Some(shared) = shared.upgrade() {
        LeaseCache::forget(&shared, id);
    }
}

async fn renew_lease(client: vault::Client, lease_id: &str, ttl: Duration) -> vault::Result<()> {
    let mut action = lease::next_action(
        Lifetime::Renewable { ttl },
        Instant::now(),
        Duration::ZERO,
        rand::random(),
    );
    while let SecretAction::Renew { at } = action {
        tokio::time::sleep_until(at).await;
        let renewed = client.renew_lease(lease_id, Some(ttl)).await?;
        action = lease::after_renewal(
            ttl,
            Duration::from_secs(renewed.lease_duration),
            Instant::now(),
            rand::random(),
        );
    }
    tokio::time::sleep_until(action.at()).await;
    Ok(())
}

async fn renew_token(client: vault::Client, ttl: Duration) -> vault::Result<()> {
    let Some(mut action) = lease::token_action(ttl, true, Instant::now(), rand::random()) else {
        return std::future::pending().await;
    };
    while let TokenAction::Renew { at } = action {
        tokio::time::sleep_until(at).await;
        let renewed = client.renew_self(Some(ttl)).await?;
        action =
            lease::after_token_renewal(ttl, renewed.lease_duration, Instant::now(), rand::random());
    }
    tokio::time::sleep_until(action.at()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vault;

    fn cache() -> LeaseCache {
        let client = vault::Client::new(&Vault {
            address: Some("http://127.0.0.1:1".to_owned()),
            ..Vault::default()
        })
        .expect("client");
        client.set_token(Token::new("s.agent".to_owned()));
        LeaseCache::new(client, true)
    }

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    fn answer(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            headers: json_headers(),
            body: Zeroizing::new(serde_json::to_vec(&body).expect("JSON")),
        }
    }

    fn token_answer(token: &str, orphan: bool) -> Answer {
        answer(
            StatusCode::OK,
            serde_json::json!({
                "lease_id": "",
                "auth": {"client_token": token, "accessor": format!("acc-{token}"),
                         "lease_duration": 600, "renewable": true, "orphan": orphan},
            }),
        )
    }

    fn lease_answer(lease: &str) -> Answer {
        answer(
            StatusCode::OK,
            serde_json::json!({"lease_id": lease, "lease_duration": 600, "renewable": true,
                               "data": {"username": "u"}}),
        )
    }

    /// Sends `path` with `token` and `body` through the cache, as the proxy does
    /// when `answer` comes back; returns whether it was a hit.
    fn through(cache: &LeaseCache, path: &str, token: &str, body: &str, answer: &Answer) -> bool {
        let headers = HeaderMap::new();
        let request = Request::new(&Method::POST, path, &headers, Some(token), body.as_bytes());
        if cache.hit(&request).is_some() {
            return true;
        }
        cache.observe(&request, answer);
        false
    }

    /// `cache-clear` of `token`.
    fn clear_token(cache: &LeaseCache, token: &str) {
        let request = ClearRequest {
            kind: "token".to_owned(),
            value: Zeroizing::new(token.to_owned()),
            namespace: String::new(),
        };
        cache.clear(&request).expect("cleared");
    }

    #[tokio::test]
    async fn keeps_only_renewable_leases_of_managed_tokens_and_renewable_tokens() {
        let cache = cache();
        let lease = lease_answer("database/creds/app/1");
        assert!(!through(
            &cache,
            "/v1/database/creds/app",
            "s.app",
            "",
            &lease
        ));
        assert!(
            !through(&cache, "/v1/database/creds/app", "s.app", "", &lease),
            "a lease of a token the cache does not manage passes through"
        );
        assert!(!through(
            &cache,
            "/v1/database/creds/app",
            "s.agent",
            "",
            &lease
        ));
        assert!(through(
            &cache,
            "/v1/database/creds/app",
            "s.agent",
            "",
            &lease
        ));
        let kv = answer(StatusCode::OK, serde_json::json!({"data": {"a": "b"}}));
        assert!(!through(&cache, "/v1/secret/data/app", "s.agent", "", &kv));
        assert!(!through(&cache, "/v1/secret/data/app", "s.agent", "", &kv));
        let denied = answer(StatusCode::FORBIDDEN, serde_json::json!({"errors": []}));
        assert!(!through(
            &cache,
            "/v1/auth/token/create",
            "s.agent",
            "",
            &denied
        ));
        let login = token_answer("s.login", true);
        assert!(!through(&cache, "/v1/auth/approle/login", "", "{}", &login));
        assert!(through(&cache, "/v1/auth/approle/login", "", "{}", &login));
        assert!(
            !through(&cache, "/v1/auth/approle/login", "", "{\"x\":1}", &login),
            "another body is another request"
        );
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn forgetting_a_token_forgets_its_leases_and_child_tokens_but_an_orphaned_child_stays() {
        let cache = cache();
        let child = token_answer("s.child", false);
        let grandchild = token_answer("s.grandchild", false);
        through(&cache, "/v1/auth/token/create", "s.agent", "1", &child);
        through(&cache, "/v1/auth/token/create", "s.child", "2", &grandchild);
        through(
            &cache,
            "/v1/database/creds/app",
            "s.grandchild",
            "",
            &lease_answer("l/1"),
        );
        through(
            &cache,
            "/v1/database/creds/app",
            "s.child",
            "",
            &lease_answer("l/2"),
        );
        assert_eq!(cache.len(), 4);

        // revoke-orphan of the child: its lease and its own entry go, the grandchild
        // and what it obtained stay.
        let headers = HeaderMap::new();
        let body = br#"{"token":"s.child"}"#;
        let orphan = Request::new(
            &Method::POST,
            "/v1/auth/token/revoke-orphan",
            &headers,
            Some("s.agent"),
            body,
        );
        cache.observe(&orphan, &answer(StatusCode::NO_CONTENT, Value::Null));
        assert_eq!(cache.len(), 2);
        assert!(through(
            &cache,
            "/v1/database/creds/app",
            "s.grandchild",
            "",
            &lease_answer("l/1")
        ));

        clear_token(&cache, "s.grandchild");
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn a_deep_chain_of_tokens_is_forgotten_without_recursion() {
        let cache = cache();
        let mut parent = "s.agent".to_owned();
        for depth in 0..5_000 {
            let token = format!("s.{depth}");
            through(
                &cache,
                "/v1/auth/token/create",
                &parent,
                &token,
                &token_answer(&token, false),
            );
            parent = token;
        }
        assert_eq!(cache.len(), 5_000);
        clear_token(&cache, "s.0");
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn stops_keeping_at_its_bounds() {
        let cache = cache();
        for n in 0..MAX_ENTRIES + 5 {
            let token = format!("s.{n}");
            through(
                &cache,
                "/v1/auth/approle/login",
                "",
                &token,
                &token_answer(&token, true),
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }

    #[test]
    fn finds_revocations_below_a_namespace() {
        assert_eq!(
            revocation("/v1/auth/token/revoke-self"),
            Some(Revocation::TokenSelf)
        );
        assert_eq!(
            revocation("/v1/team-a/auth/token/revoke"),
            Some(Revocation::Token)
        );
        assert_eq!(
            revocation("/v1/sys/leases/revoke/"),
            Some(Revocation::Lease)
        );
        assert_eq!(
            revocation("/v1/sys/leases/revoke-prefix/database/creds"),
            Some(Revocation::Prefix("database/creds"))
        );
        assert_eq!(
            revocation("/v1/ns/sys/leases/revoke-force/aws/"),
            Some(Revocation::Prefix("aws"))
        );
        assert_eq!(
            revocation("/v1/secret/data/auth/token/revoke-selfish"),
            None
        );
        assert_eq!(revocation("/v1/xauth/token/revoke"), None);
        assert_eq!(revocation("/v1/sys/leases/renew"), None);
    }

    #[test]
    fn clear_errors_are_worded_as_bao_agent_words_them() {
        let cache_clear = |kind: &str| {
            cache()
                .clear(&ClearRequest {
                    kind: kind.to_owned(),
                    ..ClearRequest::default()
                })
                .map_err(|err| (err.status().as_u16(), err.to_string()))
        };
        assert_eq!(
            cache_clear(""),
            Err((
                400,
                "failed to parse clear input: no type provided".to_owned()
            ))
        );
        assert_eq!(
            cache_clear("leases"),
            Err((
                400,
                "failed to clear cache: invalid type provided".to_owned()
            ))
        );
        assert_eq!(
            cache_clear("lease"),
            Err((500, "failed to clear cache: lease not provided".to_owned()))
        );
        assert_eq!(cache_clear("all"), Ok(()));
    }
}
