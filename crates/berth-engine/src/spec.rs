//! Docker's create body (merged with the image) → the container's OCI runtime spec.
//!
//! A pure function of its inputs ([`SpecInput`]): nothing here touches the host, so the rules
//! are unit- and golden-tested without root. What it encodes (moby's `oci/defaults.go` and
//! `daemon/oci_linux.go`):
//!
//! - default security: the 14 default capabilities (bounding = effective = permitted, nothing
//!   inheritable or ambient), Docker's seccomp profile resolved for those capabilities (the
//!   caller converts and caches it; see [`SeccompSetting`]), masked and read-only `/proc` and
//!   `/sys` paths, no host devices and a deny-all device cgroup (the runtime adds the standard
//!   `/dev/null`, `/dev/zero`, … rules);
//! - `Privileged`: every capability the kernel has, no seccomp, no masked or read-only paths,
//!   every host device (listed by the caller in [`HostInfo::devices`]), all devices allowed,
//!   read-write sysfs and cgroupfs;
//! - default mounts `/proc`, `/dev`, `/dev/pts`, `/dev/shm` (`ShmSize`, default 64 MiB),
//!   `/dev/mqueue`, `/sys`, `/sys/fs/cgroup`, then `/etc/resolv.conf`, `/etc/hostname`,
//!   `/etc/hosts` bound from the container directory (unless the user mounts over them), then
//!   `Binds`, `Mounts` and `Tmpfs`;
//! - `HostConfig` resources → `linux.resources`, `Ulimits` → `process.rlimits` (no defaults:
//!   the container inherits the daemon's limits, like Docker, so never more than the host's
//!   hard limits), `Sysctls` (Docker's namespaced allow-list), `GroupAdd`, `OomKillDisable`,
//!   `OomScoreAdj`, `ReadonlyRootfs`, `SecurityOpt` (`seccomp=unconfined|<profile json>`,
//!   `no-new-privileges`, `apparmor=`/`label=` accepted and ignored on this host);
//! - `NetworkMode`: `none` and `default`/`bridge` get a private network namespace (only
//!   loopback until Berth has networking), `host` shares the host's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use berth_api::models::{ContainerConfig, HostConfig, MountTypeEnum};
use serde_json::{Value, json};

use crate::error::{EngineError, Result};

/// Docker's 14 default capabilities and every capability by number: the one table in
/// `berth_oci::caps`.
pub use berth_oci::caps::{ALL as ALL_CAPS, DOCKER_DEFAULT as DEFAULT_CAPS};

/// Docker's masked and read-only paths for unprivileged containers: the one table in
/// `berth_oci::paths`.
pub use berth_oci::paths::{DOCKER_MASKED as MASKED_PATHS, DOCKER_READONLY as READONLY_PATHS};

/// Docker's default `/dev/shm` size (64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Docker's default CFS period when `NanoCpus` is given.
const CFS_PERIOD: i64 = 100_000;

/// Facts about the host the spec depends on, gathered once by the caller.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    /// Highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub cap_last_cap: u32,
    /// The daemon's own bounding set (`CapBnd`): a privileged container gets every
    /// capability the kernel has *and* berthd may grant (in a restricted sandbox, fewer).
    pub bounding: u64,
    /// Online CPUs (for `NanoCpus` validation).
    pub ncpu: u32,
    /// The host's hostname (for `NetworkMode: host`).
    pub hostname: String,
    /// Host devices given to privileged containers: (path, type `c`/`b`, major, minor,
    /// mode, uid, gid).
    pub devices: Vec<HostDevice>,
}

/// One device node of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path: String,
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Which seccomp profile a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompSetting {
    /// Docker's default profile (`berth_oci::seccomp_profile::DEFAULT_PROFILE`).
    Default,
    /// `seccomp=unconfined`, or privileged.
    Unconfined,
    /// `seccomp=<profile JSON>` (the docker CLI inlines the file's content).
    Custom(String),
}

/// Parsed `SecurityOpt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOptions {
    pub seccomp: SeccompSetting,
    pub no_new_privileges: bool,
}

