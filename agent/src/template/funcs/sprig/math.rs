//! Sprig's arithmetic and number conversions. Integer functions coerce
//! every operand with cast's `ToInt64` and wrap around on overflow as Go's
//! `int64` does; the `f` forms coerce with `ToFloat64` and compute in
//! decimal (shopspring/decimal), so `addf 0.1 0.2` is 0.3.

use super::super::super::value::Value;
use super::super::args::{FnResult, string_arg};
use super::{float_arg, int_arg, strval, to_float64, to_int64};

const DIVIDE_BY_ZERO: &str = "runtime error: integer divide by zero";

/// `add1 v`: `v + 1`.
pub(in super::super) fn add1<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(to_int64(&args[0]).wrapping_add(1)))
}

/// `add v...`: the sum.
pub(in super::super) fn add<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(
        args.iter().map(to_int64).fold(0, i64::wrapping_add),
    ))
}

/// `sub a b`: `a - b`.
pub(in super::super) fn sub<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(
        to_int64(&args[0]).wrapping_sub(to_int64(&args[1])),
    ))
}

/// `div a b`: `a / b`, truncated.
pub(in super::super) fn div<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = (to_int64(&args[0]), to_int64(&args[1]));
    if b == 0 {
        return Err(DIVIDE_BY_ZERO.into());
    }
    Ok(Value::Int(a.wrapping_div(b)))
}

/// `mod a b`: the remainder of `a / b`, with `a`'s sign.
pub(in super::super) fn modulo<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (a, b) = (to_int64(&args[0]), to_int64(&args[1]));
    if b == 0 {
        return Err(DIVIDE_BY_ZERO.into());
    }
    Ok(Value::Int(a.wrapping_rem(b)))
}

/// `mul a v...`: the product.
pub(in super::super) fn mul<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(
        args.iter().map(to_int64).fold(1, i64::wrapping_mul),
    ))
}

/// `max a v...` (also `biggest`): the largest, as integers.
pub(in super::super) fn max<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(args.iter().map(to_int64).max().unwrap_or(0)))
}

/// `min a v...`: the smallest, as integers.
pub(in super::super) fn min<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(args.iter().map(to_int64).min().unwrap_or(0)))
}

/// `maxf a v...`: the largest, as floats (NaN wins, as in Go's `math.Max`).
pub(in super::super) fn maxf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(fold_floats(args, go_max)))
}

/// `minf a v...`: the smallest, as floats.
pub(in super::super) fn minf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(fold_floats(args, go_min)))
}

fn fold_floats(args: &[Value<'_>], f: fn(f64, f64) -> f64) -> f64 {
    let mut values = args.iter().map(to_float64);
    let first = values.next().unwrap_or(0.0);
    values.fold(first, f)
}

/// Go's `math.Max`: NaN if either is, +0 over -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    a.max(b)
}

/// Go's `math.Min`: NaN if either is, -0 over +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    a.min(b)
}

/// `ceil v`.
pub(in super::super) fn ceil<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(to_float64(&args[0]).ceil()))
}

/// `floor v`.
pub(in super::super) fn floor<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(to_float64(&args[0]).floor()))
}

/// `round v places [half]`: `v` rounded to `places` decimals, up when the
/// dropped fraction is at least `half` (0.5 by default).
pub(in super::super) fn round<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let places = int_arg(&args[1])?;
    let round_on = match args.get(2) {
        Some(v) => float_arg(v)?,
        None => 0.5,
    };
    let pow = 10f64.powf(places as f64);
    let digit = pow * to_float64(&args[0]);
    let fraction = digit.fract();
    let rounded = if fraction >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(rounded / pow))
}

/// `atoi s`: `s` as a decimal integer, 0 when it is not one.
pub(in super::super) fn atoi<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let valid = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    Ok(Value::Int(
        valid.then(|| s.parse().ok()).flatten().unwrap_or(0),
    ))
}

/// `int64 v` (also `int`): cast's `ToInt64`.
pub(in super::super) fn int64<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(to_int64(&args[0])))
}

/// `float64 v`: cast's `ToFloat64`.
pub(in super::super) fn float64<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Float(to_float64(&args[0])))
}

/// `toDecimal v`: `v`'s text read as an octal number, 0 when it is not one.
pub(in super::super) fn to_decimal<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let text = strval(&args[0])?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
    let valid = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    Ok(Value::Int(
        valid
            .then(|| i64::from_str_radix(&text, 8).ok())
            .flatten()
            .unwrap_or(0),
    ))
}

/// `add1f v`: `v + 1` in decimal.
pub(in super::super) fn add1f<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decimal_fold(to_float64(&args[0]), &[Value::Int(1)], Dec::add)
}

/// `addf v...`: the sum in decimal.
pub(in super::super) fn addf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decimal_fold(0.0, args, Dec::add)
}

