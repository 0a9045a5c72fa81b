//! `toJSON`, `toJSONPretty` (Go's `encoding/json`) and `toYAML`
//! (`gopkg.in/yaml.v2`), byte for byte for the shapes Vault returns.

use std::fmt::Write;

use super::print::float_g;
use super::value::{TooDeep, Value};

/// Go's `json.Marshal` (`json.MarshalIndent` with two spaces when `pretty`).
/// Fails on a value nested too deeply to encode by recursion.
pub(crate) fn to_json(v: &Value<'_>, pretty: bool) -> Result<String, TooDeep> {
    v.check_nesting()?;
    let mut out = String::new();
    json_value(&mut out, v, pretty, 0);
    Ok(out)
}

fn newline(out: &mut String, pretty: bool, depth: usize) {
    if pretty {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
}

fn json_value(out: &mut String, v: &Value<'_>, pretty: bool, depth: usize) {
    match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Str(_) | Value::String(_) => json_string(out, &v.as_str().unwrap_or_default()),
        Value::JsonMap(_) | Value::Map(_) => {
            let entries = v.map_entries();
            json_object(
                out,
                entries.iter().map(|(k, v)| (*k, v.clone())),
                entries.is_empty(),
                pretty,
                depth,
            );
        }
        Value::JsonList(_) | Value::List(_) | Value::StrSlice(_) | Value::Strings(_) => {
            let items = v.list_items().unwrap_or_default();
            if matches!(v, Value::StrSlice(s) if s.is_empty()) {
                // A nil []string (no warnings) marshals as null.
                out.push_str("null");
                return;
            }
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, pretty, depth + 1);
                json_value(out, item, pretty, depth + 1);
            }
            newline(out, pretty, depth);
            out.push(']');
        }
        Value::Secret(_)
        | Value::Auth(_)
        | Value::Pem(_)
        | Value::Certificate(_)
        | Value::Scratch => {
            let entries = v.struct_fields().unwrap_or_default().iter().map(|name| {
                let value = match (v, *name) {
                    // A secret without data, an auth without metadata,
                    // have a nil map in Go.
                    (Value::Secret(s), "Data") if s.data.is_empty() => Value::Nil,
                    (Value::Auth(a), "Metadata") if a.metadata.is_none() => Value::Nil,
                    // So has a token without policies a nil slice.
                    (Value::Auth(a), "Policies") if a.policies.is_empty() => Value::Nil,
                    _ => v.struct_field(name).unwrap_or(Value::Nil),
                };
                (*name, value)
            });
            json_object(out, entries, false, pretty, depth);
        }
    }
}

fn json_object<'v>(
    out: &mut String,
    entries: impl Iterator<Item = (&'v str, Value<'v>)>,
    empty: bool,
    pretty: bool,
    depth: usize,
) {
    if empty {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, val)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, pretty, depth + 1);
        json_string(out, k);
        out.push(':');
        if pretty {
            out.push(' ');
        }
        json_value(out, &val, pretty, depth + 1);
    }
    newline(out, pretty, depth);
    out.push('}');
}

