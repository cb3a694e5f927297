//! `berth-runtime`: a runc-compatible OCI runtime CLI over `berth-container`.
//!
//! Flags, commands, output formats, exit codes and the error messages containerd matches on
//! follow runc, so containerd's runc shim can use it as its `BinaryName`.
#![forbid(unsafe_code)]

mod commands;
mod log;
mod memfd;
mod signals;
mod tty;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Default state root.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "Berth's OCI runtime: creates and runs containers from OCI bundles (runc-compatible CLI)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Root directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also write log messages to this file.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd's cgroup driver (not supported: a clear error).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to criu (accepted for compatibility; checkpointing is not supported).
    #[arg(long, hide = true)]
    pub criu: Option<PathBuf>,
    /// Rootless mode (accepted for compatibility: true, false or auto).
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    /// Directory for compiled seccomp filters (default: <root>/.seccomp-cache; "" disables).
    #[arg(long = "seccomp-cache", global = true)]
    pub seccomp_cache: Option<PathBuf>,
}

impl Global {
    pub fn runtime(&self) -> berth_container::Runtime {
        let rt = berth_container::Runtime::new(&self.root);
        match &self.seccomp_cache {
            Some(p) if p.as_os_str().is_empty() => rt,
            Some(p) => rt.with_seccomp_cache(p),
            None => rt.with_seccomp_cache(self.root.join(".seccomp-cache")),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits until `start`).
    Create(commands::create::Args),
    /// Start a created container.
    Start(commands::start::Args),
    /// Create and start a container; without --detach, wait for it and delete it.
    Run(commands::run::Args),
    /// Print the state of a container as JSON.
    State(commands::state::Args),
    /// Send a signal to a container's init (or all its processes).
    Kill(commands::kill::Args),
    /// Delete a container and its resources.
    Delete(commands::delete::Args),
    /// Run a new process in a container.
    Exec(commands::exec::Args),
    /// List the processes running in a container.
    Ps(commands::ps::Args),
    /// List containers.
    #[command(alias = "ls")]
    List(commands::list::Args),
    /// Suspend all processes of a container (freezer).
    Pause(commands::pause::Args),
    /// Resume a paused container.
    Resume(commands::resume::Args),
    /// Print container events and resource statistics.
    Events(commands::events::Args),
    /// Change a running container's resource limits.
    Update(commands::update::Args),
    /// Print what this runtime supports (OCI features JSON).
    Features(commands::features::Args),
    /// Write a default config.json.
    Spec(commands::spec::Args),
    /// Not supported: berth-runtime has no CRIU integration.
    Checkpoint(commands::unsupported::Args),
    /// Not supported: berth-runtime has no CRIU integration.
    Restore(commands::unsupported::Args),
}

fn main() {
    // CVE-2019-5736: anything that may enter a container runs from a sealed memfd copy.
    memfd::ensure_sealed_copy();
    let cli = Cli::parse();
    let logger = log::init(&cli.global);
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            // Library errors already include their causes; add only what is new.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            logger.error(&msg);
            1
        }
    };
    std::process::exit(code)
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.global.systemd_cgroup {
        anyhow::bail!(
            "--systemd-cgroup is not supported: berth-runtime manages cgroups through cgroupfs \
             (drop the flag, or set SystemdCgroup = false in containerd's runc options)"
        );
    }
    let g = &cli.global;
    match &cli.command {
        Command::Create(a) => commands::create::run(g, a),
        Command::Start(a) => commands::start::run(g, a),
        Command::Run(a) => commands::run::run(g, a),
        Command::State(a) => commands::state::run(g, a),
        Command::Kill(a) => commands::kill::run(g, a),
        Command::Delete(a) => commands::delete::run(g, a),
        Command::Exec(a) => commands::exec::run(g, a),
        Command::Ps(a) => commands::ps::run(g, a),
        Command::List(a) => commands::list::run(g, a),
        Command::Pause(a) => commands::pause::run(g, a),
        Command::Resume(a) => commands::resume::run(g, a),
        Command::Events(a) => commands::events::run(g, a),
        Command::Update(a) => commands::update::run(g, a),
        Command::Features(a) => commands::features::run(g, a),
        Command::Spec(a) => commands::spec::run(g, a),
        Command::Checkpoint(_) => commands::unsupported::run("checkpoint"),
        Command::Restore(_) => commands::unsupported::run("restore"),
    }
}
