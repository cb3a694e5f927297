//! `berth rename`.

use anyhow::Result;
use berth_api::query::ContainerRenameQuery;
use clap::Args;

use super::Ctx;
use crate::StatusError;
use crate::opts::container::valid_container_name;

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Its new name
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub fn run(ctx: &Ctx, args: RenameArgs) -> Result<i32> {
    let name = args.new_name.trim();
    if name.is_empty() || args.container.trim().is_empty() {
        return Err(StatusError::new(1, "Error: neither old nor new names may be empty").into());
    }
    if !valid_container_name(name) {
        return Err(StatusError::new(1, format!("Error response from daemon: Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")).into());
    }
    ctx.client.container_rename(
        &args.container,
        &ContainerRenameQuery {
            name: name.to_owned(),
        },
    )?;
    Ok(0)
}
