//! The operator's limits on what a pod's annotations may ask for: which Vault
//! addresses, whether TLS verification may be skipped, and which Vault paths
//! each namespace may read.
//!
//! The Vault role bound to a pod's service account is what decides what the
//! pod can read; these checks add defence in depth, so that a pod cannot point
//! the agent at an endpoint of the operator's network or read outside the
//! paths its namespace is meant to use, even where a role is too broad.
//!
//! What vault-k8s admits stays admitted by default ([`Mode::Permissive`]),
//! with an admission warning that names the annotation and the risk, so that
//! existing manifests keep working. [`Mode::Strict`] denies it instead. A
//! limit the operator set explicitly (`--allowed-vault-addrs`,
//! `--path-policy-file`, `--allow-tls-skip-verify`) applies in either mode:
//! an operator's flag always wins over a pod's annotation.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use keyhole_agent::template::VaultFunction;
use url::Url;

use crate::annotations::keys::{
    CA_CERT, CONFIGMAP, SERVICE, TEMPLATE, TLS_SECRET, TLS_SKIP_VERIFY,
};
use crate::annotations::spec::{AgentSpec, TemplateText};
use crate::denial::Denial;
use crate::templates::{Body, Parsed};

/// The `--allowed-vault-addrs` entry that allows every address.
pub const ANY_ADDRESS: &str = "*";

/// The path policy key that applies to namespaces the file does not list.
pub const OTHER_NAMESPACES: &str = "*";

/// What the injector does with a request that vault-k8s admits but that
/// weakens the pod's security (`--policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Admit it, as vault-k8s does, with an admission warning.
    #[default]
    Permissive,
    /// Deny it.
    Strict,
}

/// The operator's limits, as the injector's settings give them.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// `--policy`: what happens where no explicit flag below decides.
    pub mode: Mode,
    /// `--vault-addr`: the injector's own Vault address, always allowed.
    pub vault_addr: Option<&'a str>,
    /// `--allowed-vault-addrs`: other addresses pods may choose. When empty,
    /// [`Policy::mode`] decides about other addresses.
    pub allowed_vault_addrs: &'a [String],
    /// `--allow-tls-skip-verify`; when unset, [`Policy::mode`] decides.
    pub allow_tls_skip_verify: Option<bool>,
    /// `--path-policy-file`: the Vault paths each namespace may read.
    pub path_policy: Option<&'a PathPolicy>,
}

/// The operator's policy as it applies to one pod.
#[derive(Debug)]
pub struct PodPolicy<'a> {
    /// The path prefixes the pod's namespace may read, when restricted.
    scope: Option<Scope<'a>>,
}

/// Checks `spec`, built for a pod in `namespace`, against the operator's
/// policy, adds a warning for each risk it admits to `warnings`, and returns
/// what is left to check in each of its templates.
pub fn check<'a>(
    spec: &AgentSpec,
    namespace: &'a str,
    policy: &Policy<'a>,
    warnings: &mut Vec<String>,
) -> Result<PodPolicy<'a>, Denial> {
    check_address(&spec.vault.address, policy, warnings)?;
    if spec.vault.tls_skip_verify {
        check_tls_skip_verify(policy, warnings)?;
    }
    let scope = policy
        .path_policy
        .and_then(|paths| paths.prefixes(namespace))
        .map(|prefixes| Scope {
            namespace,
            prefixes,
        });
    if let Some(configmap) = &spec.configmap {
        check_configmap(configmap, scope.as_ref(), policy, warnings)?;
    }
    Ok(PodPolicy { scope })
}

/// The address a pod asks for must be the injector's own or on the
/// allowlist; without an allowlist, [`Mode::Permissive`] admits any other
/// address with a warning.
fn check_address(
    address: &str,
    policy: &Policy<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), Denial> {
    let allowed = policy.allowed_vault_addrs;
    // The injector's own address, checked at startup: most pods use it.
    if allowed.iter().any(|a| a == ANY_ADDRESS) || policy.vault_addr == Some(address) {
        return Ok(());
    }
    let Some(wanted) = normalize_address(address) else {
        return Err(Denial::new(
            SERVICE,
            format!("{address:?} is not an http or https URL such as https://vault.example:8200"),
        ));
    };
    let matches = |candidate: &str| normalize_address(candidate).is_some_and(|c| c == wanted);
    if policy
        .vault_addr
        .into_iter()
        .chain(allowed.iter().map(String::as_str))
        .any(matches)
    {
        return Ok(());
    }
    let vault_addr = policy.vault_addr.unwrap_or("unset");
    if allowed.is_empty() && policy.mode == Mode::Permissive {
        warnings.push(format!(
            "{SERVICE}: Vault address {address:?} is not the injector's --vault-addr \
             ({vault_addr}), and the agent sends its login credentials there; the operator \
             can limit addresses with --allowed-vault-addrs or --policy=strict"
        ));
        return Ok(());
    }
    Err(Denial::new(
        SERVICE,
        format!(
            "Vault address {address:?} is not allowed: use the injector's --vault-addr \
             ({vault_addr}) or ask the operator to add it to --allowed-vault-addrs",
        ),
    ))
}

