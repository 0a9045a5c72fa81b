//! Go's durations (`1h30m`, `1.5s`, `250ms`): read as Vault reads them in
//! its configs and as sprig's date functions read them, and printed as Go's
//! `Duration.String` prints them.
//!
//! Written here because Go's grammar (a fraction in any unit, `µs`, a sign,
//! a bare `0`) and its printed form are Go's own; the crates that read
//! human durations accept other spellings and print others.

/// Nanoseconds in a second.
const SECOND: u64 = 1_000_000_000;

/// Go's `time.ParseDuration`, in nanoseconds; with `days`, also Vault's `d`
/// for 24 hours. `None` for anything Go refuses or past `i64`.
pub fn parse_go(text: &str, days: bool) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" if days => 86400e9,
            _ => return None,
        };
        if number.is_empty() || number == "." {
            return None;
        }
        total += number.parse::<f64>().ok()? * scale;
        rest = tail;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    // In range by the check above; the cast rounds to whole nanoseconds.
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

/// Go's `Duration.String`: `1h2m3.5s`, `1.5s`, `2ms`, `0s`.
pub fn format_go(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    if u < SECOND {
        let (unit, scale) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(u, scale));
    }
    let seconds = fraction(u % (60 * SECOND), SECOND);
    let minutes_total = u / (60 * SECOND);
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

#[cfg(test)]
mod tests {
    use super::{format_go, parse_go};

    #[test]
    fn reads_go_durations() {
        for (text, days, ns) in [
            ("1h30m", false, 5_400_000_000_000),
            ("-1.5h", false, -5_400_000_000_000),
            ("+300ms", false, 300_000_000),
            ("1µs2ns", false, 1_002),
            ("0", false, 0),
            ("2d", true, 172_800_000_000_000),
        ] {
            assert_eq!(parse_go(text, days), Some(ns), "{text}");
        }
        for bad in ["", "-", "s", "1", "1h30", ".s", "2d", "3000000h"] {
            assert_eq!(parse_go(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn prints_as_go_does() {
        for (ns, text) in [
            (0, "0s"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (-90_000_000_000, "-1m30s"),
            (3_723_500_000_000, "1h2m3.5s"),
        ] {
            assert_eq!(format_go(ns), text, "{ns}");
        }
    }
}
