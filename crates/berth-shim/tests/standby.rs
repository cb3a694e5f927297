//! `berth-shim --standby` (see `src/standby.rs`): it runs a container once handed a state
//! directory on stdin, exactly as `berth-shim <state_dir>` would, and exits quietly when its
//! stdin ends first — however the spawner went away.

mod common;

use berth_shim::{Kind, Startup};
use common::*;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A standby as berthd spawns it: stdin and stdout are pipes, stderr captured here.
fn spawn_standby(stdin: Stdio) -> Child {
    Command::new(shim_bin())
        .arg("--standby")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth-shim --standby")
}

/// Waits (up to 10 s) for the child's exit.
fn wait_exit(child: &mut Child, why: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{why}: the standby did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn rest(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// Hands `line` to a fresh standby; its startup line.
fn hand_off(line: &[u8]) -> (Child, Vec<u8>) {
    let mut child = spawn_standby(Stdio::piped());
    let mut stdin: ChildStdin = child.stdin.take().unwrap();
    let mut stdout: ChildStdout = child.stdout.take().unwrap();
    stdin.write_all(line).unwrap();
    drop(stdin);
    let startup = read_line(&mut stdout);
    (child, startup)
}

#[test]
fn a_standby_exits_quietly_when_its_stdin_closes() {
    let mut child = spawn_standby(Stdio::piped());
    // Give it time to get to its read: it must wait, not fail.
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "the standby waits");
    drop(child.stdin.take());
    let st = wait_exit(&mut child, "stdin closed");
    assert_eq!(st.code(), Some(0), "{st}");
    assert_eq!(
        rest(child.stdout.take()),
        "",
        "no startup line without a container"
    );
    assert_eq!(rest(child.stderr.take()), "", "quietly");
}

#[test]
fn a_partial_line_counts_as_none() {
    let (mut child, startup) = hand_off(b"/run/berth/containers/abc");
    assert_eq!(startup, b"");
    assert_eq!(wait_exit(&mut child, "partial line").code(), Some(0));
    assert_eq!(rest(child.stderr.take()), "");
}

/// The spawner holds the only write end of the standby's stdin; SIGKILL it and the kernel
/// closes that end: the standby sees EOF and exits.
#[test]
fn a_standby_exits_when_its_spawner_is_sigkilled() {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut standby = spawn_standby(Stdio::from(r));
    let mut spawner = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .spawn()
        .expect("spawn the stand-in spawner");
    std::thread::sleep(Duration::from_millis(200));
    assert!(standby.try_wait().unwrap().is_none(), "the standby waits");
    spawner.kill().unwrap();
    spawner.wait().unwrap();
    let st = wait_exit(&mut standby, "spawner SIGKILLed");
    assert_eq!(st.code(), Some(0), "{st}");
    assert_eq!(rest(standby.stderr.take()), "");
}

/// Handed a state directory, the standby is the container's shim: startup line, shim.pid,
/// output logged, the exit recorded, the shim gone after cleanup.
#[test]
fn a_standby_handed_a_state_dir_runs_the_container() {
    if !require_root("a_standby_handed_a_state_dir_runs_the_container") {
        return;
    }
    let f = Fixture::new("standby", &["sh", "-c", "echo from-standby; exit 4"]);
    f.write();
    let mut child = spawn_standby(Stdio::piped());
    let guard = Guard::new(&f, child.id() as i32);
    let mut stdout = child.stdout.take().unwrap();
    // The standby is up (linked, waiting) before it learns of any container.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!f.state_dir().join(berth_shim::SOCKET_FILE).exists());
    let mut line = f.state_dir().into_os_string().into_encoded_bytes();
    line.push(b'\n');
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&line).unwrap();
    drop(stdin);
    let (pid, warnings) = Startup::parse(&read_line(&mut stdout)).expect("startup ok");
    assert!(pid > 0);
    assert!(warnings.is_empty(), "{warnings:?}");
    let shim_pid: u32 = std::fs::read_to_string(f.state_dir().join(berth_shim::PID_FILE))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shim_pid, child.id(), "the standby itself is the shim");
    let exit = wait(&f);
    assert_eq!(exit.exit_code, 4);
    assert!(wait_exit(&mut child, "container exited").success());
    let logged: Vec<String> = f.log_entries().into_iter().map(|e| e.log).collect();
    assert_eq!(logged, ["from-standby\n"]);
    assert!(
        !f.cfg.runtime_root.join(&f.id).exists(),
        "runtime state left"
    );
    drop(guard);
}

