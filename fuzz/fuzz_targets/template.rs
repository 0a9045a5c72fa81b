//! Arbitrary bytes as template text through the agent's template parser, and a render of
//! every template that parses against a small fixed set of secrets.
//!
//! Properties: no panic, no hang (libFuzzer's `-timeout`), and every parse or render error
//! names the template and a line:column inside the text.

#![no_main]

use std::sync::{Arc, LazyLock};

use keyhole_agent::template::{RenderContext, RenderOptions, Request, Template};
use keyhole_agent::vault::Secret;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.ctmpl";

/// Delimiter pairs picked by the first byte: the default, and the custom pairs users set.
const DELIMS: [(&str, &str); 3] = [("", ""), ("[[", "]]"), ("<%", "%>")];

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

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (left, right) = DELIMS[usize::from(selector) % DELIMS.len()];
    let template = match Template::parse(NAME, text, left, right) {
        Ok(template) => template,
        Err(err) => {
            assert_position(&err.to_string(), err.line, err.column, text);
            return;
        }
    };
    let mut ctx = RenderContext::new();
    let options = RenderOptions {
        error_on_missing_key: selector & 0x80 != 0,
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
                Request::Read { .. } | Request::Write { .. } => {
                    ctx.insert(request, Ok(Arc::clone(&SECRET)))
                }
            }
        }
    }
});
