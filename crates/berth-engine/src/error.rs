//! The engine's error type. Messages that reach API clients use Docker's wording (the docker
//! CLI and SDKs show them verbatim after `Error response from daemon: `); the kind decides the
//! HTTP status in berthd's one mapping.

use berth_image::ImageError;
use berth_oci::errdefs::{Classify, ErrorKind};
use berth_store::StoreError;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404, Docker's text.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// 404, Docker's text.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// 404, Docker's text (only `none`, `host`, `bridge`/`default` exist for now).
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// 400.
    #[error("{0}")]
    InvalidArgument(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 304 (start of a running container, stop of a stopped one).
    #[error("{0}")]
    NotModified(String),
    /// 501.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: a shim or the kernel is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// Errors of the image layer keep their own kind.
    #[error(transparent)]
    Image(ImageError),
    #[error(transparent)]
    Store(StoreError),
    /// A shim answered with an error; `kind` is the shim's classification.
    #[error("{message}")]
    Shim { message: String, kind: ErrorKind },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }
    pub fn invalid(msg: impl Into<String>) -> EngineError {
        EngineError::InvalidArgument(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> EngineError {
        EngineError::Conflict(msg.into())
    }
}

impl From<ImageError> for EngineError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound(name) => EngineError::NoSuchImage(name),
            ImageError::Store(StoreError::ImageNotFound(name)) => EngineError::NoSuchImage(name),
            other => EngineError::Image(other),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ImageNotFound(name) => EngineError::NoSuchImage(name),
            other => EngineError::Store(other),
        }
    }
}

impl From<redb::Error> for EngineError {
    fn from(e: redb::Error) -> Self {
        EngineError::Internal(format!("metadata database: {e}"))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for EngineError {
            fn from(e: $t) -> Self {
                EngineError::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl Classify for EngineError {
    fn kind(&self) -> ErrorKind {
        use EngineError::*;
        match self {
            NoSuchContainer(_) | NoSuchImage(_) | NoSuchNetwork(_) => ErrorKind::NotFound,
            InvalidArgument(_) => ErrorKind::InvalidArgument,
            Conflict(_) => ErrorKind::Conflict,
            NotModified(_) => ErrorKind::NotModified,
            NotImplemented(_) => ErrorKind::NotImplemented,
            Unavailable(_) => ErrorKind::Unavailable,
            Image(e) => e.kind(),
            Store(e) => e.kind(),
            Shim { kind, .. } => *kind,
            Io { .. } | Internal(_) => ErrorKind::Internal,
        }
    }
}
