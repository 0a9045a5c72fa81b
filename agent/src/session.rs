//! The agent's Vault token over its life: the first login, renewals, a new
//! login when the token reaches its max TTL or is lost, and writing it to
//! the token sinks.
//!
//! [`Session`] is a small state machine: [`Session::next_due`] says when it
//! next has something to do and [`Session::act`] does what is due. The run
//! loop only sleeps until then. A renewal that fails is retried with
//! [`crate::backoff`]; one Vault refuses (403) means a new login within
//! [`RELOGIN_SPREAD`]. A sink that cannot be written is retried the same
//! way, while the templates go on rendering with the new token; in init
//! mode it is the run's error.

use std::time::Duration;

use anyhow::Context;
use hyper::StatusCode;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::auth::{self, Authenticator};
use crate::backoff::{self, Backoff};
use crate::lease::{self, TokenAction};
use crate::metrics::{Lease, LoginOutcome, Metrics};
use crate::vault::{self, Auth, Token};

/// The longest wait before logging in again once the token is lost. When
/// Vault comes back without its data, every agent's token is gone at once;
/// spreading their logins keeps them from arriving in the same second,
/// each one a TokenReview for the Kubernetes API server. The files keep
/// their content meanwhile.
pub const RELOGIN_SPREAD: Duration = Duration::from_secs(5);

/// What a session needs from Vault and the sinks. The agent uses [`Live`];
/// unit tests use a scripted stand-in, so the schedule runs under paused
/// time.
pub trait Vault {
    /// Logs in, retrying as configured, and makes the new token the one in
    /// use.
    fn login(&self) -> impl Future<Output = anyhow::Result<Auth>>;

    /// Renews the token in use, asking for `ttl`.
    fn renew(&self, ttl: Duration) -> impl Future<Output = vault::Result<Auth>>;

    /// Makes `token`, which an earlier agent obtained, the one in use if
    /// Vault still knows it, and says how long it has left.
    fn resume(&self, token: Token) -> impl Future<Output = vault::Result<Auth>>;

    /// Whether Vault confirms the token in use is no longer valid.
    fn token_is_gone(&self) -> impl Future<Output = bool>;

    /// Writes the token in use to every sink.
    fn write_sinks(&self) -> impl Future<Output = auth::Result<()>>;
}

/// The real Vault and sinks of an `auto_auth` stanza.
#[derive(Debug)]
pub struct Live {
    /// Logs in and writes the sinks.
    pub authenticator: Authenticator,
    /// The client whose token the session keeps.
    pub client: vault::Client,
    /// Counts logins.
    pub metrics: std::sync::Arc<Metrics>,
    /// Retries of a failed login; `None` retries until it succeeds.
    pub login_retries: Option<u32>,
}

impl Live {
    /// Reports the lifetime of the token a login or renewal granted.
    fn token_granted(&self, auth: &Auth) {
        self.metrics
            .token_remaining(self.authenticator.mount_path(), auth.lease_duration);
    }
}

impl Vault for Live {
    async fn login(&self) -> anyhow::Result<Auth> {
        let result = self
            .authenticator
            .login_with_retries(&self.client, self.login_retries)
            .await;
        let outcome = match &result {
            Ok(auth) => {
                self.token_granted(auth);
                LoginOutcome::Success
            }
            Err(_) => LoginOutcome::Failure,
        };
        self.metrics.login(outcome);
        result.context("logging in to Vault")
    }

    async fn renew(&self, ttl: Duration) -> vault::Result<Auth> {
        let result = self.client.renew_self(Some(ttl)).await;
        match &result {
            Ok(auth) => self.token_granted(auth),
            Err(err) => {
                self.metrics.vault_error(err.kind());
                self.metrics.renewal_failed(Lease::Token);
            }
        }
        result
    }

    async fn resume(&self, token: Token) -> vault::Result<Auth> {
        self.client.set_token(token.clone());
        let info = self.client.lookup_self().await?;
        let auth = Auth {
            token,
            accessor: info.accessor,
            lease_duration: info.ttl,
            renewable: info.renewable,
            policies: info.policies,
        };
        self.token_granted(&auth);
        Ok(auth)
    }

    async fn token_is_gone(&self) -> bool {
        match self.client.lookup_self().await {
            Ok(_) => false,
            Err(err) => err.status() == Some(StatusCode::FORBIDDEN),
        }
    }

