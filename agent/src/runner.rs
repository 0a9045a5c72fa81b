//! The agent's life: log in, render every template, then keep the token,
//! the leases and the files current until SIGTERM.
//!
//! In init mode (`exit_after_auth`) it stops after the first render and its
//! exit code says whether every template rendered. As a sidecar it waits for
//! whichever comes first: the token's renewal or re-login, a secret's renewal
//! or re-fetch, or shutdown. A Vault outage never empties a file: a failed
//! refresh keeps the last good secret and is retried with backoff. A token
//! sink that cannot be written is retried the same way, while the templates
//! go on rendering with the new token.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::auth::Authenticator;
use crate::config::AgentConfig;
use crate::lease::{self, SecretAction, TokenAction};
use crate::metrics::{self, LoginOutcome, Metrics};
use crate::render::{Renderer, Retry};
use crate::vault::{self, Auth};
use crate::write;

/// First delay before a failed Vault request is retried.
const MIN_RETRY: Duration = Duration::from_millis(250);

/// Cap on the delay between retries of a failed Vault request.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// How long revoking leases and the token may delay shutdown.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the agent with `config` until it is done (init mode) or told to
/// stop, and returns the process exit code. `request_timeout` overrides the
/// Vault client's default.
pub async fn run(
    config: AgentConfig,
    request_timeout: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let auto_auth = config
        .auto_auth
        .as_ref()
        .context("the configuration has no auto_auth stanza")?;
    let init_mode = config.exit_after_auth;
    let num_retries = config.vault.num_retries;
    let bounded = init_mode || config.template_config.exit_on_retry_failure;
    let metrics = Arc::new(Metrics::new());
    let mut client = vault::Client::builder(&config.vault);
    if let Some(timeout) = request_timeout {
        client = client.request_timeout(timeout);
    }
    let client = client.build().context("configuring the Vault client")?;
    let retry = Retry {
        attempts: num_retries,
        min_backoff: MIN_RETRY,
        max_backoff: MAX_RETRY,
    };
    // Every template parses before any login: a typo fails at once.
    let mut renderer = Renderer::new(client.clone(), &config, retry, Arc::clone(&metrics))?;
    for dir in renderer
        .entries()
        .iter()
        .filter_map(|e| e.destination().parent())
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

    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    if let Some(addr) = config.keyhole.metrics_listen {
        let listener = metrics::bind(addr).await?;
        let shutdown = stopped(stop.clone());
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            if let Err(err) = metrics::serve(listener, metrics, shutdown).await {
                warn!("metrics listener stopped: {err}");
            }
        });
    }

    let authenticator = Authenticator::new(auto_auth);
    let login_retries = bounded.then_some(num_retries);
    let Some(auth) = login(&authenticator, &client, &metrics, login_retries, &stop).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut sink_failures = 0;
    let mut sink_retry = write_sinks(&authenticator, &client, init_mode, &mut sink_failures)?;

    let failed = report(renderer.render(&BTreeSet::new()).await);
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

    let mut token = token_schedule(&auth);
    // Renewals ask for the TTL the login granted, as Vault Agent does.
    let mut token_ttl = auth.lease_duration;
    let mut token_failures = 0;
    // `token` is the next renewal or login; a token that never expires has
    // none. A lost or expiring token sets `relogin`.
    let mut relogin = false;
    loop {
        if renderer.take_denied() && token_is_gone(&client).await {
            warn!("Vault no longer knows the token; logging in again");
            relogin = true;
        }
        if relogin {
            let Some(auth) = login(&authenticator, &client, &metrics, login_retries, &stop).await?
            else {
                break;
            };
            relogin = false;
            sink_retry = write_sinks(&authenticator, &client, init_mode, &mut sink_failures)?;
            token = token_schedule(&auth);
            token_ttl = auth.lease_duration;
            // Leases obtained with the old token end with it.
            renderer.expire_all();
        }
        let token_due = token.map(TokenAction::due);
        let secret_due = renderer.next_due().map(SecretAction::due);
        tokio::select! {
            () = stopped(stop.clone()) => break,
            () = until(sink_retry.map(tokio::time::sleep_until)) => {
                sink_retry = write_sinks(&authenticator, &client, init_mode, &mut sink_failures)?;
            }
            () = until(token_due) => {
                let renewed = match token {
                    Some(TokenAction::Renew { .. }) => tokio::select! {
                        next = renew_token(&client, token_ttl, &mut token_failures) => next,
                        () = stopped(stop.clone()) => break,
                    },
                    Some(TokenAction::Login { .. }) | None => None,
                };
                relogin = renewed.is_none();
                token = renewed;
            }
            () = until(secret_due) => {
                // Requests to a slow Vault must not hold up shutdown.
                let work = async {
                    let changed = renderer.refresh_due().await;
                    report(renderer.render(&changed).await);
                };
                let finished = tokio::select! {
                    () = work => true,
                    () = stopped(stop.clone()) => false,
                };
                if !finished {
                    break;
                }
                mark_ready(&config, &renderer)?;
            }
        }
    }

    info!("shutting down");
    if config.keyhole.revoke_on_shutdown {
        revoke(&client, &renderer).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs in, retrying as configured, unless shutdown comes first (`None`).
async fn login(
    authenticator: &Authenticator,
    client: &vault::Client,
    metrics: &Metrics,
    retries: Option<u32>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Option<Auth>> {
    tokio::select! {
        result = authenticator.login_with_retries(client, retries) => match result {
            Ok(auth) => {
                metrics.login(LoginOutcome::Success);
                Ok(Some(auth))
            }
            Err(err) => {
                metrics.login(LoginOutcome::Failure);
                Err(err).context("logging in to Vault")
            }
        },
        () = stopped(stop.clone()) => Ok(None),
    }
}

/// Writes the client's token to the sinks and returns when to try again if
/// that failed. A sidecar keeps going, since the token still works for
/// rendering; in init mode the failure is the run's error.
fn write_sinks(
    authenticator: &Authenticator,
    client: &vault::Client,
    init_mode: bool,
    failures: &mut u32,
) -> anyhow::Result<Option<Instant>> {
    let Some(token) = client.token() else {
        return Ok(None);
    };
    match authenticator.write_sinks(&token) {
        Ok(()) => {
            *failures = 0;
            Ok(None)
        }
        Err(err) if !init_mode => {
            *failures += 1;
            let delay = lease::retry_delay(*failures - 1, MIN_RETRY, MAX_RETRY, rand::random());
            error!(retry_in = ?delay, "writing the token failed: {err}");
            Ok(Some(Instant::now() + delay))
        }
        Err(err) => Err(err).context("writing the token"),
    }
}

fn token_schedule(auth: &Auth) -> Option<TokenAction> {
    lease::token_action(
        auth.lease_duration,
        auth.renewable,
        Instant::now(),
        rand::random::<f64>(),
    )
}

/// Logs one line per failed template and returns how many failed.
fn report(results: Vec<crate::render::Rendered>) -> usize {
    let mut failed = 0;
    for rendered in results {
        if let Err(err) = rendered.result {
            error!("{err}");
            failed += 1;
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

/// Whether Vault confirms the token is no longer valid.
async fn token_is_gone(client: &vault::Client) -> bool {
    match client.lookup_self().await {
        Ok(_) => false,
        Err(err) => err.status() == Some(reqwest::StatusCode::FORBIDDEN),
    }
}

/// Renews the token; returns the next action, or `None` to log in again.
async fn renew_token(
    client: &vault::Client,
    requested: Duration,
    failures: &mut u32,
) -> Option<TokenAction> {
    match client.renew_self(Some(requested)).await {
        Ok(auth) => {
            *failures = 0;
            Some(lease::after_token_renewal(
                requested,
                auth.lease_duration,
                Instant::now(),
                rand::random::<f64>(),
            ))
        }
        Err(err) if err.status() == Some(reqwest::StatusCode::FORBIDDEN) => {
            warn!("token renewal refused, logging in again: {err}");
            None
        }
        Err(err) => {
            *failures += 1;
            let delay = lease::retry_delay(*failures - 1, MIN_RETRY, MAX_RETRY, rand::random());
            warn!(retry_in = ?delay, "token renewal failed: {err}");
            Some(TokenAction::Renew {
                at: Instant::now() + delay,
            })
        }
    }
}

/// Revokes the leases and the token, within [`REVOKE_TIMEOUT`].
async fn revoke(client: &vault::Client, renderer: &Renderer) {
    let work = async {
        renderer.revoke_leases().await;
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
