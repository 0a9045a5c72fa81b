//! `keyhole-injector mutate`: the webhook's mutation applied to YAML files.
//!
//! Every object is looked at: each document, and each item of a `List`
//! (what `kubectl get -o yaml` prints). Each that holds a pod (Pod) or a pod
//! template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob)
//! goes through exactly [`mutate_pod`], and the resulting JSON Patch is
//! applied to the template. Every other document, and every document the
//! mutation leaves alone, is passed through byte for byte, comments included.
//!
//! Checking reports every problem in one run, each as a [`Problem`] on the
//! line and column of its annotation (or of its object): all denials of a
//! pod, found by setting aside the annotation each one names and deciding
//! again; every warning; annotations written on a workload instead of its
//! pod template; annotated pods in namespaces the injector skips. A pod
//! template without containers is a partial object, such as a Kustomize
//! patch: its annotations are checked for what they say, and it is never
//! mutated.
//!
//! Files are read as kubectl reads them, as YAML 1.1: `defaultMode: 0754` is
//! octal, and a key given twice keeps its later value, with a warning.

mod read;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::annotations::keys::{INJECT, OPENBAO_PREFIX, Prefix, VAULT_PREFIX};
use crate::annotations::values;
use crate::denial::Denial;
use crate::limits::{MAX_DENIALS_PER_POD, MAX_LIST_NESTING};
use crate::patch::{Outcome, SkipReason, mutate_pod};
use crate::policy::ANY_ADDRESS;
use crate::settings::Settings;
pub use read::Position;
use read::{Document, Notes, Read, child_path, read_document, split_documents};
pub use report::{Object, Problem, Severity};

/// The namespace assumed for objects that do not name one, as `kubectl apply` does.
const DEFAULT_NAMESPACE: &str = "default";

/// What stands in for a required annotation a pod lacks, so that checking
/// goes on past its denial.
const PLACEHOLDER: &str = "keyhole-check";

/// Errors of offline mutation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A server setting is unusable.
    #[error(transparent)]
    Settings(#[from] crate::settings::Error),
    /// Some object would be refused, or some document is not YAML. Holds
    /// every problem found, warnings included, in the order of the input.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rejected(Vec<Problem>),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The mutated documents and what the user should know about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutated {
    /// Every input document as YAML, pod templates patched, others unchanged.
    pub yaml: String,
    /// Warnings, in the order of the input.
    pub warnings: Vec<Problem>,
}

/// Applies the webhook's mutation to every pod template in multi-document `yaml`.
pub fn mutate_documents(yaml: &str, settings: &Settings) -> Result<Mutated> {
    settings.validate()?;
    let mut checker = Checker::new(settings, Mode::Mutate);
    let mut out = String::with_capacity(yaml.len());
    for doc in split_documents(yaml) {
        out.push_str(doc.separator);
        match checker.document(&doc) {
            Some(mutated) => out.push_str(&mutated),
            None => out.push_str(doc.body),
        }
    }
    let warnings = checker.finish()?;
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

/// Checks every pod template's annotations without printing the result;
/// returns the warnings, or every problem when there is an error.
/// Without `--vault-addr`, pods that name no Vault address are checked as
/// if the injector had [`CHECK_VAULT_ADDR`], and, unless `--allowed-vault-addrs`
/// lists some, any address a pod names is taken, since it may well be the
/// injector's own.
pub fn check_documents(yaml: &str, settings: &Settings) -> Result<Vec<Problem>> {
    let settings = if settings.vault_addr.is_some() {
        settings.clone()
    } else {
        let allowed_vault_addrs = if settings.allowed_vault_addrs.is_empty() {
            vec![ANY_ADDRESS.to_owned()]
        } else {
            settings.allowed_vault_addrs.clone()
        };
        Settings {
            vault_addr: Some(CHECK_VAULT_ADDR.to_owned()),
            allowed_vault_addrs,
            ..settings.clone()
        }
    };
    settings.validate()?;
    let mut checker = Checker::new(&settings, Mode::Check);
    for doc in split_documents(yaml) {
        checker.document(&doc);
    }
    checker.finish()
}

/// Whether pod templates are patched, or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mutate,
    Check,
}

