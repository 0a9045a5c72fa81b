//! `vault.hashicorp.com/proxy-address` becomes `HTTPS_PROXY` in the agent
//! container, as in vault-k8s: keyhole-agent's HTTP client, and its API proxy's,
//! must then reach an https Vault through that proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyhole_tests::{free_port, keyhole_agent_bin};

/// An HTTP proxy that records the first line of every connection and hangs up: its
/// address, and the lines.
fn recording_proxy() -> anyhow::Result<(SocketAddr, mpsc::Receiver<String>)> {
    let proxy = TcpListener::bind("127.0.0.1:0")?;
    let proxy_addr = proxy.local_addr()?;
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in proxy.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
            if seen_tx.send(line).is_err() {
                return;
            }
        }
    });
    Ok((proxy_addr, seen))
}

#[test]
fn the_agent_reaches_an_https_vault_through_https_proxy() -> anyhow::Result<()> {
    let (proxy_addr, seen) = recording_proxy()?;
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

#[test]
fn the_api_proxy_reaches_vault_through_https_proxy_too() -> anyhow::Result<()> {
    let (proxy_addr, seen) = recording_proxy()?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = dir.path().join("agent.hcl");
    // No auto_auth: the only requests to Vault are the app's.
    std::fs::write(
        &config,
        format!(
            "vault {{\n  address = \"https://vault.example.invalid:8200\"\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n"
        ),
    )?;
    let mut agent = Command::new(keyhole_agent_bin()?)
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("HTTPS_PROXY", format!("http://{proxy_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let answer = (|| -> anyhow::Result<String> {
        let started = std::time::Instant::now();
        let mut app = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(err) => return Err(err.into()),
            }
        };
        app.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        app.read_to_string(&mut answer)?;
        Ok(answer)
    })();
    let line = seen.recv_timeout(Duration::from_secs(20));
    agent.kill()?;
    agent.wait()?;
    assert_eq!(
        line?.trim_end(),
        "CONNECT vault.example.invalid:8200 HTTP/1.1"
    );
    let answer = answer?;
    assert!(
        answer.starts_with("HTTP/1.1 500 "),
        "the proxy hung up, so the app gets a 500: {answer}"
    );
    Ok(())
}
