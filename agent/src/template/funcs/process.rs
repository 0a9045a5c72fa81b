//! consul-template's `plugin`: a command run by the agent whose output the
//! template uses.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};
use super::strings::is_go_space;

/// How long a plugin may run.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `plugin name args...`: runs `name` with the non-blank arguments, trimmed,
/// and returns its standard output, trimmed. An empty name runs nothing.
pub(super) fn plugin<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let name = string_arg(&args[0])?;
    if name.is_empty() {
        return Ok(owned(String::new()));
    }
    let mut argv = Vec::new();
    for arg in &args[1..] {
        let arg = string_arg(arg)?.trim_matches(is_go_space);
        if !arg.is_empty() {
            argv.push(arg);
        }
    }
    // The output may hold secrets, so errors name only the command and
    // how it ended.
    let failed = |e: &dyn std::fmt::Display| format!("exec {name:?}: {e}");
    let mut child = Command::new(name)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(&e))?;
    // Read the output on its own thread, so a plugin that writes more than
    // a pipe holds does not block while it is waited for.
    let mut pipe = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        pipe.as_mut().map(|p| p.read_to_end(&mut out));
        out
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| failed(&e))? {
            break status;
        }
        if started.elapsed() > PLUGIN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(&"did not finish in 30s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(&status));
    }
    let stdout = String::from_utf8_lossy(&stdout);
    Ok(owned(stdout.trim_matches(is_go_space).to_owned()))
}
