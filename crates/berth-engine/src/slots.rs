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
//!   next to the slot made after the start (at most [`MAX_READY`], of which at most
//!   [`MAX_PREMOUNTED`] with a premounted rootfs). A start makes a fresh
//!   slot only when none is ready and none is being recycled, so back-to-back `run --rm`
//!   settles on the create taking the directories the run before last left (the last
//!   run's are still waiting for its shim's exit), and creates and deletes none of those
//!   inodes, and frees no blocks (each freed block costs ~1.5 ms here: ext4 without a
//!   journal trims it synchronously with `discard`): the create writes the four files over
//!   their old content. After `rm -f` of many containers the pool holds them all (up to
//!   [`MAX_READY`]), only [`MAX_PREMOUNTED`] with their rootfs mounted, and a burst of
//!   creates then makes none of their inodes either (a create takes a mounted slot first).
//!   The shim's state directory in the exec root comes along
//!   ([`Slot::take_state_dir`]: its exit record becomes the next `shim.json`). Anything
//!   unexpected in the directory, a written upper dir, another runtime or a shim this
//!   daemon did not spawn: the trash, as before.
//! - **Unreferenced until recorded.** No container record names a slot, so nothing lists,
//!   inspects or restores it as a container. The store's GC leaves a slot's snapshot alone
//!   while this process holds it; after a crash (SIGKILL), the next start removes both
//!   halves: the store's GC at open takes the snapshot directory and link, and
//!   [`remove_unrecorded`] every container directory without a record.
//! - **Shutdown** ([`crate::Engine::shutdown`]) removes the ready slots; one still being
//!   made or recycled at that moment is left to the next start.
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
//!
//! # Kept mounts
//!
//! Mounting the overlay was the largest single cost left in berthd on `run --rm`: in a
//! profile of 60 back-to-back runs, `ovl_fill_super` (the kernel making `work/work` and
//! the volatile marker, each an ext4 inode allocation that scans recently deleted inodes)
//! was 36% of berthd's CPU, and the old work dir's deletion fed that scan. So an
//! auto-remove container keeps berthd's copy of its premounted rootfs after the start, and
//! its removal, when it recycles the directories, hands the mounted overlay on with them:
//!
//! ```text
//!  start           auto-remove: berthd keeps its copy (any other container: unmounted
//!                  after the shim answered, as above)
//!  removal         recycled (pool has room, upper dir empty): the directory is renamed
//!                  with the mount on it (a mount follows its dentry); otherwise unmounted
//!                  before the trash gets it
//!  shim gone       Slot::recycle checks it is still an overlay; the work dir stays
//!                  the next hint is this mount: kept as it is; another: unmounted, a
//!                  fresh work dir, mounted as the hint says
//!  next create     binds it, as any premount
//! ```
//!
//! Reusing the overlay is sound only because nothing changed it: the upper dir is empty
//! (the recycling condition; a written one is discarded, unmounted first), the container's
//! processes are gone (its shim has exited), and nobody writes through berthd's copy. The
//! work dir then holds only what the mount itself made. A crash leaves the mount in
//! berthd's namespace like any premount: the next start unmounts it.

