//! The chart's monitoring of agents, rendered by real Helm (tests/chart/render.py):
//! `agent.metricsPort` becomes the injector's `KEYHOLE_AGENT_METRICS_PORT`, which
//! keyhole-injector reads into the agent's container port; the PodMonitor scrapes that
//! port; the PrometheusRule's alerts are well formed and every metric they query is one
//! a running keyhole-injector or keyhole-agent exports.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context;
use keyhole_injector::patch::METRICS_PORT_NAME;
use keyhole_tests::chart::{self, Answer, FULLNAME, NAMESPACE, Render, stdout_of};
use keyhole_tests::metrics::{families, is_exported, scrape_agent, scrape_injector};
use keyhole_tests::{Bao, Tool, require, workspace_bin};
use serde_json::{Value, json};

/// What the alerts may query that no keyhole binary exports: Prometheus's own
/// scrape health.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

fn value_sets() -> Value {
    json!({
        "default": {},
        "monitoring": {
            "agent": {"metricsPort": 9102},
            "metrics": {
                "enabled": true,
                "serviceMonitor": {"enabled": true},
                "podMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
                "prometheusRule": {"enabled": true, "labels": {"release": "prometheus"}},
            },
        },
        "pod-monitor-namespaces": {"metrics": {"podMonitor": {
            "enabled": true,
            "namespaces": ["orders", "billing"],
            "interval": "1m",
            "scrapeTimeout": "20s",
        }}},
        "token-expiry": {"metrics": {
            "enabled": true,
            "serviceMonitor": {"enabled": true},
            "prometheusRule": {"enabled": true, "tokenExpirySeconds": 60},
        }},
    })
}

/// Values Helm must refuse, with what the message must say.
fn rejected_sets() -> [(&'static str, Value, &'static str); 4] {
    [
        (
            "rule-without-service-monitor",
            json!({"metrics": {"prometheusRule": {"enabled": true}}}),
            "metrics.prometheusRule.enabled needs metrics.serviceMonitor.enabled",
        ),
        (
            "port-zero",
            json!({"agent": {"metricsPort": 0}}),
            "/agent/metricsPort",
        ),
        (
            "port-as-text",
            json!({"agent": {"metricsPort": "9102"}}),
            "/agent/metricsPort",
        ),
        (
            "pod-monitor-typo",
            json!({"metrics": {"podMonitor": {"enabled": true, "namespace": ["orders"]}}}),
            "namespace",
        ),
    ]
}

/// The injector's environment in a rendered set.
fn injector_env(render: &Render) -> &Vec<Value> {
    render.container()["env"].as_array().expect("env")
}

/// Renders every set once for all tests of this file.
fn answer() -> &'static Answer {
    static ANSWER: OnceLock<Answer> = OnceLock::new();
    ANSWER.get_or_init(|| render().unwrap_or_else(|err| panic!("{err:#}")))
}

fn render() -> anyhow::Result<Answer> {
    let rejected: serde_json::Map<String, Value> = rejected_sets()
        .into_iter()
        .map(|(name, values, _)| (name.to_owned(), values))
        .collect();
    chart::render(value_sets(), Value::Object(rejected), json!({}))
}

fn render_of(set: &str) -> &'static Render {
    &answer().renders[set]
}

#[test]
fn monitoring_sets_lint_clean_and_bad_values_are_refused() {
    for (set, lint) in &answer().lint {
        assert!(lint.errors.is_empty(), "{set}: {:?}", lint.errors);
    }
    for (set, _, expected) in rejected_sets() {
        let message = answer().rejected[set]
            .as_deref()
            .unwrap_or_else(|| panic!("{set} was rendered"));
        assert!(message.contains(expected), "{set}: {message}");
    }
}

#[test]
fn monitoring_is_off_by_default() {
    let render = render_of("default");
    assert!(render.all("PodMonitor").is_empty());
    assert!(render.all("PrometheusRule").is_empty());
    assert!(
        injector_env(render)
            .iter()
            .all(|env| env["name"] != "KEYHOLE_AGENT_METRICS_PORT"),
        "{:?}",
        injector_env(render)
    );
}

