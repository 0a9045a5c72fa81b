//! The `VAULT_*` environment variables that override the `vault` stanza and
//! the `disable_*` lists, as in Vault Agent.
//!
//! vault-k8s sets them on the agent container when the config comes from a
//! ConfigMap (`agent-configmap`), whose `vault` stanza may be absent: the
//! agent then connects where the annotations say. As in Vault Agent, a
//! variable wins over the config; keyhole ignores an empty one.

use std::path::PathBuf;

use super::{Connections, Error, Parts, Result, Vault};

/// Environment variable that overrides `vault.address`, as in Vault Agent.
pub const VAULT_ADDR_ENV: &str = "VAULT_ADDR";

/// The `vault` field a variable sets, by the kind of value it takes.
enum Field {
    /// A string, as is.
    Text(fn(&mut Vault) -> &mut Option<String>),
    /// A file or directory path.
    Path(fn(&mut Vault) -> &mut Option<PathBuf>),
    /// A boolean as Go's `strconv.ParseBool` reads it.
    Bool(fn(&mut Vault) -> &mut bool),
    /// A number of retries. Unlike `retry { num_retries = 0 }`, which means
    /// the default, 0 here means no retries, as in Vault's client.
    Retries(fn(&mut Vault) -> &mut u32),
}

/// Every variable the agent reads over the config, and the field it sets.
const OVERRIDES: [(&str, Field); 9] = [
    (VAULT_ADDR_ENV, Field::Text(|v| &mut v.address)),
    ("VAULT_CACERT", Field::Path(|v| &mut v.ca_cert)),
    ("VAULT_CAPATH", Field::Path(|v| &mut v.ca_path)),
    ("VAULT_CLIENT_CERT", Field::Path(|v| &mut v.client_cert)),
    ("VAULT_CLIENT_KEY", Field::Path(|v| &mut v.client_key)),
    ("VAULT_SKIP_VERIFY", Field::Bool(|v| &mut v.tls_skip_verify)),
    (
        "VAULT_TLS_SERVER_NAME",
        Field::Text(|v| &mut v.tls_server_name),
    ),
    ("VAULT_NAMESPACE", Field::Text(|v| &mut v.namespace)),
    ("VAULT_MAX_RETRIES", Field::Retries(|v| &mut v.num_retries)),
];

/// The list of [`Connections`] a variable replaces.
type PartsField = fn(&mut Connections) -> &mut Parts;

/// The variables that replace `disable_idle_connections` and
/// `disable_keep_alives`: comma-separated part names, in any case.
const CONNECTION_OVERRIDES: [(&str, PartsField); 2] = [
    ("VAULT_AGENT_DISABLE_IDLE_CONNECTIONS", |c| &mut c.no_idle),
    ("VAULT_AGENT_DISABLE_KEEP_ALIVES", |c| &mut c.no_keep_alive),
];

/// The names of the variables the agent reads over its config.
pub fn env_names() -> impl Iterator<Item = &'static str> {
    OVERRIDES
        .iter()
        .map(|(name, _)| *name)
        .chain(CONNECTION_OVERRIDES.iter().map(|(name, _)| *name))
}

/// Applies each override that `lookup` finds set and non-empty to `vault`.
pub(super) fn apply(vault: &mut Vault, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for (name, field) in &OVERRIDES {
        let Some(value) = lookup(name).filter(|value| !value.is_empty()) else {
            continue;
        };
        let invalid = |message| Error::EnvValue { name, message };
        match field {
            Field::Text(slot) => *slot(vault) = Some(value),
            Field::Path(slot) => *slot(vault) = Some(PathBuf::from(value)),
            Field::Bool(slot) => *slot(vault) = go_bool(&value).map_err(invalid)?,
            Field::Retries(slot) => {
                *slot(vault) = value
                    .parse()
                    .map_err(|_| invalid(format!("{value:?} is not a number of retries")))?;
            }
        }
    }
    Ok(())
}

/// Applies each of [`CONNECTION_OVERRIDES`] that `lookup` finds set and
/// non-empty to `connections`, replacing what the config listed.
pub(super) fn apply_connections(
    connections: &mut Connections,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    for (name, field) in &CONNECTION_OVERRIDES {
        let Some(value) = lookup(name).filter(|value| !value.is_empty()) else {
            continue;
        };
        let value = value.to_lowercase();
        *field(connections) =
            Parts::from_names(value.split(',').map(str::trim)).map_err(|unknown| {
                Error::EnvValue {
                    name,
                    message: format!(
                        "{unknown:?} is not a part of the agent (auto-auth, caching, proxying, templating)"
                    ),
                }
            })?;
    }
    Ok(())
}

/// A boolean as Go's `strconv.ParseBool` reads it, as Vault's client reads
/// `VAULT_SKIP_VERIFY`: `false` keeps verification on, it does not count as
/// set.
fn go_bool(value: &str) -> Result<bool, String> {
    super::parse_bool(value).ok_or_else(|| format!("{value:?} is not a boolean (true or false)"))
}
