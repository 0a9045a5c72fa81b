//! `--tls-auto` against a mock Kubernetes API: the exact requests for creating,
//! sharing and renewing the CA Secret, and for patching the CA bundle.

use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyhole_injector::tls::auto::{AutoTls, Bundle, CA_LIFETIME, CERT_LIFETIME, Renewal};
use kube::client::Body;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use time::OffsetDateTime;

type ApiHandle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const SECRET_PATH: &str = "/api/v1/namespaces/keyhole/secrets/keyhole-injector-tls";
const CONFIG_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/keyhole-injector";
const HOST: &str = "keyhole-injector.keyhole.svc";

fn auto_tls() -> (AutoTls, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let auto = AutoTls {
        client: kube::Client::new(service, "default"),
        namespace: String::from("keyhole"),
        secret: String::from("keyhole-injector-tls"),
        webhook_config: String::from("keyhole-injector"),
        hosts: vec![HOST.to_owned()],
    };
    (auto, handle)
}

fn hosts() -> Vec<String> {
    vec![HOST.to_owned()]
}

/// Waits for the next request, checks its method and path, answers it with
/// `status` and `answer`, and returns the request's JSON body.
async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path_and_query: &str,
    status: StatusCode,
    answer: Value,
) -> Option<Value> {
    let (request, respond) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no {method} {path_and_query} within 10 seconds"))
        .expect("a request");
    assert_eq!(request.method(), method);
    assert_eq!(
        request.uri().path_and_query().map(|pq| pq.as_str()),
        Some(path_and_query)
    );
    let content_type = request
        .headers()
        .get("content-type")
        .map(|value| value.to_str().expect("ASCII header").to_owned());
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let body = (!bytes.is_empty()).then(|| {
        let value: Value = serde_json::from_slice(&bytes).expect("JSON body");
        json!({"contentType": content_type, "json": value})
    });
    let response = Response::builder()
        .status(status)
        .body(Body::from(
            serde_json::to_vec(&answer).expect("JSON answer"),
        ))
        .expect("response");
    respond.send_response(response);
    body
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("secrets \"keyhole-injector-tls\" {message}"),
        "reason": reason, "code": code,
    })
}

fn secret(bundle: &Bundle, resource_version: &str) -> Value {
    let b64 = |pem: &str| STANDARD.encode(pem);
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "keyhole-injector-tls", "namespace": "keyhole",
                     "resourceVersion": resource_version},
        "data": {"ca.crt": b64(&bundle.ca_cert), "ca.key": b64(&bundle.ca_key),
                 "tls.crt": b64(&bundle.cert), "tls.key": b64(&bundle.key)},
    })
}

fn data(secret: &Value, key: &str) -> String {
    let encoded = secret["data"][key].as_str().expect("data key");
    String::from_utf8(STANDARD.decode(encoded).expect("base64")).expect("PEM text")
}

fn not_after(pem: &str) -> OffsetDateTime {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("X.509");
    cert.validity().not_after.to_datetime()
}

fn ago(now: OffsetDateTime, days: u64) -> OffsetDateTime {
    now - Duration::from_secs(days * 24 * 3600)
}

/// Asserts the mock saw no further request once the client is gone.
async fn no_more_requests(auto: AutoTls, mut handle: ApiHandle) {
    drop(auto);
    let next = tokio::time::timeout(Duration::from_secs(10), handle.next_request()).await;
    assert!(next.expect("client dropped").is_none());
}

