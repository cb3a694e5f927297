//! The public API: a [`Runtime`] (a state root) creates and loads [`Container`]s.

use berth_cgroups::{CgroupManager, CgroupPath, CgroupVersion, Hierarchy};
use berth_oci::spec::runtime::{LinuxResources, Process, Spec};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::{Common, CreateArgs};
use crate::error::{Error, Result};
use crate::hooks::run_hooks_warn;
use crate::plan::{self, OverlayMount};
use crate::spawn::{self, Conversation, CreateGuard, CreateSpawn};
use crate::state::{self, EXEC_FIFO, OciState, StateFile, Status, validate_id};
use crate::sync;

/// Where the container's stdin/stdout/stderr come from (when `process.terminal` is false).
#[derive(Debug, Clone, Copy, Default)]
pub enum Stdio<'a> {
    /// The caller's own 0, 1, 2.
    #[default]
    Inherit,
    /// These descriptors (e.g. pipes held by the shim); the caller keeps them open until the
    /// call returns and closes its copies afterwards.
    Fds([BorrowedFd<'a>; 3]),
}

/// When the container's process starts running the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// Wait on the exec fifo until [`Container::start`] (`create` then `start`).
    #[default]
    OnStart,
    /// Run the app as soon as the container is set up (`run`; no fifo round trip).
    Now,
}

/// Options of [`Runtime::create`].
#[derive(Debug, Default)]
pub struct CreateOptions<'a> {
    pub id: String,
    /// The bundle directory (relative `root.path` and bind sources resolve against it).
    pub bundle: PathBuf,
    /// The configuration; `None` reads `<bundle>/config.json`.
    pub spec: Option<Spec>,
    pub stdio: Stdio<'a>,
    /// With `process.terminal`, send the pty master to this unix socket (runc's
    /// `--console-socket`) instead of returning it.
    pub console_socket: Option<PathBuf>,
    /// Write the init's pid here (atomically).
    pub pid_file: Option<PathBuf>,
    /// MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// Pass descriptors 3..3+N to the container.
    pub preserve_fds: u32,
    /// Mount this overlay on `root.path` inside the container's mount namespace.
    pub rootfs_mount: Option<OverlayMount>,
    /// PID 1 is the built-in reaper; the app is its child.
    pub init: bool,
    pub start: StartMode,
    /// The caller holds the container's state: no `<root>/<id>/` directory, `state.json` or
    /// exec fifo is made (each an inode on the start's path). The returned [`Container`]
    /// is the state ([`Container::held_state`] to keep it elsewhere, [`Runtime::adopt`] to
    /// get it back), and with [`StartMode::OnStart`] the init waits on a pipe whose write
    /// end is [`Created::start_gate`] ([`Container::start_gated`]). [`Runtime::load`],
    /// `list` and the CLI do not see such a container: for a caller that is its only user
    /// (the shim). If the gate closes unwritten (the caller died), the init exits.
    pub held: bool,
    /// On a cgroup v1 host, take a spare cgroup an earlier container with the same
    /// resources set aside (`berth_cgroups::spare`) instead of making the directories, and
    /// let [`Container::delete_recycling`] set this one's aside. For a caller that runs many
    /// containers under one parent (the shim); a runc-style `delete` still removes it.
    pub recycle_cgroup: bool,
}

/// What [`Runtime::create`] returns.
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    /// The init's pid. With [`StartMode::Now`] the caller is its parent and reaps it.
    pub pid: i32,
    /// The pty master when `process.terminal` is set and no console socket was given.
    pub pty_master: Option<OwnedFd>,
    /// Settings that were tolerated but ignored (e.g. AppArmor on a host without it).
    pub warnings: Vec<String>,
    /// [`CreateOptions::held`] with [`StartMode::OnStart`]: write one byte here to start.
    pub start_gate: Option<OwnedFd>,
}

/// Options of [`Container::exec`].
#[derive(Debug)]
pub struct ExecOptions<'a> {
    pub process: Process,
    pub stdio: Stdio<'a>,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// A process started by [`Container::exec`]; the caller is its parent and reaps it.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pty_master: Option<OwnedFd>,
    pub warnings: Vec<String>,
}

/// A state root (`--root`): where containers' state directories live.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    seccomp_cache: Option<PathBuf>,
}

