//! Process creation and the last steps before `execve`: `clone3`, `execveat`, `close_range`,
//! signal reset, `personality`, `ioprio_set`, `_exit`.
//!
//! These are the calls `rustix` and `nix` either lack or only offer in a form that is not safe
//! between `clone` and `exec` (for example glibc's `fork` runs `atfork` handlers; the raw
//! syscall does not).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The result of [`clone3`]: which side of the fork this is.
#[derive(Debug)]
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; the child has this pid (in the caller's pid namespace) and, when
    /// asked for, a pidfd referring to it.
    Parent { pid: i32, pidfd: Option<OwnedFd> },
}

/// `struct clone_args` of `<linux/sched.h>` (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_PIDFD`: return a pidfd for the child.
pub const CLONE_PIDFD: u64 = 0x1000;
/// `CLONE_PARENT`: the child's parent is the caller's parent.
pub const CLONE_PARENT: u64 = 0x8000;
/// `CLONE_INTO_CGROUP`: start the child in the cgroup v2 directory `cgroup_fd`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Creates a child process like `fork`, with extra `clone3` flags (namespaces,
/// `CLONE_PARENT`, `CLONE_PIDFD`, `CLONE_INTO_CGROUP`). The child gets `SIGCHLD` as its exit
/// signal, a copy of the address space and of the file descriptor table.
///
/// Falls back to `clone(2)` when `clone3` is unavailable (`ENOSYS`, e.g. under an older
/// seccomp profile); that fallback cannot return a pidfd or start in a cgroup, so those flags
/// make it fail instead.
///
/// # Safety
/// Same contract as `fork`: the calling process must be single-threaded, or the child must
/// restrict itself to async-signal-safe operations until it calls `execve` or `_exit`. The
/// child must never return from the function that called `clone3` into code that expects to
/// run only once (it should finish with `execve` or [`exit_now`]). glibc's cached thread id is
/// not updated in the child, so the child must not use pthread functions that rely on it
/// (`raise`, error-checking mutexes).
pub unsafe fn clone3(flags: u64, cgroup_fd: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags,
        // With CLONE_PARENT the kernel takes the caller's own exit signal and refuses one
        // here.
        exit_signal: if flags & CLONE_PARENT != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if flags & CLONE_PIDFD != 0 {
        args.pidfd = &mut pidfd as *mut RawFd as u64;
    }
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size we pass; the pidfd
    // pointer (if set) points to a live local. No CLONE_VM, so the child gets its own copy of
    // the address space and the stack pointer 0 means "same stack position", exactly like
    // fork. The caller upholds the fork contract documented above.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = if ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
        if flags & (CLONE_PIDFD | CLONE_INTO_CGROUP) != 0 || cgroup_fd.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        // SAFETY: raw clone(2) without CLONE_VM and with a null stack duplicates the caller
        // like fork; flags only add namespaces/CLONE_PARENT. Fork contract as above.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (if flags & CLONE_PARENT != 0 {
                    flags
                } else {
                    flags | libc::SIGCHLD as u64
                }) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    } else {
        ret
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            pidfd: (pidfd >= 0).then(|| {
                // SAFETY: the kernel just returned this new descriptor to us; we own it.
                unsafe { OwnedFd::from_raw_fd(pidfd) }
            }),
        }),
    }
}

/// Ends the calling process at once with `code`, without running atexit handlers or
/// flushing stdio buffers (which belong to the parent after a fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe, takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file open at `fd` (used to
/// run a sealed memfd copy of a binary). Only returns on failure.
pub fn fexecve(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> io::Error {
    let argv: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to NUL-terminated strings
    // that outlive the call (borrowed `CStr`s); the path is an empty C string literal.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    io::Error::last_os_error()
}

/// `execve(path, argv, envp)` with argument arrays prepared before `clone` (no allocation
/// here). Only returns on failure.
pub fn execve(path: &CStr, argv: &CStrArray, envp: &CStrArray) -> io::Error {
    // SAFETY: both pointer arrays are NULL-terminated and point into CStrings owned by the
    // borrowed `CStrArray`s, which outlive the call; path is a valid C string.
    unsafe {
        libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr());
    }
    io::Error::last_os_error()
}

