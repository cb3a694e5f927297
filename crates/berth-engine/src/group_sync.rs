//! Group commit for the metadata database: removals in flight share one `fdatasync`.
//!
//! A durable removal commits without fsync ([`berth_store::Store::remove_container_record`]
//! with `durable: false`), then calls [`GroupSync::sync`], which returns once a durable
//! commit made *after* that commit has returned: redb persists the commits made without
//! fsync together with the next one made with it ([`berth_store::Store::sync_metadata`]).
//! Callers that arrive while a sync runs wait for it and then for one more, which covers
//! them all: `rm -f` of 50 (the CLI sends up to 50 removals at once) pays a few fsyncs, not
//! fifty.
//!
//! ```text
//!  caller:  commit (no fsync) ── ticket = ++taken ── lock ── durable ≥ ticket? ── done
//!                                                          └─ no: upto = taken; sync; durable = upto
//! ```
//!
//! A ticket is taken after its commit returned, so a sync that reads `taken` before it
//! begins covers every ticket up to the value it read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_store::Store;

use crate::error::{EngineError, Result};

#[derive(Default)]
pub(crate) struct GroupSync {
    /// Tickets handed out so far.
    taken: AtomicU64,
    /// Every ticket up to this one is durable.
    durable: AtomicU64,
    /// Held by the caller running a sync; the others queue (fairly) behind it.
    running: tokio::sync::Mutex<()>,
    /// Syncs run so far.
    runs: AtomicU64,
}

impl GroupSync {
    /// Returns once every metadata commit that returned before this call is durable.
    pub(crate) async fn sync(&self, store: &Arc<Store>) -> Result<()> {
        let ticket = self.taken.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = self.running.lock().await;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let upto = self.taken.load(Ordering::SeqCst);
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.sync_metadata())
            .await
            .map_err(|e| EngineError::Internal(format!("metadata sync task: {e}")))??;
        self.durable.fetch_max(upto, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> (Arc<Store>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("berth-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Arc::new(Store::open(&dir).expect("store opens")), dir)
    }

    /// Callers that queue behind a running sync share the next one: twenty callers, one
    /// sync, every ticket durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_behind_a_sync_share_the_next() {
        let (store, dir) = store("group-sync-share");
        let g = Arc::new(GroupSync::default());
        // Stands in for a sync in progress: every caller takes its ticket and queues.
        let held = g.running.lock().await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (g, store) = (g.clone(), store.clone());
                tokio::spawn(async move { g.sync(&store).await })
            })
            .collect();
        while g.taken.load(Ordering::SeqCst) < 20 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.expect("task").expect("sync");
        }
        assert_eq!(g.durable.load(Ordering::SeqCst), 20, "every ticket durable");
        assert_eq!(g.runs.load(Ordering::SeqCst), 1, "one sync for the twenty");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A caller that comes after a sync finished gets a sync of its own (a commit made
    /// after a sync began is not covered by it).
    #[tokio::test]
    async fn a_later_caller_gets_its_own_sync() {
        let (store, dir) = store("group-sync-later");
        let g = GroupSync::default();
        g.sync(&store).await.expect("first");
        g.sync(&store).await.expect("second");
        assert_eq!(g.runs.load(Ordering::SeqCst), 2);
        assert_eq!(g.durable.load(Ordering::SeqCst), 2);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
