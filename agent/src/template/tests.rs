//! Expected bytes here were confirmed with `bao agent` 2.7.2 rendering the
//! same template against the same data.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::vault::Secret;

fn mk_secret(response: serde_json::Value) -> Arc<Secret> {
    Arc::new(serde_json::from_value(response).expect("valid secret envelope"))
}

fn read(path: &str) -> Request {
    Request::Read {
        path: path.to_owned(),
    }
}

/// The KV v2 response for `secret/data/app` as OpenBao sends it.
fn kv2_app() -> Arc<Secret> {
    mk_secret(json!({
        "request_id": "r1", "lease_id": "", "lease_duration": 0, "renewable": false,
        "data": {
            "data": {"password": "p", "username": "u"},
            "metadata": {"created_time": "2026-11-23T19:10:17.621967255Z", "custom_metadata": null,
                         "deletion_time": "", "destroyed": false, "version": 1}
        },
        "warnings": null
    }))
}

/// A KV v2 response whose data has many value shapes.
fn kv2_nested() -> Arc<Secret> {
    mk_secret(json!({"data": {"data": {
        "db": {"host": "db.internal", "port": 5432, "opts": {"ssl": true, "timeout": 2.5}},
        "list": ["a", "b", "c"], "mixed": [1, "two", null, false, {"k": "v"}],
        "num": 42, "float": 1.5, "t": true, "f": false, "n": null, "empty": "", "emptymap": {}, "emptylist": [],
        "uni": "héllo ✓ 日本", "html": "<a href=\"x\">&amp;</a>", "multi": "line1\nline2\n",
        "quote": "he said \"hi\" and 'bye'", "yes": "yes", "numstr": "123", "colon": "a: b", "hash": "x #y",
        "lead": " padded ", "tab": "a\tb", "star": "*ref", "dash": "- item",
        "long": "this is a rather long value with spaces that goes on and on beyond eighty characters in total length",
        "a10": "ten", "a2": "two", "B": "upper", "_x": "underscore", "1k": "digit"
    }}}))
}

