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

/// Hands the bytes written to it to a thread that hashes them and writes them into an
/// ingest, so that storing a blob and unpacking it use both cores. At most `DEPTH` chunks
/// are in flight (bounded memory).
pub(crate) struct BackgroundIngest {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    handle: Option<std::thread::JoinHandle<io::Result<berth_store::Ingest>>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
}

const DEPTH: usize = 8;

impl BackgroundIngest {
    pub(crate) fn new(mut ingest: berth_store::Ingest) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let (spare_tx, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(DEPTH + 2);
        let handle = std::thread::Builder::new()
            .name("berth-ingest".into())
            .spawn(move || {
                for buf in rx {
                    ingest.write_all(&buf)?;
                    let _ = spare_tx.try_send(buf);
                }
                Ok(ingest)
            })
            .expect("spawning the ingest thread");
        BackgroundIngest {
            tx: Some(tx),
            handle: Some(handle),
            spare,
        }
    }

    /// Waits for every byte to be written and returns the ingest.
    pub(crate) fn finish(mut self) -> io::Result<berth_store::Ingest> {
        self.tx.take();
        self.handle
            .take()
            .expect("finished twice")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Write for BackgroundIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut chunk = self.spare.try_recv().unwrap_or_default();
        chunk.clear();
        chunk.extend_from_slice(buf);
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("ingest finished"))?;
        if tx.send(chunk).is_err() {
            // The writer thread stopped (a write error): report it now.
            self.tx.take();
            let e = match self.handle.take().map(|h| h.join()) {
                Some(Ok(Err(e))) => e,
                _ => io::Error::other("the ingest thread stopped"),
            };
            return Err(e);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BackgroundIngest {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts writeback of everything written so far in the background (`syncfs` on a helper
/// thread), so the final [`Store::sync`] before publishing finds little left to flush while
/// the load keeps unpacking.
pub(crate) struct Flusher {
    tx: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    pub(crate) fn new(root: &std::path::Path) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let root = root.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("berth-flush".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    if let Ok(f) = std::fs::File::open(&root) {
                        let _ = rustix::fs::syncfs(&f);
                    }
                }
            })
            .ok();
        Flusher {
            tx: Some(tx),
            handle,
        }
    }
    pub(crate) fn kick(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
