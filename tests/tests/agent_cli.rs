//! keyhole-agent started with Vault Agent's own command line, against a real OpenBao:
//! `agent -config=A -config=B -exit-after-auth` renders what `bao agent` renders with the
//! same arguments, and its log has no colour codes when it goes to a pipe.

use std::path::Path;
use std::process::{Output, Stdio};

use keyhole_tests::{
    AgentConfig, AutoAuth, Bao, Template, Tool, isolate, keyhole_agent_bin, require,
};
use serde_json::json;
use tokio::process::Command;

/// Runs `program` with `args` in `dir`, without the machine's Vault settings.
async fn run(program: &Path, args: &[String], dir: &Path) -> anyhow::Result<Output> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    isolate(&mut command);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output());
    Ok(output.await??)
}

/// Writes two config files under `dir`, the first with the login and one template, the
/// second with another template and no `exit_after_auth` (the flag gives it), and returns
/// the `-config` arguments for them.
async fn split_config(bao: &Bao, dir: &Path) -> anyhow::Result<Vec<String>> {
    let token = bao.create_token(&["app"], "1h").await?;
    let token_file = dir.join("token-in");
    std::fs::write(&token_file, token)?;
    let first = AgentConfig::new(bao.addr())
        .auto_auth(AutoAuth::token_file(&token_file))
        .template(Template::new(
            dir.join("out/user"),
            "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.username }}{{ end }}\n",
        ));
    let second = format!(
        "template {{\n  destination = \"{}\"\n  contents = \"{{{{ with secret \\\"secret/data/app/db\\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}\"\n}}\n",
        dir.join("out/password").display()
    );
    let a = dir.join("a.hcl");
    let b = dir.join("b.hcl");
    std::fs::write(&a, first.to_string())?;
    std::fs::write(&b, second)?;
    Ok(vec![
        format!("-config={}", a.display()),
        "-config".to_owned(),
        b.display().to_string(),
    ])
}

/// An OpenBao with `secret/app/db` and the `app` policy that reads it.
async fn bao_with_app_secret() -> anyhow::Result<Bao> {
    let bao = Bao::start().await?;
    bao.put_app_secret(json!({ "username": "orders", "password": "s3cret" }))
        .await?;
    Ok(bao)
}

#[tokio::test]
async fn vault_agent_command_line_merges_two_files_and_exits_after_auth() -> anyhow::Result<()> {
    let bao = bao_with_app_secret().await?;

    let mut rendered = Vec::new();
    for (program, agent_word) in [
        (require(Tool::Bao)?, true),
        (keyhole_agent_bin()?, true),
        (keyhole_agent_bin()?, false),
    ] {
        let dir = tempfile::tempdir()?;
        let mut args = Vec::new();
        if agent_word {
            args.push("agent".to_owned());
        }
        args.extend(split_config(&bao, dir.path()).await?);
        args.push("-exit-after-auth".to_owned());
        let out = run(&program, &args, dir.path()).await?;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        rendered.push((
            std::fs::read_to_string(dir.path().join("out/user"))?,
            std::fs::read_to_string(dir.path().join("out/password"))?,
        ));
    }
    assert_eq!(rendered[0], ("orders\n".to_owned(), "s3cret".to_owned()));
    assert_eq!(rendered[1], rendered[0], "keyhole-agent agent -config=...");
    assert_eq!(rendered[2], rendered[0], "keyhole-agent -config=...");
    Ok(())
}

#[tokio::test]
async fn agent_logs_without_escape_codes_into_a_pipe() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("agent.hcl");
    std::fs::write(&config, "auto_auth {\n  methd {}\n}\n")?;
    let args = vec![format!("-config={}", config.display())];
    let out = run(&keyhole_agent_bin()?, &args, dir.path()).await?;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("ERROR") && log.contains("unknown key \"methd\""),
        "{log}"
    );
    assert!(!out.stderr.contains(&0x1b), "{log:?}");
    assert!(!out.stdout.contains(&0x1b));
    Ok(())
}

#[tokio::test]
async fn log_settings_of_the_config_apply_unless_a_flag_overrides_them() -> anyhow::Result<()> {
    let bao = bao_with_app_secret().await?;
    let mut modes = Vec::new();
    for (program, flags) in [
        (require(Tool::Bao)?, &[][..]),
        (keyhole_agent_bin()?, &[][..]),
        (keyhole_agent_bin()?, &["-log-level=warn"][..]),
    ] {
        let dir = tempfile::tempdir()?;
        let mut args = vec!["agent".to_owned()];
        args.extend(split_config(&bao, dir.path()).await?);
        let log_file = dir.path().join("agent.log");
        let first = dir.path().join("a.hcl");
        let text = std::fs::read_to_string(&first)?;
        std::fs::write(
            &first,
            format!(
                "{text}\nlog_level = \"debug\"\nlog_format = \"json\"\nlog_file = \"{}\"\n",
                log_file.display()
            ),
        )?;
        args.push("-exit-after-auth".to_owned());
        args.extend(flags.iter().map(|flag| flag.to_string()));
        let out = run(&program, &args, dir.path()).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} {args:?}: {stderr}",
            program.display()
        );
        let logged = std::fs::read_to_string(&log_file)?;
        modes.push(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log_file)?.permissions())
                & 0o777,
        );
        if program == require(Tool::Bao)? {
            assert!(!logged.is_empty(), "bao agent writes its log to log_file");
            continue;
        }
        assert!(
            stderr.contains(logged.as_str()),
            "every line goes to stderr and the file:\n{stderr}\n---\n{logged}"
        );
        let levels: Vec<String> = logged
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                line["level"].as_str().expect("a level").to_owned()
            })
            .collect();
        if flags.is_empty() {
            assert!(
                levels.iter().any(|l| l == "DEBUG"),
                "log_level debug: {levels:?}"
            );
        } else {
            assert!(
                levels.iter().all(|l| l == "WARN" || l == "ERROR"),
                "-log-level=warn wins over the file: {levels:?}"
            );
        }
    }
    assert_eq!(modes, [0o640; 3], "the log file's mode");
    Ok(())
}
