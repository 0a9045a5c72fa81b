//! Sprig's encodings and checksums. Its decoders never fail: text that
//! does not decode gives Go's error message as the value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{Algorithm, SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// `b64enc s`: standard base64 with padding.
pub(in super::super) fn b64enc<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(STANDARD.encode(string_arg(&args[0])?)))
}

/// `b64dec s`: the text `s` encodes, or Go's error message.
pub(in super::super) fn b64dec<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    // Go's decoder skips line breaks.
    let s: String = string_arg(&args[0])?
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    Ok(owned(match STANDARD.decode(&s) {
        Ok(bytes) => text(bytes),
        Err(err) => {
            let at = match err {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                base64::DecodeError::InvalidLength(len) => len - len % 4,
                base64::DecodeError::InvalidPadding => s.find('=').unwrap_or(0),
            };
            format!("illegal base64 data at input byte {at}")
        }
    }))
}

/// `b32enc s`: standard base32 with padding.
pub(in super::super) fn b32enc<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(
        data_encoding::BASE32.encode(string_arg(&args[0])?.as_bytes()),
    ))
}

/// `b32dec s`: the text `s` encodes, or Go's error message.
pub(in super::super) fn b32dec<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let s: String = string_arg(&args[0])?
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    Ok(owned(match data_encoding::BASE32.decode(s.as_bytes()) {
        Ok(bytes) => text(bytes),
        Err(err) => format!("illegal base32 data at input byte {}", err.position),
    }))
}

/// Decoded bytes as text; Go strings hold any bytes, output here must be
/// UTF-8, so invalid sequences become U+FFFD.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `sha1sum s`: the SHA-1 of `s` in hex.
pub(in super::super) fn sha1sum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    hex_digest(&SHA1_FOR_LEGACY_USE_ONLY, &args[0])
}

/// `sha256sum s`: the SHA-256 of `s` in hex.
pub(in super::super) fn sha256sum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    hex_digest(&SHA256, &args[0])
}

fn hex_digest<'a>(algorithm: &'static Algorithm, v: &Value<'_>) -> FnResult<'a> {
    let sum = digest(algorithm, string_arg(v)?.as_bytes());
    Ok(owned(data_encoding::HEXLOWER.encode(sum.as_ref())))
}

/// `adler32sum s`: the Adler-32 checksum of `s` in decimal.
pub(in super::super) fn adler32sum<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    const MOD: u32 = 65521;
    let (a, b) = string_arg(&args[0])?
        .bytes()
        .fold((1u32, 0u32), |(a, b), byte| {
            let a = (a + u32::from(byte)) % MOD;
            (a, (b + a) % MOD)
        });
    Ok(owned(((b << 16) | a).to_string()))
}
