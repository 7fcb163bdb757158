//! The image documents this crate reads — OCI index / Docker manifest list, manifest, config —
//! in one tolerant shape each, and the choice of this host's platform out of an index.
//!
//! Only the fields policy needs are parsed: the OCI and Docker formats differ in details (media
//! types, optional fields, `null`s) that a strict schema would turn into needless failures.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ImageConfig;

/// OCI image index media type.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list media type.
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The platform containers run as here, in OCI's names.
pub(crate) fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

/// The first index entry for `(os, architecture)`. Attestation manifests (platform
/// `unknown/unknown`) never match.
pub(crate) fn pick_platform<'a>(
    manifests: &'a [IndexEntry],
    (os, arch): (&str, &str),
) -> Option<&'a IndexEntry> {
    manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == arch)
    })
}

/// The fields of an index or a manifest this module reads, in one tolerant shape: the OCI and
/// Docker formats differ in details (media types, optional fields, `null`s) that a strict
/// schema would turn into needless failures.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    pub(crate) media_type: Option<String>,
    pub(crate) manifests: Option<Vec<IndexEntry>>,
    pub(crate) config: Option<DescriptorRef>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) digest: String,
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DescriptorRef {
    pub(crate) digest: String,
}

/// An image config blob (OCI and Docker share these field names).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigBlob {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigSection {
    user: Option<String>,
    env: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
}

impl From<ConfigBlob> for ImageConfig {
    fn from(blob: ConfigBlob) -> Self {
        let section = blob.config.unwrap_or_default();
        Self {
            user: section.user.filter(|u| !u.is_empty()),
            env: section.env.unwrap_or_default(),
            labels: section.labels.unwrap_or_default(),
            entrypoint: section.entrypoint.unwrap_or_default(),
            cmd: section.cmd.unwrap_or_default(),
            working_dir: section.working_dir.filter(|w| !w.is_empty()),
            os: blob.os.unwrap_or_default(),
            architecture: blob.architecture.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_pick_skips_other_platforms_and_attestations() {
        let index: Document = serde_json::from_str(
            r#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
                {"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
                {"digest":"sha256:att","platform":{"os":"unknown","architecture":"unknown"}},
                {"digest":"sha256:amd","platform":{"os":"linux","architecture":"amd64"}}]}"#,
        )
        .unwrap();
        let manifests = index.manifests.unwrap();
        assert_eq!(
            pick_platform(&manifests, ("linux", "amd64"))
                .unwrap()
                .digest,
            "sha256:amd"
        );
        assert_eq!(
            pick_platform(&manifests, ("linux", "arm64"))
                .unwrap()
                .digest,
            "sha256:arm"
        );
        assert!(pick_platform(&manifests, ("linux", "s390x")).is_none());
    }

    #[test]
    fn docker_config_with_nulls_parses() {
        let blob: ConfigBlob = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"User":"","Env":["PATH=/bin"],
                "Labels":null,"Cmd":["sh"],"Entrypoint":null,"WorkingDir":""},"rootfs":{}}"#,
        )
        .unwrap();
        let config = ImageConfig::from(blob);
        assert_eq!(config.user, None);
        assert_eq!(config.env, ["PATH=/bin"]);
        assert!(config.labels.is_empty());
        assert_eq!(config.cmd, ["sh"]);
        assert_eq!(config.working_dir, None);
        assert_eq!(
            (config.os.as_str(), config.architecture.as_str()),
            ("linux", "amd64")
        );
    }

    #[test]
    fn oci_config_with_user_and_labels_parses() {
        let blob: ConfigBlob = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"User":"1000:1000",
                "Labels":{"org.opencontainers.image.source":"x"}}}"#,
        )
        .unwrap();
        let config = ImageConfig::from(blob);
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.labels["org.opencontainers.image.source"], "x");
    }
}
