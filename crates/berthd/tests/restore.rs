//! Live restore: containers survive berthd being SIGKILLed; the restarted daemon re-attaches
//! (ps, logs -f, stop, wait work), learns exits that happened while it was down from
//! exit.json, and notices shims that died.

mod common;
use common::{Daemon, require};

#[test]
fn containers_survive_a_daemon_crash() {
    require!();
    let mut d = Daemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run", "-d", "--name", "berth-test-live", "--network", "none", "busybox", "sh", "-c",
        "trap 'echo bye; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-short",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-doomed",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-live"]);
    let doomed_id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "berth-test-doomed"]);

    d.kill9();
    // While berthd is down: one container exits on its own, one loses its shim.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let shim_pid: i32 = std::fs::read_to_string(
        d.exec_root()
            .join("containers")
            .join(&doomed_id)
            .join("shim.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let doomed_init: i32 = {
        let kids = std::fs::read_to_string(format!("/proc/{shim_pid}/task/{shim_pid}/children"))
            .unwrap_or_default();
        kids.split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    };
    let kill = |p: i32| {
        if let Some(p) = rustix::process::Pid::from_raw(p) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    };
    kill(shim_pid);
    kill(doomed_init);
    assert!(
        std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the container died with berthd"
    );

    d.spawn();
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "berth-test-live running", "{}", d.log());
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-live"]),
        pid.trim()
    );
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "berth-test-short"
        ]),
        "exited 4"
    );
    let doomed = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
        "berth-test-doomed",
    ]);
    assert!(doomed.starts_with("exited 255"), "{doomed}");
    // logs -f on the restored container follows until it stops
    let follow = std::process::Command::new(common::docker_cli())
        .args(["logs", "-f", "--tail", "1", "berth-test-live"])
        .env("DOCKER_HOST", d.host())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiter = std::process::Command::new(common::docker_cli())
        .args(["wait", "berth-test-live"])
        .env("DOCKER_HOST", d.host())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    d.docker_ok(&["stop", "berth-test-live"]);
    let followed = String::from_utf8_lossy(&follow.wait_with_output().unwrap().stdout).to_string();
    assert!(
        followed.contains("tick") && followed.trim_end().ends_with("bye"),
        "{followed}"
    );
    let code = String::from_utf8_lossy(&waiter.wait_with_output().unwrap().stdout)
        .trim()
        .to_string();
    assert_eq!(code, "7");
    d.docker_ok(&[
        "rm",
        "berth-test-live",
        "berth-test-short",
        "berth-test-doomed",
    ]);
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    require!();
    let d = Daemon::start();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_berthd"))
        .arg("--data-root")
        .arg(d.data_root())
        .arg("--exec-root")
        .arg(d.dir.path().join("other-run"))
        .arg("-H")
        .arg(format!(
            "unix://{}",
            d.dir.path().join("other.sock").display()
        ))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("another berthd") && err.contains(&d.pid().to_string()),
        "{err}"
    );
    // and a second one on its own roots runs side by side
    let d2 = Daemon::start();
    assert_eq!(d2.request("GET", "/_ping", None).unwrap().status, 200);
    assert_eq!(d.request("GET", "/_ping", None).unwrap().status, 200);
}

#[test]
fn a_stop_finishes_deleting_removed_containers() {
    require!();
    let mut d = Daemon::start();
    d.import_busybox();
    // An open event stream keeps a request task (and so the engine) alive at the stop: the
    // deletion must not rely on the engine being dropped.
    let mut events = d
        .docker_command(&["events"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A removed container's directories are renamed into the trash and deleted in the
    // background; many files make that deletion outlast the SIGTERM that follows at once.
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /d && cd /d && seq 1 30000 | xargs touch",
    ]);
    d.terminate();
    let _ = events.kill();
    let _ = events.wait();
    let trash = d.data_root().join("trash");
    let left: Vec<_> = std::fs::read_dir(&trash)
        .unwrap_or_else(|e| panic!("{}: {e}", trash.display()))
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", trash.display());
}

