//! keyhole-agent in init mode (`exit_after_auth = true`) against a real OpenBao:
//! every login method, every kind of secret, the files it leaves and the exit
//! codes and messages when something is wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyhole_tests::{
    AgentConfig, AgentRun, AutoAuth, Bao, BaoOptions, HOUR, Postgres, Sink, TLS_SERVER_NAME,
    Template, configure_approle, configure_database_engine, configure_jwt_auth,
    configure_kubernetes_auth, configure_pki, mint_sa_token, run_bao_agent, run_keyhole_agent,
};
use reqwest::Method;
use ring::agreement::{self, EphemeralPrivateKey, X25519};
use ring::{aead, hkdf};
use serde_json::{Value, json};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("file exists")
        .permissions()
        .mode()
        & 0o7777
}

fn assert_exit(run: &AgentRun, code: i32) {
    assert_eq!(
        run.status.code(),
        Some(code),
        "exit status; stderr:\n{}",
        run.stderr
    );
}

/// A token_file login with a token holding `policies`, for tests about
/// something other than login.
async fn token_file_auth(bao: &Bao, dir: &Path, policies: &[&str]) -> anyhow::Result<AutoAuth> {
    let token = bao.create_token(policies, "1h").await?;
    let file = dir.join("vault-token-in");
    std::fs::write(&file, token)?;
    Ok(AutoAuth::token_file(file))
}

/// An init-mode config talking to `addr`.
fn init_config(addr: &str) -> AgentConfig {
    AgentConfig::new(addr).exit_after_auth(true)
}

async fn app_policy(bao: &Bao) -> anyhow::Result<()> {
    bao.put_policy(
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
path "pki/issue/app" { capabilities = ["update"] }"#,
    )
    .await?;
    bao.kv2_put(
        "secret",
        "app/db",
        json!({ "username": "orders", "password": "kv-s3cret-value" }),
    )
    .await?;
    Ok(())
}

const DB_TEMPLATE: &str = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.username }}:{{ .Data.data.password }}{{ end }}\n";

#[tokio::test]
async fn jwt_login_renders_kv2_secret_with_exact_modes() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    configure_jwt_auth(&bao, "jwt", "app", &["app"], "vault").await?;
    let dir = tempfile::tempdir()?;
    let jwt = dir.path().join("jwt");
    std::fs::write(&jwt, mint_sa_token("team", "app", "vault", HOUR))?;
    let out = dir.path().join("out");
    let sink = out.join("token");
    let config = init_config(bao.addr())
        .auto_auth(AutoAuth::jwt("app", &jwt).sink(Sink::file(&sink).mode(0o600)))
        .template(Template::new(out.join("db"), DB_TEMPLATE).perms(0o640));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:kv-s3cret-value\n");
    assert_eq!(mode(&out.join("db")), 0o640);
    assert_eq!(mode(&sink), 0o600);
    let (status, _) = bao
        .call(
            reqwest::Method::GET,
            "auth/token/lookup-self",
            Some(run.file("token")?.as_str()),
            None,
        )
        .await?;
    assert!(status.is_success(), "the sink holds a valid Vault token");
    assert!(
        !jwt.exists(),
        "remove_jwt_after_reading defaults to true, as in Vault Agent"
    );
    Ok(())
}

#[tokio::test]
async fn kubernetes_login_goes_through_token_review() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let reviewer = configure_kubernetes_auth(
        &bao,
        "kubernetes",
        "app",
        &["app"],
        &["team"],
        &["app"],
        Some("vault"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let sa_token = dir.path().join("sa-token");
    std::fs::write(&sa_token, mint_sa_token("team", "app", "vault", HOUR))?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr())
        .auto_auth(AutoAuth::kubernetes("app", &sa_token).mount_path("auth/kubernetes"))
        .template(Template::new(out.join("db"), DB_TEMPLATE));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:kv-s3cret-value\n");
    assert_eq!(reviewer.reviews(), 1, "one login, one TokenReview");
    assert_eq!(reviewer.authenticated(), 1);
    assert!(sa_token.exists(), "the projected token is never removed");
    Ok(())
}

