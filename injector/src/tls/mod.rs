//! The webhook's serving certificate: loading, hot reload from files, and auto-TLS.
//!
//! Every source feeds one [`CertStore`]; the rustls server resolves the certificate
//! from it on each handshake, so a new certificate takes effect for the next
//! connection without a restart and without touching connections already open.

pub mod auto;
pub mod files;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use tokio::sync::watch;

/// Errors loading a certificate and its private key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The certificate PEM holds no certificate.
    #[error("{path}: no PEM certificate found")]
    NoCertificate {
        /// Where the certificate came from.
        path: String,
    },
    /// The key PEM holds no private key.
    #[error("{path}: no PEM private key found (expected PKCS#8, PKCS#1 or SEC1)")]
    NoKey {
        /// Where the key came from.
        path: String,
    },
    /// The PEM text is malformed.
    #[error("{path}: invalid PEM: {reason}")]
    Pem {
        /// Where the PEM came from.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key is of a kind rustls cannot sign with.
    #[error("{path}: unusable private key: {error}")]
    Key {
        /// Where the key came from.
        path: String,
        /// The reason rustls gave.
        error: rustls::Error,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    Mismatch {
        /// Where the certificate came from.
        cert: String,
        /// Where the key came from.
        key: String,
    },
    /// The directory holding a certificate or key could not be watched.
    #[error("cannot watch {path} for certificate changes: {error}")]
    Watch {
        /// The directory.
        path: String,
        /// Why the watch failed.
        error: notify::Error,
    },
    /// No crypto provider was installed before the server started.
    #[error("no rustls crypto provider installed")]
    NoProvider,
}

/// Result of loading TLS material.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a PEM certificate chain and private key into a key rustls can serve.
///
/// `cert_path` and `key_path` name where the PEM came from (a file, a Secret key),
/// so errors point at the thing to fix.
pub fn certified_key(
    cert_pem: &[u8],
    cert_path: &str,
    key_pem: &[u8],
    key_path: &str,
) -> Result<CertifiedKey> {
    let pem_error = |path: &str, err: pem::Error| Error::Pem {
        path: path.to_owned(),
        reason: err.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(cert_path, err))?;
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| match err {
        pem::Error::NoItemsFound => Error::NoKey {
            path: key_path.to_owned(),
        },
        other => pem_error(key_path, other),
    })?;
    let provider = CryptoProvider::get_default().ok_or(Error::NoProvider)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|err| match err {
        rustls::Error::InconsistentKeys(_) => Error::Mismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        },
        other => Error::Key {
            path: key_path.to_owned(),
            error: other,
        },
    })
}

/// The certificate the server presents, swappable while the server runs.
///
/// Starts empty; handshakes fail until the first certificate is set, and
/// [`CertStore::loaded`] lets readiness wait for that moment.
#[derive(Clone)]
pub struct CertStore {
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
    loaded: watch::Sender<bool>,
}

impl CertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            current: Arc::default(),
            loaded: watch::Sender::new(false),
        }
    }

    /// Serves `key` from the next handshake on.
    pub fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
        self.loaded.send_replace(true);
    }

    /// The certificate currently served, if any.
    pub fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a certificate has been set; flips to `true` once and stays there.
    pub fn loaded(&self) -> watch::Receiver<bool> {
        self.loaded.subscribe()
    }

    /// A rustls server configuration (TLS 1.2 and 1.3, the installed provider)
    /// that presents whatever this store holds.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let provider = CryptoProvider::get_default().ok_or(Error::NoProvider)?;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .map_err(|error| Error::Key {
                path: String::from("server configuration"),
                error,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl Default for CertStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("loaded", &*self.loaded.borrow())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}
