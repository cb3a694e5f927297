//! Which cgroup hierarchies this host has and where, found once.
//!
//! [`Hierarchy::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup` a single time;
//! every manager made from it reuses the result, so nothing on the container start path parses
//! mount tables again. A host is [`CgroupVersion::V1`] as soon as any v1 controller is mounted,
//! even when a cgroup2 filesystem is mounted too (the "hybrid" layout, cgroup2 at
//! `/sys/fs/cgroup/unified`); it is `V2` when `cgroup2` is the only cgroup filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::path::CgroupPath;
use crate::{CgroupManager, v1, v2};

/// The cgroup interface generation of a hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CgroupVersion {
    /// One hierarchy per controller (group), `devices.allow`, `freezer.state`, ...
    V1,
    /// The unified hierarchy: one tree, `cgroup.*` core files, eBPF device filters.
    V2,
}

/// v1 controllers Berth knows how to drive (others that are mounted are still created and
/// joined, so the container is fully inside its cgroup).
pub(crate) const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// One mounted v1 hierarchy as seen by a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct V1Mount {
    /// Where the hierarchy is mounted (e.g. `/sys/fs/cgroup/memory`).
    pub mountpoint: PathBuf,
    /// The cgroup this process is in, relative to `mountpoint` (for relative cgroups paths);
    /// empty when it is the mount's root or unknown.
    pub own: String,
}

#[derive(Debug)]
pub(crate) enum Layout {
    V1 {
        /// controller → its mount (co-mounted controllers share one mount point).
        mounts: BTreeMap<String, V1Mount>,
        /// The cgroup2 mount of a hybrid host, if any.
        unified: Option<V1Mount>,
    },
    V2 {
        root: PathBuf,
        /// Our own cgroup relative to `root`.
        own: String,
    },
}

/// The host's cgroup hierarchies. Cheap to clone; detect once per process.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    pub(crate) layout: Arc<Layout>,
}

impl Hierarchy {
    /// The host's layout, detected on first use and shared by the whole process afterwards
    /// (a failed detection is not cached).
    pub fn host() -> Result<Hierarchy> {
        static HOST: std::sync::OnceLock<Hierarchy> = std::sync::OnceLock::new();
        if let Some(h) = HOST.get() {
            return Ok(h.clone());
        }
        let h = Hierarchy::detect()?;
        Ok(HOST.get_or_init(|| h).clone())
    }

