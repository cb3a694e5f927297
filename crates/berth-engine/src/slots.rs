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
//!
//! # Premounted rootfs
//!
//! An overlay mount with a fresh work dir costs 0.3-2.6 ms on this host's ext4 (the kernel
//! makes `work/work`, `volatile`'s marker, checks the layers), a bind mount 0.03-0.07 ms.
//! So a slot also mounts the rootfs the next create most likely wants: the overlay of the
//! image of the most recent create with the built-in runtime (its init layer and layers,
//! the slot's snapshot as upper and work dir, `volatile` if that create was an auto-remove
//! one), at `containers/<id>/rootfs`, in berthd's own mount namespace. The create learns
//! it from [`SlotPool::set_hint`]. Who owns the mount, in order:
//!
//! ```text
//!  slot thread     mount overlay at <id>/rootfs          (Slot::prepare, with a hint)
//!  create          same lowerdirs, built-in runtime,      → Container.premounted; else
//!                  volatile only for auto-remove            unmounted on a blocking thread,
//!                                                          awaited by the shim's spawn and
//!                                                          the removal (a non-volatile
//!                                                          unmount syncs the host fs)
//!  attach/start    shim.json without `rootfs`: the init binds the mounted dir (the same
//!                  as runc's path), pivots into it
//!  after the shim  berthd unmounts its copy (MNT_DETACH, on a blocking thread): the
//!  answered        container's mount namespace holds its own, so the state is the one
//!                  without premounting
//! ```
//!
//! Every other way out unmounts before anything deletes or renames the directory (a
//! remove through a mounted overlay would write whiteouts into the upper dir): a dropped
//! slot, a failed create, the removal, shutdown (created, never started containers), and
//! the next start after a crash (`unmount_rootfs` of every built-in container and every
//! unrecorded directory, before [`remove_unrecorded`]).

use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_store::{Overlay, SnapshotSlot, Store};

use crate::error::{EngineError, Result};
use crate::names;

/// The files a create writes into the container directory (besides `rootfs/`).
const FILES: [&str; 4] = ["hostname", "hosts", "resolv.conf", "config.json"];

/// The rootfs a slot mounts ahead of time (see "Premounted rootfs" above): the lower
/// layers of the last create with the built-in runtime, and whether it was `volatile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Premount {
    /// The overlay's lower dirs, top first, as [`Store::container_overlay`] lists them.
    pub lowerdirs: Vec<PathBuf>,
    /// Mounted `volatile` (only an auto-remove container may use it then).
    pub volatile: bool,
}

impl Premount {
    /// Whether a container whose overlay has `lowerdirs` and that may be mounted
    /// `volatile` (an auto-remove one) can use this mount. A non-volatile mount also serves
    /// an auto-remove container (it only misses the skipped sync); a volatile one serves no
    /// other container (its writes would not be durable).
    pub fn serves(&self, lowerdirs: &[PathBuf], may_be_volatile: bool) -> bool {
        self.lowerdirs == lowerdirs && (!self.volatile || may_be_volatile)
    }
}

/// A prepared container directory and snapshot, with its rootfs mounted when a hint said
/// what to mount. Dropped before a create took it, the mount and both are removed.
#[derive(Debug)]
pub struct Slot {
    id: String,
    dir: PathBuf,
    snapshot: Option<SnapshotSlot>,
    premount: Option<Premount>,
}

/// What a create got from a slot: the snapshot for the store and, if the slot's rootfs is
/// mounted, how.
pub(crate) struct Taken {
    pub snapshot: Option<SnapshotSlot>,
    pub premount: Option<Premount>,
}

