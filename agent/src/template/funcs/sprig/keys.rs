//! Sprig's private keys: made by `genPrivateKey` and the certificate
//! generators, read from PEM by the `*WithKey` functions, and written in
//! the PEM form sprig gives each key type (PKCS #1 for RSA, SEC 1 for
//! ECDSA, PKCS #8 for Ed25519, OpenSSL's ASN.1 sequence for DSA), whatever
//! form they were read in.

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence, Tag};
use getrandom::SysRng;
use rcgen::{KeyPair, SignatureAlgorithm};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{AlgorithmIdentifierRef, EncodePrivateKey, PrivateKeyInfoRef};
use rustls::pki_types::PrivatePkcs8KeyDer;
use sec1::{EcParameters, EcPrivateKey};
use zeroize::Zeroizing;

use super::super::super::value::Value;
use super::super::args::{FnResult, owned, string_arg};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The RSA key size of `genPrivateKey "rsa"`.
const GENERATED_RSA_BITS: usize = 4096;

/// A private key sprig holds. Its bytes are key material: they are
/// zeroized on drop and never printed.
pub(super) enum PrivateKey {
    /// An RSA, ECDSA or Ed25519 key, which can sign certificates, as
    /// PKCS #8.
    Signing {
        /// The key's type.
        algorithm: Algorithm,
        /// The PKCS #8 `PrivateKeyInfo`.
        pkcs8: Zeroizing<Vec<u8>>,
    },
    /// A DSA key in OpenSSL's ASN.1 form, which Go's `x509` cannot use in a
    /// certificate.
    Dsa(Zeroizing<Vec<u8>>),
}

/// The type of a key that can sign certificates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    Rsa,
    /// ECDSA on the curve named by the OID.
    Ecdsa(ObjectIdentifier),
    Ed25519,
}

/// OpenSSL's DSA private key, as sprig writes it.
#[derive(Sequence)]
struct DsaPrivateKey<'a> {
    version: u8,
    p: UintRef<'a>,
    q: UintRef<'a>,
    g: UintRef<'a>,
    y: UintRef<'a>,
    x: UintRef<'a>,
}

/// The message of a key Go's `x509.CreateCertificate` cannot sign with.
pub(super) const DSA_CANNOT_SIGN: &str =
    "x509: certificate private key does not implement crypto.Signer";

/// The message of a certificate for a public key Go's `x509` cannot write.
pub(super) const DSA_UNSUPPORTED_PUBLIC_KEY: &str =
    "x509: unsupported public key type: *dsa.PublicKey";

/// `genPrivateKey type`: a new private key in PEM, of type `rsa` (4096
/// bits, also for an empty type), `dsa` (L = 2048, N = 256), `ecdsa`
/// (P-256) or `ed25519`. As in sprig, failures are the value, not errors.
pub(in super::super) fn gen_private_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let key_type = string_arg(&args[0])?;
    let generated = match key_type {
        "" | "rsa" => PrivateKey::generate_rsa(GENERATED_RSA_BITS),
        "dsa" => PrivateKey::generate_dsa(),
        "ecdsa" => PrivateKey::generate_ecdsa(),
        "ed25519" => PrivateKey::generate_ed25519(),
        other => return Ok(owned(format!("Unknown type {other}"))),
    };
    Ok(owned(match generated.and_then(|key| key.to_pem()) {
        Ok(pem) => pem,
        Err(err) => format!("failed to generate private key: {err}"),
    }))
}

impl PrivateKey {
    /// A new RSA key of `bits` bits.
    pub(super) fn generate_rsa(bits: usize) -> Result<Self, String> {
        let key = rsa::PrivateKey::new(&mut SysRng, bits).map_err(|e| e.to_string())?;
        let pkcs8 = key.to_pkcs8_der().map_err(|e| e.to_string())?;
        Ok(Self::Signing {
            algorithm: Algorithm::Rsa,
            pkcs8: Zeroizing::new(pkcs8.as_bytes().to_vec()),
        })
    }

