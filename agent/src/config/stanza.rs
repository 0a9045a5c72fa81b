//! Reading one stanza of the generic tree, key by key, with errors that name
//! the stanza path and key.
//!
//! A [`Stanza`] hands out its keys as they are asked for; [`Stanza::finish`]
//! then reports whatever is left as unsupported or unknown, so no key is ever
//! silently ignored. Where `bao agent` ignores keys it does not know (the
//! stanzas it decodes into a fixed struct or hands to an auth method or
//! sink as a map), [`Stanza::finish_lenient`] accepts them as it does, with a
//! warning naming each one.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::warn;

use super::{Error, Result, TemplateSource};

/// The keys of one stanza not read yet, and where the stanza is.
pub(super) struct Stanza {
    path: String,
    keys: Map<String, Value>,
    /// Every key asked for, present or not: the keys this stanza knows,
    /// to suggest one for a key that is not.
    asked: Vec<String>,
}

impl Stanza {
    /// A stanza at `path` (`""` for the top level); `value` must be an object.
    pub(super) fn new(path: String, value: Value) -> Result<Stanza> {
        match value {
            Value::Object(keys) => Ok(Stanza {
                path,
                keys,
                asked: Vec::new(),
            }),
            other => Err(invalid(
                &path,
                format!("expected a block, found {}", kind(&other)),
            )),
        }
    }

    /// The same keys under another path, e.g. once a block's type is known.
    pub(super) fn renamed(self, path: String) -> Stanza {
        Stanza { path, ..self }
    }

    /// Where this stanza is, e.g. `template[2]`.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The path of `key` in this stanza, e.g. `template[2].perms`.
    pub(super) fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error about this stanza as a whole.
    pub(super) fn error(&self, message: impl Into<String>) -> Error {
        invalid(&self.path, message)
    }

