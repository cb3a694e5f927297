//! Code that runs in the new process between `clone` and `execve`.
//!
//! It only executes decisions made by [`crate::plan`]; any failure is sent to the parent as
//! text over the sync channel and the process exits at once (`_exit`, no destructors, no
//! stdio flush: those belong to the parent). The caller of this library is single-threaded
//! (checked by [`berth_sys::process::fork`]), so allocating here is safe.

use berth_oci::spec::runtime::Hook;
use berth_sys::process::{CStrArray, ThreadCheck, exit_now};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use rustix::fs::{Mode, OFlags};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::hooks::run_hooks;
use crate::plan::{Plan, ProcessPlan};
use crate::rootfs::{self, CResult, RootfsEnv, err};
use crate::seccomp::CompiledFilter;
use crate::state::OciState;
use crate::sync::{Channel, Msg};

/// Parts shared by create and exec.
pub(crate) struct Common<'a> {
    pub chan: Channel,
    pub process: &'a ProcessPlan,
    pub seccomp: Option<&'a CompiledFilter>,
    /// Caller-provided descriptors for stdin, stdout, stderr.
    pub stdio: Option<[BorrowedFd<'a>; 3]>,
    /// The exec fifo, or a start gate's read end, to wait on before `execve` (create
    /// without immediate start).
    pub fifo: Option<BorrowedFd<'a>>,
    /// A start gate's write end (the caller's, inherited by the fork): closed here before
    /// the wait, so the caller's death reads as end of file instead of blocking forever.
    pub gate_writer: Option<RawFd>,
    pub preserve_fds: u32,
    /// Run the built-in reaper as PID 1 and the app as its child.
    pub init: bool,
    /// Wait for the parent's Go at the start (user/cgroup namespace setup) instead of right
    /// before Ready.
    pub wait_go_early: bool,
    pub new_user: bool,
    pub new_cgroup: bool,
    /// startContainer hooks and the state they get (pid filled in here).
    pub start_hooks: &'a [Hook],
    pub hook_state: Option<&'a OciState>,
    /// Opened at the start (while the host's /proc is visible) for the reaper's fork.
    pub thread_check: Option<ThreadCheck>,
    /// The parent's Go arrived (it may come while we wait for something else).
    pub got_go: std::cell::Cell<bool>,
    /// v1 `tasks` files to write "0" to: the process joins its cgroups itself
    /// (see `cgroup_join`).
    pub cgroup_join: &'a [rustix::fd::OwnedFd],
    /// v1: the runtime creates the cgroup after the clone and sends the `tasks` files
    /// (`Msg::JoinCgroups`) while we set up the rootfs; true until we joined.
    pub cgroup_join_late: std::cell::Cell<bool>,
    /// The signals the caller ignores (only those need resetting), if known.
    pub ignored_signals: Option<u64>,
}

