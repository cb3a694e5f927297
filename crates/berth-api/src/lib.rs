//! The Docker Engine API v1.47 as Berth speaks it, shared by the daemon (`berthd`, the server)
//! and the CLI (`berth`, the client).
//!
//! - [`models`]: request and response bodies, the `bollard-stubs` crate pinned at the release that
//!   matches API 1.47 exactly (re-exported so that its version is chosen in one place).
//! - [`body`]: bodies the stubs lack or model awkwardly: the container-create body
//!   ([`body::ContainerCreateBody`]) and the error body (`{"message": ...}`).
//! - [`query`]: one struct per endpoint for its query parameters, with Docker's conventions
//!   (booleans as `1`/`true`, repeated keys for lists, `filters` as JSON) and the
//!   encoder/decoder both sides use ([`query::to_query_string`], [`query::from_query_str`]).
//! - [`stream`]: the byte formats of streaming endpoints: the 8-byte multiplexed stdout/stderr
//!   frame header (attach, logs), JSON progress messages (load, import, pull), and JSON-lines
//!   decoding (events).
//! - [`humanize`]: Docker's human-readable durations, sizes and container status texts
//!   (`Up 2 seconds`, `Exited (0) 3 seconds ago`): the daemon computes `Status` in
//!   `/containers/json`, the CLI computes `CREATED` columns; both must agree with Docker.
//! - [`client`]: a small synchronous HTTP/1.1 client over a unix socket with keep-alive,
//!   chunked bodies, streaming responses and hijacked (upgraded) connections for attach. No
//!   async runtime: the CLI starts and finishes in a few milliseconds.
//!
//! The server side (axum routes) lives in the daemon's crate and builds on the same types.
#![forbid(unsafe_code)]

pub mod body;
pub mod client;
pub mod humanize;
pub mod query;
pub mod stream;

/// Request and response models of the Docker Engine API v1.47 (`bollard-stubs`).
pub use bollard_stubs::models;

/// The API version this crate implements; the client prefixes every path with `/v1.47`.
pub const API_VERSION: &str = "1.47";

/// The oldest API version a Docker client may negotiate down to and still be served
/// (docker CLI 28 talks 1.43..1.47 happily).
pub const MIN_API_VERSION: &str = "1.24";

/// The default socket of `berthd`, as a host URL.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
