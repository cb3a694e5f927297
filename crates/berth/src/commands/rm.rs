//! `berth rm`.

use anyhow::Result;
use berth_api::query::ContainerRemoveQuery;
use clap::Args;

use super::{Ctx, for_each, map_parallel};

/// How many removals are in flight at once (docker's CLI: 50).
const PARALLEL: usize = 50;

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
    // Up to 50 removals at once, like docker's CLI: berthd then kills the containers and
    // makes their removals durable together (one metadata sync for those in flight).
    let mut results = map_parallel(&args.containers, PARALLEL, |c| {
        ctx.client.container_remove(c, &q)
    })
    .into_iter();
    // docker's `rm -f` reports a missing container but does not fail for it
    let mut other_failure = false;
    let code = for_each(&args.containers, |_| {
        let Some(result) = results.next() else {
            return Ok(());
        };
        result.map_err(|e| {
            other_failure |= !(args.force && e.is_not_found());
            e.into()
        })
    })?;
    Ok(if other_failure { code } else { 0 })
}
