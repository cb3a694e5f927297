//! `berth-shim <state_dir>`: supervises one container (see `docs/shim.md` and the library's
//! `protocol` module for the contract with berthd). `berth-shim --standby` is the same shim
//! spawned ahead of its container; it reads the state directory from stdin (see
//! `standby.rs`); one whose stdin is a socket is the zygote that forks the others (see
//! `zygote.rs`).
//!
//! Single-threaded on purpose: the runtime library forks, and one epoll loop is all an
//! idle container's supervisor needs (memory per container is the product's density).
#![forbid(unsafe_code)]

/// Writes a diagnostic to stderr, ignoring failures: `eprintln!` panics when stderr is a
/// pipe whose reader went away (berthd died), and a shim must outlive berthd.
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "berth-shim: {}", format_args!($($arg)*));
    }};
}

mod backend;
mod handoff;
mod log;
mod server;
mod standby;
mod zygote;

use berth_shim::{ErrorReply, Startup};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the one startup line goes: fd 3 when the spawner passed a pipe there (the
/// contract), else stdout (what a plain `Command::stdout(piped())` gives; berthd spawns
/// shims that way, with `posix_spawn`).
enum Channel {
    /// Fd 3, or a private copy of stdout: closed right after the line.
    Own(File),
    Stdout,
    /// The line is out (a shim sends one line, however its setup ends).
    Sent,
}

impl Channel {
    fn open() -> Channel {
        use std::os::unix::fs::FileTypeExt;
        let fd3 = std::path::Path::new("/proc/self/fd/3");
        let is_pipe = std::fs::metadata(fd3)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false);
        let ch = match is_pipe.then(|| berth_sys::process::take_inherited_fd(3)) {
            // Ours now: closed right after the line, so berthd also sees EOF.
            Some(Ok(fd)) => Channel::Own(File::from(fd)),
            _ => Self::take_stdout(),
        };
        // Anything else inherited must not reach the container or the runtime.
        let _ = berth_sys::process::cloexec_from(3);
        ch
    }

    /// Moves the spawner's stdout to a private close-on-exec descriptor and points stdout
    /// at /dev/null, so that nothing the shim starts before the line (the runtime, the
    /// container) inherits the spawner's pipe.
    fn take_stdout() -> Channel {
        let Ok(null) = File::options().write(true).open("/dev/null") else {
            return Channel::Stdout;
        };
        match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdout(), 3) {
            Ok(own) => {
                if rustix::stdio::dup2_stdout(&null).is_err() {
                    return Channel::Stdout;
                }
                Channel::Own(File::from(own))
            }
            Err(_) => Channel::Stdout,
        }
    }

    /// Sends the line, once: later calls do nothing (a setup that fails after its
    /// container was announced cannot take the announcement back; see `Shim::setup`).
    fn send(&mut self, msg: &Startup) {
        let line = msg.to_line();
        match std::mem::replace(self, Channel::Sent) {
            Channel::Own(mut f) => {
                let _ = f.write_all(&line);
            }
            Channel::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&line);
                let _ = out.flush();
                drop(out);
                // Nobody reads stdout after the line; keep later writes from blocking or
                // failing on a pipe the spawner closed.
                if let Ok(null) = File::options().write(true).open("/dev/null") {
                    let _ = rustix::stdio::dup2_stdout(&null);
                }
            }
            Channel::Sent => {}
        }
    }

    /// A line before the startup line (the listening notice); the channel stays open.
    fn notice(&mut self, msg: &Startup) {
        let line = msg.to_line();
        match self {
            Channel::Own(f) => {
                let _ = f.write_all(&line);
            }
            Channel::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&line);
                let _ = out.flush();
            }
            Channel::Sent => {}
        }
    }

    fn sent(&self) -> bool {
        matches!(self, Channel::Sent)
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == handoff::MONITOR_FLAG)
    {
        // The second image of a running shim (see handoff.rs).
        return match server::Shim::resume() {
            Ok(shim) => {
                shim.run();
                ExitCode::SUCCESS
            }
            Err(e) => {
                warn!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    // `None`: a standby, told its state directory later (and where to bind its socket
    // ahead, if anywhere).
    let (dir, socket_dir) = match (args.next(), args.next(), args.next()) {
        (Some(a), sockets, None) if a == standby::STANDBY_FLAG => {
            (None, sockets.map(PathBuf::from))
        }
        (Some(d), None, None) if d != "--help" && d != "-h" => (Some(PathBuf::from(d)), None),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: berth-shim <state_dir>\n       berth-shim --standby [<socket_dir>]   \
                 (reads <state_dir> from stdin)\n\n\
                 Supervises one container described by <state_dir>/shim.json; spawned by berthd \
                 (see docs/shim.md)."
            );
            return ExitCode::from(2);
        }
    };
    if dir.is_none() && zygote::is_zygote() {
        // Returns in a forked child only: from here on a standby like any other.
        match zygote::serve() {
            Ok(zygote::Role::Standby) => {}
            Ok(zygote::Role::Done) => return ExitCode::SUCCESS,
            Err(e) => {
                warn!("{}", e.message);
                return ExitCode::FAILURE;
            }
        }
    }
    let mut channel = Channel::open();
    let (dir, prebound) = match dir {
        Some(d) => (d, None),
        None => {
            let prebound = standby::prepare(socket_dir.as_deref());
            match standby::wait_for_state_dir() {
                Ok(Some(d)) => (d, prebound),
                // The spawner went away before handing over a container.
                Ok(None) => return ExitCode::SUCCESS,
                Err(e) => {
                    drop(prebound);
                    channel.send(&Startup::Err(ErrorReply {
                        error: e.message,
                        kind: e.kind,
                    }));
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    // The line goes out as soon as the container exists, before the rest of the setup:
    // berthd's requests (the monitor's `wait`, an attach, the start) queue on the bound
    // socket meanwhile and are served in one go when the loop begins.
    let setup = server::Shim::setup(&dir, prebound, &mut |msg| match msg {
        Startup::Listening { .. } => channel.notice(msg),
        _ => channel.send(msg),
    });
    match setup {
        Ok(shim) => {
            shim.run();
            ExitCode::SUCCESS
        }
        // After the line (the setup killed and removed its container): berthd learns it
        // from the socket, which is gone, and records the exit as unknown.
        Err(e) if channel.sent() => {
            warn!("{}", e.message);
            ExitCode::FAILURE
        }
        Err(e) => {
            channel.send(&Startup::Err(ErrorReply {
                error: e.message,
                kind: e.kind,
            }));
            ExitCode::FAILURE
        }
    }
}
