//! keyhole-agent: logs in to Vault or OpenBao and renders secrets into files.
//!
//! The agent reads a Vault Agent configuration ([`config`]), logs in with the
//! pod's credentials ([`auth`]), reads secrets through [`vault`], renders them
//! with Go text/template semantics ([`template`]) and replaces destination
//! files atomically ([`write`]). [`render`] ties those together.

pub mod auth;
pub mod config;
pub mod lease;
pub mod metrics;
pub mod reload;
pub mod render;
pub mod template;
pub mod vault;
pub mod write;
