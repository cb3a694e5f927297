//! The container runtime behind the shim: berth-container in-process (the default, no exec
//! on the hot path), or a runc-compatible binary driven through its CLI.
//!
//! Neither keeps the full spec in memory after the create: the shim holds ids, paths and
//! (built-in runtime) the container's held state, the few parts of its configuration later
//! calls need ([`berth_container::Container::held_state`]). The image that created the
//! container keeps it parsed, so the start and the removal of a `run --rm` parse nothing;
//! a lean image after the handoff gets it as JSON text, parsed when a call needs it:
//! deserializing a `Spec` runs serde frames of ~90 KB of stack (probed page by page),
//! which a lean image would otherwise carry for the container's life (measured: 20 → 108
//! KB of stack per idle shim).
//!
//! The built-in runtime's container is *held* ([`berth_container::CreateOptions::held`]):
//! the shim is its only user, so it gets no `<runtime_root>/<id>/` directory, `state.json`
//! or `exec.fifo` (three inodes on every start's path, and their deletion on every exit's;
//! on this machine's journal-less ext4 `/run` each creation scanned recently deleted
//! inodes). Its init waits on a pipe whose write end (the start gate) the shim holds, also
//! across the lean handoff; if the shim dies before the start, the init sees end of file
//! and exits instead of waiting forever.

use berth_cgroups::{CgroupManager, CgroupPath, Hierarchy};
use berth_container::{
    Container, CreateOptions, OverlayMount, Runtime, StartMode, StateFile, Stdio,
};
use berth_oci::errdefs::Classify;
use berth_oci::spec::runtime::{LinuxResources, Spec};
use berth_shim::{Kind, ShimConfig, ShimError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};

/// What creating the container gave us.
pub struct Created {
    pub pid: i32,
    pub pty_master: Option<OwnedFd>,
}

/// The container's stdio as the runtime should hand it over (non-tty).
pub struct ChildStdio<'a> {
    pub stdin: BorrowedFd<'a>,
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
}

pub struct Backend {
    kind: Flavor,
    /// The spec's `linux.cgroupsPath` (kept to resolve the cgroup again after a handoff).
    cgroups_path: Option<String>,
    /// The container's cgroup, resolved once (stats, OOM count, kill --all, freezer).
    cgroup: Option<Box<dyn CgroupManager>>,
    /// The init. It is our child (or, for external runtimes, re-parented to us as the
    /// subreaper), so its pid cannot be reused before we reap it: signalling it directly
    /// is race-free.
    pid: i32,
    /// The container has a pid namespace of its own: when its init is gone, so is every
    /// process in it (the kernel kills them, and the init's exit waits for them), and
    /// nothing can be left over in its cgroup to kill.
    own_pid_ns: bool,
}

enum Flavor {
    Builtin {
        runtime: Runtime,
        id: String,
        seccomp_cache: Option<PathBuf>,
        /// The held container (`None` only in a state from before held containers: then
        /// it is loaded from `<runtime_root>/<id>/`).
        held: Option<Held>,
        /// Until the start: one byte written here lets the init run the app.
        gate: Option<OwnedFd>,
    },
    External(External),
}

/// The built-in runtime's held container, reduced to its [`Container::held_state`].
enum Held {
    /// In the image that created it: the start and the removal use it as it is.
    Live(Box<Container>),
    /// After a handoff: parsed when a call needs it (see the module docs).
    Json(String),
}

impl Held {
    fn container(&self, runtime: &Runtime) -> Result<std::borrow::Cow<'_, Container>, ShimError> {
        match self {
            Held::Live(c) => Ok(std::borrow::Cow::Borrowed(c)),
            Held::Json(j) => Backend::adopt(runtime, j).map(std::borrow::Cow::Owned),
        }
    }

    fn to_json(&self) -> Result<String, ShimError> {
        match self {
            Held::Live(c) => serde_json::to_string(&c.held_state())
                .map_err(|e| ShimError::internal(format!("encode the container's state: {e}"))),
            Held::Json(j) => Ok(j.clone()),
        }
    }
}

fn no_cgroup() -> ShimError {
    ShimError::new(
        Kind::Unavailable,
        "the container's cgroup could not be resolved on this host",
    )
}

