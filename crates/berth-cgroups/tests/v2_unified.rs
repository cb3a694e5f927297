//! cgroup v2 for real on this host's cgroup2 mount (`/sys/fs/cgroup/unified` on the hybrid
//! layout, `/sys/fs/cgroup` on a pure v2 host): the core files (`cgroup.procs`,
//! `cgroup.freeze` + `cgroup.events`, `cgroup.kill`) and the eBPF device filter.
//! Controller files are covered by `v2_fake.rs` (this host's cgroup2 has no controllers).

mod common;

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use berth_cgroups::Hierarchy;
use common::*;

fn unified() -> Option<PathBuf> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let h = Hierarchy::detect().expect("detect");
    match h.unified_mount() {
        Some(p) => Some(p.to_path_buf()),
        None => {
            eprintln!("skipped: no cgroup2 mount on this host");
            None
        }
    }
}

fn events(cg: &CgroupGuard) -> String {
    read(cg.paths()[""].join("cgroup.events"))
}

#[test]
fn procs_freeze_thaw_kill_destroy() {
    let Some(root) = unified() else { return };
    let h = Hierarchy::v2_at(&root);
    let name = unique("core");
    let mut cg = CgroupGuard::new(&h, &format!("/{name}/c1"));
    cg.extra.push(root.join(&name));
    cg.create().unwrap();
    let dir = cg.paths()[""].clone();
    assert_eq!(dir, root.join(&name).join("c1"));
    assert!(events(&cg).contains("populated 0"));

    let mut child = Sh::spawn("read _; echo in; exec sleep 1000");
    cg.add_process(child.pid).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![child.pid]);
    assert!(events(&cg).contains("populated 1"));
    assert_eq!(
        read(format!("/proc/{}/cgroup", child.pid))
            .lines()
            .find(|l| l.starts_with("0::"))
            .unwrap(),
        format!("0::/{name}/c1")
    );
    child.go();
    assert_eq!(child.line(), "in");

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    assert!(events(&cg).contains("frozen 1"));
    assert!(
        child.state().starts_with('D') || child.state().starts_with('S'),
        "{}",
        child.state()
    );
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert!(events(&cg).contains("frozen 0"));

    // SIGKILL goes through cgroup.kill where the kernel has it.
    cg.kill_all(libc::SIGKILL).unwrap();
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    cg.destroy().unwrap();
    assert!(!dir.exists());
    cg.destroy().unwrap();
}

#[test]
fn kill_all_with_another_signal_freezes_and_signals_each() {
    let Some(root) = unified() else { return };
    let h = Hierarchy::v2_at(&root);
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("term")));
    cg.create().unwrap();
    let mut child = Sh::spawn("read _; sleep 1000 >/dev/null 2>&1 & echo forked; wait");
    cg.add_process(child.pid).unwrap();
    child.go();
    assert_eq!(child.line(), "forked");
    assert_eq!(cg.pids().unwrap().len(), 2);
    cg.kill_all(libc::SIGTERM).unwrap();
    assert!(!cg.is_frozen().unwrap(), "thawed again afterwards");
    let (status, _, _) = child.wait();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
}

/// Runs the probe script in a fresh child inside `cg` and returns its words.
fn probe_devices(cg: &CgroupGuard) -> Vec<String> {
    let mut child = Sh::spawn(
        // No redirections to /dev/null: opening it for writing may be what is denied.
        "read _; \
         (exec 3>/dev/null) && echo null-w-ok || echo null-w-denied; \
         (exec 3</dev/null) && echo null-r-ok || echo null-r-denied; \
         (exec 3</dev/zero) && echo zero-ok || echo zero-denied; \
         (exec 3</dev/full) && echo full-ok || echo full-denied",
    );
    cg.add_process(child.pid).unwrap();
    child.go();
    let (_, out, err) = child.wait();
    assert!(
        !err.contains("denied") || err.contains("ermission") || err.contains("not permitted"),
        "{err}"
    );
    out.split_whitespace().map(String::from).collect()
}

fn attached(cg: &CgroupGuard) -> Vec<u32> {
    let dir = std::fs::File::open(&cg.paths()[""]).unwrap();
    berth_sys::bpf::prog_query(dir.as_fd(), berth_sys::bpf::ATTACH_CGROUP_DEVICE)
        .unwrap()
        .1
}

#[test]
fn ebpf_device_filter_enforces_and_is_replaced() {
    let Some(root) = unified() else { return };
    let h = Hierarchy::v2_at(&root);
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("bpf")));
    cg.create().unwrap();
    assert!(attached(&cg).is_empty());

    cg.apply(&resources(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
        ]}"#,
    ))
    .unwrap();
    assert_eq!(attached(&cg).len(), 1);
    assert_eq!(
        probe_devices(&cg),
        ["null-w-denied", "null-r-ok", "zero-ok", "full-denied"]
    );

    // Re-applying replaces the program (never two verdicts stacked for good).
    cg.apply(&resources(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"}
        ]}"#,
    ))
    .unwrap();
    assert_eq!(attached(&cg).len(), 1);
    assert_eq!(
        probe_devices(&cg),
        ["null-w-ok", "null-r-ok", "zero-denied", "full-ok"]
    );

    // Allow-all with one deny: a blacklist program.
    cg.apply(&resources(
        r#"{"devices": [
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 7, "access": "rwm"}
        ]}"#,
    ))
    .unwrap();
    assert_eq!(
        probe_devices(&cg),
        ["null-w-ok", "null-r-ok", "zero-ok", "full-denied"]
    );
}

#[test]
fn controllers_this_hierarchy_lacks_are_refused_before_writing() {
    let Some(root) = unified() else { return };
    let available = read(root.join("cgroup.controllers"));
    if available.split_whitespace().any(|c| c == "memory") {
        eprintln!("skipped: this cgroup2 hierarchy has the memory controller");
        return;
    }
    let h = Hierarchy::v2_at(&root);
    let cg = CgroupGuard::new(&h, &format!("/{}", unique("nomem")));
    cg.create().unwrap();
    let before = read(root.join("cgroup.subtree_control"));
    let e = cg
        .apply(&resources(r#"{"memory": {"limit": 67108864}}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("memory.limit")
            && e.to_string().contains("memory controller is not available"),
        "{e}"
    );
    assert_eq!(read(root.join("cgroup.subtree_control")), before);
}
