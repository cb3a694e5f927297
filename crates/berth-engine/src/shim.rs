//! Spawning shims and talking to them from async code.
//!
//! - [`Launcher`]: at daemon start the `berth-shim` binary is copied once into a sealed memfd
//!   (so a container can never overwrite the binary the next shim runs: CVE-2019-5736), and
//!   every shim is spawned by exec'ing `/proc/self/fd/N` with tokio's `Command` (berthd never
//!   forks by hand). The one startup line comes on the shim's stdout (a pipe): without fd
//!   mappings or `pre_exec` closures the standard library spawns with `posix_spawn` (a
//!   `CLONE_VM|CLONE_VFORK` child) instead of forking the whole daemon, which keeps the
//!   daemon's page tables out of every container start.
//! - The standby: the launcher keeps one shim spawned ahead (`berth-shim --standby`: exec'd,
//!   linked, blocked reading its stdin), so a container start only writes the state
//!   directory on a pipe instead of waiting for a spawn, an exec and the dynamic linking:
//!
//!   ```text
//!    Launcher::new      spawn a standby on a blocking-pool thread ──▶ ready
//!    spawn(state_dir)   take the ready one, write "<state_dir>\n", close its stdin; a
//!                       new standby is spawned on a blocking-pool thread (never on the
//!                       request's tokio worker) while this one sets up; read the line
//!    none ready         wait for the one being forked (or fork one now) and take it
//!    none made / dead   (the zygote failed, or the standby was killed): spawn
//!                       `berth-shim <state_dir>` as before — a dead standby shows as EPIPE
//!                       on the write, or as EOF without a startup line and without
//!                       `shim.pid` (killed after the write, before its setup began)
//!    Launcher dropped,  its stdin pipe closes: the standby reads EOF and exits 0; it holds
//!    berthd gone        no container resources before the hand-off
//!   ```
//! - The zygote: standbys are not exec'd one by one but forked by one parked
//!   `berth-shim --standby` whose stdin is a SEQPACKET socket (spawned like a standby, by
//!   the first refill). A refill sends it the new standby's two pipe ends (`SCM_RIGHTS`) and
//!   gets back the child's pid and pidfd; the child is forked with `CLONE_PARENT`, so it is
//!   berthd's child, reaped by a task that waits on the pidfd, and from its pipes on it is
//!   exactly an exec'd standby. That skips the exec, the dynamic linking and the early init
//!   for every standby (1.9 → 0.5 ms of CPU each, measured in isolation). A zygote that
//!   exited, errs or does not answer within [`ZYGOTE_TIMEOUT`] is dropped (its socket
//!   closes: it exits) and a new one spawned at once; a refill where that one fails too
//!   execs its standby, and after [`ZYGOTE_ATTEMPTS`] such refills in a row every standby
//!   is exec'd as before. A dropped launcher (berthd gone) closes the socket: it exits. `berth-shim`'s `zygote.rs` has the
//!   protocol and what the child inherits.
//! - [`Conn`]: one connection to `<state_dir>/shim.sock`: newline-delimited JSON requests
//!   and replies ([`berth_shim::Request`], [`berth_shim::parse_reply`]); `attach` turns it
//!   into the container's byte stream.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_shim::{Request, ShimError};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{ChildStdin, ChildStdout};

use crate::error::{EngineError, Result};

impl From<ShimError> for EngineError {
    fn from(e: ShimError) -> Self {
        EngineError::Shim {
            kind: e.kind.into(),
            message: e.message,
        }
    }
}

/// argv[1] of a shim spawned ahead of its container (`berth-shim --standby`).
const STANDBY_FLAG: &str = "--standby";
/// The longest state directory a standby reads from its stdin (see `berth-shim`'s
/// `standby.rs`).
const MAX_HAND_OFF_LINE: usize = 4096;

/// Spawns shims from one sealed in-memory copy of the binary, keeping one spawned ahead.
pub struct Launcher {
    binary: Arc<Binary>,
    standby: Arc<Mutex<Slot>>,
    /// Told each time a refill ends (a standby ready, or none made).
    filled: Arc<tokio::sync::Notify>,
    /// Where the binary came from (for messages).
    pub source: PathBuf,
}

