//! Every flag (`--foo`), environment variable (`KEYHOLE_*`, `VAULT_*`) and annotation
//! (`vault.hashicorp.com/*`, `openbao.org/*`, `keyhole.dev/*`) that the docs, the README
//! and the Helm chart name exists: flags and variables in the `--help` of
//! `keyhole-injector serve`, `keyhole-injector mutate` and `keyhole-agent`, annotations in
//! the injector's table (`keyhole_injector::annotations::keys`). A renamed flag or a
//! misspelled annotation fails here with the file and line that names it.
//!
//! Names of other programs and Kubernetes labels are allowed only through the
//! commented lists below.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use keyhole_injector::annotations::keys::{
    IGNORED, KEYHOLE_PREFIX, KNOWN, OPENBAO_PREFIX, Prefix, VAULT_PREFIX, families,
};

/// Flags the docs show for programs other than keyhole's binaries, with the program.
const OTHER_FLAGS: &[(&str, &str)] = &[
    (
        "--x",
        "docs/annotations.md: the placeholder of its \"flag `--x`\" legend",
    ),
    ("--create-namespace", "helm install"),
    ("--set", "helm install"),
    ("--for", "kubectl wait"),
    ("--previous", "kubectl logs"),
    ("--show-labels", "kubectl get"),
    ("--rm", "docker run"),
    ("--multi-image-archive", "podman save"),
    ("--certificate-oidc-issuer", "cosign verify"),
    ("--certificate-identity-regexp", "cosign verify"),
    ("--release", "cargo build"),
    ("--locked", "cargo install"),
    ("--root", "cargo install"),
    ("--git", "cargo install"),
    ("--manifest-path", "cargo fuzz"),
    ("--lib", "cargo fuzz"),
    ("--cfg", "rustc, in cargo fuzz's flags"),
    ("--tool", "valgrind"),
    ("--inclusive", "callgrind_annotate"),
    ("--latency-correction", "oha"),
    ("--keyhole", "scripts/bench-*.py"),
    ("--injector", "scripts/bench-*.py"),
    ("--quick", "scripts/bench-*.py"),
    ("--cache", "scripts/bench-agent-proxy.py"),
    ("--requests", "scripts/bench-agent-proxy.py"),
    ("--seconds", "scripts/bench-agent-proxy.py"),
    ("--rates", "scripts/bench-injector.py"),
    ("--duration", "scripts/bench-injector.py"),
    ("--warmup", "scripts/bench-injector.py"),
    ("--oha", "scripts/bench-injector.py"),
    ("--server-cpus", "scripts/bench-injector.py"),
    ("--load-cpus", "scripts/bench-injector.py"),
    ("--no-pin", "scripts/bench-injector.py"),
    (
        "--callgrind",
        "scripts/bench-injector.py and scripts/bench-agent-proxy.py",
    ),
    ("--callgrind-dir", "scripts/bench-injector.py"),
    ("--distinct", "scripts/bench-injector.py"),
    ("--templates", "scripts/bench-agent-init.py"),
    ("--runs", "scripts/bench-agent-init.py"),
    ("--large-runs", "scripts/bench-agent-init.py"),
    ("--rounds", "scripts/bench-injector-limits.py"),
    ("--agents", "scripts/bench-fleet.py"),
    ("--bao-agents", "scripts/bench-fleet.py"),
    ("--steady", "scripts/bench-fleet.py"),
    ("--downtime", "scripts/bench-fleet.py"),
    ("--in-flight", "scripts/bench-injector-limits.py"),
];

/// Environment variables the docs name that keyhole's binaries do not read.
const OTHER_ENV: &[(&str, &str)] = &[
    (
        "KEYHOLE_INJECTOR",
        "the command scripts/check-manifests and the pre-commit hook run",
    ),
    (
        "VAULT_CONFIG",
        "vault-k8s's agent config, in the migration guide",
    ),
];

/// Names under keyhole's annotation prefixes that are not annotations keyhole reads.
const OTHER_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "vault.hashicorp.com/agnet-inject-token",
        "the misspelled key of docs/troubleshooting.md's example warning",
    ),
    (
        "keyhole.dev/component",
        "the label of the injector's own pods, which the webhook skips",
    ),
    (
        "keyhole.dev/inject",
        "a namespace label in values.yaml's namespaceSelector example",
    ),
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files whose names must exist: the docs, the README and the chart.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![
        root.join("README.md"),
        root.join("charts/keyhole/values.yaml"),
        root.join("charts/keyhole/values.schema.json"),
    ];
    for dir in ["docs", "charts/keyhole/templates"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|err| panic!("{dir}: {err}"))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| dir != "docs" || path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        entries.sort();
        files.extend(entries);
    }
    files
}

/// The `--help` of one of keyhole's binaries.
fn help(bin: &str, args: &[&str]) -> String {
    let var = format!("{}_BIN", bin.to_uppercase().replace('-', "_"));
    let path = keyhole_tests::workspace_bin(bin, &var).unwrap_or_else(|err| panic!("{err:#}"));
    let output = Command::new(&path)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert!(output.status.success(), "{bin} {args:?} --help: {output:?}");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The help texts of every command the docs describe.
fn helps() -> Vec<String> {
    vec![
        help("keyhole-injector", &[]),
        help("keyhole-injector", &["serve"]),
        help("keyhole-injector", &["mutate"]),
        help("keyhole-agent", &[]),
        help("keyhole-agent", &["probe"]),
    ]
}

/// One name found in a file.
#[derive(Debug)]
struct Found<'a> {
    line: usize,
    name: &'a str,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Every `--flag` in `text`: two dashes after a character that cannot be part of a
/// word or a path, then a lowercase word not followed by a printf placeholder.
fn flags(text: &str) -> Vec<Found<'_>> {
    find(
        text,
        "--",
        |before| !is_name_char(before) && before != '/',
        |rest| {
            let len = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            // A flag the chart builds with printf (`--agent-%s-%s`) is checked in
            // its rendered form by tests/tests/chart.rs.
            if rest[len..].starts_with('%') {
                return None;
            }
            let name = rest[..len].trim_end_matches('-');
            name.starts_with(|c: char| c.is_ascii_lowercase())
                .then_some(name.len())
        },
    )
}

