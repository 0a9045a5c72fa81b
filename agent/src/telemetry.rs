//! Sending the agent's metrics to StatsD and DogStatsD servers, as Vault
//! Agent's `telemetry { statsd_address, dogstatsd_addr }` does.
//!
//! Every [`INTERVAL`], and once more when the agent stops, the metrics that
//! `/agent/v1/metrics` serves are sent in UDP datagrams: a counter as its
//! increase since the last send (`name:2|c`, nothing when it did not grow),
//! a gauge as its value (`name:3600|g`). DogStatsD gets the labels as tags
//! (`|#destination:/vault/secrets/db`), with `dogstatsd_tags`; plain StatsD
//! has no tags, so the label values follow the name, dot-separated, as
//! go-metrics writes them.
//!
//! The metrics are read back from their text: prometheus-client encodes its
//! families but has no public way to walk them. The StatsD line format is
//! written by hand: a client crate would bring its own socket and buffering
//! for what is one `format!` per line here, and none computes the counters'
//! increases, which is the part that needs care.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::config::Telemetry;
use crate::metrics::Metrics;

/// How often the metrics are sent: the flush interval of the Datadog agent
/// and of most StatsD servers, so each of their intervals gets one value.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The longest one send may take, its address lookup included: a lookup
/// that hangs must not hold up the next interval or the agent's exit.
const SEND_TIMEOUT: Duration = Duration::from_secs(3);

/// The most bytes in one datagram: what fits an Ethernet frame with room
/// for IP and UDP headers, as DogStatsD clients size them.
const MAX_DATAGRAM: usize = 1432;

/// Sends the metrics to the servers `telemetry` names, in the background,
/// until [`Push::finish`].
pub struct Push {
    running: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
}

impl Push {
    /// Starts sending `metrics`; nothing runs when `telemetry` names no
    /// server.
    pub fn start(telemetry: &Telemetry, metrics: Arc<Metrics>) -> Self {
        let host = telemetry.hostname_label.then(hostname);
        let mut servers: Vec<Server> = Vec::new();
        if let Some(address) = &telemetry.statsd {
            servers.push(Server::new(address, Dialect::Statsd, host.as_deref()));
        }
        if let Some(address) = &telemetry.dogstatsd {
            let dialect = Dialect::Dogstatsd {
                tags: telemetry.dogstatsd_tags.clone(),
            };
            servers.push(Server::new(address, dialect, host.as_deref()));
        }
        if servers.is_empty() {
            return Self { running: None };
        }
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate: the first send is one interval in.
            ticks.tick().await;
            loop {
                let last = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = &mut stopped => true,
                };
                match metrics.encode() {
                    Ok(text) => {
                        let samples = samples(&text);
                        for server in &mut servers {
                            server.send(&samples).await;
                        }
                    }
                    Err(err) => warn!("encoding the metrics to send them failed: {err}"),
                }
                if last {
                    return;
                }
            }
        });
        Self {
            running: Some((task, stop)),
        }
    }

    /// Sends the metrics a last time and stops.
    pub async fn finish(self) {
        if let Some((task, stop)) = self.running {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// The machine's host name, for `enable_hostname_label`.
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default()
}

/// What a server understands.
#[derive(Debug, Clone, PartialEq)]
enum Dialect {
    /// Plain StatsD: no tags.
    Statsd,
    /// DogStatsD: tags, these in every line.
    Dogstatsd { tags: Vec<String> },
}

/// One server, with what it was sent of each counter.
struct Server {
    address: String,
    dialect: Dialect,
    /// `host`, for `enable_hostname_label`.
    host: Option<String>,
    /// Each counter's value at the last send, by its series.
    counters: HashMap<String, f64>,
    /// Whether the last send failed, so that a server that stays away is
    /// warned about once.
    failing: bool,
}

impl Server {
    fn new(address: &str, dialect: Dialect, host: Option<&str>) -> Self {
        Self {
            address: address.to_owned(),
            dialect,
            host: host.map(str::to_owned),
            counters: HashMap::new(),
            failing: false,
        }
    }

    async fn send(&mut self, samples: &[Sample<'_>]) {
        let lines = self.lines(samples);
        if lines.is_empty() {
            return;
        }
        let sent = tokio::time::timeout(SEND_TIMEOUT, send(&self.address, &datagrams(&lines)))
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("timed out")));
        match sent {
            Ok(()) => {
                if self.failing {
                    debug!(address = %self.address, "metrics sent again");
                }
                self.failing = false;
            }
            Err(err) => {
                if !self.failing {
                    warn!(address = %self.address, "sending metrics failed: {err}");
                }
                self.failing = true;
            }
        }
    }

    /// The lines for `samples`: counters by their increase, which is then
    /// counted as sent.
    fn lines(&mut self, samples: &[Sample<'_>]) -> Vec<String> {
        let mut lines = Vec::with_capacity(samples.len());
        for sample in samples {
            let (value, kind) = match sample.kind {
                Kind::Gauge => (sample.value, "g"),
                Kind::Counter => {
                    let last = self
                        .counters
                        .insert(sample.series.to_owned(), sample.value)
                        .unwrap_or(0.0);
                    // Below the last value: the counter started again.
                    let increase = if sample.value < last {
                        sample.value
                    } else {
                        sample.value - last
                    };
                    if increase == 0.0 {
                        continue;
                    }
                    (increase, "c")
                }
            };
            let host = self.host.as_deref().map(|host| ("host", host));
            let labels = sample
                .labels
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(host);
            lines.push(match &self.dialect {
                Dialect::Statsd => {
                    let mut name = clean(sample.name);
                    for (_, value) in labels {
                        name.push('.');
                        name.push_str(&clean(value));
                    }
                    format!("{name}:{value}|{kind}")
                }
                Dialect::Dogstatsd { tags } => {
                    let tags: Vec<String> = labels
                        .map(|(key, value)| format!("{}:{}", clean(key), clean(value)))
                        .chain(tags.iter().map(|tag| clean_tag(tag)))
                        .collect();
                    let mut line = format!("{}:{value}|{kind}", clean(sample.name));
                    if !tags.is_empty() {
                        line.push_str("|#");
                        line.push_str(&tags.join(","));
                    }
                    line
                }
            });
        }
        lines
    }
}

/// `text` with the characters that end a name, a value or a tag in the
/// StatsD line format (`:`, `|`, `@`, `,`, `#`, white space) made `_`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ':' | '|' | '@' | ',' | '#' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect()
}

