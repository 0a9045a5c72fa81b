//! The harness works against the real servers: logins, dynamic credentials, certificates,
//! restarts, audit counting and the reference agent.

use std::time::Duration;

use keyhole_tests::{
    Bao, BaoOptions, Postgres, configure_approle, configure_database_engine, configure_jwt_auth,
    configure_kubernetes_auth, configure_pki, keyhole_agent_bin, mint_sa_token,
    mint_untrusted_sa_token, run_bao_agent,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn jwt_login_returns_token_with_role_policies() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.put_policy(
        "app-read",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    )
    .await?;
    configure_jwt_auth(&bao, "jwt", "app", &["app-read"], "vault").await?;
    bao.kv2_put("secret", "app", json!({ "password": "p" }))
        .await?;

    let jwt = mint_sa_token("team-a", "app", "vault", HOUR);
    let auth = bao
        .login("jwt", json!({ "role": "app", "jwt": jwt }))
        .await?;

    assert_eq!(auth["policies"], json!(["app-read", "default"]));
    let token = auth["client_token"].as_str().expect("client_token");
    let (status, secret) = bao
        .call(Method::GET, "secret/data/app", Some(token), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(secret["data"]["data"]["password"], "p");
    Ok(())
}

#[tokio::test]
async fn approle_login_returns_token_with_role_policies() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let (role_id, secret_id) = configure_approle(&bao, "approle", "app", &["app-read"]).await?;

    let auth = bao
        .login(
            "approle",
            json!({ "role_id": role_id, "secret_id": secret_id }),
        )
        .await?;

    assert_eq!(auth["policies"], json!(["app-read", "default"]));
    assert!(
        auth["client_token"]
            .as_str()
            .is_some_and(|token| !token.is_empty())
    );
    Ok(())
}

#[tokio::test]
async fn jwt_login_refuses_untrusted_key_and_wrong_audience() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    configure_jwt_auth(&bao, "jwt", "app", &["default"], "vault").await?;

    for jwt in [
        mint_untrusted_sa_token("team-a", "app", "vault", HOUR),
        mint_sa_token("team-a", "app", "not-vault", HOUR),
    ] {
        let body = json!({ "role": "app", "jwt": jwt });
        let (status, reply) = bao
            .call(Method::POST, "auth/jwt/login", None, Some(&body))
            .await?;
        assert!(status.is_client_error(), "{status}: {reply}");
        assert!(reply["auth"].is_null(), "{reply}");
    }
    Ok(())
}

#[tokio::test]
async fn kubernetes_login_goes_through_token_review_and_refuses_forged_tokens() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    bao.put_policy(
        "app-read",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    )
    .await?;
    let reviewer = configure_kubernetes_auth(
        &bao,
        "kubernetes",
        "app",
        &["app"],
        &["team-a"],
        &["app-read"],
        Some("vault"),
    )
    .await?;

    let jwt = mint_sa_token("team-a", "app", "vault", HOUR);
    let auth = bao
        .login("kubernetes", json!({ "role": "app", "jwt": jwt }))
        .await?;
    assert_eq!(auth["policies"], json!(["app-read", "default"]));
    assert_eq!(auth["metadata"]["service_account_name"], "app");
    assert_eq!(auth["metadata"]["service_account_namespace"], "team-a");
    assert_eq!((reviewer.reviews(), reviewer.authenticated()), (1, 1));

    let forged = mint_untrusted_sa_token("team-a", "app", "vault", HOUR);
    let body = json!({ "role": "app", "jwt": forged });
    let (status, reply) = bao
        .call(Method::POST, "auth/kubernetes/login", None, Some(&body))
        .await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert_eq!((reviewer.reviews(), reviewer.authenticated()), (2, 1));

    for refused in [
        mint_sa_token("team-b", "app", "vault", HOUR),
        mint_sa_token("team-a", "other", "vault", HOUR),
        mint_sa_token("team-a", "app", "not-vault", HOUR),
    ] {
        let body = json!({ "role": "app", "jwt": refused });
        let (status, reply) = bao
            .call(Method::POST, "auth/kubernetes/login", None, Some(&body))
            .await?;
        assert!(status.is_client_error(), "{status}: {reply}");
        assert!(reply["auth"].is_null(), "{reply}");
    }
    assert_eq!(
        reviewer.authenticated(),
        1,
        "no refused token may pass the review"
    );
    Ok(())
}

