//! Foreground `run`/`exec`: forward signals to the container's process and wait for it,
//! like runc's signal handler.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Signals that are forwarded (everything catchable except what the terminal handling and
/// the child's death use).
pub fn forwarded() -> SigSet {
    let mut s = SigSet::all();
    for sig in [Signal::SIGKILL, Signal::SIGSTOP] {
        s.remove(sig);
    }
    s
}

/// Blocks the forwarded signals (before the container is created, so none is lost) and
/// returns a signalfd for them.
pub fn block() -> anyhow::Result<SignalFd> {
    let set = forwarded();
    set.thread_block()?;
    Ok(SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?)
}

/// The exit code of a wait status, shell style (128 + signal).
pub fn exit_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Reaps `pid` if it has exited.
pub fn try_reap(pid: i32) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return None,
            Ok(st) => {
                if let Some(c) = exit_code(st) {
                    return Some(c);
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some(255),
        }
    }
}

/// Forwards a signal to `pid` (ignoring a process that is already gone).
pub fn forward(pid: i32, signo: u32) {
    if let Ok(sig) = Signal::try_from(signo as i32) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
}