impl Slot {
    /// Makes a slot: the container directory under `containers` and a snapshot slot, with
    /// the rootfs mounted as `hint` says (if it cannot be, the slot is kept unmounted).
    fn prepare(store: &Store, containers: &Path, hint: Option<&Premount>) -> Result<Slot> {
        let id = names::new_id();
        let dir = containers.join(&id);
        // `create_dir`, not `create_dir_all`: an existing directory (an ID in use) fails.
        std::fs::create_dir(&dir)
            .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        let mut slot = Slot {
            id,
            dir,
            snapshot: None,
            premount: None,
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
        let snapshot = store.prepare_slot()?;
        if let Some(h) = hint {
            let rootfs = slot.dir.join("rootfs");
            match mount_rootfs(&rootfs, &h.lowerdirs, snapshot.path(), h.volatile) {
                Ok(()) => slot.premount = Some(h.clone()),
                // Layers gone (the image was removed), too many for one mount call, ...:
                // the container's init mounts it, as without a hint.
                Err(e) => tracing::debug!("not premounting {}: {e}", rootfs.display()),
            }
        }
        slot.snapshot = Some(snapshot);
        Ok(slot)
    }

    /// The container ID the slot was made for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How the slot's rootfs is mounted, if it is.
    pub fn premount(&self) -> Option<&Premount> {
        self.premount.as_ref()
    }

    /// Hands the slot to a create: the container directory is the create's from now on (its
    /// failure path unmounts and removes it), the snapshot slot goes to the store's prepare.
    pub(crate) fn take(mut self) -> Taken {
        self.dir = PathBuf::new();
        Taken {
            snapshot: self.snapshot.take(),
            premount: self.premount.take(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            if self.premount.is_some() {
                let _ = unmount_rootfs(&self.dir);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Mounts the overlay of `lowerdirs` (top first) with the snapshot directory `snapshot`'s
/// `fs` and `work` as upper and work dir at `target`: the mount the container's init makes
/// otherwise (`berth-container`'s rootfs setup), with the same options.
fn mount_rootfs(
    target: &Path,
    lowerdirs: &[PathBuf],
    snapshot: &Path,
    volatile: bool,
) -> std::result::Result<(), String> {
    let overlay = Overlay {
        lowerdirs: lowerdirs.to_vec(),
        layer_dirs: Vec::new(),
        upperdir: Some(snapshot.join("fs")),
        workdir: Some(snapshot.join("work")),
    };
    let mut data = overlay.mount_options();
    if volatile {
        data.push_str(",volatile");
    }
    // One page of mount data; longer stacks need the init's layer-by-layer fsconfig path.
    if data.len() >= 4000 {
        return Err(format!("{} bytes of overlay options", data.len()));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| format!("mount overlay: {e}"))
}

/// Unmounts what is mounted at `<container dir>/rootfs` in berthd's mount namespace (lazily:
/// a running container's own mount namespace keeps its copy). Not mounted: `Ok(false)`.
pub(crate) fn unmount_rootfs(container_dir: &Path) -> std::io::Result<bool> {
    match nix::mount::umount2(
        &container_dir.join("rootfs"),
        nix::mount::MntFlags::MNT_DETACH,
    ) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(std::io::Error::from(e)),
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
    /// What the next slot mounts (see "Premounted rootfs").
    hint: Option<Premount>,
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

    /// How the ready slot's rootfs is mounted, if there is a slot and it is (tests).
    pub fn ready_premount(&self) -> Option<Premount> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.as_ref().and_then(|s| s.premount.clone())
    }

    /// Sets what the slots made from now on mount (`None`: nothing, e.g. after a create
    /// with an external runtime, which mounts on its own). A ready slot mounted otherwise
    /// stays as it is: a create it does not serve unmounts it.
    pub fn set_hint(&self, hint: Option<Premount>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.hint = hint;
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
        let hint = st.hint.clone();
        tokio::task::spawn_blocking(move || {
            let made = Slot::prepare(&store, &containers, hint.as_ref());
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
            // A slot's premounted rootfs: never rename or delete through a mount.
            let _ = unmount_rootfs(&e.path());
            store.discard(&e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