/// Every `KEYHOLE_*` and `VAULT_*` variable name in `text`.
fn env_names(text: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    for prefix in ["KEYHOLE_", "VAULT_"] {
        found.extend(find(
            text,
            prefix,
            |before| !is_name_char(before),
            |rest| {
                let len = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                let len = rest[..len].trim_end_matches('_').len();
                (len > 0).then_some(len)
            },
        ));
    }
    found
}

/// Every annotation key under keyhole's prefixes in `text`. A placeholder (`<name>`)
/// or a wildcard (`*`) stays in the name.
fn annotations(text: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    for prefix in [VAULT_PREFIX, OPENBAO_PREFIX, KEYHOLE_PREFIX] {
        // Not a host name in a URL (https://openbao.org/docs) nor a longer domain.
        found.extend(find(
            text,
            prefix,
            |before| !is_name_char(before) && !matches!(before, '.' | '/'),
            |rest| {
                let len = rest
                    .find(|c: char| !(is_name_char(c) || matches!(c, '.' | '<' | '>' | '*')))
                    .unwrap_or(rest.len());
                Some(rest[..len].trim_end_matches('.').len())
            },
        ));
    }
    found
}

/// Each occurrence of `start` in `text` that `before` accepts the character before,
/// extended by the length `rest` gives for what follows it.
fn find<'a>(
    text: &'a str,
    start: &str,
    before: impl Fn(char) -> bool,
    rest: impl Fn(&str) -> Option<usize>,
) -> Vec<Found<'a>> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices(start) {
            if line[..at].chars().next_back().is_some_and(|c| !before(c)) {
                continue;
            }
            if let Some(len) = rest(&line[at + start.len()..]) {
                found.push(Found {
                    line: index + 1,
                    name: &line[at..at + start.len() + len],
                });
            }
        }
    }
    found
}

/// Whether keyhole reads the annotation `name`, or, for a name with a placeholder or a
/// wildcard, annotations that start as it does.
fn is_annotation(name: &str) -> bool {
    let Some((prefix, rest)) = Prefix::split(name) else {
        return false;
    };
    // The prefix alone stands for all of its keys.
    if rest.is_empty() {
        return true;
    }
    let same_prefix = |declared: Prefix| declared.spellings().contains(&prefix);
    let mut keys = KNOWN
        .iter()
        .chain(IGNORED.iter().map(|(key, _)| key))
        .filter(|key| same_prefix(key.prefix))
        .map(|key| key.name);
    let mut stems = families()
        .filter(|family| same_prefix(family.prefix))
        .map(|family| family.stem);
    match rest.find(['<', '*']) {
        Some(open) => {
            let start = &rest[..open];
            keys.any(|name| name.starts_with(start))
                || stems.any(|stem| stem.starts_with(start) || start.starts_with(stem))
        }
        None => {
            keys.any(|name| name == rest)
                || stems.any(|stem| rest.len() > stem.len() && rest.starts_with(stem))
        }
    }
}

fn shown(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn docs_and_chart_name_only_flags_env_vars_and_annotations_that_exist() {
    let helps = helps();
    let known_flags: BTreeSet<&str> = helps
        .iter()
        .flat_map(|help| flags(help))
        .map(|found| found.name)
        .chain(OTHER_FLAGS.iter().map(|(flag, _)| *flag))
        .collect();
    // clap prints `[env: NAME=]`; the agent reads its config and the overrides of its
    // settings without clap.
    let agent_env = [keyhole_agent::config::CONFIG_ENV]
        .into_iter()
        .chain(keyhole_agent::config::env_names())
        .chain(OTHER_ENV.iter().map(|(name, _)| *name))
        .map(str::to_owned);
    let known_env: BTreeSet<String> = helps
        .iter()
        .flat_map(|help| help.split("[env: ").skip(1))
        .filter_map(|rest| rest.split_once('=').map(|(name, _)| name.to_owned()))
        .chain(agent_env)
        .collect();
    assert!(known_flags.contains("--vault-addr"), "{known_flags:?}");
    assert!(known_env.contains("KEYHOLE_VAULT_ADDR"), "{known_env:?}");

    let mut unknown = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let mut here = Vec::new();
        for found in flags(&text) {
            if !known_flags.contains(found.name) {
                here.push((found.line, "flag", found.name));
            }
        }
        for found in env_names(&text) {
            if !known_env.contains(found.name) {
                here.push((found.line, "environment variable", found.name));
            }
        }
        for found in annotations(&text) {
            let listed = OTHER_ANNOTATIONS
                .iter()
                .any(|(name, _)| *name == found.name);
            if !listed && !is_annotation(found.name) {
                here.push((found.line, "annotation", found.name));
            }
        }
        here.sort();
        let file = shown(&path);
        unknown.extend(
            here.into_iter()
                .map(|(line, kind, name)| format!("{file}:{line}: {kind} {name}")),
        );
    }
    assert!(
        unknown.is_empty(),
        "names that keyhole's binaries do not know (fix the text, or add a commented \
         exception in tests/tests/docs_drift.rs):\n{}",
        unknown.join("\n")
    );
}
