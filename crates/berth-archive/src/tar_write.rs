//! A tar writer for reproducible layers.
//!
//! Headers are ustar with empty user/group names; a PAX header precedes an entry only when
//! ustar cannot hold it (a name over 256 bytes or not splittable at a slash, a link target
//! over 100 bytes, ids over 2097151, sizes of 8 GiB and more, negative or huge mtimes,
//! extended attributes). The PAX header's own fields are constant, so equal trees give equal
//! bytes.

use std::io::{self, Read, Write};

use berth_oci::Digest;

use crate::hashpipe::HashPipe;
use crate::tar_read::{BLOCK, Kind};

/// Output is collected in chunks of this size: written out whole, then hashed on the
/// helper thread while the next one fills (file data is read straight into the chunk).
const CHUNK: usize = 64 << 10;

const OCTAL7_MAX: u64 = 0o7777777;
const OCTAL11_MAX: u64 = 0o77777777777;

/// One entry to write. `path` has no trailing slash; directories get one added.
pub(crate) struct Header<'a> {
    pub path: &'a [u8],
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: &'a [u8],
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

pub(crate) struct TarWriter<W: Write> {
    out: W,
    cur: Vec<u8>,
    len: usize,
    pipe: HashPipe,
    total: u64,
    entries: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            out,
            cur: vec![0; CHUNK],
            len: 0,
            pipe: HashPipe::start(),
            total: 0,
            entries: 0,
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        self.out.write_all(&self.cur[..self.len])?;
        self.total += self.len as u64;
        let used = std::mem::take(&mut self.cur);
        self.cur = self.pipe.swap(used, self.len, CHUNK);
        self.len = 0;
        Ok(())
    }

    fn put(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.len == CHUNK {
                self.flush_chunk()?;
            }
            let n = (CHUNK - self.len).min(data.len());
            self.cur[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            data = &data[n..];
        }
        Ok(())
    }

    /// Copies up to `n` bytes of `r` into the archive, reading straight into the output
    /// chunk; returns how many bytes there were (fewer at end of file).
    pub fn data_from(&mut self, r: &mut impl Read, n: u64) -> io::Result<u64> {
        let mut done = 0u64;
        while done < n {
            if self.len == CHUNK {
                self.flush_chunk()?;
            }
            let want = ((CHUNK - self.len) as u64).min(n - done) as usize;
            let got = match r.read(&mut self.cur[self.len..self.len + want]) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.len += got;
            done += got as u64;
        }
        Ok(done)
    }

    /// Writes the header (and a PAX header before it if needed). The caller then writes
    /// exactly `size` bytes of data with [`TarWriter::data`] and calls [`TarWriter::pad`].
    pub fn header(&mut self, h: &Header<'_>) -> io::Result<()> {
        let mut name = h.path.to_vec();
        if h.kind == Kind::Dir {
            name.push(b'/');
        }
        let mut block = [0u8; BLOCK];
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();

        match split_ustar(&name) {
            Some((prefix, rest)) => {
                block[345..345 + prefix.len()].copy_from_slice(prefix);
                block[..rest.len()].copy_from_slice(rest);
            }
            None => {
                pax.push((b"path".to_vec(), name.clone()));
                let short = truncate_name(&name, 100);
                block[..short.len()].copy_from_slice(short);
            }
        }
        if h.link.len() > 100 {
            pax.push((b"linkpath".to_vec(), h.link.to_vec()));
            block[157..257].copy_from_slice(&h.link[..100]);
        } else {
            block[157..157 + h.link.len()].copy_from_slice(h.link);
        }
        octal(&mut block[100..108], u64::from(h.mode & 0o7777));
        for (range, value, key) in [(108..116, h.uid, "uid"), (116..124, h.gid, "gid")] {
            if value > OCTAL7_MAX {
                pax.push((key.as_bytes().to_vec(), value.to_string().into_bytes()));
                octal(&mut block[range], 0);
            } else {
                octal(&mut block[range], value);
            }
        }
        if h.size > OCTAL11_MAX {
            pax.push((b"size".to_vec(), h.size.to_string().into_bytes()));
            octal(&mut block[124..136], 0);
        } else {
            octal(&mut block[124..136], h.size);
        }
        if h.mtime < 0 || h.mtime as u64 > OCTAL11_MAX {
            pax.push((b"mtime".to_vec(), h.mtime.to_string().into_bytes()));
            octal(&mut block[136..148], 0);
        } else {
            octal(&mut block[136..148], h.mtime as u64);
        }
        block[156] = match h.kind {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        };
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        if matches!(h.kind, Kind::Char | Kind::Block) {
            for (range, v) in [(329..337, h.dev_major), (337..345, h.dev_minor)] {
                if u64::from(v) > OCTAL7_MAX {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("device number {v} does not fit a tar header"),
                    ));
                }
                octal(&mut block[range], u64::from(v));
            }
        }
        let mut xattrs: Vec<&(Vec<u8>, Vec<u8>)> = h.xattrs.iter().collect();
        xattrs.sort();
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            pax.push((key, v.clone()));
        }
        if !pax.is_empty() {
            self.pax_header(&name, &pax)?;
        }
        checksum(&mut block);
        self.put(&block)?;
        self.entries += 1;
        Ok(())
    }

    fn pax_header(&mut self, name: &[u8], records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        let mut data = Vec::new();
        for (k, v) in records {
            // The length counts itself: find the digit count that makes it consistent.
            let body = k.len() + v.len() + 3; // ' ', '=', '\n'
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(len.to_string().as_bytes());
            data.push(b' ');
            data.extend_from_slice(k);
            data.push(b'=');
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut block = [0u8; BLOCK];
        // Go's naming ("dir/PaxHeaders.0/base"), shortened to fit; readers ignore it.
        let trimmed = name.strip_suffix(b"/").unwrap_or(name);
        let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let mut pax_name = dir.to_vec();
        pax_name.extend_from_slice(b"PaxHeaders.0/");
        pax_name.extend_from_slice(base);
        let short = truncate_name(&pax_name, 100);
        block[..short.len()].copy_from_slice(short);
        octal(&mut block[100..108], 0o644);
        octal(&mut block[108..116], 0);
        octal(&mut block[116..124], 0);
        octal(&mut block[124..136], data.len() as u64);
        octal(&mut block[136..148], 0);
        block[156] = b'x';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        checksum(&mut block);
        self.put(&block)?;
        self.put(&data)?;
        self.pad(data.len() as u64)
    }

    /// Zero padding after `size` bytes of data.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and flushes.
    pub fn finish(mut self) -> io::Result<(Digest, u64, u64)> {
        self.put(&[0u8; BLOCK * 2])?;
        self.out.write_all(&self.cur[..self.len])?;
        self.out.flush()?;
        let total = self.total + self.len as u64;
        let hasher = self.pipe.finish(self.cur, self.len);
        debug_assert_eq!(hasher.len(), total);
        Ok((hasher.finish(), total, self.entries))
    }
}

