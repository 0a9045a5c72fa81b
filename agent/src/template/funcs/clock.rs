//! consul-template's `timestamp`, with Go's reference-time layouts.

use time::OffsetDateTime;

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// Go's `time.RFC3339`.
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// `timestamp`: the time now in UTC as RFC 3339; `timestamp "unix"`: Unix
/// seconds; `timestamp layout`: formatted with a Go layout.
pub(super) fn timestamp<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let now = OffsetDateTime::now_utc();
    Ok(owned(match args {
        [] => go_format(now, RFC3339),
        [layout] => match string_arg(layout)? {
            "unix" => now.unix_timestamp().to_string(),
            layout => go_format(now, layout),
        },
        _ => {
            return Err(format!(
                "timestamp: wrong number of arguments, expected 0 or 1, but got {}",
                args.len()
            ));
        }
    }))
}

/// Formats a UTC time the way Go's `Time.Format` does with `layout`.
pub(super) fn go_format(t: OffsetDateTime, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        match element(rest) {
            Some((len, element)) => {
                element.write(t, &mut out);
                rest = &rest[len..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// A part of a Go layout that stands for a part of the time.
#[derive(Clone, Copy)]
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
    UnderYearDay,
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
    Pm {
        upper: bool,
    },
    /// A zone name: UTC here.
    Tz,
    /// A numeric zone: `Z` for UTC when `z`, else `+00` with `rest` after it.
    Zone {
        z: bool,
        rest: &'static str,
    },
    /// Fractional seconds with `digits` places, trailing zeros dropped
    /// unless `fixed`, written after `sep`.
    Fraction {
        sep: char,
        digits: usize,
        fixed: bool,
    },
}

/// The element `layout` starts with, and its length, as Go's
/// `nextStdChunk` finds it.
fn element(layout: &str) -> Option<(usize, Element)> {
    use Element::*;
    const FIXED: &[(&str, Element)] = &[
        ("January", LongMonth),
        ("Jan", Month),
        ("Monday", LongWeekday),
        ("Mon", Weekday),
        ("MST", Tz),
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
        ("__2", UnderYearDay),
        ("_2", UnderDay),
        ("3", Hour12),
        ("4", Minute),
        ("5", Second),
        ("PM", Pm { upper: true }),
        ("pm", Pm { upper: false }),
        (
            "-07:00:00",
            Zone {
                z: false,
                rest: ":00:00",
            },
        ),
        (
            "-070000",
            Zone {
                z: false,
                rest: "0000",
            },
        ),
        (
            "-07:00",
            Zone {
                z: false,
                rest: ":00",
            },
        ),
        (
            "-0700",
            Zone {
                z: false,
                rest: "00",
            },
        ),
        ("-07", Zone { z: false, rest: "" }),
        ("Z07:00:00", Zone { z: true, rest: "" }),
        ("Z070000", Zone { z: true, rest: "" }),
        ("Z07:00", Zone { z: true, rest: "" }),
        ("Z0700", Zone { z: true, rest: "" }),
        ("Z07", Zone { z: true, rest: "" }),
    ];
    // Go reads `_2006` as `_` then the year.
    if layout.starts_with("_2006") {
        return None;
    }
    if let Some(found) = FIXED
        .iter()
        .filter(|(text, _)| layout.starts_with(text))
        .max_by_key(|(text, _)| text.len())
    {
        return Some((found.0.len(), found.1));
    }
    let bytes = layout.as_bytes();
    let sep = bytes[0];
    let digit = *bytes.get(1)?;
    if (sep == b'.' || sep == b',') && (digit == b'0' || digit == b'9') {
        let digits = bytes[1..].iter().take_while(|&&b| b == digit).count();
        if !bytes.get(1 + digits).is_some_and(u8::is_ascii_digit) {
            return Some((
                1 + digits,
                Fraction {
                    sep: char::from(sep),
                    digits,
                    fixed: digit == b'0',
                },
            ));
        }
    }
    None
}

impl Element {
    fn write(self, t: OffsetDateTime, out: &mut String) {
        use Element::*;
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let text = match self {
            LongMonth => t.month().to_string(),
            Month => t.month().to_string()[..3].to_owned(),
            NumMonth => u8::from(t.month()).to_string(),
            ZeroMonth => format!("{:02}", u8::from(t.month())),
            LongWeekday => t.weekday().to_string(),
            Weekday => t.weekday().to_string()[..3].to_owned(),
            Day => t.day().to_string(),
            UnderDay => format!("{:>2}", t.day()),
            ZeroDay => format!("{:02}", t.day()),
            UnderYearDay => format!("{:>3}", t.ordinal()),
            ZeroYearDay => format!("{:03}", t.ordinal()),
            Hour => format!("{:02}", t.hour()),
            Hour12 => hour12.to_string(),
            ZeroHour12 => format!("{hour12:02}"),
            Minute => t.minute().to_string(),
            ZeroMinute => format!("{:02}", t.minute()),
            Second => t.second().to_string(),
            ZeroSecond => format!("{:02}", t.second()),
            LongYear => format!("{:04}", t.year()),
            Year => format!("{:02}", t.year().rem_euclid(100)),
            Pm { upper } => match (t.hour() >= 12, upper) {
                (true, true) => "PM".into(),
                (true, false) => "pm".into(),
                (false, true) => "AM".into(),
                (false, false) => "am".into(),
            },
            Tz => "UTC".into(),
            Zone { z: true, .. } => "Z".into(),
            Zone { z: false, rest } => format!("+00{rest}"),
            Fraction { sep, digits, fixed } => {
                let nanos = format!("{:09}", t.nanosecond());
                let mut places = &nanos[..digits.min(9)];
                if !fixed {
                    places = places.trim_end_matches('0');
                    if places.is_empty() {
                        return;
                    }
                }
                format!("{sep}{places}")
            }
        };
        out.push_str(&text);
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::go_format;

    #[test]
    fn formats_go_reference_layouts() {
        // 2026-03-04 17:05:09.120 UTC
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_772_643_909_120_000_000).expect("in range");
        for (layout, want) in [
            ("2006-01-02T15:04:05Z07:00", "2026-03-04T17:05:09Z"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Wed Mar  4 17:05:09 UTC 2026",
            ),
            (
                "Monday, January 2, 2006 3:4:5 PM",
                "Wednesday, March 4, 2026 5:5:9 PM",
            ),
            ("06/1/02 03pm -0700 -07:00", "26/3/04 05pm +0000 +00:00"),
            ("15:04:05.000 .999 ,00 .9", "17:05:09.120 .12 ,12 .1"),
            ("002 __2 _2006", "063  63 _2026"),
            (
                "2006-01-02 15:04:05.000000000",
                "2026-03-04 17:05:09.120000000",
            ),
        ] {
            assert_eq!(go_format(t, layout), want, "{layout}");
        }
    }
}
