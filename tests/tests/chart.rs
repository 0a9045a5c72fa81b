//! The Helm chart `charts/keyhole`, linted and rendered by real Helm (the
//! helm-python-sdk package, offline) for the default values and one value set per
//! feature, then checked as a cluster and a reviewer would see it: every manifest
//! through `kubernetes-validate --strict` for Kubernetes 1.33 and 1.37, what the
//! webhook selects (its CEL matchConditions evaluated by cel-python on sample pods,
//! tests/chart/match_conditions.py), the RBAC scope, byte-identical re-renders, the
//! values schema and the examples values.yaml shows, and the rendered arguments
//! against keyhole-injector's own parser.
//!
//! One Python process lints and renders every set (tests/chart/render.py); the
//! tests share its answer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyhole_tests::chart::{self, Answer, FULLNAME, NAMESPACE, Render, chart_dir, run_script};
use keyhole_tests::{Tool, require};
use serde_json::{Value, json};

/// API groups of custom resources, which kubernetes-validate has no schema for.
const CRD_GROUPS: [&str; 2] = ["cert-manager.io/", "monitoring.coreos.com/"];
/// The path-policy file the injector reads, as the chart mounts it.
const PATH_POLICY_FILE: &str = "/etc/keyhole/policy/path-policy.yaml";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A CA certificate in PEM, as a user would paste into `tls.secret.caBundle`.
fn ca_pem() -> String {
    let path = repo_root().join("tests/data/kube-apiserver.crt");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The value sets: the defaults and one per feature. Each is linted, rendered twice
/// and validated.
fn value_sets() -> Value {
    json!({
        "default": {},
        "cert-manager": {"tls": {"mode": "certManager"}},
        "cert-manager-cluster-issuer": {"tls": {
            "mode": "certManager",
            "certManager": {"issuerRef": {"name": "company-ca", "kind": "ClusterIssuer"}},
        }},
        "secret": {"tls": {"mode": "secret", "secret": {"name": "injector-tls", "caBundle": ca_pem()}}},
        "classic-sidecar": {"agent": {"nativeSidecar": false}},
        "metrics": {"metrics": {
            "enabled": true,
            "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
        }},
        "policy": {"policy": {
            "strict": true,
            "allowedVaultAddrs": ["https://vault.vault.svc:8200", "https://vault.example.com"],
            "allowTlsSkipVerify": true,
            "namespacePathPrefixes": {
                "orders": ["secret/data/orders/", "database/creds/orders"],
                "billing": ["secret/data/billing/"],
            },
        }},
        "refusing-tls-skip-verify": {"policy": {"allowTlsSkipVerify": false}},
        "any-vault-address": {"policy": {"allowedVaultAddrs": ["*"]}},
        "customized": {
            "vault": {
                "address": "https://vault.vault.svc:8200",
                "authPath": "auth/k8s-prod",
                "authType": "jwt",
                "tokenAudience": "vault",
            },
            "agent": {
                "image": {"repository": "registry.example.com/keyhole-agent", "tag": "0.1.0-rc1"},
                "logLevel": "debug",
                "logFormat": "json",
                "resources": {
                    "requests": {"cpu": "5m", "memory": "12Mi", "ephemeral-storage": "1Mi"},
                    "limits": {"cpu": "200m", "memory": "48Mi", "ephemeral-storage": "8Mi"},
                },
            },
            "injector": {
                "replicas": 3,
                "image": {"repository": "registry.example.com/keyhole-injector", "digest":
                    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                "logLevel": "keyhole_injector=debug,info",
                "logFormat": "json",
                "extraArgs": ["--revoke-on-shutdown=true", "--secrets-volume-size-limit=16Mi"],
                "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
                    ]}],
                }}},
                "podAntiAffinity": "hard",
                "priorityClassName": "platform-critical",
            },
            "webhook": {
                "failurePolicy": "Ignore",
                "timeoutSeconds": 5,
                "annotatedPodsOnly": false,
                "namespaceSelector": {"matchExpressions": [
                    {"key": "keyhole.dev/inject", "operator": "In", "values": ["enabled"]},
                ]},
                "objectSelector": {"matchLabels": {"secrets": "vault"}},
            },
            "namespaces": {"allow": ["orders", "billing", "legacy"], "deny": ["legacy"]},
        },
    })
}

/// Values the schema must reject, with the key or value each message must name.
fn rejected_sets() -> Value {
    json!({
        "injecter": {"injecter": {"replicas": 3}},
        "adress": {"vault": {"adress": "https://vault:8200"}},
        "memroy": {"injector": {"resources": {"limits": {"memroy": "64Mi"}}}},
        "certmanager": {"tls": {"mode": "certmanager"}},
        "namespacePathPrefix": {"policy": {"namespacePathPrefix": {"orders": ["secret/"]}}},
        "blank-audience": {"vault": {"tokenAudience": " "}},
        "secret-without-ca": {"tls": {"mode": "secret", "secret": {"name": "injector-tls"}}},
        "service-monitor-without-metrics": {"metrics": {"serviceMonitor": {"enabled": true}}},
    })
}

/// A value shown on an `# Example:` line of values.yaml, for the key below it.
struct Example {
    /// `values.yaml:<line>`.
    at: String,
    /// The keys from the top of values.yaml down to the one the example is for.
    path: Vec<String>,
    /// The example, parsed as YAML.
    value: Value,
    /// The values that set the key to the example and leave the rest as they are.
    values: Value,
}

