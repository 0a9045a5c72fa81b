//! The annotation check as GitOps teams plug it in: the pre-commit hook of
//! `.pre-commit-hooks.yaml`, whose command the GitHub Action runs too, on a manifest the
//! webhook would admit and on one it would refuse; and `keyhole-injector mutate --check`
//! itself on what repositories hold: `kubectl get -o yaml` Lists, Kustomize patches,
//! annotations in the wrong place, in every output form.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyhole_tests::example::deployment_path;
use keyhole_tests::workspace_bin;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The `entry` of the pre-commit hook `keyhole-check`, as pre-commit runs it: a path in
/// the hook's repository, given the hook's args and then the staged files.
fn hook_entry() -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(workspace_root().join(".pre-commit-hooks.yaml"))?;
    let hooks: Vec<Value> = serde_saphyr::from_str(&text)?;
    let hook = hooks
        .iter()
        .find(|hook| hook["id"] == "keyhole-check")
        .ok_or_else(|| anyhow::anyhow!("no keyhole-check hook"))?;
    assert_eq!(hook["language"], "script");
    Ok(workspace_root().join(hook["entry"].as_str().unwrap_or_default()))
}

/// Runs the hook on `files` with keyhole-injector (this build) on PATH.
fn run_hook(files: &[&Path], github: bool) -> anyhow::Result<Output> {
    let injector = workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")?;
    let bin_dir = injector.parent().expect("a binary is in a directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let mut command = Command::new(hook_entry()?);
    command
        .arg("--vault-addr=http://vault.vault.svc:8200")
        .args(files)
        .env("PATH", path)
        .env_remove("KEYHOLE_INJECTOR")
        .env("GITHUB_ACTIONS", if github { "true" } else { "false" });
    Ok(command.output()?)
}

/// The example Deployment with its `agent-inject` misspelled, on line 17.
fn write_bad_manifest(dir: &Path) -> anyhow::Result<PathBuf> {
    let good = std::fs::read_to_string(deployment_path())?;
    let bad = good.replace(
        "vault.hashicorp.com/agent-inject: \"true\"",
        "vault.hashicorp.com/agent-inject: \"ture\"",
    );
    assert_ne!(good, bad);
    let path = dir.join("orders.yaml");
    std::fs::write(&path, bad)?;
    Ok(path)
}

#[test]
fn hook_passes_a_manifest_the_webhook_admits() -> anyhow::Result<()> {
    let out = run_hook(&[&deployment_path()], false)?;
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stderr)),
        (Some(0), "".into())
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    Ok(())
}

#[test]
fn hook_fails_a_refused_annotation_on_its_file_and_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = write_bad_manifest(dir.path())?;
    let out = run_hook(&[&deployment_path(), &bad], false)?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}:17:9: error: Deployment/demo/orders: vault.hashicorp.com/agent-inject: \"ture\" is \
             not a boolean (true or false)\n",
            bad.display()
        )
    );
    Ok(())
}

#[test]
fn in_github_actions_the_hook_annotates_the_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = write_bad_manifest(dir.path())?;
    let out = run_hook(&[&bad], true)?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "::error file={},line=17,col=9,title=keyhole::Deployment/demo/orders: \
             vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)\n",
            bad.display()
        )
    );
    Ok(())
}

/// Runs `keyhole-injector mutate --check` (this build) with `args` on `file`.
fn check(file: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let injector = workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")?;
    Ok(Command::new(injector)
        .args([
            "mutate",
            "--check",
            "--vault-addr=http://vault.vault.svc:8200",
        ])
        .args(args)
        .arg("-f")
        .arg(file)
        .output()?)
}

/// Exit code, standard output and standard error of a run.
fn outcome(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `kubectl get pods,deployments -o yaml` prints, after a ConfigMap: a List whose
/// Pod has three wrong annotations and a misspelled one, and whose Deployment carries
/// its annotations on itself instead of its pod template.
const LISTED: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: web
    namespace: shop
    annotations:
      vault.hashicorp.com/agent-inject: \"ture\"
      vault.hashicorp.com/role: web
      vault.hashicorp.com/agent-inject-secret-db: database/creds/web
      vault.hashicorp.com/agnet-inject-token: \"true\"
      vault.hashicorp.com/agent-pre-populate: \"yes\"
      vault.hashicorp.com/agent-limits-cpu: lots
  spec:
    containers:
    - name: app
      image: app:1
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: orders
    namespace: shop
    annotations:
      vault.hashicorp.com/agent-inject: \"true\"
      vault.hashicorp.com/role: orders
  spec:
    selector: {matchLabels: {app: orders}}
    template:
      metadata:
        labels: {app: orders}
      spec:
        containers:
        - name: app
          image: app:1
";

#[test]
fn check_reports_every_problem_of_a_list_on_its_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, LISTED)?;
    let f = file.display();
    assert_eq!(
        outcome(&check(&file, &[])?),
        (
            Some(1),
            String::new(),
            format!(
                "{f}:15:7: error: Pod/shop/web: vault.hashicorp.com/agent-inject: \"ture\" is not a \
                 boolean (true or false)\n\
                 {f}:18:7: warning: Pod/shop/web: vault.hashicorp.com/agnet-inject-token: unknown \
                 annotation, ignored\n\
                 {f}:19:7: error: Pod/shop/web: vault.hashicorp.com/agent-pre-populate: \"yes\" is not \
                 a boolean (true or false)\n\
                 {f}:20:7: error: Pod/shop/web: vault.hashicorp.com/agent-limits-cpu: \"lots\" is not \
                 a quantity such as 100m or 64Mi\n\
                 {f}:31:7: warning: Deployment/shop/orders: vault.hashicorp.com/agent-inject and 1 \
                 more annotation are on the Deployment itself, where the injector does not read \
                 them (nor does vault-k8s), so its pods get no secrets; move them to \
                 spec.template.metadata.annotations\n"
            )
        )
    );
    Ok(())
}