/// Go's float encoding: shortest digits, exponent form outside [1e-6, 1e21).
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = float_g(f, i32::MIN);
        // Go writes e-7 rather than e-07.
        match s.find("e-0") {
            Some(i) => format!("{}e-{}", &s[..i], &s[i + 3..]),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// A JSON string with Go's HTML-safe escaping.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// yaml.v2's `Marshal`, trimmed as consul-template's `toYAML` does. Fails
/// on a value nested too deeply to encode by recursion.
pub(crate) fn to_yaml(v: &Value<'_>) -> Result<String, TooDeep> {
    v.check_nesting()?;
    let mut out = String::new();
    if is_block_collection(v) {
        yaml_block(&mut out, v, 0);
    } else {
        // libyaml indents continuation lines of a root scalar by two.
        yaml_scalar(&mut out, v, 2, false);
    }
    Ok(out.trim().to_owned())
}

fn is_block_collection(v: &Value<'_>) -> bool {
    match v {
        Value::JsonMap(_) | Value::Map(_) => !v.map_entries().is_empty(),
        Value::JsonList(_) | Value::List(_) | Value::StrSlice(_) | Value::Strings(_) => {
            v.len().unwrap_or(0) > 0
        }
        Value::Secret(_) | Value::Auth(_) | Value::Pem(_) | Value::Certificate(_) => true,
        Value::Scratch => false,
        _ => false,
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a non-empty map or list in block style at `ind` columns. The
/// caller has already written the indentation of the first line.
fn yaml_block(out: &mut String, v: &Value<'_>, ind: usize) {
    let mut entries: Vec<(String, Value<'_>)> = match v {
        Value::Secret(_)
        | Value::Auth(_)
        | Value::Pem(_)
        | Value::Certificate(_)
        | Value::Scratch => {
            // yaml.v2 lowercases struct field names.
            v.struct_fields()
                .unwrap_or_default()
                .iter()
                .map(|n| (n.to_lowercase(), v.struct_field(n).unwrap_or(Value::Nil)))
                .collect()
        }
        Value::JsonMap(_) | Value::Map(_) => v
            .map_entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        _ => {
            for (i, item) in v.list_items().unwrap_or_default().iter().enumerate() {
                if i > 0 {
                    indent(out, ind);
                }
                out.push_str("- ");
                if is_block_collection(item) {
                    yaml_block(out, item, ind + 2);
                } else {
                    yaml_scalar(out, item, ind + 2, false);
                }
            }
            return;
        }
    };
    if matches!(v, Value::JsonMap(_) | Value::Map(_)) {
        entries.sort_by(|a, b| yaml_key_order(&a.0, &b.0));
    }
    for (i, (k, val)) in entries.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        yaml_scalar(out, &Value::Str(k), ind, true);
        out.push(':');
        if is_block_collection(val) {
            out.push('\n');
            // yaml.v2 does not indent a sequence under a mapping key.
            let child = if val.is_map() || val.struct_fields().is_some() {
                ind + 2
            } else {
                ind
            };
            indent(out, child);
            yaml_block(out, val, child);
        } else {
            out.push(' ');
            yaml_scalar(out, val, ind + 2, false);
        }
    }
}

/// yaml.v2's key order: numbers by value, then strings compared with runs
/// of digits as numbers and letters after other characters.
fn yaml_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Writes a scalar (or an empty collection) followed by a newline, except
/// for keys.
fn yaml_scalar(out: &mut String, v: &Value<'_>, ind: usize, key: bool) {
    match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&yaml_float(*f)),
        Value::Number(n) => {
            // yaml.v2 marshals json.Number as an int when it parses as one,
            // else as a float.
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else {
                out.push_str(&yaml_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::Str(_) | Value::String(_) => {
            yaml_string(out, &v.as_str().unwrap_or_default(), ind, key)
        }
        Value::JsonMap(_)
        | Value::Map(_)
        | Value::Secret(_)
        | Value::Auth(_)
        | Value::Pem(_)
        | Value::Certificate(_)
        | Value::Scratch => out.push_str("{}"),
        _ => out.push_str("[]"),
    }
    if !key {
        out.push('\n');
    }
}

fn yaml_float(f: f64) -> String {
    match float_g(f, 6).as_str() {
        "+Inf" => ".inf".into(),
        "-Inf" => "-.inf".into(),
        "NaN" => ".nan".into(),
        s => s.to_owned(),
    }
}

#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// Chooses the scalar style as yaml.v2 and libyaml's emitter do.
fn yaml_string(out: &mut String, s: &str, ind: usize, key: bool) {
    let style = if !resolves_to_string(s) {
        Style::Double
    } else if s.contains('\n') {
        if key || !block_allowed(s) {
            Style::Double
        } else {
            Style::Literal
        }
    } else {
        let a = analyze(s);
        if a.plain {
            Style::Plain
        } else if a.single {
            Style::Single
        } else {
            Style::Double
        }
    };
    match style {
        Style::Plain => write_folded(out, s, ind, key, None),
        Style::Single => {
            out.push('\'');
            write_folded(out, s, ind, key, Some('\''));
            out.push('\'');
        }
        Style::Double => write_double(out, s, ind, key),
        Style::Literal => {
            out.push('|');
            if s.starts_with([' ', '\n']) {
                out.push('2');
            }
            let trailing = s.len() - s.trim_end_matches('\n').len();
            match trailing {
                0 => out.push('-'),
                1 => {}
                _ => out.push('+'),
            }
            let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
            for line in body.split('\n') {
                out.push('\n');
                if !line.is_empty() {
                    indent(out, ind);
                    out.push_str(line);
                }
            }
        }
    }
}

/// Whether yaml.v2 would read `s` back as a string if written plain.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !matches!(first, '+' | '-' | '.' | '0'..='9') {
        return true;
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    !(is_go_int(&plain) || is_yaml_float(&plain) || is_base60(s) || is_timestamp(s))
}

/// `strconv.ParseInt(s, 0, 64)` or `ParseUint` would accept `s`.
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok()
}

/// yaml.v2's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let digits = |b: &[u8], i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut i = 0;
    if b.first() == Some(&b'.') {
        i = 1;
        if digits(b, &mut i) == 0 {
            return false;
        }
    } else {
        if digits(b, &mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(b, &mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(b, &mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// yaml.v2's base-60 float pattern `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = b.split_once('.').unwrap_or((b, ""));
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && head.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let rest: Vec<&str> = parts.collect();
    head_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            let p = p.as_bytes();
            match p {
                [d] => d.is_ascii_digit(),
                [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
                _ => false,
            }
        })
        && frac.bytes().all(|c| c.is_ascii_digit() || c == b'_')
}

/// A date or date-time that yaml.v2 would read as a timestamp.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let count = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if count(&mut i) != 4 || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    if !(1..=2).contains(&count(&mut i)) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    if !(1..=2).contains(&count(&mut i)) {
        return false;
    }
    i == b.len() || matches!(b[i], b'T' | b't' | b' ')
}

struct Analysis {
    plain: bool,
    single: bool,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0a
        || (0x20..=0x7e).contains(&u)
        || u == 0x85
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
        || (0x10000..=0x10ffff).contains(&u)
}

/// libyaml's `analyze_scalar` for single-line strings in block context.
fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    let mut indicators = false;
    let mut special = false;
    for (i, &c) in chars.iter().enumerate() {
        let next_blank = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => indicators = true,
                '?' | ':' | '-' if next_blank => indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if next_blank => indicators = true,
                '#' if chars[i - 1] == ' ' || chars[i - 1] == '\t' => indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
    }
    let leading_space = chars.first() == Some(&' ');
    let trailing_space = chars.last() == Some(&' ');
    let plain = !indicators && !special && !leading_space && !trailing_space;
    Analysis {
        plain,
        single: !special,
    }
}

