//! The functions templates can call: Go's builtins and consul-template's
//! functions, with consul-template's argument orders.
//!
//! [`FUNCS`] is the one list of them. The parser accepts exactly its names,
//! the executor calls what an entry names, and [`calls`](super::calls)
//! finds the Vault calls by it. Adding a function is an entry here, its
//! implementation in the file of its family, and an example in `tests.rs`
//! (a test fails for a name without one).

mod args;
mod clock;
mod collection;
mod compare;
mod convert;
mod env;
mod files;
mod format;
mod hash;
mod maps;
mod math;
mod process;
mod regex;
mod scratch;
mod strings;
mod vault;

use std::collections::HashMap;
use std::sync::LazyLock;

use super::context::Requests;
use super::value::Value;
use args::FnResult;
pub(crate) use scratch::call_method;
pub use vault::VaultFunction;

use Arity::{AtLeast, Exactly};

/// A function templates can call.
#[derive(Debug)]
pub(crate) struct Func {
    /// The name templates call it by.
    pub(crate) name: &'static str,
    /// How many arguments it takes, the piped value included.
    pub(crate) arity: Arity,
    /// How the executor evaluates a call.
    pub(crate) eval: Eval,
}

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more (Go's variadic functions).
    AtLeast(usize),
}

/// How the executor evaluates a call.
#[derive(Debug)]
pub(crate) enum Eval {
    /// Go's `and` and `or`: operands are evaluated left to right only
    /// until one's truth is `stop_at`; the call's value is that operand,
    /// or else the last one.
    ShortCircuit {
        /// The truth that ends the evaluation: false for `and`, true for `or`.
        stop_at: bool,
    },
    /// Every argument is evaluated, then the implementation called.
    Call(Implementation),
    /// consul-template's `scratch`: the render's one scratch store.
    Scratch,
    /// consul-template's `executeTemplate name [dot]`: the output of the
    /// `define`d template `name`, run with `dot`.
    ExecuteTemplate,
}

/// The code of a function that gets its arguments evaluated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Implementation {
    /// A function of its arguments (and the agent's environment).
    Plain(for<'a> fn(&[Value<'a>]) -> FnResult<'a>),
    /// A function that makes Vault requests through the render's
    /// [`Requests`].
    Vault(
        VaultFunction,
        for<'a> fn(&mut Requests<'a>, &[Value<'a>]) -> FnResult<'a>,
    ),
}

impl Func {
    const fn plain(
        name: &'static str,
        arity: Arity,
        run: for<'a> fn(&[Value<'a>]) -> FnResult<'a>,
    ) -> Self {
        Func {
            name,
            arity,
            eval: Eval::Call(Implementation::Plain(run)),
        }
    }

    const fn vault(
        function: VaultFunction,
        arity: Arity,
        run: for<'a> fn(&mut Requests<'a>, &[Value<'a>]) -> FnResult<'a>,
    ) -> Self {
        Func {
            name: function.name(),
            arity,
            eval: Eval::Call(Implementation::Vault(function, run)),
        }
    }

    const fn short_circuit(name: &'static str, stop_at: bool) -> Self {
        Func {
            name,
            arity: AtLeast(1),
            eval: Eval::ShortCircuit { stop_at },
        }
    }

    /// Checks that `got` arguments suit the function, with Go's message.
    pub(crate) fn check_arity(&self, got: usize) -> Result<(), String> {
        let name = self.name;
        match self.arity {
            Exactly(want) if got != want => Err(format!(
                "wrong number of args for {name}: want {want} got {got}"
            )),
            AtLeast(want) if got < want => Err(format!(
                "wrong number of args for {name}: want at least {want} got {got}"
            )),
            _ => Ok(()),
        }
    }

    /// The Vault function this is, if it is one.
    pub(crate) fn vault_function(&self) -> Option<VaultFunction> {
        match self.eval {
            Eval::Call(Implementation::Vault(function, _)) => Some(function),
            _ => None,
        }
    }
}