/// The `# Example:` lines of values.yaml, and what keeps a test from reading any
/// example: one that is not YAML, not right above a key, or inside a list, and an
/// example written in prose (`e.g.`) instead.
fn value_examples() -> (Vec<Example>, Vec<String>) {
    let path = chart_dir().join("values.yaml");
    let text = std::fs::read_to_string(&path).expect("values.yaml");
    let mut examples = Vec::new();
    let mut problems = Vec::new();
    // Indentation and key of each enclosing mapping entry; no key for a list item.
    let mut enclosing: Vec<(usize, Option<String>)> = Vec::new();
    // Examples waiting for the key below them: line number and value.
    let mut pending: Vec<(usize, Value)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(example) = comment.strip_prefix("Example:") {
                match serde_saphyr::from_str::<Value>(example.trim()) {
                    Ok(value) => pending.push((number, value)),
                    Err(err) => problems.push(format!("values.yaml:{number}: not YAML: {err}")),
                }
            } else if comment.contains("e.g.") {
                problems.push(format!(
                    "values.yaml:{number}: write the example on an `# Example: <value>` line"
                ));
            }
            continue;
        }
        if trimmed.is_empty() {
            problems.extend(pending.drain(..).map(|(number, _)| {
                format!("values.yaml:{number}: the example is not right above a key")
            }));
            continue;
        }
        while enclosing.last().is_some_and(|(open, _)| *open >= indent) {
            enclosing.pop();
        }
        let (entry, key) = match trimmed.strip_prefix("- ") {
            Some(_) => (indent, None),
            None => (
                indent,
                trimmed.split_once(':').map(|(key, _)| key.to_owned()),
            ),
        };
        enclosing.push((entry, key));
        for (number, value) in pending.drain(..) {
            let keys: Option<Vec<String>> = enclosing.iter().map(|(_, key)| key.clone()).collect();
            let Some(keys) = keys else {
                problems.push(format!(
                    "values.yaml:{number}: the example is inside a list"
                ));
                continue;
            };
            let values = keys
                .iter()
                .rev()
                .fold(value.clone(), |inner, key| json!({ key: inner }));
            examples.push(Example {
                at: format!("values.yaml:{number}"),
                path: keys,
                value,
                values,
            });
        }
    }
    (examples, problems)
}

/// What the chart tests ask of a rendered value set beyond [`Render`]'s own accessors.
trait InjectorRender {
    fn webhook(&self) -> &Value;
    fn args(&self) -> Vec<String>;
    /// The value of `--flag=value` in the rendered args.
    fn flag(&self, flag: &str) -> Option<String>;
    fn pod_labels(&self) -> BTreeMap<String, String>;
}

impl InjectorRender for Render {
    fn webhook(&self) -> &Value {
        let config = self.one("MutatingWebhookConfiguration", Some(FULLNAME));
        let webhooks = config["webhooks"].as_array().expect("webhooks");
        assert_eq!(webhooks.len(), 1, "{config:#}");
        &webhooks[0]
    }

    fn args(&self) -> Vec<String> {
        strings(&self.container()["args"])
    }

    fn flag(&self, flag: &str) -> Option<String> {
        let prefix = format!("--{flag}=");
        self.args()
            .into_iter()
            .find_map(|arg| arg.strip_prefix(&prefix).map(str::to_owned))
    }

    fn pod_labels(&self) -> BTreeMap<String, String> {
        let labels =
            &self.one("Deployment", Some(FULLNAME))["spec"]["template"]["metadata"]["labels"];
        string_map(labels)
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|item| {
            item.as_str()
                .unwrap_or_else(|| panic!("not a string: {item}"))
                .to_owned()
        })
        .collect()
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a map: {value}"))
        .iter()
        .map(|(key, value)| {
            (
                key.clone(),
                value.as_str().expect("string label").to_owned(),
            )
        })
        .collect()
}

/// Runs tests/chart/render.py once for every test of this file.
fn answer() -> &'static Answer {
    static ANSWER: OnceLock<Answer> = OnceLock::new();
    ANSWER.get_or_init(|| render().unwrap_or_else(|err| panic!("{err:#}")))
}

fn render() -> anyhow::Result<Answer> {
    let examples = value_examples()
        .0
        .into_iter()
        .map(|example| (example.at, example.values))
        .collect::<serde_json::Map<_, _>>();
    chart::render(value_sets(), rejected_sets(), Value::Object(examples))
}

fn renders() -> impl Iterator<Item = (&'static String, &'static Render)> {
    answer().renders.iter()
}

fn render_of(set: &str) -> &'static Render {
    answer()
        .renders
        .get(set)
        .unwrap_or_else(|| panic!("no render of {set}"))
}

/// Whether a Kubernetes label selector selects an object with `labels`.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten();
    let labels_match = match_labels
        .into_iter()
        .all(|(key, value)| labels.get(key).map(String::as_str) == value.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten();
    let expressions_match = expressions.into_iter().all(|expression| {
        let key = expression["key"].as_str().expect("key");
        let value = labels.get(key);
        let values = expression.get("values").map(strings).unwrap_or_default();
        match expression["operator"].as_str().expect("operator") {
            "In" => value.is_some_and(|value| values.contains(value)),
            "NotIn" => value.is_none_or(|value| !values.contains(value)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown operator {other}"),
        }
    });
    labels_match && expressions_match
}

fn namespace_labels(name: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), name.to_owned())]);
    for (key, value) in extra {
        labels.insert((*key).to_owned(), (*value).to_owned());
    }
    labels
}