#[tokio::test]
async fn approle_login_renders() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let (role_id, secret_id) = configure_approle(&bao, "approle", "app", &["app"]).await?;
    let dir = tempfile::tempdir()?;
    let role_file = dir.path().join("role-id");
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&role_file, role_id)?;
    std::fs::write(&secret_file, secret_id)?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr())
        .auto_auth(
            AutoAuth::approle(&role_file, &secret_file).remove_secret_id_file_after_reading(false),
        )
        .template(Template::new(out.join("db"), DB_TEMPLATE));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:kv-s3cret-value\n");
    assert!(secret_file.exists());
    Ok(())
}

#[tokio::test]
async fn approle_unwraps_a_response_wrapped_secret_id_as_bao_agent_does() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let (role_id, _) = configure_approle(&bao, "approle", "app", &["app"]).await?;
    let dir = tempfile::tempdir()?;
    let role_file = dir.path().join("role-id");
    std::fs::write(&role_file, role_id)?;
    let creation_path = "auth/approle/role/app/secret-id";
    let config = |secret_file: &Path, out: &Path| {
        init_config(bao.addr())
            .auto_auth(
                AutoAuth::approle(&role_file, secret_file)
                    .secret_id_response_wrapping_path(creation_path),
            )
            .template(Template::new(out.join("db"), DB_TEMPLATE))
    };

    // Each agent gets its own wrapping token: unwrapping uses it up.
    let mut rendered = Vec::new();
    for agent in ["bao", "keyhole"] {
        let secret_file = dir.path().join(format!("secret-id-{agent}"));
        std::fs::write(
            &secret_file,
            bao.write_wrapped(creation_path, json!({}), "5m").await?,
        )?;
        let out = dir.path().join(agent);
        let config = config(&secret_file, &out);
        let run = if agent == "bao" {
            run_bao_agent(&config, &out, &[]).await?
        } else {
            run_keyhole_agent(&config, &out, &[]).await?
        };
        assert_exit(&run, 0);
        assert!(
            !secret_file.exists(),
            "{agent}: removed after reading, the default"
        );
        rendered.push(run.file("db")?);
    }
    assert_eq!(rendered, ["orders:kv-s3cret-value\n"; 2]);

    // A token wrapping something else, created at another path, is refused.
    let secret_file = dir.path().join("secret-id-elsewhere");
    std::fs::write(
        &secret_file,
        bao.write_wrapped("sys/wrapping/wrap", json!({"secret_id": "chosen"}), "5m")
            .await?,
    )?;
    let out = dir.path().join("elsewhere");
    let run = run_keyhole_agent(
        config(&secret_file, &out).num_retries(1).auto_auth(
            AutoAuth::approle(&role_file, &secret_file)
                .secret_id_response_wrapping_path(creation_path)
                .backoff(Duration::from_millis(100), Duration::from_millis(100)),
        ),
        &out,
        &[],
    )
    .await?;
    assert_exit(&run, 1);
    assert!(
        run.stderr.contains(&format!(
            "the token was created at \"sys/wrapping/wrap\", not at secret_id_response_wrapping_path \"{creation_path}\""
        )),
        "{}",
        run.stderr
    );
    assert!(!out.join("db").exists());
    Ok(())
}

#[tokio::test]
async fn database_credentials_work_and_keep_their_lease() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let pg = Postgres::start().await?;
    configure_database_engine(&bao, &pg, "app", "1h", "24h").await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let contents = "{{ with secret \"database/creds/app\" }}{{ .Data.username }}\n{{ .Data.password }}\n{{ .LeaseID }}\n{{ .LeaseDuration }}\n{{ .Renewable }}\n{{ end }}";
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .template(Template::new(out.join("db"), contents));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    let text = run.file("db")?;
    let lines: Vec<&str> = text.lines().collect();
    let [user, password, lease_id, duration, renewable] = lines[..] else {
        panic!("unexpected render: {} lines", lines.len());
    };
    assert!(
        pg.can_login(user, password).await?,
        "the credentials log in"
    );
    assert!(lease_id.starts_with("database/creds/app/"), "{lease_id}");
    assert_eq!(duration, "3600");
    assert_eq!(renewable, "true");
    let lease = bao.lookup_lease(lease_id).await?;
    assert_eq!(lease["renewable"], json!(true));
    assert_eq!(
        lease["id"],
        json!(lease_id),
        "OpenBao knows the lease the agent holds"
    );
    Ok(())
}

