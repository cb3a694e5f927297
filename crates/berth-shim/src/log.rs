//! The json-file log: Docker's line splitting (its `logger.Copier`) and its file rotation
//! (`loggerutils.LogFile`), writing [`berth_shim::jsonlog`] entries.

use berth_shim::jsonlog::encode_entry;
use berth_shim::now_rfc3339;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Docker's copier buffer: a line longer than this is logged in pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// Splits one stream's bytes into log lines the way Docker's copier does.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Bytes of an unfinished line.
    pub(crate) pending: Vec<u8>,
    /// The time of the first piece of a line that was logged in partial pieces; the later
    /// pieces reuse it (Docker does, so `logs --since` keeps them together).
    pub(crate) partial_time: Option<String>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit(line, time)` for each complete line (with its `\n`) and for
    /// each 16 KiB piece of an over-long line (without).
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8], &str)) {
        while !data.is_empty() {
            match memchr(b'\n', data) {
                Some(i) => {
                    let (line, rest) = data.split_at(i + 1);
                    data = rest;
                    if self.pending.is_empty() {
                        self.emit_line(line, emit);
                    } else {
                        let mut whole = std::mem::take(&mut self.pending);
                        whole.extend_from_slice(line);
                        self.flush_full_pieces(&mut whole, emit);
                        self.emit_line(&whole, emit);
                    }
                }
                None => {
                    self.pending.extend_from_slice(data);
                    data = &[];
                    let mut p = std::mem::take(&mut self.pending);
                    self.flush_full_pieces(&mut p, emit);
                    self.pending = p;
                }
            }
        }
        if self.pending.capacity() > 2 * MAX_LINE && self.pending.len() < MAX_LINE {
            self.pending.shrink_to(MAX_LINE);
        }
    }

    /// Logs what is left as a partial line (end of stream).
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8], &str)) {
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            let t = self.partial_time.take().unwrap_or_else(now_rfc3339);
            emit(&p, &t);
        }
        self.pending = Vec::new();
    }

    /// While `buf` holds at least 16 KiB before its end (or before its final `\n`), logs
    /// 16 KiB pieces as partial lines.
    fn flush_full_pieces(&mut self, buf: &mut Vec<u8>, emit: &mut impl FnMut(&[u8], &str)) {
        let complete = buf.last() == Some(&b'\n');
        let mut start = 0;
        // A complete line of exactly 16 KiB + "\n" still fits Docker's buffer in pieces:
        // the copier logs a partial whenever its 16 KiB buffer is full without a newline.
        while buf.len() - start > MAX_LINE || (!complete && buf.len() - start == MAX_LINE) {
            let t = self.partial_time.get_or_insert_with(now_rfc3339).clone();
            emit(&buf[start..start + MAX_LINE], &t);
            start += MAX_LINE;
        }
        if start > 0 {
            buf.drain(..start);
        }
    }

    fn emit_line(&mut self, line: &[u8], emit: &mut impl FnMut(&[u8], &str)) {
        match self.partial_time.take() {
            Some(t) => emit(line, &t),
            None => emit(line, &now_rfc3339()),
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The current log file and its rotation.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_file: u32,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

fn open_log(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).mode(0o640);
    if truncate {
        o.truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

impl LogFile {
    pub fn open(path: &Path, max_size: u64, max_file: u32) -> io::Result<LogFile> {
        let file = open_log(path, false)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            buf: Vec::new(),
        })
    }

    /// Continues with an already open log file (after a handoff).
    pub fn from_file(cfg: &berth_shim::LogConfig, file: File) -> io::Result<LogFile> {
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: cfg.path.clone(),
            file,
            size,
            max_size: cfg.max_size,
            max_file: cfg.max_file.max(1),
            buf: Vec::new(),
        })
    }

    /// The open file (handed over with the other descriptors).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The settings it was opened with.
    pub fn config(&self) -> berth_shim::LogConfig {
        berth_shim::LogConfig {
            path: self.path.clone(),
            max_size: self.max_size,
            max_file: self.max_file,
        }
    }

    /// Appends one entry (rotating first if the file is full).
    pub fn write_entry(&mut self, line: &[u8], stream: &str, time: &str) -> io::Result<()> {
        self.buf.clear();
        encode_entry(&mut self.buf, line, stream, time);
        if self.max_size > 0 && self.size >= self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&self.buf)?;
        self.size += self.buf.len() as u64;
        if self.buf.capacity() > 4 * MAX_LINE {
            self.buf = Vec::new();
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let name = self.path.as_os_str().to_owned();
        let numbered = |i: u32| {
            let mut n = name.clone();
            n.push(format!(".{i}"));
            PathBuf::from(n)
        };
        if self.max_file >= 2 {
            remove_if_exists(&numbered(self.max_file - 1))?;
            for i in (2..self.max_file).rev() {
                rename_if_exists(&numbered(i - 1), &numbered(i))?;
            }
            rename_if_exists(&self.path, &numbered(1))?;
        } else {
            remove_if_exists(&self.path)?;
        }
        self.file = open_log(&self.path, true)?;
        self.size = 0;
        Ok(())
    }
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, String)> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut emit = |l: &[u8], t: &str| out.push((l.to_vec(), t.to_string()));
        for c in chunks {
            s.feed(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    #[test]
    fn lines_across_chunks() {
        let out = split(&[b"hel", b"lo\nwor", b"ld\n\nlast"]);
        let lines: Vec<&[u8]> = out.iter().map(|(l, _)| l.as_slice()).collect();
        assert_eq!(lines, [&b"hello\n"[..], b"world\n", b"\n", b"last"]);
    }

    #[test]
    fn long_lines_are_cut_in_16k_pieces_sharing_a_time() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let out = split(&[&input[..1000], &input[1000..]]);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].0.len(), MAX_LINE);
        assert_eq!(out[1].0.len(), MAX_LINE);
        assert_eq!(out[2].0, [&vec![b'x'; 10][..], b"\n"].concat());
        assert_eq!(out[0].1, out[1].1);
        assert_eq!(out[1].1, out[2].1);
        assert_eq!(out[3].0, b"next\n");
        // Exactly 16 KiB without a newline fills Docker's buffer: one partial piece.
        let out = split(&[&vec![b'y'; MAX_LINE]]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.len(), MAX_LINE);
    }

    #[test]
    fn rotation_keeps_max_file_files() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-log")
            .tempdir()
            .unwrap();
        let path = dir.path().join("c-json.log");
        let mut f = LogFile::open(&path, 100, 3).unwrap();
        for i in 0..20 {
            f.write_entry(
                format!("line {i}\n").as_bytes(),
                "stdout",
                "2026-01-01T00:00:00Z",
            )
            .unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        let cur = std::fs::read_to_string(&path).unwrap();
        assert!(cur.contains("line 19"), "{cur}");
        // Each rotated file was full when it was rotated.
        for n in ["c-json.log.1", "c-json.log.2"] {
            assert!(std::fs::metadata(dir.path().join(n)).unwrap().len() >= 100);
        }
        // max_file 1: the file starts over.
        let p1 = dir.path().join("one.log");
        let mut f = LogFile::open(&p1, 100, 1).unwrap();
        for i in 0..20 {
            f.write_entry(format!("line {i}\n").as_bytes(), "stdout", "t")
                .unwrap();
        }
        assert!(!dir.path().join("one.log.1").exists());
        assert!(std::fs::metadata(&p1).unwrap().len() < 200);
    }
}