#[test]
fn lints_without_warnings_or_errors() {
    for (set, lint) in &answer().lint {
        assert!(lint.errors.is_empty(), "{set}: {:?}", lint.errors);
        let problems: Vec<_> = lint
            .messages
            .iter()
            .filter(|message| message.severity >= 2)
            .map(|message| format!("{}: {}", message.path, message.error))
            .collect();
        assert!(problems.is_empty(), "{set}: {problems:#?}");
    }
    assert_eq!(
        answer().lint.len(),
        value_sets().as_object().map_or(0, |sets| sets.len())
    );
    assert!(answer().helm.starts_with("v4."), "Helm {}", answer().helm);
}

#[test]
fn chart_is_v2_and_its_app_version_is_the_workspace_version() {
    let chart = &answer().chart;
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "keyhole");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    let default = render_of("default");
    assert_eq!(
        default.container()["image"],
        format!(
            "ghcr.io/keyhole-dev/keyhole-injector:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(
        default.flag("agent-image").as_deref(),
        Some(keyhole_injector::settings::DEFAULT_AGENT_IMAGE)
    );
}

#[test]
fn renders_the_same_bytes_twice() {
    for (set, render) in renders() {
        assert!(!render.first.is_empty(), "{set}");
        assert!(render.first == render.second, "{set}: two renders differ");
    }
}

/// Functions whose output changes from one render to the next, or depends on the
/// cluster (`lookup`): Argo CD would show a permanent diff.
#[test]
fn templates_call_no_random_time_or_cluster_functions() {
    const FORBIDDEN: [&str; 14] = [
        "genCA",
        "genCAWithKey",
        "genPrivateKey",
        "genSelfSignedCert",
        "genSignedCert",
        "randAlpha",
        "randAlphaNum",
        "randAscii",
        "randBytes",
        "randNumeric",
        "randInt",
        "uuidv4",
        "now",
        "lookup",
    ];
    let dir = chart_dir().join("templates");
    for entry in std::fs::read_dir(&dir).expect("templates dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("template");
        for action in template_actions(&text) {
            let words: BTreeSet<&str> = action
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .collect();
            for function in FORBIDDEN {
                assert!(
                    !words.contains(function),
                    "{} calls {function}: {action}",
                    path.display()
                );
            }
        }
    }
}

/// The `{{ ... }}` actions of a template, without their `/* comments */`.
fn template_actions(text: &str) -> Vec<String> {
    let mut actions = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let action = &rest[start + 2..start + len];
        if !action.trim_start_matches(['-', ' ']).starts_with("/*") {
            actions.push(action.to_owned());
        }
        rest = &rest[start + len + 2..];
    }
    actions
}

#[test]
fn manifests_pass_kubernetes_validate_strict_for_1_33_and_1_37() {
    let validator = require(Tool::KubernetesValidate).unwrap_or_else(|err| panic!("{err:#}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    let mut kinds = BTreeSet::new();
    for (set, render) in renders() {
        for doc in &render.documents {
            let api_version = doc.object["apiVersion"].as_str().expect("apiVersion");
            if CRD_GROUPS
                .iter()
                .any(|group| api_version.starts_with(group))
            {
                continue;
            }
            kinds.insert(doc.object["kind"].as_str().expect("kind").to_owned());
            // Sets share most objects; each distinct one is validated once.
            if !seen.insert(doc.object.to_string()) {
                continue;
            }
            let name = format!(
                "{set}--{}-{}.yaml",
                doc.object["kind"].as_str().expect("kind"),
                doc.object["metadata"]["name"].as_str().expect("name")
            );
            let path = dir.path().join(name);
            std::fs::write(&path, doc.object.to_string()).expect("write manifest");
            files.push(path);
        }
    }
    let expected_kinds = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "MutatingWebhookConfiguration",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ];
    assert_eq!(
        kinds,
        expected_kinds.map(str::to_owned).into(),
        "kinds rendered"
    );
    let output = Command::new(validator)
        .args(["--strict", "-k", "1.33.0", "-k", "1.37.0"])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failures: Vec<_> = stdout
        .lines()
        .filter(|line| !line.starts_with("INFO "))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    for version in ["1.33", "1.37"] {
        let passed = stdout
            .lines()
            .filter(|line| line.ends_with(&format!("against version {version}")))
            .count();
        assert_eq!(passed, files.len(), "passed for {version}:\n{stdout}");
    }
}

#[test]
fn only_cert_manager_and_service_monitor_objects_are_custom_resources() {
    for (set, render) in renders() {
        for doc in &render.documents {
            let api_version = doc.object["apiVersion"].as_str().expect("apiVersion");
            let kind = doc.object["kind"].as_str().expect("kind");
            if CRD_GROUPS
                .iter()
                .any(|group| api_version.starts_with(group))
            {
                assert!(
                    matches!(
                        (api_version, kind),
                        ("cert-manager.io/v1", "Issuer" | "Certificate")
                            | ("monitoring.coreos.com/v1", "ServiceMonitor")
                    ),
                    "{set}: {api_version} {kind} in {}",
                    doc.template
                );
            }
        }
    }
}

#[test]
fn webhook_reviews_pod_creation_only() {
    for (set, render) in renders() {
        let webhook = render.webhook();
        assert_eq!(
            webhook["rules"],
            json!([{
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }]),
            "{set}"
        );
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]), "{set}");
        assert_eq!(webhook["sideEffects"], "None", "{set}");
        assert_eq!(webhook["reinvocationPolicy"], "IfNeeded", "{set}");
        let (policy, timeout) = if set == "customized" {
            ("Ignore", 5)
        } else {
            ("Fail", 10)
        };
        assert_eq!(webhook["failurePolicy"], policy, "{set}");
        assert_eq!(webhook["timeoutSeconds"], timeout, "{set}");
    }
}

