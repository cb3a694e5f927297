//! `berth-probe`: runs inside test containers and reports, as one line of JSON, what the
//! process sees, so tests assert observations instead of exit codes.
//!
//! It is built as a static executable (see `berth-fixtures`), so it runs in any rootfs.
//!
//! ```text
//! berth-probe [OPTIONS]
//!   --sysctl NAME          include /proc/sys/NAME (dots or slashes) in "sysctls"
//!   --read PATH            include the file's content (or error) in "files"
//!   --stat PATH            include lstat of PATH in "stats" (type, mode, uid, gid, rdev)
//!   --readlink PATH        include the link target in "links"
//!   --ls DIR               include the directory's entries in "dirs"
//!   --try-write PATH       open PATH for writing (no truncation) and write nothing
//!   --try-create PATH      create (and remove again) a new file PATH
//!   --try-mkdir PATH       mkdir PATH (and rmdir it again)
//!   --try-syscall NAME     perform a harmless call: uname, getcwd, sethostname[:NAME],
//!                          unshare-uts, mount-tmpfs:PATH, chmod:PATH, setns-self
//!   --try-exec PATH        spawn PATH (no args) and report its exit status
//!   --write PATH CONTENT   write CONTENT to PATH (create/truncate)
//!   --orphans N            create N orphaned grandchildren that exit at once (init tests)
//!   --wait-no-zombies      wait (up to 10 s) until no zombie process is visible in /proc
//!   --output PATH          write the report to PATH instead of stdout
//!   --wait-signal          after reporting, wait for one signal, print {"signal":N}, exit 0
//!   --wait-file PATH       after reporting, wait until PATH exists (poll), then exit
//!   --sleep SECS           after reporting, sleep
//!   --exit CODE            exit with CODE (after everything else)
//!   --quiet                do not print the report
//! ```
#![forbid(unsafe_code)]

