//! `--tls-auto`: a self-managed CA and serving certificate.
//!
//! The CA and certificate live in one Secret shared by every replica. The Secret
//! is created with a plain create, so when replicas start together exactly one
//! create wins and the others get 409 Conflict and read the winner's Secret:
//! all replicas serve certificates of one CA. Renewals replace the Secret at the
//! resourceVersion that was read, with the same conflict rule.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use keyhole_agent::backoff::Policy;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use time::OffsetDateTime;
use tracing::{info, warn};
use x509_parser::extensions::GeneralName;

use super::CertStore;
use crate::metrics::TlsMetrics;

/// Lifetime of a generated CA.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of a generated serving certificate.
pub const CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A serving certificate is reissued when it has less than this left.
pub const CERT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The CA is replaced when it has less than a certificate lifetime left, so no
/// certificate ever outlives its CA.
pub const CA_RENEW_BEFORE: Duration = CERT_LIFETIME;
/// How often the Secret is re-read, so every replica picks up a renewal; each
/// wait is spread by [`RECHECK_JITTER`].
pub const RECHECK: Duration = Duration::from_secs(10 * 60);
/// The fraction of [`RECHECK`] a wait may be shortened or lengthened by, so
/// replicas started together do not call the API server in lockstep.
pub const RECHECK_JITTER: f64 = 0.2;
/// The waits before trying a failed refresh again: from ten seconds, so a
/// brief API-server error leaves the CA bundle unpatched for seconds rather
/// than a whole [`RECHECK`], up to [`RECHECK`] while the failure lasts.
pub const RETRY: Policy = Policy::new(Duration::from_secs(10), RECHECK);

/// Accepted clock skew between the injector and the API server.
const BACKDATE: Duration = Duration::from_secs(3600);
const FIELD_MANAGER: &str = "keyhole-injector";
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";

/// Errors of auto-TLS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action}: {error}")]
    Kube {
        /// What was being done, naming the object.
        action: String,
        /// The client's error, with the HTTP status for API errors.
        error: kube::Error,
    },
    /// A key or certificate could not be generated.
    #[error("cannot generate the {what}: {error}")]
    Generate {
        /// The CA or the serving certificate.
        what: &'static str,
        /// Why.
        error: rcgen::Error,
    },
    /// The Secret's certificate cannot be served.
    #[error(transparent)]
    Tls(#[from] super::Error),
}

/// Result of auto-TLS operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where auto-TLS keeps its CA and which webhooks trust it.
#[derive(Clone)]
pub struct AutoTls {
    /// Client of the cluster the injector runs in.
    pub client: Client,
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub secret: String,
    /// Name of the MutatingWebhookConfiguration to patch.
    pub webhook_config: String,
    /// DNS names of the serving certificate.
    pub hosts: Vec<String>,
}

impl fmt::Debug for AutoTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoTls")
            .field("namespace", &self.namespace)
            .field("secret", &self.secret)
            .field("webhook_config", &self.webhook_config)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// A CA and a serving certificate, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The signing CA first, then an older CA still trusted during a CA change.
    pub ca_cert: String,
    /// The signing CA's private key.
    pub ca_key: String,
    /// The serving certificate.
    pub cert: String,
    /// The serving certificate's private key.
    pub key: String,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle").finish_non_exhaustive()
    }
}

/// What a bundle needs at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing: the certificate is valid for long enough and names the hosts.
    None,
    /// A new serving certificate from the same CA.
    Cert,
    /// A new CA and a new serving certificate.
    Ca,
}

impl AutoTls {
    /// Makes sure the Secret holds a current CA and certificate, serves the
    /// certificate and patches the CA into the webhooks. Returns whether the
    /// served certificate changed.
    pub async fn refresh(&self, store: &CertStore) -> Result<bool> {
        let bundle = self.ensure_secret(OffsetDateTime::now_utc()).await?;
        let key = super::certified_key(
            bundle.cert.as_bytes(),
            &self.secret_key_name(TLS_CERT),
            bundle.key.as_bytes(),
            &self.secret_key_name(TLS_KEY),
        )?;
        let changed = store.get().is_none_or(|current| current.cert != key.cert);
        if changed {
            store.set(key);
            info!(
                secret = self.secret,
                "serving the certificate from the auto-TLS Secret"
            );
        }
        self.patch_ca_bundle(&bundle.ca_cert).await?;
        Ok(changed)
    }

    /// Re-runs [`AutoTls::refresh`] about every [`RECHECK`]; a failure is
    /// logged and tried again as [`RETRY`] says, and the current certificate
    /// stays in use.
    pub async fn keep_current(self, store: CertStore, metrics: TlsMetrics) {
        let mut failures = RETRY.backoff();
        let mut wait = recheck_in(rand::random());
        loop {
            tokio::time::sleep(wait).await;
            match self.refresh(&store).await {
                Ok(changed) => {
                    if changed {
                        metrics.reloaded(true);
                    }
                    failures.succeeded();
                    wait = recheck_in(rand::random());
                }
                Err(error) => {
                    metrics.reloaded(false);
                    wait = failures.failed();
                    warn!(%error, retry_in = ?wait, "auto-TLS refresh failed, keeping the current certificate");
                }
            }
        }
    }