fn block_allowed(s: &str) -> bool {
    let special = s.chars().any(|c| !is_printable(c));
    let trailing_space = s.ends_with(' ');
    let space_break = s.contains(" \n");
    !(special || trailing_space || space_break)
}

/// Writes plain or single-quoted text, folding at spaces past column 80 as
/// libyaml's emitter does.
fn write_folded(out: &mut String, s: &str, ind: usize, key: bool, quote: Option<char>) {
    let line_start = out.rfind('\n').map_or(0, |i| i + 1);
    let mut column = out[line_start..].chars().count();
    let chars: Vec<char> = s.chars().collect();
    let mut prev_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let at_edge = quote.is_some() && (i == 0 || i + 1 == chars.len());
            if !key && !prev_space && column > 80 && !next_space && !at_edge {
                out.push('\n');
                indent(out, ind);
                column = ind;
            } else {
                out.push(' ');
                column += 1;
            }
            prev_space = true;
            continue;
        }
        prev_space = false;
        if Some(c) == quote {
            out.push(c);
            column += 1;
        }
        out.push(c);
        column += 1;
    }
}

fn write_double(out: &mut String, s: &str, ind: usize, key: bool) {
    out.push('"');
    let line_start = out.rfind('\n').map_or(0, |i| i + 1);
    let mut column = out[line_start..].chars().count();
    let chars: Vec<char> = s.chars().collect();
    let mut prev_space = false;
    for (i, &c) in chars.iter().enumerate() {
        let before = out.len();
        match c {
            ' ' => {
                if !key && !prev_space && column > 80 && i != 0 && i + 1 != chars.len() {
                    out.push('\n');
                    indent(out, ind);
                    column = ind;
                    if chars.get(i + 1) == Some(&' ') {
                        out.push('\\');
                        column += 1;
                    }
                    prev_space = true;
                    continue;
                }
                out.push(' ');
            }
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{feff}' => {
                let u = c as u32;
                let _ = if u <= 0xff {
                    write!(out, "\\x{u:02X}")
                } else if u <= 0xffff {
                    write!(out, "\\u{u:04X}")
                } else {
                    write!(out, "\\U{u:08X}")
                };
            }
            c => out.push(c),
        }
        prev_space = c == ' ';
        column += out[before..].chars().count();
    }
    out.push('"');
}