/// Goes through the objects of a stream, collecting problems.
struct Checker<'s> {
    settings: &'s Settings,
    mode: Mode,
    problems: Vec<Problem>,
}

/// Where a pod template's annotations are, and whose they are.
struct Site<'a> {
    object: &'a Object,
    /// The object's own position.
    at: Position,
    /// The path of the template's `annotations` map.
    annotations: String,
    notes: &'a Notes,
}

impl Site<'_> {
    /// Where `key` of the template's annotations is written, if it is.
    fn annotation(&self, key: &str) -> Option<Position> {
        self.notes.position(&child_path(&self.annotations, key))
    }
}

impl<'s> Checker<'s> {
    fn new(settings: &'s Settings, mode: Mode) -> Self {
        Self {
            settings,
            mode,
            problems: Vec::new(),
        }
    }

    /// Every problem in the order of the input; an error if any is one.
    fn finish(mut self) -> Result<Vec<Problem>> {
        self.problems.sort_by_key(|p| p.position);
        if self.problems.iter().any(Problem::is_error) {
            return Err(Error::Rejected(self.problems));
        }
        Ok(self.problems)
    }

    fn push(
        &mut self,
        severity: Severity,
        object: &Object,
        position: Position,
        annotation: Option<&str>,
        message: String,
    ) {
        self.problems.push(Problem {
            position,
            severity,
            object: Some(object.clone()),
            annotation: annotation.map(str::to_owned),
            message,
        });
    }

    /// The mutated document as YAML, or `None` when it stays as it is.
    fn document(&mut self, doc: &Document<'_>) -> Option<String> {
        let Read { mut value, notes } = match read_document(doc) {
            Ok(Some(read)) => read,
            Ok(None) => return None,
            Err(unreadable) => {
                self.problems.push(Problem {
                    position: unreadable.position,
                    severity: Severity::Error,
                    object: None,
                    annotation: None,
                    message: unreadable.message,
                });
                return None;
            }
        };
        if !self.object(&mut value, "", &notes, 0) {
            return None;
        }
        match serde_saphyr::to_string(&value) {
            Ok(yaml) => Some(yaml),
            Err(e) => {
                let object = identify(&value);
                let at = notes.position("").unwrap_or_default();
                self.push(Severity::Error, &object, at, None, e.to_string());
                None
            }
        }
    }

    /// Checks (and, when mutating, patches) the object at `path`, `nesting`
    /// Lists deep; whether it changed.
    fn object(&mut self, value: &mut Value, path: &str, notes: &Notes, nesting: usize) -> bool {
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let at = notes.position(path).unwrap_or_default();
        if is_list(&kind, value) {
            return self.list(value, path, notes, nesting);
        }
        let Some(template_path) = template_pointer(&kind) else {
            return false;
        };
        let object = identify(value);
        self.repeated_keys(path, &object, notes);
        let dotted = template_path.trim_start_matches('/').replace('/', ".");
        if !dotted.is_empty() {
            self.workload_annotations(value, path, &object, notes, &dotted);
        }
        let Some(template) = value.pointer_mut(template_path) else {
            // A partial object, such as a Kustomize patch of the replicas:
            // no pod template, nothing to check.
            return false;
        };
        let annotations = [dotted.as_str(), "metadata", "annotations"]
            .into_iter()
            .filter(|segment| !segment.is_empty())
            .flat_map(|segment| segment.split('.'))
            .fold(path.to_owned(), |path, segment| child_path(&path, segment));
        let site = Site {
            object: &object,
            at,
            annotations,
            notes,
        };
        let pod = match template_as_pod(template) {
            Ok(pod) => pod,
            Err(e) => {
                let key = e.path().to_string();
                let key = key.strip_prefix("metadata.annotations.");
                let position = key.and_then(|key| site.annotation(key));
                let annotation = key.filter(|_| position.is_some());
                self.push(
                    Severity::Error,
                    &object,
                    position.unwrap_or(at),
                    annotation,
                    e.to_string(),
                );
                return false;
            }
        };
        let partial = template.pointer("/spec/containers").is_none();
        let Some(patch) = self.pod(pod, partial, &site) else {
            return false;
        };
        match json_patch::patch(template, &patch) {
            Ok(()) => true,
            Err(e) => {
                self.push(Severity::Error, &object, at, None, e.to_string());
                false
            }
        }
    }

