//! Init layers: the mount points an image lacks, made once per image instead of once per
//! container.
//!
//! The runtime mounts over a few paths of every container's root (the default mounts of the
//! engine's spec, `crates/berth-engine/src/spec.rs`): `/proc`, `/dev`, `/sys` and the files
//! `/etc/resolv.conf`, `/etc/hostname`, `/etc/hosts` ([`INIT_ENTRIES`]). A path the image
//! lacks must be created before the mount, and the runtime would create it in the container's
//! upper dir: ~7 inode creations per container on `run`'s critical path (0.3-0.45 ms each on
//! ext4) and as many unlinks at removal. Docker keeps them in an "init layer" per container;
//! Berth keeps one per image, as a read-only snapshot that every container of the image gets
//! as its topmost lower layer:
//!
//! ```text
//! snapshots/<id>/fs/          key "init:v1:<image id>", kind layer, image = the image
//! ├── proc/ dev/ sys/         only those the image lacks: 0755 root, as the runtime makes them
//! └── etc/                    the image's /etc attributes (mode, owner, times, xattrs), since
//!     │                       overlay shows the topmost layer's directory; 0755 root if the
//!     │                       image has no /etc
//!     └── hostname hosts resolv.conf   only those the image lacks: empty, 0644 root
//! ```
//!
//! Rules ([`plan`]): an entry is made only if its path does not exist in the image's merged
//! view, looked up as overlayfs does (whiteouts hide, opaque directories stop the merge, a
//! non-directory under a directory ends it). A symlink counts as existing and is never
//! shadowed; if a parent is a symlink or not a directory, the entry is skipped and the
//! runtime resolves and creates it at start as before.
//!
//! Life cycle ([`crate::Store::prepare_container`]): made lazily by the first container of an
//! image (images that are never run cost nothing, and a new Berth with another entry list
//! makes its own layer under a new key version), serialized by a store-wide mutex (parallel
//! creates of one image make it once), in a fresh snapshot directory that GC removes if no
//! record names it (a crash before the record's commit leaves nothing trusted). GC keeps it
//! while the image exists or a container names it in its snapshot record (`init`), which is
//! also what keeps containers made before init layers existed on their old stack.
//!
//! Durability: the layer holds no file data, only metadata (directories, empty files,
//! attributes), and its record is committed with redb's durable commit, whose fsync commits
//! the filesystem's journal with every metadata change made before it (ext4, xfs): no fsync
//! of its own, the same reasoning as a container's snapshot directories. A crash that lost
//! an entry anyway would only make the runtime create it in the upper dir as before.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_oci::Digest;

/// Whether the runtime mounts a directory or a file at an [`INIT_ENTRIES`] path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    Dir,
    File,
}

/// The mount targets of the engine's default container spec that live on the image's root
/// filesystem (`/dev/pts`, `/dev/shm`, `/dev/mqueue` are inside the `/dev` tmpfs and
/// `/sys/fs/cgroup` inside sysfs). The engine's spec tests check the two agree. Changing
/// the list needs a new [`INIT_KEY_PREFIX`] version, or images keep their old layer.
pub const INIT_ENTRIES: &[(&str, InitKind)] = &[
    ("/proc", InitKind::Dir),
    ("/dev", InitKind::Dir),
    ("/sys", InitKind::Dir),
    ("/etc/resolv.conf", InitKind::File),
    ("/etc/hostname", InitKind::File),
    ("/etc/hosts", InitKind::File),
];

/// Snapshot keys of init layers: `init:v1:<image id>`.
pub const INIT_KEY_PREFIX: &str = "init:v1:";

/// The snapshot key of an image's init layer.
pub fn init_key(image: &Digest) -> String {
    format!("{INIT_KEY_PREFIX}{image}")
}