/// Pods as the API server hands them to the webhook's matchConditions, and whether
/// each one must reach the injector.
fn match_condition_pods() -> Vec<(&'static str, Value, bool)> {
    let annotated =
        |annotations: Value| json!({"metadata": {"name": "app", "annotations": annotations}});
    vec![
        (
            "agent-inject true",
            annotated(json!({"vault.hashicorp.com/agent-inject": "true"})),
            true,
        ),
        (
            "agent-inject false",
            annotated(json!({"vault.hashicorp.com/agent-inject": "false"})),
            true,
        ),
        (
            "agent-inject typo",
            annotated(json!({"vault.hashicorp.com/agent-inject": "ture"})),
            true,
        ),
        (
            "openbao prefix",
            annotated(json!({"openbao.org/agent-inject": "true", "openbao.org/role": "app"})),
            true,
        ),
        (
            "other vault annotations only",
            annotated(json!({
                "vault.hashicorp.com/role": "app",
                "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
                "keyhole.dev/native-sidecar": "false",
            })),
            false,
        ),
        (
            "other annotations only",
            annotated(json!({"prometheus.io/scrape": "true"})),
            false,
        ),
        ("empty annotations", annotated(json!({})), false),
        (
            "no annotations",
            json!({"metadata": {"name": "app", "labels": {"app": "orders"}}}),
            false,
        ),
    ]
}

