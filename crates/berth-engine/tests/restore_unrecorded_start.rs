//! A first start is recorded without fsync (see `Engine::record_start`), so after a berthd
//! crash the durable record of a started container may still say `created`. The restore
//! must still learn the truth from the container's shim: alive and running → `running`;
//! gone without an `exit.json` but with its `started` file → exited (255); never started →
//! still `created`.
//!
//! The crash is simulated by starting containers through their shims directly (the engine
//! never records those starts), then dropping the engine and opening a new one on the same
//! roots. Real containers through real shims; needs root and the `berth-shim` binary of
//! this target dir (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/reopen.rs"]
mod reopen;

use std::path::Path;

use berth_engine::engine::Engine;
use berth_engine::status::Status;
use reopen::{Setup, config, open_with_busybox, runtime};

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn restore_learns_starts_that_were_not_recorded() {
    let test = "restore_learns_starts_that_were_not_recorded";
    let Some(Setup {
        shim,
        busybox,
        dir,
        cgroup_parent,
        _cleanup,
    }) = Setup::new(test, "engine-restore")
    else {
        return;
    };
    let state_dir = |id: &str| dir.path().join("run/containers").join(id);

    // Daemon 1: three containers whose shims hold a created container (attach before
    // start); two of them are started behind the engine's back, as if berthd crashed
    // right after their start answered.
    let rt = runtime();
    let ids: Vec<String> = rt.block_on(async {
        let engine =
            open_with_busybox(dir.path(), &shim, &busybox, &cgroup_parent, &["sleep"]).await;
        let mut ids = Vec::new();
        for name in [
            "berth-test-restore-killed",
            "berth-test-restore-running",
            "berth-test-restore-created",
        ] {
            let body = serde_json::from_value(serde_json::json!({
                "Image": "busybox",
                "Cmd": ["sleep", "1000"],
                "HostConfig": {"NetworkMode": "none"},
            }))
            .unwrap();
            let (id, _) = engine.create(Some(name), body).await.expect("create");
            drop(engine.attach(&id, false, true, true).await.expect("attach"));
            ids.push(id);
        }
        ids
    });
    drop(rt); // the engine and its tasks are gone: berthd "crashed"
    let mut init_pids = Vec::new();
    for id in &ids[..2] {
        let mut c = berth_shim::client::Client::connect(&state_dir(id)).expect("reach the shim");
        c.start().expect("start through the shim");
        init_pids.push(c.state().expect("shim state").pid);
        assert!(state_dir(id).join(berth_shim::STARTED_FILE).exists());
    }
    assert!(!state_dir(&ids[2]).join(berth_shim::STARTED_FILE).exists());
    // While berthd is down, the first container dies with its shim (no exit.json).
    let shim_pid: i32 = std::fs::read_to_string(state_dir(&ids[0]).join(berth_shim::PID_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill9(shim_pid);
    kill9(init_pids[0]);
    // The shim was this process's child (the engine spawned it): reap it.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(shim_pid), None);
    assert!(!state_dir(&ids[0]).join(berth_shim::EXIT_FILE).exists());

    // Daemon 2 on the same roots: the restore.
    let rt = runtime();
    rt.block_on(async {
        let engine = Engine::open(config(dir.path(), &shim, &cgroup_parent))
            .await
            .expect("reopen the engine");
        let killed = engine.lookup(&ids[0]).unwrap().record().state;
        assert_eq!(
            (killed.status, killed.exit_code),
            (Status::Exited, 255),
            "a started container that died with its shim: {killed:?}"
        );
        let running = engine.lookup(&ids[1]).unwrap().record().state;
        assert_eq!(running.status, Status::Running, "{running:?}");
        assert_eq!(running.pid, i64::from(init_pids[1]));
        assert!(
            Path::new(&format!("/proc/{}", init_pids[1])).exists(),
            "the running container survived"
        );
        let created = engine.lookup(&ids[2]).unwrap().record().state;
        assert_eq!(created.status, Status::Created, "{created:?}");
        for id in &ids {
            engine.remove(id, true, false).await.expect("remove");
        }
        engine.shutdown().await;
    });
}

/// A state directory whose container has no record (a `docker run --rm` create a crash
/// interrupted before its record was durable, see `Engine::spawn_early`) may hold a live
/// shim with a created container: the open shuts that shim down (its init goes, the shim
/// exits) and removes the directory. Simulated with a second engine on the same exec root
/// but a data root of its own, where no record names the first engine's container.
#[test]
fn the_open_shuts_down_shims_of_unrecorded_containers() {
    let test = "the_open_shuts_down_shims_of_unrecorded_containers";
    let Some(Setup {
        shim,
        busybox,
        dir,
        cgroup_parent,
        _cleanup,
    }) = Setup::new(test, "engine-restore")
    else {
        return;
    };
    let state_dir = |id: &str| dir.path().join("run/containers").join(id);

    // Engine 1: `docker run --rm`'s create, whose early spawn brings up the shim with the
    // container created; then it "crashes".
    let rt = runtime();
    let id = rt.block_on(async {
        let engine =
            open_with_busybox(dir.path(), &shim, &busybox, &cgroup_parent, &["sleep"]).await;
        let body = serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sleep", "1000"],
            "AttachStdout": true,
            "AttachStderr": true,
            "HostConfig": {"NetworkMode": "none", "AutoRemove": true},
        }))
        .unwrap();
        let (id, _) = engine.create(None, body).await.expect("create");
        id
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut client = loop {
        if let Ok(c) = berth_shim::client::Client::connect(&state_dir(&id)) {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the early spawn's shim"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    // The shim binds its socket before it writes `shim.pid`; its first answer comes after.
    let init_pid = client.state().expect("shim state").pid;
    drop(client);
    let shim_pid: i32 = std::fs::read_to_string(state_dir(&id).join(berth_shim::PID_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(init_pid > 0 && Path::new(&format!("/proc/{init_pid}")).exists());
    drop(rt); // engine 1 is gone; its shim and created container live on

    // Engine 2: same exec root, a data root that records nothing of engine 1.
    let rt = runtime();
    rt.block_on(async {
        let other = dir.path().join("other");
        let mut cfg = config(&other, &shim, &cgroup_parent);
        cfg.exec_root = dir.path().join("run");
        let engine = Engine::open(cfg).await.expect("open the second engine");
        assert!(engine.lookup(&id).is_err());
        engine.shutdown().await;
    });
    // Gone, or a zombie: the shim was engine 1's child, i.e. this process's.
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true)
    };
    assert!(gone(shim_pid), "the shim exited");
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(shim_pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    assert!(gone(init_pid), "the created container's init was killed");
    assert!(!state_dir(&id).exists(), "the state directory was removed");
}
