//! Spare cgroups (`berth_cgroups::spare`) through real shims: an exited container's cgroup
//! becomes the next container's when their resources are identical, a container with a
//! memory limit neither takes nor leaves one, and the engine's shutdown removes them.
//!
//! Needs root, a cgroup v1 memory hierarchy and the `berth-shim` binary of this target dir
//! (`cargo build -p berth-shim`); prints `skipped: ...` otherwise.

mod common;
#[path = "common/fixture.rs"]
mod fixture;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fixture::Fixture;

const APPLETS: &[&str] = &["sh", "sleep", "true"];
const MEMORY: &str = "/sys/fs/cgroup/memory";

impl Fixture {
    async fn run(&self, body: serde_json::Value) -> String {
        let body = serde_json::from_value(body).unwrap();
        let (id, _) = self.engine().create(None, body).await.expect("create");
        assert_eq!(self.start_and_wait(&id).await, 0, "{id} exit code");
        id
    }

    /// The memory hierarchy's directory of the engine's cgroup parent.
    fn memory_parent(&self) -> PathBuf {
        Path::new(MEMORY).join(self.cgroup_parent.trim_start_matches('/'))
    }

    fn spares(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.memory_parent())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("spare-"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Waits (up to 10 s) until `id`'s cgroup is gone: its shim set it aside or removed it.
    async fn cgroup_released(&self, id: &str) {
        let dir = self.memory_parent().join(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while dir.exists() {
            assert!(Instant::now() < deadline, "{} stays", dir.display());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn body(cmd: &str, memory: Option<i64>) -> serde_json::Value {
    let mut host = serde_json::json!({"NetworkMode": "none"});
    if let Some(m) = memory {
        host["Memory"] = m.into();
    }
    serde_json::json!({"Image": "busybox", "Cmd": ["sh", "-c", cmd], "HostConfig": host})
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_containers_cgroup_is_the_next_ones_with_the_same_resources() {
    const TEST: &str = "an_exited_containers_cgroup_is_the_next_ones_with_the_same_resources";
    if !Path::new(MEMORY).join("cgroup.procs").exists() {
        eprintln!("skipped: {TEST}: no cgroup v1 memory hierarchy");
        return;
    }
    let Some(fx) = Fixture::open(TEST, "engine-spares", APPLETS).await else {
        return;
    };
    // A peak of several MB (a 2.6 MB shell string, doubled 18 times), so that a peak left
    // as it was shows.
    let a = fx
        .run(body(
            "x=0123456789; i=0; while [ $i -lt 18 ]; do x=$x$x; i=$((i+1)); done",
            None,
        ))
        .await;
    fx.cgroup_released(&a).await;
    let spares = fx.spares();
    assert_eq!(spares.len(), 1, "a's cgroup set aside: {spares:?}");
    assert!(
        spares[0].to_string_lossy().ends_with(&format!("-{a}")),
        "{spares:?}"
    );
    let spare = ino(&spares[0]);
    let read = |f: &str| -> u64 {
        let v = std::fs::read_to_string(spares[0].join(f)).unwrap();
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{f}: {v:?}: {e}"))
    };
    // The reset sets the peak to the usage of that moment. The kernel still uncharges what
    // the exited processes held for a while after (kernel stacks and page tables freed
    // late: 4–60 KiB seen here), so the two need not be equal; a peak not reset would be
    // megabytes above.
    let (peak, usage) = (
        read("memory.max_usage_in_bytes"),
        read("memory.usage_in_bytes"),
    );
    assert!(
        usage <= peak && peak - usage <= 256 << 10,
        "a's peak was reset to the current usage: peak {peak}, usage {usage}"
    );

    // b, with the same resources, runs in a's cgroup; the spare is gone.
    let b_body = serde_json::from_value(body("sleep 30", None)).unwrap();
    let (b, _) = fx.engine().create(None, b_body).await.expect("create b");
    fx.engine().start(&b).await.expect("start b");
    assert_eq!(
        ino(&fx.memory_parent().join(&b)),
        spare,
        "b took a's cgroup"
    );
    assert!(fx.spares().is_empty(), "{:?}", fx.spares());
    let procs = std::fs::read_to_string(fx.memory_parent().join(&b).join("cgroup.procs")).unwrap();
    assert!(!procs.trim().is_empty(), "b's processes are in it");
    // Killed (the shim reaps its init, then removes it): set aside like any other.
    fx.engine().remove(&b, true, false).await.expect("rm -f b");
    fx.cgroup_released(&b).await;
    let spares = fx.spares();
    assert_eq!(spares.len(), 1, "{spares:?}");
    assert_eq!(ino(&spares[0]), spare, "still a's cgroup");

    // c takes it and leaves it; d, with a memory limit, neither takes it nor leaves one.
    let c = fx.run(body("true", None)).await;
    fx.cgroup_released(&c).await;
    let spares = fx.spares();
    assert_eq!(spares.len(), 1, "{spares:?}");
    let d_body = serde_json::from_value(body("sleep 30", Some(64 << 20))).unwrap();
    let (d, _) = fx.engine().create(None, d_body).await.expect("create d");
    fx.engine().start(&d).await.expect("start d");
    assert_ne!(ino(&fx.memory_parent().join(&d)), ino(&spares[0]));
    assert_eq!(
        fx.spares(),
        spares,
        "the spare waits for a container like c"
    );
    let e = fx.run(body("true", Some(64 << 20))).await;
    fx.cgroup_released(&e).await;
    assert_eq!(fx.spares(), spares, "e's cgroup was removed");
    fx.engine().remove(&d, true, false).await.expect("rm -f d");

    // The shutdown removes the spares (and so does the next start).
    fx.engine().shutdown().await;
    assert!(fx.spares().is_empty(), "{:?}", fx.spares());
}
