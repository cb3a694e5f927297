//! Waiting for a foreground container process: signal forwarding and, when the process has
//! a terminal and no console socket was given, copying between our stdio and its pty.

use nix::sys::signalfd::SignalFd;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::{AsFd, OwnedFd};
use rustix::termios::{OptionalActions, Termios};

use crate::signals;

/// Puts our stdin in raw mode while a pty is proxied; restores it on drop.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let stdin = rustix::stdio::stdin();
        match rustix::termios::tcgetattr(stdin) {
            Ok(orig) => {
                let mut raw = orig.clone();
                raw.make_raw();
                let _ = rustix::termios::tcsetattr(stdin, OptionalActions::Now, &raw);
                RawMode(Some(orig))
            }
            Err(_) => RawMode(None),
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, t);
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// Waits for `pid` to exit, forwarding signals and proxying the pty; returns its exit code.
pub fn wait_foreground(pid: i32, sfd: &mut SignalFd, pty: Option<OwnedFd>) -> anyhow::Result<i32> {
    let _raw = pty.as_ref().map(|_| RawMode::enable());
    if let Some(m) = &pty {
        copy_winsize(m);
    }
    let mut stdin_open = pty.is_some();
    let mut master_open = pty.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let stdin = rustix::stdio::stdin();
        let mut fds = vec![PollFd::new(sfd, PollFlags::IN)];
        let stdin_idx = stdin_open.then(|| {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
            fds.len() - 1
        });
        let master_idx = match (&pty, master_open) {
            (Some(m), true) => {
                fds.push(PollFd::new(m, PollFlags::IN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let sig_ready = !fds[0].revents().is_empty();
        let stdin_ready = stdin_idx.is_some_and(|i| !fds[i].revents().is_empty());
        let master_ready = master_idx.is_some_and(|i| !fds[i].revents().is_empty());
        drop(fds);
        if master_ready && let Some(m) = &pty {
            match rustix::io::read(m, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => master_open = false,
                Ok(n) => write_all(rustix::stdio::stdout(), &buf[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => master_open = false,
            }
        }
        if stdin_ready && let Some(m) = &pty {
            match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => write_all(m.as_fd(), &buf[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if sig_ready && let Ok(Some(info)) = sfd.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGCHLD => {
                    if let Some(code) = signals::try_reap(pid) {
                        // Drain what the process wrote last.
                        if let Some(m) = &pty {
                            let _ = rustix::fs::fcntl_setfl(m, rustix::fs::OFlags::NONBLOCK);
                            while let Ok(n) = rustix::io::read(m, &mut buf) {
                                if n == 0 {
                                    break;
                                }
                                write_all(rustix::stdio::stdout(), &buf[..n]);
                            }
                        }
                        return Ok(code);
                    }
                }
                libc::SIGWINCH => {
                    if let Some(m) = &pty {
                        copy_winsize(m);
                    }
                }
                s => signals::forward(pid, s as u32),
            }
        }
    }
}

fn write_all(fd: impl AsFd, mut b: &[u8]) {
    while !b.is_empty() {
        match rustix::io::write(&fd, b) {
            Ok(n) => b = &b[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}
