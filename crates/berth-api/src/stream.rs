//! Byte formats of the streaming endpoints.
//!
//! **Multiplexed stdout/stderr** (attach and logs of a container without a TTY, content type
//! `application/vnd.docker.multiplexed-stream`): a sequence of frames, each an 8-byte header
//! followed by the payload:
//!
//! ```text
//! [stream: u8][0][0][0][length: u32 big-endian][payload: length bytes]
//! stream: 0 stdin, 1 stdout, 2 stderr, 3 systemerr (a daemon-side error ending the stream)
//! ```
//!
//! A container with a TTY streams raw bytes instead (`application/vnd.docker.raw-stream`).
//!
//! **JSON messages** (load, import, pull, push): concatenated JSON objects ([`JsonMessage`]);
//! a message with `error` ends the operation with that error.
//!
//! **Events**: concatenated [`crate::models::EventMessage`] objects, one per event.

use std::io::{self, Read, Write};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Length of a multiplexed frame header.
pub const FRAME_HEADER_LEN: usize = 8;

/// Content type of a multiplexed stdout/stderr stream.
pub const MULTIPLEXED_CONTENT_TYPE: &str = "application/vnd.docker.multiplexed-stream";
/// Content type of a raw stream (container with a TTY).
pub const RAW_CONTENT_TYPE: &str = "application/vnd.docker.raw-stream";

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamType {
    /// Input written to the container (only seen when echoed back).
    Stdin = 0,
    /// The container's standard output.
    Stdout = 1,
    /// The container's standard error.
    Stderr = 2,
    /// An error from the daemon that ends the stream.
    SystemErr = 3,
}

impl StreamType {
    /// The stream of a header's first byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => StreamType::Stdin,
            1 => StreamType::Stdout,
            2 => StreamType::Stderr,
            3 => StreamType::SystemErr,
            _ => return None,
        })
    }
}