    async fn write_sinks(&self) -> auth::Result<()> {
        match self.client.token() {
            Some(token) => self.authenticator.write_sinks(&self.client, &token).await,
            None => Ok(()),
        }
    }
}

/// What [`Session::act`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    /// Logged in: there is a new token, and leases obtained with the old
    /// one end with it.
    LoggedIn,
    /// Renewed the token or wrote the sinks; the token is the same.
    Kept,
}

/// The token's schedule and what is left to do about it.
#[derive(Debug)]
pub struct Session<V> {
    vault: V,
    /// In init mode a sink that cannot be written fails the run.
    init_mode: bool,
    /// When a login is due: at once when there is no token yet, within
    /// [`RELOGIN_SPREAD`] once it was lost.
    login_at: Option<Instant>,
    /// The next renewal or planned login; `None` for a token that never
    /// expires.
    token: Option<TokenAction>,
    /// What renewals ask for: the TTL the login granted, as Vault Agent
    /// does.
    ttl: Duration,
    /// When to write the sinks again after a failure.
    sink_retry: Option<Instant>,
    renewals: Backoff,
    sink_writes: Backoff,
}

impl<V: Vault> Session<V> {
    /// A session with no token yet: its first [`Session::act`] logs in.
    /// Failed renewals and sink writes wait as `retry` says.
    pub fn new(vault: V, retry: backoff::Policy, init_mode: bool) -> Self {
        Self {
            vault,
            init_mode,
            login_at: Some(Instant::now()),
            token: None,
            ttl: Duration::ZERO,
            sink_retry: None,
            renewals: retry.backoff(),
            sink_writes: retry.backoff(),
        }
    }

