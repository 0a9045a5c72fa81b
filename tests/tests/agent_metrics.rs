//! Agent metrics as Prometheus sees them: the agent keyhole-injector injects with
//! `--agent-metrics-port` serves `/agent/v1/metrics` on that port against a real
//! OpenBao, and docs/metrics.md lists exactly the metrics the two binaries export.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use keyhole_injector::offline::mutate_documents;
use keyhole_injector::settings::Settings;
use keyhole_tests::example::{NAMESPACE, SERVICE_ACCOUNT, configure_example, deployment_path};
use keyhole_tests::metrics::{MetricType, families, scrape_agent, scrape_injector};
use keyhole_tests::{
    API_SERVER_AUDIENCE, Bao, PodAgent, free_port, install_crypto_provider, keyhole_agent_bin,
    metric_value, mint_sa_token,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The pod the example Deployment's ReplicaSet would create, mutated with `settings`.
fn mutated_pod(settings: &Settings) -> anyhow::Result<Value> {
    let manifest = std::fs::read_to_string(deployment_path())?;
    let mutated = mutate_documents(&manifest, settings)?;
    let deployment: Value = serde_saphyr::from_str(&mutated.yaml)?;
    let template = &deployment["spec"]["template"];
    Ok(json!({ "metadata": template["metadata"], "spec": template["spec"] }))
}

#[tokio::test]
async fn the_injected_agent_serves_its_metrics_on_the_metrics_port() -> anyhow::Result<()> {
    install_crypto_provider();
    let bao = Bao::start().await?;
    let _reviewer = configure_example(&bao).await?;
    let port = free_port()?;
    let settings = Settings {
        vault_addr: Some(bao.addr().to_owned()),
        agent_metrics_port: Some(port),
        ..Settings::default()
    };
    let pod = mutated_pod(&settings)?;
    let agent_container = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "vault-agent")
        .expect("the native sidecar");
    assert_eq!(
        agent_container["ports"],
        json!([{"name": "keyhole-metrics", "containerPort": port, "protocol": "TCP"}])
    );

    let dir = tempfile::tempdir()?;
    let token = mint_sa_token(
        NAMESPACE,
        SERVICE_ACCOUNT,
        API_SERVER_AUDIENCE,
        Duration::from_secs(3600),
    );
    let mut agent = PodAgent::start(
        &keyhole_agent_bin()?,
        &pod,
        "vault-agent",
        dir.path(),
        &token,
    )
    .await?;
    agent.wait_ready(Duration::from_secs(30)).await?;

    let response = reqwest::get(format!("http://127.0.0.1:{port}/agent/v1/metrics")).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let scrape = response.text().await?;
    let secrets = agent.volume_dir("vault-secrets")?;
    let renders = format!(
        "keyhole_agent_renders_total{{destination=\"{}\"}}",
        secrets.join("db").display()
    );
    assert!(
        metric_value(&scrape, &renders).is_some_and(|n| n >= 1.0),
        "no {renders} in:\n{scrape}"
    );
    let token_left = metric_value(
        &scrape,
        "keyhole_agent_token_remaining_seconds{mount_path=\"auth/kubernetes\"}",
    )
    .unwrap_or_else(|| panic!("no token gauge in:\n{scrape}"));
    assert!(token_left > 0.0, "{scrape}");

    // The metrics listener serves nothing else: no API proxy, no quit.
    let other = reqwest::get(format!("http://127.0.0.1:{port}/v1/sys/health")).await?;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let status = agent.stop().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

/// The names in the first column of the tables of docs/metrics.md.
fn documented_metrics() -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
    let text = std::fs::read_to_string(&path).expect("docs/metrics.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("| `keyhole_"))
        .map(|rest| {
            let name = rest.split('`').next().expect("closing backtick");
            format!("keyhole_{name}")
        })
        .collect()
}

#[tokio::test]
async fn docs_list_exactly_the_metrics_the_binaries_export() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let mut exported = families(&scrape_injector().await?)?;
    exported.extend(families(&scrape_agent(&bao).await?)?);
    // Documented as queried: a counter with `_total`, a histogram by its name.
    let exported: BTreeSet<String> = exported
        .into_iter()
        .map(|(name, kind)| match kind {
            MetricType::Counter => format!("{name}_total"),
            MetricType::Gauge | MetricType::Histogram => name,
        })
        .collect();
    let documented = documented_metrics();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&exported).collect();
    assert!(
        undocumented.is_empty() && gone.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}; in docs/metrics.md but not \
         exported: {gone:?}"
    );
    Ok(())
}
