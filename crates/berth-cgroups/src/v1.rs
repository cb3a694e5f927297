//! cgroup v1: one directory per mounted hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_oci::spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::plan::{self, Probe};
use crate::stats::{self, Stats};
use crate::{CgroupManager, CgroupVersion, fsio, spare};

pub(crate) struct V1Manager {
    /// controller → (mount point, path relative to it)
    dirs: BTreeMap<String, (PathBuf, String)>,
    /// `create` made the devices directory and `apply` has not run since: no process can be
    /// inside yet, so the first `apply` writes the device rules without reading
    /// `devices.list` first (skipping writes only matters for a running container, where a
    /// rewrite briefly denies devices; the writes give the same list either way).
    devices_fresh: AtomicBool,
    /// The v1 directories are a spare's ([`CgroupManager::take_spare`]): `create` makes only
    /// a hybrid host's cgroup2 twin (each v1 `mkdir` would fail with `EEXIST`).
    taken: AtomicBool,
    /// The taken spare's directories `take_spare` left to `create` (all but the anchor's
    /// and `cpu`'s: renamed while the container's init sets up, off its path).
    spare_rest: std::sync::Mutex<Option<spare::Rest>>,
    /// The v1 directories went to a spare ([`CgroupManager::set_aside`]): `destroy` removes
    /// only the twin (each v1 `rmdir` would fail with `ENOENT`).
    set_aside: AtomicBool,
}

impl V1Manager {
    pub(crate) fn new(dirs: BTreeMap<String, (PathBuf, String)>) -> V1Manager {
        V1Manager {
            dirs,
            devices_fresh: AtomicBool::new(false),
            taken: AtomicBool::new(false),
            spare_rest: std::sync::Mutex::new(None),
            set_aside: AtomicBool::new(false),
        }
    }

    fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.dirs.get(controller).map(|(m, r)| m.join(r))
    }

    fn need(&self, controller: &str, what: &str) -> Result<PathBuf> {
        self.dir(controller).ok_or_else(|| {
            Error::unsupported(
                what.to_string(),
                format!("the {controller} cgroup v1 controller is not mounted on this host"),
            )
        })
    }

    fn take_spare_rest(&self) -> Option<spare::Rest> {
        self.spare_rest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Runs `f` on the hybrid host's cgroup2 twin, if there is one.
    fn twin_only<T>(&self, f: impl FnOnce(&Path, &str) -> Result<T>) -> Result<Option<T>> {
        self.dirs.get("").map(|(m, r)| f(m, r)).transpose()
    }

    /// The v1 directories, each once, sorted (the first is the spare's anchor); without a
    /// hybrid host's cgroup2 twin, which cannot be renamed.
    fn v1_dirs(&self) -> Vec<PathBuf> {
        let dirs: std::collections::BTreeSet<PathBuf> = self
            .dirs
            .iter()
            .filter(|(controller, _)| !controller.is_empty())
            .map(|(_, (m, r))| m.join(r))
            .collect();
        dirs.into_iter().collect()
    }

    /// Each directory once (co-mounted controllers share one).
    fn unique(&self) -> BTreeMap<PathBuf, (&Path, &str)> {
        self.dirs
            .values()
            .map(|(m, r)| (m.join(r), (m.as_path(), r.as_str())))
            .collect()
    }

    /// Which directory lists the processes (any hierarchy works; prefer the cheap ones).
    fn procs_dir(&self) -> Option<PathBuf> {
        ["pids", "freezer", "devices", "memory", "cpu"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.unique().into_keys().next())
    }

    fn freezer_state(&self, dir: &Path) -> Result<String> {
        Ok(fsio::read(&dir.join("freezer.state"))?.trim().to_string())
    }

    /// v1 freezing is asynchronous (FREEZING until every task stopped) and has no change
    /// notification, so poll the state with a short, bounded backoff, re-requesting the state
    /// as runc does (a task forking meanwhile can leave the cgroup FREEZING).
    fn set_freezer(&self, want: &str) -> Result<()> {
        let dir = self.need("freezer", "freezer")?;
        let file = dir.join("freezer.state");
        let start = Instant::now();
        let limit = Duration::from_secs(5);
        let mut delay = Duration::from_micros(100);
        loop {
            fsio::write(&file, want)?;
            if self.freezer_state(&dir)? == want {
                return Ok(());
            }
            if start.elapsed() > limit {
                // Leave it thawed rather than half-frozen.
                let _ = fsio::write(&file, "THAWED");
                return Err(Error::Timeout {
                    what: if want == "FROZEN" { "freeze" } else { "thaw" },
                    path: dir,
                    millis: limit.as_millis() as u64,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }
}

/// Probes the target cgroup's directories; `.1`: the devices directory is fresh (see
/// `V1Manager::devices_fresh`).
struct V1Probe<'a>(&'a V1Manager, bool);

impl Probe for V1Probe<'_> {
    fn has(&self, controller: &str, file: &str) -> bool {
        self.0
            .dir(controller)
            .is_some_and(|d| d.join(file).exists())
    }
    fn read(&self, controller: &str, file: &str) -> Option<String> {
        if self.1 && controller == "devices" && file == "devices.list" {
            return None;
        }
        self.0
            .dir(controller)
            .and_then(|d| fsio::read(&d.join(file)).ok())
    }
}

/// Copies cpuset.cpus/mems down from the parent into every level under `mount` along `rel`
/// that has them empty (new cpuset cgroups start empty and refuse processes until set).
///
/// Levels in `created` (just made by us) are not read: a new cpuset cgroup is either empty or,
/// with the parent's `cgroup.clone_children` set, already holds the parent's values, and
/// writing the parent's values is right in both cases.
fn ensure_cpuset(mount: &Path, rel: &str, created: &[PathBuf]) -> Result<()> {
    let mut parent = mount.to_path_buf();
    let mut parent_vals: [Option<String>; 2] = [None, None];
    let mut cur = mount.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        cur.push(c);
        let fresh = created.contains(&cur);
        for (i, f) in ["cpuset.cpus", "cpuset.mems"].into_iter().enumerate() {
            let v = if fresh {
                String::new()
            } else {
                fsio::read(&cur.join(f))?
            };
            if v.trim().is_empty() {
                let pv = match &parent_vals[i] {
                    Some(pv) => pv.clone(),
                    None => fsio::read(&parent.join(f))?.trim().to_string(),
                };
                fsio::write(&cur.join(f), &pv)?;
                parent_vals[i] = Some(pv);
            } else {
                parent_vals[i] = Some(v.trim().to_string());
            }
        }
        parent = cur.clone();
    }
    Ok(())
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self) -> Result<()> {
        if let Some(rest) = self.take_spare_rest()
            && !spare::finish(rest)
        {
            // A hierarchy's part was missing: made below like a new cgroup's.
            self.taken.store(false, Ordering::Relaxed);
        }
        if self.taken.load(Ordering::Relaxed) {
            return self.twin_only(fsio::mkdir_levels).map(drop);
        }
        let mut cpuset_created = Vec::new();
        let cpuset = self.dirs.get("cpuset");
        let devices = self.dir("devices");
        let mut devices_fresh = false;
        for (dir, (mount, rel)) in self.unique() {
            let created = fsio::mkdir_levels(mount, rel)?;
            if devices.as_ref() == Some(&dir) {
                devices_fresh = created.last() == Some(&dir);
            }
            if cpuset.is_some_and(|(m, r)| m == mount && r == rel) {
                cpuset_created = created;
            }
        }
        self.devices_fresh.store(devices_fresh, Ordering::Relaxed);
        if let Some((mount, rel)) = cpuset {
            ensure_cpuset(mount, rel, &cpuset_created)?;
        }
        Ok(())
    }

    fn create_early(&self) -> Result<Vec<PathBuf>> {
        // The hybrid host's cgroup2 twin (key "") and the cpu hierarchy; `create` finds them
        // made.
        let mut v1 = Vec::new();
        for key in ["", "cpu"] {
            if let Some((mount, rel)) = self.dirs.get(key) {
                if key.is_empty() || !self.taken.load(Ordering::Relaxed) {
                    fsio::mkdir_levels(mount, rel)?;
                }
                if !key.is_empty() {
                    v1.push(mount.join(rel));
                }
            }
        }
        Ok(v1)
    }

    fn apply(&self, res: &LinuxResources) -> Result<()> {
        let fresh = self.devices_fresh.swap(false, Ordering::Relaxed);
        let plan = plan::plan_v1(res, &V1Probe(self, fresh))?;
        // Every controller first, so a missing one fails before anything is written.
        let mut targets = Vec::with_capacity(plan.writes.len());
        for w in &plan.writes {
            let dir = self.need(w.controller, w.resource)?;
            targets.push(dir.join(&w.file));
        }
        crate::warn_ignored(&plan.ignored);
        fsio::write_seq(
            targets
                .iter()
                .zip(&plan.writes)
                .map(|(path, w)| (path.as_path(), w.value.as_str())),
        )
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for dir in self.unique().into_keys() {
            fsio::write(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        self.set_freezer("FROZEN")
    }

    fn thaw(&self) -> Result<()> {
        self.set_freezer("THAWED")
    }

    fn is_frozen(&self) -> Result<bool> {
        let dir = self.need("freezer", "freezer")?;
        Ok(self.freezer_state(&dir)? == "FROZEN")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            fsio::procs_recursive(&dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = crate::signal_from_raw("signal", signal)?;
        // Hybrid hosts: the cgroup2 twin has cgroup.kill (one write, race-free).
        if signal == libc::SIGKILL
            && let Some(kill) = self.dir("").map(|d| d.join("cgroup.kill"))
            && kill.exists()
        {
            return fsio::write(&kill, "1");
        }
        let frozen = self.dir("freezer").is_some() && self.freeze().is_ok();
        let result = self.pids().and_then(|p| crate::signal_each(&p, sig));
        if frozen {
            self.thaw()?;
        }
        result
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            s.cpu.usage.total = fsio::read_u64_opt(&d.join("cpuacct.usage"))?;
            if let Some(t) = fsio::read_opt(&d.join("cpuacct.usage_percpu"))? {
                s.cpu.usage.percpu = stats::parse_list(&t);
            }
            if let Some(t) = fsio::read_opt(&d.join("cpuacct.usage_percpu_sys"))? {
                s.cpu.usage.percpu_kernel = stats::parse_list(&t);
            }
            if let Some(t) = fsio::read_opt(&d.join("cpuacct.usage_percpu_user"))? {
                s.cpu.usage.percpu_user = stats::parse_list(&t);
            }
            if let Some(t) = fsio::read_opt(&d.join("cpuacct.stat"))? {
                // USER_HZ ticks; the kernel's USER_HZ is 100 on every Linux architecture.
                let m = stats::parse_flat_keyed(&t);
                s.cpu.usage.user = m.get("user").copied().unwrap_or(0) * 10_000_000;
                s.cpu.usage.kernel = m.get("system").copied().unwrap_or(0) * 10_000_000;
            }
        }
        if let Some(d) = self.dir("cpu")
            && let Some(t) = fsio::read_opt(&d.join("cpu.stat"))?
        {
            let m = stats::parse_flat_keyed(&t);
            s.cpu.throttling.periods = m.get("nr_periods").copied().unwrap_or(0);
            s.cpu.throttling.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
            s.cpu.throttling.throttled_time = m.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some(d) = self.dir("cpuset") {
            if let Some(t) = fsio::read_opt(&d.join("cpuset.cpus"))? {
                s.cpuset.cpus = stats::parse_cpu_list(&t).unwrap_or_default();
            }
            if let Some(t) = fsio::read_opt(&d.join("cpuset.mems"))? {
                s.cpuset.mems = stats::parse_cpu_list(&t).unwrap_or_default();
            }
        }
        if let Some(d) = self.dir("memory") {
            let entry = |prefix: &str| -> Result<stats::MemoryEntry> {
                Ok(stats::MemoryEntry {
                    limit: fsio::read_u64_opt(&d.join(format!("{prefix}.limit_in_bytes")))?,
                    usage: fsio::read_u64_opt(&d.join(format!("{prefix}.usage_in_bytes")))?,
                    max: fsio::read_u64_opt(&d.join(format!("{prefix}.max_usage_in_bytes")))?,
                    failcnt: fsio::read_u64_opt(&d.join(format!("{prefix}.failcnt")))?,
                })
            };
            s.memory.usage = entry("memory")?;
            s.memory.swap = entry("memory.memsw")?;
            s.memory.kernel = entry("memory.kmem")?;
            s.memory.kernel_tcp = entry("memory.kmem.tcp")?;
            if let Some(t) = fsio::read_opt(&d.join("memory.stat"))? {
                s.memory.raw = stats::parse_flat_keyed(&t);
                s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
            }
        }
        if let Some(d) = self.dir("pids") {
            s.pids.current = fsio::read_u64_opt(&d.join("pids.current"))?;
            let max = fsio::read_u64_opt(&d.join("pids.max"))?;
            s.pids.limit = if max == u64::MAX { 0 } else { max };
        }
        if let Some(d) = self.dir("blkio") {
            // CFQ's files when present, else the throttle layer's (which counts all I/O).
            for (cfq, throttle, dst) in [
                (
                    "blkio.io_service_bytes_recursive",
                    "blkio.throttle.io_service_bytes_recursive",
                    &mut s.blkio.io_service_bytes_recursive,
                ),
                (
                    "blkio.io_serviced_recursive",
                    "blkio.throttle.io_serviced_recursive",
                    &mut s.blkio.io_serviced_recursive,
                ),
            ] {
                let text = match fsio::read_opt(&d.join(cfq))? {
                    Some(t) if !t.trim().is_empty() && t.trim() != "Total 0" => Some(t),
                    _ => fsio::read_opt(&d.join(throttle))?,
                };
                *dst = text.map(|t| stats::parse_blkio_v1(&t)).unwrap_or_default();
            }
        }
        if let Some(d) = self.dir("hugetlb") {
            for size in stats::host_hugepage_sizes() {
                let f = |k: &str| d.join(format!("hugetlb.{size}.{k}"));
                if !f("limit_in_bytes").exists() {
                    continue;
                }
                let h = stats::Hugetlb {
                    usage: fsio::read_u64_opt(&f("usage_in_bytes"))?,
                    max: fsio::read_u64_opt(&f("max_usage_in_bytes"))?,
                    failcnt: fsio::read_u64_opt(&f("failcnt"))?,
                };
                s.hugetlb.insert(size, h);
            }
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        let dir = self.need("memory", "memory")?;
        let path = dir.join("memory.oom_control");
        let m = stats::parse_flat_keyed(&fsio::read(&path)?);
        Ok(m.get("oom_kill").copied().unwrap_or(0))
    }

    fn destroy(&self) -> Result<()> {
        if let Some(rest) = self.take_spare_rest() {
            rest.discard();
        }
        if self.set_aside.load(Ordering::Relaxed) {
            return self
                .twin_only(|m, r| fsio::remove_cgroup(&m.join(r)))
                .map(drop);
        }
        let mut first_err = None;
        for dir in self.unique().into_keys() {
            if let Err(e) = fsio::remove_cgroup(&dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn take_spare(&self, tag: &str) -> bool {
        let cpu = self.dir("cpu");
        let rest = spare::take(&self.v1_dirs(), tag, &|d| Some(d) != cpu.as_deref());
        let taken = rest.is_some();
        *self.spare_rest.lock().unwrap_or_else(|e| e.into_inner()) = rest;
        self.taken.store(taken, Ordering::Relaxed);
        taken
    }

    fn set_aside(&self, tag: &str) -> bool {
        let oom_kills = if self.dirs.contains_key("memory") {
            match self.oom_kill_count() {
                Ok(n) => n,
                Err(_) => return false,
            }
        } else {
            0
        };
        let resets = spare::RESETS
            .iter()
            .filter_map(|(controller, file, value)| {
                self.dir(controller).map(|d| (d.join(file), *value))
            })
            .collect();
        let procs = self.procs_dir();
        let freezer = self.dir("freezer");
        let aside = spare::Aside {
            procs: procs.as_deref(),
            oom_kills,
            freezer: freezer.as_deref(),
            resets,
        };
        let set_aside = spare::set_aside(&self.v1_dirs(), tag, &aside);
        self.set_aside.store(set_aside, Ordering::Relaxed);
        set_aside
    }

    fn remove_spares_below(&self) -> Result<usize> {
        spare::remove_below(&self.v1_dirs())
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        // The cgroup2 twin of a hybrid host stays internal: callers read a "" key as "this is
        // a v2 cgroup" (e.g. when mounting cgroupfs into the container).
        self.dirs
            .iter()
            .filter(|(c, _)| !c.is_empty())
            .map(|(c, (m, r))| (c.clone(), m.join(r)))
            .collect()
    }
}
