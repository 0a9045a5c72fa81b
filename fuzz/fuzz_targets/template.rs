//! Arbitrary bytes as template text through the agent's template parser, and a render of
//! every template that parses against a small fixed set of secrets, both on a thread with
//! the 2 MiB stack of a tokio worker: the injector parses every template on one, and the
//! renderer bounds its nesting to fit in one.
//!
//! The first byte picks the delimiters (`% 3`: `{{ }}`, `[[ ]]`, `<% %>`), `missingkey=error`
//! (bit 7) and whether a four-byte header follows (bit 6). The header asks for the text to
//! be repeated (up to the injector's 64 KiB template limit) and wrapped in up to 8,191
//! levels of one nesting construct (see [`keyhole_fuzz::Nesting`]).
//!
//! Properties: no panic, no stack overflow, no hang (libFuzzer's `-timeout`; the functions
//! in [`COSTLY`] are parsed but not rendered); every parse
//! or render error names the template and a line:column inside the text; a text nested
//! past [`MAX_NESTING`] does not parse, and with a plain body the error is the nesting
//! limit's.

#![no_main]

use std::sync::{Arc, LazyLock};

use keyhole_agent::template::{MAX_NESTING, RenderContext, RenderOptions, Request, Template};
use keyhole_agent::vault::Secret;
use keyhole_fuzz::{Construct, Nesting, on_worker_stack, report_stack_overflows};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.ctmpl";

/// Delimiter pairs picked by the first byte: the default, and the custom pairs users set.
const DELIMS: [(&str, &str); 3] = [("", ""), ("[[", "]]"), ("<%", "%>")];

/// The first byte's bit that says a nesting header follows.
const SHAPED: u8 = 0x40;

/// What every read or write answers: a KV v2 shaped secret with a few value types.
static SECRET: LazyLock<Arc<Secret>> = LazyLock::new(|| {
    let secret: Secret = serde_json::from_str(
        r#"{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,
            "data":{"data":{"user":"ann","password":"s3cr3t","port":5432,"ratio":1.5,
            "ok":true,"none":null,"list":["a","b"],"nested":{"k":"v"}},
            "metadata":{"version":3},"user":"bob","certificate":"C","private_key":"K",
            "issuing_ca":"I"}}"#,
    )
    .expect("fixed secret");
    Arc::new(secret)
});

/// Functions a text is not rendered with when it names them; see [`parse_and_render`].
const COSTLY: [&str; 7] = [
    "genPrivateKey",
    "genCA",
    "genSelfSignedCert",
    "genSignedCert",
    "buildCustomCert",
    "derivePassword",
    "bcrypt",
];

/// Checks that `message` (an error's Display) points inside `text`.
fn assert_position(message: &str, line: usize, column: usize, text: &str) {
    let lines = text.split('\n').count();
    let prefix = format!("{NAME}:{line}:{column}: ");
    assert!(message.starts_with(&prefix), "no position in {message:?}");
    assert!(
        (1..=lines).contains(&line),
        "line {line} outside 1..={lines}: {message}"
    );
    let width = text.split('\n').nth(line - 1).map_or(0, str::len);
    assert!(
        (1..=width + 1).contains(&column),
        "column {column} outside 1..={} of line {line}: {message}",
        width + 1
    );
}

/// Parses `text` and renders it, answering its Vault requests for up to four passes.
/// Returns the parse error's message, if any.
fn parse_and_render(
    text: &str,
    left: &str,
    right: &str,
    missing_key_error: bool,
) -> Option<String> {
    let template = match Template::parse(NAME, text, left, right) {
        Ok(template) => template,
        Err(err) => {
            let message = err.to_string();
            assert_position(&message, err.line, err.column, text);
            return Some(message);
        }
    };
    // These cost up to seconds a call by design (RSA and DSA key generation, scrypt,
    // bcrypt); a loop of them is slow, not hung, and would trip `-timeout`.
    if COSTLY.iter().any(|name| text.contains(name)) {
        return None;
    }
    let mut ctx = RenderContext::new();
    let options = RenderOptions {
        error_on_missing_key: missing_key_error,
        ..RenderOptions::default()
    };
    // Each pass answers the requests of the last; secrets nested in secrets need a few.
    for _ in 0..4 {
        let result = template.render(&mut ctx, &options);
        if let Err(err) = &result {
            assert_position(&err.to_string(), err.line, err.column, text);
        }
        let missing = ctx.missing().to_vec();
        if missing.is_empty() {
            break;
        }
        for request in missing {
            match request {
                Request::List { .. } => {
                    ctx.insert_list(request, Ok(vec!["a".to_owned(), "b/".to_owned()]))
                }
                Request::Read { .. } | Request::Write { .. } | Request::PkiCert { .. } => {
                    ctx.insert(request, Ok(Arc::clone(&SECRET)))
                }
            }
        }
    }
    None
}

fuzz_target!(init: report_stack_overflows(), |data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (nesting, rest) = match rest.split_first_chunk::<4>() {
        Some((header, rest)) if selector & SHAPED != 0 => {
            (Some(Nesting::from_header(*header)), rest)
        }
        _ => (None, rest),
    };
    let Ok(body) = std::str::from_utf8(rest) else {
        return;
    };
    let (left, right) = DELIMS[usize::from(selector) % DELIMS.len()];
    let missing_key_error = selector & 0x80 != 0;
    on_worker_stack(|| {
        let Some(nesting) = nesting else {
            parse_and_render(body, left, right, missing_key_error);
            return;
        };
        let text = nesting.wrap(body, left, right);
        let parsed = parse_and_render(&text, left, right, missing_key_error);
        if !nesting.too_deep() {
            return;
        }
        assert!(
            parsed.is_some(),
            "{} levels of {:?} parsed",
            nesting.levels(),
            nesting.construct
        );
        // With a body that parses, the nesting is what the parser refuses.
        let plain = if nesting.construct == Construct::Parens {
            "1"
        } else {
            "x"
        };
        let text = Nesting {
            repeat: 1,
            ..nesting
        }
        .wrap(plain, left, right);
        let message = parse_and_render(&text, left, right, missing_key_error)
            .expect("too deep to parse");
        assert!(
            message.contains(&format!("nested more than {MAX_NESTING} levels deep")),
            "not the nesting limit: {message}"
        );
    });
});
