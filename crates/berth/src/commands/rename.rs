//! `berth rename`.

use anyhow::Result;
use berth_api::query::ContainerRenameQuery;
use clap::Args;

use super::Ctx;
use crate::StatusError;

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
    // The daemon checks the container, then the new name (docker's order and messages).
    let renamed = ctx.client.container_rename(
        &args.container,
        &ContainerRenameQuery {
            name: name.to_owned(),
        },
    );
    if let Err(e) = renamed {
        return Err(StatusError::new(
            1,
            format!(
                "{e}\nError: failed to rename container named {}",
                args.container
            ),
        )
        .into());
    }
    Ok(0)
}
