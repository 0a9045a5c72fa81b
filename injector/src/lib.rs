//! keyhole-injector: the mutating admission webhook that adds keyhole-agent to pods.

pub mod agent_config;
pub mod annotations;
pub mod offline;
pub mod patch;
pub mod settings;
