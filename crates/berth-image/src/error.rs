//! The image library's error type. Messages name the image, archive entry or field, and say
//! what was expected.

use std::io;

use berth_oci::errdefs::{Classify, ErrorKind};
use berth_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),
    #[error("invalid image archive: entry {entry:?}: {reason}")]
    BadEntry { entry: String, reason: String },
    #[error("invalid image archive: {path:?} is referenced by {by} but is not in the archive")]
    MissingFile { path: String, by: String },
    #[error("invalid {what}: {reason}")]
    BadJson { what: String, reason: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error(
        "layer {index} ({blob}) of image {image}: its content has diff id {actual} but the config's rootfs.diff_ids[{index}] is {expected}"
    )]
    DiffIdMismatch {
        image: String,
        index: usize,
        blob: String,
        expected: String,
        actual: String,
    },
    #[error("image {image}: {reason}")]
    InvalidImage { image: String, reason: String },
    #[error("layer {what}: {source}")]
    Layer {
        what: String,
        #[source]
        source: berth_archive::Error,
    },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("unable to find user {user}: {reason}")]
    User { user: String, reason: String },
    #[error(transparent)]
    Reference(#[from] berth_oci::reference::ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }
    pub(crate) fn archive(reason: impl Into<String>) -> Self {
        ImageError::InvalidArchive(reason.into())
    }
}

impl Classify for ImageError {
    fn kind(&self) -> ErrorKind {
        use ImageError::*;
        match self {
            InvalidArchive(_)
            | BadEntry { .. }
            | MissingFile { .. }
            | BadJson { .. }
            | DiffIdMismatch { .. }
            | InvalidImage { .. }
            | InvalidArgument(_)
            | User { .. } => ErrorKind::InvalidArgument,
            UnsupportedMediaType { .. } => ErrorKind::InvalidArgument,
            Layer { source, .. } => source.kind(),
            NotFound(_) => ErrorKind::NotFound,
            Conflict(_) => ErrorKind::Conflict,
            Reference(e) => e.kind(),
            Store(e) => e.kind(),
            Io { .. } => ErrorKind::Internal,
        }
    }
}

pub(crate) trait IoContext<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| ImageError::io(f(), e))
    }
}

/// Parses JSON, naming `what` and the path of the offending field on error.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ImageError::BadJson {
            what: what.to_string(),
            reason: if path == "." {
                inner.to_string()
            } else {
                format!("field {path}: {inner}")
            },
        }
    })
}
