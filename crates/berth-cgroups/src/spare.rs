//! Spare cgroups (v1): an exited container's empty cgroup set aside, renamed in its parent,
//! for the next container with identical resources to take instead of making its own.
//!
//! Why: making a container's cgroup is a `mkdir` in each of a v1 host's ten-odd hierarchies
//! and removing it an `rmdir` in each, plus the kernel's release work for each controller
//! state afterwards. Two renames per hierarchy replace it: 0.6–0.9 ms of CPU less per
//! container here (docs/cgroups.md, "Spare cgroups (v1)"). cgroup2 cannot rename cgroups,
//! so v2 (and a hybrid host's cgroup2 twin) keeps `mkdir`/`rmdir`.
//!
//! The contract:
//! - A spare is named `spare-<tag>-<name of the container's cgroup>` in every v1
//!   hierarchy. The tag ([`spare_tag`]) fingerprints the resources it was configured with:
//!   only a container with the very same resources takes it, so `apply` then writes the
//!   values already there and the result equals a fresh cgroup's. Containers with a memory
//!   limit never take or leave a spare: page cache charged by the earlier container would
//!   count against their limit.
//! - Setting aside renames the *anchor* (the first directory by path) last and taking
//!   renames it first: whoever renames the anchor owns the spare, and an anchor seen under a
//!   spare name means every other directory already is.
//! - Counters are reset first (peaks to the current usage, the rest to 0). A spare is only
//!   made from a cgroup with no process, no sub-cgroup, no OOM kill counted and not frozen;
//!   at most [`MAX_SPARES`] wait.
//! - What a spare keeps: cumulative counters the kernel cannot reset (`cpu.stat`'s
//!   throttling counts, `pids.events`), page cache the earlier container charged, and the
//!   `cpuset` values copied from the parent when it was first made.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_oci::spec::runtime::LinuxResources;

use crate::fsio;

/// Prefix of a spare cgroup's name.
pub const SPARE_PREFIX: &str = "spare-";

/// At most this many spares wait in one parent; more are removed as before.
pub const MAX_SPARES: usize = 4;

/// Counters reset before a cgroup is set aside, the ones `docker stats` shows:
/// (controller, file, value). A peak resets to the current usage, the rest to 0. Absent
/// files (memsw without swap accounting) are skipped.
pub(crate) const RESETS: [(&str, &str, &str); 6] = [
    ("memory", "memory.max_usage_in_bytes", "0"),
    ("memory", "memory.memsw.max_usage_in_bytes", "0"),
    ("memory", "memory.failcnt", "0"),
    ("memory", "memory.memsw.failcnt", "0"),
    ("cpuacct", "cpuacct.usage", "0"),
    ("blkio", "blkio.reset_stats", "1"),
];

/// The spare tag of a container with `res`, or `None` when its cgroup must not be shared
/// with a later container (a memory limit: see the module docs). A 64-bit FNV-1a of the
/// resources' JSON, in hex: stable across processes of one build.
pub fn spare_tag(res: &LinuxResources) -> Option<String> {
    if res.memory().is_some() {
        return None;
    }
    let json = serde_json::to_vec(res).ok()?;
    let hash = json.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Some(format!("{hash:016x}"))
}

/// A taken spare's directories still under its name, renamed by [`finish`].
pub(crate) struct Rest {
    name: String,
    dirs: Vec<PathBuf>,
}

impl Rest {
    /// Removes the directories still under the spare's name (the cgroup is given up
    /// before [`finish`]).
    pub(crate) fn discard(self) {
        for dir in &self.dirs {
            let _ = fsio::remove_cgroup(&dir.with_file_name(&self.name));
        }
    }
}

/// Takes a spare tagged `tag` for the cgroup directories `dirs` (sorted, anchor first, none
/// existing yet): renames the anchor, which makes the spare ours, and every directory but
/// those `later` picks, which [`finish`] renames (the caller's process can be running by
/// then: a container's init needs only its `cpu` directory at its start). `Some` when all
/// those renames worked; `None` when no spare waits, or when a directory was missing (then
/// every other directory is renamed at once, and `create` must make the missing one).
pub(crate) fn take(dirs: &[PathBuf], tag: &str, later: &dyn Fn(&Path) -> bool) -> Option<Rest> {
    let (anchor, rest) = dirs.split_first()?;
    let parent = anchor.parent()?;
    let prefix = format!("{SPARE_PREFIX}{tag}-");
    let entries = std::fs::read_dir(parent).ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(&prefix)) else {
            continue;
        };
        // Another container may take the same spare: the anchor's rename decides.
        if std::fs::rename(parent.join(name), anchor).is_err() {
            continue;
        }
        let (deferred, now): (Vec<PathBuf>, Vec<PathBuf>) =
            rest.iter().cloned().partition(|d| later(d));
        let taken = Rest {
            name: name.to_string(),
            dirs: now,
        };
        let deferred = Rest {
            name: name.to_string(),
            dirs: deferred,
        };
        if finish(taken) {
            return Some(deferred);
        }
        finish(deferred);
        return None;
    }
    None
}

