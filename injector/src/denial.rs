//! [`Denial`]: why a pod is refused, naming the annotation at fault.

use std::fmt;

/// Why a pod is refused: the annotation at fault and what is wrong with it.
///
/// Its message shows the annotation with control characters escaped: keys
/// are written by pod authors, and a newline in one must not forge a line in
/// the injector's log or in a CI report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", annotation.escape_debug())]
pub struct Denial {
    /// The full annotation key, e.g. `vault.hashicorp.com/agent-pre-populate`.
    pub annotation: String,
    /// What is wrong, e.g. `"maybe" is not a boolean (true or false)`.
    pub reason: String,
}

/// A result whose error refuses the pod.
pub type Result<T, E = Denial> = std::result::Result<T, E>;

impl Denial {
    /// A denial naming `annotation`.
    pub fn new(annotation: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self {
            annotation: annotation.to_string(),
            reason: reason.to_string(),
        }
    }
}