#[tokio::test]
async fn pki_issue_renders_the_issued_certificate() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    configure_pki(&bao, "pki", "app", "72h").await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let contents = "{{ with secret \"pki/issue/app\" \"common_name=app.example.com\" \"ttl=1h\" }}{{ .Data.serial_number }}\n{{ .Data.certificate }}\n{{ .Data.private_key }}\n{{ end }}";
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .template(Template::new(out.join("tls.pem"), contents));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    let text = run.file("tls.pem")?;
    let (serial, pem) = text.split_once('\n').expect("serial line");
    let issued = bao.read(&format!("pki/cert/{serial}")).await?;
    let certificate = issued["data"]["certificate"].as_str().expect("certificate");
    assert!(
        pem.starts_with(certificate),
        "the rendered certificate is the one Vault issued"
    );
    assert!(
        pem.contains("-----BEGIN RSA PRIVATE KEY-----")
            || pem.contains("-----BEGIN PRIVATE KEY-----")
    );
    Ok(())
}

#[tokio::test]
async fn each_path_is_fetched_once_per_render_even_when_shared() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions {
        audit_log: true,
        ..BaoOptions::default()
    })
    .await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .templates((0..5).map(|i| Template::new(out.join(format!("copy-{i}")), DB_TEMPLATE)));
    let before = bao.audit_request_count("secret/data/app/db")?;
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    for i in 0..5 {
        assert_eq!(run.file(format!("copy-{i}"))?, "orders:kv-s3cret-value\n");
    }
    assert_eq!(bao.audit_request_count("secret/data/app/db")? - before, 1);
    Ok(())
}

#[tokio::test]
async fn command_runs_only_when_the_file_changes() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let log = dir.path().join("command.log");
    let append = format!("echo ran >> {}", log.display());
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .template(Template::new(out.join("db"), DB_TEMPLATE).command([
            "sh",
            "-c",
            append.as_str(),
        ]));
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_exit(&run_keyhole_agent(&config, &out, &[]).await?, 0);
    assert_eq!(lines(), 1, "first render runs the command");
    assert_exit(&run_keyhole_agent(&config, &out, &[]).await?, 0);
    assert_eq!(lines(), 1, "unchanged bytes run no command");
    bao.kv2_put(
        "secret",
        "app/db",
        json!({ "username": "orders", "password": "rotated" }),
    )
    .await?;
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:rotated\n");
    assert_eq!(lines(), 2, "a changed file runs the command again");
    Ok(())
}

