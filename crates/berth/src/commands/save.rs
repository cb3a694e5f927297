//! `berth save`: a `docker save` tarball of images, to `-o FILE` or stdout.

use anyhow::Result;
use berth_api::query::ImageSaveQuery;
use clap::Args;

use super::{Ctx, refuse_terminal_stdout};

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Images to save
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Copies a response body to `-o FILE` (written to a temp file then renamed, so a failed
/// transfer leaves nothing half-written) or stdout.
pub fn write_output(mut body: impl std::io::Read, output: Option<&str>, what: &str) -> Result<()> {
    match output {
        Some(path) => {
            let target = std::path::Path::new(path);
            let dir = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".berth-save")
                .tempfile_in(dir)?;
            std::io::copy(&mut body, &mut tmp)?;
            tmp.as_file().sync_all()?;
            tmp.persist(target)?;
        }
        None => {
            refuse_terminal_stdout(what)?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut body, &mut out)?;
        }
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: SaveArgs) -> Result<i32> {
    if args.output.is_none() {
        refuse_terminal_stdout("save")?;
    }
    let resp = ctx.client.image_save(&ImageSaveQuery {
        names: args.images.clone(),
    })?;
    write_output(resp, args.output.as_deref(), "save")?;
    Ok(0)
}
