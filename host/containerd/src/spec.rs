//! The OCI spec containerd stored for a container: read it, learn from it, patch it.
//!
//! On containerd 2.0/2.1 (NRI v0.8) the only way to change capabilities, seccomp,
//! no_new_privileges or a read-only rootfs is to rewrite the stored spec with
//! `Containers.Update` (field mask `spec`) during NRI PostCreateContainer: the container record
//! exists by then, and the task created at start reads the stored spec. Every patch is read back
//! and verified, because "the update returned OK" is not proof the container will run hardened.
//!
//! The spec is stored as a protobuf `Any` holding the OCI JSON. `oci-spec` models most but maybe
//! not every field containerd writes, so a patch is written back as: the patched spec, plus
//! every JSON member of the stored document that `oci-spec` did not model (restored where its
//! parent object still exists). Nothing containerd wrote is lost by passing through this crate.

mod facts;
mod harden;

use std::time::{Duration, Instant};

use containerd_client::services::v1::{
    Container, GetContainerRequest, GetRequest, UpdateContainerRequest,
};
use oci_spec::runtime::Spec;
use prost_types::{Any, FieldMask};
use serde::Deserialize;
use serde_json::Value;
use tonic::Code;

pub use facts::{CapabilitySets, Privileged, SpecFacts, facts, facts_in_pod};
pub use harden::{
    CapabilitySet, Hardening, Missing, add_env, drop_capabilities, keep_only_capabilities,
    set_no_new_privileges, set_readonly_rootfs, set_seccomp,
};

use crate::{Containerd, Error, Result};

/// The type URL containerd stores the spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// A container's spec as stored, with what is needed to write a patched version back faithfully.
#[derive(Clone, Debug)]
pub struct StoredSpec {
    /// The parsed spec; patch this.
    pub spec: Spec,
    /// The `Any` type URL exactly as containerd stored it.
    type_url: String,
    /// The stored JSON document.
    raw: Value,
    /// `raw` as `oci-spec` re-serializes it: the difference is what it does not model.
    modelled: Value,
}

impl StoredSpec {
    /// The spec of a container record.
    pub(crate) fn from_record(container_id: &str, record: Container) -> Result<Self> {
        let any = record.spec.ok_or_else(|| Error::NoSpec {
            container_id: container_id.to_owned(),
        })?;
        Self::decode(container_id, any)
    }

    /// Parses a stored `Any`.
    fn decode(container_id: &str, any: Any) -> Result<Self> {
        let decode = |source| Error::SpecDecode {
            container_id: container_id.to_owned(),
            source,
        };
        let raw: Value = serde_json::from_slice(&any.value).map_err(decode)?;
        // Deserialized from the parsed tree by reference: no second parse, no copy of it.
        let spec = Spec::deserialize(&raw).map_err(decode)?;
        let modelled = serde_json::to_value(&spec).map_err(decode)?;
        Ok(Self {
            spec,
            type_url: any.type_url,
            raw,
            modelled,
        })
    }

    /// The `Any` to store for `self.spec`.
    fn encode(&self, container_id: &str) -> Result<Any> {
        let encode = |source| Error::SpecEncode {
            container_id: container_id.to_owned(),
            source,
        };
        let mut value = serde_json::to_value(&self.spec).map_err(encode)?;
        restore_unmodelled(&mut value, &self.raw, &self.modelled);
        Ok(Any {
            type_url: self.type_url.clone(),
            value: serde_json::to_vec(&value).map_err(encode)?,
        })
    }

    /// JSON members of the stored document `oci-spec` drops on a round trip, as paths
    /// (`/linux/someNewField`); empty when the round trip is lossless.
    pub fn unmodelled_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_unmodelled(&self.raw, &self.modelled, String::new(), &mut out);
        out
    }
}

/// Puts back into `patched` every object member of `raw` missing from `modelled` (unknown to
/// oci-spec), recursing through objects present in all three. Arrays are not entered: their
/// elements can be reordered or removed by a patch, so positions do not correspond.
fn restore_unmodelled(patched: &mut Value, raw: &Value, modelled: &Value) {
    let (Value::Object(patched), Value::Object(raw), Value::Object(modelled)) =
        (patched, raw, modelled)
    else {
        return;
    };
    for (key, raw_value) in raw {
        match (modelled.get(key), patched.get_mut(key)) {
            (None, None) => {
                patched.insert(key.clone(), raw_value.clone());
            }
            (Some(modelled_value), Some(patched_value)) => {
                restore_unmodelled(patched_value, raw_value, modelled_value);
            }
            _ => {}
        }
    }
}

