//! Template values: what Go's reflection would see, borrowed from the
//! render context where possible so large secrets are never copied.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{Map, Number, Value as Json};

use crate::vault::{Secret, SecretAuth};

/// How deeply maps, slices and secrets may nest in a value given to the
/// functions that walk values recursively: `toJSON`, `toYAML` and printing.
///
/// Values reach templates from Vault's responses and `parseJSON`, whose JSON
/// decoder stops at 128 levels, so every real value fits with room to spare.
/// The bound keeps those recursive walks within a small thread stack should
/// a deeper value ever be built: in a debug build they take up to 1.5 KiB of
/// stack per level (`toJSON` overflowed a 2 MiB thread at 1366 levels), so
/// 256 levels take under 400 KiB.
pub(crate) const MAX_VALUE_DEPTH: usize = 256;

/// A value nests deeper than [`MAX_VALUE_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value nested more than {MAX_VALUE_DEPTH} levels deep")]
pub(crate) struct TooDeep;

/// Template functions fail with a message.
impl From<TooDeep> for String {
    fn from(err: TooDeep) -> Self {
        err.to_string()
    }
}

/// A value during evaluation. Variants mirror the Go types consul-template
/// hands to the template, because printing and comparison depend on them.
/// No `Debug`: values hold secrets.
#[derive(Clone)]
pub(crate) enum Value<'a> {
    /// Go's invalid `reflect.Value` (a missing map key): prints `<no value>`.
    Missing,
    /// A nil `interface{}` (JSON null, a missing key under
    /// `missingkey=zero`). A pipeline turns it into [`Value::Missing`].
    Nil,
    /// A nil struct pointer of the named type: prints `<nil>`.
    NilPointer(&'static str),
    /// `bool`
    Bool(bool),
    /// `int` (template constants, `len`, lease durations).
    Int(i64),
    /// `float64` (template constants, `parseJSON` numbers).
    Float(f64),
    /// A borrowed `string`.
    Str(&'a str),
    /// An owned `string`.
    String(Rc<str>),
    /// `json.Number`: how consul-template decodes Vault's numbers.
    Number(&'a Number),
    /// `map[string]interface{}` borrowed from a secret.
    JsonMap(&'a Map<String, Json>),
    /// `[]interface{}` borrowed from a secret.
    JsonList(&'a [Json]),
    /// An owned `map[string]interface{}`.
    Map(Rc<BTreeMap<String, Value<'a>>>),
    /// An owned `[]interface{}`.
    List(Rc<Vec<Value<'a>>>),
    /// A borrowed `[]string` (`secrets`, `Warnings`).
    StrSlice(&'a [String]),
    /// An owned `[]string` (`split`).
    Strings(Rc<Vec<String>>),
    /// `*dependency.Secret`.
    Secret(&'a Secret),
    /// `*dependency.SecretAuth`: a write's `.Auth`.
    Auth(&'a SecretAuth),
    /// `dependency.PemEncoded` from `pkiCert`.
    Pem(Rc<Pem>),
    /// Sprig's `certificate` from its certificate generators.
    Certificate(Rc<Certificate>),
    /// `*template.Scratch`: the render's one `scratch` store, which the
    /// executor holds (its methods are called through it).
    Scratch,
}

/// consul-template's `Scratch`: values a template keeps by key while it
/// renders.
pub(crate) type Scratch<'a> = BTreeMap<String, Value<'a>>;

/// consul-template's `PemEncoded`: the parts of an issued certificate,
/// each ending in a newline.
#[derive(Default)]
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
    pub(crate) ca: String,
}

/// Sprig's `certificate`: a certificate and its private key, in PEM.
pub(crate) struct Certificate {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl<'a> Value<'a> {
    /// Wraps a JSON value from a secret the way consul-template's decoder
    /// (with `UseNumber`) types it.
    pub(crate) fn from_json(v: &'a Json) -> Self {
        match v {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n),
            Json::String(s) => Value::Str(s),
            Json::Array(a) => Value::JsonList(a),
            Json::Object(m) => Value::JsonMap(m),
        }
    }

    /// Converts owned JSON (from `parseJSON`) the way `json.Unmarshal`
    /// into `interface{}` does: numbers become `float64`.
    pub(crate) fn from_owned_json(v: Json) -> Value<'static> {
        match v {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            Json::String(s) => Value::String(s.into()),
            Json::Array(a) => {
                Value::List(Rc::new(a.into_iter().map(Value::from_owned_json).collect()))
            }
            Json::Object(m) => Value::Map(Rc::new(
                m.into_iter()
                    .map(|(k, v)| (k, Value::from_owned_json(v)))
                    .collect(),
            )),
        }
    }

    /// Checks that maps, slices and secrets nest at most [`MAX_VALUE_DEPTH`]
    /// deep. It walks the value with its own stack rather than by
    /// recursion, so any depth is safe to check; the recursive encoders and
    /// printers call it first.
    pub(crate) fn check_nesting(&self) -> Result<(), TooDeep> {
        let mut pending = vec![(self.clone(), 0usize)];
        while let Some((value, depth)) = pending.pop() {
            let children: Vec<Value<'a>> = match &value {
                Value::JsonMap(m) => m.values().map(Value::from_json).collect(),
                Value::Map(m) => m.values().cloned().collect(),
                Value::JsonList(l) => l.iter().map(Value::from_json).collect(),
                Value::List(l) => l.to_vec(),
                Value::Secret(s) => vec![Value::JsonMap(&s.data.0)],
                Value::Auth(a) => a.metadata.iter().map(Value::JsonMap).collect(),
                // Collections of strings: a level, with nothing below it.
                Value::StrSlice(_)
                | Value::Strings(_)
                | Value::Pem(_)
                | Value::Certificate(_)
                | Value::Scratch => Vec::new(),
                Value::Missing
                | Value::Nil
                | Value::NilPointer(_)
                | Value::Bool(_)
                | Value::Int(_)
                | Value::Float(_)
                | Value::Str(_)
                | Value::String(_)
                | Value::Number(_) => continue,
            };
            if depth >= MAX_VALUE_DEPTH {
                return Err(TooDeep);
            }
            pending.extend(children.into_iter().map(|child| (child, depth + 1)));
        }
        Ok(())
    }

    /// The string content of string-kinded values (`string`, `json.Number`).
    pub(crate) fn as_str(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Value::Str(s) => Some((*s).into()),
            Value::String(s) => Some((&**s).into()),
            Value::Number(n) => Some(n.to_string().into()),
            _ => None,
        }
    }

    /// Whether this is a Go `string` (not `json.Number`).
    pub(crate) fn is_plain_string(&self) -> bool {
        matches!(self, Value::Str(_) | Value::String(_))
    }

    /// The Go type name, as `%T` and error messages print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::NilPointer(t) => t,
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) | Value::String(_) => "string",
            Value::Number(_) => "json.Number",
            Value::JsonMap(_) | Value::Map(_) => "map[string]interface {}",
            Value::JsonList(_) | Value::List(_) => "[]interface {}",
            Value::StrSlice(_) | Value::Strings(_) => "[]string",
            Value::Secret(_) => "*dependency.Secret",
            Value::Auth(_) => "*dependency.SecretAuth",
            Value::Pem(_) => "dependency.PemEncoded",
            Value::Certificate(_) => "sprig.certificate",
            Value::Scratch => "*template.Scratch",
        }
    }

    /// Go's `isTrue`: the truth of a value in `if`, `with`, `and`, `or`, `not`.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil | Value::NilPointer(_) => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::String(s) => !s.is_empty(),
            Value::Number(_) => true,
            Value::JsonMap(m) => !m.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::JsonList(l) => !l.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::StrSlice(l) => !l.is_empty(),
            Value::Strings(l) => !l.is_empty(),
            Value::Secret(_)
            | Value::Auth(_)
            | Value::Pem(_)
            | Value::Certificate(_)
            | Value::Scratch => true,
        }
    }

    /// Length for `len`, or `None` when Go's `len` would fail.
    pub(crate) fn len(&self) -> Option<usize> {
        Some(match self {
            Value::Str(s) => s.len(),
            Value::String(s) => s.len(),
            Value::Number(n) => n.to_string().len(),
            Value::JsonMap(m) => m.len(),
            Value::Map(m) => m.len(),
            Value::JsonList(l) => l.len(),
            Value::List(l) => l.len(),
            Value::StrSlice(l) => l.len(),
            Value::Strings(l) => l.len(),
            _ => return None,
        })
    }

    /// Looks up a map key; `None` when this is not a map, `Some(None)` when
    /// the key is absent.
    pub(crate) fn map_get(&self, key: &str) -> Option<Option<Value<'a>>> {
        match self {
            Value::JsonMap(m) => Some(m.get(key).map(Value::from_json)),
            Value::Map(m) => Some(m.get(key).cloned()),
            _ => None,
        }
    }

    /// Whether this is a map.
    pub(crate) fn is_map(&self) -> bool {
        matches!(self, Value::JsonMap(_) | Value::Map(_))
    }

    /// Map entries in Go's sorted key order.
    pub(crate) fn map_entries(&self) -> Vec<(&str, Value<'a>)> {
        match self {
            Value::JsonMap(m) => {
                // serde_json's Map is a BTreeMap unless `preserve_order` is
                // on, so sort explicitly to be independent of that feature.
                let mut v: Vec<_> = m
                    .iter()
                    .map(|(k, v)| (k.as_str(), Value::from_json(v)))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(b.0));
                v
            }
            Value::Map(m) => m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
            _ => Vec::new(),
        }
    }

    /// Slice elements, or `None` when this is not a slice.
    pub(crate) fn list_items(&self) -> Option<Vec<Value<'a>>> {
        Some(match self {
            Value::JsonList(l) => l.iter().map(Value::from_json).collect(),
            Value::List(l) => l.as_ref().clone(),
            Value::StrSlice(l) => l.iter().map(|s| Value::String(s.as_str().into())).collect(),
            Value::Strings(l) => l.iter().map(|s| Value::String(s.as_str().into())).collect(),
            _ => return None,
        })
    }

    /// Element `i` of a slice, or `None` when this is not a slice.
    pub(crate) fn list_get(&self, i: usize) -> Option<Option<Value<'a>>> {
        Some(match self {
            Value::JsonList(l) => l.get(i).map(Value::from_json),
            Value::List(l) => l.get(i).cloned(),
            Value::StrSlice(l) => l.get(i).map(|s| Value::String(s.as_str().into())),
            Value::Strings(l) => l.get(i).map(|s| Value::String(s.as_str().into())),
            _ => return None,
        })
    }

    /// The field names, in declaration order, of the Go structs values
    /// stand for; `None` for the other values.
    pub(crate) fn struct_fields(&self) -> Option<&'static [&'static str]> {
        Some(match self {
            Value::Secret(_) => &[
                "RequestID",
                "LeaseID",
                "LeaseDuration",
                "Renewable",
                "Data",
                "Warnings",
                "Auth",
                "WrapInfo",
            ],
            Value::Auth(_) => &[
                "ClientToken",
                "Accessor",
                "Policies",
                "Metadata",
                "LeaseDuration",
                "Renewable",
            ],
            Value::Pem(_) => &["Cert", "Key", "CA"],
            Value::Certificate(_) => &["Cert", "Key"],
            // Its fields are unexported: encoders see none.
            Value::Scratch => &[],
            _ => return None,
        })
    }

    /// A struct field of `*dependency.Secret`, `*dependency.SecretAuth`,
    /// `PemEncoded` or sprig's `certificate`.
    pub(crate) fn struct_field(&self, name: &str) -> Option<Value<'a>> {
        match self {
            Value::Secret(s) => Some(match name {
                "RequestID" => Value::Str(&s.request_id),
                "LeaseID" => Value::Str(&s.lease_id),
                "LeaseDuration" => Value::Int(i64::try_from(s.lease_duration).unwrap_or(i64::MAX)),
                "Renewable" => Value::Bool(s.renewable),
                "Data" => Value::JsonMap(&s.data.0),
                "Warnings" => Value::StrSlice(&s.warnings),
                "Auth" => match &s.auth {
                    Some(auth) => Value::Auth(auth),
                    None => Value::NilPointer("*dependency.SecretAuth"),
                },
                "WrapInfo" => Value::NilPointer("*dependency.SecretWrapInfo"),
                _ => return None,
            }),
            Value::Auth(a) => Some(match name {
                "ClientToken" => Value::Str(&a.client_token),
                "Accessor" => Value::Str(&a.accessor),
                "Policies" => Value::StrSlice(&a.policies),
                "Metadata" => match &a.metadata {
                    Some(m) => Value::JsonMap(m),
                    None => Value::Map(Rc::default()),
                },
                "LeaseDuration" => Value::Int(i64::try_from(a.lease_duration).unwrap_or(i64::MAX)),
                "Renewable" => Value::Bool(a.renewable),
                _ => return None,
            }),
            Value::Pem(p) => Some(match name {
                "Cert" => Value::String(p.cert.as_str().into()),
                "Key" => Value::String(p.key.as_str().into()),
                "CA" => Value::String(p.ca.as_str().into()),
                "Data" => self.clone(),
                _ => return None,
            }),
            Value::Certificate(c) => Some(match name {
                "Cert" => Value::String(c.cert.as_str().into()),
                "Key" => Value::String(c.key.as_str().into()),
                _ => return None,
            }),
            _ => None,
        }
    }
}
