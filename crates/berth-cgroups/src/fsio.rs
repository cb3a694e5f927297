//! The thin layer that touches cgroupfs: single-write file updates, reads, mkdir, rmdir.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `value` with one `write(2)` (cgroup files take a value per write; a split write
/// would be two values).
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    write_seq([(path, value)])
}

/// Writes a file that may legitimately be absent (a feature this kernel lacks); Ok(false)
/// when it is.
pub(crate) fn write_opt(path: &Path, value: &str) -> Result<bool> {
    match write(path, value) {
        Ok(()) => Ok(true),
        Err(Error::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes each `(path, value)` in order, one `write(2)` per value, keeping the file open
/// while consecutive writes go to the same path: v1's `devices.allow` takes one rule per
/// write, so Docker's default rules cost one open/close instead of one per rule.
pub(crate) fn write_seq<'a>(writes: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Result<()> {
    let mut open: Option<(&Path, File)> = None;
    for (path, value) in writes {
        let fail = |source: io::Error| Error::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        };
        let f = match &mut open {
            Some((p, f)) if *p == path => f,
            _ => {
                let f = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .map_err(fail)?;
                &mut open.insert((path, f)).1
            }
        };
        let n = f.write(value.as_bytes()).map_err(fail)?;
        if n != value.len() {
            return Err(fail(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({n} of {} bytes)", value.len()),
            )));
        }
    }
    Ok(())
}

/// Reads a whole (small) file: open, read until EOF, close. No `statx` for a size hint (cgroup
/// and proc files report size 4096 or 0 anyway).
fn read_small(path: &Path) -> io::Result<String> {
    read_sized(path, 4096)
}

/// Reads a whole kernel-generated file into one buffer of `size` bytes (doubled only when
/// the content fills it): one `read(2)` for the data and one for EOF, where std's
/// `read_to_string` starts with a `statx` and 32-byte probes because procfs reports size 0.
pub(crate) fn read_sized(path: &Path, size: usize) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; size.max(64)];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
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

/// Creates `rel` below `base`; returns the directories it created (outermost first), so
/// callers can initialize exactly those.
///
/// The leaf first: a container's parent (`/berth`) nearly always exists, so one `mkdir`
/// does it. Only when the leaf's parent is missing (ENOENT) are the levels made one at a
/// time from the top.
pub(crate) fn mkdir_levels(base: &Path, rel: &str) -> Result<Vec<PathBuf>> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() {
        return Ok(Vec::new());
    }
    let leaf = base.join(comps.join("/"));
    match mkdir_one(&leaf) {
        Ok(made) => return Ok(if made { vec![leaf] } else { Vec::new() }),
        Err(Error::Io { ref source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut created = Vec::new();
    let mut cur = base.to_path_buf();
    for c in comps {
        cur.push(c);
        if mkdir_one(&cur)? {
            created.push(cur.clone());
        }
    }
    Ok(created)
}

/// `mkdir`; Ok(false) when a directory is already there.
fn mkdir_one(dir: &Path) -> Result<bool> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if dir.is_dir() {
                Ok(false)
            } else {
                Err(Error::io(
                    "mkdir",
                    dir,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ),
                ))
            }
        }
        Err(e) => Err(Error::io("mkdir", dir, e)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_seq_keeps_one_fd_per_run_of_the_same_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        // Control files exist; writes never create files.
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        // On a regular file the kept fd shows as appended values (a cgroup file parses each
        // write(2) on its own); a reopen truncates.
        write_seq([(a.as_path(), "x"), (a.as_path(), "y"), (b.as_path(), "z")]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "xy");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "z");
        write_seq([(a.as_path(), "1"), (b.as_path(), "2"), (a.as_path(), "3")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&a).unwrap(),
            "3",
            "reopened, truncated"
        );
        // A failing write names its own path and value; earlier ones stay done.
        let missing = tmp.path().join("no/such");
        let e = write_seq([(b.as_path(), "4"), (missing.as_path(), "5")]).unwrap_err();
        assert!(
            matches!(&e, Error::Write { path, value, .. } if *path == missing && value == "5"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "4");
    }

    #[test]
    fn mkdir_levels_reports_exactly_what_it_created() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        // Missing parents: every level, outermost first.
        assert_eq!(
            mkdir_levels(base, "p/q/r").unwrap(),
            [base.join("p"), base.join("p/q"), base.join("p/q/r")]
        );
        // Existing parent: just the leaf (one mkdir).
        assert_eq!(mkdir_levels(base, "p/q/s").unwrap(), [base.join("p/q/s")]);
        // Already there: nothing; empty components ignored.
        assert!(mkdir_levels(base, "/p//q/s/").unwrap().is_empty());
        assert!(mkdir_levels(base, "").unwrap().is_empty());
        // A file in the way, as leaf or as a level: a clear error.
        std::fs::write(base.join("f"), "").unwrap();
        for rel in ["f", "f/g"] {
            let e = mkdir_levels(base, rel).unwrap_err();
            assert!(e.to_string().contains("mkdir"), "{rel}: {e}");
        }
    }

    #[test]
    fn read_sized_grows_past_its_first_buffer() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("big");
        let text = "line of text\n".repeat(1000);
        std::fs::write(&p, &text).unwrap();
        assert_eq!(read_sized(&p, 100).unwrap(), text);
        assert_eq!(read_sized(&p, 1 << 20).unwrap(), text);
        let mi = read_sized(Path::new("/proc/self/mountinfo"), 64).unwrap();
        // (Not compared with a second read: other processes mount meanwhile.)
        assert!(
            mi.ends_with('\n') && mi.lines().all(|l| l.contains(" - ")),
            "{mi}"
        );
    }
}
