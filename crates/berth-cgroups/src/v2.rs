//! cgroup v2: one directory in the unified hierarchy.
//!
//! Controllers are enabled lazily: `apply` enables (in each ancestor's
//! `cgroup.subtree_control`, from the root down) only the controllers the resources need and
//! only where they are not enabled yet, so a container without limits touches no ancestor.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_oci::spec::runtime::LinuxResources;
use berth_sys::bpf;

use crate::devices::DeviceState;
use crate::error::{Error, Result};
use crate::plan::{self, Permissive, Probe};
use crate::stats::{self, Stats};
use crate::{CgroupManager, CgroupVersion, fsio};

/// How long freeze/thaw may take before giving up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct V2Manager {
    root: PathBuf,
    rel: String,
    dir: PathBuf,
}

impl V2Manager {
    pub(crate) fn new(root: PathBuf, rel: String) -> V2Manager {
        let dir = root.join(&rel);
        V2Manager { root, rel, dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Enables `needed` controllers on the path from the root to our parent.
    fn enable_controllers(&self, needed: &BTreeSet<&'static str>, plan: &plan::Plan) -> Result<()> {
        if needed.is_empty() {
            return Ok(());
        }
        let available = fsio::read(&self.root.join("cgroup.controllers"))?;
        let available: BTreeSet<&str> = available.split_whitespace().collect();
        for c in needed {
            if !available.contains(c) {
                let resource = plan
                    .writes
                    .iter()
                    .find(|w| w.controller == *c)
                    .map_or("resources", |w| w.resource);
                return Err(Error::unsupported(
                    resource,
                    format!(
                        "the {c} controller is not available in the cgroup v2 hierarchy at {} (it offers: {})",
                        self.root.display(),
                        available.iter().copied().collect::<Vec<_>>().join(" ")
                    ),
                ));
            }
        }
        let mut level = self.root.clone();
        let comps: Vec<&str> = self.rel.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            let control = level.join("cgroup.subtree_control");
            let enabled = fsio::read(&control)?;
            let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
            let missing: Vec<String> = needed
                .iter()
                .filter(|c| !enabled.contains(*c))
                .map(|c| format!("+{c}"))
                .collect();
            if !missing.is_empty() {
                fsio::write(&control, &missing.join(" "))?;
            }
            if i + 1 < comps.len() {
                level.push(c);
            }
        }
        Ok(())
    }

    /// Loads the device program and attaches it, replacing the one(s) attached before: the new
    /// program is attached first (with BPF_F_ALLOW_MULTI both run, so access only narrows in
    /// between), then the old ones are detached.
    fn attach_device_filter(&self, state: &DeviceState) -> Result<()> {
        let fail = |reason: String| Error::DeviceFilter {
            path: self.dir.clone(),
            reason,
        };
        let insns = state.bpf_program();
        let prog = bpf::prog_load_cgroup_device(&insns, c"Apache-2.0", "berth_devices")
            .map_err(|e| fail(e.to_string()))?;
        let dir = File::open(&self.dir).map_err(|e| Error::io("open", &self.dir, e))?;
        let (flags, old) = bpf::prog_query(dir.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
            .map_err(|e| fail(format!("BPF_PROG_QUERY: {e}")))?;
        if !old.is_empty() && flags & bpf::F_ALLOW_MULTI == 0 {
            // Someone attached a single (non-multi) program: replacing it in place is the
            // only option the kernel leaves.
            return bpf::prog_attach(dir.as_fd(), prog.as_fd(), bpf::ATTACH_CGROUP_DEVICE, flags)
                .map_err(|e| fail(format!("BPF_PROG_ATTACH (replace): {e}")));
        }
        bpf::prog_attach(
            dir.as_fd(),
            prog.as_fd(),
            bpf::ATTACH_CGROUP_DEVICE,
            bpf::F_ALLOW_MULTI,
        )
        .map_err(|e| fail(format!("BPF_PROG_ATTACH: {e}")))?;
        for id in old {
            let old_prog = match bpf::prog_get_fd_by_id(id) {
                Ok(fd) => fd,
                // Detached and freed by someone else meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(fail(format!("BPF_PROG_GET_FD_BY_ID {id}: {e}"))),
            };
            match bpf::prog_detach(dir.as_fd(), old_prog.as_fd(), bpf::ATTACH_CGROUP_DEVICE) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(fail(format!("BPF_PROG_DETACH {id}: {e}"))),
            }
        }
        Ok(())
    }

    /// Writes `cgroup.freeze` and waits, woken by the kernel's change notification on
    /// `cgroup.events`, until `frozen` reports the wanted state.
    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let freeze = self.file("cgroup.freeze");
        if !freeze.exists() {
            return Err(Error::unsupported(
                "freezer",
                "this kernel has no cgroup.freeze (cgroup v2 freezing needs Linux 5.2)",
            ));
        }
        fsio::write(&freeze, if frozen { "1" } else { "0" })?;
        let events_path = self.file("cgroup.events");
        let events = File::open(&events_path).map_err(|e| Error::io("open", &events_path, e))?;
        let want = u64::from(frozen);
        let start = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            let n = events
                .read_at(&mut buf, 0)
                .map_err(|e| Error::io("read", &events_path, e))?;
            let m = stats::parse_flat_keyed(&String::from_utf8_lossy(&buf[..n]));
            if m.get("frozen") == Some(&want) {
                return Ok(());
            }
            let left = FREEZE_TIMEOUT.saturating_sub(start.elapsed());
            if left.is_zero() {
                if frozen {
                    let _ = fsio::write(&freeze, "0");
                }
                return Err(Error::Timeout {
                    what: if frozen { "freeze" } else { "thaw" },
                    path: self.dir.clone(),
                    millis: FREEZE_TIMEOUT.as_millis() as u64,
                });
            }
            let ts = rustix::event::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [rustix::event::PollFd::new(
                &events,
                rustix::event::PollFlags::PRI,
            )];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::io("poll", &events_path, e.into())),
            }
        }
    }

    fn read_events(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        Ok(fsio::read_opt(&self.file(name))?
            .map(|t| stats::parse_flat_keyed(&t))
            .unwrap_or_default())
    }
}

