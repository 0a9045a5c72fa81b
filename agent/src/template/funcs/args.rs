//! What every function family uses to read its arguments and return its
//! value.

use super::super::value::Value;

/// A function's value, or why the call failed.
pub(crate) type FnResult<'a> = Result<Value<'a>, String>;

/// A `string` parameter: Go accepts only `string`, not `json.Number`.
pub(super) fn string_arg<'v>(v: &'v Value<'_>) -> Result<&'v str, String> {
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

/// A string the function built.
pub(super) fn owned(s: String) -> Value<'static> {
    Value::String(s.into())
}
