//! What the daemon around the NRI layer can see of the session: whether bulkhead is registered
//! and synchronized with the runtime right now (its readiness), and how often the connection
//! had to be made again.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// The live state of [`crate::run`]'s sessions, shared with whoever reports health.
#[derive(Debug)]
pub struct SessionStatus {
    ready: watch::Sender<bool>,
    reconnects: AtomicU64,
}

impl Default for SessionStatus {
    fn default() -> SessionStatus {
        SessionStatus {
            ready: watch::Sender::new(false),
            reconnects: AtomicU64::new(0),
        }
    }
}

impl SessionStatus {
    /// Registered and synchronized with the runtime: events are being served.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Follows readiness as it changes.
    pub fn watch_ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Connections made again after a registered session ended.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}
