//! keyhole's container images, run with podman as a cluster would run them.
//!
//! The images are the ones `cargo xtask images` builds (`scripts/test` builds them once
//! before the tests; by hand, run it first). The injector image serves an AdmissionReview
//! over TLS; its `mutate` command injects the agent into `examples/deployment.yaml`; and
//! `podman kube play` runs the mutated pod, agent image included, against a real OpenBao
//! on the host network. podman 4.3 has no native sidecars, so the pod uses the classic
//! layout (an init container and a sidecar). The one stand-in is the service-account
//! token: the projected volume becomes a host directory with a token the test mints.
//!
//! podman is required, never skipped: `scripts/test` installs it with runc and points
//! CONTAINERS_CONF at `images/containers.conf`, which these tests also use when unset.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use keyhole_tests::example::{
    INITIAL_PASSWORD, NAMESPACE, SERVICE_ACCOUNT, configure_example, deployment_path,
};
use keyhole_tests::{API_SERVER_AUDIENCE, Bao, free_port, install_crypto_provider, mint_sa_token};
use serde_json::{Value, json};
use tokio::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn image(name: &str) -> String {
    format!("ghcr.io/keyhole-dev/{name}:{VERSION}")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// A podman command, with the repository's containers.conf unless one is chosen.
fn podman() -> Command {
    let mut command = Command::new("podman");
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        command.env(
            "CONTAINERS_CONF",
            workspace_root().join("images/containers.conf"),
        );
    }
    command.kill_on_drop(true);
    command
}

/// Runs podman with `args` (and `stdin`), and returns its standard output.
async fn podman_output(args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut command = podman();
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().context(
        "cannot run podman; install it with `apt-get install podman runc` (scripts/test does)",
    )?;
    let mut input = child.stdin.take().context("podman's stdin")?;
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await?;
    drop(input);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "podman {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Fails with the command that builds the images when they are missing.
async fn require_images() -> anyhow::Result<()> {
    for name in ["keyhole-injector", "keyhole-agent"] {
        let reference = image(name);
        if podman_output(&["image", "exists", &reference], None)
            .await
            .is_err()
        {
            bail!("image {reference} is missing; build it with `cargo xtask images`");
        }
    }
    Ok(())
}

/// Removes a container or a pod when the test ends, passed or failed.
struct Removal {
    args: Vec<String>,
}

impl Drop for Removal {
    fn drop(&mut self) {
        let mut command = std::process::Command::new("podman");
        if std::env::var_os("CONTAINERS_CONF").is_none() {
            command.env(
                "CONTAINERS_CONF",
                workspace_root().join("images/containers.conf"),
            );
        }
        // Best effort: the test's own result matters more than a failed cleanup.
        let _ = command.args(&self.args).output();
    }
}

/// A directory the images' non-root users can read, as Kubernetes mounts Secrets.
fn readable_dir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn write_readable(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Writes a CA-signed serving certificate for `localhost` into `dir` and returns the CA.
fn write_serving_cert(dir: &Path) -> anyhow::Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
    write_readable(&dir.join("tls.crt"), &leaf.pem())?;
    write_readable(&dir.join("tls.key"), &key.serialize_pem())?;
    Ok(ca.pem())
}

fn example_deployment() -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(deployment_path())?;
    Ok(serde_saphyr::from_str(&text)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn injector_image_answers_an_admission_review_over_tls() -> anyhow::Result<()> {
    install_crypto_provider();
    require_images().await?;
    let tls = readable_dir()?;
    let ca = write_serving_cert(tls.path())?;
    let (port, admin) = (free_port()?, free_port()?);
    let name = format!("keyhole-test-injector-{}", std::process::id());
    let _removal = Removal {
        args: vec!["rm".into(), "--force".into(), name.clone()],
    };
    let mount = format!("{}:/tls:ro", tls.path().display());
    podman_output(
        &[
            "run",
            "--detach",
            "--name",
            &name,
            "--network",
            "host",
            "--volume",
            &mount,
            &image("keyhole-injector"),
            "serve",
            &format!("--listen=127.0.0.1:{port}"),
            &format!("--admin-listen=127.0.0.1:{admin}"),
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--vault-addr=https://vault.vault.svc:8200",
        ],
        None,
    )
    .await?;

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
        .build()?;
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(&ready).send().await {
            Ok(response) if response.status().is_success() => break,
            _ if Instant::now() > deadline => {
                let logs = podman_output(&["logs", &name], None).await?;
                bail!("{ready} did not answer 200 within 30s; injector logs:\n{logs}");
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }

    let deployment = example_deployment()?;
    let template = &deployment["spec"]["template"];
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0c6a3d0e-5b1f-4c3e-9a53-image-test",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": template["metadata"],
                "spec": template["spec"],
            },
            "dryRun": false,
        }
    });
    let answer: Value = http
        .post(format!("https://localhost:{port}/mutate"))
        .json(&review)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(response["uid"], "0c6a3d0e-5b1f-4c3e-9a53-image-test");
    assert_eq!(response["allowed"], true, "{answer:#}");
    assert_eq!(response["patchType"], "JSONPatch");
    use base64::Engine;
    let patch: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().context("a patch")?)?,
    )?;
    // The native sidecar: added as the pod's init container list, or to the end of it.
    let agent = patch
        .as_array()
        .context("a JSON Patch is a list")?
        .iter()
        .filter(|op| {
            op["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/spec/initContainers"))
        })
        .flat_map(|op| match &op["value"] {
            Value::Array(list) => list.clone(),
            one => vec![one.clone()],
        })
        .find(|container| container["name"] == "vault-agent")
        .with_context(|| format!("no vault-agent init container in {patch:#}"))?;
    assert_eq!(agent["image"], image("keyhole-agent"));
    assert_eq!(agent["command"], json!(["keyhole-agent"]));
    assert_eq!(agent["restartPolicy"], "Always");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn images_run_as_non_root_and_carry_their_source() -> anyhow::Result<()> {
    require_images().await?;
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace_root())
        .output()?;
    let revision = String::from_utf8(revision.stdout)?;
    for (name, user) in [
        ("keyhole-injector", "65532:65532"),
        ("keyhole-agent", "100:1000"),
    ] {
        let inspect = podman_output(&["image", "inspect", &image(name)], None).await?;
        let inspect: Value = serde_json::from_str(&inspect)?;
        let config = &inspect[0]["Config"];
        assert_eq!(config["User"], user, "{name}");
        let labels = &config["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.source"],
            "https://github.com/keyhole-dev/keyhole"
        );
        assert_eq!(labels["org.opencontainers.image.version"], VERSION);
        let built_from = labels["org.opencontainers.image.revision"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(built_from.len(), 40, "{name}: {labels:#}");
        if built_from != revision.trim() {
            eprintln!("note: {name} was built from {built_from}, HEAD is {revision}");
        }
    }
    // The agent image's shell and tools run as any user with group 0, as OpenShift runs
    // containers.
    let out = podman_output(
        &[
            "run",
            "--rm",
            "--user",
            "1000650000:0",
            "--read-only",
            "--entrypoint",
            "sh",
            &image("keyhole-agent"),
            "-c",
            "id -u; keyhole-agent --version; ls /bin/kill /bin/pidof /bin/chmod /bin/wget",
        ],
        None,
    )
    .await?;
    assert_eq!(
        out,
        format!(
            "1000650000\nkeyhole-agent {VERSION}\n/bin/chmod\n/bin/kill\n/bin/pidof\n/bin/wget\n"
        )
    );
    Ok(())
}

