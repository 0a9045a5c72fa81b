//! Sprig's string functions. Go strings are bytes, and sprig cuts them by
//! byte: a cut inside a character keeps the pieces as U+FFFD.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::super::print::quote as go_quote;
use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::super::strings::is_go_space;
use super::{int_arg, strings_value, strslice, strval};

/// Text from bytes cut out of a Go string.
fn from_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `abbrev width s`: `s` cut to `width` bytes, the last three `...`.
pub(in super::super) fn abbrev<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (width, s) = (int_arg(&args[0])?, string_arg(&args[1])?);
    if width < 4 {
        return Ok(owned(s.to_owned()));
    }
    Ok(owned(abbreviate(s, 0, width)))
}

/// `abbrevboth left right s`: `s` cut to `right` bytes with `...` on the
/// side or sides that were cut, starting near byte `left`.
pub(in super::super) fn abbrevboth<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (left, right, s) = (
        int_arg(&args[0])?,
        int_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    if right < 4 || left > 0 && right < 7 {
        return Ok(owned(s.to_owned()));
    }
    Ok(owned(abbreviate(s, left, right)))
}

/// goutils' `AbbreviateFull`, for widths it accepts.
fn abbreviate(s: &str, offset: i64, width: i64) -> String {
    let b = s.as_bytes();
    let len = b.len() as i64;
    if len <= width {
        return s.to_owned();
    }
    let mut offset = offset.min(len);
    if len - offset < width - 3 {
        offset = len - (width - 3);
    }
    if offset <= 4 {
        return from_bytes(&b[..(width - 3) as usize]) + "...";
    }
    if offset + width - 3 < len {
        let rest = from_bytes(&b[offset as usize..]);
        return format!("...{}", abbreviate(&rest, 0, width - 3));
    }
    format!("...{}", from_bytes(&b[(len - (width - 3)) as usize..]))
}

/// `trunc n s`: the first `n` bytes of `s`, or its last `-n`.
pub(in super::super) fn trunc<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (n, s) = (int_arg(&args[0])?, string_arg(&args[1])?.as_bytes());
    let len = s.len() as i64;
    Ok(owned(if n < 0 && len + n > 0 {
        from_bytes(&s[(len + n) as usize..])
    } else if n >= 0 && len > n {
        from_bytes(&s[..n as usize])
    } else {
        from_bytes(s)
    }))
}

/// `trim s`: `s` without surrounding white space.
pub(in super::super) fn trim<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::trim_space(args)
}

/// `upper s`.
pub(in super::super) fn upper<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::to_upper(args)
}

/// `lower s`.
pub(in super::super) fn lower<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::to_lower(args)
}

/// `title s`: Go's `strings.Title`, the first letter of every word in
/// title case.
pub(in super::super) fn title<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut prev = ' ';
    Ok(owned(
        s.chars()
            .map(|c| {
                let out = if is_word_separator(prev) {
                    single_upper(c)
                } else {
                    c
                };
                prev = c;
                out
            })
            .collect(),
    ))
}

/// Go's `strings.isSeparator`, which ends a word for `strings.Title`.
fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !c.is_alphanumeric() && is_go_space(c)
}

/// The upper case of `c` when that is one character, as Go maps runes.
fn single_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// The lower case of `c` (its first character, as Go maps runes).
fn single_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// `untitle s`: the first letter of every word in lower case.
pub(in super::super) fn untitle<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut word_start = true;
    Ok(owned(
        s.chars()
            .map(|c| {
                if is_go_space(c) {
                    word_start = true;
                    c
                } else if std::mem::take(&mut word_start) {
                    single_lower(c)
                } else {
                    c
                }
            })
            .collect(),
    ))
}

/// `substr start end s`: bytes `start` to `end` of `s`; a negative
/// `start` is the beginning, a negative or too large `end` the end.
pub(in super::super) fn substr<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (start, end, s) = (
        int_arg(&args[0])?,
        int_arg(&args[1])?,
        string_arg(&args[2])?.as_bytes(),
    );
    let len = s.len() as i64;
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if to < 0 || to > len || from > to {
        return Err(format!(
            "runtime error: slice bounds out of range [{from}:{to}] with length {len}"
        ));
    }
    Ok(owned(from_bytes(&s[from as usize..to as usize])))
}

