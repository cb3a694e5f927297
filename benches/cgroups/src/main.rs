//! `berth-cgroups-bench IMPL N`: N times, the cgroup work of one container start and delete
//! on this host: create the cgroup, move a process in, apply Docker-like resources (default
//! device rules, memory, cpu shares, pids), move the process out again, remove the cgroup.
//! IMPL is `berth` (berth-cgroups) or `libcgroups` (youki's). Cgroups are named
//! `/berth-test-bench-<pid>-<i>`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

const RESOURCES: &str = r#"{
    "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
    ],
    "memory": {"limit": 268435456},
    "cpu": {"shares": 512},
    "pids": {"limit": 100}
}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("berth");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let res: berth_oci::spec::runtime::LinuxResources = serde_json::from_str(RESOURCES).unwrap();
    let mut child = Command::new("sleep")
        .arg("1000")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let pid = child.id() as i32;
    // Where to move the process back to (its original cgroups), per hierarchy.
    let host = berth_cgroups::Hierarchy::detect().unwrap();
    let mounts = host.v1_controllers();
    let home: Vec<PathBuf> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let ctrl = ctrl.split(',').next()?;
            let mount = if ctrl.is_empty() {
                host.unified_mount()?.to_path_buf()
            } else {
                mounts.get(ctrl)?.clone()
            };
            Some(mount.join(path.trim_start_matches('/')))
        })
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    let go_home = || {
        for h in &home {
            std::fs::write(h.join("cgroup.procs"), pid.to_string()).unwrap();
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // berth detects once per process (as the shim and runtime do); libcgroups per manager.
        for i in 0..n {
            let path = format!("/berth-test-bench-{}-{i}", std::process::id());
            match which {
                "berth" => {
                    let cg = host
                        .manager(&berth_cgroups::CgroupPath::parse(&path).unwrap())
                        .unwrap();
                    cg.create().unwrap();
                    cg.add_process(pid).unwrap();
                    cg.apply(&res).unwrap();
                    go_home();
                    cg.destroy().unwrap();
                }
                "libcgroups" => {
                    use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
                    let cg = libcgroups::common::create_cgroup_manager(CgroupConfig {
                        cgroup_path: PathBuf::from(&path),
                        systemd_cgroup: false,
                        container_name: format!("bench{i}"),
                    })
                    .unwrap();
                    cg.add_task(nix::unistd::Pid::from_raw(pid)).unwrap();
                    cg.apply(&ControllerOpt {
                        resources: &res,
                        disable_oom_killer: false,
                        oom_score_adj: None,
                        freezer_state: None,
                    })
                    .unwrap();
                    go_home();
                    cg.remove().unwrap();
                }
                other => panic!("unknown implementation {other:?} (berth|libcgroups)"),
            }
        }
    }));
    let _ = child.kill();
    let _ = child.wait();
    if result.is_err() {
        std::process::exit(1);
    }
}