    /// A new ECDSA key on P-256.
    fn generate_ecdsa() -> Result<Self, String> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| "cannot generate an ECDSA key".to_owned())?;
        Ok(Self::Signing {
            algorithm: Algorithm::Ecdsa(P256),
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
        })
    }

    /// A new Ed25519 key.
    fn generate_ed25519() -> Result<Self, String> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|e| e.to_string())?;
        Ok(Self::Signing {
            algorithm: Algorithm::Ed25519,
            pkcs8: ed25519_pkcs8(seed.as_slice())?,
        })
    }

    /// A new DSA key with new L = 2048, N = 256 parameters, as sprig makes.
    fn generate_dsa() -> Result<Self, String> {
        let mut rng = SysRng;
        let components = dsa::Components::try_generate_from_rng_with_key_size(
            &mut rng,
            dsa::KeySize::DSA_2048_256,
        )
        .map_err(|e| e.to_string())?;
        let key = dsa::SigningKey::try_generate_from_rng_with_components(&mut rng, components)
            .map_err(|e| e.to_string())?;
        let public = key.verifying_key();
        let components = public.components();
        let (p, q, g) = (
            components.p().to_be_bytes(),
            components.q().to_be_bytes(),
            components.g().to_be_bytes(),
        );
        let (y, x) = (
            public.y().to_be_bytes(),
            Zeroizing::new(key.x().to_be_bytes()),
        );
        let der = DsaPrivateKey {
            version: 0,
            p: UintRef::new(&p).map_err(|e| e.to_string())?,
            q: UintRef::new(&q).map_err(|e| e.to_string())?,
            g: UintRef::new(&g).map_err(|e| e.to_string())?,
            y: UintRef::new(&y).map_err(|e| e.to_string())?,
            x: UintRef::new(&x).map_err(|e| e.to_string())?,
        }
        .to_der()
        .map_err(|e| e.to_string())?;
        Ok(Self::Dsa(Zeroizing::new(der)))
    }

    /// Sprig's `parsePrivateKeyPEM`: the key in the first PEM block of
    /// `text`, which is PKCS #8 (`PRIVATE KEY`), PKCS #1 (`RSA PRIVATE
    /// KEY`), SEC 1 (`EC PRIVATE KEY`) or OpenSSL's DSA form (`DSA PRIVATE
    /// KEY`).
    pub(super) fn from_pem(text: &str) -> Result<Self, String> {
        let block = pem::parse(text).map_err(|_| "no PEM data in input".to_owned())?;
        let der = block.contents();
        match block.tag() {
            "PRIVATE KEY" => {
                Self::from_pkcs8(der).map_err(|e| format!("decoding PEM as PKCS#8: {e}"))
            }
            tag if !tag.ends_with(" PRIVATE KEY") => {
                Err(format!("no private key data in PEM block of type {tag}"))
            }
            "RSA PRIVATE KEY" => {
                rsa::PrivateKey::from_pkcs1_der(der)
                    .map_err(|e| format!("parsing RSA private key from PEM: {e}"))?;
                Ok(Self::Signing {
                    algorithm: Algorithm::Rsa,
                    pkcs8: wrap_pkcs8(RSA_ENCRYPTION, Some(AnyRef::NULL), der)?,
                })
            }
            "EC PRIVATE KEY" => {
                let key = EcPrivateKey::from_der(der)
                    .map_err(|e| format!("parsing EC private key from PEM: {e}"))?;
                let Some(EcParameters::NamedCurve(curve)) = key.parameters else {
                    return Err(
                        "parsing EC private key from PEM: x509: unknown elliptic curve".into(),
                    );
                };
                Ok(Self::Signing {
                    algorithm: Algorithm::Ecdsa(curve),
                    pkcs8: wrap_pkcs8(
                        EC_PUBLIC_KEY,
                        Some(
                            AnyRef::new(Tag::ObjectIdentifier, curve.as_bytes())
                                .map_err(|e| e.to_string())?,
                        ),
                        der,
                    )?,
                })
            }
            "DSA PRIVATE KEY" => {
                DsaPrivateKey::from_der(der)
                    .map_err(|e| format!("parsing DSA private key from PEM: {e}"))?;
                Ok(Self::Dsa(Zeroizing::new(der.to_vec())))
            }
            tag => Err(format!("invalid private key type {tag}")),
        }
    }

    /// A key from PKCS #8: RSA, ECDSA or Ed25519, as Go reads them.
    fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let info = PrivateKeyInfoRef::from_der(der).map_err(|e| e.to_string())?;
        let algorithm = match info.algorithm.oid {
            RSA_ENCRYPTION => Algorithm::Rsa,
            EC_PUBLIC_KEY => Algorithm::Ecdsa(
                info.algorithm
                    .parameters_oid()
                    .map_err(|_| "x509: unknown elliptic curve".to_owned())?,
            ),
            ED25519 => {
                // Go keeps only the seed: write it again as Go does.
                let seed = <&OctetStringRef>::from_der(info.private_key.as_bytes())
                    .map_err(|e| e.to_string())?;
                return Ok(Self::Signing {
                    algorithm: Algorithm::Ed25519,
                    pkcs8: ed25519_pkcs8(seed.as_bytes())?,
                });
            }
            other => {
                return Err(format!(
                    "x509: PKCS#8 wrapping contained private key with unknown algorithm: {other}"
                ));
            }
        };
        Ok(Self::Signing {
            algorithm,
            pkcs8: Zeroizing::new(der.to_vec()),
        })
    }

    /// Sprig's `pemBlockForKey` as PEM text.
    pub(super) fn to_pem(&self) -> Result<String, String> {
        let (tag, der) = match self {
            Self::Signing {
                algorithm: Algorithm::Ed25519,
                pkcs8,
            } => ("PRIVATE KEY", pkcs8.clone()),
            Self::Signing {
                algorithm: Algorithm::Rsa,
                pkcs8,
            } => {
                let info = PrivateKeyInfoRef::from_der(pkcs8).map_err(|e| e.to_string())?;
                (
                    "RSA PRIVATE KEY",
                    Zeroizing::new(info.private_key.as_bytes().to_vec()),
                )
            }
            Self::Signing {
                algorithm: Algorithm::Ecdsa(curve),
                pkcs8,
            } => {
                let info = PrivateKeyInfoRef::from_der(pkcs8).map_err(|e| e.to_string())?;
                let mut key = EcPrivateKey::from_der(info.private_key.as_bytes())
                    .map_err(|e| e.to_string())?;
                // Go's SEC 1 form names the curve, which PKCS #8 keeps
                // outside the key.
                key.parameters = Some(EcParameters::NamedCurve(*curve));
                (
                    "EC PRIVATE KEY",
                    Zeroizing::new(key.to_der().map_err(|e| e.to_string())?),
                )
            }
            Self::Dsa(der) => ("DSA PRIVATE KEY", der.clone()),
        };
        Ok(pem_text(tag, &der))
    }

    /// The key as rcgen signs with it, with the signature algorithm Go
    /// picks for its type.
    pub(super) fn key_pair(&self) -> Result<KeyPair, String> {
        let Self::Signing { algorithm, pkcs8 } = self else {
            return Err(DSA_CANNOT_SIGN.to_owned());
        };
        let signature: &'static SignatureAlgorithm = match algorithm {
            Algorithm::Rsa => &rcgen::PKCS_RSA_SHA256,
            Algorithm::Ecdsa(P256) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::Ecdsa(P384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::Ecdsa(curve) => {
                return Err(format!("x509: unsupported elliptic curve {curve}"));
            }
            Algorithm::Ed25519 => &rcgen::PKCS_ED25519,
        };
        let der = PrivatePkcs8KeyDer::from(pkcs8.as_slice());
        KeyPair::from_pkcs8_der_and_sign_algo(&der, signature).map_err(|e| e.to_string())
    }

    /// Whether this is a DSA key.
    pub(super) fn is_dsa(&self) -> bool {
        matches!(self, Self::Dsa(_))
    }
}

