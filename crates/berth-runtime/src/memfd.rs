//! CVE-2019-5736: a process of the runtime that a container's processes can see must not
//! expose the runtime's binary on the host, or the container could open `/proc/PID/exe` and
//! overwrite it. Such commands re-execute from a sealed memfd copy of the binary, unless
//! they already run from one (berthd spawns shims that way, so they pay nothing):
//!
//! - `exec`: the new process joins a populated pid namespace before it execs;
//! - `create`: the init waits (running our code) until `start`, while `exec` may add
//!   processes next to it;
//! - `run` only when the container shares a pid namespace (none, or one joined by path) or
//!   has startContainer hooks (a program from the image that runs before our init execs).
//!   With its own new pid namespace nothing but our init exists in it until the app is
//!   exec'd, so there is nobody to attack the binary, and the copy (milliseconds for a
//!   binary of several MB) is skipped on this hot path.
//!
//! A binary installed on a read-only mount needs no copy: writes through `/proc/PID/exe`
//! fail with EROFS (a reopen goes through the same mount, which the container cannot
//! remount). In addition the container's processes are non-dumpable until they exec (see
//! `berth-container`), so only holders of CAP_SYS_PTRACE could open their files at all.

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
        // `run` decides after reading its config (see `run_is_exposed`).
        return matches!(a, b"create" | b"exec");
    }
    false
}

/// Whether `run`'s init could be reached by another process before it execs (see the module
/// docs): no new pid namespace of its own, or startContainer hooks.
pub fn run_is_exposed(spec: &berth_oci::spec::runtime::Spec) -> bool {
    use berth_oci::spec::runtime::LinuxNamespaceType;
    let own_pid_ns = berth_oci::namespaces::creates(spec, LinuxNamespaceType::Pid);
    let start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .is_some_and(|h| !h.is_empty());
    !own_pid_ns || start_hooks
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!(
        "cannot run from a sealed copy of the runtime binary (protection against CVE-2019-5736): {what}: {e}"
    );
    std::process::exit(1)
}

/// Re-executes the current binary from a sealed memfd if this command enters a container.
pub fn ensure_sealed_copy() {
    if command_enters_container() {
        reexec_sealed();
    }
}

/// Re-executes the current binary (same arguments) from a sealed memfd copy, unless it
/// already runs from one. Only returns in the latter case.
pub fn reexec_sealed() {
    let mut exe = match std::fs::File::open("/proc/self/exe") {
        Ok(f) => f,
        Err(e) => fail("open /proc/self/exe", e),
    };
    if berth_sys::memfd::is_sealed(&exe) {
        return;
    }
    // Installed on a read-only mount, the binary cannot be written through /proc/PID/exe
    // either (any reopen goes through the same mount): no copy needed.
    if rustix::fs::fstatvfs(&exe)
        .is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
    {
        return;
    }
    let mem = match berth_sys::memfd::sealed_copy("berth-runtime", &mut exe) {
        Ok(m) => m,
        Err(e) => fail("copy and seal the binary", e),
    };
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