use std::collections::{HashSet, VecDeque};
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
    /// A recycled slot's state directory in the exec root (`<exec-root>/containers/<id>`,
    /// see [`Slot::take_state_dir`]); empty when the slot has none.
    state_dir: PathBuf,
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
            state_dir: PathBuf::new(),
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
        slot.premount_with(hint);
        Ok(slot)
    }

    /// Makes a recycled slot's rootfs the one `hint` asks for: a kept mount that is not
    /// (another image, or volatile where the next create is not an auto-remove one) is
    /// unmounted and the snapshot given a fresh work dir; then the rootfs is mounted as
    /// [`Slot::premount_with`] does. A kept mount that is the hint's stays, untouched.
    pub(crate) fn mount_for(&mut self, store: &Store, hint: Option<&Premount>) {
        if self.premount.is_some() && self.premount.as_ref() == hint {
            return;
        }
        if self.premount.is_some() {
            if let Err(e) = unmount_rootfs(&self.dir) {
                // Dropping the slot would fail the same way; keep it as it is (mounted):
                // a create it does not serve unmounts it off the request.
                tracing::warn!("unmounting {}/rootfs: {e}", self.dir.display());
                return;
            }
            self.premount = None;
            // The old work dir holds overlayfs' `work/` and a volatile marker, which a
            // new mount would refuse or clean up.
            if let Some(snapshot) = &self.snapshot
                && let Err(e) = store.renew_slot_work(snapshot)
            {
                tracing::debug!("not premounting {}: {e}", self.dir.display());
                return;
            }
        }
        self.premount_with(hint);
    }

    /// Mounts the slot's rootfs as `hint` says (see "Premounted rootfs"); if it cannot be,
    /// the slot stays unmounted.
    pub(crate) fn premount_with(&mut self, hint: Option<&Premount>) {
        let (Some(h), Some(snapshot)) = (hint, &self.snapshot) else {
            return;
        };
        let rootfs = self.dir.join("rootfs");
        match mount_rootfs(&rootfs, &h.lowerdirs, snapshot.path(), h.volatile) {
            Ok(()) => self.premount = Some(h.clone()),
            // Layers gone (the image was removed), too many for one mount call, ...:
            // the container's init mounts it, as without a hint.
            Err(e) => tracing::debug!("not premounting {}: {e}", rootfs.display()),
        }
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
    /// `mounted`: the rootfs is still mounted in berthd's namespace, as this says (an
    /// auto-remove container's kept mount, see "Kept mounts" above); the slot keeps the
    /// mount and the work dir with it.
    pub(crate) fn recycle(
        store: &Store,
        taken: TakenDir,
        old_id: &str,
        snapshot: SnapshotSlot,
        mounted: Option<Premount>,
    ) -> Result<Slot> {
        // From here on, dropping the slot removes the directory (unmounting it first).
        let mut slot = Slot {
            id: taken.id,
            dir: taken.dir,
            snapshot: None,
            premount: mounted,
            state_dir: PathBuf::new(),
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
        if slot.premount.is_some() {
            // Still the overlay berthd mounted (nothing else mounts there in its namespace).
            let overlay = nix::sys::statfs::statfs(&rootfs)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
            if dir_dev == root_dev || !overlay {
                return Err(unexpected("its rootfs is not the overlay it kept".into()));
            }
        } else {
            let rootfs_empty = std::fs::read_dir(&rootfs).is_ok_and(|mut d| d.next().is_none());
            if dir_dev != root_dev || !rootfs_empty {
                return Err(unexpected("its rootfs is mounted or not empty".into()));
            }
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
        if slot.premount.is_none() {
            store.renew_slot_work(&snapshot)?;
        }
        slot.snapshot = Some(snapshot);
        Ok(slot)
    }

    /// Takes the removed container's state directory in the exec root (`old`, its shim
    /// gone) for this slot: renamed to the slot's ID, emptied of the last run's files
    /// except the exit record, which becomes the next `shim.json` (berthd writes over it
    /// without freeing its block). So the next start makes neither the directory nor
    /// `shim.json` (two of the four inodes a start still made, see docs/shim.md, "Inodes
    /// per container"). Anything unexpected in it (an external runtime's files), or a
    /// failure: it goes to the trash and the start makes its own, as without a slot.
    pub(crate) fn take_state_dir(&mut self, store: &Store, old: &Path) {
        let Some(states) = old.parent() else { return };
        let new = states.join(&self.id);
        let expected = [
            berth_shim::EXIT_FILE,
            berth_shim::PID_FILE,
            berth_shim::PREVIOUS_PID_FILE,
            berth_shim::STARTED_FILE,
            berth_shim::SOCKET_FILE,
        ];
        let usable = std::fs::read_dir(old).is_ok_and(|rd| {
            let names: Vec<_> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.iter().any(|n| n == berth_shim::EXIT_FILE)
                && names.iter().all(|n| expected.contains(&n.as_str()))
        });
        let moved = usable && std::fs::rename(old, &new).is_ok();
        if !moved {
            let _ = store.discard(old);
            return;
        }
        self.state_dir = new.clone();
        // `started` is a link to `shim.pid` (no block is freed), the socket has none;
        // `shim.pid` is set aside for the next shim to write over (no inode freed or made).
        for f in [berth_shim::STARTED_FILE, berth_shim::SOCKET_FILE] {
            let _ = std::fs::remove_file(new.join(f));
        }
        let _ = std::fs::rename(
            new.join(berth_shim::PID_FILE),
            new.join(berth_shim::PREVIOUS_PID_FILE),
        );
        if std::fs::rename(
            new.join(berth_shim::EXIT_FILE),
            new.join(berth_shim::CONFIG_FILE),
        )
        .is_err()
        {
            let _ = store.discard(&new);
            self.state_dir = PathBuf::new();
        }
    }

    /// The first step of [`Slot::recycle`], once the removed container's shim has exited
    /// (after the removal's answer, see `Engine::recycle_after`): renames its directory to
    /// a fresh ID (one `rename`). A crash before leaves the old ID's directory, unrecorded
    /// (the next start removes it) or, if the crash also lost an auto-remove container's
    /// commit, recorded (the restore removes the container again); a crash after leaves
    /// an unrecorded directory under the new ID, which the next start removes.
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

    /// How the slot's rootfs is mounted, if it is.
    pub fn premount(&self) -> Option<&Premount> {
        self.premount.as_ref()
    }

    /// Hands the slot to a create: the container directory is the create's from now on (its
    /// failure path unmounts and removes it), the snapshot slot goes to the store's prepare.
    pub(crate) fn take(mut self) -> Taken {
        self.dir = PathBuf::new();
        self.state_dir = PathBuf::new();
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
        if !self.state_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.state_dir);
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

/// [`unmount_rootfs`] for paths that must not go on while the rootfs is mounted (a removal
/// about to send the directory to the trash): a failure is the caller's error.
pub(crate) fn unmount_rootfs_before_removal(container_dir: &Path) -> Result<()> {
    unmount_rootfs(container_dir)
        .map(drop)
        .map_err(EngineError::io(format!(
            "unmounting {}/rootfs",
            container_dir.display()
        )))
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

/// How many slots the pool keeps, counting those being recycled (a removal without room
/// sends its directories to the trash). A slot is two directories and four small files:
/// after `rm -f` of a few dozen containers, the next few dozen creates allocate none of
/// their inodes, where each allocation otherwise scans the inodes deleted in the last 30 s
/// (journal-less ext4; docs/engine.md, "Recycled slots for bursts").
pub const MAX_READY: usize = 64;

/// How many ready slots may hold a premounted rootfs: each is a mount in berthd's
/// namespace, and the next create takes one of them first; the others stay unmounted.
pub const MAX_PREMOUNTED: usize = 2;

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
    /// What the next slot mounts (see "Premounted rootfs").
    hint: Option<Premount>,
    /// Slots being mounted off the lock (a recycled one, or a fresh one being made): each
    /// counts against [`MAX_PREMOUNTED`] until it is ready, so two recycles finishing at
    /// once cannot both mount the last one allowed.
    premounting: usize,
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

    /// The oldest ready slot with a premounted rootfs, else the oldest, if any. The next
    /// one is made on [`SlotPool::refill`].
    pub fn take(&self) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match st.ready.iter().position(|s| s.premount.is_some()) {
            Some(i) => st.ready.remove(i),
            None => st.ready.pop_front(),
        }
    }

    /// What a slot being recycled should mount: the hint, unless [`MAX_PREMOUNTED`] ready
    /// slots are mounted already or on their way. A hint returned reserves one of them
    /// until [`SlotPool::recycled`], which must be told so.
    pub(crate) fn reserve_premount(&self) -> Option<Premount> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.reserve_premount()
    }

    /// Starts making the next slot unless one is ready or on its way (being made, or being
    /// recycled from a removal); inside a tokio runtime only, a no-op otherwise.
    pub fn refill(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill_locked(&mut st);
    }

    /// Announces a slot to come from a removal, if the pool has room for it (ready and
    /// announced slots below [`MAX_READY`]); [`SlotPool::recycled`] must follow a `true`.
    /// Without room the removal sends its directories to the trash, as before recycling.
    pub(crate) fn expect_recycled(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed || st.ready.len() + st.recycling >= MAX_READY {
            return false;
        }
        st.recycling += 1;
        true
    }

    /// Ends an announced recycling: keeps the slot ([`Slot::recycle`]) if there is room,
    /// otherwise hands it back for the caller to discard. Without a slot (the directories
    /// did not qualify) and with none ready, makes a fresh one. `reserved`: the recycling
    /// held a [`SlotPool::reserve_premount`] reservation, which ends here.
    pub(crate) fn recycled(&self, slot: Option<Slot>, reserved: bool) -> Option<Slot> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.recycling = st.recycling.saturating_sub(1);
        if reserved {
            st.premounting = st.premounting.saturating_sub(1);
        }
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

    /// How many ready slots have a premounted rootfs (tests).
    pub fn ready_premounted(&self) -> usize {
        self.ready_premount_flags().iter().filter(|m| **m).count()
    }

    /// Whether each ready slot has a premounted rootfs, oldest first (tests).
    pub fn ready_premount_flags(&self) -> Vec<bool> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.iter().map(|s| s.premount.is_some()).collect()
    }

    /// How the ready slot's rootfs is mounted, if there is a slot and it is (tests).
    pub fn ready_premount(&self) -> Option<Premount> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ready.front().and_then(|s| s.premount.clone())
    }

    /// Sets what the slots made from now on mount (`None`: nothing, e.g. after a create
    /// with an external runtime, which mounts on its own). A ready slot mounted otherwise
    /// stays as it is: a create it does not serve unmounts it.
    pub fn set_hint(&self, hint: Option<Premount>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.hint = hint;
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
        let hint = st.reserve_premount();
        tokio::task::spawn_blocking(move || {
            let made = Slot::prepare(&store, &containers, hint.as_ref());
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.filling = false;
            if hint.is_some() {
                st.premounting = st.premounting.saturating_sub(1);
            }
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

impl PoolState {
    /// See [`SlotPool::reserve_premount`].
    fn reserve_premount(&mut self) -> Option<Premount> {
        let mounted = self.ready.iter().filter(|s| s.premount.is_some()).count();
        let hint = self
            .hint
            .clone()
            .filter(|_| mounted + self.premounting < MAX_PREMOUNTED)?;
        self.premounting += 1;
        Some(hint)
    }
}

/// Whether `name` is a container ID (64 lowercase hex), the only names berthd removes or
/// shuts down as unrecorded.
pub(crate) fn is_container_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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
        if is_container_id(name) && !recorded.contains(name) {
            // A slot's premounted rootfs: never rename or delete through a mount.
            let _ = unmount_rootfs(&e.path());
            store.discard(&e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recycles finishing at once each reserve a mount before mounting off the lock: the
    /// ones past [`MAX_PREMOUNTED`] get no hint, and a reservation ended frees its place.
    #[test]
    fn premount_reservations_never_exceed_the_budget() {
        let hint = Premount {
            lowerdirs: vec![PathBuf::from("/layers/a")],
            volatile: false,
        };
        let mut st = PoolState {
            hint: Some(hint.clone()),
            ..PoolState::default()
        };
        let granted: Vec<_> = (0..MAX_PREMOUNTED + 2)
            .map(|_| st.reserve_premount())
            .collect();
        assert_eq!(
            granted.iter().filter(|h| h.as_ref() == Some(&hint)).count(),
            MAX_PREMOUNTED,
            "{granted:?}"
        );
        assert!(granted[MAX_PREMOUNTED..].iter().all(Option::is_none));
        st.premounting -= 1;
        assert_eq!(st.reserve_premount(), Some(hint));
        st.hint = None;
        st.premounting = 0;
        assert_eq!(st.reserve_premount(), None, "no hint, nothing to reserve");
        assert_eq!(st.premounting, 0);
    }
}
