//! What can go wrong talking to Vault, worded for the person who wrote the
//! config.
//!
//! Messages name the Vault address, the request's method and path and the
//! HTTP status with Vault's own error messages. They never include response
//! data or tokens: decode errors report only where the JSON went wrong, not
//! what it held. A caller whose path or parameters may not be shown replaces
//! the path and withholds Vault's messages ([`Error::with_path`],
//! [`Error::without_vault_messages`]).

use std::path::PathBuf;

use hyper::{Method, StatusCode};

/// Errors from the Vault client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `vault.address` is not an `http` or `https` URL with a host.
    #[error("vault address {address:?} is not a valid http or https URL")]
    Address {
        /// The address as configured.
        address: String,
    },
    /// A TLS setting of the `vault` stanza could not be used.
    #[error("vault {key} {}: {reason}", path.display())]
    TlsFile {
        /// The setting, e.g. `ca_cert`.
        key: &'static str,
        /// The file or directory it names.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// Any other problem setting up TLS or the HTTP client.
    #[error("cannot set up the Vault client: {reason}")]
    Setup {
        /// What went wrong.
        reason: String,
    },
    /// Vault answered with an error status.
    #[error("{method} {path}: {} (HTTP {})", describe_status(*status, errors, *withheld), status.as_u16())]
    Status {
        /// The request's method.
        method: Method,
        /// The Vault path requested, as written.
        path: String,
        /// The HTTP status.
        status: StatusCode,
        /// Vault's `errors` messages; empty for a missing KV secret.
        errors: Vec<String>,
        /// Whether Vault's messages were left out because they may repeat
        /// a secret (see [`Error::without_vault_messages`]).
        withheld: bool,
    },
    /// Vault could not be reached: connection refused, DNS failure, reset.
    #[error("cannot reach Vault at {address} ({method} {path}): {reason}")]
    Connect {
        /// The Vault address.
        address: String,
        /// The request's method.
        method: Method,
        /// The Vault path requested.
        path: String,
        /// The operating system's or resolver's reason.
        reason: String,
    },
    /// The TLS handshake with Vault failed, e.g. an untrusted certificate.
    #[error("TLS with Vault at {address} failed ({method} {path}): {reason}")]
    Tls {
        /// The Vault address.
        address: String,
        /// The request's method.
        method: Method,
        /// The Vault path requested.
        path: String,
        /// rustls's reason.
        reason: String,
    },
    /// Vault did not answer in time.
    #[error("request to Vault at {address} timed out ({method} {path})")]
    Timeout {
        /// The Vault address.
        address: String,
        /// The request's method.
        method: Method,
        /// The Vault path requested.
        path: String,
    },
    /// The request failed mid-way for another reason.
    #[error("request to Vault at {address} failed ({method} {path}): {reason}")]
    Request {
        /// The Vault address.
        address: String,
        /// The request's method.
        method: Method,
        /// The Vault path requested.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Vault's answer was not the JSON this request expects.
    #[error("unexpected response from Vault for {method} {path}: {reason}")]
    Decode {
        /// The request's method.
        method: Method,
        /// The Vault path requested.
        path: String,
        /// Where the JSON went wrong, never what it held.
        reason: String,
    },
    /// The token holds characters that cannot be sent in an HTTP header.
    #[error("the Vault token holds characters that are not allowed in an HTTP header")]
    InvalidToken,
}

/// Result of the Vault client's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for metrics and logs, e.g. `permission_denied`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Address { .. } | Self::TlsFile { .. } | Self::Setup { .. } => "config",
            Self::Status { status, .. } => match *status {
                StatusCode::BAD_REQUEST => "invalid_request",
                StatusCode::FORBIDDEN => "permission_denied",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                StatusCode::SERVICE_UNAVAILABLE => "sealed",
                status if status.is_server_error() => "server_error",
                _ => "http_status",
            },
            Self::Connect { .. } => "connect",
            Self::Tls { .. } => "tls",
            Self::Timeout { .. } => "timeout",
            Self::Request { .. } => "request",
            Self::Decode { .. } => "decode",
            Self::InvalidToken => "token",
        }
    }

    /// Whether the same request may succeed if tried again shortly: Vault
    /// unreachable, slow, sealed, overloaded or failing. A refusal (403), a
    /// missing path (404) or a bad request stays what it is.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } | Self::Request { .. } => true,
            Self::Status { status, .. } => {
                // 412: a performance standby has not caught up yet.
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::PRECONDITION_FAILED
            }
            Self::Address { .. }
            | Self::TlsFile { .. }
            | Self::Setup { .. }
            | Self::Tls { .. }
            | Self::Decode { .. }
            | Self::InvalidToken => false,
        }
    }

    /// The HTTP status Vault answered with, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// This error with `shown` in place of the requested path, for a path
    /// that may not be shown as it is.
    pub fn with_path(mut self, shown: &str) -> Self {
        match &mut self {
            Self::Status { path, .. }
            | Self::Connect { path, .. }
            | Self::Tls { path, .. }
            | Self::Timeout { path, .. }
            | Self::Request { path, .. }
            | Self::Decode { path, .. } => shown.clone_into(path),
            Self::Address { .. }
            | Self::TlsFile { .. }
            | Self::Setup { .. }
            | Self::InvalidToken => {}
        }
        self
    }

    /// This error without Vault's own messages, which can repeat the
    /// request's path and parameters (e.g. a rejected common name); the
    /// status and what it means remain.
    pub fn without_vault_messages(mut self) -> Self {
        if let Self::Status {
            errors, withheld, ..
        } = &mut self
            && !errors.is_empty()
        {
            errors.clear();
            *withheld = true;
        }
        self
    }

    /// Classifies a failed request by what the user must fix: the address,
    /// the network, TLS trust, or Vault's responsiveness. `connect` says
    /// whether it failed before a connection was made.
    pub(super) fn from_transport(
        err: &(dyn std::error::Error + 'static),
        connect: bool,
        address: &str,
        method: &Method,
        path: &str,
    ) -> Self {
        if timed_out(err) {
            return Self::timeout(address, method, path);
        }
        let address = address.to_owned();
        let method = method.clone();
        let path = path.to_owned();
        if let Some(tls) = find_rustls_error(err) {
            return Self::Tls {
                address,
                method,
                path,
                reason: tls.to_string(),
            };
        }
        let reason = innermost_reason(err);
        if connect {
            Self::Connect {
                address,
                method,
                path,
                reason,
            }
        } else {
            Self::Request {
                address,
                method,
                path,
                reason,
            }
        }
    }

    /// A request that Vault did not answer within the request timeout.
    pub(super) fn timeout(address: &str, method: &Method, path: &str) -> Self {
        Self::Timeout {
            address: address.to_owned(),
            method: method.clone(),
            path: path.to_owned(),
        }
    }

    /// Describes a JSON decode failure by position only: serde's messages
    /// quote the offending value, which may be a secret.
    pub(super) fn decode(err: &serde_json::Error, method: &Method, path: &str) -> Self {
        let what = match err.classify() {
            serde_json::error::Category::Io => "could not read the body",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "JSON of an unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        Self::Decode {
            method: method.clone(),
            path: path.to_owned(),
            reason: format!("{what} at line {} column {}", err.line(), err.column()),
        }
    }
}