/// What the app container of the played pod prints, once a second: the rendered
/// config.env, and what the shell hook left (see `HOOK`).
const APP_SCRIPT: &str =
    "while true; do cat /vault/secrets/config.env /vault/secrets/hook.out 2>&1; sleep 1; done";

/// A vault-k8s style `agent-inject-command`: a shell script the agent renders and runs
/// with `sh -c` after rendering it, using the image's tools.
const HOOK: &str = r#"#!/bin/sh
set -e
pid=$(pidof keyhole-agent)
kill -0 "$pid"
wget -q -O /vault/secrets/health.json "$VAULT_HEALTH"
chmod 0600 /vault/secrets/health.json
grep -q '"initialized":true' /vault/secrets/health.json
echo "hook ran as $(id -u):$(id -g) beside keyhole-agent (pid $pid); vault is initialized" > /vault/secrets/hook.out
"#;

/// The pod the ReplicaSet controller would make of the mutated Deployment, as `podman
/// kube play` takes it: the app is a shell loop in the agent image, and the projected
/// token volume is the host directory `token_dir`.
fn playable_pod(mutated: &Value, name: &str, token_dir: &Path) -> anyhow::Result<Value> {
    let template = &mutated["spec"]["template"];
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"],
        "spec": template["spec"],
    });
    pod["metadata"]["name"] = json!(name);
    // podman 4.3 refuses annotation values over 63 characters, as if they were labels;
    // the agent takes its config from the environment, so the pod runs the same without.
    // The one annotation left keeps the init container after it exits: podman removes a
    // "once" init container right after waiting for it, and sometimes before it has seen
    // it stop ("cannot remove container ... as it is running"), failing the play.
    pod["metadata"]["annotations"] = json!({"io.podman.annotations.init.container.type": "always"});
    let app = pod["spec"]["containers"]
        .as_array_mut()
        .and_then(|list| list.iter_mut().find(|c| c["name"] == "app"))
        .context("the app container")?;
    app["image"] = json!(image("keyhole-agent"));
    app["command"] = json!(["sh", "-c", APP_SCRIPT]);
    // podman resolves no `fieldRef` but a few `metadata` ones; give the agent the
    // values the kubelet would give it on a host-network pod.
    for list in ["initContainers", "containers"] {
        let containers = pod["spec"][list].as_array_mut().into_iter().flatten();
        for env in containers.filter_map(|c| c["env"].as_array_mut()) {
            for var in env.iter_mut().filter(|var| var.get("valueFrom").is_some()) {
                let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.namespace") => "default",
                    _ => "127.0.0.1",
                };
                *var = json!({"name": var["name"], "value": value});
            }
        }
    }
    let volumes = pod["spec"]["volumes"]
        .as_array_mut()
        .context("the mutated pod has volumes")?;
    let token = volumes
        .iter_mut()
        .find(|v| v.get("projected").is_some())
        .context("the projected service-account token volume")?;
    *token = json!({
        "name": token["name"],
        "hostPath": {"path": token_dir, "type": "Directory"},
    });
    Ok(pod)
}

