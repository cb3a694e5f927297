//! The `berth` CLI end to end against a real berthd: every verb and the flags of issue 4,
//! asserting what a user sees (output, exit codes) and the effects inside the container;
//! output shapes are compared with the real docker CLI against the same daemon.

mod common;
use common::{Daemon, berth_bin, require_cli, stderr, stdout, wait_until};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A daemon with `busybox:latest` imported through `berth import`.
fn daemon() -> Daemon {
    let d = Daemon::start();
    let tar = common::busybox_tar();
    let o = d.berth(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    assert!(o.status.success(), "berth import: {}", stderr(&o));
    let id = stdout(&o);
    assert!(
        id.starts_with("sha256:") && id.trim().len() == 71,
        "import prints the image id: {id:?}"
    );
    d
}

trait Cli {
    fn ok(&self, args: &[&str]) -> String;
    fn fails(&self, args: &[&str]) -> Output;
    fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output;
    fn cli(&self, args: &[&str]) -> Command;
}

impl Cli for Daemon {
    /// Runs berth, asserting success; returns stdout without the trailing newline.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}): {}\n--- daemon log:\n{}",
            o.status,
            stderr(&o),
            self.log()
        );
        let s = stdout(&o);
        s.strip_suffix('\n').unwrap_or(&s).to_string()
    }

    fn fails(&self, args: &[&str]) -> Output {
        let o = self.berth(args);
        assert!(
            !o.status.success(),
            "berth {args:?} succeeded: {}",
            stdout(&o)
        );
        o
    }

    fn with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self
            .cli(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut sin = c.stdin.take().unwrap();
        sin.write_all(input).unwrap();
        drop(sin);
        c.wait_with_output().unwrap()
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.args(args).env("BERTH_HOST", self.host());
        c
    }
}

fn status_field(s: &str, k: &str) -> String {
    s.lines()
        .find(|l| l.starts_with(k))
        .map(|l| l[k.len()..].trim().to_string())
        .unwrap_or_default()
}

#[test]
fn missing_socket_says_how_to_start_berthd() {
    require_cli!();
    let o = Command::new(berth_bin())
        .args(["-H", "unix:///tmp/berth-test-nonexistent/berth.sock", "ps"])
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("berth-test-nonexistent/berth.sock") && e.contains("berthd"),
        "{e}"
    );
    // DOCKER_HOST is honoured when BERTH_HOST is unset
    let o = Command::new(berth_bin())
        .arg("version")
        .env_remove("BERTH_HOST")
        .env("DOCKER_HOST", "unix:///tmp/berth-test-nonexistent2/s.sock")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("berth-test-nonexistent2"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_output_and_exit_codes() {
    require_cli!();
    let d = daemon();
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "echo",
        "hello",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello\n");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o), "err\n");
    assert_eq!(stdout(&o), "");
    // docker's exit codes: 127 not found, 126 cannot invoke, 125 engine errors
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "nonexistent-cmd",
    ]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("nonexistent-cmd"), "{}", stderr(&o));
    let o = d.berth(&["run", "--rm", "--network", "none", "busybox", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "berth-test-missing:1",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("No such image: berth-test-missing:1"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["run", "--rm", "--memory", "abc", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    // --rm removed every container, nothing half-created by the failures
    assert_eq!(d.container_count(), 0, "{}", d.log());
    // -d prints the full id; --name is used
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-d",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}}", "berth-test-d"]),
        "/berth-test-d"
    );
    // the name is taken: 125 and docker's conflict message
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "berth-test-d",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("Conflict. The container name \"/berth-test-d\" is already in use"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "berth-test-d"]);
    assert_eq!(d.container_count(), 0);
}

