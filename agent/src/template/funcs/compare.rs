//! Go's logic and comparison builtins. `and` and `or` have no code here:
//! they short-circuit, which the executor does from their table entries.

use super::super::value::Value;
use super::args::FnResult;

/// `not x`: the negation of `x`'s truth.
pub(super) fn not<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(!args[0].truth()))
}

/// `eq a b...`: whether `a` equals any of the others.
pub(super) fn eq<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (first, rest) = args.split_at(1);
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for other in rest {
        if equal(&first[0], other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// `ne a b`.
pub(super) fn ne<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(!equal(&args[0], &args[1])?))
}

/// `lt a b`: `a < b`.
pub(super) fn lt<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(less(&args[0], &args[1])?))
}

/// `le a b`: `a <= b`.
pub(super) fn le<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(less_or_equal(&args[0], &args[1])?))
}

/// `gt a b`: `a > b`.
pub(super) fn gt<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(!less_or_equal(&args[0], &args[1])?))
}

/// `ge a b`: `a >= b`.
pub(super) fn ge<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Bool(!less(&args[0], &args[1])?))
}

/// A value as Go's comparison functions classify it.
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

/// Go's `le`: `lt`, or else `eq`.
fn less_or_equal(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    Ok(less(a, b)? || equal(a, b)?)
}

/// Go's `call f args...`: calls the function `f`. Templates here are given
/// no function values, so every call fails as Go's does on a non-function.
pub(super) fn call<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Err(match &args[0] {
        Value::Nil | Value::Missing => "call of nil".to_owned(),
        other => format!("non-function of type {}", other.type_name()),
    })
}
