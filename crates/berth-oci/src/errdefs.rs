//! Error kinds, after containerd's `errdefs`.
//!
//! Libraries keep their own typed errors (thiserror) and implement [`Classify`] so that the
//! boundary (the API server, the CLIs) can decide the HTTP status or exit code in one place
//! without matching on messages.

/// What kind of failure an error is, independent of which library raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object does not exist (HTTP 404).
    NotFound,
    /// The caller's input is malformed or not allowed (HTTP 400).
    InvalidArgument,
    /// The request conflicts with the current state: name in use, object in use (HTTP 409).
    Conflict,
    /// The object is already in the requested state (HTTP 304 for start/stop).
    NotModified,
    /// The operation is not supported by this build, host or runtime (HTTP 501/400).
    NotImplemented,
    /// A dependency (kernel feature, registry, shim) is not available right now (HTTP 503).
    Unavailable,
    /// The caller is not allowed to do this (HTTP 403).
    Forbidden,
    /// A bug or an unexpected environment failure (HTTP 500).
    Internal,
}

/// Implemented by every library error type.
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}