/// Everything a [`Backend`] needs, as plain data (see `handoff`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BackendState {
    pub id: String,
    pub pid: i32,
    pub cgroups_path: Option<String>,
    /// `None`: the built-in runtime.
    pub external: Option<ExternalState>,
    pub runtime_root: PathBuf,
    pub seccomp_cache: Option<PathBuf>,
    /// See [`Backend`]'s field; absent (false: look for leftovers) in older states.
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The built-in runtime's held container ([`Container::held_state`], as JSON text:
    /// the new image does not parse it before it needs it).
    #[serde(default)]
    pub held: Option<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ExternalState {
    pub binary: PathBuf,
    pub global_args: Vec<String>,
    pub host_mount: Option<PathBuf>,
    pub state_dir: PathBuf,
}

pub struct External {
    binary: PathBuf,
    global_args: Vec<String>,
    root: PathBuf,
    id: String,
    /// The overlay the shim mounted on the host for the runtime, unmounted at cleanup.
    host_mount: Option<PathBuf>,
    state_dir: PathBuf,
}

fn classified(e: impl Classify + std::fmt::Display) -> ShimError {
    ShimError::from_classified(&e)
}

fn overlay_of(cfg: &ShimConfig) -> Option<OverlayMount> {
    cfg.rootfs.as_ref().map(|o| OverlayMount {
        lowerdirs: o.lowerdirs.clone(),
        upperdir: o.upperdir.clone(),
        workdir: o.workdir.clone(),
        options: o.options.clone(),
    })
}

/// Reads the bundle's spec and checks it against the shim's config.
fn load_spec(cfg: &ShimConfig) -> Result<Spec, ShimError> {
    let spec = berth_container::load_spec(&cfg.bundle).map_err(classified)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal != cfg.tty {
        return Err(ShimError::invalid(format!(
            "shim.json says tty={} but the bundle's process.terminal is {terminal}: make them agree",
            cfg.tty
        )));
    }
    Ok(spec)
}

/// Points the spec's new network namespace (type `network` without a path) at `path`, a
/// namespace made ahead of time; a spec that shares or joins one is left as it is.
fn join_prepared_netns(spec: &mut Spec, path: &Path) {
    use berth_oci::spec::runtime::LinuxNamespaceType;
    let Some(namespaces) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    for ns in namespaces.iter_mut() {
        if ns.typ() == LinuxNamespaceType::Network
            && ns.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
        {
            ns.set_path(Some(path.to_path_buf()));
        }
    }
}

impl Backend {
    /// Creates the container (and runs it with `start_now`). `announce` gets the init's
    /// pid and the warnings as soon as the runtime has created it, before the shim's own
    /// bookkeeping (the built-in runtime's held state, dropping the full spec: ~0.2 ms);
    /// an error after it removes the container again.
    pub fn create(
        cfg: &ShimConfig,
        state_dir: &Path,
        stdio: ChildStdio<'_>,
        announce: &mut dyn FnMut(i32, Vec<String>),
    ) -> Result<(Backend, Created), ShimError> {
        let spec = load_spec(cfg)?;
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .and_then(|p| p.to_str())
            .map(str::to_string);
        let cgroup_path =
            CgroupPath::from_oci(cgroups_path.as_deref(), &cfg.id).map_err(classified)?;
        let own_pid_ns = berth_oci::namespaces::creates(
            &spec,
            berth_oci::spec::runtime::LinuxNamespaceType::Pid,
        );
        let (kind, created) = if cfg.builtin_runtime() {
            let mut spec = spec;
            if let Some(path) = &cfg.netns {
                join_prepared_netns(&mut spec, path);
            }
            let mut runtime = Runtime::new(&cfg.runtime_root);
            if let Some(c) = &cfg.seccomp_cache {
                runtime = runtime.with_seccomp_cache(c);
            }
            let mut created = runtime
                .create(CreateOptions {
                    id: cfg.id.clone(),
                    bundle: cfg.bundle.clone(),
                    spec: Some(spec),
                    stdio: Stdio::Fds([stdio.stdin, stdio.stdout, stdio.stderr]),
                    rootfs_mount: overlay_of(cfg),
                    init: cfg.init,
                    start: if cfg.start_now {
                        StartMode::Now
                    } else {
                        StartMode::OnStart
                    },
                    held: true,
                    recycle_cgroup: cfg.recycle_cgroup,
                    ..Default::default()
                })
                .map_err(classified)?;
            announce(created.pid, std::mem::take(&mut created.warnings));
            let out = Created {
                pid: created.pid,
                pty_master: created.pty_master,
            };
            // Only what later calls need stays (the full spec goes with `created`).
            let held = runtime.adopt(created.container.held_state()).map_err(|e| {
                let _ = created.container.delete(true);
                classified(e)
            })?;
            let kind = Flavor::Builtin {
                runtime,
                id: cfg.id.clone(),
                seccomp_cache: cfg.seccomp_cache.clone(),
                held: Some(Held::Live(Box::new(held))),
                gate: created.start_gate,
            };
            (kind, out)
        } else {
            let mut ext = External {
                binary: PathBuf::from(&cfg.runtime),
                global_args: cfg.runtime_args.clone(),
                root: cfg.runtime_root.clone(),
                id: cfg.id.clone(),
                host_mount: None,
                state_dir: state_dir.to_path_buf(),
            };
            let root_path = spec
                .root()
                .as_ref()
                .map(|r| r.path().clone())
                .unwrap_or_else(|| PathBuf::from("rootfs"));
            drop(spec);
            match ext.create(cfg, &root_path, stdio) {
                Ok(created) => {
                    announce(created.pid, Vec::new());
                    (Flavor::External(ext), created)
                }
                Err(e) => {
                    ext.cleanup();
                    return Err(e);
                }
            }
        };
        // The layout the create used (read once per process; a standby read it before its
        // hand-off), not a second parse of /proc/self/mountinfo.
        let cgroup = Hierarchy::host().and_then(|h| h.manager(&cgroup_path)).ok();
        let pid = created.pid;
        Ok((
            Backend {
                kind,
                cgroups_path,
                cgroup,
                pid,
                own_pid_ns,
            },
            created,
        ))
    }