#[test]
fn the_other_manifests_pass_kubernetes_validate_strict() {
    let validator = require(Tool::KubernetesValidate).unwrap_or_else(|err| panic!("{err:#}"));
    let stream: String = render_of("monitoring")
        .documents
        .iter()
        .map(|doc| &doc.object)
        .filter(|object| object["apiVersion"] != "monitoring.coreos.com/v1")
        .map(|object| format!("---\n{object}\n"))
        .collect();
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    file.write_all(stream.as_bytes())
        .expect("manifests written");
    for version in ["1.33.0", "1.37.0"] {
        let output = Command::new(&validator)
            .args(["--strict", "--quiet", "-k", version])
            .arg(file.path())
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            output.status.success(),
            "{version}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The agent container keyhole-injector injects into a one-container pod, run
/// with `env`.
fn injected_agent(env: &[(String, String)]) -> anyhow::Result<Value> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps", "annotations": {
            "vault.hashicorp.com/agent-inject": "true",
            "vault.hashicorp.com/role": "app",
            "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
        }},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    });
    let bin = workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")?;
    let stdout = stdout_of(
        Command::new(&bin)
            .args([
                "mutate",
                "-f",
                "-",
                "--vault-addr=https://vault.vault.svc:8200",
            ])
            .envs(env.iter().map(|(k, v)| (k, v))),
        &pod.to_string(),
    )?;
    let mutated: Value = serde_saphyr::from_str(std::str::from_utf8(&stdout)?)?;
    let agent = mutated["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "vault-agent")
        .context("no vault-agent init container")?;
    Ok(agent.clone())
}

#[test]
fn agent_metrics_port_reaches_the_injected_agents_container_port() {
    let env: Vec<(String, String)> = injector_env(render_of("monitoring"))
        .iter()
        .filter(|env| env["name"] == "KEYHOLE_AGENT_METRICS_PORT")
        .map(|env| {
            (
                env["name"].as_str().expect("name").to_owned(),
                env["value"].as_str().expect("a string value").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        env,
        [("KEYHOLE_AGENT_METRICS_PORT".to_owned(), "9102".to_owned())]
    );
    let agent = injected_agent(&env).unwrap_or_else(|err| panic!("{err:#}"));
    assert_eq!(
        agent["ports"],
        json!([{"name": METRICS_PORT_NAME, "containerPort": 9102, "protocol": "TCP"}])
    );
}

#[test]
fn pod_monitor_scrapes_the_agents_metrics_port_in_the_chosen_namespaces() {
    let monitor = render_of("monitoring").one("PodMonitor", None);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["namespace"], NAMESPACE);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["selector"], json!({}));
    assert_eq!(monitor["spec"]["namespaceSelector"], json!({"any": true}));
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"],
        json!([{
            "port": METRICS_PORT_NAME,
            "path": "/agent/v1/metrics",
            "scheme": "http",
            "interval": "30s",
            "scrapeTimeout": "10s",
        }])
    );

    let monitor = render_of("pod-monitor-namespaces").one("PodMonitor", None);
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({"matchNames": ["orders", "billing"]})
    );
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["interval"], "1m");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["scrapeTimeout"],
        "20s"
    );
    assert!(
        render_of("pod-monitor-namespaces")
            .all("PrometheusRule")
            .is_empty()
    );
}

/// Every rule of the PrometheusRule of `set`.
fn rules(set: &str) -> Vec<&'static Value> {
    let rule = render_of(set).one("PrometheusRule", None);
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules"))
        .collect()
}

