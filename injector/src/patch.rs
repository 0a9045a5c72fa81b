//! The mutation: what keyhole adds to a pod, as a minimal RFC 6902 JSON Patch.

use std::fmt;

use k8s_openapi::api::core::v1::Pod;

use crate::annotations::Denial;
use crate::settings::Settings;

/// What to do with an admitted pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Leave the pod unchanged.
    Skip(SkipReason),
    /// Apply `patch` to the pod.
    Patch {
        /// Operations relative to the pod's root.
        patch: json_patch::Patch,
        /// Non-fatal findings for the user, e.g. an unknown annotation.
        warnings: Vec<String>,
    },
}

/// Why a pod is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `vault.hashicorp.com/agent-inject` is absent or false.
    NotRequested,
    /// `vault.hashicorp.com/agent-inject-status` says the agent is already there.
    AlreadyInjected,
    /// The namespace is `kube-system`/`kube-public` or denied by the settings.
    NamespaceDenied(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRequested => f.write_str("injection not requested"),
            Self::AlreadyInjected => f.write_str("agent already injected"),
            Self::NamespaceDenied(ns) => write!(f, "injection disabled in namespace {ns}"),
        }
    }
}

/// Decides whether `pod` (created in `namespace`) gets the agent and builds the patch.
pub fn mutate_pod(pod: &Pod, namespace: &str, settings: &Settings) -> Result<Outcome, Denial> {
    let _ = (pod, namespace, settings);
    Ok(Outcome::Skip(SkipReason::NotRequested))
}
