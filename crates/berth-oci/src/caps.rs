//! Linux capabilities: the one table of names by number, and Docker's default set. The
//! runtime (masks, `exec --cap`), the engine (`--cap-add/--cap-drop`, privileged) and the
//! seccomp profile (rules keyed on capabilities) all read it from here.

use crate::spec::runtime::Capability;

/// Every capability the kernel knows, by number (Linux 5.9+: up to `CAP_CHECKPOINT_RESTORE`).
pub const ALL: [&str; 41] = [
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

/// The highest capability number in [`ALL`].
pub const LAST: u32 = ALL.len() as u32 - 1;

/// Docker's 14 default capabilities, in moby's order (`oci/caps/defaults.go`).
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `CAP_CHOWN`-style name of a capability number (`CAP_<n>` for numbers past [`LAST`]).
pub fn name(n: u32) -> String {
    ALL.get(n as usize)
        .map_or_else(|| format!("CAP_{n}"), |s| s.to_string())
}

/// The number of a `CAP_X` name (exact, upper case), if it is one of [`ALL`].
pub fn number_of_name(name: &str) -> Option<u32> {
    ALL.iter().position(|c| *c == name).map(|i| i as u32)
}

/// The kernel's number for an OCI capability.
pub fn number(c: Capability) -> u32 {
    // oci-spec's Display is the name without `CAP_`; every variant is in ALL (tested)
    let display = c.to_string();
    ALL.iter()
        .position(|n| n[4..] == display)
        .map_or(u32::MAX, |i| i as u32)
}

/// Parses `CAP_X` or `X` (any case) into an OCI capability.
pub fn parse(s: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_oci_variants_agree() {
        for n in 0..=LAST {
            let c = parse(&name(n)).unwrap_or_else(|| panic!("{} does not parse", name(n)));
            assert_eq!(number(c), n, "{}", name(n));
            assert_eq!(number_of_name(&name(n)), Some(n));
        }
        assert_eq!(parse("net_admin").map(number), Some(12));
        assert_eq!(number_of_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert!(parse("CAP_NOPE").is_none());
        assert_eq!(name(63), "CAP_63");
        for d in DOCKER_DEFAULT {
            assert!(number_of_name(d).is_some(), "{d}");
        }
    }
}
