//! KV version 2 path rewriting, as consul-template does it.
//!
//! Templates written for Vault Agent may read a KV v2 secret by its short
//! path (`secret "secret/app"`) or list it (`secrets "secret/team"`);
//! consul-template asks Vault which mount the path is on and, for a KV v2
//! mount, inserts `data/` (reads) or `metadata/` (lists) after the mount.
//! keyhole does the same, and remembers the answer for each path so the
//! lookup costs one request per path for the agent's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

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
    resolved: Mutex<HashMap<(String, Operation), String>>,
}

impl KvPaths {
    /// The API path for `path`: with `data/` or `metadata/` inserted when it
    /// is on a KV v2 mount and not already there. A query (`?version=1`)
    /// is kept. When the mount cannot be looked up, the path is used as
    /// written.
    pub async fn resolve(&self, client: &Client, path: &str, operation: Operation) -> String {
        let key = (path.to_owned(), operation);
        if let Some(resolved) = self.lookup(&key) {
            return resolved;
        }
        let (bare, query) = match path.split_once('?') {
            Some((bare, query)) => (bare, Some(query)),
            None => (path, None),
        };
        let bare = bare.trim_matches('/');
        let resolved = match kv2_mount(client, bare).await {
            Some(mount) => {
                let rewritten = add_prefix(bare, &mount, operation.prefix());
                match query {
                    Some(query) => format!("{rewritten}?{query}"),
                    None => rewritten,
                }
            }
            None => path.to_owned(),
        };
        if let Ok(mut cache) = self.resolved.lock() {
            cache.insert(key, resolved.clone());
        }
        resolved
    }

    fn lookup(&self, key: &(String, Operation)) -> Option<String> {
        self.resolved.lock().ok()?.get(key).cloned()
    }
}

/// The mount `path` is on, when it is a KV version 2 mount.
async fn kv2_mount(client: &Client, path: &str) -> Option<String> {
    let mount = client
        .read(&format!("sys/internal/ui/mounts/{path}"))
        .await
        .ok()?;
    let version = mount.data.get("options")?.get("version")?;
    let is_v2 = match version {
        Value::String(v) => v == "2",
        Value::Number(n) => n.as_u64() == Some(2),
        _ => false,
    };
    if mount.data.get("type")?.as_str()? != "kv" || !is_v2 {
        return None;
    }
    Some(
        mount
            .data
            .get("path")?
            .as_str()?
            .trim_matches('/')
            .to_owned(),
    )
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
    use super::add_prefix;

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
