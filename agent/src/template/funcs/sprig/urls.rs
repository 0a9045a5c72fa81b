//! Sprig's `urlParse` and `urlJoin`, with Go's `net/url` rules for
//! splitting, unescaping and escaping.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// A URL split as Go's `url.Parse` splits it; path, fragment and user
/// information unescaped.
#[derive(Default)]
struct Url {
    scheme: String,
    opaque: String,
    user: Option<(String, Option<String>)>,
    host: String,
    path: String,
    raw_query: String,
    force_query: bool,
    fragment: String,
}

/// Go's `url.Parse`.
fn parse(raw: &str) -> Result<Url, String> {
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = Url::default();
    if rest == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, mut rest) = split_scheme(rest)?;
    url.scheme = scheme.to_ascii_lowercase();
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_owned();
        rest = before;
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_owned();
            url.fragment = unescape(fragment)?;
            return Ok(url);
        }
        if rest.split('/').next().is_some_and(|s| s.contains(':')) {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_end = rest[2..].find('/').map_or(rest.len(), |i| i + 2);
        let authority = &rest[2..authority_end];
        rest = &rest[authority_end..];
        let host = match authority.rfind('@') {
            Some(at) => {
                let info = &authority[..at];
                url.user = Some(match info.split_once(':') {
                    Some((user, password)) => (unescape(user)?, Some(unescape(password)?)),
                    None => (unescape(info)?, None),
                });
                &authority[at + 1..]
            }
            None => authority,
        };
        url.host = unescape(host)?;
    }
    url.path = unescape(rest)?;
    url.fragment = unescape(fragment)?;
    Ok(url)
}

/// Go's `getScheme`: the scheme before the first `:`, when everything
/// before it can be one.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Percent-decoding; `+` stays.
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    let bad = s.get(i..(i + 3).min(s.len())).unwrap_or("%");
                    format!("invalid URL escape {bad:?}")
                })?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// What Go's `shouldEscape` escapes.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Host,
    Path,
    UserPassword,
    Fragment,
}

fn escape(s: &str, part: Part) -> String {
    let keep = |c: u8| {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            return true;
        }
        if part == Part::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
            return true;
        }
        if b"$&+,/:;=?@".contains(&c) {
            return match part {
                Part::Path => c != b'?',
                Part::UserPassword => !b"@/?:".contains(&c),
                Part::Fragment | Part::Host => true,
            };
        }
        part == Part::Fragment && b"!()*".contains(&c)
    };
    let mut out = String::with_capacity(s.len());
    for c in s.bytes() {
        if keep(c) {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Go's `Hostname`: the host without its port and IPv6 brackets.
fn hostname(host: &str) -> &str {
    let mut name = host;
    if let Some(colon) = host.rfind(':')
        && host[colon + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        name = &host[..colon];
    }
    name.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(name)
}

/// Go's `Userinfo.String`.
fn userinfo((user, password): &(String, Option<String>)) -> String {
    let mut out = escape(user, Part::UserPassword);
    if let Some(password) = password {
        out.push(':');
        out.push_str(&escape(password, Part::UserPassword));
    }
    out
}

/// `urlParse s`: the parts of URL `s` in a map: `scheme`, `host`,
/// `hostname`, `path`, `query`, `opaque`, `fragment`, `userinfo`.
pub(in super::super) fn url_parse<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let raw = string_arg(&args[0])?;
    let url = parse(raw).map_err(|e| format!("unable to parse url: parse {raw:?}: {e}"))?;
    let fields: BTreeMap<String, Value<'a>> = [
        ("scheme", url.scheme.clone()),
        ("host", url.host.clone()),
        ("hostname", hostname(&url.host).to_owned()),
        ("path", url.path.clone()),
        ("query", url.raw_query.clone()),
        ("opaque", url.opaque.clone()),
        ("fragment", url.fragment.clone()),
        (
            "userinfo",
            url.user.as_ref().map(userinfo).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), owned(v)))
    .collect();
    Ok(Value::Map(Rc::new(fields)))
}

/// `urlJoin d`: the URL of the parts in map `d`, as `urlParse` names them.
pub(in super::super) fn url_join<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let d = &args[0];
    if !d.is_map() && !matches!(d, Value::Missing | Value::Nil) {
        return Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            d.type_name()
        ));
    }
    let field = |key: &str| -> Result<String, String> {
        match d.map_get(key).flatten() {
            None => Ok(String::new()),
            Some(v) if v.is_plain_string() => Ok(v.as_str().unwrap_or_default().into_owned()),
            Some(v) => Err(format!(
                "interface conversion: interface {{}} is {}, not string",
                v.type_name()
            )),
        }
    };
    let url = Url {
        scheme: field("scheme")?,
        host: field("host")?,
        path: field("path")?,
        raw_query: field("query")?,
        opaque: field("opaque")?,
        fragment: field("fragment")?,
        user: match field("userinfo")? {
            info if info.is_empty() => None,
            info => {
                parse(&format!("proto://{info}@host"))
                    .map_err(|e| format!("unable to parse userinfo in dict: {e}"))?
                    .user
            }
        },
        force_query: false,
    };
    Ok(owned(to_string(&url)))
}

/// Go's `URL.String`.
fn to_string(url: &Url) -> String {
    let mut out = String::new();
    if !url.scheme.is_empty() {
        out.push_str(&url.scheme);
        out.push(':');
    }
    if !url.opaque.is_empty() {
        out.push_str(&url.opaque);
    } else {
        if !url.scheme.is_empty() || !url.host.is_empty() || url.user.is_some() {
            if !url.host.is_empty() || !url.path.is_empty() || url.user.is_some() {
                out.push_str("//");
            }
            if let Some(user) = &url.user {
                out.push_str(&userinfo(user));
                out.push('@');
            }
            out.push_str(&escape(&url.host, Part::Host));
        }
        let path = if url.path == "*" {
            "*".to_owned()
        } else {
            escape(&url.path, Part::Path)
        };
        if !path.is_empty() && !path.starts_with('/') && !url.host.is_empty() {
            out.push('/');
        }
        if out.is_empty() && path.split('/').next().is_some_and(|s| s.contains(':')) {
            out.push_str("./");
        }
        out.push_str(&path);
    }
    if url.force_query || !url.raw_query.is_empty() {
        out.push('?');
        out.push_str(&url.raw_query);
    }
    if !url.fragment.is_empty() {
        out.push('#');
        out.push_str(&escape(&url.fragment, Part::Fragment));
    }
    out
}
