//! Supervisor mode: the `exec` stanza and the `env_template "NAME"` stanzas
//! whose rendered values become the environment of the child it runs.
//!
//! `bao agent` takes the two only together, never with `template` stanzas
//! or an `api_proxy`, and refuses in an `env_template` every key that is
//! about a file or a command of its own (`destination`, `perms`, ...). The
//! checks below make the same decisions, in the same order, and name the
//! stanza and key the user wrote.

use std::str::FromStr;

use nix::sys::signal::Signal;

use super::stanza::{Stanza, invalid, string};
use super::{Result, TemplateSource, command_list};

/// `env_template` keys that `bao agent` refuses: they are about files,
/// commands and waits, which an environment variable has none of.
const NOT_ALLOWED: &[&str] = &[
    "backup",
    "command",
    "command_timeout",
    "create_dest_dirs",
    "destination",
    "exec",
    "perms",
    "user",
    "uid",
    "group",
    "gid",
    "wait",
    "sandbox_path",
];

/// `exec.restart_stop_signal` when not set.
pub const DEFAULT_RESTART_STOP_SIGNAL: Signal = Signal::SIGTERM;

/// Supervisor mode: a child process whose environment holds rendered
/// secrets. Vault Agent takes `exec` and `env_template` only together.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervisor {
    /// The `env_template "NAME"` stanzas, in configuration order.
    pub env_templates: Vec<EnvTemplate>,
    /// The `exec` stanza.
    pub exec: Exec,
}

/// One `env_template "NAME" { ... }` stanza: a template whose output is the
/// value of the child's environment variable `NAME`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvTemplate {
    /// The environment variable, the stanza's label.
    pub name: String,
    /// Where the template text comes from.
    pub source: TemplateSource,
    /// Fail the render when a map key is missing.
    pub error_on_missing_key: bool,
    /// Left action delimiter, `{{` by default.
    pub left_delimiter: String,
    /// Right action delimiter, `}}` by default.
    pub right_delimiter: String,
    /// Functions a render may not call (`function_denylist`, or its older
    /// name `function_blacklist`).
    pub function_denylist: Vec<String>,
    /// `error_fatal`: whether a failure counts against an init-mode run.
    /// The child starts only once every env template rendered, whatever
    /// the value, as in Vault Agent.
    pub error_fatal: bool,
}

/// The `exec { ... }` stanza: the child process and when it restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct Exec {
    /// The command list as written; a single entry of several words runs
    /// through the shell (see [`Exec::argv`]).
    pub command: Vec<String>,
    /// Whether a change of a rendered value restarts the child.
    pub restart_on_secret_changes: Restart,
    /// The signal that stops the child, for a restart or at shutdown.
    pub restart_stop_signal: Signal,
}

impl Exec {
    /// The argv to run, and whether it is a shell that `command` was
    /// wrapped in: then the child gets a process group of its own and
    /// signals go to the whole group, as in Vault Agent.
    pub fn argv(&self) -> (Vec<String>, bool) {
        // The parser checked that the command names a program.
        let argv = command_list(self.command.clone()).unwrap_or_default();
        let in_shell = argv != self.command;
        (argv, in_shell)
    }
}

/// `exec.restart_on_secret_changes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Stop the child and start it again with the new values (the default).
    Always,
    /// Keep the child running with the values it started with.
    Never,
}

impl Restart {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Restart::Always => "always",
            Restart::Never => "never",
        }
    }
}

/// What the rest of the top level holds, for the checks across stanzas.
pub(super) struct Context {
    /// Whether an `api_proxy` stanza was given.
    pub has_api_proxy: bool,
    /// Whether a `template` stanza was given.
    pub has_templates: bool,
}

