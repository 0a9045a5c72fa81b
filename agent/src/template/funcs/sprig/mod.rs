//! The sprig library (Masterminds/sprig v3.2.3) as consul-template offers
//! it: every function under its sprig name with a `sprig_` prefix.
//!
//! Sprig's functions take Go's `interface{}` and coerce: [`strval`] for
//! text, [`to_int64`] and [`to_float64`] (spf13/cast) for numbers. Those
//! coercions, and Go's reflection vocabulary for errors ([`kind`]), live
//! here; each family has its own file.

pub(super) mod cases;
pub(super) mod certs;
pub(super) mod crypto;
pub(super) mod dates;
pub(super) mod defaults;
pub(super) mod dicts;
pub(super) mod encoding;
#[cfg(test)]
pub(super) mod examples;
pub(super) mod keys;
pub(super) mod lists;
pub(super) mod math;
pub(super) mod paths;
pub(super) mod random;
pub(super) mod regex;
pub(super) mod semver;
pub(super) mod strings;
pub(super) mod system;
pub(super) mod urls;

use std::rc::Rc;

use super::super::print::write_v;
use super::super::value::Value;

/// A value as sprig's `interface{}` parameters see it: a missing map key
/// arrives as nil.
fn iface<'a>(v: &Value<'a>) -> Value<'a> {
    match v {
        Value::Missing => Value::Nil,
        other => other.clone(),
    }
}

/// Sprig's `strval`: a string as it is, anything else as `%v` prints it.
pub(super) fn strval(v: &Value<'_>) -> Result<String, String> {
    match iface(v) {
        Value::Str(s) => Ok(s.to_owned()),
        Value::String(s) => Ok(s.to_string()),
        Value::Nil => Ok("<nil>".to_owned()),
        other => {
            let mut out = String::new();
            write_v(&mut out, &other)?;
            Ok(out)
        }
    }
}

/// Sprig's `strslice`: the elements of a list as strings, nil elements
/// dropped; a value that is not a list is a list of its text; nil is empty.
pub(super) fn strslice(v: &Value<'_>) -> Result<Vec<String>, String> {
    if let Some(items) = v.list_items() {
        return items
            .iter()
            .filter(|item| !matches!(item, Value::Nil | Value::Missing))
            .map(strval)
            .collect();
    }
    match iface(v) {
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![strval(&other)?]),
    }
}

/// cast's `ToInt64`: integers as they are, floats truncated, booleans 1
/// or 0, text parsed in Go's integer syntax (`0x`, `0o`, `0b`, a leading
/// `0` for octal; a decimal point followed only by zeros allowed); what
/// cannot be converted is 0.
pub(super) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        other => other
            .as_str()
            .and_then(|s| parse_go_int(trim_zero_decimal(&s)))
            .unwrap_or(0),
    }
}

/// cast's `ToFloat64`: numbers as they are, booleans 1 or 0, text parsed
/// as a float; what cannot be converted is 0.
pub(super) fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        other => other
            .as_str()
            .and_then(|s| parse_go_float(&s))
            .unwrap_or(0.0),
    }
}

/// cast's `trimZeroDecimal`: `"12.00"` is `"12"`.
fn trim_zero_decimal(s: &str) -> &str {
    match s.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
        _ => s,
    }
}

/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal, `0x`
/// hex, `0o`/`0` octal or `0b` binary digits, single `_` allowed between
/// digits.
pub(super) fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let digits = without_underscores(digits)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `s` without the `_` Go allows between digits, or `None` where one is
/// misplaced.
fn without_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let misplaced = b.iter().enumerate().any(|(i, &c)| {
        c == b'_'
            && !(i > 0
                && b[i - 1].is_ascii_alphanumeric()
                && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric))
    });
    (!misplaced).then(|| s.replace('_', ""))
}

/// `strconv.ParseFloat(s, 64)` for the decimal forms and Go's spellings
/// of infinity and NaN.
pub(super) fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse().ok();
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b))
    {
        return None;
    }
    without_underscores(s)?.parse().ok()
}

/// A Go `int` parameter: an integer, as constants and `len` give them, or
/// a float constant with an integer value (Go converts `1.0`).
pub(super) fn int_arg(v: &Value<'_>) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Value::Missing => Err("invalid value; expected int".into()),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// A Go `float64` parameter: a number constant.
pub(super) fn float_arg(v: &Value<'_>) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Missing => Err("invalid value; expected float64".into()),
        other => Err(format!(
            "wrong type for value; expected float64; got {}",
            other.type_name()
        )),
    }
}

/// A Go `bool` parameter.
pub(super) fn bool_arg(v: &Value<'_>) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Missing => Err("invalid value; expected bool".into()),
        other => Err(format!(
            "wrong type for value; expected bool; got {}",
            other.type_name()
        )),
    }
}

/// Go's `reflect.Kind` name of a value, as sprig's errors print it; nil
/// has none (sprig dereferences a nil type and panics).
pub(super) fn kind(v: &Value<'_>) -> Result<&'static str, String> {
    Ok(match v {
        Value::Missing | Value::Nil => return Err(NIL_DEREFERENCE.to_owned()),
        Value::NilPointer(_) | Value::Secret(_) | Value::Auth(_) | Value::Scratch => "ptr",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) | Value::String(_) | Value::Number(_) => "string",
        Value::JsonMap(_) | Value::Map(_) => "map",
        Value::JsonList(_) | Value::List(_) | Value::StrSlice(_) | Value::Strings(_) => "slice",
        Value::Pem(_) | Value::Certificate(_) => "struct",
    })
}

/// The panic Go reports when sprig asks a nil value for its type.
pub(super) const NIL_DEREFERENCE: &str =
    "runtime error: invalid memory address or nil pointer dereference";

/// Go's `reflect.DeepEqual` on template values: the same type and the
/// same content.
pub(super) fn deep_equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    let (a, b) = (iface(a), iface(b));
    if a.type_name() != b.type_name() {
        return false;
    }
    match (&a, &b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ if a.is_map() => {
            let (x, y) = (a.map_entries(), b.map_entries());
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && deep_equal(vx, vy))
        }
        _ => match (a.list_items(), b.list_items()) {
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| deep_equal(p, q))
            }
            _ => match (a.as_str(), b.as_str()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        },
    }
}

/// Sprig's `empty`: nil, false, zero, and empty text, lists and maps.
pub(super) fn is_empty(v: &Value<'_>) -> bool {
    match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        Value::Secret(_) | Value::Pem(_) | Value::Certificate(_) => false,
        other => other.len() == Some(0),
    }
}

/// A list sprig built (`[]interface{}`).
pub(super) fn list(items: Vec<Value<'_>>) -> Value<'_> {
    Value::List(Rc::new(items))
}

/// A `[]string` sprig built.
pub(super) fn strings_value(items: Vec<String>) -> Value<'static> {
    Value::Strings(Rc::new(items))
}
