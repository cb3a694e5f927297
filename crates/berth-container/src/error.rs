//! The one error type of this crate.

use berth_oci::errdefs::{Classify, ErrorKind};
use std::io;

use crate::state::Status;

/// Everything that can go wrong creating or operating a container.
///
/// Messages follow runc's where containerd matches on them ("container X does not exist",
/// "container not running").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} does not exist")]
    NotFound(String),

    #[error("container with id {0} already exists (delete it first)")]
    AlreadyExists(String),

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// The bundle's `config.json` is malformed, violates the schema, or asks for something
    /// this host cannot do. `field` is the JSON path (`process.rlimits[0].hard`).
    #[error("invalid bundle config: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },

    /// The container is not in a state that allows the operation.
    #[error("cannot {op} container {id}: container {status}{}", hint_suffix(.status))]
    BadState {
        id: String,
        op: &'static str,
        status: Status,
    },

    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),

    #[error("seccomp: {0}")]
    Seccomp(String),

    /// A lifecycle hook failed or timed out.
    #[error("{stage} hook {path}: {reason}")]
    Hook {
        stage: &'static str,
        path: String,
        reason: String,
    },

    /// Setting up the container's process failed; the message comes from inside the new
    /// process (which is gone).
    #[error("{0}")]
    Init(String),

    #[error("{0} is not supported by berth-runtime")]
    NotSupported(String),
}

fn hint_suffix(status: &Status) -> &'static str {
    match status {
        Status::Stopped => " (container not running)",
        Status::Created => "",
        Status::Running => " (stop it first or use --force)",
        Status::Paused => " (resume it first)",
        Status::Creating => "",
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    pub(crate) fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::Conflict,
            Error::InvalidId { .. } | Error::InvalidSpec { .. } => ErrorKind::InvalidArgument,
            Error::BadState { .. } => ErrorKind::Conflict,
            Error::Io { .. } | Error::Init(_) | Error::Seccomp(_) | Error::Hook { .. } => {
                ErrorKind::Internal
            }
            Error::Cgroup(e) => e.kind(),
            Error::NotSupported(_) => ErrorKind::NotImplemented,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
