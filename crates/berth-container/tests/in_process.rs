//! The library used in-process, the way the per-container shim uses it: one
//! single-threaded process creating several containers, giving its own stdio pipes,
//! receiving the pty master, running the built-in init and an overlay rootfs, and reaping.
//!
//! `harness = false`: libtest runs tests on extra threads, and the library refuses to fork
//! in a multi-threaded process. This small harness runs the cases on the main thread and
//! speaks enough of libtest's command line for cargo test and nextest
//! (`--list --format terse`, `--exact NAME`).

use berth_container::{CreateOptions, ExecOptions, OverlayMount, Runtime, StartMode, Stdio};
use berth_fixtures::{Bundle, require_root, temp_dir, unique_id};
use rustix::fd::{AsFd, OwnedFd};
use serde_json::{Value, json};
use std::path::Path;

type Case = (&'static str, fn());

const CASES: &[Case] = &[
    (
        "two_containers_in_one_process_with_pipes",
        two_containers_in_one_process_with_pipes,
    ),
    (
        "stdin_pipe_reaches_the_container",
        stdin_pipe_reaches_the_container,
    ),
    (
        "pty_master_is_returned_without_console_socket",
        pty_master_is_returned_without_console_socket,
    ),
    (
        "init_reaps_orphans_and_forwards_signals",
        init_reaps_orphans_and_forwards_signals,
    ),
    (
        "overlay_rootfs_is_mounted_inside_only",
        overlay_rootfs_is_mounted_inside_only,
    ),
    ("exec_child_is_ours_to_reap", exec_child_is_ours_to_reap),
    (
        "held_container_starts_through_its_gate_and_makes_no_files",
        held_container_starts_through_its_gate_and_makes_no_files,
    ),
    (
        "bad_spec_leaves_nothing_behind",
        bad_spec_leaves_nothing_behind,
    ),
    ("seccomp_programs_are_cached", seccomp_programs_are_cached),
    (
        "shortened_docker_seccomp_program_in_the_kernel",
        shortened_docker_seccomp_program_in_the_kernel,
    ),
    (
        "network_and_uts_joined_by_the_calling_thread",
        network_and_uts_joined_by_the_calling_thread,
    ),
    (
        "docker_like_mount_table_and_dev",
        docker_like_mount_table_and_dev,
    ),
    (
        "docker_like_mount_table_with_cgroup_namespace",
        docker_like_mount_table_with_cgroup_namespace,
    ),
    (
        "late_cgroup_join_holds_the_init_before_exec",
        late_cgroup_join_holds_the_init_before_exec,
    ),
    (
        "failure_after_the_clone_leaves_no_cgroup_and_no_process",
        failure_after_the_clone_leaves_no_cgroup_and_no_process,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            for (name, _) in CASES {
                println!("{name}: test");
            }
        }
        return;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in CASES {
        let selected = filters.is_empty()
            || filters.iter().any(|flt| {
                if exact {
                    name == flt
                } else {
                    name.contains(flt.as_str())
                }
            });
        if !selected {
            continue;
        }
        ran += 1;
        let ok = std::panic::catch_unwind(f).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}

fn runtime() -> Runtime {
    Runtime::new("/run/berth-runtime")
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe")
}

fn read_all(fd: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn wait(pid: i32) -> i32 {
    let st = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .expect("waitpid")
    .expect("status")
    .1;
    st.exit_status()
        .or(st.terminating_signal().map(|s| 128 + s))
        .expect("exited")
}

fn first_json(text: &str) -> Value {
    text.lines()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .unwrap_or_else(|| panic!("no JSON in {text:?}"))
}

/// Deletes (force) the container when dropped.
struct Guard(String);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(c) = runtime().load(&self.0) {
            let _ = c.delete(true);
        }
    }
}

/// Runs `b` with stdout/stderr on pipes; returns (exit code, stdout).
fn run_piped(b: &Bundle, name: &str, init: bool) -> (i32, String) {
    let id = unique_id(name);
    let _g = Guard(id.clone());
    b.write_for(&id);
    let (out_r, out_w) = pipe();
    let (_in_r, in_w) = pipe();
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            stdio: Stdio::Fds([_in_r.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            init,
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    drop(out_w);
    drop(in_w);
    let text = read_all(&out_r);
    let code = wait(created.pid);
    created.container.delete(false).expect("delete");
    (code, text)
}

fn skip() -> bool {
    !require_root("berth-container in-process tests")
}

fn two_containers_in_one_process_with_pipes() {
    if skip() {
        return;
    }
    for i in 0..2 {
        let b = Bundle::new();
        let (code, text) = run_piped(&b, &format!("inproc{i}"), false);
        assert_eq!(code, 0, "{text}");
        let r = first_json(&text);
        assert_eq!(r["pid"], 1);
        let fds: Vec<&String> = r["fds"].as_object().unwrap().keys().collect();
        assert_eq!(fds, ["0", "1", "2"], "{}", r["fds"]);
        assert!(
            r["fds"]["1"].as_str().unwrap().starts_with("pipe:"),
            "{}",
            r["fds"]
        );
    }
}

fn stdin_pipe_reaches_the_container() {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["/bin/cat"]);
    let id = unique_id("stdin");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            stdio: Stdio::Fds([in_r.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    drop(in_r);
    drop(out_w);
    rustix::io::write(&in_w, b"hello through the pipe\n").unwrap();
    drop(in_w);
    assert_eq!(read_all(&out_r), "hello through the pipe\n");
    assert_eq!(wait(created.pid), 0);
    created.container.delete(false).unwrap();
}

fn pty_master_is_returned_without_console_socket() {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    b.set("/process/terminal", json!(true));
    b.set("/process/consoleSize", json!({"height": 33, "width": 111}));
    b.args(&["/bin/sh", "-c", "stty size; /probe"]);
    let id = unique_id("pty");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    let master = created.pty_master.expect("pty master");
    let text = read_all(&master);
    assert_eq!(wait(created.pid), 0);
    assert!(text.contains("33 111"), "console size: {text}");
    let r = first_json(text.lines().find(|l| l.starts_with('{')).unwrap_or(""));
    assert_eq!(r["tty"]["stdout"], true);
    created.container.delete(false).unwrap();
}

fn init_reaps_orphans_and_forwards_signals() {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["/probe", "--orphans", "3", "--wait-no-zombies"]);
    let (code, text) = run_piped(&b, "init", true);
    assert_eq!(code, 0, "{text}");
    let r = first_json(&text);
    assert_ne!(r["pid"], 1, "the app is not PID 1 under the init");
    assert_eq!(r["ppid"], 1);
    let a = r["actions"].as_array().unwrap();
    assert_eq!(
        a[1]["zombies"], 0,
        "orphans were not reaped: {}",
        r["actions"]
    );

    // Signals reach the app; the init exits with the app's status.
    let mut b = Bundle::new();
    b.args(&["/probe", "--wait-signal", "--exit", "4"]);
    let id = unique_id("initsig");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let (out_r, out_w) = pipe();
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            stdio: Stdio::Fds([out_w.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            init: true,
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    drop(out_w);
    // The report line comes once the app blocks signals; only then is one sent.
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&b'\n') {
        let n = rustix::io::read(&out_r, &mut buf).expect("read report");
        assert!(n > 0, "the app exited early");
        text.extend_from_slice(&buf[..n]);
    }
    let c = created.container;
    c.kill(libc::SIGUSR1, false).unwrap();
    let text = String::from_utf8_lossy(&text).into_owned() + &read_all(&out_r);
    assert_eq!(wait(created.pid), 4, "{text}");
    assert!(text.contains(r#"{"signal":10}"#), "{text}");
    c.delete(false).unwrap();
}

fn overlay_rootfs_is_mounted_inside_only() {
    if skip() {
        return;
    }
    let lower = Bundle::new();
    let dirs = temp_dir("overlay");
    let (upper, work, root) = (
        dirs.path().join("upper"),
        dirs.path().join("work"),
        dirs.path().join("root"),
    );
    for d in [&upper, &work, &root] {
        std::fs::create_dir(d).unwrap();
    }
    let mut b = Bundle::new();
    b.set("/root/path", json!(root));
    b.args(&["/probe", "--write", "/written-in-container", "x"]);
    let id = unique_id("overlay");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let (out_r, out_w) = pipe();
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            stdio: Stdio::Fds([out_w.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            rootfs_mount: Some(OverlayMount {
                lowerdirs: vec![lower.rootfs()],
                upperdir: Some(upper.clone()),
                workdir: Some(work.clone()),
                options: vec![],
            }),
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    drop(out_w);
    let text = read_all(&out_r);
    assert_eq!(wait(created.pid), 0, "{text}");
    let r = first_json(&text);
    assert_eq!(r["actions"][0]["ok"], true, "{text}");
    assert_eq!(
        std::fs::read_to_string(upper.join("written-in-container")).unwrap(),
        "x"
    );
    assert!(!lower.rootfs().join("written-in-container").exists());
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        0,
        "the overlay leaked to the host"
    );
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host_mounts.contains(root.to_str().unwrap()));
    created.container.delete(false).unwrap();
}

fn exec_child_is_ours_to_reap() {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    b.args(&["/probe", "--quiet", "--wait-file", "/tmp/stop"]);
    let id = unique_id("inexec");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            start: StartMode::Now,
            ..Default::default()
        })
        .expect("create");
    let c = created.container;
    let (out_r, out_w) = pipe();
    let process = serde_json::from_value(json!({
        "args": ["/probe", "--exit", "9"],
        "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}))
    .unwrap();
    let spawned = c
        .exec(ExecOptions {
            process,
            stdio: Stdio::Fds([out_w.as_fd(), out_w.as_fd(), out_w.as_fd()]),
            console_socket: None,
            pid_file: None,
            preserve_fds: 0,
        })
        .expect("exec");
    drop(out_w);
    let text = read_all(&out_r);
    assert_eq!(wait(spawned.pid), 9, "{text}");
    let r = first_json(&text);
    assert_ne!(r["pid"], 1);
    // Stopping the init (not earlier: that would kill the exec'd process too).
    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(wait(created.pid), 137);
    c.delete(false).unwrap();
}

fn bad_spec_leaves_nothing_behind() {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    b.set("/process/cwd", json!("relative"));
    let id = unique_id("badspec");
    b.write_for(&id);
    let e = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            start: StartMode::Now,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("process.cwd"), "{e}");
    assert!(!Path::new("/run/berth-runtime").join(&id).exists());
    assert!(!Path::new("/sys/fs/cgroup/memory").join(&id).exists());
    // A missing program fails at create with runc's message, and nothing is left.
    let mut b = Bundle::new();
    b.args(&["/no/such/program"]);
    b.write_for(&id);
    let e = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            start: StartMode::Now,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("no such file or directory"), "{e}");
    assert!(!Path::new("/run/berth-runtime").join(&id).exists());
    assert!(!Path::new("/sys/fs/cgroup/memory").join(&id).exists());
}

fn seccomp_programs_are_cached() {
    if skip() {
        return;
    }
    let cache = temp_dir("seccomp-cache");
    let rt = runtime().with_seccomp_cache(cache.path());
    let mut mtimes = Vec::new();
    for i in 0..2 {
        let mut b = Bundle::new();
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        );
        b.args(&["/probe", "--quiet"]);
        let id = unique_id(&format!("cache{i}"));
        let _g = Guard(id.clone());
        b.write_for(&id);
        let created = rt
            .create(CreateOptions {
                id: id.clone(),
                bundle: b.path().to_path_buf(),
                start: StartMode::Now,
                ..Default::default()
            })
            .expect("create");
        assert_eq!(wait(created.pid), 0);
        created.container.delete(false).unwrap();
        let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "one program per profile");
        mtimes.push(files[0].metadata().unwrap().modified().unwrap());
    }
    assert_eq!(
        mtimes[0], mtimes[1],
        "the second container reused the cached program"
    );
}

/// The re-laid-out program of Docker's default profile (`seccomp_ranges`) is accepted by the
/// kernel and decides like Docker's: allowed, default (EPERM), per-argument (personality),
/// per-rule errno (clone3: ENOSYS), and x32 numbers (EPERM from the filter, where the
/// kernel alone would answer ENOSYS). Forks: this harness is single-threaded.
fn shortened_docker_seccomp_program_in_the_kernel() {
    use berth_oci::seccomp_profile::{DEFAULT_PROFILE, DockerProfile, ProfileTarget};
    let caps: Vec<String> = berth_oci::caps::DOCKER_DEFAULT
        .iter()
        .map(|c| c.to_string())
        .collect();
    let oci = DockerProfile::parse(DEFAULT_PROFILE.as_bytes())
        .unwrap()
        .to_oci(&ProfileTarget::host(&caps))
        .unwrap();
    let f = berth_container::seccomp::compile(&oci, None).unwrap();
    assert!(f.program.len() < 400, "{} instructions", f.program.len());
    const X32: libc::c_long = 0x4000_0000;
    // (syscall number, arguments, expected errno or 0 for success)
    let calls: [(libc::c_long, [libc::c_long; 2], i32); 8] = [
        (libc::SYS_getppid, [0, 0], 0),
        (1000, [0, 0], libc::EPERM),
        (libc::SYS_unshare, [libc::CLONE_NEWUTS as _, 0], libc::EPERM),
        (libc::SYS_personality, [0xffff_ffff, 0], 0),
        (libc::SYS_personality, [0x0040_0000, 0], libc::EPERM),
        (libc::SYS_clone3, [0, 0], libc::ENOSYS),
        (X32 | 1000, [0, 0], libc::EPERM),
        (X32 | 272, [libc::CLONE_NEWUTS as _, 0], libc::EPERM),
    ];
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    // SAFETY: this harness runs on one thread; the child only makes raw syscalls, writes
    // to the pipe and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut out = [-1i32; 8];
        // SAFETY: prctl with integer arguments.
        let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let ok = nnp == 0 && berth_sys::seccomp::set_mode_filter(&f.program, 0).is_ok();
        for (i, (nr, a, _)) in calls.iter().enumerate().filter(|_| ok) {
            // SAFETY: none of these calls touches memory we own (null or integer args).
            let r = unsafe { libc::syscall(*nr, a[0], a[1]) };
            out[i] = if r < 0 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
            } else {
                0
            };
        }
        let bytes: Vec<u8> = out.iter().flat_map(|e| e.to_ne_bytes()).collect();
        let _ = rustix::io::write(&wr, &bytes);
        // SAFETY: ends the forked child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    drop(wr);
    let mut buf = [0u8; 32];
    let n = rustix::io::read(&rd, &mut buf).unwrap();
    assert_eq!(wait(pid), 0);
    assert_eq!(n, 32, "the child reported nothing");
    let got: Vec<i32> = buf
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_ne!(got[0], -1, "installing the filter failed");
    for (i, (nr, a, want)) in calls.iter().enumerate() {
        assert_eq!(
            got[i], *want,
            "syscall {nr:#x}({a:x?}): errno {} != {want}",
            got[i]
        );
    }
}

fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .ino()
}

/// Network and UTS namespaces joined by path are entered by the calling thread itself
/// (no helper process): the container's init is in them, and the caller is back in its
/// own namespaces afterwards.
fn network_and_uts_joined_by_the_calling_thread() {
    if skip() {
        return;
    }
    // Namespaces to join: those of a `sleep` made with unshare(1).
    let mut holder = match std::process::Command::new("unshare")
        .args(["--net", "--uts", "sleep", "60"])
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: unshare(1) not runnable: {e}");
            return;
        }
    };
    let hp = holder.id();
    let own_net = ns_inode("/proc/thread-self/ns/net");
    let own_uts = ns_inode("/proc/thread-self/ns/uts");
    let target_net = format!("/proc/{hp}/ns/net");
    let target_uts = format!("/proc/{hp}/ns/uts");
    // unshare(1) enters the namespaces just before exec'ing sleep.
    for _ in 0..200 {
        if ns_inode(&target_net) != own_net {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (want_net, want_uts) = (ns_inode(&target_net), ns_inode(&target_uts));
    assert_ne!(want_net, own_net, "the holder has its own netns");
    let mut b = Bundle::new();
    b.set(
        "/linux/namespaces",
        json!([{"type": "pid"}, {"type": "network", "path": target_net},
               {"type": "ipc"}, {"type": "uts", "path": target_uts}, {"type": "mount"}]),
    );
    let id = unique_id("netjoin");
    let _g = Guard(id.clone());
    b.write_for(&id);
    let created = runtime()
        .create(CreateOptions {
            id: id.clone(),
            bundle: b.path().to_path_buf(),
            start: StartMode::OnStart,
            ..Default::default()
        })
        .expect("create");
    let pid = created.pid;
    let in_net = ns_inode(&format!("/proc/{pid}/ns/net"));
    let in_uts = ns_inode(&format!("/proc/{pid}/ns/uts"));
    let in_ipc = ns_inode(&format!("/proc/{pid}/ns/ipc"));
    // Back home before anything else can go wrong.
    let back_net = ns_inode("/proc/thread-self/ns/net");
    let back_uts = ns_inode("/proc/thread-self/ns/uts");
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    );
    wait(pid);
    created.container.delete(true).expect("delete");
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(in_net, want_net, "joined the network namespace");
    assert_eq!(in_uts, want_uts, "joined the UTS namespace");
    assert_eq!(
        back_net, own_net,
        "the caller returned to its network namespace"
    );
    assert_eq!(
        back_uts, own_uts,
        "the caller returned to its UTS namespace"
    );
    assert_ne!(
        in_ipc,
        ns_inode("/proc/thread-self/ns/ipc"),
        "a new IPC namespace"
    );
}

