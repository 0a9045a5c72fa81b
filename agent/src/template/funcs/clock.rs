//! consul-template's `timestamp`, with Go's reference-time layouts.

use time::OffsetDateTime;

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};
use super::golayout::{self, RFC3339};

/// `timestamp`: the time now in UTC as RFC 3339; `timestamp "unix"`: Unix
/// seconds; `timestamp layout`: formatted with a Go layout.
pub(super) fn timestamp<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let now = OffsetDateTime::now_utc();
    Ok(owned(match args {
        [] => golayout::format(now, RFC3339),
        [layout] => match string_arg(layout)? {
            "unix" => now.unix_timestamp().to_string(),
            layout => golayout::format(now, layout),
        },
        _ => {
            return Err(format!(
                "timestamp: wrong number of arguments, expected 0 or 1, but got {}",
                args.len()
            ));
        }
    }))
}
