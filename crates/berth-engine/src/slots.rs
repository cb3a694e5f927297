//! Container slots: the directories of the next `create`, made ahead of time.
//!
//! On this host's ext4 every inode creation costs 0.3-0.7 ms of kernel CPU time, and a
//! create made ten of them on its path (the shim an eleventh, the log, at the start).
//! berthd keeps one slot ready instead, made on a blocking-pool thread off the request
//! path (like the standby shim, see [`crate::shim`]); the create request went from ~11 to
//! ~2.7 ms (docs/engine.md, "Container slots"):
//!
//! ```text
//!  <data-root>/containers/<id>/                a fresh 64-hex container ID
//!                              rootfs/
//!                              hostname hosts resolv.conf config.json   (empty, as a create
//!                              <id>-json.log                             makes them; the log
//!                                                                        0640 as the shim's)
//!  <data-root>/snapshots/<sid>/{fs,work}       a [`SnapshotSlot`], with its link l/<LINK>
//! ```
//!
//! - **Not tied to an image or a name.** A create that got past its validation takes the
//!   slot for its ID, writes the four files (`std::fs::write` truncates: the same content
//!   and mode as a file it creates) and records the snapshot in the slot's directories
//!   with its image and parent ([`berth_store::Store::prepare_container_in`]). With no
//!   slot ready (the first create, a burst, a failed preparation) a create makes its
//!   directories itself, as before.
//! - **When the next one is made.** After a container's start (`POST .../start`): not
//!   right after the create, because `docker run` starts the container at once, and the
//!   start creates inodes on the same filesystem (the shim's files, the overlay's work
//!   dir, the upper dir's mount points), which ran up to 35% slower beside the slot's
//!   (measured: `run --rm` 1.4-2.9 ms faster than with the slot made after the create,
//!   which gained nothing over no slots). A create that found no slot, or failed, starts
//!   one itself, so creates without starts get every other slot.
//! - **Used once.** A create that fails after taking the slot removes it with everything
//!   else it made; the ID is never handed out again.
//! - **Unreferenced until recorded.** No container record names a slot, so nothing lists,
//!   inspects or restores it as a container. The store's GC leaves a slot's snapshot alone
//!   while this process holds it; after a crash (SIGKILL), the next start removes both
//!   halves: the store's GC at open takes the snapshot directory and link, and
//!   [`remove_unrecorded`] every container directory without a record.
//! - **Shutdown** ([`crate::Engine::shutdown`]) removes the ready slot; one still being made
//!   at that moment is left to the next start.

use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::{SnapshotSlot, Store};

use crate::error::{EngineError, Result};
use crate::names;

/// The files a create writes into the container directory (besides `rootfs/`).
const FILES: [&str; 4] = ["hostname", "hosts", "resolv.conf", "config.json"];

/// A prepared container directory and snapshot. Dropped before a create took it, both are
/// removed.
#[derive(Debug)]
pub struct Slot {
    id: String,
    dir: PathBuf,
    snapshot: Option<SnapshotSlot>,
}

impl Slot {
    /// Makes a slot: the container directory under `containers` and a snapshot slot.
    fn prepare(store: &Store, containers: &Path) -> Result<Slot> {
        let id = names::new_id();
        let dir = containers.join(&id);
        // `create_dir`, not `create_dir_all`: an existing directory (an ID in use) fails.
        std::fs::create_dir(&dir)
            .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        let mut slot = Slot {
            id,
            dir,
            snapshot: None,
        };
        std::fs::create_dir(slot.dir.join("rootfs")).map_err(EngineError::io(format!(
            "creating {}/rootfs",
            slot.dir.display()
        )))?;
        for f in FILES {
            std::fs::File::create(slot.dir.join(f)).map_err(EngineError::io(format!(
                "creating {}/{f}",
                slot.dir.display()
            )))?;
        }
        create_log_file(&slot.dir, &slot.id)?;
        slot.snapshot = Some(store.prepare_slot()?);
        Ok(slot)
    }

    /// The container ID the slot was made for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Hands the slot to a create: the container directory is the create's from now on (its
    /// failure path removes it), the snapshot slot goes to the store's prepare.
    pub(crate) fn take(mut self) -> Option<SnapshotSlot> {
        let snapshot = self.snapshot.take();
        self.dir = PathBuf::new();
        snapshot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Creates the container's empty json-file log, `<id>-json.log`, with the mode the shim
/// gives it (0640, `berth-shim/src/log.rs`; the shim appends to an existing one): one inode
/// creation less on the start's path. Every create makes it, with a slot or without.
pub(crate) fn create_log_file(dir: &Path, id: &str) -> Result<()> {
    let path = dir.join(format!("{id}-json.log"));
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&path)
        .map(drop)
        .map_err(EngineError::io(format!("creating {}", path.display())))
}

/// The one slot kept ready (one per engine).
pub struct SlotPool {
    store: Arc<Store>,
    containers: PathBuf,
    state: Arc<Mutex<PoolState>>,
}

#[derive(Debug, Default)]
struct PoolState {
    ready: Option<Slot>,
    filling: bool,
    /// Set by shutdown: a slot finished afterwards is removed, not kept.
    closed: bool,
}

impl SlotPool {
    /// A pool that makes slots in `containers` (`<data-root>/containers`) and `store`.
    /// Empty until the first [`SlotPool::take`]: daemons that never create a container
    /// (most tests) make none.
    pub fn new(store: Arc<Store>, containers: PathBuf) -> SlotPool {
        SlotPool {
            store,
            containers,
            state: Arc::default(),
        }
    }

    /// The ready slot, if any. The next one is made on [`SlotPool::refill`].
    pub fn take(&self) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.take()
    }

    /// Starts making the next slot unless one is ready or on its way (inside a tokio
    /// runtime; no-op otherwise).
    pub fn refill(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill_locked(&mut st);
    }

    /// The ID of the ready slot (tests).
    pub fn ready_id(&self) -> Option<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.as_ref().map(|s| s.id.clone())
    }

    /// Stops making slots and returns the ready one, for the caller to drop (which removes
    /// its directories) off the async threads.
    pub fn close(&self) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        st.ready.take()
    }

    fn refill_locked(&self, st: &mut PoolState) {
        if st.filling || st.closed || st.ready.is_some() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        st.filling = true;
        let store = self.store.clone();
        let containers = self.containers.clone();
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let made = Slot::prepare(&store, &containers);
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.filling = false;
            match made {
                Ok(slot) if !st.closed => st.ready = Some(slot),
                // Dropped after the lock: its directories are removed.
                Ok(slot) => {
                    drop(st);
                    drop(slot);
                }
                // A failed preparation dropped its half-made slot (removed); the next
                // take tries again, and creates meanwhile make their own directories.
                Err(e) => tracing::warn!("cannot prepare a container slot: {e}"),
            }
        });
    }
}

/// Removes the container directories under `containers` that no record names: slots and
/// creates a crash interrupted, removals a crash interrupted after their commit. Only names
/// that are container IDs (64 lowercase hex) are touched. Called at open, before any
/// create can run. Returns how many were removed.
pub fn remove_unrecorded(
    store: &Store,
    containers: &Path,
    recorded: &HashSet<&str>,
) -> Result<usize> {
    let rd = std::fs::read_dir(containers)
        .map_err(EngineError::io(format!("listing {}", containers.display())))?;
    let mut removed = 0;
    for e in rd {
        let e = e.map_err(EngineError::io(format!("listing {}", containers.display())))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_id =
            name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_id && !recorded.contains(name) {
            store.discard(&e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
