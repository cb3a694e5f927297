//! The channel between the runtime and the process it creates: a `SOCK_SEQPACKET` socket
//! pair (one message per send, so no framing), close-on-exec so that the child's successful
//! `execve` shows up as end-of-file on the parent's side.
//!
//! ```text
//! parent                                   child (container init)
//!   clone3 ─────────────────────────────▶   (intermediate: Pid(grandchild) first)
//!   uid/gid maps, cgroup, oom_score_adj         mounts, devices ... (v1: in parallel with
//!   JoinCgroups(tasks fds) ─────────────▶       the cgroup's creation; joins, then binds
//!                                               the hierarchies under /sys/fs/cgroup)
//!   Go ─────────────────────────────────▶
//!                                      ◀── NeedHooks        (only with prestart/createRuntime)
//!   prestart + createRuntime hooks
//!   HooksDone ──────────────────────────▶   createContainer hooks, pivot_root, user, caps...
//!                                      ◀── Pty(fd)          (terminal: the pty master)
//!                                      ◀── Listener(fd)     (seccomp notify listener)
//!                                      ◀── Ready            (all set; next is the exec fifo / execve)
//!                                      ◀── Error(text)      (at any point; the child exits)
//! ```
//!
//! With an intermediate (namespace helper), the helper and the process it cloned share the
//! channel, and nothing orders the helper's `Pid` before the new process's first messages:
//! a helper preempted right after `clone` lets the process send its `Pty` (or `NeedHooks`,
//! `Listener`) first. [`Channel::recv_pid`] keeps such early messages for the next `recv`.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;

/// A message on the sync channel.
#[derive(Debug)]
pub enum Msg {
    Go,
    HooksDone,
    NeedHooks,
    Ready,
    Error(String),
    Pid(i32),
    Pty(OwnedFd),
    Listener(OwnedFd),
    /// The v1 `tasks` files to write "0" to (the cgroup was created after the clone).
    JoinCgroups(Vec<OwnedFd>),
}

/// The most descriptors one message carries (v1 hosts have a dozen hierarchies at most).
pub const MAX_FDS: usize = 32;

const GO: u8 = 1;
const HOOKS_DONE: u8 = 2;
const NEED_HOOKS: u8 = 3;
const READY: u8 = 4;
const ERROR: u8 = 5;
const PID: u8 = 6;
const PTY: u8 = 7;
const LISTENER: u8 = 8;
const JOIN_CGROUPS: u8 = 9;

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Messages received ahead of the one a caller waited for (see `recv_pid`).
    early: RefCell<VecDeque<Msg>>,
}

/// A connected pair (parent end, child end).
pub fn pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((Channel::new(a), Channel::new(b)))
}

