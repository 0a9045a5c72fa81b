//! Sprig's password hashes and its AES encryption. The hashes never fail,
//! as in sprig: a password bcrypt cannot take gives the error's text as
//! the value.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

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

/// AES's block size in bytes.
const BLOCK: usize = 16;

/// Sprig's AES-256 key: the password's bytes, cut or padded with zeros to
/// 32 bytes.
fn cipher(password: &str) -> Aes256 {
    let mut key = [0u8; 32];
    let bytes = password.as_bytes();
    let len = bytes.len().min(key.len());
    key[..len].copy_from_slice(&bytes[..len]);
    Aes256::new(&GenericArray::from(key))
}

/// `encryptAES password text`: `text` encrypted with AES-256-CBC under
/// sprig's key for `password`, PKCS #7 padded, after a random IV, in
/// base64; nothing for an empty `text`.
pub(in super::super) fn encrypt_aes<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (password, text) = (string_arg(&args[0])?, string_arg(&args[1])?);
    if text.is_empty() {
        return Ok(owned(String::new()));
    }
    let cipher = cipher(password);
    let padding = BLOCK - text.len() % BLOCK;
    let mut content = text.as_bytes().to_vec();
    content.resize(text.len() + padding, padding as u8);
    let mut out = vec![0u8; BLOCK];
    rand::rng().fill_bytes(&mut out);
    for chunk in content.chunks(BLOCK) {
        let previous = &out[out.len() - BLOCK..];
        let mut block = GenericArray::clone_from_slice(chunk);
        block.iter_mut().zip(previous).for_each(|(b, p)| *b ^= p);
        cipher.encrypt_block(&mut block);
        out.extend_from_slice(&block);
    }
    Ok(owned(STANDARD.encode(out)))
}

/// `decryptAES password text`: the text `encryptAES` encrypted; nothing
/// for an empty `text`.
pub(in super::super) fn decrypt_aes<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (password, encoded) = (string_arg(&args[0])?, string_arg(&args[1])?);
    if encoded.is_empty() {
        return Ok(owned(String::new()));
    }
    let crypt = STANDARD
        .decode(encoded)
        .map_err(|_| "illegal base64 data".to_owned())?;
    if crypt.len() < BLOCK {
        return Err(format!(
            "runtime error: slice bounds out of range [:{BLOCK}] with capacity {}",
            crypt.len()
        ));
    }
    let (iv, body) = crypt.split_at(BLOCK);
    if body.len() % BLOCK != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    let cipher = cipher(password);
    let mut plain = Vec::with_capacity(body.len());
    let mut previous = iv;
    for chunk in body.chunks(BLOCK) {
        let mut block = GenericArray::clone_from_slice(chunk);
        cipher.decrypt_block(&mut block);
        block.iter_mut().zip(previous).for_each(|(b, p)| *b ^= p);
        plain.extend_from_slice(&block);
        previous = chunk;
    }
    let Some(&pad) = plain.last() else {
        return Err("runtime error: index out of range [-1]".into());
    };
    let end = plain.len().checked_sub(usize::from(pad)).ok_or_else(|| {
        format!(
            "runtime error: slice bounds out of range [:{}]",
            plain.len() as i64 - i64::from(pad)
        )
    })?;
    plain.truncate(end);
    // Output must be UTF-8: invalid sequences become U+FFFD.
    Ok(owned(String::from_utf8_lossy(&plain).into_owned()))
}
