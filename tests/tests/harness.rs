//! The harness works against the real servers: logins, dynamic credentials, certificates,
//! restarts, audit counting and the reference agent.

use std::path::Path;
use std::time::Duration;

use keyhole_tests::{
    API_SERVER_AUDIENCE, AgentConfig, AutoAuth, Bao, BaoOptions, HOUR, Postgres, Sink, Template,
    configure_approle, configure_database_engine, configure_jwt_auth, configure_kubernetes_auth,
    configure_pki, keyhole_agent_bin, mint_sa_token, mint_untrusted_sa_token, put_kubernetes_role,
    run_bao_agent,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

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

    // A role without an audience has the apiserver check the token against the
    // token's own audiences, so it takes a token for the apiserver and one for
    // `vault` alike. A role that names the apiserver's audience, as Vault asks
    // roles to, refuses a token for `vault`.
    put_kubernetes_role(&bao, "kubernetes", "any", &["app"], &["team-a"], &[], None).await?;
    put_kubernetes_role(
        &bao,
        "kubernetes",
        "apiserver",
        &["app"],
        &["team-a"],
        &[],
        Some(API_SERVER_AUDIENCE),
    )
    .await?;
    for (role, audience, accepted) in [
        ("any", API_SERVER_AUDIENCE, true),
        ("any", "vault", true),
        ("apiserver", API_SERVER_AUDIENCE, true),
        ("apiserver", "vault", false),
    ] {
        let body = json!({ "role": role, "jwt": mint_sa_token("team-a", "app", audience, HOUR) });
        let (status, reply) = bao
            .call(Method::POST, "auth/kubernetes/login", None, Some(&body))
            .await?;
        assert_eq!(
            status.is_success(),
            accepted,
            "role {role}, token for {audience}: {status}: {reply}"
        );
    }
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
    let bao = Bao::start_with(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
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
    let config = AgentConfig::new(bao.addr())
        .exit_after_auth(true)
        .auto_auth(
            AutoAuth::jwt("app", &token_path)
                .mount_path("auth/jwt")
                .remove_jwt_after_reading(false),
        )
        .template(Template::new(
            out.join("password"),
            "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}",
        ));

    let run = run_bao_agent(&config, &out, &[]).await?;

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

#[test]
fn agent_config_writes_every_setting_as_keyhole_agent_reads_it() -> anyhow::Result<()> {
    use keyhole_agent::config::{self, MethodKind, TemplateSource};

    let metrics = "127.0.0.1:9102".parse()?;
    let contents = "quotes \" and \\ backslash\n\ttab, ünïcode {{ \"a\" }}\n";
    let text = AgentConfig::new("http://127.0.0.1:8200")
        .ca_cert("/run/ca.pem", "vault.test")
        .client_cert("/run/client.pem", "/run/client-key.pem")
        .num_retries(2)
        .exit_after_auth(true)
        .pid_file("/run/agent.pid")
        .auto_auth(
            AutoAuth::jwt("app", "/run/jwt")
                .mount_path("auth/k8s")
                .backoff(Duration::from_millis(250), Duration::from_secs(3))
                .remove_jwt_after_reading(false)
                .sink(Sink::file("/run/token").mode(0o600))
                .sink(Sink::file("/run/token-2")),
        )
        .template(
            Template::new("/out/a", contents)
                .perms(0o640)
                .command(["sh", "-c", "echo \"changed\""])
                .error_on_missing_key(true)
                .delimiters("[[", "]]")
                .create_dest_dirs(true),
        )
        .templates([Template::from_file("/out/b", "/in/b.tmpl")])
        .static_secret_render_interval(Duration::from_millis(1500))
        .exit_on_retry_failure(true)
        .metrics_listen(metrics)
        .ready_file("/run/ready")
        .revoke_on_shutdown(true)
        .to_string();
    let parsed = config::AgentConfig::from_hcl(&text)?;

    assert_eq!(
        parsed.vault.address.as_deref(),
        Some("http://127.0.0.1:8200")
    );
    assert_eq!(parsed.vault.ca_cert, Some("/run/ca.pem".into()));
    assert_eq!(parsed.vault.tls_server_name.as_deref(), Some("vault.test"));
    assert_eq!(parsed.vault.client_cert, Some("/run/client.pem".into()));
    assert_eq!(parsed.vault.client_key, Some("/run/client-key.pem".into()));
    assert_eq!(parsed.vault.num_retries, 2);
    assert!(parsed.exit_after_auth);
    assert_eq!(parsed.pid_file, Some("/run/agent.pid".into()));
    let auto_auth = parsed.auto_auth.expect("auto_auth");
    assert_eq!(
        auto_auth.method.kind,
        MethodKind::Jwt {
            role: "app".to_owned(),
            path: "/run/jwt".into(),
            remove_jwt_after_reading: false,
        }
    );
    assert_eq!(auto_auth.method.mount_path, "auth/k8s");
    assert_eq!(auto_auth.method.min_backoff, Duration::from_millis(250));
    assert_eq!(auto_auth.method.max_backoff, Duration::from_secs(3));
    assert_eq!(
        auto_auth
            .sinks
            .iter()
            .map(|sink| (sink.path.to_str(), sink.mode))
            .collect::<Vec<_>>(),
        [(Some("/run/token"), 0o600), (Some("/run/token-2"), 0o640)],
        "an unset mode is Vault Agent's default 0640"
    );
    let [a, b] = &parsed.templates[..] else {
        panic!("two templates, in order: {:?}", parsed.templates);
    };
    assert_eq!(a.destination, Path::new("/out/a"));
    assert_eq!(a.source, TemplateSource::Contents(contents.to_owned()));
    assert_eq!(a.perms, 0o640);
    assert_eq!(
        a.command.as_deref(),
        Some(&["sh", "-c", "echo \"changed\""].map(str::to_owned)[..])
    );
    assert!(a.error_on_missing_key);
    assert_eq!((&*a.left_delimiter, &*a.right_delimiter), ("[[", "]]"));
    assert!(a.create_dest_dirs);
    assert_eq!(b.destination, Path::new("/out/b"));
    assert_eq!(b.source, TemplateSource::File("/in/b.tmpl".into()));
    assert_eq!(
        parsed.template_config.static_secret_render_interval,
        Duration::from_millis(1500)
    );
    assert!(parsed.template_config.exit_on_retry_failure);
    assert_eq!(parsed.keyhole.metrics_listen, Some(metrics));
    assert_eq!(parsed.keyhole.ready_file, Some("/run/ready".into()));
    assert!(parsed.keyhole.revoke_on_shutdown);

    for (auto_auth, kind) in [
        (
            AutoAuth::kubernetes("app", "/run/sa"),
            MethodKind::Kubernetes {
                role: "app".to_owned(),
                token_path: "/run/sa".into(),
            },
        ),
        (
            AutoAuth::approle("/run/role-id", "/run/secret-id")
                .remove_secret_id_file_after_reading(false),
            MethodKind::AppRole {
                role_id_file_path: "/run/role-id".into(),
                secret_id_file_path: Some("/run/secret-id".into()),
                remove_secret_id_file_after_reading: false,
                secret_id_response_wrapping_path: None,
            },
        ),
        (
            AutoAuth::token_file("/run/vault-token"),
            MethodKind::TokenFile {
                token_file_path: "/run/vault-token".into(),
            },
        ),
        (
            AutoAuth::cert()
                .cert_name("web")
                .cert_files("/run/tls.crt", "/run/tls.key")
                .cert_reload(true),
            MethodKind::Cert {
                name: Some("web".to_owned()),
                ca_cert: None,
                client_cert: Some("/run/tls.crt".into()),
                client_key: Some("/run/tls.key".into()),
                reload: true,
            },
        ),
    ] {
        let text = AgentConfig::new("http://127.0.0.1:8200")
            .auto_auth(auto_auth)
            .template(Template::new("/out/a", "a"))
            .to_string();
        let parsed = config::AgentConfig::from_hcl(&text)?;
        assert_eq!(parsed.auto_auth.expect("auto_auth").method.kind, kind);
    }
    Ok(())
}
