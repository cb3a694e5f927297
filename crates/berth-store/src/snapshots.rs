//! Snapshots: unpacked layers (keyed by chain ID) and containers' writable dirs, and the
//! overlay descriptions that stack them.
//!
//! A layer is unpacked once into `snapshots/<id>/fs` (by the caller, with whiteouts in
//! overlay form) and registered under its chain ID by [`Store::commit_image`]. A container
//! snapshot adds `snapshots/<id>/{fs,work}` as upper and work dir on top of its image's
//! chain, with the image's init layer (the mount points the image lacks, [`crate::init`])
//! in between. Every snapshot also gets a short link `snapshots/l/<LINK>` → `../<id>/fs`; the
//! overlay's lowerdirs name those links (as Docker's overlay2 does), so a 120-layer image
//! still fits in the one-page mount option string of the classic mount(2) call. The mount
//! helpers here prefer the new mount API (`fsconfig` with one `lowerdir+` per layer, no
//! length limit at all) and fall back to the classic call.
//!
//! A container snapshot's directories need no image: [`Store::prepare_slot`] makes
//! `snapshots/<id>/{fs,work}` and its link ahead of time (four inode creations, 0.3-0.45 ms
//! each on ext4, off the create's path) and [`Store::prepare_container_in`] only records
//! them. Until recorded, a slot's ID sits in the store's in-memory slot set, which GC and
//! fsck skip; after a crash nothing names it, and the GC at the next open removes it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::Digest;
use redb::{ReadableDatabase, ReadableTable};

use crate::error::{IoContext, Result, StoreError};
use crate::meta::{IMAGES, ImageRecord, SNAPSHOTS, SnapshotKind, SnapshotRecord, decode, encode};
use crate::{Store, now_rfc3339, random_id};

const CONTAINER_PREFIX: &str = "container:";
const LINK_LEN: usize = 26;

/// A layer directory being unpacked. Dropping it without [`Store::commit_image`] registering
/// it removes the directory.
#[derive(Debug)]
pub struct PendingLayer {
    pub(crate) id: String,
    pub(crate) link: String,
    dir: PathBuf,
    links: PathBuf,
    kept: bool,
}