/// One path of an init layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitNode {
    /// A directory the image has (it holds new entries): made with the attributes of the
    /// image's topmost one, found at this path in a layer.
    Copy(PathBuf),
    /// A path the image lacks: made as the runtime makes a missing mount target (directory
    /// 0755, empty file 0644, owned by root).
    New(InitKind),
}

/// What an init layer over `layers` (layer directories, top first) must hold, by path
/// relative to the root; parents sort before their children.
pub(crate) fn plan(layers: &[PathBuf]) -> io::Result<BTreeMap<PathBuf, InitNode>> {
    let mut out = BTreeMap::new();
    for (path, kind) in INIT_ENTRIES {
        let comps: Vec<&OsStr> = Path::new(path.trim_start_matches('/')).iter().collect();
        let mut within: Vec<usize> = (0..layers.len()).collect();
        let mut prefix = PathBuf::new();
        let mut nodes = Vec::new();
        for (n, c) in comps.iter().enumerate() {
            prefix.push(c);
            let last = n + 1 == comps.len();
            match lookup(layers, &within, &prefix)? {
                Merged::Missing => {
                    // This component and everything below it are new.
                    let mut p = prefix.clone();
                    for (m, c) in comps.iter().enumerate().skip(n) {
                        if m > n {
                            p.push(c);
                        }
                        let k = if m + 1 == comps.len() {
                            *kind
                        } else {
                            InitKind::Dir
                        };
                        nodes.push((p.clone(), InitNode::New(k)));
                    }
                    out.extend(nodes.drain(..));
                    break;
                }
                Merged::Dir { top, layers: l } if !last => {
                    nodes.push((prefix.clone(), InitNode::Copy(top)));
                    within = l;
                }
                // Exists (as anything, symlinks included), or a parent is not a directory.
                _ => break,
            }
        }
    }
    Ok(out)
}

/// A path in the merged view of some layers.
#[derive(Debug)]
enum Merged {
    Missing,
    /// A directory: where its topmost copy is, and the layers (indexes) it merges.
    Dir {
        top: PathBuf,
        layers: Vec<usize>,
    },
    /// Anything else: a file, a symlink, a device.
    Other,
}

/// Looks `rel` up in the layers `within` (top first; each has `rel`'s parent as a merged
/// directory), the way overlayfs does.
fn lookup(layers: &[PathBuf], within: &[usize], rel: &Path) -> io::Result<Merged> {
    let mut top: Option<PathBuf> = None;
    let mut merged = Vec::new();
    for &i in within {
        let p = layers[i].join(rel);
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if is_whiteout(&m) {
            break;
        }
        if !m.is_dir() {
            if top.is_none() {
                return Ok(Merged::Other);
            }
            // A non-directory below a directory is hidden, and so is everything under it.
            break;
        }
        let opaque = is_opaque(&p)?;
        top.get_or_insert(p);
        merged.push(i);
        if opaque {
            break;
        }
    }
    Ok(match top {
        Some(top) => Merged::Dir {
            top,
            layers: merged,
        },
        None => Merged::Missing,
    })
}

/// An overlay whiteout: a character device 0:0.
fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// `trusted.overlay.opaque=y` (what layer unpacking sets for `.wh..wh..opq`).
fn is_opaque(dir: &Path) -> io::Result<bool> {
    let mut v = [0u8; 4];
    match rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut v[..]) {
        Ok(n) => Ok(&v[..n] == b"y"),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::OPNOTSUPP) => Ok(false),
        // A longer value is not "y".
        Err(rustix::io::Errno::RANGE) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates `plan` under `root` (an empty directory).
