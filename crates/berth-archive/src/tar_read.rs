//! A streaming tar reader for untrusted input.
//!
//! Why not the `tar` crate: it reads GNU long names and PAX headers of any size into memory,
//! fills sparse holes with zeros (a 1 TiB hole becomes 1 TiB of writes), and hides the sparse
//! map. This reader keeps memory bounded (extension headers are capped at 1 MiB, the sparse
//! map at 512 Ki segments, data is handed out as slices of one fixed buffer) and understands
//! every format layer tools write: v7, ustar (with the name prefix), GNU (long names, old
//! sparse `S` entries with extension blocks), PAX (path, linkpath, size, uid, gid, mtime,
//! `SCHILY.xattr.*`, and the GNU sparse formats 0.0, 0.1 and 1.0).
//!
//! The reader only parses; it never touches the filesystem.

use std::io::{self, Read};

use crate::compression::CorruptStream;
use crate::error::{EntryError, Error, Result, entry_err};
use crate::hashpipe::HashPipe;

pub(crate) const BLOCK: usize = 512;
/// Cap for one PAX or GNU long-name extension header (as Go's archive/tar).
const MAX_EXTENSION: u64 = 1 << 20;
/// Cap for the number of segments of one sparse file.
const MAX_SPARSE_SEGMENTS: usize = 1 << 19;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// Seconds and nanoseconds since the epoch (PAX allows sub-second and negative times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Time {
    pub secs: i64,
    pub nanos: u32,
}

/// The data segments of a sparse file: (offset in the file, length), ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sparse {
    pub real_size: u64,
    pub segments: Vec<(u64, u64)>,
}

/// One member of the archive with all extension headers folded in.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Time,
    /// Data bytes that follow in the archive (for sparse files: the stored segments only).
    pub size: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub sparse: Option<Sparse>,
}

/// The uncompressed stream under the tar parser: a few fixed buffers, a byte limit (the
/// decompression-bomb guard) and the diff-ID hash.
///
/// Hashing costs about as much CPU as writing the files, so it runs on a helper thread:
/// once the parser has used up a buffer, the buffer goes to the hasher, which hands it
/// back for reuse. The reader itself stays on the caller's thread (it need not be `Send`).
/// See [`HashPipe`] for the buffer budget.
pub(crate) struct Source<R> {
    inner: R,
    cur: Vec<u8>,
    start: usize,
    end: usize,
    capacity: usize,
    /// Stream offset of `cur[start]`.
    offset: u64,
    /// Bytes read from `inner` so far.
    read_total: u64,
    limit: u64,
    hash: HashPipe,
}

