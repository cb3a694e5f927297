//! A small synchronous HTTP/1.1 client for the Engine API over a unix socket, or over TLS to
//! a `tcp://` daemon ([`tls`]: client certificates, docker's `--tlsverify` rules).
//!
//! One [`Client`] per process; it keeps at most one idle connection for reuse (the CLI issues
//! a handful of sequential requests; `run` needs three connections at once: the hijacked
//! attach stream, the pending `wait`, and the control requests).
//!
//! ```no_run
//! use berth_api::client::{Client, Host};
//! let client = Client::new(Host::parse("unix:///run/berth/berth.sock")?);
//! let version = client.version()?;
//! println!("{:?}", version.version);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Protocol notes for the server side (berthd):
//! - every path is prefixed with `/v1.47`;
//! - `POST /containers/{id}/wait` must send its response head as soon as the waiter is
//!   registered (the client blocks on the head before starting the container, as Docker's);
//! - attach answers `101 Switching Protocols` (`Upgrade: tcp`) with the stream's content
//!   type, then raw or multiplexed frames; the client half-closes its write side when stdin
//!   ends.

pub mod api;
pub mod http;
pub mod tls;

use std::io::{self, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use berth_oci::errdefs::{Classify, ErrorKind};

use self::http::{ChunkedReader, ChunkedWriter, ResponseHead};
use self::tls::{TlsFlags, TlsOptions, TlsStream};
use crate::body::ErrorMessage;

/// The port of `tcp://HOST` without one (docker's TLS port).
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to/socket`.
    Unix(PathBuf),
    /// `tcp://HOST:PORT`, spoken over TLS only (berthd serves nothing else on TCP).
    Tcp {
        /// A DNS name or an IP address (without brackets); the daemon's certificate must
        /// name it when verified.
        host: String,
        /// The port (default [`DEFAULT_TLS_PORT`]).
        port: u16,
        /// The TLS settings; `None` is refused on connect with the flags to add.
        tls: Option<TlsOptions>,
    },
}

impl Host {
    /// Parses a host URL: `unix:///run/berth/berth.sock` (or a bare absolute socket path), or
    /// `tcp://HOST[:PORT]` (TLS settings are added by [`Host::resolve_with_tls`]).
    pub fn parse(url: &str) -> Result<Host, ClientError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(ClientError::InvalidHost {
                    host: url.to_owned(),
                    reason: "expected unix:///absolute/path/to/socket".into(),
                });
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if url.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(url)));
        }
        if let Some(rest) = url.strip_prefix("tcp://") {
            let (host, port) = parse_tcp(rest).map_err(|reason| ClientError::InvalidHost {
                host: url.to_owned(),
                reason,
            })?;
            return Ok(Host::Tcp {
                host,
                port,
                tls: None,
            });
        }
        let reason = match url.split_once("://") {
            Some((scheme, _)) => {
                format!("unsupported scheme {scheme:?}; use unix://PATH or tcp://HOST:PORT")
            }
            None => "expected unix:///absolute/path/to/socket or tcp://HOST:PORT".to_owned(),
        };
        Err(ClientError::InvalidHost {
            host: url.to_owned(),
            reason,
        })
    }

    /// Chooses the host like the CLI does: the `-H/--host` flag, else `BERTH_HOST`, else
    /// `DOCKER_HOST`, else [`crate::DEFAULT_HOST`]. Empty values count as unset.
    /// TLS comes from the environment only (`DOCKER_TLS_VERIFY`, ...): see
    /// [`Host::resolve_with_tls`].
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Host, ClientError> {
        Host::resolve_with_tls(flag, &TlsFlags::default(), env)
    }

    /// [`Host::resolve`] with the CLI's TLS flags, applied with docker's rules
    /// ([`TlsFlags::resolve`]) when the chosen host is `tcp://`; unix sockets ignore them
    /// (nothing is read or checked).
    pub fn resolve_with_tls(
        flag: Option<&str>,
        tls: &TlsFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Host, ClientError> {
        let from_env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let chosen = flag
            .filter(|f| !f.trim().is_empty())
            .map(str::to_owned)
            .or_else(|| from_env("BERTH_HOST"))
            .or_else(|| from_env("DOCKER_HOST"))
            .unwrap_or_else(|| crate::DEFAULT_HOST.to_owned());
        let mut host = Host::parse(&chosen)?;
        if let Host::Tcp { tls: slot, .. } = &mut host {
            *slot = tls
                .resolve(&env)
                .map_err(|reason| ClientError::InvalidHost {
                    host: chosen.trim().to_owned(),
                    reason,
                })?;
            if slot.is_none() {
                return Err(ClientError::InvalidHost {
                    host: chosen.trim().to_owned(),
                    reason: tls::TCP_NEEDS_TLS.to_owned(),
                });
            }
        }
        Ok(host)
    }

    /// The socket path of a `unix://` host.
    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            Host::Unix(p) => Some(p),
            Host::Tcp { .. } => None,
        }
    }
}

