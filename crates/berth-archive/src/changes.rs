//! What a container changed, as `docker diff` lists it.
//!
//! The overlay upper directory holds everything the container wrote: a whiteout device is a
//! deletion; anything else is a modification when a lower layer has the same path (Docker
//! shows `C /etc` for a directory whose content changed) and an addition otherwise.
//! Deciding between the two needs the lower layers, hence [`changes_with_lowers`].

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::fsops::{self, ResolveError, Root};

/// The kind of a change, with Docker's API codes (`Kind` in `GET /containers/{id}/changes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// `C`, API code 0.
    Modified,
    /// `A`, API code 1.
    Added,
    /// `D`, API code 2.
    Deleted,
}

impl ChangeKind {
    /// The number the Docker Engine API uses.
    pub fn api_code(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }

    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path, absolute inside the container (`/etc/hostname`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    /// `docker diff`'s line format: `A /new/file`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The changes in an overlay upper dir without knowing the lower layers: whiteouts are
/// deletions, everything else counts as added. Use [`changes_with_lowers`] to tell
/// modified paths from added ones.
pub fn changes(upper: &Path) -> Result<Vec<Change>> {
    changes_with_lowers(upper, &[])
}

/// The changes in an overlay upper dir against its lower layers (ordered as overlayfs'
/// `lowerdir=`, top-most first), sorted by path.
pub fn changes_with_lowers(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let open = |p: &Path| {
        Root::open(p).map_err(|source| Error::Path {
            path: p.to_path_buf(),
            op: "opening the layer directory",
            source,
        })
    };
    let upper_root = open(upper)?;
    let mut lower_roots = lowers.iter().map(|p| open(p)).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    walk(upper, upper_root.fd(), &mut lower_roots, &mut out)?;
    out.sort();
    Ok(out)
}

/// Depth-first over the upper dir, iteratively (a container can build trees deeper than
/// any stack).
fn walk(
    upper: &Path,
    root: BorrowedFd<'_>,
    lowers: &mut [Root],
    out: &mut Vec<Change>,
) -> Result<()> {
    struct Frame {
        fd: Option<OwnedFd>,
        names: std::vec::IntoIter<Vec<u8>>,
        base: usize,
    }
    let fail = |rel: &[u8], op: &'static str, e: Errno| Error::Path {
        path: upper.join(OsStr::from_bytes(rel)),
        op,
        source: e.into(),
    };
    let list = |dir: BorrowedFd<'_>, rel: &[u8]| {
        let mut names = fsops::list_dir(dir).map_err(|e| fail(rel, "listing", e))?;
        names.sort();
        Ok::<_, Error>(names.into_iter())
    };
    let mut path: Vec<u8> = Vec::new();
    let mut stack = vec![Frame {
        fd: None,
        names: list(root, &path)?,
        base: 0,
    }];
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.next() else {
            stack.pop();
            continue;
        };
        let dir = top.fd.as_ref().map_or(root, |f| f.as_fd());
        path.truncate(top.base);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        let st = match rustix::fs::statat(dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW)
        {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(fail(&path, "lstat", e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let shown = format!("/{}", String::from_utf8_lossy(&path));
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            out.push(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let kind = if in_lowers(lowers, &path) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change { path: shown, kind });
        if ft != FileType::Directory {
            continue;
        }
        let child = rustix::fs::openat(
            dir,
            OsStr::from_bytes(&name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(&path, "opening the directory", e))?;
        if stack.len() >= fsops::MAX_DEPTH {
            return Err(fail(&path, "walking (tree too deep)", Errno::LOOP));
        }
        let names = list(child.as_fd(), &path)?;
        stack.push(Frame {
            fd: Some(child),
            names,
            base: path.len(),
        });
    }
    Ok(())
}

/// Whether the top-most lower layer that knows `path` has it (a whiteout there means it
/// was already deleted below us).
fn in_lowers(lowers: &mut [Root], path: &[u8]) -> bool {
    let (parent, name) = crate::path::split(path);
    for root in lowers.iter_mut() {
        let dir = match root.dir(parent, false) {
            Ok(d) => d,
            Err(ResolveError::NotFound | ResolveError::NotDir) => continue,
            Err(_) => continue,
        };
        match rustix::fs::statat(
            dir.as_fd(),
            OsStr::from_bytes(name),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => {
                let ft = FileType::from_raw_mode(st.st_mode);
                return !(ft == FileType::CharacterDevice && st.st_rdev == 0);
            }
            Err(_) => continue,
        }
    }
    false
}
