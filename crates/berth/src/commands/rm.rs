//! `berth rm`.

use anyhow::Result;
use berth_api::query::ContainerRemoveQuery;
use clap::Args;

use super::{Ctx, for_each};

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Containers to remove
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let q = ContainerRemoveQuery {
        v: args.volumes,
        force: args.force,
        link: args.link,
    };
    // docker's `rm -f` reports a missing container but does not fail for it
    let mut other_failure = false;
    let code = for_each(&args.containers, |c| {
        ctx.client.container_remove(c, &q).map_err(|e| {
            other_failure |= !(args.force && e.is_not_found());
            e.into()
        })
    })?;
    Ok(if other_failure { code } else { 0 })
}
