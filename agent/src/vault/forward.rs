//! How the API proxy sends an app's request to Vault: through the agent's
//! own pooled client ([`super::http`]), with the app's method, path, query,
//! headers and body as they came, and Vault's answer streamed back.
//!
//! The request timeout bounds the wait for Vault's answer, not the
//! streaming of its body.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use http_body_util::LengthLimitError;
use hyper::header::HeaderMap;
use hyper::{Method, Response, Uri};

use super::http::{Http, Payload};
use super::{Client, Error, Result};

/// Why a request got no answer from Vault.
#[derive(Debug)]
pub enum Failure {
    /// The app's body was over the limit its stream was given.
    TooLarge,
    /// Vault could not be reached or did not answer: why, without the URL
    /// (whose query may hold values).
    Transport(String),
}

/// Sends the API proxy's requests to one Vault.
pub struct Forwarder {
    http: Http,
    /// The scheme and authority of Vault's address.
    origin: Uri,
    /// The path of Vault's address, before the app's `/v1/...`.
    prefix: String,
    /// Headers every request carries unless the app sent its own:
    /// `X-Vault-Request`, and the namespace of the agent's config.
    headers: HeaderMap,
    timeout: Duration,
}

impl Forwarder {
    /// A forwarder to `client`'s Vault, with its TLS settings, timeouts,
    /// connection reuse and namespace.
    pub fn new(client: &Client) -> Result<Self> {
        let shared = &client.shared;
        let invalid = || Error::Address {
            address: shared.address.clone(),
        };
        let prefix = shared.address_path().to_owned();
        let origin: Uri = shared.base[..url::Position::BeforePath]
            .parse()
            .map_err(|_| invalid())?;
        Ok(Self {
            http: shared.http.clone(),
            origin,
            prefix,
            headers: client.fixed_headers(),
            timeout: shared.request_timeout,
        })
    }

    /// Sends `method path_and_query` (the app's, e.g.
    /// `/v1/secret/data/app?version=2`) below Vault's address, with
    /// `headers` and `body`, and returns Vault's answer as it comes.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> std::result::Result<Response<Body>, Failure> {
        for (name, value) in &self.headers {
            headers.entry(name.clone()).or_insert_with(|| value.clone());
        }
        let uri = self.uri(path_and_query)?;
        // Only a request without a body can be sent again.
        let payload = if HttpBody::is_end_stream(&body) {
            Payload::Bytes(Default::default())
        } else {
            Payload::Stream(body)
        };
        let sending = self.http.send(method, uri, headers, payload);
        match tokio::time::timeout(self.timeout, sending).await {
            Ok(Ok(response)) => Ok(response.map(Body::new)),
            Ok(Err(err)) => Err(failure(&err, err.is_connect())),
            Err(_) => Err(Failure::Transport("timed out".to_owned())),
        }
    }

    /// Vault's address with the app's path and query.
    fn uri(&self, path_and_query: &str) -> std::result::Result<Uri, Failure> {
        let mut parts = self.origin.clone().into_parts();
        parts.path_and_query = Some(
            format!("{}{path_and_query}", self.prefix)
                .parse()
                .map_err(|err| Failure::Transport(format!("the request's path: {err}")))?,
        );
        Uri::from_parts(parts)
            .map_err(|err| Failure::Transport(format!("the request's URL: {err}")))
    }
}

/// What `err` says of a request that got no answer: the app's body was too
/// large, or the innermost cause.
fn failure(err: &(dyn std::error::Error + 'static), connect: bool) -> Failure {
    let kind = if connect {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut reason = kind.to_owned();
    let mut source = err.source();
    while let Some(inner) = source {
        if inner.is::<LengthLimitError>() {
            return Failure::TooLarge;
        }
        if inner.source().is_none() {
            reason = format!("{kind}: {inner}");
        }
        source = inner.source();
    }
    Failure::Transport(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn forwarder_at(address: &str) -> Forwarder {
        crate::crypto::install_provider();
        let client = Client::new(&config::Vault {
            address: Some(address.to_owned()),
            ..config::Vault::default()
        })
        .expect("client");
        Forwarder::new(&client).expect("forwarder")
    }

    #[test]
    fn keeps_the_apps_path_and_query_below_the_address() {
        for (address, path_and_query, uri) in [
            (
                "http://127.0.0.1:8200",
                "/v1/secret/data/app?version=2",
                "http://127.0.0.1:8200/v1/secret/data/app?version=2",
            ),
            (
                "http://127.0.0.1:8200/vault/",
                "/v1/sys/health?standbyok=true",
                "http://127.0.0.1:8200/vault/v1/sys/health?standbyok=true",
            ),
            (
                "https://vault.example.com/prefix",
                "/v1/sys/health",
                "https://vault.example.com/prefix/v1/sys/health",
            ),
            (
                "http://127.0.0.1:8200",
                "/v1/secret/metadata/?list=true&x=%2F",
                "http://127.0.0.1:8200/v1/secret/metadata/?list=true&x=%2F",
            ),
        ] {
            let forwarded = forwarder_at(address)
                .uri(path_and_query)
                .map(|uri| uri.to_string());
            assert_eq!(
                forwarded.ok().as_deref(),
                Some(uri),
                "{address} {path_and_query}"
            );
        }
    }
}