impl<R: Read> Source<R> {
    /// `limit`: most bytes `inner` may yield; `hash_thread`: hash on a helper thread.
    pub fn new(inner: R, capacity: usize, limit: u64, hash_thread: bool) -> Self {
        Source {
            inner,
            cur: vec![0; capacity],
            start: 0,
            end: 0,
            capacity,
            offset: 0,
            read_total: 0,
            limit,
            hash: if hash_thread {
                HashPipe::start()
            } else {
                HashPipe::Inline(berth_oci::digest::Hasher::new())
            },
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns buffered bytes, reading more if none are buffered; empty at end of stream.
    pub fn fill(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            if self.end > 0 {
                let used = std::mem::take(&mut self.cur);
                self.cur = self.hash.swap(used, self.end, self.capacity);
            }
            self.start = 0;
            self.end = 0;
            let n = loop {
                match self.inner.read(&mut self.cur) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            self.end = n;
            self.read_total += n as u64;
            if self.read_total > self.limit {
                return Err(io::Error::other(LimitReached(self.limit)));
            }
        }
        Ok(&self.cur[self.start..self.end])
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Fills `out` completely; `Ok(false)` at a clean end of stream before the first byte.
    fn read_full(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut done = 0;
        while done < out.len() {
            let avail = self.fill()?;
            if avail.is_empty() {
                if done == 0 {
                    return Ok(false);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = avail.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&avail[..n]);
            self.consume(n);
            done += n;
        }
        Ok(true)
    }

    /// Skips `n` bytes; returns how many could be skipped before the end of the stream.
    fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let want = n;
        while n > 0 {
            let avail = self.fill()?.len();
            if avail == 0 {
                break;
            }
            let k = (avail as u64).min(n) as usize;
            self.consume(k);
            n -= k as u64;
        }
        Ok(want - n)
    }

    /// The hash and length of everything read from the stream.
    pub fn finish(self) -> (berth_oci::Digest, u64) {
        let hasher = self.hash.finish(self.cur, self.end);
        let n = hasher.len();
        (hasher.finish(), n)
    }
}

/// Turns a read failure into the crate error, keeping bombs, corrupt compression and
/// truncation apart.
pub(crate) fn read_error(e: io::Error, offset: u64, context: impl FnOnce() -> String) -> Error {
    if let Some(inner) = e.get_ref() {
        if let Some(limit) = inner.downcast_ref::<LimitReached>() {
            return Error::TooLarge { limit: limit.0 };
        }
        if inner.is::<CorruptStream>() {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Error::Truncated {
                    offset,
                    context: inner.to_string(),
                };
            }
            return Error::Compression(inner.to_string());
        }
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Error::Truncated {
            offset,
            context: context(),
        };
    }
    Error::Read(e)
}

/// The error a [`Source`] returns once the stream outgrew its limit.
#[derive(Debug)]
pub(crate) struct LimitReached(pub u64);
impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "size limit of {} bytes exceeded", self.0)
    }
}
impl std::error::Error for LimitReached {}

pub(crate) struct TarReader<R> {
    src: Source<R>,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    /// Name of the current entry, for error messages about its data.
    current: Vec<u8>,
    ended: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(src: Source<R>) -> Self {
        TarReader {
            src,
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            ended: false,
        }
    }

    fn io_err(&self, e: io::Error, context: impl FnOnce() -> String) -> Error {
        read_error(e, self.src.offset(), context)
    }

