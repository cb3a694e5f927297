//! The content store: immutable blobs addressed by digest.
//!
//! ```text
//! blobs/sha256/<hex>     committed content; its name is its verified sha256
//! ingest/<random>        in-flight writes (hashed while streaming); removed at open
//! ```
//!
//! A blob becomes visible only by `rename(ingest/…, blobs/sha256/<hex>)` after its digest (and
//! size, when the caller knows them) matched. Durability is batched: callers write many blobs
//! and then call [`crate::Store::sync`] once (one `syncfs`) before committing the metadata
//! that references them. After a crash, blobs that no committed metadata references are
//! removed when the store opens, so a blob that was renamed but not yet synced can never be
//! trusted later.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_oci::Digest;
use berth_oci::digest::Hasher;

use crate::error::{IoContext, Result, StoreError};

/// Buffer used when streaming content in and out (large enough to amortize syscalls).
pub const COPY_BUFFER: usize = 1 << 20;

/// Blobs under `<root>/blobs/sha256` and ingests under `<root>/ingest`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
        }
        Ok(ContentStore { blobs, ingest })
    }

    /// Removes every in-flight ingest (only valid when no writer can be running).
    pub(crate) fn clean_ingest(&self) -> Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(&self.ingest).ctx(|| format!("listing {}", self.ingest.display()))? {
            let e = e.ctx(|| "listing ingest")?;
            let p = e.path();
            let r = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.ctx(|| format!("removing orphan ingest {}", p.display()))?;
            n += 1;
        }
        Ok(n)
    }

    /// Where a blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The size of a committed blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(StoreError::io(format!("stat blob {digest}"), e)),
        }
    }

    /// Opens a committed blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        match File::open(self.path(digest)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(StoreError::io(format!("opening blob {digest}"), e)),
        }
    }

    /// Reads a small blob (manifests, configs) whole, refusing more than `limit` bytes.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let f = self.open_blob(digest)?;
        let len = f.metadata().ctx(|| format!("stat blob {digest}"))?.len();
        if len > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                limit,
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .ctx(|| format!("reading blob {digest}"))?;
        Ok(buf)
    }

    /// Starts a new ingest. Write into it, then [`Ingest::commit`]; dropping it uncommitted
    /// removes the temp file.
    pub fn writer(&self) -> Result<Ingest> {
        let path = self
            .ingest
            .join(format!("{}-{}", std::process::id(), crate::random_id(8)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .ctx(|| format!("creating ingest {}", path.display()))?;
        Ok(Ingest {
            file: Some(file),
            path,
            blobs: self.blobs.clone(),
            hasher: Hasher::new(),
            hashing: true,
            written: 0,
        })
    }

    /// Like [`ContentStore::writer`], but without hashing: for content whose digest the
    /// caller computes anyway over exactly the same bytes (an uncompressed layer, hashed by
    /// the unpacker as its diff ID). Publish it with [`Ingest::commit_known`].
    pub fn writer_unhashed(&self) -> Result<Ingest> {
        let mut w = self.writer()?;
        w.hashing = false;
        Ok(w)
    }

    /// Streams `r` into the store, verifying against `expected` (digest, optional size).
    pub fn write_blob(
        &self,
        mut r: impl Read,
        expected: Option<(&Digest, Option<u64>)>,
    ) -> Result<(Digest, u64)> {
        if let Some((d, Some(size))) = expected
            && self.size(d).ok() == Some(size)
        {
            // Already present (content-addressed): consume nothing more and reuse it.
            return Ok((d.clone(), size));
        }
        let mut w = self.writer()?;
        copy_buffered(&mut r, &mut w).ctx(|| "writing blob into the content store")?;
        w.commit(expected.map(|(d, _)| d), expected.and_then(|(_, s)| s))
    }

    /// Stores a small in-memory blob.
    pub fn write_bytes(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if self.exists(&d) {
            return Ok(d);
        }
        let mut w = self.writer()?;
        w.write_all(data).ctx(|| "writing blob")?;
        Ok(w.commit(Some(&d), Some(data.len() as u64))?.0)
    }

    /// Every committed blob (unordered). Names that are not digests are ignored.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).ctx(|| format!("listing {}", self.blobs.display()))? {
            let e = e.ctx(|| "listing blobs")?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes a blob. Missing blobs are not an error.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("removing blob {digest}"), e)),
        }
    }

    /// Re-hashes a blob and checks it against its name.
    pub fn verify(&self, digest: &Digest) -> Result<u64> {
        let mut f = self.open_blob(digest)?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = f.read(&mut buf).ctx(|| format!("reading blob {digest}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let size = h.len();
        let actual = h.finish();
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size,
            });
        }
        Ok(size)
    }
}

/// An in-flight blob: a temp file in `ingest/` plus the running hash of what was written.
pub struct Ingest {
    file: Option<File>,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Hasher,
    hashing: bool,
    written: u64,
}

impl Ingest {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }
    /// Whether this ingest hashes what is written (see [`ContentStore::writer_unhashed`]).
    pub fn is_hashing(&self) -> bool {
        self.hashing
    }
    /// The digest of everything written so far (hashing ingests only).
    pub fn digest(&self) -> Digest {
        assert!(self.hashing, "digest() of an unhashed ingest");
        self.hasher.clone().finish()
    }

    /// Publishes an unhashed ingest under `digest`, which the caller computed over exactly
    /// the bytes written (`size` of them, checked).
    pub fn commit_known(mut self, digest: &Digest, size: u64) -> Result<(Digest, u64)> {
        drop(self.file.take());
        if self.written != size {
            return Err(StoreError::SizeMismatch {
                digest: digest.clone(),
                expected: size,
                actual: self.written,
            });
        }
        let dest = self.blobs.join(digest.hex());
        fs::rename(&self.path, &dest).ctx(|| format!("committing blob {digest}"))?;
        self.path = PathBuf::new();
        Ok((digest.clone(), size))
    }

    /// Turns an unhashed ingest into a hashing one by reading back what was written.
    pub fn rehash(&mut self) -> Result<()> {
        if self.hashing {
            return Ok(());
        }
        let mut f =
            File::open(&self.path).ctx(|| format!("reading back {}", self.path.display()))?;
        let mut h = Hasher::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = f
                .read(&mut buf)
                .ctx(|| format!("reading back {}", self.path.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        self.hasher = h;
        self.hashing = true;
        Ok(())
    }

    /// Verifies and publishes the blob. `expected` digest and size are checked when given;
    /// on mismatch the ingest is removed and nothing becomes visible. Not fsynced: see the
    /// module docs (callers batch durability with [`crate::Store::sync`]).
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<(Digest, u64)> {
        let file = self.file.take().expect("ingest committed twice");
        drop(file);
        self.rehash()?;
        let len = self.hasher.len();
        let actual = std::mem::take(&mut self.hasher).finish();
        if let Some(exp) = expected
            && exp != &actual
        {
            return Err(StoreError::DigestMismatch {
                expected: exp.clone(),
                actual,
                size: len,
            });
        }
        if let Some(exp) = size
            && exp != len
        {
            return Err(StoreError::SizeMismatch {
                digest: actual,
                expected: exp,
                actual: len,
            });
        }
        let dest = self.blobs.join(actual.hex());
        fs::rename(&self.path, &dest).ctx(|| format!("committing blob {actual}"))?;
        self.path = PathBuf::new();
        Ok((actual, len))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("ingest already committed"))?
            .write(buf)?;
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `io::copy` with a large buffer (std's 8 KiB buffer costs syscalls on big layers).
pub fn copy_buffered(r: &mut impl Read, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}
