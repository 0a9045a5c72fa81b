//! Sprig's random functions, from the operating system's secure source
//! through `rand`'s thread generator. Their output can only match Go's in
//! length, alphabet and format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, RngCore};

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};
use super::int_arg;

const DIGITS: &[u8] = b"0123456789";
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Characters a random string may have.
const MAX_RANDOM_CHARS: i64 = 1 << 20;

/// `count` characters drawn from `alphabet`; none for a negative count.
fn random_string<'a>(count: &Value<'_>, alphabet: &[u8]) -> FnResult<'a> {
    let count = int_arg(count)?;
    if count > MAX_RANDOM_CHARS {
        return Err(format!(
            "{count} random characters, more than the limit of {MAX_RANDOM_CHARS}"
        ));
    }
    let mut rng = rand::rng();
    Ok(owned(
        (0..count.max(0))
            .filter_map(|_| alphabet.choose(&mut rng).map(|&b| char::from(b)))
            .collect(),
    ))
}

/// `randAlphaNum n`: `n` random letters and digits.
pub(in super::super) fn rand_alpha_num<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    random_string(&args[0], &[LETTERS, DIGITS].concat())
}

/// `randAlpha n`: `n` random ASCII letters.
pub(in super::super) fn rand_alpha<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    random_string(&args[0], LETTERS)
}

/// `randNumeric n`: `n` random digits.
pub(in super::super) fn rand_numeric<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    random_string(&args[0], DIGITS)
}

/// `randAscii n`: `n` random printable ASCII characters, space included.
pub(in super::super) fn rand_ascii<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let printable: Vec<u8> = (b' '..=b'~').collect();
    random_string(&args[0], &printable)
}

/// `randBytes n`: `n` random bytes in base64.
pub(in super::super) fn rand_bytes<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let count = int_arg(&args[0])?;
    if count > MAX_RANDOM_CHARS {
        return Err(format!(
            "{count} random bytes, more than the limit of {MAX_RANDOM_CHARS}"
        ));
    }
    let count = usize::try_from(count)
        .map_err(|_| "runtime error: makeslice: len out of range".to_owned())?;
    let mut bytes = vec![0; count];
    rand::rng().fill_bytes(&mut bytes);
    Ok(owned(STANDARD.encode(bytes)))
}

/// `randInt min max`: a random integer from `min` up to `max`, excluded.
pub(in super::super) fn rand_int<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (min, max) = (int_arg(&args[0])?, int_arg(&args[1])?);
    if max <= min {
        return Err("invalid argument to Intn".into());
    }
    Ok(Value::Int(rand::rng().random_range(min..max)))
}

/// `shuffle s`: the characters of `s` in random order.
pub(in super::super) fn shuffle<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let mut chars: Vec<char> = string_arg(&args[0])?.chars().collect();
    chars.shuffle(&mut rand::rng());
    Ok(owned(chars.into_iter().collect()))
}

/// `uuidv4`: a random version 4 UUID in lower-case hex.
pub(in super::super) fn uuidv4<'a>(_: &[Value<'a>]) -> FnResult<'a> {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = data_encoding::HEXLOWER.encode(&b);
    Ok(owned(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )))
}
