//! The annotation check as GitOps teams plug it in: the pre-commit hook of
//! `.pre-commit-hooks.yaml`, whose command the GitHub Action runs too, on a manifest the
//! webhook would admit and on one it would refuse.

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
            "{}:17: error: Deployment/orders: vault.hashicorp.com/agent-inject: \"ture\" is not a \
             boolean (true or false)\n",
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
            "::error file={},line=17,title=keyhole::Deployment/orders: \
             vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)\n",
            bad.display()
        )
    );
    Ok(())
}
