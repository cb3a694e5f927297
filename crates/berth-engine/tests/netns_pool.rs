//! Containers with a private network join namespaces from the engine's pool (see
//! `berth_engine::netns`): real containers through real shims, checked from the host.
//!
//! Needs root and the `berth-shim` binary of this target dir (`cargo build -p berth-shim`);
//! prints `skipped: ...` otherwise.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::Arc;

use berth_engine::engine::{Engine, EngineConfig};

struct Fixture {
    engine: Option<Arc<Engine>>,
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Fixture {
    async fn open(test: &str) -> Option<Fixture> {
        if !berth_fixtures::require_root(test) {
            return None;
        }
        let shim = berth_fixtures::workspace_bin("berth-shim");
        if !shim.is_file() {
            eprintln!(
                "skipped: {test}: {} missing (cargo build -p berth-shim)",
                shim.display()
            );
            return None;
        }
        let Some(busybox) = berth_fixtures::busybox() else {
            eprintln!("skipped: {test}: no busybox");
            return None;
        };
        let dir = berth_fixtures::temp_dir("engine-netns");
        let cgroup_parent = format!("/{}", berth_fixtures::unique_id("engine-netns"));
        let mut cfg = EngineConfig::new(dir.path().join("data"), dir.path().join("run"), shim);
        cfg.cgroup_parent = cgroup_parent.clone();
        let engine = Engine::open(cfg).await.expect("open the engine");
        let fx = Fixture {
            engine: Some(engine),
            dir,
            cgroup_parent,
        };
        // A busybox image, imported from a tar of a rootfs dir.
        let tar = common::busybox_tar(fx.dir.path(), &busybox, &["sh", "sleep", "ip", "cat"]);
        fx.engine()
            .image_import(
                std::fs::File::open(&tar).unwrap(),
                Some("busybox".into()),
                Some("latest".into()),
                None,
                Vec::new(),
            )
            .await
            .expect("import busybox");
        Some(fx)
    }

    fn engine(&self) -> &Arc<Engine> {
        self.engine.as_ref().unwrap()
    }

    /// Creates and starts `sleep` with this network mode; returns (id, init pid).
    async fn run_sleep(&mut self, network: &str) -> (String, i32) {
        let body = serde_json::from_value(serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sleep", "1000"],
            "HostConfig": {"NetworkMode": network},
        }))
        .unwrap();
        let (id, _) = self.engine().create(None, body).await.expect("create");
        self.engine().start(&id).await.expect("start");
        let pid = self.engine().lookup(&id).unwrap().record().state.pid as i32;
        assert!(pid > 0, "a running init");
        (id, pid)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            let ids: Vec<String> = engine.all().iter().map(|c| c.id.clone()).collect();
            // Drop runs inside the test's runtime: remove on a thread with a runtime of its own.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        for id in ids {
                            let _ = engine.remove(&id, true, false).await;
                        }
                    })
                });
            });
            drop(engine);
        }
        common::remove_test_cgroups(&self.cgroup_parent);
    }
}

fn netns_inode(pid: i32) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .ino()
}

fn in_netns(pid: i32, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .arg("-n")
        .args(args)
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `--network none`: a namespace of its own with only lo, UP with 127.0.0.1 (as Docker
/// gives); two containers never share one; `host` keeps the host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_gets_its_own_namespace_with_loopback_up() {
    let Some(mut fx) = Fixture::open("network_none_gets_its_own_namespace_with_loopback_up").await
    else {
        return;
    };
    let host_ns = netns_inode(std::process::id() as i32);
    let (_a, pid_a) = fx.run_sleep("none").await;
    let (_b, pid_b) = fx.run_sleep("none").await;
    let (_c, pid_c) = fx.run_sleep("bridge").await;
    let (_h, pid_h) = fx.run_sleep("host").await;
    let (a, b, c) = (netns_inode(pid_a), netns_inode(pid_b), netns_inode(pid_c));
    assert!(
        a != host_ns && b != host_ns && c != host_ns,
        "private namespaces"
    );
    assert!(a != b && b != c && a != c, "never shared: {a} {b} {c}");
    assert_eq!(netns_inode(pid_h), host_ns, "--network host");
    for pid in [pid_a, pid_b, pid_c] {
        let links = in_netns(pid, &["ip", "-o", "link", "show"]);
        assert_eq!(links.lines().count(), 1, "only lo: {links}");
        assert!(links.contains("lo:") && links.contains(",UP"), "{links}");
        let addrs = in_netns(pid, &["ip", "-o", "addr", "show", "dev", "lo"]);
        assert!(addrs.contains("inet 127.0.0.1/8"), "{addrs}");
    }
    // The engine let go of every namespace it gave out: none of the ready ones is in use.
    let in_use = [a, b, c];
    for ino in fx.engine().netns_pool().ready_inodes() {
        assert!(
            !in_use.contains(&ino),
            "a namespace in use is still in the pool"
        );
    }
}

/// A restarted container gets a fresh namespace (each is used once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_takes_a_fresh_namespace() {
    let Some(mut fx) = Fixture::open("restart_takes_a_fresh_namespace").await else {
        return;
    };
    let (id, pid) = fx.run_sleep("none").await;
    let first = netns_inode(pid);
    fx.engine()
        .restart(&id, None, Some(0))
        .await
        .expect("restart");
    let pid2 = fx.engine().lookup(&id).unwrap().record().state.pid as i32;
    assert_ne!(pid2, pid);
    let second = netns_inode(pid2);
    assert_ne!(first, second, "a restart must not reuse the namespace");
    let links = in_netns(pid2, &["ip", "-o", "link", "show"]);
    assert!(links.contains("lo:") && links.contains(",UP"), "{links}");
}
