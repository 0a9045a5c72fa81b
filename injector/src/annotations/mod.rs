//! Pod annotations (`vault.hashicorp.com/*`, also read as `openbao.org/*`, and
//! `keyhole.dev/*`) parsed into a typed [`AgentSpec`](spec::AgentSpec).
//!
//! Meanings and defaults follow the Vault Agent Injector (hashicorp/vault-k8s).
//! Parsing is strict: a value that is not exactly what an annotation takes is a
//! [`Denial`](crate::denial::Denial) naming the annotation, so a typo never
//! quietly turns a feature off.
//!
//! [`keys`] declares every key once; [`read`] is the one reader of a pod's
//! annotations by key; [`values`] checks single values; [`spec`] holds the
//! typed result, which the parser ([`parse()`]) builds.

pub mod keys;
mod parse;
pub mod read;
pub mod spec;
pub mod values;

pub use parse::parse;
