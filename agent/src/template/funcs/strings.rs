//! consul-template's string functions, with its argument orders: the
//! string operated on comes last, so it can be piped in.

use std::rc::Rc;

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// Bytes `indent` may build into one string.
const MAX_STRING_BYTES: usize = 64 << 20;

/// `trimSpace s`: `strings.TrimSpace`.
pub(super) fn trim_space<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(
        string_arg(&args[0])?.trim_matches(is_go_space).to_owned(),
    ))
}

/// `trim cutset s`: removes the characters of `cutset` from both ends.
pub(super) fn trim<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (cut, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(s.trim_matches(|c| cut.contains(c)).to_owned()))
}

/// `trimPrefix prefix s`.
pub(super) fn trim_prefix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (prefix, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(s.strip_prefix(prefix).unwrap_or(s).to_owned()))
}

/// `trimSuffix suffix s`.
pub(super) fn trim_suffix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (suffix, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(s.strip_suffix(suffix).unwrap_or(s).to_owned()))
}

/// `split sep s`: `s` without surrounding space, split at `sep`; an empty
/// `s` gives an empty list.
pub(super) fn split<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sep, s) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?.trim_matches(is_go_space),
    );
    let parts = if s.is_empty() {
        Vec::new()
    } else {
        go_split(s, sep)
    };
    Ok(Value::Strings(Rc::new(parts)))
}

/// `join sep l`: the strings of `l` with `sep` between them.
pub(super) fn join<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let sep = string_arg(&args[0])?;
    match &args[1] {
        Value::StrSlice(l) => Ok(owned(l.join(sep))),
        Value::Strings(l) => Ok(owned(l.join(sep))),
        other => Err(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        )),
    }
}

/// `replaceAll from to s`.
pub(super) fn replace_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (from, to, s) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    Ok(owned(go_replace_all(s, from, to)))
}

/// `toLower s`.
pub(super) fn to_lower<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    // A lower-case mapping of several characters keeps the first, as Go's
    // `unicode.ToLower` maps rune to rune.
    let s = string_arg(&args[0])?;
    Ok(owned(
        s.chars()
            .map(|c| c.to_lowercase().next().unwrap_or(c))
            .collect(),
    ))
}

/// `toUpper s`.
pub(super) fn to_upper<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    // Go maps rune by rune: a character whose upper case is several
    // characters (ß) keeps its single-rune form.
    let s = string_arg(&args[0])?;
    Ok(owned(
        s.chars()
            .map(|c| {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) => u,
                    _ => c,
                }
            })
            .collect(),
    ))
}

/// `toTitle s`: the first letter of every word in upper case, the rest as
/// they are. Words are runs of letters and digits, joined by `_` and by
/// apostrophes, periods and colons between them, as in Unicode's word
/// boundaries.
pub(super) fn to_title<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            if !in_word && c.is_alphabetic() {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            in_word = true;
        } else {
            let joins = matches!(c, '\'' | '’' | '.' | ':' | '·')
                && chars.peek().is_some_and(|n| n.is_alphanumeric());
            in_word &= joins;
            out.push(c);
        }
    }
    Ok(owned(out))
}

/// `splitToMap sep kvsep s`: `s` without surrounding space, split at `sep`
/// into `key<kvsep>value` pairs; a part without `kvsep` is skipped.
pub(super) fn split_to_map<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sep, kv_sep) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let s = string_arg(&args[2])?.trim_matches(is_go_space);
    let mut map = std::collections::BTreeMap::new();
    if !s.is_empty() {
        for part in go_split(s, sep) {
            if let Some((k, v)) = part.split_once(kv_sep) {
                map.insert(k.to_owned(), owned(v.to_owned()));
            }
        }
    }
    Ok(Value::Map(Rc::new(map)))
}

/// `indent n s`: `n` spaces before every line that is not empty.
pub(super) fn indent<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let Value::Int(n) = args[0] else {
        return Err(format!(
            "wrong type for value; expected int; got {}",
            args[0].type_name()
        ));
    };
    let n = usize::try_from(n).map_err(|_| "indent value must be a positive integer".to_owned())?;
    let text = string_arg(&args[1])?;
    let lines = text.matches('\n').count() + 1;
    if n.saturating_mul(lines) > MAX_STRING_BYTES {
        return Err(format!(
            "indent: {n} spaces on {lines} lines, more than the limit of \
             {MAX_STRING_BYTES} bytes"
        ));
    }
    let prefix = " ".repeat(n);
    let mut out = String::new();
    let mut at_line_start = true;
    for c in text.chars() {
        if at_line_start && c != '\n' {
            out.push_str(&prefix);
        }
        out.push(c);
        at_line_start = c == '\n';
    }
    Ok(owned(out))
}

/// Go's `unicode.IsSpace` for the characters `strings.TrimSpace` removes.
pub(super) fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

/// `strings.Split`: an empty separator splits into characters.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_owned).collect()
}

/// `strings.Replace(s, from, to, -1)`: an empty `from` inserts around runes.
fn go_replace_all(s: &str, from: &str, to: &str) -> String {
    if !from.is_empty() {
        return s.replace(from, to);
    }
    let mut out = String::from(to);
    for c in s.chars() {
        out.push(c);
        out.push_str(to);
    }
    out
}
