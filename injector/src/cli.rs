//! Command line: `keyhole-injector serve` and `keyhole-injector mutate`.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use axum_server::Handle;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use prometheus_client::registry::Registry;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::admin::{self, AdminState};
use crate::env;
use crate::limits::MAX_MANIFEST_BYTES;
use crate::metrics::{TlsMetrics, WebhookMetrics};
use crate::offline::{self, Problem, report};
use crate::settings::{Settings, go_bool};
use crate::tls::CertStore;
use crate::tls::auto::AutoTls;
use crate::tls::files::CertFiles;
use crate::webhook::{self, AppState, Timeouts};

/// How long in-flight reviews may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(20);

/// Where a pod's namespace is mounted by default.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// keyhole-injector adds keyhole-agent to pods that ask for Vault secrets.
#[derive(Debug, Parser)]
#[command(name = "keyhole-injector", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the mutating admission webhook over HTTPS.
    Serve(Box<Serve>),
    /// Apply the webhook's mutation to manifests in a file and print them.
    Mutate(Box<Mutate>),
}

/// `keyhole-injector serve`.
#[derive(Debug, Args)]
pub struct Serve {
    /// Address of the HTTPS webhook listener (`POST /mutate`); Go's `:8443`
    /// form means every interface.
    #[arg(long, env = "KEYHOLE_LISTEN", default_value = "0.0.0.0:8443", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin listener (`/livez`, `/readyz`, `/metrics`).
    #[arg(long, env = "KEYHOLE_ADMIN_LISTEN", default_value = "0.0.0.0:9090", value_parser = listen_address)]
    pub admin_listen: SocketAddr,
    /// Where the serving certificate comes from.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Defaults for injected pods.
    #[command(flatten)]
    pub settings: Settings,
    /// What set each flag, for errors found after parsing.
    #[arg(skip)]
    pub sources: env::Sources,
}

/// Serving certificate options: files, or `--tls-auto`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain file, reloaded when it changes.
    #[arg(
        long,
        env = "KEYHOLE_TLS_CERT",
        requires = "tls_key",
        required_unless_present = "tls_auto",
        conflicts_with = "tls_auto"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key file of the certificate, reloaded when it changes.
    #[arg(long, env = "KEYHOLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Generate a CA and serving certificate, keep them in a Secret and patch the CA
    /// into the MutatingWebhookConfiguration.
    #[arg(
        long,
        env = "KEYHOLE_TLS_AUTO",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = go_bool
    )]
    pub tls_auto: bool,
    /// Name of the Secret holding the generated CA and certificate.
    #[arg(
        long,
        env = "KEYHOLE_TLS_AUTO_SECRET",
        default_value = "keyhole-injector-tls"
    )]
    pub tls_auto_secret: String,
    /// Name of the MutatingWebhookConfiguration whose webhooks get the CA bundle.
    #[arg(
        long,
        env = "KEYHOLE_TLS_AUTO_WEBHOOK_CONFIG",
        default_value = "keyhole-injector"
    )]
    pub tls_auto_webhook_config: String,
    /// DNS names of the generated certificate, comma separated
    /// (e.g. `keyhole-injector.keyhole.svc`).
    #[arg(
        long,
        env = "KEYHOLE_TLS_AUTO_HOSTS",
        value_delimiter = ',',
        required_if_eq("tls_auto", "true")
    )]
    pub tls_auto_hosts: Vec<String>,
    /// Namespace of the Secret; defaults to the injector's own namespace.
    #[arg(long, env = "KEYHOLE_NAMESPACE")]
    pub namespace: Option<String>,
}

/// Log output options.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter: a level (`info`) or `tracing` directives (`keyhole_injector=debug`).
    #[arg(
        id = "injector_log_level",
        long = "log-level",
        value_name = "LOG_LEVEL",
        env = "KEYHOLE_LOG_LEVEL",
        default_value = "info",
        value_parser = log_filter
    )]
    pub log_level: String,
    /// Log line format.
    #[arg(
        id = "injector_log_format",
        long = "log-format",
        value_name = "LOG_FORMAT",
        env = "KEYHOLE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (vault-k8s calls them `standard`).
    #[value(alias = "standard")]
    Text,
    /// One JSON object per line.
    Json,
}

