//! `keyhole-injector mutate` as a user runs it in CI: exit codes and output.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: shop
spec:
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
      annotations:
        vault.hashicorp.com/agent-inject: \"true\"
        vault.hashicorp.com/role: shop
        vault.hashicorp.com/agent-inject-secret-db: database/creds/shop
        PRE_POPULATE
    spec:
      containers:
        - name: app
          image: registry.example.com/shop:1.0
";

fn manifest(pre_populate: &str) -> String {
    DEPLOYMENT.replace(
        "PRE_POPULATE",
        &format!("vault.hashicorp.com/agent-pre-populate: \"{pre_populate}\""),
    )
}

fn mutate(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyhole-injector"))
        .arg("mutate")
        .args(["--vault-addr", "https://vault.vault.svc:8200", "-f", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keyhole-injector");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("exit")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn mutate_prints_the_injected_manifest() {
    let output = mutate(&[], &manifest("true"));

    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let yaml = text(&output.stdout);
    assert!(yaml.contains("kind: Deployment"), "{yaml}");
    assert!(yaml.contains("vault-agent"), "{yaml}");
    assert!(yaml.contains("KEYHOLE_AGENT_CONFIG"), "{yaml}");
}

#[test]
fn mutate_exits_1_naming_object_and_annotation() {
    let output = mutate(&[], &manifest("maybe"));

    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr,
        "<stdin>:16:9: error: Deployment/shop/shop: vault.hashicorp.com/agent-pre-populate: \
         \"maybe\" is not a boolean (true or false)\n"
    );
}

#[test]
fn check_prints_nothing_for_good_manifests_and_fails_bad_ones() {
    let good = mutate(&["--check"], &manifest("true"));
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert!(good.stdout.is_empty(), "{}", text(&good.stdout));

    let bad = mutate(&["--check"], &manifest("maybe"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("vault.hashicorp.com/agent-pre-populate"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_keyhole-injector"))
        .args(["mutate", "-f", "/nonexistent/shop.yaml"])
        .output()
        .expect("run keyhole-injector");

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        "error: cannot read /nonexistent/shop.yaml: No such file or directory (os error 2)\n"
    );
}
