//! Where things live inside the injected agent container. The patch mounts
//! volumes here, the agent's config points at them, and annotations may not
//! mount secrets over them.

/// The agent's writable home directory.
pub const HOME: &str = "/home/vault";
/// The auto-auth token sink.
pub const TOKEN_SINK: &str = "/home/vault/.vault-token";
/// The agent's pid file.
pub const PID_FILE: &str = "/home/vault/.pid";
/// Created by the agent once every template has rendered; `keyhole-agent probe` checks it.
pub const READY_FILE: &str = "/home/vault/.ready";
/// Touched by the running agent every few seconds; `keyhole-agent probe --live` checks it.
pub const HEARTBEAT_FILE: &str = "/home/vault/.heartbeat";
/// Where the service-account token for login is mounted in the agent.
pub const SA_TOKEN_DIR: &str = "/var/run/secrets/vault.hashicorp.com/serviceaccount";
/// The persistent cache, where one agent of the pod leaves its token and
/// leases for the next: a memory volume only the agent containers mount.
pub const CACHE_DIR: &str = "/vault/agent-cache";
/// The user's agent config from `agent-configmap`.
pub const CONFIG_DIR: &str = "/vault/configs";
/// The Kubernetes Secret from `tls-secret`.
pub const TLS_DIR: &str = "/vault/tls";
/// The Kubernetes Secret from `agent-extra-secret`.
pub const EXTRA_SECRET_DIR: &str = "/vault/custom";
