//! Reading a container's json-file log (written by its shim) for `GET /containers/{id}/logs`.
//!
//! Files: `<id>-json.log` is current; rotated ones are `<id>-json.log.1` (newest) up to
//! `.N` (oldest). Entries are read oldest first, filtered by stream and time, cut to the
//! last `tail` entries, and framed for the client: Docker's 8-byte multiplexed header per
//! entry without a tty, raw bytes with one. `follow` keeps reading as the shim appends
//! (re-opening the file after a rotation) until the container stops.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_shim::jsonlog::LogEntry;
use bytes::Bytes;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Only entries at or after this time (unix nanos).
    pub since: Option<i64>,
    /// Only entries before this time (unix nanos).
    pub until: Option<i64>,
    pub timestamps: bool,
    /// Only the last N entries; None = all.
    pub tail: Option<usize>,
    /// Raw output (the container has a tty) instead of multiplexed frames.
    pub raw: bool,
}

/// Parses Docker's `tail` (`all`, a number; negative or garbage means all, like Docker).
pub fn parse_tail(s: Option<&str>) -> Option<usize> {
    match s {
        None | Some("" | "all") => None,
        Some(n) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n as usize),
    }
}

/// The files of a log, oldest first.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        let prefix = format!("{name}.");
        for e in rd.flatten() {
            if let Some(n) = e
                .file_name()
                .to_str()
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|s| s.parse::<u32>().ok())
            {
                rotated.push((n, e.path()));
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

fn entry_nanos(e: &LogEntry) -> i64 {
    e.time
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_nanosecond() as i64)
        .unwrap_or(0)
}

/// Docker's fixed-width RFC 3339 (`2006-01-02T15:04:05.000000000Z07:00`) for `timestamps`.
pub fn fixed_rfc3339(time: &str) -> String {
    let Ok(t) = time.parse::<jiff::Timestamp>() else {
        return time.to_string();
    };
    let nanos = t.subsec_nanosecond();
    match jiff::Timestamp::from_second(t.as_second()) {
        Ok(base) => format!("{}.{nanos:09}Z", base.strftime("%Y-%m-%dT%H:%M:%S")),
        Err(_) => time.to_string(),
    }
}

/// A filter and framer of entries.
pub struct Framer {
    opts: LogOptions,
}

impl Framer {
    pub fn new(opts: LogOptions) -> Framer {
        Framer { opts }
    }

    /// Whether an entry passes the stream and time filters.
    pub fn wanted(&self, e: &LogEntry) -> bool {
        let stream_ok = match e.stream.as_str() {
            "stderr" => self.opts.stderr,
            _ => self.opts.stdout,
        };
        if !stream_ok {
            return false;
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            let t = entry_nanos(e);
            if self.opts.since.is_some_and(|s| t < s) || self.opts.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        true
    }

    /// Whether entries after the `until` time can stop the reading. Like Docker's, `until`
    /// is inclusive: an entry stamped exactly at `until` is still sent.
    pub fn past_until(&self, e: &LogEntry) -> bool {
        self.opts.until.is_some_and(|u| entry_nanos(e) > u)
    }

    /// The bytes sent to the client for one entry.
    pub fn frame(&self, e: &LogEntry, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(e.log.len() + 32);
        if self.opts.timestamps {
            payload.extend_from_slice(fixed_rfc3339(&e.time).as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(e.log.as_bytes());
        if self.opts.raw {
            out.extend_from_slice(&payload);
        } else {
            let kind = if e.stream == "stderr" { 2u8 } else { 1u8 };
            out.extend_from_slice(&[kind, 0, 0, 0]);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(&payload);
        }
    }
}

fn parse_line(line: &[u8]) -> Option<LogEntry> {
    serde_json::from_slice(line).ok()
}

/// Reads the whole log (all files) and returns the framed output for the selected entries,
/// plus where the current file ended (for `follow`).
pub fn read_all(
    path: &Path,
    framer: &Framer,
    tail: Option<usize>,
    sink: &mut dyn FnMut(Bytes),
) -> Position {
    let files = log_files(path);
    let mut ring: VecDeque<LogEntry> = VecDeque::new();
    let mut out = Vec::with_capacity(64 << 10);
    let mut pos = Position::default();
    let mut stop = false;
    for (i, f) in files.iter().enumerate() {
        let Ok(file) = File::open(f) else { continue };
        let is_current = i + 1 == files.len();
        if is_current && let Ok(m) = file.metadata() {
            pos.ino = m.ino();
        }
        let mut reader = BufReader::with_capacity(64 << 10, file);
        let mut line = Vec::new();
        let mut offset = 0u64;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if line.last() != Some(&b'\n') {
                        // A line the shim is still writing: leave it for `follow`.
                        break;
                    }
                    offset += n as u64;
                }
            }
            if stop {
                continue;
            }
            let Some(e) = parse_line(&line) else { continue };
            if framer.past_until(&e) {
                stop = true;
                continue;
            }
            if !framer.wanted(&e) {
                continue;
            }
            match tail {
                Some(0) => {}
                Some(n) => {
                    if ring.len() == n {
                        ring.pop_front();
                    }
                    ring.push_back(e);
                }
                None => {
                    framer.frame(&e, &mut out);
                    if out.len() >= 32 << 10 {
                        sink(Bytes::from(std::mem::take(&mut out)));
                    }
                }
            }
        }
        if is_current {
            pos.offset = offset;
        }
    }
    for e in ring {
        framer.frame(&e, &mut out);
    }
    if !out.is_empty() {
        sink(Bytes::from(out));
    }
    pos.until_reached = stop;
    pos
}