impl PendingLayer {
    /// Where to unpack the layer's content.
    pub fn path(&self) -> PathBuf {
        self.dir.join("fs")
    }
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(self.links.join(&self.link));
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A container snapshot's directories (`snapshots/<id>/{fs,work}` and the link
/// `l/<LINK>`), made by [`Store::prepare_slot`] before any container needs them, and not
/// tied to an image: [`Store::prepare_container_in`] records them for a container. Dropping
/// it unrecorded removes the directories. Until then GC and fsck leave it alone.
#[derive(Debug)]
pub struct SnapshotSlot {
    id: String,
    link: String,
    dir: PathBuf,
    links: PathBuf,
    reserved: Arc<Mutex<HashSet<String>>>,
    recorded: bool,
}

impl SnapshotSlot {
    /// The snapshot's directory (`snapshots/<id>`).
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SnapshotSlot {
    fn drop(&mut self) {
        if !self.recorded {
            let _ = fs::remove_file(self.links.join(&self.link));
            let _ = fs::remove_dir_all(&self.dir);
        }
        // Only now (its record committed, or its directories gone) may GC see it.
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A container snapshot whose record [`Store::remove_container_record`] deleted, its
/// directories still in place for [`Store::discard_removed`].
#[derive(Debug)]
#[must_use = "its directories stay until discard_removed (or GC at the next open)"]
pub struct RemovedSnapshot {
    id: String,
    link: String,
}

/// How to stack a container's root filesystem with overlayfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Lower layers, top first, as short links (`<root>/snapshots/l/<LINK>`); a container's
    /// init layer, if it has one, comes first.
    pub lowerdirs: Vec<PathBuf>,
    /// The same layers by their real directories, top first.
    pub layer_dirs: Vec<PathBuf>,
    /// The container's writable dir (None for a read-only view of an image).
    pub upperdir: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
}

impl Overlay {
    /// The classic `mount -t overlay -o <options>` data string (absolute short links).
    pub fn mount_options(&self) -> String {
        let lower: Vec<String> = self
            .lowerdirs
            .iter()
            .map(|p| escape_option(&p.to_string_lossy()))
            .collect();
        let mut s = format!("lowerdir={}", lower.join(":"));
        if let (Some(u), Some(w)) = (&self.upperdir, &self.workdir) {
            s.push_str(&format!(
                ",upperdir={},workdir={}",
                escape_option(&u.to_string_lossy()),
                escape_option(&w.to_string_lossy())
            ));
        }
        s
    }

    /// Mounts the overlay at `target` in the caller's mount namespace; unmounted (lazily) when
    /// the guard drops. For runtimes that need a host rootfs (runc) and for tests.
    pub fn mount(&self, target: &Path) -> Result<MountGuard> {
        self.mount_raw(target).map_err(|source| StoreError::Mount {
            target: target.to_path_buf(),
            source,
        })?;
        Ok(MountGuard {
            target: target.to_path_buf(),
        })
    }

    fn mount_raw(&self, target: &Path) -> io::Result<()> {
        match self.mount_new_api(target) {
            Ok(()) => Ok(()),
            // Kernels before 6.8 lack `lowerdir+`; fall back to the option string.
            Err(e) if e.raw_os_error() == Some(libc_einval()) => {
                let data = std::ffi::CString::new(self.mount_options())
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                rustix::mount::mount(
                    "overlay",
                    target,
                    "overlay",
                    rustix::mount::MountFlags::empty(),
                    Some(data.as_c_str()),
                )
                .map_err(io::Error::from)
            }
            Err(e) => Err(e),
        }
    }

    fn mount_new_api(&self, target: &Path) -> io::Result<()> {
        use rustix::mount::*;
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for l in &self.lowerdirs {
            fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
        }
        if let (Some(u), Some(w)) = (&self.upperdir, &self.workdir) {
            fsconfig_set_string(&fs, "upperdir", u.as_path())?;
            fsconfig_set_string(&fs, "workdir", w.as_path())?;
        }
        fsconfig_create(&fs)?;
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }

    /// Runs `f` with the overlay mounted at `scratch`, in a private mount namespace of a
    /// dedicated thread: the host never sees the mount, and nothing can leak if `f` panics or
    /// the process dies. Used by export and commit of stopped containers.
    pub fn with_mounted<R: Send>(
        &self,
        scratch: &Path,
        f: impl FnOnce(&Path) -> R + Send,
    ) -> Result<R> {
        let mount_err = |source: io::Error| StoreError::Mount {
            target: scratch.to_path_buf(),
            source,
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                use nix::sched::{CloneFlags, unshare};
                unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
                    .map_err(|e| mount_err(io::Error::from(e)))?;
                rustix::mount::mount_change(
                    "/",
                    rustix::mount::MountPropagationFlags::PRIVATE
                        | rustix::mount::MountPropagationFlags::REC,
                )
                .map_err(|e| mount_err(e.into()))?;
                self.mount_raw(scratch).map_err(mount_err)?;
                let r = f(scratch);
                let _ = rustix::mount::unmount(scratch, rustix::mount::UnmountFlags::DETACH);
                Ok(r)
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

fn libc_einval() -> i32 {
    rustix::io::Errno::INVAL.raw_os_error()
}

/// Overlay's option parser splits on `,` and lowerdir on `:`; escape them.
fn escape_option(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Unmounts a host mount made by [`Overlay::mount`] when dropped.
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
}

impl MountGuard {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Removes leftovers in `tmp/`, but never descends into something still mounted.
pub(crate) fn clean_tmp(tmp: &Path) -> Result<()> {
    let dev = fs::metadata(tmp)
        .ctx(|| format!("stat {}", tmp.display()))?
        .dev();
    for e in fs::read_dir(tmp).ctx(|| format!("listing {}", tmp.display()))? {
        let p = e.ctx(|| "listing tmp")?.path();
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() && m.dev() != dev => {
                tracing::warn!(path = %p.display(), "leaving mounted scratch dir alone");
            }
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&p).ctx(|| format!("removing {}", p.display()))?
            }
            Ok(_) => fs::remove_file(&p).ctx(|| format!("removing {}", p.display()))?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// Apparent size of the files under `dir` (not following symlinks, not crossing mounts).
/// Whether `dir` exists and has no entries.
fn dir_is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

pub(crate) fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(format!("listing {}", d.display()), e)),
        };
        for e in rd {
            let e = e.ctx(|| format!("listing {}", d.display()))?;
            let m = e
                .metadata()
                .ctx(|| format!("stat {}", e.path().display()))?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() || m.file_type().is_symlink() {
                total += m.len();
            }
        }
    }
    Ok(total)
}

fn random_link() -> String {
    let hex = random_id(LINK_LEN);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    hex.as_bytes()
        .chunks(2)
        .take(LINK_LEN)
        .map(|c| {
            let v = u8::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 16).unwrap_or(0);
            ALPHABET[(v % 32) as usize] as char
        })
        .collect()
}

/// Chain IDs for a list of diff IDs (OCI image spec: `ChainID(L₀) = DiffID(L₀)`,
/// `ChainID(L₀|…|Lₙ) = sha256(ChainID(L₀|…|Lₙ₋₁) + " " + DiffID(Lₙ))`).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

impl Store {
    fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    fn links_dir(&self) -> PathBuf {
        self.snapshots_dir().join("l")
    }