    /// Whether `key` is present and not read yet.
    pub(super) fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// Removes and returns `key`'s raw value. `null` counts as absent.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        self.asked.push(key.to_owned());
        self.keys.remove(key).filter(|value| !value.is_null())
    }

    /// The only key left, if there is exactly one: a labelled block such as
    /// `{"kubernetes": {...}}`.
    pub(super) fn take_only_key(&mut self) -> Option<(String, Value)> {
        if self.keys.len() != 1 {
            return None;
        }
        let key = self.keys.keys().next()?.clone();
        let value = self.keys.remove(&key)?;
        Some((key, value))
    }

    /// An optional string; `""` counts as absent, as in Vault Agent.
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>> {
        let at = self.at(key);
        let value = self.take(key).map(|v| string(v, &at)).transpose()?;
        Ok(value.filter(|s| !s.is_empty()))
    }

    /// An optional list of strings.
    pub(super) fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| string(item, &at))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(invalid(
                &at,
                format!("expected a list of strings, found {}", kind(&other)),
            )),
        }
    }

    /// A string that must be present.
    pub(super) fn required_string(&mut self, key: &str) -> Result<String> {
        self.string(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional file path.
    pub(super) fn path_buf(&mut self, key: &str) -> Result<Option<PathBuf>> {
        Ok(self.string(key)?.map(PathBuf::from))
    }

    /// A file path that must be present.
    pub(super) fn required_path(&mut self, key: &str) -> Result<PathBuf> {
        self.required_string(key).map(PathBuf::from)
    }

    /// The error for a required key that is absent; a key not read yet that
    /// looks like a typo of it is named instead.
    pub(super) fn missing(&self, key: &str) -> Error {
        match self.keys.keys().find(|k| edit_distance(k, key) <= 2) {
            Some(typo) => self.error(format!("unknown key {typo:?} (did you mean {key:?}?)")),
            None => self.error(format!("missing required key {key:?}")),
        }
    }

    /// A boolean, `default` when absent.
    pub(super) fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(expected(&self.at(key), "a boolean", &other)),
        }
    }

    /// A boolean that may also be written as a string, as Vault's auth
    /// method configs accept (vault-k8s passes annotation values as strings).
    pub(super) fn bool_or_string(&mut self, key: &str, default: bool) -> Result<bool> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) => {
                super::parse_bool(&s).ok_or_else(|| invalid(&at, format!("{s:?} is not a boolean")))
            }
            Some(other) => Err(expected(&at, "a boolean", &other)),
        }
    }

    /// A duration as Vault reads it: an integer number of seconds, or a Go
    /// duration string ("90s", "1h30m", "250ms"); `default` when absent or "".
    pub(super) fn duration(&mut self, key: &str, default: Duration) -> Result<Duration> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(default),
            Some(Value::String(s)) if s.is_empty() => Ok(default),
            Some(Value::String(s)) => {
                parse_duration(&s).ok_or_else(|| invalid(&at, format!("{s:?} is not a duration")))
            }
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .map(Duration::from_secs)
                .ok_or_else(|| invalid(&at, format!("{n} is not a duration"))),
            Some(other) => Err(expected(&at, "a duration", &other)),
        }
    }

    /// A template file mode: an octal string ("0640") or an integer (in HCL,
    /// `0640` is octal as in Vault Agent; in JSON, integers are decimal).
    pub(super) fn file_mode(&mut self, key: &str, default: u32) -> Result<u32> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(default),
            Some(Value::String(s)) => u32::from_str_radix(&s, 8)
                .ok()
                .filter(|mode| *mode <= 0o7777)
                .ok_or_else(|| invalid(&at, format!("{s:?} is not an octal file mode"))),
            Some(Value::Number(n)) => integer_mode(&n, &at),
            Some(other) => Err(expected(&at, "a file mode", &other)),
        }
    }

    /// A file mode that Vault Agent only accepts as an integer (the token
    /// sink's `mode`): a string here would stop `bao agent` from starting.
    pub(super) fn integer_file_mode(&mut self, key: &str, default: u32) -> Result<u32> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(default),
            Some(Value::Number(n)) => integer_mode(&n, &at),
            Some(other) => Err(invalid(
                &at,
                format!(
                    "expected an integer file mode (0600 in HCL, 384 in JSON), found {}",
                    kind(&other)
                ),
            )),
        }
    }

    /// An optional integer.
    pub(super) fn integer(&mut self, key: &str) -> Result<Option<i64>> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(&at, format!("{n} is not an integer"))),
            Some(other) => Err(expected(&at, "an integer", &other)),
        }
    }

    /// A template's `contents` or `source`: exactly one of them.
    pub(super) fn template_source(&mut self) -> Result<TemplateSource> {
        match (self.string("contents")?, self.path_buf("source")?) {
            (Some(contents), None) => Ok(TemplateSource::Contents(contents)),
            (None, Some(path)) => Ok(TemplateSource::File(path)),
            (None, None) => Err(self.error("needs one of \"contents\" or \"source\"")),
            (Some(_), Some(_)) => Err(self.error("takes only one of \"contents\" and \"source\"")),
        }
    }

    /// A template's `left_delimiter` and `right_delimiter`, `{{` and `}}`
    /// by default.
    pub(super) fn delimiters(&mut self) -> Result<(String, String)> {
        let left = self.string("left_delimiter")?;
        let right = self.string("right_delimiter")?;
        Ok((
            left.unwrap_or_else(|| "{{".to_owned()),
            right.unwrap_or_else(|| "}}".to_owned()),
        ))
    }

    /// A template's `function_denylist` and its older name
    /// `function_blacklist`, together.
    pub(super) fn function_denylist(&mut self) -> Result<Vec<String>> {
        Ok([
            self.function_names("function_denylist")?,
            self.function_names("function_blacklist")?,
        ]
        .concat())
    }

    /// One of those keys: a list of names, or a string that Vault Agent's
    /// decoder splits at commas.
    fn function_names(&mut self, key: &str) -> Result<Vec<String>> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::String(names)) if names.is_empty() => Ok(Vec::new()),
            Some(Value::String(names)) => Ok(names.split(',').map(str::to_owned).collect()),
            Some(Value::Array(names)) => names.into_iter().map(|name| string(name, &at)).collect(),
            Some(other) => Err(invalid(
                &at,
                format!("expected a list of function names, found {}", kind(&other)),
            )),
        }
    }

    /// A stanza that may appear at most once: an object, or a list of one
    /// object (how a single HCL block arrives).
    pub(super) fn single(&mut self, key: &str) -> Result<Option<Stanza>> {
        let at = self.at(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(mut items)) => match items.len() {
                0 => Ok(None),
                1 => Stanza::new(at, items.remove(0)).map(Some),
                n => Err(invalid(
                    &at,
                    format!("given {n} times; only one is allowed"),
                )),
            },
            Some(value) => Stanza::new(at, value).map(Some),
        }
    }

    /// A stanza whose last entry wins when it is given more than once, as
    /// in consul-template (a template's `wait` and `exec`).
    pub(super) fn last(&mut self, key: &str) -> Result<Option<Stanza>> {
        let at = self.at(key);
        match self.take(key) {
            Some(Value::Array(items)) => items
                .into_iter()
                .next_back()
                .map(|item| Stanza::new(at, item))
                .transpose(),
            Some(value) => Stanza::new(at, value).map(Some),
            None => Ok(None),
        }
    }

    /// Every key left, each as the blocks given under it, with paths
    /// `path.key[i]`.
    pub(super) fn into_blocks(mut self) -> Result<Vec<Stanza>> {
        let keys: Vec<String> = self.keys.keys().cloned().collect();
        let mut blocks = Vec::new();
        for key in keys {
            blocks.extend(self.repeated(&key)?);
        }
        Ok(blocks)
    }

    /// Every key left with each block given under it: the labelled blocks
    /// of an entry such as `env_template "A" { }`, which arrives as
    /// `{"A": {..}}`.
    pub(super) fn into_labelled(mut self) -> Result<Vec<(String, Stanza)>> {
        let keys: Vec<String> = self.keys.keys().cloned().collect();
        let mut labelled = Vec::new();
        for key in keys {
            for block in self.repeated(&key)? {
                labelled.push((key.clone(), block));
            }
        }
        Ok(labelled)
    }

    /// A stanza that may repeat: an object or a list of objects. Each gets
    /// the path `key[i]`.
    pub(super) fn repeated(&mut self, key: &str) -> Result<Vec<Stanza>> {
        let at = self.at(key);
        let items = match self.take(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(value) => vec![value],
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Stanza::new(format!("{at}[{i}]"), item))
            .collect()
    }

    /// Ends reading: a key still present is an error. Keys in `unsupported`
    /// are Vault Agent settings keyhole does not implement; others are unknown.
    pub(super) fn finish(self, unsupported: &[&str]) -> Result<()> {
        self.refuse_unsupported(unsupported)?;
        match self.keys.keys().next() {
            None => Ok(()),
            Some(key) => Err(self.error(format!("unknown key {key:?}"))),
        }
    }

    /// Ends reading a stanza in which `bao agent` ignores keys it does not
    /// know: a key in `unsupported` is an error, as in [`Stanza::finish`];
    /// any other key left is accepted with a warning, which gives the
    /// reason from `ignored` for a key Vault Agent users are known to write.
    pub(super) fn finish_lenient(
        self,
        unsupported: &[&str],
        ignored: &[(&str, &str)],
    ) -> Result<()> {
        self.refuse_unsupported(unsupported)?;
        for key in self.keys.keys() {
            let at = self.at(key);
            match ignored.iter().find(|(name, _)| name == key) {
                Some((_, reason)) => warn!("{at} is ignored: {reason}"),
                None => match self.asked.iter().find(|k| edit_distance(k, key) <= 2) {
                    Some(known) => warn!(
                        "{at} is ignored, as bao agent ignores keys it does not know (did you mean {known:?}?)"
                    ),
                    None => warn!("{at} is ignored, as bao agent ignores keys it does not know"),
                },
            }
        }
        Ok(())
    }

    /// An error for the first key left that is in `unsupported`: Vault
    /// Agent settings keyhole does not implement yet.
    pub(super) fn refuse_unsupported(&self, unsupported: &[&str]) -> Result<()> {
        match self
            .keys
            .keys()
            .find(|key| unsupported.contains(&key.as_str()))
        {
            Some(key) => Err(invalid(
                &self.at(key),
                "keyhole does not support this Vault Agent setting",
            )),
            None => Ok(()),
        }
    }
}

