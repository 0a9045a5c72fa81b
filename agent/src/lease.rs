//! When to renew or re-fetch each secret, and when to renew the Vault token
//! or log in again.
//!
//! The schedule is a set of pure functions of a lease, an instant and a
//! random fraction, so it is tested without a clock or a Vault; the secret
//! cache and the token session draw the fraction and keep the actions.
//! Retries after failures follow [`crate::backoff`] instead. The numbers follow Vault Agent:
//!
//! - A renewable lease or token is renewed at two thirds of its TTL, which
//!   leaves a third of it for retries when Vault is briefly unreachable.
//! - When a renewal grants less than was asked for, the max TTL is near: the
//!   secret is fetched anew while 15% of the lease's duration is still left
//!   (the token: a new login at 85% of what is left), so the new
//!   credentials are rendered well before the old ones expire.
//! - A secret that expires but cannot be renewed (KV v1 with `ttl`, a
//!   non-renewable lease, a PKI certificate) is fetched anew at 85% of its
//!   TTL or of its certificate's remaining validity.
//! - A secret without a lease (KV v2) is read again every
//!   `static_secret_render_interval`.
//! - A secret that Vault rotates on a schedule (database static roles) is
//!   read again a second after its next rotation.
//!
//! Jitter moves an action earlier by up to [`JITTER`] of its wait, never
//! later, so pods started together spread their requests to Vault without
//! ever acting after a deadline.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::vault::Secret;

/// Share of a renewable TTL after which the lease or token is renewed.
const RENEW_FRACTION: f64 = 2.0 / 3.0;

/// Share of a non-renewable TTL after which the secret is fetched anew.
const REFETCH_FRACTION: f64 = 0.85;

/// The largest share of a wait that jitter takes off it.
pub const JITTER: f64 = 0.05;

/// How long after a scheduled rotation a rotating secret is read again.
const ROTATION_MARGIN: Duration = Duration::from_secs(1);

/// Shortest wait, so a secret that is already expired (or a clock that is
/// off) makes the agent retry each second rather than spin.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Longest wait, so a lease of many years cannot overflow the clock.
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How long a secret stays valid, as far as rotation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// No lease (KV v2, KV v1 without `ttl`): read again every
    /// `static_secret_render_interval`.
    Static,
    /// A lease Vault can extend, e.g. `database/creds/*`.
    Renewable {
        /// The lease duration Vault granted.
        ttl: Duration,
    },
    /// Valid for `ttl`, then gone: KV v1 with `ttl`, non-renewable leases,
    /// PKI certificates.
    Expiring {
        /// What is left of the secret's validity.
        ttl: Duration,
    },
    /// Replaced by Vault on a schedule, e.g. `database/static-creds/*`.
    Rotating {
        /// Time until Vault's next rotation.
        ttl: Duration,
    },
}

impl Lifetime {
    /// Classifies a Vault response fetched at `now`.
    ///
    /// A PKI certificate is valid until its `expiration` (Unix seconds),
    /// whatever lease it came with. A secret with a `rotation_period` is
    /// rotated by Vault when its `ttl` (seconds) runs out. KV v1 reports a `lease_duration` for
    /// every read but only honours it when the secret has a `ttl` key;
    /// without one it is a static secret like KV v2.
    pub fn of(secret: &Secret, now: SystemTime) -> Self {
        if let Some(expiration) = certificate_expiration(secret) {
            let now = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            return Self::Expiring {
                ttl: Duration::from_secs(expiration.saturating_sub(now)),
            };
        }
        if let Some(ttl) = rotation_ttl(secret) {
            return Self::Rotating {
                ttl: Duration::from_secs(ttl),
            };
        }
        let ttl = Duration::from_secs(secret.lease_duration);
        if ttl.is_zero() {
            Self::Static
        } else if secret.renewable {
            Self::Renewable { ttl }
        } else if !secret.lease_id.is_empty() || secret.data.contains_key("ttl") {
            Self::Expiring { ttl }
        } else {
            Self::Static
        }
    }

    /// How long the secret stays valid from when it was fetched; `None` for
    /// a static secret, which does not expire.
    pub fn ttl(&self) -> Option<Duration> {
        match *self {
            Self::Static => None,
            Self::Renewable { ttl } | Self::Expiring { ttl } | Self::Rotating { ttl } => Some(ttl),
        }
    }
}

/// The `expiration` of a PKI `issue`/`sign` response.
fn certificate_expiration(secret: &Secret) -> Option<u64> {
    if secret.renewable || !secret.data.contains_key("certificate") {
        return None;
    }
    secret.data.get("expiration")?.as_u64()
}

