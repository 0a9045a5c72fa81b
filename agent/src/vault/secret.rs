//! A Vault response with its full envelope.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

/// A Vault logical response: the data plus the envelope that rotation needs.
///
/// Holds secret values, so its `Debug` prints only the envelope, and its
/// [`SecretData`] wipes every string when dropped.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Secret {
    /// Vault's id for the request.
    pub request_id: String,
    /// Lease id; empty for secrets without a lease (KV).
    pub lease_id: String,
    /// Lease duration in seconds.
    pub lease_duration: u64,
    /// Whether the lease can be renewed.
    pub renewable: bool,
    /// The response's `data`; empty when Vault sent none.
    #[serde(deserialize_with = "null_as_empty")]
    pub data: SecretData,
    /// Warnings Vault attached to the response.
    #[serde(deserialize_with = "null_as_empty")]
    pub warnings: Vec<String>,
    /// The token a write created (`auth/token/create`, a login path), when
    /// the response carries one.
    pub auth: Option<SecretAuth>,
}

/// The `auth` block of a logical response, with the fields templates see
/// as `.Auth`. The token is wiped when dropped.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct SecretAuth {
    /// The token.
    #[serde(default)]
    pub client_token: String,
    /// The token's accessor.
    #[serde(default)]
    pub accessor: String,
    /// The token's policies.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub policies: Vec<String>,
    /// The token's metadata; `None` when Vault sent none (Go's nil map).
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// The token's lifetime in seconds.
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    #[serde(default)]
    pub renewable: bool,
}

impl Drop for SecretAuth {
    fn drop(&mut self) {
        self.client_token.zeroize();
        self.metadata
            .iter_mut()
            .flat_map(Map::values_mut)
            .for_each(wipe);
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("request_id", &self.request_id)
            .field("lease_id", &self.lease_id)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("data", &format_args!("<{} keys redacted>", self.data.len()))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The `data` of a Vault response. Every string in it is overwritten with
/// zeros when it is dropped.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct SecretData(pub Map<String, Value>);

impl std::ops::Deref for SecretData {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        self.0.values_mut().for_each(wipe);
    }
}

/// Overwrites every string inside `value` with zeros.
pub(super) fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
