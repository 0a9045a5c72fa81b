//! Noticing that Vault came back without its data, without asking it
//! anything while it runs.
//!
//! When Vault comes back empty (its storage replaced, a dev-mode server
//! restarted), every token and lease the agent holds is gone, and the
//! secrets it holds are no longer Vault's. The agent would learn it only at
//! its next request: a lease renewal perhaps a minute away, a token renewal
//! hours away. Until then the files keep the old Vault's secrets.
//!
//! Vault closes every connection when it stops, and a Vault initialised anew
//! answers `sys/health` with a new `cluster_id`. So the agent reads
//! `sys/health` on a connection of its own and keeps that connection open,
//! idle, until Vault closes it. Then it reads `sys/health` again on a new
//! connection, retrying while Vault is down, sealed or not initialised. The
//! same cluster (Vault restarted with its data, another node of it, or Vault
//! closing a connection idle for its `http_idle_timeout`, 5 minutes by
//! default) changes nothing. Another cluster is reported, and the session
//! asks Vault whether the token is gone.
//!
//! `sys/health` needs no token and Vault does not audit it, so the watch
//! costs Vault one cheap request per idle timeout and one per restart.
//!
//! The connection is hyper's own, outside the client's pool, because a pool
//! does not tell when one of its connections closes.
//! TCP keepalive ends it when Vault's host vanishes without closing it. No
//! watch runs when Vault is reached through an HTTP proxy, whose connections
//! say nothing about Vault's, nor when auto-auth is told to keep no idle
//! connection (`disable_idle_connections`, `disable_keep_alives`).

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::Client;
use crate::backoff;
use crate::config::Reuse;

/// The waits between reads of `sys/health` while Vault is down or sealed.
/// A refused connection costs Vault nothing and a sealed Vault answers
/// `sys/health` from memory, so the waits stay short: a Vault that is back
/// is noticed within seconds, not at the next lease renewal.
const RETRY: backoff::Policy =
    backoff::Policy::new(Duration::from_millis(500), Duration::from_secs(15));