#[test]
fn run_config_flags_reach_the_container() {
    require_cli!();
    let d = daemon();
    let envf = d.dir.path().join("env.list");
    std::fs::write(&envf, "# a comment\nFROM_FILE=f1\n\nOTHER=o2\n").unwrap();
    let vol = tempfile::Builder::new()
        .prefix("berth-test-vol")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(vol.path().join("in.txt"), "from-host").unwrap();
    std::fs::set_permissions(
        vol.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let vols = format!("{}:/data", vol.path().display());
    let mnt = format!("type=bind,src={},dst=/ro,readonly", vol.path().display());
    let script = "echo env=$A,$FROM_FILE,$OTHER; echo pwd=$(pwd); echo id=$(id -u):$(id -g); \
        echo host=$(hostname); cat /data/in.txt; echo; echo hi > /data/out.txt; \
        touch /ro/x 2>/dev/null && echo ro=writable || echo ro=readonly";
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "A=1",
        "--env-file",
        envf.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "65534:50",
        "--hostname",
        "berth-box",
        "-v",
        &vols,
        "--mount",
        &mnt,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "env=1,f1,o2\npwd=/tmp\nid=65534:50\nhost=berth-box\nfrom-host\nro=readonly\n"
    );
    assert_eq!(
        std::fs::read_to_string(vol.path().join("out.txt")).unwrap(),
        "hi\n"
    );
    // --entrypoint replaces the command's program
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "echo",
            "busybox",
            "a",
            "b"
        ]),
        "a b"
    );
    // --read-only, --tmpfs, --shm-size
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/scratch:size=8m",
        "--shm-size",
        "16m",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo rootfs=rw || echo rootfs=ro; touch /scratch/y && echo tmpfs=rw; \
         grep -E ' /scratch | /dev/shm ' /proc/mounts",
    ]);
    let out = stdout(&o);
    assert!(
        out.starts_with("rootfs=ro\ntmpfs=rw\n"),
        "{out}{}",
        stderr(&o)
    );
    let scratch = out.lines().find(|l| l.contains(" /scratch ")).unwrap_or("");
    assert!(
        scratch.starts_with("tmpfs /scratch tmpfs") && scratch.contains("size=8192k"),
        "{out}"
    );
    let shm = out.lines().find(|l| l.contains(" /dev/shm ")).unwrap_or("");
    assert!(shm.contains("size=16384k"), "{out}");
    // --sysctl (a namespaced one), --init, --ulimit
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--init",
        "--ulimit",
        "nofile=512:1024",
        "busybox",
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward; cat /proc/1/comm; ulimit -n; ulimit -Hn",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "1");
    assert_ne!(lines[1], "sh", "--init puts an init at PID 1");
    assert_eq!(&lines[2..], ["512", "1024"]);
    // --network none: only lo; host: the host's interfaces
    let links = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links, "lo");
    let host_links = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let mine: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    for l in host_links.lines() {
        assert!(mine.iter().any(|m| m == l), "{l} not a host interface");
    }
    // -l, --restart, --stop-signal, --stop-timeout are stored
    d.ok(&[
        "create",
        "--name",
        "berth-test-cfg",
        "--network",
        "none",
        "-l",
        "a=b",
        "-l",
        "c",
        "--restart",
        "on-failure:3",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "7",
        "busybox",
        "true",
    ]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"a\"}}|{{index .Config.Labels \"c\"}}|{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}|{{.Config.StopSignal}}|{{.Config.StopTimeout}}",
            "berth-test-cfg"
        ]),
        "b||on-failure:3|SIGUSR1|7"
    );
    d.ok(&["rm", "berth-test-cfg"]);
    // --runtime runc: the same container through runc's CLI
    if Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists() {
        let o = d.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--runtime",
            "runc",
            "busybox",
            "echo",
            "via-runc",
        ]);
        assert_eq!(stdout(&o), "via-runc\n", "{}\n{}", stderr(&o), d.log());
    } else {
        eprintln!("skipped part: runc is not installed");
    }
    assert_eq!(d.container_count(), 0);
}

