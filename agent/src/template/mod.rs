//! Go's text/template language with the consul-template functions.
//!
//! No Rust crate renders Go templates byte-for-byte the way consul-template
//! does (map iteration order, `%v` printing, `<no value>`), so the lexer,
//! parser and evaluator live here. The parser is usable on its own: the
//! injector calls [`Template::parse`] at admission time.
//!
//! Rendering follows consul-template's passes: a render records every Vault
//! request it could not answer from the [`RenderContext`] (those calls
//! evaluate to nil, as on consul-template's first pass); the caller fetches
//! them, stores the results and renders again until nothing is missing:
//!
//! ```
//! use std::sync::Arc;
//! use keyhole_agent::template::{RenderContext, RenderOptions, Request, Template};
//! use keyhole_agent::vault::Secret;
//!
//! let t = Template::parse("app", r#"{{ with secret "kv/app" }}{{ .Data.user }}{{ end }}"#, "", "").unwrap();
//! let mut ctx = RenderContext::new();
//! let options = RenderOptions::default();
//! let mut out = t.render(&mut ctx, &options);
//! while !ctx.missing().is_empty() {
//!     for request in ctx.missing().to_vec() {
//!         let secret: Secret = serde_json::from_str(r#"{"data":{"user":"ann"}}"#).unwrap();
//!         ctx.insert(request, Ok(Arc::new(secret)));
//!     }
//!     out = t.render(&mut ctx, &options);
//! }
//! assert_eq!(out.unwrap(), b"ann");
//! ```
//!
//! Paths are kept as the template wrote them. Like consul-template, the
//! Vault client is expected to rewrite KV v2 paths (`secret/app` reads
//! `secret/data/app`, `secrets "secret/team"` lists `secret/metadata/team`)
//! and to pass a `?version=N` suffix as a query parameter.
//!
//! Known differences from Go:
//! - Vault's numbers reach templates as `json.Number` text. Integers keep
//!   their exact text; a float is re-printed from its `f64` value (shortest
//!   form), so a literal such as `1.50` or `1e3` prints as `1.5` or `1000.0`
//!   where Go would print the literal.
//! - Go strings may hold invalid UTF-8 (for example from `base64Decode`);
//!   here such bytes become U+FFFD.
//! - Columns in errors are 1-based byte offsets in the line.
//! - `toYAML` writes a multi-line map key as a double-quoted scalar where
//!   yaml.v2 writes a complex `? |-` key.

mod calls;
mod encode;
mod exec;
mod funcs;
mod lex;
mod parse;
mod print;
mod value;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::vault::Secret;

pub use parse::MAX_NESTING;

/// A parsed template, reusable across renders.
#[derive(Debug)]
pub struct Template {
    name: String,
    tree: parse::Tree,
}

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}:{line}:{column}: {message}")]
pub struct ParseError {
    /// The template's name (destination path or annotation).
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A render that failed. Names the template and position; never contains
/// a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}:{line}:{column}: executing at <{context}>: {message}")]
pub struct ExecError {
    /// The template's name.
    pub name: String,
    /// 1-based line of the failing action.
    pub line: usize,
    /// 1-based byte column of the failing action.
    pub column: usize,
    /// The failing part of the action, as written in the template.
    pub context: String,
    /// What failed, e.g. `map has no entry for key "password"`.
    pub message: String,
}

/// A Vault request a template makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    /// `secret "path"`: a logical read. The path is as written, including
    /// any `?version=N` query; KV v2 path rewriting is the client's job.
    Read {
        /// The Vault path.
        path: String,
    },
    /// `secret "path" "k=v"...` or `pkiCert "path" "k=v"...`: a logical
    /// write with string parameters. `pkiCert` uses the same request and
    /// reads `certificate`, `private_key` and `issuing_ca` from
    /// the response.
    Write {
        /// The Vault path.
        path: String,
        /// The parameters, keys and values trimmed.
        data: BTreeMap<String, String>,
    },
    /// `secrets "path"`: a LIST returning key names.
    List {
        /// The Vault path.
        path: String,
    },
}