/// `keyhole-injector mutate`.
#[derive(Debug, Args)]
pub struct Mutate {
    /// Manifest file (multi-document YAML), or `-` for standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Only check the annotations; print nothing but problems. Exits 0 when
    /// there is no error, 1 when there is one, 2 when the file cannot be read
    /// as YAML.
    #[arg(long)]
    pub check: bool,
    /// With `--check`, fail (exit 1) on warnings too, such as a misspelled
    /// annotation name.
    #[arg(long, requires = "check")]
    pub strict: bool,
    /// How `--check` prints problems: `text` lines on standard error, or on
    /// standard output one `json` document or `github` workflow commands.
    #[arg(long, value_enum, default_value_t = Output::Text, requires = "check")]
    pub output: Output,
    /// Defaults for injected pods, as `serve` takes them.
    #[command(flatten)]
    pub settings: Settings,
}

/// The forms `mutate --check` prints problems in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// `FILE:LINE:COL: error: Kind/namespace/name: message`, as compilers write.
    Text,
    /// One JSON array with an object per problem.
    Json,
    /// GitHub Actions workflow commands (`::error file=...::message`).
    Github,
}

/// Exit code of a file that cannot be read, or is not YAML; clap uses it
/// for a wrong command line too.
const EXIT_UNREADABLE: u8 = 2;

impl Cli {
    /// Parses `args` with the flags' environment variables, vault-k8s's
    /// `AGENT_INJECT_*` names included (see [`env::bind`]), as `lookup`
    /// reports them set; returns the warnings about the variables it does
    /// not apply. An error about a value taken from a variable names the
    /// variable.
    pub fn try_parse_with_env(
        args: Vec<OsString>,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<(Cli, Vec<String>), clap::Error> {
        let (mut command, warnings) = env::bind(Cli::command(), lookup);
        let parsed = command
            .try_get_matches_from_mut(&args)
            .and_then(|mut matches| {
                let sources = env::Sources::of(&command, &matches, &args);
                let mut cli = Cli::from_arg_matches_mut(&mut matches)?;
                if let Command::Serve(serve) = &mut cli.command {
                    serve.sources = sources;
                }
                Ok(cli)
            });
        let parsed = parsed
            .map_err(|err| env::name_the_source(err.format(&mut command), &command, &args))?;
        Ok((parsed, warnings))
    }

    /// Parses the process's command line and environment as
    /// [`Cli::try_parse_with_env`] does; on an error prints it and exits.
    pub fn parse_with_env() -> (Cli, Vec<String>) {
        // As in vault-k8s, an empty variable counts as unset.
        let lookup = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        Cli::try_parse_with_env(std::env::args_os().collect(), &lookup)
            .unwrap_or_else(|err| err.exit())
    }
}

/// Runs a parsed command line, first logging `warnings` about its environment
/// variables; the process exits with the returned code.
pub fn run(cli: Cli, warnings: Vec<String>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(serve) => {
            serve.log.init()?;
            for warning in warnings {
                warn!("{warning}");
            }
            tokio::runtime::Runtime::new()
                .context("cannot start the async runtime")?
                .block_on(serve.run())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mutate(mutate) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
            Ok(mutate.run())
        }
    }
}

/// Reads a listen address, also in Go's `:PORT` form (every interface),
/// which vault-k8s's `AGENT_INJECT_LISTEN` takes.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_owned(),
    };
    full.parse()
        .map_err(|_| format!("{text:?} is not an address such as 0.0.0.0:8443 or :8443"))
}

/// Reads `--log-level`: a level or `tracing` directives.
fn log_filter(text: &str) -> Result<String, String> {
    EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|err| format!("{text:?} is not a level or tracing filter: {err}"))
}

impl LogArgs {
    fn init(&self) -> anyhow::Result<()> {
        let Self {
            log_level,
            log_format,
        } = self;
        let filter =
            EnvFilter::try_new(log_level).with_context(|| format!("log filter {log_level:?}"))?;
        // Colours only for a terminal: `kubectl logs` and files get plain bytes.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stdout().is_terminal());
        let installed = match log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        installed.map_err(|err| anyhow::anyhow!("cannot install the logger: {err}"))
    }
}