fn collect_unmodelled(raw: &Value, modelled: &Value, path: String, out: &mut Vec<String>) {
    let (Value::Object(raw), Value::Object(modelled)) = (raw, modelled) else {
        return;
    };
    for (key, raw_value) in raw {
        let here = format!("{path}/{key}");
        match modelled.get(key) {
            None => out.push(here),
            Some(modelled_value) => collect_unmodelled(raw_value, modelled_value, here, out),
        }
    }
}

/// The result of a successful [`Containerd::harden`].
#[derive(Clone, Debug)]
pub struct HardenOutcome {
    /// The spec as read back after the update, which carries every requested change.
    pub spec: Spec,
    /// Time for read + update + read-back + verify.
    pub elapsed: Duration,
    /// Time of the `Containers.Update` call alone.
    pub update: Duration,
}

impl Containerd {
    /// Reads a container's stored spec, keeping what is needed to write it back faithfully.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`] (as in NRI CreateContainer, before the record exists),
    /// [`Error::NoSpec`], [`Error::SpecDecode`], [`Error::Rpc`].
    pub async fn get_stored_spec(&self, container_id: &str) -> Result<StoredSpec> {
        let record = self.get_record(container_id).await?;
        StoredSpec::from_record(container_id, record)
    }

    /// `Containers.Get`: the whole container record.
    pub(crate) async fn get_record(&self, container_id: &str) -> Result<Container> {
        self.containers()
            .get(GetContainerRequest {
                id: container_id.to_owned(),
            })
            .await
            .map_err(|status| container_status("Containers.Get", container_id, status))?
            .into_inner()
            .container
            .ok_or_else(|| Error::ContainerNotFound {
                container_id: container_id.to_owned(),
            })
    }

    /// Reads a container's stored OCI spec (for [`facts()`]).
    ///
    /// # Errors
    /// As [`Containerd::get_stored_spec`].
    pub async fn get_spec(&self, container_id: &str) -> Result<Spec> {
        Ok(self.get_stored_spec(container_id).await?.spec)
    }

