//! More of the real docker CLI against a real berthd: stdin (`run -i`, `start -a -i`),
//! `attach`, logs ranges, ps filters, events ranges, `system df`, and the tar streams
//! (`export | tar t`, `import -`, `save | load`) through pipes.

mod common;
use common::{Daemon, require, stderr, stdout, wait_until};

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn docker_stdin(d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut c = d
        .docker_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = c.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let o = c.wait_with_output().unwrap();
    w.join().unwrap();
    o
}

#[test]
fn docker_stdin_start_attach() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let o = docker_stdin(
        &d,
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z",
        ],
        b"piped in\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "PIPED IN\n");
    // start -a: the output and the container's exit code
    d.docker_ok(&[
        "create",
        "--name",
        "berth-test-sa",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 6",
    ]);
    let o = d
        .docker_command(&["start", "-a", "berth-test-sa"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // start -a -i with stdin
    d.docker_ok(&[
        "create",
        "-i",
        "--name",
        "berth-test-sai",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "read x; echo got:$x",
    ]);
    let o = docker_stdin(&d, &["start", "-a", "-i", "berth-test-sai"], b"ping\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "got:ping\n");
    // attach to a running container: new output arrives, the exit code is returned
    d.docker_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "berth-test-at",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo before; read x; echo after:$x; exit 3",
    ]);
    wait_until("first line", || {
        d.docker_ok(&["logs", "berth-test-at"]) == "before"
    });
    let o = docker_stdin(&d, &["attach", "berth-test-at"], b"line\n");
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stderr(&o), d.log());
    assert_eq!(stdout(&o), "after:line\n");
    d.docker_ok(&["rm", "berth-test-sa", "berth-test-sai", "berth-test-at"]);
    assert_eq!(d.container_count(), 0);
}