    /// The items of a List; whether any changed.
    fn list(&mut self, value: &mut Value, path: &str, notes: &Notes, nesting: usize) -> bool {
        let at = notes.position(path).unwrap_or_default();
        let object = identify(value);
        if nesting >= MAX_LIST_NESTING {
            self.push(
                Severity::Error,
                &object,
                at,
                None,
                format!(
                    "a List nested {nesting} deep in Lists; its items are not checked (Kubernetes \
                     takes no List inside a List)"
                ),
            );
            return false;
        }
        if nesting > 0 {
            self.push(
                Severity::Warning,
                &object,
                at,
                None,
                "a List inside a List, which Kubernetes does not take; its items are checked \
                 anyway"
                    .to_owned(),
            );
        }
        let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) else {
            return false;
        };
        let mut changed = false;
        for (index, item) in items.iter_mut().enumerate() {
            let item_path = child_path(&child_path(path, "items"), &index.to_string());
            changed |= self.object(item, &item_path, notes, nesting + 1);
        }
        changed
    }

    /// Warns about each mapping key given twice in the object at `path`.
    fn repeated_keys(&mut self, path: &str, object: &Object, notes: &Notes) {
        for (repeated, position) in &notes.repeated {
            if owner(repeated) != path {
                continue;
            }
            let relative = match path {
                "" => repeated.as_str(),
                _ => repeated[path.len()..].trim_start_matches('.'),
            };
            self.push(
                Severity::Warning,
                object,
                *position,
                None,
                format!("{relative} is given twice; the later value is used, as kubectl does"),
            );
        }
    }

    /// Warns when a workload carries our annotations on its own metadata,
    /// where neither keyhole nor vault-k8s reads them.
    fn workload_annotations(
        &mut self,
        value: &Value,
        path: &str,
        object: &Object,
        notes: &Notes,
        template: &str,
    ) {
        let Some(annotations) = value["metadata"]["annotations"].as_object() else {
            return;
        };
        let own = child_path(&child_path(path, "metadata"), "annotations");
        let mut ours: Vec<(Position, &str)> = annotations
            .keys()
            .filter(|key| Prefix::split(key).is_some())
            .map(|key| {
                let at = notes.position(&child_path(&own, key)).unwrap_or_default();
                (at, key.as_str())
            })
            .collect();
        ours.sort_unstable();
        let Some(&(position, first)) = ours.first() else {
            return;
        };
        let kind = &object.kind;
        let message = match ours.len() {
            1 => format!(
                "{first} is on the {kind} itself, where the injector does not read it (nor does \
                 vault-k8s), so its pods get no secrets; move it to {template}.metadata.annotations"
            ),
            2 => format!(
                "{first} and 1 more annotation are on the {kind} itself, where the injector does \
                 not read them (nor does vault-k8s), so its pods get no secrets; move them to \
                 {template}.metadata.annotations"
            ),
            n => format!(
                "{first} and {} more annotations are on the {kind} itself, where the injector does \
                 not read them (nor does vault-k8s), so its pods get no secrets; move them to \
                 {template}.metadata.annotations",
                n - 1
            ),
        };
        self.push(Severity::Warning, object, position, Some(first), message);
    }

    /// Checks one pod; the patch to apply when mutating a whole pod that
    /// gets the agent.
    fn pod(&mut self, mut pod: Pod, partial: bool, site: &Site<'_>) -> Option<json_patch::Patch> {
        let has_ours = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|map| map.keys().any(|key| Prefix::split(key).is_some()));
        if partial && has_ours {
            ask_for_injection(pod.metadata.annotations.get_or_insert_default());
        }
        let decided = decide(&mut pod, &site.object.namespace, self.settings, partial);
        let refused = !decided.denials.is_empty();
        for denial in decided.denials {
            let ours = Prefix::split(&denial.annotation).is_some();
            let annotation = Some(denial.annotation.as_str()).filter(|_| ours);
            self.on_site(Severity::Error, site, annotation, denial.to_string());
        }
        if decided.truncated {
            self.on_site(
                Severity::Warning,
                site,
                None,
                format!(
                    "stopped after {MAX_DENIALS_PER_POD} refused annotations in this pod; fix \
                     them and check again"
                ),
            );
        }
        let (patch, warnings) = match decided.outcome? {
            Outcome::Skip(SkipReason::NamespaceDenied(namespace)) if asks_for_agent(&pod) => {
                let why = self.why_not_injected(&namespace);
                self.on_site(
                    Severity::Warning,
                    site,
                    None,
                    format!(
                        "pods in namespace {namespace} are never injected ({why}): this pod starts \
                         without its secrets, and its annotations are not checked"
                    ),
                );
                return None;
            }
            Outcome::Skip(_) => return None,
            Outcome::Patch { patch, warnings } => (patch, warnings),
        };
        for warning in warnings {
            // Warnings start with the annotation they are about.
            let key = warning
                .split_once(": ")
                .map(|(key, _)| key.to_owned())
                .filter(|key| site.annotation(key).is_some());
            self.on_site(Severity::Warning, site, key.as_deref(), warning);
        }
        if refused || self.mode == Mode::Check {
            return None;
        }
        if partial {
            self.on_site(
                Severity::Warning,
                site,
                None,
                "the pod template has no containers, as in a Kustomize patch: its annotations are \
                 checked, and it is printed unchanged"
                    .to_owned(),
            );
            return None;
        }
        Some(patch)
    }

    /// A problem with `annotation` of a pod template, placed where the
    /// template has it, else on the object.
    fn on_site(
        &mut self,
        severity: Severity,
        site: &Site<'_>,
        annotation: Option<&str>,
        message: String,
    ) {
        let position = annotation.and_then(|key| site.annotation(key));
        self.push(
            severity,
            site.object,
            position.unwrap_or(site.at),
            annotation,
            message,
        );
    }

    /// Why the injector skips pods in `namespace`, in the words of its flags.
    fn why_not_injected(&self, namespace: &str) -> String {
        let listed = |list: &[String]| list.iter().any(|n| n.trim() == namespace);
        if listed(&self.settings.denied_namespaces) {
            "--denied-namespaces lists it".to_owned()
        } else if self
            .settings
            .allowed_namespaces
            .iter()
            .any(|n| !n.trim().is_empty())
            && !listed(&self.settings.allowed_namespaces)
        {
            "--allowed-namespaces does not list it".to_owned()
        } else {
            "the injector never injects kube-system and kube-public".to_owned()
        }
    }
}

