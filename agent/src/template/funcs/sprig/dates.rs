//! Sprig's date and duration functions.
//!
//! Template values have no Go `time.Time`; a time here is its Unix
//! seconds (an `int`), which is also what sprig's formatters accept in
//! place of a time. The agent's local zone is taken to be UTC, the zone of
//! the agent's container; `dateInZone` knows only UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use crate::duration;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::super::golayout;

/// Seconds since the Unix epoch now.
fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The time a date function is given: an integer is Unix seconds, and
/// anything else is now, as sprig's type switch does.
fn time_arg(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(seconds) => *seconds,
        _ => now_seconds(),
    }
}

/// `now`: the current time.
pub(in super::super) fn now<'a>(_: &[Value<'a>]) -> FnResult<'a> {
    Ok(Value::Int(now_seconds()))
}

/// `date layout t`: `t` in Go's `layout`.
pub(in super::super) fn date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let layout = string_arg(&args[0])?;
    format_time(time_arg(&args[1]), layout)
}

/// `dateInZone layout t zone`: `t` in `layout`, in `zone`.
pub(in super::super) fn date_in_zone<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let layout = string_arg(&args[0])?;
    check_zone(string_arg(&args[2])?)?;
    format_time(time_arg(&args[1]), layout)
}

/// `htmlDate t`: `t` as `2006-01-02`.
pub(in super::super) fn html_date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    format_time(time_arg(&args[0]), "2006-01-02")
}

/// `htmlDateInZone t zone`: `t` as `2006-01-02` in `zone`.
pub(in super::super) fn html_date_in_zone<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    check_zone(string_arg(&args[1])?)?;
    format_time(time_arg(&args[0]), "2006-01-02")
}

/// Zones are UTC here; Go falls back to UTC for a zone it does not know.
fn check_zone(zone: &str) -> Result<(), String> {
    match zone {
        "" | "UTC" | "Local" | "Etc/UTC" => Ok(()),
        other => Err(format!("time zone {other:?} is not supported; only UTC is")),
    }
}

/// `unixEpoch t`: `t` in Unix seconds, as text.
pub(in super::super) fn unix_epoch<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(time_arg(&args[0]).to_string()))
}

/// `dateModify offset t`: `t` moved by the Go duration `offset`; `t`
/// itself when `offset` is not one.
pub(in super::super) fn date_modify<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let offset = string_arg(&args[0])?;
    let t = time_arg(&args[1]);
    Ok(Value::Int(
        duration::parse_go(offset, false).map_or(t, |ns| t.saturating_add(ns / NANOS_PER_SECOND)),
    ))
}

/// `mustDateModify offset t`: `dateModify` that fails on a bad offset.
pub(in super::super) fn must_date_modify<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let offset = string_arg(&args[0])?;
    let t = time_arg(&args[1]);
    let ns = duration::parse_go(offset, false)
        .ok_or_else(|| format!("time: invalid duration {}", go_quoted(offset)))?;
    Ok(Value::Int(t.saturating_add(ns / NANOS_PER_SECOND)))
}

/// `ago t`: the time since `t`, to the second.
pub(in super::super) fn ago<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let since = now_seconds().saturating_sub(time_arg(&args[0]));
    Ok(owned(duration::format_go(
        since.saturating_mul(NANOS_PER_SECOND),
    )))
}

/// `duration seconds`: a number of seconds (an integer or decimal text)
/// as a Go duration, `1m30s`; anything else is `0s`.
pub(in super::super) fn duration<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let seconds = match &args[0] {
        Value::Int(i) => *i,
        Value::Str(_) | Value::String(_) => args[0]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0),
        _ => 0,
    };
    Ok(owned(duration::format_go(
        seconds.wrapping_mul(NANOS_PER_SECOND),
    )))
}

/// `durationRound d`: a Go duration (text, or integer nanoseconds) in its
/// largest whole unit: `2h`, `3mo`, `1y`.
pub(in super::super) fn duration_round<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let ns = match &args[0] {
        Value::Int(i) => *i,
        Value::Str(_) | Value::String(_) => args[0]
            .as_str()
            .and_then(|s| duration::parse_go(&s, false))
            .unwrap_or(0),
        _ => 0,
    };
    let u = ns.unsigned_abs();
    let hour = 3_600 * NANOS_PER_SECOND as u64;
    let units = [
        (hour * 24 * 365, "y"),
        (hour * 24 * 30, "mo"),
        (hour * 24, "d"),
        (hour, "h"),
        (60 * NANOS_PER_SECOND as u64, "m"),
        (NANOS_PER_SECOND as u64, "s"),
    ];
    Ok(owned(units.iter().find(|(size, _)| u > *size).map_or_else(
        || "0s".to_owned(),
        |(size, unit)| format!("{}{unit}", u / size),
    )))
}

/// `toDate layout text`: the time `text` gives in Go's `layout`; the zero
/// time when it does not match.
pub(in super::super) fn to_date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (layout, text) = (string_arg(&args[0])?, string_arg(&args[1])?);
    Ok(Value::Int(
        golayout::parse(layout, text).map_or(ZERO_TIME, OffsetDateTime::unix_timestamp),
    ))
}

/// `mustToDate layout text`: `toDate` that fails when `text` does not
/// match `layout`.
pub(in super::super) fn must_to_date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (layout, text) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let t = golayout::parse(layout, text).ok_or_else(|| {
        format!(
            "parsing time {} as {}: cannot parse",
            go_quoted(text),
            go_quoted(layout)
        )
    })?;
    Ok(Value::Int(t.unix_timestamp()))
}

/// Go's zero `time.Time` (January 1, year 1, UTC) in Unix seconds.
const ZERO_TIME: i64 = -62_135_596_800;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

fn go_quoted(s: &str) -> String {
    let mut out = String::new();
    super::super::super::print::quote(&mut out, s, false);
    out
}

/// Go's `Time.Format` of a time in Unix seconds. Go formats any year; the
/// `time` crate stops at ±9999, so a time past that is an error rather
/// than a wrong date.
fn format_time<'a>(t: i64, layout: &str) -> FnResult<'a> {
    let t = OffsetDateTime::from_unix_timestamp(t)
        .map_err(|_| format!("time {t} is outside the years -9999 to 9999"))?;
    Ok(owned(golayout::format(t, layout)))
}
