//! Compression detection by magic bytes and streaming decompression.
//!
//! Media types and file names lie (a `.tar.gz` that is plain tar, a Docker archive whose
//! `layer.tar` is gzip); the first bytes do not. Like Docker we look at the magic and never
//! at the name. bzip2 and xz are recognised only to refuse them with a clear message: image
//! layers are tar, gzip or zstd (OCI image spec 1.1).

use std::io::{self, Cursor, Read};

use crate::error::{Error, Result};

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (RFC 1952), possibly several members concatenated.
    Gzip,
    /// Zstandard (RFC 8878), possibly several frames, skippable frames allowed.
    Zstd,
}

impl Compression {
    /// The usual name, as in media types (`tar`, `tar+gzip`, `tar+zstd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// How many bytes [`decompress`] peeks at: enough for the longest magic we check (bzip2's
/// "BZh" + level + block magic).
const PEEK: usize = 10;

/// Detects the compression of a stream from its first bytes (at least 4 are needed to see
/// zstd; fewer bytes are treated as uncompressed).
pub fn detect_compression(first_bytes: &[u8]) -> Compression {
    if first_bytes.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if first_bytes.starts_with(ZSTD_MAGIC) || is_zstd_skippable(first_bytes) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Skippable frames (magic 0x184D2A5?, little endian) may precede the first zstd frame.
fn is_zstd_skippable(b: &[u8]) -> bool {
    b.len() >= 4 && b[0] & 0xf0 == 0x50 && b[1..4] == [0x2a, 0x4d, 0x18]
}

fn unsupported_compression(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(XZ_MAGIC) {
        Some("xz")
    } else if b.len() >= PEEK
        && b.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&b[3])
        && b[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
    {
        Some("bzip2")
    } else {
        None
    }
}

/// Peeks at the first bytes of `r`, detects the compression and returns a reader of the
/// uncompressed stream (the peeked bytes are not lost).
///
/// Memory is bounded: gzip needs 32 KiB of window, zstd at most the frame's window
/// (libzstd refuses frames asking for more than 128 MiB, `ZSTD_WINDOWLOG_LIMIT_DEFAULT`).
pub fn decompress<'a, R: Read + 'a>(mut r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; PEEK];
    let mut n = 0;
    while n < PEEK {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Read(e)),
        }
    }
    let head = &head[..n];
    if let Some(name) = unsupported_compression(head) {
        return Err(Error::Compression(format!(
            "{name} compression is not supported for layers (use gzip, zstd or none)"
        )));
    }
    let kind = detect_compression(head);
    let joined = Cursor::new(head.to_vec()).chain(r);
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(joined),
        Compression::Gzip => Box::new(GzipReader(flate2::read::MultiGzDecoder::new(joined))),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(joined).map_err(Error::Read)?;
            Box::new(ZstdReader(d))
        }
    };
    Ok((kind, reader))
}

/// Marks decoder errors so that callers can tell a corrupt stream from a failing source.
#[derive(Debug)]
pub(crate) struct CorruptStream(pub(crate) String);

impl std::fmt::Display for CorruptStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for CorruptStream {}

struct GzipReader<R>(flate2::read::MultiGzDecoder<R>);

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => io::Error::new(
                io::ErrorKind::InvalidData,
                CorruptStream(format!("corrupt gzip data: {e}")),
            ),
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                CorruptStream("gzip stream ends early (truncated download?)".into()),
            ),
            _ => e,
        })
    }
}

struct ZstdReader<R: io::BufRead>(zstd::stream::read::Decoder<'static, R>);

impl<R: io::BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                CorruptStream("zstd stream ends early (truncated download?)".into()),
            ),
            // libzstd reports every decoding failure as `Other` with its own message.
            io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    CorruptStream(format!("corrupt zstd data: {e}")),
                )
            }
            _ => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_by_magic_only() {
        assert_eq!(
            detect_compression(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(
            detect_compression(&[0x50, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"etc/passwd\0"), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
    }

    fn roundtrip(kind: Compression, data: &[u8]) {
        let compressed = match kind {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
        };
        // Feed one byte at a time to prove the peek does not depend on read sizes.
        let (got, mut r) = decompress(OneByte(&compressed[..])).unwrap();
        assert_eq!(got, kind);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    struct OneByte<'a>(&'a [u8]);
    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn decompress_round_trips_each_kind_including_tiny_inputs() {
        for kind in [Compression::None, Compression::Gzip, Compression::Zstd] {
            roundtrip(kind, b"");
            roundtrip(kind, b"ab");
            roundtrip(kind, &vec![7u8; 100_000]);
        }
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut all = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            all.extend(e.finish().unwrap());
        }
        let (_, mut r) = decompress(&all[..]).unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn xz_and_bzip2_are_refused_by_name() {
        let err = decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0, 0, 0][..])
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("xz compression is not supported"),
            "{err}"
        );
        let bz = b"BZh91AY&SY\0\0";
        let err = decompress(&bz[..]).err().unwrap();
        assert!(err.to_string().contains("bzip2"), "{err}");
        // A tar whose first file happens to start with "BZh" is not bzip2.
        let (kind, _) = decompress(&b"BZh.txt\0\0\0\0\0"[..]).unwrap();
        assert_eq!(kind, Compression::None);
    }

    #[test]
    fn truncated_and_corrupt_streams_are_marked() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&vec![1u8; 50_000]).unwrap();
        let gz = e.finish().unwrap();
        let (_, mut r) = decompress(&gz[..gz.len() / 2]).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(
            err.get_ref().is_some_and(|e| e.is::<CorruptStream>()),
            "{err:?}"
        );

        let mut z = zstd::encode_all(&vec![1u8; 50_000][..], 3).unwrap();
        let mid = z.len() / 2;
        z[mid] ^= 0xff;
        z[mid + 1] ^= 0xff;
        let (_, mut r) = decompress(&z[..]).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(
            err.get_ref().is_some_and(|e| e.is::<CorruptStream>()),
            "{err:?}"
        );
    }
}
