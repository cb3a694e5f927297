//! CVE-2019-5736: a process of the runtime that enters a container must not expose the
//! runtime's binary on the host, or the container could open `/proc/PID/exe` and overwrite
//! it. Commands that enter containers (`create`, `run`, `exec`) therefore re-execute from a
//! sealed memfd copy of the binary, unless they already run from one (berthd spawns shims
//! that way, so they pay nothing). The copy is a few hundred microseconds of page-cache copy.

use rustix::fs::{MemfdFlags, SealFlags};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

/// Global options that take a value (so their value is not mistaken for the command).
const VALUE_FLAGS: [&str; 6] = [
    "--root",
    "--log",
    "--log-format",
    "--criu",
    "--rootless",
    "--seccomp-cache",
];

fn command_enters_container() -> bool {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.as_bytes();
        if a.starts_with(b"-") {
            if VALUE_FLAGS.iter().any(|f| a == f.as_bytes()) {
                args.next();
            }
            continue;
        }
        return matches!(a, b"create" | b"run" | b"exec");
    }
    false
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!(
        "cannot run from a sealed copy of the runtime binary (protection against CVE-2019-5736): {what}: {e}"
    );
    std::process::exit(1)
}

/// Re-executes the current binary from a sealed memfd if this command enters a container.
pub fn ensure_sealed_copy() {
    if !command_enters_container() {
        return;
    }
    let exe = match std::fs::File::open("/proc/self/exe") {
        Ok(f) => f,
        Err(e) => fail("open /proc/self/exe", e),
    };
    if rustix::fs::fcntl_get_seals(&exe).is_ok_and(|s| s.contains(SealFlags::WRITE)) {
        return;
    }
    let mem = match rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    ) {
        Ok(m) => m,
        Err(e) => fail("memfd_create", e),
    };
    let size = exe.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let mut left = size.max(1);
    loop {
        match rustix::fs::sendfile(&mem, &exe, None, left.max(1 << 20)) {
            Ok(0) => break,
            Ok(n) => left = left.saturating_sub(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => fail("copy the binary", e),
        }
    }
    if let Err(e) = rustix::fs::fcntl_add_seals(
        &mem,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    ) {
        fail("seal the copy", e);
    }
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    let argv_ref: Vec<&std::ffi::CStr> = argv.iter().map(|a| a.as_c_str()).collect();
    let envp_ref: Vec<&std::ffi::CStr> = envp.iter().map(|a| a.as_c_str()).collect();
    use rustix::fd::AsFd;
    let e = berth_sys::process::fexecve(mem.as_fd(), &argv_ref, &envp_ref);
    fail("execute the sealed copy", e)
}