struct V2Probe<'a>(&'a Path);

impl Probe for V2Probe<'_> {
    fn has(&self, _controller: &str, file: &str) -> bool {
        self.0.join(file).exists()
    }
    fn read(&self, _controller: &str, file: &str) -> Option<String> {
        fsio::read(&self.0.join(file)).ok()
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self) -> Result<()> {
        fsio::mkdir_levels(&self.root, &self.rel).map(drop)
    }

    fn create_early(&self) -> Result<Vec<PathBuf>> {
        self.create().map(|()| Vec::new())
    }

    fn apply(&self, res: &LinuxResources) -> Result<()> {
        // Validate every value before touching anything.
        let draft = plan::plan_v2(res, &Permissive)?;
        self.enable_controllers(&draft.controllers(), &draft)?;
        // Now the controllers' files exist: choose files by what is really there.
        let plan = plan::plan_v2(res, &V2Probe(&self.dir))?;
        crate::warn_ignored(&plan.ignored);
        let targets: Vec<PathBuf> = plan.writes.iter().map(|w| self.file(&w.file)).collect();
        fsio::write_seq(
            targets
                .iter()
                .zip(&plan.writes)
                .map(|(path, w)| (path.as_path(), w.value.as_str())),
        )?;
        if let Some(state) = &plan.devices {
            self.attach_device_filter(state)?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        fsio::write(&self.file("cgroup.procs"), &pid.to_string())
    }

    fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn is_frozen(&self) -> Result<bool> {
        Ok(self.read_events("cgroup.events")?.get("frozen") == Some(&1))
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        fsio::procs_recursive(&self.dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = crate::signal_from_raw("signal", signal)?;
        let kill_file = self.file("cgroup.kill");
        if signal == libc::SIGKILL && kill_file.exists() {
            return fsio::write(&kill_file, "1");
        }
        let frozen = self.set_frozen(true).is_ok();
        let result = self.pids().and_then(|p| crate::signal_each(&p, sig));
        if frozen {
            self.set_frozen(false)?;
        }
        result
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        let cpu = self.read_events("cpu.stat")?;
        let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = cpu.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = us("throttled_usec");

        if let Some(t) = fsio::read_opt(&self.file("cpuset.cpus.effective"))? {
            s.cpuset.cpus = stats::parse_cpu_list(&t).unwrap_or_default();
        }
        if let Some(t) = fsio::read_opt(&self.file("cpuset.mems.effective"))? {
            s.cpuset.mems = stats::parse_cpu_list(&t).unwrap_or_default();
        }

        if self.file("memory.current").exists() {
            let events = self.read_events("memory.events")?;
            s.memory.usage = stats::MemoryEntry {
                usage: fsio::read_u64(&self.file("memory.current"))?,
                limit: fsio::read_u64_opt(&self.file("memory.max"))?,
                max: fsio::read_u64_opt(&self.file("memory.peak"))?,
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            // runc reports v2 swap as memory+swap, like v1's memsw.
            if self.file("memory.swap.current").exists() {
                let swap_max = fsio::read_u64_opt(&self.file("memory.swap.max"))?;
                let swap_events = self.read_events("memory.swap.events")?;
                s.memory.swap = stats::MemoryEntry {
                    usage: fsio::read_u64(&self.file("memory.swap.current"))?
                        .saturating_add(s.memory.usage.usage),
                    limit: swap_max.saturating_add(s.memory.usage.limit),
                    max: 0,
                    failcnt: swap_events.get("fail").copied().unwrap_or(0),
                };
            }
            s.memory.raw = self.read_events("memory.stat")?;
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        }

        s.pids.current = fsio::read_u64_opt(&self.file("pids.current"))?;
        let max = fsio::read_u64_opt(&self.file("pids.max"))?;
        s.pids.limit = if max == u64::MAX { 0 } else { max };

        if let Some(t) = fsio::read_opt(&self.file("io.stat"))? {
            let (bytes, ios) = stats::parse_io_stat_v2(&t);
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive = ios;
        }

        for size in stats::host_hugepage_sizes() {
            let f = |k: &str| self.file(&format!("hugetlb.{size}.{k}"));
            if !f("max").exists() {
                continue;
            }
            let events = self.read_events(&format!("hugetlb.{size}.events"))?;
            let max = fsio::read_u64_opt(&f("max"))?;
            s.hugetlb.insert(
                size.clone(),
                stats::Hugetlb {
                    usage: fsio::read_u64_opt(&f("current"))?,
                    max: if max == u64::MAX { 0 } else { max },
                    failcnt: events.get("max").copied().unwrap_or(0),
                },
            );
        }
        Ok(s)
    }

    fn take_spare(&self, _tag: &str) -> bool {
        false
    }

    fn set_aside(&self, _tag: &str) -> bool {
        false
    }

    fn remove_spares_below(&self) -> Result<usize> {
        Ok(0)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        Ok(self
            .read_events("memory.events")?
            .get("oom_kill")
            .copied()
            .unwrap_or(0))
    }

    fn destroy(&self) -> Result<()> {
        fsio::remove_cgroup(&self.dir)
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        BTreeMap::from([(String::new(), self.dir.clone())])
    }
}
