//! Container slots: the directories of the next `create`, made ahead of time.
//!
//! On this host's ext4 every inode creation costs 0.3-0.7 ms of kernel CPU time, and a
//! create made ten of them on its path (the shim an eleventh, the log, at the start).
//! berthd keeps a slot ready instead, made on a blocking-pool thread off the request
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
//!   slot for its ID, writes the four files (over whatever they hold, shortened at the
//!   end: the same content and mode as a file it creates) and records the snapshot in the
//!   slot's directories
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
//! - **Recycled.** A removed container that wrote nothing (an empty upper dir) leaves its
//!   directories to a later create instead of the trash ([`Slot::recycle`]): once its shim
//!   has exited, the container directory is renamed to a fresh ID with an empty log, the
//!   snapshot keeps its directory and link with a fresh work dir, and the pool keeps it
//!   next to the slot made after the start (at most [`MAX_READY`]). A start makes a fresh
//!   slot only when none is ready and none is being recycled, so back-to-back `run --rm`
//!   settles on the create taking the directories the run before last left (the last
//!   run's are still waiting for its shim's exit), and creates and deletes none of those
//!   inodes, and frees no blocks (each freed block costs ~1.5 ms here: ext4 without a
//!   journal trims it synchronously with `discard`): the create writes the four files over
//!   their old content. Anything unexpected in the directory, a written upper dir, another
//!   runtime or a shim this daemon did not spawn: the trash, as before.
//! - **Unreferenced until recorded.** No container record names a slot, so nothing lists,
//!   inspects or restores it as a container. The store's GC leaves a slot's snapshot alone
//!   while this process holds it; after a crash (SIGKILL), the next start removes both
//!   halves: the store's GC at open takes the snapshot directory and link, and
//!   [`remove_unrecorded`] every container directory without a record.
//! - **Shutdown** ([`crate::Engine::shutdown`]) removes the ready slots; one still being
//!   made or recycled at that moment is left to the next start.

use std::collections::{HashSet, VecDeque};
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

    /// Turns a removed container's directories into a slot for the next create, instead of
    /// deleting them and making new ones (ten inode creations less per `run --rm`, and
    /// their deletions: 0.1-0.5 ms of kernel CPU each on this host's ext4, more after many
    /// recent deletions, and ~1.5 ms for each freed block, which the `discard` mount option
    /// trims synchronously without a journal). `snapshot` is the container's snapshot,
    /// released unrecorded by [`Store::remove_container_keeping`] because its upper dir was
    /// empty; it gets a fresh work dir (the old one, with overlayfs' `work/` and volatile
    /// marker, goes to the trash: a mount would otherwise delete them on the start's path).
    /// The container directory must hold exactly what a create and the shim leave
    /// (`rootfs/`, empty and not a mount point, [`FILES`] and the log), or it is not reused
    /// (`Err`: the caller discards it). It gets a fresh ID and an empty log; the create
    /// that takes the slot writes the four files over their old content (no truncation).
    pub(crate) fn recycle(
        store: &Store,
        taken: TakenDir,
        old_id: &str,
        snapshot: SnapshotSlot,
    ) -> Result<Slot> {
        // From here on, dropping the slot removes the directory.
        let mut slot = Slot {
            id: taken.id,
            dir: taken.dir,
            snapshot: None,
        };
        let dir = &slot.dir;
        let log = format!("{old_id}-json.log");
        let unexpected =
            |what: String| EngineError::Internal(format!("not reusing {}: {what}", dir.display()));
        let listing = || EngineError::io(format!("listing {}", dir.display()));
        let mut seen = 0;
        for e in std::fs::read_dir(dir).map_err(listing())? {
            let e = e.map_err(listing())?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            let file_type = e.file_type().map_err(listing())?;
            let expected = if name == "rootfs" {
                file_type.is_dir()
            } else {
                file_type.is_file() && (name == log || FILES.contains(&name.as_ref()))
            };
            if !expected {
                return Err(unexpected(format!("it holds {name}")));
            }
            seen += 1;
        }
        if seen != FILES.len() + 2 {
            return Err(unexpected(format!("{seen} entries")));
        }
        let rootfs = dir.join("rootfs");
        let (dir_dev, root_dev) = (dev_of(dir)?, dev_of(&rootfs)?);
        let rootfs_empty = std::fs::read_dir(&rootfs).is_ok_and(|mut d| d.next().is_none());
        if dir_dev != root_dev || !rootfs_empty {
            return Err(unexpected("its rootfs is mounted or not empty".into()));
        }
        let new_log = dir.join(format!("{}-json.log", slot.id));
        std::fs::rename(dir.join(&log), &new_log)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&new_log)
            })
            .map_err(EngineError::io(format!("emptying {}", new_log.display())))?;
        store.renew_slot_work(&snapshot)?;
        slot.snapshot = Some(snapshot);
        Ok(slot)
    }

    /// The first step of [`Slot::recycle`], on the removal's path: renames the removed
    /// container's directory to a fresh ID at once (one `rename`), so the old ID's
    /// directory is gone with the removal as when it went to the trash (the restore relies
    /// on that: see `Engine::removed_before_crash`); the rest waits for the shim's exit.
    /// A crash in between leaves an unrecorded directory, which the next start removes.
    pub(crate) fn take_dir(containers: &Path, old_id: &str) -> Result<TakenDir> {
        let old_dir = containers.join(old_id);
        let id = names::new_id();
        let dir = containers.join(&id);
        // Onto a missing name only (an ID in use fails).
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &old_dir,
            rustix::fs::CWD,
            &dir,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| {
            EngineError::io(format!(
                "renaming {} to {}",
                old_dir.display(),
                dir.display()
            ))(std::io::Error::from(e))
        })?;
        Ok(TakenDir { id, dir })
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