    /// Bytes of the stream consumed so far (for the per-entry size check).
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// Data bytes of the current entry still to be read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk of the current entry's data (at most `remaining` bytes); an error if
    /// the stream ends first.
    pub fn data(&mut self) -> Result<&[u8]> {
        let remaining = self.remaining;
        let offset = self.src.offset();
        let res = self.src.fill();
        match res {
            Ok(avail) if !avail.is_empty() => {
                let n = (avail.len() as u64).min(remaining) as usize;
                // Re-borrow: the slice above ends the borrow of `res` here.
                Ok(&self.src.cur[self.src.start..self.src.start + n])
            }
            Ok(_) => Err(Error::Truncated {
                offset,
                context: format!(
                    "inside the data of entry {:?}",
                    crate::error::display_name(&self.current)
                ),
            }),
            Err(e) => {
                let name = self.current.clone();
                Err(self.io_err(e, || {
                    format!(
                        "inside the data of entry {:?}",
                        crate::error::display_name(&name)
                    )
                }))
            }
        }
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n as u64 <= self.remaining);
        self.src.consume(n);
        self.remaining -= n as u64;
    }

    fn skip_data(&mut self) -> Result<()> {
        let want = self.remaining + self.padding;
        if want == 0 {
            return Ok(());
        }
        let skipped = match self.src.skip(want) {
            Ok(n) => n,
            Err(e) => {
                let name = self.current.clone();
                return Err(self.io_err(e, || {
                    format!(
                        "inside the data of entry {:?}",
                        crate::error::display_name(&name)
                    )
                }));
            }
        };
        if skipped < want {
            return Err(Error::Truncated {
                offset: self.src.offset(),
                context: format!(
                    "inside the data of entry {:?}",
                    crate::error::display_name(&self.current)
                ),
            });
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool> {
        match self.src.read_full(block) {
            Ok(b) => Ok(b),
            Err(e) => Err(self.io_err(e, || "inside a tar header".into())),
        }
    }

    /// Reads `size` bytes of an extension header's data (plus padding).
    fn read_extension(&mut self, size: u64, what: &str, at: u64) -> Result<Vec<u8>> {
        if size > MAX_EXTENSION {
            return Err(Error::Malformed {
                offset: at,
                reason: format!("{what} of {size} bytes exceeds the 1 MiB limit"),
            });
        }
        let mut v = vec![0u8; size as usize];
        match self.src.read_full(&mut v) {
            Ok(true) => {}
            Ok(false) if size == 0 => {}
            Ok(false) => {
                return Err(Error::Truncated {
                    offset: self.src.offset(),
                    context: format!("inside a {what}"),
                });
            }
            Err(e) => return Err(self.io_err(e, || format!("inside a {what}"))),
        }
        self.remaining = 0;
        self.padding = pad(size);
        self.skip_data()?;
        Ok(v)
    }

    /// The next entry, with extension headers applied; `None` at the end of the archive.
    /// Unread data of the previous entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.ended {
            return Ok(None);
        }
        self.skip_data()?;
        let mut pax: Option<Pax> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK];
        loop {
            let at = self.src.offset();
            if !self.read_block(&mut block)? {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(Error::Truncated {
                        offset: at,
                        context: "after an extension header, before its entry".into(),
                    });
                }
                self.ended = true;
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(Error::Malformed {
                        offset: at,
                        reason: "end-of-archive marker right after an extension header".into(),
                    });
                }
                self.ended = true;
                return Ok(None);
            }
            verify_checksum(&block).map_err(|reason| Error::Malformed { offset: at, reason })?;
            let typeflag = block[156];
            let size = parse_size(&block[124..136]).ok_or_else(|| Error::Malformed {
                offset: at,
                reason: "bad size field".into(),
            })?;
            match typeflag {
                b'x' | b'g' | b'L' | b'K' => {
                    let what = match typeflag {
                        b'x' => "PAX header",
                        b'g' => "PAX global header",
                        b'L' => "GNU long name",
                        _ => "GNU long link name",
                    };
                    let data = self.read_extension(size, what, at)?;
                    match typeflag {
                        b'x' => {
                            if pax.is_some() {
                                return Err(Error::Malformed {
                                    offset: at,
                                    reason: "two PAX headers for one entry".into(),
                                });
                            }
                            pax = Some(
                                Pax::parse(&data)
                                    .map_err(|reason| Error::Malformed { offset: at, reason })?,
                            );
                        }
                        // Global headers are ignored, as Docker does.
                        b'g' => {}
                        b'L' => long_name = Some(cstr(&data).to_vec()),
                        _ => long_link = Some(cstr(&data).to_vec()),
                    }
                    continue;
                }
                _ => {}
            }
            let entry = self.finish_entry(&block, at, size, pax, long_name, long_link)?;
            return Ok(Some(entry));
        }
    }

    fn finish_entry(
        &mut self,
        h: &[u8; BLOCK],
        at: u64,
        mut size: u64,
        pax: Option<Pax>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry> {
        let magic = &h[257..263];
        let is_gnu = magic == b"ustar " && &h[263..265] == b" \0";
        let is_ustar = magic == b"ustar\0";
        let mut name = if let Some(n) = long_name {
            n
        } else if is_ustar && h[345] != 0 {
            let mut n = cstr(&h[345..500]).to_vec();
            n.push(b'/');
            n.extend_from_slice(cstr(&h[0..100]));
            n
        } else {
            cstr(&h[0..100]).to_vec()
        };
        let mut link = long_link.unwrap_or_else(|| cstr(&h[157..257]).to_vec());
        let bad = |field: &str| Error::Malformed {
            offset: at,
            reason: format!("bad {field} field in the header of {:?}", display(&name)),
        };
        let mode = parse_size(&h[100..108]).ok_or_else(|| bad("mode"))? as u32 & 0o7777;
        let mut uid = parse_size(&h[108..116]).ok_or_else(|| bad("uid"))?;
        let mut gid = parse_size(&h[116..124]).ok_or_else(|| bad("gid"))?;
        let mut mtime = Time {
            secs: parse_signed(&h[136..148]).ok_or_else(|| bad("mtime"))?,
            nanos: 0,
        };
        let typeflag = h[156];
        let (mut dev_major, mut dev_minor) = (0, 0);
        if matches!(typeflag, b'3' | b'4') {
            dev_major = u32::try_from(parse_size(&h[329..337]).ok_or_else(|| bad("devmajor"))?)
                .map_err(|_| bad("devmajor"))?;
            dev_minor = u32::try_from(parse_size(&h[337..345]).ok_or_else(|| bad("devminor"))?)
                .map_err(|_| bad("devminor"))?;
        }
        let mut xattrs = Vec::new();
        let mut sparse = None;
        let mut pax_sparse = None;
        if let Some(pax) = pax {
            let bad_pax = |key: &str| Error::Malformed {
                offset: at,
                reason: format!("bad PAX {key} value"),
            };
            for (k, v) in pax.records {
                match k.as_slice() {
                    b"path" => name = v,
                    b"linkpath" => link = v,
                    b"size" => size = parse_decimal(&v).ok_or_else(|| bad_pax("size"))?,
                    b"uid" => uid = parse_decimal(&v).ok_or_else(|| bad_pax("uid"))?,
                    b"gid" => gid = parse_decimal(&v).ok_or_else(|| bad_pax("gid"))?,
                    b"mtime" => mtime = parse_pax_time(&v).ok_or_else(|| bad_pax("mtime"))?,
                    _ if k.starts_with(b"SCHILY.xattr.") => {
                        xattrs.push((k[b"SCHILY.xattr.".len()..].to_vec(), v));
                    }
                    _ if k.starts_with(b"GNU.sparse.") => {
                        pax_sparse
                            .get_or_insert_with(PaxSparse::default)
                            .record(&k, v)
                            .map_err(|reason| Error::Malformed { offset: at, reason })?;
                    }
                    _ => {}
                }
            }
        }
        if let Some(ps) = &pax_sparse
            && let Some(n) = &ps.name
        {
            name = n.clone();
        }
        if name.is_empty() {
            return Err(entry_err(&name, EntryError::EmptyName));
        }
        let kind = match typeflag {
            b'0' | b'7' | b'S' => Kind::File,
            0 if name.ends_with(b"/") => Kind::Dir,
            0 => Kind::File,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(entry_err(
                    &name,
                    EntryError::UnsupportedType(char::from(other)),
                ));
            }
        };

        self.current = name.clone();
        self.remaining = size;
        self.padding = pad(size);

        if typeflag == b'S' {
            if !is_gnu {
                return Err(entry_err(
                    &name,
                    EntryError::BadHeader("sparse entry without a GNU header".into()),
                ));
            }
            sparse = Some(self.read_gnu_sparse(h, &name)?);
            // The extension blocks sit between the header and the data: the data and its
            // padding start after them.
        } else if let Some(ps) = pax_sparse
            && ps.is_sparse()
        {
            sparse = Some(self.read_pax_sparse(ps, &name, size)?);
        }
        if let Some(s) = &sparse {
            let stored: u64 = s.segments.iter().map(|&(_, l)| l).sum();
            if stored != self.remaining {
                return Err(entry_err(
                    &name,
                    EntryError::BadSparseMap(format!(
                        "segments hold {stored} bytes but the entry stores {}",
                        self.remaining
                    )),
                ));
            }
        }
        if matches!(kind, Kind::File) && sparse.is_none() {
            // nothing else to check: `size` bytes of data follow
        }
        Ok(Entry {
            name,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: self.remaining,
            dev_major,
            dev_minor,
            xattrs,
            sparse,
        })
    }

    fn read_gnu_sparse(&mut self, h: &[u8; BLOCK], name: &[u8]) -> Result<Sparse> {
        let bad = |m: String| entry_err(name, EntryError::BadSparseMap(m));
        let real_size =
            parse_size(&h[483..495]).ok_or_else(|| bad("bad real size field".into()))?;
        let mut segments = Vec::new();
        push_gnu_segments(&h[386..482], &mut segments).map_err(bad)?;
        let mut extended = h[482] != 0;
        let mut block = [0u8; BLOCK];
        while extended {
            // Extension blocks are not part of the entry's data size.
            match self.src.read_full(&mut block) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::Truncated {
                        offset: self.src.offset(),
                        context: format!("inside the sparse map of {:?}", display(name)),
                    });
                }
                Err(e) => {
                    return Err(self.io_err(e, || {
                        format!("inside the sparse map of {:?}", display(name))
                    }));
                }
            }
            push_gnu_segments(&block[..504], &mut segments).map_err(bad)?;
            if segments.len() > MAX_SPARSE_SEGMENTS {
                return Err(bad(format!("more than {MAX_SPARSE_SEGMENTS} segments")));
            }
            extended = block[504] != 0;
        }
        let s = Sparse {
            real_size,
            segments,
        };
        validate_sparse(&s).map_err(bad)?;
        Ok(s)
    }

    fn read_pax_sparse(&mut self, ps: PaxSparse, name: &[u8], size: u64) -> Result<Sparse> {
        let bad = |m: String| entry_err(name, EntryError::BadSparseMap(m));
        let real_size = ps
            .real_size
            .ok_or_else(|| bad("no GNU.sparse.realsize or GNU.sparse.size".into()))?;
        let segments = if ps.major == Some(1) {
            // Format 1.0: the map is at the start of the data, decimal numbers one per line,
            // padded to a block.
            let mut consumed = 0u64;
            let mut next_number = |this: &mut Self| -> Result<u64> {
                let mut digits = Vec::new();
                loop {
                    if consumed >= size {
                        return Err(bad("map runs past the entry's data".into()));
                    }
                    let chunk = this.data()?;
                    let b = chunk[0];
                    this.consume(1);
                    consumed += 1;
                    if b == b'\n' {
                        break;
                    }
                    if !b.is_ascii_digit() || digits.len() >= 20 {
                        return Err(bad("map is not decimal numbers".into()));
                    }
                    digits.push(b);
                }
                parse_decimal(&digits).ok_or_else(|| bad("map number out of range".into()))
            };
            let count = next_number(self)?;
            if count > MAX_SPARSE_SEGMENTS as u64 {
                return Err(bad(format!("more than {MAX_SPARSE_SEGMENTS} segments")));
            }
            let mut segs = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let off = next_number(self)?;
                let len = next_number(self)?;
                segs.push((off, len));
            }
            let map_len = consumed + pad(consumed);
            if map_len > size {
                return Err(bad("map runs past the entry's data".into()));
            }
            let skip = (map_len - consumed) as usize;
            let mut left = skip;
            while left > 0 {
                let n = self.data()?.len().min(left);
                self.consume(n);
                left -= n;
            }
            segs
        } else if let Some(map) = ps.map {
            // Format 0.1: "offset,length,offset,length,...".
            let nums: Vec<&[u8]> = if map.is_empty() {
                Vec::new()
            } else {
                map.split(|&b| b == b',').collect()
            };
            if !nums.len().is_multiple_of(2) || nums.len() / 2 > MAX_SPARSE_SEGMENTS {
                return Err(bad(
                    "GNU.sparse.map has an odd or huge number of values".into()
                ));
            }
            nums.chunks(2)
                .map(|c| match (parse_decimal(c[0]), parse_decimal(c[1])) {
                    (Some(o), Some(l)) => Ok((o, l)),
                    _ => Err(bad("GNU.sparse.map is not decimal numbers".into())),
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            // Format 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes records.
            if ps.pending_offset.is_some() {
                return Err(bad("GNU.sparse.offset without GNU.sparse.numbytes".into()));
            }
            ps.pairs
        };
        let s = Sparse {
            real_size,
            segments,
        };
        validate_sparse(&s).map_err(bad)?;
        Ok(s)
    }

    /// Reads the rest of the stream (trailing zero blocks and whatever follows the end
    /// marker) so that the hash covers the whole layer; returns its digest and length.
    pub fn drain(mut self) -> Result<(berth_oci::Digest, u64)> {
        self.ended = true;
        loop {
            match self.src.fill() {
                Ok([]) => break,
                Ok(b) => {
                    let n = b.len();
                    self.src.consume(n);
                }
                Err(e) => return Err(self.io_err(e, || "after the end of the archive".into())),
            }
        }
        Ok(self.src.finish())
    }
}

