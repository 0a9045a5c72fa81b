//! Sprig's date and duration functions.
//!
//! Template values have no Go `time.Time`; a time here is its Unix
//! seconds (an `int`), which is also what sprig's formatters accept in
//! place of a time. The agent's local zone is taken to be UTC, the zone of
//! the agent's container; `dateInZone` knows only UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

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
    Ok(owned(format_time(time_arg(&args[1]), layout)))
}

/// `dateInZone layout t zone`: `t` in `layout`, in `zone`.
pub(in super::super) fn date_in_zone<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let layout = string_arg(&args[0])?;
    check_zone(string_arg(&args[2])?)?;
    Ok(owned(format_time(time_arg(&args[1]), layout)))
}

/// `htmlDate t`: `t` as `2006-01-02`.
pub(in super::super) fn html_date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(format_time(time_arg(&args[0]), "2006-01-02")))
}

/// `htmlDateInZone t zone`: `t` as `2006-01-02` in `zone`.
pub(in super::super) fn html_date_in_zone<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    check_zone(string_arg(&args[1])?)?;
    Ok(owned(format_time(time_arg(&args[0]), "2006-01-02")))
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
        parse_duration(offset).map_or(t, |ns| t.saturating_add(ns / NANOS_PER_SECOND)),
    ))
}

/// `mustDateModify offset t`: `dateModify` that fails on a bad offset.
pub(in super::super) fn must_date_modify<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let offset = string_arg(&args[0])?;
    let t = time_arg(&args[1]);
    let ns = parse_duration(offset)
        .ok_or_else(|| format!("time: invalid duration {}", go_quoted(offset)))?;
    Ok(Value::Int(t.saturating_add(ns / NANOS_PER_SECOND)))
}