#[test]
fn check_prints_one_json_document_or_github_commands() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, LISTED)?;
    let f = file.display().to_string();

    let json = check(&file, &["--output=json"])?;
    assert_eq!(
        (json.status.code(), json.stderr.as_slice()),
        (Some(1), &b""[..])
    );
    let problems: Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(problems.as_array().map(Vec::len), Some(5), "{problems}");
    assert_eq!(
        problems[0],
        serde_json::json!({
            "file": f, "line": 15, "column": 7, "severity": "error",
            "kind": "Pod", "namespace": "shop", "name": "web",
            "annotation": "vault.hashicorp.com/agent-inject",
            "message": "vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)"
        })
    );
    assert_eq!(problems[4]["severity"], "warning");
    assert_eq!(problems[4]["line"], 31);

    let github = check(&file, &["--output=github"])?;
    let (code, stdout, stderr) = outcome(&github);
    assert_eq!((code, stderr.as_str()), (Some(1), ""));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert_eq!(
        lines[1],
        format!(
            "::warning file={f},line=18,col=7,title=keyhole::Pod/shop/web: \
             vault.hashicorp.com/agnet-inject-token: unknown annotation, ignored"
        )
    );
    Ok(())
}

#[test]
fn strict_fails_on_warnings_alone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("typo.yaml");
    let good = std::fs::read_to_string(deployment_path())?;
    std::fs::write(
        &file,
        good.replace(
            "vault.hashicorp.com/role: orders",
            "vault.hashicorp.com/role: orders\n        vault.hashicorp.com/agnet-inject-token: \"true\"",
        ),
    )?;
    let warning = format!(
        "{}:19:9: warning: Deployment/demo/orders: vault.hashicorp.com/agnet-inject-token: \
         unknown annotation, ignored\n",
        file.display()
    );
    assert_eq!(
        outcome(&check(&file, &[])?),
        (Some(0), String::new(), warning.clone())
    );
    assert_eq!(
        outcome(&check(&file, &["--strict"])?),
        (Some(1), String::new(), warning)
    );
    Ok(())
}

#[test]
fn a_kustomize_patch_is_checked_for_the_annotations_it_has() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("patch.yaml");
    let patch = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
spec:
  template:
    metadata:
      annotations:
        vault.hashicorp.com/agent-inject-secret-db: database/creds/orders
        vault.hashicorp.com/agent-pre-populate: PRE_POPULATE
";
    std::fs::write(&file, patch.replace("PRE_POPULATE", "\"false\""))?;
    assert_eq!(
        outcome(&check(&file, &[])?),
        (Some(0), String::new(), String::new())
    );
    std::fs::write(&file, patch.replace("PRE_POPULATE", "\"nope\""))?;
    assert_eq!(
        outcome(&check(&file, &[])?),
        (
            Some(1),
            String::new(),
            format!(
                "{}:10:9: error: Deployment/default/orders: vault.hashicorp.com/agent-pre-populate: \
                 \"nope\" is not a boolean (true or false)\n",
                file.display()
            )
        )
    );
    Ok(())
}

#[test]
fn an_annotated_pod_in_a_namespace_never_injected_is_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("system.yaml");
    let good = std::fs::read_to_string(deployment_path())?;
    std::fs::write(
        &file,
        good.replace("namespace: demo", "namespace: kube-system"),
    )?;
    let notice = |why: &str| {
        format!(
            "{}:2:1: warning: Deployment/kube-system/orders: pods in namespace kube-system are \
             never injected ({why}): this pod starts without its secrets, and its annotations are \
             not checked\n",
            file.display()
        )
    };
    assert_eq!(
        outcome(&check(&file, &[])?),
        (
            Some(0),
            String::new(),
            notice("the injector never injects kube-system and kube-public")
        )
    );
    assert_eq!(
        outcome(&check(
            &file,
            &["--denied-namespaces=kube-system", "--strict"]
        )?),
        (
            Some(1),
            String::new(),
            notice("--denied-namespaces lists it")
        )
    );
    Ok(())
}

#[test]
fn yaml_that_does_not_parse_exits_2_on_its_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "kind: ConfigMap\n---\nkind: [Pod\n")?;
    assert_eq!(
        outcome(&check(&file, &[])?),
        (
            Some(2),
            String::new(),
            format!("{}:3:7: error: unclosed bracket '['\n", file.display())
        )
    );
    Ok(())
}
