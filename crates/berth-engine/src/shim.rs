//! Spawning shims and talking to them from async code.
//!
//! - [`Launcher`]: at daemon start the `berth-shim` binary is copied once into a sealed memfd
//!   (so a container can never overwrite the binary the next shim runs: CVE-2019-5736), and
//!   every shim is spawned by exec'ing `/proc/self/fd/N` with tokio's `Command` (berthd never
//!   forks by hand). The one startup line comes on the shim's stdout (a pipe): without fd
//!   mappings or `pre_exec` closures the standard library spawns with `posix_spawn` (a
//!   `CLONE_VM|CLONE_VFORK` child) instead of forking the whole daemon, which keeps the
//!   daemon's page tables out of every container start.
//! - [`Conn`]: one connection to `<state_dir>/shim.sock`: newline-delimited JSON requests
//!   and replies ([`berth_shim::Request`], [`berth_shim::parse_reply`]); `attach` turns it
//!   into the container's byte stream.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_shim::{Request, ShimError};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{EngineError, Result};

impl From<ShimError> for EngineError {
    fn from(e: ShimError) -> Self {
        EngineError::Shim {
            kind: e.kind.into(),
            message: e.message,
        }
    }
}

/// Spawns shims from one sealed in-memory copy of the binary.
pub struct Launcher {
    memfd: OwnedFd,
    exe: PathBuf,
    /// Where the binary came from (for messages).
    pub source: PathBuf,
}

impl Launcher {
    /// Copies `binary` into a sealed memfd.
    pub fn new(binary: &Path) -> Result<Launcher> {
        let mut src = std::fs::File::open(binary).map_err(EngineError::io(format!(
            "reading the shim binary {} (install berth-shim next to berthd or pass --shim-binary)",
            binary.display()
        )))?;
        let fd = berth_sys::memfd::sealed_copy("berth-shim", &mut src)
            .map_err(EngineError::io("copying the shim into a sealed memfd"))?;
        let exe = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok(Launcher {
            memfd: fd,
            exe,
            source: binary.to_path_buf(),
        })
    }

    /// Spawns `berth-shim <state_dir>` (its `shim.json` must be written) and waits for its
    /// startup line on the shim's stdout: the init's pid and warnings, or the shim's error.
    /// The shim is reaped by a task of the runtime when it exits.
    pub async fn spawn(&self, state_dir: &Path) -> Result<Spawned> {
        let _ = &self.memfd;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg(state_dir)
            .arg0("berth-shim")
            .stdin(std::process::Stdio::null())
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
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = gone_tx.send(());
        });
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(EngineError::io("reading the shim's startup line"))?;
        if line.is_empty() {
            return Err(EngineError::Internal(format!(
                "the shim for {} exited without reporting (see the daemon's log)",
                state_dir.display()
            )));
        }
        let (pid, warnings) = berth_shim::Startup::parse(&line)?;
        Ok(Spawned {
            pid,
            warnings,
            gone: ShimGone(gone),
        })
    }
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
    /// Waits for the shim's exit, at most `limit`.
    pub async fn wait(self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, self.0).await;
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
