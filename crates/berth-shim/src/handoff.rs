//! The lean monitor: a shim that created its container hands over to a fresh image of itself.
//!
//! Creating a container leaves its mark on the shim's memory: the parsed spec and the
//! seccomp compilation leave a fragmented heap, deep calls leave a touched stack, the
//! loader and libseccomp initialised their state. A shim then idles for the container's
//! whole life, so that residue *is* the engine's memory per container. Once the container
//! runs (and the shim has been up for a moment, so short-lived containers never pay), the
//! shim re-executes itself (`/proc/self/exe`, which also works from berthd's sealed memfd)
//! and the new image continues with exactly the same descriptors and state:
//!
//! ```text
//!  old image                                  new image (berth-shim --monitor <state_dir>)
//!  socketpair(SEQPACKET) a, b
//!  sendmsg(a, state JSON + SCM_RIGHTS fds) ──▶ queued in b
//!  dup2(b, 0); execv(/proc/self/exe)  ───────▶ recvmsg(0): state + fds; dup2(/dev/null, 0)
//!                                             new epoll + signalfd, reap, serve
//! ```
//!
//! The process stays the same (pid, children, session, subreaper flag, blocked signal mask
//! and pending signals all survive `execve`), so the container never notices and no exit
//! can be missed; clients connected at that moment keep their connections. The handoff
//! only happens while no connection has a half-read request or unsent reply and no stdin
//! is buffered; if `execve` fails the old image just carries on.