/// A string value.
pub(super) fn string(value: Value, at: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(expected(at, "a string", &other)),
    }
}

fn integer_mode(n: &serde_json::Number, at: &str) -> Result<u32> {
    n.as_u64()
        .and_then(|mode| u32::try_from(mode).ok())
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| invalid(at, format!("{n} is not a file mode")))
}

/// Parses a duration the way Vault's `parseutil.ParseDurationSecond` does:
/// digits alone are seconds, otherwise a Go duration such as `1h30m`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let ns = crate::duration::parse_go(text, true)?;
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

/// Levenshtein distance, to spot typos of key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The name of a JSON value's type, for "expected X, found Y".
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a block",
    }
}

fn expected(at: &str, what: &str, found: &Value) -> Error {
    invalid(at, format!("expected {what}, found {}", kind(found)))
}

/// An [`Error::Invalid`] at `at`.
pub(super) fn invalid(at: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        at: at.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stanza(value: Value) -> Stanza {
        Stanza::new("t".to_owned(), value).expect("is accepted")
    }

    #[test]
    fn parses_go_durations_and_plain_seconds() {
        let cases = [
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("1.5s", 1_500),
            ("45", 45_000),
            ("2d", 172_800_000),
            ("0", 0),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in ["", "s", "1x", "-1s", "1h30", ".s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_integer_durations_as_seconds() {
        let mut s = stanza(json!({"a": 30, "b": 2.0}));
        assert_eq!(
            s.duration("a", Duration::ZERO).expect("is accepted"),
            Duration::from_secs(30)
        );
        assert_eq!(
            s.duration("b", Duration::ZERO).expect("is accepted"),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn names_the_key_of_a_bad_duration() {
        let mut s = stanza(json!({"wait": "soon"}));
        let err = s.duration("wait", Duration::ZERO).expect_err("is rejected");
        assert_eq!(err.to_string(), r#"t.wait: "soon" is not a duration"#);
    }

    #[test]
    fn reads_octal_string_modes() {
        let mut s = stanza(json!({"a": "0600", "b": "644", "c": 420, "d": "0999"}));
        assert_eq!(s.file_mode("a", 0).expect("is accepted"), 0o600);
        assert_eq!(s.file_mode("b", 0).expect("is accepted"), 0o644);
        assert_eq!(s.file_mode("c", 0).expect("is accepted"), 0o644);
        assert_eq!(
            s.file_mode("d", 0).expect_err("is rejected").to_string(),
            r#"t.d: "0999" is not an octal file mode"#
        );
    }

    #[test]
    fn rejects_wrong_types_naming_both() {
        let mut s = stanza(json!({"flag": "yes", "name": 3}));
        assert_eq!(
            s.bool("flag", false).expect_err("is rejected").to_string(),
            "t.flag: expected a boolean, found a string"
        );
        assert_eq!(
            s.string("name").expect_err("is rejected").to_string(),
            "t.name: expected a string, found a number"
        );
    }

    #[test]
    fn names_a_typo_of_a_missing_required_key() {
        let mut s = stanza(json!({"destnation": "/a", "rol": "x"}));
        assert_eq!(
            s.required_string("destination")
                .expect_err("is rejected")
                .to_string(),
            r#"t: unknown key "destnation" (did you mean "destination"?)"#
        );
        assert_eq!(
            s.required_string("path")
                .expect_err("is rejected")
                .to_string(),
            r#"t: missing required key "path""#
        );
    }

    #[test]
    fn measures_edit_distance() {
        assert_eq!(edit_distance("destnation", "destination"), 1);
        assert_eq!(edit_distance("role", "rol"), 1);
        assert_eq!(edit_distance("path", "perms"), 4);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn finish_reports_unknown_and_unsupported_keys() {
        let err = stanza(json!({"destnation": "x"}))
            .finish(&[])
            .expect_err("is rejected");
        assert_eq!(err.to_string(), r#"t: unknown key "destnation""#);
        let err = stanza(json!({"backup": true}))
            .finish(&["backup"])
            .expect_err("is rejected");
        assert_eq!(
            err.to_string(),
            "t.backup: keyhole does not support this Vault Agent setting"
        );
    }
}