/// Parses `SecurityOpt` entries with moby's rules and messages.
pub fn security_options(opts: &[String], privileged: bool) -> Result<SecurityOptions> {
    let mut seccomp = SeccompSetting::Default;
    let mut no_new_privileges = false;
    for opt in opts {
        if opt == "no-new-privileges" {
            no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let split = if opt.contains('=') {
            opt.split_once('=')
        } else {
            opt.split_once(':')
        };
        let Some((k, v)) = split else {
            return Err(EngineError::invalid(format!(
                "invalid --security-opt 1: {opt:?}"
            )));
        };
        match k {
            "label" | "apparmor" => {}
            "seccomp" => {
                seccomp = match v {
                    "unconfined" => SeccompSetting::Unconfined,
                    "" | "builtin" => SeccompSetting::Default,
                    json => SeccompSetting::Custom(json.to_string()),
                }
            }
            "no-new-privileges" => {
                no_new_privileges = match v {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => {
                        return Err(EngineError::invalid(format!(
                            "invalid --security-opt 2: {opt:?}"
                        )));
                    }
                }
            }
            _ => {
                return Err(EngineError::invalid(format!(
                    "invalid --security-opt 2: {opt:?}"
                )));
            }
        }
    }
    if privileged && seccomp == SeccompSetting::Default {
        seccomp = SeccompSetting::Unconfined;
    }
    Ok(SecurityOptions {
        seccomp,
        no_new_privileges,
    })
}

fn normalize_cap(c: &str) -> Result<String> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if !ALL_CAPS.contains(&name.as_str()) {
        return Err(EngineError::invalid(format!(
            "unknown capability: {name:?}"
        )));
    }
    Ok(name)
}