/// Renders `text` with the given secrets available.
fn render_opts(
    text: &str,
    secrets: &[(&str, Arc<Secret>)],
    options: &RenderOptions,
) -> Result<String, String> {
    let t = Template::parse("test", text, "", "").map_err(|e| e.to_string())?;
    let mut ctx = RenderContext::new();
    for (path, s) in secrets {
        ctx.insert(read(path), Ok(s.clone()));
    }
    let out = t.render(&mut ctx, options).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

fn render(text: &str, secrets: &[(&str, Arc<Secret>)]) -> String {
    render_opts(text, secrets, &RenderOptions::default()).expect("renders")
}

fn render_err(text: &str, secrets: &[(&str, Arc<Secret>)]) -> String {
    render_opts(text, secrets, &RenderOptions::default()).expect_err("fails")
}

const DEFAULT_MAP: &str = "{{ with secret \"secret/data/app\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";

#[test]
fn renders_vault_k8s_default_map_template_like_go() {
    assert_eq!(
        render(DEFAULT_MAP, &[("secret/data/app", kv2_app())]),
        "data: map[password:p username:u]\n\
         metadata: map[created_time:2026-11-23T19:10:17.621967255Z custom_metadata:<nil> deletion_time: destroyed:false version:1]\n"
    );
}

#[test]
fn renders_vault_k8s_default_json_template_with_sorted_keys() {
    let out = render(
        "{{ with secret \"secret/data/app\" }}{{ .Data | toJSON }}\n{{ end }}",
        &[("secret/data/app", kv2_app())],
    );
    assert_eq!(
        out,
        "{\"data\":{\"password\":\"p\",\"username\":\"u\"},\"metadata\":{\"created_time\":\"2026-11-23T19:10:17.621967255Z\",\
         \"custom_metadata\":null,\"deletion_time\":\"\",\"destroyed\":false,\"version\":1}}\n"
    );
}

#[test]
fn prints_secret_struct_and_its_json_like_consul_template() {
    let s = mk_secret(
        json!({"request_id": "r1", "lease_duration": 2764800, "data": {"a": "1", "b": "x"}}),
    );
    let out = render(
        "{{ with secret \"kv1/app\" }}{{ . }}|{{ .LeaseDuration }}|{{ toJSON . }}{{ end }}",
        &[("kv1/app", s)],
    );
    assert_eq!(
        out,
        "{r1  2764800 false map[a:1 b:x] [] <nil> <nil>}|2764800|{\"RequestID\":\"r1\",\"LeaseID\":\"\",\"LeaseDuration\":2764800,\
         \"Renewable\":false,\"Data\":{\"a\":\"1\",\"b\":\"x\"},\"Warnings\":null,\"Auth\":null,\"WrapInfo\":null}"
    );
}

#[test]
fn ranges_over_map_in_sorted_key_order() {
    let out = render(
        "{{ with secret \"n\" }}{{ range $k, $v := .Data.data.db }}{{ $k }}={{ $v }};{{ end }}{{ end }}",
        &[("n", kv2_nested())],
    );
    assert_eq!(
        out,
        "host=db.internal;opts=map[ssl:true timeout:2.5];port=5432;"
    );
}

#[test]
fn prints_nested_values_lists_and_nulls_as_go_fmt() {
    let out = render(
        "{{ with secret \"n\" }}{{ .Data.data.list }} {{ .Data.data.mixed }} {{ .Data.data.emptylist }} {{ .Data.data.emptymap }}\
         |{{ .Data.data.n }}|{{ range .Data.data.mixed }}[{{ . }}]{{ end }}{{ end }}",
        &[("n", kv2_nested())],
    );
    assert_eq!(
        out,
        "[a b c] [1 two <nil> false map[k:v]] [] map[]|<no value>|[1][two][<no value>][false][map[k:v]]"
    );
}

#[test]
fn missing_keys_print_no_value_by_default() {
    let out = render(
        "{{ with secret \"secret/data/app\" }}[{{ .Data.data.nope }}] [{{ index .Data.data \"nope\" }}] [{{ .Data.nope }}]{{ end }}",
        &[("secret/data/app", kv2_app())],
    );
    assert_eq!(out, "[<no value>] [<no value>] [<no value>]");
}

#[test]
fn field_of_missing_key_fails_with_nil_pointer_error() {
    let err = render_err(
        "{{ with secret \"secret/data/app\" }}\n  {{ .Data.data.nope.deeper }}{{ end }}",
        &[("secret/data/app", kv2_app())],
    );
    assert_eq!(
        err,
        "test:2:6: executing at <.Data.data.nope.deeper>: nil pointer evaluating interface {}.deeper"
    );
}

#[test]
fn a_denied_function_fails_when_called_and_go_builtins_stay_callable() {
    let options = RenderOptions {
        function_denylist: vec!["env".to_owned(), "print".to_owned(), "nonesuch".to_owned()],
        ..RenderOptions::default()
    };
    let err = render_opts("a{{ env \"HOME\" }}", &[], &options).expect_err("env is denied");
    assert_eq!(
        err,
        "test:1:5: executing at <env \"HOME\">: error calling env: function is disabled"
    );
    // Only the call fails: a branch not taken does not.
    assert_eq!(
        render_opts(
            "{{ if false }}{{ env \"HOME\" }}{{ end }}{{ print 1 }}",
            &[],
            &options
        ),
        Ok("1".to_owned())
    );
    assert_eq!(
        render_opts(
            "{{ env \"HOME\" | len | lt 0 }}",
            &[],
            &RenderOptions::default()
        ),
        Ok("true".to_owned())
    );
}

#[test]
fn file_reads_only_inside_the_sandbox_with_links_followed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir_all(sandbox.join("sub")).expect("mkdir");
    std::fs::write(sandbox.join("in"), "inside").expect("write");
    std::fs::write(dir.path().join("out"), "outside").expect("write");
    std::os::unix::fs::symlink(dir.path().join("out"), sandbox.join("link")).expect("symlink");
    let options = RenderOptions {
        sandbox_path: Some(sandbox.clone()),
        ..RenderOptions::default()
    };
    let file = |path: &std::path::Path| {
        render_opts(
            &format!("{{{{ file {:?} }}}}", path.display().to_string()),
            &[],
            &options,
        )
    };
    assert_eq!(file(&sandbox.join("in")), Ok("inside".to_owned()));
    assert_eq!(file(&sandbox.join("sub/../in")), Ok("inside".to_owned()));
    for outside in [
        dir.path().join("out"),
        sandbox.join("link"),
        sandbox.join("../out"),
    ] {
        let err = file(&outside).expect_err("outside the sandbox");
        assert!(
            err.ends_with(&format!(
                "error calling file: '{}' is outside of sandbox",
                outside.display()
            )),
            "{err}"
        );
    }
}

#[test]
fn error_on_missing_key_names_key_and_position() {
    let options = RenderOptions {
        error_on_missing_key: true,
        ..RenderOptions::default()
    };
    let err = render_opts(
        "{{ with secret \"secret/data/app\" }}\n{{ .Data.data.username }} {{ .Data.data.pasword }}{{ end }}",
        &[("secret/data/app", kv2_app())],
        &options,
    )
    .expect_err("missing key fails");
    assert_eq!(
        err,
        "test:2:30: executing at <.Data.data.pasword>: map has no entry for key \"pasword\""
    );
    assert!(!err.contains("\"p\""), "no secret value in the error");
}