/// One line of a mountinfo, with the parent named by its mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountLine {
    point: String,
    parent: String,
    root: String,
    options: String,
    fstype: String,
    /// Super options of the filesystems the runtime makes itself (binds show the host's).
    super_options: String,
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    let rows: Vec<(String, String, MountLine)> = text
        .lines()
        .map(|l| {
            let (a, b) = l
                .split_once(" - ")
                .unwrap_or_else(|| panic!("mountinfo: {l}"));
            let f: Vec<&str> = a.split(' ').collect();
            let g: Vec<&str> = b.split(' ').collect();
            let line = MountLine {
                point: f[4].into(),
                parent: String::new(),
                root: f[3].into(),
                // Per-mount options and the optional (propagation) fields.
                options: f[5..].join(" "),
                fstype: g[0].into(),
                super_options: g[2].into(),
            };
            (f[0].to_string(), f[1].to_string(), line)
        })
        .collect();
    rows.iter()
        .map(|(_, parent, line)| {
            let mut line = line.clone();
            line.parent = rows
                .iter()
                .find(|(id, _, _)| id == parent)
                .map_or("-".into(), |(_, _, p)| p.point.clone());
            line
        })
        .collect()
}

/// The container's mounts and `/dev` for Docker's configuration (berth-engine's spec for an
/// unprivileged `docker run`: its mounts with the cgroup mount and three file binds, moby's
/// masked and read-only paths, default devices plus two in `linux.devices`, one of them in
/// a directory to create and owned by someone else). Written down from what the runtime
/// produced before the rootfs fast paths (no ENOENT probes, directories made in the fresh
/// cgroup tmpfs, device parents resolved once, chmod/chown only when needed): every mount
/// in order, with parent, options and propagation, and every node in `/dev`.
fn docker_like_mount_table_and_dev() {
    docker_like(false);
}

