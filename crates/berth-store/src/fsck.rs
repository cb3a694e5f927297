//! The store check: every blob re-hashed, every reference resolvable.

use std::collections::HashSet;
use std::fs;

use berth_oci::Digest;
use redb::{ReadableDatabase, ReadableTable};

use crate::Store;
use crate::error::{IoContext, Result, StoreError};
use crate::meta::{IMAGES, ImageRecord, SNAPSHOTS, SnapshotKind, SnapshotRecord, TAGS};
use crate::snapshots::chain_ids;

/// What [`Store::fsck`] found. `errors` are inconsistencies; `garbage` is unreferenced content
/// that the next GC would remove (not an error).
#[derive(Debug, Default, Clone)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub images_checked: usize,
    pub errors: Vec<String>,
    pub garbage: Vec<String>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

impl Store {
    /// Checks the whole store. Runs as an operation (GC waits for it).
    pub fn fsck(&self) -> Result<FsckReport> {
        let _op = self.op();
        let mut rep = FsckReport::default();
        let blobs = self.content.list()?;
        let present: HashSet<Digest> = blobs.iter().cloned().collect();
        for d in &blobs {
            match self.content.verify(d) {
                Ok(n) => {
                    rep.blobs_checked += 1;
                    rep.bytes_checked += n;
                }
                Err(StoreError::DigestMismatch { actual, .. }) => rep
                    .errors
                    .push(format!("blob {d}: content hashes to {actual}")),
                Err(e) => rep.errors.push(format!("blob {d}: {e}")),
            }
        }
        // Before the read: a slot recorded after it is still in this copy.
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let r = self.db.begin_read()?;
        let images: Vec<ImageRecord> = crate::meta::read_all(&r.open_table(IMAGES)?, "images")?;
        let snaps: Vec<SnapshotRecord> =
            crate::meta::read_all(&r.open_table(SNAPSHOTS)?, "snapshots")?;
        let snap_keys: HashSet<&str> = snaps.iter().map(|s| s.key.as_str()).collect();
        let image_ids: HashSet<String> = images.iter().map(|i| i.id.to_string()).collect();
        let mut referenced: HashSet<&Digest> = HashSet::new();
        for img in &images {
            rep.images_checked += 1;
            for b in img.blobs() {
                referenced.insert(b);
                if !present.contains(b) {
                    rep.errors
                        .push(format!("image {}: blob {b} is missing", img.id));
                }
            }
            let diff_ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
            for (layer, want) in img.layers.iter().zip(chain_ids(&diff_ids)) {
                if layer.chain_id != want {
                    rep.errors.push(format!(
                        "image {}: layer {} has chain id {} but its diff ids give {want}",
                        img.id, layer.blob, layer.chain_id
                    ));
                }
                if !snap_keys.contains(layer.chain_id.to_string().as_str()) {
                    rep.errors.push(format!(
                        "image {}: layer snapshot {} is missing",
                        img.id, layer.chain_id
                    ));
                }
            }
        }
        for item in r.open_table(TAGS)?.iter()? {
            let (k, v) = item?;
            if !image_ids.contains(v.value()) {
                rep.errors.push(format!(
                    "tag {} points at missing image {}",
                    k.value(),
                    v.value()
                ));
            }
        }
        let links = self.root.join("snapshots").join("l");
        for s in &snaps {
            let dir = self.snapshot_path(s);
            if !dir.is_dir() {
                rep.errors.push(format!(
                    "snapshot {}: directory {} is missing",
                    s.key,
                    dir.display()
                ));
            }
            match fs::read_link(links.join(&s.link)) {
                Ok(t) if t == std::path::Path::new(&format!("../{}/fs", s.id)) => {}
                Ok(t) => rep.errors.push(format!(
                    "snapshot {}: link l/{} points at {} instead of ../{}/fs",
                    s.key,
                    s.link,
                    t.display(),
                    s.id
                )),
                Err(_) => rep
                    .errors
                    .push(format!("snapshot {}: link l/{} is missing", s.key, s.link)),
            }
            if let Some(p) = &s.parent
                && !snap_keys.contains(p.to_string().as_str())
            {
                rep.errors
                    .push(format!("snapshot {}: parent layer {p} is missing", s.key));
            }
            if s.kind == SnapshotKind::Container && !s.key.starts_with("container:") {
                rep.errors.push(format!(
                    "snapshot {}: container snapshot with a layer key",
                    s.key
                ));
            }
            if s.key.starts_with(crate::init::INIT_KEY_PREFIX)
                && (s.kind != SnapshotKind::Layer || s.image.is_none())
            {
                rep.errors.push(format!(
                    "snapshot {}: init layer that is not a layer of an image",
                    s.key
                ));
            }
            if let Some(i) = &s.init
                && !snap_keys.contains(i.as_str())
            {
                rep.errors
                    .push(format!("snapshot {}: init layer {i} is missing", s.key));
            }
        }
        for d in &blobs {
            if !referenced.contains(d) {
                rep.garbage.push(format!("unreferenced blob {d}"));
            }
        }
        let mut ids: HashSet<&str> = snaps.iter().map(|s| s.id.as_str()).collect();
        // Made ahead of time for a container, not garbage (see `SnapshotSlot`).
        ids.extend(slots.iter().map(String::as_str));
        let snap_dir = self.root.join("snapshots");
        for e in fs::read_dir(&snap_dir).ctx(|| format!("listing {}", snap_dir.display()))? {
            let name = e.ctx(|| "listing snapshots")?.file_name();
            let name = name.to_string_lossy();
            if name != "l" && name != "empty" && !ids.contains(name.as_ref()) {
                rep.garbage
                    .push(format!("orphan snapshot directory {name}"));
            }
        }
        let ingest = self.root.join("ingest");
        let _ = ingest; // in-flight ingests belong to running operations; not garbage here.
        Ok(rep)
    }
}
