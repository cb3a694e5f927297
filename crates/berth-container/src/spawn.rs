//! The runtime's side of creating a container or an exec'd process: fork, namespaces,
//! id maps, cgroup, hooks, and the conversation with the new process (see [`crate::sync`]).

use berth_cgroups::CgroupManager;
use berth_oci::spec::runtime::{LinuxNamespaceType, Spec};
use berth_sys::process::{CLONE_PARENT, Forked, ThreadCheck, exit_now};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::{self, Common, CreateArgs};
use crate::error::{Error, Result};
use crate::hooks::run_hooks;
use crate::plan::{NsPlan, ProcessPlan};
use crate::seccomp::CompiledFilter;
use crate::state::{OciState, Status};
use crate::sync::{Channel, Msg};

/// What the parent does with a child's messages until it is ready.
pub(crate) struct Conversation<'a> {
    pub chan: &'a Channel,
    pub pid: i32,
    /// State given to prestart/createRuntime hooks and seccomp listeners.
    pub state: &'a OciState,
    pub prestart: &'a [berth_oci::spec::runtime::Hook],
    pub create_runtime: &'a [berth_oci::spec::runtime::Hook],
    pub seccomp: Option<&'a CompiledFilter>,
}

/// Lets the new process go on; if it is already gone, reports the error it left.
pub(crate) fn send_go(chan: &Channel) -> Result<()> {
    send_or_report(chan, &Msg::Go)
}

/// Sends the late-joining init its `tasks` files; if it is already gone, reports its error.
pub(crate) fn send_join(chan: &Channel, files: Vec<OwnedFd>) -> Result<()> {
    send_or_report(chan, &Msg::JoinCgroups(files))
}

fn send_or_report(chan: &Channel, msg: &Msg) -> Result<()> {
    match chan.send(msg) {
        Ok(()) => Ok(()),
        Err(e) => match chan.recv() {
            Ok(Some(Msg::Error(m))) => Err(Error::Init(m)),
            _ => Err(Error::io("sync with the container process", e)),
        },
    }
}

/// Runs the conversation until `Ready`; returns the pty master if one was sent.
pub(crate) fn converse(c: &Conversation<'_>) -> Result<Option<OwnedFd>> {
    let mut pty = None;
    loop {
        match c
            .chan
            .recv()
            .map_err(|e| Error::io("sync with the container process", e))?
        {
            Some(Msg::NeedHooks) => {
                let mut s = c.state.clone();
                s.pid = c.pid;
                s.status = Status::Creating;
                run_hooks("prestart", c.prestart, &s)?;
                run_hooks("createRuntime", c.create_runtime, &s)?;
                send_or_report(c.chan, &Msg::HooksDone)?;
            }
            Some(Msg::Pty(fd)) => pty = Some(fd),
            Some(Msg::Listener(fd)) => send_seccomp_listener(c, fd)?,
            Some(Msg::Ready) => return Ok(pty),
            Some(Msg::Error(m)) => return Err(Error::Init(m)),
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} from the container process"
                )));
            }
            None => {
                return Err(Error::Init(
                    "the container process exited during setup without reporting why".into(),
                ));
            }
        }
    }
}

/// After `Ready` of a process that execs right away: end-of-file means `execve` succeeded.
pub(crate) fn await_exec(chan: &Channel) -> Result<()> {
    loop {
        match chan
            .recv()
            .map_err(|e| Error::io("sync with the container process", e))?
        {
            None => return Ok(()),
            Some(Msg::Error(m)) => return Err(Error::Init(m)),
            Some(_) => continue,
        }
    }
}

fn send_seccomp_listener(c: &Conversation<'_>, fd: OwnedFd) -> Result<()> {
    let f = c.seccomp.expect("listener only with a seccomp filter");
    let path = f
        .listener_path
        .as_ref()
        .expect("validated: listener needs listenerPath");
    let mut state = c.state.clone();
    state.pid = c.pid;
    let msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": c.pid,
        "metadata": f.listener_metadata.clone().unwrap_or_default(),
        "state": state,
    });
    send_fd_to_socket(path, msg.to_string().as_bytes(), fd.as_fd()).map_err(|e| {
        Error::io(
            format!("send the seccomp listener to {}", path.display()),
            e,
        )
    })
}

