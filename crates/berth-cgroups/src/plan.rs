//! The decision logic: OCI `linux.resources` → the cgroup files to write, per version.
//!
//! Pure functions of the resources and a [`Probe`] (which files exist, current values), so the
//! whole mapping is unit-tested without root against golden expectations. The managers only
//! execute the returned writes, in order, one `write(2)` each.
//!
//! Conventions shared with runc: a value of 0 means "not set" for limits that Docker sends as
//! 0 when unset (memory limit/reservation/swap, cpu shares/quota/period, pids limit, blkio
//! weight); -1 means unlimited.

use std::collections::BTreeSet;

use berth_oci::spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::devices::DeviceState;
use crate::error::{Error, Result};
use crate::stats::{page_size_bytes, page_size_name, parse_cpu_list, parse_value};

/// One file write: `value` into `<dir of controller>/<file>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// The controller whose directory holds the file (v2: the controller that must be enabled
    /// for the file to exist; "" for core `cgroup.*` files).
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// The `linux.resources` field this write implements, for error messages.
    pub resource: &'static str,
}

fn w(
    controller: &'static str,
    file: impl Into<String>,
    value: impl ToString,
    resource: &'static str,
) -> FileWrite {
    FileWrite {
        controller,
        file: file.into(),
        value: value.to_string(),
        resource,
    }
}

/// What the plan may ask about the target cgroup.
pub trait Probe {
    /// Whether `file` exists in `controller`'s directory of the target cgroup.
    fn has(&self, controller: &str, file: &str) -> bool;
    /// The content of `file` in `controller`'s directory, if readable.
    fn read(&self, controller: &str, file: &str) -> Option<String>;
}

/// A probe that says every file exists and knows no values: used to validate before touching
/// anything.
pub struct Permissive;

impl Probe for Permissive {
    fn has(&self, _: &str, _: &str) -> bool {
        true
    }
    fn read(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// Something the plan chose not to apply, for a warning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub resource: &'static str,
    pub reason: &'static str,
}

/// The plan: writes in order, a device program for v2, and what was ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub writes: Vec<FileWrite>,
    /// v2 only: the device rules to compile into an eBPF program.
    pub devices: Option<DeviceState>,
    pub ignored: Vec<Ignored>,
}

impl Plan {
    /// The controllers the writes need (v2: to enable along the path).
    pub fn controllers(&self) -> BTreeSet<&'static str> {
        self.writes
            .iter()
            .map(|w| w.controller)
            .filter(|c| !c.is_empty())
            .collect()
    }
}

fn limit_value(v: i64, resource: &'static str, unlimited: &'static str) -> Result<Option<String>> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some(unlimited.to_string())),
        v if v < 0 => Err(Error::invalid(
            resource,
            v,
            "must be positive, or -1 for unlimited",
        )),
        v => Ok(Some(v.to_string())),
    }
}

fn check_cpu_list(resource: &'static str, v: &str) -> Result<()> {
    if parse_cpu_list(v).is_none() {
        return Err(Error::invalid(
            resource,
            format!("{v:?}"),
            "expected a list like \"0-3,5\"",
        ));
    }
    Ok(())
}

fn check_cpu_bandwidth(period: Option<u64>, quota: Option<i64>) -> Result<()> {
    if let Some(p) = period
        && p != 0
        && !(1_000..=1_000_000).contains(&p)
    {
        return Err(Error::invalid(
            "cpu.period",
            p,
            "must be between 1000 and 1000000 microseconds",
        ));
    }
    if let Some(q) = quota
        && q > 0
        && q < 1_000
    {
        return Err(Error::invalid(
            "cpu.quota",
            q,
            "must be at least 1000 microseconds, or -1 for unlimited",
        ));
    }
    if let Some(q) = quota
        && q < -1
    {
        return Err(Error::invalid(
            "cpu.quota",
            q,
            "must be positive, or -1 for unlimited",
        ));
    }
    Ok(())
}

fn check_hugepage_size(size: &str, resource: &'static str) -> Result<String> {
    match page_size_bytes(size) {
        Some(b) if b > 0 && page_size_name(b) == size => Ok(size.to_string()),
        _ => Err(Error::invalid(
            resource,
            format!("{size:?}"),
            "page size must be written like \"2MB\" or \"1GB\"",
        )),
    }
}

fn device_pairs(
    list: &Option<Vec<LinuxThrottleDevice>>,
) -> impl Iterator<Item = &LinuxThrottleDevice> {
    list.iter().flatten()
}

fn check_dev(resource: &'static str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
        return Err(Error::invalid(
            resource,
            format!("{major}:{minor}"),
            "device numbers must be non-negative 32-bit values",
        ));
    }
    Ok(())
}