fn dev_of(p: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .map(|m| m.dev())
        .map_err(EngineError::io(format!("reading {}", p.display())))
}

/// A removed container's directory under its next ID ([`Slot::take_dir`]), on its way to
/// becoming a slot.
#[derive(Debug)]
pub struct TakenDir {
    id: String,
    dir: PathBuf,
}

impl TakenDir {
    /// The directory (for discarding it).
    pub fn path(&self) -> &Path {
        &self.dir
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

/// How many slots the pool keeps (more recycled ones are discarded).
const MAX_READY: usize = 2;

/// The slots kept ready (one pool per engine).
pub struct SlotPool {
    store: Arc<Store>,
    containers: PathBuf,
    state: Arc<Mutex<PoolState>>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Oldest first: a create takes the oldest.
    ready: VecDeque<Slot>,
    /// Removed containers' directories on their way to becoming slots (waiting for their
    /// shim's exit): each counts as a slot to come, so a start does not make a fresh one.
    recycling: usize,
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

    /// The oldest ready slot, if any. The next one is made on [`SlotPool::refill`].
    pub fn take(&self) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.pop_front()
    }

    /// Starts making the next slot unless one is ready or on its way (being made, or being
    /// recycled from a removal); inside a tokio runtime only, a no-op otherwise.
    pub fn refill(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill_locked(&mut st);
    }

    /// Announces a slot to come from a removal ([`SlotPool::recycled`] follows).
    pub(crate) fn expect_recycled(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.recycling += 1;
    }

    /// Ends an announced recycling: keeps the slot ([`Slot::recycle`]) if there is room,
    /// otherwise hands it back for the caller to discard. Without a slot (the directories
    /// did not qualify) and with none ready, makes a fresh one.
    pub(crate) fn recycled(&self, slot: Option<Slot>) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.recycling = st.recycling.saturating_sub(1);
        let rejected = match slot {
            Some(slot) if st.closed || st.ready.len() >= MAX_READY => Some(slot),
            Some(slot) => {
                st.ready.push_back(slot);
                None
            }
            None => None,
        };
        self.refill_locked(&mut st);
        rejected
    }

    /// The ID of the slot the next create takes (tests).
    pub fn ready_id(&self) -> Option<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.front().map(|s| s.id.clone())
    }

    /// The IDs of all ready slots, oldest first (tests).
    pub fn ready_ids(&self) -> Vec<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.iter().map(|s| s.id.clone()).collect()
    }

    /// Stops making slots and returns the ready ones, for the caller to drop (which removes
    /// their directories) off the async threads.
    pub fn close(&self) -> Vec<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        st.ready.drain(..).collect()
    }

    fn refill_locked(&self, st: &mut PoolState) {
        if st.filling || st.closed || !st.ready.is_empty() || st.recycling > 0 {
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
                Ok(slot) if !st.closed && st.ready.len() < MAX_READY => st.ready.push_back(slot),
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
