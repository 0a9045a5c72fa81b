//! `keyhole-injector serve` as a process: ready once TLS loads, answers reviews
//! over HTTPS, and exits cleanly on SIGTERM.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyhole_injector::tls::auto::Bundle;
use time::OffsetDateTime;

const HOST: &str = "keyhole-injector.keyhole.svc";

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local address").port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(admin: u16) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let response = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await;
        if response.is_ok_and(|response| response.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered 200");
}

#[tokio::test]
async fn serves_over_https_and_stops_on_sigterm() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = Bundle::generate(&[HOST.to_owned()], OffsetDateTime::now_utc()).expect("bundle");
    std::fs::write(dir.path().join("tls.crt"), &bundle.cert).expect("write cert");
    std::fs::write(dir.path().join("tls.key"), &bundle.key).expect("write key");
    let (port, admin) = (free_port(), free_port());
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_keyhole-injector"))
            .arg("serve")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--admin-listen=127.0.0.1:{admin}"))
            .arg(format!(
                "--tls-cert={}",
                dir.path().join("tls.crt").display()
            ))
            .arg(format!(
                "--tls-key={}",
                dir.path().join("tls.key").display()
            ))
            .arg("--log-format=json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start keyhole-injector"),
    );
    wait_ready(admin).await;

    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(bundle.ca_cert.as_bytes()).expect("CA")])
        .resolve(HOST, ([127, 0, 0, 1], port).into())
        .build()
        .expect("client");
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews/kube-system.json"),
    )
    .expect("fixture");
    let review: serde_json::Value = client
        .post(format!("https://{HOST}:{port}/mutate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("HTTPS request")
        .json()
        .await
        .expect("AdmissionReview");
    assert_eq!(
        review["response"]["uid"],
        "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e04"
    );
    assert_eq!(review["response"]["allowed"], true);

    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0));
}
