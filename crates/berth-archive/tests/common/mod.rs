//! Shared helpers: a raw tar builder that can write any (malicious) name, a sandbox with a
//! canary outside the destination, and a tree snapshot for comparing directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_archive::{ApplyOptions, WhiteoutMode};

pub const MTIME: u64 = 1_700_000_000;

/// Builds tar streams byte by byte, so tests can write names no honest tool would.
#[derive(Default)]
pub struct Tar {
    pub buf: Vec<u8>,
}

pub struct Spec<'a> {
    pub name: &'a [u8],
    pub kind: u8,
    pub data: &'a [u8],
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl<'a> Spec<'a> {
    pub fn new(name: &'a [u8], kind: u8) -> Self {
        Spec {
            name,
            kind,
            data: b"",
            link: b"",
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: MTIME,
            dev: (0, 0),
        }
    }
}

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    fn pad(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    /// Appends one header (+ data). Names over 100 bytes go into a PAX record.
    pub fn spec(&mut self, s: Spec<'_>) -> &mut Self {
        if s.name.len() > 100 || s.link.len() > 100 {
            let mut recs: Vec<(&[u8], &[u8])> = Vec::new();
            if s.name.len() > 100 {
                recs.push((b"path", s.name));
            }
            if s.link.len() > 100 {
                recs.push((b"linkpath", s.link));
            }
            self.pax(&recs);
        }
        let mut h = tar::Header::new_ustar();
        {
            let b = h.as_mut_bytes();
            let n = s.name.len().min(100);
            b[..n].copy_from_slice(&s.name[..n]);
            let l = s.link.len().min(100);
            b[157..157 + l].copy_from_slice(&s.link[..l]);
        }
        h.set_mode(s.mode);
        h.set_uid(s.uid);
        h.set_gid(s.gid);
        h.set_mtime(s.mtime);
        h.set_size(s.data.len() as u64);
        h.set_entry_type(tar::EntryType::new(s.kind));
        if s.kind == b'3' || s.kind == b'4' {
            h.set_device_major(s.dev.0).unwrap();
            h.set_device_minor(s.dev.1).unwrap();
        }
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(s.data);
        self.pad();
        self
    }

    /// A header whose declared size differs from the data that follows (lies about size).
    pub fn raw_header(&mut self, name: &[u8], kind: u8, size: u64) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        h.set_mtime(MTIME);
        h.set_size(size);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self
    }

    pub fn pax(&mut self, records: &[(&[u8], &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(k);
            data.push(b'=');
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut s = Spec::new(b"PaxHeaders.0/x", b'x');
        s.data = &data;
        self.spec(s)
    }

    /// A GNU long-name ('L') header for the next entry.
    pub fn gnu_long_name(&mut self, name: &[u8]) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        let mut data = name.to_vec();
        data.push(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(&data);
        self.pad();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut s = Spec::new(name.as_bytes(), b'0');
        s.data = data;
        self.spec(s)
    }
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.spec(Spec::new(name.as_bytes(), b'5'))
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut s = Spec::new(name.as_bytes(), b'2');
        s.link = target.as_bytes();
        s.mode = 0o777;
        self.spec(s)
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut s = Spec::new(name.as_bytes(), b'1');
        s.link = target.as_bytes();
        self.spec(s)
    }
    pub fn fifo(&mut self, name: &str) -> &mut Self {
        self.spec(Spec::new(name.as_bytes(), b'6'))
    }

    /// The archive with its end marker.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// A temp dir `berth-test-archive-*/` holding `a/b/dest` (where layers go), a canary file
/// `a/canary` and a canary directory `a/outside/` with a file, to prove nothing outside
/// `dest` is ever touched.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
    pub outside: PathBuf,
}

pub const CANARY: &[u8] = b"canary: must never change\n";

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-archive-")
            .tempdir()
            .unwrap();
        let a = tmp.path().join("a");
        let dest = a.join("b").join("dest");
        fs::create_dir_all(&dest).unwrap();
        fs::write(a.join("canary"), CANARY).unwrap();
        let outside = a.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), CANARY).unwrap();
        Sandbox { tmp, dest, outside }
    }

    pub fn a(&self) -> PathBuf {
        self.tmp.path().join("a")
    }

    /// Asserts that everything outside `dest` is exactly as created.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(fs::read(self.a().join("canary")).unwrap(), CANARY);
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), CANARY);
        assert_eq!(names(self.tmp.path()), vec!["a"]);
        assert_eq!(names(&self.a()), vec!["b", "canary", "outside"]);
        assert_eq!(names(&self.a().join("b")), vec!["dest"]);
        assert_eq!(names(&self.outside), vec!["secret"]);
        let st = fs::symlink_metadata(self.a().join("canary")).unwrap();
        assert_eq!(st.nlink(), 1, "someone hardlinked the canary");
        let st = fs::symlink_metadata(self.outside.join("secret")).unwrap();
        assert_eq!(st.nlink(), 1, "someone hardlinked the secret");
    }

    pub fn apply(
        &self,
        tar: &[u8],
        mode: WhiteoutMode,
    ) -> berth_archive::Result<berth_archive::ApplyStats> {
        let opts = ApplyOptions {
            whiteouts: mode,
            ..ApplyOptions::default()
        };
        berth_archive::apply_layer(tar, &self.dest, &opts)
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Everything observable about one path, for tree comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The first path (in sorted order) sharing this inode, for hardlinks.
    pub inode_group: Option<Vec<u8>>,
}

/// Snapshot of a tree (the root itself excluded).
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Meta> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<Vec<u8>, Meta>,
    inodes: &mut BTreeMap<(u64, u64), Vec<u8>>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let st = fs::symlink_metadata(&p).unwrap();
        let ft = st.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let content = ft.is_file().then(|| {
            let data = fs::read(&p).unwrap();
            berth_oci::Digest::of(&data).to_string()
        });
        let link = ft
            .is_symlink()
            .then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec());
        let inode_group = (ft.is_file() && st.nlink() > 1).then(|| {
            inodes
                .entry((st.dev(), st.ino()))
                .or_insert_with(|| rel.clone())
                .clone()
        });
        out.insert(
            rel.clone(),
            Meta {
                kind,
                mode: st.mode() & 0o7777,
                uid: st.uid(),
                gid: st.gid(),
                mtime: if ft.is_symlink() || ft.is_dir() || ft.is_file() {
                    st.mtime()
                } else {
                    0
                },
                size: if ft.is_file() { st.size() } else { 0 },
                content,
                link,
                rdev: st.rdev(),
                xattrs: xattrs(&p),
                inode_group,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
}

pub fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(p, &mut names[..]) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names[..n]
        .split(|&b| b == 0)
        .filter(|k| !k.is_empty() && *k != b"security.selinux")
        .map(|k| {
            let mut v = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(p, OsStr::from_bytes(k), &mut v[..]).unwrap();
            v.truncate(len);
            (k.to_vec(), v)
        })
        .collect();
    out.sort();
    out
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