/// Connects to a unix stream socket and sends `payload` with `fd` attached (SCM_RIGHTS).
pub(crate) fn send_fd_to_socket(
    path: &Path,
    payload: &[u8],
    fd: BorrowedFd<'_>,
) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::mem::MaybeUninit;
    let sock = std::os::unix::net::UnixStream::connect(path)?;
    let iov = [std::io::IoSlice::new(payload)];
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(&sock, &iov, &mut anc, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Writes the user namespace's id maps for `pid` (from the runtime, which has the
/// privileges the new namespace's creator lacks in the parent namespace).
pub(crate) fn write_id_maps(pid: i32, ns: &NsPlan) -> Result<()> {
    let write = |file: &str, data: &str| {
        let p = format!("/proc/{pid}/{file}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|mut f| f.write_all(data.as_bytes()))
            .map_err(|e| {
                Error::io(
                    format!("write {p} ({})", data.trim().replace('\n', "; ")),
                    e,
                )
            })
    };
    if !rustix::process::geteuid().is_root() {
        // Unprivileged writers may only map their own gid after denying setgroups.
        write("setgroups", "deny")?;
    }
    write("uid_map", &ns.uid_map)?;
    write("gid_map", &ns.gid_map)
}

pub(crate) fn write_oom_score_adj(pid: i32, adj: i32) -> Result<()> {
    let p = format!("/proc/{pid}/oom_score_adj");
    std::fs::write(&p, adj.to_string()).map_err(|e| {
        Error::io(
            format!("set process.oomScoreAdj {adj} (lowering the score needs CAP_SYS_RESOURCE)"),
            e,
        )
    })
}

/// The pieces of a container the intermediate process needs to become its init.
pub(crate) struct CreateSpawn<'a> {
    pub args: CreateArgs<'a>,
    pub ns: &'a NsPlan,
    pub join_fds: &'a [(OwnedFd, LinuxNamespaceType)],
    /// cgroup2 directory to create the process in (CLONE_INTO_CGROUP).
    pub cgroup_fd: Option<BorrowedFd<'a>>,
}

/// A forked container process: its pid, and whether it was born in its cgroup2 cgroup
/// (false: the caller must add it).
pub(crate) struct Born {
    pub pid: i32,
    pub in_cgroup: bool,
}

/// clone3 into the cgroup if possible, else plainly (then the caller adds the process).
fn fork_maybe_into(
    check: &ThreadCheck,
    flags: u64,
    cgroup_fd: Option<BorrowedFd<'_>>,
) -> std::io::Result<(Forked, bool)> {
    if let Some(fd) = cgroup_fd {
        match berth_sys::process::fork(check, flags, Some(fd)) {
            Ok(f) => return Ok((f, true)),
            Err(e) => tracing::debug!("clone3 into the cgroup failed ({e}); joining it later"),
        }
    }
    berth_sys::process::fork(check, flags, None).map(|f| (f, cgroup_fd.is_none()))
}

/// The intermediate reports the grandchild's pid; negative means "not born in its cgroup".
fn decode_pid(p: i32) -> Born {
    Born {
        pid: p.abs(),
        in_cgroup: p > 0,
    }
}

/// Forks the container's first process (through an intermediate process when namespaces
/// are joined by path or a time namespace is made). Returns its pid and the parent's end of
/// the channel.
pub(crate) fn fork_create(s: CreateSpawn<'_>, parent_end: &Channel) -> Result<Born> {
    let check = ThreadCheck::open().map_err(|e| Error::io("open /proc/self/stat", e))?;
    if !s.ns.needs_intermediate() {
        // Network/UTS/IPC joins: this thread joins, clones, and goes back (no helper).
        let visit = ThreadVisit::enter(s.join_fds)?;
        let forked = fork_maybe_into(&check, s.ns.clone_flags, s.cgroup_fd);
        if let Ok((Forked::Child, _)) = forked {
            std::mem::forget(visit);
            child::create_main(s.args)
        }
        visit.leave()?;
        return match forked.map_err(|e| Error::io("clone the container process", e))? {
            (Forked::Child, _) => unreachable!("the child never returns from create_main"),
            (Forked::Parent { pid, .. }, in_cgroup) => Ok(Born { pid, in_cgroup }),
        };
    }
    match berth_sys::process::fork(&check, 0, None)
        .map_err(|e| Error::io("fork the namespace helper", e))?
    {
        Forked::Child => {
            let check = match enter_namespaces(s.join_fds, s.ns.new_time.as_deref()) {
                Ok(c) => c,
                Err(e) => child::finish(&s.args.common.chan, Err(e)),
            };
            match fork_maybe_into(&check, s.ns.clone_flags | CLONE_PARENT, s.cgroup_fd) {
                Ok((Forked::Child, _)) => child::create_main(s.args),
                Ok((Forked::Parent { pid, .. }, in_cgroup)) => {
                    let _ = s
                        .args
                        .common
                        .chan
                        .send(&Msg::Pid(if in_cgroup { pid } else { -pid }));
                    exit_now(0)
                }
                Err(e) => child::finish(
                    &s.args.common.chan,
                    Err(format!("clone the container process: {e}")),
                ),
            }
        }
        Forked::Parent { pid: helper, .. } => {
            let r = parent_end.recv_pid();
            reap(helper);
            match r.map_err(|e| Error::io("sync with the namespace helper", e))? {
                Some(Msg::Pid(p)) => Ok(decode_pid(p)),
                Some(Msg::Error(m)) => Err(Error::Init(m)),
                _ => Err(Error::Init(
                    "the namespace helper exited without a pid".into(),
                )),
            }
        }
    }
}

/// The calling thread's stay in namespaces joined by path (network, UTS, IPC only: see
/// [`crate::plan::thread_joinable`]); [`ThreadVisit::leave`] returns it to its own.
struct ThreadVisit {
    /// The thread's own namespaces, to go back to (in join order).
    home: Vec<(OwnedFd, LinuxNamespaceType)>,
}

impl ThreadVisit {
    fn enter(join_fds: &[(OwnedFd, LinuxNamespaceType)]) -> Result<ThreadVisit> {
        let mut visit = ThreadVisit { home: Vec::new() };
        for (fd, typ) in join_fds {
            let own = format!("/proc/thread-self/ns/{}", ns_file(*typ));
            let home = rustix::fs::open(&own, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::io(format!("open {own}"), e))?;
            rustix::thread::move_into_link_name_space(fd.as_fd(), None)
                .map_err(|e| Error::io(format!("join the {typ} namespace"), e))?;
            visit.home.push((home, *typ));
        }
        Ok(visit)
    }

    fn leave(mut self) -> Result<()> {
        for (home, typ) in std::mem::take(&mut self.home).into_iter().rev() {
            rustix::thread::move_into_link_name_space(home.as_fd(), None).map_err(|e| {
                Error::io(format!("return to the runtime's own {typ} namespace"), e)
            })?;
        }
        Ok(())
    }
}

impl Drop for ThreadVisit {
    fn drop(&mut self) {
        for (home, _) in std::mem::take(&mut self.home).into_iter().rev() {
            let _ = rustix::thread::move_into_link_name_space(home.as_fd(), None);
        }
    }
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// In the helper process: join namespaces by path, make the time namespace.
fn enter_namespaces(
    join_fds: &[(OwnedFd, LinuxNamespaceType)],
    time_offsets: Option<&str>,
) -> crate::rootfs::CResult<ThreadCheck> {
    // Opened before joining a mount namespace, whose /proc may not show us.
    let check = child::thread_check()?;
    for (fd, typ) in join_fds {
        rustix::thread::move_into_link_name_space(fd.as_fd(), None)
            .map_err(|e| format!("join the {typ} namespace: {e}"))?;
    }
    if let Some(offsets) = time_offsets {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .map_err(|e| format!("create time namespace: {e}"))?;
        if !offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", offsets)
                .map_err(|e| format!("write timens_offsets: {e}"))?;
        }
    }
    Ok(check)
}

/// Forks the process of an `exec`: an intermediate joins the container's namespaces
/// (`setns` on a pidfd: all at once) and clones the process as our direct child.
pub(crate) fn fork_exec(
    common: Common<'_>,
    pidfd: BorrowedFd<'_>,
    ns_flags: u32,
    cgroup_fd: Option<BorrowedFd<'_>>,
    parent_end: &Channel,
) -> Result<Born> {
    let check = ThreadCheck::open().map_err(|e| Error::io("open /proc/self/stat", e))?;
    match berth_sys::process::fork(&check, 0, None)
        .map_err(|e| Error::io("fork the namespace helper", e))?
    {
        Forked::Child => {
            // The check is opened before joining: the container's /proc does not show us.
            let joined = child::thread_check().and_then(|check| {
                rustix::thread::move_into_thread_name_spaces(
                    pidfd,
                    rustix::thread::ThreadNameSpaceType::from_bits_retain(ns_flags),
                )
                .map_err(|e| format!("join the container's namespaces: {e}"))
                .map(|_| check)
            });
            let check = match joined {
                Ok(c) => c,
                Err(e) => child::finish(&common.chan, Err(e)),
            };
            match fork_maybe_into(&check, CLONE_PARENT, cgroup_fd) {
                Ok((Forked::Child, _)) => child::exec_main(common),
                Ok((Forked::Parent { pid, .. }, in_cgroup)) => {
                    let _ = common
                        .chan
                        .send(&Msg::Pid(if in_cgroup { pid } else { -pid }));
                    exit_now(0)
                }
                Err(e) => child::finish(&common.chan, Err(format!("fork the exec process: {e}"))),
            }
        }
        Forked::Parent { pid: helper, .. } => {
            drop(common);
            let r = parent_end.recv_pid();
            reap(helper);
            match r.map_err(|e| Error::io("sync with the namespace helper", e))? {
                Some(Msg::Pid(p)) => Ok(decode_pid(p)),
                Some(Msg::Error(m)) => Err(Error::Init(m)),
                _ => Err(Error::Init(
                    "the namespace helper exited without a pid".into(),
                )),
            }
        }
    }
}

/// Waits for a helper process we forked (not the container's processes: the caller reaps
/// those).
pub(crate) fn reap(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
}

/// Kills `pid` and waits (up to `timeout`) until it is gone; reaps it if it is our child.
pub(crate) fn kill_and_wait(pid: i32, start_time: Option<u64>, timeout: Duration) {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let pidfd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok();
    if let Some(st) = start_time
        && !crate::state::process_alive(pid, st)
    {
        // Already gone (or a zombie): just reap if ours.
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
        return;
    }
    match &pidfd {
        Some(fd) => {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        }
        None => {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    wait_gone(pid, pidfd.as_ref().map(|f| f.as_fd()), timeout);
}

/// Waits until `pid` has exited (pidfd readable), reaping it if it is our child.
pub(crate) fn wait_gone(pid: i32, pidfd: Option<BorrowedFd<'_>>, timeout: Duration) {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    if let Some(fd) = pidfd {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
    let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
}

/// The exec fifo: created with the state directory, removed by `start`.
pub(crate) fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
    // Read-write: opening does not block, and the init then blocks reading one byte.
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("open {}", path.display()), e))
}