/// A `dogstatsd_tags` entry, `key:value` or a bare word, with what would
/// end it in a DogStatsD line (`,`, `|`, white space) made `_`.
fn clean_tag(tag: &str) -> String {
    tag.chars()
        .map(|c| match c {
            ',' | '|' => '_',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect()
}

/// `lines` joined with newlines into datagrams of at most [`MAX_DATAGRAM`]
/// bytes; a longer line goes alone.
fn datagrams(lines: &[String]) -> Vec<Vec<u8>> {
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for line in lines {
        match datagrams.last_mut() {
            Some(datagram) if datagram.len() + 1 + line.len() <= MAX_DATAGRAM => {
                datagram.push(b'\n');
                datagram.extend_from_slice(line.as_bytes());
            }
            _ => datagrams.push(line.as_bytes().to_vec()),
        }
    }
    datagrams
}

/// Sends `datagrams` to `address`, looked up anew each time as go-metrics
/// does, so that a server that moves is followed.
async fn send(address: &str, datagrams: &[Vec<u8>]) -> std::io::Result<()> {
    let target: SocketAddr = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{address} has no address")))?;
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    for datagram in datagrams {
        socket.send(datagram).await?;
    }
    Ok(())
}

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
}

/// One series and its value, read from the metrics' text.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    /// The series as the text writes it, name and labels: a counter's key.
    series: &'a str,
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
    kind: Kind,
}

/// The counters and gauges in `text`, the OpenMetrics text of [`Metrics`].
/// A line that does not read as one is skipped: the text is the agent's own.
fn samples(text: &str) -> Vec<Sample<'_>> {
    let mut kinds: HashMap<&str, Kind> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            if let Some((family, kind)) = declared.split_once(' ') {
                let kind = match kind {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    _ => continue,
                };
                kinds.insert(family, kind);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => match rest.strip_suffix('}').map(labels) {
                Some(Some(labels)) => (name, labels),
                _ => continue,
            },
            None => (series, Vec::new()),
        };
        let family = name.strip_suffix("_total").unwrap_or(name);
        let kind = match kinds.get(family) {
            Some(Kind::Counter) if name != family => Kind::Counter,
            Some(Kind::Gauge) if name == family => Kind::Gauge,
            _ => continue,
        };
        samples.push(Sample {
            series,
            name,
            labels,
            value,
            kind,
        });
    }
    samples
}