/// The container's capability set: Docker's `TweakCapabilities` (defaults, then drops, then
/// adds; `ALL` on either side; privileged gets every capability the kernel has).
pub fn capabilities(host: &HostConfig, info: &HostInfo) -> Result<Vec<String>> {
    let adds = host
        .cap_add
        .iter()
        .flatten()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>>>()?;
    let drops = host
        .cap_drop
        .iter()
        .flatten()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<String> = ALL_CAPS
        .iter()
        .enumerate()
        .take(info.cap_last_cap as usize + 1)
        .filter(|(i, _)| info.bounding & (1u64 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect();
    if host.privileged.unwrap_or(false) || adds.iter().any(|c| c == "ALL") {
        return Ok(all);
    }
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    for a in adds {
        if !caps.contains(&a) && all.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

/// Everything the spec is made from.
pub struct SpecInput<'a> {
    pub id: &'a str,
    /// The merged config (the image's defaults under the request's), as inspect shows it.
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// Resolved command line, environment, cwd and user (berth-image's rules).
    pub process: &'a berth_image::spec::ProcessSpec,
    /// `GroupAdd` resolved to numeric IDs through the image's `/etc/group`.
    pub group_add: &'a [u32],
    /// The container's directory on the host (holds `hosts`, `hostname`, `resolv.conf`).
    pub container_dir: &'a Path,
    /// `<parent>/<id>` becomes `linux.cgroupsPath` (cgroupfs driver).
    pub cgroup_parent: &'a str,
    /// The daemon's `--default-pids-limit` (0 = none).
    pub default_pids_limit: i64,
    pub info: &'a HostInfo,
}

/// The container's hostname: `Config.Hostname`, the host's with `NetworkMode: host`, else
/// the first 12 characters of the ID.
pub fn hostname(id: &str, config: &ContainerConfig, host: &HostConfig, info: &HostInfo) -> String {
    match config.hostname.as_deref() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ if network_mode(host) == NetworkMode::Host => info.hostname.clone(),
        _ => id.chars().take(12).collect(),
    }
}

/// The network modes this version supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// A private network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// What Docker calls `bridge` (and `default`): for now a private namespace with only
    /// loopback, like `none`; the create response carries a warning.
    Bridge,
}

pub fn network_mode(host: &HostConfig) -> NetworkMode {
    match host.network_mode.as_deref() {
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        _ => NetworkMode::Bridge,
    }
}

/// Validates the parts of `HostConfig` that do not depend on the image, with Docker's
/// messages. Returns the warnings Docker would give.
pub fn validate_host_config(host: &HostConfig, info: &HostInfo) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let inv = |m: String| EngineError::invalid(m);
    // Restart policy (messages from moby's runconfig / container validation).
    if let Some(rp) = &host.restart_policy {
        use berth_api::models::RestartPolicyNameEnum as R;
        let name = rp.name.unwrap_or(R::EMPTY);
        let count = rp.maximum_retry_count.unwrap_or(0);
        if count < 0 {
            return Err(inv(
                "invalid restart policy: maximum retry count cannot be negative".into(),
            ));
        }
        if count != 0 && name != R::ON_FAILURE {
            return Err(inv(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            ));
        }
        if host.auto_remove.unwrap_or(false) && !matches!(name, R::EMPTY | R::NO) {
            return Err(inv(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
    }
    match host.network_mode.as_deref() {
        None | Some("" | "default" | "bridge" | "none" | "host") => {}
        Some(other) if other.starts_with("container:") => {
            return Err(EngineError::NotImplemented(format!(
                "network mode {other:?} is not supported yet: use none, host or bridge"
            )));
        }
        Some(other) => {
            return Err(EngineError::NoSuchNetwork(other.to_string()));
        }
    }
    let memory = host.memory.unwrap_or(0);
    if memory < 0 {
        return Err(inv("invalid memory limit: it cannot be negative".into()));
    }
    if memory > 0 && memory < 6 << 20 {
        return Err(inv("Minimum memory limit allowed is 6MB".into()));
    }
    let swap = host.memory_swap.unwrap_or(0);
    if swap > 0 && memory == 0 {
        return Err(inv(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if swap > 0 && swap < memory {
        return Err(inv(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    let reservation = host.memory_reservation.unwrap_or(0);
    if reservation > 0 && reservation < 6 << 20 {
        return Err(inv("Minimum memory reservation allowed is 6MB".into()));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(inv(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ));
    }
    if let Some(sw) = host.memory_swappiness
        && sw != -1
        && !(0..=100).contains(&sw)
    {
        return Err(inv(format!(
            "Invalid value: {sw}, valid memory swappiness range is 0-100"
        )));
    }
    let nano = host.nano_cpus.unwrap_or(0);
    if nano != 0 {
        if host.cpu_quota.unwrap_or(0) > 0 {
            return Err(inv(
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into(),
            ));
        }
        if host.cpu_period.unwrap_or(0) > 0 {
            return Err(inv(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        if nano < 0 || nano > info.ncpu as i64 * 1_000_000_000 {
            return Err(inv(format!(
                "Range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                info.ncpu, info.ncpu
            )));
        }
    }
    if let Some(p) = host.cpu_period
        && p != 0
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(inv(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ));
    }
    if let Some(q) = host.cpu_quota
        && q > 0
        && q < 1000
    {
        return Err(inv(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into()
        ));
    }
    if host.cpu_shares.unwrap_or(0) < 0 {
        return Err(inv("invalid CPU shares: it cannot be negative".into()));
    }
    if let Some(c) = host.cpuset_cpus.as_deref()
        && !c.is_empty()
    {
        let cpus =
            parse_cpuset(c).ok_or_else(|| inv(format!("Invalid value {c} for cpuset cpus")))?;
        if let Some(bad) = cpus.iter().find(|n| **n >= info.ncpu) {
            let _ = bad;
            return Err(inv(format!(
                "Requested CPUs are not available - requested {c}, available: 0-{}",
                info.ncpu.saturating_sub(1)
            )));
        }
    }
    if let Some(m) = host.cpuset_mems.as_deref()
        && !m.is_empty()
        && parse_cpuset(m).is_none()
    {
        return Err(inv(format!("Invalid value {m} for cpuset mems")));
    }
    if host.shm_size.unwrap_or(0) < 0 {
        return Err(inv("SHM size can not be less than 0".into()));
    }
    if let Some(adj) = host.oom_score_adj
        && !(-1000..=1000).contains(&adj)
    {
        return Err(inv(format!(
            "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
        )));
    }
    if host.oom_kill_disable.unwrap_or(false) && memory == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_string());
    }
    if let Some(ulimits) = &host.ulimits {
        for u in ulimits {
            rlimit(u)?;
        }
    }
    if let Some(s) = &host.sysctls {
        for k in s.keys() {
            check_sysctl(k, network_mode(host))?;
        }
    }
    if let Some(d) = &host.devices
        && !d.is_empty()
    {
        return Err(EngineError::NotImplemented(
            "--device is not supported yet: use --privileged for host devices".into(),
        ));
    }
    if let Some(l) = &host.log_config
        && let Some(t) = l.typ.as_deref()
        && !matches!(t, "" | "json-file")
    {
        return Err(inv(format!(
            "logging driver {t:?} is not supported: berth writes json-file logs"
        )));
    }
    for (what, mode) in [
        ("pid", host.pid_mode.as_deref()),
        ("ipc", host.ipc_mode.as_deref()),
        ("uts", host.uts_mode.as_deref()),
    ] {
        match mode {
            None | Some("" | "host" | "private" | "shareable") => {}
            Some(other) => {
                return Err(EngineError::NotImplemented(format!(
                    "{what} mode {other:?} is not supported: use host or private"
                )));
            }
        }
    }
    if let Some(u) = host.userns_mode.as_deref()
        && !u.is_empty()
        && u != "host"
    {
        return Err(EngineError::NotImplemented(format!(
            "userns mode {u:?} is not supported"
        )));
    }
    let sec = security_options(
        host.security_opt.as_deref().unwrap_or(&[]),
        host.privileged.unwrap_or(false),
    )?;
    if let SeccompSetting::Custom(json) = &sec.seccomp {
        berth_oci::seccomp_profile::DockerProfile::parse(json.as_bytes())
            .map_err(|e| EngineError::invalid(format!("Decoding seccomp profile failed: {e}")))?;
    }
    capabilities(host, info)?;
    if network_mode(host) == NetworkMode::Bridge {
        warnings.push(BRIDGE_WARNING.to_string());
    }
    Ok(warnings)
}

/// The create-response warning for the default network until Berth has networking.
pub const BRIDGE_WARNING: &str = "berth has no bridge networking yet: the container gets a private network namespace with only loopback (like --network none); use --network host for the host's network";

/// `0-3,5` → [0,1,2,3,5]; None when malformed.
pub fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().ok()?;
                let b: u32 = b.parse().ok()?;
                if a > b || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Docker's namespaced sysctls (the ones a container may set).
fn check_sysctl(key: &str, net: NetworkMode) -> Result<()> {
    use berth_oci::sysctl::{SysctlNamespace, namespace_of};
    match namespace_of(key) {
        Some(SysctlNamespace::Net) if net == NetworkMode::Host => Err(EngineError::invalid(
            format!("sysctl {key:?} not allowed in host network namespace"),
        )),
        Some(_) => Ok(()),
        None => Err(EngineError::invalid(format!(
            "sysctl {key:?} is not in a separate kernel namespace"
        ))),
    }
}

const RLIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn rlimit(u: &berth_api::models::ResourcesUlimits) -> Result<Value> {
    let name = u.name.clone().unwrap_or_default();
    if !RLIMITS.contains(&name.as_str()) {
        return Err(EngineError::invalid(format!("invalid ulimit type: {name}")));
    }
    let soft = u.soft.unwrap_or(0);
    let hard = u.hard.unwrap_or(0);
    if soft > hard && hard >= 0 {
        return Err(EngineError::invalid(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )));
    }
    // -1 means unlimited (RLIM_INFINITY), as u64.
    let as_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    Ok(json!({
        "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
        "hard": as_u64(hard),
        "soft": as_u64(soft),
    }))
}

/// One mount of the spec with where it came from (for inspect's `Mounts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserMount {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub rw: bool,
    /// Bind propagation (`rprivate` by default).
    pub propagation: String,
    /// `-v` options as given (`ro`, `z`, …), for inspect's `Mode`.
    pub mode: String,
    /// Whether a missing bind source may be created (`-v` does, `--mount` does not).
    pub create_source: bool,
    pub options: Vec<String>,
}

fn check_dest(kind: &str, dest: &str) -> Result<()> {
    if dest.is_empty() {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type {kind:?}: field Target must not be empty"
        )));
    }
    if !dest.starts_with('/') {
        return Err(EngineError::invalid(format!(
            "invalid mount config for type {kind:?}: invalid mount path: '{dest}' mount path must be absolute"
        )));
    }
    if dest == "/" {
        return Err(EngineError::invalid(format!(
            "invalid specification: destination can't be '/' in '{dest}'"
        )));
    }
    Ok(())
}

fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `Binds`, `Mounts` and `Tmpfs` → the user's mounts, validated with Docker's messages.
pub fn user_mounts(host: &HostConfig) -> Result<Vec<UserMount>> {
    let mut out: Vec<UserMount> = Vec::new();
    for b in host.binds.iter().flatten() {
        let parts: Vec<&str> = b.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [src, dst] => (*src, *dst, ""),
            [src, dst, mode] => (*src, *dst, *mode),
            _ => {
                return Err(EngineError::invalid(format!(
                    "invalid volume specification: '{b}'"
                )));
            }
        };
        if src.is_empty() || dst.is_empty() {
            return Err(EngineError::invalid(format!(
                "invalid volume specification: '{b}'"
            )));
        }
        if !src.starts_with('/') {
            return Err(EngineError::NotImplemented(format!(
                "named volumes are not supported yet ({src:?} in '{b}'): bind a host path (an absolute path) instead"
            )));
        }
        check_dest("bind", dst)?;
        let mut rw = true;
        let mut propagation = "rprivate".to_string();
        for m in mode.split(',').filter(|m| !m.is_empty()) {
            match m {
                "ro" => rw = false,
                "rw" => rw = true,
                "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
                p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
                _ => {
                    return Err(EngineError::invalid(format!("invalid mode: {mode}")));
                }
            }
        }
        let mut options = vec!["rbind".to_string(), propagation.clone()];
        if !rw {
            options.push("ro".into());
        }
        out.push(UserMount {
            kind: "bind".into(),
            source: clean_path(src),
            destination: clean_path(dst),
            rw,
            propagation,
            mode: mode.to_string(),
            create_source: true,
            options,
        });
    }
    for m in host.mounts.iter().flatten() {
        let kind = m.typ.unwrap_or(MountTypeEnum::EMPTY);
        let target = m.target.clone().unwrap_or_default();
        let rw = !m.read_only.unwrap_or(false);
        match kind {
            MountTypeEnum::BIND => {
                check_dest("bind", &target)?;
                let src = m.source.clone().unwrap_or_default();
                if src.is_empty() {
                    return Err(EngineError::invalid(
                        "invalid mount config for type \"bind\": field Source must not be empty",
                    ));
                }
                if !src.starts_with('/') {
                    return Err(EngineError::invalid(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                    )));
                }
                let bo = m.bind_options.clone().unwrap_or_default();
                let propagation = bo
                    .propagation
                    .map(|p| p.to_string())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "rprivate".into());
                let bind = if bo.non_recursive.unwrap_or(false) {
                    "bind"
                } else {
                    "rbind"
                };
                let mut options = vec![bind.to_string(), propagation.clone()];
                if !rw {
                    options.push("ro".into());
                }
                out.push(UserMount {
                    kind: "bind".into(),
                    source: clean_path(&src),
                    destination: clean_path(&target),
                    rw,
                    propagation,
                    mode: String::new(),
                    create_source: bo.create_mountpoint.unwrap_or(false),
                    options,
                });
            }
            MountTypeEnum::TMPFS => {
                check_dest("tmpfs", &target)?;
                if m.source.as_deref().is_some_and(|s| !s.is_empty()) {
                    return Err(EngineError::invalid(
                        "invalid mount config for type \"tmpfs\": field Source must not be specified",
                    ));
                }
                let mut options: Vec<String> =
                    ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
                if let Some(t) = &m.tmpfs_options {
                    if let Some(size) = t.size_bytes {
                        if size < 0 {
                            return Err(EngineError::invalid(
                                "invalid mount config for type \"tmpfs\": invalid tmpfs size",
                            ));
                        }
                        if size > 0 {
                            options.push(format!("size={}k", (size + 1023) / 1024));
                        }
                    }
                    if let Some(mode) = t.mode
                        && mode != 0
                    {
                        options.push(format!("mode={:o}", mode & 0o7777));
                    }
                }
                if !rw {
                    options.push("ro".into());
                }
                out.push(UserMount {
                    kind: "tmpfs".into(),
                    source: "tmpfs".into(),
                    destination: clean_path(&target),
                    rw,
                    propagation: String::new(),
                    mode: String::new(),
                    create_source: false,
                    options,
                });
            }
            MountTypeEnum::VOLUME => {
                return Err(EngineError::NotImplemented(
                    "mounts of type \"volume\" are not supported yet: use type=bind with a host path or type=tmpfs".into(),
                ));
            }
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid mount config: mount type unknown: {:?}",
                    other.to_string()
                )));
            }
        }
    }
    let mut tmpfs: Vec<(&String, &String)> = host.tmpfs.iter().flatten().collect();
    tmpfs.sort();
    for (dst, opts) in tmpfs {
        check_dest("tmpfs", dst)?;
        let mut options: Vec<String> = ["noexec", "nosuid", "nodev"].map(String::from).to_vec();
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            // A user option overrides its default opposite (exec over noexec, ...).
            let opposite = match o {
                "exec" => Some("noexec"),
                "suid" => Some("nosuid"),
                "dev" => Some("nodev"),
                _ => None,
            };
            if let Some(op) = opposite {
                options.retain(|x| x != op);
            }
            let key = o.split('=').next().unwrap_or(o);
            if !matches!(
                key,
                "size"
                    | "mode"
                    | "uid"
                    | "gid"
                    | "nr_inodes"
                    | "nr_blocks"
                    | "exec"
                    | "noexec"
                    | "suid"
                    | "nosuid"
                    | "dev"
                    | "nodev"
                    | "ro"
                    | "rw"
                    | "tmpcopyup"
                    | "notmpcopyup"
                    | "atime"
                    | "noatime"
                    | "strictatime"
                    | "relatime"
                    | "norelatime"
                    | "nodiratime"
                    | "mpol"
            ) {
                return Err(EngineError::invalid(format!(
                    "invalid tmpfs option [{o:?}]"
                )));
            }
            if key != "tmpcopyup" && key != "notmpcopyup" {
                options.push(o.to_string());
            }
        }
        let rw = !options.iter().any(|o| o == "ro");
        out.push(UserMount {
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            destination: clean_path(dst),
            rw,
            propagation: String::new(),
            mode: opts.clone(),
            create_source: false,
            options,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(EngineError::invalid(format!(
                "Duplicate mount point: {}",
                m.destination
            )));
        }
    }
    Ok(out)
}