/// Opens the namespaces joined by path (errors name the field).
pub(crate) fn open_join_fds(ns: &NsPlan) -> Result<Vec<(OwnedFd, LinuxNamespaceType)>> {
    ns.joins
        .iter()
        .map(|j| {
            rustix::fs::open(&j.path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map(|fd| (fd, j.typ))
                .map_err(|e| {
                    Error::spec(
                        format!("linux.namespaces[{}].path", j.index),
                        format!("{}: {e}", j.path.display()),
                    )
                })
        })
        .collect()
}

/// Everything the cleanup of a failed create must undo.
pub(crate) struct CreateGuard<'a> {
    pub dir: Option<PathBuf>,
    pub cgroup: Option<&'a dyn CgroupManager>,
    pub pid: Option<i32>,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            kill_and_wait(pid, None, Duration::from_secs(10));
        }
        if let Some(cg) = self.cgroup
            && let Err(e) = destroy_cgroup(cg)
        {
            tracing::warn!("cleanup after failed create: {e}");
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl CreateGuard<'_> {
    pub fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
    }
}

/// Destroys a cgroup, retrying briefly while its last processes are still exiting.
pub(crate) fn destroy_cgroup(cg: &dyn CgroupManager) -> Result<()> {
    let mut last = None;
    for i in 0..50 {
        match cg.destroy() {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(if i < 10 { 1 } else { 10 }));
    }
    Err(last.expect("loop ran").into())
}