#[test]
fn json_numbers_print_literally_and_compare_as_strings() {
    let nested = [("n", kv2_nested())];
    assert_eq!(
        render(
            "{{ with secret \"n\" }}{{ .Data.data.num }} {{ .Data.data.float }} {{ eq .Data.data.num \"42\" }}{{ end }}",
            &nested
        ),
        "42 1.5 true"
    );
    let err = render_err(
        "{{ with secret \"n\" }}{{ eq .Data.data.num 42 }}{{ end }}",
        &nested,
    );
    assert!(
        err.ends_with("error calling eq: incompatible types for comparison: json.Number and int"),
        "{err}"
    );
}

#[test]
fn big_integers_keep_their_exact_text() {
    let s =
        mk_secret(json!({"data": {"big": 12345678901234567000u64, "neg": -9007199254740993i64}}));
    assert_eq!(
        render(
            "{{ with secret \"x\" }}{{ .Data.big }} {{ .Data.neg }} {{ .Data | toJSON }}{{ end }}",
            &[("x", s)]
        ),
        "12345678901234567000 -9007199254740993 {\"big\":12345678901234567000,\"neg\":-9007199254740993}"
    );
}

#[test]
fn prints_number_constants_as_go_does() {
    assert_eq!(
        render(
            "{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 1e6 }} {{ 0x1F }} {{ 0o17 }} {{ 1_000 }} {{ 3.0 }} {{ 0.000001 }} {{ 123456789.0 }} {{ 'a' }}",
            &[]
        ),
        "42 -7 1.5 1e+06 31 15 1000 3 1e-06 1.23456789e+08 97"
    );
}

#[test]
fn printf_supports_go_verbs_and_flags() {
    let nested = [("n", kv2_nested())];
    let out = render(
        "{{ with secret \"n\" }}{{ printf \"%s|%v|%q|%5s|%-5s|\" .Data.data.db.host .Data.data.list .Data.data.quote \"ab\" \"ab\" }}\n\
         {{ printf \"%d|%05d|%+d|%x|%X|%o|%b|%c\" 42 42 42 255 255 8 5 65 }}\n\
         {{ printf \"%f|%.2f|%8.3f|%e|%g|%t|%v\" 1.5 3.14159 2.5 1234.5678 0.000012 true nil }}\n\
         {{ printf \"%s %d\" .Data.data.num .Data.data.num }}\n\
         {{ printf \"%T %T %T %T\" .Data.data.list .Data.data.num .Data.data.t 1.5 }}\n\
         {{ printf \"%x %q %10.3s|\" \"hi\" 65 \"abcdef\" }}\n\
         {{ printf \"missing %s %d\" \"one\" }} {{ printf \"extra\" 1 \"x\" }} {{ printf \"100%%\" }}{{ end }}",
        &nested,
    );
    assert_eq!(
        out,
        "db.internal|[a b c]|\"he said \\\"hi\\\" and 'bye'\"|   ab|ab   |\n\
         42|00042|+42|ff|FF|10|101|A\n\
         1.500000|3.14|   2.500|1.234568e+03|1.2e-05|true|<nil>\n\
         42 %!d(json.Number=42)\n\
         []interface {} json.Number bool float64\n\
         6869 'A'        abc|\n\
         missing one %!d(MISSING) extra%!(EXTRA int=1, string=x) 100%"
    );
}

#[test]
fn to_json_escapes_html_and_pretty_indents_two_spaces() {
    let nested = [("n", kv2_nested())];
    assert_eq!(
        render(
            "{{ with secret \"n\" }}{{ .Data.data.html | toJSON }} {{ .Data.data.uni | toJSON }}\n{{ .Data.data.db | toJSONPretty }}{{ end }}",
            &nested
        ),
        "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a\\u003e\" \"héllo ✓ 日本\"\n{\n  \"host\": \"db.internal\",\n  \"opts\": {\n    \"ssl\": true,\n    \"timeout\": 2.5\n  },\n  \"port\": 5432\n}"
    );
}

#[test]
fn to_yaml_quotes_and_orders_like_yaml_v2() {
    let out = render(
        "{{ with secret \"n\" }}{{ .Data.data | toYAML }}{{ end }}",
        &[("n", kv2_nested())],
    );
    assert_eq!(
        out,
        "_x: underscore\n1k: digit\nB: upper\na2: two\na10: ten\ncolon: 'a: b'\ndash: '- item'\ndb:\n  host: db.internal\n  opts:\n    ssl: true\n    timeout: 2.5\n  port: 5432\n\
         empty: \"\"\nemptylist: []\nemptymap: {}\nf: false\nfloat: 1.5\nhash: 'x #y'\nhtml: <a href=\"x\">&amp;</a>\nlead: ' padded '\nlist:\n- a\n- b\n- c\n\
         long: this is a rather long value with spaces that goes on and on beyond eighty characters\n  in total length\n\
         mixed:\n- 1\n- two\n- null\n- false\n- k: v\nmulti: |\n  line1\n  line2\n\"n\": null\nnum: 42\nnumstr: \"123\"\n\
         quote: he said \"hi\" and 'bye'\nstar: '*ref'\nt: true\ntab: \"a\\tb\"\nuni: héllo ✓ 日本\n\"yes\": \"yes\""
    );
}

