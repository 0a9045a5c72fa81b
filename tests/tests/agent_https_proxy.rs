//! `vault.hashicorp.com/proxy-address` becomes `HTTPS_PROXY` in the agent
//! container, as in vault-k8s: keyhole-agent's HTTP client, and its API proxy's,
//! must then reach Vault through that proxy, as Go's client does: a `CONNECT`
//! tunnel to an https Vault, requests in absolute form to an http one, each
//! with the credentials the proxy's URL holds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, BaoOptions, TLS_SERVER_NAME, Template, free_port,
    keyhole_agent_bin, run_keyhole_agent,
};
use serde_json::json;

/// `user:pass` as HTTP basic credentials.
const BASIC_USER_PASS: &str = "Basic dXNlcjpwYXNz";

/// An HTTP proxy that records the head of every request it gets: its address, and
/// the heads. A `CONNECT` is tunnelled to `tunnel_to` when given, whatever host it
/// names (the proxy resolves names the agent cannot); anything else is hung up on.
fn recording_proxy(
    tunnel_to: Option<SocketAddr>,
) -> anyhow::Result<(SocketAddr, mpsc::Receiver<String>)> {
    let proxy = TcpListener::bind("127.0.0.1:0")?;
    let proxy_addr = proxy.local_addr()?;
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in proxy.incoming().flatten() {
            let head = read_head(&mut stream);
            let connect = head.starts_with("CONNECT ");
            if seen_tx.send(head).is_err() {
                return;
            }
            if let (true, Some(target)) = (connect, tunnel_to) {
                std::thread::spawn(move || tunnel(stream, target));
            }
        }
    });
    Ok((proxy_addr, seen))
}

/// The request head on `stream`, up to the blank line, read a byte at a time so
/// nothing after it is consumed.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Answers a `CONNECT` and passes bytes both ways between `client` and `target`.
fn tunnel(mut client: TcpStream, target: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(target) else {
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (Ok(mut client_back), Ok(mut upstream_back)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    std::thread::spawn(move || std::io::copy(&mut upstream_back, &mut client_back));
    let _ = std::io::copy(&mut client, &mut upstream);
}

/// The lines of a request head, the first one and then its headers in lower case.
fn lines(head: &str) -> (String, Vec<String>) {
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter(|line| !line.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    (first, headers)
}

#[tokio::test]
async fn the_agent_reads_an_https_vault_through_a_tunnel_of_https_proxy() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions {
        tls: true,
        ..BaoOptions::default()
    })
    .await?;
    bao.kv2_put("secret", "app", json!({ "password": "through-the-tunnel" }))
        .await?;
    let tls = bao.tls()?;
    let port = tls.addr.rsplit(':').next().unwrap_or_default();
    let (proxy_addr, seen) = recording_proxy(Some(format!("127.0.0.1:{port}").parse()?))?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let token = dir.path().join("vault-token-in");
    std::fs::write(&token, bao.root_token())?;
    // A name only the proxy can resolve: the agent must not look it up itself.
    let config = AgentConfig::new(format!("https://vault.example.invalid:{port}"))
        .ca_cert(&tls.ca, TLS_SERVER_NAME)
        .exit_after_auth(true)
        .auto_auth(AutoAuth::token_file(&token))
        .template(Template::new(
            out.join("password"),
            "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}",
        ));
    let proxy_url = format!("http://user:pass@{proxy_addr}");
    let run = run_keyhole_agent(config, &out, &[("HTTPS_PROXY", proxy_url.as_str())]).await?;
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.file("password")?, "through-the-tunnel");
    let (first, headers) = lines(&seen.recv_timeout(Duration::from_secs(5))?);
    assert_eq!(
        first,
        format!("CONNECT vault.example.invalid:{port} HTTP/1.1")
    );
    assert!(
        headers.contains(&format!(
            "proxy-authorization: {}",
            BASIC_USER_PASS.to_ascii_lowercase()
        )),
        "{headers:?}"
    );
    Ok(())
}

#[test]
fn the_agent_sends_requests_for_an_http_vault_to_http_proxy_in_absolute_form() -> anyhow::Result<()>
{
    let (proxy_addr, seen) = recording_proxy(None)?;
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "not-a-real-token")?;
    let config = serde_json::json!({
        "vault": {"address": "http://vault.example.invalid:8200"},
        "auto_auth": {"method": [{"type": "token_file",
            "config": {"token_file_path": token}}]},
        "template": [{"destination": dir.path().join("out"), "contents": "x"}],
        "exit_after_auth": true,
    });
    let mut agent = Command::new(keyhole_agent_bin()?)
        .env_clear()
        .env("KEYHOLE_AGENT_CONFIG", config.to_string())
        .env("HTTP_PROXY", format!("http://user:pass@{proxy_addr}"))
        .env("VAULT_LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let head = seen.recv_timeout(Duration::from_secs(20));
    agent.kill()?;
    agent.wait()?;
    let (first, headers) = lines(&head?);
    assert_eq!(
        first,
        "GET http://vault.example.invalid:8200/v1/auth/token/lookup-self HTTP/1.1"
    );
    assert!(
        headers.contains(&format!(
            "proxy-authorization: {}",
            BASIC_USER_PASS.to_ascii_lowercase()
        )),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"x-vault-token: not-a-real-token".to_owned()),
        "{headers:?}"
    );
    Ok(())
}

#[test]
fn the_api_proxy_reaches_vault_through_https_proxy_too() -> anyhow::Result<()> {
    let (proxy_addr, seen) = recording_proxy(None)?;
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
    let head = seen.recv_timeout(Duration::from_secs(20));
    agent.kill()?;
    agent.wait()?;
    assert_eq!(
        lines(&head?).0,
        "CONNECT vault.example.invalid:8200 HTTP/1.1"
    );
    let answer = answer?;
    assert!(
        answer.starts_with("HTTP/1.1 500 "),
        "the proxy hung up, so the app gets a 500: {answer}"
    );
    Ok(())
}
