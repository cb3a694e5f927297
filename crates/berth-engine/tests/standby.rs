//! The launcher's standby shim (see `berth_engine::shim`): containers start through it, a
//! standby killed before its hand-off is replaced transparently, and a standby never
//! outlives the process that spawned it (dropped launcher, SIGKILLed daemon). Standbys are
//! forked by the zygote (the launcher's child, like them): a killed or stuck zygote is
//! replaced or bypassed, and nothing of it or of another standby leaks into a shim or a
//! container.
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
        if cmdline.starts_with(b"berth-shim\0--standby\0")
            && stat(pid).is_some_and(|(ppid, state)| ppid == parent && state != 'Z')
            && std::fs::read_link(format!("/proc/{pid}/fd/0"))
                .is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"))
        {
            out.push(pid);
        }
    }
    out
}

/// The zygote of `parent`: its child named `berth-zygote` with a socket as stdin.
fn zygotes_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
            == "berth-zygote\n"
            && stat(pid).is_some_and(|(ppid, state)| ppid == parent && state != 'Z')
            && fd_target(pid, 0).starts_with("socket:")
        {
            out.push(pid);
        }
    }
    out
}

/// Waits (up to 20 s) for exactly one zygote of `parent` and returns it.
fn the_zygote_of(parent: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = zygotes_of(parent);
        if found.len() == 1 {
            return found[0];
        }
        assert!(found.len() < 2, "more than one zygote: {found:?}");
        assert!(Instant::now() < deadline, "no zygote was spawned");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `(fd, target)` of every open descriptor of `pid`, sorted.
fn fds(pid: i32) -> Vec<(i32, String)> {
    let mut out: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .map(|fd| (fd, fd_target(pid, fd)))
        .collect();
    out.sort();
    out
}

/// A forked process keeps its parent's auxiliary vector (load addresses, `AT_RANDOM`, all
/// randomised per exec): equal vectors mean `pid` is a fork of `zygote`, not an exec.
fn forked_from(pid: i32, zygote: i32) -> bool {
    let auxv = |p: i32| std::fs::read(format!("/proc/{p}/auxv")).unwrap_or_default();
    let a = auxv(pid);
    !a.is_empty() && a == auxv(zygote)
}

/// Asserts that the running shim `shim` was forked by `zygote` (not exec'd afresh), unless
/// it has already re-executed itself (300 ms after its start, handoff.rs), which erases the
/// trace: then a note says the check was left out.
fn assert_forked_shim(test: &str, shim: i32, zygote: i32) {
    let forked = forked_from(shim, zygote);
    let cmdline = std::fs::read(format!("/proc/{shim}/cmdline")).unwrap_or_default();
    if cmdline.windows(9).any(|w| w == b"--monitor") {
        eprintln!(
            "note: {test}: the shim {shim} re-executed itself before it was looked at (a slow \
             machine): the check that the zygote forked it is left out"
        );
        return;
    }
    assert!(
        forked,
        "the start waits for a standby of the zygote: {shim} is not a fork of {zygote} (a \
         fresh shim was exec'd)"
    );
}

/// A waiting standby holds its stdin pipe, /dev/null as stdout, stderr, its startup pipe,
/// its control socket bound ahead (in the fixture's `run/standby`), and what its spawner
/// passed down to every child (the zygote holds those too, at the same numbers): no socket
/// of the zygote, no pipe of another standby, nothing else.
fn assert_standby_fds(fx: &Fixture, standby: i32, zygote: i32) {
    let fds = fds(standby);
    let zygote_fds = fds_of_zygote(zygote);
    assert!(fds.len() >= 5, "the standby's descriptors: {fds:?}");
    assert!(fds[0].1.starts_with("pipe:"), "{fds:?}");
    assert_eq!((fds[1].0, fds[1].1.as_str()), (1, "/dev/null"), "{fds:?}");
    let own: Vec<_> = fds
        .iter()
        .filter(|(fd, _)| *fd > 2)
        .filter(|f| !zygote_fds.contains(f))
        .map(|(_, t)| t.as_str())
        .collect();
    let (sockets, others): (Vec<&str>, Vec<&str>) =
        own.iter().partition(|t| t.starts_with("socket:"));
    assert!(
        others.len() == 1 && others[0].starts_with("pipe:"),
        "beyond stdio, its socket and what the spawner passed down (the zygote's \
         {zygote_fds:?}), the standby holds only its startup pipe: {fds:?}"
    );
    let own_socket = prebound_socket(fx, standby);
    assert_eq!(
        sockets
            .iter()
            .map(|t| unix_socket_path(t))
            .collect::<Vec<_>>(),
        [Some(own_socket)],
        "the standby's one socket is the control socket it bound ahead: {fds:?}"
    );
}

/// Where the fixture's standby `pid` binds its control socket ahead of its hand-off.
fn prebound_socket(fx: &Fixture, pid: i32) -> PathBuf {
    prebound_socket_in(&fx.dir.path().join("run/standby"), pid)
}

fn prebound_socket_in(dir: &std::path::Path, pid: i32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

/// The path a unix socket (`socket:[inode]`, a descriptor's link) is bound to, from
/// `/proc/net/unix`.
fn unix_socket_path(link: &str) -> Option<PathBuf> {
    let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(6) == Some(&inode)).then(|| f.get(7).map(PathBuf::from))?
    })
}