/// `tls-skip-verify: "true"` needs `--allow-tls-skip-verify`, or its
/// absence in [`Mode::Permissive`]; admitted, it always gets a warning.
fn check_tls_skip_verify(policy: &Policy<'_>, warnings: &mut Vec<String>) -> Result<(), Denial> {
    let allowed = policy
        .allow_tls_skip_verify
        .unwrap_or(policy.mode == Mode::Permissive);
    if !allowed {
        return Err(Denial::new(
            TLS_SKIP_VERIFY,
            format!(
                "skipping verification of Vault's certificate is not allowed by this injector; \
                 give the agent Vault's CA with {CA_CERT} or {}, or have the operator set \
                 --allow-tls-skip-verify",
                TLS_SECRET.name
            ),
        ));
    }
    warnings.push(format!(
        "{TLS_SKIP_VERIFY}: Vault's certificate is not verified, so whoever can intercept the \
         connection can pose as Vault, take the pod's login token and serve it false secrets; \
         give the agent Vault's CA with {CA_CERT} or {} instead",
        TLS_SECRET.name
    ));
    Ok(())
}

/// A ConfigMap's agent config is not visible at admission, so nothing the
/// operator restricts can be checked in it: denied where the operator
/// restricts addresses or the namespace's paths, and in [`Mode::Strict`].
fn check_configmap(
    configmap: &str,
    scope: Option<&Scope<'_>>,
    policy: &Policy<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), Denial> {
    let unseen = format!("the agent config in ConfigMap {configmap:?} is not visible at admission");
    if policy.allowed_vault_addrs.iter().any(|a| a != ANY_ADDRESS) {
        return Err(Denial::new(
            CONFIGMAP,
            format!(
                "{unseen}, so its Vault address cannot be checked against the injector's \
                 --allowed-vault-addrs; use the annotations instead"
            ),
        ));
    }
    if let Some(scope) = scope {
        return Err(Denial::new(
            CONFIGMAP,
            format!(
                "{unseen}, so its Vault paths cannot be checked against the path policy of \
                 namespace {:?}; use agent-inject-secret-* and agent-inject-template-* \
                 annotations instead",
                scope.namespace
            ),
        ));
    }
    if policy.mode == Mode::Strict {
        return Err(Denial::new(
            CONFIGMAP,
            format!(
                "{unseen}, so its Vault address, TLS settings and paths cannot be checked, \
                 which the injector's --policy=strict requires; use the annotations instead"
            ),
        ));
    }
    warnings.push(format!(
        "{CONFIGMAP}: the injector does not check the Vault address, TLS settings or \
         paths in ConfigMap {configmap:?}"
    ));
    Ok(())
}

/// A Vault address in one spelling: lower-case scheme and host, explicit
/// port, no trailing slash. `None` when it is not a plain http(s) URL.
pub fn normalize_address(address: &str) -> Option<String> {
    let url = Url::parse(address.trim()).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return None;
    }
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let path = url.path().trim_end_matches('/');
    Some(format!("{}://{host}:{port}{path}", url.scheme()))
}

/// Vault path prefixes allowed per namespace, from `--path-policy-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    /// Allowed prefixes by namespace; the [`OTHER_NAMESPACES`] key applies to
    /// namespaces not listed.
    namespaces: BTreeMap<String, Vec<String>>,
}

/// A path policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PolicyError {
    /// The file as given.
    pub file: String,
    /// What is wrong with it.
    pub message: String,
}

/// The file's shape: `namespaces: {<namespace>: [<prefix>, ...]}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    namespaces: BTreeMap<String, Vec<String>>,
}