/// Bad hand-offs get a startup error naming the problem (the contract's error line), and
/// nothing is created.
#[test]
fn bad_hand_off_lines_are_startup_errors() {
    let (mut child, startup) = hand_off(b"\n");
    let e = Startup::parse(&startup).unwrap_err();
    assert_eq!(e.kind, Kind::Invalid);
    assert!(e.message.contains("empty state directory"), "{}", e.message);
    assert_eq!(wait_exit(&mut child, "empty line").code(), Some(1));

    let mut long = vec![b'x'; 5000];
    long.push(b'\n');
    let (mut child, startup) = hand_off(&long);
    let e = Startup::parse(&startup).unwrap_err();
    assert_eq!(e.kind, Kind::Invalid);
    assert!(e.message.contains("longer than"), "{}", e.message);
    assert_eq!(wait_exit(&mut child, "long line").code(), Some(1));

    let missing = std::env::temp_dir().join("berth-test-standby-no-such-dir");
    let mut line = missing.into_os_string().into_encoded_bytes();
    line.push(b'\n');
    let (mut child, startup) = hand_off(&line);
    let e = Startup::parse(&startup).unwrap_err();
    assert_eq!(e.kind, Kind::NotFound);
    assert!(e.message.contains("no-such-dir"), "{}", e.message);
    assert_eq!(wait_exit(&mut child, "missing dir").code(), Some(1));
}

/// One fork request to a zygote: `(reply bytes, the pidfd if any)`.
fn ask_zygote(
    sock: &rustix::fd::OwnedFd,
    fds: &[rustix::fd::BorrowedFd<'_>],
) -> (Vec<u8>, Option<rustix::fd::OwnedFd>) {
    use rustix::net::{
        RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
        SendAncillaryMessage, SendFlags,
    };
    use std::mem::MaybeUninit;
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    rustix::net::sendmsg(
        sock,
        &[std::io::IoSlice::new(b"f")],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .expect("sendmsg to the zygote");
    let mut reply = [0u8; 512];
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut reply)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .expect("the zygote's reply");
    let mut pidfd = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut rights) = msg {
            pidfd = rights.next();
        }
    }
    (reply[..got.bytes].to_vec(), pidfd)
}

/// `berth-shim --standby` with a socket as stdin is the zygote (see `src/zygote.rs`): it
/// refuses a request without exactly two descriptors, forks a standby that is the
/// spawner's child (`CLONE_PARENT`) and behaves as an exec'd one (exits 0 on its stdin's
/// end, quietly), and exits 0 when the spawner closes the socket.
#[test]
fn the_zygote_forks_standbys_as_the_spawners_children() {
    use rustix::fd::AsFd;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let mut zygote = Command::new(shim_bin())
        .arg("--standby")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the zygote");
    let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();

    let (in_r, in_w) = pipe();
    let (reply, pidfd) = ask_zygote(&ours, &[in_r.as_fd()]);
    assert!(
        reply.starts_with(b"-"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(pidfd.is_none());

    let (out_r, out_w) = pipe();
    let (reply, pidfd) = ask_zygote(&ours, &[in_r.as_fd(), out_w.as_fd()]);
    drop((in_r, out_w));
    assert_eq!(reply.len(), 5, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(reply[0], b'+');
    let pid = i32::from_ne_bytes(reply[1..5].try_into().unwrap());
    let pidfd = pidfd.expect("the child's pidfd");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ppid,
        std::process::id(),
        "the standby is the spawner's child"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        rustix::process::waitid(
            rustix::process::WaitId::PidFd(pidfd.as_fd()),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
        )
        .unwrap()
        .is_none(),
        "the forked standby waits"
    );
    drop(in_w);
    let status = rustix::process::waitid(
        rustix::process::WaitId::PidFd(pidfd.as_fd()),
        rustix::process::WaitIdOptions::EXITED,
    )
    .unwrap()
    .expect("the standby's exit");
    assert_eq!(status.exit_status(), Some(0), "stdin closed: exit 0");
    assert_eq!(
        rest(Some(std::fs::File::from(out_r))),
        "",
        "no startup line"
    );

    drop(ours);
    let st = wait_exit(&mut zygote, "socket closed");
    assert_eq!(st.code(), Some(0), "{st}");
    assert_eq!(rest(zygote.stderr.take()), "", "quietly");
}
