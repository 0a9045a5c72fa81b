//! Sprig's dictionary functions on `map[string]interface{}`.
//!
//! Go's sprig changes the map it is given in place (`set`, `unset`,
//! `merge`); template values here are never changed in place, so these
//! functions return the changed map and the variable that held the map
//! keeps its old value.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::{iface, is_empty, list, strings_value, strval};

/// A dictionary's entries.
type Entries<'a> = BTreeMap<String, Value<'a>>;

/// A `map[string]interface{}` parameter; nil (a missing key) is an empty
/// map.
fn dict_arg<'a>(v: &Value<'a>) -> Result<Entries<'a>, String> {
    match v {
        Value::Missing | Value::Nil => Ok(Entries::new()),
        Value::Map(m) => Ok(m.as_ref().clone()),
        m @ Value::JsonMap(_) => Ok(m
            .map_entries()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )),
    }
}

fn dict_value(entries: Entries<'_>) -> Value<'_> {
    Value::Map(Rc::new(entries))
}

/// `dict k v ...`: a map of the pairs; keys are text, a key without a
/// value gets the empty string.
pub(in super::super) fn dict<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Entries::new();
    for pair in args.chunks(2) {
        let value = pair.get(1).map_or_else(|| owned(String::new()), iface);
        out.insert(strval(&pair[0])?, value);
    }
    Ok(dict_value(out))
}

/// `get d key`: the value under `key`, or the empty string.
pub(in super::super) fn get<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (d, key) = (dict_arg(&args[0])?, string_arg(&args[1])?);
    Ok(d.get(key).map_or_else(|| owned(String::new()), iface))
}

/// `set d key v`: `d` with `key` set to `v`.
pub(in super::super) fn set<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    if matches!(args[0], Value::Missing | Value::Nil) {
        return Err("assignment to entry in nil map".into());
    }
    let (mut d, key) = (dict_arg(&args[0])?, string_arg(&args[1])?);
    d.insert(key.to_owned(), iface(&args[2]));
    Ok(dict_value(d))
}

/// `unset d key`: `d` without `key`.
pub(in super::super) fn unset<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (mut d, key) = (dict_arg(&args[0])?, string_arg(&args[1])?);
    d.remove(key);
    Ok(dict_value(d))
}

/// `hasKey d key`: whether `d` has `key`.
pub(in super::super) fn has_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (d, key) = (dict_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Bool(d.contains_key(key)))
}

/// `pluck key d...`: the values under `key` in the maps that have it.
pub(in super::super) fn pluck<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let key = string_arg(&args[0])?;
    let mut out = Vec::new();
    for d in &args[1..] {
        if let Some(v) = dict_arg(d)?.get(key) {
            out.push(iface(v));
        }
    }
    Ok(list(out))
}

/// `keys d...`: the keys of every map (each map's in sorted order, where
/// Go's order is random).
pub(in super::super) fn keys<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for d in args {
        out.extend(dict_arg(d)?.into_keys());
    }
    Ok(strings_value(out))
}

/// `values d`: the values of `d` (in key order, where Go's is random).
pub(in super::super) fn values<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(list(dict_arg(&args[0])?.values().map(iface).collect()))
}

/// `pick d key...`: the entries of `d` under the keys.
pub(in super::super) fn pick<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let d = dict_arg(&args[0])?;
    let mut out = Entries::new();
    for key in &args[1..] {
        let key = string_arg(key)?;
        if let Some(v) = d.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Ok(dict_value(out))
}

/// `omit d key...`: the entries of `d` under other keys.
pub(in super::super) fn omit<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut d = dict_arg(&args[0])?;
    for key in &args[1..] {
        d.remove(string_arg(key)?);
    }
    Ok(dict_value(d))
}

/// `merge dst src...`: `dst` with the entries of each `src` it lacks or
/// holds empty; maps under the same key merged the same way.
pub(in super::super) fn merge<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    merge_all(args, false)
}

/// `mergeOverwrite dst src...`: `merge` where every `src` value, empty or
/// nil too, replaces the one in `dst`.
pub(in super::super) fn merge_overwrite<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    merge_all(args, true)
}

fn merge_all<'a>(args: &[Value<'a>], overwrite: bool) -> FnResult<'a> {
    let mut dst = dict_arg(&args[0])?;
    for src in &args[1..] {
        merge_into(&mut dst, dict_arg(src)?, overwrite)?;
    }
    Ok(dict_value(dst))
}

/// mergo's merge of maps.
fn merge_into<'a>(dst: &mut Entries<'a>, src: Entries<'a>, overwrite: bool) -> Result<(), String> {
    for (key, value) in src {
        match dst.get(&key) {
            Some(old) if old.is_map() && value.is_map() => {
                let mut nested = dict_arg(old)?;
                merge_into(&mut nested, dict_arg(&value)?, overwrite)?;
                dst.insert(key, dict_value(nested));
            }
            Some(old) if !overwrite && !is_empty(old) => {}
            _ => {
                dst.insert(key, value);
            }
        }
    }
    Ok(())
}

/// `dig key... default d`: the value at the path of keys through nested
/// maps, or `default` where a key is missing.
pub(in super::super) fn dig<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let [keys @ .., default, d] = args else {
        return Err("dig needs at least three arguments".into());
    };
    if keys.is_empty() {
        return Err("dig needs at least three arguments".into());
    }
    let mut current = assert_dict(d)?;
    for (i, key) in keys.iter().enumerate() {
        let key = match key {
            Value::Str(s) => *s,
            Value::String(s) => s,
            other => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not string",
                    other.type_name()
                ));
            }
        };
        let Some(step) = current.get(key) else {
            return Ok(iface(default));
        };
        if i + 1 == keys.len() {
            return Ok(iface(step));
        }
        current = assert_dict(step)?;
    }
    Ok(Value::Nil)
}

/// Go's assertion that a value is a `map[string]interface{}`.
fn assert_dict<'a>(v: &Value<'a>) -> Result<Entries<'a>, String> {
    if v.is_map() {
        return dict_arg(v);
    }
    Err(match v {
        Value::Missing | Value::Nil => {
            "interface conversion: interface {} is nil, not map[string]interface {}".to_owned()
        }
        other => format!(
            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
            other.type_name()
        ),
    })
}
