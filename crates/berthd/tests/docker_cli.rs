//! End to end with the real docker CLI against a real berthd: the flows issue 4 names
//! (`docker load`, `run --rm`, `run -d` + `logs -f` + `stop` + `rm`, `ps --format`,
//! `inspect`, `wait`) plus the rest of the lifecycle, default security, events, export.

mod common;
use common::{Daemon, require};

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn run_rm_prints_output_and_returns_the_exit_code() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out(&o), "hello\n");
    // the bridge-network warning is printed by the CLI
    assert!(String::from_utf8_lossy(&o.stderr).contains("no bridge networking yet"));
    let o = d.docker(&[
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
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // --rm removed both
    assert_eq!(d.container_count(), 0, "{}", d.log());
    // unknown command: docker's 127
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "nonexistent-cmd",
    ]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn detached_logs_follow_stop_rm() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let id = d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-web",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; done; echo oops >&2; exec sleep 1000",
    ]);
    assert_eq!(id.len(), 64);
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.Image}} {{.State}}"]);
    assert_eq!(ps, "berth-test-web busybox running");
    let ps = d.docker_ok(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
    assert!(ps.starts_with(&id), "{ps}");
    // logs -f follows until the container stops
    let follow = std::process::Command::new(common::docker_cli())
        .args(["logs", "-f", "berth-test-web"])
        .env("DOCKER_HOST", d.host())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the output is there
    for _ in 0..100 {
        if d.docker_ok(&["logs", "berth-test-web"]).contains("line 3") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.docker_ok(&["stop", "-t", "1", "berth-test-web"]);
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success());
    assert_eq!(out(&followed), "line 1\nline 2\nline 3\n");
    assert_eq!(String::from_utf8_lossy(&followed.stderr), "oops\n");
    // tail, timestamps
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "2", "berth-test-web"]),
        "line 3"
    );
    let ts = d.docker_ok(&["logs", "-t", "--tail", "2", "berth-test-web"]);
    assert!(
        ts.ends_with("Z line 3") && ts.len() == "2026-01-01T00:00:00.000000000Z line 3".len(),
        "{ts}"
    );
    // the exit recorded: sleep ignores SIGTERM as PID 1, so SIGKILL after 1 s
    let st = d.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
        "berth-test-web",
    ]);
    assert_eq!(st, "exited 137 false");
    assert_eq!(d.docker_ok(&["wait", "berth-test-web"]), "137");
    let ps = d.docker_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Exited (137)"), "{ps}");
    d.docker_ok(&["rm", "berth-test-web"]);
    assert_eq!(d.container_count(), 0);
    let o = d.docker(&["rm", "berth-test-web"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such container: berth-test-web"));
}

#[test]
fn inspect_has_dockers_shape() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "create",
        "--name",
        "berth-test-i",
        "-l",
        "k=v",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "5",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&d.docker_ok(&["inspect", "berth-test-i"])).unwrap();
    let c = &v[0];
    assert_eq!(c["Name"], "/berth-test-i");
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["Path"], "sleep");
    assert_eq!(c["Args"][0], "5");
    assert_eq!(c["Config"]["Labels"]["k"], "v");
    assert_eq!(c["Config"]["WorkingDir"], "/tmp");
    assert!(
        c["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "A=1")
    );
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(c["HostConfig"]["PidsLimit"], 50);
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(c["GraphDriver"]["Name"], "overlay2");
    assert!(c["NetworkSettings"]["Networks"].is_object());
    assert_eq!(c["NetworkSettings"]["IPAddress"], "");
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"k\"}}",
            "berth-test-i"
        ]),
        "v"
    );
    // the generated OCI spec carries the limits
    let id = c["Id"].as_str().unwrap();
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            d.data_root()
                .join("containers")
                .join(id)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 50);
    d.docker_ok(&["start", "berth-test-i"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", "berth-test-i"]),
        "running"
    );
    let pid: i64 = d
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-i"])
        .parse()
        .unwrap();
    assert!(pid > 0);
    d.docker_ok(&["rm", "-f", "berth-test-i"]);
}

#[test]
fn default_security_and_privileged() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let status = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    let field = |s: &str, k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    // Docker's 14 default capabilities
    assert_eq!(field(&status, "CapEff:"), "00000000a80425fb", "{status}");
    assert_eq!(field(&status, "CapBnd:"), "00000000a80425fb");
    assert_eq!(field(&status, "Seccomp:"), "2");
    assert_eq!(field(&status, "NoNewPrivs:"), "0");
    // masked paths
    let kcore = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/timer_list",
    ]);
    assert_eq!(out(&kcore).trim(), "0");
    // no host devices
    let devs = d.docker_ok(&["run", "--rm", "--network", "none", "busybox", "ls", "/dev"]);
    assert!(!devs.contains("sda") && !devs.contains("vda"), "{devs}");
    // seccomp denies what Docker denies (unshare of a user ns without CAP_SYS_ADMIN)
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "unshare",
        "-U",
        "true",
    ]);
    assert!(!o.status.success());
    // privileged: every capability, no seccomp
    let st = d.docker_ok(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(field(&st, "Seccomp:"), "0");
    assert_ne!(field(&st, "CapEff:"), "00000000a80425fb");
    // cap-drop, no-new-privileges, read-only rootfs, user
    let st = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(field(&st, "CapEff:"), "0000000000000001");
    assert_eq!(field(&st, "NoNewPrivs:"), "1");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "busybox",
        "touch",
        "/x",
    ]);
    assert!(!o.status.success());
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-u",
            "nobody",
            "busybox",
            "id",
            "-u"
        ]),
        "65534"
    );
    // hostname and /etc files
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            "berth-box",
            "busybox",
            "cat",
            "/etc/hostname"
        ]),
        "berth-box"
    );
}

