//! Sprig's semantic versions: Masterminds/semver v3.4.0's loose parsing
//! and its constraint language (`>= 1.2, < 2`, `~1.2`, `^0.3`, `1.x`,
//! `1.2 - 1.4`, `||`).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::LazyLock;

use regex::Regex;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// A version part of a constraint, `x` and `*` allowed.
const CONSTRAINT_VERSION: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";

/// Constraint operators, in the order the library tries them.
const OPERATORS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("semver patterns are valid")
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$",
    )
});
static CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"^\s*({OPERATORS})\s*({CONSTRAINT_VERSION})\s*$")));
static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"\s*({CONSTRAINT_VERSION})\s+-\s+({CONSTRAINT_VERSION})\s*"
    ))
});
static FIND: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"({OPERATORS})\s*({CONSTRAINT_VERSION})")));
static VALID: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^(\s*({OPERATORS})\s*({CONSTRAINT_VERSION})\s*)((?:\s+|,\s*)({OPERATORS})\s*({CONSTRAINT_VERSION})\s*)*$"
    ))
});

/// A parsed version.
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
}

impl Version {
    /// The library's `NewVersion`: `v` optional, minor and patch default
    /// to 0.
    fn parse(s: &str) -> Result<Version, String> {
        let m = VERSION
            .captures(s)
            .ok_or_else(|| "invalid semantic version".to_owned())?;
        let segment = |i: usize| -> Result<u64, String> {
            m.get(i).map_or(Ok(0), |g| {
                g.as_str()
                    .trim_start_matches('.')
                    .parse()
                    .map_err(|_| "error parsing version segment: value out of range".to_owned())
            })
        };
        let pre = m.get(5).map_or("", |g| g.as_str()).to_owned();
        let metadata = m.get(8).map_or("", |g| g.as_str()).to_owned();
        for part in pre.split('.').filter(|_| !pre.is_empty()) {
            if part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("version segment starts with 0".into());
            }
        }
        Ok(Version {
            major: segment(1)?,
            minor: segment(2)?,
            patch: segment(3)?,
            pre,
            metadata,
        })
    }

    fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }
}

/// Prerelease identifiers compared part by part: numbers numerically and
/// below words, words by bytes, a missing part first.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(""),
            b.get(i).copied().unwrap_or(""),
        );
        let order = match (x, y) {
            _ if x == y => Ordering::Equal,
            ("", _) => Ordering::Less,
            (_, "") => Ordering::Greater,
            _ => match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(p), Ok(q)) => p.cmp(&q).then(Ordering::Less),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            },
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// One comparison of a constraint.
struct Constraint {
    op: String,
    version: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

impl Constraint {
    fn parse(s: &str) -> Result<Constraint, String> {
        let m = CONSTRAINT
            .captures(s)
            .ok_or_else(|| format!("improper constraint: {s}"))?;
        let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
        let is_x = |part: &str| matches!(part.trim_start_matches('.'), "x" | "X" | "*");
        let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
        let (text, minor_dirty, patch_dirty, dirty) = if is_x(major) || major.is_empty() {
            (format!("0.0.0{pre}"), false, false, true)
        } else if is_x(minor) || minor.is_empty() {
            (format!("{major}.0.0{pre}"), true, false, true)
        } else if is_x(patch) || patch.is_empty() {
            (format!("{major}{minor}.0{pre}"), false, true, true)
        } else {
            (group(2).to_owned(), false, false, false)
        };
        let version = Version::parse(&text).map_err(|_| "constraint parser error".to_owned())?;
        Ok(Constraint {
            op: group(1).to_owned(),
            version,
            minor_dirty,
            patch_dirty,
            dirty,
        })
    }

    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.version;
        let order = v.compare(c);
        match self.op.as_str() {
            "" | "=" if self.dirty => self.tilde(v),
            "" | "=" => order == Ordering::Equal,
            "!=" => self.not_equal(v),
            ">" if !self.dirty => order == Ordering::Greater,
            ">" => {
                v.major > c.major
                    || v.major == c.major
                        && !self.minor_dirty
                        && if self.patch_dirty {
                            v.minor > c.minor
                        } else {
                            order == Ordering::Greater
                        }
            }
            "<" => order == Ordering::Less,
            ">=" | "=>" => order != Ordering::Less,
            "<=" | "=<" if !self.dirty => order != Ordering::Greater,
            "<=" | "=<" => {
                !(v.major > c.major || v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            "~" | "~>" => self.tilde(v),
            "^" => self.caret(v),
            _ => false,
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if (c.major, c.minor, c.patch) == (0, 0, 0) && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        v.minor == 0 && c.patch == v.patch
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.dirty {
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if c.patch != v.patch && !self.patch_dirty {
                return true;
            }
            if self.patch_dirty {
                return (!v.pre.is_empty() || !c.pre.is_empty())
                    && compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
            }
        }
        v.compare(c) != Ordering::Equal
    }
}

/// Whether `v` satisfies `constraint`: every comparison of one of its
/// `||` alternatives. A prerelease version satisfies only an alternative
/// that names a prerelease.
fn satisfies(constraint: &str, v: &Version) -> Result<bool, String> {
    let mut rewritten = constraint.to_owned();
    for m in RANGE.captures_iter(constraint) {
        let (whole, from, to) = (&m[0], &m[1], &m[11]);
        rewritten = rewritten.replacen(whole, &format!(">= {from}, <= {to} "), 1);
    }
    let mut alternatives = Vec::new();
    for alternative in rewritten.split("||") {
        if !VALID.is_match(alternative) {
            return Err(format!("improper constraint: {alternative}"));
        }
        let parts: Vec<&str> = FIND.find_iter(alternative).map(|m| m.as_str()).collect();
        let parts = if parts.is_empty() {
            vec![alternative]
        } else {
            parts
        };
        let constraints = parts
            .into_iter()
            .map(Constraint::parse)
            .collect::<Result<Vec<_>, _>>()?;
        alternatives.push(constraints);
    }
    Ok(alternatives.iter().any(|constraints| {
        let include_pre = constraints.iter().any(|c| !c.version.pre.is_empty());
        constraints.iter().all(|c| c.check(v, include_pre))
    }))
}

/// `semverCompare constraint version`: whether `version` satisfies
/// `constraint`.
pub(in super::super) fn semver_compare<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (constraint, version) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let version = Version::parse(version)?;
    Ok(Value::Bool(satisfies(constraint, &version)?))
}

/// `semver version`: the parts of `version`, as the fields `Major`,
/// `Minor`, `Patch`, `Prerelease`, `Metadata` and `Original`.
pub(in super::super) fn semver<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let text = string_arg(&args[0])?;
    let v = Version::parse(text)?;
    let number = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let fields: BTreeMap<String, Value<'a>> = [
        ("Major", number(v.major)),
        ("Minor", number(v.minor)),
        ("Patch", number(v.patch)),
        ("Prerelease", owned(v.pre)),
        ("Metadata", owned(v.metadata)),
        ("Original", owned(text.to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Value::Map(Rc::new(fields)))
}
