//! Template text nested and repeated past the parser's and the injector's limits.

use keyhole_agent::template::MAX_NESTING;
use keyhole_injector::limits::MAX_TEMPLATE_BYTES;

/// Deepest nesting the generator builds: far past [`MAX_NESTING`], and past the depth
/// (2,800 parentheses) that overflowed a worker's stack before the parser was bounded.
pub const MAX_DEPTH: usize = 8_191;

/// A template construct that nests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Construct {
    /// `{{ ((( body ))) }}`: the body is an operand.
    Parens,
    /// `{{ if true }}` … `{{ end }}`.
    If,
    /// `{{ with 1 }}` … `{{ end }}`.
    With,
    /// `{{ range 1 }}` … `{{ end }}`: one pass per level.
    Range,
    /// `{{ block "bN" . }}` … `{{ end }}`: defines and runs a template per level.
    Block,
    /// `{{ if false }}{{ else if false }}`…`{{ else }}` body `{{ end }}`: one chain.
    ElseIf,
    /// `{{ define "r" }}` with `if`s nested inside, the body and a `{{ template "r" . }}`
    /// call at the innermost level, then a call of `r`: recursion as deep as the renderer
    /// allows, each call nesting again.
    Recursion,
    /// `if`, `with`, `range` and `block` in turn.
    Mixed,
}

impl Construct {
    const ALL: [Construct; 8] = [
        Construct::Parens,
        Construct::If,
        Construct::With,
        Construct::Range,
        Construct::Block,
        Construct::ElseIf,
        Construct::Recursion,
        Construct::Mixed,
    ];

    /// The construct a byte picks.
    pub fn from_byte(byte: u8) -> Self {
        Self::ALL[usize::from(byte) % Self::ALL.len()]
    }
}

/// A body, repeated and wrapped in `depth` levels of a construct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nesting {
    /// What nests.
    pub construct: Construct,
    /// How many levels, up to [`MAX_DEPTH`].
    pub depth: usize,
    /// How many times the body is repeated; [`Nesting::FILL`] repeats it up to
    /// [`MAX_TEMPLATE_BYTES`].
    pub repeat: usize,
}

impl Nesting {
    /// A repeat count that fills [`MAX_TEMPLATE_BYTES`] with the body.
    pub const FILL: usize = 256;

    /// The nesting four header bytes describe: the construct, the depth (`u16`, little
    /// endian, at most [`MAX_DEPTH`]) and the repeat count (byte + 1; 255 fills the limit).
    pub fn from_header([construct, depth_lo, depth_hi, repeat]: [u8; 4]) -> Self {
        Self::new(construct, u16::from_le_bytes([depth_lo, depth_hi]), repeat)
    }

    /// The nesting of a construct byte, a depth and a repeat byte, as in the header.
    pub fn new(construct: u8, depth: u16, repeat: u8) -> Self {
        Self {
            construct: Construct::from_byte(construct),
            depth: usize::from(depth) % (MAX_DEPTH + 1),
            repeat: usize::from(repeat) + 1,
        }
    }

    /// How many levels of the parser's nesting the text has around the body: more than
    /// [`MAX_NESTING`] must not parse.
    pub fn levels(&self) -> usize {
        match self.construct {
            // The define, the `if`s in it and the recursive call.
            Construct::Recursion if self.depth > 0 => self.depth + 1,
            _ => self.depth,
        }
    }

    /// Whether the parser must refuse the text for its nesting alone.
    pub fn too_deep(&self) -> bool {
        self.levels() > MAX_NESTING
    }

    /// The template text: `body` repeated, wrapped in the construct, written with the
    /// delimiters `left` and `right` (empty for the default `{{ }}`).
    pub fn wrap(&self, body: &str, left: &str, right: &str) -> String {
        let (l, r) = match (left, right) {
            ("", "") => ("{{", "}}"),
            pair => pair,
        };
        let body = self.repeated(body);
        let d = self.depth;
        let action = |inner: &str| format!("{l} {inner} {r}");
        let end = action("end");
        let mut text = String::new();
        match self.construct {
            Construct::Parens => {
                text.push_str(l);
                text.push_str(&"(".repeat(d));
                text.push_str(&body);
                text.push_str(&")".repeat(d));
                text.push_str(r);
            }
            Construct::If | Construct::With | Construct::Range | Construct::Block => {
                for level in 0..d {
                    text.push_str(&self.open(self.construct, level, &action));
                }
                text.push_str(&body);
                text.push_str(&end.repeat(d));
            }
            Construct::Mixed => {
                const TURNS: [Construct; 4] = [
                    Construct::If,
                    Construct::With,
                    Construct::Range,
                    Construct::Block,
                ];
                for level in 0..d {
                    text.push_str(&self.open(TURNS[level % TURNS.len()], level, &action));
                }
                text.push_str(&body);
                text.push_str(&end.repeat(d));
            }
            Construct::ElseIf if d > 0 => {
                text.push_str(&action("if false"));
                text.push_str(&action("else if false").repeat(d - 1));
                text.push_str(&action("else"));
                text.push_str(&body);
                text.push_str(&end);
            }
            Construct::Recursion if d > 0 => {
                text.push_str(&action("define \"r\""));
                text.push_str(&action("if true").repeat(d - 1));
                text.push_str(&body);
                text.push_str(&action("template \"r\" ."));
                text.push_str(&end.repeat(d - 1));
                text.push_str(&end);
                text.push_str(&action("template \"r\" ."));
            }
            Construct::ElseIf | Construct::Recursion => text.push_str(&body),
        }
        text
    }

    /// The opening action of one level.
    fn open(&self, construct: Construct, level: usize, action: &impl Fn(&str) -> String) -> String {
        match construct {
            Construct::If => action("if true"),
            Construct::With => action("with 1"),
            Construct::Range => action("range 1"),
            Construct::Block => action(&format!("block \"b{level}\" .")),
            _ => unreachable!("not a block construct"),
        }
    }

    /// `body` as many times as asked, within [`MAX_TEMPLATE_BYTES`] (at least once).
    fn repeated(&self, body: &str) -> String {
        let fit = MAX_TEMPLATE_BYTES
            .checked_div(body.len())
            .unwrap_or(1)
            .max(1);
        let times = if self.repeat >= Self::FILL {
            fit
        } else {
            self.repeat.min(fit)
        };
        body.repeat(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_the_body_in_each_construct() {
        let two = |byte| Nesting::new(byte, 2, 0).wrap("x", "", "");
        assert_eq!(two(0), "{{((x))}}");
        assert_eq!(two(1), "{{ if true }}{{ if true }}x{{ end }}{{ end }}");
        assert_eq!(
            two(5),
            "{{ if false }}{{ else if false }}{{ else }}x{{ end }}"
        );
        assert_eq!(
            two(6),
            "{{ define \"r\" }}{{ if true }}x{{ template \"r\" . }}{{ end }}{{ end }}\
             {{ template \"r\" . }}"
        );
        assert_eq!(
            Nesting::new(7, 3, 1).wrap("x", "[[", "]]"),
            "[[ if true ]][[ with 1 ]][[ range 1 ]]xx[[ end ]][[ end ]][[ end ]]"
        );
    }

    #[test]
    fn fills_the_template_limit() {
        let text = Nesting::new(1, 0, 255).wrap("abc", "", "");
        assert_eq!(text.len(), MAX_TEMPLATE_BYTES / 3 * 3);
    }
}
