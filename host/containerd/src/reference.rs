//! Image reference normalization, following the rules container tooling (Docker, containerd's
//! CRI plugin, Kubernetes) applies to the image name a user writes.
//!
//! CRI hands bulkhead the image *as the user wrote it* (`busybox`, `nginx:1.27`,
//! `ghcr.io/org/app@sha256:…`). containerd stores images under the normalized name
//! (`docker.io/library/busybox:latest`), so the same rules must be applied before asking its
//! image store — and policy plugins need the registry, repository, tag and digest split out.
//!
//! The rules, written from the published reference grammar:
//! - `reference := name [":" tag] ["@" digest]`;
//! - the first `/`-separated component is a registry host only if it contains `.` or `:`, is
//!   `localhost`, or has an uppercase letter; otherwise the registry is `docker.io`;
//! - `index.docker.io` is an alias of `docker.io`; a one-component Docker Hub name gets the
//!   `library/` prefix;
//! - the repository path is lowercase: components of `[a-z0-9]` joined by `.`, `_`, `__` or
//!   runs of `-`; the whole name is at most 255 characters;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a name without tag or digest gets `latest`;
//! - a digest is `algorithm:hex`; `sha256` needs exactly 64 lowercase hex characters;
//! - when both tag and digest are given, the digest alone identifies the image (the tag is kept
//!   in [`Reference::tag`] but left out of [`Reference::normalized`], as containerd does);
//! - a bare 64-character hex string is an image ID, not a name, and is refused here.

use std::fmt;

use crate::Error;

/// Registry that names without a registry component belong to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Tag assumed when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest name (registry + repository) the grammar accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag the grammar accepts.
const MAX_TAG_LEN: usize = 128;

/// One image reference, split and normalized, kept next to the text it came from.
///
/// Policy needs both: the written form for messages to the user ("you asked for `busybox`"),
/// the normalized parts to match rules against (`registry == "docker.io"`, `tag == "latest"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The reference exactly as given.
    pub as_written: String,
    /// The full normalized reference, the name containerd stores the image under, e.g.
    /// `docker.io/library/busybox:latest` or `ghcr.io/org/app@sha256:…`.
    pub normalized: String,
    /// Registry host, with port if one was written (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/busybox`).
    pub repository: String,
    /// Tag: the written one, or `latest` when neither tag nor digest was written.
    pub tag: Option<String>,
    /// Digest (`sha256:…`) when the reference pins one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `input` by the rules in this module's documentation.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] naming the rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let fail = |reason: &str| Error::InvalidReference {
            reference: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(fail("empty reference"));
        }
        if is_hex(input) && input.len() == 64 {
            return Err(fail("a 64-character hex string is an image id, not a name"));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(fail)?;
                (rest, Some(digest.to_owned()))
            }
            None => (input, None),
        };

        // A tag is a colon after the last slash; a colon before it belongs to a registry port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(fail)?;
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(fail("empty repository name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(fail("name longer than 255 characters"));
        }

        let (registry, remainder) = split_registry(name);
        validate_registry(registry).map_err(fail)?;
        if remainder.to_lowercase() != remainder {
            return Err(fail("repository name must be lowercase"));
        }
        for component in remainder.split('/') {
            validate_path_component(component).map_err(fail)?;
        }

        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_owned()
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(fail("name longer than 255 characters"));
        }

        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag,
        };
        let mut normalized = format!("{registry}/{repository}");
        match (&tag, &digest) {
            (_, Some(digest)) => {
                normalized.push('@');
                normalized.push_str(digest);
            }
            (Some(tag), None) => {
                normalized.push(':');
                normalized.push_str(tag);
            }
            (None, None) => unreachable!("a default tag is set above"),
        }

        Ok(Self {
            as_written: input.to_owned(),
            normalized,
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, the name without tag or digest — what a repo digest is written
    /// against (`docker.io/library/busybox@sha256:…`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

/// Splits off the registry component, by the rule that decides whether a first component is a
/// host: it has a `.` or `:`, is `localhost`, or is not all lowercase.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// Checks `host[:port]`, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn validate_registry(registry: &str) -> Result<(), &'static str> {
    let port = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("unterminated IPv6 registry address")?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err("invalid IPv6 registry address");
        }
        match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("invalid registry port")?),
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        validate_host(host)?;
        port
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("invalid registry port");
    }
    Ok(())
}

