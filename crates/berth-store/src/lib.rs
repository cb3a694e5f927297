//! Berth's image store: content, snapshots and metadata under one data root.
//!
//! ```text
//! <root>/
//! ├── blobs/sha256/<hex>         immutable content, visible only after its digest verified
//! ├── ingest/                    in-flight blob writes; removed at open
//! ├── snapshots/<id>/fs          an unpacked layer (keyed by chain ID in the metadata), an
//! │                              image's init layer ([`init`]), or a
//! │             <id>/work        container's upper dir (fs) and overlay work dir
//! ├── snapshots/l/<LINK>         short symlinks → ../<id>/fs (keeps overlay's lowerdir option
//! │                              under the page size for deep images, like Docker's overlay2)
//! ├── tmp/                       private mount points (export, commit); removed at open
//! ├── trash/                     doomed snapshots and blobs, deleted by a helper thread
//! └── meta.redb                  images, tags, snapshots, leases (schema: [`meta`])
//! ```
//!
//! # Calls in order
//! 1. [`Store::open`] creates the layout, migrates the schema, removes orphan ingests and runs
//!    a GC pass (so content of a crashed operation never lingers or gets trusted).
//! 2. An operation takes [`Store::op`] (a shared guard; GC waits for it), writes blobs through
//!    [`ContentStore::writer`] or [`ContentStore::write_blob`], unpacks layers into
//!    [`Store::begin_layer`] directories, calls [`Store::sync`] once, then publishes everything
//!    in one transaction with [`Store::commit_image`]. A failure at any point leaves only
//!    unreferenced content, which GC removes.
//! 3. Containers get a snapshot with [`Store::prepare_container`] → an [`Overlay`] (lowerdirs,
//!    upperdir, workdir) that the runtime mounts inside the container's mount namespace; the
//!    first container of an image also makes the image's init layer ([`init`]). The
//!    snapshot's directories can be made ahead of time with [`Store::prepare_slot`] and
//!    handed to [`Store::prepare_container_in`]; until then GC and fsck leave them alone.
//! 4. [`Store::gc`] marks from roots (images and their init layers, container snapshots and
//!    the init layers they name, unexpired leases) and sweeps
//!    blobs and snapshots; [`Store::fsck`] re-hashes every blob and checks every reference.
#![forbid(unsafe_code)]

pub mod content;
pub mod error;
mod fsck;
mod gc;
pub mod init;
pub mod meta;
mod snapshots;
mod trash;

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use berth_oci::{Digest, Reference};
use redb::{ReadableDatabase, ReadableTable};

pub use content::{ContentStore, Ingest};
pub use error::{Result, StoreError};
pub use fsck::FsckReport;
pub use gc::GcReport;
pub use meta::{ImageRecord, LayerRef, LeaseRecord, SnapshotKind, SnapshotRecord};
pub use snapshots::{MountGuard, Overlay, PendingLayer, RemovedSnapshot, SnapshotSlot, chain_ids};

use crate::error::IoContext;
use crate::meta::{IMAGES, LEASES, SNAPSHOTS, TAGS, decode, encode};

/// The store under one data root. Share it (`Arc<Store>`) between threads; it is `Sync`.
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    db: redb::Database,
    /// Operations hold it shared; GC holds it exclusively.
    ops: RwLock<()>,
    /// Serializes the making of init layers (parallel creates of one image make it once).
    init_lock: Mutex<()>,
    pub(crate) trash: trash::Trash,
    /// IDs of snapshot directories made but not yet recorded ([`SnapshotSlot`]s). GC holds
    /// the lock from before its transaction until its sweep is done, and a slot leaves the
    /// set only after its record is committed, so GC never sweeps one.
    pub(crate) slots: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.trash.drain();
    }
}

/// Held by an operation for its whole duration so that GC never sweeps content it is
/// writing but has not yet referenced.
pub struct OpGuard<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

/// What [`Store::commit_image`] publishes in one transaction.
#[derive(Debug)]
pub struct ImageCommit {
    pub image: ImageRecord,
    /// Layers unpacked by this operation: (chain id, parent chain id, diff id, size, dir).
    pub new_layers: Vec<NewLayer>,
    /// References to point at the image (moved away from any image that had them).
    pub tags: Vec<Reference>,
}

/// A layer snapshot unpacked by the caller, to be registered under its chain ID.
#[derive(Debug)]
pub struct NewLayer {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub size: u64,
    pub dir: PendingLayer,
}