/// `HOST[:PORT][/]` of a `tcp://` URL; IPv6 addresses in brackets; an empty host is
/// 127.0.0.1, a missing port [`DEFAULT_TLS_PORT`].
fn parse_tcp(rest: &str) -> Result<(String, u16), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err("expected tcp://HOST:PORT without a path".into());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("unclosed '[' in an IPv6 address")?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or("expected :PORT after the IPv6 address")?,
                ),
            ),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("put IPv6 addresses in brackets: tcp://[::1]:2376".into());
            }
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => DEFAULT_TLS_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid port {p:?}: use a number from 1 to 65535"))?,
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok((host.to_owned(), port))
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp { host, port, .. } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Host::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `-H`, `BERTH_HOST` or `DOCKER_HOST` is not a usable host URL.
    #[error("invalid host {host:?}: {reason}")]
    InvalidHost { host: String, reason: String },
    /// The socket could not be connected to.
    #[error("cannot connect to berthd at {host}: {}", connect_hint(.error))]
    Connect { host: String, error: io::Error },
    /// The daemon answered with an error status; `message` is its error body.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    /// Reading or writing the connection failed mid-request.
    #[error("error talking to berthd at {host}: {error}")]
    Io { host: String, error: io::Error },
    /// The daemon's answer was not valid HTTP or not the JSON we expected.
    #[error("unexpected response from berthd: {0}")]
    Protocol(String),
    /// The TLS files (`--tlscacert`, `--tlscert`, `--tlskey`) cannot be used.
    #[error("tls configuration for {host}: {reason}")]
    TlsConfig { host: String, reason: String },
    /// The TLS handshake or session failed (a certificate was rejected by either side).
    #[error("tls with berthd at {host} failed: {error}{}", tls::hint(.error))]
    Tls { host: String, error: rustls::Error },
}

