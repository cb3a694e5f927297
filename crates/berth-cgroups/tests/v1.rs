//! cgroup v1 for real: this host's hierarchies under /sys/fs/cgroup/<controller>.
//!
//! Every test creates its own `berth-test-*` cgroup, puts processes it spawned into it, and
//! removes everything on drop.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use berth_cgroups::{CgroupPath, CgroupVersion, Hierarchy};
use common::*;

fn v1_host() -> Option<Hierarchy> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let h = Hierarchy::detect().expect("detect");
    if h.version() != CgroupVersion::V1 {
        eprintln!("skipped: host is not cgroup v1");
        return None;
    }
    Some(h)
}

fn need(h: &Hierarchy, ctrl: &str) -> bool {
    let ok = h.v1_controllers().contains_key(ctrl);
    if !ok {
        eprintln!("skipped: the {ctrl} controller is not mounted");
    }
    ok
}

/// /proc/<pid>/cgroup line for a controller.
fn proc_cgroup(pid: i32, ctrl: &str) -> String {
    read(format!("/proc/{pid}/cgroup"))
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            c.split(',').any(|c| c == ctrl).then(|| p.to_string())
        })
        .unwrap_or_default()
}

#[test]
fn lifecycle_limits_readback_stats_freeze_destroy() {
    let Some(h) = v1_host() else { return };
    let name = unique("life");
    let parent = format!("/sys/fs/cgroup/memory/{name}");
    let path = format!("/{name}/c1");
    let mut cg = CgroupGuard::new(&h, &path);
    for mount in h.v1_controllers().values() {
        cg.extra.push(mount.join(&name));
    }
    if let Some(u) = h.unified_mount() {
        cg.extra.push(u.join(&name));
    }
    cg.create().unwrap();
    cg.create().unwrap(); // idempotent
    let paths = cg.paths();
    for (ctrl, dir) in &paths {
        assert!(dir.is_dir(), "{ctrl}: {} missing", dir.display());
        assert!(dir.ends_with(format!("{name}/c1")), "{}", dir.display());
    }
    assert!(Path::new(&parent).is_dir());
    if let Some(cpuset) = paths.get("cpuset") {
        // New cpuset levels were initialized from their parent so processes can join.
        assert!(!read(cpuset.join("cpuset.cpus")).trim().is_empty());
        assert!(!read(cpuset.join("cpuset.mems")).trim().is_empty());
    }

    // Some work inside the cgroup (so CPU usage is charged to it), then wait.
    let mut child = Sh::spawn(
        "read _; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo ready; exec sleep 1000",
    );
    cg.add_process(child.pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid]);
    for ctrl in paths.keys() {
        assert_eq!(proc_cgroup(child.pid, ctrl), path, "{ctrl}");
    }
    // Hybrid host: the process is in the cgroup2 twin too (cgroup.kill works for v1).
    let twin = h.unified_mount().map(|u| u.join(&name).join("c1"));
    if let Some(twin) = &twin {
        assert!(!paths.contains_key(""), "the twin is not listed");
        assert!(twin.is_dir());
        assert_eq!(proc_cgroup(child.pid, ""), path);
    }
    child.go();
    assert_eq!(child.line(), "ready");

    let res = resources(
        r#"{
        "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 20},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]}
    }"#,
    );
    let res = if Path::new("/sys/dev/block/254:0").exists() {
        res
    } else {
        let mut r = res;
        r.set_block_io(None);
        r
    };
    cg.apply(&res).unwrap();
    let f = |ctrl: &str, file: &str| read(paths[ctrl].join(file)).trim().to_string();
    assert_eq!(f("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(f("memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(f("memory", "memory.swappiness"), "20");
    assert_eq!(f("cpu", "cpu.shares"), "512");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(f("cpuset", "cpuset.cpus"), "0");
    assert_eq!(f("pids", "pids.max"), "50");
    if res.block_io().is_some() {
        assert_eq!(
            f("blkio", "blkio.throttle.read_bps_device"),
            "254:0 1048576"
        );
    }

    // Raising memory and swap together (memsw must move first) works as an update.
    if paths["memory"].join("memory.memsw.limit_in_bytes").exists() {
        cg.apply(&resources(
            r#"{"memory": {"limit": 134217728, "swap": 268435456}}"#,
        ))
        .unwrap();
        assert_eq!(f("memory", "memory.limit_in_bytes"), "134217728");
        assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "268435456");
    }

    let s = cg.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 134217728);
    assert!(s.memory.raw.contains_key("total_rss"), "memory.stat parsed");
    assert_eq!(s.pids.current, cg.pids().unwrap().len() as u64);
    assert!(s.pids.current >= 1);
    assert_eq!(s.pids.limit, 50);
    assert_eq!(s.cpuset.cpus, vec![0]);
    assert!(s.cpu.usage.total > 0, "the shell ran");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["memory"]["usage"]["limit"], 134217728);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert_eq!(f("freezer", "freezer.state"), "FROZEN");
    assert!(
        child.state().starts_with('D'),
        "frozen task state: {}",
        child.state()
    );
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    // The write to freezer.state returns once the cgroup is THAWED; the task itself leaves
    // its frozen sleep when next scheduled (on a busy host a moment later, seen in CI).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut state = child.state();
    while state.starts_with('D') && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        state = child.state();
    }
    assert!(!state.starts_with('D'), "thawed task state: {state}");

    cg.kill_all(libc::SIGTERM).unwrap();
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM));

    cg.destroy().unwrap();
    for (ctrl, dir) in &paths {
        assert!(!dir.exists(), "{ctrl}: {} left behind", dir.display());
    }
    assert!(twin.is_none_or(|t| !t.exists()));
    cg.destroy().unwrap(); // Ok when already gone
}

