//! Bounds on what one admission review may ask of the injector.
//!
//! Annotations come from whoever can create a pod, and the webhook fails
//! closed: a review that exhausts the injector's memory or time stops pod
//! creation for everyone. Every count and size that the mutation's work grows
//! with is checked against these limits before that work starts, and a pod over
//! one is denied with the limit and its own count. Each limit sits well above
//! what real pods use.

/// Bytes of all of a pod's annotations, keys and values together. Kubernetes
/// refuses larger annotations too, but only after mutating webhooks ran.
pub const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

/// Secrets (`agent-inject-secret-*`, `agent-inject-template-*`) in one pod.
pub const MAX_SECRETS: usize = 128;

/// Bytes of one inline template (`agent-inject-template-*`).
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Distinct secrets volumes (`secret-volume-path` values) in one pod; each is
/// mounted into every selected container.
pub const MAX_SECRET_VOLUMES: usize = 16;

/// Containers and init containers of a pod that asks for injection. Each gets
/// the secrets volumes, so the patch grows with their product.
pub const MAX_CONTAINERS: usize = 100;

/// Volumes of a pod that asks for injection. The patch builder looks at each
/// one, and a long list of tiny volumes is the cheapest way to make a review
/// cost memory.
pub const MAX_VOLUMES: usize = 1024;

/// Bytes of the JSON Patch sent back. The patched pod must still fit in what
/// the API server stores (1.5 MiB).
pub const MAX_PATCH_BYTES: usize = 1024 * 1024;

/// Bytes of one JSON patch of an agent container (`agent-json-patch`,
/// `agent-init-json-patch`); also how much its `copy` operations may add.
pub const MAX_JSON_PATCH_BYTES: usize = 64 * 1024;

/// Operations in one JSON patch of an agent container. Each is applied and
/// checked on its own, so the work grows with their number.
pub const MAX_JSON_PATCH_OPS: usize = 100;

/// Bytes of manifests `keyhole-injector mutate` reads from one file or
/// standard input. CI runs it on files from pull requests, which are as
/// untrusted as the pods the webhook sees.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;

/// Refused annotations `mutate --check` reports for one pod. Each one costs
/// another pass of the mutation over the pod.
pub const MAX_DENIALS_PER_POD: usize = 16;

/// Lists inside Lists whose items `mutate` looks into. Kubernetes takes no
/// List inside a List; this one level is checked anyway, so that nothing a
/// file holds passes unseen.
pub const MAX_LIST_NESTING: usize = 2;
