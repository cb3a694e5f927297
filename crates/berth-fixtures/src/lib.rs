//! Test support for Berth: real root filesystems, OCI bundles, the in-container probe, the
//! runc oracle and cleanup guards.
//!
//! - [`busybox_rootfs`]: a root filesystem from Debian's `busybox-static` (`/bin/busybox`
//!   plus its applet links) with the static [`probe`] at `/probe`, built once per target dir
//!   and hard-linked into each bundle (cheap, and each test can write to its own copy).
//! - [`Bundle`]: a temp directory (`berth-test-bundle-*`) with `rootfs/` and a `config.json`
//!   edited as JSON (runc's defaults minus the terminal, running the probe).
//! - [`Runtime`]: `berth-runtime` or `runc` (the oracle), driven through the runc CLI so the
//!   same conformance test runs against both.
//! - [`ContainerGuard`]: `delete --force` on drop, so failing tests leave nothing behind.
//!
//! Every object carries `berth-test` in its name (see `scripts/leak-check.sh`).
#![forbid(unsafe_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether privileged tests can run; prints the reason to skip otherwise.
pub fn require_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: {test} needs root");
        false
    }
}

/// A unique container id: `berth-test-<name>-<pid>-<n>`.
pub fn unique_id(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-test-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // <target>/debug/deps/<test binary>
    std::env::current_exe()
        .ok()
        .and_then(|p| p.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// A binary of the workspace, built by `cargo build` (`target/debug/<name>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test binary> → <target>/<profile>/<name>
    let profile_dir = exe.parent().and_then(Path::parent).expect("target layout");
    profile_dir.join(name)
}

/// Debian's static busybox.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn lock(path: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .expect("open lock file");
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    f
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
    }
    newest
}

/// The static probe binary, built on first use (a separate cargo invocation with its own
/// target subdirectory, `+crt-static` on the gnu target) and rebuilt when its sources change.
pub fn probe() -> PathBuf {
    let out_dir = target_dir().join("probe-static");
    std::fs::create_dir_all(&out_dir).expect("create probe target dir");
    let _lock = lock(&out_dir.join(".lock"));
    let triple = "x86_64-unknown-linux-gnu";
    let bin = out_dir.join(triple).join("release").join("berth-probe");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth-probe");
    let fresh = bin
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_mtime(&src));
    if !fresh {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(&src)
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "berth-probe",
                "--target",
                triple,
            ])
            .args([
                "--config",
                &format!("target.{triple}.rustflags=[\"-C\",\"target-feature=+crt-static\"]"),
            ])
            .env("CARGO_TARGET_DIR", &out_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build the probe");
        assert!(st.success(), "building the static probe failed");
    }
    bin
}

const BASE_VERSION: &str = "2";

/// A base rootfs (busybox, applet links, /etc files, /probe) built once per target dir.
fn base_rootfs() -> PathBuf {
    let probe = probe();
    let dir = target_dir().join(format!("berth-fixtures-rootfs-v{BASE_VERSION}"));
    let stamp = dir.join(".complete");
    let _lock = lock(&target_dir().join("berth-fixtures-rootfs.lock"));
    let probe_mtime = probe.metadata().and_then(|m| m.modified()).ok();
    let stamp_mtime = stamp.metadata().and_then(|m| m.modified()).ok();
    if stamp_mtime.is_some() && stamp_mtime >= probe_mtime {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let busybox =
        busybox().expect("busybox not installed (scripts/install-deps.sh installs busybox-static)");
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home",
        "var/tmp", "run",
    ] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    std::fs::copy(&busybox, dir.join("bin/busybox")).expect("copy busybox");
    std::fs::copy(&probe, dir.join("probe")).expect("copy probe");
    let list = Command::new(&busybox)
        .arg("--list-full")
        .output()
        .expect("busybox --list-full");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let p = dir.join(applet);
        if applet == "bin/busybox" || p.exists() {
            continue;
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir applet dir");
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", &p);
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n").expect("passwd");
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\nuser:x:1000:\n",
    )
    .expect("group");
    std::fs::write(dir.join("etc/hostname"), "berth-test\n").expect("hostname");
    std::fs::write(&stamp, BASE_VERSION).expect("stamp");
    dir
}

/// Copies the base rootfs into `dst`: directories and symlinks recreated, regular files
/// hard-linked (copied across filesystems).
pub fn busybox_rootfs(dst: &Path) {
    let base = base_rootfs();
    copy_tree(&base, dst);
    let _ = std::fs::remove_file(dst.join(".complete"));
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    let meta = std::fs::metadata(src).expect("stat");
    std::fs::set_permissions(dst, meta.permissions()).expect("chmod");
    for e in std::fs::read_dir(src).expect("read_dir").flatten() {
        let s = e.path();
        let d = dst.join(e.file_name());
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            copy_tree(&s, &d);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s).expect("readlink"), &d)
                .expect("symlink");
        } else if std::fs::hard_link(&s, &d).is_err() {
            std::fs::copy(&s, &d).expect("copy");
        }
    }
}

