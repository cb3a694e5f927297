//! The engine: container records in memory and in `meta.redb`, lifecycle operations, shim
//! supervision and live restore.
//!
//! Concurrency: each container has a lifecycle lock (`op`, async) taken by operations that
//! change it (start, stop, kill's state check, pause, remove), so two of them never interleave
//! on one container; its record sits behind a short synchronous lock never held across an
//! await. Exits arrive from one monitor task per shim (a connection that asked `wait`) and go
//! through [`Engine::handle_exit`], the one place an exit is recorded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_api::body::ContainerCreateBody;
use berth_api::models::{ContainerConfig, HostConfig};
use berth_oci::Digest;
use berth_shim::{ExitInfo, Request, ShimConfig, StartReply, StateReply};
use berth_store::Store;
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{EngineError, Result};
use crate::events::Events;
use crate::names;
use crate::record::{self, ContainerRecord};
use crate::shim::{self, Launcher};
use crate::spec::{self, HostInfo, SeccompSetting};
use crate::status::{self, State, Status, Transition};

/// Daemon-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `--data-root` (images, snapshots, container dirs, meta.redb).
    pub data_root: PathBuf,
    /// `--exec-root` (shim state dirs, runtime state).
    pub exec_root: PathBuf,
    /// The `berth-shim` binary (copied into a sealed memfd at start).
    pub shim_binary: PathBuf,
    /// `--default-runtime`: `berth` (built in), `runc`, `crun` or a configured name.
    pub default_runtime: String,
    /// Runtime name → binary path (`runc` → `/usr/sbin/runc`, ...).
    pub runtimes: BTreeMap<String, PathBuf>,
    /// `--default-pids-limit` (0 = none).
    pub default_pids_limit: i64,
    /// `--cgroup-parent`: containers get `<parent>/<id>`.
    pub cgroup_parent: String,
    /// Daemon-wide json-file defaults (`log-opts` max-size / max-file).
    pub log_max_size: u64,
    pub log_max_file: u32,
}

impl EngineConfig {
    pub fn new(
        data_root: impl Into<PathBuf>,
        exec_root: impl Into<PathBuf>,
        shim: impl Into<PathBuf>,
    ) -> EngineConfig {
        let mut runtimes = BTreeMap::new();
        for (name, paths) in [
            (
                "runc",
                ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"],
            ),
            (
                "crun",
                ["/usr/bin/crun", "/usr/local/bin/crun", "/usr/sbin/crun"],
            ),
        ] {
            if let Some(p) = paths.iter().find(|p| Path::new(p).exists()) {
                runtimes.insert(name.to_string(), PathBuf::from(p));
            }
        }
        EngineConfig {
            data_root: data_root.into(),
            exec_root: exec_root.into(),
            shim_binary: shim.into(),
            default_runtime: berth_shim::BUILTIN_RUNTIME.into(),
            runtimes,
            default_pids_limit: DEFAULT_PIDS_LIMIT,
            cgroup_parent: "/berth".into(),
            log_max_size: 0,
            log_max_file: 1,
        }
    }
}

/// The default `--default-pids-limit`: 4096 processes per container, like Podman's
/// safeguard (Docker sets none). A fork bomb in one container then cannot exhaust the host's
/// pid space, while real workloads (even JVMs with thousands of threads) stay far below it.
/// `--pids-limit -1` lifts it per container, `--default-pids-limit 0` for the daemon.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// The `ociVersion` of bundles handed to an external runtime (runc, crun): see `create`.
const EXTERNAL_RUNTIME_OCI_VERSION: &str = "1.0.2-dev";

/// What `wait` can wait for.
pub use berth_api::query::WaitCondition;

/// Progress of a container's life, watched by `wait`, `logs -f` and `stop`.
#[derive(Debug, Clone, Default)]
pub struct Life {
    /// How many times it exited since the daemon started.
    pub exits: u64,
    pub exit_code: i64,
    pub error: Option<String>,
    pub removed: bool,
}

/// Whether a shim exists for the container and what its container is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShimState {
    None,
    /// Created, its init waiting for `start` (attach before start).
    Created,
    /// The app runs (or ran; the monitor has not reported the exit yet).
    Started,
}

pub struct Container {
    pub id: String,
    /// A failure to create the container when a client attached before start; reported by
    /// the start that follows (Docker fails `start`, not `attach`, for a missing command).
    pending_start_error: Mutex<Option<EngineError>>,
    /// Set while a start is between asking the shim to start and recording `running`; an
    /// exit that arrives meanwhile (a quick `echo`) is parked here and recorded after.
    start_gate: Mutex<StartGate>,
    rec: Mutex<ContainerRecord>,
    life: watch::Sender<Life>,
    op: Arc<tokio::sync::Mutex<()>>,
    shim: Mutex<ShimState>,
    /// The init's host pid as the shim reported it at spawn (its startup line), so a
    /// start after attach needs no second request to learn it.
    init_pid: std::sync::atomic::AtomicI32,
    /// The exit of the last shim this daemon spawned for it: a new shim waits for it, so
    /// it never races the old one's cleanup of the runtime state (same id, same cgroup).
    shim_gone: Mutex<Option<shim::ShimGone>>,
    /// Its rootfs is mounted in berthd's mount namespace, and how (a slot's premount, see
    /// `slots`): the next shim binds it instead of mounting the overlay. berthd unmounts
    /// its copy once the shim has created the container, except an auto-remove
    /// container's: that mount is kept for the next create ("Kept mounts" in `slots`).
    premount: Mutex<Option<crate::slots::Premount>>,
    /// An unmount of the premount in berthd's namespace still running: of one the create
    /// did not use (a non-volatile overlay's unmount syncs the host filesystem: 1.4-130
    /// ms measured), or of berthd's copy once the shim had the container. Awaited before a
    /// shim is spawned again or the removal renames the directory.
    rootfs_release: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The network namespace its running shim's container joined, held until the exit
    /// retires it (see "Retired in batches" in `netns`).
    netns: Mutex<Option<crate::netns::PreparedNetns>>,
    /// Held by the spawn a create starts for a container that is about to be attached to
    /// and started (see [`Engine::spawn_early`]); every operation on the container waits
    /// for it ([`Container::settle`]).
    spawning: Arc<tokio::sync::Mutex<()>>,
    /// That spawn's progress: once its shim listens, an attach may go to it ahead of the
    /// startup line; once the record is durable too, so may the start (see
    /// [`Engine::send_start_early`]).
    early: watch::Sender<EarlySpawn>,
    /// Its create's spawn took the standby and a network namespace and left their refill
    /// for later (see [`Engine::refill_after_run`]).
    refill_owed: std::sync::atomic::AtomicBool,
}

/// See [`Container::early`].
#[derive(Debug, Clone, Copy, Default)]
struct EarlySpawn {
    /// The create's record is durable.
    durable: bool,
    /// The shim's socket is bound (its listening notice).
    listening: bool,
    /// The monitor's `wait` is in the shim's queue: a start sent after it cannot let the
    /// container run and exit before the shim knows someone waits for the exit.
    watched: bool,
}

/// See [`Container::start_gate`].
#[derive(Default)]
struct StartGate {
    starting: bool,
    parked_exit: Option<std::result::Result<ExitInfo, String>>,
}

