//! The grant checker: may this plugin ask for this mutation, on this container, now?
//!
//! A plugin's decision is a request. Before anything is merged or applied, each mutation is
//! judged against
//! - the plugin's grants ([`Grants`], resolved for its source: path plugins may only tighten,
//!   built-ins get what they need) and the host's secret grants ([`SecretGrant`]);
//! - the container's **current** effective spec ([`CurrentSpec`], known from
//!   PostCreateContainer on): a seccomp profile must be at least as strict as the one the
//!   container already has, rlimits only go down, a mount never replaces or hides one the
//!   container has;
//! - rules no grant can lift: no mount at or under `/proc`, `/sys` or `/dev`, no `LD_*` or
//!   `PATH`, no reserved annotation prefix, secret modes `0400`/`0440` only.
//!
//! The first mutation that fails makes the whole decision fail with a [`Violation`] naming the
//! mutation and what grant was missing; the engine then applies the plugin's failure policy. A
//! mutation that passes may come back normalized: bind mounts without a writable grant are
//! forced `ro,nosuid,nodev`.

pub mod seccomp;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::{Grants, SecretGrant};
use crate::decision::{Decision, Mutation, MutationKind, Rlimit, SecretMount};
use crate::view::Mount;

pub use seccomp::at_least_as_strict;

/// Mount destinations no plugin may mount at or under: the kernel's interfaces, which the
/// runtime sets up (read-only or masked) for a reason.
pub const PROTECTED_DESTINATIONS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// File modes a secret may be mounted with: readable by its owner, or its owner and group.
pub const SECRET_MODES: [u32; 2] = [0o400, 0o440];

/// Options forced onto a bind mount the plugin has no writable grant for.
const FORCED_MOUNT_OPTIONS: [&str; 3] = ["ro", "nosuid", "nodev"];

/// What one plugin may ask for: its grants, resolved, and the host's secret grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance<'a> {
    /// The plugin's declared name (secret grants name plugins).
    pub plugin: &'a str,
    /// Tightening kinds it may return.
    pub kinds: &'a BTreeSet<MutationKind>,
    /// Its scoped grants.
    pub grants: &'a Grants,
    /// The host's `[[secrets.grants]]`.
    pub secrets: &'a [SecretGrant],
}

/// The container a decision is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The pod's namespace (secret grants are per namespace).
    pub namespace: &'a str,
    /// The current spec; `None` before the container record exists (CreateContainer), when only
    /// the grant rules that need no spec can be checked. The engine judges again at
    /// PostCreateContainer with the spec.
    pub spec: Option<CurrentSpec<'a>>,
}

/// What the container runs with now, as far as the spec-relative rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentSpec<'a> {
    /// The seccomp profile in force; `None` is unconfined (any profile is stricter).
    pub seccomp: Option<&'a crate::decision::SeccompProfile>,
    /// The spec's mounts.
    pub mounts: &'a [Mount],
    /// Effective rlimits by name: the spec's, or the runtime's default where the spec sets none.
    /// A limit missing here is unknown, and may only be set by an operator-trusted plugin.
    pub rlimits: &'a BTreeMap<String, Rlimit>,
}

/// A mutation the plugin may not ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Violation {
    /// The mutation, briefly (`add-mount / at /host`).
    pub mutation: String,
    /// What grant is missing, or which rule it breaks.
    pub missing: String,
}

impl Violation {
    /// The refused mutation's kind (`add-mount`, `set-seccomp`, ...): the first word of
    /// [`Violation::mutation`], which [`describe`] always starts with.
    pub fn kind(&self) -> &str {
        self.mutation.split(' ').next().unwrap_or_default()
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused: {}", self.mutation, self.missing)
    }
}

/// Judges every mutation of `decision`; returns the decision as it may be applied (normalized),
/// or the first violation. Takes the decision by value: a mutation within the grants is kept,
/// not copied (a seccomp profile is hundreds of strings).
pub fn judge(
    allowance: &Allowance<'_>,
    subject: &Subject<'_>,
    decision: Decision,
) -> Result<Decision, Violation> {
    let Decision { verdict, mutations } = decision;
    let mutations = mutations
        .into_iter()
        .map(|mutation| {
            judge_one(allowance, subject, &mutation)
                .map(|normalized| normalized.unwrap_or(mutation))
        })
        .collect::<Result<_, _>>()?;
    Ok(Decision { verdict, mutations })
}

