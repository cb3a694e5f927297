//! The five capability sets of a process as bit masks; names ↔ numbers come from
//! [`berth_oci::caps`], re-exported here.

use berth_oci::spec::runtime::{Capability, LinuxCapabilities};

pub use berth_oci::caps::{name, number, parse};

/// Every capability this crate knows, by number.
pub fn all_names() -> Vec<String> {
    berth_oci::caps::ALL.iter().map(|s| s.to_string()).collect()
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
