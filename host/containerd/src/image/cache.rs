//! The image cache of one containerd connection.
//!
//! A blob never changes for a digest, so what is derived from a target digest (manifest, config)
//! is kept for the life of the process, bounded in size. A name can be re-pointed (a re-pull of a
//! tag), so a name → target answer is kept only for [`NAME_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ImageConfig;

/// How long a name → digest answer is reused. Short: it only absorbs the burst of lookups for
/// the containers of one pod, while a re-tagged image is seen almost at once.
pub const NAME_TTL: Duration = Duration::from_secs(2);
/// Entries kept per map before the cache starts over (bounds memory on busy nodes).
const MAX_ENTRIES: usize = 4096;

/// Facts derived from a target digest; valid forever.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) manifest_digest: String,
    pub(crate) config_digest: String,
    pub(crate) config: ImageConfig,
}

/// The image cache of one [`crate::Containerd`] connection.
#[derive(Debug, Default)]
pub(crate) struct ImageCache {
    /// Target digest → facts.
    by_digest: Mutex<HashMap<String, Arc<Resolved>>>,
    /// Normalized name → (when looked up, record name, target digest, media type).
    by_name: Mutex<HashMap<String, (Instant, Target)>>,
}

/// An image record's target, as containerd names it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) name: Option<String>,
    pub(crate) digest: String,
    pub(crate) media_type: String,
}

impl ImageCache {
    pub(crate) fn digest(&self, digest: &str) -> Option<Arc<Resolved>> {
        lock(&self.by_digest).get(digest).cloned()
    }

    pub(crate) fn put_digest(&self, digest: &str, resolved: Arc<Resolved>) {
        let mut map = lock(&self.by_digest);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(digest.to_owned(), resolved);
    }

    pub(crate) fn name(&self, name: &str) -> Option<Target> {
        let mut map = lock(&self.by_name);
        match map.get(name) {
            Some((at, target)) if at.elapsed() < NAME_TTL => Some(target.clone()),
            Some(_) => {
                map.remove(name);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put_name(&self, name: &str, target: Target) {
        let mut map = lock(&self.by_name);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < NAME_TTL);
        }
        map.insert(name.to_owned(), (Instant::now(), target));
    }
}

/// A poisoned cache is still a valid cache: every write is a single insert.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_cache_expires_and_digest_cache_does_not() {
        let cache = ImageCache::default();
        let target = Target {
            name: None,
            digest: "sha256:x".into(),
            media_type: String::new(),
        };
        cache.put_name("n", target);
        assert!(cache.name("n").is_some());
        lock(&cache.by_name).get_mut("n").unwrap().0 -= NAME_TTL;
        assert!(cache.name("n").is_none());
        let resolved = Arc::new(Resolved {
            manifest_digest: "m".into(),
            config_digest: "c".into(),
            config: ImageConfig::default(),
        });
        cache.put_digest("sha256:x", resolved);
        assert_eq!(cache.digest("sha256:x").unwrap().config_digest, "c");
    }
}