/// The zygote's descriptors above stdio.
fn fds_of_zygote(zygote: i32) -> Vec<(i32, String)> {
    fds(zygote).into_iter().filter(|(fd, _)| *fd > 2).collect()
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
        let shim_pid = self.shim_pid(&id);
        (id, shim_pid)
    }

    /// The pid of a started container's shim (its `shim.pid`).
    fn shim_pid(&self, id: &str) -> i32 {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("run/containers")
                .join(id)
                .join(berth_shim::PID_FILE),
        )
        .expect("shim.pid of a started container")
        .trim()
        .parse()
        .unwrap()
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
/// one the zygote forks for that start (not a fresh exec) without the start noticing.
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
    // Running until killed: its shim must still be there to be looked at.
    let (b, shim_b) = fx.run("sleep 1000").await;
    assert_ne!(shim_b, next, "a killed standby is never handed a container");
    assert_forked_shim(test, shim_b, the_zygote_of(me));
    fx.engine().kill(&b, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&b).await, 137);

    // And the launcher is back to one standby, which still works.
    let again = the_standby_of(me);
    let (c, shim_c) = fx.run("sleep 1000").await;
    assert_eq!(shim_c, again);
    fx.engine().kill(&c, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&c).await, 137);
}

/// A standby binds its control socket while it waits (`run/standby/<pid>.sock`) and its
/// setup renames that very socket to the container's `shim.sock`: no bind on the
/// container's path. One killed before its hand-off leaves its socket, which the next
/// launcher on the directory (berthd's next start) removes; a standby never handed a
/// container removes its own when it exits.
#[test]
fn a_standby_binds_its_socket_ahead_and_renames_it_at_the_hand_off() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(socket_bound_ahead());
}

async fn socket_bound_ahead() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let test = "a_standby_binds_its_socket_ahead_and_renames_it_at_the_hand_off";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;
    let standby = the_standby_of(me);
    let ahead = prebound_socket(&fx, standby);
    let bound = std::fs::metadata(&ahead).expect("the waiting standby's socket");
    assert!(bound.file_type().is_socket(), "{}", ahead.display());

    let (a, shim_a) = fx.run("sleep 1000").await;
    assert_eq!(shim_a, standby);
    let sock = fx
        .dir
        .path()
        .join("run/containers")
        .join(&a)
        .join(berth_shim::SOCKET_FILE);
    assert_eq!(
        std::fs::metadata(&sock)
            .expect("the container's shim.sock")
            .ino(),
        bound.ino(),
        "shim.sock is the socket the standby bound ahead, renamed"
    );
    assert!(!ahead.exists(), "{} was renamed away", ahead.display());
    fx.engine().kill(&a, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&a).await, 137);

    // Killed while it waits: its socket stays behind (until a launcher starts on the
    // directory, below).
    let killed = the_standby_of(me);
    let left = prebound_socket(&fx, killed);
    assert!(left.exists());
    kill9(killed);
    wait_exited(killed, "SIGKILL");
    assert!(
        left.exists(),
        "a SIGKILLed standby cannot remove its socket"
    );
    drop(fx);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !standbys_of(me).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the engine's standby outlived it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // A launcher empties its directory of such leftovers; a standby that exits without a
    // container (its launcher dropped) removes its own socket.
    let root = berth_fixtures::temp_dir("standby-sockets");
    let dir = root.path().join("standby");
    std::fs::create_dir(&dir).unwrap();
    let leftover = dir.join("1.sock");
    drop(std::os::unix::net::UnixListener::bind(&leftover).unwrap());
    assert!(leftover.exists());
    let launcher =
        Launcher::new(&shim_bin(test).expect("berth-shim"), Some(&dir)).expect("launcher");
    assert!(
        !leftover.exists(),
        "a new launcher removes what killed standbys left"
    );
    let waiting = the_standby_of(me);
    assert!(prebound_socket_in(&dir, waiting).exists());
    drop(launcher);
    wait_exited(waiting, "its launcher dropped");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "the standby removed its socket when it exited"
    );
}