    /// Returns the Secret's bundle, creating or renewing it as needed at `now`.
    pub async fn ensure_secret(&self, now: OffsetDateTime) -> Result<Bundle> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let existing = api
            .get_opt(&self.secret)
            .await
            .map_err(|error| self.kube_error("read", error))?;
        let Some(existing) = existing else {
            let bundle = Bundle::generate(&self.hosts, now)?;
            let secret = self.secret_object(&bundle, None);
            return match api.create(&PostParams::default(), &secret).await {
                Ok(_) => {
                    info!(
                        secret = self.secret,
                        "created the auto-TLS CA and certificate"
                    );
                    Ok(bundle)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    info!(
                        secret = self.secret,
                        "another replica created the auto-TLS Secret"
                    );
                    self.read_existing(&api).await
                }
                Err(error) => Err(self.kube_error("create", error)),
            };
        };
        let current = Bundle::from_secret(&existing);
        let renewal = current
            .as_ref()
            .map_or(Renewal::Ca, |bundle| bundle.renewal(&self.hosts, now));
        let bundle = match (current, renewal) {
            (Some(bundle), Renewal::None) => return Ok(bundle),
            (Some(bundle), Renewal::Cert) => bundle.reissue(&self.hosts, now)?,
            (Some(bundle), Renewal::Ca) => {
                Bundle::generate(&self.hosts, now)?.trusting(&bundle, now)
            }
            (None, _) => Bundle::generate(&self.hosts, now)?,
        };
        let secret = self.secret_object(&bundle, existing.metadata.resource_version.clone());
        match api
            .replace(&self.secret, &PostParams::default(), &secret)
            .await
        {
            Ok(_) => {
                info!(
                    secret = self.secret,
                    ?renewal,
                    "renewed the auto-TLS certificate"
                );
                Ok(bundle)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                info!(
                    secret = self.secret,
                    "another replica renewed the auto-TLS Secret"
                );
                self.read_existing(&api).await
            }
            Err(error) => Err(self.kube_error("update", error)),
        }
    }

    /// Sets `caBundle` on every webhook of the configuration that lacks it.
    /// Returns whether anything was patched.
    pub async fn patch_ca_bundle(&self, ca_pem: &str) -> Result<bool> {
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let action = |verb: &str| {
            format!(
                "{verb} MutatingWebhookConfiguration {}",
                self.webhook_config
            )
        };
        let config = api
            .get(&self.webhook_config)
            .await
            .map_err(|error| Error::Kube {
                action: action("read"),
                error,
            })?;
        let wanted = ByteString(ca_pem.as_bytes().to_vec());
        let encoded = STANDARD.encode(ca_pem);
        // Webhooks merge by name in a strategic merge patch, so only the
        // caBundle of each named webhook changes.
        let webhooks: Vec<_> = config
            .webhooks
            .iter()
            .flatten()
            .filter(|webhook| webhook.client_config.ca_bundle.as_ref() != Some(&wanted))
            .map(|webhook| json!({"name": webhook.name, "clientConfig": {"caBundle": encoded}}))
            .collect();
        if webhooks.is_empty() {
            return Ok(false);
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(
            &self.webhook_config,
            &params,
            &Patch::Strategic(json!({ "webhooks": webhooks })),
        )
        .await
        .map_err(|error| Error::Kube {
            action: action("patch caBundle of"),
            error,
        })?;
        info!(
            config = self.webhook_config,
            "patched the CA bundle into the webhooks"
        );
        Ok(true)
    }

    async fn read_existing(&self, api: &Api<Secret>) -> Result<Bundle> {
        let secret = api
            .get(&self.secret)
            .await
            .map_err(|error| self.kube_error("read", error))?;
        Bundle::from_secret(&secret).ok_or_else(|| {
            super::Error::NoCertificate {
                path: self.secret_key_name(TLS_CERT),
            }
            .into()
        })
    }

    fn secret_object(&self, bundle: &Bundle, resource_version: Option<String>) -> Secret {
        let data = [
            (CA_CERT, &bundle.ca_cert),
            (CA_KEY, &bundle.ca_key),
            (TLS_CERT, &bundle.cert),
            (TLS_KEY, &bundle.key),
        ]
        .into_iter()
        .map(|(key, pem)| (key.to_owned(), ByteString(pem.as_bytes().to_vec())))
        .collect::<BTreeMap<_, _>>();
        let mut secret = Secret {
            type_: Some(String::from("kubernetes.io/tls")),
            data: Some(data),
            ..Secret::default()
        };
        secret.metadata.name = Some(self.secret.clone());
        secret.metadata.namespace = Some(self.namespace.clone());
        secret.metadata.resource_version = resource_version;
        secret
    }

    fn secret_key_name(&self, key: &str) -> String {
        format!("Secret {}/{} key {key}", self.namespace, self.secret)
    }

    fn kube_error(&self, verb: &str, error: kube::Error) -> Error {
        Error::Kube {
            action: format!("{verb} Secret {}/{}", self.namespace, self.secret),
            error,
        }
    }
}