fn display(name: &[u8]) -> String {
    crate::error::display_name(name)
}

fn pad(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

fn verify_checksum(h: &[u8; BLOCK]) -> std::result::Result<(), String> {
    let stored = parse_size(&h[148..156]).ok_or("bad checksum field")?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err("header checksum mismatch".into())
    }
}

/// Octal (space/NUL padded) or GNU base-256 (high bit set); negative values are refused.
pub(crate) fn parse_size(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] == 0xff {
            return None; // negative
        }
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = trim(field);
    let mut v: u64 = 0;
    for &b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Like [`parse_size`] but allows negative base-256 values (mtimes before 1970).
fn parse_signed(field: &[u8]) -> Option<i64> {
    if field.first() == Some(&0xff) {
        let mut v: i64 = -1;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(i64::from(b))?;
            // two's complement with the leading 0xff byte as sign extension
        }
        // v accumulated as (-1 * 256^n + value): the two's complement reading.
        return Some(v);
    }
    parse_size(field).and_then(|v| i64::try_from(v).ok())
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != 0)
        .unwrap_or(b.len());
    let b = &b[start..];
    let end = b
        .iter()
        .position(|&c| c == b' ' || c == 0)
        .unwrap_or(b.len());
    &b[..end]
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn parse_pax_time(v: &[u8]) -> Option<Time> {
    let (neg, v) = match v.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    let secs = i64::try_from(parse_decimal(int)?).ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let d = match frac.get(i) {
            Some(b) if b.is_ascii_digit() => u32::from(b - b'0'),
            Some(_) => return None,
            None => 0,
        };
        nanos = nanos * 10 + d;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(if neg {
        if nanos > 0 {
            Time {
                secs: -secs - 1,
                nanos: 1_000_000_000 - nanos,
            }
        } else {
            Time { secs: -secs, nanos }
        }
    } else {
        Time { secs, nanos }
    })
}

