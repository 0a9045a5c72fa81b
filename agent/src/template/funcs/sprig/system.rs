//! Sprig's functions on the agent's environment and network.

use std::collections::BTreeSet;
use std::net::{IpAddr, ToSocketAddrs};

use rand::seq::IteratorRandom;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// The value of environment variable `name`, empty when unset.
fn getenv(name: &str) -> String {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `env name`: the environment variable, empty when unset.
pub(in super::super) fn env<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(getenv(string_arg(&args[0])?)))
}

/// `expandenv s`: `s` with `$NAME` and `${NAME}` replaced by environment
/// variables, as Go's `os.ExpandEnv` does.
pub(in super::super) fn expandenv<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(expand(string_arg(&args[0])?, getenv)))
}

/// Go's `os.Expand`.
fn expand(s: &str, lookup: impl Fn(&str) -> String) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[copied..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            match name {
                Some(name) => out.push_str(&lookup(name)),
                // `$` followed by something that is no name stays.
                None if width == 0 => out.push('$'),
                // Bad `${...}` syntax is dropped.
                None => {}
            }
            j += width;
            copied = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[copied.min(s.len())..]);
    out
}

/// Go's `getShellName`: the variable name at the start of `s` and how
/// many bytes its reference takes.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    let special = |c: u8| b"*#$@!?-".contains(&c) || c.is_ascii_digit();
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        return match b.iter().skip(1).position(|&c| c == b'}') {
            Some(0) => (None, 2),
            Some(i) => (Some(&s[1..=i]), i + 2),
            None => (None, 1),
        };
    }
    if special(b[0]) {
        return (Some(&s[..1]), 1);
    }
    let len = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    ((len > 0).then(|| &s[..len]), len)
}

/// `getHostByName name`: one of the addresses `name` resolves to, chosen
/// at random.
pub(in super::super) fn get_host_by_name<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let name = string_arg(&args[0])?;
    let addrs: BTreeSet<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default();
    addrs
        .into_iter()
        .choose(&mut rand::rng())
        .map(|ip| owned(ip.to_string()))
        .ok_or_else(|| "invalid argument to Intn".to_owned())
}