/// `ago t`: the time since `t`, to the second.
pub(in super::super) fn ago<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let since = now_seconds().saturating_sub(time_arg(&args[0]));
    Ok(owned(format_duration(
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
    Ok(owned(format_duration(
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
            .and_then(|s| parse_duration(&s))
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
    Ok(Value::Int(parse_time(layout, text).unwrap_or(ZERO_TIME)))
}

/// `mustToDate layout text`: `toDate` that fails when `text` does not
/// match `layout`.
pub(in super::super) fn must_to_date<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (layout, text) = (string_arg(&args[0])?, string_arg(&args[1])?);
    parse_time(layout, text).map(Value::Int).ok_or_else(|| {
        format!(
            "parsing time {} as {}: cannot parse",
            go_quoted(text),
            go_quoted(layout)
        )
    })
}

/// Go's zero `time.Time` (January 1, year 1, UTC) in Unix seconds.
const ZERO_TIME: i64 = -62_135_596_800;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

fn go_quoted(s: &str) -> String {
    let mut out = String::new();
    super::super::super::print::quote(&mut out, s, false);
    out
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5s`, `2ms`, `0s`.
fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < NANOS_PER_SECOND as u64 {
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(u, scale));
    }
    let seconds = fraction(u % 60_000_000_000, NANOS_PER_SECOND as u64);
    let minutes_total = u / 60_000_000_000;
    let (hours, minutes) = (minutes_total / 60, minutes_total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `v / scale` with its fraction's trailing zeros dropped.
fn fraction(v: u64, scale: u64) -> String {
    let (whole, rest) = (v / scale, v % scale);
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration` in nanoseconds: `1h30m`, `-1.5h`, `300ms`.
fn parse_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

/// The layout elements of Go's `time` package.
#[derive(Clone, Copy, PartialEq)]
enum Element {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekday,
    Weekday,
    Day,
    UnderDay,
    ZeroDay,
    YearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    ZoneName,
    /// A numeric zone, `Z` for UTC when the bool is set; the text is
    /// what UTC prints as.
    Zone(&'static str, bool),
    /// A fraction of a second with this many digits, trailing zeros
    /// dropped when the bool is set.
    Fraction(usize, bool),
}

/// Splits a layout into literal text and elements, as Go's `nextStdChunk`.
fn layout_chunks(layout: &str) -> Vec<Result<Element, &str>> {
    use Element::*;
    const TOKENS: &[(&str, Element)] = &[
        ("January", LongMonth),
        ("Jan", Month),
        ("Monday", LongWeekday),
        ("Mon", Weekday),
        ("MST", ZoneName),
        ("002", ZeroYearDay),
        ("01", ZeroMonth),
        ("02", ZeroDay),
        ("03", ZeroHour12),
        ("04", ZeroMinute),
        ("05", ZeroSecond),
        ("06", Year),
        ("15", Hour),
        ("1", NumMonth),
        ("2006", LongYear),
        ("2", Day),
        ("__2", YearDay),
        ("_2", UnderDay),
        ("3", Hour12),
        ("4", Minute),
        ("5", Second),
        ("PM", PM),
        ("pm", Pm),
        ("-07:00:00", Zone("+00:00:00", false)),
        ("-070000", Zone("+000000", false)),
        ("-07:00", Zone("+00:00", false)),
        ("-0700", Zone("+0000", false)),
        ("-07", Zone("+00", false)),
        ("Z07:00:00", Zone("+00:00:00", true)),
        ("Z070000", Zone("+000000", true)),
        ("Z07:00", Zone("+00:00", true)),
        ("Z0700", Zone("+0000", true)),
        ("Z07", Zone("+00", true)),
    ];
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < layout.len() {
        let rest = &layout[i..];
        let mut found = TOKENS
            .iter()
            .find(|(token, _)| rest.starts_with(token))
            .map(|(token, element)| (token.len(), *element));
        // `_2006` is an underscore and a year, not a padded day.
        if rest.starts_with("_2006") {
            found = None;
        }
        if found.is_none() && (rest.starts_with('.') || rest.starts_with(',')) {
            let digit = rest.as_bytes().get(1).copied();
            if let Some(d @ (b'0' | b'9')) = digit {
                let run = rest[1..].bytes().take_while(|&b| b == d).count();
                let after = rest.as_bytes().get(1 + run);
                if !after.is_some_and(u8::is_ascii_digit) {
                    found = Some((1 + run, Fraction(run, d == b'9')));
                }
            }
        }
        match found {
            Some((len, element)) => {
                if literal_start < i {
                    out.push(Err(&layout[literal_start..i]));
                }
                out.push(Ok(element));
                i += len;
                literal_start = i;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if literal_start < layout.len() {
        out.push(Err(&layout[literal_start..]));
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A UTC calendar date and time of day.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    year_day: u32,
    weekday: usize,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    fn from_unix(t: i64) -> Civil {
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let year_day = (days - days_from_civil(year, 1, 1) + 1) as u32;
        Civil {
            year,
            month,
            day,
            year_day,
            weekday: (days + 4).rem_euclid(7) as usize,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `Time.Format` for a UTC time in Unix seconds.
fn format_time(t: i64, layout: &str) -> String {
    use Element::*;
    let c = Civil::from_unix(t);
    let hour12 = match c.hour % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::new();
    for chunk in layout_chunks(layout) {
        let element = match chunk {
            Ok(element) => element,
            Err(text) => {
                out.push_str(text);
                continue;
            }
        };
        let text = match element {
            LongMonth => MONTHS[c.month as usize - 1].to_owned(),
            Month => MONTHS[c.month as usize - 1][..3].to_owned(),
            NumMonth => c.month.to_string(),
            ZeroMonth => format!("{:02}", c.month),
            LongWeekday => WEEKDAYS[c.weekday].to_owned(),
            Weekday => WEEKDAYS[c.weekday][..3].to_owned(),
            Day => c.day.to_string(),
            UnderDay => format!("{:>2}", c.day),
            ZeroDay => format!("{:02}", c.day),
            YearDay => format!("{:>3}", c.year_day),
            ZeroYearDay => format!("{:03}", c.year_day),
            Hour => format!("{:02}", c.hour),
            Hour12 => hour12.to_string(),
            ZeroHour12 => format!("{hour12:02}"),
            Minute => c.minute.to_string(),
            ZeroMinute => format!("{:02}", c.minute),
            Second => c.second.to_string(),
            ZeroSecond => format!("{:02}", c.second),
            LongYear => format!("{:04}", c.year),
            Year => format!("{:02}", c.year.rem_euclid(100)),
            PM => if c.hour >= 12 { "PM" } else { "AM" }.to_owned(),
            Pm => if c.hour >= 12 { "pm" } else { "am" }.to_owned(),
            ZoneName => "UTC".to_owned(),
            Zone(utc, z) => if z { "Z" } else { utc }.to_owned(),
            // Times here are whole seconds.
            Fraction(digits, trim) => {
                if trim {
                    String::new()
                } else {
                    format!(".{}", "0".repeat(digits))
                }
            }
        };
        out.push_str(&text);
    }
    out
}

/// Go's `time.ParseInLocation` in UTC for the common layout elements;
/// `None` when `text` does not match `layout`.
fn parse_time(layout: &str, text: &str) -> Option<i64> {
    use Element::*;
    let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second) = (0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut rest = text;
    let number = |rest: &mut &str, min: usize, max: usize| -> Option<u32> {
        let len = rest
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if len < min {
            return None;
        }
        let value = rest[..len].parse().ok()?;
        *rest = &rest[len..];
        Some(value)
    };
    for chunk in layout_chunks(layout) {
        match chunk {
            Err(literal) => rest = rest.strip_prefix(literal)?,
            Ok(element) => match element {
                LongMonth | Month => {
                    let (i, name) = MONTHS.iter().enumerate().find_map(|(i, m)| {
                        let name = if element == Month { &m[..3] } else { m };
                        rest.starts_with(name).then_some((i, name))
                    })?;
                    month = i as u32 + 1;
                    rest = &rest[name.len()..];
                }
                LongWeekday | Weekday => {
                    let name = WEEKDAYS.iter().find_map(|w| {
                        let name = if element == Weekday { &w[..3] } else { w };
                        rest.starts_with(name).then_some(name)
                    })?;
                    rest = &rest[name.len()..];
                }
                NumMonth | ZeroMonth => {
                    month = number(&mut rest, 1 + usize::from(element == ZeroMonth), 2)?
                }
                Day | ZeroDay => day = number(&mut rest, 1 + usize::from(element == ZeroDay), 2)?,
                UnderDay => {
                    rest = rest.strip_prefix(' ').unwrap_or(rest);
                    day = number(&mut rest, 1, 2)?;
                }
                Hour => hour = number(&mut rest, 2, 2)?,
                Hour12 | ZeroHour12 => {
                    hour = number(&mut rest, 1 + usize::from(element == ZeroHour12), 2)?
                }
                Minute | ZeroMinute => {
                    minute = number(&mut rest, 1 + usize::from(element == ZeroMinute), 2)?
                }
                Second | ZeroSecond => {
                    second = number(&mut rest, 1 + usize::from(element == ZeroSecond), 2)?
                }
                LongYear => year = i64::from(number(&mut rest, 4, 4)?),
                Year => {
                    let y = i64::from(number(&mut rest, 2, 2)?);
                    year = if y >= 69 { 1900 + y } else { 2000 + y };
                }
                PM | Pm => {
                    let (am, p) = if element == PM {
                        ("AM", "PM")
                    } else {
                        ("am", "pm")
                    };
                    pm = Some(if let Some(r) = rest.strip_prefix(p) {
                        rest = r;
                        true
                    } else {
                        rest = rest.strip_prefix(am)?;
                        false
                    });
                }
                ZoneName => rest = rest.strip_prefix("UTC")?,
                Zone(utc, z) => {
                    rest = if z { rest.strip_prefix('Z') } else { None }
                        .or_else(|| rest.strip_prefix(utc))?;
                }
                Fraction(..) | YearDay | ZeroYearDay => return None,
            },
        }
    }
    if !rest.is_empty()
        || month == 0
        || month > 12
        || day == 0
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}
