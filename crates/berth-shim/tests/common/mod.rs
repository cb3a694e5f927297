//! Test support: a busybox bundle, a shim started as berthd would start it, and a guard that
//! removes everything (container, cgroup, runtime state, shim) even when a test fails.
#![allow(dead_code)]

use berth_shim::client::Client;
use berth_shim::{ExitInfo, ShimConfig, ShimError, Startup};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Prints why a test cannot run here; true when it can.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        true
    } else {
        eprintln!("skipped: {test} needs root");
        false
    }
}

pub fn runc() -> Option<PathBuf> {
    ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-shim"))
}

pub fn unique_id(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-test-shim-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn busybox() -> PathBuf {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("busybox not installed (scripts/install-deps.sh installs busybox-static)")
}

/// A minimal root filesystem: Debian's static busybox and its applet links.
pub fn busybox_rootfs(dst: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        std::fs::create_dir_all(dst.join(d)).unwrap();
    }
    let bb = busybox();
    if std::fs::hard_link(&bb, dst.join("bin/busybox")).is_err() {
        std::fs::copy(&bb, dst.join("bin/busybox")).unwrap();
    }
    let list = Command::new(&bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dst.join("bin").join(applet));
        }
    }
    std::fs::write(dst.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
}

/// runc's default spec for a busybox rootfs, without a terminal.
pub fn spec(id: &str, args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{id}"),
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}]
        }
    })
}

/// One container's worth of directories: bundle, state dir, runtime root.
pub struct Fixture {
    pub id: String,
    pub top: tempfile::TempDir,
    /// The shim's state directory (`<top>/state` unless moved).
    pub state: PathBuf,
    pub cfg: ShimConfig,
    pub spec: Value,
}

impl Fixture {
    /// A bundle running `args` with the in-process runtime, logging to `<state>/c-json.log`.
    pub fn new(name: &str, args: &[&str]) -> Fixture {
        let id = unique_id(name);
        let top = tempfile::Builder::new()
            .prefix("berth-test-shim-")
            .tempdir()
            .unwrap();
        let bundle = top.path().join("bundle");
        busybox_rootfs(&bundle.join("rootfs"));
        std::fs::create_dir_all(top.path().join("state")).unwrap();
        let mut cfg = ShimConfig::new(&id, &bundle, top.path().join("runtime"));
        cfg.log = Some(berth_shim::LogConfig {
            path: top.path().join("state/c-json.log"),
            max_size: 0,
            max_file: 1,
        });
        cfg.start_now = true;
        let spec = spec(&id, args);
        let state = top.path().join("state");
        Fixture {
            id,
            top,
            state,
            cfg,
            spec,
        }
    }

    /// Moves the rootfs to `<top>/lower` and sets up an overlay with upper/work dirs, the
    /// bundle's `rootfs` left as an empty mount point.
    pub fn use_overlay(&mut self) -> (PathBuf, PathBuf) {
        let lower = self.top.path().join("lower");
        let upper = self.top.path().join("upper");
        let work = self.top.path().join("work");
        std::fs::rename(self.bundle().join("rootfs"), &lower).unwrap();
        for d in [&upper, &work, &self.bundle().join("rootfs")] {
            std::fs::create_dir_all(d).unwrap();
        }
        self.cfg.rootfs = Some(berth_shim::Overlay {
            lowerdirs: vec![lower.clone()],
            upperdir: Some(upper.clone()),
            workdir: Some(work),
            options: vec![],
        });
        (lower, upper)
    }

    pub fn use_runc(&mut self) -> bool {
        match runc() {
            Some(r) => {
                self.cfg.runtime = r.display().to_string();
                true
            }
            None => {
                eprintln!("skipped: runc is not installed");
                false
            }
        }
    }

    pub fn bundle(&self) -> PathBuf {
        self.top.path().join("bundle")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state.clone()
    }

    /// Moves the state directory to a path longer than a unix socket address can hold.
    pub fn use_long_state_dir(&mut self) {
        let long = self
            .top
            .path()
            .join("x".repeat(60))
            .join("y".repeat(60))
            .join("state");
        std::fs::create_dir_all(&long).unwrap();
        assert!(long.join("shim.sock").as_os_str().len() > 108);
        self.state = long;
    }

    pub fn log_path(&self) -> PathBuf {
        self.cfg.log.as_ref().unwrap().path.clone()
    }