/// The result of [`Store::commit_image`].
#[derive(Debug, Default)]
pub struct CommitOutcome {
    /// Whether the image record already existed (same config digest).
    pub existed: bool,
    /// Tags that were moved from another image: (reference, previous image).
    pub retagged: Vec<(Reference, Digest)>,
}

/// The most `meta.redb` pages redb keeps in memory (its read cache and write buffer together).
///
/// redb's default is 1 GiB, and every page a commit writes stays in its cache, so a long-lived
/// daemon would come to hold a private copy of the whole file next to the kernel's page cache.
/// A miss costs one `pread` served from the page cache: no slower `run --rm`, `image inspect`
/// or 50 × `run -d` measured with 1 MiB (docs/engine.md, "Speed and memory").
pub const META_CACHE_BYTES: usize = 1 << 20;

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        for d in ["snapshots/l", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx(|| format!("creating {}", p.display()))?;
        }
        let content = ContentStore::open(&root)?;
        let db_path = root.join("meta.redb");
        let db = match redb::Builder::new()
            .set_cache_size(META_CACHE_BYTES)
            .create(&db_path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse(root));
            }
            Err(e) => return Err(e.into()),
        };
        meta::migrate(&db, &db_path)?;
        let trash = trash::Trash::open(&root)?;
        let store = Store {
            root,
            content,
            db,
            ops: RwLock::new(()),
            init_lock: Mutex::new(()),
            trash,
            slots: Arc::default(),
        };
        // Nothing can be in flight yet: clean up after a crash of the previous owner.
        store.content.clean_ingest()?;
        snapshots::clean_tmp(&store.root.join("tmp"))?;
        store.gc()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn content(&self) -> &ContentStore {
        &self.content
    }
    /// The metadata database, for the engine's own tables (see [`meta`] for reserved names).
    pub fn db(&self) -> &redb::Database {
        &self.db
    }

    /// Makes every metadata commit so far durable: an empty commit with fsync (redb
    /// persists the commits made without one together with the next one made with one).
    pub fn sync_metadata(&self) -> Result<()> {
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// Moves `path` (a file or directory on the data root's filesystem, e.g. a removed
    /// container's directory) into `trash/`, which a helper thread empties: it vanishes at
    /// once, and what a crash leaves in `trash/` is deleted after the next open. On another
    /// filesystem (EXDEV) it is deleted right away instead. Missing paths are fine.
    pub fn discard(&self, path: &Path) -> Result<()> {
        match self.trash.discard(path) {
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::CrossesDevices =>
            {
                match fs::remove_dir_all(path).or_else(|_| fs::remove_file(path)) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(StoreError::io(format!("removing {}", path.display()), e)),
                }
            }
            other => other,
        }
    }

    /// Waits until everything discarded so far is deleted (a daemon's shutdown); later
    /// discards are deleted in place.
    pub fn drain_trash(&self) {
        self.trash.drain();
    }

    /// A shared operation guard (see [`OpGuard`]). Never call [`Store::gc`] while holding one
    /// in the same thread.
    pub fn op(&self) -> OpGuard<'_> {
        OpGuard(self.ops.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes every blob and snapshot written so far durable: one `syncfs` of the data root's
    /// filesystem instead of an fsync per file.
    pub fn sync(&self) -> Result<()> {
        let f = fs::File::open(&self.root).ctx(|| format!("opening {}", self.root.display()))?;
        rustix::fs::syncfs(&f)
            .map_err(std::io::Error::from)
            .ctx(|| format!("syncfs {}", self.root.display()))
    }

    /// A private scratch directory (under `tmp/`, removed at open).
    pub fn temp_dir(&self, prefix: &str) -> Result<PathBuf> {
        let p = self
            .root
            .join("tmp")
            .join(format!("{prefix}-{}", random_id(8)));
        fs::create_dir(&p).ctx(|| format!("creating {}", p.display()))?;
        Ok(p)
    }

    // ---------------------------------------------------------------- images and tags

    /// The record of an image by ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(IMAGES)?;
        let key = id.to_string();
        match t.get(key.as_str())? {
            Some(v) => Ok(Some(decode("images", &key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every image with its tags (sorted), in no particular order.
    pub fn images(&self) -> Result<Vec<(ImageRecord, Vec<Reference>)>> {
        let r = self.db.begin_read()?;
        let images: Vec<ImageRecord> = meta::read_all(&r.open_table(IMAGES)?, "images")?;
        let tags = r.open_table(TAGS)?;
        let mut by_image: std::collections::HashMap<String, Vec<Reference>> = Default::default();
        for item in tags.iter()? {
            let (k, v) = item?;
            if let Ok(reference) = Reference::parse(k.value()) {
                by_image
                    .entry(v.value().to_string())
                    .or_default()
                    .push(reference);
            }
        }
        Ok(images
            .into_iter()
            .map(|img| {
                let mut t = by_image.remove(&img.id.to_string()).unwrap_or_default();
                t.sort_by_key(|r| r.to_string());
                (img, t)
            })
            .collect())
    }

    /// The references pointing at an image, sorted.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<Reference>> {
        let r = self.db.begin_read()?;
        let tags = r.open_table(TAGS)?;
        let want = id.to_string();
        let mut out = Vec::new();
        for item in tags.iter()? {
            let (k, v) = item?;
            if v.value() == want
                && let Ok(reference) = Reference::parse(k.value())
            {
                out.push(reference);
            }
        }
        out.sort_by_key(|r| r.to_string());
        Ok(out)
    }

    /// The image a reference points at, if any.
    pub fn lookup_tag(&self, reference: &Reference) -> Result<Option<Digest>> {
        let r = self.db.begin_read()?;
        let tags = r.open_table(TAGS)?;
        let key = reference.to_string();
        match tags.get(key.as_str())? {
            Some(v) => v
                .value()
                .parse()
                .map(Some)
                .map_err(|e: berth_oci::digest::DigestError| StoreError::Corrupt {
                    table: "tags",
                    key,
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    /// Resolves what a user typed (`busybox`, `busybox:1`, `sha256:<id>`, an ID prefix like
    /// `3f57d9401f8d`) to an image ID, the way Docker does: references first, then IDs.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        let not_found = || StoreError::ImageNotFound(name.to_string());
        if let Ok(d) = name.parse::<Digest>() {
            if self.image(&d)?.is_some() {
                return Ok(d);
            }
            return Err(not_found());
        }
        if let Ok(r) = Reference::parse(name)
            && let Some(id) = self.lookup_tag(&r.with_default_tag())?
        {
            return Ok(id);
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let r = self.db.begin_read()?;
            let t = r.open_table(IMAGES)?;
            let start = format!("sha256:{prefix}");
            let mut found = None;
            for item in t.range(start.as_str()..)? {
                let (k, _) = item?;
                if !k.value().starts_with(&start) {
                    break;
                }
                if found.is_some() {
                    return Err(StoreError::AmbiguousImage(name.to_string()));
                }
                found = Some(k.value().to_string());
            }
            if let Some(k) = found {
                return k.parse().map_err(|_| not_found());
            }
        }
        Err(not_found())
    }

    /// Publishes an image, its newly unpacked layers and its tags in one transaction. Layers
    /// whose chain ID another operation registered meanwhile are dropped in favour of the
    /// existing snapshot. Every layer of the image must be registered afterwards.
    pub fn commit_image(&self, commit: ImageCommit) -> Result<CommitOutcome> {
        let ImageCommit {
            mut image,
            new_layers,
            tags,
        } = commit;
        let now = now_rfc3339();
        let mut outcome = CommitOutcome::default();
        let mut discard = Vec::new();
        let w = self.db.begin_write()?;
        {
            let mut snaps = w.open_table(SNAPSHOTS)?;
            for l in new_layers {
                let key = l.chain_id.to_string();
                if snaps.get(key.as_str())?.is_some() {
                    discard.push(l.dir);
                    continue;
                }
                let rec = SnapshotRecord {
                    key: key.clone(),
                    kind: SnapshotKind::Layer,
                    id: l.dir.id.clone(),
                    link: l.dir.link.clone(),
                    parent: l.parent,
                    diff_id: Some(l.diff_id),
                    size: l.size,
                    image: None,
                    init: None,
                    entries: Vec::new(),
                    created_at: now.clone(),
                };
                snaps.insert(key.as_str(), encode(&rec).as_slice())?;
                l.dir.keep();
            }
            for layer in &image.layers {
                if snaps.get(layer.chain_id.to_string().as_str())?.is_none() {
                    return Err(StoreError::LayerNotFound(layer.chain_id.clone()));
                }
            }
            let mut images = w.open_table(IMAGES)?;
            let key = image.id.to_string();
            if let Some(old) = images.get(key.as_str())? {
                let old: ImageRecord = decode("images", &key, old.value())?;
                outcome.existed = true;
                image.created_at = old.created_at;
                image.last_tag_time = old.last_tag_time;
            }
            let mut tag_table = w.open_table(TAGS)?;
            for t in &tags {
                let tk = t.to_string();
                let prev = tag_table
                    .insert(tk.as_str(), key.as_str())?
                    .map(|v| v.value().to_string());
                if let Some(prev) = prev
                    && prev != key
                    && let Ok(d) = prev.parse()
                {
                    outcome.retagged.push((t.clone(), d));
                }
            }
            if !tags.is_empty() {
                image.last_tag_time = Some(now.clone());
            }
            images.insert(key.as_str(), encode(&image).as_slice())?;
        }
        w.commit()?;
        drop(discard);
        Ok(outcome)
    }

    /// Points `reference` at image `id`. Returns the image it pointed at before, if another.
    pub fn tag(&self, id: &Digest, reference: &Reference) -> Result<Option<Digest>> {
        let w = self.db.begin_write()?;
        let prev;
        {
            let mut images = w.open_table(IMAGES)?;
            let key = id.to_string();
            let mut rec: ImageRecord = match images.get(key.as_str())? {
                Some(v) => decode("images", &key, v.value())?,
                None => return Err(StoreError::ImageNotFound(id.to_string())),
            };
            rec.last_tag_time = Some(now_rfc3339());
            images.insert(key.as_str(), encode(&rec).as_slice())?;
            let mut tags = w.open_table(TAGS)?;
            let tk = reference.to_string();
            prev = tags
                .insert(tk.as_str(), key.as_str())?
                .and_then(|v| v.value().parse::<Digest>().ok())
                .filter(|d| d != id);
        }
        w.commit()?;
        Ok(prev)
    }

    /// Removes a reference. Returns the image it pointed at.
    pub fn untag(&self, reference: &Reference) -> Result<Digest> {
        let w = self.db.begin_write()?;
        let id;
        {
            let mut tags = w.open_table(TAGS)?;
            let tk = reference.to_string();
            id = match tags.remove(tk.as_str())? {
                Some(v) => v.value().to_string(),
                None => return Err(StoreError::ImageNotFound(reference.familiar())),
            };
        }
        w.commit()?;
        id.parse()
            .map_err(|e: berth_oci::digest::DigestError| StoreError::Corrupt {
                table: "tags",
                key: reference.to_string(),
                reason: e.to_string(),
            })
    }

    /// Deletes an image record and every reference to it (content is left to [`Store::gc`]).
    pub fn delete_image(&self, id: &Digest) -> Result<Vec<Reference>> {
        let w = self.db.begin_write()?;
        let key = id.to_string();
        let mut removed = Vec::new();
        {
            let mut images = w.open_table(IMAGES)?;
            if images.remove(key.as_str())?.is_none() {
                return Err(StoreError::ImageNotFound(id.to_string()));
            }
            let mut tags = w.open_table(TAGS)?;
            let mut doomed = Vec::new();
            for item in tags.iter()? {
                let (k, v) = item?;
                if v.value() == key {
                    doomed.push(k.value().to_string());
                }
            }
            for k in doomed {
                tags.remove(k.as_str())?;
                if let Ok(r) = Reference::parse(&k) {
                    removed.push(r);
                }
            }
        }
        w.commit()?;
        Ok(removed)
    }

    // ---------------------------------------------------------------- leases

    /// Creates (or replaces) a persisted lease protecting blobs and snapshots from GC until
    /// it is deleted or `expires_unix` passes.
    pub fn put_lease(&self, lease: &LeaseRecord) -> Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(LEASES)?;
            t.insert(lease.id.as_str(), encode(lease).as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    pub fn delete_lease(&self, id: &str) -> Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut t = w.open_table(LEASES)?;
            if t.remove(id)?.is_none() {
                return Err(StoreError::LeaseNotFound(id.to_string()));
            }
        }
        w.commit()?;
        Ok(())
    }

    pub fn leases(&self) -> Result<Vec<LeaseRecord>> {
        let r = self.db.begin_read()?;
        meta::read_all(&r.open_table(LEASES)?, "leases")
    }

    /// Reads a blob through the content store, verifying its digest as it streams.
    pub fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let data = self.content.read_blob(digest, limit)?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size: data.len() as u64,
            });
        }
        Ok(data)
    }
}

/// Random lowercase hex (from the kernel's CSPRNG), `bytes * 2` characters.
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Unreachable on Linux; fall back to time and pid so names stay unique enough.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ ((std::process::id() as u128) << 64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current time in RFC 3339 with nanoseconds, UTC (Docker's timestamp form).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

pub(crate) fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}