/// The same with a cgroup namespace (cgroup filesystems mounted, not the host's bound).
fn docker_like_mount_table_with_cgroup_namespace() {
    docker_like(true);
}

fn docker_like(cgroupns: bool) {
    if skip() {
        return;
    }
    let mut b = Bundle::new();
    if cgroupns {
        b.set("/linux/namespaces/5", json!({"type": "cgroup"}));
    }
    let files = temp_dir("docker-files");
    for f in ["resolv.conf", "hostname", "hosts"] {
        std::fs::write(files.path().join(f), format!("{f}\n")).unwrap();
    }
    let ro = ["ro", "nosuid", "noexec", "nodev"];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ro}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for f in ["resolv.conf", "hostname", "hosts"] {
        mounts.push(json!({"destination": format!("/etc/{f}"), "type": "bind",
            "source": files.path().join(f), "options": ["rbind", "rprivate"]}));
    }
    b.set("/mounts", json!(mounts));
    b.set("/linux/maskedPaths", json!(berth_oci::paths::DOCKER_MASKED));
    b.set(
        "/linux/readonlyPaths",
        json!(berth_oci::paths::DOCKER_READONLY),
    );
    b.set(
        "/linux/devices",
        json!([{"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200,
                "fileMode": 0o640, "uid": 1000, "gid": 1001},
               {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]),
    );
    b.args(&[
        "/bin/sh",
        "-c",
        "cat /proc/self/mountinfo; echo ---; \
         stat -c '%n %F %a %u:%g %t:%T %N' /dev/* /dev/net/* | sort",
    ]);
    let cg = unique_id("dockerlike-cgroup");
    b.set("/linux/cgroupsPath", json!(format!("/{cg}")));
    let (code, text) = run_piped(&b, "dockerlike", false);
    assert_eq!(code, 0, "{text}");
    let (table, dev) = text.split_once("---\n").expect("two parts");
    let got = parse_mountinfo(table);

    // What the host has decides which masked/read-only paths exist and which cgroup v1
    // hierarchies are bound.
    let host_mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let dev_null = host_mounts
        .iter()
        .filter(|m| Path::new("/dev/null").starts_with(&m.point))
        .max_by_key(|m| m.point.len())
        .unwrap()
        .clone();
    let line =
        |point: &str, parent: &str, root: &str, options: &str, fstype: &str, sup: &str| MountLine {
            point: point.into(),
            parent: parent.into(),
            root: root.into(),
            options: options.into(),
            fstype: fstype.into(),
            super_options: sup.into(),
        };
    let mut want = vec![
        line(
            "/proc",
            "/",
            "/",
            "rw,nosuid,nodev,noexec,relatime",
            "proc",
            "rw",
        ),
        line(
            "/dev",
            "/",
            "/",
            "rw,nosuid",
            "tmpfs",
            "rw,size=65536k,mode=755",
        ),
        line(
            "/dev/pts",
            "/dev",
            "/",
            "rw,nosuid,noexec,relatime",
            "devpts",
            "rw,gid=5,mode=620,ptmxmode=666",
        ),
        line(
            "/sys",
            "/",
            "/",
            "ro,nosuid,nodev,noexec,relatime",
            "sysfs",
            "ro",
        ),
    ];
    let v1: Vec<&MountLine> = host_mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" && m.point.starts_with("/sys/fs/cgroup/"))
        .collect();
    let cg_opts = "ro,nosuid,nodev,noexec,relatime";
    if v1.is_empty() {
        // cgroup2 without a cgroup namespace: the container's cgroup bound.
        want.push(line("/sys/fs/cgroup", "/sys", "*", cg_opts, "cgroup2", "*"));
    } else {
        want.push(line(
            "/sys/fs/cgroup",
            "/sys",
            "/",
            cg_opts,
            "tmpfs",
            "rw,mode=755",
        ));
        let mut hier: Vec<MountLine> = v1
            .iter()
            .map(|m| {
                let sup = &m.super_options;
                let root = if cgroupns {
                    "/".into()
                } else {
                    format!("/{cg}")
                };
                line(&m.point, "/sys/fs/cgroup", &root, cg_opts, "cgroup", sup)
            })
            .collect();
        hier.sort_by(|a, b| a.point.cmp(&b.point));
        want.extend(hier);
    }
    want.push(line(
        "/dev/mqueue",
        "/dev",
        "/",
        "rw,nosuid,nodev,noexec,relatime",
        "mqueue",
        "rw",
    ));
    want.push(line(
        "/dev/shm",
        "/dev",
        "/",
        "rw,nosuid,nodev,noexec,relatime",
        "tmpfs",
        "rw,size=65536k",
    ));
    for f in ["resolv.conf", "hostname", "hosts"] {
        want.push(line(&format!("/etc/{f}"), "/", "*", "*", "*", "*"));
    }
    for p in berth_oci::paths::DOCKER_MASKED {
        let Ok(md) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let parent = if p.starts_with("/proc") {
            "/proc"
        } else {
            "/sys"
        };
        if md.is_dir() {
            want.push(line(p, parent, "/", "ro,relatime", "tmpfs", "ro"));
        } else {
            want.push(line(
                p,
                parent,
                "*",
                &dev_null.options,
                &dev_null.fstype,
                "*",
            ));
        }
    }
    for p in berth_oci::paths::DOCKER_READONLY {
        if Path::new(p).exists() {
            let root = p.trim_start_matches("/proc");
            want.push(line(
                p,
                "/proc",
                root,
                "ro,nosuid,nodev,noexec,relatime",
                "proc",
                "rw",
            ));
        }
    }

    // The root: the rootfs bind, whatever the host's options.
    assert_eq!(got[0].point, "/", "{got:#?}");
    let got = got[1..].to_vec();
    // Fields that depend on the host are compared where written as "*"; cgroup hierarchies
    // in name order (the order of the runtime's map), right after their tmpfs: without a
    // cgroup namespace they are bound once the init has joined the cgroup the runtime made
    // meanwhile (at the end of the rootfs setup), which only moves their lines in
    // mountinfo (their parent is compared).
    let (mut subs, rest): (Vec<MountLine>, Vec<MountLine>) = got
        .into_iter()
        .partition(|m| m.point.starts_with("/sys/fs/cgroup/"));
    subs.sort_by(|a, b| a.point.cmp(&b.point));
    let mut got = rest;
    if let Some(at) = got.iter().position(|m| m.point == "/sys/fs/cgroup") {
        got.splice(at + 1..at + 1, subs);
    } else {
        got.extend(subs);
    }
    for (g, w) in got.iter_mut().zip(&want) {
        for (gf, wf) in [
            (&mut g.root, &w.root),
            (&mut g.options, &w.options),
            (&mut g.fstype, &w.fstype),
            (&mut g.super_options, &w.super_options),
        ] {
            if wf == "*" {
                *gf = "*".into();
            }
        }
    }
    assert_eq!(got, want, "mount table:\n{table}");
    for f in ["resolv.conf", "hostname", "hosts"] {
        let m = parse_mountinfo(table)
            .into_iter()
            .find(|m| m.point == format!("/etc/{f}"))
            .unwrap();
        assert!(m.root.ends_with(&format!("/{f}")), "{m:?}");
        assert!(!m.options.contains("shared:"), "rprivate: {m:?}");
    }

    let mut want_dev = vec![
        "/dev/fd symbolic link 777 0:0 0:0 '/dev/fd' -> '/proc/self/fd'",
        "/dev/full character special file 666 0:0 1:7 /dev/full",
        "/dev/fuse character special file 666 0:0 a:e5 /dev/fuse",
        "/dev/mqueue directory 1777 0:0 0:0 /dev/mqueue",
        "/dev/net directory 755 0:0 0:0 /dev/net",
        "/dev/net/tun character special file 640 1000:1001 a:c8 /dev/net/tun",
        "/dev/null character special file 666 0:0 1:3 /dev/null",
        "/dev/ptmx symbolic link 777 0:0 0:0 '/dev/ptmx' -> 'pts/ptmx'",
        "/dev/pts directory 755 0:0 0:0 /dev/pts",
        "/dev/random character special file 666 0:0 1:8 /dev/random",
        "/dev/shm directory 1777 0:0 0:0 /dev/shm",
        "/dev/stderr symbolic link 777 0:0 0:0 '/dev/stderr' -> '/proc/self/fd/2'",
        "/dev/stdin symbolic link 777 0:0 0:0 '/dev/stdin' -> '/proc/self/fd/0'",
        "/dev/stdout symbolic link 777 0:0 0:0 '/dev/stdout' -> '/proc/self/fd/1'",
        "/dev/tty character special file 666 0:0 5:0 /dev/tty",
        "/dev/urandom character special file 666 0:0 1:9 /dev/urandom",
        "/dev/zero character special file 666 0:0 1:5 /dev/zero",
    ];
    if Path::new("/proc/kcore").exists() {
        want_dev.push("/dev/core symbolic link 777 0:0 0:0 '/dev/core' -> '/proc/kcore'");
    }
    want_dev.sort();
    let got_dev: Vec<&str> = dev.lines().collect();
    assert_eq!(got_dev, want_dev, "/dev:\n{dev}");
}

