//! `delete [--force] ID`.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill the container first if it is still running.
    #[arg(short, long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
    match g.runtime().load(&a.id) {
        Ok(c) => c.delete(a.force)?,
        Err(berth_container::Error::NotFound(id)) => {
            // Like runc: a directory without state (an aborted create) is removed; with
            // --force a missing container is not an error.
            berth_container::validate_id(&id)?;
            let dir = g.root.join(&id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
                return Ok(0);
            }
            if !a.force {
                return Err(berth_container::Error::NotFound(id).into());
            }
        }
        Err(e) if a.force && matches!(e, berth_container::Error::Io { .. }) => {
            // A corrupt state file: nothing to kill that we can know of; remove it.
            std::fs::remove_dir_all(g.root.join(&a.id))?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
