//! Rendering: find what the templates need, have the [`Cache`] fetch it,
//! render, write.
//!
//! Templates name their secrets only as they execute, so rendering works the
//! way consul-template's runner does: render every template against what has
//! been fetched so far, collect the requests none could answer, fetch each
//! distinct one once, and render again until nothing is missing. A path used
//! by many templates is fetched once.
//!
//! [`Renderer::render`] renders the templates that have not rendered yet and
//! those that use a secret the cache reports as changed; its `effects`
//! module writes their files and runs what follows a change (the template's
//! command, a reload signal). An `env_template` renders the same way, but
//! its output is kept in memory for [`crate::supervisor`] instead of written.
//!
//! Each request is logged, labelled in metrics and named in errors as
//! [`ShownPath`] shows it: a path computed while rendering, which may be a
//! secret, only as the template position that computed it.

mod effects;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;
use zeroize::Zeroizing;

use crate::cache::Cache;
use crate::config;
use crate::metrics::Metrics;
use crate::redact::ShownPath;
use crate::template::{self, RenderContext, RenderOptions, Request, Template, VaultCall};
use crate::vault::Secret;
use crate::write::{self, Outcome};

/// Render passes before giving up on templates whose requests keep
/// depending on each other's results.
const MAX_PASSES: usize = 8;

/// How far off a `wait` too long to add to the clock is put: a year.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Which template an error is about, as the config names it: a `template`
/// by its destination, an `env_template` by its variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Name {
    /// A `template` stanza's destination.
    File(PathBuf),
    /// An `env_template` stanza's variable.
    Env(String),
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::File(destination) => write!(f, "template {}", destination.display()),
            Name::Env(name) => write!(f, "env_template {name:?}"),
        }
    }
}

/// Errors of this module. Each names the template; none holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template's `source` file could not be read.
    #[error("{template}: reading source {}: {source}", path.display())]
    Source {
        /// The template.
        template: Name,
        /// The source file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The template text does not parse.
    #[error("{template}: {source}")]
    Parse {
        /// The template.
        template: Name,
        /// Where and why parsing failed.
        source: template::ParseError,
    },
    /// Executing the template failed, e.g. Vault refused one of its secrets.
    #[error("{template}: {source}")]
    Execute {
        /// The template.
        template: Name,
        /// What failed.
        source: template::ExecError,
    },
    /// The template kept asking for new secrets after every pass.
    #[error("{template}: still waiting for {missing} secret(s) after {MAX_PASSES} render passes")]
    Unresolved {
        /// The template.
        template: Name,
        /// How many requests were still missing.
        missing: usize,
    },
    /// The rendered file could not be written.
    #[error("template {}: {source}", destination.display())]
    Write {
        /// The template's destination.
        destination: PathBuf,
        /// What failed.
        source: write::Error,
    },
}

impl Error {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Source { .. } | Error::Parse { .. } => "template",
            Error::Execute { .. } | Error::Unresolved { .. } => "execute",
            Error::Write { .. } => "write",
        }
    }
}

/// Result of this module's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a template's output goes.
pub enum Target {
    /// A `template` stanza's file.
    File(Box<config::Template>),
    /// An `env_template` stanza's variable, with the value of its last
    /// successful render.
    Env {
        /// The variable.
        name: String,
        /// Its value; `None` until it has rendered.
        value: Option<Zeroizing<Vec<u8>>>,
    },
}

/// Shows an env template's variable but never its value.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(config) => f.debug_tuple("File").field(config).finish(),
            Target::Env { name, value } => f
                .debug_struct("Env")
                .field("name", name)
                .field("rendered", &value.is_some())
                .finish(),
        }
    }
}

