//! Sprig's case conversions, `snakecase`, `kebabcase` and `camelcase`,
//! with huandu/xstrings v1.4.0's word rules: a word is a run of lower-case
//! letters with at most one capital before it, a run of capitals, a run
//! of digits, of punctuation, of connectors (`-`, `_`, white space) or of
//! anything else.

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::super::strings::is_go_space;

#[derive(Clone, Copy, PartialEq)]
enum Word {
    /// Nothing left.
    End,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || is_go_space(c)
}

/// Go's `unicode.IsPunct` for ASCII; other scripts' punctuation counts as
/// "other".
fn is_punct(c: char) -> bool {
    c.is_ascii() && "!\"#%&'()*,-./:;?@[\\]_{}".contains(c)
}

/// A letter that is not a CJK ideograph.
fn is_alphabet(c: char) -> bool {
    c.is_alphabetic() && !matches!(c, '\u{3400}'..='\u{4D85}' | '\u{4E00}'..='\u{9FCC}')
}

/// The first word of `s`, its kind and the rest of `s`.
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut chars = s.char_indices().peekable();
    let Some((_, first)) = chars.next() else {
        return (Word::End, "", "");
    };
    let run = |pred: &dyn Fn(char) -> bool| {
        s.char_indices()
            .skip(1)
            .find(|&(_, c)| !pred(c))
            .map_or(s.len(), |(i, _)| i)
    };
    let lower_run = |c: char| is_alphabet(c) && !c.is_uppercase();
    let (kind, end) = if is_connector(first) {
        (Word::Connector, run(&is_connector))
    } else if is_punct(first) {
        (Word::Punct, run(&is_punct))
    } else if first.is_uppercase() {
        let end = match chars.peek().copied() {
            Some((_, next)) if next.is_uppercase() => {
                let upper_end = run(&|c: char| c.is_uppercase());
                match s[upper_end..].chars().next() {
                    // The last capital starts the next word: `HTTPServer`.
                    Some(after) if is_alphabet(after) => s[..upper_end]
                        .char_indices()
                        .last()
                        .map_or(upper_end, |(i, _)| i),
                    _ => upper_end,
                }
            }
            Some((i, next)) if is_alphabet(next) => s[i..]
                .char_indices()
                .find(|&(_, c)| !lower_run(c))
                .map_or(s.len(), |(j, _)| i + j),
            Some((i, _)) => i,
            None => s.len(),
        };
        (Word::Upper, end)
    } else if is_alphabet(first) {
        (Word::Alphabet, run(&lower_run))
    } else if first.is_numeric() {
        (Word::Number, run(&|c: char| c.is_numeric()))
    } else {
        let other = |c: char| !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c));
        (Word::Other, run(&other))
    };
    (kind, &s[..end], &s[end..])
}

/// Appends a word in lower case, connectors replaced by `connector`.
fn push_lower(out: &mut String, kind: Word, word: &str, connector: char) {
    if kind != Word::Upper && kind != Word::Connector {
        out.push_str(word);
        return;
    }
    for c in word.chars() {
        if is_connector(c) {
            out.push(connector);
        } else {
            out.extend(c.to_lowercase().next());
        }
    }
}

/// xstrings' `camelCaseToLowerCase`: words in lower case joined by
/// `connector`, a number kept with the letters around it.
fn to_lower_case(s: &str, connector: char) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    let (mut kind, mut word, mut rest) = next_word(s);
    while !rest.is_empty() {
        if kind != Word::Connector {
            push_lower(&mut out, kind, word, connector);
        }
        let (prev, last) = (kind, word);
        (kind, word, rest) = next_word(rest);
        match prev {
            Word::Number => {
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lower(&mut out, kind, word, connector);
                    (kind, word, rest) = next_word(rest);
                }
                if !matches!(kind, Word::End | Word::Punct | Word::Connector) {
                    out.push(connector);
                }
            }
            Word::Connector => push_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ if kind != Word::Number => {
                if !matches!(kind, Word::Connector | Word::Punct) {
                    out.push(connector);
                }
            }
            _ if rest.is_empty() => {}
            _ => {
                let number = word;
                (kind, word, rest) = next_word(rest);
                if kind != Word::Alphabet {
                    push_lower(&mut out, Word::Number, number, connector);
                    if !matches!(kind, Word::Connector | Word::Punct) {
                        out.push(connector);
                    }
                    continue;
                }
                out.push(connector);
                push_lower(&mut out, Word::Number, number, connector);
                while matches!(kind, Word::Alphabet | Word::Number) {
                    push_lower(&mut out, kind, word, connector);
                    (kind, word, rest) = next_word(rest);
                }
                if !matches!(kind, Word::End | Word::Connector | Word::Punct) {
                    out.push(connector);
                }
            }
        }
    }
    push_lower(&mut out, kind, word, connector);
    out
}

/// `snakecase s`: `FirstName` is `first_name`.
pub(in super::super) fn snakecase<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(to_lower_case(string_arg(&args[0])?, '_')))
}

/// `kebabcase s`: `FirstName` is `first-name`.
pub(in super::super) fn kebabcase<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(to_lower_case(string_arg(&args[0])?, '-')))
}

/// Go's `unicode.ToUpper` of one character.
fn upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// `camelcase s`: `http_server` is `HttpServer`; connectors between words
/// dropped (all but one of a run kept), the letter after one capitalised.
pub(in super::super) fn camelcase<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut current = None;
    for c in chars.by_ref() {
        if !is_connector(c) {
            current = Some(upper(c));
            break;
        }
        out.push(c);
        current = Some(c);
    }
    let Some(mut r0) = current else {
        return Ok(owned(out));
    };
    for next in chars {
        let r1 = r0;
        r0 = next;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
        } else if is_connector(r1) {
            r0 = upper(r0);
        } else {
            out.push(r1);
        }
    }
    out.push(r0);
    Ok(owned(out))
}