impl Bundle {
    /// A new CA and a serving certificate for `hosts` signed by it.
    pub fn generate(hosts: &[String], now: OffsetDateTime) -> Result<Self> {
        let generate = |error| Error::Generate { what: "CA", error };
        let ca_key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "keyhole-injector CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        let ca_cert = params.self_signed(&ca_key).map_err(generate)?;
        let mut bundle = Self {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key.serialize_pem(),
            cert: String::new(),
            key: String::new(),
        };
        bundle = bundle.reissue(hosts, now)?;
        Ok(bundle)
    }

    /// The same CA with a new serving certificate for `hosts`.
    pub fn reissue(&self, hosts: &[String], now: OffsetDateTime) -> Result<Self> {
        let generate = |error| Error::Generate {
            what: "serving certificate",
            error,
        };
        let ca_key = KeyPair::from_pem(&self.ca_key).map_err(generate)?;
        let ca_der = self.ca_ders().into_iter().next().ok_or(Error::Generate {
            what: "serving certificate",
            error: rcgen::Error::CouldNotParseCertificate,
        })?;
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(generate)?;
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::new(hosts.to_vec()).map_err(generate)?;
        if let Some(host) = hosts.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, host.as_str());
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + CERT_LIFETIME;
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        Ok(Self {
            ca_cert: self.ca_cert.clone(),
            ca_key: self.ca_key.clone(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// This bundle, also trusting `previous`'s CA while it is valid, so
    /// certificates other replicas still serve keep working during a CA change.
    fn trusting(mut self, previous: &Self, now: OffsetDateTime) -> Self {
        if let Some(old) = previous.ca_ders().first()
            && not_after(old).is_some_and(|end| end > now)
        {
            self.ca_cert.push_str(&pem_certificate(old));
        }
        self
    }

    /// What this bundle needs at `now` to keep serving `hosts`.
    pub fn renewal(&self, hosts: &[String], now: OffsetDateTime) -> Renewal {
        let ca_end = self.ca_ders().first().and_then(|der| not_after(der));
        let cert = CertificateDer::pem_slice_iter(self.cert.as_bytes()).next();
        let Some(Ok(cert)) = cert else {
            return Renewal::Ca;
        };
        match ca_end {
            Some(end) if end - now >= CA_RENEW_BEFORE => {}
            _ => return Renewal::Ca,
        }
        match not_after(&cert) {
            Some(end) if end - now >= CERT_RENEW_BEFORE && dns_names(&cert) == sorted(hosts) => {
                Renewal::None
            }
            _ => Renewal::Cert,
        }
    }

    fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .and_then(|value| String::from_utf8(value.0.clone()).ok())
        };
        Some(Self {
            ca_cert: text(CA_CERT)?,
            ca_key: text(CA_KEY)?,
            cert: text(TLS_CERT)?,
            key: text(TLS_KEY)?,
        })
    }

    fn ca_ders(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.ca_cert.as_bytes())
            .filter_map(|cert| cert.ok())
            .collect()
    }
}

/// The wait before the next refresh: [`RECHECK`] moved by up to
/// [`RECHECK_JITTER`] of itself either way. `jitter` is a random fraction in
/// `[0, 1)`; `0.5` gives exactly [`RECHECK`], and so does a NaN.
///
/// This is a poll, not the retry [`RETRY`] times: its jitter moves the wait
/// both ways so that every replica still polls once per [`RECHECK`] on
/// average, where a retry's jitter only shortens a wait that keeps growing.
pub fn recheck_in(jitter: f64) -> Duration {
    let jitter = if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0)
    };
    RECHECK.mul_f64(1.0 + RECHECK_JITTER * (2.0 * jitter - 1.0))
}

fn not_after(der: &CertificateDer<'_>) -> Option<OffsetDateTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let names = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(name) => Some((*name).to_owned()),
            _ => None,
        });
    sorted(&names.collect::<Vec<_>>())
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

fn pem_certificate(der: &CertificateDer<'_>) -> String {
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recheck_waits_between_eight_and_twelve_minutes() {
        assert_eq!(recheck_in(0.0), Duration::from_secs(8 * 60));
        assert_eq!(recheck_in(0.5), RECHECK);
        assert!(recheck_in(0.999_999) < Duration::from_secs(12 * 60));
        assert!(recheck_in(0.999_999) > Duration::from_secs(12 * 60 - 1));
    }

    #[test]
    fn recheck_grows_with_jitter_and_stays_in_bounds_for_any_input() {
        let waits: Vec<Duration> = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9]
            .into_iter()
            .map(recheck_in)
            .collect();
        assert!(waits.windows(2).all(|pair| pair[0] < pair[1]), "{waits:?}");
        assert_eq!(recheck_in(-1.0), Duration::from_secs(8 * 60));
        assert_eq!(recheck_in(7.0), Duration::from_secs(12 * 60));
        assert_eq!(recheck_in(f64::NAN), RECHECK);
    }
}
