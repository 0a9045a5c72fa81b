//! The Vault side of `examples/deployment.yaml`, as a platform team would set it up.
//!
//! The demo (`cargo xtask demo`) and the end-to-end tests both run the example's pod.

use std::path::PathBuf;

use serde_json::json;

use crate::{API_SERVER_AUDIENCE, Bao, TokenReviewer, configure_kubernetes_auth, configure_pki};

/// The example's namespace.
pub const NAMESPACE: &str = "demo";
/// The example's service account, also the name of its Vault role.
pub const SERVICE_ACCOUNT: &str = "orders";
/// The password `secret/orders/db` starts with.
pub const INITIAL_PASSWORD: &str = "initial-s3cret";

/// `examples/deployment.yaml`.
pub fn deployment_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/deployment.yaml")
}

/// Sets up `bao` for the example: the `kubernetes` auth method (answered by the returned
/// TokenReview stand-in; keep it alive) with role `orders` for `demo/orders`, bound to the
/// API server's audience as Vault asks roles for vault-k8s pods to be, policy `orders`, the KV v2 secret `secret/orders/db` and the PKI role
/// `pki/issue/orders`.
pub async fn configure_example(bao: &Bao) -> anyhow::Result<TokenReviewer> {
    bao.put_policy(
        "orders",
        r#"path "secret/data/orders/*" { capabilities = ["read"] }
path "pki/issue/orders" { capabilities = ["update"] }"#,
    )
    .await?;
    let reviewer = configure_kubernetes_auth(
        bao,
        "kubernetes",
        "orders",
        &[SERVICE_ACCOUNT],
        &[NAMESPACE],
        &["orders"],
        Some(API_SERVER_AUDIENCE),
    )
    .await?;
    bao.kv2_put(
        "secret",
        "orders/db",
        json!({ "username": "orders", "password": INITIAL_PASSWORD }),
    )
    .await?;
    configure_pki(bao, "pki", "orders", "72h").await?;
    Ok(reviewer)
}
