//! keyhole-agent: logs in to Vault or OpenBao and renders secrets into files.
//!
//! The agent reads a Vault Agent configuration ([`config`]), logs in with the
//! pod's credentials ([`auth`]), reads secrets through [`vault`], renders them
//! with Go text/template semantics ([`template`]) and replaces destination
//! files atomically ([`write`](mod@write)). [`cache`] keeps fetched secrets current on
//! the schedule [`lease`] computes, [`render`] turns them into files, and
//! [`session`] keeps the token alive; [`persist`] hands both to the next agent of the pod; [`runner`] waits on those and on
//! shutdown, and [`heartbeat`] shows the kubelet it is not wedged. [`listener`] serves
//! the pod's other containers: the agent's API and the [`proxy`] that forwards their
//! Vault requests. In supervisor mode, [`supervisor`] runs a command with
//! rendered secrets in its environment. [`redact`] decides how Vault requests appear in logs and
//! metrics; [`backoff`] is the one retry policy.

pub mod auth;
pub mod backoff;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod duration;
pub mod heartbeat;
pub mod lease;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod persist;
pub mod proxy;
pub mod redact;
pub mod reload;
pub mod render;
pub mod runner;
pub mod session;
pub mod sink;
pub mod supervisor;
pub mod telemetry;
pub mod template;
pub mod vault;
pub mod write;
