//! The secret cache: every Vault request the templates made, its last
//! answer, and when it must be renewed or fetched anew.
//!
//! [`Cache::fetch`] answers new requests, each distinct one once, in
//! parallel with bounded concurrency. [`Cache::refresh_due`] renews or
//! fetches anew what [`crate::lease`] says is due and reports which secrets
//! changed. A refresh that fails keeps the last good secret, so files keep
//! their content while Vault is away, and is retried with
//! [`crate::backoff`].
//!
//! A failed request is kept as a [`FetchError`] holding Vault's error, so
//! callers see its HTTP status; both fetching and refreshing report in
//! [`Fetched`] whether Vault refused a request (403), which may mean the
//! agent's token is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::Retryable;
use futures::StreamExt;
use hyper::StatusCode;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::backoff::{self, Backoff};
use crate::lease::{self, SecretAction};
use crate::metrics::{Lease, Metrics};
use crate::persist::{self, StoredLease};
use crate::redact::ShownPath;
use crate::template::{self, Request};
use crate::vault::{self, KvPaths, Operation, Secret};

/// How many Vault requests are in flight at once.
const FETCH_CONCURRENCY: usize = 16;

/// The shortest remaining lease the persistent cache hands over: a
/// shorter one would be due for renewal or a new fetch at once.
const RESTORE_MIN_TTL: Duration = Duration::from_secs(10);

/// How much of a lease a renewal that could not reach Vault leaves before
/// the secret is fetched anew instead: enough for that fetch to render new
/// credentials before the old ones expire.
const RENEW_RETRY_MARGIN: Duration = Duration::from_secs(5);

/// How a lease revocation that failed on a busy or restarting Vault is
/// tried again at shutdown: three retries within about a second and a half,
/// well inside the runner's revocation budget, so the token is still revoked.
const REVOKE_RETRY: backoff::Policy =
    backoff::Policy::new(Duration::from_millis(200), Duration::from_millis(800));
/// Retries of one lease revocation under [`REVOKE_RETRY`].
const REVOKE_RETRIES: u32 = 3;

/// A Vault request that failed, worded as its [`ShownPath`] allows.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FetchError(vault::Error);

impl FetchError {
    /// The HTTP status Vault answered with, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status()
    }

    /// Whether Vault refused the request (403): the token may be gone.
    pub fn is_denied(&self) -> bool {
        self.status() == Some(StatusCode::FORBIDDEN)
    }
}

/// How failed Vault requests are retried within one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts after the first for a request that failed transiently.
    pub attempts: u32,
    /// The waits between attempts, and between refreshes that keep failing.
    pub policy: backoff::Policy,
}

/// What a round of fetches or refreshes gave.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The requests whose data changed.
    pub changed: BTreeSet<Request>,
    /// Whether Vault refused one of the requests with 403.
    pub denied: bool,
}

impl Fetched {
    fn record<T>(&mut self, result: &Result<T, FetchError>) {
        self.denied |= result.as_ref().is_err_and(FetchError::is_denied);
    }
}

/// A cached answer and what to do with it next.
#[derive(Debug)]
struct Cached {
    /// How its request is shown in logs and metrics.
    shown: ShownPath,
    /// The last good response, or the error of a request that never
    /// succeeded.
    result: Result<Arc<Secret>, FetchError>,
    /// When to renew or fetch it anew.
    next: SecretAction,
    /// Failed refreshes in a row.
    backoff: Backoff,
    /// When the secret's lease ends, for the persistent cache; `None` for
    /// a secret without a lease.
    expires_at: Option<u64>,
}

/// Fetches secrets and keeps them current.
#[derive(Debug)]
pub struct Cache {
    client: vault::Client,
    retry: Retry,
    static_interval: Duration,
    metrics: Arc<Metrics>,
    kv: KvPaths,
    entries: BTreeMap<Request, Cached>,
}

