//! The chart `charts/keyhole` linted and rendered by real Helm: the helm-python-sdk
//! package runs tests/chart/render.py, which answers for every value set at once, and
//! the Python scripts of tests/chart are called with a JSON request on standard input.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{Tool, require};

/// The release name the chart is rendered with.
pub const RELEASE: &str = "keyhole";
/// The namespace the chart is rendered into.
pub const NAMESPACE: &str = "keyhole";
/// Names every object of the release derives from.
pub const FULLNAME: &str = "keyhole-injector";

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/keyhole")
}

/// What render.py answers.
#[derive(Debug, Deserialize)]
pub struct Answer {
    /// Helm's version, e.g. `v4.0.0`.
    pub helm: String,
    /// Chart.yaml as Helm loaded it.
    pub chart: Value,
    /// `helm lint --strict` of each value set.
    pub lint: BTreeMap<String, Lint>,
    /// Each value set rendered twice.
    pub renders: BTreeMap<String, Render>,
    /// Helm's error for each set it must refuse, `None` when it rendered.
    pub rejected: BTreeMap<String, Option<String>>,
    /// The same for each example of values.yaml.
    pub examples: BTreeMap<String, Option<String>>,
}

/// The lint of one value set.
#[derive(Debug, Deserialize)]
pub struct Lint {
    /// Every message.
    pub messages: Vec<LintMessage>,
    /// Errors that stopped the lint.
    pub errors: Vec<String>,
}

/// One message of `helm lint`.
#[derive(Debug, Deserialize)]
pub struct LintMessage {
    /// 1 info, 2 warning, 3 error.
    pub severity: u8,
    /// The file it is about.
    pub path: String,
    /// What it says.
    pub error: String,
}

/// One value set rendered.
#[derive(Debug, Deserialize)]
pub struct Render {
    /// The manifests of the first render.
    pub first: String,
    /// The manifests of a second render, to compare.
    pub second: String,
    /// NOTES.txt rendered.
    pub notes: String,
    /// Every manifest, parsed.
    pub documents: Vec<Document>,
}

/// One rendered manifest.
#[derive(Debug, Deserialize)]
pub struct Document {
    /// The template it came from.
    pub template: String,
    /// The object.
    pub object: Value,
}

impl Render {
    /// Every object of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.documents
            .iter()
            .map(|doc| &doc.object)
            .filter(|object| object["kind"] == kind)
            .collect()
    }

    /// The one object of `kind`, named `name` when given; panics unless there is
    /// exactly one.
    pub fn one(&self, kind: &str, name: Option<&str>) -> &Value {
        let found: Vec<_> = self
            .all(kind)
            .into_iter()
            .filter(|object| name.is_none_or(|name| object["metadata"]["name"] == name))
            .collect();
        assert_eq!(found.len(), 1, "{kind} {name:?}: {found:#?}");
        found[0]
    }

    /// The injector's pod spec.
    pub fn pod_spec(&self) -> &Value {
        &self.one("Deployment", Some(FULLNAME))["spec"]["template"]["spec"]
    }

    /// The injector's one container.
    pub fn container(&self) -> &Value {
        let containers = self.pod_spec()["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1);
        &containers[0]
    }
}

/// Lints and renders each of `sets` (name → values), and renders `rejected` and
/// `examples` (name → values) for Helm's error, in one Python process.
pub fn render(sets: Value, rejected: Value, examples: Value) -> anyhow::Result<Answer> {
    let request = json!({
        "chart": chart_dir(),
        "release": RELEASE,
        "namespace": NAMESPACE,
        "sets": sets,
        "rejected": rejected,
        "examples": examples,
    });
    run_script(Tool::HelmPythonSdk, "render.py", &request)
}

/// Runs the Python script `name` of tests/chart with the interpreter `tool` finds,
/// `request` as JSON on its standard input, and reads its JSON answer.
pub fn run_script<T: DeserializeOwned>(
    tool: Tool,
    name: &str,
    request: &Value,
) -> anyhow::Result<T> {
    let python = require(tool)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("chart")
        .join(name);
    let stdout = stdout_of(Command::new(python).arg(&script), &request.to_string())?;
    serde_json::from_slice(&stdout)
        .with_context(|| format!("reading the answer of {}", script.display()))
}

/// What `command` prints when given `input`; its failure is an error with what it
/// said.
pub fn stdout_of(command: &mut Command, input: &str) -> anyhow::Result<Vec<u8>> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {command:?}"))?;
    child
        .stdin
        .take()
        .context("stdin of the child")?
        .write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}
