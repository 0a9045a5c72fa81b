//! keyhole-injector: the mutating admission webhook that adds keyhole-agent to pods.

pub mod admin;
pub mod agent_config;
pub mod agent_patch;
pub mod agent_paths;
pub mod annotations;
pub mod cli;
pub mod denial;
pub mod env;
pub mod limits;
pub mod metrics;
pub mod offline;
pub mod patch;
pub mod pod;
pub mod policy;
pub mod settings;
pub mod templates;
pub mod tls;
pub mod webhook;

pub use cli::{Cli, run};
