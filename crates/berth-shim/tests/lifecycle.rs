//! The shim binary against real containers (berth-container in-process): startup, logs,
//! exit codes, attach, start modes, waiters, signals, cleanup.

mod common;

use berth_shim::client::Client;
use berth_shim::stream::StreamType;
use berth_shim::{ExitInfo, Kind, Request, Status};
use common::*;
use std::io::Write;
use std::path::Path;

fn assert_cleaned(f: &Fixture) {
    assert!(
        !f.cfg.runtime_root.join(&f.id).exists(),
        "runtime state left behind"
    );
    assert_eq!(
        f.cgroup_dirs(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left behind"
    );
}

#[test]
fn run_now_logs_both_streams_and_reports_the_exit_code() {
    if !require_root("run_now_logs_both_streams_and_reports_the_exit_code") {
        return;
    }
    let f = Fixture::new(
        "exit3",
        &[
            "sh",
            "-c",
            "echo 'out <1> & \"q\"'; echo err >&2; printf partial; exit 3",
        ],
    );
    let mut r = f.spawn();
    let pid = r.pid();
    assert!(pid > 0);
    // started at once: the shim says so for berthd's restore (`started`)
    assert!(f.state_dir().join(berth_shim::STARTED_FILE).exists());
    let shim_pid: i32 = std::fs::read_to_string(f.state_dir().join("shim.pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shim_pid as u32, r.child.as_ref().unwrap().id());
    let comm = std::fs::read_to_string(format!("/proc/{shim_pid}/comm")).unwrap_or_default();
    let exit = wait(&f);
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert!(
        exit.exited_at.parse::<jiff::Timestamp>().is_ok(),
        "{}",
        exit.exited_at
    );
    // exit.json holds the same, and outlives the shim.
    assert!(r.wait_shim().success());
    assert_eq!(ExitInfo::load(&f.state_dir()).unwrap(), Some(exit));
    if !comm.is_empty() {
        assert_eq!(comm.trim(), "berth-shim");
    }
    let entries = f.log_entries();
    let mut out: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.stream.as_str(), e.log.as_str()))
        .collect();
    out.sort();
    assert_eq!(
        out,
        [
            ("stderr", "err\n"),
            ("stdout", "out <1> & \"q\"\n"),
            ("stdout", "partial")
        ]
    );
    for e in &entries {
        let t: jiff::Timestamp = e.time.parse().unwrap();
        assert!(e.time.ends_with('Z'));
        assert!(t <= jiff::Timestamp::now());
    }
    // Docker's exact bytes: HTML characters escaped, field order log, stream, time.
    let raw = std::fs::read_to_string(f.log_path()).unwrap();
    assert!(
        raw.contains(r#"{"log":"out \u003c1\u003e \u0026 \"q\"\n","stream":"stdout","time":""#),
        "{raw}"
    );
    assert_cleaned(&f);
}

#[test]
fn exit_by_signal_is_128_plus_signal_and_kill_after_exit_is_a_conflict() {
    if !require_root("exit_by_signal_is_128_plus_signal_and_kill_after_exit_is_a_conflict") {
        return;
    }
    let f = Fixture::new("sig", &["sleep", "1000"]);
    let mut r = f.spawn();
    let st = f.client().state().unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.pid, r.pid());
    assert!(st.started_at.is_some());
    // Pipelined on one connection: the kill after the wait runs once the container is gone.
    let mut c = f.client();
    c.send_raw(b"{\"op\":\"wait\"}\n{\"op\":\"kill\",\"signal\":9}\n{\"op\":\"state\"}\n")
        .unwrap();
    f.client().kill(9, false).unwrap();
    let exit: ExitInfo = berth_shim::parse_reply(&c.read_line().unwrap()).unwrap();
    assert_eq!(exit.exit_code, 137);
    let e = berth_shim::parse_reply::<berth_shim::Empty>(&c.read_line().unwrap()).unwrap_err();
    assert_eq!(e.kind, Kind::Conflict);
    assert!(e.message.contains("is not running"), "{}", e.message);
    let st: berth_shim::StateReply = berth_shim::parse_reply(&c.read_line().unwrap()).unwrap();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit.unwrap().exit_code, 137);
    drop(c);
    assert!(r.wait_shim().success());
    assert_cleaned(&f);
}

