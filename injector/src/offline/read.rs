//! Reading a manifest stream as kubectl does, noting where things are written.
//!
//! Documents are read as kubectl reads them, which is YAML 1.1 through Go's
//! `yaml.v2`: an integer with a leading `0` is octal (`defaultMode: 0754` is
//! 492), and a key given twice keeps its later value. Every repeated key is
//! noted, since the earlier value is silently lost.
//!
//! Paths name a place in a document as kubectl's JSONPath writes it:
//! `spec.template.metadata.annotations['vault.hashicorp.com/role']`,
//! `items.0.metadata`.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{DuplicateKeyPolicy, Location, MessageFormatter, Spanned, UserMessageFormatter};

/// A place in the input stream: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line in the whole stream.
    pub line: u64,
    /// 1-based column, in characters.
    pub column: u64,
}

/// One document of a YAML stream: its `---` line (empty for the first) and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Document<'a> {
    /// The `---` line that starts it, with its line break.
    pub(super) separator: &'a str,
    /// The document's text.
    pub(super) body: &'a str,
    /// Lines of the stream before `body`.
    pub(super) lines_before: u64,
}

/// Splits a YAML stream at its `---` lines. A document marker starts at
/// column 0, where the content of a block scalar never is.
pub(super) fn split_documents(yaml: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut separator = "";
    let mut body_start = 0;
    let mut lines_before = 0;
    let mut offset = 0;
    for (index, line) in (0..).zip(yaml.split_inclusive('\n')) {
        let is_marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
        if is_marker {
            docs.push(Document {
                separator,
                body: &yaml[body_start..offset],
                lines_before,
            });
            separator = &yaml[offset..offset + line.len()];
            body_start = offset + line.len();
            lines_before = index + 1;
        }
        offset += line.len();
    }
    docs.push(Document {
        separator,
        body: &yaml[body_start..],
        lines_before,
    });
    docs
}

/// A document that is not YAML: what the parser said, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreadable {
    /// Where the parser stopped, or the document's first line.
    pub(super) position: Position,
    /// What the parser said.
    pub(super) message: String,
}

/// A document's value, and where its parts are written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Read {
    /// The document as JSON.
    pub(super) value: Value,
    /// Where things are.
    pub(super) notes: Notes,
}

/// Where a document's objects and annotations are, and its repeated keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Notes {
    /// The first key of each object (the document, and each `items` entry
    /// of a List), and each key of an `annotations` map, by path.
    positions: HashMap<String, Position>,
    /// Every mapping key given more than once: its path and where it is
    /// given again.
    pub(super) repeated: Vec<(String, Position)>,
    lines_before: u64,
}

impl Notes {
    /// Where the key at `path` is written, if it is an object or an annotation.
    pub(super) fn position(&self, path: &str) -> Option<Position> {
        self.positions.get(path).copied()
    }

    fn note(&mut self, path: String, at: &Location) {
        let position = self.position_of(at);
        self.positions.entry(path).or_insert(position);
    }

    fn position_of(&self, at: &Location) -> Position {
        Position {
            line: self.lines_before + at.line(),
            column: at.column(),
        }
    }
}

/// Reads one YAML document as kubectl does (see the module doc), or `None`
/// when it holds only comments.
pub(super) fn read_document(doc: &Document<'_>) -> Result<Option<Read>, Unreadable> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
    };
    let read: Option<KubectlDocument> = serde_saphyr::from_str_with_options(doc.body, options)
        .map_err(|e| {
            let at = e.location();
            Unreadable {
                position: Position {
                    line: doc.lines_before + at.map_or(1, |at| at.line().max(1)),
                    column: at.map_or(1, |at| at.column().max(1)),
                },
                // The position is reported on its own, in the stream's lines.
                message: UserMessageFormatter
                    .format_message(e.without_snippet())
                    .into_owned(),
            }
        })?;
    Ok(read.map(|read| {
        let mut notes = read.notes;
        notes.lines_before = doc.lines_before;
        for (_, position) in &mut notes.repeated {
            position.line += doc.lines_before;
        }
        notes.positions = notes
            .positions
            .into_iter()
            .map(|(path, position)| {
                let line = position.line + doc.lines_before;
                (path, Position { line, ..position })
            })
            .collect();
        Read {
            value: read.value,
            notes,
        }
    }))
}

/// The path of the value under `key` (a map key, or a list index) of the
/// value at `path`.
pub(super) fn child_path(path: &str, key: &str) -> String {
    let plain = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}['{key}']"),
    }
}

/// Whether `path` is where an object sits: the document itself, or an
/// `items` entry of a List in it (`items.0`, `items.3.items.1`).
pub(super) fn is_object_path(path: &str) -> bool {
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').collect()
    };
    segments.len().is_multiple_of(2)
        && segments.chunks(2).all(|pair| {
            pair[0] == "items" && !pair[1].is_empty() && pair[1].bytes().all(|b| b.is_ascii_digit())
        })
}

/// A document's value and where its parts are.
struct KubectlDocument {
    value: Value,
    notes: Notes,
}

impl<'de> Deserialize<'de> for KubectlDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut notes = Notes::default();
        let value = Tracked {
            path: String::new(),
            notes: &mut notes,
        }
        .deserialize(deserializer)?;
        Ok(Self { value, notes })
    }
}

