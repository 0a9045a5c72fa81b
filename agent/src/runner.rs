//! The agent's life: log in, render every template, then keep the token,
//! the leases and the files current until SIGTERM. In supervisor mode the
//! renders also feed the [`Supervisor`]'s child, whose own exit ends the
//! agent with its status.
//!
//! In init mode (`exit_after_auth`) it stops after the first render and its
//! exit code says whether every template rendered. As a sidecar it waits for
//! whichever comes first: what the token [`Session`] has due (a renewal, a
//! login, a sink write), a secret's renewal or re-fetch in the [`Cache`], or
//! shutdown. A Vault outage never empties a file: a failed refresh keeps the
//! last good secret and is retried with backoff. When Vault refuses a
//! request (403), or comes back as a new cluster
//! ([`vault::RestartWatch`]), the session checks whether the token is gone
//! and, if so, logs in again and every cached secret is fetched anew.
//!
//! With `wrap_ttl` on the auth method the agent only logs in, wrapped, and
//! writes the `wrap_info` to its sink ([`Wrapped`]): it holds no token to
//! keep or render with.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backon::Retryable;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::auth::Authenticator;
use crate::backoff;
use crate::cache::{self, Cache};
use crate::config::{AgentConfig, AutoAuth};
use crate::heartbeat;
use crate::lease::SecretAction;
use crate::listener;
use crate::metrics::{LoginOutcome, Metrics};
use crate::persist::Store;
use crate::proxy::Proxy;
use crate::render::{Rendered, Renderer};
use crate::session::{self, Acted, Session};
use crate::supervisor::Supervisor;
use crate::telemetry;
use crate::vault::{self, Token};
use crate::write;

/// The waits between retries of failed Vault requests, token renewals and
/// sink writes. Logins wait as the `auto_auth` method's `min_backoff` and
/// `max_backoff` say instead, as in Vault Agent.
const RETRY: backoff::Policy =
    backoff::Policy::new(Duration::from_millis(250), Duration::from_secs(60));

/// In init mode no wait between retries is longer than this, logins
/// included. Twelve retries (`vault.retry.num_retries`' default) then give
/// up within about two minutes, the agent exits naming the failure, and the
/// kubelet's restart backoff takes over with `Init:Error` on the pod. With
/// Vault Agent's 5-minute `max_backoff` a pod would sit in `Init:0/1` for
/// over twenty minutes before anything changed.
const INIT_MAX_WAIT: Duration = Duration::from_secs(15);

/// How long revoking leases and the token may delay shutdown: vault-k8s's
/// default revoke grace. A busy Vault can take seconds to revoke database
/// credentials (it runs the role's revocation statements), and a revocation
/// cut short leaves them alive until their TTL. Well within Kubernetes's
/// default 30-second termination grace period.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the agent with `config` until it is done (init mode) or told to
/// stop, and returns the process exit code. `request_timeout` overrides the
/// Vault client's default. All along, it touches `keyhole { heartbeat_file }`.
pub async fn run(
    config: AgentConfig,
    request_timeout: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let heartbeat = config.keyhole.heartbeat_file.clone();
    let metrics = Arc::new(Metrics::new());
    let push = telemetry::Push::start(&config.telemetry, Arc::clone(&metrics));
    let ran = run_agent(config, request_timeout, metrics);
    let code = heartbeat::keep_beating(heartbeat.as_deref(), ran).await;
    // Whatever ended the run, the last figures are sent.
    push.finish().await;
    code
}

