//! consul-template's regular expressions. The `regex` crate's syntax is
//! RE2's, which Go's `regexp` implements, with the same `$1`/`${name}`
//! replacement expansion.

use regex::Regex;

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// `regexMatch re s`: whether `re` matches anywhere in `s`.
pub(super) fn regex_match<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (re, s) = (compile(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(re.is_match(s)))
}

/// `regexReplaceAll re replacement s`: every match of `re` in `s` replaced,
/// `$1` and `${name}` expanding to groups.
pub(super) fn regex_replace_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let re = compile(&args[0])?;
    let (replacement, s) = (string_arg(&args[1])?, string_arg(&args[2])?);
    Ok(owned(re.replace_all(s, replacement).into_owned()))
}

/// Compiles `re`; an error says why in one line, as Go's does.
fn compile(re: &Value<'_>) -> Result<Regex, String> {
    let re = string_arg(re)?;
    Regex::new(re).map_err(|e| {
        let e = e.to_string();
        let why = e.lines().last().unwrap_or_default();
        let why = why.strip_prefix("error: ").unwrap_or(why);
        format!("error parsing regexp: {why}: `{re}`")
    })
}
