//! consul-template's `pkiCert` reuse: the certificate a template already
//! rendered into its destination serves again, instead of a new one being
//! issued on every start, while enough of its validity is left.
//!
//! The rule is consul-template's: the destination's PEM blocks are read in
//! order, a `... PRIVATE KEY` block is the key, a certificate with
//! `basicConstraints CA:true` the CA, any other certificate the leaf. The
//! leaf is good while 90% of its remaining validity is more than 10% of
//! its whole lifetime. What the destination holds is what the template sees:
//! a template that renders only `.Cert` gets an empty `.Key` on reuse, as in
//! consul-template.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value as Json;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::vault::Secret;

/// The certificate in `destination` as a PKI `issue` response, if the file
/// holds a leaf certificate still good at `now`. The response has the
/// fields `pkiCert` reads (`certificate`, `private_key`, `issuing_ca`) and
/// the leaf's `expiration`, so it is fetched anew like a fresh certificate.
pub fn reusable_certificate(destination: &Path, now: SystemTime) -> Option<Secret> {
    let bytes = std::fs::read(destination).ok()?;
    let now = i64::try_from(now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    reusable(&bytes, now)
}

fn reusable(bytes: &[u8], now: i64) -> Option<Secret> {
    let mut parts = Parts::default();
    for block in pem::parse_many(bytes).ok()? {
        if block.tag().ends_with("PRIVATE KEY") {
            parts.key = Some(encode(&block));
            continue;
        }
        // A block that is not a certificate leaves nothing to reuse.
        let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
        if cert.is_ca() {
            parts.ca = Some(encode(&block));
        } else {
            let validity = cert.validity();
            parts.leaf = Some((
                encode(&block),
                validity.not_before.timestamp(),
                validity.not_after.timestamp(),
            ));
        }
    }
    let (cert, not_before, not_after) = parts.leaf?;
    if !good_at(not_before, not_after, now) {
        return None;
    }
    let mut secret = Secret::default();
    let data = &mut secret.data.0;
    data.insert("certificate".to_owned(), Json::String(cert));
    for (field, pem) in [("private_key", parts.key), ("issuing_ca", parts.ca)] {
        if let Some(pem) = pem {
            data.insert(field.to_owned(), Json::String(pem));
        }
    }
    data.insert("expiration".to_owned(), Json::from(not_after));
    Some(secret)
}

/// The PEM parts found in a destination.
#[derive(Default)]
struct Parts {
    key: Option<String>,
    ca: Option<String>,
    /// The leaf's PEM and its validity, in Unix seconds.
    leaf: Option<(String, i64, i64)>,
}

/// Whether a certificate valid from `not_before` to `not_after` is still
/// good at `now`: 90% of what is left outlasts 10% of its lifetime.
fn good_at(not_before: i64, not_after: i64, now: i64) -> bool {
    if not_after <= now {
        return false;
    }
    let lifetime = not_after - not_before;
    let left = not_after - now;
    left * 9 / 10 > lifetime / 10
}

/// A block as Go's `pem.EncodeToMemory` writes it.
fn encode(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use time::{Duration, OffsetDateTime};

    use super::*;

    /// A CA, and a leaf it signed valid from `start` for `hours`, as PEM:
    /// (leaf, key, ca).
    fn mk_chain(start: OffsetDateTime, hours: i64) -> (String, String, String) {
        let ca_key = KeyPair::generate().expect("a key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("a CA");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).expect("params");
        params.not_before = start;
        params.not_after = start + Duration::hours(hours);
        let leaf = params.signed_by(&key, &issuer).expect("a leaf");
        (leaf.pem(), key.serialize_pem(), ca.pem())
    }

    #[test]
    fn reuses_a_certificate_with_enough_validity_left() {
        let start = OffsetDateTime::now_utc() - Duration::hours(1);
        let (leaf, key, ca) = mk_chain(start, 10);
        let file = format!("{ca}{leaf}{key}");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let secret = reusable(file.as_bytes(), now).expect("reused");
        let field = |k: &str| {
            secret
                .data
                .get(k)
                .and_then(Json::as_str)
                .unwrap_or_default()
        };
        assert_eq!(field("certificate"), leaf.replace("\r\n", "\n"));
        assert_eq!(field("private_key"), key.replace("\r\n", "\n"));
        assert_eq!(field("issuing_ca"), ca.replace("\r\n", "\n"));
        assert_eq!(
            secret.data.get("expiration").and_then(Json::as_i64),
            Some((start + Duration::hours(10)).unix_timestamp())
        );
    }

    #[test]
    fn issues_anew_near_expiry_or_without_a_leaf() {
        let start = OffsetDateTime::now_utc() - Duration::hours(9);
        let (leaf, key, ca) = mk_chain(start, 10);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        // 1 h of 10 h left: 0.9 h is less than 10% of the lifetime.
        assert!(reusable(format!("{leaf}{key}").as_bytes(), now).is_none());
        assert!(reusable(format!("{ca}{key}").as_bytes(), now).is_none());
        assert!(reusable(b"", now).is_none());
        assert!(
            reusable(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                now
            )
            .is_none()
        );
    }

    #[test]
    fn is_good_while_ninety_percent_of_what_is_left_outlasts_a_tenth_of_the_lifetime() {
        // Lifetime 1000 s: good while 9 * left / 10 > 100 (in whole
        // seconds, as Go computes it), so while at least 113 s are left.
        assert!(good_at(0, 1000, 887));
        assert!(!good_at(0, 1000, 888));
        assert!(!good_at(0, 1000, 1000));
        assert!(!good_at(0, 1000, 2000));
    }
}
