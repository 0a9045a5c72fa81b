//! Checks of single annotation values, each accepting exactly what the
//! annotation takes. A failure is the reason, e.g. `"maybe" is not a boolean
//! (true or false)`; the reader adds the key it came from, and the settings
//! the flag.

use keyhole_agent::config::{ApiProxy, Parts};

use crate::agent_paths;

/// Result of a check: the value as keyhole uses it, or why it is refused.
pub type Checked<T> = Result<T, String>;

/// A boolean as Go's `strconv.ParseBool` reads it, which vault-k8s uses for
/// annotations and flags alike.
pub fn boolean(value: &str) -> Checked<bool> {
    keyhole_agent::config::parse_bool(value)
        .ok_or_else(|| format!("{value:?} is not a boolean (true or false)"))
}

/// `agent-cache-use-auto-auth-token`: `force`, or a boolean, as Vault
/// Agent reads `use_auto_auth_token`.
pub fn use_auto_auth_token(value: &str) -> Checked<ApiProxy> {
    if value == "force" {
        return Ok(ApiProxy::ForceAutoAuth);
    }
    match boolean(value) {
        Ok(true) => Ok(ApiProxy::AutoAuthIfMissing),
        Ok(false) => Ok(ApiProxy::AppToken),
        Err(_) => Err(format!("{value:?} is not true, false or force")),
    }
}

/// A TCP port, 1 to 65535.
pub fn port(value: &str) -> Checked<u16> {
    value
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("{value:?} is not a port (1 to 65535)"))
}

/// `keyhole.dev/agent-metrics-port`: a [`port`], or a false boolean
/// (`false`, `0`, ...) for no metrics port, which opts a pod out of the
/// injector's `--agent-metrics-port`.
pub fn metrics_port(value: &str) -> Checked<Option<u16>> {
    if boolean(value) == Ok(false) {
        return Ok(None);
    }
    port(value)
        .map(Some)
        .map_err(|_| format!("{value:?} is not a port (1 to 65535), nor false for none"))
}

/// A duration keyhole-agent reads: a Go duration such as `30s` or `1h30m`,
/// or plain seconds, as Vault Agent reads it.
pub fn duration(value: &str) -> Checked<String> {
    if keyhole_agent::config::parse_duration(value).is_some() {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a duration such as 30s or 5m"))
    }
}

/// Parts of the agent, comma-separated as vault-k8s splits them, for
/// `disable_idle_connections` and `disable_keep_alives`. Nothing is trimmed:
/// vault-k8s passes `" templating"` on, and the agent would refuse it.
pub fn agent_parts(value: &str) -> Checked<Parts> {
    Parts::from_names(value.split(',')).map_err(|unknown| {
        format!("{unknown:?} is not a part of the agent (auto-auth, caching, proxying, templating)")
    })
}

/// The most `agent-telemetry-dogstatsd-tags`: each goes into every line
/// the agent sends.
const MAX_DOGSTATSD_TAGS: usize = 32;

/// An `agent-telemetry-*` value as vault-k8s reads it: JSON when it parses
/// as JSON, else the text itself.
fn telemetry_json(value: &str) -> serde_json::Value {
    serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()))
}

/// A StatsD server's address for `agent-telemetry-statsd-address` or
/// `-dogstatsd-addr`: text (or a JSON string).
pub fn telemetry_address(value: &str) -> Checked<String> {
    match telemetry_json(value) {
        serde_json::Value::String(address) if !address.trim().is_empty() => Ok(address),
        _ => Err(format!(
            "{value:?} is not a StatsD address such as 127.0.0.1:8125"
        )),
    }
}

/// `agent-telemetry-dogstatsd-tags`: a JSON list of strings, as vault-k8s
/// reads it.
pub fn dogstatsd_tags(value: &str) -> Checked<Vec<String>> {
    let tags: Vec<String> = serde_json::from_str(value)
        .map_err(|_| format!("{value:?} is not a JSON list of tags such as [\"env:prod\"]"))?;
    if tags.len() > MAX_DOGSTATSD_TAGS {
        return Err(format!(
            "{} tags, over the limit of {MAX_DOGSTATSD_TAGS}",
            tags.len()
        ));
    }
    Ok(tags)
}