/// Splits a name into ustar (prefix, name) when it fits: name ≤ 100 bytes, or a prefix of
/// at most 155 bytes ending at a slash and a non-empty rest of at most 100.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // The last slash that leaves a prefix of at most 155 bytes.
    let limit = name.len().min(156);
    let i = name[..limit].iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..i], &name[i + 1..]);
    if i == 0 || rest.is_empty() || rest.len() > 100 || prefix.len() > 155 {
        return None;
    }
    Some((prefix, rest))
}

fn truncate_name(name: &[u8], max: usize) -> &[u8] {
    &name[..name.len().min(max)]
}

/// Octal digits, zero-padded, NUL-terminated, filling the field.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    debug_assert!(s.len() == digits, "{v} does not fit {digits} octal digits");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

fn checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ustar_split_prefers_plain_names_and_splits_at_a_slash() {
        assert_eq!(split_ustar(b"a/b"), Some((&b""[..], &b"a/b"[..])));
        let long = [b"d".repeat(120), b"/".to_vec(), b"f".repeat(50)].concat();
        let (p, n) = split_ustar(&long).unwrap();
        assert_eq!((p.len(), n.len()), (120, 50));
        // No slash where one is needed: PAX.
        assert_eq!(split_ustar(&b"x".repeat(101)), None);
        // Rest too long.
        let long = [b"d".repeat(10), b"/".to_vec(), b"f".repeat(101)].concat();
        assert_eq!(split_ustar(&long), None);
        assert_eq!(split_ustar(&b"a/".repeat(200)), None);
    }

    #[test]
    fn pax_headers_read_back_exactly() {
        use crate::tar_read::{Source, TarReader};
        let mut out = Vec::new();
        let mut w = TarWriter::new(&mut out);
        // Names whose PAX record length crosses a digit boundary, a long link, big ids, a
        // negative mtime and xattrs: everything that needs PAX.
        let mut names = Vec::new();
        for n in [
            83usize, 84, 85, 86, 87, 88, 89, 90, 991, 992, 993, 994, 995, 996, 997, 998,
        ] {
            names.push(vec![b'n'; n].into_iter().chain(*b"/x").collect::<Vec<u8>>());
        }
        let xattrs = vec![(b"user.k".to_vec(), b"v\n\0=".to_vec())];
        let link = vec![b'l'; 300];
        for name in &names {
            w.header(&Header {
                path: name,
                kind: Kind::Symlink,
                mode: 0o777,
                uid: 1 << 40,
                gid: 5,
                mtime: -7,
                size: 0,
                link: &link,
                dev_major: 0,
                dev_minor: 0,
                xattrs: &xattrs,
            })
            .unwrap();
        }
        let (_, size, entries) = w.finish().unwrap();
        assert_eq!(entries, names.len() as u64);
        assert_eq!(size, out.len() as u64);
        let mut r = TarReader::new(Source::new(&out[..], 4096, u64::MAX, false));
        for name in &names {
            let e = r.next_entry().unwrap().unwrap();
            assert_eq!(&e.name, name);
            assert_eq!(e.link, link);
            assert_eq!((e.uid, e.gid, e.mtime.secs), (1 << 40, 5, -7));
            assert_eq!(e.xattrs, xattrs);
        }
        assert!(r.next_entry().unwrap().is_none());
    }
}