#[test]
fn parse_json_numbers_are_float64() {
    let s = mk_secret(
        json!({"data": {"json": "{\"name\":\"svc\",\"ports\":[80,443],\"tls\":{\"on\":true},\"m\":1000000}"}}),
    );
    let out = render(
        "{{ with secret \"b\" }}{{ $j := .Data.json | parseJSON }}{{ $j }}\n{{ $j | toJSON }}\n{{ $j | toYAML }}{{ end }}",
        &[("b", s)],
    );
    assert_eq!(
        out,
        "map[m:1e+06 name:svc ports:[80 443] tls:map[on:true]]\n{\"m\":1000000,\"name\":\"svc\",\"ports\":[80,443],\"tls\":{\"on\":true}}\n\
         m: 1e+06\nname: svc\nports:\n- 80\n- 443\ntls:\n  \"on\": true"
    );
}

#[test]
fn range_else_runs_only_for_empty_and_break_continue_work() {
    let nested = [("n", kv2_nested())];
    assert_eq!(
        render(
            "{{ with secret \"n\" }}{{ range .Data.data.emptylist }}item{{ else }}no items{{ end }} {{ range .Data.data.list }}{{ . }}{{ else }}never{{ end }}{{ end }}",
            &nested
        ),
        "no items abc"
    );
    assert_eq!(
        render(
            "{{ range $i, $e := (split \",\" \"a,b,c,d,e\") }}{{ if eq $e \"b\" }}{{ continue }}{{ end }}{{ if eq $e \"d\" }}{{ break }}{{ end }}{{ $e }}{{ end }}",
            &[]
        ),
        "ac"
    );
}

#[test]
fn trim_markers_and_comments_remove_whitespace() {
    let text = "start\n{{- with secret \"secret/data/app\" }}\n  user: {{ .Data.data.username -}}\n  \n{{ end -}}\n   middle   {{- /* a comment */ -}}   end\n{{/* plain comment */}}\ndone\n";
    assert_eq!(
        render(text, &[("secret/data/app", kv2_app())]),
        "start\n  user: umiddleend\n\ndone\n"
    );
}

#[test]
fn custom_delimiters_leave_braces_alone() {
    let t = Template::parse(
        "d",
        "[[ with secret \"a\" ]][[ .Data.user ]] {{ literal }}[[ end ]]",
        "[[",
        "]]",
    )
    .expect("parses");
    let mut ctx = RenderContext::new();
    ctx.insert(read("a"), Ok(mk_secret(json!({"data": {"user": "ann"}}))));
    assert_eq!(
        t.render(&mut ctx, &RenderOptions::default())
            .expect("renders"),
        b"ann {{ literal }}"
    );
}

#[test]
fn and_or_return_operands_and_print_spaces_like_go() {
    assert_eq!(
        render(
            "{{ and 1 \"x\" 0 \"y\" }}|{{ and 1 \"x\" }}|{{ or 0 \"\" \"z\" }}|{{ or 0 \"\" }}|{{ or nil false }}|{{ and \"a\" nil }}",
            &[]
        ),
        "0|x|z||false|<no value>"
    );
    assert_eq!(
        render(
            "{{ print \"a\" \"b\" 1 2 \"c\" 3 nil }}\n{{ println \"x\" 1 true }}",
            &[]
        ),
        "ab1 2c3 <nil>\nx 1 true\n"
    );
}

#[test]
fn string_functions_use_consul_template_argument_order() {
    let out = render(
        "{{ \" a,b , c \" | split \",\" }} {{ split \",\" \"x,y\" | join \"+\" }} {{ replaceAll \"o\" \"0\" \"foo boo\" }} \
         {{ \"hello world\" | contains \"world\" }} {{ contains \"zzz\" \"hello\" }} {{ trimSpace \"  x \\n\" }} {{ \"héllo?>\" | base64URLEncode }} {{ \"aGk=\" | base64Decode }}",
        &[],
    );
    assert_eq!(out, "[a b   c] x+y f00 b00 true false x aMOpbGxvPz4= hi");
}