    /// Detects the host's layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Hierarchy> {
        // One sized buffer each (mountinfo of a busy host runs to tens of KiB).
        let read = |p: &str, size| {
            crate::fsio::read_sized(std::path::Path::new(p), size)
                .map_err(|e| Error::io("read", p, e))
        };
        let mountinfo = read("/proc/self/mountinfo", 32 * 1024)?;
        let own = read("/proc/self/cgroup", 4096)?;
        Hierarchy::from_proc(&mountinfo, &own)
    }

    /// Detection from the text of `/proc/self/mountinfo` and `/proc/self/cgroup` (pure).
    pub(crate) fn from_proc(mountinfo: &str, proc_cgroup: &str) -> Result<Hierarchy> {
        let own = parse_proc_cgroup(proc_cgroup);
        let mut mounts: BTreeMap<String, V1Mount> = BTreeMap::new();
        let mut unified: Option<(PathBuf, String)> = None;
        for line in mountinfo.lines() {
            let Some(m) = parse_mountinfo_line(line) else {
                continue;
            };
            match m.fstype {
                "cgroup" => {
                    for ctrl in m.super_opts.split(',') {
                        // Named hierarchies (name=systemd) are joined too, as runc does, so
                        // the container is inside its cgroup everywhere.
                        let known = V1_CONTROLLERS.contains(&ctrl) || ctrl.starts_with("name=");
                        if !known || mounts.contains_key(ctrl) {
                            continue;
                        }
                        let own_path = own.get(ctrl).map(String::as_str).unwrap_or("/");
                        mounts.insert(
                            ctrl.to_string(),
                            V1Mount {
                                mountpoint: m.mountpoint.clone(),
                                own: below_mount_root(own_path, &m.root),
                            },
                        );
                    }
                }
                "cgroup2" if unified.is_none() => {
                    let own_path = own.get("").map(String::as_str).unwrap_or("/");
                    unified = Some((m.mountpoint.clone(), below_mount_root(own_path, &m.root)));
                }
                _ => {}
            }
        }
        let layout = if !mounts.is_empty() {
            Layout::V1 {
                mounts,
                unified: unified.map(|(mountpoint, own)| V1Mount { mountpoint, own }),
            }
        } else if let Some((root, own)) = unified {
            Layout::V2 { root, own }
        } else {
            return Err(Error::NoHierarchy(
                "/proc/self/mountinfo lists no cgroup or cgroup2 filesystem".into(),
            ));
        };
        Ok(Hierarchy {
            layout: Arc::new(layout),
        })
    }

    /// An explicit v1 layout: controller → mount point (tests use fake trees). Relative
    /// cgroups paths resolve below each mount point.
    pub fn v1_at(controllers: BTreeMap<String, PathBuf>) -> Hierarchy {
        let mounts = controllers
            .into_iter()
            .map(|(c, mountpoint)| {
                (
                    c,
                    V1Mount {
                        mountpoint,
                        own: String::new(),
                    },
                )
            })
            .collect();
        Hierarchy {
            layout: Arc::new(Layout::V1 {
                mounts,
                unified: None,
            }),
        }
    }

    /// An explicit v2 layout rooted at `root` (a cgroup2 mount, or a fake tree in a temp dir).
    /// Relative cgroups paths resolve below `root`.
    pub fn v2_at(root: impl Into<PathBuf>) -> Hierarchy {
        Hierarchy {
            layout: Arc::new(Layout::V2 {
                root: root.into(),
                own: String::new(),
            }),
        }
    }

    /// The host's cgroup version (hybrid hosts are V1).
    pub fn version(&self) -> CgroupVersion {
        match *self.layout {
            Layout::V1 { .. } => CgroupVersion::V1,
            Layout::V2 { .. } => CgroupVersion::V2,
        }
    }

    /// The cgroup2 mount of a hybrid v1 host (`/sys/fs/cgroup/unified`), if any.
    pub fn unified_mount(&self) -> Option<&Path> {
        match &*self.layout {
            Layout::V1 { unified, .. } => unified.as_ref().map(|m| m.mountpoint.as_path()),
            Layout::V2 { root, .. } => Some(root),
        }
    }

    /// The mounted v1 hierarchies (controllers and named ones like `name=systemd`) and their
    /// mount points (empty on v2).
    pub fn v1_controllers(&self) -> BTreeMap<String, PathBuf> {
        match &*self.layout {
            Layout::V1 { mounts, .. } => mounts
                .iter()
                .map(|(c, m)| (c.clone(), m.mountpoint.clone()))
                .collect(),
            Layout::V2 { .. } => BTreeMap::new(),
        }
    }

    /// A manager for the cgroup at `path`. Nothing is created until
    /// [`CgroupManager::create`].
    pub fn manager(&self, path: &CgroupPath) -> Result<Box<dyn CgroupManager>> {
        match &*self.layout {
            Layout::V1 { mounts, unified } => {
                let mut dirs = BTreeMap::new();
                for (ctrl, m) in mounts {
                    dirs.insert(ctrl.clone(), (m.mountpoint.clone(), resolve(m, path)));
                }
                // Hybrid hosts: the cgroup2 tree too (key ""), as runc does; it gives
                // cgroup.kill and cgroup.events to v1 containers.
                if let Some(m) = unified {
                    dirs.insert(String::new(), (m.mountpoint.clone(), resolve(m, path)));
                }
                Ok(Box::new(v1::V1Manager::new(dirs)))
            }
            Layout::V2 { root, own } => {
                let base = if path.is_absolute() || own.is_empty() {
                    String::new()
                } else {
                    own.clone()
                };
                let rel = join_rel(&base, &path.relative());
                Ok(Box::new(v2::V2Manager::new(root.clone(), rel)))
            }
        }
    }
}

/// The directory of `path` in the v1 hierarchy `m`, relative to its mount point.
fn resolve(m: &V1Mount, path: &CgroupPath) -> String {
    if path.is_absolute() {
        path.relative()
    } else {
        join_rel(&m.own, &path.relative())
    }
}

fn join_rel(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{rel}"),
    }
}

/// `own` (a path from /proc/self/cgroup) relative to a mount whose root is `mount_root`,
/// without leading slash. Outside the mount root (another cgroup namespace): the mount root.
fn below_mount_root(own: &str, mount_root: &str) -> String {
    let own = own.trim_end_matches(" (deleted)");
    let rel = if mount_root == "/" {
        Some(own)
    } else {
        own.strip_prefix(mount_root)
            .filter(|r| r.is_empty() || r.starts_with('/'))
    };
    rel.unwrap_or("")
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect::<Vec<_>>()
        .join("/")
}

/// `/proc/self/cgroup`: controller → path; the v2 entry (`0::/path`) is under key "".
fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), path.to_string());
        } else {
            for c in ctrls.split(',') {
                out.insert(c.to_string(), path.to_string());
            }
        }
    }
    out
}

struct MountLine<'a> {
    root: String,
    mountpoint: PathBuf,
    fstype: &'a str,
    super_opts: &'a str,
}

