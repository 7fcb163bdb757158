//! The node-local guard key and the marker it produces.
//!
//! A marker is the lowercase hex HMAC-SHA256 of a container id under a 32-byte key that only
//! root can read. containerd generates container ids at CRI CreateContainer, so a marker cannot
//! be computed in advance or copied from another container; whoever can produce one for a given
//! id holds the key — on a node, bulkhead and the hook.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

/// Key length in bytes: the HMAC-SHA256 output size, the strength of the construction.
pub const KEY_LEN: usize = 32;

/// Length of a marker: hex of a SHA-256 sized tag.
pub const MARKER_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The secret both bulkhead (to write markers) and the hook (to check them) read.
///
/// `Debug` prints `GuardKey(<redacted>)`; there is no `Display` and no accessor for the bytes:
/// the key is only ever used through [`marker`] and [`verify`].
#[derive(Clone)]
pub struct GuardKey {
    bytes: [u8; KEY_LEN],
}

impl fmt::Debug for GuardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardKey(<redacted>)")
    }
}

impl GuardKey {
    /// A key from raw bytes, for tests and for callers that keep the key elsewhere.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self { bytes }
    }

    /// Reads the key file at `path`.
    ///
    /// Refuses a file that is not regular, that is not owned by root (its owner could read or
    /// replace the key), that grants group or others any permission (the key may have leaked,
    /// and a marker is only worth as much as the key's secrecy), or that does not hold exactly
    /// [`KEY_LEN`] bytes. The checks run on the opened file, not the path, so a file swapped
    /// between check and read is still caught.
    ///
    /// # Errors
    /// [`Error::KeyRead`], [`Error::KeyNotAFile`], [`Error::KeyOwner`],
    /// [`Error::KeyPermissions`], [`Error::KeyLength`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_owned_by(path.as_ref(), ROOT_UID)
    }

    /// [`GuardKey::load`] with the required owner as a parameter, so the rest of the loading
    /// path is testable by a non-root user. Production code always passes [`ROOT_UID`].
    fn load_owned_by(path: &Path, owner: u32) -> Result<Self> {
        let read = |source| Error::KeyRead {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read)?;
        let meta = file.metadata().map_err(read)?;
        check_key_metadata(
            path,
            &KeyMetadata {
                is_file: meta.is_file(),
                uid: meta.uid(),
                mode: meta.mode(),
                len: meta.len(),
            },
            owner,
        )?;
        // Read one byte more than needed: a file that grew after fstat is still refused.
        let mut buf = [0u8; KEY_LEN + 1];
        let mut len = 0;
        loop {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if len == buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read(e)),
            }
        }
        if len != KEY_LEN {
            return Err(Error::KeyLength {
                path: path.to_owned(),
                len: len as u64,
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&buf[..KEY_LEN]);
        buf.fill(0);
        Ok(Self { bytes })
    }

    /// Creates a new random key file at `path` (mode 0600) and returns the key.
    ///
    /// Never replaces an existing file: a new key invalidates every marker already written, so
    /// containers created but not yet started would be refused. The parent directory is created
    /// (mode 0700) if missing. The key is written to a temporary file in the same directory,
    /// synced, then hard-linked into place, so `path` either does not exist or holds a complete
    /// key, even after a crash.
    ///
    /// # Errors
    /// [`Error::KeyExists`], [`Error::Random`], [`Error::KeyWrite`].
    pub fn generate(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let write = |at: &Path| {
            let at = at.to_owned();
            move |source| Error::KeyWrite { path: at, source }
        };
        if path.symlink_metadata().is_ok() {
            return Err(Error::KeyExists {
                path: path.to_owned(),
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(Error::Random)?;

        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(write(&dir))?;
        }
        let file_name = path.file_name().ok_or_else(|| Error::KeyWrite {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(write(&tmp))?;
            file.write_all(&bytes).map_err(write(&tmp))?;
            file.sync_all().map_err(write(&tmp))?;
            fs::hard_link(&tmp, path).map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    Error::KeyExists {
                        path: path.to_owned(),
                    }
                } else {
                    Error::KeyWrite {
                        path: path.to_owned(),
                        source,
                    }
                }
            })?;
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        let _ = fs::remove_file(&tmp);
        result.map(|()| Self { bytes })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.bytes).expect("HMAC accepts keys of any length")
    }
}

/// The uid a key file must belong to: only root may be able to read or replace the key.
pub const ROOT_UID: u32 = 0;

/// What [`check_key_metadata`] looks at, taken from `fstat` of the opened key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMetadata {
    /// Whether it is a regular file.
    pub is_file: bool,
    /// The owning uid.
    pub uid: u32,
    /// `st_mode` (type bits are ignored).
    pub mode: u32,
    /// Size in bytes.
    pub len: u64,
}

