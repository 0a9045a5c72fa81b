//! Sprig's password hashes. Like sprig, they never fail: a password
//! bcrypt cannot take gives the error's text as the value.

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

/// Go's `bcrypt.DefaultCost`.
const COST: u32 = 10;

/// The longest password bcrypt takes, in bytes.
const MAX_PASSWORD_BYTES: usize = 72;

/// A `$2a$` bcrypt hash of `password`, or sprig's failure text.
fn hash(password: &str) -> String {
    if password.len() > MAX_PASSWORD_BYTES {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
            .to_owned();
    }
    match bcrypt::hash_with_result(password, COST) {
        Ok(parts) => parts.format_for_version(bcrypt::Version::TwoA),
        Err(err) => format!("failed to encrypt string with bcrypt: {err}"),
    }
}

/// `bcrypt s`: a bcrypt hash of `s` (cost 10, random salt).
pub(in super::super) fn bcrypt_hash<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    Ok(owned(hash(string_arg(&args[0])?)))
}

/// `htpasswd user password`: an Apache `htpasswd` line, `user:` and the
/// password's bcrypt hash.
pub(in super::super) fn htpasswd<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (user, password) = (string_arg(&args[0])?, string_arg(&args[1])?);
    if user.contains(':') {
        return Ok(owned(format!("invalid username: {user}")));
    }
    Ok(owned(format!("{user}:{}", hash(password))))
}
