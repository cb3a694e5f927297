//! `linux.cgroupsPath` → a validated cgroup path.
//!
//! Rules (runc's cgroupfs driver, plus a default):
//! - absolute (`/a/b`): below the root of every hierarchy (the mount point);
//! - relative (`a/b`): below the cgroup the calling process is in, per hierarchy (on this kind
//!   of host the memory cgroup of a process is often nested, e.g. `/process_api/<hash>`);
//! - absent or empty: `/berth/<container id>`, so all Berth containers sit in one subtree that
//!   `systemd-cgls`/`ls` show together and nothing ends up at the root;
//! - `slice:prefix:name` (systemd's form): refused, the systemd driver is not supported.
//!
//! `.` and empty components are dropped (`/a//b/.` is `/a/b`); `..`, NUL, newlines and
//! components longer than 255 bytes are refused, so a path can never leave the hierarchy.

use std::fmt;

use crate::error::{Error, Result};

/// The default parent of containers whose spec names no cgroups path.
pub const DEFAULT_PARENT: &str = "/berth";

/// A validated cgroup path: normalized, no `..`, never the root itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CgroupPath {
    /// The normalized components.
    components: Vec<String>,
    /// Absolute paths hang below each hierarchy root; relative ones below our own cgroup.
    absolute: bool,
}

impl CgroupPath {
    /// Validates `cgroups_path` from the OCI spec, defaulting to `/berth/<container_id>`.
    pub fn from_oci(cgroups_path: Option<&str>, container_id: &str) -> Result<CgroupPath> {
        match cgroups_path {
            Some(p) if !p.is_empty() => {
                if looks_like_systemd(p) {
                    return Err(Error::SystemdUnsupported(p.to_string()));
                }
                CgroupPath::parse(p)
            }
            _ => {
                if container_id.is_empty()
                    || container_id == "."
                    || container_id == ".."
                    || container_id.contains('/')
                {
                    return Err(Error::InvalidPath {
                        path: format!("{DEFAULT_PARENT}/{container_id}"),
                        reason: "the container id must be a non-empty name without '/' or '..'"
                            .into(),
                    });
                }
                CgroupPath::parse(&format!("{DEFAULT_PARENT}/{container_id}"))
            }
        }
    }

    /// Validates and normalizes a cgroupfs path (absolute or relative).
    pub fn parse(path: &str) -> Result<CgroupPath> {
        let bad = |reason: &str| Error::InvalidPath {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        if path.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if path.contains('\n') {
            return Err(bad("contains a newline"));
        }
        let mut components = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    return Err(bad(
                        "contains '..'; a cgroups path must stay inside the hierarchy",
                    ));
                }
                c if c.len() > 255 => return Err(bad("has a component longer than 255 bytes")),
                c => components.push(c.to_string()),
            }
        }
        if components.is_empty() {
            return Err(bad(
                "names the root cgroup itself; give a sub-cgroup such as /berth/<id>",
            ));
        }
        Ok(CgroupPath {
            components,
            absolute: path.starts_with('/'),
        })
    }

    /// Whether the path hangs below each hierarchy's root (else below our own cgroup).
    pub fn is_absolute(&self) -> bool {
        self.absolute
    }

    /// The normalized components, outermost first.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The path relative to its base (root or own cgroup), e.g. `berth/abc`.
    pub fn relative(&self) -> String {
        self.components.join("/")
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.absolute {
            f.write_str("/")?;
        }
        f.write_str(&self.relative())
    }
}

/// systemd's `slice:prefix:name` (e.g. `system.slice:docker:abc`, `:berth:abc`).
fn looks_like_systemd(p: &str) -> bool {
    !p.contains('/') && p.split(':').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::errdefs::{Classify, ErrorKind};

    #[test]
    fn default_is_below_berth() {
        let p = CgroupPath::from_oci(None, "abc").unwrap();
        assert_eq!(p.to_string(), "/berth/abc");
        assert!(p.is_absolute());
        assert_eq!(CgroupPath::from_oci(Some(""), "abc").unwrap(), p);
    }

    #[test]
    fn absolute_and_relative_are_normalized() {
        let p = CgroupPath::from_oci(Some("/a//b/./c/"), "x").unwrap();
        assert_eq!(p.to_string(), "/a/b/c");
        assert_eq!(p.relative(), "a/b/c");
        let r = CgroupPath::from_oci(Some("./a/b"), "x").unwrap();
        assert!(!r.is_absolute());
        assert_eq!(r.to_string(), "a/b");
    }

    #[test]
    fn escapes_are_refused_with_the_reason() {
        for (p, why) in [
            ("/a/../b", "'..'"),
            ("../x", "'..'"),
            ("/a\0b", "NUL"),
            ("/a\nb", "newline"),
            ("/", "root cgroup"),
            ("//./", "root cgroup"),
        ] {
            let e = CgroupPath::from_oci(Some(p), "x").unwrap_err();
            assert!(e.to_string().contains(why), "{p:?}: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
        let long = format!("/{}", "a".repeat(256));
        assert!(CgroupPath::from_oci(Some(&long), "x").is_err());
        for id in ["", "..", "a/b", "."] {
            assert!(CgroupPath::from_oci(None, id).is_err(), "{id:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the input, an accepted path can only name something below its base.
        #[test]
        fn accepted_paths_never_escape(p in "[a-z./\\x00\n:]{0,24}") {
            if let Ok(c) = CgroupPath::from_oci(Some(&p), "x") {
                for comp in c.components() {
                    proptest::prop_assert!(!comp.is_empty() && comp != "." && comp != "..");
                    proptest::prop_assert!(!comp.contains(['/', '\0', '\n']));
                }
                proptest::prop_assert!(!c.components().is_empty());
            }
        }
    }

    #[test]
    fn systemd_form_is_refused_clearly() {
        for p in ["system.slice:docker:abc", ":berth:abc"] {
            let e = CgroupPath::from_oci(Some(p), "abc").unwrap_err();
            assert!(
                e.to_string()
                    .contains("systemd cgroup driver not supported"),
                "{e}"
            );
            assert_eq!(e.kind(), ErrorKind::NotImplemented);
        }
        // A colon inside a cgroupfs path is just a name.
        assert!(CgroupPath::from_oci(Some("/a:b:c/d"), "x").is_ok());
    }
}