/// How long the idle connection may be silent before TCP keepalive asks
/// whether Vault's host is still there.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The most of a `sys/health` answer that is read; Vault's is a few hundred
/// bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// Watches Vault for a restart without its data; see the module doc.
/// Dropping it stops the watch.
#[derive(Debug)]
pub struct RestartWatch {
    /// `None` when Vault is reached through a proxy, or when auto-auth
    /// keeps no idle connection.
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    task: JoinHandle<()>,
    new_cluster: mpsc::Receiver<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RestartWatch {
    /// Resolves when Vault answers as another cluster than it did before:
    /// it was initialised anew. Never resolves when there is no watch.
    /// Cancel-safe: a change is kept until it is awaited.
    pub async fn new_cluster(&mut self) {
        if let Some(running) = &mut self.running
            && running.new_cluster.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

impl Client {
    /// Starts watching Vault for a restart without its data, on the current
    /// Tokio runtime.
    pub fn watch_restarts(&self) -> RestartWatch {
        if self.shared.reuse != Reuse::Keep {
            info!(
                "auto-auth keeps no idle connection (disable_idle_connections or disable_keep_alives); a Vault that comes back empty is noticed at the agent's next request"
            );
            return RestartWatch { running: None };
        }
        let health = match Health::endpoint(self) {
            Ok(health) => health,
            Err(reason) => {
                info!(
                    "{reason}; a Vault that comes back empty is noticed at the agent's next request"
                );
                return RestartWatch { running: None };
            }
        };
        let (changed, new_cluster) = mpsc::channel(1);
        let task = tokio::spawn(watch(health, changed));
        RestartWatch {
            running: Some(Running { task, new_cluster }),
        }
    }
}

/// Reads `sys/health` until the task is aborted, and says when the cluster
/// changes.
async fn watch(health: Health, changed: mpsc::Sender<()>) {
    let mut known: Option<String> = None;
    // Whether the last read failed: Vault was down, sealed or not initialised.
    let mut down = false;
    let mut retries = RETRY.backoff();
    loop {
        match tokio::time::timeout(health.timeout, health.read()).await {
            Ok(Ok((answer, open))) if !answer.sealed && !answer.cluster_id.is_empty() => {
                retries.succeeded();
                match known.replace(answer.cluster_id) {
                    Some(before) if Some(&before) != known.as_ref() => {
                        warn!(
                            before = %before,
                            now = known.as_deref().unwrap_or_default(),
                            "Vault answers as a new cluster: it was initialised anew, without the agent's token and leases"
                        );
                        // A change already waiting says the same.
                        let _ = changed.try_send(());
                    }
                    Some(_) if down => info!("Vault is back, as the same cluster"),
                    _ => {}
                }
                down = false;
                open.await;
                debug!("Vault closed the watched connection");
            }
            Ok(Ok(_)) => {
                down = true;
                debug!("Vault is sealed or not initialised");
            }
            Ok(Err(err)) => {
                down = true;
                debug!(error = %err, "cannot read Vault's sys/health");
            }
            Err(_) => {
                down = true;
                debug!("reading Vault's sys/health timed out");
            }
        }
        tokio::time::sleep(retries.failed()).await;
    }
}

/// What the watch reads of Vault's `sys/health` answer.
#[derive(Debug, Deserialize)]
struct HealthAnswer {
    #[serde(default)]
    sealed: bool,
    /// Made when Vault is initialised; empty while it is sealed.
    #[serde(default)]
    cluster_id: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Vault's `sys/health`, and how to reach it.
struct Health {
    connector: HttpsConnector<HttpConnector>,
    uri: Uri,
    host: HeaderValue,
    timeout: Duration,
}

impl Health {
    /// The endpoint of `client`'s Vault, or why it cannot be watched.
    fn endpoint(client: &Client) -> Result<Self, String> {
        let shared = &client.shared;
        let uri: Uri = format!("{}/sys/health", shared.base.as_str().trim_end_matches('/'))
            .parse()
            .map_err(|err| format!("Vault's address gives no sys/health URI: {err}"))?;
        if Matcher::from_env().intercept(&uri).is_some() {
            return Err("Vault is reached through an HTTP proxy".to_owned());
        }
        let host = uri
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            .ok_or_else(|| "Vault's address has no host".to_owned())?;
        // One request, then an idle connection: HTTP/1.1 is enough.
        let connector = shared.http1_connector(|http| http.set_keepalive(Some(KEEPALIVE)));
        Ok(Self {
            connector,
            uri,
            host,
            timeout: shared.connect_timeout + shared.request_timeout,
        })
    }

    /// Reads `sys/health` on a new connection. Returns the answer and a
    /// future that ends when Vault closes the connection, which stays open
    /// until then.
    async fn read(&self) -> Result<(HealthAnswer, impl Future<Output = ()>), BoxError> {
        let io = self.connector.clone().oneshot(self.uri.clone()).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        let mut connection = Box::pin(connection);
        let request = Request::get(self.uri.path())
            .header(HOST, self.host.clone())
            .header("X-Vault-Request", "true")
            .body(Empty::<Bytes>::new())?;
        let answer = async {
            let response = sender.send_request(request).await?;
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, BoxError>(serde_json::from_slice::<HealthAnswer>(&body)?)
        };
        let answer = tokio::select! {
            answer = answer => answer?,
            ended = &mut connection => {
                return Err(match ended {
                    Ok(()) => "Vault closed the connection before answering".into(),
                    Err(err) => err.into(),
                });
            }
        };
        let open = async move {
            // The connection stays open as long as a sender is alive.
            let _sender = sender;
            // How it ended does not matter: it did.
            let _ = connection.await;
        };
        Ok((answer, open))
    }
}
