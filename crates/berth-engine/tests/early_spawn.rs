//! The spawn a `docker run --rm` create starts (see `Engine::spawn_early`): the shim and
//! its created container exist before any attach or start, the container stays `created`
//! until the start, the attach loses no output, a failure is the start's to report, and
//! other creates spawn nothing.
//!
//! Real containers through real shims. Needs root and the `berth-shim` binary of this
//! target dir (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/fixture.rs"]
mod fixture;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_engine::WaitCondition;
use berth_engine::status::Status;
use fixture::Fixture;
use tokio::io::AsyncReadExt;

const APPLETS: &[&str] = &["sh", "echo"];

impl Fixture {
    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("run").join("containers").join(id)
    }

    async fn create_json(&self, body: serde_json::Value) -> berth_engine::Result<String> {
        let body = serde_json::from_value(body).unwrap();
        self.engine().create(None, body).await.map(|(id, _)| id)
    }

    /// Waits (up to 10 s) until the container `id` is gone (auto-removed).
    async fn until_removed(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.engine().lookup(id).is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (up to 10 s) for the shim of `id` to have written its pid file.
    async fn shim_pid(&self, id: &str) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let path = self.state_dir(id).join(berth_shim::PID_FILE);
        while Instant::now() < deadline {
            if let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Some(pid);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

/// What `docker run --rm` (attached) sends.
fn run_rm_body(cmd: &str) -> serde_json::Value {
    serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", cmd],
        "AttachStdout": true,
        "AttachStderr": true,
        "HostConfig": {"NetworkMode": "none", "AutoRemove": true},
    })
}

/// The attach stream's bytes to its end and the container's exit code (its wait), each
/// within 20 s.
async fn output_and_code<T>(
    mut attached: berth_engine::engine::Attached,
    exited: impl std::future::Future<Output = (i64, T)>,
) -> (String, i64) {
    let mut out = attached.buffered.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        attached.stream.read_to_end(&mut out),
    )
    .await
    .expect("the attach stream ends")
    .expect("read the attach stream");
    let (code, _) = tokio::time::timeout(Duration::from_secs(20), exited)
        .await
        .expect("the container exits and is removed");
    (String::from_utf8_lossy(&out).into_owned(), code)
}

/// `docker run --rm` of a command the image lacks.
fn bad_command_body() -> serde_json::Value {
    let mut body = run_rm_body("");
    body["Cmd"] = serde_json::json!(["/berth-test-no-such-binary"]);
    body
}

/// Docker's error for a missing command (what the CLI maps to exit code 127).
fn assert_not_found(msg: &str) {
    assert!(
        msg.contains("no such file or directory") || msg.contains("executable file not found"),
        "{msg}"
    );
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The create alone brings the shim up (the container stays `created`); attach, wait and
/// start then work as always, the attach gets all the output, and the container is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_rm_create_spawns_its_shim_and_the_run_loses_nothing() {
    let Some(fx) = Fixture::open(
        "a_run_rm_create_spawns_its_shim_and_the_run_loses_nothing",
        "engine-early",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let id = fx
        .create_json(run_rm_body("echo berth-test-early; exit 7"))
        .await
        .expect("create");
    let shim = fx.shim_pid(&id).await.expect("the create spawned the shim");
    assert!(alive(shim), "the shim runs");
    let c = fx.engine().lookup(&id).unwrap();
    assert_eq!(c.status(), Status::Created, "created until the start");

    let attached = fx
        .engine()
        .attach(&id, false, true, true)
        .await
        .expect("attach");
    let exited = fx.engine().wait(&id, WaitCondition::Removed).expect("wait");
    fx.engine().start(&id).await.expect("start");
    let (out, code) = output_and_code(attached, exited).await;
    assert_eq!(code, 7);
    assert!(
        out.contains("berth-test-early"),
        "the output reached the attach: {out:?}"
    );
    assert!(fx.engine().lookup(&id).is_err(), "auto-removed");
}

/// A command that cannot run: the early spawn fails, the attach gets an empty stream, the
/// start reports Docker's error, and the auto-remove container goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_spawn_that_fails_is_reported_by_the_start() {
    let Some(fx) = Fixture::open(
        "an_early_spawn_that_fails_is_reported_by_the_start",
        "engine-early",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let id = fx.create_json(bad_command_body()).await.expect("create");
    let mut attached = fx
        .engine()
        .attach(&id, false, true, true)
        .await
        .expect("an attach does not fail for a bad command");
    let mut out = Vec::new();
    let _ = attached.stream.read_to_end(&mut out).await;
    assert!(out.is_empty(), "an empty stream");
    let err = fx.engine().start(&id).await.expect_err("the start fails");
    assert_not_found(&err.to_string());
    fx.until_removed(&id).await;
    assert!(
        fx.engine().lookup(&id).is_err(),
        "auto-removed after the failed start"
    );
}

/// A removal right after the create waits for the spawn and leaves no shim behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_right_after_the_create_leaves_no_shim() {
    let Some(fx) = Fixture::open(
        "a_removal_right_after_the_create_leaves_no_shim",
        "engine-early",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let id = fx
        .create_json(run_rm_body("echo never"))
        .await
        .expect("create");
    fx.engine().remove(&id, true, false).await.expect("rm -f");
    assert!(fx.engine().lookup(&id).is_err());
    let pid_file = fx.state_dir(&id).join(berth_shim::PID_FILE);
    let pid: Option<i32> = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Some(pid) = pid {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!alive(pid), "the shim exited");
    }
}

