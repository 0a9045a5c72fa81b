//! The Vault token and what Vault says about it.

use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

/// A Vault client token. Wiped from memory when dropped; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a token, taking ownership so no unwiped copy stays behind.
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    /// The token itself, for the `X-Vault-Token` header and token sinks.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The `auth` block of a login or token renewal: the token and its lease.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The client token.
    pub token: Token,
    /// The token's accessor, which names it in logs without revealing it.
    pub accessor: String,
    /// How long the token lives from now; zero for a token that never expires.
    pub lease_duration: Duration,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Policies attached to the token.
    pub policies: Vec<String>,
}

/// The wire shape of an `auth` block.
#[derive(Deserialize)]
pub(super) struct AuthBlock {
    client_token: String,
    #[serde(default)]
    accessor: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    policies: Vec<String>,
}

impl From<AuthBlock> for Auth {
    fn from(block: AuthBlock) -> Self {
        let AuthBlock {
            client_token,
            accessor,
            lease_duration,
            renewable,
            policies,
        } = block;
        Self {
            token: Token::new(client_token),
            accessor,
            lease_duration: Duration::from_secs(lease_duration),
            renewable,
            policies,
        }
    }
}

/// What `auth/token/lookup-self` says about the current token.
///
/// The lookup response also holds the token itself (`id`); it is left out.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    /// The token's accessor.
    #[serde(default)]
    pub accessor: String,
    /// Time left before the token expires; zero for a token that never expires.
    #[serde(default, deserialize_with = "seconds")]
    pub ttl: Duration,
    /// Whether the token can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// Policies attached to the token.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub policies: Vec<String>,
}

fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let token = Token::new("hvs.very-secret".to_owned());
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }

    #[test]
    fn auth_debug_shows_accessor_but_not_token() {
        let block: AuthBlock = serde_json::from_str(
            r#"{"client_token":"s.secret","accessor":"acc1","lease_duration":60,
                "renewable":true,"policies":["default","app"]}"#,
        )
        .expect("should succeed");
        let auth = Auth::from(block);
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s.secret"), "{debug}");
        assert!(debug.contains("acc1"), "{debug}");
        assert_eq!(auth.lease_duration, Duration::from_secs(60));
        assert_eq!(auth.policies, ["default", "app"]);
        assert_eq!(auth.token.expose_secret(), "s.secret");
    }

    #[test]
    fn token_info_leaves_out_the_token() {
        let info: TokenInfo = serde_json::from_str(
            r#"{"id":"s.secret","accessor":"acc1","ttl":3600,"renewable":false,"policies":null}"#,
        )
        .expect("should succeed");
        assert!(!format!("{info:?}").contains("s.secret"));
        assert_eq!(info.ttl, Duration::from_secs(3600));
        assert!(info.policies.is_empty());
    }
}
