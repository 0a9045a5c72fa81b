//! consul-template's arithmetic: `subtract b a` computes `a - b`, so that
//! `{{ a | subtract b }}` reads naturally, with Go's int/float promotion.

use std::cmp::Ordering;

use super::super::value::Value;
use super::args::FnResult;

/// `add b a`: `a + b`.
pub(super) fn add<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    arithmetic(Op::Add, &args[1], &args[0])
}

/// `subtract b a`: `a - b`.
pub(super) fn subtract<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    arithmetic(Op::Subtract, &args[1], &args[0])
}

/// `multiply b a`: `a * b`.
pub(super) fn multiply<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    arithmetic(Op::Multiply, &args[1], &args[0])
}

/// `divide b a`: `a / b`.
pub(super) fn divide<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    arithmetic(Op::Divide, &args[1], &args[0])
}

/// `modulo b a`: `a % b`, for integers only.
pub(super) fn modulo<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    arithmetic(Op::Modulo, &args[1], &args[0])
}

/// `minimum b a`: the smaller of `a` and `b`, with its own type; `b` when
/// they are equal.
pub(super) fn minimum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    extreme("minimum", &args[1], &args[0], Ordering::Less)
}

/// `maximum b a`: the larger of `a` and `b`, with its own type; `b` when
/// they are equal.
pub(super) fn maximum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    extreme("maximum", &args[1], &args[0], Ordering::Greater)
}

/// `a` when it compares to `b` as `wins`, else `b`; integers compare
/// exactly, an integer and a float as floats.
fn extreme<'a>(name: &str, a: &Value<'a>, b: &Value<'a>, wins: Ordering) -> FnResult<'a> {
    let order = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            as_f64(a).partial_cmp(&as_f64(b))
        }
        _ => {
            let bad = if matches!(a, Value::Int(_) | Value::Float(_)) {
                b
            } else {
                a
            };
            return Err(format!("{name}: unknown type {}", bad.type_name()));
        }
    };
    Ok(if order == Some(wins) {
        a.clone()
    } else {
        b.clone()
    })
}

fn as_f64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

impl Op {
    /// The function's name, for its error messages.
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Subtract => "subtract",
            Op::Multiply => "multiply",
            Op::Divide => "divide",
            Op::Modulo => "modulo",
        }
    }
}

fn arithmetic<'a>(op: Op, a: &Value<'_>, b: &Value<'_>) -> FnResult<'a> {
    let name = op.name();
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
        let r = match op {
            Op::Add => x.checked_add(y),
            Op::Subtract => x.checked_sub(y),
            Op::Multiply => x.checked_mul(y),
            Op::Divide => x.checked_div(y),
            Op::Modulo => x.checked_rem(y),
        };
        return r
            .map(Value::Int)
            .ok_or_else(|| format!("{name}: integer divide by zero or overflow"));
    }
    Ok(Value::Float(match op {
        Op::Add => af + bf,
        Op::Subtract => af - bf,
        Op::Multiply => af * bf,
        Op::Divide => af / bf,
        Op::Modulo => {
            return Err(format!(
                "modulo: unknown type for {} ({})",
                bf,
                b.type_name()
            ));
        }
    }))
}