use serde_json::{Map, Value, json};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut report = base_report(&args);
    let mut actions = Vec::new();
    let mut sysctls = Map::new();
    let mut files = Map::new();
    let mut stats = Map::new();
    let mut links = Map::new();
    let mut dirs = Map::new();
    let mut output: Option<String> = None;
    let mut after: Vec<(String, String)> = Vec::new();
    let mut exit_code = 0;
    let mut quiet = false;

    let mut i = 1;
    let next = |i: &mut usize| -> String {
        *i += 1;
        args.get(*i).cloned().unwrap_or_else(|| {
            eprintln!("berth-probe: missing value for {}", args[*i - 1]);
            std::process::exit(2)
        })
    };
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "--sysctl" => {
                let name = next(&mut i);
                let path = format!("/proc/sys/{}", name.replace('.', "/"));
                sysctls.insert(name, read_value(&path));
            }
            "--read" => {
                let p = next(&mut i);
                files.insert(p.clone(), read_value(&p));
            }
            "--stat" => {
                let p = next(&mut i);
                stats.insert(p.clone(), stat_value(&p));
            }
            "--readlink" => {
                let p = next(&mut i);
                links.insert(
                    p.clone(),
                    match fs::read_link(&p) {
                        Ok(t) => json!(t.to_string_lossy()),
                        Err(e) => err_value(&e),
                    },
                );
            }
            "--ls" => {
                let p = next(&mut i);
                dirs.insert(p.clone(), ls_value(&p));
            }
            "--try-write" => {
                let p = next(&mut i);
                let r = fs::OpenOptions::new().write(true).open(&p).map(|_| ());
                actions.push(action("try-write", &p, r));
            }
            "--try-create" => {
                let p = next(&mut i);
                let r = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .map(|_| ());
                if r.is_ok() {
                    let _ = fs::remove_file(&p);
                }
                actions.push(action("try-create", &p, r));
            }
            "--try-mkdir" => {
                let p = next(&mut i);
                let r = fs::create_dir(&p);
                if r.is_ok() {
                    let _ = fs::remove_dir(&p);
                }
                actions.push(action("try-mkdir", &p, r));
            }
            "--try-syscall" => {
                let s = next(&mut i);
                let r = try_syscall(&s);
                actions.push(action("try-syscall", &s, r));
            }
            "--try-exec" => {
                let p = next(&mut i);
                let r = std::process::Command::new(&p).status();
                let mut v = json!({"action": "try-exec", "arg": p});
                match r {
                    Ok(st) => {
                        v["ok"] = json!(true);
                        v["code"] = json!(st.code());
                    }
                    Err(e) => {
                        v["ok"] = json!(false);
                        v["errno"] = json!(e.raw_os_error());
                        v["error"] = json!(e.to_string());
                    }
                }
                actions.push(v);
            }
            "--write" => {
                let p = next(&mut i);
                let c = next(&mut i);
                let r = fs::write(&p, c.as_bytes());
                actions.push(action("write", &p, r));
            }
            "--orphans" => {
                let n: usize = next(&mut i).parse().unwrap_or(1);
                for _ in 0..n {
                    // sh forks the background child and exits at once, so the child is
                    // reparented to the namespace's init, which must reap it.
                    let _ = std::process::Command::new("/bin/sh")
                        .args(["-c", "/bin/true & exit 0"])
                        .status();
                }
                actions.push(json!({"action": "orphans", "arg": n, "ok": true}));
            }
            "--wait-no-zombies" => {
                let mut zombies = zombie_count();
                for _ in 0..1000 {
                    if zombies == 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                    zombies = zombie_count();
                }
                actions.push(
                    json!({"action": "wait-no-zombies", "ok": zombies == 0, "zombies": zombies}),
                );
            }
            "--output" => output = Some(next(&mut i)),
            "--wait-signal" => after.push(("wait-signal".into(), String::new())),
            "--wait-file" => after.push(("wait-file".into(), next(&mut i))),
            "--sleep" => after.push(("sleep".into(), next(&mut i))),
            "--exit" => exit_code = next(&mut i).parse().unwrap_or(2),
            "--quiet" => quiet = true,
            other => {
                eprintln!("berth-probe: unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    report.insert("sysctls".into(), Value::Object(sysctls));
    report.insert("files".into(), Value::Object(files));
    report.insert("stats".into(), Value::Object(stats));
    report.insert("links".into(), Value::Object(links));
    report.insert("dirs".into(), Value::Object(dirs));
    report.insert("actions".into(), Value::Array(actions));
    // The fd list is taken last so that the descriptors the probe itself opened are closed.
    report.insert("fds".into(), fds_value());
    let blocked = if after.iter().any(|(w, _)| w == "wait-signal") {
        block_signals()
    } else {
        nix::sys::signal::SigSet::empty()
    };
    let line = Value::Object(report).to_string();
    match &output {
        Some(p) => {
            let tmp = format!("{p}.tmp");
            fs::write(&tmp, line.as_bytes())
                .and_then(|_| fs::rename(&tmp, p))
                .unwrap_or_else(|e| {
                    eprintln!("berth-probe: writing {p}: {e}");
                    std::process::exit(3)
                })
        }
        None if !quiet => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        None => {}
    }
    for (what, arg) in after {
        match what.as_str() {
            "wait-signal" => {
                let sig = wait_signal(&blocked);
                println!("{}", json!({ "signal": sig }));
            }
            "wait-file" => {
                while !Path::new(&arg).exists() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            "sleep" => {
                let secs: f64 = arg.parse().unwrap_or(1.0);
                std::thread::sleep(Duration::from_secs_f64(secs));
            }
            _ => {}
        }
    }
    std::process::exit(exit_code);
}

fn base_report(args: &[String]) -> Map<String, Value> {
    let mut r = Map::new();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    r.insert("args".into(), json!(args));
    r.insert("pid".into(), json!(std::process::id()));
    r.insert(
        "ppid".into(),
        json!(rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())),
    );
    r.insert("uid".into(), json!(rustix::process::getuid().as_raw()));
    r.insert("euid".into(), json!(rustix::process::geteuid().as_raw()));
    r.insert("gid".into(), json!(rustix::process::getgid().as_raw()));
    r.insert("egid".into(), json!(rustix::process::getegid().as_raw()));
    r.insert(
        "groups".into(),
        json!(
            rustix::process::getgroups()
                .map(|g| g.iter().map(|g| g.as_raw()).collect::<Vec<_>>())
                .unwrap_or_default()
        ),
    );
    let umask = field("Umask:").and_then(|v| u32::from_str_radix(&v, 8).ok());
    r.insert("umask".into(), json!(umask));
    r.insert(
        "cwd".into(),
        match std::env::current_dir() {
            Ok(p) => json!(p.to_string_lossy()),
            Err(e) => err_value(&e),
        },
    );
    r.insert(
        "env".into(),
        json!(
            std::env::vars_os()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect::<Vec<_>>()
        ),
    );
    let uts = rustix::system::uname();
    r.insert("hostname".into(), json!(uts.nodename().to_string_lossy()));
    r.insert(
        "domainname".into(),
        json!(uts.domainname().to_string_lossy()),
    );
    let mut caps = Map::new();
    for (key, name) in [
        ("inheritable", "CapInh:"),
        ("permitted", "CapPrm:"),
        ("effective", "CapEff:"),
        ("bounding", "CapBnd:"),
        ("ambient", "CapAmb:"),
    ] {
        let mask = field(name)
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .unwrap_or(0);
        caps.insert(key.into(), json!(cap_names(mask)));
    }
    r.insert("caps".into(), Value::Object(caps));
    r.insert(
        "no_new_privs".into(),
        json!(field("NoNewPrivs:").as_deref() == Some("1")),
    );
    r.insert(
        "seccomp".into(),
        json!({
            "mode": field("Seccomp:").and_then(|v| v.parse::<u32>().ok()),
            "filters": field("Seccomp_filters:").and_then(|v| v.parse::<u32>().ok()),
        }),
    );
    r.insert("uid_map".into(), read_value("/proc/self/uid_map"));
    r.insert("gid_map".into(), read_value("/proc/self/gid_map"));
    r.insert("setgroups".into(), read_value("/proc/self/setgroups"));
    let mut ns = Map::new();
    for n in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(t) = fs::read_link(format!("/proc/self/ns/{n}")) {
            ns.insert(n.into(), json!(t.to_string_lossy()));
        }
    }
    r.insert("namespaces".into(), Value::Object(ns));
    r.insert("mounts".into(), mounts_value());
    r.insert("cgroup".into(), read_value("/proc/self/cgroup"));
    r.insert("rlimits".into(), rlimits_value());
    r.insert(
        "oom_score_adj".into(),
        json!(
            fs::read_to_string("/proc/self/oom_score_adj")
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
        ),
    );
    r.insert(
        "tty".into(),
        json!({
            "stdin": rustix::termios::isatty(rustix::stdio::stdin()),
            "stdout": rustix::termios::isatty(rustix::stdio::stdout()),
            "stderr": rustix::termios::isatty(rustix::stdio::stderr()),
            "name": rustix::termios::ttyname(rustix::stdio::stdin(), Vec::new())
                .ok().map(|n| n.to_string_lossy().into_owned()),
        }),
    );
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let stat_field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    r.insert(
        "session".into(),
        json!({"pgrp": stat_field(5), "sid": stat_field(6), "tty_nr": stat_field(7)}),
    );
    r.insert(
        "sched".into(),
        json!({"nice": stat_field(19), "policy": stat_field(41), "priority": stat_field(18)}),
    );
    r.insert(
        "personality".into(),
        json!(
            fs::read_to_string("/proc/self/personality")
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
        ),
    );
    r.insert(
        "time".into(),
        json!({
            "monotonic": secs(rustix::time::ClockId::Monotonic),
            "boottime": secs(rustix::time::ClockId::Boottime),
        }),
    );
    r.insert("root_listing".into(), ls_value("/"));
    r
}

