//! `toTOML`: TOML as the Go encoder consul-template uses
//! (`github.com/BurntSushi/toml` v1.5) writes it, byte for byte for the
//! shapes Vault returns: keys sorted, plain values before tables, nested
//! tables indented by two spaces per level, a list of maps as `[[key]]`
//! tables, any other list and a map inside one written inline.

use std::fmt::Write;

use super::value::Value;

/// How the encoder sees a value (`tomlTypeOfGo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// nil: left out.
    Nil,
    /// A string, number or boolean.
    Scalar,
    /// A list that is not all maps.
    Array,
    /// A map: a `[table]`.
    Hash,
    /// A non-empty list of maps: `[[tables]]`.
    ArrayHash,
}

/// The encoding of `v`, or the encoder's error.
pub(crate) fn to_toml(v: &Value<'_>) -> Result<String, String> {
    v.check_nesting()?;
    let mut encoder = Encoder { out: String::new() };
    encoder.encode(&[], v)?;
    Ok(encoder.out)
}

fn kind(v: &Value<'_>) -> Result<Kind, String> {
    Ok(match v {
        Value::Missing | Value::Nil | Value::NilPointer(_) => Kind::Nil,
        Value::Bool(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Number(_)
        | Value::Str(_)
        | Value::String(_) => Kind::Scalar,
        Value::JsonMap(_) | Value::Map(_) => Kind::Hash,
        Value::JsonList(_) | Value::List(_) | Value::StrSlice(_) | Value::Strings(_) => {
            let items = v.list_items().unwrap_or_default();
            let mut all_maps = !items.is_empty();
            for item in &items {
                match kind(item)? {
                    Kind::Nil => return Err("toml: cannot encode array with nil element".into()),
                    Kind::Hash => {}
                    _ => all_maps = false,
                }
            }
            if all_maps {
                Kind::ArrayHash
            } else {
                Kind::Array
            }
        }
        other => return Err(format!("toml: unsupported type: {}", other.type_name())),
    })
}

struct Encoder {
    out: String,
}

impl Encoder {
    /// A line break, unless nothing has been written yet.
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn indent(&mut self, key: &[&str]) {
        for _ in 1..key.len() {
            self.out.push_str("  ");
        }
    }

    fn encode(&mut self, key: &[&str], v: &Value<'_>) -> Result<(), String> {
        match kind(v)? {
            Kind::Nil => Ok(()),
            Kind::Scalar | Kind::Array => self.key_value(key, v, false),
            Kind::Hash => {
                if key.len() == 1 {
                    self.newline();
                }
                if !key.is_empty() {
                    self.indent(key);
                    let _ = write!(self.out, "[{}]", dotted(key));
                    self.newline();
                }
                self.table(key, v)
            }
            Kind::ArrayHash => {
                if key.is_empty() {
                    return Err("toml: top-level values must be Go maps or structs".into());
                }
                for item in v.list_items().unwrap_or_default() {
                    self.newline();
                    self.indent(key);
                    let _ = write!(self.out, "[[{}]]", dotted(key));
                    self.newline();
                    self.table(key, &item)?;
                }
                Ok(())
            }
        }
    }

    /// A map's plain values, then its tables, each group by key.
    fn table(&mut self, key: &[&str], v: &Value<'_>) -> Result<(), String> {
        let (direct, sub) = split(v)?;
        for (k, value) in direct.iter().chain(&sub) {
            let mut path = key.to_vec();
            path.push(k);
            self.encode(&path, value)?;
        }
        Ok(())
    }

    fn key_value(&mut self, key: &[&str], v: &Value<'_>, inline: bool) -> Result<(), String> {
        let Some(last) = key.last() else {
            return self.element(v);
        };
        self.indent(key);
        let _ = write!(self.out, "{} = ", bare_or_quoted(last));
        self.element(v)?;
        if !inline {
            self.newline();
        }
        Ok(())
    }

    fn element(&mut self, v: &Value<'_>) -> Result<(), String> {
        match v {
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Value::Float(f) => self.out.push_str(&float(*f)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => {
                    let _ = write!(self.out, "{i}");
                }
                None => self.out.push_str(&float(n.as_f64().unwrap_or_default())),
            },
            Value::Str(_) | Value::String(_) => {
                quote(&mut self.out, &v.as_str().unwrap_or_default())
            }
            Value::JsonMap(_) | Value::Map(_) => self.inline_table(v)?,
            _ => match v.list_items() {
                Some(items) => {
                    self.out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        self.element(item)?;
                    }
                    self.out.push(']');
                }
                None => return Err(format!("toml: unsupported type: {}", v.type_name())),
            },
        }
        Ok(())
    }

    /// `{k = v, ...}`. Like the Go encoder, a nil value is left out after
    /// the separator before it was written.
    fn inline_table(&mut self, v: &Value<'_>) -> Result<(), String> {
        let (direct, sub) = split_with_nils(v)?;
        self.out.push('{');
        for (group, trailing) in [(&direct, !sub.is_empty()), (&sub, false)] {
            for (i, (k, value)) in group.iter().enumerate() {
                if kind(value)? == Kind::Nil {
                    continue;
                }
                self.key_value(&[k], value, true)?;
                if trailing || i + 1 != group.len() {
                    self.out.push_str(", ");
                }
            }
        }
        self.out.push('}');
        Ok(())
    }
}

type Entries<'v, 'a> = Vec<(&'v str, Value<'a>)>;

/// A map's entries without nils, plain values first, then tables.
fn split<'v, 'a>(v: &'v Value<'a>) -> Result<(Entries<'v, 'a>, Entries<'v, 'a>), String> {
    let (mut direct, mut sub) = split_with_nils(v)?;
    for group in [&mut direct, &mut sub] {
        group.retain(|(_, value)| !matches!(kind(value), Ok(Kind::Nil)));
    }
    Ok((direct, sub))
}

fn split_with_nils<'v, 'a>(v: &'v Value<'a>) -> Result<(Entries<'v, 'a>, Entries<'v, 'a>), String> {
    let mut direct = Vec::new();
    let mut sub = Vec::new();
    for (k, value) in v.map_entries() {
        match kind(&value)? {
            Kind::Hash | Kind::ArrayHash => sub.push((k, value)),
            _ => direct.push((k, value)),
        }
    }
    Ok((direct, sub))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` with `.0` added to a whole
/// number, `nan` and `inf` as TOML spells them.
fn float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    let s = f.to_string();
    if s.contains('.') { s } else { s + ".0" }
}

fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn bare_or_quoted(key: &str) -> String {
    if is_bare(key) {
        key.to_owned()
    } else {
        let mut out = String::new();
        quote(&mut out, key);
        out
    }
}

/// A table's dotted name.
fn dotted(key: &[&str]) -> String {
    key.iter()
        .map(|k| bare_or_quoted(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// A basic string with the encoder's escapes.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