/// Each condition's result for each pod, from tests/chart/match_conditions.py.
fn evaluate_match_conditions(
    conditions: &Value,
    pods: &[(&str, Value, bool)],
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, Value>>> {
    let objects: serde_json::Map<String, Value> = pods
        .iter()
        .map(|(label, pod, _)| ((*label).to_owned(), pod.clone()))
        .collect();
    let request = json!({"conditions": conditions, "objects": objects});
    run_script(Tool::CelPython, "match_conditions.py", &request)
}

/// With failurePolicy Fail, a pod the webhook selects is not created while no
/// injector answers; matchConditions keep every pod that does not ask for the
/// agent away from it. An evaluation error would reject the pod, so every
/// condition must evaluate to a bool on every pod.
#[test]
fn webhook_is_called_only_for_pods_with_an_agent_inject_annotation() {
    let conditions = &render_of("default").webhook()["matchConditions"];
    for (set, render) in renders() {
        let expected = if set == "customized" {
            // It sets webhook.annotatedPodsOnly: false.
            &Value::Null
        } else {
            conditions
        };
        assert_eq!(&render.webhook()["matchConditions"], expected, "{set}");
    }
    let pods = match_condition_pods();
    let results =
        evaluate_match_conditions(conditions, &pods).unwrap_or_else(|err| panic!("{err:#}"));
    let count = conditions.as_array().map_or(0, Vec::len);
    assert!(count > 0, "no matchConditions");
    for (label, _, reaches_injector) in &pods {
        let results = &results[*label];
        assert_eq!(results.len(), count, "{label}: {results:?}");
        for (name, result) in results {
            assert!(result.is_boolean(), "{label}: {name} gives {result}");
        }
        // The API server calls the webhook only when every condition is true.
        let called = results.values().all(|result| result == true);
        assert_eq!(called, *reaches_injector, "{label}: {results:?}");
    }
}

#[test]
fn webhook_calls_the_injector_service_on_its_https_port() {
    for (set, render) in renders() {
        let service = render.one("Service", Some(FULLNAME));
        assert_eq!(
            render.webhook()["clientConfig"]["service"],
            json!({"name": FULLNAME, "namespace": NAMESPACE, "path": "/mutate", "port": 443}),
            "{set}"
        );
        let https = service["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|port| port["port"] == 443)
            .expect("port 443");
        assert_eq!(https["targetPort"], "https", "{set}");
        let container_port = render.container()["ports"]
            .as_array()
            .expect("container ports")
            .iter()
            .find(|port| port["name"] == "https")
            .expect("https container port");
        assert_eq!(
            render.flag("listen"),
            Some(format!("0.0.0.0:{}", container_port["containerPort"])),
            "{set}"
        );
        // A Service's selector is a plain map, a label selector's matchLabels.
        let selector = json!({"matchLabels": service["spec"]["selector"]});
        assert!(selects(&selector, &render.pod_labels()), "{set}");
    }
}

#[test]
fn webhook_never_selects_the_control_plane_or_the_injector_itself() {
    for (set, render) in renders() {
        let webhook = render.webhook();
        let namespaces = &webhook["namespaceSelector"];
        for excluded in ["kube-system", "kube-public", NAMESPACE] {
            assert!(
                !selects(
                    namespaces,
                    &namespace_labels(excluded, &[("keyhole.dev/inject", "enabled")])
                ),
                "{set} selects namespace {excluded}"
            );
        }
        assert!(
            !selects(&webhook["objectSelector"], &render.pod_labels()),
            "{set} selects the injector's own pods {:?}",
            render.pod_labels()
        );
    }
    let default = render_of("default").webhook();
    assert!(selects(
        &default["namespaceSelector"],
        &namespace_labels("orders", &[])
    ));
    let app = BTreeMap::from([("app".to_owned(), "orders".to_owned())]);
    assert!(selects(&default["objectSelector"], &app));
}

#[test]
fn webhook_selectors_add_the_configured_namespaces_and_objects() {
    let render = render_of("customized");
    let webhook = render.webhook();
    let namespaces = &webhook["namespaceSelector"];
    let enabled = [("keyhole.dev/inject", "enabled")];
    assert!(selects(namespaces, &namespace_labels("orders", &enabled)));
    assert!(selects(namespaces, &namespace_labels("billing", &enabled)));
    assert!(
        !selects(namespaces, &namespace_labels("orders", &[])),
        "without the label"
    );
    assert!(
        !selects(namespaces, &namespace_labels("shipping", &enabled)),
        "not allowed"
    );
    assert!(
        !selects(namespaces, &namespace_labels("legacy", &enabled)),
        "denied"
    );
    let objects = &webhook["objectSelector"];
    let labelled = BTreeMap::from([("secrets".to_owned(), "vault".to_owned())]);
    assert!(selects(objects, &labelled));
    assert!(!selects(objects, &BTreeMap::new()));
    assert_eq!(
        render.flag("allowed-namespaces").as_deref(),
        Some("orders,billing,legacy")
    );
    assert_eq!(render.flag("denied-namespaces").as_deref(), Some("legacy"));
}

#[test]
fn rbac_is_limited_to_the_injectors_own_secret_and_webhook_configuration() {
    for (set, render) in renders() {
        for kind in ["ClusterRole", "Role"] {
            for role in render.all(kind) {
                for rule in role["rules"].as_array().expect("rules") {
                    for field in ["verbs", "resources", "apiGroups"] {
                        assert!(
                            !strings(&rule[field]).iter().any(|item| item.contains('*')),
                            "{set}: wildcard {field} in {kind}: {rule}"
                        );
                    }
                    if kind == "ClusterRole" {
                        assert!(
                            rule.get("resourceNames")
                                .is_some_and(|names| !strings(names).is_empty()),
                            "{set}: cluster-wide rule without resourceNames: {rule}"
                        );
                    }
                }
            }
        }
        let auto = render.args().iter().any(|arg| arg == "--tls-auto");
        assert_eq!(
            auto,
            set != "secret" && !set.starts_with("cert-manager"),
            "{set}"
        );
        assert_eq!(
            render.pod_spec()["automountServiceAccountToken"],
            auto,
            "{set}"
        );
        if !auto {
            for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
                assert!(render.all(kind).is_empty(), "{set} needs no {kind}");
            }
            continue;
        }
        let config = render
            .flag("tls-auto-webhook-config")
            .expect("--tls-auto-webhook-config");
        let secret = render.flag("tls-auto-secret").expect("--tls-auto-secret");
        assert_eq!(
            render.flag("namespace").as_deref(),
            Some(NAMESPACE),
            "{set}"
        );
        assert_eq!(
            render.one("ClusterRole", None)["rules"],
            json!([{
                "apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["mutatingwebhookconfigurations"],
                "resourceNames": [config],
                "verbs": ["get", "patch"],
            }]),
            "{set}"
        );
        render.one("MutatingWebhookConfiguration", Some(&config));
        let role = render.one("Role", None);
        assert_eq!(role["metadata"]["namespace"], NAMESPACE);
        assert_eq!(
            role["rules"],
            json!([
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret], "verbs": ["get", "update"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            ]),
            "{set}"
        );
        let account = render.pod_spec()["serviceAccountName"]
            .as_str()
            .expect("serviceAccountName");
        render.one("ServiceAccount", Some(account));
        for (binding, role_kind) in [
            ("ClusterRoleBinding", "ClusterRole"),
            ("RoleBinding", "Role"),
        ] {
            let binding = render.one(binding, None);
            assert_eq!(binding["roleRef"]["kind"], role_kind);
            assert_eq!(
                binding["roleRef"]["name"],
                render.one(role_kind, None)["metadata"]["name"]
            );
            assert_eq!(
                binding["subjects"],
                json!([{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]),
                "{set}"
            );
        }
    }
}

#[test]
fn auto_tls_names_the_service_the_api_server_calls() {
    let render = render_of("default");
    let hosts = render.flag("tls-auto-hosts").expect("--tls-auto-hosts");
    assert!(
        hosts
            .split(',')
            .any(|host| host == format!("{FULLNAME}.{NAMESPACE}.svc")),
        "{hosts}"
    );
    assert!(render.webhook()["clientConfig"].get("caBundle").is_none());
    assert!(render.pod_spec().get("volumes").is_none());
}

#[test]
fn secret_mode_mounts_the_secret_and_sets_the_ca_bundle() {
    let render = render_of("secret");
    let ca = render.webhook()["clientConfig"]["caBundle"]
        .as_str()
        .expect("caBundle");
    assert_eq!(STANDARD.decode(ca).expect("base64"), ca_pem().into_bytes());
    assert_certificate_files(render, "injector-tls");
}

fn assert_certificate_files(render: &Render, secret: &str) {
    let volumes = render.pod_spec()["volumes"].as_array().expect("volumes");
    let tls = volumes
        .iter()
        .find(|volume| volume["name"] == "tls")
        .expect("tls volume");
    assert_eq!(tls["secret"]["secretName"], secret);
    let mounts = render.container()["volumeMounts"]
        .as_array()
        .expect("volumeMounts");
    let mount = mounts
        .iter()
        .find(|mount| mount["name"] == "tls")
        .expect("tls mount");
    assert_eq!(mount["readOnly"], true);
    let dir = mount["mountPath"].as_str().expect("mountPath");
    assert_eq!(render.flag("tls-cert"), Some(format!("{dir}/tls.crt")));
    assert_eq!(render.flag("tls-key"), Some(format!("{dir}/tls.key")));
    assert!(
        !render
            .args()
            .iter()
            .any(|arg| arg.starts_with("--tls-auto"))
    );
}

#[test]
fn cert_manager_mode_issues_the_certificate_from_a_private_ca_and_injects_it() {
    let render = render_of("cert-manager");
    let serving = render.one("Certificate", Some(&format!("{FULLNAME}-tls")));
    let secret = serving["spec"]["secretName"].as_str().expect("secretName");
    assert_certificate_files(render, secret);
    let dns_names = strings(&serving["spec"]["dnsNames"]);
    assert!(
        dns_names.contains(&format!("{FULLNAME}.{NAMESPACE}.svc")),
        "{dns_names:?}"
    );
    let config = render.one("MutatingWebhookConfiguration", Some(FULLNAME));
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/{FULLNAME}-tls")
    );
    assert!(render.webhook()["clientConfig"].get("caBundle").is_none());
    // self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate
    let issuer_of = |certificate: &Value| {
        let issuer_ref = &certificate["spec"]["issuerRef"];
        assert_eq!(issuer_ref["kind"], "Issuer");
        assert_eq!(issuer_ref["group"], "cert-manager.io");
        render.one("Issuer", issuer_ref["name"].as_str())
    };
    let ca_issuer = issuer_of(serving);
    let ca_secret = &ca_issuer["spec"]["ca"]["secretName"];
    let ca = render
        .all("Certificate")
        .into_iter()
        .find(|certificate| &certificate["spec"]["secretName"] == ca_secret)
        .expect("the CA Certificate");
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(issuer_of(ca)["spec"], json!({"selfSigned": {}}));
    for object in render
        .all("Certificate")
        .into_iter()
        .chain(render.all("Issuer"))
    {
        assert_eq!(object["apiVersion"], "cert-manager.io/v1");
        assert_eq!(object["metadata"]["namespace"], NAMESPACE);
    }
}

#[test]
fn cert_manager_mode_uses_a_given_issuer() {
    let render = render_of("cert-manager-cluster-issuer");
    assert!(render.all("Issuer").is_empty());
    let certificate = render.one("Certificate", None);
    assert_eq!(
        certificate["spec"]["issuerRef"],
        json!({"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "company-ca"})
    );
}

#[test]
fn metrics_add_a_service_port_and_a_service_monitor() {
    let render = render_of("metrics");
    let service = render.one("Service", Some(FULLNAME));
    let metrics = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|port| port["name"] == "metrics")
        .expect("metrics port");
    assert_eq!(metrics["targetPort"], "admin");
    let monitor = render.one("ServiceMonitor", Some(FULLNAME));
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["namespace"], NAMESPACE);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "30s", "scrapeTimeout": "10s"}])
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({"matchNames": [NAMESPACE]})
    );
    assert!(selects(
        &monitor["spec"]["selector"],
        &string_map(&service["metadata"]["labels"])
    ));
    let default = render_of("default").one("Service", Some(FULLNAME));
    assert_eq!(default["spec"]["ports"].as_array().map(Vec::len), Some(1));
    assert!(render_of("default").all("ServiceMonitor").is_empty());
}