/// Renames the rest of a taken spare. false when a directory was missing (its spare is
/// removed; `create` must make the missing one).
pub(crate) fn finish(rest: Rest) -> bool {
    let mut complete = true;
    for dir in &rest.dirs {
        let from = dir.with_file_name(&rest.name);
        if std::fs::rename(&from, dir).is_err() {
            let _ = std::fs::remove_dir(&from);
            complete = false;
        }
    }
    complete
}

/// What [`set_aside`] checks and resets, besides the directories.
pub(crate) struct Aside<'a> {
    /// Where `cgroup.procs` is read (empty: no process left).
    pub procs: Option<&'a Path>,
    /// The OOM killer's count.
    pub oom_kills: u64,
    /// Where `freezer.state` is read.
    pub freezer: Option<&'a Path>,
    /// (file, value) from [`RESETS`] in the controllers present.
    pub resets: Vec<(PathBuf, &'static str)>,
}

/// Sets the cgroup directories `dirs` (sorted, anchor first) aside as a spare tagged `tag`.
/// false, with nothing renamed, when the cgroup cannot be reused (see the module docs) or a
/// rename failed; the caller then removes the directories as usual.
pub(crate) fn set_aside(dirs: &[PathBuf], tag: &str, aside: &Aside<'_>) -> bool {
    let Some((anchor, rest)) = dirs.split_first() else {
        return false;
    };
    let (Some(parent), Some(own)) = (anchor.parent(), anchor.file_name()) else {
        return false;
    };
    if aside.oom_kills > 0 {
        return false;
    }
    let empty = aside
        .procs
        .is_none_or(|d| fsio::read(&d.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty()));
    let thawed = || {
        aside.freezer.is_none_or(|d| {
            fsio::read(&d.join("freezer.state")).is_ok_and(|s| s.trim() == "THAWED")
        })
    };
    // A cgroup directory's link count is 2 plus its sub-cgroups.
    let leaf = || {
        dirs.iter()
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.nlink() == 2))
    };
    if !empty || !thawed() || !leaf() || spares_in(parent) >= MAX_SPARES {
        return false;
    }
    if aside
        .resets
        .iter()
        .any(|(path, value)| fsio::write_opt(path, value).is_err())
    {
        return false;
    }
    let spare = format!("{SPARE_PREFIX}{tag}-{}", own.to_string_lossy());
    let mut renamed: Vec<&PathBuf> = Vec::with_capacity(dirs.len());
    for dir in rest.iter().chain([anchor]) {
        if std::fs::rename(dir, dir.with_file_name(&spare)).is_err() {
            for done in renamed {
                let _ = std::fs::rename(done.with_file_name(&spare), done);
            }
            return false;
        }
        renamed.push(dir);
    }
    true
}

/// Removes the spares directly below each of `dirs` (a parent cgroup's directories); how
/// many directories went.
pub(crate) fn remove_below(dirs: &[PathBuf]) -> crate::Result<usize> {
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(SPARE_PREFIX)
            {
                fsio::remove_cgroup(&entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn spares_in(parent: &Path) -> usize {
    std::fs::read_dir(parent).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(SPARE_PREFIX))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn tags_match_only_identical_resources_and_never_memory_limits() {
        let a = spare_tag(&resources(r#"{"pids":{"limit":4096}}"#)).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(
            spare_tag(&resources(r#"{"pids":{"limit":4096}}"#)),
            Some(a.clone())
        );
        assert_ne!(
            spare_tag(&resources(r#"{"pids":{"limit":100}}"#)),
            Some(a.clone())
        );
        assert_ne!(spare_tag(&resources("{}")), Some(a));
        assert_eq!(
            spare_tag(&resources(r#"{"memory":{"limit":67108864}}"#)),
            None
        );
    }
}
