//! Prometheus metrics of the agent, served by the listeners
//! ([`crate::listener`]) at `/agent/v1/metrics`.
//!
//! Every metric is named `keyhole_agent_*`. Labels carry only what is safe to
//! show on a dashboard: destination files, short error kinds, and Vault paths
//! as [`crate::redact`] shows them. Never a secret value: a path computed
//! while rendering is labelled by where it was computed, and request
//! arguments are cut off a path.
//!
//! Time-based gauges (lease and token seconds remaining, seconds since the
//! last render) are computed when scraped, so they are current without a
//! timer.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

use crate::redact::ShownPath;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Vault issued a token.
    Success,
    /// The login failed.
    Failure,
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// How a request through the API proxy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// Vault answered with a success status.
    Success,
    /// Vault answered with an error status (4xx, 5xx).
    VaultError,
    /// Vault did not answer.
    Error,
}

impl ProxyOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::VaultError => "vault_error",
            Self::Error => "error",
        }
    }
}

/// Whether the API proxy's lease cache held the answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// The kept answer was served.
    Hit,
    /// The request went to Vault.
    Miss,
}

impl CacheResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

/// A lease the agent renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The agent's own Vault token.
    Token,
    /// A secret's lease, e.g. database credentials.
    Secret,
}

impl Lease {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Secret => "secret",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RenderErrorLabels {
    destination: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    lease: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabels {
    mount_path: String,
}

/// Instants from which the time-based gauges are computed at scrape time.
#[derive(Debug)]
struct Clock {
    /// When each lease (by path label) expires.
    lease_expiry: HashMap<String, Instant>,
    /// The auth mount the token came from and when it expires, while the
    /// agent holds a token that expires.
    token_expiry: Option<(String, Instant)>,
    /// The last successful render, or the agent's start before the first.
    last_render: Instant,
}

/// The agent's metrics. Share it as `Arc<Metrics>`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    renders: Family<DestinationLabels, Counter>,
    render_errors: Family<RenderErrorLabels, Counter>,
    vault_errors: Family<KindLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    proxied: Family<OutcomeLabels, Counter>,
    cache_lookups: Family<ResultLabels, Counter>,
    lease_remaining: Family<PathLabels, Gauge>,
    renewal_failures: Family<LeaseLabels, Counter>,
    token_remaining: Family<MountLabels, Gauge>,
    since_last_render: Gauge,
    clock: Mutex<Clock>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics, all at zero, with the agent's start as the time
    /// of the last render.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keyhole_agent");
        let renders = Family::default();
        let render_errors = Family::default();
        let vault_errors = Family::default();
        let logins: Family<OutcomeLabels, Counter> = Family::default();
        let proxied: Family<OutcomeLabels, Counter> = Family::default();
        let cache_lookups: Family<ResultLabels, Counter> = Family::default();
        let lease_remaining = Family::default();
        let renewal_failures: Family<LeaseLabels, Counter> = Family::default();
        let token_remaining = Family::default();
        let since_last_render = Gauge::default();
        registry.register(
            "renders",
            "Templates rendered and written, per destination file",
            renders.clone(),
        );
        registry.register(
            "render_errors",
            "Failed renders, per destination file and error kind",
            render_errors.clone(),
        );
        registry.register(
            "vault_errors",
            "Failed Vault requests, per error kind",
            vault_errors.clone(),
        );
        registry.register("logins", "Logins to Vault, per outcome", logins.clone());
        registry.register(
            "proxy_requests",
            "Requests forwarded by the API proxy, per outcome",
            proxied.clone(),
        );
        registry.register(
            "proxy_cache_lookups",
            "Requests through the API proxy's lease cache, per result: hit (the kept answer \
             was served) or miss (the request went to Vault)",
            cache_lookups.clone(),
        );
        registry.register_with_unit(
            "lease_remaining",
            "Time left on each secret's lease, per Vault path",
            Unit::Seconds,
            lease_remaining.clone(),
        );
        registry.register(
            "renewal_failures",
            "Failed renewals of the agent's token or of a secret's lease, per lease",
            renewal_failures.clone(),
        );
        registry.register_with_unit(
            "token_remaining",
            "Time left on the agent's Vault token, per auth mount; absent before the first \
             login and for a token that never expires",
            Unit::Seconds,
            token_remaining.clone(),
        );
        registry.register_with_unit(
            "since_last_render",
            "Time since a template was last rendered, or since the agent started",
            Unit::Seconds,
            since_last_render.clone(),
        );
        // The counters whose labels are known up front are exported from
        // the start, at zero, so that an alert on `increase()` sees the first
        // failure.
        for outcome in [LoginOutcome::Success, LoginOutcome::Failure] {
            logins
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.as_str(),
                })
                .inc_by(0);
        }
        for outcome in [
            ProxyOutcome::Success,
            ProxyOutcome::VaultError,
            ProxyOutcome::Error,
        ] {
            proxied
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.as_str(),
                })
                .inc_by(0);
        }
        for result in [CacheResult::Hit, CacheResult::Miss] {
            cache_lookups
                .get_or_create(&ResultLabels {
                    result: result.as_str(),
                })
                .inc_by(0);
        }
        for lease in [Lease::Token, Lease::Secret] {
            renewal_failures
                .get_or_create(&LeaseLabels {
                    lease: lease.as_str(),
                })
                .inc_by(0);
        }
        Self {
            registry,
            renders,
            render_errors,
            vault_errors,
            logins,
            proxied,
            cache_lookups,
            lease_remaining,
            renewal_failures,
            token_remaining,
            since_last_render,
            clock: Mutex::new(Clock {
                lease_expiry: HashMap::new(),
                token_expiry: None,
                last_render: Instant::now(),
            }),
        }
    }

    /// Records a successful render of the template written to `destination`.
    pub fn rendered(&self, destination: &str) {
        self.renders
            .get_or_create(&DestinationLabels {
                destination: destination.to_owned(),
            })
            .inc();
        self.clock().last_render = Instant::now();
    }

    /// Records a failed render of the template for `destination`; `kind` is
    /// a short fixed word such as `template`, `vault` or `write`.
    pub fn render_failed(&self, destination: &str, kind: &'static str) {
        self.render_errors
            .get_or_create(&RenderErrorLabels {
                destination: destination.to_owned(),
                kind,
            })
            .inc();
    }

    /// Records a failed Vault request; `kind` is a short fixed word such as
    /// `permission_denied`, `not_found`, `connect`, `timeout`, `sealed`,
    /// `tls` or `decode`.
    pub fn vault_error(&self, kind: &'static str) {
        self.vault_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Records a login and how it ended.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Records a request forwarded by the API proxy and how it ended.
    pub fn proxied(&self, outcome: ProxyOutcome) {
        self.proxied
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Records a request through the API proxy's lease cache.
    pub fn cache_lookup(&self, result: CacheResult) {
        self.cache_lookups
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// Records that the secret read from `path` has `remaining` left on its
    /// lease from now, labelled with the path as it may be shown.
    pub fn lease_remaining(&self, path: &ShownPath, remaining: Duration) {
        let expiry = Instant::now() + remaining;
        self.clock()
            .lease_expiry
            .insert(path.as_str().to_owned(), expiry);
    }

    /// Stops reporting the lease of the secret read from `path`, e.g. when
    /// the secret no longer has a lease.
    pub fn forget_lease(&self, path: &ShownPath) {
        self.clock().lease_expiry.remove(path.as_str());
        self.lease_remaining.remove(&PathLabels {
            path: path.as_str().to_owned(),
        });
    }

    /// Records a failed renewal of `lease`; [`Self::vault_error`] counts
    /// why it failed.
    pub fn renewal_failed(&self, lease: Lease) {
        self.renewal_failures
            .get_or_create(&LeaseLabels {
                lease: lease.as_str(),
            })
            .inc();
    }

    /// Records that the agent's token, from the auth method mounted at
    /// `mount_path`, has `remaining` left from now; zero for a token that
    /// never expires, which is not reported.
    pub fn token_remaining(&self, mount_path: &str, remaining: Duration) {
        let mut clock = self.clock();
        if let Some((old, _)) = clock.token_expiry.take() {
            self.token_remaining
                .remove(&MountLabels { mount_path: old });
        }
        if !remaining.is_zero() {
            clock.token_expiry = Some((mount_path.to_owned(), Instant::now() + remaining));
        }
    }

    /// The metrics in the OpenMetrics text format, with the time-based
    /// gauges computed for now.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let now = Instant::now();
        {
            let clock = self.clock();
            for (path, expiry) in &clock.lease_expiry {
                let left = expiry.saturating_duration_since(now);
                self.lease_remaining
                    .get_or_create(&PathLabels { path: path.clone() })
                    .set(seconds(left));
            }
            if let Some((mount_path, expiry)) = &clock.token_expiry {
                self.token_remaining
                    .get_or_create(&MountLabels {
                        mount_path: mount_path.clone(),
                    })
                    .set(seconds(expiry.saturating_duration_since(now)));
            }
            self.since_last_render
                .set(seconds(now.saturating_duration_since(clock.last_render)));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        // The clock holds plain instants: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still usable.
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whole seconds of `duration`, as a gauge value.
fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The metrics as an HTTP answer in the OpenMetrics text format.
pub fn scrape(metrics: &Metrics) -> Response {
    match metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(std::fmt::Error) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Request;

    fn assert_lines(metrics: &Metrics, expected: &[&str]) {
        let text = metrics.encode().expect("encode");
        for line in expected {
            assert!(
                text.lines().any(|l| l == *line),
                "missing line {line:?} in:\n{text}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn counts_renders_and_render_errors_per_destination() {
        let metrics = Metrics::new();
        metrics.rendered("/vault/secrets/db");
        metrics.rendered("/vault/secrets/db");
        metrics.rendered("/vault/secrets/tls.crt");
        metrics.render_failed("/vault/secrets/db", "vault");

        assert_lines(
            &metrics,
            &[
                "# HELP keyhole_agent_renders Templates rendered and written, per destination file.",
                "# TYPE keyhole_agent_renders counter",
                r#"keyhole_agent_renders_total{destination="/vault/secrets/db"} 2"#,
                r#"keyhole_agent_renders_total{destination="/vault/secrets/tls.crt"} 1"#,
                "# TYPE keyhole_agent_render_errors counter",
                r#"keyhole_agent_render_errors_total{destination="/vault/secrets/db",kind="vault"} 1"#,
            ],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn counts_vault_errors_by_kind_and_logins_by_outcome() {
        let metrics = Metrics::new();
        metrics.vault_error("permission_denied");
        metrics.vault_error("permission_denied");
        metrics.vault_error("connect");
        metrics.login(LoginOutcome::Failure);
        metrics.login(LoginOutcome::Success);
        metrics.login(LoginOutcome::Success);

        assert_lines(
            &metrics,
            &[
                r#"keyhole_agent_vault_errors_total{kind="permission_denied"} 2"#,
                r#"keyhole_agent_vault_errors_total{kind="connect"} 1"#,
                r#"keyhole_agent_logins_total{outcome="success"} 2"#,
                r#"keyhole_agent_logins_total{outcome="failure"} 1"#,
            ],
        );
    }

    fn shown(path: &str) -> ShownPath {
        ShownPath::literal(&Request::Read {
            path: path.to_owned(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn lease_remaining_counts_down_between_scrapes() {
        let metrics = Metrics::new();
        metrics.lease_remaining(&shown("database/creds/app"), Duration::from_secs(3600));

        assert_lines(
            &metrics,
            &[
                "# TYPE keyhole_agent_lease_remaining_seconds gauge",
                "# UNIT keyhole_agent_lease_remaining_seconds seconds",
                r#"keyhole_agent_lease_remaining_seconds{path="database/creds/app"} 3600"#,
            ],
        );
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_lines(
            &metrics,
            &[r#"keyhole_agent_lease_remaining_seconds{path="database/creds/app"} 3000"#],
        );
        tokio::time::advance(Duration::from_secs(4000)).await;
        assert_lines(
            &metrics,
            &[r#"keyhole_agent_lease_remaining_seconds{path="database/creds/app"} 0"#],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lease_label_shows_no_arguments_and_no_computed_path() {
        let metrics = Metrics::new();
        metrics.lease_remaining(
            &shown("/pki/issue/web?common_name=internal.example.com"),
            Duration::from_secs(60),
        );
        let computed = ShownPath::computed(
            &Request::Read {
                path: "kv1/hunter2".to_owned(),
            },
            "/vault/secrets/db",
            &[],
        );
        metrics.lease_remaining(&computed, Duration::from_secs(30));

        let text = metrics.encode().expect("encode");
        assert_lines(
            &metrics,
            &[
                r#"keyhole_agent_lease_remaining_seconds{path="pki/issue/web"} 60"#,
                r#"keyhole_agent_lease_remaining_seconds{path="<computed path in /vault/secrets/db>"} 30"#,
            ],
        );
        assert!(!text.contains("internal.example.com"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_lease_is_no_longer_reported() {
        let metrics = Metrics::new();
        metrics.lease_remaining(&shown("database/creds/app"), Duration::from_secs(60));
        metrics.encode().expect("encode");
        metrics.forget_lease(&shown("database/creds/app"));

        let text = metrics.encode().expect("encode");
        assert!(!text.contains("database/creds/app"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn counts_renewal_failures_per_lease_from_zero() {
        let metrics = Metrics::new();
        assert_lines(
            &metrics,
            &[
                "# TYPE keyhole_agent_renewal_failures counter",
                r#"keyhole_agent_renewal_failures_total{lease="token"} 0"#,
                r#"keyhole_agent_renewal_failures_total{lease="secret"} 0"#,
            ],
        );
        metrics.renewal_failed(Lease::Token);
        metrics.renewal_failed(Lease::Secret);
        metrics.renewal_failed(Lease::Secret);

        assert_lines(
            &metrics,
            &[
                r#"keyhole_agent_renewal_failures_total{lease="token"} 1"#,
                r#"keyhole_agent_renewal_failures_total{lease="secret"} 2"#,
            ],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn login_and_proxy_outcomes_start_at_zero() {
        assert_lines(
            &Metrics::new(),
            &[
                r#"keyhole_agent_logins_total{outcome="success"} 0"#,
                r#"keyhole_agent_logins_total{outcome="failure"} 0"#,
                r#"keyhole_agent_proxy_requests_total{outcome="success"} 0"#,
                r#"keyhole_agent_proxy_requests_total{outcome="vault_error"} 0"#,
                r#"keyhole_agent_proxy_requests_total{outcome="error"} 0"#,
            ],
        );
    }

    #[tokio::test(start_paused = true)]
    async fn token_remaining_counts_down_and_follows_each_new_token() {
        let metrics = Metrics::new();
        let before_login = metrics.encode().expect("encode");
        assert!(
            !before_login.contains("keyhole_agent_token_remaining_seconds{"),
            "{before_login}"
        );

        metrics.token_remaining("auth/kubernetes", Duration::from_secs(3600));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_lines(
            &metrics,
            &[
                "# UNIT keyhole_agent_token_remaining_seconds seconds",
                r#"keyhole_agent_token_remaining_seconds{mount_path="auth/kubernetes"} 3000"#,
            ],
        );

        metrics.token_remaining("auth/kubernetes", Duration::from_secs(7200));
        assert_lines(
            &metrics,
            &[r#"keyhole_agent_token_remaining_seconds{mount_path="auth/kubernetes"} 7200"#],
        );

        metrics.token_remaining("auth/kubernetes", Duration::ZERO);
        let never_expires = metrics.encode().expect("encode");
        assert!(
            !never_expires.contains("keyhole_agent_token_remaining_seconds{"),
            "{never_expires}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reports_seconds_since_last_render() {
        let metrics = Metrics::new();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_lines(
            &metrics,
            &[
                "# UNIT keyhole_agent_since_last_render_seconds seconds",
                "keyhole_agent_since_last_render_seconds 30",
            ],
        );

        metrics.rendered("/vault/secrets/db");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_lines(&metrics, &["keyhole_agent_since_last_render_seconds 5"]);
    }
}
