//! The parts of a pod that the mutation reads, deserialised from the review
//! without the rest.
//!
//! k8s-openapi's `Pod` is the wrong type to read a pod author's JSON into at
//! admission: its structs are large (a `Volume` takes 3 KiB, a `Container`
//! 2 KiB), so a 3 MiB review listing many `{"name":"v"}` volumes would cost
//! hundreds of MiB. These views keep only the fields keyhole looks at, with the
//! same names, and serde skips everything else without allocating, so memory
//! per review stays a small multiple of its size. The webhook reads a
//! [`PodHead`] first and the spec only for pods that get the agent, whose
//! lists of containers and volumes are read up to their limits.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::limits::{MAX_ANNOTATION_BYTES, MAX_CONTAINERS, MAX_VOLUMES};

/// A pod's metadata, enough to tell whether it gets the agent, and its spec
/// as the review's text, read ([`PodHead::read_spec`]) only for pods that get
/// the agent. One pass over the pod finds both.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PodHead<'a> {
    /// The pod's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The pod's spec, unread.
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

impl PodHead<'_> {
    /// The pod's name, or its `generateName` prefix when it has none yet.
    pub fn name(&self) -> &str {
        self.metadata.name()
    }

    /// The pod's spec, its lists read up to their limits.
    pub fn read_spec(&self) -> Result<Option<PodSpec>, serde_json::Error> {
        self.spec
            .map_or(Ok(None), |text| serde_json::from_str(text.get()))
    }
}

/// A pod, as far as the mutation reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Pod {
    /// The pod's metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The pod's spec; absent only in files `mutate` reads.
    pub spec: Option<PodSpec>,
}

impl Pod {
    /// The view of a typed pod.
    pub fn from_k8s(pod: &k8s_openapi::api::core::v1::Pod) -> Result<Self, serde_json::Error> {
        serde_json::to_value(pod).and_then(serde_json::from_value)
    }

    /// The pod's name, or its `generateName` prefix when it has none yet.
    pub fn name(&self) -> &str {
        self.metadata.name()
    }
}

/// The metadata fields keyhole reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.generateName`.
    pub generate_name: Option<String>,
    /// `metadata.annotations`, at most [`MAX_ANNOTATION_BYTES`] of them.
    #[serde(default, deserialize_with = "bounded_annotations")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ObjectMeta {
    /// The view of typed metadata.
    pub fn from_k8s(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            name: meta.name.clone(),
            generate_name: meta.generate_name.clone(),
            annotations: meta.annotations.clone(),
        }
    }

    /// The name, or the `generateName` prefix when there is none yet.
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.generate_name.as_deref())
            .unwrap_or_default()
    }
}

/// The spec fields keyhole reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// `spec.containers`, at most [`MAX_CONTAINERS`].
    #[serde(default, deserialize_with = "containers")]
    pub containers: Vec<Container>,
    /// `spec.initContainers`, at most [`MAX_CONTAINERS`].
    #[serde(default, deserialize_with = "init_containers")]
    pub init_containers: Option<Vec<Container>>,
    /// `spec.volumes`, at most [`MAX_VOLUMES`].
    #[serde(default, deserialize_with = "volumes")]
    pub volumes: Option<Vec<Volume>>,
    /// `spec.shareProcessNamespace`.
    pub share_process_namespace: Option<bool>,
    /// `spec.hostNetwork`.
    pub host_network: Option<bool>,
}

/// The container fields keyhole reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container's name.
    #[serde(default)]
    pub name: String,
    /// Its volume mounts.
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Its security context.
    pub security_context: Option<SecurityContext>,
    /// The ports it declares.
    pub ports: Option<Vec<ContainerPort>>,
}

/// A port a container declares, which the agent's metrics port must not take.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// `containerPort`.
    #[serde(default)]
    pub container_port: i32,
    /// `protocol`: `TCP` when absent.
    pub protocol: Option<String>,
}

/// A container's volume mount, whole, since `agent-copy-volume-mounts`
/// copies it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume mounted.
    #[serde(default)]
    pub name: String,
    /// Where it is mounted.
    #[serde(default)]
    pub mount_path: String,
    /// `readOnly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `recursiveReadOnly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive_read_only: Option<String>,
    /// `subPath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// `subPathExpr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_path_expr: Option<String>,
    /// `mountPropagation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<String>,
}