/// A template stanza with its parsed template.
#[derive(Debug)]
pub struct Entry {
    /// The stanza's output, with its settings.
    pub target: Target,
    /// The destination or the variable as text: the template's name in
    /// metrics.
    name: String,
    template: Template,
    /// How it renders: its settings that the executor applies.
    options: RenderOptions,
    /// Its Vault calls whose path is computed while rendering.
    computed_calls: Vec<VaultCall>,
    /// The Vault requests its last render used.
    uses: BTreeSet<Request>,
    /// Whether it has been written successfully at least once.
    rendered: bool,
    /// Whether its last render or write failed: it is tried again on the
    /// next refresh even if none of its secrets changed.
    failed: bool,
    /// Whether its failure fails an init-mode run and holds up readiness:
    /// `error_fatal`.
    fatal: bool,
    /// Its `wait`, and the write it holds back.
    wait: Option<config::Wait>,
    quiet: Option<Quiet>,
    /// The signal to send after the file changes.
    reload: Option<config::Reload>,
}

impl Entry {
    /// Reads and parses the template of one `template` stanza.
    pub fn new(config: config::Template) -> Result<Self> {
        let text = Text {
            name: Name::File(config.destination.clone()),
            source: &config.source,
            left_delimiter: &config.left_delimiter,
            right_delimiter: &config.right_delimiter,
        };
        let template = text.parse()?;
        let options = RenderOptions {
            error_on_missing_key: config.error_on_missing_key,
            destination: Some(config.destination.clone()),
            sandbox_path: config.sandbox_path.clone(),
            function_denylist: config.function_denylist.clone(),
        };
        let (fatal, wait) = (config.error_fatal, config.wait);
        Ok(Self {
            fatal,
            wait,
            ..Self::with(
                config.destination.display().to_string(),
                template,
                options,
                Target::File(Box::new(config)),
            )
        })
    }

    /// Reads and parses the template of one `env_template` stanza.
    pub fn env(config: &config::EnvTemplate) -> Result<Self> {
        let text = Text {
            name: Name::Env(config.name.clone()),
            source: &config.source,
            left_delimiter: &config.left_delimiter,
            right_delimiter: &config.right_delimiter,
        };
        let template = text.parse()?;
        let target = Target::Env {
            name: config.name.clone(),
            value: None,
        };
        let options = RenderOptions {
            error_on_missing_key: config.error_on_missing_key,
            function_denylist: config.function_denylist.clone(),
            ..RenderOptions::default()
        };
        Ok(Self {
            fatal: config.error_fatal,
            ..Self::with(config.name.clone(), template, options, target)
        })
    }

    fn with(name: String, template: Template, options: RenderOptions, target: Target) -> Self {
        let computed_calls = template
            .vault_calls()
            .into_iter()
            .filter(|call| call.path.is_none())
            .collect();
        Self {
            target,
            name,
            template,
            options,
            computed_calls,
            uses: BTreeSet::new(),
            rendered: false,
            failed: false,
            fatal: true,
            wait: None,
            quiet: None,
            reload: None,
        }
    }

    /// The file this template renders to; `None` for an `env_template`.
    pub fn destination(&self) -> Option<&Path> {
        match &self.target {
            Target::File(config) => Some(&config.destination),
            Target::Env { .. } => None,
        }
    }

    /// How errors name this template.
    fn label(&self) -> Name {
        match &self.target {
            Target::File(config) => Name::File(config.destination.clone()),
            Target::Env { name, .. } => Name::Env(name.clone()),
        }
    }
}

/// The text settings of a template stanza, to read and parse it.
struct Text<'a> {
    name: Name,
    source: &'a config::TemplateSource,
    left_delimiter: &'a str,
    right_delimiter: &'a str,
}

impl Text<'_> {
    fn parse(self) -> Result<Template> {
        let text = match self.source {
            config::TemplateSource::Contents(text) => text.clone(),
            config::TemplateSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| Error::Source {
                    template: self.name.clone(),
                    path: path.clone(),
                    source,
                })?
            }
        };
        let shown = match &self.name {
            Name::File(destination) => destination.display().to_string(),
            Name::Env(name) => name.clone(),
        };
        Template::parse(&shown, &text, self.left_delimiter, self.right_delimiter).map_err(
            |source| Error::Parse {
                template: self.name,
                source,
            },
        )
    }
}

