//! One or more example templates for every function in the table, and the
//! test that every function has one.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use super::super::calls::each_call;
use super::super::{RenderContext, RenderOptions, Request, Template};
use super::sprig::examples::SPRIG_EXAMPLES;
use super::{BY_NAME, FUNCS, VaultFunction, lookup};
use crate::vault::Secret;

/// A template and what it renders: its output, or the end of its error.
type Example = (&'static str, Result<&'static str, &'static str>);

/// Examples by family, in the table's order, rendered with the secrets of
/// [`fixture`]. The outputs of the examples without a Vault call were
/// confirmed with `bao agent` 2.7.2 rendering the same templates; errors are
/// keyhole's own (Go words some differently, e.g. a wrong argument count).
const EXAMPLES: &[Example] = &[
    // Go's logic and comparison builtins.
    ("{{ and 1 0 2 }} {{ and 1 2 }}", Ok("0 2")),
    (
        "{{ and }}",
        Err("wrong number of args for and: want at least 1 got 0"),
    ),
    ("{{ or 0 \"\" \"z\" }} {{ or 0 false }}", Ok("z false")),
    ("{{ not 0 }} {{ not \"x\" }}", Ok("true false")),
    ("{{ eq 1 2 1 }} {{ eq \"a\" \"b\" }}", Ok("true false")),
    (
        "{{ eq 1 }}",
        Err("error calling eq: missing argument for comparison"),
    ),
    ("{{ ne 1 2 }} {{ ne \"a\" \"a\" }}", Ok("true false")),
    ("{{ lt 1 2 }} {{ lt \"b\" \"a\" }}", Ok("true false")),
    (
        "{{ lt true false }}",
        Err("error calling lt: invalid type for comparison"),
    ),
    ("{{ le 2 2 }} {{ le 3 2 }}", Ok("true false")),
    ("{{ gt 1.5 2.5 }} {{ gt 3 2 }}", Ok("false true")),
    ("{{ ge \"b\" \"a\" }} {{ ge 1 2 }}", Ok("true false")),
    (
        "{{ ge 1 \"a\" }}",
        Err("error calling ge: incompatible types for comparison: int and string"),
    ),
    // Go's builtins on collections and consul-template's membership tests.
    (
        "{{ len \"héllo\" }} {{ len (split \",\" \"a,b\") }}",
        Ok("6 2"),
    ),
    ("{{ len 3 }}", Err("error calling len: len of type int")),
    (
        "{{ index (split \",\" \"a,b,c\") 1 }} {{ index \"abc\" 0 }} {{ with secret \"kv/app\" }}{{ index .Data \"user\" }}{{ end }}",
        Ok("b 97 ann"),
    ),
    (
        "{{ index (split \",\" \"a\") 3 }}",
        Err("error calling index: index out of range: 3"),
    ),
    (
        "{{ slice \"abcdef\" 1 3 }} {{ slice (split \",\" \"a,b,c\") 1 }}",
        Ok("bc [b c]"),
    ),
    (
        "{{ in (split \",\" \"a,b\") \"b\" }} {{ in \"abc\" \"bc\" }} {{ in \"abc\" \"x\" }}",
        Ok("true true false"),
    ),
    (
        "{{ contains \"ell\" \"hello\" }} {{ \"hello\" | contains \"x\" }}",
        Ok("true false"),
    ),
    (
        "{{ with secret \"kv/app\" }}{{ .Data.tags | containsAll .Data.some }} {{ .Data.tags | containsAll .Data.tags }}{{ end }}",
        Ok("false true"),
    ),
    (
        "{{ with secret \"kv/app\" }}{{ .Data.tags | containsAny .Data.some }} {{ .Data.tags | containsAny .Data.none }}{{ end }}",
        Ok("true false"),
    ),
    (
        "{{ with secret \"kv/app\" }}{{ .Data.tags | containsNone .Data.some }} {{ .Data.tags | containsNone .Data.none }}{{ end }}",
        Ok("false true"),
    ),
    (
        "{{ with secret \"kv/app\" }}{{ .Data.tags | containsNotAll .Data.some }} {{ .Data.tags | containsNotAll .Data.tags }}{{ end }}",
        Ok("true false"),
    ),
    (
        "{{ range loop 3 }}{{ . }}{{ end }} {{ range loop 1 3 }}{{ . }}{{ end }}",
        Ok("012 12"),
    ),
    (
        "{{ loop 1 2 3 }}",
        Err("error calling loop: loop: wrong number of arguments, expected 1 or 2, but got 3"),
    ),
    // Strings.
    ("[{{ trimSpace \"  x \\n\" }}]", Ok("[x]")),
    ("{{ trim \"-\" \"--a--\" }}", Ok("a")),
    (
        "{{ trimPrefix \"v\" \"v1.2\" }} {{ trimPrefix \"x\" \"v1\" }}",
        Ok("1.2 v1"),
    ),
    ("{{ trimSuffix \".txt\" \"a.txt\" }}", Ok("a")),
    (
        "{{ split \",\" \"a,b\" }} {{ split \"\" \"ab\" }} {{ split \",\" \"\" }}",
        Ok("[a b] [a b] []"),
    ),
    ("{{ split \",\" \"a,b\" | join \"-\" }}", Ok("a-b")),
    (
        "{{ join \",\" \"ab\" }}",
        Err("error calling join: wrong type for value; expected []string; got string"),
    ),
    ("{{ replaceAll \"o\" \"0\" \"foo\" }}", Ok("f00")),
    ("{{ toLower \"ÀB\" }}", Ok("àb")),
    ("{{ toUpper \"straße\" }}", Ok("STRAßE")),
    ("{{ indent 2 \"a\\nb\" }}", Ok("  a\n  b")),
    (
        "{{ indent -1 \"a\" }}",
        Err("error calling indent: indent value must be a positive integer"),
    ),
    // Go's printing and escaping builtins.
    ("{{ print \"a\" 1 2 nil }}", Ok("a1 2 <nil>")),
    ("{{ printf \"%s-%03d\" \"x\" 7 }}", Ok("x-007")),
    ("{{ println \"a\" 1 }}", Ok("a 1\n")),
    ("{{ html \"<a&b>\" }}", Ok("&lt;a&amp;b&gt;")),
    ("{{ js \"it's\" }}", Ok("it\\'s")),
    ("{{ urlquery \"a b&c\" }}", Ok("a+b%26c")),
    // Conversions and encodings.
    (
        "{{ toJSON (split \",\" \"a,<\") }}",
        Ok("[\"a\",\"\\u003c\"]"),
    ),
    (
        "{{ toJSONPretty (parseJSON \"{\\\"a\\\":1}\") }}",
        Ok("{\n  \"a\": 1\n}"),
    ),
    ("{{ toUnescapedJSON \"<&>\" }}", Ok("\"<&>\"")),
    (
        "{{ toUnescapedJSONPretty (split \",\" \"<\") }}",
        Ok("[\n  \"<\"\n]"),
    ),
    ("{{ toYAML (split \",\" \"a,b\") }}", Ok("- a\n- b")),
    ("{{ base64Encode \"hi?\" }}", Ok("aGk/")),
    ("{{ base64Decode \"aGk/\" }}", Ok("hi?")),
    (
        "{{ base64Decode \"!\" }}",
        Err("error calling base64Decode: base64Decode: illegal base64 data"),
    ),
    ("{{ base64URLEncode \"hi?\" }}", Ok("aGk_")),
    ("{{ base64URLDecode \"aGk_\" }}", Ok("hi?")),
    (
        "{{ parseJSON \"{\\\"a\\\":[1,2]}\" }} {{ parseJSON \"\" }}",
        Ok("map[a:[1 2]] map[]"),
    ),
    (
        "{{ parseBool \"true\" }} {{ parseBool \"0\" }}",
        Ok("true false"),
    ),
    (
        "{{ parseBool \"yes\" }}",
        Err("error calling parseBool: parseBool: invalid syntax"),
    ),
    ("{{ parseInt \"-42\" }} {{ parseInt \"\" }}", Ok("-42 0")),
    ("{{ parseUint \"42\" }}", Ok("42")),
    (
        "{{ parseUint \"-1\" }}",
        Err("error calling parseUint: parseUint: invalid syntax"),
    ),
    (
        "{{ parseFloat \"1.5\" }} {{ parseFloat \"1e3\" }}",
        Ok("1.5 1000"),
    ),
    // consul-template's arithmetic: the piped value is the left operand.
    ("{{ add 1 2 }} {{ 1 | add 0.5 }}", Ok("3 1.5")),
    ("{{ 5 | subtract 1 }}", Ok("4")),
    ("{{ multiply 2 3 }}", Ok("6")),
    ("{{ 10 | divide 4 }} {{ 10.0 | divide 4 }}", Ok("2 2.5")),
    (
        "{{ divide 0 1 }}",
        Err("error calling divide: divide: integer divide by zero or overflow"),
    ),
    ("{{ 10 | modulo 3 }}", Ok("1")),
    (
        "{{ modulo \"a\" 1 }}",
        Err("error calling modulo: modulo: unknown type string"),
    ),
    // The process environment.
    (
        "[{{ env \"KEYHOLE_SURELY_UNSET_VARIABLE\" }}] {{ env \"PATH\" | len | lt 0 }}",
        Ok("[] true"),
    ),
    (
        "{{ envOrDefault \"KEYHOLE_SURELY_UNSET_VARIABLE\" \"dflt\" }}",
        Ok("dflt"),
    ),
    (
        "{{ mustEnv \"KEYHOLE_SURELY_UNSET_VARIABLE\" }}",
        Err(
            "error calling mustEnv: required environment variable KEYHOLE_SURELY_UNSET_VARIABLE is empty",
        ),
    ),
    // Vault requests.
    (
        "{{ with secret \"kv/app\" }}{{ .Data.user }}{{ end }}",
        Ok("ann"),
    ),
    (
        "{{ with secret \"db/rotate\" \"k=v\" }}{{ .Data.ok }}{{ end }}",
        Ok("true"),
    ),
    (
        "{{ secret \"kv/app\" \"novalue\" }}",
        Err("error calling secret: not k=v pair"),
    ),
    ("{{ range secrets \"kv/\" }}{{ . }};{{ end }}", Ok("a;b;")),
    (
        "{{ with pkiCert \"pki/issue/web\" \"common_name=x\" }}{{ .Cert }}{{ .Key }}{{ .CA }}{{ end }}",
        Ok("CERT\nKEY\nCA\n"),
    ),
];

fn mk_secret(response: serde_json::Value) -> Arc<Secret> {
    Arc::new(serde_json::from_value(response).expect("valid secret envelope"))
}

/// The Vault responses the examples read.
fn fixture() -> RenderContext {
    let mut ctx = RenderContext::new();
    let app =
        json!({"data": {"user": "ann", "tags": ["a", "b"], "some": ["a", "z"], "none": ["z"]}});
    ctx.insert(
        Request::Read {
            path: "kv/app".into(),
        },
        Ok(mk_secret(app)),
    );
    ctx.insert(
        Request::Write {
            path: "db/rotate".into(),
            data: [("k".to_owned(), "v".to_owned())].into(),
        },
        Ok(mk_secret(json!({"data": {"ok": true}}))),
    );
    ctx.insert(
        Request::Write {
            path: "pki/issue/web".into(),
            data: [("common_name".to_owned(), "x".to_owned())].into(),
        },
        Ok(mk_secret(
            json!({"data": {"certificate": "CERT", "private_key": "KEY", "issuing_ca": "CA"}}),
        )),
    );
    ctx.insert_list(
        Request::List { path: "kv/".into() },
        Ok(vec!["a".into(), "b".into()]),
    );
    ctx
}

#[test]
fn every_function_has_an_example() {
    let mut called = BTreeSet::new();
    for (text, _) in EXAMPLES.iter().chain(SPRIG_EXAMPLES) {
        let template = Template::parse("example", text, "", "").expect("example parses");
        each_call(&template.tree, &mut |func, _, _| {
            called.insert(func.name);
        });
    }
    let untested: Vec<&str> = FUNCS
        .iter()
        .map(|f| f.name)
        .filter(|name| !called.contains(name))
        .collect();
    assert_eq!(untested, Vec::<&str>::new(), "functions without an example");
}

#[test]
fn every_name_is_listed_once() {
    assert_eq!(BY_NAME.len(), FUNCS.len());
}

#[test]
fn every_vault_function_is_in_the_table() {
    for function in [
        VaultFunction::Secret,
        VaultFunction::Secrets,
        VaultFunction::PkiCert,
    ] {
        let func = lookup(function.name()).expect("listed");
        assert_eq!(func.vault_function(), Some(function));
    }
}

#[test]
fn every_example_renders_as_expected() {
    let mut failures = Vec::new();
    for (text, expected) in EXAMPLES.iter().chain(SPRIG_EXAMPLES) {
        let template = Template::parse("example", text, "", "").expect("example parses");
        let mut ctx = fixture();
        let rendered = template
            .render(&mut ctx, &RenderOptions::default())
            .map(|out| String::from_utf8(out).expect("utf-8 output"))
            .map_err(|e| e.to_string());
        assert_eq!(ctx.missing(), [], "{text}: every request is in the fixture");
        let matches = match (&rendered, expected) {
            (Ok(out), Ok(want)) => out == want,
            (Err(err), Err(want)) => err.ends_with(want),
            _ => false,
        };
        if !matches {
            failures.push(format!("{text}\n  want {expected:?}\n  got  {rendered:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