/// [`run`] without the heartbeat and the telemetry.
async fn run_agent(
    config: AgentConfig,
    request_timeout: Option<Duration>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<ExitCode> {
    let init_mode = config.exit_after_auth;
    let num_retries = config.vault.num_retries;
    let bounded = init_mode || config.template_config.exit_on_retry_failure;
    let retry = retry_policy(init_mode);
    let mut client = vault::Client::builder(&config.vault);
    if let Some(timeout) = request_timeout {
        client = client.request_timeout(timeout);
    }
    let client = client.build().context("configuring the Vault client")?;
    // Every template parses before any login: a typo fails at once.
    let mut renderer = Renderer::new(&config, Arc::clone(&metrics))?;
    let connections = config.connections;
    let mut cache = Cache::new(
        client.with_reuse(connections.templating())?,
        cache::Retry {
            attempts: num_retries,
            policy: retry,
        },
        config.template_config.static_secret_render_interval,
        Arc::clone(&metrics),
    );
    prepare_files(&config, &renderer)?;
    let mut supervisor = config
        .supervisor
        .as_ref()
        .map(|s| Supervisor::new(s.exec.clone()))
        .transpose()?;

    let (stop_tx, stop) = watch::channel(false);
    let signalled = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signalled.send_replace(true);
    });
    let api = listener::Api {
        proxy: Proxy::new(
            client.with_reuse(connections.api_proxy())?,
            config.listen.api_proxy,
            config.listen.cache.is_some(),
            Arc::clone(&metrics),
        )
        .context("setting up the API proxy")?,
        metrics: Arc::clone(&metrics),
        stop: stop_tx,
    };
    let listeners = listener::start(
        &config.listen.listeners,
        config.keyhole.metrics_listen,
        &api,
    )
    .await?;
    let Some(auto_auth) = &config.auto_auth else {
        // Only the API proxy: it forwards the app's own tokens.
        stopped(stop).await;
        info!("shutting down");
        listener::drained(listeners).await;
        return Ok(ExitCode::SUCCESS);
    };

    let auth_client = client.with_reuse(connections.auto_auth())?;
    if let Some(ttl) = auto_auth.method.wrap_ttl {
        let wrapped = Wrapped {
            authenticator: Authenticator::new(&init_capped(auto_auth, init_mode)),
            client: auth_client,
            ttl,
            login_retries: bounded.then_some(num_retries),
            retry,
            init_mode,
            renders: !renderer.entries().is_empty() || supervisor.is_some(),
        };
        if config
            .listen
            .cache
            .as_ref()
            .is_some_and(|c| c.persist.is_some())
        {
            info!(
                "cache.persist keeps nothing: with wrap_ttl on the auth method the agent holds no token"
            );
        }
        let code = tokio::select! {
            code = wrapped.run(&metrics) => code?,
            () = stopped(stop.clone()) => ExitCode::SUCCESS,
        };
        if code == ExitCode::SUCCESS && !init_mode {
            stopped(stop).await;
            info!("shutting down");
        }
        listener::drained(listeners).await;
        return Ok(code);
    }
    let live = session::Live {
        authenticator: Authenticator::new(&init_capped(auto_auth, init_mode)),
        client: auth_client.clone(),
        metrics: Arc::clone(&metrics),
        login_retries: bounded.then_some(num_retries),
    };
    let mut session = Session::new(live, retry, init_mode);
    let mut store = config
        .listen
        .cache
        .as_ref()
        .and_then(|cache| cache.persist.as_ref())
        .map(|persist| Store::open(persist, &config.vault, &auto_auth.method))
        .transpose()?;
    let resumed = match &mut store {
        Some(store) => resume(store, &mut session, &mut cache).await?,
        None => false,
    };
    // The first login, unless the token was resumed or shutdown comes first.
    if !resumed {
        tokio::select! {
            acted = session.act() => acted?,
            () = stopped(stop.clone()) => {
                listener::drained(listeners).await;
                return Ok(ExitCode::SUCCESS);
            }
        };
    }

    let report = renderer.render(&mut cache, &BTreeSet::new()).await;
    let denied = report.denied;
    let failed = log_failures(report.rendered);
    if resumed {
        cache.retain_used(&renderer.used());
    }
    save(store.as_ref(), &client, &session, &cache);
    mark_ready(&config, &renderer)?;
    if init_mode {
        return Ok(if failed == 0 {
            info!(
                templates = renderer.entries().len(),
                "all templates rendered"
            );
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if denied {
        session.check_token().await;
    }
    if let Some(supervisor) = &mut supervisor {
        supervisor.update(renderer.environment()).await?;
    }

    let mut restarts = auth_client.watch_restarts();
    // The child's exit code, once it exits by itself.
    let mut exit = ExitCode::SUCCESS;
    loop {
        let session_due = session.next_due();
        let secret_due = cache.next_due().map(SecretAction::due);
        // Biased: a new login comes before refreshing secrets with a token
        // that is gone.
        tokio::select! {
            biased;
            () = stopped(stop.clone()) => break,
            code = child_exit(&mut supervisor) => {
                exit = code;
                break;
            }
            () = restarts.new_cluster() => {
                // Its data, the token included, is most likely gone.
                tokio::select! {
                    () = session.check_token() => {}
                    () = stopped(stop.clone()) => break,
                }
            }
            () = until(session_due.map(tokio::time::sleep_until)) => {
                let acted = tokio::select! {
                    acted = session.act() => acted?,
                    () = stopped(stop.clone()) => break,
                };
                if acted == Acted::LoggedIn {
                    // Leases obtained with the old token end with it.
                    cache.expire_all();
                }
                save(store.as_ref(), &client, &session, &cache);
            }
            () = until(renderer.next_due().map(tokio::time::sleep_until)) => {
                // A change a template's `wait` held back, with the secrets
                // as they are now.
                let unchanged = BTreeSet::new();
                let report = tokio::select! {
                    report = renderer.render(&mut cache, &unchanged) => report,
                    () = stopped(stop.clone()) => break,
                };
                log_failures(report.rendered);
                if report.denied {
                    session.check_token().await;
                }
                save(store.as_ref(), &client, &session, &cache);
            }
            () = until(secret_due) => {
                // Requests to a slow Vault must not hold up shutdown.
                let work = async {
                    let refreshed = cache.refresh_due().await;
                    let report = renderer.render(&mut cache, &refreshed.changed).await;
                    log_failures(report.rendered);
                    if refreshed.denied || report.denied {
                        session.check_token().await;
                    }
                };
                let finished = tokio::select! {
                    () = work => true,
                    () = stopped(stop.clone()) => false,
                };
                if !finished {
                    break;
                }
                if let Some(supervisor) = &mut supervisor {
                    supervisor.update(renderer.environment()).await?;
                }
                save(store.as_ref(), &client, &session, &cache);
                mark_ready(&config, &renderer)?;
            }
        }
    }

    info!("shutting down");
    if let Some(supervisor) = &mut supervisor {
        supervisor.stop().await;
    }
    if config.keyhole.revoke_on_shutdown {
        let grace = config.keyhole.revoke_grace;
        if !grace.is_zero() {
            // The files stay, and the leases stay valid, while the app stops.
            info!("revoking in {grace:?}");
            tokio::time::sleep(grace).await;
        }
        revoke(&client, &cache).await;
        // The next agent of the pod must not take over a revoked token.
        if let Some(store) = &store {
            store.remove();
        }
    }
    listener::drained(listeners).await;
    Ok(exit)
}

/// An agent whose auth method sets `wrap_ttl`. As in Vault Agent, it logs
/// in once, response-wrapped, writes the `wrap_info` to its one sink, and
/// then has nothing left to do: it holds no token to renew, lend to the API
/// proxy or render templates with.
struct Wrapped {
    authenticator: Authenticator,
    client: vault::Client,
    ttl: Duration,
    login_retries: Option<u32>,
    /// Retries of a sink that cannot be written, outside init mode.
    retry: backoff::Policy,
    init_mode: bool,
    /// Whether the config has templates or env_template stanzas, which
    /// cannot render.
    renders: bool,
}

impl Wrapped {
    /// Logs in and writes the sink. Fails when the login fails for good, or
    /// the sink cannot be written in init mode. The exit code is a failure
    /// when there are templates, in init mode: none of them rendered.
    async fn run(self, metrics: &Metrics) -> anyhow::Result<ExitCode> {
        let login = self
            .authenticator
            .login_wrapped_with_retries(&self.client, self.ttl, self.login_retries)
            .await;
        metrics.login(if login.is_ok() {
            LoginOutcome::Success
        } else {
            LoginOutcome::Failure
        });
        let info = login.context("logging in to Vault")?;
        let write = || async { self.authenticator.write_wrapped_sinks(&info) };
        if self.init_mode {
            write().await.context("writing the wrapped token")?;
        } else {
            write
                .retry(self.retry.retries(None))
                .notify(|err, delay| error!(retry_in = ?delay, "writing the wrapped token failed: {err}"))
                .await?;
        }
        if !self.renders {
            return Ok(ExitCode::SUCCESS);
        }
        error!(
            "no template renders: with wrap_ttl on the auth method the agent holds only the wrapped token, which reads no secret"
        );
        Ok(if self.init_mode {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Waits for the supervised child to exit by itself; forever without one.
async fn child_exit(supervisor: &mut Option<Supervisor>) -> ExitCode {
    match supervisor {
        Some(supervisor) => supervisor.exited().await,
        None => std::future::pending().await,
    }
}

/// Takes over the token and leases an earlier agent of the pod left in
/// `store`. Returns whether Vault still knew the token.
async fn resume<V: session::Vault>(
    store: &mut Store,
    session: &mut Session<V>,
    cache: &mut Cache,
) -> anyhow::Result<bool> {
    let Some(mut state) = store.load()? else {
        return Ok(false);
    };
    let token = Token::new(std::mem::take(&mut *state.token.token));
    let resumed = session
        .resume(token, Duration::from_secs(state.token.ttl))
        .await?;
    if resumed {
        let leases = cache.restore(state.leases);
        info!(
            leases,
            "took over the leases of an earlier agent of this pod"
        );
    }
    Ok(resumed)
}

/// Writes the token and the leases to the persistent cache, if there is
/// one. A failure costs the next agent a login, so it is only logged.
fn save<V: session::Vault>(
    store: Option<&Store>,
    client: &vault::Client,
    session: &Session<V>,
    cache: &Cache,
) {
    let (Some(store), Some(token)) = (store, client.token()) else {
        return;
    };
    if let Err(err) = store.save(&token, session.granted_ttl(), cache.leases()) {
        warn!("writing the persistent cache failed: {err:#}");
    }
}

/// The waits between retries of Vault requests, renewals and sink writes:
/// [`RETRY`], capped at [`INIT_MAX_WAIT`] in init mode.
fn retry_policy(init_mode: bool) -> backoff::Policy {
    if init_mode {
        backoff::Policy::new(Duration::from_millis(250), INIT_MAX_WAIT)
    } else {
        RETRY
    }
}

/// `auto_auth` with its `max_backoff` capped at [`INIT_MAX_WAIT`] in init
/// mode, saying so when that shortens what the config asked for.
fn init_capped(auto_auth: &AutoAuth, init_mode: bool) -> AutoAuth {
    let mut auto_auth = auto_auth.clone();
    let method = &mut auto_auth.method;
    if init_mode && method.max_backoff > INIT_MAX_WAIT {
        info!(
            max_backoff = ?method.max_backoff,
            cap = ?INIT_MAX_WAIT,
            "init mode: waits between login retries are capped so that the init container gives up within minutes"
        );
        method.max_backoff = INIT_MAX_WAIT;
    }
    auto_auth
}

/// Removes what an earlier run left behind (temporary files, the readiness
/// marker) and writes the pid file.
fn prepare_files(config: &AgentConfig, renderer: &Renderer) -> anyhow::Result<()> {
    for dir in renderer
        .entries()
        .iter()
        .filter_map(|e| e.destination()?.parent())
    {
        let removed = write::remove_stale_temp_files(dir)?;
        if removed > 0 {
            info!(dir = %dir.display(), removed, "removed temporary files of an earlier run");
        }
    }
    if let Some(ready) = &config.keyhole.ready_file {
        remove_if_present(ready)?;
    }
    if let Some(pid_file) = &config.pid_file {
        let pid = format!("{}\n", std::process::id());
        write::replace(pid_file, pid.as_bytes(), 0o644, true)?;
    }
    Ok(())
}

/// Logs one line per failed template and returns how many failed that
/// have `error_fatal` (the default).
fn log_failures(results: Vec<Rendered>) -> usize {
    let mut failed = 0;
    for rendered in results {
        if let Err(err) = rendered.result {
            if rendered.fatal {
                error!("{err}");
                failed += 1;
            } else {
                error!("{err} (error_fatal = false: the agent goes on without it)");
            }
        }
    }
    failed
}

/// Creates the readiness marker once every template has rendered.
fn mark_ready(config: &AgentConfig, renderer: &Renderer) -> anyhow::Result<()> {
    if let Some(ready) = &config.keyhole.ready_file
        && renderer.all_rendered()
        && !ready.exists()
    {
        write::replace(ready, b"ready\n", 0o644, true)?;
        info!("every template has rendered; ready");
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// Waits for `action` to be due; forever when there is none.
async fn until<T>(action: Option<impl Future<Output = T>>) {
    match action {
        Some(action) => {
            action.await;
        }
        None => std::future::pending().await,
    }
}

/// Revokes the leases and the token, within [`REVOKE_TIMEOUT`].
async fn revoke(client: &vault::Client, cache: &Cache) {
    let work = async {
        cache.revoke_leases().await;
        if let Err(err) = client.revoke_self().await {
            warn!("revoking the token failed: {err}");
        }
    };
    match tokio::time::timeout(REVOKE_TIMEOUT, work).await {
        Ok(()) => info!("revoked leases and token"),
        Err(_) => warn!("revocation did not finish within {REVOKE_TIMEOUT:?}"),
    }
}

/// Completes once shutdown was asked for.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_NUM_RETRIES;

    /// The longest an init container can spend on `retries` retries under
    /// `policy`: every wait at its ceiling (no jitter taken off).
    fn longest(policy: backoff::Policy, retries: u32) -> Duration {
        (0..retries).map(|attempt| policy.delay(attempt, 0.0)).sum()
    }

    #[test]
    fn init_mode_gives_up_within_about_two_minutes() {
        let config = AgentConfig::from_hcl(
            r#"
            exit_after_auth = true
            auto_auth {
              method "kubernetes" {
                config { role = "app" }
              }
            }
            template {
              destination = "/tmp/out"
              contents    = "x"
            }
            "#,
        )
        .expect("config parses");
        let auto_auth = config.auto_auth.as_ref().expect("auto_auth");
        assert_eq!(auto_auth.method.max_backoff, Duration::from_secs(300));

        let method = init_capped(auto_auth, true).method;
        let login = backoff::Policy::new(method.min_backoff, method.max_backoff);
        assert_eq!(
            longest(login, DEFAULT_NUM_RETRIES),
            Duration::from_secs(135)
        );
        assert_eq!(
            longest(retry_policy(true), DEFAULT_NUM_RETRIES),
            Duration::from_millis(105_750)
        );

        // A sidecar keeps Vault Agent's login backoff and the usual request retries.
        assert_eq!(retry_policy(false), RETRY);
        assert_eq!(
            init_capped(auto_auth, false).method.max_backoff,
            Duration::from_secs(300)
        );
    }
}
