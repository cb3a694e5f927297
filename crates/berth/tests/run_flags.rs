//! Golden tests of the core of the CLI: `run`/`create` argv → the create request body, and
//! bad input rejected with Docker's messages (exit code 125 before any daemon contact).

use berth::cli::{Cli, Command};
use berth::opts::container::{CreateRequest, PullPolicy};
use serde_json::{Value, json};

fn parse(args: &[&str]) -> Result<CreateRequest, String> {
    let mut argv = vec!["berth", "run"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(&argv).map_err(|e| e.to_string())?;
    let Some(Command::Run(run)) = cli.command else {
        panic!("not a run command")
    };
    let lookup = |k: &str| match k {
        "FROM_ENV" => Some("env-value".to_owned()),
        _ => None,
    };
    run.opts.build(run.detach, &lookup).map_err(|e| e.0)
}

fn body(args: &[&str]) -> Value {
    serde_json::to_value(&parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).body).unwrap()
}

fn err(args: &[&str]) -> String {
    match parse(args) {
        Ok(r) => panic!("{args:?}: expected an error, got {:?}", r.body),
        Err(e) => e,
    }
}

#[test]
fn minimal_run_attaches_stdout_and_stderr() {
    let b = body(&["busybox", "echo", "hello"]);
    assert_eq!(b["Image"], "busybox");
    assert_eq!(b["Cmd"], json!(["echo", "hello"]));
    assert_eq!(b["AttachStdout"], true);
    assert_eq!(b["AttachStderr"], true);
    assert_eq!(b["AttachStdin"], false);
    assert_eq!(b["Tty"], false);
    assert!(b.get("Entrypoint").is_none());
    assert_eq!(b["HostConfig"], json!({}));
}

#[test]
fn flags_after_the_image_belong_to_the_command() {
    let b = body(&["busybox", "ls", "-l", "--rm", "-d"]);
    assert_eq!(b["Cmd"], json!(["ls", "-l", "--rm", "-d"]));
    assert!(b["HostConfig"].get("AutoRemove").is_none());
}

