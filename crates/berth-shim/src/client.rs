//! A small synchronous client for `shim.sock` (tests, tools; berthd speaks the same lines
//! from async code with [`crate::parse_reply`]).
//!
//! ```no_run
//! # use berth_shim::client::Client;
//! # fn main() -> Result<(), berth_shim::client::ClientError> {
//! let dir = std::path::Path::new("/run/berth/containers/abc");
//! let mut c = Client::connect(dir)?;
//! c.kill(15, false)?;
//! let exit = Client::connect(dir)?.wait()?;
//! println!("exited with {}", exit.exit_code);
//! # Ok(()) }
//! ```

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use berth_oci::errdefs::{Classify, ErrorKind};
use berth_oci::spec::runtime::LinuxResources;
use serde::de::DeserializeOwned;

use crate::protocol::{
    Empty, ExitInfo, MAX_REQUEST_LINE, Request, SOCKET_FILE, ShimError, StartReply, StateReply,
    StatsReply, parse_reply,
};
use crate::stream::FrameReader;

/// Failing to reach the shim, or an error it reported.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("shim socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Shim(#[from] ShimError),
}

impl Classify for ClientError {
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Io { .. } => ErrorKind::Unavailable,
            ClientError::Shim(e) => e.kind(),
        }
    }
}

/// A connection to one shim's control socket.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    /// Bytes read past the last reply line.
    buf: Vec<u8>,
}

/// Connects to a unix socket even when its path is longer than `sun_path` (108 bytes), by
/// going through `/proc/self/fd/N` of its directory.
pub fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() < 100 {
        return UnixStream::connect(path);
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => return UnixStream::connect(path),
    };
    let dirfd = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(name);
    UnixStream::connect(short)
}

impl Client {
    /// Connects to `<state_dir>/shim.sock`.
    pub fn connect(state_dir: &Path) -> Result<Client, ClientError> {
        Client::connect_socket(&state_dir.join(SOCKET_FILE))
    }

    /// Connects to a socket path.
    pub fn connect_socket(path: &Path) -> Result<Client, ClientError> {
        let stream = connect_unix(path).map_err(|source| ClientError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client {
            stream,
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    /// A limit on each read and write (`None`: none, the default).
    pub fn set_timeout(&self, limit: Option<std::time::Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(limit)?;
        self.stream.set_write_timeout(limit)
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Sends raw bytes (tests use it to send malformed lines).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).map_err(|e| self.io(e))
    }

    /// Reads one reply line (without the newline).
    pub fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Ok(line);
            }
            if self.buf.len() > MAX_REQUEST_LINE * 4 {
                return Err(ShimError::internal("reply line from the shim is too long").into());
            }
            let mut chunk = [0u8; 4096];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(e)),
            };
            if n == 0 {
                return Err(self.io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the shim closed the connection (it exits once the container is gone; \
                     read exit.json)",
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a request and parses its reply.
    pub fn call<T: DeserializeOwned>(&mut self, req: &Request) -> Result<T, ClientError> {
        self.send(req)?;
        self.reply()
    }

    /// Sends a request without reading its reply (see [`Client::reply`]). The shim serves
    /// a request sent before another connection is made before any request on that
    /// connection, so a client may pipeline across connections (an attach, then a start).
    pub fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        self.send_raw(&req.to_line())
    }

    /// Reads and parses the reply to the request sent before.
    pub fn reply<T: DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        let line = self.read_line()?;
        Ok(parse_reply(&line)?)
    }

    pub fn state(&mut self) -> Result<StateReply, ClientError> {
        self.call(&Request::State)
    }

    pub fn start(&mut self) -> Result<StartReply, ClientError> {
        self.call(&Request::Start)
    }

    pub fn kill(&mut self, signal: i32, all: bool) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Kill { signal, all }).map(drop)
    }

    /// Blocks until the container has exited.
    pub fn wait(&mut self) -> Result<ExitInfo, ClientError> {
        self.call(&Request::Wait)
    }

    pub fn resize(&mut self, height: u16, width: u16) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Resize { height, width })
            .map(drop)
    }

    pub fn pause(&mut self) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Pause).map(drop)
    }

    pub fn resume(&mut self) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Resume).map(drop)
    }

    pub fn update(&mut self, resources: LinuxResources) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Update {
            resources: Box::new(resources),
        })
        .map(drop)
    }

    pub fn stats(&mut self) -> Result<StatsReply, ClientError> {
        self.call(&Request::Stats)
    }

    pub fn shutdown(&mut self) -> Result<(), ClientError> {
        self.call::<Empty>(&Request::Shutdown).map(drop)
    }

    /// Attaches to the container's stdio; the connection becomes the byte stream.
    pub fn attach(
        mut self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attached, ClientError> {
        self.send(&Request::Attach {
            stdin,
            stdout,
            stderr,
        })?;
        self.attached()
    }

    /// After an `attach` request sent with [`Client::send`]: reads its reply; the
    /// connection becomes the byte stream.
    pub fn attached(mut self) -> Result<Attached, ClientError> {
        self.reply::<Empty>()?;
        Ok(Attached {
            stream: self.stream,
            pending: self.buf,
        })
    }
}

/// An attached connection: read the container's output (multiplexed without a tty, raw
/// with one), write its stdin.
#[derive(Debug)]
pub struct Attached {
    stream: UnixStream,
    pending: Vec<u8>,
}

impl Attached {
    /// Ends this client's stdin (a half-close; with `stdin_once` the container's stdin
    /// closes).
    pub fn close_stdin(&self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Write)
    }

    /// Frame reader over the output (no tty).
    pub fn frames(self) -> FrameReader<Attached> {
        FrameReader::new(self)
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

impl Read for Attached {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = out.len().min(self.pending.len());
            out[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        self.stream.read(out)
    }
}

impl Write for Attached {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.stream.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
