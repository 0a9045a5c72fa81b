//! The `VAULT_*` environment variables that override the `vault` stanza, as
//! in Vault Agent.
//!
//! vault-k8s sets them on the agent container when the config comes from a
//! ConfigMap (`agent-configmap`), whose `vault` stanza may be absent: the
//! agent then connects where the annotations say. As in Vault Agent, a
//! variable wins over the config; keyhole ignores an empty one.

use std::path::PathBuf;

use super::{Error, Result, Vault};

/// Environment variable that overrides `vault.address`, as in Vault Agent.
pub const VAULT_ADDR_ENV: &str = "VAULT_ADDR";

/// Sets one `vault` field from a variable's non-empty value, or says why the
/// value does not fit.
type Apply = fn(&mut Vault, String) -> Result<(), String>;

/// Every variable the agent reads over the config, and what it sets.
const OVERRIDES: [(&str, Apply); 9] = [
    (VAULT_ADDR_ENV, |v, value| {
        v.address = Some(value);
        Ok(())
    }),
    ("VAULT_CACERT", |v, value| {
        v.ca_cert = Some(PathBuf::from(value));
        Ok(())
    }),
    ("VAULT_CAPATH", |v, value| {
        v.ca_path = Some(PathBuf::from(value));
        Ok(())
    }),
    ("VAULT_CLIENT_CERT", |v, value| {
        v.client_cert = Some(PathBuf::from(value));
        Ok(())
    }),
    ("VAULT_CLIENT_KEY", |v, value| {
        v.client_key = Some(PathBuf::from(value));
        Ok(())
    }),
    ("VAULT_SKIP_VERIFY", |v, value| {
        v.tls_skip_verify = go_bool(&value)?;
        Ok(())
    }),
    ("VAULT_TLS_SERVER_NAME", |v, value| {
        v.tls_server_name = Some(value);
        Ok(())
    }),
    ("VAULT_NAMESPACE", |v, value| {
        v.namespace = Some(value);
        Ok(())
    }),
    // Unlike `retry { num_retries = 0 }`, which means the default, 0 here
    // means no retries, as in Vault's client.
    ("VAULT_MAX_RETRIES", |v, value| {
        v.num_retries = value
            .parse()
            .map_err(|_| format!("{value:?} is not a number of retries"))?;
        Ok(())
    }),
];

/// Applies each override that `lookup` finds set and non-empty to `vault`.
pub(super) fn apply(vault: &mut Vault, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for (name, apply) in OVERRIDES {
        if let Some(value) = lookup(name).filter(|value| !value.is_empty()) {
            apply(vault, value).map_err(|message| Error::EnvValue { name, message })?;
        }
    }
    Ok(())
}

/// A boolean as Go's `strconv.ParseBool` reads it, which Vault's client
/// uses for `VAULT_SKIP_VERIFY`: `false` turns verification on, it does not
/// count as set.
fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{value:?} is not a boolean (true or false)")),
    }
}
