//! The built-in init (`init: true`): the container's PID 1 stays this tiny loop, which forks
//! the app, forwards every signal it gets to it, reaps all zombies (orphans are re-parented
//! to PID 1 in a pid namespace), and exits with the app's status (128 + signal if the app
//! was killed), like tini.
//!
//! It runs after the container is fully set up (user, capabilities, seccomp already
//! applied), so it holds no more privilege than the app.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::CStr;

use crate::child::Common;
use crate::sync::Msg;
use berth_sys::process::{CStrArray, Forked, exit_now};

pub(crate) fn run(c: &mut Common<'_>, program: &CStr, env: &CStrArray) -> ! {
    let all = SigSet::all();
    // Block first, so no signal is lost between the fork and the wait loop.
    let _ = all.thread_block();
    let check = match c
        .thread_check
        .take()
        .map_or_else(crate::child::thread_check, Ok)
    {
        Ok(c) => c,
        Err(e) => {
            let _ = c.chan.send(&Msg::Error(e));
            exit_now(1)
        }
    };
    let app = match berth_sys::process::fork(&check, 0, None) {
        Ok(Forked::Child) => {
            // Dispositions are already default (the init reset them); only the mask is ours.
            let _ = berth_sys::process::reset_signals(Some(0));
            let e = berth_sys::process::execve(program, &c.process.args, env);
            let _ = c.chan.send(&Msg::Error(format!(
                "exec {:?}: {}",
                program,
                e.to_string().to_lowercase()
            )));
            exit_now(127)
        }
        Ok(Forked::Parent { pid, .. }) => pid,
        Err(e) => {
            let _ = c
                .chan
                .send(&Msg::Error(format!("fork the app under the init: {e}")));
            exit_now(1)
        }
    };
    if c.process.terminal {
        // The app gets its own process group in the foreground of the terminal, so ^C
        // reaches it once (not once directly and once forwarded).
        let _ = nix::unistd::setpgid(Pid::from_raw(app), Pid::from_raw(app));
        let _ = nix::unistd::tcsetpgrp(std::io::stdin(), Pid::from_raw(app));
    }
    // The runtime sees the sync channel close when the app execs; the init keeps no end.
    let _ = c.chan.disconnect();
    let mut app_status: Option<i32> = None;
    loop {
        // Reap everything that is dead; note the app's status.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    if pid.as_raw() == app {
                        app_status = Some(code);
                    }
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    if pid.as_raw() == app {
                        app_status = Some(128 + sig as i32);
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Some(code) = app_status {
            exit_now(code);
        }
        match all.wait() {
            Ok(Signal::SIGCHLD) => continue,
            Ok(sig) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(app), sig);
            }
            Err(_) => continue,
        }
    }
}