fn check_blkio_weight(resource: &'static str, w: u16) -> Result<()> {
    if !(10..=1000).contains(&w) {
        return Err(Error::invalid(resource, w, "must be between 10 and 1000"));
    }
    Ok(())
}

/// cgroup v1: one directory per controller.
pub fn plan_v1(res: &LinuxResources, probe: &dyn Probe) -> Result<Plan> {
    let mut plan = Plan::default();
    let out = &mut plan.writes;

    if let Some(cpu) = res.cpu() {
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            check_cpu_list("cpu.cpus", cpus)?;
            out.push(w("cpuset", "cpuset.cpus", cpus, "cpu.cpus"));
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            check_cpu_list("cpu.mems", mems)?;
            out.push(w("cpuset", "cpuset.mems", mems, "cpu.mems"));
        }
    }

    if let Some(rules) = res.devices() {
        let state = DeviceState::from_oci(rules)?;
        let current = probe.read("devices", "devices.list");
        for (file, line) in state.v1_writes(current.as_deref()) {
            out.push(w("devices", file, line, "devices"));
        }
    }

    if let Some(mem) = res.memory() {
        let limit = mem.limit().unwrap_or(0);
        let mut swap = mem.swap().unwrap_or(0);
        let limit_v = limit_value(limit, "memory.limit", "-1")?;
        if swap < -1 {
            return Err(Error::invalid(
                "memory.swap",
                swap,
                "must be positive, or -1 for unlimited",
            ));
        }
        if limit > 0 && swap > 0 && swap < limit {
            return Err(Error::invalid(
                "memory.swap",
                swap,
                format!("memory+swap must not be below the memory limit ({limit})"),
            ));
        }
        // Unlimited memory without a swap setting means unlimited memory+swap too, or the
        // kernel would refuse a memory limit above the memsw limit.
        if limit == -1 && swap == 0 && probe.has("memory", "memory.memsw.limit_in_bytes") {
            swap = -1;
        }
        if swap != 0 && !probe.has("memory", "memory.memsw.limit_in_bytes") {
            return Err(Error::unsupported(
                "memory.swap",
                "swap accounting is off on this host (no memory.memsw.limit_in_bytes; boot with swapaccount=1)",
            ));
        }
        let swap_v = (swap != 0).then(|| swap.to_string());
        match (limit_v, swap_v) {
            (Some(l), Some(s)) => {
                // The kernel keeps limit <= memsw at every step: raise memsw first when the
                // new memsw is above the current limit, else lower the limit first.
                let current = probe
                    .read("memory", "memory.limit_in_bytes")
                    .and_then(|v| parse_value(&v))
                    .unwrap_or(u64::MAX);
                if swap == -1 || current < swap as u64 {
                    out.push(w("memory", "memory.memsw.limit_in_bytes", s, "memory.swap"));
                    out.push(w("memory", "memory.limit_in_bytes", l, "memory.limit"));
                } else {
                    out.push(w("memory", "memory.limit_in_bytes", l, "memory.limit"));
                    out.push(w("memory", "memory.memsw.limit_in_bytes", s, "memory.swap"));
                }
            }
            (Some(l), None) => out.push(w("memory", "memory.limit_in_bytes", l, "memory.limit")),
            (None, Some(s)) => {
                out.push(w("memory", "memory.memsw.limit_in_bytes", s, "memory.swap"))
            }
            (None, None) => {}
        }
        if let Some(r) = limit_value(mem.reservation().unwrap_or(0), "memory.reservation", "-1")? {
            out.push(w(
                "memory",
                "memory.soft_limit_in_bytes",
                r,
                "memory.reservation",
            ));
        }
        if let Some(k) = limit_value(mem.kernel().unwrap_or(0), "memory.kernel", "-1")? {
            if probe.has("memory", "memory.kmem.limit_in_bytes") {
                out.push(w(
                    "memory",
                    "memory.kmem.limit_in_bytes",
                    k,
                    "memory.kernel",
                ));
            } else {
                plan.ignored.push(Ignored {
                    resource: "memory.kernel",
                    reason: "this kernel has no kernel memory limit",
                });
            }
        }
        if let Some(k) = limit_value(mem.kernel_tcp().unwrap_or(0), "memory.kernelTCP", "-1")? {
            if probe.has("memory", "memory.kmem.tcp.limit_in_bytes") {
                out.push(w(
                    "memory",
                    "memory.kmem.tcp.limit_in_bytes",
                    k,
                    "memory.kernelTCP",
                ));
            } else {
                plan.ignored.push(Ignored {
                    resource: "memory.kernelTCP",
                    reason: "this kernel has no kernel TCP memory limit",
                });
            }
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(Error::invalid(
                    "memory.swappiness",
                    s,
                    "must be between 0 and 100",
                ));
            }
            out.push(w("memory", "memory.swappiness", s, "memory.swappiness"));
        }
        if let Some(d) = mem.disable_oom_killer() {
            out.push(w(
                "memory",
                "memory.oom_control",
                u8::from(d),
                "memory.disableOOMKiller",
            ));
        }
        if let Some(h) = mem.use_hierarchy() {
            out.push(w(
                "memory",
                "memory.use_hierarchy",
                u8::from(h),
                "memory.useHierarchy",
            ));
        }
    }

    if let Some(cpu) = res.cpu() {
        check_cpu_bandwidth(cpu.period(), cpu.quota())?;
        if let Some(s) = cpu.shares().filter(|&s| s != 0) {
            if !(2..=262_144).contains(&s) {
                return Err(Error::invalid(
                    "cpu.shares",
                    s,
                    "must be between 2 and 262144",
                ));
            }
            out.push(w("cpu", "cpu.shares", s, "cpu.shares"));
        }
        if let Some(p) = cpu.period().filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.cfs_period_us", p, "cpu.period"));
        }
        if let Some(q) = cpu.quota().filter(|&q| q != 0) {
            out.push(w("cpu", "cpu.cfs_quota_us", q, "cpu.quota"));
        }
        if let Some(b) = cpu.burst() {
            if !probe.has("cpu", "cpu.cfs_burst_us") {
                return Err(Error::unsupported(
                    "cpu.burst",
                    "this kernel has no cpu.cfs_burst_us",
                ));
            }
            out.push(w("cpu", "cpu.cfs_burst_us", b, "cpu.burst"));
        }
        if let Some(p) = cpu.realtime_period().filter(|&p| p != 0) {
            out.push(w("cpu", "cpu.rt_period_us", p, "cpu.realtimePeriod"));
        }
        if let Some(r) = cpu.realtime_runtime().filter(|&r| r != 0) {
            out.push(w("cpu", "cpu.rt_runtime_us", r, "cpu.realtimeRuntime"));
        }
        if let Some(i) = cpu.idle() {
            if !(0..=1).contains(&i) {
                return Err(Error::invalid("cpu.idle", i, "must be 0 or 1"));
            }
            if !probe.has("cpu", "cpu.idle") {
                return Err(Error::unsupported(
                    "cpu.idle",
                    "this kernel has no cpu.idle",
                ));
            }
            out.push(w("cpu", "cpu.idle", i, "cpu.idle"));
        }
    }

    if let Some(pids) = res.pids()
        && let Some(v) = limit_value(pids.limit(), "pids.limit", "max")?
    {
        out.push(w("pids", "pids.max", v, "pids.limit"));
    }

    if let Some(b) = res.block_io() {
        plan_blkio_v1(b, probe, out)?;
    }

    for h in res.hugepage_limits().iter().flatten() {
        let size = check_hugepage_size(h.page_size(), "hugepageLimits.pageSize")?;
        if h.limit() < 0 && h.limit() != -1 {
            return Err(Error::invalid(
                "hugepageLimits.limit",
                h.limit(),
                "must be positive, or -1 for unlimited",
            ));
        }
        let file = format!("hugetlb.{size}.limit_in_bytes");
        if !probe.has("hugetlb", &file) {
            return Err(Error::invalid(
                "hugepageLimits.pageSize",
                format!("{size:?}"),
                "this host has no such huge page size",
            ));
        }
        out.push(w("hugetlb", file, h.limit(), "hugepageLimits"));
    }

    if let Some(net) = res.network() {
        if let Some(c) = net.class_id() {
            out.push(w("net_cls", "net_cls.classid", c, "network.classID"));
        }
        for p in net.priorities().iter().flatten() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(Error::invalid(
                    "network.priorities.name",
                    format!("{:?}", p.name()),
                    "must be an interface name",
                ));
            }
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                "network.priorities",
            ));
        }
    }

    plan_rdma(res, out)?;

    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::unsupported(
            "unified",
            "unified (cgroup v2) settings need a cgroup v2 host; this host uses cgroup v1",
        ));
    }
    Ok(plan)
}

