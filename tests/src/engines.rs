//! One-call setups of the auth methods and secrets engines the end-to-end tests use.

use anyhow::Context;
use serde_json::{Value, json};

use crate::sa_token::{ISSUER, SA_PUBLIC_KEY_PEM};
use crate::{Bao, Postgres};

/// Enables the `jwt` auth method at `auth/<mount>`, trusting the test signing key
/// (`jwt_validation_pubkeys`, so OpenBao verifies tokens itself), and creates `role`:
/// `user_claim = sub`, bound to `audience`, granting `policies` with a one-hour token TTL.
pub async fn configure_jwt_auth(
    bao: &Bao,
    mount: &str,
    role: &str,
    policies: &[&str],
    audience: &str,
) -> anyhow::Result<()> {
    bao.enable_auth(mount, "jwt").await?;
    bao.write(
        &format!("auth/{mount}/config"),
        json!({ "jwt_validation_pubkeys": [SA_PUBLIC_KEY_PEM], "bound_issuer": ISSUER }),
    )
    .await
    .with_context(|| format!("configuring jwt auth at auth/{mount}"))?;
    bao.write(
        &format!("auth/{mount}/role/{role}"),
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [audience],
            "token_policies": policies,
            "token_ttl": "1h",
        }),
    )
    .await
    .with_context(|| format!("creating jwt role {role} at auth/{mount}"))
    .map(drop)
}

/// Mounts the `database` secrets engine at `database/`, connects it to `pg` as its superuser
/// (connection `postgres`, plugin `postgresql-database-plugin`) and creates `role`, whose
/// credentials at `database/creds/<role>` are login roles with `VALID UNTIL` set to the
/// lease's expiry. TTLs are Vault durations (`"30s"`, `"1h"`).
pub async fn configure_database_engine(
    bao: &Bao,
    pg: &Postgres,
    role: &str,
    default_ttl: &str,
    max_ttl: &str,
) -> anyhow::Result<()> {
    bao.enable_secrets("database", "database", Value::Null)
        .await?;
    bao.write(
        "database/config/postgres",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.connection_url_template(),
            "username": pg.superuser(),
            "password": pg.password(),
            "password_authentication": "scram-sha-256",
            "allowed_roles": "*",
            "verify_connection": true,
        }),
    )
    .await
    .with_context(|| {
        format!(
            "connecting OpenBao to postgres; postgres log:\n{}",
            pg.log()
        )
    })?;
    bao.write(
        &format!("database/roles/{role}"),
        json!({
            "db_name": "postgres",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' \
                 VALID UNTIL '{{expiration}}';",
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
            ],
            "default_ttl": default_ttl,
            "max_ttl": max_ttl,
        }),
    )
    .await
    .with_context(|| format!("creating database role {role}"))
    .map(drop)
}

/// Mounts the `pki` secrets engine at `<mount>/`, generates a root CA in it and creates
/// `role`, which issues certificates for any name (and IP SANs) up to `max_ttl`.
/// Returns the root CA certificate (PEM).
pub async fn configure_pki(
    bao: &Bao,
    mount: &str,
    role: &str,
    max_ttl: &str,
) -> anyhow::Result<String> {
    bao.write(
        &format!("sys/mounts/{mount}"),
        json!({ "type": "pki", "config": { "max_lease_ttl": "87600h" } }),
    )
    .await?;
    let root = bao
        .write(
            &format!("{mount}/root/generate/internal"),
            json!({ "common_name": "keyhole test root CA", "ttl": "87600h" }),
        )
        .await?;
    let ca = root["data"]["certificate"]
        .as_str()
        .with_context(|| format!("{mount}/root/generate/internal returned no certificate"))?
        .to_owned();
    bao.write(
        &format!("{mount}/roles/{role}"),
        json!({
            "allow_any_name": true,
            "enforce_hostnames": false,
            "allow_ip_sans": true,
            "allow_localhost": true,
            "max_ttl": max_ttl,
        }),
    )
    .await
    .with_context(|| format!("creating pki role {role} at {mount}/"))?;
    Ok(ca)
}

/// Enables the `approle` auth method at `auth/<mount>` and creates `role` granting
/// `policies`; returns its `(role_id, secret_id)`.
pub async fn configure_approle(
    bao: &Bao,
    mount: &str,
    role: &str,
    policies: &[&str],
) -> anyhow::Result<(String, String)> {
    bao.enable_auth(mount, "approle").await?;
    let role_path = format!("auth/{mount}/role/{role}");
    bao.write(
        &role_path,
        json!({ "token_policies": policies, "token_ttl": "1h" }),
    )
    .await
    .with_context(|| format!("creating approle role {role} at auth/{mount}"))?;
    let role_id = bao.read(&format!("{role_path}/role-id")).await?["data"]["role_id"]
        .as_str()
        .with_context(|| format!("{role_path}/role-id returned no role_id"))?
        .to_owned();
    let secret_id = bao
        .write(&format!("{role_path}/secret-id"), json!({}))
        .await?["data"]["secret_id"]
        .as_str()
        .with_context(|| format!("{role_path}/secret-id returned no secret_id"))?
        .to_owned();
    Ok((role_id, secret_id))
}
