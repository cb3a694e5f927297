//! The contract between berthd and a shim: the files in the shim's state directory, the
//! startup line, and the control protocol on `shim.sock`.
//!
//! ```text
//! <state_dir>/
//!   shim.json   ShimConfig, written by berthd before it spawns the shim (read once; at
//!               the exit its inode becomes exit.json's, so it is gone afterwards)
//!   shim.sock   the control socket (bound by the shim before it creates the container)
//!   shim.pid    the shim's pid, decimal, written in place after the socket is bound
//!   shim.pid.prev  a previous shim's `shim.pid`, renamed by berthd before a spawn; the
//!               shim renames it back and writes over it (its inode, no allocation)
//!   started     a hard link to shim.pid, made once the container's app runs
//!   exit.json   ExitInfo, appears atomically when the container has exited, before any
//!               `wait` is answered; it outlives the shim so a restarted berthd learns
//!               the outcome of containers that exited while it was down
//! ```
//!
//! Startup: berthd writes `shim.json`, spawns `berth-shim <state_dir>` with the write end
//! of a pipe as fd 3, and reads one JSON line from it: [`Startup`] (`{"pid":N}` once the
//! container exists, and runs if `start_now` was set; or `{"error":..,"kind":..}`).
//! With `listening_notice`, a [`Startup::Listening`] line (`{"listening":true}`) comes
//! first, once the socket is bound: requests may be sent from then on, and are served
//! once the container exists (or fail with the connection, if it cannot be created).
//! The pipe is closed after that line; EOF without a line means the shim died. The line
//! comes as soon as the runtime has created the container; the shim's own setup (its
//! descriptors, the epoll set) follows, while requests already wait on the socket, which
//! is bound before the container is created. A setup failing after the line (out of
//! descriptors) kills and removes the container and exits: the socket is gone.
//!
//! Control: a client connects to `shim.sock` and writes one [`Request`] per line
//! (`{"op":"kill","signal":15}`); the shim answers each with one line, in order: the
//! reply object of that request (see each variant) or an [`ErrorReply`]
//! (`{"error":"...","kind":"conflict"}`). Several connections are served at once, in
//! arrival order: a request written on one connection before another connection is made
//! is served before any request of that other connection, even when both wait in the
//! listen backlog (berthd sends an attach, then the start, without waiting for the
//! attach's reply; the attach must see all output). A
//! `wait` holds its connection until the container exits (requests pipelined behind it
//! are answered afterwards), so ask it on a connection of its own. After the reply to
//! `attach` the connection is a byte stream (see [`Request::Attach`]).
//!
//! Compatibility: this module only grows. New requests and new optional fields may be
//! added; existing names, shapes and meanings do not change. The shim ignores unknown
//! fields in requests (a newer berthd may talk to an older shim after an upgrade with live
//! restore); clients should ignore unknown fields in replies.

use berth_oci::errdefs::{Classify, ErrorKind};
use berth_oci::spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `<state_dir>/shim.json`.
pub const CONFIG_FILE: &str = "shim.json";
/// `<state_dir>/shim.sock`.
pub const SOCKET_FILE: &str = "shim.sock";
/// `<state_dir>/shim.pid`.
pub const PID_FILE: &str = "shim.pid";
/// `<state_dir>/shim.pid.prev`: a previous shim's `shim.pid`, set aside by berthd (never
/// deleted: on a journal-less ext4 every deleted inode makes later allocations slower, see
/// docs/shim.md, "Inodes per container"). The next shim renames it to `shim.pid` and writes
/// its pid over the old one, so no inode is allocated or freed per container.
pub const PREVIOUS_PID_FILE: &str = "shim.pid.prev";
/// `<state_dir>/exit.json`.
pub const EXIT_FILE: &str = "exit.json";
/// `<state_dir>/started`: made by the shim once its container's app runs, before it
/// answers `start`; only its existence counts. berthd records a first start without fsync;
/// after a berthd crash this file tells it that a container whose record still says
/// `created` did start (its shim may be gone without an `exit.json`: SIGKILLed with its
/// container). It is a hard link to `shim.pid` (so its content is the pid), which costs no
/// inode on the start's path; an empty file where links fail.
pub const STARTED_FILE: &str = "started";
/// The descriptor on which the shim writes its one startup line.
pub const SYNC_FD: i32 = 3;
/// The process name the shim gives itself (`ps`, `/proc/PID/comm`).
pub const PROCESS_NAME: &str = "berth-shim";
/// `runtime` value selecting the in-process runtime (berth-container).
pub const BUILTIN_RUNTIME: &str = "berth";
/// The longest request line the shim accepts (a resources update is the largest).
pub const MAX_REQUEST_LINE: usize = 1 << 20;

