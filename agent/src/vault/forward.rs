//! How the API proxy sends an app's request to Vault: hyper-util's pooled
//! HTTP/1.1 client over the agent's TLS settings, not reqwest.
//!
//! reqwest, which the agent's own requests go through, parses every
//! request's URL twice with the `url` crate (its redirect policy on the way
//! out, the answer's final URL on the way back) and runs its proxy matcher
//! and its redirect and retry layers: a quarter of what proxying a request
//! cost the agent, for nothing the proxy uses. When Vault is reached through
//! an HTTP proxy (`HTTPS_PROXY`, which vault-k8s's `proxy-address` sets),
//! whose CONNECT tunnels reqwest makes, requests still go through reqwest.
//!
//! As Vault's Go client does, a redirect (301, 302 or 307) is followed once,
//! for a request without a body; one with a body gets the redirect, since
//! its body was streamed and cannot be sent again. The request timeout
//! bounds the wait for Vault's answer, not the streaming of its body.

use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, LengthLimitError};
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, LOCATION};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;

use super::{Client, Error, Result};
use crate::config::Reuse;

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
    transport: Transport,
    /// The scheme and authority of Vault's address.
    origin: Uri,
    /// The path of Vault's address, before the app's `/v1/...`.
    prefix: String,
    /// Headers every request carries unless the app sent its own:
    /// `X-Vault-Request`, and the namespace of the agent's config.
    headers: HeaderMap,
    timeout: Duration,
}

enum Transport {
    Direct(Box<HyperClient<HttpsConnector<HttpConnector>, Body>>),
    ThroughHttpProxy(Client),
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
        let mut headers = HeaderMap::new();
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        if shared.reuse == Reuse::Close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(namespace) = &client.namespace {
            headers.insert("x-vault-namespace", namespace.clone());
        }
        let transport = if Matcher::from_env().intercept(&origin).is_some() {
            Transport::ThroughHttpProxy(client.clone())
        } else {
            let connector = shared.http1_connector(|http| http.set_nodelay(true));
            let mut builder = HyperClient::builder(TokioExecutor::new());
            if shared.reuse != Reuse::Keep {
                builder.pool_max_idle_per_host(0);
            }
            Transport::Direct(Box::new(builder.build(connector)))
        };
        Ok(Self {
            transport,
            origin,
            prefix,
            headers,
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
        let client = match &self.transport {
            Transport::Direct(client) => client,
            Transport::ThroughHttpProxy(client) => {
                return through_http_proxy(client, method, path_and_query, headers, body).await;
            }
        };
        let uri = self.uri(path_and_query)?;
        // Only a request without a body can be sent again.
        let again = HttpBody::is_end_stream(&body).then(|| (method.clone(), headers.clone()));
        let first = self.request(client, method, uri, headers, body).await?;
        let redirect = matches!(
            first.status(),
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT
        );
        let location = first
            .headers()
            .get(LOCATION)
            .and_then(|location| location.to_str().ok())
            .and_then(|location| location.parse::<Uri>().ok())
            .filter(|location| location.scheme().is_some());
        match (location, again) {
            (Some(location), Some((method, headers))) if redirect => {
                self.request(client, method, location, headers, Body::empty())
                    .await
            }
            _ => Ok(first),
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

    async fn request(
        &self,
        client: &HyperClient<HttpsConnector<HttpConnector>, Body>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> std::result::Result<Response<Body>, Failure> {
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        match tokio::time::timeout(self.timeout, client.request(request)).await {
            Ok(Ok(response)) => Ok(response.map(Body::new)),
            Ok(Err(err)) => Err(failure(&err, err.is_connect())),
            Err(_) => Err(Failure::Transport("timed out".to_owned())),
        }
    }
}

/// Sends the request through reqwest, which makes the HTTP proxy's tunnel.
async fn through_http_proxy(
    client: &Client,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Body,
) -> std::result::Result<Response<Body>, Failure> {
    let url = client.forward_url(path_and_query);
    let mut request = reqwest::Request::new(method, url);
    *request.headers_mut() = headers;
    if !HttpBody::is_end_stream(&body) {
        *request.body_mut() = Some(channelled(body));
    }
    match client.shared.http.execute(request).await {
        Ok(response) => {
            let response: Response<reqwest::Body> = response.into();
            Ok(response.map(Body::new))
        }
        Err(err) if err.is_timeout() => Err(Failure::Transport("timed out".to_owned())),
        Err(err) => Err(failure(&err, err.is_connect())),
    }
}

/// `body` as reqwest takes it: reqwest needs a body it can share between
/// threads, which the app's stream is not, so a task passes it on.
fn channelled(body: Body) -> reqwest::Body {
    let (mut sender, channel) = Channel::<Bytes, axum::Error>::new(1);
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if sender.send_data(data).await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    sender.abort(err);
                    return;
                }
            }
        }
    });
    reqwest::Body::wrap(channel)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::config;

    /// A server that answers every request with `answer` and hangs up.
    async fn server(answer: String) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    fn forwarder(port: u16) -> Forwarder {
        forwarder_at(&format!("http://127.0.0.1:{port}"))
    }

    fn forwarder_at(address: &str) -> Forwarder {
        crate::crypto::install_provider();
        let client = Client::new(&config::Vault {
            address: Some(address.to_owned()),
            ..config::Vault::default()
        })
        .expect("client");
        Forwarder::new(&client).expect("forwarder")
    }

    async fn status(forwarder: &Forwarder, method: Method, body: Body) -> StatusCode {
        forwarder
            .send(method, "/v1/secret/data/app", HeaderMap::new(), body)
            .await
            .map(|response| response.status())
            .unwrap_or(StatusCode::BAD_GATEWAY)
    }

    #[tokio::test]
    async fn follows_one_redirect_for_a_request_without_a_body() {
        let moved = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_owned(),
        )
        .await;
        let redirecting = server(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{moved}/v1/secret/data/app\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
        .await;
        let once = forwarder(redirecting);
        assert_eq!(
            status(&once, Method::GET, Body::empty()).await,
            StatusCode::OK
        );
        // A body was streamed and cannot be sent again: the app gets the
        // redirect.
        let body = Body::new(http_body_util::Full::new(Bytes::from_static(b"{}")));
        assert_eq!(
            status(&once, Method::POST, body).await,
            StatusCode::TEMPORARY_REDIRECT
        );

        // Only once: a second redirect reaches the app.
        let again = server(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{redirecting}/v1/secret/data/app\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
        .await;
        assert_eq!(
            status(&forwarder(again), Method::GET, Body::empty()).await,
            StatusCode::TEMPORARY_REDIRECT
        );
    }

    #[test]
    fn keeps_the_path_of_vaults_address() {
        assert_eq!(
            forwarder_at("http://127.0.0.1:8200/vault/")
                .uri("/v1/sys/health?standbyok=true")
                .map(|uri| uri.to_string())
                .ok(),
            Some("http://127.0.0.1:8200/vault/v1/sys/health?standbyok=true".to_owned())
        );
    }
}