impl Serve {
    /// Serves the webhook and the admin port until SIGTERM or Ctrl-C.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listen,
            admin_listen,
            tls,
            log: _,
            settings,
            sources,
        } = self;
        settings.validate()?;
        let mut registry = Registry::with_prefix("keyhole_injector");
        let webhook_metrics = WebhookMetrics::register(&mut registry);
        let tls_metrics = TlsMetrics::register(&mut registry);
        let store = CertStore::new();
        let admin = admin::app(AdminState::new(store.loaded(), registry));
        let config = store.server_config()?;

        let handle = Handle::new();
        let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let drain = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            info!("shutting down, draining in-flight reviews");
            drain.graceful_shutdown(Some(DRAIN));
            stop_tx.send_replace(true);
        });

        // The admin port answers (unready) while the first certificate loads,
        // which with --tls-auto waits for the Kubernetes API.
        let admin_listener = tokio::net::TcpListener::bind(admin_listen)
            .await
            .with_context(|| {
                let source = sources.name("admin_listen", "admin-listen");
                format!("cannot listen on {admin_listen} ({source})")
            })?;
        let mut stopping = stop.clone();
        let admin_server = tokio::spawn(async move {
            axum::serve(admin_listener, admin)
                .with_graceful_shutdown(async move {
                    // An error means the sender is gone, which also means stop.
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await
        });

        // With --tls-auto the first certificate waits for the Kubernetes API;
        // a shutdown meanwhile ends the wait.
        let certificates = tokio::select! {
            started = tls.start(store, tls_metrics, &sources) => started?,
            _ = stopping.wait_for(|stop| *stop) => {
                admin_server.await?.context("admin server")?;
                return Ok(());
            }
        };
        let listener = std::net::TcpListener::bind(listen).with_context(|| {
            let source = sources.name("listen", "listen");
            format!("cannot listen on {listen} ({source})")
        })?;
        info!(%listen, %admin_listen, "serving");
        let app = webhook::app(AppState::new(settings, webhook_metrics));
        webhook::serve(listener, config, app, handle, Timeouts::default())
            .await
            .with_context(|| format!("webhook server on {listen}"))?;
        certificates.abort();
        admin_server.await?.context("admin server")?;
        Ok(())
    }
}

impl TlsArgs {
    /// Loads the first certificate into `store` and starts keeping it current.
    /// `sources` names the flag or variable that turned automatic TLS on.
    async fn start(
        self,
        store: CertStore,
        metrics: TlsMetrics,
        sources: &env::Sources,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let Self {
            tls_cert,
            tls_key,
            tls_auto,
            tls_auto_secret,
            tls_auto_webhook_config,
            tls_auto_hosts,
            namespace,
        } = self;
        if tls_auto {
            let namespace = match namespace {
                Some(namespace) => namespace,
                None => std::fs::read_to_string(NAMESPACE_FILE)
                    .map(|namespace| namespace.trim().to_owned())
                    .with_context(|| {
                        format!(
                            "--namespace (KEYHOLE_NAMESPACE) not set and cannot read {NAMESPACE_FILE}"
                        )
                    })?,
            };
            let client = kube::Client::try_default().await.with_context(|| {
                // Without `--tls-auto` itself, vault-k8s's AGENT_INJECT_TLS_AUTO,
                // bound to the webhook configuration's name, turned it on.
                let switch = sources
                    .get("tls_auto")
                    .or_else(|| sources.get("tls_auto_webhook_config"))
                    .unwrap_or("--tls-auto");
                format!("cannot configure the Kubernetes client for {switch}")
            })?;
            let auto = AutoTls {
                client,
                namespace,
                secret: tls_auto_secret,
                webhook_config: tls_auto_webhook_config,
                hosts: tls_auto_hosts,
            };
            auto.refresh(&store).await?;
            return Ok(tokio::spawn(async move {
                auto.keep_current(store, metrics).await
            }));
        }
        let (Some(cert), Some(key)) = (tls_cert, tls_key) else {
            bail!("either --tls-cert and --tls-key, or --tls-auto, is required");
        };
        let files = CertFiles { cert, key };
        store.set(files.load()?);
        Ok(tokio::spawn(async move {
            if let Err(error) = files.watch(store, metrics).await {
                warn!(%error, "certificate files are no longer watched");
            }
        }))
    }
}

