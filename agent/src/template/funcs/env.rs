//! consul-template's functions on the agent's environment variables.

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// `env key`: the variable's value, empty when unset.
pub(super) fn env<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(
        std::env::var(string_arg(&args[0])?).unwrap_or_default(),
    ))
}

/// `envOrDefault key default`: the variable's value, `default` when unset.
pub(super) fn env_or_default<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let key = string_arg(&args[0])?;
    Ok(match std::env::var(key) {
        Ok(v) => owned(v),
        Err(_) => owned(string_arg(&args[1])?.to_owned()),
    })
}

/// `mustEnv key`: the variable's value; fails when it is unset or empty.
pub(super) fn must_env<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let key = string_arg(&args[0])?;
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => Ok(owned(v)),
        _ => Err(format!("required environment variable {key} is empty")),
    }
}
