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

pub fn run(_g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(0, "spec")?;
    let path = PathBuf::from(m.value("bundle").unwrap_or(".")).join("config.json");
    if path.exists() {
        anyhow::bail!("{} exists; remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&default_spec(m.flag("rootless")))?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse() {
        for rootless in [false, true] {
            let bytes = serde_json::to_vec(&default_spec(rootless)).unwrap();
            berth_container::parse_spec(&bytes).unwrap();
        }
    }
}
