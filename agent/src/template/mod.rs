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
//! - `mergeMap` and `mergeMapWithOverride` return the merged map and leave
//!   their first argument as it was; Go's merge changes that map in place,
//!   so later reads of it (even of a secret's `.Data` in other templates)
//!   see the merge.
//! - `parseYAML` reads YAML 1.2: `on`, `yes` and `off` are strings, where
//!   yaml.v2 (YAML 1.1) reads them as booleans.
//! - `parseInt` gives an `int`, which `%T` prints as `int`, not `int64`.

mod calls;
mod context;
mod encode;
mod error;
mod exec;
mod funcs;
mod lex;
mod parse;
mod pki;
mod print;
mod toml;
mod value;

use std::collections::BTreeSet;

pub use calls::VaultCall;
pub use context::{RenderContext, Request};
pub use error::{ExecError, ParseError};
pub use exec::RenderOptions;
pub use funcs::{VaultFunction, function_names};
pub use parse::MAX_NESTING;
pub use pki::reusable_certificate;

/// A parsed template, reusable across renders.
#[derive(Debug)]
pub struct Template {
    name: String,
    tree: parse::Tree,
    /// The paths its Vault calls write as string constants: a failed call
    /// names only these, since a computed path may be a secret.
    literal_paths: BTreeSet<String>,
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
        let literal_paths = calls::vault_calls(&tree)
            .into_iter()
            .filter_map(|call| call.path)
            .collect();
        Ok(Template {
            name: name.to_owned(),
            tree,
            literal_paths,
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

    /// The names of the functions the template calls anywhere, including
    /// in branches a render may never take.
    pub fn functions_called(&self) -> BTreeSet<&'static str> {
        calls::called_functions(&self.tree)
    }

    /// Renders with the secrets in `ctx`; requests not yet in `ctx` are
    /// recorded as missing (see [`RenderContext::missing`]) and evaluate to
    /// nil the way consul-template's first pass does.
    pub fn render(
        &self,
        ctx: &mut RenderContext,
        options: &RenderOptions,
    ) -> Result<Vec<u8>, ExecError> {
        let requests = ctx.requests(&self.literal_paths, options.destination.as_deref());
        let (result, asked) = exec::Exec::new(requests, &self.tree, &self.name, options).run();
        ctx.remember(asked);
        result.map(String::into_bytes)
    }
}

#[cfg(test)]
mod tests;