#[test]
fn pids_limit_makes_fork_fail() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "pids") {
        return;
    }
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("pids")));
    cg.create().unwrap();
    cg.apply(&resources(r#"{"pids": {"limit": 3}}"#)).unwrap();
    let mut child = Sh::spawn(
        "read _; for i in 1 2 3 4 5 6; do sleep 1000 >/dev/null 2>&1 & done; echo started",
    );
    cg.add_process(child.pid).unwrap();
    child.go();
    let (_, _, stderr) = child.wait();
    let events = read(cg.paths()["pids"].join("pids.events"));
    assert!(stderr.to_lowercase().contains("fork"), "stderr: {stderr}");
    assert_ne!(events.trim(), "max 0", "pids.events: {events}");
    assert!(cg.pids().unwrap().len() <= 3);
    cg.kill_all(libc::SIGKILL).unwrap();
}

#[test]
fn memory_limit_oom_kills_and_is_counted() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "memory") {
        return;
    }
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("oom")));
    cg.create().unwrap();
    let mem = cg.paths()["memory"].clone();
    let swap = if mem.join("memory.memsw.limit_in_bytes").exists() {
        r#", "swap": 33554432"#
    } else {
        ""
    };
    cg.apply(&resources(&format!(
        r#"{{"memory": {{"limit": 33554432{swap}}}}}"#
    )))
    .unwrap();
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
    // tail keeps the whole (newline-free) input in memory: it grows until the limit.
    let mut child = Sh::spawn("read _; exec tail /dev/zero");
    cg.add_process(child.pid).unwrap();
    child.go();
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(cg.oom_kill_count().unwrap() >= 1);
    let s = cg.stats().unwrap();
    // The peak reached the limit (failcnt is no longer tracked by every kernel).
    assert_eq!(s.memory.usage.max, 33554432, "{:?}", s.memory.usage);
    assert_eq!(s.memory.usage.limit, 33554432);
}

#[test]
fn device_rules_deny_then_allow() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "devices") {
        return;
    }
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("dev")));
    cg.create().unwrap();
    let rules = resources(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
        ]}"#,
    );
    cg.apply(&rules).unwrap();
    let list = read(cg.paths()["devices"].join("devices.list"));
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(lines, ["c 1:3 r", "c 1:5 rwm"]);
    // Applying the same rules again writes nothing and keeps the list.
    cg.apply(&rules).unwrap();
    assert_eq!(read(cg.paths()["devices"].join("devices.list")), list);

    let mut child = Sh::spawn(
        // No redirections to /dev/null here: opening it for writing is what is denied.
        "read _; \
         (exec 3>/dev/null) && echo null-w-ok || echo null-w-denied; \
         (exec 3</dev/null) && echo null-r-ok || echo null-r-denied; \
         (exec 3</dev/zero) && echo zero-ok || echo zero-denied; \
         (exec 3</dev/full) && echo full-ok || echo full-denied",
    );
    cg.add_process(child.pid).unwrap();
    child.go();
    let (_, out, _) = child.wait();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["null-w-denied", "null-r-ok", "zero-ok", "full-denied"]
    );
}

