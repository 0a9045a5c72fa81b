//! Go's printing and escaping builtins.

use super::super::print::{sprint, sprintf, sprintln};
use super::super::value::{TooDeep, Value};
use super::args::{FnResult, owned, string_arg};

/// `print a...`: `fmt.Sprint`.
pub(super) fn print<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(sprint(args)?))
}

/// `printf format a...`: `fmt.Sprintf`.
pub(super) fn printf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(sprintf(string_arg(&args[0])?, &args[1..])?))
}

/// `println a...`: `fmt.Sprintln`.
pub(super) fn println<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(sprintln(args)?))
}

/// `html a...`: escaped for HTML text.
pub(super) fn html<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = eval_args_string(args)?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Ok(owned(out))
}

/// `js a...`: escaped for a JavaScript string.
pub(super) fn js<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = eval_args_string(args)?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    Ok(owned(out))
}

/// `urlquery a...`: escaped for a URL query.
pub(super) fn urlquery<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = eval_args_string(args)?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(owned(out))
}

/// Go's `evalArgs` for `html`, `js`, `urlquery`: one string as is, else
/// `fmt.Sprint` of the arguments.
fn eval_args_string(args: &[Value<'_>]) -> Result<String, TooDeep> {
    match args {
        [one] if one.is_plain_string() => Ok(one.as_str().unwrap_or_default().into_owned()),
        _ => sprint(args),
    }
}
