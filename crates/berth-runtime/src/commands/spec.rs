//! `spec [--bundle DIR] [--rootless]`: write a default config.json (runc's defaults).

use anyhow::Context;
use serde_json::json;
use std::path::PathBuf;

use crate::cli::{Command, Flag, Matches, flag, opt};

const FLAGS: &[Flag] = &[
    opt(
        "bundle",
        Some('b'),
        "DIR",
        "where to write config.json (default .)",
    ),
    flag("rootless", None, "a spec for rootless containers"),
    flag(
        "docker-seccomp",
        None,
        "include Docker's default seccomp profile for the spec's capabilities (Berth extension)",
    ),
];

pub const COMMAND: Command = Command {
    name: "spec",
    alias: None,
    args: "",
    about: "Write a default config.json",
    flags: FLAGS,
};

pub fn default_spec(rootless: bool) -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": berth_container::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                                     {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]);
        linux["resources"] = json!({});
        spec["mounts"][6] = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        spec["mounts"].as_array_mut().expect("array").truncate(6);
        spec["mounts"][5] = json!({"destination": "/sys", "type": "none", "source": "/sys",
                                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
    }
    spec
}

/// Docker's default profile resolved for the spec's bounding capabilities on this host.
pub fn docker_seccomp(spec: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    use berth_oci::seccomp_profile::{DEFAULT_PROFILE, DockerProfile, ProfileTarget};
    let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let profile = DockerProfile::parse(DEFAULT_PROFILE.as_bytes())?;
    Ok(serde_json::to_value(
        profile.to_oci(&ProfileTarget::host(&caps))?,
    )?)
}

pub fn run(_g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(0, "spec")?;
    let path = PathBuf::from(m.value("bundle").unwrap_or(".")).join("config.json");
    if path.exists() {
        anyhow::bail!("{} exists; remove it first", path.display());
    }
    let mut spec = default_spec(m.flag("rootless"));
    if m.flag("docker-seccomp") {
        spec["linux"]["seccomp"] = docker_seccomp(&spec)?;
    }
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse() {
        for rootless in [false, true] {
            let mut spec = default_spec(rootless);
            spec["linux"]["seccomp"] = docker_seccomp(&spec).unwrap();
            let bytes = serde_json::to_vec(&spec).unwrap();
            let parsed = berth_container::parse_spec(&bytes).unwrap();
            let seccomp = parsed.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
            assert!(seccomp.syscalls().as_ref().unwrap().len() > 10);
        }
    }
}
