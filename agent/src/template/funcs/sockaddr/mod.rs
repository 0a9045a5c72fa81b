//! consul-template's `sockaddr`: go-sockaddr's template language on this
//! machine's interface addresses, as in `{{ sockaddr "GetPrivateIP" }}` or
//! `{{ sockaddr "GetAllInterfaces | include \"flag\" \"up\" | attr \"address\"" }}`.
//!
//! consul-template joins the arguments with spaces and runs them as a Go
//! template of their own, with go-sockaddr's functions in place of the
//! template's. That language is one pipeline of calls on string and number
//! literals, so it is evaluated here by hand on the template lexer's tokens:
//! the template engine has one function table, the template's, and no crate
//! implements go-sockaddr's filters. The interface addresses themselves come
//! from `getifaddrs(3)` through `nix`.

mod ifaddr;

use super::super::lex::{Tok, lex};
use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};
use ifaddr::IfAddr;

/// A value in a sockaddr pipeline.
#[derive(Debug)]
enum Val {
    /// Interface addresses.
    Addrs(Vec<IfAddr>),
    /// A string, from a literal or a function.
    Str(String),
    /// A number literal's source text.
    Number(String),
}

/// The kind of a go-sockaddr function's parameter.
#[derive(Debug, Clone, Copy)]
enum Param {
    Str,
    Uint,
    Int,
    Addrs,
}

use Param::{Addrs, Int, Str, Uint};

/// go-sockaddr's template functions and their parameters.
const FUNCTIONS: &[(&str, &[Param])] = &[
    ("GetAllInterfaces", &[]),
    ("GetDefaultInterfaces", &[]),
    ("GetPrivateInterfaces", &[]),
    ("GetPublicInterfaces", &[]),
    ("GetPrivateIP", &[]),
    ("GetPrivateIPs", &[]),
    ("GetPublicIP", &[]),
    ("GetPublicIPs", &[]),
    ("GetInterfaceIP", &[Str]),
    ("GetInterfaceIPs", &[Str]),
    ("sort", &[Str, Addrs]),
    ("include", &[Str, Str, Addrs]),
    ("exclude", &[Str, Str, Addrs]),
    ("attr", &[Str, Addrs]),
    ("join", &[Str, Str, Addrs]),
    ("limit", &[Uint, Addrs]),
    ("offset", &[Int, Addrs]),
    ("unique", &[Str, Addrs]),
    ("math", &[Str, Str, Addrs]),
];

/// One call of a pipeline: a function (or `.`, every interface address)
/// and its literal arguments.
#[derive(Debug)]
struct Command {
    function: Option<&'static (&'static str, &'static [Param])>,
    args: Vec<Val>,
}

/// `sockaddr args...`: the output of go-sockaddr's template `{{ args }}`.
pub(super) fn sockaddr<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let words = args.iter().map(string_arg).collect::<Result<Vec<_>, _>>()?;
    let source = format!("{{{{ {} }}}}", words.join(" "));
    let pipeline =
        parse(&source).map_err(|e| format!("unable to parse template {source:?}: {e}"))?;
    let shown = run(pipeline)
        .and_then(print)
        .map_err(|e| format!("unable to execute sockaddr input {source:?}: {e}"))?;
    Ok(owned(shown))
}

