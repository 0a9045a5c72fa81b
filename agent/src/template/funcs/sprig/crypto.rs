//! Sprig's password hashes, its password derivation and its AES
//! encryption. The hashes never fail, as in sprig: a password bcrypt cannot
//! take gives the error's text as the value.

use aes::Aes256;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ring::hmac;
use zeroize::Zeroizing;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::strval;

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

/// The salt prefix of the Master Password algorithm.
const MASTER_PASSWORD_SEED: &[u8] = b"com.lyndir.masterpassword";

/// The Master Password templates of each password type: one is picked by
/// the seed's first byte, then each letter picks a character of its class.
fn password_templates(password_type: &str) -> Option<&'static [&'static str]> {
    Some(match password_type {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

/// The characters a Master Password template letter stands for.
fn template_characters(class: u8) -> &'static [u8] {
    match class {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        // `x`, the one letter left.
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// `derivePassword counter type password user site`: the Master Password
/// algorithm's password for `site`, the same on every call. The key is
/// derived with scrypt (N = 32768, r = 8, p = 2), which takes 32 MiB of
/// memory for the call's duration (and a fraction of a second of CPU);
/// templates that do not call it do not pay for it.
pub(in super::super) fn derive_password<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let counter = uint32_arg(&args[0])?;
    let password_type = string_arg(&args[1])?;
    let (password, user, site) = (
        string_arg(&args[2])?,
        string_arg(&args[3])?,
        string_arg(&args[4])?,
    );
    let Some(templates) = password_templates(password_type) else {
        return Ok(owned(format!(
            "cannot find password template {password_type}"
        )));
    };
    let mut salt = MASTER_PASSWORD_SEED.to_vec();
    salt.extend_from_slice(&go_len(user).to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut key = Zeroizing::new([0u8; 64]);
    let params = scrypt::Params::new(15, 8, 2).map_err(|e| e.to_string())?;
    scrypt::scrypt(password.as_bytes(), &salt, &params, key.as_mut_slice())
        .map_err(|e| format!("failed to derive password: {e}"))?;

    let mut message = MASTER_PASSWORD_SEED.to_vec();
    message.extend_from_slice(&go_len(site).to_be_bytes());
    message.extend_from_slice(site.as_bytes());
    message.extend_from_slice(&counter.to_be_bytes());
    let seed = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_slice()), &message);
    let seed = seed.as_ref();
    let template = templates[usize::from(seed[0]) % templates.len()];
    let derived = template
        .bytes()
        .zip(&seed[1..])
        .map(|(class, &byte)| {
            let characters = template_characters(class);
            char::from(characters[usize::from(byte) % characters.len()])
        })
        .collect();
    Ok(owned(derived))
}

/// A length as Go's `binary.Write` writes `uint32(len(s))`: cut to 32 bits.
fn go_len(s: &str) -> u32 {
    s.len() as u32
}

/// A `uint32` parameter: a non-negative integer constant, cut to 32 bits
/// as Go's template engine sets it.
fn uint32_arg(v: &Value<'_>) -> Result<u32, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u32),
        Value::Float(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19 => Ok(*f as u64 as u32),
        Value::Int(_) | Value::Float(_) => {
            Err(format!("expected unsigned integer; found {}", strval(v)?))
        }
        Value::Missing => Err("invalid value; expected uint32".into()),
        other => Err(format!(
            "wrong type for value; expected uint32; got {}",
            other.type_name()
        )),
    }
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