fn plan_blkio_v1(b: &LinuxBlockIo, probe: &dyn Probe, out: &mut Vec<FileWrite>) -> Result<()> {
    let weight_file = if probe.has("blkio", "blkio.weight") {
        Some(("blkio.weight", "blkio.weight_device"))
    } else if probe.has("blkio", "blkio.bfq.weight") {
        Some(("blkio.bfq.weight", "blkio.bfq.weight_device"))
    } else {
        None
    };
    let no_weight = || {
        Error::unsupported(
            "blockIO.weight",
            "neither blkio.weight (CFQ) nor blkio.bfq.weight (BFQ) exists on this host",
        )
    };
    if let Some(wt) = b.weight().filter(|&w| w != 0) {
        check_blkio_weight("blockIO.weight", wt)?;
        let (f, _) = weight_file.ok_or_else(no_weight)?;
        out.push(w("blkio", f, wt, "blockIO.weight"));
    }
    if let Some(lw) = b.leaf_weight().filter(|&w| w != 0) {
        check_blkio_weight("blockIO.leafWeight", lw)?;
        if !probe.has("blkio", "blkio.leaf_weight") {
            return Err(Error::unsupported(
                "blockIO.leafWeight",
                "blkio.leaf_weight (CFQ) does not exist on this host",
            ));
        }
        out.push(w("blkio", "blkio.leaf_weight", lw, "blockIO.leafWeight"));
    }
    for d in b.weight_device().iter().flatten() {
        check_dev("blockIO.weightDevice", d.major(), d.minor())?;
        if let Some(wt) = d.weight() {
            check_blkio_weight("blockIO.weightDevice.weight", wt)?;
            let (_, f) = weight_file.ok_or_else(no_weight)?;
            out.push(w(
                "blkio",
                f,
                format!("{}:{} {wt}", d.major(), d.minor()),
                "blockIO.weightDevice",
            ));
        }
        if let Some(lw) = d.leaf_weight() {
            check_blkio_weight("blockIO.weightDevice.leafWeight", lw)?;
            if !probe.has("blkio", "blkio.leaf_weight_device") {
                return Err(Error::unsupported(
                    "blockIO.weightDevice.leafWeight",
                    "blkio.leaf_weight_device (CFQ) does not exist on this host",
                ));
            }
            out.push(w(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{}:{} {lw}", d.major(), d.minor()),
                "blockIO.weightDevice",
            ));
        }
    }
    for (list, file, resource) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "blockIO.throttleWriteIOPSDevice",
        ),
    ] {
        for d in device_pairs(list) {
            check_dev(resource, d.major(), d.minor())?;
            out.push(w(
                "blkio",
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                resource,
            ));
        }
    }
    Ok(())
}

