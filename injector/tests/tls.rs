//! The webhook over real HTTPS on loopback, certificate files swapped under it,
//! and the errors a user sees for bad certificate files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum_server::Handle;
use keyhole_injector::metrics::{TlsMetrics, WebhookMetrics};
use keyhole_injector::settings::Settings;
use keyhole_injector::tls::CertStore;
use keyhole_injector::tls::auto::Bundle;
use keyhole_injector::tls::files::CertFiles;
use keyhole_injector::webhook::{self, AppState, Timeouts};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use time::OffsetDateTime;

const HOST: &str = "keyhole-injector.keyhole.svc";

fn bundle() -> Bundle {
    Bundle::generate(&[HOST.to_owned()], OffsetDateTime::now_utc())
        .expect("generate a CA and certificate")
}

fn leaf_der(bundle: &Bundle) -> Vec<u8> {
    CertificateDer::from_pem_slice(bundle.cert.as_bytes())
        .expect("PEM certificate")
        .to_vec()
}

fn review_body() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reviews/not-annotated.json");
    std::fs::read(path).expect("fixture")
}

async fn start(store: &CertStore) -> (SocketAddr, Handle<SocketAddr>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let mut registry = Registry::default();
    let app = webhook::app(AppState::new(
        Settings::default(),
        WebhookMetrics::register(&mut registry),
    ));
    let handle = Handle::new();
    let config = store.server_config().expect("server config");
    tokio::spawn(webhook::serve(
        listener,
        config,
        app,
        handle.clone(),
        Timeouts::default(),
    ));
    (addr, handle)
}

fn client(addr: SocketAddr, trusted: &[&Bundle]) -> reqwest::Client {
    let roots = trusted
        .iter()
        .map(|bundle| reqwest::Certificate::from_pem(bundle.ca_cert.as_bytes()).expect("CA PEM"));
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .tls_info(true)
        .resolve(HOST, addr)
        .build()
        .expect("reqwest client")
}

/// Posts a review and returns the served certificate and the answer.
async fn post(client: &reqwest::Client, addr: SocketAddr) -> (Vec<u8>, Value) {
    let response = client
        .post(format!("https://{HOST}:{}/mutate", addr.port()))
        .header("content-type", "application/json")
        .body(review_body())
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(response.status(), 200);
    let served = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("peer certificate")
        .to_vec();
    (served, response.json().await.expect("AdmissionReview JSON"))
}

/// Writes `bundle` the way the kubelet lays out a Secret volume: the files are
/// symlinks through `..data`, which points at a timestamped directory.
fn publish(dir: &Path, version: &str, cert: &str, key: &str) {
    let target = dir.join(version);
    std::fs::create_dir(&target).expect("version dir");
    std::fs::write(target.join("tls.crt"), cert).expect("write cert");
    std::fs::write(target.join("tls.key"), key).expect("write key");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).expect("..data_tmp symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), link).expect("file symlink");
        }
    }
}

