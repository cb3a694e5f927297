//! `create`: set the container up; its process waits on the exec fifo until `start`.

use berth_container::{CreateOptions, StartMode};
use std::path::PathBuf;

use crate::cli::{Command, Flag, Matches, flag, opt};

pub const FLAGS: &[Flag] = &[
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
];

pub const COMMAND: Command = Command {
    name: "create",
    alias: None,
    args: "<container-id>",
    about: "Create a container (its process waits until `start`)",
    flags: FLAGS,
};

/// The options shared by `create` and `run`.
#[derive(Debug)]
pub struct Args {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub id: String,
}

impl Args {
    pub fn from(m: &Matches, cmd: &str) -> anyhow::Result<Args> {
        m.at_most(1, cmd)?;
        Ok(Args {
            bundle: PathBuf::from(m.value("bundle").unwrap_or(".")),
            console_socket: m.value("console-socket").map(PathBuf::from),
            pid_file: m.value("pid-file").map(PathBuf::from),
            no_pivot: m.flag("no-pivot"),
            preserve_fds: m.parse("preserve-fds")?.unwrap_or(0),
            id: m.arg(0, cmd, "<container-id>")?.to_string(),
        })
    }
}

pub fn options(a: &Args, start: StartMode) -> CreateOptions<'static> {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        start,
        ..Default::default()
    }
}

/// Refuses a terminal without a console socket when we will not stay around to hold it.
pub fn check_detached_terminal(a: &Args) -> anyhow::Result<()> {
    if a.console_socket.is_some() {
        return Ok(());
    }
    let spec = berth_container::load_spec(&a.bundle)?;
    if spec
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
    Ok(())
}

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    let a = Args::from(m, "create")?;
    check_detached_terminal(&a)?;
    g.runtime().create(options(&a, StartMode::OnStart))?;
    Ok(0)
}
