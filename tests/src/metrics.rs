//! The metrics the two binaries really export, scraped from a running
//! `keyhole-injector serve` (its admin port's `/metrics`) and a running
//! `keyhole-agent` (a `role = "metrics_only"` listener's `/agent/v1/metrics`),
//! so that alerts and docs are checked against the code, not a list.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use rcgen::{CertificateParams, KeyPair};
use serde_json::{Value, json};

use crate::{
    AgentConfig, AutoAuth, Bao, Template, free_port, install_crypto_provider, spawn_keyhole_agent,
    workspace_bin,
};

/// How long a binary may take to answer its first scrape.
const START: Duration = Duration::from_secs(30);

/// A metric's type in the OpenMetrics text format, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Queried as `<name>_total`.
    Counter,
    /// Queried by its name.
    Gauge,
    /// Queried as `<name>_bucket`, `<name>_sum` and `<name>_count`.
    Histogram,
}

/// Every metric family of a scrape, by the name its `# TYPE` line gives (a
/// counter without `_total`), with its type. A family is listed even when it
/// has no sample yet.
pub fn families(scrape: &str) -> anyhow::Result<BTreeMap<String, MetricType>> {
    let mut families = BTreeMap::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest
            .split_once(' ')
            .with_context(|| format!("malformed TYPE line {line:?}"))?;
        let kind = match kind {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            other => bail!("metric {name} has a type these tests do not know: {other}"),
        };
        families.insert(name.to_owned(), kind);
    }
    Ok(families)
}

/// Whether `series`, a metric name as a PromQL query writes it, is one of
/// `families`: a counter's `_total`, a gauge, or a histogram's bucket, sum
/// or count.
pub fn is_exported(families: &BTreeMap<String, MetricType>, series: &str) -> bool {
    if families.get(series) == Some(&MetricType::Gauge) {
        return true;
    }
    let suffixed = |suffix: &str, kind: MetricType| {
        series
            .strip_suffix(suffix)
            .is_some_and(|name| families.get(name) == Some(&kind))
    };
    suffixed("_total", MetricType::Counter)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| suffixed(suffix, MetricType::Histogram))
}

/// What a running `keyhole-injector serve` answers at its admin port's
/// `/metrics`. It serves a fresh self-signed certificate and is killed
/// once scraped.
pub async fn scrape_injector() -> anyhow::Result<String> {
    install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let admin = free_port()?;
    let bin = workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")?;
    let _server = tokio::process::Command::new(&bin)
        .arg("serve")
        .arg(format!("--listen=127.0.0.1:{}", free_port()?))
        .arg(format!("--admin-listen=127.0.0.1:{admin}"))
        .arg(format!("--tls-cert={}", cert_path.display()))
        .arg(format!("--tls-key={}", key_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    get_when_up(&format!("http://127.0.0.1:{admin}/metrics")).await
}

/// What a running `keyhole-agent` answers on a metrics-only listener at
/// `/agent/v1/metrics`, once it has logged in to `bao` with a token that
/// expires, rendered a secret with a lease and failed to render one it may
/// not read, so that every family has a sample.
pub async fn scrape_agent(bao: &Bao) -> anyhow::Result<String> {
    bao.enable_secrets("kv1", "kv", Value::Null).await?;
    bao.kv1_put("kv1", "leased", json!({"value": "v", "ttl": "1h"}))
        .await?;
    bao.put_policy(
        "metrics",
        r#"path "kv1/leased" { capabilities = ["read"] }"#,
    )
    .await?;
    let token = bao.create_token(&["metrics"], "1h").await?;
    let dir = tempfile::tempdir()?;
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, token)?;
    let port = free_port()?;
    let secret =
        |path: &str| format!(r#"{{{{ with secret "{path}" }}}}{{{{ .Data.value }}}}{{{{ end }}}}"#);
    let config = AgentConfig::new(bao.addr())
        .auto_auth(AutoAuth::token_file(&token_path))
        .exit_on_retry_failure(false)
        .template(Template::new(
            dir.path().join("leased"),
            secret("kv1/leased"),
        ))
        .template(Template::new(
            dir.path().join("forbidden"),
            secret("kv1/forbidden"),
        ));
    let config = format!(
        "{config}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n  \
         role = \"metrics_only\"\n}}\n"
    );
    let agent = spawn_keyhole_agent(config, &[]).await?;
    let url = format!("http://127.0.0.1:{port}/agent/v1/metrics");
    let deadline = tokio::time::Instant::now() + START;
    loop {
        let scrape = get_when_up(&url).await?;
        if scrape.contains("keyhole_agent_render_errors_total{")
            && scrape.contains("keyhole_agent_lease_remaining_seconds{")
        {
            return Ok(scrape);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no render error or lease in:\n{scrape}\nagent log:\n{}",
                agent.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The body of `GET url`, retried until the server listens.
async fn get_when_up(url: &str) -> anyhow::Result<String> {
    install_crypto_provider();
    let deadline = tokio::time::Instant::now() + START;
    loop {
        match reqwest::get(url).await {
            Ok(response) if response.status().is_success() => return Ok(response.text().await?),
            Ok(response) => bail!("GET {url} returned {}", response.status()),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(err).with_context(|| format!("GET {url}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_read_from_type_lines_and_queried_by_their_series_names() {
        let scrape = "# HELP a_renders Renders.\n# TYPE a_renders counter\n\
                      a_renders_total{destination=\"/x\"} 1\n# TYPE a_left_seconds gauge\n\
                      # TYPE a_duration_seconds histogram\na_duration_seconds_sum 0\n# EOF\n";
        let families = families(scrape).expect("families");
        assert_eq!(
            families.keys().collect::<Vec<_>>(),
            ["a_duration_seconds", "a_left_seconds", "a_renders"]
        );
        for series in [
            "a_renders_total",
            "a_left_seconds",
            "a_duration_seconds_bucket",
            "a_duration_seconds_count",
        ] {
            assert!(is_exported(&families, series), "{series}");
        }
        for series in [
            "a_renders",
            "a_left_seconds_total",
            "a_duration_seconds",
            "up",
        ] {
            assert!(!is_exported(&families, series), "{series}");
        }
    }
}
