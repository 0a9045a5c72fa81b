//! Service-account tokens shaped like the kubelet's projected tokens, signed with the
//! test key pair in `tests/data/`.

use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// One hour: a service-account token lifetime that outlasts any test.
pub const HOUR: Duration = Duration::from_secs(3600);

/// The issuer every minted token carries, as in a default cluster.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Public half of the key that signs [`mint_sa_token`] tokens (PEM, SubjectPublicKeyInfo),
/// for `jwt_validation_pubkeys`.
pub const SA_PUBLIC_KEY_PEM: &str = include_str!("../data/sa-signing.pub");

const SA_PRIVATE_KEY_PEM: &str = include_str!("../data/sa-signing.key");
const UNTRUSTED_PRIVATE_KEY_PEM: &str = include_str!("../data/sa-untrusted.key");

/// What goes into a minted service-account token.
#[derive(Clone, Debug)]
pub struct SaClaims {
    /// The pod's namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
    /// The `aud` claim (a projected token's `audience`).
    pub audiences: Vec<String>,
    /// Time from now until `exp`.
    pub ttl: Duration,
    /// The pod the token is bound to.
    pub pod: String,
}

impl SaClaims {
    /// Claims for `system:serviceaccount:<namespace>:<service_account>` with one audience,
    /// bound to a pod named `app-0`.
    pub fn new(namespace: &str, service_account: &str, audience: &str, ttl: Duration) -> Self {
        Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            audiences: vec![audience.to_owned()],
            ttl,
            pod: "app-0".to_owned(),
        }
    }

    /// Signs these claims with the test key OpenBao is configured to trust.
    pub fn mint(&self) -> String {
        self.sign(SA_PRIVATE_KEY_PEM)
    }

    /// Signs these claims with a key nobody trusts: a forged token.
    pub fn mint_untrusted(&self) -> String {
        self.sign(UNTRUSTED_PRIVATE_KEY_PEM)
    }

    fn sign(&self, private_key_pem: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: format!(
                "system:serviceaccount:{}:{}",
                self.namespace, self.service_account
            ),
            aud: self.audiences.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
            jti: random_uuid(),
            kubernetes_io: KubernetesIo {
                namespace: self.namespace.clone(),
                pod: ObjectRef {
                    name: self.pod.clone(),
                    uid: random_uuid(),
                },
                serviceaccount: ObjectRef {
                    name: self.service_account.clone(),
                    uid: service_account_uid(&self.namespace, &self.service_account),
                },
            },
        };
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .expect("the committed test key is a valid RSA PEM key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
            .expect("RS256 signing with a valid key cannot fail")
    }
}

/// Mints an RS256 token for `system:serviceaccount:<namespace>:<service_account>` with
/// audience `audience`, valid for `ttl`, signed with the trusted test key.
pub fn mint_sa_token(
    namespace: &str,
    service_account: &str,
    audience: &str,
    ttl: Duration,
) -> String {
    SaClaims::new(namespace, service_account, audience, ttl).mint()
}

/// Like [`mint_sa_token`], but signed with a key OpenBao and the TokenReview stand-in do
/// not trust, so every login with it must fail.
pub fn mint_untrusted_sa_token(
    namespace: &str,
    service_account: &str,
    audience: &str,
    ttl: Duration,
) -> String {
    SaClaims::new(namespace, service_account, audience, ttl).mint_untrusted()
}

/// The claims of a projected service-account token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: Vec<String>,
    pub(crate) iat: u64,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    pub(crate) jti: String,
    #[serde(rename = "kubernetes.io")]
    pub(crate) kubernetes_io: KubernetesIo,
}

/// The `kubernetes.io` claim: where the token is bound.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KubernetesIo {
    pub(crate) namespace: String,
    pub(crate) pod: ObjectRef,
    pub(crate) serviceaccount: ObjectRef,
}

/// A name and uid pair inside the `kubernetes.io` claim.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ObjectRef {
    pub(crate) name: String,
    pub(crate) uid: String,
}

/// Checks `token`'s signature against the trusted test key and its expiry, as the
/// apiserver's TokenReview does; audiences are checked by the caller.
pub(crate) fn verify(token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
    let key = DecodingKey::from_rsa_pem(SA_PUBLIC_KEY_PEM.as_bytes())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.set_issuer(&[ISSUER]);
    Ok(jsonwebtoken::decode::<Claims>(token, &key, &validation)?.claims)
}

/// A stable uid per service account, as a cluster would keep one.
fn service_account_uid(namespace: &str, service_account: &str) -> String {
    let mut first = DefaultHasher::new();
    (namespace, service_account, 1u8).hash(&mut first);
    let mut second = DefaultHasher::new();
    (namespace, service_account, 2u8).hash(&mut second);
    uuid_from(first.finish(), second.finish())
}

fn random_uuid() -> String {
    let state = RandomState::new();
    uuid_from(state.hash_one(1u8), state.hash_one(2u8))
}

fn uuid_from(high: u64, low: u64) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}
