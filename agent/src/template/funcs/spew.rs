//! consul-template's `spew_*` functions: go-spew's `Sdump` and `Sprintf`.
//!
//! `spew_sdump` writes each value as go-spew's default config dumps it: the
//! Go type, the length (and a slice's capacity), then the value, nested
//! maps and slices one space deeper. Written here because the format is
//! go-spew's own. What keyhole cannot reproduce:
//! - a Go map's order, which is random: keyhole writes keys in its own order;
//! - pointers (`*dependency.Secret` and the like): keyhole writes the type
//!   and `{...}` where go-spew writes an address and the struct's fields;
//! - the capacity of a slice built by appending past 256 elements.
//!
//! `spew_dump` and `spew_printf` print to the agent's standard output,
//! which is its log; keyhole discards what they print, since it may be a
//! secret, and says so in a log line. Both render as the empty string, as
//! in Vault Agent.

use tracing::warn;

use super::super::print::{float_g, quote, sprintf};
use serde_json::Value as Json;

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// `spew_sdump a...`: each value dumped on its own line.
pub(super) fn sdump<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut out = String::new();
    for arg in args {
        arg.check_nesting()?;
        Dump::new(&mut out).value(arg);
        out.push('\n');
    }
    Ok(owned(out))
}

/// `spew_sprintf format a...`: `fmt.Sprintf`, which go-spew's formatter
/// matches for every value a template holds.
pub(super) fn sprintf_fn<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(sprintf(string_arg(&args[0])?, &args[1..])?))
}

/// `spew_dump a...`: nothing is written.
pub(super) fn dump<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    discard(args)
}

/// `spew_printf format a...`: nothing is written.
pub(super) fn printf<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    string_arg(&args[0])?;
    discard(&args[1..])
}

fn discard<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    warn!(
        values = args.len(),
        "spew_dump/spew_printf output discarded: it would write template values, which may \
         be secrets, to the agent's log"
    );
    Ok(owned(String::new()))
}

/// go-spew's dump state: the output and the nesting depth.
struct Dump<'o> {
    out: &'o mut String,
    depth: usize,
}

impl<'o> Dump<'o> {
    fn new(out: &'o mut String) -> Self {
        Self { out, depth: 0 }
    }

    fn indent(&mut self) {
        self.out.extend(std::iter::repeat_n(' ', self.depth));
    }

    /// `(type) `, then `(len=N cap=M) ` where non-zero.
    fn header(&mut self, ty: &str, len: usize, cap: usize) {
        self.out.push('(');
        self.out.push_str(ty);
        self.out.push_str(") ");
        match (len, cap) {
            (0, 0) => {}
            (0, cap) => self.out.push_str(&format!("(cap={cap}) ")),
            (len, 0) => self.out.push_str(&format!("(len={len}) ")),
            (len, cap) => self.out.push_str(&format!("(len={len} cap={cap}) ")),
        }
    }

    fn string(&mut self, ty: &str, s: &str) {
        self.header(ty, s.len(), 0);
        quote(self.out, s, false);
    }

    /// A value, without indenting its first line (the caller did).
    fn value(&mut self, v: &Value<'_>) {
        match v {
            Value::Missing | Value::Nil => self.out.push_str("(interface {}) <nil>"),
            Value::NilPointer(ty) => self.out.push_str(&format!("(*{ty})(<nil>)")),
            Value::Bool(b) => {
                self.header("bool", 0, 0);
                self.out.push_str(if *b { "true" } else { "false" });
            }
            Value::Int(i) => {
                self.header("int", 0, 0);
                self.out.push_str(&i.to_string());
            }
            Value::Float(f) => {
                self.header("float64", 0, 0);
                self.out.push_str(&float_g(*f, 6));
            }
            Value::Str(s) => self.string("string", s),
            Value::String(s) => self.string("string", s),
            // json.Number's String method prints it bare.
            Value::Number(n) => {
                let text = n.to_string();
                self.header("json.Number", text.len(), 0);
                self.out.push_str(&text);
            }
            Value::JsonMap(m) => self.map(
                m.len(),
                m.iter().map(|(k, v)| (k.as_str(), Value::from_json(v))),
            ),
            Value::Map(m) => self.map(m.len(), m.iter().map(|(k, v)| (k.as_str(), v.clone()))),
            // encoding/json appends, so its capacity is the next power of two.
            Value::JsonList(l) => self.list(
                "[]interface {}",
                decoded_cap(l),
                l.iter().map(Value::from_json),
            ),
            Value::List(l) => self.list("[]interface {}", l.len(), l.iter().cloned()),
            Value::StrSlice(l) => self.list("[]string", l.len(), l.iter().map(|s| Value::Str(s))),
            Value::Strings(l) => self.list("[]string", l.len(), l.iter().map(|s| Value::Str(s))),
            Value::Secret(_) => self.out.push_str("(*dependency.Secret)({...})"),
            Value::Auth(_) => self.out.push_str("(*dependency.SecretAuth)({...})"),
            Value::Pem(_) => self.out.push_str("(dependency.PemEncoded) {...}"),
            Value::Certificate(_) => self.out.push_str("(sprig.certificate) {...}"),
            Value::Scratch => self.out.push_str("(*template.Scratch)({...})"),
        }
    }

    fn map<'v>(&mut self, len: usize, entries: impl Iterator<Item = (&'v str, Value<'v>)>) {
        self.header("map[string]interface {}", len, 0);
        self.out.push_str("{\n");
        self.depth += 1;
        for (i, (key, value)) in entries.enumerate() {
            self.indent();
            self.string("string", key);
            self.out.push_str(": ");
            self.value(&value);
            self.out.push_str(if i + 1 < len { ",\n" } else { "\n" });
        }
        self.depth -= 1;
        self.indent();
        self.out.push('}');
    }

    fn list<'v>(&mut self, ty: &str, cap: usize, items: impl ExactSizeIterator<Item = Value<'v>>) {
        let len = items.len();
        self.header(ty, len, cap);
        self.out.push_str("{\n");
        self.depth += 1;
        for (i, item) in items.enumerate() {
            self.indent();
            self.value(&item);
            self.out.push_str(if i + 1 < len { ",\n" } else { "\n" });
        }
        self.depth -= 1;
        self.indent();
        self.out.push('}');
    }
}

/// The capacity `encoding/json` leaves on a decoded `[]interface{}`: it
/// appends one element at a time, and Go doubles a small slice's capacity.
fn decoded_cap(list: &[Json]) -> usize {
    match list.len() {
        0 => 0,
        len if len <= 256 => len.next_power_of_two(),
        len => len,
    }
}
