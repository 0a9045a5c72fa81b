//! Sprig's regular expressions: Go's RE2 syntax, matched by the `regex`
//! crate after [`go_pattern`] gives the Perl classes (`\d`, `\w`, `\s`,
//! `\b`) Go's ASCII meaning and escapes what the crate reads as nested
//! classes. The plain forms fail on a bad pattern (Go's `MustCompile`
//! panics) except `regexMatch`, which is then false; the `must` forms fail.

use regex::{NoExpand, Regex};

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::{int_arg, strings_value};

/// How a function compiles its pattern.
type Compiler = fn(&str) -> Result<Regex, String>;

/// `pattern` compiled by the plain forms, with the message of the panic
/// Go's `MustCompile` raises on a bad one.
fn compile_or_panic(pattern: &str) -> Result<Regex, String> {
    compile(pattern).map_err(|err| format!("regexp: Compile(`{pattern}`): {err}"))
}

/// `pattern` compiled with Go's meaning.
fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&go_pattern(pattern)).map_err(|err| {
        let reason = match err {
            regex::Error::CompiledTooBig(_) => "expression too large",
            _ => "invalid syntax",
        };
        format!("error parsing regexp: {reason}: `{pattern}`")
    })
}

/// Rewrites Go regexp syntax into the `regex` crate's: ASCII-only Perl
/// classes and word boundaries, and `[`, `&`, `-`, `~` inside a class as
/// the literal characters Go takes them for.
fn go_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => match chars.next() {
                Some('d') => out.push_str("[0-9]"),
                Some('D') => out.push_str("[^0-9]"),
                Some('w') => out.push_str("[0-9A-Za-z_]"),
                Some('W') => out.push_str("[^0-9A-Za-z_]"),
                Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
                Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
                Some('b') if !in_class => out.push_str("(?-u:\\b)"),
                Some('B') if !in_class => out.push_str("(?-u:\\B)"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as `[:alpha:]`, copied whole.
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && chars.peek() == Some(&'-') => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    out
}

/// `regexMatch pattern s`: whether `s` has a match; false for a bad pattern.
pub(in super::super) fn regex_match<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (pattern, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(compile(pattern).is_ok_and(|re| re.is_match(s))))
}

/// `mustRegexMatch pattern s`: `regexMatch` that fails on a bad pattern.
pub(in super::super) fn must_regex_match<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (pattern, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(compile(pattern)?.is_match(s)))
}

/// `regexFindAll pattern s n`: up to `n` matches (all when negative).
pub(in super::super) fn regex_find_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    find_all(args, compile_or_panic)
}

/// `mustRegexFindAll pattern s n`: `regexFindAll` that fails with the
/// pattern's error.
pub(in super::super) fn must_regex_find_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    find_all(args, compile)
}

fn find_all<'a>(args: &[Value<'a>], compile: Compiler) -> FnResult<'a> {
    let (pattern, s, n) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        int_arg(&args[2])?,
    );
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let re = compile(pattern)?;
    Ok(strings_value(
        re.find_iter(s)
            .take(limit)
            .map(|m| m.as_str().to_owned())
            .collect(),
    ))
}

/// `regexFind pattern s`: the first match, or nothing.
pub(in super::super) fn regex_find<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    find(args, compile_or_panic)
}

/// `mustRegexFind pattern s`: `regexFind` that fails with the pattern's error.
pub(in super::super) fn must_regex_find<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    find(args, compile)
}

fn find<'a>(args: &[Value<'a>], compile: Compiler) -> FnResult<'a> {
    let (pattern, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let re = compile(pattern)?;
    Ok(owned(
        re.find(s)
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
    ))
}

/// `regexReplaceAll pattern s repl`: every match replaced by `repl`, with
/// `$1` and `${name}` expanded.
pub(in super::super) fn regex_replace_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    replace_all(args, compile_or_panic)
}

/// `mustRegexReplaceAll pattern s repl`: `regexReplaceAll` that fails
/// with the pattern's error.
pub(in super::super) fn must_regex_replace_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    replace_all(args, compile)
}

fn replace_all<'a>(args: &[Value<'a>], compile: Compiler) -> FnResult<'a> {
    let (pattern, s, repl) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    Ok(owned(compile(pattern)?.replace_all(s, repl).into_owned()))
}

/// `regexReplaceAllLiteral pattern s repl`: every match replaced by
/// `repl` as it is.
pub(in super::super) fn regex_replace_all_literal<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    replace_all_literal(args, compile_or_panic)
}

/// `mustRegexReplaceAllLiteral pattern s repl`: `regexReplaceAllLiteral`
/// that fails with the pattern's error.
pub(in super::super) fn must_regex_replace_all_literal<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    replace_all_literal(args, compile)
}

fn replace_all_literal<'a>(args: &[Value<'a>], compile: Compiler) -> FnResult<'a> {
    let (pattern, s, repl) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    Ok(owned(
        compile(pattern)?
            .replace_all(s, NoExpand(repl))
            .into_owned(),
    ))
}

/// `regexSplit pattern s n`: `s` cut at the matches into at most `n`
/// parts (all when negative), as Go's `Regexp.Split`.
pub(in super::super) fn regex_split<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    split(args, compile_or_panic)
}

/// `mustRegexSplit pattern s n`: `regexSplit` that fails with the
/// pattern's error.
pub(in super::super) fn must_regex_split<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    split(args, compile)
}

fn split<'a>(args: &[Value<'a>], compile: Compiler) -> FnResult<'a> {
    let (pattern, s, n) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        int_arg(&args[2])?,
    );
    let re = compile(pattern)?;
    if n == 0 {
        return Ok(strings_value(Vec::new()));
    }
    if !pattern.is_empty() && s.is_empty() {
        return Ok(strings_value(vec![String::new()]));
    }
    let limit = usize::try_from(n).ok();
    let mut parts = Vec::new();
    let (mut begin, mut end) = (0, 0);
    for m in re.find_iter(s) {
        if limit.is_some_and(|limit| parts.len() + 1 == limit) {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            parts.push(s[begin..end].to_owned());
        }
        begin = m.end();
    }
    if end != s.len() {
        parts.push(s[begin..].to_owned());
    }
    Ok(strings_value(parts))
}

/// `regexQuoteMeta s`: `s` with every regexp metacharacter escaped.
pub(in super::super) fn regex_quote_meta<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(owned(out))
}
