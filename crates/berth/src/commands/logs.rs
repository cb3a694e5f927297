//! `berth logs`.

use anyhow::Result;
use berth_api::query::ContainerLogsQuery;
use clap::Args;

use super::{Ctx, api_timestamp};
use crate::stream_io::copy_output;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let info = ctx.client.container_inspect(&args.container)?;
    let tty = info.config.and_then(|c| c.tty) == Some(true);
    let now = ctx.now();
    let q = ContainerLogsQuery {
        follow: args.follow,
        stdout: true,
        stderr: true,
        since: args
            .since
            .as_deref()
            .map(|s| api_timestamp(s, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| api_timestamp(s, now))
            .transpose()?,
        timestamps: args.timestamps,
        tail: Some(args.tail.clone()),
    };
    let resp = ctx
        .client
        .container_logs(info.id.as_deref().unwrap_or(&args.container), &q)?;
    let multiplexed = match resp.header("content-type") {
        Some(ct) if ct.starts_with(berth_api::stream::MULTIPLEXED_CONTENT_TYPE) => true,
        Some(ct) if ct.starts_with(berth_api::stream::RAW_CONTENT_TYPE) => false,
        _ => !tty,
    };
    copy_output(resp, multiplexed)?;
    Ok(0)
}
