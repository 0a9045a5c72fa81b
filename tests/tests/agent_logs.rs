//! What keyhole-agent's logs and metrics reveal, against a real OpenBao: no secret used
//! as a Vault path or as a write parameter, even at trace level, and the token's accessor
//! only at debug level.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, Template, configure_pki, free_port, run_keyhole_agent,
    scrape_metrics, spawn_keyhole_agent,
};
use reqwest::Method;
use serde_json::json;

/// The secret value that templates use as a Vault path and as a write parameter.
const SECRET: &str = "hunter2-c0ffee";

/// Templates that use [`SECRET`] (the KV v2 secret `app/pointer`'s `path`,
/// `kv1/hunter2-c0ffee`) as a path, as do environment variables, each as (file name,
/// contents, what it renders or `None` when it fails).
const POINTER_TEMPLATES: [(&str, &str, Option<&str>); 5] = [
    (
        "target",
        "{{ with secret \"secret/data/app/pointer\" }}{{ with secret .Data.data.path }}{{ .Data.value }}{{ end }}{{ end }}",
        Some("target-value"),
    ),
    (
        "env",
        "{{ with secret (env \"POINTER\") }}{{ .Data.value }}{{ end }}",
        Some("env-value"),
    ),
    (
        "missing",
        "{{ with secret \"secret/data/app/pointer\" }}{{ with secret (printf \"%s-gone\" .Data.data.path) }}{{ .Data.value }}{{ end }}{{ end }}",
        None,
    ),
    (
        "denied",
        "{{ with secret (printf \"denied/%s\" (mustEnv \"POINTER\")) }}{{ .Data.value }}{{ end }}",
        None,
    ),
    (
        "cert",
        "{{ with secret \"secret/data/app/pointer\" }}{{ with secret \"pki/issue/app\" \"common_name=app.example\" (printf \"ip_sans=%s\" .Data.data.path) }}{{ .Data.certificate }}{{ end }}{{ end }}",
        None,
    ),
];

/// The environment of an agent rendering [`POINTER_TEMPLATES`].
const POINTER_ENV: [(&str, &str); 2] = [
    ("POINTER", "kv1/hunter2-c0ffee-env"),
    ("VAULT_LOG_LEVEL", "trace"),
];

/// A config talking to `vault` that logs in with the token in `token_file` and renders
/// `templates` (file name in `out`, contents): in init mode, or as a sidecar with metrics
/// on `metrics`.
fn config(
    vault: &str,
    token_file: &Path,
    out: &Path,
    templates: &[(&str, &str)],
    metrics: Option<SocketAddr>,
) -> AgentConfig {
    let config = AgentConfig::new(vault)
        .auto_auth(AutoAuth::token_file(token_file))
        .static_secret_render_interval(Duration::from_secs(1))
        .templates(
            templates
                .iter()
                .map(|(name, contents)| Template::new(out.join(name), *contents)),
        );
    match metrics {
        Some(addr) => config.metrics_listen(addr),
        None => config.exit_after_auth(true),
    }
}

/// The lines of `text` that hold [`SECRET`].
fn leaks(text: &str) -> Vec<&str> {
    text.lines().filter(|line| line.contains(SECRET)).collect()
}

/// A Vault with the secrets [`POINTER_TEMPLATES`] read, a PKI role `app`, and a token file
/// in `dir` for a token that may read them but not `denied/*`.
async fn pointer_vault(dir: &Path) -> anyhow::Result<(Bao, std::path::PathBuf)> {
    let bao = Bao::start().await?;
    bao.enable_secrets("kv1", "kv", serde_json::Value::Null)
        .await?;
    configure_pki(&bao, "pki", "app", "1h").await?;
    bao.put_policy(
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read"] }
path "kv1/*" { capabilities = ["read"] }
path "pki/issue/app" { capabilities = ["update"] }"#,
    )
    .await?;
    bao.kv2_put(
        "secret",
        "app/pointer",
        json!({ "path": format!("kv1/{SECRET}") }),
    )
    .await?;
    // A `ttl` gives KV v1 reads a lease, so the agent reports its time left.
    bao.kv1_put(
        "kv1",
        SECRET,
        json!({ "value": "target-value", "ttl": "1h" }),
    )
    .await?;
    bao.kv1_put(
        "kv1",
        &format!("{SECRET}-env"),
        json!({ "value": "env-value", "ttl": "1h" }),
    )
    .await?;
    let token_file = dir.join("vault-token");
    std::fs::write(&token_file, bao.create_token(&["app"], "1h").await?)?;
    Ok((bao, token_file))
}