/// A created container (loaded from its state directory, or held by its creator).
#[derive(Debug, Clone)]
pub struct Container {
    runtime: Runtime,
    /// `None`: held by the caller ([`CreateOptions::held`]), no files.
    dir: Option<PathBuf>,
    state: StateFile,
}

/// Reads and validates `<bundle>/config.json`; errors name the JSON field.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::spec(
            "config.json",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    parse_spec(&bytes)
}

/// Parses a runtime spec; errors name the JSON path of the bad field.
pub fn parse_spec(bytes: &[u8]) -> Result<Spec> {
    // The common, valid case takes the plain (faster, smaller) deserializer; only a failure
    // is parsed again with path tracking to name the field.
    if let Ok(spec) = serde_json::from_slice(bytes) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::spec(
            if path == "." {
                "config.json".into()
            } else {
                path
            },
            e.into_inner().to_string(),
        )
    })
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            seccomp_cache: None,
        }
    }

    /// Cache compiled seccomp programs in `dir` (by content hash).
    pub fn with_seccomp_cache(mut self, dir: impl Into<PathBuf>) -> Runtime {
        self.seccomp_cache = Some(dir.into());
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Loads a container by id.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.dir(id);
        let state = StateFile::load(&dir, id)?;
        Ok(Container {
            runtime: self.clone(),
            dir: Some(dir),
            state,
        })
    }

    /// A held container again, from its [`Container::held_state`].
    pub fn adopt(&self, state: StateFile) -> Result<Container> {
        validate_id(&state.id)?;
        Ok(Container {
            runtime: self.clone(),
            dir: None,
            state,
        })
    }

    /// Every container under the root, by id. Entries that cannot be loaded are skipped.
    pub fn list(&self) -> Result<Vec<Container>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()), e)),
        };
        let mut out: Vec<Container> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| validate_id(id).is_ok())
            .filter_map(|id| self.load(&id).ok())
            .collect();
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    /// Creates a container: validates the spec, sets up cgroups and the state directory,
    /// and clones its init into the new namespaces. Nothing is left behind on failure.
    ///
    /// Must be called from a single-threaded process (it forks).
    pub fn create(&self, opts: CreateOptions<'_>) -> Result<Created> {
        validate_id(&opts.id)?;
        let bundle = std::fs::canonicalize(&opts.bundle)
            .map_err(|e| Error::spec("bundle", format!("{}: {e}", opts.bundle.display())))?;
        let spec = match opts.spec {
            Some(s) => s,
            None => load_spec(&bundle)?,
        };
        let mut plan = plan::plan(&spec, &bundle, opts.no_pivot, opts.rootfs_mount.as_ref())?;
        let mut warnings = Vec::new();
        spawn::tolerate_lsm(&mut plan.process, &spec, &mut warnings);
        // Borrowed, and the spec moved into the state below: copies of the whole
        // configuration (Docker's seccomp profile is most of it) cost the create's path
        // hundreds of allocations.
        let linux = spec.linux().as_ref();
        let seccomp = linux
            .and_then(|l| l.seccomp().as_ref())
            .map(|s| crate::seccomp::compile(s, self.seccomp_cache.as_deref()))
            .transpose()?;
        let rootfs = std::fs::canonicalize(&plan.rootfs)
            .map_err(|e| Error::spec("root.path", format!("{}: {e}", plan.rootfs.display())))?;

        let cg_path = CgroupPath::from_oci(
            linux
                .and_then(|l| l.cgroups_path().as_ref())
                .and_then(|p| p.to_str()),
            &opts.id,
        )?;
        let hierarchy = Hierarchy::host()?;
        let cgroup = hierarchy.manager(&cg_path)?;
        let mut resources: LinuxResources = linux
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        let mut rules = resources.devices().clone().unwrap_or_default();
        rules.extend(crate::devices::default_allow_rules());
        resources.set_devices(Some(rules));
        let spare_tag = if opts.recycle_cgroup {
            berth_cgroups::spare_tag(&resources)
        } else {
            None
        };

        let join_fds = spawn::open_join_fds(&plan.ns)?;

        let dir = if opts.held {
            None
        } else {
            std::fs::create_dir_all(&self.root)
                .map_err(|e| Error::io(format!("create state root {}", self.root.display()), e))?;
            let dir = self.dir(&opts.id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::AlreadyExists(opts.id));
                }
                Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
            }
            Some(dir)
        };
        let mut guard = CreateGuard {
            dir: dir.clone(),
            cgroup: None,
            pid: None,
        };
        // cgroup v1 without new user or cgroup namespaces: the init is cloned first and sets
        // up its rootfs while we create the cgroup (ten-odd mkdirs and the limits); it joins
        // by writing "0" to the `tasks` files we send it (`cgroup_join`). Only a cgroup2
        // directory to clone into (a hybrid host's twin) must exist before the clone. A new
        // cgroup namespace is made after the join, and a user namespace's init waits for its
        // id maps first: both keep the cgroup ready at the clone.
        if let Some(tag) = &spare_tag {
            cgroup.take_spare(tag);
        }
        let late = cgroup.version() == CgroupVersion::V1
            && plan.ns.new_mount
            && !plan.ns.new_user
            && !plan.ns.new_cgroup;
        let early = if late {
            cgroup.create_early()?
        } else {
            cgroup.create()?;
            Vec::new()
        };
        guard.cgroup = Some(cgroup.as_ref());
        if !late {
            cgroup.apply(&resources)?;
        }
        // The init waits on the fifo (read-write: it never sees end of file), or on a pipe
        // whose write end the caller holds.
        let (fifo, gate) = match (opts.start, &dir) {
            (StartMode::Now, _) => (None, None),
            (StartMode::OnStart, Some(dir)) => {
                (Some(spawn::make_exec_fifo(&dir.join(EXEC_FIFO))?), None)
            }
            (StartMode::OnStart, None) => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                    .map_err(|e| Error::io("create the start gate", e))?;
                (Some(r), Some(w))
            }
        };
        let cgroup_paths = spawn::cgroup_mount_paths(cgroup.as_ref());
        let join = if late {
            let cpu = crate::cgroup_join::tasks_files_of(&early);
            crate::cgroup_join::clone_target(cgroup.as_ref(), &hierarchy, &cg_path)
                .zip(cpu)
                .map(|(c, self_join)| crate::cgroup_join::JoinHandles {
                    clone_into: c,
                    self_join,
                })
        } else {
            crate::cgroup_join::handles(cgroup.as_ref(), &hierarchy, &cg_path)
        };

        let mut oci = StateFile {
            id: opts.id.clone(),
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            pid: 0,
            pid_start_time: 0,
            created: now_rfc3339(),
            config: spec,
            init: opts.init,
            seccomp_cache: self.seccomp_cache.clone(),
            spare_tag,
        };
        let hook_state = oci.oci_state(Status::Creating);
        let hooks = &plan.hooks;
        let prestart = hooks.prestart().clone().unwrap_or_default();
        let create_runtime = hooks.create_runtime().clone().unwrap_or_default();
        let create_container = hooks.create_container().clone().unwrap_or_default();
        let start_container = hooks.start_container().clone().unwrap_or_default();
        let parent_hooks = !prestart.is_empty() || !create_runtime.is_empty();

        let (parent_end, child_end) =
            sync::pair().map_err(|e| Error::io("create sync socket", e))?;
        let common = Common {
            chan: child_end,
            process: &plan.process,
            seccomp: seccomp.as_ref(),
            stdio: match opts.stdio {
                Stdio::Inherit => None,
                Stdio::Fds(f) => Some(f),
            },
            fifo: fifo.as_ref().map(|f| f.as_fd()),
            gate_writer: gate.as_ref().map(|g| g.as_raw_fd()),
            preserve_fds: opts.preserve_fds,
            init: opts.init,
            wait_go_early: plan.ns.new_user || plan.ns.new_cgroup,
            new_user: plan.ns.new_user,
            new_cgroup: plan.ns.new_cgroup,
            start_hooks: &start_container,
            hook_state: Some(&hook_state),
            thread_check: None,
            got_go: Default::default(),
            cgroup_join: join.as_ref().map_or(&[], |j| j.self_join.as_slice()),
            cgroup_join_late: late.into(),
            ignored_signals: crate::child::ignored_signals(),
        };
        let args = CreateArgs {
            common,
            plan: &plan,
            rootfs: &rootfs,
            cgroup_paths: &cgroup_paths,
            parent_hooks,
            container_hooks: &create_container,
        };
        let born = spawn::fork_create(
            CreateSpawn {
                args,
                ns: &plan.ns,
                join_fds: &join_fds,
                cgroup_fd: join
                    .as_ref()
                    .and_then(|j| j.clone_into.as_ref())
                    .map(|f| f.as_fd()),
            },
            &parent_end,
        )?;
        let pid = born.pid;
        guard.pid = Some(pid);
        drop(join_fds);
        drop(fifo);

        if plan.ns.new_user {
            spawn::write_id_maps(pid, &plan.ns)?;
        }
        if late {
            // The init's rootfs setup runs meanwhile (it waits for the files at the end).
            cgroup.create()?;
            cgroup.apply(&resources)?;
            let tasks = crate::cgroup_join::tasks_files(cgroup.as_ref(), &early);
            if join.is_none() || tasks.is_none() || !born.in_cgroup {
                cgroup.add_process(pid)?;
            }
            spawn::send_join(&parent_end, tasks.unwrap_or_default())?;
        } else if join.is_none() || !born.in_cgroup {
            cgroup.add_process(pid)?;
        }
        drop(join);
        if let Some(adj) = plan.process.oom_score_adj {
            spawn::write_oom_score_adj(pid, adj)?;
        }
        spawn::send_go(&parent_end)?;
        let pty = spawn::converse(&Conversation {
            chan: &parent_end,
            pid,
            state: &hook_state,
            prestart: &prestart,
            create_runtime: &create_runtime,
            seccomp: seccomp.as_ref(),
        })?;

        oci.pid = pid;
        oci.pid_start_time = state::proc_stat(pid)
            .map(|(_, st)| st)
            .ok_or_else(|| Error::Init("the container process exited during setup".into()))?;
        if let Some(dir) = &dir {
            oci.save(dir)?;
        }
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, pid)?;
        }
        let pty = match (pty, &opts.console_socket) {
            (Some(m), Some(sock)) => {
                spawn::send_fd_to_socket(sock, b"/dev/ptmx", m.as_fd()).map_err(|e| {
                    Error::io(format!("send the pty master to {}", sock.display()), e)
                })?;
                None
            }
            (pty, _) => pty,
        };
        if opts.start == StartMode::Now {
            spawn::await_exec(&parent_end)?;
        }
        guard.disarm();
        let container = Container {
            runtime: self.clone(),
            dir,
            state: oci,
        };
        if opts.start == StartMode::Now {
            container.run_poststart();
        }
        Ok(Created {
            container,
            pid,
            pty_master: pty,
            warnings,
            start_gate: gate,
        })
    }
}

fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    state::replace_file(p, pid.to_string().as_bytes(), 0o644)
}

impl Container {
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The init's pid (in the runtime's pid namespace).
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    pub fn bundle(&self) -> &Path {
        &self.state.bundle
    }

    pub fn spec(&self) -> &Spec {
        &self.state.config
    }

    /// `None` for a held container.
    pub fn state_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// What a held container's later calls need, without the parts of the configuration
    /// only the create used (a monitor keeps this for the container's life): the
    /// annotations, the poststart and poststop hooks and `linux.cgroupsPath`.
    pub fn held_state(&self) -> StateFile {
        use berth_oci::spec::runtime::{Hooks, Linux};
        let full = &self.state.config;
        let mut config: Spec = serde_json::from_str("{}").expect("every Spec field has a default");
        config.set_version(full.version().clone());
        config.set_annotations(full.annotations().clone());
        if let Some(h) = full.hooks() {
            let mut hooks: Hooks = serde_json::from_str("{}").expect("all optional");
            hooks.set_poststart(h.poststart().clone());
            hooks.set_poststop(h.poststop().clone());
            config.set_hooks(Some(hooks));
        }
        if let Some(p) = full.linux().as_ref().and_then(|l| l.cgroups_path().clone()) {
            let mut linux: Linux = serde_json::from_str("{}").expect("all optional");
            linux.set_cgroups_path(Some(p));
            config.set_linux(Some(linux));
        }
        // Field by field: `..self.state.clone()` would copy the whole configuration first.
        let s = &self.state;
        StateFile {
            id: s.id.clone(),
            bundle: s.bundle.clone(),
            rootfs: s.rootfs.clone(),
            pid: s.pid,
            pid_start_time: s.pid_start_time,
            created: s.created.clone(),
            config,
            init: s.init,
            seccomp_cache: s.seccomp_cache.clone(),
            spare_tag: s.spare_tag.clone(),
        }
    }

    fn cgroup_path(&self) -> Result<CgroupPath> {
        Ok(CgroupPath::from_oci(
            self.state
                .config
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_ref())
                .and_then(|p| p.to_str()),
            &self.state.id,
        )?)
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> Result<Box<dyn CgroupManager>> {
        Ok(Hierarchy::host()?.manager(&self.cgroup_path()?)?)
    }

    fn init_alive(&self) -> bool {
        state::process_alive(self.state.pid, self.state.pid_start_time)
    }

    /// The current status, derived from the live system.
    pub fn status(&self) -> Result<Status> {
        if !self.init_alive() {
            return Ok(Status::Stopped);
        }
        // A held container's creator knows whether it started; here it counts as running.
        if self
            .dir
            .as_ref()
            .is_some_and(|d| d.join(EXEC_FIFO).exists())
        {
            return Ok(Status::Created);
        }
        match self.cgroup().and_then(|c| Ok(c.is_frozen()?)) {
            Ok(true) => Ok(Status::Paused),
            _ => Ok(Status::Running),
        }
    }

    /// The OCI state (what `state` prints).
    pub fn oci_state(&self) -> Result<OciState> {
        Ok(self.state.oci_state(self.status()?))
    }

    fn bad_state(&self, op: &'static str, status: Status) -> Error {
        Error::BadState {
            id: self.state.id.clone(),
            op,
            status,
        }
    }

    /// Lets a created container's init run the app (removes the exec fifo).
    pub fn start(&self) -> Result<()> {
        let status = self.status()?;
        let Some(dir) = self.dir.as_ref().filter(|_| status == Status::Created) else {
            return Err(self.bad_state("start", status));
        };
        let fifo = dir.join(EXEC_FIFO);
        let fd = rustix::fs::open(
            &fifo,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NXIO => Error::Init(format!(
                "container {} cannot start: its init is no longer waiting",
                self.state.id
            )),
            e => Error::io(format!("open {}", fifo.display()), e),
        })?;
        rustix::io::write(&fd, &[0]).map_err(|e| Error::io("write the exec fifo", e))?;
        let _ = std::fs::remove_file(&fifo);
        self.run_poststart();
        Ok(())
    }

    /// Lets a held container's init run the app: one byte through its
    /// [`Created::start_gate`], which is closed after.
    pub fn start_gated(&self, gate: OwnedFd) -> Result<()> {
        loop {
            match rustix::io::write(&gate, &[0]) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::PIPE) => {
                    return Err(Error::Init(format!(
                        "container {} cannot start: its init is no longer waiting",
                        self.state.id
                    )));
                }
                Err(e) => return Err(Error::io("write the start gate", e)),
            }
        }
        drop(gate);
        self.run_poststart();
        Ok(())
    }

    fn run_poststart(&self) {
        let hooks = self
            .state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
            .unwrap_or_default();
        if !hooks.is_empty() {
            run_hooks_warn("poststart", &hooks, &self.state.oci_state(Status::Running));
        }
    }

    /// Sends `signal` to the init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let status = self.status()?;
        if status == Status::Stopped {
            return Err(self.bad_state("kill", status));
        }
        if all {
            return Ok(self.cgroup()?.kill_all(signal)?);
        }
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            Error::spec("signal", format!("{signal} is not a valid signal number"))
        })?;
        let pid = rustix::process::Pid::from_raw(self.state.pid)
            .ok_or_else(|| self.bad_state("kill", Status::Stopped))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|_| self.bad_state("kill", Status::Stopped))?;
        // The pidfd pins the process: check it is still the init we started, then signal.
        if !self.init_alive() {
            return Err(self.bad_state("kill", Status::Stopped));
        }
        rustix::process::pidfd_send_signal(&pidfd, sig)
            .map_err(|e| Error::io(format!("kill container {}", self.state.id), e))
    }

    /// Removes the container: with `force` a running one is killed first. Runs the poststop
    /// hooks and removes the cgroup and the state directory.
    pub fn delete(&self, force: bool) -> Result<()> {
        self.remove(force, false)
    }

    /// [`Container::delete`], except that a stopped container (its init exited or was
    /// killed and reaped) created with [`CreateOptions::recycle_cgroup`] sets its cgroup aside for the next container with
    /// the same resources when it can (`berth_cgroups::spare`) instead of removing it.
    pub fn delete_recycling(&self, force: bool) -> Result<()> {
        self.remove(force, true)
    }

    /// Its cgroup will not be set aside (its limits were changed after the create).
    pub fn never_a_spare(&mut self) {
        self.state.spare_tag = None;
    }

    fn remove(&self, force: bool, recycle: bool) -> Result<()> {
        let status = self.status()?;
        match status {
            Status::Stopped | Status::Created | Status::Creating => {}
            Status::Running | Status::Paused if force => {}
            _ => return Err(self.bad_state("delete", status)),
        }
        let cg = self.cgroup()?;
        if status != Status::Stopped {
            if status == Status::Paused {
                let _ = cg.thaw();
            }
            let _ = cg.kill_all(libc::SIGKILL);
            spawn::kill_and_wait(
                self.state.pid,
                Some(self.state.pid_start_time),
                Duration::from_secs(10),
            );
        }
        if recycle
            && status == Status::Stopped
            && let Some(tag) = &self.state.spare_tag
        {
            cg.set_aside(tag);
        }
        spawn::destroy_cgroup(cg.as_ref())?;
        let hooks = self
            .state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default();
        if !hooks.is_empty() {
            run_hooks_warn("poststop", &hooks, &self.state.oci_state(Status::Stopped));
        }
        match &self.dir {
            Some(dir) => std::fs::remove_dir_all(dir)
                .map_err(|e| Error::io(format!("remove {}", dir.display()), e)),
            None => Ok(()),
        }
    }

    pub fn pause(&self) -> Result<()> {
        let status = self.status()?;
        if status != Status::Running && status != Status::Created {
            return Err(self.bad_state("pause", status));
        }
        Ok(self.cgroup()?.freeze()?)
    }

    pub fn resume(&self) -> Result<()> {
        let status = self.status()?;
        if status != Status::Paused {
            return Err(self.bad_state("resume", status));
        }
        Ok(self.cgroup()?.thaw()?)
    }

    /// Pids of all processes in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.cgroup()?.pids()?)
    }

    pub fn stats(&self) -> Result<berth_cgroups::Stats> {
        Ok(self.cgroup()?.stats()?)
    }

    pub fn oom_kill_count(&self) -> Result<u64> {
        Ok(self.cgroup()?.oom_kill_count()?)
    }

    /// Applies new resource limits and records them in the state.
    pub fn update(&mut self, res: &LinuxResources) -> Result<()> {
        let status = self.status()?;
        if status == Status::Stopped {
            return Err(self.bad_state("update", status));
        }
        self.cgroup()?.apply(res)?;
        let mut merged = serde_json::to_value(
            self.state
                .config
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .unwrap_or_default(),
        )
        .map_err(|e| Error::io("encode resources", e))?;
        let new = serde_json::to_value(res).map_err(|e| Error::io("encode resources", e))?;
        if let (Some(m), serde_json::Value::Object(n)) = (merged.as_object_mut(), new) {
            for (k, v) in n {
                m.insert(k, v);
            }
        }
        let merged: LinuxResources =
            serde_json::from_value(merged).map_err(|e| Error::io("decode resources", e))?;
        let mut linux = self.state.config.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merged));
        self.state.config.set_linux(Some(linux));
        match &self.dir {
            Some(dir) => self.state.save(dir),
            None => Ok(()),
        }
    }

    /// Starts another process in the running container (its namespaces, cgroup, seccomp
    /// filter; user, capabilities and the rest from `opts.process`).
    ///
    /// Must be called from a single-threaded process (it forks).
    pub fn exec(&self, opts: ExecOptions<'_>) -> Result<Spawned> {
        let status = self.status()?;
        if status != Status::Running && status != Status::Created {
            return Err(self.bad_state("exec in", status));
        }
        let mut process = plan::plan_process(&opts.process, "process")?;
        let mut warnings = Vec::new();
        spawn::tolerate_lsm(&mut process, &self.state.config, &mut warnings);
        let seccomp = self
            .state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(|s| {
                crate::seccomp::compile(
                    s,
                    self.state
                        .seccomp_cache
                        .as_deref()
                        .or(self.runtime.seccomp_cache.as_deref()),
                )
            })
            .transpose()?;
        let pid = rustix::process::Pid::from_raw(self.state.pid)
            .ok_or_else(|| self.bad_state("exec in", Status::Stopped))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .map_err(|_| self.bad_state("exec in", Status::Stopped))?;
        if !self.init_alive() {
            return Err(self.bad_state("exec in", Status::Stopped));
        }
        let mut ns_flags = 0u32;
        for n in self
            .state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
        {
            ns_flags |= n.typ() as u32;
        }
        let cg_path = self.cgroup_path()?;
        let hierarchy = Hierarchy::host()?;
        let cg = hierarchy.manager(&cg_path)?;
        let join = crate::cgroup_join::handles(cg.as_ref(), &hierarchy, &cg_path);
        let (parent_end, child_end) =
            sync::pair().map_err(|e| Error::io("create sync socket", e))?;
        let common = Common {
            chan: child_end,
            process: &process,
            seccomp: seccomp.as_ref(),
            stdio: match opts.stdio {
                Stdio::Inherit => None,
                Stdio::Fds(f) => Some(f),
            },
            fifo: None,
            gate_writer: None,
            preserve_fds: opts.preserve_fds,
            init: false,
            wait_go_early: false,
            new_user: false,
            new_cgroup: false,
            start_hooks: &[],
            hook_state: None,
            thread_check: None,
            got_go: Default::default(),
            cgroup_join: join.as_ref().map_or(&[], |j| j.self_join.as_slice()),
            cgroup_join_late: Default::default(),
            ignored_signals: crate::child::ignored_signals(),
        };
        let born = spawn::fork_exec(
            common,
            pidfd.as_fd(),
            ns_flags,
            join.as_ref()
                .and_then(|j| j.clone_into.as_ref())
                .map(|f| f.as_fd()),
            &parent_end,
        )?;
        let child = born.pid;
        let mut guard = CreateGuard {
            dir: None,
            cgroup: None,
            pid: Some(child),
        };
        if join.is_none() || !born.in_cgroup {
            cg.add_process(child)?;
        }
        drop(join);
        if let Some(adj) = process.oom_score_adj {
            spawn::write_oom_score_adj(child, adj)?;
        }
        spawn::send_go(&parent_end)?;
        let state = self.state.oci_state(status);
        let pty = spawn::converse(&Conversation {
            chan: &parent_end,
            pid: child,
            state: &state,
            prestart: &[],
            create_runtime: &[],
            seccomp: seccomp.as_ref(),
        })?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, child)?;
        }
        let pty = match (pty, &opts.console_socket) {
            (Some(m), Some(sock)) => {
                spawn::send_fd_to_socket(sock, b"/dev/ptmx", m.as_fd()).map_err(|e| {
                    Error::io(format!("send the pty master to {}", sock.display()), e)
                })?;
                None
            }
            (pty, _) => pty,
        };
        spawn::await_exec(&parent_end)?;
        guard.disarm();
        Ok(Spawned {
            pid: child,
            pty_master: pty,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A monitor keeps the held state for the container's life: only what later calls use.
    #[test]
    fn held_state_keeps_hooks_annotations_and_the_cgroup_path_only() {
        let config = parse_spec(
            br#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"},
                "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
                "annotations":{"a":"b"},
                "hooks":{"prestart":[{"path":"/bin/pre"}],"poststart":[{"path":"/bin/post"}],
                         "poststop":[{"path":"/bin/stop"}]},
                "linux":{"cgroupsPath":"/berth/x","namespaces":[{"type":"pid"}]}}"#,
        )
        .unwrap();
        let c = Container {
            runtime: Runtime::new("/nonexistent"),
            dir: None,
            state: StateFile {
                id: "x".into(),
                bundle: "/b".into(),
                rootfs: "/b/rootfs".into(),
                pid: 42,
                pid_start_time: 7,
                created: "2026-11-23T00:00:00Z".into(),
                config,
                init: true,
                seccomp_cache: None,
                spare_tag: None,
            },
        };
        let held = c.held_state();
        let v = serde_json::to_value(&held).unwrap();
        assert_eq!(
            v["config"],
            serde_json::json!({"ociVersion":"1.0.2","annotations":{"a":"b"},
                "hooks":{"poststart":[{"path":"/bin/post"}],"poststop":[{"path":"/bin/stop"}]},
                "linux":{"cgroupsPath":"/berth/x"}})
        );
        assert_eq!((held.pid, held.pid_start_time, held.init), (42, 7, true));
        let back = Runtime::new("/r").adopt(held).unwrap();
        assert_eq!(back.state_dir(), None);
        assert_eq!(back.cgroup_path().unwrap(), c.cgroup_path().unwrap());
    }
}
