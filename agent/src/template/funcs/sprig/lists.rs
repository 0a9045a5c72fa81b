//! Sprig's list functions. They take any slice and return a new
//! `[]interface{}`; the `must` forms fail the same way their plain forms
//! do, since a plain form's panic also ends the render.

use super::super::super::value::Value;
use super::super::args::{FnResult, owned};
use super::{deep_equal, iface, int_arg, is_empty, kind, list, strings_value, strslice, to_int64};

/// The elements of `v`, or sprig's error naming what it cannot do with
/// `v`'s kind.
fn items<'a>(v: &Value<'a>, cannot: &str) -> Result<Vec<Value<'a>>, String> {
    v.list_items().ok_or_else(|| match kind(v) {
        Ok(kind) => format!("Cannot {cannot} type {kind}"),
        Err(nil) => nil,
    })
}

/// `list v...`: the values as a list.
pub(in super::super) fn list_of<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(list(args.iter().map(iface).collect()))
}

/// `append l v`: `l` with `v` at the end.
pub(in super::super) fn append<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&args[0], "push on")?;
    l.push(iface(&args[1]));
    Ok(list(l))
}

/// `prepend l v`: `l` with `v` at the start.
pub(in super::super) fn prepend<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&args[0], "prepend on")?;
    l.insert(0, iface(&args[1]));
    Ok(list(l))
}

/// `first l`: the first element, nil for an empty list.
pub(in super::super) fn first<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "find first on")?;
    Ok(l.into_iter().next().map_or(Value::Nil, |v| iface(&v)))
}

/// `last l`: the last element, nil for an empty list.
pub(in super::super) fn last<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "find last on")?;
    Ok(l.last().map_or(Value::Nil, iface))
}

/// `rest l`: every element but the first.
pub(in super::super) fn rest<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "find rest on")?;
    Ok(list(l.into_iter().skip(1).collect()))
}

/// `initial l`: every element but the last.
pub(in super::super) fn initial<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&args[0], "find initial on")?;
    l.pop();
    Ok(list(l))
}

/// `reverse l`: the elements in reverse order.
pub(in super::super) fn reverse<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut l = items(&args[0], "find reverse on")?;
    l.reverse();
    Ok(list(l))
}

/// `uniq l`: the elements without repeats, first occurrences kept.
pub(in super::super) fn uniq<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "find uniq on")?;
    let mut out: Vec<Value<'a>> = Vec::new();
    for v in l {
        if !out.iter().any(|seen| deep_equal(seen, &v)) {
            out.push(v);
        }
    }
    Ok(list(out))
}

/// `without l v...`: the elements of `l` equal to none of the values.
pub(in super::super) fn without<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "find without on")?;
    let omit = &args[1..];
    Ok(list(
        l.into_iter()
            .filter(|v| !omit.iter().any(|o| deep_equal(o, v)))
            .collect(),
    ))
}

/// `has needle l`: whether `l` holds `needle` (of the same type); false
/// for a nil `l`.
pub(in super::super) fn has<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    if matches!(args[1], Value::Nil | Value::Missing) {
        return Ok(Value::Bool(false));
    }
    let l = items(&args[1], "find has on")?;
    Ok(Value::Bool(l.iter().any(|v| deep_equal(&args[0], v))))
}

/// `compact l`: the elements that are not empty.
pub(in super::super) fn compact<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = items(&args[0], "compact on")?;
    Ok(list(l.into_iter().filter(|v| !is_empty(v)).collect()))
}

/// `slice l [start [end]]`: elements `start` to `end` of `l`, of `l`'s
/// own type; nil for an empty `l`.
pub(in super::super) fn slice<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let l = args[0].list_items().ok_or_else(|| match kind(&args[0]) {
        Ok(kind) => format!("list should be type of slice or array but {kind}"),
        Err(nil) => nil,
    })?;
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = args.get(1).map_or(0, to_int64);
    let end = args.get(2).map_or(l.len() as i64, to_int64);
    let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    };
    if start > end || end > l.len() {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    }
    let part = l[start..end].to_vec();
    Ok(match &args[0] {
        Value::StrSlice(_) | Value::Strings(_) => strings_value(
            part.iter()
                .map(|v| v.as_str().unwrap_or_default().into_owned())
                .collect(),
        ),
        _ => list(part),
    })
}

/// `concat l...`: the elements of every list, in order.
pub(in super::super) fn concat<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = Vec::new();
    for l in args {
        out.extend(l.list_items().ok_or_else(|| match kind(l) {
            Ok(kind) => format!("Cannot concat type {kind} as list"),
            Err(nil) => nil,
        })?);
    }
    Ok(list(out))
}

/// `chunk size l`: `l` in lists of `size` elements, the last one shorter.
pub(in super::super) fn chunk<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let size = int_arg(&args[0])?;
    let l = items(&args[1], "chunk")?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| "runtime error: makeslice: len out of range".to_owned())?;
    Ok(list(l.chunks(size).map(|c| list(c.to_vec())).collect()))
}

/// `sortAlpha l`: the elements' text in byte order; a value that is not a
/// list gives a list of its text.
pub(in super::super) fn sort_alpha<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = match &args[0] {
        Value::Nil | Value::Missing => vec!["<nil>".to_owned()],
        other => strslice(other)?,
    };
    out.sort();
    Ok(strings_value(out))
}

/// `until n`: the integers from 0 up (or down) to `n`, `n` excluded.
pub(in super::super) fn until<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let n = int_arg(&args[0])?;
    let step = if n < 0 { -1 } else { 1 };
    Ok(ints(until_step(0, n, step)?))
}

/// `untilStep start stop step`: the integers from `start` towards `stop`
/// by `step`, `stop` excluded.
pub(in super::super) fn until_step_fn<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (start, stop, step) = (int_arg(&args[0])?, int_arg(&args[1])?, int_arg(&args[2])?);
    Ok(ints(until_step(start, stop, step)?))
}

/// Integers `until` and `seq` may list.
const MAX_ITEMS: usize = 1 << 20;

/// Sprig's `untilStep`.
fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    let mut i = start;
    let going = |i: i64| {
        if stop < start {
            step < 0 && i > stop
        } else {
            step > 0 && i < stop
        }
    };
    while going(i) {
        if out.len() == MAX_ITEMS {
            return Err(format!("more than the limit of {MAX_ITEMS} numbers"));
        }
        out.push(i);
        let Some(next) = i.checked_add(step) else {
            break;
        };
        i = next;
    }
    Ok(out)
}

fn ints(v: Vec<i64>) -> Value<'static> {
    list(v.into_iter().map(Value::Int).collect())
}

/// `seq [start [step]] end`: the integers from `start` (1 by default) to
/// `end` included, as text separated by spaces.
pub(in super::super) fn seq<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let params: Vec<i64> = args.iter().map(int_arg).collect::<Result<_, _>>()?;
    let numbers = match params[..] {
        [end] => {
            let inc = if end < 1 { -1 } else { 1 };
            until_step(1, end + inc, inc)?
        }
        [start, end] => {
            let inc = if end < start { -1 } else { 1 };
            until_step(start, end + inc, inc)?
        }
        [start, step, end] => {
            let inc = if end < start { -1 } else { 1 };
            if end < start && step > 0 {
                Vec::new()
            } else {
                until_step(start, end + inc, step)?
            }
        }
        _ => Vec::new(),
    };
    let text: Vec<String> = numbers.iter().map(i64::to_string).collect();
    Ok(owned(text.join(" ")))
}