fn connect_hint(e: &io::Error) -> String {
    let hint = "(is the daemon running? start it with: berthd &)";
    match e.kind() {
        io::ErrorKind::NotFound => format!("no such file or directory {hint}"),
        io::ErrorKind::ConnectionRefused => format!("connection refused {hint}"),
        // A daemon answered the connection but not the TLS handshake: it is running.
        io::ErrorKind::TimedOut => e.to_string(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (run as root or as a member of the socket's group)".to_owned()
        }
        _ => format!("{e} {hint}"),
    }
}

impl ClientError {
    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a daemon 404 (no such container/image).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl Classify for ClientError {
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::InvalidHost { .. } => ErrorKind::InvalidArgument,
            ClientError::Connect { .. } => ErrorKind::Unavailable,
            ClientError::Io { .. } => ErrorKind::Unavailable,
            ClientError::Protocol(_) => ErrorKind::Internal,
            ClientError::TlsConfig { .. } => ErrorKind::InvalidArgument,
            ClientError::Tls { .. } => ErrorKind::Unavailable,
            ClientError::Daemon { status, .. } => match status {
                304 => ErrorKind::NotModified,
                400 => ErrorKind::InvalidArgument,
                401 | 403 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                501 => ErrorKind::NotImplemented,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        }
    }
}

/// A request body.
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document or other bytes held in memory (replayable on a stale connection).
    Bytes {
        /// `Content-Type`.
        content_type: &'static str,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A stream (an image tarball); `len` known → Content-Length, else chunked.
    Reader {
        /// `Content-Type`.
        content_type: &'static str,
        /// Where the bytes come from.
        reader: Box<dyn Read + Send>,
        /// The length when known up front.
        len: Option<u64>,
    },
}

impl Body {
    /// `value` as a JSON body.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<Body, ClientError> {
        let data = serde_json::to_vec(value)
            .map_err(|e| ClientError::Protocol(format!("cannot encode request body: {e}")))?;
        Ok(Body::Bytes {
            content_type: "application/json",
            data,
        })
    }
}

