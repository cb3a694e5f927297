//! The shim's life: setup (session, subreaper, socket, container), then one epoll loop over
//! the signalfd, the control socket and its connections, the container's output and stdin.
//!
//! ```text
//!  Created ──start──▶ Running ──init reaped──▶ Exited ──output at EOF──▶ Done ──flushed──▶ exit
//!     │                (paused is a flag)       (draining)   exit.json, runtime state removed,
//!     └──shutdown──▶ Removed ──flushed──▶ exit                waiters answered, streams closed
//! ```

use crate::backend::{Backend, ChildStdio};
use crate::log::{LineSplitter, LogFile};
use crate::standby::PreBound;
use berth_shim::stream::{StreamType, frame_header};
use berth_shim::{
    EXIT_FILE, Empty, ExitInfo, Kind, PID_FILE, PREVIOUS_PID_FILE, PROCESS_NAME, Request,
    SOCKET_FILE, STARTED_FILE, ShimConfig, ShimError, StartReply, Startup, StateReply, StatsReply,
    Status, now_rfc3339,
    protocol::{MAX_REQUEST_LINE as MAX_REQUEST_LINE_LEN, to_line},
};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::epoll;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN_SIGNALS: u64 = 0;
const TOKEN_LISTENER: u64 = 1;
const TOKEN_OUTPUT: u64 = 2; // + stream index (0 stdout / pty, 1 stderr)
const TOKEN_STDIN: u64 = 4;
const TOKEN_CONN: u64 = 16; // + connection slot

/// Output an attached client may have queued before it is dropped.
const CLIENT_BUFFER_LIMIT: usize = 1 << 20;
/// Stdin bytes buffered from clients before they are read no further.
const STDIN_BUFFER_LIMIT: usize = 64 * 1024;
/// How long output is drained after the init exited (a process that escaped the container
/// may hold its stdout), and how long clients get to take their last bytes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// One read from the container's output.
const READ_CHUNK: usize = 8 * 1024;
/// How long after setup the shim hands over to a fresh image of itself (see `handoff`);
/// containers that live shorter never pay for it.
const HANDOFF_DELAY: Duration = Duration::from_millis(300);
/// How long the listener rests after accept failed for lack of descriptors.
const LISTENER_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Created,
    Running,
    /// The init was reaped; its output is being drained.
    Exited,
    /// exit.json written, waiters answered; the runtime state is removed (the built-in
    /// runtime's right after the last reply, see `Shim::cleanup`).
    Done,
    /// A created container was removed by `shutdown`.
    Removed,
}

pub(crate) struct Output {
    pub(crate) fd: OwnedFd,
    pub(crate) stream: StreamType,
    pub(crate) lines: LineSplitter,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AttachMode {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

pub(crate) struct Conn {
    pub(crate) stream: UnixStream,
    pub(crate) rbuf: Vec<u8>,
    pub(crate) wbuf: Vec<u8>,
    pub(crate) wpos: usize,
    pub(crate) attach: Option<AttachMode>,
    /// A `wait` is pending: no further request is read until it is answered.
    pub(crate) waiting: bool,
    /// The client half-closed (or we stopped reading for good).
    pub(crate) read_closed: bool,
    /// Close once the write buffer is flushed.
    pub(crate) close_after_flush: bool,
    pub(crate) interest: epoll::EventFlags,
}

impl Conn {
    pub(crate) fn pending(&self) -> usize {
        self.wbuf.len() - self.wpos
    }
}

pub struct Shim {
    pub(crate) id: String,
    pub(crate) tty: bool,
    pub(crate) stdin_once: bool,
    pub(crate) state_dir: PathBuf,
    pub(crate) backend: Backend,
    pub(crate) epoll: OwnedFd,
    pub(crate) signals: SignalFd,
    pub(crate) listener: UnixListener,
    pub(crate) outputs: [Option<Output>; 2],
    /// The container's stdin: a pipe's write end, or a dup of the pty master.
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdin_buf: Vec<u8>,
    pub(crate) stdin_close_pending: bool,
    pub(crate) stdin_interest: bool,
    /// A dup of the pty master for resizes.
    pub(crate) pty: Option<OwnedFd>,
    pub(crate) log: Option<LogFile>,
    pub(crate) conns: Vec<Option<Conn>>,
    pub(crate) phase: Phase,
    pub(crate) paused: bool,
    pub(crate) pid: i32,
    pub(crate) shim_pid: i32,
    pub(crate) started_at: Option<String>,
    pub(crate) exit: Option<ExitInfo>,
    pub(crate) deadline: Option<Instant>,
    /// When to try the handoff to a lean image; `None` once done or given up.
    pub(crate) handoff_at: Option<Instant>,
    /// The listener is out of the epoll set until then (accept failed with EMFILE).
    pub(crate) listener_paused_until: Option<Instant>,
    /// The built-in runtime's state is still to be removed (after the last reply).
    pub(crate) cleanup_pending: bool,
    /// The container's mount namespace, held from the create (until a handoff: the lean
    /// image does not carry it) or from a `SIGKILL` to every process (`rm -f`, the end of
    /// `stop`) until the cleanup: see [`Shim::hold_mount_namespace`].
    pub(crate) held_mnt_ns: Option<OwnedFd>,
    /// Writing the log failed last time (warn once per streak).
    pub(crate) log_failing: bool,
}

fn internal(what: &str, e: impl std::fmt::Display) -> ShimError {
    ShimError::internal(format!("{what}: {e}"))
}

/// A setup that failed after the startup line: the container berthd was told about goes
/// (killed, its runtime state removed), so nothing runs unsupervised.
fn abandon(backend: &mut Backend, e: ShimError) -> ShimError {
    let _ = backend.kill(Signal::SIGKILL as i32, true);
    if let Err(d) = backend.delete() {
        warn!("remove the container after a failed setup: {}", d.message);
    }
    ShimError::new(
        e.kind,
        format!(
            "{} (after the container was created; it was removed)",
            e.message
        ),
    )
}

fn set_nonblocking(fd: impl AsFd) -> Result<(), ShimError> {
    rustix::io::ioctl_fionbio(fd, true).map_err(|e| internal("set O_NONBLOCK", e))
}

/// Blocks the signals the loop handles (so they queue for the signalfd) and SIGPIPE (so a
/// vanished client or container shows up as EPIPE). Children get a clean mask: the runtime
/// library resets it before exec, `std::process::Command` does too.
fn signal_set() -> (SigSet, SigSet) {
    let mut handled = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        handled.add(s);
    }
    let mut blocked = handled;
    blocked.add(Signal::SIGPIPE);
    (handled, blocked)
}

/// A signalfd for the handled signals (blocked since the start, so none was lost; the mask
/// survives a handoff's exec).
pub(crate) fn new_signalfd() -> Result<SignalFd, ShimError> {
    let (handled, _) = signal_set();
    SignalFd::with_flags(&handled, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| internal("create a signalfd", e))
}

impl Shim {
    /// The setup: session, subreaper, socket, the container; `announce` gets the init's pid
    /// and the create's warnings (the startup line) as soon as the container exists, and
    /// the rest (the shim's own descriptors, the epoll set) comes after it, off berthd's
    /// path: berthd's first requests wait on the bound socket meanwhile. With
    /// `listening_notice`, `announce` first gets [`Startup::Listening`] once the socket is
    /// bound, so berthd may send them even before the container exists.
    ///
    /// On an error before the announcement nothing is left behind but the files berthd
    /// wrote (the runtime cleans up a failed create itself). After it (only out of
    /// descriptors or memory), the container is killed and removed and the socket is gone:
    /// berthd, told it exists, finds no shim and records its exit as unknown.
    /// `prebound`: the socket a standby bound ahead, renamed to `shim.sock` here.
    pub fn setup(
        state_dir: &Path,
        prebound: Option<PreBound>,
        announce: &mut dyn FnMut(&Startup),
    ) -> Result<Shim, ShimError> {
        let _ = rustix::thread::set_name(c"berth-shim");
        debug_assert_eq!(PROCESS_NAME, "berth-shim");
        // Our own session: a signal to berthd's process group or terminal never reaches us.
        let _ = rustix::process::setsid();
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| internal("become a child subreaper", e))?;
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = rustix::stdio::dup2_stdin(&null);
        }
        let (_, blocked) = signal_set();
        blocked
            .thread_block()
            .map_err(|e| internal("block signals", e))?;

