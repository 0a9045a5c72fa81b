//! The Vault calls a parsed template makes, found without rendering it, so
//! the injector can check their paths at admission.

use std::collections::BTreeSet;

use super::funcs::{Func, VaultFunction};
use super::parse::{Arg, Command, List, Node, Pipeline, Tree};

/// A Vault call written in a template, found by
/// [`Template::vault_calls`](super::Template::vault_calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCall {
    /// The function called.
    pub function: VaultFunction,
    /// The path when it is a string constant; `None` when it is computed
    /// while rendering (a variable, a field, a pipeline).
    pub path: Option<String>,
    /// 1-based line of the call.
    pub line: usize,
    /// 1-based byte column of the call.
    pub column: usize,
}

/// Every `secret`, `secrets` and `pkiCert` call in `tree`, including those in
/// `define`d templates, ordered by position.
pub(crate) fn vault_calls(tree: &Tree) -> Vec<VaultCall> {
    let mut calls = Vec::new();
    each_call(tree, &mut |func, cmd, piped_from| {
        let Some(function) = func.vault_function() else {
            return;
        };
        // A call's path is its first argument or, when it has none, the
        // value piped into it (`{{ "kv/app" | secret }}`).
        let path = match (cmd.args.get(1), piped_from) {
            (Some(arg), _) => Some(string_constant(arg)),
            (None, Some(previous)) => match previous.args.as_slice() {
                [only] => Some(string_constant(only)),
                _ => Some(None),
            },
            // Called without a path, the function returns nil and reads nothing.
            (None, None) => None,
        };
        if let (Some(path), Some(Arg::Func(pos, _))) = (path, cmd.args.first()) {
            calls.push(VaultCall {
                function,
                path,
                line: pos.line as usize,
                column: pos.col as usize,
            });
        }
    });
    calls.sort_by_key(|c| (c.line, c.column));
    calls
}

/// The names of the functions `tree` calls, including those in `define`d
/// templates and in branches a render may never take, and those written as
/// arguments (`{{ printf "%v" timestamp }}`).
pub(crate) fn called_functions(tree: &Tree) -> BTreeSet<&'static str> {
    let mut names = BTreeSet::new();
    each_command(tree, &mut |cmd, _| {
        for arg in &cmd.args {
            match arg {
                Arg::Func(_, func) => names.insert(func.name),
                // `scratch.Set "k" v`
                Arg::Chain(_, inner, _) => match inner.as_ref() {
                    Arg::Func(_, func) => names.insert(func.name),
                    _ => false,
                },
                _ => false,
            };
        }
    });
    names
}

/// Calls `visit` with every command in `tree` that calls a function,
/// including those in `define`d templates: the function, the command, and
/// the command whose value is piped into it. (A function written as an
/// argument, `{{ printf "%v" secret }}`, is called without arguments; it is
/// not visited.)
pub(crate) fn each_call(tree: &Tree, visit: &mut impl FnMut(&Func, &Command, Option<&Command>)) {
    each_command(tree, &mut |cmd, previous| {
        if let Some(Arg::Func(_, func)) = cmd.args.first() {
            visit(func, cmd, previous);
        }
    });
}

/// Calls `visit` with every command in `tree`, including those in `define`d
/// templates and parenthesized pipelines, and the command whose value is
/// piped into it.
fn each_command(tree: &Tree, visit: &mut impl FnMut(&Command, Option<&Command>)) {
    list(&tree.root, visit);
    for defined in tree.defines.values() {
        list(defined, visit);
    }
}

fn list(nodes: &List, visit: &mut impl FnMut(&Command, Option<&Command>)) {
    for node in nodes {
        match node {
            Node::Action(pipe) => pipeline(pipe, visit),
            Node::Branch(branch) => {
                pipeline(&branch.pipe, visit);
                list(&branch.list, visit);
                if let Some(else_list) = &branch.else_list {
                    list(else_list, visit);
                }
            }
            Node::Template { pipe, .. } => {
                if let Some(pipe) = pipe {
                    pipeline(pipe, visit);
                }
            }
            Node::Text(_) | Node::Break | Node::Continue => {}
        }
    }
}

fn pipeline(pipe: &Pipeline, visit: &mut impl FnMut(&Command, Option<&Command>)) {
    let mut previous: Option<&Command> = None;
    for cmd in &pipe.cmds {
        visit(cmd, previous);
        for arg in &cmd.args {
            nested(arg, visit);
        }
        previous = Some(cmd);
    }
}

fn nested(arg: &Arg, visit: &mut impl FnMut(&Command, Option<&Command>)) {
    match arg {
        Arg::Pipe(pipe) => pipeline(pipe, visit),
        Arg::Chain(_, inner, _) => nested(inner, visit),
        _ => {}
    }
}

fn string_constant(arg: &Arg) -> Option<String> {
    match arg {
        Arg::Str(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Template;
    use super::VaultFunction;

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
    fn lists_every_function_called_wherever_it_is_written() {
        let text = "{{ define \"d\" }}{{ toUpper . }}{{ end }}\
                    {{ if false }}{{ printf \"%v\" timestamp | trimSpace }}{{ end }}\
                    {{ with (secret \"kv/x\") }}{{ end }}{{ .Data }}{{ scratch.Set \"k\" 1 }}";
        let template = Template::parse("t", text, "", "").expect("parses");
        assert_eq!(
            template.functions_called().into_iter().collect::<Vec<_>>(),
            [
                "printf",
                "scratch",
                "secret",
                "timestamp",
                "toUpper",
                "trimSpace"
            ]
        );
    }

    #[test]
    fn secret_without_a_path_reads_nothing() {
        assert_eq!(calls("{{ secret }}{{ printf \"%v\" secret }}"), vec![]);
    }
}
