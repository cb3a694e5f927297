//! `berth container ...`: the container management verbs under one name.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::inspect::{ObjectType, inspect};
use super::{
    Ctx, create, export, kill, logs, prune, ps, rename, restart, rm, run, start, stop, wait,
};

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Containers to inspect
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

// `berth container VERB`: a verb of its own whose subcommands are built only when it runs,
// like every verb's flags (cli.rs). Plain comments: a doc comment would replace the help
// text of `container`.
#[derive(Debug, Args)]
#[command(subcommand_required = true, arg_required_else_help = true)]
#[group(skip)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(ps::PsArgs),
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
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Remove all stopped containers
    Prune(prune::ContainerPruneArgs),
}

pub fn run(ctx: &Ctx, cmd: ContainerCommand) -> Result<i32> {
    match cmd {
        ContainerCommand::Ls(a) => ps::run(ctx, a),
        ContainerCommand::Run(a) => run::run(ctx, a),
        ContainerCommand::Create(a) => create::run(ctx, a),
        ContainerCommand::Start(a) => start::run(ctx, a),
        ContainerCommand::Stop(a) => stop::run(ctx, a),
        ContainerCommand::Restart(a) => restart::run(ctx, a),
        ContainerCommand::Kill(a) => kill::run(ctx, a),
        ContainerCommand::Rm(a) => rm::run(ctx, a),
        ContainerCommand::Logs(a) => logs::run(ctx, a),
        ContainerCommand::Wait(a) => wait::run(ctx, a),
        ContainerCommand::Inspect(a) => inspect(
            ctx,
            &a.containers,
            Some(ObjectType::Container),
            a.size,
            a.format.as_deref(),
        ),
        ContainerCommand::Rename(a) => rename::run(ctx, a),
        ContainerCommand::Export(a) => export::run(ctx, a),
        ContainerCommand::Prune(a) => prune::containers(ctx, a),
    }
}
