//! Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`): formatting a
//! UTC time as `Time.Format` does and reading one as `time.Parse` does, for
//! consul-template's `timestamp` and sprig's date functions.
//!
//! Written here because the layouts are Go's own mini-language: the `time`
//! crate formats with its own descriptions, and no crate reads Go layouts.
//! Times are UTC, the zone of the agent's container.

use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// Go's `time.RFC3339`.
pub(super) const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// A part of a Go layout that stands for a part of the time.
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
    /// A numeric zone, `Z` for UTC when `z`; `utc` is what UTC prints as otherwise.
    Zone {
        z: bool,
        utc: &'static str,
    },
    /// Fractional seconds with `digits` places, trailing zeros dropped
    /// unless `fixed`, written after `sep`.
    Fraction {
        sep: char,
        digits: usize,
        fixed: bool,
    },
}

/// A piece of a layout: literal text, or an element.
#[derive(Clone, Copy)]
enum Chunk<'a> {
    Literal(&'a str),
    Element(Element),
}

/// Splits `layout` into literal text and elements, as Go's `nextStdChunk`.
fn chunks(layout: &str) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < layout.len() {
        match element(&layout[i..]) {
            Some((len, element)) => {
                if literal_start < i {
                    out.push(Chunk::Literal(&layout[literal_start..i]));
                }
                out.push(Chunk::Element(element));
                i += len;
                literal_start = i;
            }
            None => i += layout[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    if literal_start < layout.len() {
        out.push(Chunk::Literal(&layout[literal_start..]));
    }
    out
}

/// The element `layout` starts with, and its length.
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
                utc: "+00:00:00",
            },
        ),
        (
            "-070000",
            Zone {
                z: false,
                utc: "+000000",
            },
        ),
        (
            "-07:00",
            Zone {
                z: false,
                utc: "+00:00",
            },
        ),
        (
            "-0700",
            Zone {
                z: false,
                utc: "+0000",
            },
        ),
        (
            "-07",
            Zone {
                z: false,
                utc: "+00",
            },
        ),
        (
            "Z07:00:00",
            Zone {
                z: true,
                utc: "+00:00:00",
            },
        ),
        (
            "Z070000",
            Zone {
                z: true,
                utc: "+000000",
            },
        ),
        (
            "Z07:00",
            Zone {
                z: true,
                utc: "+00:00",
            },
        ),
        (
            "Z0700",
            Zone {
                z: true,
                utc: "+0000",
            },
        ),
        (
            "Z07",
            Zone {
                z: true,
                utc: "+00",
            },
        ),
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

/// Formats a UTC time the way Go's `Time.Format` does with `layout`.
pub(super) fn format(t: OffsetDateTime, layout: &str) -> String {
    let mut out = String::new();
    for chunk in chunks(layout) {
        match chunk {
            Chunk::Literal(text) => out.push_str(text),
            Chunk::Element(element) => element.write(t, &mut out),
        }
    }
    out
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
            Zone { z: false, utc } => utc.into(),
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

/// Go's `time.Parse` of a UTC time for the layout elements that name a
/// date and a time of day; `None` when `text` does not match `layout`, or
/// the layout asks for a fraction or a day of the year.
pub(super) fn parse(layout: &str, text: &str) -> Option<OffsetDateTime> {
    use Element::*;
    let (mut year, mut month, mut day) = (1i32, 1u8, 1u8);
    let (mut hour, mut minute, mut second) = (0u8, 0u8, 0u8);
    let mut pm: Option<bool> = None;
    let mut rest = text;
    for chunk in chunks(layout) {
        let element = match chunk {
            Chunk::Literal(literal) => {
                rest = rest.strip_prefix(literal)?;
                continue;
            }
            Chunk::Element(element) => element,
        };
        let digits = |rest: &mut &str, min| number(rest, min, 2);
        match element {
            LongMonth | Month => {
                let found = (1..=12u8).find_map(|n| {
                    let name = time::Month::try_from(n).ok()?.to_string();
                    let name = if element == Month { &name[..3] } else { &name };
                    rest.starts_with(name).then_some((n, name.len()))
                })?;
                month = found.0;
                rest = &rest[found.1..];
            }
            LongWeekday | Weekday => {
                let len = [
                    "Monday",
                    "Tuesday",
                    "Wednesday",
                    "Thursday",
                    "Friday",
                    "Saturday",
                    "Sunday",
                ]
                .iter()
                .map(|w| if element == Weekday { &w[..3] } else { w })
                .find(|name| rest.starts_with(*name))?
                .len();
                rest = &rest[len..];
            }
            NumMonth => month = digits(&mut rest, 1)?,
            ZeroMonth => month = digits(&mut rest, 2)?,
            Day => day = digits(&mut rest, 1)?,
            ZeroDay => day = digits(&mut rest, 2)?,
            UnderDay => {
                rest = rest.strip_prefix(' ').unwrap_or(rest);
                day = digits(&mut rest, 1)?;
            }
            Hour => hour = digits(&mut rest, 2)?,
            Hour12 => hour = digits(&mut rest, 1)?,
            ZeroHour12 => hour = digits(&mut rest, 2)?,
            Minute => minute = digits(&mut rest, 1)?,
            ZeroMinute => minute = digits(&mut rest, 2)?,
            Second => second = digits(&mut rest, 1)?,
            ZeroSecond => second = digits(&mut rest, 2)?,
            LongYear => year = number(&mut rest, 4, 4)?,
            Year => {
                let y: i32 = number(&mut rest, 2, 2)?;
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            Pm { upper } => {
                let (am, p) = if upper { ("AM", "PM") } else { ("am", "pm") };
                pm = Some(if let Some(r) = rest.strip_prefix(p) {
                    rest = r;
                    true
                } else {
                    rest = rest.strip_prefix(am)?;
                    false
                });
            }
            Tz => rest = rest.strip_prefix("UTC")?,
            Zone { z, utc } => {
                rest = z
                    .then(|| rest.strip_prefix('Z'))
                    .flatten()
                    .or_else(|| rest.strip_prefix(utc))?;
            }
            Fraction { .. } | UnderYearDay | ZeroYearDay => return None,
        }
    }
    if !rest.is_empty() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Reads `min` to `max` leading digits of `rest` and moves past them.
fn number<T: std::str::FromStr>(rest: &mut &str, min: usize, max: usize) -> Option<T> {
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
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::{format, parse};

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
            assert_eq!(format(t, layout), want, "{layout}");
        }
    }

    #[test]
    fn parses_what_it_formats_and_refuses_impossible_dates() {
        let t = OffsetDateTime::from_unix_timestamp(1_772_643_909).expect("in range");
        for layout in [
            "2006-01-02T15:04:05Z07:00",
            "Mon Jan _2 03:04:05 PM MST 2006",
            "Monday, 02-January-06 15:04:05 -0700",
        ] {
            assert_eq!(parse(layout, &format(t, layout)), Some(t), "{layout}");
        }
        assert_eq!(parse("2006-01-02", "2026-02-30"), None);
        assert_eq!(parse("2006-01-02", "2026-02-03x"), None);
        assert_eq!(parse("15:04", "24:00"), None);
        assert_eq!(parse("2006-01-02 .000", "2026-02-03 .123"), None);
    }
}
