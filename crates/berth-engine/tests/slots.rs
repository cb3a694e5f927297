//! Container slots (see `berth_engine::slots`): a create takes the directories made ahead
//! of time, writes exactly what a create without a slot writes, uses a slot once, and
//! leaves no slot behind at shutdown. (A SIGKILLed daemon's slot: berthd's `restore` tests.)
//!
//! Real containers through real shims. Needs root and the `berth-shim` binary of this
//! target dir (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/fixture.rs"]
mod fixture;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fixture::Fixture;

const APPLETS: &[&str] = &["sh", "cat", "grep", "hostname", "test"];

impl Fixture {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `<exec-root>/containers`: the shims' state directories.
    fn states(&self) -> PathBuf {
        self.dir.path().join("run").join("containers")
    }

    /// Waits (up to 10 s) for a ready slot and returns its container ID.
    async fn ready_slot(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.engine().slots().ready_id() {
                return id;
            }
            assert!(Instant::now() < deadline, "no slot was prepared");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Snapshot directories no record names (a slot's), sorted.
    fn unrecorded_snapshots(&self) -> BTreeSet<String> {
        let recorded: BTreeSet<String> = self
            .engine()
            .store()
            .snapshots()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        names(&self.data().join("snapshots"))
            .into_iter()
            .filter(|n| n != "l" && n != "empty" && !recorded.contains(n))
            .collect()
    }

    async fn create(&self, body: serde_json::Value) -> berth_engine::Result<String> {
        let body = serde_json::from_value(body).unwrap();
        self.engine().create(None, body).await.map(|(id, _)| id)
    }
}

/// Waits until `done` holds: removals recycle their directories after the answer, each
/// once its shim has exited, which takes a moment longer on a loaded machine.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: never happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `path` is gone: a removal answers before its directories go to the trash.
async fn vanishes(path: &Path, what: &str) {
    until(&format!("{what}: {} goes", path.display()), || {
        !path.exists()
    })
    .await;
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn body(cmd: &str) -> serde_json::Value {
    serde_json::json!({
        "Image": "busybox",
        "Hostname": "berth-test-slot",
        "Cmd": ["sh", "-c", cmd],
        "HostConfig": {"NetworkMode": "none"},
    })
}

/// The second create takes the slot prepared after the first: the slot's container
/// directory and snapshot directory become that container's, and it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_create_uses_the_prepared_slot() {
    let Some(fx) = Fixture::open(
        "the_second_create_uses_the_prepared_slot",
        "engine-slots",
        APPLETS,
    )
    .await
    else {
        return;
    };
    assert_eq!(
        fx.engine().slots().ready_id(),
        None,
        "slots are made lazily"
    );
    let first = fx
        .create(body("true"))
        .await
        .expect("create without a slot");
    let slot = fx.ready_slot().await;
    assert_ne!(slot, first);
    let slot_dir = fx.data().join("containers").join(&slot);
    assert!(slot_dir.join("rootfs").is_dir(), "the slot's directory");
    let slot_snapshots = fx.unrecorded_snapshots();
    assert_eq!(
        slot_snapshots.len(),
        1,
        "the slot's snapshot: {slot_snapshots:?}"
    );
    assert!(fx.engine().lookup(&slot).is_err(), "a slot is no container");

    let second = fx
        .create(body(
            "test \"$(hostname)\" = berth-test-slot && grep -q berth-test-slot /etc/hosts && echo berth-test-logged",
        ))
        .await
        .expect("create with the slot");
    assert_eq!(second, slot, "the create took the slot's ID");
    let snap = fx.engine().store().container_snapshot(&second).unwrap();
    assert_eq!(Some(&snap.id), slot_snapshots.first());
    assert!(
        fx.unrecorded_snapshots().len() <= 1,
        "at most the next slot"
    );
    assert_eq!(fx.start_and_wait(&second).await, 0);
    // The shim appended to the log file the slot made.
    let log = slot_dir.join(format!("{second}-json.log"));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("berth-test-logged"), "{logged}");
    assert_eq!(fx.start_and_wait(&first).await, 0);
}

/// What a create writes in a slot equals what it writes without one: the same files with
/// the same content (but for the ID), modes and owners, the same directories; the empty
/// log file has the mode the shim gives it, and the shim appends to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_in_a_slot_writes_what_a_create_without_one_writes() {
    let Some(fx) = Fixture::open(
        "a_create_in_a_slot_writes_what_a_create_without_one_writes",
        "engine-slots-files",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let plain = fx
        .create(body("true"))
        .await
        .expect("create without a slot");
    let slot = fx.ready_slot().await;
    let slotted = fx.create(body("true")).await.expect("create with the slot");
    assert_eq!(slotted, slot);
    // The slot's rootfs was mounted ahead of time (the image of the first create; see
    // `slots`, "Premounted rootfs") and stays mounted until the container's shim has it;
    // after a run of each, both are in the state a run leaves (the overlay's `work/work`).
    let rootfs = fx.data().join("containers").join(&slotted).join("rootfs");
    assert!(rootfs.join("bin/sh").exists(), "the premounted rootfs");
    assert_eq!(fx.start_and_wait(&plain).await, 0);
    assert_eq!(fx.start_and_wait(&slotted).await, 0);
    // berthd's copy is unmounted right after the shim answered (on a blocking thread).
    let deadline = Instant::now() + Duration::from_secs(10);
    while rootfs.join("bin/sh").exists() {
        assert!(Instant::now() < deadline, "berthd's copy is still mounted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let describe = |id: &str| -> Vec<(String, u32, u32, u32, String)> {
        let dir = fx.data().join("containers").join(id);
        let snap = fx.engine().store().container_snapshot(id).unwrap();
        let sdir = fx.data().join("snapshots").join(&snap.id);
        let mut out = Vec::new();
        for (label, p) in [
            ("dir", dir.clone()),
            ("rootfs", dir.join("rootfs")),
            ("hostname", dir.join("hostname")),
            ("hosts", dir.join("hosts")),
            ("resolv.conf", dir.join("resolv.conf")),
            ("config.json", dir.join("config.json")),
            ("log", dir.join(format!("{id}-json.log"))),
            ("snapshot", sdir.clone()),
            ("fs", sdir.join("fs")),
            ("work", sdir.join("work")),
        ] {
            let m =
                std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let content = if m.is_file() {
                std::fs::read_to_string(&p).unwrap().replace(id, "<ID>")
            } else {
                let mut n: Vec<String> = names(&p).iter().map(|n| n.replace(id, "<ID>")).collect();
                n.sort();
                n.join(",")
            };
            out.push((label.to_string(), m.mode(), m.uid(), m.gid(), content));
        }
        let link = fx.data().join("snapshots/l").join(&snap.link);
        let target = std::fs::read_link(&link).unwrap();
        out.push((
            "link".into(),
            0,
            0,
            0,
            target.to_string_lossy().replace(&snap.id, "<SID>"),
        ));
        out
    };
    let (a, b) = (describe(&plain), describe(&slotted));
    let log = &a.iter().find(|d| d.0 == "log").unwrap();
    assert_eq!(
        (log.1 & 0o7777, log.4.as_str()),
        (0o640, ""),
        "the log file"
    );
    assert!(
        a[5].4.contains("berth-test-slot"),
        "config.json read: {}",
        a[5].4
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x, y,
            "{} differs between a create without and with a slot",
            x.0
        );
    }
}

/// A create that fails after taking the slot removes it (a slot is used once); the next
/// create gets a new one; shutdown removes the ready slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_discards_the_slot_and_shutdown_removes_it() {
    let Some(fx) = Fixture::open(
        "a_failed_create_discards_the_slot_and_shutdown_removes_it",
        "engine-slots-failed",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let first = fx.create(body("true")).await.expect("create");
    let slot = fx.ready_slot().await;
    let missing = fx.dir.path().join("berth-test-no-such-source");
    let mut bad = body("true");
    bad["HostConfig"]["Mounts"] = serde_json::json!([
        {"Type": "bind", "Source": missing, "Target": "/x"}
    ]);
    let e = fx.create(bad).await.expect_err("a missing bind source");
    assert!(
        e.to_string().contains("bind source path does not exist"),
        "{e}"
    );
    assert!(
        !fx.data().join("containers").join(&slot).exists(),
        "the used slot's directory"
    );
    assert!(fx.engine().lookup(&slot).is_err());
    let next = fx.ready_slot().await;
    assert_ne!(next, slot, "a slot's ID is used once");
    assert_eq!(
        fx.unrecorded_snapshots().len(),
        1,
        "only the next slot's snapshot"
    );
    let second = fx
        .create(body("true"))
        .await
        .expect("create after a failed one");
    assert_eq!(second, next);
    // A create that used a slot leaves the next one to its start.
    assert_eq!(fx.engine().slots().ready_id(), None);
    assert_eq!(fx.start_and_wait(&second).await, 0);
    let slot = fx.ready_slot().await;

    fx.engine().shutdown().await;
    assert_eq!(
        names(&fx.data().join("containers")),
        BTreeSet::from([first, second]),
        "shutdown removed the slot {slot}"
    );
    assert!(fx.unrecorded_snapshots().is_empty());
    assert_eq!(fx.engine().slots().ready_id(), None);
}

/// Waits (up to 10 s) until `n` slots are ready and returns their IDs, oldest first.
async fn ready_slots(fx: &Fixture, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = fx.engine().slots().ready_ids();
        if ids.len() >= n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{n} slots never got ready: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A removed container that wrote nothing leaves its directories (renamed to a new ID,
/// with an empty log) and its snapshot to a later create; one that wrote a file does not,
/// and nothing of either reaches the next container. Few of the pool's slots hold a
/// premounted rootfs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_container_that_wrote_nothing_becomes_a_slot() {
    let Some(fx) = Fixture::open(
        "a_removed_container_that_wrote_nothing_becomes_a_slot",
        "engine-slots-recycle",
        APPLETS,
    )
    .await
    else {
        return;
    };
    let containers = fx.data().join("containers");
    let a = fx
        .create(body("echo berth-test-output-of-a"))
        .await
        .expect("create a");
    assert_eq!(fx.start_and_wait(&a).await, 0);
    let fresh = fx.ready_slot().await;
    let a_snapshot = fx.engine().store().container_snapshot(&a).unwrap().id;
    let a_dir = fx.data().join("snapshots").join(&a_snapshot);
    // The inode number alone can come back: ext4 may give the new directory the inode the
    // old one just freed. With its birth time it cannot.
    let work_identity = || {
        let m = std::fs::metadata(a_dir.join("work")).unwrap();
        (m.ino(), m.created().expect("statx birth time"))
    };
    let old_work = work_identity();
    // The exit record is written over shim.json's inode (docs/shim.md), which the slot keeps.
    let a_exit = std::fs::metadata(fx.states().join(&a).join("exit.json"))
        .unwrap()
        .ino();
    let a_pid_file = std::fs::metadata(fx.states().join(&a).join("shim.pid"))
        .unwrap()
        .ino();
    fx.engine()
        .remove(&a, false, false)
        .await
        .expect("remove a");
    let ids = ready_slots(&fx, 2).await;
    assert_eq!(ids[0], fresh, "the slot made after the start comes first");
    let recycled = &ids[1];
    assert!(!containers.join(&a).exists(), "a's directory was renamed");
    assert_eq!(
        names(&containers.join(recycled)),
        ["config.json", "hostname", "hosts", "resolv.conf", "rootfs"]
            .into_iter()
            .map(String::from)
            .chain([format!("{recycled}-json.log")])
            .collect(),
    );
    assert_eq!(
        std::fs::metadata(
            containers
                .join(recycled)
                .join(format!("{recycled}-json.log"))
        )
        .unwrap()
        .len(),
        0,
        "the log starts empty"
    );
    assert!(
        fx.unrecorded_snapshots().contains(&a_snapshot),
        "a's snapshot is kept, unrecorded"
    );
    assert!(names(&a_dir.join("fs")).is_empty());
    assert_ne!(
        work_identity(),
        old_work,
        "a fresh work dir, without overlayfs' leftovers"
    );
    // a's state directory, under the slot's ID, holds only the next shim.json (a's exit
    // record's inode) and a's shim.pid set aside, so the next start makes neither the
    // directory nor these files.
    assert!(!fx.states().join(&a).exists());
    assert_eq!(
        names(&fx.states().join(recycled)),
        BTreeSet::from(["shim.json".to_string(), "shim.pid.prev".to_string()])
    );
    assert_eq!(
        std::fs::metadata(fx.states().join(recycled).join("shim.json"))
            .unwrap()
            .ino(),
        a_exit
    );

    let b = fx.create(body("true")).await.expect("create b");
    assert_eq!(b, fresh, "the oldest slot goes first");
    let c = fx
        .create(body(
            "test \"$(hostname)\" = berth-test-slot && echo berth-test-output-of-c > /written && echo berth-test-logged-c",
        ))
        .await
        .expect("create c");
    assert_eq!(&c, recycled, "the recycled slot");
    assert_eq!(
        fx.engine().store().container_snapshot(&c).unwrap().id,
        a_snapshot,
        "c runs on a's (empty) upper dir"
    );
    assert_eq!(fx.start_and_wait(&c).await, 0);
    assert_eq!(
        std::fs::metadata(fx.states().join(&c).join("exit.json"))
            .unwrap()
            .ino(),
        a_exit,
        "c's shim.json, then exit record, was a's"
    );
    assert_eq!(
        std::fs::metadata(fx.states().join(&c).join("shim.pid"))
            .unwrap()
            .ino(),
        a_pid_file,
        "c's shim wrote over a's shim.pid"
    );
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.states().join(&c).join("exit.json")).unwrap())
            .unwrap();
    assert_eq!(exit["exit_code"], 0, "{exit}");
    let log = std::fs::read_to_string(containers.join(&c).join(format!("{c}-json.log"))).unwrap();
    assert!(log.contains("berth-test-logged-c"), "{log}");
    assert!(
        !log.contains("berth-test-output-of-a"),
        "a's log leaked: {log}"
    );

