//! Rendering: find what the templates need, fetch it, render, write.
//!
//! Templates name their secrets only as they execute, so rendering works the
//! way consul-template's runner does: render every template against what has
//! been fetched so far, collect the requests none could answer, fetch each
//! distinct one once (in parallel, with bounded concurrency), and render
//! again until nothing is missing. A path used by many templates is fetched
//! once.
//!
//! Fetched secrets stay in a cache with the time each must be renewed or
//! fetched anew ([`crate::lease`]). [`Renderer::refresh_due`] does that work
//! when it is due and reports which secrets changed, and
//! [`Renderer::render`] then re-renders only the templates that use them.
//!
//! Each request is logged, labelled in metrics and named in errors as
//! [`ShownPath`] shows it: a path computed while rendering, which may be a
//! secret, only as the template position that computed it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

use crate::config;
use crate::lease::{self, SecretAction};
use crate::metrics::Metrics;
use crate::redact::ShownPath;
use crate::reload;
use crate::template::{self, RenderContext, RenderOptions, Request, Template, VaultCall};
use crate::vault::{self, KvPaths, Operation, Secret};
use crate::write::{self, Outcome};

/// How many Vault requests are in flight at once.
const FETCH_CONCURRENCY: usize = 16;

/// Render passes before giving up on templates whose requests keep
/// depending on each other's results.
const MAX_PASSES: usize = 8;

/// Errors of this module. Each names the template's destination; none holds
/// a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template's `source` file could not be read.
    #[error("template {}: reading source {}: {source}", destination.display(), path.display())]
    Source {
        /// The template's destination.
        destination: PathBuf,
        /// The source file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The template text does not parse.
    #[error("template {}: {source}", destination.display())]
    Parse {
        /// The template's destination.
        destination: PathBuf,
        /// Where and why parsing failed.
        source: template::ParseError,
    },
    /// Executing the template failed, e.g. Vault refused one of its secrets.
    #[error("template {}: {source}", destination.display())]
    Execute {
        /// The template's destination.
        destination: PathBuf,
        /// What failed.
        source: template::ExecError,
    },
    /// The template kept asking for new secrets after every pass.
    #[error("template {}: still waiting for {missing} secret(s) after {MAX_PASSES} render passes", destination.display())]
    Unresolved {
        /// The template's destination.
        destination: PathBuf,
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

/// A template stanza with its parsed template.
#[derive(Debug)]
pub struct Entry {
    /// The stanza as configured.
    pub config: config::Template,
    /// The destination as text: the template's name in errors and metrics.
    name: String,
    template: Template,
    /// Its Vault calls whose path is computed while rendering.
    computed_calls: Vec<VaultCall>,
    /// The Vault requests its last render used.
    uses: BTreeSet<Request>,
    /// Whether it has been written successfully at least once.
    rendered: bool,
    /// Whether its last render or write failed: it is tried again on the
    /// next refresh even if none of its secrets changed.
    failed: bool,
    /// The signal to send after the file changes.
    reload: Option<config::Reload>,
}

impl Entry {
    /// Reads and parses the template of one stanza.
    pub fn new(config: config::Template) -> Result<Self> {
        let text = match &config.source {
            config::TemplateSource::Contents(text) => text.clone(),
            config::TemplateSource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| Error::Source {
                    destination: config.destination.clone(),
                    path: path.clone(),
                    source,
                })?
            }
        };
        let name = config.destination.display().to_string();
        let template = Template::parse(
            &name,
            &text,
            &config.left_delimiter,
            &config.right_delimiter,
        )
        .map_err(|source| Error::Parse {
            destination: config.destination.clone(),
            source,
        })?;
        let computed_calls = template
            .vault_calls()
            .into_iter()
            .filter(|call| call.path.is_none())
            .collect();
        Ok(Self {
            config,
            name,
            template,
            computed_calls,
            uses: BTreeSet::new(),
            rendered: false,
            failed: false,
            reload: None,
        })
    }

    /// The file this template renders to.
    pub fn destination(&self) -> &Path {
        &self.config.destination
    }
}

/// What happened to one template in a render.
#[derive(Debug)]
pub struct Rendered {
    /// Index of the template in the configuration.
    pub index: usize,
    /// Whether the file changed, or why the template failed.
    pub result: Result<Outcome>,
}

/// How failed Vault requests are retried within one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts after the first for a request that failed transiently.
    pub attempts: u32,
    /// First delay between attempts.
    pub min_backoff: Duration,
    /// Cap on the delay between attempts.
    pub max_backoff: Duration,
}