/// Where `follow` continues in the current file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Position {
    pub ino: u64,
    pub offset: u64,
    pub until_reached: bool,
}

/// Reads entries appended since `pos`, following a rotation (the current file's inode
/// changed: the rest of the old file is in `.1`). Returns false once `until` has passed.
pub fn read_new(
    path: &Path,
    framer: &Framer,
    pos: &mut Position,
    sink: &mut dyn FnMut(Bytes),
) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return true;
    };
    let mut out = Vec::new();
    let mut keep_going = true;
    let read_from = |p: &Path, start: u64, out: &mut Vec<u8>, keep_going: &mut bool| -> u64 {
        let Ok(mut f) = File::open(p) else {
            return start;
        };
        if f.seek(SeekFrom::Start(start)).is_err() {
            return start;
        }
        let mut reader = BufReader::new(f);
        let mut line = Vec::new();
        let mut off = start;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if line.last() != Some(&b'\n') {
                        break;
                    }
                    off += n as u64;
                }
            }
            if let Some(e) = parse_line(&line) {
                if framer.past_until(&e) {
                    *keep_going = false;
                    break;
                }
                if framer.wanted(&e) {
                    framer.frame(&e, out);
                }
            }
        }
        off
    };
    if meta.ino() != pos.ino {
        // Rotated: finish the old file (now `.1`), then start the new one from 0.
        let old = PathBuf::from(format!("{}.1", path.display()));
        if pos.ino != 0 && std::fs::metadata(&old).is_ok_and(|m| m.ino() == pos.ino) {
            read_from(&old, pos.offset, &mut out, &mut keep_going);
        }
        pos.ino = meta.ino();
        pos.offset = 0;
    } else if meta.len() < pos.offset {
        pos.offset = 0;
    }
    if keep_going && meta.len() > pos.offset {
        pos.offset = read_from(path, pos.offset, &mut out, &mut keep_going);
    }
    if !out.is_empty() {
        sink(Bytes::from(out));
    }
    keep_going
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &str, stream: &str, time: &str) -> String {
        serde_json::to_string(&LogEntry {
            log: log.into(),
            stream: stream.into(),
            time: time.into(),
        })
        .unwrap()
            + "\n"
    }

    fn collect(path: &Path, opts: LogOptions) -> Vec<u8> {
        let tail = opts.tail;
        let framer = Framer::new(opts);
        let mut out = Vec::new();
        read_all(path, &framer, tail, &mut |b| out.extend_from_slice(&b));
        out
    }

    #[test]
    fn reads_rotated_files_in_order_and_frames_like_docker() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-logs")
            .tempdir()
            .unwrap();
        let p = dir.path().join("c-json.log");
        std::fs::write(
            p.with_extension("log.2"),
            entry("one\n", "stdout", "2026-01-01T00:00:01Z"),
        )
        .unwrap();
        std::fs::write(
            p.with_extension("log.1"),
            entry("two\n", "stderr", "2026-01-01T00:00:02Z"),
        )
        .unwrap();
        std::fs::write(
            &p,
            entry("three\n", "stdout", "2026-01-01T00:00:03.5Z") + "{\"log\":\"partial",
        )
        .unwrap();
        let all = LogOptions {
            stdout: true,
            stderr: true,
            raw: true,
            ..Default::default()
        };
        assert_eq!(collect(&p, all.clone()), b"one\ntwo\nthree\n");
        let stdout_only = LogOptions {
            stderr: false,
            ..all.clone()
        };
        assert_eq!(collect(&p, stdout_only), b"one\nthree\n");
        let tail = LogOptions {
            tail: Some(1),
            ..all.clone()
        };
        assert_eq!(collect(&p, tail), b"three\n");
        let since = LogOptions {
            since: Some(parse_ts("2026-01-01T00:00:02Z")),
            until: Some(parse_ts("2026-01-01T00:00:03Z")),
            ..all.clone()
        };
        assert_eq!(collect(&p, since), b"two\n");
        let ts = LogOptions {
            timestamps: true,
            tail: Some(1),
            ..all.clone()
        };
        assert_eq!(
            String::from_utf8(collect(&p, ts)).unwrap(),
            "2026-01-01T00:00:03.500000000Z three\n"
        );
        let muxed = LogOptions {
            raw: false,
            tail: Some(2),
            ..all
        };
        let out = collect(&p, muxed);
        assert_eq!(&out[..8], &[2, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(&out[8..12], b"two\n");
        assert_eq!(&out[12..20], &[1, 0, 0, 0, 0, 0, 0, 6]);
    }

    #[test]
    fn until_is_inclusive_like_dockers() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-logs")
            .tempdir()
            .unwrap();
        let p = dir.path().join("c-json.log");
        std::fs::write(
            &p,
            entry("one\n", "stdout", "2026-01-01T00:00:01Z")
                + &entry("two\n", "stdout", "2026-01-01T00:00:02.25Z")
                + &entry("three\n", "stdout", "2026-01-01T00:00:03Z"),
        )
        .unwrap();
        let at_two = LogOptions {
            stdout: true,
            raw: true,
            since: Some(parse_ts("2026-01-01T00:00:02.25Z")),
            until: Some(parse_ts("2026-01-01T00:00:02.25Z")),
            ..Default::default()
        };
        assert_eq!(collect(&p, at_two), b"two\n");
        let framer = Framer::new(LogOptions {
            until: Some(parse_ts("2026-01-01T00:00:02.25Z")),
            ..Default::default()
        });
        let two: LogEntry =
            serde_json::from_str(entry("two\n", "stdout", "2026-01-01T00:00:02.25Z").trim())
                .unwrap();
        assert!(!framer.past_until(&two));
    }

    fn parse_ts(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    #[test]
    fn follow_reads_appends_and_rotations() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-logs")
            .tempdir()
            .unwrap();
        let p = dir.path().join("c-json.log");
        std::fs::write(&p, entry("a\n", "stdout", "2026-01-01T00:00:01Z")).unwrap();
        let framer = Framer::new(LogOptions {
            stdout: true,
            stderr: true,
            raw: true,
            ..Default::default()
        });
        let mut out = Vec::new();
        let mut pos = read_all(&p, &framer, None, &mut |b| out.extend_from_slice(&b));
        assert_eq!(out, b"a\n");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(entry("b\n", "stdout", "2026-01-01T00:00:02Z").as_bytes())
            .unwrap();
        drop(f);
        out.clear();
        assert!(read_new(&p, &framer, &mut pos, &mut |b| out.extend_from_slice(&b)));
        assert_eq!(out, b"b\n");
        // rotate: append c to the old file, move it to .1, start a new one with d
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(entry("c\n", "stdout", "2026-01-01T00:00:03Z").as_bytes())
            .unwrap();
        drop(f);
        std::fs::rename(&p, p.with_extension("log.1")).unwrap();
        std::fs::write(&p, entry("d\n", "stdout", "2026-01-01T00:00:04Z")).unwrap();
        out.clear();
        read_new(&p, &framer, &mut pos, &mut |b| out.extend_from_slice(&b));
        assert_eq!(out, b"c\nd\n");
    }

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail(Some("all")), None);
        assert_eq!(parse_tail(Some("3")), Some(3));
        assert_eq!(parse_tail(Some("-1")), None);
        assert_eq!(parse_tail(None), None);
    }
}
