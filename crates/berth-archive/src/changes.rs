//! What a container changed, as `docker diff` lists it.
//!
//! The overlay upper directory holds everything the container wrote: a whiteout device is a
//! deletion; anything else is a modification when a lower layer has the same path (Docker
//! shows `C /etc` for a directory whose content changed) and an addition otherwise.
//! Deciding between the two needs the lower layers, hence [`changes_with_lowers`].

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
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
    let mut prefix = Vec::new();
    walk(
        upper,
        upper_root.fd(),
        &mut prefix,
        &mut lower_roots,
        &mut out,
    )?;
    out.sort();
    Ok(out)
}

fn walk(
    upper: &Path,
    dir: BorrowedFd<'_>,
    prefix: &mut Vec<u8>,
    lowers: &mut [Root],
    out: &mut Vec<Change>,
) -> Result<()> {
    let fail = |rel: &[u8], op: &'static str, e: Errno| Error::Path {
        path: upper.join(OsStr::from_bytes(rel)),
        op,
        source: e.into(),
    };
    let mut names = fsops::list_dir(dir).map_err(|e| fail(prefix, "listing", e))?;
    names.sort();
    for name in names {
        let base = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&name);
        let st = match rustix::fs::statat(dir, OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW)
        {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                prefix.truncate(base);
                continue;
            }
            Err(e) => return Err(fail(prefix, "lstat", e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let shown = format!("/{}", String::from_utf8_lossy(prefix));
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            out.push(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
        } else {
            let kind = if in_lowers(lowers, prefix) {
                ChangeKind::Modified
            } else {
                ChangeKind::Added
            };
            out.push(Change { path: shown, kind });
            if ft == FileType::Directory {
                let child = rustix::fs::openat(
                    dir,
                    OsStr::from_bytes(&name),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail(prefix, "opening the directory", e))?;
                walk(upper, child.as_fd(), prefix, lowers, out)?;
            }
        }
        prefix.truncate(base);
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
