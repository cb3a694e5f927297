//! `start`: let a created container run its process.

use crate::cli::{Command, Matches};

pub const COMMAND: Command = Command {
    name: "start",
    alias: None,
    args: "<container-id>",
    about: "Start a created container",
    flags: &[],
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "start")?;
    super::load(g, m.arg(0, "start", "<container-id>")?)?.start()?;
    Ok(0)
}
