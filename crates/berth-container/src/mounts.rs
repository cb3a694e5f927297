//! What to mount: OCI `mounts` entries → [`MountPlan`]s (a pure function, unit-tested).
//!
//! Options follow runc's table: flags (`ro`, `nosuid`, `noatime`, ...), their negations,
//! propagation (`rprivate`, `slave`, ...), recursive attributes applied with
//! `mount_setattr(AT_RECURSIVE)` (`rro`, `rnosuid`, ...), `bind`/`rbind`, and everything else
//! passed to the filesystem as data (`size=64m,mode=755`).

use berth_oci::spec::runtime::Mount;
use berth_sys::mount as attr;
use nix::mount::MsFlags as Ms;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// What kind of mount an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (absolute; relative sources are resolved against the
    /// bundle).
    Bind { source: PathBuf, recursive: bool },
    /// A filesystem mount (`proc`, `tmpfs`, `sysfs`, `overlay`, ...).
    Fs { fstype: String, source: String },
    /// `cgroup`/`cgroup2`: the container's own cgroups, like runc.
    Cgroup,
}

/// One mount to perform, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Index in the spec's `mounts` (for error messages).
    pub index: usize,
    /// Absolute, lexically clean destination inside the container.
    pub dest: PathBuf,
    pub kind: MountKind,
    /// mount(2) flags for filesystem mounts (also the source of the attributes of binds).
    pub flags: Ms,
    /// Flags explicitly cleared (`rw`, `suid`, ...), relevant for binds.
    pub cleared: Ms,
    /// `mount_setattr` attributes applied to the whole tree (`rro`, `rnosuid`, ...).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Propagation changes, applied in order after the mount (`MS_SLAVE | MS_REC`, ...).
    pub propagation: Vec<Ms>,
    /// Filesystem data (`size=65536k,mode=755`).
    pub data: String,
    /// runc's `tmpcopyup`: copy what was under the tmpfs into it.
    pub tmpcopyup: bool,
}

impl MountPlan {
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
    }

    /// `mount_setattr` attributes for the top mount of a bind (from `ro`, `nosuid`, ...).
    pub fn bind_attrs(&self) -> (u64, u64) {
        let mut set = 0;
        let mut clr = 0;
        for (flag, a) in [
            (Ms::MS_RDONLY, attr::MOUNT_ATTR_RDONLY),
            (Ms::MS_NOSUID, attr::MOUNT_ATTR_NOSUID),
            (Ms::MS_NODEV, attr::MOUNT_ATTR_NODEV),
            (Ms::MS_NOEXEC, attr::MOUNT_ATTR_NOEXEC),
            (Ms::MS_NODIRATIME, attr::MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, attr::MOUNT_ATTR_NOSYMFOLLOW),
        ] {
            if self.flags.contains(flag) {
                set |= a;
            } else if self.cleared.contains(flag) {
                clr |= a;
            }
        }
        // Access-time modes are one field: setting one means clearing the field first.
        let atime = if self.flags.contains(Ms::MS_NOATIME) {
            Some(attr::MOUNT_ATTR_NOATIME)
        } else if self.flags.contains(Ms::MS_STRICTATIME) {
            Some(attr::MOUNT_ATTR_STRICTATIME)
        } else if self.flags.contains(Ms::MS_RELATIME) {
            Some(attr::MOUNT_ATTR_RELATIME)
        } else {
            None
        };
        if let Some(a) = atime {
            set |= a;
            clr |= attr::MOUNT_ATTR__ATIME;
        }
        (set, clr)
    }
}

/// Every mount option name this runtime understands (for `features`); anything else is
/// passed to the filesystem as data.
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
pub const MS_NOSYMFOLLOW: Ms = Ms::from_bits_retain(256);

enum Opt {
    Set(Ms),
    Clear(Ms),
    Propagation(Ms),
    RecSet(u64),
    RecClr(u64),
    /// Set one access-time mode recursively (clearing the field first).
    RecAtime(u64),
    Bind {
        recursive: bool,
    },
    TmpCopyUp,
    Ignore,
    IdMap,
}

