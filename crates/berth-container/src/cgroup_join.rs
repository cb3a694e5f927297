//! Putting a new process into its cgroup without migrating it from the outside.
//!
//! Writing a pid to `cgroup.procs` takes the kernel's global `cgroup_threadgroup_rwsem`
//! for writing, which waits for an RCU grace period: 10–15 ms per container start on the
//! development machine, more than everything else together. Instead:
//! - v1 hierarchies: the new process writes `"0"` to each `tasks` file (moving only the
//!   calling thread, which the kernel does without the global lock: ~40 µs). The files are
//!   opened here by the runtime, so the write is checked against the runtime's credentials
//!   even from inside a new user namespace.
//! - cgroup2 (a v2 host, or the cgroup2 twin of a hybrid host): `clone3(CLONE_INTO_CGROUP)`
//!   creates the process directly in the cgroup.
//!
//! `CgroupManager::add_process` remains the fallback (e.g. when `clone3` refuses the fd).
//!
//! On v1 the cgroup need not even exist when the process is cloned. `Runtime::create` (v1,
//! a new mount namespace, no new user or cgroup namespace) makes only the cgroup2 twin and
//! the `cpu` directory before `clone3` (`CgroupManager::create_early`: the init joins `cpu`
//! first thing, as a late move into a new CPU scheduling group costs a time slice on a busy
//! host), then creates the other v1 directories and writes the limits while the init sets
//! up its rootfs, and sends it their `tasks` files ([`tasks_files`], `Msg::JoinCgroups`
//! over the sync channel). The init joins at the end of its rootfs setup, before it runs
//! hooks, forks, sets rlimits, loads seccomp or execs; the cgroup mount's binds of the
//! hierarchies wait until then (`rootfs::CgroupBinds`). Device nodes are made before the
//! join, which the device cgroup would not refuse either: its rules always end with
//! "c *:* m" and "b *:* m". A user namespace's init waits for its id maps anyway, and a
//! cgroup namespace must be made after the join: both keep the cgroup made before the clone.

use berth_cgroups::{CgroupManager, CgroupPath, CgroupVersion, Hierarchy};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Handles for a process about to be created (see the module docs).
#[derive(Debug, Default)]
pub struct JoinHandles {
    /// cgroup2 directory for `CLONE_INTO_CGROUP`.
    pub clone_into: Option<OwnedFd>,
    /// v1 `tasks` files the new process writes "0" to.
    pub self_join: Vec<OwnedFd>,
}

fn open_dir(p: &Path) -> Option<OwnedFd> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Our own cgroup2 path (`0::/...` in /proc/self/cgroup).
fn own_v2_cgroup() -> Option<PathBuf> {
    crate::state::read_proc_text("/proc/self/cgroup")?
        .lines()
        .find_map(|l| {
            l.strip_prefix("0::")
                .map(|p| PathBuf::from(p.trim_start_matches('/')))
        })
}

/// Builds the handles; `None` means "use `add_process` instead".
pub fn handles(
    cg: &dyn CgroupManager,
    hierarchy: &Hierarchy,
    path: &CgroupPath,
) -> Option<JoinHandles> {
    let h = JoinHandles {
        clone_into: clone_target(cg, hierarchy, path)?,
        self_join: match cg.version() {
            CgroupVersion::V2 => Vec::new(),
            CgroupVersion::V1 => tasks_files(cg, &[])?,
        },
    };
    if cg.version() == CgroupVersion::V2 {
        h.clone_into.as_ref()?;
    }
    Some(h)
}

/// The cgroup2 directory to clone into: the cgroup on v2, the twin of a hybrid v1 host
/// (`Some(None)` where there is none, or it is not made yet). `None`: our own cgroup2 path
/// is unknown, use `add_process`.
pub fn clone_target(
    cg: &dyn CgroupManager,
    hierarchy: &Hierarchy,
    path: &CgroupPath,
) -> Option<Option<OwnedFd>> {
    match cg.version() {
        CgroupVersion::V2 => Some(open_dir(cg.paths().values().next()?)),
        CgroupVersion::V1 => {
            // The cgroup2 twin of a hybrid host (the manager creates it too).
            let Some(unified) = hierarchy.unified_mount() else {
                return Some(None);
            };
            let base = if path.is_absolute() {
                unified.to_path_buf()
            } else {
                unified.join(own_v2_cgroup()?)
            };
            // Opened without a `statx` first: missing (not made) is simply no twin.
            Some(open_dir(&base.join(path.relative())))
        }
    }
}

/// The `tasks` files in v1 directories `dirs`; `None` if one does not open.
pub fn tasks_files_of(dirs: &[PathBuf]) -> Option<Vec<OwnedFd>> {
    dirs.iter().map(|d| open_tasks(d)).collect()
}

fn open_tasks(dir: &Path) -> Option<OwnedFd> {
    rustix::fs::open(
        dir.join("tasks"),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// The v1 `tasks` files of every hierarchy but those in `skip`, for the new process to write
/// "0" to; `None` if one does not open (the caller then uses `add_process`).
pub fn tasks_files(cg: &dyn CgroupManager, skip: &[PathBuf]) -> Option<Vec<OwnedFd>> {
    let dirs: BTreeSet<PathBuf> = cg.paths().into_values().collect();
    dirs.into_iter()
        .filter(|d| !skip.contains(d))
        .map(|d| open_tasks(&d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_relative() {
        if let Some(p) = own_v2_cgroup() {
            assert!(!p.is_absolute(), "{}", p.display());
        }
    }
}
