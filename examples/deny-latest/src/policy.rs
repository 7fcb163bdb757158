//! The policy, as a pure function of the container view and the config, so it unit-tests
//! natively with plain `cargo test`.
//!
//! An image is "floating" when it is not pinned by digest and its tag is `latest` (written or
//! implied: `nginx` means `nginx:latest`). Floating images are refused because the same pod spec
//! can run different code tomorrow. A pod can opt out with the annotation [`ALLOW_ANNOTATION`]
//! set to `"true"`.

use bulkhead_sdk::{Container, Decision, PluginError, parse_config};
use serde::Deserialize;

/// Pod annotation that allows a floating image for that pod.
pub const ALLOW_ANNOTATION: &str = "bulkhead.dev/allow-latest";

/// What to do with a floating image: the operator's `mode = "deny"` or `"warn"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refuse the container (the default).
    #[default]
    Deny,
    /// Allow it but log a warning, for rolling the policy out.
    Warn,
}

/// The operator's `[plugins.config]` table, which bulkhead hands over as JSON (`{}` when absent).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    mode: Mode,
}

impl Mode {
    /// Reads the mode from the plugin's config text; anything else is `InvalidConfig`, which the
    /// operator's failure policy then applies to.
    pub fn from_config(config: &str) -> Result<Mode, PluginError> {
        Ok(parse_config::<Config>("deny-latest", config)?.mode)
    }
}

/// True when the image is not pinned by digest and is tagged (or defaults to) `latest`.
pub fn is_floating(container: &Container) -> bool {
    let image = &container.image;
    let pinned = image.digest.is_some() && image.reference.contains('@');
    let tag = image
        .tag
        .as_deref()
        .or_else(|| implied_tag(&image.reference));
    !pinned && tag.is_none_or(|t| t == "latest")
}

/// The tag written in a reference, if any (`registry:5000/app:1.2` -> `1.2`).
fn implied_tag(reference: &str) -> Option<&str> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

/// Judges one container.
pub fn judge(container: &Container, mode: Mode) -> Decision {
    if !is_floating(container) || container.pod_annotation(ALLOW_ANNOTATION) == Some("true") {
        return Decision::allow();
    }
    let reason = format!(
        "image {:?} uses the floating tag `latest`; pin a version or digest, or annotate the pod {ALLOW_ANNOTATION}=true",
        container.image.reference
    );
    match mode {
        Mode::Deny => Decision::deny(reason),
        Mode::Warn => {
            bulkhead_sdk::log(bulkhead_sdk::LogLevel::Warn, &reason);
            Decision::allow()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container running `reference`, with everything else empty.
    fn container(reference: &str, tag: Option<&str>) -> Container {
        let mut c = Container::default();
        c.image.reference = reference.into();
        c.image.tag = tag.map(Into::into);
        c
    }

    #[test]
    fn explicit_and_implied_latest_are_denied() {
        assert!(!judge(&container("nginx:latest", Some("latest")), Mode::Deny).is_allow());
        assert!(!judge(&container("nginx", None), Mode::Deny).is_allow());
        assert!(!judge(&container("localhost:5000/app", None), Mode::Deny).is_allow());
    }

    #[test]
    fn pinned_tags_and_digests_are_allowed() {
        assert!(judge(&container("nginx:1.27", Some("1.27")), Mode::Deny).is_allow());
        assert!(judge(&container("localhost:5000/app:2", None), Mode::Deny).is_allow());
        let mut pinned = container("nginx@sha256:abcd", None);
        pinned.image.digest = Some("sha256:abcd".into());
        assert!(judge(&pinned, Mode::Deny).is_allow());
    }

    #[test]
    fn pod_annotation_opts_out() {
        let mut c = container("nginx", Some("latest"));
        c.pod
            .annotations
            .push((ALLOW_ANNOTATION.into(), "true".into()));
        assert!(judge(&c, Mode::Deny).is_allow());
    }

    #[test]
    fn warn_mode_allows() {
        assert!(judge(&container("nginx", Some("latest")), Mode::Warn).is_allow());
    }

    #[test]
    fn config_is_validated() {
        assert_eq!(Mode::from_config("{}").unwrap(), Mode::Deny);
        assert_eq!(Mode::from_config("").unwrap(), Mode::Deny);
        assert_eq!(
            Mode::from_config(r#"{"mode": "warn"}"#).unwrap(),
            Mode::Warn
        );
        for bad in [r#"{"mode": "maybe"}"#, r#"{"mood": "warn"}"#, "warn"] {
            assert!(
                matches!(Mode::from_config(bad), Err(PluginError::InvalidConfig(_))),
                "{bad}"
            );
        }
    }
}