/// The calling thread's ignored signals (`SigIgn` in /proc/thread-self/status).
pub(crate) fn ignored_signals() -> Option<u64> {
    let s = crate::state::read_proc_text("/proc/thread-self/status")?;
    let v = s.lines().find_map(|l| l.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// Create-only parts.
pub(crate) struct CreateArgs<'a> {
    pub common: Common<'a>,
    pub plan: &'a Plan,
    pub rootfs: &'a Path,
    pub cgroup_paths: &'a BTreeMap<String, PathBuf>,
    /// Ask the parent to run prestart/createRuntime hooks.
    pub parent_hooks: bool,
    pub container_hooks: &'a [Hook],
}

/// Sends the error (if any) and ends the process.
pub(crate) fn finish(chan: &Channel, r: CResult<Infallible>) -> ! {
    let Err(msg) = r;
    let _ = chan.send(&Msg::Error(msg));
    exit_now(1)
}

fn expect(chan: &Channel, what: &str, want: fn(&Msg) -> bool) -> CResult<()> {
    match chan.recv() {
        Ok(Some(m)) if want(&m) => Ok(()),
        Ok(Some(m)) => Err(format!("unexpected message {m:?} while waiting for {what}")),
        Ok(None) => Err(format!("runtime went away while we waited for {what}")),
        Err(e) => Err(format!("sync channel: {e}")),
    }
}

fn expect_go(c: &Common<'_>) -> CResult<()> {
    if c.got_go.get() {
        return Ok(());
    }
    expect(&c.chan, "the go-ahead", |m| matches!(m, Msg::Go))?;
    c.got_go.set(true);
    Ok(())
}

/// Waits for `want`, remembering a Go that arrives first.
fn expect_after_go(c: &Common<'_>, what: &str, want: fn(&Msg) -> bool) -> CResult<()> {
    loop {
        match c.chan.recv() {
            Ok(Some(Msg::Go)) => c.got_go.set(true),
            Ok(Some(m)) if want(&m) => return Ok(()),
            Ok(Some(m)) => {
                return Err(format!("unexpected message {m:?} while waiting for {what}"));
            }
            Ok(None) => return Err(format!("runtime went away while we waited for {what}")),
            Err(e) => return Err(format!("sync channel: {e}")),
        }
    }
}

/// The late join (see `Common::cgroup_join_late`): waits for the `tasks` files, remembering
/// a Go that arrives first, and writes "0" to each. Once; later calls return at once.
fn join_cgroups_late(c: &Common<'_>) -> CResult<()> {
    if !c.cgroup_join_late.get() {
        return Ok(());
    }
    loop {
        match c.chan.recv() {
            Ok(Some(Msg::Go)) => c.got_go.set(true),
            Ok(Some(Msg::JoinCgroups(files))) => {
                for f in &files {
                    rustix::io::write(f, b"0").map_err(err("join the container's cgroup"))?;
                }
                c.cgroup_join_late.set(false);
                return Ok(());
            }
            Ok(Some(m)) => {
                return Err(format!(
                    "unexpected message {m:?} while waiting for the cgroup"
                ));
            }
            Ok(None) => return Err("runtime went away while we waited for the cgroup".into()),
            Err(e) => return Err(format!("sync channel: {e}")),
        }
    }
}

fn start(c: &mut Common<'_>) -> CResult<()> {
    for f in c.cgroup_join {
        rustix::io::write(f, b"0").map_err(err("join the container's cgroup"))?;
    }
    // Until execve (which restores it), no other process (the container's included) may
    // ptrace us or open our /proc files: we still hold the runtime's binary and descriptors.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(err("set non-dumpable"))?;
    berth_sys::process::reset_signals(c.ignored_signals).map_err(err("reset signals"))?;
    rustix::process::umask(Mode::empty());
    if let Some([i, o, e]) = c.stdio {
        rustix::stdio::dup2_stdin(i).map_err(err("dup stdin"))?;
        rustix::stdio::dup2_stdout(o).map_err(err("dup stdout"))?;
        rustix::stdio::dup2_stderr(e).map_err(err("dup stderr"))?;
    }
    rustix::process::setsid().map_err(err("setsid"))?;
    if c.init {
        c.thread_check = Some(thread_check()?);
    }
    if c.wait_go_early {
        expect_go(c)?;
    }
    if c.new_user {
        // We created the user namespace and the parent mapped it: become its root.
        rustix::thread::set_thread_res_gid(
            rustix::fs::Gid::ROOT,
            rustix::fs::Gid::ROOT,
            rustix::fs::Gid::ROOT,
        )
        .map_err(err("setresgid(0) in the user namespace"))?;
        rustix::thread::set_thread_res_uid(
            rustix::fs::Uid::ROOT,
            rustix::fs::Uid::ROOT,
            rustix::fs::Uid::ROOT,
        )
        .map_err(err("setresuid(0) in the user namespace"))?;
    }
    if c.new_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(err("create cgroup namespace"))?;
    }
    Ok(())
}

/// The container's first process (create).
pub(crate) fn create_main(mut a: CreateArgs<'_>) -> ! {
    let r = create_inner(&mut a);
    finish(&a.common.chan, r)
}

