//! The one error type of this crate.
//!
//! Every failure caused by the layer's content names the tar entry and the reason, so that a
//! user who sees `berth load` fail can tell which file of which layer is at fault. Hostile
//! input (escapes, bombs) is an [`ErrorKind::InvalidArgument`]; a failing disk or a missing
//! destination is classified by its errno.

use std::io;
use std::path::PathBuf;

use berth_oci::errdefs::{Classify, ErrorKind};

/// Result of every fallible function in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while applying or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An entry of the layer is malformed or not allowed; nothing outside the destination
    /// was touched.
    #[error("layer entry {entry:?}: {reason}")]
    Entry {
        /// The entry's name as stored in the tar (lossily decoded, shortened if huge).
        entry: String,
        reason: EntryError,
    },
    /// Creating or updating an entry in the destination failed.
    #[error("layer entry {entry:?}: {op}: {source}")]
    EntryIo {
        entry: String,
        /// The operation, e.g. `"writing file data"`.
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The stream is not a well-formed tar archive at this position.
    #[error("layer is not a valid tar archive at byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    /// The stream ended inside an entry (a truncated download or a cut-off file).
    #[error("layer is truncated: the stream ended {context} (at byte {offset})")]
    Truncated { offset: u64, context: String },
    /// The uncompressed stream grew beyond `ApplyOptions::max_total_size`.
    #[error(
        "layer exceeds the limit of {limit} uncompressed bytes (a decompression bomb? raise \
         the limit if the layer is legitimate)"
    )]
    TooLarge { limit: u64 },
    /// The layer has more entries than `ApplyOptions::max_entries`.
    #[error("layer has more than {limit} entries (raise the limit if the layer is legitimate)")]
    TooManyEntries { limit: u64 },
    /// The compressed stream is corrupt or uses a format we do not read.
    #[error("layer stream: {0}")]
    Compression(String),
    /// Reading the layer stream failed.
    #[error("reading the layer stream: {0}")]
    Read(#[source] io::Error),
    /// The destination (apply) or source tree (diff) cannot be used.
    #[error("{path}: {op}: {source}")]
    Path {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Writing the produced tar stream failed.
    #[error("writing the layer tar: {0}")]
    Write(#[source] io::Error),
}

/// Why one entry of a layer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("path escapes the layer root through \"..\"")]
    EscapesRoot,
    #[error("path resolves outside the layer root through a symlink")]
    SymlinkEscape,
    #[error("path crosses too many symlinks (a loop?)")]
    SymlinkLoop,
    #[error("a parent of this path is not a directory")]
    ParentNotDirectory,
    #[error("symlink target {target:?} points outside the layer root")]
    SymlinkTargetEscapes { target: String },
    #[error("symlink target is empty")]
    EmptySymlinkTarget,
    #[error("hardlink target {target:?} is outside the layer root")]
    HardlinkEscapes { target: String },
    #[error("hardlink target {target:?} does not exist (it must come earlier in the layer)")]
    HardlinkTargetMissing { target: String },
    #[error("hardlink target {target:?} is a directory")]
    HardlinkToDirectory { target: String },
    #[error("hardlink points at itself")]
    HardlinkToSelf,
    #[error("whiteout {name:?} does not name a file (\".\", \"..\" and empty names are refused)")]
    BadWhiteout { name: String },
    #[error("device nodes can only be created by root (CAP_MKNOD)")]
    DeviceNotPermitted,
    #[error("entry declares {size} bytes but only {remaining} remain under the layer size limit")]
    TooLarge { size: u64, remaining: u64 },
    #[error("name contains a NUL byte")]
    NulInName,
    #[error("name is empty")]
    EmptyName,
    #[error("only a directory may name the layer root")]
    RootNotDirectory,
    #[error("unsupported entry type {0:?}")]
    UnsupportedType(char),
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("bad sparse map: {0}")]
    BadSparseMap(String),
    #[error("creating overlay whiteouts needs root ({0})")]
    WhiteoutNotPermitted(String),
}

impl Error {
    /// Whether the layer stream ended too early (a cut-off download or archive), as opposed
    /// to being malformed or hostile.
    pub fn is_truncated(&self) -> bool {
        matches!(self, Error::Truncated { .. })
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Entry { reason, .. } => match reason {
                EntryError::DeviceNotPermitted | EntryError::WhiteoutNotPermitted(_) => {
                    ErrorKind::Forbidden
                }
                _ => ErrorKind::InvalidArgument,
            },
            Error::Malformed { .. }
            | Error::Truncated { .. }
            | Error::TooLarge { .. }
            | Error::TooManyEntries { .. }
            | Error::Compression(_) => ErrorKind::InvalidArgument,
            Error::EntryIo { source, .. } | Error::Path { source, .. } => io_kind(source),
            Error::Read(e) => match e.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                    ErrorKind::InvalidArgument
                }
                _ => io_kind(e),
            },
            Error::Write(e) => io_kind(e),
        }
    }
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// Entry names go into error messages; a hostile 64 KiB name must not flood a log line.
pub(crate) fn display_name(raw: &[u8]) -> String {
    const MAX: usize = 512;
    let s = String::from_utf8_lossy(raw);
    if s.len() <= MAX {
        s.into_owned()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

pub(crate) fn entry_err(raw: &[u8], reason: EntryError) -> Error {
    Error::Entry {
        entry: display_name(raw),
        reason,
    }
}

pub(crate) fn entry_io(raw: &[u8], op: &'static str, source: impl Into<io::Error>) -> Error {
    Error::EntryIo {
        entry: display_name(raw),
        op,
        source: source.into(),
    }
}