pub(crate) fn write(root: &Path, plan: &BTreeMap<PathBuf, InitNode>) -> io::Result<()> {
    let ctx = |p: &Path, what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    for (rel, node) in plan {
        let p = root.join(rel);
        match node {
            InitNode::New(InitKind::File) => fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&p)
                .map(drop),
            _ => fs::DirBuilder::new().mode(0o755).create(&p),
        }
        .map_err(|e| ctx(&p, "creating", e))?;
    }
    // Attributes once every entry exists (making a child changes its parent's times),
    // children first.
    for (rel, node) in plan.iter().rev() {
        let p = root.join(rel);
        match node {
            InitNode::New(kind) => {
                // The umask applied at creation; the runtime (umask 0) makes exactly these.
                let mode = if *kind == InitKind::Dir { 0o755 } else { 0o644 };
                std::os::unix::fs::lchown(&p, Some(0), Some(0)).map_err(|e| ctx(&p, "chown", e))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                    .map_err(|e| ctx(&p, "chmod", e))?;
            }
            InitNode::Copy(src) => {
                copy_attrs(src, &p).map_err(|e| ctx(&p, "copying attributes to", e))?
            }
        }
    }
    Ok(())
}

/// Gives directory `dst` the owner, xattrs (but overlayfs' own), mode and times of `src`.
fn copy_attrs(src: &Path, dst: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(src)?;
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))?;
    for (name, value) in xattrs(src)? {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        rustix::fs::lsetxattr(
            dst,
            OsStr::from_bytes(&name),
            &value,
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    // After the xattrs: an access ACL rewrites the mode's group bits; the mode we copy was
    // the source's with its ACL.
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    let ts = |sec: i64, nsec: i64| rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dst,
        &rustix::fs::Timestamps {
            last_access: ts(m.atime(), m.atime_nsec()),
            last_modification: ts(m.mtime(), m.mtime_nsec()),
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Every extended attribute of `p` (not following symlinks).
fn xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use rustix::io::Errno;
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(p, &mut names[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(p, OsStr::from_bytes(name), &mut value[..]) {
                Ok(len) => break Some(len),
                Err(Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(len) = len {
            value.truncate(len);
            out.push((name.to_vec(), value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(n: usize) -> (tempfile::TempDir, Vec<PathBuf>) {
        let t = tempfile::Builder::new()
            .prefix("berth-test-init")
            .tempdir()
            .unwrap();
        let dirs: Vec<PathBuf> = (0..n).map(|i| t.path().join(format!("l{i}"))).collect();
        for d in &dirs {
            fs::create_dir(d).unwrap();
        }
        (t, dirs)
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn new(k: InitKind) -> InitNode {
        InitNode::New(k)
    }

    #[test]
    fn an_empty_image_gets_every_entry_and_etc() {
        let (_t, l) = layers(1);
        let p = plan(&l).unwrap();
        let want: BTreeMap<PathBuf, InitNode> = [
            ("dev", new(InitKind::Dir)),
            ("etc", new(InitKind::Dir)),
            ("etc/hostname", new(InitKind::File)),
            ("etc/hosts", new(InitKind::File)),
            ("etc/resolv.conf", new(InitKind::File)),
            ("proc", new(InitKind::Dir)),
            ("sys", new(InitKind::Dir)),
        ]
        .into_iter()
        .map(|(p, n)| (PathBuf::from(p), n))
        .collect();
        assert_eq!(p, want);
        assert_eq!(plan(&[]).unwrap(), want, "no layers at all");
    }

    #[test]
    fn existing_paths_symlinks_and_non_directory_parents_are_left_alone() {
        let (_t, l) = layers(2);
        for d in ["proc", "dev", "sys", "etc"] {
            fs::create_dir(l[1].join(d)).unwrap();
        }
        // /etc/hosts a dangling symlink (lower layer), /etc/hostname a file (upper layer).
        std::os::unix::fs::symlink("/run/hosts", l[1].join("etc/hosts")).unwrap();
        fs::create_dir(l[0].join("etc")).unwrap();
        fs::write(l[0].join("etc/hostname"), "x").unwrap();
        let p = plan(&l).unwrap();
        let keys: Vec<_> = p.keys().map(|k| k.to_string_lossy().into_owned()).collect();
        assert_eq!(keys, ["etc", "etc/resolv.conf"]);
        // The topmost /etc gives the attributes.
        assert_eq!(p[Path::new("etc")], InitNode::Copy(l[0].join("etc")));

        // /etc a symlink: the files are the runtime's business; /etc is not shadowed.
        let (_t, l) = layers(1);
        std::os::unix::fs::symlink("/usr/etc", l[0].join("etc")).unwrap();
        let p = plan(&l).unwrap();
        assert!(p.keys().all(|k| !k.starts_with("etc")), "{p:?}");
    }

    #[test]
    fn a_non_directory_above_a_directory_hides_it() {
        let (_t, l) = layers(2);
        fs::write(l[0].join("etc"), "").unwrap();
        fs::create_dir(l[1].join("etc")).unwrap();
        let p = plan(&l).unwrap();
        assert!(p.keys().all(|k| !k.starts_with("etc")), "{p:?}");
        // And a file below a directory does not count: /proc merges only the directory.
        fs::create_dir(l[0].join("proc")).unwrap();
        fs::write(l[1].join("proc"), "").unwrap();
        assert!(!plan(&l).unwrap().contains_key(Path::new("proc")));
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        if !is_root() {
            eprintln!("skipped: whiteouts (mknod) and trusted.* xattrs need root");
            return;
        }
        let (_t, l) = layers(3);
        for d in ["proc", "etc"] {
            fs::create_dir(l[2].join(d)).unwrap();
        }
        for f in ["hostname", "hosts", "resolv.conf"] {
            fs::write(l[2].join("etc").join(f), "").unwrap();
        }
        // Layer 1 deletes /proc and replaces /etc by an opaque one holding only hosts.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            l[1].join("proc"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
        fs::create_dir(l[1].join("etc")).unwrap();
        rustix::fs::lsetxattr(
            l[1].join("etc"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::write(l[1].join("etc/hosts"), "").unwrap();
        let p = plan(&l).unwrap();
        assert_eq!(p[Path::new("proc")], new(InitKind::Dir));
        assert_eq!(p[Path::new("etc")], InitNode::Copy(l[1].join("etc")));
        assert_eq!(p[Path::new("etc/hostname")], new(InitKind::File));
        assert_eq!(p[Path::new("etc/resolv.conf")], new(InitKind::File));
        assert!(!p.contains_key(Path::new("etc/hosts")));
    }

    #[test]
    fn written_entries_carry_the_runtimes_modes_and_the_images_etc() {
        if !is_root() {
            eprintln!("skipped: chown needs root");
            return;
        }
        let (t, l) = layers(1);
        let etc = l[0].join("etc");
        fs::create_dir(&etc).unwrap();
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::lchown(&etc, Some(1), Some(2)).unwrap();
        rustix::fs::lsetxattr(&etc, "user.note", b"kept", rustix::fs::XattrFlags::empty()).unwrap();
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &etc,
            &rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 1000,
                    tv_nsec: 5,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: 2000,
                    tv_nsec: 7,
                },
            },
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        let out = t.path().join("init");
        fs::create_dir(&out).unwrap();
        write(&out, &plan(&l).unwrap()).unwrap();
        let m = fs::symlink_metadata(out.join("etc")).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o750, 1, 2),
            "the image's /etc"
        );
        assert_eq!((m.mtime(), m.mtime_nsec()), (2000, 7));
        assert_eq!(
            xattrs(&out.join("etc")).unwrap(),
            [(b"user.note".to_vec(), b"kept".to_vec())]
        );
        for (f, mode) in [("etc/hosts", 0o100644), ("proc", 0o40755), ("sys", 0o40755)] {
            let m = fs::symlink_metadata(out.join(f)).unwrap();
            assert_eq!(
                (m.mode(), m.uid(), m.gid(), m.len()),
                (mode, 0, 0, m.len()),
                "{f}"
            );
        }
    }
}