#[test]
fn deployment_is_highly_available() {
    let render = render_of("default");
    let deployment = render.one("Deployment", Some(FULLNAME));
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let labels = render.pod_labels();
    let budget = render.one("PodDisruptionBudget", Some(FULLNAME));
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert!(selects(&budget["spec"]["selector"], &labels));
    let spec = render.pod_spec();
    let anti =
        &spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        anti["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert!(selects(&anti["podAffinityTerm"]["labelSelector"], &labels));
    let spread = &spec["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "topology.kubernetes.io/zone");
    assert!(selects(&spread["labelSelector"], &labels));

    let customized = render_of("customized");
    let spec = customized.pod_spec();
    let anti =
        &spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert!(
        spec["affinity"]["nodeAffinity"].is_object(),
        "the user's affinity is kept"
    );
    assert_eq!(spec["priorityClassName"], "platform-critical");
    assert_eq!(spec["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(spec["tolerations"][0]["key"], "dedicated");
    assert_eq!(customized.one("Deployment", None)["spec"]["replicas"], 3);
}

#[test]
fn injector_is_probed_on_its_admin_port_and_runs_locked_down() {
    for (set, render) in renders() {
        let container = render.container();
        let admin = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|port| port["name"] == "admin")
            .expect("admin port");
        assert_eq!(
            render.flag("admin-listen"),
            Some(format!("0.0.0.0:{}", admin["containerPort"])),
            "{set}"
        );
        for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
            assert_eq!(
                container[probe]["httpGet"],
                json!({"path": path, "port": "admin"}),
                "{set} {probe}"
            );
        }
        let security = &container["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{set}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{set}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{set}");
        assert_eq!(security["capabilities"], json!({"drop": ["ALL"]}), "{set}");
        assert_eq!(
            security["seccompProfile"],
            json!({"type": "RuntimeDefault"}),
            "{set}"
        );
        let pod = &render.pod_spec()["securityContext"];
        assert_eq!(pod["runAsNonRoot"], true, "{set}");
        assert_eq!(
            pod["seccompProfile"],
            json!({"type": "RuntimeDefault"}),
            "{set}"
        );
        let resources = &container["resources"];
        for path in ["/requests/cpu", "/requests/memory", "/limits/memory"] {
            assert!(resources.pointer(path).is_some(), "{set}: resources{path}");
        }
    }
}

#[test]
fn values_become_injector_flags() {
    let default = render_of("default");
    assert_eq!(default.flag("native-sidecar").as_deref(), Some("true"));
    assert_eq!(default.flag("vault-addr"), None);
    assert_eq!(
        default.flag("token-audience"),
        None,
        "the token keeps the API server's audiences, as vault-k8s's does"
    );
    assert_eq!(
        render_of("classic-sidecar")
            .flag("native-sidecar")
            .as_deref(),
        Some("false")
    );

    let customized = render_of("customized");
    let expected = [
        ("vault-addr", "https://vault.vault.svc:8200"),
        ("auth-path", "auth/k8s-prod"),
        ("auth-type", "jwt"),
        ("token-audience", "vault"),
        (
            "agent-image",
            "registry.example.com/keyhole-agent:0.1.0-rc1",
        ),
        ("agent-log-level", "debug"),
        ("agent-log-format", "json"),
        ("log-level", "keyhole_injector=debug,info"),
        ("log-format", "json"),
        ("agent-cpu-request", "5m"),
        ("agent-mem-request", "12Mi"),
        ("agent-ephemeral-request", "1Mi"),
        ("agent-cpu-limit", "200m"),
        ("agent-mem-limit", "48Mi"),
        ("agent-ephemeral-limit", "8Mi"),
        ("revoke-on-shutdown", "true"),
        ("secrets-volume-size-limit", "16Mi"),
    ];
    for (flag, value) in expected {
        assert_eq!(customized.flag(flag).as_deref(), Some(value), "--{flag}");
    }
    assert_eq!(
        customized.container()["image"],
        "registry.example.com/keyhole-injector@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(
        customized.container()["env"],
        json!([
            {"name": "TOKIO_WORKER_THREADS", "value": "2"},
            {"name": "RUST_BACKTRACE", "value": "1"},
        ])
    );
    assert_eq!(
        default.container()["env"],
        json!([{"name": "TOKIO_WORKER_THREADS", "value": "2"}]),
        "the measured resources hold for two worker threads"
    );
}

#[test]
fn policy_values_become_flags_and_a_mounted_path_policy() {
    let render = render_of("policy");
    assert_eq!(render.flag("policy").as_deref(), Some("strict"));
    assert_eq!(
        render.flag("allowed-vault-addrs").as_deref(),
        Some("https://vault.vault.svc:8200,https://vault.example.com")
    );
    assert_eq!(
        render.flag("allow-tls-skip-verify").as_deref(),
        Some("true")
    );
    assert_eq!(
        render.flag("path-policy-file").as_deref(),
        Some(PATH_POLICY_FILE)
    );

    let config_map = render.one("ConfigMap", Some(&format!("{FULLNAME}-policy")));
    let file = config_map["data"]["path-policy.yaml"]
        .as_str()
        .expect("path-policy.yaml");
    let policy: Value = serde_saphyr::from_str(file).expect("path-policy.yaml is YAML");
    assert_eq!(
        policy,
        json!({"namespaces": {
            "billing": ["secret/data/billing/"],
            "orders": ["secret/data/orders/", "database/creds/orders"],
        }})
    );
    let (dir, name) = PATH_POLICY_FILE.rsplit_once('/').expect("a path");
    assert_eq!(name, "path-policy.yaml");
    let mount = render.container()["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|mount| mount["mountPath"] == dir)
        .expect("the policy mount");
    assert_eq!(mount["readOnly"], true);
    let volume = render.pod_spec()["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|volume| volume["name"] == mount["name"])
        .expect("the policy volume");
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);

    assert_eq!(
        render_of("refusing-tls-skip-verify")
            .flag("allow-tls-skip-verify")
            .as_deref(),
        Some("false")
    );
    assert_eq!(
        render_of("any-vault-address")
            .flag("allowed-vault-addrs")
            .as_deref(),
        Some("*")
    );

    let default = render_of("default");
    assert_eq!(default.flag("policy").as_deref(), Some("permissive"));
    for flag in [
        "allowed-vault-addrs",
        "allow-tls-skip-verify",
        "path-policy-file",
    ] {
        assert!(
            !default
                .args()
                .iter()
                .any(|arg| arg.starts_with(&format!("--{flag}"))),
            "default renders --{flag}"
        );
    }
    assert!(default.all("ConfigMap").is_empty());
}

/// The built keyhole-injector next to this test executable.
fn injector_bin() -> anyhow::Result<PathBuf> {
    keyhole_tests::workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")
}

/// keyhole-injector with no `KEYHOLE_*` variables, so only the arguments count.
fn injector(args: &[String]) -> Output {
    let bin = injector_bin().unwrap_or_else(|err| panic!("{err:#}"));
    let mut command = Command::new(&bin);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEYHOLE_") {
            command.env_remove(name);
        }
    }
    command.args(args).output().expect("run keyhole-injector")
}

/// The `--flags` a subcommand's `--help` lists.
fn help_flags(subcommand: &str) -> BTreeSet<String> {
    let output = injector(&[subcommand.to_owned(), "--help".to_owned()]);
    assert!(output.status.success(), "{subcommand} --help: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// Every rendered `--flag` is one `serve` has, with a value its parser accepts;
/// the injection defaults among them pass the same validation `mutate` applies.
#[test]
fn rendered_args_are_accepted_by_keyhole_injector() {
    let serve_flags = help_flags("serve");
    let mutate_flags = help_flags("mutate");
    let empty = tempfile::NamedTempFile::new().expect("temp file");
    let policy_dir = tempfile::tempdir().expect("temp dir");
    for (set, render) in renders() {
        let mut args = render.args();
        // The injector reads the path policy while parsing its flags: give it the
        // rendered ConfigMap's file where the pod would have it mounted.
        for arg in &mut args {
            if arg.starts_with("--path-policy-file=") {
                let config_map = render.one("ConfigMap", Some(&format!("{FULLNAME}-policy")));
                let file = policy_dir.path().join(format!("{set}.yaml"));
                std::fs::write(
                    &file,
                    config_map["data"]["path-policy.yaml"]
                        .as_str()
                        .expect("path-policy.yaml"),
                )
                .expect("write the path policy");
                *arg = format!("--path-policy-file={}", file.display());
            }
        }
        assert_eq!(args.first().map(String::as_str), Some("serve"), "{set}");
        let flags: Vec<_> = args[1..]
            .iter()
            .map(|arg| arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag))
            .collect();
        for flag in &flags {
            assert!(serve_flags.contains(*flag), "{set}: `serve` has no {flag}");
        }
        // Parsing stops at --help only after every argument before it was parsed:
        // an unknown flag or a bad value (--native-sidecar=maybe) fails first.
        let mut with_help = args.clone();
        with_help.push("--help".to_owned());
        let output = injector(&with_help);
        assert!(
            output.status.success(),
            "{set}: keyhole-injector {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        let mut check = vec![
            "mutate".to_owned(),
            "--check".to_owned(),
            "-f".to_owned(),
            empty.path().display().to_string(),
        ];
        check.extend(
            args[1..]
                .iter()
                .zip(&flags)
                .filter(|(_, flag)| mutate_flags.contains(**flag))
                .map(|(arg, _)| arg.clone()),
        );
        let output = injector(&check);
        assert!(
            output.status.success(),
            "{set}: keyhole-injector {}: {}",
            check.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn values_that_cannot_work_are_rejected_with_a_message_naming_them() {
    let expected = [
        ("injecter", "additional properties 'injecter' not allowed"),
        (
            "adress",
            "at '/vault': additional properties 'adress' not allowed",
        ),
        (
            "memroy",
            "at '/injector/resources/limits': additional properties 'memroy' not allowed",
        ),
        (
            "certmanager",
            "at '/tls/mode': value must be one of 'auto', 'certManager', 'secret'",
        ),
        (
            "namespacePathPrefix",
            "at '/policy': additional properties 'namespacePathPrefix' not allowed",
        ),
        ("blank-audience", "at '/vault/tokenAudience'"),
        (
            "secret-without-ca",
            "tls.secret.caBundle (the PEM of the CA) is required when tls.mode is secret",
        ),
        (
            "service-monitor-without-metrics",
            "metrics.serviceMonitor.enabled needs metrics.enabled",
        ),
    ];
    for (set, message) in expected {
        let error = answer().rejected[set]
            .as_deref()
            .unwrap_or_else(|| panic!("Helm accepted the {set} values"));
        assert!(error.contains(message), "{set}: {error}");
    }
    assert_eq!(answer().rejected.len(), expected.len());
}

/// What values.yaml shows as an example, Helm accepts: each `# Example:` value, set on
/// top of the defaults, passes values.schema.json and the templates' own checks.
#[test]
fn every_example_in_values_yaml_passes_the_schema() {
    let (examples, problems) = value_examples();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        examples
            .iter()
            .any(|example| example.path == ["policy", "allowedVaultAddrs"]
                && example.value == json!(["*"])),
        "values.yaml shows no `allowedVaultAddrs: [\"*\"]`"
    );
    let failures: Vec<_> = examples
        .iter()
        .filter_map(|example| {
            let error = answer().examples.get(&example.at)?.as_ref()?;
            Some(format!(
                "{}: {}: {}: {error}",
                example.at,
                example.path.join("."),
                example.value
            ))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(answer().examples.len(), examples.len());
}

/// `additionalProperties: false` on every object the chart defines; maps (labels,
/// namespace -> prefixes) constrain their values instead.
#[test]
fn values_schema_closes_every_object() {
    let path = chart_dir().join("values.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("values.schema.json"))
            .expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let mut open = Vec::new();
    walk_schema(&schema, "", &mut open);
    // A parent chart passes `global` to its subcharts; it is theirs to define.
    assert_eq!(open, ["/properties/global"], "objects open to any key");
}

fn walk_schema(schema: &Value, at: &str, open: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if map.get("type") == Some(&json!("object")) {
                match map.get("additionalProperties") {
                    Some(Value::Bool(false)) | Some(Value::Object(_)) => {}
                    _ => open.push(at.to_owned()),
                }
            }
            for (key, value) in map {
                walk_schema(value, &format!("{at}/{key}"), open);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk_schema(item, &format!("{at}/{index}"), open);
            }
        }
        _ => {}
    }
}

#[test]
fn notes_tell_the_user_what_to_annotate_and_how_to_check_the_agent() {
    let notes = &render_of("default").notes;
    for line in [
        "vault.hashicorp.com/agent-inject: \"true\"",
        "vault.hashicorp.com/role: orders",
        "vault.hashicorp.com/agent-inject-secret-db: secret/data/orders/db",
        "bound_service_account_namespaces=orders \\\n      policies=orders ttl=1h\n",
        "roles you use with vault-k8s work as they are",
        "logs deployment/orders -c vault-agent\n",
        "cat /vault/secrets/db",
        "vault.address is not set",
    ] {
        assert!(notes.contains(line), "NOTES.txt lacks {line:?}:\n{notes}");
    }
    assert!(!notes.contains("audience="), "{notes}");
    let customized = &render_of("customized").notes;
    assert!(
        customized.contains("service account, with audience=vault, for example")
            && customized.contains("audience=vault policies=orders ttl=1h\n"),
        "{customized}"
    );
    let classic = &render_of("classic-sidecar").notes;
    assert!(classic.contains("-c vault-agent-init\n"), "{classic}");
    assert!(
        !render_of("customized")
            .notes
            .contains("vault.address is not set")
    );
}