/// Removes a held container (not loadable by id) even when the case fails.
struct HeldGuard(Option<berth_container::Container>);

impl Drop for HeldGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = c.delete(true);
        }
    }
}

/// The shim's way: a held container gets no state directory, state.json or exec fifo;
/// its init waits on the start gate, runs the app once a byte arrives, and exits without
/// running it when the gate closes unwritten (its holder died).
fn held_container_starts_through_its_gate_and_makes_no_files() {
    if skip() {
        return;
    }
    for write in [true, false] {
        let mut b = Bundle::new();
        b.args(&["/bin/echo", "gated"]);
        let id = unique_id("held");
        b.write_for(&id);
        let (out_r, out_w) = pipe();
        let (in_r, _in_w) = pipe();
        let created = runtime()
            .create(CreateOptions {
                id: id.clone(),
                bundle: b.path().to_path_buf(),
                stdio: Stdio::Fds([in_r.as_fd(), out_w.as_fd(), out_w.as_fd()]),
                start: StartMode::OnStart,
                held: true,
                ..Default::default()
            })
            .expect("create");
        drop(out_w);
        let held = runtime().adopt(created.container.held_state()).unwrap();
        let _g = HeldGuard(Some(held.clone()));
        assert_eq!(held.state_dir(), None);
        assert!(!Path::new("/run/berth-runtime").join(&id).exists());
        assert!(
            runtime().load(&id).is_err(),
            "a held container is not loadable"
        );
        let gate = created.start_gate.expect("a start gate");
        if write {
            held.start_gated(gate).expect("start");
            assert_eq!(read_all(&out_r), "gated\n");
            assert_eq!(wait(created.pid), 0);
        } else {
            drop(gate);
            assert_eq!(read_all(&out_r), "", "the app must not run");
            assert_ne!(wait(created.pid), 0);
        }
    }
}

