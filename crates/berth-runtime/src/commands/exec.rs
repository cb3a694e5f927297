//! `exec`: run another process in a container (`--process FILE`, or ARGS with the
//! container's process settings and the flags below as overrides, like runc).

use anyhow::Context;
use berth_container::ExecOptions;
use berth_oci::spec::runtime::{Capability, Process, User};
use std::collections::HashSet;
use std::path::PathBuf;

use crate::cli::{Command, Flag, Matches, UsageError, flag, opt};

const FLAGS: &[Flag] = &[
    opt(
        "process",
        Some('p'),
        "FILE",
        "a process.json (OCI process object; - for stdin) instead of ARGS",
    ),
    flag("tty", Some('t'), "allocate a pseudo-terminal"),
    flag("detach", Some('d'), "do not wait for the process"),
    opt("pid-file", None, "FILE", "write the process's pid here"),
    opt(
        "console-socket",
        None,
        "PATH",
        "unix socket that receives the pty master",
    ),
    opt(
        "env",
        Some('e'),
        "KEY=VALUE",
        "extra environment variable (repeatable)",
    ),
    opt("cwd", None, "DIR", "working directory inside the container"),
    opt("user", Some('u'), "UID[:GID]", "user to run as"),
    opt(
        "additional-gids",
        Some('g'),
        "GID",
        "additional group (repeatable)",
    ),
    opt("cap", Some('c'), "CAP", "add a capability (repeatable)"),
    flag("no-new-privs", None, "set no_new_privs"),
    opt("apparmor", None, "PROFILE", "AppArmor profile"),
    opt("process-label", None, "LABEL", "SELinux process label"),
    opt(
        "preserve-fds",
        None,
        "N",
        "pass N extra descriptors (3..3+N)",
    ),
    flag("ignore-paused", None, "accepted for compatibility"),
];

pub const COMMAND: Command = Command {
    name: "exec",
    alias: None,
    args: "<container-id> [COMMAND [ARGS...]]",
    about: "Run a new process in a container",
    flags: FLAGS,
};

/// The parsed flags.
#[derive(Debug)]
pub struct Args {
    pub process: Option<String>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub cap: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub id: String,
    pub command: Vec<String>,
}

impl Args {
    fn from(m: &Matches) -> anyhow::Result<Args> {
        let gids = m
            .values("additional-gids")
            .iter()
            .map(|g| {
                g.parse()
                    .map_err(|_| UsageError(format!("--additional-gids {g:?}: not a number")))
            })
            .collect::<Result<Vec<u32>, _>>()?;
        Ok(Args {
            process: m.value("process").map(str::to_string),
            tty: m.flag("tty"),
            detach: m.flag("detach"),
            pid_file: m.value("pid-file").map(PathBuf::from),
            console_socket: m.value("console-socket").map(PathBuf::from),
            env: m.values("env"),
            cwd: m.value("cwd").map(PathBuf::from),
            user: m.value("user").map(str::to_string),
            additional_gids: gids,
            cap: m.values("cap"),
            no_new_privs: m.flag("no-new-privs"),
            apparmor: m.value("apparmor").map(str::to_string),
            process_label: m.value("process-label").map(str::to_string),
            preserve_fds: m.parse("preserve-fds")?.unwrap_or(0),
            id: m.arg(0, "exec", "<container-id>")?.to_string(),
            command: m.args[1..].to_vec(),
        })
    }
}

fn process_from_flags(a: &Args, base: Option<&Process>) -> anyhow::Result<Process> {
    if a.command.is_empty() {
        anyhow::bail!("exec needs a command (give ARGS after the container id, or --process FILE)");
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(ap) = &a.apparmor {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        let mut user: User = p.user().clone();
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: uid must be a number"))?,
        );
        if !gid.is_empty() {
            user.set_gid(
                gid.parse()
                    .with_context(|| format!("--user {u:?}: gid must be a number"))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let add = |set: &Option<HashSet<Capability>>, c: Capability| {
            let mut s = set.clone().unwrap_or_default();
            s.insert(c);
            Some(s)
        };
        for name in &a.cap {
            let c = berth_container::caps::parse(name)
                .with_context(|| format!("--cap {name:?}: unknown capability"))?;
            caps.set_bounding(add(caps.bounding(), c));
            caps.set_effective(add(caps.effective(), c));
            caps.set_permitted(add(caps.permitted(), c));
            if caps.ambient().as_ref().is_some_and(|a| !a.is_empty()) {
                caps.set_ambient(add(caps.ambient(), c));
                caps.set_inheritable(add(caps.inheritable(), c));
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub fn run(g: &crate::Global, m: &Matches) -> anyhow::Result<i32> {
    let a = &Args::from(m)?;
    let c = super::load(g, &a.id)?;
    let process = match &a.process {
        Some(path) => {
            let bytes = super::read_input(path)?;
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize::<_, Process>(de).map_err(|e| {
                anyhow::anyhow!("invalid process file {path}: {}: {}", e.path(), e.inner())
            })?
        }
        None => process_from_flags(a, c.spec().process().as_ref())?,
    };
    let terminal = process.terminal().unwrap_or(false);
    if a.detach && terminal && a.console_socket.is_none() {
        anyhow::bail!("cannot allocate a tty for a detached exec without --console-socket");
    }
    let mut sfd = if a.detach {
        None
    } else {
        Some(crate::signals::block()?)
    };
    let spawned = c.exec(ExecOptions {
        process,
        stdio: berth_container::Stdio::Inherit,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    })?;
    match sfd.as_mut() {
        None => Ok(0),
        Some(sfd) => crate::tty::wait_foreground(spawned.pid, sfd, spawned.pty_master),
    }
}
