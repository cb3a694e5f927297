//! Sealed in-memory copies of binaries (protection against CVE-2019-5736): a process that a
//! container can see runs from a memfd that nobody, root included, can write to.
//!
//! Sealing with `F_SEAL_WRITE` makes the kernel wait until no page of the memfd has an
//! extra reference. Right after the copy, pages can sit in another CPU's LRU batch for a
//! while (the copying thread migrated); under load that wait ends in EBUSY (seen in CI, 1
//! in ~10 000 execs). So the copy is first sealed with `F_SEAL_FUTURE_WRITE` (Linux 5.1),
//! which needs no wait and already refuses every later write and writable mapping, then
//! `F_SEAL_WRITE` is tried a few times; if the pages stay busy, the future-write seal
//! stands alone.

use rustix::fs::{MemfdFlags, SealFlags};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Attempts at `F_SEAL_WRITE` after the kernel's own wait (about 75 ms each) ended in EBUSY.
const WRITE_SEAL_ATTEMPTS: u32 = 3;

/// Copies everything `src` yields into a new memfd named `name` (close-on-exec) and seals it
/// against writes, growing, shrinking and further seal changes.
pub fn sealed_copy(name: &str, src: &mut impl Read) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = File::from(fd);
    io::copy(src, &mut file)?;
    file.flush()?;
    seal(file.as_fd())?;
    Ok(OwnedFd::from(file))
}

/// Whether `fd` is a memfd that refuses writes (sealed by [`sealed_copy`] or by another
/// runtime with `F_SEAL_WRITE`).
pub fn is_sealed(fd: impl AsFd) -> bool {
    rustix::fs::fcntl_get_seals(fd)
        .is_ok_and(|s| s.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE))
}

fn seal(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let size_seals = SealFlags::SHRINK | SealFlags::GROW;
    // Kernels before 5.1 lack the future-write seal (EINVAL): F_SEAL_WRITE must then succeed.
    let future = rustix::fs::fcntl_add_seals(fd, size_seals | SealFlags::FUTURE_WRITE).is_ok();
    let mut attempt = 0;
    loop {
        match rustix::fs::fcntl_add_seals(fd, size_seals | SealFlags::WRITE) {
            Ok(()) => break,
            Err(rustix::io::Errno::BUSY) if future && attempt + 1 >= WRITE_SEAL_ATTEMPTS => break,
            Err(rustix::io::Errno::BUSY | rustix::io::Errno::INTR)
                if attempt + 1 < WRITE_SEAL_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::fcntl_add_seals(fd, SealFlags::SEAL)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn the_copy_has_the_content_and_refuses_writes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let fd = sealed_copy("berth-sys-test", &mut data.as_slice()).unwrap();
        assert!(is_sealed(&fd));
        let file = File::from(fd);
        let mut back = vec![0; data.len() + 1];
        let n = file.read_at(&mut back, 0).unwrap();
        assert!(
            n == data.len() && back[..n] == data[..],
            "read back {n} bytes"
        );
        // Writes through this descriptor and through a reopen (what /proc/PID/exe gives an
        // attacker) fail, and so does adding or removing seals.
        let err = file.write_at(b"x", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let reopened = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let err = reopened.write_at(b"x", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert!(rustix::fs::fcntl_add_seals(&file, SealFlags::EXEC).is_err());
        assert_eq!(
            file.set_len(1).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
    }

    #[test]
    fn a_plain_file_is_not_sealed() {
        let f = tempfile::tempfile().unwrap();
        assert!(!is_sealed(&f));
    }
}