/// `VAULT_CLIENT_TIMEOUT`: a number of seconds or a [`duration`].
pub fn client_timeout(value: &str) -> Checked<String> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        duration(value)
    }
}

/// A non-negative Kubernetes resource quantity, e.g. `100m`, `64Mi`, `1e3`.
pub fn quantity(value: &str) -> Checked<String> {
    if is_quantity(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a quantity such as 100m or 64Mi"))
    }
}

fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix('+').unwrap_or(s);
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = s.split_at(number_len);
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    // Decimal exponent: e or E, an optional sign, then digits.
    let Some(exponent) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit())
}

/// A proxy URL as Go's `HTTPS_PROXY` takes it (and keyhole-agent's HTTP
/// client too): `http` or `https`, or no scheme for `http`. The value is not
/// repeated in the refusal: it may carry the proxy's password.
pub fn proxy_address(value: &str) -> Checked<String> {
    let url = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    match url::Url::parse(&url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(value.to_owned())
        }
        _ => Err("not an http or https proxy URL such as http://proxy.example:3128".to_owned()),
    }
}

/// The longest revoke grace: a day, far past any pod's termination grace period.
const MAX_GRACE_SECONDS: u64 = 24 * 60 * 60;

/// A number of seconds to wait before revoking, as vault-k8s reads it
/// (digits only), at most [`MAX_GRACE_SECONDS`].
pub fn grace_seconds(value: &str) -> Checked<u64> {
    match value.parse::<u64>() {
        Ok(seconds) if value.bytes().all(|b| b.is_ascii_digit()) => {
            if seconds <= MAX_GRACE_SECONDS {
                Ok(seconds)
            } else {
                Err(format!(
                    "{value} seconds, over the limit of {MAX_GRACE_SECONDS}"
                ))
            }
        }
        _ => Err(format!("{value:?} is not a number of seconds such as 5")),
    }
}

/// A user or group id.
pub fn id(value: &str) -> Checked<i64> {
    value
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| format!("{value:?} is not a user or group id"))
}

/// A number of retries.
pub fn retries(value: &str) -> Checked<u32> {
    value
        .parse::<u32>()
        .map_err(|_| format!("{value:?} is not a number of retries"))
}

/// Directories a secrets volume may not be mounted at, in or over: the
/// agent's own mounts, whose files (the Vault token among them) would land in
/// the volume that app containers read or be hidden by it, and the kernel's
/// file systems.
const NO_OVERLAP_DIRS: [&str; 9] = [
    agent_paths::HOME,
    agent_paths::CACHE_DIR,
    agent_paths::SA_TOKEN_DIR,
    agent_paths::CONFIG_DIR,
    agent_paths::TLS_DIR,
    agent_paths::EXTRA_SECRET_DIR,
    "/proc",
    "/sys",
    "/dev",
];

/// Directories a secrets volume may not be mounted at or over, which would
/// hide the system's files or the app's own service-account token. A
/// directory inside them (`/etc/secrets`, `/usr/src/app/config`) is fine.
const NO_COVER_DIRS: [&str; 7] = [
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/var/run/secrets/kubernetes.io/serviceaccount",
];

