//! Certificates for an OpenBao server's TLS listeners: a CA, a server certificate for
//! [`TLS_SERVER_NAME`] only, and a client certificate, each written to a PEM file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::free_port;
use crate::hcl::hcl_path;

/// The only name the server certificate of [`BaoOptions::tls`](crate::BaoOptions::tls)
/// is valid for. Not `127.0.0.1`: a client must set `tls_server_name` to this.
pub const TLS_SERVER_NAME: &str = "vault.keyhole.test";

/// The name in the client certificate.
const CLIENT_NAME: &str = "agent.keyhole.test";

/// The TLS listeners of a server started with [`BaoOptions::tls`](crate::BaoOptions::tls),
/// and the files a client needs to talk to them.
#[derive(Clone, Debug)]
pub struct BaoTls {
    /// `https://127.0.0.1:<port>`: a TLS listener with a certificate for
    /// [`TLS_SERVER_NAME`], signed by [`BaoTls::ca`].
    pub addr: String,
    /// `https://127.0.0.1:<port>`: the same, requiring a client certificate signed by
    /// [`BaoTls::ca`].
    pub mtls_addr: String,
    /// The CA certificate (PEM) that signed the server and client certificates.
    pub ca: PathBuf,
    /// A client certificate (PEM) the mTLS listener accepts.
    pub client_cert: PathBuf,
    /// The client certificate's private key (PEM).
    pub client_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// Each listener's port and the port of its cluster address.
    ports: [(u16, u16); 2],
}

impl BaoTls {
    /// Makes a new CA and its server and client certificates in `dir`, and picks free
    /// ports for the two listeners and their cluster addresses.
    pub(crate) fn generate(dir: &Path) -> anyhow::Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let leaf = |name: &str| -> anyhow::Result<(String, String)> {
            let key = KeyPair::generate()?;
            let cert = CertificateParams::new(vec![name.to_owned()])?.signed_by(&key, &ca)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_cert, server_key) = leaf(TLS_SERVER_NAME)?;
        let (client_cert, client_key) = leaf(CLIENT_NAME)?;
        let write = |name: &str, pem: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let ports = [(free_port()?, free_port()?), (free_port()?, free_port()?)];
        Ok(Self {
            addr: format!("https://127.0.0.1:{}", ports[0].0),
            mtls_addr: format!("https://127.0.0.1:{}", ports[1].0),
            ca: write("ca.pem", &ca.pem())?,
            client_cert: write("client.pem", &client_cert)?,
            client_key: write("client-key.pem", &client_key)?,
            server_cert: write("server.pem", &server_cert)?,
            server_key: write("server-key.pem", &server_key)?,
            ports,
        })
    }

    /// The two `listener "tcp"` stanzas of the server's config file.
    pub(crate) fn listeners(&self) -> String {
        let [(tls, tls_cluster), (mtls, mtls_cluster)] = self.ports;
        let listener = |port: u16, cluster: u16, extra: &str| {
            format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  \
                 cluster_address = \"127.0.0.1:{cluster}\"\n  tls_cert_file = {}\n  \
                 tls_key_file = {}\n{extra}}}\n",
                hcl_path(&self.server_cert),
                hcl_path(&self.server_key),
            )
        };
        let client_auth = format!(
            "  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = {}\n",
            hcl_path(&self.ca)
        );
        listener(tls, tls_cluster, "") + &listener(mtls, mtls_cluster, &client_auth)
    }
}
