//! Control groups for Berth containers: v1 and v2 behind one trait.
//!
//! The calls in order (this is the contract `berth-container` codes against; extend rather
//! than change it):
//!
//! ```text
//! let host = Hierarchy::host()?;                   // parse /proc/self/mountinfo once per process
//! let cg = host.manager(&CgroupPath::from_oci(spec_path, id)?)?;
//! cg.create()?;                                     // mkdir in every hierarchy (idempotent)
//! cg.apply(&resources)?;                            // validate everything, then write files
//! cg.add_process(pid)?;                             // before the container's init runs user code
//! ...
//! cg.freeze()? / cg.thaw()?                         // pause / resume
//! cg.stats()?  cg.pids()?  cg.oom_kill_count()?
//! cg.kill_all(libc::SIGKILL)?                       // v2: cgroup.kill
//! cg.destroy()?                                     // rmdir everywhere; Ok if already gone
//! ```
//!
//! A caller that runs many containers may recycle v1 cgroups ([`spare`]): `take_spare(tag)`
//! before `create`/`create_early`, `set_aside(tag)` before `destroy`, and
//! `remove_spares_below()` on the parent's manager to clear them.
//!
//! How it is built:
//! - [`hierarchy`]: detection, once per process; hybrid hosts count as v1.
//! - [`path`]: `linux.cgroupsPath` rules (absolute, relative, default `/berth/<id>`).
//! - [`plan`]: the pure mapping from OCI resources to file writes, per version.
//! - [`devices`]: device rules → v1 `devices.allow`/`devices.deny` lines or a v2 eBPF program.
//! - `v1`/`v2`: the managers, a thin layer executing plans (one `write(2)` per value).
//! - [`stats`]: usage in `runc events --stats` JSON shape.
//!
//! See `docs/cgroups.md` for the OCI field → file table and what this host does not support.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_oci::spec::runtime::LinuxResources;

pub mod devices;
mod error;
mod fsio;
pub mod hierarchy;
pub mod path;
pub mod plan;
pub mod spare;
pub mod stats;
mod v1;
mod v2;

pub use error::{Error, Result};
pub use hierarchy::{CgroupVersion, Hierarchy};
pub use path::CgroupPath;
pub use spare::spare_tag;
pub use stats::Stats;

/// One container's cgroup, in every hierarchy of the host.
pub trait CgroupManager: Send + Sync {
    /// The hierarchy version this manager drives.
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup directories (idempotent; v1 cpuset levels get cpus/mems copied from
    /// their parent so processes can join).
    fn create(&self) -> Result<()>;
    /// Creates only what a new process should be in from its start, for a runtime that
    /// clones first and calls [`CgroupManager::create`] while the process sets up (v1
    /// processes join by writing `0` to each `tasks` file): the cgroup2 directory to clone
    /// into (`clone3(CLONE_INTO_CGROUP)`; v2: the cgroup, a hybrid v1 host: its cgroup2
    /// twin) and, on v1, the `cpu` hierarchy's directory, whose v1 paths are returned (to
    /// be joined at once). Joining `cpu` later moves the running process into a new CPU
    /// scheduling group, which reschedules it: on a busy host it then waits a time slice.
    fn create_early(&self) -> Result<Vec<PathBuf>>;
    /// Validates all of `res` first (nothing is written when a value is bad or a controller
    /// is missing), then writes the files in order.
    fn apply(&self, res: &LinuxResources) -> Result<()>;
    /// Moves process `pid` (and its threads) into the cgroup.
    fn add_process(&self, pid: i32) -> Result<()>;
    /// Freezes every process in the cgroup and waits until they are frozen.
    fn freeze(&self) -> Result<()>;
    /// Thaws the cgroup and waits until it is running again.
    fn thaw(&self) -> Result<()>;
    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> Result<bool>;
    /// The processes in the cgroup and its sub-cgroups, sorted.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Sends `signal` to every process in the cgroup. SIGKILL with a cgroup2 directory (v2, or
    /// v1 hybrid hosts): one write to `cgroup.kill`; otherwise freeze, signal each process,
    /// thaw, so none can fork away meanwhile.
    fn kill_all(&self, signal: i32) -> Result<()>;
    /// Current usage, in `runc events --stats` shape.
    fn stats(&self) -> Result<Stats>;
    /// How many processes the kernel's OOM killer killed in this cgroup.
    fn oom_kill_count(&self) -> Result<u64>;
    /// Removes the cgroup (and sub-cgroups) everywhere; Ok when already gone.
    fn destroy(&self) -> Result<()>;
    /// Takes a spare cgroup tagged `tag` ([`spare_tag`]) for this one, before `create` or
    /// `create_early`, which then find its directories made: v1 renames the spare's `cpu`
    /// directory (and its anchor, which claims it) here, the others in `create`, which a
    /// runtime that clones first calls while the process sets up. false when none waits
    /// (v2: always; cgroup2 cannot rename).
    fn take_spare(&self, tag: &str) -> bool;
    /// Sets this exited container's cgroup aside as a spare tagged `tag` (v1: counters
    /// reset, renamed in its parent). false, with nothing changed, when it
    /// cannot be reused ([`spare`]). `destroy` removes what is left either way (a hybrid
    /// host's cgroup2 twin, or everything after a false).
    fn set_aside(&self, tag: &str) -> bool;
    /// Removes the spares directly below this cgroup (called on a parent); how many went.
    fn remove_spares_below(&self) -> Result<usize>;
    /// Where the cgroup lives. v1: controller (or named hierarchy such as `name=systemd`) →
    /// directory; v2: `""` → the one directory. (On hybrid hosts a v1 container also has a
    /// cgroup2 directory, used for `cgroup.kill`; it is not listed, so a `""` key always
    /// means v2.)
    fn paths(&self) -> BTreeMap<String, PathBuf>;
}

/// The `linux.cgroup` object of the OCI `features.json`: what this build supports.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "v1": true,
        "v2": true,
        "systemd": false,
        "systemdUser": false,
        "rdma": true,
    })
}

pub(crate) fn signal_from_raw(resource: &str, signal: i32) -> Result<rustix::process::Signal> {
    rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
        Error::invalid(
            resource.to_string(),
            signal,
            "not a standard signal number (1-31)",
        )
    })
}

/// Sends `sig` to each pid; processes that exited meanwhile are fine.
pub(crate) fn signal_each(pids: &[i32], sig: rustix::process::Signal) -> Result<()> {
    for &pid in pids {
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::kill_process(p, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(Error::io(
                    "kill",
                    format!("/proc/{pid}"),
                    std::io::Error::from(e),
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn warn_ignored(ignored: &[plan::Ignored]) {
    for i in ignored {
        tracing::warn!(
            resource = i.resource,
            "ignoring linux.resources.{}: {}",
            i.resource,
            i.reason
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn features_say_what_is_built_in() {
        let f = super::features();
        assert_eq!(f["v1"], true);
        assert_eq!(f["v2"], true);
        assert_eq!(f["systemd"], false);
        assert_eq!(f["systemdUser"], false);
    }
}