#[tokio::test]
async fn shell_command_runs_and_its_exit_status_is_logged_without_its_output() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let marker = dir.path().join("marker");
    // A vault-k8s `agent-inject-command` string: one entry of several words, so it runs
    // through the shell, with a substitution, a redirection and a trailing newline.
    let script = format!(
        "echo \"pid $(echo 42)\" > {}; echo printed-by-the-command; echo oops >&2\n",
        marker.display()
    );
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .template(Template::new(out.join("db"), DB_TEMPLATE).command([script.as_str()]))
        .template(Template::new(out.join("copy"), DB_TEMPLATE).command(["exit 3"]));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(std::fs::read_to_string(&marker)?, "pid 42\n");
    let logged = |destination: &str, message: &str, status: &str| {
        run.stderr.lines().any(|line| {
            line.contains(message)
                && line.contains(&format!("destination={}", out.join(destination).display()))
                && line.contains(&format!("status={status}"))
                && line.contains("elapsed=")
        })
    };
    assert!(
        logged("db", "template command succeeded", "exit status: 0"),
        "{}",
        run.stderr
    );
    assert!(
        logged("copy", "template command failed", "exit status: 3"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("printed-by-the-command"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("oops"), "{}", run.stderr);
    assert!(
        !run.stdout.contains("printed-by-the-command"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test]
async fn configmap_style_config_connects_where_vault_env_variables_say() -> anyhow::Result<()> {
    let bao = Bao::start_with(BaoOptions {
        tls: true,
        ..BaoOptions::default()
    })
    .await?;
    app_policy(&bao).await?;
    let tls = bao.tls()?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let token = dir.path().join("vault-token-in");
    std::fs::write(&token, bao.create_token(&["app"], "1h").await?)?;
    // What an `agent-configmap` config often is: no `vault` stanza at all, so the
    // address and TLS settings come only from the variables vault-k8s sets. The
    // listener wants a client certificate and has a certificate for another name
    // than 127.0.0.1, so each variable has to be honoured for the login to work.
    let config = format!(
        r#"exit_after_auth = true
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{token}" }}
  }}
  sink "file" {{
    config = {{ path = "{sink}" }}
  }}
}}
template {{
  destination = "{destination}"
  contents    = "{contents}"
}}
"#,
        token = token.display(),
        sink = out.join("token").display(),
        destination = out.join("db").display(),
        contents = DB_TEMPLATE.replace('"', "\\\"").replace('\n', "\\n"),
    );
    let ca = tls.ca.display().to_string();
    let client_cert = tls.client_cert.display().to_string();
    let client_key = tls.client_key.display().to_string();
    let env = [
        ("VAULT_ADDR", tls.mtls_addr.as_str()),
        ("VAULT_CACERT", ca.as_str()),
        ("VAULT_CLIENT_CERT", client_cert.as_str()),
        ("VAULT_CLIENT_KEY", client_key.as_str()),
        ("VAULT_TLS_SERVER_NAME", TLS_SERVER_NAME),
        ("VAULT_SKIP_VERIFY", "false"),
        ("VAULT_MAX_RETRIES", "1"),
    ];
    let run = run_keyhole_agent(&config, &out, &env).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:kv-s3cret-value\n");
    Ok(())
}

#[tokio::test]
async fn init_mode_failures_exit_1_naming_template_path_and_reason() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let ok = out.join("ok");
    let denied = out.join("denied");
    let missing = out.join("missing");
    let config = init_config(bao.addr())
        .auto_auth(token_file_auth(&bao, dir.path(), &["app"]).await?)
        .template(Template::new(&ok, DB_TEMPLATE))
        .template(Template::new(
            &denied,
            "{{ with secret \"secret/data/other/db\" }}{{ .Data.data.password }}{{ end }}",
        ))
        .template(Template::new(
            &missing,
            "{{ with secret \"secret/data/app/nope\" }}{{ .Data.data.password }}{{ end }}",
        ));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 1);
    let denied_line = run
        .stderr
        .lines()
        .find(|l| l.contains(&denied.display().to_string()))
        .unwrap_or_else(|| panic!("no line names {}:\n{}", denied.display(), run.stderr));
    assert!(
        denied_line.contains("secret/data/other/db"),
        "{denied_line}"
    );
    assert!(
        denied_line.contains("permission denied (HTTP 403)"),
        "{denied_line}"
    );
    let missing_line = run
        .stderr
        .lines()
        .find(|l| l.contains(&missing.display().to_string()))
        .unwrap_or_else(|| panic!("no line names {}:\n{}", missing.display(), run.stderr));
    assert!(
        missing_line.contains("secret/data/app/nope"),
        "{missing_line}"
    );
    assert!(missing_line.contains("HTTP 404"), "{missing_line}");
    assert!(
        !denied.exists() && !missing.exists(),
        "failed templates write nothing"
    );
    assert_eq!(run.file("ok")?, "orders:kv-s3cret-value\n");
    Ok(())
}

