//! The least any proxy adds to a request: one more loopback hop. Relays each
//! accepted TCP connection to `--to`, copying bytes as they come, without
//! reading HTTP. It runs on the agent's single-threaded runtime with
//! `TCP_NODELAY`, as the agent's listener does, so that
//! `scripts/bench-agent-proxy.py` can set the agent's overhead against the
//! floor the machine's kernel sets.
//!
//! `cargo run --release -p keyhole-agent --example tcp-relay -- \
//!     --listen 127.0.0.1:8300 --to 127.0.0.1:8200`

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio::net::{TcpListener, TcpStream};

/// Relays TCP connections from `--listen` to `--to`.
#[derive(Debug, Parser)]
struct Args {
    /// Address to accept connections on.
    #[arg(long)]
    listen: SocketAddr,
    /// Address every connection is relayed to.
    #[arg(long)]
    to: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(relay(args))
}

async fn relay(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    loop {
        let (mut inbound, _) = listener.accept().await.context("accepting")?;
        let to = args.to;
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(to).await else {
                return;
            };
            if inbound.set_nodelay(true).is_ok() && outbound.set_nodelay(true).is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