/// What berthd writes to `<state_dir>/shim.json` before spawning the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShimConfig {
    /// The container id (also the runtime's id and, without `cgroupsPath`, its cgroup name).
    pub id: String,
    /// The OCI bundle: `config.json` and, usually, the `rootfs` mount point.
    pub bundle: PathBuf,
    /// The runtime's state root (berth-container's root, or `--root` of runc/crun).
    pub runtime_root: PathBuf,
    /// `"berth"` (default: in-process, no exec) or the absolute path of a runc-compatible
    /// binary (`/usr/sbin/runc`, `/usr/bin/crun`) driven through its CLI.
    #[serde(default = "default_runtime")]
    pub runtime: String,
    /// Extra global arguments for an external runtime (before the command), e.g.
    /// `["--systemd-cgroup"]`. Ignored for the built-in runtime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_args: Vec<String>,
    /// The json-file log; `None` keeps no log (Docker's `--log-driver none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogConfig>,
    /// The container has a terminal; must equal the spec's `process.terminal`.
    #[serde(default)]
    pub tty: bool,
    /// Keep the container's stdin open for attached clients (`-i`); without it stdin is
    /// `/dev/null`.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client that wrote stdin
    /// half-closes its stream (`docker run -i` without `-d`).
    #[serde(default)]
    pub stdin_once: bool,
    /// PID 1 is the runtime's built-in init (forwards signals, reaps zombies).
    #[serde(default)]
    pub init: bool,
    /// Mount this overlay as the root filesystem (at the spec's `root.path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<Overlay>,
    /// Run the app as soon as the container exists (`run -d`); otherwise wait for `start`.
    #[serde(default)]
    pub start_now: bool,
    /// Where compiled seccomp filters are cached (built-in runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_cache: Option<PathBuf>,
    /// The terminal's initial size (tty only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<WindowSize>,
    /// A network namespace made ahead of time (berthd's pool, `/proc/<pid>/fd/<n>`) that
    /// the container joins instead of creating one, when its spec asks for a new network
    /// namespace. Built-in runtime only; external runtimes create their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// Write [`Startup::Listening`] on the startup channel once the socket is bound, before
    /// the startup line (berthd's `docker run` sends its attach and start then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub listening_notice: bool,
    /// Built-in runtime: take a spare cgroup of an earlier container with the same resources
    /// and set this one's aside at the exit (`berth_cgroups::spare`; cgroup v1 only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recycle_cgroup: bool,
}

fn default_runtime() -> String {
    BUILTIN_RUNTIME.to_string()
}

/// The json-file log driver's settings (Docker's `--log-opt max-size/max-file`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The current log file (`<id>-json.log`); rotated files get `.1`, `.2`, ...
    pub path: PathBuf,
    /// Rotate when the file has reached this many bytes; 0 = never.
    #[serde(default)]
    pub max_size: u64,
    /// How many files to keep, the current one included (at least 1).
    #[serde(default = "one")]
    pub max_file: u32,
}

fn one() -> u32 {
    1
}

/// An overlay root filesystem (lowest layer last, as overlayfs' `lowerdir=`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    pub lowerdirs: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upperdir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// Extra mount options (`index=off`, `xino=off`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSize {
    pub height: u16,
    pub width: u16,
}

