//! cgroup v2 controller files against a fake cgroupfs tree (this host's cgroup2 mount has no
//! controllers): files pre-created with the content a 6.x kernel shows, the manager pointed
//! at the tree with `Hierarchy::v2_at`, and the results read back from the files.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{CgroupPath, Hierarchy};
use berth_oci::errdefs::{Classify, ErrorKind};
use common::*;

/// A temp dir laid out like a cgroup2 mount with `berth/c1` below it.
struct FakeTree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

const CONTROLLERS: &str = "cpuset cpu io memory hugetlb pids rdma misc\n";

fn write_all(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

impl FakeTree {
    fn new(controllers: &str) -> FakeTree {
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-fake")
            .tempdir()
            .unwrap();
        let root = tmp.path().to_path_buf();
        let core = |dir: &Path| {
            write_all(
                dir,
                &[
                    ("cgroup.controllers", controllers),
                    ("cgroup.subtree_control", ""),
                    ("cgroup.procs", ""),
                ],
            )
        };
        core(&root);
        core(&root.join("berth"));
        let leaf = root.join("berth/c1");
        core(&leaf);
        write_all(
            &leaf,
            &[
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cgroup.freeze", "0\n"),
                ("cgroup.kill", ""),
                ("cgroup.max.depth", "max\n"),
                ("cpuset.cpus", "\n"),
                ("cpuset.mems", "\n"),
                ("cpuset.cpus.effective", "0-1\n"),
                ("cpuset.mems.effective", "0\n"),
                ("cpu.weight", "100\n"),
                ("cpu.max", "max 100000\n"),
                ("cpu.max.burst", "0\n"),
                ("cpu.idle", "0\n"),
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 40\nnr_throttled 7\nthrottled_usec 2500\nnr_bursts 0\nburst_usec 0\n",
                ),
                ("memory.current", "4194304\n"),
                ("memory.peak", "8388608\n"),
                ("memory.max", "max\n"),
                ("memory.low", "0\n"),
                ("memory.high", "max\n"),
                ("memory.swap.current", "1048576\n"),
                ("memory.swap.max", "max\n"),
                ("memory.swap.events", "high 0\nmax 0\nfail 2\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n",
                ),
                (
                    "memory.stat",
                    "anon 2097152\nfile 1048576\nkernel 524288\nshmem 0\npgfault 1200\n",
                ),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
                ("io.max", ""),
                ("io.weight", "default 100\n"),
                (
                    "io.stat",
                    "254:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n",
                ),
                ("hugetlb.2MB.max", "max\n"),
                ("hugetlb.2MB.rsvd.max", "max\n"),
                ("hugetlb.2MB.current", "2097152\n"),
                ("hugetlb.2MB.events", "max 1\n"),
                ("hugetlb.1GB.max", "max\n"),
                ("hugetlb.1GB.current", "0\n"),
                ("hugetlb.1GB.events", "max 0\n"),
                ("rdma.max", ""),
            ],
        );
        FakeTree { _tmp: tmp, root }
    }

    fn leaf(&self) -> PathBuf {
        self.root.join("berth/c1")
    }

    fn get(&self, file: &str) -> String {
        read(self.leaf().join(file)).trim_end().to_string()
    }

    fn manager(&self) -> Box<dyn berth_cgroups::CgroupManager> {
        Hierarchy::v2_at(&self.root)
            .manager(&CgroupPath::from_oci(Some("/berth/c1"), "c1").unwrap())
            .unwrap()
    }
}

#[test]
fn limits_land_in_the_v2_files() {
    let t = FakeTree::new(CONTROLLERS);
    let cg = t.manager();
    cg.create().unwrap(); // existing directories are fine
    assert_eq!(cg.paths()[""], t.leaf());
    cg.apply(&resources(
        r#"{
        "memory": {"limit": 268435456, "reservation": 134217728, "swap": 536870912, "kernel": 1},
        "cpu": {"shares": 2048, "quota": 150000, "period": 100000, "burst": 1000, "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": 128},
        "blockIO": {"weight": 500, "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}],
        "rdma": {"mlx5_0": {"hcaHandles": 3}},
        "unified": {"memory.high": "200000000", "cgroup.max.depth": "4"}
    }"#,
    ))
    .unwrap();
    assert_eq!(t.get("memory.max"), "268435456");
    assert_eq!(t.get("memory.low"), "134217728");
    assert_eq!(
        t.get("memory.swap.max"),
        "268435456",
        "memory+swap minus memory"
    );
    assert_eq!(t.get("memory.high"), "200000000", "unified passthrough");
    assert_eq!(t.get("cgroup.max.depth"), "4");
    assert_eq!(t.get("cpu.weight"), "174"); // runc: ceil(10^((l²+125l)/612 - 7/34)), l = log2(2048)
    assert_eq!(t.get("cpu.max"), "150000 100000");
    assert_eq!(t.get("cpu.max.burst"), "1000");
    assert_eq!(t.get("cpu.idle"), "1");
    assert_eq!(t.get("cpuset.cpus"), "0-1");
    assert_eq!(t.get("cpuset.mems"), "0");
    assert_eq!(t.get("pids.max"), "128");
    assert_eq!(t.get("io.weight"), "default 4950");
    assert_eq!(t.get("io.max"), "254:0 wbps=2097152");
    assert_eq!(t.get("hugetlb.2MB.max"), "8388608");
    assert_eq!(t.get("hugetlb.2MB.rsvd.max"), "8388608");
    assert_eq!(t.get("rdma.max"), "mlx5_0 hca_handle=3 hca_object=max");
    // Controllers were enabled from the root down to the parent, only the needed ones.
    let want = "+cpu +cpuset +hugetlb +io +memory +pids +rdma";
    assert_eq!(read(t.root.join("cgroup.subtree_control")), want);
    assert_eq!(read(t.root.join("berth/cgroup.subtree_control")), want);
    assert_eq!(read(t.leaf().join("cgroup.subtree_control")), "");
}

