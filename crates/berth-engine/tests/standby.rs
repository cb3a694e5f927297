//! The launcher's standby shim (see `berth_engine::shim`): containers start through it, a
//! standby killed before its hand-off is replaced transparently, and a standby never
//! outlives the process that spawned it (dropped launcher, SIGKILLed daemon).
//!
//! Real containers through real shims. Needs root and the `berth-shim` binary of this
//! target dir (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/fixture.rs"]
mod fixture;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_engine::shim::Launcher;
use fixture::{Fixture, shim_bin};

/// The tests find "the" standby among this process's children: one test at a time (they
/// share a process under `cargo test`).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Set in the child that plays a daemon for `a_standby_exits_when_its_daemon_is_sigkilled`.
const DAEMON_ENV: &str = "BERTH_TEST_STANDBY_DAEMON";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `(parent pid, state)` from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(i32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Live standby shims whose parent is `parent`. A shim handed its container keeps the
/// `--standby` command line until its lean handoff; its stdin is no longer the pipe.
fn standbys_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline == b"berth-shim\0--standby\0"
            && stat(pid).is_some_and(|(ppid, state)| ppid == parent && state != 'Z')
            && std::fs::read_link(format!("/proc/{pid}/fd/0"))
                .is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"))
        {
            out.push(pid);
        }
    }
    out
}

/// Waits (up to 20 s) for exactly one standby of `parent` and returns it.
fn the_standby_of(parent: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = standbys_of(parent);
        if found.len() == 1 {
            return found[0];
        }
        assert!(
            found.len() < 2,
            "more than one standby shim: {found:?} (the launcher keeps one)"
        );
        assert!(Instant::now() < deadline, "no standby shim was spawned");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Gone or a zombie: the process has exited.
fn exited(pid: i32) -> bool {
    stat(pid).is_none_or(|(_, state)| state == 'Z' || state == 'X')
}

fn wait_exited(pid: i32, why: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exited(pid) {
        assert!(Instant::now() < deadline, "{why}: standby {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// An engine on private roots with a busybox image; removes its containers and cgroups on
/// drop, even when an assertion failed.
impl Fixture {
    /// Creates and starts `sh -c <script>` (network none); returns (id, the shim's pid).
    async fn run(&self, script: &str) -> (String, i32) {
        let body = serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sh", "-c", script],
            "HostConfig": {"NetworkMode": "none"},
        }))
        .unwrap();
        let (id, _) = self.engine().create(None, body).await.expect("create");
        self.engine().start(&id).await.expect("start");
        let shim_pid: i32 = std::fs::read_to_string(
            self.dir
                .path()
                .join("run/containers")
                .join(&id)
                .join(berth_shim::PID_FILE),
        )
        .expect("shim.pid of a started container")
        .trim()
        .parse()
        .unwrap();
        (id, shim_pid)
    }

    /// Waits for the container's exit; its exit code.
    async fn exit_code(&self, id: &str) -> i64 {
        let wait = self
            .engine()
            .wait(id, berth_engine::engine::WaitCondition::NotRunning)
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("the container exits")
            .0
    }
}

/// A container starts in the standby that was waiting (its shim is that very process), a
/// new standby is made for the next one, and one killed before its hand-off is replaced by
/// a fresh spawn without the start noticing.
#[test]
fn containers_start_through_the_standby_and_a_killed_one_is_replaced() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(start_through_the_standby());
}

async fn start_through_the_standby() {
    let test = "containers_start_through_the_standby_and_a_killed_one_is_replaced";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;

    let standby = the_standby_of(me);
    let (a, shim_a) = fx.run("exit 3").await;
    assert_eq!(
        shim_a, standby,
        "the container's shim is the waiting standby"
    );
    assert_eq!(fx.exit_code(&a).await, 3);

    // The next standby; killed before it gets a container.
    let next = the_standby_of(me);
    assert_ne!(next, standby);
    kill9(next);
    wait_exited(next, "SIGKILL");
    let (b, shim_b) = fx.run("exit 4").await;
    assert_ne!(shim_b, next, "a killed standby is never handed a container");
    assert_eq!(fx.exit_code(&b).await, 4);

    // And the launcher is back to one standby, which still works.
    let again = the_standby_of(me);
    let (c, shim_c) = fx.run("sleep 1000").await;
    assert_eq!(shim_c, again);
    fx.engine().kill(&c, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&c).await, 137);
}

