//! The one HTTP client every request of the agent's to Vault goes through:
//! its own (logins, reads, renewals) and the API proxy's. It is hyper-util's
//! pooled client over the agent's TLS settings, speaking HTTP/2 when a TLS
//! Vault offers it, as Vault's Go client does.
//!
//! Built here on hyper-util rather than taken from reqwest, which is built
//! on the same client: what reqwest adds (URL parsing of every request and
//! answer, redirect and retry layers, its own proxy handling) is code the
//! agent would keep in memory in every pod, and the API proxy would pay for
//! on every request, for nothing the agent uses. The one part of it the
//! agent needs is the way through an HTTP proxy (`HTTPS_PROXY`, which
//! vault-k8s's `proxy-address` sets): [`Route`] takes the proxy from the
//! environment as curl and Go do (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`), tunnels to an `https` Vault with `CONNECT`, and sends the
//! requests for an `http` Vault to the proxy in absolute form.
//!
//! As Vault's Go client does, a redirect (301, 302 or 307) is followed once,
//! for a request whose body can be sent again: the agent's own, and an
//! app's without a body. An app's streamed body cannot be, so that app gets
//! the redirect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, LOCATION, PROXY_AUTHORIZATION};
use hyper::http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::{Client as HyperClient, Error as HyperError};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower::{Service, ServiceExt};

use crate::config::Reuse;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP keepalive on pooled connections, so that one to a Vault host that
/// vanished is found dead rather than waited on: probes after 15 s idle,
/// every 15 s, 3 times.
const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_RETRIES: u32 = 3;

/// How long an unused pooled connection is kept, as Go's default transport.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A request's body: bytes, which a redirect can send again, or an app's
/// stream, which it cannot.
pub(super) enum Payload {
    /// The whole body; empty for a request without one.
    Bytes(Bytes),
    /// An app's body, passed on as it arrives.
    Stream(Body),
}

/// The agent's pooled HTTP client to Vault. Clones share the pool.
#[derive(Clone)]
pub(super) struct Http {
    client: HyperClient<HttpsConnector<Route>, Body>,
    proxies: Arc<Matcher>,
}