fn secs(id: rustix::time::ClockId) -> f64 {
    let t = rustix::time::clock_gettime(id);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAP_NAMES
                .get(b)
                .map_or_else(|| format!("CAP_{b}"), |n| n.to_string())
        })
        .collect()
}

fn err_value(e: &std::io::Error) -> Value {
    json!({"error": e.to_string(), "errno": e.raw_os_error()})
}

fn read_value(path: &str) -> Value {
    match fs::read(path) {
        Ok(b) => json!(String::from_utf8_lossy(&b[..b.len().min(65536)])),
        Err(e) => err_value(&e),
    }
}

fn stat_value(path: &str) -> Value {
    match fs::symlink_metadata(path) {
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "file"
            };
            let rdev = m.rdev();
            json!({
                "type": kind,
                "mode": m.permissions().mode() & 0o7777,
                "uid": m.uid(),
                "gid": m.gid(),
                "major": rustix::fs::major(rdev),
                "minor": rustix::fs::minor(rdev),
                "size": m.len(),
            })
        }
        Err(e) => err_value(&e),
    }
}

fn ls_value(path: &str) -> Value {
    match fs::read_dir(path) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            json!(names)
        }
        Err(e) => err_value(&e),
    }
}

fn action(name: &str, arg: &str, r: std::io::Result<()>) -> Value {
    match r {
        Ok(()) => json!({"action": name, "arg": arg, "ok": true}),
        Err(e) => json!({
            "action": name, "arg": arg, "ok": false,
            "errno": e.raw_os_error(), "error": e.to_string(),
        }),
    }
}