#[tokio::test]
async fn absent_secret_is_created_with_a_new_ca_and_certificate() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::NOT_FOUND,
        status(404, "NotFound", "not found"),
    )
    .await;
    let created = expect(
        &mut handle,
        Method::POST,
        "/api/v1/namespaces/keyhole/secrets?",
        StatusCode::CREATED,
        json!({}),
    )
    .await
    .expect("create body");
    let bundle = task.await.expect("task").expect("bundle");

    assert_eq!(created["contentType"], "application/json");
    let created = &created["json"];
    assert_eq!(created["metadata"]["name"], "keyhole-injector-tls");
    assert_eq!(created["metadata"]["namespace"], "keyhole");
    assert_eq!(created["type"], "kubernetes.io/tls");
    assert_eq!(data(created, "ca.crt"), bundle.ca_cert);
    assert_eq!(data(created, "ca.key"), bundle.ca_key);
    assert_eq!(data(created, "tls.crt"), bundle.cert);
    assert_eq!(data(created, "tls.key"), bundle.key);
    assert!(created["metadata"].get("resourceVersion").is_none());
    assert_eq!(bundle.renewal(&hosts(), now), Renewal::None);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn losing_the_create_race_reads_the_winners_secret() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let winner = Bundle::generate(&hosts(), now).expect("bundle");
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::NOT_FOUND,
        status(404, "NotFound", "not found"),
    )
    .await;
    expect(
        &mut handle,
        Method::POST,
        "/api/v1/namespaces/keyhole/secrets?",
        StatusCode::CONFLICT,
        status(409, "AlreadyExists", "already exists"),
    )
    .await;
    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&winner, "7"),
    )
    .await;

    let bundle = task.await.expect("task").expect("bundle");
    assert_eq!(bundle, winner);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn valid_secret_is_reused_without_writes() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let existing = Bundle::generate(&hosts(), ago(now, 100)).expect("bundle");
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&existing, "12"),
    )
    .await;

    assert_eq!(task.await.expect("task").expect("bundle"), existing);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn certificate_near_expiry_is_reissued_from_the_same_ca() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let existing = Bundle::generate(&hosts(), ago(now, 340)).expect("bundle");
    assert_eq!(existing.renewal(&hosts(), now), Renewal::Cert);
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&existing, "41"),
    )
    .await;
    let replaced = expect(
        &mut handle,
        Method::PUT,
        &format!("{SECRET_PATH}?"),
        StatusCode::OK,
        json!({}),
    )
    .await
    .expect("replace body");
    let bundle = task.await.expect("task").expect("bundle");

    let replaced = &replaced["json"];
    assert_eq!(replaced["metadata"]["resourceVersion"], "41");
    assert_eq!(data(replaced, "ca.crt"), existing.ca_cert);
    assert_eq!(data(replaced, "ca.key"), existing.ca_key);
    assert_eq!(data(replaced, "tls.crt"), bundle.cert);
    assert_ne!(bundle.cert, existing.cert);
    assert_eq!(
        not_after(&bundle.cert).unix_timestamp(),
        (now + CERT_LIFETIME).unix_timestamp()
    );
    assert_eq!(bundle.renewal(&hosts(), now), Renewal::None);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn ca_near_expiry_is_replaced_and_the_old_ca_stays_trusted() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let ca_days = CA_LIFETIME.as_secs() / (24 * 3600);
    let existing = Bundle::generate(&hosts(), ago(now, ca_days - 200)).expect("bundle");
    assert_eq!(existing.renewal(&hosts(), now), Renewal::Ca);
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&existing, "90"),
    )
    .await;
    let replaced = expect(
        &mut handle,
        Method::PUT,
        &format!("{SECRET_PATH}?"),
        StatusCode::OK,
        json!({}),
    )
    .await
    .expect("replace body");
    let bundle = task.await.expect("task").expect("bundle");

    let ca = data(&replaced["json"], "ca.crt");
    let cas: Vec<_> = CertificateDer::pem_slice_iter(ca.as_bytes())
        .collect::<Result<_, _>>()
        .expect("CA PEM");
    let old: Vec<_> = CertificateDer::pem_slice_iter(existing.ca_cert.as_bytes())
        .collect::<Result<_, _>>()
        .expect("CA PEM");
    assert_eq!(cas.len(), 2, "new CA, then the old one");
    assert_ne!(cas[0], old[0]);
    assert_eq!(cas[1], old[0]);
    assert_ne!(data(&replaced["json"], "ca.key"), existing.ca_key);
    assert_eq!(bundle.renewal(&hosts(), now), Renewal::None);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn losing_the_renewal_race_reads_the_winners_secret() {
    let (auto, mut handle) = auto_tls();
    let now = OffsetDateTime::now_utc();
    let existing = Bundle::generate(&hosts(), ago(now, 340)).expect("bundle");
    let winner = existing.reissue(&hosts(), now).expect("bundle");
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.ensure_secret(now).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&existing, "41"),
    )
    .await;
    expect(
        &mut handle,
        Method::PUT,
        &format!("{SECRET_PATH}?"),
        StatusCode::CONFLICT,
        status(409, "Conflict", "the object has been modified"),
    )
    .await;
    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&winner, "42"),
    )
    .await;

    assert_eq!(task.await.expect("task").expect("bundle"), winner);
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn renamed_hosts_get_a_new_certificate() {
    let now = OffsetDateTime::now_utc();
    let existing = Bundle::generate(&hosts(), now).expect("bundle");
    let renamed = vec![String::from("injector.keyhole.svc")];
    assert_eq!(existing.renewal(&renamed, now), Renewal::Cert);
}

fn webhook_config(first_bundle: Option<&str>) -> Value {
    let mut first = json!({
        "name": "pods.keyhole.dev",
        "clientConfig": {"service": {"namespace": "keyhole", "name": "keyhole-injector", "path": "/mutate"}},
        "admissionReviewVersions": ["v1"], "sideEffects": "None",
    });
    if let Some(bundle) = first_bundle {
        first["clientConfig"]["caBundle"] = bundle.into();
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "keyhole-injector", "resourceVersion": "3"},
        "webhooks": [first, {
            "name": "pods-strict.keyhole.dev",
            "clientConfig": {"service": {"namespace": "keyhole", "name": "keyhole-injector", "path": "/mutate"},
                             "caBundle": STANDARD.encode("-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n")},
            "admissionReviewVersions": ["v1"], "sideEffects": "None",
        }],
    })
}

