//! Unpacking layer blobs into snapshot directories.

use std::io::{self, Read, Write};

use berth_archive::{ApplyOptions, ApplyStats, WhiteoutMode};
use berth_oci::Digest;
use berth_store::{PendingLayer, Store};

use crate::error::{ImageError, Result};

/// Apply options for image layers: overlay whiteouts, no per-layer sync (the operation
/// syncs the store once before publishing).
pub(crate) fn layer_apply_options(base: &ApplyOptions) -> ApplyOptions {
    ApplyOptions {
        whiteouts: WhiteoutMode::Overlay,
        sync: false,
        ..base.clone()
    }
}

/// Unpacks a stored blob into a new layer directory.
pub(crate) fn unpack_blob(
    store: &Store,
    blob: &Digest,
    opts: &ApplyOptions,
) -> Result<(PendingLayer, ApplyStats)> {
    let f = store.content().open_blob(blob)?;
    let dir = store.begin_layer()?;
    let r = io::BufReader::with_capacity(berth_store::content::COPY_BUFFER, f);
    let stats = berth_archive::apply_layer(r, &dir.path(), &layer_apply_options(opts)).map_err(
        |source| ImageError::Layer {
            what: blob.to_string(),
            source,
        },
    )?;
    Ok((dir, stats))
}

/// A reader that copies everything it reads into a writer (an ingest): one pass over an
/// archive entry both stores the blob and feeds the unpacker.
pub(crate) struct Tee<'a, R, W> {
    head: io::Cursor<Vec<u8>>,
    rest: &'a mut R,
    sink: &'a mut W,
}

impl<'a, R: Read, W: Write> Tee<'a, R, W> {
    pub(crate) fn new(head: Vec<u8>, rest: &'a mut R, sink: &'a mut W) -> Self {
        Tee {
            head: io::Cursor::new(head),
            rest,
            sink,
        }
    }
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if (self.head.position() as usize) < self.head.get_ref().len() {
            self.head.read(buf)?
        } else {
            self.rest.read(buf)?
        };
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}
