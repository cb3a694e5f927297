//! Container state on disk and the status derived from the live system.
//!
//! ```text
//! <root>/                       --root (default /run/berth-runtime), mode 0700
//!   <id>/                       one directory per container, mode 0700
//!     state.json                written once at create (atomic_write); rewritten by `update`
//!     exec.fifo                 exists while the container is "created"; `start` removes it
//! ```
//!
//! The status is never stored: it is derived each time from the init process (alive, not a
//! zombie, same start time as recorded, so a reused pid is not mistaken for it), the exec
//! fifo, and the freezer state. That keeps state.json write-once and crash-safe.
//!
//! A held container (`CreateOptions::held`) has none of these files: its creator keeps the
//! [`StateFile`] in memory and gates the start with a pipe (docs/runtime.md, "State").

use berth_oci::spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// OCI runtime spec version we implement.
pub const OCI_VERSION: &str = "1.2.1";

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const EXEC_FIFO: &str = "exec.fifo";

/// A container's lifecycle status (OCI `status`, plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateFile {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (clock ticks after boot, /proc/PID/stat field 22).
    pub pid_start_time: u64,
    /// RFC 3339 creation time.
    pub created: String,
    /// The (validated) configuration the container was created from.
    pub config: Spec,
    /// PID 1 is the built-in reaper, not the app.
    #[serde(default)]
    pub init: bool,
    /// The seccomp filter cache the container was created with (exec reuses it).
    #[serde(default)]
    pub seccomp_cache: Option<PathBuf>,
    /// Created with [`crate::CreateOptions::recycle_cgroup`] and resources that allow it: the
    /// tag its cgroup is set aside under at [`crate::Container::delete_recycling`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_tag: Option<String>,
}

/// The OCI state (what `state` prints and hooks read on stdin), with runc's extra fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl StateFile {
    pub fn oci_state(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.into(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.config.annotations().clone().unwrap_or_default(),
        }
    }

    pub(crate) fn load(dir: &Path, id: &str) -> Result<StateFile> {
        let path = dir.join(STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::io(
                format!(
                    "parse {} (delete the container with --force)",
                    path.display()
                ),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::io("encode state", e))?;
        replace_file(&dir.join(STATE_FILE), &bytes, 0o600)
    }
}

/// Replaces `path` atomically (temp file + rename) without fsync.
///
/// Runtime state describes processes, which do not survive a reboot either, so durability
/// buys nothing; atomicity (no torn file after a crash of the runtime) is what matters. On a
/// disk-backed `/run` an fsync costs milliseconds on every container start.
pub(crate) fn replace_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Is the process `pid` alive and the same one that started at `start_time`?
pub(crate) fn process_alive(pid: i32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some((state, st)) => !matches!(state, 'Z' | 'X' | 'x') && st == start_time,
        None => false,
    }
}

/// Reads a small procfs file with one buffer. `std::fs::read_to_string` sizes its buffer
/// from the file's size, which procfs reports as 0, and then probes with reads growing from
/// 32 bytes: 10 syscalls for a 600-byte `/proc/PID/stat` instead of 4.
pub(crate) fn read_proc_text(path: &str) -> Option<String> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(n * 2, 0);
        }
        match rustix::io::read(&fd, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// (state char, start time) of a process from /proc/PID/stat.
pub(crate) fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = read_proc_text(&format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may itself contain ") ".
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; start time is field 22, i.e. 19 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Validates a container id: runc's rules (`[\w+-.]+`, not `.` or `..`), plus no leading
/// `.` (names starting with a dot are reserved for the runtime's own files in `--root`)
/// and at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id.starts_with('.') {
        return bad("must not start with '.'");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("only letters, digits and _ + - . are allowed (no '/')");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "berth-test-1", "A_b+c.d", "sha256.abc"] {
            validate_id(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            ".hidden",
            "a b",
            "ü",
            &"x".repeat(1025),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn proc_text_is_read_whole() {
        let big = read_proc_text("/proc/self/mountinfo").unwrap();
        assert_eq!(
            big,
            std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        );
        assert!(read_proc_text("/proc/self/no-such-file").is_none());
    }

    #[test]
    fn proc_stat_of_self() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
        assert!(process_alive(std::process::id() as i32, start));
        assert!(!process_alive(std::process::id() as i32, start + 1));
        assert!(proc_stat(0).is_none());
    }
}
