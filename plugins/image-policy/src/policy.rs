//! The image rules, as pure functions of the container view and the operator's config, so they
//! unit-test natively with plain `cargo test`.
//!
//! Rules at `create-container` (the image is known, the container does not exist yet), checked
//! in this order, the first that fires denies:
//! `denied-registries`, `allowed-registries`, `denied-repositories`, `allowed-repositories`,
//! `deny-latest`, `require-digest`, `denied-digests`, `allowed-digests`.
//! Rule at `post-create-container` (the process user is known): `deny-root-user`.
//! Every deny reason ends with `(rule <key>)`, so an operator can find the setting that fired.

use bulkhead_sdk::{Container, Decision, DecisionPoint, PluginError, parse_config};
use serde::Deserialize;

/// The plugin's name, as in its metadata and at the start of every deny reason.
pub const NAME: &str = "image-policy";

/// The operator's settings (the plugin's `[plugins.config]` table). Every key is optional; the
/// empty config allows every image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Registry hosts images may come from (e.g. `registry.k8s.io`), compared after
    /// [`normalize_registry`]. Empty: any.
    pub allowed_registries: Vec<String>,
    /// Registry hosts images may not come from, compared after [`normalize_registry`].
    pub denied_registries: Vec<String>,
    /// Glob patterns on `registry/repository` images must match one of; the registry part is
    /// normalized like the registry lists. Empty: any.
    pub allowed_repositories: Vec<String>,
    /// Glob patterns on `registry/repository` that are refused (registry part normalized).
    pub denied_repositories: Vec<String>,
    /// Refuse images tagged `latest` (written or implied) unless pinned by digest.
    pub deny_latest: bool,
    /// Refuse references not written with `@sha256:`.
    pub require_digest: bool,
    /// Resolved digests (`sha256:...`) allowed to run. Empty: any.
    pub allowed_digests: Vec<String>,
    /// Resolved digests refused, e.g. revoked builds.
    pub denied_digests: Vec<String>,
    /// Refuse images whose config user is root unless the pod runs them as a non-zero uid.
    pub deny_root_user: bool,
}

impl Config {
    /// Parses, validates and normalizes the operator's config (JSON, as the daemon passes the
    /// TOML table). Empty text is the default config. Registry entries come back in their
    /// [`normalize_registry`] form, so `INDEX.docker.io` in the config denies `docker.io` images.
    pub fn from_json(text: &str) -> Result<Config, PluginError> {
        let mut config: Config = parse_config(NAME, text)?;
        config
            .validate()
            .map_err(|reason| PluginError::InvalidConfig(format!("{NAME}: {reason}")))?;
        config.normalize();
        Ok(config)
    }

    /// Rewrites the registry lists and the registry part of the repository patterns into their
    /// canonical form, so that matching at check time is a plain comparison of canonical forms.
    pub fn normalize(&mut self) {
        for host in self
            .allowed_registries
            .iter_mut()
            .chain(self.denied_registries.iter_mut())
        {
            *host = normalize_registry(host);
        }
        for pattern in self
            .allowed_repositories
            .iter_mut()
            .chain(self.denied_repositories.iter_mut())
        {
            *pattern = normalize_pattern(pattern);
        }
    }