impl Container {
    fn new(rec: ContainerRecord) -> Arc<Container> {
        Arc::new(Container {
            id: rec.id.clone(),
            pending_start_error: Mutex::new(None),
            start_gate: Mutex::new(StartGate::default()),
            rec: Mutex::new(rec),
            life: watch::channel(Life::default()).0,
            op: Arc::new(tokio::sync::Mutex::new(())),
            shim: Mutex::new(ShimState::None),
            init_pid: std::sync::atomic::AtomicI32::new(0),
            shim_gone: Mutex::new(None),
            premount: Mutex::new(None),
            rootfs_release: Mutex::new(None),
            netns: Mutex::new(None),
            spawning: Arc::default(),
            early: watch::channel(EarlySpawn::default()).0,
            refill_owed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> ContainerRecord {
        self.rec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn status(&self) -> Status {
        self.rec
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .status
    }

    fn shim_state(&self) -> ShimState {
        *self.shim.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_shim(&self, s: ShimState) {
        *self.shim.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }

    pub fn watch(&self) -> watch::Receiver<Life> {
        self.life.subscribe()
    }

    /// Whether its rootfs is mounted in berthd's mount namespace (see [`Container::premount`]).
    fn premounted(&self) -> bool {
        self.premount
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Forgets the mount in berthd's namespace, returning how it was mounted; the caller
    /// unmounts it or hands it on.
    fn take_premount(&self) -> Option<crate::slots::Premount> {
        self.premount
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Waits for a spawn the create started, if one is on its way (see
    /// [`Engine::spawn_early`]); its failure is then in `pending_start_error`.
    async fn settle(&self) {
        drop(self.spawning.lock().await);
    }

    /// Waits until the create's spawn on its way has made the progress `done` tells
    /// (true), or has settled first (false: nothing to wait for, or it failed on the way).
    async fn reached(&self, done: impl Fn(&EarlySpawn) -> bool) -> bool {
        let mut early = self.early.subscribe();
        tokio::select! {
            biased;
            r = early.wait_for(|e| done(e)) => r.is_ok(),
            () = self.settle() => done(&self.early.borrow()),
        }
    }

    /// Waits for an unmount in berthd's namespace on its way (see
    /// [`Container::rootfs_release`]).
    async fn await_rootfs_release(&self) {
        let release = self
            .rootfs_release
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = release {
            let _ = r.await;
        }
    }
}

/// (profile JSON or "" for the default, capability set).
type SeccompKey = (String, Vec<String>);

pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) containers: RwLock<HashMap<String, Arc<Container>>>,
    /// name → id, including names reserved by creates in flight.
    pub(crate) names: Mutex<HashMap<String, String>>,
    pub events: Events,
    launcher: Launcher,
    pub(crate) info: HostInfo,
    seccomp_cache: Mutex<HashMap<SeccompKey, Option<Value>>>,
    default_profile: Mutex<Option<Arc<berth_oci::seccomp_profile::DockerProfile>>>,
    image_cache: Mutex<HashMap<Digest, Arc<berth_image::ImageConfig>>>,
    pub(crate) started_at: std::time::Instant,
    daemon_id: String,
    /// Network namespaces made ahead of time for private-network containers.
    netns_pool: crate::netns::NetnsPool,
    /// The next create's directories, made ahead of time (see [`crate::slots`]).
    slots: crate::slots::SlotPool,
    /// Durable removals in flight share their metadata fsync (see [`crate::group_sync`]).
    removal_sync: crate::group_sync::GroupSync,
    /// How many containers owe the refill of what their start took (0 or 1, see
    /// [`Engine::refill_after_run`]).
    refills_owed: std::sync::atomic::AtomicUsize,
}

/// How long a lone `run --rm` container may hold back the refill of the standby shim and
/// network namespace it took: past this it is not a short run, and the spares are made.
const REFILL_AFTER: Duration = Duration::from_millis(100);

/// How long after a removal it pays its refill: the answer to the client's wait for the
/// removal goes out first.
const REFILL_AFTER_REMOVAL: Duration = Duration::from_micros(200);

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn host_info() -> HostInfo {
    let cap_last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    HostInfo {
        cap_last_cap,
        bounding,
        ncpu,
        hostname,
        devices: Vec::new(),
    }
}

/// Every device node under `/dev` (for privileged containers), skipping the ones the
/// container gets its own of.
fn host_devices() -> Vec<spec::HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() {
                let name = p.to_string_lossy();
                if !matches!(
                    name.as_ref(),
                    "/dev/pts" | "/dev/shm" | "/dev/mqueue" | "/dev/fd"
                ) {
                    stack.push(p);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                'c'
            } else if ft.is_block_device() {
                'b'
            } else {
                continue;
            };
            let path = p.to_string_lossy().into_owned();
            if matches!(path.as_str(), "/dev/console" | "/dev/ptmx" | "/dev/tty") {
                continue;
            }
            let rdev = m.rdev();
            out.push(spec::HostDevice {
                path,
                kind,
                major: rustix::fs::major(rdev) as i64,
                minor: rustix::fs::minor(rdev) as i64,
                file_mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

impl Engine {
    /// Opens the data root, loads container records and re-attaches to live shims.
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Engine>> {
        for d in [&cfg.data_root, &cfg.exec_root] {
            std::fs::create_dir_all(d)
                .map_err(EngineError::io(format!("creating {}", d.display())))?;
        }
        for d in [
            cfg.data_root.join("containers"),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("runtime"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(EngineError::io(format!("creating {}", d.display())))?;
        }
        let launcher = Launcher::new(&cfg.shim_binary, Some(&cfg.exec_root.join("standby")))?;
        let root = cfg.data_root.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(root))
            .await
            .map_err(|e| EngineError::Internal(format!("opening the store: {e}")))??;
        let records = record::load_all(store.db())?;
        // Nothing is in flight yet: container directories no record names (a slot, or a
        // create or removal a crash interrupted) go now. The store's open did the same for
        // snapshot directories.
        let containers_dir = cfg.data_root.join("containers");
        {
            // A premounted rootfs a crash left in this mount namespace (a container created
            // but not yet handed to its shim): the shim's init binds its own copy, so only
            // the next start's shim needs the directory, and it mounts the overlay itself.
            // External runtimes' shims mount on the host and unmount themselves.
            for r in records
                .iter()
                .filter(|r| r.runtime == berth_shim::BUILTIN_RUNTIME)
            {
                let _ = crate::slots::unmount_rootfs(&containers_dir.join(&r.id));
            }
            let recorded: std::collections::HashSet<&str> =
                records.iter().map(|r| r.id.as_str()).collect();
            shut_down_unrecorded_shims(&cfg.exec_root.join("containers"), &recorded);
            let n = crate::slots::remove_unrecorded(&store, &containers_dir, &recorded)?
                + crate::slots::remove_unrecorded(
                    &store,
                    &cfg.exec_root.join("containers"),
                    &recorded,
                )?;
            if n > 0 {
                tracing::debug!("removed {n} unrecorded container directories");
            }
            remove_spare_cgroups(&cfg.cgroup_parent);
        }
        let daemon_id = daemon_id(&cfg.data_root)?;
        let store = Arc::new(store);
        let engine = Arc::new(Engine {
            cfg,
            slots: crate::slots::SlotPool::new(store.clone(), containers_dir),
            store,
            containers: RwLock::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            events: Events::new(),
            launcher,
            info: host_info(),
            seccomp_cache: Mutex::new(HashMap::new()),
            default_profile: Mutex::new(None),
            image_cache: Mutex::new(HashMap::new()),
            started_at: std::time::Instant::now(),
            daemon_id,
            netns_pool: crate::netns::NetnsPool::new(),
            removal_sync: Default::default(),
            refills_owed: Default::default(),
        });
        {
            let mut map = engine.containers.write().unwrap_or_else(|e| e.into_inner());
            let mut names = engine.names.lock().unwrap_or_else(|e| e.into_inner());
            for rec in records {
                names.insert(rec.name.clone(), rec.id.clone());
                map.insert(rec.id.clone(), Container::new(rec));
            }
        }
        engine.restore().await;
        Ok(engine)
    }

    /// Finishes the background work a daemon's stop should not leave behind: the ready
    /// container slot and the deletion of removed containers' directories (the store's
    /// trash). Whatever is left anyway (a crash, a slot still being made) is deleted at the
    /// next start.
    pub async fn shutdown(&self) {
        remove_spare_cgroups(&self.cfg.cgroup_parent);
        let slots = self.slots.close();
        let store = self.store.clone();
        // Unmounts on their way finish; created, never started containers still have their
        // premounted rootfs here.
        for c in self.all() {
            c.await_rootfs_release().await;
        }
        let premounted: Vec<PathBuf> = self
            .all()
            .into_iter()
            .filter(|c| c.take_premount().is_some())
            .map(|c| self.container_dir(&c.id))
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for d in &premounted {
                let _ = crate::slots::unmount_rootfs(d);
            }
            drop(slots);
            store.drain_trash()
        })
        .await;
    }

    /// The container slot pool (tests look at it).
    pub fn slots(&self) -> &crate::slots::SlotPool {
        &self.slots
    }

    /// The network namespace pool (tests look at it).
    pub fn netns_pool(&self) -> &crate::netns::NetnsPool {
        &self.netns_pool
    }

    /// This daemon's persistent ID (`/info`'s `ID`), kept in `<data-root>/engine-id`.
    pub fn daemon_id(&self) -> &str {
        &self.daemon_id
    }

    /// How long the engine has been up.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub(crate) fn state_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    /// Every container (unordered).
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix, as
    /// Docker does.
    pub fn lookup(&self, name_or_id: &str) -> Result<Arc<Container>> {
        let map = self.containers.read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(name_or_id) {
            return Ok(c.clone());
        }
        let bare = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(id) = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bare)
            && let Some(c) = map.get(id)
        {
            return Ok(c.clone());
        }
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found: Option<&Arc<Container>> = None;
            for (id, c) in map.iter() {
                if id.starts_with(name_or_id) {
                    if found.is_some() {
                        return Err(EngineError::invalid(format!(
                            "multiple IDs found with provided prefix: {name_or_id}"
                        )));
                    }
                    found = Some(c);
                }
            }
            if let Some(c) = found {
                return Ok(c.clone());
            }
        }
        Err(EngineError::NoSuchContainer(name_or_id.to_string()))
    }

    /// Applies a state transition and persists it (the one place state changes).
    fn transition(&self, c: &Container, t: Transition, durable: bool) -> Result<ContainerRecord> {
        let rec = self.transition_unsaved(c, t)?;
        record::put(self.store.db(), &rec, durable)?;
        Ok(rec)
    }

    /// Applies a state transition in memory only (every API reads the in-memory record):
    /// for a state the next durable write replaces anyway — `removing`, which the
    /// removal's commit deletes with the record, or writes durably as `dead` if the removal
    /// fails. A write without fsync would not survive a crash either (redb keeps only
    /// durable commits), so skipping it loses nothing.
    fn transition_unsaved(&self, c: &Container, t: Transition) -> Result<ContainerRecord> {
        let mut rec = c.rec.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = rec.state.clone();
        status::apply(&c.id, &mut next, t)?;
        rec.state = next;
        Ok(rec.clone())
    }

    fn update_record(
        &self,
        c: &Container,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        self.update_record_with(c, true, f)
    }

    /// Changes the record and persists it, with an fsync when `durable`.
    fn update_record_with(
        &self,
        c: &Container,
        durable: bool,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let rec = {
            let mut rec = c.rec.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut rec);
            rec.clone()
        };
        record::put(self.store.db(), &rec, durable)?;
        Ok(rec)
    }

    pub(crate) fn container_event(
        &self,
        action: &str,
        rec: &ContainerRecord,
        extra: &[(&str, String)],
    ) {
        let mut attrs: BTreeMap<String, String> = rec
            .config
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        attrs.insert("image".into(), rec.image.clone());
        attrs.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.publish("container", action, &rec.id, attrs);
    }

    // ------------------------------------------------------------------ images (cached)

    pub(crate) fn image_config(&self, id: &Digest) -> Result<Arc<berth_image::ImageConfig>> {
        if let Some(c) = self
            .image_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(c.clone());
        }
        let rec = self
            .store
            .image(id)?
            .ok_or_else(|| EngineError::NoSuchImage(id.to_string()))?;
        let cfg = Arc::new(berth_image::image_config(&self.store, &rec)?);
        self.image_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), cfg.clone());
        Ok(cfg)
    }

    fn seccomp_for(&self, setting: &SeccompSetting, caps: &[String]) -> Result<Option<Value>> {
        let key_name = match setting {
            SeccompSetting::Unconfined => return Ok(None),
            SeccompSetting::Default => String::new(),
            SeccompSetting::Custom(json) => json.clone(),
        };
        let key = (key_name, caps.to_vec());
        if let Some(v) = self
            .seccomp_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        use berth_oci::seccomp_profile::{DEFAULT_PROFILE, DockerProfile, ProfileTarget};
        let profile: Arc<DockerProfile> = match setting {
            SeccompSetting::Default => {
                let mut slot = self
                    .default_profile
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match &*slot {
                    Some(p) => p.clone(),
                    None => {
                        let p =
                            Arc::new(DockerProfile::parse(DEFAULT_PROFILE.as_bytes()).map_err(
                                |e| EngineError::Internal(format!("built-in seccomp profile: {e}")),
                            )?);
                        *slot = Some(p.clone());
                        p
                    }
                }
            }
            SeccompSetting::Custom(json) => {
                Arc::new(DockerProfile::parse(json.as_bytes()).map_err(|e| {
                    EngineError::invalid(format!("Decoding seccomp profile failed: {e}"))
                })?)
            }
            SeccompSetting::Unconfined => unreachable!("returned above"),
        };
        let oci = profile
            .to_oci(&ProfileTarget::host(caps))
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        let v = serde_json::to_value(&oci)
            .map_err(|e| EngineError::Internal(format!("encoding seccomp filter: {e}")))?;
        let mut cache = self.seccomp_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(key, Some(v.clone()));
        Ok(Some(v))
    }

    fn runtime_binary(&self, name: &str) -> Result<String> {
        if name == berth_shim::BUILTIN_RUNTIME {
            return Ok(name.to_string());
        }
        match self.cfg.runtimes.get(name) {
            Some(p) => Ok(p.to_string_lossy().into_owned()),
            None => Err(EngineError::invalid(format!(
                "unknown or invalid runtime name: {name}"
            ))),
        }
    }

    // ------------------------------------------------------------------ create

    /// `POST /containers/create`: returns the new ID and Docker's warnings.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>)> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => Some(names::validate_name(n)?),
            None => None,
        };
        // Docker reports a taken name before anything else is checked.
        if let Some(n) = &name
            && let Some(owner) = self.names.lock().unwrap_or_else(|e| e.into_inner()).get(n)
        {
            return Err(names::name_in_use(n, owner));
        }
        // No standby ready and none on its way (back-to-back `run --rm`: the last one's
        // refill comes after its removal, often after this create): the zygote forks one
        // now, beside this create's work, instead of after it (docs/engine.md, "Waiting
        // for the standby"). With one ready this does nothing.
        self.launcher.refill();
        let image_name = body.config.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::invalid(
                "no image given: set Config.Image to the image to create the container from",
            ));
        }
        let mut host = body.host_config.clone().unwrap_or_default();
        let mut warnings = spec::validate_host_config(&host, &self.info)?;
        let runtime_name = host
            .runtime
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| self.cfg.default_runtime.clone());
        self.runtime_binary(&runtime_name)?;
        let mounts = spec::user_mounts(&host)?;

        // The image.
        let image_id = self.store.resolve_image(&image_name).map_err(|e| match e {
            berth_store::StoreError::ImageNotFound(_) => {
                EngineError::NoSuchImage(display_reference(&image_name))
            }
            other => other.into(),
        })?;
        let image_cfg = self.image_config(&image_id)?;
        let user_cfg: berth_image::ContainerConfig = convert(&body.config)?;
        let merged = berth_image::spec::merge_config(&image_cfg.container(), &user_cfg);
        let image_rec = self
            .store
            .image(&image_id)?
            .ok_or_else(|| EngineError::NoSuchImage(image_name.clone()))?;
        let files = berth_image::spec::ImageFiles::from_image(&self.store, &image_rec)?;
        let process = berth_image::spec::process_for(&files, &merged).map_err(|e| match e {
            berth_image::ImageError::InvalidArgument(m) if m == "no command specified" => {
                EngineError::invalid("No command specified")
            }
            other => other.into(),
        })?;
        let group_add = resolve_groups(&files, host.group_add.as_deref().unwrap_or(&[]))?;

        // The ID: the prepared slot's (see `slots`), or a new one. An ID in use (which 256
        // random bits make impossible, but a slot's directory would then be the container's)
        // discards the slot.
        let slot = self.slots.take().filter(|s| {
            !self
                .containers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(s.id())
        });
        let id = slot
            .as_ref()
            .map(|s| s.id().to_string())
            .unwrap_or_else(names::new_id);
        let had_slot = slot.is_some();

        // Name reservation.
        let name = {
            let mut names_map = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let chosen = match name {
                Some(n) => {
                    if let Some(owner) = names_map.get(&n) {
                        return Err(names::name_in_use(&n, owner));
                    }
                    n
                }
                None => {
                    let mut retry = 0;
                    loop {
                        let n = names::generate_name(retry);
                        if !names_map.contains_key(&n) {
                            break n;
                        }
                        retry += 1;
                    }
                }
            };
            names_map.insert(chosen.clone(), id.clone());
            chosen
        };
        let at_once = runs_at_once(
            &host,
            &runtime_name,
            body.config.attach_stdout.unwrap_or(false)
                || body.config.attach_stderr.unwrap_or(false),
        );
        let result = self
            .create_reserved(
                &id,
                &name,
                &image_name,
                &image_id,
                !at_once,
                body.config,
                &merged,
                &mut host,
                mounts,
                &process,
                &group_add,
                runtime_name,
                slot,
            )
            .await;
        if !had_slot || result.is_err() {
            // None was ready (the first create, creates without starts) or this one used
            // its slot up for nothing: make one now. Otherwise the start makes the next
            // one (see `slots`).
            self.slots.refill();
        }
        match result {
            Ok(rec) => {
                self.container_event("create", &rec, &[]);
                if at_once && let Some(handed) = self.spawn_early(&rec) {
                    // The shim's setup is `run --rm`'s critical path and the answer is not:
                    // the client's attach, wait and start wait on the shim anyway. Answered
                    // first, the client woke on this worker's core and held the hand-off
                    // back (docs/engine.md, "The hand-off before the create's answer").
                    let _ = handed.await;
                }
                Ok((id, std::mem::take(&mut warnings)))
            }
            Err(e) => {
                self.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
                let _ = self.store.remove_container(&id);
                // The slot's rootfs may still be mounted: never delete through it.
                let _ = crate::slots::unmount_rootfs(&self.container_dir(&id));
                let _ = std::fs::remove_dir_all(self.container_dir(&id));
                // A recycled slot's state directory (see `slots`).
                let _ = std::fs::remove_dir_all(self.state_dir(&id));
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_reserved(
        &self,
        id: &str,
        name: &str,
        image_name: &str,
        image_id: &Digest,
        durable: bool,
        request: ContainerConfig,
        merged: &berth_image::ContainerConfig,
        host: &mut HostConfig,
        mounts: Vec<spec::UserMount>,
        process: &berth_image::spec::ProcessSpec,
        group_add: &[u32],
        runtime: String,
        slot: Option<crate::slots::Slot>,
    ) -> Result<ContainerRecord> {
        // From here on the slot's container directory is this create's (its failure path
        // unmounts and removes it); its snapshot directories are removed on failure when
        // dropped.
        let (snapshot, premount) = match slot.map(crate::slots::Slot::take) {
            Some(t) => (t.snapshot, t.premount),
            None => (None, None),
        };
        // -v creates missing host directories, like Docker.
        for m in &mounts {
            if m.kind == "bind" && !Path::new(&m.source).exists() {
                if m.create_source {
                    std::fs::create_dir_all(&m.source).map_err(EngineError::io(format!(
                        "creating bind source {}",
                        m.source
                    )))?;
                } else {
                    return Err(EngineError::invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
            }
        }
        let dir = self.container_dir(id);
        if snapshot.is_none() {
            std::fs::create_dir_all(dir.join("rootfs"))
                .map_err(EngineError::io(format!("creating {}", dir.display())))?;
            crate::slots::create_log_file(&dir, id)?;
        }

        // The config inspect shows: the merge, with Docker's Hostname and Image.
        let mut config: ContainerConfig = convert(merged)?;
        config.image = Some(image_name.to_string());
        config.hostname = Some(spec::hostname(id, &request, host, &self.info));
        config.domainname = request.domainname.clone().or(Some(String::new()));
        for (field, v) in [
            (&mut config.attach_stdin, request.attach_stdin),
            (&mut config.attach_stdout, request.attach_stdout),
            (&mut config.attach_stderr, request.attach_stderr),
            (&mut config.tty, request.tty),
            (&mut config.open_stdin, request.open_stdin),
            (&mut config.stdin_once, request.stdin_once),
        ] {
            *field = Some(v.unwrap_or(false));
        }
        // Normalize what inspect shows.
        if host
            .network_mode
            .as_deref()
            .is_none_or(|m| m.is_empty() || m == "default")
        {
            host.network_mode = Some("bridge".into());
        }
        if host.shm_size.unwrap_or(0) == 0 {
            host.shm_size = Some(spec::DEFAULT_SHM_SIZE);
        }
        if host.runtime.as_deref().is_none_or(str::is_empty) {
            host.runtime = Some(runtime.clone());
        }

        let hostname = config.hostname.clone().unwrap_or_default();
        let net = spec::network_mode(host);
        let host_hosts = std::fs::read_to_string("/etc/hosts").ok();
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let write = |file: &str, data: &str| overwrite(&dir.join(file), data.as_bytes());
        write("hostname", &format!("{hostname}\n"))?;
        write(
            "hosts",
            &spec::hosts_file(&hostname, net, host_hosts.as_deref()),
        )?;
        write(
            "resolv.conf",
            &spec::resolv_conf(
                &host_resolv,
                net,
                host.dns.as_deref().unwrap_or(&[]),
                host.dns_search.as_deref().unwrap_or(&[]),
                host.dns_options.as_deref().unwrap_or(&[]),
            ),
        )?;

        let mut info_owned;
        let info = if host.privileged.unwrap_or(false) {
            info_owned = self.info.clone();
            info_owned.devices = host_devices();
            &info_owned
        } else {
            &self.info
        };
        let input = spec::SpecInput {
            id,
            config: &config,
            host,
            process,
            group_add,
            container_dir: &dir,
            cgroup_parent: &self.cfg.cgroup_parent,
            default_pids_limit: self.cfg.default_pids_limit,
            info,
        };
        let mut oci = spec::build(&input, &mut |s, caps| self.seccomp_for(s, caps))?;
        if runtime != berth_shim::BUILTIN_RUNTIME {
            // crun before 1.9 (Debian 12 ships 1.8.1) refuses any ociVersion without "1.0"
            // in it ("unknown version specified"); Docker 20.10 writes this one, and runc
            // and crun read the fields we set the same way under either version.
            oci["ociVersion"] = serde_json::json!(EXTERNAL_RUNTIME_OCI_VERSION);
        }
        let bytes = serde_json::to_vec(&oci)
            .map_err(|e| EngineError::Internal(format!("encoding config.json: {e}")))?;
        overwrite(&dir.join("config.json"), &bytes)?;

        let (path, args) = match process.args.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let rec = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: now(),
            image: image_name.to_string(),
            image_id: image_id.to_string(),
            config,
            host_config: host.clone(),
            state: State::default(),
            path,
            args,
            mounts,
            runtime,
            restart_count: 0,
            hostname_path: dir.join("hostname").to_string_lossy().into_owned(),
            hosts_path: dir.join("hosts").to_string_lossy().into_owned(),
            resolv_conf_path: dir.join("resolv.conf").to_string_lossy().into_owned(),
            log_path: dir
                .join(format!("{id}-json.log"))
                .to_string_lossy()
                .into_owned(),
            manually_stopped: false,
            extra: BTreeMap::new(),
        };
        // One fsync for the whole create: the record is committed without one, and the
        // snapshot's commit right after (durable) makes both durable at once. A crash in
        // between loses the record with the snapshot: nothing half-made comes back. A
        // `docker run --rm` create (see `Engine::spawn_early`) leaves even that fsync to
        // its early spawn, which syncs beside the shim's setup and before any start: a
        // crash before it loses a container that never ran and that Docker's restore would
        // remove anyway (auto-remove); the open then shuts its shim down.
        record::put(self.store.db(), &rec, false)?;
        let overlay = match self
            .store
            .prepare_container_with(id, image_id, snapshot, durable)
        {
            Ok(o) => o,
            Err(e) => {
                let _ = record::delete(self.store.db(), id, false);
                return Err(e.into());
            }
        };
        // The slot's premounted rootfs (see `slots`), if it is this container's. A
        // mismatch is unmounted off the request, before the shim mounts the overlay as
        // without a premount (which removes a volatile one's marker, see `shim_config`).
        let builtin = rec.runtime == berth_shim::BUILTIN_RUNTIME;
        let auto_remove = rec.host_config.auto_remove.unwrap_or(false);
        let container = Container::new(rec.clone());
        if let Some(pm) = premount {
            if builtin && pm.serves(&overlay.lowerdirs, auto_remove) {
                *container.premount.lock().unwrap_or_else(|e| e.into_inner()) = Some(pm);
            } else {
                let dir = dir.clone();
                let release = tokio::task::spawn_blocking(move || {
                    if let Err(e) = crate::slots::unmount_rootfs(&dir) {
                        tracing::warn!("unmounting {}/rootfs: {e}", dir.display());
                    }
                });
                *container
                    .rootfs_release
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(release);
            }
        }
        // What the next slot mounts: this container's rootfs.
        self.slots.set_hint(builtin.then(|| crate::slots::Premount {
            lowerdirs: overlay.lowerdirs.clone(),
            volatile: auto_remove,
        }));
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), container);
        Ok(rec)
    }

    // ------------------------------------------------------------------ shims

    /// Starts the shim of a container `docker run --rm` has just created ([`runs_at_once`]),
    /// in the background, so the container's setup (the shim's cgroups, the init's
    /// namespaces and mounts: ~5 ms) overlaps the client's attach, wait and start requests
    /// instead of following the attach; beside it, the create's record is made durable
    /// (its commit had no fsync). The container stays `created` until the start, exactly as
    /// after an attach before start; every operation on it first waits for both
    /// ([`Container::settle`]), so nothing starts before its record is durable, and a
    /// failure is kept for the start to report (`pending_start_error`), as an attach's is.
    /// Other creates (`docker create`, `run -d`) spawn at attach or start as before: a
    /// created container that may wait long should not hold a shim.
    /// Returns a receiver that resolves once the shim is handed its state directory (or
    /// the spawn gave up before that).
    fn spawn_early(
        self: &Arc<Self>,
        rec: &ContainerRecord,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let Ok(c) = self.lookup(&rec.id) else {
            // Removed meanwhile: nothing to run, and a sync is no longer needed by anyone.
            return None;
        };
        // Taken before the create answers, so no request on the container can come first.
        let Ok(guard) = c.spawning.clone().try_lock_owned() else {
            // Nobody else takes this lock; were it taken, the record must still be durable
            // before anything can start the container.
            if let Err(e) = self.store.sync_metadata() {
                tracing::warn!("recording {} durably: {e}", c.id);
            }
            return None;
        };
        let engine = self.clone();
        let (handed, handed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _spawning = guard;
            let store = engine.store.clone();
            let durable = c.clone();
            let synced = tokio::task::spawn_blocking(move || {
                let r = store.sync_metadata();
                if r.is_ok() {
                    durable.early.send_modify(|e| e.durable = true);
                }
                r
            });
            let spawned = engine.spawn_shim(&c, false, Some(handed)).await;
            let synced = match synced.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(EngineError::Internal(format!(
                    "recording the container durably: {e}"
                ))),
                Err(e) => Err(EngineError::Internal(format!("the sync task: {e}"))),
            };
            if let Err(e) = synced.and(spawned.map(|_| ())) {
                *c.pending_start_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
        });
        Some(handed_rx)
    }

    /// The shim's config for `rec`; with `premounted`, its rootfs is mounted already (see
    /// `slots`) and the runtime binds it instead of mounting the overlay.
    fn shim_config(
        &self,
        rec: &ContainerRecord,
        start_now: bool,
        premounted: bool,
    ) -> Result<ShimConfig> {
        let runtime = self.runtime_binary(&rec.runtime)?;
        let bundle = self.container_dir(&rec.id);
        let runtime_root = if runtime == berth_shim::BUILTIN_RUNTIME {
            self.cfg.exec_root.join("runtime")
        } else {
            self.cfg.exec_root.join(format!("runtime-{}", rec.runtime))
        };
        let overlay = self.store.container_overlay(&rec.id)?;
        let mut cfg = ShimConfig::new(rec.id.clone(), bundle, runtime_root);
        cfg.runtime = runtime;
        let (max_size, max_file) = log_options(&rec.host_config, &self.cfg)?;
        cfg.log = Some(berth_shim::LogConfig {
            path: PathBuf::from(&rec.log_path),
            max_size,
            max_file,
        });
        cfg.tty = rec.config.tty.unwrap_or(false);
        cfg.open_stdin = rec.config.open_stdin.unwrap_or(false);
        cfg.stdin_once = rec.config.stdin_once.unwrap_or(false);
        cfg.init = rec.host_config.init.unwrap_or(false);
        // An auto-remove container's upper dir is deleted right after its exit, so it is
        // mounted `volatile`: no sync of the whole host filesystem when the container's
        // mount namespace is torn down (6-20 ms on `run --rm`'s critical path; podman does
        // the same for `--rm`). Any container's work dir may hold a volatile marker of this
        // boot: its own earlier run (auto-remove) or a premount its create did not use
        // (see `slots`), unmounted since; either refuses the mount until removed.
        let mut options = Vec::new();
        if !premounted
            && let Some(work) = &overlay.workdir
            && volatile_ready(work)
            && rec.host_config.auto_remove.unwrap_or(false)
        {
            options.push("volatile".to_string());
        }
        if !premounted {
            cfg.rootfs = Some(berth_shim::Overlay {
                lowerdirs: overlay.lowerdirs.clone(),
                upperdir: overlay.upperdir.clone(),
                workdir: overlay.workdir.clone(),
                options,
            });
        }
        cfg.start_now = start_now;
        cfg.seccomp_cache = Some(self.cfg.exec_root.join("seccomp"));
        if cfg.tty
            && let Some(cs) = &rec.host_config.console_size
            && cs.len() == 2
            && cs[0] > 0
            && cs[1] > 0
        {
            cfg.console_size = Some(berth_shim::WindowSize {
                height: cs[0] as u16,
                width: cs[1] as u16,
            });
        }
        Ok(cfg)
    }

    /// Tops up what a container's start takes: the next standby shim, the network
    /// namespaces.
    fn refill_spares(&self) {
        self.launcher.refill();
        self.netns_pool.top_up();
    }

    /// The refill after a create's spawn for `docker run --rm` (an attached auto-remove
    /// container): the zygote's fork of the next standby and the filler's `unshare` are
    /// ~1.5 ms of CPU, and made while the container is set up, started and removed they
    /// take a core from its critical path on a two-core machine (docs/engine.md, "Refills
    /// after the run"). A lone such container therefore owes the refill until its removal
    /// has been answered ([`Engine::pay_refill`]), or [`REFILL_AFTER`], whichever is first.
    /// With another one owing already (containers started side by side), it refills now.
    fn refill_after_run(self: &Arc<Self>, c: &Arc<Container>) {
        use std::sync::atomic::Ordering;
        if self.refills_owed.fetch_add(1, Ordering::AcqRel) > 0 {
            self.refills_owed.fetch_sub(1, Ordering::AcqRel);
            self.refill_spares();
            return;
        }
        c.refill_owed.store(true, Ordering::Release);
        let engine = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REFILL_AFTER).await;
            engine.pay_refill(&c);
        });
    }

    /// Refills, if `c` owes it (see [`Engine::refill_after_run`]).
    fn pay_refill(&self, c: &Container) {
        use std::sync::atomic::Ordering;
        if c.refill_owed.swap(false, Ordering::AcqRel) {
            self.refills_owed.fetch_sub(1, Ordering::AcqRel);
            self.refill_spares();
        }
    }

    /// Spawns the container's shim; returns the init's pid. `handed`: the create's spawn
    /// ([`Engine::spawn_early`]), told when the shim has its state directory, and whose
    /// shim tells when it listens ([`Container::early`]).
    async fn spawn_shim(
        self: &Arc<Self>,
        c: &Arc<Container>,
        start_now: bool,
        handed: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<i32> {
        let early = handed.is_some();
        let previous = c.shim_gone.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(gone) = previous {
            gone.wait(Duration::from_secs(5)).await;
        }
        c.await_rootfs_release().await;
        let rec = c.record();
        let dir = self.state_dir(&c.id);
        for f in [
            berth_shim::EXIT_FILE,
            berth_shim::SOCKET_FILE,
            berth_shim::STARTED_FILE,
        ] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        // Set aside, not deleted: the shim writes over it (`berth_shim::PREVIOUS_PID_FILE`).
        let _ = std::fs::rename(
            dir.join(berth_shim::PID_FILE),
            dir.join(berth_shim::PREVIOUS_PID_FILE),
        );
        std::fs::create_dir_all(&dir)
            .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        let premounted = c.premounted();
        let mut cfg = self.shim_config(&rec, start_now, premounted)?;
        cfg.listening_notice = early;
        // The container's cgroup, if its resources allow, is an earlier one's spare and is
        // set aside for the next (`berth_cgroups::spare`): ~1 ms of CPU per container on v1.
        cfg.recycle_cgroup = true;
        // A private network: join a namespace made ahead of time (see `netns`). berthd holds
        // it until the container exits, then retires it: used once.
        let netns = if cfg.builtin_runtime()
            && spec::network_mode(&rec.host_config) != spec::NetworkMode::Host
        {
            self.netns_pool.take().await
        } else {
            None
        };
        cfg.netns = netns.as_ref().map(crate::netns::PreparedNetns::path);
        // Over a recycled slot's file (see `slots`), without freeing its block.
        overwrite(&dir.join(berth_shim::CONFIG_FILE), &cfg.to_json())?;
        // The create's spawn: the monitor's `wait` goes as soon as the shim listens, ahead
        // of the attach and the start that wait for it (see `Engine::send_start_early`).
        let (heard, hear) = tokio::sync::oneshot::channel();
        let heard = Mutex::new(Some(heard));
        let listening = || {
            c.early.send_modify(|e| e.listening = true);
            if let Some(h) = heard.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = h.send(());
            }
        };
        let refill = if early {
            shim::Refill::ByCaller
        } else {
            shim::Refill::AfterHandOff
        };
        let spawn = self.launcher.spawn(&dir, &listening, handed, refill);
        tokio::pin!(spawn);
        let mut watching = None;
        let spawned = tokio::select! {
            biased;
            spawned = &mut spawn => spawned,
            Ok(()) = hear, if early => {
                if let Ok(mut conn) = shim::Conn::connect(&dir).await
                    && conn.send(&Request::Wait).await.is_ok()
                {
                    watching = Some(conn);
                    c.early.send_modify(|e| e.watched = true);
                }
                spawn.await
            }
        };
        if early && spawned.is_ok() {
            self.refill_after_run(c);
        } else {
            // Mostly the namespaces: the standby was refilled at the hand-off
            // (`Refill::AfterHandOff`), but not after an early spawn that failed.
            self.refill_spares();
        }
        if spawned.is_ok() {
            *c.netns.lock().unwrap_or_else(|e| e.into_inner()) = netns;
        }
        // An auto-remove container that started keeps berthd's copy of its rootfs: if it
        // writes nothing, its removal hands the mounted overlay to the next create (see
        // "Kept mounts" in `slots`).
        let keep = spawned.is_ok() && rec.host_config.auto_remove.unwrap_or(false);
        if premounted && !keep {
            // The shim answered: its init has bound the rootfs and pivoted into it (or the
            // create failed), so berthd's copy goes. From here on the container is as if
            // its init had mounted the overlay: its mount namespace holds the only mount, a
            // restart mounts it anew, and nothing is left in berthd's mount table. Off the
            // reply (the unmount waits for an RCU grace period: 0.1 ms, 3-8 ms under load);
            // a restart's spawn and the removal await it.
            c.take_premount();
            let dir = self.container_dir(&c.id);
            let release = tokio::task::spawn_blocking(move || {
                if let Err(e) = crate::slots::unmount_rootfs(&dir) {
                    tracing::warn!("unmounting the premounted {}/rootfs: {e}", dir.display());
                }
            });
            *c.rootfs_release.lock().unwrap_or_else(|e| e.into_inner()) = Some(release);
        }
        let spawned = spawned?;
        *c.shim_gone.lock().unwrap_or_else(|e| e.into_inner()) = Some(spawned.gone);
        c.init_pid
            .store(spawned.pid, std::sync::atomic::Ordering::Relaxed);
        c.set_shim(if start_now {
            ShimState::Started
        } else {
            ShimState::Created
        });
        self.monitor(c.clone(), false, watching);
        Ok(spawned.pid)
    }

    /// Watches a shim for the container's exit (one connection asking `wait`). With
    /// `until_eof`, the exit counts only once the shim closed the connection (its cleanup
    /// is done then): for shims of an earlier daemon, whose process exit this one cannot
    /// await; for its own, a new shim awaits the old one's exit instead (`shim_gone`).
    /// `watching`: a connection whose `wait` was sent already.
    fn monitor(self: &Arc<Self>, c: Arc<Container>, until_eof: bool, watching: Option<shim::Conn>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let dir = engine.state_dir(&c.id);
            let asked = match watching {
                Some(mut conn) => Ok((conn.reply::<ExitInfo>().await, conn)),
                None => match shim::Conn::connect(&dir).await {
                    Ok(mut conn) => Ok((conn.call::<ExitInfo>(&Request::Wait).await, conn)),
                    Err(e) => Err(e),
                },
            };
            let exit = match asked {
                Ok((reply, conn)) => match reply {
                    Ok(exit) if !until_eof => Some(exit),
                    Ok(exit) => {
                        // The shim exits after cleaning up; wait for it to let go (EOF) so a
                        // restart never races its cleanup.
                        let (_, mut stream) = conn.into_stream();
                        let mut sink = [0u8; 64];
                        let _ = tokio::time::timeout(Duration::from_secs(5), async {
                            use tokio::io::AsyncReadExt;
                            while let Ok(n) = stream.read(&mut sink).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        })
                        .await;
                        Some(exit)
                    }
                    Err(_) => None,
                },
                Err(_) => None,
            };
            let exit = match exit {
                Some(e) => Ok(e),
                None => wait_for_exit_file(&dir).await,
            };
            engine.handle_exit(&c, exit).await;
        });
    }

    /// Records an exit (the one place): state, event, waiters, auto-remove.
    async fn handle_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: std::result::Result<ExitInfo, String>,
    ) {
        self.handle_exit_then(c, exit, false).await;
    }

    /// [`Engine::handle_exit`]; with `await_removal` (the restore) an auto-remove
    /// container's removal is awaited, its directories included, instead of spawned: the
    /// open returns with it done.
    async fn handle_exit_then(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit: std::result::Result<ExitInfo, String>,
        await_removal: bool,
    ) {
        {
            let mut gate = c.start_gate.lock().unwrap_or_else(|e| e.into_inner());
            if gate.starting {
                // The start has not recorded `running` yet: it records this exit after.
                gate.parked_exit = Some(exit);
                return;
            }
        }
        let netns = c.netns.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(ns) = netns {
            self.netns_pool.retire(ns);
        }
        let was = c.shim_state();
        c.set_shim(ShimState::None);
        let (code, oom, at, error) = match exit {
            Ok(e) => (e.exit_code as i64, e.oom_killed, e.exited_at, String::new()),
            Err(why) => (255, false, now(), why),
        };
        let status = c.status();
        if was == ShimState::Created && status == Status::Created {
            // Killed before it started: nothing ran, the container stays created.
            c.life.send_modify(|l| {
                l.exits += 1;
                l.exit_code = code;
            });
            return;
        }
        let exited = Transition::Exited {
            exit_code: code,
            oom_killed: oom,
            at,
            error: error.clone(),
        };
        // An auto-remove container is removed next: its record is deleted (or written as
        // `dead`) durably then, so this state need not be written (see transition_unsaved).
        let saved = if c.record().host_config.auto_remove.unwrap_or(false) {
            self.transition_unsaved(c, exited)
        } else {
            self.transition(c, exited, false)
        };
        let rec = match saved {
            Ok(rec) => rec,
            Err(e) => {
                tracing::warn!(id = %c.id, "exit not recorded: {e}");
                c.record()
            }
        };
        if oom {
            self.container_event("oom", &rec, &[]);
        }
        self.container_event("die", &rec, &[("exitCode", code.to_string())]);
        c.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = code;
            l.error = (!error.is_empty()).then_some(error);
        });
        if rec.host_config.auto_remove.unwrap_or(false) {
            let engine = self.clone();
            let id = c.id.clone();
            let owner = c.clone();
            let removal = async move {
                let removed = engine.remove_then(&id, false).await;
                if owner.refill_owed.load(std::sync::atomic::Ordering::Acquire) {
                    // After the client's answer (its wait for the removal) has gone out.
                    // A blocking-pool thread's sleep: tokio's timer has a resolution of a
                    // millisecond, and a back-to-back `run --rm` sends its next create
                    // ~1.5 ms after this answer.
                    let payer = engine.clone();
                    tokio::task::spawn_blocking(move || {
                        std::thread::sleep(REFILL_AFTER_REMOVAL);
                        payer.pay_refill(&owner);
                    });
                }
                match removed {
                    Ok(Some(dirs)) if await_removal => drop(dirs.await),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(id, "auto-remove failed: {e}"),
                }
            };
            if await_removal {
                removal.await;
            } else {
                tokio::spawn(removal);
            }
        } else {
            self.pay_refill(c);
            if wants_restart(&rec, code, false) {
                self.schedule_restart(c.clone(), rec.restart_count);
            }
        }
    }

    /// Restarts a container by its restart policy after Docker's backoff (100 ms, doubling
    /// with each restart, at most a minute), unless it was stopped or removed meanwhile.
    fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, count: i64) {
        let engine = self.clone();
        let delay =
            Duration::from_millis(100u64 << count.clamp(0, 9) as u64).min(Duration::from_secs(60));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            c.settle().await;
            let rec = c.record();
            if rec.state.status != Status::Exited || rec.manually_stopped || c.life.borrow().removed
            {
                return;
            }
            if engine.update_record(&c, |r| r.restart_count += 1).is_err() {
                return;
            }
            if let Err(e) = engine.start_locked(&c, None).await {
                tracing::warn!(id = %c.id, "restart by policy failed: {e}");
            }
        });
    }

    // ------------------------------------------------------------------ live restore

    async fn restore(self: &Arc<Self>) {
        self.restore_shims().await;
        // Restart policies at daemon start: `always` even after a manual stop,
        // `unless-stopped` and `on-failure` unless stopped by the user.
        for c in self.all() {
            let rec = c.record();
            if rec.state.status == Status::Exited && wants_restart(&rec, rec.state.exit_code, true)
            {
                self.schedule_restart(c.clone(), 0);
            }
        }
    }

    async fn restore_shims(self: &Arc<Self>) {
        for c in self.all() {
            let rec = c.record();
            let dir = self.state_dir(&c.id);
            if rec.state.status == Status::Removing || self.removed_before_crash(&rec) {
                let engine = self.clone();
                let id = c.id.clone();
                // Finish an interrupted removal.
                if let Ok(dirs) = engine.finish_remove(&id).await {
                    let _ = dirs.await;
                }
                continue;
            }
            if !dir.join(berth_shim::SOCKET_FILE).exists()
                && !dir.join(berth_shim::EXIT_FILE).exists()
            {
                if rec.state.status.is_alive() {
                    // Neither a shim nor its exit record: it died with its shim.
                    self.handle_exit_then(&c, Err("the container's shim died while berthd was down; its exit status is unknown".into()), true).await;
                }
                continue;
            }
            match shim::call::<StateReply>(&dir, &Request::State).await {
                Ok(st) => match st.status {
                    berth_shim::Status::Created => {
                        // Attached but never started: nothing to keep.
                        let _ = shim::call::<berth_shim::Empty>(&dir, &Request::Shutdown).await;
                    }
                    berth_shim::Status::Running
                    | berth_shim::Status::Paused
                    | berth_shim::Status::Stopped => {
                        if !rec.state.status.is_alive() {
                            // The start was not persisted before a crash.
                            let _ = self.transition_unsaved(
                                &c,
                                Transition::Started {
                                    pid: st.pid as i64,
                                    at: st.started_at.clone().unwrap_or_else(now),
                                },
                            );
                            let _ =
                                self.update_record_with(&c, false, |r| r.manually_stopped = false);
                        }
                        if st.status == berth_shim::Status::Paused && c.status() == Status::Running
                        {
                            let _ = self.transition(&c, Transition::Paused, false);
                        }
                        c.set_shim(ShimState::Started);
                        self.monitor(c.clone(), true, None);
                    }
                },
                Err(_) => {
                    let exit = match ExitInfo::load(&dir) {
                        Ok(Some(e)) => Ok(e),
                        _ => Err("the container's shim died while berthd was down; its exit status is unknown".to_string()),
                    };
                    if rec.state.status.is_alive() {
                        c.set_shim(ShimState::Started);
                        self.handle_exit_then(&c, exit, true).await;
                    } else if rec.state.status == Status::Created
                        && (exit.is_ok() || dir.join(berth_shim::STARTED_FILE).exists())
                    {
                        // Started while the start was not yet persisted, then exited (its
                        // `exit.json`) or died with its shim (only the `started` file).
                        let _ = self.transition(
                            &c,
                            Transition::Started {
                                pid: 0,
                                at: rec.created.clone(),
                            },
                            false,
                        );
                        c.set_shim(ShimState::Started);
                        self.handle_exit_then(&c, exit, true).await;
                    }
                }
            }
        }
    }

    /// An auto-remove container whose removal's commit (made without fsync, see
    /// `finish_remove`) a crash lost: the removal had already moved its directory into the
    /// trash, which no live container can lack (it is made before the record and removed
    /// only by the removal).
    fn removed_before_crash(&self, rec: &ContainerRecord) -> bool {
        rec.host_config.auto_remove.unwrap_or(false)
            && matches!(
                std::fs::symlink_metadata(self.container_dir(&rec.id)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            )
    }

    // ------------------------------------------------------------------ lifecycle

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        let early = self.send_start_early(&c).await;
        c.settle().await;
        let started = self.start_locked(&c, early).await;
        // The next create's slot, made now rather than at the create, whose start would
        // have run beside it (see `slots`).
        self.slots.refill();
        started
    }

    /// The start of a container whose shim the create is spawning ([`Engine::spawn_early`]),
    /// sent as soon as the shim's socket is bound and the record durable, without waiting
    /// for the startup line: the shim serves it right after the container exists (requests
    /// in arrival order: after an attach that went first), where berthd would otherwise
    /// read the line, connect and send, while the init waits (~1 ms on `docker run`'s
    /// path). `None`: no spawn on its way, or its shim is not reachable yet (or failed):
    /// the start goes as before, after the spawn settled. The connection returned carries
    /// the request; [`Engine::start_shim`] reads its reply.
    async fn send_start_early(&self, c: &Arc<Container>) -> Option<shim::Conn> {
        if c.spawning.try_lock().is_ok() {
            return None;
        }
        if !c.reached(|e| e.durable && e.watched).await {
            return None;
        }
        start_allowed(c).ok()?;
        let mut conn = shim::Conn::connect(&self.state_dir(&c.id)).await.ok()?;
        // From here the container may run and exit before the start is recorded: its exit
        // is parked until then (see `StartGate`), as in `start_locked`.
        c.start_gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .starting = true;
        // A failed send is the shim gone: the reply's read reports it (or the spawn's
        // error, see `start_shim`).
        let _ = conn.send(&Request::Start).await;
        tracing::debug!(id = %c.id, "start sent ahead of the shim's startup line");
        Some(conn)
    }

    async fn start_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        early: Option<shim::Conn>,
    ) -> Result<()> {
        // Check the transition first (304 for running, 409 for paused/removing). An early
        // start passed the same check, and its container is created with a shim that has
        // not started (or no shim and a pending error): both hold until here.
        start_allowed(c)?;
        let pending = c
            .pending_start_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if pending.is_none() && early.is_none() && c.shim_state() == ShimState::Started {
            return Err(EngineError::conflict(format!(
                "container {} is still shutting down; try again",
                c.id
            )));
        }
        c.start_gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .starting = true;
        let started = self.start_shim(c, pending, early).await;
        let result = self.record_start(c, started);
        let parked = {
            let mut gate = c.start_gate.lock().unwrap_or_else(|e| e.into_inner());
            gate.starting = false;
            gate.parked_exit.take()
        };
        if let Some(exit) = parked {
            Box::pin(self.handle_exit(c, exit)).await;
        }
        result
    }

    /// Asks the shim to start the container (spawning one if needed): its pid and start time.
    /// With `early`, the request went already ([`Engine::send_start_early`]).
    async fn start_shim(
        self: &Arc<Self>,
        c: &Arc<Container>,
        pending: Option<EngineError>,
        early: Option<shim::Conn>,
    ) -> Result<(i64, String)> {
        match c.shim_state() {
            _ if pending.is_some() => {
                Err(pending.unwrap_or_else(|| EngineError::Internal(String::new())))
            }
            ShimState::Created => {
                let dir = self.state_dir(&c.id);
                let reply = match early {
                    Some(mut conn) => conn.reply::<StartReply>().await,
                    None => shim::call::<StartReply>(&dir, &Request::Start).await,
                };
                match reply {
                    Ok(r) => {
                        c.set_shim(ShimState::Started);
                        let pid = c.init_pid.load(std::sync::atomic::Ordering::Relaxed);
                        Ok((i64::from(pid), r.started_at))
                    }
                    Err(e) => Err(e),
                }
            }
            ShimState::Started => Err(EngineError::conflict(format!(
                "container {} is still shutting down; try again",
                c.id
            ))),
            ShimState::None => self
                .spawn_shim(c, true, None)
                .await
                .map(|pid| (pid as i64, now())),
        }
    }

    /// Records the outcome of [`Engine::start_shim`]: `running`, or the start failure.
    fn record_start(
        self: &Arc<Self>,
        c: &Arc<Container>,
        started: Result<(i64, String)>,
    ) -> Result<()> {
        match started {
            Ok((pid, at)) => {
                // A first start (from `created`) is committed without fsync: after a berthd
                // crash the durable record says `created`, and the restore learns that the
                // container started from its shim (alive), `exit.json`, or the shim's
                // `started` file (shim gone without an exit). A start of an exited container
                // stays durable: its durable record holds the previous run's exit.
                let first = c.status() == Status::Created;
                self.transition_unsaved(c, Transition::Started { pid, at })?;
                let rec = self.update_record_with(c, !first, |r| r.manually_stopped = false)?;
                self.container_event("start", &rec, &[]);
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                let code = if msg.contains("executable file not found")
                    || msg.contains("no such file or directory")
                    || msg.contains("No such file or directory")
                {
                    127
                } else if msg.contains("permission denied") || msg.contains("Permission denied") {
                    126
                } else {
                    128
                };
                let _ = self.transition(
                    c,
                    Transition::StartFailed {
                        error: msg,
                        exit_code: code,
                    },
                    true,
                );
                c.life.send_modify(|l| {
                    l.exit_code = code;
                });
                if c.record().host_config.auto_remove.unwrap_or(false) {
                    // Docker removes an auto-remove container whose start failed.
                    let engine = self.clone();
                    let id = c.id.clone();
                    tokio::spawn(async move {
                        let _ = engine.remove(&id, true, false).await;
                    });
                }
                Err(e)
            }
        }
    }

    /// Waits until the container's exit count passes `exits`.
    async fn wait_exit_after(c: &Container, exits: u64, timeout: Option<Duration>) -> bool {
        let mut rx = c.watch();
        let fut = rx.wait_for(|l| l.exits > exits || l.removed);
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        c.settle().await;
        self.stop_locked(&c, signal, timeout).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        // Even a stop that finds the container between two policy restarts ends them.
        let rec = self.update_record(c, |r| r.manually_stopped = true)?;
        if c.shim_state() == ShimState::Created && rec.state.status == Status::Created {
            // Attached but never started: tear the prepared container down.
            let _ =
                shim::call::<berth_shim::Empty>(&self.state_dir(&c.id), &Request::Shutdown).await;
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        if !rec.state.status.is_alive() {
            return Err(EngineError::NotModified("container already stopped".into()));
        }
        let sig = match signal {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => match rec.config.stop_signal.as_deref() {
                Some(s) if !s.is_empty() => parse_signal(s).unwrap_or(libc::SIGTERM),
                _ => libc::SIGTERM,
            },
        };
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let exits = c.life.borrow().exits;
        let dir = self.state_dir(&c.id);
        // Docker reports each signal a stop sends as a `kill` event (before `die`, `stop`).
        if shim::call::<berth_shim::Empty>(
            &dir,
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await
        .is_ok()
        {
            self.container_event("kill", &rec, &[("signal", sig.to_string())]);
        }
        if rec.state.status == Status::Paused {
            let _ = shim::call::<berth_shim::Empty>(&dir, &Request::Resume).await;
        }
        let graceful = if secs < 0 {
            Self::wait_exit_after(c, exits, None).await
        } else {
            Self::wait_exit_after(c, exits, Some(Duration::from_secs(secs as u64))).await
        };
        if !graceful {
            if shim::call::<berth_shim::Empty>(
                &dir,
                &Request::Kill {
                    signal: libc::SIGKILL,
                    all: true,
                },
            )
            .await
            .is_ok()
            {
                self.container_event("kill", &rec, &[("signal", libc::SIGKILL.to_string())]);
            }
            if !Self::wait_exit_after(c, exits, Some(Duration::from_secs(30))).await {
                return Err(EngineError::Internal(format!(
                    "container {} did not exit within 30 seconds after SIGKILL",
                    c.id
                )));
            }
        }
        let rec = c.record();
        self.container_event("stop", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let c = self.lookup(name)?;
        let sig = match signal {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGKILL,
        };
        let rec = c.record();
        if !rec.state.status.is_alive() {
            return Err(EngineError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                name, rec.id
            )));
        }
        let exits = c.life.borrow().exits;
        // Docker's restart policies do not apply to a container the user killed.
        self.update_record(&c, |r| r.manually_stopped = true)?;
        shim::call::<berth_shim::Empty>(
            &self.state_dir(&c.id),
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await
        .map_err(|e| match e {
            EngineError::Shim { message, kind } => EngineError::Shim {
                message: format!("Cannot kill container: {name}: {message}"),
                kind,
            },
            other => other,
        })?;
        self.container_event("kill", &rec, &[("signal", sig.to_string())]);
        if sig == libc::SIGKILL {
            // Docker's kill returns once a SIGKILLed container is gone.
            Self::wait_exit_after(&c, exits, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        c.settle().await;
        match self.stop_locked(&c, signal, timeout).await {
            Ok(()) => {}
            Err(EngineError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start_locked(&c, None).await?;
        let rec = c.record();
        self.container_event("restart", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        c.settle().await;
        {
            let rec = c.rec.lock().unwrap_or_else(|e| e.into_inner());
            status::apply(&c.id, &mut rec.state.clone(), Transition::Paused)?;
        }
        shim::call::<berth_shim::Empty>(&self.state_dir(&c.id), &Request::Pause).await?;
        let rec = self.transition(&c, Transition::Paused, false)?;
        self.container_event("pause", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let _op = c.op.lock().await;
        c.settle().await;
        {
            let rec = c.rec.lock().unwrap_or_else(|e| e.into_inner());
            status::apply(&c.id, &mut rec.state.clone(), Transition::Unpaused)?;
        }
        shim::call::<berth_shim::Empty>(&self.state_dir(&c.id), &Request::Resume).await?;
        let rec = self.transition(&c, Transition::Unpaused, false)?;
        self.container_event("unpause", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let c = self.lookup(name)?;
        if c.shim_state() == ShimState::None {
            return Err(EngineError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        shim::call::<berth_shim::Empty>(&self.state_dir(&c.id), &Request::Resize { height, width })
            .await?;
        Ok(())
    }

    /// Registers a wait now and returns a future for its outcome (exit code, error), so
    /// callers can answer headers before the container even starts (`docker run`).
    pub fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<impl std::future::Future<Output = (i64, Option<String>)> + Send + 'static> {
        let c = self.lookup(name)?;
        let mut rx = c.watch();
        let (start_exits, status) = (rx.borrow().exits, c.status());
        let rec_code = c.record().state.exit_code;
        Ok(async move {
            match condition {
                WaitCondition::NotRunning if !status.is_alive() => (rec_code, None),
                WaitCondition::Removed => {
                    let r = rx
                        .wait_for(|l| l.removed)
                        .await
                        .map(|l| (l.exit_code, l.error.clone()));
                    r.unwrap_or((rec_code, None))
                }
                _ => {
                    let r = rx
                        .wait_for(|l| l.exits > start_exits || l.removed)
                        .await
                        .map(|l| (l.exit_code, l.error.clone()));
                    r.unwrap_or((rec_code, None))
                }
            }
        })
    }

    /// Attaches to the container's stdio: spawns its shim without starting it if needed
    /// (attach before start loses nothing). Returns the stream and whether it is a tty.
    pub async fn attach(
        self: &Arc<Self>,
        name: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attached> {
        let pending = self.attach_begin(name, stdin, stdout, stderr).await?;
        pending.finish().await
    }

    /// The first half of [`Engine::attach`]: checks that the container can be attached to
    /// and locks its operations, so a start that comes meanwhile runs after the attach and
    /// loses no output. berthd answers a hijacked attach (`101`) right after this, and the
    /// client's `wait` and `start` then overlap the shim's spawn ([`PendingAttach::finish`]).
    pub async fn attach_begin(
        self: &Arc<Self>,
        name: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<PendingAttach> {
        let c = self.lookup(name)?;
        let op = c.op.clone().lock_owned().await;
        let spawn = match (c.shim_state(), c.status()) {
            (ShimState::None, Status::Created | Status::Exited) => true,
            (ShimState::None, _) | (_, Status::Removing | Status::Dead) => {
                return Err(EngineError::conflict(
                    "You cannot attach to a stopped container, start it first",
                ));
            }
            _ => false,
        };
        Ok(PendingAttach {
            engine: self.clone(),
            c,
            _op: op,
            spawn,
            streams: (stdin, stdout, stderr),
        })
    }

    /// `DELETE /containers/{id}`.    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool, _volumes: bool) -> Result<()> {
        self.remove_then(name, force).await.map(drop)
    }

    /// [`Engine::remove`], returning the task that releases the removed container's
    /// directories after the answer (see [`Engine::finish_remove`]); `None` when another
    /// removal got there first.
    async fn remove_then(
        self: &Arc<Self>,
        name: &str,
        force: bool,
    ) -> Result<Option<tokio::task::JoinHandle<()>>> {
        let c = self.lookup(name)?;
        {
            let _op = c.op.lock().await;
            c.settle().await;
            let rec = c.record();
            if rec.state.status.is_alive() {
                if !force {
                    if rec.state.status == Status::Paused {
                        return Err(EngineError::conflict(
                            "cannot remove a paused container: unpause and then stop the container before attempting removal or force remove",
                        ));
                    }
                    return Err(EngineError::conflict(format!(
                        "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                        rec.name
                    )));
                }
                let exits = c.life.borrow().exits;
                let dir = self.state_dir(&c.id);
                // In memory only: the removal's durable commit deletes the record, and a
                // failed removal writes the record (with this flag) durably. (A write
                // without fsync would not survive a crash anyway.)
                c.rec
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .manually_stopped = true;
                let _ = shim::call::<berth_shim::Empty>(
                    &dir,
                    &Request::Kill {
                        signal: libc::SIGKILL,
                        all: true,
                    },
                )
                .await;
                if rec.state.status == Status::Paused {
                    let _ = shim::call::<berth_shim::Empty>(&dir, &Request::Resume).await;
                }
                if !Self::wait_exit_after(&c, exits, Some(Duration::from_secs(30))).await {
                    return Err(EngineError::Internal(format!(
                        "could not kill container {} for removal",
                        c.id
                    )));
                }
            }
            if c.shim_state() == ShimState::Created {
                let exits = c.life.borrow().exits;
                let _ = shim::call::<berth_shim::Empty>(&self.state_dir(&c.id), &Request::Shutdown)
                    .await;
                Self::wait_exit_after(&c, exits, Some(Duration::from_secs(10))).await;
            }
            match self.transition_unsaved(&c, Transition::RemovalStarted) {
                Ok(_) => {}
                Err(e) if c.status() == Status::Removing => {
                    // Another removal (auto-remove) got there first.
                    let _ = e;
                    drop(_op);
                    let mut rx = c.watch();
                    let _ = rx.wait_for(|l| l.removed).await;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        self.finish_remove(&c.id).await.map(Some)
    }

    /// Turns a removed container's directories into a slot once its shim has exited: until
    /// then its mount namespace may still hold the overlay on the same upper and work dirs
    /// (the kernel must never see two overlays on one upper dir), and its log may still
    /// grow. Then, on one blocking thread: the container directory renamed to its next ID
    /// ([`crate::slots::Slot::take_dir`]), [`crate::slots::Slot::recycle`], the state
    /// directory taken. After the removal's answer (step 3 of [`Engine::finish_remove`]).
    /// A shim that outlives the wait, directories that do not qualify or a full pool:
    /// discarded.
    async fn recycle_after(
        self: &Arc<Self>,
        old_id: String,
        snapshot: berth_store::SnapshotSlot,
        mounted: Option<crate::slots::Premount>,
        gone: shim::ShimGone,
    ) {
        let exited = gone.wait(Duration::from_secs(10)).await;
        let engine = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let containers = engine.cfg.data_root.join("containers");
            let state_dir = engine.state_dir(&old_id);
            let was_mounted = mounted.is_some();
            // Whether the directory is still at the old ID (not yet the slot's to drop).
            let mut left = true;
            let recycled = if !exited {
                Err(EngineError::Internal(format!(
                    "the shim of {old_id} did not exit"
                )))
            } else {
                match crate::slots::Slot::take_dir(&containers, &old_id) {
                    Ok(taken) => {
                        left = false;
                        crate::slots::Slot::recycle(
                            &engine.store,
                            taken,
                            &old_id,
                            snapshot,
                            mounted,
                        )
                        .map(|mut slot| {
                            slot.take_state_dir(&engine.store, &state_dir);
                            slot
                        })
                    }
                    Err(e) => Err(e),
                }
            };
            let rejected = match recycled {
                Ok(mut slot) => {
                    let hint = engine.slots.reserve_premount();
                    slot.mount_for(&engine.store, hint.as_ref());
                    engine.slots.recycled(Some(slot), hint.is_some())
                }
                Err(e) => {
                    tracing::debug!("not recycling {old_id}: {e}");
                    let dir = containers.join(&old_id);
                    if left
                        && (!was_mounted
                            || crate::slots::unmount_rootfs_before_removal(&dir).is_ok())
                    {
                        let _ = engine.store.discard(&dir);
                    }
                    if state_dir.exists() {
                        let _ = engine.store.discard(&state_dir);
                    }
                    engine.slots.recycled(None, false)
                }
            };
            // Dropped here, on the blocking thread: its directories are removed.
            drop(rejected);
        })
        .await;
    }

    /// The removal after its checks, in three steps:
    ///
    /// 1. The records: the container's and its snapshot's in one commit without fsync. A
    ///    durable removal (any but an auto-remove container's) then waits for a metadata sync
    ///    it shares with the removals in flight ([`crate::group_sync`]). If this fails, the
    ///    container stays, as `dead`. A rootfs mounted in berthd's namespace that no slot
    ///    takes is unmounted here, before the answer (a non-volatile one syncs the host
    ///    filesystem: rare, only a created container that never started).
    /// 2. The answer: the container leaves the maps, its name is free, `wait` with `removed`
    ///    returns; `ps -a` and inspect no longer find it.
    /// 3. The directories, after the answer, in the background
    ///    ([`Engine::release_removed_dirs`]): the container's and its state directory go to
    ///    the trash or to a slot, the snapshot's to the trash. No record names them any more
    ///    and no create can reach them (a new container has a new ID and a fresh slot). A
    ///    crash before this step leaves unrecorded directories, which the next start removes;
    ///    if it also lost an auto-remove container's commit (made without fsync), the record
    ///    comes back and the restore removes the container again from its exit record.
    async fn finish_remove(self: &Arc<Self>, id: &str) -> Result<tokio::task::JoinHandle<()>> {
        let c = self.lookup(id)?;
        let rec = c.record();
        let store = self.store.clone();
        let cid = id.to_string();
        // An auto-remove container's removal is never made durable here: if a crash loses
        // the commit, the record comes back and the restore removes it again — the same end
        // state, one fsync less on `run --rm`'s critical path. Any other removal is durable.
        let durable = !rec.host_config.auto_remove.unwrap_or(false);
        let premount = c.take_premount();
        // A container whose shim this daemon spawned (so it learns when that shim, and with
        // it the container's mount namespace and runtime state, is gone) may leave its
        // directories to the next create (`slots::Slot::recycle`); the built-in runtime
        // only, whose rootfs is then mounted only inside the container's namespace.
        let shim_gone = if rec.runtime == berth_shim::BUILTIN_RUNTIME {
            c.shim_gone.lock().unwrap_or_else(|e| e.into_inner()).take()
        } else {
            None
        };
        let recycle = shim_gone.is_some() && self.slots.expect_recycled();
        c.await_rootfs_release().await;
        let dir = self.container_dir(id);
        let mounted = premount.is_some();
        let committed = tokio::task::spawn_blocking(move || {
            // A rootfs mounted in berthd's namespace (created, never started; or an
            // auto-remove container's kept mount) that no slot takes is unmounted before the
            // answer, as before: nothing of a removed container stays mounted.
            if mounted && !recycle {
                crate::slots::unmount_rootfs_before_removal(&dir)?;
            }
            let removed = commit_removal(&store, &cid, recycle)?;
            let still_mounted = mounted
                && recycle
                && (matches!(removed, Removed::Kept(_))
                    || crate::slots::unmount_rootfs_before_removal(&dir).is_err());
            Ok((removed, still_mounted))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("removal task: {e}")))
        .and_then(|r| r);
        let committed = match committed {
            Ok(removed) if durable => match self.removal_sync.sync(&self.store).await {
                Ok(()) => Ok(removed),
                Err(e) => {
                    // Its records may be gone from the database: the container is written
                    // back as dead below; a kept snapshot's directories go (on a blocking
                    // thread), a discarded one's stay for GC at the next open.
                    let _ = tokio::task::spawn_blocking(move || drop(removed)).await;
                    Err(e)
                }
            },
            other => other,
        };
        let (removed, still_mounted) = match committed {
            Ok(removed) => removed,
            Err(e) => {
                if recycle {
                    drop(self.slots.recycled(None, false));
                }
                if premount.is_some() {
                    // Not removed: the container stays, unmounted as berthd now records it.
                    let dir = self.container_dir(id);
                    let _ = tokio::task::spawn_blocking(move || crate::slots::unmount_rootfs(&dir))
                        .await;
                }
                let _ = self.transition(
                    &c,
                    Transition::RemovalFailed {
                        error: e.to_string(),
                    },
                    true,
                );
                return Err(e);
            }
        };
        self.containers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        {
            let mut names_map = self.names.lock().unwrap_or_else(|e| e.into_inner());
            if names_map.get(&rec.name).is_some_and(|v| v == id) {
                names_map.remove(&rec.name);
            }
        }
        self.container_event("destroy", &rec, &[]);
        c.life.send_modify(|l| l.removed = true);
        let premount = premount.filter(|_| still_mounted);
        Ok(self.release_removed_dirs(c, removed, premount, shim_gone, recycle))
    }

    /// Step 3 of [`Engine::finish_remove`], in the background: hands a kept snapshot with
    /// the container's directories to a slot ([`Engine::recycle_after`]) or sends them to
    /// the trash — never through a mount: a rootfs still mounted in berthd's namespace goes
    /// to the slot with its directories, or (an unmount that failed before the answer) is
    /// unmounted first, and if that fails again the directories stay for the next start.
    /// Errors are logged: the removal was answered, and whatever stays is unrecorded.
    fn release_removed_dirs(
        self: &Arc<Self>,
        c: Arc<Container>,
        removed: Removed,
        premount: Option<crate::slots::Premount>,
        shim_gone: Option<shim::ShimGone>,
        recycle: bool,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            match (removed, shim_gone) {
                (Removed::Kept(snapshot), Some(gone)) => {
                    engine
                        .recycle_after(c.id.clone(), snapshot, premount, gone)
                        .await;
                }
                (removed, _) => {
                    let store = engine.store.clone();
                    let containers = engine.cfg.data_root.join("containers");
                    let state_dir = engine.state_dir(&c.id);
                    let id = c.id.clone();
                    let mounted = premount.is_some();
                    let _ = tokio::task::spawn_blocking(move || {
                        discard_removed_dirs(
                            &store,
                            &containers,
                            &state_dir,
                            &id,
                            removed,
                            mounted,
                        );
                    })
                    .await;
                    // Nothing kept (a written upper dir, ...): the announced slot is not coming.
                    if recycle {
                        drop(engine.slots.recycled(None, false));
                    }
                }
            }
        })
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let c = self.lookup(name)?;
        let new_name = names::validate_name(new_name)?;
        let old = c.record().name;
        if old == new_name {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        {
            let mut names_map = self.names.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(owner) = names_map.get(&new_name) {
                return Err(names::name_in_use(&new_name, owner));
            }
            names_map.remove(&old);
            names_map.insert(new_name.clone(), c.id.clone());
        }
        let rec = self.update_record(&c, |r| r.name = new_name.clone())?;
        self.container_event("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// The container's log file and whether it has a tty.
    pub fn log_source(&self, name: &str) -> Result<(Arc<Container>, PathBuf, bool)> {
        let c = self.lookup(name)?;
        let rec = c.record();
        Ok((
            c.clone(),
            PathBuf::from(rec.log_path),
            rec.config.tty.unwrap_or(false),
        ))
    }

    /// Whether a container is running (for image removal's checks).
    pub fn is_running(&self, id: &str) -> bool {
        self.containers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|c| c.status().is_alive())
    }

    /// Stops every container's monitoring without touching the containers (daemon
    /// shutdown: the shims keep running; live restore picks them up).
    pub fn running_count(&self) -> (usize, usize, usize) {
        let mut r = (0, 0, 0);
        for c in self.all() {
            match c.status() {
                Status::Running | Status::Restarting => r.0 += 1,
                Status::Paused => r.1 += 1,
                _ => r.2 += 1,
            }
        }
        r
    }
}

/// What a removal's commit left of the container's snapshot (see [`Engine::finish_remove`]).
#[derive(Debug)]
enum Removed {
    /// Its upper dir was empty: kept, unrecorded, for a slot (dropping it removes it).
    Kept(berth_store::SnapshotSlot),
    /// Unrecorded, to be discarded; `None` when the container had no snapshot.
    Discard(Option<berth_store::RemovedSnapshot>),
}

/// Step 1 of [`Engine::finish_remove`]: the container's record and its snapshot's in one
/// commit (one write transaction, without fsync: the caller makes it durable). If it fails
/// nothing is committed and the caller puts the record back. When `recycle` and the upper
/// dir is empty, the snapshot is kept for a slot ([`berth_store::Store::remove_container_keeping`];
/// a written one is discarded there at once).
fn commit_removal(store: &Store, id: &str, recycle: bool) -> Result<Removed> {
    let delete_record = |w: &redb::WriteTransaction| record::delete_in(w, id);
    let res = if recycle {
        store
            .remove_container_keeping(id, false, delete_record)
            .map(|kept| kept.map_or(Removed::Discard(None), Removed::Kept))
    } else {
        store
            .remove_container_record(id, false, delete_record)
            .map(|removed| Removed::Discard(Some(removed)))
    };
    match res {
        Ok(removed) => Ok(removed),
        Err(berth_store::StoreError::SnapshotNotFound(_)) => {
            record::delete(store.db(), id, false)?;
            Ok(Removed::Discard(None))
        }
        Err(e) => Err(e.into()),
    }
}

/// Step 3's file system part when nothing goes to a slot (see
/// [`Engine::release_removed_dirs`]), on a blocking thread: the snapshot, the container's
/// directory and its state directory go to the store's trash (deleted by its thread;
/// leftovers of a crash at the next start). `mounted`: the rootfs is mounted in berthd's
/// namespace and is unmounted first; if that fails, the container directory stays.
fn discard_removed_dirs(
    store: &Store,
    containers: &Path,
    state_dir: &Path,
    id: &str,
    removed: Removed,
    mounted: bool,
) {
    match removed {
        // Dropped: its directories are removed.
        Removed::Kept(snapshot) => drop(snapshot),
        Removed::Discard(Some(snapshot)) => {
            if let Err(e) = store.discard_removed(snapshot) {
                tracing::warn!(id, "removing the snapshot of a removed container: {e}");
            }
        }
        Removed::Discard(None) => {}
    }
    let dir = containers.join(id);
    if mounted && let Err(e) = crate::slots::unmount_rootfs_before_removal(&dir) {
        tracing::warn!(id, "{e}; its directory stays until the next start");
    } else if let Err(e) = store.discard(&dir) {
        tracing::warn!(id, "removing {}: {e}", dir.display());
    }
    if let Err(e) = store.discard(state_dir) {
        tracing::warn!(id, "removing {}: {e}", state_dir.display());
    }
}

/// Writes `data` as the whole content of `path`, over what a recycled slot's file held
/// (see `slots::Slot::recycle`), without truncating it first: freeing a file's blocks
/// costs ~1.5 ms here (ext4 without a journal, mounted with `discard`, trims each freed
/// extent synchronously), writing into blocks the file has costs nothing extra. The file
/// is shortened at the end only if the new content is shorter. A crash in between leaves
/// mixed content in a directory no record names yet, which the next start removes.
fn overwrite(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let err = EngineError::io(format!("writing {}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(EngineError::io(format!("writing {}", path.display())))?;
    let len = f.metadata().map(|m| m.len());
    (|| {
        f.write_all(data)?;
        if len? > data.len() as u64 {
            f.set_len(data.len() as u64)?;
        }
        Ok(())
    })()
    .map_err(err)
}

/// Whether an overlay with this work dir may be mounted `volatile` now. A previous
/// volatile mount leaves `work/incompat/volatile`, and the kernel refuses to mount the
/// overlay again while it is there (its upper dir may have lost writes in a crash). When
/// that marker was made during the current boot, the host has not crashed since, so the
/// upper dir is intact: the marker is removed (a restarted auto-remove container). A
/// marker from before the boot is kept, and the mount fails, as the kernel intends.
fn volatile_ready(workdir: &Path) -> bool {
    let marker = workdir.join("work").join("incompat").join("volatile");
    let made = match std::fs::symlink_metadata(&marker) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(_) => return false,
        Ok(m) => m.modified(),
    };
    let booted = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    match (made, booted) {
        (Ok(made), Some(booted)) if made >= std::time::UNIX_EPOCH + Duration::from_secs(booted) => {
            std::fs::remove_dir_all(&marker).is_ok()
        }
        _ => false,
    }
}

/// Whether a container's restart policy asks for a restart after it exited with `code`.
fn wants_restart(rec: &ContainerRecord, code: i64, daemon_start: bool) -> bool {
    use berth_api::models::RestartPolicyNameEnum as P;
    let Some(policy) = &rec.host_config.restart_policy else {
        return false;
    };
    match policy.name.unwrap_or(P::EMPTY) {
        P::ALWAYS => daemon_start || !rec.manually_stopped,
        P::UNLESS_STOPPED => !rec.manually_stopped,
        P::ON_FAILURE => {
            let max = policy.maximum_retry_count.unwrap_or(0);
            !rec.manually_stopped && code != 0 && (max == 0 || rec.restart_count < max)
        }
        _ => false,
    }
}

/// An attach between its check and its stream (see [`Engine::attach_begin`]): holds the
/// container's operation lock until [`PendingAttach::finish`] has the stream.
pub struct PendingAttach {
    engine: Arc<Engine>,
    c: Arc<Container>,
    _op: tokio::sync::OwnedMutexGuard<()>,
    spawn: bool,
    streams: (bool, bool, bool),
}

impl PendingAttach {
    /// Spawns the container's shim without starting it if it has none, and attaches to
    /// its stdio. A container that cannot be created (bad command, ...) gets an empty
    /// stream, and its start reports the error.
    pub async fn finish(self) -> Result<Attached> {
        self.finish_with(false).await
    }

    /// [`PendingAttach::finish`] after the client got its `101`: every failure of a spawn
    /// here is left to the start, and the stream closes at once.
    pub async fn finish_deferred(self) -> Result<Attached> {
        self.finish_with(true).await
    }

    async fn finish_with(self, defer_errors: bool) -> Result<Attached> {
        let PendingAttach {
            engine,
            c,
            _op: op,
            spawn,
            streams: (stdin, stdout, stderr),
        } = self;
        let tty = c.record().config.tty.unwrap_or(false);
        let empty_stream = || -> Result<Attached> {
            let (ours, theirs) =
                tokio::net::UnixStream::pair().map_err(EngineError::io("socketpair for attach"))?;
            drop(theirs);
            Ok(Attached {
                buffered: Vec::new(),
                stream: ours,
                tty,
            })
        };
        let empty = |e: EngineError| -> Result<Attached> {
            *c.pending_start_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(e);
            empty_stream()
        };
        let dir = engine.state_dir(&c.id);
        // A spawn the create started (see `Engine::spawn_early`) whose shim listens already:
        // the attach goes now, and the shim serves it right after the container exists,
        // before the start that waits for this lock. Only after the `101`, where a failure
        // is left to the start (the spawn's error, or the shim gone), as below.
        let early = if defer_errors
            && spawn
            && c.spawning.try_lock().is_err()
            && c.reached(|e| e.listening).await
        {
            shim::Conn::connect(&dir).await.ok()
        } else {
            None
        };
        if early.is_some() {
            tracing::debug!(id = %c.id, "attach sent ahead of the shim's startup line");
        }
        // Otherwise that spawn may have made the shim, or failed: then the start reports
        // its error, as for a spawn here.
        if early.is_none() {
            c.settle().await;
        }
        let spawn_here = early.is_none() && spawn && c.shim_state() == ShimState::None;
        if spawn_here {
            let failed = c
                .pending_start_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(e) = failed {
                return empty(e);
            }
        }
        if spawn_here && let Err(e) = engine.spawn_shim(&c, false, None).await {
            if defer_errors || matches!(e, EngineError::Shim { .. }) {
                return empty(e);
            }
            return Err(e);
        }
        let sent = async {
            let mut conn = match early {
                Some(conn) => conn,
                None => shim::Conn::connect(&dir).await.map_err(|e| {
                    EngineError::Unavailable(format!("cannot reach the container's shim: {e}"))
                })?,
            };
            conn.send(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .await?;
            Ok::<_, EngineError>(conn)
        }
        .await;
        let mut conn = match sent {
            Ok(conn) => conn,
            Err(e) if defer_errors && spawn => return empty(e),
            Err(e) => return Err(e),
        };
        // The request is in the shim's queue, and the shim serves requests in arrival
        // order across connections: a start that waited for the lock and sends its request
        // now is served after the attach, so no output is lost. Letting go before the reply
        // saves the start a round trip to the shim on `docker run`'s path. The event goes
        // first so that `attach` still precedes `start` in the event stream (a reply that
        // fails after it is the shim gone or the container exited at that moment).
        engine.container_event("attach", &c.record(), &[]);
        drop(op);
        match conn.reply::<berth_shim::Empty>().await {
            Ok(_) => {
                let (buffered, stream) = conn.into_stream();
                Ok(Attached {
                    buffered,
                    stream,
                    tty,
                })
            }
            // A start may be past the lock already: it meets the same shim and reports
            // for itself, so this error is not left for it.
            Err(_) if defer_errors && spawn => empty_stream(),
            Err(e) => Err(e),
        }
    }
}

/// An attach stream: bytes already read plus the socket.
pub struct Attached {
    pub buffered: Vec<u8>,
    pub stream: tokio::net::UnixStream,
    pub tty: bool,
}

/// Removes the spare cgroups (`berth_cgroups::spare`) waiting under `parent`: an earlier
/// run's, or those of containers that exit while berthd is down. Best effort.
fn remove_spare_cgroups(parent: &str) {
    let removed = berth_cgroups::Hierarchy::host().and_then(|host| {
        host.manager(&berth_cgroups::CgroupPath::parse(parent)?)?
            .remove_spares_below()
    });
    match removed {
        Ok(0) => {}
        Ok(n) => tracing::debug!("removed {n} spare cgroup directories under {parent}"),
        Err(e) => tracing::warn!("removing spare cgroups under {parent}: {e}"),
    }
}

/// Shuts down the live shims of state directories no record names: `docker run --rm`
/// creates a crash interrupted before their record was durable (see
/// [`Engine::spawn_early`]). Their containers never ran (a start waits for the record);
/// the shim kills the created init and removes its cgroups and state, then exits, before
/// the open removes the directories. A shim that does not answer is left to its exit.
fn shut_down_unrecorded_shims(states: &Path, recorded: &std::collections::HashSet<&str>) {
    let Ok(rd) = std::fs::read_dir(states) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !crate::slots::is_container_id(name) || recorded.contains(name) {
            continue;
        }
        let dir = e.path();
        let Ok(mut shim) = berth_shim::client::Client::connect(&dir) else {
            continue; // no shim listens: nothing runs
        };
        let _ = shim.set_timeout(Some(Duration::from_secs(5)));
        if shim.shutdown().is_err() {
            // Not a created container after all: it goes the hard way.
            let _ = shim.kill(libc::SIGKILL, true);
            let _ = shim.wait();
            let _ = shim.shutdown();
        }
        drop(shim);
        // Read after an answer: a shim binds its socket before it writes `shim.pid`.
        let pid: Option<i32> = std::fs::read_to_string(dir.join(berth_shim::PID_FILE))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        tracing::info!("shut down the shim of unrecorded container {name}");
        if let Some(pid) = pid.filter(|p| *p > 0) {
            // Until it is gone or a zombie (its parent, the berthd that spawned it, may be
            // this very process in tests).
            let exited = || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
                    .unwrap_or(true)
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !exited() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Whether the container's state allows a start (else 304 for running, 409 for paused or
/// removing).
fn start_allowed(c: &Container) -> Result<()> {
    let rec = c.rec.lock().unwrap_or_else(|e| e.into_inner());
    let mut probe = rec.state.clone();
    status::apply(
        &c.id,
        &mut probe,
        Transition::Started {
            pid: 0,
            at: String::new(),
        },
    )?;
    Ok(())
}

/// Whether a create is `docker run --rm`'s, started at once by its client: auto-remove, the
/// built-in runtime, stdout or stderr to be attached (see [`Engine::spawn_early`]).
fn runs_at_once(host: &HostConfig, runtime: &str, attached: bool) -> bool {
    host.auto_remove.unwrap_or(false) && runtime == berth_shim::BUILTIN_RUNTIME && attached
}

fn daemon_id(root: &Path) -> Result<String> {
    let path = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_string());
    }
    let r = berth_store::random_id(16);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &r[0..8],
        &r[8..12],
        &r[12..16],
        &r[16..20],
        &r[20..32]
    );
    berth_sys::fs::atomic_write(&path, id.as_bytes(), 0o600)
        .map_err(EngineError::io(format!("writing {}", path.display())))?;
    Ok(id)
}

async fn wait_for_exit_file(dir: &Path) -> std::result::Result<ExitInfo, String> {
    // The shim writes exit.json before answering waiters; if we lost the connection early,
    // give it a moment to land.
    for _ in 0..50 {
        if let Ok(Some(e)) = ExitInfo::load(dir) {
            return Ok(e);
        }
        if !dir.join(berth_shim::SOCKET_FILE).exists() && !dir.join(berth_shim::PID_FILE).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match ExitInfo::load(dir) {
        Ok(Some(e)) => Ok(e),
        _ => Err("the container's shim exited without recording the exit status".into()),
    }
}

/// What users typed, as Docker shows it in "No such image" (`busybox` → `busybox:latest`).
pub fn display_reference(name: &str) -> String {
    match berth_oci::Reference::parse(name) {
        Ok(r) if r.digest().is_none() => r.with_default_tag().familiar(),
        _ => name.to_string(),
    }
}

/// Converts between the API's and the image crate's config types (same JSON names).
fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> Result<B> {
    let v = serde_json::to_value(a).map_err(|e| EngineError::Internal(format!("config: {e}")))?;
    serde_json::from_value(v)
        .map_err(|e| EngineError::invalid(format!("invalid container config: {e}")))
}

/// `GroupAdd` entries → gids, names through the image's `/etc/group`.
fn resolve_groups(files: &berth_image::spec::ImageFiles, groups: &[String]) -> Result<Vec<u32>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let table = files.read("etc/group")?.unwrap_or_default();
    let table = String::from_utf8_lossy(&table);
    let mut out = Vec::new();
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => table
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .next()
                .ok_or_else(|| {
                    EngineError::invalid(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    Ok(out)
}

/// json-file options: `max-size` (Docker units: `10m`) and `max-file`.
fn log_options(host: &HostConfig, cfg: &EngineConfig) -> Result<(u64, u32)> {
    let mut size = cfg.log_max_size;
    let mut files = cfg.log_max_file;
    if let Some(lc) = &host.log_config
        && let Some(opts) = &lc.config
    {
        for (k, v) in opts {
            match k.as_str() {
                "max-size" => {
                    size = parse_size(v).ok_or_else(|| {
                        EngineError::invalid(format!("invalid max-size for json-file log: {v:?}"))
                    })?
                }
                "max-file" => {
                    files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        EngineError::invalid(format!("invalid max-file for json-file log: {v:?}"))
                    })?
                }
                _ => {}
            }
        }
    }
    Ok((size, files))
}

/// Docker's `units.RAMInBytes`: `512`, `10k`, `10m`, `1g` (binary multiples).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// `SIGTERM`, `TERM`, `term`, `15` → the signal number.
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || EngineError::invalid(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        other => {
            if let Some(rest) = other.strip_prefix("RTMIN+")
                && let Ok(n) = rest.parse::<i32>()
                && (0..=30).contains(&n)
            {
                34 + n
            } else if other == "RTMIN" {
                34
            } else if other == "RTMAX" {
                64
            } else {
                return Err(bad());
            }
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount_overlay(dir: &Path, volatile: bool) -> bool {
        let mut o = format!("lowerdir={0}/l,upperdir={0}/u,workdir={0}/w", dir.display());
        if volatile {
            o.push_str(",volatile");
        }
        std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &o])
            .arg(dir.join("m"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn umount(dir: &Path) {
        let ok = std::process::Command::new("umount")
            .arg(dir.join("m"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "umount {}", dir.join("m").display());
    }

    /// A volatile overlay leaves a marker that blocks the next mount; the marker of a mount
    /// made during this boot is removed, one from before the boot is kept.
    #[test]
    fn volatile_marker_is_cleared_only_within_the_boot() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-volatile")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["l", "u", "w", "m"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let work = d.join("w");
        assert!(volatile_ready(&work), "no marker yet");
        if !mount_overlay(d, true) {
            println!("skipped: cannot mount a volatile overlay here (not root or no overlayfs)");
            return;
        }
        std::fs::write(d.join("m/f"), "x").unwrap();
        umount(d);
        let marker = work.join("work/incompat/volatile");
        assert!(marker.exists(), "the kernel leaves its marker");
        assert!(
            !mount_overlay(d, true),
            "the kernel refuses while the marker is there"
        );
        assert!(volatile_ready(&work));
        assert!(!marker.exists());
        assert!(
            mount_overlay(d, true),
            "mounts again once the marker is gone"
        );
        umount(d);
        assert_eq!(std::fs::read_to_string(d.join("u/f")).unwrap(), "x");
        // A marker older than the boot: the host may have crashed with the mount live.
        std::fs::File::open(&marker)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
        assert!(!volatile_ready(&work));
        assert!(marker.exists(), "kept: the upper dir may have lost writes");
    }

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("HUP").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), 35);
        for bad in ["SIGFOO", "0", "65", "-1", ""] {
            let e = parse_signal(bad).unwrap_err();
            assert!(e.to_string().starts_with("Invalid signal"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_parse_like_docker_units() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn references_display_with_default_tag() {
        assert_eq!(display_reference("busybox"), "busybox:latest");
        assert_eq!(display_reference("me/app:1"), "me/app:1");
    }
}
