//! One module per runc command.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod resume;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod unsupported;
pub mod update;

use anyhow::Context;

/// Loads a container, with runc's "does not exist" message.
pub fn load(g: &crate::Global, id: &str) -> anyhow::Result<berth_container::Container> {
    Ok(g.runtime().load(id)?)
}

/// Reads a file, or stdin for "-".
pub fn read_input(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("read stdin")?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("read {path}"))
    }
}