/// An absolute, clean path (no `.`, `..` or empty segments; one trailing
/// `/` allowed) clear of `NO_OVERLAP_DIRS` and `NO_COVER_DIRS`, without
/// its trailing `/`.
pub fn mount_path(value: &str) -> Checked<String> {
    if value.trim().is_empty() {
        return Err(
            "empty path: no volume can be mounted there, and vault-k8s's pod would be \
             refused by Kubernetes too"
                .to_owned(),
        );
    }
    let Some(relative) = value.strip_prefix('/') else {
        return Err(format!("{value:?} is not an absolute path"));
    };
    // "/vault/secrets/" and "/vault/secrets" are one directory, so one volume.
    let relative = relative.strip_suffix('/').unwrap_or(relative);
    if relative.is_empty() {
        return Err("cannot mount secrets at /".to_owned());
    }
    if relative
        .split('/')
        .any(|part| matches!(part, "" | "." | ".."))
    {
        return Err(format!(
            "{value:?} must not have empty, \".\" or \"..\" segments"
        ));
    }
    let path = format!("/{relative}");
    // Whether `dir` is `other` or inside it.
    let within = |dir: &str, other: &str| {
        dir == other
            || dir
                .strip_prefix(other)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if let Some(dir) = NO_OVERLAP_DIRS
        .iter()
        .find(|d| within(&path, d) || within(d, &path))
    {
        return Err(format!(
            "{value:?} overlaps {dir}, which secrets may not be mounted at, in or over"
        ));
    }
    if let Some(dir) = NO_COVER_DIRS.iter().find(|d| within(d, &path)) {
        return Err(format!(
            "{value:?} would hide {dir}; mount secrets in a directory of their own, \
             such as {dir}/secrets"
        ));
    }
    Ok(path)
}

/// A path for the default template: vault-k8s pastes it between quotes,
/// where a `"` or `\` breaks the template its agent parses. keyhole quotes
/// it properly, but refuses it all the same, at admission rather than at
/// pod start.
pub fn default_template_path(path: &str) -> Checked<()> {
    match path.chars().find(|c| matches!(c, '"' | '\\')) {
        Some(c) => Err(format!(
            "Vault path {path:?} contains {c:?}, which the default template cannot hold; \
             Vault Agent would fail to parse it"
        )),
        None => Ok(()),
    }
}

/// A file path under a secrets volume, as vault-k8s joins it to the
/// volume's mount path: sub-directories are fine (the agent creates them),
/// and empty and `.` segments are dropped as Go's `filepath.Join` drops them.
/// A `..` segment is refused, since it could leave the volume. The result is
/// the clean relative path, and whether the value was written absolute
/// (vault-k8s puts such a path under the volume too).
pub fn file_path(value: &str) -> Checked<(String, bool)> {
    if value.split('/').any(|part| part == "..") {
        return Err(format!(
            "{value:?} has a \"..\" segment; the file must stay in the secrets volume"
        ));
    }
    let clean: Vec<&str> = value
        .split('/')
        .filter(|part| !matches!(*part, "" | "."))
        .collect();
    if clean.is_empty() {
        return Err(format!("{value:?} names no file"));
    }
    Ok((clean.join("/"), value.starts_with('/')))
}

/// An octal file mode of permission bits only: the setuid, setgid and
/// sticky bits have no business on a secret file.
pub fn perms(value: &str) -> Checked<String> {
    let mode = (!value.is_empty() && value.len() <= 5)
        .then(|| u32::from_str_radix(value, 8).ok())
        .flatten();
    match mode {
        Some(mode) if mode <= 0o777 => Ok(value.to_owned()),
        Some(_) => Err(format!(
            "{value:?} sets the setuid, setgid or sticky bit; use permission bits only, such as 0640"
        )),
        None => Err(format!("{value:?} is not an octal file mode such as 0640")),
    }
}

/// A command, run as Vault Agent runs vault-k8s's `command` string: a
/// value of several words through `/bin/sh -c`, so shell syntax works.
pub fn command(value: &str) -> Checked<String> {
    match keyhole_agent::config::command_line(value) {
        Some(_) => Ok(value.to_owned()),
        None => Err(format!("{value:?} names no program to run")),
    }
}

/// A warning for a command that Vault Agent, and so keyhole, runs other than
/// it reads: one with a comma is split there into separate arguments, and a
/// single word keeps the spaces around it (a YAML block's final newline) in
/// the program's name, which is then not found. `None` for any other.
pub fn command_note(value: &str) -> Option<String> {
    let argv = keyhole_agent::config::command_line(value)?;
    if value.contains(',') {
        return Some(format!(
            "runs as the arguments {argv:?}: Vault Agent splits a command at commas, and so \
             does keyhole"
        ));
    }
    (value.trim() != value && argv.len() == 1).then(|| {
        format!(
            "runs the program {value:?}, spaces included, as Vault Agent does, and it will not \
             be found; remove the spaces around it"
        )
    })
}

/// Image names of Vault and OpenBao, whose agent keyhole replaces with its own.
const VAULT_IMAGE_NAMES: [&str; 3] = ["vault", "vault-enterprise", "openbao"];

/// Whether the image reference `image` names a Vault or OpenBao image
/// (`hashicorp/vault:1.15`, `quay.io/openbao/openbao@sha256:...`): its last
/// path component, without tag or digest, is one of their names, whatever
/// registry or mirror path comes before it.
pub fn is_vault_image(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or_default();
    let name = without_digest.rsplit('/').next().unwrap_or_default();
    let name = name.split(':').next().unwrap_or_default();
    VAULT_IMAGE_NAMES.contains(&name.to_ascii_lowercase().as_str())
}

/// A signal and a process name, e.g. `SIGHUP nginx`: the signal by its
/// canonical name, and the process.
pub fn reload(value: &str) -> Checked<(String, String)> {
    let words: Vec<&str> = value.split_whitespace().collect();
    match words.as_slice() {
        [signal, process] => keyhole_agent::reload::parse_signal(signal)
            .map(|parsed| (parsed.as_str().to_owned(), (*process).to_owned()))
            .map_err(|err| err.to_string()),
        _ => Err(format!(
            "{value:?} is not a signal and a process name, such as \"SIGHUP nginx\""
        )),
    }
}

/// A value without control characters.
pub fn no_control_chars(value: &str) -> Checked<()> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("{value:?} contains the control character {c:?}")),
        None => Ok(()),
    }
}

