//! `berth system ...`: df, prune, info, events.

use anyhow::Result;
use berth_api::humanize::human_size_with_precision;
use berth_api::query::{Filters, SystemDfQuery};
use clap::{Args, Subcommand};

use super::prune::{prune_containers, prune_images};
use super::{Ctx, confirm, events, info, print};
use crate::StatusError;
use crate::format::Formatter;
use crate::template::Value;

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

// `berth system VERB`: a verb of its own whose subcommands are built only when it runs,
// like every verb's flags (cli.rs). Plain comments: a doc comment would replace the help
// text of `system`.
#[derive(Debug, Args)]
#[command(subcommand_required = true, arg_required_else_help = true)]
#[group(skip)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show docker disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
}

pub fn run(ctx: &Ctx, cmd: SystemCommand) -> Result<i32> {
    match cmd {
        SystemCommand::Df(a) => df(ctx, a),
        SystemCommand::Prune(a) => prune(ctx, a),
        SystemCommand::Info(a) => info::run(ctx, a),
        SystemCommand::Events(a) => events::run(ctx, a),
    }
}

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

fn df(ctx: &Ctx, args: DfArgs) -> Result<i32> {
    let du = ctx.client.system_df(&SystemDfQuery::default())?;
    let images = du.images.unwrap_or_default();
    let mut containers = du.containers.unwrap_or_default();
    if args.verbose {
        // docker's verbose listings leave out the containers' virtual size
        for c in &mut containers {
            c.size_root_fs = None;
        }
    }
    // docker's df formatter uses go-units' HumanSize (4 significant digits)
    let h = |n: i64| human_size_with_precision(n as f64, 4);
    let pct = |part: i64, total: i64| {
        if total > 0 {
            format!(" ({}%)", part * 100 / total)
        } else {
            String::new()
        }
    };
    let images_size: i64 = du
        .layers_size
        .unwrap_or_else(|| images.iter().map(|i| i.size - i.shared_size.max(0)).sum());
    let active_images = images.iter().filter(|i| i.containers > 0).count();
    // docker's Reclaimable: the total less the unique size of images in use; an image whose
    // sizes are unknown (-1) counts as reclaimable
    let used: i64 = images
        .iter()
        .filter(|i| i.containers != 0 && i.size != -1 && i.shared_size != -1)
        .map(|i| i.size - i.shared_size)
        .sum();
    let reclaim_images = images_size - used;
    let containers_size: i64 = containers.iter().map(|c| c.size_rw.unwrap_or(0)).sum();
    let active_containers = containers
        .iter()
        .filter(|c| {
            matches!(
                c.state.as_deref(),
                Some("running") | Some("paused") | Some("restarting")
            )
        })
        .count();
    let reclaim_containers: i64 = containers
        .iter()
        .filter(|c| {
            !matches!(
                c.state.as_deref(),
                Some("running") | Some("paused") | Some("restarting")
            )
        })
        .map(|c| c.size_rw.unwrap_or(0))
        .sum();
    let row = |t: &str, total: usize, active: usize, size: i64, reclaim: i64| {
        let s = |v: String| Value::Str(v);
        Value::Map(vec![
            ("Active".into(), s(active.to_string())),
            (
                "Reclaimable".into(),
                s(format!("{}{}", h(reclaim), pct(reclaim, size))),
            ),
            ("Size".into(), s(h(size))),
            ("TotalCount".into(), s(total.to_string())),
            ("Type".into(), s(t.to_owned())),
        ])
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            active_images,
            images_size,
            reclaim_images,
        ),
        row(
            "Containers",
            containers.len(),
            active_containers,
            containers_size,
            reclaim_containers,
        ),
        row("Local Volumes", 0, 0, 0, 0),
        row("Build Cache", 0, 0, 0, 0),
    ];
    let hv = |k: &str, v: &str| (k.to_owned(), Value::str(v));
    let header = Value::Map(vec![
        hv("Type", "TYPE"),
        hv("TotalCount", "TOTAL"),
        hv("Active", "ACTIVE"),
        hv("Size", "SIZE"),
        hv("Reclaimable", "RECLAIMABLE"),
    ]);
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => DF_TABLE.to_owned(),
        Some(f) => f.to_owned(),
    };
    if args.verbose && !format.starts_with("table") {
        // docker renders a custom verbose format once, over all the lists (`{{json .}}` is
        // one object with full IDs)
        let data = Value::Map(vec![
            (
                "Images".into(),
                Value::List(
                    crate::format::image::rows(&images, false, false, ctx.now())
                        .into_iter()
                        .map(no_digest_placeholder)
                        .collect(),
                ),
            ),
            (
                "Containers".into(),
                Value::List(
                    containers
                        .iter()
                        .map(|c| crate::format::container::row(c, false, ctx.now()))
                        .collect(),
                ),
            ),
            ("Volumes".into(), Value::List(Vec::new())),
            ("BuildCache".into(), Value::List(Vec::new())),
        ]);
        // printed as is: docker adds no newline after a custom verbose format
        let t = crate::template::Template::parse(&format)
            .map_err(|e| StatusError::new(1, format!("template parsing error: {e}")))?;
        let out = t
            .execute_typed(&data, &[("", "*formatter.diskUsageContext")])
            .map_err(|e| StatusError::new(1, e.to_string()))?;
        print(&out)?;
        return Ok(0);
    }
    if !args.verbose {
        // the first row docker renders is the images one
        let f = Formatter::typed(&format, "*formatter.diskUsageImagesContext")?;
        print(&f.render(&rows, &header)?)?;
        return Ok(0);
    }
    // docker's verbose tables: no summary, and containers without their virtual size
    let out = crate::format::image::render(
        &images,
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        true,
        false,
        ctx.now(),
    )?;
    print(&format!("Images space usage:\n\n{out}"))?;
    let out = crate::format::container::render(
        &containers,
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        true,
        ctx.now(),
    )?;
    print(&format!("\nContainers space usage:\n\n{out}"))?;
    print(
        "\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n",
    )?;
    Ok(0)
}

/// docker's df rows carry an empty `Digest` where `images` prints `<none>`.
fn no_digest_placeholder(row: Value) -> Value {
    match row {
        Value::Map(fields) => Value::Map(
            fields
                .into_iter()
                .map(|(k, v)| match (k.as_str(), &v) {
                    ("Digest", Value::Str(d)) if d == "<none>" => (k, Value::str("")),
                    _ => (k, v),
                })
                .collect(),
        ),
        other => other,
    }
}

fn prune(ctx: &Ctx, args: SystemPruneArgs) -> Result<i32> {
    let mut filters = Filters::new();
    for a in &args.filter {
        filters.add_arg(a).map_err(|e| {
            StatusError::new(
                125,
                format!("invalid argument \"{a}\" for \"--filter\" flag: {e}"),
            )
        })?;
    }
    let images_line = if args.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n{images_line}\n\nAre you sure you want to continue?"
    );
    if !args.force && !confirm(&warning)? {
        return Ok(0);
    }
    let mut space = prune_containers(ctx, filters.clone())?;
    space += prune_images(ctx, filters, args.all)?;
    println!(
        "Total reclaimed space: {}",
        berth_api::humanize::human_size(space as f64)
    );
    Ok(0)
}