/// The sealed copy of the shim binary.
struct Binary {
    memfd: OwnedFd,
    exe: PathBuf,
    source: PathBuf,
    /// A standby's arguments: `--standby`, and the directory it binds its control socket
    /// in ahead of its hand-off, if there is one (see [`Launcher::new`]).
    standby_args: Vec<std::ffi::OsString>,
    /// The parked process standbys are forked from (see [`Zygote`]).
    zygote: Mutex<ZygoteSlot>,
}

/// After this many refills in a row where even a new zygote failed to fork the standby,
/// standbys are exec'd for the launcher's life.
const ZYGOTE_ATTEMPTS: u32 = 3;
/// How long a start waits for a standby on its way before it execs a fresh shim.
const STANDBY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);
/// How long berthd waits for the zygote's reply before giving up on it.
const ZYGOTE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Default)]
struct ZygoteSlot {
    live: Option<Zygote>,
    /// Refills in a row that fell back to an exec (reset by a fork that worked).
    failures: u32,
}

/// `berth-shim --standby` with a SEQPACKET socket as stdin: forks standbys on request
/// (`berth-shim`'s `zygote.rs` has the protocol). Dropping it closes the socket, and the
/// zygote exits.
struct Zygote {
    sock: OwnedFd,
    gone: tokio::sync::oneshot::Receiver<()>,
}

/// The standby slot: at most one shim waiting, and whether one is being spawned.
#[derive(Default)]
struct Slot {
    ready: Option<Standby>,
    filling: bool,
}

/// A spawned shim: its stdin (a pipe only for a standby), the startup channel, its exit.
struct Process {
    stdin: Option<ChildStdin>,
    /// `None` only for the zygote.
    stdout: Option<ChildStdout>,
    gone: tokio::sync::oneshot::Receiver<()>,
}

/// A shim spawned with `--standby`, waiting for its state directory on stdin.
struct Standby(Process);

impl Zygote {
    /// One fork request: the child's stdin and stdout pipes go to the zygote, its pid and
    /// pidfd come back. The child is berthd's (`CLONE_PARENT`); a task waits on the pidfd
    /// and reaps it, as tokio does for a spawned one.
    fn fork(&mut self) -> Result<Process> {
        use rustix::net::{
            RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
            SendAncillaryMessage, SendFlags,
        };
        use std::mem::MaybeUninit;
        let io = |what: &'static str| move |e: rustix::io::Errno| EngineError::io(what)(e.into());
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
        let (in_r, in_w) = pipe().map_err(io("a pipe for a standby"))?;
        let (out_r, out_w) = pipe().map_err(io("a pipe for a standby"))?;
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [in_r.as_fd(), out_w.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &self.sock,
            &[std::io::IoSlice::new(b"f")],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(io("asking the zygote for a standby"))?;
        // The child's ends are the zygote's and the child's now: EOF on the child's stdout
        // must mean the child is gone.
        drop((in_r, out_w));
        let mut reply = [0u8; 1024];
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            &self.sock,
            &mut [std::io::IoSliceMut::new(&mut reply)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(io("reading the zygote's reply"))?;
        let mut pidfd = None;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut rights) = msg {
                pidfd = pidfd.or(rights.next());
            }
        }
        let reply = &reply[..got.bytes];
        let pidfd = match (reply.first(), pidfd) {
            (Some(b'+'), Some(fd)) if reply.len() == 5 => fd,
            (Some(b'-'), _) => {
                return Err(EngineError::Internal(format!(
                    "the zygote cannot fork a standby: {}",
                    String::from_utf8_lossy(&reply[1..])
                )));
            }
            _ if reply.is_empty() => {
                return Err(EngineError::Unavailable("the zygote exited".into()));
            }
            _ => {
                return Err(EngineError::Internal(
                    "a malformed reply from the zygote".into(),
                ));
            }
        };
        // Deprecated because a type whose `as_raw_fd` changes over time would make it unsound
        // (tokio#8587); an `OwnedFd` owns one descriptor for its whole life, which is the
        // contract of its `unsafe` successor, `register_with_interest`.
        #[allow(deprecated)]
        let watch = tokio::io::unix::AsyncFd::with_interest(pidfd, tokio::io::Interest::READABLE)
            .map_err(EngineError::io("watching a forked standby's pidfd"))?;
        let stdin = ChildStdin::from_std(std::process::ChildStdin::from(in_w))
            .map_err(EngineError::io("registering a standby's stdin"))?;
        let stdout = ChildStdout::from_std(std::process::ChildStdout::from(out_r))
            .map_err(EngineError::io("registering a standby's stdout"))?;
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // A pidfd polls readable once the process has exited; then reap it (it is our
            // child), which cannot block any more.
            if watch.readable().await.is_ok() {
                let _ = rustix::process::waitid(
                    rustix::process::WaitId::PidFd(watch.get_ref().as_fd()),
                    rustix::process::WaitIdOptions::EXITED,
                );
                let _ = gone_tx.send(());
            }
        });
        Ok(Process {
            stdin: Some(stdin),
            stdout: Some(stdout),
            gone,
        })
    }
}

