//! Plumbing between the terminal and a container: copying a hijacked attach stream (raw or
//! multiplexed) to stdout/stderr, stdin to the container, raw terminal mode, window-size
//! propagation and signal proxying (in the waiting thread: [`SignalProxy`]).

use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use berth_api::client::{Client, Hijacked, Host, Stream};
use berth_api::query::{ContainerKillQuery, ContainerResizeQuery};
use berth_api::stream::Demuxer;
use rustix::event::{PollFd, PollFlags, poll};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::SignalOnly;

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

/// Forwards [`PROXIED`] signals to a container (docker's `--sig-proxy`) and, with a TTY,
/// its window-size changes (`SIGWINCH`), from the thread that waits for the container: the
/// handlers write to a self-pipe, and [`SignalProxy::wait_readable`] polls that pipe with
/// the connection the thread is about to read (the attach stream, then the `wait`). A
/// forwarding thread of its own cost `run --rm` its spawn (a stack, a malloc arena) and,
/// worse, the exit: the process is gone only when that thread has been scheduled to die,
/// 0.04–1 ms after the main thread's `exit_group` on this busy 2-core VM.
///
/// Signals are handled from here on until the process exits, like the thread did: one that
/// arrives after the last read is not forwarded (the container has exited by then).
pub struct SignalProxy<'c> {
    client: &'c Client,
    id: String,
    delivery: SignalDelivery<UnixStream, SignalOnly>,
}

impl<'c> SignalProxy<'c> {
    /// Catches the signals to forward to container `id` (none: `Ok(None)`). A `tcp://`
    /// daemon's TLS connections cannot be polled, so there a thread forwards them instead
    /// (also `Ok(None)`: nothing for the caller to poll).
    pub fn start(client: &'c Client, id: &str, tty: bool, proxy: bool) -> io::Result<Option<Self>> {
        let mut sigs: Vec<i32> = Vec::new();
        if proxy {
            sigs.extend(PROXIED.iter().map(|(n, _)| *n));
        }
        if tty {
            sigs.push(signal_hook::consts::SIGWINCH);
        }
        if sigs.is_empty() {
            return Ok(None);
        }
        if !matches!(client.host(), Host::Unix(_)) {
            let client: &'static Client = Box::leak(Box::new(Client::new(client.host().clone())));
            let mut signals = signal_hook::iterator::Signals::new(&sigs)?;
            let id = id.to_owned();
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        forward(client, &id, sig);
                    }
                })?;
            return Ok(None);
        }
        let (read, write) = UnixStream::pair()?;
        let delivery = SignalDelivery::with_pipe(read, write, SignalOnly, &sigs)?;
        Ok(Some(SignalProxy {
            client,
            id: id.to_owned(),
            delivery,
        }))
    }

    /// Returns once `fd` is readable (or closed), forwarding the signals that arrive
    /// meanwhile.
    pub fn wait_readable(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        loop {
            let mut fds = [
                PollFd::new(&fd, PollFlags::IN),
                PollFd::new(self.delivery.get_read(), PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                // a handler ran: its byte is in the pipe for the next poll
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = !fds[0].revents().is_empty();
            if !fds[1].revents().is_empty() {
                let sigs: Vec<i32> = self.delivery.pending().collect();
                for sig in sigs {
                    forward(self.client, &self.id, sig);
                }
            }
            if ready {
                return Ok(());
            }
        }
    }
}

/// Passes one caught signal on: `SIGWINCH` as a resize, the others as a kill (best effort).
fn forward(client: &Client, id: &str, sig: i32) {
    if sig == signal_hook::consts::SIGWINCH {
        resize(client, id);
    } else if let Some((_, name)) = PROXIED.iter().find(|(n, _)| *n == sig) {
        let _ = client.container_kill(
            id,
            &ContainerKillQuery {
                signal: Some((*name).to_owned()),
            },
        );
    }
}

/// A hijacked stream read through a [`SignalProxy`]: a read that would wait for the socket
/// waits in the proxy's poll first.
pub struct Proxied<'p, 'c> {
    pub conn: BufReader<Stream>,
    pub proxy: Option<&'p mut SignalProxy<'c>>,
}

impl Read for Proxied<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(proxy) = self.proxy.as_deref_mut()
            && self.conn.buffer().is_empty()
            && let Some(fd) = self.conn.get_ref().poll_fd()
        {
            proxy.wait_readable(fd)?;
        }
        self.conn.read(buf)
    }
}