impl ShimConfig {
    /// A config with every optional setting at its default.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        runtime_root: impl Into<PathBuf>,
    ) -> ShimConfig {
        ShimConfig {
            id: id.into(),
            bundle: bundle.into(),
            runtime_root: runtime_root.into(),
            runtime: default_runtime(),
            runtime_args: Vec::new(),
            log: None,
            tty: false,
            open_stdin: false,
            stdin_once: false,
            init: false,
            rootfs: None,
            start_now: false,
            seccomp_cache: None,
            console_size: None,
            netns: None,
            listening_notice: false,
            recycle_cgroup: false,
        }
    }

    /// Parses and validates `shim.json`; errors name the field.
    pub fn from_json(bytes: &[u8]) -> Result<ShimConfig, ShimError> {
        // Every start parses it: the valid case takes the plain deserializer; only a failure
        // is parsed again with path tracking, to name the field.
        if let Ok(cfg) = serde_json::from_slice::<ShimConfig>(bytes) {
            cfg.validate()?;
            return Ok(cfg);
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let cfg: ShimConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            };
            ShimError::invalid(format!("invalid {CONFIG_FILE}{at}: {}", e.into_inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates `<state_dir>/shim.json`.
    pub fn load(state_dir: &Path) -> Result<ShimConfig, ShimError> {
        let path = state_dir.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                Kind::NotFound
            } else {
                Kind::Internal
            };
            ShimError::new(kind, format!("cannot read {}: {e}", path.display()))
        })?;
        ShimConfig::from_json(&bytes)
    }

    /// The JSON berthd writes (pretty enough to read, one object).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Checks what the types cannot: names, absolute paths, consistent options.
    pub fn validate(&self) -> Result<(), ShimError> {
        let bad = |field: &str, why: String| {
            Err(ShimError::invalid(format!(
                "invalid {CONFIG_FILE}: {field}: {why}"
            )))
        };
        if self.id.is_empty()
            || self.id == "."
            || self.id == ".."
            || self.id.contains('/')
            || self.id.contains('\0')
        {
            return bad("id", format!("{:?} is not a valid container id", self.id));
        }
        for (field, p) in [
            ("bundle", &self.bundle),
            ("runtime_root", &self.runtime_root),
        ] {
            if !p.is_absolute() {
                return bad(field, format!("{} is not an absolute path", p.display()));
            }
        }
        if let Some(p) = &self.netns
            && !p.is_absolute()
        {
            return bad("netns", format!("{} is not an absolute path", p.display()));
        }
        if self.runtime.is_empty() {
            return bad(
                "runtime",
                "must be \"berth\" or the path of a runtime binary".into(),
            );
        }
        if self.runtime != BUILTIN_RUNTIME && !Path::new(&self.runtime).is_absolute() {
            return bad(
                "runtime",
                format!(
                    "{:?} is neither \"berth\" nor an absolute path of a runc-compatible binary",
                    self.runtime
                ),
            );
        }
        if let Some(log) = &self.log {
            if !log.path.is_absolute() {
                return bad(
                    "log.path",
                    format!("{} is not an absolute path", log.path.display()),
                );
            }
            if log.max_file == 0 {
                return bad("log.max_file", "must be at least 1".into());
            }
        }
        if let Some(o) = &self.rootfs {
            if o.lowerdirs.is_empty() {
                return bad("rootfs.lowerdirs", "needs at least one layer".into());
            }
            if o.upperdir.is_some() != o.workdir.is_some() {
                return bad(
                    "rootfs",
                    "upperdir and workdir go together (give both or neither)".into(),
                );
            }
            for (i, d) in o.lowerdirs.iter().enumerate() {
                if !d.is_absolute() {
                    return bad(
                        &format!("rootfs.lowerdirs[{i}]"),
                        format!("{} is not an absolute path", d.display()),
                    );
                }
            }
        }
        if self.console_size.is_some() && !self.tty {
            return bad("console_size", "only applies with tty".into());
        }
        Ok(())
    }

    /// Whether the in-process runtime is used.
    pub fn builtin_runtime(&self) -> bool {
        self.runtime == BUILTIN_RUNTIME
    }
}