/// A NULL-terminated `char *[]` built once (before `clone`), so the child can `execve`
/// without allocating. The pointers point into the owned `CString`s' heap buffers, which do
/// not move when the array is moved.
#[derive(Debug)]
pub struct CStrArray {
    strings: Vec<std::ffi::CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrArray {
    pub fn new(strings: Vec<std::ffi::CString>) -> Self {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Self { strings, ptrs }
    }
    pub fn strings(&self) -> &[std::ffi::CString] {
        &self.strings
    }
}

impl Clone for CStrArray {
    fn clone(&self) -> Self {
        Self::new(self.strings.clone())
    }
}

/// `close_range(first, u32::MAX, CLOSE_RANGE_CLOEXEC)`: marks every descriptor from `first`
/// on close-on-exec, so nothing but stdio and preserved fds survives `execve`
/// (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes plain integers; with CLOEXEC it only sets a flag and cannot
    // invalidate descriptors Rust objects own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            u32::MAX as libc::c_uint,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Clears close-on-exec on `fd` (for `--preserve-fds`).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD with 0 only changes the descriptor's flags; an invalid fd gives EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Resets signals to their default disposition and unblocks all signals.
///
/// `execve` keeps ignored signals ignored and keeps the signal mask; a Rust parent ignores
/// `SIGPIPE` and a runtime may block signals it forwards, none of which the container's
/// process should inherit. Handlers need no reset (`execve` resets them), so when the
/// caller knows which signals are ignored (`ignored`: bit n-1 for signal n, as in
/// /proc/PID/status `SigIgn`), only those are touched; `None` resets all.
pub fn reset_signals(ignored: Option<u64>) -> io::Result<()> {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if let Some(mask) = ignored
            && mask & (1u64 << (sig - 1)) == 0
        {
            continue;
        }
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument; we pass no old-action
        // pointer. Signals the kernel refuses (reserved by glibc) return EINVAL, ignored.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    // SAFETY: an empty set initialised by sigemptyset; no old-mask pointer.
    let r = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `personality(persona)`.
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes an integer and changes only this process's execution domain.
    let r = unsafe { libc::syscall(libc::SYS_personality, persona as libc::c_ulong) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)` for the calling process.
pub fn ioprio_set_self(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = ((class & 0x7) << 13) | (level & 0x1fff);
    // SAFETY: plain integer arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            prio as libc::c_int,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The network namespace the socket `sock` belongs to, as a new close-on-exec descriptor
/// (`ioctl(SIOCGSKNS)`, Linux 4.9). It spares a lookup of `/proc/thread-self/ns/net`, which
/// procfs makes anew for every new thread (~0.2 ms each in a profile of berthd's
/// namespace filler).
pub fn socket_netns(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const SIOCGSKNS: libc::c_ulong = 0x894C;
    // SAFETY: SIOCGSKNS takes no argument; it returns a new descriptor, or -1 with errno.
    let fd = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSKNS) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us `fd`, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct sched_attr` (version 1, 56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr_self(attr: &SchedAttr) -> io::Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr whose size field matches the struct we pass.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Drops capability number `cap` from the calling thread's bounding set
/// (`PR_CAPBSET_DROP`). Numbers the kernel does not know give `EINVAL`.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Raises capability number `cap` in the ambient set (`PR_CAP_AMBIENT_RAISE`); it must be in
/// both the permitted and the inheritable set.
pub fn cap_ambient_raise(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`),
/// falling back to probing the bounding set.
pub fn last_cap() -> u32 {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        && let Ok(n) = s.trim().parse()
    {
        return n;
    }
    let mut cap = 0;
    // SAFETY: PR_CAPBSET_READ with an integer argument only reads.
    while unsafe { libc::prctl(libc::PR_CAPBSET_READ, (cap + 1) as libc::c_ulong, 0, 0, 0) } >= 0 {
        cap += 1;
    }
    cap
}

/// Proof-carrying check that the calling process has exactly one thread, which is what makes
/// [`fork`] safe: with no other thread, no lock (malloc's, stdio's) can be held by someone who
/// will not exist in the child.
///
/// It keeps `/proc/self/stat` open (close-on-exec), so the check still works after the
/// process changed its root or mount namespace. It belongs to the process that opened it; a
/// forked child must open its own.
#[derive(Debug)]
pub struct ThreadCheck {
    stat: OwnedFd,
    pid: i32,
}

impl ThreadCheck {
    /// Opens `/proc/self/stat` of the calling process.
    pub fn open() -> io::Result<ThreadCheck> {
        let stat = rustix::fs::open(
            "/proc/self/stat",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(ThreadCheck {
            stat,
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        })
    }

    /// The number of threads of the process that opened this check.
    pub fn threads(&self) -> io::Result<u64> {
        let mut buf = [0u8; 1024];
        let n = rustix::io::pread(&self.stat, &mut buf, 0)?;
        let s = std::str::from_utf8(&buf[..n])
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 /proc/self/stat"))?;
        // Field 20 (num_threads) is the 18th after the ")" that closes the command name.
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_ascii_whitespace().nth(17))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/self/stat"))
    }
}

/// [`clone3`] for a caller proven single-threaded: returns an error instead of forking when
/// `check` belongs to another process or the process has more than one thread.
pub fn fork(
    check: &ThreadCheck,
    flags: u64,
    cgroup_fd: Option<BorrowedFd<'_>>,
) -> io::Result<Forked> {
    if check.pid != rustix::process::getpid().as_raw_nonzero().get() {
        return Err(io::Error::other(
            "thread check belongs to another process (open a new one after fork)",
        ));
    }
    let threads = check.threads()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "cannot fork: the process has {threads} threads; container creation must run in a \
             single-threaded process"
        )));
    }
    // SAFETY: the process has exactly one thread (checked just above; only this thread could
    // create another, and it is busy here), so the child inherits no lock held by a thread
    // that does not exist in it. That is the whole fork contract.
    unsafe { clone3(flags, cgroup_fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket's namespace descriptor is the namespace the socket was made in; anything
    /// that is not a socket is refused.
    #[test]
    fn socket_netns_names_the_sockets_namespace() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ns = socket_netns(a.as_fd()).unwrap();
        let got = std::fs::metadata(format!("/proc/self/fd/{}", ns.as_raw_fd()))
            .unwrap()
            .ino();
        let own = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        assert_eq!(got, own);
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(socket_netns(file.as_fd()).is_err());
    }

    #[test]
    fn thread_check_counts_threads() {
        let c = ThreadCheck::open().unwrap();
        let before = c.threads().unwrap();
        assert!(before >= 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        assert_eq!(c.threads().unwrap(), before + 1);
        // The test harness runs us in a thread, so forking must be refused here.
        assert!(fork(&c, 0, None).is_err());
        tx.send(()).unwrap();
        t.join().unwrap().unwrap();
    }
}

/// Takes ownership of a descriptor this process inherited from its parent (e.g. a pipe
/// berthd passes as fd 3), so it can be used and closed like any `OwnedFd`.
///
/// Contract: call it only for descriptors inherited at `execve` that no other code of the
/// process has wrapped (typically at the start of `main`). The function checks that the
/// descriptor is open and above stdio, and hands each number out at most once per process.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    use std::sync::Mutex;
    static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is stdio; use std::io::stdin/stdout/stderr"),
        ));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("inherited fd {fd} was already taken"),
        ));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; an invalid fd gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    taken.push(fd);
    // SAFETY: the descriptor is open (checked above), was inherited by this process and is
    // not wrapped by any other object (the documented contract of this function, the same
    // every socket-activation helper relies on), and this function returns each number at
    // most once, so the returned OwnedFd is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Returns unused heap memory to the kernel (`malloc_trim(0)`); true if memory was released.
pub fn malloc_trim() -> bool {
    // SAFETY: malloc_trim takes an integer and only touches the allocator's own state, which
    // glibc locks internally.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Pins glibc's mmap and trim thresholds to `bytes` (`mallopt` M_MMAP_THRESHOLD and
/// M_TRIM_THRESHOLD), for long-running daemons. By default glibc raises the mmap threshold to
/// the size of the largest mmapped block freed so far (up to 32 MiB); after one large buffer
/// every later one of that size comes from a thread arena, whose top `malloc_trim` never
/// shrinks, so the daemon keeps megabytes it no longer uses. Fixed thresholds keep large
/// buffers in mmap, returned to the kernel on free. True if glibc accepted both values.
pub fn pin_malloc_thresholds(bytes: usize) -> bool {
    let Ok(v) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: mallopt takes two integers and only changes the allocator's own parameters,
    // under glibc's internal lock; no memory is handed out or freed by the call.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, v) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, v) == 1
    }
}

/// Caps the number of glibc malloc arenas (`mallopt` M_ARENA_MAX), for long-running daemons;
/// call it before starting threads. By default glibc gives threads up to 8 arenas per core;
/// each keeps its own free lists, so after a burst of work the freed chunks of several arenas
/// stay resident side by side, fragmented past what `malloc_trim` can return. Threads beyond
/// the cap share the existing arenas. True if glibc accepted the value.
pub fn limit_malloc_arenas(arenas: usize) -> bool {
    let Ok(v) = libc::c_int::try_from(arenas) else {
        return false;
    };
    // SAFETY: mallopt takes two integers and only changes the allocator's own parameters,
    // under glibc's internal lock; no memory is handed out or freed by the call.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, v) == 1 }
}

#[cfg(test)]
mod inherited_tests {
    use super::*;

    #[test]
    fn pinned_thresholds_keep_large_buffers_in_mmap() {
        assert!(!pin_malloc_thresholds(usize::MAX), "too large for a c_int");
        assert!(pin_malloc_thresholds(128 << 10));
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let before = unsafe { libc::mallinfo2() }.hblkhd;
        let buf = std::hint::black_box(vec![1u8; 4 << 20]);
        // SAFETY: as above.
        let during = unsafe { libc::mallinfo2() }.hblkhd;
        assert!(
            during >= before + (4 << 20),
            "4 MiB buffer not mmapped: {before} -> {during}"
        );
        drop(buf);
        // SAFETY: as above.
        let after = unsafe { libc::mallinfo2() }.hblkhd;
        assert!(after < during, "buffer not returned: {during} -> {after}");
    }

    /// The number of arenas glibc has made so far (`<heap nr=` entries of `malloc_info`).
    fn malloc_arenas() -> usize {
        let mut buf: *mut libc::c_char = std::ptr::null_mut();
        let mut len: libc::size_t = 0;
        // SAFETY: open_memstream stores a malloc'ed buffer and its length in the two
        // pointers, which outlive the stream (closed below, before they are read).
        let f = unsafe { libc::open_memstream(&mut buf, &mut len) };
        assert!(!f.is_null(), "open_memstream failed");
        // SAFETY: f is an open stream; malloc_info only writes XML to it.
        assert_eq!(unsafe { libc::malloc_info(0, f) }, 0);
        // SAFETY: f is open and closed once; closing flushes into buf/len.
        assert_eq!(unsafe { libc::fclose(f) }, 0);
        // SAFETY: after fclose, buf points to len initialized bytes owned by us.
        let xml = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        let n = String::from_utf8_lossy(xml).matches("<heap nr=").count();
        // SAFETY: buf came from open_memstream's malloc and is freed once.
        unsafe { libc::free(buf.cast()) };
        n
    }

    #[test]
    fn limited_arenas_are_shared_by_new_threads() {
        assert!(!limit_malloc_arenas(usize::MAX), "too large for a c_int");
        let before = malloc_arenas();
        assert!(before >= 1, "no arena reported");
        // Cap at what exists now (a test harness may have made more than one already).
        assert!(limit_malloc_arenas(before));
        // Four threads allocating at the same time would each get a new arena by default.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = barrier.clone();
                std::thread::spawn(move || {
                    let v = std::hint::black_box(vec![7u8; 1024]);
                    b.wait();
                    b.wait();
                    drop(v);
                })
            })
            .collect();
        barrier.wait();
        let during = malloc_arenas();
        barrier.wait();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(during, before, "threads made new arenas past the cap");
    }

    #[test]
    fn takes_an_open_fd_once() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(w);
        let owned = take_inherited_fd(raw).unwrap();
        assert!(take_inherited_fd(raw).is_err(), "handed out twice");
        drop(owned);
        assert!(take_inherited_fd(1).is_err());
        assert!(take_inherited_fd(9999).is_err());
        drop(r);
    }
}