/// The host's v1 hierarchies as they appear under /sys/fs/cgroup (`None` off v1 hosts).
fn v1_hierarchies() -> Option<Vec<String>> {
    let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
    let v: Vec<String> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup")
        .filter_map(|m| m.point.strip_prefix("/sys/fs/cgroup/").map(str::to_string))
        .collect();
    (!v.is_empty()).then_some(v)
}

fn v1_host_with(needed: &[&str]) -> Option<Vec<String>> {
    let Some(h) = v1_hierarchies() else {
        eprintln!("skipped: the host has no cgroup v1 hierarchies");
        return None;
    };
    if let Some(n) = needed.iter().find(|n| !h.iter().any(|x| x == *n)) {
        eprintln!("skipped: the host has no {n} hierarchy");
        return None;
    }
    Some(h)
}

/// Where a container's cgroup `/<cg>` lives on the host, every hierarchy and the cgroup2
/// twin.
fn cgroup_dirs(hierarchies: &[String], cg: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = hierarchies
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(cg))
        .collect();
    v.push(Path::new("/sys/fs/cgroup/unified").join(cg));
    v
}

/// Processes whose parent is this test process (a failed create must leave none).
fn our_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|st| {
                    let rest = &st[st.rfind(')')? + 2..];
                    rest.split(' ').nth(1).map(|pp| pp == me)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// On cgroup v1 the init is cloned before its cgroup exists and sets up its rootfs while the
/// runtime creates it; it joins when the `tasks` files arrive, at the end of the rootfs setup.
/// What must hold anyway: the app runs in every hierarchy's container cgroup (and the cgroup2
/// twin), under its limits (a pids limit makes a fork fail), with the container's
/// directories bound under /sys/fs/cgroup. Whatever lands inside the cgroup mount lands on
/// the bound hierarchies, as in the spec's order, not on the tmpfs underneath: each case
/// has one such path (a mount through a symlink, a masked path by name, a masked path
/// through a symlink), so each makes the binds happen early on its own.
fn late_cgroup_join_holds_the_init_before_exec() {
    if skip() {
        return;
    }
    let Some(hier) = v1_host_with(&["pids", "memory", "freezer"]) else {
        return;
    };
    for case in ["none", "mount", "masked", "masked-symlink"] {
        let mut b = Bundle::new();
        let cg = unique_id("latejoin-cgroup");
        b.set("/linux/cgroupsPath", json!(format!("/{cg}")));
        b.set("/linux/resources/pids", json!({"limit": 2}));
        b.set("/linux/resources/memory", json!({"limit": 67108864}));
        b.mount(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["ro", "nosuid", "noexec", "nodev"]}),
        );
        let root = b.rootfs();
        std::os::unix::fs::symlink("/sys/fs/cgroup/freezer", root.join("cgfreezer")).unwrap();
        std::os::unix::fs::symlink("/sys/fs/cgroup/memory", root.join("cgmemory")).unwrap();
        let mut masked = vec!["/proc/kcore"];
        match case {
            "mount" => {
                b.mount(json!({"destination": "/cgfreezer", "type": "tmpfs", "source": "tmpfs"}));
            }
            "masked" => masked.push("/sys/fs/cgroup/pids/pids.current"),
            "masked-symlink" => masked.push("/cgmemory/memory.usage_in_bytes"),
            _ => {}
        }
        b.set("/linux/maskedPaths", json!(masked));
        b.args(&[
            "/bin/sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; cat /proc/self/mountinfo; echo ---; \
             echo max=$(cat /sys/fs/cgroup/pids/pids.max) \
             limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) \
             current=[$(cat /sys/fs/cgroup/pids/pids.current)] \
             usage=[$(cat /sys/fs/cgroup/memory/memory.usage_in_bytes)]; echo ---; \
             sleep 1 & sleep 1 & wait; echo end",
        ]);
        let (code, text) = run_piped(&b, "latejoin", false);
        // pids.max 2: the shell and one sleep; the second sleep cannot be forked, and the
        // shell gives up.
        assert_ne!(code, 0, "{case}: {text}");
        let parts: Vec<&str> = text.split("---\n").collect();
        assert_eq!(parts.len(), 4, "{case}: {text}");
        let (cgroups, table, values, forks) = (parts[0], parts[1], parts[2], parts[3]);
        assert!(forks.contains("can't fork"), "{case}: {forks}");

        // /proc/self/cgroup of a process the init forked: all the container's cgroup.
        let mut seen = 0;
        for line in cgroups.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap();
            assert_eq!(path, format!("/{cg}"), "{case}: {cgroups}");
            seen += 1;
        }
        assert!(seen >= hier.len(), "{case}: {cgroups}");
        if Path::new("/sys/fs/cgroup/unified").is_dir() {
            assert!(
                cgroups.lines().any(|l| l == format!("0::/{cg}")),
                "{case}: the cgroup2 twin: {cgroups}"
            );
        }

        // The limits are the container's, read through its /sys/fs/cgroup; a masked file is
        // empty (/dev/null), the others are not.
        let got_values = values.trim();
        assert!(
            got_values.starts_with("max=2 limit=67108864 "),
            "{case}: {got_values}"
        );
        let field = |name: &str| {
            let rest =
                &got_values[got_values.find(&format!("{name}=[")).unwrap() + name.len() + 2..];
            rest[..rest.find(']').unwrap()].to_string()
        };
        for (name, masked_in) in [("current", "masked"), ("usage", "masked-symlink")] {
            let v = field(name);
            if case == masked_in {
                assert_eq!(v, "", "{case}: {name} masked: {got_values}");
            } else {
                assert!(
                    v.parse::<u64>().is_ok(),
                    "{case}: {name} readable: {got_values}"
                );
            }
        }

        let got = parse_mountinfo(table);
        for h in &hier {
            let point = format!("/sys/fs/cgroup/{h}");
            let bind = got
                .iter()
                .find(|m| m.point == point && m.fstype == "cgroup")
                .unwrap_or_else(|| panic!("{case}: {point} not bound:\n{table}"));
            assert_eq!(bind.parent, "/sys/fs/cgroup", "{case}: {table}");
            assert_eq!(bind.root, format!("/{cg}"), "{case}: {table}");
        }
        let on = |point: &str, fstype: &str| {
            got.iter()
                .find(|m| m.point == point && m.fstype == fstype)
                .map(|m| m.parent.clone())
        };
        match case {
            "mount" => assert_eq!(
                on("/sys/fs/cgroup/freezer", "tmpfs").as_deref(),
                Some("/sys/fs/cgroup/freezer"),
                "{case}: the tmpfs is on the bind:\n{table}"
            ),
            "masked" => assert_eq!(
                on("/sys/fs/cgroup/pids/pids.current", "devtmpfs").as_deref(),
                Some("/sys/fs/cgroup/pids"),
                "{case}: masked on the bind:\n{table}"
            ),
            "masked-symlink" => assert_eq!(
                on("/sys/fs/cgroup/memory/memory.usage_in_bytes", "devtmpfs").as_deref(),
                Some("/sys/fs/cgroup/memory"),
                "{case}: masked on the bind:\n{table}"
            ),
            _ => {}
        }
        for d in cgroup_dirs(&hier, &cg) {
            assert!(!d.exists(), "{case}: {} left", d.display());
        }
    }
}

