//! `linux.sysctl`: only sysctls that belong to a namespace the container has its own copy of
//! are accepted (runc's rules); anything else would change the host.

use std::collections::HashMap;

use berth_oci::sysctl::{SysctlNamespace, namespace_of};

use crate::error::{Error, Result};

/// Which namespaces the container has its own copy of (new, or joined by path).
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnNamespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

/// Validates the sysctls and returns (path below /proc/sys, value), sorted by name.
pub fn plan_sysctls(
    sysctls: &HashMap<String, String>,
    ns: OwnNamespaces,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = sysctls.keys().collect();
    names.sort();
    for raw in names {
        let value = &sysctls[raw];
        let field = format!("linux.sysctl.{raw}");
        // Accept both `net.ipv4.ip_forward` and `net/ipv4/ip_forward`.
        let name = raw.replace('/', ".");
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if name.is_empty()
            || !valid_chars
            || name.split('.').any(|c| c.is_empty())
            || name.starts_with('.')
        {
            return Err(Error::spec(field, "is not a valid sysctl name"));
        }
        if value.contains('\n') {
            return Err(Error::spec(field, "value must not contain a newline"));
        }
        let allowed = match namespace_of(&name) {
            Some(SysctlNamespace::Ipc) => {
                if !ns.ipc {
                    return Err(Error::spec(
                        field,
                        "is not allowed in the host's IPC namespace (add an ipc namespace)",
                    ));
                }
                true
            }
            Some(SysctlNamespace::Net) => {
                if !ns.net {
                    return Err(Error::spec(
                        field,
                        "is not allowed in the host's network namespace (add a network namespace)",
                    ));
                }
                true
            }
            Some(SysctlNamespace::Uts) if name == "kernel.domainname" && ns.uts => true,
            Some(SysctlNamespace::Uts) if ns.uts => {
                return Err(Error::spec(
                    field,
                    "conflicts with the OCI \"hostname\" field; set that instead",
                ));
            }
            _ => false,
        };
        if !allowed {
            return Err(Error::spec(
                field,
                "is not in a separate kernel namespace, so setting it would change the host; \
                 only ipc (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*), net.* and \
                 kernel.domainname sysctls are allowed",
            ));
        }
        out.push((name.replace('.', "/"), value.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ALL: OwnNamespaces = OwnNamespaces {
        ipc: true,
        net: true,
        uts: true,
    };

    #[test]
    fn namespaced_sysctls_are_planned() {
        let p = plan_sysctls(
            &map(&[
                ("net.ipv4.ip_forward", "1"),
                ("kernel/shmmax", "4096"),
                ("fs.mqueue.msg_max", "5"),
                ("kernel.domainname", "example"),
            ]),
            ALL,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("fs/mqueue/msg_max".to_string(), "5".to_string()),
                ("kernel/domainname".into(), "example".into()),
                ("kernel/shmmax".into(), "4096".into()),
                ("net/ipv4/ip_forward".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn host_sysctls_are_refused_with_the_field() {
        for (k, ns, needle) in [
            ("vm.swappiness", ALL, "not in a separate kernel namespace"),
            ("kernel.hostname", ALL, "hostname"),
            (
                "net.ipv4.ip_forward",
                OwnNamespaces::default(),
                "network namespace",
            ),
            ("kernel.sem", OwnNamespaces::default(), "IPC namespace"),
            ("net/../../etc", ALL, "not a valid sysctl name"),
            ("net..x", ALL, "not a valid sysctl name"),
        ] {
            let e = plan_sysctls(&map(&[(k, "1")]), ns).unwrap_err().to_string();
            assert!(e.contains(&format!("linux.sysctl.{k}")), "{e}");
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
    }
}
