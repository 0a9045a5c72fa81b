//! KV version 2 path rewriting, as consul-template does it.
//!
//! Templates written for Vault Agent may read a KV v2 secret by its short
//! path (`secret "secret/app"`) or list it (`secrets "secret/team"`);
//! consul-template asks Vault which mount the path is on and, for a KV v2
//! mount, inserts `data/` (reads) or `metadata/` (lists) after the mount.
//! keyhole does the same. Vault refuses overlapping mounts, so a mount found
//! once answers for every path under it: the lookup costs one request per
//! mount for the agent's lifetime, not one per path.

use serde_json::Value;
use tokio::sync::Mutex;

use super::Client;

/// What a path is used for, which decides the KV v2 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A read: `data/`.
    Read,
    /// A list: `metadata/`.
    List,
}

impl Operation {
    fn prefix(self) -> &'static str {
        match self {
            Operation::Read => "data",
            Operation::List => "metadata",
        }
    }
}

/// Resolves template paths to the API paths Vault serves them at.
#[derive(Debug, Default)]
pub struct KvPaths {
    /// Mounts found so far, and whether each is KV version 2. Held across
    /// the lookup, so that paths fetched in parallel wait for one lookup
    /// instead of each making their own.
    mounts: Mutex<Vec<Mount>>,
}

#[derive(Debug)]
struct Mount {
    path: String,
    kv2: bool,
}

impl Mount {
    fn holds(&self, path: &str) -> bool {
        path == self.path
            || path
                .strip_prefix(&self.path)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl KvPaths {
    /// The API path for `path`: with `data/` or `metadata/` inserted when it
    /// is on a KV v2 mount and not already there. A query (`?version=1`)
    /// is kept. When the mount cannot be looked up, the path is used as
    /// written.
    pub async fn resolve(&self, client: &Client, path: &str, operation: Operation) -> String {
        let (bare, query) = match path.split_once('?') {
            Some((bare, query)) => (bare, Some(query)),
            None => (path, None),
        };
        let bare = bare.trim_matches('/');
        let mut mounts = self.mounts.lock().await;
        if !mounts.iter().any(|m| m.holds(bare))
            && let Some(mount) = lookup(client, bare).await
        {
            mounts.push(mount);
        }
        match mounts.iter().find(|m| m.holds(bare) && m.kv2) {
            Some(mount) => {
                let rewritten = add_prefix(bare, &mount.path, operation.prefix());
                match query {
                    Some(query) => format!("{rewritten}?{query}"),
                    None => rewritten,
                }
            }
            None => path.to_owned(),
        }
    }
}

/// The mount `path` is on, or `None` when Vault does not say (the token may
/// not see it); the path is then used as written.
async fn lookup(client: &Client, path: &str) -> Option<Mount> {
    let mount = client
        .read(&format!("sys/internal/ui/mounts/{path}"))
        .await
        .ok()?;
    let kv2 = mount.data.get("type").and_then(Value::as_str) == Some("kv")
        && match mount.data.get("options").and_then(|o| o.get("version")) {
            Some(Value::String(v)) => v == "2",
            Some(Value::Number(n)) => n.as_u64() == Some(2),
            _ => false,
        };
    let path = mount
        .data
        .get("path")?
        .as_str()?
        .trim_matches('/')
        .to_owned();
    Some(Mount { path, kv2 })
}

/// Inserts `prefix` after `mount` unless the path already has it.
fn add_prefix(path: &str, mount: &str, prefix: &str) -> String {
    let rest = path
        .strip_prefix(mount)
        .unwrap_or(path)
        .trim_start_matches('/');
    if rest.is_empty() {
        return format!("{mount}/{prefix}");
    }
    if rest == prefix || rest.starts_with(&format!("{prefix}/")) {
        return format!("{mount}/{rest}");
    }
    format!("{mount}/{prefix}/{rest}")
}

#[cfg(test)]
mod tests {
    use super::{Mount, add_prefix};

    #[test]
    fn a_mount_holds_only_paths_below_it() {
        let mount = Mount {
            path: "secret".to_owned(),
            kv2: true,
        };
        assert!(mount.holds("secret"));
        assert!(mount.holds("secret/app/db"));
        assert!(!mount.holds("secrets/app"));
    }

    #[test]
    fn inserts_data_after_the_mount() {
        assert_eq!(
            add_prefix("secret/app", "secret", "data"),
            "secret/data/app"
        );
        assert_eq!(
            add_prefix("kv/team/a/b", "kv/team", "data"),
            "kv/team/data/a/b"
        );
    }

    #[test]
    fn keeps_a_prefix_written_by_hand() {
        assert_eq!(
            add_prefix("secret/data/app", "secret", "data"),
            "secret/data/app"
        );
        assert_eq!(
            add_prefix("secret/metadata/team", "secret", "metadata"),
            "secret/metadata/team"
        );
    }

    #[test]
    fn mount_itself_gets_the_prefix() {
        assert_eq!(
            add_prefix("secret", "secret", "metadata"),
            "secret/metadata"
        );
    }

    #[test]
    fn a_key_merely_starting_with_data_still_gets_the_prefix() {
        assert_eq!(
            add_prefix("secret/database", "secret", "data"),
            "secret/data/database"
        );
    }
}