#[test]
fn escapes_html_js_and_urlquery_like_go() {
    assert_eq!(
        render(
            "{{ html \"<a href=\\\"x\\\">O'Reilly & co</a>\" }}\n{{ js \"it's \\\"quoted\\\" <tag> & = \\\\\" }}\n{{ urlquery \"a b&c=d/é\" }}",
            &[]
        ),
        "&lt;a href=&#34;x&#34;&gt;O&#39;Reilly &amp; co&lt;/a&gt;\nit\\'s \\\"quoted\\\" \\u003Ctag\\u003E \\u0026 \\u003D \\\\\na+b%26c%3Dd%2F%C3%A9"
    );
}

#[test]
fn variables_define_and_template_work() {
    let app = [("secret/data/app", kv2_app())];
    assert_eq!(
        render(
            "{{ $x := \"first\" }}{{ $x }} {{ $x = \"second\" }}{{ $x }} {{ $s := secret \"secret/data/app\" }}{{ $s.Data.data.username }} {{ $.Foo }}",
            &app
        ),
        "first second u <no value>"
    );
    assert_eq!(
        render(
            "{{ define \"kv\" }}{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}{{ end }}{{ with secret \"secret/data/app\" }}{{ template \"kv\" .Data.data }}{{ end }}",
            &app
        ),
        "password=p;username=u;"
    );
}

#[test]
fn parse_errors_name_template_line_and_column() {
    let err = Template::parse(
        "/vault/secrets/db",
        "ok\n  {{ with secret \"x\" }}{{ .Data }\n",
        "",
        "",
    )
    .expect_err("unclosed");
    assert_eq!((err.name.as_str(), err.line), ("/vault/secrets/db", 2));
    assert!(err.to_string().starts_with("/vault/secrets/db:2:"), "{err}");
    let err = Template::parse("t", "{{ nosuchfn 1 }}", "", "").expect_err("unknown function");
    assert_eq!(err.to_string(), "t:1:4: function \"nosuchfn\" not defined");
    let err = Template::parse("t", "a\n{{ $y }}", "", "").expect_err("undefined variable");
    assert_eq!(err.to_string(), "t:2:4: undefined variable \"$y\"");
    let err = Template::parse("t", "{{ if true }}x", "", "").expect_err("missing end");
    assert!(err.message.contains("unexpected EOF"), "{err}");
    let err = Template::parse("t", "{{ break }}", "", "").expect_err("break outside range");
    assert!(err.message.contains("outside"), "{err}");
}

#[test]
fn lexes_unicode_names_escapes_and_raw_strings_as_go_does() {
    assert_eq!(
        render(
            "{{ $né := \"a\\tb\" }}{{ $né }}|{{ $日本2 := `x\\ty` }}{{ $日本2 }}|{{ \"plain\" }}",
            &[],
        ),
        "a\tb|x\\ty|plain"
    );
    let err = Template::parse("t", "{{ $né := 1 }}{{ $n }}", "", "").expect_err("undefined");
    assert_eq!(err.to_string(), "t:1:19: undefined variable \"$n\"");
}

#[test]
fn render_loop_discovers_nested_requests_and_reports_failed_fetches() {
    let t = Template::parse(
        "app",
        "{{ range secrets \"kv/list\" }}{{ with secret (printf \"kv/list/%s\" .) }}{{ .Data.v }};{{ end }}{{ end }}\
         {{ with secret \"pki/issue/web\" \"common_name=a.example\" \" ttl = 1h \" }}{{ .Data.serial }}{{ end }}",
        "",
        "",
    )
    .expect("parses");
    let options = RenderOptions::default();
    let mut ctx = RenderContext::new();

    // First pass: only the list and the write are known to be needed.
    assert_eq!(t.render(&mut ctx, &options).expect("first pass"), b"");
    let write = Request::Write {
        path: "pki/issue/web".into(),
        data: [
            ("common_name".to_owned(), "a.example".to_owned()),
            ("ttl".to_owned(), "1h".to_owned()),
        ]
        .into(),
    };
    assert_eq!(
        ctx.missing(),
        [
            write.clone(),
            Request::List {
                path: "kv/list".into()
            }
        ]
    );
    ctx.insert_list(
        Request::List {
            path: "kv/list".into(),
        },
        Ok(vec!["a".into(), "b".into()]),
    );
    ctx.insert(write, Ok(mk_secret(json!({"data": {"serial": "01:02"}}))));

    // Second pass: the list names the secrets to read next.
    assert_eq!(t.render(&mut ctx, &options).expect("second pass"), b"01:02");
    assert_eq!(ctx.missing(), [read("kv/list/a"), read("kv/list/b")]);
    ctx.insert(
        read("kv/list/a"),
        Ok(mk_secret(json!({"data": {"v": "1"}}))),
    );
    ctx.insert(read("kv/list/b"), Err("permission denied (403)".into()));

    // A failed fetch fails the render with the template position; the
    // computed path is not named.
    let err = t.render(&mut ctx, &options).expect_err("fetch failed");
    assert!(ctx.missing().is_empty());
    assert_eq!(
        err.to_string(),
        "app:1:38: executing at <secret (printf \"kv/list/%s\" .)>: error calling secret: permission denied (403)"
    );

    ctx.insert(
        read("kv/list/b"),
        Ok(mk_secret(json!({"data": {"v": "2"}}))),
    );
    assert_eq!(
        t.render(&mut ctx, &options).expect("complete"),
        b"1;2;01:02"
    );
    assert!(ctx.missing().is_empty());
}