/// The `ttl` of a database static role's credentials, which Vault rotates
/// every `rotation_period`.
fn rotation_ttl(secret: &Secret) -> Option<u64> {
    if !secret.lease_id.is_empty() || !secret.data.contains_key("rotation_period") {
        return None;
    }
    secret.data.get("ttl")?.as_u64()
}

/// What to do next about one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    /// Renew the secret's lease (`sys/leases/renew`) at `at`.
    Renew {
        /// When to renew.
        at: Instant,
    },
    /// Read the secret again (a new lease, new credentials) at `at`.
    Refetch {
        /// When to read it.
        at: Instant,
    },
}

impl SecretAction {
    /// When the action is due.
    pub fn at(&self) -> Instant {
        match *self {
            Self::Renew { at } | Self::Refetch { at } => at,
        }
    }

    /// Waits until the action is due, then hands it back.
    pub async fn due(self) -> Self {
        tokio::time::sleep_until(self.at()).await;
        self
    }
}

/// The first action for a secret fetched at `fetched_at`.
///
/// `jitter` is a random fraction in `[0, 1)`; it moves the action earlier by
/// up to [`JITTER`] of the wait.
pub fn next_action(
    lifetime: Lifetime,
    fetched_at: Instant,
    static_interval: Duration,
    jitter: f64,
) -> SecretAction {
    match lifetime {
        Lifetime::Static => SecretAction::Refetch {
            at: after(fetched_at, static_interval, 1.0, jitter),
        },
        Lifetime::Renewable { ttl } => SecretAction::Renew {
            at: after(fetched_at, ttl, RENEW_FRACTION, jitter),
        },
        Lifetime::Expiring { ttl } => SecretAction::Refetch {
            at: after(fetched_at, ttl, REFETCH_FRACTION, jitter),
        },
        // Reading before the rotation would return the old credentials
        // again, so no jitter moves this one earlier.
        Lifetime::Rotating { ttl } => SecretAction::Refetch {
            at: fetched_at + ttl.min(MAX_WAIT) + ROTATION_MARGIN,
        },
    }
}

/// The action after a lease renewal at `now` that asked for `requested` and
/// got `granted`.
///
/// The loop asks for the lease's original duration. Getting less means the
/// lease's max TTL cuts it short and it cannot be renewed past that, so the
/// secret is fetched anew while 15% of the lease's duration is still left:
/// the old and new credentials then overlap long enough for the app to
/// switch, however short the last remainder is (the max TTL is rarely a
/// multiple of the renewal period).
pub fn after_renewal(
    requested: Duration,
    granted: Duration,
    now: Instant,
    jitter: f64,
) -> SecretAction {
    if granted < requested {
        let overlap = requested.mul_f64(1.0 - REFETCH_FRACTION);
        let wait = granted
            .saturating_sub(overlap)
            .mul_f64(1.0 - JITTER * unit(jitter))
            .max(MIN_WAIT);
        SecretAction::Refetch { at: now + wait }
    } else {
        SecretAction::Renew {
            at: after(now, granted, RENEW_FRACTION, jitter),
        }
    }
}

/// What to do next about the agent's Vault token.
///
/// Besides these planned actions the loop logs in again at once when a
/// renewal fails, or when a request was denied (403) and `lookup-self`
/// confirms the token is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// Renew the token (`auth/token/renew-self`) at `at`.
    Renew {
        /// When to renew.
        at: Instant,
    },
    /// Log in again for a new token at `at`.
    Login {
        /// When to log in.
        at: Instant,
    },
}

impl TokenAction {
    /// When the action is due.
    pub fn at(&self) -> Instant {
        match *self {
            Self::Renew { at } | Self::Login { at } => at,
        }
    }
}

/// The first action for a token with `ttl` issued at `issued_at`; `None` for
/// a token that never expires (TTL 0, e.g. a root token).
pub fn token_action(
    ttl: Duration,
    renewable: bool,
    issued_at: Instant,
    jitter: f64,
) -> Option<TokenAction> {
    if ttl.is_zero() {
        None
    } else if renewable {
        Some(TokenAction::Renew {
            at: after(issued_at, ttl, RENEW_FRACTION, jitter),
        })
    } else {
        Some(TokenAction::Login {
            at: after(issued_at, ttl, REFETCH_FRACTION, jitter),
        })
    }
}

/// The action after a token renewal at `now` that asked for `requested` and
/// got `granted`: renew again, or, when the token's max TTL is near, log in
/// again before it ends.
pub fn after_token_renewal(
    requested: Duration,
    granted: Duration,
    now: Instant,
    jitter: f64,
) -> TokenAction {
    if granted < requested {
        TokenAction::Login {
            at: after(now, granted, REFETCH_FRACTION, jitter),
        }
    } else {
        TokenAction::Renew {
            at: after(now, granted, RENEW_FRACTION, jitter),
        }
    }
}

