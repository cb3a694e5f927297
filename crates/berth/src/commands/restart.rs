//! `berth restart`.

use anyhow::Result;
use berth_api::query::ContainerStopQuery;
use clap::Args;

use super::{Ctx, for_each};

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Containers to restart
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Ctx, args: RestartArgs) -> Result<i32> {
    let q = ContainerStopQuery {
        signal: args.signal.clone(),
        t: args.time,
    };
    for_each(&args.containers, |c| {
        Ok(ctx.client.container_restart(c, &q)?)
    })
}
