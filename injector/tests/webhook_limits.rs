//! The HTTPS server against hostile or broken clients: oversized bodies, clients
//! that stall at each step of a request, and bytes that are not TLS at all.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum_server::Handle;
use keyhole_injector::metrics::WebhookMetrics;
use keyhole_injector::settings::Settings;
use keyhole_injector::tls::auto::Bundle;
use keyhole_injector::tls::{CertStore, certified_key};
use keyhole_injector::webhook::{self, AppState, MAX_BODY_BYTES, Timeouts};
use prometheus_client::registry::Registry;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "keyhole-injector.keyhole.svc";

/// The timeouts of servers that stalling clients are tested against.
const SHORT: Duration = Duration::from_millis(500);

/// How long after a timeout the server may take to close the connection on a
/// busy machine.
const SLACK: Duration = Duration::from_millis(1500);

struct Server {
    addr: SocketAddr,
    bundle: Bundle,
    handle: Handle<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start(timeouts: Timeouts) -> Server {
    start_with(Settings::default(), timeouts).await
}

async fn start_with(settings: Settings, timeouts: Timeouts) -> Server {
    keyhole_agent::crypto::install_provider();
    let bundle = Bundle::generate(&[HOST.to_owned()], OffsetDateTime::now_utc()).expect("bundle");
    let store = CertStore::new();
    store.set(
        certified_key(
            bundle.cert.as_bytes(),
            "tls.crt",
            bundle.key.as_bytes(),
            "tls.key",
        )
        .expect("certified key"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let mut registry = Registry::default();
    let app = webhook::app(AppState::new(
        settings,
        WebhookMetrics::register(&mut registry),
    ));
    let handle = Handle::new();
    let config = store.server_config().expect("server config");
    tokio::spawn(webhook::serve(
        listener,
        config,
        app,
        handle.clone(),
        timeouts,
    ));
    Server {
        addr,
        bundle,
        handle,
    }
}

fn short_timeouts() -> Timeouts {
    Timeouts {
        handshake: SHORT,
        headers: SHORT,
        body: SHORT,
    }
}

fn client(server: &Server) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(server.bundle.ca_cert.as_bytes()).expect("CA PEM"),
        ])
        .resolve(HOST, server.addr)
        .build()
        .expect("reqwest client")
}

fn review_body() -> Vec<u8> {
    fixture("not-annotated.json")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/reviews")
        .join(name);
    std::fs::read(path).expect("fixture")
}

async fn post(client: &reqwest::Client, server: &Server, body: Vec<u8>) -> reqwest::Response {
    client
        .post(format!("https://{HOST}:{}/mutate", server.addr.port()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("HTTPS request")
}

/// A TLS connection made by hand, so the test controls every byte it sends.
fn tls_stream(server: &Server) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.bundle.ca_cert.as_bytes()).expect("CA PEM"))
        .expect("CA certificate");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connection = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(HOST).expect("server name"),
    )
    .expect("client connection");
    let mut tcp = TcpStream::connect(server.addr).expect("connect");
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp).expect("TLS handshake");
    }
    // Short reads let the caller poll for an answer between the bytes it sends.
    tcp.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    rustls::StreamOwned::new(connection, tcp)
}

/// Sends `bytes` one at a time, 50 ms apart, after `prefix` at once; returns
/// how long the server let the connection live and what it answered.
fn trickle(mut stream: impl Read + Write, prefix: &[u8], bytes: &[u8]) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    stream.write_all(prefix).expect("send prefix");
    stream.flush().expect("flush");
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    for byte in bytes {
        if stream
            .write_all(&[*byte])
            .and_then(|()| stream.flush())
            .is_err()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (started.elapsed(), answer)
}

