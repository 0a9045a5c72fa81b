//! Settings that take one of a fixed set of names: the auth method type, the
//! log level and the log format. The agent reads them from its config and
//! environment; the injector reads the same names from annotations and flags,
//! so both sides agree on what each name means.

use std::fmt;

/// A setting that takes one of a fixed set of names.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every accepted spelling with the value it means, in the order messages
    /// list them. A value may have several spellings.
    const NAMES: &'static [(&'static str, Self)];

    /// The name written for this value in configs and environment variables.
    fn name(self) -> &'static str;

    /// The value `name` spells exactly, or `None`.
    fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, value)| *value)
    }

    /// Every accepted spelling, comma-separated, for messages.
    fn spellings() -> String {
        let names: Vec<&str> = Self::NAMES.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }
}

/// `auto_auth.method.type`: the login methods keyhole-agent implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `kubernetes`: the pod's service-account token.
    Kubernetes,
    /// `jwt`: any JWT file, validated by Vault.
    Jwt,
    /// `approle`: role id and secret id files.
    AppRole,
    /// `token_file`: a token already issued.
    TokenFile,
    /// `cert`: the TLS client certificate the login connection presents.
    Cert,
}

impl Choice for AuthType {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("kubernetes", Self::Kubernetes),
        ("jwt", Self::Jwt),
        ("approle", Self::AppRole),
        ("token_file", Self::TokenFile),
        ("cert", Self::Cert),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Jwt => "jwt",
            Self::AppRole => "approle",
            Self::TokenFile => "token_file",
            Self::Cert => "cert",
        }
    }
}

/// `VAULT_LOG_LEVEL`: how much the agent logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, request by request.
    Trace,
    /// Details of each step.
    Debug,
    /// What the agent does (the default).
    Info,
    /// Problems it works around.
    Warn,
    /// Failures only.
    Error,
}

impl Choice for LogLevel {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("trace", Self::Trace),
        ("debug", Self::Debug),
        ("info", Self::Info),
        ("warn", Self::Warn),
        ("warning", Self::Warn),
        ("error", Self::Error),
        ("err", Self::Error),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// `VAULT_LOG_FORMAT`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[value(alias = "text")]
    Standard,
    /// One JSON object per line.
    Json,
}

impl Choice for LogFormat {
    const NAMES: &'static [(&'static str, Self)] =
        &[("standard", Self::Standard), ("json", Self::Json)];

    fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Json => "json",
        }
    }
}

macro_rules! display_name {
    ($($choice:ty),*) => {$(
        impl fmt::Display for $choice {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}

display_name!(AuthType, LogLevel, LogFormat);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling reads back as its value, and every value's name is
    /// one of its spellings.
    fn names_round_trip<T: Choice + fmt::Debug>() {
        for (spelling, value) in T::NAMES {
            assert_eq!(T::from_name(spelling), Some(*value), "{spelling}");
            assert_eq!(T::from_name(value.name()), Some(*value), "{value:?}");
        }
    }

    #[test]
    fn every_name_reads_back() {
        names_round_trip::<AuthType>();
        names_round_trip::<LogLevel>();
        names_round_trip::<LogFormat>();
    }

    #[test]
    fn names_are_exact_and_listed_in_order() {
        assert_eq!(LogLevel::from_name("warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::from_name("INFO"), None);
        assert_eq!(LogFormat::from_name("text"), None);
        assert_eq!(
            AuthType::spellings(),
            "kubernetes, jwt, approle, token_file, cert"
        );
        assert_eq!(
            LogLevel::spellings(),
            "trace, debug, info, warn, warning, error, err"
        );
    }
}