fn plan_rdma(res: &LinuxResources, out: &mut Vec<FileWrite>) -> Result<()> {
    let Some(rdma) = res.rdma() else {
        return Ok(());
    };
    let mut devs: Vec<_> = rdma.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(Error::invalid(
                "rdma",
                format!("{dev:?}"),
                "must be an RDMA device name",
            ));
        }
        let n = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
        out.push(w(
            "rdma",
            "rdma.max",
            format!(
                "{dev} hca_handle={} hca_object={}",
                n(l.hca_handles()),
                n(l.hca_objects())
            ),
            "rdma",
        ));
    }
    Ok(())
}

/// runc's conversion of cgroup v1 `cpu.shares` [2, 262144] to v2 `cpu.weight` [1, 10000]: a
/// quadratic in log2(shares) that maps 2→1, 1024→100 (both defaults) and 262144→10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// v1 blkio weight [10, 1000] → v2 `io.weight` [1, 10000] (linear, as runc).
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight) - 10) * 9999 / 990
}

/// OCI memory.swap is memory+swap; v2 `memory.swap.max` is swap alone (runc's conversion).
fn swap_v2(swap: i64, limit: i64) -> Result<i64> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if swap < -1 {
        return Err(Error::invalid(
            "memory.swap",
            swap,
            "must be positive, or -1 for unlimited",
        ));
    }
    if limit == 0 || limit == -1 {
        return Err(Error::invalid(
            "memory.swap",
            swap,
            "a swap limit needs a memory limit too",
        ));
    }
    if swap < limit {
        return Err(Error::invalid(
            "memory.swap",
            swap,
            format!("memory+swap must not be below the memory limit ({limit})"),
        ));
    }
    Ok(swap - limit)
}

/// Core files that `unified` must not be used to write: they are lifecycle, not resources.
const UNIFIED_FORBIDDEN: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.freeze",
    "cgroup.subtree_control",
];

