//! Merging the trees of several config files, as `bao agent -config=A
//! -config=B` does (`Config.Merge` in Vault Agent).
//!
//! Vault Agent merges decoded configs stanza by stanza: a stanza in a later
//! file replaces the whole stanza of an earlier one, `template` and
//! `listener` blocks add up, `exit_after_auth` is on when any file turns it
//! on, and `pid_file` is the last non-empty one. Merging the generic trees
//! before they are read gives the same result and leaves one reader.

use serde_json::{Map, Value};

use super::{Error, Result};

/// Top-level blocks that add up across files instead of replacing.
const APPENDED: &[&str] = &["template", "listener", "env_template"];

/// Merges `next` into `base`, `next` being the later file.
pub(super) fn merge(base: Value, next: Value) -> Result<Value> {
    let (Value::Object(mut base), Value::Object(next)) = (base, next) else {
        return Err(Error::Invalid {
            at: String::new(),
            message: "expected a block at the top of every config file".to_owned(),
        });
    };
    for (key, value) in next {
        let merged = match base.remove(&key) {
            None => value,
            Some(earlier) if APPENDED.contains(&key.as_str()) => {
                Value::Array(entries(earlier).chain(entries(value)).collect())
            }
            Some(earlier) if key == "exit_after_auth" && is_false(&value) => earlier,
            Some(earlier) if key == "pid_file" && value.as_str() == Some("") => earlier,
            Some(_) => value,
        };
        base.insert(key, merged);
    }
    Ok(Value::Object(base))
}

/// The tree of no file at all, which merging starts from.
pub(super) fn empty() -> Value {
    Value::Object(Map::new())
}

/// The entries of a block given once (an object) or several times (a list).
fn entries(value: Value) -> impl Iterator<Item = Value> {
    match value {
        Value::Array(items) => items.into_iter(),
        other => vec![other].into_iter(),
    }
}

/// Whether a value reads as false; anything else, invalid values included,
/// replaces the earlier one so that the reader sees it.
fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(text) => super::parse_bool(text) == Some(false),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn later_stanzas_replace_templates_add_up_and_exit_after_auth_sticks() {
        let first = json!({
            "vault": {"address": "http://a:8200", "namespace": "ns"},
            "template": [{"destination": "/a"}],
            "exit_after_auth": true,
            "pid_file": "/run/a.pid",
        });
        let second = json!({
            "vault": {"address": "http://b:8200"},
            "template": {"destination": "/b"},
            "exit_after_auth": false,
            "pid_file": "",
            "listener": [{"tcp": {}}],
        });
        assert_eq!(
            merge(merge(empty(), first).expect("merges"), second).expect("merges"),
            json!({
                "vault": {"address": "http://b:8200"},
                "template": [{"destination": "/a"}, {"destination": "/b"}],
                "exit_after_auth": true,
                "pid_file": "/run/a.pid",
                "listener": [{"tcp": {}}],
            })
        );
    }

    #[test]
    fn a_file_that_is_not_a_block_is_an_error() {
        let err = merge(empty(), json!([1])).expect_err("a list is no config");
        assert_eq!(
            err.to_string(),
            "expected a block at the top of every config file"
        );
    }
}
