//! The file sinks of `auto_auth`: what each one holds and writing it.
//!
//! A sink holds the token itself, or what Vault Agent writes in its place:
//! - with `wrap_ttl`, the token response-wrapped by `sys/wrapping/wrap`: the
//!   `wrap_info` JSON, whose single-use token unwraps to the real one. With
//!   `wrap_ttl` on the auth method instead, Vault wraps the login itself,
//!   and the one sink holds that `wrap_info`;
//! - with `dh_type = "curve25519"`, Vault's encrypted envelope
//!   (`{"curve25519_public_key", "nonce", "encrypted_payload"}`, each in
//!   base64) for the holder of the X25519 key in `dh_path`. The key of
//!   AES-256-GCM is the X25519 shared secret or, with `derive_key`, HKDF-SHA256
//!   of it with the lower of the two public keys as salt and the other as
//!   info; the nonce is random and `aad` is the additional data.
//!
//! Both together wrap first and encrypt the wrap info. Each is written as
//! Go's JSON encoder writes it, with a closing newline. The cryptography is
//! ring's, the agent's one crypto provider. On purpose unlike Vault Agent,
//! which keeps one key pair for its whole life: every write uses a new one,
//! because ring's X25519 keys serve a single agreement, and so one exposed
//! key opens one token. A reader takes the public key from each envelope,
//! as Vault's documentation says to, and sees no difference.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::{aead, agreement, hkdf};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::config::{self, SinkEncryption};
use crate::vault::{self, Client, Token, WrapInfo};
use crate::write;

/// Why a sink was not written. Names the sink's file, never the token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] write::Error),
    /// Vault did not wrap the token.
    #[error("cannot wrap the token for sink {path}: {source}")]
    Wrap {
        /// The sink's file.
        path: PathBuf,
        /// Vault's answer.
        source: Box<vault::Error>,
    },
    /// The token could not be encrypted for the key in `dh_path`.
    #[error("cannot encrypt the token for sink {path}: {reason}")]
    Encrypt {
        /// The sink's file.
        path: PathBuf,
        /// What went wrong, naming `dh_path` where it is the cause.
        reason: String,
    },
}

/// One `sink "file"` stanza and the reader's public key once read: Vault
/// Agent reads `dh_path` at the first write and keeps the key.
#[derive(Debug)]
pub struct FileSink {
    config: config::Sink,
    reader_key: Mutex<Option<[u8; 32]>>,
}

impl FileSink {
    /// The sink of a `sink` stanza.
    pub fn new(config: config::Sink) -> Self {
        Self {
            config,
            reader_key: Mutex::new(None),
        }
    }

    /// Writes `token`, wrapped through `client` and encrypted as the stanza
    /// says, replacing the file at once.
    pub async fn write(&self, client: &Client, token: &Token) -> Result<(), Error> {
        let contents = self.contents(client, token).await?;
        self.replace(contents)
    }

    /// Writes the `wrap_info` of a login that Vault wrapped (the method's
    /// `wrap_ttl`), encrypted as the stanza says.
    pub fn write_wrapped(&self, info: &WrapInfo) -> Result<(), Error> {
        let contents = self.sealed(go_json(info))?;
        self.replace(contents)
    }

    fn replace(&self, contents: Zeroizing<Vec<u8>>) -> Result<(), Error> {
        write::replace(&self.config.path, &contents, self.config.mode, false)?;
        Ok(())
    }

    async fn contents(&self, client: &Client, token: &Token) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut contents = Zeroizing::new(token.expose_secret().as_bytes().to_vec());
        if let Some(ttl) = self.config.wrap_ttl {
            let data = Map::from_iter([(
                "token".to_owned(),
                Value::String(token.expose_secret().to_owned()),
            )]);
            let info = client
                .with_token(token.clone())
                .wrap(data, ttl)
                .await
                .map_err(|source| Error::Wrap {
                    path: self.config.path.clone(),
                    source: Box::new(source),
                })?;
            contents = go_json(&info);
        }
        self.sealed(contents)
    }

    /// `contents` encrypted for the reader when the stanza sets `dh_type`,
    /// else as it is.
    fn sealed(&self, contents: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, Error> {
        let Some(encryption) = &self.config.encryption else {
            return Ok(contents);
        };
        let envelope = self
            .reader_key(&encryption.dh_path)
            .and_then(|reader| encrypt(&contents, &reader, encryption))
            .map_err(|reason| Error::Encrypt {
                path: self.config.path.clone(),
                reason,
            })?;
        Ok(go_json(&envelope))
    }

    /// The reader's public key: read from `dh_path` once, then kept.
    fn reader_key(&self, dh_path: &Path) -> Result<[u8; 32], String> {
        let mut kept = self
            .reader_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = *kept {
            return Ok(key);
        }
        let key = read_public_key(dh_path)?;
        *kept = Some(key);
        Ok(key)
    }
}

