//! Faulting a process's own mappings in ahead of use (`MADV_POPULATE_READ`/`_WRITE`).
//!
//! A standby shim is forked from the zygote and then waits, idle, for a container. `fork`
//! copies no page-table entries of file mappings (the kernel refills them on fault) and
//! leaves anonymous pages shared copy-on-write, so the container's setup used to begin with
//! ~150 page faults (text, libraries, heap, stack), ~0.4 ms of CPU on the start's critical
//! path. Faulted in while the standby waits, they are paid off that path.

use std::io;

/// What [`prefault_mappings`] did, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Prefaulted {
    /// Read-only mappings populated for reading (text, read-only data).
    pub read: usize,
    /// Private writable mappings populated for writing (data, heap, stack), copy-on-write
    /// broken.
    pub written: usize,
    /// Mappings left as they were: larger than the cap, shared writable, special, or the
    /// kernel refused (older than Linux 5.14, or a mapping it cannot populate).
    pub skipped: usize,
}

/// Populates every readable mapping of the calling process: read-only ones for reading, and
/// private writable ones of at most `max_writable` bytes for writing (so a large reserved
/// region is not committed). Shared writable mappings and the kernel's special ones
/// (`[vvar]`, `[vdso]`, `[vsyscall]`) are left alone. Contents never change; only page
/// tables are filled and copy-on-write pages copied.
pub fn prefault_mappings(max_writable: usize) -> io::Result<Prefaulted> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut done = Prefaulted::default();
    for line in maps.lines() {
        let Some(m) = Mapping::parse(line) else {
            continue;
        };
        let len = m.end - m.start;
        let advice = match m.kind() {
            Kind::Read => rustix::mm::Advice::LinuxPopulateRead,
            Kind::Write if len <= max_writable => rustix::mm::Advice::LinuxPopulateWrite,
            _ => {
                done.skipped += len;
                continue;
            }
        };
        // SAFETY: the range is exactly one of this process's own mappings; populating it
        // neither changes its contents nor its protection, so no Rust reference to memory
        // in it is affected. A mapping that went away since the read fails with ENOMEM.
        let r = unsafe { rustix::mm::madvise(m.start as *mut std::ffi::c_void, len, advice) };
        match (r, advice) {
            (Ok(()), rustix::mm::Advice::LinuxPopulateRead) => done.read += len,
            (Ok(()), _) => done.written += len,
            (Err(_), _) => done.skipped += len,
        }
    }
    Ok(done)
}

/// One line of `/proc/self/maps`.
struct Mapping<'a> {
    start: usize,
    end: usize,
    perms: &'a [u8],
    path: &'a str,
}

enum Kind {
    Read,
    Write,
    Leave,
}

impl<'a> Mapping<'a> {
    /// `start-end perms offset dev inode [path]`.
    fn parse(line: &'a str) -> Option<Mapping<'a>> {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?.as_bytes();
        let path = fields.nth(3).unwrap_or("").trim_start();
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            perms: perms.get(..4)?,
            path,
        })
        .filter(|m| m.end > m.start)
    }

    fn kind(&self) -> Kind {
        let special = self.path.starts_with('[')
            && !matches!(self.path, "[heap]" | "[stack]")
            && !self.path.starts_with("[anon");
        match self.perms {
            _ if special => Kind::Leave,
            [b'r', b'-', _, _] => Kind::Read,
            [b'r', b'w', _, b'p'] => Kind::Write,
            _ => Kind::Leave,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Rss` of the mapping that starts at `addr`, from `/proc/self/smaps`, in KiB.
    fn rss_kib(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{addr:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines.next().expect("the mapping is listed");
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .expect("its Rss")
    }

    const PAGE: usize = 4096;

    /// A private read-write mapping of `len` bytes between two inaccessible pages, so the
    /// kernel cannot merge it with a neighbour; its address.
    fn anon(len: usize) -> usize {
        // SAFETY: a fresh private anonymous reservation, touched by nobody but the kernel;
        // its middle is then made accessible.
        unsafe {
            let base = rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len + 2 * PAGE,
                rustix::mm::ProtFlags::empty(),
                rustix::mm::MapFlags::PRIVATE,
            )
            .unwrap();
            let mid = base.cast::<u8>().add(PAGE).cast();
            rustix::mm::mprotect(
                mid,
                len,
                rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE,
            )
            .unwrap();
            mid as usize
        }
    }

    fn unmap(addr: usize, len: usize) {
        // SAFETY: a reservation made by `anon`, unused from here on.
        unsafe { rustix::mm::munmap((addr - PAGE) as *mut _, len + 2 * PAGE) }.unwrap();
    }

    #[test]
    fn populates_small_private_mappings_and_leaves_large_ones() {
        let small = anon(64 * 1024);
        let large = anon(4 * 1024 * 1024);
        assert_eq!(rss_kib(small), 0, "untouched before");
        let done = prefault_mappings(1024 * 1024).unwrap();
        assert_eq!(
            rss_kib(small),
            64,
            "a 64 KiB private mapping is resident after"
        );
        assert_eq!(rss_kib(large), 0, "a mapping over the cap is not committed");
        assert!(done.written >= 64 * 1024, "{done:?}");
        assert!(done.read > 0, "the test binary's text: {done:?}");
        assert!(done.skipped >= 4 * 1024 * 1024, "{done:?}");
        unmap(small, 64 * 1024);
        unmap(large, 4 * 1024 * 1024);
    }

    #[test]
    fn parses_maps_lines_and_sorts_them() {
        let m = Mapping::parse(
            "00200000-002cb000 r--p 00000000 00:01 874    /memfd:berth-shim (deleted)",
        )
        .unwrap();
        assert_eq!((m.start, m.end), (0x200000, 0x2cb000));
        assert!(matches!(m.kind(), Kind::Read));
        let m = Mapping::parse("7ffd1000-7ffd3000 rw-p 00000000 00:00 0   [stack]").unwrap();
        assert!(matches!(m.kind(), Kind::Write));
        let m = Mapping::parse("7ffd1000-7ffd3000 r--p 00000000 00:00 0   [vvar]").unwrap();
        assert!(matches!(m.kind(), Kind::Leave));
        let m = Mapping::parse("7f001000-7f003000 rw-s 00000000 00:05 9   /dev/shm/x").unwrap();
        assert!(matches!(m.kind(), Kind::Leave), "shared writable");
        let m = Mapping::parse("7f001000-7f003000 ---p 00000000 00:00 0").unwrap();
        assert!(matches!(m.kind(), Kind::Leave), "a guard");
        let m = Mapping::parse("7f001000-7f003000 rw-p 00000000 00:00 0").unwrap();
        assert!(matches!(m.kind(), Kind::Write), "anonymous, no path");
        assert!(Mapping::parse("garbage").is_none());
        assert!(
            Mapping::parse("3000-1000 r--p 0 0 0").is_none(),
            "end before start"
        );
    }
}
