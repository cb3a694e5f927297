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
//!    none ready / dead  (a burst, or it was killed): spawn `berth-shim <state_dir>` as
//!                       before — a dead standby shows as EPIPE on the write, or as EOF
//!                       without a startup line and without `shim.pid` (killed after
//!                       the write, before its setup began)
//!    Launcher dropped,  its stdin pipe closes: the standby reads EOF and exits 0; it holds
//!    berthd gone        no container resources before the hand-off
//!   ```
//! - [`Conn`]: one connection to `<state_dir>/shim.sock`: newline-delimited JSON requests
//!   and replies ([`berth_shim::Request`], [`berth_shim::parse_reply`]); `attach` turns it
//!   into the container's byte stream.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
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
    /// Where the binary came from (for messages).
    pub source: PathBuf,
}

/// The sealed copy of the shim binary.
struct Binary {
    memfd: OwnedFd,
    exe: PathBuf,
    source: PathBuf,
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
    stdout: ChildStdout,
    gone: tokio::sync::oneshot::Receiver<()>,
}

/// A shim spawned with `--standby`, waiting for its state directory on stdin.
struct Standby(Process);

impl Binary {
    /// Spawns the shim with `arg` (a state directory or `--standby`). Blocks the calling
    /// thread until the child has exec'd (~1 ms); must run inside a tokio runtime, which
    /// reaps the child.
    fn spawn(&self, arg: &OsStr, standby: bool) -> Result<Process> {
        let _ = &self.memfd;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg(arg)
            .arg0("berth-shim")
            .stdin(if standby {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
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
        let stdout = child.stdout.take().ok_or_else(|| {
            EngineError::Internal("the shim was spawned without its stdout pipe".into())
        })?;
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

impl Launcher {
    /// Copies `binary` into a sealed memfd. Inside a tokio runtime, also spawns the first
    /// standby (on a blocking-pool thread; without a runtime the first `spawn` does).
    pub fn new(binary: &Path) -> Result<Launcher> {
        let mut src = std::fs::File::open(binary).map_err(EngineError::io(format!(
            "reading the shim binary {} (install berth-shim next to berthd or pass --shim-binary)",
            binary.display()
        )))?;
        let fd = berth_sys::memfd::sealed_copy("berth-shim", &mut src)
            .map_err(EngineError::io("copying the shim into a sealed memfd"))?;
        let exe = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let launcher = Launcher {
            binary: Arc::new(Binary {
                memfd: fd,
                exe,
                source: binary.to_path_buf(),
            }),
            standby: Arc::default(),
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
    /// The shim is reaped by a task of the runtime when it exits.
    pub async fn spawn(&self, state_dir: &Path) -> Result<Spawned> {
        let handed = match self.take_standby() {
            Some(standby) => standby.hand_off(state_dir).await,
            None => None,
        };
        // The next standby is spawned while this shim sets its container up: that mostly
        // waits for the container's init, leaving a core free.
        self.refill();
        if let Some(process) = handed {
            match read_startup(process).await? {
                Some(spawned) => return Ok(spawned),
                // Killed between our write and its read: it never began the setup (which
                // writes shim.pid before it creates anything), so a fresh shim is safe.
                None if !state_dir.join(berth_shim::PID_FILE).exists() => {
                    tracing::debug!("the standby shim died before its setup; spawning a fresh one");
                }
                None => return Err(no_startup_line(state_dir)),
            }
        }
        // No standby (a burst, or it died): the spawn blocks this worker as it always did.
        let process = self.binary.spawn(state_dir.as_os_str(), false)?;
        read_startup(process)
            .await?
            .ok_or_else(|| no_startup_line(state_dir))
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

    /// Spawns a new standby on a blocking-pool thread unless one is ready or on its way.
    fn refill(&self) {
        {
            let mut slot = self.standby.lock().unwrap_or_else(|e| e.into_inner());
            if slot.ready.is_some() || slot.filling {
                return;
            }
            slot.filling = true;
        }
        let binary = self.binary.clone();
        let standby = self.standby.clone();
        tokio::task::spawn_blocking(move || {
            let made = binary.spawn(OsStr::new(STANDBY_FLAG), true);
            let mut slot = standby.lock().unwrap_or_else(|e| e.into_inner());
            slot.filling = false;
            match made {
                // If the launcher is gone meanwhile, the slot drops with this closure and
                // the standby reads EOF.
                Ok(p) => slot.ready = Some(Standby(p)),
                Err(e) => tracing::warn!("cannot spawn a standby shim: {e}"),
            }
        });
    }
}

impl Standby {
    /// Writes the state directory on the standby's stdin and closes it. `None` when the
    /// standby is gone (EPIPE) or the path cannot travel as one line (empty, a newline or
    /// NUL in it, longer than the standby reads): the caller spawns a fresh shim instead,
    /// which reports such a directory as it always did.
    async fn hand_off(mut self, state_dir: &Path) -> Option<Process> {
        let path = state_dir.as_os_str().as_bytes();
        if path.is_empty()
            || path.len() > MAX_HAND_OFF_LINE
            || path.contains(&b'\n')
            || path.contains(&0)
        {
            return None;
        }
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

/// Reads a shim's startup line; `None` when the shim exited without one.
async fn read_startup(process: Process) -> Result<Option<Spawned>> {
    let mut reader = BufReader::new(process.stdout);
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .await
        .map_err(EngineError::io("reading the shim's startup line"))?;
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
        let io = |e: std::io::Error| EngineError::Unavailable(format!("talking to the shim: {e}"));
        self.reader
            .get_mut()
            .write_all(&req.to_line())
            .await
            .map_err(io)?;
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line).await.map_err(io)?;
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