/// The rules a key file must pass before its bytes are trusted, as a pure function of its
/// metadata so each rule is unit-testable with plain values (no root, no chown):
/// a regular file, owned by `owner` (root in production), no access for group or others, and
/// exactly [`KEY_LEN`] bytes. Checked in that order; the error names `path`.
///
/// # Errors
/// [`Error::KeyNotAFile`], [`Error::KeyOwner`], [`Error::KeyPermissions`], [`Error::KeyLength`].
pub fn check_key_metadata(path: &Path, meta: &KeyMetadata, owner: u32) -> Result<()> {
    let path = path.to_owned();
    if !meta.is_file {
        return Err(Error::KeyNotAFile { path });
    }
    if meta.uid != owner {
        return Err(Error::KeyOwner {
            path,
            uid: meta.uid,
        });
    }
    let mode = meta.mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyPermissions { path, mode });
    }
    if meta.len != KEY_LEN as u64 {
        return Err(Error::KeyLength {
            path,
            len: meta.len,
        });
    }
    Ok(())
}

/// The marker bulkhead writes for `container_id`: lowercase hex HMAC-SHA256 of the id.
///
/// bulkhead puts it in the container's stored spec as annotation [`crate::MARKER_ANNOTATION`]
/// during NRI PostCreateContainer, once the container is admitted; the hook finds it again in
/// the OCI state when the task is created.
pub fn marker(key: &GuardKey, container_id: &str) -> String {
    let mut mac = key.mac();
    mac.update(container_id.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(MARKER_LEN);
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// Whether `marker` is the marker of `container_id` under `key`.
///
/// The tag comparison is constant-time (`hmac`'s `verify_slice`), so timing does not reveal how
/// much of a forged marker was right. Hex in either case is accepted; anything that is not 64
/// hex digits is simply wrong.
pub fn verify(key: &GuardKey, container_id: &str, marker: &str) -> bool {
    let Some(tag) = decode_hex(marker) else {
        return false;
    };
    let mut mac = key.mac();
    mac.update(container_id.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn decode_hex(text: &str) -> Option<[u8; MARKER_LEN / 2]> {
    let text = text.as_bytes();
    if text.len() != MARKER_LEN {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; MARKER_LEN / 2];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const ID: &str = "3f1c0d7e9a2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";

    fn key(fill: u8) -> GuardKey {
        GuardKey::from_bytes([fill; KEY_LEN])
    }

    fn write_key(dir: &Path, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join("guard.key");
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn marker_is_hmac_sha256_hex() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            expected
        );
        // And our hex encoder agrees with format!.
        let m = marker(&key(7), ID);
        assert_eq!(m.len(), MARKER_LEN);
        assert!(
            m.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let mut mac = key(7).mac();
        mac.update(ID.as_bytes());
        let direct: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(m, direct);
    }

    #[test]
    fn marker_verifies_for_its_id_and_key_only() {
        let m = marker(&key(1), ID);
        assert!(verify(&key(1), ID, &m));
        assert!(verify(&key(1), ID, &m.to_ascii_uppercase()));
        assert!(!verify(&key(2), ID, &m), "another node's key");
        assert!(!verify(&key(1), "other-container", &m), "another container");
    }

    #[test]
    fn malformed_markers_are_refused() {
        let m = marker(&key(1), ID);
        for bad in [
            String::new(),
            m[..62].to_string(),
            format!("{m}00"),
            format!("{}zz", &m[..62]),
            format!(" {}", &m[1..]),
        ] {
            assert!(!verify(&key(1), ID, &bad), "{bad:?}");
        }
        // One flipped digit.
        let mut flipped = m.into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!verify(&key(1), ID, &String::from_utf8(flipped).unwrap()));
    }

    #[test]
    fn debug_redacts_the_key() {
        let text = format!("{:?}", key(0xab));
        assert_eq!(text, "GuardKey(<redacted>)");
    }

    fn private_root_key() -> KeyMetadata {
        KeyMetadata {
            is_file: true,
            uid: ROOT_UID,
            mode: 0o100600,
            len: KEY_LEN as u64,
        }
    }

    #[test]
    fn key_metadata_of_a_private_root_file_passes() {
        let path = Path::new("/etc/bulkhead/guard.key");
        check_key_metadata(path, &private_root_key(), ROOT_UID).unwrap();
        let read_only = KeyMetadata {
            mode: 0o100400,
            ..private_root_key()
        };
        check_key_metadata(path, &read_only, ROOT_UID).unwrap();
    }

    #[test]
    fn key_metadata_not_owned_by_root_is_refused() {
        let path = Path::new("/etc/bulkhead/guard.key");
        for uid in [1, 1000, 65534] {
            let meta = KeyMetadata {
                uid,
                ..private_root_key()
            };
            let error = check_key_metadata(path, &meta, ROOT_UID).unwrap_err();
            assert!(
                matches!(error, Error::KeyOwner { uid: u, .. } if u == uid),
                "{uid}: {error}"
            );
            let text = error.to_string();
            assert!(text.contains("/etc/bulkhead/guard.key"), "{text}");
            assert!(text.contains(&format!("uid {uid}")), "{text}");
        }
    }

    #[test]
    fn key_metadata_rules_in_order() {
        let path = Path::new("k");
        let check = |meta: KeyMetadata| check_key_metadata(path, &meta, ROOT_UID).unwrap_err();
        let base = private_root_key();
        // Every rule broken at once: the file type is reported first, then the owner.
        let all_bad = KeyMetadata {
            is_file: false,
            uid: 1000,
            mode: 0o644,
            len: 1,
        };
        assert!(matches!(check(all_bad), Error::KeyNotAFile { .. }));
        let owner_and_mode = KeyMetadata {
            uid: 1000,
            mode: 0o100644,
            ..base
        };
        assert!(matches!(check(owner_and_mode), Error::KeyOwner { .. }));
        let mode = KeyMetadata {
            mode: 0o100640,
            ..base
        };
        assert!(matches!(
            check(mode),
            Error::KeyPermissions { mode: 0o640, .. }
        ));
        let len = KeyMetadata { len: 31, ..base };
        assert!(matches!(check(len), Error::KeyLength { len: 31, .. }));
    }

    #[test]
    fn load_refuses_a_key_file_not_owned_by_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_key(dir.path(), &[9; KEY_LEN], 0o600);
        let uid = fs::metadata(&path).unwrap().uid();
        // The real owner passes when it is the owner required ...
        GuardKey::load_owned_by(&path, uid).unwrap();
        // ... and is refused when another one is.
        let error = GuardKey::load_owned_by(&path, uid.wrapping_add(1)).unwrap_err();
        assert!(matches!(error, Error::KeyOwner { .. }), "{error}");
        // `load` itself requires root: give the file away (needs root to chown).
        if running_as_root(&path) {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let error = GuardKey::load(&path).unwrap_err();
            assert!(
                matches!(error, Error::KeyOwner { uid: 65534, .. }),
                "{error}"
            );
        } else {
            println!("not root: skipping the chown part of this test");
        }
    }

    /// Whether this test runs as root, judged by the owner of a file it just created (the crate
    /// has no syscall dependency to ask directly).
    fn running_as_root(created: &Path) -> bool {
        fs::metadata(created).unwrap().uid() == ROOT_UID
    }

    #[test]
    fn load_reads_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_key(dir.path(), &[9; KEY_LEN], 0o600);
        let loaded = GuardKey::load(&path).unwrap();
        assert_eq!(marker(&loaded, ID), marker(&key(9), ID));
        let path = write_key(dir.path(), &[9; KEY_LEN], 0o400);
        GuardKey::load(&path).unwrap();
    }

    #[test]
    fn load_refuses_group_or_other_access() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666, 0o601] {
            let path = write_key(dir.path(), &[9; KEY_LEN], mode);
            let error = GuardKey::load(&path).unwrap_err();
            assert!(
                matches!(error, Error::KeyPermissions { mode: m, .. } if m == mode),
                "{mode:o}: {error}"
            );
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
    }

    #[test]
    fn load_refuses_wrong_lengths() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, KEY_LEN - 1, KEY_LEN + 1, 64] {
            let path = write_key(dir.path(), &vec![0x5a; len], 0o600);
            let error = GuardKey::load(&path).unwrap_err();
            assert!(
                matches!(error, Error::KeyLength { len: l, .. } if l == len as u64),
                "{len}: {error}"
            );
        }
    }

    #[test]
    fn load_refuses_missing_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let missing = GuardKey::load(dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, Error::KeyRead { .. }), "{missing}");
        let not_a_file = GuardKey::load(dir.path()).unwrap_err();
        assert!(
            matches!(not_a_file, Error::KeyNotAFile { .. }),
            "{not_a_file}"
        );
    }

    #[test]
    fn errors_never_show_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // A 33-byte "key" of recognisable bytes, world-readable: both checks fail on it.
        let path = write_key(dir.path(), &[b'K'; KEY_LEN + 1], 0o644);
        let error = GuardKey::load(&path).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("KKKK"));
    }

    #[test]
    fn generate_writes_a_private_random_key_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/bulkhead/guard.key");
        let generated = GuardKey::generate(&path).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let loaded = GuardKey::load(&path).unwrap();
        assert_eq!(marker(&generated, ID), marker(&loaded, ID));
        assert_ne!(generated.bytes, [0; KEY_LEN]);

        let again = GuardKey::generate(&path).unwrap_err();
        assert!(matches!(again, Error::KeyExists { .. }), "{again}");
        assert_eq!(
            marker(&GuardKey::load(&path).unwrap(), ID),
            marker(&loaded, ID)
        );
        // No temporary file left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);

        let other = GuardKey::generate(dir.path().join("other.key")).unwrap();
        assert_ne!(
            marker(&other, ID),
            marker(&generated, ID),
            "keys are random"
        );
    }
}