fn push_gnu_segments(area: &[u8], out: &mut Vec<(u64, u64)>) -> std::result::Result<(), String> {
    for rec in area.chunks_exact(24) {
        if rec.iter().all(|&b| b == 0) {
            continue;
        }
        let off = parse_size(&rec[..12]).ok_or("bad segment offset")?;
        let len = parse_size(&rec[12..]).ok_or("bad segment length")?;
        out.push((off, len));
    }
    Ok(())
}

fn validate_sparse(s: &Sparse) -> std::result::Result<(), String> {
    if s.real_size > i64::MAX as u64 {
        return Err(format!("real size {} is too large", s.real_size));
    }
    let mut end = 0u64;
    for &(off, len) in &s.segments {
        if off < end {
            return Err("segments overlap or are out of order".into());
        }
        end = off
            .checked_add(len)
            .ok_or_else(|| "segment end overflows".to_string())?;
        if end > s.real_size {
            return Err(format!(
                "segment ends at {end}, past the real size {}",
                s.real_size
            ));
        }
    }
    Ok(())
}

/// PAX records in order (GNU sparse 0.0 repeats keys, so a map would lose information).
#[derive(Debug)]
struct Pax {
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Pax {
    fn parse(mut data: &[u8]) -> std::result::Result<Pax, String> {
        let mut records = Vec::new();
        while !data.is_empty() {
            // Some writers pad the record area with NULs.
            if data.iter().all(|&b| b == 0) {
                break;
            }
            let sp = data
                .iter()
                .position(|&b| b == b' ')
                .ok_or("PAX record without a length")?;
            let len = parse_decimal(&data[..sp]).ok_or("PAX record length is not a number")?;
            let len = usize::try_from(len).map_err(|_| "PAX record length overflows")?;
            if len <= sp + 1 || len > data.len() {
                return Err("PAX record length is out of range".into());
            }
            let rec = &data[sp + 1..len];
            let rec = rec
                .strip_suffix(b"\n")
                .ok_or("PAX record does not end with a newline")?;
            let eq = rec
                .iter()
                .position(|&b| b == b'=')
                .ok_or("PAX record without '='")?;
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            if k.is_empty() {
                return Err("PAX record with an empty key".into());
            }
            records.push((k.to_vec(), v.to_vec()));
            data = &data[len..];
        }
        Ok(Pax { records })
    }
}

#[derive(Default)]
struct PaxSparse {
    major: Option<u64>,
    name: Option<Vec<u8>>,
    real_size: Option<u64>,
    map: Option<Vec<u8>>,
    pairs: Vec<(u64, u64)>,
    pending_offset: Option<u64>,
    any_segment_key: bool,
}

impl PaxSparse {
    fn record(&mut self, key: &[u8], v: Vec<u8>) -> std::result::Result<(), String> {
        let num = |v: &[u8]| parse_decimal(v).ok_or_else(|| format!("bad {} value", display(key)));
        match key {
            b"GNU.sparse.major" => self.major = Some(num(&v)?),
            b"GNU.sparse.minor" | b"GNU.sparse.numblocks" => {
                num(&v)?;
            }
            b"GNU.sparse.name" => self.name = Some(v),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => self.real_size = Some(num(&v)?),
            b"GNU.sparse.map" => {
                self.any_segment_key = true;
                self.map = Some(v);
            }
            b"GNU.sparse.offset" => {
                self.any_segment_key = true;
                if self.pending_offset.is_some() {
                    return Err("two GNU.sparse.offset records in a row".into());
                }
                self.pending_offset = Some(num(&v)?);
            }
            b"GNU.sparse.numbytes" => {
                let off = self
                    .pending_offset
                    .take()
                    .ok_or("GNU.sparse.numbytes without GNU.sparse.offset")?;
                if self.pairs.len() >= MAX_SPARSE_SEGMENTS {
                    return Err(format!("more than {MAX_SPARSE_SEGMENTS} segments"));
                }
                self.pairs.push((off, num(&v)?));
            }
            _ => {}
        }
        Ok(())
    }