    /// Writes shim.json and config.json.
    pub fn write(&self) {
        std::fs::write(self.state_dir().join("shim.json"), self.cfg.to_json()).unwrap();
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    /// Starts the shim as berthd does (startup line on stdout) and reads its startup line.
    pub fn spawn(&self) -> Running {
        self.write();
        self.spawn_written()
    }

    /// Like [`Fixture::spawn`] without (re)writing the config files.
    pub fn spawn_written(&self) -> Running {
        let mut child = Command::new(shim_bin())
            .arg(self.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let line = read_line(&mut out);
        let startup = Startup::parse(&line);
        Running {
            guard: Guard::new(self, child.id() as i32),
            child: Some(child),
            startup,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.state_dir()).expect("connect to the shim")
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        ["memory", "pids", "freezer", "cpu", "devices"]
            .iter()
            .map(|c| Path::new("/sys/fs/cgroup").join(c).join(&self.id))
            .filter(|p| p.exists())
            .collect()
    }

    /// The log's entries.
    pub fn log_entries(&self) -> Vec<berth_shim::jsonlog::LogEntry> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
            .collect()
    }
}

/// Reads up to and including the first newline (one byte at a time: nothing past it).
pub fn read_line(r: &mut impl Read) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while let Ok(1) = r.read(&mut b) {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    line
}

/// A started shim.
pub struct Running {
    pub child: Option<Child>,
    pub startup: Result<(i32, Vec<String>), ShimError>,
    pub guard: Guard,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.startup.as_ref().expect("shim startup failed").0
    }

    /// Waits for the shim process to exit; its exit status.
    pub fn wait_shim(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("shim child");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the shim did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Kills and removes whatever a test left: the container's processes, the shim, the
/// runtime state, the cgroup, a host overlay mount.
pub struct Guard {
    id: String,
    runtime_root: PathBuf,
    bundle: PathBuf,
    shim_pid: i32,
    external: Option<PathBuf>,
}

impl Guard {
    pub fn new(f: &Fixture, shim_pid: i32) -> Guard {
        Guard {
            id: f.id.clone(),
            runtime_root: f.cfg.runtime_root.clone(),
            bundle: f.bundle(),
            shim_pid,
            external: (!f.cfg.builtin_runtime()).then(|| PathBuf::from(&f.cfg.runtime)),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The container first, so the shim sees it exit and cleans up itself.
        let freezer = Path::new("/sys/fs/cgroup/freezer")
            .join(&self.id)
            .join("freezer.state");
        let _ = std::fs::write(freezer, "THAWED");
        let procs = Path::new("/sys/fs/cgroup/pids")
            .join(&self.id)
            .join("cgroup.procs");
        for p in std::fs::read_to_string(procs).unwrap_or_default().lines() {
            if let Some(pid) = p
                .trim()
                .parse()
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.shim_pid) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{}", self.shim_pid)).exists()
                && !std::fs::read_to_string(format!("/proc/{}/stat", self.shim_pid))
                    .unwrap_or_default()
                    .contains(") Z ")
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        if let Some(rt) = &self.external {
            let _ = Command::new(rt)
                .arg("--root")
                .arg(&self.runtime_root)
                .args(["delete", "--force", &self.id])
                .stderr(Stdio::null())
                .status();
        } else if let Ok(c) = berth_container::Runtime::new(&self.runtime_root).load(&self.id) {
            let _ = c.delete(true);
        }
        let _ = rustix::mount::unmount(
            self.bundle.join("rootfs"),
            rustix::mount::UnmountFlags::DETACH,
        );
        for c in [
            "memory", "pids", "freezer", "cpu", "cpuacct", "cpuset", "blkio", "devices", "systemd",
            "unified",
        ] {
            let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join(&self.id));
        }
    }
}

/// Waits for a condition (polling; these tests assert behaviour, not speed).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wait`, or exit.json when the shim already went away (as berthd does).
pub fn wait(f: &Fixture) -> ExitInfo {
    match Client::connect(&f.state_dir()).and_then(|mut c| c.wait()) {
        Ok(e) => e,
        Err(e) => ExitInfo::load(&f.state_dir())
            .unwrap()
            .unwrap_or_else(|| panic!("no shim and no exit.json: {e}")),
    }
}