/// Go's PKCS #8 form of an Ed25519 key: version 1, the seed, no public key.
fn ed25519_pkcs8(seed: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let inner = Zeroizing::new(
        OctetStringRef::new(seed)
            .and_then(|s| s.to_der())
            .map_err(|e| e.to_string())?,
    );
    wrap_pkcs8(ED25519, None, &inner)
}

/// A PKCS #8 `PrivateKeyInfo` holding `key` of algorithm `oid`.
fn wrap_pkcs8(
    oid: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let private_key = OctetStringRef::new(key).map_err(|e| e.to_string())?;
    let info = PrivateKeyInfoRef::new(AlgorithmIdentifierRef { oid, parameters }, private_key);
    Ok(Zeroizing::new(info.to_der().map_err(|e| e.to_string())?))
}

/// Go's `pem.EncodeToMemory`: base64 in lines of 64, each line ending in
/// `\n`.
pub(super) fn pem_text(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use rsa::traits::PublicKeyParts;

    use super::*;

    fn generated(key_type: &'static str) -> pem::Pem {
        match gen_private_key(&[Value::Str(key_type)]) {
            Ok(Value::String(text)) => pem::parse(&*text).expect("PEM"),
            _ => panic!("no {key_type} key"),
        }
    }

    #[test]
    fn rsa_keys_are_pkcs1_of_4096_bits() {
        let block = generated("rsa");
        assert_eq!(block.tag(), "RSA PRIVATE KEY");
        let key = rsa::PrivateKey::from_pkcs1_der(block.contents()).expect("PKCS #1");
        assert_eq!(key.size() * 8, 4096);
    }

    #[test]
    fn ecdsa_keys_are_sec1_on_p256_naming_the_curve() {
        let block = generated("ecdsa");
        assert_eq!(block.tag(), "EC PRIVATE KEY");
        let key = EcPrivateKey::from_der(block.contents()).expect("SEC 1");
        assert_eq!(key.parameters, Some(EcParameters::NamedCurve(P256)));
        assert_eq!(key.private_key.len(), 32);
        assert_eq!(key.public_key.map(<[u8]>::len), Some(65));
    }

    #[test]
    fn ed25519_keys_are_pkcs8_with_the_seed_alone() {
        let block = generated("ed25519");
        assert_eq!(block.tag(), "PRIVATE KEY");
        let info = PrivateKeyInfoRef::from_der(block.contents()).expect("PKCS #8");
        assert_eq!(info.algorithm.oid, ED25519);
        assert!(info.public_key.is_none());
        assert_eq!(block.contents().len(), 48);
    }

    #[test]
    fn dsa_keys_have_l2048_n256_parameters() {
        let block = generated("dsa");
        assert_eq!(block.tag(), "DSA PRIVATE KEY");
        let key = DsaPrivateKey::from_der(block.contents()).expect("DSA sequence");
        assert_eq!(key.version, 0);
        assert_eq!(key.p.as_bytes().len(), 256);
        assert_eq!(key.q.as_bytes().len(), 32);
        let uint = |u: &UintRef<'_>| crypto_uint(u.as_bytes());
        let components = dsa::Components::from_components(uint(&key.p), uint(&key.q), uint(&key.g))
            .expect("valid parameters");
        let public = dsa::VerifyingKey::from_components(components, uint(&key.y))
            .expect("a valid public key");
        assert!(
            dsa::SigningKey::from_components(public, uint(&key.x)).is_ok(),
            "a valid private key"
        );
    }

    fn crypto_uint(bytes: &[u8]) -> dsa::BoxedUint {
        dsa::BoxedUint::from_be_slice_vartime(bytes)
    }

    #[test]
    fn an_unknown_type_is_the_value() {
        assert!(matches!(
            gen_private_key(&[Value::Str("rsa2")]),
            Ok(Value::String(s)) if &*s == "Unknown type rsa2"
        ));
    }

    #[test]
    fn keys_read_as_pkcs8_are_written_in_sprigs_form() {
        let ring_pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .expect("a key");
        let read =
            PrivateKey::from_pem(&pem_text("PRIVATE KEY", ring_pkcs8.as_ref())).expect("PKCS #8");
        let sec1 = read.to_pem().expect("SEC 1");
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
        let again = PrivateKey::from_pem(&sec1).expect("SEC 1");
        assert_eq!(again.to_pem().expect("SEC 1"), sec1);
        assert!(again.key_pair().is_ok());
    }

    #[test]
    fn dsa_keys_cannot_sign() {
        let dsa = generated("dsa");
        let key = PrivateKey::from_pem(&pem_text(dsa.tag(), dsa.contents())).expect("DSA");
        assert!(key.is_dsa());
        assert_eq!(key.key_pair().err().as_deref(), Some(DSA_CANNOT_SIGN));
    }
}
