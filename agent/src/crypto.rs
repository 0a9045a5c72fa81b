//! The process's rustls crypto provider.
//!
//! The workspace builds rustls with ring only (reqwest, axum-server and kube
//! without their default providers), and every rustls user that does not pin
//! a provider itself (reqwest clients, the injector's TLS server, the kube
//! client) needs a process default or panics at its first handshake. Each
//! binary calls [`install_provider`] once at the start of `main`.

/// Installs ring as the process's rustls crypto provider. Calling it again,
/// e.g. from each test of one test binary, is harmless.
pub fn install_provider() {
    // Err only means a provider is installed already, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
