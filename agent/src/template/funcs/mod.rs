//! The functions templates can call: Go's builtins, consul-template's
//! functions (as OpenBao's Vault Agent vendors them, with their argument
//! orders) and sprig's under the `sprig_` prefix.
//!
//! [`FUNCS`] is the one list of them. The parser accepts exactly its names,
//! the executor calls what an entry names, and [`calls`](super::calls)
//! finds the Vault calls by it. Adding a function is an entry here, its
//! implementation in the file of its family, an example in `tests.rs` (or
//! `sprig/examples.rs`) and a case in `tests/data/template-parity/`: a test
//! fails for a name without either.

mod args;
mod clock;
mod collection;
mod compare;
mod convert;
mod env;
mod files;
mod format;
mod golayout;
mod hash;
mod maps;
mod math;
mod process;
mod regex;
mod scratch;
mod sockaddr;
mod spew;
mod sprig;
mod strings;
mod vault;

use std::collections::HashMap;
use std::path::Path;
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
    /// Whether it is one of Go's own builtins, which a template's
    /// `function_denylist` cannot disable (consul-template only replaces
    /// the functions it adds).
    pub(crate) go_builtin: bool,
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
    /// A function that reads files, confined to the template's
    /// `sandbox_path` when it has one.
    Sandboxed(for<'a> fn(Option<&Path>, &[Value<'a>]) -> FnResult<'a>),
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
            go_builtin: false,
        }
    }

    /// One of Go's builtins, implemented by `run`.
    const fn go(
        name: &'static str,
        arity: Arity,
        run: for<'a> fn(&[Value<'a>]) -> FnResult<'a>,
    ) -> Self {
        Func {
            go_builtin: true,
            ..Func::plain(name, arity, run)
        }
    }

    /// A function that reads files, given the template's `sandbox_path`.
    const fn sandboxed(
        name: &'static str,
        arity: Arity,
        run: for<'a> fn(Option<&Path>, &[Value<'a>]) -> FnResult<'a>,
    ) -> Self {
        Func {
            name,
            arity,
            eval: Eval::Call(Implementation::Sandboxed(run)),
            go_builtin: false,
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
            go_builtin: false,
        }
    }

    const fn short_circuit(name: &'static str, stop_at: bool) -> Self {
        Func {
            name,
            arity: AtLeast(1),
            eval: Eval::ShortCircuit { stop_at },
            go_builtin: true,
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
    Func::go("not", Exactly(1), compare::not),
    Func::go("eq", AtLeast(1), compare::eq),
    Func::go("ne", Exactly(2), compare::ne),
    Func::go("lt", Exactly(2), compare::lt),
    Func::go("le", Exactly(2), compare::le),
    Func::go("gt", Exactly(2), compare::gt),
    Func::go("ge", Exactly(2), compare::ge),
    Func::go("call", AtLeast(1), compare::call),
    // Go's collection builtins; consul-template's membership tests.
    Func::go("len", Exactly(1), collection::len),
    Func::go("index", AtLeast(1), collection::index),
    Func::go("slice", AtLeast(1), collection::slice),
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
        go_builtin: false,
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
        go_builtin: false,
    },
    // Go's printing and escaping builtins.
    Func::go("print", AtLeast(0), format::print),
    Func::go("printf", AtLeast(1), format::printf),
    Func::go("println", AtLeast(0), format::println),
    Func::go("html", AtLeast(0), format::html),
    Func::go("js", AtLeast(0), format::js),
    Func::go("urlquery", AtLeast(0), format::urlquery),
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
    Func::plain("toTOML", Exactly(1), convert::to_toml_text),
    Func::plain("spew_dump", AtLeast(0), spew::dump),
    Func::plain("spew_printf", AtLeast(1), spew::printf),
    Func::plain("spew_sdump", AtLeast(0), spew::sdump),
    Func::plain("spew_sprintf", AtLeast(1), spew::sprintf_fn),
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
    Func::sandboxed("file", Exactly(1), files::file),
    Func::plain("writeToFile", AtLeast(5), files::write_to_file),
    Func::plain("plugin", AtLeast(1), process::plugin),
    Func::plain("sockaddr", AtLeast(0), sockaddr::sockaddr),
    // Vault requests.
    Func::vault(VaultFunction::Secret, AtLeast(0), vault::secret),
    Func::vault(VaultFunction::Secrets, Exactly(1), vault::secrets),
    Func::vault(VaultFunction::PkiCert, AtLeast(0), vault::pki_cert),
    // Sprig (Masterminds/sprig v3.2.3) under consul-template's `sprig_` prefix.
    Func::plain("sprig_abbrev", Exactly(2), sprig::strings::abbrev),
    Func::plain("sprig_abbrevboth", Exactly(3), sprig::strings::abbrevboth),
    Func::plain("sprig_trunc", Exactly(2), sprig::strings::trunc),
    Func::plain("sprig_trim", Exactly(1), sprig::strings::trim),
    Func::plain("sprig_upper", Exactly(1), sprig::strings::upper),
    Func::plain("sprig_lower", Exactly(1), sprig::strings::lower),
    Func::plain("sprig_title", Exactly(1), sprig::strings::title),
    Func::plain("sprig_untitle", Exactly(1), sprig::strings::untitle),
    Func::plain("sprig_substr", Exactly(3), sprig::strings::substr),
    Func::plain("sprig_repeat", Exactly(2), sprig::strings::repeat),
    Func::plain("sprig_trimall", Exactly(2), sprig::strings::trim_all),
    Func::plain("sprig_trimAll", Exactly(2), sprig::strings::trim_all),
    Func::plain("sprig_trimSuffix", Exactly(2), sprig::strings::trim_suffix),
    Func::plain("sprig_trimPrefix", Exactly(2), sprig::strings::trim_prefix),
    Func::plain("sprig_nospace", Exactly(1), sprig::strings::nospace),
    Func::plain("sprig_initials", Exactly(1), sprig::strings::initials),
    Func::plain("sprig_swapcase", Exactly(1), sprig::strings::swapcase),
    Func::plain("sprig_wrap", Exactly(2), sprig::strings::wrap),
    Func::plain("sprig_wrapWith", Exactly(3), sprig::strings::wrap_with),
    Func::plain("sprig_contains", Exactly(2), sprig::strings::contains),
    Func::plain("sprig_hasPrefix", Exactly(2), sprig::strings::has_prefix),
    Func::plain("sprig_hasSuffix", Exactly(2), sprig::strings::has_suffix),
    Func::plain("sprig_quote", AtLeast(0), sprig::strings::quote),
    Func::plain("sprig_squote", AtLeast(0), sprig::strings::squote),
    Func::plain("sprig_cat", AtLeast(0), sprig::strings::cat),
    Func::plain("sprig_indent", Exactly(2), sprig::strings::indent),
    Func::plain("sprig_nindent", Exactly(2), sprig::strings::nindent),
    Func::plain("sprig_replace", Exactly(3), sprig::strings::replace),
    Func::plain("sprig_plural", Exactly(3), sprig::strings::plural),
    Func::plain("sprig_toString", Exactly(1), sprig::strings::to_string),
    Func::plain("sprig_toStrings", Exactly(1), sprig::strings::to_strings),
    Func::plain("sprig_splitList", Exactly(2), sprig::strings::split_list),
    Func::plain("sprig_split", Exactly(2), sprig::strings::split),
    Func::plain("sprig_splitn", Exactly(3), sprig::strings::splitn),
    Func::plain("sprig_join", Exactly(2), sprig::strings::join),
    Func::plain(
        "sprig_randAlphaNum",
        Exactly(1),
        sprig::random::rand_alpha_num,
    ),
    Func::plain("sprig_randAlpha", Exactly(1), sprig::random::rand_alpha),
    Func::plain("sprig_randAscii", Exactly(1), sprig::random::rand_ascii),
    Func::plain("sprig_randNumeric", Exactly(1), sprig::random::rand_numeric),
    Func::plain("sprig_randBytes", Exactly(1), sprig::random::rand_bytes),
    Func::plain("sprig_randInt", Exactly(2), sprig::random::rand_int),
    Func::plain("sprig_shuffle", Exactly(1), sprig::random::shuffle),
    Func::plain("sprig_uuidv4", Exactly(0), sprig::random::uuidv4),
    Func::plain("sprig_atoi", Exactly(1), sprig::math::atoi),
    Func::plain("sprig_int64", Exactly(1), sprig::math::int64),
    Func::plain("sprig_int", Exactly(1), sprig::math::int64),
    Func::plain("sprig_float64", Exactly(1), sprig::math::float64),
    Func::plain("sprig_toDecimal", Exactly(1), sprig::math::to_decimal),
    Func::plain("sprig_add1", Exactly(1), sprig::math::add1),
    Func::plain("sprig_add", AtLeast(0), sprig::math::add),
    Func::plain("sprig_sub", Exactly(2), sprig::math::sub),
    Func::plain("sprig_div", Exactly(2), sprig::math::div),
    Func::plain("sprig_mod", Exactly(2), sprig::math::modulo),
    Func::plain("sprig_mul", AtLeast(1), sprig::math::mul),
    Func::plain("sprig_add1f", Exactly(1), sprig::math::add1f),
    Func::plain("sprig_addf", AtLeast(0), sprig::math::addf),
    Func::plain("sprig_subf", AtLeast(1), sprig::math::subf),
    Func::plain("sprig_divf", AtLeast(1), sprig::math::divf),
    Func::plain("sprig_mulf", AtLeast(1), sprig::math::mulf),
    Func::plain("sprig_biggest", AtLeast(1), sprig::math::max),
    Func::plain("sprig_max", AtLeast(1), sprig::math::max),
    Func::plain("sprig_min", AtLeast(1), sprig::math::min),
    Func::plain("sprig_maxf", AtLeast(1), sprig::math::maxf),
    Func::plain("sprig_minf", AtLeast(1), sprig::math::minf),
    Func::plain("sprig_ceil", Exactly(1), sprig::math::ceil),
    Func::plain("sprig_floor", Exactly(1), sprig::math::floor),
    Func::plain("sprig_round", AtLeast(2), sprig::math::round),
    Func::plain("sprig_seq", AtLeast(0), sprig::lists::seq),
    Func::plain("sprig_until", Exactly(1), sprig::lists::until),
    Func::plain("sprig_untilStep", Exactly(3), sprig::lists::until_step_fn),
    Func::plain("sprig_sortAlpha", Exactly(1), sprig::lists::sort_alpha),
    Func::plain("sprig_tuple", AtLeast(0), sprig::lists::list_of),
    Func::plain("sprig_list", AtLeast(0), sprig::lists::list_of),
    Func::plain("sprig_append", Exactly(2), sprig::lists::append),
    Func::plain("sprig_push", Exactly(2), sprig::lists::append),
    Func::plain("sprig_mustAppend", Exactly(2), sprig::lists::append),
    Func::plain("sprig_mustPush", Exactly(2), sprig::lists::append),
    Func::plain("sprig_prepend", Exactly(2), sprig::lists::prepend),
    Func::plain("sprig_mustPrepend", Exactly(2), sprig::lists::prepend),
    Func::plain("sprig_first", Exactly(1), sprig::lists::first),
    Func::plain("sprig_mustFirst", Exactly(1), sprig::lists::first),
    Func::plain("sprig_rest", Exactly(1), sprig::lists::rest),
    Func::plain("sprig_mustRest", Exactly(1), sprig::lists::rest),
    Func::plain("sprig_last", Exactly(1), sprig::lists::last),
    Func::plain("sprig_mustLast", Exactly(1), sprig::lists::last),
    Func::plain("sprig_initial", Exactly(1), sprig::lists::initial),
    Func::plain("sprig_mustInitial", Exactly(1), sprig::lists::initial),
    Func::plain("sprig_reverse", Exactly(1), sprig::lists::reverse),
    Func::plain("sprig_mustReverse", Exactly(1), sprig::lists::reverse),
    Func::plain("sprig_uniq", Exactly(1), sprig::lists::uniq),
    Func::plain("sprig_mustUniq", Exactly(1), sprig::lists::uniq),
    Func::plain("sprig_without", AtLeast(1), sprig::lists::without),
    Func::plain("sprig_mustWithout", AtLeast(1), sprig::lists::without),
    Func::plain("sprig_has", Exactly(2), sprig::lists::has),
    Func::plain("sprig_mustHas", Exactly(2), sprig::lists::has),
    Func::plain("sprig_slice", AtLeast(1), sprig::lists::slice),
    Func::plain("sprig_mustSlice", AtLeast(1), sprig::lists::slice),
    Func::plain("sprig_concat", AtLeast(0), sprig::lists::concat),
    Func::plain("sprig_chunk", Exactly(2), sprig::lists::chunk),
    Func::plain("sprig_mustChunk", Exactly(2), sprig::lists::chunk),
    Func::plain("sprig_compact", Exactly(1), sprig::lists::compact),
    Func::plain("sprig_mustCompact", Exactly(1), sprig::lists::compact),
    Func::plain("sprig_dict", AtLeast(0), sprig::dicts::dict),
    Func::plain("sprig_get", Exactly(2), sprig::dicts::get),
    Func::plain("sprig_set", Exactly(3), sprig::dicts::set),
    Func::plain("sprig_unset", Exactly(2), sprig::dicts::unset),
    Func::plain("sprig_hasKey", Exactly(2), sprig::dicts::has_key),
    Func::plain("sprig_pluck", AtLeast(1), sprig::dicts::pluck),
    Func::plain("sprig_keys", AtLeast(0), sprig::dicts::keys),
    Func::plain("sprig_pick", AtLeast(1), sprig::dicts::pick),
    Func::plain("sprig_omit", AtLeast(1), sprig::dicts::omit),
    Func::plain("sprig_merge", AtLeast(1), sprig::dicts::merge),
    Func::plain(
        "sprig_mergeOverwrite",
        AtLeast(1),
        sprig::dicts::merge_overwrite,
    ),
    Func::plain("sprig_mustMerge", AtLeast(1), sprig::dicts::merge),
    Func::plain(
        "sprig_mustMergeOverwrite",
        AtLeast(1),
        sprig::dicts::merge_overwrite,
    ),
    Func::plain("sprig_values", Exactly(1), sprig::dicts::values),
    Func::plain("sprig_dig", AtLeast(0), sprig::dicts::dig),
    Func::plain("sprig_default", AtLeast(1), sprig::defaults::default),
    Func::plain("sprig_empty", Exactly(1), sprig::defaults::empty),
    Func::plain("sprig_coalesce", AtLeast(0), sprig::defaults::coalesce),
    Func::plain("sprig_all", AtLeast(0), sprig::defaults::all),
    Func::plain("sprig_any", AtLeast(0), sprig::defaults::any),
    Func::plain("sprig_ternary", Exactly(3), sprig::defaults::ternary),
    Func::plain("sprig_fromJson", Exactly(1), sprig::defaults::from_json),
    Func::plain(
        "sprig_mustFromJson",
        Exactly(1),
        sprig::defaults::must_from_json,
    ),
    Func::plain("sprig_toJson", Exactly(1), sprig::defaults::to_json_compact),
    Func::plain(
        "sprig_mustToJson",
        Exactly(1),
        sprig::defaults::must_to_json,
    ),
    Func::plain(
        "sprig_toPrettyJson",
        Exactly(1),
        sprig::defaults::to_pretty_json,
    ),
    Func::plain(
        "sprig_mustToPrettyJson",
        Exactly(1),
        sprig::defaults::must_to_pretty_json,
    ),
    Func::plain("sprig_toRawJson", Exactly(1), sprig::defaults::to_raw_json),
    Func::plain(
        "sprig_mustToRawJson",
        Exactly(1),
        sprig::defaults::must_to_raw_json,
    ),
    Func::plain("sprig_deepCopy", Exactly(1), sprig::defaults::deep_copy),
    Func::plain("sprig_mustDeepCopy", Exactly(1), sprig::defaults::deep_copy),
    Func::plain("sprig_fail", Exactly(1), sprig::defaults::fail),
    Func::plain("sprig_hello", Exactly(0), sprig::defaults::hello),
    Func::plain("sprig_typeOf", Exactly(1), sprig::defaults::type_of),
    Func::plain("sprig_typeIs", Exactly(2), sprig::defaults::type_is),
    Func::plain(
        "sprig_typeIsLike",
        Exactly(2),
        sprig::defaults::type_is_like,
    ),
    Func::plain("sprig_kindOf", Exactly(1), sprig::defaults::kind_of),
    Func::plain("sprig_kindIs", Exactly(2), sprig::defaults::kind_is),
    Func::plain(
        "sprig_deepEqual",
        Exactly(2),
        sprig::defaults::deep_equal_fn,
    ),
    Func::plain("sprig_env", Exactly(1), sprig::system::env),
    Func::plain("sprig_expandenv", Exactly(1), sprig::system::expandenv),
    Func::plain(
        "sprig_getHostByName",
        Exactly(1),
        sprig::system::get_host_by_name,
    ),
    Func::plain("sprig_base", Exactly(1), sprig::paths::base),
    Func::plain("sprig_dir", Exactly(1), sprig::paths::dir),
    Func::plain("sprig_clean", Exactly(1), sprig::paths::clean),
    Func::plain("sprig_ext", Exactly(1), sprig::paths::ext),
    Func::plain("sprig_isAbs", Exactly(1), sprig::paths::is_abs),
    Func::plain("sprig_osBase", Exactly(1), sprig::paths::base),
    Func::plain("sprig_osClean", Exactly(1), sprig::paths::clean),
    Func::plain("sprig_osDir", Exactly(1), sprig::paths::dir),
    Func::plain("sprig_osExt", Exactly(1), sprig::paths::ext),
    Func::plain("sprig_osIsAbs", Exactly(1), sprig::paths::is_abs),
    Func::plain("sprig_b64enc", Exactly(1), sprig::encoding::b64enc),
    Func::plain("sprig_b64dec", Exactly(1), sprig::encoding::b64dec),
    Func::plain("sprig_b32enc", Exactly(1), sprig::encoding::b32enc),
    Func::plain("sprig_b32dec", Exactly(1), sprig::encoding::b32dec),
    Func::plain("sprig_sha1sum", Exactly(1), sprig::encoding::sha1sum),
    Func::plain("sprig_sha256sum", Exactly(1), sprig::encoding::sha256sum),
    Func::plain("sprig_adler32sum", Exactly(1), sprig::encoding::adler32sum),
    Func::plain("sprig_regexMatch", Exactly(2), sprig::regex::regex_match),
    Func::plain(
        "sprig_mustRegexMatch",
        Exactly(2),
        sprig::regex::must_regex_match,
    ),
    Func::plain(
        "sprig_regexFindAll",
        Exactly(3),
        sprig::regex::regex_find_all,
    ),
    Func::plain(
        "sprig_mustRegexFindAll",
        Exactly(3),
        sprig::regex::must_regex_find_all,
    ),
    Func::plain("sprig_regexFind", Exactly(2), sprig::regex::regex_find),
    Func::plain(
        "sprig_mustRegexFind",
        Exactly(2),
        sprig::regex::must_regex_find,
    ),
    Func::plain(
        "sprig_regexReplaceAll",
        Exactly(3),
        sprig::regex::regex_replace_all,
    ),
    Func::plain(
        "sprig_mustRegexReplaceAll",
        Exactly(3),
        sprig::regex::must_regex_replace_all,
    ),
    Func::plain(
        "sprig_regexReplaceAllLiteral",
        Exactly(3),
        sprig::regex::regex_replace_all_literal,
    ),
    Func::plain(
        "sprig_mustRegexReplaceAllLiteral",
        Exactly(3),
        sprig::regex::must_regex_replace_all_literal,
    ),
    Func::plain("sprig_regexSplit", Exactly(3), sprig::regex::regex_split),
    Func::plain(
        "sprig_mustRegexSplit",
        Exactly(3),
        sprig::regex::must_regex_split,
    ),
    Func::plain(
        "sprig_regexQuoteMeta",
        Exactly(1),
        sprig::regex::regex_quote_meta,
    ),
    Func::plain("sprig_now", Exactly(0), sprig::dates::now),
    Func::plain("sprig_date", Exactly(2), sprig::dates::date),
    Func::plain("sprig_dateInZone", Exactly(3), sprig::dates::date_in_zone),
    Func::plain("sprig_date_in_zone", Exactly(3), sprig::dates::date_in_zone),
    Func::plain("sprig_htmlDate", Exactly(1), sprig::dates::html_date),
    Func::plain(
        "sprig_htmlDateInZone",
        Exactly(2),
        sprig::dates::html_date_in_zone,
    ),
    Func::plain("sprig_unixEpoch", Exactly(1), sprig::dates::unix_epoch),
    Func::plain("sprig_dateModify", Exactly(2), sprig::dates::date_modify),
    Func::plain("sprig_date_modify", Exactly(2), sprig::dates::date_modify),
    Func::plain(
        "sprig_mustDateModify",
        Exactly(2),
        sprig::dates::must_date_modify,
    ),
    Func::plain(
        "sprig_must_date_modify",
        Exactly(2),
        sprig::dates::must_date_modify,
    ),
    Func::plain("sprig_ago", Exactly(1), sprig::dates::ago),
    Func::plain("sprig_duration", Exactly(1), sprig::dates::duration),
    Func::plain(
        "sprig_durationRound",
        Exactly(1),
        sprig::dates::duration_round,
    ),
    Func::plain("sprig_toDate", Exactly(2), sprig::dates::to_date),
    Func::plain("sprig_mustToDate", Exactly(2), sprig::dates::must_to_date),
    Func::plain("sprig_bcrypt", Exactly(1), sprig::crypto::bcrypt_hash),
    Func::plain("sprig_htpasswd", Exactly(2), sprig::crypto::htpasswd),
    Func::plain("sprig_encryptAES", Exactly(2), sprig::crypto::encrypt_aes),
    Func::plain("sprig_decryptAES", Exactly(2), sprig::crypto::decrypt_aes),
    Func::plain(
        "sprig_derivePassword",
        Exactly(5),
        sprig::crypto::derive_password,
    ),
    Func::plain(
        "sprig_genPrivateKey",
        Exactly(1),
        sprig::keys::gen_private_key,
    ),
    Func::plain(
        "sprig_buildCustomCert",
        Exactly(2),
        sprig::certs::build_custom_cert,
    ),
    Func::plain("sprig_genCA", Exactly(2), sprig::certs::gen_ca),
    Func::plain(
        "sprig_genCAWithKey",
        Exactly(3),
        sprig::certs::gen_ca_with_key,
    ),
    Func::plain(
        "sprig_genSelfSignedCert",
        Exactly(4),
        sprig::certs::gen_self_signed_cert,
    ),
    Func::plain(
        "sprig_genSelfSignedCertWithKey",
        Exactly(5),
        sprig::certs::gen_self_signed_cert_with_key,
    ),
    Func::plain(
        "sprig_genSignedCert",
        Exactly(5),
        sprig::certs::gen_signed_cert,
    ),
    Func::plain(
        "sprig_genSignedCertWithKey",
        Exactly(6),
        sprig::certs::gen_signed_cert_with_key,
    ),
    Func::plain("sprig_snakecase", Exactly(1), sprig::cases::snakecase),
    Func::plain("sprig_camelcase", Exactly(1), sprig::cases::camelcase),
    Func::plain("sprig_kebabcase", Exactly(1), sprig::cases::kebabcase),
    Func::plain("sprig_urlParse", Exactly(1), sprig::urls::url_parse),
    Func::plain("sprig_urlJoin", Exactly(1), sprig::urls::url_join),
    Func::plain("sprig_semver", Exactly(1), sprig::semver::semver),
    Func::plain(
        "sprig_semverCompare",
        Exactly(2),
        sprig::semver::semver_compare,
    ),
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
