//! Functions callable from templates: Go's builtins and consul-template's
//! Vault and string helpers, with consul-template's argument orders.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use super::Request;
use super::encode::{to_json, to_yaml};
use super::exec::Exec;
use super::print::{sprint, sprintf, sprintln};
use super::value::{Pem, TooDeep, Value};

/// Numbers `loop` may return. consul-template's `loop` streams its numbers,
/// so a huge count only costs time there; here the list is built, 48 bytes
/// an item, and a count from a typo must not take the agent's memory.
const MAX_LIST_ITEMS: i64 = 1_000_000;

/// Bytes `indent` may build into one string.
const MAX_STRING_BYTES: usize = 64 << 20;

/// Every function name the parser accepts.
const NAMES: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "secret",
    "secrets",
    "pkiCert",
    "toJSON",
    "toJSONPretty",
    "toUnescapedJSON",
    "toUnescapedJSONPretty",
    "toYAML",
    "base64Encode",
    "base64Decode",
    "base64URLEncode",
    "base64URLDecode",
    "trimSpace",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "contains",
    "in",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "mustEnv",
    "loop",
    "slice",
    "split",
    "join",
    "replaceAll",
    "toLower",
    "toUpper",
    "env",
    "envOrDefault",
    "parseJSON",
    "parseBool",
    "parseInt",
    "parseFloat",
    "parseUint",
    "indent",
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
];

/// Whether `name` is a known function.
pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

type FnResult<'a> = Result<Value<'a>, String>;