fn try_syscall(spec: &str) -> std::io::Result<()> {
    let (name, arg) = spec.split_once(':').unwrap_or((spec, ""));
    let io = |r: rustix::io::Result<()>| r.map_err(std::io::Error::from);
    match name {
        "uname" => {
            rustix::system::uname();
            Ok(())
        }
        "getcwd" => io(rustix::process::getcwd(Vec::new()).map(|_| ())),
        "sethostname" => io(rustix::system::sethostname(
            if arg.is_empty() { "probe" } else { arg }.as_bytes(),
        )),
        "unshare-uts" => {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).map_err(std::io::Error::from)
        }
        "setns-self" => io(rustix::thread::move_into_link_name_space(
            fs::File::open("/proc/self/ns/net")
                .map(rustix::fd::OwnedFd::from)?
                .as_fd_borrowed(),
            None,
        )),
        "mount-tmpfs" => io(rustix::mount::mount(
            "tmpfs",
            arg,
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None,
        )),
        "chmod" => io(rustix::fs::chmod(
            arg,
            rustix::fs::Mode::from_raw_mode(0o755),
        )),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown syscall probe {name}"),
        )),
    }
}

trait AsFdBorrowed {
    fn as_fd_borrowed(&self) -> rustix::fd::BorrowedFd<'_>;
}
impl AsFdBorrowed for rustix::fd::OwnedFd {
    fn as_fd_borrowed(&self) -> rustix::fd::BorrowedFd<'_> {
        use rustix::fd::AsFd;
        self.as_fd()
    }
}

fn mounts_value() -> Value {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let (pre, post) = match line.split_once(" - ") {
            Some(x) => x,
            None => continue,
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            continue;
        }
        out.push(json!({
            "root": unescape(pre[3]),
            "mount_point": unescape(pre[4]),
            "options": pre[5],
            "propagation": pre[6..].join(" "),
            "fstype": post[0],
            "source": unescape(post[1]),
            "super_options": post[2],
        }));
    }
    Value::Array(out)
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo (three octal digits).
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn rlimits_value() -> Value {
    use rustix::process::Resource as R;
    let mut m = Map::new();
    for (name, r) in [
        ("RLIMIT_CPU", R::Cpu),
        ("RLIMIT_FSIZE", R::Fsize),
        ("RLIMIT_DATA", R::Data),
        ("RLIMIT_STACK", R::Stack),
        ("RLIMIT_CORE", R::Core),
        ("RLIMIT_RSS", R::Rss),
        ("RLIMIT_NPROC", R::Nproc),
        ("RLIMIT_NOFILE", R::Nofile),
        ("RLIMIT_MEMLOCK", R::Memlock),
        ("RLIMIT_AS", R::As),
        ("RLIMIT_LOCKS", R::Locks),
        ("RLIMIT_SIGPENDING", R::Sigpending),
        ("RLIMIT_MSGQUEUE", R::Msgqueue),
        ("RLIMIT_NICE", R::Nice),
        ("RLIMIT_RTPRIO", R::Rtprio),
        ("RLIMIT_RTTIME", R::Rttime),
    ] {
        let l = rustix::process::getrlimit(r);
        m.insert(name.into(), json!([l.current, l.maximum]));
    }
    Value::Object(m)
}

fn fds_value() -> Value {
    use rustix::fd::AsRawFd;
    let mut m = Map::new();
    // Open the directory ourselves so its own descriptor can be left out of the list.
    let Ok(dir) = rustix::fs::open(
        "/proc/self/fd",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return Value::Object(m);
    };
    let own = dir.as_raw_fd().to_string();
    let mut names = Vec::new();
    if let Ok(mut d) = rustix::fs::Dir::read_from(&dir) {
        while let Some(Ok(e)) = d.read() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." && n != own {
                names.push(n);
            }
        }
    }
    for n in names {
        if let Ok(t) = fs::read_link(format!("/proc/self/fd/{n}")) {
            m.insert(n, json!(t.to_string_lossy()));
        }
    }
    Value::Object(m)
}

fn zombie_count() -> usize {
    let Ok(rd) = fs::read_dir("/proc") else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .count()
}

/// Blocks every catchable signal, then waits for one and returns its number. Blocked
/// signals are queued even for a namespace's PID 1, which would otherwise drop signals it has
/// no handler for.
fn block_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::all();
    set.remove(nix::sys::signal::Signal::SIGCHLD);
    let _ = set.thread_block();
    set
}

fn wait_signal(set: &nix::sys::signal::SigSet) -> i32 {
    set.wait().map_or(-1, |s| s as i32)
}