#[tokio::test]
async fn template_syntax_error_exits_before_login_with_line_and_column() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let destination = out.join("broken");
    // No Vault at all: the template is rejected before any login.
    let config = init_config("http://127.0.0.1:9")
        .auto_auth(AutoAuth::token_file("/nonexistent"))
        .template(Template::new(
            &destination,
            "line one\n{{ with secret \"secret/data/app\" }}{{ .Data.data.password }\n",
        ));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 1);
    assert!(
        run.stderr.contains(&format!(
            "template {}: {}:2:",
            destination.display(),
            destination.display()
        )),
        "names the template with its line:\n{}",
        run.stderr
    );
    Ok(())
}

#[tokio::test]
async fn unreachable_vault_gives_up_after_bounded_retries() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let token = dir.path().join("token");
    std::fs::write(&token, "s.unused")?;
    let addr = format!("http://127.0.0.1:{}", keyhole_tests::free_port()?);
    let config = init_config(&addr)
        .num_retries(2)
        .auto_auth(
            AutoAuth::token_file(&token)
                .backoff(Duration::from_millis(100), Duration::from_millis(200)),
        )
        .template(Template::new(out.join("db"), DB_TEMPLATE));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 1);
    assert!(
        run.stderr
            .contains(&format!("cannot reach Vault at {addr}")),
        "{}",
        run.stderr
    );
    Ok(())
}

#[tokio::test]
async fn secret_values_never_reach_the_logs_even_at_trace() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let pg = Postgres::start().await?;
    configure_database_engine(&bao, &pg, "app", "1h", "24h").await?;
    configure_pki(&bao, "pki", "app", "72h").await?;
    app_policy(&bao).await?;
    configure_jwt_auth(&bao, "jwt", "app", &["app"], "vault").await?;
    let dir = tempfile::tempdir()?;
    let jwt_text = mint_sa_token("team", "app", "vault", HOUR);
    let jwt = dir.path().join("jwt");
    std::fs::write(&jwt, &jwt_text)?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr())
        .auto_auth(
            AutoAuth::jwt("app", &jwt)
                .remove_jwt_after_reading(false)
                .sink(Sink::file(out.join("token"))),
        )
        .template(Template::new(out.join("kv"), DB_TEMPLATE))
        .template(Template::new(
            out.join("pg"),
            "{{ with secret \"database/creds/app\" }}{{ .Data.password }}{{ end }}",
        ))
        .template(Template::new(
            out.join("key"),
            "{{ with secret \"pki/issue/app\" \"common_name=a.example.com\" }}{{ .Data.private_key }}{{ end }}",
        ));
    let run = run_keyhole_agent(&config, &out, &[("VAULT_LOG_LEVEL", "trace")]).await?;
    assert_exit(&run, 0);
    let logs = format!("{}{}", run.stdout, run.stderr);
    assert!(logs.lines().count() > 20, "trace logging is on:\n{logs}");
    let key = run.file("key")?;
    let key_body = key.lines().nth(1).expect("a PEM body line");
    let secrets = [
        ("KV password", "kv-s3cret-value".to_owned()),
        ("database password", run.file("pg")?),
        ("private key", key_body.to_owned()),
        ("Vault token", run.file("token")?),
        ("service-account JWT", jwt_text),
    ];
    for (what, value) in secrets {
        assert!(!value.is_empty(), "{what} was rendered");
        assert!(!logs.contains(&value), "the {what} appears in the logs");
    }
    Ok(())
}

/// A reader's X25519 key pair, its public half written to `path` in Vault's
/// `dh_path` format. ring's keys serve one agreement: one reader per sink.
fn dh_reader(path: &Path) -> anyhow::Result<EphemeralPrivateKey> {
    let reader = EphemeralPrivateKey::generate(&X25519, &ring::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating an X25519 key"))?;
    let public = reader
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("computing the public key"))?;
    std::fs::write(
        path,
        json!({ "curve25519_public_key": STANDARD.encode(public.as_ref()) }).to_string(),
    )?;
    Ok(reader)
}

