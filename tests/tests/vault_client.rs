//! keyhole-agent's Vault client and logins against a real OpenBao dev server: response
//! envelopes, errors that name the path and Vault's answer, every login method, and TLS
//! with a custom CA, server name and client certificate.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use keyhole_agent::auth::Authenticator;
use keyhole_agent::config::{self, MethodKind};
use keyhole_agent::vault::{Client, Token};
use keyhole_tests::{
    Bao, BaoOptions, HOUR, TLS_SERVER_NAME, configure_approle, configure_jwt_auth, free_port,
    mint_sa_token,
};
use serde_json::{Map, Value, json};

/// A client of `bao` without a token.
fn client(bao: &Bao) -> Client {
    client_at(bao.addr(), config::Vault::default())
}

/// A client of `bao` holding the root token.
fn root(bao: &Bao) -> Client {
    let client = client(bao);
    client.set_token(Token::new(bao.root_token().to_owned()));
    client
}

/// A client of Vault at `address` with the other settings of `vault`.
fn client_at(address: &str, vault: config::Vault) -> Client {
    Client::new(&config::Vault {
        address: Some(address.to_owned()),
        ..vault
    })
    .expect("should succeed")
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn put(client: &Client, path: &str, body: Value) -> keyhole_agent::vault::Secret {
    client
        .write(path, &map(body))
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

fn method(kind: MethodKind, mount_path: &str) -> config::Method {
    config::Method {
        kind,
        mount_path: mount_path.to_owned(),
        namespace: None,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        exit_on_err: false,
        wrap_ttl: None,
    }
}

#[tokio::test]
async fn reads_kv_v2_with_envelope_and_version_query() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.kv2_put("secret", "app", json!({"password": "one"}))
        .await?;
    bao.kv2_put("secret", "app", json!({"password": "two"}))
        .await?;
    let root = root(&bao);

    let latest = root.read("secret/data/app").await.expect("should succeed");
    assert!(!latest.request_id.is_empty());
    assert_eq!(latest.lease_id, "");
    assert_eq!(latest.lease_duration, 0);
    assert_eq!(latest.data["data"]["password"], "two");
    assert_eq!(latest.data["metadata"]["version"], 2);

    let first = root
        .read("secret/data/app?version=1")
        .await
        .expect("should succeed");
    assert_eq!(first.data["data"]["password"], "one");
    assert_eq!(first.data["metadata"]["version"], 1);
    Ok(())
}

#[tokio::test]
async fn kv_v1_ttl_becomes_the_lease_duration() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.enable_secrets("kv", "kv", json!({"version": "1"}))
        .await?;
    bao.kv1_put("kv", "app", json!({"password": "p", "ttl": "1h"}))
        .await?;

    let secret = root(&bao).read("kv/app").await.expect("should succeed");
    assert_eq!(secret.lease_duration, 3600);
    assert_eq!(secret.data["password"], "p");
    Ok(())
}

#[tokio::test]
async fn lists_keys_and_an_empty_path_gives_no_keys() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    for path in ["app/db", "app/api", "app/nested/x"] {
        bao.kv2_put("secret", path, json!({"a": "1"})).await?;
    }
    let root = root(&bao);

    let keys = root
        .list("secret/metadata/app")
        .await
        .expect("should succeed");
    assert_eq!(keys, ["api", "db", "nested/"]);
    assert!(
        root.list("secret/metadata/nothing")
            .await
            .expect("should succeed")
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn missing_secret_is_not_found_naming_the_path() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let err = root(&bao)
        .read("secret/data/missing")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "not_found");
    assert_eq!(
        err.to_string(),
        "GET secret/data/missing: no secret at this path (HTTP 404)"
    );
    Ok(())
}

#[tokio::test]
async fn forbidden_read_is_permission_denied() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.kv2_put("secret", "app", json!({"password": "p"}))
        .await?;
    let client = client(&bao);
    client.set_token(Token::new(bao.create_token(&["default"], "1h").await?));

    let err = client
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "permission_denied");
    assert_eq!(
        err.to_string(),
        "GET secret/data/app: permission denied (HTTP 403)"
    );
    Ok(())
}

#[tokio::test]
async fn connection_refused_names_the_address() -> anyhow::Result<()> {
    let address = format!("http://127.0.0.1:{}", free_port()?);
    let client = client_at(&address, config::Vault::default());
    let err = client
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "connect");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach Vault at {address} (GET secret/data/app): "
        )),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
    Ok(())
}

#[tokio::test]
async fn unanswered_request_times_out() {
    // Accepts connections but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("should succeed");
    let address = format!("http://{}", listener.local_addr().expect("should succeed"));
    let _server = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let client = Client::builder(&config::Vault {
        address: Some(address.clone()),
        ..config::Vault::default()
    })
    .request_timeout(Duration::from_millis(300))
    .build()
    .expect("should succeed");
    let err = client
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "timeout");
    assert_eq!(
        err.to_string(),
        format!("request to Vault at {address} timed out (GET secret/data/app)")
    );
}