/// What happened to one template in a render.
#[derive(Debug)]
pub struct Rendered {
    /// Index of the template in the configuration.
    pub index: usize,
    /// Whether the file changed, or why the template failed.
    pub result: Result<Outcome>,
    /// Whether a failure counts against an init-mode run: the template's
    /// `error_fatal`.
    pub fatal: bool,
}

/// A change a template's `wait` holds back: it is written at `due`, which
/// each further change moves `min` later, but never past `deadline`.
#[derive(Debug, Clone, Copy)]
struct Quiet {
    due: Instant,
    deadline: Instant,
}

impl Quiet {
    /// The hold after a change at `now`, given the one before it.
    fn after_change(held: Option<Quiet>, wait: config::Wait, now: Instant) -> Quiet {
        // A wait of centuries is a wait for ever, not an overflow.
        let later = |wait: Duration| now.checked_add(wait).unwrap_or(now + FOREVER);
        let deadline = held.map_or(later(wait.max), |held| held.deadline);
        Quiet {
            due: later(wait.min).min(deadline),
            deadline,
        }
    }
}

/// What one call of [`Renderer::render`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Each template rendered, in configuration order.
    pub rendered: Vec<Rendered>,
    /// Whether Vault refused one of the requests fetched for it with 403.
    pub denied: bool,
}

/// Renders templates from the secret cache and writes their files.
#[derive(Debug)]
pub struct Renderer {
    entries: Vec<Entry>,
    metrics: Arc<Metrics>,
    /// Every path a template writes as a string constant: these are shown
    /// as they are, any other path only as where it was computed.
    literal_paths: BTreeSet<String>,
}

impl Renderer {
    /// Parses every template and env template of `config`, failing on the
    /// first that does not parse, before anything talks to Vault.
    pub fn new(config: &config::AgentConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let mut entries = config
            .templates
            .iter()
            .cloned()
            .map(Entry::new)
            .collect::<Result<Vec<_>>>()?;
        for env_template in config.supervisor.iter().flat_map(|s| &s.env_templates) {
            entries.push(Entry::env(env_template)?);
        }
        for reload in &config.keyhole.reload {
            if let Some(entry) = entries
                .iter_mut()
                .find(|e| e.destination() == Some(reload.destination.as_path()))
            {
                entry.reload = Some(reload.clone());
            }
        }
        let literal_paths = entries
            .iter()
            .flat_map(|entry| entry.template.vault_calls())
            .filter_map(|call| call.path)
            .collect();
        Ok(Self {
            entries,
            metrics,
            literal_paths,
        })
    }

    /// The parsed templates, in configuration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The requests the templates' last renders used.
    pub fn used(&self) -> BTreeSet<&Request> {
        self.entries.iter().flat_map(|e| &e.uses).collect()
    }

    /// Whether every template has been written at least once, leaving out
    /// those with `error_fatal = false` that failed.
    pub fn all_rendered(&self) -> bool {
        self.entries.iter().all(|e| e.rendered || !e.fatal)
    }