/// A lone `docker run --rm` container (attached and auto-remove: its create spawns it)
/// leaves the refill of the standby it took until it is removed, or until it has run for a
/// moment (`REFILL_AFTER`, 100 ms): no standby is forked while it is set up and started.
/// Then the next one waits, as for any container.
#[test]
fn a_lone_run_rm_forks_the_next_standby_after_its_start() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(lone_run_rm_refill());
}

async fn lone_run_rm_refill() {
    let test = "a_lone_run_rm_forks_the_next_standby_after_its_start";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;
    let standby = the_standby_of(me);
    let body = serde_json::from_value(serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sleep", "2"],
        "AttachStdout": true,
        "AttachStderr": true,
        "HostConfig": {"NetworkMode": "none", "AutoRemove": true},
    }))
    .unwrap();
    let created = Instant::now();
    let (id, _) = fx.engine().create(None, body).await.expect("create");
    fx.engine().start(&id).await.expect("start");
    let since = created.elapsed();
    let waiting = standbys_of(me);
    if since < Duration::from_millis(80) {
        assert!(
            waiting.is_empty(),
            "a standby was forked during the run's create and start ({since:?}): {waiting:?}"
        );
    } else {
        eprintln!(
            "note: {test}: create and start took {since:?}, past the refill's 100 ms: \
             the check that none was forked meanwhile is left out"
        );
    }
    assert_eq!(
        fx.shim_pid(&id),
        standby,
        "the container's shim is the standby that waited"
    );
    // The refill comes while it still runs.
    let next = the_standby_of(me);
    assert_ne!(next, standby);
    assert_eq!(
        fx.engine().lookup(&id).expect("still there").status(),
        berth_engine::status::Status::Running,
        "the standby is refilled while a long run goes on"
    );
    let removed = fx
        .engine()
        .wait(&id, berth_engine::WaitCondition::Removed)
        .expect("wait");
    tokio::time::timeout(Duration::from_secs(20), removed)
        .await
        .expect("the container is removed");
    assert_eq!(the_standby_of(me), next, "one standby waits, as before");
}

/// A standby killed after berthd wrote its state directory but before it read it (stopped,
/// then SIGKILLed): EOF without a startup line and without `shim.pid`, so the start takes
/// the next standby (the zygote's) instead of failing.
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
            "Cmd": ["sleep", "1000"],
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
        .expect("the start succeeds in another shim");
    let shim = fx.shim_pid(&id);
    assert_ne!(shim, standby);
    assert_forked_shim(test, shim, the_zygote_of(me));
    fx.engine().kill(&id, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&id).await, 137);
    wait_exited(standby, "SIGKILL");
}

/// Standbys are forked by the zygote, not exec'd: the launcher's children (`CLONE_PARENT`)
/// named `berth-shim`, with a standby's descriptors only. A container started in one sees
/// none of them either, and a killed zygote is replaced by a new one.
#[test]
fn standbys_come_from_the_zygote_and_a_killed_one_is_replaced() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(standbys_from_the_zygote());
}

async fn standbys_from_the_zygote() {
    let test = "standbys_come_from_the_zygote_and_a_killed_one_is_replaced";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;
    let zygote = the_zygote_of(me);
    let standby = the_standby_of(me);
    assert!(
        forked_from(standby, zygote),
        "the standby {standby} is a fork of the zygote {zygote}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{standby}/comm")).unwrap(),
        "berth-shim\n"
    );
    assert_standby_fds(&fx, standby, zygote);

    // A container in it: its init holds its stdio and nothing else.
    let (a, shim_a) = fx.run("sleep 1000").await;
    assert_eq!(shim_a, standby);
    let children = std::fs::read_to_string(format!("/proc/{shim_a}/task/{shim_a}/children"))
        .expect("the shim's children");
    let init: i32 = children
        .split_whitespace()
        .next()
        .expect("the container's init")
        .parse()
        .unwrap();
    let init_fds = fds(init);
    assert_eq!(
        init_fds.iter().map(|(fd, _)| *fd).collect::<Vec<_>>(),
        [0, 1, 2],
        "the container's init: {init_fds:?}"
    );
    fx.engine().kill(&a, Some("KILL")).await.expect("kill");
    assert_eq!(fx.exit_code(&a).await, 137);

    // The zygote killed: the waiting standby still works, and the next is forked by a new
    // zygote.
    let next = the_standby_of(me);
    kill9(zygote);
    wait_exited(zygote, "SIGKILL");
    let (b, shim_b) = fx.run("exit 6").await;
    assert_eq!(
        shim_b, next,
        "the standby forked before survives its zygote"
    );
    assert_eq!(fx.exit_code(&b).await, 6);
    let zygote2 = the_zygote_of(me);
    assert_ne!(zygote2, zygote);
    let standby2 = the_standby_of(me);
    assert!(forked_from(standby2, zygote2));
    assert_standby_fds(&fx, standby2, zygote2);
    let (c, shim_c) = fx.run("exit 7").await;
    assert_eq!(shim_c, standby2);
    assert_eq!(fx.exit_code(&c).await, 7);
}