/// `k="v",k2="v2"`, the values unescaped; `None` when it does not read so.
fn labels(mut text: &str) -> Option<Vec<(&str, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key, value));
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP keyhole_agent_renders Templates rendered and written, per destination file.
# TYPE keyhole_agent_renders counter
keyhole_agent_renders_total{destination="/vault/secrets/db"} 2
keyhole_agent_renders_total{destination="/vault/secrets/a \"b\""} 1
# TYPE keyhole_agent_logins counter
keyhole_agent_logins_total{outcome="success"} 0
# TYPE keyhole_agent_lease_remaining_seconds gauge
# UNIT keyhole_agent_lease_remaining_seconds seconds
keyhole_agent_lease_remaining_seconds{path="database/creds/app"} 3600
# TYPE keyhole_agent_since_last_render_seconds gauge
keyhole_agent_since_last_render_seconds 0.5
# EOF
"#;

    #[test]
    fn reads_counters_and_gauges_with_their_labels() {
        let samples = samples(TEXT);
        let read: Vec<_> = samples
            .iter()
            .map(|s| (s.name, s.labels.clone(), s.value, s.kind))
            .collect();
        assert_eq!(
            read,
            [
                (
                    "keyhole_agent_renders_total",
                    vec![("destination", "/vault/secrets/db".to_owned())],
                    2.0,
                    Kind::Counter
                ),
                (
                    "keyhole_agent_renders_total",
                    vec![("destination", "/vault/secrets/a \"b\"".to_owned())],
                    1.0,
                    Kind::Counter
                ),
                (
                    "keyhole_agent_logins_total",
                    vec![("outcome", "success".to_owned())],
                    0.0,
                    Kind::Counter
                ),
                (
                    "keyhole_agent_lease_remaining_seconds",
                    vec![("path", "database/creds/app".to_owned())],
                    3600.0,
                    Kind::Gauge
                ),
                (
                    "keyhole_agent_since_last_render_seconds",
                    vec![],
                    0.5,
                    Kind::Gauge
                ),
            ]
        );
    }

    #[test]
    fn sends_counters_by_their_increase_and_gauges_by_their_value() {
        let mut server = Server::new(
            "127.0.0.1:8125",
            Dialect::Dogstatsd {
                tags: vec!["env:test".to_owned()],
            },
            None,
        );
        assert_eq!(
            server.lines(&samples(TEXT)),
            [
                "keyhole_agent_renders_total:2|c|#destination:/vault/secrets/db,env:test",
                "keyhole_agent_renders_total:1|c|#destination:/vault/secrets/a_\"b\",env:test",
                "keyhole_agent_lease_remaining_seconds:3600|g|#path:database/creds/app,env:test",
                "keyhole_agent_since_last_render_seconds:0.5|g|#env:test",
            ]
        );
        let later = TEXT
            .replace("/db\"} 2", "/db\"} 5")
            .replace("\"success\"} 0", "\"success\"} 1");
        assert_eq!(
            server.lines(&samples(&later))[..2],
            [
                "keyhole_agent_renders_total:3|c|#destination:/vault/secrets/db,env:test",
                "keyhole_agent_logins_total:1|c|#outcome:success,env:test",
            ]
        );
    }

    #[test]
    fn plain_statsd_puts_label_values_in_the_name() {
        let mut server = Server::new("127.0.0.1:8125", Dialect::Statsd, Some("node-1"));
        assert_eq!(
            server.lines(&samples(TEXT))[2..],
            [
                "keyhole_agent_lease_remaining_seconds.database/creds/app.node-1:3600|g",
                "keyhole_agent_since_last_render_seconds.node-1:0.5|g",
            ]
        );
    }

    #[test]
    fn lines_are_packed_into_datagrams_that_fit_a_frame() {
        let lines: Vec<String> = (0..100).map(|i| format!("metric_{i:03}:1|c")).collect();
        let datagrams = datagrams(&lines);
        assert!(datagrams.len() > 1);
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let joined: Vec<u8> = datagrams.join(&b'\n');
        assert_eq!(joined, lines.join("\n").into_bytes());
    }
}