    /// When the earliest change a template's `wait` holds back is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| e.quiet)
            .map(|q| q.due)
            .min()
    }

    /// The env templates' variables with their rendered values, once every
    /// one of them has rendered.
    pub fn environment(&self) -> Option<Vec<(&str, &[u8])>> {
        self.entries
            .iter()
            .filter_map(|entry| match &entry.target {
                Target::File(_) => None,
                Target::Env { name, value } => Some(
                    value
                        .as_ref()
                        .map(|value| (name.as_str(), value.as_slice())),
                ),
            })
            .collect()
    }

    /// Renders the templates that have not rendered yet, those whose last
    /// render failed and those that use one of `changed`, fetching into
    /// `cache` what they ask for; writes the files whose bytes changed and
    /// runs their commands and reload signals.
    pub async fn render(&mut self, cache: &mut Cache, changed: &BTreeSet<Request>) -> Report {
        let now = Instant::now();
        let mut selected = Vec::new();
        for (index, entry) in self.entries.iter_mut().enumerate() {
            let is_changed = !entry.uses.is_disjoint(changed);
            if let Some(wait) = entry.wait
                && entry.rendered
                && !entry.failed
                && is_changed
            {
                entry.quiet = Some(Quiet::after_change(entry.quiet, wait, now));
                debug!(template = %entry.name, "secrets changed; waiting for more changes");
            }
            let due = entry.quiet.is_some_and(|quiet| quiet.due <= now);
            let held = entry.quiet.is_some() && !due;
            if due || (!held && (!entry.rendered || entry.failed || is_changed)) {
                entry.quiet = None;
                selected.push(index);
            }
        }
        let mut report = Report::default();
        if selected.is_empty() {
            return report;
        }

        let mut outputs = Vec::new();
        for pass in 1..=MAX_PASSES {
            let mut ctx = context(cache);
            outputs.clear();
            let mut missing = BTreeMap::new();
            for &index in &selected {
                let entry = &self.entries[index];
                let output = entry.template.render(&mut ctx, &entry.options);
                let asked = ctx.missing().len();
                for request in ctx.missing() {
                    if !missing.contains_key(request) {
                        missing.insert(request.clone(), self.shown(request, entry));
                    }
                }
                outputs.push((index, output.map(Zeroizing::new), asked, ctx.used().clone()));
            }
            if missing.is_empty() {
                break;
            }
            debug!(pass, requests = missing.len(), "fetching secrets");
            report.denied |= cache.fetch(missing).await.denied;
        }

        report.rendered.reserve(outputs.len());
        for (index, output, unresolved, uses) in outputs {
            let entry = &mut self.entries[index];
            entry.uses = uses;
            let result = if unresolved > 0 {
                Err(Error::Unresolved {
                    template: entry.label(),
                    missing: unresolved,
                })
            } else {
                match output {
                    Ok(bytes) => match &mut entry.target {
                        Target::File(config) => {
                            effects::write(config, entry.reload.as_ref(), &bytes).await
                        }
                        Target::Env { value, .. } => Ok(keep(value, bytes)),
                    },
                    Err(source) => Err(Error::Execute {
                        template: entry.label(),
                        source,
                    }),
                }
            };
            entry.failed = result.is_err();
            match &result {
                Ok(_) => {
                    entry.rendered = true;
                    self.metrics.rendered(&entry.name);
                }
                Err(err) => self.metrics.render_failed(&entry.name, err.kind()),
            }
            report.rendered.push(Rendered {
                index,
                result,
                fatal: entry.fatal,
            });
        }
        report
    }

    /// How `request`, made by `entry`'s template, is shown.
    fn shown(&self, request: &Request, entry: &Entry) -> ShownPath {
        if self.literal_paths.contains(request.path()) {
            ShownPath::literal(request)
        } else {
            ShownPath::computed(request, &entry.name, &entry.computed_calls)
        }
    }
}

/// Keeps an env template's new value, and says whether it changed.
fn keep(value: &mut Option<Zeroizing<Vec<u8>>>, bytes: Zeroizing<Vec<u8>>) -> Outcome {
    if value.as_ref() == Some(&bytes) {
        Outcome::Unchanged
    } else {
        *value = Some(bytes);
        Outcome::Written
    }
}

/// A render context holding every cached result.
fn context(cache: &Cache) -> RenderContext {
    let mut ctx = RenderContext::new();
    for (request, result) in cache.results() {
        let result = result.map(Arc::clone).map_err(|err| err.to_string());
        match request {
            Request::List { .. } => ctx.insert_list(request.clone(), result.map(|s| keys(&s))),
            _ => ctx.insert(request.clone(), result),
        }
    }
    ctx
}

