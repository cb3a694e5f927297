//! `berth create`: create a container and print its ID.

use anyhow::Result;
use clap::{ArgAction, Args};

use super::Ctx;
use super::run::{create_container, report};
use crate::StatusError;
use crate::opts::container::ContainerOpts;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

pub fn run(ctx: &Ctx, args: CreateArgs) -> Result<i32> {
    let req = args
        .opts
        .build(false, &|k| std::env::var(k).ok())
        .map_err(|e| StatusError::new(125, report("create", &e.0, true)))?;
    // docker 28's `create` prints a daemon error as is and exits 1 (only `run` wraps it in
    // 125 and the help hint)
    let id = create_container(&ctx.client, &req, args.quiet)
        .map_err(|e| StatusError::new(1, e.to_string()))?;
    println!("{id}");
    Ok(0)
}