/// One `/proc/self/mountinfo` line: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE
/// SOURCE SUPEROPTS`.
fn parse_mountinfo_line(line: &str) -> Option<MountLine<'_>> {
    let (pre, post) = line.split_once(" - ")?;
    let pre: Vec<&str> = pre.split(' ').collect();
    let mut post = post.split(' ');
    let fstype = post.next()?;
    let _source = post.next()?;
    let super_opts = post.next().unwrap_or("");
    Some(MountLine {
        root: unescape(pre.get(3)?),
        mountpoint: PathBuf::from(unescape(pre.get(4)?)),
        fstype,
        super_opts,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|o| {
            o.iter()
                .try_fold(0u32, |v, c| {
                    (b'0'..=b'7')
                        .contains(c)
                        .then(|| v * 8 + u32::from(c - b'0'))
                })
                .and_then(|v| u8::try_from(v).ok())
        });
        if let (b'\\', Some(v)) = (b[i], octal) {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // This machine's layout: v1 controllers each on their own mount, cgroup2 at unified, the
    // memory cgroup of the process nested.
    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:9 - cgroup cgroup rw,net_cls,net_prio
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/94c6
1:cpu:/
2:cpuacct:/
5:devices:/
7:net_cls,net_prio:/
0::/
";

    #[test]
    fn hybrid_host_is_v1_with_unified_noted() {
        let h = Hierarchy::from_proc(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(h.version(), CgroupVersion::V1);
        assert_eq!(h.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
        let c = h.v1_controllers();
        assert_eq!(
            c.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "cpu",
                "cpuacct",
                "devices",
                "memory",
                "name=systemd",
                "net_cls",
                "net_prio"
            ]
        );
        assert_eq!(c["net_prio"], Path::new("/sys/fs/cgroup/net_cls,net_prio"));
    }

    #[test]
    fn relative_paths_go_below_our_own_cgroup_absolute_below_the_root() {
        let h = Hierarchy::from_proc(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        let rel = h.manager(&CgroupPath::parse("x/y").unwrap()).unwrap();
        let p = rel.paths();
        assert_eq!(
            p["memory"],
            Path::new("/sys/fs/cgroup/memory/process_api/94c6/x/y")
        );
        assert_eq!(p["cpu"], Path::new("/sys/fs/cgroup/cpu/x/y"));
        assert!(!p.contains_key(""), "the cgroup2 twin is internal");
        assert_eq!(p["name=systemd"], Path::new("/sys/fs/cgroup/systemd/x/y"));
        let abs = h.manager(&CgroupPath::parse("/x/y").unwrap()).unwrap();
        assert_eq!(
            abs.paths()["memory"],
            Path::new("/sys/fs/cgroup/memory/x/y")
        );
    }

    #[test]
    fn pure_v2_host() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchy::from_proc(mi, "0::/user.slice/session-1.scope\n").unwrap();
        assert_eq!(h.version(), CgroupVersion::V2);
        let m = h.manager(&CgroupPath::parse("c1").unwrap()).unwrap();
        assert_eq!(
            m.paths()[""],
            Path::new("/sys/fs/cgroup/user.slice/session-1.scope/c1")
        );
        let m = h.manager(&CgroupPath::parse("/berth/c1").unwrap()).unwrap();
        assert_eq!(m.paths()[""], Path::new("/sys/fs/cgroup/berth/c1"));
    }

    #[test]
    fn mount_root_of_a_namespaced_mount_is_stripped() {
        let mi = "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let h = Hierarchy::from_proc(mi, "0::/docker/abc/sub\n").unwrap();
        let m = h.manager(&CgroupPath::parse("c").unwrap()).unwrap();
        assert_eq!(m.paths()[""], Path::new("/sys/fs/cgroup/sub/c"));
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        let e = Hierarchy::from_proc("1 0 0:1 / / rw - ext4 /dev/vda rw\n", "").unwrap_err();
        assert!(e.to_string().contains("no cgroup hierarchy"), "{e}");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b\134c"), "/a b\\c");
        assert_eq!(unescape(r"/x\04"), r"/x\04");
        assert_eq!(unescape(r"/x\777"), r"/x\777", "out of range stays literal");
    }

    #[test]
    fn detects_this_host() {
        let h = Hierarchy::detect().unwrap();
        assert_eq!(Hierarchy::host().unwrap().version(), h.version());
        assert!(Arc::ptr_eq(
            &Hierarchy::host().unwrap().layout,
            &Hierarchy::host().unwrap().layout
        ));
        // Whatever the host, detection yields a usable layout with at least one mount.
        match h.version() {
            CgroupVersion::V1 => assert!(!h.v1_controllers().is_empty()),
            CgroupVersion::V2 => assert!(h.unified_mount().is_some()),
        }
    }
}
