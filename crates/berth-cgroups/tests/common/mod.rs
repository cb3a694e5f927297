//! Test support: unique `berth-test` names, cgroups removed on drop, children killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cgroups::{CgroupManager, CgroupPath, Hierarchy};

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `berth-test-<pid>-<n>-<what>`: unique per test, found by scripts/leak-check.sh if leaked.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-test-{}-{}-{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cgroup that is destroyed (with everything created for it) when dropped.
pub struct CgroupGuard {
    pub cg: Box<dyn CgroupManager>,
    /// Extra directories to remove after the cgroup (created parents), innermost first.
    pub extra: Vec<PathBuf>,
}

impl CgroupGuard {
    pub fn new(h: &Hierarchy, path: &str) -> CgroupGuard {
        let cg = h
            .manager(&CgroupPath::parse(path).expect("valid test path"))
            .expect("manager");
        CgroupGuard {
            cg,
            extra: Vec::new(),
        }
    }
}

impl std::ops::Deref for CgroupGuard {
    type Target = dyn CgroupManager;
    fn deref(&self) -> &Self::Target {
        &*self.cg
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        // Processes still inside keep the directory busy: kill them first.
        let _ = self.cg.kill_all(libc::SIGKILL);
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup: {e}");
        }
        for d in &self.extra {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A `sh -c SCRIPT` child whose stdin we hold: scripts start with `read _` so the test can
/// move the child into a cgroup before it does anything.
pub struct Sh {
    pub child: Option<Child>,
    pub pid: i32,
    out: Option<BufReader<ChildStdout>>,
}

impl Sh {
    pub fn spawn(script: &str) -> Sh {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn /bin/sh");
        let pid = child.id() as i32;
        let mut child = child;
        let out = child.stdout.take().map(BufReader::new);
        Sh {
            child: Some(child),
            pid,
            out,
        }
    }

    /// Lets the script continue past its `read _`.
    pub fn go(&mut self) {
        let c = self.child.as_mut().unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }

    /// The next line the script prints (blocks until it does).
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.as_mut().unwrap().read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    /// Waits for the exit; returns (status, stdout, stderr).
    pub fn wait(&mut self) -> (ExitStatus, String, String) {
        let mut c = self.child.take().unwrap();
        drop(c.stdin.take());
        let mut out = String::new();
        let mut err = String::new();
        self.out.take().unwrap().read_to_string(&mut out).unwrap();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (c.wait().unwrap(), out, err)
    }

    /// The `State:` line of /proc/<pid>/status, e.g. "D (disk sleep)".
    pub fn state(&self) -> String {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for Sh {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn read(p: impl AsRef<std::path::Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", p.as_ref().display()))
}

pub fn resources(json: &str) -> berth_oci::spec::runtime::LinuxResources {
    serde_json::from_str(json).expect("resources json")
}