/// A zygote that stops answering (SIGSTOPped) is given up after the launcher's timeout and
/// replaced; starts never wait for it (without a standby they spawn their shim).
#[test]
fn a_stuck_zygote_is_replaced() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(stuck_zygote());
}

async fn stuck_zygote() {
    let test = "a_stuck_zygote_is_replaced";
    let Some(fx) = Fixture::open(test, "engine-standby", &["sh", "sleep", "cat"]).await else {
        return;
    };
    let me = std::process::id() as i32;
    let zygote = the_zygote_of(me);
    let standby = the_standby_of(me);
    struct KillOnDrop(i32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            kill9(self.0);
        }
    }
    let stopped = KillOnDrop(zygote);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(zygote),
        nix::sys::signal::Signal::SIGSTOP,
    );
    let (a, shim_a) = fx.run("exit 8").await;
    assert_eq!(shim_a, standby);
    assert_eq!(fx.exit_code(&a).await, 8);
    // Meanwhile a start without a standby spawns its shim directly.
    let (b, shim_b) = fx.run("exit 9").await;
    assert!(!forked_from(shim_b, zygote));
    assert_eq!(fx.exit_code(&b).await, 9);
    // After the timeout (5 s) the refill spawns a new zygote, which forks the standby.
    let next = the_standby_of(me);
    assert!(!forked_from(next, zygote), "a stuck zygote forked {next}");
    drop(stopped);
    wait_exited(zygote, "SIGKILL");
    let zygote2 = the_zygote_of(me);
    assert!(forked_from(next, zygote2));
    assert_standby_fds(&fx, next, zygote2);
    let (c, shim_c) = fx.run("exit 10").await;
    assert_eq!(shim_c, next);
    assert_eq!(fx.exit_code(&c).await, 10);
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
    let launcher = rt.block_on(async { Launcher::new(&shim, None).expect("launcher") });
    let standby = the_standby_of(std::process::id() as i32);
    // Named as every shim, though exec'd from a memfd (`/proc/self/fd/N`).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{standby}/comm")).unwrap_or_default()
        != "berth-shim\n"
    {
        assert!(Instant::now() < deadline, "the standby never named itself");
        std::thread::sleep(Duration::from_millis(10));
    }
    let zygote = the_zygote_of(std::process::id() as i32);
    drop(launcher);
    wait_exited(standby, "launcher dropped");
    wait_exited(zygote, "launcher dropped");
}

/// A daemon SIGKILLed with a standby waiting: the kernel closes the daemon's end of the
/// hand-off pipe and the standby exits; its end of the zygote's socket too, and the zygote
/// exits. The daemon is this test binary run again (with
/// `DAEMON_ENV` set), holding a launcher until it is killed.
#[test]
fn a_standby_exits_when_its_daemon_is_sigkilled() {
    let test = "a_standby_exits_when_its_daemon_is_sigkilled";
    if let Some(report) = std::env::var_os(DAEMON_ENV) {
        // The daemon: report the standby's pid, then wait to be killed.
        let rt = runtime();
        let shim = berth_fixtures::workspace_bin("berth-shim");
        let _launcher = rt.block_on(async { Launcher::new(&shim, None).expect("launcher") });
        let standby = the_standby_of(std::process::id() as i32);
        let zygote = the_zygote_of(std::process::id() as i32);
        let tmp = PathBuf::from(&report).with_extension("tmp");
        std::fs::write(&tmp, format!("{standby} {zygote}")).unwrap();
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
    let (standby, zygote): (i32, i32) = loop {
        if let Some(pids) = std::fs::read_to_string(&report).ok().and_then(|s| {
            let (a, b) = s.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        }) {
            break pids;
        }
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited without reporting its standby"
        );
        assert!(Instant::now() < deadline, "the daemon reports its standby");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!exited(standby) && !exited(zygote));
    kill9(daemon.0.id() as i32);
    let _ = daemon.0.wait();
    wait_exited(standby, "daemon SIGKILLed");
    wait_exited(zygote, "daemon SIGKILLed");
}
