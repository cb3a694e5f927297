//! `resume ID`: thaw a paused container.

use crate::cli::{Command, Matches};

pub const COMMAND: Command = Command {
    name: "resume",
    alias: None,
    args: "<container-id>",
    about: "Resume a paused container",
    flags: &[],
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "resume")?;
    super::load(g, m.arg(0, "resume", "<container-id>")?)?.resume()?;
    Ok(0)
}