#[test]
fn lifecycle_verbs() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-l",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.docker_ok(&["pause", "berth-test-l"]);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "berth-test-l"
        ]),
        "paused true"
    );
    let o = d.docker(&["pause", "berth-test-l"]);
    assert!(!o.status.success());
    d.docker_ok(&["unpause", "berth-test-l"]);
    let pid1 = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-l"]);
    d.docker_ok(&["restart", "-t", "0", "berth-test-l"]);
    let pid2 = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "berth-test-l"]);
    assert_ne!(pid1, pid2);
    d.docker_ok(&["kill", "-s", "KILL", "berth-test-l"]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "berth-test-l"]),
        "137"
    );
    let o = d.docker(&["kill", "berth-test-l"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not running"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    d.docker_ok(&["rename", "berth-test-l", "berth-test-m"]);
    assert_eq!(
        d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "berth-test-m"
    );
    // export of a stopped container
    let tar = d.dir.path().join("export.tar");
    d.docker_ok(&["export", "-o", tar.to_str().unwrap(), "berth-test-m"]);
    let list = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(out(&list).contains("bin/busybox"));
    // filters
    d.docker_ok(&[
        "create",
        "--name",
        "berth-test-n",
        "-l",
        "x=1",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "label=x=1",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-n"
    );
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-n"
    );
    assert_eq!(
        d.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "exited=137",
            "--format",
            "{{.Names}}"
        ]),
        "berth-test-m"
    );
    assert_eq!(
        d.docker_ok(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"]),
        "berth-test-n"
    );
    assert_eq!(
        d.docker_ok(&["ps", "-aq", "--filter", "ancestor=busybox"])
            .lines()
            .count(),
        2
    );
    // prune removes both stopped ones
    let pruned = d.docker_ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers"), "{pruned}");
    assert_eq!(d.container_count(), 0);
}

#[test]
fn save_rmi_load_and_events() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let since = d.docker_ok(&["version", "-f", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let tar = d.dir.path().join("saved.tar");
    d.docker_ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    d.docker_ok(&["rmi", "busybox"]);
    assert_eq!(d.docker_ok(&["images", "-q"]), "");
    let loaded = d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: busybox:latest");
    d.docker_ok(&["tag", "busybox", "berth-test/bb:1"]);
    let images = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("busybox:latest") && images.contains("berth-test/bb:1"),
        "{images}"
    );
    d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "berth-test/bb:1",
        "true",
    ]);
    let until = jiff::Timestamp::now().as_second() + 1;
    let ev = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    for want in [
        "image import",
        "image load",
        "image tag",
        "container create",
        "container start",
        "container die",
        "container destroy",
    ] {
        assert!(ev.contains(want), "missing {want:?} in:\n{ev}");
    }
    let ev = d.docker_ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--filter",
        "type=container",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(ev, "0");
    let info = d.docker_ok(&["info", "-f", "{{.Driver}} {{.CgroupDriver}} {{.Images}}"]);
    assert_eq!(info, "overlay2 cgroupfs 1");
    let df = d.docker_ok(&["system", "df", "--format", "{{.Type}}"]);
    assert!(df.contains("Images"), "{df}");
}

#[test]
fn restart_policies_are_applied() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-of",
        "--restart",
        "on-failure:2",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    let mut last = String::new();
    for _ in 0..200 {
        last = d.docker_ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "berth-test-of",
        ]);
        if last == "2 exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(last, "2 exited", "{}", d.log());
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-al",
        "--restart",
        "always",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    for _ in 0..200 {
        let n: i64 = d
            .docker_ok(&["inspect", "-f", "{{.RestartCount}}", "berth-test-al"])
            .parse()
            .unwrap();
        if n >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        d.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "berth-test-al"])
            .parse::<i64>()
            .unwrap()
            >= 2
    );
    // a manual stop ends it
    d.docker_ok(&["stop", "-t", "1", "berth-test-al"]);
    let n = d.docker_ok(&["inspect", "-f", "{{.RestartCount}}", "berth-test-al"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "berth-test-al"
        ]),
        format!("{n} exited")
    );
}