#[test]
fn detach_interactive_tty() {
    let b = body(&["-d", "busybox"]);
    assert_eq!(
        (b["AttachStdout"].clone(), b["AttachStderr"].clone()),
        (json!(false), json!(false))
    );
    let b = body(&["-it", "busybox", "sh"]);
    assert_eq!(b["AttachStdin"], true);
    assert_eq!(b["OpenStdin"], true);
    assert_eq!(b["StdinOnce"], true);
    assert_eq!(b["Tty"], true);
    let b = body(&["-a", "stdout", "busybox"]);
    assert_eq!(
        (b["AttachStdout"].clone(), b["AttachStderr"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        err(&["-a", "stdio", "busybox"]).contains("valid streams are STDIN, STDOUT and STDERR")
    );
    assert_eq!(
        err(&["-d", "-a", "stdout", "busybox"]),
        "conflicting options: cannot specify both --attach and --detach"
    );
}

#[test]
fn every_resource_flag() {
    let b = body(&[
        "--memory",
        "512m",
        "--memory-reservation",
        "256m",
        "--memory-swap",
        "-1",
        "--cpus",
        "1.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0-1",
        "--pids-limit",
        "-1",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "core=0",
        "--shm-size",
        "64m",
        "--oom-kill-disable",
        "busybox",
    ]);
    let h = &b["HostConfig"];
    assert_eq!(h["Memory"], 536870912);
    assert_eq!(h["MemoryReservation"], 268435456);
    assert_eq!(h["MemorySwap"], -1);
    assert_eq!(h["NanoCpus"], 1_500_000_000i64);
    assert_eq!(h["CpuShares"], 512);
    assert_eq!(h["CpusetCpus"], "0-1");
    assert_eq!(h["PidsLimit"], -1);
    assert_eq!(
        h["Ulimits"],
        json!([{"Name":"nofile","Soft":1024,"Hard":2048},{"Name":"core","Soft":0,"Hard":0}])
    );
    assert_eq!(h["ShmSize"], 67108864);
    assert_eq!(h["OomKillDisable"], true);
}

#[test]
fn security_and_filesystem_flags() {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-flags")
        .tempdir()
        .unwrap();
    let profile = dir.path().join("seccomp.json");
    std::fs::write(&profile, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
    let seccomp = format!("seccomp={}", profile.display());
    let b = body(&[
        "--privileged",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        &seccomp,
        "--read-only",
        "--tmpfs",
        "/x:size=64m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--init",
        "-v",
        "/src:/dst:ro",
        "-v",
        "/anon",
        "--mount",
        "type=bind,src=/a,dst=/b,readonly",
        "--group-add",
        "audio",
        "--runtime",
        "runc",
        "busybox",
    ]);
    let h = &b["HostConfig"];
    assert_eq!(h["Privileged"], true);
    assert_eq!(h["CapAdd"], json!(["NET_ADMIN"]));
    assert_eq!(h["CapDrop"], json!(["ALL"]));
    assert_eq!(
        h["SecurityOpt"],
        json!([
            "no-new-privileges",
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"
        ])
    );
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["Tmpfs"], json!({"/x": "size=64m"}));
    assert_eq!(h["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(h["Init"], true);
    assert_eq!(h["Binds"], json!(["/src:/dst:ro"]));
    assert_eq!(b["Volumes"], json!({"/anon": {}}));
    assert_eq!(
        h["Mounts"],
        json!([{"Target":"/b","Source":"/a","Type":"bind","ReadOnly":true}])
    );
    assert_eq!(h["GroupAdd"], json!(["audio"]));
    assert_eq!(h["Runtime"], "runc");
    let b = body(&["--security-opt", "systempaths=unconfined", "busybox"]);
    assert_eq!(b["HostConfig"]["MaskedPaths"], json!([]));
    assert!(b["HostConfig"].get("SecurityOpt").is_none());
}

#[test]
fn process_flags() {
    let dir = tempfile::Builder::new()
        .prefix("berth-test-flags")
        .tempdir()
        .unwrap();
    let env_file = dir.path().join("app.env");
    std::fs::write(&env_file, "# c\nA=from-file\nB=2\n").unwrap();
    let env_file = env_file.to_str().unwrap();
    let b = body(&[
        "--name",
        "web-1",
        "-e",
        "A=flag",
        "-e",
        "FROM_ENV",
        "-e",
        "UNSET_VAR",
        "--env-file",
        env_file,
        "-w",
        "/app",
        "-u",
        "1000:1000",
        "--entrypoint",
        "/bin/sh",
        "--hostname",
        "box",
        "-l",
        "a=b",
        "-l",
        "flag",
        "--restart",
        "on-failure:3",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "5",
        "--network",
        "none",
        "--pull",
        "never",
        "busybox",
        "-c",
        "true",
    ]);
    assert_eq!(
        b["Env"],
        json!([
            "A=from-file",
            "B=2",
            "A=flag",
            "FROM_ENV=env-value",
            "UNSET_VAR"
        ])
    );
    assert_eq!(b["WorkingDir"], "/app");
    assert_eq!(b["User"], "1000:1000");
    assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(b["Cmd"], json!(["-c", "true"]));
    assert_eq!(b["Hostname"], "box");
    assert_eq!(b["Labels"], json!({"a": "b", "flag": ""}));
    assert_eq!(b["StopSignal"], "SIGINT");
    assert_eq!(b["StopTimeout"], 5);
    assert_eq!(
        b["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    assert_eq!(b["HostConfig"]["NetworkMode"], "none");
    let r = parse(&["--name", "web-1", "--pull", "never", "busybox"]).unwrap();
    assert_eq!(r.query.name.as_deref(), Some("web-1"));
    assert_eq!(r.pull, PullPolicy::Never);
    // --entrypoint "" resets the image's entrypoint.
    assert_eq!(
        body(&["--entrypoint", "", "busybox"])["Entrypoint"],
        json!([""])
    );
    assert_eq!(
        body(&["--network", "host", "busybox"])["HostConfig"]["NetworkMode"],
        "host"
    );
    assert_eq!(
        body(&["--network", "container:db", "busybox"])["HostConfig"]["NetworkMode"],
        "container:db"
    );
}

#[test]
fn health_ports_and_logging() {
    let b = body(&[
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        "--health-retries",
        "3",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:53:53/udp",
        "--expose",
        "9000-9001",
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=3",
        "busybox",
    ]);
    assert_eq!(
        b["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000i64, "Retries": 3})
    );
    assert_eq!(
        b["HostConfig"]["PortBindings"]["80/tcp"],
        json!([{"HostIp": "", "HostPort": "8080"}])
    );
    assert_eq!(
        b["HostConfig"]["PortBindings"]["53/udp"],
        json!([{"HostIp": "127.0.0.1", "HostPort": "53"}])
    );
    for p in ["80/tcp", "53/udp", "9000/tcp", "9001/tcp"] {
        assert_eq!(b["ExposedPorts"][p], json!({}), "{p}");
    }
    assert_eq!(
        b["HostConfig"]["LogConfig"],
        json!({"Type": "", "Config": {"max-size": "10m", "max-file": "3"}})
    );
    assert_eq!(
        body(&["--no-healthcheck", "busybox"])["Healthcheck"],
        json!({"Test": ["NONE"]})
    );
}

#[test]
fn bad_input_is_rejected_with_docker_messages() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--memory", "abc", "busybox"],
            "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'",
        ),
        (
            &["--cpus", "x", "busybox"],
            "failed to parse x as a rational number",
        ),
        (
            &["--cpus", "1", "--cpu-quota", "5000", "busybox"],
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            &["--mount", "type=bind,dst=/b", "busybox"],
            "invalid argument \"type=bind,dst=/b\" for \"--mount\" flag: invalid mount config for type \"bind\": field Source must not be empty",
        ),
        (&["--mount", "src=/a", "busybox"], "target is required"),
        (
            &["--network", "foo:bar", "busybox"],
            "unknown network mode \"foo\"",
        ),
        (
            &["--network", "bad name", "busybox"],
            "invalid --network value",
        ),
        (
            &["--rm", "--restart", "always", "busybox"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
        (
            &["--restart", "sometimes", "busybox"],
            "unknown policy 'sometimes'",
        ),
        (
            &["--ulimit", "nofile=2:1", "busybox"],
            "soft limit must be less than or equal to hard limit",
        ),
        (
            &["--ulimit", "bogus=1", "busybox"],
            "invalid ulimit type: bogus",
        ),
        (
            &["--sysctl", "kernel.panic=1", "busybox"],
            "sysctl 'kernel.panic' is not allowed",
        ),
        (
            &["--pull", "sometimes", "busybox"],
            "invalid pull option: 'sometimes'",
        ),
        (
            &["-v", "/a:relative", "busybox"],
            "mount path must be absolute",
        ),
        (&["--tmpfs", "relative", "busybox"], "must be absolute"),
        (
            &["--security-opt", "bogus", "busybox"],
            "Invalid --security-opt: \"bogus\"",
        ),
        (
            &[
                "--security-opt",
                "seccomp=/nonexistent/berth-test.json",
                "busybox",
            ],
            "opening seccomp profile (/nonexistent/berth-test.json) failed",
        ),
        (
            &["--env-file", "/nonexistent/berth-test.env", "busybox"],
            "no such file or directory",
        ),
        (&["-e", "=x", "busybox"], "invalid environment variable: =x"),
        (
            &[
                "--health-interval",
                "soon",
                "--health-cmd",
                "true",
                "busybox",
            ],
            "invalid duration",
        ),
        (
            &["--no-healthcheck", "--health-cmd", "true", "busybox"],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (
            &["--memory-swappiness", "101", "busybox"],
            "Valid memory swappiness range is 0-100",
        ),
        (&["-p", "80:80/ftp", "busybox"], "invalid proto: ftp"),
        (&["-p", "x:80", "busybox"], "invalid hostPort: x"),
        (&["-p", "80:y", "busybox"], "invalid containerPort: y"),
        (
            &["--rm", "--restart", "sometimes", "busybox"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
    ];
    for (args, want) in cases {
        let e = err(args);
        assert!(
            e.contains(want),
            "{args:?}: got {e:?}, want it to contain {want:?}"
        );
    }
    // Parse-level errors (clap) for unknown flags and missing image.
    assert!(
        parse(&["--bogus", "busybox"])
            .unwrap_err()
            .contains("--bogus")
    );
    assert!(parse(&[]).is_err());
    assert!(
        parse(&["--pids-limit", "many", "busybox"])
            .unwrap_err()
            .contains("many")
    );
}

#[test]
fn cli_exit_codes_without_a_daemon() {
    use berth::run_cli;
    // Flag errors: 125, before any connection attempt.
    assert_eq!(run_cli(["berth", "run", "--memory", "abc", "busybox"]), 125);
    assert_eq!(run_cli(["berth", "run", "--bogus-flag", "busybox"]), 125);
    assert_eq!(run_cli(["berth", "nonexistent-verb"]), 125);
    // A missing daemon: run exits 125, other verbs 1.
    let sock = ["-H", "unix:///nonexistent/berth-test.sock"];
    let mut argv = vec!["berth"];
    argv.extend(sock);
    argv.extend(["run", "busybox", "true"]);
    assert_eq!(run_cli(argv), 125);
    let mut argv = vec!["berth"];
    argv.extend(sock);
    argv.extend(["ps"]);
    assert_eq!(run_cli(argv), 1);
    assert_eq!(run_cli(["berth", "-H", "tcp://1.2.3.4:2376", "ps"]), 125);
}