#[test]
fn prometheus_rule_alerts_on_the_injector_and_the_agents() {
    let rule = render_of("monitoring").one("PrometheusRule", None);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], NAMESPACE);
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let groups: Vec<&str> = rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["name"].as_str().expect("group name"))
        .collect();
    assert_eq!(groups, ["keyhole-injector", "keyhole-agent"]);

    let alerts: BTreeMap<&str, &Value> = rules("monitoring")
        .into_iter()
        .map(|r| (r["alert"].as_str().expect("alert name"), r))
        .collect();
    assert_eq!(
        alerts.keys().copied().collect::<Vec<_>>(),
        [
            "KeyholeAgentRenderFailing",
            "KeyholeAgentRenewalFailing",
            "KeyholeAgentTokenExpiring",
            "KeyholeInjectorDenials",
            "KeyholeInjectorDown",
        ]
    );
    for (name, alert) in &alerts {
        let fields: BTreeSet<&str> = alert
            .as_object()
            .expect("rule")
            .keys()
            .map(String::as_str)
            .collect();
        assert!(
            fields.is_subset(&BTreeSet::from([
                "alert",
                "expr",
                "for",
                "labels",
                "annotations"
            ])),
            "{name}: {fields:?}"
        );
        assert!(
            alert["expr"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}"
        );
        assert!(
            ["critical", "warning"].contains(&alert["labels"]["severity"].as_str().unwrap_or("")),
            "{name}"
        );
        for field in ["summary", "description"] {
            assert!(alert["annotations"][field].is_string(), "{name}: {field}");
        }
    }
    assert_eq!(
        alerts["KeyholeInjectorDown"]["expr"],
        format!("absent(up{{job=\"{FULLNAME}\", namespace=\"{NAMESPACE}\"}} == 1)")
    );
    let token_alert = |seconds: u32| {
        format!(
            "min by (namespace, pod) (keyhole_agent_token_remaining_seconds) < {seconds} and on \
             (namespace, pod) (sum by (namespace, pod) \
             (increase(keyhole_agent_renewal_failures_total{{lease=\"token\"}}[15m])) + sum by \
             (namespace, pod) (increase(keyhole_agent_logins_total{{outcome=\"failure\"}}[15m])) \
             > 0)"
        )
    };
    assert_eq!(
        alerts["KeyholeAgentTokenExpiring"]["expr"],
        token_alert(300)
    );
    let expiring = rules("token-expiry")
        .into_iter()
        .find(|r| r["alert"] == "KeyholeAgentTokenExpiring")
        .expect("token alert");
    assert_eq!(expiring["expr"], token_alert(60));
}

/// The metric names a PromQL expression queries: its identifiers, without
/// label matchers, ranges, strings, functions, grouping labels and keywords.
fn queried_metrics(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let mut names = Vec::new();
    let mut chars = expr.char_indices().peekable();
    let mut skip_list = false;
    while let Some((start, c)) = chars.next() {
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                for (_, c) in chars.by_ref() {
                    if c == close {
                        break;
                    }
                }
            }
            '(' if skip_list => {
                skip_list = false;
                for (_, c) in chars.by_ref() {
                    if c == ')' {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if !(c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                let word = &expr[start..end];
                // A function or an aggregation, whose grouping may come first:
                // `sum by (pod) (...)`.
                let rest = expr[end..].trim_start();
                let is_call = rest.starts_with('(')
                    || ["by", "without"].iter().any(|grouping| {
                        rest.strip_prefix(grouping)
                            .is_some_and(|r| r.trim_start().starts_with('('))
                    });
                if GROUPING.contains(&word) {
                    skip_list = true;
                } else if !is_call && !KEYWORDS.contains(&word) {
                    names.push(word.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

#[test]
fn queried_metrics_are_the_identifiers_that_name_series() {
    assert_eq!(
        queried_metrics(
            "sum by (namespace, pod) (increase(a_total{kind=~\"x|y\", b=\"c\"}[15m])) > 0 \
             and on (pod) b_seconds < 300 or absent(up{job=\"j\"} == 1)"
        ),
        ["a_total", "b_seconds", "up"]
    );
}

#[tokio::test]
async fn alerts_query_only_metrics_the_binaries_export() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let injector = families(&scrape_injector().await?)?;
    let agent = families(&scrape_agent(&bao).await?)?;
    let mut exported = injector;
    exported.extend(agent);
    for set in ["monitoring", "token-expiry"] {
        for rule in rules(set) {
            let expr = rule["expr"].as_str().expect("expr");
            let queried = queried_metrics(expr);
            assert!(!queried.is_empty(), "{expr}");
            for name in queried {
                assert!(
                    is_exported(&exported, &name) || PROMETHEUS_SERIES.contains(&name.as_str()),
                    "{}: {name} is exported by neither binary (they export {:?})",
                    rule["alert"],
                    exported.keys().collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(())
}
