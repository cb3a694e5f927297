//! Directory trees to tar: overlay upper dirs (layer diffs) and plain trees (export).
//!
//! The walk is depth-first with the names of each directory sorted bytewise, so equal
//! trees give byte-identical tars. Every file is opened relative to its directory's
//! descriptor with `O_NOFOLLOW`, so a tree whose content changes under us (a running
//! container) can make the walk fail but never make it read outside the tree.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::apply::skip_xattr;
use crate::error::{Error, Result};
use crate::fsops;
use crate::tar_read::Kind;
use crate::tar_write::{Header, TarWriter};
use crate::{DiffOptions, DiffStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeKind {
    /// Translate overlayfs whiteouts and opaque directories into their tar form.
    OverlayUpper,
    /// Write everything as it is.
    Plain,
}

pub(crate) fn write_tree(
    root: &Path,
    out: impl Write,
    opts: &DiffOptions,
    kind: TreeKind,
) -> Result<DiffStats> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Path {
        path: root.to_path_buf(),
        op: "opening the directory to archive",
        source: e.into(),
    })?;
    let mut walk = Walk {
        root,
        w: TarWriter::new(out),
        epoch: opts.source_date_epoch,
        kind,
        links: HashMap::new(),
    };
    walk.walk(root_fd)?;
    let (diff_id, size, entries) = walk.w.finish().map_err(Error::Write)?;
    Ok(DiffStats {
        diff_id,
        size,
        entries,
    })
}

struct Walk<'a, W: Write> {
    root: &'a Path,
    w: TarWriter<W>,
    epoch: Option<i64>,
    kind: TreeKind,
    /// (device, inode) of files with several links → the path written first.
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// One directory being walked: its descriptor, the entries still to visit, and the length
/// of its own path in the shared path buffer.
struct Frame {
    fd: OwnedFd,
    items: std::vec::IntoIter<Item>,
    base: usize,
}

struct Item {
    /// Name in the tar (differs from `name` for whiteouts).
    tar_name: Vec<u8>,
    name: Vec<u8>,
    st: Stat,
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

impl<W: Write> Walk<'_, W> {
    fn fail(&self, rel: &[u8], op: &'static str, e: impl Into<io::Error>) -> Error {
        Error::Path {
            path: self.root.join(OsStr::from_bytes(rel)),
            op,
            source: e.into(),
        }
    }

    fn mtime(&self, st: &Stat) -> i64 {
        let m = st.st_mtime;
        match self.epoch {
            Some(e) if m > e => e,
            _ => m,
        }
    }

    /// Depth-first, iteratively (a container can build trees deeper than any stack).
    fn walk(&mut self, root: OwnedFd) -> Result<()> {
        let mut path = Vec::new();
        let items = self.list(root.as_fd(), &path)?;
        let mut stack = vec![Frame {
            fd: root,
            items: items.into_iter(),
            base: 0,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(item) = top.items.next() else {
                stack.pop();
                continue;
            };
            path.truncate(top.base);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&item.tar_name);
            let Some(child) = self.item(top.fd.as_fd(), &item, &path)? else {
                continue;
            };
            if stack.len() >= fsops::MAX_DEPTH {
                return Err(self.fail(
                    &path,
                    "archiving",
                    io::Error::other(format!(
                        "directory tree deeper than {} levels",
                        fsops::MAX_DEPTH
                    )),
                ));
            }
            let items = self.list(child.as_fd(), &path)?;
            stack.push(Frame {
                fd: child,
                items: items.into_iter(),
                base: path.len(),
            });
        }
        Ok(())
    }

    /// The entries of a directory, in archive order.
    fn list(&self, dir: BorrowedFd<'_>, prefix: &[u8]) -> Result<Vec<Item>> {
        let names = fsops::list_dir(dir).map_err(|e| self.fail(prefix, "listing", e))?;
        let mut items = Vec::with_capacity(names.len());
        for name in names {
            let st = match rustix::fs::statat(
                dir,
                OsStr::from_bytes(&name),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue, // removed while we walk
                Err(e) => {
                    let rel = join(prefix, &name);
                    return Err(self.fail(&rel, "lstat", e));
                }
            };
            let tar_name = if self.kind == TreeKind::OverlayUpper && is_whiteout(&st) {
                [&b".wh."[..], &name].concat()
            } else {
                name.clone()
            };
            items.push(Item { tar_name, name, st });
        }
        items.sort_by(|a, b| a.tar_name.cmp(&b.tar_name));
        Ok(items)
    }

    fn header(&self, path: &[u8], kind: Kind, st: &Stat) -> HeaderData {
        HeaderData {
            path: path.to_vec(),
            kind,
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: self.mtime(st),
            size: 0,
            link: Vec::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
        }
    }

    fn write(&mut self, h: &HeaderData) -> Result<()> {
        self.w
            .header(&Header {
                path: &h.path,
                kind: h.kind,
                mode: h.mode,
                uid: h.uid,
                gid: h.gid,
                mtime: h.mtime,
                size: h.size,
                link: &h.link,
                dev_major: h.dev.0,
                dev_minor: h.dev.1,
                xattrs: &h.xattrs,
            })
            .map_err(Error::Write)
    }

