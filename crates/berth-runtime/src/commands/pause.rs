//! `pause ID`: freeze every process of the container.

use crate::cli::{Command, Matches};

pub const COMMAND: Command = Command {
    name: "pause",
    alias: None,
    args: "<container-id>",
    about: "Suspend all processes of a container (freezer)",
    flags: &[],
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "pause")?;
    super::load(g, m.arg(0, "pause", "<container-id>")?)?.pause()?;
    Ok(0)
}
