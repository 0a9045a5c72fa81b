//! The annotation keys keyhole knows, each declared once by its prefix and
//! its name after the prefix.
//!
//! A [`Key`] is one annotation (`vault.hashicorp.com/agent-inject`); a
//! [`Family`] is a stem that takes a suffix, the name of a secret or of a
//! parameter (`vault.hashicorp.com/agent-inject-secret-<name>`). Both print as
//! the full key, so messages name them as users write them; reading them from
//! a pod is [`super::read`]'s job.

use std::fmt;

/// Prefix of the vault-k8s annotations.
pub const VAULT_PREFIX: &str = "vault.hashicorp.com/";
/// Prefix of the same annotations in OpenBao's fork of vault-k8s.
pub const OPENBAO_PREFIX: &str = "openbao.org/";
/// Prefix of the keyhole-only annotations.
pub const KEYHOLE_PREFIX: &str = "keyhole.dev/";

/// The prefixes of the annotations keyhole reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// [`VAULT_PREFIX`]: the annotations of vault-k8s.
    Vault,
    /// [`OPENBAO_PREFIX`]: another spelling of [`Prefix::Vault`]. OpenBao's
    /// fork of vault-k8s reads every vault-k8s annotation under it, with the
    /// same name and meaning.
    OpenBao,
    /// [`KEYHOLE_PREFIX`]: keyhole's own additions.
    Keyhole,
}

impl Prefix {
    /// The prefix as written, with its trailing `/`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Vault => VAULT_PREFIX,
            Self::OpenBao => OPENBAO_PREFIX,
            Self::Keyhole => KEYHOLE_PREFIX,
        }
    }

    /// The prefix keys are declared with: an alias reads as the prefix it
    /// stands for.
    pub const fn canonical(self) -> Self {
        match self {
            Self::OpenBao => Self::Vault,
            other => other,
        }
    }

    /// The prefixes a key declared with `self` may be written with, the
    /// declared one first.
    pub const fn spellings(self) -> &'static [Self] {
        match self {
            Self::Vault | Self::OpenBao => &[Self::Vault, Self::OpenBao],
            Self::Keyhole => &[Self::Keyhole],
        }
    }

    /// Splits `key` into one of our prefixes, as written, and the name after it.
    pub fn split(key: &str) -> Option<(Self, &str)> {
        [Self::Vault, Self::OpenBao, Self::Keyhole]
            .into_iter()
            .find_map(|prefix| Some((prefix, key.strip_prefix(prefix.as_str())?)))
    }
}

/// One annotation: a prefix and the name after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Where the key starts.
    pub prefix: Prefix,
    /// The name after the prefix, e.g. `agent-inject`.
    pub name: &'static str,
}

impl Key {
    /// `vault.hashicorp.com/<name>`.
    pub const fn vault(name: &'static str) -> Self {
        Self {
            prefix: Prefix::Vault,
            name,
        }
    }

    /// `keyhole.dev/<name>`.
    pub const fn keyhole(name: &'static str) -> Self {
        Self {
            prefix: Prefix::Keyhole,
            name,
        }
    }

    /// Whether this is the key with `name` after `prefix`, in any spelling
    /// of the prefix.
    pub fn is(self, prefix: Prefix, name: &str) -> bool {
        self.prefix.canonical() == prefix.canonical() && self.name == name
    }

    /// This key with its prefix spelled `prefix`.
    pub const fn spelled(self, prefix: Prefix) -> Self {
        Self {
            prefix,
            name: self.name,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix.as_str(), self.name)
    }
}

/// Annotations that share a stem and differ in a suffix: the name of a
/// secret or of a parameter. Prints as `<prefix><stem>*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// Where the keys start.
    pub prefix: Prefix,
    /// The name after the prefix up to the suffix, e.g. `agent-inject-secret-`.
    pub stem: &'static str,
}

impl Family {
    const fn vault(stem: &'static str) -> Self {
        Self {
            prefix: Prefix::Vault,
            stem,
        }
    }

    const fn keyhole(stem: &'static str) -> Self {
        Self {
            prefix: Prefix::Keyhole,
            stem,
        }
    }

    /// The full key of this family's member for `suffix`.
    pub fn key(self, suffix: &str) -> String {
        format!("{}{}{suffix}", self.prefix.as_str(), self.stem)
    }

    /// The suffix when the key with `name` after `prefix`, in any spelling
    /// of the prefix, is of this family.
    pub fn suffix(self, prefix: Prefix, name: &str) -> Option<&str> {
        (self.prefix.canonical() == prefix.canonical())
            .then(|| name.strip_prefix(self.stem))
            .flatten()
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}*", self.prefix.as_str(), self.stem)
    }
}