impl Binary {
    /// A new standby: forked by the zygote (spawned first if there is none), or, if that
    /// fails, exec'd as before. Blocks; runs on a blocking-pool thread.
    fn standby(&self) -> Result<Process> {
        let mut slot = self.zygote.lock().unwrap_or_else(|e| e.into_inner());
        if slot.failures < ZYGOTE_ATTEMPTS {
            match self.fork_standby(&mut slot) {
                Ok(p) => {
                    slot.failures = 0;
                    return Ok(p);
                }
                Err(e) => {
                    slot.live = None;
                    slot.failures += 1;
                    if slot.failures == ZYGOTE_ATTEMPTS {
                        tracing::warn!(
                            "the standby zygote failed {ZYGOTE_ATTEMPTS} times ({e}); exec'ing standbys from now on"
                        );
                    } else {
                        tracing::debug!("the standby zygote failed ({e}); exec'ing this standby");
                    }
                }
            }
        }
        drop(slot);
        self.spawn(&self.standby_args, true)
    }

    /// Asks the zygote for a standby; a new zygote if there is none or the one we had
    /// failed (killed, stuck past [`ZYGOTE_TIMEOUT`]), so a killed zygote costs one exec.
    fn fork_standby(&self, slot: &mut ZygoteSlot) -> Result<Process> {
        // Known dead (its reaper ran): not worth a request that must fail.
        if let Some(zygote) = &mut slot.live
            && !matches!(
                zygote.gone.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
            )
        {
            slot.live = None;
        }
        if let Some(zygote) = &mut slot.live {
            match zygote.fork() {
                Ok(p) => return Ok(p),
                Err(e) => tracing::debug!("the standby zygote failed ({e}); spawning a new one"),
            }
        }
        // Dropping the old one closes its socket: if it still runs it reads EOF and exits.
        slot.live = None;
        slot.live.insert(self.spawn_zygote()?).fork()
    }

    fn spawn_zygote(&self) -> Result<Zygote> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| EngineError::io("a socketpair for the zygote")(e.into()))?;
        rustix::net::sockopt::set_socket_timeout(
            &ours,
            rustix::net::sockopt::Timeout::Recv,
            Some(ZYGOTE_TIMEOUT),
        )
        .map_err(|e| EngineError::io("a timeout on the zygote's socket")(e.into()))?;
        let process = self.spawn_with(
            &self.standby_args,
            std::process::Stdio::from(theirs),
            std::process::Stdio::null(),
        )?;
        Ok(Zygote {
            sock: ours,
            gone: process.gone,
        })
    }

    /// Spawns the shim with `args` (a state directory, or a standby's). Blocks the calling
    /// thread until the child has exec'd (~1 ms); must run inside a tokio runtime, which
    /// reaps the child.
    fn spawn(&self, args: &[impl AsRef<OsStr>], standby: bool) -> Result<Process> {
        let stdin = if standby {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        };
        self.spawn_with(args, stdin, std::process::Stdio::piped())
    }

    fn spawn_with(
        &self,
        args: &[impl AsRef<OsStr>],
        stdin: std::process::Stdio,
        stdout: std::process::Stdio,
    ) -> Result<Process> {
        let _ = &self.memfd;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(args)
            .arg0("berth-shim")
            .stdin(stdin)
            .stdout(stdout)
            .stderr(std::process::Stdio::inherit())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        if let Ok(v) = std::env::var("BERTH_SHIM_LOG") {
            cmd.env("BERTH_SHIM_LOG", v);
        }
        let mut child = cmd.spawn().map_err(EngineError::io(format!(
            "spawning the shim (from {})",
            self.source.display()
        )))?;
        let stdout = child.stdout.take();
        let stdin = child.stdin.take();
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = gone_tx.send(());
        });
        Ok(Process {
            stdin,
            stdout,
            gone,
        })
    }
}