    /// Writes one entry; for a directory, returns it opened so the walk can descend.
    fn item(&mut self, dir: BorrowedFd<'_>, item: &Item, path: &[u8]) -> Result<Option<OwnedFd>> {
        let st = &item.st;
        let name = OsStr::from_bytes(&item.name);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let fd = open_nofollow(dir, name, OFlags::DIRECTORY)
                    .map_err(|e| self.fail(path, "opening the directory", e))?;
                let xattrs =
                    read_xattrs_fd(fd.as_fd()).map_err(|e| self.fail(path, "listing xattrs", e))?;
                let opaque = self.kind == TreeKind::OverlayUpper
                    && xattrs
                        .iter()
                        .any(|(k, v)| k == b"trusted.overlay.opaque" && v == b"y");
                let mut h = self.header(path, Kind::Dir, st);
                h.xattrs = keep_xattrs(xattrs);
                self.write(&h)?;
                if opaque {
                    let mut marker = self.header(&join(path, b".wh..wh..opq"), Kind::File, st);
                    marker.mode &= 0o777;
                    self.write(&marker)?;
                }
                Ok(Some(fd))
            }
            FileType::RegularFile => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        let mut h = self.header(path, Kind::Hardlink, st);
                        h.link = first.clone();
                        return self.write(&h).map(|()| None);
                    }
                    self.links.insert(key, path.to_vec());
                }
                let fd = open_nofollow(dir, name, OFlags::empty())
                    .map_err(|e| self.fail(path, "opening the file", e))?;
                let mut h = self.header(path, Kind::File, st);
                h.size = st.st_size as u64;
                h.xattrs = keep_xattrs(
                    read_xattrs_fd(fd.as_fd()).map_err(|e| self.fail(path, "listing xattrs", e))?,
                );
                self.write(&h)?;
                self.copy(File::from(fd), h.size, path)?;
                Ok(None)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| self.fail(path, "reading the symlink", e))?;
                let mut h = self.header(path, Kind::Symlink, st);
                h.link = target.into_bytes();
                h.xattrs = keep_xattrs(
                    read_xattrs_path(dir, &item.name)
                        .map_err(|e| self.fail(path, "listing xattrs", e))?,
                );
                self.write(&h)?;
                Ok(None)
            }
            FileType::CharacterDevice if self.kind == TreeKind::OverlayUpper && is_whiteout(st) => {
                // Docker's form of a whiteout: an empty regular file, mode 0600, keeping
                // the device's owner and time.
                let mut h = self.header(path, Kind::File, st);
                h.mode = 0o600;
                self.write(&h)?;
                Ok(None)
            }
            t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let kind = match t {
                    FileType::CharacterDevice => Kind::Char,
                    FileType::BlockDevice => Kind::Block,
                    _ => Kind::Fifo,
                };
                let mut h = self.header(path, kind, st);
                if kind != Kind::Fifo {
                    h.dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
                }
                h.xattrs = keep_xattrs(
                    read_xattrs_path(dir, &item.name)
                        .map_err(|e| self.fail(path, "listing xattrs", e))?,
                );
                self.write(&h)?;
                Ok(None)
            }
            // Sockets (and anything unknown) cannot be archived; Docker skips them too.
            _ => Ok(None),
        }
    }

    /// Copies exactly `size` bytes; a file that shrank meanwhile is an error (the header
    /// already promised its size), one that grew is cut at the promised size.
    fn copy(&mut self, mut f: File, size: u64, path: &[u8]) -> Result<()> {
        // Read and write errors come out of the same call; the wrapper tells them apart.
        let mut src = Tracked {
            file: &mut f,
            failed: false,
        };
        let copied = match self.w.data_from(&mut src, size) {
            Ok(n) => n,
            Err(e) if src.failed => return Err(self.fail(path, "reading the file", e)),
            Err(e) => return Err(Error::Write(e)),
        };
        if copied < size {
            return Err(self.fail(
                path,
                "reading the file",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being archived",
                ),
            ));
        }
        self.w.pad(size).map_err(Error::Write)
    }
}

/// A file whose read errors are remembered.
struct Tracked<'a> {
    file: &'a mut File,
    failed: bool,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.file.read(buf);
        if r.as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::Interrupted)
        {
            self.failed = true;
        }
        r
    }
}

struct HeaderData {
    path: Vec<u8>,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: Vec<u8>,
    dev: (u32, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
    }
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &OsStr, extra: OFlags) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
    // O_NOATIME keeps archiving from dirtying inodes; only the owner (or root) may use it.
    match rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        r => r,
    }
}

/// Host-specific or overlay-internal attributes that must not travel in a layer.
fn keep_xattrs(mut xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    xattrs.retain(|(k, _)| !skip_xattr(k) && k != b"security.selinux");
    xattrs
}

fn split_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    list.split(|&b| b == 0).filter(|n| !n.is_empty())
}

fn read_xattrs_fd(fd: BorrowedFd<'_>) -> rustix::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    read_xattrs(
        |buf| rustix::fs::flistxattr(fd, buf),
        |name, buf| rustix::fs::fgetxattr(fd, name, buf),
    )
}

fn read_xattrs_path(
    dir: BorrowedFd<'_>,
    name: &[u8],
) -> rustix::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let p = fsops::proc_path(dir, name);
    read_xattrs(
        |buf| rustix::fs::llistxattr(&p, buf),
        |k, buf| rustix::fs::lgetxattr(&p, k, buf),
    )
}

/// Lists and reads all xattrs, growing buffers on `ERANGE` (attributes can change size
/// between the two calls).
fn read_xattrs(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&OsStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match list(&mut names) {
            Ok(n) => break n,
            Err(Errno::RANGE) => names.resize(names.len() * 4, 0),
            Err(Errno::OPNOTSUPP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 256];
    for key in split_names(&names[..n]) {
        let len = loop {
            match get(OsStr::from_bytes(key), &mut value) {
                Ok(len) => break Some(len),
                Err(Errno::RANGE) => value.resize(value.len() * 4, 0),
                Err(Errno::NODATA) => break None, // removed meanwhile
                Err(e) => return Err(e),
            }
        };
        if let Some(len) = len {
            out.push((key.to_vec(), value[..len].to_vec()));
        }
    }
    Ok(out)
}
