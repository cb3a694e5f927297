//! `berth export`: a container's filesystem as a tarball.

use anyhow::Result;
use clap::Args;

use super::save::write_output;
use super::{Ctx, refuse_terminal_stdout};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(ctx: &Ctx, args: ExportArgs) -> Result<i32> {
    if args.output.is_none() {
        refuse_terminal_stdout("export")?;
    }
    let resp = ctx.client.container_export(&args.container)?;
    write_output(resp, args.output.as_deref(), "export")?;
    Ok(0)
}