        let state_dir = std::fs::canonicalize(state_dir).map_err(|e| {
            ShimError::new(
                Kind::NotFound,
                format!("state directory {}: {e}", state_dir.display()),
            )
        })?;
        let cfg = ShimConfig::load(&state_dir)?;
        let listener = bind_socket(&state_dir, prebound)?;
        let sock = state_dir.join(SOCKET_FILE);
        // From here on a failure must not leave a socket that looks alive.
        let guard = SocketGuard(Some(sock));
        let _ = std::fs::remove_file(state_dir.join(EXIT_FILE));
        let _ = std::fs::remove_file(state_dir.join(STARTED_FILE));
        let shim_pid = rustix::process::getpid().as_raw_nonzero().get();
        write_pid_file(&state_dir, shim_pid)
            .map_err(|e| internal(&format!("write {PID_FILE}"), e))?;
        // After `shim.pid`: a spawner that sees the shim die after this knows its setup
        // began (it must not hand the directory to another shim).
        if cfg.listening_notice {
            announce(&Startup::Listening { listening: true });
        }

        let log = match &cfg.log {
            Some(l) => Some(
                LogFile::open(&l.path, l.max_size, l.max_file)
                    .map_err(|e| internal(&format!("open the log file {}", l.path.display()), e))?,
            ),
            None => None,
        };

