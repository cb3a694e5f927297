//! Containers with a private network join namespaces from the engine's pool (see
//! `berth_engine::netns`): real containers through real shims, checked from the host.
//!
//! Needs root and the `berth-shim` binary of this target dir (`cargo build -p berth-shim`);
//! prints `skipped: ...` otherwise.

mod common;
#[path = "common/fixture.rs"]
mod fixture;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use fixture::Fixture;

const NETNS_APPLETS: &[&str] = &["sh", "sleep", "ip", "cat"];

impl Fixture {
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
    let Some(mut fx) = Fixture::open(
        "network_none_gets_its_own_namespace_with_loopback_up",
        "engine-netns",
        NETNS_APPLETS,
    )
    .await
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
    let Some(mut fx) = Fixture::open(
        "restart_takes_a_fresh_namespace",
        "engine-netns",
        NETNS_APPLETS,
    )
    .await
    else {
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

/// The namespaces this process holds descriptors of (their inodes).
fn open_netns() -> std::collections::HashSet<u64> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let l = std::fs::read_link(e.path()).ok()?;
            let l = l.to_string_lossy();
            l.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The engine holds a running container's namespace, retires it at the exit, and lets
/// retired namespaces go together (see "Retired in batches" in `netns`): a lone one after
/// RETIRE_WAIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exited_containers_namespace_is_retired_then_let_go() {
    use berth_engine::netns::RETIRE_WAIT;
    use std::time::{Duration, Instant};
    let Some(mut fx) = Fixture::open(
        "an_exited_containers_namespace_is_retired_then_let_go",
        "engine-netns",
        NETNS_APPLETS,
    )
    .await
    else {
        return;
    };
    let (id, pid) = fx.run_sleep("none").await;
    let ino = netns_inode(pid);
    assert!(open_netns().contains(&ino), "held while the container runs");
    assert_eq!(fx.engine().netns_pool().retired(), 0);
    fx.engine().stop(&id, None, Some(0)).await.expect("stop");
    let deadline = Instant::now() + Duration::from_secs(5);
    while fx.engine().netns_pool().retired() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fx.engine().netns_pool().retired(), 1, "retired at the exit");
    assert!(
        open_netns().contains(&ino),
        "a retired namespace waits for its batch"
    );
    tokio::time::sleep(RETIRE_WAIT + Duration::from_millis(500)).await;
    assert_eq!(fx.engine().netns_pool().retired(), 0);
    assert!(!open_netns().contains(&ino), "let go after RETIRE_WAIT");
}
