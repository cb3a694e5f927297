//! `berth images` (and `image ls`).

use anyhow::Result;
use berth_api::query::{Filters, ImageListQuery};
use clap::Args;

use super::{Ctx, print};
use crate::StatusError;
use crate::format::image::{images_format, render};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only images of this repository[:tag]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub fn run(ctx: &Ctx, args: ImagesArgs) -> Result<i32> {
    let mut filters = Filters::new();
    for f in &args.filter {
        filters.add_arg(f).map_err(|e| {
            StatusError::new(
                125,
                format!("invalid argument \"{f}\" for \"-f, --filter\" flag: {e}"),
            )
        })?;
    }
    if let Some(r) = &args.reference {
        filters.add("reference", r);
    }
    let q = ImageListQuery {
        all: args.all,
        filters,
        digests: args.digests,
        ..Default::default()
    };
    let list = ctx.client.image_list(&q)?;
    let format = images_format(args.format.as_deref(), args.quiet, args.digests);
    // Like docker's, `-q` prints one ID per row, so an image with two tags appears twice.
    let out = render(&list, &format, !args.no_trunc, args.digests, ctx.now())?;
    print(&out)?;
    Ok(0)
}