#[test]
fn enabled_controllers_are_not_rewritten() {
    let t = FakeTree::new(CONTROLLERS);
    fs::write(t.root.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
    let cg = t.manager();
    cg.apply(&resources(r#"{"pids": {"limit": 10}}"#)).unwrap();
    assert_eq!(
        read(t.root.join("cgroup.subtree_control")),
        "cpu memory pids\n"
    );
    assert_eq!(read(t.root.join("berth/cgroup.subtree_control")), "+pids");
    // A container without limits touches no ancestor.
    let t = FakeTree::new(CONTROLLERS);
    t.manager().apply(&resources("{}")).unwrap();
    assert_eq!(read(t.root.join("cgroup.subtree_control")), "");
}

#[test]
fn bfq_weight_is_used_when_present() {
    let t = FakeTree::new(CONTROLLERS);
    fs::write(t.leaf().join("io.bfq.weight"), "default 100\n").unwrap();
    t.manager()
        .apply(&resources(r#"{"blockIO": {"weight": 500}}"#))
        .unwrap();
    assert_eq!(t.get("io.bfq.weight"), "500");
    assert_eq!(t.get("io.weight"), "default 100", "untouched");
}

#[test]
fn missing_controller_fails_before_any_write() {
    let t = FakeTree::new("cpu memory\n");
    let cg = t.manager();
    let e = cg
        .apply(&resources(
            r#"{"memory": {"limit": 1048576}, "pids": {"limit": 10}}"#,
        ))
        .unwrap_err();
    assert!(
        e.to_string().contains("pids.limit")
            && e.to_string().contains("pids controller is not available"),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::NotImplemented);
    assert_eq!(t.get("memory.max"), "max");
    assert_eq!(read(t.root.join("cgroup.subtree_control")), "");
    // Bad values: refused before the controllers are even looked at.
    let e = cg
        .apply(&resources(r#"{"memory": {"limit": -3}}"#))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(t.get("memory.max"), "max");
}

#[test]
fn stats_from_v2_files() {
    let t = FakeTree::new(CONTROLLERS);
    let s = t.manager().stats().unwrap();
    assert_eq!(s.cpu.usage.total, 1_500_000);
    assert_eq!(s.cpu.usage.user, 1_000_000);
    assert_eq!(s.cpu.usage.kernel, 500_000);
    assert_eq!(s.cpu.throttling.periods, 40);
    assert_eq!(s.cpu.throttling.throttled_periods, 7);
    assert_eq!(s.cpu.throttling.throttled_time, 2_500_000);
    assert_eq!(s.cpuset.cpus, vec![0, 1]);
    assert_eq!(s.memory.usage.usage, 4194304);
    assert_eq!(s.memory.usage.max, 8388608);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 5);
    assert_eq!(s.memory.swap.usage, 4194304 + 1048576);
    assert_eq!(s.memory.swap.failcnt, 2);
    assert_eq!(s.memory.cache, 1048576);
    assert_eq!(s.memory.raw["anon"], 2097152);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, 0, "max is reported as 0");
    let bytes = &s.blkio.io_service_bytes_recursive;
    assert_eq!(
        (bytes[0].major, bytes[0].op.as_str(), bytes[0].value),
        (254, "Read", 8192)
    );
    assert_eq!(s.blkio.io_serviced_recursive[1].value, 1);
    if berth_cgroups::stats::host_hugepage_sizes().contains(&"2MB".to_string()) {
        assert_eq!(s.hugetlb["2MB"].usage, 2097152);
        assert_eq!(s.hugetlb["2MB"].failcnt, 1);
    }
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["cpu"]["usage"]["total"], 1_500_000);
    assert_eq!(json["memory"]["usage"]["failcnt"], 5);
}

#[test]
fn oom_count_and_pids_from_v2_files() {
    let t = FakeTree::new(CONTROLLERS);
    let cg = t.manager();
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
    fs::write(t.leaf().join("cgroup.procs"), "12\n34\n").unwrap();
    write_all(&t.leaf().join("sub"), &[("cgroup.procs", "56\n")]);
    assert_eq!(cg.pids().unwrap(), vec![12, 34, 56]);
    fs::write(t.leaf().join("cgroup.procs"), "12\nnope\n").unwrap();
    assert!(cg.pids().unwrap_err().to_string().contains("not a pid"));
    assert!(!cg.is_frozen().unwrap());
    fs::write(t.leaf().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    assert!(cg.is_frozen().unwrap());
}

#[test]
fn destroy_removes_the_tree_and_tolerates_absence() {
    let t = FakeTree::new(CONTROLLERS);
    let h = Hierarchy::v2_at(&t.root);
    let cg = h
        .manager(&CgroupPath::parse("/berth/new/deep").unwrap())
        .unwrap();
    cg.create().unwrap();
    assert!(t.root.join("berth/new/deep").is_dir());
    let parent = h
        .manager(&CgroupPath::parse("/berth/new").unwrap())
        .unwrap();
    parent.destroy().unwrap();
    assert!(
        !t.root.join("berth/new").exists(),
        "sub-cgroups removed first"
    );
    parent.destroy().unwrap();
}
