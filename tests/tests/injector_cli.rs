//! `keyhole-injector`'s command line as operators meet it: renamed flags under their old
//! names, vault-k8s's `AGENT_INJECT_*` variables, Go booleans, errors that name what the
//! user wrote, and log bytes without colour codes when the output is not a terminal.

use std::process::{Command, Output, Stdio};

use keyhole_tests::example::deployment_path;
use keyhole_tests::workspace_bin;

/// Runs `keyhole-injector <args>` with only `env` (and PATH) in its environment, so that
/// no variable of the machine running the tests leaks in.
fn injector(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut command = Command::new(workspace_bin("keyhole-injector", "KEYHOLE_INJECTOR_BIN")?);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    Ok(command.output()?)
}

/// `keyhole-injector mutate` of the example Deployment with a Vault address, `args` and
/// `env`.
fn mutate(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Output> {
    let file = deployment_path();
    let file = file.to_str().expect("a UTF-8 path");
    let mut all = vec![
        "mutate",
        "-f",
        file,
        "--vault-addr=http://vault.vault.svc:8200",
    ];
    all.extend_from_slice(args);
    injector(&all, env)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The mutated YAML of a run that must succeed without a word on stderr.
fn mutated(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
    let out = mutate(args, env)?;
    assert_eq!(
        (out.status.code(), stderr(&out)),
        (Some(0), String::new()),
        "{args:?} {env:?}"
    );
    Ok(stdout(&out))
}

#[test]
fn old_flags_keyhole_variables_and_vault_k8s_variables_set_the_same_setting() -> anyhow::Result<()>
{
    let default = mutated(&[], &[])?;
    let expected = mutated(&["--agent-cpu-request=7m"], &[])?;
    assert_ne!(expected, default);
    assert!(expected.contains("cpu: 7m"), "{expected}");
    assert_eq!(mutated(&["--cpu-request=7m"], &[])?, expected);
    assert_eq!(
        mutated(&[], &[("KEYHOLE_AGENT_CPU_REQUEST", "7m")])?,
        expected
    );
    assert_eq!(
        mutated(&[], &[("AGENT_INJECT_CPU_REQUEST", "7m")])?,
        expected
    );

    let renamed = mutated(&["--template-config-exit-on-retry-failure=false"], &[])?;
    assert_ne!(renamed, default);
    assert_eq!(mutated(&["--exit-on-retry-failure=false"], &[])?, renamed);
    assert_eq!(
        mutated(
            &[],
            &[("AGENT_INJECT_TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE", "f")]
        )?,
        renamed
    );
    Ok(())
}

#[test]
fn keyhole_variable_wins_over_vault_k8s_and_the_log_says_so() -> anyhow::Result<()> {
    let expected = mutated(&["--agent-cpu-request=7m"], &[])?;
    let out = mutate(
        &[],
        &[
            ("KEYHOLE_AGENT_CPU_REQUEST", "7m"),
            ("AGENT_INJECT_CPU_REQUEST", "9m"),
        ],
    )?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), expected);
    assert_eq!(
        stderr(&out),
        "warning: AGENT_INJECT_CPU_REQUEST is ignored: KEYHOLE_AGENT_CPU_REQUEST is also set, \
         and keyhole's name wins\n"
    );
    Ok(())
}

#[test]
fn vault_k8s_variable_of_another_meaning_is_never_applied() -> anyhow::Result<()> {
    let default = mutated(&[], &[])?;
    let out = mutate(
        &[],
        &[("AGENT_INJECT_VAULT_IMAGE", "hashicorp/vault:1.18.0")],
    )?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), default);
    assert_eq!(
        stderr(&out),
        "warning: AGENT_INJECT_VAULT_IMAGE is ignored: it names a Vault image to run as the \
         agent; keyhole injects keyhole-agent, whose image is --agent-image\n"
    );
    Ok(())
}

#[test]
fn booleans_take_gos_forms_in_flags_and_variables() -> anyhow::Result<()> {
    let on = mutated(&["--native-sidecar=true"], &[])?;
    let off = mutated(&["--native-sidecar=false"], &[])?;
    assert_ne!(on, off);
    for value in ["1", "t", "T", "TRUE", "True"] {
        assert_eq!(
            mutated(&[], &[("KEYHOLE_NATIVE_SIDECAR", value)])?,
            on,
            "{value}"
        );
    }
    for value in ["0", "f", "F", "FALSE", "False"] {
        assert_eq!(
            mutated(&[&format!("--native-sidecar={value}")], &[])?,
            off,
            "{value}"
        );
    }
    Ok(())
}