fn want(name: &str, args: &[Value<'_>], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

/// A `string` parameter: Go accepts only `string`, not `json.Number`.
fn string_arg<'v>(v: &'v Value<'_>) -> Result<&'v str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::String(s) => Ok(s),
        Value::Missing => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn owned(s: String) -> Value<'static> {
    Value::String(s.into())
}

/// Calls function `name` with evaluated arguments (`and`/`or` are handled
/// by the evaluator because they short-circuit).
pub(crate) fn call<'a>(ex: &mut Exec<'a>, name: &str, args: Vec<Value<'a>>) -> FnResult<'a> {
    // Functions see a missing value as nil, as Go's call does.
    let args: Vec<Value<'a>> = args
        .into_iter()
        .map(|a| {
            if matches!(a, Value::Missing) {
                Value::Nil
            } else {
                a
            }
        })
        .collect();
    match name {
        "not" => {
            want(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            want(name, &args, 1)?;
            args[0]
                .len()
                .map(|n| Value::Int(n as i64))
                .ok_or_else(|| format!("len of type {}", args[0].type_name()))
        }
        "index" => index(args),
        "print" => Ok(owned(sprint(&args)?)),
        "println" => Ok(owned(sprintln(&args)?)),
        "printf" => {
            let Some(format) = args.first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Ok(owned(sprintf(string_arg(format)?, &args[1..])?))
        }
        "eq" => {
            let Some((first, rest)) = args.split_first() else {
                return Err("wrong number of args for eq: want at least 1 got 0".into());
            };
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for other in rest {
                if equal(first, other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(name, &args, 2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2)?;
            let lt = less(&args[0], &args[1])?;
            let le = lt || equal(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => lt,
                "le" => le,
                "gt" => !le,
                _ => !lt,
            }))
        }
        "html" => Ok(owned(html_escape(&eval_args_string(&args)?))),
        "js" => Ok(owned(js_escape(&eval_args_string(&args)?))),
        "urlquery" => Ok(owned(query_escape(&eval_args_string(&args)?))),
        "secret" | "pkiCert" => vault_secret(ex, name, &args),
        "secrets" => {
            want(name, &args, 1)?;
            let path = string_arg(&args[0])?;
            if path.is_empty() {
                return Ok(Value::StrSlice(&[]));
            }
            let request = Request::List {
                path: path.to_owned(),
            };
            ex.used.insert(request.clone());
            match ex.ctx.lists.get(&request) {
                Some(Ok(list)) => Ok(Value::StrSlice(list)),
                Some(Err(e)) => Err(call_failed(ex, name, &request, e)),
                None => {
                    ex.missing.insert(request);
                    Ok(Value::StrSlice(&[]))
                }
            }
        }
        "toJSON" | "toUnescapedJSON" | "toJSONPretty" | "toUnescapedJSONPretty" => {
            want(name, &args, 1)?;
            let mut json = to_json(&args[0], name.ends_with("Pretty"))?;
            if name.starts_with("toUnescaped") {
                json = json
                    .replace("\\u003c", "<")
                    .replace("\\u003e", ">")
                    .replace("\\u0026", "&");
            }
            Ok(owned(json))
        }
        "toYAML" => {
            want(name, &args, 1)?;
            Ok(owned(to_yaml(&args[0])?))
        }
        "base64Encode" | "base64URLEncode" => {
            want(name, &args, 1)?;
            let engine = if name == "base64Encode" {
                &STANDARD
            } else {
                &URL_SAFE
            };
            Ok(owned(engine.encode(string_arg(&args[0])?)))
        }
        "base64Decode" | "base64URLDecode" => {
            want(name, &args, 1)?;
            let engine = if name == "base64Decode" {
                &STANDARD
            } else {
                &URL_SAFE
            };
            let bytes = engine
                .decode(string_arg(&args[0])?)
                .map_err(|_| format!("{name}: illegal base64 data"))?;
            // Go strings hold any bytes; output here must be UTF-8, so
            // invalid sequences become U+FFFD.
            Ok(owned(String::from_utf8(bytes).unwrap_or_else(|e| {
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })))
        }
        "trimSpace" => {
            want(name, &args, 1)?;
            Ok(owned(
                string_arg(&args[0])?.trim_matches(is_go_space).to_owned(),
            ))
        }
        "trim" | "trimPrefix" | "trimSuffix" => {
            want(name, &args, 2)?;
            let (cut, s) = (string_arg(&args[0])?, string_arg(&args[1])?);
            Ok(owned(match name {
                "trim" => s.trim_matches(|c| cut.contains(c)).to_owned(),
                "trimPrefix" => s.strip_prefix(cut).unwrap_or(s).to_owned(),
                _ => s.strip_suffix(cut).unwrap_or(s).to_owned(),
            }))
        }
        "contains" => {
            want(name, &args, 2)?;
            Ok(Value::Bool(contains(&args[1], &args[0])))
        }
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
            want(name, &args, 2)?;
            // consul-template declares the needles as []interface{}.
            let needles = match &args[0] {
                Value::JsonList(_) | Value::List(_) => args[0].list_items().unwrap_or_default(),
                other => {
                    return Err(format!(
                        "wrong type for value; expected []interface {{}}; got {}",
                        other.type_name()
                    ));
                }
            };
            let found = |n: &Value<'_>| contains(&args[1], n);
            Ok(Value::Bool(match name {
                "containsAll" => needles.iter().all(found),
                "containsAny" => needles.iter().any(found),
                "containsNone" => !needles.iter().any(found),
                _ => !needles.iter().all(found),
            }))
        }
        "mustEnv" => {
            want(name, &args, 1)?;
            let key = string_arg(&args[0])?;
            match std::env::var(key) {
                Ok(v) if !v.is_empty() => Ok(owned(v)),
                _ => Err(format!("required environment variable {key} is empty")),
            }
        }
        "loop" => {
            let int = |v: &Value<'_>| match v {
                Value::Int(i) => Ok(*i),
                other => Err(format!("loop: bad argument type: {}", other.type_name())),
            };
            let (start, stop) = match args.as_slice() {
                [stop] => (0, int(stop)?),
                [start, stop] => (int(start)?, int(stop)?),
                _ => {
                    return Err(format!(
                        "loop: wrong number of arguments, expected 1 or 2, but got {}",
                        args.len()
                    ));
                }
            };
            let count = stop.saturating_sub(start).max(0);
            if count > MAX_LIST_ITEMS {
                return Err(format!(
                    "loop: {count} items, more than the limit of {MAX_LIST_ITEMS}"
                ));
            }
            Ok(Value::List(Rc::new(
                (start..stop).map(Value::Int).collect(),
            )))
        }
        "in" => {
            want(name, &args, 2)?;
            Ok(Value::Bool(contains(&args[0], &args[1])))
        }
        "split" => {
            want(name, &args, 2)?;
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
        "join" => {
            want(name, &args, 2)?;
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
        "replaceAll" => {
            want(name, &args, 3)?;
            let (from, to, s) = (
                string_arg(&args[0])?,
                string_arg(&args[1])?,
                string_arg(&args[2])?,
            );
            Ok(owned(go_replace_all(s, from, to)))
        }
        "toLower" | "toUpper" => {
            want(name, &args, 1)?;
            let s = string_arg(&args[0])?;
            // Go maps rune by rune: a character whose case mapping is
            // several characters (ß) keeps its single-rune form.
            let mapped = s.chars().map(|c| {
                let mut m: Vec<char> = if name == "toUpper" {
                    c.to_uppercase().collect()
                } else {
                    c.to_lowercase().collect()
                };
                match (m.len(), name) {
                    (1, _) | (_, "toLower") => m.swap_remove(0),
                    _ => c,
                }
            });
            Ok(owned(mapped.collect()))
        }
        "slice" => slice(args),
        "env" => {
            want(name, &args, 1)?;
            Ok(owned(
                std::env::var(string_arg(&args[0])?).unwrap_or_default(),
            ))
        }
        "envOrDefault" => {
            want(name, &args, 2)?;
            let key = string_arg(&args[0])?;
            Ok(match std::env::var(key) {
                Ok(v) => owned(v),
                Err(_) => owned(string_arg(&args[1])?.to_owned()),
            })
        }
        "parseJSON" => {
            want(name, &args, 1)?;
            let s = string_arg(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Map(Rc::new(BTreeMap::new())));
            }
            let json: serde_json::Value =
                serde_json::from_str(s).map_err(|e| format!("parseJSON: {e}"))?;
            Ok(Value::from_owned_json(json))
        }
        "parseBool" => {
            want(name, &args, 1)?;
            Ok(Value::Bool(match string_arg(&args[0])? {
                "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                _ => return Err("parseBool: invalid syntax".into()),
            }))
        }
        "parseInt" | "parseUint" => {
            want(name, &args, 1)?;
            let s = string_arg(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Int(0));
            }
            s.parse::<i64>()
                .ok()
                .filter(|i| name == "parseInt" || *i >= 0)
                .map(Value::Int)
                .ok_or_else(|| format!("{name}: invalid syntax"))
        }
        "parseFloat" => {
            want(name, &args, 1)?;
            let s = string_arg(&args[0])?;
            if s.is_empty() {
                return Ok(Value::Float(0.0));
            }
            s.parse::<f64>()
                .map(Value::Float)
                .map_err(|_| "parseFloat: invalid syntax".to_owned())
        }
        "indent" => {
            want(name, &args, 2)?;
            let Value::Int(n) = args[0] else {
                return Err(format!(
                    "wrong type for value; expected int; got {}",
                    args[0].type_name()
                ));
            };
            let n = usize::try_from(n)
                .map_err(|_| "indent value must be a positive integer".to_owned())?;
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
        "add" | "subtract" | "multiply" | "divide" | "modulo" => {
            want(name, &args, 2)?;
            arithmetic(name, &args[1], &args[0])
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// `secret` reads (one argument) or writes (`k=v` arguments); `pkiCert`
/// writes and returns the certificate parts.
fn vault_secret<'a>(ex: &mut Exec<'a>, name: &str, args: &[Value<'a>]) -> FnResult<'a> {
    let Some((path, rest)) = args.split_first() else {
        return Ok(Value::Nil);
    };
    let path = string_arg(path)?.to_owned();
    let mut data = BTreeMap::new();
    for arg in rest {
        let s = string_arg(arg)?;
        if s.is_empty() {
            continue;
        }
        let (k, v) = s.split_once('=').ok_or_else(|| "not k=v pair".to_owned())?;
        data.insert(
            k.trim_matches(is_go_space).to_owned(),
            v.trim_matches(is_go_space).to_owned(),
        );
    }
    let request = if rest.is_empty() && name == "secret" {
        Request::Read { path }
    } else {
        Request::Write { path, data }
    };
    ex.used.insert(request.clone());
    let found = match ex.ctx.secrets.get(&request) {
        Some(Ok(secret)) => secret,
        Some(Err(e)) => return Err(call_failed(ex, name, &request, e)),
        None => {
            ex.missing.insert(request);
            return Ok(Value::Nil);
        }
    };
    if name == "secret" {
        return Ok(Value::Secret(found));
    }
    let field = |k: &str| {
        found
            .data
            .get(k)
            .and_then(|v| v.as_str())
            .map(pem_block)
            .unwrap_or_default()
    };
    Ok(Value::Pem(Rc::new(Pem {
        cert: field("certificate"),
        key: field("private_key"),
        ca: field("issuing_ca"),
    })))
}

/// The message of the Vault function `name` whose `request` failed with
/// `e`. The path is named only when the template writes it as a constant:
/// a computed path may be a secret, so it is left out, and the message that
/// the caller stored as `e` must not show it either.
fn call_failed(ex: &Exec<'_>, name: &str, request: &Request, e: &str) -> String {
    let path = request.path();
    if ex.is_literal_path(path) {
        format!("{name} {path:?}: {e}")
    } else {
        e.to_owned()
    }
}

/// A PEM block as Go's `pem.EncodeToMemory` writes it: ending in a newline.
fn pem_block(s: &str) -> String {
    let mut s = s.trim_end().to_owned();
    s.push('\n');
    s
}

/// Go's `unicode.IsSpace` for the characters `strings.TrimSpace` removes.
fn is_go_space(c: char) -> bool {
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

/// consul-template's `in(l, v)`: substring for strings, membership for lists.
fn contains(l: &Value<'_>, v: &Value<'_>) -> bool {
    if let Some(items) = l.list_items() {
        return items.iter().any(|item| match (item, v) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (a, b)
                if a.type_name() == b.type_name()
                    && matches!(a.type_name(), "string" | "json.Number") =>
            {
                a.as_str() == b.as_str()
            }
            _ => false,
        });
    }
    match (l.as_str(), v.as_str()) {
        (Some(hay), Some(needle)) if l.type_name() == v.type_name() => hay.contains(&*needle),
        _ => false,
    }
}

fn index<'a>(args: Vec<Value<'a>>) -> FnResult<'a> {
    let mut iter = args.into_iter();
    let Some(mut item) = iter.next() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    for key in iter {
        if matches!(item, Value::Nil) {
            return Err("index of untyped nil".into());
        }
        if item.is_map() {
            let k = match &key {
                Value::Str(s) => *s,
                Value::String(s) => s,
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            };
            // A missing key gives the element type's zero value: nil.
            item = item.map_get(k).flatten().unwrap_or(Value::Nil);
            continue;
        }
        let Value::Int(i) = key else {
            return Err(format!(
                "cannot index slice/array with type {}",
                key.type_name()
            ));
        };
        let out_of_range = || format!("index out of range: {i}");
        let at = usize::try_from(i).map_err(|_| out_of_range())?;
        item = match &item {
            // Indexing a string yields a byte.
            Value::Str(_) | Value::String(_) | Value::Number(_) => {
                let s = item.as_str().unwrap_or_default();
                Value::Int(i64::from(*s.as_bytes().get(at).ok_or_else(out_of_range)?))
            }
            _ => match item.list_get(at) {
                Some(Some(v)) => v,
                Some(None) => return Err(out_of_range()),
                None => return Err(format!("can't index item of type {}", item.type_name())),
            },
        };
    }
    Ok(item)
}

/// Go's `slice item i j`: a substring (by bytes) or a sub-slice.
fn slice<'a>(args: Vec<Value<'a>>) -> FnResult<'a> {
    let Some((item, idx)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    let mut bounds = Vec::with_capacity(2);
    for i in idx {
        match i {
            Value::Int(n) => {
                bounds.push(usize::try_from(*n).map_err(|_| format!("index out of range: {n}"))?)
            }
            other => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
        }
    }
    if bounds.len() > 2 {
        return Err("too many slice indexes: 3".into());
    }
    let len = item
        .len()
        .ok_or_else(|| format!("can't slice item of type {}", item.type_name()))?;
    let from = bounds.first().copied().unwrap_or(0);
    let to = bounds.get(1).copied().unwrap_or(len);
    if from > to || to > len {
        return Err(format!("invalid slice index: {from} > {to}"));
    }
    if let (true, Some(s)) = (item.is_plain_string(), item.as_str()) {
        let bytes = &s.as_bytes()[from..to];
        return Ok(owned(String::from_utf8_lossy(bytes).into_owned()));
    }
    let items = item
        .list_items()
        .ok_or_else(|| format!("can't slice item of type {}", item.type_name()))?;
    Ok(match item {
        Value::StrSlice(_) | Value::Strings(_) => Value::Strings(Rc::new(
            items[from..to]
                .iter()
                .map(|v| v.as_str().unwrap_or_default().into_owned())
                .collect(),
        )),
        _ => Value::List(Rc::new(items[from..to].to_vec())),
    })
}

#[derive(PartialEq)]
enum Basic<'s> {
    Invalid,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(std::borrow::Cow<'s, str>),
    Other,
}

fn basic<'s>(v: &'s Value<'_>) -> Basic<'s> {
    match v {
        Value::Missing | Value::Nil => Basic::Invalid,
        Value::Bool(b) => Basic::Bool(*b),
        Value::Int(i) => Basic::Int(*i),
        Value::Float(f) => Basic::Float(*f),
        Value::Str(_) | Value::String(_) | Value::Number(_) => {
            Basic::Str(v.as_str().unwrap_or_default())
        }
        _ => Basic::Other,
    }
}

/// Go's `eq` for one pair.
fn equal(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let incompatible = || {
        format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )
    };
    let (ka, kb) = (basic(a), basic(b));
    // json.Number and string are both string kinds, as in Go.
    match (&ka, &kb) {
        (Basic::Invalid, Basic::Invalid) => Ok(true),
        (Basic::Invalid, _) | (_, Basic::Invalid) => Ok(false),
        (Basic::Bool(x), Basic::Bool(y)) => Ok(x == y),
        (Basic::Int(x), Basic::Int(y)) => Ok(x == y),
        (Basic::Float(x), Basic::Float(y)) => Ok(x == y),
        (Basic::Str(x), Basic::Str(y)) => Ok(x == y),
        (Basic::Other, Basic::Other) => Err(format!("non-comparable type {}", a.type_name())),
        _ => Err(incompatible()),
    }
}

/// Go's `lt`.
fn less(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    match (basic(a), basic(b)) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x < y),
        (Basic::Float(x), Basic::Float(y)) => Ok(x < y),
        (Basic::Str(x), Basic::Str(y)) => Ok(x < y),
        (Basic::Bool(_), Basic::Bool(_))
        | (Basic::Other | Basic::Invalid, _)
        | (_, Basic::Other | Basic::Invalid) => Err("invalid type for comparison".into()),
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// consul-template's arithmetic: `add b a` computes `a + b` (so pipes read
/// naturally), with Go's int/float promotion.
fn arithmetic<'a>(name: &str, a: &Value<'_>, b: &Value<'_>) -> FnResult<'a> {
    let num = |v: &Value<'_>| match v {
        Value::Int(i) => Some((Some(*i), *i as f64)),
        Value::Float(f) => Some((None, *f)),
        _ => None,
    };
    let (Some((ai, af)), Some((bi, bf))) = (num(a), num(b)) else {
        let bad = if num(a).is_none() { a } else { b };
        return Err(format!("{name}: unknown type {}", bad.type_name()));
    };
    if let (Some(x), Some(y)) = (ai, bi) {
        let r = match name {
            "add" => x.checked_add(y),
            "subtract" => x.checked_sub(y),
            "multiply" => x.checked_mul(y),
            "divide" => x.checked_div(y),
            _ => x.checked_rem(y),
        };
        return r
            .map(Value::Int)
            .ok_or_else(|| format!("{name}: integer divide by zero or overflow"));
    }
    if name == "modulo" {
        return Err(format!(
            "modulo: unknown type for {} ({})",
            bf,
            b.type_name()
        ));
    }
    Ok(Value::Float(match name {
        "add" => af + bf,
        "subtract" => af - bf,
        "multiply" => af * bf,
        _ => af / bf,
    }))
}

/// Go's `evalArgs` for `html`, `js`, `urlquery`: one string as is, else
/// `fmt.Sprint` of the arguments.
fn eval_args_string(args: &[Value<'_>]) -> Result<String, TooDeep> {
    match args {
        [one] if one.is_plain_string() => Ok(one.as_str().unwrap_or_default().into_owned()),
        _ => sprint(args),
    }
}

fn html_escape(s: &str) -> String {
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
    out
}

fn js_escape(s: &str) -> String {
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
    out
}

fn query_escape(s: &str) -> String {
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
    out
}

#[cfg(test)]
mod tests;