fn create_inner(a: &mut CreateArgs<'_>) -> CResult<Infallible> {
    start(&mut a.common)?;
    let c = &a.common;
    let procfd = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open /proc"))?;
    rootfs::ensure_procfs(procfd.as_fd(), "/proc")?;
    rootfs::kernel_settings(a.plan, procfd.as_fd())?;
    let host_pid = || -> CResult<i32> {
        let link = rustix::fs::readlinkat(&procfd, "self", Vec::new())
            .map_err(err("readlink /proc/self"))?;
        link.to_string_lossy()
            .parse()
            .map_err(|_| "unexpected /proc/self link".to_string())
    };
    let join = || join_cgroups_late(c);
    let root = if a.plan.ns.new_mount {
        Some(rootfs::setup(&RootfsEnv {
            plan: a.plan,
            rootfs: a.rootfs,
            cgroup_paths: a.cgroup_paths,
            cgroupns: c.new_cgroup,
            userns: c.new_user,
            join_cgroups: c
                .cgroup_join_late
                .get()
                .then_some(&join as &dyn Fn() -> CResult<()>),
        })?)
    } else {
        None
    };
    // In the cgroup before anything that forks, sets limits, or runs the app.
    join_cgroups_late(c)?;
    if a.parent_hooks {
        c.chan.send(&Msg::NeedHooks).map_err(err("sync"))?;
        expect_after_go(c, "the prestart/createRuntime hooks", |m| {
            matches!(m, Msg::HooksDone)
        })?;
    }
    if !a.container_hooks.is_empty()
        && let Some(state) = c.hook_state
    {
        let mut s = state.clone();
        s.pid = host_pid()?;
        run_hooks("createContainer", a.container_hooks, &s).map_err(|e| e.to_string())?;
    }
    if let Some(root) = root {
        rootfs::enter(a.plan, root, a.rootfs)?;
    }
    if let Some(p) = a.plan.personality {
        berth_sys::process::personality(p).map_err(err("personality"))?;
    }
    // Nothing of the host's filesystem may stay reachable through a descriptor
    // (CVE-2024-21626): the procfs fd goes before anything resolves user-controlled paths.
    let host_pid_for_hooks = if c.start_hooks.is_empty() {
        0
    } else {
        host_pid()?
    };
    drop(procfd);
    finalize(&mut a.common, host_pid_for_hooks)
}

/// The exec'd process, already in the container's namespaces.
pub(crate) fn exec_main(mut c: Common<'_>) -> ! {
    let r = exec_inner(&mut c);
    finish(&c.chan, r)
}

fn exec_inner(c: &mut Common<'_>) -> CResult<Infallible> {
    start(c)?;
    finalize(c, 0)
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds the program like `execvp` (and runc's LookPath), with runc's messages, which
/// docker maps to exit codes 126/127.
fn resolve_program(p: &ProcessPlan) -> CResult<CString> {
    let name = &p.arg0;
    let check = |path: &str| -> Result<(), rustix::io::Errno> {
        let st = rustix::fs::stat(path)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
            return Err(rustix::io::Errno::ACCESS);
        }
        rustix::fs::access(path, rustix::fs::Access::EXEC_OK)
    };
    if name.contains('/') {
        return match check(name) {
            Ok(()) => Ok(rootfs::cstr(name)),
            Err(rustix::io::Errno::ACCESS) => Err(format!("exec: \"{name}\": permission denied")),
            Err(e) => Err(format!("exec: \"{name}\": stat {name}: {}", errno_text(e))),
        };
    }
    let path = p.path_env.as_deref().unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let full = format!("{dir}/{name}");
        match check(&full) {
            Ok(()) => return Ok(rootfs::cstr(&full)),
            Err(rustix::io::Errno::ACCESS) => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        Err(format!("exec: \"{name}\": permission denied"))
    } else {
        Err(format!(
            "exec: \"{name}\": executable file not found in $PATH"
        ))
    }
}

/// An errno's text the way runc (Go) prints it: lowercase, no "(os error N)".
fn errno_text(e: rustix::io::Errno) -> String {
    let s = std::io::Error::from(e).to_string().to_lowercase();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

fn setup_terminal(c: &Common<'_>) -> CResult<()> {
    let p = c.process;
    let master = rustix::fs::open(
        "/dev/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err(
        "open /dev/ptmx (a terminal needs a devpts mount on /dev/pts)",
    ))?;
    rustix::pty::unlockpt(&master).map_err(err("unlockpt"))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY,
    )
    .map_err(err("open the pty's peer"))?;
    if let Some((rows, cols)) = p.console_size {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws).map_err(err("set console size"))?;
    }
    // /dev/console is the pty, like runc.
    if let Ok(name) = rustix::pty::ptsname(&master, Vec::new()) {
        let name = name.to_string_lossy().into_owned();
        let console = Path::new("/dev/console");
        if !console.exists() {
            let _ = std::fs::File::create(console);
        }
        let _ = nix::mount::mount(
            Some(name.as_str()),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    rustix::stdio::dup2_stdin(&slave).map_err(err("dup pty to stdin"))?;
    rustix::stdio::dup2_stdout(&slave).map_err(err("dup pty to stdout"))?;
    rustix::stdio::dup2_stderr(&slave).map_err(err("dup pty to stderr"))?;
    drop(slave);
    rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())
        .map_err(err("make the pty the controlling terminal"))?;
    c.chan
        .send(&Msg::Pty(master))
        .map_err(err("send pty master"))?;
    Ok(())
}

