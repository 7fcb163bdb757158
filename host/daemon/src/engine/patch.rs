//! Applying an allowed decision at PostCreateContainer: the stored-spec patch (with the guard
//! marker) and the secrets it mounts, materialized for the container's user.

use std::time::Duration;

use bulkhead_containerd::spec::StoredSpec;
use bulkhead_core::merge::Merged;

use super::Engine;
use super::apply;
use super::view::Context;

impl Engine {
    /// Patches the stored spec with the merged mutations (and the marker), starting from
    /// `stored` when the context read it; `None` when there was nothing to patch.
    pub(super) async fn patch(
        &self,
        id: &str,
        merged: &Merged,
        context: &Context,
        stored: Option<StoredSpec>,
    ) -> Result<Option<Duration>, String> {
        let hardening = apply::hardening(&merged.mutations)?;
        let mut extras = apply::extras(&merged.mutations)?;
        if !merged.mutations.secrets.is_empty() {
            extras
                .mounts
                .extend(self.materialize_secrets(id, merged, context).await?);
        }
        if let Some(marker) = &self.marker
            && let Some(annotation) = marker(id)
        {
            extras.annotations.push(annotation);
        }
        if hardening.is_empty()
            && extras.annotations.is_empty()
            && extras.mounts.is_empty()
            && merged.mutations.rlimits.is_empty()
        {
            return Ok(None);
        }
        let patched = apply::patch_spec(
            &self.containerd,
            id,
            stored,
            &hardening,
            &extras,
            &merged.mutations,
        )
        .await?;
        tracing::debug!(
            elapsed_us = patched.elapsed.as_micros() as u64,
            "stored spec patched and verified"
        );
        Ok(Some(patched.elapsed))
    }

    /// Writes the granted secrets for container `id`, owned by its process user.
    async fn materialize_secrets(
        &self,
        id: &str,
        merged: &Merged,
        context: &Context,
    ) -> Result<Vec<oci_spec::runtime::Mount>, String> {
        let Some(store) = &self.secrets else {
            return Err("secrets were requested but no secret store is configured".into());
        };
        let (uid, gid) = match &context.spec {
            Some((_, facts)) => (facts.uid, facts.gid),
            None => {
                let (_, facts) = self
                    .containerd
                    .container_facts(id)
                    .await
                    .map_err(|e| format!("reading the container's user: {e}"))?;
                (facts.uid, facts.gid)
            }
        };
        merged
            .mutations
            .secrets
            .values()
            .map(|chosen| {
                store
                    .materialize(id, &chosen.value, uid, gid)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}
