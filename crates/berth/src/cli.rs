//! The command line: global options and the verb tree (docker's names and aliases).

use clap::{Parser, Subcommand};

use crate::commands::{
    container, create, events, export, history, image, images, import, info, inspect, kill, load,
    logs, ps, rename, restart, rm, rmi, run, save, start, stop, system, tag, version, wait,
};

/// A Docker-compatible container engine client.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path); default $BERTH_HOST, $DOCKER_HOST or
    /// unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug", global = true)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(create::CreateArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Restart one or more containers
    Restart(restart::RestartArgs),
    /// Kill one or more running containers
    Kill(kill::KillArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Return low-level information on Docker objects
    Inspect(inspect::InspectArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(rmi::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Load an image from a tar archive or STDIN
    Load(load::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::ImportArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Manage Berth
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Show the Berth version information
    Version(version::VersionArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
}