/// Every denial of a pod, and what the webhook decides once the annotations
/// they name are set aside.
struct Decided {
    denials: Vec<Denial>,
    /// `None` when a denial could not be set aside.
    outcome: Option<Outcome>,
    /// Whether checking stopped at [`MAX_DENIALS_PER_POD`].
    truncated: bool,
}

/// Decides about `pod` as the webhook does, again after each denial with
/// the annotation it names set aside: a wrong `agent-inject` reads as
/// `"true"`, another wrong annotation is removed, a missing one gets a
/// placeholder. Each annotation is set aside once, so this ends.
///
/// In a partial object a missing annotation is no problem: the object it
/// patches may well have it.
fn decide(pod: &mut Pod, namespace: &str, settings: &Settings, partial: bool) -> Decided {
    let mut denials = Vec::new();
    let mut set_aside = BTreeSet::new();
    loop {
        let denial = match mutate_pod(pod, namespace, settings) {
            Ok(outcome) => {
                return Decided {
                    denials,
                    outcome: Some(outcome),
                    truncated: false,
                };
            }
            Err(denial) => denial,
        };
        let annotations = pod.metadata.annotations.get_or_insert_default();
        let key = denial.annotation.clone();
        let stop = |denials, truncated| Decided {
            denials,
            outcome: None,
            truncated,
        };
        // A denial of what was set aside is about the stand-in, not the pod.
        if set_aside.contains(&key) {
            return stop(denials, false);
        }
        let written = annotations.get(&key).cloned();
        if written.is_some() || !partial {
            denials.push(denial);
        }
        if denials.len() >= MAX_DENIALS_PER_POD {
            return stop(denials, true);
        }
        let Some((prefix, name)) = Prefix::split(&key) else {
            return stop(denials, false);
        };
        let inject = INJECT.is(prefix, name);
        set_aside.insert(key.clone());
        match written {
            None => {
                annotations.insert(key, PLACEHOLDER.to_owned());
            }
            // The pod asked for the agent, only not in the words it takes.
            Some(value) if inject && value != "true" => {
                annotations.insert(key, "true".to_owned());
            }
            // The denial is about the pod, not this annotation's value.
            Some(_) if inject => return stop(denials, false),
            Some(_) => {
                annotations.remove(&key);
            }
        }
    }
}

