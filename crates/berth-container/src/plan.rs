//! Validating a spec and deciding everything the new process will do (pure, no side
//! effects except reading host limits).
//!
//! The child process after `clone` only executes a [`Plan`]: every string is already a
//! `CString`, every path cleaned, every option parsed. That keeps the code between `clone`
//! and `execve` short and free of decisions, and puts every "invalid config" error before
//! anything is created on the host.

use berth_oci::spec::runtime::{
    Hook, Hooks, LinuxIdMapping, LinuxNamespaceType, LinuxSchedulerFlag, LinuxSchedulerPolicy,
    PosixRlimitType, Process, Spec,
};
use berth_sys::process::{CStrArray, SchedAttr};
use nix::mount::MsFlags;
use rustix::process::Resource;
use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::caps::CapSets;
use crate::devices::{DevicePlan, plan_devices};
use crate::error::{Error, Result};
use crate::mounts::{MountPlan, clean_container_path, plan_mounts};
use crate::sysctl::{OwnNamespaces, plan_sysctls};

/// A namespace joined by path.
#[derive(Debug, Clone)]
pub struct NsJoin {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub index: usize,
}

/// Which namespaces to create and join.
#[derive(Debug, Clone, Default)]
pub struct NsPlan {
    /// `CLONE_NEW*` flags for `clone3` (user, pid, net, ipc, uts, mount).
    pub clone_flags: u64,
    /// Create a cgroup namespace after the process was moved into its cgroup (so the
    /// namespace is rooted there).
    pub new_cgroup: bool,
    /// Create a time namespace (with these `timens_offsets` lines) before cloning.
    pub new_time: Option<String>,
    /// Namespaces joined by path, user namespace first.
    pub joins: Vec<NsJoin>,
    pub new_user: bool,
    pub uid_map: String,
    pub gid_map: String,
    /// The container has its own mount namespace (new or joined).
    pub has_mount: bool,
    /// ...and it is a new one (so the rootfs is set up).
    pub new_mount: bool,
    pub new_pid: bool,
    pub own: OwnNamespaces,
}

impl NsPlan {
    /// The joins and time namespace need a helper process (setns/unshare must not change the
    /// caller, and pid/time namespaces only apply to children), except joins of network,
    /// UTS and IPC namespaces alone: those belong to the calling thread, which joins them,
    /// clones the container's process and returns to its own (no extra fork).
    pub fn needs_intermediate(&self) -> bool {
        self.new_time.is_some() || self.joins.iter().any(|j| !thread_joinable(j.typ))
    }
}

/// A namespace a thread can join with `setns` and leave again: it applies to the calling
/// thread only and is inherited by the processes it clones.
pub fn thread_joinable(t: LinuxNamespaceType) -> bool {
    matches!(
        t,
        LinuxNamespaceType::Network | LinuxNamespaceType::Uts | LinuxNamespaceType::Ipc
    )
}

/// An overlay mounted at `root.path` inside the container's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayMount {
    /// Lowest layer last, like overlayfs' `lowerdir=top:...:bottom`.
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    /// Extra overlay options (`index=off`, `xino=off`, ...).
    pub options: Vec<String>,
}

/// What the process does after the container is set up (shared by create and exec).
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: CStrArray,
    pub env: CStrArray,
    pub arg0: String,
    pub path_env: Option<String>,
    pub has_home: bool,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub caps: CapSets,
    pub no_new_privs: bool,
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub io_priority: Option<(u32, u32)>,
    pub scheduler: Option<SchedAttr>,
}

/// Everything a new container's init does, decided before `clone`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ns: NsPlan,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub root_propagation: Option<MsFlags>,
    pub mounts: Vec<MountPlan>,
    pub setup_dev: bool,
    pub devices: Vec<DevicePlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctls: Vec<(String, String)>,
    pub personality: Option<u64>,
    pub process: ProcessPlan,
    pub hooks: Hooks,
    pub no_pivot: bool,
    pub overlay: Option<OverlayMount>,
}

