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
    /// Daemon socket to connect to (unix:///path, or tcp://HOST:PORT with --tlsverify);
    /// default $BERTH_HOST, $DOCKER_HOST or unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    pub host: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug", global = true)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// docker's TLS options for `tcp://` hosts (used only when the host is `tcp://`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Use TLS; implied by --tlsverify (default $BERTH_TLS or $DOCKER_TLS)
    #[arg(long, global = true)]
    pub tls: bool,
    /// Use TLS and verify the remote (default $BERTH_TLS_VERIFY or $DOCKER_TLS_VERIFY)
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default $DOCKER_CERT_PATH/ca.pem, ~/.docker/ca.pem)
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default $DOCKER_CERT_PATH/cert.pem, ~/.docker/cert.pem)
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default $DOCKER_CERT_PATH/key.pem, ~/.docker/key.pem)
    #[arg(long, global = true, value_name = "PATH")]
    pub tlskey: Option<std::path::PathBuf>,
}

impl TlsArgs {
    /// The client library's form of these flags.
    pub fn to_flags(&self) -> berth_api::client::tls::TlsFlags {
        berth_api::client::tls::TlsFlags {
            tls: self.tls,
            tlsverify: self.tlsverify,
            tlscacert: self.tlscacert.clone(),
            tlscert: self.tlscert.clone(),
            tlskey: self.tlskey.clone(),
        }
    }
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

/// docker's usage line of a verb (after the program name), for flag errors.
pub fn docker_usage(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "run" | "create" | "container run" | "container create" => {
            "[OPTIONS] IMAGE [COMMAND] [ARG...]"
        }
        "start" | "stop" | "restart" | "kill" | "rm" | "container start" | "container stop"
        | "container restart" | "container kill" | "container rm" => {
            "[OPTIONS] CONTAINER [CONTAINER...]"
        }
        "ps" | "container ls" | "container list" | "container ps" | "load" | "image load"
        | "version" | "info" | "system info" | "events" | "system events" | "container prune"
        | "image prune" | "system df" | "system prune" => "[OPTIONS]",
        "logs" | "container logs" | "export" | "container export" => "[OPTIONS] CONTAINER",
        "wait" | "container wait" => "CONTAINER [CONTAINER...]",
        "inspect" => "[OPTIONS] NAME|ID [NAME|ID...]",
        "container inspect" => "[OPTIONS] CONTAINER [CONTAINER...]",
        "image inspect" => "[OPTIONS] IMAGE [IMAGE...]",
        "rename" | "container rename" => "CONTAINER NEW_NAME",
        "images" | "image ls" | "image list" => "[OPTIONS] [REPOSITORY[:TAG]]",
        "rmi" | "image rm" | "save" | "image save" => "[OPTIONS] IMAGE [IMAGE...]",
        "tag" | "image tag" => "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "import" | "image import" => "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        "history" | "image history" => "[OPTIONS] IMAGE",
        _ => return None,
    })
}

/// The verb (one or two words: `ps`, `container ls`) an argument list runs, skipping the
/// global options before it.
pub fn verb_of(args: &[String]) -> Option<String> {
    let mut it = args.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            // global options that take a value in the next argument
            if matches!(
                a.as_str(),
                "-H" | "--host"
                    | "--tlscacert"
                    | "--tlscert"
                    | "--tlskey"
                    | "-l"
                    | "--log-level"
                    | "--config"
                    | "-c"
                    | "--context"
            ) {
                it.next();
            }
            continue;
        }
        if matches!(a.as_str(), "container" | "image" | "system")
            && let Some(sub) = it.peek()
            && !sub.starts_with('-')
        {
            return Some(format!("{a} {sub}"));
        }
        return Some(a.clone());
    }
    None
}