/// A standby killed after berthd wrote its state directory but before it read it (stopped,
/// then SIGKILLed): EOF without a startup line and without `shim.pid`, so the start falls
/// back to a fresh shim instead of failing.
#[test]
fn a_standby_killed_after_the_hand_off_is_replaced() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(killed_after_the_hand_off());
}

async fn killed_after_the_hand_off() {
    let test = "a_standby_killed_after_the_hand_off_is_replaced";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;
    let standby = the_standby_of(me);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(standby),
        nix::sys::signal::Signal::SIGSTOP,
    );
    let engine = fx.engine().clone();
    let run = tokio::spawn(async move {
        let body = serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sh", "-c", "exit 5"],
            "HostConfig": {"NetworkMode": "none"},
        }))
        .unwrap();
        let (id, _) = engine.create(None, body).await.expect("create");
        engine.start(&id).await.map(|()| id)
    });
    // The next standby is spawned right after the hand-off's write: then kill the first.
    let deadline = Instant::now() + Duration::from_secs(20);
    while standbys_of(me).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no hand-off to the stopped standby"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill9(standby);
    let id = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the start finishes")
        .unwrap()
        .expect("the start succeeds with a fresh shim");
    assert_eq!(fx.exit_code(&id).await, 5);
    wait_exited(standby, "SIGKILL");
}

/// Dropping the launcher (the engine going away) closes the standby's stdin: it exits.
/// While it waits, `ps` shows it as `berth-shim`.
#[test]
fn a_standby_exits_when_its_launcher_is_dropped() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(shim) = shim_bin("a_standby_exits_when_its_launcher_is_dropped") else {
        return;
    };
    let rt = runtime();
    let launcher = rt.block_on(async { Launcher::new(&shim).expect("launcher") });
    let standby = the_standby_of(std::process::id() as i32);
    // Named as every shim, though exec'd from a memfd (`/proc/self/fd/N`).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{standby}/comm")).unwrap_or_default()
        != "berth-shim\n"
    {
        assert!(Instant::now() < deadline, "the standby never named itself");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(launcher);
    wait_exited(standby, "launcher dropped");
}

/// A daemon SIGKILLed with a standby waiting: the kernel closes the daemon's end of the
/// hand-off pipe and the standby exits. The daemon is this test binary run again (with
/// `DAEMON_ENV` set), holding a launcher until it is killed.
#[test]
fn a_standby_exits_when_its_daemon_is_sigkilled() {
    let test = "a_standby_exits_when_its_daemon_is_sigkilled";
    if let Some(report) = std::env::var_os(DAEMON_ENV) {
        // The daemon: report the standby's pid, then wait to be killed.
        let rt = runtime();
        let shim = berth_fixtures::workspace_bin("berth-shim");
        let _launcher = rt.block_on(async { Launcher::new(&shim).expect("launcher") });
        let standby = the_standby_of(std::process::id() as i32);
        let tmp = PathBuf::from(&report).with_extension("tmp");
        std::fs::write(&tmp, standby.to_string()).unwrap();
        std::fs::rename(&tmp, &report).unwrap();
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if shim_bin(test).is_none() {
        return;
    }
    let dir = berth_fixtures::temp_dir("engine-standby-daemon");
    let report = dir.path().join("standby.pid");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--test-threads=1"])
            .env(DAEMON_ENV, &report)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run the daemon"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let standby: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&report)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited without reporting its standby"
        );
        assert!(Instant::now() < deadline, "the daemon reports its standby");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!exited(standby));
    kill9(daemon.0.id() as i32);
    let _ = daemon.0.wait();
    wait_exited(standby, "daemon SIGKILLed");
}