/// Builds a JSON value from YAML, noting where objects and annotations are
/// and which mapping keys are repeated. Nesting is bounded by the YAML
/// parser's depth budget.
struct Tracked<'a> {
    path: String,
    notes: &'a mut Notes,
}

impl Tracked<'_> {
    /// The value under `key` (a map key, or a list index) of this one.
    fn child(&mut self, key: &str) -> Tracked<'_> {
        Tracked {
            path: child_path(&self.path, key),
            notes: self.notes,
        }
    }

    /// Whether this is an `annotations` map, whose keys are noted.
    fn is_annotations(&self) -> bool {
        self.path == "annotations" || self.path.ends_with(".annotations")
    }
}

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tracked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&items.len().to_string()))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        if is_object_path(&self.path) {
            // The object is where its first key is; only that one is noted.
            let path = self.path.clone();
            if let Some(key) = map.next_key::<Spanned<String>>()? {
                self.notes.note(path, &key.referenced);
                let value = map.next_value_seed(self.child(&key.value))?;
                out.insert(key.value, value);
            }
        }
        let annotations = self.is_annotations();
        while let Some(Spanned {
            value: key,
            referenced: at,
            ..
        }) = map.next_key::<Spanned<String>>()?
        {
            let path = self.child(&key).path;
            if annotations {
                self.notes.note(path.clone(), &at);
            }
            let value = map.next_value_seed(self.child(&key))?;
            if out.insert(key, value).is_some() {
                let position = self.notes.position_of(&at);
                self.notes.repeated.push((path, position));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(yaml: &str) -> Read {
        read_document(&split_documents(yaml)[0])
            .expect("parses")
            .expect("a document")
    }

    #[test]
    fn splits_at_column_zero_markers_only() {
        let yaml = "a: 1\n---\nb: |\n  ---\n--- # c\nc: 3\n";
        let docs = split_documents(yaml);
        let parts: Vec<(&str, &str, u64)> = docs
            .iter()
            .map(|d| (d.separator, d.body, d.lines_before))
            .collect();
        assert_eq!(
            parts,
            [
                ("", "a: 1\n", 0),
                ("---\n", "b: |\n  ---\n", 2),
                ("--- # c\n", "c: 3\n", 5)
            ]
        );
    }

    #[test]
    fn reads_yaml_1_1_octal_as_kubectl_does() {
        let doc = read("mode: 0754\nhex: 0x1f\ndecimal: 754\nquoted: '0754'\n");
        assert_eq!(
            doc.value,
            json!({"mode": 492, "hex": 31, "decimal": 754, "quoted": "0754"})
        );
        assert!(doc.notes.repeated.is_empty());
    }

    #[test]
    fn a_repeated_key_keeps_the_later_value_and_is_named_where_repeated() {
        let yaml = "metadata:\n  annotations:\n    vault.hashicorp.com/role: a\n    vault.hashicorp.com/role: b\nspec:\n  containers:\n  - name: first\n    name: second\n";
        let doc = read(yaml);
        assert_eq!(
            doc.value["metadata"]["annotations"]["vault.hashicorp.com/role"],
            "b"
        );
        assert_eq!(doc.value["spec"]["containers"][0]["name"], "second");
        assert_eq!(
            doc.notes.repeated,
            [
                (
                    "metadata.annotations['vault.hashicorp.com/role']".to_owned(),
                    Position { line: 4, column: 5 }
                ),
                (
                    "spec.containers.0.name".to_owned(),
                    Position { line: 8, column: 5 }
                )
            ]
        );
    }

    #[test]
    fn notes_objects_and_annotations_in_the_whole_stream() {
        let yaml = "kind: ConfigMap\n---\n# a list\nkind: List\nitems:\n- kind: Pod\n  metadata:\n    annotations: {a: \"1\", b: \"2\"}\n";
        let docs = split_documents(yaml);
        let doc = read_document(&docs[1])
            .expect("parses")
            .expect("a document");
        let at = |path: &str| doc.notes.position(path).map(|p| (p.line, p.column));
        assert_eq!(at(""), Some((4, 1)));
        assert_eq!(at("items.0"), Some((6, 3)));
        assert_eq!(at("items.0.metadata.annotations.b"), Some((8, 27)));
        assert_eq!(at("items.0.metadata"), None);
    }

    #[test]
    fn names_where_a_document_stops_being_yaml() {
        let docs = split_documents("kind: ConfigMap\n---\nkind: [Pod\n");
        let err = read_document(&docs[1]).expect_err("not YAML");
        assert_eq!(err.position.line, 3, "{err:?}");
    }

    #[test]
    fn object_paths_are_the_document_and_list_items() {
        for path in ["", "items.0", "items.12.items.3"] {
            assert!(is_object_path(path), "{path}");
        }
        for path in ["items", "metadata", "items.x", "items.0.spec", "a.0"] {
            assert!(!is_object_path(path), "{path}");
        }
    }

    #[test]
    fn an_empty_document_is_none() {
        let docs = split_documents("# only a comment\n");
        assert_eq!(read_document(&docs[0]), Ok(None));
    }
}