/// One request: method, path (without the version prefix), query string, extra headers, body.
pub struct Request {
    /// `GET`, `POST`, `DELETE`, `HEAD`.
    pub method: &'static str,
    /// The path after `/v1.47`, e.g. `/containers/json` (already percent-encoded).
    pub path: String,
    /// The query string without `?` (see [`crate::query::to_query_string`]).
    pub query: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Request {
    /// A request without query, headers or body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Request {
            method,
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Sets the query string from an endpoint's parameter struct.
    pub fn query<T: serde::Serialize>(mut self, params: &T) -> Self {
        self.query = crate::query::to_query_string(params);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn target(&self, prefix: &str) -> String {
        if self.query.is_empty() {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}{}?{}", self.path, self.query)
        }
    }
}

/// A connection to the daemon: a unix socket, or a TLS session over TCP. Like
/// [`UnixStream`], `&Stream` reads and writes, and clones share the connection (one thread
/// reads while another writes).
pub struct Stream(StreamKind);

enum StreamKind {
    Unix(UnixStream),
    Tls(Arc<TlsStream>),
}

impl Stream {
    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream(match &self.0 {
            StreamKind::Unix(s) => StreamKind::Unix(s.try_clone()?),
            StreamKind::Tls(t) => StreamKind::Tls(Arc::clone(t)),
        }))
    }

    /// Closes one or both directions (TLS: `close_notify` before the write side ends).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match &self.0 {
            StreamKind::Unix(s) => s.shutdown(how),
            StreamKind::Tls(t) => t.shutdown(how),
        }
    }

    /// The socket to `poll` for readability before a read, so that one thread can wait for
    /// several things at once (the CLI's `run` waits for output and for signals). `None`
    /// for TLS: rustls keeps decrypted bytes of its own, which the socket's readiness does
    /// not show.
    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.0 {
            StreamKind::Unix(s) => Some(s.as_fd()),
            StreamKind::Tls(_) => None,
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.0 {
            StreamKind::Unix(s) => (&*s).read(buf),
            StreamKind::Tls(t) => t.read(buf),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            StreamKind::Unix(s) => (&*s).write(buf),
            StreamKind::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Conn = BufReader<Stream>;

/// Write size of request bodies streamed from a reader (`load`, `import`): large writes
/// make large frames on the daemon's side, so a 165 MB upload is ~650 writes and hand-offs
/// there instead of ~20000 with 8 KiB.
const UPLOAD_BUFFER: usize = 256 << 10;

/// The client. Cheap to share by reference; requests may run from several threads.
pub struct Client {
    host: Host,
    prefix: String,
    idle: Arc<Mutex<Option<Conn>>>,
    /// The rustls configuration of a `tcp://` host, built on its first connection.
    tls_config: OnceLock<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client for `host`; connects lazily on the first request.
    pub fn new(host: Host) -> Self {
        Client {
            host,
            prefix: format!("/v{}", crate::API_VERSION),
            idle: Arc::new(Mutex::new(None)),
            tls_config: OnceLock::new(),
        }
    }

    /// The daemon's address.
    pub fn host(&self) -> &Host {
        &self.host
    }

    fn connect(&self) -> Result<Stream, ClientError> {
        let connect_err = |error: io::Error| match tls_cause(&error) {
            Some(e) => ClientError::Tls {
                host: self.host.to_string(),
                error: e,
            },
            None => ClientError::Connect {
                host: self.host.to_string(),
                error,
            },
        };
        match &self.host {
            Host::Unix(path) => UnixStream::connect(path)
                .map(|s| Stream(StreamKind::Unix(s)))
                .map_err(connect_err),
            Host::Tcp { host, port, tls } => {
                let Some(opts) = tls else {
                    return Err(ClientError::InvalidHost {
                        host: self.host.to_string(),
                        reason: tls::TCP_NEEDS_TLS.to_owned(),
                    });
                };
                let config = match self.tls_config.get() {
                    Some(c) => Arc::clone(c),
                    None => {
                        let c =
                            tls::client_config(opts).map_err(|reason| ClientError::TlsConfig {
                                host: self.host.to_string(),
                                reason,
                            })?;
                        Arc::clone(self.tls_config.get_or_init(|| c))
                    }
                };
                let addr = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                TlsStream::connect(&addr, host, config)
                    .map(|t| Stream(StreamKind::Tls(Arc::new(t))))
                    .map_err(connect_err)
            }
        }
    }

    fn io_err(&self, error: io::Error) -> ClientError {
        match tls_cause(&error) {
            Some(e) => ClientError::Tls {
                host: self.host.to_string(),
                error: e,
            },
            None => ClientError::Io {
                host: self.host.to_string(),
                error,
            },
        }
    }

    /// Sends `req` and reads the response head. Error statuses are returned as responses;
    /// see [`Client::call`] for the variant that turns them into [`ClientError::Daemon`].
    pub fn send(&self, req: Request) -> Result<Response, ClientError> {
        let replayable = !matches!(req.body, Body::Reader { .. });
        let reused = self.idle.lock().map(|mut g| g.take()).unwrap_or(None);
        let mut req = req;
        if let Some(conn) = reused {
            match self.exchange(conn, &mut req) {
                Ok(Some(resp)) => return Ok(resp),
                // A stale keep-alive connection (closed by the server while idle): retry
                // once on a fresh connection when the body can be sent again.
                Ok(None) | Err(_) if replayable => {}
                Ok(None) => {
                    return Err(self.io_err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "connection closed before the response",
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        let conn = BufReader::new(self.connect()?);
        match self.exchange(conn, &mut req)? {
            Some(resp) => Ok(resp),
            None => Err(self.io_err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "berthd closed the connection without answering",
            ))),
        }
    }

    /// Writes the request on `conn` and reads the head. `Ok(None)` when the connection was
    /// closed before any response byte.
    fn exchange(&self, mut conn: Conn, req: &mut Request) -> Result<Option<Response>, ClientError> {
        let target = req.target(&self.prefix);
        let mut headers = req.headers.clone();
        let body_len = match &req.body {
            Body::Empty => {
                if matches!(req.method, "POST" | "PUT") {
                    Some(Some(0))
                } else {
                    None
                }
            }
            Body::Bytes { content_type, data } => {
                headers.push(("Content-Type".into(), (*content_type).into()));
                Some(Some(data.len() as u64))
            }
            Body::Reader {
                content_type, len, ..
            } => {
                headers.push(("Content-Type".into(), (*content_type).into()));
                Some(*len)
            }
        };
        {
            let stream = conn.get_ref();
            let capacity = match req.body {
                Body::Reader { .. } => UPLOAD_BUFFER,
                _ => 8192,
            };
            let mut w = io::BufWriter::with_capacity(capacity, stream);
            let written = (|| -> io::Result<()> {
                http::write_request_head(&mut w, req.method, &target, &headers, body_len)?;
                match &mut req.body {
                    Body::Empty => {}
                    Body::Bytes { data, .. } => w.write_all(data)?,
                    Body::Reader { reader, len, .. } => {
                        if len.is_some() {
                            io::copy(reader, &mut w)?;
                        } else {
                            let mut cw = ChunkedWriter::new(&mut w);
                            io::copy(
                                &mut io::BufReader::with_capacity(UPLOAD_BUFFER, reader),
                                &mut cw,
                            )?;
                            cw.finish()?;
                        }
                    }
                }
                w.flush()
            })();
            if let Err(e) = written {
                // The server may have answered early (e.g. 400 for a bad upload) and closed:
                // fall through to read its answer; otherwise report the write error.
                if e.kind() != io::ErrorKind::BrokenPipe
                    && e.kind() != io::ErrorKind::ConnectionReset
                {
                    return Err(self.io_err(e));
                }
            }
        }
        let head = match http::read_response_head(&mut conn) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(self.io_err(e)),
        };
        let no_body = req.method == "HEAD"
            || head.status == 101
            || head.status == 204
            || head.status == 304
            || (100..200).contains(&head.status);
        let keep_alive = !head.header_has_token("connection", "close");
        let kind = if no_body && head.status != 101 {
            BodyKind::Length(0)
        } else if head.status == 101 {
            BodyKind::Upgraded
        } else if head.header_has_token("transfer-encoding", "chunked") {
            BodyKind::Chunked
        } else if let Some(len) = head.header("content-length") {
            let len = len
                .trim()
                .parse::<u64>()
                .map_err(|_| ClientError::Protocol(format!("invalid Content-Length {len:?}")))?;
            BodyKind::Length(len)
        } else {
            BodyKind::UntilClose
        };
        let reusable = keep_alive && !matches!(kind, BodyKind::UntilClose | BodyKind::Upgraded);
        let reader = match kind {
            BodyKind::Chunked => BodyReader::Chunked(ChunkedReader::new(conn)),
            BodyKind::Length(n) => BodyReader::Length { conn, remaining: n },
            BodyKind::UntilClose | BodyKind::Upgraded => BodyReader::UntilClose(conn),
        };
        let mut resp = Response {
            head,
            body: Some(reader),
            pool: reusable.then(|| Arc::clone(&self.idle)),
        };
        resp.maybe_release();
        Ok(Some(resp))
    }

    /// Sends `req`; a status of 400 or above becomes [`ClientError::Daemon`] with the
    /// daemon's message.
    pub fn call(&self, req: Request) -> Result<Response, ClientError> {
        let resp = self.send(req)?;
        if resp.status() >= 400 {
            return Err(resp.into_error());
        }
        Ok(resp)
    }

    /// Sends `req` and decodes a JSON response.
    pub fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        req: Request,
    ) -> Result<T, ClientError> {
        let resp = self.call(req)?;
        resp.json()
    }

    /// Sends `req`, ignoring the response body.
    pub fn call_empty(&self, req: Request) -> Result<(), ClientError> {
        let mut resp = self.call(req)?;
        resp.drain().map_err(|e| self.io_err(e))
    }

    /// Sends an upgrading request (attach) and returns the raw connection after
    /// `101 Switching Protocols` (a `200` without upgrade is accepted too: the body then
    /// carries the stream until the daemon closes it).
    pub fn upgrade(&self, mut req: Request) -> Result<Hijacked, ClientError> {
        req.headers.push(("Connection".into(), "Upgrade".into()));
        req.headers.push(("Upgrade".into(), "tcp".into()));
        let conn = BufReader::new(self.connect()?);
        let resp = self.exchange(conn, &mut req)?.ok_or_else(|| {
            self.io_err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "berthd closed the connection without answering",
            ))
        })?;
        if resp.status() >= 400 {
            return Err(resp.into_error());
        }
        let multiplexed = resp
            .header("content-type")
            .map(|ct| ct.starts_with(crate::stream::MULTIPLEXED_CONTENT_TYPE));
        let mut resp = resp;
        let conn = match resp.body.take() {
            Some(BodyReader::UntilClose(conn)) => conn,
            Some(BodyReader::Length { conn, .. }) => conn,
            Some(BodyReader::Chunked(c)) => c.into_inner(),
            None => {
                return Err(ClientError::Protocol(
                    "upgraded connection was already released".into(),
                ));
            }
        };
        let writer = conn.get_ref().try_clone().map_err(|e| self.io_err(e))?;
        Ok(Hijacked {
            reader: conn,
            writer,
            multiplexed,
        })
    }
}