/// Makes `dir` (0700: the sockets in it are root's) or removes what standbys killed before
/// their hand-off left in it.
fn empty_socket_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |e| {
        EngineError::io(format!(
            "preparing the standby socket directory {}",
            dir.display()
        ))(e)
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    for entry in std::fs::read_dir(dir).map_err(failed)? {
        match std::fs::remove_file(entry.map_err(failed)?.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
    }
    Ok(())
}

impl Launcher {
    /// Copies `binary` into a sealed memfd. Inside a tokio runtime, also spawns the first
    /// standby (on a blocking-pool thread; without a runtime the first `spawn` does).
    ///
    /// With `socket_dir` (berthd's `<exec_root>/standby`, on the filesystem of the state
    /// directories), each standby binds its control socket there while it waits and renames
    /// it into its state directory at the hand-off, which takes the bind's inode allocation
    /// off the container's path (`berth-shim`'s `standby.rs`). The directory is made
    /// (0700) and emptied here: what is in it was left by standbys killed before their
    /// hand-off.
    pub fn new(binary: &Path, socket_dir: Option<&Path>) -> Result<Launcher> {
        let mut src = std::fs::File::open(binary).map_err(EngineError::io(format!(
            "reading the shim binary {} (install berth-shim next to berthd or pass --shim-binary)",
            binary.display()
        )))?;
        let fd = berth_sys::memfd::sealed_copy("berth-shim", &mut src)
            .map_err(EngineError::io("copying the shim into a sealed memfd"))?;
        let exe = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let mut standby_args = vec![STANDBY_FLAG.into()];
        if let Some(dir) = socket_dir {
            empty_socket_dir(dir)?;
            standby_args.push(dir.as_os_str().to_owned());
        }
        let launcher = Launcher {
            binary: Arc::new(Binary {
                memfd: fd,
                exe,
                source: binary.to_path_buf(),
                standby_args,
                zygote: Mutex::default(),
            }),
            standby: Arc::default(),
            filled: Arc::default(),
            source: binary.to_path_buf(),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            launcher.refill();
        }
        Ok(launcher)
    }

    /// Starts the shim for `state_dir` (its `shim.json` must be written) — the standby if
    /// one is ready, else a fresh `berth-shim <state_dir>` — and waits for its startup line
    /// on the shim's stdout: the init's pid and warnings, or the shim's error.
    /// `listening` is called on the shim's listening notice (asked for in its config).
    /// The shim is reaped by a task of the runtime when it exits. `handed` is told once a
    /// standby has the state directory, or a fresh shim is about to be spawned.
    pub async fn spawn(
        &self,
        state_dir: &Path,
        listening: &(dyn Fn() + Sync),
        handed: Option<tokio::sync::oneshot::Sender<()>>,
        refill: Refill,
    ) -> Result<Spawned> {
        let mut handed = handed;
        let mut refill_after = refill == Refill::AfterHandOff;
        // A second standby when the first turns out dead: at the write (killed before its
        // reaper noticed), or before it read the write.
        for _ in 0..2 {
            let standby = self.any_standby(state_dir).await;
            let got_one = standby.is_some();
            let handed_off = match standby {
                Some(standby) => standby.hand_off(state_dir).await,
                None => None,
            };
            if let Some(tx) = handed.take() {
                let _ = tx.send(());
            }
            if std::mem::take(&mut refill_after) {
                // The next standby is spawned while this shim sets its container up: that
                // mostly waits for the container's init, leaving a core free.
                self.refill();
            }
            let Some(process) = handed_off else {
                // None came (waited for already): no second wait before the fresh spawn.
                if got_one {
                    continue;
                }
                break;
            };
            match read_startup(process, listening).await? {
                Some(spawned) => return Ok(spawned),
                // Killed between our write and its read: it never began the setup (which
                // writes shim.pid before it creates anything), so another shim is safe.
                None if !state_dir.join(berth_shim::PID_FILE).exists() => {
                    tracing::debug!("the standby shim died before its setup; taking another");
                }
                None => return Err(no_startup_line(state_dir)),
            }
        }
        // No standby (the zygote failed or is slow, standbys died, or the path cannot be
        // handed over): the spawn blocks this worker as it always did.
        self.refill();
        let process = self.binary.spawn(&[state_dir], false)?;
        read_startup(process, listening)
            .await?
            .ok_or_else(|| no_startup_line(state_dir))
    }

    /// The ready standby, else the one on its way ([`Launcher::next_standby`]); `None`
    /// when there is none or `state_dir` cannot be handed to one.
    async fn any_standby(&self, state_dir: &Path) -> Option<Standby> {
        if !fits_hand_off(state_dir) {
            return None;
        }
        match self.take_standby() {
            Some(standby) => Some(standby),
            None => self.next_standby().await,
        }
    }

    /// The ready standby, if any and still alive.
    fn take_standby(&self) -> Option<Standby> {
        let mut slot = self.standby.lock().unwrap_or_else(|e| e.into_inner());
        let mut standby = slot.ready.take()?;
        // Already exited (killed): not worth a write that must fail.
        match standby.0.gone.try_recv() {
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => Some(standby),
            _ => None,
        }
    }

    /// The standby being forked, or one forked now, once it is ready: a fork by the zygote
    /// (~0.5 ms of CPU) is much cheaper than exec'ing a fresh shim (an exec, the dynamic
    /// linking, the early init: ~1.9 ms), and back-to-back starts often come while the
    /// refill of the last one is still on its way (docs/engine.md, "Waiting for the
    /// standby"). `None` when this start's own refill made none or [`STANDBY_WAIT`] ran
    /// out: the caller then execs a fresh shim.
    async fn next_standby(&self) -> Option<Standby> {
        let deadline = tokio::time::Instant::now() + STANDBY_WAIT;
        let mut asked = false;
        loop {
            // Registered before the slot is looked at, so an end of a refill in between is
            // not missed.
            let filled = self.filled.notified();
            tokio::pin!(filled);
            filled.as_mut().enable();
            if let Some(standby) = self.take_standby() {
                return Some(standby);
            }
            let filling = self
                .standby
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .filling;
            if !filling {
                if asked {
                    return None;
                }
                asked = true;
                self.refill();
                continue;
            }
            if tokio::time::timeout_at(deadline, filled).await.is_err() {
                return None;
            }
        }
    }

    /// Spawns a new standby on a blocking-pool thread unless one is ready or on its way.
    pub fn refill(&self) {
        {
            let mut slot = self.standby.lock().unwrap_or_else(|e| e.into_inner());
            if slot.ready.is_some() || slot.filling {
                return;
            }
            slot.filling = true;
        }
        let binary = self.binary.clone();
        let standby = self.standby.clone();
        let filled = self.filled.clone();
        tokio::task::spawn_blocking(move || {
            let made = binary.standby();
            let mut slot = standby.lock().unwrap_or_else(|e| e.into_inner());
            slot.filling = false;
            match made {
                // If the launcher is gone meanwhile, the slot drops with this closure and
                // the standby reads EOF.
                Ok(p) => slot.ready = Some(Standby(p)),
                Err(e) => tracing::warn!("cannot spawn a standby shim: {e}"),
            }
            drop(slot);
            filled.notify_waiters();
        });
    }
}

impl Standby {
    /// Writes the state directory (one that [`fits_hand_off`]) on the standby's stdin and
    /// closes it. `None` when the standby is gone (EPIPE): the caller takes another.
    async fn hand_off(mut self, state_dir: &Path) -> Option<Process> {
        let path = state_dir.as_os_str().as_bytes();
        let mut stdin = self.0.stdin.take()?;
        let mut line = Vec::with_capacity(path.len() + 1);
        line.extend_from_slice(path);
        line.push(b'\n');
        if let Err(e) = stdin.write_all(&line).await {
            tracing::debug!("the standby shim is gone ({e}); spawning a fresh one");
            return None;
        }
        drop(stdin);
        Some(self.0)
    }
}

/// Whether `state_dir` can travel to a standby as one line (not empty, no newline or NUL,
/// no longer than a standby reads); a fresh shim is spawned for any other, and reports such
/// a directory as it always did.
fn fits_hand_off(state_dir: &Path) -> bool {
    let path = state_dir.as_os_str().as_bytes();
    !path.is_empty()
        && path.len() <= MAX_HAND_OFF_LINE
        && !path.contains(&b'\n')
        && !path.contains(&0)
}

/// When [`Launcher::spawn`] spawns the next standby after handing the ready one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    /// At once, while the handed shim sets its container up.
    AfterHandOff,
    /// Not at all: the caller calls [`Launcher::refill`] when the cores are free (only a
    /// missing standby is replaced at once).
    ByCaller,
}