/// Opens Vault's encrypted sink envelope as Vault's `dhutil` does: X25519,
/// then HKDF-SHA256 (salt the lower public key, info the higher) when the
/// key is derived, then AES-256-GCM with `aad`.
fn open_envelope(
    envelope: &Value,
    reader: EphemeralPrivateKey,
    derive_key: bool,
    aad: &str,
) -> anyhow::Result<Vec<u8>> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        let text = envelope[name]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no {name}"))?;
        Ok(STANDARD.decode(text)?)
    };
    let writer = field("curve25519_public_key")?;
    let ours = reader
        .compute_public_key()
        .map_err(|_| anyhow::anyhow!("public key"))?
        .as_ref()
        .to_vec();
    let peer = agreement::UnparsedPublicKey::new(&X25519, writer.clone());
    let key = agreement::agree_ephemeral(reader, &peer, |secret| {
        let mut key = [0u8; 32];
        if derive_key {
            let (salt, info) = if ours < writer {
                (&ours, &writer)
            } else {
                (&writer, &ours)
            };
            hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
                .extract(secret)
                .expand(&[info], Len32)
                .and_then(|okm| okm.fill(&mut key))
                .map(|()| key)
        } else {
            key.copy_from_slice(secret);
            Ok(key)
        }
    })
    .map_err(|_| anyhow::anyhow!("X25519 agreement"))?
    .map_err(|_| anyhow::anyhow!("HKDF"))?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, &key).map_err(|_| anyhow::anyhow!("AES key"))?,
    );
    let nonce: [u8; 12] = field("nonce")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the nonce is not 12 bytes"))?;
    let mut payload = field("encrypted_payload")?;
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad.as_bytes()),
            &mut payload,
        )
        .map_err(|_| anyhow::anyhow!("the envelope does not open"))?;
    Ok(plain.to_vec())
}

/// The keys of a JSON object in the order the text has them.
fn key_order(text: &str) -> Vec<String> {
    let object: serde_json::Map<String, Value> = serde_json::from_str(text).expect("an object");
    let mut keys: Vec<(usize, String)> = object
        .keys()
        .map(|key| {
            (
                text.find(&format!("\"{key}\":")).expect("key in text"),
                key.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, key)| key).collect()
}

#[tokio::test]
async fn a_wrapped_login_leaves_its_wrap_info_in_the_sink_as_bao_agent_does() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let (role_id, secret_id) = configure_approle(&bao, "approle", "app", &["app"]).await?;
    let dir = tempfile::tempdir()?;
    let role_file = dir.path().join("role-id");
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&role_file, role_id)?;
    std::fs::write(&secret_file, secret_id)?;
    let mut shapes = Vec::new();
    for agent in ["bao", "keyhole"] {
        let out = dir.path().join(agent);
        std::fs::create_dir_all(&out)?;
        let config = init_config(bao.addr()).auto_auth(
            AutoAuth::approle(&role_file, &secret_file)
                .remove_secret_id_file_after_reading(false)
                .wrap_ttl(Duration::from_secs(300))
                .sink(Sink::file(out.join("token")).mode(0o600)),
        );
        let run = if agent == "bao" {
            run_bao_agent(&config, &out, &[]).await?
        } else {
            run_keyhole_agent(&config, &out, &[]).await?
        };
        assert_exit(&run, 0);
        let sink = run.file("token")?;
        assert!(sink.ends_with("}\n"), "{agent}: {sink:?}");
        let info: Value = serde_json::from_str(&sink)?;
        assert_eq!(info["ttl"], json!(300), "{agent}");
        assert_eq!(
            info["creation_path"],
            json!("auth/approle/login"),
            "{agent}"
        );
        let wrapping_token = info["token"].as_str().expect("a wrapping token");
        let (status, unwrapped) = bao
            .call(
                Method::POST,
                "sys/wrapping/unwrap",
                Some(wrapping_token),
                None,
            )
            .await?;
        assert!(status.is_success(), "{agent}: unwrap: {status} {unwrapped}");
        let token = unwrapped["auth"]["client_token"]
            .as_str()
            .expect("the wrapped answer is the login's");
        assert_eq!(
            unwrapped["auth"]["accessor"], info["wrapped_accessor"],
            "{agent}: wrapped_accessor is the new token's"
        );
        assert_eq!(
            unwrapped["auth"]["token_policies"],
            json!(["app", "default"]),
            "{agent}"
        );
        if agent == "keyhole" {
            for secret in [wrapping_token, token] {
                assert!(
                    !run.stderr.contains(secret) && !run.stdout.contains(secret),
                    "no token in the log:\n{}",
                    run.stderr
                );
            }
            assert!(
                run.stderr.contains("the agent keeps no token"),
                "{}",
                run.stderr
            );
        }
        shapes.push((key_order(&sink), mode(&out.join("token"))));
    }
    assert_eq!(
        shapes[0], shapes[1],
        "bao agent and keyhole-agent write the same JSON, in the same order, with the same mode"
    );

    // A template cannot render without a token: said, and a failed init.
    let out = dir.path().join("template");
    let config = init_config(bao.addr())
        .auto_auth(
            AutoAuth::approle(&role_file, &secret_file)
                .remove_secret_id_file_after_reading(false)
                .wrap_ttl(Duration::from_secs(300))
                .sink(Sink::file(out.join("token"))),
        )
        .template(Template::new(out.join("db"), DB_TEMPLATE));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 1);
    assert!(run.file("token")?.contains("\"creation_path\""));
    assert!(run.file("db").is_err(), "no template is rendered");
    for line in [
        "the template and env_template stanzas will not render",
        "no template renders: with wrap_ttl on the auth method",
    ] {
        assert!(run.stderr.contains(line), "{line}:\n{}", run.stderr);
    }
    Ok(())
}