/// Converts a seccomp setting for a capability set into the spec's `linux.seccomp`.
pub type SeccompResolver<'a> = dyn FnMut(&SeccompSetting, &[String]) -> Result<Option<Value>> + 'a;

/// Builds the spec. `seccomp(setting, caps)` converts the profile for the container's
/// capability set (the caller caches conversions); `None` means no filter.
pub fn build(input: &SpecInput<'_>, seccomp: &mut SeccompResolver<'_>) -> Result<Value> {
    let host = input.host;
    let info = input.info;
    let privileged = host.privileged.unwrap_or(false);
    let caps = capabilities(host, info)?;
    let sec = security_options(host.security_opt.as_deref().unwrap_or(&[]), privileged)?;
    let net = network_mode(host);
    let hostname = hostname(input.id, input.config, host, info);
    let tty = input.config.tty.unwrap_or(false);

    // Environment: PATH, HOSTNAME, TERM (tty), then the merged config's (replacing).
    let mut env: Vec<String> = Vec::new();
    let mut set_env = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        if let Some(slot) = env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key.as_str()))
        {
            *slot = kv;
        } else {
            env.push(kv);
        }
    };
    set_env(berth_image::spec::DEFAULT_PATH.to_string());
    set_env(format!("HOSTNAME={hostname}"));
    if tty {
        set_env("TERM=xterm".to_string());
    }
    for e in &input.process.env {
        set_env(e.clone());
    }

    let user = &input.process.user;
    let mut gids: Vec<u32> = user.additional_gids.clone();
    for g in input.group_add {
        if !gids.contains(g) {
            gids.push(*g);
        }
    }
    let mut process = json!({
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": input.process.args,
        "env": env,
        "cwd": input.process.cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": sec.no_new_privileges,
    });
    if !gids.is_empty() {
        process["user"]["additionalGids"] = json!(gids);
    }
    if let Some(adj) = host.oom_score_adj
        && adj != 0
    {
        process["oomScoreAdj"] = json!(adj);
    }
    let rlimits = host
        .ulimits
        .iter()
        .flatten()
        .map(rlimit)
        .collect::<Result<Vec<_>>>()?;
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }

    // Mounts.
    let shm = match host.shm_size.unwrap_or(0) {
        0 => DEFAULT_SHM_SIZE,
        n => n,
    };
    let sys_opts: Vec<&str> = if privileged {
        vec!["nosuid", "noexec", "nodev", "rw"]
    } else {
        vec!["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_opts: Vec<&str> = if privileged {
        vec!["rw", "nosuid", "noexec", "nodev"]
    } else {
        vec!["ro", "nosuid", "noexec", "nodev"]
    };
    let user_mounts = user_mounts(host)?;
    let user_dests: Vec<&str> = user_mounts.iter().map(|m| m.destination.as_str()).collect();
    let mut mounts: Vec<Value> = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cgroup_opts}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    // A user mount at a default destination replaces the default.
    mounts.retain(|m| !user_dests.contains(&m["destination"].as_str().unwrap_or("")));
    let readonly_root = host.readonly_rootfs.unwrap_or(false);
    for (file, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        if user_dests.contains(&dest) {
            continue;
        }
        let mut options = vec!["rbind", "rprivate"];
        if readonly_root {
            options.push("ro");
        }
        mounts.push(json!({
            "destination": dest,
            "type": "bind",
            "source": input.container_dir.join(file),
            "options": options,
        }));
    }
    for m in &user_mounts {
        mounts.push(json!({
            "destination": m.destination,
            "type": if m.kind == "tmpfs" { "tmpfs" } else { "bind" },
            "source": m.source,
            "options": m.options,
        }));
    }

    // Namespaces.
    let mut namespaces = vec![json!({"type": "mount"})];
    if net != NetworkMode::Host {
        namespaces.push(json!({"type": "network"}));
    }
    if host.uts_mode.as_deref() != Some("host") {
        namespaces.push(json!({"type": "uts"}));
    }
    if host.pid_mode.as_deref() != Some("host") {
        namespaces.push(json!({"type": "pid"}));
    }
    if host.ipc_mode.as_deref() != Some("host") {
        namespaces.push(json!({"type": "ipc"}));
    }

    // Resources.
    let mut resources = serde_json::Map::new();
    if privileged {
        resources.insert("devices".into(), json!([{"allow": true, "access": "rwm"}]));
    } else {
        resources.insert("devices".into(), json!([{"allow": false, "access": "rwm"}]));
    }
    let mut memory = serde_json::Map::new();
    let mem = host.memory.unwrap_or(0);
    if mem > 0 {
        memory.insert("limit".into(), json!(mem));
        let swap = match host.memory_swap.unwrap_or(0) {
            0 => mem * 2,
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    } else if let Some(s) = host.memory_swap
        && s < 0
    {
        memory.insert("swap".into(), json!(-1));
    }
    if let Some(r) = host.memory_reservation
        && r > 0
    {
        memory.insert("reservation".into(), json!(r));
    }
    if let Some(s) = host.memory_swappiness
        && s >= 0
    {
        memory.insert("swappiness".into(), json!(s));
    }
    if host.oom_kill_disable.unwrap_or(false) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = host.cpu_shares
        && s > 0
    {
        cpu.insert("shares".into(), json!(s.max(2)));
    }
    let nano = host.nano_cpus.unwrap_or(0);
    if nano > 0 {
        cpu.insert("period".into(), json!(CFS_PERIOD));
        cpu.insert("quota".into(), json!(nano * CFS_PERIOD / 1_000_000_000));
    } else {
        if let Some(p) = host.cpu_period
            && p > 0
        {
            cpu.insert("period".into(), json!(p));
        }
        if let Some(q) = host.cpu_quota
            && q != 0
        {
            cpu.insert("quota".into(), json!(q));
        }
    }
    if let Some(c) = host.cpuset_cpus.as_deref()
        && !c.is_empty()
    {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = host.cpuset_mems.as_deref()
        && !m.is_empty()
    {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    let pids = match host.pids_limit {
        None | Some(0) => input.default_pids_limit,
        Some(n) => n,
    };
    if pids > 0 {
        resources.insert("pids".into(), json!({"limit": pids}));
    }

    let mut linux = json!({
        "cgroupsPath": format!("{}/{}", input.cgroup_parent.trim_end_matches('/'), input.id),
        "namespaces": namespaces,
        "resources": Value::Object(resources),
    });
    if let Some(s) = &host.sysctls
        && !s.is_empty()
    {
        let sorted: BTreeMap<&String, &String> = s.iter().collect();
        linux["sysctl"] = json!(sorted);
    }
    if privileged {
        let devices: Vec<Value> = info
            .devices
            .iter()
            .map(|d| {
                json!({
                    "path": d.path,
                    "type": d.kind.to_string(),
                    "major": d.major,
                    "minor": d.minor,
                    "fileMode": d.file_mode,
                    "uid": d.uid,
                    "gid": d.gid,
                })
            })
            .collect();
        if !devices.is_empty() {
            linux["devices"] = json!(devices);
        }
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(filter) = seccomp(&sec.seccomp, &caps)? {
        linux["seccomp"] = filter;
    }

    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": readonly_root},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(d) = input.config.domainname.as_deref()
        && !d.is_empty()
    {
        spec["domainname"] = json!(d);
    }
    Ok(spec)
}

/// The content of the container's `/etc/hosts` (Docker's, without network aliases).
pub fn hosts_file(hostname: &str, net: NetworkMode, host_hosts: Option<&str>) -> String {
    if net == NetworkMode::Host
        && let Some(h) = host_hosts
    {
        return h.to_string();
    }
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
    )
}

/// The container's `/etc/resolv.conf`: the host's, minus loopback nameservers (unreachable
/// from a private network namespace) unless the container shares the host's network;
/// Docker's fallback to public resolvers is replaced by leaving it empty, since Berth's
/// containers have no outside network yet.
pub fn resolv_conf(
    host_resolv: &str,
    net: NetworkMode,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let mut out = String::new();
    if net == NetworkMode::Host && dns.is_empty() && search.is_empty() && options.is_empty() {
        return host_resolv.to_string();
    }
    let mut servers: Vec<String> = dns.to_vec();
    let mut searches: Vec<String> = search.to_vec();
    let mut opts: Vec<String> = options.to_vec();
    for line in host_resolv.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") if dns.is_empty() => {
                if let Some(ip) = f.next()
                    && (net == NetworkMode::Host || !(ip.starts_with("127.") || ip == "::1"))
                {
                    servers.push(ip.to_string());
                }
            }
            Some("search") if search.is_empty() => searches.extend(f.map(String::from)),
            Some("options") if options.is_empty() => opts.extend(f.map(String::from)),
            _ => {}
        }
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// `HashMap` fields of the API models, sorted for stable output.
pub fn sorted<V: Clone>(m: &Option<HashMap<String, V>>) -> BTreeMap<String, V> {
    m.iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