/// One line on fd 3 at startup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Startup {
    /// The container exists (and runs, with `start_now`); `pid` is its init.
    Ok {
        pid: i32,
        /// Settings that were tolerated but ignored (Docker's create warnings).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// Creating the container failed; the shim has cleaned up and exits non-zero.
    Err(ErrorReply),
    /// Before the startup line, with [`ShimConfig::listening_notice`]: the socket is bound.
    Listening { listening: bool },
}

impl Startup {
    /// Parses the startup line into the init's pid and warnings, or the shim's error.
    pub fn parse(line: &[u8]) -> Result<(i32, Vec<String>), ShimError> {
        match serde_json::from_slice::<Startup>(trim_newline(line)) {
            Ok(Startup::Ok { pid, warnings }) => Ok((pid, warnings)),
            Ok(Startup::Err(e)) => Err(e.into()),
            Ok(Startup::Listening { .. }) => Err(ShimError::internal(
                "the shim's listening notice where its startup line belongs",
            )),
            Err(e) => Err(ShimError::internal(format!(
                "malformed startup line from the shim ({e}): {:?}",
                String::from_utf8_lossy(line)
            ))),
        }
    }

    /// Whether `line` is the [`Startup::Listening`] notice (not yet the startup line).
    pub fn is_listening(line: &[u8]) -> bool {
        matches!(
            serde_json::from_slice::<Startup>(trim_newline(line)),
            Ok(Startup::Listening { .. })
        )
    }

    /// The line (with its newline) the shim writes.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self)
    }
}

/// A request on `shim.sock`, one JSON object per line, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// → [`StateReply`].
    State,
    /// Lets a created container run its app. → [`StartReply`]. Conflict if it is not
    /// in the created state.
    Start,
    /// Sends `signal` to the init, or with `all` to every process of the container.
    /// → [`Empty`]. Conflict (`"container X is not running"`) once it has exited.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
    },
    /// Answers when the container has exited (immediately if it already has).
    /// → [`ExitInfo`].
    Wait,
    /// Sets the terminal size (tty only). → [`Empty`].
    Resize { height: u16, width: u16 },
    /// Freezes every process of the container. → [`Empty`].
    Pause,
    /// Thaws it. → [`Empty`].
    Resume,
    /// Changes its resource limits (an OCI `linux.resources` object; the fields given
    /// replace the current ones). → [`Empty`].
    Update { resources: Box<LinuxResources> },
    /// Resource usage of the container's cgroup. → [`StatsReply`].
    Stats,
    /// Turns this connection into the container's stdio. → [`Empty`], then a byte stream:
    /// shim → client carries stdout/stderr (the ones asked for) from now on, in Docker's
    /// multiplexed format ([`crate::stream`]: 8-byte header, stream 1 or 2, u32 BE length)
    /// without a tty, raw bytes with one; client → shim bytes go to the container's stdin
    /// (with `stdin` and `open_stdin`). A client half-close ends stdin for the container
    /// when `stdin_once` is set. The shim closes the stream after the container exited
    /// and its output was sent. A client that does not keep up is dropped.
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Removes a container that was created but never started and exits the shim
    /// (`docker rm` of a created container). → [`Empty`]. Conflict while it runs (kill
    /// it first); after an exit the shim cleans up and exits on its own anyway.
    Shutdown,
}

impl Request {
    /// The request as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self)
    }

    /// Parses one request line; errors say what is wrong with it.
    pub fn parse(line: &[u8]) -> Result<Request, ShimError> {
        let line = trim_newline(line);
        serde_json::from_slice(line).map_err(|e| {
            ShimError::invalid(format!(
                "bad request {:?}: {e}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            ))
        })
    }
}

/// A container's status as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; the init waits for `start`.
    Created,
    Running,
    Paused,
    /// Exited; the shim is cleaning up and about to exit.
    Stopped,
}