/// Declares the keys keyhole acts on that take no suffix, and lists them in [`KNOWN`].
macro_rules! known_keys {
    ($($(#[$doc:meta])* $name:ident = $prefix:ident($text:literal);)*) => {
        $($(#[$doc])* pub const $name: Key = Key::$prefix($text);)*

        /// Every annotation without a suffix that keyhole acts on.
        pub const KNOWN: &[Key] = &[$($name),*];
    };
}

known_keys! {
    /// Inject the agent into this pod.
    INJECT = vault("agent-inject");
    /// `injected` once the agent is in; any other value asks for a fresh injection.
    STATUS = vault("agent-inject-status");
    /// Also write the agent's Vault token to `<secret-volume-path>/token`.
    INJECT_TOKEN = vault("agent-inject-token");
    /// The template of secrets without one: `map` or `json`.
    DEFAULT_TEMPLATE = vault("agent-inject-default-template");
    /// Comma-separated app containers that get the secrets.
    CONTAINERS = vault("agent-inject-containers");
    /// Keep the case of secret names in file names.
    PRESERVE_SECRET_CASE = vault("preserve-secret-case");
    /// Where the secrets volume is mounted.
    SECRET_VOLUME_PATH = vault("secret-volume-path");
    /// Render the secrets before the app starts.
    PRE_POPULATE = vault("agent-pre-populate");
    /// Only render the secrets before the app starts; no long-running agent.
    PRE_POPULATE_ONLY = vault("agent-pre-populate-only");
    /// Put the agent's init container before the app's.
    INIT_FIRST = vault("agent-init-first");
    /// The agent's image.
    IMAGE = vault("agent-image");
    /// ConfigMap with the user's own agent config.
    CONFIGMAP = vault("agent-configmap");
    /// Kubernetes Secret mounted into the agent.
    EXTRA_SECRET = vault("agent-extra-secret");
    /// The Vault role to log in with.
    ROLE = vault("role");
    /// Mount path of the auth method.
    AUTH_PATH = vault("auth-path");
    /// Type of the auth method.
    AUTH_TYPE = vault("auth-type");
    /// Vault Enterprise namespace.
    NAMESPACE = vault("namespace");
    /// Vault's address.
    SERVICE = vault("service");
    /// CA certificate file inside the agent.
    CA_CERT = vault("ca-cert");
    /// CA directory inside the agent.
    CA_KEY = vault("ca-key");
    /// Client certificate file inside the agent.
    CLIENT_CERT = vault("client-cert");
    /// Client key file inside the agent.
    CLIENT_KEY = vault("client-key");
    /// Kubernetes Secret with TLS files, mounted into the agent.
    TLS_SECRET = vault("tls-secret");
    /// Name to verify Vault's certificate against.
    TLS_SERVER_NAME = vault("tls-server-name");
    /// Skip verification of Vault's certificate.
    TLS_SKIP_VERIFY = vault("tls-skip-verify");
    /// Retries of failing requests to Vault.
    CLIENT_MAX_RETRIES = vault("client-max-retries");
    /// Timeout of requests to Vault.
    CLIENT_TIMEOUT = vault("client-timeout");
    /// First delay between failed logins.
    AUTH_MIN_BACKOFF = vault("auth-min-backoff");
    /// Cap on the delay between failed logins.
    AUTH_MAX_BACKOFF = vault("auth-max-backoff");
    /// Exit when login fails instead of retrying.
    AUTO_AUTH_EXIT_ON_ERR = vault("agent-auto-auth-exit-on-err");
    /// The agent's CPU limit.
    LIMITS_CPU = vault("agent-limits-cpu");
    /// The agent's memory limit.
    LIMITS_MEM = vault("agent-limits-mem");
    /// The agent's ephemeral-storage limit.
    LIMITS_EPHEMERAL = vault("agent-limits-ephemeral");
    /// The agent's CPU request.
    REQUESTS_CPU = vault("agent-requests-cpu");
    /// The agent's memory request.
    REQUESTS_MEM = vault("agent-requests-mem");
    /// The agent's ephemeral-storage request.
    REQUESTS_EPHEMERAL = vault("agent-requests-ephemeral");
    /// Give the agent a restrictive security context.
    SET_SECURITY_CONTEXT = vault("agent-set-security-context");
    /// The agent's user id.
    RUN_AS_USER = vault("agent-run-as-user");
    /// The agent's group id.
    RUN_AS_GROUP = vault("agent-run-as-group");
    /// Run the agent as the first app container's user.
    RUN_AS_SAME_USER = vault("agent-run-as-same-user");
    /// Set `shareProcessNamespace` on the pod.
    SHARE_PROCESS_NAMESPACE = vault("agent-share-process-namespace");
    /// Revoke the token and leases when the agent stops.
    REVOKE_ON_SHUTDOWN = vault("agent-revoke-on-shutdown");
    /// How often secrets without a lease are re-read.
    STATIC_SECRET_RENDER_INTERVAL = vault("template-static-secret-render-interval");
    /// Make the agent exit when rendering runs out of retries.
    EXIT_ON_RETRY_FAILURE = vault("template-config-exit-on-retry-failure");
    /// The agent's log level.
    LOG_LEVEL = vault("log-level");
    /// The agent's log format.
    LOG_FORMAT = vault("log-format");
    /// Parts of the agent that keep no idle connection to Vault.
    DISABLE_IDLE_CONNECTIONS = vault("agent-disable-idle-connections");
    /// Parts of the agent that ask Vault to close each connection.
    DISABLE_KEEP_ALIVES = vault("agent-disable-keep-alives");
    /// A pod volume with the service-account token to log in with.
    SERVICE_ACCOUNT_TOKEN_VOLUME = vault("agent-service-account-token-volume-name");
    /// RFC 6902 JSON patch of the long-running agent container.
    JSON_PATCH = vault("agent-json-patch");
    /// RFC 6902 JSON patch of the classic init container.
    INIT_JSON_PATCH = vault("agent-init-json-patch");
    /// An app container whose volume mounts the agent containers get too.
    COPY_VOLUME_MOUNTS = vault("agent-copy-volume-mounts");
    /// The HTTPS proxy the agent reaches Vault through.
    PROXY_ADDRESS = vault("proxy-address");
    /// Seconds between SIGTERM and revoking, with revoke-on-shutdown.
    REVOKE_GRACE = vault("agent-revoke-grace");
    /// Listen on localhost for the app's Vault requests (the API proxy).
    CACHE_ENABLE = vault("agent-cache-enable");
    /// Whether proxied requests get the agent's token: `true` or `force`.
    CACHE_USE_AUTO_AUTH_TOKEN = vault("agent-cache-use-auto-auth-token");
    /// The port of the agent's localhost listener.
    CACHE_LISTENER_PORT = vault("agent-cache-listener-port");
    /// Stop the agent when the persistent cache it finds cannot be used.
    CACHE_EXIT_ON_ERR = vault("agent-cache-exit-on-err");
    /// Serve `POST /agent/v1/quit` on the localhost listener.
    ENABLE_QUIT = vault("agent-enable-quit");
    /// Run the agent as a native sidecar.
    NATIVE_SIDECAR = keyhole("native-sidecar");
    /// Serve the long-running agent's metrics on this port of the pod IP.
    AGENT_METRICS_PORT = keyhole("agent-metrics-port");
}

/// The value of [`STATUS`] once the agent is in.
pub const STATUS_INJECTED: &str = "injected";

/// `agent-inject-secret-<name>`: the Vault path of a secret.
pub const SECRET: Family = Family::vault("agent-inject-secret-");
/// `agent-inject-template-file-<name>`: a template file inside the agent.
pub const TEMPLATE_FILE: Family = Family::vault("agent-inject-template-file-");
/// `agent-inject-template-<name>`: inline template text.
pub const TEMPLATE: Family = Family::vault("agent-inject-template-");
/// `agent-inject-file-<name>`: the file name of a secret.
pub const FILE: Family = Family::vault("agent-inject-file-");
/// `agent-inject-perms-<name>`: the file mode of a secret.
pub const PERMS: Family = Family::vault("agent-inject-perms-");
/// `agent-inject-command-<name>`: a command run after a secret changed.
pub const COMMAND: Family = Family::vault("agent-inject-command-");
/// `error-on-missing-key-<name>`: fail rendering on a missing map key.
pub const ERROR_ON_MISSING_KEY: Family = Family::vault("error-on-missing-key-");
/// `agent-template-left-delim-<name>`: the left action delimiter.
pub const LEFT_DELIM: Family = Family::vault("agent-template-left-delim-");
/// `agent-template-right-delim-<name>`: the right action delimiter.
pub const RIGHT_DELIM: Family = Family::vault("agent-template-right-delim-");
/// `secret-volume-path-<name>`: where one secret is mounted.
pub const SECRET_VOLUME_PATH_OF: Family = Family::vault("secret-volume-path-");
/// `preserve-secret-case-<name>`: keep the case of one secret's file name.
pub const PRESERVE_SECRET_CASE_OF: Family = Family::vault("preserve-secret-case-");
/// `keyhole.dev/reload-signal-<name>`: a signal sent after a secret changed.
pub const RELOAD_SIGNAL: Family = Family::keyhole("reload-signal-");
/// `auth-config-<param>`: a parameter of the auth method's config.
pub const AUTH_CONFIG: Family = Family::vault("auth-config-");
/// `agent-telemetry-<param>`: vault-k8s's telemetry stanza; its StatsD settings are read.
pub const TELEMETRY: Family = Family::vault("agent-telemetry-");

/// The families that declare a secret. [`TEMPLATE_FILE`] comes before
/// [`TEMPLATE`] so the longer stem wins.
pub const SECRET_FAMILIES: [Family; 3] = [SECRET, TEMPLATE_FILE, TEMPLATE];

/// Per-secret settings: families whose suffix names a secret declared by
/// one of [`SECRET_FAMILIES`].
pub const PER_SECRET_FAMILIES: [Family; 9] = [
    FILE,
    PERMS,
    COMMAND,
    ERROR_ON_MISSING_KEY,
    LEFT_DELIM,
    RIGHT_DELIM,
    SECRET_VOLUME_PATH_OF,
    PRESERVE_SECRET_CASE_OF,
    RELOAD_SIGNAL,
];

/// Every family of annotations keyhole reads.
pub fn families() -> impl Iterator<Item = Family> {
    SECRET_FAMILIES
        .into_iter()
        .chain(PER_SECRET_FAMILIES)
        .chain([AUTH_CONFIG, TELEMETRY])
}

/// Families whose values are free text, templates and commands; every
/// other value ends up in a header, a Vault path, a file name or a flag.
pub const FREE_TEXT_FAMILIES: [Family; 2] = [TEMPLATE, COMMAND];

/// Why keyhole ignores an annotation of vault-k8s's metrics listener.
const NO_METRICS_LISTENER: &str = "keyhole-agent serves metrics on the port of \
     keyhole.dev/agent-metrics-port, at /agent/v1/metrics";

/// vault-k8s annotations keyhole accepts but does not act on, with the reason.
pub const IGNORED: &[(Key, &str)] = &[
    (
        Key::vault("agent-metrics-listener-port"),
        NO_METRICS_LISTENER,
    ),
    (
        Key::vault("template-max-connections-per-host"),
        "keyhole-agent does not limit its connections per host (bao agent ignores \
         template_config.max_connections_per_host too)",
    ),
    (
        Key::vault("template-lease-renewal-threshold"),
        "keyhole-agent re-reads a secret whose lease it cannot renew at about 85% of its lease \
         (bao agent ignores template_config.lease_renewal_threshold too)",
    ),
    (
        Key::vault("go-max-procs"),
        "keyhole-agent is not a Go program",
    ),
    (
        Key::vault("agent-request-namespace"),
        "keyhole uses the namespace of the admission request",
    ),
    (
        Key::vault("agent-sidecar-type"),
        "keyhole-agent is always an agent",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_users_write_them() {
        assert_eq!(INJECT.to_string(), "vault.hashicorp.com/agent-inject");
        assert_eq!(NATIVE_SIDECAR.to_string(), "keyhole.dev/native-sidecar");
        assert_eq!(
            SECRET.to_string(),
            "vault.hashicorp.com/agent-inject-secret-*"
        );
        assert_eq!(RELOAD_SIGNAL.key("db"), "keyhole.dev/reload-signal-db");
        assert_eq!(
            Prefix::split("keyhole.dev/native-sidecar"),
            Some((Prefix::Keyhole, "native-sidecar"))
        );
        assert_eq!(Prefix::split("example.com/x"), None);
    }

    #[test]
    fn openbao_keys_are_vault_keys_spelled_another_way() {
        let (prefix, name) = Prefix::split("openbao.org/agent-inject").expect("ours");
        assert_eq!(prefix, Prefix::OpenBao);
        assert!(INJECT.is(prefix, name));
        assert_eq!(
            INJECT.spelled(prefix).to_string(),
            "openbao.org/agent-inject"
        );
        let (prefix, name) = Prefix::split("openbao.org/agent-inject-secret-db").expect("ours");
        assert_eq!(SECRET.suffix(prefix, name), Some("db"));
        assert!(!NATIVE_SIDECAR.is(Prefix::OpenBao, "native-sidecar"));
    }

    #[test]
    fn each_family_is_declared_once() {
        let families: Vec<_> = families().collect();
        for (i, family) in families.iter().enumerate() {
            assert!(!families[i + 1..].contains(family), "{family} twice");
        }
    }

    #[test]
    fn each_key_is_declared_once() {
        for (i, key) in KNOWN.iter().enumerate() {
            assert!(!KNOWN[i + 1..].contains(key), "{key} twice in KNOWN");
            assert!(
                IGNORED.iter().all(|(ignored, _)| ignored != key),
                "{key} both known and ignored"
            );
        }
    }
}
