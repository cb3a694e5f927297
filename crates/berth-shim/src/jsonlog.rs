//! Docker's `json-file` log format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-22T09:00:00.123456789Z"}`.
//!
//! The shim writes it ([`encode_entry`], byte-for-byte what dockerd writes: `<`, `>`, `&`
//! and control characters escaped as `\u00XX`, invalid UTF-8 as `\ufffd`, U+2028/2029
//! escaped); berthd reads it back ([`LogEntry`]) for `logs`. A line that ends in `\n` is a
//! complete line; an entry without the trailing `\n` is a partial line (longer than 16 KiB,
//! or cut by the end of the stream) that the next entries continue.

use serde::{Deserialize, Serialize};

/// One entry of a json-file log, as berthd reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The bytes of the line (with its `\n` unless partial), decoded as UTF-8.
    #[serde(default)]
    pub log: String,
    /// `"stdout"` or `"stderr"` (a tty's output is all `"stdout"`).
    #[serde(default)]
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Appends the entry for `line` (already including its `\n` when complete) to `buf`,
/// followed by a newline.
pub fn encode_entry(buf: &mut Vec<u8>, line: &[u8], stream: &str, time: &str) {
    buf.push(b'{');
    let mut first = true;
    if !line.is_empty() {
        first = false;
        buf.extend_from_slice(b"\"log\":");
        write_json_string(buf, line);
    }
    if !stream.is_empty() {
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.extend_from_slice(b"\"stream\":");
        write_json_string(buf, stream.as_bytes());
    }
    if !first {
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"time\":\"");
    buf.extend_from_slice(time.as_bytes());
    buf.extend_from_slice(b"\"}\n");
}

/// Writes `s` as a JSON string the way dockerd's json-file driver does.
fn write_json_string(buf: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => buf.extend_from_slice(b"\\\\"),
                '"' => buf.extend_from_slice(b"\\\""),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '<' | '>' | '&' | '\0'..='\x1f' => {
                    let b = c as u8;
                    buf.extend_from_slice(b"\\u00");
                    buf.push(HEX[(b >> 4) as usize]);
                    buf.push(HEX[(b & 0xf) as usize]);
                }
                '\u{2028}' | '\u{2029}' => {
                    buf.extend_from_slice(b"\\u202");
                    buf.push(HEX[(c as u32 & 0xf) as usize]);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        // Go decodes invalid input one byte at a time, each byte becoming one U+FFFD.
        for _ in chunk.invalid() {
            buf.extend_from_slice(b"\\ufffd");
        }
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(line: &[u8], stream: &str) -> String {
        let mut b = Vec::new();
        encode_entry(&mut b, line, stream, "2026-11-22T09:00:00.5Z");
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn matches_dockers_bytes() {
        assert_eq!(
            enc(b"hello\n", "stdout"),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
        assert_eq!(
            enc(b"a<b>&\"c\\\t\r\n", "stderr"),
            "{\"log\":\"a\\u003cb\\u003e\\u0026\\\"c\\\\\\u0009\\r\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
        assert_eq!(
            enc("é\u{2028}x".as_bytes(), "stdout"),
            "{\"log\":\"é\\u2028x\",\"stream\":\"stdout\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
        // Invalid UTF-8: one U+FFFD per bad byte, the rest kept.
        assert_eq!(
            enc(b"a\xff\xfeb\n", "stdout"),
            "{\"log\":\"a\\ufffd\\ufffdb\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
        // A truncated multi-byte sequence at the end.
        assert_eq!(
            enc(b"x\xc3", "stdout"),
            "{\"log\":\"x\\ufffd\",\"stream\":\"stdout\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
        // An empty line is "\n" (never empty); an empty payload omits "log" like Go's omitempty.
        assert_eq!(
            enc(b"", "stdout"),
            "{\"stream\":\"stdout\",\"time\":\"2026-11-22T09:00:00.5Z\"}\n"
        );
    }

    #[test]
    fn decodes_back() {
        let line = enc(b"a<b \x01\n", "stderr");
        let e: LogEntry = serde_json::from_str(&line).unwrap();
        assert_eq!(e.log, "a<b \u{1}\n");
        assert_eq!(e.stream, "stderr");
        assert_eq!(e.time, "2026-11-22T09:00:00.5Z");
    }
}
