//! `run`: create and start at once (no exec fifo round trip). In the foreground it forwards
//! signals, proxies the terminal if there is no console socket, waits, deletes the
//! container and exits with the process's status.

use berth_container::StartMode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub create: super::create::Args,
    /// Do not wait for the container (its process is re-parented when we exit).
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (foreground only).
    #[arg(long)]
    pub keep: bool,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    let rt = g.runtime();
    if a.detach {
        super::create::check_detached_terminal(&a.create)?;
        rt.create(super::create::options(&a.create, StartMode::Now))?;
        return Ok(0);
    }
    let mut sfd = crate::signals::block()?;
    let created = rt.create(super::create::options(&a.create, StartMode::Now))?;
    let code = crate::tty::wait_foreground(created.pid, &mut sfd, created.pty_master)?;
    if !a.keep {
        created.container.delete(true)?;
    }
    Ok(code)
}