/// Reads a shim's startup line (after its listening notice, if any, which calls
/// `listening`); `None` when the shim exited without one.
async fn read_startup(process: Process, listening: &(dyn Fn() + Sync)) -> Result<Option<Spawned>> {
    let stdout = process.stdout.ok_or_else(|| {
        EngineError::Internal("the shim was spawned without its stdout pipe".into())
    })?;
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(EngineError::io("reading the shim's startup line"))?;
        if !berth_shim::Startup::is_listening(&line) {
            break;
        }
        listening();
    }
    if line.is_empty() {
        return Ok(None);
    }
    let (pid, warnings) = berth_shim::Startup::parse(&line)?;
    Ok(Some(Spawned {
        pid,
        warnings,
        gone: ShimGone(process.gone),
    }))
}

fn no_startup_line(state_dir: &Path) -> EngineError {
    EngineError::Internal(format!(
        "the shim for {} exited without reporting (see the daemon's log)",
        state_dir.display()
    ))
}

/// A shim berthd spawned and reported its container created.
pub struct Spawned {
    /// The container's init.
    pub pid: i32,
    pub warnings: Vec<String>,
    pub gone: ShimGone,
}

/// Resolves when a shim process berthd spawned has exited (its cleanup done).
#[derive(Debug)]
pub struct ShimGone(tokio::sync::oneshot::Receiver<()>);

