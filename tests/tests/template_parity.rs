//! The template language, function by function: every case in
//! `tests/data/template-parity/*.cases` is rendered by `bao agent` (Vault
//! Agent) and by keyhole-agent from the same config against the same OpenBao,
//! and the bytes must match. Every function in keyhole's table must be called
//! by at least one case.
//!
//! A cases file holds cases, each starting with a line `--- <name>` (name:
//! `[a-z0-9_-]+`, unique across all files), followed by the template up to the
//! next `--- ` line or the end of the file; the newline before the next marker
//! belongs to the template. Cases render successfully in `bao agent`; error
//! messages are tested by keyhole's own examples. Random and clock functions
//! are compared through what both sides print the same: lengths, alphabets,
//! formats.
//!
//! The OpenBao fixture the cases read:
//! - KV v2 `secret/parity`: `str` "hello", `num` 42, `float` 1.5, `bool` true,
//!   `map` {"a": "x", "b": {"c": 1}}, `list` ["a", "b", 3], `empty` "",
//!   `csv` " a,b , c ", `json` a JSON document as a string, `yaml` a YAML
//!   document as a string, `html` "<b>&amp;</b>".
//! - KV v1 `kv1/parity`: `user` "ann", `port` 5432; `kv1/team/a` and
//!   `kv1/team/b`, for `secrets "kv1/team"`.
//! - PKI at `pki` with a root CA and a role `parity` for any name.
//! - The token auth method, for writes to `auth/token/create`.
//!
//! Both agents run with the working directory their output directory (so a
//! relative `writeToFile` path lands there and is compared too) and with
//! `PARITY_ENV=hello` in their environment.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use keyhole_agent::template::{Template as Parsed, function_names};
use keyhole_tests::{
    AgentConfig, AgentRun, AutoAuth, Bao, Template, run_bao_agent, run_keyhole_agent,
};
use serde_json::json;

/// The environment both agents get.
const PARITY_ENV: &[(&str, &str)] = &[("PARITY_ENV", "hello")];

/// One template of a cases file.
struct Case {
    name: String,
    file: String,
    text: String,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/template-parity")
}

/// Every case of every `.cases` file, sorted by name.
fn cases() -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(cases_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cases") {
            let file = path
                .file_name()
                .context("cases file name")?
                .to_string_lossy()
                .into_owned();
            cases.extend(parse_cases(&file, &std::fs::read_to_string(&path)?)?);
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = cases.windows(2).find(|pair| pair[0].name == pair[1].name) {
        bail!(
            "case {} is in both {} and {}",
            pair[0].name,
            pair[0].file,
            pair[1].file
        );
    }
    Ok(cases)
}

fn parse_cases(file: &str, text: &str) -> anyhow::Result<Vec<Case>> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("--- ") {
            let name = name.trim_end_matches('\n');
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid {
                bail!("{file}: case name {name:?} is not [a-z0-9_-]+");
            }
            cases.push(Case {
                name: name.to_owned(),
                file: file.to_owned(),
                text: String::new(),
            });
        } else {
            match cases.last_mut() {
                Some(case) => case.text.push_str(line),
                None if line.trim().is_empty() => {}
                None => bail!("{file}: text before the first `--- <name>` line"),
            }
        }
    }
    Ok(cases)
}

/// Writes the secrets the cases read.
async fn seed(bao: &Bao) -> anyhow::Result<()> {
    bao.kv2_put(
        "secret",
        "parity",
        json!({
            "str": "hello", "num": 42, "float": 1.5, "bool": true,
            "map": {"a": "x", "b": {"c": 1}}, "list": ["a", "b", 3], "empty": "",
            "csv": " a,b , c ",
            "json": "{\"name\":\"svc\",\"ports\":[80,443],\"tls\":{\"on\":true}}",
            "yaml": "name: svc\nports: [80, 443]\ntls:\n  enabled: true\nratio: 0.5\n",
            "html": "<b>&amp;</b>",
        }),
    )
    .await?;
    bao.enable_secrets("kv1", "kv", json!({"version": "1"}))
        .await?;
    bao.kv1_put("kv1", "parity", json!({"user": "ann", "port": 5432}))
        .await?;
    bao.kv1_put("kv1", "team/a", json!({"owner": "ann"}))
        .await?;
    bao.kv1_put("kv1", "team/b", json!({"owner": "bob"}))
        .await?;
    bao.enable_secrets("pki", "pki", serde_json::Value::Null)
        .await?;
    bao.write("sys/mounts/pki/tune", json!({"max_lease_ttl": "87600h"}))
        .await?;
    bao.write(
        "pki/root/generate/internal",
        json!({"common_name": "parity-ca", "ttl": "87600h"}),
    )
    .await?;
    bao.write(
        "pki/roles/parity",
        json!({"allow_any_name": true, "max_ttl": "72h"}),
    )
    .await?;
    Ok(())
}

/// One Vault Agent config rendering every case, read from `sources/<name>`
/// (a file, so that no config escaping stands between the case and the
/// agent), into `out/<name>`.
fn config(bao: &Bao, token_file: &Path, cases: &[Case], sources: &Path, out: &Path) -> AgentConfig {
    // A case that fails stops the agent at once instead of being retried.
    AgentConfig::new(bao.addr())
        .exit_after_auth(true)
        .exit_on_retry_failure(true)
        .auto_auth(AutoAuth::token_file(token_file))
        .templates(
            cases
                .iter()
                .map(|case| Template::from_file(out.join(&case.name), sources.join(&case.name))),
        )
}

fn shown(bytes: Option<&Vec<u8>>) -> String {
    match bytes {
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        None => "(no file)".to_owned(),
    }
}