    /// Checks what the types cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (key, hosts) in [
            ("allowed-registries", &self.allowed_registries),
            ("denied-registries", &self.denied_registries),
        ] {
            for host in hosts {
                if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                    return Err(format!(
                        "config key `{key}`: {host:?} is not a registry host (e.g. \"registry.k8s.io\")"
                    ));
                }
            }
        }
        for (key, patterns) in [
            ("allowed-repositories", &self.allowed_repositories),
            ("denied-repositories", &self.denied_repositories),
        ] {
            for pattern in patterns {
                if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                    return Err(format!(
                        "config key `{key}`: {pattern:?} is not a `registry/repository` pattern"
                    ));
                }
            }
        }
        for (key, digests) in [
            ("allowed-digests", &self.allowed_digests),
            ("denied-digests", &self.denied_digests),
        ] {
            for digest in digests {
                if !is_sha256_digest(digest) {
                    return Err(format!(
                        "config key `{key}`: {digest:?} is not a digest (`sha256:` and 64 lower-case hex digits)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The canonical form of a registry host, so that spellings of one registry cannot slip past a
/// list: the host is lower-cased (DNS names are case-insensitive), the default HTTPS port `:443`
/// is dropped, and Docker Hub's aliases `index.docker.io` and `registry-1.docker.io` become
/// `docker.io`. Any other port stays (`localhost:5000` is its own registry).
pub fn normalize_registry(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    let bare = lower.strip_suffix(":443").unwrap_or(&lower);
    match bare {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// A repository pattern with its registry part (before the first `/`) in
/// [`normalize_registry`] form. A registry part containing `*` is left as written, since a glob
/// is not a host.
fn normalize_pattern(pattern: &str) -> String {
    match pattern.split_once('/') {
        Some((registry, rest)) if !registry.contains('*') => {
            format!("{}/{rest}", normalize_registry(registry))
        }
        _ => pattern.to_string(),
    }
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters (including `/`
/// and none at all) and everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text index it is currently matched up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, matched)) = backtrack {
            // Let the last `*` swallow one more character and retry.
            backtrack = Some((star, matched + 1));
            pi = star + 1;
            ti = matched + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Judges one container at its decision point.
pub fn judge(container: &Container, config: &Config) -> Decision {
    let denial = match container.event {
        DecisionPoint::CreateContainer => check_image(container, config),
        DecisionPoint::PostCreateContainer => check_user(container, config),
        DecisionPoint::StartContainer | DecisionPoint::UpdateContainer => None,
    };
    match denial {
        Some((rule, what)) => Decision::deny(format!("{NAME}: {what} (rule {rule})")),
        None => Decision::allow(),
    }
}

/// A fired rule: its config key and what it found.
type Denial = (&'static str, String);

/// The create-time rules.
fn check_image(container: &Container, config: &Config) -> Option<Denial> {
    let image = &container.image;
    // Both sides are compared in canonical form: the image's registry here, the config's entries
    // also here (already canonical after `from_json`; normalizing again keeps a `Config` built
    // in code just as safe).
    let registry = normalize_registry(&image.registry);
    let registry = registry.as_str();
    let listed = |hosts: &[String]| hosts.iter().any(|r| normalize_registry(r) == registry);
    if listed(&config.denied_registries) {
        return Some((
            "denied-registries",
            format!("registry {registry:?} is denied"),
        ));
    }
    if !config.allowed_registries.is_empty() && !listed(&config.allowed_registries) {
        return Some((
            "allowed-registries",
            format!("registry {registry:?} is not allowed"),
        ));
    }
    let repository = format!("{registry}/{}", image.repository);
    let matches = |patterns: &[String]| {
        patterns
            .iter()
            .any(|p| glob_match(&normalize_pattern(p), &repository))
    };
    if matches(&config.denied_repositories) {
        return Some((
            "denied-repositories",
            format!("repository {repository:?} is denied"),
        ));
    }
    if !config.allowed_repositories.is_empty() && !matches(&config.allowed_repositories) {
        return Some((
            "allowed-repositories",
            format!("repository {repository:?} is not allowed"),
        ));
    }
    let pinned = image.reference.contains("@sha256:");
    if config.deny_latest && !pinned && tag(container) == Some("latest") {
        return Some(("deny-latest", "tag \"latest\" is denied".into()));
    }
    if config.require_digest && !pinned {
        return Some((
            "require-digest",
            format!(
                "image {:?} is not pinned by digest (write it as name@sha256:...)",
                image.reference
            ),
        ));
    }
    let digest = image.digest.as_deref();
    if let Some(d) = digest.filter(|d| config.denied_digests.iter().any(|x| x == d)) {
        return Some(("denied-digests", format!("digest {d:?} is denied")));
    }
    if !config.allowed_digests.is_empty() {
        match digest {
            None => {
                return Some((
                    "allowed-digests",
                    "the image digest is unknown and only listed digests may run".into(),
                ));
            }
            Some(d) if !config.allowed_digests.iter().any(|x| x == d) => {
                return Some(("allowed-digests", format!("digest {d:?} is not allowed")));
            }
            Some(_) => {}
        }
    }
    None
}

/// The tag: the host's (normalization gives untagged references `latest`), or the one written in
/// the reference, or `latest` when a reference has neither tag nor digest.
fn tag(container: &Container) -> Option<&str> {
    let image = &container.image;
    if let Some(tag) = image.tag.as_deref() {
        return Some(tag);
    }
    let reference = image.reference.as_str();
    if reference.is_empty() || reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    Some(last.split_once(':').map_or("latest", |(_, tag)| tag))
}

/// The post-create rule: an image whose config runs as root, unless the pod set a non-zero uid.
fn check_user(container: &Container, config: &Config) -> Option<Denial> {
    if !config.deny_root_user || container.process.user.uid != 0 {
        return None;
    }
    // An unreadable image config counts as the default user, which is root.
    let user = container
        .image
        .config
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .unwrap_or("")
        .trim();
    let name = user.split_once(':').map_or(user, |(name, _group)| name);
    if matches!(name, "" | "0" | "root") {
        let shown = if user.is_empty() { "<unset>" } else { user };
        return Some((
            "deny-root-user",
            format!(
                "image user {shown:?} is root and the pod does not override it; set runAsUser to a non-zero uid"
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_sdk::{Image, ImageConfig, Pod, Process};

    const DIGEST_A: &str =
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str =
        "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// A create-time container running `reference` from `registry`/`repository`.
    fn container(
        reference: &str,
        registry: &str,
        repository: &str,
        tag: Option<&str>,
    ) -> Container {
        Container {
            event: DecisionPoint::CreateContainer,
            id: "c1".into(),
            name: "app".into(),
            pod_sandbox_id: "p1".into(),
            pod: Pod {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                ..Default::default()
            },
            image: Image {
                reference: reference.into(),
                registry: registry.into(),
                repository: repository.into(),
                tag: tag.map(Into::into),
                ..Default::default()
            },
            process: Process {
                cwd: "/".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn busybox() -> Container {
        container("busybox:1.36", "docker.io", "library/busybox", Some("1.36"))
    }

    fn config(json: &str) -> Config {
        Config::from_json(json).unwrap()
    }

    fn reason(c: &Container, cfg: &Config) -> String {
        judge(c, cfg)
            .deny_reason()
            .unwrap_or("<allowed>")
            .to_string()
    }

    fn config_error(json: &str) -> String {
        match Config::from_json(json) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("expected a config error for {json}, got {other:?}"),
        }
    }

    #[test]
    fn empty_config_allows_everything() {
        for text in ["", "{}"] {
            let cfg = config(text);
            assert!(judge(&busybox(), &cfg).is_allow());
            let mut post = busybox();
            post.event = DecisionPoint::PostCreateContainer;
            assert!(judge(&post, &cfg).is_allow());
        }
    }

    #[test]
    fn denied_registries() {
        let cfg = config(r#"{"denied-registries": ["docker.io"]}"#);
        assert_eq!(
            reason(&busybox(), &cfg),
            r#"image-policy: registry "docker.io" is denied (rule denied-registries)"#
        );
        let quay = container("quay.io/x/y:1", "quay.io", "x/y", Some("1"));
        assert!(judge(&quay, &cfg).is_allow());
    }

    #[test]
    fn allowed_registries() {
        let cfg = config(r#"{"allowed-registries": ["registry.k8s.io"]}"#);
        assert!(reason(&busybox(), &cfg).ends_with("is not allowed (rule allowed-registries)"));
        let pause = container(
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io",
            "pause",
            Some("3.10"),
        );
        assert!(judge(&pause, &cfg).is_allow());
    }

    #[test]
    fn denied_repositories() {
        let cfg = config(r#"{"denied-repositories": ["docker.io/library/*"]}"#);
        assert_eq!(
            reason(&busybox(), &cfg),
            r#"image-policy: repository "docker.io/library/busybox" is denied (rule denied-repositories)"#
        );
        let other = container("docker.io/acme/app:1", "docker.io", "acme/app", Some("1"));
        assert!(judge(&other, &cfg).is_allow());
    }

    #[test]
    fn allowed_repositories() {
        let cfg =
            config(r#"{"allowed-repositories": ["ghcr.io/acme/*", "docker.io/library/busybox"]}"#);
        assert!(judge(&busybox(), &cfg).is_allow());
        let acme = container(
            "ghcr.io/acme/team/app:2",
            "ghcr.io",
            "acme/team/app",
            Some("2"),
        );
        assert!(judge(&acme, &cfg).is_allow());
        let nginx = container("nginx:1", "docker.io", "library/nginx", Some("1"));
        assert!(reason(&nginx, &cfg).ends_with("(rule allowed-repositories)"));
    }

    #[test]
    fn deny_latest() {
        let cfg = config(r#"{"deny-latest": true}"#);
        let latest = container("busybox", "docker.io", "library/busybox", Some("latest"));
        assert_eq!(
            reason(&latest, &cfg),
            r#"image-policy: tag "latest" is denied (rule deny-latest)"#
        );
        // Implied by a reference without tag when the host gave none.
        let implied = container("localhost:5000/app", "localhost:5000", "app", None);
        assert!(!judge(&implied, &cfg).is_allow());
        // A digest pins the content whatever the tag says.
        let pinned = container(
            &format!("busybox:latest@{DIGEST_A}"),
            "docker.io",
            "library/busybox",
            Some("latest"),
        );
        assert!(judge(&pinned, &cfg).is_allow());
        assert!(judge(&busybox(), &cfg).is_allow());
    }

    #[test]
    fn require_digest() {
        let cfg = config(r#"{"require-digest": true}"#);
        assert_eq!(
            reason(&busybox(), &cfg),
            r#"image-policy: image "busybox:1.36" is not pinned by digest (write it as name@sha256:...) (rule require-digest)"#
        );
        let pinned = container(
            &format!("busybox@{DIGEST_A}"),
            "docker.io",
            "library/busybox",
            None,
        );
        assert!(judge(&pinned, &cfg).is_allow());
    }

    #[test]
    fn denied_digests() {
        let cfg = config(&format!(r#"{{"denied-digests": ["{DIGEST_A}"]}}"#));
        let mut revoked = busybox();
        revoked.image.digest = Some(DIGEST_A.into());
        assert!(reason(&revoked, &cfg).ends_with("is denied (rule denied-digests)"));
        revoked.image.digest = Some(DIGEST_B.into());
        assert!(judge(&revoked, &cfg).is_allow());
        assert!(
            judge(&busybox(), &cfg).is_allow(),
            "unknown digest is not a revoked one"
        );
    }

    #[test]
    fn allowed_digests() {
        let cfg = config(&format!(r#"{{"allowed-digests": ["{DIGEST_A}"]}}"#));
        let mut c = busybox();
        c.image.digest = Some(DIGEST_A.into());
        assert!(judge(&c, &cfg).is_allow());
        c.image.digest = Some(DIGEST_B.into());
        assert!(reason(&c, &cfg).ends_with("is not allowed (rule allowed-digests)"));
        c.image.digest = None;
        assert!(reason(&c, &cfg).contains("digest is unknown"));
    }

    #[test]
    fn deny_root_user() {
        let cfg = config(r#"{"deny-root-user": true}"#);
        let mut c = busybox();
        c.event = DecisionPoint::PostCreateContainer;
        for user in [
            None,
            Some(""),
            Some("0"),
            Some("root"),
            Some("0:0"),
            Some("root:wheel"),
        ] {
            c.image.config = Some(ImageConfig {
                user: user.map(Into::into),
                env: vec![],
                labels: vec![],
            });
            assert!(
                reason(&c, &cfg).ends_with("(rule deny-root-user)"),
                "{user:?}"
            );
        }
        // No image config at all counts as root too.
        c.image.config = None;
        assert!(!judge(&c, &cfg).is_allow());
        // The pod overrode the user.
        c.process.user.uid = 1000;
        assert!(judge(&c, &cfg).is_allow());
        // A non-root image user.
        c.process.user.uid = 0;
        c.image.config = Some(ImageConfig {
            user: Some("65534:65534".into()),
            env: vec![],
            labels: vec![],
        });
        assert!(judge(&c, &cfg).is_allow());
        // Not checked at create time, where the process user is not known yet.
        c.image.config = None;
        c.event = DecisionPoint::CreateContainer;
        assert!(judge(&c, &cfg).is_allow());
    }

    #[test]
    fn image_rules_are_not_rechecked_after_create() {
        let cfg = config(r#"{"denied-registries": ["docker.io"]}"#);
        let mut c = busybox();
        c.event = DecisionPoint::PostCreateContainer;
        assert!(judge(&c, &cfg).is_allow());
    }

    #[test]
    fn registry_normalization() {
        for (written, canonical) in [
            ("docker.io", "docker.io"),
            ("INDEX.DOCKER.IO", "docker.io"),
            ("index.docker.io:443", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("Quay.IO:443", "quay.io"),
            ("localhost:5000", "localhost:5000"),
            ("ghcr.io:4443", "ghcr.io:4443"),
        ] {
            assert_eq!(normalize_registry(written), canonical, "{written}");
        }
    }

    #[test]
    fn denied_registries_see_through_docker_hub_aliases_and_case() {
        let cfg = config(r#"{"denied-registries": ["docker.io"]}"#);
        let c = container(
            "INDEX.DOCKER.IO/library/busybox",
            "INDEX.DOCKER.IO",
            "library/busybox",
            Some("latest"),
        );
        assert!(
            reason(&c, &cfg)
                .ends_with(r#"registry "docker.io" is denied (rule denied-registries)"#),
            "{}",
            reason(&c, &cfg)
        );
    }

    #[test]
    fn denied_registries_see_through_default_port() {
        let cfg = config(r#"{"denied-registries": ["quay.io"]}"#);
        let c = container("quay.io:443/x", "quay.io:443", "x", Some("latest"));
        assert!(reason(&c, &cfg).ends_with("(rule denied-registries)"));
        // Another port is another registry.
        let other = container("quay.io:8443/x", "quay.io:8443", "x", Some("latest"));
        assert!(judge(&other, &cfg).is_allow());
    }

    #[test]
    fn configured_registries_are_normalized() {
        let cfg = config(
            r#"{"denied-registries": ["Registry-1.Docker.IO:443"], "allowed-registries": ["QUAY.io"]}"#,
        );
        assert_eq!(cfg.denied_registries, ["docker.io"]);
        assert_eq!(cfg.allowed_registries, ["quay.io"]);
        assert!(reason(&busybox(), &cfg).ends_with("(rule denied-registries)"));
        let quay = container("quay.io:443/x/y:1", "quay.io:443", "x/y", Some("1"));
        assert!(judge(&quay, &cfg).is_allow());
    }

    #[test]
    fn repository_patterns_normalize_their_registry() {
        let cfg = config(r#"{"denied-repositories": ["INDEX.docker.io/library/*"]}"#);
        assert_eq!(cfg.denied_repositories, ["docker.io/library/*"]);
        let c = container(
            "index.docker.io:443/library/busybox",
            "index.docker.io:443",
            "library/busybox",
            Some("1"),
        );
        assert!(reason(&c, &cfg).ends_with("(rule denied-repositories)"));
        // A glob in the registry part is left alone.
        let glob = config(r#"{"allowed-repositories": ["*.Example.com/app"]}"#);
        assert_eq!(glob.allowed_repositories, ["*.Example.com/app"]);
    }

    #[test]
    fn glob_matcher() {
        assert!(glob_match(
            "docker.io/library/*",
            "docker.io/library/busybox"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("*/busybox", "docker.io/library/busybox"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("ghcr.io/acme/*", "ghcr.io/acmex/app"));
        assert!(!glob_match("a*b", "aXXbc"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = config_error(r#"{"deny-lastest": true}"#);
        assert!(err.contains("`deny-lastest`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = config_error(r#"{"allowed-registries": ["a"], "deny-latest": "yes"}"#);
        assert!(
            err.starts_with("image-policy: config key `deny-latest`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_the_key() {
        assert!(
            config_error(r#"{"allowed-registries": ["docker.io/library"]}"#)
                .contains("`allowed-registries`")
        );
        assert!(config_error(r#"{"denied-repositories": [""]}"#).contains("`denied-repositories`"));
        assert!(config_error(r#"{"denied-digests": ["sha256:abc"]}"#).contains("`denied-digests`"));
        assert!(config_error("not json").contains("not a JSON document"));
    }
}
