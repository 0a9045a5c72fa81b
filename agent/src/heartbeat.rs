//! Liveness: while the agent runs, its task touches a heartbeat file every
//! few seconds, and `keyhole-agent probe --live` fails once the file is stale.
//!
//! The agent runs on one thread, and the heartbeat beats on that thread
//! between the agent's own steps. Waiting on Vault, however long an outage
//! lasts, leaves the thread free, so the heartbeat stays fresh and a healthy
//! agent is never restarted for an outage. A wedged agent, whose thread is
//! stuck in a blocking call or a loop that never yields, stops beating, and
//! the kubelet restarts it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use tracing::warn;

/// How often the heartbeat file is touched.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// How old the heartbeat may be before the probe fails: several missed beats,
/// so a slow disk or a busy node does not restart a healthy agent.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Runs `work`, touching the file at `path` every [`INTERVAL`] while it runs
/// (first at once); with no path, just runs `work`.
pub async fn keep_beating<F: Future>(path: Option<&Path>, work: F) -> F::Output {
    let mut work = pin!(work);
    let Some(path) = path else {
        return work.await;
    };
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return output,
            _ = ticks.tick() => {
                if let Err(err) = beat(path) {
                    warn!(path = %path.display(), error = %err, "cannot touch the heartbeat file");
                }
            }
        }
    }
}

/// Sets the heartbeat file's modification time to now, creating it.
fn beat(path: &Path) -> io::Result<()> {
    let file = File::options().create(true).append(true).open(path)?;
    file.set_modified(SystemTime::now())
}

/// Whether the heartbeat at `path` was touched within [`STALE_AFTER`] of
/// `now`. A missing or unreadable file is not fresh.
pub fn is_fresh(path: &Path, now: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|touched| {
            now.duration_since(touched)
                .map_or(true, |age| age <= STALE_AFTER)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_goes_stale_after_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("heartbeat");
        assert!(!is_fresh(&path, SystemTime::now()), "missing file");

        beat(&path).expect("beat");
        let touched = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(is_fresh(&path, touched + STALE_AFTER));
        assert!(!is_fresh(
            &path,
            touched + STALE_AFTER + Duration::from_secs(1)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn beats_while_the_work_waits_and_stops_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("heartbeat");
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let beating = {
            let path = path.clone();
            tokio::spawn(async move {
                keep_beating(Some(&path), async { rx.await.expect("sent") }).await
            })
        };
        tokio::task::yield_now().await;
        assert!(path.exists(), "beats at once");

        std::fs::remove_file(&path).expect("remove");
        tokio::time::sleep(INTERVAL).await;
        tokio::task::yield_now().await;
        assert!(path.exists(), "beats again after the interval");

        tx.send(7).expect("send");
        assert_eq!(beating.await.expect("joined"), 7);
    }
}