#[test]
fn bad_resources_write_nothing() {
    let Some(h) = v1_host() else { return };
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("bad")));
    cg.create().unwrap();
    let limit = cg.paths()["memory"].join("memory.limit_in_bytes");
    let before = read(&limit);
    // A valid memory limit next to something v1 cannot do: nothing may be written.
    let e = cg
        .apply(&resources(
            r#"{"memory": {"limit": 67108864}, "unified": {"memory.high": "1"}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("unified"), "{e}");
    assert_eq!(read(&limit), before);
    let e = cg
        .apply(&resources(
            r#"{"memory": {"limit": 67108864}, "pids": {"limit": -7}}"#,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("pids.limit"), "{e}");
    assert_eq!(read(&limit), before);
    if !h.v1_controllers().contains_key("net_cls") {
        let e = cg
            .apply(&resources(
                r#"{"memory": {"limit": 67108864}, "network": {"classID": 1}}"#,
            ))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("net_cls cgroup v1 controller is not mounted"),
            "{e}"
        );
        assert_eq!(read(&limit), before);
    }
    // The kernel refusing a value names the file and the value.
    let e = cg
        .apply(&resources(r#"{"cpu": {"cpus": "999"}}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("cpuset.cpus") && e.to_string().contains("999"),
        "{e}"
    );
}

#[test]
fn relative_path_nests_below_our_own_cgroup() {
    let Some(h) = v1_host() else { return };
    let name = unique("rel");
    let cg = CgroupGuard::new(&h, &name);
    cg.create().unwrap();
    let own = read("/proc/self/cgroup");
    for (ctrl, dir) in cg.paths() {
        let mine = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, c, p) = (f.next()?, f.next()?, f.next()?);
                c.split(',').any(|c| c == ctrl).then(|| p.to_string())
            })
            .unwrap();
        let mount = &h.v1_controllers()[&ctrl];
        let want = mount.join(mine.trim_start_matches('/')).join(&name);
        assert_eq!(dir, want, "{ctrl}");
        assert!(dir.is_dir());
    }
    let default = h
        .manager(&CgroupPath::from_oci(None, "abc").unwrap())
        .unwrap();
    assert!(default.paths()["memory"].ends_with("memory/berth/abc"));
}

#[test]
fn kill_all_sigkill_reaches_every_process() {
    let Some(h) = v1_host() else { return };
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("kill")));
    cg.create().unwrap();
    let mut child = Sh::spawn("read _; sleep 1000 >/dev/null 2>&1 & echo forked; wait");
    cg.add_process(child.pid).unwrap();
    child.go();
    assert_eq!(child.line(), "forked");
    assert_eq!(cg.pids().unwrap().len(), 2);
    cg.kill_all(libc::SIGKILL).unwrap();
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The orphaned sleep dies too (exit is asynchronous: wait for the cgroup to empty).
    let mut left = cg.pids().unwrap();
    for _ in 0..2000 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        left = cg.pids().unwrap();
    }
    assert!(left.is_empty(), "still running: {left:?}");
    cg.destroy().unwrap();
}

/// Docker's `run` rules (deny all, then runc's standard list, as berth-container appends
/// them): every rule lands, though they are written through one open `devices.allow`.
#[test]
fn docker_default_device_rules_all_land() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "devices") {
        return;
    }
    let name = unique("devdefault");
    let cg = CgroupGuard::new(&h, &format!("/{name}"));
    cg.create().unwrap();
    let rules = resources(
        r#"{"devices": [
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
        ]}"#,
    );
    cg.apply(&rules).unwrap();
    let list = read(cg.paths()["devices"].join("devices.list"));
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "b *:* m",
            "c *:* m",
            "c 10:200 rwm",
            "c 136:* rwm",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
        ]
    );
    // A second apply (an update) finds the list in place and keeps it.
    cg.apply(&rules).unwrap();
    assert_eq!(read(cg.paths()["devices"].join("devices.list")), list);
    // So does a fresh create + apply below a parent that already has these rules.
    let child = CgroupGuard::new(&h, &format!("/{name}/c1"));
    child.create().unwrap();
    child.apply(&rules).unwrap();
    assert_eq!(read(child.paths()["devices"].join("devices.list")), list);
}

