//! `keyhole-injector mutate`: the webhook's mutation applied to YAML files.
//!
//! Each document that holds a pod (Pod) or a pod template (Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) goes through exactly
//! [`mutate_pod`], and the resulting JSON Patch is applied to the template.
//! Every other document, and every document the mutation leaves alone, is
//! passed through byte for byte, comments included.
//!
//! Documents are read as kubectl reads them, which is YAML 1.1 through Go's
//! `yaml.v2`: an integer with a leading `0` is octal (`defaultMode: 0754` is
//! 492), and a key given twice keeps its later value. Each repeated key is
//! reported as a warning, since the earlier value is silently lost.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value, json};
use serde_saphyr::DuplicateKeyPolicy;

use crate::denial::Denial;
use crate::patch::{Outcome, mutate_pod};
use crate::policy::ANY_ADDRESS;
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

/// The Vault address `--check` assumes when it is given none: the injector
/// in the cluster always has one, and the check is about the manifests, not
/// about where their agent connects. `.invalid` is reserved (RFC 2606), so
/// it is never anyone's Vault.
pub const CHECK_VAULT_ADDR: &str = "https://injector-vault-addr.invalid:8200";

/// Checks every pod template's annotations without printing the result; returns warnings.
/// Without `--vault-addr`, pods that name no Vault address are checked as
/// if the injector had [`CHECK_VAULT_ADDR`], and, unless `--allowed-vault-addrs`
/// lists some, any address a pod names is taken, since it may well be the
/// injector's own.
pub fn check_documents(yaml: &str, settings: &Settings) -> Result<Vec<String>> {
    if settings.vault_addr.is_some() {
        return mutate_documents(yaml, settings).map(|m| m.warnings);
    }
    let allowed_vault_addrs = if settings.allowed_vault_addrs.is_empty() {
        vec![ANY_ADDRESS.to_owned()]
    } else {
        settings.allowed_vault_addrs.clone()
    };
    let settings = Settings {
        vault_addr: Some(CHECK_VAULT_ADDR.to_owned()),
        allowed_vault_addrs,
        ..settings.clone()
    };
    mutate_documents(yaml, &settings).map(|m| m.warnings)
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
    let (mut doc, repeated) = match read_document(body) {
        Ok(Some(read)) => read,
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
    warnings.extend(repeated.iter().map(|key| {
        format!("{kind}/{name}: {key} is given twice; the later value is used, as kubectl does")
    }));
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

/// Reads one YAML document as kubectl does (see the module doc): its value,
/// and the path of every mapping key given more than once.
fn read_document(body: &str) -> Result<Option<(Value, Vec<String>)>, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
    };
    let doc: Option<KubectlDocument> = serde_saphyr::from_str_with_options(body, options)?;
    Ok(doc.map(|doc| (doc.value, doc.repeated)))
}

/// A document's value and its repeated keys.
struct KubectlDocument {
    value: Value,
    repeated: Vec<String>,
}

impl<'de> Deserialize<'de> for KubectlDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut repeated = Vec::new();
        let value = Tracked {
            path: String::new(),
            repeated: &mut repeated,
        }
        .deserialize(deserializer)?;
        Ok(Self { value, repeated })
    }
}

/// Builds a JSON value from YAML, noting repeated mapping keys by their path
/// (`metadata.annotations['vault.hashicorp.com/role']`, as kubectl's JSONPath
/// writes it). Nesting is bounded by
/// the YAML parser's depth budget.
struct Tracked<'a> {
    path: String,
    repeated: &'a mut Vec<String>,
}

