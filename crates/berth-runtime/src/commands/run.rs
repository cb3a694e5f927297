//! `run`: create and start at once (no exec fifo round trip). In the foreground it forwards
//! signals, proxies the terminal if there is no console socket, waits, deletes the
//! container and exits with the process's status.

use berth_container::StartMode;

use crate::cli::{Command, Flag, Matches, flag, opt};

const FLAGS: &[Flag] = &[
    opt(
        "bundle",
        Some('b'),
        "DIR",
        "path to the bundle directory (default .)",
    ),
    opt(
        "console-socket",
        None,
        "PATH",
        "unix socket that receives the pty master",
    ),
    opt(
        "pid-file",
        None,
        "FILE",
        "write the container process's pid here",
    ),
    flag(
        "no-pivot",
        None,
        "use MS_MOVE + chroot instead of pivot_root (ramfs roots)",
    ),
    flag("no-new-keyring", None, "accepted for compatibility"),
    opt(
        "preserve-fds",
        None,
        "N",
        "pass N extra descriptors (3..3+N) to the container",
    ),
    flag("detach", Some('d'), "do not wait for the container"),
    flag("keep", None, "keep the container's state after it exits"),
];

pub const COMMAND: Command = Command {
    name: "run",
    alias: None,
    args: "<container-id>",
    about: "Create and start a container; without --detach wait for it and delete it",
    flags: FLAGS,
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    let a = super::create::Args::from(m, "run")?;
    let spec = berth_container::load_spec(&a.bundle)?;
    if crate::memfd::run_is_exposed(&spec) {
        crate::memfd::reexec_sealed();
    }
    let options = || {
        let mut o = super::create::options(&a, StartMode::Now);
        o.spec = Some(spec.clone());
        o
    };
    let rt = g.runtime();
    if m.flag("detach") {
        if a.console_socket.is_none()
            && spec
                .process()
                .as_ref()
                .and_then(|p| p.terminal())
                .unwrap_or(false)
        {
            anyhow::bail!(
                "cannot allocate a tty for a detached container without --console-socket \
                 (process.terminal is true in {}/config.json)",
                a.bundle.display()
            );
        }
        rt.create(options())?;
        return Ok(0);
    }
    let mut sfd = crate::signals::block()?;
    let created = rt.create(options())?;
    let code = crate::tty::wait_foreground(created.pid, &mut sfd, created.pty_master)?;
    if !m.flag("keep") {
        created.container.delete(true)?;
    }
    Ok(code)
}
