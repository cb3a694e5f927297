//! Which sysctls belong to a kernel namespace a container can own (runc's and Docker's rule:
//! anything else is host-wide). The runtime checks the namespaces the container really has,
//! the engine and the CLI check a name before anything is created; all ask here.

/// The IPC namespace's sysctls besides `fs.mqueue.*`.
pub const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    /// `kernel.msg*`, `kernel.sem`, `kernel.shm*` ([`IPC_SYSCTLS`]) and `fs.mqueue.*`.
    Ipc,
    /// `net.*`.
    Net,
    /// `kernel.domainname` and `kernel.hostname`.
    Uts,
}

/// The namespace of a sysctl given with dots (`net.ipv4.ip_forward`), or `None` for a
/// host-wide one.
pub fn namespace_of(name: &str) -> Option<SysctlNamespace> {
    if IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.") {
        Some(SysctlNamespace::Ipc)
    } else if name.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else if name == "kernel.domainname" || name == "kernel.hostname" {
        Some(SysctlNamespace::Uts)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert_eq!(namespace_of("kernel.shmmax"), Some(SysctlNamespace::Ipc));
        assert_eq!(
            namespace_of("fs.mqueue.msg_max"),
            Some(SysctlNamespace::Ipc)
        );
        assert_eq!(
            namespace_of("net.ipv4.ip_forward"),
            Some(SysctlNamespace::Net)
        );
        assert_eq!(namespace_of("kernel.hostname"), Some(SysctlNamespace::Uts));
        assert_eq!(namespace_of("kernel.shm_next_id"), None);
        assert_eq!(namespace_of("vm.swappiness"), None);
        assert_eq!(namespace_of("fs.mqueue"), None);
    }
}
