//! Layer apply and diff: the bridge between image layer tars and directories.
//!
//! - [`apply_layer`] unpacks a (possibly gzip/zstd compressed) layer tar into a directory,
//!   hashing the uncompressed stream on the way (the layer's diff ID). It is safe against
//!   hostile layers: nothing outside the destination is ever created, changed or followed
//!   (see `docs/archive.md` for each trick and the error it gets).
//! - [`write_diff`] turns an overlayfs upper directory into a layer tar (whiteout devices
//!   become `.wh.` entries, opaque directories get `.wh..wh..opq`); [`write_dir_tar`] turns
//!   a plain tree into a tar (export, import). Both are reproducible: sorted entries,
//!   normalized headers, optional `SOURCE_DATE_EPOCH` clamping.
//! - [`changes`] lists what an upper directory changed, as `docker diff` shows it.
//!
//! The crate is synchronous and allocation-light: one fixed buffer per call, never a whole
//! file or layer in memory. Async callers run it in `spawn_blocking`.
//!
//! ```no_run
//! use berth_archive::{apply_layer, ApplyOptions, WhiteoutMode};
//! let layer = std::fs::File::open("layer.tar.gz")?;
//! let opts = ApplyOptions { whiteouts: WhiteoutMode::Overlay, ..ApplyOptions::default() };
//! let stats = apply_layer(layer, std::path::Path::new("/var/lib/berth/snapshots/1/fs"), &opts)?;
//! println!("diff id {} ({} bytes, {} entries)", stats.diff_id, stats.uncompressed_size, stats.entries);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod apply;
mod changes;
mod compression;
mod diff;
mod error;
mod fsops;
mod hashpipe;
mod path;
mod tar_read;
mod tar_write;

use std::io::{Read, Write};
use std::path::Path;

pub use changes::{Change, ChangeKind, changes, changes_with_lowers};
pub use compression::{Compression, decompress, detect_compression};
pub use error::{EntryError, Error, Result};

/// How whiteouts (`.wh.<name>`, `.wh..wh..opq`) in a layer are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// The destination is an overlayfs layer directory: a whiteout becomes a 0:0 character
    /// device, an opaque marker the `trusted.overlay.opaque=y` xattr on its directory.
    #[default]
    Overlay,
    /// The destination already holds the layers below (a flattened rootfs): whited-out paths
    /// are deleted, an opaque directory loses the content this layer did not put there.
    Delete,
}

/// Options for [`apply_layer`]. The defaults suit unpacking image layers as root.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: WhiteoutMode,
    /// Most uncompressed bytes the stream may have (decompression bombs). Default 64 GiB.
    pub max_total_size: u64,
    /// Most entries the layer may have. Default 10 million.
    pub max_entries: u64,
    /// Give entries the uid/gid of the tar header (needs root); otherwise they belong to the
    /// caller. Default: true when running as root.
    pub preserve_ownership: bool,
    /// `syncfs()` the destination's filesystem once at the end (not per file).
    pub sync: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: WhiteoutMode::Overlay,
            max_total_size: 64 << 30,
            max_entries: 10_000_000,
            preserve_ownership: rustix::process::geteuid().is_root(),
            sync: false,
        }
    }
}

/// What [`apply_layer`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the whole uncompressed stream: the layer's diff ID.
    pub diff_id: berth_oci::Digest,
    /// Length of the uncompressed stream.
    pub uncompressed_size: u64,
    /// Tar members applied (extension headers not counted).
    pub entries: u64,
}

/// Applies a layer tar (plain, gzip or zstd: detected from the bytes) to `dest`, which must
/// be an existing directory.
///
/// On error the destination may hold part of the layer (never anything outside it): unpack
/// into a fresh directory and remove it on failure, as the snapshot store does.
pub fn apply_layer(r: impl Read, dest: &Path, opts: &ApplyOptions) -> Result<ApplyStats> {
    apply::apply_layer(r, dest, opts)
}

/// Options for [`write_diff`] and [`write_dir_tar`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Clamp every mtime to at most this (seconds since the epoch), as `SOURCE_DATE_EPOCH`
    /// asks for reproducible builds.
    pub source_date_epoch: Option<i64>,
}

/// What [`write_diff`] / [`write_dir_tar`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// sha256 of the tar written: the new layer's diff ID.
    pub diff_id: berth_oci::Digest,
    /// Bytes written.
    pub size: u64,
    /// Tar members written (extension headers not counted).
    pub entries: u64,
}

/// Writes an overlayfs upper directory as a layer tar: whiteout devices (char 0:0) become
/// `.wh.<name>` entries, directories with `trusted.overlay.opaque=y` are followed by a
/// `.wh..wh..opq` entry. The output is uncompressed; wrap `out` in an encoder to compress.
pub fn write_diff(upper: &Path, out: impl Write, opts: &DiffOptions) -> Result<DiffStats> {
    diff::write_tree(upper, out, opts, diff::TreeKind::OverlayUpper)
}

/// Writes a plain directory tree (e.g. a container's merged rootfs) as a tar, devices and
/// all, without interpreting whiteouts.
pub fn write_dir_tar(root: &Path, out: impl Write, opts: &DiffOptions) -> Result<DiffStats> {
    diff::write_tree(root, out, opts, diff::TreeKind::Plain)
}