impl Mutate {
    /// Prints the mutated manifests, or with `--check` nothing but problems,
    /// and returns the exit code: 0 without errors, 1 with one (or with a
    /// warning, under `--strict`), 2 when the input cannot be read.
    pub fn run(self) -> ExitCode {
        let Self {
            file,
            check,
            strict,
            output,
            settings,
        } = self;
        let name = if file.as_os_str() == "-" {
            "<stdin>".to_owned()
        } else {
            file.display().to_string()
        };
        let yaml = match read_manifests(&file) {
            Ok(yaml) => yaml,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_UNREADABLE);
            }
        };
        let result = if check {
            offline::check_documents(&yaml, &settings).map(|warnings| (String::new(), warnings))
        } else {
            offline::mutate_documents(&yaml, &settings)
                .map(|mutated| (mutated.yaml, mutated.warnings))
        };
        let (printed, problems, code) = match result {
            Ok((printed, warnings)) => {
                let code = if strict && !warnings.is_empty() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                };
                (printed, warnings, code)
            }
            Err(offline::Error::Rejected(problems)) => {
                let code = if problems.iter().any(Problem::is_unreadable) {
                    ExitCode::from(EXIT_UNREADABLE)
                } else {
                    ExitCode::FAILURE
                };
                (String::new(), problems, code)
            }
            Err(err @ offline::Error::Settings(_)) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_UNREADABLE);
            }
        };
        match output {
            Output::Text => eprint!("{}", report::text(&name, &problems)),
            Output::Json => print!("{}", report::json(&name, &problems)),
            Output::Github => print!("{}", report::github(&name, &problems)),
        }
        print!("{printed}");
        code
    }
}

/// The manifests in `file`, or on standard input for `-`, up to
/// [`MAX_MANIFEST_BYTES`].
fn read_manifests(file: &Path) -> Result<String, String> {
    let (reader, name): (Box<dyn Read>, String) = if file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), "standard input".to_owned())
    } else {
        let opened = std::fs::File::open(file)
            .map_err(|err| format!("cannot read {}: {err}", file.display()))?;
        (Box::new(opened), file.display().to_string())
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read {name}: {err}"))?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{name} holds more than {MAX_MANIFEST_BYTES} bytes of manifests; check it in parts"
        ));
    }
    String::from_utf8(bytes).map_err(|err| format!("cannot read {name}: {err}"))
}