#[test]
fn docker_logs_ps_filters_events_df() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let t0 = jiff::Timestamp::now();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-lg",
        "-l",
        "tier=a",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; echo three; exec sleep 1000",
    ]);
    wait_until("three lines", || {
        d.docker_ok(&["logs", "berth-test-lg"]).ends_with("three")
    });
    assert_eq!(
        d.docker_ok(&["logs", "--tail", "1", "berth-test-lg"]),
        "three"
    );
    assert_eq!(
        d.docker_ok(&["logs", "-n", "all", "berth-test-lg"]),
        "one\ntwo\nthree"
    );
    let ts = d.docker_ok(&["logs", "-t", "berth-test-lg"]);
    let stamps: Vec<jiff::Timestamp> = ts
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(stamps.len(), 3);
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{ts}");
    assert!(stamps[0] >= t0 - jiff::SignedDuration::from_secs(1), "{ts}");
    // --since/--until select by the record's time
    let second = stamps[1].to_string();
    assert_eq!(
        d.docker_ok(&["logs", "--since", &second, "berth-test-lg"]),
        "two\nthree"
    );
    assert_eq!(
        d.docker_ok(&["logs", "--until", &second, "berth-test-lg"]),
        "one\ntwo"
    );
    assert_eq!(
        d.docker_ok(&["logs", "--since", "1m", "berth-test-lg"]),
        "one\ntwo\nthree"
    );
    assert_eq!(d.docker_ok(&["logs", "--until", "1m", "berth-test-lg"]), "");
    // ps filters
    d.docker_ok(&[
        "create",
        "--name",
        "berth-test-cr",
        "-l",
        "tier=b",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let names = |f: &[&str]| {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        a.extend_from_slice(f);
        d.docker_ok(&a)
    };
    assert_eq!(names(&["--filter", "label=tier=a"]), "berth-test-lg");
    assert_eq!(
        names(&["--filter", "label=tier"]),
        "berth-test-cr\nberth-test-lg"
    );
    assert_eq!(names(&["--filter", "status=running"]), "berth-test-lg");
    assert_eq!(names(&["--filter", "status=created"]), "berth-test-cr");
    assert_eq!(names(&["--filter", "name=berth-test-c"]), "berth-test-cr");
    let id = d.docker_ok(&["inspect", "-f", "{{.Id}}", "berth-test-cr"]);
    assert_eq!(
        names(&["--filter", &format!("id={}", &id[..10])]),
        "berth-test-cr"
    );
    assert_eq!(
        names(&["--filter", "before=berth-test-cr"]),
        "berth-test-lg"
    );
    assert_eq!(names(&["--filter", "since=berth-test-lg"]), "berth-test-cr");
    assert_eq!(
        names(&["--filter", "label=tier=a", "--filter", "status=exited"]),
        ""
    );
    let o = d.docker(&["ps", "--filter", "status=bogus"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bogus"), "{}", stderr(&o));
    // system df
    let df = d.docker_ok(&["system", "df"]);
    let head: Vec<&str> = df.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(
        d.docker_ok(&[
            "system",
            "df",
            "--format",
            "{{.Type}}:{{.TotalCount}}:{{.Active}}"
        ]),
        "Images:1:1\nContainers:2:1\nLocal Volumes:0:0\nBuild Cache:0:0"
    );
    let v = d.docker_ok(&["system", "df", "-v"]);
    assert!(v.contains("berth-test-lg") && v.contains("busybox"), "{v}");
    // events: since/until ranges and filters
    d.docker_ok(&["stop", "-t", "0", "berth-test-lg"]);
    let until = (jiff::Timestamp::now().as_second() + 1).to_string();
    let since = t0.as_second().to_string();
    let ev = |f: &[&str]| {
        let mut a = vec![
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ];
        a.extend_from_slice(f);
        d.docker_ok(&a)
    };
    assert_eq!(
        ev(&["--filter", "container=berth-test-cr"]),
        "create berth-test-cr"
    );
    let lg = ev(&["--filter", "label=tier=a", "--filter", "type=container"]);
    let acts: Vec<&str> = lg.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(acts.starts_with(&["create", "start"]), "{lg}");
    assert!(
        acts.contains(&"kill") && acts.contains(&"die") && acts.contains(&"stop"),
        "{lg}"
    );
    assert_eq!(ev(&["--filter", "event=destroy"]), "");
    // nothing before the daemon's first event
    let early = (t0.as_second() - 3600).to_string();
    let o = d.docker_ok(&[
        "events",
        "--since",
        &early,
        "--until",
        &since,
        "--filter",
        "type=container",
    ]);
    assert_eq!(o, "");
}

#[test]
fn docker_tar_streams_export_import_save_load() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    d.docker_ok(&[
        "create",
        "--name",
        "berth-test-ex",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    // export | tar t
    let sh = |cmd: &str| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .env("DOCKER", common::docker_cli())
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}\n{}", stderr(&o), d.log());
        stdout(&o)
    };
    let list = sh("set -o pipefail; $DOCKER export berth-test-ex | tar t");
    assert!(
        list.lines()
            .any(|l| l == "bin/busybox" || l == "./bin/busybox"),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.trim_start_matches("./") == "etc/passwd"),
        "{list}"
    );
    // import - from a pipe, with a change
    let id = sh(
        "$DOCKER export berth-test-ex | $DOCKER import -c 'CMD [\"echo\",\"re-imported\"]' - berth-test/imp:1",
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "berth-test/imp:1"]),
        "re-imported"
    );
    // save | load through a pipe after removing the images
    let tar = d.dir.path().join("both.tar");
    sh(&format!(
        "$DOCKER save busybox berth-test/imp:1 > {}",
        tar.display()
    ));
    d.docker_ok(&["rm", "berth-test-ex"]);
    d.docker_ok(&["rmi", "busybox", "berth-test/imp:1"]);
    assert_eq!(d.docker_ok(&["images", "-q"]), "");
    let loaded = sh(&format!("$DOCKER load < {}", tar.display()));
    assert!(loaded.contains("Loaded image: busybox:latest"), "{loaded}");
    assert!(
        loaded.contains("Loaded image: berth-test/imp:1"),
        "{loaded}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "berth-test/imp:1"]),
        "re-imported"
    );
    let o = d.docker(&["load", "-i", "/dev/null"]);
    assert!(!o.status.success());
}

#[test]
fn docker_system_prune_removes_stopped_containers_and_keeps_running_ones() {
    require!();
    let d = Daemon::start();
    d.import_busybox();
    let stopped = d.docker_ok(&[
        "create",
        "--name",
        "berth-test-pr-stopped",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "berth-test-pr-running",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    // docker's system prune also prunes networks and the build cache: Berth has neither yet,
    // and must answer both so the command completes.
    let out = d.docker_ok(&["system", "prune", "-f"]);
    assert!(
        out.contains("Deleted Containers:") && out.contains(&stopped),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let left = d.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left, "berth-test-pr-running");
    assert_eq!(d.docker_ok(&["network", "prune", "-f"]), "");
    let o = d.docker(&["network", "prune", "-f", "--filter", "bogus=1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid filter 'bogus'"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "prune", "-f", "--filter", "until=notatime"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    d.docker_ok(&["rm", "-f", "berth-test-pr-running"]);
}