/// Waits until the app container has printed `wanted`, and returns its logs.
async fn wait_for_log(container: &str, wanted: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let logs = podman_output(&["logs", container], None)
            .await
            .unwrap_or_default();
        if logs.contains(wanted) {
            return Ok(logs);
        }
        if Instant::now() > deadline {
            let pod = container.trim_end_matches("-app");
            let mut all = String::new();
            for other in ["vault-agent-init", "vault-agent"] {
                let text = podman_output(&["logs", &format!("{pod}-{other}")], None)
                    .await
                    .unwrap_or_else(|err| err.to_string());
                all.push_str(&format!("--- {other}\n{text}\n"));
            }
            bail!(
                "{container} did not print {wanted:?} within {timeout:?}; it printed:\n{logs}\n{all}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutated_example_pod_runs_in_podman_with_the_agent_image() -> anyhow::Result<()> {
    require_images().await?;
    let bao = Bao::start().await?;
    let _reviewer = configure_example(&bao).await?;

    // The example Deployment, plus a shell hook as vault-k8s users write them.
    let mut deployment = example_deployment()?;
    let annotations = &mut deployment["spec"]["template"]["metadata"]["annotations"];
    annotations["vault.hashicorp.com/agent-inject-secret-hook.sh"] = json!("secret/data/orders/db");
    annotations["vault.hashicorp.com/agent-inject-template-hook.sh"] =
        json!(HOOK.replace("$VAULT_HEALTH", &format!("{}/v1/sys/health", bao.addr())));
    annotations["vault.hashicorp.com/agent-inject-perms-hook.sh"] = json!("0755");
    annotations["vault.hashicorp.com/agent-inject-command-hook.sh"] =
        json!("sh -c /vault/secrets/hook.sh");

    // keyhole-injector mutate, run from its image as a CI job would.
    let mutated = podman_output(
        &[
            "run",
            "--rm",
            "--interactive",
            &image("keyhole-injector"),
            "mutate",
            "--filename=-",
            "--native-sidecar=false",
            &format!("--vault-addr={}", bao.addr()),
        ],
        Some(&serde_json::to_string(&deployment)?),
    )
    .await?;
    let mutated: Value = serde_saphyr::from_str(&mutated)?;

    let token_dir = readable_dir()?;
    let token = mint_sa_token(
        NAMESPACE,
        SERVICE_ACCOUNT,
        API_SERVER_AUDIENCE,
        Duration::from_secs(3600),
    );
    write_readable(&token_dir.path().join("token"), &token)?;
    let name = format!("keyhole-test-orders-{}", std::process::id());
    let pod = playable_pod(&mutated, &name, token_dir.path())?;
    let manifest = tempfile::NamedTempFile::new()?;
    std::fs::write(manifest.path(), serde_json::to_string_pretty(&pod)?)?;
    let manifest_path = manifest.path().to_string_lossy().into_owned();

    let _removal = Removal {
        args: vec!["kube".into(), "down".into(), manifest_path.clone()],
    };
    podman_output(&["kube", "play", "--network", "host", &manifest_path], None).await?;

    let app = format!("{name}-app");
    let first = format!("DATABASE_URL=postgres://orders:{INITIAL_PASSWORD}@db:5432/orders\n");
    let logs = wait_for_log(&app, &first, Duration::from_secs(60)).await?;
    assert!(
        logs.contains("hook ran as 100:1000 beside keyhole-agent (pid 1); vault is initialized\n"),
        "{logs}"
    );

    bao.kv2_put(
        "secret",
        "orders/db",
        json!({"username": "orders", "password": "rotated-in-podman"}),
    )
    .await?;
    wait_for_log(
        &app,
        "DATABASE_URL=postgres://orders:rotated-in-podman@db:5432/orders\n",
        Duration::from_secs(30),
    )
    .await?;

    // The persistent cache, for the next agent of the pod: the agent's alone.
    let state = podman_output(
        &[
            "exec",
            &format!("{name}-vault-agent"),
            "ls",
            "-ln",
            "/vault/agent-cache/keyhole-agent-state.json",
        ],
        None,
    )
    .await?;
    let fields: Vec<&str> = state.split_whitespace().take(3).collect();
    assert_eq!(fields, ["-rw-------", "1", "100"], "{state}");
    Ok(())
}
