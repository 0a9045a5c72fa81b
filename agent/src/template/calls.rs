//! The Vault calls a parsed template makes, found without rendering it, so
//! the injector can check their paths at admission.

use super::parse::{Arg, Command, List, Node, Pipeline, Tree};
use super::{VaultCall, VaultFunction};

/// Every `secret`, `secrets` and `pkiCert` call in `tree`, including those in
/// `define`d templates, ordered by position.
pub(crate) fn vault_calls(tree: &Tree) -> Vec<VaultCall> {
    let mut calls = Vec::new();
    list(&tree.root, &mut calls);
    for defined in tree.defines.values() {
        list(defined, &mut calls);
    }
    calls.sort_by_key(|c| (c.line, c.column));
    calls
}

fn list(nodes: &List, calls: &mut Vec<VaultCall>) {
    for node in nodes {
        match node {
            Node::Action(pipe) => pipeline(pipe, calls),
            Node::Branch(branch) => {
                pipeline(&branch.pipe, calls);
                list(&branch.list, calls);
                if let Some(else_list) = &branch.else_list {
                    list(else_list, calls);
                }
            }
            Node::Template { pipe, .. } => {
                if let Some(pipe) = pipe {
                    pipeline(pipe, calls);
                }
            }
            Node::Text(_) | Node::Break | Node::Continue => {}
        }
    }
}

fn pipeline(pipe: &Pipeline, calls: &mut Vec<VaultCall>) {
    let mut previous: Option<&Command> = None;
    for cmd in &pipe.cmds {
        command(cmd, previous, calls);
        previous = Some(cmd);
    }
}

/// A call's path is its first argument or, when it has none, the value piped
/// into it (`{{ "kv/app" | secret }}`).
fn command(cmd: &Command, piped_from: Option<&Command>, calls: &mut Vec<VaultCall>) {
    if let Some(Arg::Func(pos, name)) = cmd.args.first()
        && let Some(function) = VaultFunction::from_name(name)
    {
        let path = match (cmd.args.get(1), piped_from) {
            (Some(arg), _) => Some(string_constant(arg)),
            (None, Some(previous)) => match previous.args.as_slice() {
                [only] => Some(string_constant(only)),
                _ => Some(None),
            },
            // Called without a path, the function returns nil and reads nothing.
            (None, None) => None,
        };
        if let Some(path) = path {
            calls.push(VaultCall {
                function,
                path,
                line: pos.line as usize,
                column: pos.col as usize,
            });
        }
    }
    for arg in &cmd.args {
        nested(arg, calls);
    }
}

fn string_constant(arg: &Arg) -> Option<String> {
    match arg {
        Arg::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn nested(arg: &Arg, calls: &mut Vec<VaultCall>) {
    match arg {
        Arg::Pipe(pipe) => pipeline(pipe, calls),
        Arg::Chain(_, inner, _) => nested(inner, calls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::Template;
    use super::*;

    fn calls(text: &str) -> Vec<(VaultFunction, Option<String>, usize, usize)> {
        Template::parse("t", text, "", "")
            .expect("parses")
            .vault_calls()
            .into_iter()
            .map(|c| (c.function, c.path, c.line, c.column))
            .collect()
    }

    #[test]
    fn finds_literal_paths_of_every_vault_function() {
        let text = "{{ with secret \"kv/app\" }}{{ .Data.x }}{{ end }}\n\
                    {{ range secrets \"kv/list/\" }}{{ . }}{{ end }}\n\
                    {{ with pkiCert \"pki/issue/web\" \"common_name=a\" }}{{ .Cert }}{{ end }}";
        assert_eq!(
            calls(text),
            vec![
                (VaultFunction::Secret, Some("kv/app".to_owned()), 1, 9),
                (VaultFunction::Secrets, Some("kv/list/".to_owned()), 2, 10),
                (
                    VaultFunction::PkiCert,
                    Some("pki/issue/web".to_owned()),
                    3,
                    9
                ),
            ]
        );
    }

    #[test]
    fn computed_paths_have_no_path() {
        let text = "{{ range secrets \"kv/\" }}{{ with secret (printf \"kv/%s\" .) }}{{ end }}{{ end }}\
                    {{ $p := \"kv/x\" }}{{ secret $p }}";
        let found = calls(text);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].1, None);
        assert_eq!(found[2].1, None);
    }

    #[test]
    fn finds_calls_in_nested_pipelines_pipes_and_defines() {
        let text = "{{ define \"inner\" }}{{ secret \"kv/defined\" }}{{ end }}\
                    {{ if (secret \"kv/cond\") }}{{ else }}{{ \"kv/piped\" | secret }}{{ end }}\
                    {{ template \"inner\" (secret \"kv/arg\") }}";
        let paths: Vec<Option<String>> = calls(text).into_iter().map(|c| c.1).collect();
        assert_eq!(
            paths,
            ["kv/defined", "kv/cond", "kv/piped", "kv/arg"]
                .map(|p| Some(p.to_owned()))
                .to_vec()
        );
    }

    #[test]
    fn secret_without_a_path_reads_nothing() {
        assert_eq!(calls("{{ secret }}{{ printf \"%v\" secret }}"), vec![]);
    }
}
