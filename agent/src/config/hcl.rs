//! HCL text to the generic JSON tree that [`super::parse`] reads.
//!
//! The tree has the shape Vault Agent's own HCL parser gives the same file:
//! every block becomes a list entry under its name (`template { }` twice is
//! `"template": [{..}, {..}]`), and a block label becomes one more level of
//! object (`method "jwt" { }` is `"method": [{"jwt": {..}}]`), which is also
//! how labelled blocks are written in Vault Agent JSON.
//!
//! Vault Agent parses HCL 1, where an integer written with a leading zero is
//! octal (`perms = 0600`); hcl-rs parses HCL 2, where it would be decimal 600.
//! Such literals are therefore read from their source text, so that a file
//! means the same under both agents.

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use hcl::eval::{Context, Evaluate};
use serde_json::{Map, Value};

use super::{Error, Result};

/// Blocks that may be given more than once; error paths show their index.
const REPEATABLE: [&str; 3] = ["template", "sink", "reload"];

/// Parses HCL text into the generic tree.
pub(super) fn to_json(text: &str) -> Result<Value> {
    let body = hcl::edit::parser::parse_body(text)
        .map_err(|e| Error::Hcl(e.to_string().trim().to_owned()))?;
    body_to_json(&body, "")
}

fn body_to_json(body: &Body, path: &str) -> Result<Value> {
    let mut object = Map::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str();
                let at = join(path, key);
                // The parser rejects a repeated attribute; this is one named like a block.
                if object.contains_key(key) {
                    return Err(invalid(&at, "given both as a key and as a block"));
                }
                object.insert(key.to_owned(), expr_to_json(&attr.value, &at)?);
            }
            Structure::Block(block) => {
                let name = block.ident.as_str();
                let entries = object
                    .entry(name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(entries) = entries else {
                    return Err(invalid(
                        &join(path, name),
                        "given both as a key and as a block",
                    ));
                };
                let at = if REPEATABLE.contains(&name) {
                    format!("{}[{}]", join(path, name), entries.len())
                } else {
                    join(path, name)
                };
                let entry = match block.labels.as_slice() {
                    [] => body_to_json(&block.body, &at)?,
                    [label] => {
                        let at = format!("{} {:?}", join(path, name), label.as_str());
                        let inner = body_to_json(&block.body, &at)?;
                        Value::Object(Map::from_iter([(label.as_str().to_owned(), inner)]))
                    }
                    _ => return Err(invalid(&at, "a block takes at most one label")),
                };
                entries.push(entry);
            }
        }
    }
    Ok(Value::Object(object))
}

fn expr_to_json(expr: &Expression, at: &str) -> Result<Value> {
    match expr {
        Expression::Number(number) => {
            let repr = number.as_repr().map(|repr| &**repr);
            match repr.filter(|r| is_hcl1_octal(r)) {
                Some(octal) => u64::from_str_radix(octal, 8)
                    .map(Value::from)
                    .map_err(|_| invalid(at, format!("{octal} is not a valid octal number"))),
                None => literal(expr, at),
            }
        }
        Expression::Array(array) => array
            .iter()
            .map(|item| expr_to_json(item, at))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.as_str().to_owned(),
                    ObjectKey::Expression(_) => {
                        return Err(invalid(at, "object keys must be names or strings"));
                    }
                };
                let value = expr_to_json(value.expr(), &join(at, &key))?;
                map.insert(key, value);
            }
            Ok(Value::Object(map))
        }
        _ => literal(expr, at),
    }
}

/// `0600`: a leading zero followed by more digits.
fn is_hcl1_octal(repr: &str) -> bool {
    repr.len() > 1 && repr.starts_with('0') && repr.bytes().all(|b| b.is_ascii_digit())
}

/// Evaluates a literal (string, heredoc, bool, number) with no variables
/// or functions: Vault Agent configs have none.
fn literal(expr: &Expression, at: &str) -> Result<Value> {
    let value = hcl::Expression::from(expr.clone())
        .evaluate(&Context::new())
        .map_err(|e| match expr {
            // HCL 1 keeps `${..}` as text, HCL 2 evaluates it: no spelling
            // means the same to both parsers.
            Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => invalid(
                at,
                "\"${\" and \"%{\" start HCL 2 template expressions, which Vault Agent's \
                 HCL 1 parser keeps as text: move this text into a file and use \"source\"",
            ),
            _ => invalid(at, format!("only literal values are supported: {e}")),
        })?;
    serde_json::to_value(value).map_err(|e| invalid(at, e.to_string()))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(at: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        at: at.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_blocks_by_name_and_nests_labels() {
        let tree = to_json(
            r#"
            pid_file = "/p"
            auto_auth {
              method "kubernetes" {
                config = { role = "app" }
              }
            }
            template { destination = "a" }
            template { destination = "b" }
            "#,
        )
        .expect("is accepted");
        assert_eq!(
            tree,
            json!({
                "pid_file": "/p",
                "auto_auth": [{"method": [{"kubernetes": {"config": {"role": "app"}}}]}],
                "template": [{"destination": "a"}, {"destination": "b"}],
            })
        );
    }

    #[test]
    fn reads_leading_zero_integers_as_octal_like_hcl1() {
        let tree = to_json("a = 0600\nb = 600\nc = 0\n").expect("is accepted");
        assert_eq!(tree, json!({"a": 384, "b": 600, "c": 0}));
    }

    #[test]
    fn rejects_invalid_octal_literal() {
        let err = to_json("template {\n perms = 0999\n}\n").expect_err("is rejected");
        assert_eq!(
            err.to_string(),
            "template[0].perms: 0999 is not a valid octal number"
        );
    }

    #[test]
    fn evaluates_heredocs() {
        let tree = to_json("contents = <<EOT\n{{ .Data }}\nEOT\n").expect("is accepted");
        assert_eq!(tree, json!({"contents": "{{ .Data }}\n"}));
    }

    #[test]
    fn rejects_variables() {
        let err = to_json("vault {\n address = var.addr\n}\n").expect_err("is rejected");
        assert!(
            err.to_string()
                .starts_with("vault.address: only literal values are supported"),
            "{err}"
        );
    }

    #[test]
    fn explains_interpolation_in_strings() {
        let err =
            to_json("template {\n contents = \"export A=${HOME}\"\n}\n").expect_err("is rejected");
        assert_eq!(
            err.to_string(),
            "template[0].contents: \"${\" and \"%{\" start HCL 2 template expressions, \
             which Vault Agent's HCL 1 parser keeps as text: move this text into a file and use \"source\""
        );
    }

    #[test]
    fn rejects_duplicate_keys_with_line() {
        let err = to_json("pid_file = \"a\"\npid_file = \"b\"\n").expect_err("is rejected");
        let message = err.to_string();
        assert!(
            message.starts_with("invalid HCL: --> HCL parse error in line 2, column 1"),
            "{message}"
        );
        assert!(message.ends_with("found redefined attribute"), "{message}");
    }

    #[test]
    fn rejects_a_key_named_like_a_block() {
        let err = to_json("vault {}\nvault = 1\n").expect_err("is rejected");
        assert_eq!(err.to_string(), "vault: given both as a key and as a block");
    }
}
