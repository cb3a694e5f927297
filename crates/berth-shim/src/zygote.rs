//! The zygote: one parked standby that forks the others instead of berthd exec'ing each.
//!
//! Every `run` makes berthd spawn the next standby, and most of a standby's cost before its
//! hand-off is the same in every one: the exec of the memfd, the dynamic linking (ld.so's
//! CPU-feature probing traps to the hypervisor on a VM) and the runtime's start. The
//! zygote does that once and then forks, with `CLONE_PARENT`, a copy of itself for each
//! standby berthd asks for:
//!
//! ```text
//!  berthd                                         zygote (berth-shim --standby, stdin a
//!                                                 SEQPACKET socket; comm "berth-zygote")
//!  posix_spawn once, socketpair on stdin  ───▶    exec, linking (once)
//!  two pipes; sendmsg("f", SCM_RIGHTS      ───▶   recvmsg; clone3(CLONE_PARENT|CLONE_PIDFD)
//!    [stdin read end, stdout write end])           ├ child: dup2 them onto 0 and 1, drop
//!                                                  │   every other descriptor, return: from
//!                                                  │   here on exactly `berth-shim --standby`
//!  recvmsg: "+" pid, SCM_RIGHTS [pidfd]    ◀───    └ zygote: close both, reply, wait again
//!  berthd exits or is SIGKILLed            ───▶   recvmsg gives EOF: exit 0
//! ```
//!
//! - `CLONE_PARENT` makes the child berthd's child (its parent is the zygote's parent), so
//!   berthd reaps it and sees its exit through the pidfd; a dead zygote orphans nothing.
//! - The zygote is single-threaded (checked before each fork) and holds, when it forks,
//!   only stdio, the socket, the two pipe ends of *this* standby and the thread check's
//!   `/proc/self/stat`. The child replaces the socket (fd 0) with its stdin pipe and closes
//!   the zygote's others (what berthd passes to every child stays, as in an exec'd one), so no descriptor of another standby or of the zygote reaches a shim or a
//!   container. Signals, mask, rlimits, environment, cwd and umask are untouched since the
//!   exec, i.e. those of a fresh `berth-shim --standby` berthd spawns.
//! - The zygote is exec'd with the same arguments as a standby (`--standby`) so the forked
//!   shims show as `berth-shim --standby` in `ps`, as exec'd ones do; what makes it a zygote
//!   is its stdin being a socket (an exec'd standby's is a pipe). Its own name is
//!   `berth-zygote`; each child renames itself `berth-shim`.
//! - A fork keeps the zygote's address-space layout, stack canary and hash keys: standbys
//!   share them until the lean handoff re-executes each shim (`handoff.rs`).
//!
//! Replies: `+` and the child's pid (4 bytes, native order) with its pidfd, or `-` and an
//! error message. A request without exactly two descriptors is refused with `-`.

use berth_shim::{Kind, ShimError};
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::mem::MaybeUninit;

/// What [`serve`] returns: in the zygote when berthd went away, in a forked child when it is
/// a fresh standby.
pub enum Role {
    /// The zygote's end: berthd closed the socket.
    Done,
    /// A forked child, now `berth-shim --standby` with its stdin and stdout pipes.
    Standby,
}

/// Whether this `--standby` process is the zygote: its stdin is a socket.
pub fn is_zygote() -> bool {
    rustix::fs::fstat(rustix::stdio::stdin())
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_socket())
}

/// Forks a standby for each request on stdin until it reaches its end.
pub fn serve() -> Result<Role, ShimError> {
    // Not the host's cgroup layout (`standby::prepare`): each child reads it, so a standby
    // sees the layout of its fork, as an exec'd one sees that of its spawn, not that of the
    // zygote's start (berthd moved, hierarchies mounted since).
    let _ = rustix::thread::set_name(c"berth-zygote");
    let check = berth_sys::process::ThreadCheck::open()
        .map_err(|e| ShimError::internal(format!("open /proc/self/stat: {e}")))?;
    let sock = rustix::stdio::stdin();
    loop {
        let mut data = [0u8; 16];
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = match rustix::net::recvmsg(
            sock,
            &mut [std::io::IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(g) => g,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ShimError::internal(format!("zygote: recvmsg: {e}"))),
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        drop(control);
        if got.bytes == 0 && fds.is_empty() {
            return Ok(Role::Done);
        }
        let [stdin, stdout]: [OwnedFd; 2] = match fds.try_into() {
            Ok(pair) => pair,
            Err(_) => {
                if !reply_err(sock, "a fork request carries exactly two descriptors") {
                    return Ok(Role::Done);
                }
                continue;
            }
        };
        match berth_sys::process::fork(
            &check,
            berth_sys::process::CLONE_PARENT | berth_sys::process::CLONE_PIDFD,
            None,
        ) {
            Ok(berth_sys::process::Forked::Child) => {
                drop(check);
                become_standby(stdin, stdout)?;
                return Ok(Role::Standby);
            }
            Ok(berth_sys::process::Forked::Parent { pid, pidfd }) => {
                // Before the reply: berthd must see EOF on the child's stdout once the child
                // is gone, so nobody but the child may hold its write end.
                drop((stdin, stdout));
                let sent = match pidfd {
                    Some(pidfd) => reply_ok(sock, pid, pidfd),
                    None => reply_err(sock, "clone3 returned no pidfd"),
                };
                // berthd gave up on us (its timeout) or is gone: it will not wait on this
                // child, whose stdin pipe is closed, so the child exits at once; fork no more.
                if !sent {
                    return Ok(Role::Done);
                }
            }
            Err(e) => {
                drop((stdin, stdout));
                if !reply_err(sock, &format!("fork: {e}")) {
                    return Ok(Role::Done);
                }
            }
        }
    }
}

/// In the forked child: the two pipes become stdin and stdout; the socket (fd 0) goes.
fn become_standby(stdin: OwnedFd, stdout: OwnedFd) -> Result<(), ShimError> {
    let dup = |e| ShimError::new(Kind::Internal, format!("zygote child: dup2: {e}"));
    rustix::stdio::dup2_stdin(&stdin).map_err(dup)?;
    rustix::stdio::dup2_stdout(&stdout).map_err(dup)?;
    drop((stdin, stdout));
    Ok(())
}

/// Whether the reply was sent.
fn reply_ok(sock: rustix::fd::BorrowedFd<'_>, pid: i32, pidfd: OwnedFd) -> bool {
    let mut msg = [0u8; 5];
    msg[0] = b'+';
    msg[1..].copy_from_slice(&pid.to_ne_bytes());
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [pidfd.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[std::io::IoSlice::new(&msg)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .is_ok()
}

/// Whether the reply was sent.
fn reply_err(sock: rustix::fd::BorrowedFd<'_>, message: &str) -> bool {
    let mut msg = Vec::with_capacity(message.len() + 1);
    msg.push(b'-');
    msg.extend_from_slice(message.as_bytes());
    rustix::net::send(sock, &msg, SendFlags::NOSIGNAL).is_ok()
}