/// Vault's `{"curve25519_public_key": "<base64>"}` in `path`.
fn read_public_key(path: &Path) -> Result<[u8; 32], String> {
    #[derive(Deserialize)]
    struct PublicKeyInfo {
        #[serde(default)]
        curve25519_public_key: String,
    }
    let shown = path.display();
    let text = std::fs::read(path).map_err(|err| format!("cannot read dh_path {shown}: {err}"))?;
    let info: PublicKeyInfo = serde_json::from_slice(&text).map_err(|err| {
        format!(
            "dh_path {shown} is not {{\"curve25519_public_key\": \"<base64>\"}} (line {}, column {})",
            err.line(),
            err.column()
        )
    })?;
    let key = STANDARD
        .decode(&info.curve25519_public_key)
        .map_err(|_| format!("the curve25519_public_key in dh_path {shown} is not base64"))?;
    match <[u8; 32]>::try_from(key) {
        Ok(key) => Ok(key),
        Err(key) if key.is_empty() => Err(format!("dh_path {shown} has no curve25519_public_key")),
        Err(key) => Err(format!(
            "the curve25519_public_key in dh_path {shown} has {} bytes, not 32",
            key.len()
        )),
    }
}

/// Vault's encrypted envelope, in its field order.
#[derive(Serialize)]
struct Envelope {
    curve25519_public_key: String,
    nonce: String,
    encrypted_payload: String,
}

/// `plaintext` encrypted for the holder of `reader`'s private key.
fn encrypt(
    plaintext: &[u8],
    reader: &[u8; 32],
    encryption: &SinkEncryption,
) -> Result<Envelope, String> {
    let rng = SystemRandom::new();
    fn failed(what: &'static str) -> impl Fn(ring::error::Unspecified) -> String {
        move |_| format!("{what} failed")
    }
    let private = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng)
        .map_err(failed("generating an X25519 key"))?;
    let public = private
        .compute_public_key()
        .map_err(failed("computing the X25519 public key"))?;
    let ours: &[u8] = public.as_ref();
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, reader);
    let key = agreement::agree_ephemeral(private, &peer, |secret| {
        if encryption.derive_key {
            derive_key(secret, ours, reader)
        } else {
            let mut key = Zeroizing::new([0; 32]);
            key.copy_from_slice(secret);
            Ok(key)
        }
    })
    .map_err(|_| "the curve25519_public_key in dh_path is not a usable X25519 key".to_owned())??;
    let key = aead::UnboundKey::new(&aead::AES_256_GCM, key.as_ref())
        .map_err(failed("setting up AES-256-GCM"))?;
    let mut nonce = [0; aead::NONCE_LEN];
    rng.fill(&mut nonce).map_err(failed("drawing a nonce"))?;
    let mut sealed = plaintext.to_vec();
    aead::LessSafeKey::new(key)
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(encryption.aad.as_bytes()),
            &mut sealed,
        )
        .map_err(failed("encrypting"))?;
    Ok(Envelope {
        curve25519_public_key: STANDARD.encode(ours),
        nonce: STANDARD.encode(nonce),
        encrypted_payload: STANDARD.encode(sealed),
    })
}

