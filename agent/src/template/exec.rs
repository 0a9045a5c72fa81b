//! Walks the syntax tree and writes output, with Go's evaluation rules.

use std::path::PathBuf;
use std::rc::Rc;

use super::context::{Asked, Requests};
use super::error::ExecError;
use super::funcs::{Eval, Func, Implementation, call_method};
use super::lex::Pos;
use super::parse::{Arg, Branch, BranchKind, Command, Node, Pipeline, Tree};
use super::print::write_v;
use super::value::{Scratch, TooDeep, Value};

/// How deeply evaluation may nest: `{{template}}` calls, `if`/`with`/`range`
/// bodies and parenthesized pipelines together, since each recurses on the
/// thread's stack. (`{{else if}}` chains do not nest; see `if_with`.)
///
/// Go allows 100000 template calls on its growable stacks; a fixed stack
/// needs a bound that fails cleanly instead. The costliest level, a
/// parenthesized call such as `(print (print ...))`, takes about 8 KiB of
/// stack in a debug build: without a bound, a 2 MiB thread overflowed at 255
/// such levels, at 290 nested `if`s, or at 335 recursive template calls each
/// guarded by an `if`. At 100 levels, with the deepest value the encoders
/// accept printed at the bottom, a render still fits in 1.3 MiB, leaving a
/// third of a 2 MiB stack to the caller. Templates nest far less in practice.
pub(crate) const MAX_DEPTH: usize = 100;

/// Options of a render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Go's `missingkey=error`: a missing map key fails the render.
    pub error_on_missing_key: bool,
    /// The file the template renders to: `pkiCert` reuses a certificate
    /// found there.
    pub destination: Option<PathBuf>,
    /// The directory `file` must read inside; `None` reads anywhere.
    pub sandbox_path: Option<PathBuf>,
    /// Functions a call of which fails with "function is disabled", as
    /// consul-template's `function_denylist`; Go's builtins stay callable.
    pub function_denylist: Vec<String>,
}

impl RenderOptions {
    fn denies(&self, func: &Func) -> bool {
        !func.go_builtin && self.function_denylist.iter().any(|name| name == func.name)
    }
}

/// What a list of nodes asks of its enclosing `range`.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Why a call that runs template code failed.
enum Nested {
    /// The call itself: its arguments, or the template it names.
    Call(String),
    /// The template it ran, with that error's own position.
    Exec(ExecError),
}

/// Evaluation state for one render.
pub(crate) struct Exec<'a> {
    requests: Requests<'a>,
    tree: &'a Tree,
    name: &'a str,
    options: &'a RenderOptions,
    vars: Vec<(&'a str, Value<'a>)>,
    out: String,
    depth: usize,
    /// What `scratch` returns: one store for the whole render.
    scratch: Scratch<'a>,
}

type Result<T, E = ExecError> = std::result::Result<T, E>;

impl<'a> Exec<'a> {
    pub(crate) fn new(
        requests: Requests<'a>,
        tree: &'a Tree,
        name: &'a str,
        options: &'a RenderOptions,
    ) -> Self {
        Exec {
            requests,
            tree,
            name,
            options,
            vars: vec![("$", Value::Missing)],
            out: String::new(),
            depth: 0,
            scratch: Scratch::default(),
        }
    }

    /// Runs the main template with a nil dot, as consul-template does:
    /// the output, and the Vault requests the render made.
    pub(crate) fn run(mut self) -> (Result<String>, Asked) {
        let result = self
            .walk_list(&Value::Missing, &self.tree.root)
            .map(|_| std::mem::take(&mut self.out));
        (result, self.requests.asked())
    }

    fn err(&self, pos: Pos, at: impl std::fmt::Display, message: impl Into<String>) -> ExecError {
        ExecError {
            name: self.name.to_owned(),
            line: pos.line as usize,
            column: pos.col as usize,
            context: at.to_string(),
            message: message.into(),
        }
    }

