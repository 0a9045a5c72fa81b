//! Splits template text into text runs and action tokens, as Go's
//! `text/template/parse` lexer does (trim markers, comments, delimiters).
//!
//! Tokens borrow their text from the source: the injector lexes every template
//! of every pod it admits, and the parser copies only what the tree keeps.

use std::borrow::Cow;

use super::error::ParseError;

/// A position in the template source: 1-based line, 1-based byte column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: u32,
    pub(crate) col: u32,
}

/// One lexical item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'s> {
    /// Literal text between actions (already trimmed by `{{-`/`-}}`).
    Text(&'s str),
    /// Start of an action.
    Left,
    /// End of an action.
    Right,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `|`
    Pipe,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// `,`
    Comma,
    /// `.` on its own.
    Dot,
    /// `.Name`: one field step (a chain is several of these).
    Field(&'s str),
    /// `$name` or `$`.
    Variable(&'s str),
    /// A bare word: keyword, function name, `true`/`false`/`nil`.
    Ident(&'s str),
    /// A quoted or raw string, unescaped: borrowed unless it had escapes.
    Str(Cow<'s, str>),
    /// A character constant's value.
    Char(i64),
    /// A number's source text.
    Number(&'s str),
    /// Whitespace inside an action, significant before a field (`x .y`).
    Space,
}

/// A token with where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Token<'s> {
    pub(crate) tok: Tok<'s>,
    pub(crate) pos: Pos,
}

/// Lexes `text` into tokens.
pub(crate) fn lex<'s>(
    name: &str,
    text: &'s str,
    left: &'s str,
    right: &'s str,
) -> Result<Vec<Token<'s>>, ParseError> {
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    Lexer {
        name,
        src: text,
        left,
        right,
        at: 0,
        // Enough for a typical template's tokens in one allocation.
        out: Vec::with_capacity(32),
        trim_next: false,
        line_starts: std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect(),
    }
    .run()
}

struct Lexer<'n, 's> {
    name: &'n str,
    src: &'s str,
    left: &'s str,
    right: &'s str,
    at: usize,
    out: Vec<Token<'s>>,
    trim_next: bool,
    /// Byte offset where each line starts, for positions.
    line_starts: Vec<usize>,
}

/// Where `needle` first starts in `hay`. Templates are short and delimiters
/// a few bytes, so looking for the first byte and comparing the rest costs
/// less than setting up `str::find`'s substring searcher for each piece of
/// text.
fn find(hay: &str, needle: &str) -> Option<usize> {
    let (&first, _) = needle.as_bytes().split_first()?;
    let hay = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at..].starts_with(needle.as_bytes()) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'s> Lexer<'_, 's> {
    fn pos_of(&self, offset: usize) -> Pos {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        Pos {
            line: line as u32,
            col: (offset - line_start + 1) as u32,
        }
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let pos = self.pos_of(offset);
        ParseError {
            name: self.name.to_owned(),
            line: pos.line as usize,
            column: pos.col as usize,
            message: message.into(),
        }
    }

    fn push(&mut self, offset: usize, tok: Tok<'s>) {
        let pos = self.pos_of(offset);
        self.out.push(Token { tok, pos });
    }

    fn rest(&self) -> &'s str {
        &self.src[self.at..]
    }

    fn run(mut self) -> Result<Vec<Token<'s>>, ParseError> {
        while self.at < self.src.len() {
            let start = self.at;
            let end = find(self.rest(), self.left).map_or(self.src.len(), |i| start + i);
            let after_left = &self.src[end.min(self.src.len())..];
            let mut text = &self.src[start..end];
            if self.trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
                self.trim_next = false;
            }
            let trim_left = end < self.src.len() && {
                let b = after_left.as_bytes();
                let l = self.left.len();
                b.len() > l + 1 && b[l] == b'-' && is_space(b[l + 1])
            };
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let off = text.as_ptr() as usize - self.src.as_ptr() as usize;
                self.push(off, Tok::Text(text));
            }
            if end >= self.src.len() {
                break;
            }
            self.at = end + self.left.len();
            if trim_left {
                self.at += 2;
            }
            self.action(end)?;
        }
        Ok(self.out)
    }

    /// Lexes one action, starting just after the left delimiter.
    fn action(&mut self, left_at: usize) -> Result<(), ParseError> {
        // A comment must follow the delimiter (and trim marker) directly.
        if self.rest().starts_with("/*") {
            let Some(close) = self.rest().find("*/") else {
                return Err(self.err(left_at, "unclosed comment"));
            };
            self.at += close + 2;
            if let Some(trimmed) = self.right_with_trim() {
                self.at += trimmed;
                return Ok(());
            }
            return Err(self.err(left_at, "comment ends before closing delimiter"));
        }
        self.push(left_at, Tok::Left);
        let mut paren_depth = 0usize;
        loop {
            if let Some(n) = self.right_with_trim() {
                if paren_depth > 0 {
                    return Err(self.err(self.at, "unclosed left paren"));
                }
                let at = self.at;
                self.push(at, Tok::Right);
                self.at += n;
                return Ok(());
            }
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return Err(self.err(left_at, "unclosed action"));
            };
            let start = self.at;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    let n = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                    self.at += n;
                    self.push(start, Tok::Space);
                }
                '(' => {
                    paren_depth += 1;
                    self.at += 1;
                    self.push(start, Tok::LParen);
                }
                ')' => {
                    if paren_depth == 0 {
                        return Err(self.err(start, "unexpected right paren"));
                    }
                    paren_depth -= 1;
                    self.at += 1;
                    self.push(start, Tok::RParen);
                }
                '|' => {
                    self.at += 1;
                    self.push(start, Tok::Pipe);
                }
                ',' => {
                    self.at += 1;
                    self.push(start, Tok::Comma);
                }
                '=' => {
                    self.at += 1;
                    self.push(start, Tok::Assign);
                }
                ':' => {
                    if !rest.starts_with(":=") {
                        return Err(self.err(start, "expected :="));
                    }
                    self.at += 2;
                    self.push(start, Tok::Declare);
                }
                '"' => {
                    let s = self.quoted(start)?;
                    self.push(start, Tok::Str(s));
                }
                '`' => {
                    let Some(end) = rest[1..].find('`') else {
                        return Err(self.err(start, "unterminated raw quoted string"));
                    };
                    let s = &rest[1..1 + end];
                    self.at += end + 2;
                    self.push(start, Tok::Str(Cow::Borrowed(s)));
                }
                '\'' => {
                    let v = self.char_const(start)?;
                    self.push(start, Tok::Char(v));
                }
                '$' => {
                    let n = 1 + word_len(&rest[1..]);
                    let name = &rest[..n];
                    self.at += n;
                    self.push(start, Tok::Variable(name));
                }
                '.' => {
                    let after = &rest[1..];
                    if after.starts_with(|c: char| c.is_ascii_digit()) {
                        self.number(start)?;
                    } else {
                        let n = word_len(after);
                        let tok = if n == 0 {
                            Tok::Dot
                        } else {
                            Tok::Field(&after[..n])
                        };
                        self.at += 1 + n;
                        self.push(start, tok);
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                c if c == '_' || c.is_alphabetic() => {
                    let n = word_len(rest);
                    let w = &rest[..n];
                    self.at += n;
                    self.push(start, Tok::Ident(w));
                }
                c => {
                    return Err(self.err(start, format!("unrecognized character in action: {c:?}")));
                }
            }
        }
    }

    /// If a right delimiter (optionally preceded by a trim marker) starts
    /// here, returns its length and records whether to trim what follows.
    fn right_with_trim(&mut self) -> Option<usize> {
        let rest = self.rest().as_bytes();
        if rest.len() >= 2
            && is_space(rest[0])
            && rest[1] == b'-'
            && rest[2..].starts_with(self.right.as_bytes())
        {
            self.trim_next = true;
            return Some(2 + self.right.len());
        }
        rest.starts_with(self.right.as_bytes())
            .then_some(self.right.len())
    }

    fn quoted(&mut self, start: usize) -> Result<Cow<'s, str>, ParseError> {
        let bytes = self.src.as_bytes();
        let mut i = self.at + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => return Err(self.err(start, "unterminated quoted string")),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let body = &self.src[self.at + 1..i];
        self.at = i + 1;
        unescape(body, '"').map_err(|m| self.err(start, m))
    }

    fn char_const(&mut self, start: usize) -> Result<i64, ParseError> {
        let bytes = self.src.as_bytes();
        let mut i = self.at + 1;
        loop {
            match bytes.get(i) {
                None | Some(b'\n') => {
                    return Err(self.err(start, "unterminated character constant"));
                }
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let body = &self.src[self.at + 1..i];
        self.at = i + 1;
        let s = unescape(body, '\'').map_err(|m| self.err(start, m))?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(i64::from(u32::from(c))),
            _ => Err(self.err(start, format!("malformed character constant: '{body}'"))),
        }
    }

    fn number(&mut self, start: usize) -> Result<(), ParseError> {
        let rest = self.rest();
        let n = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '_'
                    || ((c == '+' || c == '-')
                        && (i == 0 || matches!(rest.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P'))))
            })
            .map_or(rest.len(), |(i, _)| i);
        let text = &rest[..n];
        self.at += n;
        if text == "+" || text == "-" {
            return Err(self.err(start, format!("bad number syntax: {text:?}")));
        }
        self.push(start, Tok::Number(text));
        Ok(())
    }
}

/// Length of the identifier (letters, digits, `_`) at the start of `s`.
/// Go's letters and digits are Unicode's; ASCII is checked a byte at a time
/// first because almost every identifier is ASCII.
fn word_len(s: &str) -> usize {
    let ascii = s
        .bytes()
        .position(|b| !(b == b'_' || b.is_ascii_alphanumeric()))
        .unwrap_or(s.len());
    if s.as_bytes().get(ascii).is_none_or(u8::is_ascii) {
        return ascii;
    }
    s[ascii..]
        .char_indices()
        .find(|&(_, c)| !(c == '_' || c.is_alphanumeric()))
        .map_or(s.len(), |(i, _)| ascii + i)
}

/// Interprets Go escape sequences in a quoted string or character body.
fn unescape(body: &str, quote: char) -> Result<Cow<'_, str>, String> {
    if !body.contains('\\') {
        return Ok(Cow::Borrowed(body));
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or("unterminated escape")?;
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            q if q == quote => out.push(q),
            'x' | 'u' | 'U' => {
                let len = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(len).collect();
                let v = u32::from_str_radix(&hex, 16)
                    .map_err(|_| format!("invalid escape \\{e}{hex}"))?;
                if e == 'x' {
                    // Go strings are bytes; keep ASCII exact and map others to chars.
                    out.push(char::from(v as u8));
                } else {
                    out.push(
                        char::from_u32(v).ok_or_else(|| format!("invalid escape \\{e}{hex}"))?,
                    );
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or("invalid octal escape")?;
                    v = v * 8 + d;
                }
                out.push(char::from(v as u8));
            }
            other => return Err(format!("unknown escape sequence: \\{other}")),
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_returns_where_a_delimiter_first_starts() {
        assert_eq!(find("a {b {{c}}", "{{"), Some(5));
        assert_eq!(find("{{{", "{{"), Some(0));
        assert_eq!(find("a { b", "{{"), None);
        assert_eq!(find("x «« y", "««"), Some(2));
        assert_eq!(find("«", "««"), None);
        assert_eq!(find("abc", ""), None);
    }
}