fn load_seccomp(c: &Common<'_>, f: &CompiledFilter) -> CResult<()> {
    let listener = berth_sys::seccomp::set_mode_filter(&f.program, f.flags)
        .map_err(err("install seccomp filter"))?;
    if let Some(l) = listener {
        c.chan
            .send(&Msg::Listener(l))
            .map_err(err("send seccomp listener"))?;
    }
    Ok(())
}

/// Drops every capability not in `keep` from the bounding set: one `prctl` per capability
/// the kernel knows. The first unknown number answers `EINVAL` and ends the pass, so the
/// kernel's last capability need not be read first (`/proc/sys/kernel/cap_last_cap` is
/// five syscalls, and the container's `/proc` may not even be mounted).
fn drop_bounding(keep: u64) -> CResult<()> {
    for cap in 0..64 {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        match berth_sys::process::capbset_drop(cap) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => {
                return Err(format!(
                    "drop {} from the bounding set: {e}",
                    crate::caps::name(cap)
                ));
            }
        }
    }
    Ok(())
}

fn set_user_and_caps(p: &ProcessPlan) -> CResult<()> {
    drop_bounding(p.caps.bounding)?;
    rustix::thread::set_keep_capabilities(true).map_err(err("keep capabilities"))?;
    let gids: Vec<rustix::fs::Gid> = p
        .additional_gids
        .iter()
        .map(|g| rustix::fs::Gid::from_raw(*g))
        .collect();
    match rustix::thread::set_thread_groups(&gids) {
        Ok(()) => {}
        // setgroups is denied in user namespaces mapped without it; only fatal if needed.
        Err(rustix::io::Errno::PERM) if gids.is_empty() => {}
        Err(e) => return Err(format!("setgroups {:?}: {e}", p.additional_gids)),
    }
    let g = rustix::fs::Gid::from_raw(p.gid);
    rustix::thread::set_thread_res_gid(g, g, g).map_err(err(format!("setgid {}", p.gid)))?;
    let u = rustix::fs::Uid::from_raw(p.uid);
    rustix::thread::set_thread_res_uid(u, u, u).map_err(err(format!("setuid {}", p.uid)))?;
    rustix::thread::set_keep_capabilities(false).map_err(err("reset keep capabilities"))?;
    let sets = rustix::thread::CapabilitySets {
        effective: rustix::thread::CapabilitySet::from_bits_retain(p.caps.effective),
        permitted: rustix::thread::CapabilitySet::from_bits_retain(p.caps.permitted),
        inheritable: rustix::thread::CapabilitySet::from_bits_retain(p.caps.inheritable),
    };
    rustix::thread::set_capabilities(None, sets).map_err(err("set capabilities"))?;
    let _ = rustix::thread::clear_ambient_capability_set();
    for cap in (0..64).filter(|c| p.caps.ambient & (1u64 << c) != 0) {
        match berth_sys::process::cap_ambient_raise(cap) {
            Ok(()) => {}
            // A capability this kernel does not know (EINVAL) is skipped, like in the
            // bounding set.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => {
                return Err(format!(
                    "raise {} in the ambient set (it must also be permitted and inheritable): {e}",
                    crate::caps::name(cap)
                ));
            }
        }
    }
    Ok(())
}

fn chdir_checked(cwd: &Path) -> CResult<()> {
    rustix::process::chdir(cwd)
        .map_err(err(format!("chdir to cwd {:?} set in config.json", cwd)))?;
    verify_cwd(cwd)
}

fn verify_cwd(cwd: &Path) -> CResult<()> {
    // CVE-2024-21626: the working directory must be inside the container's root. A path
    // through a leaked descriptor would leave us outside it, which getcwd reports as
    // "(unreachable)" or an error.
    match rustix::process::getcwd(Vec::new()) {
        Ok(p) if p.as_bytes().starts_with(b"/") => Ok(()),
        Ok(p) => Err(format!(
            "cwd {:?} is outside the container's root ({:?})",
            cwd,
            p.to_string_lossy()
        )),
        Err(e) => Err(format!(
            "cwd {:?} is not reachable from the container's root: {e}",
            cwd
        )),
    }
}