impl Cache {
    /// An empty cache reading through `client`; secrets without a lease are
    /// read again every `static_interval`.
    pub fn new(
        client: vault::Client,
        retry: Retry,
        static_interval: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            retry,
            static_interval,
            metrics,
            kv: KvPaths::default(),
            entries: BTreeMap::new(),
        }
    }

    /// Every cached request with its last good secret or its error.
    pub fn results(&self) -> impl Iterator<Item = (&Request, Result<&Arc<Secret>, &FetchError>)> {
        self.entries
            .iter()
            .map(|(request, cached)| (request, cached.result.as_ref()))
    }

    /// The next renewal or re-fetch of a cached secret.
    pub fn next_due(&self) -> Option<SecretAction> {
        self.entries
            .values()
            .map(|c| c.next)
            .min_by_key(SecretAction::at)
    }

    /// Makes every cached secret due now, e.g. after a new login: leases
    /// obtained with a lost token die with it.
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for cached in self.entries.values_mut() {
            cached.next = SecretAction::Refetch { at: now };
        }
    }

    /// Fetches every request once, in parallel, caching successes and
    /// failures alike: a failure fails the templates that use it. Each
    /// request comes with how it is shown.
    pub async fn fetch(&mut self, requests: BTreeMap<Request, ShownPath>) -> Fetched {
        let this = &*self;
        let results: Vec<_> = futures::stream::iter(requests)
            .map(|(request, shown)| async move {
                let result = this.fetch_one(&request, &shown).await;
                (request, shown, result)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        let mut fetched = Fetched::default();
        for (request, shown, result) in results {
            fetched.record(&result);
            let mut backoff = self.retry.policy.backoff();
            let next = match &result {
                Ok(secret) => schedule(secret, self.static_interval),
                Err(_) => SecretAction::Refetch {
                    at: Instant::now() + backoff.failed(),
                },
            };
            let expires_at = result.as_ref().ok().and_then(|secret| lease_end(secret));
            self.entries.insert(
                request.clone(),
                Cached {
                    shown,
                    result,
                    next,
                    backoff,
                    expires_at,
                },
            );
            self.record_lease(&request);
        }
        fetched
    }

    /// Renews or fetches anew every secret that is due, and reports those
    /// whose data changed. A failure keeps the last good secret (its file
    /// keeps its content) and is retried with backoff.
    pub async fn refresh_due(&mut self) -> Fetched {
        let now = Instant::now();
        let this = &*self;
        let due = this.entries.iter().filter(|(_, c)| c.next.at() <= now);
        let results: Vec<_> = futures::stream::iter(due)
            .map(|(request, cached)| async move {
                let outcome = this.refresh_one(request, cached).await;
                (request.clone(), outcome)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;

        let mut fetched = Fetched::default();
        for (request, outcome) in results {
            let Some(cached) = self.entries.get_mut(&request) else {
                continue;
            };
            match outcome {
                Refreshed::Renewed { next, granted } => {
                    cached.next = next;
                    cached.expires_at = Some(persist::expires_at(granted));
                    cached.backoff.succeeded();
                }
                Refreshed::RenewalDeferred { err, left } => {
                    let delay = cached
                        .backoff
                        .failed()
                        .min(left.saturating_sub(RENEW_RETRY_MARGIN));
                    warn!(path = %cached.shown, retry_in = ?delay, "lease renewal failed, keeping the lease: {err}");
                    cached.next = SecretAction::Renew {
                        at: Instant::now() + delay,
                    };
                }
                Refreshed::Fetched(Ok(secret)) => {
                    let same = matches!(&cached.result, Ok(old) if old.data.0 == secret.data.0);
                    if !same {
                        fetched.changed.insert(request.clone());
                    }
                    cached.next = schedule(&secret, self.static_interval);
                    cached.expires_at = lease_end(&secret);
                    cached.result = Ok(secret);
                    cached.backoff.succeeded();
                    self.record_lease(&request);
                }
                Refreshed::Fetched(Err(err)) => {
                    fetched.denied |= err.is_denied();
                    let delay = cached.backoff.failed();
                    let path = &cached.shown;
                    if cached.result.is_ok() {
                        warn!(%path, retry_in = ?delay, "keeping the last good secret: {err}");
                    } else {
                        warn!(%path, retry_in = ?delay, "reading the secret failed: {err}");
                    }
                    cached.next = SecretAction::Refetch {
                        at: Instant::now() + delay,
                    };
                }
            }
        }
        fetched
    }

    /// The leased secrets, for the persistent cache.
    pub fn leases(&self) -> Vec<StoredLease> {
        self.entries
            .iter()
            .filter_map(|(request, cached)| {
                Some(StoredLease {
                    request: request.clone(),
                    shown: cached.shown.clone(),
                    secret: Secret::clone(cached.result.as_ref().ok()?),
                    expires_at: cached.expires_at?,
                })
            })
            .collect()
    }

    /// Takes over leases an earlier agent of the pod obtained with the token
    /// this one resumed, so that the templates use them without asking
    /// Vault again. A lease about to end is left out and fetched anew.
    /// Returns how many were taken over.
    pub fn restore(&mut self, leases: Vec<StoredLease>) -> usize {
        let mut restored = 0;
        for stored in leases {
            let ttl = persist::remaining(stored.expires_at);
            if ttl < RESTORE_MIN_TTL {
                continue;
            }
            let lifetime = if stored.secret.renewable {
                lease::Lifetime::Renewable { ttl }
            } else {
                lease::Lifetime::Expiring { ttl }
            };
            let next = lease::next_action(
                lifetime,
                Instant::now(),
                self.static_interval,
                rand::random::<f64>(),
            );
            self.entries.insert(
                stored.request.clone(),
                Cached {
                    shown: stored.shown,
                    result: Ok(Arc::new(stored.secret)),
                    next,
                    backoff: self.retry.policy.backoff(),
                    expires_at: Some(stored.expires_at),
                },
            );
            self.record_lease(&stored.request);
            restored += 1;
        }
        restored
    }

    /// Drops what no template uses: leases taken over from an earlier agent
    /// whose templates asked for more. They are neither renewed nor handed
    /// on; Vault ends them at their TTL.
    pub fn retain_used(&mut self, used: &BTreeSet<&Request>) {
        let metrics = &self.metrics;
        self.entries.retain(|request, cached| {
            let keep = used.contains(request);
            if !keep {
                metrics.forget_lease(&cached.shown);
            }
            keep
        });
    }

    /// Revokes the leases of cached secrets, e.g. at shutdown. A failure is
    /// logged and the next lease revoked.
    pub async fn revoke_leases(&self) {
        for cached in self.entries.values() {
            let Ok(secret) = &cached.result else {
                continue;
            };
            if secret.lease_id.is_empty() {
                continue;
            }
            // A lease left behind outlives the agent until the token's own
            // revocation reaches it, in the background: a busy Vault's
            // failure is worth a few quick retries.
            let revoked = (|| self.client.revoke_lease(&secret.lease_id))
                .retry(REVOKE_RETRY.retries(Some(REVOKE_RETRIES)))
                .when(vault::Error::is_retryable)
                .await;
            if let Err(err) = revoked {
                let path = &cached.shown;
                let err = path.lease_error(err);
                warn!(%path, "revoking the lease failed: {err}");
            }
        }
    }

    async fn refresh_one(&self, request: &Request, cached: &Cached) -> Refreshed {
        let path = &cached.shown;
        if let SecretAction::Renew { .. } = cached.next
            && let Ok(secret) = &cached.result
        {
            let requested = Duration::from_secs(secret.lease_duration);
            match self
                .client
                .renew_lease(&secret.lease_id, Some(requested))
                .await
            {
                Ok(renewed) => {
                    let granted = Duration::from_secs(renewed.lease_duration);
                    debug!(%path, ?granted, "lease renewed");
                    return Refreshed::Renewed {
                        next: lease::after_renewal(
                            requested,
                            granted,
                            Instant::now(),
                            rand::random::<f64>(),
                        ),
                        granted,
                    };
                }
                Err(err) => {
                    self.metrics.vault_error(err.kind());
                    self.metrics.renewal_failed(Lease::Secret);
                    let err = path.lease_error(err);
                    // Vault away for a moment (restarting, sealed) still
                    // holds the lease: renewing it later keeps the
                    // credentials, where fetching anew would lease a second
                    // set while the first lives on. A revoked or expired
                    // lease cannot be renewed; new credentials can still be
                    // fetched.
                    let left = cached.expires_at.map(persist::remaining);
                    if let Some(left) = left.filter(|left| *left > RENEW_RETRY_MARGIN)
                        && err.is_retryable()
                    {
                        return Refreshed::RenewalDeferred { err, left };
                    }
                    warn!(%path, "lease renewal failed, fetching anew: {err}");
                }
            }
        }
        Refreshed::Fetched(self.fetch_one(request, path).await)
    }

    fn record_lease(&self, request: &Request) {
        if let Some(Cached {
            shown,
            result: Ok(secret),
            ..
        }) = self.entries.get(request)
        {
            match lease::Lifetime::of(secret, SystemTime::now()).ttl() {
                Some(ttl) => self.metrics.lease_remaining(shown, ttl),
                None => self.metrics.forget_lease(shown),
            }
        }
    }

    /// One request, with transient failures (connection refused, timeouts,
    /// a sealed Vault) retried with backoff. Errors that retrying cannot fix
    /// (403, 404) return at once, worded as `path` shows the request.
    async fn fetch_one(
        &self,
        request: &Request,
        path: &ShownPath,
    ) -> Result<Arc<Secret>, FetchError> {
        let mut backoff = self.retry.policy.backoff();
        let mut attempt = 0;
        loop {
            let result = match request {
                Request::Read { path } => {
                    let path = self.kv.resolve(&self.client, path, Operation::Read).await;
                    self.client.read(&path).await
                }
                Request::Write { path, data } => self.client.write(path, &string_body(data)).await,
                Request::PkiCert {
                    path,
                    data,
                    destination,
                } => match destination
                    .as_deref()
                    .and_then(|d| template::reusable_certificate(d, SystemTime::now()))
                {
                    Some(reused) => {
                        debug!(%path, "reusing the certificate in the destination");
                        Ok(reused)
                    }
                    None => self.client.write(path, &string_body(data)).await,
                },
                Request::List { path } => {
                    let path = self.kv.resolve(&self.client, path, Operation::List).await;
                    self.client.list(&path).await.map(listed)
                }
            };
            match result {
                Ok(secret) => return Ok(Arc::new(secret)),
                Err(err) => {
                    self.metrics.vault_error(err.kind());
                    let err = path.request_error(err);
                    if !err.is_retryable() || attempt >= self.retry.attempts {
                        return Err(FetchError(err));
                    }
                    let delay = backoff.failed();
                    attempt += 1;
                    warn!(%path, attempt, retry_in = ?delay, "Vault request failed, retrying: {err}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// What refreshing one cached secret gave.
enum Refreshed {
    /// The lease was renewed for `granted`; the data is unchanged.
    Renewed {
        /// What to do next.
        next: SecretAction,
        /// The lease's new duration.
        granted: Duration,
    },
    /// Vault could not be reached to renew the lease, which has `left`
    /// to run: renew it again later.
    RenewalDeferred {
        /// Why the renewal failed.
        err: vault::Error,
        /// What is left of the lease.
        left: Duration,
    },
    /// The secret was fetched anew, or fetching it failed.
    Fetched(Result<Arc<Secret>, FetchError>),
}

/// When a freshly fetched secret must be renewed or fetched anew.
fn schedule(secret: &Secret, static_interval: Duration) -> SecretAction {
    lease::next_action(
        lease::Lifetime::of(secret, SystemTime::now()),
        Instant::now(),
        static_interval,
        rand::random::<f64>(),
    )
}

/// When the lease of a freshly fetched `secret` ends, in Unix seconds;
/// `None` for a secret without a lease, which the persistent cache leaves
/// to be read again.
fn lease_end(secret: &Secret) -> Option<u64> {
    if secret.lease_id.is_empty() {
        return None;
    }
    let ttl = lease::Lifetime::of(secret, SystemTime::now()).ttl()?;
    Some(persist::expires_at(ttl))
}

/// The body of a write with string parameters.
fn string_body(data: &BTreeMap<String, String>) -> serde_json::Map<String, serde_json::Value> {
    data.iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

/// A LIST result kept in the cache like any response: `data.keys`.
fn listed(keys: Vec<String>) -> Secret {
    let mut secret = Secret::default();
    secret.data.0.insert(
        "keys".to_owned(),
        keys.into_iter().map(serde_json::Value::String).collect(),
    );
    secret
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn stored(path: &str) -> StoredLease {
        let request = Request::Read {
            path: path.to_owned(),
        };
        let secret: Secret = serde_json::from_str(
            r#"{"lease_id":"l","lease_duration":3600,"renewable":true,"data":{"k":"v"}}"#,
        )
        .expect("secret parses");
        StoredLease {
            shown: ShownPath::literal(&request),
            request,
            secret,
            expires_at: persist::expires_at(Duration::from_secs(3600)),
        }
    }

    fn cache() -> Cache {
        let vault = config::Vault {
            address: Some("http://127.0.0.1:1".to_owned()),
            ..config::Vault::default()
        };
        Cache::new(
            vault::Client::builder(&vault).build().expect("client"),
            Retry {
                attempts: 0,
                policy: backoff::Policy::new(Duration::from_secs(1), Duration::from_secs(1)),
            },
            Duration::from_secs(300),
            Arc::new(Metrics::new()),
        )
    }

    /// Makes every cached secret's renewal due now.
    fn renew_now(cache: &mut Cache) {
        for cached in cache.entries.values_mut() {
            cached.next = SecretAction::Renew { at: Instant::now() };
        }
    }

    #[tokio::test]
    async fn a_renewal_that_cannot_reach_vault_keeps_the_lease_and_is_retried() {
        let mut cache = cache();
        cache.restore(vec![stored("database/creds/app")]);
        renew_now(&mut cache);
        let refreshed = cache.refresh_due().await;
        assert!(refreshed.changed.is_empty());
        let next = cache.next_due().expect("something is due");
        assert!(matches!(next, SecretAction::Renew { .. }), "{next:?}");
        assert!(next.at() > Instant::now(), "retried after a wait");
        let leases: Vec<String> = cache
            .leases()
            .into_iter()
            .map(|l| l.secret.lease_id)
            .collect();
        assert_eq!(leases, ["l"], "the same lease, not a second one");
    }

    #[tokio::test]
    async fn a_renewal_that_cannot_reach_vault_near_the_lease_end_fetches_anew() {
        let mut cache = cache();
        cache.restore(vec![stored("database/creds/app")]);
        for cached in cache.entries.values_mut() {
            cached.expires_at = Some(persist::expires_at(RENEW_RETRY_MARGIN));
        }
        renew_now(&mut cache);
        cache.refresh_due().await;
        let next = cache.next_due().expect("something is due");
        assert!(matches!(next, SecretAction::Refetch { .. }), "{next:?}");
    }

    #[tokio::test]
    async fn leases_taken_over_are_handed_on_until_no_template_uses_them() {
        let mut cache = cache();
        let restored = cache.restore(vec![
            stored("database/creds/a"),
            stored("database/creds/b"),
            StoredLease {
                expires_at: persist::expires_at(Duration::from_secs(5)),
                ..stored("database/creds/ending")
            },
        ]);
        assert_eq!(restored, 2, "a lease about to end is fetched anew");
        let a = Request::Read {
            path: "database/creds/a".to_owned(),
        };
        cache.retain_used(&BTreeSet::from([&a]));
        let left: Vec<Request> = cache.leases().into_iter().map(|l| l.request).collect();
        assert_eq!(left, [a]);
    }
}