    /// The container runs under the built-in runtime (in this process).
    pub fn is_builtin(&self) -> bool {
        matches!(self.kind, Flavor::Builtin { .. })
    }

    /// The start gate, while the container waits for its start (a handoff carries it).
    pub fn start_gate(&self) -> Option<BorrowedFd<'_>> {
        match &self.kind {
            Flavor::Builtin { gate, .. } => gate.as_ref().map(|g| g.as_fd()),
            Flavor::External(_) => None,
        }
    }

    /// The backend as plain data, for a handoff to a fresh image of the shim (with the
    /// descriptor of [`Backend::start_gate`]).
    pub fn to_state(&self) -> Result<BackendState, ShimError> {
        Ok(match &self.kind {
            Flavor::Builtin {
                runtime,
                id,
                seccomp_cache,
                held,
                ..
            } => BackendState {
                id: id.clone(),
                pid: self.pid,
                cgroups_path: self.cgroups_path.clone(),
                external: None,
                runtime_root: runtime.root().to_path_buf(),
                seccomp_cache: seccomp_cache.clone(),
                own_pid_ns: self.own_pid_ns,
                held: held.as_ref().map(Held::to_json).transpose()?,
            },
            Flavor::External(e) => BackendState {
                id: e.id.clone(),
                pid: self.pid,
                cgroups_path: self.cgroups_path.clone(),
                external: Some(ExternalState {
                    binary: e.binary.clone(),
                    global_args: e.global_args.clone(),
                    host_mount: e.host_mount.clone(),
                    state_dir: e.state_dir.clone(),
                }),
                runtime_root: e.root.clone(),
                seccomp_cache: None,
                own_pid_ns: self.own_pid_ns,
                held: None,
            },
        })
    }

    /// The backend again, from [`Backend::to_state`] and the start gate it carried.
    pub fn from_state(s: BackendState, gate: Option<OwnedFd>) -> Backend {
        let cgroup = CgroupPath::from_oci(s.cgroups_path.as_deref(), &s.id)
            .and_then(|p| Hierarchy::detect().and_then(|h| h.manager(&p)))
            .ok();
        let kind = match s.external {
            None => {
                let mut runtime = Runtime::new(&s.runtime_root);
                if let Some(c) = &s.seccomp_cache {
                    runtime = runtime.with_seccomp_cache(c);
                }
                Flavor::Builtin {
                    runtime,
                    id: s.id,
                    seccomp_cache: s.seccomp_cache,
                    held: s.held.map(Held::Json),
                    gate,
                }
            }
            Some(e) => Flavor::External(External {
                binary: e.binary,
                global_args: e.global_args,
                root: s.runtime_root,
                id: s.id,
                host_mount: e.host_mount,
                state_dir: e.state_dir,
            }),
        };
        Backend {
            kind,
            cgroups_path: s.cgroups_path,
            cgroup,
            pid: s.pid,
            own_pid_ns: s.own_pid_ns,
        }
    }

    /// The held container again, from its state's JSON.
    fn adopt(runtime: &Runtime, held: &str) -> Result<Container, ShimError> {
        let state: StateFile = serde_json::from_str(held)
            .map_err(|e| ShimError::internal(format!("decode the container's state: {e}")))?;
        runtime.adopt(state).map_err(classified)
    }

    pub fn start(&mut self) -> Result<(), ShimError> {
        match &mut self.kind {
            Flavor::Builtin {
                runtime,
                id,
                held: Some(held),
                gate,
                ..
            } => {
                let gate = gate.take().ok_or_else(|| {
                    ShimError::conflict(format!("container {id} was started already"))
                })?;
                held.container(runtime)?
                    .start_gated(gate)
                    .map_err(classified)
            }
            Flavor::Builtin { runtime, id, .. } => runtime
                .load(id)
                .map_err(classified)?
                .start()
                .map_err(classified),
            Flavor::External(e) => e.run(&["start", &e.id], None).map(drop),
        }
    }

    /// Signals the init (or, with `all`, every process of the container's cgroup).
    /// Only called while the init has not been reaped.
    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            ShimError::invalid(format!("invalid signal {signal}: not a signal number"))
        })?;
        if all {
            return self.cgroup()?.kill_all(signal).map_err(classified);
        }
        let pid = rustix::process::Pid::from_raw(self.pid)
            .ok_or_else(|| ShimError::internal("the container has no init pid"))?;
        rustix::process::kill_process(pid, sig)
            .map_err(|e| ShimError::internal(format!("signal {signal} to pid {pid}: {e}")))
    }

    pub fn pause(&self) -> Result<(), ShimError> {
        match &self.kind {
            Flavor::Builtin { .. } => self.cgroup()?.freeze().map_err(classified),
            Flavor::External(e) => e.run(&["pause", &e.id], None).map(drop),
        }
    }

    pub fn resume(&self) -> Result<(), ShimError> {
        match &self.kind {
            Flavor::Builtin { .. } => self.cgroup()?.thaw().map_err(classified),
            Flavor::External(e) => e.run(&["resume", &e.id], None).map(drop),
        }
    }

    pub fn update(&mut self, res: &LinuxResources) -> Result<(), ShimError> {
        let cgroup = self.cgroup.as_deref();
        match &mut self.kind {
            // Only the cgroup changes: a held container has no state file to record it in,
            // and nothing later reads the resources, but for its spare tag: its limits now
            // differ from the tag's, so its cgroup is never set aside.
            Flavor::Builtin {
                held: Some(held),
                runtime,
                ..
            } => {
                cgroup
                    .ok_or_else(no_cgroup)?
                    .apply(res)
                    .map_err(classified)?;
                let mut c = held.container(runtime)?.into_owned();
                c.never_a_spare();
                *held = Held::Live(Box::new(c));
                Ok(())
            }
            Flavor::Builtin { runtime, id, .. } => runtime
                .load(id)
                .and_then(|mut c| c.update(res))
                .map_err(classified),
            Flavor::External(e) => {
                let json = serde_json::to_vec(res)
                    .map_err(|err| ShimError::invalid(format!("encode resources: {err}")))?;
                e.run(&["update", "--resources", "-", &e.id], Some(&json))
                    .map(drop)
            }
        }
    }

    fn cgroup(&self) -> Result<&dyn CgroupManager, ShimError> {
        self.cgroup.as_deref().ok_or_else(no_cgroup)
    }

    /// The cgroup's statistics (runc's `events --stats` shape) and pids.
    pub fn stats(&self) -> Result<(serde_json::Value, Vec<i32>), ShimError> {
        let cg = self.cgroup()?;
        let stats = cg.stats().map_err(classified)?;
        let pids = cg.pids().map_err(classified)?;
        let v = serde_json::to_value(&stats)
            .map_err(|e| ShimError::internal(format!("encode stats: {e}")))?;
        Ok((v, pids))
    }

    pub fn oom_kill_count(&self) -> u64 {
        self.cgroup
            .as_ref()
            .and_then(|c| c.oom_kill_count().ok())
            .unwrap_or(0)
    }

    /// SIGKILLs whatever is left in the container's cgroup after its init exited (only
    /// possible without a pid namespace), so its stdio reaches EOF.
    pub fn kill_leftovers(&self) {
        // With its own pid namespace there is nothing to list (see `own_pid_ns`): the
        // listing (cgroup.procs and sub-cgroups) was on the exit report's path.
        if self.own_pid_ns {
            return;
        }
        if let Ok(cg) = self.cgroup()
            && cg.pids().map(|p| !p.is_empty()).unwrap_or(false)
        {
            let _ = cg.kill_all(rustix::process::Signal::KILL.as_raw());
        }
    }

    /// Removes the runtime's state: cgroup, state directory (poststop hooks run), host
    /// mounts. Called once the init has exited and been reaped, or to remove a container
    /// that never started. Errors are reported, the rest still cleaned.
    pub fn delete(&mut self) -> Result<(), ShimError> {
        match &mut self.kind {
            Flavor::Builtin {
                runtime,
                held: Some(held),
                gate,
                ..
            } => {
                // An unstarted init sees end of file and exits; `delete` kills it anyway.
                *gate = None;
                held.container(runtime)?
                    .delete_recycling(true)
                    .map_err(classified)
            }
            Flavor::Builtin { runtime, id, .. } => match runtime.load(id) {
                Ok(c) => c.delete(true).map_err(classified),
                Err(berth_container::Error::NotFound(_)) => Ok(()),
                Err(e) => Err(classified(e)),
            },
            Flavor::External(e) => {
                let r = e.run(&["delete", "--force", &e.id], None).map(drop);
                e.cleanup();
                r
            }
        }
    }
}