/// A DNS-style host: dot-separated labels of letters, digits and inner hyphens.
fn validate_host(host: &str) -> Result<(), &'static str> {
    let ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err("invalid registry host")
    }
}

/// One repository path component: lowercase alphanumeric runs joined by `.`, `_`, `__` or any
/// number of `-`.
fn validate_path_component(component: &str) -> Result<(), &'static str> {
    const BAD: &str = "invalid repository path component";
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(BAD);
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(BAD);
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() {
        return Err("empty tag");
    }
    if bytes.len() > MAX_TAG_LEN {
        return Err("tag longer than 128 characters");
    }
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err("invalid tag");
    }
    Ok(())
}

/// `algorithm:encoded`; sha256 must be 64 lowercase hex characters, other algorithms at least
/// 32 hex characters.
pub(crate) fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let (algorithm, encoded) = digest.split_once(':').ok_or("digest without algorithm")?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.as_bytes()[0].is_ascii_alphabetic()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part.as_bytes()[0].is_ascii_alphabetic()
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !algorithm_ok {
        return Err("invalid digest algorithm");
    }
    if algorithm == "sha256" {
        if encoded.len() != 64 || !is_hex(encoded) {
            return Err("sha256 digest must be 64 lowercase hex characters");
        }
    } else if encoded.len() < 32 || !encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("invalid digest");
    }
    Ok(())
}