/// `docker create` and `run -d` (nothing to attach, or no auto-remove) spawn no shim at
/// the create: a created container that may wait long holds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_creates_spawn_no_shim() {
    let Some(fx) = Fixture::open("other_creates_spawn_no_shim", "engine-early", APPLETS).await
    else {
        return;
    };
    let mut plain = run_rm_body("echo");
    plain["HostConfig"]["AutoRemove"] = serde_json::json!(false);
    let mut detached = run_rm_body("echo");
    detached["AttachStdout"] = serde_json::json!(false);
    detached["AttachStderr"] = serde_json::json!(false);
    let ids = [
        fx.create_json(plain).await.expect("create"),
        fx.create_json(detached).await.expect("create -d --rm"),
    ];
    // An early spawn writes shim.pid within milliseconds; give it ample time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &ids {
        assert!(
            !fx.state_dir(id).join(berth_shim::PID_FILE).exists(),
            "no shim for {id}"
        );
    }
}

/// `docker run`'s requests as berthd's routes make them, right after the create: the
/// attach answered before its shim request (`finish_deferred`), the wait, the start. While
/// the spawn is on its way, the attach and the start go to the shim as soon as it listens
/// (before its container exists), whichever wins the race; the run loses no output and
/// gets its exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_start_sent_during_the_spawn_lose_nothing() {
    let Some(fx) = Fixture::open(
        "attach_and_start_sent_during_the_spawn_lose_nothing",
        "engine-early",
        APPLETS,
    )
    .await
    else {
        return;
    };
    for round in 0..5 {
        let id = fx
            .create_json(run_rm_body(&format!(
                "echo berth-test-early-{round}; exit 3"
            )))
            .await
            .expect("create");
        let pending = fx
            .engine()
            .attach_begin(&id, false, true, true)
            .await
            .expect("attach");
        let attached = tokio::spawn(pending.finish_deferred());
        let exited = fx.engine().wait(&id, WaitCondition::Removed).expect("wait");
        fx.engine().start(&id).await.expect("start");
        let attached = attached.await.unwrap().expect("the attach stream");
        let (out, code) = output_and_code(attached, exited).await;
        assert_eq!(code, 3);
        assert!(
            out.contains(&format!("berth-test-early-{round}")),
            "round {round}: the output reached the attach: {out:?}"
        );
        assert!(fx.engine().lookup(&id).is_err(), "auto-removed");
    }
}

/// The same order with a command that cannot run: the attach ends empty, the start
/// reports Docker's error (not a lost connection), the container goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_sent_during_a_failing_spawn_reports_its_error() {
    let Some(fx) = Fixture::open(
        "a_start_sent_during_a_failing_spawn_reports_its_error",
        "engine-early",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let id = fx.create_json(bad_command_body()).await.expect("create");
    let pending = fx
        .engine()
        .attach_begin(&id, false, true, true)
        .await
        .expect("attach");
    let attached = tokio::spawn(pending.finish_deferred());
    let err = fx.engine().start(&id).await.expect_err("the start fails");
    assert_not_found(&err.to_string());
    let mut attached = attached
        .await
        .unwrap()
        .expect("an empty stream, not an error");
    let mut out = Vec::new();
    let _ = attached.stream.read_to_end(&mut out).await;
    assert!(out.is_empty(), "an empty stream");
    fx.until_removed(&id).await;
    assert!(fx.engine().lookup(&id).is_err(), "auto-removed");
}
