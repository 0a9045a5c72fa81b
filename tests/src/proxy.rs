//! A loopback TCP proxy between a client and Vault that the test can make slow, hung,
//! resetting or refusing, and that records the HTTP requests it sees.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a connection that is reset at once may take to send its request, so the
/// request is still recorded.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// What the proxy does to connections, set with [`FaultProxy::set`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything both ways.
    Pass,
    /// Forward, but hold every chunk the client sends for this long first.
    Delay(Duration),
    /// Accept connections and read what the client sends, but forward nothing and never
    /// answer: a hung Vault.
    Stall,
    /// Reset every open connection, and every new one once its request is read.
    Reset,
    /// Stop listening, so connections are refused, and reset the open ones.
    Refuse,
}

/// A request the proxy saw, forwarded or not.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// When its request line arrived.
    pub at: Instant,
    /// The request line without the protocol, e.g. `PUT /v1/auth/jwt/login`.
    pub line: String,
}

#[derive(Debug)]
struct Shared {
    fault: watch::Sender<Fault>,
    upstream: Mutex<Option<SocketAddr>>,
    seen: Mutex<Vec<SeenRequest>>,
}

impl Shared {
    fn upstream(&self) -> Option<SocketAddr> {
        *self.upstream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, line: String) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SeenRequest {
                at: Instant::now(),
                line,
            });
    }
}

/// A TCP proxy on `127.0.0.1:<free port>` in front of an upstream address. Stopped on
/// drop.
///
/// It understands just enough HTTP/1.1 to record request lines (see
/// [`FaultProxy::requests`]), so a test can count the logins a client attempted even
/// while nothing answers them.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy forwarding to `upstream` on the loopback interface (e.g. the port
    /// of a [`crate::Bao`]).
    pub async fn start(upstream: u16) -> anyhow::Result<Self> {
        let proxy = Self::start_without_upstream().await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// Starts a proxy with nothing behind it yet, as if Vault were down: every connection
    /// is read (so its request is recorded) and reset, until [`FaultProxy::set_upstream`].
    pub async fn start_without_upstream() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (fault, _) = watch::channel(Fault::Pass);
        let shared = Arc::new(Shared {
            fault,
            upstream: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, addr, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// The proxy's address as a Vault address, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to open connections and new ones from now on.
    pub fn set(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
    }

    /// Forwards new connections to `port` on the loopback interface from now on.
    pub fn set_upstream(&self, port: u16) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some(SocketAddr::from(([127, 0, 0, 1], port)));
    }

    /// The requests seen so far whose request line starts with `prefix` (e.g.
    /// `"PUT /v1/auth/jwt/login"`), in order of arrival.
    pub fn requests(&self, prefix: &str) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|seen| seen.line.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Open connections see the proxy go away too.
        self.set(Fault::Refuse);
    }
}

/// Accepts connections while the fault allows, re-binding the same port after
/// [`Fault::Refuse`].
async fn serve(mut listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut fault = shared.fault.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(connection(client, Arc::clone(&shared)));
                }
            }
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
                if *fault.borrow_and_update() == Fault::Refuse {
                    drop(listener);
                    if fault.wait_for(|f| *f != Fault::Refuse).await.is_err() {
                        return;
                    }
                    listener = match rebind(addr).await {
                        Some(listener) => listener,
                        None => return,
                    };
                }
            }
        }
    }
}

/// Binds `addr` again; the port was just released, so only a brief retry is needed.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// One client connection, handled as the fault says when it arrives and as it changes.
async fn connection(mut client: TcpStream, shared: Arc<Shared>) {
    let mut requests = RequestLines::default();
    let initial = *shared.fault.borrow();
    let upstream = match (initial, shared.upstream()) {
        (Fault::Pass | Fault::Delay(_), Some(upstream)) => TcpStream::connect(upstream).await.ok(),
        _ => None,
    };
    let Some(mut upstream) = upstream else {
        if initial == Fault::Stall {
            swallow(client, &shared, &mut requests).await;
        } else {
            // Nothing to forward to: read the request so it is counted, then reset.
            let mut buf = vec![0; 16 * 1024];
            if let Ok(Ok(n)) = tokio::time::timeout(FIRST_REQUEST_WAIT, client.read(&mut buf)).await
            {
                requests.feed(&buf[..n], &shared);
            }
            reset(client);
        }
        return;
    };

    let mut fault = shared.fault.subscribe();
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let mut to_upstream = vec![0; 16 * 1024];
    let mut to_client = vec![0; 16 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut to_upstream) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                requests.feed(&to_upstream[..n], &shared);
                let current = *fault.borrow();
                match current {
                    Fault::Pass => {}
                    Fault::Delay(delay) => tokio::time::sleep(delay).await,
                    // A hung server: the request goes nowhere.
                    Fault::Stall => continue,
                    Fault::Reset | Fault::Refuse => break,
                }
                if upstream_write.write_all(&to_upstream[..n]).await.is_err() {
                    break;
                }
            }
            read = upstream_read.read(&mut to_client) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if client_write.write_all(&to_client[..n]).await.is_err() {
                    break;
                }
            }
            changed = fault.changed() => {
                let cut = changed.is_err()
                    || matches!(*fault.borrow_and_update(), Fault::Reset | Fault::Refuse);
                if cut {
                    break;
                }
            }
        }
    }
    reset(client);
}

/// Reads and records requests from a connection that never gets an answer, until the
/// client gives up or the fault says to reset it.
async fn swallow(mut client: TcpStream, shared: &Shared, requests: &mut RequestLines) {
    let mut fault = shared.fault.subscribe();
    let mut buf = vec![0; 16 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => requests.feed(&buf[..n], shared),
            },
            changed = fault.changed() => {
                let cut = changed.is_err()
                    || matches!(*fault.borrow_and_update(), Fault::Reset | Fault::Refuse);
                if cut {
                    reset(client);
                    return;
                }
            }
        }
    }
}

/// Closes `stream` with a TCP reset rather than an orderly shutdown.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Finds HTTP/1.1 request lines in the bytes a client sends, across chunk boundaries.
///
/// A request line is a line ending in ` HTTP/1.1`; JSON bodies escape their line breaks,
/// so no body line can look like one.
#[derive(Debug, Default)]
struct RequestLines {
    /// The unfinished last line (bounded: only its start can be a request line).
    partial: Vec<u8>,
}

impl RequestLines {
    /// Longest prefix of a line kept while waiting for its end.
    const MAX_LINE: usize = 8 * 1024;

    fn feed(&mut self, bytes: &[u8], shared: &Shared) {
        for &byte in bytes {
            if byte == b'\n' {
                let line = String::from_utf8_lossy(&self.partial);
                if let Some(request) = line.trim_end_matches('\r').strip_suffix(" HTTP/1.1") {
                    shared.record(request.to_owned());
                }
                self.partial.clear();
            } else if self.partial.len() < Self::MAX_LINE {
                self.partial.push(byte);
            }
        }
    }
}
