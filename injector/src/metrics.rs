//! Prometheus metrics of the webhook and the TLS certificate.

use std::fmt::Write;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How the webhook answered a review.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed without changes.
    Allowed,
    /// Allowed with a patch that injects the agent.
    Patched,
    /// Refused because of the pod's annotations.
    Denied,
    /// The request could not be read.
    Invalid,
}

impl Outcome {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Patched => "patched",
            Self::Denied => "denied",
            Self::Invalid => "invalid",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

/// The `result` of a successful reload.
const SUCCESS: &str = "success";
/// The `result` of a failed reload.
const FAILURE: &str = "failure";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// Metrics of the `/mutate` handler.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    reviews: Family<OutcomeLabels, Counter>,
    latency: Histogram,
}

impl WebhookMetrics {
    /// Registers the metrics under the `webhook` prefix of `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("webhook");
        let reviews: Family<OutcomeLabels, Counter> = Family::default();
        registry.register(
            "reviews",
            "Admission reviews answered, by outcome",
            reviews.clone(),
        );
        // Every outcome is exported from the start, at zero, so that an
        // alert on `increase()` sees the first denial.
        for outcome in [
            Outcome::Allowed,
            Outcome::Patched,
            Outcome::Denied,
            Outcome::Invalid,
        ] {
            reviews.get_or_create(&OutcomeLabels { outcome }).inc_by(0);
        }
        let latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "review_duration_seconds",
            "Time to answer an admission review",
            latency.clone(),
        );
        Self { reviews, latency }
    }

    /// Counts one answered review.
    pub fn observe(&self, outcome: Outcome, elapsed: Duration) {
        self.reviews.get_or_create(&OutcomeLabels { outcome }).inc();
        self.latency.observe(elapsed.as_secs_f64());
    }
}

/// Metrics of the serving certificate.
#[derive(Clone, Debug)]
pub struct TlsMetrics {
    reloads: Family<ReloadLabels, Counter>,
}

impl TlsMetrics {
    /// Registers the metrics under the `tls` prefix of `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let registry = registry.sub_registry_with_prefix("tls");
        let reloads: Family<ReloadLabels, Counter> = Family::default();
        registry.register(
            "reloads",
            "Serving certificate reloads, by result",
            reloads.clone(),
        );
        for result in [SUCCESS, FAILURE] {
            reloads.get_or_create(&ReloadLabels { result }).inc_by(0);
        }
        Self { reloads }
    }

    /// Counts one reload attempt.
    pub fn reloaded(&self, success: bool) {
        let result = if success { SUCCESS } else { FAILURE };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }
}
