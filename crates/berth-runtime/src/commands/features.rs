//! `features`: what this runtime supports (OCI runtime-spec features document).

use serde_json::json;

use crate::cli::{Command, Matches};

pub const COMMAND: Command = Command {
    name: "features",
    alias: None,
    args: "",
    about: "Print what this runtime supports (OCI features JSON)",
    flags: &[],
};

pub fn document() -> serde_json::Value {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let libseccomp = libseccomp_version();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth_container::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": berth_container::mounts::KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": berth_container::caps::all_names(),
            "cgroup": berth_cgroups::features(),
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                          "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
                          "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                          "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
                          "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION"),
            "io.github.seccomp.libseccomp.version": libseccomp,
            "io.github.berth.runtime.checkpoint.enabled": "false",
        },
    })
}

fn libseccomp_version() -> String {
    match libseccomp_ver() {
        Some((a, b, c)) => format!("{a}.{b}.{c}"),
        None => "unknown".into(),
    }
}

fn libseccomp_ver() -> Option<(u32, u32, u32)> {
    berth_container::seccomp::libseccomp_version()
}

pub fn run(_g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(0, "features")?;
    println!("{}", serde_json::to_string_pretty(&document())?);
    Ok(0)
}