fn assert_success(agent: &str, run: &AgentRun) {
    assert!(
        run.status.success(),
        "{agent} failed ({}):\n{}",
        run.status,
        run.stderr
    );
}

#[test]
fn every_function_in_the_table_has_a_case() -> anyhow::Result<()> {
    let mut called = BTreeSet::new();
    for case in cases()? {
        let parsed = Parsed::parse(&case.name, &case.text, "", "")
            .with_context(|| format!("case {} ({}) does not parse", case.name, case.file))?;
        called.extend(parsed.functions_called());
    }
    let without: Vec<&str> = function_names()
        .filter(|name| !called.contains(name))
        .collect();
    assert!(
        without.is_empty(),
        "{} functions have no case in tests/data/template-parity: {}",
        without.len(),
        without.join(", ")
    );
    Ok(())
}

#[tokio::test]
async fn renders_every_case_byte_identical_to_bao_agent() -> anyhow::Result<()> {
    let cases = cases()?;
    let bao = Bao::start().await?;
    seed(&bao).await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, bao.root_token())?;
    let sources = dir.path().join("sources");
    std::fs::create_dir(&sources)?;
    for case in &cases {
        std::fs::write(sources.join(&case.name), &case.text)?;
    }

    let bao_out = dir.path().join("bao");
    let keyhole_out = dir.path().join("keyhole");
    let reference = run_bao_agent(
        config(&bao, &token_file, &cases, &sources, &bao_out),
        &bao_out,
        PARITY_ENV,
    )
    .await?;
    assert_success("bao agent", &reference);
    let keyhole = run_keyhole_agent(
        config(&bao, &token_file, &cases, &sources, &keyhole_out),
        &keyhole_out,
        PARITY_ENV,
    )
    .await?;
    assert_success("keyhole-agent", &keyhole);

    // Every file either agent left: one per case, and what the cases wrote
    // with `writeToFile`.
    let paths: BTreeSet<&PathBuf> = reference.files.keys().chain(keyhole.files.keys()).collect();
    let mut differing = Vec::new();
    for path in &paths {
        let (expected, actual) = (reference.files.get(*path), keyhole.files.get(*path));
        if expected.is_none() || expected != actual {
            differing.push(format!(
                "{}:\n  bao agent:     {}\n  keyhole-agent: {}",
                path.display(),
                shown(expected),
                shown(actual),
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} files differ:\n{}",
        differing.len(),
        paths.len(),
        differing.join("\n")
    );
    Ok(())
}

/// What one agent left in `pki.pem` over three runs: on a fresh
/// destination, on the same destination again, and on a destination holding
/// a certificate with almost none of its validity left (that certificate
/// comes second in the array).
async fn pki_cert_runs(
    bao: &Bao,
    token_file: &Path,
    dir: &Path,
    bao_agent: bool,
) -> anyhow::Result<[String; 4]> {
    let template = "{{ with pkiCert \"pki/issue/parity\" \"common_name=reuse.example\" \"ttl=1h\" }}{{ .Cert }}{{ .Key }}{{ .CA }}{{ end }}";
    let destination = dir.join("pki.pem");
    let config = AgentConfig::new(bao.addr())
        .exit_after_auth(true)
        .exit_on_retry_failure(true)
        .auto_auth(AutoAuth::token_file(token_file))
        .templates([Template::new(&destination, template)]);
    let mut files = Vec::new();
    for run in 0..3 {
        if run == 2 {
            // Vault backdates a certificate by 30 s: 3 s left of 33.
            let expiring = bao
                .write(
                    "pki/issue/parity",
                    json!({"common_name": "reuse.example", "ttl": "3s"}),
                )
                .await?;
            let data = &expiring["data"];
            let field = |k: &str| format!("{}\n", data[k].as_str().unwrap_or_default());
            let pem = field("certificate") + &field("private_key") + &field("issuing_ca");
            std::fs::write(&destination, &pem)?;
            files.push(pem);
        }
        let agent = if bao_agent {
            run_bao_agent(&config, dir, &[]).await?
        } else {
            run_keyhole_agent(&config, dir, &[]).await?
        };
        assert_success(
            if bao_agent {
                "bao agent"
            } else {
                "keyhole-agent"
            },
            &agent,
        );
        files.push(agent.file("pki.pem")?);
    }
    files
        .try_into()
        .map_err(|_| anyhow::anyhow!("three runs and one certificate"))
}

#[tokio::test]
async fn pki_cert_reuses_a_good_certificate_in_its_destination_as_bao_agent_does()
-> anyhow::Result<()> {
    let bao = Bao::start().await?;
    seed(&bao).await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, bao.root_token())?;

    for bao_agent in [true, false] {
        let out = dir.path().join(if bao_agent { "bao" } else { "keyhole" });
        let [first, again, expiring, renewed] =
            pki_cert_runs(&bao, &token_file, &out, bao_agent).await?;
        let agent = if bao_agent {
            "bao agent"
        } else {
            "keyhole-agent"
        };
        assert!(
            first.starts_with("-----BEGIN CERTIFICATE-----\n"),
            "{agent}: {first}"
        );
        assert!(first.contains("PRIVATE KEY-----\n"), "{agent} wrote no key");
        assert_eq!(
            again, first,
            "{agent} issued a new certificate although the old one was good"
        );
        assert_ne!(renewed, expiring, "{agent} kept an expiring certificate");
        assert!(
            renewed.starts_with("-----BEGIN CERTIFICATE-----\n"),
            "{agent}: {renewed}"
        );
    }
    Ok(())
}