impl Tracked<'_> {
    /// The value under `key` (a map key, or a list index) of this one.
    fn child(&mut self, key: &str) -> Tracked<'_> {
        let plain = key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let path = match (self.path.is_empty(), plain) {
            (true, true) => key.to_owned(),
            (false, true) => format!("{}.{key}", self.path),
            (_, false) => format!("{}['{key}']", self.path),
        };
        Tracked {
            path,
            repeated: self.repeated,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tracked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&items.len().to_string()))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.child(&key))?;
            if out.insert(key.clone(), value).is_some() {
                let path = self.child(&key).path;
                self.repeated.push(path);
            }
        }
        Ok(Value::Object(out))
    }
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
    fn reads_yaml_1_1_octal_as_kubectl_does() {
        let (doc, repeated) =
            read_document("mode: 0754\nhex: 0x1f\ndecimal: 754\nquoted: '0754'\n")
                .expect("parses")
                .expect("a document");
        assert_eq!(
            doc,
            json!({"mode": 492, "hex": 31, "decimal": 754, "quoted": "0754"})
        );
        assert!(repeated.is_empty());
    }

    #[test]
    fn a_repeated_key_keeps_the_later_value_and_is_named() {
        let yaml = "metadata:\n  annotations:\n    vault.hashicorp.com/role: a\n    vault.hashicorp.com/role: b\nspec:\n  containers:\n  - name: first\n    name: second\n";
        let (doc, repeated) = read_document(yaml).expect("parses").expect("a document");
        assert_eq!(
            doc["metadata"]["annotations"]["vault.hashicorp.com/role"],
            "b"
        );
        assert_eq!(doc["spec"]["containers"][0]["name"], "second");
        assert_eq!(
            repeated,
            [
                "metadata.annotations['vault.hashicorp.com/role']",
                "spec.containers.0.name"
            ]
        );
    }

    #[test]
    fn a_repeated_annotation_is_a_warning_naming_the_object_and_key() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    vault.hashicorp.com/agent-inject: \"true\"\n    vault.hashicorp.com/agent-inject-secret-db: kv/db\n    vault.hashicorp.com/role: app\n    vault.hashicorp.com/role: app\nspec:\n  containers:\n  - name: app\n    image: app\n";
        let settings = Settings {
            vault_addr: Some("https://vault:8200".to_owned()),
            ..Settings::default()
        };
        let out = mutate_documents(yaml, &settings).expect("mutates");
        assert!(
            out.warnings.contains(&"Pod/web: metadata.annotations['vault.hashicorp.com/role'] is given twice; the later value is used, as kubectl does".to_owned()),
            "{:?}",
            out.warnings
        );
    }

    #[test]
    fn check_needs_no_vault_address_but_mutate_does() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  annotations:\n    \
                   vault.hashicorp.com/agent-inject: \"true\"\n    \
                   vault.hashicorp.com/role: app\n    \
                   vault.hashicorp.com/agent-inject-secret-db: secret/data/db\n\
                   spec:\n  containers:\n  - name: app\n    image: nginx\n";
        let settings = Settings::default();
        assert_eq!(
            check_documents(pod, &settings).expect("checked"),
            Vec::<String>::new()
        );
        let own_address = pod.replace(
            "    vault.hashicorp.com/role: app\n",
            "    vault.hashicorp.com/role: app\n    vault.hashicorp.com/service: https://vault:8200\n",
        );
        assert_eq!(
            check_documents(&own_address, &settings).expect("checked"),
            Vec::<String>::new()
        );
        assert_eq!(
            mutate_documents(pod, &settings)
                .map(|_| ())
                .map_err(|err| err.to_string()),
            Err(
                "Pod/app: vault.hashicorp.com/service: no Vault address: set this annotation \
                 or the injector's --vault-addr"
                    .to_owned()
            )
        );
    }

    #[test]
    fn an_empty_document_is_passed_through() {
        assert_eq!(read_document("# only a comment\n").expect("parses"), None);
        let out = mutate_documents("---\n# nothing\n---\n", &Settings::default()).expect("mutates");
        assert_eq!(out.yaml, "---\n# nothing\n---\n");
    }

    #[test]
    fn passes_unrelated_documents_through_byte_for_byte() {
        let yaml = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n\n";
        let out = mutate_documents(yaml, &Settings::default()).expect("mutates");
        assert_eq!(out.yaml, yaml);
        assert!(out.warnings.is_empty());
    }
}