use crate::backend::{Backend, BackendState};
use crate::log::{LineSplitter, LogFile};
use crate::server::{AttachMode, Conn, Output, Phase, Shim, new_signalfd};
use berth_shim::stream::StreamType;
use berth_shim::{LogConfig, ShimError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::path::PathBuf;

/// The most descriptors one handoff carries (the kernel's SCM_MAX_FD is 253).
const MAX_FDS: usize = 250;
/// The largest state message (pending partial log lines dominate: 2 × 16 KiB, hex).
const MAX_MESSAGE: usize = 256 * 1024;
/// argv[1] of the new image.
pub const MONITOR_FLAG: &str = "--monitor";

#[derive(Serialize, Deserialize)]
struct State {
    id: String,
    tty: bool,
    stdin_once: bool,
    state_dir: PathBuf,
    backend: BackendState,
    created: bool,
    paused: bool,
    pid: i32,
    shim_pid: i32,
    started_at: Option<String>,
    log: Option<LogConfig>,
    outputs: Vec<Option<OutputState>>,
    stdin: bool,
    stdin_close_pending: bool,
    pty: bool,
    /// The built-in runtime's start gate is among the descriptors (a created container).
    #[serde(default)]
    start_gate: bool,
    conns: Vec<ConnState>,
}

#[derive(Serialize, Deserialize)]
struct OutputState {
    stderr: bool,
    /// An unfinished log line, hex.
    pending: String,
    partial_time: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ConnState {
    attach: Option<[bool; 3]>,
    waiting: bool,
    read_closed: bool,
}

fn internal(what: &str, e: impl std::fmt::Display) -> ShimError {
    ShimError::internal(format!("handoff: {what}: {e}"))
}

impl Shim {
    /// Whether the state allows a handoff right now (nothing half-done in a buffer).
    pub(crate) fn handoff_ready(&self) -> bool {
        matches!(self.phase, Phase::Created | Phase::Running)
            && self.listener_paused_until.is_none()
            && self.stdin_buf.is_empty()
            && self
                .conns
                .iter()
                .flatten()
                .all(|c| c.pending() == 0 && c.rbuf.is_empty() && !c.close_after_flush)
            && self.conns.iter().flatten().count() + 6 <= MAX_FDS
    }

    /// Re-executes the shim with its state; returns only if that failed (the caller keeps
    /// serving in this image).
    pub(crate) fn handoff(&mut self) -> ShimError {
        let mut fds: Vec<BorrowedFd<'_>> = vec![self.listener.as_fd()];
        let mut outputs = Vec::new();
        for o in &self.outputs {
            outputs.push(o.as_ref().map(|o| {
                fds.push(o.fd.as_fd());
                OutputState {
                    stderr: o.stream == StreamType::Stderr,
                    pending: hex::encode(&o.lines.pending),
                    partial_time: o.lines.partial_time.clone(),
                }
            }));
        }
        if let Some(f) = &self.stdin {
            fds.push(f.as_fd());
        }
        if let Some(f) = &self.pty {
            fds.push(f.as_fd());
        }
        if let Some(l) = &self.log {
            fds.push(l.file().as_fd());
        }
        let start_gate = self.backend.start_gate();
        if let Some(g) = start_gate {
            fds.push(g);
        }
        let mut conns = Vec::new();
        for c in self.conns.iter().flatten() {
            fds.push(c.stream.as_fd());
            conns.push(ConnState {
                attach: c.attach.map(|m| [m.stdin, m.stdout, m.stderr]),
                waiting: c.waiting,
                read_closed: c.read_closed,
            });
        }
        let state = State {
            id: self.id.clone(),
            tty: self.tty,
            stdin_once: self.stdin_once,
            state_dir: self.state_dir.clone(),
            backend: match self.backend.to_state() {
                Ok(b) => b,
                Err(e) => return internal("state", e),
            },
            created: self.phase == Phase::Created,
            paused: self.paused,
            pid: self.pid,
            shim_pid: self.shim_pid,
            started_at: self.started_at.clone(),
            log: self.log.as_ref().map(LogFile::config),
            outputs,
            stdin: self.stdin.is_some(),
            stdin_close_pending: self.stdin_close_pending,
            pty: self.pty.is_some(),
            start_gate: start_gate.is_some(),
            conns,
        };
        let json = match serde_json::to_vec(&state) {
            Ok(j) if j.len() <= MAX_MESSAGE => j,
            Ok(_) => return internal("state", "too large"),
            Err(e) => return internal("encode the state", e),
        };
        let (a, b) = match rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        ) {
            Ok(p) => p,
            Err(e) => return internal("socketpair", e),
        };
        let mut space =
            vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return internal("sendmsg", "control buffer too small");
        }
        if let Err(e) = rustix::net::sendmsg(
            &a,
            &[std::io::IoSlice::new(&json)],
            &mut control,
            SendFlags::empty(),
        ) {
            return internal("sendmsg", e);
        }
        drop(a);
        if let Err(e) = rustix::stdio::dup2_stdin(&b) {
            return internal("dup2", e);
        }
        drop(b);
        let dir = CString::new(self.state_dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
        let argv = [c"berth-shim".to_owned(), CString::from(c"--monitor"), dir];
        let Err(err) = nix::unistd::execv(c"/proc/self/exe", &argv);
        // Still here: put stdin back; the queued message (and its fds) dies with the socket.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = rustix::stdio::dup2_stdin(&null);
        }
        internal("execve /proc/self/exe", err)
    }

    /// The new image's start: the state and descriptors from fd 0.
    pub fn resume() -> Result<Shim, ShimError> {
        let _ = rustix::thread::set_name(c"berth-shim");
        let mut data = vec![0u8; MAX_MESSAGE];
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let stdin = std::io::stdin();
        let got = rustix::net::recvmsg(
            stdin.as_fd(),
            &mut [std::io::IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| internal("recvmsg", e))?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        if let Ok(null) = std::fs::File::open("/dev/null") {
            let _ = rustix::stdio::dup2_stdin(&null);
        }
        let state: State = serde_json::from_slice(&data[..got.bytes])
            .map_err(|e| internal("decode the state", e))?;
        drop(data);
        let mut fds = fds.into_iter();
        let mut next = |what: &str| {
            fds.next()
                .ok_or_else(|| internal("descriptors", format!("{what} is missing")))
        };
        let listener = std::os::unix::net::UnixListener::from(next("the listener")?);
        let mut outputs: [Option<Output>; 2] = [None, None];
        for (i, o) in state.outputs.into_iter().enumerate().take(2) {
            if let Some(o) = o {
                outputs[i] = Some(Output {
                    fd: next("an output")?,
                    stream: if o.stderr {
                        StreamType::Stderr
                    } else {
                        StreamType::Stdout
                    },
                    lines: LineSplitter {
                        pending: hex::decode(&o.pending).unwrap_or_default(),
                        partial_time: o.partial_time,
                    },
                });
            }
        }
        let stdin = if state.stdin {
            Some(next("stdin")?)
        } else {
            None
        };
        let pty = if state.pty {
            Some(next("the pty")?)
        } else {
            None
        };
        // The same open file, even if the path was renamed or removed meanwhile.
        let log = match &state.log {
            Some(cfg) => {
                let file = std::fs::File::from(next("the log file")?);
                Some(
                    LogFile::from_file(cfg, file)
                        .map_err(|e| internal(&format!("log {}", cfg.path.display()), e))?,
                )
            }
            None => None,
        };
        let start_gate = if state.start_gate {
            Some(next("the start gate")?)
        } else {
            None
        };
        let mut conns = Vec::new();
        for c in state.conns {
            let stream = std::os::unix::net::UnixStream::from(next("a connection")?);
            conns.push(Some(Conn {
                stream,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
                attach: c.attach.map(|[stdin, stdout, stderr]| AttachMode {
                    stdin,
                    stdout,
                    stderr,
                }),
                waiting: c.waiting,
                read_closed: c.read_closed,
                close_after_flush: false,
                interest: rustix::event::epoll::EventFlags::IN
                    | rustix::event::epoll::EventFlags::RDHUP,
            }));
        }
        let mut shim = Shim {
            id: state.id,
            tty: state.tty,
            stdin_once: state.stdin_once,
            state_dir: state.state_dir,
            backend: Backend::from_state(state.backend, start_gate),
            epoll: rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)
                .map_err(|e| internal("create epoll", e))?,
            signals: new_signalfd()?,
            listener,
            outputs,
            stdin,
            stdin_buf: Vec::new(),
            stdin_close_pending: state.stdin_close_pending,
            stdin_interest: false,
            pty,
            log,
            conns,
            phase: if state.created {
                Phase::Created
            } else {
                Phase::Running
            },
            paused: state.paused,
            pid: state.pid,
            shim_pid: state.shim_pid,
            started_at: state.started_at,
            exit: None,
            deadline: None,
            handoff_at: None,
            listener_paused_until: None,
            cleanup_pending: false,
            held_mnt_ns: None,
            log_failing: false,
        };
        shim.register()?;
        for i in 0..shim.conns.len() {
            shim.update_interest(i);
        }
        // An exit during the handoff is still pending (or its zombie waits): look now.
        shim.reap();
        // The state message's decoding is garbage now.
        berth_sys::process::malloc_trim();
        Ok(shim)
    }
}
