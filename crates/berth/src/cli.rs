//! The command line: global options and the verb tree (docker's names and aliases).
//!
//! Parsing is the CLI's start-up cost, paid before every request, so the tree is built only
//! as far as the command line needs ([`Cli::try_parse_from`]): each verb's flags are added
//! when that verb is parsed (`defer`), and the root gets only the verb being run, because
//! clap copies the global options into every verb of the root it parses with.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::{
    container, create, events, export, history, image, images, import, info, inspect, kill, load,
    logs, ps, rename, restart, rm, rmi, run, save, start, stop, system, tag, version, wait,
};

/// The parsed command line.
#[derive(Debug)]
pub struct Cli {
    pub global: GlobalOpts,
    pub command: Option<Command>,
}

impl Cli {
    /// The whole tree: the root, its global options and every verb.
    pub fn command() -> clap::Command {
        Command::augment_subcommands(GlobalOpts::command())
    }

    /// Parses `args` (the program name first) as the whole tree would. A command line that
    /// names one of our verbs is parsed by the root with only that verb in it (one without
    /// a verb by the root alone); anything else, and every error, help and usage text,
    /// comes from the whole tree (it lists and suggests verbs, and flags of other verbs), so
    /// what users see does not depend on the shortcut. A parse that succeeds on the smaller
    /// root is the whole tree's parse: same root options, same verb, and a word naming any
    /// other verb would have been an error there.
    pub fn try_parse_from(args: &[impl AsRef<str>]) -> Result<Cli, clap::Error> {
        let argv = || args.iter().map(AsRef::as_ref);
        if let Some(root) = Self::command_for(verb_of(args).as_deref())
            && let Ok(mut matches) = root.try_get_matches_from(argv())
            && let Ok(cli) = Self::from_matches(&mut matches)
        {
            return Ok(cli);
        }
        let mut root = Self::command();
        let mut matches = root.try_get_matches_from_mut(argv())?;
        Self::from_matches(&mut matches).map_err(|e| e.format(&mut root))
    }

    /// The root with only `verb` (its first word) in it, if it is one of ours; without a
    /// verb (`berth --version`), the root alone.
    fn command_for(verb: Option<&str>) -> Option<clap::Command> {
        let root = GlobalOpts::command();
        let Some(verb) = verb else {
            return Some(root);
        };
        let name = verb.split(' ').next()?;
        // the verbs alone (their flags deferred) on a bare parent: only looked up here
        let verbs = Command::augment_subcommands(clap::Command::new("berth"));
        let sub = verbs.find_subcommand(name)?.clone();
        Some(root.subcommand(sub))
    }

    /// The command line that `matches` (from [`Cli::command`] or the shortcut) hold.
    pub fn from_matches(matches: &mut clap::ArgMatches) -> Result<Cli, clap::Error> {
        Ok(Cli {
            global: GlobalOpts::from_arg_matches_mut(matches)?,
            command: match matches.subcommand_name() {
                Some(_) => Some(Command::from_arg_matches_mut(matches)?),
                None => None,
            },
        })
    }
}

// The root command itself: its help text (the doc comment), settings and global options.
/// A Docker-compatible container engine client.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct GlobalOpts {
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

// The verbs. Each verb's flags are added only when that verb is parsed or its help is shown
// (`defer`): building every verb's flags up front was most of the CLI's start-up. A doc
// comment here, or on a verb's `Args` struct, would replace the root's or the verb's help
// text (they are applied after the variant's), so these are plain comments.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    Image(image::ImageArgs),
    /// Manage containers
    Container(container::ContainerArgs),
    /// Manage Berth
    System(system::SystemArgs),
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
pub fn verb_of(args: &[impl AsRef<str>]) -> Option<String> {
    let mut it = args.iter().map(AsRef::as_ref).skip(1).peekable();
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            // global options that take a value in the next argument
            if matches!(
                a,
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
        if matches!(a, "container" | "image" | "system")
            && let Some(sub) = it.peek()
            && !sub.starts_with('-')
        {
            return Some(format!("{a} {sub}"));
        }
        return Some(a.to_owned());
    }
    None
}