impl External {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(&self.global_args).arg("--root").arg(&self.root);
        c.arg("--log")
            .arg(self.state_dir.join("runtime.log"))
            .arg("--log-format")
            .arg("json");
        c
    }

    /// Runs `<runtime> <args>`; a failure carries the runtime's error message.
    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, ShimError> {
        let mut c = self.command();
        c.args(args)
            .stdin(if input.is_some() {
                ProcStdio::piped()
            } else {
                ProcStdio::null()
            })
            .stdout(ProcStdio::piped())
            .stderr(ProcStdio::piped());
        let mut child = c.spawn().map_err(|e| self.spawn_error(e))?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write;
            let _ = stdin.write_all(data);
        }
        let out = child.wait_with_output().map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(self.failure(args[0], &out.stderr))
    }

    fn spawn_error(&self, e: std::io::Error) -> ShimError {
        ShimError::new(
            Kind::Internal,
            format!("cannot run the runtime {}: {e}", self.binary.display()),
        )
    }

    /// Turns a failed runtime command into an error: its last logged error (runc logs JSON
    /// lines `{"level":"error","msg":...}`), else its stderr.
    fn failure(&self, op: &str, stderr: &[u8]) -> ShimError {
        let log = std::fs::read_to_string(self.state_dir.join("runtime.log")).unwrap_or_default();
        let logged = log
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_string));
        let msg = logged.unwrap_or_else(|| String::from_utf8_lossy(stderr).trim().to_string());
        let lower = msg.to_lowercase();
        let kind = if lower.contains("not running")
            || lower.contains("cannot") && lower.contains("state")
        {
            Kind::Conflict
        } else if lower.contains("does not exist") {
            Kind::NotFound
        } else {
            Kind::Internal
        };
        ShimError::new(
            kind,
            format!("{} {op} {}: {msg}", self.binary.display(), self.id),
        )
    }

    fn create(
        &mut self,
        cfg: &ShimConfig,
        root_path: &Path,
        stdio: ChildStdio<'_>,
    ) -> Result<Created, ShimError> {
        if let Some(o) = &cfg.rootfs {
            let target = if root_path.is_absolute() {
                root_path.to_path_buf()
            } else {
                cfg.bundle.join(root_path)
            };
            mount_overlay(o, &target)?;
            self.host_mount = Some(target);
        }
        let pid_file = self.state_dir.join("init.pid");
        let console = self.state_dir.join("console.sock");
        // A socket path must fit in 108 bytes; a longer one is reached through the state
        // directory's descriptor (ours under /proc/self, runc's view under /proc/<our pid>).
        let dir = std::fs::File::open(&self.state_dir)
            .map_err(|e| ShimError::internal(format!("open {}: {e}", self.state_dir.display())))?;
        let (bind_at, console_arg) = if console.as_os_str().len() < 100 {
            (console.clone(), console.clone())
        } else {
            use std::os::fd::AsRawFd;
            let fd = dir.as_raw_fd();
            let pid = rustix::process::getpid().as_raw_nonzero();
            (
                PathBuf::from(format!("/proc/self/fd/{fd}/console.sock")),
                PathBuf::from(format!("/proc/{pid}/fd/{fd}/console.sock")),
            )
        };
        let listener = if cfg.tty {
            let _ = std::fs::remove_file(&console);
            Some(
                std::os::unix::net::UnixListener::bind(&bind_at)
                    .map_err(|e| ShimError::internal(format!("bind {}: {e}", console.display())))?,
            )
        } else {
            None
        };
        let mut c = self.command();
        c.arg("create")
            .arg("--bundle")
            .arg(&cfg.bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if listener.is_some() {
            c.arg("--console-socket").arg(&console_arg);
            c.stdin(ProcStdio::null())
                .stdout(ProcStdio::null())
                .stderr(ProcStdio::null());
        } else {
            c.stdin(dup(stdio.stdin)?)
                .stdout(dup(stdio.stdout)?)
                .stderr(dup(stdio.stderr)?);
        }
        c.arg(&self.id);
        let status = c.status().map_err(|e| self.spawn_error(e))?;
        let _ = std::fs::remove_file(&console);
        drop(dir);
        if !status.success() {
            return Err(self.failure("create", b""));
        }
        let pty_master = match listener {
            Some(l) => Some(receive_pty(&l)?),
            None => None,
        };
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or_else(|| {
                ShimError::internal(format!(
                    "{} create did not write the pid file {}",
                    self.binary.display(),
                    pid_file.display()
                ))
            })?;
        let _ = std::fs::remove_file(&pid_file);
        if cfg.start_now {
            self.run(&["start", &self.id], None)?;
        }
        Ok(Created { pid, pty_master })
    }

    /// Unmounts the host overlay and removes the runtime's log.
    fn cleanup(&mut self) {
        if let Some(t) = self.host_mount.take()
            && let Err(e) = rustix::mount::unmount(&t, rustix::mount::UnmountFlags::DETACH)
        {
            warn!("unmount {}: {e}", t.display());
        }
        let _ = std::fs::remove_file(self.state_dir.join("runtime.log"));
    }
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, ShimError> {
    fd.try_clone_to_owned()
        .map_err(|e| ShimError::internal(format!("dup stdio: {e}")))
}

fn mount_overlay(o: &berth_shim::Overlay, target: &Path) -> Result<(), ShimError> {
    let lower: Vec<String> = o
        .lowerdirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let mut data = format!("lowerdir={}", lower.join(":"));
    if let (Some(u), Some(w)) = (&o.upperdir, &o.workdir) {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    for opt in &o.options {
        data.push(',');
        data.push_str(opt);
    }
    let data = std::ffi::CString::new(data)
        .map_err(|_| ShimError::invalid("overlay mount options contain a NUL byte"))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| {
        ShimError::internal(format!(
            "mount the overlay root filesystem on {}: {e}",
            target.display()
        ))
    })
}

/// Accepts the runtime's connection on the console socket and takes the pty master it sent.
fn receive_pty(l: &std::os::unix::net::UnixListener) -> Result<OwnedFd, ShimError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let err = |what: &str, e: &dyn std::fmt::Display| {
        ShimError::internal(format!(
            "receive the terminal from the runtime: {what}: {e}"
        ))
    };
    l.set_nonblocking(true).map_err(|e| err("socket", &e))?;
    let (conn, _) = l
        .accept()
        .map_err(|e| err("the runtime did not connect to the console socket", &e))?;
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut data = [0u8; 256];
    rustix::net::recvmsg(
        conn.as_fd(),
        &mut [std::io::IoSliceMut::new(&mut data)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| err("recvmsg", &e))?;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(err(
        "no descriptor",
        &"the runtime sent a message without the pty master",
    ))
}
