//! `vault.hashicorp.com/proxy-address` becomes `HTTPS_PROXY` in the agent
//! container, as in vault-k8s: keyhole-agent's HTTP client must then reach an
//! https Vault through that proxy.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyhole_tests::keyhole_agent_bin;

#[test]
fn the_agent_reaches_an_https_vault_through_https_proxy() -> anyhow::Result<()> {
    let proxy = TcpListener::bind("127.0.0.1:0")?;
    let proxy_addr = proxy.local_addr()?;
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = proxy.accept() {
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
            let _ = seen_tx.send(line);
        }
    });
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "not-a-real-token")?;
    let config = serde_json::json!({
        "vault": {"address": "https://vault.example.invalid:8200"},
        "auto_auth": {"method": [{"type": "token_file",
            "config": {"token_file_path": token}}]},
        "template": [{"destination": dir.path().join("out"), "contents": "x"}],
        "exit_after_auth": true,
    });
    let mut agent = Command::new(keyhole_agent_bin()?)
        .env_clear()
        .env("KEYHOLE_AGENT_CONFIG", config.to_string())
        .env("HTTPS_PROXY", format!("http://{proxy_addr}"))
        .env("VAULT_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let line = seen.recv_timeout(Duration::from_secs(20));
    agent.kill()?;
    agent.wait()?;
    assert_eq!(
        line?.trim_end(),
        "CONNECT vault.example.invalid:8200 HTTP/1.1"
    );
    Ok(())
}