#[test]
fn field_access_on_unfetched_secret_is_not_an_error_on_first_pass() {
    let t = Template::parse("t", "{{ (secret \"kv/a\").Data.user }}", "", "").expect("parses");
    let mut ctx = RenderContext::new();
    assert_eq!(
        t.render(&mut ctx, &RenderOptions::default())
            .expect("first pass"),
        b"<no value>"
    );
    assert_eq!(ctx.missing(), [read("kv/a")]);
}

#[test]
fn pki_cert_returns_pem_parts() {
    let t = Template::parse("t", "{{ with pkiCert \"pki/issue/r\" \"common_name=x\" }}{{ .Cert }}{{ .Key }}{{ .CA }}{{ .Data.Cert }}{{ end }}", "", "").expect("parses");
    let mut ctx = RenderContext::new();
    // The request names the destination, where a certificate issued
    // earlier may be reused.
    let issue = Request::PkiCert {
        path: "pki/issue/r".into(),
        data: [("common_name".to_owned(), "x".to_owned())].into(),
        destination: Some("/run/secrets/tls.pem".into()),
    };
    ctx.insert(issue, Ok(mk_secret(json!({"data": {"certificate": "CERT", "private_key": "KEY", "issuing_ca": "CA", "ca_chain": ["CA"]}}))));
    let options = RenderOptions {
        destination: Some("/run/secrets/tls.pem".into()),
        ..RenderOptions::default()
    };
    assert_eq!(
        t.render(&mut ctx, &options).expect("renders"),
        b"CERT\nKEY\nCA\nCERT\n"
    );
}

#[test]
fn failed_call_names_a_literal_path_but_not_a_computed_one() {
    // A secret's value used as the path of the next read.
    let text = "{{ with secret \"kv/pointer\" }}{{ with secret .Data.next }}{{ end }}{{ end }}";
    let pointer = mk_secret(json!({"data": {"next": "kv/hunter2"}}));
    let t = Template::parse("test", text, "", "").expect("parses");
    let options = RenderOptions::default();

    let mut ctx = RenderContext::new();
    ctx.insert(read("kv/pointer"), Ok(pointer));
    ctx.insert(
        read("kv/hunter2"),
        Err("GET <computed>: permission denied".into()),
    );
    let err = t
        .render(&mut ctx, &options)
        .expect_err("computed read fails");
    assert_eq!(
        err.to_string(),
        "test:1:39: executing at <secret .Data.next>: error calling secret: GET <computed>: permission denied"
    );

    let mut ctx = RenderContext::new();
    ctx.insert(
        read("kv/pointer"),
        Err("GET kv/pointer: permission denied".into()),
    );
    let err = t
        .render(&mut ctx, &options)
        .expect_err("literal read fails");
    assert_eq!(
        err.to_string(),
        "test:1:9: executing at <secret \"kv/pointer\">: error calling secret: secret \"kv/pointer\": GET kv/pointer: permission denied"
    );
}

#[test]
fn env_reads_the_process_environment() {
    assert_eq!(
        render(
            "[{{ env \"KEYHOLE_SURELY_UNSET_VARIABLE\" }}] {{ env \"PATH\" | len | lt 0 }}",
            &[]
        ),
        "[] true"
    );
}

#[test]
fn template_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
}

#[test]
fn contains_variants_take_interface_lists_and_loop_counts() {
    let s = mk_secret(
        json!({"data": {"have": ["a", "b"], "ab": ["a", "b"], "zb": ["z", "b"], "z": ["z"], "az": ["a", "z"]}}),
    );
    assert_eq!(
        render(
            "{{ with secret \"l\" }}{{ .Data.have | containsAll .Data.ab }} {{ .Data.have | containsAny .Data.zb }} \
             {{ .Data.have | containsNone .Data.z }} {{ .Data.have | containsNotAll .Data.az }}{{ end }} {{ range loop 2 5 }}{{ . }}{{ end }}",
            &[("l", s)]
        ),
        "true true true true 234"
    );
    let err = render_err(
        "{{ split \",\" \"a\" | containsAll (split \",\" \"a\") }}",
        &[],
    );
    assert!(
        err.ends_with("wrong type for value; expected []interface {}; got []string"),
        "{err}"
    );
}

