//! The `cert` auth method against a real OpenBao serving TLS: keyhole-agent logs in
//! with a client certificate, from the `vault` stanza or from the method's own config,
//! and renders the same files as `bao agent`; a certificate Vault does not trust is a
//! refusal that names the method, the login path and Vault's status.

use std::path::Path;

use keyhole_tests::{
    AgentConfig, AgentRun, AutoAuth, Bao, BaoOptions, TLS_SERVER_NAME, Template, run_bao_agent,
    run_keyhole_agent,
};
use serde_json::json;

const TEMPLATE: &str = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.username }}:{{ .Data.data.password }}{{ end }}\n";

/// An OpenBao with TLS listeners, a secret readable by policy `app`, and the `cert`
/// auth method trusting the CA of [`BaoTls`](keyhole_tests::BaoTls) as role `web`.
async fn bao_with_cert_auth() -> anyhow::Result<Bao> {
    let bao = Bao::start_with(BaoOptions {
        tls: true,
        ..BaoOptions::default()
    })
    .await?;
    bao.put_app_secret(json!({ "username": "orders", "password": "cert-s3cret" }))
        .await?;
    bao.enable_auth("cert", "cert").await?;
    let ca = std::fs::read_to_string(&bao.tls()?.ca)?;
    bao.write(
        "auth/cert/certs/web",
        json!({ "certificate": ca, "token_policies": ["app"], "token_ttl": "1h" }),
    )
    .await?;
    Ok(bao)
}

/// An init-mode config talking to the TLS listener of `bao`, trusting its CA.
fn init_config(bao: &Bao) -> anyhow::Result<AgentConfig> {
    let tls = bao.tls()?;
    Ok(AgentConfig::new(&tls.addr)
        .ca_cert(&tls.ca, TLS_SERVER_NAME)
        .exit_after_auth(true))
}

fn assert_rendered(run: &AgentRun, agent: &str) -> anyhow::Result<()> {
    assert_eq!(
        run.status.code(),
        Some(0),
        "{agent} exit status; stderr:\n{}",
        run.stderr
    );
    assert_eq!(run.file("db")?, "orders:cert-s3cret\n", "{agent}");
    Ok(())
}

/// Runs `config` under keyhole-agent and `bao agent` (with `bao_env`), each into its
/// own directory, and checks that both render the secret.
async fn both_render(
    config: &AgentConfig,
    dir: &Path,
    bao_env: &[(&str, &str)],
) -> anyhow::Result<()> {
    let keyhole_out = dir.join("keyhole");
    let bao_out = dir.join("bao");
    let keyhole_config = config
        .clone()
        .template(Template::new(keyhole_out.join("db"), TEMPLATE));
    let bao_config = config
        .clone()
        .template(Template::new(bao_out.join("db"), TEMPLATE));
    assert_rendered(
        &run_keyhole_agent(&keyhole_config, &keyhole_out, &[]).await?,
        "keyhole-agent",
    )?;
    assert_rendered(
        &run_bao_agent(&bao_config, &bao_out, bao_env).await?,
        "bao agent",
    )?;
    Ok(())
}

#[tokio::test]
async fn cert_login_presents_the_vault_stanzas_certificate() -> anyhow::Result<()> {
    let bao = bao_with_cert_auth().await?;
    let tls = bao.tls()?;
    let dir = tempfile::tempdir()?;
    let config = init_config(&bao)?
        .client_cert(&tls.client_cert, &tls.client_key)
        .auto_auth(AutoAuth::cert().cert_name("web"));
    both_render(&config, dir.path(), &[]).await
}

#[tokio::test]
async fn cert_login_presents_the_methods_own_certificate() -> anyhow::Result<()> {
    let bao = bao_with_cert_auth().await?;
    let tls = bao.tls()?;
    let dir = tempfile::tempdir()?;
    let config = init_config(&bao)?.auto_auth(
        AutoAuth::cert()
            .cert_files(&tls.client_cert, &tls.client_key)
            .cert_reload(true),
    );
    // bao agent's login client takes its CA and server name from the environment, not
    // from the vault stanza; vault-k8s sets both in the agent's environment.
    let ca = tls.ca.display().to_string();
    both_render(
        &config,
        dir.path(),
        &[
            ("VAULT_CACERT", &ca),
            ("VAULT_TLS_SERVER_NAME", TLS_SERVER_NAME),
        ],
    )
    .await
}

#[tokio::test]
async fn cert_vault_does_not_trust_is_a_refused_login() -> anyhow::Result<()> {
    let bao = bao_with_cert_auth().await?;
    let dir = tempfile::tempdir()?;
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger.test".to_owned()])?;
    let cert = dir.path().join("stranger.pem");
    let key = dir.path().join("stranger-key.pem");
    std::fs::write(&cert, stranger.cert.pem())?;
    std::fs::write(&key, stranger.signing_key.serialize_pem())?;
    let out = dir.path().join("out");
    let config = init_config(&bao)?
        .exit_on_retry_failure(true)
        .auto_auth(AutoAuth::cert().cert_files(&cert, &key))
        .template(Template::new(out.join("db"), TEMPLATE));
    let run = run_keyhole_agent(&config, &out, &[]).await?;
    assert_eq!(run.status.code(), Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "auto_auth method \"cert\": PUT auth/cert/login: invalid certificate or no client certificate supplied (HTTP 400)"
        ),
        "{}",
        run.stderr
    );
    assert!(!out.join("db").exists(), "nothing is rendered");
    Ok(())
}