/// `repeat count s`.
pub(in super::super) fn repeat<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (count, s) = (int_arg(&args[0])?, string_arg(&args[1])?);
    let count = usize::try_from(count).map_err(|_| "strings: negative Repeat count".to_owned())?;
    if s.len().saturating_mul(count) > MAX_STRING_BYTES {
        return Err(format!(
            "repeat: {count} copies, more than the limit of {MAX_STRING_BYTES} bytes"
        ));
    }
    Ok(owned(s.repeat(count)))
}

/// Bytes `repeat`, `indent` and `wrap` may build into one string.
const MAX_STRING_BYTES: usize = 64 << 20;

/// `trimAll cutset s`: `s` without the characters of `cutset` at either end.
pub(in super::super) fn trim_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::trim(args)
}

/// `trimSuffix suffix s`.
pub(in super::super) fn trim_suffix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::trim_suffix(args)
}

/// `trimPrefix prefix s`.
pub(in super::super) fn trim_prefix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    super::super::strings::trim_prefix(args)
}

/// `nospace s`: `s` without white space. goutils reads `s` byte by byte
/// as Latin-1, so a character beyond ASCII comes out as its bytes' Latin-1
/// characters when anything was removed.
pub(in super::super) fn nospace<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let kept: String = s
        .bytes()
        .map(char::from)
        .filter(|c| !is_go_space(*c))
        .collect();
    if kept.chars().count() == s.len() {
        return Ok(owned(s.to_owned()));
    }
    Ok(owned(kept))
}

/// `initials s`: the first byte of every word, read as Latin-1 like
/// `nospace`.
pub(in super::super) fn initials<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut out = String::new();
    let mut after_gap = true;
    for c in s.bytes().map(char::from) {
        if is_go_space(c) {
            after_gap = true;
        } else if after_gap {
            out.push(c);
            after_gap = false;
        }
    }
    Ok(owned(out))
}

/// `swapcase s`: upper case to lower and lower case to upper (Go's title
/// case, which a lower-case letter after white space gets, is upper case
/// for every letter that has one).
pub(in super::super) fn swapcase<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    Ok(owned(
        s.chars()
            .map(|c| {
                if c.is_uppercase() {
                    single_lower(c)
                } else if c.is_lowercase() {
                    single_upper(c)
                } else {
                    c
                }
            })
            .collect(),
    ))
}

/// `wrap width s`: lines broken at spaces to at most `width` bytes; a
/// longer word stays whole.
pub(in super::super) fn wrap<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (width, s) = (int_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(wrap_custom(s, width, "\n", false)))
}

/// `wrapWith width sep s`: `wrap` with `sep` between lines and long words
/// broken.
pub(in super::super) fn wrap_with<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (width, sep, s) = (
        int_arg(&args[0])?,
        string_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    Ok(owned(wrap_custom(s, width, sep, true)))
}

/// goutils' `WrapCustom`, byte by byte.
fn wrap_custom(s: &str, width: i64, sep: &str, break_long_words: bool) -> String {
    let sep = if sep.is_empty() { "\n" } else { sep };
    let width = usize::try_from(width.max(1)).unwrap_or(usize::MAX);
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut offset = 0;
    while b.len() - offset > width {
        if b[offset] == b' ' {
            offset += 1;
            continue;
        }
        let window = &b[offset..offset + width + 1];
        if let Some(space) = window.iter().rposition(|&c| c == b' ') {
            out.extend_from_slice(&b[offset..offset + space]);
            out.extend_from_slice(sep.as_bytes());
            offset += space + 1;
        } else if break_long_words {
            out.extend_from_slice(&b[offset..offset + width]);
            out.extend_from_slice(sep.as_bytes());
            offset += width;
        } else {
            let end = offset + width;
            match b[end..].iter().position(|&c| c == b' ') {
                None => {
                    out.extend_from_slice(&b[offset..]);
                    offset = b.len();
                }
                Some(i) => {
                    out.extend_from_slice(&b[offset..end + i]);
                    out.extend_from_slice(sep.as_bytes());
                    offset = end + i + 1;
                }
            }
        }
    }
    out.extend_from_slice(&b[offset..]);
    from_bytes(&out)
}

/// `contains sub s`.
pub(in super::super) fn contains<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sub, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(s.contains(sub)))
}

/// `hasPrefix prefix s`.
pub(in super::super) fn has_prefix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (prefix, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(s.starts_with(prefix)))
}

/// `hasSuffix suffix s`.
pub(in super::super) fn has_suffix<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (suffix, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(s.ends_with(suffix)))
}

