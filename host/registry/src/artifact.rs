//! What a Wasm plugin artifact is, as both the registry and the cache see it: the media types of
//! the Wasm OCI artifact layout, the size limits, the one Wasm layer a manifest must have, and
//! the shape of a signature moved with it.

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::RegistryError;

/// One cosign signature: the signed payload and the base64 signature over it.
pub type Signature = (Vec<u8>, String);

/// The Wasm OCI artifact layout's config media type (CNCF TAG Runtime, wasm-oci).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Its layer media type.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older layer media type some tools still push (wasm-to-oci, Kubewarden); accepted on pull.
pub const LEGACY_WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The largest component pulled (a plugin is tens or hundreds of KiB; a Python one ~20 MiB).
pub const MAX_COMPONENT_BYTES: i64 = 64 << 20;
/// The largest manifest read.
pub const MAX_MANIFEST_BYTES: usize = 64 << 10;

/// The one Wasm layer of a manifest, with its size checked; `reference` names the artifact in
/// errors.
pub fn wasm_layer(manifest: &[u8], reference: &str) -> Result<OciDescriptor, RegistryError> {
    let not = |reason: String| RegistryError::NotAComponent {
        reference: reference.into(),
        reason,
    };
    let manifest: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| not(format!("the manifest is not an OCI image manifest: {e}")))?;
    let [layer] = manifest.layers.as_slice() else {
        return Err(not(format!(
            "{} layers, where a component has exactly one",
            manifest.layers.len()
        )));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE && layer.media_type != LEGACY_WASM_LAYER_MEDIA_TYPE
    {
        return Err(not(format!(
            "layer media type {:?}, not {WASM_LAYER_MEDIA_TYPE:?}",
            layer.media_type
        )));
    }
    if !(0..=MAX_COMPONENT_BYTES).contains(&layer.size) {
        return Err(not(format!(
            "a layer of {} bytes, more than {MAX_COMPONENT_BYTES}",
            layer.size
        )));
    }
    Ok(layer.clone())
}