fn finalize(c: &mut Common<'_>, host_pid: i32) -> CResult<Infallible> {
    let p = c.process;
    if p.terminal {
        setup_terminal(c)?;
    }
    if let Some((class, level)) = p.io_priority {
        berth_sys::process::ioprio_set_self(class, level).map_err(err("set io priority"))?;
    }
    if let Some(s) = &p.scheduler {
        berth_sys::process::sched_setattr_self(s).map_err(err("set scheduler"))?;
    }
    for (res, soft, hard) in &p.rlimits {
        let lim = rustix::process::Rlimit {
            current: (*soft != u64::MAX).then_some(*soft),
            maximum: (*hard != u64::MAX).then_some(*hard),
        };
        rustix::process::setrlimit(*res, lim)
            .map_err(err(format!("setrlimit {res:?} {soft}/{hard}")))?;
    }
    if let Some(profile) = &p.apparmor {
        write_attr("apparmor/exec", &format!("exec {profile}"))?;
    }
    if let Some(label) = &p.selinux {
        write_attr("exec", label)?;
    }
    if !p.no_new_privs
        && let Some(f) = c.seccomp
    {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it before
        // dropping capabilities.
        load_seccomp(c, f)?;
    }
    // The working directory is tried as root first (it may be unreadable for the user
    // only after the switch, or only before, like runc handles both).
    let early_cwd = rustix::process::chdir(&p.cwd).is_ok();
    set_user_and_caps(p)?;
    if early_cwd {
        verify_cwd(&p.cwd)?;
    } else {
        chdir_checked(&p.cwd)?;
    }
    if p.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(err("set no_new_privs"))?;
        if let Some(f) = c.seccomp {
            load_seccomp(c, f)?;
        }
    }
    let program = resolve_program(p)?;
    let env_extra;
    let env = if p.has_home {
        &p.env
    } else {
        let mut v: Vec<CString> = p.env.strings().to_vec();
        v.push(rootfs::cstr(&format!("HOME={}", home_of(p.uid))));
        env_extra = CStrArray::new(v);
        &env_extra
    };
    if !c.wait_go_early {
        expect_go(c)?;
    }
    rustix::process::umask(Mode::from_raw_mode(p.umask));
    berth_sys::process::cloexec_from(3 + c.preserve_fds)
        .map_err(err("mark descriptors close-on-exec"))?;
    let own = [
        c.chan.fd().as_raw_fd(),
        c.fifo.map_or(-1, |f| f.as_raw_fd()),
    ];
    for fd in 3..3 + c.preserve_fds as RawFd {
        if !own.contains(&fd) {
            berth_sys::process::clear_cloexec(fd).map_err(err(format!("preserve fd {fd}")))?;
        }
    }
    c.chan.send(&Msg::Ready).map_err(err("sync"))?;
    if let Some(fifo) = c.fifo {
        if let Some(w) = c.gate_writer {
            let _ = nix::unistd::close(w);
        }
        let mut b = [0u8; 1];
        loop {
            match rustix::io::read(fifo, &mut b) {
                // Only a gate can end (a fifo is open read-write here): its holder is gone
                // without starting the container.
                Ok(0) => return Err("the start gate closed before the start".into()),
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(format!("wait for start on the exec fifo: {e}")),
            }
        }
    }
    if !c.start_hooks.is_empty()
        && let Some(state) = c.hook_state
    {
        let mut s = state.clone();
        s.pid = host_pid;
        run_hooks("startContainer", c.start_hooks, &s).map_err(|e| e.to_string())?;
    }
    if c.init {
        crate::reaper::run(c, &program, env);
    }
    let e = berth_sys::process::execve(&program, &p.args, env);
    Err(format!(
        "exec {:?}: {}",
        program,
        e.to_string().to_lowercase()
    ))
}

/// Writes an LSM attribute of this thread, checking it really is on procfs.
fn write_attr(name: &str, value: &str) -> CResult<()> {
    let path = format!("/proc/thread-self/attr/{name}");
    let fd = rustix::fs::open(
        path.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err(format!("open {path}")))?;
    rootfs::ensure_procfs(fd.as_fd(), &path)?;
    rustix::io::write(&fd, value.as_bytes()).map_err(err(format!("write {path}")))?;
    Ok(())
}

/// Helper for the intermediate process: a fresh thread check of this process.
pub(crate) fn thread_check() -> CResult<ThreadCheck> {
    ThreadCheck::open().map_err(err("open /proc/self/stat"))
}