/// Reads until the server closes the connection; returns how long that took.
fn wait_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut buf = [0; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn body_over_three_mib_is_refused_with_413() {
    let server = start(Timeouts::default()).await;

    let response = post(&client(&server), &server, vec![b' '; MAX_BODY_BYTES + 1]).await;

    assert_eq!(response.status(), 413);
    assert_eq!(
        response.text().await.expect("body"),
        "request body larger than 3145728 bytes"
    );
}

#[tokio::test]
async fn review_of_exactly_the_body_limit_is_answered() {
    let server = start(Timeouts::default()).await;
    let mut review: Value = serde_json::from_slice(&review_body()).expect("fixture is JSON");
    // Padded in a label: annotations have a smaller limit of their own.
    let metadata = "/request/object/metadata";
    review.pointer_mut(metadata).expect("metadata")["labels"] =
        serde_json::json!({"example.com/padding": ""});
    let unpadded = serde_json::to_vec(&review).expect("JSON").len();
    review.pointer_mut(metadata).expect("metadata")["labels"] =
        serde_json::json!({"example.com/padding": "x".repeat(MAX_BODY_BYTES - unpadded)});
    let body = serde_json::to_vec(&review).expect("JSON");
    assert_eq!(body.len(), MAX_BODY_BYTES);

    let response = post(&client(&server), &server, body).await;

    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e05"
    );
    assert_eq!(answer["response"]["allowed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalling_clients_are_cut_off_while_others_are_served() {
    let server = Arc::new(start(short_timeouts()).await);
    let stop = Arc::new(AtomicBool::new(false));
    let steady = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        tokio::spawn(async move {
            let client = client(&server);
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let response = post(&client, &server, review_body()).await;
                assert_eq!(response.status(), 200);
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        })
    };

    let silent = {
        let addr = server.addr;
        tokio::task::spawn_blocking(move || wait_closed(TcpStream::connect(addr).expect("connect")))
    };
    let half_handshake = {
        let addr = server.addr;
        tokio::task::spawn_blocking(move || {
            let mut tcp = TcpStream::connect(addr).expect("connect");
            // The first bytes of a ClientHello record, and then nothing.
            tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
                .expect("send");
            wait_closed(tcp)
        })
    };
    let slow_headers = {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            let header = format!("x-slow: {}\r\n\r\n", "a".repeat(200));
            trickle(
                tls_stream(&server),
                b"POST /mutate HTTP/1.1\r\nhost: keyhole\r\n",
                header.as_bytes(),
            )
        })
    };
    let slow_body = {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            trickle(
                tls_stream(&server),
                b"POST /mutate HTTP/1.1\r\nhost: keyhole\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n",
                &[b' '; 200],
            )
        })
    };

    let bound = SHORT + SLACK;
    let silent = silent.await.expect("silent client");
    assert!(silent < bound, "silent TCP client kept for {silent:?}");
    let half_handshake = half_handshake.await.expect("half handshake");
    assert!(
        half_handshake < bound,
        "unfinished handshake kept for {half_handshake:?}"
    );
    let (elapsed, answer) = slow_headers.await.expect("slow headers");
    assert!(elapsed < bound, "slow headers kept for {elapsed:?}");
    assert_eq!(String::from_utf8_lossy(&answer), "");
    let (elapsed, answer) = slow_body.await.expect("slow body");
    assert!(elapsed < bound, "slow body kept for {elapsed:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.ends_with("request body not received within 500ms"),
        "{answer}"
    );

    stop.store(true, Ordering::Relaxed);
    let answered = steady.await.expect("steady client kept being served");
    assert!(answered > 10, "only {answered} reviews answered");
}

/// Log output captured by the test's subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Single-threaded, so the subscriber set for this thread sees the server's tasks.
#[tokio::test(flavor = "current_thread")]
async fn non_tls_bytes_are_dropped_quietly_and_https_still_works() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("warn,keyhole_injector=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = start(Timeouts::default()).await;
    let garbage: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();

    for bytes in [
        &b"POST /mutate HTTP/1.1\r\nhost: keyhole\r\ncontent-length: 2\r\n\r\n{}"[..],
        &garbage,
    ] {
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        tcp.write_all(bytes).await.expect("send");
        let mut answer = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
            .await
            .expect("connection closed within 5 s");
        // At most a TLS alert record comes back, never an HTTP response.
        if let Ok(n) = closed {
            assert!(n == 0 || answer[0] == 0x15, "{answer:?}");
        }
    }
    let response = post(&client(&server), &server, review_body()).await;

    assert_eq!(response.status(), 200);
    let review: Value = response.json().await.expect("AdmissionReview");
    assert_eq!(review["response"]["allowed"], true);
    let logs = String::from_utf8(logs.0.lock().expect("log buffer").clone()).expect("UTF-8");
    assert!(!logs.contains("ERROR"), "{logs}");
    assert_eq!(
        logs.matches("dropped a connection before its first request")
            .count(),
        2,
        "{logs}"
    );
    assert!(logs.lines().all(|line| line.contains("DEBUG")), "{logs}");
}

/// The chart runs the injector with two tokio workers, whose stacks are 2 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_template_is_denied_and_the_server_keeps_serving() {
    let settings = Settings {
        vault_addr: Some("https://vault.vault.svc:8200".to_owned()),
        ..Settings::default()
    };
    let server = start_with(settings, Timeouts::default()).await;
    let client = client(&server);
    let depth = 20_000;
    let mut review: Value =
        serde_json::from_slice(&fixture("annotated-pod.json")).expect("fixture is JSON");
    review["request"]["object"]["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-template-db"] =
        format!("{{{{{}1{}}}}}", "(".repeat(depth), ")".repeat(depth)).into();
    let body = serde_json::to_vec(&review).expect("JSON");

    for _ in 0..3 {
        let response = post(&client, &server, body.clone()).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.expect("AdmissionReview");
        assert_eq!(answer["response"]["allowed"], false);
        let message = answer["response"]["status"]["message"]
            .as_str()
            .expect("message");
        assert!(
            message.starts_with(
                "vault.hashicorp.com/agent-inject-template-db: db:1:103: nested \
                                 more than 100 levels deep"
            ),
            "{message}"
        );
    }
    let response = post(&client, &server, fixture("annotated-pod.json")).await;
    let answer: Value = response.json().await.expect("AdmissionReview");
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"]["patch"].is_string(), "{answer:#}");
}