#[test]
fn sigterm_to_the_shim_is_forwarded_to_the_container() {
    if !require_root("sigterm_to_the_shim_is_forwarded_to_the_container") {
        return;
    }
    // PID 1 of a pid namespace only gets the signals it handles (like docker stop).
    let f = Fixture::new(
        "term",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo trapped; while true; do sleep 0.05; done",
        ],
    );
    let mut r = f.spawn();
    let mut waiter = f.client();
    waiter.send_raw(b"{\"op\":\"wait\"}\n").unwrap();
    // A TERM before the trap is set would be dropped (PID 1 ignores unhandled signals).
    eventually("the container's TERM trap", || {
        f.log_entries().iter().any(|e| e.log == "trapped\n")
    });
    let shim = rustix::process::Pid::from_raw(r.child.as_ref().unwrap().id() as i32).unwrap();
    rustix::process::kill_process(shim, rustix::process::Signal::TERM).unwrap();
    let exit: ExitInfo = berth_shim::parse_reply(&waiter.read_line().unwrap()).unwrap();
    assert_eq!(exit.exit_code, 7);
    assert!(r.wait_shim().success());
}

#[test]
fn created_container_waits_for_start_and_attach_sees_all_output() {
    if !require_root("created_container_waits_for_start_and_attach_sees_all_output") {
        return;
    }
    let mut f = Fixture::new("created", &["sh", "-c", "echo one; echo two >&2; exit 0"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let st = f.client().state().unwrap();
    assert_eq!(st.status, Status::Created);
    assert!(st.started_at.is_none());
    // berthd's restore tells "started" from "created" by this file (its first start is
    // recorded without fsync): absent until the start, there before the start answers.
    let marker = f.state_dir().join(berth_shim::STARTED_FILE);
    assert!(!marker.exists(), "a created container is not started");
    // docker run's order: attach, wait, start.
    let attached = f.client().attach(false, true, true).unwrap();
    let stdout_only = f.client().attach(false, true, false).unwrap();
    let mut waiters: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = f.client();
            c.send_raw(b"{\"op\":\"wait\"}\n").unwrap();
            c
        })
        .collect();
    let started = f.client().start().unwrap();
    assert!(started.started_at.parse::<jiff::Timestamp>().is_ok());
    assert!(
        marker.exists(),
        "start answered before {} was made",
        marker.display()
    );
    // A second start never runs it again: "already running", "has exited", or (once the
    // short-lived container is gone) no shim at all.
    if let Ok(mut c) = Client::connect(&f.state_dir()) {
        match c.start() {
            Err(berth_shim::client::ClientError::Shim(e)) => {
                assert!(matches!(e.kind, Kind::NotModified | Kind::Conflict), "{e}")
            }
            Err(berth_shim::client::ClientError::Io { .. }) => {}
            Ok(r) => panic!("started twice: {r:?}"),
        }
    }
    let mut frames = attached.frames();
    let mut got = Vec::new();
    while let Some((s, p)) = frames.next_frame().unwrap() {
        got.push((s, p));
    }
    let out: Vec<u8> = got
        .iter()
        .filter(|(s, _)| *s == StreamType::Stdout)
        .flat_map(|(_, p)| p.clone())
        .collect();
    let err: Vec<u8> = got
        .iter()
        .filter(|(s, _)| *s == StreamType::Stderr)
        .flat_map(|(_, p)| p.clone())
        .collect();
    assert_eq!(out, b"one\n");
    assert_eq!(err, b"two\n");
    // A second client gets the same output, only the stream it asked for.
    let (out2, err2) = stdout_only.frames().read_to_end().unwrap();
    assert_eq!(
        (out2.as_slice(), err2.as_slice()),
        (&b"one\n"[..], &b""[..])
    );
    let exits: Vec<ExitInfo> = waiters
        .iter_mut()
        .map(|c| berth_shim::parse_reply(&c.read_line().unwrap()).unwrap())
        .collect();
    assert!(exits.iter().all(|e| e == &exits[0] && e.exit_code == 0));
    assert!(r.wait_shim().success());
    assert_cleaned(&f);
}

