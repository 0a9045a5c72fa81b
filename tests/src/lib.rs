//! Test harness: real OpenBao and PostgreSQL servers, minted service-account tokens.
//!
//! End-to-end tests start the real thing on a free loopback port and tear it down on drop:
//! [`Bao`] (an OpenBao server, dev or persistent, with admin helpers), [`Postgres`] (a
//! throwaway cluster for the `database` secrets engine), [`TokenReviewer`] (the
//! kube-apiserver TokenReview endpoint the `kubernetes` auth method calls), [`FaultProxy`]
//! (a TCP proxy that makes Vault slow, hung, resetting or unreachable on demand).
//! [`mint_sa_token`] makes projected service-account tokens, [`AgentConfig`] writes agent
//! config files from typed parts, and [`run_bao_agent`] / [`run_keyhole_agent`] run the two
//! agents side by side on one.
//!
//! Every helper returns [`anyhow::Result`] with context naming the path, status or command
//! that failed, so a test can use `?` and still fail with a readable message. A missing
//! external tool is an error naming the command that installs it: tests fail, never skip.

mod agent;
mod bao;
pub mod chart;
mod config;
mod engines;
pub mod example;
mod hcl;
mod kube;
pub mod metrics;
mod pod;
mod postgres;
mod proxy;
mod sa_token;
mod tls;
mod tools;

pub use agent::{
    AgentRun, RunningAgent, SpawnOptions, isolate, keyhole_agent_bin, metric_value, run_bao_agent,
    run_keyhole_agent, scrape_metrics, spawn_bao_agent, spawn_keyhole_agent,
    spawn_keyhole_agent_with, workspace_bin,
};
pub use bao::{Bao, BaoOptions};
pub use config::{AgentConfig, AutoAuth, EnvTemplate, Exec, Sink, Template};
pub use engines::{
    configure_approle, configure_database_engine, configure_jwt_auth, configure_pki,
};
pub use kube::{
    API_SERVER_AUDIENCE, TokenReviewer, configure_kubernetes_auth, put_kubernetes_role,
};
pub use pod::{PodAgent, agent_config, pod_container};
pub use postgres::Postgres;
pub use proxy::{Fault, FaultProxy, SeenRequest};
pub use sa_token::{
    HOUR, ISSUER, SA_PUBLIC_KEY_PEM, SaClaims, mint_sa_token, mint_untrusted_sa_token,
};
pub use tls::{BaoTls, TLS_SERVER_NAME};
pub use tools::{Tool, require};

use std::net::TcpListener;
use std::sync::Once;

/// Installs ring as the process-wide rustls crypto provider (the workspace's only one).
///
/// reqwest is built with `rustls-no-provider`, so a client built before this would panic.
/// Every harness constructor calls it; tests that build their own clients may call it too.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another test in the same process may have installed the same provider first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Returns a loopback port that was free a moment ago.
///
/// The port is released before the caller binds it; servers that accept `:0` should bind
/// that instead. OpenBao and PostgreSQL take a fixed port on their command line.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Returns a loopback port that, with the port after it, was free a moment ago.
///
/// An OpenBao dev server listens on its API port and on the next one for its cluster
/// listener; when that one is taken, it never becomes ready.
pub(crate) fn free_port_pair() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("found no two free consecutive loopback ports")
}

/// Returns the last `max` bytes of a log file, for failure messages.
fn log_tail(path: &std::path::Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}
