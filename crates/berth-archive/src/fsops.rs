//! Filesystem operations confined to one directory tree.
//!
//! Everything is relative to a directory file descriptor. Parent directories are resolved
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses any path that
//! leaves the root, whether through `..`, an absolute symlink or a relative one climbing too
//! high, and refuses `/proc` magic links; the last component is then created or changed with
//! `*at` calls that never follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`). A
//! hostile tree can therefore only ever make us touch files inside the root.
//!
//! Resolving a parent costs one `openat2`; tar entries come grouped by directory, so a small
//! cache of recently resolved directories saves most of them. Any removal clears the cache:
//! a cached descriptor stays valid after its path is replaced (e.g. by a symlink), and using
//! it then would put later entries into the old, unlinked directory.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a directory inside the root could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// A symlink (or `..`) leads outside the root.
    Escape,
    /// Too many symlinks.
    Loop,
    /// A component is not a directory.
    NotDir,
    /// A component does not exist.
    NotFound,
    Io(Errno),
}

impl From<Errno> for ResolveError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::XDEV => ResolveError::Escape,
            Errno::LOOP => ResolveError::Loop,
            Errno::NOTDIR => ResolveError::NotDir,
            Errno::NOENT => ResolveError::NotFound,
            e => ResolveError::Io(e),
        }
    }
}

const CACHE_SLOTS: usize = 4;

/// The root of a tree we write into, with the cache of resolved directories.
pub(crate) struct Root {
    fd: Rc<OwnedFd>,
    cache: Vec<(Vec<u8>, Rc<OwnedFd>)>,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// `openat2` below the root, retrying the rare `EAGAIN` the kernel returns when a rename
/// raced with the lookup.
fn openat2_beneath(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            OsStr::from_bytes(path),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

impl Root {
    pub fn open(dest: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd: Rc::new(fd),
            cache: Vec::with_capacity(CACHE_SLOTS),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Forgets every cached directory; call after anything was removed or replaced.
    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// Caches a directory we just created or opened, as the likely parent of what follows.
    pub fn remember(&mut self, path: &[u8], fd: OwnedFd) {
        if self.cache.len() == CACHE_SLOTS {
            self.cache.pop();
        }
        self.cache.insert(0, (path.to_vec(), Rc::new(fd)));
    }

    /// The directory at the cleaned relative `path` (empty = the root); with `create`,
    /// missing directories are made (mode 0755, like Docker's implied directories).
    pub fn dir(&mut self, path: &[u8], create: bool) -> Result<Rc<OwnedFd>, ResolveError> {
        if path.is_empty() {
            return Ok(self.fd.clone());
        }
        if let Some(i) = self.cache.iter().position(|(p, _)| p == path) {
            if i != 0 {
                let hit = self.cache.remove(i);
                self.cache.insert(0, hit);
            }
            return Ok(self.cache[0].1.clone());
        }
        let fd = match openat2_beneath(self.fd.as_fd(), path, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.mkdir_all(path)?,
            Err(e) => return Err(e.into()),
        };
        if self.cache.len() == CACHE_SLOTS {
            self.cache.pop();
        }
        let fd = Rc::new(fd);
        self.cache.insert(0, (path.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Opens the directory at `path` for reading (for xattrs and listing), creating it if
    /// asked; never follows a symlink out of the root.
    pub fn open_dir(&mut self, path: &[u8], create: bool) -> Result<OwnedFd, ResolveError> {
        if path.is_empty() {
            return Ok(rustix::io::dup(self.fd.as_fd())?);
        }
        match openat2_beneath(self.fd.as_fd(), path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) if create => {
                self.mkdir_all(path)?;
                Ok(openat2_beneath(
                    self.fd.as_fd(),
                    path,
                    OFlags::RDONLY | OFlags::DIRECTORY,
                )?)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn mkdir_all(&mut self, path: &[u8]) -> Result<OwnedFd, ResolveError> {
        // Walk prefix by prefix so that every step is again resolved beneath the root.
        let mut parent: Option<OwnedFd> = None;
        let mut start = 0;
        loop {
            let next = path[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| start + i);
            let prefix = &path[..next];
            let fd =
                match openat2_beneath(self.fd.as_fd(), prefix, OFlags::PATH | OFlags::DIRECTORY) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => {
                        let pfd = parent.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
                        match rustix::fs::mkdirat(
                            pfd,
                            OsStr::from_bytes(&path[start..next]),
                            Mode::from_raw_mode(0o755),
                        ) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(e.into()),
                        }
                        openat2_beneath(self.fd.as_fd(), prefix, OFlags::PATH | OFlags::DIRECTORY)?
                    }
                    Err(e) => return Err(e.into()),
                };
            if next == path.len() {
                return Ok(fd);
            }
            parent = Some(fd);
            start = next + 1;
        }
    }
}

/// How deep the recursive walks (removal, archiving, changes) go before refusing: a path
/// can only name 2048 levels (`PATH_MAX`), and a walk must not exhaust a 2 MiB thread stack
/// on a tree a container made deeper than that.
pub(crate) const MAX_DEPTH: usize = 2048;

/// Removes `name` in `dir`, recursively if it is a directory, never following symlinks.
/// A missing entry is not an error. Iterative: the tree may be deeper than any stack.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    let open = |parent: BorrowedFd<'_>, name: &OsStr| {
        rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let top = match open(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    // (directory, its children still to remove, its name in its parent)
    let names = list_dir(top.as_fd())?.into_iter();
    let mut stack = vec![(top, names, name.as_bytes().to_vec())];
    loop {
        let depth = stack.len();
        let Some((fd, names, _)) = stack.last_mut() else {
            break;
        };
        match names.next() {
            Some(child) => {
                match rustix::fs::unlinkat(&*fd, OsStr::from_bytes(&child), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(Errno::ISDIR) => {
                        if depth >= MAX_DEPTH {
                            return Err(Errno::LOOP);
                        }
                        let sub = open(fd.as_fd(), OsStr::from_bytes(&child))?;
                        let names = list_dir(sub.as_fd())?.into_iter();
                        stack.push((sub, names, child));
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                let (_, _, done) = stack.pop().expect("stack is not empty here");
                let parent = stack.last().map_or(dir, |(fd, _, _)| fd.as_fd());
                match rustix::fs::unlinkat(parent, OsStr::from_bytes(&done), AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// Removes every child of the open directory `dir` for which `keep` returns false.
pub(crate) fn remove_children(
    dir: BorrowedFd<'_>,
    mut remove: impl FnMut(&[u8]) -> bool,
) -> Result<(), Errno> {
    for name in list_dir(dir)? {
        if remove(&name) {
            remove_at(dir, OsStr::from_bytes(&name))?;
        }
    }
    Ok(())
}

/// The names in an open directory (without `.` and `..`), unsorted.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    let mut d = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// A path through `/proc/self/fd` naming `name` inside the open directory `dir`, for the
/// few calls that have no `*at` form (`lsetxattr`, `llistxattr` on symlinks). The directory
/// part is the descriptor we resolved safely; the final component is not followed by the
/// `l*` calls this is used with.
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> PathBuf {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    PathBuf::from(OsStr::from_bytes(&p))
}

/// The process umask, read without changing it (`umask(2)` can only set it, which would
/// race with other threads creating files). `None` if /proc does not say.
pub(crate) fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
}
