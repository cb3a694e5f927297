//! Applying a layer tar to a directory.
//!
//! One pass over the stream, one fixed buffer: each entry is created as it is read, file data
//! goes from the read buffer straight into `write(2)`, and the diff ID is hashed below the
//! buffer so it covers every byte of the uncompressed stream (trailing zero blocks included).
//!
//! Order of work per entry (as Docker, with the differences documented in `docs/archive.md`):
//! clean the name lexically → resolve the parent beneath the root (creating implied
//! directories) → remove whatever is in the way unless a directory meets a directory →
//! create → data → owner → mode (after the owner: `chown` clears setuid) → xattrs → times.
//! Directory modes and times are set at the end, after their content stopped changing them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::error::{EntryError, Error, Result, entry_err, entry_io};
use crate::fsops::{self, ResolveError, Root};
use crate::path::{clean, split, symlink_target_escapes};
use crate::tar_read::{Entry, Kind, Source, TarReader, Time};
use crate::{ApplyOptions, ApplyStats, WhiteoutMode, decompress};

/// Read buffer size. Measured on the bench's fat layer (tmpfs, so CPU-bound): 64 KiB keeps
/// the data in the CPU cache between the read, the hash and the write; 1 MiB buffers cost
/// ~35% more system time for the same syscall count.
const BUF_SIZE: usize = 64 << 10;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

pub(crate) fn apply_layer(r: impl Read, dest: &Path, opts: &ApplyOptions) -> Result<ApplyStats> {
    let mut applier = Applier::new(dest, opts)?;
    let (_, stream) = decompress(r)?;
    let mut tar = TarReader::new(Source::new(stream, BUF_SIZE, opts.max_total_size, true));
    let mut entries: u64 = 0;
    while let Some(entry) = tar.next_entry()? {
        entries += 1;
        if entries > opts.max_entries {
            return Err(Error::TooManyEntries {
                limit: opts.max_entries,
            });
        }
        applier.entry(entry, &mut tar)?;
    }
    let (diff_id, uncompressed_size) = tar.drain()?;
    applier.finish()?;
    Ok(ApplyStats {
        diff_id,
        uncompressed_size,
        entries,
    })
}

/// A directory whose mode and times are set once the stream is done.
struct DeferredDir {
    path: Vec<u8>,
    mtime: Time,
    /// Set when the mode could not be applied at creation (non-root, no owner write bit).
    mode: Option<u32>,
}

struct Applier<'o> {
    opts: &'o ApplyOptions,
    root: Root,
    dest: &'o Path,
    is_root: bool,
    umask: Option<u32>,
    /// The owner a newly created entry gets without `chown` (our euid/egid), when that is
    /// certain: the destination started empty and not setgid. `None`: always `chown`.
    default_owner: Option<(u64, u64)>,
    /// A directory of this layer carries setgid, so entries created below it may take its
    /// group instead of our egid: `chown` every entry from then on.
    setgid_seen: bool,
    dirs: Vec<DeferredDir>,
    /// Delete mode only: every path this layer created, so that an opaque marker removes
    /// lower content but not what the layer itself put there.
    unpacked: Option<HashSet<Vec<u8>>>,
}