/// A failure while the init sets up and the runtime creates the cgroup, on either side (a
/// cpuset the host lacks, written by the runtime; a bind source that does not exist, found
/// by the init), is reported, and leaves no cgroup directory and no process.
fn failure_after_the_clone_leaves_no_cgroup_and_no_process() {
    if skip() {
        return;
    }
    let Some(hier) = v1_host_with(&["cpuset"]) else {
        return;
    };
    let before = our_children();
    type Edit = fn(&mut Bundle);
    let cases: [(&str, Edit, &str); 2] = [
        (
            "cpus",
            |b| {
                b.set("/linux/resources/cpu", json!({"cpus": "63"}));
            },
            "cpuset",
        ),
        (
            "bind",
            |b| {
                b.mount(json!({"destination": "/mnt", "type": "bind",
                               "source": "/no/such/berth-test-source", "options": ["rbind"]}));
            },
            "/no/such/berth-test-source",
        ),
    ];
    for (name, edit, want) in cases {
        let mut b = Bundle::new();
        b.mount(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["ro", "nosuid", "noexec", "nodev"]}),
        );
        edit(&mut b);
        let id = unique_id(&format!("latefail-{name}"));
        let _g = Guard(id.clone());
        b.write_for(&id);
        let e = runtime()
            .create(CreateOptions {
                id: id.clone(),
                bundle: b.path().to_path_buf(),
                start: StartMode::Now,
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains(want), "{name}: {e}");
        assert!(!Path::new("/run/berth-runtime").join(&id).exists());
        for d in cgroup_dirs(&hier, &id) {
            assert!(!d.exists(), "{name}: {} left", d.display());
        }
        assert_eq!(our_children(), before, "{name}: a process left");
    }
}