#[tokio::test]
async fn approle_login_sets_the_token_and_writes_the_sink() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.put_policy(
        "app",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    )
    .await?;
    let (role_id, secret_id) = configure_approle(&bao, "approle", "app", &["app"]).await?;
    bao.kv2_put("secret", "app", json!({"password": "p"}))
        .await?;

    let dir = tempfile::tempdir()?;
    let role_id_file = dir.path().join("role-id");
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&role_id_file, role_id)?;
    std::fs::write(&secret_id_file, secret_id)?;
    let sink = dir.path().join("token");
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::AppRole {
                role_id_file_path: role_id_file,
                secret_id_file_path: Some(secret_id_file.clone()),
                remove_secret_id_file_after_reading: true,
                secret_id_response_wrapping_path: None,
            },
            "auth/approle",
        ),
        sinks: vec![config::Sink {
            path: sink.clone(),
            mode: 0o640,
            wrap_ttl: None,
            encryption: None,
        }],
    });

    let client = client(&bao);
    let auth = authenticator
        .authenticate(&client, Some(0))
        .await
        .expect("should succeed");
    assert_eq!(auth.lease_duration, Duration::from_secs(3600));
    assert!(auth.renewable);
    assert_eq!(auth.policies, ["app", "default"]);
    assert!(!secret_id_file.exists(), "secret id file is removed");
    assert_eq!(
        std::fs::read_to_string(&sink).expect("should succeed"),
        auth.token.expose_secret()
    );
    assert_eq!(
        std::fs::metadata(&sink)
            .expect("should succeed")
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    let secret = client
        .read("secret/data/app")
        .await
        .expect("should succeed");
    assert_eq!(secret.data["data"]["password"], "p");

    // The secret id is remembered after its file is gone.
    let again = authenticator.login(&client).await.expect("should succeed");
    assert_ne!(again.token, auth.token);
    Ok(())
}

#[tokio::test]
async fn token_file_login_looks_up_the_token() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let token = bao.create_token(&["default"], "30m").await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::TokenFile {
                token_file_path: token_file,
            },
            "auth/token",
        ),
        sinks: Vec::new(),
    });

    let client = client(&bao);
    let auth = authenticator
        .authenticate(&client, Some(0))
        .await
        .expect("should succeed");
    assert_eq!(auth.token.expose_secret(), token);
    assert!(auth.lease_duration <= Duration::from_secs(1800));
    assert!(auth.lease_duration > Duration::from_secs(1700));
    assert!(auth.renewable);
    assert_eq!(auth.policies, ["default"]);
    assert_eq!(client.token(), Some(auth.token.clone()));

    let info = client.lookup_self().await.expect("should succeed");
    assert_eq!(info.accessor, auth.accessor);
    let renewed = client
        .renew_self(Some(Duration::from_secs(600)))
        .await
        .expect("should succeed");
    assert_eq!(renewed.lease_duration, Duration::from_secs(600));
    assert_eq!(renewed.token, auth.token);
    client.revoke_self().await.expect("should succeed");
    let err = client.lookup_self().await.expect_err("should fail");
    assert_eq!(err.kind(), "permission_denied");
    Ok(())
}

#[tokio::test]
async fn failing_login_reports_vaults_reason_without_the_credential() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.enable_auth("approle", "approle").await?;
    let dir = tempfile::tempdir()?;
    let role_id_file = dir.path().join("role-id");
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&role_id_file, "no-such-role")?;
    std::fs::write(&secret_id_file, "s3cr3t-id")?;
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::AppRole {
                role_id_file_path: role_id_file,
                secret_id_file_path: Some(secret_id_file),
                remove_secret_id_file_after_reading: false,
                secret_id_response_wrapping_path: None,
            },
            "auth/approle",
        ),
        sinks: Vec::new(),
    });
    let err = authenticator
        .authenticate(&client(&bao), Some(1))
        .await
        .expect_err("should fail");
    let message = err.to_string();
    assert_eq!(err.kind(), "invalid_request");
    assert_eq!(
        message,
        "auto_auth method \"approle\": PUT auth/approle/login: invalid role or secret ID (HTTP 400)"
    );
    Ok(())
}

#[tokio::test]
async fn jwt_login_with_an_rs256_token() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    configure_jwt_auth(&bao, "jwt", "app", &["default"], "vault").await?;
    let dir = tempfile::tempdir()?;
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, mint_sa_token("default", "app", "vault", HOUR))?;

    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::Jwt {
                role: "app".to_owned(),
                path: jwt_file.clone(),
                remove_jwt_after_reading: false,
            },
            "auth/jwt",
        ),
        sinks: Vec::new(),
    });
    let client = client(&bao);
    let auth = authenticator
        .authenticate(&client, Some(0))
        .await
        .expect("should succeed");
    assert_eq!(auth.lease_duration, HOUR);
    assert!(jwt_file.exists(), "the JWT file is kept");
    let info = client.lookup_self().await.expect("should succeed");
    assert_eq!(info.accessor, auth.accessor);
    Ok(())
}