#[tokio::test]
async fn sinks_hold_the_token_wrapped_and_encrypted_as_bao_agent_writes_them() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    let dir = tempfile::tempdir()?;
    let unwrap = async |wrap_info: &Value| -> anyhow::Result<Value> {
        let token = wrap_info["token"].as_str().expect("a wrapping token");
        let (status, body) = bao
            .call(Method::POST, "sys/wrapping/unwrap", Some(token), None)
            .await?;
        assert!(status.is_success(), "unwrap: {status} {body}");
        Ok(body["data"]["token"].clone())
    };
    let mut shapes = Vec::new();
    for agent in ["bao", "keyhole"] {
        let out = dir.path().join(agent);
        std::fs::create_dir_all(&out)?;
        let sealed_reader = dh_reader(&out.join("dh-sealed.json"))?;
        let both_reader = dh_reader(&out.join("dh-both.json"))?;
        let auth = token_file_auth(&bao, &out, &["default"]).await?;
        let token = std::fs::read_to_string(out.join("vault-token-in"))?;
        let config = init_config(bao.addr()).auto_auth(
            auth.sink(Sink::file(out.join("wrapped")).wrap_ttl(Duration::from_secs(600)))
                .sink(Sink::file(out.join("sealed")).encrypted(
                    out.join("dh-sealed.json"),
                    false,
                    "",
                ))
                .sink(
                    Sink::file(out.join("both"))
                        .wrap_ttl(Duration::from_secs(300))
                        .encrypted(out.join("dh-both.json"), true, "pod-a"),
                ),
        );
        let run = if agent == "bao" {
            run_bao_agent(&config, &out, &[]).await?
        } else {
            run_keyhole_agent(&config, &out, &[]).await?
        };
        assert_exit(&run, 0);

        let wrapped = run.file("wrapped")?;
        assert!(wrapped.ends_with("}\n"), "{agent}: {wrapped:?}");
        let info: Value = serde_json::from_str(&wrapped)?;
        assert_eq!(info["ttl"], json!(600), "{agent}");
        assert_eq!(info["creation_path"], json!("sys/wrapping/wrap"), "{agent}");
        assert_eq!(
            unwrap(&info).await?,
            json!(token),
            "{agent}: unwraps to the token"
        );

        let sealed = run.file("sealed")?;
        let envelope: Value = serde_json::from_str(&sealed)?;
        assert!(
            !sealed.contains(&token),
            "{agent}: the token is not in the clear"
        );
        assert_eq!(
            open_envelope(&envelope, sealed_reader, false, "")?,
            token.as_bytes(),
            "{agent}: the envelope opens to the token"
        );

        let both = run.file("both")?;
        let opened = open_envelope(&serde_json::from_str(&both)?, both_reader, true, "pod-a")?;
        let opened = String::from_utf8(opened)?;
        let info: Value = serde_json::from_str(&opened)?;
        assert_eq!(info["ttl"], json!(300), "{agent}");
        assert_eq!(
            unwrap(&info).await?,
            json!(token),
            "{agent}: wrapped, then encrypted"
        );

        shapes.push((
            key_order(&wrapped),
            key_order(&sealed),
            sealed.ends_with("}\n") && opened.ends_with("}\n"),
            [mode(&out.join("wrapped")), mode(&out.join("sealed"))],
        ));
    }
    assert_eq!(
        shapes[0], shapes[1],
        "bao agent and keyhole-agent write the same JSON, in the same order, with the same modes"
    );
    Ok(())
}