/// Words for an error status: Vault's own messages when it sent some, else
/// what the status means for a Vault request, and whether Vault's messages
/// were withheld.
fn describe_status(status: StatusCode, errors: &[String], withheld: bool) -> String {
    let messages: Vec<&str> = errors.iter().flat_map(|e| error_lines(e)).collect();
    if !messages.is_empty() {
        return messages.join("; ");
    }
    let meaning = match status {
        StatusCode::NOT_FOUND => "no secret at this path",
        StatusCode::FORBIDDEN => "permission denied",
        StatusCode::SERVICE_UNAVAILABLE => "Vault is sealed or in standby",
        status => status.canonical_reason().unwrap_or("unexpected status"),
    };
    if withheld {
        format!("{meaning}, Vault's message withheld")
    } else {
        meaning.to_owned()
    }
}

/// Vault wraps several errors as `"2 errors occurred:\n\t* a\n\t* b\n\n"`;
/// this yields `a` and `b`, or the trimmed message when it is a plain one.
fn error_lines(message: &str) -> Vec<&str> {
    let bullets: Vec<&str> = message
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("* "))
        .map(str::trim)
        .collect();
    if bullets.is_empty() {
        vec![message.trim()]
    } else {
        bullets
    }
}

/// Finds a rustls error in the chain. TLS errors reach the client wrapped in
/// `io::Error`s (hyper-rustls wraps tokio-rustls's), whose `source()` skips
/// the wrapped error, so each `io::Error` is looked into explicitly.
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let wrapped = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref);
    if let Some(tls) = wrapped.and_then(|inner| find_rustls_error(inner)) {
        return Some(tls);
    }
    err.source().and_then(find_rustls_error)
}