/// Reads the `env_template` and `exec` stanzas of the top level, `None`
/// when there are neither.
pub(super) fn supervisor(top: &mut Stanza, context: &Context) -> Result<Option<Supervisor>> {
    let blocks = top.repeated("env_template")?;
    let exec = top.single("exec")?;
    let exec = match (exec, blocks.is_empty()) {
        (None, true) => return Ok(None),
        (None, false) => {
            return Err(invalid(
                "env_template",
                "needs a top-level \"exec\" stanza to run with these variables",
            ));
        }
        (Some(_), true) => {
            return Err(invalid(
                "exec",
                "needs at least one \"env_template\" stanza",
            ));
        }
        (Some(exec), false) => exec,
    };
    if context.has_api_proxy {
        return Err(invalid(
            "api_proxy",
            "cannot be given together with \"env_template\" stanzas",
        ));
    }
    if context.has_templates {
        return Err(invalid(
            "template",
            "cannot be given together with \"env_template\" stanzas",
        ));
    }
    let exec = self::exec(exec)?;
    let mut env_templates: Vec<EnvTemplate> = Vec::new();
    for block in blocks {
        for (name, stanza) in labelled(block)? {
            let template = env_template(name, stanza)?;
            if env_templates.iter().any(|t| t.name == template.name) {
                return Err(invalid(
                    &format!("env_template {:?}", template.name),
                    "is given twice: each environment variable may have only one",
                ));
            }
            env_templates.push(template);
        }
    }
    Ok(Some(Supervisor {
        env_templates,
        exec,
    }))
}

/// The labelled blocks of one `env_template` entry: `env_template "A" { }`
/// arrives as `{"A": {..}}`, and JSON may hold several names in one object.
fn labelled(block: Stanza) -> Result<Vec<(String, Stanza)>> {
    let path = block.path().to_owned();
    let stanzas = block.into_labelled().map_err(|_| no_name(&path))?;
    if stanzas.is_empty() {
        return Err(no_name(&path));
    }
    Ok(stanzas)
}

fn no_name(at: &str) -> super::Error {
    invalid(
        at,
        "needs the environment variable's name as its label: env_template \"NAME\" { ... }",
    )
}

fn env_template(name: String, s: Stanza) -> Result<EnvTemplate> {
    let mut s = s.renamed(format!("env_template {name:?}"));
    if let Some(key) = NOT_ALLOWED.iter().find(|key| s.has(key)) {
        return Err(invalid(&s.at(key), "is not allowed in an env_template"));
    }
    let source = s.template_source()?;
    let error_on_missing_key = s.bool("error_on_missing_key", false)?;
    let (left_delimiter, right_delimiter) = s.delimiters()?;
    let template = EnvTemplate {
        name,
        source,
        error_on_missing_key,
        left_delimiter,
        right_delimiter,
        function_denylist: s.function_denylist()?,
        error_fatal: s.bool("error_fatal", true)?,
    };
    s.finish(&[])?;
    Ok(template)
}

fn exec(mut s: Stanza) -> Result<Exec> {
    let at = s.at("command");
    let command = s.strings("command")?.unwrap_or_default();
    if command.is_empty() {
        return Err(invalid(&at, "must not be empty"));
    }
    if command_list(command.clone()).is_none() {
        return Err(invalid(&at, "names no program: its first entry is blank"));
    }
    let restart_at = s.at("restart_on_secret_changes");
    let restart_on_secret_changes = match s.string("restart_on_secret_changes")?.as_deref() {
        None | Some("always") => Restart::Always,
        Some("never") => Restart::Never,
        Some(other) => {
            return Err(invalid(
                &restart_at,
                format!("{other:?} is neither \"always\" nor \"never\""),
            ));
        }
    };
    let signal_at = s.at("restart_stop_signal");
    let restart_stop_signal = match s.take("restart_stop_signal") {
        None => DEFAULT_RESTART_STOP_SIGNAL,
        Some(value) => parse_signal(&string(value, &signal_at)?)
            .ok_or_else(|| invalid(&signal_at, "expected a signal name such as \"SIGTERM\""))?,
    };
    s.finish(&[])?;
    Ok(Exec {
        command,
        restart_on_secret_changes,
        restart_stop_signal,
    })
}

/// A signal as Vault Agent names it: `SIGTERM`, in any case. The prefix is
/// required, and the empty name (Vault Agent's "send nothing, wait, then
/// kill") is not taken.
fn parse_signal(name: &str) -> Option<Signal> {
    Signal::from_str(&name.to_ascii_uppercase()).ok()
}