impl PathPolicy {
    /// Reads and checks a policy file; the error names the file and the problem.
    pub fn from_file(file: &str) -> Result<Self, PolicyError> {
        let error = |message: String| PolicyError {
            file: file.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(Path::new(file))
            .map_err(|e| error(format!("cannot read: {e}")))?;
        Self::from_yaml(&text).map_err(error)
    }

    /// Parses and checks policy YAML.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let parsed: PolicyFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let mut namespaces = BTreeMap::new();
        for (namespace, prefixes) in parsed.namespaces {
            let prefixes = prefixes
                .iter()
                .map(|p| {
                    check_prefix(p)
                        .map_err(|why| format!("namespaces.{namespace}: prefix {p:?} {why}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            namespaces.insert(namespace, prefixes);
        }
        Ok(Self { namespaces })
    }

    /// The prefixes that apply to `namespace`, or `None` when it is unrestricted.
    pub fn prefixes(&self, namespace: &str) -> Option<&[String]> {
        self.namespaces
            .get(namespace)
            .or_else(|| self.namespaces.get(OTHER_NAMESPACES))
            .map(Vec::as_slice)
    }
}

/// A prefix as paths are compared: without a leading slash.
fn check_prefix(prefix: &str) -> Result<String, &'static str> {
    let prefix = prefix.trim().trim_start_matches('/');
    if prefix.is_empty() {
        return Err("is empty; list no namespace to leave it unrestricted");
    }
    if prefix.contains(['*', '+']) {
        return Err(
            "has a glob; prefixes match by their start, write secret/team-a/ \
             rather than secret/team-a/*",
        );
    }
    if prefix.contains('?') {
        return Err("has a query");
    }
    if has_dot_segment(prefix) {
        return Err("has a \".\" or \"..\" segment");
    }
    Ok(prefix.to_owned())
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == "." || s == "..")
}

/// The namespace whose prefixes are checked.
#[derive(Debug)]
struct Scope<'a> {
    namespace: &'a str,
    prefixes: &'a [String],
}

impl Scope<'_> {
    /// Why `path` may not be read, or `None` when it may. A list (`secrets`)
    /// of a directory matches a prefix with or without its trailing slash.
    fn refuse(&self, path: &str, list: bool) -> Option<String> {
        let bare = path.split_once('?').map_or(path, |(bare, _)| bare);
        let bare = bare.trim_start_matches('/');
        if has_dot_segment(bare) {
            return Some(format!(
                "Vault path {path:?} has a \".\" or \"..\" segment, which the path policy \
                 of namespace {:?} does not allow",
                self.namespace
            ));
        }
        let listed = format!("{}/", bare.trim_end_matches('/'));
        let candidate = if list { listed.as_str() } else { bare };
        if self
            .prefixes
            .iter()
            .any(|p| candidate.starts_with(p.as_str()))
        {
            return None;
        }
        Some(format!(
            "Vault path {path:?} is outside the paths allowed in namespace {:?} ({}); \
             the injector's --path-policy-file sets them",
            self.namespace,
            PrefixList(self.prefixes)
        ))
    }
}

struct PrefixList<'a>(&'a [String]);

impl fmt::Display for PrefixList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.0.join(", "))
    }
}

impl PodPolicy<'_> {
    /// Every Vault path that `parsed` would read must be under an allowed prefix.
    pub fn check_template(&self, parsed: &Parsed<'_>) -> Result<(), Denial> {
        let Some(scope) = &self.scope else {
            return Ok(());
        };
        let calls = match &parsed.body {
            Body::Parsed(calls) => calls,
            Body::File(file) => {
                return Err(Denial::new(
                    &parsed.annotation,
                    format!(
                        "template file {file:?} is read inside the agent, so the Vault paths it \
                         reads cannot be checked against the path policy of namespace {:?} at \
                         admission; put the template in {}{} instead",
                        scope.namespace, TEMPLATE.stem, parsed.secret.raw_name
                    ),
                ));
            }
        };
        // A default template is ours: its positions mean nothing to the user.
        let generated = matches!(
            parsed.secret.template,
            TemplateText::DefaultMap | TemplateText::DefaultJson
        );
        for call in calls.iter() {
            let at = format!("{}:{}", call.line, call.column);
            let function = call.function.name();
            let Some(path) = &call.path else {
                return Err(Denial::new(
                    &parsed.annotation,
                    format!(
                        "{at}: the path of this {function} call is computed while rendering, so \
                         it cannot be checked against the path policy of namespace {:?}; write \
                         the path as a string constant",
                        scope.namespace
                    ),
                ));
            };
            let list = call.function == VaultFunction::Secrets;
            if let Some(why) = scope.refuse(path, list) {
                let reason = if generated {
                    why
                } else {
                    format!("{at}: {function}: {why}")
                };
                return Err(Denial::new(&parsed.annotation, reason));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
