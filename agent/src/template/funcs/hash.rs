//! consul-template's digests, printed as lowercase hex.

use std::fmt::Write as _;

use md5::Digest as _;
use ring::{digest, hmac};

use super::super::value::Value;
use super::args::{FnResult, owned, string_arg};

/// `sha256Hex s`: the SHA-256 of `s`.
pub(super) fn sha256_hex<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    Ok(owned(hex(
        digest::digest(&digest::SHA256, s.as_bytes()).as_ref()
    )))
}

/// `md5sum s`: the MD5 of `s`.
pub(super) fn md5sum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s = string_arg(&args[0])?;
    Ok(owned(hex(&md5::Md5::digest(s.as_bytes()))))
}

/// `hmacSHA256Hex message key`: the HMAC-SHA256 of `message` under `key`.
pub(super) fn hmac_sha256_hex<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (message, key) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    Ok(owned(hex(hmac::sign(&key, message.as_bytes()).as_ref())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
