//! `agent-json-patch` and `agent-init-json-patch`: a pod author's RFC 6902
//! JSON patch of an agent container, applied as vault-k8s applies it, and the
//! checks that keep what keyhole guarantees after it.
//!
//! The pod author owns the pod and may run any container in it, so a patch
//! gains them nothing over a container of their own as long as the agent
//! still does what admission checked: it runs keyhole's image and command
//! with the config and Vault address that passed the operator's policy, and
//! it writes the secrets and its token only to the volumes keyhole mounted
//! for them, which app containers outside `agent-inject-containers` cannot
//! see. Everything else is the author's to change: more volume mounts,
//! environment variables, a security context, resources, probes.
//!
//! The patch comes from an untrusted author, so its work is bounded: its
//! size and number of operations when it is read ([`crate::limits`]), and
//! here what its `copy` operations may add.

use keyhole_agent::config::{CONFIG_ENV, VAULT_ADDR_ENV};
use serde_json::Value;

use crate::annotations::keys::{IMAGE, Key};
use crate::denial::Denial;
use crate::limits::MAX_JSON_PATCH_BYTES;

/// Applies `patch`, from annotation `key`, to the agent container
/// `container`, whose own volumes are mounted at `own_dirs`; the patched
/// container, or a denial naming `key` when the patch fails or undoes what
/// keyhole guarantees.
pub fn apply(
    container: &Value,
    patch: &json_patch::Patch,
    key: Key,
    own_dirs: &[&str],
) -> Result<Value, Denial> {
    let mut patched = container.clone();
    let mut copy_budget = MAX_JSON_PATCH_BYTES;
    for (index, operation) in patch.0.iter().enumerate() {
        // A copy duplicates what is already there, so operations that copy
        // the copy would double the container each time.
        if let json_patch::PatchOperation::Copy(copy) = operation {
            let size = patched
                .pointer(copy.from.as_str())
                .map_or(0, |from| size_up_to(from, copy_budget));
            if size > copy_budget {
                return Err(Denial::new(
                    key,
                    format!(
                        "operation {index} copies more than the {MAX_JSON_PATCH_BYTES} bytes \
                         a patch may copy"
                    ),
                ));
            }
            copy_budget -= size;
        }
        json_patch::patch(&mut patched, std::slice::from_ref(operation)).map_err(|err| {
            Denial::new(
                key,
                format!(
                    "operation {index} ({operation_name}) failed at {path:?}: {kind}",
                    operation_name = op_name(operation),
                    path = err.path.as_str(),
                    kind = err.kind
                ),
            )
        })?;
    }
    // vault-k8s reads the result back as a container: a field of the wrong
    // type fails there, and so it does here. The path is named, not the value.
    if let Err(err) =
        serde_path_to_error::deserialize::<_, k8s_openapi::api::core::v1::Container>(&patched)
    {
        return Err(Denial::new(
            key,
            format!(
                "the patched agent container is not a valid container at {}",
                err.path()
            ),
        ));
    }
    check_kept(container, &patched, own_dirs).map_err(|reason| Denial::new(key, reason))?;
    Ok(patched)
}

/// Why a container's field may not be patched, by field.
const FIXED_FIELDS: [(&str, &str); 5] = [
    ("name", "keyhole finds its agent by it"),
    ("image", ""),
    ("command", "it starts keyhole-agent"),
    ("args", "they name the agent's config"),
    (
        "restartPolicy",
        "it makes the agent a native sidecar or not",
    ),
];

/// Environment variables that say what the agent reads and from which Vault.
const FIXED_ENV: [&str; 2] = [CONFIG_ENV, VAULT_ADDR_ENV];

/// Whether `patched` still is the agent admission checked; the reason when not.
fn check_kept(original: &Value, patched: &Value, own_dirs: &[&str]) -> Result<(), String> {
    for (field, why) in FIXED_FIELDS {
        if original.get(field) != patched.get(field) {
            let why = if field == "image" {
                format!("set {IMAGE} instead")
            } else {
                why.to_owned()
            };
            return Err(format!(
                "the patch changes the agent container's {field}, which keyhole sets: {why}"
            ));
        }
    }
    let fixed_env = |container: &Value| -> Vec<Value> {
        list(container, "env")
            .iter()
            .filter(|var| FIXED_ENV.iter().any(|name| var["name"] == *name))
            .cloned()
            .collect()
    };
    if fixed_env(original) != fixed_env(patched) {
        return Err(format!(
            "the patch sets {CONFIG_ENV} or {VAULT_ADDR_ENV}, which carry the agent config and \
             Vault address that admission checked"
        ));
    }
    if list(original, "envFrom") != list(patched, "envFrom") {
        return Err(format!(
            "the patch adds envFrom, which could set {VAULT_ADDR_ENV} past the checks of \
             admission; set single variables under env instead"
        ));
    }
    let mounts = list(patched, "volumeMounts");
    let own_mounts = list(original, "volumeMounts");
    if let Some(gone) = own_mounts.iter().find(|m| !mounts.contains(m)) {
        return Err(format!(
            "the patch removes or changes the agent's mount of volume {} at {}",
            gone["name"], gone["mountPath"]
        ));
    }
    for mount in mounts.iter().filter(|m| !own_mounts.contains(m)) {
        let path = mount["mountPath"].as_str().unwrap_or_default();
        if let Some(dir) = own_dirs.iter().find(|dir| is_within(path, dir)) {
            return Err(format!(
                "the patch mounts volume {} at {path}, in {dir}, where the agent has its own \
                 volume",
                mount["name"]
            ));
        }
    }
    Ok(())
}

/// The list `field` of a container, empty when absent.
fn list<'a>(container: &'a Value, field: &str) -> &'a [Value] {
    container
        .get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Whether `path` is `dir` or inside it, ignoring trailing slashes.
pub fn is_within(path: &str, dir: &str) -> bool {
    let path = path.trim_end_matches('/');
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The `op` of an operation, as written.
fn op_name(operation: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation::{Add, Copy, Move, Remove, Replace, Test};
    match operation {
        Add(_) => "add",
        Remove(_) => "remove",
        Replace(_) => "replace",
        Move(_) => "move",
        Copy(_) => "copy",
        Test(_) => "test",
    }
}

/// The length of `value` as JSON, counted up to just past `limit`.
fn size_up_to(value: &Value, limit: usize) -> usize {
    struct Counter {
        bytes: usize,
        limit: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes > self.limit {
                // Stops the serialiser: the size is known to be too large.
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, limit };
    // The only error is the counter's own stop.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_within_a_directory() {
        assert!(is_within("/vault/secrets", "/vault/secrets/"));
        assert!(is_within("/vault/secrets/x", "/vault/secrets"));
        assert!(!is_within("/vault/secrets-x", "/vault/secrets"));
        assert!(!is_within("/vault", "/vault/secrets"));
    }

    #[test]
    fn sizes_are_counted_up_to_just_past_the_limit() {
        let value = Value::String("x".repeat(100));
        assert_eq!(size_up_to(&value, 1000), 102);
        assert!(size_up_to(&value, 10) > 10);
    }
}