    /// When something is next due; `None` when nothing ever is (a token
    /// that never expires, written to every sink).
    pub fn next_due(&self) -> Option<Instant> {
        [
            self.login_at,
            self.sink_retry,
            self.token.map(|token| token.at()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Does what is due: a login, a sink write, a renewal. Fails only when a
    /// login fails for good, or a sink cannot be written in init mode.
    pub async fn act(&mut self) -> anyhow::Result<Acted> {
        let now = Instant::now();
        let planned_login = matches!(self.token, Some(TokenAction::Login { at }) if at <= now);
        if self.login_at.is_some_and(|at| at <= now) || planned_login {
            self.login().await?;
            return Ok(Acted::LoggedIn);
        }
        if self.sink_retry.is_some_and(|at| at <= now) {
            self.write_sinks().await?;
        }
        if let Some(TokenAction::Renew { at }) = self.token
            && at <= now
        {
            self.renew().await;
        }
        Ok(Acted::Kept)
    }

    /// After Vault refused a request (403): makes a login due if Vault
    /// confirms the token is gone. A refusal the token's policies explain
    /// leaves it alone, and a login already due needs no second look.
    pub async fn check_token(&mut self) {
        if self.login_at.is_none() && self.vault.token_is_gone().await {
            self.relogin("Vault no longer knows the token");
        }
    }

    /// Makes a login due at a random moment within [`RELOGIN_SPREAD`].
    fn relogin(&mut self, why: &str) {
        let delay = RELOGIN_SPREAD.mul_f64(rand::random::<f64>());
        warn!(wait = ?delay, "{why}; logging in again");
        self.token = None;
        self.login_at = Some(Instant::now() + delay);
    }

    /// Takes over `token`, which an earlier agent of the pod obtained with a
    /// login that granted `ttl`, instead of logging in. Returns whether Vault
    /// still knows it; if not, the first [`Session::act`] logs in. Fails
    /// only when a sink cannot be written in init mode.
    pub async fn resume(&mut self, token: Token, ttl: Duration) -> anyhow::Result<bool> {
        match self.vault.resume(token).await {
            Ok(auth) => {
                info!(
                    remaining = ?auth.lease_duration,
                    renewable = auth.renewable,
                    "using the token of an earlier agent of this pod"
                );
                self.start(
                    &auth,
                    if ttl.is_zero() {
                        auth.lease_duration
                    } else {
                        ttl
                    },
                );
                self.write_sinks().await?;
                Ok(true)
            }
            Err(err) => {
                info!("the token of an earlier agent cannot be used, logging in: {err}");
                Ok(false)
            }
        }
    }

    /// The TTL the token's login granted, which renewals ask for.
    pub fn granted_ttl(&self) -> Duration {
        self.ttl
    }

    async fn login(&mut self) -> anyhow::Result<()> {
        let auth = self.vault.login().await?;
        self.start(&auth, auth.lease_duration);
        self.write_sinks().await
    }

    /// Schedules the first renewal or login for the token `auth` describes,
    /// whose login granted `ttl`.
    fn start(&mut self, auth: &Auth, ttl: Duration) {
        self.login_at = None;
        self.ttl = ttl;
        self.token = lease::token_action(
            auth.lease_duration,
            auth.renewable,
            Instant::now(),
            rand::random::<f64>(),
        );
        self.renewals.succeeded();
    }

    async fn renew(&mut self) {
        match self.vault.renew(self.ttl).await {
            Ok(auth) => {
                self.renewals.succeeded();
                self.token = Some(lease::after_token_renewal(
                    self.ttl,
                    auth.lease_duration,
                    Instant::now(),
                    rand::random::<f64>(),
                ));
            }
            Err(err) if err.status() == Some(StatusCode::FORBIDDEN) => {
                self.relogin(&format!("token renewal refused: {err}"));
            }
            Err(err) => {
                let delay = self.renewals.failed();
                warn!(retry_in = ?delay, "token renewal failed: {err}");
                self.token = Some(TokenAction::Renew {
                    at: Instant::now() + delay,
                });
            }
        }
    }

    async fn write_sinks(&mut self) -> anyhow::Result<()> {
        match self.vault.write_sinks().await {
            Ok(()) => {
                self.sink_writes.succeeded();
                self.sink_retry = None;
                Ok(())
            }
            // A sidecar keeps going: the token still works for rendering.
            Err(err) if !self.init_mode => {
                let delay = self.sink_writes.failed();
                error!(retry_in = ?delay, "writing the token failed: {err}");
                self.sink_retry = Some(Instant::now() + delay);
                Ok(())
            }
            Err(err) => Err(err).context("writing the token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::path::PathBuf;

    use hyper::Method;

    use super::*;
    use crate::vault::Token;
    use crate::{sink, write};

    const SECOND: Duration = Duration::from_secs(1);

    /// Vault and sinks that answer as the test says and count the calls.
    #[derive(Default)]
    struct Scripted {
        /// TTL and renewability of each login's token.
        ttl: Duration,
        renewable: bool,
        /// Answers to renewals in turn; once used up, a renewal grants
        /// what it asked for.
        renewals: RefCell<VecDeque<vault::Error>>,
        /// Sink writes that fail before one succeeds.
        sink_failures: Cell<u32>,
        /// Whether `lookup-self` says the token is gone.
        gone: bool,
        logins: Cell<u32>,
        renewed: Cell<u32>,
        sink_writes: Cell<u32>,
    }

    impl Scripted {
        fn auth(&self, ttl: Duration) -> Auth {
            Auth {
                token: Token::new("hvs.test".to_owned()),
                accessor: String::new(),
                lease_duration: ttl,
                renewable: self.renewable,
                policies: Vec::new(),
            }
        }
    }

    impl Vault for &Scripted {
        async fn login(&self) -> anyhow::Result<Auth> {
            self.logins.set(self.logins.get() + 1);
            Ok(self.auth(self.ttl))
        }

        async fn renew(&self, ttl: Duration) -> vault::Result<Auth> {
            self.renewed.set(self.renewed.get() + 1);
            match self.renewals.borrow_mut().pop_front() {
                Some(err) => Err(err),
                None => Ok(self.auth(ttl)),
            }
        }

        async fn resume(&self, _token: Token) -> vault::Result<Auth> {
            if self.gone {
                Err(refused())
            } else {
                Ok(self.auth(self.ttl / 2))
            }
        }

        async fn token_is_gone(&self) -> bool {
            self.gone
        }

        async fn write_sinks(&self) -> auth::Result<()> {
            self.sink_writes.set(self.sink_writes.get() + 1);
            let failures = self.sink_failures.get();
            if failures == 0 {
                return Ok(());
            }
            self.sink_failures.set(failures - 1);
            Err(auth::Error::Sink(sink::Error::Write(
                write::Error::MissingDirectory {
                    path: PathBuf::from("/vault/token/token"),
                    dir: PathBuf::from("/vault/token"),
                },
            )))
        }
    }

    fn renewable(ttl: Duration) -> Scripted {
        Scripted {
            ttl,
            renewable: true,
            ..Scripted::default()
        }
    }

    fn refused() -> vault::Error {
        vault::Error::Status {
            method: Method::PUT,
            path: "auth/token/renew-self".to_owned(),
            status: StatusCode::FORBIDDEN,
            errors: Vec::new(),
            withheld: false,
        }
    }

    fn timed_out() -> vault::Error {
        vault::Error::Timeout {
            address: "http://127.0.0.1:8200".to_owned(),
            method: Method::PUT,
            path: "auth/token/renew-self".to_owned(),
        }
    }

    fn session(vault: &Scripted, init_mode: bool) -> Session<&Scripted> {
        Session::new(vault, backoff::Policy::new(SECOND, 60 * SECOND), init_mode)
    }

    /// Sleeps until the session is due and acts.
    async fn step(session: &mut Session<&Scripted>) -> Acted {
        let due = session.next_due().expect("something is due");
        tokio::time::sleep_until(due).await;
        session.act().await.expect("act")
    }

    /// How long from `start` the session is next due.
    fn due_in(session: &Session<&Scripted>, start: Instant) -> Duration {
        session.next_due().expect("something is due") - start
    }

    #[tokio::test(start_paused = true)]
    async fn logs_in_first_then_renews_at_two_thirds_of_the_ttl() {
        let vault = renewable(30 * SECOND);
        let mut session = session(&vault, false);
        let start = Instant::now();
        assert_eq!(session.next_due(), Some(start));
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        assert_eq!((vault.logins.get(), vault.sink_writes.get()), (1, 1));

        // Two thirds of 30 s, less up to 5% jitter.
        let renewal = due_in(&session, start);
        assert!(
            (19 * SECOND..=20 * SECOND).contains(&renewal),
            "{renewal:?}"
        );
        assert_eq!(step(&mut session).await, Acted::Kept);
        assert_eq!((vault.logins.get(), vault.renewed.get()), (1, 1));
        let again = due_in(&session, start) - renewal;
        assert!((19 * SECOND..=20 * SECOND).contains(&again), "{again:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn refused_renewal_logs_in_again_within_the_spread() {
        let vault = renewable(30 * SECOND);
        vault.renewals.borrow_mut().push_back(refused());
        let mut session = session(&vault, false);
        step(&mut session).await;
        assert_eq!(step(&mut session).await, Acted::Kept);
        let wait = due_in(&session, Instant::now());
        assert!(wait < RELOGIN_SPREAD, "{wait:?}");
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        assert_eq!((vault.logins.get(), vault.sink_writes.get()), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_renewal_is_retried_with_backoff_then_on_schedule() {
        let vault = renewable(30 * SECOND);
        vault
            .renewals
            .borrow_mut()
            .extend([timed_out(), timed_out()]);
        let mut session = session(&vault, false);
        step(&mut session).await;
        step(&mut session).await;
        let failed = Instant::now();
        assert_eq!(due_in(&session, failed), SECOND);
        step(&mut session).await;
        let second = due_in(&session, failed) - SECOND;
        assert!((SECOND..=2 * SECOND).contains(&second), "{second:?}");
        step(&mut session).await;
        assert_eq!(vault.renewed.get(), 3);
        let renewed = Instant::now();
        let next = due_in(&session, renewed);
        assert!((19 * SECOND..=20 * SECOND).contains(&next), "{next:?}");
        assert_eq!(vault.logins.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn non_renewable_token_is_replaced_by_a_login_at_85_percent() {
        let vault = Scripted {
            ttl: 100 * SECOND,
            ..Scripted::default()
        };
        let mut session = session(&vault, false);
        let start = Instant::now();
        step(&mut session).await;
        let login = due_in(&session, start);
        assert!((80 * SECOND..=85 * SECOND).contains(&login), "{login:?}");
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        assert_eq!((vault.logins.get(), vault.renewed.get()), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn token_that_never_expires_leaves_nothing_due() {
        let vault = Scripted::default();
        let mut session = session(&vault, false);
        step(&mut session).await;
        assert_eq!(session.next_due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn unwritable_sink_is_retried_with_backoff_and_the_token_kept() {
        let vault = renewable(300 * SECOND);
        vault.sink_failures.set(2);
        let mut session = session(&vault, false);
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        let failed = Instant::now();
        assert_eq!(due_in(&session, failed), SECOND);
        assert_eq!(step(&mut session).await, Acted::Kept);
        let second = due_in(&session, failed) - SECOND;
        assert!((SECOND..=2 * SECOND).contains(&second), "{second:?}");
        step(&mut session).await;
        assert_eq!(vault.sink_writes.get(), 3);
        // Written: only the renewal is left, two thirds into the TTL.
        let renewal = due_in(&session, failed);
        assert!(renewal > 180 * SECOND, "{renewal:?}");
        assert_eq!((vault.logins.get(), vault.renewed.get()), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn init_mode_fails_when_the_sink_cannot_be_written() {
        let vault = renewable(30 * SECOND);
        vault.sink_failures.set(1);
        let mut session = session(&vault, true);
        let err = session.act().await.expect_err("should fail");
        assert_eq!(
            crate::cli::describe(&err),
            "writing the token: auto_auth sink: /vault/token/token: directory /vault/token \
             does not exist (set create_dest_dirs to create it)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lost_token_makes_a_login_due_within_the_spread() {
        let vault = Scripted {
            gone: true,
            ..renewable(30 * SECOND)
        };
        let mut session = session(&vault, false);
        step(&mut session).await;
        session.check_token().await;
        let wait = due_in(&session, Instant::now());
        assert!(wait < RELOGIN_SPREAD, "{wait:?}");
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        assert_eq!(vault.logins.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn agents_that_lose_their_tokens_together_spread_their_logins() {
        // A hundred agents whose Vault came back empty in the same instant.
        let vault = Scripted {
            gone: true,
            ..renewable(3600 * SECOND)
        };
        let start = Instant::now();
        let mut per_second = [0_u32; 5];
        for _ in 0..100 {
            let mut session = session(&vault, false);
            assert_eq!(step(&mut session).await, Acted::LoggedIn);
            session.check_token().await;
            let wait = due_in(&session, start);
            per_second[usize::try_from(wait.as_secs()).expect("small")] += 1;
        }
        // Uniform over five seconds: about 20 a second, far from 100 at once.
        assert!(per_second.iter().all(|&n| n <= 50), "{per_second:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn token_vault_still_knows_is_kept_after_a_refusal() {
        let vault = renewable(30 * SECOND);
        let mut session = session(&vault, false);
        let start = Instant::now();
        step(&mut session).await;
        session.check_token().await;
        assert!(due_in(&session, start) >= 19 * SECOND);
    }

    #[tokio::test(start_paused = true)]
    async fn resumed_token_is_renewed_on_what_it_has_left_asking_for_its_login_ttl() {
        let vault = renewable(30 * SECOND);
        let mut session = session(&vault, false);
        let start = Instant::now();
        assert!(
            session
                .resume(Token::new("hvs.earlier".to_owned()), 30 * SECOND)
                .await
                .expect("resumes")
        );
        assert_eq!((vault.logins.get(), vault.sink_writes.get()), (0, 1));
        assert_eq!(session.granted_ttl(), 30 * SECOND);

        // Scripted's token has 15 s left: renewed at two thirds of that.
        let renewal = due_in(&session, start);
        assert!((9 * SECOND..=10 * SECOND).contains(&renewal), "{renewal:?}");
        assert_eq!(step(&mut session).await, Acted::Kept);
        assert_eq!((vault.logins.get(), vault.renewed.get()), (0, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn token_vault_no_longer_knows_is_not_resumed_and_a_login_is_due() {
        let vault = Scripted {
            gone: true,
            ..renewable(30 * SECOND)
        };
        let mut session = session(&vault, false);
        assert!(
            !session
                .resume(Token::new("hvs.earlier".to_owned()), 30 * SECOND)
                .await
                .expect("no error")
        );
        assert_eq!(session.next_due(), Some(Instant::now()));
        assert_eq!(step(&mut session).await, Acted::LoggedIn);
        assert_eq!(vault.logins.get(), 1);
    }
}
