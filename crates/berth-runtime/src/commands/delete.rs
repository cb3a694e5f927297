//! `delete [--force] ID`.

use crate::cli::{Command, Flag, Matches, flag};

const FLAGS: &[Flag] = &[flag(
    "force",
    Some('f'),
    "kill the container first if it still runs",
)];

pub const COMMAND: Command = Command {
    name: "delete",
    alias: None,
    args: "<container-id>",
    about: "Delete a container and its resources",
    flags: FLAGS,
};

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    m.at_most(1, "delete")?;
    let id = m.arg(0, "delete", "<container-id>")?;
    let force = m.flag("force");
    match g.runtime().load(id) {
        Ok(c) => c.delete(force)?,
        Err(berth_container::Error::NotFound(id)) => {
            // Like runc: a directory without state (an aborted create) is removed; with
            // --force a missing container is not an error.
            berth_container::validate_id(&id)?;
            let dir = g.root.join(&id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
                return Ok(0);
            }
            if !force {
                return Err(berth_container::Error::NotFound(id).into());
            }
        }
        Err(e) if force && matches!(e, berth_container::Error::Io { .. }) => {
            // A corrupt state file: nothing we can know of to kill; remove it.
            std::fs::remove_dir_all(g.root.join(id))?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