impl Channel {
    fn new(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            early: RefCell::default(),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Drops this process's reference to the channel while keeping the descriptor number
    /// valid (it then refers to an unused eventfd), so the peer sees end-of-file once every
    /// other holder is gone.
    pub fn disconnect(&mut self) -> io::Result<()> {
        let placeholder = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        rustix::io::dup3(&placeholder, &mut self.fd, rustix::io::DupFlags::CLOEXEC)?;
        Ok(())
    }

    pub fn send(&self, msg: &Msg) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut fds: Vec<BorrowedFd<'_>> = Vec::new();
        match msg {
            Msg::Go => buf.push(GO),
            Msg::HooksDone => buf.push(HOOKS_DONE),
            Msg::NeedHooks => buf.push(NEED_HOOKS),
            Msg::Ready => buf.push(READY),
            Msg::Error(s) => {
                buf.push(ERROR);
                // Keep within one datagram even for huge messages.
                buf.extend_from_slice(&s.as_bytes()[..s.len().min(60_000)]);
            }
            Msg::Pid(p) => {
                buf.push(PID);
                buf.extend_from_slice(&p.to_le_bytes());
            }
            Msg::Pty(f) => {
                buf.push(PTY);
                fds.push(f.as_fd());
            }
            Msg::Listener(f) => {
                buf.push(LISTENER);
                fds.push(f.as_fd());
            }
            Msg::JoinCgroups(v) => {
                if v.len() > MAX_FDS {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} cgroup hierarchies (at most {MAX_FDS})", v.len()),
                    ));
                }
                buf.push(JOIN_CGROUPS);
                fds.extend(v.iter().map(|f| f.as_fd()));
            }
        }
        let iov = [IoSlice::new(&buf)];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            anc.push(SendAncillaryMessage::ScmRights(&fds));
        }
        loop {
            match rustix::net::sendmsg(&self.fd, &iov, &mut anc, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits for the namespace helper's report: `Pid`, or `Error`, or `None` at end-of-file.
    /// Messages the cloned process sent before it (it shares the channel and may run ahead
    /// of the helper) are kept, in order, for the following `recv` calls.
    pub fn recv_pid(&self) -> io::Result<Option<Msg>> {
        loop {
            match self.recv_wire()? {
                Some(m @ (Msg::Pty(_) | Msg::Listener(_) | Msg::NeedHooks | Msg::Ready)) => {
                    self.early.borrow_mut().push_back(m)
                }
                other => return Ok(other),
            }
        }
    }

    /// Receives one message; `Ok(None)` at end-of-file (the peer exec'd or exited).
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        if let Some(m) = self.early.borrow_mut().pop_front() {
            return Ok(Some(m));
        }
        self.recv_wire()
    }

    fn recv_wire(&self) -> io::Result<Option<Msg>> {
        // The next message's size first (a peek, without its descriptors): most messages
        // are a byte or five, and a 64 KiB buffer zeroed per message cost the container's
        // init 16 page faults before its exec.
        let mut resets = 0;
        let size = loop {
            match rustix::net::recv(&self.fd, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::TRUNC) {
                Ok((_, len)) => break len,
                Err(rustix::io::Errno::INTR) => continue,
                // A peer that exits with our message unread makes the next call fail with
                // ECONNRESET once; the message it sent before (its error) is still queued.
                Err(rustix::io::Errno::CONNRESET) if resets == 0 => resets += 1,
                Err(e) => return Err(e.into()),
            }
        };
        if size == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; size];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match rustix::net::recvmsg(&self.fd, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if resets == 0 => resets += 1,
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let mut received: Vec<OwnedFd> = Vec::new();
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                received.extend(fds);
            }
        }
        let one = |mut v: Vec<OwnedFd>| (v.len() == 1).then(|| v.pop()).flatten();
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sync message");
        let payload = &buf[1..n];
        Ok(Some(match buf[0] {
            GO => Msg::Go,
            HOOKS_DONE => Msg::HooksDone,
            NEED_HOOKS => Msg::NeedHooks,
            READY => Msg::Ready,
            ERROR => Msg::Error(String::from_utf8_lossy(payload).into_owned()),
            PID => Msg::Pid(i32::from_le_bytes(payload.try_into().map_err(|_| bad())?)),
            PTY => Msg::Pty(one(received).ok_or_else(bad)?),
            LISTENER => Msg::Listener(one(received).ok_or_else(bad)?),
            JOIN_CGROUPS => Msg::JoinCgroups(received),
            _ => return Err(bad()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_fds() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Go).unwrap();
        a.send(&Msg::Error("mount /proc: permission denied".into()))
            .unwrap();
        a.send(&Msg::Pid(4242)).unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        a.send(&Msg::Pty(r)).unwrap();
        assert!(matches!(b.recv().unwrap(), Some(Msg::Go)));
        assert!(matches!(b.recv().unwrap(), Some(Msg::Error(s)) if s.contains("/proc")));
        assert!(matches!(b.recv().unwrap(), Some(Msg::Pid(4242))));
        assert!(matches!(b.recv().unwrap(), Some(Msg::Pty(_))));
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }

    #[test]
    fn cgroup_join_carries_many_fds_in_order() {
        let (a, b) = pair().unwrap();
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..12).map(|_| rustix::pipe::pipe().unwrap()).collect();
        let writers: Vec<OwnedFd> = pipes
            .iter()
            .map(|(_, w)| rustix::io::dup(w).unwrap())
            .collect();
        a.send(&Msg::JoinCgroups(writers)).unwrap();
        a.send(&Msg::JoinCgroups(Vec::new())).unwrap();
        let Some(Msg::JoinCgroups(got)) = b.recv().unwrap() else {
            panic!("not a JoinCgroups");
        };
        assert_eq!(got.len(), 12);
        // Each received fd is the pipe it was sent as: a byte written reaches that pipe.
        for (i, (f, (r, _))) in got.iter().zip(&pipes).enumerate() {
            rustix::io::write(f, &[i as u8]).unwrap();
            let mut byte = [0u8; 1];
            rustix::io::read(r, &mut byte).unwrap();
            assert_eq!(byte[0], i as u8);
        }
        assert!(matches!(b.recv().unwrap(), Some(Msg::JoinCgroups(v)) if v.is_empty()));
        let too_many: Vec<OwnedFd> = (0..=MAX_FDS)
            .map(|_| rustix::io::dup(&pipes[0].1).unwrap())
            .collect();
        assert!(a.send(&Msg::JoinCgroups(too_many)).is_err());
    }

    #[test]
    fn messages_sent_before_the_pid_are_kept_in_order() {
        // The cloned process (pty, hooks request) ran ahead of the helper's pid report.
        let (parent, child) = pair().unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        child.send(&Msg::Pty(r)).unwrap();
        child.send(&Msg::NeedHooks).unwrap();
        child.send(&Msg::Pid(-77)).unwrap();
        child.send(&Msg::Ready).unwrap();
        assert!(matches!(parent.recv_pid().unwrap(), Some(Msg::Pid(-77))));
        assert!(matches!(parent.recv().unwrap(), Some(Msg::Pty(_))));
        assert!(matches!(parent.recv().unwrap(), Some(Msg::NeedHooks)));
        assert!(matches!(parent.recv().unwrap(), Some(Msg::Ready)));
        drop(child);
        assert!(parent.recv().unwrap().is_none());
    }

    #[test]
    fn an_error_before_the_pid_is_reported() {
        let (parent, child) = pair().unwrap();
        child
            .send(&Msg::Error("join the container's namespaces: EPERM".into()))
            .unwrap();
        assert!(matches!(parent.recv_pid().unwrap(), Some(Msg::Error(s)) if s.contains("EPERM")));
        drop(child);
        assert!(parent.recv_pid().unwrap().is_none());
    }
}