    /// Replaces a container's stored spec with `spec` (field mask `spec`, nothing else changes).
    ///
    /// Prefer [`Containerd::update_stored_spec`] with a spec from
    /// [`Containerd::get_stored_spec`]: it keeps the stored type URL and any field `oci-spec`
    /// does not model. This one writes `spec` as it is, under [`SPEC_TYPE_URL`].
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`], [`Error::SpecEncode`], [`Error::Rpc`].
    pub async fn update_spec(&self, container_id: &str, spec: &Spec) -> Result<()> {
        let value = serde_json::to_vec(spec).map_err(|source| Error::SpecEncode {
            container_id: container_id.to_owned(),
            source,
        })?;
        self.update_any(
            container_id,
            Any {
                type_url: SPEC_TYPE_URL.to_owned(),
                value,
            },
        )
        .await
        .map(drop)
    }

    /// Writes back a spec read with [`Containerd::get_stored_spec`] and patched in place, and
    /// returns the spec containerd **committed**, decoded from its reply (`Containers.Update`
    /// returns the stored record): verifying against it proves what was stored without a second
    /// `Get` on the NRI critical path. Falls back to a `Get` if a reply ever lacks the record.
    ///
    /// # Errors
    /// [`Error::ContainerNotFound`], [`Error::SpecEncode`], [`Error::SpecDecode`], [`Error::Rpc`].
    pub async fn update_stored_spec(
        &self,
        container_id: &str,
        stored: &StoredSpec,
    ) -> Result<Spec> {
        let any = stored.encode(container_id)?;
        match self.update_any(container_id, any).await? {
            // Only the spec is verified: decode it alone, not the tree kept for a write-back.
            Some(record) => {
                let any = record.spec.ok_or_else(|| Error::NoSpec {
                    container_id: container_id.to_owned(),
                })?;
                serde_json::from_slice(&any.value).map_err(|source| Error::SpecDecode {
                    container_id: container_id.to_owned(),
                    source,
                })
            }
            None => self.get_spec(container_id).await,
        }
    }

    /// `Containers.Update` of the spec alone; the committed record when the reply carries it.
    async fn update_any(&self, container_id: &str, spec: Any) -> Result<Option<Container>> {
        let request = UpdateContainerRequest {
            container: Some(Container {
                id: container_id.to_owned(),
                spec: Some(spec),
                ..Container::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["spec".to_owned()],
            }),
        };
        let reply = self
            .containers()
            .update(request)
            .await
            .map_err(|status| container_status("Containers.Update", container_id, status))?;
        Ok(reply.into_inner().container)
    }

    /// Hardens a container: checks it has no task yet, reads its spec, applies `hardening`,
    /// stores it, reads it back and verifies every requested change is there. Meant for NRI PostCreateContainer; the engine
    /// must refuse the start when this fails (fail closed).
    ///
    /// # Errors
    /// [`Error::TaskExists`] when it is too late to patch, [`Error::NotApplied`] naming the
    /// change missing after the update, or any error of
    /// [`Containerd::get_stored_spec`] and [`Containerd::update_stored_spec`].
    pub async fn harden(&self, container_id: &str, hardening: &Hardening) -> Result<HardenOutcome> {
        let started = Instant::now();
        self.ensure_no_task(container_id).await?;
        let mut stored = self.get_stored_spec(container_id).await?;
        hardening.apply(&mut stored.spec);
        let update_started = Instant::now();
        let spec = self.update_stored_spec(container_id, &stored).await?;
        let update = update_started.elapsed();
        hardening
            .verify(&spec)
            .map_err(|missing| Error::NotApplied {
                container_id: container_id.to_owned(),
                missing,
            })?;
        let elapsed = started.elapsed();
        tracing::debug!(container_id, ?elapsed, ?update, "hardened stored spec");
        Ok(HardenOutcome {
            spec,
            elapsed,
            update,
        })
    }
}

impl Containerd {
    /// Refuses to patch a container whose task exists: the patch would be read back fine and
    /// yet never reach the process — the one way a verified hardening could be a lie.
    async fn ensure_no_task(&self, container_id: &str) -> Result<()> {
        let request = GetRequest {
            container_id: container_id.to_owned(),
            exec_id: String::new(),
        };
        match self.tasks().get(request).await {
            Ok(_) => Err(Error::TaskExists {
                container_id: container_id.to_owned(),
            }),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(source) => Err(Error::Rpc {
                call: "Tasks.Get",
                subject: container_id.to_owned(),
                source,
            }),
        }
    }
}

fn container_status(call: &'static str, container_id: &str, status: tonic::Status) -> Error {
    if status.code() == Code::NotFound {
        Error::ContainerNotFound {
            container_id: container_id.to_owned(),
        }
    } else {
        Error::Rpc {
            call,
            subject: container_id.to_owned(),
            source: status,
        }
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Capability;
    use serde_json::json;

    use super::*;

    fn stored(json: Value) -> StoredSpec {
        let any = Any {
            type_url: SPEC_TYPE_URL.to_owned(),
            value: serde_json::to_vec(&json).unwrap(),
        };
        StoredSpec::decode("c1", any).unwrap()
    }

    #[test]
    fn unmodelled_fields_survive_a_patch() {
        let mut s = stored(json!({
            "ociVersion": "1.2.1",
            "futureTopLevel": {"x": 1},
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "futureProcessField": true,
                        "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"]}},
            "root": {"path": "rootfs"}
        }));
        assert_eq!(
            s.unmodelled_fields(),
            ["/futureTopLevel", "/process/futureProcessField"]
        );
        keep_only_capabilities(&mut s.spec, &[Capability::Kill].into());
        set_readonly_rootfs(&mut s.spec);
        let any = s.encode("c1").unwrap();
        assert_eq!(any.type_url, SPEC_TYPE_URL);
        let written: Value = serde_json::from_slice(&any.value).unwrap();
        assert_eq!(written["futureTopLevel"], json!({"x": 1}));
        assert_eq!(written["process"]["futureProcessField"], json!(true));
        assert_eq!(
            written["process"]["capabilities"]["bounding"],
            json!(["CAP_KILL"])
        );
        assert_eq!(written["root"]["readonly"], json!(true));
    }

    #[test]
    fn removed_modelled_fields_stay_removed() {
        let mut s = stored(json!({
            "ociVersion": "1.2.1",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["A=1"]},
        }));
        s.spec.process_mut().as_mut().unwrap().set_env(None);
        let written: Value = serde_json::from_slice(&s.encode("c1").unwrap().value).unwrap();
        assert!(written["process"].get("env").is_none());
    }

    #[test]
    fn type_url_is_kept_as_stored() {
        let mut s = stored(json!({"ociVersion": "1.2.1"}));
        s.type_url = "example/Other".to_owned();
        assert_eq!(s.encode("c1").unwrap().type_url, "example/Other");
    }

    #[test]
    fn undecodable_spec_names_the_container() {
        let any = Any {
            type_url: SPEC_TYPE_URL.to_owned(),
            value: b"{".to_vec(),
        };
        let err = StoredSpec::decode("c9", any).unwrap_err();
        assert!(matches!(err, Error::SpecDecode { ref container_id, .. } if container_id == "c9"));
    }
}
