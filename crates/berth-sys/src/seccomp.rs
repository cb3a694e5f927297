//! Loading a compiled seccomp BPF program with `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! Compiling a profile (libseccomp) happens once, outside the container's process; this
//! module only installs the raw program, which is what lets `berth-container` cache compiled
//! filters by content hash and skip libseccomp on later starts.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `SECCOMP_FILTER_FLAG_TSYNC`
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Decodes a program exported by libseccomp (`seccomp_export_bpf`: native-endian
/// `struct sock_filter` records). Fails if the length is not a whole number of instructions.
pub fn program_from_bytes(bytes: &[u8]) -> io::Result<Vec<SockFilter>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "seccomp program of {} bytes is not a whole number of 8-byte instructions",
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Encodes a program back to bytes (for the on-disk cache).
pub fn program_to_bytes(program: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Installs `program` as a seccomp filter of the calling thread (or process with
/// [`FLAG_TSYNC`]). With [`FLAG_NEW_LISTENER`] the kernel returns the notification fd.
///
/// The caller must have `no_new_privs` set or `CAP_SYS_ADMIN`.
pub fn set_mode_filter(program: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const SockFilter,
    }
    let len = libc::c_ushort::try_from(program.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp program longer than 65535",
        )
    })?;
    let prog = SockFprog {
        len,
        filter: program.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    // SAFETY: `prog` points to `program`, which is borrowed for the duration of the call and
    // has exactly `len` instructions; the kernel copies the program before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_uint,
            &prog as *const SockFprog,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the return value is a new descriptor we now own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_bytes_round_trip() {
        let p = vec![
            SockFilter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            SockFilter {
                code: 0x06,
                jt: 1,
                jf: 2,
                k: 0x7fff_0000,
            },
        ];
        let b = program_to_bytes(&p);
        assert_eq!(b.len(), 16);
        assert_eq!(program_from_bytes(&b).unwrap(), p);
        assert!(program_from_bytes(&b[..15]).is_err());
        assert!(program_from_bytes(&[]).is_err());
    }
}