    /// A new directory for unpacking a layer (see [`PendingLayer`]).
    pub fn begin_layer(&self) -> Result<PendingLayer> {
        let (id, link, dir) = self.new_snapshot_dir(false)?;
        Ok(PendingLayer {
            id,
            link,
            dir,
            links: self.links_dir(),
            kept: false,
        })
    }

    fn new_snapshot_dir(&self, with_work: bool) -> Result<(String, String, PathBuf)> {
        self.make_snapshot_dir(random_id(16), with_work)
    }

    fn make_snapshot_dir(&self, id: String, with_work: bool) -> Result<(String, String, PathBuf)> {
        let link = random_link();
        let dir = self.snapshots_dir().join(&id);
        fs::create_dir(&dir).ctx(|| format!("creating snapshot {}", dir.display()))?;
        let made = (|| {
            fs::create_dir(dir.join("fs"))?;
            if with_work {
                fs::create_dir(dir.join("work"))?;
            }
            std::os::unix::fs::symlink(format!("../{id}/fs"), self.links_dir().join(&link))
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&dir);
            return Err(StoreError::io(
                format!("creating snapshot {}", dir.display()),
                e,
            ));
        }
        Ok((id, link, dir))
    }

    /// The record of a snapshot by key (`sha256:<chain id>` or a container key).
    pub fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(SNAPSHOTS)?;
        match t.get(key)? {
            Some(v) => Ok(Some(decode("snapshots", key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Whether a layer with this chain ID is unpacked.
    pub fn has_layer(&self, chain_id: &Digest) -> Result<bool> {
        Ok(self.snapshot(&chain_id.to_string())?.is_some())
    }

    /// The content directory of a snapshot.
    pub fn snapshot_path(&self, rec: &SnapshotRecord) -> PathBuf {
        self.snapshots_dir().join(&rec.id).join("fs")
    }

    /// Every snapshot record.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        let r = self.db.begin_read()?;
        crate::meta::read_all(&r.open_table(SNAPSHOTS)?, "snapshots")
    }

    /// The layers of a chain, top first.
    pub fn layer_chain(&self, top: &Digest) -> Result<Vec<SnapshotRecord>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(SNAPSHOTS)?;
        let mut out = Vec::new();
        let mut next = Some(top.clone());
        while let Some(chain) = next {
            let key = chain.to_string();
            let rec: SnapshotRecord = match t.get(key.as_str())? {
                Some(v) => decode("snapshots", &key, v.value())?,
                None => return Err(StoreError::LayerNotFound(chain)),
            };
            next = rec.parent.clone();
            out.push(rec);
            if out.len() > 10_000 {
                return Err(StoreError::Corrupt {
                    table: "snapshots",
                    key,
                    reason: "parent chain loops".into(),
                });
            }
        }
        Ok(out)
    }

    /// A read-only overlay of an image's layers (no upper dir).
    pub fn image_overlay(&self, image: &ImageRecord) -> Result<Overlay> {
        let chain = match image.top_chain_id() {
            Some(top) => self.layer_chain(top)?,
            None => Vec::new(),
        };
        self.overlay_of(&chain, None, None)
    }

    /// The overlay of `chain` (top first) with the init layer `init` above it, if any, and the
    /// container snapshot `upper` on top, if any.
    fn overlay_of(
        &self,
        chain: &[SnapshotRecord],
        init: Option<&SnapshotRecord>,
        upper: Option<&SnapshotRecord>,
    ) -> Result<Overlay> {
        let stack = || init.into_iter().chain(chain);
        let mut lowerdirs: Vec<PathBuf> = stack().map(|r| self.links_dir().join(&r.link)).collect();
        let mut layer_dirs: Vec<PathBuf> = stack().map(|r| self.snapshot_path(r)).collect();
        if lowerdirs.is_empty() {
            // overlayfs needs at least one lower layer; an image without layers gets an empty one.
            let empty = self.snapshots_dir().join("empty");
            fs::create_dir_all(&empty).ctx(|| format!("creating {}", empty.display()))?;
            lowerdirs.push(empty.clone());
            layer_dirs.push(empty);
        }
        Ok(Overlay {
            lowerdirs,
            layer_dirs,
            upperdir: upper.map(|u| self.snapshot_path(u)),
            workdir: upper.map(|u| self.snapshots_dir().join(&u.id).join("work")),
        })
    }

    /// Makes a container snapshot's directories ahead of time (see [`SnapshotSlot`]).
    pub fn prepare_slot(&self) -> Result<SnapshotSlot> {
        let id = random_id(16);
        // Reserved before the directory exists: a GC pass that lists it also skips it.
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        let reserved = self.slots.clone();
        match self.make_snapshot_dir(id.clone(), true) {
            Ok((id, link, dir)) => Ok(SnapshotSlot {
                id,
                link,
                dir,
                links: self.links_dir(),
                reserved,
                recorded: false,
            }),
            Err(e) => {
                reserved
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(e)
            }
        }
    }

    /// Creates a container's snapshot (upper and work dirs) on top of an image and returns how
    /// to mount its root. `key` is the container ID; the image ID is recorded so that
    /// [`Store::containers_using`] can tell which containers use an image.
    pub fn prepare_container(&self, key: &str, image: &Digest) -> Result<Overlay> {
        self.prepare_container_in(key, image, None)
    }

    /// [`Store::prepare_container`] in the directories of `slot` (made ahead of time by
    /// [`Store::prepare_slot`]; fresh ones when `None`): only the record is written. On
    /// failure the slot's directories are removed (a slot is used once).
    pub fn prepare_container_in(
        &self,
        key: &str,
        image: &Digest,
        slot: Option<SnapshotSlot>,
    ) -> Result<Overlay> {
        self.prepare_container_with(key, image, slot, true)
    }

    /// [`Store::prepare_container_in`], its commit without fsync unless `durable`: a crash
    /// before the next durable commit ([`Store::sync_metadata`]) loses the record, and the snapshot's
    /// directory is then unrecorded (removed at the next open). For callers that treat a
    /// container lost that way as never created (the engine's auto-remove containers, which
    /// it syncs before their start).
    pub fn prepare_container_with(
        &self,
        key: &str,
        image: &Digest,
        slot: Option<SnapshotSlot>,
        durable: bool,
    ) -> Result<Overlay> {
        let img = self
            .image(image)?
            .ok_or_else(|| StoreError::ImageNotFound(image.to_string()))?;
        let chain = match img.top_chain_id() {
            Some(top) => self.layer_chain(top)?,
            None => Vec::new(),
        };
        let init = self.init_layer_or_none(&img, &chain);
        let full_key = format!("{CONTAINER_PREFIX}{key}");
        let mut slot = match slot {
            Some(s) => s,
            None => self.prepare_slot()?,
        };
        let rec = SnapshotRecord {
            key: full_key.clone(),
            kind: SnapshotKind::Container,
            id: slot.id.clone(),
            link: slot.link.clone(),
            parent: img.top_chain_id().cloned(),
            diff_id: None,
            size: 0,
            image: Some(image.clone()),
            init: init.as_ref().map(|i| i.key.clone()),
            entries: Vec::new(),
            created_at: now_rfc3339(),
        };
        let inserted = (|| -> Result<bool> {
            let mut w = self.db.begin_write()?;
            if !durable {
                // Refused only inside a savepoint, which this transaction has none of.
                let _ = w.set_durability(redb::Durability::None);
            }
            {
                let mut t = w.open_table(SNAPSHOTS)?;
                if t.get(full_key.as_str())?.is_some() {
                    return Ok(false);
                }
                // The image must still exist in this transaction (rmi may race us).
                if w.open_table(IMAGES)?
                    .get(image.to_string().as_str())?
                    .is_none()
                {
                    return Err(StoreError::ImageNotFound(image.to_string()));
                }
                t.insert(full_key.as_str(), encode(&rec).as_slice())?;
            }
            w.commit()?;
            Ok(true)
        })();
        match inserted {
            Ok(true) => {
                slot.recorded = true;
                drop(slot);
                self.overlay_of(&chain, init.as_ref(), Some(&rec))
            }
            // Dropping the slot removes its directories.
            Ok(false) => Err(StoreError::SnapshotExists(key.to_string())),
            Err(e) => Err(e),
        }
    }

    /// The init layer of `image` (whose layers are `chain`, top first) for a new container,
    /// made on first use; None if the image lacks no mount point. Failing to make it is not
    /// fatal: the container then has none, and the runtime creates what is missing in its
    /// upper dir, as it always did.
    fn init_layer_or_none(
        &self,
        image: &ImageRecord,
        chain: &[SnapshotRecord],
    ) -> Option<SnapshotRecord> {
        match self.init_layer(image, chain) {
            Ok(rec) if rec.entries.is_empty() => None,
            Ok(rec) => Some(rec),
            Err(e) => {
                tracing::warn!(image = %image.id, error = %e, "making the image's init layer");
                None
            }
        }
    }

    /// The record of `image`'s init layer ([`crate::init`]), made if it does not exist yet.
    fn init_layer(&self, image: &ImageRecord, chain: &[SnapshotRecord]) -> Result<SnapshotRecord> {
        let key = crate::init::init_key(&image.id);
        if let Some(rec) = self.snapshot(&key)? {
            return Ok(rec);
        }
        // One maker at a time; whoever waited finds the record made.
        let _serial = self.init_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rec) = self.snapshot(&key)? {
            return Ok(rec);
        }
        // GC sweeps snapshot directories no record names: not this one before its commit.
        let _op = self.op();
        let layers: Vec<PathBuf> = chain.iter().map(|r| self.snapshot_path(r)).collect();
        let plan = crate::init::plan(&layers)
            .ctx(|| format!("reading the layers of image {}", image.id))?;
        let dir = self.begin_layer()?;
        crate::init::write(&dir.path(), &plan)
            .ctx(|| format!("making the init layer of image {}", image.id))?;
        let rec = SnapshotRecord {
            key: key.clone(),
            // Told apart by its key; see `meta` for why not a kind of its own.
            kind: SnapshotKind::Layer,
            id: dir.id.clone(),
            link: dir.link.clone(),
            parent: image.top_chain_id().cloned(),
            diff_id: None,
            size: 0,
            image: Some(image.id.clone()),
            init: None,
            entries: plan
                .keys()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            created_at: now_rfc3339(),
        };
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(SNAPSHOTS)?;
            if let Some(v) = t.get(key.as_str())? {
                return decode("snapshots", &key, v.value());
            }
            // An image removed meanwhile would leave the layer to the next GC anyway.
            if w.open_table(IMAGES)?
                .get(image.id.to_string().as_str())?
                .is_none()
            {
                return Err(StoreError::ImageNotFound(image.id.to_string()));
            }
            t.insert(key.as_str(), encode(&rec).as_slice())?;
        }
        w.commit()?;
        dir.keep();
        Ok(rec)
    }

