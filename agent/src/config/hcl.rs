//! HCL text to the generic JSON tree that [`super::parse`] reads.
//!
//! Vault Agent (`bao agent`) reads its config with HCL 1 (`hashicorp/hcl`
//! v1), so this module reads HCL 1 itself rather than through hcl-rs, which
//! implements HCL 2. The two languages disagree on files found in the wild,
//! and hcl-rs cannot be told to read them as HCL 1:
//! - a key may be quoted (`"auto_auth" = { ... }`), and `key = { ... }` is the
//!   same as `key { ... }`, labelled blocks included (`auto_auth = { method
//!   "jwt" { ... } }`): HCL 2 has no blocks inside an object expression;
//! - a key may be given twice in one block: the later value wins, and a block
//!   given twice is two entries;
//! - an integer with a leading zero is octal (`perms = 0600`);
//! - `${...}` inside a string is plain text, not an expression;
//! - a heredoc keeps the indentation of its closing marker's line.
//!
//! The tree has the shape Vault Agent's own decoder sees: every block becomes
//! a list entry under its name (`template { }` twice is
//! `"template": [{..}, {..}]`), and a block label becomes one more level of
//! object (`method "jwt" { }` is `"method": [{"jwt": {..}}]`), which is also
//! how labelled blocks are written in Vault Agent JSON.

use std::collections::HashSet;

use serde_json::{Map, Number, Value};

use super::{Error, Result};

/// Parses HCL text into the generic tree.
pub(super) fn to_json(text: &str) -> Result<Value> {
    let mut parser = Parser {
        lexer: Lexer::new(text),
        peeked: None,
    };
    parser.body().map(Value::Object)
}

/// A lexical token and where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A quoted string or a heredoc, already unquoted.
    Str(String),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Comma,
    Assign,
    Eof,
}

impl Token {
    fn describe(&self) -> &'static str {
        match self {
            Token::Ident(_) => "a name",
            Token::Bool(_) => "a boolean",
            Token::Int(_) | Token::Float(_) => "a number",
            Token::Str(_) => "a string",
            Token::LBrace => "'{'",
            Token::RBrace => "'}'",
            Token::LBrack => "'['",
            Token::RBrack => "']'",
            Token::Comma => "','",
            Token::Assign => "'='",
            Token::Eof => "the end of the file",
        }
    }
}

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy)]
struct Pos {
    line: usize,
    column: usize,
}

fn syntax(pos: Pos, message: impl std::fmt::Display) -> Error {
    Error::Hcl(format!(
        "line {}, column {}: {message}",
        pos.line, pos.column
    ))
}