#[tokio::test]
async fn a_template_with_error_fatal_false_fails_alone_and_the_run_succeeds() -> anyhow::Result<()>
{
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let auth = token_file_auth(&bao, dir.path(), &["app"]).await?;
    let missing = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.nothing }}{{ end }}";
    let templates = |out: &Path, fatal: bool| {
        vec![
            Template::new(out.join("db"), DB_TEMPLATE),
            Template::new(out.join("broken"), missing)
                .error_on_missing_key(true)
                .error_fatal(fatal),
        ]
    };

    let out = dir.path().join("lenient");
    let config = init_config(bao.addr())
        .auto_auth(auth.clone())
        .templates(templates(&out, false));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);
    assert_eq!(run.file("db")?, "orders:kv-s3cret-value\n");
    assert!(!out.join("broken").exists());
    assert!(
        run.stderr.contains("map has no entry for key \"nothing\"")
            && run.stderr.contains("error_fatal = false"),
        "{}",
        run.stderr
    );

    let out = dir.path().join("strict");
    let config = init_config(bao.addr())
        .auto_auth(auth)
        .templates(templates(&out, true));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 1);
    assert!(!out.join("broken").exists());
    Ok(())
}

#[tokio::test]
async fn metrics_reach_a_dogstatsd_server_when_the_run_ends() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    app_policy(&bao).await?;
    let dir = tempfile::tempdir()?;
    let auth = token_file_auth(&bao, dir.path(), &["app"]).await?;
    let statsd = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let out = dir.path().join("out");
    let config = init_config(bao.addr())
        .auto_auth(auth)
        .template(Template::new(out.join("db"), DB_TEMPLATE));
    let config = format!(
        "{config}\ntelemetry {{\n dogstatsd_addr = \"{}\"\n dogstatsd_tags = [\"env:test\"]\n}}\n",
        statsd.local_addr()?
    );
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_exit(&run, 0);

    // The agent sent its last figures before it exited: they are queued.
    statsd.set_nonblocking(true)?;
    let mut lines = Vec::new();
    let mut datagram = [0u8; 2048];
    while let Ok(len) = statsd.recv(&mut datagram) {
        let text = std::str::from_utf8(&datagram[..len])?;
        lines.extend(text.lines().map(str::to_owned));
    }
    let rendered = format!(
        "keyhole_agent_renders_total:1|c|#destination:{},env:test",
        out.join("db").display()
    );
    for expected in [
        rendered.as_str(),
        "keyhole_agent_logins_total:1|c|#outcome:success,env:test",
    ] {
        assert!(
            lines.iter().any(|line| line == expected),
            "no {expected:?} in {lines:#?}"
        );
    }
    assert!(
        lines.iter().any(
            |line| line.starts_with("keyhole_agent_since_last_render_seconds:")
                && line.ends_with("|g|#env:test")
        ),
        "{lines:#?}"
    );
    Ok(())
}