    /// The container snapshot's record.
    pub fn container_snapshot(&self, key: &str) -> Result<SnapshotRecord> {
        self.snapshot(&format!("{CONTAINER_PREFIX}{key}"))?
            .ok_or_else(|| StoreError::SnapshotNotFound(key.to_string()))
    }

    /// How to mount an existing container snapshot: its upper dir over the init layer it was
    /// made with (if any) over its image's layers.
    pub fn container_overlay(&self, key: &str) -> Result<Overlay> {
        let rec = self.container_snapshot(key)?;
        let chain = match &rec.parent {
            Some(top) => self.layer_chain(top)?,
            None => Vec::new(),
        };
        // GC keeps the init layer a container names; without its record (a damaged store:
        // fsck reports it) the runtime creates the mount points in the upper dir as before.
        let init = match &rec.init {
            Some(k) => self.snapshot(k)?,
            None => None,
        };
        self.overlay_of(&chain, init.as_ref(), Some(&rec))
    }

    /// Removes a container's snapshot (its upper dir is gone afterwards).
    pub fn remove_container(&self, key: &str) -> Result<()> {
        self.remove_container_with(key, true, |_| Ok(()))
    }

    /// [`Store::remove_container`], with `also` run in the same write transaction (the
    /// engine deletes the container's record there: one commit for both), fsynced when
    /// `durable`. Without the snapshot nothing is committed, `also` included.
    ///
    /// A commit without fsync is lost by a crash (redb keeps only durable commits); the
    /// snapshot's record then comes back while its directory, already in the trash, may be
    /// gone. Only callers that remove such a snapshot again after a crash anyway (the engine,
    /// for auto-remove containers) may pass `durable: false`.
    pub fn remove_container_with(
        &self,
        key: &str,
        durable: bool,
        also: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<()> {
        let removed = self.remove_container_record(key, durable, also)?;
        self.discard_removed(removed)
    }

    /// [`Store::remove_container_with`] without touching the directories: they stay,
    /// unrecorded, until [`Store::discard_removed`] sends them to the trash (the engine
    /// answers a removal in between). A crash in between leaves them to GC at the next open.
    pub fn remove_container_record(
        &self,
        key: &str,
        durable: bool,
        also: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<RemovedSnapshot> {
        let rec = self.commit_container_removal(key, durable, also)?;
        Ok(RemovedSnapshot {
            id: rec.id,
            link: rec.link,
        })
    }

    /// Sends the directories and link of a snapshot [`Store::remove_container_record`]
    /// removed to the trash (gone already, e.g. by GC: fine).
    pub fn discard_removed(&self, removed: RemovedSnapshot) -> Result<()> {
        let _ = fs::remove_file(self.links_dir().join(&removed.link));
        self.trash.discard(&self.snapshots_dir().join(&removed.id))
    }

    /// Deletes a container snapshot's record, with `also` in the same write transaction,
    /// fsynced when `durable`; its directories are the caller's. The deleted record.
    fn commit_container_removal(
        &self,
        key: &str,
        durable: bool,
        also: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<SnapshotRecord> {
        let full_key = format!("{CONTAINER_PREFIX}{key}");
        let mut w = self.db.begin_write()?;
        if !durable {
            // Fails only with persistent savepoints, which the store never makes; the commit
            // is then durable, which is merely slower.
            let _ = w.set_durability(redb::Durability::None);
        }
        also(&w)?;
        let rec: SnapshotRecord;
        {
            let mut t = w.open_table(SNAPSHOTS)?;
            rec = match t.remove(full_key.as_str())? {
                Some(v) => decode("snapshots", &full_key, v.value())?,
                None => return Err(StoreError::SnapshotNotFound(key.to_string())),
            };
        }
        w.commit()?;
        Ok(rec)
    }

    /// [`Store::remove_container_with`], but a snapshot whose upper dir is empty (the
    /// container wrote nothing) is not discarded: its directories and link stay, unrecorded,
    /// and come back as a [`SnapshotSlot`] for the next container (see the engine's slots:
    /// on this host's ext4 every inode creation and deletion costs 0.1-0.5 ms). The slot is
    /// reserved before the commit, so GC never sees it unrecorded and unreserved; a crash
    /// leaves it unrecorded, and GC at the next open removes it. `Ok(None)`: discarded as by
    /// [`Store::remove_container_with`].
    pub fn remove_container_keeping(
        &self,
        key: &str,
        durable: bool,
        also: impl FnOnce(&redb::WriteTransaction) -> Result<()>,
    ) -> Result<Option<SnapshotSlot>> {
        let full_key = format!("{CONTAINER_PREFIX}{key}");
        let Some(rec) = self.snapshot(&full_key)? else {
            return Err(StoreError::SnapshotNotFound(key.to_string()));
        };
        if !dir_is_empty(&self.snapshot_path(&rec)) {
            return self
                .remove_container_with(key, durable, also)
                .map(|()| None);
        }
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rec.id.clone());
        let mut slot = SnapshotSlot {
            id: rec.id.clone(),
            link: rec.link.clone(),
            dir: self.snapshots_dir().join(&rec.id),
            links: self.links_dir(),
            reserved: self.slots.clone(),
            // Until the commit below the record names the directories: a failure must not
            // remove them (dropping the slot only releases the reservation).
            recorded: true,
        };
        self.commit_container_removal(key, durable, also)?;
        slot.recorded = false;
        Ok(Some(slot))
    }

    /// Gives a kept slot ([`Store::remove_container_keeping`]) a fresh, empty work dir: the
    /// old one goes to the trash with what overlayfs left in it (its `work/` dir, the
    /// volatile marker), which a mount would otherwise clean up on the container's start.
    pub fn renew_slot_work(&self, slot: &SnapshotSlot) -> Result<()> {
        let work = slot.dir.join("work");
        self.trash.discard(&work)?;
        fs::create_dir(&work).ctx(|| format!("creating {}", work.display()))
    }

    /// Bytes used by a container's writable layer (`docker ps -s`'s SizeRw, `system df`):
    /// the apparent size of the regular files and symlinks in its upper dir.
    pub fn container_size(&self, key: &str) -> Result<u64> {
        let rec = self.container_snapshot(key)?;
        dir_size(&self.snapshot_path(&rec))
    }

    /// Container keys whose snapshot was made from `image` (sorted).
    pub fn containers_using(&self, image: &Digest) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .snapshots()?
            .into_iter()
            .filter(|r| r.kind == SnapshotKind::Container && r.image.as_ref() == Some(image))
            .filter_map(|r| r.key.strip_prefix(CONTAINER_PREFIX).map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn mount_options_escape_and_order() {
        let o = Overlay {
            lowerdirs: vec!["/s/l/A".into(), "/s/l/B,x".into()],
            layer_dirs: vec![],
            upperdir: Some("/s/c/fs".into()),
            workdir: Some("/s/c/work".into()),
        };
        assert_eq!(
            o.mount_options(),
            "lowerdir=/s/l/A:/s/l/B\\,x,upperdir=/s/c/fs,workdir=/s/c/work"
        );
        assert_eq!(random_link().len(), LINK_LEN);
    }
}
