//! The thin layer that touches cgroupfs: single-write file updates, reads, mkdir, rmdir.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `value` with one `write(2)` (cgroup files take a value per write; a split write
/// would be two values).
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    let fail = |source: io::Error| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    let n = f.write(value.as_bytes()).map_err(fail)?;
    if n != value.len() {
        return Err(fail(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", value.len()),
        )));
    }
    Ok(())
}

/// Reads a whole (small) file: open, read until EOF, close. No `statx` for a size hint (cgroup
/// files report size 4096 or 0 anyway).
fn read_small(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads a whole (small) file.
pub(crate) fn read(path: &Path) -> Result<String> {
    read_small(path).map_err(|e| Error::io("read", path, e))
}

/// Reads a file that may legitimately be absent (controller not enabled, feature missing).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match read_small(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// A u64 from a one-value file ("max" → u64::MAX).
pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let s = read(path)?;
    crate::stats::parse_value(&s)
        .ok_or_else(|| Error::parse(path, format!("expected a number, found {:?}", s.trim())))
}

/// Like [`read_u64`], 0 when the file does not exist.
pub(crate) fn read_u64_opt(path: &Path) -> Result<u64> {
    match read_opt(path)? {
        Some(s) => crate::stats::parse_value(&s)
            .ok_or_else(|| Error::parse(path, format!("expected a number, found {:?}", s.trim()))),
        None => Ok(0),
    }
}

/// Creates `rel` below `base` one level at a time; returns the directories it created
/// (outermost first), so callers can initialize exactly those.
pub(crate) fn mkdir_levels(base: &Path, rel: &str) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut cur = base.to_path_buf();
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => created.push(cur.clone()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !cur.is_dir() {
                    return Err(Error::io(
                        "mkdir",
                        &cur,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "exists and is not a directory",
                        ),
                    ));
                }
            }
            Err(e) => return Err(Error::io("mkdir", &cur, e)),
        }
    }
    Ok(created)
}

/// Removes a cgroup directory and any sub-cgroups below it (deepest first). Retries EBUSY a
/// few times with a short backoff (the kernel reports busy while exiting tasks are still being
/// released); Ok when already gone.
pub(crate) fn remove_cgroup(dir: &Path) -> Result<()> {
    let mut delay_ms = 1;
    let mut waited = 0;
    let mut children_removed = false;
    loop {
        // The common case first: a leaf, one rmdir.
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY))
                    && !children_removed =>
            {
                // Sub-cgroups (made inside the container) keep it busy (ENOTEMPTY on a plain
                // directory tree such as a test fake): remove them first.
                children_removed = true;
                remove_children(dir)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < 1_000 => {
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                waited += delay_ms;
                delay_ms = (delay_ms * 2).min(100);
            }
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
    }
}

fn remove_children(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path())?;
        }
    }
    Ok(())
}

/// Pids listed in `cgroup.procs` of `dir` and every sub-cgroup below it.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let Some(text) = read_opt(&procs)? else {
        return Ok(());
    };
    for l in text.lines() {
        out.push(
            l.trim()
                .parse()
                .map_err(|_| Error::parse(&procs, format!("not a pid: {l:?}")))?,
        );
    }
    for e in std::fs::read_dir(dir)
        .map_err(|e| Error::io("read directory", dir, e))?
        .flatten()
    {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            procs_recursive(&e.path(), out)?;
        }
    }
    Ok(())
}