/// The security context fields keyhole reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
}

/// The volume fields keyhole reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Volume {
    /// The volume's name.
    #[serde(default)]
    pub name: String,
    /// A projected volume's sources.
    pub projected: Option<ProjectedVolume>,
}

/// A projected volume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ProjectedVolume {
    /// What it projects.
    pub sources: Option<Vec<VolumeProjection>>,
}

/// One source of a projected volume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeProjection {
    /// A service-account token projection.
    pub service_account_token: Option<ServiceAccountTokenProjection>,
}

/// A service-account token projection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ServiceAccountTokenProjection {
    /// The token's file name in the volume.
    #[serde(default)]
    pub path: String,
}

/// A list read up to `max` items, failing at the next one, before a list the
/// size of a whole review is built.
struct Bounded<T> {
    field: &'static str,
    max: usize,
    item: PhantomData<T>,
}

impl<T> Bounded<T> {
    fn new(field: &'static str, max: usize) -> Self {
        Self {
            field,
            max,
            item: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
    type Value = Option<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} items", self.max)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.len() == self.max {
                return Err(serde::de::Error::custom(format!(
                    "{}: more than {}, the limit for a pod that gets the agent",
                    self.field, self.max
                )));
            }
            items.push(item);
        }
        Ok(Some(items))
    }
}

fn containers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Container>, D::Error> {
    let bounded = Bounded::new("spec.containers", MAX_CONTAINERS);
    Ok(d.deserialize_option(bounded)?.unwrap_or_default())
}

fn init_containers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Container>>, D::Error> {
    d.deserialize_option(Bounded::new("spec.initContainers", MAX_CONTAINERS))
}

fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Volume>>, D::Error> {
    d.deserialize_option(Bounded::new("spec.volumes", MAX_VOLUMES))
}

/// Reads `metadata.annotations`, failing as soon as keys and values pass
/// [`MAX_ANNOTATION_BYTES`], before a map of a whole 3 MiB review is built.
fn bounded_annotations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Bounded;

    impl<'de> Visitor<'de> for Bounded {
        type Value = Option<BTreeMap<String, String>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of strings")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut annotations = BTreeMap::new();
            let mut bytes = 0;
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                bytes += key.len() + value.len();
                if bytes > MAX_ANNOTATION_BYTES {
                    return Err(serde::de::Error::custom(format!(
                        "metadata.annotations: over the limit of {MAX_ANNOTATION_BYTES} bytes"
                    )));
                }
                annotations.insert(key, value);
            }
            Ok(Some(annotations))
        }
    }

    deserializer.deserialize_option(Bounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_keyhole_uses_and_skips_the_rest() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": "web-", "labels": {"a": "b"},
                         "annotations": {"k": "v"}, "managedFields": [{}, {}]},
            "spec": {
                "containers": [{"name": "app", "image": "x", "env": [{"name": "E"}],
                                "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                                "securityContext": {"runAsUser": 7, "privileged": false}}],
                "volumes": [{"name": "t", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}],
                "shareProcessNamespace": true,
                "nodeSelector": {"x": "y"},
            },
        }))
        .expect("pod");
        assert_eq!(pod.name(), "web-");
        let spec = pod.spec.expect("spec");
        assert_eq!(
            spec.containers[0].volume_mounts.as_ref().expect("mounts")[0].mount_path,
            "/v"
        );
        assert_eq!(
            spec.containers[0]
                .security_context
                .as_ref()
                .and_then(|s| s.run_as_user),
            Some(7)
        );
        assert_eq!(spec.share_process_namespace, Some(true));
        assert_eq!(pod.metadata.annotations.expect("annotations")["k"], "v");
    }

    #[test]
    fn stops_reading_annotations_past_the_limit() {
        let big = "x".repeat(MAX_ANNOTATION_BYTES);
        let err = serde_json::from_value::<Pod>(serde_json::json!({
            "metadata": {"annotations": {"a": big}},
        }))
        .expect_err("over the limit");
        assert!(
            err.to_string()
                .starts_with("metadata.annotations: over the limit of 262144 bytes"),
            "{err}"
        );
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"annotations": null},
        }))
        .expect("null annotations");
        assert_eq!(pod.metadata.annotations, None);
    }
}
