//! `berth-shim --standby`: a shim spawned before its container exists.
//!
//! Exec'ing the shim and linking it (libseccomp, libgcc_s, libm, libc) is the same work for
//! every container, so berthd does it ahead of time: it keeps one standby shim that has
//! already been exec'd, linked, has taken its startup channel and detected the host's
//! cgroup layout, and is blocked reading its stdin (a pipe berthd holds). A container start
//! hands it the state directory:
//!
//! ```text
//!  berthd                                       standby (berth-shim --standby)
//!  posix_spawn, stdin + stdout pipes   ───▶     exec, dynamic linking, startup channel,
//!  (off any request's path)                     host cgroup layout; read(stdin) blocks
//!  write "<state_dir>\n", close stdin  ───▶     from here on exactly `berth-shim <state_dir>`:
//!  read the startup line (stdout)      ◀───     setup, the startup line, serve
//!  berthd exits or is SIGKILLed        ───▶     read gives EOF: exit 0 at once, quietly
//! ```
//!
//! berthd forks standbys from a parked one (the zygote, `zygote.rs`) rather than exec'ing
//! each; the forked child continues here, from its pipes on exactly the exec'd standby.
//!
//! Before the hand-off the standby holds nothing of any container: no state directory, no
//! cgroup, no file of one. Its only tie is the pipe on stdin, so it can never outlive its
//! spawner: the kernel closes berthd's end when berthd goes, however it goes.
//!
//! Its control socket it binds ahead too, when berthd names a directory for that
//! (`berth-shim --standby <socket_dir>`): `<socket_dir>/<pid>.sock`, renamed to
//! `<state_dir>/shim.sock` at the hand-off ([`PreBound`]). A bind creates an inode, and on a
//! journal-less ext4 exec root (this machine's `/run`) every inode allocation scans past the
//! inodes deleted in the last ~30 s: 0.3–0.4 ms of kernel CPU per bind after a few seconds of
//! back-to-back runs, on the container's path; the rename allocates nothing. The standby
//! removes its socket when it exits without a container; one killed before its hand-off
//! leaves it, and berthd empties the directory when it starts.

use berth_shim::{Kind, ShimError};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// argv[1] of a standby (argv[2], if given, is the directory to bind its socket in).
pub const STANDBY_FLAG: &str = "--standby";

/// A control socket bound before the hand-off, under a name of the standby's own. The setup
/// renames it into the state directory ([`PreBound::move_to`]); dropped before that (the
/// standby exits without a container, or its setup fails first), it removes its name.
pub struct PreBound {
    listener: UnixListener,
    name: OwnName,
}

/// The socket's name while it is the standby's: removed on drop unless disarmed.
struct OwnName(Option<PathBuf>);

impl Drop for OwnName {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl PreBound {
    /// Binds `<dir>/<pid>.sock` (a file left by a killed standby whose pid we now have is
    /// replaced). `None` when that fails: the setup then binds in the state directory.
    pub fn bind(dir: &Path) -> Option<PreBound> {
        use std::os::fd::AsRawFd;
        let file = format!("{}.sock", std::process::id());
        let path = dir.join(&file);
        let dir_fd = std::fs::File::open(dir).ok()?;
        // `sun_path` holds 107 bytes: a long directory is reached through its descriptor.
        let target = if path.as_os_str().len() < 100 {
            path.clone()
        } else {
            PathBuf::from(format!("/proc/self/fd/{}/{file}", dir_fd.as_raw_fd()))
        };
        let listener = match UnixListener::bind(&target) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let _ = std::fs::remove_file(&path);
                UnixListener::bind(&target).ok()?
            }
            Err(_) => return None,
        };
        let name = OwnName(Some(path));
        listener.set_nonblocking(true).ok()?;
        Some(PreBound { listener, name })
    }

    /// Renames the socket to `dest` (replacing what is there) and hands out the listener;
    /// `None` (and the name removed) when the rename fails, e.g. across filesystems.
    pub fn move_to(self, dest: &Path) -> Option<UnixListener> {
        let PreBound { listener, mut name } = self;
        std::fs::rename(name.0.as_ref()?, dest).ok()?;
        name.0 = None;
        Some(listener)
    }
}

/// The longest hand-off line accepted (a path longer than `PATH_MAX` cannot be opened).
const MAX_LINE: usize = 4096;