/// A new container below an existing parent (`/berth/<id>`) is made with one mkdir per
/// hierarchy and gets the parent's cpuset, not the root's.
#[test]
fn new_cgroup_below_an_existing_parent_inherits_its_cpuset() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "cpuset") {
        return;
    }
    let name = unique("cpuset");
    let parent = CgroupGuard::new(&h, &format!("/{name}"));
    parent.create().unwrap();
    let pdir = parent.paths()["cpuset"].clone();
    let first_cpu = read(pdir.join("cpuset.cpus"))
        .trim()
        .split([',', '-'])
        .next()
        .unwrap()
        .to_string();
    std::fs::write(pdir.join("cpuset.cpus"), &first_cpu).unwrap();
    let child = CgroupGuard::new(&h, &format!("/{name}/c1"));
    child.create().unwrap();
    let cdir = child.paths()["cpuset"].clone();
    assert_eq!(read(cdir.join("cpuset.cpus")).trim(), first_cpu);
    assert_eq!(
        read(cdir.join("cpuset.mems")).trim(),
        read(pdir.join("cpuset.mems")).trim()
    );
    // Existing levels keep their values on a second create.
    child.create().unwrap();
    assert_eq!(read(cdir.join("cpuset.cpus")).trim(), first_cpu);
    drop(child);
}

/// A runtime that clones first (the new process joins the v1 hierarchies itself) needs only
/// the hybrid host's cgroup2 twin and the cpu hierarchy before the clone: `create_early`
/// makes those and nothing else (returning the v1 one), and `create` afterwards makes the
/// rest around them.
#[test]
fn early_dirs_are_the_cgroup2_twin_and_cpu_only() {
    let Some(h) = v1_host() else { return };
    let name = unique("early");
    let path = format!("/{name}");
    let cg = CgroupGuard::new(&h, &path);
    let early = cg.create_early().unwrap();
    let paths = cg.paths();
    assert_eq!(
        early,
        paths.get("cpu").into_iter().cloned().collect::<Vec<_>>()
    );
    for (ctrl, dir) in &paths {
        if early.contains(dir) {
            assert!(dir.is_dir(), "{ctrl}: {} missing", dir.display());
        } else {
            assert!(!dir.exists(), "{ctrl}: {} made too early", dir.display());
        }
    }
    let twin = h.unified_mount().map(|u| u.join(&name));
    if let Some(twin) = &twin {
        assert!(twin.is_dir(), "{} missing", twin.display());
    }
    cg.create().unwrap();
    for (ctrl, dir) in cg.paths() {
        assert!(dir.is_dir(), "{ctrl}: {} missing", dir.display());
    }
    if let Some(twin) = &twin {
        assert!(twin.is_dir());
    }
}

