//! Capability names ↔ numbers and the five sets of a process as bit masks.

use berth_oci::spec::runtime::{Capability, LinuxCapabilities};

/// The kernel's number for a capability.
pub fn number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// `CAP_CHOWN`-style name of a capability number.
pub fn name(n: u32) -> String {
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    NAMES
        .get(n as usize)
        .map_or_else(|| format!("CAP_{n}"), |s| s.to_string())
}

/// Every capability this crate knows, by number.
pub fn all_names() -> Vec<String> {
    (0..=40).map(name).collect()
}

/// The five capability sets of a process, as masks (bit n = capability n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    /// From the spec; absent sets are empty (the OCI default: a process gets only what is
    /// listed).
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> CapSets {
        let mask = |s: &Option<std::collections::HashSet<Capability>>| -> u64 {
            s.as_ref()
                .map(|set| set.iter().fold(0u64, |m, c| m | 1u64 << number(*c)))
                .unwrap_or(0)
        };
        match c {
            None => CapSets::default(),
            Some(c) => CapSets {
                bounding: mask(c.bounding()),
                effective: mask(c.effective()),
                permitted: mask(c.permitted()),
                inheritable: mask(c.inheritable()),
                ambient: mask(c.ambient()),
            },
        }
    }

    /// Names of the capabilities in the bounding set (what seccomp profiles key on).
    pub fn bounding_names(&self) -> Vec<String> {
        (0..64)
            .filter(|b| self.bounding & (1u64 << b) != 0)
            .map(name)
            .collect()
    }
}

/// Parses `CAP_X` or `X` (case-insensitive) into a capability, for `exec --cap`.
pub fn parse(s: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_agree() {
        for n in 0..=40 {
            let c = parse(&name(n)).unwrap_or_else(|| panic!("{} does not parse", name(n)));
            assert_eq!(number(c), n);
        }
        assert_eq!(parse("net_admin").map(number), Some(12));
        assert!(parse("CAP_NOPE").is_none());
    }

    #[test]
    fn sets_from_spec() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let s = CapSets::from_spec(Some(&c));
        assert_eq!(s.bounding, 0b100001);
        assert_eq!(s.effective, 0b100000);
        assert_eq!(s.permitted, 0);
        assert_eq!(s.bounding_names(), vec!["CAP_CHOWN", "CAP_KILL"]);
    }
}