        // The container's stdio. Ours ends are non-blocking; its ends are closed once the
        // runtime has handed them over.
        let null = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| internal("open /dev/null", e))?;
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| internal("create a pipe", e))
        };
        let (out_r, out_w, err_r, err_w) = if cfg.tty {
            (None, None, None, None)
        } else {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            (Some(or), Some(ow), Some(er), Some(ew))
        };
        let (in_r, in_w) = if cfg.open_stdin && !cfg.tty {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let stdio = ChildStdio {
            stdin: in_r.as_ref().map(|f| f.as_fd()).unwrap_or(null.as_fd()),
            stdout: out_w.as_ref().map(|f| f.as_fd()).unwrap_or(null.as_fd()),
            stderr: err_w.as_ref().map(|f| f.as_fd()).unwrap_or(null.as_fd()),
        };
        // `started` before the line: once berthd is told the container runs, a restore
        // after a crash must see that it did.
        let start_now = cfg.start_now;
        let (mut backend, created) =
            Backend::create(&cfg, &state_dir, stdio, &mut |pid, warnings| {
                if start_now {
                    mark_started(&state_dir);
                }
                announce(&Startup::Ok { pid, warnings });
            })?;
        let phase = if start_now {
            Phase::Running
        } else {
            Phase::Created
        };
        let pid = created.pid;
        drop((in_r, out_w, err_w, null));

        let parts = Self::own_stdio(&cfg, created.pty_master, out_r, err_r, in_w).and_then(
            |(outputs, pty, stdin)| {
                let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
                    .map_err(|e| internal("create epoll", e))?;
                Ok((outputs, pty, stdin, epoll, new_signalfd()?))
            },
        );
        let (outputs, pty, stdin, epoll, signals) = match parts {
            Ok(p) => p,
            Err(e) => return Err(abandon(&mut backend, e)),
        };
        let mut shim = Shim {
            id: cfg.id.clone(),
            tty: cfg.tty,
            stdin_once: cfg.stdin_once,
            state_dir,
            backend,
            epoll,
            signals,
            listener,
            outputs,
            stdin,
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            stdin_interest: false,
            pty,
            log,
            conns: Vec::new(),
            phase,
            paused: false,
            pid,
            shim_pid,
            started_at: cfg.start_now.then(now_rfc3339),
            exit: None,
            deadline: None,
            handoff_at: Some(Instant::now() + HANDOFF_DELAY),
            listener_paused_until: None,
            cleanup_pending: false,
            held_mnt_ns: None,
            log_failing: false,
        };
        shim.hold_mount_namespace();
        if let Err(e) = shim.register() {
            return Err(abandon(&mut shim.backend, e));
        }
        guard.disarm();
        Ok(shim)
    }

    /// The shim's ends of the container's stdio, non-blocking: the outputs, a dup of the
    /// pty master for resizes, the container's stdin.
    #[allow(clippy::type_complexity)]
    fn own_stdio(
        cfg: &ShimConfig,
        pty_master: Option<OwnedFd>,
        out_r: Option<OwnedFd>,
        err_r: Option<OwnedFd>,
        in_w: Option<OwnedFd>,
    ) -> Result<([Option<Output>; 2], Option<OwnedFd>, Option<OwnedFd>), ShimError> {
        let mut outputs: [Option<Output>; 2] = [None, None];
        let mut pty = None;
        let mut stdin = None;
        if let Some(master) = pty_master {
            set_nonblocking(&master)?;
            if let Some(size) = cfg.console_size {
                let _ = rustix::termios::tcsetwinsize(&master, winsize(size.height, size.width));
            }
            let dup = master
                .try_clone()
                .map_err(|e| internal("dup the pty master", e))?;
            if cfg.open_stdin {
                stdin = Some(
                    master
                        .try_clone()
                        .map_err(|e| internal("dup the pty master", e))?,
                );
            }
            pty = Some(dup);
            outputs[0] = Some(Output {
                fd: master,
                stream: StreamType::Stdout,
                lines: LineSplitter::default(),
            });
        } else {
            for (i, (fd, stream)) in [(out_r, StreamType::Stdout), (err_r, StreamType::Stderr)]
                .into_iter()
                .enumerate()
            {
                if let Some(fd) = fd {
                    set_nonblocking(&fd)?;
                    outputs[i] = Some(Output {
                        fd,
                        stream,
                        lines: LineSplitter::default(),
                    });
                }
            }
            if let Some(w) = in_w {
                set_nonblocking(&w)?;
                stdin = Some(w);
            }
        }
        Ok((outputs, pty, stdin))
    }

    /// Puts every descriptor into the epoll set (after setup or a handoff).
    pub(crate) fn register(&mut self) -> Result<(), ShimError> {
        let add = |fd: BorrowedFd<'_>, token: u64, flags: epoll::EventFlags| {
            epoll::add(&self.epoll, fd, epoll::EventData::new_u64(token), flags)
                .map_err(|e| internal("epoll add", e))
        };
        add(self.signals.as_fd(), TOKEN_SIGNALS, epoll::EventFlags::IN)?;
        add(self.listener.as_fd(), TOKEN_LISTENER, epoll::EventFlags::IN)?;
        for (i, o) in self.outputs.iter().enumerate() {
            if let Some(o) = o {
                add(o.fd.as_fd(), TOKEN_OUTPUT + i as u64, epoll::EventFlags::IN)?;
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(c) = c {
                add(c.stream.as_fd(), TOKEN_CONN + i as u64, c.interest)?;
            }
        }
        Ok(())
    }

    /// Serves until the container is gone and every client got its last bytes.
    pub fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(16);
        loop {
            if self.finished() {
                self.cleanup();
                break;
            }
            let wake = [self.deadline, self.handoff_at, self.listener_paused_until]
                .into_iter()
                .flatten()
                .min();
            let timeout = wake.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            events.clear();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    warn!("epoll_wait: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            for ev in events.iter() {
                let token = ev.data.u64();
                let flags = ev.flags;
                match token {
                    TOKEN_SIGNALS => self.on_signals(),
                    TOKEN_LISTENER => self.on_accept(),
                    t if (TOKEN_OUTPUT..TOKEN_OUTPUT + 2).contains(&t) => {
                        self.on_output((t - TOKEN_OUTPUT) as usize)
                    }
                    TOKEN_STDIN => self.flush_stdin(),
                    t if t >= TOKEN_CONN => self.on_conn((t - TOKEN_CONN) as usize, flags),
                    _ => {}
                }
            }
            self.progress();
            if self
                .listener_paused_until
                .is_some_and(|t| Instant::now() >= t)
                && epoll::add(
                    &self.epoll,
                    &self.listener,
                    epoll::EventData::new_u64(TOKEN_LISTENER),
                    epoll::EventFlags::IN,
                )
                .is_ok()
            {
                self.listener_paused_until = None;
            }
            if self.handoff_at.is_some_and(|t| Instant::now() >= t) {
                if !matches!(self.phase, Phase::Created | Phase::Running) {
                    self.handoff_at = None;
                } else if self.handoff_ready() {
                    // Returns only on failure: keep serving in this image.
                    let e = self.handoff();
                    warn!("{e}; continuing without it");
                    self.handoff_at = None;
                } else {
                    self.handoff_at = Some(Instant::now() + HANDOFF_DELAY);
                }
            }
        }
    }

    /// Keeps the container's mount namespace alive past the death of its processes, so the
    /// kernel does not tear it down in the init's exit, which the shim (and `run --rm`,
    /// `rm -f`, `stop`) wait for: the teardown waits for an RCU grace period, and
    /// unmounting an overlay that is not `volatile` syncs the whole filesystem of its upper
    /// dir (the host's: 1-20 ms with other I/O on it). The namespace goes in
    /// [`Shim::cleanup`], after the exit was reported. Built-in runtime only (its rootfs
    /// lives only in that namespace); best effort (if the open fails, the exit tears the
    /// namespace down as before).
    fn hold_mount_namespace(&mut self) {
        if self.held_mnt_ns.is_none() && self.backend.is_builtin() && self.pid > 0 {
            self.held_mnt_ns = rustix::fs::open(
                format!("/proc/{}/ns/mnt", self.pid),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok();
        }
    }

    /// After the last reply: the runtime state [`Shim::finish_exit`] left for later. The
    /// connections close only after it (when the shim is dropped), so a client that waits
    /// for EOF (berthd for shims it did not spawn) still sees the cleanup done.
    fn cleanup(&mut self) {
        // The last reference to the container's mount namespace, if held: its teardown
        // (the rootfs overlay's unmount, and its sync) happens here.
        self.held_mnt_ns = None;
        if std::mem::take(&mut self.cleanup_pending)
            && let Err(e) = self.backend.delete()
        {
            warn!("clean up container {}: {e}", self.id);
        }
    }

    fn finished(&self) -> bool {
        match self.phase {
            Phase::Done | Phase::Removed => {
                let flushed = self.conns.iter().flatten().all(|c| c.pending() == 0);
                flushed || self.deadline.is_some_and(|d| Instant::now() >= d)
            }
            _ => false,
        }
    }

    /// Moves the exit along once the output is drained (or the drain timed out).
    fn progress(&mut self) {
        if matches!(self.phase, Phase::Done | Phase::Removed) {
            // Replies queued by the transition (waiters, closing attach streams).
            for i in 0..self.conns.len() {
                self.flush_conn(i);
            }
        }
        if self.phase != Phase::Exited {
            return;
        }
        let drained = self.outputs.iter().all(Option::is_none);
        let late = self.deadline.is_some_and(|d| Instant::now() >= d);
        if drained || late {
            self.finish_exit();
        }
    }

    fn on_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(Signal::SIGTERM) => {
                    if matches!(self.phase, Phase::Created | Phase::Running) {
                        let _ = self.backend.kill(Signal::SIGTERM as i32, false);
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) fn reap(&mut self) {
        use rustix::process::{WaitOptions, wait};
        // wait(), not waitpid(None): the latter is "same process group", and the
        // container's init has a session of its own.
        while let Ok(Some((pid, status))) = wait(WaitOptions::NOHANG) {
            if pid.as_raw_nonzero().get() != self.pid {
                continue; // an orphan re-parented to us, or a runtime helper
            }
            let code = match (status.exit_status(), status.terminating_signal()) {
                (Some(c), _) => c,
                (None, Some(sig)) => 128 + sig,
                _ => continue,
            };
            self.init_exited(code);
        }
    }

    fn init_exited(&mut self, exit_code: i32) {
        if matches!(self.phase, Phase::Exited | Phase::Done | Phase::Removed) {
            return;
        }
        let exited_at = now_rfc3339();
        let oom_killed = self.backend.oom_kill_count() > 0;
        self.exit = Some(ExitInfo {
            exit_code,
            exited_at,
            oom_killed,
        });
        self.phase = Phase::Exited;
        self.paused = false;
        self.backend.kill_leftovers();
        self.deadline = Some(Instant::now() + DRAIN_TIMEOUT);
    }

    /// The container is gone and its output drained: record, clean up, answer, close.
    fn finish_exit(&mut self) {
        for i in 0..self.outputs.len() {
            self.close_output(i);
        }
        let exit = self.exit.clone().unwrap_or_else(|| ExitInfo {
            exit_code: 255,
            exited_at: now_rfc3339(),
            oom_killed: false,
        });
        self.exit = Some(exit.clone());
        let json = serde_json::to_vec(&exit).unwrap_or_default();
        if let Err(e) = write_exit_file(&self.state_dir, &json) {
            warn!("write {EXIT_FILE}: {e}");
        }
        // The built-in runtime's state (cgroup rmdirs: up to a few ms each on cgroup v1, and
        // the state dir) is removed after the waiters got their answer (see `run`), so the
        // exit reaches berthd first. Nothing berthd does next depends on it: the rootfs is
        // mounted only in the container's mount namespace (released in `cleanup` too), which
        // no process uses any more; a removal merely renames the snapshot into the trash.
        // An external runtime's `delete` still comes first: it unmounts the host-side
        // rootfs, which berthd's removal would otherwise find mounted.
        if self.backend.is_builtin() {
            self.cleanup_pending = true;
        } else if let Err(e) = self.backend.delete() {
            warn!("clean up container {}: {e}", self.id);
        }
        self.phase = Phase::Done;
        self.stdin = None;
        self.stdin_buf = Vec::new();
        let reply = to_line(&exit);
        for i in 0..self.conns.len() {
            if let Some(c) = self.conns.get_mut(i).and_then(Option::as_mut) {
                if c.waiting {
                    c.waiting = false;
                    c.wbuf.extend_from_slice(&reply);
                }
                if c.attach.is_some() {
                    c.close_after_flush = true;
                }
            }
            self.handle_lines(i);
            self.flush_conn(i);
        }
        self.deadline = Some(Instant::now() + DRAIN_TIMEOUT);
    }

    // ---- the container's output -------------------------------------------------------

    fn on_output(&mut self, i: usize) {
        let mut buf = [0u8; READ_CHUNK];
        // A few reads per wakeup keep one chatty stream from starving the rest.
        for _ in 0..4 {
            let Some(out) = self.outputs[i].as_ref() else {
                return;
            };
            match rustix::io::read(&out.fd, &mut buf) {
                Ok(0) => return self.close_output(i),
                Ok(n) => self.deliver(i, &buf[..n]),
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => {}
                // EIO: the pty's last slave closed.
                Err(_) => return self.close_output(i),
            }
        }
    }

    fn deliver(&mut self, i: usize, data: &[u8]) {
        let Some(out) = self.outputs[i].as_mut() else {
            return;
        };
        let stream = out.stream;
        if let Some(log) = self.log.as_mut() {
            let mut failed = None;
            out.lines.feed(data, &mut |line, time| {
                if let Err(e) = log.write_entry(line, stream.name(), time) {
                    failed = Some(e);
                }
            });
            // Say it once per failure streak, not once per chunk of output.
            match failed {
                Some(e) if !self.log_failing => {
                    warn!("write the log of {}: {e}", self.id);
                    self.log_failing = true;
                }
                Some(_) => {}
                None => self.log_failing = false,
            }
        }
        let mut header = None;
        if !self.tty {
            header = Some(frame_header(stream, data.len() as u32));
        }
        for idx in 0..self.conns.len() {
            let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            let Some(mode) = c.attach else { continue };
            let wanted = match stream {
                StreamType::Stderr => mode.stderr,
                _ => mode.stdout,
            };
            if !wanted {
                continue;
            }
            if c.pending() + data.len() > CLIENT_BUFFER_LIMIT {
                // It does not keep up: drop it rather than block the container.
                self.drop_conn(idx);
                continue;
            }
            if let Some(h) = header {
                c.wbuf.extend_from_slice(&h);
            }
            c.wbuf.extend_from_slice(data);
            self.flush_conn(idx);
        }
    }

    fn close_output(&mut self, i: usize) {
        let Some(mut out) = self.outputs[i].take() else {
            return;
        };
        let _ = epoll::delete(&self.epoll, &out.fd);
        if let Some(log) = self.log.as_mut() {
            let stream = out.stream;
            out.lines.finish(&mut |line, time| {
                let _ = log.write_entry(line, stream.name(), time);
            });
        }
    }

    // ---- stdin ------------------------------------------------------------------------

    fn flush_stdin(&mut self) {
        let Some(fd) = self.stdin.as_ref() else {
            self.stdin_buf = Vec::new();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match rustix::io::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => {}
                Err(_) => {
                    // The container closed its stdin (or exited).
                    self.close_stdin();
                    return;
                }
            }
        }
        if self.stdin_buf.is_empty() {
            self.stdin_buf = Vec::new();
            if self.stdin_close_pending && !self.tty {
                self.close_stdin();
                return;
            }
        }
        let want = !self.stdin_buf.is_empty();
        if want != self.stdin_interest
            && let Some(fd) = self.stdin.as_ref()
        {
            let r = if want {
                epoll::add(
                    &self.epoll,
                    fd,
                    epoll::EventData::new_u64(TOKEN_STDIN),
                    epoll::EventFlags::OUT,
                )
            } else {
                epoll::delete(&self.epoll, fd)
            };
            if r.is_ok() {
                self.stdin_interest = want;
            }
        }
        // Clients held back by a full buffer may be read again.
        if self.stdin_buf.len() < STDIN_BUFFER_LIMIT {
            for i in 0..self.conns.len() {
                self.update_interest(i);
            }
        }
    }

    fn close_stdin(&mut self) {
        if let Some(fd) = self.stdin.take()
            && self.stdin_interest
        {
            let _ = epoll::delete(&self.epoll, &fd);
        }
        self.stdin_interest = false;
        self.stdin_buf = Vec::new();
    }

    // ---- connections ------------------------------------------------------------------

    fn on_accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors or memory: the listener stays readable, so stop
                    // watching it for a moment instead of spinning.
                    warn!("accept on {SOCKET_FILE}: {e}");
                    if epoll::delete(&self.epoll, &self.listener).is_ok() {
                        self.listener_paused_until = Some(Instant::now() + LISTENER_PAUSE);
                    }
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let idx = match self.conns.iter().position(Option::is_none) {
                Some(i) => i,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            if epoll::add(
                &self.epoll,
                &stream,
                epoll::EventData::new_u64(TOKEN_CONN + idx as u64),
                interest,
            )
            .is_err()
            {
                continue;
            }
            self.conns[idx] = Some(Conn {
                stream,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
                attach: None,
                waiting: false,
                read_closed: false,
                close_after_flush: false,
                interest,
            });
            // Served in arrival order across connections: what earlier connections sent
            // first, then this one's bytes, which usually came with it (berthd writes its
            // request right after the connect, and a connection in the listen backlog
            // already holds them).
            self.read_earlier_requests(idx);
            self.read_conn(idx);
            self.update_interest(idx);
        }
    }

    /// Reads the requests waiting on every connection but `newest`, before `newest`'s are
    /// read. A client that writes a request on one connection and then connects another
    /// (berthd's attach, then its start) so has them served in that order, even when both
    /// wait in the listen backlog until the shim's loop begins: the first connection's
    /// bytes are in its queue before the second connection exists.
    fn read_earlier_requests(&mut self, newest: usize) {
        for i in 0..self.conns.len() {
            let pending = self.conns[i]
                .as_ref()
                .is_some_and(|c| c.attach.is_none() && !c.waiting && !c.read_closed);
            if i != newest && pending {
                self.read_conn(i);
                self.update_interest(i);
            }
        }
    }

    /// Closes a connection; its slot is reused by the next one.
    fn drop_conn(&mut self, idx: usize) {
        if let Some(c) = self.conns.get_mut(idx).and_then(Option::take) {
            let _ = epoll::delete(&self.epoll, &c.stream);
        }
    }

    fn on_conn(&mut self, idx: usize, flags: epoll::EventFlags) {
        if self.conns.get(idx).is_none_or(Option::is_none) {
            return;
        }
        if flags.intersects(epoll::EventFlags::ERR) {
            return self.drop_conn(idx);
        }
        if flags.contains(epoll::EventFlags::OUT) {
            self.flush_conn(idx);
        }
        if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::RDHUP) {
            self.read_conn(idx);
        }
        if flags.contains(epoll::EventFlags::HUP) {
            // Both directions are shut: nothing more can be delivered.
            return self.drop_conn(idx);
        }
        self.update_interest(idx);
    }

    fn read_conn(&mut self, idx: usize) {
        let mut buf = [0u8; 4096];
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if c.read_closed {
                return;
            }
            let stdin_attached = c.attach.is_some_and(|m| m.stdin);
            if stdin_attached && self.stdin_buf.len() >= STDIN_BUFFER_LIMIT {
                return; // back-pressure: read more once the container took its stdin
            }
            if c.attach.is_none() && (c.waiting || c.rbuf.len() > MAX_REQUEST_LINE_LEN) {
                return;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.read_closed = true;
                    if stdin_attached && self.stdin_once {
                        self.stdin_close_pending = true;
                        self.flush_stdin();
                    }
                    let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                        return;
                    };
                    if c.attach.is_none() && !c.waiting {
                        // Answer what it sent, then close.
                        c.close_after_flush = true;
                        self.handle_lines(idx);
                        self.flush_conn(idx);
                    }
                    return;
                }
                Ok(n) => {
                    if let Some(mode) = c.attach {
                        if mode.stdin && self.stdin.is_some() {
                            self.stdin_buf.extend_from_slice(&buf[..n]);
                            self.flush_stdin();
                        }
                        continue;
                    }
                    c.rbuf.extend_from_slice(&buf[..n]);
                    self.handle_lines(idx);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(idx),
            }
        }
    }

    /// Answers every complete request line of a connection (until a `wait` blocks it or it
    /// turns into an attach stream).
    fn handle_lines(&mut self, idx: usize) {
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if c.waiting {
                return;
            }
            if c.attach.is_some() {
                // Bytes after the attach line are stdin.
                if !c.rbuf.is_empty() {
                    let rest = std::mem::take(&mut c.rbuf);
                    if c.attach.is_some_and(|m| m.stdin) && self.stdin.is_some() {
                        self.stdin_buf.extend_from_slice(&rest);
                        self.flush_stdin();
                    }
                }
                return;
            }
            let Some(nl) = c.rbuf.iter().position(|&b| b == b'\n') else {
                if c.rbuf.len() > MAX_REQUEST_LINE_LEN {
                    let e = ShimError::invalid(format!(
                        "request line longer than {MAX_REQUEST_LINE_LEN} bytes"
                    ));
                    c.wbuf.extend_from_slice(&e.to_line());
                    c.rbuf = Vec::new();
                    c.read_closed = true;
                    c.close_after_flush = true;
                    self.flush_conn(idx);
                }
                return;
            };
            let rest = c.rbuf.split_off(nl + 1);
            let line = std::mem::replace(&mut c.rbuf, rest);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let reply = match Request::parse(&line) {
                Ok(req) => self.handle(idx, req),
                Err(e) => Some(e.to_line()),
            };
            if let Some(reply) = reply
                && let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut)
            {
                c.wbuf.extend_from_slice(&reply);
            }
            self.flush_conn(idx);
        }
    }

    fn not_running(&self) -> ShimError {
        ShimError::conflict(format!("container {} is not running", self.id))
    }

    /// One request; `None` when the reply comes later (`wait`).
    fn handle(&mut self, idx: usize, req: Request) -> Option<Vec<u8>> {
        let result: Result<Vec<u8>, ShimError> = match req {
            Request::State => Ok(to_line(&self.state())),
            Request::Start => self.start().map(|r| to_line(&r)),
            Request::Kill { signal, all } => match self.phase {
                Phase::Created | Phase::Running => {
                    if all && signal == Signal::SIGKILL as i32 {
                        self.hold_mount_namespace();
                    }
                    self.backend.kill(signal, all).map(|()| to_line(&Empty {}))
                }
                _ => Err(self.not_running()),
            },
            Request::Wait => match self.phase {
                Phase::Done if self.exit.is_some() => Ok(to_line(&self.exit)),
                Phase::Removed => Err(self.removed_error()),
                _ => {
                    if let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) {
                        c.waiting = true;
                    }
                    return None;
                }
            },
            Request::Resize { height, width } => match (&self.pty, self.phase) {
                (None, _) => Err(ShimError::invalid(format!(
                    "container {} has no terminal to resize",
                    self.id
                ))),
                (Some(_), Phase::Done | Phase::Removed | Phase::Exited) => Err(self.not_running()),
                (Some(pty), _) => rustix::termios::tcsetwinsize(pty, winsize(height, width))
                    .map(|()| to_line(&Empty {}))
                    .map_err(|e| internal("resize the terminal", e)),
            },
            Request::Pause => match (self.phase, self.paused) {
                (Phase::Running, false) => self.backend.pause().map(|()| {
                    self.paused = true;
                    to_line(&Empty {})
                }),
                (Phase::Running, true) => Err(ShimError::conflict(format!(
                    "container {} is already paused",
                    self.id
                ))),
                _ => Err(self.not_running()),
            },
            Request::Resume => match (self.phase, self.paused) {
                (Phase::Running, true) => self.backend.resume().map(|()| {
                    self.paused = false;
                    to_line(&Empty {})
                }),
                (Phase::Running, false) => Err(ShimError::conflict(format!(
                    "container {} is not paused",
                    self.id
                ))),
                _ => Err(self.not_running()),
            },
            Request::Update { resources } => match self.phase {
                Phase::Created | Phase::Running => {
                    self.backend.update(&resources).map(|()| to_line(&Empty {}))
                }
                _ => Err(self.not_running()),
            },
            Request::Stats => match self.phase {
                Phase::Created | Phase::Running => self
                    .backend
                    .stats()
                    .map(|(stats, pids)| to_line(&StatsReply { stats, pids })),
                _ => Err(self.not_running()),
            },
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => match self.phase {
                Phase::Created | Phase::Running => {
                    if let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) {
                        c.attach = Some(AttachMode {
                            stdin,
                            stdout,
                            stderr,
                        });
                    }
                    Ok(to_line(&Empty {}))
                }
                _ => Err(self.not_running()),
            },
            Request::Shutdown => self.shutdown().map(|()| to_line(&Empty {})),
        };
        Some(result.unwrap_or_else(|e| e.to_line()))
    }

    fn state(&self) -> StateReply {
        let status = match self.phase {
            Phase::Created => Status::Created,
            Phase::Running if self.paused => Status::Paused,
            Phase::Running => Status::Running,
            Phase::Exited | Phase::Done | Phase::Removed => Status::Stopped,
        };
        StateReply {
            id: self.id.clone(),
            status,
            pid: self.pid,
            shim_pid: self.shim_pid,
            started_at: self.started_at.clone(),
            exit: self.exit.clone(),
        }
    }

    fn start(&mut self) -> Result<StartReply, ShimError> {
        match self.phase {
            Phase::Created => {}
            Phase::Running => {
                return Err(ShimError::new(
                    Kind::NotModified,
                    format!("container {} is already running", self.id),
                ));
            }
            _ => {
                return Err(ShimError::conflict(format!(
                    "container {} has exited; a shim runs a container once",
                    self.id
                )));
            }
        }
        self.backend.start()?;
        mark_started(&self.state_dir);
        let at = now_rfc3339();
        self.started_at = Some(at.clone());
        self.phase = Phase::Running;
        Ok(StartReply { started_at: at })
    }

    fn removed_error(&self) -> ShimError {
        ShimError::conflict(format!(
            "container {} was removed before it started",
            self.id
        ))
    }

    fn shutdown(&mut self) -> Result<(), ShimError> {
        match self.phase {
            Phase::Created => {}
            Phase::Running => {
                return Err(ShimError::conflict(format!(
                    "container {} is running: kill it first",
                    self.id
                )));
            }
            _ => return Ok(()),
        }
        self.phase = Phase::Removed;
        self.held_mnt_ns = None;
        let r = self.backend.delete();
        self.reap();
        self.stdin = None;
        for i in 0..self.outputs.len() {
            if let Some(o) = self.outputs[i].take() {
                let _ = epoll::delete(&self.epoll, &o.fd);
            }
        }
        let err = self.removed_error().to_line();
        for c in self.conns.iter_mut().flatten() {
            if c.waiting {
                c.waiting = false;
                c.wbuf.extend_from_slice(&err);
            }
            c.close_after_flush = true;
        }
        self.deadline = Some(Instant::now() + DRAIN_TIMEOUT);
        r
    }

    /// Writes what a connection has queued, as far as the socket takes it.
    fn flush_conn(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        while c.pending() > 0 {
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => break,
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(idx),
            }
        }
        if c.pending() == 0 {
            c.wbuf.clear();
            c.wpos = 0;
            if c.wbuf.capacity() > 64 * 1024 {
                c.wbuf = Vec::new();
            }
            if c.close_after_flush && !c.waiting {
                return self.drop_conn(idx);
            }
        } else if c.wpos > 64 * 1024 {
            c.wbuf.drain(..c.wpos);
            c.wpos = 0;
        }
        self.update_interest(idx);
    }

    pub(crate) fn update_interest(&mut self, idx: usize) {
        let stdin_full = self.stdin_buf.len() >= STDIN_BUFFER_LIMIT;
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let mut want = epoll::EventFlags::empty();
        let reading = match c.attach {
            _ if c.read_closed => false,
            Some(m) => !(m.stdin && stdin_full),
            None => !c.waiting && c.rbuf.len() <= MAX_REQUEST_LINE_LEN,
        };
        if reading {
            want |= epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        }
        if c.pending() > 0 {
            want |= epoll::EventFlags::OUT;
        }
        if want != c.interest
            && epoll::modify(
                &self.epoll,
                &c.stream,
                epoll::EventData::new_u64(TOKEN_CONN + idx as u64),
                want,
            )
            .is_ok()
        {
            c.interest = want;
        }
    }
}