/// Completes on SIGTERM (what the kubelet sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use keyhole_agent::config::{LogFormat as AgentLogFormat, LogLevel as AgentLogLevel};

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn log_flags_are_the_injectors_and_agent_flags_are_prefixed() {
        let cli = Cli::try_parse_from([
            "keyhole-injector",
            "serve",
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--log-level=warn",
            "--log-format=json",
            "--agent-log-level=debug",
            "--agent-log-format=json",
        ])
        .expect("valid command line");
        let Command::Serve(serve) = cli.command else {
            panic!("not serve: {cli:?}");
        };
        assert_eq!(serve.log.log_level, "warn");
        assert_eq!(serve.log.log_format, LogFormat::Json);
        assert_eq!(serve.settings.log_level, AgentLogLevel::Debug);
        assert_eq!(serve.settings.log_format, AgentLogFormat::Json);
    }

    /// Parses `args` with no environment variable bound beyond clap's own.
    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let args = args.iter().map(OsString::from).collect();
        Cli::try_parse_with_env(args, &|_| None).map(|(cli, _)| cli)
    }

    #[test]
    fn serve_refuses_a_bad_default_naming_the_flag_written() {
        for (arg, shown) in [
            ("--agent-mem-limit=32MB", "'--agent-mem-limit <MEM_LIMIT>'"),
            ("--mem-limit=32MB", "'--mem-limit <MEM_LIMIT>'"),
            ("--agent-log-level=bogus", "'--agent-log-level <LOG_LEVEL>'"),
            ("--log-level=keyhole=bogus", "'--log-level <LOG_LEVEL>'"),
        ] {
            let err = parse(&[
                "keyhole-injector",
                "serve",
                "--tls-cert=/tls/tls.crt",
                "--tls-key=/tls/tls.key",
                arg,
            ])
            .expect_err("an invalid value");
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(err.to_string().contains(shown), "{arg}: {err}");
        }
    }

    #[test]
    fn flags_and_variables_follow_one_naming_rule() {
        let command = Cli::command();
        for sub in command.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else {
                    continue;
                };
                // `mutate`'s own input flags describe one run, not a setting.
                if ["help", "filename", "check", "strict", "output"].contains(&long) {
                    continue;
                }
                let expected = format!("KEYHOLE_{}", long.to_uppercase().replace('-', "_"));
                assert_eq!(
                    arg.get_env().and_then(|env| env.to_str()),
                    Some(expected.as_str()),
                    "{} --{long}",
                    sub.get_name()
                );
            }
        }
    }

    #[test]
    fn vault_k8s_variables_bind_to_keyhole_flags() {
        let set = |names: &'static [&'static str]| {
            move |name: &str| names.contains(&name).then(|| OsString::from("x"))
        };
        let bound = |command: &clap::Command, sub: &str, id: &str| {
            let sub = command.find_subcommand(sub).expect("subcommand");
            let arg = sub
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .expect("argument");
            arg.get_env()
                .map(|env| env.to_string_lossy().into_owned())
                .expect("an env name")
        };
        let (command, warnings) = env::bind(
            Cli::command(),
            &set(&["AGENT_INJECT_CPU_REQUEST", "AGENT_INJECT_TLS_AUTO"]),
        );
        assert_eq!(warnings, Vec::<String>::new());
        for sub in ["serve", "mutate"] {
            assert_eq!(
                bound(&command, sub, "cpu_request"),
                "AGENT_INJECT_CPU_REQUEST"
            );
        }
        assert_eq!(
            bound(&command, "serve", "tls_auto_webhook_config"),
            "AGENT_INJECT_TLS_AUTO"
        );
        let serve = command.find_subcommand("serve").expect("serve");
        let tls_auto = serve
            .get_arguments()
            .find(|arg| arg.get_id() == "tls_auto")
            .expect("--tls-auto");
        assert_eq!(tls_auto.get_default_values(), ["true"]);

        let (command, warnings) = env::bind(
            Cli::command(),
            &set(&[
                "AGENT_INJECT_CPU_REQUEST",
                "KEYHOLE_AGENT_CPU_REQUEST",
                "AGENT_INJECT_VAULT_IMAGE",
            ]),
        );
        assert_eq!(
            bound(&command, "serve", "cpu_request"),
            "KEYHOLE_AGENT_CPU_REQUEST"
        );
        assert_eq!(
            warnings,
            [
                "AGENT_INJECT_CPU_REQUEST is ignored: KEYHOLE_AGENT_CPU_REQUEST is also set, \
                 and keyhole's name wins",
                "AGENT_INJECT_VAULT_IMAGE is ignored: it names a Vault image to run as the \
                 agent; keyhole injects keyhole-agent, whose image is --agent-image",
            ]
        );
    }

    #[test]
    fn every_vault_k8s_variable_is_bound_or_explained() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        for (vault_k8s, keyhole) in env::VAULT_K8S {
            assert!(
                serve
                    .get_arguments()
                    .any(|arg| arg.get_env().is_some_and(|env| env == *keyhole)),
                "{vault_k8s} stands for {keyhole}, which no flag reads"
            );
        }
        let mut names: Vec<&str> = env::VAULT_K8S
            .iter()
            .chain(env::IGNORED)
            .map(|(name, _)| *name)
            .collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a variable listed twice");
    }

    #[test]
    fn listen_addresses_take_gos_port_only_form() {
        let cli = parse(&[
            "keyhole-injector",
            "serve",
            "--tls-auto",
            "--tls-auto-hosts=injector.keyhole.svc",
            "--listen=:8080",
            "--admin-listen=127.0.0.1:9191",
        ])
        .expect("valid command line");
        let Command::Serve(serve) = cli.command else {
            panic!("not serve: {cli:?}");
        };
        assert_eq!(serve.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(serve.admin_listen.to_string(), "127.0.0.1:9191");
        assert!(serve.tls.tls_auto);
    }

    #[test]
    fn log_format_takes_vault_k8s_standard() {
        let cli = parse(&[
            "keyhole-injector",
            "serve",
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--log-format=standard",
        ])
        .expect("valid command line");
        let Command::Serve(serve) = cli.command else {
            panic!("not serve: {cli:?}");
        };
        assert_eq!(serve.log.log_format, LogFormat::Text);
    }

    #[test]
    fn serve_takes_files_or_auto_tls_but_not_both() {
        let files = Cli::try_parse_from([
            "keyhole-injector",
            "serve",
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
        ]);
        let Ok(Cli {
            command: Command::Serve(serve),
        }) = files
        else {
            panic!("{files:?}");
        };
        assert_eq!(serve.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(serve.admin_listen.to_string(), "0.0.0.0:9090");
        let both = Cli::try_parse_from([
            "keyhole-injector",
            "serve",
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--tls-auto",
            "--tls-auto-hosts=injector.keyhole.svc",
        ])
        .expect_err("files and auto-TLS conflict");
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
        let neither = Cli::try_parse_from(["keyhole-injector", "serve"])
            .expect_err("a certificate source is required");
        assert_eq!(
            neither.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }
}