    fn walk_list(&mut self, dot: &Value<'a>, list: &'a [Node]) -> Result<Flow> {
        for node in list {
            match self.walk(dot, node)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value<'a>, node: &'a Node) -> Result<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print(&v)
                        .map_err(|e| self.err(pipe.pos, pipe, format!("can't print {e}")))?;
                }
            }
            Node::Branch(b) => {
                let keyword = match b.kind {
                    BranchKind::If => "if",
                    BranchKind::With => "with",
                    BranchKind::Range => "range",
                };
                return self.nested(b.pipe.pos, keyword, |ex| {
                    let mark = ex.vars.len();
                    let flow = if b.kind == BranchKind::Range {
                        ex.range(dot, b)
                    } else {
                        ex.if_with(dot, b)
                    };
                    ex.vars.truncate(mark);
                    flow
                });
            }
            Node::Template { pos, name, pipe } => {
                let Some(list) = self.tree.defines.get(name) else {
                    return Err(self.err(
                        *pos,
                        format_args!("template {name:?}"),
                        format!("no such template {name:?}"),
                    ));
                };
                let new_dot = match pipe {
                    Some(p) => self.pipeline(dot, p)?,
                    None => Value::Nil,
                };
                self.nested(*pos, format_args!("template {name:?}"), |ex| {
                    let saved = std::mem::replace(&mut ex.vars, vec![("$", new_dot.clone())]);
                    let r = ex.walk_list(&new_dot, list);
                    ex.vars = saved;
                    r
                })?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    /// Runs `f` one nesting level deeper, failing at [`MAX_DEPTH`] instead of
    /// overflowing the stack. `at` names the construct for the error; it is
    /// kept short because a deep construct printed in full would recurse as
    /// deeply as evaluating it.
    fn nested<T>(
        &mut self,
        pos: Pos,
        at: impl std::fmt::Display,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(
                pos,
                at,
                format!("exceeded maximum template depth ({MAX_DEPTH})"),
            ));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Prints a value as Go's template printer does.
    fn print(&mut self, v: &Value<'a>) -> Result<(), TooDeep> {
        match v {
            Value::Missing => self.out.push_str("<no value>"),
            Value::Str(s) => self.out.push_str(s),
            Value::String(s) => self.out.push_str(s),
            v => write_v(&mut self.out, v)?,
        }
        Ok(())
    }

    fn if_with(&mut self, dot: &Value<'a>, mut b: &'a Branch) -> Result<Flow> {
        loop {
            let v = self.pipeline(dot, &b.pipe)?;
            if v.truth() {
                let new_dot = if b.kind == BranchKind::With {
                    v
                } else {
                    dot.clone()
                };
                return self.walk_list(&new_dot, &b.list);
            }
            match b.else_list.as_deref() {
                // `{{else if}}` and `{{else with}}` parse as a branch nested
                // in the else part. Taking it here instead of recursing
                // keeps a long chain from counting against the depth limit;
                // its variables stay in scope until the outer branch ends,
                // as they would when nested.
                Some([Node::Branch(next)]) if next.kind != BranchKind::Range => b = next,
                Some(else_list) => return self.walk_list(dot, else_list),
                None => return Ok(Flow::Normal),
            }
        }
    }

    fn range(&mut self, dot: &Value<'a>, b: &'a Branch) -> Result<Flow> {
        let v = self.pipeline(dot, &b.pipe)?;
        // Declared variables were pushed by the pipeline; reassign them per
        // element.
        let mark = self.vars.len();
        // Lazily: `range N` over an integer builds nothing, however large N.
        let items: Box<dyn Iterator<Item = (Value<'a>, Value<'a>)> + '_> = if v.is_map() {
            Box::new(
                v.map_entries()
                    .into_iter()
                    .map(|(k, v)| (Value::String(Rc::from(k)), v)),
            )
        } else if let Some(items) = v.list_items() {
            Box::new(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| (Value::Int(i as i64), e)),
            )
        } else {
            match v {
                Value::Missing | Value::Nil => Box::new(std::iter::empty()),
                Value::Int(n) => Box::new((0..n.max(0)).map(|i| (Value::Int(i), Value::Int(i)))),
                other => {
                    return Err(self.err(
                        b.pipe.pos,
                        "range",
                        format!(
                            "range can't iterate over value of type {}",
                            other.type_name()
                        ),
                    ));
                }
            }
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            if let Some(else_list) = &b.else_list {
                return self.walk_list(dot, else_list);
            }
            return Ok(Flow::Normal);
        }
        let declared = b.pipe.decl.len();
        for (key, elem) in items {
            match declared {
                1 => self.set_var(mark - 1, elem.clone()),
                2 => {
                    self.set_var(mark - 2, key);
                    self.set_var(mark - 1, elem.clone());
                }
                _ => {}
            }
            let inner = self.vars.len();
            let flow = self.walk_list(&elem, &b.list)?;
            self.vars.truncate(inner);
            if let Flow::Break = flow {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, at: usize, v: Value<'a>) {
        if let Some(slot) = self.vars.get_mut(at) {
            slot.1 = v;
        }
    }

    fn pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipeline) -> Result<Value<'a>> {
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            // Like Go, look inside an `interface{}` result: a nil one
            // becomes an invalid value, which prints as `<no value>`.
            value = Some(match self.command(dot, cmd, value)? {
                Value::Nil => Value::Missing,
                v => v,
            });
        }
        let value = value.unwrap_or(Value::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        last: Option<Value<'a>>,
    ) -> Result<Value<'a>> {
        let first = &cmd.args[0];
        match first {
            Arg::Func(pos, func) => self.call(dot, *pos, func, &cmd.args[1..], last, cmd),
            Arg::Field(pos, fields) => {
                self.method_or_fields(dot, dot.clone(), *pos, fields, cmd, last)
            }
            Arg::Variable(pos, name, fields) => {
                let v = self.var(name);
                self.method_or_fields(dot, v, *pos, fields, cmd, last)
            }
            Arg::Chain(pos, inner, fields) => {
                let v = self.arg(dot, inner)?;
                self.method_or_fields(dot, v, *pos, fields, cmd, last)
            }
            _ => {
                if cmd.args.len() > 1 || last.is_some() {
                    return Err(self.err(
                        cmd.pos,
                        first,
                        format!("can't give argument to non-function {first}"),
                    ));
                }
                self.arg(dot, first)
            }
        }
    }

    /// `executeTemplate name [dot]`: runs the `define`d template `name`
    /// with `dot` (nil without one) into a string of its own.
    fn execute_template(&mut self, pos: Pos, args: &[Value<'a>]) -> Result<String, Nested> {
        let (name, dot) = match args {
            [name] => (name, Value::Missing),
            [name, dot] => (name, dot.clone()),
            _ => {
                return Err(Nested::Call(format!(
                    "executeTemplate: wrong number of arguments, expected 1 or 2, but got {}",
                    args.len()
                )));
            }
        };
        let name = match name {
            Value::Str(s) => s.to_string(),
            Value::String(s) => s.to_string(),
            other => {
                return Err(Nested::Call(format!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                )));
            }
        };
        let Some(list) = self.tree.defines.get(&name) else {
            return Err(Nested::Call(format!(
                "template: no template {name:?} associated with template {:?}",
                self.name
            )));
        };
        let outer = std::mem::take(&mut self.out);
        let result = self.nested(pos, format_args!("executeTemplate {name:?}"), |ex| {
            let saved = std::mem::replace(&mut ex.vars, vec![("$", dot.clone())]);
            let r = ex.walk_list(&dot, list);
            ex.vars = saved;
            r
        });
        let inner = std::mem::replace(&mut self.out, outer);
        result.map(|_| inner).map_err(Nested::Exec)
    }

    /// Follows `fields` from `receiver`; when the last one names a method
    /// of the value before it (`scratch.Set "k" v`), calls it with the
    /// command's arguments.
    fn method_or_fields(
        &mut self,
        dot: &Value<'a>,
        receiver: Value<'a>,
        pos: Pos,
        fields: &'a [String],
        cmd: &'a Command,
        last: Option<Value<'a>>,
    ) -> Result<Value<'a>> {
        let first = &cmd.args[0];
        if let Some((name, path)) = fields.split_last() {
            let owner = self.fields(receiver.clone(), pos, path, first)?;
            if let Value::Scratch = owner {
                let mut args = Vec::with_capacity(cmd.args.len());
                for node in &cmd.args[1..] {
                    args.push(self.arg(dot, node)?);
                }
                args.extend(last.clone());
                if let Some(result) = call_method(&mut self.scratch, name, &args) {
                    return result
                        .map_err(|e| self.err(pos, first, format!("error calling {name}: {e}")));
                }
            }
        }
        self.no_args(cmd, last)?;
        self.fields(receiver, pos, fields, first)
    }

    fn no_args(&self, cmd: &Command, last: Option<Value<'a>>) -> Result<()> {
        if cmd.args.len() > 1 || last.is_some() {
            let first = &cmd.args[0];
            return Err(self.err(
                cmd.pos,
                first,
                format!("{first} has arguments but cannot be invoked as function"),
            ));
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Value<'a> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Missing)
    }

    /// Evaluates one operand.
    fn arg(&mut self, dot: &Value<'a>, arg: &'a Arg) -> Result<Value<'a>> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Str(s) => Value::Str(s),
            Arg::Field(pos, fields) => self.fields(dot.clone(), *pos, fields, arg)?,
            Arg::Variable(pos, name, fields) => {
                let v = self.var(name);
                self.fields(v, *pos, fields, arg)?
            }
            Arg::Chain(pos, inner, fields) => {
                let v = self.arg(dot, inner)?;
                self.fields(v, *pos, fields, arg)?
            }
            Arg::Pipe(p) => self.nested(p.pos, "(...)", |ex| {
                let mark = ex.vars.len();
                let v = ex.pipeline(dot, p);
                ex.vars.truncate(mark);
                v
            })?,
            Arg::Func(pos, func) => self.call(dot, *pos, func, &[], None, arg)?,
        })
    }

    /// Follows `.A.B.C` from `v`.
    fn fields(
        &self,
        mut v: Value<'a>,
        pos: Pos,
        fields: &'a [String],
        node: &Arg,
    ) -> Result<Value<'a>> {
        for name in fields {
            v = self.field(v, name, pos, node)?;
        }
        Ok(v)
    }

    fn field(&self, receiver: Value<'a>, name: &str, pos: Pos, node: &Arg) -> Result<Value<'a>> {
        if let Some(found) = receiver.map_get(name) {
            // consul-template runs with `missingkey=zero` (a nil interface)
            // unless `error_on_missing_key` asks for `missingkey=error`.
            return match found {
                Some(v) => Ok(v),
                None if self.options.error_on_missing_key => {
                    Err(self.err(pos, node, format!("map has no entry for key {name:?}")))
                }
                None => Ok(Value::Nil),
            };
        }
        if let Some(found) = receiver.struct_field(name) {
            return Ok(found);
        }
        Err(match receiver {
            // consul-template runs templates with nil data: fields of an
            // invalid value are invalid too.
            Value::Missing if self.options.error_on_missing_key => {
                self.err(pos, node, format!("nil data; no entry for key {name:?}"))
            }
            Value::Missing => return Ok(Value::Missing),
            Value::Nil => self.err(
                pos,
                node,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            Value::NilPointer(t) => {
                self.err(pos, node, format!("nil pointer evaluating {t}.{name}"))
            }
            _ => self.err(
                pos,
                node,
                format!(
                    "can't evaluate field {name} in type {}",
                    receiver.type_name()
                ),
            ),
        })
    }

    fn call(
        &mut self,
        dot: &Value<'a>,
        pos: Pos,
        func: &Func,
        arg_nodes: &'a [Arg],
        last: Option<Value<'a>>,
        at: &dyn std::fmt::Display,
    ) -> Result<Value<'a>> {
        if self.options.denies(func) {
            return Err(self.err(
                pos,
                at,
                format!("error calling {}: function is disabled", func.name),
            ));
        }
        let implementation = match func.eval {
            Eval::ShortCircuit { stop_at } => {
                let total = arg_nodes.len() + usize::from(last.is_some());
                func.check_arity(total).map_err(|e| self.err(pos, at, e))?;
                let mut result = Value::Missing;
                for node in arg_nodes {
                    result = self.arg(dot, node)?;
                    if result.truth() == stop_at {
                        return Ok(result);
                    }
                }
                return Ok(last.unwrap_or(result));
            }
            Eval::Call(implementation) => implementation,
            Eval::ExecuteTemplate => {
                let mut args = Vec::with_capacity(arg_nodes.len() + 1);
                for node in arg_nodes {
                    args.push(self.arg(dot, node)?);
                }
                args.extend(last);
                func.check_arity(args.len())
                    .map_err(|e| self.err(pos, at, e))?;
                return self
                    .execute_template(pos, &args)
                    .map(|out| Value::String(out.into()))
                    .map_err(|e| match e {
                        Nested::Call(e) => {
                            self.err(pos, at, format!("error calling {}: {e}", func.name))
                        }
                        Nested::Exec(e) => e,
                    });
            }
            Eval::Scratch => {
                let total = arg_nodes.len() + usize::from(last.is_some());
                func.check_arity(total).map_err(|e| self.err(pos, at, e))?;
                return Ok(Value::Scratch);
            }
        };
        let mut args = Vec::with_capacity(arg_nodes.len() + 1);
        for node in arg_nodes {
            args.push(self.arg(dot, node)?);
        }
        args.extend(last);
        // Functions see a missing value as nil, as Go's call does.
        for arg in &mut args {
            if matches!(arg, Value::Missing) {
                *arg = Value::Nil;
            }
        }
        func.check_arity(args.len())
            .and_then(|()| match implementation {
                Implementation::Plain(run) => run(&args),
                Implementation::Sandboxed(run) => run(self.options.sandbox_path.as_deref(), &args),
                Implementation::Vault(_, run) => run(&mut self.requests, &args),
            })
            .map_err(|e| self.err(pos, at, format!("error calling {}: {e}", func.name)))
    }
}
