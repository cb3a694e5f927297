//! `berth history`.

use anyhow::Result;
use clap::{ArgAction, Args};

use super::{Ctx, print};
use crate::format::image::{HISTORY_TABLE, render_history};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format (`--human=false` for raw values;
    /// docker's `-H` short form clashes with the global `-H/--host`)
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn run(ctx: &Ctx, args: HistoryArgs) -> Result<i32> {
    let items = ctx.client.image_history(&args.image)?;
    let format = match (args.quiet, args.format.as_deref()) {
        (true, _) => "{{.ID}}".to_owned(),
        (false, None | Some("") | Some("table")) => HISTORY_TABLE.to_owned(),
        (false, Some(f)) => f.to_owned(),
    };
    print(&render_history(
        &items,
        &format,
        !args.no_trunc,
        args.human,
        ctx.now(),
    )?)?;
    Ok(0)
}
