//! Go's builtins on maps, slices and strings as collections, and
//! consul-template's membership tests and `loop`.

use std::rc::Rc;

use super::super::value::Value;
use super::args::{FnResult, owned};

/// Numbers `loop` may return. consul-template's `loop` streams its numbers,
/// so a huge count only costs time there; here the list is built, 48 bytes
/// an item, and a count from a typo must not take the agent's memory.
const MAX_LIST_ITEMS: i64 = 1_000_000;

/// `len x`: bytes of a string, items of a map or slice.
pub(super) fn len<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    args[0]
        .len()
        .map(|n| Value::Int(n as i64))
        .ok_or_else(|| format!("len of type {}", args[0].type_name()))
}

/// `index item k...`: follows map keys and slice (or string byte) indexes.
pub(super) fn index<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut item = args[0].clone();
    for key in &args[1..] {
        if matches!(item, Value::Nil) {
            return Err("index of untyped nil".into());
        }
        if item.is_map() {
            let k = match key {
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
        let Value::Int(i) = *key else {
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
pub(super) fn slice<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (item, idx) = (&args[0], &args[1..]);
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

/// `in l v`: whether `l` holds `v`.
pub(super) fn r#in<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(holds(&args[0], &args[1])))
}

/// `contains v l`: `in` with the arguments swapped, for pipes.
pub(super) fn contains<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(holds(&args[1], &args[0])))
}

/// `containsAll needles l`.
pub(super) fn contains_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let needles = needles(&args[0])?;
    Ok(Value::Bool(needles.iter().all(|n| holds(&args[1], n))))
}

/// `containsAny needles l`.
pub(super) fn contains_any<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let needles = needles(&args[0])?;
    Ok(Value::Bool(needles.iter().any(|n| holds(&args[1], n))))
}

/// `containsNone needles l`.
pub(super) fn contains_none<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let needles = needles(&args[0])?;
    Ok(Value::Bool(!needles.iter().any(|n| holds(&args[1], n))))
}

/// `containsNotAll needles l`.
pub(super) fn contains_not_all<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let needles = needles(&args[0])?;
    Ok(Value::Bool(!needles.iter().all(|n| holds(&args[1], n))))
}

/// The needles of the `contains*` functions: consul-template declares them
/// as `[]interface{}`.
fn needles<'a>(v: &Value<'a>) -> Result<Vec<Value<'a>>, String> {
    match v {
        Value::JsonList(_) | Value::List(_) => Ok(v.list_items().unwrap_or_default()),
        other => Err(format!(
            "wrong type for value; expected []interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// consul-template's `in(l, v)`: substring for strings, membership for lists.
fn holds(l: &Value<'_>, v: &Value<'_>) -> bool {
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

/// `loop stop` or `loop start stop`: the integers from `start` (0) up to
/// `stop`, excluded.
pub(super) fn r#loop<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let int = |v: &Value<'_>| match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("loop: bad argument type: {}", other.type_name())),
    };
    let (start, stop) = match args {
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