struct Lexer<'a> {
    text: &'a str,
    offset: usize,
    pos: Pos,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            text,
            offset: 0,
            pos: Pos { line: 1, column: 1 },
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.text[self.offset..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.offset;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.text[start..self.offset]
    }

    /// The next token, skipping white space and comments.
    fn next(&mut self) -> Result<(Token, Pos)> {
        loop {
            self.bump_while(char::is_whitespace);
            let start = self.pos;
            let Some(c) = self.peek() else {
                return Ok((Token::Eof, start));
            };
            let token = match c {
                '#' => {
                    self.bump_while(|c| c != '\n');
                    continue;
                }
                '/' => {
                    self.comment(start)?;
                    continue;
                }
                '"' => Token::Str(self.string(start)?),
                '<' => Token::Str(self.heredoc(start)?),
                '{' | '}' | '[' | ']' | ',' | '=' => {
                    self.bump();
                    match c {
                        '{' => Token::LBrace,
                        '}' => Token::RBrace,
                        '[' => Token::LBrack,
                        ']' => Token::RBrack,
                        ',' => Token::Comma,
                        _ => Token::Assign,
                    }
                }
                '-' if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => {
                    self.number(start)?
                }
                c if c.is_ascii_digit() => self.number(start)?,
                c if is_letter(c) => {
                    let name = self
                        .bump_while(|c| is_letter(c) || c.is_ascii_digit() || c == '-' || c == '.');
                    match name {
                        "true" => Token::Bool(true),
                        "false" => Token::Bool(false),
                        _ => Token::Ident(name.to_owned()),
                    }
                }
                c => return Err(syntax(start, format!("unexpected character {c:?}"))),
            };
            return Ok((token, start));
        }
    }

    /// `// ...` or `/* ... */`.
    fn comment(&mut self, start: Pos) -> Result<()> {
        self.bump();
        match self.bump() {
            Some('/') => {
                self.bump_while(|c| c != '\n');
                Ok(())
            }
            Some('*') => match self.text[self.offset..].find("*/") {
                Some(end) => {
                    let target = self.offset + end + 2;
                    while self.offset < target {
                        self.bump();
                    }
                    Ok(())
                }
                None => Err(syntax(start, "comment not terminated")),
            },
            _ => Err(syntax(start, "expected '/' for comment")),
        }
    }

    /// An integer (decimal, octal with a leading zero, hexadecimal with
    /// `0x`) or a float, as HCL 1 reads them.
    fn number(&mut self, start: Pos) -> Result<Token> {
        let begin = self.offset;
        if self.peek() == Some('-') {
            self.bump();
        }
        if self.text[self.offset..].starts_with("0x") || self.text[self.offset..].starts_with("0X")
        {
            self.bump();
            self.bump();
            let digits = self.bump_while(|c| c.is_ascii_hexdigit());
            let negative = self.text[begin..].starts_with('-');
            return i64::from_str_radix(digits, 16)
                .map(|n| Token::Int(if negative { -n } else { n }))
                .map_err(|_| syntax(start, "illegal hexadecimal number"));
        }
        self.bump_while(|c| c.is_ascii_digit());
        let mut float = false;
        if self.peek() == Some('.') {
            float = true;
            self.bump();
            self.bump_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            float = true;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            self.bump_while(|c| c.is_ascii_digit());
        }
        let text = &self.text[begin..self.offset];
        if float {
            return text
                .parse()
                .map(Token::Float)
                .map_err(|_| syntax(start, format!("{text} is not a number")));
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        let value = if digits.len() > 1 && digits.starts_with('0') {
            i64::from_str_radix(digits, 8)
                .map_err(|_| syntax(start, format!("{text} is not a valid octal number")))?
        } else {
            digits
                .parse()
                .map_err(|_| syntax(start, format!("{text} is out of range")))?
        };
        Ok(Token::Int(if negative { -value } else { value }))
    }

    /// A quoted string. Escapes are read as in Go; `${...}` is kept as it is
    /// written, and only inside it may the string span lines.
    fn string(&mut self, start: Pos) -> Result<String> {
        self.bump();
        let mut out = String::new();
        let mut braces = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(syntax(start, "string not terminated"));
            };
            match c {
                '\n' if braces == 0 => return Err(syntax(start, "string not terminated")),
                '"' if braces == 0 => return Ok(out),
                '$' if braces == 0 && self.peek() == Some('{') => {
                    self.bump();
                    braces = 1;
                    out.push_str("${");
                }
                '\\' if braces > 0 => {
                    // Inside `${...}` escapes stay as written.
                    out.push('\\');
                    if let Some(next) = self.bump() {
                        out.push(next);
                    }
                }
                '\\' => out.push(self.escape(start)?),
                _ => {
                    if braces > 0 {
                        match c {
                            '{' => braces += 1,
                            '}' => braces -= 1,
                            _ => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// The character after a backslash, as Go's `strconv.Unquote` reads it.
    fn escape(&mut self, start: Pos) -> Result<char> {
        let bad = || syntax(start, "invalid escape sequence in string");
        let c = self.bump().ok_or_else(bad)?;
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        let (radix, len, first) = match c {
            '0'..='7' => (8, 3, Some(c)),
            'x' => (16, 2, None),
            'u' => (16, 4, None),
            'U' => (16, 8, None),
            _ => return Err(bad()),
        };
        let mut digits: String = first.into_iter().collect();
        while digits.len() < len {
            match self.peek() {
                Some(d) if d.is_digit(radix) => {
                    digits.push(d);
                    self.bump();
                }
                _ => return Err(bad()),
            }
        }
        let code = u32::from_str_radix(&digits, radix).map_err(|_| bad())?;
        char::from_u32(code).ok_or_else(bad)
    }

    /// `<<EOF` or `<<-EOF` up to the line holding only the marker, which
    /// must end with a newline.
    ///
    /// The value is what HCL 1 makes of it: for `<<` the lines in between
    /// followed by the white space before the closing marker; for `<<-` the
    /// same lines without the closing marker's indentation when every line
    /// has it, and otherwise as `<<` without the white space at its end.
    fn heredoc(&mut self, start: Pos) -> Result<String> {
        if !self.text[self.offset..].starts_with("<<") {
            return Err(syntax(start, "unexpected character '<'"));
        }
        self.bump();
        self.bump();
        let indented = self.peek() == Some('-');
        if indented {
            self.bump();
        }
        let marker = self.bump_while(|c| is_letter(c) || c.is_ascii_digit());
        if self.peek() == Some('\r') {
            self.bump();
        }
        if marker.is_empty() {
            return Err(syntax(start, "heredoc has no marker"));
        }
        if self.bump() != Some('\n') {
            return Err(syntax(start, "invalid characters after the heredoc marker"));
        }
        let body_start = self.offset;
        loop {
            let line_start = self.offset;
            let line = self.bump_while(|c| c != '\n');
            if self.bump().is_none() {
                return Err(syntax(
                    start,
                    format!("heredoc not terminated: no line {marker:?} followed by a newline"),
                ));
            }
            let bare = line
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .trim_end_matches('\r');
            if bare == marker {
                let body = &self.text[body_start..line_start];
                let indent = &line[..line.len() - line.trim_start().len()];
                return Ok(heredoc_value(body, indent, indented));
            }
        }
    }
}

/// The value of a heredoc whose lines are `body` (each ending with a
/// newline) and whose closing marker is indented by `indent`.
fn heredoc_value(body: &str, indent: &str, indented: bool) -> String {
    let as_written = format!("{body}{indent}");
    if !indented {
        return as_written;
    }
    let lines: Vec<&str> = body.lines().collect();
    if lines.iter().all(|line| line.starts_with(indent)) {
        lines
            .iter()
            .map(|line| format!("{}\n", &line[indent.len()..]))
            .collect()
    } else {
        let mut text = as_written;
        text.pop();
        text.trim_end_matches([' ', '\t']).to_owned()
    }
}

fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic())
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Token, Pos)>,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<(Token, Pos)> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next(),
        }
    }

    fn peek(&mut self) -> Result<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().map_or(&Token::Eof, |(token, _)| token))
    }

    /// The whole file: items up to the end.
    fn body(&mut self) -> Result<Map<String, Value>> {
        let mut object = Object::default();
        while *self.peek()? != Token::Eof {
            self.item(&mut object)?;
        }
        Ok(object.map)
    }

    /// `{ items }`, the opening brace already read.
    fn object(&mut self, open: Pos) -> Result<Map<String, Value>> {
        let mut object = Object::default();
        loop {
            match self.peek()? {
                Token::RBrace => {
                    self.next()?;
                    return Ok(object.map);
                }
                Token::Eof => return Err(syntax(open, "'{' is never closed")),
                _ => self.item(&mut object)?,
            }
        }
    }

    /// `key = value`, `key { ... }` or `key "label" ... { ... }`, then an
    /// optional comma.
    fn item(&mut self, object: &mut Object) -> Result<()> {
        let mut keys = Vec::new();
        let value = loop {
            let (token, pos) = self.next()?;
            match token {
                Token::Ident(key) | Token::Str(key) => keys.push((key, pos)),
                Token::Assign if keys.len() == 1 => break self.value()?,
                Token::Assign if keys.is_empty() => {
                    return Err(syntax(pos, "expected a key before '='"));
                }
                Token::Assign => {
                    return Err(syntax(pos, "a labelled block takes '{', not '='"));
                }
                Token::LBrace if !keys.is_empty() => break Value::Object(self.object(pos)?),
                other => {
                    let what = if keys.is_empty() {
                        "a key"
                    } else {
                        "'=' or '{' after the key"
                    };
                    return Err(syntax(
                        pos,
                        format!("expected {what}, found {}", other.describe()),
                    ));
                }
            }
        };
        if *self.peek()? == Token::Comma {
            self.next()?;
        }
        let mut keys = keys.into_iter();
        let Some((name, pos)) = keys.next() else {
            return Err(Error::Hcl("expected a key".to_owned()));
        };
        let value = keys.rev().fold(value, |inner, (label, _)| {
            Value::Object(Map::from_iter([(label, inner)]))
        });
        object.insert(name, value, pos)
    }

    /// The value after `=`.
    fn value(&mut self) -> Result<Value> {
        let (token, pos) = self.next()?;
        match token {
            Token::Bool(b) => Ok(Value::Bool(b)),
            Token::Int(n) => Ok(Value::from(n)),
            Token::Float(f) => Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| syntax(pos, "number out of range")),
            Token::Str(s) => Ok(Value::String(s)),
            Token::LBrace => self.object(pos).map(Value::Object),
            Token::LBrack => self.list(pos),
            other => Err(syntax(
                pos,
                format!(
                    "expected a value (a string, number, boolean, list or object), found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// `[ value, ... ]`, the opening bracket already read; a trailing comma
    /// is allowed.
    fn list(&mut self, open: Pos) -> Result<Value> {
        let mut items = Vec::new();
        loop {
            if *self.peek()? == Token::RBrack {
                self.next()?;
                return Ok(Value::Array(items));
            }
            if *self.peek()? == Token::Eof {
                return Err(syntax(open, "'[' is never closed"));
            }
            items.push(self.value()?);
            let (token, pos) = self.next()?;
            match token {
                Token::Comma => {}
                Token::RBrack => return Ok(Value::Array(items)),
                other => {
                    return Err(syntax(
                        pos,
                        format!("expected ',' or ']' in a list, found {}", other.describe()),
                    ));
                }
            }
        }
    }
}

/// The items of one block, as the tree holds them.
#[derive(Default)]
struct Object {
    map: Map<String, Value>,
    /// Keys whose value is the list of blocks given under that name.
    blocks: HashSet<String>,
}

impl Object {
    /// A block (an object value) is appended to the entries under its name;
    /// any other value replaces an earlier one, as the later one wins in
    /// HCL 1.
    fn insert(&mut self, name: String, value: Value, pos: Pos) -> Result<()> {
        let is_block = value.is_object();
        let was_block = self.blocks.contains(&name);
        if self.map.contains_key(&name) && is_block != was_block {
            return Err(syntax(
                pos,
                format!("{name:?} is given both as a value and as a block"),
            ));
        }
        if !is_block {
            self.map.insert(name, value);
            return Ok(());
        }
        if let Some(Value::Array(entries)) = self.map.get_mut(&name) {
            entries.push(value);
        } else {
            self.blocks.insert(name.clone());
            self.map.insert(name, Value::Array(vec![value]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(text: &str) -> Value {
        to_json(text).expect("is accepted")
    }

    fn error(text: &str) -> String {
        to_json(text).expect_err("is rejected").to_string()
    }

    #[test]
    fn groups_blocks_by_name_and_nests_labels() {
        let tree = tree(
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
        );
        assert_eq!(
            tree,
            json!({
                "pid_file": "/p",
                "auto_auth": [{"method": [{"kubernetes": {"config": [{"role": "app"}]}}]}],
                "template": [{"destination": "a"}, {"destination": "b"}],
            })
        );
    }

    #[test]
    fn reads_quoted_keys_and_assigned_blocks_with_labels_inside() {
        let tree = tree(
            r#"
            "auto_auth" = {
              method "jwt" { config = { path = "/j", role = "r" } }
              "sink" = { type = "file", config { path = "/t" } }
            }
            "#,
        );
        assert_eq!(
            tree,
            json!({"auto_auth": [{
                "method": [{"jwt": {"config": [{"path": "/j", "role": "r"}]}}],
                "sink": [{"type": "file", "config": [{"path": "/t"}]}],
            }]})
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_later_value() {
        assert_eq!(
            tree("a = 1\na = \"two\"\nb { c = 1\n c = 2 }"),
            json!({"a": "two", "b": [{"c": 2}]})
        );
    }

    #[test]
    fn reads_numbers_as_hcl1_does() {
        assert_eq!(
            tree("a = 0600\nb = 600\nc = 0\nd = -5\ne = 0x1F\nf = 0.7\ng = 1e3\n"),
            json!({"a": 384, "b": 600, "c": 0, "d": -5, "e": 31, "f": 0.7, "g": 1000.0})
        );
        assert_eq!(
            error("template {\n perms = 0999\n}\n"),
            "invalid HCL: line 2, column 10: 0999 is not a valid octal number"
        );
    }

    #[test]
    fn keeps_interpolation_as_text_and_reads_escapes() {
        assert_eq!(
            tree(r#"a = "x=${HOME} \"q\" \t\u00e9\101 ${f("x\n")}""#),
            json!({"a": "x=${HOME} \"q\" \té\u{41} ${f(\"x\\n\")}"})
        );
        assert_eq!(
            error("a = \"\\q\""),
            "invalid HCL: line 1, column 5: invalid escape sequence in string"
        );
    }

    #[test]
    fn reads_heredocs_as_hcl1_does() {
        let cases = [
            ("a = <<EOT\n{{ .Data }}\nEOT\n", "{{ .Data }}\n"),
            ("a = <<EOT\nx\n  EOT\n", "x\n  "),
            ("a = <<-EOT\n    x\n      y\n    EOT\n", "x\n  y\n"),
            ("a = <<-EOT\n  x\n y\n  EOT\n", "  x\n y\n"),
        ];
        for (text, value) in cases {
            assert_eq!(tree(text), json!({"a": value}), "{text}");
        }
        assert_eq!(
            error("a = <<EOT\nx\nEOT"),
            "invalid HCL: line 1, column 5: heredoc not terminated: no line \"EOT\" followed by a newline"
        );
    }

    #[test]
    fn skips_comments_and_separating_commas() {
        assert_eq!(
            tree("# a\n// b\n/* c\n d */ x = [1, 2,], y = true\n"),
            json!({"x": [1, 2], "y": true})
        );
    }

    #[test]
    fn reports_syntax_errors_with_line_and_column() {
        let cases = [
            (
                "a {\n b = 1\n",
                "invalid HCL: line 1, column 3: '{' is never closed",
            ),
            (
                "exit_after_auth = VAR\n",
                "invalid HCL: line 1, column 19: expected a value (a string, number, boolean, list or object), found a name",
            ),
            (
                "a \"b\" = {}\n",
                "invalid HCL: line 1, column 7: a labelled block takes '{', not '='",
            ),
            (
                "a\n",
                "invalid HCL: line 2, column 1: expected '=' or '{' after the key, found the end of the file",
            ),
            (
                "a = \"x\ny\"\n",
                "invalid HCL: line 1, column 5: string not terminated",
            ),
            (
                "vault {}\nvault = 1\n",
                "invalid HCL: line 2, column 1: \"vault\" is given both as a value and as a block",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(error(text), message, "{text}");
        }
    }
}
