//! `berth import FILE|URL|- [REPOSITORY[:TAG]]`.

use std::fs::File;

use anyhow::Result;
use berth_api::query::ImageCreateQuery;
use clap::Args;

use super::Ctx;
use super::load::print_messages;
use super::tag::parse_target;
use crate::StatusError;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// A tarball file, a URL, or - for STDIN
    #[arg(value_name = "file|URL|-")]
    pub source: String,
    /// Repository and tag for the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub fn run(ctx: &Ctx, args: ImportArgs) -> Result<i32> {
    let (repo, tag) = match &args.reference {
        Some(r) => {
            let (repo, tag) = parse_target(r).map_err(|e| StatusError::new(1, e))?;
            (Some(repo), tag)
        }
        None => (None, None),
    };
    let is_url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let mut q = ImageCreateQuery {
        from_src: Some(if is_url {
            args.source.clone()
        } else {
            "-".into()
        }),
        repo,
        tag,
        message: args.message.clone(),
        changes: args.change.clone(),
        platform: args.platform.clone(),
        ..Default::default()
    };
    let body: Option<(Box<dyn std::io::Read + Send>, Option<u64>)> = if is_url {
        None
    } else if args.source == "-" {
        Some((Box::new(std::io::stdin()), None))
    } else {
        let f = File::open(&args.source)
            .map_err(|e| StatusError::new(1, format!("open {}: {e}", args.source)))?;
        let len = f.metadata().ok().map(|m| m.len());
        Some((Box::new(f), len))
    };
    if q.from_src.as_deref() == Some("") {
        q.from_src = None;
    }
    let resp = ctx.client.image_create(&q, body)?;
    print_messages(resp, false)?;
    Ok(0)
}