    fn is_sparse(&self) -> bool {
        self.major == Some(1) || self.any_segment_key || self.real_size.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_octal_and_base256() {
        assert_eq!(parse_size(b"0000644\0"), Some(0o644));
        assert_eq!(parse_size(b"  644 \0"), Some(0o644));
        assert_eq!(parse_size(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_size(b"0009\0"), None);
        assert_eq!(
            parse_size(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        assert_eq!(parse_size(&[0xff; 12]), None);
        assert_eq!(parse_signed(&[0xff; 12]), Some(-1));
        let mut neg2 = [0xffu8; 12];
        neg2[11] = 0xfe;
        assert_eq!(parse_signed(&neg2), Some(-2));
        assert_eq!(
            parse_size(&[
                0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
    }

    #[test]
    fn pax_times_keep_fractions_and_sign() {
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some(Time {
                secs: 1_700_000_000,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            parse_pax_time(b"-1.25"),
            Some(Time {
                secs: -2,
                nanos: 750_000_000
            })
        );
        assert_eq!(parse_pax_time(b"12x"), None);
        assert_eq!(parse_pax_time(b"1.2x"), None);
    }

    #[test]
    fn pax_records_parse_and_reject_garbage() {
        let p = Pax::parse(b"12 path=abc\n16 SCHILY.xattr.a=\n").unwrap_err();
        assert!(p.starts_with("PAX record"), "{p}");
        let p = Pax::parse(b"12 path=abc\n20 SCHILY.xattr.a=b\n").unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.records[1], (b"SCHILY.xattr.a".to_vec(), b"b".to_vec()));
        assert!(Pax::parse(b"99999999999999999999999 a=b\n").is_err());
        assert!(Pax::parse(b"5 a=b\n").is_err());
        assert!(Pax::parse(b"3 =\n").is_err());
    }
}
