//! Pod annotations (`vault.hashicorp.com/*`, `keyhole.dev/*`) parsed into a typed spec.

use std::fmt;

/// Why a pod is refused: the annotation at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{annotation}: {reason}")]
pub struct Denial {
    /// The full annotation key, e.g. `vault.hashicorp.com/agent-pre-populate`.
    pub annotation: String,
    /// What is wrong, e.g. `"maybe" is not a boolean`.
    pub reason: String,
}

impl Denial {
    /// A denial naming `annotation`.
    pub fn new(annotation: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            annotation: annotation.into(),
            reason: reason.to_string(),
        }
    }
}