#[tokio::test]
async fn ca_bundle_is_patched_into_webhooks_that_lack_it() {
    let (auto, mut handle) = auto_tls();
    let ca = Bundle::generate(&hosts(), OffsetDateTime::now_utc())
        .expect("bundle")
        .ca_cert;
    let task = tokio::spawn({
        let (auto, ca) = (auto.clone(), ca.clone());
        async move { auto.patch_ca_bundle(&ca).await }
    });

    expect(
        &mut handle,
        Method::GET,
        CONFIG_PATH,
        StatusCode::OK,
        webhook_config(None),
    )
    .await;
    let patch = expect(
        &mut handle,
        Method::PATCH,
        &format!("{CONFIG_PATH}?&fieldManager=keyhole-injector"),
        StatusCode::OK,
        webhook_config(Some(&STANDARD.encode(&ca))),
    )
    .await
    .expect("patch body");

    assert!(task.await.expect("task").expect("patched"));
    assert_eq!(
        patch["contentType"],
        "application/strategic-merge-patch+json"
    );
    let encoded = STANDARD.encode(&ca);
    assert_eq!(
        patch["json"],
        json!({"webhooks": [
            {"name": "pods.keyhole.dev", "clientConfig": {"caBundle": encoded}},
            {"name": "pods-strict.keyhole.dev", "clientConfig": {"caBundle": encoded}},
        ]})
    );
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn current_ca_bundle_is_not_patched_again() {
    let (auto, mut handle) = auto_tls();
    let ca = "-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n";
    let task = tokio::spawn({
        let auto = auto.clone();
        async move { auto.patch_ca_bundle(ca).await }
    });

    expect(
        &mut handle,
        Method::GET,
        CONFIG_PATH,
        StatusCode::OK,
        webhook_config(Some(&STANDARD.encode(ca))),
    )
    .await;

    assert!(!task.await.expect("task").expect("no patch needed"));
    no_more_requests(auto, handle).await;
}

#[tokio::test]
async fn refresh_serves_the_secrets_certificate_and_patches_its_ca() {
    keyhole_agent::crypto::install_provider();
    let (auto, mut handle) = auto_tls();
    let existing = Bundle::generate(&hosts(), OffsetDateTime::now_utc()).expect("bundle");
    let store = keyhole_injector::tls::CertStore::new();
    let ready = store.loaded();
    let task = tokio::spawn({
        let (auto, store) = (auto.clone(), store.clone());
        async move { auto.refresh(&store).await }
    });

    expect(
        &mut handle,
        Method::GET,
        SECRET_PATH,
        StatusCode::OK,
        secret(&existing, "5"),
    )
    .await;
    expect(
        &mut handle,
        Method::GET,
        CONFIG_PATH,
        StatusCode::OK,
        webhook_config(None),
    )
    .await;
    let patch = expect(
        &mut handle,
        Method::PATCH,
        &format!("{CONFIG_PATH}?&fieldManager=keyhole-injector"),
        StatusCode::OK,
        json!({}),
    )
    .await
    .expect("patch body");

    assert!(task.await.expect("task").expect("refreshed"));
    assert!(*ready.borrow());
    let served = store.get().expect("a certificate");
    let leaf = CertificateDer::from_pem_slice(existing.cert.as_bytes()).expect("certificate");
    assert_eq!(served.cert[0], leaf);
    assert_eq!(
        patch["json"]["webhooks"][0]["clientConfig"]["caBundle"],
        STANDARD.encode(&existing.ca_cert)
    );
    no_more_requests(auto, handle).await;
}

/// Answers the next request, a read of the Secret, with a server error and
/// returns when it came.
async fn fail_read(handle: &mut ApiHandle) -> tokio::time::Instant {
    let (request, respond) = handle.next_request().await.expect("a request");
    let at = tokio::time::Instant::now();
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), SECRET_PATH);
    let answer = status(500, "InternalError", "cannot be read");
    let response = Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
        .expect("response");
    respond.send_response(response);
    at
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_is_retried_with_backoff_not_at_the_next_recheck() {
    let (auto, mut handle) = auto_tls();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = keyhole_injector::metrics::TlsMetrics::register(&mut registry);
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(auto.keep_current(keyhole_injector::tls::CertStore::new(), metrics));

    let first = fail_read(&mut handle).await;
    let recheck = first - start;
    assert!(
        (Duration::from_secs(8 * 60)..=Duration::from_secs(12 * 60)).contains(&recheck),
        "first recheck after {recheck:?}"
    );
    let second = fail_read(&mut handle).await;
    assert_eq!(second - first, Duration::from_secs(10));
    let third = fail_read(&mut handle).await;
    let wait = third - second;
    assert!(
        (Duration::from_secs(10)..=Duration::from_secs(20)).contains(&wait),
        "second retry after {wait:?}"
    );
    task.abort();
}