fn files(dir: &Path) -> CertFiles {
    CertFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn serves_reviews_over_https_with_the_loaded_certificate() {
    keyhole_agent::crypto::install_provider();
    let bundle = bundle();
    let store = CertStore::new();
    store.set(
        keyhole_injector::tls::certified_key(
            bundle.cert.as_bytes(),
            "tls.crt",
            bundle.key.as_bytes(),
            "tls.key",
        )
        .expect("certified key"),
    );
    let (addr, handle) = start(&store).await;

    let (served, review) = post(&client(addr, &[&bundle]), addr).await;

    assert_eq!(served, leaf_der(&bundle));
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(
        review["response"]["uid"],
        "8a3e1b4c-2f61-4d0a-9c7e-5b2d8f1a6e05"
    );
    assert_eq!(review["response"]["allowed"], true);
    handle.graceful_shutdown(Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn swapped_secret_volume_files_are_served_without_restart() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (bundle(), bundle());
    publish(
        dir.path(),
        "..2026_11_23_10_00_00.1",
        &first.cert,
        &first.key,
    );
    let files = files(dir.path());
    let store = CertStore::new();
    store.set(files.load().expect("initial certificate"));
    let mut registry = Registry::default();
    let metrics = TlsMetrics::register(&mut registry);
    let watch = tokio::spawn(files.clone().watch(store.clone(), metrics));
    let (addr, handle) = start(&store).await;
    let open = client(addr, &[&first, &second]);
    assert_eq!(post(&open, addr).await.0, leaf_der(&first));

    publish(
        dir.path(),
        "..2026_11_23_11_00_00.2",
        &second.cert,
        &second.key,
    );
    eventually("the new certificate is served", async || {
        post(&client(addr, &[&first, &second]), addr).await.0 == leaf_der(&second)
    })
    .await;
    // The connection opened before the swap is still usable.
    let (_, review) = post(&open, addr).await;
    assert_eq!(review["response"]["allowed"], true);

    // A certificate with someone else's key is refused; the last good one stays.
    publish(
        dir.path(),
        "..2026_11_23_12_00_00.3",
        &first.cert,
        &second.key,
    );
    eventually("the failed reload is counted", async || {
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode metrics");
        text.contains("tls_reloads_total{result=\"failure\"} 1\n")
    })
    .await;
    let fresh = client(addr, &[&first, &second]);
    assert_eq!(post(&fresh, addr).await.0, leaf_der(&second));

    watch.abort();
    handle.graceful_shutdown(Some(Duration::from_secs(1)));
}

/// Posts reviews back to back until `stop` is set; returns how many were
/// answered 200 with an allowed review, and what went wrong with the others.
async fn post_until(
    client: reqwest::Client,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let (mut ok, mut failures) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let response = client
            .post(format!("https://{HOST}:{}/mutate", addr.port()))
            .header("content-type", "application/json")
            .body(review_body())
            .send()
            .await;
        let review = match response {
            Ok(response) if response.status() == 200 => response.json::<Value>().await,
            Ok(response) => {
                failures.push(format!("HTTP {}", response.status()));
                continue;
            }
            Err(err) => {
                failures.push(format!("{err:?}"));
                continue;
            }
        };
        match review {
            Ok(review) if review["response"]["allowed"] == true => ok += 1,
            Ok(review) => failures.push(format!("unexpected review {review}")),
            Err(err) => failures.push(format!("{err:?}")),
        }
    }
    (ok, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_swaps_under_load_drop_no_requests() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = (bundle(), bundle());
    publish(dir.path(), "..v0", &first.cert, &first.key);
    let files = files(dir.path());
    let store = CertStore::new();
    store.set(files.load().expect("initial certificate"));
    let mut registry = Registry::default();
    let watch = tokio::spawn(
        files
            .clone()
            .watch(store.clone(), TlsMetrics::register(&mut registry)),
    );
    let (addr, handle) = start(&store).await;

    // Kept-alive clients stay on their connection; the others handshake for
    // every request, so some handshakes race each swap.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let trusted = [&first, &second];
            let client = if i % 2 == 0 {
                client(addr, &trusted)
            } else {
                reqwest::Client::builder()
                    .tls_certs_only(trusted.iter().map(|bundle| {
                        reqwest::Certificate::from_pem(bundle.ca_cert.as_bytes()).expect("CA PEM")
                    }))
                    .pool_max_idle_per_host(0)
                    .resolve(HOST, addr)
                    .build()
                    .expect("reqwest client")
            };
            tokio::spawn(post_until(client, addr, Arc::clone(&stop)))
        })
        .collect();

    for swap in 1..=6 {
        let next = if swap % 2 == 1 { &second } else { &first };
        publish(dir.path(), &format!("..v{swap}"), &next.cert, &next.key);
        eventually("the swapped certificate is served", async || {
            post(&client(addr, &[&first, &second]), addr).await.0 == leaf_der(next)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);

    let mut answered = 0;
    for client in clients {
        let (ok, failures) = client.await.expect("client task");
        assert_eq!(failures, Vec::<String>::new());
        answered += ok;
    }
    assert!(answered > 0, "no review was answered");
    watch.abort();
    handle.graceful_shutdown(Some(Duration::from_secs(1)));
}

fn load_error(dir: &Path, cert: &str, key: &str) -> (PathBuf, PathBuf, String) {
    let files = CertFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    std::fs::write(&files.cert, cert).expect("write cert");
    std::fs::write(&files.key, key).expect("write key");
    let message = files.load().expect_err("load fails").to_string();
    (files.cert, files.key, message)
}

#[test]
fn missing_file_error_names_the_file() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = CertFiles {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("missing.key"),
    };
    let message = files.load().expect_err("load fails").to_string();
    assert_eq!(
        message,
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            files.cert.display()
        )
    );
}

#[test]
fn key_file_without_key_names_the_key_file() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = bundle();
    let (_, key, message) = load_error(dir.path(), &bundle.cert, &bundle.cert);
    assert_eq!(
        message,
        format!(
            "{}: no PEM private key found (expected PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    );
}

#[test]
fn cert_file_without_certificate_names_the_cert_file() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = bundle();
    let (cert, _, message) = load_error(dir.path(), "", &bundle.key);
    assert_eq!(
        message,
        format!("{}: no PEM certificate found", cert.display())
    );
}

#[test]
fn key_of_another_certificate_is_a_mismatch_naming_both_files() {
    keyhole_agent::crypto::install_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, other) = (bundle(), bundle());
    let (cert, key, message) = load_error(dir.path(), &one.cert, &other.key);
    assert_eq!(
        message,
        format!(
            "the private key in {} does not match the certificate in {}",
            key.display(),
            cert.display()
        )
    );
}