/// Spare cgroups (`berth_cgroups::spare`): an empty cgroup is set aside with its counters
/// reset, and taken by a cgroup with the same tag only, in every hierarchy at once.
#[test]
fn spares_are_set_aside_reset_and_taken_only_with_the_same_tag() {
    use std::os::unix::fs::MetadataExt;
    let Some(h) = v1_host() else { return };
    if !need(&h, "memory") || !need(&h, "cpuacct") {
        return;
    }
    let name = unique("spare");
    // Dropped last: kills what is left and removes every sub-cgroup, spares included.
    let parent = CgroupGuard::new(&h, &format!("/{name}"));
    parent.create().unwrap();
    let res = resources(r#"{"pids": {"limit": 64}}"#);
    let tag = berth_cgroups::spare_tag(&res).unwrap();
    let a = CgroupGuard::new(&h, &format!("/{name}/a"));
    assert!(!a.take_spare(&tag), "no spare yet");
    a.create().unwrap();
    a.apply(&res).unwrap();
    let a_dirs = a.paths();
    let inodes: Vec<u64> = a_dirs
        .values()
        .map(|d| std::fs::metadata(d).unwrap().ino())
        .collect();

    // Not while a process is inside.
    let mut child = Sh::spawn("read _; i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo done");
    a.add_process(child.pid).unwrap();
    assert!(!a.set_aside(&tag));
    assert!(a_dirs.values().all(|d| d.is_dir()), "nothing renamed");
    child.go();
    assert_eq!(child.line(), "done");
    child.wait();
    let f = |dir: &Path, file: &str| read(dir.join(file)).trim().to_string();
    assert_ne!(f(&a_dirs["cpuacct"], "cpuacct.usage"), "0");
    assert_ne!(f(&a_dirs["memory"], "memory.max_usage_in_bytes"), "0");

    assert!(a.set_aside(&tag));
    let spare_name = format!("spare-{tag}-a");
    for ((ctrl, dir), ino) in a_dirs.iter().zip(&inodes) {
        assert!(!dir.exists(), "{ctrl}: {} stays", dir.display());
        let spare = dir.with_file_name(&spare_name);
        assert_eq!(std::fs::metadata(&spare).unwrap().ino(), *ino, "{ctrl}");
    }
    let spare_of = |ctrl: &str| a_dirs[ctrl].with_file_name(&spare_name);
    assert_eq!(f(&spare_of("cpuacct"), "cpuacct.usage"), "0");
    // A peak resets to the current usage (the page cache still charged), not to 0.
    assert_eq!(
        f(&spare_of("memory"), "memory.max_usage_in_bytes"),
        f(&spare_of("memory"), "memory.usage_in_bytes")
    );
    assert_eq!(f(&spare_of("pids"), "pids.max"), "64");
    // A hybrid host's cgroup2 twin cannot be renamed: destroy removes it, not the spare.
    a.destroy().unwrap();
    if let Some(u) = h.unified_mount() {
        assert!(!u.join(&name).join("a").exists());
    }
    assert!(spare_of("memory").is_dir());

    let b = CgroupGuard::new(&h, &format!("/{name}/b"));
    let other = berth_cgroups::spare_tag(&resources(r#"{"pids": {"limit": 65}}"#)).unwrap();
    assert!(!b.take_spare(&other), "another tag");
    assert!(b.take_spare(&tag));
    // The take renames the spare's anchor (the first directory by path) and `cpu`, all a
    // process needs at its start; `create` renames the others.
    let anchor = a_dirs.values().min().unwrap().clone();
    for ((ctrl, dir), b_dir) in a_dirs.iter().zip(b.paths().values()) {
        let now = *dir == anchor || *dir == a_dirs["cpu"];
        assert_eq!(b_dir.exists(), now, "{ctrl}: renamed by the take");
        assert_eq!(dir.with_file_name(&spare_name).exists(), !now, "{ctrl}");
    }
    b.create().unwrap();
    for (((ctrl, dir), b_dir), ino) in a_dirs.iter().zip(b.paths().values()).zip(&inodes) {
        assert!(
            !dir.with_file_name(&spare_name).exists(),
            "{ctrl}: spare stays"
        );
        assert_eq!(std::fs::metadata(b_dir).unwrap().ino(), *ino, "{ctrl}");
    }
    b.apply(&res).unwrap();
    assert_eq!(f(&b.paths()["pids"], "pids.max"), "64");
    // A taken spare is the cgroup's own: destroy removes it everywhere.
    b.destroy().unwrap();
    assert!(b.paths().values().all(|d| !d.exists()), "b stays");
    drop(b);

    // A spare taken by a cgroup given up before its `create` goes entirely: what the take
    // renamed with the cgroup, the rest under the spare's name.
    let d = CgroupGuard::new(&h, &format!("/{name}/d"));
    d.create().unwrap();
    d.apply(&res).unwrap();
    assert!(d.set_aside(&tag));
    let e = CgroupGuard::new(&h, &format!("/{name}/e"));
    assert!(e.take_spare(&tag));
    e.destroy().unwrap();
    for dir in a_dirs.values() {
        let parent = dir.parent().unwrap();
        assert!(!parent.join("e").exists(), "{}", parent.display());
        assert!(
            !parent.join(format!("spare-{tag}-d")).exists(),
            "{}",
            parent.display()
        );
    }
    drop((d, e));

    // At most MAX_SPARES wait; the parent's manager removes them.
    let max = berth_cgroups::spare::MAX_SPARES;
    for i in 0..=max {
        let c = CgroupGuard::new(&h, &format!("/{name}/c{i}"));
        c.create().unwrap();
        assert_eq!(c.set_aside(&tag), i < max, "spare {i}");
    }
    let hierarchies: std::collections::BTreeSet<_> = a_dirs.values().collect();
    assert_eq!(
        parent.remove_spares_below().unwrap(),
        max * hierarchies.len()
    );
    for dir in a_dirs.values() {
        let left: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("spare-"))
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
}

#[test]
fn a_cgroup_that_saw_an_oom_kill_is_not_set_aside() {
    let Some(h) = v1_host() else { return };
    if !need(&h, "memory") {
        return;
    }
    let name = unique("spare-oom");
    let parent = CgroupGuard::new(&h, &format!("/{name}"));
    parent.create().unwrap();
    let cg = CgroupGuard::new(&h, &format!("/{name}/a"));
    cg.create().unwrap();
    cg.apply(&resources(r#"{"memory": {"limit": 16777216}}"#))
        .unwrap();
    let mut child = Sh::spawn("read _; exec tail /dev/zero");
    cg.add_process(child.pid).unwrap();
    child.go();
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(!cg.set_aside("0123456789abcdef"));
    assert!(cg.paths().values().all(|d| d.is_dir()), "nothing renamed");
}
