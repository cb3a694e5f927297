//! A real berthd on a temp data root and socket, driven by real clients.
//!
//! [`Daemon::start`] spawns the built `berthd` (with `berth-shim` from the same target
//! directory) under a `berth-test-*` temp dir and cgroup parent; dropping it removes every
//! container through the API, stops the daemon by PID, kills any shim it left by PID and
//! removes the temp dir and the test cgroups, so failures clean up too.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Polls `f` every 20 ms for up to 5 s; panics naming `what` if it never holds.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berthd"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Why a test cannot run here, or None.
pub fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root".into());
    }
    if !bin_dir().join("berth-shim").exists() {
        return Some(format!(
            "berth-shim is not built in {} (cargo build -p berth-shim)",
            bin_dir().display()
        ));
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox (busybox-static) is not installed".into());
    }
    None
}

macro_rules! require {
    () => {
        if let Some(why) = common::skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}
pub(crate) use require;

/// The built `berth` CLI next to berthd.
pub fn berth_bin() -> PathBuf {
    bin_dir().join("berth")
}

/// Like [`require!`], and also skips (saying why) when the `berth` CLI is not built.
#[allow(unused_macros)] // only the CLI test files use it
macro_rules! require_cli {
    () => {
        common::require!();
        if !common::berth_bin().exists() {
            eprintln!(
                "skipped: berth is not built in {} (cargo build -p berth)",
                common::bin_dir().display()
            );
            return;
        }
    };
}
#[allow(unused_imports)] // only the CLI test files use it
pub(crate) use require_cli;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub cgroup_parent: String,
    child: Option<Child>,
    /// A program (and its arguments) berthd is exec'd through, e.g. `unshare`.
    wrapper: Vec<String>,
}

impl Daemon {
    pub fn start() -> Daemon {
        let mut d = Daemon::start_stopped();
        d.spawn();
        d
    }

    /// Starts berthd in a private mount namespace in which a hybrid host's cgroup2 mount
    /// (`/sys/fs/cgroup/unified`) is unmounted: crun 1.8 refuses hybrid hosts ("cgroups in
    /// hybrid mode not supported"), and this is how a v1-only host looks to it. Nothing
    /// changes outside the namespace; overlay mounts made inside stay inside.
    pub fn start_without_unified_cgroup2() -> Daemon {
        let mut d = Daemon::start_stopped();
        d.wrapper = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi; exec \"$@\"",
            "cgv1ns",
        ]
        .map(String::from)
        .to_vec();
        d.spawn();
        d
    }

    fn start_stopped() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-d")
            .tempdir_in("/tmp")
            .unwrap();
        let cg = format!("/{}", dir.path().file_name().unwrap().to_string_lossy());
        Daemon {
            sock: dir.path().join("run/berth.sock"),
            dir,
            cgroup_parent: cg,
            child: None,
            wrapper: Vec::new(),
        }
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// Starts (or restarts) berthd on this daemon's roots and waits until it answers.
    pub fn spawn(&mut self) {
        let shim = std::env::var("BERTH_TEST_SHIM")
            .map(PathBuf::from)
            .unwrap_or_else(|_| bin_dir().join("berth-shim"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let cfg = self.dir.path().join("daemon.json");
        std::fs::write(&cfg, "{}").unwrap();
        let berthd = env!("CARGO_BIN_EXE_berthd");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(berthd);
                c
            }
            None => Command::new(berthd),
        };
        let child = cmd
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(self.host())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--shim-binary")
            .arg(shim)
            .arg("--config-file")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!("spawning berthd: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.request("GET", "/_ping", None)
                && r.status == 200
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("berthd exited with {st}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Stops the daemon as an operator does (SIGTERM) and waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(c.id() as i32).unwrap(),
                rustix::process::Signal::TERM,
            );
            let _ = c.wait();
        }
    }

    /// SIGKILLs the daemon (live restore tests).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("running docker")
    }

    /// The docker CLI aimed at this daemon, to spawn (streams) or run.
    pub fn docker_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_cli());
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    /// Runs the docker CLI and returns its trimmed stdout, asserting success.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}): {}\n--- daemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs the berth CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("berth"))
            .args(args)
            .env("BERTH_HOST", self.host())
            .stdin(Stdio::null())
            .output()
            .expect("running berth")
    }

    /// Imports the busybox test image as `busybox:latest`.
    pub fn import_busybox(&self) {
        let tar = busybox_tar();
        self.docker_ok(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    }

    /// A raw HTTP/1.1 request over the socket (for bad-input tests).
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> std::io::Result<Reply> {
        let mut s = UnixStream::connect(&self.sock)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.unwrap_or(b"");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(Reply::parse(&raw))
    }

    pub fn container_count(&self) -> usize {
        let r = self.request("GET", "/containers/json?all=1", None).unwrap();
        serde_json::from_slice::<Vec<serde_json::Value>>(&r.body)
            .map(|v| v.len())
            .unwrap_or(0)
    }
}