/// Variables of one run, as (name, value).
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn errors_name_the_flag_or_variable_the_value_came_from() -> anyhow::Result<()> {
    let cases: [(&[&str], Env, &str); 5] = [
        (
            &["--agent-log-level", "bogus"],
            &[],
            "invalid value 'bogus' for '--agent-log-level <LOG_LEVEL>'",
        ),
        (
            &[],
            &[("KEYHOLE_AGENT_LOG_LEVEL", "bogus")],
            "invalid value 'bogus' for 'KEYHOLE_AGENT_LOG_LEVEL'",
        ),
        (
            &["--mem-limit=32MB"],
            &[],
            "invalid value '32MB' for '--mem-limit <MEM_LIMIT>': \"32MB\" is not a quantity",
        ),
        (
            &[],
            &[("AGENT_INJECT_MEM_LIMIT", "32MB")],
            "invalid value '32MB' for 'AGENT_INJECT_MEM_LIMIT': \"32MB\" is not a quantity",
        ),
        (
            &[],
            &[("KEYHOLE_NATIVE_SIDECAR", "yes")],
            "invalid value 'yes' for 'KEYHOLE_NATIVE_SIDECAR': \"yes\" is not a boolean",
        ),
    ];
    for (args, env, message) in cases {
        let out = mutate(args, env)?;
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        assert!(
            stderr(&out).contains(message),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
    }
    Ok(())
}

#[test]
fn serve_logs_without_escape_codes_into_a_pipe() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("a UTF-8 path");
    let out = injector(
        &[
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
            &format!("--tls-cert={missing}"),
            &format!("--tls-key={missing}"),
        ],
        // A variable keyhole does not apply makes serve log a warning at start.
        &[("AGENT_INJECT_TELEMETRY_PATH", "/metrics")],
    )?;
    assert_ne!(out.status.code(), Some(0), "the certificate is missing");
    let log = stdout(&out);
    assert!(
        log.contains("WARN") && log.contains("AGENT_INJECT_TELEMETRY_PATH is ignored"),
        "{log}"
    );
    assert!(!out.stdout.contains(&0x1b), "{log:?}");
    assert!(!out.stderr.contains(&0x1b), "{:?}", stderr(&out));
    Ok(())
}

#[test]
fn vault_helm_auto_tls_variables_turn_auto_tls_on() -> anyhow::Result<()> {
    let out = injector(
        &[
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
        ],
        &[
            ("AGENT_INJECT_TLS_AUTO", "vault-agent-injector-cfg"),
            (
                "AGENT_INJECT_TLS_AUTO_HOSTS",
                "vault-agent-injector-svc.vault.svc",
            ),
            ("NAMESPACE", "vault"),
        ],
    )?;
    // Without a cluster, auto-TLS stops at the Kubernetes client: past every flag check.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot configure the Kubernetes client for AGENT_INJECT_TLS_AUTO"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn auto_tls_errors_name_the_variable_that_turned_it_on() -> anyhow::Result<()> {
    let out = injector(
        &[
            "serve",
            "--listen=127.0.0.1:0",
            "--admin-listen=127.0.0.1:0",
            "--namespace=keyhole",
        ],
        &[("KEYHOLE_TLS_AUTO", "1")],
    )?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot configure the Kubernetes client for KEYHOLE_TLS_AUTO"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn listen_errors_name_the_flag_or_variable_that_set_the_address() -> anyhow::Result<()> {
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let busy = busy.local_addr()?.to_string();
    let serve = ["serve", "--tls-cert=/tls/tls.crt", "--tls-key=/tls/tls.key"];
    let flag = format!("--admin-listen={busy}");
    let by_flag = injector(&[&serve[..], &[flag.as_str()]].concat(), &[])?;
    let by_env = injector(&serve, &[("KEYHOLE_ADMIN_LISTEN", busy.as_str())])?;
    for (out, source) in [
        (by_flag, "--admin-listen"),
        (by_env, "KEYHOLE_ADMIN_LISTEN"),
    ] {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(&format!("cannot listen on {busy} ({source})")),
            "{}",
            stderr(&out)
        );
    }
    Ok(())
}