/// Reply to [`Request::State`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateReply {
    pub id: String,
    pub status: Status,
    /// The init's pid (in the host's pid namespace); still set after it exited.
    pub pid: i32,
    /// The shim's own pid.
    pub shim_pid: i32,
    /// When the app started running (RFC 3339, nanoseconds, UTC); none before `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitInfo>,
}

/// Reply to [`Request::Start`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartReply {
    /// RFC 3339 with nanoseconds, UTC.
    pub started_at: String,
}

/// How a container ended: the reply to [`Request::Wait`] and the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit status, or 128 + the signal number that killed it.
    pub exit_code: i32,
    /// RFC 3339 with nanoseconds, UTC (`2026-11-22T09:00:00.123456789Z`).
    pub exited_at: String,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

impl ExitInfo {
    /// Reads `<state_dir>/exit.json`; `Ok(None)` when it does not exist.
    pub fn load(state_dir: &Path) -> Result<Option<ExitInfo>, ShimError> {
        let path = state_dir.join(EXIT_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ShimError::internal(format!("malformed {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ShimError::internal(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

/// Reply to [`Request::Stats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// The cgroup's statistics in runc's `events --stats` shape (`cpu`, `memory`, `pids`,
    /// `blkio`, `hugetlb`, ...), as produced by berth-cgroups.
    pub stats: serde_json::Value,
    /// Pids of the container's processes (host pid namespace).
    pub pids: Vec<i32>,
}

/// The reply to requests that return nothing but success: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// An error reply (and the error form of the startup line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    pub kind: Kind,
}

/// The kind of an error, for the API's status code (`berth_oci::errdefs` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NotFound,
    Invalid,
    Conflict,
    NotModified,
    NotImplemented,
    Unavailable,
    Forbidden,
    Internal,
}

impl From<ErrorKind> for Kind {
    fn from(k: ErrorKind) -> Kind {
        match k {
            ErrorKind::NotFound => Kind::NotFound,
            ErrorKind::InvalidArgument => Kind::Invalid,
            ErrorKind::Conflict => Kind::Conflict,
            ErrorKind::NotModified => Kind::NotModified,
            ErrorKind::NotImplemented => Kind::NotImplemented,
            ErrorKind::Unavailable => Kind::Unavailable,
            ErrorKind::Forbidden => Kind::Forbidden,
            ErrorKind::Internal => Kind::Internal,
        }
    }
}

impl From<Kind> for ErrorKind {
    fn from(k: Kind) -> ErrorKind {
        match k {
            Kind::NotFound => ErrorKind::NotFound,
            Kind::Invalid => ErrorKind::InvalidArgument,
            Kind::Conflict => ErrorKind::Conflict,
            Kind::NotModified => ErrorKind::NotModified,
            Kind::NotImplemented => ErrorKind::NotImplemented,
            Kind::Unavailable => ErrorKind::Unavailable,
            Kind::Forbidden => ErrorKind::Forbidden,
            Kind::Internal => ErrorKind::Internal,
        }
    }
}

/// An error the shim reported (or one about talking to it), with its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShimError {
    pub kind: Kind,
    pub message: String,
}

impl ShimError {
    pub fn new(kind: Kind, message: impl Into<String>) -> ShimError {
        ShimError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ShimError {
        ShimError::new(Kind::Invalid, message)
    }

    pub fn conflict(message: impl Into<String>) -> ShimError {
        ShimError::new(Kind::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> ShimError {
        ShimError::new(Kind::Internal, message)
    }

    /// Any classified library error, keeping its kind.
    pub fn from_classified(e: &(impl Classify + std::fmt::Display)) -> ShimError {
        ShimError::new(e.kind().into(), e.to_string())
    }

    /// The reply line for this error.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(&ErrorReply {
            error: self.message.clone(),
            kind: self.kind,
        })
    }
}

impl From<ErrorReply> for ShimError {
    fn from(e: ErrorReply) -> ShimError {
        ShimError::new(e.kind, e.error)
    }
}

impl Classify for ShimError {
    fn kind(&self) -> ErrorKind {
        self.kind.into()
    }
}

/// Parses one reply line: the expected reply type, or the error the shim sent.
///
/// Usable from async code: read a line, then call this.
pub fn parse_reply<T: serde::de::DeserializeOwned>(line: &[u8]) -> Result<T, ShimError> {
    let line = trim_newline(line);
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        ShimError::internal(format!(
            "malformed reply from the shim ({e}): {:?}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ))
    })?;
    if value.get("error").is_some() {
        let e: ErrorReply = serde_json::from_value(value).map_err(|e| {
            ShimError::internal(format!("malformed error reply from the shim: {e}"))
        })?;
        return Err(e.into());
    }
    serde_json::from_value(value)
        .map_err(|e| ShimError::internal(format!("unexpected reply from the shim: {e}")))
}

/// Encodes a reply (or any message) as one line.
pub fn to_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain data (strings, numbers, JSON values) always serializes.
    let mut v = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    v.push(b'\n');
    v
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The current time as RFC 3339 with nanoseconds in UTC, trailing zeros trimmed (Go's
/// `time.RFC3339Nano`, what Docker writes).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_look_like_the_docs() {
        let cases = [
            (Request::State, r#"{"op":"state"}"#),
            (Request::Start, r#"{"op":"start"}"#),
            (
                Request::Kill {
                    signal: 15,
                    all: false,
                },
                r#"{"op":"kill","signal":15,"all":false}"#,
            ),
            (Request::Wait, r#"{"op":"wait"}"#),
            (
                Request::Resize {
                    height: 24,
                    width: 80,
                },
                r#"{"op":"resize","height":24,"width":80}"#,
            ),
            (
                Request::Attach {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                },
                r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#,
            ),
            (Request::Shutdown, r#"{"op":"shutdown"}"#),
        ];
        for (req, text) in cases {
            let line = req.to_line();
            assert_eq!(std::str::from_utf8(&line).unwrap(), format!("{text}\n"));
            assert_eq!(Request::parse(&line).unwrap(), req);
        }
        assert_eq!(
            Request::parse(br#"{"op":"kill","signal":9}"#).unwrap(),
            Request::Kill {
                signal: 9,
                all: false
            }
        );
    }

    #[test]
    fn unknown_request_fields_are_ignored_for_newer_clients() {
        // A berthd upgraded while old shims keep running may add optional fields.
        assert_eq!(
            Request::parse(br#"{"op":"state","verbose":true}"#).unwrap(),
            Request::State
        );
    }

    #[test]
    fn update_carries_oci_resources() {
        let r = Request::parse(br#"{"op":"update","resources":{"pids":{"limit":10}}}"#).unwrap();
        match r {
            Request::Update { resources } => {
                assert_eq!(resources.pids().as_ref().unwrap().limit(), 10)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_requests_are_rejected_with_a_reason() {
        for (line, needle) in [
            (&b"{"[..], "EOF"),
            (b"null", "invalid type"),
            (br#"{"op":"dance"}"#, "unknown variant `dance`"),
            (br#"{"op":"kill"}"#, "missing field `signal`"),
            (br#"{"op":"kill","signal":"x"}"#, "invalid type"),
            (b"\xff\xfe", "expected value"),
        ] {
            let e = Request::parse(line).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid);
            assert!(e.message.contains(needle), "{line:?}: {}", e.message);
        }
    }

    #[test]
    fn replies_parse_into_types_or_errors() {
        let exit: ExitInfo = parse_reply(
            b"{\"exit_code\":3,\"exited_at\":\"2026-01-01T00:00:00.5Z\",\"oom_killed\":false}\n",
        )
        .unwrap();
        assert_eq!(exit.exit_code, 3);
        let e = parse_reply::<Empty>(
            b"{\"error\":\"container x is not running\",\"kind\":\"conflict\"}\n",
        )
        .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict);
        assert_eq!(e.message, "container x is not running");
        assert_eq!(Classify::kind(&e), ErrorKind::Conflict);
        let e = parse_reply::<Empty>(b"garbage").unwrap_err();
        assert_eq!(e.kind, Kind::Internal);
        assert_eq!(parse_reply::<Empty>(b"{}\n").unwrap(), Empty {});
    }

    #[test]
    fn startup_lines() {
        assert_eq!(Startup::parse(b"{\"pid\":42}\n").unwrap(), (42, Vec::new()));
        let line = Startup::Ok {
            pid: 7,
            warnings: vec!["w".into()],
        }
        .to_line();
        assert_eq!(Startup::parse(&line).unwrap(), (7, vec!["w".to_string()]));
        let e = Startup::parse(
            b"{\"error\":\"invalid bundle config: process.args: empty\",\"kind\":\"invalid\"}",
        )
        .unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        assert!(Startup::parse(b"").is_err());
    }

    fn config_json(extra: &str) -> String {
        format!(r#"{{"id":"c1","bundle":"/b","runtime_root":"/run/r"{extra}}}"#)
    }

    #[test]
    fn config_defaults_and_round_trip() {
        let c = ShimConfig::from_json(config_json("").as_bytes()).unwrap();
        assert_eq!(c, ShimConfig::new("c1", "/b", "/run/r"));
        assert!(c.builtin_runtime());
        let mut full = c.clone();
        full.log = Some(LogConfig {
            path: "/l/c1-json.log".into(),
            max_size: 10,
            max_file: 3,
        });
        full.rootfs = Some(Overlay {
            lowerdirs: vec!["/l1".into(), "/l2".into()],
            upperdir: Some("/u".into()),
            workdir: Some("/w".into()),
            options: vec![],
        });
        full.tty = true;
        full.console_size = Some(WindowSize {
            height: 24,
            width: 80,
        });
        full.runtime = "/usr/sbin/runc".into();
        assert_eq!(ShimConfig::from_json(&full.to_json()).unwrap(), full);
        let log: ShimConfig =
            ShimConfig::from_json(config_json(r#","log":{"path":"/x.log"}"#).as_bytes()).unwrap();
        assert_eq!(log.log.unwrap().max_file, 1);
    }

    #[test]
    fn bad_configs_name_the_field() {
        for (extra, needle) in [
            (r#","tty":"yes""#, "at tty"),
            (r#","bogus":1"#, "unknown field `bogus`"),
            (r#","log":{"path":"rel.log"}"#, "log.path"),
            (r#","log":{"path":"/a","max_file":0}"#, "log.max_file"),
            (r#","runtime":"runc""#, "runtime"),
            (r#","rootfs":{"lowerdirs":[]}"#, "rootfs.lowerdirs"),
            (
                r#","rootfs":{"lowerdirs":["/a"],"upperdir":"/u"}"#,
                "upperdir and workdir",
            ),
            (r#","rootfs":{"lowerdirs":["a"]}"#, "rootfs.lowerdirs[0]"),
            (r#","console_size":{"height":1,"width":2}"#, "console_size"),
            (
                r#","netns":"proc/1/ns/net""#,
                "netns: proc/1/ns/net is not an absolute",
            ),
        ] {
            let e = ShimConfig::from_json(config_json(extra).as_bytes()).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid, "{extra}");
            assert!(e.message.contains(needle), "{extra}: {}", e.message);
        }
        for json in [
            r#"{"id":"a/b","bundle":"/b","runtime_root":"/r"}"#,
            r#"{"id":"..","bundle":"/b","runtime_root":"/r"}"#,
            r#"{"id":"x","bundle":"b","runtime_root":"/r"}"#,
            r#"{"id":"x","bundle":"/b"}"#,
            "[1,2]",
            "",
        ] {
            assert_eq!(
                ShimConfig::from_json(json.as_bytes()).unwrap_err().kind,
                Kind::Invalid,
                "{json}"
            );
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z'), "{t}");
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t}");
    }
}