/// Whether `pod` asks for the agent with an `agent-inject` that is not false.
fn asks_for_agent(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .any(|(key, value)| {
            Prefix::split(key).is_some_and(|(prefix, name)| INJECT.is(prefix, name))
                && values::boolean(value) != Ok(false)
        })
}

/// Adds `agent-inject: "true"` to the annotations of a partial object that
/// has none: the object it patches asks for the agent, or the patch's
/// annotations would mean nothing.
fn ask_for_injection(annotations: &mut BTreeMap<String, String>) {
    let written = |prefix: &str| annotations.keys().any(|k| k.starts_with(prefix));
    if INJECT
        .prefix
        .spellings()
        .iter()
        .any(|prefix| annotations.contains_key(&INJECT.spelled(*prefix).to_string()))
    {
        return;
    }
    let prefix = if written(OPENBAO_PREFIX) && !written(VAULT_PREFIX) {
        Prefix::OpenBao
    } else {
        Prefix::Vault
    };
    annotations.insert(INJECT.spelled(prefix).to_string(), "true".to_owned());
}

/// The object's kind, namespace and name, as messages name it.
fn identify(value: &Value) -> Object {
    let metadata = &value["metadata"];
    let name = metadata["name"]
        .as_str()
        .or_else(|| metadata["generateName"].as_str());
    Object {
        kind: value["kind"].as_str().unwrap_or_default().to_owned(),
        namespace: metadata["namespace"]
            .as_str()
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_owned(),
        name: name.unwrap_or_default().to_owned(),
    }
}

/// Whether an object of `kind` is a List (`List`, `PodList`, ...) of `items`.
fn is_list(kind: &str, value: &Value) -> bool {
    kind == "List" || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array))
}