/// cgroup v2: one directory; `controller` names what must be enabled for each file.
pub fn plan_v2(res: &LinuxResources, probe: &dyn Probe) -> Result<Plan> {
    let mut plan = Plan::default();
    let ignored = &mut plan.ignored;
    let out = &mut plan.writes;

    if let Some(cpu) = res.cpu() {
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            check_cpu_list("cpu.cpus", cpus)?;
            out.push(w("cpuset", "cpuset.cpus", cpus, "cpu.cpus"));
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            check_cpu_list("cpu.mems", mems)?;
            out.push(w("cpuset", "cpuset.mems", mems, "cpu.mems"));
        }
    }

    if let Some(mem) = res.memory() {
        let limit = mem.limit().unwrap_or(0);
        let limit_v = limit_value(limit, "memory.limit", "max")?;
        let swap = swap_v2(mem.swap().unwrap_or(0), limit)?;
        // "unlimited memory" implies unlimited swap only where swap is accounted at all.
        let implied = mem.swap().unwrap_or(0) == 0;
        let accounted = probe.has("memory", "memory.swap.max");
        if swap != 0 && (accounted || !implied) {
            if !accounted {
                return Err(Error::unsupported(
                    "memory.swap",
                    "swap accounting is off on this host (no memory.swap.max)",
                ));
            }
            let v = if swap == -1 {
                "max".to_string()
            } else {
                swap.to_string()
            };
            out.push(w("memory", "memory.swap.max", v, "memory.swap"));
        }
        if let Some(l) = limit_v {
            out.push(w("memory", "memory.max", l, "memory.limit"));
        }
        if let Some(r) = limit_value(mem.reservation().unwrap_or(0), "memory.reservation", "max")? {
            out.push(w("memory", "memory.low", r, "memory.reservation"));
        }
        if mem.kernel().is_some_and(|k| k != 0) {
            ignored.push(Ignored {
                resource: "memory.kernel",
                reason: "cgroup v2 has no separate kernel memory limit",
            });
        }
        if mem.kernel_tcp().is_some_and(|k| k != 0) {
            ignored.push(Ignored {
                resource: "memory.kernelTCP",
                reason: "cgroup v2 has no separate kernel TCP memory limit",
            });
        }
        if let Some(s) = mem.swappiness() {
            if s > 100 {
                return Err(Error::invalid(
                    "memory.swappiness",
                    s,
                    "must be between 0 and 100",
                ));
            }
            ignored.push(Ignored {
                resource: "memory.swappiness",
                reason: "cgroup v2 has no per-cgroup swappiness",
            });
        }
        if mem.disable_oom_killer() == Some(true) {
            ignored.push(Ignored {
                resource: "memory.disableOOMKiller",
                reason: "cgroup v2 cannot disable the OOM killer",
            });
        }
    }

    if let Some(cpu) = res.cpu() {
        check_cpu_bandwidth(cpu.period(), cpu.quota())?;
        if let Some(s) = cpu.shares().filter(|&s| s != 0) {
            if !(2..=262_144).contains(&s) {
                return Err(Error::invalid(
                    "cpu.shares",
                    s,
                    "must be between 2 and 262144",
                ));
            }
            out.push(w("cpu", "cpu.weight", shares_to_weight(s), "cpu.shares"));
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v = format!("{v} {period}");
            }
            out.push(w("cpu", "cpu.max", v, "cpu.quota"));
        }
        if let Some(b) = cpu.burst() {
            out.push(w("cpu", "cpu.max.burst", b, "cpu.burst"));
        }
        if cpu.realtime_period().is_some_and(|v| v != 0)
            || cpu.realtime_runtime().is_some_and(|v| v != 0)
        {
            return Err(Error::unsupported(
                "cpu.realtimeRuntime",
                "cgroup v2 has no realtime CPU bandwidth (cpu.rt_*)",
            ));
        }
        if let Some(i) = cpu.idle() {
            if !(0..=1).contains(&i) {
                return Err(Error::invalid("cpu.idle", i, "must be 0 or 1"));
            }
            out.push(w("cpu", "cpu.idle", i, "cpu.idle"));
        }
    }

    if let Some(pids) = res.pids()
        && let Some(v) = limit_value(pids.limit(), "pids.limit", "max")?
    {
        out.push(w("pids", "pids.max", v, "pids.limit"));
    }

    if let Some(b) = res.block_io() {
        let bfq = probe.has("io", "io.bfq.weight");
        if let Some(wt) = b.weight().filter(|&w| w != 0) {
            check_blkio_weight("blockIO.weight", wt)?;
            if bfq {
                out.push(w("io", "io.bfq.weight", wt, "blockIO.weight"));
            } else {
                out.push(w(
                    "io",
                    "io.weight",
                    format!("default {}", blkio_weight_to_io_weight(wt)),
                    "blockIO.weight",
                ));
            }
        }
        if b.leaf_weight().is_some_and(|w| w != 0) {
            ignored.push(Ignored {
                resource: "blockIO.leafWeight",
                reason: "cgroup v2 has no leaf weights",
            });
        }
        for d in b.weight_device().iter().flatten() {
            check_dev("blockIO.weightDevice", d.major(), d.minor())?;
            if let Some(wt) = d.weight() {
                check_blkio_weight("blockIO.weightDevice.weight", wt)?;
                let (file, v) = if bfq {
                    ("io.bfq.weight", u64::from(wt))
                } else {
                    ("io.weight", blkio_weight_to_io_weight(wt))
                };
                out.push(w(
                    "io",
                    file,
                    format!("{}:{} {v}", d.major(), d.minor()),
                    "blockIO.weightDevice",
                ));
            }
        }
        for (list, key, resource) in [
            (
                b.throttle_read_bps_device(),
                "rbps",
                "blockIO.throttleReadBpsDevice",
            ),
            (
                b.throttle_write_bps_device(),
                "wbps",
                "blockIO.throttleWriteBpsDevice",
            ),
            (
                b.throttle_read_iops_device(),
                "riops",
                "blockIO.throttleReadIOPSDevice",
            ),
            (
                b.throttle_write_iops_device(),
                "wiops",
                "blockIO.throttleWriteIOPSDevice",
            ),
        ] {
            for d in device_pairs(list) {
                check_dev(resource, d.major(), d.minor())?;
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                out.push(w(
                    "io",
                    "io.max",
                    format!("{}:{} {key}={rate}", d.major(), d.minor()),
                    resource,
                ));
            }
        }
    }

    for h in res.hugepage_limits().iter().flatten() {
        let size = check_hugepage_size(h.page_size(), "hugepageLimits.pageSize")?;
        let v = match h.limit() {
            -1 => "max".to_string(),
            l if l < 0 => {
                return Err(Error::invalid(
                    "hugepageLimits.limit",
                    l,
                    "must be positive, or -1 for unlimited",
                ));
            }
            l => l.to_string(),
        };
        let file = format!("hugetlb.{size}.max");
        if !probe.has("hugetlb", &file) {
            return Err(Error::invalid(
                "hugepageLimits.pageSize",
                format!("{size:?}"),
                "this host has no such huge page size",
            ));
        }
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if probe.has("hugetlb", &rsvd) {
            out.push(w("hugetlb", rsvd, &v, "hugepageLimits"));
        }
        out.push(w("hugetlb", file, v, "hugepageLimits"));
    }

    if let Some(net) = res.network()
        && (net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    {
        return Err(Error::unsupported(
            "network",
            "net_cls/net_prio do not exist on cgroup v2 (classify traffic with nftables \"socket cgroupv2\" instead)",
        ));
    }

    plan_rdma(res, out)?;

    if let Some(u) = res.unified() {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in keys {
            let bad_key = k.is_empty()
                || k.contains('/')
                || k.contains('\0')
                || k.starts_with('.')
                || !k.contains('.');
            if bad_key {
                return Err(Error::invalid(
                    "unified",
                    format!("{k:?}"),
                    "keys are cgroup v2 file names like \"memory.high\"",
                ));
            }
            if UNIFIED_FORBIDDEN.contains(&k.as_str()) {
                return Err(Error::invalid(
                    "unified",
                    format!("{k:?}"),
                    "this file controls the cgroup's lifecycle, not a resource",
                ));
            }
            if v.contains('\0') {
                return Err(Error::invalid(
                    format!("unified.{k}"),
                    format!("{v:?}"),
                    "contains a NUL byte",
                ));
            }
            let prefix = k.split('.').next().unwrap_or("");
            let controller = V2_CONTROLLERS.iter().copied().find(|c| *c == prefix);
            match controller {
                Some(c) => out.push(w(c, k.as_str(), v, "unified")),
                None if prefix == "cgroup" => out.push(w("", k.as_str(), v, "unified")),
                None => {
                    return Err(Error::unsupported(
                        "unified",
                        format!("{k:?} does not belong to a known cgroup v2 controller"),
                    ));
                }
            }
        }
    }

    if let Some(rules) = res.devices() {
        plan.devices = Some(DeviceState::from_oci(rules)?);
    }
    Ok(plan)
}

