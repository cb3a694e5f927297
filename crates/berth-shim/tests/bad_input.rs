//! Malformed configs, bundles and request lines: a precise error, nothing left behind, and
//! a shim that keeps serving.

mod common;

use berth_shim::{Kind, Status};
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

/// Nothing of the container is left: no socket, no runtime state, no cgroup.
fn assert_nothing_left(f: &Fixture) {
    assert!(!f.state_dir().join("shim.sock").exists(), "socket left");
    assert!(
        !f.cfg.runtime_root.join(&f.id).exists(),
        "runtime state left"
    );
    assert!(
        f.cgroup_dirs().is_empty(),
        "cgroups left: {:?}",
        f.cgroup_dirs()
    );
}

#[test]
fn malformed_shim_json_is_reported_on_the_startup_line() {
    if !require_root("malformed_shim_json_is_reported_on_the_startup_line") {
        return;
    }
    let f = Fixture::new("badcfg", &["true"]);
    f.write();
    for (json, needle) in [
        ("{not json", "invalid shim.json"),
        (
            r#"{"id":"x","bundle":"/b"}"#,
            "missing field `runtime_root`",
        ),
        (
            r#"{"id":"x","bundle":"/b","runtime_root":"/r","tty":1}"#,
            "at tty",
        ),
        (r#"{"id":"x/y","bundle":"/b","runtime_root":"/r"}"#, "id"),
    ] {
        std::fs::write(f.state_dir().join("shim.json"), json).unwrap();
        let mut r = f.spawn_written();
        let e = r.startup.as_ref().unwrap_err();
        assert_eq!(e.kind, Kind::Invalid, "{json}: {e}");
        assert!(e.message.contains(needle), "{json}: {}", e.message);
        assert_eq!(r.wait_shim().code(), Some(1));
        assert_nothing_left(&f);
    }
}

#[test]
fn a_bad_bundle_fails_cleanly_naming_the_field() {
    if !require_root("a_bad_bundle_fails_cleanly_naming_the_field") {
        return;
    }
    let mut f = Fixture::new("badspec", &["true"]);
    f.spec["process"]["args"] = serde_json::json!(5);
    let mut r = f.spawn();
    let e = r.startup.as_ref().unwrap_err();
    assert_eq!(e.kind, Kind::Invalid, "{e}");
    assert!(e.message.contains("process.args"), "{}", e.message);
    assert_eq!(r.wait_shim().code(), Some(1));
    assert_nothing_left(&f);

    // A program that does not exist: the runtime's error, nothing left.
    let mut f = Fixture::new("noexec", &["/no/such/program"]);
    f.cfg.start_now = true;
    let mut r = f.spawn();
    let e = r.startup.as_ref().unwrap_err();
    assert!(e.message.contains("/no/such/program"), "{}", e.message);
    assert_eq!(r.wait_shim().code(), Some(1));
    assert_nothing_left(&f);

    // The terminal setting must agree with the spec.
    let mut f = Fixture::new("ttymismatch", &["true"]);
    f.cfg.tty = true;
    let mut r = f.spawn();
    let e = r.startup.as_ref().unwrap_err();
    assert!(e.message.contains("process.terminal"), "{}", e.message);
    r.wait_shim();
    assert_nothing_left(&f);
}

#[test]
fn runc_errors_come_back_with_the_runtimes_message() {
    if !require_root("runc_errors_come_back_with_the_runtimes_message") {
        return;
    }
    let mut f = Fixture::new("runc-bad", &["/no/such/program"]);
    if !f.use_runc() {
        return;
    }
    f.cfg.start_now = true;
    let mut r = f.spawn();
    let e = r.startup.as_ref().unwrap_err();
    assert!(e.message.contains("runc"), "{}", e.message);
    assert!(e.message.contains("/no/such/program"), "{}", e.message);
    assert_eq!(r.wait_shim().code(), Some(1));
    assert_nothing_left(&f);
}

#[test]
fn missing_state_dir_and_bad_arguments() {
    let out = Command::new(shim_bin()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: berth-shim <state_dir>"));
    let out = Command::new(shim_bin())
        .arg("/nonexistent/berth-test-state")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = berth_shim::Startup::parse(&out.stdout).unwrap_err();
    assert_eq!(e.kind, Kind::NotFound, "{e}");
    assert!(e.message.contains("/nonexistent/berth-test-state"), "{e}");
}

#[test]
fn bad_request_lines_get_errors_and_the_shim_keeps_serving() {
    if !require_root("bad_request_lines_get_errors_and_the_shim_keeps_serving") {
        return;
    }
    let f = Fixture::new("badreq", &["sleep", "1000"]);
    let mut r = f.spawn();
    let mut c = f.client();
    for (line, needle) in [
        (&b"garbage\n"[..], "bad request"),
        (b"{\"op\":\"explode\"}\n", "unknown variant"),
        (b"{\"op\":\"kill\"}\n", "missing field `signal`"),
        (b"{\"op\":\"kill\",\"signal\":999}\n", "invalid signal 999"),
        (
            b"{\"op\":\"resize\",\"height\":-1,\"width\":1}\n",
            "bad request",
        ),
        (b"\xff\xfe\n", "bad request"),
        (b"[]\n", "bad request"),
    ] {
        c.send_raw(line).unwrap();
        let e = berth_shim::parse_reply::<berth_shim::Empty>(&c.read_line().unwrap()).unwrap_err();
        assert_eq!(e.kind, Kind::Invalid, "{line:?}");
        assert!(e.message.contains(needle), "{line:?}: {}", e.message);
    }
    // Empty lines are skipped; the same connection still works.
    c.send_raw(b"\n\n").unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    // A line without end: an error, then the connection is closed; others are unaffected.
    let mut raw = UnixStream::connect(f.state_dir().join("shim.sock")).unwrap();
    let big = vec![b'x'; 2 << 20];
    let _ = raw.write_all(&big);
    let mut reply = Vec::new();
    let _ = raw.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("longer than"), "{text}");
    // A client that connects and vanishes mid-request.
    let mut gone = UnixStream::connect(f.state_dir().join("shim.sock")).unwrap();
    gone.write_all(b"{\"op\":\"st").unwrap();
    drop(gone);
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    r.wait_shim();
}

#[test]
fn a_second_shim_for_the_same_directory_is_refused() {
    if !require_root("a_second_shim_for_the_same_directory_is_refused") {
        return;
    }
    let f = Fixture::new("twice", &["sleep", "1000"]);
    let mut first = f.spawn();
    let mut second = f.spawn_written();
    let e = second.startup.as_ref().unwrap_err();
    assert_eq!(e.kind, Kind::Conflict, "{e}");
    assert!(e.message.contains("another shim"), "{}", e.message);
    assert_eq!(second.wait_shim().code(), Some(1));
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    f.client().kill(9, false).unwrap();
    wait(&f);
    first.wait_shim();
}

#[test]
fn a_failing_log_and_a_dead_stderr_do_not_stop_the_shim() {
    if !require_root("a_failing_log_and_a_dead_stderr_do_not_stop_the_shim") {
        return;
    }
    let mut f = Fixture::new(
        "deadlog",
        &[
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done",
        ],
    );
    let logs = f.top.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    f.cfg.log = Some(berth_shim::LogConfig {
        path: logs.join("c-json.log"),
        max_size: 200,
        max_file: 2,
    });
    f.write();
    // stderr is a pipe whose reader is gone, as when berthd died.
    let mut child = Command::new(shim_bin())
        .arg(f.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Guard::new(&f, child.id() as i32);
    drop(child.stderr.take());
    berth_shim::Startup::parse(&read_line(child.stdout.as_mut().unwrap())).unwrap();
    // The log directory disappears: every rotation now fails (and warns into the pipe).
    std::fs::remove_dir_all(&logs).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(f.client().state().unwrap().status, Status::Running);
    let mut a = f.client().attach(false, true, false).unwrap().frames();
    assert!(
        a.next_frame().unwrap().is_some(),
        "output still flows to clients"
    );
    f.client().kill(9, false).unwrap();
    assert_eq!(wait(&f).exit_code, 137);
    assert!(child.wait().unwrap().success());
}