    // c wrote a file: its snapshot is discarded, not reused.
    fx.engine()
        .remove(&c, false, false)
        .await
        .expect("remove c");
    // The directories go right after the answer (Engine::finish_remove, step 3).
    vanishes(
        &fx.data().join("snapshots").join(&a_snapshot),
        "a written upper dir goes to the trash",
    )
    .await;
    vanishes(&containers.join(&c), "c's directory goes").await;
    let d = fx
        .create(body("test ! -e /written && echo berth-test-clean"))
        .await
        .expect("create d");
    assert_eq!(fx.start_and_wait(&d).await, 0);
    assert_ne!(
        fx.engine().store().container_snapshot(&d).unwrap().id,
        a_snapshot
    );

    // Every removed container that wrote nothing becomes a slot (up to MAX_READY), and at
    // most MAX_PREMOUNTED of them hold a mounted rootfs.
    let more: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let id = fx.create(body("true")).await.expect("create");
            assert_eq!(fx.start_and_wait(&id).await, 0);
            v.push(id);
        }
        v
    };
    for id in more.iter().chain([&b, &d]) {
        fx.engine().remove(id, false, false).await.expect("remove");
    }
    // Each recycled slot is ready once its directories are renamed: then the containers
    // directory holds only slots.
    until("the five removed containers' slots", || {
        let ready = fx.engine().slots().ready_ids();
        ready.len() >= 5 && names(&containers) == ready.into_iter().collect()
    })
    .await;
    let ready = fx.engine().slots().ready_ids();
    let premounted = fx.engine().slots().ready_premounted();
    assert!(
        premounted <= berth_engine::slots::MAX_PREMOUNTED,
        "{premounted} premounted slots"
    );
    assert_eq!(
        names(&containers),
        ready.iter().cloned().collect::<BTreeSet<_>>(),
        "only the slots' directories are left"
    );
    // A create takes a slot with a mounted rootfs before older unmounted ones: use up the
    // mounted ones, then recycle one more (mounted: the budget is free again) behind the
    // unmounted ones, and the next create takes it.
    let slots = fx.engine().slots();
    let mut made = Vec::new();
    while slots.ready_premounted() > 0 {
        made.push(fx.create(body("true")).await.expect("create"));
    }
    let unmounted = slots.ready_premount_flags().len();
    assert!(
        unmounted > 0,
        "unmounted slots are left: {:?}",
        slots.ready_premount_flags()
    );
    let last = made.pop().expect("a create took a mounted slot");
    assert_eq!(fx.start_and_wait(&last).await, 0);
    fx.engine()
        .remove(&last, false, false)
        .await
        .expect("remove");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while slots.ready_premount_flags().len() == unmounted {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed container's slot"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flags = slots.ready_premount_flags();
    assert_eq!(
        flags.last(),
        Some(&true),
        "recycled behind the others, mounted: {flags:?}"
    );
    let taker = fx.create(body("true")).await.expect("create");
    assert_eq!(
        slots.ready_premount_flags(),
        vec![false; unmounted],
        "the create took the mounted slot, not the oldest"
    );
    for id in made.iter().chain([&taker]) {
        fx.engine().remove(id, false, false).await.expect("remove");
    }
    fx.engine().shutdown().await;
    // A recycling still in flight at the shutdown discards its slot when it ends.
    until("shutdown removes every slot and its snapshot", || {
        names(&containers).is_empty() && fx.unrecorded_snapshots().is_empty()
    })
    .await;
}