/// The docker CLI to drive: `/usr/local/bin/docker` (28.x) if present, else `docker`.
pub fn docker_cli() -> &'static str {
    if Path::new("/usr/local/bin/docker").exists() {
        "/usr/local/bin/docker"
    } else {
        "docker"
    }
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut body = raw.get(split + 4..).unwrap_or(b"").to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Reply { status, head, body }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_string()
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let start = eol + 2;
        if b.len() < start + n {
            break;
        }
        out.extend_from_slice(&b[start..start + n]);
        b = &b[(start + n + 2).min(b.len())..];
    }
    out
}

/// A rootfs tar of busybox-static (applet symlinks, /etc/passwd and /etc/group), built once
/// for all test processes in cargo's per-target temp dir (keyed by the busybox binary, so a
/// new busybox makes a new tar) and moved into place by rename, so nothing is left in /tmp
/// and concurrent test processes never see a half-written tar.
pub fn busybox_tar() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(tmp).unwrap();
        let meta = std::fs::metadata("/bin/busybox").unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let tar = tmp.join(format!("busybox-{}-{mtime}.tar", meta.len()));
        if tar.exists() {
            return tar;
        }
        let work = tempfile::Builder::new()
            .prefix("berth-test-busybox")
            .tempdir_in(tmp)
            .unwrap();
        let root = work.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
            }
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\nstaff:x:50:\n",
        )
        .unwrap();
        let built = work.path().join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&built)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&built, &tar).unwrap();
        tar
    })
    .clone()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Ok(r) = self.request("GET", "/containers/json?all=1", None) {
                let list: Vec<serde_json::Value> =
                    serde_json::from_slice(&r.body).unwrap_or_default();
                for c in list {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.request("DELETE", &format!("/containers/{id}?force=1"), None);
                    }
                }
            }
            if let Some(mut c) = self.child.take() {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(c.id() as i32).unwrap(),
                    rustix::process::Signal::TERM,
                );
                let _ = c.wait();
            }
        }
        // Shims a failed test left behind: kill them by the pid they recorded.
        if let Ok(rd) = std::fs::read_dir(self.exec_root().join("containers")) {
            for e in rd.flatten() {
                if let Ok(p) = std::fs::read_to_string(e.path().join("shim.pid"))
                    && let Ok(pid) = p.trim().parse::<i32>()
                    && let Some(pid) = rustix::process::Pid::from_raw(pid)
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        // Mounts the daemon left in this mount namespace (a premounted slot made after a
        // failed test's own clean-up), deepest first, before the directories go: never
        // delete through a mount.
        let root = self.data_root();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut left: Vec<PathBuf> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .map(|m| PathBuf::from(m.replace("\\040", " ")))
                .filter(|m| m.starts_with(&root))
                .collect();
            left.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
            for m in left {
                let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
            }
        }
        // Test cgroups, deepest first; shims that were just killed may still hold theirs
        // for a moment, so retry for up to two seconds.
        let name = self.cgroup_parent.trim_start_matches('/').to_string();
        for _ in 0..40 {
            let mut left = false;
            let mut bases = vec![Path::new("/sys/fs/cgroup").join(&name)];
            if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
                bases.extend(controllers.flatten().map(|c| c.path().join(&name)));
            }
            for base in bases {
                if base.is_dir() {
                    remove_cgroup_tree(&base);
                    left |= base.is_dir();
                }
            }
            if !left {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Removes a test's cgroup tree, deepest first. Processes still in it are the test's own
/// containers whose shim was killed above (a container outlives its shim): they are
/// SIGKILLed by the pids their cgroup lists, so nothing of a failed test keeps running.
fn remove_cgroup_tree(p: &Path) {
    if let Ok(procs) = std::fs::read_to_string(p.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(p);
}