/// The pipeline of the one action that `source` is.
fn parse(source: &str) -> Result<Vec<Command>, String> {
    let tokens = lex("sockaddr.Parse", source, "", "").map_err(|e| e.message)?;
    let mut tokens = tokens
        .into_iter()
        .map(|t| t.tok)
        .filter(|t| *t != Tok::Space);
    if tokens.next() != Some(Tok::Left) {
        return Err("expected an action".to_owned());
    }
    let mut pipeline = Vec::new();
    let mut command: Option<Command> = None;
    for tok in tokens.by_ref() {
        match (tok, command.as_mut()) {
            (Tok::Right, _) => break,
            (Tok::Pipe, Some(_)) => pipeline.extend(command.take()),
            (Tok::Ident(name), None) => {
                let function = FUNCTIONS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| format!("function {name:?} not defined"))?;
                command = Some(Command {
                    function: Some(function),
                    args: Vec::new(),
                });
            }
            (Tok::Dot, None) if pipeline.is_empty() => {
                command = Some(Command {
                    function: None,
                    args: Vec::new(),
                });
            }
            (Tok::Str(s), Some(c)) => c.args.push(Val::Str(s.into_owned())),
            (Tok::Number(n), Some(c)) => c.args.push(Val::Number(n.to_owned())),
            (tok, _) => return Err(format!("unexpected {tok:?} in sockaddr pipeline")),
        }
    }
    if let Some(tok) = tokens.next() {
        return Err(format!("unexpected {tok:?} after the action"));
    }
    pipeline.extend(command.take());
    if pipeline.is_empty() {
        return Err("missing value for command".to_owned());
    }
    Ok(pipeline)
}

/// Runs the calls in order, each getting the value before it as its last
/// argument.
fn run(pipeline: Vec<Command>) -> Result<Val, String> {
    let mut last: Option<Val> = None;
    for Command { function, mut args } in pipeline {
        args.extend(last.take());
        last = Some(match function {
            Some((name, params)) => {
                call(name, params, args).map_err(|e| format!("error calling {name}: {e}"))?
            }
            None => Val::Addrs(ifaddr::all_interfaces()?),
        });
    }
    last.ok_or_else(|| "missing value for command".to_owned())
}

/// An argument as the parameter wants it.
enum Arg {
    Str(String),
    Int(i64),
    Addrs(Vec<IfAddr>),
}

fn call(name: &str, params: &[Param], args: Vec<Val>) -> Result<Val, String> {
    if args.len() != params.len() {
        return Err(format!(
            "wrong number of args for {name}: want {} got {}",
            params.len(),
            args.len()
        ));
    }
    let args = params
        .iter()
        .zip(args)
        .map(|(param, arg)| convert(*param, arg))
        .collect::<Result<Vec<_>, _>>()?;
    use Arg as A;
    let first_address =
        |addrs: Vec<IfAddr>| Val::Str(addrs.first().map(|a| a.ip.to_string()).unwrap_or_default());
    Ok(match (name, args.as_slice()) {
        ("GetAllInterfaces", []) => Val::Addrs(ifaddr::all_interfaces()?),
        ("GetDefaultInterfaces", []) => Val::Addrs(ifaddr::default_interfaces()?),
        ("GetPrivateInterfaces", []) => Val::Addrs(ifaddr::routable_interfaces(true)?),
        ("GetPublicInterfaces", []) => Val::Addrs(ifaddr::routable_interfaces(false)?),
        ("GetPrivateIP", []) => first_address(ifaddr::routable_interfaces(true)?),
        ("GetPublicIP", []) => first_address(ifaddr::routable_interfaces(false)?),
        ("GetPrivateIPs", []) => Val::Str(ifaddr::all_ips(true)?),
        ("GetPublicIPs", []) => Val::Str(ifaddr::all_ips(false)?),
        ("GetInterfaceIP", [A::Str(re)]) => first_address(ifaddr::interface_ips(re, true)?),
        ("GetInterfaceIPs", [A::Str(re)]) => {
            Val::Str(ifaddr::join_addresses(&ifaddr::interface_ips(re, false)?))
        }
        ("sort", [A::Str(clauses), A::Addrs(addrs)]) => {
            let mut addrs = addrs.clone();
            ifaddr::sort_by(&mut addrs, &ifaddr::parse_sort(clauses)?);
            Val::Addrs(addrs)
        }
        ("include", [A::Str(selector), A::Str(param), A::Addrs(addrs)]) => {
            Val::Addrs(ifaddr::partition(selector, param, addrs)?.0)
        }
        ("exclude", [A::Str(selector), A::Str(param), A::Addrs(addrs)]) => {
            Val::Addrs(ifaddr::partition(selector, param, addrs)?.1)
        }
        ("attr", [A::Str(attr), A::Addrs(addrs)]) => Val::Str(match addrs.first() {
            Some(a) => ifaddr::attr(a, attr)?,
            None => String::new(),
        }),
        ("join", [A::Str(attr), A::Str(sep), A::Addrs(addrs)]) => Val::Str(
            addrs
                .iter()
                .map(|a| ifaddr::attr(a, attr))
                .collect::<Result<Vec<_>, _>>()?
                .join(sep),
        ),
        ("limit", [A::Int(n), A::Addrs(addrs)]) => Val::Addrs(
            addrs
                .iter()
                .take(usize::try_from(*n).unwrap_or(usize::MAX))
                .cloned()
                .collect(),
        ),
        ("offset", [A::Int(n), A::Addrs(addrs)]) => Val::Addrs(ifaddr::offset(*n, addrs)?),
        ("unique", [A::Str(selector), A::Addrs(addrs)]) => {
            Val::Addrs(ifaddr::unique(selector, addrs)?)
        }
        ("math", [A::Str(operation), A::Str(value), A::Addrs(addrs)]) => {
            Val::Addrs(ifaddr::math(operation, value, addrs)?)
        }
        _ => return Err(format!("function {name:?} not defined")),
    })
}

