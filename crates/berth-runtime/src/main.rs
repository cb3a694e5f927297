//! `berth-runtime`: a runc-compatible OCI runtime CLI over `berth-container`.
//!
//! Flags, commands, output formats, exit codes and the error messages containerd matches on
//! follow runc, so containerd's runc shim can use it as its `BinaryName`.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod log;
mod memfd;
mod signals;
mod tty;

use cli::{Command, Flag, Matches, UsageError, opt};
use std::path::PathBuf;

/// Default state root.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

const GLOBAL_FLAGS: &[Flag] = &[
    opt(
        "root",
        None,
        "DIR",
        "root directory for container state (default /run/berth-runtime)",
    ),
    opt("log", None, "FILE", "also write log messages to this file"),
    opt("log-format", None, "text|json", "log format (default text)"),
    cli::flag("debug", None, "log debug messages too"),
    cli::flag(
        "systemd-cgroup",
        None,
        "use systemd's cgroup driver (not supported)",
    ),
    opt(
        "criu",
        None,
        "PATH",
        "accepted for compatibility (no checkpoint support)",
    ),
    opt(
        "rootless",
        None,
        "true|false|auto",
        "accepted for compatibility",
    ),
    opt(
        "seccomp-cache",
        None,
        "DIR",
        "compiled seccomp filters (default <root>/.seccomp-cache; \"\" disables)",
    ),
    cli::flag("version", Some('v'), "print the version"),
];

const GLOBAL: Command = Command {
    name: "",
    alias: None,
    args: "<COMMAND> [ARGS...]",
    about: "berth-runtime: creates and runs containers from OCI bundles (runc-compatible CLI)",
    flags: GLOBAL_FLAGS,
};

/// Global options.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_format: String,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub seccomp_cache: Option<PathBuf>,
}

impl Global {
    fn from(m: &Matches) -> Result<Global, UsageError> {
        let log_format = m.value("log-format").unwrap_or("text").to_string();
        if log_format != "text" && log_format != "json" {
            return Err(UsageError(format!(
                "invalid --log-format {log_format:?}: use text or json"
            )));
        }
        Ok(Global {
            root: PathBuf::from(m.value("root").unwrap_or(DEFAULT_ROOT)),
            log: m.value("log").map(PathBuf::from),
            log_format,
            debug: m.flag("debug"),
            systemd_cgroup: m.flag("systemd-cgroup"),
            seccomp_cache: m.value("seccomp-cache").map(PathBuf::from),
        })
    }

    pub fn runtime(&self) -> berth_container::Runtime {
        let rt = berth_container::Runtime::new(&self.root);
        match &self.seccomp_cache {
            Some(p) if p.as_os_str().is_empty() => rt,
            Some(p) => rt.with_seccomp_cache(p),
            None => rt.with_seccomp_cache(self.root.join(".seccomp-cache")),
        }
    }
}

type Handler = fn(&Global, &Matches) -> anyhow::Result<i32>;

const COMMANDS: &[(&Command, Handler)] = &[
    (&commands::create::COMMAND, commands::create::run),
    (&commands::start::COMMAND, commands::start::run),
    (&commands::run::COMMAND, commands::run::run),
    (&commands::state::COMMAND, commands::state::run),
    (&commands::kill::COMMAND, commands::kill::run),
    (&commands::delete::COMMAND, commands::delete::run),
    (&commands::exec::COMMAND, commands::exec::run),
    (&commands::ps::COMMAND, commands::ps::run),
    (&commands::list::COMMAND, commands::list::run),
    (&commands::pause::COMMAND, commands::pause::run),
    (&commands::resume::COMMAND, commands::resume::run),
    (&commands::events::COMMAND, commands::events::run),
    (&commands::update::COMMAND, commands::update::run),
    (&commands::features::COMMAND, commands::features::run),
    (&commands::spec::COMMAND, commands::spec::run),
    (
        &commands::unsupported::CHECKPOINT,
        commands::unsupported::run,
    ),
    (&commands::unsupported::RESTORE, commands::unsupported::run),
];

fn version() -> String {
    let seccomp = berth_container::seccomp::libseccomp_version()
        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "berth-runtime version {}\nspec: {}\nlibseccomp: {seccomp}",
        env!("CARGO_PKG_VERSION"),
        berth_container::state::OCI_VERSION
    )
}

enum Outcome {
    Code(i32),
    Usage(UsageError),
    Failed(anyhow::Error),
}

fn main() {
    // CVE-2019-5736: anything that may enter a container runs from a sealed memfd copy.
    memfd::ensure_sealed_copy();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let global = match cli::parse(&GLOBAL, &argv, "berth-runtime") {
        Ok(g) => g,
        Err(e) => usage_exit(&e),
    };
    let g = match Global::from(&global) {
        Ok(g) => g,
        Err(e) => usage_exit(&e),
    };
    let logger = log::init(&g);
    let outcome = dispatch(&g, &global);
    let code = match outcome {
        Outcome::Code(c) => c,
        Outcome::Usage(e) => usage_exit(&e),
        Outcome::Failed(e) => {
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

fn usage_exit(e: &UsageError) -> ! {
    eprintln!("{e}");
    std::process::exit(1)
}

fn dispatch(g: &Global, global: &Matches) -> Outcome {
    let all: Vec<&Command> = COMMANDS.iter().map(|(c, _)| *c).collect();
    if global.flag("version") {
        println!("{}", version());
        return Outcome::Code(0);
    }
    let Some(name) = global.args.first() else {
        print!("{}", cli::help("berth-runtime", &GLOBAL, &all));
        return Outcome::Code(if global.help { 0 } else { 1 });
    };
    if name == "help" {
        print!("{}", cli::help("berth-runtime", &GLOBAL, &all));
        return Outcome::Code(0);
    }
    let Some((cmd, handler)) = COMMANDS
        .iter()
        .find(|(c, _)| c.name == name || c.alias == Some(name.as_str()))
    else {
        return Outcome::Usage(UsageError(format!(
            "unknown command {name:?} (see berth-runtime --help)"
        )));
    };
    if cmd.name == "checkpoint" || cmd.name == "restore" {
        // Whatever flags containerd passes, the answer is the same "not supported".
        return match handler(g, &Matches::default()) {
            Ok(c) => Outcome::Code(c),
            Err(e) => Outcome::Failed(e),
        };
    }
    let context = format!("berth-runtime {}", cmd.name);
    let m = match cli::parse(cmd, &global.args[1..], &context) {
        Ok(m) => m,
        Err(e) => return Outcome::Usage(e),
    };
    if m.help {
        print!("{}", cli::help("berth-runtime", cmd, &[]));
        return Outcome::Code(0);
    }
    if g.systemd_cgroup {
        return Outcome::Failed(anyhow::anyhow!(
            "--systemd-cgroup is not supported: berth-runtime manages cgroups through cgroupfs \
             (drop the flag, or set SystemdCgroup = false in containerd's runc options)"
        ));
    }
    match handler(g, &m) {
        Ok(c) => Outcome::Code(c),
        Err(e) => match e.downcast::<UsageError>() {
            Ok(u) => Outcome::Usage(u),
            Err(e) => Outcome::Failed(e),
        },
    }
}