#[test]
fn run_limits_and_security() {
    require_cli!();
    let d = daemon();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "1000",
    ]);
    let cg = |ctl: &str, file: &str| {
        let p = Path::new("/sys/fs/cgroup")
            .join(ctl)
            .join(d.cgroup_parent.trim_start_matches('/'))
            .join(&id)
            .join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg("pids", "pids.max"), "50");
    d.ok(&["rm", "-f", &id]);
    // the memory limit holds: the kernel OOM-kills the container, the state says so
    let o = d.berth(&[
        "run",
        "--name",
        "berth-test-oom",
        "--network",
        "none",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "berth-test-oom"
        ]),
        "true 137"
    );
    assert_eq!(
        d.ok(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "event=oom",
            "--format",
            "{{.Actor.Attributes.name}}"
        ]),
        "berth-test-oom"
    );
    d.ok(&["rm", "berth-test-oom"]);

    let run_status = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "cat", "/proc/self/status"]);
        d.ok(&args)
    };
    let st = run_status(&[]);
    assert_eq!(
        status_field(&st, "CapEff:"),
        "00000000a80425fb",
        "docker's 14 caps"
    );
    assert_eq!(status_field(&st, "Seccomp:"), "2");
    assert_eq!(status_field(&st, "NoNewPrivs:"), "0");
    let st = run_status(&["--privileged"]);
    assert_eq!(status_field(&st, "Seccomp:"), "0");
    assert_eq!(
        status_field(&st, "CapEff:"),
        status_field(
            &std::fs::read_to_string("/proc/self/status").unwrap(),
            "CapBnd:"
        )
    );
    let st = run_status(&[
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "NET_ADMIN",
    ]);
    assert_eq!(
        status_field(&st, "CapEff:"),
        format!("{:016x}", 1u64 | (1 << 12))
    );
    let st = run_status(&["--cap-drop", "NET_RAW"]);
    assert_eq!(
        status_field(&st, "CapEff:"),
        format!("{:016x}", 0xa80425fbu64 & !(1 << 13))
    );
    let st = run_status(&[
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
    ]);
    assert_eq!(status_field(&st, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&st, "Seccomp:"), "0");
    // a bad --security-opt is refused with 125 and nothing is created
    let o = d.berth(&["run", "--rm", "--security-opt", "bogus", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(d.container_count(), 0);
}

#[test]
fn run_interactive_stdin_and_tty() {
    require_cli!();
    let d = daemon();
    // -i with stdin piped: the container reads it to EOF
    let o = d.with_stdin(
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        b"hello\nworld\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "HELLO\nWORLD\ndone\n");
    // without -i the container's stdin is empty
    let o = d.with_stdin(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "cat; echo end",
        ],
        b"ignored\n",
    );
    assert_eq!(stdout(&o), "end\n");
    // -t through a real pty (script(1)): the container sees a terminal
    let cmd = format!(
        "{} run -t --rm --network none busybox sh -c 'test -t 0 && echo is-a-tty; exit 4'",
        berth_bin().display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_HOST", d.host())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("is-a-tty\r"),
        "{:?} {}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(4),
        "script returns the container's code"
    );
    // -it: keystrokes reach an interactive shell through the pty, its exit code comes back
    let cmd = format!(
        "{} run -it --rm --network none busybox sh",
        berth_bin().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_HOST", d.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // keep our end open until the container exits (an EOF would end the shell early)
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(b"echo \"hi $((6*7))\"\nexit 5\n").unwrap();
    let o = child.wait_with_output().unwrap();
    drop(keys);
    assert!(
        stdout(&o).contains("hi 42\r\n"),
        "{:?} {}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(5));
    // create + start -a -i
    d.ok(&[
        "create",
        "-i",
        "--name",
        "berth-test-ai",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "read x; echo got:$x",
    ]);
    let o = d.with_stdin(&["start", "-a", "-i", "berth-test-ai"], b"ping\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "got:ping\n");
    // start -a returns the container's exit code
    d.ok(&[
        "create",
        "--name",
        "berth-test-sa",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; exit 5",
    ]);
    let o = d.berth(&["start", "-a", "berth-test-sa"]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(stdout(&o), "out\n");
    d.ok(&["rm", "berth-test-ai", "berth-test-sa"]);
    assert_eq!(d.container_count(), 0);
}

#[test]
fn lifecycle_verbs() {
    require_cli!();
    let d = daemon();
    let id = d.ok(&[
        "create",
        "--name",
        "berth-test-lc",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(id.len(), 64);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "berth-test-lc"]),
        "created"
    );
    assert_eq!(d.ok(&["start", "berth-test-lc"]), "berth-test-lc");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "berth-test-lc"]),
        "running"
    );
    // start of a running container is fine (304 → prints the name)
    assert_eq!(d.ok(&["start", "berth-test-lc"]), "berth-test-lc");
    let pid1 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-lc"]);
    assert_eq!(
        d.ok(&["restart", "-t", "0", "berth-test-lc"]),
        "berth-test-lc"
    );
    let pid2 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-lc"]);
    assert_ne!(pid1, pid2);
    // kill -s: the signal reaches the process (a trap records it)
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-sig",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 9' USR1; echo ready; while true; do sleep 0.05; done",
    ]);
    wait_until("ready", || {
        d.ok(&["logs", "berth-test-sig"]).contains("ready")
    });
    assert_eq!(
        d.ok(&["kill", "-s", "USR1", "berth-test-sig"]),
        "berth-test-sig"
    );
    assert_eq!(d.ok(&["wait", "berth-test-sig"]), "9");
    assert_eq!(d.ok(&["logs", "berth-test-sig"]), "ready\ngot-usr1");
    // kill of a stopped container: docker's message, exit 1
    let o = d.fails(&["kill", "berth-test-sig"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    // stop: SIGTERM, then SIGKILL after -t; a stopped container stops fine again
    assert_eq!(d.ok(&["stop", "-t", "1", "berth-test-lc"]), "berth-test-lc");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "berth-test-lc"
        ]),
        "exited 137"
    );
    assert_eq!(d.ok(&["stop", "berth-test-lc"]), "berth-test-lc");
    // wait of several containers prints each code
    assert_eq!(d.ok(&["wait", "berth-test-lc", "berth-test-sig"]), "137\n9");
    // rename; the old name is gone
    assert_eq!(d.ok(&["rename", "berth-test-lc", "berth-test-lc2"]), "");
    let o = d.fails(&["inspect", "berth-test-lc"]);
    assert!(
        stderr(&o).contains("No such object: berth-test-lc"),
        "{}",
        stderr(&o)
    );
    let o = d.fails(&["rename", "berth-test-lc2", "berth-test-sig"]);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    // rm of a running container needs -f; rm -f -v removes it and its anonymous volume
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-run",
        "-v",
        "/anon",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.fails(&["rm", "berth-test-run"]);
    assert!(
        stderr(&o).contains("cannot remove container"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("force"), "{}", stderr(&o));
    assert_eq!(
        d.ok(&["rm", "-f", "-v", "berth-test-run"]),
        "berth-test-run"
    );
    // rm of several, one missing: the others go, exit 1
    let o = d.fails(&["rm", "berth-test-lc2", "berth-test-nope", "berth-test-sig"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "berth-test-lc2\nberth-test-sig\n");
    assert!(
        stderr(&o).contains("No such container: berth-test-nope"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.container_count(), 0);
    // --rm with -d: removed when it exits
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "berth-test-auto",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    wait_until("auto-removal", || d.container_count() == 0);
}

#[test]
fn ps_flags_and_formats_match_docker() {
    require_cli!();
    let d = daemon();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-p1",
        "-l",
        "role=web",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        d.berth(&[
            "run",
            "--name",
            "berth-test-p2",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 2",
        ])
        .status
        .code(),
        Some(2)
    );
    d.ok(&[
        "create",
        "--name",
        "berth-test-p3",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let both = |args: &[&str]| {
        let b = d.ok(args);
        let k = d.docker_ok(args);
        assert_eq!(b, k, "berth vs docker for {args:?}");
        b
    };
    assert_eq!(both(&["ps", "--format", "{{.Names}}"]), "berth-test-p1");
    assert_eq!(
        both(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "berth-test-p3 created\nberth-test-p2 exited\nberth-test-p1 running"
    );
    assert_eq!(
        both(&["ps", "-a", "-n", "2", "--format", "{{.Names}}"]),
        "berth-test-p3\nberth-test-p2"
    );
    assert_eq!(
        both(&["ps", "-l", "--format", "{{.Names}}"]),
        "berth-test-p3"
    );
    assert_eq!(
        both(&[
            "ps",
            "-a",
            "--filter",
            "label=role=web",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-p1"
    );
    assert_eq!(
        both(&["ps", "-a", "--filter", "exited=2", "--format", "{{.Names}}"]),
        "berth-test-p2"
    );
    assert_eq!(
        both(&["ps", "-a", "--filter", "status=created", "-q"]).len(),
        12
    );
    assert_eq!(
        both(&[
            "ps",
            "-a",
            "--filter",
            "name=p2",
            "--format",
            "{{.Names}} {{.Status}}"
        ])
        .split(" (")
        .next(),
        Some("berth-test-p2 Exited")
    );
    assert_eq!(
        both(&["ps", "-a", "--filter", "ancestor=busybox", "-q"])
            .lines()
            .count(),
        3
    );
    assert_eq!(
        both(&[
            "ps",
            "-a",
            "--filter",
            "before=berth-test-p2",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-p1"
    );
    assert_eq!(
        both(&[
            "ps",
            "-a",
            "--filter",
            "since=berth-test-p2",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-p3"
    );
    let full = both(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(full.lines().all(|l| l.len() == 64), "{full}");
    assert_eq!(both(&["ps", "--format", "{{.Command}}"]), "\"sleep 1000\"");
    assert_eq!(
        both(&["ps", "--no-trunc", "--format", "{{.Command}} {{.Labels}}"]),
        "\"sleep 1000\" role=web"
    );
    assert_eq!(both(&["ps", "--format", "{{.Label \"role\"}}"]), "web");
    // tables: same header line and columns
    let header = |s: &str| {
        s.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let b = d.ok(&["ps", "-a"]);
    let k = d.docker_ok(&["ps", "-a"]);
    assert_eq!(header(&b), header(&k));
    assert_eq!(
        header(&b),
        "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES"
    );
    assert_eq!(b.lines().count(), 4, "{b}");
    let b = d.ok(&["ps", "-s"]);
    assert_eq!(header(&b), header(&d.docker_ok(&["ps", "-s"])));
    assert!(b.lines().nth(1).unwrap_or("").contains("(virtual "), "{b}");
    let b = d.ok(&["ps", "--format", "table {{.Names}}\t{{.Image}}"]);
    assert_eq!(
        b,
        d.docker_ok(&["ps", "--format", "table {{.Names}}\t{{.Image}}"])
    );
    // {{json .}}: the same keys as docker's
    let keys = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"));
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&d.ok(&["ps", "--format", "{{json .}}"])),
        keys(&d.docker_ok(&["ps", "--format", "{{json .}}"]))
    );
    assert_eq!(
        both(&[
            "ps",
            "--format",
            "{{json .Platform}} {{.Platform}} {{json .Names}}"
        ]),
        "null <nil> \"berth-test-p1\""
    );
    assert_eq!(
        both(&["images", "--format", "{{json .Digest}}"]),
        "\"<none>\""
    );
    let rows = d.ok(&["images", "--format", "json"]);
    assert!(rows.contains(r#""Digest":"\u003cnone\u003e""#), "{rows}");
    // a bad filter is refused
    let o = d.fails(&["ps", "--filter", "bogus=1"]);
    assert!(stderr(&o).contains("bogus"), "{}", stderr(&o));
}

#[test]
fn logs_follow_tail_timestamps_since_until() {
    require_cli!();
    let d = daemon();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-log",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; done; exec sleep 1000",
    ]);
    wait_until("first lines", || {
        d.ok(&["logs", "berth-test-log"]).contains("line 3")
    });
    let o = d.berth(&["logs", "berth-test-log"]);
    assert_eq!(stdout(&o), "line 1\nline 2\nline 3\n");
    assert_eq!(stderr(&o), "");
    assert_eq!(
        d.ok(&["logs", "--tail", "2", "berth-test-log"]),
        "line 2\nline 3"
    );
    // the container's stderr goes to berth's stderr
    d.ok(&[
        "run",
        "--name",
        "berth-test-err",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    let o = d.berth(&["logs", "berth-test-err"]);
    assert_eq!((stdout(&o), stderr(&o)), ("out\n".into(), "err\n".into()));
    assert_eq!(d.ok(&["logs", "-n", "0", "berth-test-log"]), "");
    let ts = d.ok(&["logs", "-t", "--tail", "1", "berth-test-log"]);
    assert!(
        ts.len() == "2026-01-01T00:00:00.000000000Z line 3".len(),
        "{ts}"
    );
    assert!(ts.ends_with("Z line 3"), "{ts}");
    assert_eq!(
        d.ok(&["logs", "--since", "5m", "berth-test-log"]),
        "line 1\nline 2\nline 3"
    );
    assert_eq!(d.ok(&["logs", "--until", "1h", "berth-test-log"]), "");
    let stamp = ts.split(' ').next().unwrap();
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60)).to_string();
    assert_eq!(d.ok(&["logs", "--since", &later, "berth-test-log"]), "");
    assert!(
        d.ok(&["logs", "--since", stamp, "berth-test-log"])
            .ends_with("line 3")
    );
    // the same as docker's for the same flags
    for args in [
        &["logs", "--tail", "2", "berth-test-log"][..],
        &["logs", "-t", "berth-test-log"][..],
        &["logs", "--until", stamp, "berth-test-log"][..],
    ] {
        assert_eq!(d.ok(args), d.docker_ok(args), "{args:?}");
    }
    // -f follows until the container exits
    let follow = d
        .cli(&["logs", "-f", "--tail", "1", "berth-test-log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the follower gets the tail, then the stream ends when the container does
    std::thread::sleep(Duration::from_millis(200));
    d.ok(&["kill", "berth-test-log"]);
    let o = follow.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "line 3\n");
}

#[test]
fn inspect_format_and_type() {
    require_cli!();
    let d = daemon();
    d.ok(&[
        "create",
        "--name",
        "berth-test-in",
        "-l",
        "k=v",
        "-e",
        "A=1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "5",
    ]);
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "berth-test-in"])).unwrap();
    assert_eq!(v[0]["Name"], "/berth-test-in");
    assert_eq!(v[0]["State"]["Status"], "created");
    for f in [
        "{{.State.Status}}",
        "{{index .Config.Labels \"k\"}}",
        "{{json .Config.Labels}}",
        "{{.Config.Image}} {{.Path}} {{range .Args}}[{{.}}]{{end}}",
        "{{.HostConfig.NetworkMode}}",
        "{{len .Config.Env}}",
    ] {
        assert_eq!(
            d.ok(&["inspect", "-f", f, "berth-test-in"]),
            d.docker_ok(&["inspect", "-f", f, "berth-test-in"]),
            "{f}"
        );
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .Config.Labels}}", "berth-test-in"]),
        "{\"k\":\"v\"}"
    );
    // --type picks the object kind
    let img = d.ok(&[
        "inspect",
        "--type",
        "image",
        "-f",
        "{{index .RepoTags 0}}",
        "busybox",
    ]);
    assert_eq!(img, "busybox:latest");
    let o = d.fails(&["inspect", "--type", "image", "berth-test-in"]);
    assert!(
        stderr(&o).contains("No such image: berth-test-in"),
        "{}",
        stderr(&o)
    );
    let o = d.fails(&["inspect", "--type", "container", "busybox"]);
    assert!(
        stderr(&o).contains("No such container: busybox"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Os}}", "busybox"]),
        "linux"
    );
    assert_eq!(
        d.ok(&["container", "inspect", "-f", "{{.Name}}", "berth-test-in"]),
        "/berth-test-in"
    );
    // several objects, one missing: found ones printed, exit 1, docker's message
    let o = d.fails(&[
        "inspect",
        "-f",
        "{{.Name}}",
        "berth-test-in",
        "berth-test-zz",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "/berth-test-in\n");
    assert!(
        stderr(&o).contains("No such object: berth-test-zz"),
        "{}",
        stderr(&o)
    );
    // a bad template is a clear error
    let o = d.fails(&["inspect", "-f", "{{.State.Status", "berth-test-in"]);
    assert!(
        stderr(&o).to_lowercase().contains("template"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn images_tag_rmi_save_load_history_prune() {
    require_cli!();
    let d = daemon();
    let both = |args: &[&str]| {
        let b = d.ok(args);
        assert_eq!(b, d.docker_ok(args), "berth vs docker for {args:?}");
        b
    };
    assert_eq!(d.ok(&["tag", "busybox", "berth-test/bb:1"]), "");
    let sorted = |s: String| {
        let mut l: Vec<String> = s.lines().map(str::to_string).collect();
        l.sort();
        l.join("\n")
    };
    assert_eq!(
        sorted(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])),
        sorted(d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]))
    );
    assert_eq!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "berth-test/bb:1\nbusybox:latest"
    );
    let header = |s: &str| {
        s.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let imgs = d.ok(&["images"]);
    assert_eq!(header(&imgs), header(&d.docker_ok(&["images"])));
    assert_eq!(header(&imgs), "REPOSITORY TAG IMAGE ID CREATED SIZE");
    assert_eq!(both(&["images", "-q"]).lines().count(), 2);
    assert_eq!(
        both(&["images", "busybox", "--format", "{{.Repository}}"]),
        "busybox"
    );
    // history
    let h = d.ok(&["history", "busybox"]);
    assert_eq!(header(&h), header(&d.docker_ok(&["history", "busybox"])));
    assert_eq!(
        both(&[
            "history",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "busybox"
        ]),
        d.docker_ok(&[
            "history",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "busybox"
        ])
    );
    // save | rmi | load through files and pipes
    let tar = d.dir.path().join("bb.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    let o = d.fails(&["save", "berth-test-none:1"]);
    assert!(stderr(&o).contains("berth-test-none"), "{}", stderr(&o));
    assert_eq!(
        d.ok(&["rmi", "berth-test/bb:1"]),
        "Untagged: berth-test/bb:1"
    );
    let rm = d.ok(&["rmi", "busybox"]);
    assert!(
        rm.starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{rm}"
    );
    assert_eq!(d.ok(&["images", "-q"]), "");
    let o = d.fails(&["rmi", "busybox"]);
    assert!(
        stderr(&o).contains("No such image: busybox"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&["load", "-i", tar.to_str().unwrap()]),
        "Loaded image: busybox:latest"
    );
    let o = d.with_stdin(&["load", "-q"], &std::fs::read(&tar).unwrap());
    assert!(o.status.success(), "{}", stderr(&o));
    // save to stdout (a pipe) is a tar
    let o = d.cli(&["save", "busybox"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(&o.stdout[257..262], b"ustar");
    // rmi of an image a container uses: conflict; -f untags
    d.ok(&[
        "create",
        "--name",
        "berth-test-user",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let o = d.fails(&["rmi", "busybox"]);
    assert!(stderr(&o).contains("conflict"), "{}", stderr(&o));
    d.ok(&["rm", "berth-test-user"]);
    // image prune: dangling only, or -a every unused
    d.ok(&["tag", "busybox", "berth-test/keep:1"]);
    let pruned = d.ok(&["image", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    // one image, two tags: `-q` prints its ID once per tag, as docker does
    let ids = d.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    assert_eq!(
        ids.lines().collect::<std::collections::HashSet<_>>().len(),
        1
    );
    let pruned = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Deleted Images"), "{pruned}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

#[test]
fn import_export_prune_df_version_info_events() {
    require_cli!();
    let d = daemon();
    let since = jiff::Timestamp::now().as_second().to_string();
    // export of a container, import of the tar (from stdin) as a new image with a CMD
    d.ok(&[
        "create",
        "--name",
        "berth-test-ex",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let tar = d.dir.path().join("ex.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "berth-test-ex"]);
    let list = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    assert!(stdout(&list).contains("bin/busybox"));
    let o = d.cli(&["export", "berth-test-ex"]).output().unwrap();
    assert_eq!(
        o.stdout.len() as u64,
        std::fs::metadata(&tar).unwrap().len()
    );
    let o = d.with_stdin(
        &[
            "import",
            "-c",
            "CMD [\"echo\", \"imported\"]",
            "-m",
            "berth-test msg",
            "-",
            "berth-test/imp:2",
        ],
        &std::fs::read(&tar).unwrap(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "berth-test/imp:2"]),
        "imported"
    );
    assert_eq!(
        d.ok(&["history", "--format", "{{.Comment}}", "berth-test/imp:2"]),
        "berth-test msg"
    );
    // container prune
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-keep",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(
        d.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "berth-test-keep"
    );
    // system df: docker's table and formats
    let header = |s: &str| {
        s.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let df = d.ok(&["system", "df"]);
    assert_eq!(header(&df), header(&d.docker_ok(&["system", "df"])));
    let f = "{{.Type}} {{.TotalCount}} {{.Active}}";
    assert_eq!(
        d.ok(&["system", "df", "--format", f]),
        d.docker_ok(&["system", "df", "--format", f])
    );
    assert!(d.ok(&["system", "df", "-v"]).contains("berth-test-keep"));
    // -v with a custom format renders once over all the lists, like docker's
    let shape = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"));
        let keys = |o: &serde_json::Value| {
            let mut k: Vec<String> = o
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        (
            keys(&v),
            keys(&v["Images"][0]),
            keys(&v["Containers"][0]),
            v["Containers"][0]["Names"].clone(),
            v["Images"][0]["ID"].as_str().map(str::len),
        )
    };
    let args = ["system", "df", "-v", "--format", "{{json .}}"];
    let (b, k) = (shape(&d.ok(&args)), shape(&d.docker_ok(&args)));
    assert_eq!(b, k);
    assert_eq!(b.3, "berth-test-keep");
    // version and info
    let v = d.ok(&["version", "-f", "{{.Server.APIVersion}}"]);
    assert_eq!(v, "1.47");
    let v = d.ok(&["version"]);
    assert!(v.contains("Client:") && v.contains("Server:"), "{v}");
    let f = "{{.Driver}} {{.CgroupDriver}} {{.Containers}} {{.ContainersRunning}} {{.Images}}";
    assert_eq!(d.ok(&["info", "-f", f]), d.docker_ok(&["info", "-f", f]));
    assert_eq!(d.ok(&["info", "-f", "{{.ContainersRunning}}"]), "1");
    let info = d.ok(&["info"]);
    assert!(
        info.contains("Storage Driver: overlay2") && info.contains("Cgroup Driver: cgroupfs"),
        "{info}"
    );
    // system prune removes the stopped, keeps the running and its image
    d.ok(&["stop", "-t", "0", "berth-test-keep"]);
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(d.container_count(), 0);
    // events: history with --since/--until, filters, format
    let until = (jiff::Timestamp::now().as_second() + 1).to_string();
    let ev = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    for want in [
        "container create",
        "container start",
        "container die",
        "container destroy",
        "image import",
    ] {
        assert!(ev.lines().any(|l| l == want), "missing {want:?} in:\n{ev}");
    }
    let f = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ];
    let ev = d.ok(&f);
    assert_eq!(ev, d.docker_ok(&f));
    assert!(
        ev.lines()
            .any(|l| l == "berth-test-keep 137" || l == "berth-test-keep 143"),
        "{ev}"
    );
    // events streams live ones until killed
    let mut live = d
        .cli(&[
            "events",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    d.ok(&[
        "create",
        "--name",
        "berth-test-ev",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(live.stdout.as_mut().unwrap(), &mut buf).unwrap();
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "create berth-test-ev\n");
}

/// Regression: a container that exited before its start had recorded `running` (quick with
/// `--runtime runc`, whose start is slower) had its exit dropped ("cannot record an exit in
/// this state"), stayed `running` forever and `run --rm` hung.
#[test]
fn exit_during_start_is_recorded() {
    require_cli!();
    let d = daemon();
    let runc = Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists();
    // the race hit about one run in twelve before the fix
    for i in 0..24 {
        let mut args = vec!["run", "--rm", "--network", "none"];
        if runc && i % 4 != 3 {
            args.extend_from_slice(&["--runtime", "runc"]);
        }
        args.extend_from_slice(&["busybox", "sh", "-c", "exit 3"]);
        let o = d.berth(&args);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{args:?}: {}\n{}",
            stderr(&o),
            d.log()
        );
    }
    let id = d.ok(&["run", "-d", "--network", "none", "busybox", "true"]);
    assert_eq!(d.ok(&["wait", &id]), "0");
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id
        ]),
        "exited 0"
    );
    d.ok(&["rm", &id]);
    assert!(!d.log().contains("exit not recorded"), "{}", d.log());
    assert_eq!(d.container_count(), 0);
}

/// `run` forwards the signals it gets to the container (docker's `--sig-proxy`, on by
/// default) from the thread that streams the output (no thread of its own: its exit delayed
/// the CLI's), each signal as itself; `--sig-proxy=false` leaves them to the CLI.
#[test]
fn run_forwards_signals_to_the_container() {
    use rustix::process::{Pid, Signal, kill_process};
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    require_cli!();
    let d = daemon();
    let script = "trap 'echo got-term; exit 7' TERM; trap 'echo got-usr1; exit 9' USR1; \
                  echo ready; while :; do sleep 0.05; done";
    // runs the script, sends `sig` to the CLI once the traps are set
    let signal_run = |extra: &[&str], sig: Signal| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        let mut child = d
            .cli(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "{}", d.log());
        // the CLI waits for output and signals in one thread
        let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .unwrap()
            .count();
        assert_eq!(tasks, 1, "threads of the CLI");
        kill_process(Pid::from_child(&child), sig).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        (child.wait().unwrap(), rest)
    };
    let (status, rest) = signal_run(&[], Signal::TERM);
    assert_eq!(status.code(), Some(7), "{rest}\n{}", d.log());
    assert_eq!(rest, "got-term\n");
    let (status, rest) = signal_run(&[], Signal::USR1);
    assert_eq!(status.code(), Some(9), "{rest}\n{}", d.log());
    assert_eq!(rest, "got-usr1\n");
    assert_eq!(d.container_count(), 0, "{}", d.log());
    // not forwarded: the CLI dies of the signal, the container runs on
    let (status, _) = signal_run(&["--sig-proxy=false"], Signal::USR1);
    assert_eq!(status.signal(), Some(Signal::USR1.as_raw()), "{status:?}");
    assert_eq!(
        d.ok(&["ps", "-q"]).lines().count(),
        1,
        "the container still runs"
    );
}

/// What a user sees when something fails is docker 28's text (with `berth` for `docker`) and
/// exit code, for the same daemon answer.
#[test]
fn error_messages_match_docker() {
    require_cli!();
    let d = daemon();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-em",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    let cases: &[&[&str]] = &[
        &["rm", "berth-test-em"],
        &["rm", "berth-test-nope"],
        &["stop", "berth-test-nope"],
        &["start", "berth-test-nope", "berth-test-nope2"],
        &["kill", "-s", "BOGUS", "berth-test-em"],
        &["logs", "berth-test-nope"],
        &["inspect", "berth-test-nope"],
        &["rename", "berth-test-nope", "y"],
        &["rename", "berth-test-em", "berth-test-em"],
        &["wait", "berth-test-nope"],
        &["tag", "berth-test-nope", "x"],
        &["rmi", "berth-test-nope"],
        &["history", "berth-test-nope"],
        &["export", "berth-test-nope"],
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            "berth-test-nope:1",
        ],
        &["run", "--rm", "--network", "none", "busybox", "/etc"],
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "nonexistent-cmd",
        ],
        &["run", "-d", "--network", "none", "busybox", "/etc"],
        &["run", "--rm", "--restart", "always", "busybox"],
        &["ps", "--filter", "status=bogus"],
        &["start", "-a", "berth-test-nope"],
        &[
            "create",
            "--name",
            "berth-test-em",
            "--network",
            "none",
            "busybox",
        ],
        &[
            "create",
            "--network",
            "none",
            "--pull",
            "never",
            "berth-test-nope:1",
        ],
        &["create", "--rm", "--restart", "always", "busybox"],
        &[
            "wait",
            "berth-test-em-done",
            "berth-test-nope",
            "berth-test-em-done",
        ],
        &["rm", "-f", "berth-test-nope", "berth-test-nope2"],
        &["inspect", "--type", "bogus", "berth-test-em"],
        &["tag", "busybox", "Bad:Tag!"],
        &["tag", "busybox", "berth-test/Bad"],
        &["tag", "busybox", "reg.example:5000/Bad"],
    ];
    d.ok(&[
        "run",
        "--name",
        "berth-test-em-done",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    for args in cases {
        let b = d.berth(args);
        let k = d.docker(args);
        // container IDs differ between the two runs
        let ids = |s: String| {
            s.split('\n')
                .map(|l| {
                    if l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()) {
                        "<id>"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let norm = |o: &Output| {
            (
                o.status.code(),
                ids(stdout(o)),
                ids(stderr(o).replace("docker", "berth")),
            )
        };
        assert_eq!(norm(&b), norm(&k), "berth vs docker for {args:?}");
    }
}

/// `rm -f` of many sends the removals at once (docker's CLI: up to 50) and still prints the
/// names in the order given, the errors after them, exit code 1 for a missing container only
/// without `-f`; every container is gone and its name free afterwards.
#[test]
fn rm_of_many_removes_all_and_prints_them_in_order() {
    require_cli!();
    let d = daemon();
    let names: Vec<String> = (0..12).map(|i| format!("berth-test-rmmany-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        // running and exited containers, mixed
        let cmd = if i % 3 == 0 { "true" } else { "sleep 1000" };
        d.ok(&[
            "run",
            "-d",
            "--name",
            n,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            cmd,
        ]);
    }
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    args.push("berth-test-rmmany-nope");
    let o = d.berth(&args);
    assert!(o.status.success(), "rm -f: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        names.iter().map(|n| format!("{n}\n")).collect::<String>()
    );
    assert!(
        stderr(&o).contains("berth-test-rmmany-nope"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    for n in &names {
        d.ok(&[
            "create",
            "--name",
            n,
            "--network",
            "none",
            "busybox",
            "true",
        ]);
    }
    let mut args = vec!["rm"];
    args.extend(names.iter().map(String::as_str));
    args.push("berth-test-rmmany-nope");
    let o = d.fails(&args);
    assert_eq!(
        stdout(&o),
        names.iter().map(|n| format!("{n}\n")).collect::<String>()
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}
