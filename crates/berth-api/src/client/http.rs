//! The HTTP/1.1 wire codec of the client: request heads, response heads, and the three ways a
//! response body ends (Content-Length, chunked, connection close).

use std::io::{self, BufRead, Read, Write};

/// Response heads larger than this are refused (a daemon never sends more than a few hundred
/// bytes of headers).
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// A parsed response status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code (`200`).
    pub status: u16,
    /// The reason phrase (`OK`).
    pub reason: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when a header's comma-separated values include `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Reads and parses a response head. `Ok(None)` when the connection closed before the first
/// byte (a stale keep-alive connection the server dropped).
pub fn read_response_head<R: BufRead>(r: &mut R) -> io::Result<Option<ResponseHead>> {
    let mut total = 0usize;
    let mut line = String::new();
    // Skip interim 1xx responses other than 101 (e.g. 100 Continue).
    loop {
        line.clear();
        let n = read_line_limited(r, &mut line, &mut total)?;
        if n == 0 {
            return Ok(None);
        }
        let status_line = line.trim_end_matches(['\r', '\n']);
        let (status, reason) = parse_status_line(status_line)?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            let n = read_line_limited(r, &mut line, &mut total)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside the response headers",
                ));
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':').ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("malformed response header line {l:?}"),
                )
            })?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        return Ok(Some(ResponseHead {
            status,
            reason,
            headers,
        }));
    }
}

fn read_line_limited<R: BufRead>(
    r: &mut R,
    line: &mut String,
    total: &mut usize,
) -> io::Result<usize> {
    let mut limited = r.take((MAX_HEAD_LEN - (*total).min(MAX_HEAD_LEN)) as u64 + 1);
    let n = limited.read_line(line)?;
    *total += n;
    if *total > MAX_HEAD_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("response head exceeds {MAX_HEAD_LEN} bytes"),
        ));
    }
    Ok(n)
}

fn parse_status_line(l: &str) -> io::Result<(u16, String)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed HTTP status line {l:?} (is this a berthd socket?)"),
        )
    };
    let mut parts = l.splitn(3, ' ');
    let version = parts.next().ok_or_else(bad)?;
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let code = parts.next().ok_or_else(bad)?;
    if code.len() != 3 {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    Ok((status, parts.next().unwrap_or("").to_owned()))
}

/// Writes a request head. `body_len`: `Some(n)` sends `Content-Length: n`, `None` sends
/// `Transfer-Encoding: chunked`; requests without a body pass `Some(0)` only for methods
/// that expect one (POST/PUT), otherwise no length header at all.
pub fn write_request_head<W: Write>(
    w: &mut W,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body_len: Option<Option<u64>>,
) -> io::Result<()> {
    let mut head = String::with_capacity(256);
    head.push_str(method);
    head.push(' ');
    head.push_str(target);
    head.push_str(" HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth/");
    head.push_str(env!("CARGO_PKG_VERSION"));
    head.push_str("\r\n");
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    match body_len {
        Some(Some(n)) => {
            head.push_str("Content-Length: ");
            head.push_str(&n.to_string());
            head.push_str("\r\n");
        }
        Some(None) => head.push_str("Transfer-Encoding: chunked\r\n"),
        None => {}
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

/// Decodes a chunked body from `inner`, stopping after the last chunk and its trailers (the
/// connection may then carry the next response).
pub struct ChunkedReader<R> {
    inner: R,
    /// Bytes left in the current chunk; `None` before a size line.
    remaining: Option<u64>,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    /// Decodes the chunked body at the start of `inner`.
    pub fn new(inner: R) -> Self {
        ChunkedReader {
            inner,
            remaining: None,
            done: false,
        }
    }

    /// True once the last chunk and trailers were consumed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The underlying reader, positioned after the body once [`Self::is_done`].
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// A reference to the underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn read_size_line(&mut self) -> io::Result<u64> {
        let mut line = String::new();
        let n = (&mut self.inner).take(1024).read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a chunked body",
            ));
        }
        if !line.ends_with('\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk size line too long",
            ));
        }
        let size = line.trim_end_matches(['\r', '\n']);
        let size = size.split(';').next().unwrap_or("").trim();
        u64::from_str_radix(size, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed chunk size {size:?}"),
            )
        })
    }

    fn expect_crlf(&mut self) -> io::Result<()> {
        let mut crlf = [0u8; 2];
        self.inner.read_exact(&mut crlf[..1])?;
        if crlf[0] == b'\r' {
            self.inner.read_exact(&mut crlf[1..])?;
        } else {
            crlf[1] = crlf[0];
        }
        if crlf[1] != b'\n' {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk data not followed by CRLF",
            ));
        }
        Ok(())
    }

    fn read_trailers(&mut self) -> io::Result<()> {
        loop {
            let mut line = String::new();
            let n = (&mut self.inner).take(8192).read_line(&mut line)?;
            if n == 0 || line.trim_end_matches(['\r', '\n']).is_empty() {
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let remaining = match self.remaining {
            Some(n) if n > 0 => n,
            _ => {
                if self.remaining == Some(0) {
                    self.expect_crlf()?;
                }
                let size = self.read_size_line()?;
                if size == 0 {
                    self.read_trailers()?;
                    self.done = true;
                    self.remaining = None;
                    return Ok(0);
                }
                self.remaining = Some(size);
                size
            }
        };
        let want = buf.len().min(remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a chunk",
            ));
        }
        self.remaining = Some(remaining - n as u64);
        Ok(n)
    }
}

