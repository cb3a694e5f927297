//! `berth image ...`: the image management verbs under one name.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::inspect::{ObjectType, inspect};
use super::{Ctx, history, images, import, load, prune, rmi, save, tag};

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Images to inspect
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

// `berth image VERB`: a verb of its own whose subcommands are built only when it runs,
// like every verb's flags (cli.rs). Plain comments: a doc comment would replace the help
// text of `image`.
#[derive(Debug, Args)]
#[command(subcommand_required = true, arg_required_else_help = true)]
#[group(skip)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Load an image from a tar archive or STDIN
    Load(load::LoadArgs),
    /// Save one or more images to a tar archive
    Save(save::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::ImportArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Remove unused images
    Prune(prune::ImagePruneArgs),
}

pub fn run(ctx: &Ctx, cmd: ImageCommand) -> Result<i32> {
    match cmd {
        ImageCommand::Ls(a) => images::run(ctx, a),
        ImageCommand::Rm(a) => rmi::run(ctx, a),
        ImageCommand::Inspect(a) => inspect(
            ctx,
            &a.images,
            Some(ObjectType::Image),
            false,
            a.format.as_deref(),
        ),
        ImageCommand::Tag(a) => tag::run(ctx, a),
        ImageCommand::Load(a) => load::run(ctx, a),
        ImageCommand::Save(a) => save::run(ctx, a),
        ImageCommand::Import(a) => import::run(ctx, a),
        ImageCommand::History(a) => history::run(ctx, a),
        ImageCommand::Prune(a) => prune::images(ctx, a),
    }
}
