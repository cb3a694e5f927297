//! `berth kill`.

use anyhow::Result;
use berth_api::query::ContainerKillQuery;
use clap::Args;

use super::{Ctx, for_each};

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Containers to kill
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: KillArgs) -> Result<i32> {
    let q = ContainerKillQuery {
        signal: args.signal.clone(),
    };
    for_each(&args.containers, |c| {
        Ok(ctx.client.container_kill(c, &q)?)
    })
}
