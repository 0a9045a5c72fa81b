//! Differential tests of the template language: `bao agent` (Vault Agent) and
//! `keyhole-agent` render every fixture in `tests/data/templates/` from the
//! same config file against the same OpenBao, and the output bytes must match.

use std::path::{Path, PathBuf};

use anyhow::Context;
use keyhole_tests::{
    AgentConfig, AgentRun, AutoAuth, Bao, Template, run_bao_agent, run_keyhole_agent,
};
use serde_json::Value;

/// Environment the `env` fixtures read.
const TEMPLATE_ENV: &[(&str, &str)] = &[("KEYHOLE_TEST_ENV", "hello")];

/// The fixtures need at least this many templates to count as coverage.
const MIN_FIXTURES: usize = 40;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/templates")
}

struct Fixture {
    name: String,
    source: PathBuf,
    delims: Option<(String, String)>,
}

fn fixtures() -> anyhow::Result<Vec<Fixture>> {
    let mut fixtures = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "ctmpl") {
            let name = path
                .file_stem()
                .context("fixture name")?
                .to_string_lossy()
                .into_owned();
            let delims = match std::fs::read_to_string(path.with_extension("delims")) {
                Ok(text) => {
                    let mut lines = text.lines();
                    let left = lines.next().context("delims: left")?.to_owned();
                    let right = lines.next().context("delims: right")?.to_owned();
                    Some((left, right))
                }
                Err(_) => None,
            };
            fixtures.push(Fixture {
                name,
                source: path,
                delims,
            });
        }
    }
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(fixtures)
}

/// Applies `seed.json`: mounts, then raw API writes, in order.
async fn seed(bao: &Bao) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(fixtures_dir().join("seed.json"))?;
    let seed: Value = serde_json::from_str(&text)?;
    for mount in seed["mounts"].as_array().into_iter().flatten() {
        let path = mount["path"].as_str().context("mount path")?;
        let kind = mount["type"].as_str().context("mount type")?;
        bao.enable_secrets(path, kind, mount["options"].clone())
            .await?;
    }
    for write in seed["writes"].as_array().into_iter().flatten() {
        let path = write["path"].as_str().context("write path")?;
        bao.write(path, write["body"].clone()).await?;
    }
    Ok(())
}

/// One Vault Agent config rendering every fixture into `out`.
fn config(bao: &Bao, token_file: &Path, fixtures: &[Fixture], out: &Path) -> AgentConfig {
    AgentConfig::new(bao.addr())
        .exit_after_auth(true)
        .auto_auth(AutoAuth::token_file(token_file))
        .templates(fixtures.iter().map(|fixture| {
            let template = Template::from_file(out.join(&fixture.name), &fixture.source);
            match &fixture.delims {
                Some((left, right)) => template.delimiters(left, right),
                None => template,
            }
        }))
}

fn assert_success(agent: &str, run: &AgentRun) {
    assert!(
        run.status.success(),
        "{agent} failed ({}):\n{}",
        run.status,
        run.stderr
    );
}

