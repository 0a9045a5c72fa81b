//! Builds the syntax tree from tokens, following Go's `text/template/parse`.

use std::collections::HashMap;

use super::error::ParseError;
use super::funcs::{self, Func};
use super::lex::{Pos, Tok, Token};

/// A sequence of nodes.
pub(crate) type List = Vec<Node>;

/// One node of a parsed template.
#[derive(Debug)]
pub(crate) enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`: prints the value unless the pipeline declares variables.
    Action(Pipeline),
    /// `{{ if }}`, `{{ with }}` or `{{ range }}`.
    Branch(Box<Branch>),
    /// `{{ template "name" pipeline }}`.
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipeline>,
    },
    /// `{{ break }}`.
    Break,
    /// `{{ continue }}`.
    Continue,
}

/// Which control structure a [`Branch`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BranchKind {
    If,
    With,
    Range,
}

/// A control structure with its optional `else` part.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) kind: BranchKind,
    pub(crate) pipe: Pipeline,
    pub(crate) list: List,
    pub(crate) else_list: Option<List>,
}

/// A pipeline, possibly declaring or assigning variables.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) pos: Pos,
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

/// One command of a pipeline: a function or value with arguments.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
}

/// An operand.
#[derive(Debug)]
pub(crate) enum Arg {
    /// `.`
    Dot,
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer constant (including character constants).
    Int(i64),
    /// A floating-point constant.
    Float(f64),
    /// A string constant.
    Str(String),
    /// `.A.B`: fields of dot.
    Field(Pos, Vec<String>),
    /// `$x.A.B`
    Variable(Pos, String, Vec<String>),
    /// A function, by the name written.
    Func(Pos, &'static Func),
    /// `(pipeline).A.B`
    Chain(Pos, Box<Arg>, Vec<String>),
    /// `(pipeline)`
    Pipe(Box<Pipeline>),
}

/// How deeply parentheses, control structures and `define`/`block` bodies may
/// nest. The parser and everything that walks its tree recurse once per level,
/// so without a bound a few kilobytes of `((((` written by a pod author would
/// overflow the stack of the injector's worker threads (2 MiB) and take the
/// whole webhook down. Go allows 10,000 nested parentheses because its stacks
/// grow; real templates nest fewer than ten levels.
pub const MAX_NESTING: usize = 100;

/// The parsed templates: the main one and any `define`d ones.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) root: List,
    pub(crate) defines: HashMap<String, List>,
}

/// Parses tokens into a [`Tree`].
pub(crate) fn parse(name: &str, tokens: Vec<Token<'_>>) -> Result<Tree, ParseError> {
    let mut p = Parser {
        name,
        toks: tokens,
        at: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        nesting: 0,
        tree: Tree::default(),
    };
    let (root, end) = p.list()?;
    if let Some((tok, pos)) = end {
        return Err(p.err_at(pos, format!("unexpected {{{{{tok}}}}}")));
    }
    p.tree.root = root;
    Ok(p.tree)
}

struct Parser<'n, 's> {
    name: &'n str,
    toks: Vec<Token<'s>>,
    at: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Open parentheses, control structures and definitions around the token
    /// being parsed.
    nesting: usize,
    tree: Tree,
}

/// What ended a list: `end`, `else` (with the rest of its action pending).
type ListEnd = Option<(&'static str, Pos)>;

impl<'s> Parser<'_, 's> {
    fn err_at(&self, pos: Pos, message: impl Into<String>) -> ParseError {
        ParseError {
            name: self.name.to_owned(),
            line: pos.line as usize,
            column: pos.col as usize,
            message: message.into(),
        }
    }

    /// Runs `parse` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        pos: Pos,
        parse: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.err_at(
                pos,
                format!(
                    "nested more than {MAX_NESTING} levels deep (parentheses, if, with, range, \
                     define and block count)"
                ),
            ));
        }
        self.nesting += 1;
        let parsed = parse(self);
        self.nesting -= 1;
        parsed
    }

    fn here(&self) -> Pos {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map(|t| t.pos)
            .unwrap_or_default()
    }

    fn peek(&self) -> Option<&Tok<'s>> {
        self.toks.get(self.at).map(|t| &t.tok)
    }

    /// Peeks past spaces.
    fn peek_ns(&self) -> Option<&Tok<'s>> {
        self.toks[self.at.min(self.toks.len())..]
            .iter()
            .map(|t| &t.tok)
            .find(|t| **t != Tok::Space)
    }

    fn next(&mut self) -> Option<Token<'s>> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn next_ns(&mut self) -> Option<Token<'s>> {
        loop {
            let t = self.next()?;
            if t.tok != Tok::Space {
                return Some(t);
            }
        }
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.at += 1;
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        let pos = self.here();
        match self.next_ns() {
            Some(Token {
                tok: Tok::Right, ..
            }) => Ok(()),
            _ => Err(self.err_at(pos, format!("unexpected token in {context}"))),
        }
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or the end of input.
    fn list(&mut self) -> Result<(List, ListEnd), ParseError> {
        let mut list = Vec::new();
        while let Some(t) = self.next() {
            match t.tok {
                Tok::Text(s) => list.push(Node::Text(s.to_owned())),
                Tok::Left => {
                    self.skip_space();
                    let pos = self.here();
                    if let Some(&Tok::Ident(word)) = self.peek() {
                        match word {
                            "end" => {
                                self.at += 1;
                                self.expect_right("end")?;
                                return Ok((list, Some(("end", pos))));
                            }
                            "else" => {
                                self.at += 1;
                                return Ok((list, Some(("else", pos))));
                            }
                            "if" | "with" | "range" => {
                                self.at += 1;
                                let kind = match word {
                                    "if" => BranchKind::If,
                                    "with" => BranchKind::With,
                                    _ => BranchKind::Range,
                                };
                                list.push(self.nested(pos, |p| p.branch(kind, pos))?);
                                continue;
                            }
                            "define" => {
                                self.at += 1;
                                self.nested(pos, |p| p.define(pos))?;
                                continue;
                            }
                            "template" | "block" => {
                                self.at += 1;
                                let is_block = word == "block";
                                list.push(self.nested(pos, |p| p.template(is_block, pos))?);
                                continue;
                            }
                            "break" | "continue" => {
                                self.at += 1;
                                if self.range_depth == 0 {
                                    return Err(self.err_at(
                                        pos,
                                        format!("{{{{{word}}}}} outside {{{{range}}}}"),
                                    ));
                                }
                                self.expect_right(word)?;
                                list.push(if word == "break" {
                                    Node::Break
                                } else {
                                    Node::Continue
                                });
                                continue;
                            }
                            _ => {}
                        }
                    }
                    let pipe = self.pipeline("command", true)?;
                    list.push(Node::Action(pipe));
                }
                other => return Err(self.err_at(t.pos, format!("unexpected {other:?}"))),
            }
        }
        Ok((list, None))
    }

    fn branch(&mut self, kind: BranchKind, pos: Pos) -> Result<Node, ParseError> {
        let context = match kind {
            BranchKind::If => "if",
            BranchKind::With => "with",
            BranchKind::Range => "range",
        };
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, kind == BranchKind::Range)?;
        if pipe.cmds.is_empty() {
            return Err(self.err_at(pos, format!("missing value for {context}")));
        }
        if kind == BranchKind::Range {
            self.range_depth += 1;
        }
        let listed = self.list();
        if kind == BranchKind::Range {
            self.range_depth -= 1;
        }
        let (list, end) = listed?;
        let else_list = match end {
            Some(("end", _)) => None,
            Some(("else", else_pos)) => {
                self.skip_space();
                // `{{else if ...}}` and `{{else with ...}}` nest a branch that
                // shares this one's `{{end}}`.
                let chained = match self.peek() {
                    Some(&Tok::Ident(w)) if w == "if" && kind == BranchKind::If => {
                        Some(BranchKind::If)
                    }
                    Some(&Tok::Ident(w)) if w == "with" && kind == BranchKind::With => {
                        Some(BranchKind::With)
                    }
                    _ => None,
                };
                if let Some(k) = chained {
                    let p = self.here();
                    self.at += 1;
                    Some(vec![self.nested(p, |parser| parser.branch(k, p))?])
                } else {
                    self.expect_right("else")?;
                    let (else_list, end) = self.list()?;
                    match end {
                        Some(("end", _)) => {}
                        Some((_, p)) => return Err(self.err_at(p, "expected end; found {{else}}")),
                        None => {
                            return Err(
                                self.err_at(else_pos, format!("unexpected EOF in {context}"))
                            );
                        }
                    }
                    Some(else_list)
                }
            }
            _ => return Err(self.err_at(pos, format!("unexpected EOF in {context}"))),
        };
        self.vars.truncate(vars_len);
        Ok(Node::Branch(Box::new(Branch {
            kind,
            pipe,
            list,
            else_list,
        })))
    }

    fn define(&mut self, pos: Pos) -> Result<(), ParseError> {
        let name = match self.next_ns() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => s.into_owned(),
            _ => return Err(self.err_at(pos, "expected template name in define")),
        };
        self.expect_right("define")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
        let (list, end) = self.list()?;
        self.vars = saved;
        if !matches!(end, Some(("end", _))) {
            return Err(self.err_at(pos, "unexpected EOF in define"));
        }
        self.tree.defines.insert(name, list);
        Ok(())
    }

    fn template(&mut self, is_block: bool, pos: Pos) -> Result<Node, ParseError> {
        let context = if is_block { "block" } else { "template" };
        let name = match self.next_ns() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => s.into_owned(),
            _ => return Err(self.err_at(pos, format!("expected template name in {context}"))),
        };
        let pipe = if self.peek_ns() == Some(&Tok::Right) {
            self.next_ns();
            None
        } else {
            Some(self.pipeline(context, false)?)
        };
        if is_block {
            let saved = std::mem::replace(&mut self.vars, vec!["$".to_owned()]);
            let (list, end) = self.list()?;
            self.vars = saved;
            if !matches!(end, Some(("end", _))) {
                return Err(self.err_at(pos, "unexpected EOF in block"));
            }
            self.tree.defines.insert(name.clone(), list);
        }
        Ok(Node::Template { pos, name, pipe })
    }

    /// Parses a pipeline up to the closing delimiter (or `)` when nested).
    fn pipeline(&mut self, context: &str, allow_decl: bool) -> Result<Pipeline, ParseError> {
        self.skip_space();
        let pos = self.here();
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Look for `$x :=`, `$x =` or `$i, $e :=`.
        if let Some(Tok::Variable(_)) = self.peek() {
            let save = self.at;
            let mut names = Vec::new();
            while let Some(Token {
                tok: Tok::Variable(v),
                ..
            }) = self.next_ns()
            {
                names.push(v.to_owned());
                match self.next_ns().map(|t| t.tok) {
                    Some(Tok::Declare) => {
                        decl = names;
                        break;
                    }
                    Some(Tok::Assign) => {
                        decl = names;
                        is_assign = true;
                        break;
                    }
                    Some(Tok::Comma) if allow_decl && names.len() == 1 => continue,
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.at = save;
            } else if decl.len() > 1 && context != "range" {
                return Err(self.err_at(pos, format!("too many declarations in {context}")));
            } else if is_assign {
                for v in &decl {
                    if !self.vars.contains(v) {
                        return Err(self.err_at(pos, format!("undefined variable \"{v}\"")));
                    }
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            match self.peek_ns() {
                Some(Tok::Right) => {
                    self.next_ns();
                    break;
                }
                Some(Tok::RParen) => {
                    if context != "parenthesized pipeline" {
                        return Err(self.err_at(self.here(), "unexpected right paren"));
                    }
                    self.next_ns();
                    break;
                }
                None => return Err(self.err_at(pos, format!("unclosed action in {context}"))),
                _ => {}
            }
            cmds.push(self.command()?);
            match self.peek_ns() {
                Some(Tok::Pipe) => {
                    self.next_ns();
                    if matches!(self.peek_ns(), Some(Tok::Right | Tok::RParen)) {
                        return Err(self.err_at(self.here(), "missing command after |"));
                    }
                }
                Some(Tok::Right | Tok::RParen) => {}
                _ => return Err(self.err_at(self.here(), format!("unexpected token in {context}"))),
            }
        }
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        if cmds.is_empty() && context != "range" && context != "if" && context != "with" {
            return Err(self.err_at(pos, format!("missing value for {context}")));
        }
        // Only functions and fields can take the previous stage's value.
        if let Some(c) = cmds.iter().skip(1).find(|c| {
            matches!(
                c.args.first(),
                Some(
                    Arg::Bool(_) | Arg::Nil | Arg::Int(_) | Arg::Float(_) | Arg::Str(_) | Arg::Dot
                )
            )
        }) {
            return Err(self.err_at(c.pos, "non executable command in pipeline stage"));
        }
        Ok(Pipeline {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        self.skip_space();
        let pos = self.here();
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::Right | Tok::RParen | Tok::Pipe) | None => break,
                _ => {}
            }
            args.push(self.operand()?);
            match self.peek() {
                Some(Tok::Space | Tok::Right | Tok::RParen | Tok::Pipe) => {}
                _ => return Err(self.err_at(self.here(), "missing space between arguments")),
            }
        }
        if args.is_empty() {
            return Err(self.err_at(pos, "empty command"));
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Arg, ParseError> {
        let Some(t) = self.next() else {
            return Err(self.err_at(self.here(), "unexpected EOF"));
        };
        let pos = t.pos;
        let term = match t.tok {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => {
                let mut fields = vec![f.to_owned()];
                self.fields(&mut fields);
                return Ok(Arg::Field(pos, fields));
            }
            Tok::Variable(v) => {
                if !self.vars.iter().any(|known| known == v) {
                    return Err(self.err_at(pos, format!("undefined variable \"{v}\"")));
                }
                let mut fields = Vec::new();
                self.fields(&mut fields);
                return Ok(Arg::Variable(pos, v.to_owned(), fields));
            }
            Tok::Ident(w) => match w {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => match funcs::lookup(w) {
                    Some(func) => Arg::Func(pos, func),
                    None => return Err(self.err_at(pos, format!("function \"{w}\" not defined"))),
                },
            },
            Tok::Str(s) => Arg::Str(s.into_owned()),
            Tok::Char(c) => Arg::Int(c),
            Tok::Number(n) => parse_number(n)
                .ok_or_else(|| self.err_at(pos, format!("bad number syntax: \"{n}\"")))?,
            Tok::LParen => {
                let pipe = self.nested(pos, |p| p.pipeline("parenthesized pipeline", false))?;
                Arg::Pipe(Box::new(pipe))
            }
            other => return Err(self.err_at(pos, format!("unexpected {other:?} in operand"))),
        };
        if let Some(Tok::Field(_)) = self.peek() {
            if matches!(
                term,
                Arg::Bool(_) | Arg::Nil | Arg::Int(_) | Arg::Float(_) | Arg::Str(_)
            ) {
                return Err(self.err_at(pos, "unexpected . after term"));
            }
            let mut fields = Vec::new();
            self.fields(&mut fields);
            return Ok(Arg::Chain(pos, Box::new(term), fields));
        }
        Ok(term)
    }

    fn fields(&mut self, fields: &mut Vec<String>) {
        while let Some(Tok::Field(f)) = self.peek() {
            fields.push((*f).to_owned());
            self.at += 1;
        }
    }
}

/// Parses a Go number literal the way `text/template` types it: integers
/// (decimal, hex, octal, binary, with `_`) become `int`, anything with a
/// fraction or exponent becomes `float64`.
fn parse_number(text: &str) -> Option<Arg> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        (!h.contains(['.', 'p']))
            .then(|| i64::from_str_radix(h, 16).ok())
            .flatten()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|b| b.is_ascii_digit()) && !lower.is_empty() {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Arg::Int(if neg { -i } else { i }));
    }
    if lower.starts_with("0x") {
        return None;
    }
    let f: f64 = lower.parse().ok()?;
    Some(Arg::Float(if neg { -f } else { f }))
}

/// Writes `.A.B` for a field chain.
fn write_fields(f: &mut std::fmt::Formatter<'_>, fields: &[String]) -> std::fmt::Result {
    fields.iter().try_for_each(|name| write!(f, ".{name}"))
}

/// Renders nodes back to template syntax for error messages, as Go's
/// `Node.String` does.
impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Dot => f.write_str("."),
            Arg::Nil => f.write_str("nil"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Int(i) => write!(f, "{i}"),
            Arg::Float(x) => write!(f, "{x}"),
            Arg::Str(s) => write!(f, "{s:?}"),
            Arg::Field(_, fields) => write_fields(f, fields),
            Arg::Variable(_, name, fields) => {
                f.write_str(name)?;
                write_fields(f, fields)
            }
            Arg::Func(_, func) => f.write_str(func.name),
            Arg::Chain(_, inner, fields) => {
                match inner.as_ref() {
                    Arg::Pipe(_) => write!(f, "{inner}")?,
                    other => write!(f, "{other}")?,
                }
                write_fields(f, fields)
            }
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Template;
    use super::MAX_NESTING;

    /// Parses `text` on a thread with the 2 MiB stack of a tokio worker.
    fn parse_on_small_stack(text: String) -> Result<(), String> {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                Template::parse("t", &text, "", "")
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .expect("spawn")
            .join()
            .expect("parser did not panic")
    }

    #[test]
    fn refuses_parentheses_nested_past_the_limit() {
        let deep = |n: usize| format!("{{{{{}1{}}}}}", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse_on_small_stack(deep(MAX_NESTING)), Ok(()));
        let err = parse_on_small_stack(deep(20_000)).expect_err("too deep");
        assert_eq!(
            err,
            format!(
                "t:1:{}: nested more than 100 levels deep (parentheses, if, with, range, \
                 define and block count)",
                MAX_NESTING + 3
            )
        );
    }

    #[test]
    fn refuses_control_structures_nested_past_the_limit() {
        for open in [
            "{{ if true }}",
            "{{ with 1 }}",
            "{{ range $x := 1 }}",
            "{{ block \"b\" . }}",
        ] {
            let text = format!("{}x{}", open.repeat(5_000), "{{ end }}".repeat(5_000));
            let err = parse_on_small_stack(text).expect_err(open);
            assert!(
                err.contains("nested more than 100 levels deep"),
                "{open}: {err}"
            );
        }
        let chain = format!(
            "{{{{ if false }}}}{}{{{{ end }}}}",
            "{{ else if false }}".repeat(5_000)
        );
        let err = parse_on_small_stack(chain).expect_err("else-if chain");
        assert!(err.contains("nested more than 100 levels deep"), "{err}");
        let ok = format!(
            "{}x{}",
            "{{ if true }}".repeat(MAX_NESTING),
            "{{ end }}".repeat(MAX_NESTING)
        );
        assert_eq!(parse_on_small_stack(ok), Ok(()));
    }
}