/// `from` plus `fraction` of `span`, less jitter, within the wait bounds.
fn after(from: Instant, span: Duration, fraction: f64, jitter: f64) -> Instant {
    let wait = span
        .min(MAX_WAIT)
        .mul_f64(fraction * (1.0 - JITTER * unit(jitter)))
        .max(MIN_WAIT);
    from + wait
}

/// `jitter` clamped to `[0, 1]`; anything that is not a number counts as 0.
fn unit(jitter: f64) -> f64 {
    if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use serde_json::json;

    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn mk_secret(envelope: serde_json::Value) -> Secret {
        serde_json::from_value(envelope).expect("valid Vault response")
    }

    fn unix(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + secs(s)
    }

    fn wait(action: SecretAction, from: Instant) -> (&'static str, Duration) {
        match action {
            SecretAction::Renew { at } => ("renew", at - from),
            SecretAction::Refetch { at } => ("refetch", at - from),
        }
    }

    fn token_wait(action: TokenAction, from: Instant) -> (&'static str, Duration) {
        match action {
            TokenAction::Renew { at } => ("renew", at - from),
            TokenAction::Login { at } => ("login", at - from),
        }
    }

    #[test]
    fn renews_lease_at_two_thirds_of_ttl() {
        let now = Instant::now();
        let action = next_action(
            Lifetime::Renewable { ttl: secs(3600) },
            now,
            FIVE_MINUTES,
            0.0,
        );
        assert_eq!(wait(action, now), ("renew", secs(2400)));
    }

    #[test]
    fn jitter_moves_renewal_earlier_by_at_most_five_percent() {
        let now = Instant::now();
        let lifetime = Lifetime::Renewable { ttl: secs(3600) };
        let earliest = next_action(lifetime, now, FIVE_MINUTES, 1.0);
        let midway = next_action(lifetime, now, FIVE_MINUTES, 0.5);
        assert_eq!(wait(earliest, now), ("renew", secs(2280)));
        assert_eq!(wait(midway, now), ("renew", secs(2340)));
    }

    #[test]
    fn jitter_outside_zero_to_one_never_moves_an_action_later() {
        let now = Instant::now();
        let lifetime = Lifetime::Renewable { ttl: secs(3600) };
        for jitter in [-3.0, f64::NAN, f64::INFINITY] {
            let action = next_action(lifetime, now, FIVE_MINUTES, jitter);
            assert_eq!(wait(action, now), ("renew", secs(2400)), "jitter {jitter}");
        }
        let action = next_action(lifetime, now, FIVE_MINUTES, 7.0);
        assert_eq!(wait(action, now), ("renew", secs(2280)));
    }

    #[test]
    fn renews_again_at_two_thirds_when_renewal_grants_what_was_asked() {
        let now = Instant::now();
        let action = after_renewal(secs(3600), secs(3600), now, 0.0);
        assert_eq!(wait(action, now), ("renew", secs(2400)));
    }

    #[test]
    fn refetches_while_15_percent_of_the_lease_is_left_when_max_ttl_is_near() {
        let now = Instant::now();
        let action = after_renewal(secs(3600), secs(1200), now, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(660)));
    }

    #[test]
    fn short_remainder_still_leaves_15_percent_of_the_lease_to_overlap() {
        let now = Instant::now();
        // 85% of 20s would leave 3s; 15% of the 60s lease is 9s.
        let action = after_renewal(secs(60), secs(20), now, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(11)));
    }

    #[test]
    fn refetches_after_a_second_when_renewal_grants_nothing() {
        let now = Instant::now();
        let action = after_renewal(secs(3600), Duration::ZERO, now, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(1)));
    }

    #[test]
    fn kv2_secret_rereads_every_static_interval() {
        let secret = mk_secret(json!({
            "request_id": "r", "lease_id": "", "lease_duration": 0, "renewable": false,
            "data": {"data": {"password": "p"}, "metadata": {"version": 3}},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Static);
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", FIVE_MINUTES));
        let action = next_action(lifetime, now, secs(30), 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(30)));
    }

    #[test]
    fn kv1_secret_without_ttl_rereads_every_static_interval() {
        // KV v1 reports its default lease of 768h on every read.
        let secret = mk_secret(json!({
            "lease_id": "", "lease_duration": 2_764_800, "renewable": false,
            "data": {"password": "p"},
        }));
        assert_eq!(Lifetime::of(&secret, unix(1_700_000_000)), Lifetime::Static);
    }

    #[test]
    fn kv1_secret_with_ttl_refetches_at_85_percent_of_ttl() {
        let secret = mk_secret(json!({
            "lease_id": "", "lease_duration": 600, "renewable": false,
            "data": {"password": "p", "ttl": "10m"},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Expiring { ttl: secs(600) });
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(510)));
    }

    #[test]
    fn static_role_credentials_are_reread_a_second_after_rotation() {
        let secret = mk_secret(json!({
            "lease_id": "", "lease_duration": 0, "renewable": false,
            "data": {
                "username": "app", "password": "p",
                "rotation_period": 86_400, "ttl": 3_000,
                "last_vault_rotation": "2026-11-23T18:00:00Z",
            },
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Rotating { ttl: secs(3000) });
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 1.0);
        assert_eq!(wait(action, now), ("refetch", secs(3001)));
    }

    #[test]
    fn database_credentials_are_a_renewable_lease() {
        let secret = mk_secret(json!({
            "lease_id": "database/creds/app/abc", "lease_duration": 3600, "renewable": true,
            "data": {"username": "u", "password": "p"},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Renewable { ttl: secs(3600) });
        assert_eq!(lifetime.ttl(), Some(secs(3600)));
    }

    #[test]
    fn non_renewable_lease_refetches_at_85_percent_of_ttl() {
        let secret = mk_secret(json!({
            "lease_id": "aws/sts/app/xyz", "lease_duration": 1000, "renewable": false,
            "data": {"access_key": "a"},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(850)));
    }

    #[test]
    fn pki_cert_refetches_at_85_percent_of_validity() {
        let secret = mk_secret(json!({
            "lease_id": "", "lease_duration": 0, "renewable": false,
            "data": {
                "certificate": "-----BEGIN CERTIFICATE-----",
                "expiration": 1_700_002_000u64,
                "serial_number": "1a:2b",
            },
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Expiring { ttl: secs(2000) });
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(1700)));
    }

    #[test]
    fn pki_cert_with_a_lease_follows_its_expiration_not_the_lease() {
        let secret = mk_secret(json!({
            "lease_id": "pki/issue/web/123", "lease_duration": 86_400, "renewable": false,
            "data": {"certificate": "c", "expiration": 1_700_000_100u64},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(lifetime, Lifetime::Expiring { ttl: secs(100) });
    }

    #[test]
    fn expired_certificate_is_refetched_after_a_second_not_in_a_loop() {
        let secret = mk_secret(json!({
            "data": {"certificate": "c", "expiration": 1_600_000_000u64},
        }));
        let lifetime = Lifetime::of(&secret, unix(1_700_000_000));
        assert_eq!(
            lifetime,
            Lifetime::Expiring {
                ttl: Duration::ZERO
            }
        );
        let now = Instant::now();
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", secs(1)));
    }

    #[test]
    fn lease_of_many_years_is_revisited_within_a_year() {
        let now = Instant::now();
        let lifetime = Lifetime::Expiring {
            ttl: secs(u64::MAX),
        };
        let action = next_action(lifetime, now, FIVE_MINUTES, 0.0);
        assert_eq!(wait(action, now), ("refetch", MAX_WAIT.mul_f64(0.85)));
    }

    #[test]
    fn renews_token_at_two_thirds_of_ttl() {
        let now = Instant::now();
        let action = token_action(secs(1800), true, now, 0.0).expect("token expires");
        assert_eq!(token_wait(action, now), ("renew", secs(1200)));
    }

    #[test]
    fn logs_in_again_at_85_percent_of_a_non_renewable_token() {
        let now = Instant::now();
        let action = token_action(secs(1000), false, now, 0.0).expect("token expires");
        assert_eq!(token_wait(action, now), ("login", secs(850)));
    }

    #[test]
    fn token_that_never_expires_needs_no_action() {
        assert_eq!(
            token_action(Duration::ZERO, false, Instant::now(), 0.0),
            None
        );
    }

    #[test]
    fn renews_token_again_when_renewal_grants_what_was_asked() {
        let now = Instant::now();
        let action = after_token_renewal(secs(1800), secs(1800), now, 0.0);
        assert_eq!(token_wait(action, now), ("renew", secs(1200)));
    }

    #[test]
    fn logs_in_again_when_token_renewal_hits_max_ttl() {
        let now = Instant::now();
        let action = after_token_renewal(secs(1800), secs(600), now, 0.0);
        assert_eq!(token_wait(action, now), ("login", secs(510)));
    }

    #[tokio::test(start_paused = true)]
    async fn due_waits_until_the_planned_instant() {
        let start = Instant::now();
        let action = next_action(
            Lifetime::Renewable { ttl: secs(90) },
            start,
            FIVE_MINUTES,
            0.0,
        );
        let mut due = Box::pin(action.due());

        tokio::time::advance(secs(59)).await;
        assert_eq!(due.as_mut().now_or_never(), None, "due before 60s");

        tokio::time::advance(secs(1)).await;
        assert_eq!(due.as_mut().now_or_never(), Some(action));
        assert_eq!(Instant::now() - start, secs(60));
    }
}