/// The TLS error inside an I/O error from a [`TlsStream`].
fn tls_cause(e: &io::Error) -> Option<rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>().cloned()
}

enum BodyKind {
    Length(u64),
    Chunked,
    UntilClose,
    Upgraded,
}

enum BodyReader {
    Length { conn: Conn, remaining: u64 },
    Chunked(ChunkedReader<Conn>),
    UntilClose(Conn),
}

/// A response: head available at once, body read on demand (it may be an endless stream).
pub struct Response {
    head: ResponseHead,
    body: Option<BodyReader>,
    /// Where the connection goes back to once the body is fully read.
    pool: Option<Arc<Mutex<Option<Conn>>>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// A header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The parsed head.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The socket a read of the body would wait on ([`Stream::poll_fd`]): `None` when a
    /// read would not wait (bytes already buffered, body complete) or when the connection
    /// cannot be polled (TLS).
    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        let conn = match self.body.as_ref()? {
            BodyReader::Length { remaining: 0, .. } => return None,
            BodyReader::Length { conn, .. } | BodyReader::UntilClose(conn) => conn,
            BodyReader::Chunked(c) if c.is_done() => return None,
            BodyReader::Chunked(c) => c.get_ref(),
        };
        if !conn.buffer().is_empty() {
            return None;
        }
        conn.get_ref().poll_fd()
    }

    /// Reads the whole body.
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }

    /// Reads the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, ClientError> {
        let bytes = self
            .bytes()
            .map_err(|e| ClientError::Protocol(format!("reading response body: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Protocol(format!(
                "cannot decode response body ({e}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })
    }

    /// Reads and discards the rest of the body (so that the connection can be reused).
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// Turns an error response into [`ClientError::Daemon`], reading its `{"message"}` body
    /// (or its text when it is not JSON).
    pub fn into_error(self) -> ClientError {
        let status = self.status();
        let reason = self.head.reason.clone();
        let bytes = self.bytes().unwrap_or_default();
        let message = match serde_json::from_slice::<ErrorMessage>(&bytes) {
            Ok(m) => m.message,
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                if text.is_empty() {
                    format!("{status} {reason}").trim().to_owned()
                } else {
                    text
                }
            }
        };
        ClientError::Daemon { status, message }
    }

    /// Returns the connection to the client's pool once the body is complete.
    fn maybe_release(&mut self) {
        let complete = match &self.body {
            Some(BodyReader::Length { remaining, .. }) => *remaining == 0,
            Some(BodyReader::Chunked(c)) => c.is_done(),
            _ => false,
        };
        if !complete {
            return;
        }
        let Some(pool) = self.pool.take() else {
            return;
        };
        let conn = match self.body.take() {
            Some(BodyReader::Length { conn, .. }) => conn,
            Some(BodyReader::Chunked(c)) => c.into_inner(),
            _ => return,
        };
        // Bytes beyond the body mean the server misbehaved: do not reuse.
        if !conn.buffer().is_empty() {
            return;
        }
        if let Ok(mut slot) = pool.lock() {
            *slot = Some(conn);
        }
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.body {
            None => 0,
            Some(BodyReader::Length { conn, remaining }) => {
                if *remaining == 0 {
                    0
                } else {
                    let want = buf.len().min((*remaining).min(usize::MAX as u64) as usize);
                    let n = conn.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("connection closed with {remaining} body bytes missing"),
                        ));
                    }
                    *remaining -= n as u64;
                    n
                }
            }
            Some(BodyReader::Chunked(c)) => c.read(buf)?,
            Some(BodyReader::UntilClose(conn)) => conn.read(buf)?,
        };
        self.maybe_release();
        Ok(n)
    }
}

