//! Plumbing between the terminal and a container: copying a hijacked attach stream (raw or
//! multiplexed) to stdout/stderr, stdin to the container, raw terminal mode, window-size
//! propagation and signal proxying.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use berth_api::client::{Client, Hijacked};
use berth_api::query::{ContainerKillQuery, ContainerResizeQuery};
use berth_api::stream::Demuxer;

/// Why copying a container's output stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The stream from the daemon failed.
    #[error("error reading the container's output: {}", go_text(.0))]
    Read(#[source] io::Error),
    /// Our stdout or stderr failed (e.g. a closed pipe), worded as docker's
    /// `write /dev/stdout: broken pipe`.
    #[error("write {path}: {}", go_text(.source))]
    Write {
        path: &'static str,
        #[source]
        source: io::Error,
    },
}

/// An OS error as Go prints it: the lowercase strerror text, without Rust's `(os error N)`.
pub fn go_text(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_owned(),
        _ => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) if e.raw_os_error().is_some() => first.to_lowercase().chain(c).collect(),
        _ => s,
    }
}

/// A writer that remembers whether a write to it failed (so a failed copy can tell a
/// broken stdout from a broken stream).
struct Side<W> {
    inner: W,
    path: &'static str,
    failed: bool,
}

impl<W: Write> Write for Side<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// Copies the container's output until the daemon closes the stream. A failed write to
/// stdout/stderr is [`CopyError::Write`]: callers stop at once, like docker, rather than
/// wait for a container nobody can hear any more.
pub fn copy_output<R: Read>(reader: R, multiplexed: bool) -> Result<(), CopyError> {
    let mut out = Side {
        inner: io::stdout().lock(),
        path: "/dev/stdout",
        failed: false,
    };
    let mut err = Side {
        inner: io::stderr(),
        path: "/dev/stderr",
        failed: false,
    };
    let result = if multiplexed {
        Demuxer::new(reader).copy_to(&mut out, &mut err)
    } else {
        copy_raw(reader, &mut out)
    };
    result.map_err(|source| {
        let broken = [&out.failed, &err.failed]
            .into_iter()
            .zip([out.path, err.path])
            .find_map(|(failed, path)| failed.then_some(path));
        match broken {
            Some(path) => CopyError::Write { path, source },
            None => CopyError::Read(source),
        }
    })
}

fn copy_raw<R: Read, W: Write>(mut reader: R, out: &mut W) -> io::Result<()> {
    let mut buf = [0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

/// Starts a thread copying stdin to the container; half-closes the connection at EOF so
/// the container sees end of input.
pub fn spawn_stdin_copy(h: &Hijacked) -> io::Result<()> {
    let mut writer = h.writer.try_clone()?;
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if writer.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Write);
        })?;
    Ok(())
}

/// Puts the terminal on stdin into raw mode; restores it when dropped.
pub struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    /// Raw mode for stdin if it is a terminal; `None` otherwise.
    pub fn enable() -> Option<RawTerminal> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        if !rustix::termios::isatty(fd) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            io::stdin().as_fd(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The size of the terminal on stdout, if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let out = io::stdout();
    if !rustix::termios::isatty(out.as_fd()) {
        return None;
    }
    let ws = rustix::termios::tcgetwinsize(out.as_fd()).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Tells the daemon the terminal's size (best effort).
pub fn resize(client: &Client, id: &str) {
    if let Some((h, w)) = terminal_size()
        && h > 0
        && w > 0
    {
        let _ = client.container_resize(
            id,
            &ContainerResizeQuery {
                h: h as u32,
                w: w as u32,
            },
        );
    }
}

/// Signals the CLI forwards to the container (docker's sig-proxy), by number and name.
pub const PROXIED: &[(i32, &str)] = &[
    (signal_hook::consts::SIGINT, "SIGINT"),
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGHUP, "SIGHUP"),
    (signal_hook::consts::SIGQUIT, "SIGQUIT"),
    (signal_hook::consts::SIGUSR1, "SIGUSR1"),
    (signal_hook::consts::SIGUSR2, "SIGUSR2"),
];

/// Starts a thread that forwards [`PROXIED`] signals to container `id` and, when `tty`,
/// propagates window-size changes. Runs until the process exits.
pub fn spawn_signal_proxy(
    client: &'static Client,
    id: String,
    tty: bool,
    proxy: bool,
) -> io::Result<()> {
    let mut sigs: Vec<i32> = Vec::new();
    if proxy {
        sigs.extend(PROXIED.iter().map(|(n, _)| *n));
    }
    if tty {
        sigs.push(signal_hook::consts::SIGWINCH);
    }
    if sigs.is_empty() {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new(&sigs)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == signal_hook::consts::SIGWINCH {
                    resize(client, &id);
                    continue;
                }
                if let Some((_, name)) = PROXIED.iter().find(|(n, _)| *n == sig) {
                    let _ = client.container_kill(
                        &id,
                        &ContainerKillQuery {
                            signal: Some((*name).to_owned()),
                        },
                    );
                }
            }
        })?;
    Ok(())
}