fn winsize(height: u16, width: u16) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Writes `<state_dir>/shim.pid` ([`PID_FILE`]) in place: no temp file and rename, as its
/// only reader that can race the write, berthd's launcher, asks whether it exists (a
/// shim that died in its setup); everyone else reads it after the startup line. A shim
/// killed between the create and the write leaves an empty file (or a previous pid), which
/// means the same. berthd sets the previous `shim.pid` aside before every spawn
/// ([`PREVIOUS_PID_FILE`]): taken back here, its inode is written over, cut to the new
/// length (never to zero, which would free its block), so no inode is allocated.
fn write_pid_file(state_dir: &Path, pid: i32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join(PID_FILE);
    // Only a missing name is expected to fail here (a fresh directory): the open creates.
    let _ = std::fs::rename(state_dir.join(PREVIOUS_PID_FILE), &path);
    let text = pid.to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false) // cut after the write, to its length
        .mode(0o644)
        .open(&path)?;
    f.write_all(text.as_bytes())?;
    f.set_len(text.len() as u64)
}

/// Makes `<state_dir>/started` ([`STARTED_FILE`]) for berthd's restore: a hard link to
/// `shim.pid`, so no inode is allocated on the start's path (the setup removed the
/// previous run's link before it wrote `shim.pid`). Readers only ask whether it exists.
/// A failure is logged, not fatal: the container runs; only a restore after a berthd
/// crash before the start was recorded durably would then miss that it started.
fn mark_started(state_dir: &Path) {
    let path = state_dir.join(STARTED_FILE);
    let r = match std::fs::hard_link(state_dir.join(PID_FILE), &path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // No link (a file system without hard links): an empty file says the same.
        Err(_) => std::fs::write(&path, b""),
        Ok(()) => Ok(()),
    };
    if let Err(e) = r {
        warn!("write {}/{STARTED_FILE}: {e}", state_dir.display());
    }
}