/// Lowercase hex only: digests are compared as strings, so `A-F` is refused.
fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn reason(s: &str) -> String {
        match Reference::parse(s) {
            Err(Error::InvalidReference { reason, .. }) => reason,
            other => panic!("{s}: expected an invalid reference, got {other:?}"),
        }
    }

    #[test]
    fn single_component_gets_docker_hub_library_and_latest() {
        let r = parse("busybox");
        assert_eq!(r.as_written, "busybox");
        assert_eq!(r.normalized, "docker.io/library/busybox:latest");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.digest, None);
    }

    #[test]
    fn two_components_are_a_docker_hub_user_repository() {
        let r = parse("bitnami/redis:7.2");
        assert_eq!(r.normalized, "docker.io/bitnami/redis:7.2");
        assert_eq!(r.repository, "bitnami/redis");
    }

    #[test]
    fn written_tag_is_kept() {
        let r = parse("nginx:1.27-alpine");
        assert_eq!(r.normalized, "docker.io/library/nginx:1.27-alpine");
        assert_eq!(r.tag.as_deref(), Some("1.27-alpine"));
    }

    #[test]
    fn explicit_docker_io_single_component_still_gets_library() {
        assert_eq!(
            parse("docker.io/busybox").normalized,
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn index_docker_io_is_an_alias_of_docker_io() {
        let r = parse("index.docker.io/library/busybox:1");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.normalized, "docker.io/library/busybox:1");
    }

    #[test]
    fn already_normalized_reference_is_unchanged() {
        let s = "docker.io/library/busybox:latest";
        assert_eq!(parse(s).normalized, s);
    }

    #[test]
    fn other_registry_gets_no_library_prefix() {
        let r = parse("registry.k8s.io/pause:3.10");
        assert_eq!(r.registry, "registry.k8s.io");
        assert_eq!(r.repository, "pause");
        assert_eq!(r.normalized, "registry.k8s.io/pause:3.10");
    }

    #[test]
    fn registry_with_port() {
        let r = parse("registry.example.com:5000/team/app");
        assert_eq!(r.registry, "registry.example.com:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.normalized, "registry.example.com:5000/team/app:latest");
    }

    #[test]
    fn port_colon_is_not_a_tag_but_a_later_colon_is() {
        let r = parse("myhost:5000/app:v1");
        assert_eq!(r.registry, "myhost:5000");
        assert_eq!(r.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn localhost_is_a_registry() {
        let r = parse("localhost/app");
        assert_eq!(r.registry, "localhost");
        assert_eq!(r.normalized, "localhost/app:latest");
        assert_eq!(parse("localhost:5000/app").registry, "localhost:5000");
    }

    #[test]
    fn bare_localhost_is_a_docker_hub_name() {
        assert_eq!(
            parse("localhost").normalized,
            "docker.io/library/localhost:latest"
        );
    }

    #[test]
    fn without_a_slash_a_colon_is_always_a_tag() {
        // `localhost:5000` alone is the Docker Hub image `localhost` at tag `5000`.
        let r = parse("localhost:5000");
        assert_eq!(r.normalized, "docker.io/library/localhost:5000");
        assert_eq!(r.tag.as_deref(), Some("5000"));
    }

    #[test]
    fn deep_repository_paths_are_kept() {
        let r = parse("a/b/c/d:1");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "a/b/c/d");
        assert_eq!(parse("ghcr.io/o/g/app").repository, "o/g/app");
    }

    #[test]
    fn ip_registries() {
        assert_eq!(parse("127.0.0.1:5000/app").registry, "127.0.0.1:5000");
        assert_eq!(parse("[::1]:5000/app").registry, "[::1]:5000");
        assert_eq!(parse("[fe80::1]/app").normalized, "[fe80::1]/app:latest");
    }

    #[test]
    fn digest_only_gets_no_default_tag() {
        let r = parse(&format!("busybox@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.normalized, format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.name(), "docker.io/library/busybox");
    }

    #[test]
    fn tag_and_digest_normalize_to_the_digest() {
        let r = parse(&format!("ghcr.io/org/app:1.0@{D}"));
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.normalized, format!("ghcr.io/org/app@{D}"));
    }

    #[test]
    fn uppercase_repository_is_rejected() {
        assert_eq!(reason("BusyBox"), "repository name must be lowercase");
        assert_eq!(
            reason("docker.io/Library/busybox"),
            "repository name must be lowercase"
        );
    }

    #[test]
    fn uppercase_first_component_is_a_registry_host() {
        // Uppercase cannot be a repository, so the grammar reads it as a host name.
        let r = parse("Example/app");
        assert_eq!(r.registry, "Example");
        assert_eq!(r.repository, "app");
    }

    #[test]
    fn separators_in_path_components() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a1-2.b_c"] {
            parse(ok);
        }
        for bad in ["a..b", "a___b", "-a", "a-", "_a", "a.", "a//b", "a_-b"] {
            assert_eq!(reason(bad), "invalid repository path component", "{bad}");
        }
    }

    #[test]
    fn tag_rules() {
        parse("app:_x");
        parse(&format!("app:{}", "t".repeat(128)));
        assert_eq!(
            reason(&format!("app:{}", "t".repeat(129))),
            "tag longer than 128 characters"
        );
        assert_eq!(reason("app:-x"), "invalid tag");
        assert_eq!(reason("app:.x"), "invalid tag");
        assert_eq!(reason("app:a+b"), "invalid tag");
        assert_eq!(reason("app:"), "empty tag");
    }

    #[test]
    fn digest_rules() {
        assert_eq!(
            reason("app@sha256:abc"),
            "sha256 digest must be 64 lowercase hex characters"
        );
        let upper = D.to_uppercase().replace("SHA256", "sha256");
        assert_eq!(
            reason(&format!("app@{upper}")),
            "sha256 digest must be 64 lowercase hex characters"
        );
        assert_eq!(reason("app@0123"), "digest without algorithm");
        assert_eq!(
            reason(&format!("app@1sha:{}", "a".repeat(64))),
            "invalid digest algorithm"
        );
        parse(&format!("app@sha512:{}", "a".repeat(128)));
    }

    #[test]
    fn bare_image_id_is_not_a_name() {
        let id = &D["sha256:".len()..];
        assert_eq!(
            reason(id),
            "a 64-character hex string is an image id, not a name"
        );
    }

    #[test]
    fn empty_parts_are_rejected() {
        assert_eq!(reason(""), "empty reference");
        assert_eq!(reason(":tag"), "empty repository name");
        assert_eq!(reason("/app"), "invalid repository path component");
    }

    #[test]
    fn invalid_registries_are_rejected() {
        assert_eq!(reason("my_host.com/app"), "invalid registry host");
        assert_eq!(reason("host.com:port/app"), "invalid registry port");
        assert_eq!(reason("[zz]:5000/app"), "invalid IPv6 registry address");
        // Without a `.` or `:` the first component is a path, and brackets are not allowed there.
        assert_eq!(reason("[zz]/app"), "invalid repository path component");
    }

    #[test]
    fn name_length_limit() {
        parse(&"a".repeat(255 - "docker.io/library/".len()));
        assert_eq!(reason(&"a".repeat(256)), "name longer than 255 characters");
        let long = format!("x.io/{}", "a".repeat(251));
        assert_eq!(reason(&long), "name longer than 255 characters");
    }
}
