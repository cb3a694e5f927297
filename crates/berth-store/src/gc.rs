//! Garbage collection: mark from roots, sweep the rest.
//!
//! Roots are image records (tagged or not: a dangling image stays until `rmi` or `prune`),
//! container snapshots, and unexpired leases. An image marks its init layer, and so does a
//! container whose snapshot names one. Marks spread from an image to its manifest,
//! config and layer blobs and its layer chain, and from a snapshot to its parents. Sweeping
//! removes unmarked snapshot records (one transaction), then their directories and links,
//! then directories and links no record names (a crashed unpack, a crashed daemon's
//! [`crate::SnapshotSlot`]), then unmarked blobs. Slots of this process are not swept.
//!
//! GC takes the store's operation lock exclusively, so it never runs while an operation has
//! written content it has not yet referenced; operations run again as soon as it is done.

use std::collections::HashSet;
use std::fs;

use berth_oci::Digest;

use crate::error::{IoContext, Result};
use crate::meta::{IMAGES, ImageRecord, LEASES, LeaseRecord, SNAPSHOTS, SnapshotRecord, decode};
use crate::{Store, now_unix};

/// What a GC pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub snapshots_removed: usize,
    pub leases_expired: usize,
}

impl Store {
    /// Runs a full GC pass, waiting for running operations to finish first.
    pub fn gc(&self) -> Result<GcReport> {
        let _exclusive = self.ops.write().unwrap_or_else(|e| e.into_inner());
        self.gc_locked()
    }

    /// Runs GC only if no operation is running right now; `None` if it was skipped.
    pub fn gc_if_idle(&self) -> Result<Option<GcReport>> {
        match self.ops.try_write() {
            Ok(_exclusive) => self.gc_locked().map(Some),
            Err(_) => Ok(None),
        }
    }

    fn gc_locked(&self) -> Result<GcReport> {
        // Held until the sweep is done: a slot made meanwhile waits, and one recorded
        // meanwhile stays in the set (it leaves only after its commit) — see `Store::slots`.
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = GcReport::default();
        let now = now_unix();
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut snaps: HashSet<String> = HashSet::new();
        let mut removed: Vec<SnapshotRecord> = Vec::new();
        let remaining: Vec<SnapshotRecord>;
        let w = self.db.begin_write()?;
        {
            let mut leases = w.open_table(LEASES)?;
            let all: Vec<LeaseRecord> = crate::meta::read_all(&leases, "leases")?;
            for l in all {
                if l.expired(now) {
                    leases.remove(l.id.as_str())?;
                    report.leases_expired += 1;
                } else {
                    blobs.extend(l.blobs.iter().cloned());
                    snaps.extend(l.snapshots.iter().cloned());
                }
            }
            let images: Vec<ImageRecord> = crate::meta::read_all(&w.open_table(IMAGES)?, "images")?;
            for img in &images {
                blobs.extend(img.blobs().cloned());
                snaps.extend(img.layers.iter().map(|l| l.chain_id.to_string()));
                snaps.insert(crate::init::init_key(&img.id));
            }
            let mut table = w.open_table(SNAPSHOTS)?;
            let all: Vec<SnapshotRecord> = crate::meta::read_all(&table, "snapshots")?;
            for s in &all {
                if s.kind == crate::meta::SnapshotKind::Container {
                    snaps.insert(s.key.clone());
                    // Kept while a container stacks on it, even after `rmi --force`.
                    snaps.extend(s.init.iter().cloned());
                }
            }
            // Spread marks down parent chains.
            let by_key: std::collections::HashMap<&str, &SnapshotRecord> =
                all.iter().map(|s| (s.key.as_str(), s)).collect();
            let mut stack: Vec<String> = snaps.iter().cloned().collect();
            while let Some(k) = stack.pop() {
                if let Some(p) = by_key.get(k.as_str()).and_then(|s| s.parent.as_ref()) {
                    let pk = p.to_string();
                    if snaps.insert(pk.clone()) {
                        stack.push(pk);
                    }
                }
            }
            let mut keep = Vec::new();
            for s in all {
                if snaps.contains(&s.key) {
                    keep.push(s);
                } else {
                    let v = table.remove(s.key.as_str())?;
                    if let Some(v) = v {
                        let _: SnapshotRecord = decode("snapshots", &s.key, v.value())?;
                    }
                    removed.push(s);
                }
            }
            remaining = keep;
        }
        w.commit()?;

        let snap_dir = self.root.join("snapshots");
        let links = snap_dir.join("l");
        for s in &removed {
            let _ = fs::remove_file(links.join(&s.link));
            self.trash.discard(&snap_dir.join(&s.id))?;
            report.snapshots_removed += 1;
        }
        // Directories and links nobody names: left by a crash mid-unpack.
        let mut ids: HashSet<&str> = remaining.iter().map(|s| s.id.as_str()).collect();
        ids.extend(slots.iter().map(String::as_str));
        let link_names: HashSet<&str> = remaining.iter().map(|s| s.link.as_str()).collect();
        for e in fs::read_dir(&snap_dir).ctx(|| format!("listing {}", snap_dir.display()))? {
            let e = e.ctx(|| "listing snapshots")?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "l" || name == "empty" || ids.contains(name.as_str()) {
                continue;
            }
            self.trash.discard(&e.path())?;
            report.snapshots_removed += 1;
        }
        for e in fs::read_dir(&links).ctx(|| format!("listing {}", links.display()))? {
            let e = e.ctx(|| "listing snapshot links")?;
            let name = e.file_name().to_string_lossy().into_owned();
            if link_names.contains(name.as_str()) {
                continue;
            }
            // A slot's link points into a directory in the set.
            let slot_link = fs::read_link(e.path()).ok().is_some_and(|t| {
                t.strip_prefix("..")
                    .ok()
                    .and_then(|t| t.iter().next())
                    .is_some_and(|id| slots.contains(id.to_string_lossy().as_ref()))
            });
            if !slot_link {
                let _ = fs::remove_file(e.path());
            }
        }
        drop(slots);
        for d in self.content.list()? {
            if !blobs.contains(&d) {
                report.bytes_freed += self.content.size(&d).unwrap_or(0);
                self.trash.discard(&self.content.path(&d))?;
                report.blobs_removed += 1;
            }
        }
        if report != GcReport::default() {
            tracing::debug!(?report, "gc");
        }
        Ok(report)
    }
}
