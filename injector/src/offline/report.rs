//! [`Problem`]s found in manifests, and the forms `mutate --check` prints them in.

use std::fmt;

use serde::Serialize;

use super::read::Position;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The webhook would refuse the pod, or the file cannot be read.
    Error,
    /// The pod is admitted, but probably not as its author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// The object a problem is about, as `kubectl` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its kind, e.g. `Deployment`.
    pub kind: String,
    /// Its namespace, `default` when it names none.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// One problem in a manifest stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: the annotation at fault, or else the object.
    pub position: Position,
    /// How bad it is.
    pub severity: Severity,
    /// The object; `None` for a document that is not YAML.
    pub object: Option<Object>,
    /// The annotation at fault, when there is one.
    pub annotation: Option<String>,
    /// What is wrong. Names the annotation too, as the webhook's denial does.
    pub message: String,
}

impl Problem {
    /// Whether this is an error, as opposed to a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Whether the input could not be read as YAML: a document that is not
    /// YAML is the only problem that names no object.
    pub fn is_unreadable(&self) -> bool {
        self.object.is_none()
    }
}

/// `Kind/namespace/name: message`; the message alone when there is no object.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        // Keys and values come from the manifest: a line break in one must
        // not forge a line of the report.
        for c in self.message.chars() {
            match c {
                '\n' | '\r' => write!(f, "{}", c.escape_debug())?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

/// One line per problem, as compilers write them:
/// `FILE:LINE:COL: error: Kind/namespace/name: message`.
pub fn text(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            let Position { line, column } = p.position;
            format!("{file}:{line}:{column}: {}: {p}\n", p.severity)
        })
        .collect()
}

/// One JSON document: an array with an object per problem.
pub fn json(file: &str, problems: &[Problem]) -> String {
    #[derive(Serialize)]
    struct Entry<'a> {
        file: &'a str,
        line: u64,
        column: u64,
        severity: Severity,
        kind: Option<&'a str>,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
        annotation: Option<&'a str>,
        message: &'a str,
    }
    let entries: Vec<Entry<'_>> = problems
        .iter()
        .map(|p| Entry {
            file,
            line: p.position.line,
            column: p.position.column,
            severity: p.severity,
            kind: p.object.as_ref().map(|o| o.kind.as_str()),
            namespace: p.object.as_ref().map(|o| o.namespace.as_str()),
            name: p.object.as_ref().map(|o| o.name.as_str()),
            annotation: p.annotation.as_deref(),
            message: &p.message,
        })
        .collect();
    // Plain strings and numbers always serialise.
    let mut out = serde_json::to_string_pretty(&entries).unwrap_or_default();
    out.push('\n');
    out
}

/// GitHub Actions workflow commands, which annotate each problem on its
/// file and line: `::error file=F,line=L,col=C,title=keyhole::message`.
pub fn github(file: &str, problems: &[Problem]) -> String {
    let file = escape_property(file);
    problems
        .iter()
        .map(|p| {
            let Position { line, column } = p.position;
            format!(
                "::{} file={file},line={line},col={column},title=keyhole::{}\n",
                p.severity,
                escape_data(&p.to_string())
            )
        })
        .collect()
}

/// A workflow command's message ends at a line break and treats `%` specially.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property also ends at `,` and `:`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems() -> Vec<Problem> {
        vec![
            Problem {
                position: Position {
                    line: 17,
                    column: 9,
                },
                severity: Severity::Error,
                object: Some(Object {
                    kind: "Deployment".to_owned(),
                    namespace: "default".to_owned(),
                    name: "orders".to_owned(),
                }),
                annotation: Some("vault.hashicorp.com/agent-inject".to_owned()),
                message:
                    "vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)"
                        .to_owned(),
            },
            Problem {
                position: Position {
                    line: 30,
                    column: 1,
                },
                severity: Severity::Error,
                object: None,
                annotation: None,
                message: "100% not YAML".to_owned(),
            },
        ]
    }

    #[test]
    fn text_is_one_compiler_style_line_per_problem() {
        assert_eq!(
            text("apps/a.yaml", &problems()),
            "apps/a.yaml:17:9: error: Deployment/default/orders: vault.hashicorp.com/agent-inject: \
             \"ture\" is not a boolean (true or false)\n\
             apps/a.yaml:30:1: error: 100% not YAML\n"
        );
    }

    #[test]
    fn a_line_break_in_a_message_stays_on_its_line() {
        let mut problem = problems().remove(1);
        problem.message = "a\nb".to_owned();
        assert_eq!(text("f", &[problem]), "f:30:1: error: a\\nb\n");
    }

    #[test]
    fn json_names_every_field() {
        let out: serde_json::Value =
            serde_json::from_str(&json("a.yaml", &problems())).expect("JSON");
        assert_eq!(
            out,
            serde_json::json!([
                {
                    "file": "a.yaml", "line": 17, "column": 9, "severity": "error",
                    "kind": "Deployment", "namespace": "default", "name": "orders",
                    "annotation": "vault.hashicorp.com/agent-inject",
                    "message": "vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)"
                },
                {
                    "file": "a.yaml", "line": 30, "column": 1, "severity": "error",
                    "kind": null, "namespace": null, "name": null, "annotation": null,
                    "message": "100% not YAML"
                }
            ])
        );
    }

    #[test]
    fn github_commands_escape_what_ends_them() {
        assert_eq!(
            github("dir,x/a:b.yaml", &problems()),
            "::error file=dir%2Cx/a%3Ab.yaml,line=17,col=9,title=keyhole::Deployment/default/orders: \
             vault.hashicorp.com/agent-inject: \"ture\" is not a boolean (true or false)\n\
             ::error file=dir%2Cx/a%3Ab.yaml,line=30,col=1,title=keyhole::100%25 not YAML\n"
        );
    }
}