/// A fetched secret and what to do with it next.
#[derive(Debug)]
struct Cached {
    /// How its request is shown in logs and metrics.
    shown: ShownPath,
    /// The last good response, or the error of a request that never
    /// succeeded.
    result: Result<Arc<Secret>, String>,
    /// When to renew or fetch it anew.
    next: SecretAction,
    /// Failed refreshes in a row, for backoff.
    failures: u32,
}

/// Fetches secrets for templates, keeps them current and writes files.
#[derive(Debug)]
pub struct Renderer {
    client: vault::Client,
    entries: Vec<Entry>,
    retry: Retry,
    static_interval: Duration,
    metrics: Arc<Metrics>,
    cache: BTreeMap<Request, Cached>,
    /// Every path a template writes as a string constant: these are shown
    /// as they are, any other path only as where it was computed.
    literal_paths: BTreeSet<String>,
    kv: KvPaths,
    /// Set when Vault answered 403: the token may be gone.
    denied: AtomicBool,
}

impl Renderer {
    /// Parses every template of `config`, failing on the first that does not
    /// parse, before anything talks to Vault.
    pub fn new(
        client: vault::Client,
        config: &config::AgentConfig,
        retry: Retry,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let mut entries = config
            .templates
            .iter()
            .cloned()
            .map(Entry::new)
            .collect::<Result<Vec<_>>>()?;
        for reload in &config.keyhole.reload {
            if let Some(entry) = entries
                .iter_mut()
                .find(|e| e.config.destination == reload.destination)
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
            client,
            entries,
            retry,
            static_interval: config.template_config.static_secret_render_interval,
            metrics,
            cache: BTreeMap::new(),
            literal_paths,
            kv: KvPaths::default(),
            denied: AtomicBool::new(false),
        })
    }

    /// The parsed templates, in configuration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether every template has been written at least once.
    pub fn all_rendered(&self) -> bool {
        self.entries.iter().all(|e| e.rendered)
    }

    /// Whether a Vault request was refused with 403 since the last call:
    /// the token may have been revoked or lost.
    pub fn take_denied(&self) -> bool {
        self.denied.swap(false, Ordering::Relaxed)
    }

    /// Renders the templates that have not rendered yet, those whose last
    /// render failed and those that use one of `changed`; writes the files
    /// whose bytes changed and runs their commands and reload signals.
    pub async fn render(&mut self, changed: &BTreeSet<Request>) -> Vec<Rendered> {
        let selected: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                let entry = &self.entries[i];
                !entry.rendered || entry.failed || !entry.uses.is_disjoint(changed)
            })
            .collect();
        if selected.is_empty() {
            return Vec::new();
        }

        let mut outputs = Vec::new();
        for pass in 1..=MAX_PASSES {
            let mut ctx = self.context();
            outputs.clear();
            let mut missing = BTreeMap::new();
            for &index in &selected {
                let entry = &self.entries[index];
                let options = RenderOptions {
                    error_on_missing_key: entry.config.error_on_missing_key,
                };
                let output = entry.template.render(&mut ctx, &options);
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
            self.fetch(missing).await;
        }

        let mut results = Vec::with_capacity(outputs.len());
        for (index, output, unresolved, uses) in outputs {
            let destination = self.entries[index].destination().to_owned();
            self.entries[index].uses = uses;
            let result = if unresolved > 0 {
                Err(Error::Unresolved {
                    destination,
                    missing: unresolved,
                })
            } else {
                match output {
                    Ok(bytes) => self.write(index, &bytes).await,
                    Err(source) => Err(Error::Execute {
                        destination,
                        source,
                    }),
                }
            };
            let entry = &mut self.entries[index];
            entry.failed = result.is_err();
            match &result {
                Ok(_) => {
                    entry.rendered = true;
                    self.metrics.rendered(&entry.name);
                }
                Err(err) => self.metrics.render_failed(&entry.name, err.kind()),
            }
            results.push(Rendered { index, result });
        }
        results
    }

    /// How `request`, made by `entry`'s template, is shown.
    fn shown(&self, request: &Request, entry: &Entry) -> ShownPath {
        if self.literal_paths.contains(request.path()) {
            ShownPath::literal(request)
        } else {
            ShownPath::computed(request, &entry.name, &entry.computed_calls)
        }
    }

    /// A render context holding every cached result.
    fn context(&self) -> RenderContext {
        let mut ctx = RenderContext::new();
        for (request, cached) in &self.cache {
            match request {
                Request::List { .. } => {
                    ctx.insert_list(request.clone(), cached.result.clone().map(|s| keys(&s)))
                }
                _ => ctx.insert(request.clone(), cached.result.clone()),
            }
        }
        ctx
    }

    /// The next renewal or re-fetch of a cached secret.
    pub fn next_due(&self) -> Option<SecretAction> {
        self.cache
            .values()
            .map(|c| c.next)
            .min_by_key(SecretAction::at)
    }

    /// Makes every cached secret due now, e.g. after a new login: leases
    /// obtained with a lost token die with it.
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for cached in self.cache.values_mut() {
            cached.next = SecretAction::Refetch { at: now };
        }
    }

    /// Renews or fetches anew every secret that is due, and returns those
    /// whose data changed. A failure keeps the last good secret (its file
    /// keeps its content) and is retried with backoff.
    pub async fn refresh_due(&mut self) -> BTreeSet<Request> {
        let now = Instant::now();
        let this = &*self;
        let due = this.cache.iter().filter(|(_, c)| c.next.at() <= now);
        let results: Vec<_> = futures::stream::iter(due)
            .map(|(request, cached)| async move {
                let outcome = this.refresh_one(request, cached).await;
                (request.clone(), outcome)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;

        let mut changed = BTreeSet::new();
        for (request, outcome) in results {
            let Some(cached) = self.cache.get_mut(&request) else {
                continue;
            };
            match outcome {
                Refreshed::Renewed(next) => {
                    cached.next = next;
                    cached.failures = 0;
                }
                Refreshed::Fetched(secret) => {
                    let same = matches!(&cached.result, Ok(old) if old.data.0 == secret.data.0);
                    if !same {
                        changed.insert(request.clone());
                    }
                    cached.next = schedule(&secret, self.static_interval);
                    cached.result = Ok(secret);
                    cached.failures = 0;
                    self.record_lease(&request);
                }
                Refreshed::Failed(err) => {
                    cached.failures += 1;
                    let delay = lease::retry_delay(
                        cached.failures - 1,
                        self.retry.min_backoff,
                        self.retry.max_backoff,
                        rand::random(),
                    );
                    let path = &cached.shown;
                    if cached.result.is_ok() {
                        warn!(%path, retry_in = ?delay, "keeping the last good secret: {err}");
                    } else {
                        warn!(%path, retry_in = ?delay, "reading the secret failed: {err}");
                    }
                    cached.next = SecretAction::Refetch {
                        at: Instant::now() + delay,
                    };
                }
            }
        }
        changed
    }

    async fn refresh_one(&self, request: &Request, cached: &Cached) -> Refreshed {
        let path = &cached.shown;
        if let SecretAction::Renew { .. } = cached.next
            && let Ok(secret) = &cached.result
        {
            let requested = Duration::from_secs(secret.lease_duration);
            match self
                .client
                .renew_lease(&secret.lease_id, Some(requested))
                .await
            {
                Ok(renewed) => {
                    let granted = Duration::from_secs(renewed.lease_duration);
                    debug!(%path, ?granted, "lease renewed");
                    return Refreshed::Renewed(lease::after_renewal(
                        requested,
                        granted,
                        Instant::now(),
                        rand::random::<f64>(),
                    ));
                }
                Err(err) => {
                    // A revoked or expired lease cannot be renewed; new
                    // credentials can still be fetched.
                    self.metrics.vault_error(err.kind());
                    let err = path.lease_error(err);
                    warn!(%path, "lease renewal failed, fetching anew: {err}");
                }
            }
        }

        match self.fetch_one(request, path).await {
            Ok(secret) => Refreshed::Fetched(secret),
            Err(err) => Refreshed::Failed(err),
        }
    }

    /// Fetches every request once, in parallel, caching successes and
    /// failures alike: a failure fails the templates that use it. Each
    /// request comes with how it is shown.
    async fn fetch(&mut self, requests: BTreeMap<Request, ShownPath>) {
        let this = &*self;
        let results: Vec<_> = futures::stream::iter(requests)
            .map(|(request, shown)| async move {
                let result = this.fetch_one(&request, &shown).await;
                (request, shown, result)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect()
            .await;
        for (request, shown, result) in results {
            let next = match &result {
                Ok(secret) => schedule(secret, self.static_interval),
                Err(_) => SecretAction::Refetch {
                    at: Instant::now() + self.retry.min_backoff,
                },
            };
            let failures = u32::from(result.is_err());
            self.cache.insert(
                request.clone(),
                Cached {
                    shown,
                    result,
                    next,
                    failures,
                },
            );
            self.record_lease(&request);
        }
    }

    fn record_lease(&self, request: &Request) {
        if let Some(Cached {
            shown,
            result: Ok(secret),
            ..
        }) = self.cache.get(request)
        {
            match lease::Lifetime::of(secret, SystemTime::now()).ttl() {
                Some(ttl) => self.metrics.lease_remaining(shown, ttl),
                None => self.metrics.forget_lease(shown),
            }
        }
    }

    /// One request, with transient failures (connection refused, timeouts,
    /// a sealed Vault) retried with capped, jittered backoff. Errors that
    /// retrying cannot fix (403, 404) return at once, worded as `path` shows
    /// the request.
    async fn fetch_one(&self, request: &Request, path: &ShownPath) -> Result<Arc<Secret>, String> {
        let mut attempt = 0;
        loop {
            let result = match request {
                Request::Read { path } => {
                    let path = self.kv.resolve(&self.client, path, Operation::Read).await;
                    self.client.read(&path).await
                }
                Request::Write { path, data } => {
                    let body = data
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect();
                    self.client.write(path, &body).await
                }
                Request::List { path } => {
                    let path = self.kv.resolve(&self.client, path, Operation::List).await;
                    self.client.list(&path).await.map(listed)
                }
            };
            match result {
                Ok(secret) => return Ok(Arc::new(secret)),
                Err(err) => {
                    self.metrics.vault_error(err.kind());
                    if err.status() == Some(reqwest::StatusCode::FORBIDDEN) {
                        self.denied.store(true, Ordering::Relaxed);
                    }
                    let err = path.request_error(err);
                    if !err.is_retryable() || attempt >= self.retry.attempts {
                        return Err(err.to_string());
                    }
                    let delay = lease::retry_delay(
                        attempt,
                        self.retry.min_backoff,
                        self.retry.max_backoff,
                        rand::random(),
                    );
                    attempt += 1;
                    warn!(%path, attempt, retry_in = ?delay, "Vault request failed, retrying: {err}");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn write(&self, index: usize, contents: &[u8]) -> Result<Outcome> {
        let entry = &self.entries[index];
        let config = &entry.config;
        let outcome = write::replace(
            &config.destination,
            contents,
            config.perms,
            config.create_dest_dirs,
        )
        .map_err(|source| Error::Write {
            destination: config.destination.clone(),
            source,
        })?;
        match outcome {
            Outcome::Written => {
                info!(destination = %config.destination.display(), "rendered");
                if let Some(command) = &config.command {
                    run_command(command, config.command_timeout, &config.destination).await;
                }
                if let Some(reload) = &entry.reload {
                    send_reload(reload);
                }
            }
            Outcome::Unchanged => {
                debug!(destination = %config.destination.display(), "unchanged");
            }
        }
        Ok(outcome)
    }

    /// Revokes the leases of cached secrets, e.g. at shutdown. A failure is
    /// logged and the next lease revoked.
    pub async fn revoke_leases(&self) {
        for cached in self.cache.values() {
            let Ok(secret) = &cached.result else {
                continue;
            };
            if secret.lease_id.is_empty() {
                continue;
            }
            if let Err(err) = self.client.revoke_lease(&secret.lease_id).await {
                let path = &cached.shown;
                let err = path.lease_error(err);
                warn!(%path, "revoking the lease failed: {err}");
            }
        }
    }
}

/// What refreshing one cached secret gave.
enum Refreshed {
    /// The lease was renewed; the data is unchanged.
    Renewed(SecretAction),
    /// The secret was fetched anew.
    Fetched(Arc<Secret>),
    /// Neither worked.
    Failed(String),
}

/// When a freshly fetched secret must be renewed or fetched anew.
fn schedule(secret: &Secret, static_interval: Duration) -> SecretAction {
    lease::next_action(
        lease::Lifetime::of(secret, SystemTime::now()),
        Instant::now(),
        static_interval,
        rand::random::<f64>(),
    )
}

/// A LIST result kept in the cache like any response: `data.keys`.
fn listed(keys: Vec<String>) -> Secret {
    let mut secret = Secret::default();
    secret.data.0.insert(
        "keys".to_owned(),
        keys.into_iter().map(serde_json::Value::String).collect(),
    );
    secret
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

fn send_reload(reload: &config::Reload) {
    match reload::signal_processes(reload.signal, &reload.process) {
        Ok(0) => warn!(process = %reload.process, "no process to signal after the file changed"),
        Ok(count) => {
            info!(process = %reload.process, signal = reload.signal.as_str(), count, "signalled")
        }
        Err(err) => warn!("reload signal failed: {err}"),
    }
}

/// Runs a template's command after its file changed. Its failure is logged
/// and does not fail the render: the file is already in place.
async fn run_command(argv: &[String], timeout: Duration, destination: &Path) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let destination = destination.display();
    let child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            warn!(%destination, command = %program, error = %err, "template command could not start");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            info!(%destination, command = %program, "template command succeeded");
        }
        Ok(Ok(status)) => {
            warn!(%destination, command = %program, %status, "template command failed");
        }
        Ok(Err(err)) => {
            warn!(%destination, command = %program, error = %err, "template command failed");
        }
        Err(_) => {
            warn!(%destination, command = %program, ?timeout, "template command timed out; killed");
        }
    }
}