/// Binds `<state_dir>/shim.sock` (through the directory, so long paths work), refusing
/// when another shim still serves it. A standby's `prebound` socket is renamed there
/// instead (over a previous shim's dead socket: no inode is allocated or freed apart); if
/// that fails (another filesystem), it is removed and a new one bound.
fn bind_socket(state_dir: &Path, prebound: Option<PreBound>) -> Result<UnixListener, ShimError> {
    let path = state_dir.join(SOCKET_FILE);
    if berth_shim::client::connect_unix(&path).is_ok() {
        return Err(ShimError::conflict(format!(
            "another shim serves {} (is the container already running?)",
            path.display()
        )));
    }
    if let Some(listener) = prebound.and_then(|p| p.move_to(&path)) {
        return Ok(listener);
    }
    let _ = std::fs::remove_file(&path);
    let dir = std::fs::File::open(state_dir)
        .map_err(|e| internal(&format!("open {}", state_dir.display()), e))?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(SOCKET_FILE);
    let target = if path.as_os_str().len() < 100 {
        path.clone()
    } else {
        short
    };
    let l = UnixListener::bind(&target)
        .map_err(|e| internal(&format!("bind {}", path.display()), e))?;
    l.set_nonblocking(true)
        .map_err(|e| internal("set the socket non-blocking", e))?;
    Ok(l)
}

