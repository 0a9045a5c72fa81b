//! One or more example templates for every function in the table, and the
//! test that every function has one.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

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
    ("{{ if false }}{{ call 1 }}{{ end }}", Ok("")),
    (
        "{{ call 1 }}",
        Err("error calling call: non-function of type int"),
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
    // consul-template's maps.
    (
        r#"{{ "{\"a/b\":1,\"a/c/d\":\"x\",\"e\":true,\"/f\":2}" | parseJSON | explodeMap }}"#,
        Ok("map[:map[f:2] a:map[b:1 c:map[d:x]] e:true]"),
    ),
    (
        r#"{{ "{\"a\":1,\"a/b\":2}" | parseJSON | explodeMap }}"#,
        Err("explodeMap: not a map: \"a\" already has a value"),
    ),
    (
        r#"{{ $d := parseJSON "{\"a\":1,\"b\":\"\",\"m\":{\"x\":1},\"l\":[1]}" }}{{ $s := parseJSON "{\"a\":2,\"b\":\"s\",\"c\":3,\"m\":{\"x\":2,\"y\":2},\"l\":[2]}" }}{{ mergeMap $d $s }} {{ mergeMapWithOverride $d $s }}"#,
        Ok("map[a:1 b:s c:3 l:[1] m:map[x:1 y:2]] map[a:2 b:s c:3 l:[2] m:map[x:2 y:2]]"),
    ),
    (
        "{{ mergeMap \"a\" \"b\" }}",
        Err("wrong type for value; expected map[string]interface {}; got string"),
    ),
    (
        "{{ scratch.Set \"a\" 1 }}{{ scratch.SetX \"a\" 2 }}{{ scratch.SetX \"b\" 3 }}\
         {{ scratch.Get \"a\" }} {{ scratch.Get \"b\" }} {{ scratch.Key \"a\" }} {{ scratch.Key \"z\" }} \
         {{ scratch.Get \"z\" }}",
        Ok("1 3 true false <no value>"),
    ),
    (
        "{{ scratch.MapSet \"m\" \"y\" 2 }}{{ scratch.MapSet \"m\" \"x\" 1 }}{{ scratch.MapSetX \"m\" \"x\" 9 }}\
         {{ scratch.Get \"m\" }} {{ scratch.MapValues \"m\" }} {{ $s := scratch }}{{ $s.Get \"m\" | toJSON }}",
        Ok("map[x:1 y:2] [1 2] {\"x\":1,\"y\":2}"),
    ),
    (
        "{{ scratch.Set \"a\" 1 }}{{ scratch.MapSet \"a\" \"k\" 2 }}",
        Err("error calling MapSet: \"a\" is not a map"),
    ),
    (
        "{{ scratch.Nope 1 }}",
        Err("scratch.Nope has arguments but cannot be invoked as function"),
    ),
    (
        "{{ define \"t\" }}<{{ . }}>{{ end }}{{ executeTemplate \"t\" \"x\" }} {{ executeTemplate \"t\" }} \
         {{ executeTemplate \"t\" (split \",\" \"a,b\") | toUpper }}",
        Ok("<x> <<no value>> <[A B]>"),
    ),
    (
        "{{ executeTemplate \"none\" }}",
        Err(
            "error calling executeTemplate: template: no template \"none\" associated with template \"example\"",
        ),
    ),
    (
        "{{ executeTemplate \"t\" 1 2 }}",
        Err("executeTemplate: wrong number of arguments, expected 1 or 2, but got 3"),
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
    (
        "{{ toTitle \"hello wORLD, it's a_b 1st-go\" }}",
        Ok("Hello WORLD, It's A_b 1st-Go"),
    ),
    (
        "{{ splitToMap \",\" \":\" \" a:1,b:2:3,c,d: \" }}",
        Ok("map[a:1 b:2:3 d:]"),
    ),
    (
        "{{ regexMatch \"^[a-z]+[0-9]$\" \"abc1\" }} {{ \"x\" | regexMatch \"^y\" }}",
        Ok("true false"),
    ),
    (
        "{{ regexMatch \"(\" \"x\" }}",
        Err("error parsing regexp: unclosed group: `(`"),
    ),
    (
        "{{ regexReplaceAll \"(\\\\w+)@(\\\\w+)\" \"${2}:$1\" \"ann@web bob@db\" }}",
        Ok("web:ann db:bob"),
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
    (
        "{{ parseJSON \"{\\\"b\\\":{\\\"c\\\":1,\\\"d\\\":[true]},\\\"a\\\":\\\"x\\\"}\" | toTOML }}",
        Ok("a = \"x\"\n\n[b]\n  c = 1.0\n  d = [true]"),
    ),
    (
        "{{ parseJSON \"{\\\"a\\\":[1,null]}\" | toTOML }}",
        Err("toTOML: toml: cannot encode array with nil element"),
    ),
    (
        "{{ spew_sdump \"a\" 1 (parseJSON \"1e6\") }}",
        Ok("(string) (len=1) \"a\"\n(int) 1\n(float64) 1e+06\n"),
    ),
    (
        "{{ spew_sdump (sprig_dict \"k\" (sprig_list 1.5 nil)) (split \",\" \"a\") }}",
        Ok(
            "(map[string]interface {}) (len=1) {\n (string) (len=1) \"k\": ([]interface {}) (len=2 cap=2) {\n  (float64) 1.5,\n  (interface {}) <nil>\n }\n}\n([]string) (len=1 cap=1) {\n (string) (len=1) \"a\"\n}\n",
        ),
    ),
    ("{{ spew_sprintf \"%v-%d\" \"a\" 5 }}", Ok("a-5")),
    // Vault Agent prints these to its log; keyhole discards them.
    ("{{ spew_dump \"s3cret\" }}", Ok("")),
    ("{{ spew_printf \"%s\" \"s3cret\" }}", Ok("")),
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
    (
        "{{ $y := parseYAML \"a: 1\\nb: [x, 2.5]\\nc: {d: true}\" }}{{ $y.a }} {{ $y.b }} {{ $y.c.d }} {{ parseYAML \"\" }}",
        Ok("1 [x 2.5] true map[]"),
    ),
    (
        "{{ parseYAML \"a: [\" }}",
        Err("parseYAML: line 1 column 4: unclosed bracket '['"),
    ),
    // Digests.
    (
        "{{ sha256Hex \"abc\" }}",
        Ok("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ),
    (
        "{{ md5sum \"abc\" }}",
        Ok("900150983cd24fb0d6963f7d28e17f72"),
    ),
    (
        "{{ hmacSHA256Hex \"message\" \"key\" }}",
        Ok("6e9ef29b75fffc5b7abae527d58fdadb2fe42e7219011976917343065f58ed4a"),
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
    (
        "{{ minimum 2 3 }} {{ 3 | minimum 2.5 }} {{ maximum 2 3 }} {{ maximum 1.5 1 }} {{ minimum 2 2.0 }}",
        Ok("2 2.5 3 1.5 2"),
    ),
    ("{{ maximum \"a\" 1 }}", Err("maximum: unknown type string")),
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
    // The clock, the agent's files and commands.
    (
        "{{ timestamp | len }} {{ timestamp \"2006\" | len }} {{ timestamp \"unix\" | parseInt | lt 1700000000 }}",
        Ok("20 4 true"),
    ),
    (
        "{{ timestamp \"a\" \"b\" }}",
        Err("timestamp: wrong number of arguments, expected 0 or 1, but got 2"),
    ),
    (
        "{{ file \"\" }}{{ file \"/proc/self/comm\" | len | lt 0 }}",
        Ok("true"),
    ),
    (
        "{{ file \"/nonexistent/x\" }}",
        Err("file(/nonexistent/x): No such file or directory (os error 2)"),
    ),
    (
        "{{ \"x\" | writeToFile \"/nonexistent/x\" \"\" \"\" \"0644\" \"append\" }}",
        Err("writeToFile /nonexistent/x: No such file or directory (os error 2)"),
    ),
    (
        "{{ \"x\" | writeToFile \"/tmp/x\" \"\" \"\" \"9\" }}",
        Err("strconv.ParseUint: parsing \"9\": invalid syntax"),
    ),
    (
        "{{ plugin \"\" }}{{ plugin \"echo\" \" a \" \"\" \"b\" }}",
        Ok("a b"),
    ),
    (
        "{{ plugin \"false\" }}",
        Err("exec \"false\": exit status: 1"),
    ),
    (
        "{{ sockaddr \"GetAllInterfaces | include \\\"name\\\" \\\"^lo$\\\" | include \\\"type\\\" \\\"IPv4\\\" | attr \\\"address\\\"\" }} [{{ sockaddr \"GetInterfaceIP\" \"`^no such interface$`\" }}]",
        Ok("127.0.0.1 []"),
    ),
    (
        "{{ sockaddr \"GetNothing\" }}",
        Err("unable to parse template \"{{ GetNothing }}\": function \"GetNothing\" not defined"),
    ),
    (
        "{{ sockaddr \"GetAllInterfaces | sort `colour`\" }}",
        Err(
            "unable to execute sockaddr input \"{{ GetAllInterfaces | sort `colour` }}\": error calling sort: unknown sort type: \"colour\"",
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
        "{{ with secret \"auth/token/create\" \"policies=x\" }}{{ .Auth.ClientToken }} {{ .Auth.Accessor }} \
         {{ .Auth.Policies }} {{ .Auth.Metadata.team }} {{ .Auth.LeaseDuration }} {{ .Auth.Renewable }}{{ end }}",
        Ok("s.tok acc [default x] web 3600 true"),
    ),
    (
        "{{ with secret \"auth/token/create\" \"policies=x\" }}{{ .Auth | toJSON }}{{ end }}",
        Ok(
            r#"{"ClientToken":"s.tok","Accessor":"acc","Policies":["default","x"],"Metadata":{"team":"web"},"LeaseDuration":3600,"Renewable":true}"#,
        ),
    ),
    (
        "{{ with secret \"db/rotate\" \"k=v\" }}{{ .Auth.ClientToken }}{{ end }}",
        Err("nil pointer evaluating *dependency.SecretAuth.ClientToken"),
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
            path: "auth/token/create".into(),
            data: [("policies".to_owned(), "x".to_owned())].into(),
        },
        Ok(mk_secret(json!({"data": null, "auth": {
            "client_token": "s.tok", "accessor": "acc", "policies": ["default", "x"],
            "token_policies": ["default", "x"], "metadata": {"team": "web"},
            "lease_duration": 3600, "renewable": true, "entity_id": ""
        }}))),
    );
    ctx.insert(
        Request::PkiCert {
            path: "pki/issue/web".into(),
            data: [("common_name".to_owned(), "x".to_owned())].into(),
            destination: None,
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
        called.extend(template.functions_called());
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
