//! `state`: the OCI state as JSON.

use crate::cli::{Command, Matches};

pub const COMMAND: Command = Command {
    name: "state",
    alias: None,
    args: "<container-id>",
    about: "Print the state of a container as JSON",
    flags: &[],
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "state")?;
    let s = super::load(g, m.arg(0, "state", "<container-id>")?)?.oci_state()?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}