impl ShimGone {
    /// Waits for the shim's exit, at most `limit`; whether it exited.
    pub async fn wait(self, limit: std::time::Duration) -> bool {
        matches!(tokio::time::timeout(limit, self.0).await, Ok(Ok(())))
    }
}

/// One connection to a shim's control socket.
pub struct Conn {
    reader: BufReader<UnixStream>,
}

impl Conn {
    /// Connects to `<state_dir>/shim.sock`.
    pub async fn connect(state_dir: &Path) -> std::io::Result<Conn> {
        let path = state_dir.join(berth_shim::SOCKET_FILE);
        let std = berth_shim::client::connect_unix(&path)?;
        std.set_nonblocking(true)?;
        Ok(Conn {
            reader: BufReader::new(UnixStream::from_std(std)?),
        })
    }

    /// Sends a request and reads its reply.
    pub async fn call<T: DeserializeOwned>(&mut self, req: &Request) -> Result<T> {
        self.send(req).await?;
        self.reply().await
    }

    /// Sends a request; its reply is read by [`Conn::reply`]. Once this returns, the
    /// request is in the shim's queue: a request sent on another connection after it is
    /// served after it (the shim serves in arrival order across connections).
    pub async fn send(&mut self, req: &Request) -> Result<()> {
        self.reader
            .get_mut()
            .write_all(&req.to_line())
            .await
            .map_err(talking)
    }

    /// Reads the reply to the request sent before.
    pub async fn reply<T: DeserializeOwned>(&mut self) -> Result<T> {
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(talking)?;
        if n == 0 {
            return Err(EngineError::Unavailable(
                "the shim closed the connection (the container is gone)".into(),
            ));
        }
        Ok(berth_shim::parse_reply(&line)?)
    }

    /// After a successful `attach` reply: the byte stream, with anything already buffered.
    pub fn into_stream(self) -> (Vec<u8>, UnixStream) {
        let buffered = self.reader.buffer().to_vec();
        (buffered, self.reader.into_inner())
    }
}

fn talking(e: std::io::Error) -> EngineError {
    EngineError::Unavailable(format!("talking to the shim: {e}"))
}

/// One request on a fresh connection.
pub async fn call<T: DeserializeOwned>(state_dir: &Path, req: &Request) -> Result<T> {
    let mut c = Conn::connect(state_dir).await.map_err(|e| {
        EngineError::Unavailable(format!(
            "cannot reach the container's shim at {}: {e}",
            state_dir.display()
        ))
    })?;
    c.call(req).await
}