#[tokio::test]
async fn renders_every_fixture_byte_identical_to_bao_agent() -> anyhow::Result<()> {
    let fixtures = fixtures()?;
    assert!(
        fixtures.len() >= MIN_FIXTURES,
        "only {} template fixtures",
        fixtures.len()
    );
    let bao = Bao::start().await?;
    seed(&bao).await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, bao.root_token())?;

    let bao_out = dir.path().join("bao");
    let keyhole_out = dir.path().join("keyhole");
    let reference = run_bao_agent(
        &config(&bao, &token_file, &fixtures, &bao_out),
        &bao_out,
        TEMPLATE_ENV,
    )
    .await?;
    assert_success("bao agent", &reference);
    let keyhole = run_keyhole_agent(
        &config(&bao, &token_file, &fixtures, &keyhole_out),
        &keyhole_out,
        TEMPLATE_ENV,
    )
    .await?;
    assert_success("keyhole-agent", &keyhole);

    let mut mismatches = Vec::new();
    for fixture in &fixtures {
        let expected = reference.files.get(Path::new(&fixture.name));
        let actual = keyhole.files.get(Path::new(&fixture.name));
        if expected.is_none() || expected != actual {
            mismatches.push(format!(
                "{}:\n  bao agent:     {:?}\n  keyhole-agent: {:?}",
                fixture.name,
                expected.map(|b| String::from_utf8_lossy(b).into_owned()),
                actual.map(|b| String::from_utf8_lossy(b).into_owned()),
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} templates differ:\n{}",
        mismatches.len(),
        fixtures.len(),
        mismatches.join("\n")
    );
    Ok(())
}

/// Both agents, from one config (in init mode) rendering into `out`, which
/// the closure makes from the output directory.
async fn run_both(
    bao: &Bao,
    token_file: &Path,
    dir: &Path,
    templates: impl Fn(&Path) -> Vec<Template>,
) -> anyhow::Result<[(PathBuf, AgentRun); 2]> {
    let mut runs = Vec::new();
    for agent in ["bao", "keyhole"] {
        let out = dir.join(agent);
        std::fs::create_dir_all(&out)?;
        let config = AgentConfig::new(bao.addr())
            .exit_after_auth(true)
            .exit_on_retry_failure(true)
            .auto_auth(AutoAuth::token_file(token_file))
            .templates(templates(&out));
        let run = if agent == "bao" {
            run_bao_agent(&config, &out, &[]).await?
        } else {
            run_keyhole_agent(&config, &out, &[]).await?
        };
        runs.push((out, run));
    }
    let [bao_run, keyhole_run]: [_; 2] = runs.try_into().expect("two runs");
    Ok([bao_run, keyhole_run])
}

#[tokio::test]
async fn owner_sandbox_and_denied_functions_as_bao_agent_has_them() -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;

    let bao = Bao::start().await?;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, bao.root_token())?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    std::fs::write(files.join("in"), "inside")?;
    let outside = dir.path().join("not-in-files");
    std::fs::write(&outside, "outside")?;
    // Only root may give a file away; anyone may give it to themselves.
    let (uid, gid) = if nix::unistd::Uid::effective().is_root() {
        (1000, 1001)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    };

    let rendered = run_both(&bao, &token_file, dir.path(), |out| {
        vec![
            Template::new(out.join("owned"), "x").owner(&uid.to_string(), &gid.to_string()),
            Template::new(out.join("root"), "x").owner("root", "0"),
            Template::new(
                out.join("sandboxed"),
                format!(
                    "{{{{ file {:?} }}}}",
                    files.join("in").display().to_string()
                ),
            )
            .sandbox_path(&files)
            .function_denylist(&["env"]),
        ]
    })
    .await?;
    for (out, run) in &rendered {
        assert_success(&out.display().to_string(), run);
        let owner = |name: &str| {
            let meta = std::fs::metadata(out.join(name)).expect("rendered");
            (meta.uid(), meta.gid())
        };
        assert_eq!(owner("owned"), (uid, gid), "{}", out.display());
        assert_eq!(owner("root"), (0, 0), "{}", out.display());
        assert_eq!(run.file("sandboxed")?, "inside");
    }

    let refused = [
        ("outside", "is outside of sandbox"),
        ("env", "error calling env: function is disabled"),
    ];
    for (case, message) in refused {
        let runs = run_both(&bao, &token_file, &dir.path().join(case), |out| {
            let contents = match case {
                "env" => "{{ env \"HOME\" }}".to_owned(),
                _ => format!("{{{{ file {:?} }}}}", outside.display().to_string()),
            };
            vec![
                Template::new(out.join("t"), contents)
                    .sandbox_path(&files)
                    .function_denylist(&["env"]),
            ]
        })
        .await?;
        for (out, run) in &runs {
            assert!(!run.status.success(), "{}: {}", out.display(), run.stderr);
            assert!(
                run.stderr.contains(message),
                "{}: no {message:?} in:\n{}",
                out.display(),
                run.stderr
            );
            assert!(!out.join("t").exists(), "{}", out.display());
        }
    }
    Ok(())
}
