//! The rustls configuration for talking to Vault, from the `vault` stanza.
//!
//! keyhole builds the rustls `ClientConfig` itself because `tls_server_name`
//! (verify the certificate against a name other than the address's host)
//! needs a certificate verifier of its own, and because building it here
//! pins the crypto provider to ring whatever the process default is. It
//! offers no ALPN protocols: each connector sets those it speaks.
//!
//! As with Vault Agent, `ca_cert` and `ca_path` replace the system's trusted
//! CAs rather than adding to them.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::warn;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use crate::config;

/// Builds the TLS settings for `vault`. `https` says whether the address
/// uses TLS at all; without it the system's CA store is not even loaded.
pub(super) fn client_config(vault: &config::Vault, https: bool) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Setup {
            reason: err.to_string(),
        })?;

    let builder = if vault.tls_skip_verify {
        warn!("vault.tls_skip_verify is set: Vault's TLS certificate is not verified");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerification { provider }))
    } else {
        let roots = Arc::new(trusted_roots(vault, https)?);
        match &vault.tls_server_name {
            Some(name) => {
                let verifier = NameOverride::new(name, roots, provider)?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
            }
            None => builder.with_root_certificates(roots),
        }
    };

    match (&vault.client_cert, &vault.client_key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs("client_cert", cert)?;
            let key = read_key("client_key", key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|err| Error::TlsFile {
                    key: "client_key",
                    path: vault.client_key.clone().unwrap_or_default(),
                    reason: err.to_string(),
                })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(path), None) | (None, Some(path)) => Err(Error::TlsFile {
            key: if vault.client_cert.is_some() {
                "client_cert"
            } else {
                "client_key"
            },
            path: path.clone(),
            reason: "client_cert and client_key must be set together".to_owned(),
        }),
    }
}

/// The CAs Vault's certificate must chain to: `ca_cert` and `ca_path` when
/// set, else the system's.
fn trusted_roots(vault: &config::Vault, https: bool) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    if let Some(file) = &vault.ca_cert {
        add_certs(&mut roots, "ca_cert", file, read_certs("ca_cert", file)?)?;
    }
    if let Some(dir) = &vault.ca_path {
        for file in pem_files(dir)? {
            add_certs(&mut roots, "ca_path", &file, read_certs("ca_path", &file)?)?;
        }
    }
    if vault.ca_cert.is_none() && vault.ca_path.is_none() && https {
        let native = rustls_native_certs::load_native_certs();
        for err in &native.errors {
            warn!("skipping system CA certificates: {err}");
        }
        roots.add_parsable_certificates(native.certs);
        if roots.is_empty() {
            return Err(Error::Setup {
                reason: "the system has no trusted CA certificates; set vault.ca_cert".to_owned(),
            });
        }
    }
    Ok(roots)
}

fn add_certs(
    roots: &mut RootCertStore,
    key: &'static str,
    path: &Path,
    certs: Vec<CertificateDer<'static>>,
) -> Result<()> {
    for cert in certs {
        roots.add(cert).map_err(|err| Error::TlsFile {
            key,
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
    }
    Ok(())
}

/// Reads every certificate in a PEM file; a file without any is an error.
fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let error = |reason: String| Error::TlsFile {
        key,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| error(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| error(err.to_string()))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in the file".to_owned()));
    }
    Ok(certs)
}

/// Reads a PEM private key. The file's text is wiped once parsed, and
/// rustls wipes the key itself once it has loaded it.
fn read_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>> {
    let error = |err: pem::Error| Error::TlsFile {
        key,
        path: path.to_owned(),
        reason: err.to_string(),
    };
    let text = Zeroizing::new(std::fs::read(path).map_err(|err| error(pem::Error::Io(err)))?);
    PrivateKeyDer::from_pem_slice(&text).map_err(error)
}

/// The files directly in `dir`, following symlinks and skipping directories
/// (a mounted Kubernetes Secret holds `..data` directories beside its files).
fn pem_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let error = |err: std::io::Error| Error::TlsFile {
        key: "ca_path",
        path: dir.to_owned(),
        reason: err.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Verifies Vault's certificate against `tls_server_name` instead of the
/// host in the address, with the usual WebPKI rules otherwise.
#[derive(Debug)]
struct NameOverride {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl NameOverride {
    fn new(name: &str, roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self> {
        let name = ServerName::try_from(name.to_owned()).map_err(|_| Error::Setup {
            reason: format!("vault.tls_server_name {name:?} is not a valid DNS name or IP address"),
        })?;
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|err| Error::Setup {
                reason: err.to_string(),
            })?;
        Ok(Self { inner, name })
    }
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate (`tls_skip_verify`), but still checks that the
/// server holds the key of the certificate it sent.
#[derive(Debug)]
struct SkipVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> config::Vault {
        config::Vault {
            address: Some("https://127.0.0.1:8200".to_owned()),
            ..config::Vault::default()
        }
    }

    #[test]
    fn ca_cert_without_certificates_names_the_file() {
        let dir = tempfile::tempdir().expect("should succeed");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").expect("should succeed");
        let err = client_config(
            &config::Vault {
                ca_cert: Some(file.clone()),
                ..vault()
            },
            true,
        )
        .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            format!(
                "vault ca_cert {}: no PEM certificate in the file",
                file.display()
            )
        );
    }

    #[test]
    fn client_cert_without_key_is_an_error() {
        let err = client_config(
            &config::Vault {
                client_cert: Some("/etc/cert.pem".into()),
                tls_skip_verify: true,
                ..vault()
            },
            true,
        )
        .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "vault client_cert /etc/cert.pem: client_cert and client_key must be set together"
        );
    }

    #[test]
    fn client_key_that_is_missing_or_not_a_key_names_the_file() {
        let dir = tempfile::tempdir().expect("should succeed");
        let pair = rcgen::generate_simple_self_signed(vec!["agent.test".to_owned()])
            .expect("should succeed");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, pair.cert.pem()).expect("should succeed");
        let with_key = |key: &Path| {
            client_config(
                &config::Vault {
                    client_cert: Some(cert.clone()),
                    client_key: Some(key.to_owned()),
                    tls_skip_verify: true,
                    ..vault()
                },
                true,
            )
            .expect_err("should fail")
            .to_string()
        };
        let missing = dir.path().join("missing.pem");
        assert_eq!(
            with_key(&missing),
            format!(
                "vault client_key {}: I/O error: No such file or directory (os error 2)",
                missing.display()
            )
        );
        assert_eq!(
            with_key(&cert),
            format!("vault client_key {}: no items found", cert.display())
        );
    }

    #[test]
    fn invalid_tls_server_name_is_an_error() {
        let dir = tempfile::tempdir().expect("should succeed");
        let ca = rcgen::generate_simple_self_signed(vec!["vault.test".to_owned()])
            .expect("should succeed");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, ca.cert.pem()).expect("should succeed");
        let err = client_config(
            &config::Vault {
                ca_cert: Some(file),
                tls_server_name: Some("not a name".to_owned()),
                ..vault()
            },
            true,
        )
        .expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "cannot set up the Vault client: vault.tls_server_name \"not a name\" \
             is not a valid DNS name or IP address"
        );
    }
}