/// The path of the object that holds the value at `path`: the document
/// (`""`), or the innermost List item (`items.0`) it is in.
fn owner(path: &str) -> &str {
    let mut end = 0;
    loop {
        let rest = match end {
            0 => path,
            _ => match path[end..].strip_prefix('.') {
                Some(rest) => rest,
                None => return &path[..end],
            },
        };
        let Some(after) = rest.strip_prefix("items.") else {
            return &path[..end];
        };
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !after[digits..].starts_with('.') {
            return &path[..end];
        }
        end = path.len() - after.len() + digits;
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

    fn settings() -> Settings {
        Settings {
            vault_addr: Some("https://vault:8200".to_owned()),
            ..Settings::default()
        }
    }

    /// A pod named `web` in namespace `shop`, whose annotations start on line 6.
    fn pod(annotations: &[&str]) -> String {
        let mut yaml =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n"
                .to_owned();
        for annotation in annotations {
            yaml.push_str(&format!("    {annotation}\n"));
        }
        yaml.push_str("spec:\n  containers:\n  - name: app\n    image: app\n");
        yaml
    }

    /// Problems as `FILE:LINE:COL: severity: ...` lines of a file `f`.
    fn lines(result: Result<Vec<Problem>>) -> Vec<String> {
        let problems = match result {
            Ok(problems) | Err(Error::Rejected(problems)) => problems,
            Err(err) => panic!("{err}"),
        };
        report::text("f", &problems)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_denial_of_a_pod_is_reported_on_its_annotation() {
        let yaml = pod(&[
            "vault.hashicorp.com/agent-inject: \"ture\"",
            "vault.hashicorp.com/agent-inject-secret-db: kv/db",
            "vault.hashicorp.com/agent-pre-populate: \"yes\"",
            "vault.hashicorp.com/log-level: loud",
        ]);
        assert_eq!(
            lines(check_documents(&yaml, &settings())),
            [
                "f:1:1: error: Pod/shop/web: vault.hashicorp.com/role: the kubernetes auth method \
                 needs a Vault role",
                "f:7:5: error: Pod/shop/web: vault.hashicorp.com/agent-inject: \"ture\" is not a \
                 boolean (true or false)",
                "f:9:5: error: Pod/shop/web: vault.hashicorp.com/agent-pre-populate: \"yes\" is not \
                 a boolean (true or false)",
                "f:10:5: error: Pod/shop/web: vault.hashicorp.com/log-level: \"loud\" is not a log \
                 level (trace, debug, info, warn or error)",
            ]
        );
    }

    #[test]
    fn stops_after_the_limit_of_denials_in_one_pod() {
        let secrets: Vec<String> = (0..MAX_DENIALS_PER_POD + 4)
            .flat_map(|i| {
                [
                    format!("vault.hashicorp.com/agent-inject-secret-s{i}: kv/s{i}"),
                    format!("vault.hashicorp.com/error-on-missing-key-s{i}: maybe"),
                ]
            })
            .collect();
        let mut annotations = vec![
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/role: web",
        ];
        annotations.extend(secrets.iter().map(String::as_str));
        let Err(Error::Rejected(problems)) = check_documents(&pod(&annotations), &settings())
        else {
            panic!("not refused");
        };
        let errors = problems.iter().filter(|p| p.is_error()).count();
        assert_eq!(errors, MAX_DENIALS_PER_POD);
        assert_eq!(
            problems.first().map(ToString::to_string).as_deref(),
            Some(
                "Pod/shop/web: stopped after 16 refused annotations in this pod; fix them and \
                 check again"
            )
        );
    }

    #[test]
    fn warnings_of_every_document_stay_when_another_fails() {
        let good = pod(&[
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/role: web",
            "vault.hashicorp.com/agent-inject-secert-db: kv/db",
        ]);
        let bad = pod(&[
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/role: web",
            "vault.hashicorp.com/agent-pre-populate: \"yes\"",
        ]);
        let yaml = format!("{good}---\n{bad}");
        assert_eq!(
            lines(mutate_documents(&yaml, &settings()).map(|m| m.warnings)),
            [
                "f:9:5: warning: Pod/shop/web: vault.hashicorp.com/agent-inject-secert-db: unknown \
                 annotation, ignored",
                "f:23:5: error: Pod/shop/web: vault.hashicorp.com/agent-pre-populate: \"yes\" is \
                 not a boolean (true or false)",
            ]
        );
    }

    #[test]
    fn a_repeated_annotation_is_a_warning_where_it_is_repeated() {
        let yaml = pod(&[
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/agent-inject-secret-db: kv/db",
            "vault.hashicorp.com/role: app",
            "vault.hashicorp.com/role: app",
        ]);
        assert_eq!(
            lines(mutate_documents(&yaml, &settings()).map(|m| m.warnings)),
            [
                "f:10:5: warning: Pod/shop/web: metadata.annotations['vault.hashicorp.com/role'] is \
                 given twice; the later value is used, as kubectl does"
            ]
        );
    }

    #[test]
    fn list_items_are_checked_and_mutated() {
        let item = pod(&[
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/role: web",
            "vault.hashicorp.com/agent-inject-secret-db: kv/db",
        ]);
        let indented: String = item
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{}{line}\n", if i == 0 { "- " } else { "  " }))
            .collect();
        let list = format!("apiVersion: v1\nkind: PodList\nitems:\n{indented}");
        let out = mutate_documents(&list, &settings()).expect("mutates");
        let value: Value = serde_saphyr::from_str(&out.yaml).expect("YAML");
        let item = &value["items"][0];
        assert_eq!(
            item["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"],
            "injected"
        );
        assert_eq!(item["spec"]["initContainers"][0]["name"], "vault-agent");

        let typo = list.replace("inject: \"true\"", "inject: \"ture\"");
        assert_eq!(
            lines(check_documents(&typo, &settings())),
            [
                "f:10:7: error: Pod/shop/web: vault.hashicorp.com/agent-inject: \"ture\" is not a \
              boolean (true or false)"
            ]
        );
    }

    #[test]
    fn lists_in_lists_are_checked_one_level_deep() {
        let yaml = "kind: List\nitems:\n- kind: List\n  items:\n  - kind: List\n    items: []\n";
        assert_eq!(
            lines(check_documents(yaml, &settings())),
            [
                "f:3:3: warning: List/default/: a List inside a List, which Kubernetes does not \
                 take; its items are checked anyway",
                "f:5:5: error: List/default/: a List nested 2 deep in Lists; its items are not \
                 checked (Kubernetes takes no List inside a List)",
            ]
        );
    }

    #[test]
    fn a_partial_object_is_checked_for_what_it_has_and_passed_through() {
        let patch = "kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    metadata:\n      annotations:\n        vault.hashicorp.com/agent-inject-secret-db: kv/db\n";
        assert_eq!(check_documents(patch, &settings()).expect("checks"), []);
        let out = mutate_documents(patch, &settings()).expect("passes through");
        assert_eq!(out.yaml, patch);
        assert_eq!(
            lines(Ok(out.warnings)),
            [
                "f:1:1: warning: Deployment/default/web: the pod template has no containers, as in a \
              Kustomize patch: its annotations are checked, and it is printed unchanged"
            ]
        );
        let replicas = "kind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n";
        let out = mutate_documents(replicas, &settings()).expect("passes through");
        assert_eq!((out.yaml.as_str(), out.warnings), (replicas, vec![]));
    }

    #[test]
    fn annotations_on_a_workload_itself_name_where_they_belong() {
        let cron_job = "kind: CronJob\nmetadata:\n  name: nightly\n  annotations:\n    vault.hashicorp.com/role: app\n";
        assert_eq!(
            lines(check_documents(cron_job, &settings())),
            [
                "f:5:5: warning: CronJob/default/nightly: vault.hashicorp.com/role is on the CronJob \
              itself, where the injector does not read it (nor does vault-k8s), so its pods get no \
              secrets; move it to spec.jobTemplate.spec.template.metadata.annotations"
            ]
        );
    }

    #[test]
    fn owner_is_the_innermost_list_item() {
        assert_eq!(owner("metadata.name"), "");
        assert_eq!(owner("items.3.metadata.name"), "items.3");
        assert_eq!(owner("items.3.items.0.kind"), "items.3.items.0");
        assert_eq!(owner("items.3"), "");
        assert_eq!(owner("items.x.kind"), "");
    }

    #[test]
    fn check_needs_no_vault_address_but_mutate_does() {
        let yaml = pod(&[
            "vault.hashicorp.com/agent-inject: \"true\"",
            "vault.hashicorp.com/role: app",
            "vault.hashicorp.com/agent-inject-secret-db: secret/data/db",
        ]);
        let settings = Settings::default();
        assert_eq!(check_documents(&yaml, &settings).expect("checked"), []);
        let own_address = yaml.replace(
            "    vault.hashicorp.com/role: app\n",
            "    vault.hashicorp.com/role: app\n    vault.hashicorp.com/service: https://vault:8200\n",
        );
        assert_eq!(
            check_documents(&own_address, &settings).expect("checked"),
            []
        );
        assert_eq!(
            lines(mutate_documents(&yaml, &settings).map(|m| m.warnings)),
            [
                "f:1:1: error: Pod/shop/web: vault.hashicorp.com/service: no Vault address: set this \
              annotation or the injector's --vault-addr"
            ]
        );
    }

    #[test]
    fn an_empty_document_is_passed_through() {
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
