//! Keeping materialized secrets in memory: the runtime directory is a private tmpfs.

use std::path::Path;

/// The statfs magic number of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Mounts a tmpfs (mode 0700, nosuid, nodev, noexec) on `dir` unless one is already there.
pub fn ensure_tmpfs(dir: &Path) -> std::io::Result<()> {
    let stat = rustix::fs::statfs(dir)?;
    if stat.f_type as i64 == TMPFS_MAGIC {
        return Ok(());
    }
    use rustix::mount::{MountFlags, mount};
    mount(
        "bulkhead-secrets",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(c"mode=0700,size=64m"),
    )?;
    tracing::info!(dir = %dir.display(), "mounted a private tmpfs for secrets");
    Ok(())
}