/// The key names of a cached LIST result.
fn keys(secret: &Secret) -> Vec<String> {
    secret
        .data
        .get("keys")
        .and_then(|keys| keys.as_array())
        .into_iter()
        .flatten()
        .filter_map(|key| key.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{backoff, cache, vault};

    fn supervised(env_templates: &str) -> config::AgentConfig {
        config::AgentConfig::from_hcl(&format!(
            r#"
            vault {{ address = "http://127.0.0.1:1" }}
            auto_auth {{
              method "token_file" {{
                config {{ token_file_path = "/t" }}
              }}
            }}
            {env_templates}
            exec {{ command = ["app"] }}
            "#
        ))
        .expect("config parses")
    }

    #[tokio::test]
    async fn env_templates_render_into_memory_in_configuration_order() -> anyhow::Result<()> {
        let config = supervised(
            r#"
            env_template "B" { contents = "{{ print \"b\" \"!\" }}" }
            env_template "A" { contents = "a" }
            "#,
        );
        let metrics = Arc::new(Metrics::new());
        let mut renderer = Renderer::new(&config, Arc::clone(&metrics))?;
        assert_eq!(renderer.environment(), None, "nothing rendered yet");

        let client = vault::Client::builder(&config.vault).build()?;
        let retry = cache::Retry {
            attempts: 0,
            policy: backoff::Policy::new(Duration::from_millis(1), Duration::from_millis(1)),
        };
        let mut cache = Cache::new(client, retry, Duration::from_secs(300), metrics);
        let report = renderer.render(&mut cache, &BTreeSet::new()).await;
        let outcomes: Vec<_> = report
            .rendered
            .iter()
            .map(|r| r.result.as_ref().ok().copied())
            .collect();
        assert_eq!(outcomes, [Some(Outcome::Written), Some(Outcome::Written)]);
        assert_eq!(
            renderer.environment(),
            Some(vec![("B", &b"b!"[..]), ("A", &b"a"[..])])
        );
        assert!(renderer.all_rendered());
        assert!(renderer.entries().iter().all(|e| e.destination().is_none()));
        Ok(())
    }

    #[tokio::test]
    async fn a_template_with_backup_keeps_the_file_a_change_replaces() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let destination = dir.path().join("db");
        let config = config::AgentConfig::from_hcl(&format!(
            r#"
            auto_auth {{
              method "token_file" {{
                config {{ token_file_path = "/t" }}
              }}
            }}
            template {{
              destination = "{}"
              contents    = "x"
              backup      = true
            }}
            "#,
            destination.display()
        ))?;
        let template = &config.templates[0];
        effects::write(template, None, b"one").await?;
        effects::write(template, None, b"two").await?;
        assert_eq!(std::fs::read(&destination)?, b"two");
        assert_eq!(std::fs::read(dir.path().join("db.bak"))?, b"one");
        Ok(())
    }

    #[test]
    fn a_wait_moves_with_each_change_but_not_past_max_after_the_first() {
        let wait = config::Wait {
            min: Duration::from_secs(2),
            max: Duration::from_secs(5),
        };
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let first = Quiet::after_change(None, wait, at(0));
        assert_eq!((first.due, first.deadline), (at(2), at(5)));
        let second = Quiet::after_change(Some(first), wait, at(1));
        assert_eq!((second.due, second.deadline), (at(3), at(5)));
        let late = Quiet::after_change(Some(second), wait, at(4));
        assert_eq!((late.due, late.deadline), (at(5), at(5)), "capped at max");
        let endless = config::Wait {
            min: Duration::MAX,
            max: Duration::MAX,
        };
        let held = Quiet::after_change(None, endless, start);
        assert_eq!(held.due, start + FOREVER);
    }

    #[test]
    fn names_an_env_template_by_its_variable_in_errors() {
        let config = supervised(r#"env_template "DB_PASSWORD" { contents = "{{ if }}" }"#);
        let err = Renderer::new(&config, Arc::new(Metrics::new())).expect_err("does not parse");
        assert!(
            err.to_string()
                .starts_with(r#"env_template "DB_PASSWORD": "#),
            "{err}"
        );
    }
}