/// The container-independent work a shim would otherwise do after its hand-off: the host's
/// cgroup layout (`/proc/self/mountinfo`, `/proc/self/cgroup`) is read once per process and
/// kept, so the container's create finds it ready. A failure is not cached: the create
/// detects again and reports it. The name comes first: exec'd from berthd's memfd, a
/// standby would otherwise show as its descriptor's number ("14") in `ps` while it waits.
/// With `socket_dir`, the control socket is bound too ([`PreBound`]).
pub fn prepare(socket_dir: Option<&Path>) -> Option<PreBound> {
    let _ = rustix::thread::set_name(c"berth-shim");
    let _ = berth_cgroups::Hierarchy::host();
    socket_dir.and_then(PreBound::bind)
}

/// Blocks until the spawner writes the state directory as one line on stdin. `Ok(None)`
/// when stdin reached its end first (the spawner went away; a partial line counts as
/// none): the standby then exits without touching anything.
pub fn wait_for_state_dir() -> Result<Option<PathBuf>, ShimError> {
    let line = match read_line(rustix::stdio::stdin(), MAX_LINE)? {
        Some(l) => l,
        None => return Ok(None),
    };
    parse_line(line).map(Some)
}

/// The state directory from the hand-off line (without its newline).
fn parse_line(line: Vec<u8>) -> Result<PathBuf, ShimError> {
    if line.is_empty() {
        return Err(ShimError::new(
            Kind::Invalid,
            "the standby was handed an empty state directory (the spawner must write \
             \"<state_dir>\\n\" on its stdin)",
        ));
    }
    if line.contains(&0) {
        return Err(ShimError::new(
            Kind::Invalid,
            "the standby was handed a state directory containing a NUL byte",
        ));
    }
    Ok(PathBuf::from(OsString::from_vec(line)))
}

/// Reads up to the first newline (returned without it). `None` at EOF before a newline.
fn read_line(fd: rustix::fd::BorrowedFd<'_>, max: usize) -> Result<Option<Vec<u8>>, ShimError> {
    use rustix::io::Errno;
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                let chunk = &buf[..n];
                if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
                    line.extend_from_slice(&chunk[..end]);
                    return if line.len() > max {
                        Err(too_long(max))
                    } else {
                        Ok(Some(line))
                    };
                }
                line.extend_from_slice(chunk);
                if line.len() > max {
                    return Err(too_long(max));
                }
            }
            Err(Errno::INTR) => {}
            // A spawner that made the pipe non-blocking on our side too.
            Err(Errno::AGAIN) => {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                let _ = rustix::event::poll(&mut fds, None);
            }
            Err(e) => {
                return Err(ShimError::internal(format!(
                    "read the state directory from the hand-off pipe (stdin): {e}"
                )));
            }
        }
    }
}

fn too_long(max: usize) -> ShimError {
    ShimError::new(
        Kind::Invalid,
        format!("the standby was handed a state directory longer than {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    fn read_from(bytes: &[u8], max: usize) -> Result<Option<Vec<u8>>, ShimError> {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        w.write_all(bytes).unwrap();
        drop(w);
        read_line(r.as_fd(), max)
    }

    #[test]
    fn a_line_is_the_state_dir_and_eof_before_a_newline_is_none() {
        assert_eq!(
            read_from(b"/run/berth/containers/abc\n", 4096).unwrap(),
            Some(b"/run/berth/containers/abc".to_vec())
        );
        // Anything after the newline is not ours to read.
        assert_eq!(read_from(b"/a\n/b\n", 4096).unwrap(), Some(b"/a".to_vec()));
        assert_eq!(read_from(b"", 4096).unwrap(), None);
        assert_eq!(read_from(b"/run/berth/cont", 4096).unwrap(), None);
    }

    #[test]
    fn bad_lines_are_invalid_with_a_reason() {
        let e = read_from(&[b'x'; 600], 100).unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        assert!(e.message.contains("longer than 100 bytes"), "{}", e.message);
        let e = parse_line(Vec::new()).unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        assert!(e.message.contains("empty state directory"), "{}", e.message);
        let e = parse_line(b"/a\0b".to_vec()).unwrap_err();
        assert!(e.message.contains("NUL"), "{}", e.message);
        assert_eq!(
            parse_line(b"/run/x".to_vec()).unwrap(),
            PathBuf::from("/run/x")
        );
    }
}
