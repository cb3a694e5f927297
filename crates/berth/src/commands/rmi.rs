//! `berth rmi` (and `image rm`).

use anyhow::Result;
use berth_api::query::ImageRemoveQuery;
use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Images to remove
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub fn run(ctx: &Ctx, args: RmiArgs) -> Result<i32> {
    let q = ImageRemoveQuery {
        force: args.force,
        noprune: args.no_prune,
    };
    let mut failed = false;
    for image in &args.images {
        match ctx.client.image_remove(image, &q) {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
