//! `keyhole-injector mutate`: the webhook's mutation applied to YAML files.
//!
//! Each document that holds a pod (Pod) or a pod template (Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) goes through exactly
//! [`mutate_pod`], and the resulting JSON Patch is applied to the template.
//! Every other document, and every document the mutation leaves alone, is
//! passed through byte for byte, comments included.

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::denial::Denial;
use crate::patch::{Outcome, mutate_pod};
use crate::settings::Settings;

/// The namespace assumed for objects that do not name one, as `kubectl apply` does.
const DEFAULT_NAMESPACE: &str = "default";

/// Errors of offline mutation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server setting is unusable.
    #[error(transparent)]
    Settings(#[from] crate::settings::Error),
    /// A document is not valid YAML.
    #[error("document {index}: {message}")]
    Yaml {
        /// 1-based position of the document in the input.
        index: usize,
        /// What the parser said.
        message: String,
    },
    /// An object's pod template is not a valid pod.
    #[error("{kind}/{name}: {message}")]
    Invalid {
        /// The object's kind, e.g. `Deployment`.
        kind: String,
        /// The object's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A pod template carries a wrong annotation.
    #[error("{kind}/{name}: {denial}")]
    Denied {
        /// The object's kind, e.g. `Deployment`.
        kind: String,
        /// The object's name.
        name: String,
        /// The annotation at fault.
        denial: Denial,
    },
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The mutated documents and what the user should know about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutated {
    /// Every input document as YAML, pod templates patched, others unchanged.
    pub yaml: String,
    /// Warnings, each prefixed with `<kind>/<name>: `.
    pub warnings: Vec<String>,
}

/// Applies the webhook's mutation to every pod template in multi-document `yaml`.
pub fn mutate_documents(yaml: &str, settings: &Settings) -> Result<Mutated> {
    settings.validate()?;
    let mut out = String::with_capacity(yaml.len());
    let mut warnings = Vec::new();
    for (index, doc) in split_documents(yaml).into_iter().enumerate() {
        out.push_str(doc.separator);
        match mutate_document(index + 1, doc.body, settings, &mut warnings)? {
            Some(mutated) => out.push_str(&mutated),
            None => out.push_str(doc.body),
        }
    }
    Ok(Mutated {
        yaml: out,
        warnings,
    })
}

/// Checks every pod template's annotations without printing the result; returns warnings.
pub fn check_documents(yaml: &str, settings: &Settings) -> Result<Vec<String>> {
    mutate_documents(yaml, settings).map(|m| m.warnings)
}

/// One document of a YAML stream: its `---` line (empty for the first) and its text.
struct Document<'a> {
    separator: &'a str,
    body: &'a str,
}

/// Splits a YAML stream at its `---` lines. A document marker starts at
/// column 0, where the content of a block scalar never is.
fn split_documents(yaml: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut separator = "";
    let mut body_start = 0;
    let mut offset = 0;
    for line in yaml.split_inclusive('\n') {
        let is_marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
        if is_marker {
            docs.push(Document {
                separator,
                body: &yaml[body_start..offset],
            });
            separator = &yaml[offset..offset + line.len()];
            body_start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(Document {
        separator,
        body: &yaml[body_start..],
    });
    docs
}

/// The mutated document as YAML, or `None` when it stays as it is.
fn mutate_document(
    index: usize,
    body: &str,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> Result<Option<String>> {
    let yaml_error = |message: String| Error::Yaml { index, message };
    let mut doc: Value = match serde_saphyr::from_str::<Option<Value>>(body) {
        Ok(Some(doc)) => doc,
        Ok(None) => return Ok(None),
        Err(e) => return Err(yaml_error(e.to_string())),
    };
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    let Some(template_path) = template_pointer(&kind) else {
        return Ok(None);
    };
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let namespace = doc["metadata"]["namespace"]
        .as_str()
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_owned();
    let invalid = |message: String| Error::Invalid {
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    let Some(template) = doc.pointer_mut(template_path) else {
        return Err(invalid(format!("no pod template at {template_path}")));
    };
    let pod = template_as_pod(template).map_err(|e| invalid(e.to_string()))?;
    let (patch, pod_warnings) = match mutate_pod(&pod, &namespace, settings) {
        Ok(Outcome::Skip(_)) => return Ok(None),
        Ok(Outcome::Patch { patch, warnings }) => (patch, warnings),
        Err(denial) => {
            return Err(Error::Denied { kind, name, denial });
        }
    };
    warnings.extend(
        pod_warnings
            .into_iter()
            .map(|w| format!("{kind}/{name}: {w}")),
    );
    json_patch::patch(template, &patch).map_err(|e| invalid(e.to_string()))?;
    serde_saphyr::to_string(&doc)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// Where an object of `kind` keeps its pod template, as a JSON pointer.
fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some(""),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Reads a pod template (`metadata` and `spec`) as the Pod the API server
/// would send to the webhook.
fn template_as_pod(template: &Value) -> Result<Pod, serde_path_to_error::Error<serde_json::Error>> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    serde_path_to_error::deserialize(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_column_zero_markers_only() {
        let yaml = "a: 1\n---\nb: |\n  ---\n--- # c\nc: 3\n";
        let docs = split_documents(yaml);
        let parts: Vec<(&str, &str)> = docs.iter().map(|d| (d.separator, d.body)).collect();
        assert_eq!(
            parts,
            [
                ("", "a: 1\n"),
                ("---\n", "b: |\n  ---\n"),
                ("--- # c\n", "c: 3\n")
            ]
        );
    }

    #[test]
    fn passes_unrelated_documents_through_byte_for_byte() {
        let yaml = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n\n";
        let out = mutate_documents(yaml, &Settings::default()).expect("mutates");
        assert_eq!(out.yaml, yaml);
        assert!(out.warnings.is_empty());
    }
}
