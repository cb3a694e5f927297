//! berth-shim: the per-container supervisor, and the protocol berthd speaks with it.
//!
//! The binary (`berth-shim <state_dir>`) is spawned by berthd once per container. It
//! creates the container in-process through `berth-container` (or through a runc-compatible
//! CLI), holds its stdio or pty, writes the json-file log, reaps it, records how it ended,
//! and serves a control socket; it never depends on berthd staying alive (live restore).
//! See `docs/shim.md` for the lifecycle.
//!
//! This library is what berthd (and tests) need to talk to it, without tokio:
//! - [`protocol`]: `shim.json` ([`ShimConfig`]), the startup line ([`Startup`]), requests
//!   ([`Request`]) and replies, `exit.json` ([`ExitInfo`]), error kinds;
//! - [`stream`]: Docker's multiplexed stdout/stderr frames used by `attach`;
//! - [`jsonlog`]: the json-file log format;
//! - [`client`]: a small synchronous client.
#![forbid(unsafe_code)]

pub mod client;
pub mod jsonlog;
pub mod protocol;
pub mod stream;

pub use protocol::{
    BUILTIN_RUNTIME, CONFIG_FILE, EXIT_FILE, Empty, ErrorReply, ExitInfo, Kind, LogConfig, Overlay,
    PID_FILE, PREVIOUS_PID_FILE, PROCESS_NAME, Request, SOCKET_FILE, STARTED_FILE, SYNC_FD,
    ShimConfig, ShimError, StartReply, Startup, StateReply, StatsReply, Status, WindowSize,
    now_rfc3339, parse_reply,
};