/// berthd's requests for `docker run`, each on its own connection, in its order: the
/// monitor's wait, the attach (stdout and stderr), the start; the replies are not read.
fn send_run_requests(f: &Fixture) -> (Client, Client, Client) {
    let mut waiter = f.client();
    waiter.send(&Request::Wait).unwrap();
    let mut attach = f.client();
    attach
        .send(&Request::Attach {
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .unwrap();
    let mut start = f.client();
    start.send(&Request::Start).unwrap();
    (waiter, attach, start)
}

#[test]
fn requests_queued_before_the_loop_are_served_in_arrival_order() {
    if !require_root("requests_queued_before_the_loop_are_served_in_arrival_order") {
        return;
    }
    let mut f = Fixture::new("queued", &["sh", "-c", "echo one; echo two >&2; exit 3"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    assert!(r.startup.is_ok(), "{:?}", r.startup);
    // Stopped right after its startup line, the shim cannot have served anything: the
    // connections below wait in the listen backlog with their requests, as berthd's do
    // while a shim finishes its setup after the line (berthd's order: the monitor's wait,
    // the attach, then the start once the attach request is written).
    let shim = rustix::process::Pid::from_raw(r.child.as_ref().unwrap().id() as i32).unwrap();
    rustix::process::kill_process(shim, rustix::process::Signal::STOP).unwrap();
    let (mut waiter, attach, mut start) = send_run_requests(&f);
    rustix::process::kill_process(shim, rustix::process::Signal::CONT).unwrap();
    let started: berth_shim::StartReply = start.reply().unwrap();
    assert!(started.started_at.parse::<jiff::Timestamp>().is_ok());
    // Served before the start: the container's whole output reached the attach.
    let (out, err) = attach.attached().unwrap().frames().read_to_end().unwrap();
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"one\n"[..], &b"two\n"[..])
    );
    let exit: ExitInfo = waiter.reply().unwrap();
    assert_eq!(exit.exit_code, 3);
    assert!(r.wait_shim().success());
    assert_cleaned(&f);
}

#[test]
fn attach_stdin_reaches_the_container_and_half_close_ends_it_with_stdin_once() {
    if !require_root("attach_stdin_reaches_the_container_and_half_close_ends_it_with_stdin_once") {
        return;
    }
    let mut f = Fixture::new("stdin", &["sh", "-c", "cat; echo done"]);
    f.cfg.start_now = false;
    f.cfg.open_stdin = true;
    f.cfg.stdin_once = true;
    let mut r = f.spawn();
    let mut a = f.client().attach(true, true, true).unwrap();
    f.client().start().unwrap();
    a.write_all(b"hello\nworld\n").unwrap();
    a.close_stdin().unwrap();
    let (out, err) = a.frames().read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "hello\nworld\ndone\n");
    assert!(err.is_empty());
    assert_eq!(wait(&f).exit_code, 0);
    assert!(r.wait_shim().success());
    // The log got it too.
    let logged: String = f.log_entries().iter().map(|e| e.log.clone()).collect();
    assert_eq!(logged, "hello\nworld\ndone\n");
}

#[test]
fn without_open_stdin_the_container_reads_dev_null() {
    if !require_root("without_open_stdin_the_container_reads_dev_null") {
        return;
    }
    let f = Fixture::new("nostdin", &["sh", "-c", "cat; echo eof"]);
    let mut r = f.spawn();
    assert_eq!(wait(&f).exit_code, 0);
    r.wait_shim();
    let logged: String = f.log_entries().iter().map(|e| e.log.clone()).collect();
    assert_eq!(logged, "eof\n");
}

#[test]
fn shutdown_removes_a_created_container_and_answers_waiters() {
    if !require_root("shutdown_removes_a_created_container_and_answers_waiters") {
        return;
    }
    let mut f = Fixture::new("shutdown", &["true"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    // Held by the shim: no runtime state directory (see `created_container_makes_...`).
    assert!(!f.cfg.runtime_root.join(&f.id).exists());
    let mut waiter = f.client();
    waiter.send_raw(b"{\"op\":\"wait\"}\n").unwrap();
    f.client().state().unwrap(); // the wait is registered before the shutdown
    f.client().shutdown().unwrap();
    let e = berth_shim::parse_reply::<ExitInfo>(&waiter.read_line().unwrap()).unwrap_err();
    assert_eq!(e.kind, Kind::Conflict);
    assert!(
        e.message.contains("removed before it started"),
        "{}",
        e.message
    );
    assert!(r.wait_shim().success());
    assert!(!f.state_dir().join("exit.json").exists());
    assert!(!f.state_dir().join(berth_shim::STARTED_FILE).exists());
    assert_cleaned(&f);
}

#[test]
fn shutdown_of_a_running_container_is_refused() {
    if !require_root("shutdown_of_a_running_container_is_refused") {
        return;
    }
    let f = Fixture::new("shutdown-running", &["sleep", "1000"]);
    let mut r = f.spawn();
    let e = f.client().shutdown().unwrap_err();
    assert!(e.to_string().contains("kill it first"), "{e}");
    f.client().kill(9, true).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    r.wait_shim();
    assert_cleaned(&f);
}

#[test]
fn init_option_runs_the_app_under_the_built_in_init() {
    if !require_root("init_option_runs_the_app_under_the_built_in_init") {
        return;
    }
    let mut f = Fixture::new("init", &["sh", "-c", "echo $$; exit 5"]);
    f.cfg.init = true;
    let mut r = f.spawn();
    assert_eq!(wait(&f).exit_code, 5);
    r.wait_shim();
    let logged: String = f.log_entries().iter().map(|e| e.log.clone()).collect();
    // The app is not PID 1: the init is.
    assert_ne!(logged.trim(), "1", "{logged}");
}

#[test]
fn stats_and_update_reach_the_cgroup() {
    if !require_root("stats_and_update_reach_the_cgroup") {
        return;
    }
    let f = Fixture::new("stats", &["sleep", "1000"]);
    let mut r = f.spawn();
    let s = f.client().stats().unwrap();
    assert!(s.pids.contains(&r.pid()), "{:?}", s.pids);
    assert!(s.stats.get("memory").is_some(), "{}", s.stats);
    let res: berth_oci::spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": 42}})).unwrap();
    f.client().update(res).unwrap();
    let max = Path::new("/sys/fs/cgroup/pids")
        .join(&f.id)
        .join("pids.max");
    if max.exists() {
        assert_eq!(std::fs::read_to_string(max).unwrap().trim(), "42");
    }
    f.client().kill(9, false).unwrap();
    wait(&f);
    r.wait_shim();
    assert_cleaned(&f);
}

#[test]
fn pause_and_resume_freeze_the_container() {
    if !require_root("pause_and_resume_freeze_the_container") {
        return;
    }
    let f = Fixture::new("pause", &["sleep", "1000"]);
    let mut r = f.spawn();
    let freezer = Path::new("/sys/fs/cgroup/freezer")
        .join(&f.id)
        .join("freezer.state");
    f.client().pause().unwrap();
    assert_eq!(f.client().state().unwrap().status, Status::Paused);
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    }
    assert!(f.client().pause().is_err());
    f.client().resume().unwrap();
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    }
    assert!(f.client().resume().is_err());
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    r.wait_shim();
}

#[test]
fn oom_kill_is_reported() {
    if !require_root("oom_kill_is_reported") {
        return;
    }
    let mut f = Fixture::new("oom", &["sh", "-c", "tail /dev/zero"]);
    f.spec["linux"]["resources"]["memory"] =
        serde_json::json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    let mut r = f.spawn();
    let exit = wait(&f);
    assert_eq!(exit.exit_code, 137, "{exit:?}");
    assert!(exit.oom_killed, "{exit:?}");
    r.wait_shim();
    assert_cleaned(&f);
}

#[test]
fn log_rotation_keeps_max_file_files() {
    if !require_root("log_rotation_keeps_max_file_files") {
        return;
    }
    let mut f = Fixture::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    f.cfg.log.as_mut().unwrap().max_size = 1000;
    f.cfg.log.as_mut().unwrap().max_file = 3;
    let mut r = f.spawn();
    wait(&f);
    r.wait_shim();
    let log = f.log_path();
    let rotated = |n: u32| {
        let mut p = log.clone().into_os_string();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    assert!(log.exists() && rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());
    // The newest lines are in the current file, in order, each a valid entry.
    let cur = f.log_entries();
    assert_eq!(cur.last().unwrap().log, "line 199\n");
    let older: Vec<berth_shim::jsonlog::LogEntry> = std::fs::read_to_string(rotated(1))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_older: u32 = older.last().unwrap().log["line ".len()..]
        .trim()
        .parse()
        .unwrap();
    let first_cur: u32 = cur[0].log["line ".len()..].trim().parse().unwrap();
    assert_eq!(last_older + 1, first_cur);
    assert!(std::fs::metadata(rotated(1)).unwrap().len() >= 1000);
}

#[test]
fn long_lines_are_logged_in_16k_pieces() {
    if !require_root("long_lines_are_logged_in_16k_pieces") {
        return;
    }
    let f = Fixture::new(
        "longline",
        &[
            "sh",
            "-c",
            "head -c 20000 /dev/zero | tr '\\0' a; echo; echo short",
        ],
    );
    let mut r = f.spawn();
    wait(&f);
    r.wait_shim();
    let e = f.log_entries();
    assert_eq!(
        e.len(),
        3,
        "{:?}",
        e.iter().map(|x| x.log.len()).collect::<Vec<_>>()
    );
    assert_eq!(e[0].log.len(), 16384);
    assert!(!e[0].log.ends_with('\n'));
    assert_eq!(e[1].log.len(), 20000 - 16384 + 1);
    assert!(e[1].log.ends_with('\n'));
    assert_eq!(e[0].time, e[1].time, "pieces of one line share its time");
    assert_eq!(e[2].log, "short\n");
}

#[test]
fn a_client_that_does_not_read_is_dropped_without_blocking_the_container() {
    if !require_root("a_client_that_does_not_read_is_dropped_without_blocking_the_container") {
        return;
    }
    let mut f = Fixture::new(
        "slow",
        &[
            "sh",
            "-c",
            "head -c 8000000 /dev/zero | tr '\\0' x; echo; echo end",
        ],
    );
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let stuck = f.client().attach(false, true, true).unwrap();
    f.client().start().unwrap();
    let exit = wait(&f);
    assert_eq!(exit.exit_code, 0);
    r.wait_shim();
    drop(stuck);
    let e = f.log_entries();
    assert_eq!(e.last().unwrap().log, "end\n");
    let total: usize = e.iter().map(|x| x.log.len()).sum();
    assert_eq!(total, 8_000_000 + 1 + 4);
}

/// Without a pid namespace of its own, a container's init can exit while a process it
/// started keeps running and holds its stdout: the shim SIGKILLs what is left in the cgroup,
/// so the output ends and the exit is reported without waiting for the drain timeout, with
/// the leftover already dead. (With a pid namespace the kernel does that, and the shim
/// skips listing the cgroup.)
#[test]
fn leftovers_without_a_pid_namespace_are_killed_at_exit() {
    if !require_root("leftovers_without_a_pid_namespace_are_killed_at_exit") {
        return;
    }
    let mut f = Fixture::new(
        "leftover",
        &["sh", "-c", "sleep 1000 & echo $! > /bg; exit 2"],
    );
    f.spec["linux"]["namespaces"] = serde_json::json!([
        {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
    ]);
    let mut r = f.spawn();
    let exit = wait(&f);
    assert_eq!(exit.exit_code, 2);
    let bg: i32 = std::fs::read_to_string(f.bundle().join("rootfs/bg"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed at the exit (its stdout, our pipe, closes when it dies; the shim reports
    // the exit once the output is drained or its drain deadline passed, which a loaded
    // machine can reach first): gone or a zombie within two seconds, where `sleep 1000`
    // alone would run on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut stat;
    loop {
        stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z ") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "the leftover {bg} still runs after the exit report: {stat}"
    );
    assert!(r.wait_shim().success());
}

/// The files one container's life creates, by name: the exec root's inodes are on every
/// start's path (on this machine's journal-less ext4, each allocation scans recently deleted
/// inodes). The built-in runtime's container is held by the shim: no runtime state
/// directory, `state.json` or `exec.fifo`; `started` is a link to `shim.pid`, and
/// `exit.json` takes over `shim.json`'s inode.
#[test]
fn created_container_makes_only_the_shims_files() {
    use std::os::unix::fs::MetadataExt;
    if !require_root("created_container_makes_only_the_shims_files") {
        return;
    }
    let mut f = Fixture::new("files", &["true"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(
        names(&f.state_dir()),
        ["c-json.log", "shim.json", "shim.pid", "shim.sock"]
    );
    assert!(!f.cfg.runtime_root.join(&f.id).exists());
    assert!(names(&f.cfg.runtime_root).is_empty());
    // Before the start: `true` may exit, and exit.json replace shim.json, before start returns.
    let config = std::fs::metadata(f.state_dir().join(berth_shim::CONFIG_FILE)).unwrap();
    let a = f.client().attach(false, true, true).unwrap();
    f.client().start().unwrap();
    let started = std::fs::metadata(f.state_dir().join(berth_shim::STARTED_FILE)).unwrap();
    let pid_file = std::fs::metadata(f.state_dir().join(berth_shim::PID_FILE)).unwrap();
    assert_eq!(
        started.ino(),
        pid_file.ino(),
        "started is a link to shim.pid"
    );
    drop(a);
    assert_eq!(wait(&f).exit_code, 0);
    assert!(r.wait_shim().success());
    // exit.json took over shim.json's inode (read once at setup): no allocation.
    assert_eq!(
        names(&f.state_dir()),
        [
            "c-json.log",
            "exit.json",
            "shim.pid",
            "shim.sock",
            "started"
        ]
    );
    let exit = std::fs::metadata(f.state_dir().join(berth_shim::EXIT_FILE)).unwrap();
    assert_eq!(
        exit.ino(),
        config.ino(),
        "exit.json reuses shim.json's inode"
    );
    assert_eq!(
        ExitInfo::load(&f.state_dir()).unwrap().unwrap().exit_code,
        0
    );
    assert_cleaned(&f);
}

/// A previous shim's `shim.pid`, set aside by berthd as `shim.pid.prev`, is taken back and
/// written over: same inode (none allocated or freed), the new pid only, even when the old
/// content was longer.
#[test]
fn the_previous_pid_file_is_written_over() {
    use std::os::unix::fs::MetadataExt;
    if !require_root("the_previous_pid_file_is_written_over") {
        return;
    }
    let mut f = Fixture::new("pidprev", &["true"]);
    f.cfg.start_now = false;
    let prev = f.state_dir().join(berth_shim::PREVIOUS_PID_FILE);
    std::fs::write(&prev, "4194303999\n").unwrap();
    let prev_ino = std::fs::metadata(&prev).unwrap().ino();
    let mut r = f.spawn();
    let shim_pid = r.child.as_ref().unwrap().id();
    let pid_file = f.state_dir().join(berth_shim::PID_FILE);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        shim_pid.to_string()
    );
    assert_eq!(
        std::fs::metadata(&pid_file).unwrap().ino(),
        prev_ino,
        "shim.pid is the previous one's inode"
    );
    assert!(!prev.exists(), "shim.pid.prev was taken");
    f.client().start().unwrap();
    assert_eq!(wait(&f).exit_code, 0);
    assert!(r.wait_shim().success());
}

/// The init of a created container waits on a pipe the shim holds: a shim killed before
/// the start closes it, and the init exits instead of waiting forever (with the exec
/// fifo it held open itself, it waited forever).
#[test]
fn a_created_container_ends_with_its_killed_shim() {
    if !require_root("a_created_container_ends_with_its_killed_shim") {
        return;
    }
    let mut f = Fixture::new("gate", &["sh", "-c", "echo ran; sleep 100"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let pid = r.pid();
    assert_eq!(f.client().state().unwrap().status, Status::Created);
    let shim = r.child.as_mut().unwrap();
    shim.kill().unwrap();
    shim.wait().unwrap();
    eventually("the init to exit", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z ") || s.contains(") X "))
            .unwrap_or(true)
    });
    let logged: String = f.log_entries().iter().map(|e| e.log.clone()).collect();
    assert_eq!(logged, "", "the app never ran");
}

/// Spawns the shim as berthd does for `docker run --rm` (`listening_notice`), reads the
/// notice, and returns the startup pipe (non-blocking) with the shim's guard. The spec's
/// `createRuntime` hook holds the create for 0.3 s after the socket is bound, so requests
/// sent right after the notice reach the shim before its container exists.
fn spawn_listening(f: &mut Fixture) -> (std::process::ChildStdout, Running) {
    f.cfg.start_now = false;
    f.cfg.listening_notice = true;
    f.spec["hooks"] = serde_json::json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 0.3"]}]
    });
    f.write();
    let mut child = std::process::Command::new(shim_bin())
        .arg(f.state_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let notice = read_line(&mut out);
    assert!(
        berth_shim::Startup::is_listening(&notice),
        "the notice comes first: {:?}",
        String::from_utf8_lossy(&notice)
    );
    rustix::io::ioctl_fionbio(&out, true).unwrap();
    let running = Running {
        guard: Guard::new(f, child.id() as i32),
        child: Some(child),
        startup: Err(berth_shim::ShimError::internal("not read yet")),
    };
    (out, running)
}

/// The startup line, once it comes (the pipe is non-blocking).
fn startup_line(out: &mut std::process::ChildStdout) -> Vec<u8> {
    use std::io::Read;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match out.read(&mut b) {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Err(e) => panic!("reading the startup pipe: {e}"),
        }
    }
    line
}

#[test]
fn requests_sent_after_the_listening_notice_are_served_once_the_container_exists() {
    if !require_root(
        "requests_sent_after_the_listening_notice_are_served_once_the_container_exists",
    ) {
        return;
    }
    let mut f = Fixture::new("listening", &["sh", "-c", "echo one; echo two >&2; exit 5"]);
    let (mut out, mut r) = spawn_listening(&mut f);
    // berthd's order for `docker run --rm`: the monitor's wait, the attach, the start.
    let (mut waiter, attach, mut start) = send_run_requests(&f);
    let mut probe = [0u8; 1];
    assert!(
        matches!(std::io::Read::read(&mut out, &mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the requests went before the container existed (no startup line yet)"
    );
    let (pid, _) = berth_shim::Startup::parse(&startup_line(&mut out)).expect("created");
    assert!(pid > 0);
    let started: berth_shim::StartReply = start.reply().unwrap();
    assert!(started.started_at.parse::<jiff::Timestamp>().is_ok());
    let (o, e) = attach.attached().unwrap().frames().read_to_end().unwrap();
    assert_eq!((o.as_slice(), e.as_slice()), (&b"one\n"[..], &b"two\n"[..]));
    let exit: ExitInfo = waiter.reply().unwrap();
    assert_eq!(exit.exit_code, 5);
    assert!(r.wait_shim().success());
    assert_cleaned(&f);
}

#[test]
fn requests_sent_after_the_listening_notice_fail_with_a_create_that_fails() {
    if !require_root("requests_sent_after_the_listening_notice_fail_with_a_create_that_fails") {
        return;
    }
    let mut f = Fixture::new("listening-bad", &["/berth-test-no-such-binary"]);
    let (mut out, mut r) = spawn_listening(&mut f);
    let (mut waiter, attach, mut start) = send_run_requests(&f);
    let err = berth_shim::Startup::parse(&startup_line(&mut out)).expect_err("the create fails");
    assert!(err.message.contains("no such file or directory"), "{err}");
    // The queued requests end with the shim, unanswered: the spawner reports the error.
    assert!(start.reply::<berth_shim::StartReply>().is_err());
    assert!(attach.attached().is_err());
    assert!(waiter.reply::<ExitInfo>().is_err());
    assert!(!r.wait_shim().success());
    assert_cleaned(&f);
}

/// Removes a test's cgroup parent in every hierarchy, sub-cgroups (spares) first.
struct CgroupParent(String);

impl CgroupParent {
    fn spares(&self) -> Vec<String> {
        std::fs::read_dir(Path::new("/sys/fs/cgroup/memory").join(&self.0))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("spare-"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = h.path().join(&self.0);
            for sub in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// With `recycle_cgroup`, an exited container's cgroup is set aside as a spare
/// (docs/cgroups.md), except after an `update` changed its limits.
#[test]
fn an_updated_cgroup_is_not_set_aside() {
    if !require_root("an_updated_cgroup_is_not_set_aside") {
        return;
    }
    if !Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        eprintln!("skipped: an_updated_cgroup_is_not_set_aside: no cgroup v1 memory hierarchy");
        return;
    }
    let parent = CgroupParent(unique_id("spares"));
    let fixture = |name: &str, args: &[&str]| {
        let mut f = Fixture::new(name, args);
        f.spec["linux"]["cgroupsPath"] = format!("/{}/{}", parent.0, f.id).into();
        f.cfg.recycle_cgroup = true;
        f
    };
    let f = fixture("updated", &["sleep", "1000"]);
    let mut r = f.spawn();
    let res: berth_oci::spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": 42}})).unwrap();
    f.client().update(res).unwrap();
    f.client().kill(9, false).unwrap();
    wait(&f);
    r.wait_shim();
    assert!(parent.spares().is_empty(), "{:?}", parent.spares());
    let own = Path::new("/sys/fs/cgroup/memory")
        .join(&parent.0)
        .join(&f.id);
    assert!(!own.exists(), "{} stays", own.display());

    // The control: the same container without the update leaves a spare.
    let g = fixture("not-updated", &["sleep", "1000"]);
    let mut r = g.spawn();
    g.client().kill(9, false).unwrap();
    wait(&g);
    r.wait_shim();
    assert_eq!(parent.spares().len(), 1, "{:?}", parent.spares());
}
