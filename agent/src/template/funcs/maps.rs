//! consul-template's map functions: `explodeMap` nests `a/b` keys, and
//! `mergeMap` merges the way the mergo library does.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::value::Value;
use super::args::FnResult;

/// An owned `map[string]interface{}`.
type Entries<'a> = BTreeMap<String, Value<'a>>;

/// `explodeMap m`: keys with slashes become nested maps, `{"a/b": 1}`
/// becoming `{"a": {"b": 1}}`; empty key parts are dropped.
pub(super) fn explode_map<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Entries::new();
    for (key, value) in map_arg(&args[0])? {
        explode(&mut out, &key, value).map_err(|e| format!("explodeMap: {e}"))?;
    }
    Ok(Value::Map(Rc::new(out)))
}

fn explode<'a>(m: &mut Entries<'a>, key: &str, value: Value<'a>) -> Result<(), String> {
    let Some((top, rest)) = key.split_once('/') else {
        if !key.is_empty() {
            m.insert(key.to_owned(), value);
        }
        return Ok(());
    };
    let slot = m
        .entry(top.to_owned())
        .or_insert_with(|| Value::Map(Rc::default()));
    let mut nested = match &*slot {
        Value::Map(_) | Value::JsonMap(_) => owned_entries(slot),
        _ => return Err(format!("not a map: {top:?} already has a value")),
    };
    explode(&mut nested, rest, value)?;
    *slot = Value::Map(Rc::new(nested));
    Ok(())
}

/// `mergeMap dst src`: `dst` with the keys of `src` it lacks, or holds an
/// empty value for; maps in both are merged the same way.
///
/// mergo merges into `dst` itself, so Go's template sees `dst` changed
/// afterwards too; here `dst` keeps its value and the merge is the result.
pub(super) fn merge_map<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    merged(args, false)
}

/// `mergeMapWithOverride dst src`: `dst` with the values of `src` replacing
/// its own; maps in both are merged the same way.
pub(super) fn merge_map_with_override<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    merged(args, true)
}

fn merged<'a>(args: &[Value<'a>], overwrite: bool) -> FnResult<'a> {
    let mut dst = map_arg(&args[0])?;
    merge(&mut dst, map_arg(&args[1])?, overwrite);
    Ok(Value::Map(Rc::new(dst)))
}

fn merge<'a>(dst: &mut Entries<'a>, src: Entries<'a>, overwrite: bool) {
    for (key, value) in src {
        let existing = dst.get(&key);
        if matches!(value, Value::Nil) {
            if overwrite {
                dst.insert(key, value);
            }
            continue;
        }
        let is_list = value.list_items().is_some();
        match existing {
            Some(old) if old.is_map() && value.is_map() => {
                let mut nested = owned_entries(old);
                merge(&mut nested, owned_entries(&value), overwrite);
                dst.insert(key, Value::Map(Rc::new(nested)));
                continue;
            }
            Some(old) if is_list && !is_empty(old) => {
                if overwrite && old.list_items().is_some() {
                    dst.insert(key, value);
                }
                continue;
            }
            _ => {}
        }
        if overwrite || existing.is_none_or(is_empty) {
            dst.insert(key, value);
        }
    }
}

/// A `map[string]interface{}` parameter, copied.
fn map_arg<'a>(v: &Value<'a>) -> Result<Entries<'a>, String> {
    if v.is_map() {
        return Ok(owned_entries(v));
    }
    Err(format!(
        "wrong type for value; expected map[string]interface {{}}; got {}",
        v.type_name()
    ))
}

fn owned_entries<'a>(v: &Value<'a>) -> Entries<'a> {
    v.map_entries()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// mergo's `isEmptyValue`: Go's zero values and empty collections.
fn is_empty(v: &Value<'_>) -> bool {
    match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Float(f) => *f == 0.0,
        other => other.len() == Some(0),
    }
}