/// A hijacked (upgraded) connection: the container's output comes from `reader`, stdin goes
/// to `writer`.
pub struct Hijacked {
    /// The output stream (with any bytes that arrived together with the response head).
    pub reader: BufReader<Stream>,
    /// The input stream.
    pub writer: Stream,
    /// From the response's content type: `Some(true)` multiplexed, `Some(false)` raw,
    /// `None` when the daemon did not say (decide from the container's `Tty`).
    pub multiplexed: Option<bool>,
}

impl Hijacked {
    /// Signals the end of stdin to the daemon (half-close), keeping output flowing.
    pub fn close_write(&self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Write)
    }

    /// Closes both directions (unblocks a reader in another thread).
    pub fn shutdown(&self) -> io::Result<()> {
        self.writer.shutdown(Shutdown::Both)
    }

    /// True if buffered output is waiting in `reader`.
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parsing() {
        assert_eq!(
            Host::parse("unix:///run/berth/berth.sock").unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            Host::parse("/tmp/x.sock").unwrap(),
            Host::Unix("/tmp/x.sock".into())
        );
        for bad in [
            "unix://",
            "unix://relative",
            "tcp://host/path",
            "tcp://[::1",
            "ssh://x",
            "nonsense",
        ] {
            let e = Host::parse(bad).unwrap_err();
            assert!(matches!(e, ClientError::InvalidHost { .. }), "{bad}");
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
        assert!(matches!(
            Host::parse("tcp://1.2.3.4:2376").unwrap(),
            Host::Tcp { ref host, port: 2376, tls: None } if host == "1.2.3.4"
        ));
    }

    #[test]
    fn host_resolution_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let both = env(&[
            ("BERTH_HOST", "unix:///b.sock"),
            ("DOCKER_HOST", "unix:///d.sock"),
        ]);
        assert_eq!(
            Host::resolve(Some("unix:///f.sock"), both).unwrap(),
            Host::Unix("/f.sock".into())
        );
        assert_eq!(
            Host::resolve(None, both).unwrap(),
            Host::Unix("/b.sock".into())
        );
        assert_eq!(
            Host::resolve(
                None,
                env(&[("BERTH_HOST", ""), ("DOCKER_HOST", "unix:///d.sock")])
            )
            .unwrap(),
            Host::Unix("/d.sock".into())
        );
        assert_eq!(
            Host::resolve(None, env(&[])).unwrap(),
            Host::Unix("/run/berth/berth.sock".into())
        );
    }

    #[test]
    fn connect_error_says_how_to_start_the_daemon() {
        let client = Client::new(Host::Unix("/nonexistent/berth-test.sock".into()));
        let e = client.send(Request::new("GET", "/_ping")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot connect to berthd at unix:///nonexistent/berth-test.sock: no such file or directory (is the daemon running? start it with: berthd &)"
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn daemon_errors_classify_by_status() {
        let e = |status| ClientError::Daemon {
            status,
            message: "x".into(),
        };
        assert_eq!(e(404).kind(), ErrorKind::NotFound);
        assert_eq!(e(409).kind(), ErrorKind::Conflict);
        assert_eq!(e(400).kind(), ErrorKind::InvalidArgument);
        assert_eq!(e(500).kind(), ErrorKind::Internal);
        assert_eq!(e(404).to_string(), "Error response from daemon: x");
    }
}