#[test]
fn printf_with_a_huge_width_prints_no_verb_like_go() {
    assert_eq!(
        render(r#"{{ printf "%99999999999999999999d|" 1 }}"#, &[]),
        "%!(NOVERB)%!(EXTRA int=1)"
    );
}

/// The stack of a thread that does not ask for more: tokio's worker threads
/// and Rust's spawned threads.
const SMALL_STACK: usize = 2 << 20;

/// Parses and renders on a thread with a 2 MiB stack, as a deep template
/// would run in the agent. A stack overflow aborts the test process.
fn render_on_small_stack(text: &str, secrets: &[(&str, Arc<Secret>)]) -> Result<String, String> {
    let text = text.to_owned();
    let secrets: Vec<(String, Arc<Secret>)> = secrets
        .iter()
        .map(|(path, s)| ((*path).to_owned(), s.clone()))
        .collect();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let secrets: Vec<(&str, Arc<Secret>)> = secrets
                .iter()
                .map(|(p, s)| (p.as_str(), s.clone()))
                .collect();
            render_opts(&text, &secrets, &RenderOptions::default())
        })
        .expect("spawn")
        .join()
        .expect("render thread")
}

/// A secret whose `.Data` nests maps `levels` deep: `{"a":{"a":..."leaf"}}`.
fn deep_secret(levels: usize) -> Arc<Secret> {
    let mut inner = json!("leaf");
    for _ in 1..levels {
        inner = json!({ "a": inner });
    }
    let mut data = serde_json::Map::new();
    data.insert("a".to_owned(), inner);
    Arc::new(Secret {
        data: crate::vault::SecretData(data),
        ..Secret::default()
    })
}

#[test]
fn endless_template_recursion_stops_with_a_depth_error() {
    let err = render_on_small_stack(
        "{{ define \"x\" }}{{ template \"x\" . }}{{ end }}{{ template \"x\" . }}",
        &[],
    )
    .expect_err("must fail");
    assert_eq!(
        err,
        "test:1:20: executing at <template \"x\">: exceeded maximum template depth (100)"
    );
}

#[test]
fn recursion_through_any_construct_stops_with_a_depth_error() {
    // Each recursion adds a template call and the construct around it; the
    // construct is the 101st level, so it is the one that fails.
    for (open, close, at) in [
        ("{{ if true }}", "{{ end }}", "if"),
        ("{{ with 1 }}", "{{ end }}", "with"),
        ("{{ range loop 1 }}", "{{ end }}", "range"),
    ] {
        let text = format!(
            "{{{{ define \"x\" }}}}{open}{{{{ template \"x\" }}}}{close}{{{{ end }}}}\
             {open}{{{{ template \"x\" }}}}{close}"
        );
        let err = render_on_small_stack(&text, &[]).expect_err(at);
        assert!(
            err.ends_with(&format!(
                ": executing at <{at}>: exceeded maximum template depth (100)"
            )),
            "{err}"
        );
    }
}

#[test]
fn recursion_through_nested_constructs_stops_with_a_depth_error() {
    // Each call nests 50 `if`s before recursing: before nesting was counted
    // as a whole, this overflowed a 2 MiB stack long before 100 calls.
    let text = format!(
        "{{{{ define \"x\" }}}}{}{{{{ template \"x\" }}}}{}{{{{ end }}}}{{{{ template \"x\" }}}}",
        "{{ if true }}".repeat(50),
        "{{ end }}".repeat(50)
    );
    let err = render_on_small_stack(&text, &[]).expect_err("must fail");
    assert!(
        err.ends_with(": executing at <if>: exceeded maximum template depth (100)"),
        "{err}"
    );
}

#[test]
fn parentheses_count_on_top_of_recursion() {
    // 40 recursive calls guarded by an `if` reach depth 82; 20 nested
    // parentheses at the bottom pass 100.
    let parens = format!("{}1{}", "(print ".repeat(20), ")".repeat(20));
    let text = format!(
        "{{{{ define \"x\" }}}}{{{{ if gt . 0 }}}}{{{{ template \"x\" (subtract 1 .) }}}}\
         {{{{ else }}}}{{{{ {parens} }}}}{{{{ end }}}}{{{{ end }}}}{{{{ template \"x\" 40 }}}}"
    );
    let err = render_on_small_stack(&text, &[]).expect_err("must fail");
    assert!(
        err.ends_with(": executing at <(...)>: exceeded maximum template depth (100)"),
        "{err}"
    );
    // Two fewer recursions leave room for the parentheses.
    let text = text.replace("\"x\" 40", "\"x\" 38");
    assert_eq!(render_on_small_stack(&text, &[]), Ok("1".to_owned()));
}

