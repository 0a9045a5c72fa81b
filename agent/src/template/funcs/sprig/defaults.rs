//! Sprig's defaults, JSON, flow control and reflection functions.

use super::super::super::encode::to_json;
use super::super::super::print::float_g;
use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::{bool_arg, deep_equal, iface, is_empty};

/// `default fallback [v]`: `v`, or `fallback` when `v` is missing or empty.
pub(in super::super) fn default<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    match args.get(1) {
        Some(given) if !is_empty(given) => Ok(iface(given)),
        _ => Ok(iface(&args[0])),
    }
}

/// `empty v`: whether `v` is nil, false, zero or empty.
pub(in super::super) fn empty<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(is_empty(&args[0])))
}

/// `coalesce v...`: the first value that is not empty, else nil.
pub(in super::super) fn coalesce<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(args.iter().find(|v| !is_empty(v)).map_or(Value::Nil, iface))
}

/// `all v...`: whether no value is empty.
pub(in super::super) fn all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(args.iter().all(|v| !is_empty(v))))
}

/// `any v...`: whether some value is not empty.
pub(in super::super) fn any<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(args.iter().any(|v| !is_empty(v))))
}

/// `ternary yes no cond`: `yes` when `cond`, else `no`.
pub(in super::super) fn ternary<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let cond = bool_arg(&args[2])?;
    Ok(iface(&args[if cond { 0 } else { 1 }]))
}

/// `fromJson s`: the value `s` holds (numbers as `float64`), or nil when
/// `s` is not JSON.
pub(in super::super) fn from_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(decode_json(string_arg(&args[0])?).unwrap_or(Value::Nil))
}

/// `mustFromJson s`: `fromJson` that fails on text that is not JSON.
pub(in super::super) fn must_from_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decode_json(string_arg(&args[0])?)
}

fn decode_json<'a>(s: &str) -> FnResult<'a> {
    serde_json::from_str(s)
        .map(Value::from_owned_json)
        .map_err(|e| format!("mustFromJson: {e}"))
}

/// How sprig writes JSON.
#[derive(Clone, Copy)]
enum Json {
    /// `json.Marshal`.
    Compact,
    /// `json.MarshalIndent` with two spaces.
    Pretty,
    /// `json.Encoder` without HTML escaping.
    Raw,
}

fn encode(v: &Value<'_>, style: Json) -> Result<String, String> {
    let v = iface(v);
    let json = match style {
        Json::Compact => to_json(&v, false)?,
        Json::Pretty => to_json(&v, true)?,
        Json::Raw => unescape_html(&to_json(&v, false)?),
    };
    // `to_json` checked the nesting, so this walk is bounded.
    match non_finite(&v) {
        Some(f) => Err(format!("json: unsupported value: {}", float_g(f, 21))),
        None => Ok(json),
    }
}

/// A float in `v` that JSON cannot hold (NaN or an infinity).
fn non_finite(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Float(f) if !f.is_finite() => Some(*f),
        _ if v.is_map() => v.map_entries().iter().find_map(|(_, v)| non_finite(v)),
        _ => v.list_items()?.iter().find_map(non_finite),
    }
}

/// Undoes `json.Marshal`'s escaping of `<`, `>` and `&`, leaving every
/// other escape (an escaped backslash before `u003c` included) alone.
fn unescape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let escape = &rest[i..];
        let (text, len) = match escape.get(..6) {
            Some("\\u003c") => ("<", 6),
            Some("\\u003e") => (">", 6),
            Some("\\u0026") => ("&", 6),
            _ => (escape.get(..2).unwrap_or(escape), 2.min(escape.len())),
        };
        out.push_str(text);
        rest = &escape[len..];
    }
    out.push_str(rest);
    out
}

/// `toJson v`: `v` as compact JSON; nothing when it cannot be encoded.
pub(in super::super) fn to_json_compact<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Compact).unwrap_or_default()))
}

/// `mustToJson v`: `toJson` that fails when `v` cannot be encoded.
pub(in super::super) fn must_to_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Compact)?))
}

/// `toPrettyJson v`: `v` as JSON indented by two spaces.
pub(in super::super) fn to_pretty_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Pretty).unwrap_or_default()))
}

/// `mustToPrettyJson v`.
pub(in super::super) fn must_to_pretty_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Pretty)?))
}

/// `toRawJson v`: compact JSON with `<`, `>` and `&` as they are.
pub(in super::super) fn to_raw_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Raw)?))
}

/// `mustToRawJson v`.
pub(in super::super) fn must_to_raw_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(encode(&args[0], Json::Raw)?))
}

/// `deepCopy v`: a copy of `v` (template values are never changed in
/// place, so the value itself).
pub(in super::super) fn deep_copy<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(iface(&args[0]))
}

/// `fail message`: stops the render with `message`.
pub(in super::super) fn fail<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Err(string_arg(&args[0])?.to_owned())
}

/// `hello`: sprig's greeting.
pub(in super::super) fn hello<'a>(_: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned("Hello!".to_owned()))
}

/// `typeOf v`: the Go type of `v`, as `%T` prints it.
pub(in super::super) fn type_of<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(args[0].type_name().to_owned()))
}

/// `typeIs name v`: whether `v`'s Go type is `name`.
pub(in super::super) fn type_is<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let target = string_arg(&args[0])?;
    Ok(Value::Bool(target == args[1].type_name()))
}

/// `typeIsLike name v`: whether `v`'s Go type is `name` or a pointer to it.
pub(in super::super) fn type_is_like<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let target = string_arg(&args[0])?;
    let actual = args[1].type_name();
    Ok(Value::Bool(
        target == actual || actual.strip_prefix('*') == Some(target),
    ))
}

/// `kindOf v`: the Go kind of `v` (`string`, `map`, `slice`, ...).
pub(in super::super) fn kind_of<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(kind_name(&args[0]).to_owned()))
}

/// `kindIs name v`: whether `v`'s Go kind is `name`.
pub(in super::super) fn kind_is<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let target = string_arg(&args[0])?;
    Ok(Value::Bool(target == kind_name(&args[1])))
}

fn kind_name(v: &Value<'_>) -> &'static str {
    super::kind(v).unwrap_or("invalid")
}

/// `deepEqual a b`: Go's `reflect.DeepEqual`.
pub(in super::super) fn deep_equal_fn<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(deep_equal(&args[0], &args[1])))
}
