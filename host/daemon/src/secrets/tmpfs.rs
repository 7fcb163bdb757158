//! Keeping materialized secrets in memory: the runtime directory is bulkhead's own private tmpfs.
//!
//! bulkhead always mounts its own tmpfs on the runtime directory, with its own size cap and
//! options, even when the directory already lies on a tmpfs (`/run` on systemd hosts): a shared
//! tmpfs has someone else's size limit (so secrets could fill `/run` and starve the host) and
//! someone else's mount options. The only case it skips is a restart that finds its own mount
//! still there — the directory is itself the mount point of a tmpfs whose source is
//! [`MOUNT_SOURCE`] — so restarts do not stack mounts.

use std::io;
use std::path::{Path, PathBuf};

/// The source name bulkhead gives its tmpfs; how a restart recognizes its own mount in
/// `/proc/self/mountinfo`.
pub const MOUNT_SOURCE: &str = "bulkhead-secrets";

/// Mount data: private to root, and capped so secrets cannot fill memory.
const MOUNT_DATA: &std::ffi::CStr = c"mode=0700,size=64m";

/// Mounts bulkhead's tmpfs (mode 0700, size 64m, nosuid, nodev, noexec) on `dir` unless `dir`
/// already is the mount point of one (see the module docs).
pub fn ensure_tmpfs(dir: &Path) -> io::Result<()> {
    // mountinfo lists resolved paths; compare against the directory with symlinks resolved.
    let dir = std::fs::canonicalize(dir)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    if is_bulkhead_tmpfs(&mountinfo, &dir) {
        tracing::info!(dir = %dir.display(), "bulkhead's secrets tmpfs is already mounted");
        return Ok(());
    }
    use rustix::mount::{MountFlags, mount};
    mount(
        MOUNT_SOURCE,
        &dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(MOUNT_DATA),
    )?;
    tracing::info!(dir = %dir.display(), "mounted a private tmpfs for secrets");
    Ok(())
}

/// One line of `/proc/self/mountinfo`, the fields bulkhead looks at.
#[derive(Debug, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    fs_type: String,
    source: String,
}

/// Parses a mountinfo line (`proc(5)`): `id parent major:minor root mount-point options
/// [optional...] - fstype source super-options`. Octal escapes (`\040` for a space) are decoded.
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let mount_point = *fields.get(4)?;
    let separator = fields.iter().skip(6).position(|f| *f == "-")? + 6;
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type: unescape(fields.get(separator + 1)?),
        source: unescape(fields.get(separator + 2)?),
    })
}

/// Whether the mount visible at `dir` (the last one listed for that mount point: later mounts
/// cover earlier ones) is bulkhead's own tmpfs. A tmpfs that merely contains `dir`, or one with
/// another source, is not.
fn is_bulkhead_tmpfs(mountinfo: &str, dir: &Path) -> bool {
    mountinfo
        .lines()
        .filter_map(parse_mountinfo_line)
        .rfind(|entry| entry.mount_point == dir)
        .is_some_and(|entry| entry.fs_type == "tmpfs" && entry.source == MOUNT_SOURCE)
}

/// Decodes the kernel's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=400000k,mode=755
40 25 0:40 / /run/bulkhead/secrets rw,nosuid,nodev,noexec - tmpfs bulkhead-secrets rw,size=65536k,mode=700
41 22 0:41 / /var/lib/with\\040space rw - tmpfs bulkhead-secrets rw
42 22 0:42 / /srv/other rw - tmpfs other-tmpfs rw
";

    #[test]
    fn parses_mountinfo_lines() {
        let entry = parse_mountinfo_line(MOUNTINFO.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            entry,
            MountEntry {
                mount_point: "/run".into(),
                fs_type: "tmpfs".into(),
                source: "tmpfs".into(),
            }
        );
        let escaped = parse_mountinfo_line(MOUNTINFO.lines().nth(3).unwrap()).unwrap();
        assert_eq!(escaped.mount_point, Path::new("/var/lib/with space"));
        // No optional fields, several optional fields, and garbage.
        let many = "1 2 0:1 / /x rw shared:1 master:2 propagate_from:3 - tmpfs src rw";
        assert_eq!(parse_mountinfo_line(many).unwrap().source, "src");
        assert_eq!(parse_mountinfo_line("not a mountinfo line"), None);
        assert_eq!(parse_mountinfo_line(""), None);
    }

    #[test]
    fn only_our_own_mount_point_counts() {
        let ours = Path::new("/run/bulkhead/secrets");
        assert!(is_bulkhead_tmpfs(MOUNTINFO, ours));
        assert!(is_bulkhead_tmpfs(
            MOUNTINFO,
            Path::new("/var/lib/with space")
        ));
        // Under a tmpfs (systemd's /run), but not itself a mount point: mount our own.
        assert!(!is_bulkhead_tmpfs(MOUNTINFO, Path::new("/run/bulkhead")));
        assert!(!is_bulkhead_tmpfs(MOUNTINFO, Path::new("/run")));
        // A tmpfs someone else mounted at the directory.
        assert!(!is_bulkhead_tmpfs(MOUNTINFO, Path::new("/srv/other")));
        // Our mount, covered by a later one: what is visible is not ours.
        let covered =
            format!("{MOUNTINFO}43 40 0:43 / /run/bulkhead/secrets rw - tmpfs other rw\n");
        assert!(!is_bulkhead_tmpfs(&covered, ours));
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"a\040b\011c\134d"), "a b\tc\\d");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape(r"\999"), r"\999");
    }

    /// Mount entries at `dir` in this process's mountinfo.
    fn mounts_at(dir: &Path) -> Vec<MountEntry> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(parse_mountinfo_line)
            .filter(|e| e.mount_point == dir)
            .collect()
    }

    #[test]
    fn mounts_its_own_tmpfs_even_under_a_tmpfs_parent() {
        use std::os::unix::fs::MetadataExt;

        use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};
        let scratch = tempfile::tempdir().unwrap();
        // Root or not, judged by the owner of what this test just created.
        if std::fs::metadata(scratch.path()).unwrap().uid() != 0 {
            println!("not root: skipping mounts_its_own_tmpfs_even_under_a_tmpfs_parent");
            return;
        }
        let parent = std::fs::canonicalize(scratch.path()).unwrap();
        mount(
            "test-parent",
            &parent,
            "tmpfs",
            MountFlags::empty(),
            Some(c"size=1m"),
        )
        .unwrap();
        let dir = parent.join("secrets");
        std::fs::create_dir(&dir).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            ensure_tmpfs(&dir).unwrap();
            let mounts = mounts_at(&dir);
            assert_eq!(mounts.len(), 1, "{mounts:?}");
            assert_eq!(mounts[0].fs_type, "tmpfs");
            assert_eq!(mounts[0].source, MOUNT_SOURCE);
            // A restart finds it and does not stack a second mount.
            ensure_tmpfs(&dir).unwrap();
            assert_eq!(mounts_at(&dir).len(), 1);
        });
        while !mounts_at(&dir).is_empty() {
            unmount(&dir, UnmountFlags::empty()).unwrap();
        }
        unmount(&parent, UnmountFlags::empty()).unwrap();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}
