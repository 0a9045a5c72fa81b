//! Go's `fmt` as templates use it: `%v` printing of values, `print`,
//! `println` and `printf` with the common verbs and flags.

use std::fmt::Write;

use super::value::{TooDeep, Value};

/// Appends `v` as the template printer shows an action's value (`%v`
/// after dereferencing a pointer). Fails on a value nested too deeply to
/// print by recursion.
pub(crate) fn write_v(out: &mut String, v: &Value<'_>) -> Result<(), TooDeep> {
    v.check_nesting()?;
    write_verb_flags(out, v, 'v', Flags::default());
    Ok(())
}

/// Checks every operand of a print function before any is printed.
fn check_nesting(args: &[Value<'_>]) -> Result<(), TooDeep> {
    args.iter().try_for_each(Value::check_nesting)
}

/// Appends `v` as `fmt` prints an operand: a `*Secret` shows as `&{...}`.
fn write_operand(out: &mut String, v: &Value<'_>, verb: char, f: Flags) {
    if matches!(v, Value::Secret(_) | Value::Auth(_))
        && matches!(verb, 'v' | 's' | 'd' | 'q' | 'x' | 'X')
    {
        out.push('&');
    }
    write_verb_flags(out, v, verb, f);
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent form
/// when the exponent is below -4 or at least `eprec`.
pub(crate) fn float_g(f: f64, eprec: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= eprec {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `fmt.Sprint`: operands separated by a space when neither is of a
/// string kind (`json.Number` is one).
pub(crate) fn sprint(args: &[Value<'_>]) -> Result<String, TooDeep> {
    check_nesting(args)?;
    let mut out = String::new();
    let string_kind = |v: &Value<'_>| v.as_str().is_some();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !string_kind(a) && !string_kind(&args[i - 1]) {
            out.push(' ');
        }
        write_operand(&mut out, a, 'v', Flags::default());
    }
    Ok(out)
}

/// Go's `fmt.Sprintln`: operands always separated by spaces, then a newline.
pub(crate) fn sprintln(args: &[Value<'_>]) -> Result<String, TooDeep> {
    check_nesting(args)?;
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_operand(&mut out, a, 'v', Flags::default());
    }
    out.push('\n');
    Ok(out)
}

#[derive(Default, Clone, Copy)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %+v %s %q %d %x %X
/// %o %b %c %f %e %g %t %T %%` with flags `-+# 0`, width and precision.
pub(crate) fn sprintf(format: &str, args: &[Value<'_>]) -> Result<String, TooDeep> {
    check_nesting(args)?;
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut f = Flags::default();
        while let Some(&c) = chars.peek() {
            match c {
                '-' => f.minus = true,
                '+' => f.plus = true,
                '#' => f.sharp = true,
                ' ' => f.space = true,
                '0' => f.zero = true,
                _ => break,
            }
            chars.next();
        }
        f.width = number(&mut chars, args, &mut next_arg);
        if chars.peek() == Some(&'.') {
            chars.next();
            f.prec = Some(number(&mut chars, args, &mut next_arg).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        let mut body = String::new();
        format_one(&mut body, arg, verb, f);
        pad(&mut out, &body, f, is_numeric_verb(verb, arg));
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next_arg..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}=", a.type_name());
            write_operand(&mut out, a, 'v', Flags::default());
        }
        out.push(')');
    }
    Ok(out)
}

/// Largest width or precision, as in Go: a larger one would only exhaust memory.
const MAX_WIDTH: usize = 1_000_000;

fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value<'_>],
    next_arg: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = match args.get(*next_arg) {
            Some(Value::Int(i)) => usize::try_from(*i).ok().filter(|&n| n <= MAX_WIDTH),
            _ => None,
        };
        *next_arg += 1;
        return v;
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        if n.is_some_and(|n| n > MAX_WIDTH) {
            // Go gives up on the rest of the format, which then has no verb.
            chars.for_each(drop);
            return None;
        }
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn is_numeric_verb(verb: char, arg: &Value<'_>) -> bool {
    matches!(arg, Value::Int(_) | Value::Float(_))
        && matches!(
            verb,
            'd' | 'v' | 'x' | 'X' | 'o' | 'b' | 'f' | 'e' | 'g' | 'F' | 'E' | 'G'
        )
}

/// Pads `body` to the width: spaces, or zeros after the sign for numbers.
fn pad(out: &mut String, body: &str, f: Flags, numeric: bool) {
    let len = body.chars().count();
    let Some(width) = f.width.filter(|&w| w > len) else {
        out.push_str(body);
        return;
    };
    let fill = width - len;
    if f.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if f.zero {
        let (sign, digits) = match body.as_bytes().first() {
            Some(b'+' | b'-' | b' ') if numeric => body.split_at(1),
            _ => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn format_one(out: &mut String, arg: &Value<'_>, verb: char, f: Flags) {
    match verb {
        // `%+v` names struct fields; it does not sign numbers.
        'v' if f.plus => write_operand(
            out,
            arg,
            'v',
            Flags {
                plus: false,
                plus_v: true,
                ..f
            },
        ),
        'T' => out.push_str(arg.type_name()),
        _ => write_operand(out, arg, verb, f),
    }
}

/// Writes one operand with a verb, recursing into maps and slices as fmt does.
fn write_verb_flags(out: &mut String, v: &Value<'_>, verb: char, f: Flags) {
    match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => match verb {
            'v' | 's' => out.push_str("<nil>"),
            _ => {
                let _ = write!(out, "%!{verb}(<nil>)");
            }
        },
        Value::Bool(b) => match verb {
            'v' | 't' => out.push_str(if *b { "true" } else { "false" }),
            _ => bad_verb(out, verb, v),
        },
        Value::Int(i) => write_int(out, *i, verb, f, v),
        Value::Float(x) => write_float(out, *x, verb, f, v),
        Value::Str(_) | Value::String(_) | Value::Number(_) => {
            let s = v.as_str().unwrap_or_default();
            write_str(out, &s, verb, f, v);
        }
        Value::JsonMap(_) | Value::Map(_) => {
            out.push_str("map[");
            for (i, (k, val)) in v.map_entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_str(out, k, verb, Flags { width: None, ..f }, &Value::Str(k));
                out.push(':');
                write_verb_flags(out, val, verb, Flags { width: None, ..f });
            }
            out.push(']');
        }
        Value::JsonList(_) | Value::List(_) | Value::StrSlice(_) | Value::Strings(_) => {
            out.push('[');
            for (i, item) in v.list_items().unwrap_or_default().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_verb_flags(out, item, verb, Flags { width: None, ..f });
            }
            out.push(']');
        }
        Value::Secret(_)
        | Value::Auth(_)
        | Value::Pem(_)
        | Value::Certificate(_)
        | Value::Scratch => write_struct(out, v, verb, f),
    }
}

fn write_struct(out: &mut String, v: &Value<'_>, verb: char, f: Flags) {
    let names = v.struct_fields().unwrap_or_default();
    out.push('{');
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if f.plus_v {
            out.push_str(name);
            out.push(':');
        }
        let field = v.struct_field(name).unwrap_or(Value::Nil);
        write_verb_flags(out, &field, verb, Flags { width: None, ..f });
    }
    out.push('}');
}

/// Go's `%!verb(type=value)` for a scalar printed with a verb it has none of.
fn bad_verb(out: &mut String, verb: char, v: &Value<'_>) {
    let _ = write!(out, "%!{verb}({}=", v.type_name());
    write_verb_flags(out, v, 'v', Flags::default());
    out.push(')');
}

fn write_int(out: &mut String, i: i64, verb: char, f: Flags, v: &Value<'_>) {
    let sign = if i < 0 {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    };
    let abs = i.unsigned_abs();
    let digits = match verb {
        'v' | 'd' => abs.to_string(),
        'x' => format!("{}{abs:x}", if f.sharp { "0x" } else { "" }),
        'X' => format!("{}{abs:X}", if f.sharp { "0X" } else { "" }),
        'o' => format!("{}{abs:o}", if f.sharp { "0" } else { "" }),
        'b' => format!("{abs:b}"),
        'c' => {
            out.push(
                u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}'),
            );
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            out.push('\'');
            quote_char(out, c, '\'');
            out.push('\'');
            return;
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 's' | 't' => return bad_verb(out, verb, v),
        _ => return bad_verb(out, verb, v),
    };
    let digits = match f.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    out.push_str(sign);
    out.push_str(&digits);
}

fn write_float(out: &mut String, x: f64, verb: char, f: Flags, v: &Value<'_>) {
    let body = match (verb, f.prec) {
        ('v', None) | ('g', None) => float_g(x, 6),
        ('g' | 'G', Some(p)) => {
            let s = format!("{:.*e}", p.saturating_sub(1), x);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let p = i32::try_from(p.max(1)).unwrap_or(6);
            if exp < -4 || exp >= p {
                let mant = if mant.contains('.') {
                    mant.trim_end_matches('0').trim_end_matches('.')
                } else {
                    mant
                };
                format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
            } else {
                let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
                let s = format!("{x:.decimals$}");
                if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_owned()
                } else {
                    s
                }
            }
        }
        ('f' | 'F', p) => format!("{:.*}", p.unwrap_or(6), x),
        ('e' | 'E', p) => {
            let s = format!("{:.*e}", p.unwrap_or(6), x);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let s = format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
            if verb == 'E' { s.to_uppercase() } else { s }
        }
        ('v', Some(p)) => format!("{x:.p$}"),
        _ => return bad_verb(out, verb, v),
    };
    if !body.starts_with('-') {
        if f.plus {
            out.push('+');
        } else if f.space {
            out.push(' ');
        }
    }
    out.push_str(&body);
}

fn write_str(out: &mut String, s: &str, verb: char, f: Flags, v: &Value<'_>) {
    let s = match f.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => match s.char_indices().nth(p) {
            Some((i, _)) => &s[..i],
            None => s,
        },
        _ => s,
    };
    match verb {
        'v' | 's' => out.push_str(s),
        'q' => {
            if f.sharp && !s.contains('`') {
                out.push('`');
                out.push_str(s);
                out.push('`');
            } else {
                quote(out, s, f.plus);
            }
        }
        'x' | 'X' => {
            for (i, b) in s.bytes().enumerate() {
                if f.space && i > 0 {
                    out.push(' ');
                }
                let _ = if verb == 'x' {
                    write!(out, "{b:02x}")
                } else {
                    write!(out, "{b:02X}")
                };
            }
        }
        _ => bad_verb(out, verb, v),
    }
}

/// Go's `strconv.Quote` (`QuoteToASCII` when `ascii`).
pub(crate) fn quote(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        if ascii && !c.is_ascii() {
            let _ = if (c as u32) < 0x10000 {
                write!(out, "\\u{:04x}", c as u32)
            } else {
                write!(out, "\\U{:08x}", c as u32)
            };
        } else {
            quote_char(out, c, '"');
        }
    }
    out.push('"');
}

fn quote_char(out: &mut String, c: char, q: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == q => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII characters:
/// control and format characters, separators other than U+0020 and
/// private-use characters are escaped.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || (0x80..0xa0).contains(&u)
        || u == 0xad
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x206f).contains(&u)
        || u == 0x3000
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || (0xfff9..=0xfffb).contains(&u)
        || u == 0xa0)
}
