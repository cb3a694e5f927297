//! `create`: set the container up; its process waits on the exec fifo until `start`.

use berth_container::{CreateOptions, StartMode};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[group(skip)]
pub struct Args {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master (with process.terminal).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the container process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for compatibility (no session keyring is created anyway).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
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

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    check_detached_terminal(a)?;
    g.runtime().create(options(a, StartMode::OnStart))?;
    Ok(0)
}