/// Host LSMs: AppArmor/SELinux settings are tolerated with a warning where the host has
/// none (like runc on such hosts).
pub(crate) fn tolerate_lsm(p: &mut ProcessPlan, spec: &Spec, warnings: &mut Vec<String>) {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if let Some(a) = &p.apparmor
        && !apparmor
    {
        warnings.push(format!(
            "process.apparmorProfile {a:?} ignored: AppArmor is not enabled on this host"
        ));
        p.apparmor = None;
    }
    if let Some(l) = &p.selinux
        && !selinux
    {
        warnings.push(format!(
            "process.selinuxLabel {l:?} ignored: SELinux is not enabled on this host"
        ));
        p.selinux = None;
    }
    if let Some(l) = spec.linux().as_ref().and_then(|l| l.mount_label().clone())
        && !l.is_empty()
        && !selinux
    {
        warnings.push(format!(
            "linux.mountLabel {l:?} ignored: SELinux is not enabled on this host"
        ));
    }
    for w in warnings.iter() {
        tracing::warn!("{w}");
    }
}

/// cgroup subsystem → directory map for mounting cgroups into the container.
pub(crate) fn cgroup_mount_paths(cg: &dyn CgroupManager) -> BTreeMap<String, PathBuf> {
    let paths = cg.paths();
    match cg.version() {
        berth_cgroups::CgroupVersion::V2 => paths
            .into_values()
            .next()
            .map(|p| BTreeMap::from([(String::new(), p)]))
            .unwrap_or_default(),
        berth_cgroups::CgroupVersion::V1 => paths,
    }
}