/// `subf a v...`: `a` minus each value, in decimal.
pub(in super::super) fn subf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decimal_fold(to_float64(&args[0]), &args[1..], Dec::sub)
}

/// `mulf a v...`: the product in decimal.
pub(in super::super) fn mulf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decimal_fold(to_float64(&args[0]), &args[1..], Dec::mul)
}

/// `divf a v...`: `a` divided by each value, each quotient rounded to 16
/// decimals.
pub(in super::super) fn divf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    decimal_fold(to_float64(&args[0]), &args[1..], Dec::div)
}

fn decimal_fold<'a>(
    start: f64,
    operands: &[Value<'_>],
    op: fn(Dec, Dec) -> Result<Dec, String>,
) -> FnResult<'a> {
    let mut acc = Dec::from_f64(start)?;
    for v in operands {
        acc = op(acc, Dec::from_f64(to_float64(v))?)?;
    }
    Ok(Value::Float(acc.to_f64()))
}

/// An exact decimal `mantissa × 10^exponent`, or a float where the
/// mantissa would overflow (far beyond any number a template holds).
#[derive(Clone, Copy)]
enum Dec {
    Exact { mantissa: i128, exponent: i32 },
    Approximate(f64),
}

/// Decimals `divf` keeps, as shopspring/decimal's `DivisionPrecision`.
const DIVISION_PRECISION: i32 = 16;

impl Dec {
    /// The shortest decimal that reads back as `f`, as `NewFromFloat` takes it.
    fn from_f64(f: f64) -> Result<Dec, String> {
        if !f.is_finite() {
            return Err(format!("Cannot create a Decimal from {}", go_special(f)));
        }
        let sci = format!("{f:e}");
        let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let mantissa: i128 = format!("{int}{frac}").parse().unwrap_or(0);
        Ok(Dec::Exact {
            mantissa,
            exponent: exp - frac.len() as i32,
        })
    }

    fn to_f64(self) -> f64 {
        match self {
            Dec::Exact { mantissa, exponent } => {
                format!("{mantissa}e{exponent}").parse().unwrap_or(f64::NAN)
            }
            Dec::Approximate(f) => f,
        }
    }

    /// Both as mantissas over the smaller exponent.
    fn aligned(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let (
            Dec::Exact {
                mantissa: ma,
                exponent: ea,
            },
            Dec::Exact {
                mantissa: mb,
                exponent: eb,
            },
        ) = (a, b)
        else {
            return None;
        };
        let e = ea.min(eb);
        let scale = |m: i128, from: i32| {
            10i128
                .checked_pow(u32::try_from(from - e).ok()?)
                .and_then(|p| m.checked_mul(p))
        };
        Some((scale(ma, ea)?, scale(mb, eb)?, e))
    }

    fn add(a: Dec, b: Dec) -> Result<Dec, String> {
        Ok(Dec::aligned(a, b)
            .and_then(|(x, y, e)| Some(Dec::exact(x.checked_add(y)?, e)))
            .unwrap_or(Dec::Approximate(a.to_f64() + b.to_f64())))
    }

    fn sub(a: Dec, b: Dec) -> Result<Dec, String> {
        Ok(Dec::aligned(a, b)
            .and_then(|(x, y, e)| Some(Dec::exact(x.checked_sub(y)?, e)))
            .unwrap_or(Dec::Approximate(a.to_f64() - b.to_f64())))
    }

    fn mul(a: Dec, b: Dec) -> Result<Dec, String> {
        let exact = match (a, b) {
            (
                Dec::Exact {
                    mantissa: ma,
                    exponent: ea,
                },
                Dec::Exact {
                    mantissa: mb,
                    exponent: eb,
                },
            ) => ma.checked_mul(mb).map(|m| Dec::exact(m, ea + eb)),
            _ => None,
        };
        Ok(exact.unwrap_or(Dec::Approximate(a.to_f64() * b.to_f64())))
    }

    /// The quotient rounded half away from zero to 16 decimals.
    fn div(a: Dec, b: Dec) -> Result<Dec, String> {
        if b.to_f64() == 0.0 {
            return Err("decimal division by 0".into());
        }
        let exact = Dec::aligned(a, b).and_then(|(x, y, _)| {
            let scaled = x.checked_mul(10i128.checked_pow(DIVISION_PRECISION as u32)?)?;
            let (q, r) = (scaled / y, scaled % y);
            let up = r.checked_mul(2)?.abs() >= y.abs();
            let sign = if (scaled < 0) != (y < 0) { -1 } else { 1 };
            Some(Dec::exact(
                q + if up { sign } else { 0 },
                -DIVISION_PRECISION,
            ))
        });
        Ok(exact.unwrap_or(Dec::Approximate(a.to_f64() / b.to_f64())))
    }

    fn exact(mantissa: i128, exponent: i32) -> Dec {
        Dec::Exact { mantissa, exponent }
    }
}

/// Go's name for a float that is not finite.
fn go_special(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}