fn cstring(field: impl Fn() -> String, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::spec(field(), "contains a NUL byte"))
}

/// Validates `spec` (with the bundle directory for relative paths) and plans the container.
pub fn plan(
    spec: &Spec,
    bundle: &Path,
    no_pivot: bool,
    overlay: Option<&OverlayMount>,
) -> Result<Plan> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "is required"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    if overlay.is_none() {
        match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::spec(
                    "root.path",
                    format!("{} is not a directory", rootfs.display()),
                ));
            }
            Err(e) => {
                return Err(Error::spec(
                    "root.path",
                    format!("{}: {e}", rootfs.display()),
                ));
            }
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "is required"))?;
    let linux = spec.linux().clone().unwrap_or_default();
    let ns = plan_namespaces(&linux)?;

    if !ns.has_mount {
        return Err(Error::spec(
            "linux.namespaces",
            "a mount namespace is required (add {\"type\": \"mount\"})",
        ));
    }
    if (spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_deref().is_some_and(|h| !h.is_empty()))
        && !ns.own.uts
    {
        return Err(Error::spec(
            if spec.hostname().is_some() {
                "hostname"
            } else {
                "domainname"
            },
            "needs a UTS namespace (add {\"type\": \"uts\"} to linux.namespaces)",
        ));
    }
    for (f, v) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if let Some(v) = v
            && (v.len() > 64 || v.contains('\0'))
        {
            return Err(Error::spec(f, "must be at most 64 bytes without NUL"));
        }
    }

    let mounts = plan_mounts(spec.mounts().as_deref().unwrap_or_default(), bundle)?;
    // /dev bind-mounted from somewhere: leave it alone (runc's rule).
    let setup_dev = !mounts
        .iter()
        .any(|m| m.is_bind() && m.dest == Path::new("/dev"));
    let devices = plan_devices(linux.devices().as_deref().unwrap_or_default())?;

    let clean_list = |name: &str, v: &Option<Vec<String>>| -> Result<Vec<PathBuf>> {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if !p.starts_with('/') {
                    return Err(Error::spec(
                        format!("linux.{name}[{i}]"),
                        "must be an absolute path",
                    ));
                }
                Ok(clean_container_path(Path::new(p)))
            })
            .collect()
    };
    let masked_paths = clean_list("maskedPaths", linux.masked_paths())?;
    let readonly_paths = clean_list("readonlyPaths", linux.readonly_paths())?;

    let root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => None,
        Some(p) => Some(match p {
            "shared" => MsFlags::MS_SHARED,
            "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
            "slave" => MsFlags::MS_SLAVE,
            "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "private" => MsFlags::MS_PRIVATE,
            "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "unbindable" => MsFlags::MS_UNBINDABLE,
            "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            other => {
                return Err(Error::spec(
                    "linux.rootfsPropagation",
                    format!(
                        "{other:?} is not one of shared, slave, private, unbindable (or r-prefixed)"
                    ),
                ));
            }
        }),
    };

    let sysctls = plan_sysctls(&linux.sysctl().clone().unwrap_or_default(), ns.own)?;

    let personality = match linux.personality() {
        None => None,
        Some(p) => {
            use berth_oci::spec::runtime::LinuxPersonalityDomain as D;
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(Error::spec(
                    "linux.personality.flags",
                    "personality flags are not supported",
                ));
            }
            Some(match p.domain() {
                D::PerLinux => 0x0000,
                D::PerLinux32 => 0x0008,
            })
        }
    };

    let hooks = spec.hooks().clone().unwrap_or_default();
    validate_hooks(&hooks)?;

    let process = plan_process(process, "process")?;

    if let Some(o) = overlay {
        if o.lowerdirs.is_empty() {
            return Err(Error::spec(
                "rootfs_mount.lowerdirs",
                "needs at least one layer",
            ));
        }
        if o.upperdir.is_some() != o.workdir.is_some() {
            return Err(Error::spec(
                "rootfs_mount",
                "upperdir and workdir must be given together",
            ));
        }
    }

    Ok(Plan {
        ns,
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        root_propagation,
        mounts,
        setup_dev,
        devices,
        masked_paths,
        readonly_paths,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        sysctls,
        personality,
        process,
        hooks,
        no_pivot,
        overlay: overlay.cloned(),
    })
}

