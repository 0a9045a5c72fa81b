//! The injector's HTTPS server with a handler that only parses the
//! AdmissionReview and allows it: the baseline the injector's own `/mutate` is
//! measured against (`scripts/bench-injector.py`). Same TLS, same timeouts and
//! body limit, same runtime; only the handler differs.
//!
//! `cargo run --release -p keyhole-injector --example parse-and-allow -- \
//!     --listen 127.0.0.1:8443 --tls-cert tls.crt --tls-key tls.key`

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::body::Bytes;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::Handle;
use clap::Parser;
use keyhole_injector::tls::CertStore;
use keyhole_injector::tls::files::CertFiles;
use keyhole_injector::webhook::{self, Timeouts};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::Value;

/// Serves `POST /mutate` that allows every well-formed AdmissionReview.
#[derive(Debug, Parser)]
struct Args {
    /// Address of the HTTPS listener.
    #[arg(long)]
    listen: SocketAddr,
    /// PEM certificate chain file.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key file.
    #[arg(long)]
    tls_key: PathBuf,
}

async fn allow(body: Bytes) -> Json<Value> {
    let response = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body)
        .map_err(|err| err.to_string())
        .and_then(|review| {
            let request: Result<AdmissionRequest<DynamicObject>, _> = review.try_into();
            request.map_err(|_| String::from("no request"))
        })
        .map_or_else(AdmissionResponse::invalid, |request| {
            AdmissionResponse::from(&request)
        });
    Json(serde_json::to_value(response.into_review()).unwrap_or_default())
}

fn main() -> anyhow::Result<()> {
    let Args {
        listen,
        tls_cert,
        tls_key,
    } = Args::parse();
    keyhole_agent::crypto::install_provider();
    let store = CertStore::new();
    store.set(
        CertFiles {
            cert: tls_cert,
            key: tls_key,
        }
        .load()?,
    );
    let config = store.server_config()?;
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let app = Router::new().route("/mutate", post(allow));
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(webhook::serve(
            listener,
            config,
            app,
            Handle::new(),
            Timeouts::default(),
        ))
        .context("server")
}
