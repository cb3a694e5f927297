//! A removal answers once the container's records are gone (durably, but for an
//! auto-remove container's) and releases its directories after the answer
//! (`Engine::finish_remove`, step 3). The test stops the engine right at the answers: on a
//! current-thread runtime the directory task runs only when the runtime is polled again,
//! and dropping the runtime there is a berthd crash at that step. The next open must leave
//! nothing of the removed containers behind, mounts included.
//!
//! Real containers through real shims; needs root and the `berth-shim` binary of this
//! target dir (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/reopen.rs"]
mod reopen;

use std::path::Path;
use std::time::Duration;

use berth_engine::WaitCondition;
use berth_engine::engine::Engine;
use reopen::{Setup, config, open_with_busybox, runtime};

fn body(cmd: &[&str], auto_remove: bool) -> berth_api::body::ContainerCreateBody {
    serde_json::from_value(serde_json::json!({
        "Image": "busybox",
        "Cmd": cmd,
        "HostConfig": {"NetworkMode": "none", "AutoRemove": auto_remove},
    }))
    .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_crash_right_after_removals_answered_leaves_nothing_behind() {
    let test = "a_crash_right_after_removals_answered_leaves_nothing_behind";
    let Some(Setup {
        shim,
        busybox,
        dir,
        cgroup_parent,
        _cleanup,
    }) = Setup::new(test, "engine-removal")
    else {
        return;
    };
    let containers = dir.path().join("data/containers");
    let states = dir.path().join("run/containers");
    let names = [
        "berth-test-rm-created",
        "berth-test-rm-exited",
        "berth-test-rm-running",
    ];

    // Daemon 1: a container created and never started (its rootfs premounted in this
    // process's mount namespace), one that ran and exited, one running (`rm -f`), and a
    // `run --rm` style auto-remove container; all removed, then the "crash".
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ids: Vec<String> = rt.block_on(async {
        let engine = open_with_busybox(
            dir.path(),
            &shim,
            &busybox,
            &cgroup_parent,
            &["sleep", "true"],
        )
        .await;
        let (created, _) = engine
            .create(Some(names[0]), body(&["true"], false))
            .await
            .expect("create");
        let (exited, _) = engine
            .create(Some(names[1]), body(&["true"], false))
            .await
            .expect("create");
        let exit = engine.wait(&exited, WaitCondition::NextExit).unwrap();
        engine.start(&exited).await.expect("start");
        tokio::time::timeout(Duration::from_secs(20), exit)
            .await
            .expect("it exits");
        let (running, _) = engine
            .create(Some(names[2]), body(&["sleep", "1000"], false))
            .await
            .expect("create");
        engine.start(&running).await.expect("start");
        let (auto, _) = engine
            .create(None, body(&["true"], true))
            .await
            .expect("create");
        let removed = engine.wait(&auto, WaitCondition::Removed).unwrap();
        engine.start(&auto).await.expect("start");
        tokio::time::timeout(Duration::from_secs(20), removed)
            .await
            .expect("the auto-remove container is removed");
        for id in [&created, &exited, &running] {
            engine.remove(id, true, false).await.expect("remove");
        }
        // Answered: gone for every API, the names free; the last directories still there
        // (their task has not run: this runtime was not polled since).
        for id in [&created, &exited, &running, &auto] {
            assert!(engine.lookup(id).is_err(), "{id} still listed");
        }
        assert!(engine.all().is_empty());
        assert!(
            containers.join(&running).exists(),
            "the directory task ran before the answer"
        );
        vec![created, exited, running, auto]
    });
    drop(rt); // berthd "crashed" between the answers and the directories' release

    // Daemon 2 on the same roots.
    let rt = runtime();
    rt.block_on(async {
        let engine = Engine::open(config(dir.path(), &shim, &cgroup_parent))
            .await
            .expect("reopen the engine");
        assert!(engine.all().is_empty(), "a removed container came back");
        for id in &ids {
            assert!(!containers.join(id).exists(), "{id}'s directory stays");
            assert!(!states.join(id).exists(), "{id}'s state directory stays");
        }
        assert!(
            listing(&containers).is_empty(),
            "{:?}",
            listing(&containers)
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&dir.path().display().to_string()),
            "a rootfs stays mounted: {mounts}"
        );
        let recorded: Vec<String> = engine
            .store()
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        let unrecorded: Vec<String> = listing(&dir.path().join("data/snapshots"))
            .into_iter()
            .filter(|d| d != "l" && d != "empty" && !recorded.contains(d))
            .collect();
        assert!(
            unrecorded.is_empty(),
            "unrecorded snapshots: {unrecorded:?}"
        );
        // The names are free.
        for name in names {
            engine
                .create(Some(name), body(&["true"], false))
                .await
                .expect("a removed container's name is free");
        }
        engine.shutdown().await;
    });
}
