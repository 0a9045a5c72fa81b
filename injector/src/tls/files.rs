//! Certificate and key files, reloaded when they change on disk.
//!
//! cert-manager and kubelet (for Secret volumes) replace files by swapping a
//! `..data` symlink in the mounted directory, so the watch is on the directories
//! holding the files, not on the files themselves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{CertStore, Error, Result};
use crate::metrics::TlsMetrics;

/// How long to wait for a burst of file events (key and cert written one after
/// the other) to settle before reloading.
const SETTLE: Duration = Duration::from_millis(200);

/// A PEM certificate chain file and its private key file.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf.
    pub key: PathBuf,
}

impl CertFiles {
    /// Reads and checks both files.
    pub fn load(&self) -> Result<CertifiedKey> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| Error::Read {
                path: path.display().to_string(),
                error,
            })
        };
        super::certified_key(
            &read(&self.cert)?,
            &self.cert.display().to_string(),
            &read(&self.key)?,
            &self.key.display().to_string(),
        )
    }

    /// Reloads the files into `store` once the watch is set up and whenever their
    /// directories change, until the task is dropped. A failed reload keeps the
    /// certificate already served.
    pub async fn watch(self, store: CertStore, metrics: TlsMetrics) -> Result<()> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if event.is_ok_and(|event| changes_content(&event.kind)) {
                // The receiver only goes away when the watch task ends.
                let _ = tx.send(());
            }
        })
        .map_err(|error| self.watch_error(&self.cert, error))?;
        let dirs: BTreeSet<&Path> = [&self.cert, &self.key]
            .into_iter()
            .map(|path| directory(path))
            .collect();
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|error| self.watch_error(dir, error))?;
        }
        // The files may have changed between the first load and the watch.
        self.reload(&store, &metrics);
        while rx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            self.reload(&store, &metrics);
        }
        Ok(())
    }

    fn reload(&self, store: &CertStore, metrics: &TlsMetrics) {
        match self.load() {
            Ok(key) => {
                if store.get().is_some_and(|current| current.cert == key.cert) {
                    return;
                }
                store.set(key);
                metrics.reloaded(true);
                info!(cert = %self.cert.display(), "reloaded TLS certificate");
            }
            Err(error) => {
                metrics.reloaded(false);
                warn!(%error, "TLS certificate not reloaded, keeping the current one");
            }
        }
    }

    fn watch_error(&self, path: &Path, error: notify::Error) -> Error {
        Error::Watch {
            path: path.display().to_string(),
            error,
        }
    }
}

/// Whether a file event can mean new content. Opening and reading (which the
/// reload itself does) must not trigger another reload.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(access) => *access == AccessKind::Close(AccessMode::Write),
        EventKind::Any | EventKind::Other => false,
    }
}

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
