//! `berth ps`.

use anyhow::Result;
use berth_api::query::{ContainerListQuery, Filters};
use clap::Args;

use super::{Ctx, print};
use crate::StatusError;
use crate::format::container::{ps_format, render, validate_ps_format};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_hyphen_values = true, default_value_t = -1)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

pub fn run(ctx: &Ctx, args: PsArgs) -> Result<i32> {
    let mut filters = Filters::new();
    for f in &args.filter {
        filters.add_arg(f).map_err(|e| {
            StatusError::new(
                125,
                format!("invalid argument \"{f}\" for \"-f, --filter\" flag: {e}"),
            )
        })?;
    }
    if let Some(custom) = args.format.as_deref().filter(|f| !f.is_empty()) {
        if args.quiet && custom != "table" {
            eprintln!(
                "WARNING: Ignoring custom format, because both --format and --quiet are set."
            );
        }
        validate_ps_format(custom).map_err(|e| StatusError::new(1, e))?;
    }
    let format = ps_format(args.format.as_deref(), args.quiet, args.size);
    let limit = if args.latest {
        Some(1)
    } else if args.last > 0 {
        Some(args.last)
    } else {
        None
    };
    let q = ContainerListQuery {
        all: args.all,
        limit,
        // docker asks for sizes when its check of the template read `.Size` (also through
        // `{{json .}}`; not for `--format json`, which that check sees as plain text)
        size: args.size
            || (!args.quiet
                && (format.contains(".Size") || format.replace(' ', "").contains("{{json.}}"))),
        filters,
    };
    let list = ctx.client.container_list(&q)?;
    let out = render(&list, &format, !args.no_trunc, ctx.now())?;
    print(&out)?;
    Ok(0)
}
