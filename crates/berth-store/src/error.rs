//! The store's error type. Every variant names the object and, where it helps, what to do.

use std::io;
use std::path::PathBuf;

use berth_oci::Digest;
use berth_oci::errdefs::{Classify, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {0} not found in the content store")]
    BlobNotFound(Digest),
    #[error("content digest mismatch: expected {expected}, got {actual} ({size} bytes read)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("content size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} is larger than the {limit}-byte limit for this kind of content")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("image id prefix {0:?} is ambiguous: it matches more than one image")]
    AmbiguousImage(String),
    #[error("no such snapshot: {0}")]
    SnapshotNotFound(String),
    #[error("snapshot {0} already exists")]
    SnapshotExists(String),
    #[error("layer {0} is not unpacked in this store")]
    LayerNotFound(Digest),
    #[error("lease {0} not found")]
    LeaseNotFound(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("metadata database: {0}")]
    Db(#[source] Box<redb::Error>),
    #[error(
        "data root {0} is in use by another process (the metadata database is locked); stop it first"
    )]
    InUse(PathBuf),
    #[error(
        "metadata schema version {found} in {path} is newer than this berth supports ({supported}); upgrade berth"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("corrupt metadata record {table}/{key}: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },
    #[error("mounting overlay at {target}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

impl Classify for StoreError {
    fn kind(&self) -> ErrorKind {
        use StoreError::*;
        match self {
            BlobNotFound(_) | ImageNotFound(_) | SnapshotNotFound(_) | LayerNotFound(_)
            | LeaseNotFound(_) => ErrorKind::NotFound,
            DigestMismatch { .. } | SizeMismatch { .. } | TooLarge { .. } => {
                ErrorKind::InvalidArgument
            }
            AmbiguousImage(_) => ErrorKind::InvalidArgument,
            SnapshotExists(_) => ErrorKind::Conflict,
            InUse(_) => ErrorKind::Unavailable,
            SchemaTooNew { .. } => ErrorKind::NotImplemented,
            Io { .. } | Db(_) | Corrupt { .. } | Mount { .. } => ErrorKind::Internal,
        }
    }
}

/// Adds a context to io results: `fs::read(p).ctx(|| format!("reading {}", p.display()))`.
pub(crate) trait IoContext<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| StoreError::io(f(), e))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);
