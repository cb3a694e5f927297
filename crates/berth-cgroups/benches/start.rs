//! The cgroup work of one `docker run` start + removal, N times in one process: create
//! `/berth-test-bench-<pid>/<i>` (the parent exists, as `/berth` does), apply Docker's default
//! resources (deny all devices, then runc's standard allow list), destroy. Joining is left out:
//! the container's init joins by itself (see `berth-container`'s `cgroup_join`).
//!
//! Needs root and a cgroup host (set `BERTH_BENCH_V2_ROOT` to a cgroup2 mount to bench v2). Run the binary directly for `strace -c` / hyperfine:
//! `cargo bench -p berth-cgroups --bench start --no-run`, then `<binary> 200`.

use berth_cgroups::{CgroupPath, Hierarchy};
use berth_oci::spec::runtime::LinuxResources;

/// What berth-engine + berth-container put into `linux.resources` for `berth run busybox`.
const RESOURCES: &str = r#"{
    "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
    ]
}"#;

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the start bench needs root (it creates real cgroups)");
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let res: LinuxResources = serde_json::from_str(RESOURCES).expect("static resources");
    // BERTH_BENCH_V2_ROOT=/sys/fs/cgroup/unified: the v2 manager on a hybrid host's cgroup2.
    let host = match std::env::var_os("BERTH_BENCH_V2_ROOT") {
        Some(root) => Hierarchy::v2_at(root),
        None => Hierarchy::host().expect("cgroup hierarchy"),
    };
    let parent = format!("/berth-test-bench-{}", std::process::id());
    let parent_cg = host
        .manager(&CgroupPath::parse(&parent).expect("valid path"))
        .expect("manager");
    parent_cg.create().expect("create the parent");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for i in 0..n {
            let path = CgroupPath::parse(&format!("{parent}/{i}")).expect("valid path");
            let cg = host.manager(&path).expect("manager");
            cg.create().expect("create");
            cg.apply(&res).expect("apply");
            cg.destroy().expect("destroy");
        }
    }));
    let _ = parent_cg.destroy();
    if result.is_err() {
        std::process::exit(1);
    }
}