/// The header of a frame carrying `len` bytes of `stream`.
pub fn frame_header(stream: StreamType, len: u32) -> [u8; FRAME_HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Writes `payload` as one or more frames of `stream` (several when it exceeds `u32::MAX`).
pub fn write_frame<W: Write>(w: &mut W, stream: StreamType, payload: &[u8]) -> io::Result<()> {
    if payload.is_empty() {
        return w.write_all(&frame_header(stream, 0));
    }
    for chunk in payload.chunks(u32::MAX as usize) {
        w.write_all(&frame_header(stream, chunk.len() as u32))?;
        w.write_all(chunk)?;
    }
    Ok(())
}

/// Decodes a multiplexed stream frame by frame.
///
/// ```
/// use berth_api::stream::{write_frame, Demuxer, StreamType};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, StreamType::Stdout, b"hello\n").unwrap();
/// write_frame(&mut wire, StreamType::Stderr, b"oops\n").unwrap();
/// let mut d = Demuxer::new(&wire[..]);
/// assert_eq!(d.next_frame().unwrap(), Some((StreamType::Stdout, &b"hello\n"[..])));
/// assert_eq!(d.next_frame().unwrap(), Some((StreamType::Stderr, &b"oops\n"[..])));
/// assert_eq!(d.next_frame().unwrap(), None);
/// ```
pub struct Demuxer<R> {
    inner: R,
    buf: Vec<u8>,
}

/// Frames larger than this are refused as corrupt rather than allocated (a garbled header
/// would otherwise ask for up to 4 GiB).
pub const MAX_FRAME_LEN: usize = 64 << 20;

impl<R: Read> Demuxer<R> {
    /// Decodes frames from `inner`.
    pub fn new(inner: R) -> Self {
        Demuxer {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next frame, or `None` at a clean end of stream (between frames).
    ///
    /// Errors: `UnexpectedEof` for a stream cut inside a frame, `InvalidData` for an unknown
    /// stream byte or a frame above [`MAX_FRAME_LEN`].
    pub fn next_frame(&mut self) -> io::Result<Option<(StreamType, &[u8])>> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.inner, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stream ended inside a frame header ({got} of {FRAME_HEADER_LEN} bytes)"),
            ));
        }
        let stream = StreamType::from_byte(header[0]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "invalid stream type {} in multiplexed frame header (is the stream raw, from a TTY?)",
                    header[0]
                ),
            )
        })?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("multiplexed frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"),
            ));
        }
        self.buf.resize(len, 0);
        let got = read_full(&mut self.inner, &mut self.buf)?;
        if got < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stream ended inside a frame ({got} of {len} payload bytes)"),
            ));
        }
        Ok(Some((stream, &self.buf[..])))
    }

    /// Copies every frame to `stdout` or `stderr` until the end of the stream. A
    /// [`StreamType::SystemErr`] frame ends the copy with its text as the error.
    pub fn copy_to<O: Write, E: Write>(
        &mut self,
        stdout: &mut O,
        stderr: &mut E,
    ) -> io::Result<()> {
        while let Some((stream, payload)) = self.next_frame()? {
            match stream {
                StreamType::Stdout | StreamType::Stdin => {
                    stdout.write_all(payload)?;
                    stdout.flush()?;
                }
                StreamType::Stderr => {
                    stderr.write_all(payload)?;
                    stderr.flush()?;
                }
                StreamType::SystemErr => {
                    return Err(io::Error::other(
                        String::from_utf8_lossy(payload).trim_end().to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Progress of one step (`current` of `total` bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    /// Bytes overall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// The error of a failed streamed operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonError {
    /// An optional numeric code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// One message of a JSON progress stream (Docker's `jsonmessage.JSONMessage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonMessage {
    /// Free text to print as is (`Loaded image: busybox:latest\n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A status line (`Loading layer`, or the new image ID of an import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Structured progress of the step named by `id`.
    #[serde(
        rename = "progressDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub progress_detail: Option<ProgressDetail>,
    /// Pre-rendered progress bar (deprecated by Docker, still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Which step (layer) the message is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The error that ended the operation.
    #[serde(
        rename = "errorDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_detail: Option<JsonError>,
    /// The error message (duplicate of `errorDetail.message`, for old clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Auxiliary structured data (e.g. `{"ID": "sha256:..."}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// A message with free text.
    pub fn stream(text: impl Into<String>) -> Self {
        JsonMessage {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    /// A message with a status line.
    pub fn status(text: impl Into<String>) -> Self {
        JsonMessage {
            status: Some(text.into()),
            ..Default::default()
        }
    }

    /// A message ending the operation with `message`.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        JsonMessage {
            error_detail: Some(JsonError {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }

    /// The error this message carries, if it ends the operation.
    pub fn error_message(&self) -> Option<&str> {
        self.error_detail
            .as_ref()
            .map(|e| e.message.as_str())
            .filter(|m| !m.is_empty())
            .or(self.error.as_deref())
    }
}

/// Decodes a stream of concatenated (usually newline-separated) JSON values, one at a time
/// as they arrive.
pub struct JsonStream<R: Read, T> {
    inner: serde_json::StreamDeserializer<'static, serde_json::de::IoRead<R>, T>,
    _marker: PhantomData<T>,
}

impl<R: Read, T: DeserializeOwned> JsonStream<R, T> {
    /// Decodes values from `reader`.
    pub fn new(reader: R) -> Self {
        JsonStream {
            inner: serde_json::Deserializer::from_reader(reader).into_iter::<T>(),
            _marker: PhantomData,
        }
    }
}

impl<R: Read, T: DeserializeOwned> Iterator for JsonStream<R, T> {
    type Item = Result<T, serde_json::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_layout() {
        assert_eq!(
            frame_header(StreamType::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn demux_round_trip_with_empty_and_large_frames() {
        let big = vec![b'x'; 100_000];
        let mut wire = Vec::new();
        write_frame(&mut wire, StreamType::Stdout, b"").unwrap();
        write_frame(&mut wire, StreamType::Stdout, &big).unwrap();
        write_frame(&mut wire, StreamType::Stderr, b"e").unwrap();
        // A reader that hands out one byte at a time still yields whole frames.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let mut d = Demuxer::new(Trickle(&wire));
        assert_eq!(
            d.next_frame().unwrap(),
            Some((StreamType::Stdout, &b""[..]))
        );
        assert_eq!(d.next_frame().unwrap().unwrap().1.len(), 100_000);
        assert_eq!(
            d.next_frame().unwrap(),
            Some((StreamType::Stderr, &b"e"[..]))
        );
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn copy_to_splits_streams() {
        let mut wire = Vec::new();
        write_frame(&mut wire, StreamType::Stdout, b"out1 ").unwrap();
        write_frame(&mut wire, StreamType::Stderr, b"err1").unwrap();
        write_frame(&mut wire, StreamType::Stdout, b"out2").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        Demuxer::new(&wire[..]).copy_to(&mut out, &mut err).unwrap();
        assert_eq!(out, b"out1 out2");
        assert_eq!(err, b"err1");
    }

    #[test]
    fn system_error_frame_ends_the_copy_with_its_text() {
        let mut wire = Vec::new();
        write_frame(&mut wire, StreamType::Stdout, b"partial").unwrap();
        write_frame(&mut wire, StreamType::SystemErr, b"log file is gone\n").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = Demuxer::new(&wire[..])
            .copy_to(&mut out, &mut err)
            .unwrap_err();
        assert_eq!(e.to_string(), "log file is gone");
        assert_eq!(out, b"partial");
    }

    #[test]
    fn truncated_and_garbled_streams_are_errors_not_panics() {
        let mut wire = Vec::new();
        write_frame(&mut wire, StreamType::Stdout, b"hello").unwrap();
        for cut in 1..wire.len() {
            let mut d = Demuxer::new(&wire[..cut]);
            let e = d.next_frame().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
        let e = Demuxer::new(&b"hello world, raw tty output"[..])
            .next_frame()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("invalid stream type 104"), "{e}");
        let huge = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        let e = Demuxer::new(&huge[..]).next_frame().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn json_messages_decode_from_a_stream() {
        let wire = concat!(
            r#"{"status":"Loading layer","progressDetail":{"current":512,"total":1024},"id":"abc"}"#,
            "\n",
            r#"{"stream":"Loaded image: busybox:latest\n"}"#,
            "\r\n",
            r#"{"errorDetail":{"message":"disk full"},"error":"disk full"}"#
        );
        let msgs: Vec<JsonMessage> = JsonStream::new(wire.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].progress_detail.as_ref().unwrap().total, Some(1024));
        assert_eq!(
            msgs[1].stream.as_deref(),
            Some("Loaded image: busybox:latest\n")
        );
        assert_eq!(msgs[2].error_message(), Some("disk full"));
        assert_eq!(JsonMessage::error("x").error_message(), Some("x"));
    }

    #[test]
    fn json_stream_reports_garbage() {
        let mut it = JsonStream::<_, JsonMessage>::new(&b"{\"status\":\"ok\"} {oops"[..]);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
    }
}
