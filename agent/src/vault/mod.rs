//! Vault HTTP client.

mod secret;

pub use secret::Secret;