/// Whether the chain holds an I/O timeout: the connect timeout, or TCP
/// keepalive giving up on Vault's host.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// The deepest cause's message, e.g. `Connection refused (os error 111)`:
/// the outer layers only say "error sending request".
fn innermost_reason(err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, errors: &[&str]) -> Error {
        Error::Status {
            method: Method::GET,
            path: "secret/data/app".to_owned(),
            status: StatusCode::from_u16(code).expect("should succeed"),
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
            withheld: false,
        }
    }

    #[test]
    fn forbidden_is_permission_denied_with_vaults_message() {
        let err = status(403, &["1 error occurred:\n\t* permission denied\n\n"]);
        assert_eq!(err.kind(), "permission_denied");
        assert_eq!(
            err.to_string(),
            "GET secret/data/app: permission denied (HTTP 403)"
        );
    }

    #[test]
    fn not_found_without_errors_says_no_secret() {
        let err = status(404, &[]);
        assert_eq!(err.kind(), "not_found");
        assert_eq!(
            err.to_string(),
            "GET secret/data/app: no secret at this path (HTTP 404)"
        );
    }

    #[test]
    fn service_unavailable_is_sealed() {
        let err = status(503, &["Vault is sealed"]);
        assert_eq!(err.kind(), "sealed");
        assert_eq!(
            err.to_string(),
            "GET secret/data/app: Vault is sealed (HTTP 503)"
        );
        assert!(
            status(503, &[])
                .to_string()
                .contains("sealed or in standby")
        );
    }

    #[test]
    fn several_vault_errors_are_joined() {
        let err = status(
            400,
            &["2 errors occurred:\n\t* missing role\n\t* missing jwt\n\n"],
        );
        assert_eq!(err.kind(), "invalid_request");
        assert_eq!(
            err.to_string(),
            "GET secret/data/app: missing role; missing jwt (HTTP 400)"
        );
    }

    #[test]
    fn server_errors_and_other_statuses_have_their_own_kinds() {
        assert_eq!(status(500, &[]).kind(), "server_error");
        assert_eq!(status(502, &[]).kind(), "server_error");
        assert_eq!(status(429, &[]).kind(), "rate_limited");
        assert_eq!(status(412, &[]).kind(), "http_status");
        assert_eq!(
            status(500, &[]).to_string(),
            "GET secret/data/app: Internal Server Error (HTTP 500)"
        );
    }

    #[test]
    fn decode_error_names_position_but_not_the_value() {
        #[derive(Debug, serde::Deserialize)]
        struct Envelope {
            #[allow(dead_code)]
            lease_duration: u64,
        }
        let body = br#"{"lease_duration": "hunter2-secret"}"#;
        let json_err = serde_json::from_slice::<Envelope>(body).expect_err("should fail");
        let err = Error::decode(&json_err, &Method::GET, "secret/app");
        assert_eq!(err.kind(), "decode");
        let message = err.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert_eq!(
            message,
            "unexpected response from Vault for GET secret/app: \
             JSON of an unexpected shape at line 1 column 35"
        );
    }

    #[test]
    fn rustls_error_inside_nested_io_errors_is_found() {
        let io = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let found = find_rustls_error(&io).map(ToString::to_string);
        assert_eq!(
            found.as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
    }
}