#[tokio::test]
async fn issues_a_certificate_by_writing_to_pki() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    bao.enable_secrets("pki", "pki", Value::Null).await?;
    bao.write(
        "pki/root/generate/internal",
        json!({"common_name": "keyhole test root", "ttl": "24h"}),
    )
    .await?;
    bao.write(
        "pki/roles/web",
        json!({
            "allowed_domains": ["example.com"],
            "allow_subdomains": true,
            "max_ttl": "1h",
            "generate_lease": true,
        }),
    )
    .await?;
    let root = root(&bao);

    let issued = put(
        &root,
        "pki/issue/web",
        json!({"common_name": "app.example.com", "ttl": "10m"}),
    )
    .await;
    let certificate = issued.data["certificate"].as_str().expect("should succeed");
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        issued.data["private_key"]
            .as_str()
            .expect("should succeed")
            .contains("PRIVATE KEY")
    );
    assert!(
        issued.lease_id.starts_with("pki/issue/web/"),
        "{}",
        issued.lease_id
    );
    assert!(issued.lease_duration > 0 && issued.lease_duration <= 600);
    let debug = format!("{issued:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");

    root.revoke_lease(&issued.lease_id)
        .await
        .expect("should succeed");
    let err = root
        .renew_lease(&issued.lease_id, None)
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "invalid_request", "{err}");
    Ok(())
}

/// A client of Vault at `address` holding `bao`'s root token, with the other settings of
/// `vault`.
fn tls_client(bao: &Bao, address: &str, vault: config::Vault) -> Client {
    let client = client_at(address, vault);
    client.set_token(Token::new(bao.root_token().to_owned()));
    client
}

#[tokio::test]
async fn tls_with_custom_ca_server_name_and_client_certificate() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions {
        tls: true,
        ..BaoOptions::default()
    })
    .await?;
    bao.kv2_put("secret", "app", json!({"password": "p"}))
        .await?;
    let pki = bao.tls()?;
    let (tls, mtls) = (&pki.addr, &pki.mtls_addr);

    // The certificate is for TLS_SERVER_NAME, not the address's 127.0.0.1.
    let wrong_name = tls_client(
        &bao,
        tls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            ..config::Vault::default()
        },
    );
    let err = wrong_name
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "TLS with Vault at {tls} failed (GET secret/data/app): \
             invalid peer certificate: certificate not valid for name \"127.0.0.1\""
        )),
        "{err}"
    );

    let named = tls_client(
        &bao,
        tls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            tls_server_name: Some(TLS_SERVER_NAME.to_owned()),
            ..config::Vault::default()
        },
    );
    let secret = named.read("secret/data/app").await.expect("should succeed");
    assert_eq!(secret.data["data"]["password"], "p");

    // The same CA found through ca_path.
    let ca_dir = tempfile::tempdir()?;
    std::fs::copy(&pki.ca, ca_dir.path().join("ca.pem"))?;
    let through_dir = tls_client(
        &bao,
        tls,
        config::Vault {
            ca_path: Some(ca_dir.path().to_owned()),
            tls_server_name: Some(TLS_SERVER_NAME.to_owned()),
            ..config::Vault::default()
        },
    );
    assert!(through_dir.read("secret/data/app").await.is_ok());

    // Without the CA the system's roots do not trust it.
    let untrusted = tls_client(&bao, tls, config::Vault::default());
    let err = untrusted
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(
        err.to_string()
            .ends_with("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );

    let skip = tls_client(
        &bao,
        tls,
        config::Vault {
            tls_skip_verify: true,
            ..config::Vault::default()
        },
    );
    assert!(skip.read("secret/data/app").await.is_ok());

    let with_client_cert = tls_client(
        &bao,
        mtls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            tls_server_name: Some(TLS_SERVER_NAME.to_owned()),
            client_cert: Some(pki.client_cert.clone()),
            client_key: Some(pki.client_key.clone()),
            ..config::Vault::default()
        },
    );
    assert!(with_client_cert.read("secret/data/app").await.is_ok());

    let without_client_cert = tls_client(
        &bao,
        mtls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            tls_server_name: Some(TLS_SERVER_NAME.to_owned()),
            ..config::Vault::default()
        },
    );
    // With TLS 1.3 the server rejects a missing client certificate after the
    // client's side of the handshake is done, so the client sees the alert
    // or a closed connection while sending the request, not while connecting.
    let err = without_client_cert
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert!(matches!(err.kind(), "tls" | "request"), "{err}");
    assert!(err.to_string().contains(mtls.as_str()), "{err}");
    Ok(())
}
