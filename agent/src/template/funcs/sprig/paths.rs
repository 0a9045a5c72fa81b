//! Sprig's path functions: Go's `path` package, which on Linux is also
//! what its `os*` forms (`path/filepath`) do.

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// `base p`: the last element of `p`; `.` for an empty path, `/` for
/// slashes only.
pub(in super::super) fn base<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let p = string_arg(&args[0])?;
    if p.is_empty() {
        return Ok(owned(".".into()));
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(owned("/".into()));
    }
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    Ok(owned(last.to_owned()))
}

/// `dir p`: `p` without its last element, cleaned.
pub(in super::super) fn dir<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let p = string_arg(&args[0])?;
    let parent = p.rfind('/').map_or("", |i| &p[..=i]);
    Ok(owned(clean_path(parent)))
}

/// `clean p`: the shortest path naming the same file, by Go's rules.
pub(in super::super) fn clean<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(clean_path(string_arg(&args[0])?)))
}

/// `ext p`: the extension of `p`'s last element, its dot included.
pub(in super::super) fn ext<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let p = string_arg(&args[0])?;
    let last = p.rsplit('/').next().unwrap_or(p);
    Ok(owned(last.rfind('.').map_or("", |i| &last[i..]).to_owned()))
}

/// `isAbs p`: whether `p` starts at the root.
pub(in super::super) fn is_abs<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(string_arg(&args[0])?.starts_with('/')))
}

/// Go's `path.Clean`.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            name => parts.push(name),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}
