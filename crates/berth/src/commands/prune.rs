//! `container prune` and `image prune`.

use anyhow::Result;
use berth_api::humanize::human_size;
use berth_api::query::{Filters, PruneQuery};
use clap::Args;

use super::{Ctx, confirm};
use crate::StatusError;

#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

fn filters(args: &[String]) -> Result<Filters> {
    let mut f = Filters::new();
    for a in args {
        f.add_arg(a).map_err(|e| {
            StatusError::new(
                125,
                format!("invalid argument \"{a}\" for \"--filter\" flag: {e}"),
            )
        })?;
    }
    Ok(f)
}

/// Removes stopped containers; returns the reclaimed bytes.
pub fn prune_containers(ctx: &Ctx, f: Filters) -> Result<i64> {
    let r = ctx.client.container_prune(&PruneQuery { filters: f })?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in deleted {
            println!("{id}");
        }
        println!();
    }
    Ok(r.space_reclaimed.unwrap_or(0))
}

/// Removes dangling (or with `all`, unused) images; returns the reclaimed bytes.
pub fn prune_images(ctx: &Ctx, mut f: Filters, all: bool) -> Result<i64> {
    f.add("dangling", if all { "false" } else { "true" });
    let r = ctx.client.image_prune(&PruneQuery { filters: f })?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for it in deleted {
            if let Some(u) = it.untagged {
                println!("untagged: {u}");
            }
            if let Some(d) = it.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    Ok(r.space_reclaimed.unwrap_or(0))
}

pub fn containers(ctx: &Ctx, args: ContainerPruneArgs) -> Result<i32> {
    let f = filters(&args.filter)?;
    if !args.force
        && !confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )?
    {
        return Ok(0);
    }
    let space = prune_containers(ctx, f)?;
    println!("Total reclaimed space: {}", human_size(space as f64));
    Ok(0)
}

pub fn images(ctx: &Ctx, args: ImagePruneArgs) -> Result<i32> {
    let f = filters(&args.filter)?;
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !args.force && !confirm(&format!("{warning}\nAre you sure you want to continue?"))? {
        return Ok(0);
    }
    let space = prune_images(ctx, f, args.all)?;
    println!("Total reclaimed space: {}", human_size(space as f64));
    Ok(0)
}
