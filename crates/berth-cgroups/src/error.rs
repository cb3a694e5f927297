//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use berth_oci::errdefs::{Classify, ErrorKind};

/// Everything that can go wrong managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `linux.cgroupsPath` (or the container id it defaults from) is not a usable path.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// `linux.cgroupsPath` uses systemd's `slice:prefix:name` form.
    #[error(
        "systemd cgroup driver not supported: cgroupsPath {0:?} is in the systemd \"slice:prefix:name\" form; use a cgroupfs path such as \"/berth/<id>\""
    )]
    SystemdUnsupported(String),

    /// A resource in `linux.resources` has a value that cannot be applied.
    #[error("invalid linux.resources.{resource} value {value}: {reason}")]
    InvalidResource {
        resource: String,
        value: String,
        reason: String,
    },

    /// A resource needs a controller (or feature) this host does not provide.
    #[error("linux.resources.{resource} cannot be applied: {reason}")]
    Unsupported { resource: String, reason: String },

    /// No cgroup filesystem is mounted where the host should have one.
    #[error(
        "no cgroup hierarchy found: {0} (mount cgroup2 on /sys/fs/cgroup or the v1 controllers below it)"
    )]
    NoHierarchy(String),

    /// A cgroup file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Writing a value into a cgroup file failed (the kernel rejected it).
    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// A cgroup or proc file did not have the expected format.
    #[error("parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },

    /// The kernel rejected the generated device-filter program or its attachment.
    #[error("cgroup v2 device filter for {}: {reason}", path.display())]
    DeviceFilter { path: PathBuf, reason: String },

    /// A bounded wait (freezing, removal) did not finish.
    #[error("{what} {}: timed out after {millis} ms", path.display())]
    Timeout {
        what: &'static str,
        path: PathBuf,
        millis: u64,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        resource: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidResource {
            resource: resource.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(resource: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Unsupported {
            resource: resource.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Parse {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorKind::NotFound,
        Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::EROFS) => ErrorKind::Forbidden,
        Some(libc::EBUSY) => ErrorKind::Conflict,
        Some(libc::EINVAL) | Some(libc::ERANGE) => ErrorKind::InvalidArgument,
        Some(libc::EOPNOTSUPP) => ErrorKind::NotImplemented,
        _ => ErrorKind::Internal,
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPath { .. } | Error::InvalidResource { .. } => ErrorKind::InvalidArgument,
            Error::SystemdUnsupported(_) | Error::Unsupported { .. } => ErrorKind::NotImplemented,
            Error::NoHierarchy(_) => ErrorKind::Unavailable,
            // EINVAL/ERANGE on a write: the kernel refused the caller's value.
            Error::Io { source, .. } | Error::Write { source, .. } => io_kind(source),
            Error::Parse { .. } | Error::DeviceFilter { .. } => ErrorKind::Internal,
            Error::Timeout { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