/// A template function that makes a Vault request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultFunction {
    /// `secret`: a read, or a write when it has parameters.
    Secret,
    /// `secrets`: a list.
    Secrets,
    /// `pkiCert`: a write that issues a certificate.
    PkiCert,
}

impl VaultFunction {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "secret" => Some(Self::Secret),
            "secrets" => Some(Self::Secrets),
            "pkiCert" => Some(Self::PkiCert),
            _ => None,
        }
    }

    /// The function's name in templates.
    pub fn name(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Secrets => "secrets",
            Self::PkiCert => "pkiCert",
        }
    }
}

/// A Vault call written in a template, found by [`Template::vault_calls`].
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

impl Request {
    /// The Vault path of the request.
    pub fn path(&self) -> &str {
        match self {
            Request::Read { path } | Request::Write { path, .. } | Request::List { path } => path,
        }
    }
}

/// Results of Vault requests available to renders, and the requests the
/// last render could not find.
#[derive(Debug, Default)]
pub struct RenderContext {
    secrets: HashMap<Request, Result<Arc<Secret>, String>>,
    lists: HashMap<Request, Result<Vec<String>, String>>,
    missing: Vec<Request>,
    used: BTreeSet<Request>,
}

impl RenderContext {
    /// An empty context: every request is missing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the result of a read or write. An `Err` makes the template
    /// call fail with that message (e.g. permission denied), after the call
    /// and its path when the template wrote the path as a string constant; a
    /// computed path may be a secret, so it is left out.
    pub fn insert(&mut self, request: Request, result: Result<Arc<Secret>, String>) {
        self.secrets.insert(request, result);
    }

    /// Stores the result of a [`Request::List`]: the key names, sorted.
    pub fn insert_list(&mut self, request: Request, result: Result<Vec<String>, String>) {
        self.lists.insert(request, result);
    }

    /// Requests the last render asked for but did not find, sorted and
    /// without duplicates. While this is non-empty, a render error may be a
    /// consequence of the nil values and should not be reported yet.
    pub fn missing(&self) -> &[Request] {
        &self.missing
    }

    /// Every request the last render made, found or not: the template's
    /// dependencies, which decide when it must render again.
    pub fn used(&self) -> &BTreeSet<Request> {
        &self.used
    }
}

/// Options of a render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Go's `missingkey=error`: a missing map key fails the render.
    pub error_on_missing_key: bool,
}

impl Template {
    /// Parses `text`; `name` is used in error messages (e.g. the destination
    /// path or annotation). Empty delimiters mean `{{` and `}}`.
    pub fn parse(
        name: &str,
        text: &str,
        left_delim: &str,
        right_delim: &str,
    ) -> Result<Template, ParseError> {
        let tokens = lex::lex(name, text, left_delim, right_delim)?;
        let tree = parse::parse(name, tokens)?;
        Ok(Template {
            name: name.to_owned(),
            tree,
        })
    }

    /// The name given to [`Template::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every Vault call the template can make, in the order written,
    /// including calls in branches a render may never take.
    pub fn vault_calls(&self) -> Vec<VaultCall> {
        calls::vault_calls(&self.tree)
    }

    /// Renders with the secrets in `ctx`; requests not yet in `ctx` are
    /// recorded as missing (see [`RenderContext::missing`]) and evaluate to
    /// nil the way consul-template's first pass does.
    pub fn render(
        &self,
        ctx: &mut RenderContext,
        options: &RenderOptions,
    ) -> Result<Vec<u8>, ExecError> {
        let (result, missing, used) = {
            let mut ex = exec::Exec::new(ctx, &self.tree, &self.name, options);
            let result = ex.run();
            (
                result,
                std::mem::take(&mut ex.missing),
                std::mem::take(&mut ex.used),
            )
        };
        ctx.used = used;
        ctx.missing = missing
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        result.map(String::into_bytes)
    }
}

#[cfg(test)]
mod tests;
