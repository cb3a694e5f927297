//! Docker's multiplexed stream format, used on attach connections without a tty.
//!
//! Each frame is an 8-byte header — the stream (0 stdin, 1 stdout, 2 stderr), three zero
//! bytes, the payload length as a big-endian u32 — followed by the payload. With a tty the
//! stream carries raw bytes instead (there is only one output stream).

use std::io::{self, Read};

/// Which standard stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamType {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

impl StreamType {
    /// The name the json-file log uses (`"stdout"`, `"stderr"`).
    pub fn name(self) -> &'static str {
        match self {
            StreamType::Stdin => "stdin",
            StreamType::Stdout => "stdout",
            StreamType::Stderr => "stderr",
        }
    }
}

/// The largest payload one frame carries (the length field's range).
pub const MAX_FRAME: usize = u32::MAX as usize;

/// The 8-byte header of a frame of `len` payload bytes.
pub fn frame_header(stream: StreamType, len: u32) -> [u8; 8] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Decodes a frame header; errors on an unknown stream byte or non-zero padding.
pub fn parse_header(h: &[u8; 8]) -> io::Result<(StreamType, u32)> {
    let stream = match h[0] {
        0 => StreamType::Stdin,
        1 => StreamType::Stdout,
        2 => StreamType::Stderr,
        b => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad multiplexed stream header: unknown stream {b}"),
            ));
        }
    };
    if h[1..4] != [0, 0, 0] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad multiplexed stream header: padding bytes are not zero",
        ));
    }
    Ok((stream, u32::from_be_bytes([h[4], h[5], h[6], h[7]])))
}

/// Reads frames one by one from a multiplexed stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader { inner }
    }

    /// The next frame, or `None` at a clean end of stream (between frames).
    pub fn next_frame(&mut self) -> io::Result<Option<(StreamType, Vec<u8>)>> {
        let mut h = [0u8; 8];
        let mut got = 0;
        while got < h.len() {
            match self.inner.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "multiplexed stream ended inside a frame header",
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let (stream, len) = parse_header(&h)?;
        let mut payload = vec![0u8; len as usize];
        self.inner.read_exact(&mut payload)?;
        Ok(Some((stream, payload)))
    }

    /// Reads every remaining frame; returns (stdout, stderr) concatenated.
    pub fn read_to_end(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((s, p)) = self.next_frame()? {
            match s {
                StreamType::Stderr => err.extend_from_slice(&p),
                _ => out.extend_from_slice(&p),
            }
        }
        Ok((out, err))
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_dockers() {
        assert_eq!(
            frame_header(StreamType::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(
            parse_header(&[1, 0, 0, 0, 0, 0, 1, 0]).unwrap(),
            (StreamType::Stdout, 256)
        );
        assert!(parse_header(&[3, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse_header(&[1, 1, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn reader_splits_frames_and_detects_truncation() {
        let mut data = Vec::new();
        data.extend_from_slice(&frame_header(StreamType::Stdout, 3));
        data.extend_from_slice(b"out");
        data.extend_from_slice(&frame_header(StreamType::Stderr, 2));
        data.extend_from_slice(b"er");
        data.extend_from_slice(&frame_header(StreamType::Stdout, 0));
        let (o, e) = FrameReader::new(&data[..]).read_to_end().unwrap();
        assert_eq!((o.as_slice(), e.as_slice()), (&b"out"[..], &b"er"[..]));
        assert!(FrameReader::new(&data[..5]).read_to_end().is_err());
        assert!(FrameReader::new(&data[..10]).read_to_end().is_err());
    }
}