/// Encodes writes as chunks; [`ChunkedWriter::finish`] writes the last (empty) chunk.
pub struct ChunkedWriter<W: Write> {
    inner: W,
}

impl<W: Write> ChunkedWriter<W> {
    /// Encodes into `inner`.
    pub fn new(inner: W) -> Self {
        ChunkedWriter { inner }
    }

    /// Ends the body and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(b"0\r\n\r\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        write!(self.inner, "{:x}\r\n", buf.len())?;
        self.inner.write_all(buf)?;
        self.inner.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<R: Read>(mut r: R) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn parses_a_response_head() {
        let wire = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nbody!";
        let mut r = &wire[..];
        let head = read_response_head(&mut r).unwrap().unwrap();
        assert_eq!(head.status, 404);
        assert_eq!(head.reason, "Not Found");
        assert_eq!(head.header("content-length"), Some("5"));
        assert_eq!(r, b"body!");
    }

    #[test]
    fn skips_100_continue_but_keeps_101() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nraw";
        let mut r = &wire[..];
        let head = read_response_head(&mut r).unwrap().unwrap();
        assert_eq!(head.status, 101);
        assert!(head.header_has_token("connection", "upgrade"));
        assert_eq!(r, b"raw");
    }

    #[test]
    fn empty_connection_is_none_and_garbage_is_an_error() {
        assert!(read_response_head(&mut &b""[..]).unwrap().is_none());
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n",
        ] {
            assert!(read_response_head(&mut &bad[..]).is_err(), "{bad:?}");
        }
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD_LEN + 10));
        let e = read_response_head(&mut &huge[..]).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
    }

    #[test]
    fn request_head_format() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/v1.47/containers/create?name=x",
            &[("Content-Type".into(), "application/json".into())],
            Some(Some(2)),
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("POST /v1.47/containers/create?name=x HTTP/1.1\r\nHost: berth\r\n"));
        assert!(s.contains("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"));
    }

    #[test]
    fn chunked_decoding() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut r = ChunkedReader::new(&wire[..]);
        assert_eq!(read_all(&mut r).unwrap(), b"hello, world");
        assert!(r.is_done());
        assert_eq!(r.into_inner(), b"NEXT");
        // Uppercase hex, bare LF line endings.
        let wire = b"A\n0123456789\n0\n\n";
        assert_eq!(
            read_all(ChunkedReader::new(&wire[..])).unwrap(),
            b"0123456789"
        );
    }

    #[test]
    fn chunked_errors() {
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhel",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\r\n",
            b"",
        ] {
            assert!(read_all(ChunkedReader::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chunked_round_trip() {
        let mut w = ChunkedWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        w.write_all(b"").unwrap();
        w.write_all(&[b'z'; 300]).unwrap();
        let wire = w.finish().unwrap();
        assert!(wire.starts_with(b"3\r\nabc\r\n12c\r\n"));
        let mut want = b"abc".to_vec();
        want.extend([b'z'; 300]);
        assert_eq!(read_all(ChunkedReader::new(&wire[..])).unwrap(), want);
    }
}