/// Writes `exit.json` atomically into the inode of `shim.json`, which the setup read once
/// and nobody reads again (berthd writes a new one before every spawn): overwritten in
/// place and cut to length (its data block stays: no block is freed, which on this
/// machine's ext4 is a synchronous discard), then renamed to `exit.json`. That saves an
/// inode allocation on the exit report's path and a file with a data block in the
/// directory's deletion. A reader never sees a partial `exit.json` (the name appears with
/// the rename); a crash before the rename leaves a `shim.json` that is no valid config
/// and no `exit.json`, i.e. no exit record, which is true — and the next spawn writes
/// `shim.json` anew. Without a `shim.json` (removed by hand), a new file as before.
fn write_exit_file(state_dir: &Path, json: &[u8]) -> std::io::Result<()> {
    let exit = state_dir.join(EXIT_FILE);
    let config = state_dir.join(berth_shim::CONFIG_FILE);
    let in_place = std::fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .and_then(|mut f| {
            f.write_all(json)?;
            f.set_len(json.len() as u64)
        })
        .and_then(|()| std::fs::rename(&config, &exit));
    if in_place.is_ok() {
        return Ok(());
    }
    replace_file(&exit, json, 0o644)
}

/// Replaces a file atomically (temp file, rename) without fsync.
///
/// The state directory lives in berthd's exec root: its files must outlive a crashing shim
/// or berthd (the page cache does) and readers must never see them half-written (the rename
/// does), but not a power failure, which takes the containers with it. `fsync` here cost
/// 3-6 ms per container start and exit on this machine's disk, on `docker run`'s path.
fn replace_file(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

struct SocketGuard(Option<PathBuf>);

impl SocketGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