/// `arg` as a `param`, with Go's complaint when it is not one.
fn convert(param: Param, arg: Val) -> Result<Arg, String> {
    Ok(match (param, arg) {
        (Str, Val::Str(s)) => Arg::Str(s),
        (Uint | Int, Val::Number(n)) => {
            let i: i64 = n.parse().map_err(|_| format!("invalid number {n:?}"))?;
            if matches!(param, Uint) && i < 0 {
                return Err(format!("expected unsigned integer; found {n}"));
            }
            Arg::Int(i)
        }
        (Addrs, Val::Addrs(a)) => Arg::Addrs(a),
        (_, Val::Number(n)) => return Err(format!("expected {param:?}; found {n}")),
        (_, Val::Str(s)) => return Err(format!("expected {param:?}; found {s:?}")),
        (_, Val::Addrs(_)) => return Err(format!("expected {param:?}; found interface addresses")),
    })
}

/// A pipeline's value as Go prints it.
fn print(value: Val) -> Result<String, String> {
    Ok(match value {
        Val::Str(s) | Val::Number(s) => s,
        Val::Addrs(addrs) => {
            let shown: Vec<String> = addrs.iter().map(ifaddr::go_string).collect();
            format!("[{}]", shown.join(" "))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pipeline_of_calls_on_literals() {
        let pipeline =
            parse("{{ GetAllInterfaces | include \"flag\" `up` | limit 2 }}").expect("parses");
        let shown: Vec<(&str, usize)> = pipeline
            .iter()
            .map(|c| (c.function.map_or(".", |f| f.0), c.args.len()))
            .collect();
        assert_eq!(
            shown,
            [("GetAllInterfaces", 0), ("include", 2), ("limit", 1)]
        );
    }

    #[test]
    fn rejects_what_go_sockaddr_does_not_define() {
        let error = |source: &str| parse(source).err().unwrap_or_default();
        assert_eq!(
            error("{{ GetNothing }}"),
            "function \"GetNothing\" not defined"
        );
        assert_eq!(error("{{ }}"), "missing value for command");
        assert!(error("{{ $x := 1 }}").starts_with("unexpected"));
        assert!(error("{{ GetPrivateIP }} {{ GetPublicIP }}").starts_with("unexpected"));
    }

    #[test]
    fn checks_argument_counts_and_types() {
        let run_one = |source: &str| {
            run(parse(source).expect("parses"))
                .err()
                .unwrap_or_default()
        };
        assert_eq!(
            run_one("{{ GetAllInterfaces | limit \"2\" }}"),
            "error calling limit: expected Uint; found \"2\""
        );
        assert_eq!(
            run_one("{{ GetAllInterfaces | limit -1 }}"),
            "error calling limit: expected unsigned integer; found -1"
        );
        assert_eq!(
            run_one("{{ GetAllInterfaces | include \"name\" }}"),
            "error calling include: wrong number of args for include: want 3 got 2"
        );
    }
}