/// An OCI bundle in a temp directory, with a busybox rootfs and the probe.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config, edited freely before a run.
    pub config: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    pub fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-bundle-")
            .tempdir()
            .expect("temp dir");
        // Traversable by a mapped (non-host-root) container root in user namespace tests.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod bundle");
        busybox_rootfs(&dir.path().join("rootfs"));
        Bundle {
            dir,
            config: default_config(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Sets the process args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets a value by JSON pointer (`/process/cwd`), creating objects on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, p) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                match cur {
                    Value::Array(a) => {
                        let idx: usize = p.parse().expect("array index");
                        if idx == a.len() {
                            a.push(value);
                        } else {
                            a[idx] = value;
                        }
                    }
                    _ => cur[*p] = value,
                }
                return self;
            }
            if cur.get(*p).is_none() {
                cur[*p] = json!({});
            }
            cur = match cur {
                Value::Array(a) => &mut a[p.parse::<usize>().expect("array index")],
                _ => &mut cur[*p],
            };
        }
        self
    }

    /// Appends a mount.
    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(m);
        self
    }

    /// Writes config.json with `cgroupsPath` = `/<id>` unless set.
    pub fn write_for(&self, id: &str) {
        let mut c = self.config.clone();
        if c["linux"]["cgroupsPath"].is_null() {
            c["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        }
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).expect("encode config"),
        )
        .expect("write config.json");
    }
}

/// runc's `spec` defaults without a terminal, running the probe, with a network namespace.
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/probe"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
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
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]
        }
    })
}

/// An OCI runtime driven through the runc CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `berth-runtime` at this path.
    Berth(PathBuf),
    /// The oracle.
    Runc,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Berth(_) => "berth-runtime",
            Runtime::Runc => "runc",
        }
    }

    pub fn bin(&self) -> PathBuf {
        match self {
            Runtime::Berth(p) => p.clone(),
            Runtime::Runc => PathBuf::from("runc"),
        }
    }

    /// The runtime's default state root (what `scripts/leak-check.sh` inspects).
    pub fn root(&self) -> PathBuf {
        match self {
            Runtime::Berth(_) => PathBuf::from("/run/berth-runtime"),
            Runtime::Runc => PathBuf::from("/run/runc"),
        }
    }

    /// Whether runc is installed (the oracle tests print "skipped" otherwise).
    pub fn runc_available() -> bool {
        Command::new("runc")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A command with `--root` set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.bin());
        c.arg("--root").arg(self.root());
        c
    }

    /// Runs a runtime command and captures its output (stdin closed).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the runtime")
    }

    /// `run --bundle B ID` in the foreground; returns the output.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        bundle.write_for(id);
        self.exec(&[
            "run",
            "--bundle",
            bundle.path().to_str().expect("utf-8"),
            id,
        ])
    }

    /// `create --bundle B ID` with the container's stdio redirected to files (the init keeps
    /// them open, so pipes would never reach end-of-file): stdout and stderr go to
    /// `<bundle>/container-output` and `<bundle>/container-stderr`.
    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        self.create_with(bundle, id, &[])
    }

    /// [`Runtime::create`] with extra flags for `create`.
    pub fn create_with(&self, bundle: &Bundle, id: &str, flags: &[&str]) -> Output {
        bundle.write_for(id);
        let out =
            std::fs::File::create(bundle.path().join("container-output")).expect("output file");
        let err_path = bundle.path().join("container-stderr");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let mut c = self.cmd();
        c.arg("create")
            .args(flags)
            .args(["--bundle", bundle.path().to_str().expect("utf-8"), id])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let status = c.status().expect("run the runtime");
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// `state ID` parsed.
    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.exec(&["state", id]);
        o.status
            .success()
            .then(|| serde_json::from_slice(&o.stdout).ok())
            .flatten()
    }
}

/// The probe's JSON report from a run's stdout (the first line that parses).
pub fn report(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no probe report; status {:?}\nstdout: {text}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Deletes the container (`delete --force`) when dropped.
pub struct ContainerGuard {
    pub runtime: Runtime,
    pub id: String,
}

impl ContainerGuard {
    pub fn new(runtime: &Runtime, id: &str) -> ContainerGuard {
        ContainerGuard {
            runtime: runtime.clone(),
            id: id.to_string(),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = self
            .runtime
            .cmd()
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // runc leaves the cgroup of a container whose init it did not reap; make sure.
        for sub in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(sub.path().join(&self.id));
        }
    }
}

/// A temp directory named `berth-test-*` (removed on drop).
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-test-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// stderr of an output as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