#[test]
fn else_if_chains_do_not_count_as_nesting() {
    // The recursion sits in the last arm of a 60-arm chain: were each arm a
    // level, the second call would already pass 100.
    let arms: String = (1..=60)
        .map(|i| format!("{{{{ else if eq . -{i} }}}}arm {i}"))
        .collect();
    let text = format!(
        "{{{{ define \"x\" }}}}{{{{ if eq . 0 }}}}done{arms}\
         {{{{ else }}}}{{{{ template \"x\" (subtract 1 .) }}}}{{{{ end }}}}{{{{ end }}}}\
         {{{{ template \"x\" 40 }}}}"
    );
    assert_eq!(render_on_small_stack(&text, &[]), Ok("done".to_owned()));
}

#[test]
fn nesting_up_to_the_limit_renders_on_a_small_stack_with_deep_data() {
    // 99 parenthesized calls inside `with`: the most levels allowed, each
    // of the costliest kind, with the deepest value the encoders accept at
    // the bottom.
    let secret = deep_secret(super::value::MAX_VALUE_DEPTH);
    let nest = |inner: &str| {
        format!(
            "{{{{ with secret \"deep\" }}}}{{{{ {}({inner}){} }}}}{{{{ end }}}}",
            "(print ".repeat(super::exec::MAX_DEPTH - 2),
            ")".repeat(super::exec::MAX_DEPTH - 2),
        )
    };
    let levels = super::value::MAX_VALUE_DEPTH;
    let json = format!("{}\"leaf\"{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    assert_eq!(
        render_on_small_stack(&nest("toJSON .Data"), &[("deep", secret.clone())]),
        Ok(json)
    );
    let yaml =
        render_on_small_stack(&nest("toYAML .Data"), &[("deep", secret.clone())]).expect("renders");
    assert!(
        yaml.ends_with(&format!("\n{}a: leaf", " ".repeat(2 * (levels - 1)))),
        "{}",
        &yaml[yaml.len().saturating_sub(80)..]
    );
    let printed = format!("{}leaf{}", "map[a:".repeat(levels), "]".repeat(levels));
    assert_eq!(
        render_on_small_stack(&nest("printf \"%v\" .Data"), &[("deep", secret.clone())]),
        Ok(printed)
    );
    // parseJSON's decoder stops at 128 levels; the deepest text it accepts
    // survives the round trip.
    let parsed = format!("{}1{}", "[".repeat(127), "]".repeat(127));
    let text = nest(&format!("parseJSON {parsed:?} | toJSON"));
    assert_eq!(
        render_on_small_stack(&text, &[("deep", secret)]),
        Ok(parsed)
    );
}

#[test]
fn values_nested_too_deep_fail_naming_the_function() {
    let secret = deep_secret(super::value::MAX_VALUE_DEPTH + 1);
    let too_deep = "value nested more than 256 levels deep";
    for (call, failure) in [
        ("toJSON .Data", "error calling toJSON: "),
        ("toJSONPretty .Data", "error calling toJSONPretty: "),
        ("toYAML .Data", "error calling toYAML: "),
        ("printf \"%v\" .Data", "error calling printf: "),
        ("print .Data", "error calling print: "),
        ("urlquery .Data", "error calling urlquery: "),
        (".Data", "can't print "),
    ] {
        let text = format!("{{{{ with secret \"deep\" }}}}{{{{ {call} }}}}{{{{ end }}}}");
        let err = render_on_small_stack(&text, &[("deep", secret.clone())]).expect_err(call);
        assert_eq!(
            err,
            format!("test:1:28: executing at <{call}>: {failure}{too_deep}")
        );
    }
}

#[test]
fn parse_json_of_deeply_nested_text_fails_naming_the_function() {
    let text = format!("{{{{ parseJSON \"{}\" }}}}", "[".repeat(100_000));
    let err = render_on_small_stack(&text, &[]).expect_err("must fail");
    assert!(
        err.ends_with(
            "error calling parseJSON: parseJSON: recursion limit exceeded at line 1 column 128"
        ),
        "{}",
        &err[err.len().saturating_sub(200)..]
    );
}

#[test]
fn ranging_over_a_huge_integer_builds_nothing() {
    let text =
        "{{ range $i := 100000000000 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}";
    assert_eq!(render(text, &[]), "012");
}

#[test]
fn huge_counts_are_errors_not_allocations() {
    assert_eq!(
        render_err("{{ range loop 100000000000 }}{{ end }}", &[]),
        "test:1:10: executing at <loop 100000000000>: error calling loop: loop: \
         100000000000 items, more than the limit of 1000000"
    );
    assert_eq!(
        render_err(r#"{{ indent 100000000000 "x" }}"#, &[]),
        "test:1:4: executing at <indent 100000000000 \"x\">: error calling indent: indent: \
         100000000000 spaces on 1 lines, more than the limit of 67108864 bytes"
    );
    assert_eq!(render("{{ range loop 2 4 }}{{ . }}{{ end }}", &[]), "23");
}