/// `Ok(None)`: the mutation may be applied as it is; `Ok(Some(m))`: as `m` (normalized).
fn judge_one(
    allowance: &Allowance<'_>,
    subject: &Subject<'_>,
    mutation: &Mutation,
) -> Result<Option<Mutation>, Violation> {
    let violation = |missing: String| Violation {
        mutation: describe(mutation),
        missing,
    };
    let refuse = |missing: String| Err(violation(missing));
    let kind = mutation.mutation_kind();
    match mutation {
        Mutation::DropCapabilities(_)
        | Mutation::KeepOnlyCapabilities(_)
        | Mutation::SetNoNewPrivileges
        | Mutation::SetReadonlyRootfs
        | Mutation::SetSeccomp(_)
        | Mutation::AddRlimit(_)
            if !allowance.kinds.contains(&kind) =>
        {
            refuse(format!("the plugin has no grant for {kind}"))
        }
        Mutation::SetSeccomp(profile) => {
            if let Some(current) = subject.spec.and_then(|s| s.seccomp)
                && !at_least_as_strict(profile, current)
            {
                return refuse(
                    "the profile permits syscalls the container's current profile blocks".into(),
                );
            }
            Ok(None)
        }
        Mutation::AddRlimit(limit) => {
            if let Some(spec) = subject.spec {
                match spec.rlimits.get(&limit.kind) {
                    Some(current) if limit.hard > current.hard || limit.soft > current.soft => {
                        return refuse(format!(
                            "raises {} above the current {}/{} (soft/hard); limits only go down",
                            limit.kind, current.soft, current.hard
                        ));
                    }
                    Some(_) => {}
                    None => {
                        return refuse(format!(
                            "the current value of {} is unknown, so lowering it cannot be proven",
                            limit.kind
                        ));
                    }
                }
            }
            Ok(None)
        }
        Mutation::DropCapabilities(_)
        | Mutation::KeepOnlyCapabilities(_)
        | Mutation::SetNoNewPrivileges
        | Mutation::SetReadonlyRootfs => Ok(None),
        Mutation::AddEnv { name, .. } => {
            if crate::config::is_forbidden_env(name) {
                return refuse(format!("{name} can never be set by a plugin"));
            }
            if !allowance.grants.covers_env(name) {
                return refuse(format!("the plugin has no env grant for {name}"));
            }
            Ok(None)
        }
        Mutation::AddAnnotation { key, .. } => {
            if crate::config::is_reserved_annotation(key) {
                return refuse(format!("{key} is under a prefix the runtime interprets"));
            }
            if !allowance.grants.covers_annotation(key) {
                return refuse(format!("the plugin has no annotation grant for {key}"));
            }
            Ok(None)
        }
        Mutation::AddMount(mount) => judge_mount(allowance, subject, mount)
            .map(|mount| Some(Mutation::AddMount(mount)))
            .map_err(violation),
        Mutation::MountSecret(secret) => {
            judge_secret(allowance, subject, secret).map_err(violation)?;
            Ok(None)
        }
    }
}

fn judge_mount(
    allowance: &Allowance<'_>,
    subject: &Subject<'_>,
    mount: &Mount,
) -> Result<Mount, String> {
    check_destination(&mount.destination, subject)?;
    let is_bind = mount.fs_type.is_empty()
        || mount.fs_type == "bind"
        || mount.options.iter().any(|o| o == "bind" || o == "rbind");
    if !is_bind {
        return Err(format!(
            "only bind mounts of granted host paths can be added, not type {:?}",
            mount.fs_type
        ));
    }
    if !is_clean_absolute(&mount.source) {
        return Err(format!(
            "host path {:?} must be absolute without `.` or `..`",
            mount.source
        ));
    }
    let Some(grant) = allowance
        .grants
        .mounts
        .iter()
        .filter(|g| under(&mount.source, &g.source))
        .max_by_key(|g| g.writable)
    else {
        return Err(format!(
            "host path {} is outside the plugin's mount grants",
            mount.source
        ));
    };
    let mut granted = mount.clone();
    if granted.fs_type.is_empty() {
        granted.fs_type = "bind".into();
    }
    if !granted.options.iter().any(|o| o == "bind" || o == "rbind") {
        granted.options.insert(0, "rbind".into());
    }
    if !grant.writable {
        granted.options.retain(|o| {
            !matches!(
                o.as_str(),
                "rw" | "ro" | "suid" | "nosuid" | "dev" | "nodev"
            )
        });
        granted
            .options
            .extend(FORCED_MOUNT_OPTIONS.iter().map(|o| o.to_string()));
    }
    Ok(granted)
}

