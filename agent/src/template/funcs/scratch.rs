//! consul-template's `scratch`: a store of values a template keeps by key
//! while it renders, used through its methods (`scratch.Set "k" v`).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::value::{Scratch, Value};
use super::args::{FnResult, owned, string_arg};

/// Calls the method `name` of `scratch` with `args`; `None` when it has no
/// such method.
pub(crate) fn call_method<'a>(
    scratch: &mut Scratch<'a>,
    name: &str,
    args: &[Value<'a>],
) -> Option<FnResult<'a>> {
    let want = match name {
        "Key" | "Get" | "MapValues" => 1,
        "Set" | "SetX" => 2,
        "MapSet" | "MapSetX" => 3,
        _ => return None,
    };
    if args.len() != want {
        return Some(Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )));
    }
    Some(method(scratch, name, args))
}

fn method<'a>(values: &mut Scratch<'a>, name: &str, args: &[Value<'a>]) -> FnResult<'a> {
    let key = string_arg(&args[0])?;
    match name {
        "Key" => Ok(Value::Bool(values.contains_key(key))),
        "Get" => Ok(values.get(key).cloned().unwrap_or(Value::Nil)),
        "MapValues" => Ok(match values.get(key) {
            Some(m) if m.is_map() => Value::List(Rc::new(
                m.map_entries().into_iter().map(|(_, v)| v).collect(),
            )),
            // Go's nil slice, which prints as `[]`.
            _ => Value::List(Rc::default()),
        }),
        "Set" => {
            values.insert(key.to_owned(), args[1].clone());
            Ok(owned(String::new()))
        }
        "SetX" => {
            values
                .entry(key.to_owned())
                .or_insert_with(|| args[1].clone());
            Ok(owned(String::new()))
        }
        _ => {
            let map_key = string_arg(&args[1])?;
            let entry = values
                .entry(key.to_owned())
                .or_insert_with(|| Value::Map(Rc::new(BTreeMap::new())));
            if let Value::JsonMap(_) = entry {
                let copy = entry.map_entries().into_iter();
                *entry = Value::Map(Rc::new(copy.map(|(k, v)| (k.to_owned(), v)).collect()));
            }
            let Value::Map(map) = entry else {
                return Err(format!("{key:?} is not a map"));
            };
            let map = Rc::make_mut(map);
            if name == "MapSet" || !map.contains_key(map_key) {
                map.insert(map_key.to_owned(), args[2].clone());
            }
            Ok(owned(String::new()))
        }
    }
}