impl Http {
    /// A client over `tls` whose connections take at most `connect_timeout`
    /// to open and are kept for later requests as `reuse` says.
    pub(super) fn new(tls: &rustls::ClientConfig, connect_timeout: Duration, reuse: Reuse) -> Self {
        let proxies = Arc::new(Matcher::from_env());
        let tcp = tcp_connector(connect_timeout, |http| {
            http.set_keepalive(Some(KEEPALIVE));
            http.set_keepalive_interval(Some(KEEPALIVE));
            http.set_keepalive_retries(Some(KEEPALIVE_RETRIES));
        });
        // A proxy is spoken to in HTTP/1.1 (CONNECT, or a request in absolute
        // form), over TLS when its URL is `https`.
        let to_proxy = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp.clone());
        let route = Route {
            tcp,
            to_proxy,
            proxies: Arc::clone(&proxies),
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1();
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT);
        let connector = if reuse == Reuse::Keep {
            connector.enable_http2().wrap_connector(route)
        } else {
            // An HTTP/2 connection is shared by every request while it is
            // open; a connection per request must be an HTTP/1.1 one.
            builder.pool_max_idle_per_host(0);
            connector.wrap_connector(route)
        };
        Self {
            client: builder.build(connector),
            proxies,
        }
    }

    /// Sends `method uri` with `headers` and `payload`, following one
    /// redirect when the payload can be sent again, and returns the answer
    /// as it comes.
    pub(super) async fn send(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        payload: Payload,
    ) -> Result<Response<Incoming>, HyperError> {
        let (body, again) = match payload {
            Payload::Bytes(bytes) => (
                Body::from(bytes.clone()),
                Some((method.clone(), headers.clone(), bytes)),
            ),
            Payload::Stream(body) => (body, None),
        };
        let first = self.request(method, uri, headers, body).await?;
        match (redirect(&first), again) {
            (Some(location), Some((method, headers, bytes))) => {
                self.request(method, location, headers, Body::from(bytes))
                    .await
            }
            _ => Ok(first),
        }
    }

    async fn request(
        &self,
        method: Method,
        uri: Uri,
        mut headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, HyperError> {
        // A request to an `http` Vault goes to the proxy as it is, so it
        // carries the proxy's credentials itself; a tunnel's CONNECT carries
        // them for an `https` one.
        if uri.scheme() == Some(&Scheme::HTTP)
            && let Some(auth) = self
                .proxies
                .intercept(&uri)
                .and_then(|proxy| proxy.basic_auth().cloned())
        {
            headers.entry(PROXY_AUTHORIZATION).or_insert(auth);
        }
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

/// Where a redirect sends the request, if `response` is one with an
/// absolute `Location`.
fn redirect(response: &Response<Incoming>) -> Option<Uri> {
    if !matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::TEMPORARY_REDIRECT
    ) {
        return None;
    }
    response
        .headers()
        .get(LOCATION)?
        .to_str()
        .ok()?
        .parse::<Uri>()
        .ok()
        .filter(|location| location.scheme().is_some())
}

/// A TCP connector for connections to Vault (or its proxy): any scheme, the
/// connect timeout, no Nagle delay, and what `tune` sets.
pub(super) fn tcp_connector(
    connect_timeout: Duration,
    tune: impl FnOnce(&mut HttpConnector),
) -> HttpConnector {
    let mut http = HttpConnector::new();
    // TLS is the layer above's: this one connects to `https` URIs too.
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    tune(&mut http);
    http
}

/// Opens the connection a request to `dst` needs: straight to it, or
/// through the proxy the environment names for it.
#[derive(Clone)]
struct Route {
    tcp: HttpConnector,
    to_proxy: HttpsConnector<HttpConnector>,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for Route {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let Some(proxy) = self.proxies.intercept(&dst) else {
            let connecting = self.tcp.clone().oneshot(dst);
            return Box::pin(async move {
                let io = MaybeHttpsStream::Http(connecting.await?);
                Ok(Conn { io, proxied: false })
            });
        };
        if dst.scheme() == Some(&Scheme::HTTPS) {
            let mut tunnel = Tunnel::new(proxy.uri().clone(), self.to_proxy.clone());
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            Box::pin(async move {
                let io = tunnel.oneshot(dst).await?;
                Ok(Conn { io, proxied: false })
            })
        } else {
            let connecting = self.to_proxy.clone().oneshot(proxy.uri().clone());
            Box::pin(async move {
                let io = connecting.await?;
                Ok(Conn { io, proxied: true })
            })
        }
    }
}

/// A connection to Vault, or to the proxy that passes requests on to it.
struct Conn {
    io: MaybeHttpsStream<TokioIo<TcpStream>>,
    /// Whether requests go to a proxy in absolute form.
    proxied: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A server that answers every request with `answer(body)`, `body`
    /// being the request's, and hangs up.
    async fn server(answer: impl Fn(&str) -> String + Send + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = request_body(&mut stream).await;
                let answer = answer(&body);
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    /// Reads a request's head and its body, as long as `content-length` says.
    async fn request_body(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let length = String::from_utf8_lossy(&head)
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length: ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        let _ = stream.read_exact(&mut body).await;
        String::from_utf8_lossy(&body).into_owned()
    }

    /// A server that answers 200 with the request's body.
    async fn echo() -> u16 {
        server(|body| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        })
        .await
    }

    /// A server that redirects every request to the same path on `port`.
    async fn redirecting_to(port: u16) -> u16 {
        server(move |_| {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{port}/v1/secret/data/app\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        })
        .await
    }

    /// The status and body of `method` sent to `port` with `payload`.
    async fn send(port: u16, method: Method, payload: Payload) -> (StatusCode, String) {
        crate::crypto::install_provider();
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let http = Http::new(&tls, Duration::from_secs(5), Reuse::Keep);
        let uri = format!("http://127.0.0.1:{port}/v1/secret/data/app")
            .parse()
            .expect("uri");
        let response = http
            .send(method, uri, HeaderMap::new(), payload)
            .await
            .expect("an answer");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn follows_one_redirect_sending_a_body_it_holds_again() {
        let redirecting = redirecting_to(echo().await).await;
        let body = Bytes::from_static(br#"{"password":"p"}"#);
        assert_eq!(
            send(redirecting, Method::PUT, Payload::Bytes(body)).await,
            (StatusCode::OK, r#"{"password":"p"}"#.to_owned())
        );
        assert_eq!(
            send(redirecting, Method::GET, Payload::Bytes(Bytes::new())).await,
            (StatusCode::OK, String::new())
        );

        // A body that was streamed cannot be sent again: the app gets the
        // redirect.
        let streamed = Body::new(Full::new(Bytes::from_static(b"{}")));
        assert_eq!(
            send(redirecting, Method::POST, Payload::Stream(streamed))
                .await
                .0,
            StatusCode::TEMPORARY_REDIRECT
        );

        // Only once: a second redirect is the answer.
        let twice = redirecting_to(redirecting).await;
        assert_eq!(
            send(twice, Method::GET, Payload::Bytes(Bytes::new()))
                .await
                .0,
            StatusCode::TEMPORARY_REDIRECT
        );
    }
}
