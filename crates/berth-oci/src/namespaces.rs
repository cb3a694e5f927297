//! Questions about a runtime spec's namespaces.

use crate::spec::runtime::{LinuxNamespaceType, Spec};

/// Whether the spec gives the container a new namespace of type `typ` (listed without a
/// `path`, or with an empty one), rather than sharing the runtime's or joining another.
pub fn creates(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == typ && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec(ns: Vec<(LinuxNamespaceType, Option<&str>)>) -> Spec {
        let ns = ns
            .into_iter()
            .map(|(t, p)| {
                let mut b = LinuxNamespaceBuilder::default().typ(t);
                if let Some(p) = p {
                    b = b.path(p);
                }
                b.build().unwrap()
            })
            .collect::<Vec<_>>();
        SpecBuilder::default()
            .linux(LinuxBuilder::default().namespaces(ns).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn a_namespace_with_a_path_is_joined_not_created() {
        use LinuxNamespaceType::{Network, Pid};
        assert!(creates(&spec(vec![(Pid, None)]), Pid));
        assert!(creates(&spec(vec![(Pid, Some(""))]), Pid));
        assert!(!creates(&spec(vec![(Pid, Some("/proc/1/ns/pid"))]), Pid));
        assert!(!creates(&spec(vec![(Network, None)]), Pid));
        assert!(!creates(&spec(vec![]), Pid));
    }
}
