//! One retry policy for everything keyhole tries again: logins, Vault
//! requests, lease refreshes, token renewals, token sink writes, and the
//! injector's auto-TLS refresh.
//!
//! The wait before retry `n` (0 for the first retry) is `min` doubled `n`
//! times, capped at `max`, with jitter that takes up to half of it off but
//! never goes below `min`. So the waits grow while the failure lasts, pods
//! that failed together (a Vault restart) spread their retries instead of
//! arriving in step, and `min` stays a true minimum, as Vault Agent's
//! `min_backoff` is.

use std::time::Duration;

/// How long to wait between tries: the bounds of an exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    min: Duration,
    max: Duration,
}

impl Policy {
    /// Waits from `min` up to `max`; a `max` below `min` waits `min`.
    pub const fn new(min: Duration, max: Duration) -> Self {
        let max = if max.as_nanos() < min.as_nanos() {
            min
        } else {
            max
        };
        Self { min, max }
    }

    /// The wait before retry number `attempt` (0 for the first retry).
    /// `jitter` is a random fraction in `[0, 1)`; anything outside counts as
    /// the nearest end, and a NaN as 0.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .min
            .checked_mul(2u32.saturating_pow(attempt))
            .map_or(self.max, |doubled| doubled.min(self.max));
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        ceiling.mul_f64(1.0 - 0.5 * jitter).max(self.min)
    }

    /// A fresh count of failures under this policy, with no limit.
    pub fn backoff(self) -> Backoff {
        Backoff {
            policy: self,
            failures: 0,
            retries_left: None,
        }
    }

    /// The waits of at most `retries` retries (every retry with `None`), as
    /// an iterator for `backon`.
    pub fn retries(self, retries: Option<u32>) -> Backoff {
        Backoff {
            retries_left: retries,
            ..self.backoff()
        }
    }
}

/// Failures in a row under a [`Policy`], giving the wait before the next try.
///
/// As an iterator it yields the wait before each retry and ends when the
/// retries run out, which is what `backon` expects.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
    retries_left: Option<u32>,
}

impl Backoff {
    /// Counts a failure and returns how long to wait before trying again.
    pub fn failed(&mut self) -> Duration {
        let delay = self.policy.delay(self.failures, rand::random());
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Counts a success: the next failure waits the shortest time again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if let Some(left) = &mut self.retries_left {
            *left = left.checked_sub(1)?;
        }
        Some(self.failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_from_min_and_caps_at_max() {
        let policy = Policy::new(secs(1), secs(60));
        let delays: Vec<u64> = (0..8)
            .map(|attempt| policy.delay(attempt, 0.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(policy.delay(u32::MAX, 0.0), secs(60));
    }

    #[test]
    fn jitter_takes_off_at_most_half_and_never_goes_below_min() {
        let policy = Policy::new(secs(1), secs(60));
        assert_eq!(policy.delay(3, 1.0), secs(4));
        assert_eq!(policy.delay(3, 0.5), secs(6));
        assert_eq!(policy.delay(0, 1.0), secs(1));
        assert_eq!(policy.delay(1, 1.0), secs(1));
    }

    #[test]
    fn jitter_outside_zero_to_one_stays_in_bounds() {
        let policy = Policy::new(secs(1), secs(60));
        assert_eq!(policy.delay(3, -2.0), secs(8));
        assert_eq!(policy.delay(3, f64::NAN), secs(8));
        assert_eq!(policy.delay(3, 7.0), secs(4));
    }

    #[test]
    fn max_below_min_waits_min() {
        let policy = Policy::new(secs(5), secs(1));
        assert_eq!(policy.delay(0, 0.0), secs(5));
        assert_eq!(policy.delay(4, 1.0), secs(5));
    }

    #[test]
    fn every_wait_lies_between_min_and_the_doubling_ceiling() {
        let mut backoff = Policy::new(secs(1), secs(30)).backoff();
        for n in 0..40u32 {
            let delay = backoff.failed();
            let ceiling = secs(1 << n.min(20)).min(secs(30));
            assert!(delay >= secs(1), "delay {n} is {delay:?}");
            assert!(
                delay <= ceiling,
                "delay {n} is {delay:?}, above {ceiling:?}"
            );
        }
    }

    #[test]
    fn success_starts_the_waits_over() {
        let mut backoff = Policy::new(secs(1), secs(60)).backoff();
        for _ in 0..5 {
            backoff.failed();
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(), secs(1));
    }

    #[test]
    fn retries_end_after_the_limit() {
        let policy = Policy::new(secs(1), secs(5));
        assert_eq!(policy.retries(Some(3)).count(), 3);
        assert_eq!(policy.retries(Some(0)).count(), 0);
        assert_eq!(policy.retries(None).take(100).count(), 100);
    }
}