/// Vault's `DeriveSharedKey`: HKDF-SHA256 of `secret`, salted with the lower
/// of the two public keys, the higher one as info, so both sides agree.
fn derive_key(secret: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let (salt, info) = match ours.cmp(theirs) {
        std::cmp::Ordering::Less => (ours, theirs),
        std::cmp::Ordering::Greater => (theirs, ours),
        std::cmp::Ordering::Equal => {
            return Err("dh_path holds the agent's own public key".to_owned());
        }
    };
    let mut key = Zeroizing::new([0; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(secret)
        .expand(&[info], Len32)
        .and_then(|okm| okm.fill(key.as_mut()))
        .map_err(|_| "deriving the key with HKDF failed".to_owned())?;
    Ok(key)
}

/// `value` as Go's `json.Encoder` writes it: compact, then a newline.
fn go_json(value: &impl Serialize) -> Zeroizing<Vec<u8>> {
    // Plain structs of strings and numbers always serialise.
    let mut out = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader's side of the exchange, as Vault's `dhutil` decrypts.
    fn decrypt(
        envelope: &[u8],
        reader: agreement::EphemeralPrivateKey,
        derive: bool,
        aad: &str,
    ) -> Vec<u8> {
        let envelope: Value = serde_json::from_slice(envelope).expect("envelope is JSON");
        let field = |name: &str| {
            STANDARD
                .decode(envelope[name].as_str().expect(name))
                .expect("base64")
        };
        let theirs = field("curve25519_public_key");
        let ours = reader.compute_public_key().expect("public key");
        let ours = ours.as_ref().to_vec();
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, theirs.clone());
        let key = agreement::agree_ephemeral(reader, &peer, |secret| {
            if derive {
                derive_key(secret, &ours, &theirs).expect("derives")
            } else {
                let mut key = Zeroizing::new([0; 32]);
                key.copy_from_slice(secret);
                key
            }
        })
        .expect("agrees");
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_256_GCM, key.as_ref()).expect("key"),
        );
        let nonce: [u8; 12] = field("nonce").try_into().expect("12-byte nonce");
        let mut payload = field("encrypted_payload");
        let plain = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad.as_bytes()),
                &mut payload,
            )
            .expect("opens");
        plain.to_vec()
    }

    fn reader() -> (agreement::EphemeralPrivateKey, [u8; 32]) {
        let private =
            agreement::EphemeralPrivateKey::generate(&agreement::X25519, &SystemRandom::new())
                .expect("key");
        let public = private.compute_public_key().expect("public key");
        let public = <[u8; 32]>::try_from(public.as_ref()).expect("32 bytes");
        (private, public)
    }

    #[test]
    fn encrypts_for_the_reader_with_and_without_derived_keys() {
        for derive_key in [false, true] {
            let (private, public) = reader();
            let encryption = SinkEncryption {
                dh_path: PathBuf::from("/unused"),
                derive_key,
                aad: "pod-a".to_owned(),
            };
            let envelope = go_json(&encrypt(b"s.token", &public, &encryption).expect("encrypts"));
            let text = std::str::from_utf8(&envelope).expect("utf-8");
            assert!(
                text.starts_with("{\"curve25519_public_key\":\"") && text.ends_with("\"}\n"),
                "{text}"
            );
            assert!(!text.contains("s.token"), "{text}");
            assert_eq!(decrypt(&envelope, private, derive_key, "pod-a"), b"s.token");
        }
    }

    #[test]
    fn a_wrapped_login_is_written_encrypted_when_the_sink_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (private, public) = reader();
        let dh_path = dir.path().join("dh.json");
        std::fs::write(
            &dh_path,
            format!(
                r#"{{"curve25519_public_key": "{}"}}"#,
                STANDARD.encode(public)
            ),
        )
        .expect("write");
        let path = dir.path().join("sink");
        let sink = FileSink::new(config::Sink {
            path: path.clone(),
            mode: 0o600,
            wrap_ttl: None,
            encryption: Some(SinkEncryption {
                dh_path,
                derive_key: true,
                aad: "pod-a".to_owned(),
            }),
        });
        let info = WrapInfo {
            token: Zeroizing::new("s.wrapping".to_owned()),
            accessor: "acc".to_owned(),
            ttl: 300,
            creation_time: "2026-12-03T17:00:00.123456789Z".to_owned(),
            creation_path: "auth/approle/login".to_owned(),
            wrapped_accessor: "wrapped".to_owned(),
        };
        sink.write_wrapped(&info).expect("written");
        let envelope = std::fs::read(&path).expect("read");
        assert!(!String::from_utf8_lossy(&envelope).contains("s.wrapping"));
        assert_eq!(
            String::from_utf8(decrypt(&envelope, private, true, "pod-a")).expect("utf-8"),
            "{\"token\":\"s.wrapping\",\"accessor\":\"acc\",\"ttl\":300,\"creation_time\":\"2026-12-03T17:00:00.123456789Z\",\"creation_path\":\"auth/approle/login\",\"wrapped_accessor\":\"wrapped\"}\n"
        );
    }

    #[test]
    fn reads_the_public_key_file_and_names_it_when_it_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dh.json");
        let shown = path.display().to_string();
        let key = [7u8; 32];
        let write = |text: String| std::fs::write(&path, text).expect("write");
        write(format!(
            r#"{{"curve25519_public_key": "{}", "other": 1}}"#,
            STANDARD.encode(key)
        ));
        assert_eq!(read_public_key(&path), Ok(key));
        for (text, message) in [
            (
                format!(
                    r#"{{"curve25519_public_key": "{}"}}"#,
                    STANDARD.encode([1u8; 16])
                ),
                format!("the curve25519_public_key in dh_path {shown} has 16 bytes, not 32"),
            ),
            (
                "{}".to_owned(),
                format!("dh_path {shown} has no curve25519_public_key"),
            ),
            (
                r#"{"curve25519_public_key": "*"}"#.to_owned(),
                format!("the curve25519_public_key in dh_path {shown} is not base64"),
            ),
            (
                "nope".to_owned(),
                format!(
                    "dh_path {shown} is not {{\"curve25519_public_key\": \"<base64>\"}} (line 1, column 2)"
                ),
            ),
        ] {
            write(text);
            assert_eq!(read_public_key(&path), Err(message));
        }
        std::fs::remove_file(&path).expect("remove");
        let err = read_public_key(&path).expect_err("missing");
        assert!(
            err.starts_with(&format!("cannot read dh_path {shown}: ")),
            "{err}"
        );
    }
}