fn validate_hooks(hooks: &Hooks) -> Result<()> {
    let lists: [(&str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (name, list) in lists {
        for (i, h) in list.as_deref().unwrap_or_default().iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(Error::spec(
                    format!("hooks.{name}[{i}].path"),
                    "must be an absolute path",
                ));
            }
            if let Some(t) = h.timeout()
                && t <= 0
            {
                return Err(Error::spec(
                    format!("hooks.{name}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

fn plan_namespaces(linux: &berth_oci::spec::runtime::Linux) -> Result<NsPlan> {
    use LinuxNamespaceType as T;
    let mut plan = NsPlan::default();
    let mut seen = HashSet::new();
    let mut joins = Vec::new();
    for (i, n) in linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let t = n.typ();
        if !seen.insert(t as u32) {
            return Err(Error::spec(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {t}"),
            ));
        }
        match n.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                if !p.is_absolute() {
                    return Err(Error::spec(
                        format!("linux.namespaces[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                joins.push(NsJoin {
                    typ: t,
                    path: p.clone(),
                    index: i,
                });
            }
            _ => match t {
                T::Cgroup => plan.new_cgroup = true,
                T::Time => plan.new_time = Some(String::new()),
                T::User => {
                    plan.new_user = true;
                    plan.clone_flags |= t as u64;
                }
                T::Mount => {
                    plan.new_mount = true;
                    plan.clone_flags |= t as u64;
                }
                T::Pid => {
                    plan.new_pid = true;
                    plan.clone_flags |= t as u64;
                }
                _ => plan.clone_flags |= t as u64,
            },
        }
        match t {
            T::Mount => plan.has_mount = true,
            T::Ipc => plan.own.ipc = true,
            T::Network => plan.own.net = true,
            T::Uts => plan.own.uts = true,
            _ => {}
        }
    }
    // The user namespace is joined first: it owns the others.
    joins.sort_by_key(|j| j.typ != T::User);
    plan.joins = joins;

    let maps = |name: &str, m: &Option<Vec<LinuxIdMapping>>| -> Result<String> {
        let mut s = String::new();
        for (i, e) in m.as_deref().unwrap_or_default().iter().enumerate() {
            if e.size() == 0 {
                return Err(Error::spec(
                    format!("linux.{name}[{i}].size"),
                    "must be greater than zero",
                ));
            }
            s.push_str(&format!(
                "{} {} {}\n",
                e.container_id(),
                e.host_id(),
                e.size()
            ));
        }
        Ok(s)
    };
    plan.uid_map = maps("uidMappings", linux.uid_mappings())?;
    plan.gid_map = maps("gidMappings", linux.gid_mappings())?;
    let user_ns = seen.contains(&(T::User as u32));
    if plan.new_user && (plan.uid_map.is_empty() || plan.gid_map.is_empty()) {
        return Err(Error::spec(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !plan.new_user && (!plan.uid_map.is_empty() || !plan.gid_map.is_empty()) {
        return Err(Error::spec(
            if user_ns {
                "linux.uidMappings"
            } else {
                "linux.namespaces"
            },
            "uidMappings/gidMappings need a new user namespace ({\"type\": \"user\"} without a path)",
        ));
    }

    if let Some(offsets) = linux.time_offsets() {
        let Some(lines) = plan.new_time.as_mut() else {
            return Err(Error::spec(
                "linux.timeOffsets",
                "needs a new time namespace ({\"type\": \"time\"})",
            ));
        };
        let mut clocks: Vec<_> = offsets.iter().collect();
        clocks.sort_by_key(|(k, _)| k.as_str());
        for (clock, off) in clocks {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::spec(
                    format!("linux.timeOffsets.{clock}"),
                    "only monotonic and boottime can be offset",
                ));
            }
            let nanos = off.nanosecs().unwrap_or(0);
            if nanos >= 1_000_000_000 {
                return Err(Error::spec(
                    format!("linux.timeOffsets.{clock}.nanosecs"),
                    "must be below 1000000000",
                ));
            }
            lines.push_str(&format!("{clock} {} {nanos}\n", off.secs().unwrap_or(0)));
        }
    }
    if plan.new_time.is_some() && !std::path::Path::new("/proc/self/ns/time").exists() {
        return Err(Error::NotSupported(
            "time namespaces (this kernel has none)".into(),
        ));
    }
    Ok(plan)
}

fn resource(t: PosixRlimitType) -> (Resource, &'static str) {
    use PosixRlimitType as P;
    match t {
        P::RlimitCpu => (Resource::Cpu, "RLIMIT_CPU"),
        P::RlimitFsize => (Resource::Fsize, "RLIMIT_FSIZE"),
        P::RlimitData => (Resource::Data, "RLIMIT_DATA"),
        P::RlimitStack => (Resource::Stack, "RLIMIT_STACK"),
        P::RlimitCore => (Resource::Core, "RLIMIT_CORE"),
        P::RlimitRss => (Resource::Rss, "RLIMIT_RSS"),
        P::RlimitNproc => (Resource::Nproc, "RLIMIT_NPROC"),
        P::RlimitNofile => (Resource::Nofile, "RLIMIT_NOFILE"),
        P::RlimitMemlock => (Resource::Memlock, "RLIMIT_MEMLOCK"),
        P::RlimitAs => (Resource::As, "RLIMIT_AS"),
        P::RlimitLocks => (Resource::Locks, "RLIMIT_LOCKS"),
        P::RlimitSigpending => (Resource::Sigpending, "RLIMIT_SIGPENDING"),
        P::RlimitMsgqueue => (Resource::Msgqueue, "RLIMIT_MSGQUEUE"),
        P::RlimitNice => (Resource::Nice, "RLIMIT_NICE"),
        P::RlimitRtprio => (Resource::Rtprio, "RLIMIT_RTPRIO"),
        P::RlimitRttime => (Resource::Rttime, "RLIMIT_RTTIME"),
    }
}

fn have_cap(cap: u32) -> bool {
    rustix::thread::capabilities(None)
        .map(|c| c.effective.bits() & (1u64 << cap) != 0)
        .unwrap_or(false)
}

/// Validates and plans a process (`field` is `process` for create and names the exec
/// process file otherwise).
pub fn plan_process(p: &Process, field: &str) -> Result<ProcessPlan> {
    let f = |s: &str| format!("{field}.{s}");
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::spec(f("args"), "must name the program to run"));
    }
    let args_c = args
        .iter()
        .enumerate()
        .map(|(i, a)| cstring(|| f(&format!("args[{i}]")), a))
        .collect::<Result<Vec<_>>>()?;
    let env = p.env().clone().unwrap_or_default();
    let mut path_env = None;
    let mut has_home = false;
    let env_c = env
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let Some((k, v)) = e.split_once('=') else {
                return Err(Error::spec(
                    f(&format!("env[{i}]")),
                    format!("{e:?} is not KEY=VALUE"),
                ));
            };
            if k.is_empty() {
                return Err(Error::spec(f(&format!("env[{i}]")), "empty variable name"));
            }
            if k == "PATH" {
                path_env = Some(v.to_string());
            }
            has_home |= k == "HOME";
            cstring(|| f(&format!("env[{i}]")), e)
        })
        .collect::<Result<Vec<_>>>()?;
    let cwd = p.cwd();
    if !cwd.is_absolute() {
        return Err(Error::spec(f("cwd"), "must be an absolute path"));
    }
    if cwd.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::spec(f("cwd"), "contains a NUL byte"));
    }
    let user = p.user();
    if let Some(m) = user.umask()
        && m > 0o777
    {
        return Err(Error::spec(
            f("user.umask"),
            format!("{m:o} is not a umask"),
        ));
    }

    let mut rlimits = Vec::new();
    let mut seen = HashSet::new();
    let cap_sys_resource = have_cap(24);
    for (i, r) in p
        .rlimits()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let (res, name) = resource(r.typ());
        let rf = || f(&format!("rlimits[{i}]"));
        if !seen.insert(name) {
            return Err(Error::spec(rf(), format!("duplicate {name}")));
        }
        if r.soft() > r.hard() {
            return Err(Error::spec(
                rf(),
                format!(
                    "{name} soft limit {} is above its hard limit {}",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        let host = rustix::process::getrlimit(res).maximum;
        if let Some(host_hard) = host
            && r.hard() > host_hard
            && !cap_sys_resource
        {
            return Err(Error::spec(
                rf(),
                format!(
                    "{name} hard limit {} is above the host's hard limit {host_hard}, and the \
                     runtime lacks CAP_SYS_RESOURCE to raise it; ask for at most {host_hard}",
                    r.hard()
                ),
            ));
        }
        if matches!(r.typ(), PosixRlimitType::RlimitNofile)
            && let Ok(s) = std::fs::read_to_string("/proc/sys/fs/nr_open")
            && let Ok(nr_open) = s.trim().parse::<u64>()
            && r.hard() > nr_open
        {
            return Err(Error::spec(
                rf(),
                format!(
                    "RLIMIT_NOFILE hard limit {} is above the kernel's maximum fs.nr_open = {nr_open}",
                    r.hard()
                ),
            ));
        }
        rlimits.push((res, r.soft(), r.hard()));
    }

    if let Some(adj) = p.oom_score_adj()
        && !(-1000..=1000).contains(&adj)
    {
        return Err(Error::spec(
            f("oomScoreAdj"),
            format!("{adj} is outside -1000..1000"),
        ));
    }

    let io_priority = match p.io_priority() {
        None => None,
        Some(io) => {
            use berth_oci::spec::runtime::IOPriorityClass as C;
            let class = match io.class() {
                C::IoprioClassRt => 1,
                C::IoprioClassBe => 2,
                C::IoprioClassIdle => 3,
            };
            if !(0..=7).contains(&io.priority()) {
                return Err(Error::spec(
                    f("ioPriority.priority"),
                    "must be between 0 and 7",
                ));
            }
            Some((class, io.priority() as u32))
        }
    };

    let scheduler = match p.scheduler() {
        None => None,
        Some(s) => {
            use LinuxSchedulerPolicy as P;
            let policy = match s.policy() {
                P::SchedOther => 0,
                P::SchedFifo => 1,
                P::SchedRr => 2,
                P::SchedBatch => 3,
                P::SchedIso => 4,
                P::SchedIdle => 5,
                P::SchedDeadline => 6,
            };
            let mut flags = 0u64;
            for fl in s.flags().as_deref().unwrap_or_default() {
                flags |= match fl {
                    LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                    LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                    LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                    LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                    LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                    LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                    LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
                };
            }
            Some(SchedAttr {
                sched_policy: policy,
                sched_flags: flags,
                sched_nice: s.nice().unwrap_or(0),
                sched_priority: s.priority().unwrap_or(0).max(0) as u32,
                sched_runtime: s.runtime().unwrap_or(0),
                sched_deadline: s.deadline().unwrap_or(0),
                sched_period: s.period().unwrap_or(0),
                ..Default::default()
            })
        }
    };

    let mut caps = CapSets::from_spec(p.capabilities().as_ref());
    // The kernel only raises ambient capabilities that are permitted and inheritable; like
    // runc, others are skipped (logged at debug level) rather than failing the container.
    let ambient_ok = caps.ambient & caps.permitted & caps.inheritable;
    if ambient_ok != caps.ambient {
        let dropped = caps.ambient & !ambient_ok;
        let names: Vec<String> = (0..64)
            .filter(|b| dropped & (1u64 << b) != 0)
            .map(crate::caps::name)
            .collect();
        tracing::debug!(
            "{field}.capabilities.ambient: {} not raised (an ambient capability must also be permitted and inheritable)",
            names.join(", ")
        );
        caps.ambient = ambient_ok;
    }
    Ok(ProcessPlan {
        arg0: args[0].clone(),
        args: CStrArray::new(args_c),
        env: CStrArray::new(env_c),
        path_env,
        has_home,
        cwd: cwd.clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        caps,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        rlimits,
        terminal: p.terminal().unwrap_or(false),
        console_size: p.console_size().as_ref().map(|b| {
            (
                b.height().min(u16::MAX as u64) as u16,
                b.width().min(u16::MAX as u64) as u16,
            )
        }),
        apparmor: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
        selinux: p.selinux_label().clone().filter(|s| !s.is_empty()),
        oom_score_adj: p.oom_score_adj(),
        io_priority,
        scheduler,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"ociVersion":"1.0.2","root":{"path":"/"},
        "process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]},
        "linux":{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"uts"}]}}"#;

    fn with(patch: serde_json::Value) -> Spec {
        let mut v: serde_json::Value = serde_json::from_str(BASE).unwrap();
        merge(&mut v, patch);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn err(s: &Spec) -> String {
        plan(s, Path::new("/b"), false, None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn base_plan() {
        let p = plan(&spec(BASE), Path::new("/b"), false, None).unwrap();
        assert_eq!(
            p.ns.clone_flags,
            (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS) as u64
        );
        assert!(p.ns.new_mount && p.ns.new_pid && p.ns.own.uts && !p.ns.own.net);
        assert!(!p.ns.needs_intermediate());
        assert_eq!(p.process.path_env.as_deref(), Some("/bin"));
        assert_eq!(p.process.umask, 0o022);
        assert!(p.setup_dev);
    }

    #[test]
    fn namespace_rules() {
        let e = err(&with(
            serde_json::json!({"linux":{"namespaces":[{"type":"pid"}]}}),
        ));
        assert!(e.contains("mount namespace is required"), "{e}");
        let e = err(&with(
            serde_json::json!({"linux":{"namespaces":[{"type":"mount"},{"type":"mount"}]}}),
        ));
        assert!(e.contains("linux.namespaces[1].type"), "{e}");
        let e = err(&with(
            serde_json::json!({"linux":{"namespaces":[{"type":"mount"},{"type":"user"}]}}),
        ));
        assert!(e.contains("uidMappings"), "{e}");
        let e = err(&with(
            serde_json::json!({"hostname":"x","linux":{"namespaces":[{"type":"mount"}]}}),
        ));
        assert!(e.contains("hostname") && e.contains("UTS"), "{e}");
        let e = err(&with(
            serde_json::json!({"linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"rel"}]}}),
        ));
        assert!(e.contains("linux.namespaces[1].path"), "{e}");
        let p = plan(
            &with(serde_json::json!({"linux":{"namespaces":[{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"},
                {"type":"user"}], "uidMappings":[{"containerID":0,"hostID":1000,"size":10}],
                "gidMappings":[{"containerID":0,"hostID":1000,"size":10}]}})),
            Path::new("/b"),
            false,
            None,
        )
        .unwrap();
        // Only a network namespace joined (the user namespace is new): no helper.
        assert!(!p.ns.needs_intermediate());
        assert_eq!(p.ns.uid_map, "0 1000 10\n");
        assert!(p.ns.new_user);
        // Network, UTS and IPC joins alone are made by the calling thread, no helper.
        let p = plan(
            &with(serde_json::json!({"linux":{"namespaces":[{"type":"mount"},
                {"type":"network","path":"/proc/1/ns/net"},{"type":"ipc","path":"/proc/1/ns/ipc"}]}})),
            Path::new("/b"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(p.ns.joins.len(), 2);
        assert!(!p.ns.needs_intermediate());
        let p = plan(
            &with(serde_json::json!({"linux":{"namespaces":[{"type":"mount"},
                {"type":"network","path":"/proc/1/ns/net"},{"type":"pid","path":"/proc/1/ns/pid"}]}})),
            Path::new("/b"),
            false,
            None,
        )
        .unwrap();
        assert!(p.ns.needs_intermediate());
    }

    #[test]
    fn process_rules() {
        let e = err(&with(serde_json::json!({"process":{"args":[]}})));
        assert!(e.contains("process.args"), "{e}");
        let e = err(&with(serde_json::json!({"process":{"cwd":"rel"}})));
        assert!(e.contains("process.cwd"), "{e}");
        let e = err(&with(serde_json::json!({"process":{"env":["NOEQUALS"]}})));
        assert!(e.contains("process.env[0]"), "{e}");
        let e = err(&with(
            serde_json::json!({"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":5}]}}),
        ));
        assert!(
            e.contains("process.rlimits[0]") && e.contains("soft"),
            "{e}"
        );
        let e = err(&with(serde_json::json!({"process":{"oomScoreAdj":5000}})));
        assert!(e.contains("process.oomScoreAdj"), "{e}");
        let e = err(&with(
            serde_json::json!({"hooks":{"poststop":[{"path":"rel"}]}}),
        ));
        assert!(e.contains("hooks.poststop[0].path"), "{e}");
        let e = err(&with(
            serde_json::json!({"linux":{"rootfsPropagation":"weird"}}),
        ));
        assert!(e.contains("linux.rootfsPropagation"), "{e}");
        let e = err(&with(serde_json::json!({"linux":{"maskedPaths":["rel"]}})));
        assert!(e.contains("linux.maskedPaths[0]"), "{e}");
        let e = err(&with(
            serde_json::json!({"root":{"path":"/nonexistent-berth"}}),
        ));
        assert!(e.contains("root.path"), "{e}");
    }

    #[test]
    fn rlimit_above_host_hard_limit_is_refused_without_cap_sys_resource() {
        let host = rustix::process::getrlimit(Resource::Nofile)
            .maximum
            .unwrap_or(u64::MAX);
        if host == u64::MAX || have_cap(24) {
            eprintln!("skipped: RLIMIT_NOFILE is unlimited or we hold CAP_SYS_RESOURCE");
            return;
        }
        let e = err(&with(serde_json::json!({"process":{"rlimits":[
            {"type":"RLIMIT_NOFILE","soft":1024,"hard": host + 1}]}})));
        assert!(e.contains("above the host's hard limit"), "{e}");
    }

    #[test]
    fn time_offsets_need_a_time_namespace() {
        let e = err(&with(
            serde_json::json!({"linux":{"timeOffsets":{"monotonic":{"secs":5}}}}),
        ));
        assert!(e.contains("linux.timeOffsets"), "{e}");
        let p = plan(
            &with(
                serde_json::json!({"linux":{"namespaces":[{"type":"mount"},{"type":"time"}],
                "timeOffsets":{"monotonic":{"secs":5},"boottime":{"secs":7,"nanosecs":3}}}}),
            ),
            Path::new("/b"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(
            p.ns.new_time.as_deref(),
            Some("boottime 7 3\nmonotonic 5 0\n")
        );
    }
}
