//! Terminals, overlay root filesystems, runc as the external runtime, the fd-3 startup
//! channel, and survival of the spawner's death (live restore).

mod common;

use berth_shim::Status;
use berth_shim::stream::StreamType;
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Reads raw bytes until `needle` shows up (or the stream ends).
fn read_until(r: &mut impl Read, seen: &mut Vec<u8>, needle: &str) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        if String::from_utf8_lossy(seen).contains(needle) {
            return true;
        }
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn is_mounted(path: &Path) -> bool {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(canon.to_str().unwrap()))
}

fn tty_fixture(name: &str, args: &[&str]) -> Fixture {
    let mut f = Fixture::new(name, args);
    f.cfg.tty = true;
    f.cfg.open_stdin = true;
    f.cfg.start_now = false;
    f.cfg.console_size = Some(berth_shim::WindowSize {
        height: 24,
        width: 80,
    });
    f.spec["process"]["terminal"] = serde_json::json!(true);
    f
}

fn check_tty_session(f: &Fixture) {
    let mut a = f.client().attach(true, true, true).unwrap();
    a.stream()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    f.client().start().unwrap();
    let mut seen = Vec::new();
    a.write_all(b"x\n").unwrap();
    assert!(
        read_until(&mut a, &mut seen, "24 80"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    f.client().resize(30, 100).unwrap();
    a.write_all(b"y\n").unwrap();
    assert!(
        read_until(&mut a, &mut seen, "30 100"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    // Raw bytes, not multiplexed frames; the terminal turned "\n" into "\r\n".
    assert_ne!(&seen[..4.min(seen.len())], &[1, 0, 0, 0]);
    assert!(String::from_utf8_lossy(&seen).contains("\r\n"));
    let exit = wait(f);
    assert_eq!(exit.exit_code, 2);
    // Everything a tty prints is logged as stdout.
    let entries = f.log_entries();
    assert!(entries.iter().all(|e| e.stream == "stdout"));
    let logged: String = entries.iter().map(|e| e.log.clone()).collect();
    assert!(logged.contains("30 100"), "{logged}");
}

const TTY_SCRIPT: &[&str] = &["sh", "-c", "read a; stty size; read b; stty size; exit 2"];

#[test]
fn tty_output_is_raw_and_resize_reaches_the_terminal() {
    if !require_root("tty_output_is_raw_and_resize_reaches_the_terminal") {
        return;
    }
    let f = tty_fixture("tty", TTY_SCRIPT);
    let mut r = f.spawn();
    check_tty_session(&f);
    assert!(r.wait_shim().success());
}

#[test]
fn resize_without_a_terminal_is_invalid() {
    if !require_root("resize_without_a_terminal_is_invalid") {
        return;
    }
    let f = Fixture::new("notty", &["sleep", "100"]);
    let mut r = f.spawn();
    let e = f.client().resize(10, 10).unwrap_err();
    assert!(e.to_string().contains("no terminal"), "{e}");
    f.client().kill(9, false).unwrap();
    wait(&f);
    r.wait_shim();
}

#[test]
fn runc_runs_the_container_through_its_cli() {
    if !require_root("runc_runs_the_container_through_its_cli") {
        return;
    }
    let mut f = Fixture::new("runc", &["sh", "-c", "echo out; echo err >&2; exit 4"]);
    if !f.use_runc() {
        return;
    }
    f.cfg.start_now = false;
    let mut r = f.spawn();
    assert_eq!(f.client().state().unwrap().status, Status::Created);
    assert!(f.cfg.runtime_root.join(&f.id).join("state.json").exists());
    let a = f.client().attach(false, true, true).unwrap();
    f.client().start().unwrap();
    let mut frames = a.frames();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((s, p)) = frames.next_frame().unwrap() {
        match s {
            StreamType::Stderr => err.extend(p),
            _ => out.extend(p),
        }
    }
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(wait(&f).exit_code, 4);
    assert!(r.wait_shim().success());
    // runc delete ran: no state, no cgroup.
    assert!(!f.cfg.runtime_root.join(&f.id).exists());
    assert!(f.cgroup_dirs().is_empty(), "{:?}", f.cgroup_dirs());
}

#[test]
fn runc_with_a_terminal_hands_the_pty_over_the_console_socket() {
    if !require_root("runc_with_a_terminal_hands_the_pty_over_the_console_socket") {
        return;
    }
    let mut f = tty_fixture("runc-tty", TTY_SCRIPT);
    if !f.use_runc() {
        return;
    }
    let mut r = f.spawn();
    check_tty_session(&f);
    assert!(r.wait_shim().success());
    assert!(!f.state_dir().join("console.sock").exists());
}

#[test]
fn runc_kill_and_pause_work_on_the_external_runtime() {
    if !require_root("runc_kill_and_pause_work_on_the_external_runtime") {
        return;
    }
    let mut f = Fixture::new("runc-kill", &["sleep", "1000"]);
    if !f.use_runc() {
        return;
    }
    let mut r = f.spawn();
    f.client().pause().unwrap();
    assert_eq!(f.client().state().unwrap().status, Status::Paused);
    f.client().resume().unwrap();
    let s = f.client().stats().unwrap();
    assert!(s.pids.contains(&r.pid()), "{:?}", s.pids);
    // `runc update --resources -` with the JSON on stdin.
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
    assert_eq!(wait(&f).exit_code, 137);
    assert!(r.wait_shim().success());
    assert!(!f.cfg.runtime_root.join(&f.id).exists());
}

fn overlay_run(f: &mut Fixture) {
    let (lower, upper) = f.use_overlay();
    let mut r = f.spawn();
    assert_eq!(wait(f).exit_code, 0);
    assert!(r.wait_shim().success());
    assert_eq!(
        std::fs::read_to_string(upper.join("hello")).unwrap(),
        "data\n"
    );
    assert!(!lower.join("hello").exists(), "the lower layer was written");
    assert!(
        !is_mounted(&f.bundle().join("rootfs")),
        "overlay left mounted"
    );
    let logged: String = f.log_entries().iter().map(|e| e.log.clone()).collect();
    assert!(logged.contains("overlay"), "{logged}");
}

const OVERLAY_SCRIPT: &[&str] = &[
    "sh",
    "-c",
    "echo data > /hello && grep ' / ' /proc/mounts | cut -d' ' -f3",
];

#[test]
fn overlay_rootfs_with_the_builtin_runtime() {
    if !require_root("overlay_rootfs_with_the_builtin_runtime") {
        return;
    }
    let mut f = Fixture::new("overlay", OVERLAY_SCRIPT);
    overlay_run(&mut f);
}

#[test]
fn overlay_rootfs_with_runc_is_mounted_on_the_host_and_unmounted_after() {
    if !require_root("overlay_rootfs_with_runc_is_mounted_on_the_host_and_unmounted_after") {
        return;
    }
    let mut f = Fixture::new("overlay-runc", OVERLAY_SCRIPT);
    if !f.use_runc() {
        return;
    }
    overlay_run(&mut f);
}

#[test]
fn startup_line_goes_to_fd_3_when_given_a_pipe_there() {
    if !require_root("startup_line_goes_to_fd_3_when_given_a_pipe_there") {
        return;
    }
    let f = Fixture::new("fd3", &["sleep", "1000"]);
    f.write();
    // bash maps our pipe to fd 3 and stdout to /dev/null, then becomes the shim.
    let mut child = Command::new("bash")
        .args(["-c", "exec 3>&1 1>/dev/null; exec \"$0\" \"$1\""])
        .arg(shim_bin())
        .arg(f.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Guard::new(&f, child.id() as i32);
    let mut out = child.stdout.take().unwrap();
    let line = read_line(&mut out);
    let (pid, _) = berth_shim::Startup::parse(&line).unwrap();
    assert!(pid > 0);
    // The shim closed fd 3 after its line (and the container never had it): EOF while
    // the container still runs.
    rustix::io::ioctl_fionbio(&out, true).unwrap();
    eventually("EOF on the startup pipe", || {
        matches!(out.read(&mut [0u8; 16]), Ok(0))
    });
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert_eq!(fds, 3, "the container has only stdio");
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_container_survives_its_spawners_death() {
    if !require_root("the_container_survives_its_spawners_death") {
        return;
    }
    let f = Fixture::new(
        "orphan",
        &[
            "sh",
            "-c",
            "trap 'exit 9' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done",
        ],
    );
    f.write();
    // Like berthd: spawn the shim, read its line; then the spawner dies.
    let mut spawner = Command::new("sh")
        .args(["-c", "\"$0\" \"$1\" &"])
        .arg(shim_bin())
        .arg(f.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = spawner.stdout.take().unwrap();
    let line = read_line(&mut out);
    assert!(spawner.wait().unwrap().success());
    let (pid, _) = berth_shim::Startup::parse(&line).unwrap();
    let shim_pid: i32 = std::fs::read_to_string(f.state_dir().join("shim.pid"))
        .unwrap()
        .parse()
        .unwrap();
    let _guard = Guard::new(&f, shim_pid);
    drop(out);
    // The shim's parent is gone; the container keeps running and logging.
    let ppid = std::fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap();
    assert!(!ppid.contains(&format!(" {} ", spawner.id())));
    let st = f.client().state().unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.pid, pid);
    let n = f.log_entries().len();
    eventually("the log to grow after the spawner died", || {
        f.log_entries().len() > n + 3
    });
    // A new client attaches, sees output, stops it and learns the exit.
    let mut frames = f.client().attach(false, true, true).unwrap().frames();
    let (s, p) = frames.next_frame().unwrap().unwrap();
    assert_eq!(s, StreamType::Stdout);
    assert!(String::from_utf8_lossy(&p).contains("tick"));
    let mut waiter = f.client();
    waiter.send_raw(b"{\"op\":\"wait\"}\n").unwrap();
    f.client().kill(15, false).unwrap();
    let exit: berth_shim::ExitInfo = berth_shim::parse_reply(&waiter.read_line().unwrap()).unwrap();
    assert_eq!(exit.exit_code, 9);
    eventually("the orphaned shim to exit", || {
        !Path::new(&format!("/proc/{shim_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{shim_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert_eq!(
        berth_shim::ExitInfo::load(&f.state_dir()).unwrap(),
        Some(exit)
    );
}

fn cmdline(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
}

#[test]
fn the_lean_handoff_keeps_the_container_its_clients_and_its_log() {
    if !require_root("the_lean_handoff_keeps_the_container_its_clients_and_its_log") {
        return;
    }
    let mut f = Fixture::new(
        "handoff",
        &[
            "sh",
            "-c",
            "trap 'exit 9' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.02; done",
        ],
    );
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let shim_pid = r.child.as_ref().unwrap().id() as i32;
    // Connected before the handoff: an attached client and a waiter.
    let attached = f.client().attach(false, true, true).unwrap();
    let mut waiter = f.client();
    waiter.send_raw(b"{\"op\":\"wait\"}\n").unwrap();
    f.client().start().unwrap();
    eventually("the shim to hand over to its lean image", || {
        cmdline(shim_pid).contains("--monitor")
    });
    eventually("the new image to name itself", || {
        std::fs::read_to_string(format!("/proc/{shim_pid}/comm"))
            .is_ok_and(|c| c.trim() == "berth-shim")
    });
    // Same process, same container, still running and logging.
    let st = f.client().state().unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.shim_pid, shim_pid);
    assert_eq!(st.pid, r.pid());
    let n = f.log_entries().len();
    eventually("the log to grow after the handoff", || {
        f.log_entries().len() > n + 3
    });
    // The attached client keeps receiving; the waiter gets its answer.
    f.client().kill(15, false).unwrap();
    let exit: berth_shim::ExitInfo = berth_shim::parse_reply(&waiter.read_line().unwrap()).unwrap();
    assert_eq!(exit.exit_code, 9);
    let (out, _) = attached.frames().read_to_end().unwrap();
    let text = String::from_utf8_lossy(&out);
    // Every tick exactly once, in order, across the handoff.
    let ticks: Vec<u32> = text
        .lines()
        .map(|l| l.trim_start_matches("tick ").parse().unwrap())
        .collect();
    assert!(ticks.len() > 10, "{text}");
    assert!(
        ticks.iter().enumerate().all(|(i, t)| *t == i as u32),
        "{ticks:?}"
    );
    let logged: Vec<u32> = f
        .log_entries()
        .iter()
        .map(|e| e.log.trim().trim_start_matches("tick ").parse().unwrap())
        .collect();
    assert!(
        logged.iter().enumerate().all(|(i, t)| *t == i as u32),
        "{logged:?}"
    );
    assert!(r.wait_shim().success());
    assert!(f.cgroup_dirs().is_empty());
}

/// A created container's start gate crosses the lean handoff: started after it, the
/// container runs, and its output reaches a client attached before it.
#[test]
fn a_container_created_before_the_handoff_starts_after_it() {
    if !require_root("a_container_created_before_the_handoff_starts_after_it") {
        return;
    }
    let mut f = Fixture::new("gatehandoff", &["sh", "-c", "echo after; exit 5"]);
    f.cfg.start_now = false;
    let mut r = f.spawn();
    let shim_pid = r.child.as_ref().unwrap().id() as i32;
    let attached = f.client().attach(false, true, true).unwrap();
    eventually("the shim to hand over to its lean image", || {
        cmdline(shim_pid).contains("--monitor")
    });
    assert_eq!(f.client().state().unwrap().status, Status::Created);
    f.client().start().unwrap();
    let (out, _) = attached.frames().read_to_end().unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "after\n");
    assert_eq!(wait(&f).exit_code, 5);
    assert!(r.wait_shim().success());
    assert!(f.cgroup_dirs().is_empty());
}

#[test]
fn a_shim_spawned_from_a_sealed_memfd_hands_over_from_it() {
    if !require_root("a_shim_spawned_from_a_sealed_memfd_hands_over_from_it") {
        return;
    }
    let f = Fixture::new("memfd", &["sleep", "1000"]);
    f.write();
    // As berthd does: one sealed memfd copy of the binary, executed by path.
    let file =
        berth_sys::memfd::sealed_copy("berth-shim", &mut std::fs::File::open(shim_bin()).unwrap())
            .unwrap();
    use std::os::fd::AsRawFd;
    let mut child = Command::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .arg(f.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shim_pid = child.id() as i32;
    let _guard = Guard::new(&f, shim_pid);
    drop(file);
    let line = read_line(child.stdout.as_mut().unwrap());
    berth_shim::Startup::parse(&line).unwrap();
    eventually("the handoff", || cmdline(shim_pid).contains("--monitor"));
    let exe = std::fs::read_link(format!("/proc/{shim_pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:berth-shim"),
        "{exe:?}"
    );
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    assert!(child.wait().unwrap().success());
}

#[test]
fn state_directories_longer_than_a_socket_address_work() {
    if !require_root("state_directories_longer_than_a_socket_address_work") {
        return;
    }
    let mut f = Fixture::new("longdir", &["sleep", "1000"]);
    f.use_long_state_dir();
    let mut r = f.spawn();
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    assert!(r.wait_shim().success());

    // runc with a terminal: its console socket lives there too.
    let mut f = tty_fixture("longdir-runc", TTY_SCRIPT);
    if !f.use_runc() {
        return;
    }
    f.use_long_state_dir();
    let mut r = f.spawn();
    check_tty_session(&f);
    assert!(r.wait_shim().success());
}