fn option(o: &str) -> Option<Opt> {
    use Opt::*;
    Some(match o {
        "defaults" | "async" | "loud" | "nomand" | "noiversion" | "nolazytime" => Ignore,
        "ro" => Set(Ms::MS_RDONLY),
        "rw" => Clear(Ms::MS_RDONLY),
        "nosuid" => Set(Ms::MS_NOSUID),
        "suid" => Clear(Ms::MS_NOSUID),
        "nodev" => Set(Ms::MS_NODEV),
        "dev" => Clear(Ms::MS_NODEV),
        "noexec" => Set(Ms::MS_NOEXEC),
        "exec" => Clear(Ms::MS_NOEXEC),
        "sync" => Set(Ms::MS_SYNCHRONOUS),
        "dirsync" => Set(Ms::MS_DIRSYNC),
        "mand" => Set(Ms::MS_MANDLOCK),
        "remount" => Set(Ms::MS_REMOUNT),
        "noatime" => Set(Ms::MS_NOATIME),
        "atime" => Clear(Ms::MS_NOATIME),
        "nodiratime" => Set(Ms::MS_NODIRATIME),
        "diratime" => Clear(Ms::MS_NODIRATIME),
        "relatime" => Set(Ms::MS_RELATIME),
        "norelatime" => Clear(Ms::MS_RELATIME),
        "strictatime" => Set(Ms::MS_STRICTATIME),
        "nostrictatime" => Clear(Ms::MS_STRICTATIME),
        "lazytime" => Set(Ms::MS_LAZYTIME),
        "silent" => Set(Ms::MS_SILENT),
        "iversion" => Set(Ms::MS_I_VERSION),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "bind" => Bind { recursive: false },
        "rbind" => Bind { recursive: true },
        "private" => Propagation(Ms::MS_PRIVATE),
        "rprivate" => Propagation(Ms::MS_PRIVATE.union(Ms::MS_REC)),
        "shared" => Propagation(Ms::MS_SHARED),
        "rshared" => Propagation(Ms::MS_SHARED.union(Ms::MS_REC)),
        "slave" => Propagation(Ms::MS_SLAVE),
        "rslave" => Propagation(Ms::MS_SLAVE.union(Ms::MS_REC)),
        "unbindable" => Propagation(Ms::MS_UNBINDABLE),
        "runbindable" => Propagation(Ms::MS_UNBINDABLE.union(Ms::MS_REC)),
        "rro" => RecSet(attr::MOUNT_ATTR_RDONLY),
        "rrw" => RecClr(attr::MOUNT_ATTR_RDONLY),
        "rnosuid" => RecSet(attr::MOUNT_ATTR_NOSUID),
        "rsuid" => RecClr(attr::MOUNT_ATTR_NOSUID),
        "rnodev" => RecSet(attr::MOUNT_ATTR_NODEV),
        "rdev" => RecClr(attr::MOUNT_ATTR_NODEV),
        "rnoexec" => RecSet(attr::MOUNT_ATTR_NOEXEC),
        "rexec" => RecClr(attr::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecSet(attr::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecClr(attr::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => RecSet(attr::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecClr(attr::MOUNT_ATTR_NOSYMFOLLOW),
        "rrelatime" => RecAtime(attr::MOUNT_ATTR_RELATIME),
        "rnoatime" => RecAtime(attr::MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecAtime(attr::MOUNT_ATTR_STRICTATIME),
        "ratime" | "rnorelatime" | "rnostrictatime" => RecClr(0),
        "tmpcopyup" => TmpCopyUp,
        "idmap" | "ridmap" => IdMap,
        _ => return None,
    })
}

/// Lexically cleans an absolute container path: drops `.` and empty components and resolves
/// `..` without going above `/` (symlinks are resolved later, inside the rootfs).
pub fn clean_container_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Plans the spec's `mounts`, in order. `bundle` resolves relative bind sources.
pub fn plan_mounts(mounts: &[Mount], bundle: &Path) -> Result<Vec<MountPlan>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| plan_mount(i, m, bundle))
        .collect()
}

fn plan_mount(index: usize, m: &Mount, bundle: &Path) -> Result<MountPlan> {
    let field = |f: &str| format!("mounts[{index}]{f}");
    let dest_raw = m.destination();
    if dest_raw.as_os_str().is_empty() {
        return Err(Error::spec(field(".destination"), "must not be empty"));
    }
    if dest_raw.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::spec(field(".destination"), "contains a NUL byte"));
    }
    let dest = clean_container_path(dest_raw);
    if dest == Path::new("/") {
        return Err(Error::spec(
            field(".destination"),
            "cannot mount over the container's root (use root.path)",
        ));
    }
    let mut flags = Ms::empty();
    let mut cleared = Ms::empty();
    let mut rec_set = 0;
    let mut rec_clr = 0;
    let mut propagation = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    let mut bind: Option<bool> = None;
    let mut tmpcopyup = false;
    for o in m.options().as_deref().unwrap_or_default() {
        match option(o) {
            Some(Opt::Set(f)) => {
                // The access-time modes exclude each other; the last one wins.
                if f.intersects(Ms::MS_NOATIME | Ms::MS_STRICTATIME | Ms::MS_RELATIME) {
                    flags.remove(Ms::MS_NOATIME | Ms::MS_STRICTATIME | Ms::MS_RELATIME);
                }
                flags |= f;
                cleared.remove(f);
            }
            Some(Opt::Clear(f)) => {
                flags.remove(f);
                cleared |= f;
            }
            Some(Opt::Propagation(p)) => propagation.push(p),
            Some(Opt::RecSet(a)) => {
                rec_set |= a;
                rec_clr &= !a;
            }
            Some(Opt::RecClr(a)) => {
                rec_clr |= a;
                rec_set &= !a;
            }
            Some(Opt::RecAtime(a)) => {
                rec_set = (rec_set & !attr::MOUNT_ATTR__ATIME) | a;
                rec_clr |= attr::MOUNT_ATTR__ATIME;
            }
            Some(Opt::Bind { recursive }) => bind = Some(bind.unwrap_or(false) || recursive),
            Some(Opt::TmpCopyUp) => tmpcopyup = true,
            Some(Opt::Ignore) => {}
            Some(Opt::IdMap) => {
                return Err(Error::spec(
                    field(".options"),
                    format!("{o:?} (id-mapped mounts) is not supported yet"),
                ));
            }
            None => data.push(o),
        }
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "bind" && bind.is_none() {
        bind = Some(false);
    }
    let source = m.source().as_ref().map(|s| s.as_path());
    let kind = if let Some(recursive) = bind {
        let src = source
            .ok_or_else(|| Error::spec(field(".source"), "a bind mount needs a source path"))?;
        let src = if src.is_absolute() {
            src.to_path_buf()
        } else {
            bundle.join(src)
        };
        MountKind::Bind {
            source: src,
            recursive,
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        MountKind::Cgroup
    } else {
        if typ.is_empty() {
            return Err(Error::spec(
                field(".type"),
                "a filesystem type is required unless the options contain bind or rbind",
            ));
        }
        MountKind::Fs {
            fstype: typ.to_string(),
            source: source
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| typ.to_string()),
        }
    };
    if tmpcopyup && !matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs") {
        return Err(Error::spec(
            field(".options"),
            "tmpcopyup is only valid for tmpfs mounts",
        ));
    }
    Ok(MountPlan {
        index,
        dest,
        kind,
        flags,
        cleared,
        rec_set,
        rec_clr,
        propagation,
        data: data.join(","),
        tmpcopyup,
    })
}

/// `/proc` entries that may be mounted over (what lxcfs emulates), after runc.
const PROC_OVERMOUNT_OK: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Checks a mount against `/proc` after its destination was resolved inside the rootfs
/// (so symlinks in the image have been followed): a `proc` filesystem must land exactly on
/// `/proc`; nothing else may cover `/proc` or anything below it except the lxcfs files.
/// Without this an image could redirect procfs (CVE-2019-16884, CVE-2019-19921) or hide
/// `/proc` files the runtime relies on.
pub fn check_proc_mount(plan: &MountPlan, resolved: &Path, source_is_procfs: bool) -> Result<()> {
    let is_proc_fs = matches!(&plan.kind, MountKind::Fs { fstype, .. } if fstype == "proc");
    let field = format!("mounts[{}].destination", plan.index);
    if is_proc_fs {
        if resolved != Path::new("/proc") {
            return Err(Error::spec(
                field,
                format!(
                    "{} resolves to {} inside the rootfs; procfs may only be mounted on /proc \
                     (is /proc a symlink in the image?)",
                    plan.dest.display(),
                    resolved.display()
                ),
            ));
        }
        return Ok(());
    }
    let Ok(rel) = resolved.strip_prefix("/proc") else {
        return Ok(());
    };
    if rel.as_os_str().is_empty() {
        if source_is_procfs {
            return Ok(());
        }
        return Err(Error::spec(
            field,
            format!(
                "{} cannot be mounted on /proc because it is not of type proc",
                plan.dest.display()
            ),
        ));
    }
    if PROC_OVERMOUNT_OK.iter().any(|p| Path::new(p) == resolved) {
        return Ok(());
    }
    Err(Error::spec(
        field,
        format!(
            "{} cannot be mounted because it resolves to {} inside /proc",
            plan.dest.display(),
            resolved.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(json: &str) -> Mount {
        serde_json::from_str(json).unwrap()
    }

    fn plan(json: &str) -> MountPlan {
        plan_mount(0, &mount(json), Path::new("/bundle")).unwrap()
    }

    #[test]
    fn tmpfs_with_flags_and_data() {
        let p = plan(
            r#"{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}"#,
        );
        assert_eq!(p.dest, Path::new("/dev"));
        assert_eq!(p.flags, Ms::MS_NOSUID | Ms::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(
            p.kind,
            MountKind::Fs {
                fstype: "tmpfs".into(),
                source: "tmpfs".into()
            }
        );
    }

    #[test]
    fn bind_options_become_attributes() {
        let p = plan(
            r#"{"destination":"/data/../etc//x/.","source":"rel/src","options":["rbind","ro","nosuid","rw","ro","noatime","rprivate","rnodev"]}"#,
        );
        assert_eq!(p.dest, Path::new("/etc/x"));
        assert_eq!(
            p.kind,
            MountKind::Bind {
                source: "/bundle/rel/src".into(),
                recursive: true
            }
        );
        let (set, clr) = p.bind_attrs();
        assert_eq!(
            set,
            attr::MOUNT_ATTR_RDONLY | attr::MOUNT_ATTR_NOSUID | attr::MOUNT_ATTR_NOATIME
        );
        assert_eq!(clr, attr::MOUNT_ATTR__ATIME);
        assert_eq!(p.rec_set, attr::MOUNT_ATTR_NODEV);
        assert_eq!(p.propagation, vec![Ms::MS_PRIVATE | Ms::MS_REC]);
        assert!(p.data.is_empty());
    }

    #[test]
    fn rw_clears_and_type_bind_is_a_bind() {
        let p = plan(r#"{"destination":"/a","type":"bind","source":"/src","options":["rw"]}"#);
        assert!(p.is_bind());
        let (set, clr) = p.bind_attrs();
        assert_eq!(set, 0);
        assert_eq!(clr, attr::MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn bad_entries_name_the_field() {
        let bad = |json: &str, needle: &str| {
            let e = plan_mount(3, &mount(json), Path::new("/b")).unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        };
        bad(
            r#"{"destination":"/","type":"tmpfs"}"#,
            "mounts[3].destination",
        );
        bad(r#"{"destination":""}"#, "mounts[3].destination");
        bad(
            r#"{"destination":"/x","options":["bind"]}"#,
            "mounts[3].source",
        );
        bad(r#"{"destination":"/x"}"#, "mounts[3].type");
        bad(
            r#"{"destination":"/x","type":"proc","options":["tmpcopyup"]}"#,
            "mounts[3].options",
        );
        bad(
            r#"{"destination":"/x","source":"/y","options":["bind","idmap"]}"#,
            "not supported",
        );
    }

    proptest::proptest! {
        #[test]
        fn cleaned_paths_stay_absolute_and_normal(parts in proptest::collection::vec(
            proptest::prop_oneof!["\\.\\.", "\\.", "", "[a-z]{1,3}", "\\.\\.\\.", "a\\.b"], 0..12)) {
            let raw = format!("/{}", parts.join("/"));
            let p = clean_container_path(Path::new(&raw));
            proptest::prop_assert!(p.is_absolute());
            for c in p.components() {
                proptest::prop_assert!(matches!(c, Component::RootDir | Component::Normal(_)), "{raw} -> {p:?}");
            }
            proptest::prop_assert_eq!(clean_container_path(&p), p.clone());
        }
    }

    #[test]
    fn known_options_are_all_understood() {
        for o in KNOWN_OPTIONS {
            assert!(option(o).is_some(), "{o}");
        }
    }

    #[test]
    fn proc_checks() {
        let proc = plan(r#"{"destination":"/proc","type":"proc","source":"proc"}"#);
        check_proc_mount(&proc, Path::new("/proc"), false).unwrap();
        let e = check_proc_mount(&proc, Path::new("/evil"), false).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        let tmp = plan(r#"{"destination":"/proc","type":"tmpfs","source":"tmpfs"}"#);
        assert!(check_proc_mount(&tmp, Path::new("/proc"), false).is_err());
        let b = plan(r#"{"destination":"/proc/x","source":"/a","options":["bind"]}"#);
        assert!(check_proc_mount(&b, Path::new("/proc/self/attr/exec"), false).is_err());
        check_proc_mount(&b, Path::new("/proc/meminfo"), false).unwrap();
        check_proc_mount(&b, Path::new("/procfoo"), false).unwrap();
        check_proc_mount(&b, Path::new("/tmp/proc"), false).unwrap();
        check_proc_mount(&b, Path::new("/proc"), true).unwrap();
    }
}
