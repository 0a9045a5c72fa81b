//! keyhole-agent: logs in to Vault or OpenBao and renders secrets into files.
//!
//! The agent reads a Vault Agent configuration ([`config`]), logs in with the
//! pod's credentials ([`auth`]), reads secrets through [`vault`], renders them
//! with Go text/template semantics ([`template`]) and replaces destination
//! files atomically ([`write`]). [`render`] ties those together; [`redact`]
//! decides how its Vault requests appear in logs and metrics.

pub mod auth;
pub mod cli;
pub mod config;
pub mod lease;
pub mod metrics;
pub mod redact;
pub mod reload;
pub mod render;
pub mod runner;
pub mod template;
pub mod vault;
pub mod write;