#[test]
fn an_auto_removed_container_stays_removed_after_a_daemon_crash() {
    require!();
    let mut d = Daemon::start();
    d.import_busybox();
    // The removal of an auto-remove container is committed without fsync, so a SIGKILL
    // right after it loses that commit: the record comes back, its directories do not.
    d.docker_ok(&[
        "run",
        "--rm",
        "--name",
        "berth-test-autoremoved",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    d.kill9();
    d.spawn();
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "", "{}", d.log());
    let containers = d.data_root().join("containers");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .unwrap_or_else(|e| panic!("{}: {e}", containers.display()))
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "left in {}: {left:?}",
        containers.display()
    );
    // The name is free again.
    d.docker_ok(&[
        "run",
        "--rm",
        "--name",
        "berth-test-autoremoved",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
}

/// Snapshot directories and links no record names, in a stopped daemon's data root (listed
/// before the store is opened: its open would remove them).
fn unrecorded_snapshots(data: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let list = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "l" && n != "empty")
            .collect();
        v.sort();
        v
    };
    let (links, dirs) = (
        list(&data.join("snapshots/l")),
        list(&data.join("snapshots")),
    );
    let store = berth_store::Store::open(data).unwrap();
    let recs = store.snapshots().unwrap();
    (
        links
            .into_iter()
            .filter(|l| !recs.iter().any(|r| &r.link == l))
            .collect(),
        dirs.into_iter()
            .filter(|d| !recs.iter().any(|r| &r.id == d))
            .collect(),
    )
}

/// The container slot (the next create's directories, made ahead of time; see
/// `berth_engine::slots`) is unreferenced state: after a SIGKILL the next start removes it,
/// never lists it as a container, and a clean stop removes it too.
#[test]
fn a_prepared_slot_is_removed_after_a_daemon_crash_and_at_a_stop() {
    require!();
    let mut d = Daemon::start();
    d.import_busybox();
    let containers = d.data_root().join("containers");
    let entries = |dir: &std::path::Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let only_kept = |id: &str| std::collections::BTreeSet::from([id.to_string()]);
    let nothing = (vec![], vec![]);
    let id = d.docker_ok(&[
        "create",
        "--name",
        "berth-test-kept",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    // The create (which found no slot) started the next one: a second container directory,
    // then its snapshot, a few ms later.
    common::wait_until("a slot is prepared", || entries(&containers).len() == 2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let slot_dirs = entries(&containers);

    d.kill9();
    d.spawn();
    assert_eq!(
        d.docker_ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]),
        format!("{id} berth-test-kept"),
        "{}",
        d.log()
    );
    assert_eq!(
        entries(&containers),
        only_kept(&id),
        "the slot outlived the crash (before: {slot_dirs:?})"
    );
    // Nothing was created since the restart, so there is no new slot yet.
    d.terminate();
    assert_eq!(
        unrecorded_snapshots(&d.data_root()),
        nothing,
        "the slot's snapshot outlived the crash"
    );
    d.spawn();

    // The restarted daemon creates and runs as before, prepares a new slot, and recycles
    // the removed container's directories as a second one; a SIGKILL leaves both to the
    // next start, which removes them.
    d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    common::wait_until("a slot is prepared and one recycled", || {
        entries(&containers).len() == 3
    });
    let slot_dirs = entries(&containers);
    // The recycled slot took the removed container's state directory too.
    let states = d.exec_root().join("containers");
    common::wait_until("the recycled slot's state directory", || {
        entries(&states).iter().any(|s| slot_dirs.contains(s))
    });
    d.kill9();
    d.spawn();
    assert_eq!(
        entries(&containers),
        only_kept(&id),
        "the slots outlived the crash (before: {slot_dirs:?})"
    );
    assert!(
        entries(&states).is_subset(&only_kept(&id)),
        "a slot's state directory outlived the crash: {:?}",
        entries(&states)
    );
    d.terminate();
    assert_eq!(
        unrecorded_snapshots(&d.data_root()),
        nothing,
        "the recycled snapshot outlived the crash"
    );
    d.spawn();
    d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    common::wait_until("a slot is prepared and one recycled", || {
        entries(&containers).len() == 3
    });
    d.docker_ok(&["start", "-a", "berth-test-kept"]);
    d.terminate();
    assert_eq!(
        entries(&containers),
        only_kept(&id),
        "a stop leaves a slot behind"
    );
    assert_eq!(unrecorded_snapshots(&d.data_root()), nothing);
    d.spawn();
    d.docker_ok(&["rm", "berth-test-kept"]);
}
