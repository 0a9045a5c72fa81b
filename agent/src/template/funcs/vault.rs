//! consul-template's Vault functions. They read the results of their
//! requests from the render's [`Requests`]; a request not fetched yet is
//! recorded there and evaluates to nil, as on consul-template's first pass.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use super::super::context::{Request, Requests};
use super::super::value::{Pem, Value};
use super::args::{FnResult, string_arg};
use super::strings::is_go_space;
use crate::vault::Secret;

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
    /// The function's name in templates.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Secrets => "secrets",
            Self::PkiCert => "pkiCert",
        }
    }
}

/// `secret path`: a read; `secret path "k=v"...`: a write.
pub(super) fn secret<'a>(requests: &mut Requests<'a>, args: &[Value<'a>]) -> FnResult<'a> {
    let Some(request) = write_or_read(requests, args, VaultFunction::Secret)? else {
        return Ok(Value::Nil);
    };
    Ok(match fetch(requests, VaultFunction::Secret, request)? {
        Some(secret) => Value::Secret(secret),
        None => Value::Nil,
    })
}

/// `secrets path`: the key names under `path`, sorted.
pub(super) fn secrets<'a>(requests: &mut Requests<'a>, args: &[Value<'a>]) -> FnResult<'a> {
    let path = string_arg(&args[0])?;
    if path.is_empty() {
        return Ok(Value::StrSlice(&[]));
    }
    let request = Request::List {
        path: path.to_owned(),
    };
    match requests.list(&request) {
        Some(Ok(list)) => Ok(Value::StrSlice(list)),
        Some(Err(e)) => Err(call_failed(requests, VaultFunction::Secrets, &request, e)),
        None => Ok(Value::StrSlice(&[])),
    }
}

/// `pkiCert path "k=v"...`: a write that issues a certificate; the value
/// holds its PEM parts.
pub(super) fn pki_cert<'a>(requests: &mut Requests<'a>, args: &[Value<'a>]) -> FnResult<'a> {
    let Some(request) = write_or_read(requests, args, VaultFunction::PkiCert)? else {
        return Ok(Value::Nil);
    };
    let Some(found) = fetch(requests, VaultFunction::PkiCert, request)? else {
        return Ok(Value::Nil);
    };
    let field = |k: &str| {
        found
            .data
            .get(k)
            .and_then(|v| v.as_str())
            .map(pem_block)
            .unwrap_or_default()
    };
    Ok(Value::Pem(Rc::new(Pem {
        cert: field("certificate"),
        key: field("private_key"),
        ca: field("issuing_ca"),
    })))
}

/// The request of `secret` or `pkiCert`: a write with the `k=v`
/// parameters after the path (for `pkiCert`, one that may find its
/// certificate in the destination), or, for `secret` without any, a read. `None`
/// without a path: the call returns nil and reads nothing.
fn write_or_read(
    requests: &Requests<'_>,
    args: &[Value<'_>],
    function: VaultFunction,
) -> Result<Option<Request>, String> {
    let Some((path, rest)) = args.split_first() else {
        return Ok(None);
    };
    let path = string_arg(path)?.to_owned();
    let mut data = BTreeMap::new();
    for arg in rest {
        let s = string_arg(arg)?;
        if s.is_empty() {
            continue;
        }
        let (k, v) = s.split_once('=').ok_or_else(|| "not k=v pair".to_owned())?;
        data.insert(
            k.trim_matches(is_go_space).to_owned(),
            v.trim_matches(is_go_space).to_owned(),
        );
    }
    Ok(Some(match function {
        VaultFunction::Secret if rest.is_empty() => Request::Read { path },
        VaultFunction::PkiCert => Request::PkiCert {
            path,
            data,
            destination: requests.destination().map(Path::to_path_buf),
        },
        _ => Request::Write { path, data },
    }))
}

/// The secret `request` returned, `None` while it has not been fetched.
fn fetch<'a>(
    requests: &mut Requests<'a>,
    function: VaultFunction,
    request: Request,
) -> Result<Option<&'a Secret>, String> {
    match requests.secret(&request) {
        Some(Ok(secret)) => Ok(Some(secret)),
        Some(Err(e)) => Err(call_failed(requests, function, &request, e)),
        None => Ok(None),
    }
}

/// The message of `function` whose `request` failed with `e`. The path is
/// named only when the template writes it as a constant: a computed path
/// may be a secret, so it is left out, and the message that the caller
/// stored as `e` must not show it either.
fn call_failed(
    requests: &Requests<'_>,
    function: VaultFunction,
    request: &Request,
    e: &str,
) -> String {
    let path = request.path();
    if requests.is_literal_path(path) {
        format!("{} {path:?}: {e}", function.name())
    } else {
        e.to_owned()
    }
}

/// A PEM block as Go's `pem.EncodeToMemory` writes it: ending in a newline.
fn pem_block(s: &str) -> String {
    let mut s = s.trim_end().to_owned();
    s.push('\n');
    s
}