/// Every function templates can call, by family.
static FUNCS: &[Func] = &[
    // Go's logic and comparison builtins.
    Func::short_circuit("and", false),
    Func::short_circuit("or", true),
    Func::plain("not", Exactly(1), compare::not),
    Func::plain("eq", AtLeast(1), compare::eq),
    Func::plain("ne", Exactly(2), compare::ne),
    Func::plain("lt", Exactly(2), compare::lt),
    Func::plain("le", Exactly(2), compare::le),
    Func::plain("gt", Exactly(2), compare::gt),
    Func::plain("ge", Exactly(2), compare::ge),
    Func::plain("call", AtLeast(1), compare::call),
    // Go's collection builtins; consul-template's membership tests.
    Func::plain("len", Exactly(1), collection::len),
    Func::plain("index", AtLeast(1), collection::index),
    Func::plain("slice", AtLeast(1), collection::slice),
    Func::plain("in", Exactly(2), collection::r#in),
    Func::plain("contains", Exactly(2), collection::contains),
    Func::plain("containsAll", Exactly(2), collection::contains_all),
    Func::plain("containsAny", Exactly(2), collection::contains_any),
    Func::plain("containsNone", Exactly(2), collection::contains_none),
    Func::plain("containsNotAll", Exactly(2), collection::contains_not_all),
    // `loop` checks its count itself, with consul-template's message.
    Func::plain("loop", AtLeast(0), collection::r#loop),
    Func {
        name: "scratch",
        arity: Exactly(0),
        eval: Eval::Scratch,
    },
    // consul-template's maps.
    Func::plain("explodeMap", Exactly(1), maps::explode_map),
    Func::plain("mergeMap", Exactly(2), maps::merge_map),
    Func::plain(
        "mergeMapWithOverride",
        Exactly(2),
        maps::merge_map_with_override,
    ),
    // Strings.
    Func::plain("trimSpace", Exactly(1), strings::trim_space),
    Func::plain("trim", Exactly(2), strings::trim),
    Func::plain("trimPrefix", Exactly(2), strings::trim_prefix),
    Func::plain("trimSuffix", Exactly(2), strings::trim_suffix),
    Func::plain("split", Exactly(2), strings::split),
    Func::plain("join", Exactly(2), strings::join),
    Func::plain("replaceAll", Exactly(3), strings::replace_all),
    Func::plain("toLower", Exactly(1), strings::to_lower),
    Func::plain("toUpper", Exactly(1), strings::to_upper),
    Func::plain("indent", Exactly(2), strings::indent),
    Func::plain("toTitle", Exactly(1), strings::to_title),
    Func::plain("splitToMap", Exactly(3), strings::split_to_map),
    Func::plain("regexMatch", Exactly(2), regex::regex_match),
    Func::plain("regexReplaceAll", Exactly(3), regex::regex_replace_all),
    Func {
        name: "executeTemplate",
        arity: AtLeast(1),
        eval: Eval::ExecuteTemplate,
    },
    // Go's printing and escaping builtins.
    Func::plain("print", AtLeast(0), format::print),
    Func::plain("printf", AtLeast(1), format::printf),
    Func::plain("println", AtLeast(0), format::println),
    Func::plain("html", AtLeast(0), format::html),
    Func::plain("js", AtLeast(0), format::js),
    Func::plain("urlquery", AtLeast(0), format::urlquery),
    // Conversions and encodings.
    Func::plain("toJSON", Exactly(1), convert::to_json_compact),
    Func::plain("toJSONPretty", Exactly(1), convert::to_json_pretty),
    Func::plain("toUnescapedJSON", Exactly(1), convert::to_unescaped_json),
    Func::plain(
        "toUnescapedJSONPretty",
        Exactly(1),
        convert::to_unescaped_json_pretty,
    ),
    Func::plain("toYAML", Exactly(1), convert::to_yaml_text),
    Func::plain("base64Encode", Exactly(1), convert::base64_encode),
    Func::plain("base64Decode", Exactly(1), convert::base64_decode),
    Func::plain("base64URLEncode", Exactly(1), convert::base64_url_encode),
    Func::plain("base64URLDecode", Exactly(1), convert::base64_url_decode),
    Func::plain("parseJSON", Exactly(1), convert::parse_json),
    Func::plain("parseBool", Exactly(1), convert::parse_bool),
    Func::plain("parseInt", Exactly(1), convert::parse_int),
    Func::plain("parseUint", Exactly(1), convert::parse_uint),
    Func::plain("parseFloat", Exactly(1), convert::parse_float),
    Func::plain("parseYAML", Exactly(1), convert::parse_yaml),
    // Digests.
    Func::plain("sha256Hex", Exactly(1), hash::sha256_hex),
    Func::plain("md5sum", Exactly(1), hash::md5sum),
    Func::plain("hmacSHA256Hex", Exactly(2), hash::hmac_sha256_hex),
    // Arithmetic.
    Func::plain("add", Exactly(2), math::add),
    Func::plain("subtract", Exactly(2), math::subtract),
    Func::plain("multiply", Exactly(2), math::multiply),
    Func::plain("divide", Exactly(2), math::divide),
    Func::plain("modulo", Exactly(2), math::modulo),
    Func::plain("minimum", Exactly(2), math::minimum),
    Func::plain("maximum", Exactly(2), math::maximum),
    // The agent's environment.
    Func::plain("env", Exactly(1), env::env),
    Func::plain("envOrDefault", Exactly(2), env::env_or_default),
    Func::plain("mustEnv", Exactly(1), env::must_env),
    // `timestamp` checks its count itself, with consul-template's message.
    Func::plain("timestamp", AtLeast(0), clock::timestamp),
    Func::plain("file", Exactly(1), files::file),
    Func::plain("writeToFile", AtLeast(5), files::write_to_file),
    Func::plain("plugin", AtLeast(1), process::plugin),
    // Vault requests.
    Func::vault(VaultFunction::Secret, AtLeast(0), vault::secret),
    Func::vault(VaultFunction::Secrets, Exactly(1), vault::secrets),
    Func::vault(VaultFunction::PkiCert, AtLeast(0), vault::pki_cert),
];

/// [`FUNCS`] by name.
static BY_NAME: LazyLock<HashMap<&'static str, &'static Func>> =
    LazyLock::new(|| FUNCS.iter().map(|f| (f.name, f)).collect());

/// The name of every function templates can call, in the table's order.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCS.iter().map(|f| f.name)
}

/// The function templates call `name`, if there is one.
pub(crate) fn lookup(name: &str) -> Option<&'static Func> {
    BY_NAME.get(name).copied()
}

#[cfg(test)]
mod tests;