#[tokio::test]
async fn token_accessor_is_logged_only_at_debug_level() -> anyhow::Result<()> {
    let bao = Bao::start().await?;
    let token = bao.create_token(&["default"], "1h").await?;
    let (_, lookup) = bao
        .call(Method::GET, "auth/token/lookup-self", Some(&token), None)
        .await?;
    let accessor = lookup["data"]["accessor"]
        .as_str()
        .expect("lookup-self returns the accessor")
        .to_owned();
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token)?;
    let out = dir.path().join("out");
    let config = config(
        bao.addr(),
        &token_file,
        &out,
        &[("out", "rendered\n")],
        None,
    );

    let info = run_keyhole_agent(&config, &out, &[]).await?;
    assert_eq!(info.status.code(), Some(0), "stderr:\n{}", info.stderr);
    let login = info
        .stderr
        .lines()
        .find(|line| line.contains("logged in to Vault"))
        .unwrap_or_else(|| panic!("no login line in:\n{}", info.stderr));
    assert!(login.contains("INFO"), "{login}");
    assert!(!info.stderr.contains(&accessor), "{}", info.stderr);

    let debug = run_keyhole_agent(&config, &out, &[("VAULT_LOG_LEVEL", "debug")]).await?;
    assert_eq!(debug.status.code(), Some(0), "stderr:\n{}", debug.stderr);
    assert!(
        debug
            .stderr
            .lines()
            .any(|line| line.contains("DEBUG") && line.contains(&format!("accessor={accessor}"))),
        "{}",
        debug.stderr
    );
    Ok(())
}

#[tokio::test]
async fn secrets_used_as_paths_or_parameters_stay_out_of_logs_and_metrics() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (bao, token_file) = pointer_vault(dir.path()).await?;
    // Vault's own message repeats a rejected write parameter.
    let (status, reply) = bao
        .call(
            Method::PUT,
            "pki/issue/app",
            Some(bao.root_token()),
            Some(&json!({ "common_name": "app.example", "ip_sans": format!("kv1/{SECRET}") })),
        )
        .await?;
    assert_eq!(status, 400);
    assert!(reply.to_string().contains(SECRET), "{reply}");

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let templates: Vec<(&str, &str)> = POINTER_TEMPLATES
        .iter()
        .map(|(name, contents, _)| (*name, *contents))
        .collect();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let sidecar = config(bao.addr(), &token_file, &out, &templates, Some(metrics));
    let mut agent = spawn_keyhole_agent(&sidecar, &POINTER_ENV).await?;
    for (name, _, rendered) in POINTER_TEMPLATES {
        if let Some(expected) = rendered {
            agent
                .wait_for_file(&out.join(name), Duration::from_secs(20), |text| {
                    text == expected
                })
                .await?;
        }
    }
    // Each failing template is reported, and its failed read retried.
    let destination = |name: &str| out.join(name).display().to_string();
    for name in ["missing", "denied", "cert"] {
        agent
            .wait_for_log(
                &format!("template {}:", destination(name)),
                Duration::from_secs(20),
            )
            .await?;
    }
    agent
        .wait_for_log("reading the secret failed", Duration::from_secs(20))
        .await?;
    let scrape = scrape_metrics(metrics).await?;
    let log = agent.log();
    let status = agent.stop().await?;
    assert!(status.success(), "{status}; log:\n{log}");

    assert!(
        log.lines().any(|line| line.contains(" TRACE ")),
        "the agent logs at trace level:\n{log}"
    );
    assert_eq!(leaks(&log), Vec::<&str>::new(), "secret in the agent's log");
    assert_eq!(leaks(&scrape), Vec::<&str>::new(), "secret in the metrics");
    // Leases of secrets read from computed paths are labelled by where the
    // path was computed.
    for at in [
        format!("{}:1:52", destination("target")),
        format!("{}:1:9", destination("env")),
    ] {
        let series =
            format!("keyhole_agent_lease_remaining_seconds{{path=\"<computed path at {at}>\"}} ");
        assert!(
            scrape.lines().any(|line| line.starts_with(&series)),
            "no {series:?} in:\n{scrape}"
        );
    }
    // Failures still say which template, where, and what Vault answered.
    for (name, failure) in [
        (
            "missing",
            format!(
                "error calling secret: GET <computed path at {}:1:52>: no secret at this path (HTTP 404)",
                destination("missing")
            ),
        ),
        (
            "denied",
            format!(
                "error calling secret: GET <computed path at {}:1:9>: permission denied, \
                 Vault's message withheld (HTTP 403)",
                destination("denied")
            ),
        ),
        (
            "cert",
            "error calling secret: secret \"pki/issue/app\": PUT pki/issue/app: Bad Request, \
             Vault's message withheld (HTTP 400)"
                .to_owned(),
        ),
    ] {
        let report = format!("template {}:", destination(name));
        assert!(
            log.lines().any(|line| line.contains("ERROR")
                && line.contains(&report)
                && line.ends_with(&failure)),
            "no {report:?} error line ending {failure:?} in:\n{log}"
        );
    }

    // Init mode exits with the same failures and no secret either.
    let init = run_keyhole_agent(
        &config(bao.addr(), &token_file, &out, &templates, None),
        &out,
        &POINTER_ENV,
    )
    .await?;
    assert_ne!(init.status.code(), Some(0), "{}", init.stderr);
    assert!(
        init.stderr
            .contains(&format!("<computed path at {}:1:9>", destination("denied"))),
        "{}",
        init.stderr
    );
    assert_eq!(
        leaks(&init.stderr),
        Vec::<&str>::new(),
        "secret in init mode's log"
    );
    Ok(())
}
