//! consul-template's arithmetic: `subtract b a` computes `a - b`, so that
//! `{{ a | subtract b }}` reads naturally, with Go's int/float promotion.

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
