//! `exec`: run another process in a container (`--process FILE`, or ARGS with the
//! container's process settings and the flags below as overrides, like runc).

use anyhow::Context;
use berth_container::ExecOptions;
use berth_oci::spec::runtime::{Capability, Process, User};
use std::collections::HashSet;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A process.json (OCI `process` object) to run instead of ARGS.
    #[arg(short, long)]
    pub process: Option<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NET_ADMIN or NET_ADMIN).
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux process label.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N extra descriptors (3..3+N).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
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

pub fn run(g: &crate::Global, a: &Args) -> anyhow::Result<i32> {
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