/// Whether `name` is the name part of a Kubernetes qualified name.
pub fn is_qualified_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    name.len() <= 63
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exactly_go_parse_bool_tokens() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(boolean(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(boolean(f), Ok(false));
        }
        for bad in ["yes", "no", "on", "tRUE", "", " true", "2"] {
            assert_eq!(
                boolean(bad),
                Err(format!("{bad:?} is not a boolean (true or false)"))
            );
        }
    }

    #[test]
    fn accepts_durations_the_agent_reads() {
        for good in [
            "0", "5", "30s", "1m30s", "250ms", "1.5h", "10us", "3µs", ".5s", "1h0m0s", "1d",
        ] {
            assert_eq!(duration(good), Ok(good.to_owned()));
        }
        for bad in ["", "5 m", "-5s", "s", "1.2.3s", "5mm", "."] {
            assert_eq!(
                duration(bad),
                Err(format!("{bad:?} is not a duration such as 30s or 5m"))
            );
        }
    }

    #[test]
    fn accepts_kubernetes_quantities_only() {
        for good in [
            "100m", "64Mi", "1", "0.5", "1e3", "2E-2", "1Gi", "+1k", "1.5G",
        ] {
            assert_eq!(quantity(good), Ok(good.to_owned()));
        }
        for bad in ["", "lots", "64MB", "-1", "1..5", "Mi", "1e", "1 Mi", "64mi"] {
            assert_eq!(
                quantity(bad),
                Err(format!("{bad:?} is not a quantity such as 100m or 64Mi"))
            );
        }
    }

    #[test]
    fn file_paths_stay_in_the_volume() {
        assert_eq!(file_path("app.env"), Ok(("app.env".to_owned(), false)));
        assert_eq!(
            file_path("config//./app.properties"),
            Ok(("config/app.properties".to_owned(), false))
        );
        assert_eq!(
            file_path("/etc/app.conf"),
            Ok(("etc/app.conf".to_owned(), true))
        );
        for bad in ["../etc/passwd", "config/../../x", ".."] {
            assert_eq!(
                file_path(bad),
                Err(format!(
                    "{bad:?} has a \"..\" segment; the file must stay in the secrets volume"
                ))
            );
        }
        for empty in ["", "/", "./.", "//"] {
            assert_eq!(file_path(empty), Err(format!("{empty:?} names no file")));
        }
    }
}
