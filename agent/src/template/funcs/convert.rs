//! Conversions between values and text: JSON, YAML, base64 and Go's
//! `strconv` parsers.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use super::super::encode::{to_json, to_yaml};
use super::super::toml::to_toml;
use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};
use super::strings::is_go_space;

/// `toJSON v`: compact JSON with sorted keys and `<`, `>`, `&` escaped.
pub(super) fn to_json_compact<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(to_json(&args[0], false)?))
}

/// `toJSONPretty v`: `toJSON` indented by two spaces.
pub(super) fn to_json_pretty<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(to_json(&args[0], true)?))
}

/// `toUnescapedJSON v`: `toJSON` with `<`, `>`, `&` as they are.
pub(super) fn to_unescaped_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(unescape_html(&to_json(&args[0], false)?)))
}

/// `toUnescapedJSONPretty v`: `toJSONPretty` with `<`, `>`, `&` as they are.
pub(super) fn to_unescaped_json_pretty<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(unescape_html(&to_json(&args[0], true)?)))
}

fn unescape_html(json: &str) -> String {
    json.replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&")
}

/// `toYAML v`: YAML as yaml.v2 writes it.
pub(super) fn to_yaml_text<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(to_yaml(&args[0])?))
}

/// `toTOML v`: TOML as BurntSushi/toml writes it, trimmed.
pub(super) fn to_toml_text<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let toml = to_toml(&args[0]).map_err(|e| format!("toTOML: {e}"))?;
    Ok(owned(toml.trim_matches(is_go_space).to_owned()))
}

/// `base64Encode s`: standard base64 with padding.
pub(super) fn base64_encode<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(STANDARD.encode(string_arg(&args[0])?)))
}

/// `base64Decode s`.
pub(super) fn base64_decode<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decode("base64Decode", &STANDARD, &args[0])
}

/// `base64URLEncode s`: URL-safe base64 with padding.
pub(super) fn base64_url_encode<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(URL_SAFE.encode(string_arg(&args[0])?)))
}

/// `base64URLDecode s`.
pub(super) fn base64_url_decode<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decode("base64URLDecode", &URL_SAFE, &args[0])
}

fn decode<'a>(name: &str, engine: &GeneralPurpose, arg: &Value<'_>) -> FnResult<'a> {
    let bytes = engine
        .decode(string_arg(arg)?)
        .map_err(|_| format!("{name}: illegal base64 data"))?;
    // Go strings hold any bytes; output here must be UTF-8, so invalid
    // sequences become U+FFFD.
    Ok(owned(String::from_utf8(bytes).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })))
}

/// `parseJSON s`: the value `s` holds, numbers as `float64`; an empty `s`
/// is an empty map.
pub(super) fn parse_json<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    if s.is_empty() {
        return Ok(Value::Map(Rc::new(BTreeMap::new())));
    }
    let json: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("parseJSON: {e}"))?;
    Ok(Value::from_owned_json(json))
}

/// `parseYAML s`: the YAML document as maps, lists and scalars (integers
/// as `int`, other numbers as `float64`); an empty `s` gives an empty map.
pub(super) fn parse_yaml<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    if s.is_empty() {
        return Ok(Value::Map(Rc::new(BTreeMap::new())));
    }
    // The error's first line says where and why; the lines after it quote
    // the input, which may be a secret.
    let yaml: serde_json::Value = serde_saphyr::from_str(s).map_err(|e| {
        let e = e.to_string();
        let why = e.lines().next().unwrap_or_default();
        format!("parseYAML: {}", why.strip_prefix("error: ").unwrap_or(why))
    })?;
    Ok(from_yaml(yaml))
}

/// Like [`Value::from_owned_json`], but YAML's integers stay integers, as
/// yaml.v2 decodes them.
fn from_yaml(v: serde_json::Value) -> Value<'static> {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::Array(a) => Value::List(Rc::new(a.into_iter().map(from_yaml).collect())),
        serde_json::Value::Object(m) => Value::Map(Rc::new(
            m.into_iter().map(|(k, v)| (k, from_yaml(v))).collect(),
        )),
        other => Value::from_owned_json(other),
    }
}

/// `parseBool s`: `strconv.ParseBool`, with an empty `s` false.
pub(super) fn parse_bool<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(match string_arg(&args[0])? {
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
        "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
        _ => return Err("parseBool: invalid syntax".into()),
    }))
}

/// `parseInt s`: a decimal integer; an empty `s` is 0.
pub(super) fn parse_int<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    parse_integer("parseInt", &args[0], i64::MIN)
}

/// `parseUint s`: a decimal integer that is not negative; an empty `s` is 0.
pub(super) fn parse_uint<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    parse_integer("parseUint", &args[0], 0)
}

fn parse_integer<'a>(name: &str, arg: &Value<'_>, min: i64) -> FnResult<'a> {
    let s = string_arg(arg)?;
    if s.is_empty() {
        return Ok(Value::Int(0));
    }
    s.parse::<i64>()
        .ok()
        .filter(|i| *i >= min)
        .map(Value::Int)
        .ok_or_else(|| format!("{name}: invalid syntax"))
}

/// `parseFloat s`; an empty `s` is 0.
pub(super) fn parse_float<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    if s.is_empty() {
        return Ok(Value::Float(0.0));
    }
    s.parse::<f64>()
        .map(Value::Float)
        .map_err(|_| "parseFloat: invalid syntax".to_owned())
}