/// The arguments that are not nil.
fn present<'v, 'a>(args: &'v [Value<'a>]) -> impl Iterator<Item = &'v Value<'a>> {
    args.iter()
        .filter(|v| !matches!(v, Value::Nil | Value::Missing))
}

/// `quote v...`: each value's text in Go's double quotes, nil left out,
/// separated by spaces.
pub(in super::super) fn quote<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let quoted: Vec<String> = present(args)
        .map(|v| {
            let mut out = String::new();
            go_quote(&mut out, &strval(v)?, false);
            Ok::<_, String>(out)
        })
        .collect::<Result<_, _>>()?;
    Ok(owned(quoted.join(" ")))
}

/// `squote v...`: each value's text in single quotes, nil left out.
pub(in super::super) fn squote<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let quoted: Vec<String> = present(args)
        .map(|v| Ok::<_, String>(format!("'{}'", strval(v)?)))
        .collect::<Result<_, _>>()?;
    Ok(owned(quoted.join(" ")))
}

/// `cat v...`: the values' text separated by spaces, nil left out.
pub(in super::super) fn cat<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let parts: Vec<String> = present(args).map(strval).collect::<Result<_, _>>()?;
    Ok(owned(parts.join(" ")))
}

/// `indent n s`: `n` spaces before every line, empty ones included.
pub(in super::super) fn indent<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (n, s) = (int_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(indented(n, s)?))
}

/// `nindent n s`: a newline, then `indent n s`.
pub(in super::super) fn nindent<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (n, s) = (int_arg(&args[0])?, string_arg(&args[1])?);
    Ok(owned(format!("\n{}", indented(n, s)?)))
}

fn indented(n: i64, s: &str) -> Result<String, String> {
    let n = usize::try_from(n).map_err(|_| "strings: negative Repeat count".to_owned())?;
    let lines = s.matches('\n').count() + 1;
    if n.saturating_mul(lines) > MAX_STRING_BYTES {
        return Err(format!(
            "indent: {n} spaces on {lines} lines, more than the limit of {MAX_STRING_BYTES} bytes"
        ));
    }
    let pad = " ".repeat(n);
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// `replace old new s`: every `old` in `s` replaced by `new`.
pub(in super::super) fn replace<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (old, new, s) = (&args[0], &args[1], &args[2]);
    super::super::strings::replace_all(&[old.clone(), new.clone(), s.clone()])
}

/// `plural one many count`: `one` when `count` is 1, else `many`.
pub(in super::super) fn plural<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (one, many, count) = (
        string_arg(&args[0])?,
        string_arg(&args[1])?,
        int_arg(&args[2])?,
    );
    Ok(owned(if count == 1 { one } else { many }.to_owned()))
}

/// `toString v`: the text of any value.
pub(in super::super) fn to_string<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(strval(&args[0])?))
}

/// `toStrings v`: a list's elements as text, nil ones left out.
pub(in super::super) fn to_strings<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(strings_value(strslice(&args[0])?))
}

/// `splitList sep s`: Go's `strings.Split`.
pub(in super::super) fn split_list<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sep, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(strings_value(go_split(s, sep, -1)))
}

/// `split sep s`: the parts of `s` in a map under `_0`, `_1`, ...
pub(in super::super) fn split<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sep, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(indexed_parts(go_split(s, sep, -1)))
}

/// `splitn sep n s`: `split` into at most `n` parts.
pub(in super::super) fn splitn<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (sep, n, s) = (
        string_arg(&args[0])?,
        int_arg(&args[1])?,
        string_arg(&args[2])?,
    );
    Ok(indexed_parts(go_split(s, sep, n)))
}

fn indexed_parts(parts: Vec<String>) -> Value<'static> {
    let map: BTreeMap<String, Value<'static>> = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| (format!("_{i}"), owned(part)))
        .collect();
    Value::Map(Rc::new(map))
}

/// `strings.SplitN`: `n < 0` for every part, 0 for none; an empty
/// separator splits into characters.
fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    if sep.is_empty() {
        let mut parts: Vec<String> = Vec::new();
        for (i, c) in s.char_indices() {
            if parts.len() + 1 == limit {
                parts.push(s[i..].to_owned());
                break;
            }
            parts.push(c.to_string());
        }
        return parts;
    }
    s.splitn(limit, sep).map(str::to_owned).collect()
}

/// `join sep v`: the text of a list's elements separated by `sep`.
pub(in super::super) fn join<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let sep = string_arg(&args[0])?;
    Ok(owned(strslice(&args[1])?.join(sep)))
}