fn judge_secret(
    allowance: &Allowance<'_>,
    subject: &Subject<'_>,
    secret: &SecretMount,
) -> Result<(), String> {
    if !SECRET_MODES.contains(&secret.mode) {
        return Err(format!(
            "mode {:04o} is not allowed (0400 or 0440)",
            secret.mode
        ));
    }
    check_destination(&secret.target, subject)?;
    if !allowance
        .secrets
        .iter()
        .any(|g| g.covers(allowance.plugin, subject.namespace, &secret.secret))
    {
        return Err(format!(
            "no [[secrets.grants]] entry lets plugin {} mount secret {:?} in namespace {:?}",
            allowance.plugin, secret.secret, subject.namespace
        ));
    }
    Ok(())
}

/// Where a mount (or secret) may go: absolute, clean, not `/`, not at or under a protected
/// kernel interface, and (once the spec is known) neither replacing nor hiding a mount the
/// container already has.
fn check_destination(destination: &str, subject: &Subject<'_>) -> Result<(), String> {
    if !is_clean_absolute(destination) || destination.trim_end_matches('/').is_empty() {
        return Err(format!(
            "destination {destination:?} must be an absolute path below / without `.` or `..`"
        ));
    }
    if let Some(protected) = PROTECTED_DESTINATIONS
        .iter()
        .find(|p| under(destination, p))
    {
        return Err(format!(
            "destination {destination} is at or under {protected}, which no plugin may mount over"
        ));
    }
    if let Some(spec) = subject.spec
        && let Some(existing) = spec
            .mounts
            .iter()
            .find(|m| under(&m.destination, destination))
    {
        return Err(format!(
            "destination {destination} would replace or hide the container's mount at {}",
            existing.destination
        ));
    }
    Ok(())
}

/// Whether `path` is `dir` or lies under it, by whole path components.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn is_clean_absolute(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|c| c == ".." || c == ".")
}

/// A short description of a mutation for audit records and errors (never a secret value, never
/// a whole seccomp profile).
pub fn describe(mutation: &Mutation) -> String {
    let kind = mutation.kind();
    match mutation {
        Mutation::DropCapabilities(caps) | Mutation::KeepOnlyCapabilities(caps) => {
            let names: Vec<&str> = caps.iter().map(|c| c.name()).collect();
            format!("{kind} {}", names.join(","))
        }
        Mutation::SetSeccomp(profile) => format!(
            "{kind} (default {:?}, {} rules)",
            profile.default_action,
            profile.syscalls.len()
        ),
        Mutation::SetNoNewPrivileges | Mutation::SetReadonlyRootfs => kind.to_string(),
        Mutation::AddEnv { name, .. } => format!("{kind} {name}"),
        Mutation::AddAnnotation { key, .. } => format!("{kind} {key}"),
        Mutation::AddRlimit(limit) => {
            format!("{kind} {} {}/{}", limit.kind, limit.soft, limit.hard)
        }
        Mutation::AddMount(mount) => format!(
            "{kind} {} at {}",
            if mount.source.is_empty() {
                &mount.fs_type
            } else {
                &mount.source
            },
            mount.destination
        ),
        Mutation::MountSecret(secret) => {
            format!(
                "{kind} {} at {} mode {:04o}",
                secret.secret, secret.target, secret.mode
            )
        }
    }
}

#[cfg(test)]
mod tests;
