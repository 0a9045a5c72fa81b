//! From an annotated Deployment in git to files on disk: the Deployment of
//! `examples/` goes through `keyhole-injector mutate`'s code path (the
//! webhook's), and the injected agent container runs with its env config,
//! its volumes mapped to a temporary directory, against a real OpenBao.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use keyhole_injector::offline::mutate_documents;
use keyhole_injector::settings::Settings;
use keyhole_tests::example::{
    INITIAL_PASSWORD, NAMESPACE, SERVICE_ACCOUNT, configure_example, deployment_path,
};
use keyhole_tests::{
    API_SERVER_AUDIENCE, Bao, PodAgent, TokenReviewer, keyhole_agent_bin, mint_sa_token,
    put_kubernetes_role,
};
use serde_json::{Value, json};

struct Cluster {
    bao: Bao,
    _reviewer: TokenReviewer,
}

async fn cluster() -> anyhow::Result<Cluster> {
    let bao = Bao::start().await?;
    let reviewer = configure_example(&bao).await?;
    Ok(Cluster {
        bao,
        _reviewer: reviewer,
    })
}

/// The annotation prefixes a pod may be written with: vault-k8s's, and
/// OpenBao's fork's.
const PREFIXES: [&str; 2] = ["vault.hashicorp.com/", "openbao.org/"];

/// The pod template of the mutated Deployment, its annotations written
/// under `prefix`, as the pod the ReplicaSet controller would create.
fn mutated_pod(settings: &Settings, prefix: &str) -> anyhow::Result<Value> {
    let manifest = std::fs::read_to_string(deployment_path())?.replace(PREFIXES[0], prefix);
    let mutated = mutate_documents(&manifest, settings)?;
    let deployment: Value = serde_saphyr::from_str(&mutated.yaml)?;
    let template = &deployment["spec"]["template"];
    Ok(json!({ "metadata": template["metadata"], "spec": template["spec"] }))
}

fn settings(bao: &Bao, native_sidecar: bool) -> Settings {
    Settings {
        vault_addr: Some(bao.addr().to_owned()),
        native_sidecar,
        ..Settings::default()
    }
}

/// The token the kubelet writes into the agent's projected token volume: for the
/// volume's `audience`, or for the API server's own audiences when it names none.
fn kubelet_token(pod: &Value) -> anyhow::Result<String> {
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "vault-agent-sa-token")
        .context("the pod has no projected token volume")?;
    let projection = &volume["projected"]["sources"][0]["serviceAccountToken"];
    let audience = projection["audience"]
        .as_str()
        .unwrap_or(API_SERVER_AUDIENCE);
    Ok(mint_sa_token(
        NAMESPACE,
        SERVICE_ACCOUNT,
        audience,
        Duration::from_secs(3600),
    ))
}

fn assert_secret_files(dir: &Path) -> anyhow::Result<()> {
    assert_eq!(
        std::fs::read_to_string(dir.join("config.env"))?,
        format!("DATABASE_URL=postgres://orders:{INITIAL_PASSWORD}@db:5432/orders\n")
    );
    let db = std::fs::read_to_string(dir.join("db"))?;
    assert!(
        db.starts_with(&format!(
            "data: map[password:{INITIAL_PASSWORD} username:orders]\nmetadata: map[created_time:"
        )),
        "the vault-k8s default template: {db}"
    );
    let tls = std::fs::read_to_string(dir.join("tls.pem"))?;
    assert!(tls.starts_with("-----BEGIN CERTIFICATE-----\n"), "{tls}");
    assert!(tls.contains("PRIVATE KEY-----\n"));
    for name in ["config.env", "db", "tls.pem"] {
        let mode = std::fs::metadata(dir.join(name))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn native_sidecar_from_annotated_deployment_renders_the_files() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    for prefix in PREFIXES {
        let pod = mutated_pod(&settings(&cluster.bao, true), prefix)?;
        assert_eq!(
            pod["metadata"]["annotations"][format!("{prefix}agent-inject-status")],
            "injected"
        );
        let dir = tempfile::tempdir()?;
        let token = kubelet_token(&pod)?;
        let mut agent = PodAgent::start(
            &keyhole_agent_bin()?,
            &pod,
            "vault-agent",
            dir.path(),
            &token,
        )
        .await?;
        agent.wait_ready(Duration::from_secs(30)).await?;
        assert_secret_files(&agent.volume_dir("vault-secrets")?)?;
        let status = agent.stop().await?;
        assert!(status.success(), "{prefix}: {status}");
    }
    Ok(())
}

#[tokio::test]
async fn classic_init_container_renders_the_files_and_exits() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let pod = mutated_pod(&settings(&cluster.bao, false), PREFIXES[0])?;
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(containers, ["app", "vault-agent"]);
    let dir = tempfile::tempdir()?;
    let token = kubelet_token(&pod)?;
    let agent = PodAgent::start(
        &keyhole_agent_bin()?,
        &pod,
        "vault-agent-init",
        dir.path(),
        &token,
    )
    .await?;
    let secrets = agent.volume_dir("vault-secrets")?;
    let status = agent.wait(Duration::from_secs(30)).await?;
    assert!(status.success(), "the init container exits 0: {status}");
    assert_secret_files(&secrets)?;
    Ok(())
}

#[tokio::test]
async fn a_token_audience_set_by_the_operator_logs_in_where_the_role_requires_it()
-> anyhow::Result<()> {
    let cluster = cluster().await?;
    put_kubernetes_role(
        &cluster.bao,
        "kubernetes",
        SERVICE_ACCOUNT,
        &[SERVICE_ACCOUNT],
        &[NAMESPACE],
        &["orders"],
        Some("vault"),
    )
    .await?;
    let settings = Settings {
        token_audience: Some("vault".to_owned()),
        ..settings(&cluster.bao, false)
    };
    let pod = mutated_pod(&settings, PREFIXES[0])?;
    let dir = tempfile::tempdir()?;
    let agent = PodAgent::start(
        &keyhole_agent_bin()?,
        &pod,
        "vault-agent-init",
        dir.path(),
        &kubelet_token(&pod)?,
    )
    .await?;
    let secrets = agent.volume_dir("vault-secrets")?;
    let status = agent.wait(Duration::from_secs(30)).await?;
    assert!(status.success(), "the init container exits 0: {status}");
    assert_secret_files(&secrets)?;
    Ok(())
}
