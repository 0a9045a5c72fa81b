//! The one kube-apiserver endpoint the `kubernetes` auth method calls: TokenReview.
//!
//! OpenBao's kubernetes auth sends the login JWT to
//! `POST /apis/authentication.k8s.io/v1/tokenreviews` on `kubernetes_host`. No apiserver
//! runs here, so the test process answers it the way an apiserver would for projected
//! service-account tokens: signature checked against the test key, expiry checked, audiences
//! intersected with the ones the reviewer asked for, or with the apiserver's own
//! ([`API_SERVER_AUDIENCE`]) when it asked for none.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::Bao;
use crate::sa_token::verify;

/// The audience the stand-in apiserver gives its own tokens: what the kubelet puts in a
/// projected token without an `audience`, and what a review that names none checks.
pub const API_SERVER_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The CA certificate OpenBao is given for the stand-in apiserver.
const KUBE_CA_PEM: &str = include_str!("../data/kube-apiserver.crt");

/// A TokenReview endpoint on a loopback port, served until drop.
pub struct TokenReviewer {
    addr: String,
    stats: Arc<Stats>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct Stats {
    served: AtomicUsize,
    authenticated: AtomicUsize,
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TokenReviewer {
    /// Starts serving on `127.0.0.1:<free port>` in the current tokio runtime.
    ///
    /// The test's runtime answers the reviews, so a test must not block it (a synchronous
    /// `std::process::Command::output`, say) while OpenBao may be calling: use
    /// `tokio::process` or `#[tokio::test(flavor = "multi_thread")]`.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = format!("http://{}", listener.local_addr()?);
        let stats = Arc::new(Stats::default());
        let app = Router::new()
            .route("/apis/authentication.k8s.io/v1/tokenreviews", post(review))
            .with_state(Arc::clone(&stats));
        let server = tokio::spawn(async move {
            // The task is aborted on drop; an accept error ends it early and makes
            // logins fail, which the test then reports.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            stats,
            server,
        })
    }

    /// The base URL to use as `kubernetes_host`, e.g. `http://127.0.0.1:41234`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many TokenReviews were answered so far (authenticated or not).
    pub fn reviews(&self) -> usize {
        self.stats.served.load(Ordering::SeqCst)
    }

    /// How many TokenReviews answered `authenticated: true`.
    pub fn authenticated(&self) -> usize {
        self.stats.authenticated.load(Ordering::SeqCst)
    }
}

impl TokenReviewer {
    /// Enables the `kubernetes` auth method at `auth/<mount>` with this reviewer as its
    /// `kubernetes_host` (use after [`Bao::restart_empty`], or for a second mount).
    ///
    /// OpenBao runs outside any pod here, so `disable_local_ca_jwt` keeps it from reading
    /// the in-pod service-account files, which makes `kubernetes_ca_cert` mandatory (the
    /// stand-in speaks plain HTTP, so the certificate is never used). With no
    /// `token_reviewer_jwt` OpenBao reviews each login JWT using that JWT itself as the
    /// bearer, as with client-JWT review in a cluster.
    pub async fn enable_on(&self, bao: &Bao, mount: &str) -> anyhow::Result<()> {
        bao.enable_auth(mount, "kubernetes").await?;
        bao.write(
            &format!("auth/{mount}/config"),
            json!({
                "kubernetes_host": self.addr,
                "kubernetes_ca_cert": KUBE_CA_PEM,
                "disable_local_ca_jwt": true,
            }),
        )
        .await
        .with_context(|| format!("configuring kubernetes auth at auth/{mount}"))
        .map(drop)
    }
}

impl Drop for TokenReviewer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn review(State(stats): State<Arc<Stats>>, Json(request): Json<Value>) -> Json<Value> {
    stats.served.fetch_add(1, Ordering::SeqCst);
    let token = request["spec"]["token"].as_str().unwrap_or_default();
    let mut wanted: Vec<&str> = request["spec"]["audiences"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // An empty list means "the apiserver's own audiences".
    if wanted.is_empty() {
        wanted.push(API_SERVER_AUDIENCE);
    }
    let status = match verify(token) {
        Err(err) => {
            json!({ "authenticated": false, "error": format!("invalid bearer token: {err}") })
        }
        Ok(claims) => {
            let audiences: Vec<&String> = claims
                .aud
                .iter()
                .filter(|aud| wanted.contains(&aud.as_str()))
                .collect();
            if audiences.is_empty() {
                json!({ "authenticated": false, "error": "token audiences do not match" })
            } else {
                stats.authenticated.fetch_add(1, Ordering::SeqCst);
                let ns = &claims.kubernetes_io.namespace;
                json!({
                    "authenticated": true,
                    "user": {
                        "username": claims.sub,
                        "uid": claims.kubernetes_io.serviceaccount.uid,
                        "groups": [
                            "system:serviceaccounts",
                            format!("system:serviceaccounts:{ns}"),
                            "system:authenticated",
                        ],
                        "extra": {
                            "authentication.kubernetes.io/pod-name": [claims.kubernetes_io.pod.name],
                            "authentication.kubernetes.io/pod-uid": [claims.kubernetes_io.pod.uid],
                        },
                    },
                    "audiences": audiences,
                })
            }
        }
    };
    Json(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "metadata": { "creationTimestamp": null },
        "spec": request["spec"],
        "status": status,
    }))
}

/// Starts a [`TokenReviewer`], enables the `kubernetes` auth method at `auth/<mount>`
/// against it and creates `role` (see [`put_kubernetes_role`]). Keep the returned reviewer
/// alive for as long as logins should work.
pub async fn configure_kubernetes_auth(
    bao: &Bao,
    mount: &str,
    role: &str,
    bound_sa_names: &[&str],
    bound_namespaces: &[&str],
    policies: &[&str],
    audience: Option<&str>,
) -> anyhow::Result<TokenReviewer> {
    let reviewer = TokenReviewer::start().await?;
    reviewer.enable_on(bao, mount).await?;
    put_kubernetes_role(
        bao,
        mount,
        role,
        bound_sa_names,
        bound_namespaces,
        policies,
        audience,
    )
    .await?;
    Ok(reviewer)
}

/// Creates or replaces `role` of the kubernetes auth method at `auth/<mount>`: bound to the
/// given service-account names and namespaces, granting `policies` with a one-hour token
/// TTL, and requiring the token audience `audience` when it is `Some`.
pub async fn put_kubernetes_role(
    bao: &Bao,
    mount: &str,
    role: &str,
    bound_sa_names: &[&str],
    bound_namespaces: &[&str],
    policies: &[&str],
    audience: Option<&str>,
) -> anyhow::Result<()> {
    let mut body = json!({
        "bound_service_account_names": bound_sa_names,
        "bound_service_account_namespaces": bound_namespaces,
        "token_policies": policies,
        "token_ttl": "1h",
    });
    if let Some(audience) = audience {
        body["audience"] = json!(audience);
    }
    bao.write(&format!("auth/{mount}/role/{role}"), body)
        .await
        .with_context(|| format!("creating kubernetes role {role} at auth/{mount}"))
        .map(drop)
}