/// Controllers of the unified hierarchy (as listed in `cgroup.controllers`).
pub const V2_CONTROLLERS: &[&str] = &[
    "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
];

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::errdefs::{Classify, ErrorKind};
    use std::collections::BTreeMap;

    /// A target cgroup described by the files it has and their contents.
    #[derive(Default)]
    struct Fake {
        files: BTreeMap<&'static str, &'static str>,
    }

    impl Fake {
        fn with(files: &[(&'static str, &'static str)]) -> Fake {
            Fake {
                files: files.iter().copied().collect(),
            }
        }
    }

    impl Probe for Fake {
        fn has(&self, _: &str, file: &str) -> bool {
            self.files.contains_key(file)
        }
        fn read(&self, _: &str, file: &str) -> Option<String> {
            self.files.get(file).map(|s| s.to_string())
        }
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn lines(p: &Plan) -> Vec<String> {
        p.writes
            .iter()
            .map(|w| {
                if w.controller.is_empty() {
                    format!("{} = {}", w.file, w.value)
                } else {
                    format!("{}/{} = {}", w.controller, w.file, w.value)
                }
            })
            .collect()
    }

    fn v1_host() -> Fake {
        Fake::with(&[
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.kmem.limit_in_bytes", "9223372036854771712\n"),
            ("cpu.idle", "0\n"),
            ("cpu.cfs_burst_us", "0\n"),
            ("blkio.bfq.weight", "100\n"),
            ("blkio.bfq.weight_device", "default 100\n"),
            ("hugetlb.2MB.limit_in_bytes", "9223372036854771712\n"),
            ("devices.list", "a *:* rwm\n"),
        ])
    }

    const FULL: &str = r#"{
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912, "kernel": 67108864,
                   "swappiness": 10, "disableOOMKiller": true},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": 64},
        "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
    }"#;

    #[test]
    fn v1_golden() {
        let p = plan_v1(&res(FULL), &v1_host()).unwrap();
        assert_eq!(
            lines(&p),
            [
                "cpuset/cpuset.cpus = 0-1",
                "cpuset/cpuset.mems = 0",
                "devices/devices.deny = a",
                "devices/devices.allow = c 1:3 rwm",
                // limit is max now, so the lower limit goes first, then memsw
                "memory/memory.limit_in_bytes = 268435456",
                "memory/memory.memsw.limit_in_bytes = 536870912",
                "memory/memory.soft_limit_in_bytes = 134217728",
                "memory/memory.kmem.limit_in_bytes = 67108864",
                "memory/memory.swappiness = 10",
                "memory/memory.oom_control = 1",
                "cpu/cpu.shares = 512",
                "cpu/cpu.cfs_period_us = 100000",
                "cpu/cpu.cfs_quota_us = 50000",
                "cpu/cpu.idle = 1",
                "pids/pids.max = 64",
                "blkio/blkio.bfq.weight = 300",
                "blkio/blkio.bfq.weight_device = 8:0 200",
                "blkio/blkio.throttle.read_bps_device = 8:0 1048576",
                "blkio/blkio.throttle.write_iops_device = 8:0 0",
                "hugetlb/hugetlb.2MB.limit_in_bytes = 4194304",
            ]
        );
        assert!(p.ignored.is_empty());
    }

    #[test]
    fn v1_raising_memsw_above_the_current_limit_goes_first() {
        let host = Fake::with(&[
            ("memory.memsw.limit_in_bytes", "100\n"),
            ("memory.limit_in_bytes", "104857600\n"),
        ]);
        let p = plan_v1(
            &res(r#"{"memory": {"limit": 209715200, "swap": 419430400}}"#),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&p),
            [
                "memory/memory.memsw.limit_in_bytes = 419430400",
                "memory/memory.limit_in_bytes = 209715200",
            ]
        );
        // Unlimited memory takes memsw with it.
        let p = plan_v1(&res(r#"{"memory": {"limit": -1}}"#), &host).unwrap();
        assert_eq!(
            lines(&p),
            [
                "memory/memory.memsw.limit_in_bytes = -1",
                "memory/memory.limit_in_bytes = -1"
            ]
        );
    }

    #[test]
    fn v2_golden() {
        let host = Fake::with(&[("memory.swap.max", "max\n"), ("hugetlb.2MB.max", "max\n")]);
        let p = plan_v2(&res(FULL), &host).unwrap();
        assert_eq!(
            lines(&p),
            [
                "cpuset/cpuset.cpus = 0-1",
                "cpuset/cpuset.mems = 0",
                "memory/memory.swap.max = 268435456",
                "memory/memory.max = 268435456",
                "memory/memory.low = 134217728",
                "cpu/cpu.weight = 59",
                "cpu/cpu.max = 50000 100000",
                "cpu/cpu.idle = 1",
                "pids/pids.max = 64",
                "io/io.weight = default 2930",
                "io/io.weight = 8:0 1920",
                "io/io.max = 8:0 rbps=1048576",
                "io/io.max = 8:0 wiops=max",
                "hugetlb/hugetlb.2MB.max = 4194304",
            ]
        );
        let ignored: Vec<_> = p.ignored.iter().map(|i| i.resource).collect();
        assert_eq!(
            ignored,
            [
                "memory.kernel",
                "memory.swappiness",
                "memory.disableOOMKiller"
            ]
        );
        let d = p.devices.unwrap();
        assert!(!d.default_allow);
        assert_eq!(d.exceptions.len(), 1);
        assert_eq!(
            p.writes
                .iter()
                .map(|w| w.controller)
                .collect::<BTreeSet<_>>(),
            ["cpu", "cpuset", "hugetlb", "io", "memory", "pids"]
                .into_iter()
                .collect()
        );
    }

    #[test]
    fn v2_bfq_and_unified_and_limits() {
        let host = Fake::with(&[("io.bfq.weight", "default 100\n")]);
        let p = plan_v2(
            &res(r#"{"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]},
                     "cpu": {"quota": -1},
                     "pids": {"limit": -1},
                     "memory": {"limit": -1},
                     "unified": {"memory.high": "1G", "cgroup.max.depth": "3"}}"#),
            &host,
        )
        .unwrap();
        assert_eq!(
            lines(&p),
            [
                "memory/memory.max = max",
                "cpu/cpu.max = max",
                "pids/pids.max = max",
                "io/io.bfq.weight = 300",
                "io/io.bfq.weight = 8:0 200",
                "cgroup.max.depth = 3",
                "memory/memory.high = 1G",
            ]
        );
    }

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn bad_values_name_the_resource() {
        let cases: &[(&str, &str)] = &[
            (r#"{"memory": {"limit": -5}}"#, "memory.limit value -5"),
            (
                r#"{"memory": {"limit": 200, "swap": 100}}"#,
                "memory.swap value 100",
            ),
            (
                r#"{"memory": {"swappiness": 101}}"#,
                "memory.swappiness value 101",
            ),
            (r#"{"cpu": {"shares": 1}}"#, "cpu.shares value 1"),
            (r#"{"cpu": {"period": 10}}"#, "cpu.period value 10"),
            (r#"{"cpu": {"quota": 10}}"#, "cpu.quota value 10"),
            (r#"{"cpu": {"cpus": "0-x"}}"#, "cpu.cpus value \"0-x\""),
            (r#"{"cpu": {"idle": 2}}"#, "cpu.idle value 2"),
            (r#"{"blockIO": {"weight": 5}}"#, "blockIO.weight value 5"),
            (
                r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -2, "minor": 0, "rate": 1}]}}"#,
                "blockIO.throttleReadBpsDevice",
            ),
            (
                r#"{"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}"#,
                "hugepageLimits.pageSize value \"2M\"",
            ),
            (
                r#"{"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]}"#,
                "no such huge page size",
            ),
            (
                r#"{"devices": [{"allow": true, "access": "q"}]}"#,
                "devices[0].access",
            ),
        ];
        for (json, want) in cases {
            for (v, e) in [
                ("v1", plan_v1(&res(json), &v1_host()).unwrap_err()),
                (
                    "v2",
                    plan_v2(&res(json), &Fake::with(&[("hugetlb.2MB.max", "max")])).unwrap_err(),
                ),
            ] {
                assert!(e.to_string().contains(want), "{v} {json}: {e}");
                assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{v} {json}: {e}");
            }
        }
    }

    #[test]
    fn unsupported_things_say_why() {
        let v1 = |j: &str, host: &Fake| plan_v1(&res(j), host).unwrap_err().to_string();
        let v2 = |j: &str| plan_v2(&res(j), &Fake::default()).unwrap_err().to_string();
        assert!(
            v1(r#"{"unified": {"memory.high": "1"}}"#, &v1_host())
                .contains("need a cgroup v2 host")
        );
        assert!(
            v1(
                r#"{"memory": {"limit": 100, "swap": 200}}"#,
                &Fake::default()
            )
            .contains("swap accounting is off")
        );
        assert!(
            v1(r#"{"blockIO": {"weight": 100}}"#, &Fake::default()).contains("blkio.bfq.weight")
        );
        assert!(
            v2(r#"{"network": {"classID": 5}}"#)
                .contains("net_cls/net_prio do not exist on cgroup v2")
        );
        assert!(v2(r#"{"cpu": {"realtimeRuntime": 5}}"#).contains("no realtime"));
        assert!(v2(r#"{"unified": {"cgroup.procs": "1"}}"#).contains("lifecycle"));
        assert!(v2(r#"{"unified": {"../x": "1"}}"#).contains("file names"));
        assert!(v2(r#"{"unified": {"foo.bar": "1"}}"#).contains("known cgroup v2 controller"));
        assert!(v2(r#"{"memory": {"swap": 100}}"#).contains("needs a memory limit"));
    }

    #[test]
    fn network_on_v1() {
        let p = plan_v1(
            &res(r#"{"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}}"#),
            &Fake::default(),
        )
        .unwrap();
        assert_eq!(
            lines(&p),
            [
                "net_cls/net_cls.classid = 1048577",
                "net_prio/net_prio.ifpriomap = eth0 5"
            ]
        );
    }

    #[test]
    fn zero_means_unset() {
        let p = plan_v1(
            &res(r#"{"memory": {"limit": 0, "swap": 0, "reservation": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}"#),
            &Fake::default(),
        )
        .unwrap();
        assert!(p.writes.is_empty(), "{:?}", lines(&p));
    }
}