fn times(t: Time) -> Timestamps {
    let ts = Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos.into(),
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

fn name_os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

impl<'o> Applier<'o> {
    fn new(dest: &'o Path, opts: &'o ApplyOptions) -> Result<Self> {
        let root = Root::open(dest).map_err(|source| Error::Path {
            path: dest.to_path_buf(),
            op: "opening the destination directory",
            source,
        })?;
        let default_owner = fresh_owner(root.fd());
        Ok(Applier {
            opts,
            root,
            dest,
            is_root: rustix::process::geteuid().is_root(),
            umask: fsops::current_umask(),
            default_owner,
            setgid_seen: false,
            dirs: Vec::new(),
            unpacked: match opts.whiteouts {
                WhiteoutMode::Delete => Some(HashSet::new()),
                WhiteoutMode::Overlay => None,
            },
        })
    }

    fn resolve_err(&self, raw: &[u8], e: ResolveError) -> Error {
        match e {
            ResolveError::Escape => entry_err(raw, EntryError::SymlinkEscape),
            ResolveError::Loop => entry_err(raw, EntryError::SymlinkLoop),
            ResolveError::NotDir => entry_err(raw, EntryError::ParentNotDirectory),
            ResolveError::NotFound => entry_io(
                raw,
                "resolving the parent directory (a dangling symlink?)",
                Errno::NOENT,
            ),
            ResolveError::Io(e) => entry_io(raw, "resolving the parent directory", e),
        }
    }

    fn parent(&mut self, raw: &[u8], parent: &[u8]) -> Result<std::rc::Rc<OwnedFd>> {
        self.root
            .dir(parent, true)
            .map_err(|e| self.resolve_err(raw, e))
    }

    fn entry<R: Read>(&mut self, e: Entry, tar: &mut TarReader<R>) -> Result<()> {
        let path = clean(&e.name).map_err(|r| entry_err(&e.name, r))?;
        if path.is_empty() {
            // The root itself ("./"): Docker leaves the destination's own metadata alone.
            return if e.kind == Kind::Dir {
                Ok(())
            } else {
                Err(entry_err(&e.name, EntryError::RootNotDirectory))
            };
        }
        let remaining_budget = self.opts.max_total_size.saturating_sub(tar.offset());
        if e.size > remaining_budget {
            return Err(entry_err(
                &e.name,
                EntryError::TooLarge {
                    size: e.size,
                    remaining: remaining_budget,
                },
            ));
        }
        // A sparse file's apparent size counts too: a 1 TiB hole costs no disk here, but
        // everything that later reads the file (export, commit) would read 1 TiB of zeros.
        if let Some(sparse) = &e.sparse
            && sparse.real_size > self.opts.max_total_size
        {
            return Err(entry_err(
                &e.name,
                EntryError::TooLarge {
                    size: sparse.real_size,
                    remaining: self.opts.max_total_size,
                },
            ));
        }
        let (parent, base) = split(&path);
        if base.starts_with(WHITEOUT_PREFIX) {
            if base == WHITEOUT_OPAQUE {
                return self.opaque(&e, parent);
            }
            // aufs metadata (.wh..wh.plnk, .wh..wh.aufs) lives at the top level; Docker
            // skips it, and so do we.
            if path.starts_with(WHITEOUT_META_PREFIX) {
                return Ok(());
            }
            return self.whiteout(&e, parent, &base[WHITEOUT_PREFIX.len()..]);
        }
        if path.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(()); // inside an aufs metadata directory
        }
        match e.kind {
            Kind::File => self.file(&e, &path, tar)?,
            Kind::Dir => self.dir(&e, &path)?,
            Kind::Symlink => self.symlink(&e, &path)?,
            Kind::Hardlink => self.hardlink(&e, &path)?,
            Kind::Char | Kind::Block | Kind::Fifo => self.node(&e, &path)?,
        }
        if let Some(set) = &mut self.unpacked {
            set.insert(path);
        }
        Ok(())
    }

    /// Removes whatever is at `name` (recursively), for an entry that replaces it.
    fn clear(&mut self, raw: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> Result<()> {
        self.root.invalidate();
        fsops::remove_at(dir, name_os(name))
            .map_err(|err| entry_io(raw, "removing the existing entry it replaces", err))
    }

    fn file<R: Read>(&mut self, e: &Entry, path: &[u8], tar: &mut TarReader<R>) -> Result<()> {
        let (parent, name) = split(path);
        let pfd = self.parent(&e.name, parent)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let create_mode = Mode::from_raw_mode(e.mode & 0o777);
        let fd = match rustix::fs::openat(pfd.as_fd(), name_os(name), flags, create_mode) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => {
                self.clear(&e.name, pfd.as_fd(), name)?;
                rustix::fs::openat(pfd.as_fd(), name_os(name), flags, create_mode)
                    .map_err(|err| entry_io(&e.name, "creating the file", err))?
            }
            Err(err) => return Err(entry_io(&e.name, "creating the file", err)),
        };
        let mut file = File::from(fd);
        if let Err(err) = write_data(&mut file, e, tar) {
            drop(file);
            // Nothing half-written: a file cut short by a bad stream does not stay behind.
            let _ = rustix::fs::unlinkat(pfd.as_fd(), name_os(name), AtFlags::empty());
            return Err(err);
        }
        let needs_chmod = e.mode & 0o7000 != 0 || self.umask.is_none_or(|u| e.mode & u != 0);
        self.set_owner_mode_xattrs(e, file.as_fd(), needs_chmod, true)?;
        rustix::fs::futimens(&file, &times(e.mtime))
            .map_err(|err| entry_io(&e.name, "setting the modification time", err))?;
        Ok(())
    }

    /// Whether a just-created entry needs `chown` to get the header's owner: not when it
    /// already has it (the common case of root-owned layers unpacked by root, ~8000 saved
    /// syscalls and inode updates for a large image).
    fn needs_chown(&self, e: &Entry, fresh: bool) -> bool {
        self.opts.preserve_ownership
            && !(fresh && !self.setgid_seen && self.default_owner == Some((e.uid, e.gid)))
    }

    /// Owner, mode and xattrs through an open fd. `fresh`: the entry was just created by us
    /// (not an existing directory met again).
    fn set_owner_mode_xattrs(
        &self,
        e: &Entry,
        fd: BorrowedFd<'_>,
        chmod: bool,
        fresh: bool,
    ) -> Result<()> {
        if self.needs_chown(e, fresh) {
            rustix::fs::fchown(fd, Some(uid(e)?), Some(gid(e)?))
                .map_err(|err| entry_io(&e.name, "setting the owner", err))?;
        }
        if chmod {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(e.mode & 0o7777))
                .map_err(|err| entry_io(&e.name, "setting the mode", err))?;
        }
        for (k, v) in &e.xattrs {
            if skip_xattr(k) {
                continue;
            }
            let res = rustix::fs::fsetxattr(fd, name_os(k), v, XattrFlags::empty());
            self.xattr_result(e, k, res)?;
        }
        Ok(())
    }

    fn xattr_result(&self, e: &Entry, key: &[u8], res: rustix::io::Result<()>) -> Result<()> {
        match res {
            Ok(()) => Ok(()),
            // As Docker: a filesystem without xattrs, or a namespace we may not write
            // (trusted.* and security.* when not root), loses the attribute with a warning.
            Err(err @ (Errno::OPNOTSUPP | Errno::PERM)) => {
                tracing::warn!(
                    entry = %crate::error::display_name(&e.name),
                    xattr = %String::from_utf8_lossy(key),
                    "extended attribute not applied: {err}"
                );
                Ok(())
            }
            Err(err) => Err(entry_io(&e.name, "setting an extended attribute", err)),
        }
    }

    fn dir(&mut self, e: &Entry, path: &[u8]) -> Result<()> {
        let (parent, name) = split(path);
        let pfd = self.parent(&e.name, parent)?;
        let owner_can_write = e.mode & 0o700 == 0o700;
        // Non-root cannot fill a directory without owner rwx: create it usable, fix the
        // mode at the end (like GNU tar's delayed set_stat).
        let defer_mode = !self.is_root && !owner_can_write;
        let create_mode = if defer_mode { 0o700 } else { e.mode & 0o777 };
        if e.mode & 0o2000 != 0 {
            self.setgid_seen = true;
        }
        let mut fresh = true;
        match rustix::fs::mkdirat(pfd.as_fd(), name_os(name), Mode::from_raw_mode(create_mode)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                fresh = false;
                let st = rustix::fs::statat(pfd.as_fd(), name_os(name), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| entry_io(&e.name, "inspecting the existing entry", err))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.clear(&e.name, pfd.as_fd(), name)?;
                    rustix::fs::mkdirat(
                        pfd.as_fd(),
                        name_os(name),
                        Mode::from_raw_mode(create_mode),
                    )
                    .map_err(|err| entry_io(&e.name, "creating the directory", err))?;
                }
            }
            Err(err) => return Err(entry_io(&e.name, "creating the directory", err)),
        }
        let dfd = rustix::fs::openat(
            pfd.as_fd(),
            name_os(name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| entry_io(&e.name, "opening the directory", err))?;
        // Always chmod: a new directory inherits setgid from its parent, and an existing
        // one has whatever mode it had.
        self.set_owner_mode_xattrs(e, dfd.as_fd(), !defer_mode, fresh)?;
        self.dirs.push(DeferredDir {
            path: path.to_vec(),
            mtime: e.mtime,
            mode: defer_mode.then_some(e.mode & 0o7777),
        });
        self.root.remember(path, dfd);
        Ok(())
    }

    fn symlink(&mut self, e: &Entry, path: &[u8]) -> Result<()> {
        if e.link.is_empty() {
            return Err(entry_err(&e.name, EntryError::EmptySymlinkTarget));
        }
        if e.link.contains(&0) {
            return Err(entry_err(&e.name, EntryError::NulInName));
        }
        if symlink_target_escapes(path, &e.link) {
            return Err(entry_err(
                &e.name,
                EntryError::SymlinkTargetEscapes {
                    target: crate::error::display_name(&e.link),
                },
            ));
        }
        let (parent, name) = split(path);
        let pfd = self.parent(&e.name, parent)?;
        let target = name_os(&e.link);
        match rustix::fs::symlinkat(target, pfd.as_fd(), name_os(name)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.clear(&e.name, pfd.as_fd(), name)?;
                rustix::fs::symlinkat(target, pfd.as_fd(), name_os(name))
                    .map_err(|err| entry_io(&e.name, "creating the symlink", err))?;
            }
            Err(err) => return Err(entry_io(&e.name, "creating the symlink", err)),
        }
        self.finish_nonfile(e, pfd.as_fd(), name, false)
    }

    /// Owner, mode (for nodes), xattrs and times of an entry that cannot be opened (a
    /// symlink or a device node), through its parent directory.
    fn finish_nonfile(
        &mut self,
        e: &Entry,
        pfd: BorrowedFd<'_>,
        name: &[u8],
        chmod: bool,
    ) -> Result<()> {
        // Symlinks and nodes are always created anew (whatever was there is removed first).
        if self.needs_chown(e, true) {
            rustix::fs::chownat(
                pfd,
                name_os(name),
                Some(uid(e)?),
                Some(gid(e)?),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|err| entry_io(&e.name, "setting the owner", err))?;
        }
        if chmod {
            // fchmodat follows symlinks; the node was just created by us in a directory we
            // hold open, so the name is not a symlink.
            rustix::fs::chmodat(
                pfd,
                name_os(name),
                Mode::from_raw_mode(e.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|err| entry_io(&e.name, "setting the mode", err))?;
        }
        for (k, v) in &e.xattrs {
            if skip_xattr(k) {
                continue;
            }
            let res = rustix::fs::lsetxattr(
                fsops::proc_path(pfd, name),
                name_os(k),
                v,
                XattrFlags::empty(),
            );
            self.xattr_result(e, k, res)?;
        }
        rustix::fs::utimensat(
            pfd,
            name_os(name),
            &times(e.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|err| entry_io(&e.name, "setting the modification time", err))?;
        Ok(())
    }

    fn hardlink(&mut self, e: &Entry, path: &[u8]) -> Result<()> {
        let shown = || crate::error::display_name(&e.link);
        let target = match clean(&e.link) {
            Ok(t) => t,
            Err(EntryError::EscapesRoot) => {
                return Err(entry_err(
                    &e.name,
                    EntryError::HardlinkEscapes { target: shown() },
                ));
            }
            Err(r) => return Err(entry_err(&e.name, r)),
        };
        if target.is_empty() {
            return Err(entry_err(
                &e.name,
                EntryError::HardlinkToDirectory { target: shown() },
            ));
        }
        if target == path {
            return Err(entry_err(&e.name, EntryError::HardlinkToSelf));
        }
        let (tparent, tname) = split(&target);
        let tfd = match self.root.dir(tparent, false) {
            Ok(fd) => fd,
            Err(ResolveError::NotFound) => {
                return Err(entry_err(
                    &e.name,
                    EntryError::HardlinkTargetMissing { target: shown() },
                ));
            }
            Err(ResolveError::Escape) => {
                return Err(entry_err(
                    &e.name,
                    EntryError::HardlinkEscapes { target: shown() },
                ));
            }
            Err(err) => return Err(self.resolve_err(&e.name, err)),
        };
        let (parent, name) = split(path);
        let pfd = self.parent(&e.name, parent)?;
        let link = |tfd: &OwnedFd, pfd: &OwnedFd| {
            rustix::fs::linkat(
                tfd.as_fd(),
                name_os(tname),
                pfd.as_fd(),
                name_os(name),
                AtFlags::empty(),
            )
        };
        let mut res = link(&tfd, &pfd);
        if res == Err(Errno::EXIST) {
            self.clear(&e.name, pfd.as_fd(), name)?;
            // The removal may have removed the target's directory too (`a` linked under
            // itself): resolve it again.
            let tfd = match self.root.dir(tparent, false) {
                Ok(fd) => fd,
                Err(_) => {
                    return Err(entry_err(
                        &e.name,
                        EntryError::HardlinkTargetMissing { target: shown() },
                    ));
                }
            };
            res = link(&tfd, &pfd);
        }
        match res {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(entry_err(
                &e.name,
                EntryError::HardlinkTargetMissing { target: shown() },
            )),
            Err(err @ (Errno::PERM | Errno::ISDIR)) => {
                let is_dir =
                    rustix::fs::statat(tfd.as_fd(), name_os(tname), AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
                if is_dir {
                    Err(entry_err(
                        &e.name,
                        EntryError::HardlinkToDirectory { target: shown() },
                    ))
                } else {
                    Err(entry_io(&e.name, "creating the hardlink", err))
                }
            }
            Err(err) => Err(entry_io(&e.name, "creating the hardlink", err)),
        }
    }

    fn node(&mut self, e: &Entry, path: &[u8]) -> Result<()> {
        let file_type = match e.kind {
            Kind::Char => FileType::CharacterDevice,
            Kind::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        if file_type != FileType::Fifo && !self.is_root {
            return Err(entry_err(&e.name, EntryError::DeviceNotPermitted));
        }
        let (parent, name) = split(path);
        let pfd = self.parent(&e.name, parent)?;
        let dev = rustix::fs::makedev(e.dev_major, e.dev_minor);
        let mode = Mode::from_raw_mode(e.mode & 0o777);
        let make =
            |pfd: &OwnedFd| rustix::fs::mknodat(pfd.as_fd(), name_os(name), file_type, mode, dev);
        let mut res = make(&pfd);
        if res == Err(Errno::EXIST) {
            self.clear(&e.name, pfd.as_fd(), name)?;
            res = make(&pfd);
        }
        match res {
            Ok(()) => {}
            Err(Errno::PERM) if file_type != FileType::Fifo => {
                return Err(entry_err(&e.name, EntryError::DeviceNotPermitted));
            }
            Err(err) => return Err(entry_io(&e.name, "creating the device node", err)),
        }
        let chmod = e.mode & 0o7000 != 0 || self.umask.is_none_or(|u| e.mode & u != 0);
        self.finish_nonfile(e, pfd.as_fd(), name, chmod)
    }

    /// `.wh.<name>`: the layer deletes `<name>` from the layers below.
    fn whiteout(&mut self, e: &Entry, parent: &[u8], target: &[u8]) -> Result<()> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(entry_err(
                &e.name,
                EntryError::BadWhiteout {
                    name: crate::error::display_name(target),
                },
            ));
        }
        match self.opts.whiteouts {
            WhiteoutMode::Delete => {
                let pfd = match self.root.dir(parent, false) {
                    Ok(fd) => fd,
                    // Nothing below to delete.
                    Err(ResolveError::NotFound) => return Ok(()),
                    Err(err) => return Err(self.resolve_err(&e.name, err)),
                };
                self.clear(&e.name, pfd.as_fd(), target)
            }
            WhiteoutMode::Overlay => {
                let pfd = self.parent(&e.name, parent)?;
                let make = |pfd: &OwnedFd| {
                    rustix::fs::mknodat(
                        pfd.as_fd(),
                        name_os(target),
                        FileType::CharacterDevice,
                        Mode::empty(),
                        rustix::fs::makedev(0, 0),
                    )
                };
                let mut res = make(&pfd);
                if res == Err(Errno::EXIST) {
                    self.clear(&e.name, pfd.as_fd(), target)?;
                    res = make(&pfd);
                }
                match res {
                    Ok(()) => {}
                    Err(Errno::PERM) => {
                        return Err(entry_err(
                            &e.name,
                            EntryError::WhiteoutNotPermitted("mknod of a 0:0 device".into()),
                        ));
                    }
                    Err(err) => return Err(entry_io(&e.name, "creating the whiteout", err)),
                }
                if self.needs_chown(e, true) {
                    rustix::fs::chownat(
                        pfd.as_fd(),
                        name_os(target),
                        Some(uid(e)?),
                        Some(gid(e)?),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(|err| entry_io(&e.name, "setting the owner", err))?;
                }
                Ok(())
            }
        }
    }

    /// `.wh..wh..opq`: the directory hides everything below it from lower layers.
    fn opaque(&mut self, e: &Entry, dir: &[u8]) -> Result<()> {
        match self.opts.whiteouts {
            WhiteoutMode::Overlay => {
                let fd = self
                    .root
                    .open_dir(dir, true)
                    .map_err(|err| self.resolve_err(&e.name, err))?;
                match rustix::fs::fsetxattr(&fd, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty()) {
                    Ok(()) => Ok(()),
                    Err(Errno::PERM) => Err(entry_err(
                        &e.name,
                        EntryError::WhiteoutNotPermitted(format!("setting {OVERLAY_OPAQUE_XATTR}")),
                    )),
                    Err(err) => Err(entry_io(&e.name, "marking the directory opaque", err)),
                }
            }
            WhiteoutMode::Delete => {
                let fd = match self.root.open_dir(dir, false) {
                    Ok(fd) => fd,
                    Err(ResolveError::NotFound) => return Ok(()),
                    Err(err) => return Err(self.resolve_err(&e.name, err)),
                };
                self.root.invalidate();
                let unpacked = self.unpacked.as_ref();
                fsops::remove_children(fd.as_fd(), |child| {
                    let mut p = dir.to_vec();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(child);
                    !unpacked.is_some_and(|set| set.contains(&p))
                })
                .map_err(|err| entry_io(&e.name, "removing the directory's lower content", err))
            }
        }
    }

    /// Directory modes and times, now that nothing is created in them any more; then sync.
    fn finish(&mut self) -> Result<()> {
        self.root.invalidate();
        let dirs = std::mem::take(&mut self.dirs);
        for d in &dirs {
            let (parent, name) = split(&d.path);
            // A later entry may have removed or replaced the directory: nothing to do then.
            let Ok(pfd) = self.root.dir(parent, false) else {
                continue;
            };
            let raw = &d.path;
            match d.mode {
                None => match rustix::fs::utimensat(
                    pfd.as_fd(),
                    name_os(name),
                    &times(d.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(err) => return Err(entry_io(raw, "setting the directory time", err)),
                },
                Some(mode) => {
                    let fd = match rustix::fs::openat(
                        pfd.as_fd(),
                        name_os(name),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                        Err(err) => return Err(entry_io(raw, "opening the directory", err)),
                    };
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                        .map_err(|err| entry_io(raw, "setting the mode", err))?;
                    rustix::fs::futimens(&fd, &times(d.mtime))
                        .map_err(|err| entry_io(raw, "setting the directory time", err))?;
                }
            }
        }
        if self.opts.sync {
            rustix::fs::syncfs(self.root.fd()).map_err(|err| Error::Path {
                path: self.dest.to_path_buf(),
                op: "syncing the filesystem",
                source: err.into(),
            })?;
        }
        Ok(())
    }
}

/// Our euid/egid when every entry we create under `root` gets exactly them: `root` is empty
/// (nothing in it was made by someone else) and not setgid (new entries would take its
/// group). Directories with setgid created later are tracked by the applier.
fn fresh_owner(root: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(root).ok()?;
    if st.st_mode & 0o2000 != 0 {
        return None;
    }
    // Reads through its own descriptor: the root's offset stays untouched.
    let mut dir = rustix::fs::Dir::read_from(root).ok()?;
    let empty =
        dir.all(|ent| ent.is_ok_and(|ent| matches!(ent.file_name().to_bytes(), b"." | b"..")));
    empty.then(|| {
        (
            rustix::process::geteuid().as_raw().into(),
            rustix::process::getegid().as_raw().into(),
        )
    })
}

fn uid(e: &Entry) -> Result<rustix::fs::Uid> {
    u32::try_from(e.uid)
        .ok()
        .filter(|&u| u != u32::MAX)
        .map(rustix::fs::Uid::from_raw)
        .ok_or_else(|| {
            entry_err(
                &e.name,
                EntryError::BadHeader(format!("uid {} is out of range", e.uid)),
            )
        })
}

fn gid(e: &Entry) -> Result<rustix::fs::Gid> {
    u32::try_from(e.gid)
        .ok()
        .filter(|&g| g != u32::MAX)
        .map(rustix::fs::Gid::from_raw)
        .ok_or_else(|| {
            entry_err(
                &e.name,
                EntryError::BadHeader(format!("gid {} is out of range", e.gid)),
            )
        })
}

/// Attributes a layer must not carry: overlayfs' own (a layer could otherwise fake opaque
/// directories or redirects behind our back; whiteouts have their own tar form).
pub(crate) fn skip_xattr(key: &[u8]) -> bool {
    key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.")
}

fn write_data<R: Read>(file: &mut File, e: &Entry, tar: &mut TarReader<R>) -> Result<()> {
    match &e.sparse {
        None => {
            while tar.remaining() > 0 {
                let chunk = tar.data()?;
                let n = chunk.len();
                file.write_all(chunk)
                    .map_err(|err| entry_io(&e.name, "writing file data", err))?;
                tar.consume(n);
            }
        }
        Some(sparse) => {
            for &(offset, len) in &sparse.segments {
                let mut done = 0u64;
                while done < len {
                    let chunk = tar.data()?;
                    let n = (chunk.len() as u64).min(len - done) as usize;
                    file.write_all_at(&chunk[..n], offset + done)
                        .map_err(|err| entry_io(&e.name, "writing file data", err))?;
                    tar.consume(n);
                    done += n as u64;
                }
            }
            // Holes at the end (and a file that is all hole) need the size set explicitly.
            rustix::fs::ftruncate(&*file, sparse.real_size)
                .map_err(|err| entry_io(&e.name, "setting the sparse file's size", err))?;
        }
    }
    Ok(())
}