#[tokio::test]
async fn database_creds_log_in_and_stop_working_after_revocation() -> anyhow::Result<()> {
    let (bao, pg) = (Bao::start().await?, Postgres::start().await?);
    configure_database_engine(&bao, &pg, "app", "1h", "24h").await?;

    let creds = bao.read("database/creds/app").await?;
    let user = creds["data"]["username"].as_str().expect("username");
    let password = creds["data"]["password"].as_str().expect("password");
    assert_eq!(creds["lease_duration"], 3600);
    assert_eq!(creds["renewable"], true);
    assert!(
        pg.can_login(user, password).await?,
        "fresh credentials must log in"
    );
    assert!(
        !pg.can_login(user, "wrong").await?,
        "a wrong password must not log in"
    );

    bao.revoke_lease(creds["lease_id"].as_str().expect("lease_id"))
        .await?;
    assert!(
        !pg.can_login(user, password).await?,
        "revoked credentials must not log in"
    );
    Ok(())
}

#[tokio::test]
async fn pki_issues_certificate_signed_by_returned_ca() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let ca = configure_pki(&bao, "pki", "app", "72h").await?;

    let issued = bao
        .write(
            "pki/issue/app",
            json!({ "common_name": "app.team-a.svc", "ttl": "1h" }),
        )
        .await?;

    let certificate = issued["data"]["certificate"].as_str().expect("certificate");
    assert!(
        certificate.starts_with("-----BEGIN CERTIFICATE-----"),
        "{certificate}"
    );
    assert_ne!(certificate, ca);
    assert_eq!(issued["data"]["issuing_ca"], ca.as_str());
    assert!(
        issued["data"]["private_key"]
            .as_str()
            .is_some_and(|key| key.contains("PRIVATE KEY"))
    );
    assert!(
        issued["data"]["serial_number"]
            .as_str()
            .is_some_and(|serial| serial.contains(':'))
    );
    Ok(())
}

#[tokio::test]
async fn restart_empty_forgets_everything_on_the_same_port() -> anyhow::Result<()> {
    let mut bao = Bao::start().await?;
    let port = bao.port();
    bao.kv2_put("secret", "app", json!({ "password": "p" }))
        .await?;

    bao.stop();
    assert!(
        bao.read("secret/data/app").await.is_err(),
        "a stopped server must not answer"
    );
    bao.restart_empty().await?;

    assert_eq!(bao.port(), port);
    let (status, _) = bao
        .call(Method::GET, "secret/data/app", Some(bao.root_token()), None)
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    bao.kv2_put("secret", "app", json!({ "password": "q" }))
        .await?;
    Ok(())
}

#[tokio::test]
async fn audit_log_counts_requests_per_path() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions { audit_log: true }).await?;
    bao.kv2_put("secret", "app", json!({ "password": "p" }))
        .await?;
    for _ in 0..3 {
        bao.read("secret/data/app").await?;
    }
    assert_eq!(bao.audit_request_count("secret/data/app")?, 4);
    Ok(())
}

#[tokio::test]
async fn bao_agent_renders_kv_secret_in_init_mode() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.put_policy(
        "app-read",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    )
    .await?;
    configure_jwt_auth(&bao, "jwt", "app", &["app-read"], "vault").await?;
    bao.kv2_put("secret", "app", json!({ "password": "s3cret" }))
        .await?;
    let work = tempfile::tempdir()?;
    let token_path = work.path().join("sa-token");
    std::fs::write(&token_path, mint_sa_token("team-a", "app", "vault", HOUR))?;
    let out = work.path().join("out");
    let config = format!(
        r#"
exit_after_auth = true
vault {{
  address = "{addr}"
}}
auto_auth {{
  method "jwt" {{
    mount_path = "auth/jwt"
    config = {{
      role = "app"
      path = "{token}"
      remove_jwt_after_reading = false
    }}
  }}
}}
template {{
  destination = "{out}/password"
  contents = "{{{{ with secret \"secret/data/app\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}"
}}
"#,
        addr = bao.addr(),
        token = token_path.display(),
        out = out.display(),
    );

    let run = run_bao_agent(&config, &out).await?;

    assert!(run.status.success(), "bao agent failed: {}", run.stderr);
    assert_eq!(run.file("password")?, "s3cret");
    assert_eq!(run.files.len(), 1);
    Ok(())
}

#[test]
fn keyhole_agent_binary_is_found_next_to_the_tests() -> anyhow::Result<()> {
    let bin = keyhole_agent_bin()?;
    assert!(bin.ends_with("keyhole-agent"), "{}", bin.display());
    assert!(bin.is_file());
    Ok(())
}
